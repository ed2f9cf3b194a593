/* Data I/O: .npy read/write for every dtype, files written by NumPy, a file
 * written here read by NumPy, IDX raw and gzip, and every malformed-file case
 * giving a clean error; files never lost by a failed save, FIFOs and devices
 * refused without blocking, gzip bombs refused with bounded memory. Real
 * Fashion-MNIST files: test_fashion_mnist.c. */
#define _XOPEN_SOURCE 700 /* mknod, S_IFCHR, symlink, truncate */
#define _DEFAULT_SOURCE
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

static char tmpdir[] = "/tmp/hgrad_io_XXXXXX";

static const char *tmp(const char *name)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return path;
}

/* tmp() into a buffer of the caller's (for several paths at once). */
#define TMP(buf, name) (snprintf((buf), sizeof(buf), "%s/%s", tmpdir, (name)), (const char *)(buf))

static const char *fixture(const char *name)
{
    static char path[4096];
    const char *root = getenv("HGRAD_SOURCE_ROOT");
    snprintf(path, sizeof path, "%s/tests/data/%s", root ? root : "..", name);
    return path;
}

START_TEST(numpy_written_fixtures)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    const double v[6] = {1.5, -2.25, 3.0, 0.125, 1e-3, -7.0};
    hg_tensor *f8 = hg_npy_load(ctx, fixture("f8.npy"));
    ck_assert_msg(f8 != NULL, "%s", hg_ctx_error(ctx));
    ck_assert_int_eq(hg_tensor_dtype(f8), HG_F64);
    ck_assert_int_eq(hg_tensor_rank(f8), 2);
    ck_assert_int_eq(hg_tensor_dim(f8, 1), 3);
    for (int i = 0; i < 6; i++)
        ck_assert_double_eq(hg_get(f8, i), v[i]);
    hg_tensor *f4 = hg_npy_load(ctx, fixture("f4.npy"));
    ck_assert_int_eq(hg_tensor_dtype(f4), HG_F32);
    for (int i = 0; i < 6; i++)
        ck_assert_double_eq(hg_get(f4, i), (double)(float)v[i]);
    hg_tensor *i4 = hg_npy_load(ctx, fixture("i4.npy"));
    ck_assert_int_eq(hg_tensor_dtype(i4), HG_I32);
    ck_assert_int_eq(hg_tensor_i32(i4)[3], 2147483647);
    ck_assert_int_eq(hg_tensor_i32(i4)[4], INT32_MIN);
    hg_tensor *i8 = hg_npy_load(ctx, fixture("i8.npy"));
    ck_assert_int_eq(hg_tensor_numel(i8), 4);
    ck_assert_int_eq(hg_tensor_i32(i8)[1], -1);
    ck_assert_int_eq(hg_tensor_i32(i8)[2], 2147483647);
    hg_tensor *u1 = hg_npy_load(ctx, fixture("u1.npy"));
    ck_assert_int_eq(hg_tensor_i32(u1)[1], 255);
    ck_assert_int_eq(hg_tensor_i32(u1)[2], 17);
    hg_tensor *sc = hg_npy_load(ctx, fixture("scalar.npy"));
    ck_assert_int_eq(hg_tensor_rank(sc), 0);
    ck_assert_double_eq(hg_item(sc), 2.5);
    hg_tensor *v2 = hg_npy_load(ctx, fixture("v2.npy"));
    ck_assert_msg(v2 != NULL, "%s", hg_ctx_error(ctx));
    ck_assert_double_eq(hg_get(v2, 5), -7.0);
    hg_tensor *v3 = hg_npy_load(ctx, fixture("v3.npy"));
    ck_assert_msg(v3 != NULL, "%s", hg_ctx_error(ctx));
    ck_assert_int_eq(hg_tensor_dim(v3, 0), 3);
    ck_assert_int_eq(hg_tensor_dim(v3, 1), 2);
    for (int k = 0; k < 6; k++)
        ck_assert_int_eq(hg_tensor_i32(v3)[k], k);
    ck_assert_ctx_ok(ctx);
    /* Rejected with clean errors. */
    ck_assert_ptr_null(hg_npy_load(ctx, fixture("big_i8.npy")));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_RANGE);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_npy_load(ctx, fixture("fortran.npy")));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "Fortran"));
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_npy_load(ctx, fixture("big_endian.npy")));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), ">f8"));
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_npy_load(ctx, fixture("no_such_file.npy")));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_IO);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(round_trips_every_dtype)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *f = T64(ctx, 3, SHAPE(2, 1, 3), 1.5, -2, 1e-300, 4, 5, 6.25);
    hg_tensor *i = hg_tensor_from(ctx, HG_I32, 1, SHAPE(4), (const int32_t[]){0, 255, 7, 128});
    const struct {
        const char *name;
        hg_tensor *t;
        hg_npy_type type;
    } cases[] = {{"f64.npy", f, HG_NPY_F64},
                 {"f32.npy", f, HG_NPY_F32},
                 {"i32.npy", i, HG_NPY_I32},
                 {"i64.npy", i, HG_NPY_I64},
                 {"u8.npy", i, HG_NPY_U8}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ck_assert_int_eq(hg_npy_save_as(tmp(cases[c].name), cases[c].t, cases[c].type), HG_OK);
        hg_tensor *back = hg_npy_load(ctx, tmp(cases[c].name));
        ck_assert_msg(back != NULL, "%s: %s", cases[c].name, hg_ctx_error(ctx));
        ck_assert_int_eq(hg_tensor_rank(back), hg_tensor_rank(cases[c].t));
        for (int64_t k = 0; k < hg_tensor_numel(back); k++) {
            double want = hg_get(cases[c].t, k);
            if (cases[c].type == HG_NPY_F32)
                want = (double)(float)want;
            ck_assert_msg(hg_get(back, k) == want, "%s[%lld]", cases[c].name, (long long)k);
        }
    }
    /* hg_npy_save keeps the dtype; rank 0 works. */
    ck_assert_int_eq(hg_npy_save(tmp("s.npy"), hg_scalar(ctx, HG_F32, -3.5)), HG_OK);
    hg_tensor *s = hg_npy_load(ctx, tmp("s.npy"));
    ck_assert_int_eq(hg_tensor_dtype(s), HG_F32);
    ck_assert_double_eq(hg_item(s), -3.5);
    /* Invalid writes. */
    ck_assert_int_eq(hg_npy_save_as(tmp("x.npy"), f, HG_NPY_U8), HG_ERR_DTYPE);
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_npy_save_as(tmp("x.npy"), hg_tensor_from(ctx, HG_I32, 1, SHAPE(1), (const int32_t[]){300}),
                                    HG_NPY_U8),
                     HG_ERR_RANGE);
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_npy_save_as("/nonexistent/dir/x.npy", f, HG_NPY_F64), HG_ERR_IO);
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_npy_save(NULL, f), HG_ERR_NULL);
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_npy_save(tmp("x.npy"), NULL), HG_ERR_NULL);
    hg_ctx_free(ctx);
}
END_TEST

