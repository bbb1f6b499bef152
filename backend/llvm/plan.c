/* The buffer and kernel plan of a graph: which nodes become kernels, which
 * share a buffer (reshape aliases, in-place updates), which constants are
 * folded into kernels, where updates and snapshots copy, and the live
 * range of every temporary (the workspace layout is computed from these
 * per batch size, see jit.c). */
#include "cg.h"

#include <stdlib.h>
#include <string.h>

Mono mono(int64_t c)
{
    Mono m = {c, 0};
    return m;
}

Mono mono_dim(int64_t d)
{
    Mono m = {ir_dim_factor(d), ir_dim_is_batch(d) ? 1 : 0};
    return m;
}

Mono mono_mul(Mono a, Mono b)
{
    Mono m = {a.c * b.c, a.p + b.p};
    if (m.c == 0)
        m.p = 0;
    return m;
}

bool mono_eq(Mono a, Mono b)
{
    return a.c == b.c && (a.c == 0 || a.p == b.p);
}

bool mono_is(Mono a, int64_t c)
{
    return a.c == c && (c == 0 || a.p == 0);
}

Mono mono_numel(const Shape *s)
{
    Mono m = mono(1);
    for (int k = 0; k < s->rank; k++)
        m = mono_mul(m, mono_dim(s->d[k]));
    return m;
}

int64_t mono_eval(Mono m, int64_t n)
{
    int64_t v = m.c;
    for (int i = 0; i < m.p; i++)
        if (mul_overflow_i64(v, n, &v))
            return -1;
    return v;
}

void mono_strides(const Shape *s, Mono *st)
{
    Mono acc = mono(1);
    for (int k = s->rank - 1; k >= 0; k--) {
        st[k] = acc;
        acc = mono_mul(acc, mono_dim(s->d[k]));
    }
}

/* ---- checks ---- */

static bool body_op_ok(Op op)
{
    return ir_op_is_elementwise(op) || ir_op_has(op, OPF_REDUCTION) || op == OP_BROADCAST || op == OP_CONST ||
           op == OP_INPUT || op == OP_MATMUL || op == OP_LOG_SOFTMAX_DOT || op == OP_LOG_SOFTMAX_GRAD;
}

static int64_t conv_scratch(const Node *v);

static bool check_node(Node *v, Diags *d)
{
    int64_t sc = conv_scratch(v);
    if (sc < 0 || sc > IR_MAX_ELEMS) {
        diag_error(d, v->loc, "%s: its im2col buffer would have more than " IR_MAX_ELEMS_STR " elements",
                   ir_ops[v->op].name);
        return false;
    }
    if (v->op == OP_LOOP) {
        if (v->nin + v->sub->nouts + 1 > CG_MAXARGS - 2) {
            diag_error(d, v->loc, "loop with %d operands and %d results: one kernel takes at most %d buffers",
                       v->nin, v->sub->nouts, CG_MAXARGS - 2);
            return false;
        }
        LoopPlan lp;
        if (!plan_loop(&lp, v, d))
            return false;
        plan_loop_free(&lp);
    }
    if (v->op == OP_PHASE) {
        diag_error(d, v->loc, "phase node '%s' reached code generation: specialize the graph first",
                   v->a.name ? v->a.name : "?");
        return false;
    }
    if (v->nin > CG_MAXARGS - 2) {
        diag_error(d, v->loc, "%s with %d operands: one kernel takes at most %d", ir_ops[v->op].name, v->nin,
                   CG_MAXARGS - 2);
        return false;
    }
    if (v->op == OP_FUSED) {
        if (!v->sub || v->sub->nouts < 1) {
            diag_error(d, v->loc, "fused node without a body");
            return false;
        }
        if (v->nin + v->sub->nouts - 1 > CG_MAXARGS - 2) {
            diag_error(d, v->loc, "fused node with %d operands and %d side results: one kernel takes at most %d "
                       "buffers", v->nin, v->sub->nouts - 1, CG_MAXARGS - 2);
            return false;
        }
        for (int i = 0; i < v->sub->nnodes; i++) {
            Node *b = v->sub->nodes[i];
            b->id = i;
            if (!body_op_ok(b->op)) {
                diag_error(d, v->loc, "fused body contains %s, which is not elementwise",
                           ir_ops[b->op].name);
                return false;
            }
        }
    }
    return true;
}

/* ---- helpers ---- */

static Node *root_node(Node *v)
{
    while (v->op == OP_RESHAPE)
        v = v->in[0];
    return v;
}

static bool reads_inline_consts(const Node *v)
{
    return ir_op_is_elementwise(v->op) || v->op == OP_BROADCAST || v->op == OP_FUSED;
}

bool plan_const_inline(const Plan *p, const Node *v)
{
    return v->op == OP_CONST && p->node_slot[v->id] < 0;
}

static int add_slot(Plan *p, JitBufKind kind, const char *name, DType dt, Shape shape, Mono elems)
{
    Slot s = {kind, name, dt, shape, elems, -1, -1, true, {NULL, 0, 0}, 0, false};
    VEC_PUSH(p->slots, p->nslots, p->slotcap, s);
    return p->nslots - 1;
}

static int add_step(Plan *p, StepKind kind, Node *v, int out, int src, int scratch)
{
    Step s = {kind, v, out, src, scratch, -1, false, 0, 0, false};
    VEC_PUSH(p->steps, p->nsteps, p->stepcap, s);
    return p->nsteps - 1;
}

