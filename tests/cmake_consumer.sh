#!/usr/bin/env bash
# tests/cmake_consumer.sh BUILD_DIR
# Installs the library from BUILD_DIR into a staging root inside BUILD_DIR,
# builds examples/third_derivative.c as a scratch CMake project with
# find_package(hgrad) against it (hgrad::hgrad, and hgrad::hgrad_static when
# the static library is installed), runs the programs, and checks that a
# request for an incompatible version is refused. Exit 77 (skip) without cmake.
set -euo pipefail
build=$(cd "${1:?usage: cmake_consumer.sh BUILD_DIR}" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
if ! command -v cmake >/dev/null; then
    echo "cmake not installed (apt-get install cmake): skipped"
    exit 77
fi
tmp=$(mktemp -d "$build/cmake-consumer.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
meson install -C "$build" --destdir "$tmp/root" >/dev/null
config=$(find "$tmp/root" -name hgradConfig.cmake | head -n1)
[ -n "$config" ] || { echo "hgradConfig.cmake was not installed" >&2; exit 1; }
prefix=$(meson introspect --buildoptions "$build" |
    python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"))')

mkdir "$tmp/proj"
cp "$src/examples/third_derivative.c" "$tmp/proj/"
cat >"$tmp/proj/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.13)
project(hgrad_consumer C)
find_package(hgrad 0.1 REQUIRED)
message(STATUS "hgrad ${hgrad_VERSION}, headers in ${hgrad_INCLUDE_DIRS}")
add_executable(third_derivative third_derivative.c)
set_target_properties(third_derivative PROPERTIES C_STANDARD 11 C_STANDARD_REQUIRED ON)
target_compile_options(third_derivative PRIVATE -Wall -Wextra -Wpedantic -Werror)
target_link_libraries(third_derivative PRIVATE hgrad::hgrad)
if(TARGET hgrad::hgrad_static)
  add_executable(third_derivative_static third_derivative.c)
  set_target_properties(third_derivative_static PROPERTIES C_STANDARD 11 C_STANDARD_REQUIRED ON)
  target_link_libraries(third_derivative_static PRIVATE hgrad::hgrad_static)
endif()
find_package(hgrad 9.0 QUIET)
if(hgrad_FOUND)
  message(FATAL_ERROR "find_package(hgrad 9.0) accepted version ${hgrad_VERSION}")
endif()
CMAKE
cmake -S "$tmp/proj" -B "$tmp/proj/build" -DCMAKE_PREFIX_PATH="$tmp/root$prefix" >"$tmp/cmake.log" 2>&1 ||
    { cat "$tmp/cmake.log"; exit 1; }
grep 'hgrad 0' "$tmp/cmake.log"
cmake --build "$tmp/proj/build" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; exit 1; }

libdir=$(dirname "$(find "$tmp/root" -name 'libhgrad.*' | head -n1)")
ran=0
if [ -x "$tmp/proj/build/third_derivative" ]; then
    LD_LIBRARY_PATH="$libdir" "$tmp/proj/build/third_derivative"
    ran=$((ran + 1))
fi
if [ -x "$tmp/proj/build/third_derivative_static" ]; then
    if ldd "$tmp/proj/build/third_derivative_static" | grep -q libhgrad; then
        echo "third_derivative_static is linked to libhgrad.so" >&2
        exit 1
    fi
    "$tmp/proj/build/third_derivative_static"
    ran=$((ran + 1))
fi
[ "$ran" -gt 0 ] || { echo "nothing was built" >&2; exit 1; }
echo "CMake find_package(hgrad) build outside the tree: ok ($ran programs)"
