/* The model handle behind include/modelc.h, shared with the library's
 * commands (include/modelc_inspect.h), which need the compiled graphs for
 * printing, statistics and watching. */
#ifndef MODELC_API_INTERNAL_H
#define MODELC_API_INTERNAL_H

#include <stdarg.h>

#include "frontend/frontend.h"
#include "ir/ir.h"
#include "ir/base/timer.h"
#include "passes/passes.h"
#include "modelc.h"
#include "runtime/runtime.h"
#include "runtime/io/io.h"

#define MC_NWS 2 /* cached workspaces per graph: the full and the last partial batch */

struct JitModule;
struct JitWorkspace;
struct Dist;

/* The callbacks' state (callbacks.c); a best of NaN: none yet. */
typedef struct CallbackState {
    double es_best;
    int es_best_epoch, es_wait, es_stopped; /* es_stopped: the epoch early stopping ended, 0 */
    double ck_best;
    double rl_best;
    int rl_wait, rl_cooldown;
    double rl_lr; /* the learning rate reduce_lr_on_plateau set, 0 = none */
} CallbackState;

struct mc_model {
    mc_options opt;
    Diags d;
    char *err;
    char *warnings; /* compile warnings, printed (NULL if none) */
    Timer *timer;
    unsigned dumped;   /* functions written by mc_options.dump_ir, 1 << FnKind */
    Timer own_timer;   /* mc_options.time_passes */
    char *time_report; /* mc_time_report's last text */
    Graph *src;    /* the lowered model */
    RunSettings run; /* its train block's batch, epochs, schedule and seed */
    Graph *gtrain; /* train mode: loss, metrics, updates */
    Graph *geval;  /* inference mode: loss, metrics, outputs */
    Graph *gpredict; /* inference mode: the output values (built on first mc_predict) */
    TensorMap params; /* weights, state and optimizer slots by name */
    TensorMap imported; /* an ONNX model's initializers: its parameters' initial values */
    TensorMap batch;  /* staged inputs of the current batch */
    Tensor *lr;
    uint64_t seed;
    int64_t step;
    int epoch;
    int64_t lr_horizon;     /* the cosine schedule's steps (mc_lr_horizon), 0 = not fixed */
    CallbackState cb;
    TensorMap best_weights; /* early_stopping(restore_best_weights): the best epoch's weights */
    int loss_out, eval_loss_out;
    int nmetrics;
    int metric_out[MC_MAX_METRICS];       /* in geval->outs */
    int train_metric_out[MC_MAX_METRICS]; /* in gtrain->outs */
    int ntel;            /* telemetry outputs of gtrain (mc_options.telemetry) */
    int *tel_out;        /* their indices in gtrain->outs */
    const char **tel_name; /* names without the "telemetry." prefix */
    double *tel_val;     /* values of the last training step */
    struct JitModule *jtrain, *jeval, *jpredict;
    struct JitWorkspace *wtrain[MC_NWS], *weval[MC_NWS], *wpredict[MC_NWS], *cur_ws;
    TensorMap pred;       /* mc_predict's outputs */
    mc_tensor *pred_view; /* views of pred, in output order */
    char *profile_report; /* mc_profile_report's last text */
    /* data-parallel training (dist.c): the communicator and the step's halves */
    struct Dist *dist;
    Graph *ggrad, *gapply; /* train_grad and apply */
    struct JitModule *jgrad, *japply;
    struct JitWorkspace *wgrad[MC_NWS], *wapply[MC_NWS];
    int grad_loss_out, grad_metric_out[MC_MAX_METRICS]; /* in ggrad->outs */
    const struct RtReplica *replica; /* replica_mean's job while dist.c runs train_grad */
    const struct RtReady *ready;     /* rt_step_done's listener while dist.c runs train_grad */
    bool broken;     /* a call ran out of memory: the model only answers mc_free */
    MemSet orphans;  /* that call's blocks, freed by mc_free after the model's own */
};

const Graph *mc_param_graph(const mc_model *m);
/* Does a training step whose loss is NaN or infinite leave parameter
 * `name` as it was? The interpreter applies no update then; the JIT skips
 * the updates that come after the loss (plan_guards); a distributed step
 * is not known to. */
bool mc_param_kept_on_bad_loss(const mc_model *m, const char *name);

/* callbacks.c: the callbacks' settings and state, in checkpoints as
 * metadata and as tensors callbacks.best_weights.<param>. */
