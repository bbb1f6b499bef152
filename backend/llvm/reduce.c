/* Reductions (sum, mean, max over any axes; argmax), softmax /
 * log_softmax and the softmax cross-entropy rows (log_softmax_dot,
 * log_softmax_grad). When the innermost axis is reduced, each output element
 * accumulates in a register (sums with `reassoc`, so they vectorize);
 * otherwise the input is walked in memory order and accumulated into the
 * output, which keeps the innermost loop contiguous. A fused reduction
 * (a fused node whose body ends with the reduction) computes its input
 * per element from the body's elementwise ops over the operands, read
 * with broadcasting, instead of loading it. */
#include "cg.h"

#include <math.h>
#include <string.h>

static LLVMValueRef reassoc(LLVMValueRef inst)
{
    LLVMSetFastMathFlags(inst, LLVMFastMathAllowReassoc);
    return inst;
}

static LLVMValueRef combine(Cg *c, Op op, LLVMValueRef acc, LLVMValueRef x, bool in_register)
{
    if (op == OP_REDUCE_MAX)
        return LLVMBuildSelect(c->b, cg_gt_or_nan(c, LLVMRealOGT, x, acc), x, acc, "");
    LLVMValueRef s = LLVMBuildFAdd(c->b, acc, x, "");
    return in_register ? reassoc(s) : s;
}

typedef struct Red {
    Node *v;        /* the reduction (a graph node or a fused body's output) */
    const Node *fn; /* the fused node, or NULL */
    const Node *src; /* whose operands are read: fn, or the reduction */
    DType dt;
    Operands ops;   /* src's operands over the input's dims, at offs[0..ops.n) */
    LLVMValueRef out, acc; /* acc: the register accumulator (alloca) */
    Mono dims_r[IR_MAXRANK];
    int red_k[IR_MAXRANK]; /* the reduced dims, outer to inner */
    int nr;
    LLVMValueRef count; /* mean: divisor */
} Red;

/* The input element at offsets offs[0..ops.n): the operand itself, or
 * the fused body's value over the operands. */
static LLVMValueRef x_value(Cg *c, Red *r, LLVMValueRef *offs)
{
    LLVMValueRef in[CG_MAXARGS];
    cg_operand_values(c, r->src, &r->ops, offs, in);
    return r->fn ? cg_body_value(c, r->fn, r->v->in[0], in, NULL) : in[0];
}

static double init_value(Op op)
{
    return op == OP_REDUCE_MAX ? -INFINITY : 0.0;
}

static void acc_body(Cg *c, void *ud, LLVMValueRef *offs)
{
    Red *r = ud;
    LLVMTypeRef t = cg_type(c, r->dt);
    LLVMValueRef a = LLVMBuildLoad2(c->b, t, r->acc, "");
    LLVMValueRef x = x_value(c, r, offs);
    LLVMBuildStore(c->b, combine(c, r->v->op, a, x, true), r->acc);
}

static LLVMValueRef finish(Cg *c, Red *r, LLVMValueRef a)
{
    if (r->v->op != OP_REDUCE_MEAN || c->partial)
        return a;
    return LLVMBuildFDiv(c->b, a, LLVMBuildSIToFP(c->b, r->count, cg_type(c, r->dt), ""), "");
}

/* One output element: accumulate over the reduced dims in a register. */
static void inner_body(Cg *c, void *ud, LLVMValueRef *offs)
{
    Red *r = ud;
    LLVMBuildStore(c->b, cg_fconst(c, r->dt, init_value(r->v->op)), r->acc);
    Acc a[CG_MAXARGS];
    memset(a, 0, sizeof a);
    for (int k = 0; k < r->ops.n; k++) {
        a[k].base = r->ops.base[k];
        a[k].off = offs[k];
        for (int j = 0; j < r->nr; j++)
            a[k].stride[j] = r->ops.stride[k][r->red_k[j]];
    }
    cg_nest(c, r->nr, r->dims_r, r->ops.n, a, acc_body, r);
    LLVMValueRef v = LLVMBuildLoad2(c->b, cg_type(c, r->dt), r->acc, "");
    cg_store(c, r->dt, finish(c, r, v), r->out, offs[r->ops.n]);
}

