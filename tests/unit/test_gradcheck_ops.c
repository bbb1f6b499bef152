/* Numerical check of every gradient rule: for each op with OPF_DIFF, a
 * small f64 graph loss = sum(op(...) * r) is differentiated (with and
 * without simplify), evaluated with the interpreter, and every element of
 * every differentiated operand is compared with central finite
 * differences (PyTorch gradcheck defaults: eps 1e-6, atol 1e-5, rtol
 * 1e-3). Values are drawn away from kinks. The test fails when an op of
 * the table with OPF_DIFF has no case here. */
#include <math.h>
#include <stdlib.h>

#include "backend/interp/interp.h"
#include "test_autodiff_util.h"
#include "testutil.h"

enum { BATCH = 3, MAXLEAF = 8 };

typedef enum { V_RANGE, V_SIGNED, V_MASK, V_INT } VKind; /* V_INT: integers in [lo, hi] */

typedef struct Leaf {
    Node *n;
    VKind kind;
    double lo, hi;
    bool diff;
} Leaf;

typedef struct T {
    Graph *g;
    Diags d;
    Leaf leaf[MAXLEAF];
    int nleaf;
} T;

typedef struct Case {
    const char *name;
    Op op;
    Node *(*build)(T *t);
    double eps, atol, rtol; /* 0 = the defaults */
} Case;

/* ---- building ---- */

static Node *add_leaf(T *t, Node *n, VKind k, double lo, double hi, bool diff)
{
    MC_ASSERT(t->nleaf < MAXLEAF);
    t->leaf[t->nleaf++] = (Leaf){n, k, lo, hi, diff};
    return n;
}

/* A differentiated parameter with values in [lo, hi] (V_RANGE) or
 * +-[lo, hi] (V_SIGNED). */
static Node *P(T *t, const char *name, Shape s, VKind k, double lo, double hi)
{
    return add_leaf(t, tu_param(t->g, name, s), k, lo, hi, true);
}

/* A differentiated input (through autodiff's wrt list). */
static Node *W(T *t, const char *name, Shape s, double lo, double hi)
{
    return add_leaf(t, ir_input(t->g, name, DT_F64, s, TL), V_RANGE, lo, hi, true);
}

/* Data that is not differentiated. */
static Node *D(T *t, const char *name, Shape s, VKind k, double lo, double hi)
{
    return add_leaf(t, ir_input(t->g, name, DT_F64, s, TL), k, lo, hi, false);
}

static Shape S1(int64_t a)
{
    return ir_shape1(a);
}

static Shape S2(int64_t a, int64_t b)
{
    return ir_shape2(a, b);
}

static Shape S3(int64_t a, int64_t b, int64_t c)
{
    int64_t d[3] = {a, b, c};
    return ir_shape(3, d);
}

static Shape S4(int64_t a, int64_t b, int64_t c, int64_t e)
{
    int64_t d[4] = {a, b, c, e};
    return ir_shape(4, d);
}

static Node *U(T *t, Op op, Node *x)
{
    return ir_unary(t->g, op, x, TL, &t->d);
}

static Node *B(T *t, Op op, Node *x, Node *y)
{
    return ir_binary(t->g, op, x, y, TL, &t->d);
}

static Node *OPA(T *t, Op op, Node *x, Node *y, const Attrs *a)
{
    Node *in[2] = {x, y};
    return ir_op(t->g, op, in, y ? 2 : 1, a, TL, &t->d);
}

static Node *X23(T *t, VKind k, double lo, double hi)
{
    return P(t, "x", S2(2, 3), k, lo, hi);
}

/* ---- cases: elementwise ---- */

static Node *c_neg(T *t) { return U(t, OP_NEG, X23(t, V_RANGE, -2, 2)); }
static Node *c_exp(T *t) { return U(t, OP_EXP, X23(t, V_RANGE, -2, 2)); }
static Node *c_log(T *t) { return U(t, OP_LOG, X23(t, V_RANGE, 0.5, 2)); }
static Node *c_tanh(T *t) { return U(t, OP_TANH, X23(t, V_RANGE, -2, 2)); }
static Node *c_sigmoid(T *t) { return U(t, OP_SIGMOID, X23(t, V_RANGE, -3, 3)); }
static Node *c_relu(T *t) { return U(t, OP_RELU, X23(t, V_SIGNED, 0.1, 2)); }
static Node *c_sqrt(T *t) { return U(t, OP_SQRT, X23(t, V_RANGE, 0.5, 2)); }
static Node *c_rsqrt(T *t) { return U(t, OP_RSQRT, X23(t, V_RANGE, 0.5, 2)); }
static Node *c_square(T *t) { return U(t, OP_SQUARE, X23(t, V_RANGE, -2, 2)); }
static Node *c_abs(T *t) { return U(t, OP_ABS, X23(t, V_SIGNED, 0.1, 2)); }
static Node *c_erf(T *t) { return U(t, OP_ERF, X23(t, V_RANGE, -2, 2)); }

static Node *c_elu(T *t)
{
    Attrs a = ir_attrs();
    a.value = 1.3;
    return OPA(t, OP_ELU, X23(t, V_SIGNED, 0.1, 2), NULL, &a);
}

/* f64 -> f32 -> f64: finite differences see f32 rounding, so a larger
 * step and looser tolerance. */
static Node *c_cast(T *t)
{
    Attrs a = ir_attrs();
    a.to = DT_F32;
    Node *x = OPA(t, OP_CAST, X23(t, V_RANGE, -2, 2), NULL, &a);
    x = B(t, OP_MUL, x, ir_const(t->g, DT_F32, 2, TL));
    a.to = DT_F64;
    return OPA(t, OP_CAST, x, NULL, &a);
}

