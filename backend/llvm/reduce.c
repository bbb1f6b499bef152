/* Reductions (sum, mean, max over any axes; argmax), softmax /
 * log_softmax and the softmax cross-entropy rows (log_softmax_dot,
 * log_softmax_grad). Sums and means are blocked pairwise sums (sums.c):
 * when the innermost axis is reduced each output accumulates in a
 * register (a block's additions may be reassociated, so they vectorize),
 * otherwise a row of outputs accumulates together, each in order. A
 * maximum accumulates in a register when the innermost axis is reduced;
 * otherwise the input is walked in memory order and accumulated into the
 * output, which keeps the innermost loop contiguous. A fused reduction
 * (a fused node whose body ends with the reduction) computes its input
 * per element from the body's elementwise ops over the operands, read
 * with broadcasting, instead of loading it. */
#include "cg.h"

#include <math.h>
#include <string.h>

static LLVMValueRef max_of(Cg *c, LLVMValueRef acc, LLVMValueRef x)
{
    return LLVMBuildSelect(c->b, cg_gt_or_nan(c, LLVMRealOGT, x, acc), x, acc, "");
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
} Red;

/* The input element at offsets offs[0..ops.n): the operand itself, or
 * the fused body's value over the operands. */
static LLVMValueRef x_value(Cg *c, void *ud, LLVMValueRef *offs)
{
    Red *r = ud;
    LLVMValueRef in[CG_MAXARGS];
    cg_operand_values(c, r->src, &r->ops, offs, in);
    return r->fn ? cg_body_value(c, r->fn, r->v->in[0], in, NULL) : in[0];
}

static void acc_body(Cg *c, void *ud, LLVMValueRef *offs)
{
    Red *r = ud;
    LLVMTypeRef t = cg_type(c, r->dt);
    LLVMValueRef a = LLVMBuildLoad2(c->b, t, r->acc, "");
    LLVMBuildStore(c->b, max_of(c, a, x_value(c, r, offs)), r->acc);
}

/* One output element: accumulate over the reduced dims in a register. */
static void inner_body(Cg *c, void *ud, LLVMValueRef *offs)
{
    Red *r = ud;
    LLVMBuildStore(c->b, cg_fconst(c, r->dt, -INFINITY), r->acc);
    Acc a[CG_MAXARGS];
    memset(a, 0, sizeof a);
    for (int k = 0; k < r->ops.n; k++) {
        a[k].base = r->ops.base[k];
        a[k].off = offs[k];
        for (int j = 0; j < r->nr; j++)
            a[k].stride[j] = r->ops.stride[k][r->red_k[j]];
    }
    cg_nest(c, r->nr, r->dims_r, r->ops.n, a, acc_body, r);
    cg_store(c, r->dt, LLVMBuildLoad2(c->b, cg_type(c, r->dt), r->acc, ""), r->out, offs[r->ops.n]);
}

