/* `modelc stats` (mc_stats in include/modelc_inspect.h): forward and
 * backward passes in training mode on a few batches with the reference
 * interpreter, summarised per layer (pre-activations, activations, their
 * gradients, saturation, dead ReLUs, gradient norm vs the last layer) and
 * per parameter (weights, gradients, |grad|/|W|); text histograms, a
 * picture, two checkpoints side by side, or JSON. Also the first NaN/Inf
 * of one step (--numerics) and the outputs of several models side by
 * side (--forward-diff). */
#include "modelc_inspect.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/driver/api_internal.h"
#include "backend/driver/data.h"
#include "backend/driver/grad.h"
#include "insight.h"

void mc_stats_options_default(mc_stats_options *o)
{
    memset(o, 0, sizeof *o);
    mc_data_options_default(&o->data);
    o->batches = 4;
}

/* ---- data ---- */

static bool load_data(const mc_stats_options *a, const Graph *g, uint64_t seed, Dataset *ds, Diags *d)
{
    bool have;
    DataOpts o = {a->data.sources, a->data.nsources, a->data.no_scale, a->data.limit, a->data.label_column,
                  false, NULL, a->data.classes};
    return data_load(&o, "train", g, seed, ds, &have, d);
}

/* ---- one statistics run ---- */

