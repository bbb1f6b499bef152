/* Every op of the table, JIT against the reference interpreter: each case
 * builds a one-op graph in f32 and in f64, runs it for N = 3, 1 and 0 on
 * random data (and on NaN/inf/zero-laden data for the elementwise and
 * reduction ops), then differentiates sum(op(...) * r) and compares the
 * loss and every gradient. The test fails when an op of the table has no
 * case. */
#include "test_jit_util.h"

#include "passes/passes.h"

static SrcLoc TL = {"t.mdl", 2, 3};

enum { MAXLEAF = 8 };

typedef struct T {
    Graph *g;
    Diags d;
    DType dt;
    LeafSpec spec[MAXLEAF];
    int nspec;
} T;

/* TOL_WINO: a 3x3 stride-1 f32 convolution with 16 or more channels each
 * way, which runs as Winograd F(4x4,3x3) (runtime/conv_winograd.c): its
 * error is about 15 times the direct loops' and scales with the largest
 * sums, not with each element (docs/ops.md, "Winograd convolutions"), so
 * TOL_BLAS plus 2e-5 times the largest expected element (the worst case
 * here is 5.3e-6 times it); TOL_BLAS with MODELC_CONV_WINOGRAD=0 or 2,
 * and in f64. */
typedef enum { TOL_EXACT, TOL_MATH, TOL_SUM, TOL_BLAS, TOL_WINO } TolKind;

typedef struct Case {
    const char *name;
    Op op;
    Node *(*build)(T *t);
    TolKind tol;
    bool specials; /* also run on special values */
    bool nograd;
} Case;

/* ---- building ---- */

static Node *leaf(T *t, Node *n, VKind k, double lo, double hi)
{
    MC_ASSERT(t->nspec < MAXLEAF);
    t->spec[t->nspec++] = (LeafSpec){n->a.name, k, lo, hi};
    return n;
}

/* A trainable parameter (differentiated by autodiff). */
static Node *P(T *t, const char *name, Shape s, VKind k, double lo, double hi)
{
    return leaf(t, ir_param(t->g, name, t->dt, s, (Init){INIT_ZEROS, 0, 0}, true, ROLE_WEIGHT, TL), k, lo, hi);
}

/* An input (data, not differentiated). */
static Node *X(T *t, const char *name, DType dt, Shape s, VKind k, double lo, double hi)
{
    return leaf(t, ir_input(t->g, name, dt, s, TL), k, lo, hi);
}

static Shape S(int rank, int64_t a, int64_t b, int64_t c, int64_t e)
{
    int64_t d[4] = {a, b, c, e};
    return ir_shape(rank, d);
}

#define NB IR_DIM_N

static Node *OP1(T *t, Op op, Node *x, const Attrs *a)
{
    return ir_op(t->g, op, &x, 1, a, TL, &t->d);
}

static Node *OP2(T *t, Op op, Node *x, Node *y, const Attrs *a)
{
    Node *in[2] = {x, y};
    return ir_op(t->g, op, in, 2, a, TL, &t->d);
}

static Node *U(T *t, Op op, VKind k, double lo, double hi)
{
    return ir_unary(t->g, op, P(t, "x", S(2, NB, 5, 0, 0), k, lo, hi), TL, &t->d);
}

/* ---- elementwise ---- */

static Node *c_neg(T *t) { return U(t, OP_NEG, V_UNIF, -2, 2); }
static Node *c_exp(T *t) { return U(t, OP_EXP, V_UNIF, -5, 5); }
static Node *c_log(T *t) { return U(t, OP_LOG, V_UNIF, 0.1, 4); }
static Node *c_tanh(T *t) { return U(t, OP_TANH, V_UNIF, -3, 3); }
static Node *c_sigmoid(T *t) { return U(t, OP_SIGMOID, V_UNIF, -20, 20); }
static Node *c_relu(T *t) { return U(t, OP_RELU, V_SIGNED, 0.1, 2); }
static Node *c_sqrt(T *t) { return U(t, OP_SQRT, V_UNIF, 0.1, 4); }
static Node *c_rsqrt(T *t) { return U(t, OP_RSQRT, V_UNIF, 0.1, 4); }
static Node *c_square(T *t) { return U(t, OP_SQUARE, V_UNIF, -2, 2); }
static Node *c_abs(T *t) { return U(t, OP_ABS, V_SIGNED, 0.1, 2); }
static Node *c_erf(T *t) { return U(t, OP_ERF, V_UNIF, -4, 4); }
static Node *c_sign(T *t) { return U(t, OP_SIGN, V_INT, -2, 2); }

static Node *c_elu(T *t)
{
    Attrs a = ir_attrs();
    a.value = 0.7;
    return OP1(t, OP_ELU, P(t, "x", S(2, NB, 5, 0, 0), V_SIGNED, 0.1, 3), &a);
}

/* to the other float type and back */
static Node *c_cast(T *t)
{
    Attrs a = ir_attrs();
    a.to = t->dt == DT_F32 ? DT_F64 : DT_F32;
    Node *y = OP1(t, OP_CAST, P(t, "x", S(2, NB, 5, 0, 0), V_UNIF, -3, 3), &a);
    y = ir_binary(t->g, OP_MUL, y, ir_const(t->g, a.to, 1.5, TL), TL, &t->d);
    a.to = t->dt;
    return OP1(t, OP_CAST, y, &a);
}

/* float -> i32 (truncation, saturation, NaN) and i32 -> float */
static Node *c_cast_i32(T *t)
{
    Attrs a = ir_attrs();
    a.to = DT_I32;
    Node *x = X(t, "x", t->dt, S(2, NB, 6, 0, 0), V_UNIF, -5e9, 5e9);
    Node *i = OP1(t, OP_CAST, x, &a);
    Node *j = X(t, "j", DT_I32, S(2, NB, 6, 0, 0), V_INT, -100000, 100000);
    a.to = t->dt;
    Node *f = OP1(t, OP_CAST, i, &a);
    return ir_binary(t->g, OP_ADD, f, OP1(t, OP_CAST, j, &a), TL, &t->d);
}

static Node *bin(T *t, Op op, VKind ka, double la, double ha, VKind kb, double lb, double hb)
{
    Node *x = P(t, "a", S(3, NB, 3, 4, 0), ka, la, ha);
    Node *y = P(t, "b", S(2, 3, 1, 0, 0), kb, lb, hb);
    return ir_binary(t->g, op, x, y, TL, &t->d);
}

static Node *c_add(T *t) { return bin(t, OP_ADD, V_UNIF, -2, 2, V_UNIF, -2, 2); }
static Node *c_sub(T *t) { return bin(t, OP_SUB, V_UNIF, -2, 2, V_UNIF, -2, 2); }
static Node *c_mul(T *t) { return bin(t, OP_MUL, V_UNIF, -2, 2, V_UNIF, -2, 2); }
static Node *c_div(T *t) { return bin(t, OP_DIV, V_UNIF, -2, 2, V_SIGNED, 0.5, 2); }
static Node *c_pow(T *t) { return bin(t, OP_POW, V_UNIF, 0.5, 2, V_UNIF, -2, 2); }
static Node *c_maximum(T *t) { return bin(t, OP_MAXIMUM, V_INT, -3, 3, V_INT, -3, 3); }
static Node *c_minimum(T *t) { return bin(t, OP_MINIMUM, V_INT, -3, 3, V_INT, -3, 3); }
static Node *c_gt(T *t) { return bin(t, OP_GT, V_INT, -2, 2, V_INT, -2, 2); }
static Node *c_ge(T *t) { return bin(t, OP_GE, V_INT, -2, 2, V_INT, -2, 2); }
static Node *c_lt(T *t) { return bin(t, OP_LT, V_INT, -2, 2, V_INT, -2, 2); }
static Node *c_le(T *t) { return bin(t, OP_LE, V_INT, -2, 2, V_INT, -2, 2); }
static Node *c_eq(T *t) { return bin(t, OP_EQ, V_INT, -2, 2, V_INT, -2, 2); }

/* [N,1] and [4] against [N,4]: both operands broadcast */
static Node *c_add_both(T *t)
{
    Node *x = P(t, "a", S(2, NB, 1, 0, 0), V_UNIF, -2, 2);
    Node *y = P(t, "b", S(1, 4, 0, 0, 0), V_UNIF, -2, 2);
    return ir_binary(t->g, OP_ADD, x, y, TL, &t->d);
}

static Node *c_select(T *t)
{
    Node *in[3] = {X(t, "c", t->dt, S(2, NB, 4, 0, 0), V_MASK, 0, 1), P(t, "a", S(2, NB, 1, 0, 0), V_UNIF, -2, 2),
                   P(t, "b", S(1, 4, 0, 0, 0), V_UNIF, -2, 2)};
    return ir_op(t->g, OP_SELECT, in, 3, NULL, TL, &t->d);
}

/* ---- reductions ---- */

static Node *red(T *t, Op op, Shape s, int naxes, int a0, int a1, bool keep)
{
    Attrs a = ir_attrs();
    a.naxes = naxes;
    a.axes[0] = a0;
    a.axes[1] = a1;
    a.keepdims = keep;
    return OP1(t, op, P(t, "x", s, V_UNIF, -2, 2), &a);
}

