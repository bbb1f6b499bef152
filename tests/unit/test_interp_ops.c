/* The reference interpreter, op by op: every op in f32 and f64 on small
 * tensors whose results are worked out by hand (or by an independent
 * formula such as an adjoint identity), and a final check that every row
 * of the op table was exercised in both dtypes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/interp/interp.h"
#include "runtime/kernels.h"
#include "testutil.h"

/* no file name: ir_intern_file passes NULL to memcpy for a graph's first file */
static const SrcLoc L = {NULL, 1, 1};

/* ---- per-graph state ---- */
static Graph *g;
static Diags d;
static TensorMap inputs, params;
static DType DT;
static Tensor *results[16];
static int nresults;
static bool covered[OP_COUNT][2]; /* [op][0 = f32, 1 = f64], across all tests */

static void end_graph(void)
{
    for (int i = 0; i < nresults; i++)
        rt_tensor_free(results[i]);
    nresults = 0;
    if (g) {
        ir_graph_free(g);
        diags_free(&d);
        rt_map_free(&inputs);
        rt_map_free(&params);
    }
    g = NULL;
}

static void begin(DType dt)
{
    end_graph();
    DT = dt;
    g = ir_graph_new("t");
    diags_init(&d);
    rt_map_init(&inputs);
    rt_map_init(&params);
}

static void teardown(void)
{
    end_graph();
}

static const DType both[2] = {DT_F32, DT_F64};
#define FOR_DTYPES for (int dti_ = 0; dti_ < 2 && (begin(both[dti_]), 1); dti_++)

/* Relative tolerance for the current dtype. */
static double tol(void)
{
    return DT == DT_F32 ? 1e-6 : 1e-14;
}

static Tensor *tensor(DType dt, int rank, const int64_t *dims, const double *v)
{
    Tensor *t = rt_tensor_new(dt, rank, dims);
    ck_assert_ptr_nonnull(t);
    for (int64_t i = 0; i < t->numel; i++) {
        if (dt == DT_F32)
            ((float *)t->data)[i] = (float)v[i];
        else if (dt == DT_F64)
            ((double *)t->data)[i] = v[i];
        else
            ((int32_t *)t->data)[i] = (int32_t)v[i];
    }
    return t;
}

/* An INPUT of static shape dims fed with v. */
static Node *inp_dt(const char *name, DType dt, int rank, const int64_t *dims, const double *v)
{
    rt_map_put(&inputs, name, tensor(dt, rank, dims, v));
    return ir_input(g, name, dt, ir_shape(rank, dims), L);
}

static Node *inp(const char *name, int rank, const int64_t *dims, const double *v)
{
    return inp_dt(name, DT, rank, dims, v);
}

/* An INPUT whose axis 0 is N, fed with a batch of `batch`. */
static Node *inp_n(const char *name, int rank, const int64_t *dims, int64_t batch, const double *v)
{
    int64_t td[IR_MAXRANK];
    memcpy(td, dims, (size_t)rank * sizeof *td);
    td[0] = batch;
    rt_map_put(&inputs, name, tensor(DT, rank, td, v));
    Shape s = ir_shape(rank, dims);
    s.d[0] = IR_DIM_N;
    return ir_input(g, name, DT, s, L);
}

static Node *op(Op o, Node **in, int nin, const Attrs *a)
{
    Node *n = ir_op(g, o, in, nin, a, L, &d);
    if (!n) {
        diags_print(&d, stderr);
        ck_abort_msg("ir_op(%s) failed", ir_ops[o].name);
    }
    return n;
}

static Node *op1(Op o, Node *x, const Attrs *a)
{
    return op(o, &x, 1, a);
}

static Node *op2(Op o, Node *x, Node *y, const Attrs *a)
{
    Node *in[2] = {x, y};
    return op(o, in, 2, a);
}

/* Evaluate y (added as an output) and mark every op of the graph covered. */
static Tensor *eval(Node *y)
{
    ir_add_output(g, OUT_VALUE, "y", y, NULL, false);
    Tensor *outs[16];
    ck_assert_int_le(g->nouts, 16);
    RunOpts o = {7, 3};
    bool ok = be_interp_run(g, &params, &inputs, &o, outs, &d);
    if (!ok)
        diags_print(&d, stderr);
    ck_assert_msg(ok, "be_interp_run failed");
    for (int i = 0; i < g->nouts - 1; i++)
        rt_tensor_free(outs[i]);
    for (int i = 0; i < g->nnodes; i++)
        if (ir_dtype_is_float(g->nodes[i]->dt))
            covered[g->nodes[i]->op][g->nodes[i]->dt == DT_F64] = true;
    ck_assert_int_lt(nresults, 16);
    results[nresults++] = outs[g->nouts - 1];
    return outs[g->nouts - 1];
}

static double at(const Tensor *t, int64_t i)
{
    switch (t->dt) {
    case DT_F32:
        return ((const float *)t->data)[i];
    case DT_F64:
        return ((const double *)t->data)[i];
    default:
        return ((const int32_t *)t->data)[i];
    }
}

/* Compare t with want (row-major) within relative tolerance rt. */
static void expect_dt(const Tensor *t, DType dt, int rank, const int64_t *dims, const double *want,
                      double rt)
{
    ck_assert_int_eq(t->dt, dt);
    ck_assert_int_eq(t->rank, rank);
    int64_t numel = 1;
    for (int k = 0; k < rank; k++) {
        ck_assert_int_eq(t->dims[k], dims[k]);
        numel *= dims[k];
    }
    ck_assert_int_eq(t->numel, numel);
    for (int64_t i = 0; i < numel; i++) {
        double got = at(t, i), w = want[i];
        if (isnan(w) || isinf(w)) {
            ck_assert_msg(isnan(w) ? isnan(got) : got == w, "element %lld: got %.17g, want %g",
                          (long long)i, got, w);
            continue;
        }
        double lim = rt * fmax(1.0, fabs(w));
        ck_assert_msg(fabs(got - w) <= lim, "%s element %lld: got %.17g, want %.17g",
                      ir_dtype_name(dt), (long long)i, got, w);
    }
}

static void expect(const Tensor *t, int rank, const int64_t *dims, const double *want)
{
    expect_dt(t, DT, rank, dims, want, tol());
}

static void expect_exact(const Tensor *t, int rank, const int64_t *dims, const double *want)
{
    expect_dt(t, DT, rank, dims, want, 0);
}

#define D(...) ((const int64_t[]){__VA_ARGS__})
#define V(...) ((const double[]){__VA_ARGS__})

/* ---- leaves ---- */

START_TEST(leaves)
{
    FOR_DTYPES {
        Node *x = inp("x", 2, D(2, 2), V(1, 2, 3, 4));
        rt_map_put(&params, "w", tensor(DT, 1, D(2), V(10, 20)));
        Node *w = ir_param(g, "w", DT, ir_shape1(2), (Init){INIT_ZEROS, 0, 0}, true, ROLE_WEIGHT, L);
        Attrs a = ir_attrs();
        a.to = DT;
        a.value = 1.5;
        a.shape = ir_shape2(2, 2);
        Node *c = op(OP_CONST, NULL, 0, &a);
        expect_exact(eval(x), 2, D(2, 2), V(1, 2, 3, 4));
        expect_exact(eval(w), 1, D(2), V(10, 20));
        expect_exact(eval(c), 2, D(2, 2), V(1.5, 1.5, 1.5, 1.5));
        expect_exact(eval(op2(OP_ADD, op2(OP_MUL, x, w, NULL), c, NULL)), 2, D(2, 2),
                     V(11.5, 41.5, 31.5, 81.5));
    }
}
END_TEST

START_TEST(const_i32)
{
    begin(DT_F32);
    Attrs a = ir_attrs();
    a.to = DT_I32;
    a.value = -2.7;
    a.shape = ir_shape1(3);
    Tensor *t = eval(op(OP_CONST, NULL, 0, &a));
    expect_dt(t, DT_I32, 1, D(3), V(-2, -2, -2), 0);
}
END_TEST

/* ---- unary ---- */

static void unary_case(Op o, double alpha, const double *x, const double *want, double rt)
{
    Node *in = inp("x", 1, D(5), x);
    Attrs a = ir_attrs();
    a.value = alpha;
    expect_dt(eval(op1(o, in, &a)), DT, 1, D(5), want, rt);
}

START_TEST(unary_exact)
{
    FOR_DTYPES {
        const double *x = V(-2, -0.5, 0, 0.5, 2);
        unary_case(OP_NEG, 0, x, V(2, 0.5, 0, -0.5, -2), 0);
        unary_case(OP_RELU, 0, x, V(0, 0, 0, 0.5, 2), 0);
        unary_case(OP_SQUARE, 0, x, V(4, 0.25, 0, 0.25, 4), 0);
        unary_case(OP_ABS, 0, x, V(2, 0.5, 0, 0.5, 2), 0);
        unary_case(OP_SIGN, 0, V(-3, -0.5, 0, 2, NAN), V(-1, -1, 0, 1, NAN), 0);
        unary_case(OP_SQRT, 0, V(0, 1, 4, 2.25, 2), V(0, 1, 2, 1.5, 1.4142135623730951), tol());
        unary_case(OP_RSQRT, 0, V(1, 4, 0.25, 16, 2), V(1, 0.5, 2, 0.25, 0.7071067811865476),
                   2 * tol());
    }
}
END_TEST

