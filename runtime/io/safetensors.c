/* safetensors checkpoints: an 8-byte little-endian header length, a JSON
 * header {name: {dtype, shape, data_offsets}, "__metadata__": {..}}, then
 * the raw little-endian tensor data. The reader validates everything a
 * hostile file can break; the writer replaces files atomically. */
#include "json.h"
#include "rtio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define ST_MAX_HEADER 100000000ull
#define ST_MAX_DEPTH 64

/* Every dtype the format defines, and the ones modelc can hold. */
static const char *const st_known_dtypes[] = {
    "BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2",
    "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64", "C64",
};

static int st_dtype_from_name(const char *s)
{
    if (strcmp(s, "F32") == 0)
        return DT_F32;
    if (strcmp(s, "F64") == 0)
        return DT_F64;
    if (strcmp(s, "I32") == 0)
        return DT_I32;
    for (int i = 0; i < ARRAY_LEN(st_known_dtypes); i++)
        if (strcmp(s, st_known_dtypes[i]) == 0)
            return -2;
    return -1;
}

static const char *st_dtype_name(DType t)
{
    return t == DT_F32 ? "F32" : t == DT_F64 ? "F64" : "I32";
}

/* ---- metadata ---- */

void rt_meta_init(Metadata *m)
{
    memset(m, 0, sizeof *m);
}

void rt_meta_free(Metadata *m)
{
    for (int i = 0; i < m->n; i++) {
        xfree(m->keys[i]);
        xfree(m->vals[i]);
    }
    xfree(m->keys);
    xfree(m->vals);
    rt_meta_init(m);
}

void rt_meta_set(Metadata *m, const char *key, const char *val)
{
    for (int i = 0; i < m->n; i++) {
        if (strcmp(m->keys[i], key) == 0) {
            xfree(m->vals[i]);
            m->vals[i] = xstrdup(val);
            return;
        }
    }
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 8;
        m->keys = xrealloc(m->keys, (size_t)m->cap * sizeof(char *));
        m->vals = xrealloc(m->vals, (size_t)m->cap * sizeof(char *));
    }
    m->keys[m->n] = xstrdup(key);
    m->vals[m->n] = xstrdup(val);
    m->n++;
}

const char *rt_meta_get(const Metadata *m, const char *key)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->keys[i], key) == 0)
            return m->vals[i];
    return NULL;
}

/* ---- reading ---- */

typedef struct StEntry {
    const char *name;
    DType dt;
    int rank;
    int64_t dims[IR_MAXRANK];
    int64_t begin, end;
    bool skipped; /* only its place in the data is checked */
} StEntry;

typedef struct StReader {
    Diags *d;
    SrcLoc loc;
    size_t hstart; /* file offset of the JSON header (8) */
    size_t dstart; /* file offset of the data */
    size_t dlen;
    const char *skip; /* names ending in it are skipped, or NULL */
} StReader;

