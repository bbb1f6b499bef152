/* The LLVM module of a plan: one internal function per kernel and the
 * entry function `void entry(ptr ctx, i64 N, ptr bufs)` that loads the
 * buffer table once and calls the kernels (and copies) in order; or the
 * same for a range of the plan's steps, so that parts compile apart. A
 * profiling module also calls rt_prof_begin at the start and
 * rt_prof_tick(ctx, i) after step i (runtime/kernels.h). */
#include "cg.h"

#include <llvm-c/Analysis.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int cg_step_slots(const Plan *p, const Step *st, int *slots)
{
    int n = 0;
    slots[n++] = st->out;
    if (st->kind == STEP_COPY) {
        slots[n++] = st->src;
        return n;
    }
    for (int j = 1; st->node->sub && j < st->node->sub->nouts; j++)
        if (plan_part_slot(p, st->node, j) >= 0) {
            MC_ASSERT(n < CG_MAXARGS - 1);
            slots[n++] = plan_part_slot(p, st->node, j);
        }
    for (int i = 0; i < st->node->nin; i++) {
        int s = p->node_slot[st->node->in[i]->id];
        bool dup = s < 0;
        for (int j = 0; j < n && !dup; j++)
            dup = slots[j] == s;
        if (!dup) {
            MC_ASSERT(n < CG_MAXARGS - 1);
            slots[n++] = s;
        }
    }
    if (st->scratch >= 0)
        slots[n++] = st->scratch;
    if (st->scratch2 >= 0)
        slots[n++] = st->scratch2;
    return n;
}

static void emit_kernel_body(Cg *c, const Step *st)
{
    Node *v = st->node;
    switch (v->op) {
    case OP_CONST:
        cg_fill(c, st);
        return;
    case OP_TRANSPOSE:
        cg_transpose(c, st);
        return;
    case OP_SLICE:
        cg_slice(c, st);
        return;
    case OP_SLICE_GRAD:
        cg_slice_grad(c, st);
        return;
    case OP_CONCAT:
        cg_concat(c, st);
        return;
    case OP_ONE_HOT:
        cg_one_hot(c, st);
        return;
    case OP_DROPOUT_MASK:
        cg_dropout_mask(c, st);
        return;
    case OP_GATHER:
    case OP_GATHER_GRAD:
        cg_gather(c, st);
        return;
    case OP_REPLICA_MEAN:
        cg_replica_mean(c, st);
        return;
    case OP_REDUCE_SUM:
    case OP_REDUCE_MEAN:
    case OP_REDUCE_MAX:
        cg_reduce(c, st);
        return;
    case OP_ARGMAX:
        cg_argmax(c, st);
        return;
    case OP_SOFTMAX:
    case OP_LOG_SOFTMAX:
    case OP_LOG_SOFTMAX_DOT:
    case OP_LOG_SOFTMAX_GRAD:
        cg_softmax(c, st);
        return;
    case OP_MATMUL:
        cg_matmul(c, st);
        return;
    case OP_CONV2D:
    case OP_CONV2D_GRAD_INPUT:
    case OP_CONV2D_GRAD_KERNEL:
        cg_conv(c, st);
        return;
    case OP_MAX_POOL2D:
    case OP_MAX_POOL2D_GRAD:
    case OP_AVG_POOL2D:
    case OP_AVG_POOL2D_GRAD:
        cg_pool(c, st);
        return;
    case OP_FUSED:
        if (ir_fused_reduction(v))
            cg_reduce(c, st);
        else if (ir_fused_softmax(v))
            cg_softmax_xent(c, st);
        else
            cg_elementwise(c, st);
        return;
    case OP_BROADCAST:
        cg_elementwise(c, st);
        return;
    case OP_LOOP:
        cg_loop(c, st);
        return;
    default:
        if (ir_op_is_elementwise(v->op)) {
            cg_elementwise(c, st);
            return;
        }
        ICE("no code generator for %s", ir_ops[v->op].name);
    }
}

static LLVMValueRef emit_kernel(Cg *c, int i, const Step *st, const int *slots, int ns)
{
    char name[256];
    snprintf(name, sizeof name, "%sk%d.%s%s%s", c->prefix ? c->prefix : "", i, ir_ops[st->node->op].name,
             ir_fused_softmax(st->node) ? "_softmax_xent" : "",
             c->gemm_part == CG_EPILOGUE_ONLY ? ".epilogue" : "");
    c->step = i;
    cg_kernel_begin(c, name, slots, ns);
    emit_kernel_body(c, st);
    cg_kernel_end(c);
    return c->fn;
}