/* A file written here, read back by NumPy. Run alone as `test_io numpy`
 * (the meson test io_numpy), which exits 77 (SKIP) without python3-numpy. */
START_TEST(numpy_reads_our_files)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *f = T64(ctx, 2, SHAPE(2, 2), 0.5, -1, 1e10, 3);
    hg_tensor *i = hg_tensor_from(ctx, HG_I32, 1, SHAPE(3), (const int32_t[]){-5, 0, 9});
    ck_assert_int_eq(hg_npy_save(tmp("py_f8.npy"), f), HG_OK);
    ck_assert_int_eq(hg_npy_save_as(tmp("py_i8.npy"), i, HG_NPY_I64), HG_OK);
    ck_assert_int_eq(hg_npy_save_as(tmp("py_f4.npy"), f, HG_NPY_F32), HG_OK);
    ck_assert_int_eq(hg_npy_save(tmp("py_i4.npy"), i), HG_OK);
    hg_tensor *u = hg_tensor_from(ctx, HG_I32, 2, SHAPE(1, 3), (const int32_t[]){0, 255, 17});
    ck_assert_int_eq(hg_npy_save_as(tmp("py_u1.npy"), u, HG_NPY_U8), HG_OK);
    ck_assert_int_eq(hg_npy_save(tmp("py_0d.npy"), hg_scalar(ctx, HG_F64, -0.25)), HG_OK);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import numpy as np; d='%s';"
             "a=np.load(d+'/py_f8.npy'); b=np.load(d+'/py_i8.npy'); c=np.load(d+'/py_f4.npy');"
             "assert a.dtype=='<f8' and a.shape==(2,2) and a.tolist()==[[0.5,-1.0],[1e10,3.0]];"
             "assert b.dtype=='<i8' and b.tolist()==[-5,0,9];"
             "assert c.dtype=='<f4' and c[1,0]==np.float32(1e10);"
             "e=np.load(d+'/py_i4.npy'); u=np.load(d+'/py_u1.npy'); z=np.load(d+'/py_0d.npy');"
             "assert e.dtype=='<i4' and e.tolist()==[-5,0,9];"
             "assert u.dtype=='u1' and u.shape==(1,3) and u.tolist()==[[0,255,17]];"
             "assert z.dtype=='<f8' and z.shape==() and z==-0.25\"",
             tmpdir);
    ck_assert_int_eq(system(cmd), 0);
    hg_ctx_free(ctx);
}
END_TEST

/* Header template with a dict of n bytes (which may hold NULs), for
 * malformed cases. */
static size_t npy_bytes_n(unsigned char *out, const char *dict, size_t n, size_t data_bytes)
{
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    out[8] = (unsigned char)(n & 0xff);
    out[9] = (unsigned char)(n >> 8);
    memcpy(out + 10, dict, n);
    memset(out + 10 + n, 0, data_bytes);
    return 10 + n + data_bytes;
}

/* The same with a NUL-terminated dict. */
static size_t npy_bytes(unsigned char *out, const char *dict, size_t data_bytes)
{
    return npy_bytes_n(out, dict, strlen(dict), data_bytes);
}

