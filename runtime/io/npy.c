/* NPY arrays (versions 1-3): the magic "\x93NUMPY", a version, a header
 * length, a Python dict literal {'descr': '<f4', 'fortran_order': False,
 * 'shape': (2, 3)}, then the little-endian C-order data. */
#include "rtio.h"

#include <stdlib.h>
#include <string.h>

#define NPY_MAX_HEADER 1000000
#define NPY_MAX_BYTES ((int64_t)1 << 38)

typedef struct NpyInfo {
    char kind; /* 'f', 'i', 'u', 'b' */
    int size;  /* bytes per element */
    int rank;
    int64_t dims[IR_MAXRANK];
    int64_t numel;
    int64_t offset; /* file offset of the data */
} NpyInfo;

/* ---- the header dict: a small Python-literal parser ---- */

typedef struct DictParser {
    const char *s, *p, *end;
    size_t base; /* file offset of s */
    Diags *d;
    SrcLoc loc;
    bool failed;
} DictParser;

static bool dict_fail(DictParser *dp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool dict_fail(DictParser *dp, const char *fmt, ...)
{
    if (dp->failed)
        return false;
    dp->failed = true;
    StrBuf b;
    sb_init(&b);
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&b, fmt, ap);
    va_end(ap);
    diag_error(dp->d, dp->loc, "bad NPY header at byte %zu: %s", dp->base + (size_t)(dp->p - dp->s),
               b.s);
    sb_free(&b);
    return false;
}

static void dict_ws(DictParser *dp)
{
    while (dp->p < dp->end && (*dp->p == ' ' || *dp->p == '\t' || *dp->p == '\n'))
        dp->p++;
}

static bool dict_char(DictParser *dp, char c)
{
    dict_ws(dp);
    if (dp->p < dp->end && *dp->p == c) {
        dp->p++;
        return true;
    }
    return false;
}

/* 'text' or "text" without escapes, at most n-1 characters. */
static bool dict_string(DictParser *dp, char *out, size_t n)
{
    dict_ws(dp);
    if (dp->p >= dp->end || (*dp->p != '\'' && *dp->p != '"'))
        return dict_fail(dp, "expected a string");
    char q = *dp->p++;
    size_t k = 0;
    while (dp->p < dp->end && *dp->p != q) {
        if (*dp->p == '\\' || k + 1 >= n)
            return dict_fail(dp, "unsupported string");
        out[k++] = *dp->p++;
    }
    if (dp->p >= dp->end)
        return dict_fail(dp, "unterminated string");
    dp->p++;
    out[k] = 0;
    return true;
}

/* shape := '(' [int (',' int)* [',']] ')' */
static bool dict_shape(DictParser *dp, NpyInfo *info)
{
    if (!dict_char(dp, '('))
        return dict_fail(dp, "'shape' must be a tuple of non-negative integers");
    info->rank = 0;
    for (;;) {
        if (dict_char(dp, ')'))
            return true;
        dict_ws(dp);
        if (dp->p >= dp->end || *dp->p < '0' || *dp->p > '9')
            return dict_fail(dp, "'shape' must be a tuple of non-negative integers");
        int64_t v = 0;
        while (dp->p < dp->end && *dp->p >= '0' && *dp->p <= '9') {
            if (mul_overflow_i64(v, 10, &v) || __builtin_add_overflow(v, *dp->p - '0', &v))
                return dict_fail(dp, "dimension too large");
            dp->p++;
        }
        if (dp->p < dp->end && (*dp->p == 'L' || *dp->p == 'l'))
            dp->p++; /* Python 2 longs */
        if (info->rank == IR_MAXRANK)
            return dict_fail(dp, "more than %d dimensions", IR_MAXRANK);
        info->dims[info->rank++] = v;
        if (!dict_char(dp, ',')) {
            if (dict_char(dp, ')'))
                return true;
            return dict_fail(dp, "expected ',' or ')' in 'shape'");
        }
    }
}

static bool dict_bool(DictParser *dp, bool *v)
{
    dict_ws(dp);
    size_t left = (size_t)(dp->end - dp->p);
    if (left >= 4 && memcmp(dp->p, "True", 4) == 0) {
        dp->p += 4;
        *v = true;
        return true;
    }
    if (left >= 5 && memcmp(dp->p, "False", 5) == 0) {
        dp->p += 5;
        *v = false;
        return true;
    }
    return dict_fail(dp, "'fortran_order' must be True or False");
}

