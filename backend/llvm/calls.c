/* Kernels that call the runtime: matmul as one GEMM (split into parts by
 * the runtime) with the transposes passed as BLAS flags, convolution and its adjoints (im2col/col2im +
 * GEMM), pooling and its adjoints, dropout masks (runtime/kernels.h).
 * The runtime kernels get the context (threads, RNG seed and step). */
#include "cg.h"

#include <string.h>

static LLVMValueRef operand(Cg *c, const Node *v, int i)
{
    return cg_buf(c, c->plan->node_slot[v->in[i]->id]);
}

static const char *typed(DType t, const char *base, char *buf, size_t n)
{
    snprintf(buf, n, "%s_%s", base, t == DT_F64 ? "f64" : "f32");
    return buf;
}

/* One GEMM: out = alpha op(A) op(B), m x n, inner size k. */
static void gemm_call(Cg *c, const Node *v, Mono m, Mono n, Mono k, LLVMValueRef pa, LLVMValueRef pb,
                      LLVMValueRef out)
{
    LLVMTypeRef ft = cg_type(c, v->dt);
    LLVMTypeRef pt[11] = {c->ptr, c->i32, c->i32, c->i64, c->i64, c->i64, ft, c->ptr, c->ptr, ft, c->ptr};
    LLVMValueRef args[11] = {c->ctxp, LLVMConstInt(c->i32, v->a.ta, 0), LLVMConstInt(c->i32, v->a.tb, 0),
                             cg_mono(c, m), cg_mono(c, n), cg_mono(c, k), cg_fconst(c, v->dt, v->a.alpha),
                             pa, pb, cg_fconst(c, v->dt, 0), out};
    char name[32];
    cg_call(c, typed(v->dt, "rt_gemm", name, sizeof name), c->vd, pt, 11, args);
}

typedef struct BatchGemm {
    const Node *v;
    Mono m, n, k;
    LLVMValueRef p[3]; /* a, b, out */
} BatchGemm;

static void batch_gemm_body(Cg *c, void *ud, LLVMValueRef *offs)
{
    BatchGemm *g = ud;
    LLVMValueRef at[3];
    for (int i = 0; i < 3; i++)
        at[i] = LLVMBuildInBoundsGEP2(c->b, cg_type(c, g->v->dt), g->p[i], &offs[i], 1, "");
    gemm_call(c, g->v, g->m, g->n, g->k, at[0], at[1], at[2]);
}

/* Strides (elements) of operand shape s's matrices along the result's nb
 * batch axes: 0 where s broadcasts. */
static void batch_strides(const Shape *s, int nb, Mono *st)
{
    int sb = s->rank - 2;
    Mono acc = mono_mul(mono_dim(s->d[s->rank - 2]), mono_dim(s->d[s->rank - 1]));
    for (int k = nb - 1; k >= 0; k--) {
        int ks = k - (nb - sb);
        st[k] = ks < 0 || s->d[ks] == 1 ? mono(0) : acc;
        if (ks >= 0)
            acc = mono_mul(acc, mono_dim(s->d[ks]));
    }
}

/* out = alpha op(A) op(B) for the matmul node v (a graph node or the GEMM
 * of a fused body) with its operands in buffers pa and pb: one GEMM for
 * matrices, and for a stack of them times a matrix (A's rows stacked);
 * else one GEMM per matrix of the result in a loop over its batch axes. */
void cg_gemm(Cg *c, const Node *v, LLVMValueRef pa, LLVMValueRef pb, LLVMValueRef out)
{
    const Shape *as = &v->in[0]->shape, *bs = &v->in[1]->shape, *os = &v->shape;
    int nb = os->rank - 2;
    Mono m = mono_dim(os->d[nb]), n = mono_dim(os->d[nb + 1]);
    Mono k = mono_dim(as->d[as->rank - (v->a.ta ? 2 : 1)]);
    if (nb == 0 || (bs->rank == 2 && !v->a.ta && as->rank == os->rank)) {
        for (int i = 0; i < nb; i++)
            m = mono_mul(m, mono_dim(os->d[i]));
        gemm_call(c, v, m, n, k, pa, pb, out);
        return;
    }
    BatchGemm g = {v, m, n, k, {pa, pb, out}};
    Acc acc[3] = {{pa, NULL, {{0}}}, {pb, NULL, {{0}}}, {out, NULL, {{0}}}};
    batch_strides(as, nb, acc[0].stride);
    batch_strides(bs, nb, acc[1].stride);
    batch_strides(os, nb, acc[2].stride);
    Mono dims[IR_MAXRANK];
    for (int i = 0; i < nb; i++)
        dims[i] = mono_dim(os->d[i]);
    cg_nest(c, nb, dims, 3, acc, batch_gemm_body, &g);
}

