#!/usr/bin/env bash
# link-sdcpp.sh — make a stable-diffusion.cpp build available to `genailab up` in .engines/sdcpp/bin.
#
# genailab up looks for sd-cli and sd-server on PATH and then in .engines/sdcpp/bin (from the
# working directory upwards). This script links a build there:
#   scripts/link-sdcpp.sh DIR   links DIR/sd-cli and DIR/sd-server (your own build: the bin/ of
#                               stable-diffusion.cpp's `cmake --build build --config Release`)
#   scripts/link-sdcpp.sh       links the lab's build in ../shared/engines/sdcpp/bin when present,
#                               and does nothing otherwise (the quick start then runs the demo)
set -euo pipefail
cd "$(dirname "$0")/.."
src="${1:-${GENAILAB_SDCPP_DIR:-../shared/engines/sdcpp/bin}}"
if [ ! -x "$src/sd-cli" ]; then
  if [ $# -gt 0 ]; then
    echo "link-sdcpp: no executable sd-cli in $src" >&2
    exit 1
  fi
  echo "link-sdcpp: no stable-diffusion.cpp build found (give its bin directory: scripts/link-sdcpp.sh DIR); images will come from the demo stand-in"
  exit 0
fi
src="$(cd "$src" && pwd)"
mkdir -p .engines/sdcpp/bin
for p in sd-cli sd-server; do
  if [ -x "$src/$p" ]; then
    ln -sfn "$src/$p" ".engines/sdcpp/bin/$p"
  fi
done
echo "link-sdcpp: .engines/sdcpp/bin -> $src ($("$src/sd-cli" --version 2>/dev/null | head -1))"