static Node *c_add(T *t)
{
    return B(t, OP_ADD, X23(t, V_RANGE, -1, 1), P(t, "b", S1(3), V_RANGE, -1, 1));
}

static Node *c_sub(T *t)
{
    return B(t, OP_SUB, X23(t, V_RANGE, -1, 1), P(t, "y", S2(2, 1), V_RANGE, -1, 1));
}

static Node *c_mul(T *t)
{
    return B(t, OP_MUL, P(t, "s", ir_shape0(), V_RANGE, -2, 2), X23(t, V_RANGE, -1, 1));
}

static Node *c_div(T *t)
{
    return B(t, OP_DIV, X23(t, V_RANGE, -1, 1), P(t, "b", S1(3), V_SIGNED, 0.5, 2));
}

static Node *c_pow(T *t)
{
    return B(t, OP_POW, X23(t, V_RANGE, 0.5, 2), P(t, "p", S1(3), V_RANGE, -2, 2));
}

static Node *c_maximum(T *t)
{
    return B(t, OP_MAXIMUM, X23(t, V_RANGE, -1, 1), P(t, "y", S2(2, 3), V_RANGE, -1, 1));
}

static Node *c_minimum(T *t)
{
    return B(t, OP_MINIMUM, X23(t, V_RANGE, -1, 1), P(t, "y", S1(3), V_RANGE, -1, 1));
}

static Node *c_select(T *t)
{
    Node *in[3] = {D(t, "c", S2(2, 3), V_MASK, 0, 1), X23(t, V_RANGE, -1, 1),
                   P(t, "y", S1(3), V_RANGE, -1, 1)};
    return ir_op(t->g, OP_SELECT, in, 3, NULL, TL, &t->d);
}

/* ---- cases: reductions and shapes ---- */

static Node *reduce(T *t, Op op, Node *x, int naxes, int a0, int a1, bool keep)
{
    int axes[2] = {a0, a1};
    return tu_reduce(t->g, op, x, naxes, axes, keep, &t->d);
}

static Node *X234(T *t)
{
    return P(t, "x", S3(2, 3, 4), V_RANGE, -1, 1);
}

static Node *c_reduce_sum(T *t) { return reduce(t, OP_REDUCE_SUM, X234(t), 2, 0, 2, false); }
static Node *c_reduce_sum_keep(T *t) { return reduce(t, OP_REDUCE_SUM, X234(t), 1, 1, 0, true); }
static Node *c_reduce_mean(T *t) { return reduce(t, OP_REDUCE_MEAN, X234(t), 2, 2, 1, false); }
static Node *c_reduce_mean_keep(T *t) { return reduce(t, OP_REDUCE_MEAN, X234(t), 1, 1, 0, true); }
static Node *c_reduce_max(T *t) { return reduce(t, OP_REDUCE_MAX, X234(t), 1, 1, 0, false); }
static Node *c_reduce_max_keep(T *t) { return reduce(t, OP_REDUCE_MAX, X234(t), 2, 0, 2, true); }

/* the count of a mean over the batch dimension is computed at run time */
static Node *c_reduce_mean_batch(T *t)
{
    return reduce(t, OP_REDUCE_MEAN, W(t, "xb", S2(IR_DIM_N, 3), -1, 1), 2, 0, 1, false);
}

static Node *c_broadcast(T *t)
{
    Attrs a = ir_attrs();
    a.shape = S3(2, 3, 4);
    return OPA(t, OP_BROADCAST, P(t, "x", S2(3, 1), V_RANGE, -1, 1), NULL, &a);
}

static Node *c_reshape(T *t)
{
    Attrs a = ir_attrs();
    a.shape = S2(3, 4);
    return OPA(t, OP_RESHAPE, P(t, "x", S2(2, 6), V_RANGE, -1, 1), NULL, &a);
}

static Node *c_transpose(T *t)
{
    Attrs a = ir_attrs();
    a.naxes = 3;
    a.axes[0] = 2;
    a.axes[1] = 0;
    a.axes[2] = 1;
    return OPA(t, OP_TRANSPOSE, X234(t), NULL, &a);
}

/* rows 1 and 3, columns 0, 2 and 4 of a [4,5] tensor */
static Attrs slice_1_0_step_2(void)
{
    Attrs a = ir_attrs();
    a.begin[0] = 1;
    a.end[0] = 4;
    a.end[1] = 5;
    a.step[0] = a.step[1] = 2;
    return a;
}

static Node *c_slice(T *t)
{
    Attrs a = slice_1_0_step_2();
    return OPA(t, OP_SLICE, P(t, "x", S2(4, 5), V_RANGE, -1, 1), NULL, &a);
}

static Node *c_slice_grad(T *t)
{
    Attrs a = slice_1_0_step_2();
    a.shape = S2(4, 5);
    return OPA(t, OP_SLICE_GRAD, X23(t, V_RANGE, -1, 1), NULL, &a);
}

static Node *c_concat(T *t)
{
    Attrs a = ir_attrs();
    a.axes[0] = 1;
    return OPA(t, OP_CONCAT, X23(t, V_RANGE, -1, 1), P(t, "y", S2(2, 2), V_RANGE, -1, 1), &a);
}