START_TEST(malformed_npy)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    unsigned char buf[1024];
    const struct {
        const char *dict;
        size_t data;
        hg_status want;
    } cases[] = {
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n", 16, HG_OK},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n", 15, HG_ERR_FORMAT},  /* truncated data */
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n", 17, HG_ERR_FORMAT},  /* trailing bytes */
        {"{'descr': '<c16', 'fortran_order': False, 'shape': (2,), }\n", 32, HG_ERR_FORMAT}, /* unknown dtype */
        {"{'descr': '<f8', 'fortran_order': True, 'shape': (2,), }\n", 16, HG_ERR_FORMAT},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1), }\n", 8, HG_ERR_FORMAT},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296,4294967296,4294967296), }\n", 8,
         HG_ERR_FORMAT},                                            /* overflow */
        {"{'descr': '<f8', 'shape': (2,), }\n", 16, HG_ERR_FORMAT}, /* missing key */
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,), 'extra': 1}\n", 16, HG_ERR_FORMAT},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }garbage\n", 16, HG_ERR_FORMAT},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (-2,), }\n", 16, HG_ERR_FORMAT},
        {"{'descr': '<f8' 'fortran_order': False, 'shape': (2,), }\n", 16, HG_ERR_FORMAT},
        {"{'descr': '<f8', 'fortran_order': Maybe, 'shape': (2,), }\n", 16, HG_ERR_FORMAT},
        {"['descr', '<f8']\n", 16, HG_ERR_FORMAT},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,", 16, HG_ERR_FORMAT},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t len = npy_bytes(buf, cases[c].dict, cases[c].data);
        hg_tensor *t = hg_npy_load_buffer(ctx, buf, len);
        ck_assert_msg(hg_ctx_status(ctx) == cases[c].want, "case %zu: got %s (%s)", c,
                      hg_status_name(hg_ctx_status(ctx)), hg_ctx_error(ctx));
        ck_assert((t != NULL) == (cases[c].want == HG_OK));
        if (cases[c].want != HG_OK)
            ck_assert_int_gt((int)strlen(hg_ctx_error(ctx)), 10);
        hg_ctx_clear_error(ctx);
    }
    /* Bad magic, short file, header length beyond the file, bad version. */
    size_t len = npy_bytes(buf, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n", 16);
    buf[1] = 'X';
    ck_assert_ptr_null(hg_npy_load_buffer(ctx, buf, len));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_FORMAT);
    hg_ctx_clear_error(ctx);
    buf[1] = 'N';
    ck_assert_ptr_null(hg_npy_load_buffer(ctx, buf, 9));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_FORMAT);
    hg_ctx_clear_error(ctx);
    buf[8] = 0xff;
    buf[9] = 0xff;
    ck_assert_ptr_null(hg_npy_load_buffer(ctx, buf, len));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "past the end"));
    hg_ctx_clear_error(ctx);
    buf[6] = 9;
    ck_assert_ptr_null(hg_npy_load_buffer(ctx, buf, len));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_FORMAT);
    hg_ctx_clear_error(ctx);
    /* Every truncation of a valid file is an error, never a read past it. */
    len = npy_bytes(buf, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }\n", 24);
    for (size_t cut = 0; cut < len; cut++) {
        unsigned char *copy = malloc(cut ? cut : 1);
        memcpy(copy, buf, cut);
        ck_assert_ptr_null(hg_npy_load_buffer(ctx, copy, cut));
        ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_FORMAT);
        hg_ctx_clear_error(ctx);
        free(copy);
    }
    ck_assert_ptr_null(hg_npy_load_buffer(ctx, NULL, 10));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_NULL);
    hg_ctx_clear_error(ctx);
    /* Format 2.0 and 3.0 headers (4-byte length): read, and a length past the end refused. */
    const char *dict = "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }\n";
    size_t n = strlen(dict);
    for (int major = 2; major <= 3; major++) {
        memcpy(buf, "\x93NUMPY", 6);
        buf[6] = (unsigned char)major;
        buf[7] = 0;
        buf[8] = (unsigned char)n;
        buf[9] = buf[10] = buf[11] = 0;
        memcpy(buf + 12, dict, n);
        const int32_t vals[2] = {-7, 123456};
        memcpy(buf + 12 + n, vals, 8); /* little-endian host assumed by this line only */
        hg_tensor *t = hg_npy_load_buffer(ctx, buf, 12 + n + 8);
        ck_assert_msg(t != NULL, "version %d: %s", major, hg_ctx_error(ctx));
        ck_assert_int_eq(hg_tensor_i32(t)[0], -7);
        ck_assert_int_eq(hg_tensor_i32(t)[1], 123456);
        buf[11] = 0x80; /* header length 2^31 + n */
        ck_assert_ptr_null(hg_npy_load_buffer(ctx, buf, 12 + n + 8));
        ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_FORMAT);
        hg_ctx_clear_error(ctx);
        ck_assert_ptr_null(hg_npy_load_buffer(ctx, buf, 11)); /* shorter than a 2.0 preamble */
        ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_FORMAT);
        hg_ctx_clear_error(ctx);
    }
    /* Every single-byte corruption of a valid file gives a tensor or a clean error. */
    len = npy_bytes(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }\n", 16);
    for (size_t at = 0; at < len; at++)
        for (int v = 0; v < 256; v += 51) {
            unsigned char copy[1024];
            memcpy(copy, buf, len);
            copy[at] = (unsigned char)v;
            hg_tensor *t = hg_npy_load_buffer(ctx, copy, len);
            ck_assert((t != NULL) == (hg_ctx_status(ctx) == HG_OK));
            hg_ctx_clear_error(ctx);
        }
    hg_ctx_free(ctx);
}
END_TEST

/* An IDX file: magic 00 00 08 rank, big-endian dims, bytes. */
static size_t idx_bytes(unsigned char *out, int rank, const uint32_t *dims, uint8_t type)
{
    out[0] = out[1] = 0;
    out[2] = type;
    out[3] = (unsigned char)rank;
    size_t n = 1, at = 4;
    for (int i = 0; i < rank; i++) {
        out[at++] = (unsigned char)(dims[i] >> 24);
        out[at++] = (unsigned char)(dims[i] >> 16);
        out[at++] = (unsigned char)(dims[i] >> 8);
        out[at++] = (unsigned char)dims[i];
        n *= dims[i];
    }
    for (size_t k = 0; k < n; k++)
        out[at + k] = (unsigned char)(k * 37 % 256);
    return at + n;
}

static void write_file(const char *path, const unsigned char *b, size_t n, bool gzip)
{
    if (gzip) {
        gzFile g = gzopen(path, "wb");
        ck_assert_ptr_nonnull(g);
        ck_assert_int_eq(gzwrite(g, b, (unsigned)n), (int)n);
        gzclose(g);
    } else {
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(b, 1, n, f), n);
        fclose(f);
    }
}

