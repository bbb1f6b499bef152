/* modelc's public C API: compile a model file, initialise or load its
 * parameters, run training steps on batches, evaluate, predict, save.
 * All handles are opaque; every function that can fail returns false (or
 * NULL) and leaves a message in mc_last_error(). Training and inference are
 * separately compiled functions: there is no hidden global mode. */
#ifndef MODELC_H
#define MODELC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mc_model mc_model;

#define MC_MAX_METRICS 16 /* metrics reported per model, at most */

typedef enum { MC_BACKEND_JIT, MC_BACKEND_INTERP } mc_backend;

/* Which graph a training step runs. MC_MODE_TRAIN (the default): batchnorm
 * normalises with the batch statistics and updates its moving averages,
 * dropout is active. MC_MODE_INFER trains the inference graph instead
 * (moving statistics, never updated; no dropout), as a hand-written step
 * that ran the model in inference mode would: almost always a mistake
 * (scenario S1), so compiling it warns (mc_warnings) when the model has
 * batchnorm or dropout. Likewise eval_mode = MC_MODE_TRAIN evaluates with
 * batch statistics and active dropout (without updating anything), as
 * calling a Keras model with training=True at evaluation would: it warns
 * too. */
typedef enum { MC_MODE_DEFAULT, MC_MODE_TRAIN, MC_MODE_INFER } mc_mode; /* DEFAULT: train / infer */
/* The arithmetic of f32 GEMMs (dense layers, im2col convolutions, their
 * gradients): F32, or BF16: the operands of every GEMM of 16 rows or
 * more rounded to bf16, products summed in f32 (AMX tiles, else
 * AVX512-BF16); smaller GEMMs (batch-1 inference), parameters, optimizer
 * state and every other op stay f32. BF16 needs the JIT and a CPU with
 * AMX-BF16 or AVX512-BF16. */
typedef enum { MC_PRECISION_F32, MC_PRECISION_BF16 } mc_precision;

typedef struct mc_options {
    mc_backend backend;
    int threads;          /* 0 = number of cores */
    uint64_t seed;        /* initialisation, shuffling and dropout */
    bool seed_set;        /* override the model's train { seed } */
    const char **freeze;  /* extra freeze patterns (globs) */
    int nfreeze;
    bool telemetry;       /* training steps also report gradient and clipping figures */
    mc_mode train_mode;   /* the graph mc_train_step differentiates (default MC_MODE_TRAIN) */
    mc_mode eval_mode;    /* the graph mc_eval_batch runs (default MC_MODE_INFER) */
    const char *cache_dir; /* JIT object cache directory; NULL = no cache */
    bool profile;         /* time every kernel of the training step (JIT) */
    bool eval_only;       /* JIT: do not compile the training step (mc_train_step fails) */
    bool time_passes;     /* time every compile stage (mc_time_report) */
    const char *dump_ir;  /* a directory: write <fn>.ir there for each function (train_step,
                             eval, predict) when it is compiled (JIT) or first run
                             (interpreter), the IR exactly as it runs */
    bool distributed;     /* data-parallel training: one process of an MPI job (mpirun -np K);
                             see "Data-parallel training" below */
    bool deterministic_reduce; /* distributed: sum the gradients in rank order (bit-reproducible
                                  from run to run) instead of MPI_Allreduce's order */
    double dist_timeout;  /* distributed: seconds a process waits in a sum for the others before
                             it gives up, naming those that do not answer; 0 = 300 */
    double dist_bucket_mb; /* distributed, JIT: the gradients are summed in buckets of about this
                              many MiB, each started as soon as the backward pass has finished its
                              gradients; 0 = 4 */
    mc_precision precision; /* f32 GEMMs' arithmetic (default MC_PRECISION_F32) */
} mc_options;

void mc_options_default(mc_options *o);
/* The JIT object cache directory of this user, for mc_options.cache_dir:
 * $XDG_CACHE_HOME/modelc or ~/.cache/modelc. False when neither
 * variable is set or buf (n bytes) is too small. */
bool mc_default_cache_dir(char *buf, size_t n);
/* Give back the memory that compiling took and running does not need:
 * the resident pages of LLVM's machine code (tens of megabytes; a later
 * compile reads them again from the library file) and free heap memory.
 * Call after the last compile of a run (mc_compile, mc_prepare_eval, the
 * first mc_predict); returns by how many bytes the process's resident
 * file pages fell (0 where LLVM is linked in statically). */
