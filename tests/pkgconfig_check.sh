#!/usr/bin/env bash
# Install the library from build dir $1 into a temporary prefix, build
# examples/third_derivative.c outside the tree with pkg-config, by hand and as
# a scratch meson project (dependency('hgrad') found by pkg-config), and run
# both.
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

# The same program as a meson project that finds the installed hgrad.pc.
mkdir proj
cp third_derivative.c proj/
is_static=false
[ -z "$static" ] || is_static=true
cat >proj/meson.build <<MESON
project('hgrad_pkgconfig_consumer', 'c', default_options : ['c_std=c11', 'warning_level=3', 'werror=true'])
hgrad = dependency('hgrad', version : '>= 0.1', method : 'pkg-config', static : $is_static)
m = meson.get_compiler('c').find_library('m')   # the program calls exp() itself
test('third_derivative', executable('third_derivative', 'third_derivative.c', dependencies : [hgrad, m]),
  env : ['LD_LIBRARY_PATH=$libdir'])
MESON
(cd proj && meson setup build >setup.log 2>&1) || { cat proj/setup.log; exit 1; }
grep -E "Run-time dependency hgrad found: YES" proj/setup.log
meson compile -C proj/build >proj/compile.log 2>&1 || { cat proj/compile.log; exit 1; }
meson test -C proj/build --print-errorlogs
echo "meson project using pkg-config outside the tree: ok"