static Node *c_sum_inner(T *t) { return red(t, OP_REDUCE_SUM, S(3, NB, 3, 37, 0), 1, 2, 0, false); }
static Node *c_sum_outer(T *t) { return red(t, OP_REDUCE_SUM, S(3, NB, 3, 4, 0), 1, 0, 0, true); }
static Node *c_sum_mid(T *t) { return red(t, OP_REDUCE_SUM, S(3, NB, 3, 4, 0), 2, 0, 2, false); }
static Node *c_sum_all(T *t) { return red(t, OP_REDUCE_SUM, S(2, NB, 19, 0, 0), 2, 0, 1, false); }
static Node *c_mean_inner(T *t) { return red(t, OP_REDUCE_MEAN, S(3, NB, 3, 4, 0), 2, 1, 2, true); }
static Node *c_mean_outer(T *t) { return red(t, OP_REDUCE_MEAN, S(3, NB, 3, 4, 0), 1, 0, 0, false); }
static Node *c_max_inner(T *t) { return red(t, OP_REDUCE_MAX, S(3, NB, 3, 4, 0), 1, 2, 0, false); }
static Node *c_max_outer(T *t) { return red(t, OP_REDUCE_MAX, S(3, NB, 3, 4, 0), 2, 0, 1, true); }
static Node *c_argmax_last(T *t) { return red(t, OP_ARGMAX, S(3, NB, 3, 4, 0), 1, 2, 0, false); }
static Node *c_argmax_batch(T *t) { return red(t, OP_ARGMAX, S(2, NB, 4, 0, 0), 1, 0, 0, true); }

/* ties: the first maximum wins */
static Node *c_argmax_ties(T *t)
{
    Attrs a = ir_attrs();
    a.naxes = 1;
    a.axes[0] = 1;
    return OP1(t, OP_ARGMAX, X(t, "x", t->dt, S(2, NB, 6, 0, 0), V_INT, 0, 2), &a);
}

/* ---- shape ops ---- */

static Node *c_broadcast(T *t)
{
    Attrs a = ir_attrs();
    a.shape = S(3, NB, 3, 4, 0);
    Node *x = OP1(t, OP_BROADCAST, P(t, "x", S(2, 3, 1, 0, 0), V_UNIF, -2, 2), &a);
    return ir_binary(t->g, OP_MUL, x, X(t, "y", t->dt, S(3, NB, 1, 4, 0), V_UNIF, -2, 2), TL, &t->d);
}

static Node *c_reshape(T *t)
{
    Attrs a = ir_attrs();
    a.shape = S(2, NB, 12, 0, 0);
    return OP1(t, OP_RESHAPE, P(t, "x", S(3, NB, 3, 4, 0), V_UNIF, -2, 2), &a);
}

/* a reshape read by an elementwise op and a reduction */
static Node *c_reshape_use(T *t)
{
    Attrs a = ir_attrs();
    a.shape = S(3, 2, NB, 6, 0);
    Node *r = OP1(t, OP_RESHAPE, ir_unary(t->g, OP_TANH, P(t, "x", S(3, NB, 3, 4, 0), V_UNIF, -2, 2), TL, &t->d), &a);
    Attrs s = ir_attrs();
    s.naxes = 1;
    s.axes[0] = 2;
    Node *m = OP1(t, OP_REDUCE_SUM, r, &s);
    return ir_binary(t->g, OP_MUL, r, OP1(t, OP_RESHAPE, m, &(Attrs){.shape = S(3, 2, NB, 1, 0)}), TL, &t->d);
}

static Node *c_transpose(T *t)
{
    Attrs a = ir_attrs();
    a.naxes = 3;
    a.axes[0] = 2;
    a.axes[1] = 0;
    a.axes[2] = 1;
    return OP1(t, OP_TRANSPOSE, P(t, "x", S(3, NB, 3, 4, 0), V_UNIF, -2, 2), &a);
}

static Node *c_transpose_i32(T *t)
{
    Attrs a = ir_attrs();
    a.naxes = 2;
    a.axes[0] = 1;
    a.axes[1] = 0;
    Node *y = OP1(t, OP_TRANSPOSE, X(t, "x", DT_I32, S(2, NB, 3, 0, 0), V_INT, -9, 9), &a);
    a.to = t->dt;
    return OP1(t, OP_CAST, y, &a);
}

static Attrs slice_attrs(void)
{
    Attrs a = ir_attrs();
    a.end[0] = INT64_MAX;
    a.begin[1] = 1;
    a.end[1] = 5;
    a.step[1] = 2;
    a.begin[2] = 0;
    a.end[2] = 3;
    a.step[2] = 2;
    return a;
}

static Node *c_slice(T *t)
{
    Attrs a = slice_attrs();
    return OP1(t, OP_SLICE, P(t, "x", S(3, NB, 5, 4, 0), V_UNIF, -2, 2), &a);
}

/* a fixed range of the batch axis: fails for N < 3 */
static Node *c_slice_batch(T *t)
{
    Attrs a = ir_attrs();
    a.begin[0] = 1;
    a.end[0] = 3;
    a.end[1] = INT64_MAX;
    return OP1(t, OP_SLICE, P(t, "x", S(2, NB, 3, 0, 0), V_UNIF, -2, 2), &a);
}

static Node *c_slice_grad(T *t)
{
    Attrs a = slice_attrs();
    a.shape = S(3, NB, 5, 4, 0);
    return OP1(t, OP_SLICE_GRAD, P(t, "dy", S(3, NB, 2, 2, 0), V_UNIF, -2, 2), &a);
}

static Node *c_concat(T *t)
{
    Attrs a = ir_attrs();
    a.axes[0] = 1;
    Node *in[3] = {P(t, "a", S(3, NB, 2, 3, 0), V_UNIF, -2, 2), P(t, "b", S(3, NB, 1, 3, 0), V_UNIF, -2, 2),
                   P(t, "c", S(3, NB, 3, 3, 0), V_UNIF, -2, 2)};
    return ir_op(t->g, OP_CONCAT, in, 3, &a, TL, &t->d);
}

static Node *c_concat_last(T *t)
{
    Attrs a = ir_attrs();
    a.axes[0] = 1;
    Node *in[2] = {P(t, "a", S(2, NB, 2, 0, 0), V_UNIF, -2, 2), P(t, "b", S(2, NB, 5, 0, 0), V_UNIF, -2, 2)};
    return ir_op(t->g, OP_CONCAT, in, 2, &a, TL, &t->d);
}

/* ---- loops ---- */

/* A two-state cell over h, c [N,5], x_t [N,3], w [3,5], u [5,5]:
 * s = x_t w + h u, c' = c * sigmoid(s) + tanh(s), h' = tanh(c') * sigmoid(s);
 * both carried, h' also per step. */
static Node *cell_loop(T *t, int64_t steps, bool reverse)
{
    Graph *b = ir_graph_new("cell");
    Node *h = ir_input(b, "h", t->dt, S(2, NB, 5, 0, 0), TL), *c = ir_input(b, "c", t->dt, S(2, NB, 5, 0, 0), TL);
    Node *x = ir_input(b, "x", t->dt, S(2, NB, 3, 0, 0), TL);
    Node *w = ir_input(b, "w", t->dt, S(2, 3, 5, 0, 0), TL), *u = ir_input(b, "u", t->dt, S(2, 5, 5, 0, 0), TL);
    Node *s = ir_binary(b, OP_ADD, ir_binary(b, OP_MATMUL, x, w, TL, &t->d), ir_binary(b, OP_MATMUL, h, u, TL, &t->d),
                        TL, &t->d);
    Node *g = ir_unary(b, OP_SIGMOID, s, TL, &t->d);
    Node *cn = ir_binary(b, OP_ADD, ir_binary(b, OP_MUL, c, g, TL, &t->d), ir_unary(b, OP_TANH, s, TL, &t->d), TL,
                         &t->d);
    Node *hn = ir_binary(b, OP_MUL, ir_unary(b, OP_TANH, cn, TL, &t->d), g, TL, &t->d);
    ir_add_output(b, OUT_UPDATE, NULL, hn, h, false);
    ir_add_output(b, OUT_UPDATE, NULL, cn, c, false);
    ir_add_output(b, OUT_VALUE, NULL, hn, NULL, false);
    Node *in[5] = {P(t, "h0", S(2, NB, 5, 0, 0), V_UNIF, -1, 1), P(t, "c0", S(2, NB, 5, 0, 0), V_UNIF, -1, 1),
                   P(t, "x", S(3, NB, steps, 3, 0), V_UNIF, -1, 1), P(t, "w", S(2, 3, 5, 0, 0), V_UNIF, -0.8, 0.8),
                   P(t, "u", S(2, 5, 5, 0, 0), V_UNIF, -0.6, 0.6)};
    return ir_loop(t->g, b, in, 5, 1, reverse, TL, &t->d);
}

/* Seven steps; the states after each step (result 2). */
static Node *c_loop_steps(T *t)
{
    Node *l = cell_loop(t, 7, false);
    Attrs a = ir_attrs();
    a.index = 2;
    return l ? ir_op(t->g, OP_RESULT, &l, 1, &a, TL, &t->d) : NULL;
}

/* One step backwards; h times the final c (result 1). */
static Node *c_loop_one_step(T *t)
{
    Node *l = cell_loop(t, 1, true);
    Attrs a = ir_attrs();
    a.index = 1;
    return l ? ir_binary(t->g, OP_MUL, l, ir_op(t->g, OP_RESULT, &l, 1, &a, TL, &t->d), TL, &t->d) : NULL;
}

/* ---- matmul, conv, pool ---- */

static Node *mm(T *t, bool ta, bool tb)
{
    Attrs a = ir_attrs();
    a.ta = ta;
    a.tb = tb;
    Node *x = P(t, "a", ta ? S(2, 7, NB, 0, 0) : S(2, NB, 7, 0, 0), V_UNIF, -1, 1);
    Node *y = P(t, "b", tb ? S(2, 5, 7, 0, 0) : S(2, 7, 5, 0, 0), V_UNIF, -1, 1);
    return OP2(t, OP_MATMUL, x, y, &a);
}

