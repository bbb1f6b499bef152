/* What `modelc train` does around its steps to explain them: the static
 * warnings before training, watching (per-layer statistics on a sample
 * of the training data, step telemetry, warnings, CSV/JSON columns,
 * curves), and the NaN/Inf guard that keeps the parameters before each
 * step so a step that produces a non-finite value can be re-run op by
 * op and undone. */
#ifndef MODELC_TRAIN_WATCH_H
#define MODELC_TRAIN_WATCH_H

#include <stdio.h>

#include "backend/driver/api_internal.h"
#include "backend/insight/insight.h"

typedef struct TrainWatchOpts {
    int watch;            /* -1 off; 0 at each epoch end; K > 0 also every K steps */
    const char *plot_dir; /* curves at the end, or NULL */
    bool check_numerics;  /* check every step (loss, gradients, new parameters) */
    bool json;            /* per-epoch output is JSON lines: text goes to stderr */
    int batch;            /* training batch size */
} TrainWatchOpts;

typedef struct TrainWatch TrainWatch;

/* Examples evaluated at each watch record (the first ones of the
 * training data, in batches of at most the training batch size). */
#define TW_SAMPLE_EXAMPLES 64

/* Print ps_warn's warnings for src, estimated with the statistics of the
 * training data, to f. */
void tw_static_warnings(const Graph *src, const Dataset *train, FILE *f);

/* Prepare for model m (compiled with mc_options.telemetry when watching
 * or checking). NULL after reporting to d. */
TrainWatch *tw_new(mc_model *m, const TrainWatchOpts *o, const Dataset *train, Diags *d);
void tw_free(TrainWatch *t);
/* The watch columns of the CSV log (each preceded by a comma), none
 * when not watching. */
void tw_csv_header(const TrainWatch *t, FILE *f);

/* Before each step: keep the parameters (all of them, optimizer slots
 * and state included). */
void tw_before_step(TrainWatch *t);
/* After a step that returned a finite loss: collect telemetry; with
 * --check-numerics check the step's gradients and new parameters.
 * Returns false (after restoring the parameters and printing the origin
 * of the first non-finite value to stderr) when training must stop. */
bool tw_after_step(TrainWatch *t, int epoch, int64_t batch_index, double lr);
/* After a step whose loss was not finite: restore the parameters from
 * before it and print where the first non-finite value came from. */
void tw_step_failed(TrainWatch *t, int epoch, int64_t batch_index, double lr);
/* Are the parameters finite (checked before a checkpoint is written)?
 * When not, restore the parameters from before the last step, report
 * and return false. */
bool tw_params_finite(TrainWatch *t, int epoch, double lr);

/* Is a record due after the step that made mc_step(m) == step (inside
 * an epoch, not at its end)? */
bool tw_record_due(const TrainWatch *t, int64_t step);
/* Take a record (statistics on the sample, warnings and summary printed
 * to the text stream). */
bool tw_record(TrainWatch *t, int epoch, int64_t step, double x, bool epoch_end, Diags *d);
/* The last record as CSV fields / as `, "watch": {...}` for a JSON line
 * (nothing when not watching). */
void tw_csv_row(const TrainWatch *t, FILE *f);
void tw_json(const TrainWatch *t, FILE *f);
/* Per-epoch metric for the curves. */
void tw_metric(TrainWatch *t, int epoch, const char *name, double value);
/* At the end of training: the pictures. */
bool tw_finish(TrainWatch *t, Diags *d);

#endif
