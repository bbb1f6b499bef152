/* `modelc ir FILE`: load a model (.mdl or .ir), run the pipeline up to a
 * pass and print the graph as IR text or Graphviz DOT, or (--stats) how
 * many kernels it has. */
#include <stdlib.h>
#include <string.h>

#include "backend/insight/insight.h"
#include "cli.h"
#include "passes/passes.h"

static int unknown_pass(const char *name)
{
    StrBuf b;
    sb_init(&b);
    for (int i = 0; ps_pass_names[i]; i++)
        sb_printf(&b, "%s%s", i ? ", " : "", ps_pass_names[i]);
    int rc = cli_usage_error("ir", "unknown pass '%s' for --after (valid passes: %s)", name, b.s ? b.s : "");
    sb_free(&b);
    return rc;
}

static int unknown_fn(const char *name)
{
    StrBuf b;
    sb_init(&b);
    for (int i = 0; ps_fn_names[i]; i++)
        sb_printf(&b, "%s%s", i ? ", " : "", ps_fn_names[i]);
    int rc = cli_usage_error("ir", "unknown function '%s' for --fn (valid functions: %s)", name, b.s ? b.s : "");
    sb_free(&b);
    return rc;
}

static int parse_mode(const char *cmd, const char *s, Mode *m)
{
    if (strcmp(s, "train") == 0)
        *m = MODE_TRAIN;
    else if (strcmp(s, "infer") == 0)
        *m = MODE_INFER;
    else
        return cli_usage_error(cmd, "--mode must be train or infer, got '%s'", s);
    return 0;
}

/* Every --wrt name must be an input of the model. */
static bool check_wrt(Graph *g, const CliList *wrt, const char *path, Diags *d)
{
    bool ok = true;
    for (int i = 0; i < wrt->n; i++)
        if (!ir_find_input(g, wrt->v[i])) {
            SrcLoc loc = {diags_intern_file(d, path), 0, 0};
            diag_error(d, loc, "--wrt: the model has no input named '%s'", wrt->v[i]);
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

int cmd_ir(int argc, char **argv)
{
    const char *after = NULL, *mode_s = NULL, *format = "text", *fn_s = NULL, *backend = "jit";
    bool no_loc = false, time_passes = false, stats = false, mode_diff = false;
    CliList wrt = {0};
    const CliOpt opts[] = {
        {"fn", CLI_STR, &fn_s, "NAME",
         "the compiled function: train_step, eval, predict, grad, loss or numerics (default: train_step, or "
         "eval with --mode=infer, grad with --wrt); printed as the backend compiles it"},
        {"after", CLI_STR, &after, "PASS",
         "stop the function's recipe after PASS (without --fn and --after: lower, the frontend's graph)"},
        {"mode", CLI_STR, &mode_s, "MODE", "train or infer: the mode specialize compiles for (default: the function's)"},
        {"backend", CLI_STR, &backend, "B", "jit (fused, the default) or interp (the interpreter's unfused graph)"},
        {"format", CLI_STR, &format, "FMT", "text (IR that parses back) or dot (Graphviz)"},
        {"no-loc", CLI_FLAG, &no_loc, NULL, "leave out the loc(...) source locations"},
        {"wrt", CLI_MULTI, &wrt, "NAME", "also differentiate with respect to input NAME"},
        {"time-passes", CLI_FLAG, &time_passes, NULL, "report the time each pass takes on stderr"},
        {"stats", CLI_FLAG, &stats, NULL, "print node and kernel counts instead of the graph"},
        {"mode-diff", CLI_FLAG, &mode_diff, NULL,
         "print the training and inference graphs as one diff over the model's graph"},
    };
    const CliCmd cmd = {"ir", "FILE [options]",
                        "Print the IR of a compiled function of a model (.mdl or .ir), or of its recipe stopped after a pass.",
                        opts, ARRAY_LEN(opts), 1, 1};
    char **pos;
    int npos;
    int rc = cli_parse(&cmd, argc, argv, &pos, &npos);
    if (rc)
        return rc < 0 ? 0 : rc;
    const char *path = pos[0];
    free(pos);
    Mode mode = MODE_TRAIN;
    if (mode_s && (rc = parse_mode("ir", mode_s, &mode)))
        return rc;
    if (strcmp(format, "text") != 0 && strcmp(format, "dot") != 0)
        return cli_usage_error("ir", "--format must be text or dot, got '%s'", format);
    if (strcmp(backend, "jit") != 0 && strcmp(backend, "interp") != 0)
        return cli_usage_error("ir", "--backend must be jit or interp, got '%s'", backend);
    if (after && ps_pass_index(after) < 0)
        return unknown_pass(after);
    int fn = fn_s ? ps_fn_index(fn_s) : wrt.n ? FN_GRAD : mode == MODE_INFER && mode_s ? FN_EVAL : FN_TRAIN_STEP;
    if (fn < 0)
        return unknown_fn(fn_s);
    if (wrt.n && fn != FN_GRAD)
        return cli_usage_error("ir", "--wrt adds gradients: it needs --fn grad, not %s", ps_fn_names[fn]);
    bool lowered = !fn_s && (!after || strcmp(after, "lower") == 0);
    if (mode_diff && (after || fn_s || strcmp(format, "text") != 0))
        return cli_usage_error("ir", "--mode-diff prints the model's graph: it takes no --fn, --after or --format");

    Diags d;
    diags_init(&d);
    Graph *g = cli_load(path, &d);
    int shown = d.n;
    if (g && mode_diff) {
        bool diffed = ir_verify(g, &d) && ins_mode_diff(g, stdout, no_loc ? IR_PRINT_NO_LOC : 0, &d);
        diags_print_from(&d, stderr, shown);
        ir_graph_free(g);
        diags_free(&d);
        return diffed ? 0 : 1;
    }
    bool ok = g && check_wrt(g, &wrt, path, &d);
    if (ok && lowered) {
        ok = ir_verify(g, &d);
    } else if (ok) {
        Timer timer = {0};
        RecipeOpts o = ps_recipe_opts((FnKind)fn);
        if (mode_s)
            o.mode = mode;
        o.fuse = o.fuse && strcmp(backend, "jit") == 0;
        o.wrt = wrt.v;
        o.nwrt = wrt.n;
        o.stop_after = after;
        o.timer = time_passes ? &timer : NULL;
        Graph *r = ps_recipe(g, &o, &d);
        ir_graph_free(g);
        g = r;
        ok = g != NULL;
        if (time_passes)
            timer_print(&timer, stderr);
    }
    diags_print_from(&d, stderr, shown);
    ok = ok && d.nerrors == 0;
    if (ok) {
        if (stats)
            print_stats(g, stdout);
        else if (strcmp(format, "dot") == 0)
            ir_print_dot(g, stdout);
        else
            ir_print_opts(g, stdout, no_loc ? IR_PRINT_NO_LOC : 0);
    }
    ir_graph_free(g);
    diags_free(&d);
    return ok ? 0 : 1;
}