START_TEST(idx_generated_files)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    unsigned char buf[4096];
    uint32_t dims[3] = {3, 4, 5};
    size_t len = idx_bytes(buf, 3, dims, 0x08);
    for (int gz = 0; gz < 2; gz++) {
        const char *path = tmp(gz ? "images.idx.gz" : "images.idx");
        write_file(path, buf, len, gz);
        hg_tensor *raw = hg_idx_load(ctx, path, HG_I32, 1, 0);
        ck_assert_msg(raw != NULL, "%s", hg_ctx_error(ctx));
        ck_assert_int_eq(hg_tensor_rank(raw), 3);
        ck_assert_int_eq(hg_tensor_dim(raw, 2), 5);
        ck_assert_int_eq(hg_tensor_i32(raw)[59], 59 * 37 % 256);
        hg_tensor *f = hg_idx_load(ctx, path, HG_F64, 1.0 / 255, 0);
        ck_assert_double_eq_tol(hg_get(f, 7), (7 * 37 % 256) / 255.0, 1e-15);
        hg_tensor *f32 = hg_idx_load(ctx, path, HG_F32, 0.5, 0);
        ck_assert_float_eq(hg_tensor_f32(f32)[1], 18.5f);
    }
    uint32_t one[1] = {6};
    len = idx_bytes(buf, 1, one, 0x08);
    hg_tensor *lab = hg_idx_load_buffer(ctx, buf, len, HG_I32, 1, 0);
    ck_assert_int_eq(hg_tensor_numel(lab), 6);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(idx_malformed)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    unsigned char buf[4096];
    uint32_t dims[2] = {4, 5};
    size_t len = idx_bytes(buf, 2, dims, 0x08);
    /* wrong magic, non-u8 type, zero and too many dimensions */
    const struct {
        int at;
        unsigned char v;
    } edits[] = {{0, 1}, {2, 0x0d}, {3, 0}, {3, 5}, {3, 3}};
    for (size_t e = 0; e < sizeof edits / sizeof edits[0]; e++) {
        unsigned char copy[4096];
        memcpy(copy, buf, len);
        copy[edits[e].at] = edits[e].v;
        ck_assert_ptr_null(hg_idx_load_buffer(ctx, copy, len, HG_I32, 1, 0));
        ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_FORMAT);
        hg_ctx_clear_error(ctx);
    }
    /* data shorter or longer than the dimensions say; every truncation */
    for (size_t cut = 0; cut < len; cut++) {
        ck_assert_ptr_null(hg_idx_load_buffer(ctx, buf, cut, HG_I32, 1, 0));
        ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_FORMAT);
        hg_ctx_clear_error(ctx);
    }
    ck_assert_ptr_null(hg_idx_load_buffer(ctx, buf, len + 1, HG_I32, 1, 0));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_FORMAT);
    hg_ctx_clear_error(ctx);
    /* huge dimensions with little data */
    uint32_t huge[4] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu};
    size_t hl = 4 + 16;
    idx_bytes(buf, 0, NULL, 0x08);
    buf[3] = 4;
    for (int i = 0; i < 4; i++)
        for (int b = 0; b < 4; b++)
            buf[4 + 4 * i + b] = (unsigned char)(huge[i] >> (24 - 8 * b));
    ck_assert_ptr_null(hg_idx_load_buffer(ctx, buf, hl, HG_I32, 1, 0));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_FORMAT);
    hg_ctx_clear_error(ctx);
    /* truncated gzip, corrupt gzip, and a stream decompressing past max_bytes */
    len = idx_bytes(buf, 2, dims, 0x08);
    write_file(tmp("t.gz"), buf, len, true);
    FILE *f = fopen(tmp("t.gz"), "rb");
    unsigned char gz[4096];
    size_t gzlen = fread(gz, 1, sizeof gz, f);
    fclose(f);
    for (size_t cut = 2; cut < gzlen; cut += 3) {
        ck_assert_ptr_null(hg_idx_load_buffer(ctx, gz, cut, HG_I32, 1, 0));
        ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_FORMAT);
        hg_ctx_clear_error(ctx);
    }
    unsigned char bad[4096];
    memcpy(bad, gz, gzlen);
    bad[gzlen / 2] ^= 0xff;
    ck_assert_ptr_null(hg_idx_load_buffer(ctx, bad, gzlen, HG_I32, 1, 0));
    ck_assert_int_ne(hg_ctx_status(ctx), HG_OK);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_idx_load_buffer(ctx, gz, gzlen, HG_I32, 1, 10));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "limit"));
    hg_ctx_clear_error(ctx);
    memcpy(bad, gz, gzlen);
    memcpy(bad + gzlen, "junk", 4);
    ck_assert_ptr_nonnull(hg_idx_load_buffer(ctx, gz, gzlen, HG_I32, 1, 0));
    ck_assert_ptr_null(hg_idx_load_buffer(ctx, bad, gzlen + 4, HG_I32, 1, 0));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "trailing"));
    hg_ctx_clear_error(ctx);
    /* raw data above max_bytes; an unsupported result dtype; NULL buffer */
    ck_assert_ptr_null(hg_idx_load_buffer(ctx, buf, len, HG_I32, 1, len - 1));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_FORMAT);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_idx_load_buffer(ctx, buf, len, (hg_dtype)7, 1, 0));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_DTYPE);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_idx_load_buffer(ctx, NULL, len, HG_I32, 1, 0));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_NULL);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_idx_load(ctx, tmp("missing.idx"), HG_I32, 1, 0));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_IO);
    hg_ctx_free(ctx);
}
END_TEST

/* ---- reliability: files never lost, no hangs, bounded memory ----------- */

/* What a child process reports back. */
typedef struct child_report {
    int done;         /* 1 if the call returned */
    hg_status status; /* hg_ctx_status after the call */
    int loaded;       /* result non-NULL */
    long rss_kb;      /* growth of the peak RSS during the call */
    char message[512];
} child_report;

typedef void (*child_fn)(const void *arg, child_report *r);

static long peak_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* Runs fn in a child process killed by SIGALRM after `secs` seconds (a
 * FIFO that blocks cannot hang the suite); the peak RSS growth is measured
 * in the child. Returns done = 0 if the child did not report. */