START_TEST(unary_transcendental)
{
    FOR_DTYPES {
        double rt = DT == DT_F32 ? 1e-6 : 1e-14;
        unary_case(OP_EXP, 0, V(0, 1, -1, 2, -20),
                   V(1, 2.718281828459045, 0.36787944117144233, 7.38905609893065,
                     2.061153622438558e-09),
                   rt);
        unary_case(OP_LOG, 0, V(1, 2.718281828459045, 0.5, 10, 0),
                   V(0, 1, -0.6931471805599453, 2.302585092994046, -INFINITY), rt);
        /* elu with alpha 0.5: 0.5 * (e^x - 1) below zero */
        unary_case(OP_ELU, 0.5, V(-2, -0.5, 0, 0.5, 2),
                   V(-0.43233235838169365, -0.19673467014368329, 0, 0.5, 2), rt);
        /* tanh against (e^2x - 1) / (e^2x + 1) */
        double xs[5] = {-3, -0.25, 0, 0.5, 1}, th[5];
        for (int i = 0; i < 5; i++)
            th[i] = (exp(2 * xs[i]) - 1) / (exp(2 * xs[i]) + 1);
        unary_case(OP_TANH, 0, xs, th, rt);
        unary_case(OP_ERF, 0, V(0, 0.5, 1, -2, 3),
                   V(0, 0.5204998778130465, 0.8427007929497149, -0.9953222650189527, 0.9999779095030014), rt);
    }
}
END_TEST

START_TEST(sigmoid_stable)
{
    FOR_DTYPES {
        /* 1 / (1 + e^-x) in double; no NaN at the extremes */
        double xs[5] = {-1000, -30, 0, 1.5, 1000}, want[5];
        for (int i = 0; i < 5; i++)
            want[i] = 1 / (1 + exp(-xs[i]));
        ck_assert(want[0] == 0 && want[4] == 1 && want[2] == 0.5);
        unary_case(OP_SIGMOID, 0, xs, want, DT == DT_F32 ? 1e-6 : 1e-14);
    }
}
END_TEST

START_TEST(cast)
{
    FOR_DTYPES {
        const double *x = V(-2.7, -0.5, 0.5, 2.9, 1e10, NAN);
        Node *in = inp("x", 1, D(6), x);
        DType other = DT == DT_F32 ? DT_F64 : DT_F32;
        Attrs a = ir_attrs();
        a.to = DT_I32;
        expect_dt(eval(op1(OP_CAST, in, &a)), DT_I32, 1, D(6),
                  V(-2, 0, 0, 2, 2147483647, 0), 0);
        a.to = other;
        /* f32 -> f64 is exact; f64 -> f32 rounds to nearest */
        double want[6];
        for (int i = 0; i < 6; i++)
            want[i] = (double)(float)x[i];
        expect_dt(eval(op1(OP_CAST, in, &a)), other, 1, D(6), want, 0);
        a.to = DT;
        Node *i32 = inp_dt("k", DT_I32, 1, D(3), V(-7, 0, 16777217));
        expect_dt(eval(op1(OP_CAST, i32, &a)), DT, 1, D(3),
                  V(-7, 0, DT == DT_F32 ? 16777216 : 16777217), 0);
        a.to = DT_I32;
        expect_dt(eval(op1(OP_CAST, op1(OP_NEG, in, NULL), &a)), DT_I32, 1, D(6),
                  V(2, 0, 0, -2, -2147483647 - 1, 0), 0);
    }
}
END_TEST

/* ---- binary ---- */

static void binary_case(Op o, const double *want, double rt)
{
    Node *a = inp("a", 2, D(2, 3), V(1, -2, 3, 4, 5, -6));
    Node *b = inp("b", 1, D(3), V(2, 0.5, -1));
    expect_dt(eval(op2(o, a, b, NULL)), DT, 2, D(2, 3), want, rt);
}

START_TEST(binary_arith)
{
    FOR_DTYPES {
        binary_case(OP_ADD, V(3, -1.5, 2, 6, 5.5, -7), 0);
        binary_case(OP_SUB, V(-1, -2.5, 4, 2, 4.5, -5), 0);
        binary_case(OP_MUL, V(2, -1, -3, 8, 2.5, 6), 0);
        binary_case(OP_DIV, V(0.5, -4, -3, 2, 10, 6), 0);
        binary_case(OP_MAXIMUM, V(2, 0.5, 3, 4, 5, -1), 0);
        binary_case(OP_MINIMUM, V(1, -2, -1, 2, 0.5, -6), 0);
        Node *p = inp("p", 2, D(2, 3), V(1, 2, 3, 4, 9, 16));
        Node *e = inp("e", 1, D(3), V(2, 0.5, -1));
        expect(eval(op2(OP_POW, p, e, NULL)), 2, D(2, 3),
               V(1, 1.4142135623730951, 1.0 / 3, 16, 3, 0.0625));
    }
}
END_TEST

START_TEST(binary_broadcast_n)
{
    FOR_DTYPES {
        /* [N,1] + [3] with N = 2 */
        Node *x = inp_n("x", 2, D(IR_DIM_N, 1), 2, V(1, 2));
        Node *b = inp("b", 1, D(3), V(10, 20, 30));
        expect_exact(eval(op2(OP_ADD, x, b, NULL)), 2, D(2, 3), V(11, 21, 31, 12, 22, 32));
        /* scalar against [2,1,2] and [3,1] against [1,2]: both sides stretch */
        Node *s = inp("s", 0, D(0), V(100));
        Node *t = inp("t", 3, D(2, 1, 2), V(1, 2, 3, 4));
        expect_exact(eval(op2(OP_SUB, s, t, NULL)), 3, D(2, 1, 2), V(99, 98, 97, 96));
        Node *c = inp("c", 2, D(3, 1), V(1, 2, 3));
        Node *r = inp("r", 2, D(1, 2), V(10, 100));
        expect_exact(eval(op2(OP_MUL, c, r, NULL)), 2, D(3, 2), V(10, 100, 20, 200, 30, 300));
    }
}
END_TEST

START_TEST(compare)
{
    FOR_DTYPES {
        Node *a = inp("a", 1, D(4), V(1, 2, 3, NAN));
        Node *b = inp("b", 1, D(4), V(2, 2, 2, 2));
        expect_exact(eval(op2(OP_GT, a, b, NULL)), 1, D(4), V(0, 0, 1, 0));
        expect_exact(eval(op2(OP_GE, a, b, NULL)), 1, D(4), V(0, 1, 1, 0));
        expect_exact(eval(op2(OP_LT, a, b, NULL)), 1, D(4), V(1, 0, 0, 0));
        expect_exact(eval(op2(OP_LE, a, b, NULL)), 1, D(4), V(1, 1, 0, 0));
        expect_exact(eval(op2(OP_EQ, a, b, NULL)), 1, D(4), V(0, 1, 0, 0));
    }
}
END_TEST

START_TEST(max_min_nan)
{
    FOR_DTYPES {
        Node *a = inp("a", 1, D(3), V(NAN, 1, 2));
        Node *b = inp("b", 1, D(3), V(1, NAN, 3));
        expect_exact(eval(op2(OP_MAXIMUM, a, b, NULL)), 1, D(3), V(NAN, NAN, 3));
        expect_exact(eval(op2(OP_MINIMUM, a, b, NULL)), 1, D(3), V(NAN, NAN, 2));
    }
}
END_TEST

START_TEST(select_broadcast)
{
    FOR_DTYPES {
        Node *c = inp("c", 2, D(3, 1), V(1, 0, NAN));
        Node *a = inp("a", 1, D(2), V(1, 2));
        Node *b = inp("b", 2, D(3, 2), V(-1, -2, -3, -4, -5, -6));
        Node *in[3] = {c, a, b};
        expect_exact(eval(op(OP_SELECT, in, 3, NULL)), 2, D(3, 2), V(1, 2, -3, -4, 1, 2));
    }
}
END_TEST

/* ---- reductions ---- */

