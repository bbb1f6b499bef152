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
    const char *dump_ir;  /* a directory: write <fn>.ir there for every function compiled
                             (train_step, eval, predict), the IR exactly as it is compiled */
} mc_options;

void mc_options_default(mc_options *o);

/* Compile a model file (.mdl or .ir). Diagnostics go to mc_last_error(). */
mc_model *mc_compile(const char *path, const mc_options *o);
void mc_free(mc_model *m);
const char *mc_last_error(const mc_model *m); /* also valid for m == NULL after mc_compile */
/* Warnings of the compilation (file:line:col, source line, notes), "" if none. */
const char *mc_warnings(const mc_model *m);

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
/* Loss and metrics in inference mode (metrics[i] in the order of mc_metric_name). */
bool mc_eval_batch(mc_model *m, const mc_tensor *batch, int nbatch, double *loss,
                   double *metrics, int nmetrics);
/* The JIT compiles the inference function on first use, so the first
 * mc_eval_batch also pays for that compile (tens of milliseconds).
 * mc_prepare_eval compiles it now, e.g. to time inference alone; later
 * calls, and any call with the interpreter backend, do nothing. False
 * (mc_last_error) when the model has no loss or the compile fails. */
bool mc_prepare_eval(mc_model *m);
int mc_num_metrics(const mc_model *m);
const char *mc_metric_name(const mc_model *m, int i);
int64_t mc_step(const mc_model *m);

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
 * without profiling. Owned by m, valid until the next call or mc_free. */
const char *mc_profile_report(mc_model *m);

#ifdef __cplusplus
}
#endif

#endif