/* ---- row-parallel kernels ----
 * An elementwise kernel (or a reduction keeping the batch axis) whose
 * buffers each either lead with the batch axis N (and have no other N)
 * or have no N at all computes rows [lo, hi) when run with N = hi - lo on
 * buffers offset by lo rows. Such kernels get a thunk `kI.rows(env, lo,
 * hi)` that the entry hands to rt_parallel_rows with a fixed number of
 * rows per task (CG_ROW_GRAIN elements), so the split never depends on
 * the thread count. */
/* A fused kernel that is a GEMM's epilogue, a softmax row kernel or has
 * fresh results (accumulated over the whole loop) runs as one piece. */
static bool whole_kernel(const Node *v)
{
    if (v->op != OP_FUSED)
        return false;
    if (ir_fused_anchor(v) || ir_fused_softmax(v))
        return true;
    for (int j = 1; j < v->sub->nouts; j++)
        if (ir_fused_fresh(v, j))
            return true;
    return false;
}

/* An op whose rows are a few exp, log or compare steps each (softmax,
 * its log forms, argmax) along an axis other than the batch's: worth
 * splitting however short its rows, in tasks of CG_ROW_GRAIN / 8
 * elements (a 1000 x 10 batch of logits: three tasks). */
static bool heavy_rows_op(const Node *v)
{
    switch (v->op) {
    case OP_SOFTMAX:
    case OP_LOG_SOFTMAX:
    case OP_LOG_SOFTMAX_DOT:
    case OP_LOG_SOFTMAX_GRAD:
        return v->a.axes[0] != 0;
    case OP_ARGMAX:
        for (int i = 0; i < v->a.naxes; i++)
            if (v->a.axes[i] == 0)
                return false;
        return v->a.naxes > 0;
    default:
        return false;
    }
}

static bool row_parallel_op(const Node *v)
{
    if (heavy_rows_op(v))
        return true;
    if (whole_kernel(v))
        return false;
    if (v->op == OP_FUSED && ir_fused_reduction(v))
        v = ir_fused_reduction(v); /* splits like its reduction */
    else if (v->op == OP_FUSED || v->op == OP_BROADCAST || ir_op_is_elementwise(v->op))
        return true;
    if (!ir_op_has(v->op, OPF_REDUCTION))
        return false;
    for (int i = 0; i < v->a.naxes; i++)
        if (v->a.axes[i] == 0)
            return false;
    return true;
}

/* Rows per task of a row-parallel step (by its widest row: a reduction's
 * input), 0 for other steps (cg.h). */
int64_t cg_row_chunk(const Plan *p, const Step *st)
{
    if (st->kind != STEP_KERNEL || st->scratch >= 0 || !row_parallel_op(st->node))
        return 0;
    const Node *v = st->node;
    if (plan_split_kind(p, st->out, &v->shape) != 1)
        return 0;
    int64_t row = plan_row_elems(&v->shape);
    for (int i = 0; i < v->nin; i++) {
        int s = p->node_slot[v->in[i]->id], k = s >= 0 ? plan_split_kind(p, s, &v->in[i]->shape) : 0;
        if (k < 0)
            return 0;
        if (k == 1 && plan_row_elems(&v->in[i]->shape) > row)
            row = plan_row_elems(&v->in[i]->shape);
    }
    int64_t grain = heavy_rows_op(v) ? CG_ROW_GRAIN / 8 : CG_ROW_GRAIN;
    if (row < CG_ROW_MIN && !heavy_rows_op(v))
        return 0;
    return (grain + row - 1) / row;
}

/* Rows per task of the epilogue of a GEMM's fused kernel when it runs as
 * a row-parallel kernel of its own after the GEMM (which splits its work
 * across the threads itself), 0 when it stays in the kernel: a body
 * beyond the GEMM with no results accumulated over the rows, and every
 * buffer N-leading or without N. Tasks of CG_ROW_GRAIN elements, as for
 * row-parallel kernels: a small batch's epilogue stays one task. */
