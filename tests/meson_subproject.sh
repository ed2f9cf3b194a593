#!/usr/bin/env bash
# tests/meson_subproject.sh BUILD_DIR
# A scratch meson project inside BUILD_DIR that uses this source tree as the
# subproject 'libhgrad' through dependency('hgrad', fallback : 'libhgrad'),
# builds examples/third_derivative.c against it and runs it as its one test.
# Checks that the subproject builds only the library: no tests, examples or
# benchmarks of its own.
set -euo pipefail
build=$(cd "${1:?usage: meson_subproject.sh BUILD_DIR}" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d "$build/meson-subproject.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/proj/subprojects"
ln -s "$src" "$tmp/proj/subprojects/libhgrad"
cp "$src/examples/third_derivative.c" "$tmp/proj/"
cat >"$tmp/proj/meson.build" <<'MESON'
project('hgrad_consumer', 'c', default_options : ['c_std=c11', 'warning_level=3', 'werror=true'])
hgrad = dependency('hgrad', version : '>= 0.1', fallback : 'libhgrad')
exe = executable('third_derivative', 'third_derivative.c', dependencies : hgrad)
test('third_derivative', exe)
MESON
cd "$tmp/proj"
# --force-fallback-for: use the subproject even where an hgrad.pc is installed.
meson setup build --force-fallback-for=hgrad >"$tmp/setup.log" 2>&1 || { cat "$tmp/setup.log"; exit 1; }
tests=$(meson introspect --tests build | python3 -c 'import json,sys; print(" ".join(t["name"] for t in json.load(sys.stdin)))')
if [ "$tests" != "third_derivative" ]; then
    echo "the subproject added tests to the consumer: $tests" >&2
    exit 1
fi
targets=$(meson introspect --targets build |
    python3 -c 'import json,sys; print(" ".join(sorted(t["name"] for t in json.load(sys.stdin) if t["subproject"])))')
echo "subproject targets: $targets"
case " $targets " in
*" hgrad "*) ;;
*) echo "the subproject did not build the library" >&2; exit 1 ;;
esac
for t in $targets; do
    case $t in
    hgrad | hgrad_objects | hgrad-static) ;;
    *) echo "the subproject builds more than the library: $t" >&2; exit 1 ;;
    esac
done
meson compile -C build >"$tmp/compile.log" 2>&1 || { cat "$tmp/compile.log"; exit 1; }
meson test -C build --print-errorlogs
echo "meson subproject consumer: ok"