static void mem_body(Cg *c, void *ud, LLVMValueRef *offs)
{
    Red *r = ud;
    LLVMValueRef o = cg_load(c, r->dt, r->out, offs[r->ops.n]);
    LLVMValueRef x = x_value(c, r, offs);
    cg_store(c, r->dt, combine(c, r->v->op, o, x, false), r->out, offs[r->ops.n]);
}

static void mean_body(Cg *c, void *ud, LLVMValueRef *offs)
{
    Red *r = ud;
    cg_store(c, r->dt, finish(c, r, cg_load(c, r->dt, r->out, offs[0])), r->out, offs[0]);
}

static void fill_body(Cg *c, void *ud, LLVMValueRef *offs)
{
    Red *r = ud;
    cg_store(c, r->dt, cg_fconst(c, r->dt, init_value(r->v->op)), r->out, offs[0]);
}

/* red[k]: does reduction r reduce dim k of its input? */
static void reduced_dims(const Node *r, bool *red)
{
    memset(red, 0, IR_MAXRANK * sizeof *red);
    for (int i = 0; i < r->a.naxes; i++)
        red[r->a.axes[i]] = true;
}

/* The elements of input shape s that reduction r folds into one. */
static Mono reduced_count(const Node *r, const Shape *s)
{
    Mono count = mono(1);
    for (int i = 0; i < r->a.naxes; i++)
        count = mono_mul(count, mono_dim(s->d[r->a.axes[i]]));
    return count;
}

void cg_reduction_strides(const Node *r, const Shape *s, Mono *os)
{
    bool red[IR_MAXRANK];
    reduced_dims(r, red);
    cg_reduced_strides(s, red, os);
}

void cg_reduced_strides(const Shape *s, const bool *red, Mono *os)
{
    Mono acc = mono(1);
    for (int k = s->rank - 1; k >= 0; k--) {
        os[k] = red[k] ? mono(0) : acc;
        if (!red[k])
            acc = mono_mul(acc, mono_dim(s->d[k]));
    }
}

static int last_nonunit(const Shape *s)
{
    for (int k = s->rank - 1; k >= 0; k--)
        if (s->d[k] != 1)
            return k;
    return -1;
}

void cg_reduce(Cg *c, const Step *st)
{
    Node *v = st->node;
    Red r;
    memset(&r, 0, sizeof r);
    if (v->op == OP_FUSED) {
        r.fn = v;
        v = ir_fused_reduction(v);
    }
    const Shape *s = &v->in[0]->shape;
    bool red[IR_MAXRANK];
    reduced_dims(v, red);
    r.v = v;
    r.src = r.fn ? r.fn : v;
    r.dt = v->dt;
    cg_operands(c, r.src, s, NULL, &r.ops);
    r.out = cg_buf(c, st->out);
    Mono os[IR_MAXRANK];
    cg_reduced_strides(s, red, os);
    r.count = cg_mono(c, reduced_count(v, s));
    int last = last_nonunit(s);
    Acc acc[CG_MAXARGS];
    memset(acc, 0, sizeof acc);
    for (int a = 0; a < r.ops.n; a++)
        acc[a].base = r.ops.base[a];
    acc[r.ops.n].base = r.out;
    if (last >= 0 && red[last]) {
        Mono dk[IR_MAXRANK];
        int nk = 0;
        for (int k = 0; k < s->rank; k++) {
            if (red[k]) {
                r.dims_r[r.nr] = mono_dim(s->d[k]);
                r.red_k[r.nr++] = k;
            } else {
                dk[nk] = mono_dim(s->d[k]);
                for (int a = 0; a < r.ops.n; a++)
                    acc[a].stride[nk] = r.ops.stride[a][k];
                acc[r.ops.n].stride[nk++] = os[k];
            }
        }
        r.acc = cg_alloca(c, cg_type(c, r.dt), "acc");
        cg_nest(c, nk, dk, r.ops.n + 1, acc, inner_body, &r);
        return;
    }
    Acc o;
    memset(&o, 0, sizeof o);
    o.base = r.out;
    o.stride[0] = mono(1);
    Mono on = mono_numel(&v->shape);
    cg_nest(c, 1, &on, 1, &o, fill_body, &r);
    Mono dims[IR_MAXRANK];
    for (int k = 0; k < s->rank; k++) {
        dims[k] = mono_dim(s->d[k]);
        for (int a = 0; a < r.ops.n; a++)
            acc[a].stride[k] = r.ops.stride[a][k];
        acc[r.ops.n].stride[k] = os[k];
    }
    cg_nest(c, s->rank, dims, r.ops.n + 1, acc, mem_body, &r);
    if (v->op == OP_REDUCE_MEAN && !c->partial)
        cg_nest(c, 1, &on, 1, &o, mean_body, &r);
}