static Node *c_matmul(T *t) { return mm(t, false, false); }
static Node *c_matmul_ta(T *t) { return mm(t, true, false); }
static Node *c_matmul_tb(T *t) { return mm(t, false, true); }
static Node *c_matmul_tatb(T *t) { return mm(t, true, true); }

/* x^T @ dy: the contracted size is N */
static Node *c_matmul_over_n(T *t)
{
    Attrs a = ir_attrs();
    a.ta = true;
    return OP2(t, OP_MATMUL, P(t, "a", S(2, NB, 4, 0, 0), V_UNIF, -1, 1), P(t, "b", S(2, NB, 3, 0, 0), V_UNIF, -1, 1), &a);
}

static Attrs win(int kh, int kw, int sh, int sw, int pt, int pb, int pl, int pr)
{
    Attrs a = ir_attrs();
    a.window[0] = kh;
    a.window[1] = kw;
    a.stride[0] = sh;
    a.stride[1] = sw;
    a.pad[0] = pt;
    a.pad[1] = pb;
    a.pad[2] = pl;
    a.pad[3] = pr;
    return a;
}

/* conv_same, conv_strided and the grad cases below have at most
 * RT_CONV_FEW_OUT output channels: direct loops. */
static Node *c_conv_same(T *t)
{
    Attrs a = win(1, 1, 1, 1, 1, 1, 1, 1);
    return OP2(t, OP_CONV2D, P(t, "x", S(4, NB, 6, 5, 2), V_UNIF, -1, 1), P(t, "k", S(4, 3, 3, 2, 4), V_UNIF, -1, 1), &a);
}

static Node *c_conv_strided(T *t)
{
    Attrs a = win(1, 1, 2, 3, 0, 1, 2, 0);
    return OP2(t, OP_CONV2D, P(t, "x", S(4, NB, 7, 8, 3), V_UNIF, -1, 1), P(t, "k", S(4, 3, 2, 3, 2), V_UNIF, -1, 1), &a);
}

static Node *c_conv_1x1(T *t)
{
    Attrs a = win(1, 1, 1, 1, 0, 0, 0, 0);
    return OP2(t, OP_CONV2D, P(t, "x", S(4, NB, 4, 3, 5), V_UNIF, -1, 1), P(t, "k", S(4, 1, 1, 5, 3), V_UNIF, -1, 1), &a);
}

static Node *c_conv_grad_input(T *t)
{
    Attrs a = win(1, 1, 2, 2, 1, 0, 1, 1);
    a.shape = S(4, NB, 6, 5, 2);
    return OP2(t, OP_CONV2D_GRAD_INPUT, P(t, "dy", S(4, NB, 3, 3, 4), V_UNIF, -1, 1),
               P(t, "k", S(4, 3, 3, 2, 4), V_UNIF, -1, 1), &a);
}

static Node *c_conv_grad_kernel(T *t)
{
    Attrs a = win(1, 1, 2, 2, 1, 0, 1, 1);
    a.shape = S(4, 3, 3, 2, 4);
    return OP2(t, OP_CONV2D_GRAD_KERNEL, P(t, "x", S(4, NB, 6, 5, 2), V_UNIF, -1, 1),
               P(t, "dy", S(4, NB, 3, 3, 4), V_UNIF, -1, 1), &a);
}

/* More than RT_CONV_FEW_OUT output channels: im2col/col2im + GEMM. */
static Node *c_conv_wide(T *t)
{
    Attrs a = win(1, 1, 2, 1, 1, 0, 2, 1);
    return OP2(t, OP_CONV2D, P(t, "x", S(4, NB, 7, 6, 3), V_UNIF, -1, 1), P(t, "k", S(4, 3, 4, 3, 7), V_UNIF, -1, 1), &a);
}

static Node *c_conv_grad_input_wide(T *t)
{
    Attrs a = win(1, 1, 2, 2, 1, 0, 1, 1);
    a.shape = S(4, NB, 6, 5, 3);
    return OP2(t, OP_CONV2D_GRAD_INPUT, P(t, "dy", S(4, NB, 3, 3, 6), V_UNIF, -1, 1),
               P(t, "k", S(4, 3, 3, 3, 6), V_UNIF, -1, 1), &a);
}

static Node *c_conv_grad_kernel_wide(T *t)
{
    Attrs a = win(1, 1, 2, 2, 1, 0, 1, 1);
    a.shape = S(4, 3, 3, 3, 6);
    return OP2(t, OP_CONV2D_GRAD_KERNEL, P(t, "x", S(4, NB, 6, 5, 3), V_UNIF, -1, 1),
               P(t, "dy", S(4, NB, 3, 3, 6), V_UNIF, -1, 1), &a);
}

/* Stride 1 with at least 8 input channels and more than
 * RT_CONV_FEW_OUT outputs: GEMM + col2im per image, with symmetric,
 * asymmetric, no and wide padding. */
static Node *grad_input(T *t, Attrs a, Shape x, Shape dy, Shape k)
{
    a.shape = x;
    return OP2(t, OP_CONV2D_GRAD_INPUT, P(t, "dy", dy, V_UNIF, -1, 1), P(t, "k", k, V_UNIF, -1, 1), &a);
}

/* A convolution of x by a kernel of shape k, and the kernel gradient of
 * one from x and dy, with the window attributes a. */
static Node *conv(T *t, Attrs a, Shape x, Shape k)
{
    return OP2(t, OP_CONV2D, P(t, "x", x, V_UNIF, -1, 1), P(t, "k", k, V_UNIF, -1, 1), &a);
}

static Node *grad_kernel(T *t, Attrs a, Shape x, Shape dy, Shape k)
{
    a.shape = k;
    return OP2(t, OP_CONV2D_GRAD_KERNEL, P(t, "x", x, V_UNIF, -1, 1), P(t, "dy", dy, V_UNIF, -1, 1), &a);
}

static Node *c_conv_grad_input_s1(T *t)
{
    return grad_input(t, win(1, 1, 1, 1, 1, 1, 1, 1), S(4, NB, 5, 6, 8), S(4, NB, 5, 6, 9), S(4, 3, 3, 8, 9));
}

static Node *c_conv_grad_input_s1_asym(T *t)
{
    return grad_input(t, win(1, 1, 1, 1, 2, 0, 0, 1), S(4, NB, 6, 5, 10), S(4, NB, 6, 5, 6), S(4, 3, 2, 10, 6));
}

static Node *c_conv_grad_input_s1_valid(T *t)
{
    return grad_input(t, win(1, 1, 1, 1, 0, 0, 0, 0), S(4, NB, 7, 6, 8), S(4, NB, 5, 4, 5), S(4, 3, 3, 8, 5));
}

/* padding wider than the kernel: windows wholly in the padding */
static Node *c_conv_grad_input_s1_widepad(T *t)
{
    return grad_input(t, win(1, 1, 1, 1, 3, 3, 4, 3), S(4, NB, 4, 4, 8), S(4, NB, 8, 9, 5), S(4, 3, 3, 8, 5));
}

/* The forward convolution's im2col with the same geometry (stride 1,
 * wide padding: rows and runs clipped on both sides). */
static Node *c_conv_widepad(T *t)
{
    Attrs a = win(1, 1, 1, 1, 3, 3, 4, 3);
    return OP2(t, OP_CONV2D, P(t, "x", S(4, NB, 4, 4, 8), V_UNIF, -1, 1), P(t, "k", S(4, 3, 3, 8, 5), V_UNIF, -1, 1), &a);
}

/* f32 with more than RT_CONV_FEW_OUT outputs runs register-blocked
 * (runtime/conv_blocked.c; f64 goes through im2col): rows wide enough for
 * full pixel blocks, their halves and quarters and single border pixels,
 * channels not a multiple of any vector width, output channels in a full
 * block of four vectors and a narrower last one, stride 2, 'valid'. */
static Node *c_conv_blocked_same(T *t)
{
    return conv(t, win(1, 1, 1, 1, 1, 1, 1, 1), S(4, NB, 5, 17, 19), S(4, 3, 3, 19, 70));
}

static Node *c_conv_blocked_s2(T *t)
{
    return conv(t, win(1, 1, 2, 2, 1, 1, 0, 1), S(4, NB, 11, 16, 12), S(4, 3, 3, 12, 33));
}

static Node *c_conv_blocked_valid(T *t)
{
    return conv(t, win(1, 1, 1, 1, 0, 0, 0, 0), S(4, NB, 6, 23, 5), S(4, 2, 3, 5, 9));
}

static Node *c_conv_blocked_grad_input(T *t)
{
    return grad_input(t, win(1, 1, 1, 1, 1, 1, 1, 1), S(4, NB, 5, 17, 19), S(4, NB, 5, 17, 37),
                      S(4, 3, 3, 19, 37));
}

static Node *c_conv_blocked_grad_input_valid(T *t)
{
    return grad_input(t, win(1, 1, 1, 1, 0, 0, 0, 0), S(4, NB, 6, 15, 9), S(4, NB, 4, 14, 20),
                      S(4, 3, 2, 9, 20));
}

static Node *c_conv_blocked_grad_kernel(T *t)
{
    return grad_kernel(t, win(1, 1, 1, 1, 1, 1, 1, 1), S(4, NB, 5, 17, 19), S(4, NB, 5, 17, 70), S(4, 3, 3, 19, 70));
}

static Node *c_conv_blocked_grad_kernel_s2(T *t)
{
    return grad_kernel(t, win(1, 1, 2, 2, 1, 1, 0, 1), S(4, NB, 11, 16, 12), S(4, NB, 6, 8, 33), S(4, 3, 3, 12, 33));
}

/* At most RT_CONV_FEW_OUT outputs in f32: vectors along the input
 * channels (37: full vectors and a partial one, full chunks and single
 * vectors), 'same' and stride 2; the input gradient of such a
 * convolution as a blocked one with one input channel. */
