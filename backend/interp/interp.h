/* The reference interpreter: evaluates any IR graph with plain loops in
 * f32 or f64. Obviously correct rather than fast; the oracle the LLVM
 * backend and every fusion are tested against. */
#ifndef MODELC_INTERP_H
#define MODELC_INTERP_H

#include "backend/backend.h"
#include "runtime/runtime.h"

/* Evaluate g. PARAM nodes read `params` by name, INPUT nodes `inputs`;
 * the batch size N is taken from the inputs (all must agree). outs[i]
 * receives a new tensor for g->outs[i]. Missing or mis-shaped tensors are
 * reported as errors and false is returned. */
bool be_interp_run(Graph *g, const TensorMap *params, const TensorMap *inputs,
                   const RunOpts *o, Tensor **outs, Diags *d);
/* be_interp_run on one process of a data-parallel job: replica_mean takes
 * the mean over the processes through `replica` (runtime/kernels.h);
 * be_interp_run's replica_mean is the identity. */
struct RtReplica;
bool be_interp_run_replica(Graph *g, const TensorMap *params, const TensorMap *inputs, const RunOpts *o,
                           const struct RtReplica *replica, Tensor **outs, Diags *d);

/* Evaluate every node (for stats/NaN origin): vals[i] for g->nodes[i];
 * caller frees with be_interp_free_values. */
bool be_interp_run_all(Graph *g, const TensorMap *params, const TensorMap *inputs,
                       const RunOpts *o, Tensor ***vals, Diags *d);
void be_interp_free_values(Graph *g, Tensor **vals);

/* ---- branches of the piecewise ops (kinks.c) ---- */

/* For every OPF_KINK node that has a value, one key per element naming
 * the smooth piece it is on: the sign of the operand (relu, abs, sign),
 * of a - b (maximum, minimum, comparisons), whether an element is its
 * slice's maximum (reduce_max), the index (argmax) or the offset of each
 * window's maximum (max_pool2d). A NaN has a key of its own. */
typedef struct KinkKeys {
    int n;          /* kink nodes */
    int *node;      /* their positions in g->nodes */
    int64_t *len;   /* elements of each key */
    int32_t **key;
} KinkKeys;

/* The keys of g's kink nodes from vals (as be_interp_run_all gives them). */
void be_interp_kink_keys(const Graph *g, Tensor *const *vals, KinkKeys *k);
/* The position in g->nodes of the first kink node whose keys differ
 * between a and b (of the same graph), with the element in *elem; -1
 * when every branch is the same. */
int be_interp_kink_diff(const KinkKeys *a, const KinkKeys *b, int64_t *elem);
void be_interp_kink_free(KinkKeys *k);

/* ---- one element, for the constant folder and the moment analysis ---- */

/* The value a node of dtype dt holds for v, as a constant or a cast
 * stores it: rounded to nearest for f32; for i32 truncated toward zero
 * and saturated, NaN -> 0. */
double be_interp_round(DType dt, double v);
/* One element of elementwise op `op` (unary, binary, select, cast) with a
 * result of dtype dt, by the scalar kernel the interpreter maps over
 * tensors, in dt's precision: x[i] is operand i's value (each rounded to
 * dt first, as the interpreter holds it; a cast's operand in its own
 * dtype), alpha elu's Attrs.value. dt is f32 or f64 except for a cast. */
double be_interp_elem(Op op, DType dt, double alpha, const double *x);

#endif