/* ---- reductions over the batch axis in parts (plan_batch_reduction) ---- */

typedef struct Combine {
    const Node *r;
    LLVMValueRef part, ntasks, count, acc, out;
    int64_t oe; /* elements of the result */
} Combine;

/* out[i] = part[0][i] (+) part[1][i] (+) ... in task order; a mean then
 * divides by the count of every reduced element. */
static void combine_body(Cg *c, void *ud, LLVMValueRef *offs)
{
    Combine *k = ud;
    DType t = k->r->dt;
    LLVMBuildStore(c->b, cg_fconst(c, t, init_value(k->r->op)), k->acc);
    Loop l;
    LLVMValueRef iv = cg_loop_begin(c, &l, k->ntasks, "part");
    LLVMValueRef at = LLVMBuildNSWAdd(c->b, LLVMBuildNSWMul(c->b, iv, cg_i64(c, k->oe), ""), offs[1], "");
    LLVMValueRef a = LLVMBuildLoad2(c->b, cg_type(c, t), k->acc, "");
    LLVMBuildStore(c->b, combine(c, k->r->op, a, cg_load(c, t, k->part, at), false), k->acc);
    cg_loop_end(c, &l);
    LLVMValueRef v = LLVMBuildLoad2(c->b, cg_type(c, t), k->acc, "");
    if (k->r->op == OP_REDUCE_MEAN)
        v = LLVMBuildFDiv(c->b, v, LLVMBuildSIToFP(c->b, k->count, cg_type(c, t), ""), "");
    cg_store(c, t, v, k->out, offs[0]);
}

void cg_reduce_combine(Cg *c, const Step *st, LLVMValueRef part, LLVMValueRef out, LLVMValueRef chunk)
{
    const Node *v = st->node, *r = v->op == OP_FUSED ? ir_fused_reduction(v) : v;
    LLVMValueRef n1 = LLVMBuildNSWAdd(c->b, c->n, LLVMBuildNSWSub(c->b, chunk, cg_i64(c, 1), ""), "");
    Combine k = {r, part, LLVMBuildSDiv(c->b, n1, chunk, "ntasks"), cg_mono(c, reduced_count(r, &r->in[0]->shape)),
                 cg_alloca(c, cg_type(c, r->dt), "acc"), out, ir_shape_numel(&r->shape, 0)};
    Acc acc[2];
    memset(acc, 0, sizeof acc);
    acc[0].base = out;
    acc[0].stride[0] = mono(1);
    acc[1].stride[0] = mono(1); /* the element index */
    Mono on = mono(k.oe);
    cg_nest(c, 1, &on, 2, acc, combine_body, &k);
}

/* ---- argmax: first index of the maximum along one axis ---- */

typedef struct ArgMax {
    Node *v;
    DType dt;
    LLVMValueRef x, out, best, idx;
    Mono len, stride;
} ArgMax;

/* better = no best yet, or x > best, or x is NaN and best is not */
static void argmax_step(Cg *c, void *ud, LLVMValueRef *offs)
{
    ArgMax *a = ud;
    LLVMBuilderRef b = c->b;
    LLVMValueRef x = cg_load(c, a->dt, a->x, offs[0]);
    LLVMValueRef best = LLVMBuildLoad2(b, cg_type(c, a->dt), a->best, "");
    LLVMValueRef idx = LLVMBuildLoad2(b, c->i64, a->idx, "");
    LLVMValueRef none = LLVMBuildICmp(b, LLVMIntSLT, idx, cg_i64(c, 0), "");
    LLVMValueRef gt = LLVMBuildFCmp(b, LLVMRealOGT, x, best, "");
    LLVMValueRef nan = LLVMBuildAnd(b, LLVMBuildFCmp(b, LLVMRealUNO, x, x, ""),
                                    LLVMBuildFCmp(b, LLVMRealORD, best, best, ""), "");
    LLVMValueRef better = LLVMBuildOr(b, none, LLVMBuildOr(b, gt, nan, ""), "");
    LLVMBuildStore(b, LLVMBuildSelect(b, better, x, best, ""), a->best);
    LLVMBuildStore(b, LLVMBuildSelect(b, better, offs[1], idx, ""), a->idx);
}

