/* Fusion: groups of elementwise ops become FUSED nodes whose body (a small
 * graph: INPUT nodes = the operands in order, outs[0] = the result) is
 * evaluated in one loop over the result's elements; operands of smaller
 * shape are read with NumPy broadcasting.
 *
 * Fusible ops: unary and binary elementwise ops and select (they
 * broadcast implicitly). Everything else (matmul, convolution,
 * reductions, softmax, reshape, transpose, broadcast, slices, one_hot,
 * random masks, fused nodes) is a kernel of its own and ends a group: a
 * shape change between ops stops fusion. (An explicit broadcast only
 * appears as the operand of a reduction, where it could not fuse anyway;
 * fused bodies hold elementwise ops, constants and inputs, as
 * ir_verify checks.)
 *
 * Groups grow from their root (a value that must be in memory) towards
 * its producers, visiting nodes in reverse topological order. A fusible
 * producer P is computed inside the groups of its users (and not kept in
 * memory) when
 *   - P is not a graph output, and every user of P is fusible;
 *   - its users lie in one group: P moves there. If P has fewer elements
 *     than the group's result it is recomputed per result element, so
 *     only a cheap P (OPF_CHEAP in ops.def: no exp, log, sqrt, pow, ...)
 *     moves into a larger group;
 *   - its users lie in several groups: P is duplicated into each, only
 *     when P is cheap and has as many elements as every one of those
 *     groups' results (recomputing it costs less than a round trip
 *     through memory and saves a kernel);
 *   - the group stays within MAX_OPERANDS operands and MAX_BODY ops.
 * Otherwise P is materialised and becomes the root of a group of its own.
 * Scalar constants are copied into the bodies. Every graph output (loss,
 * metric, value, gradient, update) is materialised, with one exception:
 * the new value of an optimizer slot (momentum, Adam's m and v), read
 * only by its parameter's update loop, is computed in that loop, which
 * writes it back into the slot in place as a side result of the fused
 * node (merge_slot_updates): one loop per parameter (with plain
 * momentum, after the weight gradient's GEMM, which the slot's loop
 * brings along). The pass ends with
 * dead-code elimination, which drops the ops now inside bodies.
 *
 * GEMM epilogues: a matmul whose users all lie in one group, that is not
 * a graph output and has the group result's type, joins the group as its
 * GEMM (one per group): the kernel calls GEMM into the result buffer and
 * runs the group's loop over it in place. This fuses bias+activation
 * after a dense layer and, in the backward pass, the activation
 * derivative times the incoming gradient after the GEMM that produced
 * the gradient (autodiff's relu rule reads the relu's result, so the
 * pre-activation has the forward pass as its only reader). When the
 * GEMM's only reader scales it by a scalar constant (x*c, c*x, x/c) the
 * constant becomes the GEMM's alpha and the scaling op disappears. The
 * GEMM's operands are read by GEMM alone, so their producers are
 * materialised.
 *
 * Convolutions: a conv2d read only by a scaling by a scalar constant
 * takes the constant as its alpha first (fold_conv_scales).
 *
 * Reductions: a group (without a GEMM) whose result only a reduction
 * (sum, mean, max) reads becomes the body of that reduction; the fused
 * node ends with the reduction and computes the reduction's value, its
 * input evaluated per element, never stored (backend/llvm/reduce.c).
 *
 * Softmax cross-entropy: log_softmax_grad(z, gy) and log_softmax_dot(z,
 * t) of the same logits (made by fuse_softmax.c) are one row kernel
 * (try_softmax): a group rooted at the gradient, with the dot as a fresh
 * result; the elementwise ops computing gy and t join it like any
 * producer (evaluated per element of z), the logits stay in memory.
 *
 * Fresh results: values a fused node computes besides its result, read
 * through `result` nodes, which take their places in the graph. Besides
 * the softmax kernel's dot, a sum or mean of a GEMM epilogue's or softmax
 * kernel's value (a bias gradient) is accumulated by that kernel's loop
 * (attach_column_sums), instead of a kernel reading the value again.
 *
 * A group of one op stays that op (it is one kernel either way). A fused
 * node takes the location of its first op in program order and the label
 * of its root; the body nodes keep their own locations, so dumps show
 * every source line a kernel came from.
 *
 * The code generator (backend/llvm/elem.c) evaluates these bodies in one
 * loop nest over the result, storing the result and any side results. */
