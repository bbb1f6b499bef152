/* Interpreter routines for matmul, 2-D convolution (NHWC data, HWIO
 * kernels) and its two adjoints, max/avg pooling and their adjoints,
 * softmax, log_softmax and the fused softmax cross-entropy rows
 * (log_softmax_dot, log_softmax_grad), one_hot, gather and its adjoint,
 * the dropout mask and the mean over the processes of a data-parallel job
 * (replica_mean). */
#include "backend/interp/interp_impl.h"
#include "runtime/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Geometry of a window op: input x [n,h,w,c], output y [n,oh,ow,oc],
 * window kh x kw (kernel [kh,kw,c,oc] for conv), strides and the top/left
 * padding (bottom/right padding only shape oh/ow). */
typedef struct Geom {
    int64_t n, h, w, c;
    int64_t oh, ow, oc;
    int64_t kh, kw;
    int64_t sh, sw, pt, pl;
} Geom;

#define X_AT(g, b, y, x, ch) ((((b) * (g)->h + (y)) * (g)->w + (x)) * (g)->c + (ch))
#define Y_AT(g, b, y, x, ch) ((((b) * (g)->oh + (y)) * (g)->ow + (x)) * (g)->oc + (ch))
#define K_AT(g, ky, kx, ci, co) ((((ky) * (g)->kw + (kx)) * (g)->c + (ci)) * (g)->oc + (co))

static bool geom_inside(const Geom *g, int64_t iy, int64_t ix)
{
    return iy >= 0 && iy < g->h && ix >= 0 && ix < g->w;
}

/* Non-padding positions in window (oy, ox). */
static int64_t geom_count(const Geom *g, int64_t oy, int64_t ox)
{
    int64_t cnt = 0;
    for (int64_t ky = 0; ky < g->kh; ky++)
        for (int64_t kx = 0; kx < g->kw; kx++)
            cnt += geom_inside(g, oy * g->sh + ky - g->pt, ox * g->sw + kx - g->pl);
    return cnt;
}

static Geom geom(const Node *nd, const Tensor *x, const Tensor *y, int64_t kh, int64_t kw)
{
    const Attrs *a = &nd->a;
    Geom g = {
        .n = x->dims[0], .h = x->dims[1], .w = x->dims[2], .c = x->dims[3],
        .oh = y->dims[1], .ow = y->dims[2], .oc = y->dims[3],
        .kh = kh, .kw = kw,
        .sh = a->stride[0], .sw = a->stride[1], .pt = a->pad[0], .pl = a->pad[2],
    };
    MC_ASSERT(x->rank == 4 && y->rank == 4 && y->dims[0] == g.n);
    MC_ASSERT(g.oh == (g.h + a->pad[0] + a->pad[1] - kh) / g.sh + 1);
    MC_ASSERT(g.ow == (g.w + a->pad[2] + a->pad[3] - kw) / g.sw + 1);
    return g;
}

static Geom conv_geom(const Node *nd, const Tensor *x, const Tensor *k, const Tensor *y)
{
    MC_ASSERT(k->rank == 4 && k->dims[2] == x->dims[3] && k->dims[3] == y->dims[3]);
    return geom(nd, x, y, k->dims[0], k->dims[1]);
}

static Geom pool_geom(const Node *nd, const Tensor *x, const Tensor *y)
{
    MC_ASSERT(x->dims[3] == y->dims[3]);
    return geom(nd, x, y, nd->a.window[0], nd->a.window[1]);
}

#define KERN_FILE "kern_nn.inc"
#include "kern_instantiate.inc"

/* Element offset of the matrix of t (rank >= 2) at batch index c of a
 * result with nb batch axes, t's batch axes broadcast (right-aligned). */
static int64_t batch_offset(const Tensor *t, int nb, const int64_t *c)
{
    int tb = t->rank - 2;
    int64_t off = 0, stride = t->dims[t->rank - 2] * t->dims[t->rank - 1];
    for (int k = tb - 1; k >= 0; k--) {
        int64_t ck = c[k + nb - tb];
        off += (t->dims[k] == 1 ? 0 : ck) * stride;
        stride *= t->dims[k];
    }
    return off;
}

