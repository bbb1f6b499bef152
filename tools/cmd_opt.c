/* `modelc opt --pass=NAME FILE.ir`: read IR text, run exactly one pass and
 * print the result as IR text (LLVM's opt), so each pass is testable on
 * its own. The graph is verified before and after the pass. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "modelc_inspect.h"

int cmd_opt(int argc, char **argv)
{
    const char *mode_s = "train", *format = "text";
    mc_opt_options o;
    mc_opt_options_default(&o);
    CliList wrt = {0};
    const CliOpt opts[] = {
        {"pass", CLI_STR, &o.pass, "NAME", "the pass to run (required)", NULL},
        {"mode", CLI_STR, &mode_s, "MODE", "train or infer (default: train)", NULL},
        {"format", CLI_STR, &format, "FMT", "text (IR that parses back) or dot (Graphviz)", NULL},
        {"no-loc", CLI_FLAG, &o.no_loc, NULL, "leave out the loc(...) source locations", NULL},
        {"wrt", CLI_MULTI, &wrt, "NAME", "autodiff: also differentiate with respect to input NAME", NULL},
        {"time-passes", CLI_FLAG, &o.time_passes, NULL, "report the time the pass takes on stderr", NULL},
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
    if (strcmp(mode_s, "infer") == 0)
        o.mode = MC_MODE_INFER;
    else if (strcmp(mode_s, "train") != 0)
        return cli_usage_error("opt", "--mode must be train or infer, got '%s'", mode_s);
    if (strcmp(format, "text") != 0 && strcmp(format, "dot") != 0)
        return cli_usage_error("opt", "--format must be text or dot, got '%s'", format);
    if (!o.pass)
        return cli_usage_error("opt", "missing --pass=NAME");
    if (cli_find(mc_pass_names(), o.pass) < 0)
        return cli_unknown_name("opt", "pass", o.pass, "--pass", mc_pass_names());
    o.dot = strcmp(format, "dot") == 0;
    o.wrt = wrt.v;
    o.nwrt = wrt.n;
    return mc_run_pass(path, &o, stdout, stderr);
}
