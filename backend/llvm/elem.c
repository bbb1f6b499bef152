/* Elementwise kernels (one op or a fused group in one loop nest, with
 * NumPy broadcasting as zero strides) and the data-movement kernels:
 * constant fill, transpose, slice and its adjoint, concat, one_hot
 * (dropout masks are a runtime call, calls.c). */
#include "cg.h"

#include <stdlib.h>
#include <string.h>

/* ---- scalar ops ---- */

static LLVMValueRef cmp_to_float(Cg *c, LLVMRealPredicate p, LLVMValueRef a, LLVMValueRef b, DType t)
{
    LLVMValueRef r = LLVMBuildFCmp(c->b, p, a, b, "");
    return LLVMBuildSelect(c->b, r, cg_fconst(c, t, 1), cg_fconst(c, t, 0), "");
}

static LLVMValueRef sel(Cg *c, LLVMRealPredicate p, LLVMValueRef a, LLVMValueRef b,
                        LLVMValueRef t, LLVMValueRef f)
{
    return LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, p, a, b, ""), t, f, "");
}

LLVMValueRef cg_gt_or_nan(Cg *c, LLVMRealPredicate p, LLVMValueRef a, LLVMValueRef b)
{
    LLVMValueRef cmp = LLVMBuildFCmp(c->b, p, a, b, "");
    return LLVMBuildOr(c->b, cmp, LLVMBuildFCmp(c->b, LLVMRealUNO, a, a, ""), "");
}

/* sigmoid(x) = 1/(1+e^-x) for x >= 0, e^x/(1+e^x) below: one exp(-|x|). */
static LLVMValueRef sigmoid(Cg *c, DType t, LLVMValueRef x)
{
    LLVMTypeRef ty = cg_type(c, t);
    LLVMValueRef ax = cg_intrinsic(c, "llvm.fabs", ty, &x, 1);
    LLVMValueRef nax = LLVMBuildFNeg(c->b, ax, "");
    LLVMValueRef e = cg_exp(c, t, nax);
    LLVMValueRef den = LLVMBuildFAdd(c->b, cg_fconst(c, t, 1), e, "");
    LLVMValueRef pos = LLVMBuildFDiv(c->b, cg_fconst(c, t, 1), den, "");
    LLVMValueRef neg = LLVMBuildFDiv(c->b, e, den, "");
    return sel(c, LLVMRealOGE, x, cg_fconst(c, t, 0), pos, neg);
}

LLVMValueRef cg_scalar_op(Cg *c, const Node *v, LLVMValueRef *in)
{
    DType t = v->dt;
    LLVMTypeRef ty = cg_type(c, t);
    LLVMBuilderRef b = c->b;
    LLVMValueRef x = in[0], y = v->nin > 1 ? in[1] : NULL;
    LLVMValueRef zero = cg_fconst(c, t, 0), one = cg_fconst(c, t, 1);
    switch (v->op) {
    case OP_NEG:
        return LLVMBuildFNeg(b, x, "");
    case OP_EXP:
        return cg_exp(c, t, x);
    case OP_LOG:
        return cg_intrinsic(c, "llvm.log", ty, &x, 1);
    case OP_TANH:
        return cg_tanh(c, t, x);
    case OP_SIGMOID:
        return sigmoid(c, t, x);
    case OP_RELU:
        return sel(c, LLVMRealOGT, x, zero, x, zero);
    case OP_ELU: {
        LLVMValueRef e = cg_exp(c, t, x);
        LLVMValueRef neg = LLVMBuildFMul(b, cg_fconst(c, t, v->a.value), LLVMBuildFSub(b, e, one, ""), "");
        return sel(c, LLVMRealOGT, x, zero, x, neg);
    }
    case OP_SQRT:
        return cg_intrinsic(c, "llvm.sqrt", ty, &x, 1);
    case OP_RSQRT:
        return LLVMBuildFDiv(b, one, cg_intrinsic(c, "llvm.sqrt", ty, &x, 1), "");
    case OP_SQUARE:
        return LLVMBuildFMul(b, x, x, "");
    case OP_ABS:
        return cg_intrinsic(c, "llvm.fabs", ty, &x, 1);
    case OP_ERF:
        return cg_call(c, t == DT_F32 ? "erff" : "erf", ty, &ty, 1, &x);
    case OP_SIGN: /* NaN stays NaN */
        return sel(c, LLVMRealOGT, x, zero, one,
                   sel(c, LLVMRealOLT, x, zero, cg_fconst(c, t, -1), sel(c, LLVMRealUNO, x, x, x, zero)));
    case OP_CAST:
        return cg_convert(c, x, v->in[0]->dt, t);
    case OP_ADD:
        return LLVMBuildFAdd(b, x, y, "");
    case OP_SUB:
        return LLVMBuildFSub(b, x, y, "");
    case OP_MUL:
        return LLVMBuildFMul(b, x, y, "");
    case OP_DIV:
        return LLVMBuildFDiv(b, x, y, "");
    case OP_POW: {
        LLVMValueRef args[2] = {x, y};
        return cg_intrinsic(c, "llvm.pow", ty, args, 2);
    }
    case OP_MAXIMUM:
        return LLVMBuildSelect(b, cg_gt_or_nan(c, LLVMRealOGT, x, y), x, y, "");
    case OP_MINIMUM:
        return LLVMBuildSelect(b, cg_gt_or_nan(c, LLVMRealOLT, x, y), x, y, "");
    case OP_GT:
        return cmp_to_float(c, LLVMRealOGT, x, y, t);
    case OP_GE:
        return cmp_to_float(c, LLVMRealOGE, x, y, t);
    case OP_LT:
        return cmp_to_float(c, LLVMRealOLT, x, y, t);
    case OP_LE:
        return cmp_to_float(c, LLVMRealOLE, x, y, t);
    case OP_EQ:
        return cmp_to_float(c, LLVMRealOEQ, x, y, t);
    case OP_SELECT:
        return sel(c, LLVMRealUNE, x, cg_fconst(c, v->in[0]->dt, 0), in[1], in[2]);
    case OP_BROADCAST:
        return x;
    default:
        ICE("%s is not an elementwise op", ir_ops[v->op].name);
    }
}

