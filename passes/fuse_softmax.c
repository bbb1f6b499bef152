/* Softmax cross-entropy fusion, the first step of fuse: the loss and the
 * gradient that the frontend and autodiff write out in primitive ops
 * become one row op each, reading the logits z directly (the fusion
 * pass then makes a pair of them one row kernel, fuse.c):
 *
 *   reduce_sum(mul(t, log_softmax(z){a})){axes=[a]}
 *       -> log_softmax_dot(z, t){a}
 *   sub(gy, mul(exp(log_softmax(z){a}), reduce_sum(gy){axes=[a], keepdims}))
 *       -> log_softmax_grad(z, gy){a}
 *
 * (either operand order of each mul). The forward rule needs t of z's
 * shape and the mul read by nothing but the sum; the backward rule needs
 * gy of z's shape. A new node takes the place, label and location of the
 * node it replaces; log_softmax(z) dies when nothing else reads it. The
 * interpreter computes both ops with the roundings of the primitive ops
 * they replace (docs/ops.md), so results do not change. */
#include "passes.h"

#include <stdlib.h>

static bool is_log_softmax(const Node *n, int axis)
{
    return n->op == OP_LOG_SOFTMAX && n->a.axes[0] == axis;
}

static bool sums_axis(const Node *n, int axis, bool keepdims)
{
    return n->op == OP_REDUCE_SUM && n->a.naxes == 1 && n->a.axes[0] == axis && n->a.keepdims == keepdims;
}

/* x has z's dtype and shape (no broadcasting). */
static bool like(const Node *x, const Node *z)
{
    return x->dt == z->dt && ir_shape_eq(&x->shape, &z->shape);
}

/* A rewrite found at a node: op(in[0], in[1]){axis}. */
typedef struct Match {
    Op op;
    Node *in[2];
    int axis;
} Match;

/* The operand of mul m that is not log_softmax(z){axis} (its log_softmax
 * in *l), or NULL. */
static Node *other_than_log_softmax(Node *m, int axis, Node **l)
{
    if (m->op != OP_MUL)
        return NULL;
    for (int j = 0; j < 2; j++)
        if (is_log_softmax(m->in[j], axis)) {
            *l = m->in[j];
            return m->in[1 - j];
        }
    return NULL;
}

/* reduce_sum(mul(t, L)){axes=[a]}, L = log_softmax(z){a}, the mul read
 * only here -> log_softmax_dot(z, t){a}. */
static bool match_dot(Node *r, const int *uses, Match *mt)
{
    if (r->op != OP_REDUCE_SUM || !sums_axis(r, r->a.axes[0], false))
        return false;
    Node *m = r->in[0], *l = NULL;
    if (uses[m->id] != 1)
        return false;
    Node *t = other_than_log_softmax(m, r->a.axes[0], &l);
    if (!t || !like(t, l->in[0]) || !like(m, l->in[0]))
        return false;
    *mt = (Match){OP_LOG_SOFTMAX_DOT, {l->in[0], t}, r->a.axes[0]};
    return true;
}

/* sub(gy, mul(exp(L), reduce_sum(gy){axes=[a], keepdims})),
 * L = log_softmax(z){a} -> log_softmax_grad(z, gy){a}. */
static bool match_grad(Node *s, Match *mt)
{
    if (s->op != OP_SUB || s->in[1]->op != OP_MUL)
        return false;
    Node *gy = s->in[0], *m = s->in[1];
    for (int j = 0; j < 2; j++) {
        Node *e = m->in[j], *sum = m->in[1 - j];
        if (e->op != OP_EXP || sum->op != OP_REDUCE_SUM || sum->in[0] != gy)
            continue;
        Node *l = e->in[0];
        if (l->op != OP_LOG_SOFTMAX || !sums_axis(sum, l->a.axes[0], true))
            continue;
        if (!like(gy, l->in[0]) || !like(s, l->in[0]))
            continue;
        *mt = (Match){OP_LOG_SOFTMAX_GRAD, {l->in[0], gy}, l->a.axes[0]};
        return true;
    }
    return false;
}

/* The matched op replaces old, in old's place in the node order (its
 * operands come before old). */
static void replace(Graph *g, Node *old, Match *mt)
{
    Attrs a = ir_attrs();
    a.naxes = 1;
    a.axes[0] = mt->axis;
    Diags scratch;
    diags_init(&scratch);
    Node *n = ir_op(g, mt->op, mt->in, 2, &a, old->loc, &scratch);
    if (!n)
        ICE("fuse_softmax built an ill-typed %s: %s", ir_ops[mt->op].name, scratch.n ? scratch.v[0].msg : "?");
    diags_free(&scratch);
    if (!ir_shape_eq(&n->shape, &old->shape) || n->dt != old->dt)
        ICE("fuse_softmax changed the type of node %d", old->id);
    n->label = old->label;
    g->nnodes--;
    g->nodes[old->id] = n;
    n->id = old->id;
    ir_replace_uses(g, old, n);
}

bool ps_fuse_softmax(Graph *g, Diags *d)
{
    int *uses = ir_use_counts(g);
    bool changed = false;
    for (int i = 0; i < g->nnodes; i++) {
        Node *v = g->nodes[i];
        Match mt;
        if (match_dot(v, uses, &mt) || match_grad(v, &mt)) {
            replace(g, v, &mt);
            changed = true;
        }
    }
    xfree(uses);
    if (changed)
        ir_remove_dead(g);
    return d->nerrors == 0;
}