/* indices with repeats: the adjoint adds the repeated rows */
static Node *c_gather(T *t)
{
    Attrs a = ir_attrs();
    a.naxes = 1;
    a.axes[0] = 1;
    Node *ix = D(t, "i", S2(2, 4), V_INT, 0, 4);
    return OPA(t, OP_GATHER, P(t, "x", S3(2, 5, 3), V_RANGE, -1, 1), ix, &a);
}

static Node *c_gather_batch(T *t)
{
    Attrs a = ir_attrs();
    a.naxes = 1;
    Node *ix = D(t, "i", ir_shape(2, (int64_t[]){IR_DIM_N, 2}), V_INT, 0, 5);
    return OPA(t, OP_GATHER, P(t, "x", S2(6, 4), V_RANGE, -1, 1), ix, &a);
}

static Node *c_gather_grad(T *t)
{
    Attrs a = ir_attrs();
    a.naxes = 1;
    a.shape = S2(4, 3);
    Node *ix = D(t, "i", S1(5), V_INT, 0, 3);
    return OPA(t, OP_GATHER_GRAD, P(t, "g", S2(5, 3), V_RANGE, -1, 1), ix, &a);
}

/* ---- cases: matmul, convolution, pooling, softmax ---- */

static Node *matmul_case(T *t, bool ta, bool tb)
{
    Attrs a = ir_attrs();
    a.ta = ta;
    a.tb = tb;
    Node *x = P(t, "a", ta ? S2(3, 2) : S2(2, 3), V_RANGE, -1, 1);
    Node *y = P(t, "b", tb ? S2(4, 3) : S2(3, 4), V_RANGE, -1, 1);
    return OPA(t, OP_MATMUL, x, y, &a);
}

/* batch axes [2,1] and [3] broadcast: the gradients sum over them */
static Node *c_matmul_batched(T *t)
{
    Attrs a = ir_attrs();
    a.tb = true;
    Node *x = P(t, "a", ir_shape(4, (int64_t[]){2, 1, 2, 3}), V_RANGE, -1, 1);
    Node *y = P(t, "b", S3(3, 4, 3), V_RANGE, -1, 1);
    return OPA(t, OP_MATMUL, x, y, &a);
}

/* a stack over N times a matrix (a dense layer on a sequence) */
static Node *c_matmul_stack(T *t)
{
    Node *x = P(t, "a", S3(IR_DIM_N, 2, 3), V_RANGE, -1, 1);
    return OPA(t, OP_MATMUL, x, P(t, "b", S2(3, 4), V_RANGE, -1, 1), NULL);
}

static Node *c_matmul(T *t) { return matmul_case(t, false, false); }
static Node *c_matmul_ta(T *t) { return matmul_case(t, true, false); }
static Node *c_matmul_tb(T *t) { return matmul_case(t, false, true); }
static Node *c_matmul_ta_tb(T *t) { return matmul_case(t, true, true); }

/* 3x3 kernel, stride 2, padding 1: x [2,5,5,2] -> y [2,3,3,3] */
static Attrs conv_attrs(const Shape *result)
{
    Attrs a = ir_attrs();
    a.stride[0] = a.stride[1] = 2;
    a.pad[0] = a.pad[1] = a.pad[2] = a.pad[3] = 1;
    if (result)
        a.shape = *result;
    return a;
}

static Node *c_conv2d(T *t)
{
    Attrs a = conv_attrs(NULL);
    return OPA(t, OP_CONV2D, P(t, "x", S4(2, 5, 5, 2), V_RANGE, -1, 1),
               P(t, "k", S4(3, 3, 2, 3), V_RANGE, -1, 1), &a);
}

/* alpha = -0.5: the result scale a fusion folds in (both gradients scale too) */
static Node *c_conv2d_alpha(T *t)
{
    Attrs a = conv_attrs(NULL);
    a.alpha = -0.5;
    return OPA(t, OP_CONV2D, P(t, "x", S4(2, 5, 5, 2), V_RANGE, -1, 1),
               P(t, "k", S4(3, 3, 2, 3), V_RANGE, -1, 1), &a);
}

static Node *c_conv2d_grad_input(T *t)
{
    Shape xs = S4(2, 5, 5, 2);
    Attrs a = conv_attrs(&xs);
    return OPA(t, OP_CONV2D_GRAD_INPUT, P(t, "dy", S4(2, 3, 3, 3), V_RANGE, -1, 1),
               P(t, "k", S4(3, 3, 2, 3), V_RANGE, -1, 1), &a);
}

static Node *c_conv2d_grad_kernel(T *t)
{
    Shape ks = S4(3, 3, 2, 3);
    Attrs a = conv_attrs(&ks);
    return OPA(t, OP_CONV2D_GRAD_KERNEL, P(t, "x", S4(2, 5, 5, 2), V_RANGE, -1, 1),
               P(t, "dy", S4(2, 3, 3, 3), V_RANGE, -1, 1), &a);
}

static Attrs pool_attrs(int window, int stride, int pad)
{
    Attrs a = ir_attrs();
    a.window[0] = a.window[1] = window;
    a.stride[0] = a.stride[1] = stride;
    a.pad[0] = a.pad[1] = a.pad[2] = a.pad[3] = pad;
    return a;
}

static Node *c_max_pool2d(T *t)
{
    Attrs a = pool_attrs(2, 2, 0);
    return OPA(t, OP_MAX_POOL2D, P(t, "x", S4(2, 4, 4, 2), V_RANGE, -1, 1), NULL, &a);
}

