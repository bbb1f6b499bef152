/* A model's parameters and diagnostics without compiling it
 * (include/modelc_inspect.h): the check summary with the static warnings
 * (`modelc check`), the parameter table (`modelc params`) and the initial
 * parameters written to a file (`modelc init`). */
#include "modelc_inspect.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "backend/insight/warn.h"
#include "runtime/io/io.h"

/* ---- modelc check ---- */

void mc_check_options_default(mc_check_options *o)
{
    memset(o, 0, sizeof *o);
    o->max_errors = 20;
}

static void check_summary(const char *path, Graph *g, FILE *out)
{
    int nparams = 0;
    int64_t weights = 0;
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (n->op != OP_PARAM)
            continue;
        nparams++;
        int64_t k = ir_shape_numel(&n->shape, 1);
        if (k > 0)
            weights += k;
    }
    fprintf(out, "%s: ok (%d parameter%s, %lld weight%s)\n", path, nparams, nparams == 1 ? "" : "s",
            (long long)weights, weights == 1 ? "" : "s");
    fflush(out); /* keep the order with diagnostics on err */
}

static int check_file_cmd(const char *path, const mc_check_options *o, FILE *out, FILE *err)
{
    Diags d;
    diags_init(&d);
    d.max_errors = o->max_errors;
    RunSettings run;
    Graph *g = mc_load_source(path, &run, &d, err);
    if (g) {
        ps_warn_report(g, run.batch, &d, err);
        if (!o->quiet)
            check_summary(path, g, out);
        ir_graph_free(g);
    }
    diags_free(&d);
    return g ? 0 : 1;
}

/* ---- modelc params ---- */

void mc_params_options_default(mc_params_options *o)
{
    memset(o, 0, sizeof *o);
}

typedef struct Row {
    const char *cols[6];
} Row;

static const char *status_of(const Graph *g, const Node *p, const mc_params_options *o)
{
    if (p->a.role == ROLE_STATE)
        return "state";
    if (p->a.role == ROLE_SLOT)
        return "slot";
    if (!p->a.trainable)
        return "frozen";
    for (int i = 0; i < g->train.nfreeze; i++)
        if (ir_glob_match(g->train.freeze[i], p->a.name))
            return "frozen";
    for (int i = 0; i < o->nfreeze; i++)
        if (ir_glob_match(o->freeze[i], p->a.name))
            return "frozen";
    return "trainable";
}

static char *init_str(Arena *a, const Init *in)
{
    char x[40], y[40];
    fmt_double(x, sizeof x, in->a);
    fmt_double(y, sizeof y, in->b);
    switch (in->kind) {
    case INIT_CONSTANT:
        return arena_printf(a, "constant(%s)", x);
    case INIT_NORMAL:
    case INIT_TRUNC_NORMAL:
    case INIT_UNIFORM:
        return arena_printf(a, "%s(%s, %s)", ir_init_name(in->kind), x, y);
    default:
        return arena_strdup(a, ir_init_name(in->kind));
    }
}

/* The first nc columns, left-aligned but the last; a rule under row 0. */
static void print_rows(const Row *rows, int n, int nc, FILE *out)
{
    int w[6] = {0};
    for (int i = 0; i < n; i++)
        for (int k = 0; k < nc; k++) {
            int l = (int)strlen(rows[i].cols[k]);
            if (l > w[k])
                w[k] = l;
        }
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < nc; k++) {
            const char *s = rows[i].cols[k];
            if (k == nc - 1)
                fprintf(out, "%*s", w[k], s);
            else
                fprintf(out, "%-*s  ", w[k], s);
        }
        fputc('\n', out);
        if (i == 0) {
            int total = 0;
            for (int k = 0; k < nc; k++)
                total += w[k] + (k < nc - 1 ? 2 : 0);
            for (int k = 0; k < total; k++)
                fputc('-', out);
            fputc('\n', out);
        }
    }
}

static const char *human_bytes(Arena *a, int64_t b)
{
    if (b < 1024 * 1024)
        return arena_printf(a, "%.2f KiB", (double)b / 1024);
    return arena_printf(a, "%.2f MiB", (double)b / (1024.0 * 1024.0));
}

