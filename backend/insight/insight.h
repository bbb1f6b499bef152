/* Seeing why a network trains the way it does: per-layer statistics of
 * weights, pre-activations, activations and gradients (saturation, dead
 * ReLUs, gradient norm ratios), update ratios, training-time watching with
 * clipping telemetry and curves, the op that first produced a NaN/Inf,
 * and the differences between the training and inference graphs. All of
 * it evaluates with the reference interpreter. */
#ifndef MODELC_INSIGHT_H
#define MODELC_INSIGHT_H

#include "backend/interp/interp.h"
#include "backend/insight/warn.h"
#include "runtime/io/io.h"

/* ---- summaries of many values (stats.c) ---- */

/* Running summary of values seen in `batches` evaluations. `norm` is the
 * L2 norm of one evaluation's values, root-mean-squared over the
 * evaluations (the plain L2 norm when there is one). */
typedef struct InsAcc {
    int64_t count, nonfinite;
    double sum, sumsq, min, max;
    double norm2_sum; /* sum over evaluations of (L2 norm)^2 */
    int batches;
    /* every `stride`-th value, for histograms (at most INS_SAMPLES; the
     * stride doubles when they fill up); NULL when not kept */
    double *samples;
    int nsamples;
    int64_t stride, seen;
} InsAcc;

#define INS_SAMPLES 65536

typedef struct InsSummary {
    bool valid; /* something was seen */
    double mean, std, min, max, norm;
    int64_t count, nonfinite;
} InsSummary;

void ins_acc_init(InsAcc *a, bool keep_samples);
void ins_acc_free(InsAcc *a);
/* Add one evaluation's values (every element of t). */
void ins_acc_add(InsAcc *a, const Tensor *t);
InsSummary ins_acc_summary(const InsAcc *a);

/* ---- per-layer and per-parameter statistics (stats.c) ---- */

typedef struct InsLayerStats {
    const char *name;
    ActKind act;
    SrcLoc loc;
    bool has_act;          /* the layer ends in an activation */
    InsAcc pre, out;       /* pre-activation; activation (= pre when linear) */
    InsAcc grad_pre, grad_out; /* dL/dpre, dL/dout */
    int64_t saturated, sat_total;   /* sigmoid/tanh outputs within 1% of a bound */
    int64_t units;         /* relu: features on the last axis */
    bool *alive;           /* relu: unit was > 0 for some example */
    double grad_norm2_sum; /* sum over batches of ||grad of the layer's trainable params||^2 */
    bool has_grad;
} InsLayerStats;

typedef struct InsParamStats {
    const char *name, *layer;
    Node *node;
    bool trainable;
    InsAcc w, g;
} InsParamStats;

/* A model prepared for statistics: specialized for training, with a probe
 * (a zero input added to the value) on every layer's pre-activation and
 * activation so autodiff also yields dL/dpre and dL/dout, differentiated
 * (no optimizer update), with the values of interest as outputs. */
typedef struct InsModel InsModel;

InsModel *ins_model_new(const Graph *src, Diags *d);
void ins_model_free(InsModel *m);
const PsLayers *ins_model_layers(const InsModel *m);
Graph *ins_model_graph(InsModel *m);

typedef struct InsStats {
    const char *model;
    int nlayers, nparams;
    InsLayerStats *layers;
    InsParamStats *params;
    int batches;
    int64_t examples;
    double loss_sum;   /* sum over batches of the loss */
    bool hist;         /* keep samples for histograms */
} InsStats;

/* Start statistics for m (hist: keep value samples for histograms). */
void ins_stats_init(InsStats *s, InsModel *m, bool hist);
void ins_stats_free(InsStats *s);
/* Evaluate one batch (forward and backward with the interpreter) and add
 * it. Weights are summarised from the first call's params. */
bool ins_stats_add_batch(InsStats *s, InsModel *m, const TensorMap *params, const TensorMap *batch,
                         const RunOpts *ro, Diags *d);

/* Derived figures, valid after at least one batch. */
double ins_layer_saturation(const InsLayerStats *l); /* fraction, or -1 when not sigmoid/tanh */
int64_t ins_layer_dead(const InsLayerStats *l);      /* dead relu units, or -1 when not relu */
double ins_layer_grad_norm(const InsLayerStats *l, int batches); /* -1 without gradients */
/* Gradient norm of layer i over the last layer's that has gradients. */
double ins_layer_grad_ratio(const InsStats *s, int i);
/* ||grad W|| / ||W|| of parameter i (-1 when frozen or ||W|| = 0). */
double ins_param_grad_ratio(const InsStats *s, int i);

/* Mean and variance of every float input of g found in data (over all its
 * elements), for ps_warn's estimates. Names point into g; release with
 * ins_input_stats_free. */
void ins_input_stats(const Graph *g, const Dataset *data, WarnInputs *out);
void ins_input_stats_free(WarnInputs *w);

/* ps_warn's static warnings for g, estimated with the statistics of the
 * data ds, printed to f (stats_cmd.c). */
void ins_static_warnings(const Graph *g, const Dataset *ds, int batch, FILE *f);

