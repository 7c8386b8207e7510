#!/usr/bin/env bash
# build-images.sh — build the CPU container images (deploy/Dockerfile targets control, agent and
# etcd) offline: nothing is pulled from any registry.
#
#   1. the base (GENAILAB_BASE_IMAGE in deploy/images.env): a Debian bookworm minbase rootfs made by
#      debootstrap from the Debian mirror (with ca-certificates, for model downloads), docs and apt
#      state removed, imported with `docker import`. The rootfs tarball is cached
#      ($GENAILAB_IMAGE_CACHE, default ~/.cache/genailab/images) and reused while the recipe is the same;
#   2. llama-server from Debian's packages, installed by scripts/install-llama-server.sh for the
#      image's path /opt/genailab/llama (a private mount namespace puts a staging directory at /opt,
#      so the host's /opt is never written; cached like the rootfs);
#   3. the Go binaries, built on the host (CGO_ENABLED=0 except the monitor, which dlopens NVML
#      through cgo and so needs the base's glibc), and etcd's server from tools/ (tools/go.mod pins it);
#   4. stable-diffusion.cpp's sd-cli and sd-server from GENAILAB_SDCPP_DIR or ../shared/engines/sdcpp,
#      when there is a build (the agent image then says io.genailab.sdcpp=none otherwise);
#   5. `docker build` of both targets with the classic builder (BuildKit would fetch its Dockerfile
#      frontend image), then one line per image with its size.
#
# Needs root (debootstrap, unshare), Docker (DOCKER_HOST; scripts/dockerd.sh starts a private one),
# Go, and the Debian mirror (GENAILAB_DEBIAN_MIRROR, default http://deb.debian.org/debian).
set -euo pipefail