#include "passes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_OPERANDS = 24, MAX_BODY = 64 };

typedef struct IntVec {
    int *v;
    int n, cap;
} IntVec;

enum { MAX_SIDE = 4, MAX_FRESH = 4 };

typedef struct Group {
    Node *root;
    Node *side[MAX_SIDE]; /* slot values computed here and written into their params */
    Node *side_param[MAX_SIDE];
    int nside;
    Node *fresh[MAX_FRESH]; /* values computed here and read through result nodes */
    int nfresh;
    bool softmax;    /* root is log_softmax_grad, fresh[0] the log_softmax_dot beside it */
    Node *anchor;    /* the matmul whose epilogue the group is, or NULL */
    Node *reduce;    /* the reduction the group's result feeds, fused into it, or NULL */
    IntVec frontier; /* ids of the non-constant nodes outside the group its ops read */
    IntVec members;  /* ids of the nodes add_to_group put here (for merge_slot_updates) */
    int size;        /* ops in the group */
} Group;

typedef struct Fuser {
    Graph *g;
    int nn;
    IntVec *users;   /* by node id: ids of the nodes reading it (once per node) */
    bool *is_out;    /* by node id: the value of a graph output */
    IntVec *outs_of; /* by node id: the graph outputs whose value it is */
    IntVec *groups;  /* by node id: the groups computing it */
    Group *grp;
    int ngrp, grpcap;
} Fuser;

static bool vec_has(const IntVec *v, int x)
{
    for (int i = 0; i < v->n; i++)
        if (v->v[i] == x)
            return true;
    return false;
}

static void vec_add(IntVec *v, int x)
{
    if (!vec_has(v, x))
        VEC_PUSH(v->v, v->n, v->cap, x);
}

static void vec_remove(IntVec *v, int x)
{
    for (int i = 0; i < v->n; i++)
        if (v->v[i] == x) {
            v->v[i] = v->v[--v->n];
            return;
        }
}

static bool in_group(const Fuser *f, const Node *v, int k);

/* ---- what may be fused ---- */

static bool fusible(const Node *n)
{
    return ir_op_is_elementwise(n->op);
}

static bool cheap(const Node *n)
{
    return ir_op_has(n->op, OPF_CHEAP);
}

/* Constants are copied into bodies (scalars only: a shaped constant is
 * read like any other operand). */
static bool body_const(const Node *n)
{
    return n->op == OP_CONST && n->shape.rank == 0;
}

/* x (which broadcasts to y) has y's elements, none repeated: the dims
 * match, and y's extra leading dims are 1. */
static bool same_size(const Node *x, const Node *y)
{
    int off = y->shape.rank - x->shape.rank;
    if (off < 0)
        return false;
    for (int k = 0; k < y->shape.rank; k++)
        if (y->shape.d[k] != (k < off ? 1 : x->shape.d[k - off]))
            return false;
    return true;
}

/* ---- analysis ---- */

static void fuser_init(Fuser *f, Graph *g)
{
    memset(f, 0, sizeof *f);
    f->g = g;
    f->nn = g->nnodes;
    size_t n = (size_t)f->nn + 1;
    f->users = xcalloc(n, sizeof(IntVec));
    f->groups = xcalloc(n, sizeof(IntVec));
    f->is_out = xcalloc(n, sizeof(bool));
    f->outs_of = xcalloc(n, sizeof(IntVec));
    for (int i = 0; i < f->nn; i++) {
        g->nodes[i]->id = i;
        g->nodes[i]->aux = NULL;
    }
    for (int i = 0; i < f->nn; i++) {
        Node *v = g->nodes[i];
        for (int j = 0; j < v->nin; j++) {
            IntVec *us = &f->users[v->in[j]->id]; /* node i's reads come together */
            if (us->n == 0 || us->v[us->n - 1] != i)
                VEC_PUSH(us->v, us->n, us->cap, i);
        }
    }
    for (int i = 0; i < g->nouts; i++) {
        IntVec *os = &f->outs_of[g->outs[i].val->id];
        f->is_out[g->outs[i].val->id] = true;
        VEC_PUSH(os->v, os->n, os->cap, i);
    }
}

