/* Loading a model from a file: model language or IR text by extension. */
#include "frontend.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcmp(s + n - k, suf) == 0;
}

Graph *fe_load_file(const char *path, Diags *d)
{
    RunSettings run;
    return fe_load_model(path, &run, d);
}

Graph *fe_load_model(const char *path, RunSettings *run, Diags *d)
{
    ir_run_defaults(run);
    size_t len;
    char *text = read_file(path, &len);
    if (!text) {
        SrcLoc loc = {diags_intern_file(d, path), 0, 0};
        diag_error(d, loc, "cannot read file: %s", strerror(errno));
        return NULL;
    }
    if (memchr(text, 0, len)) {
        SrcLoc loc = {diags_intern_file(d, path), 0, 0};
        diag_error(d, loc, "file contains NUL bytes; is it a binary file?");
        xfree(text);
        return NULL;
    }
    const char *file = diags_add_source(d, path, text, len);
    Graph *g = has_suffix(path, ".ir") ? ir_parse_model(file, text, len, run, d)
                                       : fe_compile_model(file, text, len, run, d);
    xfree(text);
    if (g && d->nerrors) {
        ir_graph_free(g);
        g = NULL;
    }
    return g;
}
