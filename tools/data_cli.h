/* Data options shared by train, eval and stats: where the examples come
 * from (--data), how they are converted, and how data-set tensors are
 * bound to the model's inputs by name. */
#ifndef MODELC_DATA_CLI_H
#define MODELC_DATA_CLI_H

#include <pthread.h>

#include "backend/api_internal.h"
#include "cli.h"
#include "runtime/runtime.h"

typedef struct DataArgs {
    CliList data;        /* --data: fashion-mnist | DIR | FILE... | uniform:N */
    const char *val_data;
    double val_split;
    bool no_scale;
    int limit;           /* use only the first K examples (0 = all) */
    const char *label_col;
} DataArgs;

#define DATA_CLI_OPTS(a)                                                                        \
    {"data", CLI_MULTI, &(a).data, "SRC",                                                       \
     "fashion-mnist (default), a directory of IDX files, CSV/NPY/safetensors files, or "        \
     "uniform:N"},                                                                              \
        {"val-data", CLI_STR, &(a).val_data, "SRC", "validation data (same forms as --data)"},  \
        {"val-split", CLI_DOUBLE, &(a).val_split, "F",                                          \
         "hold out the last fraction F of the training data for validation"},                   \
        {"no-scale", CLI_FLAG, &(a).no_scale, NULL, "keep 8-bit pixels in 0..255"},             \
        {"limit", CLI_INT, &(a).limit, "K", "use only the first K examples"},                   \
        {"label-column", CLI_STR, &(a).label_col, "NAME|INDEX", "CSV label column"}

/* Load the data for split "train" or "test" (the test split exists only
 * for IDX sources; *have is false otherwise). Tensors are converted and
 * renamed to fit the model's inputs. Errors go to d. */
bool data_load(const DataArgs *a, const char *split, const Graph *g, uint64_t seed, Dataset *out,
               bool *have, Diags *d);
bool data_load_src(const DataArgs *a, const char **src, int nsrc, const char *split,
                   const Graph *g, uint64_t seed, Dataset *out, bool *have, Diags *d);

/* Data loading on a second thread while the model compiles on the calling
 * one. The thread runs fn with its own parse of the model file (so nothing
 * is shared with the compile) and its own Diags; data_bg_finish prints
 * those after the compile's messages, in the order a sequential run would.
 * fn writes its results through ctx, which must outlive the thread. */
typedef int (*DataBgFn)(void *ctx, const Graph *g, uint64_t seed, Diags *d);
typedef struct DataBg {
    DataBgFn fn;
    void *ctx;
    Graph *g;      /* the thread's parse of the model */
    Diags parse_d; /* the parse's messages, printed only if it failed */
    Diags d;       /* fn's diagnostics */
    uint64_t seed; /* mo->seed when set, else the model's train { seed } */
    int rc;
    pthread_t th;
    bool started;
} DataBg;

void data_bg_start(DataBg *l, const char *model, const mc_options *mo, DataBgFn fn, void *ctx);
/* Wait for fn, print its diagnostics to stderr, free; fn's return value
 * (1 when the model did not parse). */
int data_bg_finish(DataBg *l);
/* Wait for fn and drop its diagnostics (the compile failed first); the
 * caller frees whatever fn produced. */
void data_bg_cancel(DataBg *l);

/* Pointers into a batch map as mc_tensor views (no copies). */
int data_views(const TensorMap *b, mc_tensor *v, int max);

#endif
