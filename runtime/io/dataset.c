/* Data sets: named tensors sharing a leading example dimension (8-bit data
 * kept as bytes and converted per batch), seeded shuffling, batch
 * extraction, validation splits, generated data and safetensors data
 * sets. */
#include "rtio.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "runtime/kernels.h"

void rt_load_opts_default(RtLoadOpts *o)
{
    memset(o, 0, sizeof *o);
    o->dt = DT_F32;
    o->scale = true;
    o->one_hot = false;
    o->classes = 10;
    o->x_name = "x";
    o->y_name = "y";
    o->csv_header = -1;
    o->csv_label = NULL;
    o->csv_label_index = 0;
    o->limit = 0;
}

void rt_dataset_init(Dataset *ds)
{
    memset(ds, 0, sizeof *ds);
}

static void col_free(DataCol *c)
{
    xfree(c->name);
    rt_tensor_free(c->t);
    if (c->bytes)
        xfree(c->bytes->data);
    xfree(c->bytes);
    memset(c, 0, sizeof *c);
}

void rt_dataset_free(Dataset *ds)
{
    for (int i = 0; i < ds->ncols; i++)
        col_free(&ds->cols[i]);
    xfree(ds->cols);
    rt_dataset_init(ds);
}

int rt_dataset_find(const Dataset *ds, const char *name)
{
    for (int i = 0; i < ds->ncols; i++)
        if (strcmp(ds->cols[i].name, name) == 0)
            return i;
    return -1;
}

const DataCol *rt_dataset_col(const Dataset *ds, const char *name)
{
    int i = rt_dataset_find(ds, name);
    return i >= 0 ? &ds->cols[i] : NULL;
}

/* Add column (t, b) as name, replacing a column of the same name; frees
 * both when t is a scalar or has another example count. */
static bool put_col(Dataset *ds, const char *name, Tensor *t, RtBytes *b, bool whole)
{
    int i = rt_dataset_find(ds, name);
    bool replaces_row = i >= 0 && !ds->cols[i].whole;
    if (!whole && (t->rank == 0 || (ds->nrows - replaces_row > 0 && t->dims[0] != ds->n))) {
        DataCol bad = {NULL, t, b, false};
        col_free(&bad);
        return false;
    }
    if (i >= 0) {
        ds->nrows -= replaces_row;
        col_free(&ds->cols[i]);
    }
    if (!whole && ds->nrows++ == 0)
        ds->n = t->dims[0];
    else if (whole && ds->nrows == 0)
        ds->n = 1;
    DataCol c = {xstrdup(name), t, b, whole};
    if (i >= 0)
        ds->cols[i] = c;
    else
        VEC_PUSH(ds->cols, ds->ncols, ds->cap, c);
    return true;
}

static bool put(Dataset *ds, const char *name, Tensor *t, RtBytes *b)
{
    return put_col(ds, name, t, b, false);
}

bool rt_dataset_add_whole(Dataset *ds, const char *name, Tensor *t)
{
    return t && put_col(ds, name, t, NULL, true);
}

bool rt_dataset_add(Dataset *ds, const char *name, Tensor *t)
{
    return t && put(ds, name, t, NULL);
}

/* A tensor with a dtype and shape but no data (8-bit data holds bytes);
 * the loaders checked the shape (ir_dims_numel). */
static Tensor *shape_only(DType dt, int rank, const int64_t *dims)
{
    Tensor *t = xcalloc(1, sizeof *t);
    t->dt = dt;
    t->rank = rank;
    for (int i = 0; i < rank; i++)
        t->dims[i] = dims[i];
    t->numel = ir_dims_numel(rank, dims);
    MC_ASSERT(t->numel >= 0);
    return t;
}

bool rt_dataset_add_bytes(Dataset *ds, const char *name, DType dt, int rank,
                          const int64_t *dims, unsigned char *data, const double value[256])
{
    RtBytes *b = xmalloc(sizeof *b);
    b->data = data;
    for (int i = 0; i < 256; i++)
        b->value[i] = rt_dtype_round(dt, value[i]);
    return put(ds, name, shape_only(dt, rank, dims), b);
}

bool rt_dataset_take(Dataset *ds, const char *name, DataCol *c)
{
    MC_ASSERT(!c->whole || !c->bytes);
    bool ok = put_col(ds, name, c->t, c->bytes, c->whole);
    c->t = NULL;
    c->bytes = NULL;
    return ok;
}