int64_t plan_conv_chunk(const Node *v)
{
    const Shape *x = v->op == OP_CONV2D_GRAD_INPUT ? &v->shape : &v->in[0]->shape;
    const Shape *y = v->op == OP_CONV2D              ? &v->shape
                     : v->op == OP_CONV2D_GRAD_INPUT ? &v->in[0]->shape
                                                     : &v->in[1]->shape;
    const Shape *k = v->op == OP_CONV2D_GRAD_KERNEL ? &v->shape : &v->in[1]->shape;
    int64_t f[5] = {y->d[1], y->d[2], k->d[0], k->d[1], x->d[3]}, per = 1;
    for (int i = 0; i < 5; i++)
        if (__builtin_mul_overflow(per, f[i], &per))
            return 1; /* one image's patches alone are beyond any chunk */
    int64_t chunk = ((int64_t)1 << 21) / (per > 0 ? per : 1);
    return chunk < 1 ? 1 : chunk;
}


/* ---- splitting by rows ---- */

bool plan_has_n_after(const Shape *s, int from)
{
    for (int k = from; k < s->rank; k++)
        if (ir_dim_is_batch(s->d[k]))
            return true;
    return false;
}

bool plan_n_leading(const Shape *s)
{
    return s->rank >= 1 && ir_dim_is_batch(s->d[0]) && !plan_has_n_after(s, 1);
}

int64_t plan_row_elems(const Shape *s)
{
    int64_t row = s->rank >= 1 ? ir_dim_factor(s->d[0]) : 1; /* N*k: k rows per example */
    for (int k = 1; k < s->rank; k++)
        row *= s->d[k];
    return row;
}

int plan_split_kind(const Plan *p, int s, const Shape *view)
{
    const Shape *own = &p->slots[s].shape;
    if (plan_n_leading(view) && plan_n_leading(own))
        return 1;
    if (!plan_has_n_after(view, 0) && !plan_has_n_after(own, 0))
        return 0;
    return -1;
}

bool plan_batch_reduction(const Plan *p, const Node *v)
{
    const Node *r = v->op == OP_FUSED ? ir_fused_reduction(v) : v;
    if (!r || !ir_op_has(r->op, OPF_REDUCTION))
        return false;
    const Shape *s = &r->in[0]->shape;
    bool batch = false;
    for (int i = 0; i < r->a.naxes; i++)
        batch |= r->a.axes[i] == 0;
    if (!batch || !plan_n_leading(s) || ir_shape_has_n(&r->shape) || plan_row_elems(s) < CG_ROW_MIN)
        return false;
    for (int i = 0; i < v->nin; i++) {
        int k = p->node_slot[v->in[i]->id];
        if (k >= 0 && plan_split_kind(p, k, &v->in[i]->shape) < 0)
            return false;
    }
    return true;
}

/* ---- building the plan ---- */

/* Node.iaux during planning: 0 not needed by any output, 1 needed,
 * 2 a constant that needs a buffer, 3 a parameter updated in place. */
static void mark_needed(Graph *g)
{
    for (int i = 0; i < g->nnodes; i++) {
        Node *v = g->nodes[i];
        v->id = i;
        v->iaux = 0;
    }
    for (int i = 0; i < g->nouts; i++) {
        g->outs[i].val->iaux = 1;
        if (g->outs[i].target)
            g->outs[i].target->iaux = 1;
    }
    for (int i = g->nnodes - 1; i >= 0; i--)
        if (g->nodes[i]->iaux)
            for (int j = 0; j < g->nodes[i]->nin; j++)
                g->nodes[i]->in[j]->iaux = 1;
}

/* A constant is folded into its readers unless some reader needs it in
 * memory (or it is an output). */
static bool const_needs_buffer(Graph *g, Node *c)
{
    for (int i = 0; i < g->nouts; i++)
        if (g->outs[i].val == c)
            return true;
    for (int i = 0; i < g->nnodes; i++) {
        Node *v = g->nodes[i];
        if (!v->iaux || reads_inline_consts(v))
            continue;
        for (int j = 0; j < v->nin; j++)
            if (v->in[j] == c)
                return true;
    }
    return false;
}

static bool is_kernel(Node *v)
{
    return v->iaux && v->op != OP_INPUT && v->op != OP_PARAM && v->op != OP_RESHAPE && v->op != OP_RESULT &&
           (v->op != OP_CONST || v->iaux == 2);
}

int plan_part_slot(const Plan *p, const Node *v, int j)
{
    MC_ASSERT((v->op == OP_FUSED || v->op == OP_LOOP) && j >= 1 && j < v->sub->nouts && p->node_part[v->id] >= 0);
    return p->part_slot[p->node_part[v->id] + j - 1];
}