/* descr: byte order, kind, size, e.g. '<f4', '|u1'. */
static bool check_descr(DictParser *dp, const char *descr, NpyInfo *info)
{
    char order = descr[0];
    char kind = order ? descr[1] : 0;
    int size = kind ? atoi(descr + 2) : 0;
    if (kind == 'O')
        return diag_error(dp->d, dp->loc, "object arrays are not supported (descr '%s')", descr),
               false;
    bool known = (order == '<' || order == '>' || order == '|' || order == '=') &&
                 ((kind == 'f' && (size == 4 || size == 8)) ||
                  ((kind == 'i' || kind == 'u') && (size == 1 || size == 2 || size == 4 ||
                                                    size == 8)) ||
                  (kind == 'b' && size == 1)) &&
                 strlen(descr) == 3;
    if (!known)
        return diag_error(dp->d, dp->loc, "unsupported dtype '%s' (modelc reads float32, float64, "
                                          "integer and bool arrays)",
                          descr),
               false;
    if (order == '>' && size > 1)
        return diag_error(dp->d, dp->loc, "big-endian data is not supported (descr '%s')",
                          descr),
               false;
    info->kind = kind;
    info->size = size;
    return true;
}

typedef struct DictSeen {
    bool descr, fortran, shape;
} DictSeen;

static bool dict_entry(DictParser *dp, DictSeen *seen, NpyInfo *info)
{
    char key[32], descr[32];
    const char *at = dp->p;
    if (!dict_string(dp, key, sizeof key) || !dict_char(dp, ':'))
        return dict_fail(dp, "expected ':' after a key");
    bool *flag = strcmp(key, "descr") == 0           ? &seen->descr
                 : strcmp(key, "fortran_order") == 0 ? &seen->fortran
                 : strcmp(key, "shape") == 0         ? &seen->shape
                                                     : NULL;
    if (!flag || *flag) {
        dp->p = at;
        return dict_fail(dp, flag ? "duplicate key '%s'" : "unknown key '%s'", key);
    }
    *flag = true;
    if (flag == &seen->shape)
        return dict_shape(dp, info);
    if (flag == &seen->fortran) {
        bool f = false;
        if (!dict_bool(dp, &f))
            return false;
        if (f)
            return diag_error(dp->d, dp->loc, "Fortran-order arrays are not supported "
                                              "(fortran_order is True)"),
                   false;
        return true;
    }
    dict_ws(dp);
    if (dp->p < dp->end && *dp->p == '[')
        return diag_error(dp->d, dp->loc, "structured arrays are not supported"), false;
    return dict_string(dp, descr, sizeof descr) && check_descr(dp, descr, info);
}

/* dict := '{' (entry ',')* [entry] '}' followed by spaces and a newline */
static bool parse_dict(DictParser *dp, NpyInfo *info)
{
    DictSeen seen = {false, false, false};
    if (!dict_char(dp, '{'))
        return dict_fail(dp, "expected '{'");
    for (;;) {
        dict_ws(dp);
        if (dict_char(dp, '}'))
            break;
        if (!dict_entry(dp, &seen, info))
            return false;
        if (!dict_char(dp, ',')) {
            if (dict_char(dp, '}'))
                break;
            return dict_fail(dp, "expected ',' or '}'");
        }
    }
    const char *close = dp->p - 1;
    dict_ws(dp);
    if (dp->p != dp->end)
        return dict_fail(dp, "unexpected text after the dictionary");
    const char *missing = !seen.descr ? "descr" : !seen.fortran ? "fortran_order"
                          : !seen.shape ? "shape" : NULL;
    dp->p = close;
    if (missing)
        return dict_fail(dp, "missing key '%s'", missing);
    return true;
}

/* ---- the file ---- */

static bool npy_preamble(RtReader *r, NpyInfo *info, char **header, size_t *hlen)
{
    unsigned char pre[12];
    int64_t got = rt_reader_read(r, pre, 10);
    if (got < 0)
        return false;
    if (got < 6 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        diag_error(r->d, r->loc, "not an NPY file (the magic string \\x93NUMPY is missing)");
        return false;
    }
    if (got < 10) {
        diag_error(r->d, r->loc, "truncated NPY header: %lld of 10 bytes", (long long)got);
        return false;
    }
    int major = pre[6];
    if (major < 1 || major > 3) {
        diag_error(r->d, r->loc, "unsupported NPY version %d.%d (byte 6)", major, pre[7]);
        return false;
    }
    uint64_t n = pre[8] | (uint64_t)pre[9] << 8;
    info->offset = 10;
    if (major >= 2) {
        if (rt_reader_read(r, pre + 10, 2) != 2) {
            diag_error(r->d, r->loc, "truncated NPY header: the header length ends at byte 12");
            return false;
        }
        n |= (uint64_t)pre[10] << 16 | (uint64_t)pre[11] << 24;
        info->offset = 12;
    }
    if (n > NPY_MAX_HEADER) {
        diag_error(r->d, r->loc, "NPY header length %llu is larger than the limit of %d bytes",
                   (unsigned long long)n, NPY_MAX_HEADER);
        return false;
    }
    *header = xmalloc(n + 1);
    got = rt_reader_read(r, *header, (int64_t)n);
    if (got < (int64_t)n) {
        if (got >= 0)
            diag_error(r->d, r->loc, "truncated NPY header: %lld of %llu bytes after byte %lld",
                       (long long)got, (unsigned long long)n, (long long)info->offset);
        xfree(*header);
        return false;
    }
    *hlen = n;
    return true;
}

