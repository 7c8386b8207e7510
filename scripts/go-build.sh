#!/usr/bin/env bash
# go-build.sh — `go build "$@"`, without one third-party package's compiler warnings.
#
# github.com/NVIDIA/go-nvml (the monitor's NVML binding, cgo, not ours) calls NVML functions that its
# own header marks deprecated, so a cold build prints ~150 lines of C compiler warnings for it. When
# the build succeeds this script drops that package's section of go's output (a section starts with
# "# <import path>"); a failed build prints everything. Passing CGO_CFLAGS=-Wno-deprecated-declarations
# instead would silence them at the source, but cgo records its flags in each cgo package's archive:
# net, os/user and everything that imports them would be compiled again, apart from the copies
# `go test` already built (measured: +44 % CPU on a cold build, see BENCHMARKS.md).
set -uo pipefail
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go build "$@" >"$out" 2>&1
rc=$?
if [ "$rc" -ne 0 ]; then
  cat "$out"
  exit "$rc"
fi
awk '/^# / { skip = ($2 ~ /^github\.com\/NVIDIA\/go-nvml\//) } !skip { print }' "$out"
