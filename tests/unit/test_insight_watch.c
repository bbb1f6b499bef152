/* Watching training (scenario S3): plain SGD steps with the interpreter
 * on inputs uniform in [-1, 1]; after each "epoch" the watcher prints
 * update ratios, gradient norms relative to the last layer, and a
 * vanishing-gradient warning for the first layer of the three-layer
 * encoder but not for the two-layer one or the Xavier fix; clipping
 * telemetry counts exactly what the steps clipped; the curves are drawn.
 * Also the static train/infer mode warning for the C API. */
#include <math.h>
#include <unistd.h>

#include "test_insight.h"

static Diags d;

static void setup(void)
{
    diags_init(&d);
}

static void teardown(void)
{
    diags_free(&d);
}

typedef struct Run {
    char *log;
    int clipped_steps; /* steps where some gradient element was beyond clip_value */
    double max_abs;    /* largest |gradient| element seen */
} Run;

static bool any_beyond(const Tensor *t, double c, double *max_abs)
{
    bool any = false;
    for (int64_t i = 0; i < t->numel; i++) {
        double v = fabs(rt_get(t, i));
        any |= v > c;
        *max_abs = v > *max_abs ? v : *max_abs;
    }
    return any;
}

/* `epochs` epochs of `steps` SGD steps (batch 1, as in S3). */
static Run watch_s3(const char *path, int epochs, int steps, bool plots, const char *dir)
{
    Graph *src = ti_load(path, &d);
    Graph *g = ir_clone(src);
    ck_assert(ps_specialize(g, MODE_TRAIN, &d) && ps_autodiff(g, NULL, 0, &d) &&
              ps_optimizer(g, &d));
    TensorMap params, b, grads;
    rt_map_init(&params);
    rt_map_init(&b);
    rt_init_params(g, &params, 5, false, NULL);
    Dataset ds;
    ck_assert(rt_dataset_uniform(&ds, epochs * steps, DT_F32, "x", NULL, -1, 1, 5));
    WatchOpts wo = {1, 5, false, NULL};
    Watch *w = ins_watch_new(src, &wo, &d);
    ck_assert_ptr_nonnull(w);
    Capture cap;
    ti_capture(&cap);
    Run r = {NULL, 0, 0};
    Tensor **outs = xcalloc((size_t)g->nouts, sizeof(Tensor *));
    for (int e = 1; e <= epochs; e++) {
        TensorMap before;
        rt_map_init(&before);
        for (int i = 0; i < params.n; i++)
            rt_map_put(&before, params.names[i], rt_tensor_clone(params.t[i]));
        double loss = 0;
        for (int s = 0; s < steps; s++) {
            rt_dataset_batch(&ds, NULL, (e - 1) * steps + s, 1, &b);
            rt_map_put(&b, "optimizer.lr", ti_tensor(DT_F32, 0, NULL, (const double[]){1e-3}));
            RunOpts ro = {5, (uint64_t)s};
            ck_assert(be_interp_run(g, &params, &b, &ro, outs, &d));
            rt_map_init(&grads);
            bool clipped = false;
            for (int i = 0; i < g->nouts; i++) {
                Output *o = &g->outs[i];
                if (o->kind == OUT_LOSS)
                    loss += rt_get(outs[i], 0) / steps;
                if (o->kind == OUT_GRAD) {
                    clipped |= any_beyond(outs[i], g->train.clip_value, &r.max_abs);
                    rt_map_put(&grads, o->name, outs[i]);
                    outs[i] = NULL;
                } else if (o->kind == OUT_UPDATE) {
                    rt_map_put(&params, o->target->a.name, outs[i]);
                    outs[i] = NULL;
                }
                rt_tensor_free(outs[i]);
                outs[i] = NULL;
            }
            r.clipped_steps += clipped && e == epochs;
            ins_watch_clip_step(w, &grads);
            rt_map_free(&grads);
        }
        rt_tensor_free(rt_map_take(&b, "optimizer.lr"));
        ins_watch_metric(w, e, "loss", loss);
        ck_assert(ins_watch_epoch(w, e, &before, &params, &b, cap.f, &d));
        rt_map_free(&before);
    }
    if (plots)
        ck_assert(ins_watch_plots(w, dir, &d));
    r.log = xstrdup(ti_text(&cap));
    ti_capture_free(&cap);
    free(outs);
    ins_watch_free(w);
    rt_dataset_free(&ds);
    rt_map_free(&params);
    rt_map_free(&b);
    ir_graph_free(g);
    ir_graph_free(src);
    return r;
}

