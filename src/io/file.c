/* File access: safe opening for reads, streaming byte sources, temporary
 * buffers charged to the ctx, and atomic writes (temporary file + rename). */
#define _XOPEN_SOURCE 700 /* realpath */
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- temporary buffers ------------------------------------------------- */

void *hg_temp_alloc(hg_ctx *ctx, size_t size)
{
    size = size ? size : 1;
    if (ctx->max_bytes) {
        size_t held = ctx->reserved + ctx->temp_bytes;
        if (held > ctx->max_bytes || size > ctx->max_bytes - held)
            return NULL;
    }
    void *p = ctx->allocator.alloc(size, ctx->allocator.user);
    if (p)
        ctx->temp_bytes += size;
    return p;
}

void hg_temp_free(hg_ctx *ctx, void *p, size_t size)
{
    if (!p)
        return;
    size = size ? size : 1;
    ctx->temp_bytes -= size;
    ctx->allocator.free(p, size, ctx->allocator.user);
}

/* ---- reading ----------------------------------------------------------- */

static const char *file_kind(mode_t m)
{
    if (S_ISDIR(m))
        return "a directory";
    if (S_ISFIFO(m))
        return "a FIFO";
    if (S_ISCHR(m))
        return "a character device";
    if (S_ISBLK(m))
        return "a block device";
    if (S_ISSOCK(m))
        return "a socket";
    return "not a regular file";
}

void hg_src_memory(hg_src *s, hg_ctx *ctx, const char *who, const void *buf, size_t len)
{
    s->ctx = ctx;
    s->who = who;
    s->mem = buf;
    s->fd = -1;
    s->size = len;
    s->pos = 0;
}