/* One GEMM per matrix of the result, batch index row-major. */
INTERP_FN(matmul)
{
    const Tensor *a = in[0], *b = in[1];
    bool ta = nd->a.ta, tb = nd->a.tb;
    int nb = out->rank - 2;
    int64_t m = out->dims[nb], n = out->dims[nb + 1], k = a->dims[a->rank - (ta ? 2 : 1)];
    int64_t lda = a->dims[a->rank - 1], ldb = b->dims[b->rank - 1], count = 1, c[IR_MAXRANK] = {0};
    for (int i = 0; i < nb; i++)
        count *= out->dims[i];
    size_t es = (size_t)ir_dtype_size(out->dt);
    for (int64_t i = 0; i < count; i++) {
        const char *x = (const char *)a->data + (size_t)batch_offset(a, nb, c) * es;
        const char *y = (const char *)b->data + (size_t)batch_offset(b, nb, c) * es;
        char *z = (char *)out->data + (size_t)(i * m * n) * es;
        IX_BY_DTYPE(out->dt, matmul, (const void *)x, (const void *)y, m, n, k, lda, ldb, ta, tb, nd->a.alpha,
                    (void *)z);
        ix_next(nb, out->dims, c);
    }
    return true;
}

INTERP_FN(conv2d)
{
    Geom g = conv_geom(nd, in[0], in[1], out);
    IX_BY_DTYPE(out->dt, conv2d, &g, in[0], in[1], out);
    if (nd->a.alpha != 1) { /* the result scale a fusion folded in, as a mul by a constant of out's dtype */
        double a = out->dt == DT_F32 ? (double)(float)nd->a.alpha : nd->a.alpha;
        for (int64_t i = 0; i < out->numel; i++)
            rt_set(out, i, a * rt_get(out, i));
    }
    return true;
}

INTERP_FN(conv2d_grad_input) /* (dy, k) -> dx */
{
    Geom g = conv_geom(nd, out, in[1], in[0]);
    IX_BY_DTYPE(out->dt, conv2d_grad_input, &g, in[0], in[1], out);
    return true;
}

INTERP_FN(conv2d_grad_kernel) /* (x, dy) -> dk */
{
    Geom g = conv_geom(nd, in[0], out, in[1]);
    IX_BY_DTYPE(out->dt, conv2d_grad_kernel, &g, in[0], in[1], out);
    return true;
}

INTERP_FN(max_pool2d)
{
    Geom g = pool_geom(nd, in[0], out);
    IX_BY_DTYPE(out->dt, max_pool2d, &g, in[0], out);
    return true;
}

INTERP_FN(max_pool2d_grad) /* (x, dy) -> dx */
{
    Geom g = pool_geom(nd, in[0], in[1]);
    IX_BY_DTYPE(out->dt, max_pool2d_grad, &g, in[0], in[1], out);
    return true;
}

/* The offset in x of each window's maximum, as max_pool2d (node nd,
 * result y) takes it: the branch gradcheck records for the op. */
void be_interp_pool_argmax(const Node *nd, const Tensor *x, const Tensor *y, int32_t *key)
{
    Geom g = pool_geom(nd, x, y);
    for (int64_t b = 0; b < g.n; b++)
        for (int64_t oy = 0; oy < g.oh; oy++)
            for (int64_t ox = 0; ox < g.ow; ox++)
                for (int64_t ch = 0; ch < g.c; ch++) {
                    int64_t at = x->dt == DT_F32 ? window_argmax_f32(&g, x->data, b, oy, ox, ch)
                                                 : window_argmax_f64(&g, x->data, b, oy, ox, ch);
                    key[Y_AT(&g, b, oy, ox, ch)] = (int32_t)(at < 0 ? -1 : at % (g.h * g.w * g.c));
                }
}

INTERP_FN(avg_pool2d)
{
    Geom g = pool_geom(nd, in[0], out);
    IX_BY_DTYPE(out->dt, avg_pool2d, &g, in[0], out);
    return true;
}

INTERP_FN(avg_pool2d_grad) /* (dy) -> dx */
{
    Geom g = pool_geom(nd, out, in[0]);
    IX_BY_DTYPE(out->dt, avg_pool2d_grad, &g, in[0], out);
    return true;
}

/* a seen as [outer, len, inner] around the axis axes[0]. */
typedef struct Rows {
    int64_t outer, len, inner;
} Rows;

static Rows rows_of(const Node *nd, const Tensor *a)
{
    int ax = nd->a.axes[0];
    Rows r = {1, a->dims[ax], 1};
    for (int k = 0; k < ax; k++)
        r.outer *= a->dims[k];
    for (int k = ax + 1; k < a->rank; k++)
        r.inner *= a->dims[k];
    return r;
}

static void softmax_any(const Node *nd, const Tensor *a, bool logv, Tensor *out)
{
    Rows r = rows_of(nd, a);
    IX_BY_DTYPE(out->dt, softmax, a, r.outer, r.len, r.inner, logv, out);
}