/* ---- printing (report.c) ---- */

/* Tables of layers and parameters. */
void ins_stats_print(const InsStats *s, FILE *f);
/* Text histograms (bins bars of at most width characters) of each layer's
 * pre-activations, activations and gradients and each weight and weight
 * gradient; with b (may be NULL), b's counts in a second column over the
 * same bins. */
void ins_stats_print_hist(const InsStats *a, const InsStats *b, FILE *f, int bins, int width);
/* Two runs side by side (before, after): same model. */
void ins_stats_print_compare(const InsStats *a, const InsStats *b, const char *label_a,
                             const char *label_b, FILE *f);
/* One JSON object (b may be NULL; with b: {"before":..,"after":..}). */
void ins_stats_print_json(const InsStats *a, const InsStats *b, FILE *f);
/* Histograms as a picture: .svg or .png by the extension of path; with b,
 * before and after are overlaid. */
bool ins_stats_plot(const InsStats *a, const InsStats *b, const char *path, Diags *d);

/* ---- update ratios (watch.c) ---- */

/* ||after - before|| / ||before|| for two tensors of the same shape
 * (-1 when the shapes differ; +inf when before is all zeros and after is
 * not, 0 when both are). */
double ins_update_ratio(const Tensor *before, const Tensor *after);
/* One line per trainable parameter of g present in both maps:
 *   "  update |dW|/|W|  dense.kernel  3.2e-03" ... */
void ins_print_update_ratios(const Graph *g, const TensorMap *before, const TensorMap *after,
                             FILE *f);

/* TensorBoard (watch.c): per-layer gradient norms (grad_norm/LAYER) and
 * histograms of weights, gradients (weights/PARAM, gradients/PARAM) and
 * activations (activations/LAYER) of statistics kept with hist. */
void ins_tb_stats(RtEvents *ev, const InsStats *s, int64_t step);

/* ---- watching a training run (watch.c) ---- */

typedef struct WatchOpts {
    int every;           /* ins_watch_epoch: record every `every` epochs (default 1) */
    uint64_t seed;       /* dropout masks of the sample evaluations */
    bool quiet;          /* only warnings, no summary lines */
    RtEvents *events;    /* TensorBoard: each record's figures and histograms go there too */
} WatchOpts;

typedef struct Watch Watch;

/* Where a record is taken: in epoch `epoch` (1-based) after `step`
 * optimizer steps in all; x is the position in epochs for the curves
 * (epoch - 1 + the fraction of the epoch done); epoch_end marks the
 * record taken when the epoch is complete. */
typedef struct WatchPoint {
    int epoch;
    int64_t step;
    double x;
    bool epoch_end;
} WatchPoint;

/* src: the model as loaded (source graph). NULL after reporting to d. */
Watch *ins_watch_new(const Graph *src, const WatchOpts *o, Diags *d);
void ins_watch_free(Watch *w);
/* Take a record at pt: evaluate forward and backward on the sample
 * batches (nbatches maps of inputs by name) with the `after` parameters,
 * and keep per layer the activation norm, the gradient norm of its
 * parameters, that norm relative to the last layer's, the saturated
 * fraction (sigmoid/tanh) and the dead fraction (relu); per learned
 * parameter ||W||, ||grad W||, ||grad W|| / ||W||, the update ratio
 * ||after - before|| / ||before|| (before may be NULL) and the step
 * telemetry since the last record (ins_watch_step / ins_watch_clip_step).
 * Printed to log (may be NULL):
 *   watch: epoch 3: update |dW|/|W|: w1 2.1e-03, w2 1.3e-05
 *   watch: epoch 3: grad norm vs last layer: dense 0.0042, dense_1 0.31
 *   watch: epoch 3: clip by value 4.5: fired in 37 of 100 steps; dense.kernel 12% of elements
 *   watch: epoch 3: clip by norm 1: fired in 12 of 100 steps (12%), mean pre-clip norm 0.84, largest 3.1 x the threshold
 * and, when a layer starts to be saturated, dead or vanishing (once per
 * layer and kind until it recovers), also in quiet mode:
 *   watch: epoch 3: warning: layer 'dense' (m.mdl:10:5) is saturated: 72% of its sigmoid outputs within 1% of a bound
 *   watch: epoch 3: warning: layer 'dense' (m.mdl:9:5) has 9 of 16 ReLU units dead (zero for every example)
 *   watch: epoch 3: warning: layer 'dense' (m.mdl:9:5) gradient vanishes: norm 4.1e-09, 2.3e-04 x the last layer's
 * (a record inside an epoch says "epoch 3, step 120:"). Returns false
 * (after reporting to d) when the evaluation fails. */
bool ins_watch_record(Watch *w, const WatchPoint *pt, const TensorMap *before,
                      const TensorMap *after, const TensorMap *batches, int nbatches, FILE *log,
                      Diags *d);
/* ins_watch_record at the end of epoch `epoch` with one sample batch,
 * when epoch is a multiple of o->every. */
bool ins_watch_epoch(Watch *w, int epoch, const TensorMap *before, const TensorMap *after,
                     const TensorMap *batch, FILE *log, Diags *d);
