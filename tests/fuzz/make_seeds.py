#!/usr/bin/env python3
"""Write the seed corpora for the fuzz targets (tests/fuzz/corpus/<target>/).

npy: hand-built headers of every supported type and format version, plus
near misses; idx: raw and gzip files of each rank; ops: small programs in the
op-sequence fuzzer's byte language (see fuzz_ops.c: opcode numbers below)."""
import gzip
import os
import struct

here = os.path.dirname(os.path.abspath(__file__))


def out(target, name, data):
    d = os.path.join(here, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- .npy --------------------------------------------------------------------
def npy(descr, shape, data, version=1, fortran=False, extra=""):
    shp = "(" + "".join("%d, " % s for s in shape).rstrip(" ") + ")"
    if len(shape) == 1:
        shp = "(%d,)" % shape[0]
    d = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, %s}" % (descr, "True" if fortran else "False", shp, extra)
    pre = 10 if version == 1 else 12
    total = pre + len(d) + 1
    pad = (64 - total % 64) % 64
    h = (d + " " * pad + "\n").encode()
    head = b"\x93NUMPY" + bytes([version, 0])
    head += struct.pack("<H", len(h)) if version == 1 else struct.pack("<I", len(h))
    return head + h + data


def prod(s):
    p = 1
    for x in s:
        p *= x
    return p


fmt = {"<f4": "<%df", "<f8": "<%dd", "<i4": "<%di", "<i8": "<%dq", "|u1": "<%dB"}
for descr in fmt:
    for shape in [(), (3,), (2, 3), (0,), (2, 0, 3), (1, 1, 1, 2)]:
        n = prod(shape)
        vals = [i % 7 for i in range(n)]
        body = struct.pack(fmt[descr] % n, *vals)
        name = "%s_%s" % (descr[1:], "x".join(map(str, shape)) or "scalar")
        out("fuzz_npy", name + ".npy", npy(descr, shape, body))
out("fuzz_npy", "v2.npy", npy("<f8", (2, 2), struct.pack("<4d", 1, 2, 3, 4), version=2))
out("fuzz_npy", "v3.npy", npy("<f4", (2,), struct.pack("<2f", 1, 2), version=3))
out("fuzz_npy", "fortran.npy", npy("<f8", (2, 2), struct.pack("<4d", 1, 2, 3, 4), fortran=True))
out("fuzz_npy", "bigendian.npy", npy(">f8", (2,), struct.pack(">2d", 1, 2)))
out("fuzz_npy", "i8_range.npy", npy("<i8", (2,), struct.pack("<2q", 1, 1 << 40)))
out("fuzz_npy", "truncated.npy", npy("<f8", (4,), struct.pack("<3d", 1, 2, 3)))
out("fuzz_npy", "huge_shape.npy", npy("<f8", (1 << 40, 1 << 40), b""))
out("fuzz_npy", "rank7.npy", npy("<f4", (1,) * 7, struct.pack("<f", 1)))
out("fuzz_npy", "nan_inf.npy", npy("<f8", (3,), struct.pack("<3d", float("nan"), float("inf"), -0.0)))