static int64_t gemm_epilogue_chunk(const Plan *p, const Step *st)
{
    const Node *v = st->node;
    if (st->kind != STEP_KERNEL || st->scratch >= 0 || st->epilogue || v->op != OP_FUSED || !ir_fused_anchor(v) ||
        (v->sub->outs[0].val == ir_fused_anchor(v) && v->sub->nouts == 1))
        return 0;
    for (int j = 1; j < v->sub->nouts; j++)
        if (ir_fused_fresh(v, j))
            return 0;
    if (!plan_n_leading(&v->shape) || plan_split_kind(p, st->out, &v->shape) != 1)
        return 0;
    for (int i = 0; i < v->nin; i++) {
        int s = p->node_slot[v->in[i]->id];
        if (s >= 0 && plan_split_kind(p, s, &v->in[i]->shape) < 0)
            return 0;
    }
    int64_t row = plan_row_elems(&v->shape);
    return (CG_ROW_GRAIN + row - 1) / row;
}

/* ---- flat-parallel kernels ----
 * An elementwise kernel over a shape without the batch axis (a
 * parameter's update loop, with its side results) whose operands are
 * each of the result's size or scalars is one flat loop: its kernel is
 * generated over N elements (Cg.flat; N is then the kernel's element
 * count) and its thunk `kI.flat(env, lo, hi)` computes elements [lo, hi)
 * on buffers offset by lo elements (scalars stay). Large ones are split
 * like row-parallel kernels, CG_ROW_GRAIN elements per task. */
#define CG_FLAT_MIN (2 * CG_ROW_GRAIN)

/* An op a flat loop can compute: elementwise, or a fused group of
 * elementwise ops with no GEMM, softmax row, reduction or fresh result. */
static bool flat_op(const Node *v)
{
    return v->op == OP_FUSED ? !whole_kernel(v) && !ir_fused_reduction(v) : ir_op_is_elementwise(v->op);
}

static int64_t flat_elems(const Plan *p, const Step *st)
{
    if (st->kind != STEP_KERNEL || st->scratch >= 0)
        return 0;
    const Node *v = st->node;
    if (!flat_op(v) || ir_shape_has_n(&v->shape))
        return 0;
    int64_t n = ir_shape_numel(&v->shape, 0);
    if (n < CG_FLAT_MIN)
        return 0;
    for (int i = 0; i < v->nin; i++) {
        const Node *u = v->in[i];
        if (plan_const_inline(p, u))
            continue;
        int64_t m = ir_shape_numel(&u->shape, 0);
        if (ir_shape_has_n(&u->shape) || (m != n && m != 1))
            return 0;
    }
    return n;
}

/* MODELC_NO_FLAT_ROWS=1: such kernels stay row-parallel (tests compare) */
static bool flat_row_off(void)
{
    const char *v = getenv("MODELC_NO_FLAT_ROWS");
    return v && *v && strcmp(v, "0") != 0;
}

/* MODELC_NO_GEMM_EPILOGUE_ROWS=1: a GEMM's epilogue stays in its kernel,
 * one thread (tests compare) */
static bool gemm_epilogue_off(void)
{
    const char *v = getenv("MODELC_NO_GEMM_EPILOGUE_ROWS");
    return v && *v && strcmp(v, "0") != 0;
}

/* An elementwise kernel over [N, ...] (N leading, no other N) whose
 * operands are each of the result's shape or scalars is flat too, over
 * N * row elements, when a row is longer than two tasks: one large image
 * is then split by elements across the threads, where a row-parallel
 * kernel would compute it on one. Returns the row's elements, or 0. */
static int64_t flat_row(const Plan *p, const Step *st)
{
    if (st->kind != STEP_KERNEL || st->scratch >= 0)
        return 0;
    const Node *v = st->node;
    if (!flat_op(v) || !plan_n_leading(&v->shape) || plan_split_kind(p, st->out, &v->shape) != 1)
        return 0;
    int64_t row = plan_row_elems(&v->shape);
    if (row < CG_FLAT_MIN)
        return 0;
    for (int i = 0; i < v->nin; i++) {
        const Node *u = v->in[i];
        if (plan_const_inline(p, u))
            continue;
        int k = p->node_slot[u->id];
        bool scalar = !ir_shape_has_n(&u->shape) && ir_shape_numel(&u->shape, 0) == 1;
        if (!scalar && (!ir_shape_eq(&u->shape, &v->shape) || k < 0 || plan_split_kind(p, k, &u->shape) != 1))
            return 0;
    }
    return row;
}