static int64_t conv_scratch(const Node *v)
{
    if (v->op != OP_CONV2D && v->op != OP_CONV2D_GRAD_INPUT && v->op != OP_CONV2D_GRAD_KERNEL)
        return 0;
    const Shape *x = v->op == OP_CONV2D_GRAD_INPUT ? &v->shape : &v->in[0]->shape;
    const Shape *k = v->op == OP_CONV2D_GRAD_KERNEL ? &v->shape : &v->in[1]->shape;
    const Shape *y = v->op == OP_CONV2D              ? &v->shape
                     : v->op == OP_CONV2D_GRAD_INPUT ? &v->in[0]->shape
                                                     : &v->in[1]->shape;
    RtConvGeom cg = {0, x->d[1], x->d[2], x->d[3], k->d[0], k->d[1], k->d[3], y->d[1], y->d[2],
                     v->a.stride[0], v->a.stride[1], v->a.pad[0], v->a.pad[2], plan_conv_chunk(v)};
    int which = v->op == OP_CONV2D ? RT_CONV_FWD : v->op == OP_CONV2D_GRAD_INPUT ? RT_CONV_GRAD_INPUT : RT_CONV_GRAD_KERNEL;
    return rt_conv_scratch(&cg, which, ir_dtype_size(v->dt));
}

/* Would the kernel of u, at kernel position ku, be the last reader of
 * parameter leaf p and read it only element-for-element? A GEMM's
 * epilogue can write a side result (not its result) into p in place. */
static bool can_update_in_place(Graph *g, Node *u, Node *p, const int *kpos, bool side)
{
    if (!is_kernel(u) || u->op == OP_CONST || p->iaux == 3)
        return false;
    for (int i = 0; i < g->nnodes; i++) {
        Node *v = g->nodes[i];
        if (!v->iaux || v->op == OP_RESHAPE)
            continue;
        for (int j = 0; j < v->nin; j++) {
            if (root_node(v->in[j]) != p)
                continue;
            if (kpos[v->id] < kpos[u->id])
                continue;
            if (v != u || !reads_inline_consts(u) || (!side && ir_fused_anchor(u)))
                return false;
            if (!mono_eq(mono_numel(&v->in[j]->shape), mono_numel(&u->shape)))
                return false;
        }
    }
    return true;
}

static void live_read(Plan *p, int slot, int step)
{
    Slot *s = &p->slots[slot];
    if (s->kind == JIT_BUF_TEMP && step > s->last)
        s->last = step;
}

static void live_write(Plan *p, int slot, int step)
{
    Slot *s = &p->slots[slot];
    if (s->kind == JIT_BUF_TEMP && (s->first < 0 || step < s->first))
        s->first = step;
    live_read(p, slot, step);
}

/* Step st's buffers are live at step `at` (its own index, or its
 * partner's when it is an epilogue or has one: the two run interleaved,
 * so no buffer of one may share memory with a buffer of the other). */
static void step_live(Plan *p, const Step *st, int at)
{
    live_write(p, st->out, at);
    if (st->kind == STEP_COPY) {
        live_read(p, st->src, at);
        return;
    }
    if (st->scratch >= 0)
        live_write(p, st->scratch, at);
    if (st->scratch2 >= 0)
        live_write(p, st->scratch2, at);
    for (int j = 1; st->node->sub && j < st->node->sub->nouts; j++)
        if (plan_part_slot(p, st->node, j) >= 0)
            live_write(p, plan_part_slot(p, st->node, j), at);
    for (int j = 0; j < st->node->nin; j++) {
        int s = p->node_slot[st->node->in[j]->id];
        if (s >= 0)
            live_read(p, s, at);
    }
}

static bool step_writes(const Plan *p, int i, int s);

/* ---- results written over a dying operand ----
 * A kernel that computes element i of its result from element i of its
 * operands (an elementwise op or a fused group of them with one result:
 * no GEMM, reduction or softmax row) may write its result over an
 * operand of its shape that no later step reads: the two temporaries
 * become one slot (the CNN's relu gradient over the relu output it reads
 * last; S0's tanh gradient over tanh's result). The bits are the same:
 * each element is read before it is written, by whichever thread, chunk
 * or epilogue image computes it. MODELC_NO_IN_PLACE=1 keeps them apart. */
static bool elementwise_kernel(const Node *v)
{
    if (v->op == OP_FUSED)
        return !ir_fused_anchor(v) && !ir_fused_softmax(v) && !ir_fused_reduction(v) && v->sub->nouts == 1;
    return ir_op_is_elementwise(v->op);
}

/* Does a step after i, or a graph output, use slot s? */
static bool slot_used_after(const Plan *p, int s, int i)
{
    int slots[CG_MAXARGS];
    for (int j = i + 1; j < p->nsteps; j++) {
        int n = cg_step_slots(p, &p->steps[j], slots);
        for (int k = 0; k < n; k++)
            if (slots[k] == s)
                return true;
    }
    for (int k = 0; k < p->g->nouts; k++)
        if (p->out_slot[k] == s)
            return true;
    return false;
}

/* Every use of slot from becomes a use of slot to; from is left empty. */
static void merge_slot(Plan *p, int from, int to)
{
    for (int i = 0; i < p->g->nnodes; i++)
        if (p->node_slot[i] == from)
            p->node_slot[i] = to;
    for (int i = 0; i < p->nsteps; i++) {
        Step *st = &p->steps[i];
        st->out = st->out == from ? to : st->out;
        st->src = st->src == from ? to : st->src;
    }
    for (int k = 0; k < p->g->nouts; k++)
        p->out_slot[k] = p->out_slot[k] == from ? to : p->out_slot[k];
    for (int k = 0; k < p->nparts; k++)
        p->part_slot[k] = p->part_slot[k] == from ? to : p->part_slot[k];
    p->slots[from].elems = mono(0);
}

