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
    const char *classes; /* --data-classes: keep the examples of these classes */
    bool val_split_set, limit_set;
} DataArgs;

#define DATA_CLI_OPTS(a)                                                                             \
    {"data", CLI_MULTI, &(a).data, "SRC",                                                            \
     "fashion-mnist (default), a directory of IDX files, CSV/NPY/safetensors files, "                \
     "text:FILE (characters), or uniform:N",                                                         \
     NULL},                                                                                          \
        {"val-data", CLI_STR, &(a).val_data, "SRC", "validation data (same forms as --data)", NULL}, \
        {"val-split", CLI_DOUBLE, &(a).val_split, "F",                                               \
         "hold out the last fraction F of the training data for validation", &(a).val_split_set},    \
        {"no-scale", CLI_FLAG, &(a).no_scale, NULL, "keep 8-bit pixels in 0..255", NULL},            \
        {"limit", CLI_INT, &(a).limit, "K", "use only the first K examples", &(a).limit_set},        \
        {"label-column", CLI_STR, &(a).label_col, "NAME|INDEX", "CSV label column", NULL},           \
        {"data-classes", CLI_STR, &(a).classes, "SET",                                               \
         "keep only the examples whose label is in SET (0-4, 5,7,9; labels keep their values; "      \
         "before --limit)",                                                                          \
         NULL}

/* The mc_data_options of the command line: sources src (NULL: --data),
 * the split, and the stream of generated data (0 train, 1 validation,
 * 2 test); seed applies when mo->seed_set. */
void data_options(const DataArgs *a, const mc_options *mo, const char *const *src, int nsrc,
                  const char *split, int stream, mc_data_options *o);

/* The usage error (exit 2) for an out-of-range data option of command
 * cmd (--limit below 1, --val-split outside [0, 1), a malformed
 * --data-classes), or 0. */
int data_args_check(const char *cmd, const DataArgs *a);

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
