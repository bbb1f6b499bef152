/* The LLVM backend: compiles a graph (after specialize/autodiff/simplify,
 * optionally fused) to native code with LLVM 19's ORC JIT, tuned to the
 * host CPU, with GEMM and convolution going to OpenBLAS.
 *
 * Compiled form. One LLVM function per kernel (a non-leaf node or a fused
 * group), inlined by the optimiser into one entry function
 *
 *     void entry(RtCtx *ctx, int64_t n, void **bufs)
 *
 * that runs every kernel in graph order for batch size N = n. `bufs` is
 * the buffer table: one pointer per buffer of the module. Buffers are
 *   - inputs and parameters (bound by the caller, never allocated here),
 *   - temporaries (intermediate values and kernel scratch), laid out in
 *     one workspace per batch size; temporaries whose lifetimes do not
 *     overlap share memory.
 * A reshape aliases its operand's buffer; scalar constants are folded
 * into the kernels that read them.
 *
 * Compilation. The module is built in parts (consecutive ranges of
 * kernels, balanced by an estimate of their compile cost); each part is
 * optimised and code-generated to an object file on its own thread and
 * the last part's entry calls the earlier parts' entries first. With a
 * cache directory, objects are stored under a hash of the part's IR,
 * the host CPU and the LLVM version, and a later compile of the same
 * part loads the object instead of running LLVM (damaged entries are
 * detected and compiled again).
 *
 * Updates. An OUT_UPDATE output writes the new value into its target
 * parameter's buffer during the step: in place, by the kernel computing
 * it, when every other reader of the parameter runs before that kernel
 * (elementwise kernels may read and write the same element); otherwise
 * into a temporary copied to the parameter after all kernels ran. After a
 * step the parameter's buffer holds the updated value and an output
 * reading the old parameter value gets a copy taken at the start.
 *
 * Training use: compile once, create one workspace per batch size
 * (be_jit_workspace_new, allocated once and reused), bind parameters and
 * optimizer slots once (persistent tensors updated in place), bind the
 * inputs of each batch (or copy into bound tensors), call be_jit_step.
 *
 * Numerics (docs/ops.md defines the values; the interpreter computes them
 * literally): sums reduced in registers (reduce_sum/mean over the
 * innermost axis, softmax denominators) carry the `reassoc` fast-math flag
 * so they vectorize, and GEMM/convolution sum in BLAS's order: these
 * differ from a sequential loop by rounding only. In f32, exp and tanh
 * (also inside sigmoid, elu, softmax) are inlined polynomials (Cephes
 * expf/tanhf, within 2 ulp of libm, same NaN/inf/zero results) so their
 * loops vectorize; f64 calls libm. Everything else is exact IEEE
 * arithmetic in the op's dtype, NaN rules included. */
#ifndef MODELC_JIT_H
#define MODELC_JIT_H

#include "backend/backend.h"
#include "ir/ir.h"
#include "ir/base/timer.h"
#include "runtime/kernels.h"
#include "runtime/runtime.h"

typedef struct JitOpts {
    int opt_level;    /* 0, 2 (default: modelc's loop pipeline) or 3 (LLVM's default<O3>) */
    bool fast_isel;   /* codegen at CodeGenLevelNone: ~3x faster codegen, slower code */
    bool time_passes; /* time IR build, optimisation, JIT codegen */
    int threads;      /* threads of the module's pool for be_jit_run; 0 = number of cores */
    Timer *timer;     /* with time_passes: phases are added here; NULL prints to stderr */
    int jobs;         /* compile threads; 0 = up to 2 on a multi-core host */
    const char *cache_dir; /* object cache directory (see be_jit_default_cache_dir); NULL = none */
    bool profile;     /* the entry times every kernel (be_jit_profile); off: no cost */
    bool step_done;   /* the entry calls rt_step_done(ctx, i) after each step i that finishes an
                         output (be_jit_out_step), for ctx->ready */
} JitOpts;

void be_jit_opts_default(JitOpts *o);
/* $XDG_CACHE_HOME/modelc, else $HOME/.cache/modelc; false if neither is set. */
bool be_jit_default_cache_dir(char *buf, size_t n);
/* Give back the memory compiling took that running compiled code does
 * not need: the resident pages of LLVM's machine code (read-only file
 * pages, read again from the library if a later compile runs it) and the
 * heap's free memory. For after a run's last compile; returns by how
 * many bytes the process's resident file pages fell. */
int64_t be_jit_release_compiler_memory(void);

typedef struct JitModule JitModule;

/* Would be_jit_compile accept g? Reports the same user-level problems
 * without building any code (cheap: for compiling later, on demand). */
bool be_jit_check(Graph *g, Diags *d);

/* Compile g. User-level problems (an op that cannot be compiled, e.g. an
 * unspecialised phase node) are diagnostics; NULL on error. g is not
 * kept: the module holds everything it needs. */
JitModule *be_jit_compile(Graph *g, const JitOpts *o, Diags *d);

/* Same contract as be_interp_run (backend/interp/interp.h): params and
 * inputs by name, N from the inputs, outs[i] new tensors for g->outs[i].
 * The caller's parameter tensors are never modified. */
bool be_jit_run(JitModule *m, const TensorMap *params, const TensorMap *inputs, const RunOpts *o,
                Tensor **outs, Diags *d);
void be_jit_free(JitModule *m);

/* The module's LLVM IR as text (malloc'd), before or after optimisation. */
char *be_jit_llvm_ir(Graph *g, const JitOpts *o, bool optimized, Diags *d);

/* ---- the lower-level interface (training loops, benchmarks) ---- */