bool mc_cb_set(mc_model *m, const mc_callbacks *c, bool have_val);
bool mc_cb_epoch_end(mc_model *m, int epoch, double lr0, const char *const *names, const double *values, int n,
                     mc_callback_event *ev, int *nev);
void mc_cb_reset(mc_model *m);
void mc_cb_save_meta(const mc_model *m, Metadata *meta);
void mc_cb_load_meta(mc_model *m, const Metadata *meta);
bool mc_cb_is_state_tensor(const char *name);
void mc_cb_take_state_tensor(mc_model *m, const char *name, Tensor *t);
void mc_cb_save_map(const mc_model *m, TensorMap *out);
void mc_cb_free_save_map(TensorMap *map);
void mc_cb_alloc_best(mc_model *m);
/* dist.c: rank 0's bytes to every process (nothing unless distributed). */
bool mc_dist_bcast(mc_model *m, void *v, int64_t bytes);

/* api.c's pieces of a step, for the data-parallel step (dist.c). */
bool mc_stage_batch(mc_model *m, const mc_tensor *b, int nb);
void mc_stage_lr(mc_model *m, const Graph *g, double lr);
bool mc_jit_run(mc_model *m, struct JitModule *jm, struct JitWorkspace **cache, int64_t n);
int64_t mc_batch_rows(const mc_model *m, const Graph *g);
bool mc_fail(mc_model *m); /* the diagnostics become mc_last_error; false */
/* dist.c: join the MPI job and compile the step's halves (mc_compile with
 * mc_options.distributed); false with diagnostics in m->d. */
bool mc_dist_setup(mc_model *m);
bool mc_dist_train_step(mc_model *m, const mc_tensor *batch, int nbatch, double lr, double *loss,
                        double *metrics);
void mc_dist_free(mc_model *m);
/* After a step that stopped on a non-finite value: the lowest rank whose
 * own loss, else whose own gradients (with mc_options.telemetry), were
 * not finite; 0 when none was or not distributed. The ranks with
 * `which` (1: the loss, 2: the gradients) as text "1, 3" in buf. */
int mc_dist_culprit(const mc_model *m);
void mc_dist_bad_ranks(const mc_model *m, int which, char *buf, size_t n);
/* The seed of this process's dropout masks: m->seed ^ rank * 0x9E3779B97F4A7C15. */
uint64_t mc_dist_seed(const mc_model *m);
/* mc_profile_report under mpirun (collective): both halves of the step,
 * their kernel times summed over the processes. */
void mc_dist_profile_print(mc_model *m, FILE *f);
/* A function is about to be compiled or first run: mc_options.dump_ir
 * writes it (once, on rank 0); false with a diagnostic when it cannot. */
bool mc_compiling(mc_model *m, FnKind fn, const Graph *g);
void mc_set_error(mc_model *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- what the inspection commands share (include/modelc_inspect.h) ---- */

/* The body of a command int mc_<cmd>(path, o, out, err): `call` under a
 * memory guard; running out of memory frees what the command allocated,
 * prints "<path>: error: out of memory: ..." to err and returns 1. */
#define MC_COMMAND(path, err, what, call)                                                          \
    do {                                                                                           \
        MemGuard g_;                                                                               \
        volatile int rc_ = 1;                                                                      \
        if (MEM_TRY(&g_, what))                                                                    \
            rc_ = call;                                                                            \
        if (mem_guard_pop(&g_))                                                                    \
            return rc_;                                                                            \
        mem_set_free_all(&g_.live);                                                                \
        char msg_[200];                                                                            \
        mem_error(&g_, msg_, sizeof msg_);                                                         \
        fprintf(err, "%s: error: %s\n", path, msg_);                                               \
        return 1;                                                                                  \
    } while (0)

/* Load a model (.mdl or .ir) and print its diagnostics to err; NULL on
 * error. The caller owns d (diags_init / diags_free). */
Graph *mc_load_source(const char *path, RunSettings *run, Diags *d, FILE *err); /* run may be NULL */
/* convert.c: the notes a checkpoint of g carries in its __metadata__:
 * "layers" (the layers with parameters, in order), "layout.NAME" (IO for
 * a dense kernel, HWIO for a convolution's, C otherwise) and "torch.NAME"
 * (the PyTorch parameter it is and how: "weight: transpose", ...). */
void mc_layout_metadata(const Graph *g, Metadata *meta);
/* The mode a function is specialized for: o's with MC_MODE_TRAIN or
 * MC_MODE_INFER, otherwise def. */
Mode mc_mode_of(mc_mode m, Mode def);

#endif