/* A convolution's kernel gradient moves before the input gradient that
 * reads the same dy, when no step between them conflicts with it: its
 * input x then has its last reader sooner (the input gradient's
 * epilogue, for S0's tanh, which plan_in_place may then write over x),
 * and a data-parallel job can start summing it sooner. */
static void kernel_grads_first(Plan *p)
{
    for (int k = 0; k < p->nsteps; k++) {
        const Step *g = &p->steps[k];
        if (g->kind != STEP_KERNEL || g->node->op != OP_CONV2D_GRAD_KERNEL)
            continue;
        for (int i = 0; i < k; i++) {
            const Step *s = &p->steps[i];
            if (s->kind != STEP_KERNEL || s->node->op != OP_CONV2D_GRAD_INPUT || s->node->in[0] != g->node->in[1])
                continue;
            bool free = true;
            for (int j = i; j < k && free; j++)
                free = !plan_steps_depend(p, j, k);
            if (free)
                plan_move_step(p, k, i);
            break;
        }
    }
}

static bool writes_param(const Plan *p, int i);

/* The last step that writes the loss, or -1. */
static int loss_step(const Plan *p, int *slot)
{
    int ls = -1, at = -1;
    for (int k = 0; k < p->g->nouts && ls < 0; k++)
        if (p->g->outs[k].kind == OUT_LOSS && p->g->outs[k].part == 0)
            ls = p->out_slot[k];
    for (int i = 0; ls >= 0 && i < p->nsteps; i++)
        if (p->steps[i].out == ls)
            at = i;
    if (slot)
        *slot = ls;
    return at;
}

/* A loop's results are slots of their own, which step dependencies do
 * not see: nothing moves across one. */
static bool is_loop(const Step *st)
{
    return st->kind == STEP_KERNEL && st->node->op == OP_LOOP;
}

/* Each parameter update after the loss moves up to just after the last
 * step it depends on (its gradient, the last reader of the parameter's
 * old value), but not above the loss (plan_guards skips it when the loss
 * is not finite): its gradient then dies there instead of staying live
 * through the rest of the backward pass (CNN+BN: the dense kernel's
 * 6.4 MB gradient at the max-pool gradient, the step's peak).
 * MODELC_NO_EARLY_UPDATES=1 keeps them where autodiff put them. */
static void updates_early(Plan *p)
{
    const char *off = getenv("MODELC_NO_EARLY_UPDATES");
    if (off && *off && strcmp(off, "0") != 0)
        return;
    int ls = loss_step(p, NULL);
    if (ls < 0)
        return;
    for (int k = ls + 1; k < p->nsteps; k++) {
        const Step *st = &p->steps[k];
        /* updates, and what they read without the batch axis (the step
         * counter's and the learning rate's kernels, weight gradients) */
        if (is_loop(st) ||
            (!writes_param(p, k) && (st->kind != STEP_KERNEL || st->tile || ir_shape_has_n(&st->node->shape))))
            continue;
        int to = k;
        while (to - 1 > ls && !is_loop(&p->steps[to - 1]) && !plan_steps_depend(p, to - 1, k))
            to--;
        if (to < k)
            plan_move_step(p, k, to);
    }
}

static void plan_in_place(Plan *p)
{
    const char *off = getenv("MODELC_NO_IN_PLACE");
    if (off && *off && strcmp(off, "0") != 0)
        return;
    for (int i = 0; i < p->nsteps; i++) {
        const Step *st = &p->steps[i];
        if (st->kind != STEP_KERNEL || st->scratch >= 0 || !elementwise_kernel(st->node))
            continue;
        const Node *v = st->node;
        int sv = st->out;
        if (p->slots[sv].kind != JIT_BUF_TEMP)
            continue;
        /* of the operands it may write over, the one written first: a
         * temporary made just before (a batch tile's own) stays small */
        int best = -1, best_at = INT32_MAX;
        for (int k = 0; k < v->nin; k++) {
            int su = p->node_slot[v->in[k]->id];
            if (su < 0 || su == sv || p->slots[su].kind != JIT_BUF_TEMP || p->slots[su].dt != p->slots[sv].dt ||
                !ir_shape_eq(&p->slots[su].shape, &p->slots[sv].shape) ||
                !mono_eq(p->slots[su].elems, p->slots[sv].elems))
                continue;
            bool same = true; /* every operand in that slot is read element for element */
            for (int j = 0; j < v->nin; j++)
                same &= p->node_slot[v->in[j]->id] != su || ir_shape_eq(&v->in[j]->shape, &v->shape);
            if (!same || slot_used_after(p, su, i))
                continue;
            int at = 0;
            while (at < i && !step_writes(p, at, su))
                at++;
            if (at < best_at) {
                best = su;
                best_at = at;
            }
        }
        if (best >= 0)
            merge_slot(p, sv, best);
    }
}

static void compute_live_ranges(Plan *p)
{
    for (int i = 0; i < p->nsteps; i++) {
        step_live(p, &p->steps[i], i);
        /* a producer and its epilogues run interleaved: each one's
         * buffers are live at every step of the chain */
        int last = i;
        while (!p->steps[i].epilogue && last + 1 < p->nsteps && p->steps[last + 1].epilogue)
            last++;
        for (int a = i; a <= last; a++)
            for (int b = i; b <= last; b++)
                if (a != b)
                    step_live(p, &p->steps[a], b);
    }
    for (int i = 0; i < p->g->nouts; i++)
        live_read(p, p->out_slot[i], p->nsteps);
}