double rt_col_get(const DataCol *c, int64_t i)
{
    return c->bytes ? c->bytes->value[c->bytes->data[i]] : rt_get(c->t, i);
}

void rt_col_cast(DataCol *c, DType dt)
{
    if (c->t->dt == dt)
        return;
    if (c->bytes) {
        for (int i = 0; i < 256; i++)
            c->bytes->value[i] = rt_dtype_round(dt, c->bytes->value[i]);
        c->t->dt = dt;
        return;
    }
    Tensor *r = rt_tensor_cast(c->t, dt);
    if (!r)
        ICE("cannot allocate a converted data set tensor");
    rt_tensor_free(c->t);
    c->t = r;
}

/* A column as stored: bytes per element (one for 8-bit data), elements
 * per example, and the data. */
static size_t elem_bytes(const DataCol *c)
{
    return c->bytes ? 1 : (size_t)ir_dtype_size(c->t->dt);
}

static size_t row_elems(const Tensor *t)
{
    size_t r = 1;
    for (int i = 1; i < t->rank; i++)
        r *= (size_t)t->dims[i];
    return r;
}

static char *col_data(const DataCol *c)
{
    return c->bytes ? (char *)c->bytes->data : c->t->data;
}

int64_t rt_dataset_bytes(const Dataset *ds)
{
    int64_t n = 0;
    for (int i = 0; i < ds->ncols; i++)
        n += ds->cols[i].t->numel * (int64_t)elem_bytes(&ds->cols[i]);
    return n;
}

static Tensor *rows_like(const Tensor *t, int64_t rows)
{
    int64_t dims[IR_MAXRANK];
    memcpy(dims, t->dims, sizeof dims);
    dims[0] = rows;
    Tensor *r = rt_tensor_new(t->dt, t->rank, dims);
    if (!r)
        ICE("cannot allocate %lld examples of a data set tensor", (long long)rows);
    return r;
}

/* Rows [begin, begin+count) of c added to out as a column of the same kind. */
static void slice_col(const DataCol *c, int64_t begin, int64_t count, Dataset *out)
{
    if (c->whole) {
        rt_dataset_add_whole(out, c->name, rt_tensor_clone(c->t));
        return;
    }
    size_t rb = row_elems(c->t) * elem_bytes(c);
    const char *src = col_data(c) + (size_t)begin * rb;
    if (!c->bytes) {
        Tensor *r = rows_like(c->t, count);
        memcpy(r->data, src, (size_t)count * rb);
        rt_dataset_add(out, c->name, r);
        return;
    }
    unsigned char *data = xmalloc((size_t)count * rb + 1);
    memcpy(data, src, (size_t)count * rb);
    int64_t dims[IR_MAXRANK];
    memcpy(dims, c->t->dims, sizeof dims);
    dims[0] = count;
    rt_dataset_add_bytes(out, c->name, c->t->dt, c->t->rank, dims, data, c->bytes->value);
}

void rt_dataset_slice(const Dataset *ds, int64_t begin, int64_t count, Dataset *out)
{
    rt_dataset_init(out);
    if (begin < 0)
        begin = 0;
    if (begin > ds->n)
        begin = ds->n;
    if (count < 0 || count > ds->n - begin)
        count = ds->n - begin;
    for (int i = 0; i < ds->ncols; i++)
        slice_col(&ds->cols[i], begin, count, out);
    out->n = ds->nrows ? count : ds->n;
}

void rt_dataset_select(const Dataset *ds, const int64_t *rows, int64_t count, Dataset *out)
{
    rt_dataset_init(out);
    for (int i = 0; i < ds->ncols; i++) {
        const DataCol *c = &ds->cols[i];
        if (c->whole) {
            rt_dataset_add_whole(out, c->name, rt_tensor_clone(c->t));
            continue;
        }
        size_t rb = row_elems(c->t) * elem_bytes(c);
        const char *src = col_data(c);
        char *dst;
        Tensor *r = NULL;
        unsigned char *bytes = NULL;
        if (c->bytes)
            dst = (char *)(bytes = xmalloc((size_t)count * rb + 1));
        else
            dst = (r = rows_like(c->t, count))->data;
        for (int64_t k = 0; k < count; k++) {
            MC_ASSERT(rows[k] >= 0 && rows[k] < ds->n);
            memcpy(dst + (size_t)k * rb, src + (size_t)rows[k] * rb, rb);
        }
        if (!c->bytes) {
            rt_dataset_add(out, c->name, r);
            continue;
        }
        int64_t dims[IR_MAXRANK];
        memcpy(dims, c->t->dims, sizeof dims);
        dims[0] = count;
        rt_dataset_add_bytes(out, c->name, c->t->dt, c->t->rank, dims, bytes, c->bytes->value);
    }
    out->n = ds->nrows ? count : ds->n;
}

