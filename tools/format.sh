#!/usr/bin/env bash
# tools/format.sh [--check] [FILE...]
# Formats the project's C sources and headers with clang-format and the
# repository's .clang-format (written for clang-format 14, Debian 12's
# `clang-format` package; other versions may format some lines differently).
#   tools/format.sh            rewrite every C file of the repository in place
#   tools/format.sh --check    change nothing; list the files that are not
#                              formatted and exit 1 if there are any
#   tools/format.sh [--check] FILE...   only these files
# The files are the tracked *.c and *.h (git ls-files), or, outside a git
# checkout, those under src, include, tests, examples and bench. CLANG_FORMAT
# names another binary (default: clang-format-14 if present, else
# clang-format).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

check=0
if [ "${1:-}" = "--check" ]; then
    check=1
    shift
fi
case "${1:-}" in
-h | --help)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
-*)
    echo "format.sh: unknown option $1 (try --help)" >&2
    exit 2
    ;;
esac

cf=${CLANG_FORMAT:-}
if [ -z "$cf" ]; then
    if command -v clang-format-14 >/dev/null; then
        cf=clang-format-14
    else
        cf=clang-format
    fi
fi
if ! command -v "$cf" >/dev/null; then
    echo "format.sh: $cf not found (Debian: apt-get install clang-format)" >&2
    exit 2
fi
case "$("$cf" --version)" in
*"version 14."*) ;;
*) echo "format.sh: note: .clang-format is tuned for clang-format 14; this is $("$cf" --version)" >&2 ;;
esac

files=()
if [ $# -gt 0 ]; then
    files=("$@")
elif git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    while IFS= read -r f; do
        files+=("$f")
    done < <(git -C "$root" ls-files -- '*.c' '*.h')
else
    while IFS= read -r f; do
        files+=("$f")
    done < <(find src include tests examples bench -name '*.[ch]' -not -path 'tests/data/*' | sort)
fi
[ ${#files[@]} -gt 0 ] || { echo "format.sh: no C files found" >&2; exit 2; }

if [ $check = 0 ]; then
    "$cf" -i --style=file "${files[@]}"
    echo "formatted ${#files[@]} files with $cf"
    exit 0
fi

bad=0
for f in "${files[@]}"; do
    if ! "$cf" --style=file "$f" | cmp -s - "$f"; then
        echo "$f"
        bad=$((bad + 1))
    fi
done
if [ $bad -gt 0 ]; then
    echo "format.sh --check: $bad of ${#files[@]} files are not formatted (run tools/format.sh)" >&2
    exit 1
fi
echo "format.sh --check: all ${#files[@]} files formatted"