static bool epilogue_producer(const Step *a)
{
    if (a->kind != STEP_KERNEL || a->epilogue)
        return false;
    Op op = a->node->op;
    return op == OP_CONV2D || op == OP_CONV2D_GRAD_INPUT || op == OP_MAX_POOL2D_GRAD;
}

/* A kernel that computes rows [lo, hi) of its result when run with
 * N = hi - lo on buffers offset by lo rows: a row-parallel generated
 * kernel, or pooling (image by image) on N-leading buffers. */
static bool epilogue_kind(const Plan *p, const Step *e)
{
    if (e->kind != STEP_KERNEL || e->scratch >= 0)
        return false;
    if (cg_row_chunk(p, e) > 0)
        return true;
    if (e->node->op != OP_MAX_POOL2D && e->node->op != OP_AVG_POOL2D)
        return false;
    return plan_n_leading(&p->slots[e->out].shape) && p->node_slot[e->node->in[0]->id] >= 0 &&
           plan_n_leading(&e->node->in[0]->shape);
}

/* Can step j run as an epilogue of the chain of steps [i, last] (a
 * producer and its epilogues so far), moved to right after it? A kernel
 * of epilogue_kind reading the chain's last result, writing nothing a
 * step of the chain reads, and reading nothing a step between them
 * writes. */
static bool epilogue_fits(const Plan *p, int i, int last, int j)
{
    const Step *e = &p->steps[j];
    if (!plan_n_leading(&p->slots[p->steps[last].out].shape) || !epilogue_kind(p, e))
        return false;
    bool reads = false;
    for (int k = 0; k < e->node->nin; k++) {
        int s = p->node_slot[e->node->in[k]->id];
        reads |= s == p->steps[last].out;
        for (int m = last + 1; s >= 0 && m < j; m++)
            if (step_writes(p, m, s))
                return false;
    }
    for (int c = i; c <= last; c++) {
        const Node *a = p->steps[c].node;
        for (int k = 0; k < a->nin; k++) {
            int s = p->node_slot[a->in[k]->id];
            if (s >= 0 && step_writes(p, j, s))
                return false;
        }
    }
    return reads;
}

/* Does step j read slot s? */
static bool step_reads(const Plan *p, int j, int s)
{
    const Step *st = &p->steps[j];
    if (st->kind == STEP_COPY)
        return st->src == s;
    for (int k = 0; k < st->node->nin; k++)
        if (p->node_slot[st->node->in[k]->id] == s)
            return true;
    return false;
}

/* Can step m run before steps [i, m)? A producer or an epilogue stays. */
static bool can_hoist(const Plan *p, int i, int m)
{
    if (p->steps[m].epilogue || (m + 1 < p->nsteps && p->steps[m + 1].epilogue))
        return false;
    for (int k = i; k < m; k++)
        if (plan_steps_depend(p, k, m))
            return false;
    return true;
}

/* Does step m write a slot that step j reads? */
static bool feeds(const Plan *p, int m, int j)
{
    const Node *v = p->steps[j].node;
    for (int k = 0; k < v->nin; k++) {
        int s = p->node_slot[v->in[k]->id];
        if (s >= 0 && step_writes(p, m, s))
            return true;
    }
    return false;
}

/* Steps that run inside a producer (a convolution, its input gradient or
 * a max-pool gradient) as its epilogues (Step.epilogue): the first step
 * to read the producer's result when it fits (epilogue_fits), then the
 * first to read that one's, and so on (up to RT_EPILOGUES), each moved
 * to right after the chain when other steps came between (the kernel
 * gradient that the backward pass computes between an input gradient and
 * the activation's gradient applied to it). The runtime runs them image
 * by image right after each image of the producer's result
 * (rt_epilogue_begin in kernels.h). MODELC_NO_EPILOGUE=1 keeps every
 * step on its own, in graph order. */
static void plan_epilogues(Plan *p)
{
    const char *off = getenv("MODELC_NO_EPILOGUE");
    if (off && *off && strcmp(off, "0") != 0)
        return;
    for (int i = 0; i + 1 < p->nsteps; i++) {
        if (!epilogue_producer(&p->steps[i]))
            continue;
        for (int last = i; last + 1 < p->nsteps && last - i < RT_EPILOGUES; last++) {
            int j = last + 1;
            while (j < p->nsteps && !step_reads(p, j, p->steps[last].out))
                j++;
            if (j == p->nsteps)
                break;
            /* what the epilogue reads besides the chain's result and
             * computes between (batchnorm's scale from its moving
             * variance) goes before the producer when nothing depends */
            for (int m = last + 1; m < j; m++)
                if (feeds(p, m, j) && can_hoist(p, i, m)) {
                    plan_move_step(p, m, i);
                    i++;
                    last++;
                }
            if (!epilogue_fits(p, i, last, j))
                break;
            plan_move_step(p, j, last + 1);
            p->steps[last + 1].epilogue = true;
        }
    }
}

static void add_ncheck(Plan *p, Node *v, const Shape *whole)
{
    for (int k = 0; k < whole->rank; k++)
        if (ir_dim_is_batch(whole->d[k]) && v->a.end[k] != INT64_MAX) {
            NCheck c = {v, k, whole};
            VEC_PUSH(p->nchecks, p->nnchecks, p->nncheckcap, c);
        }
}