static Node *c_max_pool2d_overlap(T *t)
{
    Attrs a = pool_attrs(3, 1, 1);
    return OPA(t, OP_MAX_POOL2D, P(t, "x", S4(1, 4, 4, 2), V_RANGE, -1, 1), NULL, &a);
}

static Node *c_avg_pool2d(T *t)
{
    Attrs a = pool_attrs(3, 2, 1);
    return OPA(t, OP_AVG_POOL2D, P(t, "x", S4(2, 5, 5, 2), V_RANGE, -1, 1), NULL, &a);
}

static Node *c_avg_pool2d_grad(T *t)
{
    Attrs a = pool_attrs(3, 2, 1);
    a.shape = S4(2, 5, 5, 2);
    return OPA(t, OP_AVG_POOL2D_GRAD, P(t, "dy", S4(2, 3, 3, 2), V_RANGE, -1, 1), NULL, &a);
}

static Node *axis_op(T *t, Op op, int axis)
{
    Attrs a = ir_attrs();
    a.axes[0] = axis;
    return OPA(t, op, P(t, "x", S2(3, 4), V_RANGE, -2, 2), NULL, &a);
}

static Node *c_softmax(T *t) { return axis_op(t, OP_SOFTMAX, 1); }
static Node *c_softmax_axis0(T *t) { return axis_op(t, OP_SOFTMAX, 0); }
static Node *c_log_softmax(T *t) { return axis_op(t, OP_LOG_SOFTMAX, 1); }
static Node *c_log_softmax_axis0(T *t) { return axis_op(t, OP_LOG_SOFTMAX, 0); }

/* ---- composites: the forms the frontend lowers layers and losses to ---- */

/* Categorical cross-entropy in its stable form with one-hot labels. */
static Node *c_softmax_ce(T *t)
{
    Node *x = W(t, "x", S2(IR_DIM_N, 4), -1, 1);
    Node *w = P(t, "w", S2(4, 5), V_RANGE, -1, 1);
    Node *logits = B(t, OP_MATMUL, x, w);
    Attrs ax = ir_attrs();
    ax.axes[0] = 1;
    Node *lp = OPA(t, OP_LOG_SOFTMAX, logits, NULL, &ax);
    Node *lab = ir_input(t->g, "labels", DT_I32, S1(IR_DIM_N), TL);
    Attrs oh = ir_attrs();
    oh.depth = 5;
    oh.to = DT_F64;
    Node *y = OPA(t, OP_ONE_HOT, lab, NULL, &oh);
    Node *nll = U(t, OP_NEG, reduce(t, OP_REDUCE_SUM, B(t, OP_MUL, y, lp), 1, 1, 0, false));
    return reduce(t, OP_REDUCE_MEAN, nll, 1, 0, 0, false);
}

/* Binary cross-entropy from logits: max(z,0) - z*y + log(1 + exp(-|z|)). */
static Node *c_bce_logits(T *t)
{
    Node *z = P(t, "z", S2(2, 3), V_SIGNED, 0.1, 3);
    Node *y = D(t, "y", S2(2, 3), V_MASK, 0, 1);
    Node *zero = ir_const(t->g, DT_F64, 0, TL), *one = ir_const(t->g, DT_F64, 1, TL);
    Node *sp = U(t, OP_LOG, B(t, OP_ADD, one, U(t, OP_EXP, U(t, OP_NEG, U(t, OP_ABS, z)))));
    return B(t, OP_ADD, B(t, OP_SUB, B(t, OP_MAXIMUM, z, zero), B(t, OP_MUL, z, y)), sp);
}

/* Batch normalisation in training mode over the batch axis. */
static Node *c_batchnorm(T *t)
{
    Node *x = W(t, "x", S2(IR_DIM_N, 3), -2, 2);
    Node *gamma = P(t, "gamma", S1(3), V_RANGE, 0.5, 1.5);
    Node *beta = P(t, "beta", S1(3), V_RANGE, -1, 1);
    Node *mean = reduce(t, OP_REDUCE_MEAN, x, 1, 0, 0, false);
    Node *xc = B(t, OP_SUB, x, mean);
    Node *var = reduce(t, OP_REDUCE_MEAN, U(t, OP_SQUARE, xc), 1, 0, 0, false);
    Node *inv = U(t, OP_RSQRT, B(t, OP_ADD, var, ir_const(t->g, DT_F64, 1e-3, TL)));
    return B(t, OP_ADD, B(t, OP_MUL, B(t, OP_MUL, xc, inv), gamma), beta);
}

/* batchnorm with sync_batchnorm: its statistics go through replica_mean
 * (the identity in one process, with itself as its gradient rule) */
static Node *c_sync_batchnorm(T *t)
{
    Node *x = W(t, "x", S2(IR_DIM_N, 3), -2, 2);
    Node *gamma = P(t, "gamma", S1(3), V_RANGE, 0.5, 1.5);
    Node *mean = U(t, OP_REPLICA_MEAN, reduce(t, OP_REDUCE_MEAN, x, 1, 0, 0, false));
    Node *xc = B(t, OP_SUB, x, mean);
    Node *var = U(t, OP_REPLICA_MEAN, reduce(t, OP_REDUCE_MEAN, U(t, OP_SQUARE, xc), 1, 0, 0, false));
    Node *inv = U(t, OP_RSQRT, B(t, OP_ADD, var, ir_const(t->g, DT_F64, 1e-3, TL)));
    return B(t, OP_MUL, B(t, OP_MUL, xc, inv), gamma);
}