/* An empty axis gives -1. */
static void argmax_body(Cg *c, void *ud, LLVMValueRef *offs)
{
    ArgMax *a = ud;
    LLVMBuildStore(c->b, cg_fconst(c, a->dt, 0), a->best);
    LLVMBuildStore(c->b, cg_i64(c, -1), a->idx);
    Acc acc[2];
    memset(acc, 0, sizeof acc);
    acc[0].base = a->x;
    acc[0].off = offs[0];
    acc[0].stride[0] = a->stride;
    acc[1].stride[0] = mono(1);
    cg_nest(c, 1, &a->len, 2, acc, argmax_step, a);
    LLVMValueRef idx = LLVMBuildLoad2(c->b, c->i64, a->idx, "");
    cg_store(c, a->v->dt, LLVMBuildSIToFP(c->b, idx, cg_type(c, a->v->dt), ""), a->out, offs[1]);
}

void cg_argmax(Cg *c, const Step *st)
{
    Node *v = st->node, *xn = v->in[0];
    const Shape *s = &xn->shape;
    int ax = v->a.axes[0];
    ArgMax a = {v, xn->dt, cg_buf(c, c->plan->node_slot[xn->id]), cg_buf(c, st->out), NULL, NULL,
                mono_dim(s->d[ax]), mono(0)};
    bool red[IR_MAXRANK] = {0};
    red[ax] = true;
    Mono xs[IR_MAXRANK], os[IR_MAXRANK], dk[IR_MAXRANK];
    mono_strides(s, xs);
    cg_reduced_strides(s, red, os);
    a.stride = xs[ax];
    a.best = cg_alloca(c, cg_type(c, a.dt), "best");
    a.idx = cg_alloca(c, c->i64, "idx");
    Acc acc[2];
    memset(acc, 0, sizeof acc);
    acc[0].base = a.x;
    acc[1].base = a.out;
    int nk = 0;
    for (int k = 0; k < s->rank; k++)
        if (k != ax) {
            dk[nk] = mono_dim(s->d[k]);
            acc[0].stride[nk] = xs[k];
            acc[1].stride[nk++] = os[k];
        }
    cg_nest(c, nk, dk, 2, acc, argmax_body, &a);
}

/* ---- softmax, log_softmax and the cross-entropy rows along one axis ----
 * One row (the elements along the axis) at a time, in three passes:
 * 0: m = max x; 1: s = sum e, e = exp(x - m) (softmax and
 * log_softmax_grad keep e in out; log_softmax_grad also sums gy into g);
 * 2: with r = s (softmax), g / s (log_softmax_grad) or lse = log s:
 *   softmax           out = out / r
 *   log_softmax       out = (x - m) - lse
 *   log_softmax_dot   acc += t * ((x - m) - lse), stored once per row
 *   log_softmax_grad  out = gy - out * r
 * The second operand t / gy has x's shape; a dot's out has one element
 * per row. log_softmax_grad's e * (g / s) rounds differently from the
 * interpreter's exp((x - m) - lse) * g (docs/ops.md), within its sum
 * tolerance, and needs one exp per element instead of two. */

typedef struct Softmax {
    Node *v;
    DType dt;
    LLVMValueRef x, y, out, m, s, g; /* y: operand 1 (t or gy) */
    LLVMValueRef r;                  /* the row's value for pass 2 */
    Mono len, stride;
    int phase; /* 0 max, 1 sum of exp, 2 write */
} Softmax;

static void add_to(Cg *c, Softmax *k, LLVMValueRef acc, LLVMValueRef v)
{
    LLVMValueRef a = LLVMBuildLoad2(c->b, cg_type(c, k->dt), acc, "");
    LLVMBuildStore(c->b, reassoc(LLVMBuildFAdd(c->b, a, v, "")), acc);
}