/* ---- elementwise kernels ---- */

void cg_operands(Cg *c, const Node *v, const Shape *over, const bool *read, Operands *o)
{
    MC_ASSERT(v->nin < CG_MAXARGS);
    o->n = 0;
    for (int i = 0; i < v->nin; i++) {
        const Node *u = v->in[i];
        if ((read && !read[i]) || plan_const_inline(c->plan, u)) {
            o->of[i] = -1;
            continue;
        }
        o->of[i] = o->n;
        o->base[o->n] = cg_buf(c, c->plan->node_slot[u->id]);
        cg_bcast_strides(&u->shape, over, o->stride[o->n]);
        o->n++;
    }
}

void cg_operand_values(Cg *c, const Node *v, const Operands *o, const LLVMValueRef *offs, LLVMValueRef *in)
{
    for (int i = 0; i < v->nin; i++) {
        const Node *u = v->in[i];
        int k = o->of[i];
        in[i] = k < 0 ? cg_fconst(c, u->dt, u->a.value) : cg_load(c, u->dt, o->base[k], offs[k]);
    }
}

typedef struct Elem {
    Node *v;
    Operands ops;     /* read at offs[1..] */
    LLVMValueRef out; /* at offs[0] */
} Elem;

/* The values of the body's side updates into side[1..], and the value
 * of `result`. */
static LLVMValueRef body_values(Cg *c, const Node *v, const Node *result, const LLVMValueRef *inputs,
                                LLVMValueRef gemm, LLVMValueRef *side);

LLVMValueRef cg_body_value(Cg *c, const Node *v, const Node *result, const LLVMValueRef *inputs,
                           LLVMValueRef gemm)
{
    return body_values(c, v, result, inputs, gemm, NULL);
}