int64_t mc_release_compiler_memory(void);

/* Compile a model file (.mdl or .ir). Diagnostics go to mc_last_error(). */
mc_model *mc_compile(const char *path, const mc_options *o);
void mc_free(mc_model *m);
const char *mc_last_error(const mc_model *m); /* also valid for m == NULL after mc_compile */
/* The BLAS kernels compiled code calls, in words ("OpenBLAS SkylakeX
 * kernels ..."): OpenBLAS's choice for this CPU, re-selected by the CPU's
 * instruction set when it fell below AVX2 on a CPU with AVX2 and FMA
 * (MODELC_BLAS_AS_LOADED=1 in the environment keeps the library's). */
const char *mc_blas_info(void);
/* Warnings of the compilation (file:line:col, source line, notes), "" if none. */
const char *mc_warnings(const mc_model *m);

/* With mc_options.time_passes: a table of where compile time went so far
 * (frontend, each pass, each LLVM phase), slowest first; "" otherwise.
 * Owned by m, valid until the next call or mc_free. */
const char *mc_time_report(mc_model *m);

/* The model's name (its `model` line). */
const char *mc_model_name(const mc_model *m);
/* True when the model has a loss: it can be trained and evaluated. A
 * model without one compiles for mc_predict only. */
bool mc_has_loss(const mc_model *m);

/* Parameters (weights, batchnorm state, optimizer slots). */
bool mc_init_params(mc_model *m, uint64_t seed);
/* Load a checkpoint. only_pattern NULL: everything, including step and
 * epoch (strict: the checkpoint must hold every parameter and nothing
 * else). Otherwise a partial load (transfer learning): the tensors whose
 * names match the glob and are parameters of this model; optimizer slots
 * only when the pattern starts with "optimizer."; step and epoch are not
 * taken; matching nothing is an error. */
bool mc_load(mc_model *m, const char *path, const char *only_pattern, bool strict);
bool mc_save(mc_model *m, const char *path);

/* A batch: named host arrays in row-major order, dtype as declared. */
typedef struct mc_tensor {
    const char *name;
    int dtype; /* 0 f32, 1 f64, 2 i32 */
    int rank;
    const int64_t *dims;
    void *data;
} mc_tensor;

/* One optimizer step in training mode; *loss receives the pre-update loss. */
bool mc_train_step(mc_model *m, const mc_tensor *batch, int nbatch, double lr, double *loss);
/* mc_train_step that also gives the batch's metrics, pre-update and in
 * training mode, in metrics[i] (the order of mc_metric_name; metrics
 * may be NULL). */
bool mc_train_step_metrics(mc_model *m, const mc_tensor *batch, int nbatch, double lr, double *loss,
                           double *metrics);
/* Loss and metrics in inference mode (metrics[i] in the order of mc_metric_name). */
bool mc_eval_batch(mc_model *m, const mc_tensor *batch, int nbatch, double *loss,
                   double *metrics, int nmetrics);
/* The JIT compiles the inference function on first use, so the first
 * mc_eval_batch also pays for that compile (tens of milliseconds).
 * mc_prepare_eval compiles it now, e.g. to time inference alone; later
 * calls, and any call with the interpreter backend, do nothing. False
 * (mc_last_error) when the model has no loss or the compile fails. */
bool mc_prepare_eval(mc_model *m);
/* The model's output values (its `output` lines) for a batch, computed in
 * inference mode by the predict function (compiled on first use): *outs
 * receives *nouts tensors named as the outputs, owned by m and valid until
 * the next mc_predict or mc_free. Inputs the outputs do not read may be
 * left out. */
bool mc_predict(mc_model *m, const mc_tensor *batch, int nbatch, const mc_tensor **outs, int *nouts);
/* A parameter's current value (a weight, batchnorm statistic or optimizer
 * slot) as a view owned by m: valid until the next training step, load or
 * mc_free. False when the model has no such parameter or it has no value
 * yet. */
bool mc_get_param(mc_model *m, const char *name, mc_tensor *out);
/* Whether the JIT has compiled function fn ("train_step", "eval",
 * "predict") so far; always false with the interpreter. */
