/* The NaN/Inf origin search: the exact op and source line for log(0),
 * exp overflow and a gradient that divides by zero; a parameter that
 * already holds NaN; finite steps report nothing; nothing is updated; and
 * scenario S1 at a small scale: trained in inference mode with SGD the
 * model diverges and the report names the op, while the same steps in
 * training mode stay finite. */
#include <math.h>

#include "test_insight.h"

#define D(...) ((const int64_t[]){__VA_ARGS__})

static Diags d;

static void setup(void)
{
    diags_init(&d);
}

static void teardown(void)
{
    diags_free(&d);
}

/* x = 0.1 * (i + 1), shape [n, 1] */
static void ramp_batch(TensorMap *b, int64_t n)
{
    rt_map_init(b);
    Tensor *x = rt_tensor_new(DT_F32, 2, D(n, 1));
    for (int64_t i = 0; i < n; i++)
        rt_set(x, i, 0.1 * (double)(i + 1));
    rt_map_put(b, "x", x);
}

static InsNumResult check_file(const char *path, TensorMap *params, Capture *cap)
{
    Graph *g = ti_load(path, &d);
    TensorMap b, own;
    ramp_batch(&b, 4);
    rt_map_init(&own);
    if (!params) {
        rt_init_params(g, &own, 1, false, NULL);
        params = &own;
    }
    NumericsOpts o = {MODE_TRAIN, false, 0};
    RunOpts ro = {1, 3};
    ti_capture(cap);
    InsNumResult r = ins_nan_origin(g, params, &b, &ro, &o, cap->f);
    rt_map_free(&b);
    rt_map_free(&own);
    ir_graph_free(g);
    return r;
}

START_TEST(log_of_zero)
{
    Capture cap;
    ck_assert_int_eq(check_file("tests/ir/insight/nan_log.mdl", NULL, &cap), INS_NUM_FOUND);
    ck_assert_str_eq(ti_text(&cap),
                     "modelc: numerics: step 3 (training mode): non-finite: loss, grad.dense.kernel, "
                     "grad.dense.bias\n"
                     "tests/ir/insight/nan_log.mdl:15:14: error: log produced -Inf in the forward "
                     "pass (4 of 4 elements, first at [0, 0])\n"
                     "   15 | loss = -mean(log(p))\n"
                     "      |              ^~~\n"
                     "  operand 0: sigmoid 'p' f32[4,1]: min 0, max 0, no NaN or Inf\n"
                     "  nothing was updated\n");
    ti_capture_free(&cap);
}
END_TEST

START_TEST(exp_overflow)
{
    Capture cap;
    ck_assert_int_eq(check_file("tests/ir/insight/nan_exp.mdl", NULL, &cap), INS_NUM_FOUND);
    const char *t = ti_text(&cap);
    ck_assert_ptr_nonnull(strstr(t, "tests/ir/insight/nan_exp.mdl:15:13: error: exp produced +Inf "
                                    "in the forward pass (16 of 16 elements, first at [0, 0])\n"));
    ck_assert_ptr_nonnull(strstr(t, "  operand 0: add 'h' f32[4,4]: min 100, max 100, no NaN or Inf\n"));
    ti_capture_free(&cap);
}
END_TEST

START_TEST(backward_division)
{
    Capture cap;
    ck_assert_int_eq(check_file("tests/ir/insight/nan_backward.mdl", NULL, &cap), INS_NUM_FOUND);
    const char *t = ti_text(&cap);
    ck_assert_ptr_nonnull(strstr(t, "non-finite: grad.dense.kernel, grad.dense.bias\n"));
    ck_assert_ptr_nonnull(strstr(t, "tests/ir/insight/nan_backward.mdl:13:5: error: div produced "
                                    "+Inf in the backward pass"));
    ck_assert_ptr_nonnull(strstr(t, "  (part of the gradient of sqrt on this line)\n"));
    ti_capture_free(&cap);
}
END_TEST

