#!/usr/bin/env bash
# install-llama-server.sh — install a real llama-server (llama.cpp) from Debian sid into the project.
#
# Debian sid ships llama.cpp (llama.cpp-tools, libllama0, libggml0 with the CPU backends). Those packages
# need a newer glibc/libstdc++ than the host has, so they are NOT installed into the system: a private apt
# configuration (own sources list naming sid, own state/cache dirs; the host's apt is never touched)
# downloads them together with sid's runtime libraries, `dpkg-deb -x` unpacks them into a prefix, and every
# ELF file there is rewritten with sid's own patchelf:
#   - executables get the prefix's dynamic loader as interpreter, so llama-server runs as a normal process
#     under its own name;
#   - every object gets a DT_RPATH naming only prefix directories. DT_RPATH (not DT_RUNPATH) is used on
#     purpose: it is searched before LD_LIBRARY_PATH and applies to the whole dependency chain, so neither a
#     stray LD_LIBRARY_PATH nor the host's ld.so.cache can substitute a host library.
#   - ggml's CPU backends (libggml-cpu-*.so, loaded with dlopen at run time) are moved next to the
#     executable, one of the places ggml searches.
# The result is verified: `ld.so --list` of every object and an LD_DEBUG trace of a real llama-server run
# (which dlopens the backends) must show every library coming from the prefix.
#
# Layout (default dir <repo>/.engines/llama, git-ignored; override with GENAILAB_LLAMA_DIR):
#   <dir>/bin/llama-server   -> ../root/usr/bin/llama-server   (what the services find)
#   <dir>/root/              unpacked, patched sid packages
#   <dir>/MANIFEST           package versions installed
#   <dir>/.complete          stamp written last; a run finding it (and passing verification) is a no-op
#
# Environment:
#   GENAILAB_LLAMA_DIR       install directory (absolute or relative to the cwd); no ':' or whitespace
#   GENAILAB_DEBIAN_MIRROR   Debian mirror (default http://deb.debian.org/debian)
#   GENAILAB_LLAMA_REINSTALL=1  reinstall even when the install is complete
#
# Requires: bash, apt-get/apt-cache (Debian-style host), dpkg-deb, flock, coreutils, the Debian archive
# keyring (/usr/share/keyrings/debian-archive-keyring.gpg). Runs as root or as a normal user.
set -euo pipefail

# Bump when the recipe changes so existing installs are redone.
readonly RECIPE_VERSION=1
readonly SUITE=sid
readonly ARCH=amd64
readonly MULTIARCH=x86_64-linux-gnu
readonly KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
# Packages asked for by name; their shared-library dependencies (Section: libs) are added recursively.
readonly ROOT_PACKAGES=(llama.cpp-tools libllama0 libggml0 libc6 libstdc++6 libgcc-s1 libgomp1 libssl3t64 zlib1g libzstd1 patchelf)

die() { echo "install-llama-server: error: $*" >&2; exit 1; }
log() { echo "install-llama-server: $*" >&2; }

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/.." && pwd)
dest=${GENAILAB_LLAMA_DIR:-$repo_root/.engines/llama}
mirror=${GENAILAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}