static bool st_err(StReader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool st_err(StReader *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_add(r->d, DIAG_ERROR, r->loc, 1, fmt, ap);
    va_end(ap);
    return false;
}

static bool read_metadata(StReader *r, const JsonValue *v, Metadata *meta)
{
    if (v->kind != JSON_OBJ)
        return st_err(r, "__metadata__ must be an object of strings, not %s (byte %zu)",
                      json_kind_name(v->kind), r->hstart + v->off);
    for (int i = 0; i < v->n; i++) {
        const JsonValue *x = v->items[i];
        if (x->kind != JSON_STR)
            return st_err(r, "__metadata__ value for '%s' must be a string, not %s (byte %zu)",
                          v->keys[i], json_kind_name(x->kind), r->hstart + x->off);
        if (strlen(v->keys[i]) != v->keylen[i] || strlen(x->s) != x->slen)
            return st_err(r, "__metadata__ entry '%s' contains a NUL character (byte %zu)",
                          v->keys[i], r->hstart + v->keyoff[i]);
    }
    if (meta)
        for (int i = 0; i < v->n; i++)
            rt_meta_set(meta, v->keys[i], v->items[i]->s);
    return true;
}

static bool read_dtype(StReader *r, StEntry *e, const JsonValue *v)
{
    if (v->kind != JSON_STR)
        return st_err(r, "tensor '%s': dtype must be a string, not %s (byte %zu)", e->name,
                      json_kind_name(v->kind), r->hstart + v->off);
    int dt = st_dtype_from_name(v->s);
    if (dt == -1)
        return st_err(r, "tensor '%s': unknown dtype '%.40s' (byte %zu)", e->name, v->s,
                      r->hstart + v->off);
    if (dt == -2)
        return st_err(r, "tensor '%s': dtype %s is not supported (modelc reads F32, F64 and I32)",
                      e->name, v->s);
    e->dt = (DType)dt;
    return true;
}

static bool read_shape(StReader *r, StEntry *e, const JsonValue *v)
{
    if (v->kind != JSON_ARR)
        return st_err(r, "tensor '%s': shape must be a list of non-negative integers, not %s "
                         "(byte %zu)",
                      e->name, json_kind_name(v->kind), r->hstart + v->off);
    for (int i = 0; i < v->n; i++) {
        const JsonValue *x = v->items[i];
        if (x->kind != JSON_NUM || !x->is_int || x->int_big || x->i < 0)
            return st_err(r, "tensor '%s': shape must be a list of non-negative integers "
                             "(byte %zu)",
                          e->name, r->hstart + x->off);
    }
    if (v->n > IR_MAXRANK)
        return st_err(r, "tensor '%s': rank %d is larger than the maximum %d", e->name, v->n,
                      IR_MAXRANK);
    e->rank = v->n;
    for (int i = 0; i < v->n; i++)
        e->dims[i] = v->items[i]->i;
    if (ir_dims_numel(e->rank, e->dims) < 0) {
        Shape s = ir_shape(e->rank, e->dims);
        char sh[128];
        return st_err(r, "tensor '%s': shape %s has too many elements (the limit is " IR_MAX_ELEMS_STR
                         ", counting zero dimensions as 1) (byte %zu)",
                      e->name, ir_shape_str(&s, sh, sizeof sh), r->hstart + v->off);
    }
    return true;
}

static bool read_offsets(StReader *r, StEntry *e, const JsonValue *v)
{
    const JsonValue *a = v->kind == JSON_ARR && v->n == 2 ? v->items[0] : NULL;
    const JsonValue *b = a ? v->items[1] : NULL;
    if (!a || a->kind != JSON_NUM || b->kind != JSON_NUM || !a->is_int || !b->is_int ||
        a->int_big || b->int_big || a->i < 0 || b->i < a->i)
        return st_err(r, "tensor '%s': data_offsets must be two integers [begin, end] with "
                         "0 <= begin <= end (byte %zu)",
                      e->name, r->hstart + v->off);
    e->begin = a->i;
    e->end = b->i;
    return true;
}

/* The shape passed read_shape: its size in bytes cannot overflow. */
static bool check_entry_size(StReader *r, StEntry *e)
{
    int64_t bytes = ir_dims_numel(e->rank, e->dims) * ir_dtype_size(e->dt);
    Shape s = ir_shape(e->rank, e->dims);
    char sh[128];
    ir_shape_str(&s, sh, sizeof sh);
    if (e->end - e->begin != bytes)
        return st_err(r, "tensor '%s': data_offsets [%lld, %lld] span %lld bytes, but %s%s needs "
                         "%lld",
                      e->name, (long long)e->begin, (long long)e->end,
                      (long long)(e->end - e->begin), st_dtype_name(e->dt), sh, (long long)bytes);
    if ((uint64_t)e->end > r->dlen)
        return st_err(r, "tensor '%s': data_offsets [%lld, %lld] run past the end of the data "
                         "(%zu bytes, file byte %zu)",
                      e->name, (long long)e->begin, (long long)e->end, r->dlen,
                      r->dstart + r->dlen);
    return true;
}

static bool read_entry(StReader *r, const JsonValue *obj, int k, StEntry *e)
{
    const char *name = obj->keys[k];
    const JsonValue *v = obj->items[k];
    e->name = name;
    if (strlen(name) != obj->keylen[k])
        return st_err(r, "tensor name contains a NUL character (byte %zu)",
                      r->hstart + obj->keyoff[k]);
    if (v->kind != JSON_OBJ)
        return st_err(r, "tensor '%s': entry must be an object, not %s (byte %zu)", name,
                      json_kind_name(v->kind), r->hstart + v->off);
    for (int i = 0; i < v->n; i++)
        if (strcmp(v->keys[i], "dtype") && strcmp(v->keys[i], "shape") &&
            strcmp(v->keys[i], "data_offsets"))
            return st_err(r, "tensor '%s': unknown field '%.40s' (byte %zu)", name, v->keys[i],
                          r->hstart + v->keyoff[i]);
    static const char *const fields[] = {"dtype", "shape", "data_offsets"};
    for (int i = 0; i < 3; i++)
        if (!json_get(v, fields[i]))
            return st_err(r, "tensor '%s': missing field '%s' (byte %zu)", name, fields[i],
                          r->hstart + v->off);
    size_t nl = strlen(name), sl = r->skip ? strlen(r->skip) : 0;
    if (r->skip && nl >= sl && strcmp(name + nl - sl, r->skip) == 0) {
        e->skipped = true;
        if (!read_offsets(r, e, json_get(v, "data_offsets")))
            return false;
        if ((uint64_t)e->end > r->dlen)
            return st_err(r, "tensor '%s': data_offsets [%lld, %lld] run past the end of the data (%zu bytes)",
                          e->name, (long long)e->begin, (long long)e->end, r->dlen);
        return true;
    }
    return read_dtype(r, e, json_get(v, "dtype")) && read_shape(r, e, json_get(v, "shape")) &&
           read_offsets(r, e, json_get(v, "data_offsets")) && check_entry_size(r, e);
}

static int cmp_entry_offset(const void *x, const void *y)
{
    const StEntry *a = x, *b = y;
    if (a->begin != b->begin)
        return a->begin < b->begin ? -1 : 1;
    return (a->end > b->end) - (a->end < b->end);
}

/* The tensors must tile the data exactly: no overlap, no gap, nothing
 * after the last one (as the reference implementation requires). */
static bool check_layout(StReader *r, StEntry *e, int n)
{
    qsort(e, (size_t)n, sizeof(StEntry), cmp_entry_offset);
    int64_t pos = 0;
    for (int i = 0; i < n; i++) {
        if (e[i].begin < pos)
            return st_err(r, "tensors '%s' [%lld, %lld] and '%s' [%lld, %lld] overlap",
                          e[i - 1].name, (long long)e[i - 1].begin, (long long)e[i - 1].end,
                          e[i].name, (long long)e[i].begin, (long long)e[i].end);
        if (e[i].begin > pos)
            return st_err(r, "data bytes [%lld, %lld) (file byte %lld) belong to no tensor",
                          (long long)pos, (long long)e[i].begin, (long long)(r->dstart + pos));
        pos = e[i].end;
    }
    if ((uint64_t)pos != r->dlen)
        return st_err(r, "data bytes [%lld, %zu) (file byte %lld) after the last tensor belong to "
                         "no tensor",
                      (long long)pos, r->dlen, (long long)(r->dstart + pos));
    return true;
}

static bool read_header(StReader *r, const unsigned char *buf, size_t len, uint64_t *hlen)
{
    if (len < 8)
        return st_err(r, "file is too short to be safetensors (%zu bytes; the 8-byte header "
                         "length is missing)",
                      len);
    *hlen = rt_le64(buf);
    if (*hlen == 0)
        return st_err(r, "header length is 0 (byte 0)");
    if (*hlen > ST_MAX_HEADER)
        return st_err(r, "header length %llu is larger than the limit of %llu bytes (byte 0)",
                      (unsigned long long)*hlen, ST_MAX_HEADER);
    if (*hlen > len - 8)
        return st_err(r, "header length %llu runs past the end of the file (%zu bytes)",
                      (unsigned long long)*hlen, len);
    size_t ok = json_utf8_valid_prefix(buf + 8, *hlen);
    if (ok < *hlen)
        return st_err(r, "header is not valid UTF-8 at byte %zu", 8 + ok);
    return true;
}

static bool parse_entries(StReader *r, const JsonValue *root, const unsigned char *data,
                          TensorMap *tmp, Metadata *meta)
{
    StEntry *e = xcalloc((size_t)root->n + 1, sizeof(StEntry));
    int n = 0;
    bool ok = true;
    for (int k = 0; k < root->n && ok; k++) {
        if (strcmp(root->keys[k], "__metadata__") == 0)
            ok = read_metadata(r, root->items[k], meta);
        else
            ok = read_entry(r, root, k, &e[n++]);
    }
    ok = ok && check_layout(r, e, n);
    for (int i = 0; i < n && ok; i++) {
        if (e[i].skipped)
            continue;
        Tensor *t = rt_tensor_new(e[i].dt, e[i].rank, e[i].dims);
        if (!t) {
            ok = st_err(r, "tensor '%s': cannot allocate %lld bytes", e[i].name,
                        (long long)(e[i].end - e[i].begin));
            break;
        }
        memcpy(t->data, data + e[i].begin, (size_t)(e[i].end - e[i].begin));
        rt_map_put(tmp, e[i].name, t);
    }
    xfree(e);
    return ok;
}

static bool read_mem(const char *path, const unsigned char *buf, size_t len, const char *skip,
                     TensorMap *out, Metadata *meta, Diags *d)
{
    StReader r = {d, rt_file_loc(d, path), 8, 0, 0, skip};
    uint64_t hlen = 0;
    if (!read_header(&r, buf, len, &hlen))
        return false;
    r.dstart = 8 + (size_t)hlen;
    r.dlen = len - r.dstart;
    Arena *a = arena_new();
    JsonError je;
    JsonValue *root = json_parse(a, (const char *)buf + 8, (size_t)hlen, ST_MAX_DEPTH, &je);
    bool ok = false;
    if (!root) {
        st_err(&r, "invalid JSON in the header at byte %zu: %s", 8 + je.off, je.msg);
    } else if (root->kind != JSON_OBJ) {
        st_err(&r, "header must be a JSON object, not %s", json_kind_name(root->kind));
    } else {
        TensorMap tmp;
        Metadata tmeta;
        rt_map_init(&tmp);
        rt_meta_init(&tmeta);
        ok = parse_entries(&r, root, buf + r.dstart, &tmp, &tmeta);
        for (int i = 0; ok && i < tmp.n; i++) {
            rt_map_put(out, tmp.names[i], tmp.t[i]);
            tmp.t[i] = NULL;
        }
        for (int i = 0; ok && meta && i < tmeta.n; i++)
            rt_meta_set(meta, tmeta.keys[i], tmeta.vals[i]);
        rt_map_free(&tmp);
        rt_meta_free(&tmeta);
    }
    arena_free(a);
    return ok;
}

bool rt_safetensors_read_mem(const char *path, const unsigned char *buf, size_t len,
                             TensorMap *out, Metadata *meta, Diags *d)
{
    return read_mem(path, buf, len, NULL, out, meta, d);
}

bool rt_safetensors_read_skip(const char *path, const char *skip, TensorMap *out, Metadata *meta, Diags *d)
{
    size_t len;
    char *buf = read_file(path, &len);
    if (!buf) {
        diag_error(d, rt_file_loc(d, path), "cannot read: %s", strerror(errno));
        return false;
    }
    bool ok = read_mem(path, (const unsigned char *)buf, len, skip, out, meta, d);
    xfree(buf);
    return ok;
}

bool rt_safetensors_read(const char *path, TensorMap *out, Metadata *meta, Diags *d)
{
    size_t len;
    char *buf = read_file(path, &len);
    if (!buf) {
        diag_error(d, rt_file_loc(d, path), "cannot read: %s", strerror(errno));
        return false;
    }
    bool ok = rt_safetensors_read_mem(path, (const unsigned char *)buf, len, out, meta, d);
    xfree(buf);
    return ok;
}

/* ---- writing ---- */

static void json_put_string(StrBuf *b, const char *s)
{
    sb_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            sb_putc(b, '\\');
            sb_putc(b, (char)*p);
        } else if (*p < 0x20) {
            sb_printf(b, "\\u%04x", *p);
        } else {
            sb_putc(b, (char)*p);
        }
    }
    sb_putc(b, '"');
}

