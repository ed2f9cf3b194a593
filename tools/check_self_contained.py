#!/usr/bin/env python3
"""tools/check_self_contained.py [SOURCE_ROOT]

Fails when a file of the source tree refers to something outside it: a path
above the tree (the parent's shared folder), an absolute path of the machine
it was written on, or an issue-tracker number, or a planning note
that a reader of the repository cannot see. Build directories, .git and
subprojects/ are not read; tests/data holds binary fixtures and is skipped."""
import os
import re
import sys

# Built from pieces so that this file does not match itself.
PATTERNS = [
    (re.compile(r"\.\./" + "shared"), "a path outside the repository"),
    (re.compile(r"/" + "work/"), "an absolute path of the authoring machine"),
    (re.compile(r"\b" + "issue" + r"s? #?\d+", re.I), "an issue-tracker number"),
    (re.compile(r"\b(" + "NUMERICS" + "|" + "DESIGN" + r")\.md\b"), "a note that is not in the repository"),
]
SKIP_DIRS = {".git", "subprojects", "__pycache__"}


def is_build_dir(path):
    return os.path.exists(os.path.join(path, "meson-private")) or os.path.exists(os.path.join(path, "build.ninja"))


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
    problems = 0
    files = 0
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        dirnames[:] = sorted(d for d in dirnames
                             if d not in SKIP_DIRS and not is_build_dir(os.path.join(dirpath, d))
                             and os.path.join(rel_dir, d) not in ("tests/data", "./tests/data")
                             and not (rel_dir == "." and d.startswith("build")))
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
            except (UnicodeDecodeError, OSError):
                continue
            files += 1
            for lineno, line in enumerate(text.splitlines(), 1):
                for pattern, what in PATTERNS:
                    m = pattern.search(line)
                    if m:
                        print(f"{os.path.relpath(path, root)}:{lineno}: {what}: {m.group(0)!r}")
                        problems += 1
    print(f"{files} text files read, {problems} references outside the repository")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
