/* `modelc check FILE...`: load each model, print its diagnostics and a
 * one-line summary per file; exit 1 when any file has an error. */
#include "cli.h"
#include "backend/insight/warn.h"

#include <stdlib.h>

static void summary(const char *path, Graph *g)
{
    int nparams = 0;
    int64_t weights = 0;
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (n->op != OP_PARAM)
            continue;
        nparams++;
        int64_t k = ir_shape_numel(&n->shape, 1);
        if (k > 0)
            weights += k;
    }
    printf("%s: ok (%d parameter%s, %lld weight%s)\n", path, nparams, nparams == 1 ? "" : "s",
           (long long)weights, weights == 1 ? "" : "s");
    fflush(stdout); /* keep the order with diagnostics on stderr */
}

int cmd_check(int argc, char **argv)
{
    bool quiet = false;
    int max_errors = 20;
    const CliOpt opts[] = {
        {"quiet", CLI_FLAG, &quiet, NULL, "print only diagnostics, no summary line"},
        {"max-errors", CLI_INT, &max_errors, "N", "stop after N errors per file (0: no limit)"},
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
    if (max_errors < 0) {
        free(files);
        return cli_usage_error("check", "--max-errors must not be negative");
    }
    int status = 0;
    for (int i = 0; i < nfiles; i++) {
        Diags d;
        diags_init(&d);
        d.max_errors = max_errors;
        Graph *g = cli_load(files[i], &d);
        if (g) {
            ps_warn_report(g, &d, stderr);
            if (!quiet)
                summary(files[i], g);
            ir_graph_free(g);
        } else {
            status = 1;
        }
        diags_free(&d);
    }
    free(files);
    return status;
}
