/* Runtime kernels called by JIT-compiled code: the run context (RNG seed,
 * step, threads), GEMM over OpenBLAS split into parts, convolution as
 * im2col/col2im + GEMM, and 2-D pooling with its adjoints. Tensors are
 * row-major; images NHWC, kernels HWIO. Every function exists in an f32
 * and an f64 version; the JIT resolves them by name from the process. */
#ifndef MODELC_KERNELS_H
#define MODELC_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Everything a compiled step reads besides its buffers. The layout is
 * read by generated code (seed at offset 0, step at offset 8): append
 * new fields at the end only. */
typedef struct RtProf RtProf;
typedef struct RtPool RtPool;

/* The processes of a data-parallel job, as replica_mean sees them:
 * mean(env, data, n, f64) replaces data[0..n) (doubles when f64, floats
 * otherwise) by its mean over the processes, weighted by each process's
 * share of the global batch's rows (docs/ops.md). The driver provides it;
 * without one (a single process) replica_mean is the identity. */
typedef struct RtReplica {
    void *env;
    void (*mean)(void *env, void *data, int64_t n, int f64);
} RtReplica;

typedef struct RtCtx {
    uint64_t seed;  /* RNG seed for dropout masks */
    uint64_t step;  /* training step (RNG counter) */
    int threads;    /* threads asked for; 0 = number of cores (the pool runs them) */
    RtProf *prof;   /* per-kernel times (a profiling entry); NULL = none */
    RtPool *pool;   /* threads for runtime and row-parallel kernels; NULL = serial */
    /* The first run-time fault of a run (an index out of range): the
     * step (kernel) that met it plus 1 (0: none), the index and the
     * length of the axis it indexes. The kernel leaves zeros where the
     * bad index pointed and the run goes on; the caller reports it. */
    int32_t fault_step;
    double fault_value;
    int64_t fault_bound;
    const RtReplica *replica; /* the data-parallel job; NULL = one process */
    const struct RtReady *ready; /* step_done's listener; NULL = none */
    struct RtEpilogue *epi;      /* the pending epilogues (rt_epilogue_begin); NULL = none */
    bool gemm_bf16;              /* f32 GEMMs on bf16 operands (rt_gemm_bf16_f32) */
    struct RtEpilogue {
        int n, pending;
        struct {
            void (*fn)(void *env, int64_t lo, int64_t hi);
            void *env;
            int64_t chunk, scale; /* scale: the thunk's units per row (elements of a flat one) */
        } k[4];
    } epi_at;
} RtCtx;
#define RT_EPILOGUES 4 /* kernels one call can run after each image */
typedef struct RtEpilogue RtEpilogue;

/* An entry compiled with JitOpts.step_done calls rt_step_done(ctx, i)
 * after each step i that finishes one of its outputs; the data-parallel
 * driver listens (done(env, i)) to start summing gradients while the
 * backward pass still runs. On the calling thread. */
typedef struct RtReady {
    void *env;
    void (*done)(void *env, int64_t step);
} RtReady;
void rt_step_done(const RtCtx *c, int64_t step);

void rt_ctx_init(RtCtx *c, int threads);
/* The BLAS kernels in use, in words (kernels.c: OpenBLAS's choice is
 * re-selected by instruction set when it fell below AVX2 on a CPU with
 * AVX2; MODELC_BLAS_AS_LOADED=1 keeps it). */
const char *rt_blas_core(char *buf, size_t n);
/* Number of threads `threads` stands for (0 -> number of cores). */
int rt_threads_resolve(int threads);
/* Keep OpenBLAS single-threaded (a process-wide setting, changed only
 * when it differs): rt_gemm_* split GEMMs on the context's pool, because
 * OpenBLAS's own threads give results that depend on their number. Its
 * worker threads are already stopped when the runtime loads (kernels.c,
 * blas_quiet_at_load). */
void rt_ctx_apply_threads(const RtCtx *c);

/* Per-kernel wall times of a profiling entry (one compiled with calls
 * between its kernels): the entry calls rt_prof_begin once, then
 * rt_prof_tick(ctx, i) after its i-th kernel or copy, which adds the time
 * since the previous call to slot i. Ordinary entries make no calls. */