void cg_matmul(Cg *c, const Step *st)
{
    Node *v = st->node;
    cg_gemm(c, v, operand(c, v, 0), operand(c, v, 1), cg_buf(c, st->out));
}

/* An alloca'd array of i64 geometry fields. */
static LLVMValueRef geom(Cg *c, LLVMValueRef *vals, int n)
{
    LLVMTypeRef at = LLVMArrayType2(c->i64, (uint64_t)n);
    LLVMValueRef p = cg_alloca(c, at, "geom");
    for (int i = 0; i < n; i++) {
        LLVMValueRef idx = cg_i64(c, i);
        LLVMValueRef fp = LLVMBuildInBoundsGEP2(c->b, c->i64, p, &idx, 1, "");
        LLVMBuildStore(c->b, vals[i], fp);
    }
    return p;
}

void cg_conv(Cg *c, const Step *st)
{
    Node *v = st->node;
    const Shape *x = v->op == OP_CONV2D_GRAD_INPUT ? &v->shape : &v->in[0]->shape;
    const Shape *k = v->op == OP_CONV2D_GRAD_KERNEL ? &v->shape : &v->in[1]->shape;
    const Shape *y = v->op == OP_CONV2D              ? &v->shape
                     : v->op == OP_CONV2D_GRAD_INPUT ? &v->in[0]->shape
                                                     : &v->in[1]->shape;
    int64_t f[RT_CONV_GEOM_FIELDS] = {0,        x->d[1],        x->d[2],        x->d[3],
                                      k->d[0],  k->d[1],        k->d[3],        y->d[1],
                                      y->d[2],  v->a.stride[0], v->a.stride[1], v->a.pad[0],
                                      v->a.pad[2], plan_conv_chunk(v)};
    LLVMValueRef vals[RT_CONV_GEOM_FIELDS];
    vals[0] = cg_mono(c, mono_dim(x->d[0]));
    for (int i = 1; i < RT_CONV_GEOM_FIELDS; i++)
        vals[i] = cg_i64(c, f[i]);
    LLVMValueRef g = geom(c, vals, RT_CONV_GEOM_FIELDS);
    LLVMValueRef scratch = st->scratch >= 0 ? cg_buf(c, st->scratch) : LLVMConstNull(c->ptr);
    LLVMTypeRef pt[7] = {c->ptr, c->ptr, c->ptr, c->ptr, c->ptr, c->ptr, c->f64};
    LLVMValueRef args[7] = {c->ctxp, g, operand(c, v, 0), operand(c, v, 1), cg_buf(c, st->out), scratch,
                            LLVMConstReal(c->f64, v->a.alpha)}; /* rt_conv2d's result scale */
    const char *base = v->op == OP_CONV2D              ? "rt_conv2d"
                       : v->op == OP_CONV2D_GRAD_INPUT ? "rt_conv2d_grad_input"
                                                       : "rt_conv2d_grad_kernel";
    char name[48];
    cg_call(c, typed(v->dt, base, name, sizeof name), c->vd, pt, v->op == OP_CONV2D ? 7 : 6, args);
}