static void fuser_free(Fuser *f)
{
    for (int i = 0; i < f->nn; i++) {
        xfree(f->users[i].v);
        xfree(f->groups[i].v);
        xfree(f->outs_of[i].v);
    }
    for (int i = 0; i < f->ngrp; i++) {
        xfree(f->grp[i].frontier.v);
        xfree(f->grp[i].members.v);
    }
    xfree(f->users);
    xfree(f->groups);
    xfree(f->is_out);
    xfree(f->outs_of);
    xfree(f->grp);
}

/* Frontier of group k after moving p into it. */
static int frontier_with(const Fuser *f, int k, const Node *p)
{
    const IntVec *fr = &f->grp[k].frontier;
    int n = fr->n - 1;
    for (int j = 0; j < p->nin; j++) {
        const Node *u = p->in[j];
        bool seen = body_const(u) || vec_has(fr, u->id);
        for (int i = 0; i < j && !seen; i++)
            seen = p->in[i] == u;
        n += !seen;
    }
    return n;
}

/* Does user u of p, in a group, evaluate p per element? Elementwise ops
 * do; so do a softmax row kernel's ops for their second operand (the
 * incoming gradient, the targets), not for the logits. */
static bool reads_per_element(const Node *u, const Node *p)
{
    if (fusible(u))
        return true;
    return (u->op == OP_LOG_SOFTMAX_GRAD || u->op == OP_LOG_SOFTMAX_DOT) && u->in[0] != p;
}

/* The groups p's users lie in (into gs, emptied first), or false when p
 * is unused or has a user that does not read it per element (a GEMM, a
 * reduction, a kernel of its own): such a user needs p in memory. */
static bool users_in_groups(const Fuser *f, const Node *p, IntVec *gs)
{
    const IntVec *us = &f->users[p->id];
    gs->n = 0;
    if (us->n == 0)
        return false;
    for (int i = 0; i < us->n; i++) {
        const IntVec *ug = &f->groups[us->v[i]];
        if (ug->n == 0 || !reads_per_element(f->g->nodes[us->v[i]], p))
            return false;
        for (int j = 0; j < ug->n; j++)
            vec_add(gs, ug->v[j]);
    }
    return true;
}

/* users_in_groups for a p that may move into those groups: not a graph
 * output, which must stay in memory. */
static bool user_groups(const Fuser *f, const Node *p, IntVec *gs)
{
    return !f->is_out[p->id] && users_in_groups(f, p, gs);
}

static bool joins(const Fuser *f, const Node *p, IntVec *gs)
{
    if (!user_groups(f, p, gs))
        return false;
    bool dup = gs->n > 1;
    if (dup && !cheap(p))
        return false;
    for (int i = 0; i < gs->n; i++) {
        const Group *gr = &f->grp[gs->v[i]];
        if (!same_size(p, gr->root) && (dup || !cheap(p)))
            return false;
        if (gr->size + 1 > MAX_BODY || frontier_with(f, gs->v[i], p) > MAX_OPERANDS)
            return false;
    }
    return true;
}

static void add_to_group(Fuser *f, int k, Node *p)
{
    Group *gr = &f->grp[k];
    vec_remove(&gr->frontier, p->id);
    for (int j = 0; j < p->nin; j++)
        if (!body_const(p->in[j]))
            vec_add(&gr->frontier, p->in[j]->id);
    gr->size++;
    vec_add(&f->groups[p->id], k);
    VEC_PUSH(gr->members.v, gr->members.n, gr->members.cap, p->id);
}

static void new_group(Fuser *f, Node *root)
{
    Group gr;
    memset(&gr, 0, sizeof gr);
    gr.root = root;
    VEC_PUSH(f->grp, f->ngrp, f->grpcap, gr);
    add_to_group(f, f->ngrp - 1, root);
}

/* A matmul whose users all lie in one group, not a graph output and with
 * the group result's type, becomes that group's GEMM: the kernel calls
 * GEMM into the result buffer and runs the group's loop over it in place
 * (bias+activation after a dense layer; activation derivative times the
 * incoming gradient in the backward pass). One per group. */
