/* modelc stats on a hand-checkable model: two examples through a dense
 * ReLU layer with two dead units and a sigmoid layer with one saturated
 * output; exact means, extremes, norms, dead and saturated counts,
 * gradients (worked out here by hand), gradient ratios, two batches,
 * update ratios, JSON and histograms. */
#include <math.h>

#include "runtime/io/json.h"
#include "test_insight.h"

static const char *TINY = "model tiny\n"
                          "input x: f64[N, 2]\n"
                          "input y: f64[N, 1]\n"
                          "h = dense(x, 3, activation=relu)\n"
                          "o = dense(h, 1, activation=sigmoid)\n"
                          "loss = mean((o - y) ** 2)\n";

static Graph *g;
static Diags d;
static TensorMap params, batch;
static InsModel *m;

#define D(...) ((const int64_t[]){__VA_ARGS__})
#define V(...) ((const double[]){__VA_ARGS__})

static double sigm(double z)
{
    return 1 / (1 + exp(-z));
}

static void setup(void)
{
    diags_init(&d);
    g = ti_compile("tiny.mdl", TINY, &d);
    rt_map_init(&params);
    rt_map_init(&batch);
    rt_map_put(&params, "dense.kernel", ti_tensor(DT_F64, 2, D(2, 3), V(1, -1, 0, 2, -1, 0)));
    rt_map_put(&params, "dense.bias", ti_tensor(DT_F64, 1, D(3), V(0, 0, -1)));
    rt_map_put(&params, "dense_1.kernel", ti_tensor(DT_F64, 2, D(3, 1), V(10, 0, 0)));
    rt_map_put(&params, "dense_1.bias", ti_tensor(DT_F64, 1, D(1), V(-47)));
    rt_map_put(&batch, "x", ti_tensor(DT_F64, 2, D(2, 2), V(1, 2, 3, -1)));
    rt_map_put(&batch, "y", ti_tensor(DT_F64, 2, D(2, 1), V(1, 0)));
    m = ins_model_new(g, &d);
    ck_assert_ptr_nonnull(m);
}

static void teardown(void)
{
    ins_model_free(m);
    rt_map_free(&params);
    rt_map_free(&batch);
    ir_graph_free(g);
    diags_free(&d);
}

static void run(InsStats *s, int batches, bool hist)
{
    ins_stats_init(s, m, hist);
    RunOpts ro = {1, 0};
    for (int i = 0; i < batches; i++)
        ck_assert(ins_stats_add_batch(s, m, &params, &batch, &ro, &d));
}

#define EQ(a, b) ck_assert_double_eq_tol((a), (double)(b), 1e-12 * (1 + fabs((double)(b))))

/* Hand-computed: pre-activations [5, -3, -1] and [1, -2, -1]; units 1 and
 * 2 never fire; z = [3, -37]; sigmoid(-37) < 0.01 is saturated. */
START_TEST(layers_exact)
{
    InsStats s;
    run(&s, 1, false);
    ck_assert_int_eq(s.nlayers, 2);
    ck_assert_str_eq(s.layers[0].name, "dense");
    ck_assert_str_eq(s.layers[1].name, "dense_1");
    ck_assert_int_eq(s.layers[0].act, ACT_RELU);
    ck_assert_int_eq(s.layers[1].act, ACT_SIGMOID);
    ck_assert_int_eq(s.examples, 2);
    InsSummary pre = ins_acc_summary(&s.layers[0].pre), out = ins_acc_summary(&s.layers[0].out);
    EQ(pre.mean, -1.0 / 6);
    EQ(pre.min, -3);
    EQ(pre.max, 5);
    EQ(pre.norm, sqrt(41));
    EQ(pre.std, sqrt(41.0 / 6 - 1.0 / 36));
    EQ(out.mean, 1);
    EQ(out.norm, sqrt(26));
    ck_assert_int_eq(ins_layer_dead(&s.layers[0]), 2);
    ck_assert_int_eq(s.layers[0].units, 3);
    EQ(ins_layer_saturation(&s.layers[0]), -1);
    EQ(ins_layer_saturation(&s.layers[1]), 0.5);
    ck_assert_int_eq(ins_layer_dead(&s.layers[1]), -1);
    InsSummary z = ins_acc_summary(&s.layers[1].pre), o = ins_acc_summary(&s.layers[1].out);
    EQ(z.mean, -17);
    EQ(z.min, -37);
    EQ(o.mean, (sigm(3) + sigm(-37)) / 2);
    EQ(s.loss_sum, ((sigm(3) - 1) * (sigm(3) - 1) + sigm(-37) * sigm(-37)) / 2);
    ins_stats_free(&s);
}
END_TEST