/* A parameter that is already NaN is the origin itself; the caller's
 * tensors are left as they were. */
START_TEST(nan_parameter)
{
    Graph *g = ti_compile("p.mdl", "model p\ninput x: f32[N, 1]\nh = dense(x, 4)\nloss = mean(h * h)\n",
                          &d);
    TensorMap p, b;
    rt_map_init(&p);
    rt_init_params(g, &p, 1, false, NULL);
    rt_set(rt_map_get(&p, "dense.kernel"), 2, NAN);
    ramp_batch(&b, 4);
    NumericsOpts o = {MODE_TRAIN, false, 0};
    Capture cap;
    ti_capture(&cap);
    ck_assert_int_eq(ins_nan_origin(g, &p, &b, NULL, &o, cap.f), INS_NUM_FOUND);
    ck_assert_ptr_nonnull(strstr(ti_text(&cap), "p.mdl:3:5: error: parameter 'dense.kernel' f32[1,4] "
                                                "already holds NaN (1 of 4 elements, first at [0, 2]) "
                                                "before the step\n"));
    ck_assert(isnan(rt_get(rt_map_get(&p, "dense.kernel"), 2)));
    ck_assert_double_eq(rt_get(rt_map_get(&p, "dense.bias"), 0), 0);
    ti_capture_free(&cap);
    rt_map_free(&p);
    rt_map_free(&b);
    ir_graph_free(g);
}
END_TEST

START_TEST(finite_step_prints_nothing)
{
    Graph *g = ti_compile("ok.mdl",
                          "model ok\ninput x: f32[N, 1]\nh = dense(x, 4, activation=tanh)\n"
                          "loss = mean(exp(h))\ntrain { optimizer = sgd(lr=0.1) }\n",
                          &d);
    TensorMap p, b;
    rt_map_init(&p);
    rt_init_params(g, &p, 1, false, NULL);
    ramp_batch(&b, 4);
    Tensor *before = rt_tensor_clone(rt_map_get(&p, "dense.kernel"));
    for (int update = 0; update < 2; update++) {
        NumericsOpts o = {MODE_TRAIN, update == 1, 0.5};
        RunOpts ro = {1, 0};
        Capture cap;
        ti_capture(&cap);
        ck_assert_int_eq(ins_nan_origin(g, &p, &b, &ro, &o, cap.f), INS_NUM_FINITE);
        ck_assert_str_eq(ti_text(&cap), "");
        ti_capture_free(&cap);
    }
    const Tensor *after = rt_map_get(&p, "dense.kernel");
    for (int64_t i = 0; i < after->numel; i++)
        ck_assert_double_eq(rt_get(after, i), rt_get(before, i));
    rt_tensor_free(before);
    rt_map_free(&p);
    rt_map_free(&b);
    ir_graph_free(g);
}
END_TEST

START_TEST(missing_input_is_an_error)
{
    Graph *g = ti_load("tests/ir/insight/nan_log.mdl", &d);
    TensorMap p, b;
    rt_map_init(&p);
    rt_map_init(&b);
    rt_init_params(g, &p, 1, false, NULL);
    NumericsOpts o = {MODE_TRAIN, false, 0};
    Capture cap;
    ti_capture(&cap);
    ck_assert_int_eq(ins_nan_origin(g, &p, &b, NULL, &o, cap.f), INS_NUM_ERROR);
    ck_assert_ptr_nonnull(strstr(ti_text(&cap), "error: missing input 'x' of type f32[N,1]"));
    ti_capture_free(&cap);
    rt_map_free(&p);
    rt_map_free(&b);
    ir_graph_free(g);
}
END_TEST

/* ---- scenario S1 ---- */

/* SGD steps with the interpreter on Fashion-MNIST in the given mode; at
 * the first non-finite loss the origin search runs on the same step.
 * Returns that step, or -1 when `steps` steps stayed finite. */