static child_report in_child(child_fn fn, const void *arg, unsigned secs)
{
    child_report r;
    memset(&r, 0, sizeof r);
    int fd[2];
    ck_assert_int_eq(pipe(fd), 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fd[0]);
        /* Check's own SIGALRM handler (inherited) would kill the whole
         * test's process group: a hang must end only this child. */
        signal(SIGALRM, SIG_DFL);
        alarm(secs);
        long before = peak_rss_kb();
        fn(arg, &r);
        r.rss_kb = peak_rss_kb() - before;
        r.done = 1;
        ssize_t w = write(fd[1], &r, sizeof r);
        _exit(w == (ssize_t)sizeof r ? 0 : 1);
    }
    close(fd[1]);
    ssize_t got = 0;
    while (got < (ssize_t)sizeof r) {
        ssize_t n = read(fd[0], (char *)&r + got, sizeof r - (size_t)got);
        if (n <= 0)
            break;
        got += n;
    }
    close(fd[0]);
    int ws;
    waitpid(pid, &ws, 0);
    if (got != (ssize_t)sizeof r)
        r.done = 0;
    if (WIFSIGNALED(ws))
        snprintf(r.message, sizeof r.message, "child killed by signal %d (%s)", WTERMSIG(ws),
                 WTERMSIG(ws) == SIGALRM ? "hung" : "crashed");
    return r;
}

static void report_ctx(hg_ctx *ctx, const void *result, child_report *r)
{
    r->status = hg_ctx_status(ctx);
    r->loaded = result != NULL;
    snprintf(r->message, sizeof r->message, "%s", hg_ctx_error(ctx));
}