/* A softmax output layer whose logits the cross-entropy also reads (two
 * readers of the pre-activation) is a softmax layer, not a linear one. */
START_TEST(softmax_layer_found)
{
    Diags dd;
    diags_init(&dd);
    Graph *sg = ti_compile("soft.mdl",
                           "model soft\n"
                           "input x: f32[N, 4]\n"
                           "input y: i32[N]\n"
                           "h = dense(x, 5, activation=sigmoid)\n"
                           "output p = dense(h, 3, activation=softmax)\n"
                           "loss = categorical_crossentropy(one_hot(y, 3), p)\n",
                           &dd);
    ck_assert_ptr_nonnull(sg);
    InsModel *sm = ins_model_new(sg, &dd);
    ck_assert_ptr_nonnull(sm);
    InsStats st;
    ins_stats_init(&st, sm, false);
    ck_assert_int_eq(st.nlayers, 2);
    ck_assert_int_eq(st.layers[0].act, ACT_SIGMOID);
    ck_assert_int_eq(st.layers[1].act, ACT_SOFTMAX);
    ins_stats_free(&st);
    ins_model_free(sm);
    ir_graph_free(sg);
    diags_free(&dd);
}
END_TEST

/* dL/dz_i = (o_i - y_i) o_i (1 - o_i) for the mean over two examples. */
START_TEST(gradients_exact)
{
    InsStats s;
    run(&s, 1, false);
    double o0 = sigm(3), o1 = sigm(-37);
    double dz0 = (o0 - 1) * o0 * (1 - o0), dz1 = o1 * o1 * (1 - o1);
    double gk1 = 5 * dz0 + dz1, gb1 = dz0 + dz1;
    double gk[2] = {10 * dz0 + 30 * dz1, 20 * dz0 - 10 * dz1}, gb = 10 * dz0 + 10 * dz1;
    ck_assert_int_eq(s.nparams, 4);
    ck_assert_str_eq(s.params[0].name, "dense.kernel");
    InsSummary k = ins_acc_summary(&s.params[0].g);
    EQ(k.norm, sqrt(gk[0] * gk[0] + gk[1] * gk[1]));
    EQ(k.mean, (gk[0] + gk[1]) / 6);
    EQ(ins_param_grad_ratio(&s, 0), k.norm / sqrt(7));
    InsSummary k1 = ins_acc_summary(&s.params[2].g), b1 = ins_acc_summary(&s.params[3].g);
    EQ(k1.norm, fabs(gk1));
    EQ(b1.mean, gb1);
    double n0 = sqrt(gk[0] * gk[0] + gk[1] * gk[1] + gb * gb), n1 = sqrt(gk1 * gk1 + gb1 * gb1);
    EQ(ins_layer_grad_norm(&s.layers[0], s.batches), n0);
    EQ(ins_layer_grad_ratio(&s, 0), n0 / n1);
    EQ(ins_layer_grad_ratio(&s, 1), 1);
    /* dL/dpre of the relu layer: 10 dz_i on unit 0, zero elsewhere */
    InsSummary gp = ins_acc_summary(&s.layers[0].grad_pre);
    EQ(gp.max, 10 * dz1);
    EQ(gp.min, 10 * dz0);
    EQ(gp.norm, 10 * sqrt(dz0 * dz0 + dz1 * dz1));
    /* dL/dout (before the relu) is 10 dz_i on every unit 0... and 0 else */
    InsSummary ga = ins_acc_summary(&s.layers[0].grad_out);
    EQ(ga.mean, (10 * dz0 + 10 * dz1) / 6);
    ins_stats_free(&s);
}
END_TEST

