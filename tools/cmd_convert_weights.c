/* `modelc convert-weights MODEL --from torch|keras IN.safetensors -o
 * OUT.safetensors`: a PyTorch state_dict or Keras weights become a
 * checkpoint of MODEL (mc_convert_weights), one line per tensor mapped. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "modelc_inspect.h"

int cmd_convert_weights(int argc, char **argv)
{
    const char *from = NULL, *output = NULL;
    const CliOpt opts[] = {
        {"from", CLI_STR, &from, "torch|keras",
         "the file's naming and layouts: a PyTorch state_dict (fc1.weight [out,in], conv OIHW, "
         "BatchNorm running_mean/var) or Keras weights (dense/kernel, conv2d/kernel HWIO, "
         "batch_normalization/gamma ...)", NULL},
        {"output", CLI_STR, &output, "OUT.safetensors", "the checkpoint to write (also -o)", NULL},
    };
    const CliCmd cmd = {"convert-weights", "MODEL IN.safetensors --from torch|keras -o OUT.safetensors",
                        "Map another framework's weights onto MODEL's parameters: by layer name where\n"
                        "the names match, otherwise in order, with the transposes the layouts need and\n"
                        "shape checks; prints each mapping and writes a checkpoint for --init-from,\n"
                        "predict --weights and the other commands.",
                        opts, ARRAY_LEN(opts), 2, 2};
    char **av = cli_expand_output(argc, argv), **pos;
    int npos;
    int rc = cli_parse(&cmd, argc, av, &pos, &npos);
    free(av);
    if (rc)
        return rc < 0 ? 0 : rc;
    mc_convert_options o = {MC_FROM_TORCH, pos[1], output};
    if (!from || (strcmp(from, "torch") != 0 && strcmp(from, "keras") != 0))
        rc = cli_usage_error("convert-weights", "--from must be torch or keras%s%s%s", from ? ", got '" : "",
                             from ? from : "", from ? "'" : "");
    else if (!output)
        rc = cli_usage_error("convert-weights", "give the checkpoint to write with -o OUT.safetensors");
    else if (cli_check_output_file("-o", output))
        rc = 1;
    if (!rc) {
        o.from = strcmp(from, "keras") == 0 ? MC_FROM_KERAS : MC_FROM_TORCH;
        rc = mc_convert_weights(pos[0], &o, stdout, stderr);
    }
    free(pos);
    return rc;
}