static void find_n_requirements(Plan *p)
{
    Graph *g = p->g;
    for (int i = 0; i < g->nnodes; i++) {
        Node *v = g->nodes[i];
        if (!v->iaux || v->op == OP_INPUT || v->op == OP_PARAM)
            continue;
        if (!p->needs_n && ir_shape_has_n(&v->shape))
            p->needs_n = v;
        if (v->op == OP_SLICE)
            add_ncheck(p, v, &v->in[0]->shape);
        else if (v->op == OP_SLICE_GRAD)
            add_ncheck(p, v, &v->shape);
    }
}

/* Scratch arrays of one plan_build, indexed by node id. */
typedef struct Builder {
    Plan *p;
    Graph *g;
    int *kpos;      /* position among the kernels, -1 for other nodes */
    Node **inplace; /* value computed in place into this parameter */
    int *snap;      /* parameter: slot of its value before the step, -1 */
} Builder;

/* A fused node's side results are written into their parameters by its
 * loop: the node must be the parameter's last reader (ir_verify checks
 * that no later node reads it). */
static bool side_updates(Builder *b, Diags *d)
{
    Graph *g = b->g;
    for (int i = 0; i < g->nouts; i++) {
        Output *o = &g->outs[i];
        if (!o->part)
            continue;
        if (!can_update_in_place(g, o->val, o->target, b->kpos, true)) {
            diag_error(d, o->val->loc, "side result %d of a fused node cannot update '%s' in place",
                       o->part, o->target->a.name ? o->target->a.name : "?");
            return false;
        }
        o->target->iaux = 3;
    }
    return true;
}

/* Updates in place (iaux 3 on the parameter) where possible. */
static void decide_updates(Builder *b)
{
    Graph *g = b->g;
    for (int i = 0; i < g->nouts; i++) {
        Output *o = &g->outs[i];
        if (o->kind != OUT_UPDATE || o->val == o->target || o->part)
            continue;
        if (!o->target || o->target->op != OP_PARAM)
            ICE("update output '%s' without a parameter target", o->name);
        if (!b->inplace[o->val->id] && can_update_in_place(g, o->val, o->target, b->kpos, false)) {
            b->inplace[o->val->id] = o->target;
            o->target->iaux = 3;
        }
    }
}

/* A fused kernel's fresh results: a temporary each (written by its
 * kernel, read through result nodes). */
static void add_parts(Plan *p, Node *v)
{
    p->node_part[v->id] = -1;
    if (!v->sub || v->sub->nouts < 2)
        return;
    p->node_part[v->id] = p->nparts;
    for (int j = 1; j < v->sub->nouts; j++) {
        DType dt;
        Shape sh;
        int s = -1;
        if (v->op == OP_LOOP && ir_loop_result_type(v, j, &dt, &sh))
            s = add_slot(p, JIT_BUF_TEMP, NULL, dt, sh, mono_numel(&sh));
        else if (v->op == OP_FUSED && ir_fused_fresh(v, j))
            s = add_slot(p, JIT_BUF_TEMP, NULL, v->sub->outs[j].val->dt, v->sub->outs[j].val->shape,
                         mono_numel(&v->sub->outs[j].val->shape));
        VEC_PUSH(p->part_slot, p->nparts, p->partcap, s);
    }
}

/* Leaves first (graph order), then one temporary per kernel (and per
 * fresh result); reshapes alias their operand, in-place updates their
 * parameter, result nodes their fused kernel's fresh result. */
static void assign_slots(Builder *b)
{
    Plan *p = b->p;
    Graph *g = b->g;
    for (int i = 0; i < g->nnodes; i++) {
        Node *v = g->nodes[i];
        p->node_slot[i] = -1;
        if (v->op != OP_INPUT && v->op != OP_PARAM)
            continue;
        p->node_slot[i] = add_slot(p, v->op == OP_INPUT ? JIT_BUF_INPUT : JIT_BUF_PARAM, v->a.name,
                                   v->dt, v->shape, mono_numel(&v->shape));
        p->slots[p->node_slot[i]].used = v->iaux != 0;
        p->slots[p->node_slot[i]].loc = v->loc;
    }
    for (int i = 0; i < g->nnodes; i++) {
        Node *v = g->nodes[i];
        p->node_part[i] = -1;
        if (v->op == OP_RESHAPE && v->iaux)
            p->node_slot[i] = p->node_slot[v->in[0]->id];
        else if (v->op == OP_RESULT && v->iaux)
            p->node_slot[i] = plan_part_slot(p, v->in[0], v->a.index);
        else if (b->inplace[i])
            p->node_slot[i] = p->node_slot[b->inplace[i]->id];
        else if (is_kernel(v))
            p->node_slot[i] = add_slot(p, JIT_BUF_TEMP, NULL, v->dt, v->shape, mono_numel(&v->shape));
        if (is_kernel(v))
            add_parts(p, v);
    }
}

static bool is_update_target(Graph *g, Node *r)
{
    for (int j = 0; j < g->nouts; j++)
        if (g->outs[j].kind == OUT_UPDATE && g->outs[j].target == r && g->outs[j].val != r)
            return true;
    return false;
}

/* The slot holding parameter r's value from before the step: a copy
 * taken by the first step. */