INTERP_FN(softmax)
{
    softmax_any(nd, in[0], false, out);
    return true;
}

INTERP_FN(log_softmax)
{
    softmax_any(nd, in[0], true, out);
    return true;
}

INTERP_FN(log_softmax_dot) /* (z, t) */
{
    Rows r = rows_of(nd, in[0]);
    IX_BY_DTYPE(out->dt, log_softmax_dot, in[0], in[1], r.outer, r.len, r.inner, out);
    return true;
}

INTERP_FN(log_softmax_grad) /* (z, gy) */
{
    Rows r = rows_of(nd, in[0]);
    IX_BY_DTYPE(out->dt, log_softmax_grad, in[0], in[1], r.outer, r.len, r.inner, out);
    return true;
}

/* out[i, k] = 1 when the index value x[i] equals k, else 0: an index
 * outside [0, depth), a fraction or NaN gives an all-zero row. */
INTERP_FN(one_hot)
{
    int64_t depth = nd->a.depth;
    MC_ASSERT(out->numel == in[0]->numel * depth);
    for (int64_t i = 0; i < in[0]->numel; i++) {
        double v = ix_load(in[0], i);
        for (int64_t k = 0; k < depth; k++)
            ix_store(out, i * depth + k, v == (double)k ? 1.0 : 0.0);
    }
    return true;
}

/* The gathered tensor (x, or the result of gather_grad) seen as [outer,
 * len, inner] around the axis; nidx indices. */
typedef struct GatherGeom {
    int64_t outer, len, inner, nidx;
} GatherGeom;

static GatherGeom gather_geom(const Node *nd, const int64_t *dims, int rank, const Tensor *ix)
{
    int ax = nd->a.axes[0];
    GatherGeom g = {1, dims[ax], 1, ix->numel};
    for (int k = 0; k < ax; k++)
        g.outer *= dims[k];
    for (int k = ax + 1; k < rank; k++)
        g.inner *= dims[k];
    return g;
}

/* The indices as offsets along the axis (xmalloc'd), or NULL after a
 * diagnostic at nd naming the first one outside [0, len) or not an
 * integer. */
static int64_t *gather_offsets(Interp *ip, const Node *nd, const Tensor *ix, int64_t len)
{
    int64_t *at = xmalloc((size_t)(ix->numel + 1) * sizeof(int64_t));
    for (int64_t j = 0; j < ix->numel; j++) {
        double v = ix_load(ix, j);
        if (!(v >= 0 && v < (double)len && v == floor(v))) {
            diag_error(ip->d, nd->loc, "%s: index %g is not an integer in [0, %lld), the range of the gathered axis",
                       ir_ops[nd->op].name, v, (long long)len);
            xfree(at);
            return NULL;
        }
        at[j] = (int64_t)v;
    }
    return at;
}

/* out[o, j, :] = x[o, at[j], :] */
INTERP_FN(gather)
{
    const Tensor *x = in[0];
    GatherGeom g = gather_geom(nd, x->dims, x->rank, in[1]);
    int64_t *at = gather_offsets(ip, nd, in[1], g.len);
    if (!at)
        return false;
    size_t row = (size_t)g.inner * (size_t)ir_dtype_size(x->dt);
    for (int64_t o = 0; o < g.outer; o++)
        for (int64_t j = 0; j < g.nidx; j++)
            if (row)
                memcpy((char *)out->data + (size_t)(o * g.nidx + j) * row,
                       (const char *)x->data + (size_t)(o * g.len + at[j]) * row, row);
    xfree(at);
    return true;
}

INTERP_FN(gather_grad) /* (gy, indices) -> zeros of shape with gy added at the indices */
{
    GatherGeom g = gather_geom(nd, out->dims, out->rank, in[1]);
    int64_t *at = gather_offsets(ip, nd, in[1], g.len);
    if (!at)
        return false;
    IX_BY_DTYPE(out->dt, gather_add, in[0]->data, at, g.outer, g.len, g.inner, g.nidx, out->data);
    xfree(at);
    return true;
}

INTERP_FN(replica_mean)
{
    memcpy(out->data, in[0]->data, (size_t)out->numel * (size_t)ir_dtype_size(out->dt));
    if (ip->replica)
        ip->replica->mean(ip->replica->env, out->data, out->numel, out->dt == DT_F64);
    return true;
}

INTERP_FN(dropout_mask)
{
    IX_BY_DTYPE(out->dt, dropout_mask, ip->opts, nd->a.stream, nd->a.value, out);
    return true;
}
