/* modelc's inspection API: what the `modelc` commands that look inside a
 * model do, one function per command. Each takes a model file (.mdl or IR
 * text), an options struct (fill it with its _default function first)
 * and two streams: results go to `out`, diagnostics to `err` as
 * file:line:col: error: message, the source line and a caret. Each
 * returns 0 on success and 1 when the model, its data or a file is bad
 * (after printing why to err). Names are checked here too, but a program
 * that takes them from a user should check them against mc_fn_names()
 * and mc_pass_names() first, as the command line does. */
#ifndef MODELC_INSPECT_H
#define MODELC_INSPECT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "modelc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The compiled functions ("train_step", "eval", "predict", "grad",
 * "loss", "numerics"), NULL-terminated. */
const char *const *mc_fn_names(void);
/* The passes of the recipes in order ("lower", "verify", ...),
 * NULL-terminated. */
const char *const *mc_pass_names(void);

/* ---- modelc check: diagnostics, static warnings, a summary ---- */

typedef struct mc_check_options {
    bool quiet;     /* no "FILE: ok (...)" summary line */
    int max_errors; /* stop collecting after this many errors (0: no limit; default 20) */
} mc_check_options;

void mc_check_options_default(mc_check_options *o);
/* Load the model, print its diagnostics and the static warnings (from
 * the initializers and fan-in) to err, then "FILE: ok (P parameters, W
 * weights)" to out. 1 when the model has errors. */
int mc_check_file(const char *path, const mc_check_options *o, FILE *out, FILE *err);

/* ---- modelc params: the parameter table ---- */

typedef struct mc_params_options {
    const char *const *freeze; /* also treat parameters matching these globs as frozen */
    int nfreeze;
} mc_params_options;

void mc_params_options_default(mc_params_options *o);
/* A Keras-summary-like table of the model's parameters (name, shape,
 * dtype, initializer, status, count) with the trainable, non-trainable
 * and total counts and bytes. */
int mc_print_params(const char *path, const mc_params_options *o, FILE *out, FILE *err);

/* ---- modelc init: initial parameters ---- */

typedef struct mc_init_options {
    const char *output; /* the safetensors file to write (replaced atomically) */
    uint64_t seed;      /* seed of the random initializers ... */
    bool seed_set;      /* ... used when set; otherwise the model's train { seed } */
} mc_init_options;

void mc_init_options_default(mc_init_options *o);
/* Give every parameter its initial value and write them to o->output
 * with the format, its version, the model name and the seed in the
 * metadata; prints one line saying what was written. */
int mc_write_init(const char *path, const mc_init_options *o, FILE *out, FILE *err);

/* ---- modelc ir: a compiled function's IR ---- */

typedef struct mc_ir_options {
    const char *fn;     /* a function of mc_fn_names(); NULL: the model's graph as loaded
                           or, with `after` (other than "lower"), the default function:
                           grad with wrt, eval with mode MC_MODE_INFER, else train_step */
    const char *after;  /* stop the function's recipe after this pass, or NULL */
    mc_mode mode;       /* the mode specialize compiles for (DEFAULT: the function's) */
    mc_backend backend; /* JIT: the fused graph, as compiled; INTERP: unfused */
    bool dot;           /* Graphviz DOT instead of IR text (which parses back) */
    bool no_loc;        /* leave out the loc(...) source locations */
    bool stats;         /* node and kernel counts instead of the graph */
    bool mode_diff;     /* the training and inference graphs as one diff over the
                           model's graph (fn, after and dot are not used) */
    bool time_passes;   /* each pass's time to err */
    const char *const *wrt; /* also differentiate with respect to these inputs */
    int nwrt;
} mc_ir_options;

void mc_ir_options_default(mc_ir_options *o);
/* Print a function of the model exactly as the backend compiles it (or
 * its recipe stopped after a pass) to out. */
int mc_print_ir(const char *path, const mc_ir_options *o, FILE *out, FILE *err);

/* ---- modelc opt: one pass on IR text ---- */

typedef struct mc_opt_options {
    const char *pass;   /* a pass of mc_pass_names() (required) */
    mc_mode mode;       /* specialize's mode (DEFAULT: training) */
    bool dot, no_loc;   /* as in mc_ir_options */
    bool time_passes;   /* the pass's time to err */
    const char *const *wrt; /* autodiff: also differentiate with respect to these inputs */
    int nwrt;
} mc_opt_options;

