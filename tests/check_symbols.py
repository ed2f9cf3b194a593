#!/usr/bin/env python3
"""check_symbols.py INCLUDE_DIR LIB [LIB...]

Checks that each library file given (libhgrad.a and/or libhgrad.so; for
libhgrad-mpi, the functions of hgrad/mpi.h) defines,
as global symbols, exactly the functions declared HG_API in the headers under
INCLUDE_DIR: no internal hg_* name (hg_arena_alloc, hg_unary_exp, ...) may be
global in the static archive, where it could clash in a user's static link,
and every HG_API function must be there. Uses nm (binutils)."""
import os
import re
import subprocess
import sys

HG_API_DECL = re.compile(r"\bHG_API\b[^;(]*?\b(hg_\w+)\s*\(", re.S)


def api_names(include_dir, mpi):
    """HG_API functions of the core headers, or (mpi) of hgrad/mpi.h alone:
    libhgrad-mpi is a library of its own."""
    names = set()
    for root, _, files in os.walk(include_dir):
        for f in files:
            if f.endswith(".h") and (f == "mpi.h") == mpi:
                with open(os.path.join(root, f), encoding="utf-8") as fh:
                    text = re.sub(r"/\*.*?\*/", " ", fh.read(), flags=re.S)
                names.update(HG_API_DECL.findall(text))
    return names


def defined_globals(lib):
    args = ["nm", "--defined-only", "-g"]
    if lib.endswith(".so") or ".so." in lib:
        args.append("-D")
    out = subprocess.run(args + [lib], check=True, capture_output=True, text=True).stdout
    syms = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            syms.add(parts[2])
    return syms


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    core_api = api_names(sys.argv[1], False)
    if len(core_api) < 50:
        sys.exit(f"only {len(core_api)} HG_API functions found under {sys.argv[1]}: parser broken?")
    mpi_api = api_names(sys.argv[1], True)
    bad = False
    for lib in sys.argv[2:]:
        api = mpi_api if os.path.basename(lib).startswith("libhgrad-mpi") else core_api
        syms = defined_globals(lib)
        extra = sorted(syms - api)
        missing = sorted(api - syms)
        print(f"{lib}: {len(syms)} global symbols, {len(api)} HG_API functions in the headers")
        if extra:
            bad = True
            print(f"  {len(extra)} global symbols that are not HG_API: {' '.join(extra)}")
        if missing:
            bad = True
            print(f"  {len(missing)} HG_API functions not defined: {' '.join(missing)}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
