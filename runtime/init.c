/* Parameter initializers with Keras semantics. Element i of a tensor draws
 * from rt_uniform/rt_normal(seed, stream, round, i), where round counts the
 * redraws of a truncated normal, so every value is independent of the
 * order in which elements (or parameters) are initialised. */
#include "runtime.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

/* Keras: std of a standard normal truncated to [-2, 2]. */
#define TRUNC_STD_CORRECTION 0.87962566103423978
/* A 2-sigma redraw happens with probability 0.0455; after this many
 * rounds (probability 1e-1340) the value is clamped instead. */
#define MAX_REDRAWS 1000

uint64_t rt_name_stream(const char *name)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    return h;
}

static double trunc_normal(uint64_t seed, uint64_t stream, int64_t i)
{
    for (uint64_t r = 0; r < MAX_REDRAWS; r++) {
        double z = rt_normal(seed, stream, r, (uint64_t)i);
        if (fabs(z) <= 2.0)
            return z;
    }
    return 0.0;
}

/* t[i0 .. i0 + n - 1] = v[0 .. n - 1] */
static void put(Tensor *t, int64_t i0, const double *v, int64_t n)
{
    if (t->dt == DT_F32) {
        float *p = (float *)t->data + i0;
        for (int64_t i = 0; i < n; i++)
            p[i] = (float)v[i];
    } else if (t->dt == DT_F64) {
        memcpy((double *)t->data + i0, v, (size_t)n * sizeof(double));
    } else {
        for (int64_t i = 0; i < n; i++)
            rt_set(t, i0 + i, v[i]);
    }
}

static void fill_const(Tensor *t, double v)
{
    double c[256];
    for (int i = 0; i < 256; i++)
        c[i] = v;
    for (int64_t i0 = 0; i0 < t->numel; i0 += 256)
        put(t, i0, c, t->numel - i0 < 256 ? t->numel - i0 : 256);
}

/* A uniform fill of elements [a, b). */
typedef struct UniformPart {
    Tensor *t;
    double lo, hi;
    uint64_t seed, stream;
    int64_t a, b;
} UniformPart;

static void *uniform_part(void *arg)
{
    const UniformPart *q = arg;
    double u[256];
    for (int64_t i0 = q->a; i0 < q->b; i0 += 256) {
        int64_t n = q->b - i0 < 256 ? q->b - i0 : 256;
        rt_uniform_fill(q->seed, q->stream, 0, (uint64_t)i0, n, u);
        for (int64_t i = 0; i < n; i++)
            u[i] = q->lo + (q->hi - q->lo) * u[i];
        put(q->t, i0, u, n);
    }
    return NULL;
}

/* Element i's value depends on i alone, so a large tensor is filled in
 * parts on up to FILL_THREADS threads (the kernel of a 12544x128 dense
 * layer took 20 ms on one). */
#define FILL_THREADS 4
#define FILL_MIN_PART (1 << 17)
static void fill_uniform(Tensor *t, double lo, double hi, uint64_t seed, uint64_t stream)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int64_t nth = t->numel / FILL_MIN_PART;
    if (nth > cpus)
        nth = cpus;
    if (nth > FILL_THREADS)
        nth = FILL_THREADS;
    if (nth < 1)
        nth = 1;
    UniformPart q[FILL_THREADS];
    pthread_t th[FILL_THREADS];
    bool started[FILL_THREADS] = {false};
    int64_t per = (t->numel + nth - 1) / nth;
    for (int64_t k = 0; k < nth; k++) {
        int64_t a = k * per, b = a + per < t->numel ? a + per : t->numel;
        q[k] = (UniformPart){t, lo, hi, seed, stream, a, b};
        if (k > 0)
            started[k] = pthread_create(&th[k], NULL, uniform_part, &q[k]) == 0;
    }
    uniform_part(&q[0]);
    for (int64_t k = 1; k < nth; k++) {
        if (started[k])
            pthread_join(th[k], NULL);
        else
            uniform_part(&q[k]); /* no thread: fill it here */
    }
}

static void fill_normal(Tensor *t, double mean, double std, uint64_t seed, uint64_t stream)
{
    for (int64_t i = 0; i < t->numel; i++)
        rt_set(t, i, mean + std * rt_normal(seed, stream, 0, (uint64_t)i));
}

static void fill_trunc(Tensor *t, double mean, double std, uint64_t seed, uint64_t stream)
{
    for (int64_t i = 0; i < t->numel; i++)
        rt_set(t, i, mean + std * trunc_normal(seed, stream, i));
}

/* Keras's orthogonal: a normal matrix of rows = the product of all axes
 * but the last and cols = the last, its fewer vectors (rows or columns)
 * made orthonormal, by Gram-Schmidt here (Q of QR with R's diagonal
 * positive). */
