/* `modelc grad`: compile the model's grad function (specialize for
 * training, differentiate, simplify; fused for the JIT), evaluate the loss
 * and every gradient for one batch with the reference interpreter
 * (default) or the LLVM JIT, print the loss and write the gradients
 * (grad.<name>) to a safetensors file. */
#include <string.h>

#include "cli.h"
#include "modelc_inspect.h"

int cmd_grad(int argc, char **argv)
{
    mc_grad_options o;
    mc_grad_options_default(&o);
    const char *backend = "interp";
    CliList wrt = {0};
    CliOpt opts[] = {
        {"output", CLI_STR, &o.output, "G.safetensors", "where to write the gradients (also -o)", NULL},
        {"weights", CLI_STR, &o.weights, "W.safetensors", "parameter values (default: initialise with --seed)", NULL},
        {"inputs", CLI_STR, &o.inputs, "X.safetensors",
         "the batch (default: --batch random examples, floats uniform in [0,1), labels uniform classes)", NULL},
        {"backend", CLI_STR, &backend, "interp|jit", "evaluator (default interp)", NULL},
        {"seed", CLI_U64, &o.seed, "S", "seed for initial weights and the random batch (default: the model's)",
         &o.seed_set},
        {"batch", CLI_INT, &o.batch, "N", "examples in the random batch (default 4)", NULL},
        {"wrt", CLI_MULTI, &wrt, "NAME", "also differentiate with respect to this input (repeatable)", NULL},
    };
    CliCmd cmd = {"grad", "FILE -o G.safetensors [options]",
                  "Evaluate the loss and the gradient of every trainable parameter for one batch\n"
                  "(specialize for training, autodiff, simplify) and write them as grad.<name>.",
                  opts, ARRAY_LEN(opts), 1, 1};
    const char *file;
    int rc = cli_parse_output(&cmd, argc, argv, &file, &o.output, "G.safetensors");
    if (rc)
        return rc < 0 ? 0 : rc;
    if (strcmp(backend, "interp") != 0 && strcmp(backend, "jit") != 0)
        return cli_usage_error("grad", "unknown backend '%s' (expected interp or jit)", backend);
    if (o.batch < 1)
        return cli_usage_error("grad", "--batch must be at least 1, got %d", o.batch);
    if (cli_check_output_file("-o", o.output))
        return 1;
    o.backend = strcmp(backend, "jit") == 0 ? MC_BACKEND_JIT : MC_BACKEND_INTERP;
    o.wrt = wrt.v;
    o.nwrt = wrt.n;
    return mc_write_grads(file, &o, stdout, stderr);
}
