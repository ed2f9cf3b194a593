#!/usr/bin/env python3
"""Write the .npy fixtures of tests/test_io.c with NumPy.

Run from this folder with Debian's python3-numpy:  python3 make_npy_fixtures.py
The expected contents are spelled out in tests/test_io.c (numpy_written_fixtures).
"""
import numpy as np

values = np.array([[1.5, -2.25, 3.0], [0.125, 1e-3, -7.0]])
np.save("f4.npy", values.astype("<f4"))
np.save("f8.npy", values.astype("<f8"))
np.save("i4.npy", np.array([[1, -2, 3], [2147483647, -2147483648, 0]], dtype="<i4"))
np.save("i8.npy", np.array([7, -1, 2147483647, 0], dtype="<i8"))
np.save("u1.npy", np.array([[0, 255], [17, 128]], dtype="u1"))
np.save("scalar.npy", np.array(2.5))
np.save("big_i8.npy", np.array([1, 2 ** 40], dtype="<i8"))  # does not fit in i32
np.save("fortran.npy", np.asfortranarray(values))
np.save("big_endian.npy", values.astype(">f8"))
with open("v2.npy", "wb") as f:  # format 2.0 header
    np.lib.format.write_array(f, values, version=(2, 0))
with open("v3.npy", "wb") as f:  # format 3.0 header (utf-8 dict)
    np.lib.format.write_array(f, np.arange(6, dtype="<i4").reshape(3, 2), version=(3, 0))
