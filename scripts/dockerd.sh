#!/usr/bin/env bash
# dockerd.sh — a private Docker engine for image builds and the container tests, with every
# file under the clone (default <repo>/.docker; GENAILAB_DOCKER_DIR overrides), never the
# host's /var/lib/docker or /var/run/docker.sock.
#
#   scripts/dockerd.sh start   # starts dockerd (as root), waits until it answers, prints DOCKER_HOST=...
#   scripts/dockerd.sh stop    # stops the dockerd it started, by the PID in its pidfile
#   scripts/dockerd.sh env     # prints DOCKER_HOST=... for a running one
#
# Needs Debian's docker.io (dockerd, containerd, runc, iptables). No registry is used: images
# are built from what the machine has (scripts/build-images.sh).
set -euo pipefail

die() { echo "dockerd.sh: error: $*" >&2; exit 1; }

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/.." && pwd)
dir=${GENAILAB_DOCKER_DIR:-$repo_root/.docker}
case $dir in /*) ;; *) dir=$PWD/$dir ;; esac
sock=$dir/docker.sock
pidfile=$dir/dockerd.pid
# containerd's sockets live under the exec root; a unix socket path has at most 107 bytes.
(( ${#dir} < 60 )) || die "$dir is too long for dockerd's sockets: set GENAILAB_DOCKER_DIR to a shorter path"

running() { [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

case ${1:-} in
start)
	command -v dockerd >/dev/null || die "dockerd not found: apt-get install -y docker.io"
	[[ $(id -u) == 0 ]] || die "dockerd runs as root"
	if running; then
		echo "DOCKER_HOST=unix://$sock"
		exit 0
	fi
	mkdir -p "$dir/data" "$dir/exec"
	# setsid: the engine outlives this script and the shell that ran it; stop ends it by PID.
	setsid dockerd --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$pidfile" \
		-H "unix://$sock" --storage-driver overlay2 >"$dir/dockerd.log" 2>&1 </dev/null &
	for _ in $(seq 1 300); do
		if DOCKER_HOST=unix://$sock docker version >/dev/null 2>&1; then
			echo "DOCKER_HOST=unix://$sock"
			exit 0
		fi
		if ! kill -0 $! 2>/dev/null; then
			tail -n 30 "$dir/dockerd.log" >&2
			die "dockerd exited during start (log: $dir/dockerd.log)"
		fi
		sleep 0.2 # polling for the socket to answer: dockerd has no readiness notification here
	done
	tail -n 30 "$dir/dockerd.log" >&2
	die "dockerd did not answer within 60 s (log: $dir/dockerd.log)"
	;;
stop)
	running || { echo "dockerd.sh: no dockerd running from $dir"; exit 0; }
	pid=$(cat "$pidfile")
	kill -TERM "$pid"
	for _ in $(seq 1 150); do
		kill -0 "$pid" 2>/dev/null || { echo "dockerd.sh: stopped dockerd $pid"; exit 0; }
		sleep 0.2
	done
	die "dockerd $pid did not stop within 30 s"
	;;
env)
	running || die "no dockerd running from $dir (scripts/dockerd.sh start)"
	echo "DOCKER_HOST=unix://$sock"
	;;
*)
	die "usage: dockerd.sh start|stop|env"
	;;
esac
