/* `modelc llvm FILE`: compile one function of a model from its recipe
 * (predict by default; --fn or --mode choose another) and print the LLVM
 * IR the backend generates for it, before or after optimisation. */
#include <stdlib.h>
#include <string.h>

#include "backend/llvm/jit.h"
#include "cli.h"
#include "passes/passes.h"

typedef struct LlvmArgs {
    const char *after, *mode, *fn;
    bool opt, time_passes, fast_isel, memory_plan;
    int opt_level, batch;
} LlvmArgs;

static int check_args(const LlvmArgs *a, int *fn)
{
    if (a->fn) {
        if ((*fn = ps_fn_index(a->fn)) < 0)
            return cli_usage_error("llvm", "unknown function '%s' for --fn (train_step, eval, predict, grad)", a->fn);
        if (a->mode)
            return cli_usage_error("llvm", "--fn and --mode choose the same thing: give one");
    } else if (!a->mode || strcmp(a->mode, "infer") == 0) {
        *fn = FN_PREDICT;
    } else if (strcmp(a->mode, "train") == 0) {
        *fn = FN_TRAIN_STEP;
    } else {
        return cli_usage_error("llvm", "--mode must be train or infer, got '%s'", a->mode);
    }
    if (a->after && ps_pass_index(a->after) < 0) {
        StrBuf b;
        sb_init(&b);
        for (int i = 0; ps_pass_names[i]; i++)
            sb_printf(&b, "%s%s", i ? ", " : "", ps_pass_names[i]);
        int rc = cli_usage_error("llvm", "unknown pass '%s' for --after (valid passes: %s)", a->after, b.s);
        sb_free(&b);
        return rc;
    }
    if (a->batch < 0)
        return cli_usage_error("llvm", "--batch must be >= 0, got %d", a->batch);
    if (a->opt_level != 0 && a->opt_level != 2 && a->opt_level != 3)
        return cli_usage_error("llvm", "--opt-level must be 0, 2 or 3, got %d", a->opt_level);
    return 0;
}

/* --mode=infer compiles the output values; a model without any gets
 * evaluation's loss and metrics. */
static bool has_values(const Graph *g)
{
    for (int i = 0; i < g->nouts; i++)
        if (g->outs[i].kind == OUT_VALUE)
            return true;
    return false;
}

int cmd_llvm(int argc, char **argv)
{
    LlvmArgs a = {NULL, NULL, NULL, false, false, false, false, 2, 128};
    const CliOpt opts[] = {
        {"opt", CLI_FLAG, &a.opt, NULL, "print the IR after optimisation (default: as generated)"},
        {"fn", CLI_STR, &a.fn, "NAME", "the function: train_step, eval, predict (default) or grad"},
        {"mode", CLI_STR, &a.mode, "MODE", "infer (predict) or train (train_step)"},
        {"after", CLI_STR, &a.after, "PASS", "compile the function's recipe stopped after PASS"},
        {"opt-level", CLI_INT, &a.opt_level, "L", "0, 2 (default: modelc's loop pipeline) or 3 (LLVM's default<O3>)"},
        {"fast-isel", CLI_FLAG, &a.fast_isel, NULL, "with --time-passes: codegen at CodeGenLevelNone"},
        {"time-passes", CLI_FLAG, &a.time_passes, NULL, "also JIT-compile the module; report pass and LLVM phase times on stderr"},
        {"memory-plan", CLI_FLAG, &a.memory_plan, NULL,
         "instead of the IR, print the workspace plan: every temporary's offset, size and live range"},
        {"batch", CLI_INT, &a.batch, "N", "batch size for --memory-plan (default 128)"},
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
    int fn = FN_PREDICT;
    if ((rc = check_args(&a, &fn)))
        return rc;

    Diags d;
    diags_init(&d);
    Timer timer = {0};
    Graph *g = cli_load(path, &d);
    int shown = d.n;
    bool ok = g != NULL;
    char *ir = NULL;
    if (ok) {
        if (fn == FN_PREDICT && !a.fn && !has_values(g))
            fn = FN_EVAL;
        RecipeOpts o = ps_recipe_opts((FnKind)fn);
        o.stop_after = a.after;
        o.timer = a.time_passes ? &timer : NULL;
        Graph *r = ps_recipe(g, &o, &d);
        ir_graph_free(g);
        g = r;
        ok = g != NULL;
    }
    JitOpts jo;
    JitStats st = {0};
    be_jit_opts_default(&jo);
    jo.opt_level = a.opt_level;
    jo.fast_isel = a.fast_isel;
    if (ok && a.memory_plan) {
        JitModule *m = be_jit_compile(g, &jo, &d);
        ok = m && be_jit_print_memory_plan(m, a.batch, stdout, &d);
        be_jit_free(m);
    } else if (ok) {
        ir = be_jit_llvm_ir(g, &jo, a.opt, &d);
        ok = ir != NULL;
    }
    if (ok && a.time_passes) { /* time the whole compilation, JIT included */
        jo.time_passes = true;
        jo.timer = &timer;
        JitModule *m = be_jit_compile(g, &jo, &d);
        ok = m != NULL;
        if (ok)
            st = *be_jit_stats(m);
        be_jit_free(m);
    }
    diags_print_from(&d, stderr, shown);
    if (ok && ir)
        fputs(ir, stdout);
    if (a.time_passes)
        timer_print(&timer, stderr);
    if (ok && a.time_passes)
        fprintf(stderr, "llvm: %d kernels in %d parts\n", st.kernels, st.parts);
    free(ir);
    ir_graph_free(g);
    diags_free(&d);
    return ok ? 0 : 1;
}