static int train_until_nan(Graph *src, Mode mode, int steps, Capture *cap)
{
    Graph *g = ir_clone(src);
    ck_assert(ps_specialize(g, mode, &d) && ps_autodiff(g, NULL, 0, &d) && ps_optimizer(g, &d));
    TensorMap params, b;
    rt_map_init(&params);
    rt_map_init(&b);
    rt_init_params(g, &params, 7, false, NULL);
    RtLoadOpts lo;
    rt_load_opts_default(&lo);
    Dataset ds;
    ck_assert(rt_load_fashion_mnist("/usr/share/datasets/fashion-mnist", "train", &lo, &ds, &d));
    int li = -1, bad = -1;
    for (int i = 0; i < g->nouts; i++)
        if (g->outs[i].kind == OUT_LOSS)
            li = i;
    Tensor **outs = xcalloc((size_t)g->nouts, sizeof(Tensor *));
    for (int step = 0; step < steps && bad < 0; step++) {
        rt_dataset_batch(&ds, NULL, step * 32, 32, &b);
        rt_map_put(&b, "optimizer.lr", ti_tensor(DT_F32, 0, NULL, (const double[]){0.5}));
        RunOpts ro = {7, (uint64_t)step};
        ck_assert(be_interp_run(g, &params, &b, &ro, outs, &d));
        if (!isfinite(rt_get(outs[li], 0))) {
            bad = step;
            NumericsOpts o = {mode, false, 0.5};
            ck_assert_int_eq(ins_nan_origin(src, &params, &b, &ro, &o, cap->f), INS_NUM_FOUND);
        }
        for (int i = 0; i < g->nouts; i++) {
            if (g->outs[i].kind == OUT_UPDATE && bad < 0) {
                rt_map_put(&params, g->outs[i].target->a.name, outs[i]);
                outs[i] = NULL;
            }
            rt_tensor_free(outs[i]);
            outs[i] = NULL;
        }
    }
    free(outs);
    rt_dataset_free(&ds);
    rt_map_free(&params);
    rt_map_free(&b);
    ir_graph_free(g);
    return bad;
}

START_TEST(s1_inference_mode_diverges)
{
    Graph *src = ti_load("tests/ir/insight/s1_small.mdl", &d);
    Capture cap;
    ti_capture(&cap);
    int bad = train_until_nan(src, MODE_INFER, 40, &cap);
    ck_assert_int_ge(bad, 5);
    const char *t = ti_text(&cap);
    char head[128];
    snprintf(head, sizeof head, "modelc: numerics: step %d (inference mode): non-finite: loss", bad);
    ck_assert_msg(strncmp(t, head, strlen(head)) == 0, "report: %s", t);
    ck_assert_ptr_nonnull(strstr(t, "\ntests/ir/insight/s1_small.mdl:"));
    ck_assert_ptr_nonnull(strstr(t, " in the forward pass ("));
    ck_assert_ptr_nonnull(strstr(t, "  nothing was updated\n"));
    ti_capture_free(&cap);
    /* the same steps in training mode (batch statistics) stay finite */
    ti_capture(&cap);
    ck_assert_int_eq(train_until_nan(src, MODE_TRAIN, bad + 1, &cap), -1);
    ck_assert_str_eq(ti_text(&cap), "");
    ti_capture_free(&cap);
    ir_graph_free(src);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("insight_numerics");
    TCase *t = tcase_create("numerics");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, log_of_zero);
    tcase_add_test(t, exp_overflow);
    tcase_add_test(t, backward_division);
    tcase_add_test(t, nan_parameter);
    tcase_add_test(t, finite_step_prints_nothing);
    tcase_add_test(t, missing_input_is_an_error);
    suite_add_tcase(s, t);
    TCase *s1 = tcase_create("s1");
    tcase_add_checked_fixture(s1, setup, teardown);
    tcase_set_timeout(s1, 1200);
    tcase_add_test(s1, s1_inference_mode_diverges);
    suite_add_tcase(s, s1);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
