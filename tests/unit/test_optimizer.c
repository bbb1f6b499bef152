/* The optimizer's update as IR, evaluated by the interpreter and the JIT:
 * Adam's bias correction sqrt(1 - b2^t) / (1 - b1^t) is computed in f64
 * from the exact betas, not as pow(f32(b2), t) in f32 as Keras does. With
 * beta2 = 0.9999999, f32(beta2) = 0.99999988: at t = 1 the f32 correction
 * is 9% larger, at t = 1,000,000 (b2^t = exp(-0.1) against exp(-0.119))
 * 8.7% larger, and the f32 parameters' update shows it. */
#include <math.h>

#include "frontend/frontend.h"
#include "passes/passes.h"
#include "runtime/runtime.h"
#include "test_jit_util.h"

static const char *const model = "model t\n"
                                 "input x: f32[N, 1]\n"
                                 "param w: f32[1] = constant(0)\n"
                                 "loss = mean(x * w)\n"
                                 "train {\n"
                                 "  optimizer = adam(lr=0.001, beta1=0.9, beta2=0.9999999, eps=1e-7)\n"
                                 "}\n";

/* The training step's graph, unfused: loss and updates. */
static Graph *step_graph(void)
{
    return tj_recipe(model, FN_TRAIN_STEP, false);
}

static double scalar_f32(double v)
{
    return (double)(float)v;
}

/* w after step t (from w = m = v = 0, gradient 1), by each backend. */
static void check_step(Graph *g, JitModule *jm, double t, double want)
{
    Diags d;
    diags_init(&d);
    TensorMap params, inputs;
    rt_map_init(&params);
    rt_map_init(&inputs);
    rt_init_params(g, &params, 1, false, NULL);
    rt_set(rt_map_get(&params, "optimizer.step"), 0, t - 1);
    int64_t dims[2] = {4, 1};
    Tensor *x = rt_tensor_new(DT_F32, 2, dims);
    for (int i = 0; i < 4; i++)
        rt_set(x, i, 1);
    rt_map_put(&inputs, "x", x);
    rt_map_put(&inputs, "optimizer.lr", rt_tensor_new(DT_F32, 0, NULL));
    rt_set(rt_map_get(&inputs, "optimizer.lr"), 0, 0.001);
    int wi = -1;
    for (int i = 0; i < g->nouts; i++)
        if (g->outs[i].kind == OUT_UPDATE && strcmp(g->outs[i].name, "w") == 0)
            wi = i;
    ck_assert_int_ge(wi, 0);
    for (int jit = 0; jit < 2; jit++) {
        Tensor **outs = xcalloc((size_t)g->nouts + 1, sizeof *outs);
        RunOpts ro = {1, 1};
        ck_assert(jit ? be_jit_run(jm, &params, &inputs, &ro, outs, &d)
                      : be_interp_run(g, &params, &inputs, &ro, outs, &d));
        double got = rt_get(outs[wi], 0);
        ck_assert_msg(fabs(got - want) <= 1e-6 * fabs(want), "%s, t = %.0f: w = %.9g, want %.9g",
                      jit ? "JIT" : "interpreter", t, got, want);
        tj_free_outs(outs, g->nouts);
        free(outs);
    }
    rt_map_free(&params);
    rt_map_free(&inputs);
    diags_free(&d);
}

/* With gradient 1 from zero slots: m = 0.1, v = 1 - b2 (f32), so
 * w = -lr * c * 0.1 / (sqrt(v) + eps) with c the correction in f64. The
 * f32 correction would give w 9% (t = 1) and 8.7% (t = 1e6) larger. */
START_TEST(adam_correction_in_f64)
{
    Graph *g = step_graph();
    Diags d;
    diags_init(&d);
    JitModule *jm = tj_compile(g, &d);
    ck_assert_ptr_nonnull(jm);
    double b1 = 0.9, b2 = 0.9999999, lr = scalar_f32(0.001);
    double v = scalar_f32(1 - b2), den = sqrt(v) + 1e-7, ts[2] = {1, 1e6};
    for (int i = 0; i < 2; i++) {
        double t = ts[i];
        double c64 = sqrt(1 - pow(b2, t)) / (1 - pow(b1, t));
        double c32 = sqrt(1 - pow(scalar_f32(b2), t)) / (1 - pow(scalar_f32(b1), t));
        ck_assert(c32 > 1.08 * c64);
        check_step(g, jm, t, -lr * c64 * scalar_f32(1 - b1) / den);
    }
    be_jit_free(jm);
    ir_graph_free(g);
    diags_free(&d);
}
END_TEST

/* The step counter past 2^24, where an f32 stops counting (2^24 + 1
 * rounds back to 2^24): each backend's update of optimizer.step is
 * exact. */
START_TEST(adam_step_counts_past_2_24)
{
    Graph *g = step_graph();
    Diags d;
    diags_init(&d);
    JitModule *jm = tj_compile(g, &d);
    ck_assert_ptr_nonnull(jm);
    TensorMap params, inputs;
    rt_map_init(&params);
    rt_map_init(&inputs);
    rt_init_params(g, &params, 1, false, NULL);
    double t0 = 16777216.0 + 2; /* 2^24 + 2: even, so an f32 holds it */
    rt_set(rt_map_get(&params, "optimizer.step"), 0, t0);
    int64_t dims[2] = {4, 1};
    rt_map_put(&inputs, "x", rt_tensor_new(DT_F32, 2, dims));
    rt_map_put(&inputs, "optimizer.lr", rt_tensor_new(DT_F32, 0, NULL));
    int si = -1;
    for (int i = 0; i < g->nouts; i++)
        if (g->outs[i].kind == OUT_UPDATE && strcmp(g->outs[i].name, "optimizer.step") == 0)
            si = i;
    ck_assert_int_ge(si, 0);
    for (int jit = 0; jit < 2; jit++) {
        Tensor **outs = xcalloc((size_t)g->nouts + 1, sizeof *outs);
        RunOpts ro = {1, 1};
        ck_assert(jit ? be_jit_run(jm, &params, &inputs, &ro, outs, &d)
                      : be_interp_run(g, &params, &inputs, &ro, outs, &d));
        ck_assert_msg(rt_get(outs[si], 0) == t0 + 1, "%s: step %.17g after %.17g", jit ? "JIT" : "interpreter",
                      rt_get(outs[si], 0), t0);
        tj_free_outs(outs, g->nouts);
        free(outs);
    }
    rt_map_free(&params);
    rt_map_free(&inputs);
    be_jit_free(jm);
    ir_graph_free(g);
    diags_free(&d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("optimizer");
    TCase *t = tcase_create("adam");
    tcase_add_test(t, adam_correction_in_f64);
    tcase_add_test(t, adam_step_counts_past_2_24);
    suite_add_tcase(s, t);
    return tu_run(s);
}
