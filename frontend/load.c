/* Loading a model from a file: model language, IR text or ONNX by
 * extension. */
#include "frontend.h"
#include "onnx/onnx.h"

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

/* An imported model's inputs and outputs go by their ONNX names, also
 * where those are no identifiers of the language. */
static void restore_names(Graph *g, const OnnxImport *im)
{
    for (int k = 0; k < im->nrenamed; k++) {
        for (int i = 0; i < g->nnodes; i++)
            if (g->nodes[i]->op == OP_INPUT && strcmp(g->nodes[i]->a.name, im->mdl_name[k]) == 0)
                g->nodes[i]->a.name = arena_strdup(g->arena, im->onnx_name[k]);
        for (int i = 0; i < g->nouts; i++)
            if (g->outs[i].kind == OUT_VALUE && strcmp(g->outs[i].name, im->mdl_name[k]) == 0)
                g->outs[i].name = arena_strdup(g->arena, im->onnx_name[k]);
    }
}

/* An ONNX file: imported as model-language text (the source that
 * diagnostics after the import show), its initializers into *weights. */
static Graph *load_onnx(const char *path, const char *bytes, size_t len, RunSettings *run,
                        struct TensorMap *weights, Diags *d)
{
    OnnxImport im;
    if (!fe_onnx_import(path, (const unsigned char *)bytes, len, &im, d))
        return NULL;
    size_t n = strlen(im.mdl);
    const char *file = diags_add_source(d, path, im.mdl, n);
    Graph *g = fe_compile_model(file, im.mdl, n, run, d);
    if (g && !d->nerrors)
        restore_names(g, &im);
    if (weights) {
        *weights = im.weights;
        rt_map_init(&im.weights);
    }
    fe_onnx_import_free(&im);
    return g;
}

Graph *fe_load_model(const char *path, RunSettings *run, Diags *d)
{
    return fe_load_model_weights(path, run, NULL, d);
}

Graph *fe_load_model_weights(const char *path, RunSettings *run, struct TensorMap *weights, Diags *d)
{
    ir_run_defaults(run);
    size_t len;
    char *text = read_file(path, &len);
    if (!text) {
        SrcLoc loc = {diags_intern_file(d, path), 0, 0};
        diag_error(d, loc, "cannot read file: %s", strerror(errno));
        return NULL;
    }
    if (has_suffix(path, ".onnx")) {
        Graph *g = load_onnx(path, text, len, run, weights, d);
        xfree(text);
        if (g && d->nerrors) {
            ir_graph_free(g);
            g = NULL;
        }
        return g;
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