static void try_anchor(Fuser *f, Node *p, IntVec *gs)
{
    if (p->shape.rank != 2 || !user_groups(f, p, gs) || gs->n != 1)
        return; /* a batched matmul is a loop of GEMMs: no epilogue */
    Group *gr = &f->grp[gs->v[0]];
    if (gr->anchor || p->dt != gr->root->dt || !ir_shape_eq(&p->shape, &gr->root->shape))
        return;
    if (gr->size + 1 > MAX_BODY || frontier_with(f, gs->v[0], p) > MAX_OPERANDS)
        return;
    add_to_group(f, gs->v[0], p);
    gr->anchor = p;
}

/* The update output of which v is the value, with a parameter of v's
 * type as target, when that is v's only output; else NULL. */
static const Output *sole_update(const Fuser *f, const Node *v)
{
    const IntVec *os = &f->outs_of[v->id];
    const Output *o = os->n == 1 ? &f->g->outs[os->v[0]] : NULL;
    return o && o->kind == OUT_UPDATE && o->target && o->target->op == OP_PARAM ? o : NULL;
}

/* Group k (root R, the new value of a parameter T, e.g. an optimizer
 * slot) joins the one other group G reading R when T is read only in
 * those two groups, G is elementwise and of R's type and at most one of
 * them has a GEMM: G's loop then writes R into T's buffer as a side
 * result (after the GEMM, if any, wrote G's result buffer). *param = T. */
static int slot_target_group(const Fuser *f, int k, IntVec *gs, Node **param)
{
    const Group *gr = &f->grp[k];
    Node *R = gr->root;
    const Output *o = sole_update(f, R);
    if (!o || gr->nside || !users_in_groups(f, R, gs) || gs->n != 1 || gs->v[0] == k)
        return -1;
    int G = gs->v[0];
    const Group *gg = &f->grp[G];
    if (gr->softmax || gg->softmax || (gg->anchor && gr->anchor) || gg->nside == MAX_SIDE || R->dt != gg->root->dt ||
        !ir_shape_eq(&R->shape, &gg->root->shape) || gg->size + gr->size > MAX_BODY)
        return -1;
    const IntVec *os = &f->outs_of[gg->root->id];
    for (int i = 0; i < os->n; i++)
        if (f->g->outs[os->v[i]].target == o->target)
            return -1; /* G's own result updates the same parameter */
    const IntVec *tu = &f->users[o->target->id];
    for (int i = 0; i < tu->n; i++) {
        const IntVec *ug = &f->groups[tu->v[i]];
        for (int j = 0; j < ug->n; j++)
            if (ug->v[j] != k && ug->v[j] != G)
                return -1;
        if (ug->n == 0)
            return -1;
    }
    IntVec fr = {0};
    for (int i = 0; i < gg->frontier.n; i++)
        if (gg->frontier.v[i] != R->id)
            vec_add(&fr, gg->frontier.v[i]);
    for (int i = 0; i < gr->frontier.n; i++)
        vec_add(&fr, gr->frontier.v[i]);
    bool fits = fr.n <= MAX_OPERANDS;
    xfree(fr.v);
    *param = o->target;
    return fits ? G : -1;
}

static int by_id_desc(const void *x, const void *y)
{
    int a = *(const int *)x, b = *(const int *)y;
    return (a < b) - (a > b);
}

/* Optimizer updates: the new value of a slot (momentum, Adam's m and v,
 * RMSProp's average) is computed in the loop that updates its parameter,
 * which writes it back into the slot in place (a side result of the
 * fused node, taken by the slot's update output). So one loop per
 * parameter reads the gradient, the parameter and its slots once. */
static void merge_slot_updates(Fuser *f)
{
    IntVec gs = {0};
    for (int k = f->ngrp - 1; k >= 0; k--) {
        Node *T;
        int G = slot_target_group(f, k, &gs, &T);
        if (G < 0)
            continue;
        Group *gr = &f->grp[k], *gg = &f->grp[G];
        qsort(gr->members.v, (size_t)gr->members.n, sizeof(int), by_id_desc); /* last node first */
        for (int m = 0; m < gr->members.n; m++) {
            int i = gr->members.v[m];
            IntVec *ng = &f->groups[i];
            vec_remove(ng, k);
            if (!vec_has(ng, G))
                add_to_group(f, G, f->g->nodes[i]);
        }
        gr->members.n = 0;
        if (gr->anchor) /* the slot's GEMM (plain momentum reads dW once) */
            gg->anchor = gr->anchor;
        gg->side[gg->nside] = gr->root;
        gg->side_param[gg->nside++] = T;
        gr->size = 0;
        gr->frontier.n = 0;
    }
    xfree(gs.v);
}

