#!/usr/bin/env bash
# Install the library from build dir $1 into a temporary prefix, build
# examples/third_derivative.c outside the tree with pkg-config, and run it.
set -euo pipefail
build=${1:-build}
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
meson install -C "$build" --destdir "$tmp/root" >/dev/null
pcdir=$(dirname "$(find "$tmp/root" -name hgrad.pc | head -n1)")
cp "$src/examples/third_derivative.c" "$tmp/"
cd "$tmp"
# The library was installed under a staging root ($tmp/root + its prefix):
# PKG_CONFIG_SYSROOT_DIR makes pkg-config point into it.
export PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_SYSROOT_DIR="$tmp/root"
libdir=$(pkg-config --variable=libdir hgrad)
# A static-only install (-Ddefault_library=static) is linked with --static,
# which adds the BLAS and zlib from Requires.private.
static=
if [ ! -e "$libdir/libhgrad.so" ]; then
    static=--static
fi
flags=$(pkg-config $static --cflags --libs hgrad)
cc -std=c11 -Wall -Wextra -Wpedantic -Werror third_derivative.c $flags -lm -o third_derivative
LD_LIBRARY_PATH="$libdir" ./third_derivative
echo "pkg-config build outside the tree: ok"
