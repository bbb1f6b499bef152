/* `modelc predict FILE --weights W --inputs X -o Y`: compile the model's
 * inference graph (its output values only), run it with the JIT or the
 * interpreter on the inputs and write the outputs as safetensors, NPY or
 * CSV; --classes prints each example's predicted class (argmax). */
#include <stdlib.h>
#include <string.h>

#include "backend/interp/interp.h"
#include "backend/llvm/jit.h"
#include "cli.h"
#include "passes/passes.h"

typedef struct PredictArgs {
    const char *weights, *inputs, *output, *backend, *value;
    bool classes, time_passes;
    int threads;
} PredictArgs;

static SrcLoc file_loc(Diags *d, const char *path)
{
    SrcLoc l = {diags_intern_file(d, path), 0, 0};
    return l;
}

static bool has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcmp(s + n - k, suf) == 0;
}

static int parse(PredictArgs *a, int argc, char **argv, const char **file)
{
    const CliOpt opts[] = {
        {"weights", CLI_STR, &a->weights, "W.safetensors", "parameter values (required)"},
        {"inputs", CLI_STR, &a->inputs, "X.safetensors", "the model's inputs (required; .npy for a one-input model)"},
        {"output", CLI_STR, &a->output, "Y", "where to write the outputs: .safetensors, .npy or .csv (also -o)"},
        {"value", CLI_STR, &a->value, "NAME", "the output value to write to .npy/.csv (default: the only one)"},
        {"backend", CLI_STR, &a->backend, "jit|interp", "evaluator (default jit)"},
        {"classes", CLI_FLAG, &a->classes, NULL, "print the predicted class (argmax) of each example"},
        {"threads", CLI_INT, &a->threads, "T", "BLAS threads (default: number of cores)"},
        {"time-passes", CLI_FLAG, &a->time_passes, NULL, "report compile phase times on stderr"},
    };
    const CliCmd cmd = {"predict", "FILE --weights W.safetensors --inputs X.safetensors -o Y [options]",
                        "Run a model's inference graph on inputs and write its output values.",
                        opts, ARRAY_LEN(opts), 1, 1};
    char **av = cli_expand_output(argc, argv), **pos;
    int npos;
    int rc = cli_parse(&cmd, argc, av, &pos, &npos);
    free(av);
    if (rc)
        return rc < 0 ? -1 : rc;
    *file = pos[0];
    free(pos);
    if (!a->weights)
        return cli_usage_error("predict", "missing --weights W.safetensors");
    if (!a->inputs)
        return cli_usage_error("predict", "missing --inputs X.safetensors");
    if (!a->output && !a->classes)
        return cli_usage_error("predict", "missing the output file (-o Y.safetensors|.npy|.csv)");
    if (a->output && !has_suffix(a->output, ".safetensors") && !has_suffix(a->output, ".npy") &&
        !has_suffix(a->output, ".csv"))
        return cli_usage_error("predict", "output '%s' must end in .safetensors, .npy or .csv", a->output);
    if (strcmp(a->backend, "jit") != 0 && strcmp(a->backend, "interp") != 0)
        return cli_usage_error("predict", "unknown backend '%s' (expected jit or interp)", a->backend);
    if (a->threads < 0)
        return cli_usage_error("predict", "--threads must not be negative, got %d", a->threads);
    return 0;
}

/* The predict function (the output values alone), as its recipe compiles it. */
static Graph *prepare(Graph *src, const PredictArgs *a, Timer *timer, Diags *d)
{
    RecipeOpts o = ps_recipe_opts(FN_PREDICT);
    o.fuse = strcmp(a->backend, "jit") == 0;
    o.timer = timer;
    Graph *g = ps_recipe(src, &o, d);
    ir_graph_free(src);
    return g;
}

/* Inputs from safetensors (every tensor must be a model input) or, for a
 * model whose outputs read one input, from an NPY file. */
static bool load_inputs(Graph *g, const char *path, TensorMap *m, Diags *d)
{
    if (has_suffix(path, ".npy")) {
        Node *only = NULL;
        int n = 0, *uses = ir_use_counts(g);
        for (int i = 0; i < g->nnodes; i++)
            if (g->nodes[i]->op == OP_INPUT && uses[i] > 0) {
                only = g->nodes[i];
                n++;
            }
        free(uses);
        Tensor *t = rt_npy_read(path, d);
        if (!t)
            return false;
        if (n != 1) {
            rt_tensor_free(t);
            diag_error(d, file_loc(d, path), "model '%s' has %d inputs; give them in a .safetensors file",
                       g->name, n);
            return false;
        }
        rt_map_put(m, only->a.name, t);
        return true;
    }
    if (!rt_safetensors_read(path, m, NULL, d))
        return false;
    bool ok = true;
    for (int i = 0; i < m->n; i++)
        if (!ir_find_input(g, m->names[i])) {
            diag_error(d, file_loc(d, path), "tensor '%s' is not an input of model '%s'", m->names[i], g->name);
            ok = false;
        }
    return ok;
}