static bool is_reduction(const Node *n)
{
    return ir_op_has(n->op, OPF_REDUCTION);
}

/* A group whose result only a reduction reads (and which has no GEMM)
 * becomes the body of that reduction: the reduction evaluates the
 * group's ops per element instead of reading a buffer. */
static void attach_reductions(Fuser *f)
{
    for (int k = 0; k < f->ngrp; k++) {
        Group *gr = &f->grp[k];
        Node *p = gr->root;
        const IntVec *us = &f->users[p->id];
        if (gr->anchor || gr->softmax || f->is_out[p->id] || us->n != 1)
            continue;
        Node *r = f->g->nodes[us->v[0]];
        if (!is_reduction(r) || r->dt != p->dt || gr->size + 1 > MAX_BODY)
            continue;
        gr->reduce = r;
        gr->size++;
        vec_add(&f->groups[r->id], k);
    }
}

/* Adds x, a value read through a result node, to group k. */
static void add_fresh(Fuser *f, int k, Node *x)
{
    Group *gr = &f->grp[k];
    add_to_group(f, k, x);
    for (int j = 0; j < x->nin; j++)
        if (in_group(f, x->in[j], k))
            vec_remove(&gr->frontier, x->in[j]->id);
    gr->fresh[gr->nfresh++] = x;
}

/* Does v depend on node a (is a among its transitive operands)? A walk
 * with its own stack: an operand chain can be as long as the graph. */
static bool depends_on(const Node *v, const Node *a, int nn)
{
    bool *seen = xcalloc((size_t)nn + 1, sizeof(bool));
    const Node **stack = xmalloc(((size_t)nn + 1) * sizeof(Node *));
    int sp = 0;
    bool found = false;
    stack[sp++] = v;
    seen[v->id] = true;
    while (sp && !found) {
        const Node *x = stack[--sp];
        found = x == a;
        for (int j = 0; j < x->nin && !found; j++) {
            const Node *u = x->in[j];
            if (u->id >= a->id && !seen[u->id]) {
                seen[u->id] = true;
                stack[sp++] = u;
            }
        }
    }
    xfree(seen);
    xfree(stack);
    return found;
}

/* Softmax cross-entropy: log_softmax_grad(z, gy) and the
 * log_softmax_dot(z, t) of the same logits and axis (the loss rows) are
 * one row kernel, with the gradient as its value and the dot as a fresh
 * result, unless gy depends on the dot (the kernel would then read its
 * own result). The elementwise ops computing gy and t may then join it. */
static void try_softmax(Fuser *f, Node *grad)
{
    Node *z = grad->in[0], *dot = NULL;
    const IntVec *zu = &f->users[z->id];
    for (int i = 0; i < zu->n && !dot; i++) {
        Node *u = f->g->nodes[zu->v[i]];
        if (u->op == OP_LOG_SOFTMAX_DOT && u->in[0] == z && u->a.axes[0] == grad->a.axes[0] &&
            u->dt == grad->dt && f->groups[u->id].n == 0)
            dot = u;
    }
    if (!dot)
        return;
    if (depends_on(grad->in[1], dot, f->nn))
        return;
    new_group(f, grad);
    f->grp[f->ngrp - 1].softmax = true;
    add_fresh(f, f->ngrp - 1, dot);
}

/* Column sums: a sum or mean of the value of a GEMM epilogue or softmax
 * row kernel (a bias gradient) is accumulated by that kernel's loop, a
 * fresh result of the fused node, instead of reading the value again. */
