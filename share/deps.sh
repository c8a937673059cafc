#!/bin/sh
# share/deps.sh: install the Debian packages vr builds and tests with.
#   share/deps.sh          install what is missing (needs root; uses apt-get)
#   share/deps.sh --check  exit 0 when everything is installed, 1 otherwise
#   share/deps.sh --arm64  also the aarch64 cross compiler, qemu-user and the
#                          arm64 libraries, for `make test-arm64` (adds arm64 to dpkg)
# The one list of build dependencies; `make deps`, `make test` and .ci/run call it.
set -eu
PKGS="build-essential pkg-config perl
libjansson-dev libxxhash-dev zlib1g-dev libturbojpeg0-dev libspng-dev
libpcre2-dev libutf8proc-dev libopenblas-dev libyaml-dev libcairo2-dev libfontconfig-dev jq
bsdextrautils gnuplot-nox openmpi-bin libopenmpi-dev"
if [ "${1:-}" = "--arm64" ]; then
    dpkg --print-foreign-architectures | grep -qx arm64 || { dpkg --add-architecture arm64 && apt-get update -qq; }
    PKGS="$PKGS gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user"
    for p in libjansson-dev libxxhash-dev libyaml-dev libturbojpeg0-dev libspng-dev libopenblas-dev \
             libpcre2-dev libutf8proc-dev libcairo2-dev libfontconfig-dev; do
        PKGS="$PKGS $p:arm64"
    done
fi
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
if [ -z "$missing" ]; then exit 0; fi
if [ "${1:-}" = "--check" ]; then echo "missing:$missing" >&2; exit 1; fi
echo "deps.sh: installing$missing" >&2
if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: not root; run: sudo apt-get install$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
