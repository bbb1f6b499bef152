/* Simplification to a fixed point: folding of scalar constant expressions,
 * algebraic identities, negation folding, division by a constant turned
 * into multiplication by its reciprocal, removal of no-op shape ops,
 * common-subexpression elimination and dead-code elimination.
 *
 * Every rewrite preserves the node's dtype and shape. x * 0 is folded only
 * when x is itself a scalar constant: for a tensor x it would hide Inf/NaN
 * (Inf * 0 = NaN) and change what the program computes. Constants move to
 * the right of commutative ops so that chains of constant factors meet and
 * fold: mul(mul(x, 2), 0.5) becomes x. */
#include "passes.h"
#include "backend/interp/interp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct Simp {
    Graph *g;
    Node *n;   /* node being rewritten: new nodes take its location */
    int *uses; /* use counts by id: at the start of the sweep, and the counts
                  of replaced nodes carried over to their replacements */
    int ncap;
} Simp;

/* ---- building replacement nodes ---- */

static Node *mk(Simp *s, Op op, Node **in, int nin, const Attrs *a)
{
    Diags scratch;
    diags_init(&scratch);
    Node *n = ir_op(s->g, op, in, nin, a, s->n->loc, &scratch);
    if (!n)
        ICE("simplify built an ill-typed %s node: %s", ir_ops[op].name,
            scratch.n ? scratch.v[0].msg : "?");
    diags_free(&scratch);
    return n;
}

static Node *mk1(Simp *s, Op op, Node *x)
{
    return mk(s, op, &x, 1, NULL);
}

static Node *mk2(Simp *s, Op op, Node *x, Node *y)
{
    Node *in[2] = {x, y};
    return mk(s, op, in, 2, NULL);
}

/* Constants keep the exact double (1/3 prints as 0.3333333333333333);
 * an f32 graph rounds it when it is evaluated. */
static Node *mkconst(Simp *s, DType t, double v)
{
    return ir_const(s->g, t, v, s->n->loc);
}

/* Rewrites that move a node outwards duplicate it when it has other
 * users, so they apply only to single-use nodes. */
static int *uses_of(Simp *s, const Node *n)
{
    if (n->id >= s->ncap) {
        int cap = 2 * n->id + 16;
        s->uses = xrealloc(s->uses, (size_t)cap * sizeof(int));
        memset(s->uses + s->ncap, 0, (size_t)(cap - s->ncap) * sizeof(int));
        s->ncap = cap;
    }
    return &s->uses[n->id];
}

static bool single_use(Simp *s, const Node *n)
{
    return *uses_of(s, n) <= 1;
}

/* ---- predicates ---- */

static bool is_sconst(const Node *n)
{
    return n->op == OP_CONST && n->shape.rank == 0;
}

static bool is_val(const Node *n, double v)
{
    return is_sconst(n) && n->a.value == v;
}

/* x may stand in for n: same dtype and shape. */
static bool fits(const Node *n, const Node *x)
{
    return x->dt == n->dt && ir_shape_eq(&x->shape, &n->shape);
}

/* NumPy broadcast of two shapes; false when they do not broadcast. */
static bool bcast_shapes(Shape a, Shape b, Shape *out)
{
    Shape lo = a.rank < b.rank ? a : b, hi = a.rank < b.rank ? b : a;
    *out = hi;
    int off = hi.rank - lo.rank;
    for (int k = 0; k < lo.rank; k++) {
        int64_t x = hi.d[off + k], y = lo.d[k];
        if (x == y || y == 1)
            continue;
        if (x != 1)
            return false;
        out->d[off + k] = y;
    }
    return true;
}

/* ---- constant folding of scalar expressions ----
 * By the interpreter's f64 kernels (be_interp_elem), on the constants'
 * exact values: the folded constant is what the interpreter computes for
 * the node in f64, bit for bit, whatever the node's float dtype (an f32
 * graph rounds it when it is evaluated, as any constant). */

