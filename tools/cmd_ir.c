/* `modelc ir FILE`: load a model (.mdl or .ir), run the pipeline up to a
 * pass and print the graph as IR text or Graphviz DOT, or (--stats) how
 * many kernels it has. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "modelc_inspect.h"

static int parse_mode(const char *cmd, const char *s, mc_mode *m)
{
    if (strcmp(s, "train") == 0)
        *m = MC_MODE_TRAIN;
    else if (strcmp(s, "infer") == 0)
        *m = MC_MODE_INFER;
    else
        return cli_usage_error(cmd, "--mode must be train or infer, got '%s'", s);
    return 0;
}

int cmd_ir(int argc, char **argv)
{
    const char *mode_s = NULL, *format = "text", *backend = "jit";
    mc_ir_options o;
    mc_ir_options_default(&o);
    CliList wrt = {0};
    const CliOpt opts[] = {
        {"fn", CLI_STR, &o.fn, "NAME",
         "the compiled function: train_step, eval, predict, grad, loss, numerics, or train_grad and apply "
         "(a data-parallel step's halves) (default: train_step, or "
         "eval with --mode=infer, grad with --wrt); printed as the backend compiles it", NULL},
        {"after", CLI_STR, &o.after, "PASS",
         "stop the function's recipe after PASS (without --fn and --after: lower, the frontend's graph)", NULL},
        {"mode", CLI_STR, &mode_s, "MODE", "train or infer: the mode specialize compiles for (default: the function's)", NULL},
        {"backend", CLI_STR, &backend, "B", "jit (fused, the default) or interp (the interpreter's unfused graph)", NULL},
        {"format", CLI_STR, &format, "FMT", "text (IR that parses back) or dot (Graphviz)", NULL},
        {"no-loc", CLI_FLAG, &o.no_loc, NULL, "leave out the loc(...) source locations", NULL},
        {"wrt", CLI_MULTI, &wrt, "NAME", "also differentiate with respect to input NAME", NULL},
        {"time-passes", CLI_FLAG, &o.time_passes, NULL, "report the time each pass takes on stderr", NULL},
        {"stats", CLI_FLAG, &o.stats, NULL, "print node and kernel counts instead of the graph", NULL},
        {"mode-diff", CLI_FLAG, &o.mode_diff, NULL,
         "print the training and inference graphs as one diff over the model's graph", NULL},
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
    if (mode_s && (rc = parse_mode("ir", mode_s, &o.mode)))
        return rc;
    if (strcmp(format, "text") != 0 && strcmp(format, "dot") != 0)
        return cli_usage_error("ir", "--format must be text or dot, got '%s'", format);
    if (strcmp(backend, "jit") != 0 && strcmp(backend, "interp") != 0)
        return cli_usage_error("ir", "--backend must be jit or interp, got '%s'", backend);
    if (o.after && cli_find(mc_pass_names(), o.after) < 0)
        return cli_unknown_name("ir", "pass", o.after, "--after", mc_pass_names());
    if (o.fn && cli_find(mc_fn_names(), o.fn) < 0)
        return cli_unknown_name("ir", "function", o.fn, "--fn", mc_fn_names());
    if (wrt.n && o.fn && strcmp(o.fn, "grad") != 0)
        return cli_usage_error("ir", "--wrt adds gradients: it needs --fn grad, not %s", o.fn);
    if (o.mode_diff && (o.after || o.fn || strcmp(format, "text") != 0))
        return cli_usage_error("ir", "--mode-diff prints the model's graph: it takes no --fn, --after or --format");
    o.dot = strcmp(format, "dot") == 0;
    o.backend = strcmp(backend, "interp") == 0 ? MC_BACKEND_INTERP : MC_BACKEND_JIT;
    o.wrt = wrt.v;
    o.nwrt = wrt.n;
    return mc_print_ir(path, &o, stdout, stderr);
}