struct RtProf {
    int n;           /* slots: the entry's kernels and copies */
    int64_t *ns;     /* per slot: accumulated wall time in nanoseconds */
    int64_t *calls;  /* per slot: times it ran */
    int64_t runs;    /* entry calls */
    int64_t last;    /* clock of the previous tick (ns) */
};

RtProf *rt_prof_new(int n);
void rt_prof_free(RtProf *p);
void rt_prof_reset(RtProf *p);
void rt_prof_begin(RtCtx *c);
void rt_prof_tick(RtCtx *c, int32_t i);

/* Threads (runtime/pool.c). Work is cut into tasks whose number and
 * extent depend only on the problem size, never on the thread count, and
 * each task writes its own outputs: results are the same for any number
 * of threads. */
typedef void (*RtTaskFn)(void *arg, int64_t task);
typedef void (*RtRowsFn)(void *env, int64_t lo, int64_t hi);
RtPool *rt_pool_new(int nthreads); /* nthreads including the caller */
void rt_pool_free(RtPool *p);
int rt_pool_threads(const RtPool *p); /* 1 for NULL */
/* fn(arg, t) for t in [0, ntasks), on the pool's threads (serially
 * without a pool); returns when all are done. */
void rt_pool_run(RtPool *p, int64_t ntasks, RtTaskFn fn, void *arg);
void rt_parallel(const RtCtx *c, int64_t ntasks, RtTaskFn fn, void *arg);
/* fn(env, lo, hi) over [0, n) in chunks of `chunk` rows (generated
 * row-parallel kernels call this). */
void rt_parallel_rows(const RtCtx *c, int64_t n, int64_t chunk, RtRowsFn fn, void *env);
/* The same, but one call per chunk even without a pool (a generated
 * reduction over the batch axis writes one partial result per chunk). */
void rt_parallel_parts(const RtCtx *c, int64_t n, int64_t chunk, RtRowsFn fn, void *env);

/* Epilogues: a generated entry runs kernels that read the result of a
 * convolution or pooling gradient (a row-parallel kernel, or pooling,
 * and then kernels reading theirs) right after it as
 * rt_epilogue_begin(ctx, thunk, env, chunk, scale) for each, in order;
 * the runtime call; rt_epilogue_end(ctx, n). A thunk counts in units,
 * scale of them per row: rows (scale 1), or the elements of a flat
 * kernel (scale = a row's elements). A runtime kernel that computes its
 * result image by image takes them (rt_epilogue_take) and runs
 * rt_epilogue_run(e, b) right after image b: each fn(env, b * scale,
 * (b + 1) * scale) in order, while the image is in cache; otherwise
 * rt_epilogue_end runs each over all n * scale units in turn as
 * rt_parallel_rows would (chunk units per task). Units are independent
 * in such kernels, so the results are the same either way. */
void rt_epilogue_begin(RtCtx *c, RtRowsFn fn, void *env, int64_t chunk, int64_t scale);
void rt_epilogue_end(RtCtx *c, int64_t n);
/* The pending epilogues, now the caller's to run on every image of a
 * batch of n, or NULL: none pending, or a batch too small to keep every
 * thread busy with whole images (n < 2 threads). */
const RtEpilogue *rt_epilogue_take(const RtCtx *c, int64_t n);
void rt_epilogue_run(const RtEpilogue *e, int64_t b);

/* Philox-4x32-10's multipliers and key increments (runtime/rng.c, and
 * the dropout masks' vector rounds in kernels.c). */
#define RT_PHILOX_M0 0xD2511F53u
#define RT_PHILOX_M1 0xCD9E8D57u
#define RT_PHILOX_W0 0x9E3779B9u
#define RT_PHILOX_W1 0xBB67AE85u

/* x[j] = the 64-bit word pair (c1 << 32 | c0) of Philox-4x32-10 with key
 * and counter (idx + j, step), for j < RT_PHILOX_LANES, in the widest
 * instruction set the CPU has (kernels.c). */
#define RT_PHILOX_LANES 64
void rt_philox_block(uint64_t key, uint64_t step, uint64_t idx, uint64_t *x);