/* Files in tmpdir whose names start with prefix (stray temporary files). */
static int count_prefixed(const char *prefix)
{
    DIR *d = opendir(tmpdir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

static void slurp(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
}

typedef struct save_job {
    const char *path;
    rlim_t fsize; /* 0: no limit */
} save_job;

static void child_save(const void *arg, child_report *r)
{
    const save_job *j = arg;
    if (j->fsize) {
        struct rlimit rl = {j->fsize, j->fsize};
        signal(SIGXFSZ, SIG_IGN); /* writes past the limit fail with EFBIG */
        setrlimit(RLIMIT_FSIZE, &rl);
    }
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *t = hg_full(ctx, HG_F64, 1, SHAPE(4096), 1.5);
    hg_npy_save(j->path, t);
    report_ctx(ctx, t, r);
    hg_ctx_free(ctx);
}

/* Regression: a failed save removed whatever
 * was at the path (a previous file, a device node), and a FIFO blocked. */
START_TEST(save_never_loses_files)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *small = T64(ctx, 1, SHAPE(3), 1, 2, 3);
    /* A write that fails half way (file size limit) leaves the old file. */
    char keep_buf[512], fifo_buf[512], dev_buf[512], dir_buf[512], real_buf[512], link_buf[512];
    const char *keep = TMP(keep_buf, "keep.npy");
    ck_assert_int_eq(hg_npy_save(keep, small), HG_OK);
    ck_assert_int_eq(chmod(keep, 0640), 0);
    save_job job = {keep, 1000};
    child_report r = in_child(child_save, &job, 20);
    ck_assert_msg(r.done, "%s", r.message);
    ck_assert_int_eq(r.status, HG_ERR_IO);
    ck_assert_ptr_nonnull(strstr(r.message, "unchanged"));
    hg_tensor *back = hg_npy_load(ctx, keep);
    ck_assert_msg(back != NULL, "the previous file was lost: %s", hg_ctx_error(ctx));
    ck_assert_int_eq(hg_tensor_numel(back), 3);
    ck_assert_double_eq(hg_get(back, 2), 3);
    ck_assert_int_eq(count_prefixed(".keep.npy."), 0);
    /* A successful save replaces it, keeps its permission bits, leaves no
     * temporary file. */
    job.fsize = 0;
    r = in_child(child_save, &job, 20);
    ck_assert_msg(r.done && r.status == HG_OK, "%s", r.message);
    back = hg_npy_load(ctx, keep);
    ck_assert_int_eq(hg_tensor_numel(back), 4096);
    struct stat st;
    ck_assert_int_eq(stat(keep, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0640);
    ck_assert_int_eq(count_prefixed(".keep.npy."), 0);
    /* A FIFO: refused at once, still a FIFO afterwards. */
    const char *fifo = TMP(fifo_buf, "fifo.npy");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    job.path = fifo;
    r = in_child(child_save, &job, 10);
    ck_assert_msg(r.done, "hg_npy_save on a FIFO: %s", r.message);
    ck_assert_int_eq(r.status, HG_ERR_IO);
    ck_assert_ptr_nonnull(strstr(r.message, "FIFO"));
    ck_assert_int_eq(lstat(fifo, &st), 0);
    ck_assert(S_ISFIFO(st.st_mode));
    /* A device node whose writes fail (like /dev/full, made here when we may
     * create device nodes): refused, never opened, still there. */
    const char *dev = TMP(dev_buf, "full.npy");
    if (mknod(dev, S_IFCHR | 0666, makedev(1, 7)) == 0) {
        job.path = dev;
        r = in_child(child_save, &job, 10);
        ck_assert_msg(r.done, "%s", r.message);
        ck_assert_int_eq(r.status, HG_ERR_IO);
        ck_assert_ptr_nonnull(strstr(r.message, "character device"));
        ck_assert_int_eq(lstat(dev, &st), 0);
        ck_assert(S_ISCHR(st.st_mode));
    } else {
        printf("save_never_loses_files: cannot mknod here (%s): device node case not run\n", strerror(errno));
    }
    /* A directory: refused, untouched. */
    const char *dir = TMP(dir_buf, "adir.npy");
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    ck_assert_int_eq(hg_npy_save(dir, small), HG_ERR_IO);
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(lstat(dir, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    /* A symbolic link to a file: the file is replaced, the link stays. */
    const char *real = TMP(real_buf, "real.npy"), *link = TMP(link_buf, "link.npy");
    ck_assert_int_eq(hg_npy_save(real, small), HG_OK);
    ck_assert_int_eq(symlink("real.npy", link), 0);
    ck_assert_int_eq(hg_npy_save(link, T64(ctx, 1, SHAPE(2), 8, 9)), HG_OK);
    ck_assert_int_eq(lstat(link, &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    back = hg_npy_load(ctx, real);
    ck_assert_int_eq(hg_tensor_numel(back), 2);
    ck_assert_double_eq(hg_get(back, 1), 9);
    ck_assert_int_eq(symlink("nowhere.npy", tmp("dangling.npy")), 0);
    ck_assert_int_eq(hg_npy_save(tmp("dangling.npy"), small), HG_ERR_IO);
    hg_ctx_clear_error(ctx);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

/* The public atomic-write calls the example uses for its PNG. */
START_TEST(atomic_file_api)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    const char *path = tmp("note.txt");
    char text[64];
    hg_atomic_file *f = hg_atomic_open(ctx, path);
    ck_assert_ptr_nonnull(f);
    fputs("first", hg_atomic_stream(f));
    ck_assert_int_eq(hg_atomic_commit(f), HG_OK);
    slurp(path, text, sizeof text);
    ck_assert_str_eq(text, "first");
    /* Abandoned: the old contents stay; no temporary file is left. */
    f = hg_atomic_open(ctx, path);
    fputs("second, never committed", hg_atomic_stream(f));
    hg_atomic_abort(f);
    slurp(path, text, sizeof text);
    ck_assert_str_eq(text, "first");
    ck_assert_int_eq(count_prefixed(".note.txt."), 0);
    /* While open, the target is untouched and the temporary file is beside it. */
    f = hg_atomic_open(ctx, path);
    fputs("third", hg_atomic_stream(f));
    fflush(hg_atomic_stream(f));
    ck_assert_int_eq(count_prefixed(".note.txt."), 1);
    slurp(path, text, sizeof text);
    ck_assert_str_eq(text, "first");
    ck_assert_int_eq(hg_atomic_commit(f), HG_OK);
    slurp(path, text, sizeof text);
    ck_assert_str_eq(text, "third");
    /* Errors. */
    ck_assert_ptr_null(hg_atomic_open(ctx, NULL));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_NULL);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_atomic_open(ctx, "/nonexistent/dir/x"));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_IO);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_atomic_open(ctx, "/dev/null"));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_IO);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_atomic_open(NULL, path));
    ck_assert_int_eq(hg_atomic_commit(NULL), HG_ERR_NULL);
    hg_atomic_abort(NULL);
    ck_assert_ptr_null(hg_atomic_stream(NULL));
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

typedef struct load_job {
    const char *path;
    int idx; /* hg_idx_load instead of hg_npy_load */
    hg_dtype dtype;
    size_t max_bytes;
    hg_ctx_options opts;
} load_job;

static void child_load(const void *arg, child_report *r)
{
    const load_job *j = arg;
    hg_ctx *ctx = hg_ctx_new(&j->opts);
    hg_tensor *t = j->idx ? hg_idx_load(ctx, j->path, j->dtype, 1.0, j->max_bytes) : hg_npy_load(ctx, j->path);
    report_ctx(ctx, t, r);
    hg_ctx_free(ctx);
}

/* Regression (finding 2): opening a FIFO for reading blocked for ever. */
START_TEST(loads_refuse_fifos_and_devices)
{
    char fifo_buf[512];
    const char *fifo = TMP(fifo_buf, "in.fifo");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    const char *paths[] = {fifo, "/dev/null", "/dev/zero", tmpdir};
    const char *kinds[] = {"FIFO", "character device", "character device", "directory"};
    for (int p = 0; p < 4; p++)
        for (int idx = 0; idx < 2; idx++) {
            load_job job = {paths[p], idx, HG_I32, 0, {0}};
            child_report r = in_child(child_load, &job, 10);
            ck_assert_msg(r.done, "%s on %s: %s", idx ? "hg_idx_load" : "hg_npy_load", paths[p], r.message);
            ck_assert_int_eq(r.status, HG_ERR_IO);
            ck_assert_msg(strstr(r.message, kinds[p]) != NULL, "%s", r.message);
        }
}
END_TEST

/* Regression (finding 8): NUL bytes inside the header dict were accepted. */
START_TEST(npy_header_nul_bytes)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    unsigned char buf[256];
    static const char bad1[] = "{'descr': '<f8\0junk', 'fortran_order': False, 'shape': (2,), }\n";
    static const char bad2[] = "{'descr\0zz': '<f8', 'fortran_order': False, 'shape': (2,), }\n";
    static const char bad3[] = "{'descr': '<f8', 'fortran_order': False,\0'shape': (2,), }\n";
    static const char ok[] = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\0\0\n";
    const char *cases[] = {bad1, bad2, bad3};
    const size_t lens[] = {sizeof bad1 - 1, sizeof bad2 - 1, sizeof bad3 - 1};
    for (int c = 0; c < 3; c++) {
        size_t len = npy_bytes_n(buf, cases[c], lens[c], 16);
        ck_assert_ptr_null(hg_npy_load_buffer(ctx, buf, len));
        ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_FORMAT);
        ck_assert_msg(strstr(hg_ctx_error(ctx), "NUL") != NULL, "%s", hg_ctx_error(ctx));
        hg_ctx_clear_error(ctx);
    }
    /* NUL as padding after the dict is still read (old writers). */
    size_t len = npy_bytes_n(buf, ok, sizeof ok - 1, 16);
    ck_assert_ptr_nonnull(hg_npy_load_buffer(ctx, buf, len));
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

/* A raw-deflate stream of `zeros` zero bytes after `head`, wrapped as gzip,
 * written without compressing every byte: after Z_FULL_FLUSH the
 * compressor's state is reset, so each MiB of zeros compresses to the same
 * bytes, which are repeated. About 1 MB of output per GiB. */