die() { echo "build-images: error: $*" >&2; exit 1; }
log() { echo "build-images: $*" >&2; }

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$script_dir/.." && pwd)
cd "$repo"
# shellcheck source=../deploy/images.env
source deploy/images.env
readonly BASE_RECIPE=1 # bump when the base recipe below changes
mirror=${GENAILAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache=${GENAILAB_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/genailab/images}
ctx=$repo/bin/images/context
mkdir -p "$cache"

command -v docker >/dev/null || die "docker not found (apt-get install -y docker.io; scripts/dockerd.sh start)"
docker version >/dev/null 2>&1 || die "no Docker engine answers at ${DOCKER_HOST:-the default socket} (scripts/dockerd.sh start)"
[[ $(id -u) == 0 ]] || die "run as root (debootstrap and the mount namespace of the llama-server install)"
start=$(date +%s)

# ---- 1. base image ------------------------------------------------------------------------
if docker image inspect "$GENAILAB_BASE_IMAGE" >/dev/null 2>&1; then
	log "base $GENAILAB_BASE_IMAGE: present"
else
	tarball=$cache/base-bookworm-recipe$BASE_RECIPE.tar
	if [[ ! -s $tarball ]]; then
		command -v debootstrap >/dev/null || die "debootstrap not found (apt-get install -y debootstrap)"
		rootfs=$(mktemp -d "$cache/rootfs.XXXXXX")
		trap 'rm -rf "$rootfs"' EXIT
		log "debootstrap bookworm minbase from $mirror (about a minute)"
		debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
			{ tail -n 30 "$cache/debootstrap.log" >&2; die "debootstrap failed (log: $cache/debootstrap.log)"; }
		rm -rf "$rootfs"/usr/share/{doc,man,info,locale,lintian} "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* \
			"$rootfs"/var/log/* "$rootfs"/tmp/*
		tar -C "$rootfs" --numeric-owner -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
		rm -rf "$rootfs"
		trap - EXIT
	else
		log "base rootfs from the cache: $tarball"
	fi
	docker import --change 'CMD ["/bin/false"]' -m "debootstrap --variant=minbase bookworm, recipe $BASE_RECIPE" \
		"$tarball" "$GENAILAB_BASE_IMAGE" >/dev/null
fi

# ---- 2. llama-server for /opt/genailab/llama ---------------------------------------------
llama_stage=$cache/llama-opt
mkdir -p "$llama_stage"
# Idempotent: a complete, verified install is a no-op.
log "llama-server for /opt/genailab/llama (Debian packages, in a private mount namespace)"
unshare --mount --propagation private \
	bash -c 'mount --bind "$1" /opt && GENAILAB_LLAMA_DIR=/opt/genailab/llama bash "$2"' _ "$llama_stage" "$script_dir/install-llama-server.sh" >/dev/null ||
	die "llama-server install failed"
llama_version=$(awk '$1 == "llama.cpp-tools" { print $2 }' "$llama_stage/genailab/llama/MANIFEST")

# ---- 3. the build context -----------------------------------------------------------------
rm -rf "$ctx"
mkdir -p "$ctx"/{control,agent,etcd,sdcpp,rootdirs/data,rootdirs/tmp}
chmod 1777 "$ctx/rootdirs/tmp"
cp -a "$llama_stage/genailab/llama" "$ctx/llama"
log "building the Go binaries"
ldflags='-s -w'
export GOFLAGS=-trimpath
CGO_ENABLED=0 bash scripts/go-build.sh -ldflags="$ldflags" -o "$ctx/control/" \
	./services/orchestrator/cmd/genailab-orchestrator ./services/gateway/cmd/genailab-gateway \
	./pkg/cmd/genailab-certs ./deploy/cmd/genailab-healthcheck
CGO_ENABLED=0 bash scripts/go-build.sh -ldflags="$ldflags" -o "$ctx/agent/" \
	./services/llm/cmd/genailab-llm ./services/diffusion/cmd/genailab-diffusion \
	./pkg/cmd/genailab-certs ./deploy/cmd/genailab-healthcheck
CGO_ENABLED=1 bash scripts/go-build.sh -ldflags="$ldflags" -o "$ctx/agent/" ./services/monitor/cmd/genailab-monitor
# etcd: its own module (tools/go.mod, outside the workspace), the version the tests run.
(cd tools && GOWORK=off CGO_ENABLED=0 go build -trimpath -ldflags="$ldflags" -o "$ctx/etcd/etcd" ./etcd)
etcd_version=$(awk '$1 == "go.etcd.io/etcd/server/v3" { print $2; exit }' tools/go.mod)

# ---- 4. stable-diffusion.cpp --------------------------------------------------------------
sd_dir=${GENAILAB_SDCPP_DIR:-$repo/../shared/engines/sdcpp}
sdcpp=none
if [[ -x $sd_dir/bin/sd-cli && -x $sd_dir/bin/sd-server ]]; then
	mkdir -p "$ctx/sdcpp/bin"
	cp "$sd_dir/bin/sd-cli" "$sd_dir/bin/sd-server" "$ctx/sdcpp/bin/"
	[[ -d $sd_dir/licenses ]] && cp -r "$sd_dir/licenses" "$ctx/sdcpp/"
	sdcpp=$("$sd_dir/bin/sd-cli" --version 2>/dev/null | head -n1 | sed -n 's/^stable-diffusion.cpp version \([^,]*\).*/\1/p' || true)
	sdcpp=${sdcpp:-unknown version}
	log "stable-diffusion.cpp from $sd_dir ($sdcpp)"
else
	log "no stable-diffusion.cpp at $sd_dir: the agent image carries none"
fi

# ---- 5. the images ------------------------------------------------------------------------
revision=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
build() { # target image [labels...]
	local target=$1 image=$2
	shift 2
	log "docker build --target $target -> $image"
	DOCKER_BUILDKIT=0 docker build -q -f deploy/Dockerfile --target "$target" -t "$image" \
		--build-arg BASE_IMAGE="$GENAILAB_BASE_IMAGE" --build-arg VERSION="$GENAILAB_IMAGE_VERSION" \
		--build-arg REVISION="$revision" "$@" "$ctx" >/dev/null
}
build control "$GENAILAB_CONTROL_IMAGE"
build agent "$GENAILAB_AGENT_IMAGE" --label "io.genailab.llama-server=llama.cpp-tools $llama_version" \
	--label "io.genailab.sdcpp=$sdcpp"
build etcd "$GENAILAB_ETCD_IMAGE" --build-arg ETCD_VERSION="${etcd_version:-unknown}"
for image in "$GENAILAB_BASE_IMAGE" "$GENAILAB_CONTROL_IMAGE" "$GENAILAB_AGENT_IMAGE" "$GENAILAB_ETCD_IMAGE"; do
	size=$(docker image inspect -f '{{.Size}}' "$image")
	awk -v i="$image" -v s="$size" 'BEGIN { printf "image %-28s %7.1f MB\n", i, s / 1e6 }'
done
log "done in $(($(date +%s) - start)) s"