/* env[j] of a thunk, as value `name` */
static LLVMValueRef env_at(Cg *c, LLVMValueRef env, int j, const char *name)
{
    LLVMValueRef idx = cg_i64(c, j);
    return LLVMBuildLoad2(c->b, c->ptr, LLVMBuildInBoundsGEP2(c->b, c->ptr, env, &idx, 1, ""), name);
}

/* void kI.rows(ptr env, i64 lo, i64 hi): env = {ctx, buffers...}; rows of
 * N-leading buffers, or (flat) elements of every buffer but scalars. */
static LLVMValueRef emit_rows_thunk(Cg *c, int i, LLVMValueRef kfn, const int *kslots, int nk, bool flat,
                                    const Step *part)
{
    LLVMTypeRef pt[3] = {c->ptr, c->i64, c->i64};
    char name[256];
    snprintf(name, sizeof name, "%sk%d.%s", c->prefix ? c->prefix : "", i, flat ? "flat" : part ? "part" : "rows");
    LLVMValueRef f = LLVMAddFunction(c->mod, name, LLVMFunctionType(c->vd, pt, 3, 0));
    LLVMSetLinkage(f, LLVMInternalLinkage);
    LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->cx, f, "entry"));
    LLVMValueRef env = LLVMGetParam(f, 0), lo = LLVMGetParam(f, 1), hi = LLVMGetParam(f, 2);
    LLVMValueRef args[CG_MAXARGS + 2];
    args[0] = env_at(c, env, 0, "ctx");
    args[1] = LLVMBuildNSWSub(c->b, hi, lo, "n");
    LLVMValueRef part_at = NULL; /* a batch reduction's part: its result goes to part lo / chunk */
    if (part) {
        LLVMValueRef chunk = LLVMBuildPtrToInt(c->b, env_at(c, env, nk + 1, ""), c->i64, "chunk"), scratch = NULL;
        for (int j = 0; j < nk; j++)
            if (kslots[j] == part->scratch)
                scratch = env_at(c, env, j + 1, "");
        MC_ASSERT(scratch);
        const Slot *o = &c->plan->slots[part->out];
        LLVMValueRef off = LLVMBuildNSWMul(c->b, LLVMBuildSDiv(c->b, lo, chunk, ""),
                                           cg_i64(c, o->elems.c * ir_dtype_size(o->dt)), "");
        part_at = LLVMBuildInBoundsGEP2(c->b, LLVMInt8TypeInContext(c->cx), scratch, &off, 1, "part");
    }
    for (int j = 0; j < nk; j++) {
        LLVMValueRef ptr = env_at(c, env, j + 1, "");
        const Slot *s = &c->plan->slots[kslots[j]];
        if (flat ? !mono_is(s->elems, 1) : plan_n_leading(&s->shape)) {
            int64_t step = (flat ? 1 : s->elems.c) * ir_dtype_size(s->dt); /* bytes per element or row */
            LLVMValueRef off = LLVMBuildNSWMul(c->b, lo, cg_i64(c, step), "");
            ptr = LLVMBuildInBoundsGEP2(c->b, LLVMInt8TypeInContext(c->cx), ptr, &off, 1, "");
        }
        args[j + 2] = part && kslots[j] == part->out ? part_at : ptr;
    }
    LLVMBuildCall2(c->b, LLVMGlobalGetValueType(kfn), kfn, args, (unsigned)nk + 2, "");
    LLVMBuildRetVoid(c->b);
    return f;
}

/* Distinct slots of a step in kernel-parameter order. */
static int kernel_slots(const Plan *p, const Step *st, int *out)
{
    int slots[CG_MAXARGS], ns = cg_step_slots(p, st, slots), n = 0;
    for (int j = 0; j < ns; j++) {
        bool dup = false;
        for (int k = 0; k < n; k++)
            dup |= out[k] == slots[j];
        if (!dup)
            out[n++] = slots[j];
    }
    return n;
}

/* rt_parallel_rows(ctx, total, chunk, thunk, env) with env = {ctx,
 * buffers}; for a batch reduction's parts (part_chunk not NULL)
 * rt_parallel_parts with env = {ctx, buffers, chunk}. */