bool rt_dataset_split(const Dataset *ds, double val_frac, Dataset *train, Dataset *val,
                      Diags *d)
{
    SrcLoc none = {NULL, 0, 0};
    rt_dataset_init(train);
    rt_dataset_init(val);
    if (!(val_frac > 0 && val_frac < 1)) {
        diag_error(d, none, "validation fraction %g is not between 0 and 1", val_frac);
        return false;
    }
    int64_t at = (int64_t)((double)ds->n * (1.0 - val_frac));
    if (at <= 0 || at >= ds->n) {
        diag_error(d, none,
                   "a validation fraction of %g leaves an empty %s set (%lld examples in all)",
                   val_frac, at <= 0 ? "training" : "validation", (long long)ds->n);
        return false;
    }
    rt_dataset_slice(ds, 0, at, train);
    rt_dataset_slice(ds, at, ds->n - at, val);
    return true;
}

void rt_perm_identity(int64_t *perm, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
}

void rt_shuffle(int64_t *perm, int64_t n, uint64_t seed, uint64_t epoch)
{
    uint64_t stream = rt_name_stream("shuffle");
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(rt_uniform(seed, stream, epoch, (uint64_t)i) * (double)(i + 1));
        if (j > i)
            j = i;
        int64_t tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
}

static bool fits(const Tensor *o, const Tensor *t, int64_t rows)
{
    if (!o || o->dt != t->dt || o->rank != t->rank || o->dims[0] != rows)
        return false;
    for (int i = 1; i < t->rank; i++)
        if (o->dims[i] != t->dims[i])
            return false;
    return true;
}

/* The 256 values of 8-bit data as elements of the dtype they are rounded
 * to (so these casts are exact). */
typedef union ByteTable {
    float f32[256];
    double f64[256];
    int32_t i32[256];
} ByteTable;

static void byte_table(const RtBytes *b, DType dt, ByteTable *tab)
{
    for (int i = 0; i < 256; i++) {
        if (dt == DT_F32)
            tab->f32[i] = (float)b->value[i];
        else if (dt == DT_F64)
            tab->f64[i] = b->value[i];
        else
            tab->i32[i] = (int32_t)b->value[i];
    }
}

static void bytes_f32(const float *tab, const unsigned char *src, size_t n, float *o)
{
    for (size_t i = 0; i < n; i++)
        o[i] = tab[src[i]];
}

#if defined(__x86_64__)
/* The same lookups, 16 or 8 at a time with the gather instructions: a
 * batch of 8-bit images is converted at the speed of writing it. */
__attribute__((target("avx512f"))) static void bytes_f32_avx512(const float *tab, const unsigned char *src,
                                                                size_t n, float *o)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i ix = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(src + i)));
        _mm512_storeu_ps(o + i, _mm512_i32gather_ps(ix, tab, 4));
    }
    bytes_f32(tab, src + i, n - i, o + i);
}

__attribute__((target("avx2"))) static void bytes_f32_avx2(const float *tab, const unsigned char *src, size_t n,
                                                           float *o)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i ix = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(src + i)));
        _mm256_storeu_ps(o + i, _mm256_i32gather_ps(tab, ix, 4));
    }
    bytes_f32(tab, src + i, n - i, o + i);
}
#endif

void rt_bytes_to_f32(const float tab[256], const unsigned char *src, size_t n, float *dst)
{
#if defined(__x86_64__)
    int isa = rt_conv_isa_level();
    if (isa >= 3)
        return bytes_f32_avx512(tab, src, n, dst);
    if (isa == 2)
        return bytes_f32_avx2(tab, src, n, dst);
#endif
    bytes_f32(tab, src, n, dst);
}

/* dst[i] := the value of byte src[i], for n elements of dtype dt. */
static void bytes_to_values(const ByteTable *tab, DType dt, const unsigned char *src, size_t n,
                            void *dst)
{
    if (dt == DT_F32) {
        rt_bytes_to_f32(tab->f32, src, n, dst);
    } else if (dt == DT_F64) {
        double *o = dst;
        for (size_t i = 0; i < n; i++)
            o[i] = tab->f64[src[i]];
    } else {
        int32_t *o = dst;
        for (size_t i = 0; i < n; i++)
            o[i] = tab->i32[src[i]];
    }
}

