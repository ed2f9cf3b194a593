/* Data I/O: .npy read/write for every dtype, files written by NumPy, a file
 * written here read by NumPy, IDX raw and gzip, and every malformed-file case
 * giving a clean error. Real Fashion-MNIST files: test_fashion_mnist.c. */
#include "testutil.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static char tmpdir[] = "/tmp/hgrad_io_XXXXXX";

static const char *tmp(const char *name)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return path;
}

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
    } cases[] = {{"f64.npy", f, HG_NPY_F64}, {"f32.npy", f, HG_NPY_F32}, {"i32.npy", i, HG_NPY_I32},
                 {"i64.npy", i, HG_NPY_I64}, {"u8.npy", i, HG_NPY_U8}};
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

/* A file written here, read back by NumPy (when python3-numpy is there). */
START_TEST(numpy_reads_our_files)
{
    if (system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
        printf("numpy_reads_our_files: SKIPPED (no /usr/bin/python3 with numpy; apt-get install python3-numpy)\n");
        return;
    }
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

/* Header template with a given dict, for malformed cases. */
static size_t npy_bytes(unsigned char *out, const char *dict, size_t data_bytes)
{
    size_t n = strlen(dict);
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    out[8] = (unsigned char)(n & 0xff);
    out[9] = (unsigned char)(n >> 8);
    memcpy(out + 10, dict, n);
    memset(out + 10 + n, 0, data_bytes);
    return 10 + n + data_bytes;
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
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n", 15, HG_ERR_FORMAT}, /* truncated data */
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n", 17, HG_ERR_FORMAT}, /* trailing bytes */
        {"{'descr': '<c16', 'fortran_order': False, 'shape': (2,), }\n", 32, HG_ERR_FORMAT}, /* unknown dtype */
        {"{'descr': '<f8', 'fortran_order': True, 'shape': (2,), }\n", 16, HG_ERR_FORMAT},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1), }\n", 8, HG_ERR_FORMAT},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296,4294967296,4294967296), }\n", 8,
         HG_ERR_FORMAT}, /* overflow */
        {"{'descr': '<f8', 'shape': (2,), }\n", 16, HG_ERR_FORMAT},                            /* missing key */
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

static Suite *io_suite(void)
{
    Suite *s = suite_create("io");
    TCase *tc = tcase_create("io");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, numpy_written_fixtures);
    tcase_add_test(tc, round_trips_every_dtype);
    tcase_add_test(tc, numpy_reads_our_files);
    tcase_add_test(tc, malformed_npy);
    tcase_add_test(tc, idx_generated_files);
    tcase_add_test(tc, idx_malformed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    int rc = run_suite(io_suite());
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", tmpdir);
    return rc;
}
