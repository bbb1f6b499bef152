/* `modelc import model.onnx -o model.mdl [--weights-out W.safetensors]`:
 * translate an ONNX model into a model file and its initializers into a
 * parameter file; `--list-ops` prints the ONNX operators translated. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "modelc.h"

int cmd_import(int argc, char **argv)
{
    const char *output = NULL, *weights = NULL, *constants = NULL;
    mc_onnx_train tr = {NULL, NULL, NULL};
    bool list = false;
    const CliOpt opts[] = {
        {"output", CLI_STR, &output, "model.mdl", "where to write the model file (also -o; - for stdout)", NULL},
        {"weights-out", CLI_STR, &weights, "W.safetensors", "where to write the initializers", NULL},
        {"constants", CLI_STR, &constants, "C.safetensors",
         "values for graph inputs the import takes as constants (shapes, axes, pads given as inputs)", NULL},
        {"loss", CLI_STR, &tr.loss, "LOSS",
         "add a loss of the first output against a new labels input, and a train block: mse, mae, "
         "binary_crossentropy, categorical_crossentropy or sparse_categorical_crossentropy",
         NULL},
        {"labels", CLI_STR, &tr.labels, "NAME", "with --loss: the labels input's name (default labels)", NULL},
        {"optimizer", CLI_STR, &tr.optimizer, "OPT",
         "with --loss: the train block's optimizer, sgd, adam or rmsprop with arguments (default adam(lr=0.001))",
         NULL},
        {"list-ops", CLI_FLAG, &list, NULL, "print the ONNX operators the import translates", NULL},
    };
    const CliCmd cmd = {"import", "model.onnx -o model.mdl [--weights-out W.safetensors]",
                        "Translate an ONNX model into a model file: layers where the pattern is\n"
                        "clear (Gemm/MatMul + Add as dense, Conv, BatchNormalization), NCHW\n"
                        "images run as NHWC inside. The initializers go to --weights-out under\n"
                        "the model's parameter names, for --weights or --init-from.",
                        opts, ARRAY_LEN(opts), 0, 1};
    char **av = cli_expand_output(argc, argv), **pos;
    int npos;
    int rc = cli_parse(&cmd, argc, av, &pos, &npos);
    free(av);
    if (rc)
        return rc < 0 ? 0 : rc;
    const char *file = npos ? pos[0] : NULL;
    free(pos);
    if (list) {
        char *ops = mc_onnx_ops();
        fputs(ops, stdout);
        free(ops);
        return 0;
    }
    if (!file)
        return cli_usage_error("import", "missing the ONNX file");
    if (!output)
        return cli_usage_error("import", "missing the output file (-o model.mdl)");
    if (strcmp(output, "-") != 0 && cli_check_output_file("-o", output))
        return 1;
    if (weights && cli_check_output_file("--weights-out", weights))
        return 1;
    if ((tr.labels || tr.optimizer) && !tr.loss)
        return cli_usage_error("import", "--labels and --optimizer go with --loss");
    char *mdl, *err;
    if (!mc_onnx_import_train(file, constants, weights, tr.loss ? &tr : NULL, &mdl, &err)) {
        fputs(err, stderr);
        free(err);
        return 1;
    }
    FILE *f = strcmp(output, "-") == 0 ? stdout : fopen(output, "w");
    bool ok = f && fputs(mdl, f) >= 0;
    if (f && f != stdout)
        ok = fclose(f) == 0 && ok;
    free(mdl);
    if (!ok) {
        fprintf(stderr, "%s: error: cannot write the model file\n", output);
        return 1;
    }
    return 0;
}