/* Rows perm[start..start+rows) of column c (perm NULL = identity) as the
 * rows of o, a tensor of c's values. */
static void gather(const DataCol *c, const int64_t *perm, int64_t start, int64_t rows, Tensor *o)
{
    size_t per = row_elems(c->t), vb = per * (size_t)ir_dtype_size(o->dt);
    ByteTable tab;
    if (c->bytes)
        byte_table(c->bytes, o->dt, &tab);
    for (int64_t k = 0; k < rows; k++) {
        int64_t src = perm ? perm[start + k] : start + k;
        MC_ASSERT(src >= 0 && src < c->t->dims[0]);
        char *dst = (char *)o->data + (size_t)k * vb;
        if (c->bytes)
            bytes_to_values(&tab, o->dt, c->bytes->data + (size_t)src * per, per, dst);
        else
            memcpy(dst, (const char *)c->t->data + (size_t)src * vb, vb);
    }
}

/* Column c's rows of a batch, put in out as a tensor of values. */
static void batch_col(const DataCol *c, const int64_t *perm, int64_t start, int64_t rows, TensorMap *out)
{
    Tensor *o = rt_map_get(out, c->name);
    if (c->whole) {
        if (!o || o->dt != c->t->dt || o->numel != c->t->numel || o->rank != c->t->rank) {
            o = rt_tensor_clone(c->t);
            if (!o)
                ICE("cannot allocate a data set tensor");
            rt_map_put(out, c->name, o);
        } else {
            memcpy(o->data, c->t->data, (size_t)rt_tensor_bytes(c->t));
        }
        return;
    }
    if (!fits(o, c->t, rows)) {
        o = rows_like(c->t, rows);
        rt_map_put(out, c->name, o);
    }
    gather(c, perm, start, rows, o);
}

static int64_t batch_rows(const Dataset *ds, int64_t start, int64_t count)
{
    return start < 0 || start >= ds->n ? 0 : count < ds->n - start ? count : ds->n - start;
}

int64_t rt_dataset_batch(const Dataset *ds, const int64_t *perm, int64_t start, int64_t count,
                         TensorMap *out)
{
    int64_t rows = batch_rows(ds, start, count);
    for (int i = 0; i < ds->ncols && rows > 0; i++)
        batch_col(&ds->cols[i], perm, start, rows, out);
    return rows;
}

int64_t rt_dataset_rows(const Dataset *ds, int64_t start, int64_t count, TensorMap *out, Tensor *views)
{
    int64_t rows = batch_rows(ds, start, count);
    for (int i = 0; i < ds->ncols; i++) {
        const DataCol *c = &ds->cols[i];
        Tensor *v = &views[i];
        memset(v, 0, sizeof *v);
        if (rows <= 0)
            continue;
        if (c->whole || c->bytes) {
            batch_col(c, NULL, start, rows, out);
            continue;
        }
        *v = *c->t;
        v->dims[0] = rows;
        v->numel = rows * (int64_t)row_elems(c->t);
        v->data = (char *)c->t->data + (size_t)start * row_elems(c->t) * (size_t)ir_dtype_size(c->t->dt);
    }
    return rows;
}

int64_t rt_dataset_decode_bytes(Dataset *ds, int64_t max_bytes)
{
    int64_t used = 0;
    for (int i = 0; i < ds->ncols; i++) {
        DataCol *c = &ds->cols[i];
        if (!c->bytes || rt_tensor_bytes(c->t) > max_bytes - used)
            continue;
        Shape sh = {.rank = c->t->rank};
        for (int k = 0; k < sh.rank; k++)
            sh.d[k] = c->t->dims[k];
        Tensor *t = rt_tensor_try_for(c->t->dt, &sh);
        if (!t)
            continue; /* out of memory: stays bytes */
        ByteTable tab;
        byte_table(c->bytes, t->dt, &tab);
        bytes_to_values(&tab, t->dt, c->bytes->data, (size_t)t->numel, t->data);
        used += rt_tensor_bytes(t);
        rt_tensor_free(c->t);
        c->t = t;
        xfree(c->bytes->data);
        xfree(c->bytes);
        c->bytes = NULL;
    }
    return used;
}

