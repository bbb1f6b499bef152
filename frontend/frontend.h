/* The frontend: lexer, parser, AST and lowering of `*.mdl` model files to
 * the graph IR (names, shapes, layer sugar, loss, metrics, train block). */
#ifndef MODELC_FRONTEND_H
#define MODELC_FRONTEND_H

#include "ir/ir.h"

/* Parse and lower one model file. `text` holds `len` bytes of the file
 * named `path` (registered with d for source snippets). Returns NULL when
 * any error was reported; warnings may be reported either way. */
Graph *fe_compile(const char *path, const char *text, size_t len, Diags *d);
/* The same, with the train block's run settings (defaults when the model
 * has none); fe_compile drops them. */
Graph *fe_compile_model(const char *path, const char *text, size_t len, RunSettings *run, Diags *d);

/* Read `path` and compile it: `.ir` files go through the IR text parser,
 * `.onnx` files through the ONNX importer, anything else through the
 * model-language frontend. Errors reading the file are reported as
 * diagnostics naming the file. */
Graph *fe_load_file(const char *path, Diags *d);
Graph *fe_load_model(const char *path, RunSettings *run, Diags *d);
/* The same; a `.onnx` file is imported first (frontend/onnx/) and its
 * initializers, under the parameter names of the imported model, go to
 * *weights when weights is not NULL (left empty for other files). */
struct TensorMap;
Graph *fe_load_model_weights(const char *path, RunSettings *run, struct TensorMap *weights, Diags *d);

#endif