void mc_opt_options_default(mc_opt_options *o);
/* Read IR text, verify it, run exactly one pass, verify the result and
 * print it to out (LLVM's opt). */
int mc_run_pass(const char *path, const mc_opt_options *o, FILE *out, FILE *err);

/* ---- modelc llvm: LLVM IR and the memory plan ---- */

typedef struct mc_llvm_options {
    const char *fn;     /* a function of mc_fn_names(); NULL: train_step with mode
                           MC_MODE_TRAIN, else predict (eval when the model has no
                           output values) */
    mc_mode mode;
    const char *after;  /* compile the function's recipe stopped after this pass, or NULL */
    bool optimized;     /* the IR after LLVM's optimisation (default: as generated) */
    int opt_level;      /* 0, 2 (default: modelc's loop pipeline) or 3 (LLVM's default<O3>) */
    bool fast_isel;     /* with time_passes: codegen at CodeGenLevelNone */
    bool time_passes;   /* also JIT-compile the module; pass and LLVM phase times to err */
    bool memory_plan;   /* instead of the IR: every temporary's offset, size and live range */
    int batch;          /* the batch size of the memory plan (default 128) */
} mc_llvm_options;

void mc_llvm_options_default(mc_llvm_options *o);
/* Print the LLVM IR generated for a function of the model (one function
 * per kernel and the entry function), or its memory plan, to out. */
int mc_print_llvm(const char *path, const mc_llvm_options *o, FILE *out, FILE *err);

/* ---- modelc grad: the loss and every gradient for one batch ---- */

typedef struct mc_grad_options {
    const char *output;  /* the safetensors file of the gradients grad.<name> (required) */
    const char *weights; /* parameter values (NULL: initialised with the seed) */
    const char *inputs;  /* the batch as safetensors (NULL: `batch` random examples,
                            floats uniform in [0, 1), labels uniform classes) */
    mc_backend backend;  /* default MC_BACKEND_INTERP */
    uint64_t seed;       /* initial weights and the random batch ... */
    bool seed_set;       /* ... when set; otherwise the model's train { seed } */
    int batch;           /* examples of the random batch (default 4) */
    const char *const *wrt; /* also differentiate with respect to these inputs */
    int nwrt;
} mc_grad_options;

void mc_grad_options_default(mc_grad_options *o);
/* Evaluate the grad function on one batch, print the loss, write the
 * gradients. A NaN or infinite loss or gradient is an error naming the
 * first op that produced one. */
int mc_write_grads(const char *path, const mc_grad_options *o, FILE *out, FILE *err);

/* ---- modelc gradcheck: symbolic gradients against differences ---- */

typedef struct mc_gradcheck_options {
    uint64_t seed;    /* weights, inputs and sampled elements ... */
    bool seed_set;    /* ... when set; otherwise the model's train { seed } */
    double eps;       /* finite-difference step (default 1e-6) */
    double atol, rtol; /* |analytic - numeric| <= atol + rtol * |numeric| (1e-5, 1e-3) */
    int batch;        /* examples in the random batch (default 4) */
    int samples;      /* elements checked per parameter at most (default 64) */
    bool f32;         /* instead of the check: the precision report of the f32 gradients */
    mc_backend backend; /* with f32: MC_BACKEND_JIT adds the compiled, fused gradients
                           (default MC_BACKEND_INTERP: the unfused ones only) */
} mc_gradcheck_options;

void mc_gradcheck_options_default(mc_gradcheck_options *o);
/* Compare the symbolic gradients with central differences of the loss,
 * in f64, on random weights and a random batch: one row per trainable
 * parameter to out (elements checked, kink crossings, skipped,
 * mismatched). A difference whose two evaluations take different
 * branches of a piecewise op (relu, max pooling, abs, maximum, a
 * comparison, ...) is taken again with eps / 10, / 100 and / 1000, then
 * one-sided, or skipped; every crossing is listed with the op and its
 * model line; on a mismatch, the first op whose gradient rule disagrees
 * with its own finite difference on the batch's values is named in a
 * note. 1 on a mismatch too.
 * With f32: no check but a report, per parameter, of the error of the
 * f32 gradients (unfused on the interpreter, and fused as the JIT
 * compiles them with backend JIT) against the f64 gradients of the same
 * weights and batch, as max |g32 - g64| / max |g64|. */
int mc_gradcheck(const char *path, const mc_gradcheck_options *o, FILE *out, FILE *err);

/* ---- modelc stats: statistics and numerics ---- */

