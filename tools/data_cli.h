/* Data options shared by train, eval and stats (--data and friends), and
 * loading data on a second thread while the model compiles. Loading and
 * binding to the model's inputs are the library's (mc_data in modelc.h). */
#ifndef MODELC_DATA_CLI_H
#define MODELC_DATA_CLI_H

#include <pthread.h>

#include "cli.h"
#include "modelc.h"

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

/* The mc_data_options of the command line: sources src (NULL: --data),
 * the split, and the stream of generated data (0 train, 1 validation,
 * 2 test); seed applies when mo->seed_set. */
void data_options(const DataArgs *a, const mc_options *mo, const char *const *src, int nsrc,
                  const char *split, int stream, mc_data_options *o);

/* fn(ctx) on a second thread at a lower priority, so decompression and
 * conversion overlap the compile; data_bg_wait joins it and returns fn's
 * result. */
typedef struct DataBg {
    int (*fn)(void *ctx);
    void *ctx;
    int rc;
    pthread_t th;
    bool started;
} DataBg;

void data_bg_start(DataBg *l, int (*fn)(void *ctx), void *ctx);
int data_bg_wait(DataBg *l);

#endif