/* S3: loss on an indexed element, (x[0,0] - 2*o[0,0])^2. */
/* A two-state cell over h, c [N,3], x_t [N,2], w [2,3], u [3,3]:
 * s = x_t w + h u, c' = c * sigmoid(s) + tanh(s), h' = tanh(c') * sigmoid(s);
 * both carried, h' also per step. */
static Graph *cell_body(void)
{
    Graph *b = ir_graph_new("cell");
    Diags d;
    diags_init(&d);
    Node *h = ir_input(b, "h", DT_F64, S2(IR_DIM_N, 3), TL), *c = ir_input(b, "c", DT_F64, S2(IR_DIM_N, 3), TL);
    Node *x = ir_input(b, "x", DT_F64, S2(IR_DIM_N, 2), TL);
    Node *w = ir_input(b, "w", DT_F64, S2(2, 3), TL), *u = ir_input(b, "u", DT_F64, S2(3, 3), TL);
    Node *s = ir_binary(b, OP_ADD, ir_binary(b, OP_MATMUL, x, w, TL, &d), ir_binary(b, OP_MATMUL, h, u, TL, &d), TL, &d);
    Node *g = ir_unary(b, OP_SIGMOID, s, TL, &d);
    Node *cn = ir_binary(b, OP_ADD, ir_binary(b, OP_MUL, c, g, TL, &d), ir_unary(b, OP_TANH, s, TL, &d), TL, &d);
    Node *hn = ir_binary(b, OP_MUL, ir_unary(b, OP_TANH, cn, TL, &d), g, TL, &d);
    ck_assert_int_eq(d.nerrors, 0);
    ir_add_output(b, OUT_UPDATE, NULL, hn, h, false);
    ir_add_output(b, OUT_UPDATE, NULL, cn, c, false);
    ir_add_output(b, OUT_VALUE, NULL, hn, NULL, false);
    diags_free(&d);
    return b;
}

/* The cell as a loop over x [N,4,2] from initial states h0, c0; every
 * operand is differentiated (the sequence and h0 as inputs). */
static Node *cell_loop(T *t, bool reverse)
{
    Node *in[5] = {W(t, "h0", S2(IR_DIM_N, 3), -1, 1), P(t, "c0", S2(1, 3), V_RANGE, -1, 1),
                   W(t, "x", S3(IR_DIM_N, 4, 2), -1, 1), P(t, "w", S2(2, 3), V_RANGE, -1, 1),
                   P(t, "u", S2(3, 3), V_RANGE, -0.8, 0.8)};
    Attrs a = ir_attrs();
    a.shape = S2(IR_DIM_N, 3);
    in[1] = OPA(t, OP_BROADCAST, in[1], NULL, &a);
    return ir_loop(t->g, cell_body(), in, 5, 1, reverse, TL, &t->d);
}

/* The states after each step (result 2) feed the loss. */
static Node *c_loop_steps(T *t)
{
    Node *l = cell_loop(t, false);
    Attrs a = ir_attrs();
    a.index = 2;
    return l ? OPA(t, OP_RESULT, l, NULL, &a) : NULL;
}

/* Backwards; the final states (the value, result 1) feed the loss. */
static Node *c_loop_final(T *t)
{
    Node *l = cell_loop(t, true);
    Attrs a = ir_attrs();
    a.index = 1;
    return l ? B(t, OP_MUL, l, OPA(t, OP_RESULT, l, NULL, &a)) : NULL;
}

static Node *c_indexing(T *t)
{
    Node *x = D(t, "x", S2(IR_DIM_N, 1), V_RANGE, -1, 1);
    Node *w = P(t, "w", S2(1, 4), V_RANGE, -1, 1);
    Node *v = P(t, "v", S2(4, 1), V_RANGE, -1, 1);
    Node *o = B(t, OP_MATMUL, U(t, OP_RELU, B(t, OP_MATMUL, x, w)), v);
    Attrs a = ir_attrs();
    a.end[0] = 1;
    a.end[1] = 1;
    Node *o00 = OPA(t, OP_SLICE, o, NULL, &a), *x00 = OPA(t, OP_SLICE, x, NULL, &a);
    Node *est = B(t, OP_MUL, ir_const(t->g, DT_F64, 2, TL), o00);
    return U(t, OP_SQUARE, B(t, OP_SUB, x00, est));
}