static bool run(Graph *g, const PredictArgs *a, const TensorMap *params, const TensorMap *inputs,
                Tensor **outs, Timer *timer, Diags *d)
{
    if (strcmp(a->backend, "interp") == 0)
        return be_interp_run(g, params, inputs, NULL, outs, d);
    JitOpts jo;
    be_jit_opts_default(&jo);
    jo.threads = a->threads;
    jo.time_passes = a->time_passes;
    jo.timer = timer;
    JitModule *m = be_jit_compile(g, &jo, d);
    bool ok = m && be_jit_run(m, params, inputs, NULL, outs, d);
    be_jit_free(m);
    return ok;
}

static int find_value(Graph *g, const PredictArgs *a, Diags *d)
{
    if (a->value) {
        for (int i = 0; i < g->nouts; i++)
            if (strcmp(g->outs[i].name, a->value) == 0)
                return i;
        diag_error(d, file_loc(d, a->output), "model '%s' has no output value '%s'", g->name, a->value);
        return -1;
    }
    if (g->nouts == 1)
        return 0;
    diag_error(d, file_loc(d, a->output), "model '%s' has %d output values; choose one with --value NAME",
               g->name, g->nouts);
    return -1;
}

/* One row per example (the first dimension), values in row-major order. */
static bool write_csv(const char *path, const Tensor *t, Diags *d)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        diag_error(d, file_loc(d, path), "cannot write file");
        return false;
    }
    int64_t rows = t->rank ? t->dims[0] : 1, cols = rows ? t->numel / rows : 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            char buf[40];
            double v = rt_get(t, r * cols + c);
            if (t->dt == DT_F32)
                snprintf(buf, sizeof buf, "%.9g", v);
            else
                fmt_double(buf, sizeof buf, v);
            fprintf(f, "%s%c", buf, c + 1 == cols ? '\n' : ',');
        }
    bool ok = !ferror(f);
    ok = fclose(f) == 0 && ok;
    if (!ok)
        diag_error(d, file_loc(d, path), "error writing file");
    return ok;
}

static bool write_outputs(Graph *g, const PredictArgs *a, Tensor **outs, Diags *d)
{
    if (has_suffix(a->output, ".safetensors")) {
        TensorMap m;
        rt_map_init(&m);
        for (int i = 0; i < g->nouts; i++) {
            rt_map_put(&m, g->outs[i].name, outs[i]);
            outs[i] = NULL;
        }
        Metadata meta;
        rt_meta_init(&meta);
        rt_meta_set(&meta, RT_META_MODEL, g->name);
        bool ok = rt_safetensors_write(a->output, &m, &meta, d);
        rt_meta_free(&meta);
        rt_map_free(&m);
        return ok;
    }
    int i = find_value(g, a, d);
    if (i < 0)
        return false;
    return has_suffix(a->output, ".npy") ? rt_npy_write(a->output, outs[i], d) : write_csv(a->output, outs[i], d);
}

/* The argmax over the last axis of the first [N, C] output value. */
static bool print_classes(Graph *g, Tensor **outs, const PredictArgs *a, Diags *d)
{
    for (int i = 0; i < g->nouts; i++) {
        Tensor *t = outs[i];
        if (!t || t->rank != 2 || (a->value && strcmp(a->value, g->outs[i].name) != 0))
            continue;
        for (int64_t r = 0; r < t->dims[0]; r++) {
            int64_t best = 0;
            for (int64_t c = 1; c < t->dims[1]; c++)
                if (rt_get(t, r * t->dims[1] + c) > rt_get(t, r * t->dims[1] + best))
                    best = c;
            printf("%lld\n", (long long)best);
        }
        return true;
    }
    diag_error(d, file_loc(d, a->inputs), "--classes needs an output value of shape [N, classes]");
    return false;
}

int cmd_predict(int argc, char **argv)
{
    PredictArgs a = {.backend = "jit"};
    const char *file;
    int rc = parse(&a, argc, argv, &file);
    if (rc)
        return rc < 0 ? 0 : rc;
    Diags d;
    diags_init(&d);
    Timer timer = {0};
    TensorMap params, inputs;
    rt_map_init(&params);
    rt_map_init(&inputs);
    Graph *g = cli_load(file, &d);
    int shown = d.n;
    if (g)
        g = prepare(g, &a, a.time_passes ? &timer : NULL, &d);
    bool ok = g != NULL;
    ok = ok && rt_safetensors_read(a.weights, &params, NULL, &d) &&
         rt_check_params(g, &params, a.weights, true, &d);
    ok = ok && load_inputs(g, a.inputs, &inputs, &d);
    Tensor **outs = g ? xcalloc((size_t)g->nouts + 1, sizeof(Tensor *)) : NULL;
    ok = ok && run(g, &a, &params, &inputs, outs, &timer, &d);
    if (ok && a.classes)
        ok = print_classes(g, outs, &a, &d);
    if (ok && a.output)
        ok = write_outputs(g, &a, outs, &d);
    diags_print_from(&d, stderr, shown);
    if (a.time_passes)
        timer_print(&timer, stderr);
    for (int i = 0; g && i < g->nouts; i++)
        rt_tensor_free(outs[i]);
    free(outs);
    rt_map_free(&params);
    rt_map_free(&inputs);
    ir_graph_free(g);
    diags_free(&d);
    return ok ? 0 : 1;
}
