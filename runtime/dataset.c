/* Data sets: named tensors sharing a leading example dimension, seeded
 * shuffling, batch extraction, validation splits, generated data and
 * safetensors data sets. */
#include "rtio.h"

#include <string.h>

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
    ds->n = 0;
    rt_map_init(&ds->t);
}

void rt_dataset_free(Dataset *ds)
{
    rt_map_free(&ds->t);
    ds->n = 0;
}

bool rt_dataset_add(Dataset *ds, const char *name, Tensor *t)
{
    if (!t)
        return false;
    if (t->rank == 0 || (ds->t.n > 0 && t->dims[0] != ds->n)) {
        rt_tensor_free(t);
        return false;
    }
    if (ds->t.n == 0)
        ds->n = t->dims[0];
    rt_map_put(&ds->t, name, t);
    return true;
}

Tensor *rt_dataset_get(const Dataset *ds, const char *name)
{
    return rt_map_get(&ds->t, name);
}

/* Bytes of one example of t. */
static size_t row_bytes(const Tensor *t)
{
    size_t r = (size_t)ir_dtype_size(t->dt);
    for (int i = 1; i < t->rank; i++)
        r *= (size_t)t->dims[i];
    return r;
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

void rt_dataset_slice(const Dataset *ds, int64_t begin, int64_t count, Dataset *out)
{
    rt_dataset_init(out);
    if (begin < 0)
        begin = 0;
    if (begin > ds->n)
        begin = ds->n;
    if (count < 0 || count > ds->n - begin)
        count = ds->n - begin;
    for (int i = 0; i < ds->t.n; i++) {
        const Tensor *t = ds->t.t[i];
        Tensor *r = rows_like(t, count);
        size_t rb = row_bytes(t);
        memcpy(r->data, (const char *)t->data + (size_t)begin * rb, (size_t)count * rb);
        rt_dataset_add(out, ds->t.names[i], r);
    }
    out->n = count;
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

int64_t rt_dataset_batch(const Dataset *ds, const int64_t *perm, int64_t start, int64_t count,
                         TensorMap *out)
{
    int64_t rows = start < 0 || start >= ds->n ? 0 : count < ds->n - start ? count : ds->n - start;
    if (rows <= 0)
        return 0;
    for (int i = 0; i < ds->t.n; i++) {
        const Tensor *t = ds->t.t[i];
        Tensor *o = rt_map_get(out, ds->t.names[i]);
        if (!fits(o, t, rows)) {
            o = rows_like(t, rows);
            rt_map_put(out, ds->t.names[i], o);
        }
        size_t rb = row_bytes(t);
        for (int64_t k = 0; k < rows; k++) {
            int64_t src = perm ? perm[start + k] : start + k;
            MC_ASSERT(src >= 0 && src < ds->n);
            memcpy((char *)o->data + (size_t)k * rb, (const char *)t->data + (size_t)src * rb, rb);
        }
    }
    return rows;
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
    for (int i = 0; ok && i < m.n; i++) {
        const Tensor *t = m.t[i];
        if (t->rank == 0) {
            diag_error(d, loc, "tensor '%s' is a scalar; data set tensors need a leading "
                               "example dimension",
                       m.names[i]);
            ok = false;
        } else if (t->dims[0] != m.t[0]->dims[0]) {
            diag_error(d, loc, "tensor '%s' has %lld examples, but '%s' has %lld", m.names[i],
                       (long long)t->dims[0], m.names[0], (long long)m.t[0]->dims[0]);
            ok = false;
        }
    }
    for (int i = 0; ok && i < m.n; i++) {
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