static int snapshot(Builder *b, Node *r)
{
    if (b->snap[r->id] < 0) {
        b->snap[r->id] = add_slot(b->p, JIT_BUF_TEMP, NULL, r->dt, r->shape, mono_numel(&r->shape));
        add_step(b->p, STEP_COPY, NULL, b->snap[r->id], b->p->node_slot[r->id], -1);
    }
    return b->snap[r->id];
}

/* Where each output is read after the step: an update's target; an old
 * parameter value that the step overwrites from its snapshot. */
static void plan_outputs(Builder *b)
{
    Graph *g = b->g;
    for (int i = 0; i < g->nouts; i++) {
        Output *o = &g->outs[i];
        Node *r = root_node(o->val);
        bool old = r->op == OP_PARAM && is_update_target(g, r) && !(o->kind == OUT_UPDATE && o->target == r);
        int slot = old ? snapshot(b, r) : b->p->node_slot[o->val->id];
        b->p->out_slot[i] = o->kind == OUT_UPDATE ? b->p->node_slot[o->target->id] : slot;
    }
}

/* A loop's body buffers: two scratch regions, counted in f64 elements. */
static void loop_scratch(Plan *p, Step *st, Node *v)
{
    LoopPlan lp;
    Diags scratch;
    diags_init(&scratch);
    if (!plan_loop(&lp, v, &scratch))
        ICE("a loop checked by plan_build cannot be planned: %s", scratch.n ? scratch.v[0].msg : "?");
    diags_free(&scratch);
    int64_t e0 = (lp.bytes[0] + 7) / 8, e1 = (lp.bytes[1] + 7) / 8;
    st->scratch = add_slot(p, JIT_BUF_TEMP, NULL, DT_F64, ir_shape1(e0 ? e0 : 1), mono(e0 ? e0 : 1));
    if (e1) {
        Mono m = {e1, 1};
        int64_t d[2] = {IR_DIM_N, e1};
        st->scratch2 = add_slot(p, JIT_BUF_TEMP, NULL, DT_F64, ir_shape(2, d), m);
    }
    plan_loop_free(&lp);
}

static void add_kernels(Builder *b)
{
    for (int i = 0; i < b->g->nnodes; i++) {
        Node *v = b->g->nodes[i];
        if (!is_kernel(v))
            continue;
        int64_t sc = conv_scratch(v);
        if (plan_batch_reduction(b->p, v)) /* the partial results */
            sc = CG_RED_TASKS * ir_shape_numel(&v->shape, 0);
        int scratch = sc > 0 ? add_slot(b->p, JIT_BUF_TEMP, NULL, v->dt, ir_shape1(sc), mono(sc)) : -1;
        int k = add_step(b->p, STEP_KERNEL, v, b->p->node_slot[i], -1, scratch);
        if (v->op == OP_LOOP)
            loop_scratch(b->p, &b->p->steps[k], v);
    }
}

/* Updates that could not be done in place, after every kernel. */
static void add_update_copies(Builder *b)
{
    Graph *g = b->g;
    for (int i = 0; i < g->nouts; i++) {
        Output *o = &g->outs[i];
        if (o->kind != OUT_UPDATE || o->val == o->target || o->part || b->inplace[o->val->id] == o->target)
            continue;
        Node *r = root_node(o->val);
        int src = b->snap[r->id] >= 0 ? b->snap[r->id] : b->p->node_slot[o->val->id];
        MC_ASSERT(src >= 0);
        add_step(b->p, STEP_COPY, NULL, b->p->node_slot[o->target->id], src, -1);
    }
}

/* Does step i write slot s? A fused kernel with a side update writes
 * into a parameter operand: counted as writing all its operands. */
static bool step_writes(const Plan *p, int i, int s)
{
    const Step *st = &p->steps[i];
    if (st->out == s)
        return true;
    if (st->kind == STEP_COPY)
        return false;
    if (st->scratch == s)
        return true;
    bool side = false; /* a side update whose target is not known: any operand */
    for (int j = 1; st->node->op == OP_FUSED && j < st->node->sub->nouts; j++) {
        int ps = plan_part_slot(p, st->node, j);
        if (ps == s)
            return true;
        if (ps >= 0)
            continue;
        int target = -1; /* written in place: its update output's target */
        for (int k = 0; k < p->g->nouts && target < 0; k++)
            if (p->g->outs[k].kind == OUT_UPDATE && p->g->outs[k].val == st->node && p->g->outs[k].part == j)
                target = p->node_slot[p->g->outs[k].target->id];
        if (target == s)
            return true;
        side |= target < 0;
    }
    for (int j = 0; side && j < st->node->nin; j++)
        if (p->node_slot[st->node->in[j]->id] == s)
            return true;
    return false;
}

bool plan_steps_depend(const Plan *p, int k, int m)
{
    int ks[CG_MAXARGS], nk = cg_step_slots(p, &p->steps[k], ks);
    int ms[CG_MAXARGS], nm = cg_step_slots(p, &p->steps[m], ms);
    for (int a = 0; a < nk; a++)
        for (int b = 0; b < nm; b++)
            if (ks[a] == ms[b] && (step_writes(p, k, ks[a]) || step_writes(p, m, ms[b])))
                return true;
    return false;
}

void plan_move_step(Plan *p, int from, int to)
{
    Step h = p->steps[from];
    memmove(&p->steps[to + 1], &p->steps[to], (size_t)(from - to) * sizeof h);
    p->steps[to] = h;
}

