/* Graph passes, one per file, all with the signature
 * `bool ps_<name>(Graph *, ..., Diags *)`. The pipeline is written out in
 * pipeline.c. */
#ifndef MODELC_PASSES_H
#define MODELC_PASSES_H

#include "ir/ir.h"
#include "ir/timer.h"

typedef enum { MODE_TRAIN, MODE_INFER } Mode;

/* True when the parameter is not learned: trainable=false, a state or
 * optimizer slot, or its name matches one of g->train.freeze. */
bool ps_is_frozen(const Graph *g, const Node *param);

/* specialize.c: resolve every PHASE node for the mode (train -> operand 0,
 * infer -> operand 1; a phase whose layer's parameters are all frozen
 * takes the inference operand in both modes); in infer mode drop
 * train_only outputs, the loss-only graph parts stay. */
bool ps_specialize(Graph *g, Mode mode, Diags *d);

/* autodiff.c: reverse mode from the OUT_LOSS output; appends OUT_GRAD
 * outputs (name "grad.<param>") for every trainable, non-frozen PARAM,
 * and for each INPUT whose name is listed in wrt. */
bool ps_autodiff(Graph *g, const char **wrt, int nwrt, Diags *d);

/* simplify.c: constant folding, algebraic identities, CSE, DCE. */
bool ps_simplify(Graph *g, Diags *d);

/* to_f64.c: a deep copy of g with every f32 value turned into f64 (for
 * gradient checking in double precision). The caller frees it. */
Graph *ps_to_f64(Graph *g);

/* optimizer.c: append the optimizer update (g->train) as IR: one
 * OUT_UPDATE per parameter and per optimizer slot (new ROLE_SLOT params). */
bool ps_optimizer(Graph *g, Diags *d);

/* fuse.c: group elementwise chains into FUSED nodes. */
bool ps_fuse(Graph *g, Diags *d);

/* fuse_softmax.c (run first by ps_fuse): softmax cross-entropy loss and
 * gradient in primitive ops -> log_softmax_dot / log_softmax_grad. */
bool ps_fuse_softmax(Graph *g, Diags *d);

/* verify.c wrapper so the verifier can run as a pass. */
bool ps_verify(Graph *g, Diags *d);

/* plan_memory.c: one arena for temporaries with live ranges [first,
 * last] (inclusive, in steps). Sets every off (aligned to align bytes)
 * so that temporaries live at the same time never overlap; returns the
 * arena size. ps_peak_live is the lower bound: the largest sum of the
 * (aligned) sizes live at one step. */
typedef struct PsInterval {
    int first, last;
    int64_t bytes;
    int64_t off; /* set by ps_plan_memory */
} PsInterval;
int64_t ps_plan_memory(PsInterval *v, int n, int64_t align);
int64_t ps_peak_live(const PsInterval *v, int n, int64_t align);

/* pipeline.c */
typedef struct PipelineOpts {
    Mode mode;
    bool grads;        /* run autodiff */
    bool update;       /* append optimizer update (implies grads) */
    bool simplify;
    bool fuse;
    const char **wrt;  /* extra INPUT names to differentiate */
    int nwrt;
    const char *stop_after; /* pass name or NULL: every pass up to it runs */
    Timer *timer;           /* per-pass wall time, or NULL */
} PipelineOpts;

PipelineOpts ps_default_opts(Mode mode);

/* Names of the passes in pipeline order, for --after=PASS validation. */
extern const char *const ps_pass_names[];
bool ps_run_pipeline(Graph *g, const PipelineOpts *o, Diags *d);
/* Run exactly one pass by name (for `modelc opt`); false + diagnostic if
 * the name is unknown. */
bool ps_run_one(Graph *g, const char *name, const PipelineOpts *o, Diags *d);
/* Index of a pass name in ps_pass_names, or -1. */
int ps_pass_index(const char *name);

#endif