bool mc_is_compiled(const mc_model *m, const char *fn);
/* The model's inputs (its `input` lines; not the learning rate the
 * optimizer reads), in declaration order: *out receives the name, dtype,
 * rank and dimensions, -1 standing for the batch dimension N, and data
 * NULL; the name and dimensions are owned by m. False when i is out of
 * range. */
int mc_num_inputs(const mc_model *m);
bool mc_input_info(const mc_model *m, int i, mc_tensor *out);
int mc_num_metrics(const mc_model *m);
const char *mc_metric_name(const mc_model *m, int i);
int64_t mc_step(const mc_model *m);

/* ---- The training loop's pieces: what `modelc train` does around each
 * step, so a program reproduces it bit for bit. ---- */

/* The model's train { } block, with mc_options.seed applied. */
typedef struct mc_train_config {
    int epochs;
    int batch;
    double lr;     /* the optimizer's base learning rate */
    uint64_t seed; /* initialisation, shuffling and dropout */
} mc_train_config;
mc_train_config mc_train_defaults(const mc_model *m);

/* The order of the examples in epoch `epoch` (0-based): perm[0..n) is a
 * permutation of 0..n-1 drawn from (seed, epoch), the same on every run,
 * after a resume and for any thread count. */
void mc_shuffle(const mc_model *m, int epoch, int64_t *perm, int64_t n);

/* The learning rate of the model's schedule (train { schedule, warmup })
 * for the next step: base lr0, the current epoch (0-based) of `epochs`, at
 * step s = mc_step(m) with steps_per_epoch steps per epoch. constant
 * returns lr0; step multiplies by gamma every k epochs; exponential is
 * lr0 * decay_rate^(s / decay_steps) (the exponent floored with
 * staircase); cosine decays over the horizon H: lr0 * (1 + cos(pi *
 * min(s / H, 1))) / 2, with H = mc_lr_horizon(m), or epochs *
 * steps_per_epoch while that is 0. A warm-up of W steps multiplies by
 * s / W while s < W. When reduce_lr_on_plateau has lowered the learning
 * rate, its value takes lr0's place. */
double mc_lr_at(const mc_model *m, double lr0, int epoch, int epochs, int64_t steps_per_epoch);
/* The cosine schedule's horizon in steps: 0 after mc_init_params, fixed by
 * the training loop when a run starts (mc_set_lr_horizon), saved in the
 * checkpoint and read back by mc_load, so a resumed run decays over the
 * same steps whatever its own epoch count. */
int64_t mc_lr_horizon(const mc_model *m);
void mc_set_lr_horizon(mc_model *m, int64_t steps);

/* ---- Callbacks (train { callbacks = [...] }), Keras 3's rules ----
 * Their state (best value, epochs waited, cooldown, the lowered learning
 * rate, the best weights) lives in the model: mc_save writes it into the
 * checkpoint and mc_load reads it back, so a resumed run decides exactly
 * as an uninterrupted one. */
typedef enum { MC_MONITOR_AUTO, MC_MONITOR_MIN, MC_MONITOR_MAX } mc_monitor_mode;

typedef struct mc_early_stopping {
    bool on;
    const char *monitor; /* "val_loss", "loss", a metric, "val_<metric>" */
    double min_delta;    /* an improvement must exceed it (>= 0) */
    int patience;        /* epochs without improvement before stopping */
    mc_monitor_mode mode; /* AUTO: max for accuracy-like names, min otherwise */
    bool restore_best_weights;
} mc_early_stopping;

typedef struct mc_checkpoint {
    bool on;
    const char *path;   /* written atomically, as mc_save */
    const char *monitor;
    bool save_best_only; /* false: every epoch */
    mc_monitor_mode mode;
} mc_checkpoint;

typedef struct mc_reduce_lr {
    bool on;
    const char *monitor;
    double factor; /* in (0, 1) */
    int patience;
    mc_monitor_mode mode;
    double min_delta;
    int cooldown;  /* epochs after a reduction in which nothing is counted */
    double min_lr;
} mc_reduce_lr;

typedef struct mc_callbacks {
    int warmup; /* steps of linear warm-up (train { warmup }) */
    mc_early_stopping early_stopping;
    mc_checkpoint checkpoint;
    mc_reduce_lr reduce_lr;
} mc_callbacks;

/* The model's train block's callbacks and warm-up; those that are off
 * hold Keras's defaults. */