bool rt_dataset_uniform(Dataset *out, int64_t n, DType dt, const char *x_name,
                        const char *y_name, double lo, double hi, uint64_t seed)
{
    rt_dataset_init(out);
    int64_t dims[2] = {n, 1};
    Tensor *x = rt_tensor_new(dt, 2, dims);
    if (!x)
        return false;
    uint64_t stream = rt_name_stream("data.uniform");
    for (int64_t i = 0; i < n; i++)
        rt_set(x, i, lo + (hi - lo) * rt_uniform(seed, stream, 0, (uint64_t)i));
    Tensor *y = y_name ? rt_tensor_clone(x) : NULL;
    rt_dataset_add(out, x_name, x);
    if (y_name && !rt_dataset_add(out, y_name, y)) {
        rt_dataset_free(out);
        return false;
    }
    return true;
}

Tensor *rt_one_hot(const Tensor *labels, int classes, DType dt)
{
    int64_t dims[2] = {labels->dims[0], classes};
    Tensor *h = rt_tensor_new(dt, 2, dims);
    if (!h)
        ICE("cannot allocate one-hot labels");
    for (int64_t i = 0; i < labels->numel; i++)
        rt_set(h, i * classes + (int64_t)rt_get(labels, i), 1.0);
    return h;
}

/* ---- safetensors data sets ---- */

static bool check_labels_tensor(const Tensor *y, const char *name, const RtLoadOpts *o,
                                SrcLoc loc, Diags *d)
{
    if (y->rank != 1) {
        diag_error(d, loc, "labels '%s' must have one dimension, not %d", name, y->rank);
        return false;
    }
    for (int64_t i = 0; i < y->numel; i++) {
        double v = rt_get(y, i);
        if (v < 0 || v >= o->classes) {
            diag_error(d, loc, "label %.0f at index %lld of '%s' is out of range (%d classes)", v,
                       (long long)i, name, o->classes);
            return false;
        }
    }
    return true;
}

/* Convert one file tensor for the data set: floats to o->dt, labels
 * checked (and one-hot encoded when asked). NULL after a diagnostic. */
static Tensor *dataset_tensor(Tensor *t, const char *name, const RtLoadOpts *o, SrcLoc loc,
                              Diags *d)
{
    if (t->dt == DT_I32 && o->classes > 0 && strcmp(name, o->y_name) == 0) {
        if (!check_labels_tensor(t, name, o, loc, d))
            return NULL;
        return o->one_hot ? rt_one_hot(t, o->classes, o->dt) : rt_tensor_clone(t);
    }
    if (ir_dtype_is_float(t->dt))
        return rt_tensor_cast(t, o->dt);
    return rt_tensor_clone(t);
}

bool rt_load_safetensors_dataset(const char *path, const RtLoadOpts *o, Dataset *out,
                                 Diags *d)
{
    rt_dataset_init(out);
    TensorMap m;
    rt_map_init(&m);
    if (!rt_safetensors_read(path, &m, NULL, d))
        return false;
    SrcLoc loc = rt_file_loc(d, path);
    bool ok = m.n > 0;
    if (!ok)
        diag_error(d, loc, "the file contains no tensors");
    int first = -1; /* the first tensor with an example axis */
    for (int i = 0; ok && i < m.n; i++) {
        const Tensor *t = m.t[i];
        bool whole = false;
        for (int k = 0; k < o->nwhole; k++)
            whole |= strcmp(o->whole[k], m.names[i]) == 0;
        if (whole)
            continue;
        if (first < 0)
            first = i;
        if (t->rank == 0) {
            diag_error(d, loc, "tensor '%s' is a scalar; data set tensors need a leading "
                               "example dimension",
                       m.names[i]);
            ok = false;
        } else if (t->dims[0] != m.t[first]->dims[0]) {
            diag_error(d, loc, "tensor '%s' has %lld examples, but '%s' has %lld", m.names[i],
                       (long long)t->dims[0], m.names[first], (long long)m.t[first]->dims[0]);
            ok = false;
        }
    }
    for (int i = 0; ok && i < m.n; i++) {
        bool whole = false;
        for (int k = 0; k < o->nwhole; k++)
            whole |= strcmp(o->whole[k], m.names[i]) == 0;
        if (whole) {
            rt_dataset_add_whole(out, m.names[i], rt_tensor_clone(m.t[i]));
            continue;
        }
        Tensor *c = dataset_tensor(m.t[i], m.names[i], o, loc, d);
        ok = c != NULL;
        if (ok)
            rt_dataset_add(out, m.names[i], c);
    }
    rt_map_free(&m);
    if (!ok)
        rt_dataset_free(out);
    return ok;
}