static bool run_stats(InsModel *m, const Graph *src, const mc_stats_options *a, const char *ckpt,
                      uint64_t seed, const Dataset *ds, int64_t batch, InsStats *s, Diags *d)
{
    TensorMap params, b;
    rt_map_init(&params);
    rt_map_init(&b);
    bool ok = gc_load_params(src, ckpt, seed, &params, d);
    ins_stats_init(s, m, a->hist || a->plot || a->tensorboard);
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

static bool report(const mc_stats_options *a, InsStats *s1, InsStats *s2, FILE *out, Diags *d)
{
    if (a->json)
        ins_stats_print_json(s1, s2, out);
    else if (s2)
        ins_stats_print_compare(s1, s2, a->weights ? a->weights : "initial weights", a->compare, out);
    else
        ins_stats_print(s1, out);
    if (a->hist && !a->json) {
        fputc('\n', out);
        if (s2)
            fputs("histograms: before (left) | after (right)\n\n", out);
        ins_stats_print_hist(s1, s2, out, 20, 40);
    }
    if (a->tensorboard) {
        RtEvents *ev = rt_events_open(a->tensorboard, d);
        if (!ev)
            return false;
        ins_tb_stats(ev, s1, 0);
        if (s2)
            ins_tb_stats(ev, s2, 1);
        if (!rt_events_close(ev, d))
            return false;
        if (!a->json)
            fprintf(out, "wrote TensorBoard events to %s/\n", a->tensorboard);
    }
    if (a->plot) {
        if (!ins_stats_plot(s1, s2, a->plot, d))
            return false;
        if (!a->json)
            fprintf(out, "wrote %s\n", a->plot);
    }
    return true;
}

void ins_static_warnings(const Graph *g, const Dataset *ds, int batch, FILE *f)
{
    WarnInputs wi;
    ins_input_stats(g, ds, &wi);
    wi.batch = batch;
    Diags wd;
    diags_init(&wd);
    for (int i = 0; i < g->nfiles; i++) {
        size_t len;
        char *text = read_file(g->files[i], &len);
        if (text)
            diags_add_source(&wd, g->files[i], text, len);
        xfree(text);
    }
    ps_warn((Graph *)g, &wi, &wd);
    diags_print(&wd, f);
    fflush(f);
    diags_free(&wd);
    ins_input_stats_free(&wi);
}

/* --numerics: one step on the first batch; false when a value is not finite. */
static bool numerics(const Graph *g, const mc_stats_options *a, uint64_t seed, const Dataset *ds,
                     int64_t batch, FILE *out, Diags *d)
{
    NumericsOpts no = {a->mode == MC_MODE_INFER ? MODE_INFER : MODE_TRAIN, false, 0};
    InsNumerics *n = ins_numerics_new(g, &no, d);
    TensorMap params, b;
    rt_map_init(&params);
    rt_map_init(&b);
    bool ok = n && gc_load_params(g, a->weights, seed, &params, d);
    if (ok) {
        rt_dataset_batch(ds, NULL, 0, batch, &b);
        RunOpts ro = {seed, 0};
        InsNumResult r = ins_numerics_check(n, &params, &b, &ro, out);
        if (r == INS_NUM_FINITE)
            fprintf(out, "step 0 (%s mode): every value of the forward and backward pass is finite\n",
                    no.mode == MODE_TRAIN ? "training" : "inference");
        ok = r == INS_NUM_FINITE;
    }
    rt_map_free(&b);
    rt_map_free(&params);
    ins_numerics_free(n);
    return ok;
}

/* ---- --forward-diff ---- */

/* Outputs and loss of the inference graph of src on batch b; NULL after
 * an error. */
static Tensor **forward(const Graph *src, const char *weights, uint64_t seed, const TensorMap *b,
                        Graph **out_g, Diags *d)
{
    RecipeOpts ro = ps_recipe_opts(FN_EVAL);
    ro.fuse = false;
    ro.stop_after = "specialize";
    Graph *g = ps_recipe(src, &ro, d);
    if (!g)
        return NULL;
    TensorMap params;
    rt_map_init(&params);
    Tensor **outs = xcalloc((size_t)g->nouts + 1, sizeof(Tensor *));
    RunOpts run = {seed, 0};
    bool ok = gc_load_params(g, weights, seed, &params, d) && be_interp_run(g, &params, b, &run, outs, d);
    rt_map_free(&params);
    if (!ok) {
        xfree(outs);
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
                            const char *name2, FILE *out)
{
    for (int i = 0; i < g1->nouts; i++) {
        const Output *a = &g1->outs[i];
        if (a->kind != OUT_VALUE && a->kind != OUT_LOSS)
            continue;
        int j = 0;
        while (j < g2->nouts && (g2->outs[j].kind != a->kind || strcmp(g2->outs[j].name, a->name)))
            j++;
        if (j == g2->nouts || !rt_tensor_same_shape(o1[i], o2[j])) {
            fprintf(out, "  %-8s %s: no output of that name and shape\n", a->name, name2);
            continue;
        }
        double scale = 0, m = max_abs_diff(o1[i], o2[j], &scale);
        fprintf(out, "  %-8s %s: max |difference| %.3g (largest |value| %.3g, %lld values)\n", a->name,
                name2, m, scale, (long long)o1[i]->numel);
    }
}

static bool forward_diff(const Graph *g, const mc_stats_options *a, uint64_t seed, const Dataset *ds,
                         int64_t batch, FILE *out, FILE *err, Diags *d)
{
    TensorMap b;
    rt_map_init(&b);
    int64_t n = rt_dataset_batch(ds, NULL, 0, batch, &b);
    Graph *g1 = NULL;
    Tensor **o1 = forward(g, a->weights, seed, &b, &g1, d);
    bool ok = o1 != NULL;
    if (ok)
        fprintf(out,
                "model %s vs each other model: inference mode, %lld examples, parameters initialised "
                "with seed %llu\n",
                g->name, (long long)n, (unsigned long long)seed);
    for (int k = 0; ok && k < a->nforward_diff; k++) {
        Graph *other = mc_load_source(a->forward_diff[k], NULL, d, err), *g2 = NULL;
        Tensor **o2 = other ? forward(other, NULL, seed, &b, &g2, d) : NULL;
        ok = o2 != NULL;
        if (ok)
            compare_outputs(g1, o1, g2, o2, a->forward_diff[k], out);
        for (int i = 0; o2 && i < g2->nouts; i++)
            rt_tensor_free(o2[i]);
        xfree(o2);
        ir_graph_free(g2);
        ir_graph_free(other);
    }
    for (int i = 0; o1 && i < g1->nouts; i++)
        rt_tensor_free(o1[i]);
    xfree(o1);
    ir_graph_free(g1);
    rt_map_free(&b);
    return ok;
}

static bool stats(const Graph *g, const RunSettings *run, const mc_stats_options *a, FILE *out, FILE *err,
                  Diags *d)
{
    uint64_t seed = a->seed_set ? a->seed : run->seed;
    Dataset ds;
    if (!load_data(a, g, seed, &ds, d))
        return false;
    int64_t batch = a->batch > 0 ? a->batch : (run->batch < 64 ? run->batch : 64);
    if (a->numerics || a->nforward_diff) {
        bool ok = a->numerics ? numerics(g, a, seed, &ds, batch, out, d)
                              : forward_diff(g, a, seed, &ds, batch, out, err, d);
        rt_dataset_free(&ds);
        return ok;
    }
    if (!a->json && !a->no_warn)
        ins_static_warnings(g, &ds, run->batch, err);
    InsModel *m = ins_model_new(g, d);
    InsStats s1, s2;
    memset(&s1, 0, sizeof s1);
    memset(&s2, 0, sizeof s2);
    bool ok = m && run_stats(m, g, a, a->weights, seed, &ds, batch, &s1, d);
    if (ok && a->compare)
        ok = run_stats(m, g, a, a->compare, seed, &ds, batch, &s2, d);
    if (ok)
        ok = report(a, &s1, a->compare ? &s2 : NULL, out, d);
    ins_stats_free(&s1);
    ins_stats_free(&s2);
    ins_model_free(m);
    rt_dataset_free(&ds);
    return ok;
}

static int stats_cmd(const char *path, const mc_stats_options *o, FILE *out, FILE *err)
{
    Diags d;
    diags_init(&d);
    RunSettings run;
    Graph *g = mc_load_source(path, &run, &d, err);
    int shown = d.n;
    bool ok = g && stats(g, &run, o, out, err, &d);
    diags_print_from(&d, err, shown);
    ir_graph_free(g);
    diags_free(&d);
    return ok ? 0 : 1;
}

int mc_stats(const char *path, const mc_stats_options *o, FILE *out, FILE *err)
{
    MC_COMMAND(path, err, "computing statistics", stats_cmd(path, o, out, err));
}