void mc_callbacks_get(const mc_model *m, mc_callbacks *c);
/* Replace them (strings are copied). Checks every value and that each
 * monitor is the loss or a metric, maybe with "val_", which needs
 * have_val: false with mc_last_error otherwise. */
bool mc_callbacks_set(mc_model *m, const mc_callbacks *c, bool have_val);

/* What a callback did at the end of an epoch. */
typedef struct mc_callback_event {
    const char *callback; /* "early_stopping", "checkpoint", "reduce_lr_on_plateau" */
    const char *monitor;
    int epoch;            /* 1-based */
    double value;         /* the monitored value of this epoch */
    double best;          /* the best value so far */
    int best_epoch;       /* early_stopping: the epoch of the best value */
    int wait;             /* epochs without improvement */
    double lr;            /* reduce_lr_on_plateau: the new learning rate */
    bool stop, restored;  /* early_stopping: training stops; the best weights are back */
    const char *path;     /* checkpoint: the file written */
    char text[320];       /* one line saying it, e.g. "epoch 5: reducing the learning rate to 0.0001" */
} mc_callback_event;
#define MC_MAX_CALLBACK_EVENTS 3

/* After epoch `epoch` (1-based) with the epoch's values names[i] =
 * values[i] ("loss", the metrics, "val_loss", "val_<metric>"): run the
 * callbacks (checkpoint, then reduce_lr_on_plateau, then early_stopping):
 * checkpoint writes its file (rank 0 only under mpirun), early stopping may
 * put the best weights back. ev receives *nev <= MC_MAX_CALLBACK_EVENTS
 * events. Under mpirun every process must call it: all decide on rank
 * 0's values. lr0 is the base learning rate (as for mc_lr_at). False with
 * mc_last_error when a monitored value is missing or a file cannot be
 * written. */
bool mc_callbacks_epoch_end(mc_model *m, int epoch, double lr0, const char *const *names, const double *values,
                            int n, mc_callback_event *ev, int *nev);
/* True once early stopping has stopped training (also after mc_load of
 * the checkpoint of a run it stopped). */
bool mc_stop_training(const mc_model *m);

/* Completed epochs: 0 after mc_init_params, read from a checkpoint by
 * mc_load, saved by mc_save. A training loop sets it after each epoch. */
int mc_epoch(const mc_model *m);
void mc_set_epoch(mc_model *m, int epoch);

/* ---- Data sets bound to a model's inputs ---- */

typedef struct mc_data mc_data;

typedef struct mc_data_options {
    const char *const *sources; /* NULL: Fashion-MNIST. Otherwise "fashion-mnist", a directory
                                   of IDX files, a .csv/.csv.gz, one or two .npy (x, y), a
                                   .safetensors file, "text:FILE" (a character-level data
                                   set: windows of bytes for the model's i32[N, T] input, the
                                   next bytes as labels; README "Text data"), or "uniform:N"
                                   (generated) */
    int nsources;
    const char *split;   /* "train" (default) or "test" */
    bool no_scale;       /* keep 8-bit pixels in 0..255 (default: scaled to [0, 1]) */
    int64_t limit;       /* only the first K examples (0 = all) */
    const char *label_column; /* CSV: the label column's name or index */
    uint64_t seed;       /* uniform:N's generator (default: the model's train { seed }) */
    bool seed_set;
    int stream;          /* uniform:N: 0 training, 1 validation, 2 test data draw different
                            samples (seed + stream) */
    bool prediction;     /* bind only the inputs the output values read (no labels) */
    const char *classes; /* keep only the examples whose class label is in this set, before
                            limit: "0-4", "5,7,9", "0-2,8" (labels keep their values); NULL
                            or "" = all. An error when the data has no column of class
                            labels or no example is kept */
    int64_t decode_max;  /* convert 8-bit data (IDX, NPY |u1) to its float values when loading,
                            column by column while that takes at most this many bytes in all
                            (four per value in f32). In-order batches (mc_data_batch with no
                            perm) of a column stored as values are views into the data set,
                            no copy made; 8-bit columns are converted batch by batch. 0 (the
                            default): keep 8-bit data as bytes, a quarter of the memory */
} mc_data_options;

void mc_data_options_default(mc_data_options *o);
/* Check a class set as mc_data_options.classes takes it: comma-separated
 * class numbers (0 to 65535) and ranges A-B with A <= B. True when it is
 * one; otherwise false with a message naming the character where it goes
 * wrong written to msg (size bytes). */