static bool valid_utf8(const char *s)
{
    size_t n = strlen(s);
    return json_utf8_valid_prefix((const unsigned char *)s, n) == n;
}

typedef struct NamedTensor {
    const char *name;
    const Tensor *t;
} NamedTensor;

static int cmp_named(const void *x, const void *y)
{
    return strcmp(((const NamedTensor *)x)->name, ((const NamedTensor *)y)->name);
}

static bool check_writable(const TensorMap *m, const Metadata *meta, SrcLoc loc, Diags *d)
{
    for (int i = 0; i < m->n; i++) {
        if (strcmp(m->names[i], "__metadata__") == 0) {
            diag_error(d, loc, "cannot write a tensor named '__metadata__' (a reserved name)");
            return false;
        }
        if (!valid_utf8(m->names[i])) {
            diag_error(d, loc, "cannot write tensor %d: its name is not valid UTF-8", i);
            return false;
        }
    }
    for (int i = 0; meta && i < meta->n; i++) {
        if (!valid_utf8(meta->keys[i]) || !valid_utf8(meta->vals[i])) {
            diag_error(d, loc, "cannot write metadata entry %d: it is not valid UTF-8", i);
            return false;
        }
    }
    return true;
}

/* The JSON header, padded with spaces to a multiple of 8 bytes. */
static char *build_header(const NamedTensor *v, int n, const Metadata *meta, size_t *len)
{
    StrBuf b;
    sb_init(&b);
    sb_putc(&b, '{');
    bool first = true;
    if (meta && meta->n) {
        sb_puts(&b, "\"__metadata__\":{");
        for (int i = 0; i < meta->n; i++) {
            if (i)
                sb_putc(&b, ',');
            json_put_string(&b, meta->keys[i]);
            sb_putc(&b, ':');
            json_put_string(&b, meta->vals[i]);
        }
        sb_putc(&b, '}');
        first = false;
    }
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        const Tensor *t = v[i].t;
        if (!first)
            sb_putc(&b, ',');
        first = false;
        json_put_string(&b, v[i].name);
        sb_printf(&b, ":{\"dtype\":\"%s\",\"shape\":[", st_dtype_name(t->dt));
        for (int k = 0; k < t->rank; k++)
            sb_printf(&b, "%s%lld", k ? "," : "", (long long)t->dims[k]);
        int64_t bytes = rt_tensor_bytes(t);
        sb_printf(&b, "],\"data_offsets\":[%lld,%lld]}", (long long)off, (long long)(off + bytes));
        off += bytes;
    }
    sb_putc(&b, '}');
    while (b.len % 8)
        sb_putc(&b, ' ');
    *len = b.len;
    return sb_take(&b);
}

