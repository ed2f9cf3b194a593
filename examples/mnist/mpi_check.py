#!/usr/bin/env python3
"""mpi_check.py MODE MPIRUN PROGRAM DATA OUTDIR: mnist_hypergrad under mpirun
on Debian's Fashion-MNIST at a small size (320 training images, 2 epochs:
the hypergradient through the last epoch's 10 Adam steps; exit 77, a skip,
without the data).

  fd      -np 1 and -np 3 (uneven shards of every batch and of the
          validation rows) each pass the finite-difference check to 1e-6
          (the program exits 3 otherwise), and their influence.npy agree to
          1e-10 relative (the sums over ranks are grouped differently, so
          not bitwise).
  repeat  one process (no mpirun) and -np 2 twice: the two -np 2 files are
          bitwise equal, and agree with the single process to 1e-10.
  errors  a failure on one rank never hangs the others: ranks started with
          different command lines, and one rank whose data folder holds a
          malformed file, both end every rank with an error status (each
          run under a 120 s timeout, times $HGRAD_TIMEOUT_SCALE) and rank
          0's report of the failing rank's message.

No NumPy needed: the .npy files are read here."""
import array
import ast
import os
import struct
import subprocess
import sys

SMALL = ["--epochs", "2", "--train-limit", "320", "--val", "200", "--snapshots", "3"]
# the hang guard of one mpirun; scaled like meson's --timeout-multiplier
# (HGRAD_TIMEOUT_SCALE, e.g. 3 for sanitizer builds)
TIMEOUT = 120 * float(os.environ.get("HGRAD_TIMEOUT_SCALE", "1"))


def load_f64(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:6] != b"\x93NUMPY":
        raise ValueError(path + ": not a .npy file")
    hlen, start = (struct.unpack("<H", data[8:10])[0], 10) if data[6] == 1 else (struct.unpack("<I", data[8:12])[0], 12)
    header = ast.literal_eval(data[start:start + hlen].decode("latin1"))
    if header["descr"] != "<f8" or len(header["shape"]) != 1:
        raise ValueError(path + ": expected a 1-D <f8 array, got %r" % (header,))
    values = array.array("d")
    values.frombytes(data[start + hlen:])
    return values


def run(cmd, expect=0):
    print("$ " + " ".join(cmd), flush=True)
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        print("FAILED: no exit within %g s (a hang)" % TIMEOUT)
        sys.exit(1)
    out = p.stdout.decode("utf-8", "replace").replace("\r", "\n")
    # progress bars (drawn when mpirun gives the ranks a terminal) end with ESC[K
    lines = [l.replace("\x1b[K", "") for l in out.split("\n") if l.strip() and not l.endswith("\x1b[K")]
    print("\n".join([l for l in lines[:-12] if "finite-difference check" in l] + lines[-12:]))
    ok = p.returncode == expect if expect is not None else p.returncode != 0
    if not ok:
        print("FAILED: exit status %d, expected %s" % (p.returncode, expect if expect is not None else "an error"))
        sys.exit(1)
    return out


def relative(a, b):
    scale = max(abs(v) for v in a)
    if len(a) != len(b) or not scale > 0 or any(v != v for v in b):
        return float("inf")
    return max(abs(x - y) for x, y in zip(a, b)) / scale


def main():
    mode, mpirun, program, data, outdir = sys.argv[1:6]
    if not os.path.exists(os.path.join(data, "train-images-idx3-ubyte.gz")):
        print("no data at", data)
        return 77
    base = ["--data", data] + SMALL
    out = lambda tag: ["--out", os.path.join(outdir, "mpi_%s.png" % tag),
                       "--influence", os.path.join(outdir, "mpi_%s.npy" % tag)]
    dw = lambda tag: load_f64(os.path.join(outdir, "mpi_%s.npy" % tag))
    if mode == "fd":
        fd = ["--fd-pixels", "1", "--fd-tolerance", "1e-6"]
        for np_ in (1, 3):
            text = run([mpirun, "-np", str(np_), program] + base + fd + out("fd%d" % np_))
            if "agrees to 1e-6" not in text:
                print("FAILED: no finite-difference check passed at -np %d" % np_)
                return 1
        d = relative(dw("fd1"), dw("fd3"))
        print("influence.npy, -np 3 vs -np 1: max relative difference %.3g" % d)
        return 0 if d <= 1e-10 else 1
    if mode == "repeat":
        none = ["--fd-pixels", "0"]
        run([program] + base + none + out("one"))
        run([mpirun, "-np", "2", program] + base + none + out("np2a"))
        run([mpirun, "-np", "2", program] + base + none + out("np2b"))
        one, a, b = dw("one"), dw("np2a"), dw("np2b")
        d = relative(one, a)
        print("-np 2 twice: %s; -np 2 vs one process: max relative difference %.3g"
              % ("bitwise equal" if a.tobytes() == b.tobytes() else "DIFFERENT", d))
        return 0 if a.tobytes() == b.tobytes() and d <= 1e-10 else 1
    if mode == "errors":
        none = ["--fd-pixels", "0"]
        text = run([mpirun, "-np", "1", program] + base + none + out("e1") + [":", "-np", "2", program] + base +
                   none + ["--hidden", "32,32"] + out("e1"), expect=2)
        if "different command lines" not in text:
            print("FAILED: no message about the command lines")
            return 1
        bad = os.path.join(outdir, "mpi_bad_data")
        os.makedirs(bad, exist_ok=True)
        for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                     "t10k-labels-idx1-ubyte"):
            with open(os.path.join(bad, name), "wb") as f:
                f.write(b"not an IDX file")
        # rank 2 reads the malformed folder through $HGRAD_DATA (same command line)
        rest = SMALL + none + out("e2")
        text = run([mpirun, "-np", "2", program] + rest + [":", "-np", "1", "env", "HGRAD_DATA=" + bad, program] +
                   rest, expect=None)
        # rank 0 repeats rank 2's message, indented: the one copy mpirun
        # cannot drop (rank 2's own line may be lost when the job ends)
        if "\n  rank 2: error: hg_idx_load" not in text or "another MPI rank" not in text:
            print("FAILED: rank 0's report of rank 2's message (  rank 2: error: ...) or its note is missing")
            return 1
        return 0
    print("unknown mode", mode)
    return 2


if __name__ == "__main__":
    sys.exit(main())