static Node *fold(Simp *s, Node *n)
{
    if (!ir_op_is_elementwise(n->op) || n->shape.rank != 0 || !ir_dtype_is_float(n->dt))
        return NULL;
    double x[3];
    for (int i = 0; i < n->nin; i++) {
        if (!is_sconst(n->in[i]) || !ir_dtype_is_float(n->in[i]->dt))
            return NULL;
        x[i] = n->in[i]->a.value;
    }
    double r = be_interp_elem(n->op, DT_F64, n->a.value, x);
    if (!isfinite(r))
        return NULL;
    return mkconst(s, n->dt, r);
}

/* ---- algebraic rewrites, one function per op family ---- */

static Node *same_or_null(Node *n, Node *x)
{
    return fits(n, x) ? x : NULL;
}

static Node *rw_add(Simp *s, Node *n, Node *a, Node *b)
{
    if (is_val(b, 0) && fits(n, a))
        return a;
    if (is_val(a, 0) && fits(n, b))
        return b;
    if (b->op == OP_NEG)
        return mk2(s, OP_SUB, a, b->in[0]);
    if (a->op == OP_NEG)
        return mk2(s, OP_SUB, b, a->in[0]);
    return NULL;
}

static Node *rw_sub(Simp *s, Node *n, Node *a, Node *b)
{
    if (is_val(b, 0) && fits(n, a))
        return a;
    if (is_val(a, 0) && fits(n, b))
        return mk1(s, OP_NEG, b);
    if (b->op == OP_NEG)
        return mk2(s, OP_ADD, a, b->in[0]);
    return NULL;
}

static Node *rw_mul(Simp *s, Node *n, Node *a, Node *b)
{
    if (is_sconst(b)) {
        double c = b->a.value;
        if (c == 1 && fits(n, a))
            return a;
        if (a->op == OP_MUL && is_sconst(a->in[1]))
            return mk2(s, OP_MUL, a->in[0], mkconst(s, n->dt, a->in[1]->a.value * c));
        if (a->op == OP_NEG)
            return mk2(s, OP_MUL, a->in[0], mkconst(s, n->dt, -c));
        if (a->op == OP_DIV && is_sconst(a->in[0]))
            return mk2(s, OP_DIV, mkconst(s, n->dt, a->in[0]->a.value * c), a->in[1]);
        /* (k / z) * y * c -> (k*c / z) * y: the factor joins a scalar k / z */
        if (a->op == OP_MUL && single_use(s, a)) {
            Node *f = a->in[0], *y = a->in[1];
            if (!(f->op == OP_DIV && f->shape.rank == 0)) {
                f = a->in[1];
                y = a->in[0];
            }
            if (f->op == OP_DIV && f->shape.rank == 0 && is_sconst(f->in[0]) && single_use(s, f)) {
                Node *k = mkconst(s, n->dt, f->in[0]->a.value * c);
                return mk2(s, OP_MUL, mk2(s, OP_DIV, k, f->in[1]), y);
            }
        }
        if (c == -1 && fits(n, a))
            return mk1(s, OP_NEG, a);
    }
    if (a->op == OP_NEG && b->op == OP_NEG)
        return mk2(s, OP_MUL, a->in[0], b->in[0]);
    if (is_sconst(b))
        return NULL;
    /* negations move outwards, where sub/add or a constant absorbs them */
    if (a->op == OP_NEG && single_use(s, a))
        return mk1(s, OP_NEG, mk2(s, OP_MUL, a->in[0], b));
    if (b->op == OP_NEG && single_use(s, b))
        return mk1(s, OP_NEG, mk2(s, OP_MUL, a, b->in[0]));
    /* hoist constant factors outwards: (x * c) * y -> (x * y) * c */
    if (a->op == OP_MUL && is_sconst(a->in[1]) && single_use(s, a))
        return mk2(s, OP_MUL, mk2(s, OP_MUL, a->in[0], b), a->in[1]);
    if (b->op == OP_MUL && is_sconst(b->in[1]) && single_use(s, b))
        return mk2(s, OP_MUL, mk2(s, OP_MUL, a, b->in[0]), b->in[1]);
    /* x * (1 / y) -> x / y */
    if (b->op == OP_DIV && is_val(b->in[0], 1))
        return mk2(s, OP_DIV, a, b->in[1]);
    if (a->op == OP_DIV && is_val(a->in[0], 1))
        return mk2(s, OP_DIV, b, a->in[1]);
    return NULL;
}