static LLVMValueRef body_values(Cg *c, const Node *v, const Node *result, const LLVMValueRef *inputs,
                                LLVMValueRef gemm, LLVMValueRef *side)
{
    Graph *s = v->sub;
    LLVMValueRef *memo = xcalloc((size_t)s->nnodes, sizeof(LLVMValueRef));
    int ninput = 0;
    for (int i = 0; i < s->nnodes; i++) {
        Node *b = s->nodes[i];
        if (b->op == OP_INPUT) {
            MC_ASSERT(ninput < v->nin);
            memo[i] = inputs[ninput++];
        } else if (b->op == OP_CONST) {
            memo[i] = cg_fconst(c, b->dt, b->a.value);
        } else if (b->op == OP_MATMUL) {
            memo[i] = gemm;
        } else if (ir_ops[b->op].cls == OPC_REDUCE || b->op == OP_LOG_SOFTMAX_DOT ||
                   b->op == OP_LOG_SOFTMAX_GRAD) {
            continue; /* the caller reduces (or computes the softmax rows) */
        } else {
            LLVMValueRef in[3];
            for (int j = 0; j < b->nin; j++)
                in[j] = memo[b->in[j]->id];
            memo[i] = cg_scalar_op(c, b, in);
        }
        if (b == result && !side)
            break;
    }
    LLVMValueRef r = memo[result->id];
    MC_ASSERT(r);
    for (int j = 1; side && j < s->nouts; j++) {
        if (ir_fused_fresh(v, j))
            continue;
        side[j] = memo[s->outs[j].val->id];
        MC_ASSERT(side[j]);
    }
    xfree(memo);
    return r;
}

static void elem_body(Cg *c, void *ud, LLVMValueRef *offs)
{
    Elem *e = ud;
    LLVMValueRef in[CG_MAXARGS], r;
    cg_operand_values(c, e->v, &e->ops, offs + 1, in);
    if (e->v->op == OP_FUSED) {
        /* the GEMM's result is read in place */
        LLVMValueRef gemm = ir_fused_anchor(e->v) ? cg_load(c, e->v->dt, e->out, offs[0]) : NULL;
        Graph *s = e->v->sub;
        LLVMValueRef side[CG_MAXARGS];
        r = body_values(c, e->v, s->outs[0].val, in, gemm, s->nouts > 1 ? side : NULL);
        /* side updates overwrite their parameter operand, element for
         * element */
        for (int j = 1; j < s->nouts; j++) {
            if (ir_fused_fresh(e->v, j))
                continue;
            int k = e->ops.of[ir_fused_side_operand(e->v, j)];
            MC_ASSERT(k >= 0);
            cg_store(c, e->v->dt, side[j], e->ops.base[k], offs[k + 1]);
        }
    } else {
        r = cg_scalar_op(c, e->v, in);
    }
    cg_store(c, e->v->dt, r, e->out, offs[0]);
}

/* read[i]: the loop reads operand i (not only the body's GEMM does). */
static void loop_reads(const Node *v, const Node *gemm, bool *read)
{
    for (int i = 0; i < v->nin; i++)
        read[i] = true;
    if (!gemm)
        return;
    Graph *s = v->sub;
    for (int i = 0; i < s->nnodes; i++)
        if (s->nodes[i]->op == OP_INPUT)
            read[ir_fused_input_index(v, s->nodes[i])] = false;
    for (int i = 0; i < s->nnodes; i++) {
        Node *b = s->nodes[i];
        if (b == gemm || b->op == OP_INPUT)
            continue;
        for (int j = 0; j < b->nin; j++)
            if (b->in[j]->op == OP_INPUT)
                read[ir_fused_input_index(v, b->in[j])] = true;
    }
}

/* A flat kernel (Cg.flat) runs one loop over N elements: the result and
 * every operand of its shape (or, without the batch axis, its size)
 * advance by one element, scalars stay. */
static void flat_strides(const Node *v, Operands *o, Mono *out)
{
    memset(out, 0, IR_MAXRANK * sizeof *out);
    out[0] = mono(1);
    int64_t n = ir_shape_numel(&v->shape, 0);
    for (int i = 0; i < v->nin; i++) {
        int k = o->of[i];
        if (k < 0)
            continue;
        const Shape *s = &v->in[i]->shape;
        bool scalar = !ir_shape_has_n(s) && ir_shape_numel(s, 0) == 1;
        MC_ASSERT(scalar || ir_shape_eq(s, &v->shape) || (!ir_shape_has_n(s) && ir_shape_numel(s, 0) == n));
        memset(o->stride[k], 0, sizeof o->stride[k]);
        o->stride[k][0] = mono(scalar ? 0 : 1);
    }
}