static void print_table(Graph *g, const mc_params_options *o, FILE *out)
{
    Arena *a = arena_new();
    Row *rows = xcalloc((size_t)g->nnodes + 1, sizeof(Row));
    int n = 0;
    rows[n++] = (Row){{"name", "shape", "dtype", "initializer", "status", "count"}};
    int64_t trainable = 0, fixed = 0, bytes = 0;
    for (int i = 0; i < g->nnodes; i++) {
        Node *p = g->nodes[i];
        if (p->op != OP_PARAM)
            continue;
        char sh[128];
        int64_t k = ir_shape_numel(&p->shape, 1);
        const char *st = status_of(g, p, o);
        rows[n++] = (Row){{p->a.name, arena_strdup(a, ir_shape_str(&p->shape, sh, sizeof sh)),
                           ir_dtype_name(p->dt), init_str(a, &p->a.init), st,
                           arena_printf(a, "%lld", (long long)k)}};
        if (strcmp(st, "trainable") == 0)
            trainable += k;
        else
            fixed += k;
        bytes += k * ir_dtype_size(p->dt);
    }
    fprintf(out, "Model: %s\n\n", g->name);
    if (n > 1)
        print_rows(rows, n, 6, out);
    else
        fputs("(no parameters)\n", out);
    fprintf(out, "\nTrainable params:     %lld\n", (long long)trainable);
    fprintf(out, "Non-trainable params: %lld\n", (long long)fixed);
    if (bytes < 1024)
        fprintf(out, "Total params:         %lld (%lld bytes)\n", (long long)(trainable + fixed),
                (long long)bytes);
    else
        fprintf(out, "Total params:         %lld (%lld bytes, %s)\n", (long long)(trainable + fixed),
                (long long)bytes, human_bytes(a, bytes));
    xfree(rows);
    arena_free(a);
}

/* ---- layers and their output shapes (Keras's summary()) ---- */

static bool same_loc(SrcLoc a, SrcLoc b)
{
    return a.line == b.line && a.col == b.col && (a.file == b.file || (a.file && b.file && !strcmp(a.file, b.file)));
}

/* The value a layer produces: the last node lowered from its call (the
 * location of its parameters) that something else reads, another
 * layer's node or an output other than a state update. */
static const Node *layer_output(const Graph *g, const Node *param, const bool *read_outside)
{
    const Node *best = NULL;
    for (int i = param->id + 1; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        if (n->op != OP_PARAM && same_loc(n->loc, param->loc) && read_outside[i])
            best = n;
    }
    return best;
}

/* Does a node lowered from another call, or an output (not an update),
 * read node i? */
static bool *outside_reads(const Graph *g)
{
    bool *r = xcalloc((size_t)g->nnodes + 1, sizeof(bool));
    for (int i = 0; i < g->nnodes; i++)
        for (int j = 0; j < g->nodes[i]->nin; j++) {
            const Node *x = g->nodes[i]->in[j];
            if (!same_loc(x->loc, g->nodes[i]->loc))
                r[x->id] = true;
        }
    for (int i = 0; i < g->nouts; i++)
        if (g->outs[i].kind != OUT_UPDATE)
            r[g->outs[i].val->id] = true;
    return r;
}

/* One row per layer (parameters named <layer>.<what>), in the order of
 * their first parameter: its output type and parameter count. */
static void print_layers(Graph *g, FILE *out)
{
    Arena *a = arena_new();
    Row *rows = xcalloc((size_t)g->nnodes + 1, sizeof(Row));
    int n = 0;
    rows[n++] = (Row){{"layer", "output", "params", "", "", ""}};
    for (int i = 0; i < g->nnodes; i++)
        g->nodes[i]->id = i;
    bool *outside = outside_reads(g);
    for (int i = 0; i < g->nnodes; i++) {
        const Node *p = g->nodes[i];
        const char *dot = p->op == OP_PARAM ? strrchr(p->a.name, '.') : NULL;
        if (!dot)
            continue;
        char *layer = arena_strndup(a, p->a.name, (size_t)(dot - p->a.name));
        int seen = -1;
        for (int k = 1; k < n && seen < 0; k++)
            if (!strcmp(rows[k].cols[0], layer))
                seen = k;
        int64_t cnt = ir_shape_numel(&p->shape, 1);
        if (seen >= 0) {
            rows[seen].cols[2] = arena_printf(a, "%lld", atoll(rows[seen].cols[2]) + (long long)cnt);
            continue;
        }
        const Node *y = layer_output(g, p, outside);
        char ty[128];
        rows[n++] = (Row){{layer, y ? arena_strdup(a, ir_type_str(y->dt, &y->shape, ty, sizeof ty)) : "?",
                           arena_printf(a, "%lld", (long long)cnt), "", "", ""}};
    }
    if (n > 1) {
        fputc('\n', out);
        print_rows(rows, n, 3, out);
    }
    xfree(outside);
    xfree(rows);
    arena_free(a);
}

