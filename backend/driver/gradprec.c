/* `modelc gradcheck --dtype f32`: how much precision the f32 gradients
 * lose. The f64 gradients of the unfused grad function are the
 * reference; the f32 gradients of the same weights (f32 values, exactly
 * widened) and batch come from the unfused function on the interpreter
 * and, with --backend jit, from the fused function as the JIT compiles
 * it. Per parameter: max |g32 - g64| / max |g64|. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "grad.h"

typedef struct Run {
    const char *label;
    Graph *g;
    Tensor **outs;
    bool jit;
} Run;

static Graph *grad_graph(Graph *src, bool fuse, bool f64, Diags *d)
{
    RecipeOpts o = ps_recipe_opts(FN_GRAD);
    o.fuse = fuse;
    o.f64 = f64;
    return ps_recipe(src, &o, d);
}

/* A copy of m with every f32 tensor widened to f64. */
static void widen(const TensorMap *m, TensorMap *out)
{
    rt_map_init(out);
    for (int i = 0; i < m->n; i++) {
        const Tensor *t = m->t[i];
        Tensor *w = t->dt == DT_F32 ? rt_tensor_new(DT_F64, t->rank, t->dims) : rt_tensor_clone(t);
        if (!w)
            ICE("cannot allocate '%s'", m->names[i]);
        for (int64_t k = 0; t->dt == DT_F32 && k < t->numel; k++)
            rt_set(w, k, rt_get(t, k));
        rt_map_put(out, m->names[i], w);
    }
}

static bool evaluate(Run *r, const TensorMap *params, const TensorMap *inputs, const RunOpts *ro, Diags *d)
{
    r->outs = xcalloc((size_t)r->g->nouts + 1, sizeof(Tensor *));
    return r->jit ? gc_run_jit(r->g, params, inputs, ro, r->outs, d)
                  : be_interp_run(r->g, params, inputs, ro, r->outs, d);
}

static const Tensor *output_named(const Run *r, const char *name)
{
    for (int i = 0; i < r->g->nouts; i++)
        if (strcmp(r->g->outs[i].name, name) == 0)
            return r->outs[i];
    ICE("no output '%s'", name);
}

/* max |g - ref| / max |ref| (NaN when g holds one; 0 / 0 is 0). */
static double share(const Tensor *g, const Tensor *ref)
{
    double err = 0, scale = 0;
    for (int64_t k = 0; k < ref->numel; k++) {
        double e = fabs(rt_get(g, k) - rt_get(ref, k));
        if (!(e <= err))
            err = e;
        scale = fmax(scale, fabs(rt_get(ref, k)));
    }
    return err == 0 ? 0 : err / scale;
}

static void print_table(Run *runs, int nruns, const mc_gradcheck_options *a, FILE *out)
{
    Graph *g = runs[0].g;
    char loss[64];
    gc_fmt_value(loss, sizeof loss, rt_get(runs[0].outs[gc_find_output(g, OUT_LOSS)], 0), DT_F64);
    fprintf(out, "gradcheck %s: f32 gradients against f64 of the same weights and batch, batch %d, seed %llu; loss %s\n",
            g->name, a->batch, (unsigned long long)a->seed, loss);
    fprintf(out, "error = max |g32 - g64| / max |g64| per parameter\n");
    fprintf(out, "%-24s %-16s %12s", "parameter", "shape", "max |g64|");
    for (int r = 1; r < nruns; r++)
        fprintf(out, " %18s", runs[r].label);
    fputc('\n', out);
    double worst[4] = {0};
    for (int i = 0; i < g->nouts; i++) {
        const Output *o = &g->outs[i];
        if (o->kind != OUT_GRAD || o->target->op != OP_PARAM)
            continue;
        char sh[96];
        double scale = 0;
        for (int64_t k = 0; k < runs[0].outs[i]->numel; k++)
            scale = fmax(scale, fabs(rt_get(runs[0].outs[i], k)));
        fprintf(out, "%-24s %-16s %12.3e", o->target->a.name, ir_shape_str(&o->target->shape, sh, sizeof sh), scale);
        for (int r = 1; r < nruns; r++) {
            double e = share(output_named(&runs[r], o->name), runs[0].outs[i]);
            fprintf(out, " %18.3e", e);
            if (!(e <= worst[r]))
                worst[r] = e;
        }
        fputc('\n', out);
    }
    fprintf(out, "largest:");
    for (int r = 1; r < nruns; r++)
        fprintf(out, "%s %s %.3e", r > 1 ? "," : "", runs[r].label, worst[r]);
    fputc('\n', out);
}

bool gc_precision_report(Graph *src, const mc_gradcheck_options *a, FILE *out, Diags *d)
{
    Run runs[3] = {{"f64", NULL, NULL, false}, {"unfused f32", NULL, NULL, false}, {"fused f32 (jit)", NULL, NULL, true}};
    int nruns = a->backend == MC_BACKEND_JIT ? 3 : 2;
    bool ok = true;
    for (int r = 0; r < nruns && ok; r++)
        ok = (runs[r].g = grad_graph(src, runs[r].jit, r == 0, d)) != NULL;
    TensorMap params, inputs, params64, inputs64;
    rt_map_init(&params);
    rt_map_init(&inputs);
    rt_map_init(&params64);
    rt_map_init(&inputs64);
    RunOpts ro = {a->seed, 0};
    if (ok)
        ok = gc_check_params(runs[1].g, a->seed, &params, d) &&
             gc_random_inputs(runs[1].g, a->batch, a->seed, &inputs, d);
    if (ok) {
        widen(&params, &params64);
        widen(&inputs, &inputs64);
        ok = evaluate(&runs[0], &params64, &inputs64, &ro, d);
        for (int r = 1; r < nruns && ok; r++)
            ok = evaluate(&runs[r], &params, &inputs, &ro, d);
    }
    if (ok)
        print_table(runs, nruns, a, out);
    for (int r = 0; r < nruns; r++) {
        for (int i = 0; runs[r].outs && i < runs[r].g->nouts; i++)
            rt_tensor_free(runs[r].outs[i]);
        xfree(runs[r].outs);
        ir_graph_free(runs[r].g);
    }
    rt_map_free(&params);
    rt_map_free(&inputs);
    rt_map_free(&params64);
    rt_map_free(&inputs64);
    return ok;
}