static Node *c_conv_few_wide_c(T *t)
{
    return conv(t, win(1, 1, 1, 1, 1, 1, 1, 1), S(4, NB, 5, 13, 37), S(4, 3, 3, 37, 1));
}

static Node *c_conv_few_s2(T *t)
{
    return conv(t, win(1, 1, 2, 2, 1, 0, 1, 1), S(4, NB, 7, 12, 20), S(4, 3, 3, 20, 3));
}

static Node *c_conv_few_grad_kernel_wide_c(T *t)
{
    return grad_kernel(t, win(1, 1, 1, 1, 1, 1, 1, 1), S(4, NB, 5, 13, 37), S(4, NB, 5, 13, 1), S(4, 3, 3, 37, 1));
}

static Node *c_conv_few_grad_kernel_s2(T *t)
{
    return grad_kernel(t, win(1, 1, 2, 2, 1, 0, 1, 1), S(4, NB, 7, 12, 20), S(4, NB, 3, 6, 3), S(4, 3, 3, 20, 3));
}

static Node *c_conv_few_grad_input_wide_c(T *t)
{
    return grad_input(t, win(1, 1, 1, 1, 1, 1, 1, 1), S(4, NB, 5, 13, 37), S(4, NB, 5, 13, 1), S(4, 3, 3, 37, 1));
}

static Node *c_max_pool(T *t)
{
    Attrs a = win(2, 2, 2, 2, 0, 0, 0, 0);
    return OP1(t, OP_MAX_POOL2D, P(t, "x", S(4, NB, 4, 6, 3), V_UNIF, -1, 1), &a);
}

/* overlapping windows, ties, and padding-only windows (-inf) */
static Node *c_max_pool_pad(T *t)
{
    Attrs a = win(2, 2, 1, 2, 2, 1, 2, 2);
    return OP1(t, OP_MAX_POOL2D, X(t, "x", t->dt, S(4, NB, 4, 5, 2), V_INT, -2, 2), &a);
}

static Node *c_max_pool_grad(T *t)
{
    Attrs a = win(3, 3, 1, 2, 1, 1, 1, 1);
    return OP2(t, OP_MAX_POOL2D_GRAD, X(t, "x", t->dt, S(4, NB, 5, 5, 2), V_INT, -2, 2),
               P(t, "dy", S(4, NB, 5, 3, 2), V_UNIF, -1, 1), &a);
}

/* more channels than a vector, overlapping windows, ties, padding */
static Node *c_max_pool_grad_wide(T *t)
{
    Attrs a = win(3, 3, 2, 2, 1, 1, 1, 1);
    return OP2(t, OP_MAX_POOL2D_GRAD, X(t, "x", t->dt, S(4, NB, 7, 6, 19), V_INT, -2, 2),
               P(t, "dy", S(4, NB, 4, 3, 19), V_UNIF, -1, 1), &a);
}

static Node *c_avg_pool(T *t)
{
    Attrs a = win(3, 2, 2, 1, 1, 2, 0, 1);
    return OP1(t, OP_AVG_POOL2D, P(t, "x", S(4, NB, 5, 6, 3), V_UNIF, -1, 1), &a);
}

static Node *c_avg_pool_grad(T *t)
{
    Attrs a = win(3, 3, 2, 2, 1, 1, 1, 1);
    a.shape = S(4, NB, 5, 4, 2);
    return OP1(t, OP_AVG_POOL2D_GRAD, P(t, "dy", S(4, NB, 3, 2, 2), V_UNIF, -1, 1), &a);
}

/* ---- softmax, one_hot, dropout, leaves ---- */

static Node *axis_op(T *t, Op op, Shape s, int axis)
{
    Attrs a = ir_attrs();
    a.axes[0] = axis;
    return OP1(t, op, P(t, "x", s, V_UNIF, -4, 4), &a);
}

static Node *c_softmax(T *t) { return axis_op(t, OP_SOFTMAX, S(2, NB, 10, 0, 0), 1); }
static Node *c_softmax_mid(T *t) { return axis_op(t, OP_SOFTMAX, S(3, NB, 4, 3, 0), 1); }
static Node *c_softmax_batch(T *t) { return axis_op(t, OP_SOFTMAX, S(2, NB, 3, 0, 0), 0); }
static Node *c_log_softmax(T *t) { return axis_op(t, OP_LOG_SOFTMAX, S(2, NB, 10, 0, 0), 1); }
static Node *c_log_softmax_mid(T *t) { return axis_op(t, OP_LOG_SOFTMAX, S(3, NB, 4, 3, 0), 1); }

/* ---- softmax cross-entropy rows: (z, t) or (z, gy) along an axis ---- */

static Node *pair_op(T *t, Op op, Node *z, Node *y, int axis)
{
    Attrs a = ir_attrs();
    a.naxes = 1;
    a.axes[0] = axis;
    return OP2(t, op, z, y, &a);
}

/* logits in [-4, 4], soft labels in [0, 1] (rows not summing to 1) */
static Node *xent(T *t, Op op, Shape s, int axis)
{
    return pair_op(t, op, P(t, "z", s, V_UNIF, -4, 4), X(t, "t", t->dt, s, V_UNIF, 0, 1), axis);
}

/* logits of +-1e4 (ties of the maximum, differences of 2e4) */
static Node *xent_big(T *t, Op op)
{
    Shape s = S(2, NB, 10, 0, 0);
    return pair_op(t, op, P(t, "z", s, V_SIGNED, 1e4, 1e4), X(t, "t", t->dt, s, V_SIGNED, 0, 1), 1);
}

/* one logit per row 100 above the others: exp underflows (f32 denormals) */
static Node *xent_dominant(T *t, Op op)
{
    Attrs a = ir_attrs();
    a.depth = 10;
    a.to = t->dt;
    Node *hot = OP1(t, OP_ONE_HOT, X(t, "y", DT_I32, S(1, NB, 0, 0, 0), V_INT, 0, 9), &a);
    hot = ir_binary(t->g, OP_MUL, hot, ir_const(t->g, t->dt, 100, TL), TL, &t->d);
    Shape s = S(2, NB, 10, 0, 0);
    Node *z = ir_binary(t->g, OP_ADD, P(t, "z", s, V_UNIF, -4, 4), hot, TL, &t->d);
    return pair_op(t, op, z, X(t, "t", t->dt, s, V_UNIF, -1, 1), 1);
}

static Node *c_lsm_dot(T *t) { return xent(t, OP_LOG_SOFTMAX_DOT, S(2, NB, 10, 0, 0), 1); }
static Node *c_lsm_dot_wide(T *t) { return xent(t, OP_LOG_SOFTMAX_DOT, S(2, NB, 37, 0, 0), 1); }
static Node *c_lsm_dot_mid(T *t) { return xent(t, OP_LOG_SOFTMAX_DOT, S(3, NB, 4, 3, 0), 1); }
static Node *c_lsm_dot_batch(T *t) { return xent(t, OP_LOG_SOFTMAX_DOT, S(2, NB, 3, 0, 0), 0); }
static Node *c_lsm_dot_big(T *t) { return xent_big(t, OP_LOG_SOFTMAX_DOT); }
static Node *c_lsm_dot_dominant(T *t) { return xent_dominant(t, OP_LOG_SOFTMAX_DOT); }
static Node *c_lsm_grad(T *t) { return xent(t, OP_LOG_SOFTMAX_GRAD, S(2, NB, 10, 0, 0), 1); }
static Node *c_lsm_grad_wide(T *t) { return xent(t, OP_LOG_SOFTMAX_GRAD, S(2, NB, 37, 0, 0), 1); }
static Node *c_lsm_grad_mid(T *t) { return xent(t, OP_LOG_SOFTMAX_GRAD, S(3, NB, 4, 3, 0), 1); }
static Node *c_lsm_grad_batch(T *t) { return xent(t, OP_LOG_SOFTMAX_GRAD, S(2, NB, 3, 0, 0), 0); }
static Node *c_lsm_grad_big(T *t) { return xent_big(t, OP_LOG_SOFTMAX_GRAD); }
static Node *c_lsm_grad_dominant(T *t) { return xent_dominant(t, OP_LOG_SOFTMAX_GRAD); }

static Node *c_one_hot_i32(T *t)
{
    Attrs a = ir_attrs();
    a.depth = 5;
    a.to = t->dt;
    return OP1(t, OP_ONE_HOT, X(t, "y", DT_I32, S(1, NB, 0, 0, 0), V_INT, -1, 6), &a);
}

static Node *c_one_hot_float(T *t)
{
    Attrs a = ir_attrs();
    a.depth = 4;
    a.to = t->dt;
    Node *y = X(t, "y", t->dt, S(2, NB, 3, 0, 0), V_INT, -1, 5);
    y = ir_binary(t->g, OP_MUL, y, ir_const(t->g, t->dt, 0.5, TL), TL, &t->d); /* halves too */
    return OP1(t, OP_ONE_HOT, y, &a);
}

/* rows of a table by i32 ids [N, 3]; the adjoint adds repeated rows */
static Node *c_gather_rows(T *t)
{
    Attrs a = ir_attrs();
    a.naxes = 1;
    Node *ix = X(t, "i", DT_I32, S(2, NB, 3, 0, 0), V_INT, 0, 6);
    return OP2(t, OP_GATHER, P(t, "w", S(2, 7, 5, 0, 0), V_UNIF, -1, 1), ix, &a);
}

