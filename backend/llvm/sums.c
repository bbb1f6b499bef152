/* Blocked pairwise sums (docs/ops.md, "Sums"), as the interpreter adds
 * them (backend/interp/kern_sum.inc): terms go into a block accumulator,
 * every IR_SUM_BLOCK terms the block's sum is pushed onto a stack that
 * combines equal-sized parts like a binary counter, and the total folds
 * what is left from the smallest part up. An accumulator is one register
 * (a row sum, whose block the vectorizer may reassociate) or a row of up
 * to CG_SUM_LANES (the outputs of a column reduction, each added in
 * order). Here: the accumulators, the blocked loop of the softmax rows,
 * and the loop nests of reduce_sum, reduce_mean and the column sums of
 * fused kernels. */
#include "cg.h"

#include <string.h>

#define CG_SUM_LEVELS 64 /* the stack holds 2^64 blocks */

void cg_psum_init(Cg *c, PSum *s, DType dt, int width)
{
    MC_ASSERT(width == 1 || width == CG_SUM_LANES);
    memset(s, 0, sizeof *s);
    s->dt = dt;
    s->width = width;
    LLVMTypeRef t = cg_type(c, dt);
    s->acc = cg_alloca(c, width == 1 ? t : LLVMArrayType2(t, (uint64_t)width), "block");
    s->stack = cg_alloca(c, LLVMArrayType2(t, (uint64_t)CG_SUM_LEVELS * (uint64_t)width), "stack");
    s->nblocks = cg_alloca(c, c->i64, "nblocks");
}

void cg_psum_start(Cg *c, PSum *s)
{
    LLVMBuildStore(c->b, cg_i64(c, 0), s->nblocks);
}

typedef void (*LaneFn)(Cg *c, const PSum *s, LLVMValueRef lane, void *ud);

/* f for lanes [0, lanes), or for lane 0 of a register accumulator. */
static void each_lane(Cg *c, const PSum *s, LLVMValueRef lanes, LaneFn f, void *ud)
{
    if (s->width == 1) {
        f(c, s, cg_i64(c, 0), ud);
        return;
    }
    Loop l;
    LLVMValueRef i = cg_loop_begin(c, &l, lanes, "lane");
    f(c, s, i, ud);
    cg_loop_end(c, &l);
}

/* stack element (level, lane) */
static LLVMValueRef level_at(Cg *c, const PSum *s, LLVMValueRef level, LLVMValueRef lane)
{
    return LLVMBuildNSWAdd(c->b, LLVMBuildNSWMul(c->b, level, cg_i64(c, s->width), ""), lane, "");
}

static void zero_lane(Cg *c, const PSum *s, LLVMValueRef lane, void *ud)
{
    cg_store(c, s->dt, cg_fconst(c, s->dt, 0), s->acc, lane);
}

void cg_psum_zero(Cg *c, PSum *s, LLVMValueRef lanes)
{
    each_lane(c, s, lanes, zero_lane, NULL);
}

LLVMValueRef cg_psum_lane(Cg *c, const PSum *s, LLVMValueRef lane)
{
    return cg_load(c, s->dt, s->acc, lane);
}

void cg_psum_add(Cg *c, const PSum *s, LLVMValueRef lane, LLVMValueRef v)
{
    LLVMValueRef a = LLVMBuildFAdd(c->b, cg_load(c, s->dt, s->acc, lane), v, "");
    if (s->width == 1) /* one row's block: lanes of a vector are fine */
        LLVMSetFastMathFlags(a, LLVMFastMathAllowReassoc);
    cg_store(c, s->dt, a, s->acc, lane);
}

/* acc[lane] = stack[level][lane] + acc[lane] */
static void merge_lane(Cg *c, const PSum *s, LLVMValueRef lane, void *ud)
{
    LLVMValueRef part = cg_load(c, s->dt, s->stack, level_at(c, s, ud, lane));
    cg_store(c, s->dt, LLVMBuildFAdd(c->b, part, cg_load(c, s->dt, s->acc, lane), ""), s->acc, lane);
}

static void keep_lane(Cg *c, const PSum *s, LLVMValueRef lane, void *ud)
{
    cg_store(c, s->dt, cg_load(c, s->dt, s->acc, lane), s->stack, level_at(c, s, ud, lane));
}

/* A loop over the stack's levels, l = 0, 1, ... with cnt = first, first
 * >> 1, ... while cnt & 1 == odd_stops ? ... : cnt != 0 (see callers). */
typedef struct Levels {
    LLVMBasicBlockRef head, body, exit, from;
    LLVMValueRef l, cnt;
} Levels;