case $dest in /*) ;; *) dest=$PWD/$dest ;; esac
dest=${dest%/}
# The path is written into ELF headers (interpreter, RPATH): ':' would split the RPATH, whitespace is asking for trouble.
[[ $dest =~ [[:space:]:] ]] && die "install dir '$dest' must not contain ':' or whitespace"
[[ -n $dest && $dest != / ]] || die "refusing to install into '$dest'"

[[ $(uname -m) == x86_64 ]] || die "only x86_64 hosts are supported (this is $(uname -m))"
for tool in apt-get apt-cache dpkg-deb flock od; do
	command -v "$tool" >/dev/null || die "'$tool' not found: this script needs a Debian-style host with apt and dpkg"
done
[[ -r $KEYRING ]] || die "$KEYRING missing: install the debian-archive-keyring package"

mkdir -p "$(dirname "$dest")"
dest=$(cd "$(dirname "$dest")" && pwd -P)/$(basename "$dest")
root=$dest/root
lib=$root/usr/lib/$MULTIARCH
loader=$lib/ld-linux-x86-64.so.2
binary=$dest/bin/llama-server

# One installer at a time per install dir.
exec 9>"$dest.lock"
flock 9 || die "could not lock $dest.lock"

is_elf() { [[ -f $1 && ! -L $1 && $(head -c4 "$1" | od -An -c | tr -d ' \n') == '177ELF' ]]; }

# verify_install DIR_ROOT BINARY: every object in the prefix must resolve its libraries inside the prefix,
# and a real llama-server run (which also dlopens the ggml backends) must load nothing from elsewhere.
verify_install() {
	local r=$1 bin=$2 f out line path bad=0 trace
	local ld=$r/usr/lib/$MULTIARCH/ld-linux-x86-64.so.2
	[[ -x $ld && -x $bin ]] || { echo "missing loader or binary" >&2; return 1; }
	[[ -f $r/../.elf-list ]] || { echo "missing .elf-list" >&2; return 1; }
	# Static check: ld.so --list of every patched object.
	while IFS= read -r f; do
		[[ -n $f ]] || continue
		if ! out=$(env -i "$ld" --list "$r/$f" 2>&1); then
			echo "ld.so --list $f failed: $out" >&2
			return 1
		fi
		while IFS= read -r line; do
			if [[ $line == *"not found"* ]]; then
				echo "$f: unresolved dependency: $line" >&2
				bad=1
				continue
			fi
			path=""
			if [[ $line =~ =\>\ (/[^ ]+) ]]; then
				path=${BASH_REMATCH[1]}
			elif [[ $line =~ ^[[:space:]]*(/[^ ]+)\ \( ]]; then
				path=${BASH_REMATCH[1]}
			fi
			if [[ -n $path && $path != "$r"/* ]]; then
				echo "$f: library from outside the prefix: $line" >&2
				bad=1
			fi
		done <<<"$out"
	done <"$r/../.elf-list"
	((bad == 0)) || return 1
	# Dynamic check: trace a real run; --list-devices makes ggml dlopen its CPU backends.
	trace=$(mktemp -d)
	if ! env -i LD_DEBUG=libs LD_DEBUG_OUTPUT="$trace/ld" "$bin" --list-devices >"$trace/out" 2>&1; then
		echo "llama-server --list-devices failed:" >&2
		cat "$trace/out" >&2
		rm -rf "$trace"
		return 1
	fi
	local inits=0
	while IFS= read -r line; do
		if [[ $line =~ (calling\ init|trying\ file=|calling\ fini):?\ ?(/[^ ]*) ]]; then
			path=${BASH_REMATCH[2]}
			[[ ${BASH_REMATCH[1]} == "calling init" ]] && inits=$((inits + 1))
			if [[ $path != "$r"/* ]]; then
				echo "llama-server touched a library outside the prefix: ${line#*:}" >&2
				bad=1
			fi
		fi
	done < <(cat "$trace"/ld.* 2>/dev/null)
	if [[ -e /usr/lib/$MULTIARCH/ggml/backends0 ]]; then
		echo "note: the host has /usr/lib/$MULTIARCH/ggml/backends0, which ggml searches first" >&2
	fi
	rm -rf "$trace"
	((inits > 0)) || { echo "LD_DEBUG trace is empty: cannot verify library origins" >&2; return 1; }
	((bad == 0))
}

stamp_want="recipe=$RECIPE_VERSION dest=$dest"
if [[ ${GENAILAB_LLAMA_REINSTALL:-} != 1 && -f $dest/.complete && $(cat "$dest/.complete") == "$stamp_want" ]]; then
	if verify_install "$root" "$binary"; then
		log "already installed and verified"
		"$binary" --version
		echo "$binary"
		exit 0
	fi
	log "existing install at $dest failed verification; reinstalling"
fi

work=$(mktemp -d "$dest.tmp.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Private apt configuration: everything under $work/apt, nothing read from or written to the host's apt dirs
# except the archive keyring (read) and, if set, the host's proxy settings (copied below).
apt_dir=$work/apt
mkdir -p "$apt_dir"/etc/{apt.conf.d,preferences.d,sources.list.d} "$apt_dir"/state/lists/partial \
	"$apt_dir"/cache/archives/partial "$work/debs" "$work/tool" "$work/dest/bin"
: >"$apt_dir/state/status"
echo "deb [arch=$ARCH signed-by=$KEYRING] $mirror $SUITE main" >"$apt_dir/etc/sources.list"
{
	echo "Dir::Etc \"$apt_dir/etc\";"
	echo "Dir::Etc::SourceList \"$apt_dir/etc/sources.list\";"
	echo "Dir::Etc::SourceParts \"$apt_dir/etc/sources.list.d\";"
	echo "Dir::Etc::Parts \"$apt_dir/etc/apt.conf.d\";"
	echo "Dir::Etc::Preferences \"$apt_dir/etc/preferences\";"
	echo "Dir::Etc::PreferencesParts \"$apt_dir/etc/preferences.d\";"
	echo "Dir::State \"$apt_dir/state\";"
	echo "Dir::State::status \"$apt_dir/state/status\";"
	echo "Dir::Cache \"$apt_dir/cache\";"
	echo "APT::Architecture \"$ARCH\";"
	echo "APT::Architectures { \"$ARCH\"; };"
	echo "APT::Sandbox::User \"$(id -un)\";"
	echo "Acquire::Languages \"none\";"
	echo "Acquire::GzipIndexes \"true\";"
	# Mirrors that serve a frozen snapshot carry an expired Valid-Until; signatures are still checked.
	echo "Acquire::Check-Valid-Until \"false\";"
	echo "Acquire::Retries \"3\";"
	# Keep the host's proxy, if it has one (read only).
	apt-config dump 2>/dev/null | grep -E '^Acquire::(http|https|ftp)::Proxy ' || true
} >"$apt_dir/apt.conf"
export APT_CONFIG=$apt_dir/apt.conf

log "updating the private apt index for Debian $SUITE ($mirror)"
apt-get -q --error-on=any update >"$work/apt-update.log" 2>&1 || {
	cat "$work/apt-update.log" >&2
	die "apt-get update of Debian $SUITE failed (see above)"
}
grep -E '^(E|W):' "$work/apt-update.log" >&2 || true

# Resolve the closure: the root packages plus, recursively, every Depends/Pre-Depends target whose Section
# is "libs" (runtime libraries). Utilities a package depends on (debconf, wget|curl for model downloads,
# openssl's legacy provider) are not loaded by llama-server and are left out; the verification below proves
# the closure is complete. For "a | b" the first alternative is taken.
declare -A seen=()
selected=()
queue=("${ROOT_PACKAGES[@]}")
for p in "${queue[@]}"; do seen[$p]=1; done
declare -A is_root=()
for p in "${ROOT_PACKAGES[@]}"; do is_root[$p]=1; done
while ((${#queue[@]} > 0)); do
	info=$(apt-cache show --no-all-versions "${queue[@]}" 2>"$work/apt-cache.err") || true
	queue=()
	while IFS=$'\t' read -r pkg section deps; do
		[[ -n $pkg ]] || continue
		if [[ -z ${is_root[$pkg]:-} && $section != libs ]]; then
			continue
		fi
		selected+=("$pkg")
		for d in $deps; do
			if [[ -z ${seen[$d]:-} ]]; then
				seen[$d]=1
				queue+=("$d")
			fi
		done
	done < <(awk '
		function flush() { if (pkg != "") print pkg "\t" sec "\t" deps; pkg = ""; sec = ""; deps = "" }
		/^Package: / { flush(); pkg = $2; next }
		/^Section: / { sec = $2; sub(/.*\//, "", sec); next }
		/^(Pre-)?Depends: / {
			line = $0; sub(/^[^:]*: /, "", line)
			n = split(line, groups, /, */)
			for (i = 1; i <= n; i++) {
				g = groups[i]; sub(/ *\|.*/, "", g); sub(/ *\(.*/, "", g); sub(/:.*/, "", g)
				if (g != "") deps = deps " " g
			}
			next
		}
		/^$/ { flush() }
		END { flush() }' <<<"$info")
