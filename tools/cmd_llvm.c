/* `modelc llvm FILE`: compile one function of a model from its recipe
 * (predict by default; --fn or --mode choose another) and print the LLVM
 * IR the backend generates for it, before or after optimisation. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "modelc_inspect.h"

static int check_args(const char *mode, mc_llvm_options *o)
{
    if (o->fn) {
        if (cli_find(mc_fn_names(), o->fn) < 0)
            return cli_usage_error("llvm", "unknown function '%s' for --fn (train_step, eval, predict, grad)", o->fn);
        if (mode)
            return cli_usage_error("llvm", "--fn and --mode choose the same thing: give one");
    } else if (!mode || strcmp(mode, "infer") == 0) {
        o->mode = MC_MODE_INFER;
    } else if (strcmp(mode, "train") == 0) {
        o->mode = MC_MODE_TRAIN;
    } else {
        return cli_usage_error("llvm", "--mode must be train or infer, got '%s'", mode);
    }
    if (o->after && cli_find(mc_pass_names(), o->after) < 0)
        return cli_unknown_name("llvm", "pass", o->after, "--after", mc_pass_names());
    if (o->batch < 0)
        return cli_usage_error("llvm", "--batch must be >= 0, got %d", o->batch);
    if (o->opt_level != 0 && o->opt_level != 2 && o->opt_level != 3)
        return cli_usage_error("llvm", "--opt-level must be 0, 2 or 3, got %d", o->opt_level);
    return 0;
}

int cmd_llvm(int argc, char **argv)
{
    mc_llvm_options o;
    mc_llvm_options_default(&o);
    const char *mode = NULL;
    const CliOpt opts[] = {
        {"opt", CLI_FLAG, &o.optimized, NULL, "print the IR after optimisation (default: as generated)", NULL},
        {"fn", CLI_STR, &o.fn, "NAME", "the function: train_step, eval, predict (default) or grad", NULL},
        {"mode", CLI_STR, &mode, "MODE", "infer (predict) or train (train_step)", NULL},
        {"after", CLI_STR, &o.after, "PASS", "compile the function's recipe stopped after PASS", NULL},
        {"opt-level", CLI_INT, &o.opt_level, "L", "0, 2 (default: modelc's loop pipeline) or 3 (LLVM's default<O3>)", NULL},
        {"fast-isel", CLI_FLAG, &o.fast_isel, NULL, "with --time-passes: codegen at CodeGenLevelNone", NULL},
        {"time-passes", CLI_FLAG, &o.time_passes, NULL, "also JIT-compile the module; report pass and LLVM phase times on stderr", NULL},
        {"memory-plan", CLI_FLAG, &o.memory_plan, NULL,
         "instead of the IR, print the workspace plan: every temporary's offset, size and live range", NULL},
        {"batch", CLI_INT, &o.batch, "N", "batch size for --memory-plan (default 128)", NULL},
    };
    const CliCmd cmd = {"llvm", "FILE [options]",
                        "Print the LLVM IR generated for a model (.mdl or .ir): one function per\n"
                        "kernel and the entry function `entry(ctx, N, bufs)`.",
                        opts, ARRAY_LEN(opts), 1, 1};
    char **pos;
    int npos;
    int rc = cli_parse(&cmd, argc, argv, &pos, &npos);
    if (rc)
        return rc < 0 ? 0 : rc;
    const char *path = pos[0];
    free(pos);
    if ((rc = check_args(mode, &o)))
        return rc;
    return mc_print_llvm(path, &o, stdout, stderr);
}
