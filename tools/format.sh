#!/usr/bin/env bash
# tools/format.sh [--check] [FILE...]
# Formats the project's C sources and headers with clang-format and the
# repository's .clang-format (written for clang-format 14, Debian 12's
# `clang-format` package; other versions may format some lines differently).
#   tools/format.sh            rewrite every C file of the repository in place
#                              (and the Markdown code blocks quoted from them,
#                              and docs/api, which is generated from headers)
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
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
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
    # Code blocks of the Markdown files that are verbatim copies of a C file
    # (docs/custom-ops.md quotes examples/custom_op.c, and a test checks it)
    # follow their source; the API pages are regenerated from the headers.
    python3 - "$cf" "${files[@]}" <<'PY'
import glob, os, re, subprocess, sys

cf, files = sys.argv[1], sys.argv[2:]
before = {f: open(f, encoding="utf-8").read() for f in files}
# (docs/api/ is regenerated below)
mds = [m for m in ["README.md", "CONTRIBUTING.md"] + sorted(glob.glob("docs/**/*.md", recursive=True))
       if os.path.isfile(m) and not m.startswith("docs/api/")]
blocks = []  # (markdown file, start, end, block text, C file that holds it)
for md in mds:
    text = open(md, encoding="utf-8").read()
    for m in re.finditer(r"```c\n(.*?)```", text, re.S):
        src = next((f for f in files if m.group(1) and m.group(1) in before[f]), None)
        if src:
            blocks.append((md, m.start(1), m.end(1), m.group(1), src))
subprocess.run([cf, "-i", "--style=file"] + files, check=True)
print(f"formatted {len(files)} files with {cf}")


def squeeze(s):
    return "".join(c for c in s if not c.isspace())


def formatted_block(block, text):
    """The whole lines of the formatted text holding the block's tokens, or None."""
    pos = [i for i, c in enumerate(text) if not c.isspace()]
    flat, want = "".join(text[i] for i in pos), squeeze(block)
    k = flat.find(want)
    if not want or k < 0:
        return None
    a = text.rfind("\n", 0, pos[k]) + 1
    b = text.find("\n", pos[k + len(want) - 1])
    out = text[a:] if b < 0 else text[a:b + 1]
    return out if squeeze(out) == want else None


after = {}
for md in sorted({b[0] for b in blocks}):
    text = open(md, encoding="utf-8").read()
    changed = 0
    for _, start, end, block, src in sorted((b for b in blocks if b[0] == md), key=lambda b: -b[1]):
        if src not in after:
            after[src] = open(src, encoding="utf-8").read()
        new = formatted_block(block, after[src])
        if new is None:
            print(f"format.sh: {md}: a code block from {src} no longer matches it: update it by hand", file=sys.stderr)
        elif new != block:
            text = text[:start] + new + text[end:]
            changed += 1
    if changed:
        open(md, "w", encoding="utf-8").write(text)
        print(f"{md}: {changed} code blocks follow {', '.join(sorted({b[4] for b in blocks if b[0] == md}))}")
PY
    python3 tools/apidoc.py generate --root "$root" >/dev/null
    echo "docs/api regenerated from the headers"
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