/* Two identical batches: counts double, norms (RMS over batches) stay. */
START_TEST(two_batches)
{
    InsStats s;
    run(&s, 2, false);
    ck_assert_int_eq(s.batches, 2);
    ck_assert_int_eq(s.examples, 4);
    InsSummary pre = ins_acc_summary(&s.layers[0].pre);
    ck_assert_int_eq(pre.count, 12);
    EQ(pre.mean, -1.0 / 6);
    EQ(pre.norm, sqrt(41));
    ck_assert_int_eq(ins_layer_dead(&s.layers[0]), 2);
    EQ(ins_layer_saturation(&s.layers[1]), 0.5);
    /* weights are summarised once */
    ck_assert_int_eq(ins_acc_summary(&s.params[0].w).count, 6);
    EQ(ins_acc_summary(&s.params[0].w).norm, sqrt(7));
    ins_stats_free(&s);
}
END_TEST

START_TEST(update_ratio)
{
    Tensor *a = ti_tensor(DT_F32, 1, D(2), V(3, 4)), *b = ti_tensor(DT_F32, 1, D(2), V(3, 5));
    Tensor *z = ti_tensor(DT_F32, 1, D(2), V(0, 0)), *c = ti_tensor(DT_F32, 1, D(3), V(0, 0, 0));
    EQ(ins_update_ratio(a, b), 0.2);
    EQ(ins_update_ratio(a, a), 0);
    EQ(ins_update_ratio(z, z), 0);
    ck_assert(isinf(ins_update_ratio(z, a)));
    EQ(ins_update_ratio(a, c), -1);
    TensorMap before, after;
    rt_map_init(&before);
    rt_map_init(&after);
    rt_map_put(&before, "dense.kernel", rt_tensor_clone(rt_map_get(&params, "dense.kernel")));
    Tensor *k = rt_tensor_clone(rt_map_get(&params, "dense.kernel"));
    rt_set(k, 0, 2); /* |dW| = 1, |W| = sqrt(7) */
    rt_map_put(&after, "dense.kernel", k);
    Capture cap;
    ti_capture(&cap);
    ins_print_update_ratios(g, &before, &after, cap.f);
    ck_assert_str_eq(ti_text(&cap), "  update |dW|/|W|  dense.kernel" "                 0.378\n");
    ti_capture_free(&cap);
    rt_map_free(&before);
    rt_map_free(&after);
    rt_tensor_free(a);
    rt_tensor_free(b);
    rt_tensor_free(z);
    rt_tensor_free(c);
}
END_TEST

START_TEST(json_parses)
{
    InsStats s;
    run(&s, 1, false);
    Capture cap;
    ti_capture(&cap);
    ins_stats_print_json(&s, NULL, cap.f);
    const char *text = ti_text(&cap);
    Arena *a = arena_new();
    JsonError err;
    JsonValue *v = json_parse(a, text, strlen(text), 32, &err);
    ck_assert_msg(v != NULL, "JSON error at %zu: %s", err.off, err.msg);
    const JsonValue *layers = json_get(v, "layers"), *ps = json_get(v, "params");
    ck_assert_int_eq(layers->n, 2);
    ck_assert_int_eq(ps->n, 4);
    ck_assert_int_eq(json_get(layers->items[0], "dead")->i, 2);
    ck_assert_int_eq(json_get(layers->items[0], "units")->i, 3);
    EQ(json_get(layers->items[1], "saturated")->num, 0.5);
    ck_assert(json_get(layers->items[0], "saturated")->kind == JSON_NULL);
    EQ(json_get(json_get(layers->items[0], "pre"), "mean")->num, -1.0 / 6);
    ck_assert_str_eq(json_get(layers->items[0], "loc")->s, "tiny.mdl:4:5");
    arena_free(a);
    ti_capture_free(&cap);
    ins_stats_free(&s);
}
END_TEST

START_TEST(tables_and_histograms)
{
    InsStats s;
    run(&s, 1, true);
    Capture cap;
    ti_capture(&cap);
    ins_stats_print(&s, cap.f);
    ins_stats_print_hist(&s, NULL, cap.f, 4, 10);
    const char *t = ti_text(&cap);
    ck_assert_ptr_nonnull(strstr(t, "model tiny: 1 batch, 2 examples, training mode"));
    ck_assert_ptr_nonnull(strstr(t, "dense          relu              -        2/3"));
    ck_assert_ptr_nonnull(strstr(t, "dense_1        sigmoid       50.0%          -"));
    /* pre-activations -3..5 in 4 bins of 2: [-3,-1) has -3 and -2 */
    ck_assert_ptr_nonnull(strstr(t, "layer dense: pre-act (6 values)\n"
                                    "  [        -3,         -1)       2 ##########\n"
                                    "  [        -1,          1)       2 ##########\n"
                                    "  [         1,          3)       1 #####\n"
                                    "  [         3,          5)       1 #####\n"));
    ti_capture_free(&cap);
    ins_stats_free(&s);
}
END_TEST