static LLVMValueRef rows_env(Cg *c, LLVMValueRef ctxp, LLVMValueRef chunk, const LLVMValueRef *bp, const int *ks,
                             int nk, bool parts)
{
    LLVMValueRef env = cg_alloca(c, LLVMArrayType2(c->ptr, (uint64_t)nk + 2), "env"); /* once, in the entry block */
    for (int j = 0; j <= nk + parts; j++) {
        LLVMValueRef idx = cg_i64(c, j);
        LLVMValueRef at = LLVMBuildInBoundsGEP2(c->b, c->ptr, env, &idx, 1, "");
        LLVMValueRef v = j == 0 ? ctxp : j <= nk ? bp[ks[j - 1]] : LLVMBuildIntToPtr(c->b, chunk, c->ptr, "");
        LLVMBuildStore(c->b, v, at);
    }
    return env;
}

static void call_rows(Cg *c, LLVMValueRef ctxp, LLVMValueRef total, LLVMValueRef thunk, LLVMValueRef chunk,
                      const LLVMValueRef *bp, const int *ks, int nk, bool parts)
{
    LLVMValueRef env = rows_env(c, ctxp, chunk, bp, ks, nk, parts);
    LLVMTypeRef pt[5] = {c->ptr, c->i64, c->i64, c->ptr, c->ptr};
    LLVMValueRef a[5] = {ctxp, total, chunk, thunk, env};
    cg_call(c, parts ? "rt_parallel_parts" : "rt_parallel_rows", c->vd, pt, 5, a);
}

/* Rows per part of a batch reduction: ceil(N / CG_RED_TASKS), at least 1. */
static LLVMValueRef part_chunk(Cg *c)
{
    LLVMValueRef q = LLVMBuildSDiv(c->b, LLVMBuildNSWAdd(c->b, c->n, cg_i64(c, CG_RED_TASKS - 1), ""),
                                   cg_i64(c, CG_RED_TASKS), "");
    LLVMValueRef small = LLVMBuildICmp(c->b, LLVMIntSLT, q, cg_i64(c, 1), "");
    return LLVMBuildSelect(c->b, small, cg_i64(c, 1), q, "chunk");
}

/* bytes of a slot for the entry's N */
static LLVMValueRef slot_bytes(Cg *c, const Slot *s)
{
    return cg_mono(c, mono_mul(s->elems, mono(ir_dtype_size(s->dt))));
}

/* rt_prof_begin(ctx) (i < 0) or rt_prof_tick(ctx, i) */
static void prof_call(Cg *c, LLVMValueRef ctxp, int i)
{
    LLVMTypeRef pt[2] = {c->ptr, c->i32};
    LLVMValueRef args[2] = {ctxp, LLVMConstInt(c->i32, (unsigned long long)i, 0)};
    if (i < 0)
        cg_call(c, "rt_prof_begin", c->vd, pt, 1, args);
    else
        cg_call(c, "rt_prof_tick", c->vd, pt, 2, args);
}

/* With Plan.step_done: rt_step_done(ctx, i) after a step that finishes an output. */
static void done_call(Cg *c, LLVMValueRef ctxp, int i)
{
    if (!c->plan->step_done || !plan_out_step_finishes(c->plan, i))
        return;
    LLVMTypeRef pt[2] = {c->ptr, c->i64};
    LLVMValueRef args[2] = {ctxp, cg_i64(c, i)};
    cg_call(c, "rt_step_done", c->vd, pt, 2, args);
}

LLVMModuleRef cg_build_module(LLVMContextRef cx, const Plan *p, bool profile, Diags *d)
{
    return cg_build_part(cx, p, 0, p->nsteps, "entry", profile, d);
}

/* The kernels of an entry being built (build_entry), by step. */
typedef struct Kernels {
    LLVMValueRef *kfn, *rowfn;
    LLVMValueRef *epifn; /* a GEMM's epilogue as a row-parallel kernel after it (gemm_epilogue_chunk) */
    int64_t *epirows;
    int64_t *rows, *flat, *frow; /* frow: a flat kernel over N rows of frow elements (flat_row) */
    LLVMValueRef ctxp;
    int lo, hi; /* the entry's steps */
    bool profile;
    bool in_tile; /* emitting a batch tile's loop: rt_step_done after it */
} Kernels;