static void levels_begin(Cg *c, Levels *v, LLVMValueRef first)
{
    v->from = LLVMGetInsertBlock(c->b);
    v->head = LLVMAppendBasicBlockInContext(c->cx, c->fn, "level");
    v->body = LLVMAppendBasicBlockInContext(c->cx, c->fn, "");
    v->exit = LLVMAppendBasicBlockInContext(c->cx, c->fn, "");
    LLVMBuildBr(c->b, v->head);
    LLVMPositionBuilderAtEnd(c->b, v->head);
    v->l = LLVMBuildPhi(c->b, c->i64, "l");
    v->cnt = LLVMBuildPhi(c->b, c->i64, "cnt");
    LLVMValueRef zero = cg_i64(c, 0);
    LLVMAddIncoming(v->l, &zero, &v->from, 1);
    LLVMAddIncoming(v->cnt, &first, &v->from, 1);
}

static void levels_end(Cg *c, Levels *v)
{
    LLVMValueRef l1 = LLVMBuildNUWAdd(c->b, v->l, cg_i64(c, 1), "");
    LLVMValueRef c1 = LLVMBuildLShr(c->b, v->cnt, cg_i64(c, 1), "");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(c->b);
    LLVMBuildBr(c->b, v->head);
    LLVMAddIncoming(v->l, &l1, &latch, 1);
    LLVMAddIncoming(v->cnt, &c1, &latch, 1);
    LLVMPositionBuilderAtEnd(c->b, v->exit);
}

/* One more block: while the count of blocks has a trailing zero at level
 * l, the block absorbs stack[l]; then it is stored at the first free
 * level. */
void cg_psum_push(Cg *c, PSum *s, LLVMValueRef lanes)
{
    LLVMValueRef n = LLVMBuildNUWAdd(c->b, LLVMBuildLoad2(c->b, c->i64, s->nblocks, ""), cg_i64(c, 1), "");
    LLVMBuildStore(c->b, n, s->nblocks);
    Levels v;
    levels_begin(c, &v, n);
    LLVMValueRef odd = LLVMBuildTrunc(c->b, v.cnt, c->i1, "");
    LLVMBuildCondBr(c->b, odd, v.exit, v.body);
    LLVMPositionBuilderAtEnd(c->b, v.body);
    each_lane(c, s, lanes, merge_lane, v.l);
    levels_end(c, &v);
    each_lane(c, s, lanes, keep_lane, v.l);
}

/* acc = the total of the pushed blocks: 0, then stack[l] + acc for each
 * level l in use, the lowest first. */
void cg_psum_total(Cg *c, PSum *s, LLVMValueRef lanes)
{
    cg_psum_zero(c, s, lanes);
    Levels v;
    levels_begin(c, &v, LLVMBuildLoad2(c->b, c->i64, s->nblocks, ""));
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntNE, v.cnt, cg_i64(c, 0), ""), v.body, v.exit);
    LLVMPositionBuilderAtEnd(c->b, v.body);
    LLVMBasicBlockRef add = LLVMAppendBasicBlockInContext(c->cx, c->fn, "");
    LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(c->cx, c->fn, "");
    LLVMBuildCondBr(c->b, LLVMBuildTrunc(c->b, v.cnt, c->i1, ""), add, next);
    LLVMPositionBuilderAtEnd(c->b, add);
    each_lane(c, s, lanes, merge_lane, v.l);
    LLVMBuildBr(c->b, next);
    LLVMPositionBuilderAtEnd(c->b, next);
    levels_end(c, &v);
}

/* ---- a blocked loop along one axis (the softmax rows) ---- */

void cg_sum_loop(Cg *c, Mono len, int nacc, const Acc *acc, NestBody body, void *ud, PSum *sums, int nsums)
{
    if (nsums == 0 || (len.p == 0 && len.c <= IR_SUM_BLOCK)) {
        cg_nest(c, 1, &len, nacc, acc, body, ud); /* one block: the accumulators hold the sums */
        return;
    }
    LLVMValueRef n = cg_mono(c, len), one = cg_i64(c, 1), bs = cg_i64(c, IR_SUM_BLOCK);
    for (int i = 0; i < nsums; i++)
        cg_psum_start(c, &sums[i]);
    Loop bl;
    LLVMValueRef nb = LLVMBuildSDiv(c->b, LLVMBuildNSWAdd(c->b, n, cg_i64(c, IR_SUM_BLOCK - 1), ""), bs, "");
    LLVMValueRef from = LLVMBuildNSWMul(c->b, cg_loop_begin(c, &bl, nb, "block"), bs, "from");
    LLVMValueRef left = LLVMBuildNSWSub(c->b, n, from, "");
    LLVMValueRef cnt = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, left, bs, ""), left, bs, "");
    for (int i = 0; i < nsums; i++)
        cg_psum_zero(c, &sums[i], one);
    Loop il;
    LLVMValueRef j = LLVMBuildNSWAdd(c->b, from, cg_loop_begin(c, &il, cnt, "j"), "");
    LLVMValueRef offs[CG_MAXARGS];
    for (int a = 0; a < nacc; a++) {
        LLVMValueRef o = LLVMBuildNSWMul(c->b, j, cg_mono(c, acc[a].stride[0]), "");
        offs[a] = acc[a].off ? LLVMBuildNSWAdd(c->b, acc[a].off, o, "") : o;
    }
    body(c, ud, offs);
    cg_loop_end(c, &il);
    for (int i = 0; i < nsums; i++)
        cg_psum_push(c, &sums[i], one);
    cg_loop_end(c, &bl);
    for (int i = 0; i < nsums; i++)
        cg_psum_total(c, &sums[i], one);
}