/* rt_uniform(ctx->seed, stream, ctx->step, idx) (runtime/rng.c): the
 * uniform number behind element idx of a dropout mask. */
double rt_dropout_uniform(const RtCtx *c, uint64_t stream, uint64_t idx);
/* A whole dropout mask of n elements (docs/ops.md, dropout_mask):
 * out[i] = rt_dropout_uniform(c, stream, i) >= rate ? 1/(1-rate) : 0,
 * in blocks of RT_DROPOUT_BLOCK elements on the context's threads. */
#define RT_DROPOUT_BLOCK 8192
void rt_dropout_mask_f32(const RtCtx *c, uint64_t stream, double rate, int64_t n, float *out);
void rt_dropout_mask_f64(const RtCtx *c, uint64_t stream, double rate, int64_t n, double *out);

/* out = x (n elements), then replaced by its weighted mean over the
 * processes through c->replica (docs/ops.md, replica_mean). Runs on the
 * calling thread: the job's communication happens there. */
void rt_replica_mean_f32(const RtCtx *c, int64_t n, const float *x, float *out);
void rt_replica_mean_f64(const RtCtx *c, int64_t n, const double *x, double *out);

/* C[m,n] = alpha * op(A) @ op(B) + beta * C, op = transpose when ta/tb.
 * A is [m,k] ([k,m] if ta), B is [k,n] ([n,k] if tb). Any size may be 0.
 * C is cut along its longer side into at most RT_GEMM_PARTS parts of a
 * multiple of RT_GEMM_ALIGN rows or columns, with at least RT_GEMM_SIDE
 * of them (every part packs the other operand again, k x the other side,
 * so that is at most 1/RT_GEMM_SIDE of its multiply-adds; a side of
 * 2 * RT_GEMM_SIDE_MIN to 2 * RT_GEMM_SIDE still goes in two parts, such
 * as the batch-128 GEMM of a dense layer on a large input) and at least
 * RT_GEMM_GRAIN multiply-adds each (one part below that); each part is
 * one single-threaded BLAS call, a task on the context's pool. The cut
 * depends only on the shape, so results do not depend on the threads. */
#define RT_GEMM_PARTS 4
#define RT_GEMM_ALIGN 16
#define RT_GEMM_SIDE 128
#define RT_GEMM_SIDE_MIN 64
#define RT_GEMM_GRAIN ((int64_t)1 << 20)
void rt_gemm_f32(const RtCtx *ctx, int32_t ta, int32_t tb, int64_t m, int64_t n, int64_t k, float alpha,
                 const float *a, const float *b, float beta, float *c);
void rt_gemm_f64(const RtCtx *ctx, int32_t ta, int32_t tb, int64_t m, int64_t n, int64_t k, double alpha,
                 const double *a, const double *b, double beta, double *c);
/* The register-blocked f32 GEMM (gemm_blocked.c) rt_gemm_f32 runs when
 * the CPU has AVX2+FMA or AVX-512 (rt_conv_isa_level() >= 2, so
 * MODELC_CONV_ISA=sse2 tests the OpenBLAS route) and m >= 2, unless
 * MODELC_GEMM=blas: C (m x n) = alpha * op(A) op(B) + beta * C, row-major,
 * op(A) m x k, op(B) k x n. Each element is one sum over k in order (in
 * equal blocks of at most 1024), so results depend neither on the thread
 * count nor on the instruction set. Returns false when it does not apply
 * (the caller then uses OpenBLAS). */
bool rt_gemm_blocked_f32(const RtCtx *ctx, int32_t ta, int32_t tb, int64_t m, int64_t n, int64_t k, float alpha,
                         const float *a, const float *b, float beta, float *c);
/* The f32 GEMM on bf16 operands (gemm_bf16.c) that rt_gemm_f32 runs when
 * the context asks for it (RtCtx.gemm_bf16; mc_options.precision): A and
 * B rounded to bf16 (nearest even), their products summed in f32 by AMX
 * tiles or AVX512-BF16's pair dot products, the same bits for any thread
 * count. False (the caller computes in f32) without either, which
 * rt_cpu_has_bf16 tells (AMX also needs the kernel's leave, asked once). */