/* Step i's call (with its epilogues), on buffers bp and the batch c->n. */
static void emit_step(Cg *c, const Kernels *k, int i, LLVMValueRef *bp)
{
    const Plan *p = c->plan;
    const Step *st = &p->steps[i];
    LLVMValueRef ctxp = k->ctxp;
    int64_t *rows = k->rows, *flat = k->flat, *frow = k->frow;
    if (st->kind == STEP_COPY) {
        LLVMBuildMemCpy(c->b, bp[st->out], 16, bp[st->src], 16, slot_bytes(c, &p->slots[st->src]));
        if (k->profile)
            prof_call(c, ctxp, i);
        done_call(c, ctxp, i);
        return;
    }
    int ks[CG_MAXARGS], nk = kernel_slots(p, st, ks);
    int nep = 0; /* epilogues of this step: steps i + 1 .. i + nep */
    while (!st->epilogue && i + nep + 1 < k->hi && p->steps[i + nep + 1].epilogue)
        nep++;
    if (st->epilogue && i > k->lo) {
        /* ran inside the step that produced its operand */
    } else {
        /* a producer: rt_epilogue_begin(ctx, thunk, env, chunk, units per row) for each epilogue, its
         * kernel, rt_epilogue_end(ctx, N) */
        for (int e = i + 1; e <= i + nep; e++) {
            MC_ASSERT(rows[e] > 0 && !flat[e]);
            int eks[CG_MAXARGS], enk = kernel_slots(p, &p->steps[e], eks);
            LLVMValueRef chunk = cg_i64(c, rows[e]);
            LLVMValueRef a[5] = {ctxp, k->rowfn[e], rows_env(c, ctxp, chunk, bp, eks, enk, false), chunk,
                                 cg_i64(c, frow[e] ? frow[e] : 1)};
            LLVMTypeRef bt[5] = {c->ptr, c->ptr, c->ptr, c->i64, c->i64};
            cg_call(c, "rt_epilogue_begin", c->vd, bt, 5, a);
        }
        if (rows[i] < 0) {
            LLVMValueRef chunk = part_chunk(c);
            call_rows(c, ctxp, c->n, k->rowfn[i], chunk, bp, ks, nk, true);
            cg_reduce_combine(c, st, bp[st->scratch], bp[st->out], chunk);
        } else if (rows[i]) {
            LLVMValueRef total = flat[i]   ? cg_i64(c, flat[i])
                                 : frow[i] ? LLVMBuildNSWMul(c->b, c->n, cg_i64(c, frow[i]), "elems")
                                           : c->n;
            call_rows(c, ctxp, total, k->rowfn[i], cg_i64(c, rows[i]), bp, ks, nk, false);
        } else {
            LLVMValueRef args[CG_MAXARGS + 2];
            int na = 0;
            args[na++] = ctxp;
            args[na++] = c->n;
            for (int j = 0; j < nk; j++)
                args[na++] = bp[ks[j]];
            LLVMBuildCall2(c->b, LLVMGlobalGetValueType(k->kfn[i]), k->kfn[i], args, (unsigned)na, "");
            if (k->epifn[i])
                call_rows(c, ctxp, c->n, k->epifn[i], cg_i64(c, k->epirows[i]), bp, ks, nk, false);
        }
        if (nep) {
            LLVMValueRef e[2] = {ctxp, c->n};
            LLVMTypeRef et[2] = {c->ptr, c->i64};
            cg_call(c, "rt_epilogue_end", c->vd, et, 2, e);
        }
    }
    if (k->profile)
        prof_call(c, ctxp, i);
    if (!k->in_tile)
        done_call(c, ctxp, i);
}

/* if (|loss| < inf) step i: an update after the loss, skipped when the
 * loss is NaN or infinite (plan_guards). */
static void emit_guarded(Cg *c, const Kernels *k, int i, LLVMValueRef *bp)
{
    const Plan *p = c->plan;
    LLVMTypeRef ft = cg_type(c, p->slots[p->guard_slot].dt);
    LLVMValueRef loss = LLVMBuildLoad2(c->b, ft, bp[p->guard_slot], "loss");
    LLVMValueRef mag = cg_intrinsic(c, "llvm.fabs", ft, &loss, 1);
    LLVMValueRef inf = LLVMConstReal(ft, INFINITY);
    LLVMValueRef finite = LLVMBuildFCmp(c->b, LLVMRealOLT, mag, inf, "finite");
    LLVMBasicBlockRef run = LLVMAppendBasicBlockInContext(c->cx, c->fn, "update");
    LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(c->cx, c->fn, "after.update");
    LLVMBuildCondBr(c->b, finite, run, next);
    LLVMPositionBuilderAtEnd(c->b, run);
    emit_step(c, k, i, bp);
    LLVMBuildBr(c->b, next);
    LLVMPositionBuilderAtEnd(c->b, next);
}

