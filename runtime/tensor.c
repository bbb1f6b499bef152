/* Tensors (64-byte aligned, overflow-checked) and named tensor maps. */
#include "runtime.h"

#include <stdlib.h>
#include <string.h>

/* Concrete dimensions (no N) that pass the size check of every shape. */
static bool numel_of(int rank, const int64_t *dims, int64_t *numel)
{
    for (int i = 0; i < rank; i++)
        if (dims[i] < 0)
            return false;
    *numel = ir_dims_numel(rank, dims);
    return *numel >= 0;
}

static Tensor *tensor_new(DType dt, int rank, const int64_t *dims, bool jump)
{
    int64_t numel, bytes;
    if (dt < 0 || dt >= DT_COUNT || rank < 0 || rank > IR_MAXRANK)
        return NULL;
    if (!numel_of(rank, dims, &numel) || mul_overflow_i64(numel, ir_dtype_size(dt), &bytes) ||
        bytes > RT_TENSOR_MAX_BYTES)
        return NULL;
    size_t alloc = ((size_t)bytes + 63) & ~(size_t)63;
    void *data = mem_aligned_alloc(64, alloc ? alloc : 64, jump);
    if (!data)
        return NULL;
    memset(data, 0, alloc ? alloc : 64);
    Tensor *t = xcalloc(1, sizeof(Tensor));
    t->dt = dt;
    t->rank = rank;
    for (int i = 0; i < rank; i++)
        t->dims[i] = dims[i];
    t->numel = numel;
    t->data = data;
    return t;
}

const char *rt_tensor_failure(DType dt, int rank, const int64_t *dims, char *buf, size_t n)
{
    int64_t numel, bytes;
    if (dt < 0 || dt >= DT_COUNT || rank < 0 || rank > IR_MAXRANK || !numel_of(rank, dims, &numel) ||
        mul_overflow_i64(numel, ir_dtype_size(dt), &bytes))
        snprintf(buf, n, "too large (more than %lld elements)", (long long)IR_MAX_ELEMS);
    else if (bytes > RT_TENSOR_MAX_BYTES)
        snprintf(buf, n, "too large (%lld bytes; the limit is %lld)", (long long)bytes,
                 (long long)RT_TENSOR_MAX_BYTES);
    else
        snprintf(buf, n, "out of memory (%lld bytes)", (long long)bytes);
    return buf;
}

Tensor *rt_tensor_new(DType dt, int rank, const int64_t *dims)
{
    return tensor_new(dt, rank, dims, true);
}

Tensor *rt_tensor_try_for(DType dt, const Shape *s)
{
    return tensor_new(dt, s->rank, s->d, false);
}

int64_t rt_tensor_bytes(const Tensor *t)
{
    return t->numel * ir_dtype_size(t->dt);
}

Tensor *rt_tensor_like(const Tensor *t)
{
    return rt_tensor_new(t->dt, t->rank, t->dims);
}

Tensor *rt_tensor_clone(const Tensor *t)
{
    Tensor *c = rt_tensor_like(t);
    if (c)
        memcpy(c->data, t->data, (size_t)rt_tensor_bytes(t));
    return c;
}

Tensor *rt_tensor_cast(const Tensor *t, DType dt)
{
    if (t->dt == dt)
        return rt_tensor_clone(t);
    Tensor *c = rt_tensor_new(dt, t->rank, t->dims);
    if (c)
        for (int64_t i = 0; i < t->numel; i++)
            rt_set(c, i, rt_get(t, i));
    return c;
}

Tensor *rt_tensor_for(DType dt, const Shape *s, int64_t n)
{
    int64_t dims[IR_MAXRANK];
    for (int i = 0; i < s->rank; i++)
        dims[i] = ir_dim_eval(s->d[i], n);
    return rt_tensor_new(dt, s->rank, dims);
}

void rt_tensor_free(Tensor *t)
{
    if (!t)
        return;
    xfree(t->data);
    xfree(t);
}