static const Case cases[] = {
    {"neg", OP_NEG, c_neg, 0, 0, 0},
    {"exp", OP_EXP, c_exp, 0, 0, 0},
    {"log", OP_LOG, c_log, 0, 0, 0},
    {"tanh", OP_TANH, c_tanh, 0, 0, 0},
    {"sigmoid", OP_SIGMOID, c_sigmoid, 0, 0, 0},
    {"relu", OP_RELU, c_relu, 0, 0, 0},
    {"elu", OP_ELU, c_elu, 0, 0, 0},
    {"sqrt", OP_SQRT, c_sqrt, 0, 0, 0},
    {"rsqrt", OP_RSQRT, c_rsqrt, 0, 0, 0},
    {"square", OP_SQUARE, c_square, 0, 0, 0},
    {"abs", OP_ABS, c_abs, 0, 0, 0},
    {"erf", OP_ERF, c_erf, 0, 0, 0},
    {"cast", OP_CAST, c_cast, 1e-3, 1e-4, 1e-3},
    {"add", OP_ADD, c_add, 0, 0, 0},
    {"sub", OP_SUB, c_sub, 0, 0, 0},
    {"mul", OP_MUL, c_mul, 0, 0, 0},
    {"div", OP_DIV, c_div, 0, 0, 0},
    {"pow", OP_POW, c_pow, 0, 0, 0},
    {"maximum", OP_MAXIMUM, c_maximum, 0, 0, 0},
    {"minimum", OP_MINIMUM, c_minimum, 0, 0, 0},
    {"select", OP_SELECT, c_select, 0, 0, 0},
    {"reduce_sum", OP_REDUCE_SUM, c_reduce_sum, 0, 0, 0},
    {"reduce_sum keepdims", OP_REDUCE_SUM, c_reduce_sum_keep, 0, 0, 0},
    {"reduce_mean", OP_REDUCE_MEAN, c_reduce_mean, 0, 0, 0},
    {"reduce_mean keepdims", OP_REDUCE_MEAN, c_reduce_mean_keep, 0, 0, 0},
    {"reduce_mean over N", OP_REDUCE_MEAN, c_reduce_mean_batch, 0, 0, 0},
    {"reduce_max", OP_REDUCE_MAX, c_reduce_max, 0, 0, 0},
    {"reduce_max keepdims", OP_REDUCE_MAX, c_reduce_max_keep, 0, 0, 0},
    {"broadcast", OP_BROADCAST, c_broadcast, 0, 0, 0},
    {"reshape", OP_RESHAPE, c_reshape, 0, 0, 0},
    {"transpose", OP_TRANSPOSE, c_transpose, 0, 0, 0},
    {"slice", OP_SLICE, c_slice, 0, 0, 0},
    {"slice_grad", OP_SLICE_GRAD, c_slice_grad, 0, 0, 0},
    {"concat", OP_CONCAT, c_concat, 0, 0, 0},
    {"gather", OP_GATHER, c_gather, 0, 0, 0},
    {"gather over N", OP_GATHER, c_gather_batch, 0, 0, 0},
    {"gather_grad", OP_GATHER_GRAD, c_gather_grad, 0, 0, 0},
    {"matmul", OP_MATMUL, c_matmul, 0, 0, 0},
    {"matmul ta", OP_MATMUL, c_matmul_ta, 0, 0, 0},
    {"matmul tb", OP_MATMUL, c_matmul_tb, 0, 0, 0},
    {"matmul ta tb", OP_MATMUL, c_matmul_ta_tb, 0, 0, 0},
    {"matmul batched", OP_MATMUL, c_matmul_batched, 0, 0, 0},
    {"matmul stack", OP_MATMUL, c_matmul_stack, 0, 0, 0},
    {"conv2d", OP_CONV2D, c_conv2d, 0, 0, 0},
    {"conv2d alpha", OP_CONV2D, c_conv2d_alpha, 0, 0, 0},
    {"conv2d_grad_input", OP_CONV2D_GRAD_INPUT, c_conv2d_grad_input, 0, 0, 0},
    {"conv2d_grad_kernel", OP_CONV2D_GRAD_KERNEL, c_conv2d_grad_kernel, 0, 0, 0},
    {"max_pool2d", OP_MAX_POOL2D, c_max_pool2d, 0, 0, 0},
    {"max_pool2d overlapping", OP_MAX_POOL2D, c_max_pool2d_overlap, 0, 0, 0},
    {"avg_pool2d", OP_AVG_POOL2D, c_avg_pool2d, 0, 0, 0},
    {"avg_pool2d_grad", OP_AVG_POOL2D_GRAD, c_avg_pool2d_grad, 0, 0, 0},
    {"softmax", OP_SOFTMAX, c_softmax, 0, 0, 0},
    {"softmax axis 0", OP_SOFTMAX, c_softmax_axis0, 0, 0, 0},
    {"log_softmax", OP_LOG_SOFTMAX, c_log_softmax, 0, 0, 0},
    {"log_softmax axis 0", OP_LOG_SOFTMAX, c_log_softmax_axis0, 0, 0, 0},
    {"softmax cross-entropy", OP_COUNT, c_softmax_ce, 0, 0, 0},
    {"binary cross-entropy from logits", OP_COUNT, c_bce_logits, 0, 0, 0},
    {"batchnorm (training)", OP_COUNT, c_batchnorm, 0, 0, 0},
    {"replica_mean (sync_batchnorm)", OP_REPLICA_MEAN, c_sync_batchnorm, 0, 0, 0},
    {"indexing loss (S3)", OP_COUNT, c_indexing, 0, 0, 0},
    {"loop, states after each step", OP_LOOP, c_loop_steps, 0, 0, 0},
    {"loop backwards, final states", OP_LOOP, c_loop_final, 0, 0, 0},
};

/* Ops with OPF_DIFF whose differentiation is an error, checked below. */
static const Op error_ops[] = {OP_PHASE, OP_FUSED, OP_RESULT, OP_MAX_POOL2D_GRAD, OP_LOG_SOFTMAX_DOT,
                               OP_LOG_SOFTMAX_GRAD};

/* ---- evaluation ---- */

static void fill(Tensor *x, const Leaf *l, uint64_t stream)
{
    for (int64_t i = 0; i < x->numel; i++) {
        double u = rt_uniform(42, stream, 0, (uint64_t)i), v;
        switch (l->kind) {
        case V_MASK:
            v = u < 0.5 ? 0 : 1;
            break;
        case V_INT:
            v = floor(l->lo + (l->hi - l->lo + 1) * u);
            break;
        case V_SIGNED: {
            double m = l->lo + (l->hi - l->lo) * rt_uniform(42, stream, 1, (uint64_t)i);
            v = u < 0.5 ? -m : m;
            break;
        }
        default:
            v = l->lo + (l->hi - l->lo) * u;
        }
        rt_set(x, i, v);
    }
}