/* Steps [a, b) of a batch tile (plan_tiles): for (lo = 0; lo < N; lo +=
 * R) the steps with N = min(R, N - lo), on the tile's own temporaries as
 * they are and the other buffers leading with N offset by lo rows. */
static void emit_tile(Cg *c, const Kernels *k, int a, int b, LLVMValueRef *bp)
{
    const Plan *p = c->plan;
    LLVMValueRef n = c->n, r = cg_i64(c, p->steps[a].tile_rows);
    LLVMValueRef count = LLVMBuildSDiv(c->b, LLVMBuildNSWAdd(c->b, n, cg_i64(c, p->steps[a].tile_rows - 1), ""),
                                       r, "tiles");
    Loop l;
    LLVMValueRef t = cg_loop_begin(c, &l, count, "tile");
    LLVMValueRef lo = LLVMBuildNSWMul(c->b, t, r, "tile.lo"), left = LLVMBuildNSWSub(c->b, n, lo, "");
    c->n = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, left, r, ""), left, r, "tile.n");
    LLVMValueRef *tb = xcalloc((size_t)p->nslots + 1, sizeof(LLVMValueRef));
    memcpy(tb, bp, (size_t)p->nslots * sizeof(LLVMValueRef));
    for (int i = a; i < b; i++) {
        int slots[CG_MAXARGS], ns = cg_step_slots(p, &p->steps[i], slots);
        for (int j = 0; j < ns; j++) {
            const Slot *s = &p->slots[slots[j]];
            if (tb[slots[j]] != bp[slots[j]] || s->tile_rows || !plan_n_leading(&s->shape))
                continue;
            LLVMValueRef off = LLVMBuildNSWMul(c->b, lo, cg_i64(c, s->elems.c * ir_dtype_size(s->dt)), "");
            tb[slots[j]] = LLVMBuildInBoundsGEP2(c->b, LLVMInt8TypeInContext(c->cx), bp[slots[j]], &off, 1, "");
        }
    }
    Kernels in = *k;
    in.in_tile = true;
    for (int i = a; i < b; i++)
        emit_step(c, &in, i, tb);
    xfree(tb);
    c->n = n;
    cg_loop_end(c, &l);
    for (int i = a; i < b; i++)
        done_call(c, k->ctxp, i);
}