/* a middle axis of an N-leading tensor by float indices */
static Node *c_gather_mid(T *t)
{
    Attrs a = ir_attrs();
    a.naxes = 1;
    a.axes[0] = 2;
    Node *ix = X(t, "i", t->dt, S(2, 2, 3, 0, 0), V_INT, 0, 3);
    return OP2(t, OP_GATHER, P(t, "x", S(4, NB, 3, 4, 3), V_UNIF, -1, 1), ix, &a);
}

static Node *c_gather_grad(T *t)
{
    Attrs a = ir_attrs();
    a.naxes = 1;
    a.axes[0] = 1;
    a.shape = S(3, 3, 4, 5, 0);
    Node *ix = X(t, "i", DT_I32, S(1, 7, 0, 0, 0), V_INT, 0, 3);
    return OP2(t, OP_GATHER_GRAD, P(t, "g", S(3, 3, 7, 5, 0), V_UNIF, -1, 1), ix, &a);
}

/* a stack over N times a matrix: one GEMM over the stacked rows */
static Node *c_matmul_stack(T *t)
{
    return OP2(t, OP_MATMUL, P(t, "a", S(3, NB, 3, 5, 0), V_UNIF, -1, 1), P(t, "b", S(2, 5, 4, 0, 0), V_UNIF, -1, 1),
               NULL);
}

/* two stacks over N, the right one transposed */
static Node *c_matmul_stacks(T *t)
{
    Attrs a = ir_attrs();
    a.tb = true;
    return OP2(t, OP_MATMUL, P(t, "a", S(3, NB, 3, 5, 0), V_UNIF, -1, 1), P(t, "b", S(3, NB, 2, 5, 0), V_UNIF, -1, 1),
               &a);
}

/* batch axes [2,1] and [3] broadcast to [2,3]; the left ones transposed */
static Node *c_matmul_bcast(T *t)
{
    Attrs a = ir_attrs();
    a.ta = true;
    return OP2(t, OP_MATMUL, P(t, "a", S(4, 2, 1, 5, 3), V_UNIF, -1, 1), P(t, "b", S(3, 3, 5, 4, 0), V_UNIF, -1, 1),
               &a);
}

static Node *c_dropout(T *t)
{
    Attrs a = ir_attrs();
    a.value = 0.3;
    a.stream = 7;
    Node *x = P(t, "x", S(3, NB, 5, 7, 0), V_UNIF, -1, 1);
    return ir_binary(t->g, OP_MUL, x, OP1(t, OP_DROPOUT_MASK, x, &a), TL, &t->d);
}

/* several RT_DROPOUT_BLOCKs and a partial last block of RNG lanes */
static Node *c_dropout_long(T *t)
{
    Attrs a = ir_attrs();
    a.value = 0.5;
    a.stream = 11;
    Node *x = P(t, "x", S(2, NB, 2901, 0, 0), V_UNIF, -1, 1);
    return ir_binary(t->g, OP_MUL, x, OP1(t, OP_DROPOUT_MASK, x, &a), TL, &t->d);
}

/* the batch statistic of sync_batchnorm, added back to every row: one
 * process, so the mean over the processes is the value itself */
static Node *c_replica_mean(T *t)
{
    Node *m = red(t, OP_REDUCE_MEAN, S(2, NB, 5, 0, 0), 1, 0, 0, false);
    Node *x = X(t, "z", t->dt, S(2, NB, 5, 0, 0), V_UNIF, -1, 1);
    return ir_binary(t->g, OP_SUB, x, OP1(t, OP_REPLICA_MEAN, m, NULL), TL, &t->d);
}

static Node *c_input(T *t) { return X(t, "x", t->dt, S(2, NB, 3, 0, 0), V_UNIF, -1, 1); }
static Node *c_param(T *t) { return P(t, "w", S(2, 2, 3, 0, 0), V_UNIF, -1, 1); }

static Node *c_const(T *t)
{
    Attrs a = ir_attrs();
    a.shape = S(2, 2, 3, 0, 0);
    a.value = -1.25;
    a.to = t->dt;
    Node *c = ir_op(t->g, OP_CONST, NULL, 0, &a, TL, &t->d);
    return ir_binary(t->g, OP_ADD, c, P(t, "w", S(1, 3, 0, 0, 0), V_UNIF, -1, 1), TL, &t->d);
}

/* a constant read by a matmul needs a buffer */
static Node *c_const_matmul(T *t)
{
    Attrs a = ir_attrs();
    a.shape = S(2, 3, 2, 0, 0);
    a.value = 0.5;
    a.to = t->dt;
    Node *c = ir_op(t->g, OP_CONST, NULL, 0, &a, TL, &t->d);
    return OP2(t, OP_MATMUL, P(t, "x", S(2, NB, 3, 0, 0), V_UNIF, -1, 1), c, NULL);
}

/* fused bodies come from IR text (see fused_* tests below) */