START_TEST(three_layers_vanish)
{
    Run r = watch_s3("examples/s3_vanishing/three_layer.mdl", 2, 20, false, NULL);
    if (getenv("INSIGHT_SHOW_LOG"))
        fprintf(stderr, "%s(steps with clipping in epoch 2: %d)\n", r.log, r.clipped_steps);
    ck_assert_ptr_nonnull(strstr(r.log, "watch: epoch 1: update |dW|/|W|: dense.kernel "));
    ck_assert_ptr_nonnull(strstr(r.log, "watch: epoch 2: grad norm vs last layer: dense "));
    ck_assert_ptr_nonnull(
        strstr(r.log, "watch: epoch 1: warning: layer 'dense' "
                      "(examples/s3_vanishing/three_layer.mdl:9:5) gradient vanishes: norm "));
    /* once, until it recovers */
    ck_assert_ptr_null(strstr(r.log, "watch: epoch 2: warning: layer 'dense' "));
    ck_assert_ptr_null(strstr(r.log, "warning: layer 'dense_2'"));
    /* clipping telemetry: the count of steps the test saw clipping in */
    char want[128];
    snprintf(want, sizeof want, "watch: epoch 2: clip by value 4.5: %s", r.clipped_steps ? "fired in" : "");
    ck_assert_msg(strstr(r.log, want) != NULL, "log:\n%s", r.log);
    if (r.clipped_steps) {
        snprintf(want, sizeof want, "fired in %d of 20 steps;", r.clipped_steps);
        ck_assert_msg(strstr(r.log, want) != NULL, "log:\n%s", r.log);
    }
    free(r.log);
}
END_TEST

START_TEST(two_layers_and_xavier_do_not)
{
    const char *paths[2] = {"examples/s3_vanishing/two_layer.mdl",
                            "examples/s3_vanishing/three_layer_xavier.mdl"};
    for (int i = 0; i < 2; i++) {
        Run r = watch_s3(paths[i], 2, 20, false, NULL);
        ck_assert_msg(strstr(r.log, "vanishes") == NULL, "%s:\n%s", paths[i], r.log);
        ck_assert_ptr_nonnull(strstr(r.log, "watch: epoch 2: grad norm vs last layer: dense "));
        free(r.log);
    }
}
END_TEST

/* ins_watch_clip_step counts per parameter: two steps, one clipped. */
START_TEST(clip_counts)
{
    Graph *g = ti_load("examples/s3_vanishing/two_layer.mdl", &d);
    WatchOpts wo = {1, 5, true, NULL};
    Watch *w = ins_watch_new(g, &wo, &d);
    TensorMap gr, b;
    rt_map_init(&gr);
    rt_map_put(&gr, "grad.dense_1.bias", ti_tensor(DT_F32, 1, (const int64_t[]){1}, (const double[]){-6}));
    rt_map_put(&gr, "grad.dense.bias", rt_tensor_new(DT_F32, 1, (const int64_t[]){16}));
    ins_watch_clip_step(w, &gr);
    rt_set(rt_map_get(&gr, "grad.dense_1.bias"), 0, 1);
    ins_watch_clip_step(w, &gr);
    rt_map_init(&b);
    rt_map_put(&b, "x", ti_tensor(DT_F32, 2, (const int64_t[]){1, 1}, (const double[]){0.5}));
    TensorMap p;
    rt_map_init(&p);
    rt_init_params(g, &p, 5, false, NULL);
    Capture cap;
    ti_capture(&cap);
    ck_assert(ins_watch_epoch(w, 1, NULL, &p, &b, cap.f, &d));
    ck_assert_str_eq(ti_text(&cap), "watch: epoch 1: clip by value 4.5: fired in 1 of 2 steps; "
                                    "dense_1.bias 50% of elements\n");
    ti_capture_free(&cap);
    /* the counts start again after each epoch: now from the sample batch */
    ti_capture(&cap);
    ck_assert(ins_watch_epoch(w, 2, NULL, &p, &b, cap.f, &d));
    ck_assert_str_eq(ti_text(&cap), "watch: epoch 2: clip by value 4.5: (sample batch) nothing clipped\n");
    ti_capture_free(&cap);
    ins_watch_free(w);
    rt_map_free(&gr);
    rt_map_free(&b);
    rt_map_free(&p);
    ir_graph_free(g);
}
END_TEST