/* A model without a loss, and one already differentiated, are refused. */
START_TEST(model_errors)
{
    Diags d2;
    diags_init(&d2);
    Graph *g2 = ti_compile("noloss.mdl", "model n\ninput x: f32[N, 2]\no = dense(x, 1)\n", &d2);
    ck_assert_ptr_null(ins_model_new(g2, &d2));
    ck_assert_int_eq(d2.nerrors, 1);
    ck_assert_str_eq(d2.v[d2.n - 1].msg,
                     "model 'n' has no loss: statistics need a loss to differentiate");
    ir_graph_free(g2);
    diags_free(&d2);
}
END_TEST

/* The input statistics of the static warnings: the mean and variance of
 * each float input over the whole data set, the same for 8-bit data (a
 * histogram of its bytes, 4 interleaved counts and a remainder: 4011
 * elements) as for the same values in f32 and in f64 (a column the
 * loaders would have cast, here as it is). */
START_TEST(input_stats_bytes)
{
    static const char *IN = "model in\n"
                            "input a: f32[N, 7]\n"
                            "input b: f32[N, 7]\n"
                            "input c: f32[N, 7]\n"
                            "input y: f32[N, 1]\n"
                            "loss = mean(a) + mean(b) + mean(c) + mean(y)\n";
    Diags d2;
    diags_init(&d2);
    Graph *g2 = ti_compile("in.mdl", IN, &d2);
    int64_t n = 573, numel = n * 7; /* 4011: 3 left over after the groups of 4 */
    double value[256];
    for (int i = 0; i < 256; i++)
        value[i] = (double)(float)(i / 255.0);
    unsigned char *bytes = xmalloc((size_t)numel);
    Tensor *b = rt_tensor_new(DT_F32, 2, (const int64_t[]){n, 7});
    Tensor *c = rt_tensor_new(DT_F64, 2, (const int64_t[]){n, 7});
    double sum = 0, sumsq = 0;
    for (int64_t k = 0; k < numel; k++) {
        bytes[k] = (unsigned char)((k * 37 + k / 11) % 256);
        ((float *)b->data)[k] = (float)value[bytes[k]];
        ((double *)c->data)[k] = value[bytes[k]];
        sum += value[bytes[k]];
        sumsq += value[bytes[k]] * value[bytes[k]];
    }
    Dataset ds;
    rt_dataset_init(&ds);
    ck_assert(rt_dataset_add_bytes(&ds, "a", DT_F32, 2, (const int64_t[]){n, 7}, bytes, value));
    ck_assert(rt_dataset_add(&ds, "b", b));
    ck_assert(rt_dataset_add(&ds, "c", c));
    ck_assert(rt_dataset_add(&ds, "y", rt_tensor_new(DT_F32, 2, (const int64_t[]){n, 1})));
    WarnInputs wi;
    ins_input_stats(g2, &ds, &wi);
    double mean = sum / (double)numel, var = sumsq / (double)numel - mean * mean;
    int seen = 0;
    for (int i = 0; i < wi.n; i++) {
        if (strcmp(wi.v[i].name, "y") == 0) {
            ck_assert(wi.v[i].mean == 0 && wi.v[i].var == 0);
            continue;
        }
        seen++;
        ck_assert_msg(fabs(wi.v[i].mean - mean) <= 1e-12 && fabs(wi.v[i].var - var) <= 1e-12,
                      "input %s: mean %.17g var %.17g, want %.17g %.17g", wi.v[i].name, wi.v[i].mean,
                      wi.v[i].var, mean, var);
    }
    ck_assert_int_eq(seen, 3);
    ins_input_stats_free(&wi);
    rt_dataset_free(&ds);
    ir_graph_free(g2);
    diags_free(&d2);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("insight_stats");
    TCase *t = tcase_create("stats");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, layers_exact);
    tcase_add_test(t, softmax_layer_found);
    tcase_add_test(t, gradients_exact);
    tcase_add_test(t, two_batches);
    tcase_add_test(t, update_ratio);
    tcase_add_test(t, json_parses);
    tcase_add_test(t, tables_and_histograms);
    tcase_add_test(t, model_errors);
    tcase_add_test(t, input_stats_bytes);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