static void make_values(T *t, TensorMap *params, TensorMap *inputs)
{
    for (int i = 0; i < t->nleaf; i++) {
        Node *n = t->leaf[i].n;
        Tensor *x = rt_tensor_for(n->dt, &n->shape, BATCH);
        fill(x, &t->leaf[i], rt_name_stream(n->a.name));
        rt_map_put(n->op == OP_PARAM ? params : inputs, n->a.name, x);
    }
    for (int i = 0; i < t->g->nnodes; i++) {
        Node *n = t->g->nodes[i];
        if (n->op == OP_INPUT && !ir_dtype_is_float(n->dt)) {
            Tensor *x = rt_tensor_for(n->dt, &n->shape, BATCH);
            for (int64_t k = 0; k < x->numel; k++)
                rt_set(x, k, (double)((k * 3 + 1) % 5));
            rt_map_put(inputs, n->a.name, x);
        }
    }
}

static double loss_at(T *t, TensorMap *params, TensorMap *inputs)
{
    Tensor *out[1] = {NULL};
    ck_assert_msg(be_interp_run(t->g, params, inputs, NULL, out, &t->d), "%s", tu_msg(&t->d, 0));
    double v = rt_get(out[0], 0);
    rt_tensor_free(out[0]);
    return v;
}

static void check_leaf(const Case *c, T *t, const Leaf *l, const Tensor *grad, TensorMap *params,
                       TensorMap *inputs, bool simplified)
{
    double eps = c->eps ? c->eps : 1e-6, atol = c->atol ? c->atol : 1e-5;
    double rtol = c->rtol ? c->rtol : 1e-3;
    Tensor *x = rt_map_get(l->n->op == OP_PARAM ? params : inputs, l->n->a.name);
    ck_assert_int_eq(grad->numel, x->numel);
    for (int64_t i = 0; i < x->numel; i++) {
        double v = rt_get(x, i);
        rt_set(x, i, v + eps);
        double lp = loss_at(t, params, inputs);
        rt_set(x, i, v - eps);
        double lm = loss_at(t, params, inputs);
        rt_set(x, i, v);
        double num = (lp - lm) / (2 * eps), an = rt_get(grad, i);
        ck_assert_msg(fabs(an - num) <= atol + rtol * fabs(num),
                      "%s%s: d loss / d %s[%lld]: symbolic %.10g, finite differences %.10g", c->name,
                      simplified ? " (simplified)" : "", l->n->a.name, (long long)i, an, num);
    }
}

static void run_case(const Case *c, bool simplify)
{
    T t = {.g = ir_graph_new("t")};
    diags_init(&t.d);
    Node *out = c->build(&t);
    ck_assert_msg(out != NULL, "%s: %s", c->name, tu_msg(&t.d, 0));
    if (c->op != OP_COUNT)
        ck_assert_msg(tu_count_op(t.g, c->op) > 0, "%s does not use its op", c->name);
    Node *r = D(&t, "r", out->shape, V_RANGE, -1, 1);
    ir_add_output(t.g, OUT_LOSS, "loss", tu_sum_all(t.g, B(&t, OP_MUL, out, r), &t.d), NULL, false);
    const char *wrt[MAXLEAF];
    int nwrt = 0;
    for (int i = 0; i < t.nleaf; i++)
        if (t.leaf[i].diff && t.leaf[i].n->op == OP_INPUT)
            wrt[nwrt++] = t.leaf[i].n->a.name;
    Graph *ga = ir_clone(t.g);
    ck_assert_msg(ps_autodiff(ga, wrt, nwrt, &t.d), "%s: %s", c->name, tu_msg(&t.d, 0));
    ck_assert_int_eq(t.d.n, 0);
    if (simplify)
        ck_assert(ps_simplify(ga, &t.d));
    TensorMap params, inputs;
    rt_map_init(&params);
    rt_map_init(&inputs);
    make_values(&t, &params, &inputs);
    Tensor **outs = xcalloc((size_t)ga->nouts, sizeof(Tensor *));
    ck_assert_msg(be_interp_run(ga, &params, &inputs, NULL, outs, &t.d), "%s: %s", c->name,
                  tu_msg(&t.d, 0));
    for (int i = 0; i < t.nleaf; i++) {
        if (!t.leaf[i].diff)
            continue;
        char name[64];
        snprintf(name, sizeof name, "grad.%s", t.leaf[i].n->a.name);
        int k = 0;
        while (k < ga->nouts && strcmp(ga->outs[k].name, name) != 0)
            k++;
        ck_assert_msg(k < ga->nouts, "%s: no output %s", c->name, name);
        check_leaf(c, &t, &t.leaf[i], outs[k], &params, &inputs, simplify);
    }
    for (int i = 0; i < ga->nouts; i++)
        rt_tensor_free(outs[i]);
    free(outs);
    rt_map_free(&params);
    rt_map_free(&inputs);
    ir_graph_free(ga);
    ir_graph_free(t.g);
    diags_free(&t.d);
}

START_TEST(op_gradient)
{
    run_case(&cases[_i], false);
    run_case(&cases[_i], true);
}
END_TEST

START_TEST(every_diff_op_has_a_case)
{
    for (int op = 0; op < OP_COUNT; op++) {
        if (!(ir_ops[op].flags & OPF_DIFF))
            continue;
        bool covered = false;
        for (int i = 0; i < ARRAY_LEN(cases); i++)
            covered |= cases[i].op == (Op)op;
        for (int i = 0; i < ARRAY_LEN(error_ops); i++)
            covered |= error_ops[i] == (Op)op;
        ck_assert_msg(covered, "op %s has OPF_DIFF but no gradient check case", ir_ops[op].name);
    }
}
END_TEST

