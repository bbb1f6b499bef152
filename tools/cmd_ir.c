/* `modelc ir FILE`: load a model (.mdl or .ir), run the pipeline up to a
 * pass and print the graph as IR text or Graphviz DOT, or (--stats) how
 * many kernels it has. */
#include <stdlib.h>
#include <string.h>

#include "backend/insight/insight.h"
#include "cli.h"
#include "passes/passes.h"

/* "lower" names the frontend's own output, before any pass. */
static bool known_pass(const char *name)
{
    if (strcmp(name, "lower") == 0)
        return true;
    for (int i = 0; ps_pass_names[i]; i++)
        if (strcmp(ps_pass_names[i], name) == 0)
            return true;
    return false;
}

static int unknown_pass(const char *cmd, const char *opt, const char *name)
{
    StrBuf b;
    sb_init(&b);
    sb_puts(&b, strcmp(cmd, "ir") == 0 ? "lower" : "");
    for (int i = 0; ps_pass_names[i]; i++)
        if (strcmp(ps_pass_names[i], "lower") != 0)
            sb_printf(&b, "%s%s", b.len ? ", " : "", ps_pass_names[i]);
    int rc = cli_usage_error(cmd, "unknown pass '%s' for --%s (valid passes: %s)", name, opt, b.s ? b.s : "");
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
    const char *after = "lower", *mode_s = "train", *format = "text";
    bool no_loc = false, time_passes = false, stats = false, mode_diff = false;
    CliList wrt = {0};
    const CliOpt opts[] = {
        {"after", CLI_STR, &after, "PASS", "print the graph after PASS (default: lower, the frontend's graph)"},
        {"mode", CLI_STR, &mode_s, "MODE", "train or infer (default: train)"},
        {"format", CLI_STR, &format, "FMT", "text (IR that parses back) or dot (Graphviz)"},
        {"no-loc", CLI_FLAG, &no_loc, NULL, "leave out the loc(...) source locations"},
        {"wrt", CLI_MULTI, &wrt, "NAME", "also differentiate with respect to input NAME"},
        {"time-passes", CLI_FLAG, &time_passes, NULL, "report the time each pass takes on stderr"},
        {"stats", CLI_FLAG, &stats, NULL, "print node and kernel counts instead of the graph"},
        {"mode-diff", CLI_FLAG, &mode_diff, NULL,
         "print the training and inference graphs as one diff over the model's graph"},
    };
    const CliCmd cmd = {"ir", "FILE [options]",
                        "Print the IR of a model (.mdl or .ir) after a pipeline pass.",
                        opts, ARRAY_LEN(opts), 1, 1};
    char **pos;
    int npos;
    int rc = cli_parse(&cmd, argc, argv, &pos, &npos);
    if (rc)
        return rc < 0 ? 0 : rc;
    const char *path = pos[0];
    free(pos);
    Mode mode = MODE_TRAIN;
    if ((rc = parse_mode("ir", mode_s, &mode)))
        return rc;
    if (strcmp(format, "text") != 0 && strcmp(format, "dot") != 0)
        return cli_usage_error("ir", "--format must be text or dot, got '%s'", format);
    if (!known_pass(after))
        return unknown_pass("ir", "after", after);

    if (mode_diff && (strcmp(after, "lower") != 0 || strcmp(format, "text") != 0))
        return cli_usage_error("ir", "--mode-diff prints the model's graph: it takes no --after or --format");

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
    if (ok && strcmp(after, "lower") == 0) {
        ok = ir_verify(g, &d);
    } else if (ok) {
        Timer timer = {0};
        PipelineOpts o = {.mode = mode,
                          .grads = mode == MODE_TRAIN,
                          .update = mode == MODE_TRAIN,
                          .simplify = true,
                          .fuse = true,
                          .wrt = wrt.v,
                          .nwrt = wrt.n,
                          .stop_after = after,
                          .timer = time_passes ? &timer : NULL};
        ok = ps_run_pipeline(g, &o, &d);
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