static bool npy_info(RtReader *r, NpyInfo *info)
{
    char *header;
    size_t hlen;
    if (!npy_preamble(r, info, &header, &hlen))
        return false;
    DictParser dp = {header, header, header + hlen, (size_t)info->offset, r->d, r->loc, false};
    int nerr = r->d->nerrors;
    bool ok = parse_dict(&dp, info) && r->d->nerrors == nerr;
    xfree(header);
    info->offset += (int64_t)hlen;
    if (!ok)
        return false;
    info->numel = ir_dims_numel(info->rank, info->dims);
    if (info->numel < 0) {
        diag_error(r->d, r->loc, "the NPY shape is too large: more than " IR_MAX_ELEMS_STR
                                 " elements, counting zero dimensions as 1");
        return false;
    }
    if (info->numel * info->size > NPY_MAX_BYTES) {
        diag_error(r->d, r->loc, "the NPY shape is too large: %lld bytes (the limit is %lld)",
                   (long long)(info->numel * info->size), (long long)NPY_MAX_BYTES);
        return false;
    }
    return true;
}

static double npy_elem(const unsigned char *p, const NpyInfo *info)
{
    switch (info->kind) {
    case 'f':
        if (info->size == 4) {
            float f;
            memcpy(&f, p, 4);
            return f;
        } else {
            double v;
            memcpy(&v, p, 8);
            return v;
        }
    case 'b':
        return p[0] != 0;
    case 'u': {
        uint64_t v = 0;
        for (int i = info->size - 1; i >= 0; i--)
            v = v << 8 | p[i];
        return (double)v;
    }
    default: {
        uint64_t v = 0;
        for (int i = info->size - 1; i >= 0; i--)
            v = v << 8 | p[i];
        int shift = 64 - 8 * info->size;
        return (double)((int64_t)(v << shift) >> shift);
    }
    }
}

/* The array in its natural dtype (floats stay, integers and bools become
 * i32 and must fit). */
static Tensor *npy_tensor(const char *path, const NpyInfo *info, const unsigned char *data,
                          Diags *d)
{
    DType dt = info->kind == 'f' ? (info->size == 4 ? DT_F32 : DT_F64) : DT_I32;
    Tensor *t = rt_tensor_new(dt, info->rank, info->dims);
    if (!t)
        ICE("cannot allocate an NPY array");
    if (dt != DT_I32) {
        memcpy(t->data, data, (size_t)rt_tensor_bytes(t));
        return t;
    }
    for (int64_t i = 0; i < info->numel; i++) {
        double v = npy_elem(data + i * info->size, info);
        if (v < INT32_MIN || v > INT32_MAX) {
            diag_error(d, rt_file_loc(d, path), "value %.0f at index %lld (byte %lld) does not "
                                                "fit in i32",
                       v, (long long)i, (long long)(info->offset + i * info->size));
            rt_tensor_free(t);
            return NULL;
        }
        ((int32_t *)t->data)[i] = (int32_t)v;
    }
    return t;
}

/* The data of a whole, valid NPY file (malloc'd, numel * size bytes), or
 * NULL after a diagnostic. */
static unsigned char *npy_read_data(const char *path, NpyInfo *info, Diags *d)
{
    RtReader r;
    memset(info, 0, sizeof *info);
    if (!rt_reader_open(&r, path, d))
        return NULL;
    unsigned char *data = NULL;
    int64_t want = 0, got = 0;
    int end = -1;
    if (!npy_info(&r, info))
        goto out;
    want = info->numel * info->size;
    if (!(data = rt_reader_read_n(&r, want, &got)))
        goto out;
    if (got < want) {
        diag_error(d, r.loc, "truncated: the header promises %lld bytes of data from byte %lld, "
                             "but the data ends at byte %lld",
                   (long long)want, (long long)info->offset, (long long)(info->offset + got));
        goto out;
    }
    end = rt_reader_at_end(&r);
    if (end == 0)
        diag_error(d, r.loc, "unexpected data after byte %lld (the header promises %lld bytes)",
                   (long long)(info->offset + want), (long long)want);
out:
    rt_reader_close(&r);
    if (end != 1) {
        xfree(data);
        data = NULL;
    }
    return data;
}