static int print_params_cmd(const char *path, const mc_params_options *o, FILE *out, FILE *err)
{
    Diags d;
    diags_init(&d);
    RunSettings run;
    Graph *g = mc_load_source(path, &run, &d, err);
    if (g) {
        print_table(g, o, out);
        print_layers(g, out);
    }
    ir_graph_free(g);
    diags_free(&d);
    return g ? 0 : 1;
}

/* ---- modelc init ---- */

void mc_init_options_default(mc_init_options *o)
{
    memset(o, 0, sizeof *o);
}

/* Parameters without an initializer are left out (with a warning); ones
 * too large to allocate are errors at their source location. */
static bool check_sizes(const Graph *g, Diags *d)
{
    bool ok = true;
    for (int i = 0; i < g->nnodes; i++) {
        const Node *p = g->nodes[i];
        if (p->op != OP_PARAM)
            continue;
        char ty[128];
        ir_type_str(p->dt, &p->shape, ty, sizeof ty);
        int64_t numel = ir_shape_numel(&p->shape, 0), bytes;
        if (ir_shape_has_n(&p->shape) || numel < 0 ||
            mul_overflow_i64(numel, ir_dtype_size(p->dt), &bytes) || bytes > RT_TENSOR_MAX_BYTES) {
            diag_error(d, p->loc, "parameter '%s' (%s) is too large to initialise", p->a.name, ty);
            ok = false;
        } else if (p->a.init.kind == INIT_NONE) {
            diag_warning(d, p->loc,
                         "parameter '%s' has no initializer; it is left out and must come from a "
                         "checkpoint",
                         p->a.name);
        }
    }
    return ok;
}

static bool write_params(const Graph *g, const char *output, uint64_t seed, FILE *out, Diags *d)
{
    TensorMap m;
    rt_map_init(&m);
    if (!rt_init_params(g, &m, seed, true, d)) {
        rt_map_free(&m);
        return false;
    }
    Metadata meta;
    rt_meta_init(&meta);
    char seedstr[32];
    snprintf(seedstr, sizeof seedstr, "%" PRIu64, seed);
    rt_meta_set(&meta, RT_META_FORMAT, RT_META_FORMAT_NAME);
    rt_meta_set(&meta, RT_META_FORMAT_VERSION, RT_FORMAT_VERSION);
    rt_meta_set(&meta, RT_META_MODEL, g->name);
    rt_meta_set(&meta, RT_META_SEED, seedstr);
    bool ok = rt_safetensors_write(output, &m, &meta, d);
    if (ok) {
        int64_t values = 0;
        for (int i = 0; i < m.n; i++)
            values += m.t[i]->numel;
        fprintf(out, "wrote %d parameters (%" PRId64 " values) of model '%s' to %s (seed %s)\n", m.n,
                values, g->name, output, seedstr);
    }
    rt_meta_free(&meta);
    rt_map_free(&m);
    return ok;
}

static int write_init_cmd(const char *path, const mc_init_options *o, FILE *out, FILE *err)
{
    Diags d;
    diags_init(&d);
    RunSettings run;
    Graph *g = mc_load_source(path, &run, &d, err);
    int shown = d.n;
    bool ok = g != NULL;
    if (ok && !o->output) {
        diag_error(&d, (SrcLoc){0}, "no output file for the parameters");
        ok = false;
    }
    if (ok) {
        uint64_t seed = o->seed_set ? o->seed : run.seed;
        ok = check_sizes(g, &d) && write_params(g, o->output, seed, out, &d);
    }
    diags_print_from(&d, err, shown);
    ir_graph_free(g);
    diags_free(&d);
    return ok ? 0 : 1;
}

int mc_check_file(const char *path, const mc_check_options *o, FILE *out, FILE *err)
{
    MC_COMMAND(path, err, "checking the model", check_file_cmd(path, o, out, err));
}

int mc_print_params(const char *path, const mc_params_options *o, FILE *out, FILE *err)
{
    MC_COMMAND(path, err, "listing the parameters", print_params_cmd(path, o, out, err));
}

int mc_write_init(const char *path, const mc_init_options *o, FILE *out, FILE *err)
{
    MC_COMMAND(path, err, "initialising the parameters", write_init_cmd(path, o, out, err));
}
