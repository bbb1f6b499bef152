/* Printing what the compiler makes of a model (include/modelc_inspect.h):
 * a function's IR after any pass, as text, DOT or counts (`modelc ir`),
 * one pass on IR text (`modelc opt`), and the LLVM IR or memory plan of
 * a compiled function (`modelc llvm`). Every graph comes from a recipe. */
#include "modelc_inspect.h"

#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "backend/insight/insight.h"
#include "backend/llvm/jit.h"

const char *const *mc_fn_names(void)
{
    return ps_fn_names;
}

const char *const *mc_pass_names(void)
{
    return ps_pass_names;
}

Graph *mc_load_source(const char *path, RunSettings *run, Diags *d, FILE *err)
{
    RunSettings scratch;
    Graph *g = fe_load_model(path, run ? run : &scratch, d);
    diags_print(d, err);
    if (!g || d->nerrors) {
        ir_graph_free(g);
        return NULL;
    }
    return g;
}

Mode mc_mode_of(mc_mode m, Mode def)
{
    return m == MC_MODE_TRAIN ? MODE_TRAIN : m == MC_MODE_INFER ? MODE_INFER : def;
}

/* A function name of the options: known, or an error. */
static bool fn_known(const char *name, Diags *d)
{
    if (ps_fn_index(name) >= 0)
        return true;
    diag_error(d, (SrcLoc){0}, "unknown function '%s'", name);
    return false;
}

/* ---- modelc ir ---- */

void mc_ir_options_default(mc_ir_options *o)
{
    memset(o, 0, sizeof *o);
}

/* Every --wrt name must be an input of the model. */
static bool check_wrt(Graph *g, const mc_ir_options *o, const char *path, Diags *d)
{
    bool ok = true;
    for (int i = 0; i < o->nwrt; i++)
        if (!ir_find_input(g, o->wrt[i])) {
            SrcLoc loc = {diags_intern_file(d, path), 0, 0};
            diag_error(d, loc, "--wrt: the model has no input named '%s'", o->wrt[i]);
            ok = false;
        }
    return ok;
}

/* Kernels are the nodes that compute: not leaves, not reshapes (which
 * alias their operand's memory). */
static void print_stats(Graph *g, FILE *f)
{
    int kernels = 0, fused = 0, inside = 0;
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (ir_ops[n->op].cls == OPC_LEAF || n->op == OP_RESHAPE || n->op == OP_RESULT)
            continue;
        kernels++;
        if (n->op != OP_FUSED)
            continue;
        fused++;
        for (int j = 0; j < n->sub->nnodes; j++)
            inside += ir_ops[n->sub->nodes[j]->op].cls != OPC_LEAF;
    }
    fprintf(f, "nodes: %d\nkernels: %d\nfused: %d (%d ops)\n", g->nnodes, kernels, fused, inside);
}

static void print_graph(Graph *g, const RunSettings *run, bool dot, bool no_loc, FILE *out)
{
    if (dot)
        ir_print_dot(g, out);
    else
        ir_print_model(g, run, out, no_loc ? IR_PRINT_NO_LOC : 0);
}

static int mode_diff(const char *path, const mc_ir_options *o, FILE *out, FILE *err)
{
    Diags d;
    diags_init(&d);
    RunSettings run;
    Graph *g = mc_load_source(path, &run, &d, err);
    int shown = d.n;
    bool ok = g && ir_verify(g, &d) && ins_mode_diff(g, &run, out, o->no_loc ? IR_PRINT_NO_LOC : 0, &d);
    diags_print_from(&d, err, shown);
    ir_graph_free(g);
    diags_free(&d);
    return ok ? 0 : 1;
}

/* The function the options name: fn, or the default with `after`. */
static const char *ir_fn(const mc_ir_options *o)
{
    if (o->fn)
        return o->fn;
    return o->nwrt ? "grad" : o->mode == MC_MODE_INFER ? "eval" : "train_step";
}

static int print_ir_cmd(const char *path, const mc_ir_options *o, FILE *out, FILE *err)
{
    if (o->mode_diff)
        return mode_diff(path, o, out, err);
    bool lowered = !o->fn && (!o->after || strcmp(o->after, "lower") == 0);
    Diags d;
    diags_init(&d);
    RunSettings run;
    Graph *g = mc_load_source(path, &run, &d, err);
    int shown = d.n;
    bool ok = g && check_wrt(g, o, path, &d);
    if (ok && lowered) {
        ok = ir_verify(g, &d);
    } else if (ok && fn_known(ir_fn(o), &d)) {
        Timer timer = {0};
        RecipeOpts ro = ps_recipe_opts((FnKind)ps_fn_index(ir_fn(o)));
        ro.mode = mc_mode_of(o->mode, ro.mode);
        ro.fuse = ro.fuse && o->backend == MC_BACKEND_JIT;
        ro.wrt = o->wrt;
        ro.nwrt = o->nwrt;
        ro.stop_after = o->after;
        ro.timer = o->time_passes ? &timer : NULL;
        Graph *r = ps_recipe(g, &ro, &d);
        ir_graph_free(g);
        g = r;
        ok = g != NULL;
        if (o->time_passes)
            timer_print(&timer, err);
    } else {
        ok = false;
    }
    diags_print_from(&d, err, shown);
    ok = ok && d.nerrors == 0;
    if (ok && o->stats)
        print_stats(g, out);
    else if (ok)
        print_graph(g, &run, o->dot, o->no_loc, out);
    ir_graph_free(g);
    diags_free(&d);
    return ok ? 0 : 1;
}

