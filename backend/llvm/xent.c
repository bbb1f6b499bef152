/* The softmax cross-entropy row kernel: a fused node whose value is
 * log_softmax_grad(z, gy) and whose fresh results are log_softmax_dot(z,
 * t) of the same logits along the same axis and column sums (or means)
 * of the gradient (the last layer's bias gradient). gy and t are the
 * body's elementwise ops over its operands, evaluated per element of z
 * (so the loss gradient's scaling and the one-hot targets need no buffer
 * of their own). One row at a time, in three passes over the row:
 *   0: m = max z
 *   1: e = exp(z - m) kept in the gradient's buffer, s = sum e, g = sum gy
 *   2: grad = gy - e * (g / s); dot += t * ((z - m) - log s)
 * and the row's dot is stored after pass 2 (the row sums blocked
 * pairwise, sums.c); the column sums then reduce the stored gradient.
 * The arithmetic is that of the separate log_softmax_dot and
 * log_softmax_grad kernels (reduce.c) and reductions, so fusing them
 * changes no result; the softmax is computed once. */
#include "cg.h"

#include <math.h>
#include <string.h>

enum { X_OUT, X_DOT, X_OPS }; /* acc order: gradient, dot, operands */

typedef struct Xent {
    const Node *fn, *grad, *dot;
    DType dt;
    Operands ops; /* fn's operands over z's shape */
    int nacc;
    Acc row[CG_MAXARGS]; /* each buffer along the row (stride of the axis) */
    LLVMValueRef m, s, g, d, r, lse; /* s, g, d: the acc of ps, pg, pd */
    PSum ps, pg, pd;
    Mono len;
    int phase;
} Xent;

/* Body value of node x of fn at the operand offsets offs[X_OPS..]. */
static LLVMValueRef value(Cg *c, Xent *k, const Node *x, LLVMValueRef *offs)
{
    LLVMValueRef in[CG_MAXARGS];
    cg_operand_values(c, k->fn, &k->ops, offs + X_OPS, in);
    return cg_body_value(c, k->fn, x, in, NULL);
}

static void add_to(Cg *c, const PSum *s, LLVMValueRef v)
{
    cg_psum_add(c, s, cg_i64(c, 0), v);
}

static void xent_step(Cg *c, void *ud, LLVMValueRef *offs)
{
    Xent *k = ud;
    LLVMTypeRef t = cg_type(c, k->dt);
    LLVMValueRef z = value(c, k, k->grad->in[0], offs);
    LLVMValueRef m = LLVMBuildLoad2(c->b, t, k->m, "");
    if (k->phase == 0) {
        LLVMBuildStore(c->b, LLVMBuildSelect(c->b, cg_gt_or_nan(c, LLVMRealOGT, z, m), z, m, ""), k->m);
        return;
    }
    LLVMValueRef d = LLVMBuildFSub(c->b, z, m, "");
    LLVMValueRef out = k->row[X_OUT].base;
    if (k->phase == 1) {
        LLVMValueRef e = cg_exp(c, k->dt, d);
        cg_store(c, k->dt, e, out, offs[X_OUT]);
        add_to(c, &k->pg, value(c, k, k->grad->in[1], offs));
        add_to(c, &k->ps, e);
        return;
    }
    LLVMValueRef p = LLVMBuildFMul(c->b, cg_load(c, k->dt, out, offs[X_OUT]), k->r, "");
    LLVMValueRef gr = LLVMBuildFSub(c->b, value(c, k, k->grad->in[1], offs), p, "");
    cg_store(c, k->dt, gr, out, offs[X_OUT]);
    if (k->dot) {
        LLVMValueRef tv = value(c, k, k->dot->in[1], offs);
        add_to(c, &k->pd, LLVMBuildFMul(c->b, tv, LLVMBuildFSub(c->b, d, k->lse, ""), ""));
    }
}