/* ---- reductions: reduce_sum, reduce_mean, column sums ---- */

typedef struct Dim {
    Mono n;
    Mono st[CG_MAXARGS]; /* per access of the SumNest: the buffers read, then the result */
} Dim;

typedef struct SumRun {
    const SumNest *sn;
    PSum s;
    int nk, nr;
    Dim k[IR_MAXRANK]; /* kept dims outside the reduction, outer to inner */
    Dim r[IR_MAXRANK]; /* reduced dims, outer to inner */
    bool cols;         /* the innermost dim is kept: it runs across the accumulators */
    Dim lane;
    LLVMValueRef lanes; /* accumulators in use */
} SumRun;

/* Merge neighbours of dims d that are contiguous for accesses [0, na). */
static void merge_dims(Dim *d, int *nd, int na)
{
    for (int i = *nd - 2; i >= 0; i--) {
        bool ok = true;
        for (int a = 0; a < na && ok; a++)
            ok = mono_eq(d[i].st[a], mono_mul(d[i + 1].st[a], d[i + 1].n));
        if (!ok)
            continue;
        d[i + 1].n = mono_mul(d[i].n, d[i + 1].n);
        memmove(&d[i], &d[i + 1], (size_t)(*nd - i - 1) * sizeof *d);
        (*nd)--;
    }
}

static LLVMValueRef offset_plus(Cg *c, LLVMValueRef off, LLVMValueRef i, Mono st)
{
    if (mono_is(st, 0))
        return off;
    LLVMValueRef d = mono_is(st, 1) ? i : LLVMBuildNSWMul(c->b, i, cg_mono(c, st), "");
    return LLVMBuildNSWAdd(c->b, off, d, "");
}

typedef struct Term {
    SumRun *run;
    const LLVMValueRef *offs;
} Term;

static void term_lane(Cg *c, const PSum *s, LLVMValueRef lane, void *ud)
{
    const Term *t = ud;
    const SumRun *r = t->run;
    LLVMValueRef at[CG_MAXARGS];
    for (int a = 0; a < r->sn->nacc; a++)
        at[a] = r->cols ? offset_plus(c, t->offs[a], lane, r->lane.st[a]) : t->offs[a];
    cg_psum_add(c, s, lane, r->sn->term(c, r->sn->ud, at));
}

/* Terms at offs + i * (the innermost reduced strides), i in [0, len). */
static void sum_span(Cg *c, SumRun *r, const LLVMValueRef *offs, LLVMValueRef len)
{
    const Dim *in = &r->r[r->nr - 1];
    Loop l;
    LLVMValueRef i = cg_loop_begin(c, &l, len, "t");
    LLVMValueRef at[CG_MAXARGS];
    for (int a = 0; a < r->sn->nacc; a++)
        at[a] = offset_plus(c, offs[a], i, in->st[a]);
    Term t = {r, at};
    each_lane(c, &r->s, r->lanes, term_lane, &t);
    cg_loop_end(c, &l);
}

/* sum_span over len terms; a register accumulator's full block gets a
 * loop of constant length, which the vectorizer unrolls into vectors. */
static void sum_block_span(Cg *c, SumRun *r, const LLVMValueRef *offs, LLVMValueRef len)
{
    if (r->cols) {
        sum_span(c, r, offs, len);
        return;
    }
    LLVMBasicBlockRef full = LLVMAppendBasicBlockInContext(c->cx, c->fn, "full");
    LLVMBasicBlockRef part = LLVMAppendBasicBlockInContext(c->cx, c->fn, "part");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(c->cx, c->fn, "");
    LLVMValueRef bs = cg_i64(c, IR_SUM_BLOCK);
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntEQ, len, bs, ""), full, part);
    LLVMPositionBuilderAtEnd(c->b, full);
    sum_span(c, r, offs, bs);
    LLVMBuildBr(c->b, done);
    LLVMPositionBuilderAtEnd(c->b, part);
    sum_span(c, r, offs, len);
    LLVMBuildBr(c->b, done);
    LLVMPositionBuilderAtEnd(c->b, done);
}