static void fill_orthogonal(Tensor *t, uint64_t seed, uint64_t stream)
{
    int64_t cols = t->rank ? t->dims[t->rank - 1] : 1, rows = t->numel / (cols ? cols : 1);
    bool wide = rows < cols;
    int64_t m = wide ? cols : rows, n = wide ? rows : cols; /* q: m x n, orthonormal columns */
    double *q = xmalloc((size_t)(m * n) * sizeof(double));
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) {
            double z = rt_normal(seed, stream, 0, (uint64_t)(i * cols + j));
            q[wide ? j * n + i : i * n + j] = z;
        }
    for (int64_t j = 0; j < n; j++) {
        for (int64_t k = 0; k < j; k++) {
            double dot = 0;
            for (int64_t i = 0; i < m; i++)
                dot += q[i * n + k] * q[i * n + j];
            for (int64_t i = 0; i < m; i++)
                q[i * n + j] -= dot * q[i * n + k];
        }
        double norm = 0;
        for (int64_t i = 0; i < m; i++)
            norm += q[i * n + j] * q[i * n + j];
        norm = norm > 0 ? 1 / sqrt(norm) : 0;
        for (int64_t i = 0; i < m; i++)
            q[i * n + j] *= norm;
    }
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            rt_set(t, i * cols + j, wide ? q[j * n + i] : q[i * n + j]);
    xfree(q);
}

/* Zeros, with ones in the second quarter (an LSTM's forget gate). */
static void fill_unit_forget(Tensor *t)
{
    int64_t u = t->numel / 4;
    for (int64_t i = 0; i < t->numel; i++)
        rt_set(t, i, i >= u && i < 2 * u ? 1 : 0);
}

void rt_init_tensor(Tensor *t, Init init, uint64_t seed, uint64_t stream)
{
    if (t->numel == 0)
        return;
    Shape s = ir_shape(t->rank, t->dims);
    double fan_in, fan_out;
    ir_fans(&s, &fan_in, &fan_out);
    double fan_avg = (fan_in + fan_out) / 2;
    switch (init.kind) {
    case INIT_NONE:
        return;
    case INIT_ZEROS:
        fill_const(t, 0);
        return;
    case INIT_ONES:
        fill_const(t, 1);
        return;
    case INIT_CONSTANT:
        fill_const(t, init.a);
        return;
    case INIT_NORMAL:
        fill_normal(t, init.a, init.b, seed, stream);
        return;
    case INIT_UNIFORM:
        fill_uniform(t, init.a, init.b, seed, stream);
        return;
    case INIT_TRUNC_NORMAL:
        fill_trunc(t, init.a, init.b, seed, stream);
        return;
    case INIT_GLOROT_UNIFORM: {
        double lim = sqrt(3.0 / fan_avg);
        fill_uniform(t, -lim, lim, seed, stream);
        return;
    }
    case INIT_GLOROT_NORMAL:
        fill_trunc(t, 0, sqrt(1.0 / fan_avg) / TRUNC_STD_CORRECTION, seed, stream);
        return;
    case INIT_HE_UNIFORM: {
        double lim = sqrt(6.0 / fan_in);
        fill_uniform(t, -lim, lim, seed, stream);
        return;
    }
    case INIT_HE_NORMAL:
        fill_trunc(t, 0, sqrt(2.0 / fan_in) / TRUNC_STD_CORRECTION, seed, stream);
        return;
    case INIT_LECUN_NORMAL:
        fill_trunc(t, 0, sqrt(1.0 / fan_in) / TRUNC_STD_CORRECTION, seed, stream);
        return;
    case INIT_LECUN_UNIFORM: {
        double lim = sqrt(3.0 / fan_in);
        fill_uniform(t, -lim, lim, seed, stream);
        return;
    }
    case INIT_ORTHOGONAL:
        fill_orthogonal(t, seed, stream);
        return;
    case INIT_UNIT_FORGET_BIAS:
        fill_unit_forget(t);
        return;
    case INIT_COUNT:
        break;
    }
    ICE("bad initializer kind %d", (int)init.kind);
}

void rt_param_alloc_error(const Node *p, Diags *d)
{
    char ty[128], why[96];
    ir_type_str(p->dt, &p->shape, ty, sizeof ty);
    diag_error(d, p->loc, "cannot allocate parameter '%s' (%s): %s", p->a.name, ty,
               rt_tensor_failure(p->dt, p->shape.rank, p->shape.d, why, sizeof why));
}

bool rt_init_params(const Graph *g, TensorMap *m, uint64_t seed, bool overwrite, Diags *d)
{
    bool ok = true;
    for (int i = 0; i < g->nnodes; i++) {
        const Node *p = g->nodes[i];
        if (p->op != OP_PARAM || p->a.init.kind == INIT_NONE)
            continue;
        if (!overwrite && rt_map_get(m, p->a.name))
            continue;
        if (ir_shape_has_n(&p->shape))
            ICE("parameter '%s' has the batch dimension N in its shape", p->a.name);
        Tensor *t = rt_tensor_try_for(p->dt, &p->shape);
        if (!t) {
            rt_param_alloc_error(p, d);
            ok = false;
            continue;
        }
        rt_init_tensor(t, p->a.init, seed, rt_name_stream(p->a.name));
        rt_map_put(m, p->a.name, t);
    }
    return ok;
}