static void mem_body(Cg *c, void *ud, LLVMValueRef *offs)
{
    Red *r = ud;
    LLVMValueRef o = cg_load(c, r->dt, r->out, offs[r->ops.n]);
    cg_store(c, r->dt, max_of(c, o, x_value(c, r, offs)), r->out, offs[r->ops.n]);
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

/* A sum or mean: blocked pairwise (sums.c); a batch reduction's part
 * leaves a mean a sum. */
static void reduce_sum(Cg *c, Red *r, const Shape *s, const bool *red, const Mono *os)
{
    SumNest sn;
    memset(&sn, 0, sizeof sn);
    sn.dt = r->dt;
    sn.rank = s->rank;
    for (int k = 0; k < s->rank; k++) {
        sn.dims[k] = mono_dim(s->d[k]);
        sn.red[k] = red[k];
        for (int a = 0; a < r->ops.n; a++)
            sn.acc[a].stride[k] = r->ops.stride[a][k];
        sn.acc[r->ops.n].stride[k] = os[k];
    }
    for (int a = 0; a < r->ops.n; a++)
        sn.acc[a].base = r->ops.base[a];
    sn.acc[r->ops.n].base = r->out;
    sn.nacc = r->ops.n;
    sn.term = x_value;
    sn.ud = r;
    if (r->v->op == OP_REDUCE_MEAN && !c->partial)
        sn.count = cg_mono(c, reduced_count(r->v, s));
    cg_sum_nest(c, &sn);
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
    if (v->op != OP_REDUCE_MAX) {
        reduce_sum(c, &r, s, red, os);
        return;
    }
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
    cg_fill_value(c, r.dt, r.out, &v->shape, -INFINITY);
    Mono dims[IR_MAXRANK];
    for (int k = 0; k < s->rank; k++) {
        dims[k] = mono_dim(s->d[k]);
        for (int a = 0; a < r.ops.n; a++)
            acc[a].stride[k] = r.ops.stride[a][k];
        acc[r.ops.n].stride[k] = os[k];
    }
    cg_nest(c, s->rank, dims, r.ops.n + 1, acc, mem_body, &r);
}

/* ---- reductions over the batch axis in parts (plan_batch_reduction) ---- */

typedef struct Combine {
    const Node *r;
    LLVMValueRef part, ntasks, count, out;
    PSum s;     /* sums: the parts are its blocks */
    LLVMValueRef acc; /* maximum */
    int64_t oe; /* elements of the result */
} Combine;

/* out[i] = the parts' element i combined in task order: their maximum,
 * or their pairwise sum (each part one block); a mean then divides by
 * the count of every reduced element. */
static void combine_body(Cg *c, void *ud, LLVMValueRef *offs)
{
    Combine *k = ud;
    DType t = k->r->dt;
    LLVMValueRef zero = cg_i64(c, 0), one = cg_i64(c, 1);
    bool max = k->r->op == OP_REDUCE_MAX;
    if (max)
        LLVMBuildStore(c->b, cg_fconst(c, t, -INFINITY), k->acc);
    else
        cg_psum_start(c, &k->s);
    Loop l;
    LLVMValueRef iv = cg_loop_begin(c, &l, k->ntasks, "part");
    LLVMValueRef at = LLVMBuildNSWAdd(c->b, LLVMBuildNSWMul(c->b, iv, cg_i64(c, k->oe), ""), offs[1], "");
    LLVMValueRef x = cg_load(c, t, k->part, at);
    if (max) {
        LLVMBuildStore(c->b, max_of(c, LLVMBuildLoad2(c->b, cg_type(c, t), k->acc, ""), x), k->acc);
    } else {
        cg_psum_zero(c, &k->s, one);
        cg_psum_add(c, &k->s, zero, x);
        cg_psum_push(c, &k->s, one);
    }
    cg_loop_end(c, &l);
    if (!max)
        cg_psum_total(c, &k->s, one);
    LLVMValueRef v = max ? LLVMBuildLoad2(c->b, cg_type(c, t), k->acc, "") : cg_psum_lane(c, &k->s, zero);
    if (k->r->op == OP_REDUCE_MEAN)
        v = LLVMBuildFDiv(c->b, v, LLVMBuildSIToFP(c->b, k->count, cg_type(c, t), ""), "");
    cg_store(c, t, v, k->out, offs[0]);
}

void cg_reduce_combine(Cg *c, const Step *st, LLVMValueRef part, LLVMValueRef out, LLVMValueRef chunk)
{
    const Node *v = st->node, *r = v->op == OP_FUSED ? ir_fused_reduction(v) : v;
    LLVMValueRef n1 = LLVMBuildNSWAdd(c->b, c->n, LLVMBuildNSWSub(c->b, chunk, cg_i64(c, 1), ""), "");
    Combine k;
    memset(&k, 0, sizeof k);
    k.r = r;
    k.part = part;
    k.ntasks = LLVMBuildSDiv(c->b, n1, chunk, "ntasks");
    k.count = cg_mono(c, reduced_count(r, &r->in[0]->shape));
    k.out = out;
    k.oe = ir_shape_numel(&r->shape, 0);
    if (r->op == OP_REDUCE_MAX)
        k.acc = cg_alloca(c, cg_type(c, r->dt), "acc");
    else
        cg_psum_init(c, &k.s, r->dt, 1);
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
 * One row (the elements along the axis) at a time, in three passes (the
 * sums blocked pairwise, sums.c):
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
    LLVMValueRef x, y, out, m, s, g; /* y: operand 1 (t or gy); s, g: the sums' acc */
    PSum ps, pg;                     /* s and g */
    LLVMValueRef r;                  /* the row's value for pass 2 */
    Mono len, stride;
    int phase; /* 0 max, 1 sum of exp, 2 write */
} Softmax;

static void add_to(Cg *c, Softmax *k, LLVMValueRef acc, LLVMValueRef v)
{
    cg_psum_add(c, acc == k->s ? &k->ps : &k->pg, cg_i64(c, 0), v);
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
        PSum sums[2] = {k->ps, k->pg};
        int nsums = k->phase == 0 ? 0 : k->phase == 2 ? dot : k->v->op == OP_LOG_SOFTMAX_GRAD ? 2 : 1;
        cg_sum_loop(c, k->len, nb, acc, softmax_step, k, sums, nsums);
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
    cg_psum_init(c, &k.ps, k.dt, 1);
    cg_psum_init(c, &k.pg, k.dt, 1);
    k.s = k.ps.acc;
    k.g = k.pg.acc;
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

typedef struct ColSum {
    DType dt;
    LLVMValueRef value;
} ColSum;

static LLVMValueRef col_term(Cg *c, void *ud, LLVMValueRef *offs)
{
    const ColSum *k = ud;
    return cg_load(c, k->dt, k->value, offs[0]);
}

void cg_column_sums(Cg *c, const Node *fn, const Shape *over, LLVMValueRef value)
{
    for (int j = 1; j < fn->sub->nouts; j++) {
        const Node *r = fn->sub->outs[j].val;
        if (!ir_fused_fresh(fn, j) || r->op == OP_LOG_SOFTMAX_DOT)
            continue;
        MC_ASSERT((r->op == OP_REDUCE_SUM || r->op == OP_REDUCE_MEAN) && r->in[0] == fn->sub->outs[0].val);
        ColSum k = {r->dt, value};
        SumNest sn;
        memset(&sn, 0, sizeof sn);
        sn.dt = r->dt;
        sn.rank = over->rank;
        reduced_dims(r, sn.red);
        for (int d = 0; d < over->rank; d++)
            sn.dims[d] = mono_dim(over->d[d]);
        sn.nacc = 1;
        sn.acc[0].base = value;
        mono_strides(over, sn.acc[0].stride);
        sn.acc[1].base = cg_buf(c, plan_part_slot(c->plan, fn, j));
        cg_reduction_strides(r, over, sn.acc[1].stride);
        sn.term = col_term;
        sn.ud = &k;
        if (r->op == OP_REDUCE_MEAN)
            sn.count = cg_mono(c, reduced_count(r, over));
        cg_sum_nest(c, &sn);
    }
}