static const Case cases[] = {
    {"neg", OP_NEG, c_neg, TOL_EXACT, true, false},
    {"exp", OP_EXP, c_exp, TOL_MATH, true, false},
    {"log", OP_LOG, c_log, TOL_MATH, true, false},
    {"tanh", OP_TANH, c_tanh, TOL_MATH, true, false},
    {"sigmoid", OP_SIGMOID, c_sigmoid, TOL_MATH, true, false},
    {"relu", OP_RELU, c_relu, TOL_EXACT, true, false},
    {"elu", OP_ELU, c_elu, TOL_MATH, true, false},
    {"sqrt", OP_SQRT, c_sqrt, TOL_MATH, true, false},
    {"rsqrt", OP_RSQRT, c_rsqrt, TOL_MATH, true, false},
    {"square", OP_SQUARE, c_square, TOL_EXACT, true, false},
    {"abs", OP_ABS, c_abs, TOL_EXACT, true, false},
    {"erf", OP_ERF, c_erf, TOL_MATH, true, false},
    {"sign", OP_SIGN, c_sign, TOL_EXACT, true, true},
    {"cast", OP_CAST, c_cast, TOL_EXACT, true, false},
    {"cast_i32", OP_CAST, c_cast_i32, TOL_EXACT, true, true},
    {"add", OP_ADD, c_add, TOL_EXACT, true, false},
    {"add_both", OP_ADD, c_add_both, TOL_EXACT, false, false},
    {"sub", OP_SUB, c_sub, TOL_EXACT, true, false},
    {"mul", OP_MUL, c_mul, TOL_EXACT, true, false},
    {"div", OP_DIV, c_div, TOL_EXACT, true, false},
    {"pow", OP_POW, c_pow, TOL_MATH, true, false},
    {"maximum", OP_MAXIMUM, c_maximum, TOL_EXACT, true, false},
    {"minimum", OP_MINIMUM, c_minimum, TOL_EXACT, true, false},
    {"gt", OP_GT, c_gt, TOL_EXACT, true, true},
    {"ge", OP_GE, c_ge, TOL_EXACT, true, true},
    {"lt", OP_LT, c_lt, TOL_EXACT, true, true},
    {"le", OP_LE, c_le, TOL_EXACT, true, true},
    {"eq", OP_EQ, c_eq, TOL_EXACT, true, true},
    {"select", OP_SELECT, c_select, TOL_EXACT, true, false},
    {"reduce_sum_inner", OP_REDUCE_SUM, c_sum_inner, TOL_SUM, true, false},
    {"reduce_sum_outer", OP_REDUCE_SUM, c_sum_outer, TOL_SUM, true, false},
    {"reduce_sum_mid", OP_REDUCE_SUM, c_sum_mid, TOL_SUM, true, false},
    {"reduce_sum_all", OP_REDUCE_SUM, c_sum_all, TOL_SUM, true, false},
    {"reduce_mean_inner", OP_REDUCE_MEAN, c_mean_inner, TOL_SUM, true, false},
    {"reduce_mean_outer", OP_REDUCE_MEAN, c_mean_outer, TOL_SUM, true, false},
    {"reduce_max_inner", OP_REDUCE_MAX, c_max_inner, TOL_EXACT, true, false},
    {"reduce_max_outer", OP_REDUCE_MAX, c_max_outer, TOL_EXACT, true, false},
    {"argmax_last", OP_ARGMAX, c_argmax_last, TOL_EXACT, true, true},
    {"argmax_batch", OP_ARGMAX, c_argmax_batch, TOL_EXACT, true, true},
    {"argmax_ties", OP_ARGMAX, c_argmax_ties, TOL_EXACT, true, true},
    {"broadcast", OP_BROADCAST, c_broadcast, TOL_EXACT, true, false},
    {"reshape", OP_RESHAPE, c_reshape, TOL_EXACT, true, false},
    {"reshape_use", OP_RESHAPE, c_reshape_use, TOL_SUM, false, false},
    {"transpose", OP_TRANSPOSE, c_transpose, TOL_EXACT, true, false},
    {"transpose_i32", OP_TRANSPOSE, c_transpose_i32, TOL_EXACT, false, true},
    {"slice", OP_SLICE, c_slice, TOL_EXACT, true, false},
    {"slice_batch", OP_SLICE, c_slice_batch, TOL_EXACT, false, false},
    {"slice_grad", OP_SLICE_GRAD, c_slice_grad, TOL_EXACT, true, false},
    {"concat", OP_CONCAT, c_concat, TOL_EXACT, true, false},
    {"concat_last", OP_CONCAT, c_concat_last, TOL_EXACT, false, false},
    {"loop, every step", OP_LOOP, c_loop_steps, TOL_BLAS, false, false},
    {"loop backwards, one step", OP_LOOP, c_loop_one_step, TOL_BLAS, false, false},
    {"matmul", OP_MATMUL, c_matmul, TOL_BLAS, false, false},
    {"matmul_ta", OP_MATMUL, c_matmul_ta, TOL_BLAS, false, false},
    {"matmul_tb", OP_MATMUL, c_matmul_tb, TOL_BLAS, false, false},
    {"matmul_ta_tb", OP_MATMUL, c_matmul_tatb, TOL_BLAS, false, false},
    {"matmul_over_n", OP_MATMUL, c_matmul_over_n, TOL_BLAS, false, false},
    {"matmul_stack", OP_MATMUL, c_matmul_stack, TOL_BLAS, false, false},
    {"matmul_stacks", OP_MATMUL, c_matmul_stacks, TOL_BLAS, false, false},
    {"matmul_bcast", OP_MATMUL, c_matmul_bcast, TOL_BLAS, false, false},
    {"conv2d_same", OP_CONV2D, c_conv_same, TOL_BLAS, false, false},
    {"conv2d_strided", OP_CONV2D, c_conv_strided, TOL_BLAS, false, false},
    {"conv2d_1x1", OP_CONV2D, c_conv_1x1, TOL_BLAS, false, false},
    {"conv2d_wide", OP_CONV2D, c_conv_wide, TOL_BLAS, false, false},
    {"conv2d_grad_input", OP_CONV2D_GRAD_INPUT, c_conv_grad_input, TOL_BLAS, false, false},
    {"conv2d_grad_input_wide", OP_CONV2D_GRAD_INPUT, c_conv_grad_input_wide, TOL_BLAS, false, false},
    {"conv2d_grad_kernel_wide", OP_CONV2D_GRAD_KERNEL, c_conv_grad_kernel_wide, TOL_BLAS, false, false},
    {"conv2d_grad_kernel", OP_CONV2D_GRAD_KERNEL, c_conv_grad_kernel, TOL_BLAS, false, false},
    {"conv2d_grad_input_s1", OP_CONV2D_GRAD_INPUT, c_conv_grad_input_s1, TOL_BLAS, false, true},
    {"conv2d_grad_input_s1_asym", OP_CONV2D_GRAD_INPUT, c_conv_grad_input_s1_asym, TOL_BLAS, false, true},
    {"conv2d_grad_input_s1_valid", OP_CONV2D_GRAD_INPUT, c_conv_grad_input_s1_valid, TOL_BLAS, false, true},
    {"conv2d_grad_input_s1_widepad", OP_CONV2D_GRAD_INPUT, c_conv_grad_input_s1_widepad, TOL_BLAS, false, true},
    {"conv2d_widepad", OP_CONV2D, c_conv_widepad, TOL_BLAS, false, true},
    {"conv2d_blocked_same", OP_CONV2D, c_conv_blocked_same, TOL_WINO, false, false},
    {"conv2d_blocked_s2", OP_CONV2D, c_conv_blocked_s2, TOL_BLAS, false, false},
    {"conv2d_blocked_valid", OP_CONV2D, c_conv_blocked_valid, TOL_BLAS, false, true},
    {"conv2d_blocked_grad_input", OP_CONV2D_GRAD_INPUT, c_conv_blocked_grad_input, TOL_WINO, false, true},
    {"conv2d_blocked_grad_input_valid", OP_CONV2D_GRAD_INPUT, c_conv_blocked_grad_input_valid, TOL_BLAS, false,
     true},
    {"conv2d_blocked_grad_kernel", OP_CONV2D_GRAD_KERNEL, c_conv_blocked_grad_kernel, TOL_WINO, false, true},
    {"conv2d_few_wide_c", OP_CONV2D, c_conv_few_wide_c, TOL_BLAS, false, false},
    {"conv2d_few_s2", OP_CONV2D, c_conv_few_s2, TOL_BLAS, false, false},
    {"conv2d_few_grad_kernel_wide_c", OP_CONV2D_GRAD_KERNEL, c_conv_few_grad_kernel_wide_c, TOL_BLAS, false, true},
    {"conv2d_few_grad_kernel_s2", OP_CONV2D_GRAD_KERNEL, c_conv_few_grad_kernel_s2, TOL_BLAS, false, true},
    {"conv2d_few_grad_input_wide_c", OP_CONV2D_GRAD_INPUT, c_conv_few_grad_input_wide_c, TOL_BLAS, false, true},
    {"conv2d_blocked_grad_kernel_s2", OP_CONV2D_GRAD_KERNEL, c_conv_blocked_grad_kernel_s2, TOL_BLAS, false, true},
    {"max_pool2d", OP_MAX_POOL2D, c_max_pool, TOL_EXACT, true, false},
    {"max_pool2d_pad", OP_MAX_POOL2D, c_max_pool_pad, TOL_EXACT, true, true},
    {"max_pool2d_grad", OP_MAX_POOL2D_GRAD, c_max_pool_grad, TOL_EXACT, false, true},
    {"max_pool2d_grad_wide", OP_MAX_POOL2D_GRAD, c_max_pool_grad_wide, TOL_EXACT, true, true},
    {"avg_pool2d", OP_AVG_POOL2D, c_avg_pool, TOL_SUM, false, false},
    {"avg_pool2d_grad", OP_AVG_POOL2D_GRAD, c_avg_pool_grad, TOL_SUM, false, false},
    {"softmax", OP_SOFTMAX, c_softmax, TOL_SUM, true, false},
    {"softmax_mid", OP_SOFTMAX, c_softmax_mid, TOL_SUM, false, false},
    {"softmax_batch", OP_SOFTMAX, c_softmax_batch, TOL_SUM, false, false},
    {"log_softmax", OP_LOG_SOFTMAX, c_log_softmax, TOL_SUM, true, false},
    {"log_softmax_mid", OP_LOG_SOFTMAX, c_log_softmax_mid, TOL_SUM, false, false},
    {"log_softmax_dot", OP_LOG_SOFTMAX_DOT, c_lsm_dot, TOL_SUM, true, true},
    {"log_softmax_dot_wide", OP_LOG_SOFTMAX_DOT, c_lsm_dot_wide, TOL_SUM, false, true},
    {"log_softmax_dot_mid", OP_LOG_SOFTMAX_DOT, c_lsm_dot_mid, TOL_SUM, false, true},
    {"log_softmax_dot_batch", OP_LOG_SOFTMAX_DOT, c_lsm_dot_batch, TOL_SUM, false, true},
    {"log_softmax_dot_big", OP_LOG_SOFTMAX_DOT, c_lsm_dot_big, TOL_SUM, false, true},
    {"log_softmax_dot_dominant", OP_LOG_SOFTMAX_DOT, c_lsm_dot_dominant, TOL_SUM, false, true},
    {"log_softmax_grad", OP_LOG_SOFTMAX_GRAD, c_lsm_grad, TOL_SUM, true, true},
    {"log_softmax_grad_wide", OP_LOG_SOFTMAX_GRAD, c_lsm_grad_wide, TOL_SUM, false, true},
    {"log_softmax_grad_mid", OP_LOG_SOFTMAX_GRAD, c_lsm_grad_mid, TOL_SUM, false, true},
    {"log_softmax_grad_batch", OP_LOG_SOFTMAX_GRAD, c_lsm_grad_batch, TOL_SUM, false, true},
    {"log_softmax_grad_big", OP_LOG_SOFTMAX_GRAD, c_lsm_grad_big, TOL_SUM, false, true},
    {"log_softmax_grad_dominant", OP_LOG_SOFTMAX_GRAD, c_lsm_grad_dominant, TOL_SUM, false, true},
    {"one_hot_i32", OP_ONE_HOT, c_one_hot_i32, TOL_EXACT, false, true},
    {"one_hot_float", OP_ONE_HOT, c_one_hot_float, TOL_EXACT, true, true},
    {"gather_rows", OP_GATHER, c_gather_rows, TOL_EXACT, true, false},
    {"gather_mid", OP_GATHER, c_gather_mid, TOL_EXACT, true, false},
    {"gather_grad", OP_GATHER_GRAD, c_gather_grad, TOL_EXACT, false, false},
    {"dropout_mask", OP_DROPOUT_MASK, c_dropout, TOL_EXACT, false, false},
    {"dropout_mask_long", OP_DROPOUT_MASK, c_dropout_long, TOL_EXACT, false, true},
    {"replica_mean", OP_REPLICA_MEAN, c_replica_mean, TOL_SUM, true, false},
    {"input", OP_INPUT, c_input, TOL_EXACT, false, true},
    {"param", OP_PARAM, c_param, TOL_EXACT, false, false},
    {"const", OP_CONST, c_const, TOL_EXACT, false, false},
    {"const_matmul", OP_CONST, c_const_matmul, TOL_BLAS, false, false},
};

static Tol tolerance(TolKind k, DType dt)
{
    bool f32 = dt == DT_F32;
    switch (k) {
    case TOL_EXACT:
        return (Tol){0, 0, 0};
    case TOL_MATH:
        return f32 ? (Tol){1e-7, 4e-7, 0} : (Tol){1e-15, 4e-16, 0};
    case TOL_SUM:
        return f32 ? (Tol){1e-6, 1e-5, 0} : (Tol){1e-13, 1e-12, 0};
    case TOL_BLAS:
        return f32 ? (Tol){1e-5, 1e-5, 0} : (Tol){1e-12, 1e-12, 0};
    case TOL_WINO: {
        const char *w = getenv("MODELC_CONV_WINOGRAD");
        if (f32 && !(w && (strcmp(w, "0") == 0 || strcmp(w, "2") == 0)))
            return (Tol){1e-5, 1e-5, 2e-5};
        return tolerance(TOL_BLAS, dt);
    }
    }
    return (Tol){0, 0, 0};
}

