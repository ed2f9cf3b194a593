#!/usr/bin/env bash
# Build and run the libFuzzer targets.
#   tests/fuzz/run.sh [SECONDS] [TARGET...]
# SECONDS per target (default 60); targets: fuzz_npy fuzz_idx fuzz_ops
# fuzz_files fuzz_case (all by default; fuzz_files starts from the npy and
# idx seeds, fuzz_case's output is silenced with -close_fd_mask=3; both
# write without fsync, hg_io_sync_writes_for_fuzzing in src/io/file.h: a
# synced save took ~20 ms against ~4 ms here). Each target starts from its seed corpus (tests/fuzz/corpus/)
# plus what earlier runs found (build-fuzz/corpus/<target>/, kept between
# runs); crashes go to build-fuzz/artifacts/. Prints the executions per target
# and exits non-zero if any target found a crash, leak, timeout or sanitizer
# report. Environment: FUZZ_OUT (default build-fuzz), FUZZ_JOBS (parallel
# workers per target, default 1), extra libFuzzer flags in FUZZ_FLAGS (they
# come last and win: on a heavily loaded machine, FUZZ_FLAGS=-timeout=120).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_npy fuzz_idx fuzz_ops fuzz_files fuzz_case)
out=${FUZZ_OUT:-$root/build-fuzz}
jobs=${FUZZ_JOBS:-1}

"$here/build.sh" "$out" >/dev/null
export OPENBLAS_NUM_THREADS=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
mkdir -p "$out/artifacts"

cd "$out"
status=0
summary=()
for t in "${targets[@]}"; do
    corpus="$out/corpus/$t"
    mkdir -p "$corpus"
    log="$out/$t.log"
    seeds=("$here/corpus/$t")
    extra=()
    case "$t" in
    fuzz_files) seeds=("$here/corpus/fuzz_npy" "$here/corpus/fuzz_idx") ;;
    fuzz_case) extra=(-close_fd_mask=3) ;;
    esac
    set +e
    # -timeout: one input taking longer than 20 s is a finding; the outer
    # timeout only guards against a hang of libFuzzer itself.
    if [ "$jobs" -gt 1 ]; then
        timeout $((secs + 120)) "$out/$t" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2560 \
            -print_final_stats=1 -artifact_prefix="$out/artifacts/$t-" -jobs="$jobs" -workers="$jobs" \
            "${extra[@]}" ${FUZZ_FLAGS:-} "$corpus" "${seeds[@]}" >"$log" 2>&1
    else
        timeout $((secs + 120)) "$out/$t" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2560 \
            -print_final_stats=1 -artifact_prefix="$out/artifacts/$t-" \
            "${extra[@]}" ${FUZZ_FLAGS:-} "$corpus" "${seeds[@]}" >"$log" 2>&1
    fi
    rc=$?
    set -e
    # With -jobs, each worker logs to fuzz-N.log in the current directory.
    shopt -s nullglob
    worker_logs=("$out"/fuzz-*.log)
    shopt -u nullglob
    execs=$(awk '/stat::number_of_executed_units/ {s += $2} END {print s + 0}' "$log" "${worker_logs[@]}")
    rm -f "${worker_logs[@]}"
    cov=$(awk '/cov: / {for (i = 1; i < NF; i++) if ($i == "cov:") c = $(i + 1)} END {print c}' "$log")
    files=$(find "$corpus" -type f | wc -l)
    if [ "$rc" -ne 0 ]; then
        status=1
        summary+=("$(printf '%-9s FAILED (exit %d) after %s executions; see %s' "$t" "$rc" "$execs" "$log")")
        grep -E 'ERROR|runtime error|SUMMARY|fuzz_' "$log" | head -n 20 >&2 || true
    else
        summary+=("$(printf '%-9s %10s executions in %ss, coverage %s, corpus %s inputs, no findings' \
            "$t" "$execs" "$secs" "${cov:-?}" "$files")")
    fi
done
printf '%s\n' "${summary[@]}"
exit $status
