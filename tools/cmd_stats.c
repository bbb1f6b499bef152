/* `modelc stats FILE`: forward and backward passes in training mode on a
 * few batches with the reference interpreter, summarised per layer
 * (pre-activations, activations, their gradients, saturation, dead ReLUs,
 * gradient norm vs the last layer) and per parameter (weights, gradients,
 * |grad|/|W|); text histograms, a picture, two checkpoints side by side,
 * or JSON. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/insight/insight.h"
#include "cli.h"
#include "data_cli.h"
#include "backend/driver/data.h"
#include "backend/driver/grad.h"

typedef struct StatsArgs {
    DataArgs data;
    const char *weights, *compare, *plot;
    int batches, batch;
    uint64_t seed;
    CliList fdiff;
    bool hist, json, numerics;
    const char *mode;
} StatsArgs;

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int parse(StatsArgs *a, int argc, char **argv, const char **file)
{
    const CliOpt opts[] = {
        {"weights", CLI_STR, &a->weights, "CKPT", "parameters (default: initialise with --seed)"},
        DATA_CLI_OPTS(a->data),
        {"batches", CLI_INT, &a->batches, "K", "number of batches (default 4)"},
        {"batch", CLI_INT, &a->batch, "B", "examples per batch (default: the model's, at most 64)"},
        {"seed", CLI_U64, &a->seed, "S", "seed for initial weights and dropout (default: the model's)"},
        {"hist", CLI_FLAG, &a->hist, NULL, "draw text histograms"},
        {"plot", CLI_STR, &a->plot, "OUT", "draw histograms to OUT.svg or OUT.png"},
        {"compare", CLI_STR, &a->compare, "CKPT2", "compare with a second checkpoint (after)"},
        {"json", CLI_FLAG, &a->json, NULL, "print JSON instead of tables"},
        {"numerics", CLI_FLAG, &a->numerics, NULL,
         "instead: evaluate one step on the first batch and report the first op that produces "
         "a NaN or Inf (exit status 1 when one does)"},
        {"forward-diff", CLI_MULTI, &a->fdiff, "FILE2",
         "instead: evaluate FILE and FILE2 (inference mode, each initialised with the same seed) "
         "on the first batch and print the largest difference of each output and the losses "
         "(repeatable)"},
        {"mode", CLI_STR, &a->mode, "MODE",
         "with --numerics: the mode the step runs in, train (default) or infer"},
    };
    const CliCmd cmd = {
        "stats", "FILE [options]",
        "Run forward and backward passes (training mode, interpreter) on K batches and print\n"
        "per-layer and per-parameter statistics: mean, std, min, max and norm of weights,\n"
        "pre-activations, activations and gradients; saturated sigmoid/tanh outputs (within\n"
        "1% of a bound), dead ReLU units (zero for every example), each layer's gradient norm\n"
        "relative to the last layer's, and |grad W|/|W| per parameter. Norms are per batch,\n"
        "root-mean-squared over the batches. The first K*B examples of the training data are\n"
        "used, bound to the model's inputs as by modelc train.",
        opts, ARRAY_LEN(opts), 1, 1};
    char **pos;
    int npos;
    a->seed = UINT64_MAX;
    int rc = cli_parse(&cmd, argc, argv, &pos, &npos);
    if (rc)
        return rc < 0 ? -1 : rc;
    *file = pos[0];
    free(pos);
    if (a->batches < 1)
        return cli_usage_error("stats", "--batches must be at least 1, got %d", a->batches);
    if (strcmp(a->mode, "train") != 0 && strcmp(a->mode, "infer") != 0)
        return cli_usage_error("stats", "--mode must be train or infer, got '%s'", a->mode);
    if (a->plot && !ends_with(a->plot, ".svg") && !ends_with(a->plot, ".png"))
        return cli_usage_error("stats", "--plot needs a .svg or .png file name, got '%s'", a->plot);
    if (a->batch != INT_MIN && a->batch < 1)
        return cli_usage_error("stats", "--batch must be at least 1, got %d", a->batch);
    return 0;
}

/* ---- data ---- */

static bool load_data(const StatsArgs *a, const Graph *g, uint64_t seed, Dataset *ds, Diags *d)
{
    bool have;
    DataOpts o = {a->data.data.v, a->data.data.n, a->data.no_scale, a->data.limit, a->data.label_col, false};
    return data_load(&o, "train", g, seed, ds, &have, d);
}

/* ---- one statistics run ---- */