static Graph *build(const Case *c, DType dt, T *t)
{
    memset(t, 0, sizeof *t);
    t->g = ir_graph_new(c->name);
    diags_init(&t->d);
    t->dt = dt;
    Node *y = c->build(t);
    if (!y)
        diags_print(&t->d, stderr);
    ck_assert_msg(y != NULL, "%s: building the graph failed", c->name);
    ck_assert_msg(t->d.nerrors == 0, "%s: diagnostics while building", c->name);
    ir_add_output(t->g, OUT_VALUE, "y", y, NULL, false);
    return t->g;
}

/* Run g (compiled once) for each N, on ordinary data and, when
 * `special`, again on data full of NaN, infinities and zeros. */
static void check_graph(const char *what, T *t, Graph *g, const int64_t *ns, int nn, Tol tol, bool special)
{
    JitModule *m = tj_compile(g, &t->d);
    ck_assert_msg(m != NULL, "%s: JIT compilation failed", what);
    for (int sp = 0; sp <= (int)special; sp++) {
        LeafSpec specs[MAXLEAF];
        for (int k = 0; k < t->nspec; k++) {
            specs[k] = t->spec[k];
            if (sp && specs[k].kind != V_MASK)
                specs[k].kind = V_SPECIAL;
        }
        for (int i = 0; i < nn; i++) {
            TensorMap params, inputs;
            rt_map_init(&params);
            rt_map_init(&inputs);
            tj_fill(g, specs, t->nspec, ns[i], (uint64_t)(i + 1), &params, &inputs);
            RunOpts ro = {42, 3};
            char name[200];
            snprintf(name, sizeof name, "%s%s, N = %lld", what, sp ? " special" : "", (long long)ns[i]);
            ck_assert_msg(tj_check_run(name, g, m, &params, &inputs, &ro, tol), "%s differs", name);
            rt_map_free(&params);
            rt_map_free(&inputs);
        }
    }
    be_jit_free(m);
}

static void done(T *t)
{
    ir_graph_free(t->g);
    diags_free(&t->d);
}

/* loss = sum(y * r) and its gradients, simplified */
static void check_grads(const Case *c, DType dt)
{
    T t;
    Graph *g = build(c, dt, &t);
    Node *y = g->outs[0].val;
    g->nouts = 0;
    Node *r = X(&t, "r", dt, y->shape, V_UNIF, -1, 1);
    Node *p = ir_binary(g, OP_MUL, y, r, TL, &t.d);
    Attrs a = ir_attrs();
    for (int k = 0; k < p->shape.rank; k++)
        a.axes[a.naxes++] = k;
    Node *loss = ir_op(g, OP_REDUCE_SUM, &p, 1, &a, TL, &t.d);
    ir_add_output(g, OUT_LOSS, "loss", loss, NULL, false);
    if (!ps_autodiff(g, NULL, 0, &t.d))
        diags_print(&t.d, stderr);
    ck_assert(t.d.nerrors == 0);
    ck_assert(ps_simplify(g, &t.d));
    ck_assert_msg(t.d.nerrors == 0, "%s: autodiff failed", c->name);
    char what[96];
    snprintf(what, sizeof what, "%s %s gradients", c->name, ir_dtype_name(dt));
    int64_t ns[2] = {3, 1};
    Tol tol = tolerance(c->tol == TOL_EXACT ? TOL_SUM : c->tol, dt);
    tol.atol *= 10;
    tol.rtol *= 10;
    check_graph(what, &t, g, ns, 2, tol, false);
    done(&t);
}

static void run_case(const Case *c)
{
    DType dts[2] = {DT_F32, DT_F64};
    int64_t ns[3] = {3, 1, 0};
    for (int k = 0; k < 2; k++) {
        T t;
        Graph *g = build(c, dts[k], &t);
        char what[96];
        snprintf(what, sizeof what, "%s %s", c->name, ir_dtype_name(dts[k]));
        check_graph(what, &t, g, ns, 3, tolerance(c->tol, dts[k]), c->specials);
        done(&t);
        if (!c->nograd && (ir_ops[c->op].flags & OPF_DIFF))
            check_grads(c, dts[k]);
    }
}

START_TEST(op_case)
{
    run_case(&cases[_i]);
}
END_TEST

/* Every op of the table has a case (phase is an error, fused and result
 * come from IR text below). */
START_TEST(op_table_covered)
{
    for (int op = 0; op < OP_COUNT; op++) {
        bool found = op == OP_PHASE || op == OP_FUSED || op == OP_RESULT;
        for (int i = 0; i < ARRAY_LEN(cases) && !found; i++)
            found = (int)cases[i].op == op;
        ck_assert_msg(found, "op %s has no JIT test case", ir_ops[op].name);
    }
}
END_TEST

/* A loop kernel takes every operand and result buffer: more than a
 * kernel's parameters is an error, not a crash. */
START_TEST(loop_too_many_buffers)
{
    T t;
    memset(&t, 0, sizeof t);
    t.g = ir_graph_new("wide");
    diags_init(&t.d);
    t.dt = DT_F32;
    Graph *b = ir_graph_new("body");
    Node *in[40];
    int n = 0;
    in[n++] = P(&t, "h0", S(2, NB, 2, 0, 0), V_UNIF, -1, 1);
    in[n++] = P(&t, "x", S(3, NB, 3, 2, 0), V_UNIF, -1, 1);
    Node *h = ir_input(b, "h", DT_F32, S(2, NB, 2, 0, 0), TL);
    ir_input(b, "x", DT_F32, S(2, NB, 2, 0, 0), TL);
    while (n < 28) {
        char name[16];
        snprintf(name, sizeof name, "w%d", n);
        in[n++] = ir_param(t.g, name, DT_F32, S(1, 2, 0, 0, 0), (Init){INIT_ZEROS, 0, 0}, true, ROLE_WEIGHT, TL);
        ir_input(b, name, DT_F32, S(1, 2, 0, 0, 0), TL);
    }
    ir_add_output(b, OUT_UPDATE, NULL, h, h, false);
    ir_add_output(b, OUT_VALUE, NULL, h, NULL, false);
    ir_add_output(b, OUT_VALUE, NULL, h, NULL, false);
    Node *l = ir_loop(t.g, b, in, n, 1, false, TL, &t.d);
    ck_assert_ptr_nonnull(l);
    ir_add_output(t.g, OUT_VALUE, "y", l, NULL, false);
    ck_assert(!be_jit_check(t.g, &t.d));
    ck_assert_str_eq(t.d.v[t.d.n - 1].msg, "loop with 28 operands and 3 results: one kernel takes at most 30 buffers");
    done(&t);
}
END_TEST

/* ---- fused nodes and phase, from IR text ---- */

static Graph *parse(const char *text, Diags *d)
{
    Graph *g = ir_parse("t.ir", text, strlen(text), d);
    if (!g)
        diags_print(d, stderr);
    ck_assert_ptr_nonnull(g);
    return g;
}

static void check_text(const char *name, const char *text, Tol tol)
{
    T t;
    memset(&t, 0, sizeof t);
    diags_init(&t.d);
    t.g = parse(text, &t.d);
    int64_t ns[3] = {4, 1, 0};
    check_graph(name, &t, t.g, ns, 3, tol, true);
    done(&t);
}

START_TEST(fused_broadcast_body)
{
    check_text("fused", "graph f {\n"
                        "  %x = input \"x\" : f32[N,3]\n"
                        "  %b = param \"b\" : f32[3]\n"
                        "  %y = fused(%x, %b) : f32[N,3] {\n"
                        "    %a0 = input \"0\" : f32[N,3]\n"
                        "    %a1 = input \"1\" : f32[3]\n"
                        "    %2 = mul(%a0, %a1) : f32[N,3]\n"
                        "    %3 = const 0.5 : f32[]\n"
                        "    %s = add(%2, %3) : f32[N,3]\n"
                        "    %5 = tanh(%s) : f32[N,3]\n"
                        "    %6 = sigmoid(%a1) : f32[3]\n"
                        "    %7 = select(%5, %6, %s) : f32[N,3]\n"
                        "    output %7\n"
                        "  }\n"
                        "  output value \"y\" = %y\n"
                        "}\n",
               (Tol){1e-7, 4e-7, 0});
}
END_TEST

/* A softmax cross-entropy row kernel with the elementwise ops of its
 * targets and incoming gradient in the body, the loss rows as a fresh
 * result and the gradient's column sum and mean (keepdims). */
START_TEST(fused_softmax_rows)
{
    check_text("softmax rows", "graph s {\n"
                               "  %z = input \"z\" : f32[N,5]\n"
                               "  %y = input \"y\" : f32[N,5]\n"
                               "  %k = input \"k\" : f32[]\n"
                               "  %g = fused(%z, %y, %k) : f32[N,5] {\n"
                               "    %a0 = input \"0\" : f32[N,5]\n"
                               "    %a1 = input \"1\" : f32[N,5]\n"
                               "    %a2 = input \"2\" : f32[]\n"
                               "    %t = square(%a1) : f32[N,5]\n"
                               "    %d = log_softmax_dot(%a0, %t) {axis=1} : f32[N]\n"
                               "    %c = const -0.5 : f32[]\n"
                               "    %s = div(%c, %a2) : f32[]\n"
                               "    %gy = mul(%s, %a1) : f32[N,5]\n"
                               "    %gr = log_softmax_grad(%a0, %gy) {axis=1} : f32[N,5]\n"
                               "    %cs = reduce_sum(%gr) {axes=[0]} : f32[5]\n"
                               "    %cm = reduce_mean(%gr) {axes=[0], keepdims=true} : f32[1,5]\n"
                               "    output %gr\n"
                               "    output %d\n"
                               "    output %cs\n"
                               "    output %cm\n"
                               "  }\n"
                               "  %dot = result(%g) {index=1} : f32[N]\n"
                               "  %cs = result(%g) {index=2} : f32[5]\n"
                               "  %cm = result(%g) {index=3} : f32[1,5]\n"
                               "  output value \"g\" = %g\n"
                               "  output value \"dot\" = %dot\n"
                               "  output value \"cs\" = %cs\n"
                               "  output value \"cm\" = %cm\n"
                               "}\n",
               (Tol){1e-6, 1e-6, 0});
}
END_TEST