static const double iota12[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

static Attrs axes(int n, const int *ax, bool keep)
{
    Attrs a = ir_attrs();
    a.naxes = n;
    for (int i = 0; i < n; i++)
        a.axes[i] = ax[i];
    a.keepdims = keep;
    return a;
}

START_TEST(reduce)
{
    FOR_DTYPES {
        Node *x = inp("x", 3, D(2, 3, 2), iota12);
        Attrs a02k = axes(2, (int[]){0, 2}, true), a02 = axes(2, (int[]){0, 2}, false);
        Attrs a1 = axes(1, (int[]){1}, false), all = axes(3, (int[]){0, 1, 2}, false);
        Attrs a2k = axes(1, (int[]){2}, true);
        expect_exact(eval(op1(OP_REDUCE_SUM, x, &a02k)), 3, D(1, 3, 1), V(18, 26, 34));
        expect_exact(eval(op1(OP_REDUCE_SUM, x, &a02)), 1, D(3), V(18, 26, 34));
        expect_exact(eval(op1(OP_REDUCE_MEAN, x, &a1)), 2, D(2, 2), V(3, 4, 9, 10));
        expect_exact(eval(op1(OP_REDUCE_MEAN, x, &a02k)), 3, D(1, 3, 1), V(4.5, 6.5, 8.5));
        expect_exact(eval(op1(OP_REDUCE_MAX, x, &all)), 0, D(0), V(12));
        expect_exact(eval(op1(OP_REDUCE_MAX, x, &a2k)), 3, D(2, 3, 1), V(2, 4, 6, 8, 10, 12));
    }
}
END_TEST

START_TEST(reduce_in_dtype_order)
{
    FOR_DTYPES {
        /* ((1e8 + 1) - 1e8): 0 in f32 arithmetic, 1 in f64 */
        Node *x = inp("x", 1, D(3), V(1e8, 1, -1e8));
        Attrs a = axes(1, (int[]){0}, false);
        expect_exact(eval(op1(OP_REDUCE_SUM, x, &a)), 0, D(0), V(DT == DT_F32 ? 0 : 1));
        Node *m = inp("m", 2, D(2, 2), V(-5, NAN, -1, -2));
        Attrs a1 = axes(1, (int[]){1}, false);
        expect_exact(eval(op1(OP_REDUCE_MAX, m, &a1)), 1, D(2), V(NAN, -1));
    }
}
END_TEST

START_TEST(argmax)
{
    FOR_DTYPES {
        Node *x = inp("x", 2, D(3, 4), V(1, 3, 3, 2, 5, 5, 5, 5, -1, NAN, 7, NAN));
        Attrs a1 = axes(1, (int[]){1}, false), a0k = axes(1, (int[]){0}, true);
        expect_exact(eval(op1(OP_ARGMAX, x, &a1)), 1, D(3), V(1, 0, 1));
        expect_exact(eval(op1(OP_ARGMAX, x, &a0k)), 2, D(1, 4), V(1, 2, 2, 2));
    }
}
END_TEST

/* ---- shape ops ---- */

START_TEST(broadcast_op)
{
    FOR_DTYPES {
        Node *x = inp("x", 2, D(2, 1), V(1, 2));
        Attrs a = ir_attrs();
        a.shape = ir_shape(3, D(2, 2, 3));
        expect_exact(eval(op1(OP_BROADCAST, x, &a)), 3, D(2, 2, 3),
                     V(1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2));
        Node *k = inp_dt("k", DT_I32, 1, D(2), V(4, -9));
        a.shape = ir_shape2(2, 2);
        expect_dt(eval(op1(OP_BROADCAST, k, &a)), DT_I32, 2, D(2, 2), V(4, -9, 4, -9), 0);
    }
}
END_TEST

START_TEST(reshape)
{
    FOR_DTYPES {
        Node *x = inp_n("x", 3, D(IR_DIM_N, 2, 3), 2, iota12);
        Attrs a = ir_attrs();
        a.shape = ir_shape(3, D(IR_DIM_N, 3, 2));
        expect_exact(eval(op1(OP_RESHAPE, x, &a)), 3, D(2, 3, 2), iota12);
        a.shape = ir_shape1(12);
        Node *y = inp("y", 2, D(3, 4), iota12);
        expect_exact(eval(op1(OP_RESHAPE, y, &a)), 1, D(12), iota12);
        Node *k = inp_dt("k", DT_I32, 2, D(2, 2), V(7, -8, 9, 10));
        a.shape = ir_shape(3, D(1, 4, 1));
        expect_dt(eval(op1(OP_RESHAPE, k, &a)), DT_I32, 3, D(1, 4, 1), V(7, -8, 9, 10), 0);
    }
}
END_TEST

START_TEST(transpose)
{
    FOR_DTYPES {
        double v[24], want[24];
        for (int a = 0; a < 2; a++)
            for (int b = 0; b < 3; b++)
                for (int c = 0; c < 4; c++)
                    v[(a * 3 + b) * 4 + c] = 100 * a + 10 * b + c;
        /* perm {1,2,0}: out[i,j,k] = in[k,i,j], out shape [3,4,2] */
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 4; j++)
                for (int k = 0; k < 2; k++)
                    want[(i * 4 + j) * 2 + k] = 100 * k + 10 * i + j;
        Node *x = inp("x", 3, D(2, 3, 4), v);
        Attrs a = axes(3, (int[]){1, 2, 0}, false);
        expect_exact(eval(op1(OP_TRANSPOSE, x, &a)), 3, D(3, 4, 2), want);
        Node *m = inp("m", 2, D(2, 3), V(1, 2, 3, 4, 5, 6));
        Attrs t = axes(2, (int[]){1, 0}, false);
        expect_exact(eval(op1(OP_TRANSPOSE, m, &t)), 2, D(3, 2), V(1, 4, 2, 5, 3, 6));
    }
}
END_TEST

static Attrs slice_attrs(int rank, const int64_t *b, const int64_t *e, const int64_t *s)
{
    Attrs a = ir_attrs();
    for (int k = 0; k < rank; k++) {
        a.begin[k] = b[k];
        a.end[k] = e[k];
        a.step[k] = s[k];
    }
    return a;
}

static const double grid45[20] = {0,  1,  2,  3,  4,  10, 11, 12, 13, 14,
                                  20, 21, 22, 23, 24, 30, 31, 32, 33, 34};

START_TEST(slice)
{
    FOR_DTYPES {
        Node *x = inp("x", 2, D(4, 5), grid45);
        Attrs a = slice_attrs(2, D(1, 0), D(INT64_MAX, 5), D(2, 2));
        expect_exact(eval(op1(OP_SLICE, x, &a)), 2, D(2, 3), V(10, 12, 14, 30, 32, 34));
        Attrs b = slice_attrs(2, D(0, 1), D(3, 4), D(1, 3));
        expect_exact(eval(op1(OP_SLICE, x, &b)), 2, D(3, 1), V(1, 11, 21));
        /* whole N, part of the rest; labels in i32 */
        Node *y = inp_dt("y", DT_I32, 2, D(3, 2), V(1, 2, 3, 4, 5, 6));
        Attrs c = slice_attrs(2, D(1, 1), D(3, 2), D(1, 1));
        expect_dt(eval(op1(OP_SLICE, y, &c)), DT_I32, 2, D(2, 1), V(4, 6), 0);
        Node *n = inp_n("n", 2, D(IR_DIM_N, 3), 2, V(1, 2, 3, 4, 5, 6));
        Attrs e = slice_attrs(2, D(0, 2), D(INT64_MAX, 3), D(1, 1));
        expect_exact(eval(op1(OP_SLICE, n, &e)), 2, D(2, 1), V(3, 6));
    }
}
END_TEST

START_TEST(slice_grad)
{
    FOR_DTYPES {
        Node *gr = inp("g", 2, D(2, 3), V(1, 2, 3, 4, 5, 6));
        Attrs a = slice_attrs(2, D(1, 0), D(INT64_MAX, 5), D(2, 2));
        a.shape = ir_shape2(4, 5);
        expect_exact(eval(op1(OP_SLICE_GRAD, gr, &a)), 2, D(4, 5),
                     V(0, 0, 0, 0, 0, 1, 0, 2, 0, 3, 0, 0, 0, 0, 0, 4, 0, 5, 0, 6));
    }
}
END_TEST

START_TEST(concat)
{
    FOR_DTYPES {
        Node *a = inp("a", 2, D(2, 1), V(1, 2));
        Node *b = inp("b", 2, D(2, 2), V(3, 4, 5, 6));
        Node *c = inp("c", 2, D(1, 2), V(7, 8));
        Attrs ax1 = axes(1, (int[]){1}, false), ax0 = axes(1, (int[]){0}, false);
        expect_exact(eval(op2(OP_CONCAT, a, b, &ax1)), 2, D(2, 3), V(1, 3, 4, 2, 5, 6));
        Node *in[3] = {b, c, b};
        expect_exact(eval(op(OP_CONCAT, in, 3, &ax0)), 2, D(5, 2), V(3, 4, 5, 6, 7, 8, 3, 4, 5, 6));
    }
}
END_TEST

/* ---- matmul ---- */