static Node *rw_div(Simp *s, Node *n, Node *a, Node *b)
{
    if (a->op == OP_MUL && is_sconst(a->in[1]) && !is_sconst(b) && single_use(s, a))
        return mk2(s, OP_MUL, mk2(s, OP_DIV, a->in[0], b), a->in[1]);
    if (!is_sconst(b))
        return NULL;
    double c = b->a.value;
    if (c == 1 && fits(n, a))
        return a;
    if (c == 0 || !isfinite(1.0 / c))
        return NULL;
    return mk2(s, OP_MUL, a, mkconst(s, n->dt, 1.0 / c));
}

static Node *rw_neg(Simp *s, Node *n, Node *a)
{
    if (a->op == OP_SUB)
        return mk2(s, OP_SUB, a->in[1], a->in[0]);
    if (a->op == OP_MUL && is_sconst(a->in[1]))
        return mk2(s, OP_MUL, a->in[0], mkconst(s, n->dt, -a->in[1]->a.value));
    return NULL;
}

static Node *rw_pow(Simp *s, Node *n, Node *a, Node *b)
{
    if (!is_sconst(b) || !fits(n, a))
        return NULL;
    if (b->a.value == 1)
        return a;
    if (b->a.value == 2)
        return mk1(s, OP_SQUARE, a);
    /* pow(x, 0.5) stays: sqrt differs at x = -inf (NaN, not +inf) and -0 */
    return NULL;
}

static Node *rw_select(Simp *s, Node *n)
{
    Node *c = n->in[0], *a = n->in[1], *b = n->in[2];
    if (is_sconst(c))
        return same_or_null(n, c->a.value != 0 ? a : b);
    if (a == b)
        return same_or_null(n, a);
    (void)s;
    return NULL;
}

/* binary(x, broadcast(y)) -> binary(x, y) when the result keeps its shape. */
static Node *rw_drop_broadcast(Simp *s, Node *n)
{
    if (!ir_op_is_elementwise(n->op) || n->nin < 2)
        return NULL;
    for (int i = 0; i < n->nin; i++) {
        if (n->in[i]->op != OP_BROADCAST)
            continue;
        Shape out = ir_shape0();
        bool ok = true;
        for (int j = 0; j < n->nin && ok; j++) {
            Node *x = j == i ? n->in[i]->in[0] : n->in[j];
            ok = bcast_shapes(out, x->shape, &out);
        }
        Node *in[3];
        memcpy(in, n->in, (size_t)n->nin * sizeof(Node *));
        in[i] = n->in[i]->in[0];
        if (ok && ir_shape_eq(&out, &n->shape))
            return mk(s, n->op, in, n->nin, &n->a);
        /* a single broadcast element: op(broadcast(c), y) -> broadcast(op(c, y)) */
        if (ok && ir_shape_numel(&in[i]->shape, 1) == 1 && in[i]->shape.rank <= out.rank) {
            Node *inner = mk(s, n->op, in, n->nin, &n->a);
            Attrs a = ir_attrs();
            a.shape = n->shape;
            return mk(s, OP_BROADCAST, &inner, 1, &a);
        }
    }
    return NULL;
}

static bool identity_perm(const Attrs *a)
{
    for (int k = 0; k < a->naxes; k++)
        if (a->axes[k] != k)
            return false;
    return true;
}

static Node *rw_shape_op(Simp *s, Node *n, Node *a)
{
    if (fits(n, a) && (n->op == OP_BROADCAST || n->op == OP_RESHAPE))
        return a;
    if ((n->op == OP_BROADCAST || n->op == OP_RESHAPE) && a->op == n->op)
        return mk(s, n->op, &a->in[0], 1, &n->a);
    /* one element broadcast, then reshaped: broadcast straight to the result */
    if (n->op == OP_RESHAPE && a->op == OP_BROADCAST && ir_shape_numel(&a->in[0]->shape, 1) == 1 &&
        a->in[0]->shape.rank <= n->shape.rank)
        return mk(s, OP_BROADCAST, &a->in[0], 1, &n->a);
    if (n->op == OP_TRANSPOSE) {
        if (identity_perm(&n->a))
            return same_or_null(n, a);
        if (a->op == OP_TRANSPOSE) {
            Attrs t = n->a;
            for (int k = 0; k < t.naxes; k++)
                t.axes[k] = a->a.axes[n->a.axes[k]];
            return mk(s, OP_TRANSPOSE, &a->in[0], 1, &t);
        }
    }
    return NULL;
}

