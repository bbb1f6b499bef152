/* Loops (docs/ops.md, "loop"): the body is planned as a graph of its own
 * and compiled into the same module as an internal entry function with
 * its own kernels; the loop's kernel lays the body's buffers out in its
 * two scratch regions, copies the initial carried states in, and for
 * each step copies the sequences' slices in, calls the body's entry,
 * stores the per-step results at the step's time index and copies the
 * updated states back. One copy of the body's code serves every step. */
#include "cg.h"

#include <string.h>

/* The body as a plain graph: its carried-state updates become values. */
static Graph *plain_body(const Node *v)
{
    Graph *body = ir_clone(v->sub);
    for (int j = 0; j < ir_loop_ncarry(v); j++) {
        body->outs[j].kind = OUT_VALUE;
        body->outs[j].target = NULL;
    }
    return body;
}

/* Offsets of the body's buffers in the loop's scratch regions; false
 * (with a diagnostic at the loop) for what the kernel cannot lay out. */
static bool layout(LoopPlan *lp, const Node *v, Diags *d)
{
    const Plan *p = &lp->plan;
    int nc = ir_loop_ncarry(v), nfixed = nc + v->a.nseq;
    for (int s = 0; s < p->nslots; s++) {
        const Slot *sl = &p->slots[s];
        int k = -1;
        for (int i = 0; i < v->nin && k < 0; i++)
            k = lp->input_slot[i] == s ? i : -1;
        lp->region[s] = -1;
        if (k >= nfixed)
            continue; /* an invariant: the loop operand's buffer */
        if (sl->elems.p > 1) {
            diag_error(d, v->loc, "loop: a body value of N^%d elements; the LLVM backend lays out at most N",
                       sl->elems.p);
            return false;
        }
        int64_t bytes = sl->elems.c * ir_dtype_size(sl->dt);
        bytes = (bytes + 63) / 64 * 64;
        lp->region[s] = sl->elems.p;
        lp->off[s] = lp->bytes[sl->elems.p];
        lp->bytes[sl->elems.p] += bytes;
    }
    for (int j = 0; j < nc; j++)
        for (int k = 0; k < nc; k++)
            if (k != j && p->out_slot[j] == lp->input_slot[k]) {
                diag_error(d, v->loc, "loop: carried state %d becomes carried state %d's old value; "
                                      "the LLVM backend does not swap states", j, k);
                return false;
            }
    return true;
}

bool plan_loop(LoopPlan *lp, const Node *v, Diags *d)
{
    memset(lp, 0, sizeof *lp);
    lp->body = plain_body(v);
    if (!plan_build_body(&lp->plan, lp->body, d)) {
        ir_graph_free(lp->body);
        lp->body = NULL;
        return false;
    }
    const Plan *p = &lp->plan;
    lp->off = xcalloc((size_t)p->nslots + 1, sizeof(int64_t));
    lp->region = xcalloc((size_t)p->nslots + 1, sizeof(int));
    lp->input_slot = xcalloc((size_t)v->nin + 1, sizeof(int));
    for (int i = 0, k = 0; i < lp->body->nnodes; i++)
        if (lp->body->nodes[i]->op == OP_INPUT && k < v->nin)
            lp->input_slot[k++] = p->node_slot[i];
    if (!layout(lp, v, d)) {
        plan_loop_free(lp);
        return false;
    }
    return true;
}

void plan_loop_free(LoopPlan *lp)
{
    if (lp->body) {
        plan_free(&lp->plan);
        ir_graph_free(lp->body);
    }
    xfree(lp->off);
    xfree(lp->region);
    xfree(lp->input_slot);
    memset(lp, 0, sizeof *lp);
}

/* ---- the loop's kernel ---- */

static LLVMValueRef byte_ptr(Cg *c, LLVMValueRef base, LLVMValueRef off)
{
    return LLVMBuildInBoundsGEP2(c->b, LLVMInt8TypeInContext(c->cx), base, &off, 1, "");
}

static LLVMValueRef bytes_of(Cg *c, const Shape *s, DType dt)
{
    return cg_mono(c, mono_mul(mono_numel(s), mono(ir_dtype_size(dt))));
}

/* Copy step t of sequence seq [d0, T, rest...] to or from one step
 * [d0, rest...]: d0 rows of the rest's bytes. */
static void step_copy(Cg *c, LLVMValueRef seq, LLVMValueRef step, const Shape *s, DType dt, LLVMValueRef t,
                      bool to_step)
{
    int64_t inner = ir_dtype_size(dt);
    for (int k = 2; k < s->rank; k++)
        inner *= s->d[k];
    LLVMValueRef row = cg_i64(c, inner);
    Loop l;
    LLVMValueRef r = cg_loop_begin(c, &l, cg_mono(c, mono_dim(s->d[0])), "row");
    LLVMValueRef at = LLVMBuildNSWAdd(c->b, LLVMBuildNSWMul(c->b, r, cg_i64(c, s->d[1]), ""), t, "");
    LLVMValueRef ps = byte_ptr(c, seq, LLVMBuildNSWMul(c->b, at, row, ""));
    LLVMValueRef pt = byte_ptr(c, step, LLVMBuildNSWMul(c->b, r, row, ""));
    if (to_step)
        LLVMBuildMemCpy(c->b, pt, 1, ps, 1, row);
    else
        LLVMBuildMemCpy(c->b, ps, 1, pt, 1, row);
    cg_loop_end(c, &l);
}