bool rt_gemm_bf16_f32(const RtCtx *ctx, int32_t ta, int32_t tb, int64_t m, int64_t n, int64_t k, float alpha,
                      const float *a, const float *b, float beta, float *c);
/* rt_gemm_f32 keeps a GEMM of fewer rows in f32 even when asked for bf16:
 * each call converts all of B, which costs more than a few rows of
 * products save (batch 1 through the MLP: 0.086 ms in bf16, 0.014 in
 * f32's matrix-vector products). */
#define RT_GEMM_BF16_MIN_ROWS 16
bool rt_cpu_has_bf16(void);
/* The calling thread's packing buffer of the blocked GEMMs (at least
 * `bytes`, 64-byte aligned, kept between calls, freed when the thread
 * ends; NULL when out of memory), and the OpenBLAS fallback for C's
 * rectangle [i0, i1) x [j0, j1) when there is none (gemm_blocked.c). */
void *rt_gemm_thread_buf(size_t bytes);
/* How a blocked GEMM's C (m x n, tiles nr columns wide) is cut among the
 * context's threads: *parts rectangles of *part columns (by_cols) or
 * rows; one below 2^19 multiply-adds. */
void rt_gemm_split(const RtCtx *ctx, int64_t m, int64_t n, int64_t k, int nr, bool *by_cols, int64_t *parts,
                   int64_t *part);
/* Rectangle t of that cut: rows [r[0], r[1]) and columns [r[2], r[3]);
 * false when it is empty. */
bool rt_gemm_rect_of(int64_t m, int64_t n, bool by_cols, int64_t part, int64_t t, int64_t r[4]);
void rt_gemm_rect_blas(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, const float *b,
                       float beta, float *c, int64_t i0, int64_t i1, int64_t j0, int64_t j1);

/* Convolution geometry, all int64 so generated code can fill it as an
 * array: input [n,h,w,c], kernel [kh,kw,c,o], output [n,oh,ow,o], strides
 * (sh, sw), top/left padding (pt, pl); bottom/right padding is implied by
 * oh/ow. `chunk` images go through im2col at a time; the scratch buffer
 * holds chunk*oh*ow*kh*kw*c elements. */
typedef struct RtConvGeom {
    int64_t n, h, w, c, kh, kw, o, oh, ow, sh, sw, pt, pl, chunk;
} RtConvGeom;
#define RT_CONV_GEOM_FIELDS 14

/* Convolutions with at most this many output channels run as direct
 * loops (no im2col); 1x1 stride-1 unpadded ones as one GEMM; f32 ones
 * register-blocked (below); the rest (f64, and the input gradient at a
 * stride above 1 or with few input channels) as im2col/col2im + GEMM (one
 * GEMM per chunk of images, transposes as BLAS flags). Images are split
 * over the context's threads (im2col, col2im, direct loops), GEMMs into
 * parts (rt_gemm_*). */
#define RT_CONV_FEW_OUT 4

/* f32 convolutions with more output channels run as register-blocked
 * loops over NHWC without im2col (conv_blocked.c): the forward one and,
 * at stride 1, the input gradient (as a forward convolution of dy with
 * the flipped kernel) from a packed copy of the kernel in the scratch
 * buffer; the kernel gradient as tiles of dk held in registers over each
 * image. Micro-kernels for AVX-512, AVX2+FMA, SSE2 and portable C; the
 * best the CPU has runs, or the one MODELC_CONV_ISA names. */
enum { RT_CONV_FWD, RT_CONV_GRAD_INPUT, RT_CONV_GRAD_KERNEL };
#define RT_CONV_BLOCKED_MIN_C 8 /* fewer input channels: the input gradient goes through col2im */
void rt_conv_blocked_fwd(const RtCtx *ctx, const RtConvGeom *g, const float *x, const float *k, float *y,
                         float *scratch, float alpha);
void rt_conv_blocked_grad_input(const RtCtx *ctx, const RtConvGeom *g, const float *dy, const float *k, float *dx,
                                float *scratch);
void rt_conv_blocked_grad_kernel(const RtCtx *ctx, const RtConvGeom *g, const float *x, const float *dy,
                                 float *dk);