START_TEST(curves_drawn)
{
    char dir[] = "/tmp/insight_watchXXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char sub[160], path[200];
    snprintf(sub, sizeof sub, "%s/plots", dir);
    Run r = watch_s3("examples/s3_vanishing/two_layer.mdl", 3, 5, true, sub);
    free(r.log);
    snprintf(path, sizeof path, "%s/curves.svg", sub);
    ck_assert_int_eq(ti_check_svg_file(path), 1); /* the loss */
    unlink(path);
    snprintf(path, sizeof path, "%s/grad_norms.svg", sub);
    ck_assert_int_eq(ti_check_svg_file(path), 2); /* dense, dense_1 */
    unlink(path);
    snprintf(path, sizeof path, "%s/curves.png", sub);
    ti_check_png_file(path);
    unlink(path);
    snprintf(path, sizeof path, "%s/grad_norms.png", sub);
    ti_check_png_file(path);
    unlink(path);
    rmdir(sub);
    rmdir(dir);
}
END_TEST

/* ps_warn_mode: trained in inference mode or evaluated in training mode. */
START_TEST(mode_warnings)
{
    Graph *g = ti_load("examples/fashion_cnn_bn.mdl", &d);
    ck_assert(!ps_warn_mode(g, MODE_TRAIN, true, &d));
    ck_assert(!ps_warn_mode(g, MODE_INFER, false, &d));
    ck_assert_int_eq(d.nwarnings, 0);
    ck_assert(ps_warn_mode(g, MODE_INFER, true, &d));
    ck_assert_int_eq(d.nwarnings, 1);
    Capture cap;
    ti_capture(&cap);
    diags_print(&d, cap.f);
    const char *t = ti_text(&cap);
    ck_assert_ptr_nonnull(strstr(t, "examples/fashion_cnn_bn.mdl:12:10: warning: model 'fashion_cnn_bn' "
                                    "is trained in inference mode"));
    ck_assert_ptr_nonnull(strstr(t, "note: batchnorm 'batchnorm_1' normalises with its moving statistics"));
    ck_assert_ptr_nonnull(strstr(t, "note: dropout 'dropout' drops nothing"));
    ck_assert_int_eq(ti_count(t, "note:"), 3);
    ti_capture_free(&cap);
    ck_assert(ps_warn_mode(g, MODE_TRAIN, false, &d));
    ck_assert_int_eq(d.nwarnings, 2);
    ck_assert_ptr_nonnull(strstr(d.v[d.n - 4].msg, "is evaluated in training mode"));
    ir_graph_free(g);
    /* no batchnorm or dropout: nothing to say */
    g = ti_load("examples/fashion_mlp.mdl", &d);
    ck_assert(!ps_warn_mode(g, MODE_INFER, true, &d));
    ir_graph_free(g);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("insight_watch");
    TCase *t = tcase_create("watch");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 600);
    tcase_add_test(t, three_layers_vanish);
    tcase_add_test(t, two_layers_and_xavier_do_not);
    tcase_add_test(t, clip_counts);
    tcase_add_test(t, curves_drawn);
    tcase_add_test(t, mode_warnings);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