typedef struct mc_stats_options {
    mc_data_options data; /* sources, no_scale, limit and label_column (the training split) */
    const char *weights;  /* parameters (NULL: initialised with the seed) */
    const char *compare;  /* a second checkpoint, shown side by side (after), or NULL */
    const char *plot;     /* histograms to this .svg or .png file, or NULL */
    int batches;          /* batches evaluated (default 4) */
    int batch;            /* examples per batch (0: the model's, at most 64) */
    uint64_t seed;        /* initial weights and dropout ... */
    bool seed_set;        /* ... when set; otherwise the model's train { seed } */
    bool hist;            /* text histograms */
    bool json;            /* one JSON object instead of tables */
    bool no_warn;         /* no static warnings before the tables */
    const char *tensorboard; /* also write the statistics as TensorBoard events into this
                                directory: step 0, the compared checkpoint's step 1 */
    bool numerics;        /* instead: one step on the first batch, naming the first op
                             that produces a NaN or Inf (then 1) */
    mc_mode mode;         /* the mode of that step (DEFAULT: training) */
    const char *const *forward_diff; /* instead: these models against this one, in
                                        inference mode, on the first batch */
    int nforward_diff;
} mc_stats_options;

void mc_stats_options_default(mc_stats_options *o);
/* Forward and backward passes in training mode with the interpreter on
 * the first batches of the data, summarised per layer and per parameter
 * (mean, std, min, max and norm of weights, pre-activations, activations
 * and gradients; saturation, dead ReLUs, gradient norm ratios), printed
 * to out after the static warnings (estimated with the data's
 * statistics) on err. */
int mc_stats(const char *path, const mc_stats_options *o, FILE *out, FILE *err);

/* ---- watching a training run (modelc train) ---- */

/* The static warnings of mc_check_file for m's model, estimated with the
 * statistics of the training data, printed to f. */
void mc_static_warnings(const mc_model *m, const mc_data *train, FILE *f);

typedef struct mc_watch mc_watch;

/* Examples evaluated at each watch record: the first ones of the
 * training data, in batches of at most the training batch size. */
#define MC_WATCH_SAMPLE 64

typedef struct mc_watch_options {
    int every;            /* -1: no watching; 0: a record at each epoch's end; K > 0: also
                             every K steps */
    const char *plot_dir; /* curves and gradient norms drawn there at the end, or NULL */
    bool check_numerics;  /* check every step's gradients and new parameters for NaN/Inf */
    bool json;            /* the run prints JSON lines on out: the watch's text goes to err */
    int batch;            /* the training batch size */
    const char *tensorboard; /* write TensorBoard event files into this directory (created
                                when missing), or NULL */
} mc_watch_options;

void mc_watch_options_default(mc_watch_options *o);
/* Prepare to watch m's training on `train` (compile m with
 * mc_options.telemetry when watching or checking numerics). Text goes to
 * out (err with json), reports to err. NULL after printing why to err. */
mc_watch *mc_watch_new(mc_model *m, const mc_watch_options *o, const mc_data *train, FILE *out, FILE *err);
void mc_watch_free(mc_watch *w);

/* The NaN/Inf guard. Before each step: keep the parameters (weights,
 * state, optimizer slots) that a step with a NaN or infinite loss may
 * change (with check_numerics: every parameter); a compiled step skips
 * its updates after the loss when the loss is not finite, so for most
 * models that is none. mc_watch_before_last_step keeps every parameter:
 * call it instead before a step after which mc_watch_params_finite is
 * asked (the last of an epoch that ends with a checkpoint). After a step
 * with a finite loss: collect its
 * telemetry and, with check_numerics, check its gradients and new
 * parameters; false (after restoring the parameters from before the step
 * and re-running it op by op with the interpreter to name the first op
 * that produced a NaN or Inf, on err) when training must stop. After a
 * step whose loss is not finite: restore and explain the same way.
 * Epoch and batch index (0-based) are for the messages. */
void mc_watch_before_step(mc_watch *w);
void mc_watch_before_last_step(mc_watch *w);
bool mc_watch_after_step(mc_watch *w, int epoch, int64_t batch_index, double lr);
void mc_watch_step_failed(mc_watch *w, int epoch, int64_t batch_index, double lr);
/* Are all parameters finite (checked before a checkpoint is written)?
 * When not: restore, explain as above and return false. */
bool mc_watch_params_finite(mc_watch *w, int epoch, double lr);

/* Is a record due after the step that made mc_step(m) == step (inside
 * an epoch)? */