static void write_zero_bomb(const char *path, const unsigned char *head, size_t head_len, uint64_t zeros)
{
    const size_t mib = (size_t)1 << 20;
    ck_assert_uint_eq(zeros % mib, 0);
    unsigned char *zero = calloc(mib, 1), *out = malloc(2 * mib);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    ck_assert_int_eq(deflateInit2(&zs, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY), Z_OK);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    static const unsigned char gz_head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    fwrite(gz_head, 1, 10, f);
    unsigned char *unit = malloc(2 * mib);
    size_t unit_len = 0;
    for (int piece = 0; piece < 3; piece++) { /* header, zeros, zeros (check they repeat) */
        zs.next_in = piece == 0 ? (unsigned char *)head : zero;
        zs.avail_in = piece == 0 ? (unsigned)head_len : (unsigned)mib;
        zs.next_out = out;
        zs.avail_out = (unsigned)(2 * mib);
        ck_assert_int_eq(deflate(&zs, Z_FULL_FLUSH), Z_OK);
        size_t n = 2 * mib - zs.avail_out;
        if (piece == 0) {
            fwrite(out, 1, n, f);
        } else if (piece == 1) {
            memcpy(unit, out, n);
            unit_len = n;
        } else {
            ck_assert_uint_eq(n, unit_len);
            ck_assert_int_eq(memcmp(unit, out, n), 0);
        }
    }
    uLong crc = crc32(crc32(0, Z_NULL, 0), head, (uInt)head_len), crc_mib = crc32(crc32(0, Z_NULL, 0), zero, (uInt)mib);
    for (uint64_t k = 0; k < zeros / mib; k++) {
        fwrite(unit, 1, unit_len, f);
        crc = crc32_combine(crc, crc_mib, (z_off_t)mib);
    }
    zs.next_in = zero;
    zs.avail_in = 0;
    zs.next_out = out;
    zs.avail_out = (unsigned)(2 * mib);
    ck_assert_int_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
    fwrite(out, 1, 2 * mib - zs.avail_out, f);
    uint64_t total = head_len + zeros;
    unsigned char trailer[8];
    for (int b = 0; b < 4; b++) {
        trailer[b] = (unsigned char)(crc >> (8 * b));
        trailer[4 + b] = (unsigned char)(total >> (8 * b));
    }
    fwrite(trailer, 1, 8, f);
    ck_assert_int_eq(fclose(f), 0);
    deflateEnd(&zs);
    free(zero);
    free(out);
    free(unit);
}

/* Regression (findings 3 and 4): max_bytes = SIZE_MAX looped for ever on
 * gzip input; a 1 MB .gz of 1 GiB of zeros took 2 GiB of memory and seconds
 * before it was refused; a valid header with an f32 result took 4x the
 * limit. Each load runs in a child (alarm 60 s) whose peak RSS growth is
 * measured. */
START_TEST(idx_gzip_bombs_bounded)
{
    const uint64_t gib = (uint64_t)1 << 30;
    /* 1. 1 GiB of zeros, not even IDX: refused from the first bytes. */
    char zeros_buf[512], valid_buf[512], lying_buf[512], honest_buf[512];
    const char *zeros = TMP(zeros_buf, "zeros.gz");
    write_zero_bomb(zeros, NULL, 0, gib);
    struct stat st;
    ck_assert_int_eq(stat(zeros, &st), 0);
    printf("idx_gzip_bombs_bounded: %s is %lld bytes for 1 GiB of zeros\n", zeros, (long long)st.st_size);
    ck_assert_int_lt(st.st_size, 2 << 20);
    for (int limit = 0; limit < 2; limit++) {
        load_job job = {zeros, 1, HG_F32, limit ? SIZE_MAX : 0, {0}};
        child_report r = in_child(child_load, &job, 60);
        ck_assert_msg(r.done, "%s", r.message);
        ck_assert_int_eq(r.status, HG_ERR_FORMAT);
        ck_assert_msg(r.rss_kb < 16 * 1024, "peak RSS grew by %ld KiB refusing a non-IDX bomb", r.rss_kb);
        printf("  zeros, max_bytes %s: %s after %ld KiB of RSS growth\n", limit ? "SIZE_MAX" : "0 (1 GiB)", r.message,
               r.rss_kb);
    }
    /* 2. A valid header announcing 1 GiB of bytes: as f32 that is 4 GiB,
     *    above the default 1 GiB limit: refused before inflating. */
    unsigned char head[8] = {0, 0, 8, 1, 0x40, 0, 0, 0}; /* [2^30] */
    const char *valid = TMP(valid_buf, "valid_bomb.gz");
    write_zero_bomb(valid, head, sizeof head, gib);
    load_job job = {valid, 1, HG_F32, 0, {0}};
    child_report r = in_child(child_load, &job, 60);
    ck_assert_msg(r.done, "%s", r.message);
    ck_assert_int_eq(r.status, HG_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(r.message, "limit"));
    ck_assert_msg(r.rss_kb < 16 * 1024, "peak RSS grew by %ld KiB", r.rss_kb);
    printf("  valid header, f32, default limit: refused after %ld KiB of RSS growth\n", r.rss_kb);
    /* 3. A header announcing 16 MiB with 1 GiB behind it, limit 64 MiB: the
     *    f32 result (64 MiB) fits, inflation stops one byte past 16 MiB. Peak
     *    RSS growth must stay under 2x the limit. */
    unsigned char head16[8] = {0, 0, 8, 1, 0x01, 0, 0, 0}; /* [2^24] */
    const char *lying = TMP(lying_buf, "lying_bomb.gz");
    write_zero_bomb(lying, head16, sizeof head16, gib);
    const size_t limit = (size_t)64 << 20;
    load_job job3 = {lying, 1, HG_F32, limit, {0}};
    r = in_child(child_load, &job3, 60);
    ck_assert_msg(r.done, "%s", r.message);
    ck_assert_int_eq(r.status, HG_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(r.message, "more than"));
    ck_assert_msg(r.rss_kb < (long)(2 * limit / 1024), "peak RSS grew by %ld KiB, limit %zu bytes", r.rss_kb, limit);
    printf("  header [2^24] before 1 GiB, f32, limit 64 MiB: refused after %ld KiB of RSS growth (bound %zu)\n",
           r.rss_kb, 2 * limit / 1024);
    /* 4. The same limit and an honest file of that size loads within 2x. */
    const char *honest = TMP(honest_buf, "honest.gz");
    write_zero_bomb(honest, head16, sizeof head16, (uint64_t)1 << 24);
    load_job job4 = {honest, 1, HG_F32, limit, {0}};
    r = in_child(child_load, &job4, 60);
    ck_assert_msg(r.done && r.loaded, "%s", r.message);
    ck_assert_msg(r.rss_kb < (long)(2 * limit / 1024), "peak RSS grew by %ld KiB", r.rss_kb);
    printf("  honest [2^24] as f32 (64 MiB result), limit 64 MiB: loaded with %ld KiB of RSS growth\n", r.rss_kb);
    /* 5. max_bytes = SIZE_MAX terminates and loads (gzip and raw). */
    unsigned char small[64];
    uint32_t dims[2] = {3, 5};
    size_t len = idx_bytes(small, 2, dims, 0x08);
    write_file(tmp("small.gz"), small, len, true);
    write_file(tmp("small.idx"), small, len, false);
    for (int gz = 0; gz < 2; gz++) {
        load_job j = {gz ? tmp("small.gz") : tmp("small.idx"), 1, HG_F64, SIZE_MAX, {0}};
        char path[512];
        snprintf(path, sizeof path, "%s", j.path);
        j.path = path;
        r = in_child(child_load, &j, 20);
        ck_assert_msg(r.done && r.loaded, "max_bytes SIZE_MAX: %s", r.message);
    }
}
END_TEST