/* offs: x, then operand 1 (two-operand ops), then out (unless a dot). */
static void softmax_write(Cg *c, Softmax *k, LLVMValueRef d, LLVMValueRef *offs)
{
    LLVMValueRef r;
    switch (k->v->op) {
    case OP_SOFTMAX:
        r = LLVMBuildFDiv(c->b, cg_load(c, k->dt, k->out, offs[1]), k->r, "");
        break;
    case OP_LOG_SOFTMAX:
        r = LLVMBuildFSub(c->b, d, k->r, "");
        break;
    case OP_LOG_SOFTMAX_DOT: {
        LLVMValueRef t = cg_load(c, k->dt, k->y, offs[1]);
        add_to(c, k, k->s, LLVMBuildFMul(c->b, t, LLVMBuildFSub(c->b, d, k->r, ""), ""));
        return;
    }
    default: {
        LLVMValueRef p = LLVMBuildFMul(c->b, cg_load(c, k->dt, k->out, offs[2]), k->r, "");
        r = LLVMBuildFSub(c->b, cg_load(c, k->dt, k->y, offs[1]), p, "");
        cg_store(c, k->dt, r, k->out, offs[2]);
        return;
    }
    }
    cg_store(c, k->dt, r, k->out, offs[1]);
}

static void softmax_step(Cg *c, void *ud, LLVMValueRef *offs)
{
    Softmax *k = ud;
    LLVMTypeRef t = cg_type(c, k->dt);
    LLVMValueRef x = cg_load(c, k->dt, k->x, offs[0]);
    if (k->phase == 0) {
        LLVMValueRef m = LLVMBuildLoad2(c->b, t, k->m, "");
        LLVMBuildStore(c->b, LLVMBuildSelect(c->b, cg_gt_or_nan(c, LLVMRealOGT, x, m), x, m, ""), k->m);
        return;
    }
    LLVMValueRef m = LLVMBuildLoad2(c->b, t, k->m, "");
    LLVMValueRef d = LLVMBuildFSub(c->b, x, m, "");
    if (k->phase == 2) {
        softmax_write(c, k, d, offs);
        return;
    }
    LLVMValueRef e = cg_exp(c, k->dt, d);
    if (k->v->op == OP_SOFTMAX)
        cg_store(c, k->dt, e, k->out, offs[1]);
    if (k->v->op == OP_LOG_SOFTMAX_GRAD) {
        cg_store(c, k->dt, e, k->out, offs[2]);
        add_to(c, k, k->g, cg_load(c, k->dt, k->y, offs[1]));
    }
    add_to(c, k, k->s, e);
}

/* r for pass 2 (a dot's sum restarts for the weighted sum). */
static LLVMValueRef row_value(Cg *c, Softmax *k, bool dot)
{
    LLVMTypeRef t = cg_type(c, k->dt);
    LLVMValueRef s = LLVMBuildLoad2(c->b, t, k->s, "");
    if (dot)
        LLVMBuildStore(c->b, cg_fconst(c, k->dt, 0), k->s);
    if (k->v->op == OP_SOFTMAX)
        return s;
    if (k->v->op == OP_LOG_SOFTMAX_GRAD)
        return LLVMBuildFDiv(c->b, LLVMBuildLoad2(c->b, t, k->g, ""), s, "");
    return cg_intrinsic(c, "llvm.log", t, &s, 1);
}

/* offs[0]: the row's first element in x (and operand 1, and out unless
 * a dot); offs[1]: a dot's output element. */
static void softmax_row(Cg *c, void *ud, LLVMValueRef *offs)
{
    Softmax *k = ud;
    LLVMTypeRef t = cg_type(c, k->dt);
    bool dot = k->v->op == OP_LOG_SOFTMAX_DOT;
    LLVMValueRef bufs[3] = {k->x, k->y ? k->y : k->out, k->out};
    int nb = k->y && !dot ? 3 : 2;
    Acc acc[3];
    memset(acc, 0, sizeof acc);
    for (int i = 0; i < nb; i++) {
        acc[i].base = bufs[i];
        acc[i].off = offs[0];
        acc[i].stride[0] = k->stride;
    }
    LLVMBuildStore(c->b, cg_fconst(c, k->dt, -INFINITY), k->m);
    LLVMBuildStore(c->b, cg_fconst(c, k->dt, 0), k->s);
    LLVMBuildStore(c->b, cg_fconst(c, k->dt, 0), k->g);
    for (k->phase = 0; k->phase < 3; k->phase++) {
        if (k->phase == 2)
            k->r = row_value(c, k, dot);
        cg_nest(c, 1, &k->len, nb, acc, softmax_step, k);
    }
    if (dot)
        cg_store(c, k->dt, LLVMBuildLoad2(c->b, t, k->s, ""), k->out, offs[1]);
}