typedef void (*JitEntryFn)(RtCtx *ctx, int64_t n, void **bufs);

typedef enum { JIT_BUF_INPUT, JIT_BUF_PARAM, JIT_BUF_TEMP } JitBufKind;

typedef struct JitBufInfo {
    JitBufKind kind;
    const char *name; /* inputs and parameters; NULL for temporaries */
    DType dt;
    Shape shape;      /* may contain N */
    bool used;        /* inputs/params: needed by the outputs (else may stay unbound) */
    SrcLoc loc;       /* inputs/params: where the leaf was declared */
    bool kept;        /* params: a step whose loss is NaN or infinite leaves it unchanged (its writes come
                       * after the loss and are skipped then) */
} JitBufInfo;

int be_jit_nbufs(const JitModule *m);
const JitBufInfo *be_jit_buf(const JitModule *m, int i);
/* Index of the input or parameter buffer with that name, -1 if none. */
int be_jit_find_buf(const JitModule *m, JitBufKind kind, const char *name);
/* Outputs in g->outs order: kind, name, dtype, shape, and the buffer that
 * holds the value after a step (for OUT_UPDATE: the target parameter). */
int be_jit_nouts(const JitModule *m);
const Output *be_jit_out(const JitModule *m, int i); /* val/target are NULL */
DType be_jit_out_dtype(const JitModule *m, int i);
/* The step after which output i holds its final value, -1 when it is
 * final before the first (rt_step_done's argument). */
int be_jit_out_step(const JitModule *m, int i);
const Shape *be_jit_out_shape(const JitModule *m, int i);
int be_jit_out_buf(const JitModule *m, int i);
JitEntryFn be_jit_entry(const JitModule *m);
const JitOpts *be_jit_opts(const JitModule *m);
/* Compile-phase times in ms when time_passes was on (else empty). */
const Timer *be_jit_timer(const JitModule *m);
typedef struct JitStats {
    int kernels;      /* kernel steps of the plan */
    int parts;        /* modules compiled apart */
    int threads;      /* threads that compiled them */
    int cached_parts; /* parts whose object came from the cache */
} JitStats;
const JitStats *be_jit_stats(const JitModule *m);

/* The steps of the entry in order, kernels and copies: what runs (op
 * name, "fused{op,...}" for a fused group, "copy"), the value it computes
 * as `modelc ir` prints it (or the parameter a copy serves), and the
 * source location of its node. */
typedef struct JitKernelInfo {
    const char *what;
    const char *value;
    SrcLoc loc;
} JitKernelInfo;

int be_jit_nkernels(const JitModule *m);
const JitKernelInfo *be_jit_kernel(const JitModule *m, int i);
/* Accumulated per-kernel times of a module compiled with opts.profile
 * (slot i = kernel i); NULL otherwise. be_jit_step records into it. */
RtProf *be_jit_profile(const JitModule *m);
/* The profile as a table, slowest kernel first: kernel, value, source
 * line, calls, ms per call, total ms, share of the time in kernels.
 * Prints nothing for a module without profiling or before its first run. */
void be_jit_profile_print(const JitModule *m, const char *title, FILE *f);

typedef struct JitWorkspace JitWorkspace;

/* Buffer table and temporaries for batch size n (n >= 0). NULL with a
 * diagnostic when the sizes overflow or memory runs out. */
JitWorkspace *be_jit_workspace_new(const JitModule *m, int64_t n, Diags *d);
/* Batch-size requirements of the graph for N = n (n < 0: N unbound):
 * some node needs N, a fixed slice of the batch axis is out of range.
 * be_jit_workspace_new checks them too. */
bool be_jit_check_n(const JitModule *m, int64_t n, Diags *d);
void be_jit_workspace_free(JitWorkspace *w);
int64_t be_jit_workspace_n(const JitWorkspace *w);
const JitModule *be_jit_workspace_module(const JitWorkspace *w);
int64_t be_jit_workspace_bytes(const JitWorkspace *w); /* temporaries only */
/* Print the workspace plan for batch size n (backend/llvm/plan_memory.c): every
 * temporary with its offset, bytes, live range in kernel steps and the
 * value it holds; the arena size against no reuse and the lower bound. */
bool be_jit_print_memory_plan(const JitModule *m, int64_t n, FILE *f, Diags *d);
/* Bind buffer i (an input or parameter) to t's data; t must match the
 * buffer's dtype and shape with N = n, and outlive its use. */
bool be_jit_bind(JitWorkspace *w, int i, Tensor *t, Diags *d);
/* Bind raw memory of the right size (no checks). */
void be_jit_bind_data(JitWorkspace *w, int i, void *data);
/* True when every used input and parameter buffer is bound; else a
 * diagnostic naming the first missing one. */
bool be_jit_ready(const JitWorkspace *w, Diags *d);
/* Run one step: entry(ctx, n, bufs). Keeps OpenBLAS single-threaded
 * and runs kernels on the module's threads (opts.threads) unless
 * ctx->pool is set;
 * a profiling module records into its profile unless ctx->prof is set. */
void be_jit_step(JitWorkspace *w, RtCtx *ctx);
/* After a step with ctx: true when no kernel met a run-time fault (an
 * index out of range, RtCtx.fault_step); else false with a diagnostic at
 * the kernel's node naming its op, the index and the axis length (the
 * interpreter's message). */
bool be_jit_faults_ok(const JitModule *m, const RtCtx *ctx, Diags *d);
/* Output i's data after a step (valid until the next step). */
void *be_jit_out_data(const JitWorkspace *w, int i);
/* Number of elements of output i for this workspace's n. */
int64_t be_jit_out_numel(const JitWorkspace *w, int i);

#endif