/* The terms [from, to) of the reduced index space, in runs along its
 * innermost dim: each run's start is split into indices (div/mod). */
static void sum_range(Cg *c, SumRun *r, const LLVMValueRef *offs, LLVMValueRef from, LLVMValueRef to)
{
    int na = r->sn->nacc;
    if (r->nr == 1) {
        LLVMValueRef at[CG_MAXARGS];
        for (int a = 0; a < na; a++)
            at[a] = offset_plus(c, offs[a], from, r->r[0].st[a]);
        sum_block_span(c, r, at, LLVMBuildNSWSub(c->b, to, from, ""));
        return;
    }
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(c->b);
    LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(c->cx, c->fn, "run");
    LLVMBasicBlockRef exit = LLVMAppendBasicBlockInContext(c->cx, c->fn, "");
    LLVMBuildBr(c->b, body);
    LLVMPositionBuilderAtEnd(c->b, body);
    LLVMValueRef pos = LLVMBuildPhi(c->b, c->i64, "pos");
    LLVMAddIncoming(pos, &from, &pre, 1);
    LLVMValueRef at[CG_MAXARGS], rest = pos, inner = NULL, innern = NULL;
    for (int a = 0; a < na; a++)
        at[a] = offs[a];
    for (int d = r->nr - 1; d >= 0; d--) {
        LLVMValueRef dn = cg_mono(c, r->r[d].n);
        LLVMValueRef idx = d ? LLVMBuildSRem(c->b, rest, dn, "") : rest;
        if (d)
            rest = LLVMBuildSDiv(c->b, rest, dn, "");
        if (d == r->nr - 1) {
            inner = idx;
            innern = dn;
        }
        for (int a = 0; a < na; a++)
            at[a] = offset_plus(c, at[a], idx, r->r[d].st[a]);
    }
    LLVMValueRef left = LLVMBuildNSWSub(c->b, to, pos, ""), room = LLVMBuildNSWSub(c->b, innern, inner, "");
    LLVMValueRef len = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, left, room, ""), left, room, "len");
    sum_span(c, r, at, len);
    LLVMValueRef next = LLVMBuildNSWAdd(c->b, pos, len, "");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(c->b);
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, next, to, ""), body, exit);
    LLVMAddIncoming(pos, &next, &latch, 1);
    LLVMPositionBuilderAtEnd(c->b, exit);
}

static void store_lane(Cg *c, const PSum *s, LLVMValueRef lane, void *ud)
{
    const Term *t = ud;
    const SumRun *r = t->run;
    const SumNest *sn = r->sn;
    LLVMValueRef v = cg_psum_lane(c, s, lane);
    if (sn->count)
        v = LLVMBuildFDiv(c->b, v, LLVMBuildSIToFP(c->b, sn->count, cg_type(c, sn->dt), ""), "");
    LLVMValueRef o = t->offs[sn->nacc];
    if (r->cols)
        o = offset_plus(c, o, lane, r->lane.st[sn->nacc]);
    cg_store(c, sn->dt, v, sn->acc[sn->nacc].base, o);
}

/* The outputs at offs (and the lanes after them): blocks of the reduced
 * space, pushed one by one. */
static void sum_outputs(Cg *c, SumRun *r, const LLVMValueRef *offs)
{
    LLVMValueRef n = cg_i64(c, 1);
    for (int d = 0; d < r->nr; d++)
        n = LLVMBuildNSWMul(c->b, n, cg_mono(c, r->r[d].n), "");
    cg_psum_start(c, &r->s);
    Loop bl;
    LLVMValueRef nb = LLVMBuildSDiv(c->b, LLVMBuildNSWAdd(c->b, n, cg_i64(c, IR_SUM_BLOCK - 1), ""),
                                    cg_i64(c, IR_SUM_BLOCK), "");
    LLVMValueRef b = cg_loop_begin(c, &bl, nb, "block");
    LLVMValueRef from = LLVMBuildNSWMul(c->b, b, cg_i64(c, IR_SUM_BLOCK), "");
    LLVMValueRef end = LLVMBuildNSWAdd(c->b, from, cg_i64(c, IR_SUM_BLOCK), "");
    LLVMValueRef to = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, end, n, ""), end, n, "");
    cg_psum_zero(c, &r->s, r->lanes);
    sum_range(c, r, offs, from, to);
    cg_psum_push(c, &r->s, r->lanes);
    cg_loop_end(c, &bl);
    cg_psum_total(c, &r->s, r->lanes);
    Term t = {r, offs};
    each_lane(c, &r->s, r->lanes, store_lane, &t);
}

