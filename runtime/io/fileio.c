/* Atomic file replacement and zlib-backed reading for the runtime. */
#include "rtio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

SrcLoc rt_file_loc(Diags *d, const char *path)
{
    SrcLoc loc = {diags_intern_file(d, path), 0, 0};
    return loc;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return xstrdup(".");
    if (slash == path)
        return xstrdup("/");
    size_t n = (size_t)(slash - path);
    char *s = xmalloc(n + 1);
    memcpy(s, path, n);
    s[n] = 0;
    return s;
}

static bool write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t k = write(fd, c, n > ((size_t)1 << 30) ? (size_t)1 << 30 : n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        c += k;
        n -= (size_t)k;
    }
    return true;
}

/* fsync a directory so a rename in it is durable; file systems that
 * cannot sync directories (EINVAL) are not an error. */
static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return errno;
    int rc = fsync(fd) < 0 && errno != EINVAL && errno != ENOTSUP ? errno : 0;
    close(fd);
    return rc;
}

static bool write_tmp(int fd, const RtChunk *chunks, int n)
{
    for (int i = 0; i < n; i++)
        if (!write_all(fd, chunks[i].p, chunks[i].n))
            return false;
    return fsync(fd) == 0;
}

bool rt_write_atomic(const char *path, const RtChunk *chunks, int n, Diags *d)
{
    SrcLoc loc = rt_file_loc(d, path);
    struct stat st;
    bool exists = stat(path, &st) == 0;
    if (exists && S_ISDIR(st.st_mode)) {
        diag_error(d, loc, "cannot write: it is a directory");
        return false;
    }
    char *dir = dir_of(path);
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    StrBuf tb;
    sb_init(&tb);
    sb_printf(&tb, "%s/.%s.tmp-XXXXXX", dir, base);
    char *tmp = sb_take(&tb);
    bool ok = false;
    int fd = mkstemp(tmp);
    if (fd < 0) {
        diag_error(d, loc, "cannot create a temporary file in '%s': %s", dir, strerror(errno));
        goto out;
    }
    mode_t mode = exists && S_ISREG(st.st_mode) ? (st.st_mode & 07777) : 0644;
    if (fchmod(fd, mode) < 0 || !write_tmp(fd, chunks, n)) {
        diag_error(d, loc, "cannot write: %s", strerror(errno));
        close(fd);
        unlink(tmp);
        goto out;
    }
    if (close(fd) < 0) {
        diag_error(d, loc, "cannot write: %s", strerror(errno));
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, path) < 0) {
        diag_error(d, loc, "cannot replace the file: %s", strerror(errno));
        unlink(tmp);
        goto out;
    }
    int e = sync_dir(dir);
    if (e) {
        diag_error(d, loc, "cannot sync directory '%s': %s", dir, strerror(e));
        goto out;
    }
    ok = true;
out:
    xfree(tmp);
    xfree(dir);
    return ok;
}

static void close_on_jump(void *r)
{
    gzclose(((RtReader *)r)->gz);
}

bool rt_reader_open(RtReader *r, const char *path, Diags *d)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    r->d = d;
    r->loc = rt_file_loc(d, path);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        diag_error(d, r->loc, "cannot open: %s", strerror(errno));
        return false;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        diag_error(d, r->loc, "cannot read: it is a directory");
        close(fd);
        return false;
    }
    r->gz = gzdopen(fd, "rb");
    if (!r->gz) {
        diag_error(d, r->loc, "cannot open: out of memory");
        close(fd);
        return false;
    }
    gzbuffer(r->gz, 1 << 17);
    mem_cleanup_push(&r->on_jump, close_on_jump, r);
    return true;
}

static int64_t reader_fail(RtReader *r, int64_t at)
{
    int err;
    const char *msg = gzerror(r->gz, &err);
    if (err == Z_BUF_ERROR)
        diag_error(r->d, r->loc,
                   "compressed data ends unexpectedly after byte %lld (truncated gzip file)",
                   (long long)at);
    else {
        if (strncmp(msg, "<fd:", 4) == 0 && strstr(msg, ": "))
            msg = strstr(msg, ": ") + 2; /* zlib's name for the descriptor */
        diag_error(r->d, r->loc, "corrupt compressed data after byte %lld: %s", (long long)at,
                   err == Z_ERRNO ? strerror(errno) : msg);
    }
    return -1;
}

int64_t rt_reader_read(RtReader *r, void *buf, int64_t n)
{
    int64_t got = 0;
    unsigned char *p = buf;
    while (got < n) {
        int64_t want = n - got > (1 << 30) ? (1 << 30) : n - got;
        int k = gzread(r->gz, p + got, (unsigned)want);
        if (k < 0)
            return reader_fail(r, r->pos + got);
        got += k;
        if (k < want)
            break;
    }
    if (got < n) {
        int err;
        gzerror(r->gz, &err);
        if (err != Z_OK)
            return reader_fail(r, r->pos + got);
    }
    r->pos += got;
    return got;
}

void rt_reader_close(RtReader *r)
{
    if (r->gz) {
        mem_cleanup_pop(&r->on_jump);
        gzclose(r->gz);
    }
    r->gz = NULL;
}

unsigned char *rt_reader_read_n(RtReader *r, int64_t n, int64_t *got)
{
    const int64_t step = (int64_t)1 << 24;
    int64_t cap = n < step ? n : step, have = 0;
    unsigned char *buf = xmalloc((size_t)cap + 1);
    while (have < n) {
        if (have == cap) {
            cap = n - cap < cap ? n : 2 * cap;
            buf = xrealloc(buf, (size_t)cap + 1);
        }
        int64_t k = rt_reader_read(r, buf + have, cap - have);
        if (k < 0) {
            xfree(buf);
            return NULL;
        }
        have += k;
        if (have < cap)
            break;
    }
    *got = have;
    return buf;
}

int rt_reader_at_end(RtReader *r)
{
    unsigned char c;
    int64_t k = rt_reader_read(r, &c, 1);
    if (k < 0)
        return -1;
    if (k == 1)
        r->pos--; /* report positions as if nothing was consumed */
    return k == 0;
}

unsigned char *rt_read_all(const char *path, int64_t max, size_t *len, Diags *d)
{
    RtReader r;
    if (!rt_reader_open(&r, path, d))
        return NULL;
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = xmalloc(cap + 1);
    for (;;) {
        if (n == cap) {
            if ((int64_t)cap >= max) {
                unsigned char probe;
                int64_t k = rt_reader_read(&r, &probe, 1);
                if (k < 0)
                    goto fail;
                if (k == 0)
                    break;
                diag_error(d, r.loc, "file is larger than the %lld-byte limit", (long long)max);
                goto fail;
            }
            cap = (int64_t)(2 * cap) > max ? (size_t)max : 2 * cap;
            buf = xrealloc(buf, cap + 1);
        }
        int64_t k = rt_reader_read(&r, buf + n, (int64_t)(cap - n));
        if (k < 0)
            goto fail;
        n += (size_t)k;
        if (n < cap)
            break;
    }
    rt_reader_close(&r);
    buf[n] = 0;
    *len = n;
    return buf;
fail:
    rt_reader_close(&r);
    xfree(buf);
    return NULL;
}