hg_status hg_src_open(hg_src *s, hg_ctx *ctx, const char *who, const char *path, uint64_t max_bytes)
{
    hg_src_memory(s, ctx, who, NULL, 0);
    if (!path)
        return hg_set_error(ctx, HG_ERR_NULL, "%s: path is NULL", who);
    /* Non-blocking, so that opening a FIFO with no writer returns at once;
     * nothing is read before fstat says this is a regular file. */
    int fd;
    do
        fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return hg_set_error(ctx, HG_ERR_IO, "%s: cannot open %s: %s", who, path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return hg_set_error(ctx, HG_ERR_IO, "%s: cannot stat %s: %s", who, path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return hg_set_error(ctx, HG_ERR_IO, "%s: %s is %s, not a regular file", who, path, file_kind(st.st_mode));
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        int e = errno;
        close(fd);
        return hg_set_error(ctx, HG_ERR_IO, "%s: cannot read %s: %s", who, path, strerror(e));
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > max_bytes) {
        close(fd);
        return hg_set_error(ctx, HG_ERR_FORMAT, "%s: %s is %lld bytes, above the limit of %llu", who, path,
                            (long long)st.st_size, (unsigned long long)max_bytes);
    }
    s->fd = fd;
    s->size = (uint64_t)st.st_size;
    return HG_OK;
}

void hg_src_close(hg_src *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

hg_status hg_src_read_some(hg_src *s, void *buf, size_t n, size_t *got)
{
    *got = 0;
    uint64_t left = hg_src_left(s);
    if (n > left)
        n = (size_t)left;
    if (s->mem) {
        if (n)
            memcpy(buf, s->mem + s->pos, n);
        s->pos += n;
        *got = n;
        return HG_OK;
    }
    unsigned char *p = buf;
    size_t done = 0;
    while (done < n) {
        size_t want = n - done > ((size_t)1 << 30) ? (size_t)1 << 30 : n - done;
        ssize_t r = read(s->fd, p + done, want);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return hg_set_error(s->ctx, HG_ERR_IO, "%s: read error: %s", s->who, strerror(errno));
        if (r == 0) /* shorter than fstat said: truncated while we read */
            break;
        done += (size_t)r;
    }
    s->pos += done;
    *got = done;
    return HG_OK;
}

hg_status hg_src_read(hg_src *s, void *buf, size_t n)
{
    if (n > hg_src_left(s))
        return hg_set_error(s->ctx, HG_ERR_FORMAT, "%s: truncated (%zu bytes needed at offset %llu, %llu left)", s->who,
                            n, (unsigned long long)s->pos, (unsigned long long)hg_src_left(s));
    size_t got;
    hg_status st = hg_src_read_some(s, buf, n, &got);
    if (st != HG_OK)
        return st;
    if (got != n)
        return hg_set_error(s->ctx, HG_ERR_IO, "%s: short read (%zu of %zu bytes at offset %llu): the file shrank",
                            s->who, got, n, (unsigned long long)(s->pos - got));
    return HG_OK;
}

void hg_error_name_file(hg_ctx *ctx, hg_status before, const char *path)
{
    if (before != HG_OK || ctx->status == HG_OK || !path || strstr(ctx->message, path))
        return;
    size_t used = strlen(ctx->message), room = sizeof ctx->message - used;
    if (room > 8)
        snprintf(ctx->message + used, room, " (in %.*s)", (int)(room - 7), path);
}

/* ---- atomic writes ------------------------------------------------------- */

/* Durable writes (fsync of the file before the rename and of its directory
 * after) unless the fuzz targets turned them off. */
static atomic_bool sync_writes = true;

void hg_io_sync_writes_for_fuzzing(bool on)
{
    atomic_store(&sync_writes, on);
}

struct hg_atomic_file {
    hg_ctx *ctx;
    const char *who; /* call named in errors */
    FILE *fp;
    int fd;
    char *target; /* final path (a symbolic link resolved) */
    char *temp;   /* temporary file beside it */
    char *dir;    /* its directory, for the fsync after rename */
    size_t bytes; /* size of this block (handle + the three strings) */
};

/* 64 random-ish bits per call: O_EXCL decides uniqueness, this only makes
 * collisions (and so retries) unlikely. */
static uint64_t temp_bits(void)
{
    static atomic_uint_fast64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 40) ^
                 (atomic_fetch_add(&counter, 1) * 0x9e3779b97f4a7c15u);
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9u;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

hg_atomic_file *hg_atomic_open(hg_ctx *ctx, const char *path)
{
    hg_status st;
    return hg_atomic_open_as(ctx, "hg_atomic_open", path, &st);
}

/* Records the error and returns NULL. */
#define OPEN_FAIL(code, ...) (*status = hg_set_error(ctx, (code), __VA_ARGS__), (hg_atomic_file *)NULL)

hg_atomic_file *hg_atomic_open_as(hg_ctx *ctx, const char *who, const char *path, hg_status *status)
{
    *status = HG_ERR_NULL;
    if (!ctx)
        return NULL;
    if (!path)
        return OPEN_FAIL(HG_ERR_NULL, "%s: path is NULL", who);
    if (!*path)
        return OPEN_FAIL(HG_ERR_IO, "%s: empty path", who);
    /* What is at the target now? Never opened: only looked at. */
    char *resolved = NULL;
    mode_t keep_mode = 0;
    bool exists = false;
    struct stat st;
    if (lstat(path, &st) == 0) {
        exists = true;
        if (S_ISLNK(st.st_mode)) {
            if (stat(path, &st) != 0)
                return OPEN_FAIL(HG_ERR_IO, "%s: %s is a symbolic link to nothing (%s)", who, path, strerror(errno));
            if (S_ISREG(st.st_mode) && !(resolved = realpath(path, NULL)))
                return OPEN_FAIL(HG_ERR_IO, "%s: cannot resolve %s: %s", who, path, strerror(errno));
        }
        if (!S_ISREG(st.st_mode)) {
            free(resolved);
            return OPEN_FAIL(HG_ERR_IO, "%s: %s is %s: refusing to replace it", who, path, file_kind(st.st_mode));
        }
        keep_mode = st.st_mode & 0777;
    } else if (errno != ENOENT) {
        return OPEN_FAIL(HG_ERR_IO, "%s: cannot write %s: %s", who, path, strerror(errno));
    }
    const char *target = resolved ? resolved : path;
    const char *slash = strrchr(target, '/');
    size_t dir_len = slash ? (size_t)(slash - target) : 0; /* "" for "/x": use "/" */
    const char *base = slash ? slash + 1 : target;
    size_t tlen = strlen(target), blen = strlen(base);
    if (blen == 0) {
        free(resolved);
        return OPEN_FAIL(HG_ERR_IO, "%s: %s names a directory", who, path);
    }
    /* One block: handle, target, temp ("DIR/.BASE.XXXXXX"), dir. */
    size_t temp_len = dir_len + 2 + blen + 7, dir_size = (slash ? (dir_len ? dir_len : 1) : 1) + 1;
    size_t bytes = sizeof(hg_atomic_file) + (tlen + 1) + (temp_len + 1) + dir_size;
    hg_atomic_file *f = ctx->allocator.alloc(bytes, ctx->allocator.user);
    if (!f) {
        free(resolved);
        return OPEN_FAIL(HG_ERR_OOM, "%s: out of memory for %s", who, path);
    }
    f->ctx = ctx;
    f->who = who;
    f->fp = NULL;
    f->fd = -1;
    f->bytes = bytes;
    f->target = (char *)(f + 1);
    f->temp = f->target + tlen + 1;
    f->dir = f->temp + temp_len + 1;
    memcpy(f->target, target, tlen + 1);
    if (slash && dir_len)
        memcpy(f->dir, target, dir_len), f->dir[dir_len] = '\0';
    else
        strcpy(f->dir, slash ? "/" : ".");
    base = f->target + (base - target); /* target may be `resolved`, freed now */
    free(resolved);
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    int e = 0;
    for (int attempt = 0; attempt < 100; attempt++) {
        uint64_t r = temp_bits();
        char suffix[7];
        for (int i = 0; i < 6; i++, r /= 62)
            suffix[i] = alnum[r % 62];
        suffix[6] = '\0';
        snprintf(f->temp, temp_len + 1, "%.*s%s.%s.%s", (int)dir_len, f->target, slash ? "/" : "", base, suffix);
        do
            f->fd = open(f->temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0666);
        while (f->fd < 0 && errno == EINTR);
        if (f->fd >= 0 || errno != EEXIST)
            break;
    }
    if (f->fd < 0) {
        e = errno;
        ctx->allocator.free(f, f->bytes, ctx->allocator.user);
        return OPEN_FAIL(HG_ERR_IO, "%s: cannot create a temporary file beside %s: %s", who, path, strerror(e));
    }
    if (exists)
        (void)fchmod(f->fd, keep_mode); /* best effort: keep the old file's permissions */
    f->fp = fdopen(f->fd, "wb");
    if (!f->fp) {
        e = errno;
        close(f->fd);
        unlink(f->temp);
        ctx->allocator.free(f, f->bytes, ctx->allocator.user);
        return OPEN_FAIL(HG_ERR_IO, "%s: cannot write a temporary file beside %s: %s", who, path, strerror(e));
    }
    *status = HG_OK;
    return f;
}

FILE *hg_atomic_stream(hg_atomic_file *f)
{
    return f ? f->fp : NULL;
}

static void release(hg_atomic_file *f)
{
    hg_ctx *ctx = f->ctx;
    ctx->allocator.free(f, f->bytes, ctx->allocator.user);
}

void hg_atomic_abort(hg_atomic_file *f)
{
    if (!f)
        return;
    fclose(f->fp);
    unlink(f->temp);
    release(f);
}

hg_status hg_atomic_commit(hg_atomic_file *f)
{
    if (!f)
        return HG_ERR_NULL;
    hg_ctx *ctx = f->ctx;
    const char *step = NULL;
    int e = 0;
    if (ferror(f->fp))
        step = "write", e = EIO;
    else if (fflush(f->fp) != 0)
        step = "write", e = errno;
    else if (atomic_load(&sync_writes) && fsync(f->fd) != 0 && errno != EINVAL && errno != EROFS)
        step = "sync", e = errno;
    if (fclose(f->fp) != 0 && !step)
        step = "close", e = errno;
    if (!step && rename(f->temp, f->target) != 0)
        step = "rename", e = errno;
    hg_status s = HG_OK;
    if (step) {
        unlink(f->temp);
        s = hg_set_error(ctx, HG_ERR_IO, "%s: %s of %s failed (%s); %s is unchanged",
                         strcmp(f->who, "hg_atomic_open") ? f->who : "hg_atomic_commit", step, f->temp, strerror(e),
                         f->target);
    } else if (atomic_load(&sync_writes)) {
        /* The rename is durable once the directory is synced (best effort:
         * some file systems refuse fsync on a directory). */
        int dfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
    }
    release(f);
    return s;
}
