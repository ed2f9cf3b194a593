#!/usr/bin/env python3
"""mpi_compare.py MPIRUN PROGRAM DATA OUTDIR: runs the MPI example on 1, 2
and 3 ranks with the same small settings and checks that the gathered
dE_val/dw_i agree (to 1e-12 relative; the sums over ranks differ from one
rank's sums only in rounding). Exit 77 (skip) without the data."""
import array
import ast
import os
import struct
import subprocess
import sys


def load_f64(path):
    """A 1-D little-endian float64 .npy file as a list (no NumPy needed)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:6] != b"\x93NUMPY":
        raise ValueError(path + ": not a .npy file")
    major = data[6]
    hlen, start = (struct.unpack("<H", data[8:10])[0], 10) if major == 1 else (struct.unpack("<I", data[8:12])[0], 12)
    header = ast.literal_eval(data[start:start + hlen].decode("latin1"))
    if header["descr"] != "<f8" or len(header["shape"]) != 1:
        raise ValueError(path + ": expected a 1-D <f8 array, got %r" % (header,))
    values = array.array("d")
    values.frombytes(data[start + hlen:])
    return list(values)


def main():
    mpirun, program, data, outdir = sys.argv[1:5]
    if not os.path.exists(os.path.join(data, "train-images-idx3-ubyte.gz")):
        print("no data at", data)
        return 77
    results = {}
    for np_ in (1, 2, 3):
        out = os.path.join(outdir, "mpi_dw_np%d.npy" % np_)
        cmd = [mpirun, "-np", str(np_), program, "--data", data, "--train-limit", "640", "--batch", "32",
               "--epochs", "1", "--steps", "4", "--val", "200", "--out", out]
        print(" ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
        results[np_] = load_f64(out)
    ref = results[1]
    scale = max(abs(v) for v in ref)
    ok = len(ref) == 4 * 32 and all(v == v and abs(v) != float("inf") for v in ref) and scale > 0
    print("np 1: %d values, max |dE/dw| %.3g" % (len(ref), scale))
    for np_ in (2, 3):
        other = results[np_]
        diff = max(abs(a - b) for a, b in zip(other, ref)) / scale
        print("np %d vs np 1: max relative difference %.2g" % (np_, diff))
        ok = ok and len(other) == len(ref) and diff <= 1e-12
    print("mpi_compare: %s" % ("1 passed, 0 failed" if ok else "0 passed, 1 failed"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