START_TEST(matmul)
{
    FOR_DTYPES {
        Node *a = inp("a", 2, D(2, 3), V(1, 2, 3, 4, 5, 6));
        Node *b = inp("b", 2, D(3, 2), V(7, 8, 9, 10, 11, 12));
        Node *at = inp("at", 2, D(3, 2), V(1, 4, 2, 5, 3, 6));
        Node *bt = inp("bt", 2, D(2, 3), V(7, 9, 11, 8, 10, 12));
        const double *want = V(58, 64, 139, 154);
        Attrs ta = ir_attrs(), tb = ir_attrs(), tab = ir_attrs();
        ta.ta = true;
        tb.tb = true;
        tab.ta = tab.tb = true;
        expect_exact(eval(op2(OP_MATMUL, a, b, NULL)), 2, D(2, 2), want);
        expect_exact(eval(op2(OP_MATMUL, at, b, &ta)), 2, D(2, 2), want);
        expect_exact(eval(op2(OP_MATMUL, a, bt, &tb)), 2, D(2, 2), want);
        expect_exact(eval(op2(OP_MATMUL, at, bt, &tab)), 2, D(2, 2), want);
        /* x^T x contracts over N */
        Node *x = inp_n("x", 2, D(IR_DIM_N, 2), 3, V(1, 2, 3, 4, 5, 6));
        expect_exact(eval(op2(OP_MATMUL, x, x, &ta)), 2, D(2, 2), V(35, 44, 44, 56));
    }
}
END_TEST

/* stacks of matrices: one GEMM per matrix, batch axes broadcast */
START_TEST(matmul_batched)
{
    FOR_DTYPES {
        Node *a = inp("a", 3, D(2, 2, 3), V(1, 2, 3, 4, 5, 6, 1, 0, 0, 0, 1, 0));
        Node *b = inp("b", 2, D(3, 2), V(7, 8, 9, 10, 11, 12));
        expect_exact(eval(op2(OP_MATMUL, a, b, NULL)), 3, D(2, 2, 2), V(58, 64, 139, 154, 7, 8, 9, 10));
        /* [1,2,2] against [3,2,2] with tb: the one left matrix meets each right one */
        Node *l = inp("l", 3, D(1, 2, 2), V(1, 2, 3, 4));
        Node *r = inp("r", 3, D(3, 2, 2), V(1, 0, 0, 1, 0, 1, 1, 0, 2, 0, 0, 3));
        Attrs tb = ir_attrs();
        tb.tb = true;
        expect_exact(eval(op2(OP_MATMUL, l, r, &tb)), 3, D(3, 2, 2), V(1, 2, 3, 4, 2, 1, 4, 3, 2, 6, 6, 12));
        /* ta on a stack over N */
        Node *x = inp_n("x", 3, D(IR_DIM_N, 2, 1), 2, V(1, 2, 3, 4));
        Attrs ta = ir_attrs();
        ta.ta = true;
        expect_exact(eval(op2(OP_MATMUL, x, x, &ta)), 3, D(2, 1, 1), V(5, 25));
    }
}
END_TEST

/* ---- convolution ---- */