/* The buffer table of the body: every slot's pointer. */
static LLVMValueRef *body_buffers(Cg *c, const Step *st, const LoopPlan *lp, LLVMValueRef table)
{
    const Node *v = st->node;
    const Plan *bp = &lp->plan;
    LLVMValueRef ws[2] = {cg_buf(c, st->scratch), st->scratch2 >= 0 ? cg_buf(c, st->scratch2) : NULL};
    LLVMValueRef *ptr = xcalloc((size_t)bp->nslots + 1, sizeof(LLVMValueRef));
    for (int s = 0; s < bp->nslots; s++) {
        if (lp->region[s] < 0) {
            int k = 0;
            while (lp->input_slot[k] != s)
                k++;
            ptr[s] = cg_buf(c, c->plan->node_slot[v->in[k]->id]);
        } else {
            LLVMValueRef off = lp->region[s] ? LLVMBuildNSWMul(c->b, cg_i64(c, lp->off[s]), c->n, "")
                                             : cg_i64(c, lp->off[s]);
            ptr[s] = byte_ptr(c, ws[lp->region[s]], off);
        }
        LLVMValueRef idx[2] = {cg_i64(c, 0), cg_i64(c, s)};
        LLVMBuildStore(c->b, ptr[s], LLVMBuildInBoundsGEP2(c->b, LLVMArrayType2(c->ptr, (uint64_t)bp->nslots), table, idx, 2, ""));
    }
    return ptr;
}

void cg_loop(Cg *c, const Step *st)
{
    const Node *v = st->node;
    LoopPlan lp;
    Diags scratch;
    diags_init(&scratch);
    if (!plan_loop(&lp, v, &scratch))
        ICE("a loop checked by plan_build cannot be planned: %s", scratch.n ? scratch.v[0].msg : "?");
    diags_free(&scratch);
    size_t nlen = 0;
    const char *fname = LLVMGetValueName2(c->fn, &nlen);
    char *prefix = xmalloc(nlen + 2), *entry_name = xmalloc(nlen + 8);
    snprintf(prefix, nlen + 2, "%s.", fname);
    snprintf(entry_name, nlen + 8, "%s.body", fname);
    LLVMValueRef body = cg_emit_plan(c, &lp.plan, prefix, entry_name);
    const Plan *bp = &lp.plan;
    int nc = ir_loop_ncarry(v), ns = v->a.nseq, nout = v->sub->nouts;
    LLVMValueRef table = cg_alloca(c, LLVMArrayType2(c->ptr, (uint64_t)(bp->nslots ? bp->nslots : 1)), "table");
    LLVMValueRef *ptr = body_buffers(c, st, &lp, table);
    for (int j = 0; j < nc; j++)
        LLVMBuildMemCpy(c->b, ptr[lp.input_slot[j]], 16, cg_buf(c, c->plan->node_slot[v->in[j]->id]), 16,
                        bytes_of(c, &v->in[j]->shape, v->in[j]->dt));
    int64_t steps = ir_loop_steps(v);
    Loop l;
    LLVMValueRef i = cg_loop_begin(c, &l, cg_i64(c, steps), "time");
    LLVMValueRef t = v->a.reverse ? LLVMBuildNSWSub(c->b, cg_i64(c, steps - 1), i, "t") : i;
    for (int k = nc; k < nc + ns; k++)
        step_copy(c, cg_buf(c, c->plan->node_slot[v->in[k]->id]), ptr[lp.input_slot[k]], &v->in[k]->shape,
                  v->in[k]->dt, t, true);
    LLVMValueRef args[3] = {c->ctxp, c->n, table};
    LLVMBuildCall2(c->b, LLVMGlobalGetValueType(body), body, args, 3, "");
    for (int j = nc; j < nout; j++) { /* before the states change: a result may be a state */
        int ps = plan_part_slot(c->plan, v, j);
        DType dt;
        Shape sh;
        ir_loop_result_type(v, j, &dt, &sh);
        step_copy(c, cg_buf(c, ps), ptr[bp->out_slot[j]], &sh, dt, t, false);
    }
    for (int j = 0; j < nc; j++)
        if (bp->out_slot[j] != lp.input_slot[j])
            LLVMBuildMemCpy(c->b, ptr[lp.input_slot[j]], 16, ptr[bp->out_slot[j]], 16,
                            bytes_of(c, &v->in[j]->shape, v->in[j]->dt));
    cg_loop_end(c, &l);
    for (int j = 0; j < nc; j++) {
        int out = j == 0 ? st->out : plan_part_slot(c->plan, v, j);
        LLVMBuildMemCpy(c->b, cg_buf(c, out), 16, ptr[lp.input_slot[j]], 16,
                        bytes_of(c, &v->in[j]->shape, v->in[j]->dt));
    }
    xfree(ptr);
    xfree(prefix);
    xfree(entry_name);
    plan_loop_free(&lp);
}
