/* `modelc check FILE...`: load each model, print its diagnostics and a
 * one-line summary per file; exit 1 when any file has an error. */
#include <stdlib.h>

#include "cli.h"
#include "modelc_inspect.h"

int cmd_check(int argc, char **argv)
{
    mc_check_options o;
    mc_check_options_default(&o);
    const CliOpt opts[] = {
        {"quiet", CLI_FLAG, &o.quiet, NULL, "print only diagnostics, no summary line", NULL},
        {"max-errors", CLI_INT, &o.max_errors, "N", "stop after N errors per file (0: no limit)", NULL},
    };
    const CliCmd cmd = {"check", "FILE... [options]",
                        "Parse, lower and shape-check model files (*.mdl or *.ir). Prints every\n"
                        "diagnostic as file:line:col with the source line, and 'FILE: ok (...)'\n"
                        "for each file without errors. Exit status 1 when any file has errors.",
                        opts, ARRAY_LEN(opts), 1, -1};
    char **files;
    int nfiles;
    int rc = cli_parse(&cmd, argc, argv, &files, &nfiles);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (o.max_errors < 0) {
        free(files);
        return cli_usage_error("check", "--max-errors must not be negative");
    }
    int status = 0;
    for (int i = 0; i < nfiles; i++)
        if (mc_check_file(files[i], &o, stdout, stderr))
            status = 1;
    free(files);
    return status;
}
