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

typedef struct mc_options {
    mc_backend backend;
    int threads;          /* 0 = number of cores */
    uint64_t seed;        /* initialisation, shuffling and dropout */
    bool seed_set;        /* override the model's train { seed } */
    const char **freeze;  /* extra freeze patterns (globs) */
    int nfreeze;
    bool profile;         /* time every kernel of the training step (JIT) */
} mc_options;

void mc_options_default(mc_options *o);

/* Compile a model file (.mdl or .ir). Diagnostics go to mc_last_error(). */
mc_model *mc_compile(const char *path, const mc_options *o);
void mc_free(mc_model *m);
const char *mc_last_error(const mc_model *m); /* also valid for m == NULL after mc_compile */

/* Parameters (weights, batchnorm state, optimizer slots). */
bool mc_init_params(mc_model *m, uint64_t seed);
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
int mc_num_metrics(const mc_model *m);
const char *mc_metric_name(const mc_model *m, int i);
int64_t mc_step(const mc_model *m);

/* With mc_options.profile: a table of the time each kernel of the
 * compiled training step took over all training steps so far, slowest
 * first, naming the op (or fused group) and its model source line. ""
 * without profiling. Owned by m, valid until the next call or mc_free. */
const char *mc_profile_report(mc_model *m);

#ifdef __cplusplus
}
#endif

#endif