bool mc_data_classes_check(const char *spec, char *msg, size_t size);

/* Load a data set and bind its tensors to the inputs of the model in the
 * file `model` by name (else by kind: labels to the integer input),
 * reshaping per-example shapes with the same element count and turning
 * class labels into one-hot rows where the input asks for it. The model
 * file is parsed afresh, so this may run on another thread while
 * mc_compile runs. NULL on error with *err a message (free() it); NULL
 * with *err NULL when the source has no such split (a test split of a
 * CSV file). */
mc_data *mc_data_load(const char *model, const mc_data_options *o, char **err);
int64_t mc_data_count(const mc_data *d);
/* Hold out the last fraction frac in (0, 1) of d as a new data set; d
 * keeps the rest. NULL with *err on error. */
mc_data *mc_data_split(mc_data *d, double frac, char **err);
/* Rows perm[start], ..., perm[start + count - 1] (perm NULL: in order,
 * rows past the end are left out) as one batch: *out receives *nt named
 * tensors, owned by d and valid until the next call. Returns the rows, or
 * -1 when out of memory (mc_data_error; d then only takes mc_data_free). */
int64_t mc_data_batch(mc_data *d, const int64_t *perm, int64_t start, int64_t count,
                      const mc_tensor **out, int *nt);
const char *mc_data_error(const mc_data *d); /* "" when no call failed */
void mc_data_free(mc_data *d);

/* Write tensors to a file chosen by its suffix: .safetensors (all of them,
 * by name, with model_name in the metadata), .npy (one tensor) or .csv
 * (one tensor, a row per example). False with *err (free() it) on error. */
bool mc_write_tensors(const char *path, const mc_tensor *t, int n, const char *model_name, char **err);

/* ---- Data-parallel training over MPI (mpirun -np K) ----
 * With mc_options.distributed, mc_compile joins the MPI job (initialising
 * MPI unless the program did) and compiles a step in two halves, the
 * recipes train_grad and apply. mc_train_step(_metrics) then takes this
 * process's share of the global batch (mc_dist_shard; nbatch = 0 when the
 * share is empty), runs train_grad on it, sums the gradients and
 * batchnorm's state updates of all processes, each weighted by its share
 * of the rows (so the result is the gradient of the global batch's mean
 * loss), and applies the same update on every process; the loss and
 * metrics it gives are the global batch's. Batchnorm normalises with each
 * process's own batch statistics, or with the global batch's when the
 * train block says sync_batchnorm = true. The telemetry
 * (mc_telemetry_value) is the update's, from the summed gradients. */

/* The number of processes of the MPI job this process was started in
 * (mpirun's environment), 0 when it was not started by an MPI launcher. */
int mc_dist_launched(void);
/* True when modelc was built with MPI. */
bool mc_dist_built(void);
/* This process's rank and the job's size: 0 and 1 unless distributed. */
int mc_dist_rank(const mc_model *m);
int mc_dist_size(const mc_model *m);
/* This process's rows of the global batch [start, start + count): a
 * contiguous share, the first count % size ranks one row more; *my_count
 * may be 0. */
void mc_dist_shard(const mc_model *m, int64_t start, int64_t count, int64_t *my_start, int64_t *my_count);
/* Collective, once before training, after mc_init_params on every process
 * and any mc_load on rank 0: every process learns whether all the others
 * are ready (ok), that all compiled the same model (a hash of the IR text
 * of train_grad and apply with the run settings and seed), hold the same
 * training data (count and a hash of the values) and pass the same
 * `settings` bytes (the training loop's own: batch, epochs, learning
 * rate); then every process takes rank 0's parameters, step and epoch.
 * False with mc_last_error naming the first rank that differs. Without
 * distributed: returns ok. */
bool mc_dist_start(mc_model *m, const mc_data *train, const void *settings, size_t nsettings, bool ok);
/* Sum v[0..n) over all processes, in place. */
bool mc_dist_sum(mc_model *m, double *v, int n);
/* Whether this process prints the job's messages: rank 0, or, once a
 * process stopped answering (mc_options.dist_timeout), the first process
 * that still answers. */
bool mc_dist_reports(const mc_model *m);
/* The buckets whose sums started so far, and how many of them started
 * while the backward pass was still running (mc_options.dist_bucket_mb);
 * 0 and 0 when the sums do not overlap it (one process, the interpreter,
 * deterministic_reduce or sync_batchnorm). */