/* Allocator that counts what it hands out. */
typedef struct counting {
    size_t total, largest;
} counting;

static void *count_alloc(size_t size, void *user)
{
    counting *c = user;
    c->total += size;
    c->largest = size > c->largest ? size : c->largest;
    return malloc(size);
}

static void count_free(void *p, size_t size, void *user)
{
    (void)size;
    (void)user;
    free(p);
}

/* Regression (finding 4): file buffers bypassed the ctx's max_bytes (a ctx
 * limited to 100 bytes took 64 MiB from its allocator to refuse a 64 MiB
 * .npy). The 64 MiB files here are sparse. */
START_TEST(loads_charged_to_ctx_limit)
{
    char big_buf[512];
    const char *big = TMP(big_buf, "big.npy");
    unsigned char head[128];
    const char *dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (8388608,), }";
    size_t n = npy_bytes_n(head, dict, strlen(dict), 0);
    FILE *f = fopen(big, "wb");
    fwrite(head, 1, n, f);
    fclose(f);
    ck_assert_int_eq(truncate(big, (off_t)(n + ((size_t)64 << 20))), 0);
    counting cnt = {0, 0};
    hg_allocator a = {count_alloc, count_free, &cnt};
    hg_ctx_options opts = {.allocator = &a, .max_bytes = 100};
    hg_ctx *ctx = hg_ctx_new(&opts);
    ck_assert_ptr_null(hg_npy_load(ctx, big));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_OOM);
    ck_assert_msg(cnt.total < 64 * 1024, "took %zu bytes from the allocator", cnt.total);
    hg_ctx_clear_error(ctx);
    /* gzip IDX: zlib's state is charged too, so it is what this ctx
     * refuses first (before inflating), without asking the allocator. */
    unsigned char idx[64];
    uint32_t dims[1] = {10};
    write_file(tmp("ten.gz"), idx, idx_bytes(idx, 1, dims, 0x08), true);
    cnt = (counting){0, 0};
    ck_assert_ptr_null(hg_idx_load(ctx, tmp("ten.gz"), HG_I32, 1, 0));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_OOM);
    ck_assert_msg(strstr(hg_ctx_error(ctx), "zlib") != NULL, "%s", hg_ctx_error(ctx));
    ck_assert_msg(cnt.largest < 64 * 1024, "largest request %zu bytes", cnt.largest);
    hg_ctx_free(ctx);
    /* With room, the same loads work and the temporary bytes are returned. */
    opts.max_bytes = (size_t)80 << 20;
    ctx = hg_ctx_new(&opts);
    hg_tensor *t = hg_npy_load(ctx, big);
    ck_assert_msg(t != NULL, "%s", hg_ctx_error(ctx));
    ck_assert_int_eq(hg_tensor_numel(t), 8388608);
    ck_assert_ptr_nonnull(hg_idx_load(ctx, tmp("ten.gz"), HG_I32, 1, 0));
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

static Suite *io_suite(void)
{
    Suite *s = suite_create("io");
    TCase *tc = tcase_create("io");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, numpy_written_fixtures);
    tcase_add_test(tc, round_trips_every_dtype);
    tcase_add_test(tc, malformed_npy);
    tcase_add_test(tc, idx_generated_files);
    tcase_add_test(tc, idx_malformed);
    tcase_add_test(tc, save_never_loses_files);
    tcase_add_test(tc, atomic_file_api);
    tcase_add_test(tc, loads_refuse_fifos_and_devices);
    tcase_add_test(tc, npy_header_nul_bytes);
    tcase_add_test(tc, idx_gzip_bombs_bounded);
    tcase_add_test(tc, loads_charged_to_ctx_limit);
    suite_add_tcase(s, tc);
    return s;
}

/* NumPy reading the files written here: its own meson test (io_numpy). */
static Suite *numpy_suite(void)
{
    Suite *s = suite_create("io_numpy");
    TCase *tc = tcase_create("numpy");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, numpy_reads_our_files);
    suite_add_tcase(s, tc);
    return s;
}

/* test_io: the io suite; test_io numpy: NumPy reads our files (exit 77
 * without /usr/bin/python3 and numpy). */
int main(int argc, char **argv)
{
    bool numpy = argc > 1 && !strcmp(argv[1], "numpy");
    if (numpy && system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
        printf("SKIP: no /usr/bin/python3 with numpy (apt-get install python3-numpy)\n");
        return TEST_SKIP;
    }
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    int rc = run_suite(numpy ? numpy_suite() : io_suite());
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", tmpdir);
    return rc;
}