/* ---- the ops whose differentiation is reported as an error ---- */

static void expect_error(Graph *g, Node *v, const char *msg)
{
    Diags d;
    diags_init(&d);
    ir_add_output(g, OUT_LOSS, "loss", tu_sum_all(g, v, &d), NULL, false);
    ck_assert(!ps_autodiff(g, NULL, 0, &d));
    ck_assert_str_eq(tu_msg(&d, 0), msg);
    diags_free(&d);
    ir_graph_free(g);
}

START_TEST(phase_is_an_error)
{
    T t = {.g = ir_graph_new("t")};
    diags_init(&t.d);
    Node *x = X23(&t, V_RANGE, -1, 1);
    Attrs a = ir_attrs();
    a.name = "drop";
    Node *p = OPA(&t, OP_PHASE, x, U(&t, OP_NEG, x), &a);
    diags_free(&t.d);
    expect_error(t.g, p, "phase node for 'drop' is still in the graph: run specialize before autodiff");
}
END_TEST

/* A fused node of exp(x), with neg(x) as a fresh result when `fresh`. */
static Node *fused_exp(T *t, Node *x, bool fresh)
{
    Graph *body = ir_graph_new("body");
    Node *bi = ir_input(body, "a", DT_F64, x->shape, TL);
    ir_add_output(body, OUT_VALUE, "out", ir_unary(body, OP_EXP, bi, TL, &t->d), NULL, false);
    if (fresh)
        ir_add_output(body, OUT_VALUE, NULL, ir_unary(body, OP_NEG, bi, TL, &t->d), NULL, false);
    Node *f = arena_alloc(t->g->arena, sizeof(Node));
    f->op = OP_FUSED;
    f->nin = 1;
    f->in = arena_alloc(t->g->arena, sizeof(Node *));
    f->in[0] = x;
    f->a = ir_attrs();
    f->sub = body;
    f->loc = TL;
    ck_assert(ir_infer(f, &t->d));
    f->id = t->g->nnodes;
    VEC_PUSH(t->g->nodes, t->g->nnodes, t->g->cap, f);
    return f;
}

START_TEST(result_is_an_error)
{
    T t = {.g = ir_graph_new("t")};
    diags_init(&t.d);
    Node *f = fused_exp(&t, X23(&t, V_RANGE, -1, 1), true);
    Attrs a = ir_attrs();
    a.index = 1;
    Node *r = ir_op(t.g, OP_RESULT, &f, 1, &a, TL, &t.d);
    ck_assert_ptr_nonnull(r);
    diags_free(&t.d);
    expect_error(t.g, r, "cannot differentiate result: it comes from fuse, run autodiff before fuse");
}
END_TEST

START_TEST(fused_is_an_error)
{
    T t = {.g = ir_graph_new("t")};
    diags_init(&t.d);
    Node *f = fused_exp(&t, X23(&t, V_RANGE, -1, 1), false);
    diags_free(&t.d);
    expect_error(t.g, f, "cannot differentiate a fused node: run autodiff before fuse");
}
END_TEST

START_TEST(max_pool2d_grad_is_an_error)
{
    T t = {.g = ir_graph_new("t")};
    diags_init(&t.d);
    Attrs a = pool_attrs(2, 2, 0);
    Node *g = OPA(&t, OP_MAX_POOL2D_GRAD, D(&t, "x", S4(1, 4, 4, 1), V_RANGE, -1, 1),
                  P(&t, "dy", S4(1, 2, 2, 1), V_RANGE, -1, 1), &a);
    diags_free(&t.d);
    expect_error(t.g, g, "second derivative through max_pool2d is not supported");
}
END_TEST

/* fuse makes these after autodiff; differentiating them is an error */
START_TEST(softmax_rows_are_errors)
{
    const Op ops[2] = {OP_LOG_SOFTMAX_DOT, OP_LOG_SOFTMAX_GRAD};
    const char *msgs[2] = {"cannot differentiate log_softmax_dot: it comes from fuse, run autodiff before fuse",
                           "cannot differentiate log_softmax_grad: it comes from fuse, run autodiff before fuse"};
    for (int k = 0; k < 2; k++) {
        T t = {.g = ir_graph_new("t")};
        diags_init(&t.d);
        Attrs a = ir_attrs();
        a.naxes = 1;
        a.axes[0] = 1;
        Node *x = X23(&t, V_RANGE, -1, 1);
        Node *y = OPA(&t, ops[k], x, D(&t, "t", S2(2, 3), V_RANGE, 0, 1), &a);
        ck_assert_ptr_nonnull(y);
        diags_free(&t.d);
        expect_error(t.g, y, msgs[k]);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gradcheck_ops");
    TCase *t = tcase_create("ops");
    tcase_set_timeout(t, 120);
    tcase_add_loop_test(t, op_gradient, 0, ARRAY_LEN(cases));
    tcase_add_test(t, every_diff_op_has_a_case);
    tcase_add_test(t, phase_is_an_error);
    tcase_add_test(t, fused_is_an_error);
    tcase_add_test(t, result_is_an_error);
    tcase_add_test(t, max_pool2d_grad_is_an_error);
    tcase_add_test(t, softmax_rows_are_errors);
    suite_add_tcase(s, t);
    return tu_run(s);
}
