/* `modelc grad`: compile the model's grad function (specialize for
 * training, differentiate, simplify; fused for the JIT), evaluate the loss and every gradient for one batch with the
 * reference interpreter (default) or the LLVM JIT, print the loss and
 * write the gradients (grad.<name>) to a safetensors file. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/interp/interp.h"
#include "backend/llvm/jit.h"
#include "cli.h"
#include "grad_common.h"
#include "passes/passes.h"
#include "runtime/io/io.h"

typedef struct GradArgs {
    const char *weights, *inputs, *output, *backend;
    uint64_t seed;
    bool seed_set;
    int batch;
    CliList wrt;
} GradArgs;

static int parse(GradArgs *a, int argc, char **argv, const char **file)
{
    CliOpt opts[] = {
        {"output", CLI_STR, &a->output, "G.safetensors", "where to write the gradients (also -o)"},
        {"weights", CLI_STR, &a->weights, "W.safetensors", "parameter values (default: initialise with --seed)"},
        {"inputs", CLI_STR, &a->inputs, "X.safetensors",
         "the batch (default: --batch random examples, floats uniform in [0,1), labels uniform classes)"},
        {"backend", CLI_STR, &a->backend, "interp|jit", "evaluator (default interp)"},
        {"seed", CLI_U64, &a->seed, "S", "seed for initial weights and the random batch (default: the model's)"},
        {"batch", CLI_INT, &a->batch, "N", "examples in the random batch (default 4)"},
        {"wrt", CLI_MULTI, &a->wrt, "NAME", "also differentiate with respect to this input (repeatable)"},
    };
    CliCmd cmd = {"grad", "FILE -o G.safetensors [options]",
                  "Evaluate the loss and the gradient of every trainable parameter for one batch\n"
                  "(specialize for training, autodiff, simplify) and write them as grad.<name>.",
                  opts, ARRAY_LEN(opts), 1, 1};
    int rc = cli_parse_output_seed(&cmd, argc, argv, file, &a->output, "G.safetensors", &a->seed, &a->seed_set);
    if (rc)
        return rc;
    if (strcmp(a->backend, "interp") != 0 && strcmp(a->backend, "jit") != 0)
        return cli_usage_error("grad", "unknown backend '%s' (expected interp or jit)", a->backend);
    if (a->batch < 1)
        return cli_usage_error("grad", "--batch must be at least 1, got %d", a->batch);
    return 0;
}

/* Report a non-finite loss or gradient; true when all values are finite. */
static bool check_finite(const Output *o, const Tensor *t, Diags *d, SrcLoc loc)
{
    for (int64_t i = 0; i < t->numel; i++) {
        double v = rt_get(t, i);
        if (!isfinite(v)) {
            diag_error(d, loc, "%s '%s' is %s at element %lld", o->kind == OUT_LOSS ? "the loss" : "gradient",
                       o->name, isnan(v) ? "NaN" : "infinite", (long long)i);
            return false;
        }
    }
    return true;
}

/* Returns the number of gradients written, or -1 after an error. */
static int write_grads(Graph *g, Tensor **outs, const char *path, const char *loss, Diags *d)
{
    TensorMap m;
    rt_map_init(&m);
    for (int i = 0; i < g->nouts; i++) {
        if (g->outs[i].kind != OUT_GRAD)
            continue;
        rt_map_put(&m, g->outs[i].name, outs[i]);
        outs[i] = NULL;
    }
    Metadata meta;
    rt_meta_init(&meta);
    rt_meta_set(&meta, RT_META_MODEL, g->name);
    rt_meta_set(&meta, "loss", loss);
    bool ok = rt_safetensors_write(path, &m, &meta, d);
    int n = m.n;
    rt_meta_free(&meta);
    rt_map_free(&m);
    return ok ? n : -1;
}

static bool run_jit(Graph *g, const TensorMap *params, const TensorMap *inputs, const RunOpts *ro,
                    Tensor **outs, Diags *d)
{
    JitOpts o;
    be_jit_opts_default(&o);
    JitModule *m = be_jit_compile(g, &o, d);
    bool ok = m && be_jit_run(m, params, inputs, ro, outs, d);
    be_jit_free(m);
    return ok;
}

static Graph *grad_fn(const Graph *src, const GradArgs *a, bool fuse, Diags *d)
{
    RecipeOpts o = ps_recipe_opts(FN_GRAD);
    o.fuse = fuse;
    o.wrt = a->wrt.v;
    o.nwrt = a->wrt.n;
    return ps_recipe(src, &o, d);
}

static bool evaluate(const Graph *src, Graph *g, const GradArgs *a, Diags *d)
{
    TensorMap params, inputs;
    rt_map_init(&params);
    rt_map_init(&inputs);
    uint64_t seed = a->seed_set ? a->seed : g->train.seed;
    bool ok = gc_load_params(g, a->weights, seed, &params, d);
    if (ok && a->inputs)
        ok = gc_load_inputs(g, a->inputs, &inputs, d);
    else if (ok)
        gc_random_inputs(g, a->batch, seed, &inputs);
    Tensor **outs = xcalloc((size_t)g->nouts + 1, sizeof(Tensor *));
    RunOpts ro = {seed, 0};
    if (strcmp(a->backend, "jit") == 0)
        ok = ok && run_jit(g, &params, &inputs, &ro, outs, d);
    else
        ok = ok && be_interp_run(g, &params, &inputs, &ro, outs, d);
    int li = gc_find_output(g, OUT_LOSS);
    char loss[64] = "";
    if (ok) {
        gc_fmt_value(loss, sizeof loss, rt_get(outs[li], 0), outs[li]->dt);
        printf("loss: %s\n", loss);
        for (int i = 0; i < g->nouts && ok; i++)
            if (g->outs[i].kind == OUT_LOSS || g->outs[i].kind == OUT_GRAD)
                ok = check_finite(&g->outs[i], outs[i], d, g->outs[i].val->loc);
        if (!ok) { /* the search evaluates every op: the unfused function */
            Graph *u = grad_fn(src, a, false, d);
            if (u)
                gc_explain_nonfinite(u, &params, &inputs, &ro, d);
            ir_graph_free(u);
        }
    }
    int nw = ok ? write_grads(g, outs, a->output, loss, d) : -1;
    ok = nw >= 0;
    if (ok)
        printf("wrote %d gradient%s to %s\n", nw, nw == 1 ? "" : "s", a->output);
    for (int i = 0; i < g->nouts; i++)
        rt_tensor_free(outs[i]);
    free(outs);
    rt_map_free(&params);
    rt_map_free(&inputs);
    return ok;
}

int cmd_grad(int argc, char **argv)
{
    GradArgs a = {.backend = "interp", .batch = 4};
    const char *file;
    int rc = parse(&a, argc, argv, &file);
    if (rc)
        return rc < 0 ? 0 : rc;
    Diags d;
    diags_init(&d);
    Graph *g = cli_load(file, &d);
    int shown = d.n;
    bool ok = g != NULL;
    Graph *f = ok ? grad_fn(g, &a, strcmp(a.backend, "jit") == 0, &d) : NULL;
    ok = f && evaluate(g, f, &a, &d);
    diags_print_from(&d, stderr, shown);
    ir_graph_free(f);
    ir_graph_free(g);
    diags_free(&d);
    return ok ? 0 : 1;
}