int plan_out_step(const Plan *p, int i)
{
    for (int s = p->nsteps - 1; s >= 0; s--)
        if (step_writes(p, s, p->out_slot[i]))
            return s;
    return -1;
}

bool plan_out_step_finishes(const Plan *p, int s)
{
    for (int i = 0; i < p->g->nouts; i++)
        if (plan_out_step(p, i) == s)
            return true;
    return false;
}

static bool build(Plan *p, Graph *g, bool tiles, Diags *d);

bool plan_build(Plan *p, Graph *g, Diags *d)
{
    return build(p, g, true, d);
}

bool plan_build_body(Plan *p, Graph *g, Diags *d)
{
    return build(p, g, false, d);
}

/* Does step i write parameter slot(s)? Its destination, a copy into a
 * parameter, or a fused kernel's side updates of its operands. */
static bool writes_param(const Plan *p, int i)
{
    const Step *st = &p->steps[i];
    if (st->out >= 0 && p->slots[st->out].kind == JIT_BUF_PARAM)
        return true;
    for (int k = 0; st->kind == STEP_KERNEL && k < p->g->nouts; k++)
        if (p->g->outs[k].kind == OUT_UPDATE && p->g->outs[k].val == st->node)
            return true;
    return false;
}

/* The steps that write parameters after the loss is computed are skipped
 * when the loss is NaN or infinite (Step.guarded); a parameter that no
 * step writes before the loss is kept by a failed step (Slot.kept), and
 * the training loop need not copy it (docs/ops.md, "Training steps with
 * a NaN or infinite loss"). */
static void plan_guards(Plan *p)
{
    p->guard_slot = -1;
    int ls, at = loss_step(p, &ls);
    bool scalar = at >= 0 && p->slots[ls].shape.rank == 0 &&
                  (p->slots[ls].dt == DT_F32 || p->slots[ls].dt == DT_F64);
    for (int s = 0; s < p->nslots; s++)
        p->slots[s].kept = scalar && p->slots[s].kind == JIT_BUF_PARAM;
    if (!scalar)
        return; /* no guards: every parameter may change */
    p->guard_slot = ls;
    for (int i = 0; i < p->nsteps; i++) {
        if (!writes_param(p, i))
            continue;
        if (i > at && !p->steps[i].tile) {
            p->steps[i].guarded = true;
            continue;
        }
        /* written before the loss is known: not kept */
        const Step *st = &p->steps[i];
        if (st->out >= 0 && p->slots[st->out].kind == JIT_BUF_PARAM)
            p->slots[st->out].kept = false;
        for (int k = 0; st->kind == STEP_KERNEL && k < p->g->nouts; k++) {
            const Output *o = &p->g->outs[k];
            if (o->kind == OUT_UPDATE && o->val == st->node)
                for (int s = 0; s < p->nslots; s++)
                    if (p->slots[s].kind == JIT_BUF_PARAM && p->slots[s].name &&
                        strcmp(p->slots[s].name, o->target->a.name) == 0)
                        p->slots[s].kept = false;
        }
    }
}

static bool build(Plan *p, Graph *g, bool tiles, Diags *d)
{
    memset(p, 0, sizeof *p);
    p->g = g;
    int nn = g->nnodes;
    mark_needed(g);
    for (int i = 0; i < nn; i++)
        if (g->nodes[i]->iaux && !check_node(g->nodes[i], d))
            return false;
    for (int i = 0; i < nn; i++)
        if (g->nodes[i]->iaux && g->nodes[i]->op == OP_CONST && const_needs_buffer(g, g->nodes[i]))
            g->nodes[i]->iaux = 2;
    Builder b = {p, g, xmalloc((size_t)(nn + 1) * sizeof(int)), xcalloc((size_t)nn + 1, sizeof(Node *)),
                 xmalloc((size_t)(nn + 1) * sizeof(int))};
    int nk = 0;
    for (int i = 0; i < nn; i++) {
        b.kpos[i] = is_kernel(g->nodes[i]) ? nk++ : -1;
        b.snap[i] = -1;
    }
    p->node_slot = xmalloc((size_t)(nn + 1) * sizeof(int));
    p->node_part = xmalloc((size_t)(nn + 1) * sizeof(int));
    p->out_slot = xmalloc((size_t)(g->nouts + 1) * sizeof(int));
    bool ok = side_updates(&b, d);
    if (ok) {
        decide_updates(&b);
        assign_slots(&b);
        plan_outputs(&b); /* snapshot copies come first */
        add_kernels(&b);
        add_update_copies(&b);
        kernel_grads_first(p);
        updates_early(p);
        plan_epilogues(p);
        if (tiles)
            plan_tiles_order(p);
        plan_in_place(p);
        compute_live_ranges(p);
        if (tiles)
            plan_tiles(p);
        find_n_requirements(p);
        plan_guards(p);
    } else {
        plan_free(p);
    }
    xfree(b.kpos);
    xfree(b.inplace);
    xfree(b.snap);
    return ok;
}

void plan_free(Plan *p)
{
    xfree(p->slots);
    xfree(p->steps);
    xfree(p->node_slot);
    xfree(p->node_part);
    xfree(p->part_slot);
    xfree(p->out_slot);
    xfree(p->nchecks);
    memset(p, 0, sizeof *p);
}
