#!/usr/bin/env bash
# Build the libFuzzer targets with clang, ASan and UBSan, compiling the
# library's sources directly into each target (no meson needed).
#   tests/fuzz/build.sh [OUTDIR]        (default: build-fuzz)
# Needs clang and libFuzzer (Debian: clang libclang-rt-14-dev), a CBLAS
# (libopenblas-dev or libblas-dev) and zlib1g-dev. HGRAD_WERROR=1 makes
# warnings errors.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/build-fuzz}
mkdir -p "$out"
CC=${CC:-clang}

blas_libs=$(pkg-config --libs openblas 2>/dev/null || pkg-config --libs blas-netlib 2>/dev/null || echo -lblas)
blas_cflags=$(pkg-config --cflags openblas 2>/dev/null || pkg-config --cflags blas-netlib 2>/dev/null || true)
zlib_libs=$(pkg-config --libs zlib 2>/dev/null || echo -lz)

# The project's warnings (meson.build); HGRAD_WERROR=1 (CI) makes them errors.
cflags=(-std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 -fno-omit-frame-pointer
        -Wall -Wextra -Wpedantic -Wconversion -Wshadow
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
        -I"$root/include" -I"$root/src" $blas_cflags)
[ "${HGRAD_WERROR:-0}" = 1 ] && cflags+=(-Werror)
srcs=()
for f in "$root"/src/*.c "$root"/src/ops/*.c "$root"/src/kernels/*.c "$root"/src/io/*.c; do
    [ -f "$f" ] && srcs+=("$f")
done

# Objects once (with -fsanitize=fuzzer-no-link), then one link per target.
objdir="$out/obj"
mkdir -p "$objdir"
lib_cflags=("${cflags[@]/-fsanitize=fuzzer,address,undefined/-fsanitize=fuzzer-no-link,address,undefined}")
objs=()
pids=()
for f in "${srcs[@]}"; do
    rel=${f#"$root"/src/}
    o="$objdir/${rel//\//_}.o"
    objs+=("$o")
    if [ ! -f "$o" ] || [ "$f" -nt "$o" ] || [ "$root/src/internal.h" -nt "$o" ]; then
        "$CC" "${lib_cflags[@]}" -c "$f" -o "$o" &
        pids+=($!)
    fi
done
for p in "${pids[@]}"; do wait "$p"; done

for target in fuzz_npy fuzz_idx fuzz_ops fuzz_files; do
    "$CC" "${cflags[@]}" "$here/$target.c" "${objs[@]}" $blas_libs $zlib_libs -lm -ldl -o "$out/$target"
    echo "built $out/$target"
done
# The MNIST example's --case loader and run, with its own sources.
mnist="$root/examples/mnist"
"$CC" "${cflags[@]}" -I"$mnist" "$here/fuzz_case.c" "$mnist/crosscheck.c" "$mnist/hyper.c" "${objs[@]}" \
    $blas_libs $zlib_libs -lm -ldl -o "$out/fuzz_case"
echo "built $out/fuzz_case"
