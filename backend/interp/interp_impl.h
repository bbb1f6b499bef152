/* Internals of the reference interpreter: the evaluation context, the
 * signature of an op routine and its declaration for every op of
 * ir/ops.def (the table in interp.c is built from ops.def too, so a new op
 * without a routine does not link), and index helpers shared by the
 * routines. Semantics of every op: docs/ops.md. */
#ifndef MODELC_INTERP_IMPL_H
#define MODELC_INTERP_IMPL_H

#include "backend/interp/interp.h"

typedef struct Interp {
    const RunOpts *opts;
    const TensorMap *params;
    int64_t n;          /* batch size N; -1 while unbound */
    const Node *n_from; /* the leaf whose tensor bound N */
    Diags *d;
    Tensor **parts; /* set while a fused node with side results runs: they go to parts[1..] */
    Tensor *const *const *results; /* by node id, of the graph being evaluated: a fused
                                    * node's results 1.. (read by result nodes) */
    const struct RtReplica *replica; /* replica_mean's job; NULL = one process */
} Interp;

/* Compute node nd into out, which is allocated (zeroed) with nd's dtype and
 * shape (N bound). in[i] is the value of nd->in[i]. Returns false after
 * reporting a diagnostic at nd->loc. */
typedef bool (*InterpFn)(Interp *ip, const Node *nd, Tensor *const *in, Tensor *out);

#define INTERP_FN(name) bool interp_##name(Interp *ip, const Node *nd, Tensor *const *in, Tensor *out)

/* The routine of each row of ir/ops.def, by its class: unary and binary
 * ops share interp_elementwise, which maps the op's scalar kernels over
 * the elements (ops_elem.c); every other op has interp_<text_name>:
 * leaves and select in ops_elem.c (INPUT and PARAM are bound by the
 * driver), reductions and shape ops in ops_shape.c, linear algebra,
 * convolution, pooling, softmax (and the fused softmax cross-entropy
 * rows), one_hot and dropout in ops_nn.c, phase, fused, loop and result in
 * interp.c. */
#define INTERP_ROUTINE_OPC_LEAF(name) interp_##name
#define INTERP_ROUTINE_OPC_UNARY(name) interp_elementwise
#define INTERP_ROUTINE_OPC_BINARY(name) interp_elementwise
#define INTERP_ROUTINE_OPC_TERNARY(name) interp_##name
#define INTERP_ROUTINE_OPC_REDUCE(name) interp_##name
#define INTERP_ROUTINE_OPC_SHAPE(name) interp_##name
#define INTERP_ROUTINE_OPC_OTHER(name) interp_##name
#define OP(E, name, arity, cls, ...) \
    bool INTERP_ROUTINE_##cls(name)(Interp *ip, const Node *nd, Tensor *const *in, Tensor *out);
#include "ir/ops.def"
#undef OP

/* be_interp_run that also reports the most bytes its computed values held
 * at once (leaves and fused bodies not counted): tests of early freeing. */
bool be_interp_run_peak(Graph *g, const TensorMap *params, const TensorMap *inputs,
                        const RunOpts *o, Tensor **outs, int64_t *peak, Diags *d);

/* Offset within one example of each window's maximum (-1: padding only),
 * per element of max_pool2d's result y (ops_nn.c). */
void be_interp_pool_argmax(const Node *nd, const Tensor *x, const Tensor *y, int32_t *key);

/* ---- helpers (ops_elem.c) ---- */

/* Element i of t as a double (exact for f32, f64 and i32). */
double ix_load(const Tensor *t, int64_t i);
/* Store v into element i of t: rounded for f32; for i32 truncated toward
 * zero, saturating, NaN -> 0 (like cast). */
void ix_store(Tensor *t, int64_t i, double v);
int32_t ix_to_i32(double v);

/* Advance a row-major multi-index c over dims (the last axis fastest). */
static inline void ix_next(int rank, const int64_t *dims, int64_t *c)
{
    for (int k = rank - 1; k >= 0; k--) {
        if (++c[k] < dims[k])
            return;
        c[k] = 0;
    }
}

/* Row-major strides of t. */
void ix_strides(const Tensor *t, int64_t *st);
/* Strides of t right-aligned in a result of rank r, 0 along the axes where
 * t has size 1 (or is missing): NumPy broadcasting. */
void ix_bcast_strides(const Tensor *t, int r, int64_t *st);
/* Offset of multi-index c with strides st. */
static inline int64_t ix_offset(int rank, const int64_t *c, const int64_t *st)
{
    int64_t off = 0;
    for (int k = 0; k < rank; k++)
        off += c[k] * st[k];
    return off;
}

/* "f32[2,3]" */
char *ix_type_str(const Tensor *t, char *buf, size_t n);

/* Call fn##_f32 or fn##_f64 by the dtype of a float tensor. */
#define IX_BY_DTYPE(dt, fn, ...)                                                            \
    do {                                                                                   \
        if ((dt) == DT_F32)                                                                \
            fn##_f32(__VA_ARGS__);                                                         \
        else if ((dt) == DT_F64)                                                           \
            fn##_f64(__VA_ARGS__);                                                         \
        else                                                                               \
            ICE("%s: not a float dtype", #fn);                                             \
    } while (0)

#endif
