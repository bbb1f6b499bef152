/* `modelc params FILE`: a Keras-summary-like table of a model's
 * parameters (name, shape, dtype, initializer, status, count) and the
 * trainable / non-trainable / total counts and bytes. */
#include <stdlib.h>

#include "cli.h"
#include "modelc_inspect.h"

int cmd_params(int argc, char **argv)
{
    CliList freeze = {0};
    const CliOpt opts[] = {
        {"freeze", CLI_MULTI, &freeze, "PATTERN", "also treat parameters matching PATTERN as frozen", NULL},
    };
    const CliCmd cmd = {"params", "FILE [options]",
                        "Print a table of the model's parameters: name, shape, dtype, initializer,\n"
                        "status (trainable, frozen or state) and element count, with totals.",
                        opts, ARRAY_LEN(opts), 1, 1};
    char **files;
    int nfiles;
    int rc = cli_parse(&cmd, argc, argv, &files, &nfiles);
    if (rc)
        return rc < 0 ? 0 : rc;
    mc_params_options o;
    mc_params_options_default(&o);
    o.freeze = freeze.v;
    o.nfreeze = freeze.n;
    rc = mc_print_params(files[0], &o, stdout, stderr);
    free(files);
    return rc;
}
