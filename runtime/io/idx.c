/* IDX files (the MNIST format), gzip-compressed or plain: a big-endian
 * magic number 0x0000TTDD (TT element type, DD dimension count), DD
 * big-endian u32 dimensions, then the elements. Only unsigned bytes
 * (TT = 0x08) are used by image and label files. */
#include "rtio.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define IDX_UBYTE 0x08
#define IDX_MAX_BYTES ((int64_t)1 << 34)

typedef struct IdxFile {
    int ndim;
    int64_t dims[3];
    int64_t size;   /* bytes of data the header promises */
    int64_t offset; /* file offset of the data */
    int64_t count;  /* examples read: dims[0], or fewer under a limit */
    int64_t nread;  /* bytes of data read: count examples */
    unsigned char *data;
} IdxFile;

static const char *idx_kind(int ndim)
{
    return ndim == 3 ? "image" : "label";
}

static bool idx_header(RtReader *r, int ndim, IdxFile *f)
{
    unsigned char h[16];
    int64_t hsize = 4 + 4 * ndim;
    int64_t got = rt_reader_read(r, h, hsize);
    if (got < 0)
        return false;
    uint32_t want = (uint32_t)(IDX_UBYTE << 8 | ndim);
    if (got >= 4 && rt_be32(h) != want) {
        uint32_t m = rt_be32(h);
        if (m >> 16 == 0 && (m & 0xff) == (uint32_t)ndim && (m >> 8 & 0xff) != IDX_UBYTE)
            diag_error(r->d, r->loc, "element type 0x%02x is not supported (byte 2; IDX %s files "
                                     "hold unsigned bytes, 0x08)",
                       m >> 8 & 0xff, idx_kind(ndim));
        else
            diag_error(r->d, r->loc, "bad magic number 0x%08x (expected 0x%08x for an IDX %s "
                                     "file)",
                       m, want, idx_kind(ndim));
        return false;
    }
    if (got < hsize) {
        diag_error(r->d, r->loc, "truncated IDX header: %lld of %lld bytes", (long long)got,
                   (long long)hsize);
        return false;
    }
    f->ndim = ndim;
    f->offset = hsize;
    for (int i = 0; i < ndim; i++) {
        f->dims[i] = rt_be32(h + 4 + 4 * i);
        f->size = ir_dims_numel(i + 1, f->dims);
        if (f->size < 0 || f->size > IDX_MAX_BYTES) {
            diag_error(r->d, r->loc, "IDX dimensions are too large (byte %d)", 4 + 4 * i);
            return false;
        }
    }
    return true;
}

static void describe(const IdxFile *f, char *buf, size_t n)
{
    if (f->ndim == 3)
        snprintf(buf, n, "%lld images of %lldx%lld", (long long)f->dims[0], (long long)f->dims[1],
                 (long long)f->dims[2]);
    else
        snprintf(buf, n, "%lld labels", (long long)f->dims[0]);
}

/* Read an IDX file with ndim dimensions, or (limit > 0) only its first
 * limit examples: the rest of the file is neither inflated nor checked.
 * f->data is malloc'd. */
static bool idx_read(const char *path, int ndim, int64_t limit, IdxFile *f, Diags *d)
{
    RtReader r;
    memset(f, 0, sizeof *f);
    if (!rt_reader_open(&r, path, d))
        return false;
    bool ok = idx_header(&r, ndim, f);
    int64_t got = 0;
    char what[128];
    if (ok) {
        int64_t per = f->dims[0] ? f->size / f->dims[0] : 0;
        f->count = limit > 0 && limit < f->dims[0] ? limit : f->dims[0];
        f->nread = f->count * per;
        ok = (f->data = rt_reader_read_n(&r, f->nread, &got)) != NULL;
    }
    if (ok && got < f->nread) {
        describe(f, what, sizeof what);
        diag_error(d, r.loc, "truncated: the header promises %s (%lld bytes from byte %lld), but "
                             "the data ends at byte %lld",
                   what, (long long)f->size, (long long)f->offset, (long long)(f->offset + got));
        ok = false;
    }
    if (ok && f->count == f->dims[0]) {
        int end = rt_reader_at_end(&r);
        if (end == 0) {
            describe(f, what, sizeof what);
            diag_error(d, r.loc, "unexpected data after byte %lld (the header promises %s)",
                       (long long)(f->offset + f->size), what);
        }
        ok = end == 1;
    }
    rt_reader_close(&r);
    if (!ok) {
        xfree(f->data);
        f->data = NULL;
    }
    return ok;
}