bool mc_watch_record_due(const mc_watch *w, int64_t step);
/* Take a record in epoch `epoch` (1-based) after `step` steps; x is the
 * position in epochs for the curves; epoch_end marks the record at the
 * end of an epoch. Prints the summary and warnings (a layer saturates,
 * its ReLUs die, its gradient vanishes) to the text stream. */
bool mc_watch_record(mc_watch *w, int epoch, int64_t step, double x, bool epoch_end);
/* The watch's figures of the last record: CSV header fields and values
 * (each preceded by a comma), or `, "watch": {...}` for a JSON line;
 * nothing when not watching. */
void mc_watch_csv_header(const mc_watch *w, FILE *f);
void mc_watch_csv_row(const mc_watch *w, FILE *f);
void mc_watch_json(const mc_watch *w, FILE *f);
/* A per-epoch metric ("loss", "accuracy", "val_loss", ...) for the curves. */
void mc_watch_metric(mc_watch *w, int epoch, const char *name, double value);
/* TensorBoard (mc_watch_options.tensorboard): after each step its loss
 * and learning rate (tags step/loss, step/lr at the global step); at the
 * end of an epoch the epoch's learning rate (epoch/lr; the metrics given
 * to mc_watch_metric are epoch/NAME, all at step = the epoch number), then
 * the buffered events are written. Each watch record adds
 * grad_norm/LAYER and update_ratio/PARAM scalars and weights/PARAM,
 * gradients/PARAM and activations/LAYER histograms at the global step.
 * mc_watch_epoch_end returns false after printing why the file could not
 * be written. mc_watch_events_path: the event file, or NULL. */
void mc_watch_step_loss(mc_watch *w, int64_t step, double loss, double lr);
bool mc_watch_epoch_end(mc_watch *w, int epoch, double lr);
const char *mc_watch_events_path(const mc_watch *w);
/* At the end of training: the pictures in plot_dir (created when missing). */
bool mc_watch_finish(mc_watch *w);

/* ---- modelc convert-weights: PyTorch or Keras weights as a checkpoint ---- */

typedef enum { MC_FROM_TORCH, MC_FROM_KERAS } mc_weights_from;

typedef struct mc_convert_options {
    mc_weights_from from; /* the naming and layouts of the input */
    const char *input;    /* safetensors: a PyTorch state_dict or Keras weights */
    const char *output;   /* the checkpoint to write */
} mc_convert_options;

/* Map the input's tensors onto the parameters of the model at path: by
 * layer name where the names match, otherwise in order with kinds and
 * shapes checked; PyTorch's [out, in] and OIHW kernels transposed, a dense
 * kernel after a flatten of a convolution's output permuted from NCHW to
 * NHWC order. One line per tensor on out ("fc1.weight [256,784] ->
 * dense.kernel [784,256] (transposed)"); an ambiguity or shape mismatch is
 * an error naming the input. Returns 0, or 1 after printing why. */
int mc_convert_weights(const char *path, const mc_convert_options *o, FILE *out, FILE *err);

/* ---- modelc compile: an object file and a C header (ahead of time) ---- */

typedef struct mc_aot_options {
    const char *output;       /* the relocatable object to write (required) */
    const char *header;       /* the C header to write (required) */
    const char *weights;      /* parameter values (safetensors); NULL: the initialisers with the seed */
    const char *const *fns;   /* "predict", "eval", "train_step" (default: predict only) */
    int nfns;
    int64_t batch;            /* > 0: exactly this batch */
    int64_t batch_max;        /* > 0: any batch up to this (default: the train block's batch) */
    bool weights_file;        /* embed no values: the program passes a safetensors file to _init */
    const char *name;         /* C identifier prefixing every symbol (default: the model's name) */
    const char *target;       /* LLVM target triple (NULL: the host) */
    const char *cpu;          /* CPU name (NULL: the host's; "generic" with a target) */
    uint64_t seed;            /* initialisation and dropout seed ... */
    bool seed_set;            /* ... when set (default: the train block's) */
} mc_aot_options;

void mc_aot_options_default(mc_aot_options *o);
/* Compile the model's functions from the same recipes, plan and LLVM
 * pipeline as the JIT into one object for the host (or o->target) and
 * write the header that declares them (docs/aot.md). A summary line goes
 * to out. 1 on a bad model, weights file, option or target. */
int mc_compile_aot(const char *path, const mc_aot_options *o, FILE *out, FILE *err);

#ifdef __cplusplus
}
#endif

#endif