static bool run_stats(InsModel *m, const Graph *src, const StatsArgs *a, const char *ckpt,
                      uint64_t seed, const Dataset *ds, int64_t batch, InsStats *s, Diags *d)
{
    TensorMap params, b;
    rt_map_init(&params);
    rt_map_init(&b);
    bool ok = gc_load_params(src, ckpt, seed, &params, d);
    ins_stats_init(s, m, a->hist || a->plot);
    RunOpts ro = {seed, 0};
    for (int k = 0; ok && k < a->batches; k++) {
        if (rt_dataset_batch(ds, NULL, k * batch, batch, &b) <= 0)
            break;
        ok = ins_stats_add_batch(s, m, &params, &b, &ro, d);
    }
    rt_map_free(&b);
    rt_map_free(&params);
    return ok;
}

static bool report(const StatsArgs *a, InsStats *s1, InsStats *s2, Diags *d)
{
    if (a->json)
        ins_stats_print_json(s1, s2, stdout);
    else if (s2)
        ins_stats_print_compare(s1, s2, a->weights ? a->weights : "initial weights", a->compare,
                                stdout);
    else
        ins_stats_print(s1, stdout);
    if (a->hist && !a->json) {
        fputc('\n', stdout);
        if (s2)
            fputs("histograms: before (left) | after (right)\n\n", stdout);
        ins_stats_print_hist(s1, s2, stdout, 20, 40);
    }
    if (a->plot) {
        if (!ins_stats_plot(s1, s2, a->plot, d))
            return false;
        if (!a->json)
            printf("wrote %s\n", a->plot);
    }
    return true;
}

/* The static warnings of modelc check, estimated with the input statistics
 * of the data (printed before the tables). */
static void static_warnings(const Graph *g, const Dataset *ds)
{
    WarnInputs wi;
    ins_input_stats(g, ds, &wi);
    Diags wd;
    diags_init(&wd);
    for (int i = 0; i < g->nfiles; i++) {
        size_t len;
        char *text = read_file(g->files[i], &len);
        if (text)
            diags_add_source(&wd, g->files[i], text, len);
        free(text);
    }
    ps_warn((Graph *)g, &wi, &wd);
    diags_print(&wd, stderr);
    fflush(stderr);
    diags_free(&wd);
    ins_input_stats_free(&wi);
}

/* --numerics: one step on the first batch; false when a value is not finite. */
static bool numerics(const Graph *g, const StatsArgs *a, uint64_t seed, const Dataset *ds,
                     int64_t batch, Diags *d)
{
    NumericsOpts no = {strcmp(a->mode, "infer") == 0 ? MODE_INFER : MODE_TRAIN, false, 0};
    InsNumerics *n = ins_numerics_new(g, &no, d);
    TensorMap params, b;
    rt_map_init(&params);
    rt_map_init(&b);
    bool ok = n && gc_load_params(g, a->weights, seed, &params, d);
    if (ok) {
        rt_dataset_batch(ds, NULL, 0, batch, &b);
        RunOpts ro = {seed, 0};
        InsNumResult r = ins_numerics_check(n, &params, &b, &ro, stdout);
        if (r == INS_NUM_FINITE)
            printf("step 0 (%s mode): every value of the forward and backward pass is finite\n",
                   no.mode == MODE_TRAIN ? "training" : "inference");
        ok = r == INS_NUM_FINITE;
    }
    rt_map_free(&b);
    rt_map_free(&params);
    ins_numerics_free(n);
    return ok;
}

/* ---- --forward-diff ---- */

/* Outputs and loss of g's inference graph on batch b; NULL after an error. */
static Tensor **forward(const Graph *src, const char *weights, uint64_t seed, const TensorMap *b,
                        Graph **out_g, Diags *d)
{
    Graph *g = ir_clone((Graph *)src);
    TensorMap params;
    rt_map_init(&params);
    Tensor **outs = xcalloc((size_t)g->nouts + 1, sizeof(Tensor *));
    RunOpts ro = {seed, 0};
    bool ok = ps_specialize(g, MODE_INFER, d) && gc_load_params(g, weights, seed, &params, d) &&
              be_interp_run(g, &params, b, &ro, outs, d);
    rt_map_free(&params);
    if (!ok) {
        free(outs);
        ir_graph_free(g);
        return NULL;
    }
    *out_g = g;
    return outs;
}

static double max_abs_diff(const Tensor *x, const Tensor *y, double *scale)
{
    double m = 0;
    for (int64_t i = 0; i < x->numel; i++) {
        double a = rt_get(x, i), b = rt_get(y, i);
        m = fabs(a - b) > m || isnan(a - b) ? fabs(a - b) : m;
        *scale = fabs(a) > *scale ? fabs(a) : *scale;
    }
    return m;
}