/* Rewrites that op facts of ops.def decide: f(f(x)) -> x for an
 * involution; a scalar constant moves to the right of a commutative op. */
static Node *rw_by_facts(Simp *s, Node *n)
{
    Node *a = n->nin > 0 ? n->in[0] : NULL;
    if (ir_op_has(n->op, OPF_INVOLUTION) && a->op == n->op)
        return same_or_null(n, a->in[0]);
    if (ir_op_has(n->op, OPF_COMMUTATIVE) && is_sconst(a) && !is_sconst(n->in[1])) {
        Node *in[2] = {n->in[1], a};
        return mk(s, n->op, in, 2, &n->a);
    }
    return NULL;
}

static Node *rewrite(Simp *s, Node *n)
{
    Node *r = fold(s, n);
    if (!r)
        r = rw_by_facts(s, n);
    if (r)
        return r;
    Node *a = n->nin > 0 ? n->in[0] : NULL, *b = n->nin > 1 ? n->in[1] : NULL;
    switch (n->op) {
    case OP_ADD: r = rw_add(s, n, a, b); break;
    case OP_SUB: r = rw_sub(s, n, a, b); break;
    case OP_MUL: r = rw_mul(s, n, a, b); break;
    case OP_DIV: r = rw_div(s, n, a, b); break;
    case OP_NEG: r = rw_neg(s, n, a); break;
    case OP_POW: r = rw_pow(s, n, a, b); break;
    case OP_SELECT: r = rw_select(s, n); break;
    case OP_CAST: r = a->dt == n->dt ? same_or_null(n, a) : NULL; break;
    case OP_BROADCAST:
    case OP_RESHAPE:
    case OP_TRANSPOSE: r = rw_shape_op(s, n, a); break;
    case OP_REDUCE_SUM:
    case OP_REDUCE_MEAN:
    case OP_REDUCE_MAX: r = n->a.naxes == 0 ? same_or_null(n, a) : NULL; break;
    default: break;
    }
    if (!r)
        r = rw_drop_broadcast(s, n);
    return r;
}

/* ---- replacement bookkeeping: Node.aux points at a node's replacement ---- */

static Node *resolve(Node *n)
{
    while (n->aux)
        n = n->aux;
    return n;
}

static void resolve_operands(Node *n)
{
    for (int j = 0; j < n->nin; j++)
        n->in[j] = resolve(n->in[j]);
}

static void resolve_outputs(Graph *g)
{
    for (int i = 0; i < g->nouts; i++)
        g->outs[i].val = resolve(g->outs[i].val);
}

static void clear_aux(Graph *g)
{
    for (int i = 0; i < g->nnodes; i++)
        g->nodes[i]->aux = NULL;
}

static void replace(Simp *s, Node *n, Node *r)
{
    if (r->dt != n->dt || !ir_shape_eq(&r->shape, &n->shape))
        ICE("simplify changed the type of a %s node", ir_ops[n->op].name);
    n->aux = r;
    *uses_of(s, r) += *uses_of(s, n);
}

static bool rewrite_sweep(Graph *g)
{
    Simp s = {g, NULL, ir_use_counts(g), g->nnodes + 1};
    int nold = g->nnodes;
    bool changed = false;
    clear_aux(g);
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        resolve_operands(n);
        if (n->sub || ir_ops[n->op].cls == OPC_LEAF)
            continue;
        s.n = n;
        Node *r = rewrite(&s, n);
        if (r && r != n) {
            if (r->id >= nold && !r->label)
                r->label = n->label; /* the replacement carries the user's name */
            replace(&s, n, r);
            changed = true;
        }
    }
    resolve_outputs(g);
    xfree(s.uses);
    return changed;
}

