#!/usr/bin/env bash
# Runs the reliability regression tests against an OLD library, to show that
# they fail there for the reason they were written (not part of the suite or
# CI: it needs the git history).
#   tests/regress_old/run.sh [COMMIT] [NEW_BUILD]
# COMMIT: the old main to test (default 2463d3e, before the reliability
# fixes); NEW_BUILD: a configured build of this tree (default build/), for
# test_case_threads. The old tree is exported with git archive into a
# temporary directory and built there (library and examples); the current
# tests/test_io.c, test_arena.c and test_blas_threads.c are compiled against
# its headers through shim_old.h (new accessor names mapped to old ones,
# genuinely new API stubbed: it prints "missing feature" and fails), with
# keep_going.h: each test runs alone (ONLY=name), and every check is logged
# and the test continues, so all of its checks are reported ("KG ..." lines).
# A child process that hangs is killed by the test's own alarm ("hung").
# The old readers grow without bound on /dev/zero: the run is capped at
# 8 GB of address space. Finally the new test_case_threads runs the OLD
# mnist_hypergrad --case under OPENBLAS_NUM_THREADS=1 and 2.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
commit=${1:-2463d3e}
new_build=${2:-$root/build}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== building $commit in $work/old"
mkdir -p "$work/old"
git -C "$root" archive "$commit" | tar -x -C "$work/old" || exit 1
(cd "$work/old" && nice meson setup build -Dtests=disabled -Dbench=false >/dev/null &&
    nice meson compile -C build >/dev/null) || { echo "old build failed"; exit 1; }
lib="$work/old/build/src"

cflags=(-std=c11 -g -O0 -I"$here" -I"$work/old/include" -I"$root/tests" -include "$here/shim_old.h" -DKEEP_GOING)
libs=(-L"$lib" -lhgrad $(pkg-config --libs check) -lz -lm -lpthread)
gcc "${cflags[@]}" -c "$root/tests/testutil.c" -o "$work/testutil.o" || exit 1
for t in test_io test_arena test_blas_threads; do
    gcc "${cflags[@]}" -w -c "$root/tests/$t.c" -o "$work/$t.o" && gcc "$work/$t.o" "$work/testutil.o" "${libs[@]}" -o "$work/$t" ||
        exit 1
done

export LD_LIBRARY_PATH="$lib" HGRAD_SOURCE_ROOT="$root" CK_DEFAULT_TIMEOUT=600 CK_TIMEOUT_MULTIPLIER=10 OPENBLAS_NUM_THREADS=1
ulimit -v 8000000
run() { # exe test
    echo "== $2"
    ONLY=$2 nice "$work/$1" 2>&1 | grep -E '^KG|shim|:E:|hung'
}
for t in mark_from_another_ctx_is_refused rewind_during_sweep_is_refused optimizer_rewound_past_is_stale \
    ctx_used_from_another_thread blas_thread_count; do
    run test_arena $t
done
for t in save_never_loses_files atomic_file_api loads_refuse_fifos_and_devices npy_header_nul_bytes \
    idx_gzip_bombs_bounded loads_charged_to_ctx_limit; do
    run test_io $t
done
run test_blas_threads pinned_blas_gives_the_same_bits
echo "== test_case_threads on the old mnist_hypergrad"
if [ -x "$new_build/examples/mnist/test_case_threads" ]; then
    env -u LD_LIBRARY_PATH "$new_build/examples/mnist/test_case_threads" \
        "$work/old/build/examples/mnist/mnist_hypergrad" 2>&1 | grep -E 'BLAS threads|FAIL|ok$'
else
    echo "no $new_build/examples/mnist/test_case_threads: build this tree first"
fi
