/* Loading data sets and binding them to a model's inputs, for the C API
 * (mc_data) and the commands that work on a Graph (stats, watching). */
#ifndef MODELC_DRIVER_DATA_H
#define MODELC_DRIVER_DATA_H

#include "frontend/frontend.h"
#include "ir/ir.h"
#include "modelc.h"
#include "runtime/runtime.h"
#include "runtime/io/io.h"

typedef struct DataOpts {
    const char *const *sources; /* fashion-mnist (default) | DIR | FILE... | uniform:N */
    int nsources;
    bool no_scale;    /* keep 8-bit pixels in 0..255 */
    int64_t limit;    /* only the first K examples (0 = all) */
    const char *label_col; /* CSV label column, a name or an index */
    bool used_only;   /* bind only the inputs some node of the graph reads */
    const Graph *all_inputs; /* the model before pruning (its inputs without N are read whole) [the graph] */
    const char *classes; /* keep only the examples whose class label is in this set ("0-4,7"),
                            before limit; NULL or "" = all */
} DataOpts;

/* Load the data for split "train" or "test" (the test split exists only
 * for IDX sources and uniform:N; *have is false otherwise). Tensors are
 * converted and renamed to fit the model's inputs. Errors go to d. */
bool data_load(const DataOpts *a, const char *split, const Graph *g, uint64_t seed, Dataset *out,
               bool *have, Diags *d);
bool data_load_src(const DataOpts *a, const char *const *src, int nsrc, const char *split,
                   const Graph *g, uint64_t seed, Dataset *out, bool *have, Diags *d);

/* The DType of an mc_tensor dtype code (0 f32, 1 f64, 2 i32). */
DType mc_dtype_of(int code);
/* t as an mc_tensor view called name (no copy). */
mc_tensor mc_view_of(const char *name, const Tensor *t);
/* Pointers into a batch map as mc_tensor views (no copies). */
int data_views(const TensorMap *b, mc_tensor *v, int max);

/* The data set behind an mc_data (NULL for NULL). */
const Dataset *mc_data_dataset(const mc_data *d);
/* FNV-1a 64 of a data set: each tensor's name, dtype, shape and values
 * (8-bit data: its bytes and conversion table). */
uint64_t mc_data_hash(const mc_data *d);

#endif
