/* `modelc gradcheck`: compare the symbolic gradients of a model with
 * central finite differences of its loss, in f64, on random weights and
 * a random batch. Every trainable parameter is checked on at most
 * --samples elements (stratified over the tensor with the seed), with
 * PyTorch gradcheck's criterion |analytic - numeric| <= atol + rtol*|numeric|.
 * A difference across a kink (relu, max pooling, abs, ...) is taken again
 * with smaller steps and is never a mismatch. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "modelc_inspect.h"

static int parse(mc_gradcheck_options *a, int argc, char **argv, const char **file)
{
    const char *dtype = "f64", *backend = "interp";
    CliOpt opts[] = {
        {"seed", CLI_U64, &a->seed, "S", "seed for weights, inputs and sampled elements (default: the model's)",
         &a->seed_set},
        {"eps", CLI_DOUBLE, &a->eps, "E", "finite-difference step (default 1e-6)", NULL},
        {"atol", CLI_DOUBLE, &a->atol, "A", "absolute tolerance (default 1e-5)", NULL},
        {"rtol", CLI_DOUBLE, &a->rtol, "R", "relative tolerance (default 1e-3)", NULL},
        {"batch", CLI_INT, &a->batch, "N", "examples in the random batch (default 4)", NULL},
        {"samples", CLI_INT, &a->samples, "K", "elements checked per parameter at most (default 64)", NULL},
        {"dtype", CLI_STR, &dtype, "f64|f32",
         "f32: instead of the check, the error of the f32 gradients against f64 per parameter", NULL},
        {"backend", CLI_STR, &backend, "interp|jit",
         "with --dtype f32, jit adds the compiled, fused f32 gradients (default interp)", NULL},
    };
    CliCmd cmd = {"gradcheck", "FILE [options]",
                  "Compare symbolic gradients with central finite differences of the loss, in f64,\n"
                  "on random weights and a random batch; exit 1 on a mismatch. An element whose\n"
                  "difference crosses a kink (a branch of relu, max pooling, abs, ... changes) is\n"
                  "checked again with eps / 10, / 100, / 1000, or one-sided, or skipped, and listed.\n"
                  "On a mismatch, the first op whose gradient rule disagrees with its own finite\n"
                  "difference on the batch is named at its model line.\n"
                  "--dtype f32 [--backend jit]: per parameter, max |g32 - g64| / max |g64| of the\n"
                  "f32 gradients (unfused; fused as compiled with jit) against f64 ones of the\n"
                  "same weights and batch.",
                  opts, ARRAY_LEN(opts), 1, 1};
    char **pos;
    int npos;
    int rc = cli_parse(&cmd, argc, argv, &pos, &npos);
    if (rc)
        return rc < 0 ? -1 : rc;
    *file = pos[0];
    free(pos);
    if (!(a->eps > 0) || !isfinite(a->eps))
        return cli_usage_error("gradcheck", "--eps must be a positive number, got %g", a->eps);
    if (!(a->atol >= 0) || !(a->rtol >= 0))
        return cli_usage_error("gradcheck", "--atol and --rtol must not be negative");
    if (a->batch < 1 || a->samples < 1)
        return cli_usage_error("gradcheck", "--batch and --samples must be at least 1");
    if (strcmp(dtype, "f32") != 0 && strcmp(dtype, "f64") != 0)
        return cli_usage_error("gradcheck", "unknown dtype '%s' (expected f64 or f32)", dtype);
    if (strcmp(backend, "interp") != 0 && strcmp(backend, "jit") != 0)
        return cli_usage_error("gradcheck", "unknown backend '%s' (expected interp or jit)", backend);
    a->f32 = strcmp(dtype, "f32") == 0;
    a->backend = strcmp(backend, "jit") == 0 ? MC_BACKEND_JIT : MC_BACKEND_INTERP;
    if (a->backend == MC_BACKEND_JIT && !a->f32)
        return cli_usage_error("gradcheck", "--backend jit compares f32 gradients: add --dtype f32");
    return 0;
}

int cmd_gradcheck(int argc, char **argv)
{
    mc_gradcheck_options o;
    mc_gradcheck_options_default(&o);
    const char *file;
    int rc = parse(&o, argc, argv, &file);
    if (rc)
        return rc < 0 ? 0 : rc;
    return mc_gradcheck(file, &o, stdout, stderr);
}