/* The same with at most 4 (RT_CONV_FEW_OUT) output channels: vectors
 * along the input channels. */
void rt_conv_blocked_few(const RtCtx *ctx, const RtConvGeom *g, const float *x, const float *k, float *y,
                         float *scratch, float alpha);
void rt_conv_blocked_few_grad_kernel(const RtCtx *ctx, const RtConvGeom *g, const float *x, const float *dy,
                                     float *dk);
/* Floats of the packed kernel of a kh x kw x c x o convolution (-1 on
 * overflow). */
int64_t rt_conv_blocked_pack_size(int64_t kh, int64_t kw, int64_t c, int64_t o);

/* The instruction set of the f32 convolution micro-kernels: 0 portable
 * C, 1 SSE2, 2 AVX2+FMA, 3 AVX-512; the best the CPU has, or the one
 * MODELC_CONV_ISA names (chosen once per process). */
int rt_conv_isa_level(void);

/* Winograd convolutions (conv_winograd.c): 3x3, stride-1 f32
 * convolutions with at least RT_CONV_WINO_MIN_C input and output channels
 * run as F(m x m, 3 x 3) (m = 4, or 2 where docs/ops.md says): input
 * tiles of (m+2) x (m+2) pixels and the kernel go to the Winograd domain,
 * one small GEMM per tile position multiplies them over the channels,
 * and the products come back as m x m output tiles. Every output element
 * is one sum in an order fixed by the shape, whatever the split into
 * tasks. MODELC_CONV_WINOGRAD=0 turns it off (the register-blocked loops
 * run), =2 or =4 takes F(2x2,3x3) or F(4x4,3x3) for every pass.
 *
 * The forward convolution and the input gradient go in two steps:
 * rt_conv_wino_prepare writes the transformed kernel into the scratch
 * buffer (rt_conv_wino_scratch floats); rt_conv_wino_run then computes
 * the g->n images of x (for RT_CONV_GRAD_INPUT, of dy) into y (dx),
 * serially on the calling thread, reading the scratch buffer only: runs
 * over different images (x and y offset by the caller, g->n the count)
 * may execute at once. Its temporary buffers are its own (xmalloc). */
#define RT_CONV_WINO_MIN_C 16
/* Does `which` (RT_CONV_*) of g run as Winograd? (shape and switch) */
bool rt_conv_wino_applies(const RtConvGeom *g, int which);
/* The output tile m (2 or 4) `which` of g uses. */
int rt_conv_wino_tile(const RtConvGeom *g, int which);
/* Floats of the transformed kernel, or for RT_CONV_GRAD_KERNEL of the
 * partial sums of its chunks (0 for shapes Winograd does not take, -1 on
 * overflow); an upper bound over
 * instruction sets and tiles, which depends on the shape only, not on
 * MODELC_CONV_WINOGRAD (an object compiled ahead of time may run with
 * another setting). */
int64_t rt_conv_wino_scratch(const RtConvGeom *g, int which);
void rt_conv_wino_prepare(const RtConvGeom *g, int which, const float *k, float *scratch);
void rt_conv_wino_run(const RtConvGeom *g, int which, const float *x, const float *scratch, float *y, float alpha);
/* The whole pass on the context's threads: y = alpha conv(x, k) for
 * RT_CONV_FWD, dx = grad_input(dy, k) for RT_CONV_GRAD_INPUT; a pending
 * epilogue (rt_epilogue_take) runs after each image. */
void rt_conv_wino(const RtCtx *ctx, const RtConvGeom *g, int which, const float *x, const float *k, float *y,
                  float *scratch, float alpha);
/* dk = conv2d_grad_kernel(x, dy): sums of Winograd-domain products over
 * fixed chunks of images (partial sums per chunk, added in chunk order),
 * in scratch (rt_conv_wino_scratch floats; NULL: a buffer of its own). */
void rt_conv_wino_grad_kernel(const RtCtx *ctx, const RtConvGeom *g, const float *x, const float *dy, float *dk,
                              float *scratch);

/* Elements of scratch convolution `which` (RT_CONV_*) needs in elements
 * of elem_bytes (0 when none; -1 when the count overflows int64). */
