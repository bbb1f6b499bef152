/* Tensors for one evaluation of a model outside training (modelc grad,
 * gradcheck and stats): parameters and inputs from files or drawn at
 * random, checked against the model with errors naming the file and the
 * tensor. */
#ifndef MODELC_DRIVER_GRAD_H
#define MODELC_DRIVER_GRAD_H

#include "backend/interp/interp.h"
#include "modelc_inspect.h"
#include "runtime/runtime.h"

/* Parameters from a safetensors file (extra tensors such as optimizer
 * slots are allowed) or, when path is NULL, freshly initialised with
 * seed. False after reporting an error. */
bool gc_load_params(const Graph *g, const char *path, uint64_t seed, TensorMap *m, Diags *d);

/* Inputs from a safetensors file: every model input must be present with
 * its dtype and shape (one batch size N for all), no other tensors. */
bool gc_load_inputs(const Graph *g, const char *path, TensorMap *m, Diags *d);

/* A random batch of `batch` examples: floats uniform in [0,1); labels
 * and indices (inputs feeding a one_hot or the indices of a gather, and
 * integer inputs) uniform integers in [0, classes) where classes is the
 * smallest one_hot depth or gathered axis length they feed (2 when there
 * is none). An input too large for memory is an error at its declaration. */
bool gc_random_inputs(const Graph *g, int64_t batch, uint64_t seed, TensorMap *m, Diags *d);

/* The weights of a gradient check: every parameter initialised with
 * seed, learned weights (and parameters without an initializer) moved by
 * a uniform amount in [-0.05, 0.05) so that no unit sits exactly at a
 * kink (zero biases in front of relu, ties in max). */
bool gc_check_params(const Graph *g, uint64_t seed, TensorMap *m, Diags *d);

/* The index of the graph's first output of kind k, or -1. */
int gc_find_output(const Graph *g, OutKind k);

/* Format a value the way the commands print losses: 9 significant digits
 * for f32, shortest round-trip for f64. */
void gc_fmt_value(char *buf, size_t n, double v, DType dt);

/* Compile g with the JIT and run it once: outs[i] for g->outs[i]. */
bool gc_run_jit(Graph *g, const TensorMap *params, const TensorMap *inputs, const RunOpts *ro,
                Tensor **outs, Diags *d);

/* gradcheck --dtype f32: the f32 gradients of the unfused graph (the
 * interpreter) and, with backend JIT, of the compiled fused graph,
 * against the f64 gradients of the same weights and batch; one row per
 * parameter with each error as a share of the tensor's scale. */
bool gc_precision_report(Graph *src, const mc_gradcheck_options *a, FILE *out, Diags *d);

/* After a NaN or infinite result: evaluate every node and add a note at
 * the first node producing a non-finite value from finite operands. */
void gc_explain_nonfinite(Graph *g, const TensorMap *params, const TensorMap *inputs,
                          const RunOpts *ro, Diags *d);

#endif
