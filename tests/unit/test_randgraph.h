/* The core of the seeded random-graph generators of test_jit_random.c
 * and test_fuse_random.c: a generator state, well-typed leaves whose
 * shapes broadcast to a base shape [N, a, b], recent-value picking, and
 * checked op builders (a failing builder prints its diagnostic and fails
 * the test). Each test adds its own op mix on top. */
#ifndef MODELC_TEST_RANDGRAPH_H
#define MODELC_TEST_RANDGRAPH_H

#include "test_jit_util.h"

enum { RG_MAXVALS = 64 };

typedef struct Gen {
    Rng r;
    Graph *g;
    Diags d;
    DType dt;
    Shape base; /* [N, a, b]: every value broadcasts to it */
    Node *vals[RG_MAXVALS];
    int nvals, nleaves, nouts;
    bool grads;   /* avoid ops without gradient rules in differentiated graphs */
    int window;   /* operands come from the last `window` values */
    int max_drop; /* leaves drop up to this many leading dims of base */
    int cap;      /* values kept (<= RG_MAXVALS) */
    SrcLoc loc;
} Gen;

static const Op rg_unary_ops[] = {OP_NEG, OP_EXP, OP_LOG, OP_TANH, OP_SIGMOID, OP_RELU, OP_ELU,
                                  OP_SQRT, OP_RSQRT, OP_SQUARE, OP_ABS, OP_SIGN, OP_ERF};
static const Op rg_binary_ops[] = {OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_POW, OP_MAXIMUM, OP_MINIMUM,
                                   OP_GT, OP_GE, OP_LT, OP_LE, OP_EQ};

/* A fresh generator over a new graph called name. */
static inline void rg_init(Gen *g, uint64_t state, DType dt, bool grads, int window, int max_drop,
                           int cap, SrcLoc loc, const char *name)
{
    memset(g, 0, sizeof *g);
    g->r.s = state;
    g->dt = dt;
    g->grads = grads;
    g->window = window;
    g->max_drop = max_drop;
    g->cap = cap;
    g->loc = loc;
    g->g = ir_graph_new(name);
    diags_init(&g->d);
}

static inline int pick(Gen *g, int n)
{
    return (int)(tj_rand(&g->r) * n);
}

static inline Node *chk(Gen *g, Node *v)
{
    if (!v)
        diags_print(&g->d, stderr);
    ck_assert_ptr_nonnull(v);
    return v;
}

static inline Node *any_val(Gen *g)
{
    return g->vals[g->nvals - 1 - pick(g, g->nvals < g->window ? g->nvals : g->window)];
}

static inline void push(Gen *g, Node *v)
{
    chk(g, v);
    if (g->nvals < g->cap)
        g->vals[g->nvals++] = v;
}

static inline Node *un(Gen *g, Op op, Node *x)
{
    return chk(g, ir_unary(g->g, op, x, g->loc, &g->d));
}

static inline Node *bin(Gen *g, Op op, Node *x, Node *y)
{
    return chk(g, ir_binary(g->g, op, x, y, g->loc, &g->d));
}

static inline Node *op1(Gen *g, Op op, Node *x, const Attrs *a)
{
    return chk(g, ir_op(g->g, op, &x, 1, a, g->loc, &g->d));
}

static inline Node *op2(Gen *g, Op op, Node *x, Node *y, const Attrs *a)
{
    Node *in[2] = {x, y};
    return chk(g, ir_op(g->g, op, in, 2, a, g->loc, &g->d));
}

static inline Node *k(Gen *g, double v)
{
    return ir_const(g->g, g->dt, v, g->loc);
}

/* A shape that broadcasts to base: a suffix of it with some dims 1. */
static inline Shape sub_shape(Gen *g)
{
    int drop = pick(g, 3) == 0 ? 1 + pick(g, g->max_drop) : 0;
    Shape s = ir_shape0();
    for (int i = drop; i < g->base.rank; i++)
        s.d[s.rank++] = pick(g, 4) == 0 ? 1 : g->base.d[i];
    return s;
}

/* A new parameter or input v<k> of a sub-shape of base. */
static inline Node *leaf(Gen *g)
{
    char name[32];
    snprintf(name, sizeof name, "v%d", g->nleaves++);
    Shape s = sub_shape(g);
    if (pick(g, 2))
        return ir_param(g->g, name, g->dt, s, (Init){INIT_ZEROS, 0, 0}, true, ROLE_WEIGHT, g->loc);
    return ir_input(g->g, name, g->dt, s, g->loc);
}

/* x*x + c: keeps log, sqrt, rsqrt, pow bases and divisors in their domain */
static inline Node *positive(Gen *g, Node *x, double c)
{
    return bin(g, OP_ADD, un(g, OP_SQUARE, x), k(g, c));
}

static inline Node *reshape(Gen *g, Node *x, Shape s)
{
    Attrs a = ir_attrs();
    a.shape = s;
    return op1(g, OP_RESHAPE, x, &a);
}

/* x broadcast to the base shape (an explicit broadcast op) */
static inline Node *full(Gen *g, Node *x)
{
    if (ir_shape_eq(&x->shape, &g->base))
        return x;
    Attrs a = ir_attrs();
    a.shape = g->base;
    return op1(g, OP_BROADCAST, x, &a);
}

/* A random cyclic permutation of a rank-3 value's axes (a) and its
 * inverse (back), as transpose attributes. */
static inline void rg_perm3(Gen *g, Attrs *a, Attrs *back)
{
    *a = ir_attrs();
    *back = ir_attrs();
    int perm[3] = {1, 2, 0};
    if (pick(g, 2)) {
        perm[0] = 2;
        perm[1] = 0;
        perm[2] = 1;
    }
    a->naxes = back->naxes = 3;
    for (int i = 0; i < 3; i++) {
        a->axes[i] = perm[i];
        back->axes[perm[i]] = i;
    }
}

/* A random unary op on a recent value, its operand kept in the op's
 * domain (elu's alpha: value). */
static inline Node *rg_unary(Gen *g, double value)
{
    Op op = rg_unary_ops[pick(g, ARRAY_LEN(rg_unary_ops))];
    if (g->grads && op == OP_SIGN)
        op = OP_TANH;
    Node *x = any_val(g);
    if (op == OP_LOG || op == OP_SQRT || op == OP_RSQRT)
        x = positive(g, x, 0.5);
    if (op == OP_EXP)
        x = un(g, OP_TANH, x);
    Attrs a = ir_attrs();
    a.value = value;
    return op1(g, op, x, &a);
}

#endif
