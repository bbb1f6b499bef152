/* The ahead-of-time context (aot.c): what an object file written by
 * `modelc compile` needs at run time besides the kernels — its
 * parameters (embedded in the object or read from a safetensors file),
 * one workspace per function laid out at compile time for the largest
 * batch, the thread pool, and the calls of its entries. Every compiled
 * model's header declares these functions itself (with the struct tags
 * rt_aot_model and rt_aot), so this header is not installed. docs/aot.md
 * describes the ABI. */
#ifndef MODELC_RT_AOT_H
#define MODELC_RT_AOT_H

#include <stddef.h>
#include <stdint.h>

#include "kernels.h"

/* Version of the object/runtime interface: the object's model carries
 * it, rt_aot_new refuses another. 2: f32 convolutions take a packed
 * kernel in their scratch buffer (sized for it by the compiler). */
#define RT_AOT_ABI 2

typedef void (*RtAotEntry)(RtCtx *ctx, int64_t n, void **bufs);

/* A compiled model as the object defines it (`<name>_model`). desc is
 * the text description written by backend/llvm/aot.c (functions,
 * buffers, parameters); weights the embedded parameter values (the
 * offsets are in desc), or NULL. */
typedef struct rt_aot_model {
    uint32_t abi;
    uint32_t nfns;
    const char *desc;
    uint64_t desc_len;
    const unsigned char *weights;
    uint64_t weights_len;
    const RtAotEntry *entries;
} RtAotModel;

typedef struct rt_aot RtAot;

/* A context with the parameters from weights_file (a safetensors
 * checkpoint), or the embedded ones when it is NULL. NULL with a message
 * in err (errlen bytes) on failure. */
RtAot *rt_aot_new(const RtAotModel *m, const char *weights_file, char *err, size_t errlen);
void rt_aot_free(RtAot *c);
/* Run function fn for a batch of n examples: inputs in argument order
 * (the header's), lr for a training step, outputs in the header's order.
 * 0 on success; -1 with rt_aot_error set. */
int rt_aot_run(RtAot *c, int fn, int64_t n, const void *const *inputs, double lr, void *const *outputs);
/* The message of the last failure, "" if none. */
const char *rt_aot_error(const RtAot *c);
/* Threads of the pool (0: number of cores, the default); results do not
 * depend on it. 0 on success. */
int rt_aot_set_threads(RtAot *c, int threads);
/* A parameter's current values (updated in place by training steps):
 * dtype 0 f32, 1 f64, 2 i32; NULL if the model has no such parameter. */
void *rt_aot_param(RtAot *c, const char *name, int *dtype, int64_t *numel);
/* Parameter i's name (0 <= i < rt_aot_nparams), NULL outside. */
int rt_aot_nparams(const RtAot *c);
const char *rt_aot_param_name(const RtAot *c, int i);
/* Training steps taken (the dropout RNG's counter), from the checkpoint's
 * "step" at first. */
int64_t rt_aot_step(const RtAot *c);

/* Description of function fn (by name: -1 if absent), its inputs and
 * outputs: name, dtype (as above), rank and dims (-1: the batch N). */
int rt_aot_fn(const RtAot *c, const char *name);
int rt_aot_ninputs(const RtAot *c, int fn);
int rt_aot_noutputs(const RtAot *c, int fn);
const char *rt_aot_input(const RtAot *c, int fn, int i, int *dtype, int *rank, const int64_t **dims);
const char *rt_aot_output(const RtAot *c, int fn, int i, int *dtype, int *rank, const int64_t **dims);

#endif