static void compare_outputs(const Graph *g1, Tensor **o1, const Graph *g2, Tensor **o2,
                            const char *name2)
{
    for (int i = 0; i < g1->nouts; i++) {
        const Output *a = &g1->outs[i];
        if (a->kind != OUT_VALUE && a->kind != OUT_LOSS)
            continue;
        int j = 0;
        while (j < g2->nouts && (g2->outs[j].kind != a->kind || strcmp(g2->outs[j].name, a->name)))
            j++;
        if (j == g2->nouts || !rt_tensor_same_shape(o1[i], o2[j])) {
            printf("  %-8s %s: no output of that name and shape\n", a->name, name2);
            continue;
        }
        double scale = 0, m = max_abs_diff(o1[i], o2[j], &scale);
        printf("  %-8s %s: max |difference| %.3g (largest |value| %.3g, %lld values)\n", a->name,
               name2, m, scale, (long long)o1[i]->numel);
    }
}

static bool forward_diff(const Graph *g, const StatsArgs *a, uint64_t seed, const Dataset *ds,
                         int64_t batch, Diags *d)
{
    TensorMap b;
    rt_map_init(&b);
    int64_t n = rt_dataset_batch(ds, NULL, 0, batch, &b);
    Graph *g1 = NULL;
    Tensor **o1 = forward(g, a->weights, seed, &b, &g1, d);
    bool ok = o1 != NULL;
    if (ok)
        printf("model %s vs each other model: inference mode, %lld examples, parameters initialised "
               "with seed %llu\n",
               g->name, (long long)n, (unsigned long long)seed);
    for (int k = 0; ok && k < a->fdiff.n; k++) {
        Graph *other = cli_load(a->fdiff.v[k], d), *g2 = NULL;
        Tensor **o2 = other ? forward(other, NULL, seed, &b, &g2, d) : NULL;
        ok = o2 != NULL;
        if (ok)
            compare_outputs(g1, o1, g2, o2, a->fdiff.v[k]);
        for (int i = 0; o2 && i < g2->nouts; i++)
            rt_tensor_free(o2[i]);
        free(o2);
        ir_graph_free(g2);
        ir_graph_free(other);
    }
    for (int i = 0; o1 && i < g1->nouts; i++)
        rt_tensor_free(o1[i]);
    free(o1);
    ir_graph_free(g1);
    rt_map_free(&b);
    return ok;
}

static bool stats(const Graph *g, const StatsArgs *a, Diags *d)
{
    uint64_t seed = a->seed != UINT64_MAX ? a->seed : g->train.seed;
    Dataset ds;
    if (!load_data(a, g, seed, &ds, d))
        return false;
    int64_t batch = a->batch != INT_MIN ? a->batch : (g->train.batch < 64 ? g->train.batch : 64);
    if (a->numerics || a->fdiff.n) {
        bool ok = a->numerics ? numerics(g, a, seed, &ds, batch, d)
                              : forward_diff(g, a, seed, &ds, batch, d);
        rt_dataset_free(&ds);
        return ok;
    }
    if (!a->json)
        static_warnings(g, &ds);
    InsModel *m = ins_model_new(g, d);
    InsStats s1, s2;
    memset(&s1, 0, sizeof s1);
    memset(&s2, 0, sizeof s2);
    bool ok = m && run_stats(m, g, a, a->weights, seed, &ds, batch, &s1, d);
    if (ok && a->compare)
        ok = run_stats(m, g, a, a->compare, seed, &ds, batch, &s2, d);
    if (ok)
        ok = report(a, &s1, a->compare ? &s2 : NULL, d);
    ins_stats_free(&s1);
    ins_stats_free(&s2);
    ins_model_free(m);
    rt_dataset_free(&ds);
    return ok;
}

int cmd_stats(int argc, char **argv)
{
    StatsArgs a = {.batches = 4, .batch = INT_MIN, .mode = "train"};
    const char *file;
    int rc = parse(&a, argc, argv, &file);
    if (rc)
        return rc < 0 ? 0 : rc;
    Diags d;
    diags_init(&d);
    Graph *g = cli_load(file, &d);
    int shown = d.n;
    bool ok = g && stats(g, &a, &d);
    diags_print_from(&d, stderr, shown);
    ir_graph_free(g);
    diags_free(&d);
    return ok ? 0 : 1;
}