void cg_elementwise(Cg *c, const Step *st)
{
    Node *v = st->node;
    Elem e;
    memset(&e, 0, sizeof e);
    e.v = v;
    e.out = cg_buf(c, st->out);
    Node *gemm = ir_fused_anchor(v);
    bool read[CG_MAXARGS];
    loop_reads(v, gemm, read);
    if (gemm && c->gemm_part != CG_EPILOGUE_ONLY) {
        int ia = ir_fused_input_index(v, gemm->in[0]), ib = ir_fused_input_index(v, gemm->in[1]);
        cg_gemm(c, gemm, cg_buf(c, c->plan->node_slot[v->in[ia]->id]),
                cg_buf(c, c->plan->node_slot[v->in[ib]->id]), e.out);
        if ((v->sub->outs[0].val == gemm && v->sub->nouts == 1) || c->gemm_part == CG_GEMM_ONLY)
            return; /* the body is the scaled GEMM alone, or its epilogue is a kernel of its own */
    }
    cg_operands(c, v, &v->shape, read, &e.ops);
    Acc acc[CG_MAXARGS];
    memset(acc, 0, sizeof acc);
    acc[0].base = e.out;
    mono_strides(&v->shape, acc[0].stride);
    if (c->flat)
        flat_strides(v, &e.ops, acc[0].stride);
    for (int k = 0; k < e.ops.n; k++) {
        acc[k + 1].base = e.ops.base[k];
        memcpy(acc[k + 1].stride, e.ops.stride[k], sizeof acc[k + 1].stride);
    }
    int nacc = e.ops.n + 1;
    MC_ASSERT(nacc <= CG_MAXARGS);
    Mono dims[IR_MAXRANK];
    for (int k = 0; k < v->shape.rank; k++)
        dims[k] = mono_dim(v->shape.d[k]);
    if (c->flat)
        dims[0] = mono_dim(IR_DIM_N);
    cg_nest(c, c->flat ? 1 : v->shape.rank, dims, nacc, acc, elem_body, &e);
    if (v->op == OP_FUSED && !c->flat)
        cg_column_sums(c, v, &v->shape, e.out);
}

/* ---- copies through strided views ---- */

typedef struct Copy {
    DType dt;
    LLVMValueRef dst, src;
    LLVMValueRef value; /* fill value instead of src */
} Copy;

static void copy_body(Cg *c, void *ud, LLVMValueRef *offs)
{
    Copy *k = ud;
    LLVMValueRef v = k->value ? k->value : cg_load(c, k->dt, k->src, offs[1]);
    cg_store(c, k->dt, v, k->dst, offs[0]);
}

static void shape_dims(const Shape *s, Mono *dims)
{
    for (int k = 0; k < s->rank; k++)
        dims[k] = mono_dim(s->d[k]);
}

void cg_fill_value(Cg *c, DType t, LLVMValueRef dst, const Shape *s, double value)
{
    Copy k = {t, dst, NULL, cg_fconst(c, t, value)};
    Acc acc = {dst, NULL, {mono(1)}};
    Mono n = mono_numel(s);
    cg_nest(c, 1, &n, 1, &acc, copy_body, &k);
}

void cg_fill(Cg *c, const Step *st)
{
    cg_fill_value(c, st->node->dt, cg_buf(c, st->out), &st->node->shape, st->node->a.value);
}

/* dst[view_dst(i)] = src[view_src(i)] over index space `s`. */
static void strided_copy(Cg *c, DType t, const Shape *s, Acc *dst, Acc *src)
{
    Copy k = {t, dst->base, src->base, NULL};
    Acc acc[2] = {*dst, *src};
    Mono dims[IR_MAXRANK];
    shape_dims(s, dims);
    cg_nest(c, s->rank, dims, 2, acc, copy_body, &k);
}

static void contiguous(Acc *a, LLVMValueRef base, const Shape *s)
{
    memset(a, 0, sizeof *a);
    a->base = base;
    mono_strides(s, a->stride);
}

void cg_transpose(Cg *c, const Step *st)
{
    Node *v = st->node, *x = v->in[0];
    Acc dst, src;
    contiguous(&dst, cg_buf(c, st->out), &v->shape);
    Mono own[IR_MAXRANK];
    mono_strides(&x->shape, own);
    memset(&src, 0, sizeof src);
    src.base = cg_buf(c, c->plan->node_slot[x->id]);
    for (int k = 0; k < v->shape.rank; k++)
        src.stride[k] = own[v->a.axes[k]];
    strided_copy(c, v->dt, &v->shape, &dst, &src);
}

/* A slice view of a buffer with shape s: offset sum(begin*stride),
 * strides stride*step (ir_slice_step: within the buffer). */