int64_t rt_conv_scratch(const RtConvGeom *g, int which, int elem_bytes);

/* y = alpha conv(x, k) */
void rt_conv2d_f32(const RtCtx *ctx, const RtConvGeom *g, const float *x, const float *k, float *y, float *col,
                   double alpha);
void rt_conv2d_f64(const RtCtx *ctx, const RtConvGeom *g, const double *x, const double *k, double *y, double *col,
                   double alpha);
/* dx = conv2d_grad_input(dy, k) */
void rt_conv2d_grad_input_f32(const RtCtx *ctx, const RtConvGeom *g, const float *dy, const float *k, float *dx,
                              float *col);
void rt_conv2d_grad_input_f64(const RtCtx *ctx, const RtConvGeom *g, const double *dy, const double *k, double *dx,
                              double *col);
/* dk = conv2d_grad_kernel(x, dy) */
void rt_conv2d_grad_kernel_f32(const RtCtx *ctx, const RtConvGeom *g, const float *x, const float *dy, float *dk,
                               float *col);
void rt_conv2d_grad_kernel_f64(const RtCtx *ctx, const RtConvGeom *g, const double *x, const double *dy, double *dk,
                               double *col);

/* Pooling geometry: input [n,h,w,c], window (kh,kw), output [n,oh,ow,c]. */
typedef struct RtPoolGeom {
    int64_t n, h, w, c, kh, kw, oh, ow, sh, sw, pt, pl;
} RtPoolGeom;
#define RT_POOL_GEOM_FIELDS 12

/* Max over the window's in-bounds elements (padding never wins). */
void rt_max_pool2d_f32(const RtCtx *ctx, const RtPoolGeom *g, const float *x, float *y);
void rt_max_pool2d_f64(const RtCtx *ctx, const RtPoolGeom *g, const double *x, double *y);
/* The gradient of each window goes to its first maximum (row-major). */
void rt_max_pool2d_grad_f32(const RtCtx *ctx, const RtPoolGeom *g, const float *x, const float *dy, float *dx);
void rt_max_pool2d_grad_f64(const RtCtx *ctx, const RtPoolGeom *g, const double *x, const double *dy, double *dx);
/* Mean over the window's in-bounds elements (padding excluded). */
void rt_avg_pool2d_f32(const RtCtx *ctx, const RtPoolGeom *g, const float *x, float *y);
void rt_avg_pool2d_f64(const RtCtx *ctx, const RtPoolGeom *g, const double *x, double *y);
void rt_avg_pool2d_grad_f32(const RtCtx *ctx, const RtPoolGeom *g, const float *dy, float *dx);
void rt_avg_pool2d_grad_f64(const RtCtx *ctx, const RtPoolGeom *g, const double *dy, double *dx);

/* Gather geometry: the gathered tensor as [outer, len, inner] around the
 * axis, nidx indices of dtype idt (0 f32, 1 f64, 2 i32: DType's values),
 * and the plan step of the kernel (for the fault). */
typedef struct RtGatherGeom {
    int64_t outer, len, inner, nidx, idt, step;
} RtGatherGeom;
#define RT_GATHER_GEOM_FIELDS 6

/* Index j of a gather as an offset in [0, len), or -1 (not an integer,
 * out of range, NaN). */
int64_t rt_gather_index(const RtGatherGeom *g, const void *idx, int64_t j);
/* Record a fault in c unless one is recorded already. */
void rt_fault(RtCtx *c, int64_t step, double value, int64_t bound);
/* y[o, j, :] = x[o, idx[j], :]; a bad index is a fault (y stays zero
 * there). */
void rt_gather_f32(RtCtx *c, const RtGatherGeom *g, const float *x, const void *idx, float *y);
void rt_gather_f64(RtCtx *c, const RtGatherGeom *g, const double *x, const void *idx, double *y);
/* gx = 0, then gx[o, idx[j], :] += gy[o, j, :] for o, then j ascending. */
void rt_gather_grad_f32(RtCtx *c, const RtGatherGeom *g, const float *gy, const void *idx, float *gx);
void rt_gather_grad_f64(RtCtx *c, const RtGatherGeom *g, const double *gy, const void *idx, double *gx);

#endif