/* The same over a middle axis in f64, without a dot; the column sum
 * keeps the softmax axis. */
START_TEST(fused_softmax_middle_axis)
{
    check_text("softmax middle", "graph s {\n"
                                 "  %z = input \"z\" : f64[N,4,3]\n"
                                 "  %y = input \"y\" : f64[N,4,3]\n"
                                 "  %g = fused(%z, %y) : f64[N,4,3] {\n"
                                 "    %a0 = input \"0\" : f64[N,4,3]\n"
                                 "    %a1 = input \"1\" : f64[N,4,3]\n"
                                 "    %gr = log_softmax_grad(%a0, %a1) {axis=1} : f64[N,4,3]\n"
                                 "    %cs = reduce_sum(%gr) {axes=[0,2]} : f64[4]\n"
                                 "    output %gr\n"
                                 "    output %cs\n"
                                 "  }\n"
                                 "  %cs = result(%g) {index=1} : f64[4]\n"
                                 "  output value \"g\" = %g\n"
                                 "  output value \"cs\" = %cs\n"
                                 "}\n",
               (Tol){1e-13, 1e-13, 0});
}
END_TEST

/* A GEMM epilogue accumulating a column sum (a bias gradient) and a row
 * mean of its value. */
START_TEST(fused_gemm_sums)
{
    check_text("gemm sums", "graph e {\n"
                            "  %x = input \"x\" : f32[N,6]\n"
                            "  %w = param \"w\" : f32[6,4]\n"
                            "  %b = param \"b\" : f32[4]\n"
                            "  %h = fused(%x, %w, %b) : f32[N,4] {\n"
                            "    %a0 = input \"0\" : f32[N,6]\n"
                            "    %a1 = input \"1\" : f32[6,4]\n"
                            "    %a2 = input \"2\" : f32[4]\n"
                            "    %m = matmul(%a0, %a1) : f32[N,4]\n"
                            "    %s = add(%m, %a2) : f32[N,4]\n"
                            "    %r = tanh(%s) : f32[N,4]\n"
                            "    %cs = reduce_sum(%r) {axes=[0]} : f32[4]\n"
                            "    %rm = reduce_mean(%r) {axes=[1]} : f32[N]\n"
                            "    output %r\n"
                            "    output %cs\n"
                            "    output %rm\n"
                            "  }\n"
                            "  %cs = result(%h) {index=1} : f32[4]\n"
                            "  %rm = result(%h) {index=2} : f32[N]\n"
                            "  output value \"h\" = %h\n"
                            "  output value \"cs\" = %cs\n"
                            "  output value \"rm\" = %rm\n"
                            "}\n",
               (Tol){1e-6, 1e-6, 0});
}
END_TEST

/* Two fused kernels, broadcasting inside a body, f64. */
START_TEST(fused_chain_f64)
{
    check_text("fused_f64", "graph f {\n"
                            "  %x = input \"x\" : f64[N,2,3]\n"
                            "  %c = param \"c\" : f64[2,1]\n"
                            "  %y = fused(%x, %c) : f64[N,2,3] {\n"
                            "    %a0 = input \"0\" : f64[N,2,3]\n"
                            "    %a1 = input \"1\" : f64[2,1]\n"
                            "    %e = exp(%a1) : f64[2,1]\n"
                            "    %m = maximum(%a0, %e) : f64[N,2,3]\n"
                            "    output %m\n"
                            "  }\n"
                            "  %z = fused(%y, %x) : f64[N,2,3] {\n"
                            "    %a0 = input \"0\" : f64[N,2,3]\n"
                            "    %a1 = input \"1\" : f64[N,2,3]\n"
                            "    %k = const 2 : f64[]\n"
                            "    %p = mul(%a0, %k) : f64[N,2,3]\n"
                            "    %q = sub(%p, %a1) : f64[N,2,3]\n"
                            "    output %q\n"
                            "  }\n"
                            "  output value \"y\" = %y\n"
                            "  output value \"z\" = %z\n"
                            "}\n",
               (Tol){1e-15, 4e-16, 0});
}
END_TEST

/* Distance in units in the last place between two floats of one sign
 * (or zero); -1 when they differ in NaN-ness, infinity or sign. */
static int64_t ulps(float a, float b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b) ? 0 : -1;
    if (a == b)
        return 0;
    if (isinf(a) || isinf(b) || signbit(a) != signbit(b))
        return -1;
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    return ia > ib ? (int64_t)ia - ib : (int64_t)ib - ia;
}

/* The f32 exp/tanh/sigmoid polynomials against libm over the whole range,
 * denormal results and special values: at most 2 ulp apart. */
START_TEST(exp_tanh_f32_accuracy)
{
    Graph *g = ir_graph_new("vmath");
    Diags d;
    diags_init(&d);
    Node *x = ir_input(g, "x", DT_F32, ir_shape1(IR_DIM_N), TL);
    const Op ops[4] = {OP_EXP, OP_TANH, OP_SIGMOID, OP_ELU};
    for (int i = 0; i < 4; i++)
        ir_add_output(g, OUT_VALUE, ir_ops[ops[i]].name, ir_unary(g, ops[i], x, TL, &d), NULL, false);
    JitModule *m = tj_compile(g, &d);
    ck_assert_ptr_nonnull(m);
    int64_t n = 200000;
    Tensor *xs = rt_tensor_new(DT_F32, 1, &n);
    float *xv = xs->data;
    Rng r = {99};
    for (int64_t i = 0; i < n; i++) {
        double u = tj_rand(&r);
        if (i < ARRAY_LEN(tj_specials))
            xv[i] = (float)tj_specials[i];
        else if (i % 4 == 0)
            xv[i] = (float)(-110 + 210 * u); /* whole range, overflow and underflow */
        else if (i % 4 == 1)
            xv[i] = (float)((u - 0.5) * 2.0); /* near zero, tanh's polynomial */
        else if (i % 4 == 2)
            xv[i] = (float)((u < 0.5 ? -1 : 1) * pow(10, -30 + 32 * tj_rand(&r)));
        else
            xv[i] = (float)(-104 + 17 * u); /* denormal results */
    }
    TensorMap in;
    rt_map_init(&in);
    rt_map_put(&in, "x", xs);
    Tensor *oi[4], *oj[4];
    ck_assert(be_interp_run(g, NULL, &in, NULL, oi, &d));
    ck_assert(be_jit_run(m, NULL, &in, NULL, oj, &d));
    for (int k = 0; k < 4; k++) {
        const float *a = oj[k]->data, *b = oi[k]->data;
        for (int64_t i = 0; i < n; i++) {
            int64_t u = ulps(a[i], b[i]);
            /* elu's exp(x) - 1 cancels near 0: compare absolutely there */
            bool ok = u >= 0 && (u <= 2 || (ops[k] == OP_ELU && fabsf(a[i] - b[i]) <= 1.2e-7f));
            ck_assert_msg(ok, "%s(%.9g): jit %.9g, libm %.9g (%lld ulp)", ir_ops[ops[k]].name, xv[i], a[i], b[i],
                          (long long)u);
        }
        rt_tensor_free(oi[k]);
        rt_tensor_free(oj[k]);
    }
    rt_map_free(&in);
    be_jit_free(m);
    diags_free(&d);
    ir_graph_free(g);
}
END_TEST

/* No input binds N: both backends report the first node that needs it. */
START_TEST(unbound_batch)
{
    check_text("unbound", "graph u {\n"
                          "  %x = input \"x\" : f32[3]\n"
                          "  %b = broadcast(%x) {shape=[N,3]} : f32[N,3] loc(\"m.mdl\":2:1)\n"
                          "  %s = reduce_sum(%b) {axes=[0]} : f32[3]\n"
                          "  output value \"s\" = %s\n"
                          "}\n",
               (Tol){0, 0, 0});
}
END_TEST

START_TEST(phase_is_an_error)
{
    Diags d;
    diags_init(&d);
    Graph *g = parse("graph p {\n"
                     "  %x = input \"x\" : f32[N,3]\n"
                     "  %t = relu(%x) : f32[N,3]\n"
                     "  %y = phase(%t, %x) {name=\"drop\"} : f32[N,3] loc(\"m.mdl\":4:7)\n"
                     "  output value \"y\" = %y\n"
                     "}\n",
                     &d);
    ck_assert_ptr_null(tj_compile(g, &d));
    ck_assert_int_eq(d.nerrors, 1);
    ck_assert_str_eq(d.v[0].msg, "phase node 'drop' reached code generation: specialize the graph first");
    ck_assert_int_eq(d.v[0].loc.line, 4);
    ir_graph_free(g);
    diags_free(&d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("jit_ops");
    TCase *t = tcase_create("ops");
    tcase_set_timeout(t, 300);
    tcase_add_loop_test(t, op_case, 0, ARRAY_LEN(cases));
    tcase_add_test(t, op_table_covered);
    tcase_add_test(t, loop_too_many_buffers);
    tcase_add_test(t, fused_broadcast_body);
    tcase_add_test(t, fused_chain_f64);
    tcase_add_test(t, fused_softmax_rows);
    tcase_add_test(t, fused_softmax_middle_axis);
    tcase_add_test(t, fused_gemm_sums);
    tcase_add_test(t, unbound_batch);
    tcase_add_test(t, exp_tanh_f32_accuracy);
    tcase_add_test(t, phase_is_an_error);
    suite_add_tcase(s, t);
    return tu_run(s);
}
