/* `modelc export FILE [--weights W.safetensors] -o model.onnx`: compile a
 * model for inference, give it its parameters (the checkpoint, else the
 * initializers: an .onnx file's own, or --seed's random ones) and write
 * its inference graph as ONNX. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "modelc.h"

int cmd_export(int argc, char **argv)
{
    const char *output = NULL, *weights = NULL, *fn = "predict";
    uint64_t seed = 0;
    bool seed_set = false;
    const CliOpt opts[] = {
        {"output", CLI_STR, &output, "model.onnx", "where to write the ONNX model (also -o)", NULL},
        {"weights", CLI_STR, &weights, "W.safetensors", "parameter values (default: the initializers)", NULL},
        {"seed", CLI_U64, &seed, "S", "seed of the initializers without --weights (default: the model's)",
         &seed_set},
        {"fn", CLI_STR, &fn, "predict", "the function to export (only predict: the inference graph)", NULL},
    };
    const CliCmd cmd = {"export", "FILE [--weights W.safetensors] -o model.onnx",
                        "Write a model's inference graph (its output values) with its parameters as\n"
                        "an ONNX model (opset 13). Inputs and outputs keep the model's names and\n"
                        "layouts; convolutions and pooling run NCHW between transposes.",
                        opts, ARRAY_LEN(opts), 1, 1};
    const char *file;
    int rc = cli_parse_output(&cmd, argc, argv, &file, &output, "model.onnx");
    if (rc)
        return rc < 0 ? 0 : rc;
    if (strcmp(fn, "predict") != 0)
        return cli_usage_error("export", "--fn %s: only predict (the inference graph) is exported", fn);
    if (cli_check_output_file("-o", output))
        return 1;
    mc_options o;
    mc_options_default(&o);
    o.backend = MC_BACKEND_INTERP;
    mc_model *m = mc_compile(file, &o);
    if (!m) {
        fputs(mc_last_error(NULL), stderr);
        return 1;
    }
    bool ok = mc_init_params(m, seed_set ? seed : mc_train_defaults(m).seed) &&
              (!weights || mc_load(m, weights, NULL, true)) && mc_export_onnx(m, output);
    if (!ok)
        fputs(mc_last_error(m), stderr);
    mc_free(m);
    return ok ? 0 : 1;
}