/* ---- common-subexpression elimination ---- */

static bool shape_same(const Shape *a, const Shape *b)
{
    return ir_shape_eq(a, b);
}

static bool attrs_equal(const Attrs *x, const Attrs *y)
{
    if (x->naxes != y->naxes || x->keepdims != y->keepdims || !shape_same(&x->shape, &y->shape))
        return false;
    for (int k = 0; k < x->naxes; k++)
        if (x->axes[k] != y->axes[k])
            return false;
    for (int k = 0; k < IR_MAXRANK; k++)
        if (x->begin[k] != y->begin[k] || x->end[k] != y->end[k] || x->step[k] != y->step[k])
            return false;
    if (memcmp(x->stride, y->stride, sizeof x->stride) || memcmp(x->pad, y->pad, sizeof x->pad) ||
        memcmp(x->window, y->window, sizeof x->window))
        return false;
    if (x->ta != y->ta || x->tb != y->tb || memcmp(&x->value, &y->value, sizeof(double)) ||
        memcmp(&x->alpha, &y->alpha, sizeof(double)) ||
        x->to != y->to || x->depth != y->depth || x->stream != y->stream || x->index != y->index ||
        x->nseq != y->nseq || x->reverse != y->reverse)
        return false;
    if ((x->name == NULL) != (y->name == NULL) || (x->name && strcmp(x->name, y->name)))
        return false;
    return true;
}

static bool cse_candidate(const Node *n)
{
    if (n->sub || ir_op_has(n->op, OPF_RANDOM))
        return false;
    return n->op == OP_CONST || ir_ops[n->op].cls != OPC_LEAF;
}

static bool same_node(const Node *x, const Node *y)
{
    if (x->op != y->op || x->dt != y->dt || x->nin != y->nin || !ir_shape_eq(&x->shape, &y->shape))
        return false;
    for (int j = 0; j < x->nin; j++)
        if (x->in[j] != y->in[j])
            return false;
    return attrs_equal(&x->a, &y->a);
}

static uint64_t node_hash(const Node *n)
{
    uint64_t h = 1469598103934665603ULL;
#define MIX(v) (h = (h ^ (uint64_t)(v)) * 1099511628211ULL)
    MIX(n->op);
    MIX(n->dt);
    for (int j = 0; j < n->nin; j++)
        MIX(n->in[j]->id + 1);
    uint64_t bits;
    memcpy(&bits, &n->a.value, sizeof bits);
    MIX(bits);
    MIX(n->a.naxes);
    for (int k = 0; k < n->shape.rank; k++)
        MIX(n->shape.d[k]);
#undef MIX
    return h;
}

static bool cse(Graph *g)
{
    size_t cap = 16;
    while (cap < 2 * (size_t)g->nnodes)
        cap *= 2;
    Node **tab = xcalloc(cap, sizeof(Node *));
    bool changed = false;
    clear_aux(g);
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        n->id = i;
        resolve_operands(n);
        if (!cse_candidate(n))
            continue;
        size_t k = node_hash(n) & (cap - 1);
        while (tab[k] && !same_node(tab[k], n))
            k = (k + 1) & (cap - 1);
        if (tab[k]) {
            if (!tab[k]->label)
                tab[k]->label = n->label;
            n->aux = tab[k];
            changed = true;
        } else {
            tab[k] = n;
        }
    }
    resolve_outputs(g);
    xfree(tab);
    return changed;
}

bool ps_simplify(Graph *g, Diags *d)
{
    for (int i = 0; i < g->nnodes; i++) /* a loop body is simplified as a graph of its own */
        if (g->nodes[i]->op == OP_LOOP && g->nodes[i]->sub)
            ps_simplify(g->nodes[i]->sub, d);
    for (int iter = 0; iter < 100; iter++) {
        bool changed = rewrite_sweep(g);
        ir_toposort(g);
        changed |= cse(g);
        ir_remove_dead(g);
        if (!changed)
            break;
    }
    return true;
}
