#!/bin/sh
# Install the Debian packages modelc needs, only those that are missing.
set -e
PKGS="llvm-19-dev llvm-19-tools libopenblas-dev check zlib1g-dev cmake pkg-config make gcc dataset-fashion-mnist libopenmpi-dev openmpi-bin protobuf-c-compiler libprotobuf-c-dev libonnx-dev python3-onnx libonnx-testdata"
missing=""
for p in $PKGS; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0
echo "modelc: installing missing packages:$missing"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "modelc: need root (or sudo) to install:$missing" >&2; exit 1; fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