bool rt_safetensors_write(const char *path, const TensorMap *m, const Metadata *meta, Diags *d)
{
    SrcLoc loc = rt_file_loc(d, path);
    if (!check_writable(m, meta, loc, d))
        return false;
    NamedTensor *v = xcalloc((size_t)m->n + 1, sizeof(NamedTensor));
    for (int i = 0; i < m->n; i++)
        v[i] = (NamedTensor){m->names[i], m->t[i]};
    qsort(v, (size_t)m->n, sizeof(NamedTensor), cmp_named);
    size_t hlen;
    char *header = build_header(v, m->n, meta, &hlen);
    unsigned char lenbuf[8];
    for (int i = 0; i < 8; i++)
        lenbuf[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    RtChunk *chunks = xcalloc((size_t)m->n + 2, sizeof(RtChunk));
    chunks[0] = (RtChunk){lenbuf, 8};
    chunks[1] = (RtChunk){header, hlen};
    for (int i = 0; i < m->n; i++)
        chunks[i + 2] = (RtChunk){v[i].t->data, (size_t)rt_tensor_bytes(v[i].t)};
    bool ok = rt_write_atomic(path, chunks, m->n + 2, d);
    xfree(chunks);
    xfree(header);
    xfree(v);
    return ok;
}

/* ---- checking a map against a graph's parameters ---- */

static bool is_param_of(const Graph *g, const char *name)
{
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i]->op == OP_PARAM && strcmp(g->nodes[i]->a.name, name) == 0)
            return true;
    return false;
}