static void attach_column_sums(Fuser *f)
{
    for (int k = 0; k < f->ngrp; k++) {
        Group *gr = &f->grp[k];
        if ((!gr->anchor && !gr->softmax) || gr->reduce || gr->size == 0)
            continue;
        const IntVec *us = &f->users[gr->root->id];
        for (int i = 0; i < us->n && gr->nfresh < MAX_FRESH && gr->size < MAX_BODY; i++) {
            Node *r = f->g->nodes[us->v[i]];
            if ((r->op == OP_REDUCE_SUM || r->op == OP_REDUCE_MEAN) && r->dt == gr->root->dt &&
                f->groups[r->id].n == 0)
                add_fresh(f, k, r);
        }
    }
}

static void form_groups(Fuser *f)
{
    IntVec gs = {0};
    for (int i = f->nn - 1; i >= 0; i--) {
        Node *p = f->g->nodes[i];
        if (p->op == OP_MATMUL)
            try_anchor(f, p, &gs);
        if (p->op == OP_LOG_SOFTMAX_GRAD)
            try_softmax(f, p);
        if (!fusible(p))
            continue;
        if (joins(f, p, &gs)) {
            for (int k = 0; k < gs.n; k++)
                add_to_group(f, gs.v[k], p);
        } else {
            new_group(f, p);
        }
    }
    xfree(gs.v);
}

/* ---- building fused nodes ---- */

typedef struct Body {
    Graph *sub;
    Node **map;   /* outer node id -> body node, for this group */
    int *touched; /* ids set in map */
    int ntouched;
    Node **ops;   /* operands of the fused node */
    int nops;
} Body;

static void body_map(Body *b, Node *outer, Node *inner)
{
    b->map[outer->id] = inner;
    b->touched[b->ntouched++] = outer->id;
}

static bool in_group(const Fuser *f, const Node *v, int k)
{
    return vec_has(&f->groups[v->id], k);
}

/* Inputs first, in the order the group's ops first read them. */
static void body_inputs(Fuser *f, Body *b, int k, Node **members, int nm)
{
    for (int m = 0; m < nm; m++)
        for (int j = 0; j < members[m]->nin; j++) {
            Node *u = members[m]->in[j];
            if (in_group(f, u, k) || body_const(u) || b->map[u->id])
                continue;
            char name[16];
            snprintf(name, sizeof name, "%d", b->nops);
            body_map(b, u, ir_input(b->sub, name, u->dt, u->shape, (SrcLoc){0}));
            b->ops[b->nops++] = u;
        }
}

static Node *body_operand(Body *b, Node *u)
{
    if (!b->map[u->id]) {
        MC_ASSERT(body_const(u));
        body_map(b, u, ir_const(b->sub, u->dt, u->a.value, u->loc));
    }
    return b->map[u->id];
}

static void body_op(Body *b, Node *m, const Attrs *a)
{
    Node *in[3];
    MC_ASSERT(m->nin <= 3);
    for (int j = 0; j < m->nin; j++)
        in[j] = body_operand(b, m->in[j]);
    Diags scratch;
    diags_init(&scratch);
    Node *c = ir_op(b->sub, m->op, in, m->nin, a, m->loc, &scratch);
    if (!c)
        ICE("fuse built an ill-typed %s node: %s", ir_ops[m->op].name, scratch.n ? scratch.v[0].msg : "?");
    diags_free(&scratch);
    c->label = m->label ? arena_strdup(b->sub->arena, m->label) : NULL;
    body_map(b, m, c);
}

/* The node whose value the fused node of a group computes. */
static Node *group_result(const Group *gr)
{
    return gr->reduce ? gr->reduce : gr->root;
}

/* The scale m applies to A (m = A*c, c*A or A/c with c a scalar
 * constant); 0 when m is not such a scaling. */
static double const_scale(const Node *m, const Node *A)
{
    if (m->op != OP_MUL && m->op != OP_DIV)
        return 0;
    const Node *c = m->in[0] == A ? m->in[1] : m->in[0];
    if (!body_const(c) || c == A || (m->op == OP_DIV && m->in[0] != A))
        return 0;
    double s = m->op == OP_MUL ? c->a.value : 1 / c->a.value;
    return s != 0 && s == s && s - s == 0 ? s : 0;
}

/* The scale a GEMM's only reader m applies, folded into the GEMM's alpha. */
static double alpha_factor(const Fuser *f, const Node *m, const Node *A)
{
    return f->users[A->id].n == 1 ? const_scale(m, A) : 0;
}