static void slice_view(Cg *c, Acc *a, LLVMValueRef base, const Shape *s, const Attrs *at)
{
    Mono own[IR_MAXRANK];
    mono_strides(s, own);
    memset(a, 0, sizeof *a);
    a->base = base;
    a->off = cg_i64(c, 0);
    for (int k = 0; k < s->rank; k++) {
        int64_t step = at->step[k];
        if (at->end[k] != INT64_MAX || !ir_dim_is_batch(s->d[k])) /* a whole N axis has step 1 */
            step = ir_slice_step(at->begin[k], at->end[k] == INT64_MAX ? s->d[k] : at->end[k], step);
        a->stride[k] = mono_mul(own[k], mono(step));
        if (at->begin[k])
            a->off = LLVMBuildNSWAdd(c->b, a->off, cg_mono(c, mono_mul(own[k], mono(at->begin[k]))), "");
    }
}

void cg_slice(Cg *c, const Step *st)
{
    Node *v = st->node, *x = v->in[0];
    Acc dst, src;
    contiguous(&dst, cg_buf(c, st->out), &v->shape);
    slice_view(c, &src, cg_buf(c, c->plan->node_slot[x->id]), &x->shape, &v->a);
    strided_copy(c, v->dt, &v->shape, &dst, &src);
}

void cg_slice_grad(Cg *c, const Step *st)
{
    Node *v = st->node, *dy = v->in[0];
    LLVMValueRef out = cg_buf(c, st->out);
    cg_fill_value(c, v->dt, out, &v->shape, 0);
    Acc dst, src;
    slice_view(c, &dst, out, &v->shape, &v->a);
    contiguous(&src, cg_buf(c, c->plan->node_slot[dy->id]), &dy->shape);
    strided_copy(c, v->dt, &dy->shape, &dst, &src);
}

void cg_concat(Cg *c, const Step *st)
{
    Node *v = st->node;
    int ax = v->a.axes[0];
    LLVMValueRef out = cg_buf(c, st->out);
    Mono own[IR_MAXRANK];
    mono_strides(&v->shape, own);
    int64_t at = 0;
    for (int i = 0; i < v->nin; i++) {
        Node *u = v->in[i];
        Acc dst, src;
        memset(&dst, 0, sizeof dst);
        dst.base = out;
        memcpy(dst.stride, own, sizeof own);
        dst.off = cg_mono(c, mono_mul(own[ax], mono(at)));
        if (plan_const_inline(c->plan, u))
            ICE("concat operand folded as a constant");
        contiguous(&src, cg_buf(c, c->plan->node_slot[u->id]), &u->shape);
        strided_copy(c, v->dt, &u->shape, &dst, &src);
        at += u->shape.d[ax];
    }
}

/* ---- one_hot ---- */

typedef struct OneHot {
    Node *v;
    LLVMValueRef out, idx;
} OneHot;

static void one_hot_body(Cg *c, void *ud, LLVMValueRef *offs)
{
    OneHot *o = ud;
    DType it = o->v->in[0]->dt;
    LLVMValueRef x = cg_load(c, it, o->idx, offs[1]), hit;
    if (it == DT_I32)
        hit = LLVMBuildICmp(c->b, LLVMIntEQ, LLVMBuildSExt(c->b, x, c->i64, ""), offs[2], "");
    else /* compared as numbers: fractions and NaN match no class */
        hit = LLVMBuildFCmp(c->b, LLVMRealOEQ, x, LLVMBuildSIToFP(c->b, offs[2], cg_type(c, it), ""), "");
    LLVMValueRef r = LLVMBuildSelect(c->b, hit, cg_fconst(c, o->v->dt, 1), cg_fconst(c, o->v->dt, 0), "");
    cg_store(c, o->v->dt, r, o->out, offs[0]);
}

void cg_one_hot(Cg *c, const Step *st)
{
    Node *v = st->node, *x = v->in[0];
    OneHot o = {v, cg_buf(c, st->out), cg_buf(c, c->plan->node_slot[x->id])};
    Acc acc[3];
    memset(acc, 0, sizeof acc);
    contiguous(&acc[0], o.out, &v->shape);
    acc[1].base = o.idx;
    mono_strides(&x->shape, acc[1].stride);
    acc[1].stride[x->shape.rank] = mono(0);
    acc[2].stride[x->shape.rank] = mono(1); /* the class index */
    Mono dims[IR_MAXRANK];
    shape_dims(&v->shape, dims);
    cg_nest(c, v->shape.rank, dims, 3, acc, one_hot_body, &o);
}

