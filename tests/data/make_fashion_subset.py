#!/usr/bin/env python3
"""Writes tests/data/fashion-mnist/: the first N images and labels of
Fashion-MNIST's test set (t10k), unchanged, as gzip-compressed IDX files with
the same names as the full set, from Debian's dataset-fashion-mnist
(/usr/share/datasets/fashion-mnist) or the directory given.

    python3 tests/data/make_fashion_subset.py [SOURCE_DIR] [N]

The gzip header carries no name or time, so the output is reproducible.
tests/test_fashion_mnist.c checks that the subset equals the first N rows of
the installed set when that is present."""
import gzip
import os
import struct
import sys

src = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
n = int(sys.argv[2]) if len(sys.argv) > 2 else 100
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fashion-mnist")
os.makedirs(out, exist_ok=True)
for name, per_item in (("t10k-images-idx3-ubyte", 28 * 28), ("t10k-labels-idx1-ubyte", 1)):
    with gzip.open(os.path.join(src, name + ".gz"), "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    dims = list(struct.unpack(">" + "I" * ndim, data[4:header]))
    assert dims[0] >= n, f"{name}: only {dims[0]} items"
    dims[0] = n
    body = data[header:header + n * per_item]
    raw = struct.pack(">I", magic) + struct.pack(">" + "I" * ndim, *dims) + body
    with open(os.path.join(out, name + ".gz"), "wb") as f:
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=9) as g:
            g.write(raw)
    print(f"{name}.gz: {n} of {data[4:8] and struct.unpack('>I', data[4:8])[0]} items")