static void xent_row(Cg *c, void *ud, LLVMValueRef *offs)
{
    Xent *k = ud;
    LLVMTypeRef t = cg_type(c, k->dt);
    Acc acc[CG_MAXARGS];
    memcpy(acc, k->row, sizeof acc);
    for (int a = 0; a < k->nacc; a++)
        acc[a].off = offs[a];
    LLVMBuildStore(c->b, cg_fconst(c, k->dt, -INFINITY), k->m);
    LLVMBuildStore(c->b, cg_fconst(c, k->dt, 0), k->s);
    LLVMBuildStore(c->b, cg_fconst(c, k->dt, 0), k->g);
    LLVMBuildStore(c->b, cg_fconst(c, k->dt, 0), k->d);
    for (k->phase = 0; k->phase < 3; k->phase++) {
        if (k->phase == 2) {
            LLVMValueRef s = LLVMBuildLoad2(c->b, t, k->s, "");
            k->r = LLVMBuildFDiv(c->b, LLVMBuildLoad2(c->b, t, k->g, ""), s, "");
            k->lse = cg_intrinsic(c, "llvm.log", t, &s, 1);
        }
        PSum sums[2] = {k->phase == 2 ? k->pd : k->ps, k->pg};
        int nsums = k->phase == 0 ? 0 : k->phase == 1 ? 2 : k->dot != NULL;
        cg_sum_loop(c, k->len, k->nacc, acc, xent_step, k, sums, nsums);
    }
    if (k->dot)
        cg_store(c, k->dt, LLVMBuildLoad2(c->b, t, k->d, ""), k->row[X_DOT].base, offs[X_DOT]);
}

void cg_softmax_xent(Cg *c, const Step *st)
{
    const Node *fn = st->node;
    Xent k;
    memset(&k, 0, sizeof k);
    k.fn = fn;
    k.grad = ir_fused_softmax(fn);
    k.dt = fn->dt;
    const Shape *z = &fn->shape;
    int ax = k.grad->a.axes[0];
    cg_operands(c, fn, z, NULL, &k.ops);
    Acc all[CG_MAXARGS]; /* each buffer with its strides over z's dims */
    memset(all, 0, sizeof all);
    all[X_OUT].base = cg_buf(c, st->out);
    mono_strides(z, all[X_OUT].stride);
    all[X_DOT].base = all[X_OUT].base; /* without a dot: never stored */
    for (int j = 1; j < fn->sub->nouts; j++) {
        const Node *x = fn->sub->outs[j].val;
        if (x->op == OP_LOG_SOFTMAX_DOT) {
            k.dot = x;
            all[X_DOT].base = cg_buf(c, plan_part_slot(c->plan, fn, j));
            cg_reduction_strides(x, z, all[X_DOT].stride);
        }
    }
    for (int a = 0; a < k.ops.n; a++) {
        all[X_OPS + a].base = k.ops.base[a];
        memcpy(all[X_OPS + a].stride, k.ops.stride[a], sizeof all[0].stride);
    }
    k.nacc = X_OPS + k.ops.n;
    /* rows: every dim but the axis; along the row: the axis */
    Acc rows[CG_MAXARGS];
    memset(rows, 0, sizeof rows);
    Mono dims[IR_MAXRANK];
    int nd = 0;
    for (int d = 0; d < z->rank; d++) {
        if (d == ax)
            continue;
        dims[nd] = mono_dim(z->d[d]);
        for (int a = 0; a < k.nacc; a++)
            rows[a].stride[nd] = all[a].stride[d];
        nd++;
    }
    for (int a = 0; a < k.nacc; a++) {
        rows[a].base = k.row[a].base = all[a].base;
        k.row[a].stride[0] = all[a].stride[ax];
    }
    k.len = mono_dim(z->d[ax]);
    LLVMTypeRef t = cg_type(c, k.dt);
    k.m = cg_alloca(c, t, "max");
    cg_psum_init(c, &k.ps, k.dt, 1);
    cg_psum_init(c, &k.pg, k.dt, 1);
    cg_psum_init(c, &k.pd, k.dt, 1);
    k.s = k.ps.acc;
    k.g = k.pg.acc;
    k.d = k.pd.acc;
    cg_nest(c, nd, dims, k.nacc, rows, xent_row, &k);
    cg_column_sums(c, fn, z, all[X_OUT].base);
}