/* The outputs of tiles [t0, t1) of the lane dim, lanes each. */
static void sum_tiles(Cg *c, SumRun *r, const LLVMValueRef *offs, LLVMValueRef t0, LLVMValueRef t1,
                      LLVMValueRef lanes)
{
    Loop tl;
    LLVMValueRef tile = LLVMBuildNSWAdd(c->b, t0, cg_loop_begin(c, &tl, LLVMBuildNSWSub(c->b, t1, t0, ""), "tile"), "");
    LLVMValueRef first = LLVMBuildNSWMul(c->b, tile, cg_i64(c, CG_SUM_LANES), "");
    if (!lanes) {
        LLVMValueRef left = LLVMBuildNSWSub(c->b, cg_mono(c, r->lane.n), first, ""), w = cg_i64(c, CG_SUM_LANES);
        lanes = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, left, w, ""), left, w, "lanes");
    }
    r->lanes = lanes;
    LLVMValueRef at[CG_MAXARGS];
    for (int a = 0; a <= r->sn->nacc; a++)
        at[a] = offset_plus(c, offs[a], first, r->lane.st[a]);
    sum_outputs(c, r, at);
    cg_loop_end(c, &tl);
}

/* Column mode: the innermost kept dim in tiles of CG_SUM_LANES outputs
 * (a constant count each when the dim's size is known). */
static void outer_body(Cg *c, void *ud, LLVMValueRef *offs)
{
    SumRun *r = ud;
    if (!r->cols) {
        r->lanes = cg_i64(c, 1);
        sum_outputs(c, r, offs);
        return;
    }
    Mono cn = r->lane.n;
    if (cn.p != 0) {
        LLVMValueRef n = LLVMBuildNSWAdd(c->b, cg_mono(c, cn), cg_i64(c, CG_SUM_LANES - 1), "");
        sum_tiles(c, r, offs, cg_i64(c, 0), LLVMBuildSDiv(c->b, n, cg_i64(c, CG_SUM_LANES), ""), NULL);
        return;
    }
    int64_t full = cn.c / CG_SUM_LANES, tail = cn.c % CG_SUM_LANES;
    if (full)
        sum_tiles(c, r, offs, cg_i64(c, 0), cg_i64(c, full), cg_i64(c, CG_SUM_LANES));
    if (tail)
        sum_tiles(c, r, offs, cg_i64(c, full), cg_i64(c, full + 1), cg_i64(c, tail));
}

void cg_sum_nest(Cg *c, const SumNest *sn)
{
    SumRun r;
    memset(&r, 0, sizeof r);
    r.sn = sn;
    int na = sn->nacc + 1;
    MC_ASSERT(na <= CG_MAXARGS);
    for (int k = 0; k < sn->rank; k++) {
        if (mono_is(sn->dims[k], 1))
            continue;
        Dim d;
        memset(&d, 0, sizeof d);
        d.n = sn->dims[k];
        for (int a = 0; a < na; a++)
            d.st[a] = sn->acc[a].stride[k];
        if (sn->red[k])
            r.r[r.nr++] = d;
        else
            r.k[r.nk++] = d;
        r.cols = !sn->red[k];
    }
    merge_dims(r.r, &r.nr, sn->nacc);
    merge_dims(r.k, &r.nk, na);
    if (r.nr == 0) { /* nothing reduced: each output is 0 + its one term */
        memset(&r.r[0], 0, sizeof r.r[0]);
        r.r[0].n = mono(1);
        r.nr = 1;
    }
    if (r.cols)
        r.lane = r.k[--r.nk];
    cg_psum_init(c, &r.s, sn->dt, r.cols ? CG_SUM_LANES : 1);
    Acc acc[CG_MAXARGS];
    Mono dims[IR_MAXRANK];
    memset(acc, 0, sizeof acc);
    for (int a = 0; a < na; a++) {
        acc[a].base = sn->acc[a].base;
        acc[a].off = sn->acc[a].off;
        for (int k = 0; k < r.nk; k++)
            acc[a].stride[k] = r.k[k].st[a];
    }
    for (int k = 0; k < r.nk; k++)
        dims[k] = r.k[k].n;
    cg_nest(c, r.nk, dims, na, acc, outer_body, &r);
}