void cg_pool(Cg *c, const Step *st)
{
    Node *v = st->node;
    bool grad = v->op == OP_MAX_POOL2D_GRAD || v->op == OP_AVG_POOL2D_GRAD;
    const Shape *x = grad ? &v->shape : &v->in[0]->shape;
    const Shape *y = !grad ? &v->shape : v->op == OP_MAX_POOL2D_GRAD ? &v->in[1]->shape : &v->in[0]->shape;
    int64_t f[RT_POOL_GEOM_FIELDS] = {0,       x->d[1], x->d[2], x->d[3], v->a.window[0], v->a.window[1],
                                      y->d[1], y->d[2], v->a.stride[0], v->a.stride[1], v->a.pad[0],
                                      v->a.pad[2]};
    LLVMValueRef vals[RT_POOL_GEOM_FIELDS];
    vals[0] = cg_mono(c, mono_dim(x->d[0]));
    for (int i = 1; i < RT_POOL_GEOM_FIELDS; i++)
        vals[i] = cg_i64(c, f[i]);
    LLVMValueRef args[5] = {c->ctxp, geom(c, vals, RT_POOL_GEOM_FIELDS), NULL, NULL, NULL};
    int na = 2;
    for (int i = 0; i < v->nin; i++)
        args[na++] = operand(c, v, i);
    args[na++] = cg_buf(c, st->out);
    LLVMTypeRef pt[5] = {c->ptr, c->ptr, c->ptr, c->ptr, c->ptr};
    const char *base = v->op == OP_MAX_POOL2D        ? "rt_max_pool2d"
                       : v->op == OP_MAX_POOL2D_GRAD ? "rt_max_pool2d_grad"
                       : v->op == OP_AVG_POOL2D      ? "rt_avg_pool2d"
                                                     : "rt_avg_pool2d_grad";
    char name[48];
    cg_call(c, typed(v->dt, base, name, sizeof name), c->vd, pt, na, args);
}

/* out = the mean of the operand over the processes of a data-parallel job,
 * one call on the entry's thread (docs/ops.md, replica_mean). */
void cg_replica_mean(Cg *c, const Step *st)
{
    Node *v = st->node;
    LLVMTypeRef pt[4] = {c->ptr, c->i64, c->ptr, c->ptr};
    LLVMValueRef args[4] = {c->ctxp, cg_mono(c, mono_numel(&v->shape)), operand(c, v, 0), cg_buf(c, st->out)};
    char name[32];
    cg_call(c, typed(v->dt, "rt_replica_mean", name, sizeof name), c->vd, pt, 4, args);
}

/* mask[i] = rt_uniform(seed, stream, step, i) >= rate ? scale : 0, the
 * whole mask in one call (docs/ops.md, dropout_mask). */
void cg_dropout_mask(Cg *c, const Step *st)
{
    Node *v = st->node;
    LLVMTypeRef pt[5] = {c->ptr, c->i64, c->f64, c->i64, c->ptr};
    LLVMValueRef args[5] = {c->ctxp, cg_i64(c, (int64_t)v->a.stream), LLVMConstReal(c->f64, v->a.value),
                            cg_mono(c, mono_numel(&v->shape)), cg_buf(c, st->out)};
    char name[32];
    cg_call(c, typed(v->dt, "rt_dropout_mask", name, sizeof name), c->vd, pt, 5, args);
}

/* gather (x, idx) and gather_grad (gy, idx): the gathered tensor (x, or
 * the result) as [outer, len, inner] around the axis. */
void cg_gather(Cg *c, const Step *st)
{
    Node *v = st->node;
    const Shape *x = v->op == OP_GATHER ? &v->in[0]->shape : &v->shape;
    int ax = v->a.axes[0];
    Mono outer = mono(1), inner = mono(1);
    for (int k = 0; k < ax; k++)
        outer = mono_mul(outer, mono_dim(x->d[k]));
    for (int k = ax + 1; k < x->rank; k++)
        inner = mono_mul(inner, mono_dim(x->d[k]));
    LLVMValueRef vals[RT_GATHER_GEOM_FIELDS] = {cg_mono(c, outer), cg_i64(c, x->d[ax]), cg_mono(c, inner),
                                                cg_mono(c, mono_numel(&v->in[1]->shape)),
                                                cg_i64(c, v->in[1]->dt), cg_i64(c, c->step)};
    LLVMTypeRef pt[5] = {c->ptr, c->ptr, c->ptr, c->ptr, c->ptr};
    LLVMValueRef args[5] = {c->ctxp, geom(c, vals, RT_GATHER_GEOM_FIELDS), operand(c, v, 0), operand(c, v, 1),
                            cg_buf(c, st->out)};
    char name[32];
    cg_call(c, typed(v->dt, v->op == OP_GATHER ? "rt_gather" : "rt_gather_grad", name, sizeof name), c->vd, pt, 5,
            args);
}