void cg_softmax(Cg *c, const Step *st)
{
    Node *v = st->node, *xn = v->in[0];
    const Shape *s = &xn->shape;
    int ax = v->a.axes[0];
    Softmax k;
    memset(&k, 0, sizeof k);
    k.v = v;
    k.dt = v->dt;
    k.x = cg_buf(c, c->plan->node_slot[xn->id]);
    k.y = v->nin > 1 ? cg_buf(c, c->plan->node_slot[v->in[1]->id]) : NULL;
    k.out = cg_buf(c, st->out);
    k.len = mono_dim(s->d[ax]);
    Mono pre = mono(1), post = mono(1);
    for (int i = 0; i < ax; i++)
        pre = mono_mul(pre, mono_dim(s->d[i]));
    for (int i = ax + 1; i < s->rank; i++)
        post = mono_mul(post, mono_dim(s->d[i]));
    k.stride = post;
    k.m = cg_alloca(c, cg_type(c, k.dt), "max");
    k.s = cg_alloca(c, cg_type(c, k.dt), "sum");
    k.g = cg_alloca(c, cg_type(c, k.dt), "gsum");
    Mono dims[2] = {pre, post};
    Acc acc[2];
    memset(acc, 0, sizeof acc);
    acc[0].base = k.x;
    acc[0].stride[0] = mono_mul(k.len, post);
    acc[0].stride[1] = mono(1);
    acc[1].base = k.out;
    acc[1].stride[0] = post;
    acc[1].stride[1] = mono(1);
    cg_nest(c, 2, dims, v->op == OP_LOG_SOFTMAX_DOT ? 2 : 1, acc, softmax_row, &k);
}

/* ---- column sums: fresh results of a GEMM epilogue or softmax row kernel ---- */

int cg_sums_begin(Cg *c, const Node *fn, const Shape *over, ColSums *s, Acc *acc, int at)
{
    s->n = 0;
    for (int j = 1; j < fn->sub->nouts; j++) {
        const Node *r = fn->sub->outs[j].val;
        if (!ir_fused_fresh(fn, j) || r->op == OP_LOG_SOFTMAX_DOT)
            continue;
        MC_ASSERT((r->op == OP_REDUCE_SUM || r->op == OP_REDUCE_MEAN) && r->in[0] == fn->sub->outs[0].val &&
                  at < CG_MAXARGS);
        s->r[s->n] = r;
        s->at[s->n] = at;
        s->base[s->n] = acc[at].base = cg_buf(c, plan_part_slot(c->plan, fn, j));
        cg_fill_value(c, r->dt, acc[at].base, &r->shape, 0);
        cg_reduction_strides(r, over, acc[at++].stride);
        s->n++;
    }
    return at;
}

void cg_sums_add(Cg *c, const ColSums *s, LLVMValueRef v, const LLVMValueRef *offs)
{
    for (int i = 0; i < s->n; i++) {
        DType t = s->r[i]->dt;
        LLVMValueRef o = cg_load(c, t, s->base[i], offs[s->at[i]]);
        cg_store(c, t, LLVMBuildFAdd(c->b, o, v, ""), s->base[i], offs[s->at[i]]);
    }
}

typedef struct Divide {
    DType dt;
    LLVMValueRef buf, by;
} Divide;

static void divide_body(Cg *c, void *ud, LLVMValueRef *offs)
{
    Divide *k = ud;
    LLVMValueRef x = cg_load(c, k->dt, k->buf, offs[0]);
    cg_store(c, k->dt, LLVMBuildFDiv(c->b, x, k->by, ""), k->buf, offs[0]);
}

void cg_sums_end(Cg *c, const ColSums *s, const Shape *over)
{
    for (int i = 0; i < s->n; i++) {
        const Node *r = s->r[i];
        if (r->op != OP_REDUCE_MEAN)
            continue;
        Divide k = {r->dt, s->base[i], LLVMBuildSIToFP(c->b, cg_mono(c, reduced_count(r, over)), cg_type(c, r->dt), "")};
        Acc a = {k.buf, NULL, {mono(1)}};
        Mono n = mono_numel(&r->shape);
        cg_nest(c, 1, &n, 1, &a, divide_body, &k);
    }
}