# ---- IDX ---------------------------------------------------------------------
def idx(dims, typ=0x08, data=None):
    n = prod(dims)
    if data is None:
        data = bytes((i * 31) % 256 for i in range(n))
    return bytes([0, 0, typ, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + data


for dims in [(5,), (2, 3), (2, 2, 2), (1, 2, 2, 3), (0,), (3, 0, 2)]:
    name = "x".join(map(str, dims))
    out("fuzz_idx", "raw_" + name, idx(dims))
    out("fuzz_idx", "gz_" + name, gzip.compress(idx(dims), mtime=0))
out("fuzz_idx", "raw_labels", idx((10,), data=bytes(range(10))))
out("fuzz_idx", "gz_images", gzip.compress(idx((2, 4, 4)), mtime=0))
out("fuzz_idx", "raw_type_int", idx((2,), typ=0x0C, data=b"\0" * 8))
out("fuzz_idx", "raw_truncated", idx((4, 4))[:-3])
out("fuzz_idx", "gz_truncated", gzip.compress(idx((4, 4)), mtime=0)[:-6])
out("fuzz_idx", "gz_bomb", gzip.compress(idx((1 << 21,), data=b"\0" * (1 << 21)), mtime=0))
out("fuzz_idx", "raw_rank5", bytes([0, 0, 8, 5]) + b"\0\0\0\1" * 5 + b"\7")

# ---- op programs ---------------------------------------------------------------
(NEW, CREATE, BINARY, UNARY, REDUCE, SHAPE, SOFTMAX, INDEX, NN, TAPE_BEGIN, TAPE_END, WATCH, PAUSE, GRADIENT,
 MARK, REWIND, CLEAR, QUERY, OPT_STEP, OPTIMIZER, FUNC, CUSTOM, LAYOUT, CONV) = range(24)
F64, F32, I32 = 0, 3, 5
V = {x: x * 16 + 125 for x in range(-7, 8)}  # value byte for small integers


class Prog:
    def __init__(self, fail_at=0):
        self.b = [0x80 | fail_at if fail_at else 0]
        self.slot = 0

    def res(self):
        s = self.slot
        self.slot = (self.slot + 1) % 24
        return s

    def new(self, dtype, shape, vals):
        self.b += [NEW, dtype, len(shape)] + list(shape) + list(vals)
        return self.res()

    def op(self, code, *args):
        self.b += [code] + list(args)

    def bytes(self):
        return bytes(self.b)


def hessian_program():
    p = Prog()
    x = p.new(F64, [3], [V[1], V[-2], V[3]])
    p.op(TAPE_BEGIN, 0, 0)
    p.op(WATCH, 0, 0, x)
    p.op(TAPE_BEGIN, 0, 1)
    p.op(WATCH, 0, 1, x)
    p.b += [UNARY, 7, x, 0]; t = p.res()          # tanh
    p.b += [BINARY, 2, t, x]; m = p.res()         # mul
    p.b += [REDUCE, 0, m, 0]; s = p.res()         # sum
    p.op(TAPE_END, 1)
    p.b += [GRADIENT, 1, 1, s, x, x, x]; g = p.res()
    p.op(TAPE_END, 0)
    p.b += [REDUCE, 0, g, 0]; gs = p.res()
    p.b += [GRADIENT, 1, 0, gs, x, x, x]; p.res()
    return p


def mlp_hypergrad_program(kind):
    p = Prog()
    x = p.new(F64, [2, 3], [V[1], V[0], V[-1], V[2], V[1], V[-3]])
    lab = p.new(I32, [2], [2, 3])
    W = p.new(F64, [3, 2], [V[1], V[-1], V[2], V[0], V[-1], V[1]])
    p.op(TAPE_BEGIN, 0, 0)
    p.op(WATCH, 0, 0, x)
    p.op(TAPE_BEGIN, 0, 1)
    p.op(WATCH, 0, 1, W)
    p.b += [NN, 3, x, W, 25]; z = p.res()         # dense, no bias (slot 25 = NULL)
    p.b += [NN, 0, z, lab]; loss = p.res()        # softmax cross-entropy
    p.op(TAPE_END, 1)
    p.b += [GRADIENT, 1, 1, loss, W, W, W]; g = p.res()
    p.b += [OPT_STEP, kind | (1 << 6), V[1], W, W, g, g]; W1 = p.res()
    p.b += [NN, 3, x, W1, 25]; z1 = p.res()
    p.b += [NN, 0, z1, lab]; e = p.res()
    p.op(TAPE_END, 0)
    p.b += [GRADIENT, 1, 0, e, x, x, x]; p.res()
    return p


def rewind_program():
    p = Prog()
    x = p.new(F64, [2], [V[1], V[2]])
    p.op(TAPE_BEGIN, 0, 0)
    p.op(WATCH, 0, 0, x)
    p.op(MARK)
    y = p.new(F32, [2, 2], [V[1]] * 4)
    p.op(WATCH, 0, 0, y)
    p.op(TAPE_BEGIN, 0, 1)
    p.b += [UNARY, 4, x, 0]; e = p.res()
    p.op(REWIND, 1)                              # refused: tape 1 is active
    p.op(CLEAR)
    p.op(TAPE_END, 1)
    p.op(REWIND, 1)                              # y, e and tape 1 stale
    p.b += [UNARY, 0, y, 0]; p.res()               # HG_ERR_STALE
    p.op(CLEAR)
    p.op(WATCH, 0, 1, x)                         # stale tape
    p.op(TAPE_END, 0)
    p.b += [GRADIENT, 1, 0, x, x, x, x]
    p.op(REWIND, 0)                              # reset
    return p


def misuse_program():
    p = Prog()
    a = p.new(F64, [2, 3], [V[1]] * 6)
    b = p.new(F32, [3], [V[2]] * 3)
    i = p.new(I32, [], [3])
    p.b += [BINARY, 0, a, b]; p.res()
    p.op(CLEAR)
    p.b += [BINARY, 9, a, a]; p.res()
    p.op(CLEAR)
    p.op(TAPE_BEGIN, 0, 0)
    p.op(TAPE_BEGIN, 1, 1)
    p.op(TAPE_END, 0)                            # not innermost
    p.op(CLEAR)
    p.b += [GRADIENT, 1, 1, a, a, a, a]          # still recording
    p.op(CLEAR)
    p.op(WATCH, 0, 1, i)                         # i32
    p.op(PAUSE, 0, 1)
    p.op(PAUSE, 1, 1)
    p.op(PAUSE, 1, 1)                            # not paused
    p.b += [NEW, F64, 252, 254, 254, 254]        # huge extents: overflow / OOM
    p.res()
    p.op(CLEAR)
    p.b += [NEW, 7, 1, 2]; p.res()               # invalid dtype
    return p


def func_program():
    p = Prog()
    x = p.new(F64, [2, 2], [V[1], V[-1], V[2], V[0]])
    y = p.new(F64, [2, 2], [V[3], V[1], V[-2], V[1]])
    for k in (0, 1, 2, 3, 4, 0x40 | 1, 0x80 | 2, 0x10 | 3):
        p.b += [FUNC, k, x, y, x, y]; p.res(); p.res()
    p.b += [CUSTOM, 0, x]; sq = p.res()
    return p


def adam_training_program():
    p = Prog()
    w = p.new(F32, [2, 2], [V[1], V[-1], V[2], V[0]])
    g = p.new(F32, [2, 2], [V[1]] * 4)
    p.op(OPTIMIZER, 1 | (2 << 1) | (1 << 3), w, w)
    p.op(OPTIMIZER, 0, g, g)
    p.op(OPTIMIZER, 0, g, g)
    return p


def cnn_program():
    """conv2d -> max_pool -> sum under two tapes, the weight gradient
    concatenated with the weight, then the gradient w.r.t. the input."""
    p = Prog()
    x = p.new(F64, [1, 1, 4, 4], [V[(i * 3) % 7 - 3] for i in range(16)])
    w = p.new(F64, [2, 1, 2, 2], [V[1], V[-1], V[2], V[0], V[-2], V[1], V[0], V[3]])
    p.op(TAPE_BEGIN, 0, 0)
    p.op(WATCH, 0, 0, x)
    p.op(TAPE_BEGIN, 0, 1)
    p.op(WATCH, 0, 1, w)
    p.b += [CONV, 16, x, w, 25] + [0] * 12 + [0, 0]; y = p.res()                 # conv2d, default params
    p.b += [CONV, 3, y, 25, 25] + [0, 0, 0, 2, 0, 0] * 2 + [0, 0]; m = p.res()   # max_pool 2x2
    p.b += [REDUCE, 0, m, 0]; s = p.res()
    p.op(TAPE_END, 1)
    p.b += [GRADIENT, 1, 1, s, w, w, w]; g = p.res()
    p.b += [LAYOUT, 0, 0, g, w, w, 1] + [0] * 24; c = p.res()                    # concat(g, w), axis 0
    p.b += [UNARY, 7, c, 0]; t = p.res()
    p.b += [REDUCE, 0, t, 0]; s2 = p.res()
    p.op(TAPE_END, 0)
    p.b += [GRADIENT, 1, 0, s2, x, x, x]; p.res()
    return p


out("fuzz_ops", "hessian", hessian_program().bytes())
for kind, name in ((0, "sgd"), (1, "momentum"), (2, "adam")):
    out("fuzz_ops", "hypergrad_" + name, mlp_hypergrad_program(kind).bytes())
out("fuzz_ops", "rewind", rewind_program().bytes())
out("fuzz_ops", "misuse", misuse_program().bytes())
out("fuzz_ops", "func", func_program().bytes())
out("fuzz_ops", "adam_training", adam_training_program().bytes())
out("fuzz_ops", "cnn", cnn_program().bytes())
q = hessian_program()
q.b[0] = 0x80 | 3
out("fuzz_ops", "hessian_oom", q.bytes())


# ---- --case directories (fuzz_case.c: optimizer/dtype byte, then records) ---
case_names = ["W1", "b1", "W2", "b2", "W3", "b3", "x_train", "y_train", "x_val", "y_val", "t", "uW1", "ub1", "mW1",
              "mb1", "vW1", "vb1"]


def f8(shape, scale=0.1):
    n = prod(shape)
    return npy("<f8", shape, struct.pack("<%dd" % n, *[scale * ((i * 7) % 5 - 2) for i in range(n)]))


def case(first, files):
    b = bytes([first])
    for name, data in files:
        b += bytes([case_names.index(name)]) + struct.pack("<H", len(data)) + data
    return b


labels = npy("<i4", (2,), struct.pack("<2i", 0, 1))
two_layer = [("W1", f8((4, 3))), ("b1", f8((3,))), ("W2", f8((3, 2))), ("b2", f8((2,))), ("x_train", f8((2, 4), 1)),
             ("y_train", labels), ("x_val", f8((2, 4), 1)), ("y_val", labels)]
for first in range(6):  # sgd, momentum, adam x f64, f32
    out("fuzz_case", "two_layer_%d" % first, case(first, two_layer))
warm = two_layer + [("t", npy("<i8", (), struct.pack("<q", 3))), ("mW1", f8((4, 3))), ("mb1", f8((3,)))]
out("fuzz_case", "warm_adam", case(2, warm))
out("fuzz_case", "one_layer", case(0, [("W1", f8((4, 2))), ("b1", f8((2,)))] + two_layer[4:]))
out("fuzz_case", "bad_shapes", case(1, [("W1", f8((4, 3))), ("b1", f8((2,)))] + two_layer[2:]))