void mc_dist_overlap(const mc_model *m, int64_t *buckets, int64_t *early);
/* The bytes of gradients and state summed per step, and the milliseconds
 * spent summing (and waiting for the other processes) so far; 0 unless
 * distributed. */
int64_t mc_dist_reduce_bytes(const mc_model *m);
double mc_dist_reduce_ms(const mc_model *m);
/* After a successful run, on every process: leave the MPI job
 * (MPI_Finalize when mc_compile initialised MPI). A process that fails
 * just exits with a non-zero status: the launcher then stops the others. */
void mc_dist_finish(mc_model *m);

/* With mc_options.telemetry: figures of the last training step, by name
 * "grad_sq.<param>" (sum of squares of the raw gradient),
 * "clip_frac.<param>" (fraction of its elements beyond clip_value) and
 * "clip_norm" (the global norm compared with clip_norm). */
int mc_num_telemetry(const mc_model *m);
const char *mc_telemetry_name(const mc_model *m, int i);
double mc_telemetry_value(const mc_model *m, int i);
/* With mc_options.profile: a table of the time each kernel of the
 * compiled training step took over all training steps so far, slowest
 * first, naming the op (or fused group) and its model source line. ""
 * without profiling. Owned by m, valid until the next call or mc_free.
 * With mc_options.distributed it is collective (every process calls it):
 * the two halves of the step, their times summed over the processes. */
const char *mc_profile_report(mc_model *m);

/* ---- ONNX (docs/onnx.md) ----
 * mc_compile, mc_data_load and the inspection functions take a `.onnx`
 * file like a model file: it is imported as below, its inputs and outputs
 * keep their ONNX names, and mc_init_params gives its parameters the
 * initializers' values. */

/* Translate the ONNX model in `path` into model-language text: *mdl
 * receives the text, and unless weights_out is NULL the initializers are
 * written there (safetensors) under the text's parameter names, in its
 * layouts (HWIO kernels, [in, out] dense kernels). False with *err a
 * message naming the file (and the node and op) on an unsupported or
 * malformed model. Free *mdl and *err with free(). */
bool mc_onnx_import(const char *path, const char *weights_out, char **mdl, char **err);
/* mc_onnx_import with values for some of the graph's inputs: the tensors
 * of the safetensors file `constants` (NULL: none), each named as a graph
 * input, are taken as constants, as if they were initializers that are
 * not parameters: shapes, axes or pads a graph reads from its inputs,
 * which the model's static shapes need at import. */
bool mc_onnx_import_bound(const char *path, const char *constants, const char *weights_out, char **mdl,
                          char **err);
/* What mc_onnx_import_train adds so that the imported model trains: a
 * loss of the first graph output against a new input of labels, and a
 * train block. */
typedef struct mc_onnx_train {
    const char *loss;      /* mse, mae, binary_crossentropy, categorical_crossentropy or
                            * sparse_categorical_crossentropy (then with an accuracy metric) */
    const char *labels;    /* the labels' input name; NULL: "labels" */
    const char *optimizer; /* the train block's optimizer: sgd, adam or rmsprop, optionally with
                            * arguments, "adam(lr=0.0005)"; NULL: "adam(lr=0.001)" */
} mc_onnx_train;
/* mc_onnx_import_bound whose text also trains (t, NULL for none): the
 * labels input (i32[N] for sparse_categorical_crossentropy, else the
 * output's shape), `loss = LOSS(labels, output)` with from_logits=false
 * when the output is a Softmax or Sigmoid and true otherwise for the
 * cross-entropies, and `train { optimizer = ... }`. A loss name,
 * optimizer or labels name that does not fit is an error. */
bool mc_onnx_import_train(const char *path, const char *constants, const char *weights_out, const mc_onnx_train *t,
                          char **mdl, char **err);
/* The ONNX operators the importer translates, one per line (free() it). */
char *mc_onnx_ops(void);
/* Write m's inference graph (its predict function, unfused) with m's
 * current parameter values as an ONNX model of opset 13 to path. Inputs
 * and outputs keep the model's names and layouts (NHWC images);
 * convolutions and pooling run NCHW between transposes. False
 * (mc_last_error) when the graph has an op without an ONNX form. */
bool mc_export_onnx(mc_model *m, const char *path);

#ifdef __cplusplus
}
#endif

#endif