/* The figures of the last record as CSV: the header fields (each
 * preceded by a comma; "layer.<name>.<figure>", "param.<name>.<figure>",
 * "clip.<figure>") and the matching values (empty when unknown). */
void ins_watch_csv_header(const Watch *w, FILE *f);
void ins_watch_csv_row(const Watch *w, FILE *f);
/* The last record as one JSON object {"layers": {...}, "params": {...},
 * "clip": {...}, "warnings": [...]} (null for unknown figures). */
void ins_watch_json(const Watch *w, FILE *f);
/* Warnings printed by the last record (0 when none). */
int ins_watch_nwarnings(const Watch *w);
/* Per-epoch metrics for the curves (name: "loss", "accuracy",
 * "val_loss", "val_accuracy", ...). */
void ins_watch_metric(Watch *w, int epoch, const char *name, double value);
/* Telemetry of one optimizer step from the training graph's outputs
 * (ps_optimizer with train.telemetry): "grad_sq.<param>" (sum of squares
 * of the raw gradient), "clip_frac.<param>" (fraction of elements beyond
 * clip_value), "clip_norm" (the global norm compared with clip_norm);
 * other names are ignored. Summed until the next record. */
void ins_watch_step(Watch *w, const char *const *names, const double *values, int n);
/* The same from the raw (unclipped) gradients of one step as
 * "grad.<param>" tensors (for a trainer that has them, e.g. the
 * interpreter). */
void ins_watch_clip_step(Watch *w, const TensorMap *grads);
/* Pictures of the recorded series into dir (created when missing):
 * curves.svg/.png (loss-like metrics in one panel, the others in a
 * second, per epoch) and grad_norms.svg/.png (per-layer gradient norm per
 * record, log scale). */
bool ins_watch_plots(Watch *w, const char *dir, Diags *d);

/* A line chart of named series over epochs as SVG or PNG (by extension):
 * xs shared, ys[i] with NAN for a missing point. */
typedef struct InsSeries {
    const char *name;
    const double *y;
} InsSeries;
bool ins_plot_curves(const char *path, const char *title, const char *ylabel, bool logy,
                     const double *x, int npoints, const InsSeries *s, int nseries, Diags *d);

/* ---- NaN/Inf origin (numerics.c) ---- */

typedef enum { INS_NUM_FINITE, INS_NUM_FOUND, INS_NUM_ERROR } InsNumResult;

typedef struct NumericsOpts {
    Mode mode;       /* the mode the step ran in (MODE_TRAIN for modelc train) */
    bool update;     /* also evaluate the optimizer update (slots must be in params) */
    double lr;       /* learning rate of the step; <= 0: the model's */
} NumericsOpts;

typedef struct InsNumerics InsNumerics;

/* Prepare src (the model as loaded, or an already specialized and
 * differentiated graph without FUSED nodes) for checking steps. */
InsNumerics *ins_numerics_new(const Graph *src, const NumericsOpts *o, Diags *d);
void ins_numerics_free(InsNumerics *n);
/* The step number the report prints (a trainer's 1-based count); by
 * default RunOpts.step. */
void ins_numerics_step_label(InsNumerics *n, int64_t step);
/* Evaluate one step (forward, backward, and update when asked) for params
 * and batch with ro (seed, step: the same dropout masks as the failing
 * step). When an output is NaN/Inf, find the first op whose non-finite
 * value flows into it and print a report to out: the op, forward /
 * backward / update, its source line with a caret, the operands' ranges.
 * Nothing is updated. */
InsNumResult ins_numerics_check(InsNumerics *n, const TensorMap *params, const TensorMap *batch,
                                const RunOpts *ro, FILE *out);
/* One-shot form of the two calls above. */
InsNumResult ins_nan_origin(const Graph *src, const TensorMap *params, const TensorMap *batch,
                            const RunOpts *ro, const NumericsOpts *o, FILE *out);

/* ---- training vs inference graph (modediff.c) ---- */

/* Print src's nodes once, marked ' ' in both specialized graphs, '-' only
 * in the training graph, '+' only in the inference graph, '~' a phase node
 * (resolved differently per mode), '!' in neither (the training branch of
 * a frozen layer); then a summary of batchnorm, dropout and frozen
 * parameters. flags: IR_PRINT_NO_LOC. */
bool ins_mode_diff(Graph *src, const RunSettings *run, FILE *f, unsigned flags, Diags *d);

/* ---- which op's gradient rule is wrong (vjpcheck.c) ---- */

/* Check the gradient rule of every differentiable op of g (a loss
 * function, unfused, f64) on its own, on the values of this batch: a
 * random cotangent u and direction v, u^T J v by the rule against the
 * op's central difference. A note at the first op that disagrees names
 * it with its operand types; when none does, a note says so. Returns the
 * op's position in g->nodes, or -1. */
int ins_vjp_first_wrong(Graph *g, const TensorMap *params, const TensorMap *inputs, const RunOpts *ro,
                        uint64_t seed, Diags *d);

#endif