/* Convolutions: a conv2d that is not a graph output and whose only
 * reader scales it by a scalar constant (conv*c, c*conv, conv/c) takes
 * the constant as its alpha (the runtime passes it to GEMM, or scales
 * its direct loops' sums), and the scaling op's readers read the conv:
 * act(conv(x, k) / 3) is the conv and the activation's loop. */
static void fold_conv_scales(Graph *g)
{
    int *uses = ir_use_counts(g), folded = 0; /* ids are positions */
    Node **with = xcalloc((size_t)g->nnodes + 1, sizeof(Node *));
    for (int i = 0; i < g->nnodes; i++) {
        Node *m = g->nodes[i];
        for (int j = 0; j < m->nin; j++) /* a folded scale reads as its convolution */
            if (with[m->in[j]->id])
                m->in[j] = with[m->in[j]->id];
        if (m->op != OP_MUL && m->op != OP_DIV)
            continue;
        Node *C = m->in[0]->op == OP_CONV2D ? m->in[0] : m->in[1];
        if (C->op != OP_CONV2D)
            continue;
        double s = uses[C->id] == 1 ? const_scale(m, C) : 0;
        if (s == 0 || C->dt != m->dt || !ir_shape_eq(&C->shape, &m->shape))
            continue;
        C->a.alpha *= s;
        if (!C->label)
            C->label = m->label;
        with[i] = C;
        folded++;
    }
    xfree(uses);
    if (folded) {
        ir_replace_all(g, with);
        ir_remove_dead(g);
    }
    xfree(with);
}

/* The fused node of group k with members (in program order). */
static Node *build_fused(Fuser *f, Body *b, int k, Node **members, int nm, Diags *d)
{
    Node *root = group_result(&f->grp[k]), *A = f->grp[k].anchor, *scale = NULL;
    b->sub = ir_graph_new(root->label ? root->label : "fused");
    b->nops = 0;
    b->ntouched = 0;
    body_inputs(f, b, k, members, nm);
    for (int m = 0; m < nm; m++) {
        if (A && members[m] == A) {
            Attrs a = A->a;
            int u = f->users[A->id].n == 1 ? f->users[A->id].v[0] : -1;
            double s = u >= 0 ? alpha_factor(f, f->g->nodes[u], A) : 0;
            if (s != 0) {
                a.alpha *= s;
                scale = f->g->nodes[u];
            }
            body_op(b, A, &a);
        } else if (members[m] == scale) {
            body_map(b, scale, b->map[A->id]);
        } else {
            body_op(b, members[m], &members[m]->a);
        }
    }
    ir_add_output(b->sub, OUT_VALUE, NULL, b->map[root->id], NULL, false);
    const Group *gr = &f->grp[k];
    for (int j = 0; j < gr->nside; j++) {
        MC_ASSERT(b->map[gr->side[j]->id] && b->map[gr->side_param[j]->id]);
        ir_add_output(b->sub, OUT_UPDATE, NULL, b->map[gr->side[j]->id], b->map[gr->side_param[j]->id], false);
    }
    for (int j = 0; j < gr->nfresh; j++) {
        MC_ASSERT(b->map[gr->fresh[j]->id]);
        ir_add_output(b->sub, OUT_VALUE, NULL, b->map[gr->fresh[j]->id], NULL, false);
    }
    for (int i = 0; i < b->ntouched; i++)
        b->map[b->touched[i]] = NULL;
    Node *fn = ir_fused(f->g, b->sub, b->ops, b->nops, members[0]->loc, d);
    if (!fn)
        ICE("fuse built a fused node that does not match its body");
    fn->label = root->label;
    for (int j = 0; j < gr->nfresh; j++) { /* result nodes take the fresh values' places (splice) */
        Node *x = gr->fresh[j];
        Attrs a = ir_attrs();
        a.index = 1 + gr->nside + j;
        Node *r = ir_op(f->g, OP_RESULT, &fn, 1, &a, x->loc, d);
        if (!r)
            ICE("fuse built an ill-typed result node");
        r->label = x->label;
        x->aux = r;
    }
    for (int j = 0; j < gr->nside; j++) {
        const IntVec *os = &f->outs_of[gr->side[j]->id];
        for (int i = 0; i < os->n; i++) {
            f->g->outs[os->v[i]].val = fn;
            f->g->outs[os->v[i]].part = j + 1;
        }
    }
    return fn;
}