done
for p in "${ROOT_PACKAGES[@]}"; do
	printf '%s\n' "${selected[@]}" | grep -qx -- "$p" || {
		cat "$work/apt-cache.err" >&2
		die "package $p not found in Debian $SUITE"
	}
done
log "packages: ${selected[*]}"

log "downloading ${#selected[@]} packages"
(cd "$work/debs" && apt-get -q download "${selected[@]}") >"$work/download.log" 2>&1 || {
	cat "$work/download.log" >&2
	die "apt-get download failed (see above)"
}

staging_root=$work/dest/root
mkdir -p "$staging_root"
: >"$work/dest/MANIFEST"
for deb in "$work"/debs/*.deb; do
	dpkg-deb -x "$deb" "$staging_root" || die "could not unpack $deb"
	dpkg-deb -W --showformat='${Package} ${Version}\n' "$deb" >>"$work/dest/MANIFEST"
done
# Documentation other than the copyright files is not needed.
rm -rf "$staging_root"/usr/share/{man,info,locale,lintian,bug,bash-completion} "$staging_root"/etc
staging_lib=$staging_root/usr/lib/$MULTIARCH
[[ -x $staging_lib/ld-linux-x86-64.so.2 && -f $staging_root/usr/bin/llama-server && -f $staging_root/usr/bin/patchelf ]] ||
	die "unpacked packages lack the loader, llama-server or patchelf"

# sid's patchelf needs sid's libstdc++: run a private copy through sid's loader, so the files it rewrites
# are never the ones it has mapped.
for f in ld-linux-x86-64.so.2 libc.so.6 libm.so.6 libstdc++.so.6 libgcc_s.so.1; do
	cp -L "$staging_lib/$f" "$work/tool/$f"
done
cp "$staging_root/usr/bin/patchelf" "$work/tool/patchelf"
patchelf() { env -i "$work/tool/ld-linux-x86-64.so.2" --library-path "$work/tool" "$work/tool/patchelf" "$@"; }

# ggml's CPU backends go next to the executable (ggml searches its build-time dir, the executable's dir, the cwd).
backend_dir=$staging_lib/ggml/backends0
compgen -G "$backend_dir/libggml-cpu-*.so" >/dev/null || die "no ggml CPU backends in libggml0"
mv "$backend_dir"/libggml-cpu-*.so "$staging_root/usr/bin/"
rmdir "$backend_dir" "$staging_lib/ggml" 2>/dev/null || true

# Rewrite every ELF object (final paths: they are valid once the staging dir is moved to $dest). glibc's
# iconv modules (gconv/) are skipped: glibc loads them from its built-in path only, and only for iconv.
final_lib=$root/usr/lib/$MULTIARCH
rpath=$final_lib/llama:$final_lib
: >"$work/dest/.elf-list"
log "rewriting interpreter and RPATH"
while IFS= read -r -d '' f; do
	is_elf "$f" || continue
	rel=${f#"$staging_root"/}
	case $rel in
	usr/lib/$MULTIARCH/ld-linux-x86-64.so.2) continue ;;
	usr/lib/$MULTIARCH/gconv/*) continue ;;
	esac
	if patchelf --print-interpreter "$f" >/dev/null 2>&1; then
		patchelf --set-interpreter "$final_lib/ld-linux-x86-64.so.2" --force-rpath --set-rpath "$rpath" "$f" ||
			die "patchelf failed on $rel"
	else
		patchelf --force-rpath --set-rpath "$rpath" "$f" || die "patchelf failed on $rel"
	fi
	echo "$rel" >>"$work/dest/.elf-list"
done < <(find "$staging_root/usr" -type f -print0)

ln -s ../root/usr/bin/llama-server "$work/dest/bin/llama-server"
echo "$stamp_want" >"$work/dest/.complete.pending"

# Swap into place (under the lock), then verify at the final path, which the rewritten headers name.
if [[ -e $dest ]]; then
	mv "$dest" "$work/old"
fi
mv "$work/dest" "$dest"
if ! verify_install "$root" "$binary"; then
	rm -rf "$dest"
	die "verification failed: the install would load libraries from the host (see above); removed $dest"
fi
mv "$dest/.complete.pending" "$dest/.complete"

log "installed $(grep -c . "$dest/MANIFEST") packages ($(du -sh "$dest" | cut -f1)) into $dest"
"$binary" --version
echo "$binary"