/* The kernels of steps [lo, hi) of c's plan and the entry calling them. */
static LLVMValueRef build_entry(Cg *c, int lo, int hi, const char *entry_name, bool profile)
{
    const Plan *p = c->plan;
    LLVMContextRef cx = c->cx;
    LLVMModuleRef mod = c->mod;
    LLVMValueRef *kfn = xcalloc((size_t)p->nsteps + 1, sizeof(LLVMValueRef));
    LLVMValueRef *rowfn = xcalloc((size_t)p->nsteps + 1, sizeof(LLVMValueRef));
    int64_t *rows = xcalloc((size_t)p->nsteps + 1, sizeof(int64_t));
    int64_t *flat = xcalloc((size_t)p->nsteps + 1, sizeof(int64_t));
    int64_t *frow = xcalloc((size_t)p->nsteps + 1, sizeof(int64_t));
    LLVMValueRef *epifn = xcalloc((size_t)p->nsteps + 1, sizeof(LLVMValueRef));
    int64_t *epirows = xcalloc((size_t)p->nsteps + 1, sizeof(int64_t));
    int slots[CG_MAXARGS];
    for (int i = lo; i < hi; i++)
        if (p->steps[i].kind == STEP_KERNEL) {
            int ns = cg_step_slots(p, &p->steps[i], slots);
            const Step *st = &p->steps[i];
            bool part = st->scratch >= 0 && plan_batch_reduction(p, st->node);
            flat[i] = flat_elems(p, st);
            frow[i] = flat[i] || flat_row_off() ? 0 : flat_row(p, st);
            c->flat = flat[i] > 0 || frow[i] > 0;
            c->partial = part;
            epirows[i] = gemm_epilogue_off() ? 0 : gemm_epilogue_chunk(p, st);
            if (epirows[i]) {
                c->gemm_part = CG_EPILOGUE_ONLY;
                LLVMValueRef efn = emit_kernel(c, i, st, slots, ns);
                int ks[CG_MAXARGS], nk = kernel_slots(p, st, ks);
                epifn[i] = emit_rows_thunk(c, i, efn, ks, nk, false, NULL);
                c->gemm_part = CG_GEMM_ONLY;
            }
            kfn[i] = emit_kernel(c, i, st, slots, ns);
            c->gemm_part = 0;
            rows[i] = c->flat ? CG_ROW_GRAIN : part ? -1 : cg_row_chunk(p, st);
            if (st->epilogue && !rows[i])
                rows[i] = 1; /* pooling as an epilogue: an image per task when run on its own */
            if (rows[i]) {
                int ks[CG_MAXARGS], nk = kernel_slots(p, st, ks);
                rowfn[i] = emit_rows_thunk(c, i, kfn[i], ks, nk, c->flat, part ? st : NULL);
            }
            c->flat = c->partial = false;
        }

    LLVMTypeRef pt[3] = {c->ptr, c->i64, c->ptr};
    LLVMTypeRef fty = LLVMFunctionType(c->vd, pt, 3, 0);
    LLVMValueRef entry = LLVMAddFunction(mod, entry_name, fty);
    LLVMValueRef ctxp = LLVMGetParam(entry, 0), bufs = LLVMGetParam(entry, 2);
    LLVMSetValueName2(ctxp, "ctx", 3);
    LLVMSetValueName2(LLVMGetParam(entry, 1), "N", 1);
    LLVMSetValueName2(bufs, "bufs", 4);
    c->alloca_bb = LLVMAppendBasicBlockInContext(cx, entry, "allocas"); /* for cg_alloca */
    LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(cx, entry, "entry"));
    c->fn = entry;
    c->n = LLVMGetParam(entry, 1);
    LLVMValueRef *bp = xcalloc((size_t)p->nslots + 1, sizeof(LLVMValueRef));
    for (int s = 0; s < p->nslots; s++) {
        LLVMValueRef idx = cg_i64(c, s);
        LLVMValueRef at = LLVMBuildInBoundsGEP2(c->b, c->ptr, bufs, &idx, 1, "");
        char nm[24];
        snprintf(nm, sizeof nm, "b%d", s);
        bp[s] = LLVMBuildLoad2(c->b, c->ptr, at, nm);
    }
    if (profile && lo == 0)
        prof_call(c, ctxp, -1);
    const Kernels ks = {kfn, rowfn, epifn, epirows, rows, flat, frow, ctxp, lo, hi, profile, false};
    for (int i = lo; i < hi; i++) {
        int end = i + 1;
        while (p->steps[i].tile && end < hi && p->steps[end].tile == p->steps[i].tile)
            end++;
        if (p->steps[i].tile)
            emit_tile(c, &ks, i, end, bp);
        else if (p->steps[i].guarded)
            emit_guarded(c, &ks, i, bp);
        else
            emit_step(c, &ks, i, bp);
        i = end - 1;
    }
    cg_kernel_end(c); /* return; the allocas branch to the entry */
    xfree(bp);
    xfree(kfn);
    xfree(rowfn);
    xfree(rows);
    xfree(flat);
    xfree(frow);
    xfree(epifn);
    xfree(epirows);
    return entry;
}

LLVMValueRef cg_emit_plan(Cg *outer, const Plan *p, const char *prefix, const char *entry_name)
{
    Cg c;
    cg_init(&c, outer->cx, outer->mod, p);
    c.prefix = prefix;
    LLVMValueRef entry = build_entry(&c, 0, p->nsteps, entry_name, false);
    LLVMSetLinkage(entry, LLVMInternalLinkage);
    cg_dispose(&c);
    return entry;
}

LLVMModuleRef cg_build_part(LLVMContextRef cx, const Plan *p, int lo, int hi, const char *entry_name,
                            bool profile, Diags *d)
{
    LLVMModuleRef mod = LLVMModuleCreateWithNameInContext(p->g->name, cx);
    Cg c;
    cg_init(&c, cx, mod, p);
    build_entry(&c, lo, hi, entry_name, profile);
    cg_dispose(&c);

    char *msg = NULL;
    if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &msg)) {
        fprintf(stderr, "%s", msg);
        ICE("generated LLVM module does not verify: %s", msg);
    }
    LLVMDisposeMessage(msg);
    (void)d;
    return mod;
}
