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
#include "grad_common.h"

typedef struct StatsArgs {
    const char *weights, *compare, *data, *plot;
    int batches, batch;
    uint64_t seed;
    bool hist, json, numerics;
    const char *mode;
    double pixel_target;
} StatsArgs;

static int parse(StatsArgs *a, int argc, char **argv, const char **file)
{
    const CliOpt opts[] = {
        {"weights", CLI_STR, &a->weights, "CKPT", "parameters (default: initialise with --seed)"},
        {"data", CLI_STR, &a->data, "SPEC",
         "fashion-mnist[:train|:test] (default), uniform:N[:LO:HI] (x uniform, y = x), or a "
         ".safetensors data set"},
        {"batches", CLI_INT, &a->batches, "K", "number of batches (default 4)"},
        {"batch", CLI_INT, &a->batch, "B", "examples per batch (default: the model's, at most 64)"},
        {"seed", CLI_U64, &a->seed, "S", "seed for initial weights and dropout (default: the model's)"},
        {"pixel-target", CLI_DOUBLE, &a->pixel_target, "T",
         "add a data set tensor 'target' = (x > T), a per-pixel target (scenario S0)"},
        {"hist", CLI_FLAG, &a->hist, NULL, "draw text histograms"},
        {"plot", CLI_STR, &a->plot, "OUT", "draw histograms to OUT.svg or OUT.png"},
        {"compare", CLI_STR, &a->compare, "CKPT2", "compare with a second checkpoint (after)"},
        {"json", CLI_FLAG, &a->json, NULL, "print JSON instead of tables"},
        {"numerics", CLI_FLAG, &a->numerics, NULL,
         "instead: evaluate one step on the first batch and report the first op that produces "
         "a NaN or Inf (exit status 1 when one does)"},
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
        "root-mean-squared over the batches. Data binds to model inputs by name (x, y).",
        opts, ARRAY_LEN(opts), 1, 1};
    char **pos;
    int npos;
    a->seed = UINT64_MAX;
    a->pixel_target = NAN;
    int rc = cli_parse(&cmd, argc, argv, &pos, &npos);
    if (rc)
        return rc < 0 ? -1 : rc;
    *file = pos[0];
    free(pos);
    if (a->batches < 1)
        return cli_usage_error("stats", "--batches must be at least 1, got %d", a->batches);
    if (strcmp(a->mode, "train") != 0 && strcmp(a->mode, "infer") != 0)
        return cli_usage_error("stats", "--mode must be train or infer, got '%s'", a->mode);
    if (a->batch != INT_MIN && a->batch < 1)
        return cli_usage_error("stats", "--batch must be at least 1, got %d", a->batch);
    return 0;
}

/* ---- data ---- */

static DType input_dtype(const Graph *g, const char *name, DType dflt)
{
    Node *x = ir_find_input((Graph *)g, name);
    return x && ir_dtype_is_float(x->dt) ? x->dt : dflt;
}

static bool load_uniform(const char *spec, const Graph *g, uint64_t seed, Dataset *ds, Diags *d)
{
    long long n = 0;
    double lo = -1, hi = 1;
    int k = sscanf(spec, "uniform:%lld:%lf:%lf", &n, &lo, &hi);
    if ((k != 1 && k != 3) || n < 1 || !(lo < hi)) {
        diag_error(d, (SrcLoc){0}, "bad data spec '%s': expected uniform:N or uniform:N:LO:HI", spec);
        return false;
    }
    bool want_y = ir_find_input((Graph *)g, "y") != NULL;
    return rt_dataset_uniform(ds, n, input_dtype(g, "x", DT_F32), "x", want_y ? "y" : NULL, lo, hi,
                              seed);
}

static bool load_data(const StatsArgs *a, const Graph *g, uint64_t seed, Dataset *ds, Diags *d)
{
    const char *spec = a->data ? a->data : "fashion-mnist";
    RtLoadOpts o;
    rt_load_opts_default(&o);
    o.dt = input_dtype(g, "x", DT_F32);
    Node *y = ir_find_input((Graph *)g, "y");
    o.one_hot = y && ir_dtype_is_float(y->dt) && y->shape.rank == 2;
    if (strncmp(spec, "uniform:", 8) == 0)
        return load_uniform(spec, g, seed, ds, d);
    if (strcmp(spec, "fashion-mnist") == 0 || strncmp(spec, "fashion-mnist:", 14) == 0) {
        const char *split = spec[13] == ':' ? spec + 14 : "train";
        return rt_load_fashion_mnist("/usr/share/datasets/fashion-mnist", split, &o, ds, d);
    }
    return rt_load_safetensors_dataset(spec, &o, ds, d);
}

static void add_pixel_target(Dataset *ds, double thr)
{
    Tensor *x = rt_dataset_get(ds, "x");
    if (!x)
        return;
    Tensor *t = rt_tensor_like(x);
    for (int64_t i = 0; i < x->numel; i++)
        rt_set(t, i, rt_get(x, i) > thr ? 1.0 : 0.0);
    rt_dataset_add(ds, "target", t);
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
                   a->mode);
        ok = r == INS_NUM_FINITE;
    }
    rt_map_free(&b);
    rt_map_free(&params);
    ins_numerics_free(n);
    return ok;
}

static bool stats(const Graph *g, const StatsArgs *a, Diags *d)
{
    uint64_t seed = a->seed != UINT64_MAX ? a->seed : g->train.seed;
    Dataset ds;
    if (!load_data(a, g, seed, &ds, d))
        return false;
    if (!isnan(a->pixel_target))
        add_pixel_target(&ds, a->pixel_target);
    int64_t batch = a->batch != INT_MIN ? a->batch : (g->train.batch < 64 ? g->train.batch : 64);
    if (a->numerics) {
        bool ok = numerics(g, a, seed, &ds, batch, d);
        rt_dataset_free(&ds);
        return ok;
    }
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