static const double x16[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

static Attrs conv_attrs(int stride, int pad)
{
    Attrs a = ir_attrs();
    a.stride[0] = a.stride[1] = stride;
    a.pad[0] = a.pad[1] = a.pad[2] = a.pad[3] = pad;
    return a;
}

START_TEST(conv2d)
{
    FOR_DTYPES {
        Node *x = inp("x", 4, D(1, 4, 4, 1), x16);
        Node *k = inp("k", 4, D(2, 2, 1, 1), V(1, 2, 3, 4));
        Attrs valid = conv_attrs(1, 0), s2p1 = conv_attrs(2, 1);
        /* y[i,j] = x[i,j] + 2x[i,j+1] + 3x[i+1,j] + 4x[i+1,j+1] = 40i + 10j + 44 */
        expect_exact(eval(op2(OP_CONV2D, x, k, &valid)), 4, D(1, 3, 3, 1),
                     V(44, 54, 64, 84, 94, 104, 124, 134, 144));
        expect_exact(eval(op2(OP_CONV2D, x, k, &s2p1)), 4, D(1, 3, 3, 1),
                     V(4, 18, 12, 46, 94, 44, 26, 44, 16));
        /* asymmetric padding: top 1, bottom 0, left 0, right 1 */
        Attrs asym = conv_attrs(1, 0);
        asym.pad[0] = 1;
        asym.pad[3] = 1;
        Node *x2 = inp("x2", 4, D(1, 2, 2, 1), V(1, 2, 3, 4));
        /* rows -1..1, cols 0..2: y[0,0] = 3*1 + 4*2, y[0,1] = 3*2, y[1,0] = 1+4+9+16 ... */
        expect_exact(eval(op2(OP_CONV2D, x2, k, &asym)), 4, D(1, 2, 2, 1),
                     V(11, 6, 1 + 2 * 2 + 3 * 3 + 4 * 4, 2 + 3 * 4));
    }
}
END_TEST

START_TEST(conv2d_channels_batch)
{
    FOR_DTYPES {
        /* pointwise kernel [1,1,2,3]: each pixel (a, b) -> a*[1,2,3] + b*[4,5,6];
         * the second example is the first negated */
        Node *x = inp_n("x", 4, D(IR_DIM_N, 2, 2, 2), 2,
                        V(1, 0, 0, 1, 1, 1, 2, -1, -1, 0, 0, -1, -1, -1, -2, 1));
        Node *k = inp("k", 4, D(1, 1, 2, 3), V(1, 2, 3, 4, 5, 6));
        Attrs a = conv_attrs(1, 0);
        expect_exact(eval(op2(OP_CONV2D, x, k, &a)), 4, D(2, 2, 2, 3),
                     V(1, 2, 3, 4, 5, 6, 5, 7, 9, -2, -1, 0, -1, -2, -3, -4, -5, -6, -5, -7, -9,
                       2, 1, 0));
    }
}
END_TEST

START_TEST(conv2d_grads)
{
    FOR_DTYPES {
        Node *dy = inp("dy", 4, D(1, 3, 3, 1), V(1, 1, 1, 1, 1, 1, 1, 1, 1));
        Node *k = inp("k", 4, D(2, 2, 1, 1), V(1, 2, 3, 4));
        Node *x = inp("x", 4, D(1, 4, 4, 1), x16);
        Attrs gi = conv_attrs(1, 0), gk = conv_attrs(1, 0);
        gi.shape = ir_shape(4, D(1, 4, 4, 1));
        gk.shape = ir_shape(4, D(2, 2, 1, 1));
        /* dx[i,j] = sum of k[ky,kx] with 0 <= i-ky, j-kx <= 2 */
        expect_exact(eval(op2(OP_CONV2D_GRAD_INPUT, dy, k, &gi)), 4, D(1, 4, 4, 1),
                     V(1, 3, 3, 2, 4, 10, 10, 6, 4, 10, 10, 6, 3, 7, 7, 4));
        /* dk[ky,kx] = sum of the 3x3 block of x at (ky,kx) = 9 (4ky + kx + 6) */
        expect_exact(eval(op2(OP_CONV2D_GRAD_KERNEL, x, dy, &gk)), 4, D(2, 2, 1, 1),
                     V(54, 63, 90, 99));
    }
}
END_TEST

static double dot(const Tensor *a, const Tensor *b)
{
    ck_assert_int_eq(a->numel, b->numel);
    double s = 0;
    for (int64_t i = 0; i < a->numel; i++)
        s += at(a, i) * at(b, i);
    return s;
}

static void fill_pattern(double *v, int n, int seed)
{
    for (int i = 0; i < n; i++)
        v[i] = (double)((i * 7 + seed * 13) % 11) - 5;
}

/* <conv(x, k), dy> = <x, grad_input(dy, k)> = <k, grad_kernel(x, dy)>
 * with stride 2, uneven padding and several channels. */
START_TEST(conv2d_adjoint)
{
    FOR_DTYPES {
        double xv[2 * 5 * 6 * 3], kv[3 * 2 * 3 * 4], dyv[2 * 2 * 3 * 4];
        fill_pattern(xv, ARRAY_LEN(xv), 1);
        fill_pattern(kv, ARRAY_LEN(kv), 2);
        fill_pattern(dyv, ARRAY_LEN(dyv), 3);
        Node *x = inp("x", 4, D(2, 5, 6, 3), xv);
        Node *k = inp("k", 4, D(3, 2, 3, 4), kv);
        Node *dy = inp("dy", 4, D(2, 2, 3, 4), dyv);
        Attrs a = ir_attrs();
        a.stride[0] = 2;
        a.stride[1] = 2;
        a.pad[0] = 1, a.pad[1] = 0, a.pad[2] = 0, a.pad[3] = 1;
        Tensor *y = eval(op2(OP_CONV2D, x, k, &a));
        ck_assert_int_eq(y->dims[1], 2); /* (5 + 1 - 3) / 2 + 1 */
        ck_assert_int_eq(y->dims[2], 3); /* (6 + 1 - 2) / 2 + 1 */
        Attrs gi = a, gk = a;
        gi.shape = ir_shape(4, D(2, 5, 6, 3));
        gk.shape = ir_shape(4, D(3, 2, 3, 4));
        Tensor *dx = eval(op2(OP_CONV2D_GRAD_INPUT, dy, k, &gi));
        Tensor *dk = eval(op2(OP_CONV2D_GRAD_KERNEL, x, dy, &gk));
        Tensor *xt = rt_map_get(&inputs, "x"), *kt = rt_map_get(&inputs, "k");
        Tensor *dyt = rt_map_get(&inputs, "dy");
        double lhs = dot(y, dyt);
        ck_assert(lhs != 0);
        ck_assert_double_eq(lhs, dot(xt, dx));
        ck_assert_double_eq(lhs, dot(kt, dk));
    }
}
END_TEST

/* ---- pooling ---- */

static Attrs pool_attrs(int window, int stride, int pad)
{
    Attrs a = conv_attrs(stride, pad);
    a.window[0] = a.window[1] = window;
    return a;
}

START_TEST(max_pool)
{
    FOR_DTYPES {
        Node *x = inp("x", 4, D(1, 4, 4, 1), V(1, 5, 2, 2, 3, 4, 2, 0, 9, 9, 1, 1, 9, 8, 1, 1));
        Attrs a = pool_attrs(2, 2, 0);
        expect_exact(eval(op1(OP_MAX_POOL2D, x, &a)), 4, D(1, 2, 2, 1), V(5, 2, 9, 1));
        /* padding never wins: all-negative input, window 3 with pad 1 */
        Node *n = inp("n", 4, D(1, 2, 2, 1), V(-1, -2, -3, -4));
        Attrs p = pool_attrs(3, 1, 1);
        expect_exact(eval(op1(OP_MAX_POOL2D, n, &p)), 4, D(1, 2, 2, 1), V(-1, -1, -1, -1));
    }
}
END_TEST

START_TEST(max_pool_grad)
{
    FOR_DTYPES {
        /* ties go to the first maximal position in row-major window order */
        Node *x = inp("x", 4, D(1, 4, 4, 1), V(1, 5, 2, 2, 3, 4, 2, 0, 9, 9, 1, 1, 9, 8, 1, 1));
        Node *dy = inp("dy", 4, D(1, 2, 2, 1), V(1, 2, 3, 4));
        Attrs a = pool_attrs(2, 2, 0);
        expect_exact(eval(op2(OP_MAX_POOL2D_GRAD, x, dy, &a)), 4, D(1, 4, 4, 1),
                     V(0, 1, 2, 0, 0, 0, 0, 0, 3, 0, 4, 0, 0, 0, 0, 0));
        /* overlapping windows that share their maximum accumulate */
        Node *o = inp("o", 4, D(1, 3, 3, 1), V(1, 2, 3, 4, 9, 5, 6, 7, 8));
        Attrs s1 = pool_attrs(2, 1, 0);
        expect_exact(eval(op2(OP_MAX_POOL2D_GRAD, o, dy, &s1)), 4, D(1, 3, 3, 1),
                     V(0, 0, 0, 0, 10, 0, 0, 0, 0));
        /* with padding and two channels: channel 1 is channel 0 negated */
        Node *c = inp("c", 4, D(1, 2, 2, 2), V(1, -1, 2, -2, 3, -3, 4, -4));
        Node *dc = inp("dc", 4, D(1, 1, 1, 2), V(10, 20));
        Attrs p = pool_attrs(3, 1, 1);
        p.pad[1] = p.pad[3] = 0;
        expect_exact(eval(op2(OP_MAX_POOL2D_GRAD, c, dc, &p)), 4, D(1, 2, 2, 2),
                     V(0, 20, 0, 0, 0, 0, 10, 0));
    }
}
END_TEST

START_TEST(avg_pool_same)
{
    FOR_DTYPES {
        Node *x = inp("x", 4, D(1, 3, 3, 1), V(1, 2, 3, 4, 5, 6, 7, 8, 9));
        Attrs a = pool_attrs(3, 1, 1);
        /* mean of the in-range neighbours only */
        expect_exact(eval(op1(OP_AVG_POOL2D, x, &a)), 4, D(1, 3, 3, 1),
                     V(3, 3.5, 4, 4.5, 5, 5.5, 6, 6.5, 7));
        Node *dy = inp("dy", 4, D(1, 3, 3, 1), V(1, 1, 1, 1, 1, 1, 1, 1, 1));
        a.shape = ir_shape(4, D(1, 3, 3, 1));
        double c = 1.0 / 4 + 2.0 / 6 + 1.0 / 9, e = 2.0 / 4 + 3.0 / 6 + 1.0 / 9,
               m = 4.0 / 4 + 4.0 / 6 + 1.0 / 9;
        expect(eval(op1(OP_AVG_POOL2D_GRAD, dy, &a)), 4, D(1, 3, 3, 1), V(c, e, c, e, m, e, c, e, c));
        /* stride 2, window 2, no padding: plain 2x2 means */
        Node *y = inp("y", 4, D(1, 4, 4, 1), x16);
        Attrs b = pool_attrs(2, 2, 0);
        expect_exact(eval(op1(OP_AVG_POOL2D, y, &b)), 4, D(1, 2, 2, 1), V(3.5, 5.5, 11.5, 13.5));
    }
}
END_TEST

/* <avg_pool(x), dy> = <x, avg_pool_grad(dy)> with stride and uneven padding. */
START_TEST(avg_pool_adjoint)
{
    FOR_DTYPES {
        double xv[2 * 5 * 4 * 2], dyv[2 * 3 * 2 * 2];
        fill_pattern(xv, ARRAY_LEN(xv), 4);
        fill_pattern(dyv, ARRAY_LEN(dyv), 5);
        Node *x = inp("x", 4, D(2, 5, 4, 2), xv);
        Node *dy = inp("dy", 4, D(2, 3, 2, 2), dyv);
        Attrs a = pool_attrs(3, 2, 0);
        a.pad[0] = 1, a.pad[1] = 1, a.pad[2] = 0, a.pad[3] = 1;
        Tensor *y = eval(op1(OP_AVG_POOL2D, x, &a));
        a.shape = ir_shape(4, D(2, 5, 4, 2));
        Tensor *dx = eval(op1(OP_AVG_POOL2D_GRAD, dy, &a));
        double lhs = dot(y, rt_map_get(&inputs, "dy")), rhs = dot(rt_map_get(&inputs, "x"), dx);
        ck_assert_msg(fabs(lhs - rhs) <= 1e-5 * fabs(lhs), "%.17g vs %.17g", lhs, rhs);
    }
}
END_TEST

/* ---- softmax, one_hot, dropout ---- */

START_TEST(softmax)
{
    FOR_DTYPES {
        const double *sm = V(0.090030573170380462, 0.24472847105479764, 0.66524095577481771);
        const double *lsm = V(-2.4076059644443806, -1.4076059644443806, -0.40760596444438063);
        Node *x = inp("x", 1, D(3), V(1, 2, 3));
        Node *big = inp("big", 1, D(3), V(1001, 1002, 1003));
        Attrs a0 = axes(1, (int[]){0}, false);
        expect(eval(op1(OP_SOFTMAX, x, &a0)), 1, D(3), sm);
        expect(eval(op1(OP_LOG_SOFTMAX, x, &a0)), 1, D(3), lsm);
        expect(eval(op1(OP_SOFTMAX, big, &a0)), 1, D(3), sm);
        expect(eval(op1(OP_LOG_SOFTMAX, big, &a0)), 1, D(3), lsm);
        /* over axis 0 of a [3,2]: columns [1,2,3] and [0,0,0] */
        Node *m = inp("m", 2, D(3, 2), V(1, 0, 2, 0, 3, 0));
        double third = 1.0 / 3;
        expect(eval(op1(OP_SOFTMAX, m, &a0)), 2, D(3, 2),
               V(sm[0], third, sm[1], third, sm[2], third));
    }
}
END_TEST

/* log_softmax_dot: one-hot and soft labels (not summing to 1), a middle
 * axis, logits of +-1e4 (exact: the row's log-sum-exp is 0 there). */
START_TEST(log_softmax_dot)
{
    FOR_DTYPES {
        const double *lsm = V(-2.4076059644443806, -1.4076059644443806, -0.40760596444438063);
        Node *z = inp("z", 2, D(4, 3), V(1, 2, 3, 1, 2, 3, 1001, 1002, 1003, 1, 2, 3));
        Node *t = inp("t", 2, D(4, 3), V(0, 0, 1, 0.2, 0.3, 0.5, 1, 1, 0, 0, 0, 0));
        Attrs a1 = axes(1, (int[]){1}, false);
        expect(eval(op2(OP_LOG_SOFTMAX_DOT, z, t, &a1)), 1, D(4),
               V(lsm[2], 0.2 * lsm[0] + 0.3 * lsm[1] + 0.5 * lsm[2], lsm[0] + lsm[1], 0));
        Node *big = inp("big", 2, D(3, 3), V(1e4, -1e4, 0, -1e4, -1e4, 1e4, -1e4, 1e4, -1e4));
        Node *oh = inp("oh", 2, D(3, 3), V(1, 0, 0, 1, 0, 0, 0, 0.5, 0.5));
        expect_exact(eval(op2(OP_LOG_SOFTMAX_DOT, big, oh, &a1)), 1, D(3), V(0, -2e4, -1e4));
        /* over axis 0 of a [3,2]: columns [1,2,3] and [0,0,0] */
        Node *m = inp("m", 2, D(3, 2), V(1, 0, 2, 0, 3, 0));
        Node *mt = inp("mt", 2, D(3, 2), V(0, 1, 1, 0, 0, 2));
        Attrs a0 = axes(1, (int[]){0}, false);
        expect(eval(op2(OP_LOG_SOFTMAX_DOT, m, mt, &a0)), 1, D(2), V(lsm[1], -3 * log(3.0)));
    }
}
END_TEST

/* log_softmax_grad = gy - softmax(z) * sum(gy), also for +-1e4 logits. */
START_TEST(log_softmax_grad)
{
    FOR_DTYPES {
        const double *sm = V(0.090030573170380462, 0.24472847105479764, 0.66524095577481771);
        Node *z = inp("z", 2, D(2, 3), V(1, 2, 3, 1001, 1002, 1003));
        Node *gy = inp("gy", 2, D(2, 3), V(0.5, -1, 2, 0, 0, -1));
        Attrs a1 = axes(1, (int[]){1}, false);
        expect(eval(op2(OP_LOG_SOFTMAX_GRAD, z, gy, &a1)), 2, D(2, 3),
               V(0.5 - 1.5 * sm[0], -1 - 1.5 * sm[1], 2 - 1.5 * sm[2], sm[0], sm[1], sm[2] - 1));
        Node *big = inp("big", 2, D(2, 3), V(1e4, -1e4, 0, -1e4, 1e4, 1e4));
        Node *g2 = inp("g2", 2, D(2, 3), V(1, 2, 3, 0, 0, -1));
        expect(eval(op2(OP_LOG_SOFTMAX_GRAD, big, g2, &a1)), 2, D(2, 3), V(-5, 2, 3, 0, 0.5, -0.5));
    }
}
END_TEST

static void fill_wave(double *v, int n, double scale, int seed)
{
    for (int i = 0; i < n; i++)
        v[i] = scale * sin(1.7 * i + seed);
}

static void expect_same_bits(const Tensor *a, const Tensor *b)
{
    ck_assert_int_eq(a->numel, b->numel);
    ck_assert_int_eq(a->dt, b->dt);
    ck_assert_msg(memcmp(a->data, b->data, (size_t)a->numel * (size_t)ir_dtype_size(a->dt)) == 0,
                  "%s: the fused op and its composition differ", ir_dtype_name(a->dt));
}

/* Both ops round exactly like the primitive ops fuse replaces them with:
 * reduce_sum(mul(t, log_softmax(z))) and
 * sub(gy, mul(exp(log_softmax(z)), reduce_sum(gy, keepdims))), over the
 * last and a middle axis, with a row of +-1e4 logits. */
START_TEST(softmax_rows_match_composition)
{
    for (int ax = 1; ax <= 2; ax++)
        FOR_DTYPES {
            double zv[2 * 4 * 5], tv[2 * 4 * 5], gv[2 * 4 * 5];
            fill_wave(zv, 40, 4, 1);
            fill_wave(tv, 40, 1, 2);
            fill_wave(gv, 40, 2, 3);
            zv[0] = 1e4, zv[1] = -1e4;
            Node *z = inp("z", 3, D(2, 4, 5), zv), *t = inp("t", 3, D(2, 4, 5), tv);
            Node *gy = inp("gy", 3, D(2, 4, 5), gv);
            Attrs a = axes(1, (int[]){ax}, false), k = axes(1, (int[]){ax}, true);
            Node *l = op1(OP_LOG_SOFTMAX, z, &a);
            Tensor *dot = eval(op2(OP_LOG_SOFTMAX_DOT, z, t, &a));
            Tensor *dot_c = eval(op1(OP_REDUCE_SUM, op2(OP_MUL, t, l, NULL), &a));
            expect_same_bits(dot, dot_c);
            Tensor *grad = eval(op2(OP_LOG_SOFTMAX_GRAD, z, gy, &a));
            Node *p = op2(OP_MUL, op1(OP_EXP, l, NULL), op1(OP_REDUCE_SUM, gy, &k), NULL);
            Tensor *grad_c = eval(op2(OP_SUB, gy, p, NULL));
            expect_same_bits(grad, grad_c);
        }
}
END_TEST

START_TEST(one_hot)
{
    FOR_DTYPES {
        Node *x = inp("x", 1, D(5), V(0, 2, 3, -1, 1.5));
        Attrs a = ir_attrs();
        a.depth = 3;
        a.to = DT;
        expect_exact(eval(op1(OP_ONE_HOT, x, &a)), 2, D(5, 3),
                     V(1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0));
        Node *k = inp_dt("k", DT_I32, 2, D(2, 1), V(1, 5));
        expect_exact(eval(op1(OP_ONE_HOT, k, &a)), 3, D(2, 1, 3), V(0, 1, 0, 0, 0, 0));
    }
}
END_TEST

START_TEST(gather)
{
    FOR_DTYPES {
        Node *x = inp("x", 2, D(3, 2), V(1, 2, 3, 4, 5, 6));
        Node *i = inp_dt("i", DT_I32, 1, D(3), V(2, 0, 2));
        Node *f = inp("f", 2, D(1, 3), V(1, 1, 0));
        Attrs a0 = axes(1, (int[]){0}, false), a1 = axes(1, (int[]){1}, false);
        expect_exact(eval(op2(OP_GATHER, x, i, &a0)), 2, D(3, 2), V(5, 6, 1, 2, 5, 6));
        expect_exact(eval(op2(OP_GATHER, x, f, &a1)), 3, D(3, 1, 3), V(2, 2, 1, 4, 4, 3, 6, 6, 5));
        /* the adjoint adds the rows of repeated indices, zeros elsewhere */
        Attrs s = a0;
        s.shape = ir_shape2(3, 2);
        expect_exact(eval(op2(OP_GATHER_GRAD, x, i, &s)), 2, D(3, 2), V(3, 4, 0, 0, 6, 8));
        Attrs s1 = a1;
        s1.shape = ir_shape2(3, 2);
        Node *gy = inp("gy", 3, D(3, 1, 3), V(1, 2, 3, 4, 5, 6, 7, 8, 9));
        expect_exact(eval(op2(OP_GATHER_GRAD, gy, f, &s1)), 2, D(3, 2), V(3, 3, 6, 9, 9, 15));
    }
}
END_TEST

/* An index outside the axis, negative or not an integer is an error at
 * the op's line, in both ops. */
START_TEST(gather_bad_index)
{
    const double bad[3] = {3, -1, 0.5};
    const char *want[3] = {"gather: index 3 is not an integer in [0, 3), the range of the gathered axis",
                           "gather_grad: index -1 is not an integer in [0, 3), the range of the gathered axis",
                           "gather: index 0.5 is not an integer in [0, 3), the range of the gathered axis"};
    for (int k = 0; k < 3; k++) {
        begin(DT_F64);
        Node *x = inp("x", 2, D(3, 2), V(1, 2, 3, 4, 5, 6));
        Node *i = inp("i", 1, D(2), V(1, bad[k]));
        Attrs a = axes(1, (int[]){0}, false);
        a.shape = ir_shape2(3, 2);
        Node *y = k == 1 ? op2(OP_GATHER_GRAD, op2(OP_GATHER, x, inp("j", 1, D(2), V(0, 1)), &a), i, &a)
                         : op2(OP_GATHER, x, i, &a);
        y->loc = (SrcLoc){NULL, 7, 9};
        ir_add_output(g, OUT_VALUE, "y", y, NULL, false);
        Tensor *out = NULL;
        RunOpts o = {7, 3};
        ck_assert(!be_interp_run(g, &params, &inputs, &o, &out, &d));
        ck_assert_int_eq(d.nerrors, 1);
        ck_assert_str_eq(d.v[0].msg, want[k]);
        ck_assert_int_eq(d.v[0].loc.line, 7);
        ck_assert_int_eq(d.v[0].loc.col, 9);
    }
}
END_TEST

enum { NDROP = 100000 };

static Tensor *mask_for(uint64_t seed, uint64_t step, uint32_t stream, double rate)
{
    double *zeros = calloc(NDROP, sizeof(double));
    begin(DT);
    Node *x = inp("x", 1, D(NDROP), zeros);
    free(zeros);
    Attrs a = ir_attrs();
    a.value = rate;
    a.stream = stream;
    ir_add_output(g, OUT_VALUE, "m", op1(OP_DROPOUT_MASK, x, &a), NULL, false);
    Tensor *out;
    RunOpts o = {seed, step};
    ck_assert(be_interp_run(g, &params, &inputs, &o, &out, &d));
    covered[OP_DROPOUT_MASK][DT == DT_F64] = true;
    return out;
}

static int64_t count_diff(const Tensor *a, const Tensor *b)
{
    int64_t n = 0;
    for (int64_t i = 0; i < a->numel; i++)
        n += at(a, i) != at(b, i);
    return n;
}

START_TEST(dropout_mask)
{
    for (int k = 0; k < 2; k++) {
        DT = both[k];
        double rate = 0.3;
        double keep = DT == DT_F32 ? (double)(1.0f / (1.0f - 0.3f)) : 1.0 / (1.0 - 0.3);
        Tensor *m = mask_for(42, 5, 9, rate);
        int64_t zeros = 0;
        for (int64_t i = 0; i < m->numel; i++) {
            double v = at(m, i);
            ck_assert_msg(v == 0 || v == keep, "mask value %.17g", v);
            zeros += v == 0;
            /* the documented formula */
            ck_assert(v == (rt_uniform(42, 9, 5, (uint64_t)i) >= rate ? keep : 0));
        }
        double frac = (double)zeros / NDROP;
        ck_assert_msg(fabs(frac - rate) < 0.01, "fraction of zeros %g", frac);
        Tensor *same = mask_for(42, 5, 9, rate), *step = mask_for(42, 6, 9, rate);
        Tensor *stream = mask_for(42, 5, 10, rate), *seed = mask_for(43, 5, 9, rate);
        ck_assert_int_eq(count_diff(m, same), 0);
        ck_assert_int_gt(count_diff(m, step), NDROP / 4);
        ck_assert_int_gt(count_diff(m, stream), NDROP / 4);
        ck_assert_int_gt(count_diff(m, seed), NDROP / 4);
        Tensor *none = mask_for(42, 5, 9, 0);
        for (int64_t i = 0; i < none->numel; i++)
            ck_assert(at(none, i) == 1);
        Tensor *all[6] = {m, same, step, stream, seed, none};
        for (int i = 0; i < 6; i++)
            rt_tensor_free(all[i]);
    }
}
END_TEST

/* ---- replica_mean ---- */

/* A stand-in for a job of processes: the mean of data with two other
 * processes holding 1 and 2 more in every element, in equal shares. */
typedef struct FakeJob {
    int calls;
    int64_t n;
    int f64;
} FakeJob;

static void fake_mean(void *env, void *data, int64_t n, int f64)
{
    FakeJob *j = env;
    j->calls++;
    j->n = n;
    j->f64 = f64;
    for (int64_t i = 0; i < n; i++) {
        if (f64)
            ((double *)data)[i] = (3 * ((double *)data)[i] + 3) / 3;
        else
            ((float *)data)[i] = (3 * ((float *)data)[i] + 3) / 3;
    }
}

START_TEST(replica_mean)
{
    FOR_DTYPES {
        static const double xv[6] = {1, -2, 0.5, 4, -8, 16};
        Node *x = inp("x", 2, D(2, 3), xv);
        Tensor *y = eval(op1(OP_REPLICA_MEAN, x, NULL));
        expect_exact(y, 2, D(2, 3), xv); /* one process: x itself */
        FakeJob job = {0, 0, -1};
        RtReplica rep = {&job, fake_mean};
        RunOpts o = {7, 3};
        Tensor *outs[2];
        ck_assert(be_interp_run_replica(g, &params, &inputs, &o, &rep, outs, &d));
        ck_assert_int_eq(job.calls, 1);
        ck_assert_int_eq(job.n, 6);
        ck_assert_int_eq(job.f64, DT == DT_F64);
        double want[6];
        for (int i = 0; i < 6; i++)
            want[i] = xv[i] + 1;
        expect_exact(outs[0], 2, D(2, 3), want);
        rt_tensor_free(outs[0]);
        /* every process must give as many elements: no batch axis */
        Node *xn = inp_n("xn", 2, D(1, 3), 2, xv);
        ck_assert_ptr_null(ir_op(g, OP_REPLICA_MEAN, &xn, 1, NULL, L, &d));
        ck_assert_int_gt(d.nerrors, 0);
    }
}
END_TEST

/* ---- fused bodies and phase ---- */

/* A FUSED node over ins whose body is built by the caller in sub. */
static Node *fused(Graph *sub, Node **ins, int nin)
{
    Node *n = arena_alloc(g->arena, sizeof(Node));
    n->op = OP_FUSED;
    n->nin = nin;
    n->in = arena_alloc(g->arena, (size_t)nin * sizeof(Node *));
    memcpy(n->in, ins, (size_t)nin * sizeof(Node *));
    n->a = ir_attrs();
    n->loc = L;
    n->sub = sub;
    ck_assert(ir_infer(n, &d));
    n->id = g->nnodes;
    VEC_PUSH(g->nodes, g->nnodes, g->cap, n);
    return n;
}

START_TEST(fused_body)
{
    FOR_DTYPES {
        Node *x = inp_n("x", 2, D(IR_DIM_N, 2), 2, V(1, -2, 3, -4));
        Node *b = inp("b", 1, D(2), V(0.5, 10));
        /* body: relu(a * b) + a, with its own constant */
        Graph *sub = ir_graph_new("body");
        Shape sx = ir_shape2(IR_DIM_N, 2);
        Node *sa = ir_input(sub, "a", DT, sx, L), *sb = ir_input(sub, "b", DT, ir_shape1(2), L);
        Node *prod = ir_binary(sub, OP_MUL, sa, sb, L, &d);
        Node *r = ir_binary(sub, OP_ADD, ir_unary(sub, OP_RELU, prod, L, &d), sa, L, &d);
        Node *c = ir_const(sub, DT, 1, L);
        ir_add_output(sub, OUT_VALUE, "out", ir_binary(sub, OP_SUB, r, c, L, &d), NULL, false);
        Node *ins[2] = {x, b};
        Node *f = fused(sub, ins, 2);
        /* row 0: relu(0.5, -20) + (1, -2) - 1 = (0.5, -3); row 1: relu(1.5, -40) + (3, -4) - 1 */
        expect_exact(eval(f), 2, D(2, 2), V(0.5, -3, 3.5, -5));
        covered[OP_FUSED][DT == DT_F64] = true;
    }
}
END_TEST

/* A softmax row kernel with fresh results read by result nodes: the
 * gradient, the loss rows and the gradient's column sum equal the
 * separate ops bit for bit (the body runs the same routines). */
START_TEST(fused_results)
{
    FOR_DTYPES {
        const double zv[6] = {1, -2, 0.5, 3, 3, -1}, tv[6] = {0, 1, 0, 0.2, 0.8, 0}, gv[6] = {0.5, -1, 2, 0, 1, -3};
        Node *z = inp_n("z", 2, D(IR_DIM_N, 3), 2, zv), *t = inp_n("t", 2, D(IR_DIM_N, 3), 2, tv);
        Node *gy = inp_n("gy", 2, D(IR_DIM_N, 3), 2, gv);
        Graph *sub = ir_graph_new("body");
        Shape sz = ir_shape2(IR_DIM_N, 3);
        Node *bz = ir_input(sub, "0", DT, sz, L), *bt = ir_input(sub, "1", DT, sz, L);
        Node *bg = ir_input(sub, "2", DT, sz, L);
        Attrs ax = ir_attrs(), sum0 = ir_attrs();
        ax.naxes = sum0.naxes = 1;
        ax.axes[0] = 1;
        sum0.axes[0] = 0;
        Node *in2[2] = {bz, bt};
        Node *bdot = ir_op(sub, OP_LOG_SOFTMAX_DOT, in2, 2, &ax, L, &d);
        in2[1] = bg;
        Node *bgrad = ir_op(sub, OP_LOG_SOFTMAX_GRAD, in2, 2, &ax, L, &d);
        Node *bsum = ir_op(sub, OP_REDUCE_SUM, &bgrad, 1, &sum0, L, &d);
        ir_add_output(sub, OUT_VALUE, NULL, bgrad, NULL, false);
        ir_add_output(sub, OUT_VALUE, NULL, bdot, NULL, false);
        ir_add_output(sub, OUT_VALUE, NULL, bsum, NULL, false);
        Node *ins[3] = {z, t, gy};
        Node *f = fused(sub, ins, 3);
        Attrs r1 = ir_attrs(), r2 = ir_attrs();
        r1.index = 1;
        r2.index = 2;
        Node *dot = op1(OP_RESULT, f, &r1), *sum = op1(OP_RESULT, f, &r2);
        Node *rdot = op2(OP_LOG_SOFTMAX_DOT, z, t, &ax), *rgrad = op2(OP_LOG_SOFTMAX_GRAD, z, gy, &ax);
        Node *rsum = op1(OP_REDUCE_SUM, rgrad, &sum0);
        ck_assert_int_eq(d.nerrors, 0);
        ck_assert(ir_verify(g, &d));
        expect_same_bits(eval(f), eval(rgrad));
        expect_same_bits(eval(dot), eval(rdot));
        expect_same_bits(eval(sum), eval(rsum));
        ck_assert_int_eq(results[nresults - 1]->rank, 1);
    }
}
END_TEST

/* A result node asks its fused operand for a result it has; shape
 * inference names what is wrong. */
START_TEST(result_errors)
{
    begin(DT_F32);
    Node *x = inp("x", 1, D(2), V(1, 2));
    Attrs a = ir_attrs();
    a.index = 1;
    ck_assert_ptr_null(ir_op(g, OP_RESULT, &x, 1, &a, L, &d));
    ck_assert_str_eq(d.v[d.n - 1].msg, "result reads input, not a fused node or a loop");
    Graph *sub = ir_graph_new("body");
    Node *bx = ir_input(sub, "0", DT, ir_shape1(2), L);
    ir_add_output(sub, OUT_VALUE, NULL, ir_unary(sub, OP_NEG, bx, L, &d), NULL, false);
    Node *f = fused(sub, &x, 1);
    ck_assert_ptr_null(ir_op(g, OP_RESULT, &f, 1, &a, L, &d));
    ck_assert_str_eq(d.v[d.n - 1].msg, "result index 1: the fused node has 0 results besides its value");
}
END_TEST

/* A loop h' = h * w + x_t over x [N, 3, 1], h0 [N, 1], w [1]: its value
 * is the final h, result 1 the h after each step, stacked at the step's
 * time index (also when it runs backwards). */
static Node *scan_loop(Node *h0, Node *x, Node *w, bool reverse)
{
    Graph *sub = ir_graph_new("body");
    Shape s = ir_shape2(IR_DIM_N, 1);
    Node *bh = ir_input(sub, "h", DT, s, L), *bx = ir_input(sub, "x", DT, s, L);
    Node *bw = ir_input(sub, "w", DT, ir_shape1(1), L);
    Node *hn = ir_binary(sub, OP_ADD, ir_binary(sub, OP_MUL, bh, bw, L, &d), bx, L, &d);
    ir_add_output(sub, OUT_UPDATE, NULL, hn, bh, false);
    ir_add_output(sub, OUT_VALUE, NULL, hn, NULL, false);
    Node *ins[3] = {h0, x, w};
    Node *n = ir_loop(g, sub, ins, 3, 1, reverse, L, &d);
    if (!n) {
        diags_print(&d, stderr);
        ck_abort_msg("ir_loop failed");
    }
    return n;
}

START_TEST(loop_steps)
{
    FOR_DTYPES {
        Node *x = inp_n("x", 3, D(IR_DIM_N, 3, 1), 2, V(1, 2, 3, 4, 5, 6));
        Node *h0 = inp_n("h0", 2, D(IR_DIM_N, 1), 2, V(0, 100));
        Node *w = inp("w", 1, D(1), V(2));
        Attrs r1 = ir_attrs();
        r1.index = 1;
        Node *fwd = scan_loop(h0, x, w, false), *back = scan_loop(h0, x, w, true);
        Node *fs = op1(OP_RESULT, fwd, &r1), *bs = op1(OP_RESULT, back, &r1);
        ck_assert(ir_verify(g, &d));
        /* row 0: 0 -> 1 -> 4 -> 11; row 1: 100 -> 204 -> 413 -> 832 */
        expect_exact(eval(fwd), 2, D(2, 1), V(11, 832));
        expect_exact(eval(fs), 3, D(2, 3, 1), V(1, 4, 11, 204, 413, 832));
        /* backwards: row 0: 3, 8, 17 at t = 2, 1, 0; row 1: 206, 417, 838 */
        expect_exact(eval(back), 2, D(2, 1), V(17, 838));
        expect_exact(eval(bs), 3, D(2, 3, 1), V(17, 8, 3, 838, 417, 206));
    }
}
END_TEST

/* Shape rule of a loop: sequences need their steps on axis 1. */
START_TEST(loop_errors)
{
    begin(DT_F32);
    Node *x = inp_n("x", 1, D(IR_DIM_N), 2, V(1, 2));
    Node *h0 = inp_n("h0", 2, D(IR_DIM_N, 1), 2, V(0, 1));
    Node *w = inp("w", 1, D(1), V(2));
    Graph *sub = ir_graph_new("body");
    Node *bh = ir_input(sub, "h", DT, ir_shape2(IR_DIM_N, 1), L);
    ir_add_output(sub, OUT_UPDATE, NULL, bh, bh, false);
    Node *ins[3] = {h0, x, w};
    ck_assert_ptr_null(ir_loop(g, sub, ins, 3, 1, false, L, &d));
    ck_assert_str_eq(d.v[d.n - 1].msg, "loop: sequence operand 1 is f32[N]; a sequence has its steps (at least one) as axis 1");
    Node *x3 = inp_n("x3", 3, D(IR_DIM_N, 2, 1), 2, V(1, 2, 3, 4));
    sub = ir_graph_new("body");
    bh = ir_input(sub, "h", DT, ir_shape2(IR_DIM_N, 1), L);
    ir_input(sub, "x", DT, ir_shape2(IR_DIM_N, 2), L);
    ir_input(sub, "w", DT, ir_shape1(1), L);
    ir_add_output(sub, OUT_UPDATE, NULL, bh, bh, false);
    ins[1] = x3;
    ck_assert_ptr_null(ir_loop(g, sub, ins, 3, 1, false, L, &d));
    ck_assert_str_eq(d.v[d.n - 1].msg, "loop body input 1 is f32[N,2] but operand 1 gives f32[N,1]");
}
END_TEST

START_TEST(phase_left)
{
    FOR_DTYPES {
        Node *x = inp("x", 1, D(2), V(1, 2));
        Attrs a = ir_attrs();
        a.name = "drop1";
        Node *p = op2(OP_PHASE, x, op1(OP_NEG, x, NULL), &a);
        ir_add_output(g, OUT_VALUE, "y", p, NULL, false);
        Tensor *out = (Tensor *)1;
        ck_assert(!be_interp_run(g, &params, &inputs, NULL, &out, &d));
        ck_assert_ptr_null(out);
        ck_assert_int_eq(d.nerrors, 1);
        ck_assert_str_eq(d.v[0].msg, "phase node 'drop1' left in graph; run specialize first");
        covered[OP_PHASE][DT == DT_F64] = true;
    }
}
END_TEST

/* Runs last: every op of ir/ops.def must have been evaluated in f32 and
 * f64 by one of the tests above. */
START_TEST(every_op_tested)
{
    int missing = 0;
    for (int o = 0; o < OP_COUNT; o++)
        for (int k = 0; k < 2; k++)
            if (!covered[o][k]) {
                fprintf(stderr, "op %s has no %s test\n", ir_ops[o].name, k ? "f64" : "f32");
                missing++;
            }
    ck_assert_int_eq(missing, 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("interp_ops");
    TCase *t = tcase_create("ops");
    tcase_add_checked_fixture(t, NULL, teardown);
    tcase_add_test(t, leaves);
    tcase_add_test(t, loop_steps);
    tcase_add_test(t, loop_errors);
    tcase_add_test(t, const_i32);
    tcase_add_test(t, unary_exact);
    tcase_add_test(t, unary_transcendental);
    tcase_add_test(t, sigmoid_stable);
    tcase_add_test(t, cast);
    tcase_add_test(t, binary_arith);
    tcase_add_test(t, binary_broadcast_n);
    tcase_add_test(t, compare);
    tcase_add_test(t, max_min_nan);
    tcase_add_test(t, select_broadcast);
    tcase_add_test(t, reduce);
    tcase_add_test(t, reduce_in_dtype_order);
    tcase_add_test(t, argmax);
    tcase_add_test(t, broadcast_op);
    tcase_add_test(t, reshape);
    tcase_add_test(t, transpose);
    tcase_add_test(t, slice);
    tcase_add_test(t, slice_grad);
    tcase_add_test(t, concat);
    tcase_add_test(t, matmul);
    tcase_add_test(t, matmul_batched);
    tcase_add_test(t, conv2d);
    tcase_add_test(t, conv2d_channels_batch);
    tcase_add_test(t, conv2d_grads);
    tcase_add_test(t, conv2d_adjoint);
    tcase_add_test(t, max_pool);
    tcase_add_test(t, max_pool_grad);
    tcase_add_test(t, avg_pool_same);
    tcase_add_test(t, avg_pool_adjoint);
    tcase_add_test(t, softmax);
    tcase_add_test(t, log_softmax_dot);
    tcase_add_test(t, log_softmax_grad);
    tcase_add_test(t, softmax_rows_match_composition);
    tcase_add_test(t, one_hot);
    tcase_add_test(t, gather);
    tcase_add_test(t, gather_bad_index);
    tcase_add_test(t, dropout_mask);
    tcase_add_test(t, replica_mean);
    tcase_add_test(t, fused_body);
    tcase_add_test(t, fused_results);
    tcase_add_test(t, result_errors);
    tcase_add_test(t, phase_left);
    suite_add_tcase(s, t);
    TCase *c = tcase_create("coverage");
    tcase_add_test(c, every_op_tested);
    suite_add_tcase(s, c);
    return s;
}

int main(void)
{
    /* the coverage check reads what earlier tests recorded: one process */
    SRunner *r = srunner_create(suite());
    srunner_set_fork_status(r, CK_NOFORK);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