/* ---- modelc opt ---- */

void mc_opt_options_default(mc_opt_options *o)
{
    memset(o, 0, sizeof *o);
}

static int run_pass_cmd(const char *path, const mc_opt_options *o, FILE *out, FILE *err)
{
    Diags d;
    diags_init(&d);
    RunSettings run;
    Graph *g = mc_load_source(path, &run, &d, err);
    int shown = d.n;
    bool ok = g != NULL;
    if (ok && !ir_verify(g, &d))
        ok = false;
    if (ok) {
        Timer timer = {0};
        RecipeOpts ro = ps_recipe_opts(FN_TRAIN_STEP);
        ro.mode = mc_mode_of(o->mode, MODE_TRAIN);
        ro.wrt = o->wrt;
        ro.nwrt = o->nwrt;
        ro.timer = o->time_passes ? &timer : NULL;
        ok = ps_run_one(g, o->pass ? o->pass : "", &ro, &d) && d.nerrors == 0;
        if (o->time_passes)
            timer_print(&timer, err);
        int before = d.nerrors;
        if (ok && !ir_verify(g, &d)) {
            SrcLoc none = {NULL, 0, 0};
            diag_note(&d, none, "the graph is invalid after pass '%s' (%d problem%s)", o->pass,
                      d.nerrors - before, d.nerrors - before == 1 ? "" : "s");
            ok = false;
        }
    }
    diags_print_from(&d, err, shown);
    ok = ok && d.nerrors == 0;
    if (ok)
        print_graph(g, &run, o->dot, o->no_loc, out);
    ir_graph_free(g);
    diags_free(&d);
    return ok ? 0 : 1;
}

/* ---- modelc llvm ---- */

void mc_llvm_options_default(mc_llvm_options *o)
{
    memset(o, 0, sizeof *o);
    o->opt_level = 2;
    o->batch = 128;
}

/* Without a function, infer mode compiles the output values; a model
 * without any gets evaluation's loss and metrics. */
static bool has_values(const Graph *g)
{
    for (int i = 0; i < g->nouts; i++)
        if (g->outs[i].kind == OUT_VALUE)
            return true;
    return false;
}

static int llvm_fn(const mc_llvm_options *o, const Graph *g)
{
    if (o->fn)
        return ps_fn_index(o->fn);
    if (o->mode == MC_MODE_TRAIN)
        return FN_TRAIN_STEP;
    return has_values(g) ? FN_PREDICT : FN_EVAL;
}

/* Compile g (timing everything with time_passes) and print the IR or the
 * memory plan. */
static bool emit_llvm(Graph *g, const mc_llvm_options *o, Timer *timer, char **ir, JitStats *st,
                      FILE *out, Diags *d)
{
    JitOpts jo;
    be_jit_opts_default(&jo);
    jo.opt_level = o->opt_level;
    jo.fast_isel = o->fast_isel;
    bool ok = true;
    if (o->memory_plan) {
        JitModule *m = be_jit_compile(g, &jo, d);
        ok = m && be_jit_print_memory_plan(m, o->batch, out, d);
        be_jit_free(m);
    } else {
        *ir = be_jit_llvm_ir(g, &jo, o->optimized, d);
        ok = *ir != NULL;
    }
    if (ok && o->time_passes) { /* time the whole compilation, JIT included */
        jo.time_passes = true;
        jo.timer = timer;
        JitModule *m = be_jit_compile(g, &jo, d);
        ok = m != NULL;
        if (ok)
            *st = *be_jit_stats(m);
        be_jit_free(m);
    }
    return ok;
}

static int print_llvm_cmd(const char *path, const mc_llvm_options *o, FILE *out, FILE *err)
{
    Diags d;
    diags_init(&d);
    Timer timer = {0};
    RunSettings run;
    Graph *g = mc_load_source(path, &run, &d, err);
    int shown = d.n;
    bool ok = g != NULL && (!o->fn || fn_known(o->fn, &d));
    char *ir = NULL;
    if (ok) {
        RecipeOpts ro = ps_recipe_opts((FnKind)llvm_fn(o, g));
        ro.stop_after = o->after;
        ro.timer = o->time_passes ? &timer : NULL;
        Graph *r = ps_recipe(g, &ro, &d);
        ir_graph_free(g);
        g = r;
        ok = g != NULL;
    }
    JitStats st = {0};
    ok = ok && emit_llvm(g, o, &timer, &ir, &st, out, &d);
    diags_print_from(&d, err, shown);
    if (ok && ir)
        fputs(ir, out);
    if (o->time_passes)
        timer_print(&timer, err);
    if (ok && o->time_passes)
        fprintf(err, "llvm: %d kernels in %d parts on %d threads\n", st.kernels, st.parts, st.threads);
    xfree(ir);
    ir_graph_free(g);
    diags_free(&d);
    return ok ? 0 : 1;
}

int mc_print_ir(const char *path, const mc_ir_options *o, FILE *out, FILE *err)
{
    MC_COMMAND(path, err, "printing the IR", print_ir_cmd(path, o, out, err));
}

int mc_run_pass(const char *path, const mc_opt_options *o, FILE *out, FILE *err)
{
    MC_COMMAND(path, err, "running a pass", run_pass_cmd(path, o, out, err));
}

int mc_print_llvm(const char *path, const mc_llvm_options *o, FILE *out, FILE *err)
{
    MC_COMMAND(path, err, "printing LLVM IR", print_llvm_cmd(path, o, out, err));
}
