/* `modelc opt --pass=NAME FILE.ir`: read IR text, run exactly one pass and
 * print the result as IR text (LLVM's opt), so each pass is testable on
 * its own. The graph is verified before and after the pass. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "passes/passes.h"

static bool known_pass(const char *name)
{
    for (int i = 0; ps_pass_names[i]; i++)
        if (strcmp(ps_pass_names[i], name) == 0)
            return true;
    return false;
}

static int unknown_pass(const char *name)
{
    StrBuf b;
    sb_init(&b);
    for (int i = 0; ps_pass_names[i]; i++)
        sb_printf(&b, "%s%s", i ? ", " : "", ps_pass_names[i]);
    int rc = cli_usage_error("opt", "unknown pass '%s' for --pass (valid passes: %s)", name, b.s ? b.s : "");
    sb_free(&b);
    return rc;
}

int cmd_opt(int argc, char **argv)
{
    const char *pass = NULL, *mode_s = "train", *format = "text";
    bool no_loc = false, time_passes = false;
    CliList wrt = {0};
    const CliOpt opts[] = {
        {"pass", CLI_STR, &pass, "NAME", "the pass to run (required)"},
        {"mode", CLI_STR, &mode_s, "MODE", "train or infer (default: train)"},
        {"format", CLI_STR, &format, "FMT", "text (IR that parses back) or dot (Graphviz)"},
        {"no-loc", CLI_FLAG, &no_loc, NULL, "leave out the loc(...) source locations"},
        {"wrt", CLI_MULTI, &wrt, "NAME", "autodiff: also differentiate with respect to input NAME"},
        {"time-passes", CLI_FLAG, &time_passes, NULL, "report the time the pass takes on stderr"},
    };
    const CliCmd cmd = {"opt", "--pass=NAME FILE.ir [options]",
                        "Run one pass on IR text and print the resulting IR.", opts, ARRAY_LEN(opts), 1, 1};
    char **pos;
    int npos;
    int rc = cli_parse(&cmd, argc, argv, &pos, &npos);
    if (rc)
        return rc < 0 ? 0 : rc;
    const char *path = pos[0];
    free(pos);
    Mode mode = MODE_TRAIN;
    if (strcmp(mode_s, "infer") == 0)
        mode = MODE_INFER;
    else if (strcmp(mode_s, "train") != 0)
        return cli_usage_error("opt", "--mode must be train or infer, got '%s'", mode_s);
    if (strcmp(format, "text") != 0 && strcmp(format, "dot") != 0)
        return cli_usage_error("opt", "--format must be text or dot, got '%s'", format);
    if (!pass)
        return cli_usage_error("opt", "missing --pass=NAME");
    if (!known_pass(pass))
        return unknown_pass(pass);

    Diags d;
    diags_init(&d);
    Graph *g = cli_load(path, &d);
    int shown = d.n;
    bool ok = g != NULL;
    if (ok && !ir_verify(g, &d))
        ok = false;
    if (ok) {
        Timer timer = {0};
        RecipeOpts o = ps_recipe_opts(FN_TRAIN_STEP);
        o.mode = mode;
        o.wrt = wrt.v;
        o.nwrt = wrt.n;
        o.timer = time_passes ? &timer : NULL;
        ok = ps_run_one(g, pass, &o, &d) && d.nerrors == 0;
        if (time_passes)
            timer_print(&timer, stderr);
        int before = d.nerrors;
        if (ok && !ir_verify(g, &d)) {
            SrcLoc none = {NULL, 0, 0};
            diag_note(&d, none, "the graph is invalid after pass '%s' (%d problem%s)", pass,
                      d.nerrors - before, d.nerrors - before == 1 ? "" : "s");
            ok = false;
        }
    }
    diags_print_from(&d, stderr, shown);
    ok = ok && d.nerrors == 0;
    if (ok) {
        if (strcmp(format, "dot") == 0)
            ir_print_dot(g, stdout);
        else
            ir_print_opts(g, stdout, no_loc ? IR_PRINT_NO_LOC : 0);
    }
    ir_graph_free(g);
    diags_free(&d);
    return ok ? 0 : 1;
}
