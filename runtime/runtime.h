/* The runtime: tensors, named tensor maps, the counter-based RNG and
 * initializers (file formats and data sets: io/io.h). No process-wide
 * state: everything hangs off explicit objects. */
#ifndef MODELC_RUNTIME_H
#define MODELC_RUNTIME_H

#include "ir/ir.h"

/* ---- tensors (tensor.c) ---- */
typedef struct Tensor {
    DType dt;
    int rank;
    int64_t dims[IR_MAXRANK];
    int64_t numel;
    void *data; /* 64-byte aligned, owned */
} Tensor;

/* Zeroed; NULL for shapes past RT_TENSOR_MAX_BYTES. Running out of memory
 * jumps to the caller's MemGuard as xmalloc does. */
Tensor *rt_tensor_new(DType dt, int rank, const int64_t *dims);
/* A tensor of a concrete shape (no N), NULL when out of memory too. */
Tensor *rt_tensor_try_for(DType dt, const Shape *s); /* zeroed; NULL on overflow */
Tensor *rt_tensor_like(const Tensor *t);
Tensor *rt_tensor_clone(const Tensor *t);
/* Concrete tensor for an IR shape with N := n. */
Tensor *rt_tensor_for(DType dt, const Shape *s, int64_t n);
void rt_tensor_free(Tensor *t);
double rt_get(const Tensor *t, int64_t i);
void rt_set(Tensor *t, int64_t i, double v);
bool rt_tensor_same_shape(const Tensor *a, const Tensor *b);
/* Does t fit IR shape s (N binds to t's dim)? On success *n is N (or -1 if
 * s has no N); n_in >= 0 requires that N. */
bool rt_tensor_matches(const Tensor *t, const Shape *s, int64_t n_in, int64_t *n);
char *rt_tensor_type_str(const Tensor *t, char *buf, size_t n);

/* ---- named tensor maps (tensor.c) ---- */
typedef struct TensorMap {
    int n, cap;
    char **names;
    Tensor **t;
} TensorMap;

void rt_map_init(TensorMap *m);
void rt_map_free(TensorMap *m); /* frees names and tensors */
/* Takes ownership of t; replaces an existing entry with the same name. */
void rt_map_put(TensorMap *m, const char *name, Tensor *t);
Tensor *rt_map_get(const TensorMap *m, const char *name);

/* ---- counter-based RNG (rng.c): Philox-4x32-10 ---- */
/* Four 32-bit words for (key, counter). Same inputs, same output, always. */
void rt_philox(uint64_t key, uint64_t ctr_hi, uint64_t ctr_lo, uint32_t out[4]);
/* Uniform in [0,1) for element idx of a stream; 24-bit (f32) resolution
 * is enough for masks, 53 bits are used. */
double rt_uniform(uint64_t seed, uint64_t stream, uint64_t step, uint64_t idx);
/* out[i] = rt_uniform(seed, stream, step, idx0 + i) for i < n, faster. */
void rt_uniform_fill(uint64_t seed, uint64_t stream, uint64_t step, uint64_t idx0, int64_t n, double *out);
double rt_normal(uint64_t seed, uint64_t stream, uint64_t step, uint64_t idx);

/* ---- initializers (init.c) ---- */
/* Fill t per init; fans from IR shape conventions (ir_fans). The stream
 * should be derived from the parameter name (rt_name_stream) so adding a
 * parameter does not change the others. */
void rt_init_tensor(Tensor *t, Init init, uint64_t seed, uint64_t stream);
uint64_t rt_name_stream(const char *name); /* FNV-1a 64 */
/* Initialise every PARAM of g into m (missing ones only unless overwrite),
 * each with dtype and shape of the param and stream rt_name_stream(name).
 * Params with INIT_NONE (values must come from a checkpoint) are skipped. */
/* A parameter that does not fit in memory is an error at its declaration
 * (false). */
bool rt_init_params(const Graph *g, TensorMap *m, uint64_t seed, bool overwrite, Diags *d);
/* The located error for a parameter whose tensor cannot be allocated. */
void rt_param_alloc_error(const Node *p, Diags *d);

/* Why rt_tensor_new(dt, rank, dims) gave NULL, for a message: "too large
 * (...)" past RT_TENSOR_MAX_BYTES, else "out of memory (N bytes)". */
const char *rt_tensor_failure(DType dt, int rank, const int64_t *dims, char *buf, size_t n);

/* Largest tensor rt_tensor_new allocates (bytes); larger requests get NULL. */
#define RT_TENSOR_MAX_BYTES ((int64_t)1 << 40)

/* ---- more tensor and map helpers (tensor.c) ---- */
int64_t rt_tensor_bytes(const Tensor *t);
/* Copy of t converted to dt (float->i32 truncates toward zero). */
Tensor *rt_tensor_cast(const Tensor *t, DType dt);
/* v as it reads back after rt_set into a tensor of dtype dt. */
double rt_dtype_round(DType dt, double v);
/* Remove name from m and return its tensor (the caller owns it); NULL when
 * absent. */
Tensor *rt_map_take(TensorMap *m, const char *name);
/* Index of name in m, or -1. */
int rt_map_find(const TensorMap *m, const char *name);

#endif
