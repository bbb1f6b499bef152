/* Sums are accurate in f32 (docs/ops.md, "Sums"): reductions, batchnorm's
 * statistics, the bias gradients summed by a GEMM epilogue and by the
 * softmax cross-entropy row kernel, and the softmax rows add their terms
 * in blocks combined pairwise, in the interpreter and in the JIT (fused
 * and unfused). Each training graph runs in f32 on data chosen to make a
 * left-to-right sum drift (many terms of one sign) and is compared with
 * the same graph in f64: a left-to-right sum is off by 1e-4 to 1e-2 here,
 * the blocked pairwise sums by a few units in the last place. */
#include <math.h>

#include "frontend/frontend.h"
#include "passes/passes.h"
#include "runtime/runtime.h"
#include "test_jit_util.h"

/* A copy of every tensor of m converted to f64 (f32 values are exact). */
static void to_f64(const TensorMap *m, TensorMap *out)
{
    rt_map_init(out);
    for (int i = 0; i < m->n; i++) {
        const Tensor *t = m->t[i];
        Tensor *c = rt_tensor_new(t->dt == DT_F32 ? DT_F64 : t->dt, t->rank, t->dims);
        for (int64_t e = 0; e < t->numel; e++)
            rt_set(c, e, rt_get(t, e));
        rt_map_put(out, m->names[i], c);
    }
}

/* Is output k one of names (NULL-terminated; NULL: every output)? */
static bool checked(const Graph *g, int k, const char *const *names)
{
    for (int i = 0; names && names[i]; i++)
        if (strcmp(g->outs[k].name, names[i]) == 0)
            return true;
    return !names;
}

/* The outputs `names` of g's f32 run (interpreter, or JIT when jit)
 * within rtol of its f64 twin's, relative to each output's largest
 * magnitude. */
static int check_f64(const char *what, Graph *g, bool jit, const TensorMap *params, const TensorMap *inputs,
                     double rtol, const char *const *names)
{
    Diags d;
    diags_init(&d);
    Graph *g64 = ps_to_f64(g);
    TensorMap p64, i64;
    to_f64(params, &p64);
    to_f64(inputs, &i64);
    RunOpts ro = {1, 1};
    Tensor **ref = xcalloc((size_t)g->nouts + 1, sizeof *ref), **got = xcalloc((size_t)g->nouts + 1, sizeof *got);
    ck_assert(be_interp_run(g64, &p64, &i64, &ro, ref, &d));
    JitModule *m = NULL;
    if (jit) {
        m = tj_compile(g, &d);
        ck_assert_ptr_nonnull(m);
        ck_assert(be_jit_run(m, params, inputs, &ro, got, &d));
    } else {
        ck_assert(be_interp_run(g, params, inputs, &ro, got, &d));
    }
    int nchecked = 0;
    for (int k = 0; k < g->nouts; k++) {
        if (!checked(g, k, names))
            continue;
        nchecked++;
        double big = 0, err = 0;
        for (int64_t e = 0; e < ref[k]->numel; e++) {
            double r = rt_get(ref[k], e), x = rt_get(got[k], e);
            big = fmax(big, fabs(r));
            err = fmax(err, fabs(x - r));
        }
        ck_assert_msg(err <= rtol * big, "%s, %s, %s: error %.3g of %.3g (%.2g relative), allowed %.2g", what,
                      jit ? "JIT" : "interpreter", g->outs[k].name, err, big, err / big, rtol);
    }
    tj_free_outs(ref, g->nouts);
    tj_free_outs(got, g->nouts);
    free(ref);
    free(got);
    be_jit_free(m);
    rt_map_free(&p64);
    rt_map_free(&i64);
    ir_graph_free(g64);
    diags_free(&d);
    return nchecked;
}

/* Inputs and parameters for batch n: floats uniform in [lo, hi),
 * integer labels uniform classes, parameters from their initializers. */
static void fill(Graph *g, int64_t n, double lo, double hi, TensorMap *params, TensorMap *inputs)
{
    LeafSpec x = {"x", V_UNIF, lo, hi};
    tj_fill(g, &x, 1, n, 3, params, inputs);
    rt_map_free(params);
    rt_map_init(params);
    rt_init_params(g, params, 5, false, NULL);
}

/* Both backends, fused and unfused functions, against f64: the outputs
 * names (NULL: every output of the grad function), each checked
 * wherever a function has it. */
