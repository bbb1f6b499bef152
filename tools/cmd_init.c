/* `modelc init FILE -o W.safetensors [--seed S]`: compile a model, give
 * every parameter its initial value and write them to a safetensors file
 * atomically. The metadata records the format, its version, the model
 * name and the seed. */
#include "cli.h"
#include "modelc_inspect.h"

int cmd_init(int argc, char **argv)
{
    mc_init_options o;
    mc_init_options_default(&o);
    CliOpt opts[] = {
        {"output", CLI_STR, &o.output, "W.safetensors", "where to write the parameters (also -o)", NULL},
        {"seed", CLI_U64, &o.seed, "S", "seed for the random initializers (default: the model's)",
         &o.seed_set},
    };
    CliCmd cmd = {"init", "FILE -o W.safetensors [--seed S]",
                  "Initialise every parameter of a model with its initializer and write them\n"
                  "to a safetensors file (replaced atomically).",
                  opts, ARRAY_LEN(opts), 1, 1};
    const char *file;
    int rc = cli_parse_output(&cmd, argc, argv, &file, &o.output, "W.safetensors");
    if (rc)
        return rc < 0 ? 0 : rc;
    if (cli_check_output_file("-o", o.output))
        return 1;
    return mc_write_init(file, &o, stdout, stderr);
}