static bool check_param(const Node *p, const TensorMap *m, SrcLoc loc, Diags *d)
{
    const Tensor *t = rt_map_get(m, p->a.name);
    char want[128], have[128];
    if (!t) {
        diag_error(d, loc, "tensor '%s' is missing; the model expects %s", p->a.name,
                   ir_type_str(p->dt, &p->shape, want, sizeof want));
        return false;
    }
    if (t->dt != p->dt) {
        diag_error(d, loc, "tensor '%s' has dtype %s, the model expects %s", p->a.name,
                   ir_dtype_name(t->dt), ir_dtype_name(p->dt));
        return false;
    }
    Shape ts = ir_shape(t->rank, t->dims);
    if (!ir_shape_eq(&ts, &p->shape)) {
        diag_error(d, loc, "tensor '%s' has shape %s, the model expects %s", p->a.name,
                   ir_shape_str(&ts, have, sizeof have), ir_shape_str(&p->shape, want, sizeof want));
        return false;
    }
    return true;
}

bool rt_check_params(const Graph *g, const TensorMap *m, const char *file, bool allow_extra,
                     Diags *d)
{
    SrcLoc loc = rt_file_loc(d, file);
    bool ok = true;
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i]->op == OP_PARAM)
            ok &= check_param(g->nodes[i], m, loc, d);
    for (int i = 0; i < m->n && !allow_extra; i++) {
        if (!is_param_of(g, m->names[i])) {
            diag_error(d, loc, "tensor '%s' is not a parameter of the model", m->names[i]);
            ok = false;
        }
    }
    return ok;
}