static Tensor *npy_read(const char *path, NpyInfo *info, Diags *d)
{
    unsigned char *data = npy_read_data(path, info, d);
    Tensor *t = data ? npy_tensor(path, info, data, d) : NULL;
    xfree(data);
    return t;
}

Tensor *rt_npy_read(const char *path, Diags *d)
{
    NpyInfo info;
    return npy_read(path, &info, d);
}

bool rt_npy_write(const char *path, const Tensor *t, Diags *d)
{
    static const char *const descr[] = {"<f4", "<f8", "<i4"};
    StrBuf h;
    sb_init(&h);
    sb_printf(&h, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr[t->dt]);
    for (int i = 0; i < t->rank; i++)
        sb_printf(&h, "%s%lld", i ? ", " : "", (long long)t->dims[i]);
    if (t->rank == 1)
        sb_putc(&h, ',');
    sb_puts(&h, "), }");
    while ((10 + h.len + 1) % 64)
        sb_putc(&h, ' ');
    sb_putc(&h, '\n');
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                             (unsigned char)(h.len & 0xff), (unsigned char)(h.len >> 8)};
    RtChunk c[3] = {{pre, 10}, {h.s, h.len}, {t->data, (size_t)rt_tensor_bytes(t)}};
    bool ok = rt_write_atomic(path, c, 3, d);
    sb_free(&h);
    return ok;
}

/* ---- data sets ---- */

static bool is_bytes(const NpyInfo *info)
{
    return info->kind == 'u' && info->size == 1;
}

/* x as 8-bit data (taking data): byte b stands for b/255.0 when scaling. */
static void add_byte_inputs(Dataset *out, const NpyInfo *info, unsigned char *data,
                            const RtLoadOpts *o)
{
    double value[256];
    for (int b = 0; b < 256; b++)
        value[b] = o->scale ? b / 255.0 : b;
    rt_dataset_add_bytes(out, o->x_name, o->dt, info->rank, info->dims, data, value);
}

static Tensor *npy_labels(const char *path, Tensor *raw, const NpyInfo *info,
                          const RtLoadOpts *o, Diags *d)
{
    SrcLoc loc = rt_file_loc(d, path);
    if (o->classes <= 0)
        return rt_tensor_cast(raw, o->dt);
    if (info->kind == 'f') {
        diag_error(d, loc, "class labels must be integers, not float%d", 8 * info->size);
        return NULL;
    }
    if (raw->rank != 1) {
        diag_error(d, loc, "class labels must be a one-dimensional array, not rank %d",
                   raw->rank);
        return NULL;
    }
    for (int64_t i = 0; i < raw->numel; i++) {
        double v = rt_get(raw, i);
        if (v < 0 || v >= o->classes) {
            diag_error(d, loc, "label %.0f at index %lld (byte %lld) is out of range (%d classes)",
                       v, (long long)i, (long long)(info->offset + i * info->size), o->classes);
            return NULL;
        }
    }
    return o->one_hot ? rt_one_hot(raw, o->classes, o->dt) : rt_tensor_clone(raw);
}

bool rt_load_npy(const char *x_path, const char *y_path, const RtLoadOpts *o, Dataset *out,
                 Diags *d)
{
    rt_dataset_init(out);
    NpyInfo xi, yi;
    unsigned char *xd = npy_read_data(x_path, &xi, d);
    Tensor *yr = NULL, *y = NULL, *xr = NULL;
    bool ok = xd != NULL;
    if (ok && !is_bytes(&xi)) { /* range errors come before the labels' errors */
        ok = (xr = npy_tensor(x_path, &xi, xd, d)) != NULL;
        xfree(xd);
        xd = NULL;
    }
    if (ok && xi.rank == 0) {
        diag_error(d, rt_file_loc(d, x_path), "a data set needs an array with an example "
                                              "dimension, not a scalar");
        ok = false;
    }
    if (ok && y_path) {
        ok = (yr = npy_read(y_path, &yi, d)) != NULL;
        if (ok && (yr->rank == 0 || yr->dims[0] != xi.dims[0])) {
            diag_error(d, rt_file_loc(d, y_path), "%lld labels, but %s has %lld examples",
                       (long long)(yr->rank ? yr->dims[0] : 1), x_path, (long long)xi.dims[0]);
            ok = false;
        }
        ok = ok && (y = npy_labels(y_path, yr, &yi, o, d)) != NULL;
    }
    if (ok && xr) {
        rt_dataset_add(out, o->x_name, rt_tensor_cast(xr, o->dt));
    } else if (ok) {
        add_byte_inputs(out, &xi, xd, o);
        xd = NULL;
    }
    if (ok && y)
        rt_dataset_add(out, o->y_name, y);
    xfree(xd);
    rt_tensor_free(xr);
    rt_tensor_free(yr);
    return ok;
}