/* Build every group of two or more ops; root->aux = its fused node. */
static int build_groups(Fuser *f, Diags *d)
{
    IntVec *members = xcalloc((size_t)f->ngrp + 1, sizeof(IntVec));
    for (int i = 0; i < f->nn; i++)
        for (int j = 0; j < f->groups[i].n; j++) {
            IntVec *mv = &members[f->groups[i].v[j]];
            VEC_PUSH(mv->v, mv->n, mv->cap, i);
        }
    Body b;
    memset(&b, 0, sizeof b);
    b.map = xcalloc((size_t)f->nn + 1, sizeof(Node *));
    b.touched = xmalloc(((size_t)f->nn + 1) * sizeof(int));
    b.ops = xmalloc((size_t)(MAX_OPERANDS + 1) * sizeof(Node *));
    Node **nodes = xmalloc((size_t)(MAX_BODY + 1) * sizeof(Node *));
    int built = 0;
    for (int k = 0; k < f->ngrp; k++) {
        if (members[k].n < 2)
            continue;
        MC_ASSERT(members[k].n <= MAX_BODY);
        for (int m = 0; m < members[k].n; m++)
            nodes[m] = f->g->nodes[members[k].v[m]];
        group_result(&f->grp[k])->aux = build_fused(f, &b, k, nodes, members[k].n, d);
        built++;
    }
    for (int k = 0; k < f->ngrp; k++)
        xfree(members[k].v);
    xfree(members);
    xfree(b.map);
    xfree(b.touched);
    xfree(b.ops);
    xfree(nodes);
    return built;
}

/* Readers of a root read its fused node; each fused node takes its root's
 * place in the node order; the ops now inside bodies become dead. */
static void splice(Fuser *f)
{
    Graph *g = f->g;
    for (int i = 0; i < g->nnodes; i++) {
        Node *v = g->nodes[i];
        for (int j = 0; j < v->nin; j++)
            if (v->in[j]->aux)
                v->in[j] = v->in[j]->aux;
    }
    for (int i = 0; i < g->nouts; i++)
        if (g->outs[i].val->aux)
            g->outs[i].val = g->outs[i].val->aux;
    for (int i = 0; i < f->nn; i++) {
        Node *fn = g->nodes[i]->aux;
        if (fn) {
            g->nodes[i]->aux = NULL;
            g->nodes[i] = fn;
            fn->id = i;
        }
    }
    g->nnodes = f->nn;
    ir_remove_dead(g);
}

static bool fuse_graph(Graph *g, Diags *d);

/* A loop body fuses as a graph of its own whose carried-state updates
 * are plain outputs for the time being. */
static bool fuse_loop_body(Node *v, Diags *d)
{
    Graph *b = v->sub;
    int nc = ir_loop_ncarry(v);
    Node **carried = xcalloc((size_t)nc + 1, sizeof(Node *));
    for (int j = 0; j < nc; j++) {
        carried[j] = b->outs[j].target;
        b->outs[j].kind = OUT_VALUE;
        b->outs[j].target = NULL;
    }
    bool ok = fuse_graph(b, d);
    for (int j = 0; j < nc; j++) {
        b->outs[j].kind = OUT_UPDATE;
        b->outs[j].target = carried[j];
    }
    xfree(carried);
    return ok;
}

bool ps_fuse(Graph *g, Diags *d)
{
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i]->op == OP_LOOP && !fuse_loop_body(g->nodes[i], d))
            return false;
    return fuse_graph(g, d);
}

static bool fuse_graph(Graph *g, Diags *d)
{
    ps_fuse_softmax(g, d);
    fold_conv_scales(g);
    Fuser f;
    fuser_init(&f, g);
    form_groups(&f);
    merge_slot_updates(&f);
    attach_reductions(&f);
    attach_column_sums(&f);
    bool reorder = false; /* a softmax row kernel's dot is read before the kernel's place */
    for (int k = 0; k < f.ngrp; k++)
        reorder |= f.grp[k].softmax;
    if (build_groups(&f, d)) {
        splice(&f);
        if (reorder)
            ir_toposort(g);
    }
    fuser_free(&f);
    return d->nerrors == 0;
}
