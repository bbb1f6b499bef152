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

/* out = alpha op(A) op(B) for the matmul node v (a graph node or the GEMM
 * of a fused body) with its operands in buffers pa and pb. */
void cg_gemm(Cg *c, const Node *v, LLVMValueRef pa, LLVMValueRef pb, LLVMValueRef out)
{
    const Node *a = v->in[0];
    bool ta = v->a.ta, tb = v->a.tb;
    Mono m = mono_dim(v->shape.d[0]), n = mono_dim(v->shape.d[1]);
    Mono k = mono_dim(a->shape.d[ta ? 0 : 1]);
    LLVMTypeRef ft = cg_type(c, v->dt);
    LLVMTypeRef pt[11] = {c->ptr, c->i32, c->i32, c->i64, c->i64, c->i64, ft, c->ptr, c->ptr, ft, c->ptr};
    LLVMValueRef args[11] = {c->ctxp, LLVMConstInt(c->i32, ta, 0), LLVMConstInt(c->i32, tb, 0), cg_mono(c, m),
                             cg_mono(c, n), cg_mono(c, k), cg_fconst(c, v->dt, v->a.alpha),
                             pa, pb, cg_fconst(c, v->dt, 0), out};
    char name[32];
    cg_call(c, typed(v->dt, "rt_gemm", name, sizeof name), c->vd, pt, 11, args);
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