static void check_model(const char *what, const char *src, int64_t n, double lo, double hi, double rtol,
                        const char *const *names)
{
    for (int fuse = 0; fuse < 2; fuse++) {
        int nchecked[2] = {0, 0};
        for (int f = 0; f < (names ? 2 : 1); f++) {
            /* the grad function has the gradients, the training step the
             * batchnorm statistics' updates */
            Graph *g = tj_recipe(src, f ? FN_TRAIN_STEP : FN_GRAD, fuse);
            TensorMap params, inputs;
            rt_map_init(&params);
            rt_map_init(&inputs);
            fill(g, n, lo, hi, &params, &inputs);
            char name[128];
            snprintf(name, sizeof name, "%s%s", what, fuse ? ", fused" : "");
            if (!fuse)
                nchecked[0] += check_f64(name, g, false, &params, &inputs, rtol, names);
            nchecked[1] += check_f64(name, g, true, &params, &inputs, rtol, names);
            rt_map_free(&params);
            rt_map_free(&inputs);
            ir_graph_free(g);
        }
        int want = 0;
        while (names && names[want])
            want++;
        if (!fuse)
            ck_assert_int_ge(nchecked[0], names ? want : 1);
        ck_assert_int_ge(nchecked[1], names ? want : 1);
    }
}

/* loss = mean(x * w) over 1,000,000 values of 0.1: d loss / d w is their
 * mean. A left-to-right f32 sum gave it 0.94% off in the interpreter
 * and 0.11% off in the JIT. */
START_TEST(mean_of_a_million)
{
    check_model("mean(x * w) over 1e6 values of 0.1",
                "model t\n"
                "input x: f32[N]\n"
                "param w: f32[] = constant(1)\n"
                "loss = mean(x * w)\n",
                1000000, 0.1, 0.1, 4e-7, NULL);
}
END_TEST

/* The same over rows of 1000 (reduced over the batch axis in parts). */
START_TEST(mean_over_rows)
{
    check_model("mean(x * w) over 1000 x 1000",
                "model t\n"
                "input x: f32[N, 1000]\n"
                "param w: f32[1000] = constant(1)\n"
                "loss = mean(x * w) + mean(sum(x, axis=1))\n",
                1000, 0.05, 0.15, 4e-7, NULL);
}
END_TEST

/* Batchnorm over 256 x 28 x 28 positions per channel, on inputs around
 * 1: the batch mean and variance (the moving averages' updates) and
 * gamma's and beta's gradients (sums of dy * xhat and dy). */
START_TEST(batchnorm)
{
    static const char *const names[] = {"batchnorm.moving_mean", "batchnorm.moving_var", "grad.batchnorm.gamma",
                                        "grad.batchnorm.beta", NULL};
    check_model("batchnorm",
                "model t\n"
                "input x: f32[N, 28, 28, 8]\n"
                "input y: i32[N]\n"
                "h = batchnorm(x)\n"
                "h = relu(h)\n"
                "h = flatten(max_pool2d(h, 4))\n"
                "logits = dense(h, 10)\n"
                "loss = sparse_categorical_crossentropy(y, logits, from_logits=true)\n",
                256, 0.9, 1.1, 4e-6, names);
}
END_TEST

/* Dense layers over a batch of 4096: the first layer's bias gradient is
 * a column sum of the backward GEMM's epilogue, the last one's a column
 * sum of the softmax cross-entropy row kernel. */
START_TEST(bias_gradients)
{
    static const char *const names[] = {"grad.dense.bias", "grad.dense_1.bias", NULL};
    check_model("bias gradients",
                "model t\n"
                "input x: f32[N, 16]\n"
                "input y: i32[N]\n"
                "h = dense(x, 32, activation=relu)\n"
                "logits = dense(h, 10)\n"
                "loss = sparse_categorical_crossentropy(y, logits, from_logits=true) + mean(h)\n",
                16384, 0.5, 1.0, 1e-6, names);
}
END_TEST

/* Softmax rows of 100,000 nearly equal logits (sums blocked along the
 * row): the loss, its gradient and the probabilities. */
START_TEST(long_softmax_rows)
{
    check_model("softmax rows of 1e5",
                "model t\n"
                "input x: f32[N, 100000]\n"
                "input y: i32[N]\n"
                "param b: f32[100000] = constant(0.5)\n"
                "loss = sparse_categorical_crossentropy(y, x + b, from_logits=true)\n"
                "output p = softmax(x + b)\n",
                4, 0.0, 0.001, 5e-7, NULL);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("sums");
    TCase *t = tcase_create("f32 against f64");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, mean_of_a_million);
    tcase_add_test(t, mean_over_rows);
    tcase_add_test(t, batchnorm);
    tcase_add_test(t, bias_gradients);
    tcase_add_test(t, long_softmax_rows);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
