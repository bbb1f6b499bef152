/* ONNX in and out: an ONNX model becomes model-language text plus its
 * initializers as named tensors (import.c); a graph and its parameters
 * become an ONNX inference model (export.c). The protobuf-c reader and
 * writer generated from onnx.proto are seen by this room only. */
#ifndef MODELC_ONNX_H
#define MODELC_ONNX_H

#include "ir/ir.h"
#include "runtime/runtime.h"

/* The result of an import. */
typedef struct OnnxImport {
    char *mdl;         /* model-language text (xmalloc'd) */
    TensorMap weights; /* initializers under the text's parameter names, in its layouts */
    int nrenamed;      /* inputs and outputs whose ONNX names are not identifiers */
    char **mdl_name, **onnx_name;
    /* the first graph output: its identifier in the text, shape (-1 for
     * the batch axis N) and the ONNX op computing it (through Identity) */
    char *out_id, *out_op;
    int out_rank;
    int64_t out_dims[6];
} OnnxImport;

/* import.c: translate the ONNX model in buf (len bytes, read from path).
 * Every problem (a malformed file, an unsupported op, attribute or opset)
 * is an error naming path and, where one applies, the node and its op. */
bool fe_onnx_import(const char *path, const unsigned char *buf, size_t len, OnnxImport *out, Diags *d);
/* The same with values for some graph inputs (bound: tensors named as
 * the inputs, NULL for none), which the import takes as constants: shapes
 * and axes that a graph reads from its inputs. A name that is no input of
 * the graph is an error. */
bool fe_onnx_import_bound(const char *path, const unsigned char *buf, size_t len, const TensorMap *bound,
                          OnnxImport *out, Diags *d);
void fe_onnx_import_free(OnnxImport *im);
/* The row of a dense kernel (its rows in modelc's NHWC flatten order)
 * that holds feature i of an NCHW flatten (PyTorch's, ONNX's) of c
 * channels at hw positions; c = 0: no flatten, row i. The importer and
 * modelc convert-weights permute with it. */
int64_t fe_onnx_nhwc_row(int64_t i, int64_t c, int64_t hw);
/* The ops the importer translates, one per line (xmalloc'd). */
char *fe_onnx_op_list(void);

/* export.c: write the inference graph g (the predict recipe, unfused)
 * with the parameter values in params as an ONNX model (opset 13); src,
 * the model's source graph (or NULL), gives what the inference graph
 * lacks: batchnorm's momentum. */
bool fe_onnx_export(const Graph *g, const Graph *src, const TensorMap *params, const char *path, Diags *d);

#endif