double rt_get(const Tensor *t, int64_t i)
{
    switch (t->dt) {
    case DT_F32:
        return ((const float *)t->data)[i];
    case DT_F64:
        return ((const double *)t->data)[i];
    case DT_I32:
        return ((const int32_t *)t->data)[i];
    default:
        ICE("bad dtype %d", (int)t->dt);
    }
}

void rt_set(Tensor *t, int64_t i, double v)
{
    switch (t->dt) {
    case DT_F32:
        ((float *)t->data)[i] = (float)v;
        break;
    case DT_F64:
        ((double *)t->data)[i] = v;
        break;
    case DT_I32:
        ((int32_t *)t->data)[i] = (int32_t)v;
        break;
    default:
        ICE("bad dtype %d", (int)t->dt);
    }
}

double rt_dtype_round(DType dt, double v)
{
    Tensor one = {.dt = dt, .rank = 0, .numel = 1, .data = &(double){0}};
    rt_set(&one, 0, v);
    return rt_get(&one, 0);
}

bool rt_tensor_same_shape(const Tensor *a, const Tensor *b)
{
    if (a->rank != b->rank)
        return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i])
            return false;
    return true;
}

bool rt_tensor_matches(const Tensor *t, const Shape *s, int64_t n_in, int64_t *n)
{
    int64_t bound = n_in;
    if (t->rank != s->rank)
        return false;
    for (int i = 0; i < s->rank; i++) {
        int64_t f = ir_dim_factor(s->d[i]);
        if (!ir_dim_is_batch(s->d[i])) {
            if (t->dims[i] != s->d[i])
                return false;
        } else if (t->dims[i] % f != 0) {
            return false;
        } else if (bound < 0) {
            bound = t->dims[i] / f;
        } else if (t->dims[i] / f != bound) {
            return false;
        }
    }
    if (n)
        *n = ir_shape_has_n(s) ? bound : -1;
    return true;
}

char *rt_tensor_type_str(const Tensor *t, char *buf, size_t n)
{
    Shape s = ir_shape(t->rank, t->dims);
    return ir_type_str(t->dt, &s, buf, n);
}

void rt_map_init(TensorMap *m)
{
    memset(m, 0, sizeof *m);
}

void rt_map_free(TensorMap *m)
{
    for (int i = 0; i < m->n; i++) {
        xfree(m->names[i]);
        rt_tensor_free(m->t[i]);
    }
    xfree(m->names);
    xfree(m->t);
    rt_map_init(m);
}

int rt_map_find(const TensorMap *m, const char *name)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->names[i], name) == 0)
            return i;
    return -1;
}

void rt_map_put(TensorMap *m, const char *name, Tensor *t)
{
    int i = rt_map_find(m, name);
    if (i >= 0) {
        if (m->t[i] != t)
            rt_tensor_free(m->t[i]);
        m->t[i] = t;
        return;
    }
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 8;
        m->names = xrealloc(m->names, (size_t)m->cap * sizeof(char *));
        m->t = xrealloc(m->t, (size_t)m->cap * sizeof(Tensor *));
    }
    m->names[m->n] = xstrdup(name);
    m->t[m->n] = t;
    m->n++;
}

Tensor *rt_map_get(const TensorMap *m, const char *name)
{
    int i = rt_map_find(m, name);
    return i >= 0 ? m->t[i] : NULL;
}

Tensor *rt_map_take(TensorMap *m, const char *name)
{
    int i = rt_map_find(m, name);
    if (i < 0)
        return NULL;
    Tensor *t = m->t[i];
    xfree(m->names[i]);
    memmove(m->names + i, m->names + i + 1, (size_t)(m->n - i - 1) * sizeof(char *));
    memmove(m->t + i, m->t + i + 1, (size_t)(m->n - i - 1) * sizeof(Tensor *));
    m->n--;
    return t;
}