static bool check_labels(const char *path, const IdxFile *lb, int classes, Diags *d)
{
    for (int64_t i = 0; i < lb->nread; i++) {
        if (classes > 0 && lb->data[i] >= classes) {
            diag_error(d, rt_file_loc(d, path),
                       "label %d at index %lld (byte %lld) is out of range (%d classes)",
                       lb->data[i], (long long)i, (long long)(lb->offset + i), classes);
            return false;
        }
    }
    return true;
}

/* The images as 8-bit data x = dt[N,rows,cols,1] (taking im->data): byte
 * b stands for b/255 when scaling, computed as b * (1.0/255.0). */
static void add_images(Dataset *out, IdxFile *im, const RtLoadOpts *o)
{
    int64_t dims[4] = {im->count, im->dims[1], im->dims[2], 1};
    double s = o->scale ? 1.0 / 255.0 : 1.0, value[256];
    for (int b = 0; b < 256; b++)
        value[b] = b * s;
    rt_dataset_add_bytes(out, o->x_name, o->dt, 4, dims, im->data, value);
    im->data = NULL;
}

static Tensor *labels_tensor(const IdxFile *lb, const RtLoadOpts *o)
{
    int64_t n = lb->count;
    Tensor *y = rt_tensor_new(DT_I32, 1, &n);
    for (int64_t i = 0; i < n; i++)
        ((int32_t *)y->data)[i] = lb->data[i];
    if (o->one_hot && o->classes > 0) {
        Tensor *h = rt_one_hot(y, o->classes, o->dt);
        rt_tensor_free(y);
        return h;
    }
    return y;
}

bool rt_load_idx(const char *images, const char *labels, const RtLoadOpts *o, Dataset *out,
                 Diags *d)
{
    rt_dataset_init(out);
    IdxFile im, lb;
    if (!idx_read(images, 3, o->limit, &im, d))
        return false;
    bool ok = idx_read(labels, 1, o->limit, &lb, d);
    if (ok && lb.dims[0] != im.dims[0]) {
        diag_error(d, rt_file_loc(d, labels), "%lld labels, but %s has %lld images",
                   (long long)lb.dims[0], images, (long long)im.dims[0]);
        ok = false;
    }
    ok = ok && check_labels(labels, &lb, o->classes, d);
    if (ok) {
        add_images(out, &im, o);
        rt_dataset_add(out, o->y_name, labels_tensor(&lb, o));
    }
    xfree(im.data);
    xfree(lb.data);
    return ok;
}

/* dir/name.gz when it exists, else dir/name when that exists, else the
 * .gz name (so the error names the expected file). */
static char *find_file(const char *dir, const char *name)
{
    StrBuf b;
    sb_init(&b);
    sb_printf(&b, "%s/%s.gz", dir, name);
    struct stat st;
    if (stat(b.s, &st) == 0)
        return sb_take(&b);
    char *gz = sb_take(&b);
    sb_printf(&b, "%s/%s", dir, name);
    if (stat(b.s, &st) == 0) {
        xfree(gz);
        return sb_take(&b);
    }
    sb_free(&b);
    return gz;
}

bool rt_load_fashion_mnist(const char *dir, const char *split, const RtLoadOpts *o,
                           Dataset *out, Diags *d)
{
    rt_dataset_init(out);
    const char *prefix = strcmp(split, "train") == 0 ? "train"
                         : strcmp(split, "test") == 0 ? "t10k"
                                                      : NULL;
    if (!prefix) {
        SrcLoc none = {NULL, 0, 0};
        diag_error(d, none, "unknown data split '%s' (expected 'train' or 'test')", split);
        return false;
    }
    char names[2][64];
    snprintf(names[0], sizeof names[0], "%s-images-idx3-ubyte", prefix);
    snprintf(names[1], sizeof names[1], "%s-labels-idx1-ubyte", prefix);
    char *im = find_file(dir, names[0]), *lb = find_file(dir, names[1]);
    bool ok = rt_load_idx(im, lb, o, out, d);
    xfree(im);
    xfree(lb);
    return ok;
}
