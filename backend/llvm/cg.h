/* Internal interface of the LLVM backend: symbolic sizes and the buffer
 * and kernel plan (plan.c), the code-generation context, types, calls and
 * kernel functions (cgutil.c), loop nests (loops.c), elementwise and
 * data-movement kernels (elem.c), vectorizable exp/tanh (vmath.c),
 * reductions and softmax (reduce.c), blocked pairwise sums (sums.c),
 * runtime calls (calls.c) and the module (codegen.c). Not a public
 * header. */
#ifndef MODELC_CG_H
#define MODELC_CG_H

#include <llvm-c/Core.h>

#include "backend/llvm/jit.h"

/* ---- symbolic sizes: c * N^p ---- */
typedef struct Mono {
    int64_t c;
    int p;
} Mono;

Mono mono(int64_t c);
Mono mono_dim(int64_t d); /* N*k -> k N */
Mono mono_mul(Mono a, Mono b);
bool mono_eq(Mono a, Mono b);
bool mono_is(Mono a, int64_t c); /* constant c */
Mono mono_numel(const Shape *s);
/* Value for N = n; -1 on overflow. */
int64_t mono_eval(Mono m, int64_t n);
/* Row-major strides of s (elements). */
void mono_strides(const Shape *s, Mono *st);

/* A location kept by a module, re-interned in d so that diagnostics
 * outlive the module (jit.c). */
SrcLoc jit_diag_loc(Diags *d, SrcLoc l);

/* ---- the plan: buffers (slots) and steps ---- */
typedef struct Slot {
    JitBufKind kind;
    const char *name; /* inputs/params: the leaf's name (graph arena) */
    DType dt;
    Shape shape;
    Mono elems;       /* elements (scratch: static) */
    int first, last;  /* steps during which a temporary is live */
    bool used;        /* inputs/params: read by some needed node */
    SrcLoc loc;       /* inputs/params: the leaf's location */
    int64_t tile_rows; /* a batch tile's own temporary: allocated for min(N, tile_rows) rows (plan_tiles), or 0 */
    bool kept;         /* params: a step whose loss is not finite leaves it unchanged (plan_guards) */
} Slot;

/* Elements of a slot allocated for batch size n: its size, or a batch
 * tile's rows of it; -1 on overflow. */
int64_t plan_slot_elems(Mono elems, int64_t tile_rows, int64_t n);

/* A slice of the batch axis with a fixed range [begin:end): needs N >= end. */
typedef struct NCheck {
    Node *node;
    int axis;
    const Shape *whole; /* the sliced tensor's shape */
} NCheck;

typedef enum { STEP_KERNEL, STEP_COPY } StepKind;

typedef struct Step {
    StepKind kind;
    Node *node;   /* KERNEL: the node computed */
    int out;      /* destination slot */
    int src;      /* COPY: source slot */
    int scratch;  /* KERNEL: scratch slot, -1 if none */
    int scratch2; /* KERNEL: a loop's second scratch slot (its body's buffers whose size is a multiple of N), -1 */
    bool epilogue; /* KERNEL: runs inside the previous step, image by image (plan_epilogues) */
    int tile;          /* KERNEL: its batch tile (1, 2, ...; plan_tiles), 0 if none */
    int64_t tile_rows; /* rows of the batch per pass of its tile */
    bool guarded;      /* writes a parameter after the loss: skipped when the loss is not finite (plan_guards) */
} Step;

typedef struct Plan {
    Graph *g;
    Slot *slots;
    int nslots, slotcap;
    Step *steps;
    int nsteps, stepcap;
    int *node_slot; /* by node id; -1 for constants folded into kernels */
    int *node_part; /* by node id: a fused kernel's result 1 in part_slot, or -1 */
    int *part_slot; /* slots of fused kernels' fresh results (-1 for side updates) */
    int nparts, partcap;
    int *out_slot;  /* by output index */
    bool step_done; /* the entry calls rt_step_done after each step that finishes an output */
    int guard_slot; /* the loss's slot, read by the guarded steps; -1: none */
    Node *needs_n;  /* first computed node whose type contains N, or NULL */
    NCheck *nchecks;
    int nnchecks, nncheckcap;
} Plan;

/* Row-parallel kernels (codegen.c): tasks of CG_ROW_GRAIN elements, rows
 * of at least CG_ROW_MIN elements; a reduction over the batch axis runs
 * as CG_RED_TASKS ranges of rows into partial results. */
#define CG_ROW_GRAIN 32768
#define CG_ROW_MIN 1024
#define CG_RED_TASKS 8
bool plan_has_n_after(const Shape *s, int from); /* an N among dims [from, rank) */
/* Rows per task of a row-parallel step, 0 for other steps (codegen.c). */
int64_t cg_row_chunk(const Plan *p, const Step *st);
bool plan_n_leading(const Shape *s);             /* leads with N or N*k, has no other N */
int64_t plan_row_elems(const Shape *s);          /* elements per example of an N-leading shape */
/* Does a buffer seen as shape `view` in slot s split by rows (1), stay
 * whole (0), or neither (-1)? */
int plan_split_kind(const Plan *p, int s, const Shape *view);
/* A reduction over the batch axis (a reduce op, or a fused node ending
 * with one) whose buffers split by rows or stay whole, with rows of at
 * least CG_ROW_MIN elements: CG_RED_TASKS ranges of rows reduce into
 * partial results (the step's scratch), combined in order after. */
bool plan_batch_reduction(const Plan *p, const Node *v);

bool plan_build(Plan *p, Graph *g, Diags *d);
/* The same for a loop's body (loop.c): no batch tiles, as its buffers
 * live in the loop's scratch regions. */
bool plan_build_body(Plan *p, Graph *g, Diags *d);
/* Batch tiles (plan_tiles.c): runs of consecutive steps that compute
 * each example's rows from that example's rows alone (convolutions,
 * pooling, row-parallel kernels and their gradients by input), run a few
 * rows of the batch at a time through the whole run, so that the
 * temporaries made and used only inside the run (Slot.tile_rows) hold a
 * tile's rows instead of the batch's. MODELC_NO_TILE=1 turns them off. */
void plan_tiles(Plan *p);
/* Before the live ranges: a kernel on weights alone (no batch axis)
 * right after a step that can join a tile moves up to just after what
 * it depends on, so that it does not cut a run in two. */
void plan_tiles_order(Plan *p);
/* Does step k use a slot that step m writes, or write one m uses?
 * (plan.c) */
bool plan_steps_depend(const Plan *p, int k, int m);
/* Move step `from` to position `to` < from, the steps between one later. */
void plan_move_step(Plan *p, int from, int to);
/* The body of loop v as planned on its own (loop.c): a copy whose
 * carried-state updates are plain outputs, its plan, and where each of
 * its buffers lives in the loop's two scratch regions: bytes of the
 * constant region (scratch) and per unit of N (scratch2); off[s] is slot
 * s's offset in its region (region[s] 0 or 1; -1 for an invariant
 * operand's slot, which is the loop operand's buffer). */
typedef struct LoopPlan {
    Graph *body;
    Plan plan;
    int64_t *off;
    int *region;
    int *input_slot; /* body input k -> its slot */
    int64_t bytes[2];
} LoopPlan;
bool plan_loop(LoopPlan *lp, const Node *v, Diags *d);
void plan_loop_free(LoopPlan *lp);
/* The step after which output i holds its final value (the last step that
 * writes its slot), -1 when no step does; and whether step s is that
 * step for some output. */
int plan_out_step(const Plan *p, int i);
bool plan_out_step_finishes(const Plan *p, int s);
/* The slot of fresh result j (>= 1) of fused kernel v, or -1 when body
 * output j is a side update (written into its parameter operand). */
int plan_part_slot(const Plan *p, const Node *v, int j);
void plan_free(Plan *p);
/* Does an elementwise kernel read constant node v inline? */
bool plan_const_inline(const Plan *p, const Node *v);
/* Scratch elements of a convolution kernel (0 if none). */
int64_t plan_conv_chunk(const Node *v);

/* ---- code generation context ---- */
#define CG_MAXARGS 32
#define CG_GEMM_ONLY 1
#define CG_EPILOGUE_ONLY 2

typedef struct Cg {
    LLVMContextRef cx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMTypeRef i1, i32, i64, f32, f64, ptr, vd;
    const Plan *plan;
    /* the kernel being built */
    LLVMValueRef fn, ctxp, n;
    bool flat; /* an elementwise kernel over N elements of a flat buffer (codegen.c) */
    bool partial; /* a batch reduction's kernel: a mean is left a sum (plan_batch_reduction) */
    int gemm_part; /* a GEMM's fused kernel split in two (codegen.c, gemm_epilogue_chunk):
                      CG_GEMM_ONLY or CG_EPILOGUE_ONLY; 0 = both in one kernel */
    const char *prefix; /* of kernel names: "" for the module's plan, "kI.loop." for a loop body's */
    int step;     /* the plan step of the kernel being built (run-time faults name it) */
    LLVMBasicBlockRef alloca_bb;
    int nk;
    int kslot[CG_MAXARGS];
    LLVMValueRef kptr[CG_MAXARGS];
    MemCleanup on_jump; /* disposes b if the allocator jumps out */
} Cg;

void cg_init(Cg *c, LLVMContextRef cx, LLVMModuleRef mod, const Plan *p);
void cg_dispose(Cg *c);

/* Types and constants. */
LLVMTypeRef cg_type(Cg *c, DType t);
LLVMValueRef cg_i64(Cg *c, int64_t v);
LLVMValueRef cg_fconst(Cg *c, DType t, double v);
LLVMValueRef cg_mono(Cg *c, Mono m);
/* Call a function by name (declared on first use). */
LLVMValueRef cg_call(Cg *c, const char *name, LLVMTypeRef ret, LLVMTypeRef *pt, int np,
                     LLVMValueRef *args);
/* Call an overloaded intrinsic ("llvm.exp") at type t. */
LLVMValueRef cg_intrinsic(Cg *c, const char *name, LLVMTypeRef t, LLVMValueRef *args, int nargs);
LLVMValueRef cg_alloca(Cg *c, LLVMTypeRef t, const char *name);
LLVMValueRef cg_load(Cg *c, DType t, LLVMValueRef base, LLVMValueRef off);
void cg_store(Cg *c, DType t, LLVMValueRef v, LLVMValueRef base, LLVMValueRef off);
/* Convert a loaded value of type from to type to. */
LLVMValueRef cg_convert(Cg *c, LLVMValueRef v, DType from, DType to);

/* Kernel functions: `void name(ptr ctx, i64 N, ptr buf...)`, one noalias
 * pointer per distinct slot; cg_buf gives the pointer of a slot. */
void cg_kernel_begin(Cg *c, const char *name, const int *slots, int nslots);
LLVMValueRef cg_buf(Cg *c, int slot);
void cg_kernel_end(Cg *c);

/* ---- loop nests (loops.c) ---- */
/* How one buffer is addressed inside a nest: element offset at the
 * origin plus one stride per nest dimension. A NULL base makes an index
 * counter (the offset is the index itself). */
typedef struct Acc {
    LLVMValueRef base;
    LLVMValueRef off; /* i64; NULL = 0 */
    Mono stride[IR_MAXRANK];
} Acc;

typedef void (*NestBody)(Cg *c, void *ud, LLVMValueRef *offs);

/* Loops over dims (row-major, last innermost), dropping unit dimensions
 * and merging dimensions that are contiguous for every access; body gets
 * each access's element offset. */
void cg_nest(Cg *c, int rank, const Mono *dims, int nacc, const Acc *acc, NestBody body, void *ud);

typedef struct Loop {
    LLVMBasicBlockRef body, exit;
    LLVMValueRef iv, phi_from;
    LLVMValueRef count;
} Loop;
/* for (iv = 0; iv < count; iv++): guarded, rotated. */
LLVMValueRef cg_loop_begin(Cg *c, Loop *l, LLVMValueRef count, const char *name);
void cg_loop_end(Cg *c, Loop *l);

/* Strides of operand shape s broadcast (NumPy, right-aligned) to out. */
void cg_bcast_strides(const Shape *s, const Shape *out, Mono *st);

/* ---- kernel emitters ---- */
void cg_elementwise(Cg *c, const Step *st);     /* elem.c: unary/binary/select/broadcast/fused */
void cg_loop(Cg *c, const Step *st);            /* loop.c: the loop over the body's own entry */
/* The kernels of plan p and an internal entry function `entry_name`
 * calling them, added to c's module; kernel names start with prefix
 * (codegen.c). */
LLVMValueRef cg_emit_plan(Cg *outer, const Plan *p, const char *prefix, const char *entry_name);
void cg_fill(Cg *c, const Step *st);            /* const materialisation */
void cg_transpose(Cg *c, const Step *st);
void cg_slice(Cg *c, const Step *st);
void cg_slice_grad(Cg *c, const Step *st);
void cg_concat(Cg *c, const Step *st);
void cg_one_hot(Cg *c, const Step *st);
void cg_dropout_mask(Cg *c, const Step *st);       /* calls.c */
void cg_gather(Cg *c, const Step *st);             /* calls.c: gather, gather_grad */
void cg_replica_mean(Cg *c, const Step *st);       /* calls.c */
void cg_reduce(Cg *c, const Step *st);          /* reduce.c */
void cg_argmax(Cg *c, const Step *st);
void cg_softmax(Cg *c, const Step *st);         /* and log_softmax, log_softmax_dot/_grad */
void cg_matmul(Cg *c, const Step *st);          /* calls.c */
void cg_gemm(Cg *c, const Node *v, LLVMValueRef pa, LLVMValueRef pb, LLVMValueRef out);
/* The operands of node v read per element of a loop over shape `over`:
 * inline scalar constants, the others loaded from their buffers with
 * broadcast strides (operands with read[i] false are not loaded; read may
 * be NULL). */
typedef struct Operands {
    int n;                               /* buffers loaded */
    int of[CG_MAXARGS];                  /* operand -> buffer index, -1: not loaded */
    LLVMValueRef base[CG_MAXARGS];
    Mono stride[CG_MAXARGS][IR_MAXRANK]; /* over `over`'s dims */
} Operands;
void cg_operands(Cg *c, const Node *v, const Shape *over, const bool *read, Operands *o);
/* in[i] = operand i of v at the buffer offsets offs[0..o->n). */
void cg_operand_values(Cg *c, const Node *v, const Operands *o, const LLVMValueRef *offs, LLVMValueRef *in);
/* The value of body node `result` of fused node v for one element, given
 * the values of the body inputs (operands) and of the body's GEMM (elem.c). */
LLVMValueRef cg_body_value(Cg *c, const Node *v, const Node *result, const LLVMValueRef *inputs,
                           LLVMValueRef gemm);
/* Strides of a reduction's output addressed by its input's dims s (0 on
 * the reduced dims red[k]; of reduction r's axes) (reduce.c). */
void cg_reduced_strides(const Shape *s, const bool *red, Mono *os);
void cg_reduction_strides(const Node *r, const Shape *s, Mono *os);
/* ---- blocked pairwise sums (sums.c; docs/ops.md, "Sums") ----
 * An accumulator: a block's sum in `acc` (one register, width 1, or a
 * row of CG_SUM_LANES, width CG_SUM_LANES, of which `lanes` are in use),
 * the stack of earlier blocks combined pairwise, and their count. */
#define CG_SUM_LANES 64
typedef struct PSum {
    DType dt;
    int width;
    LLVMValueRef acc, stack, nblocks; /* allocas */
} PSum;
void cg_psum_init(Cg *c, PSum *s, DType dt, int width);
void cg_psum_start(Cg *c, PSum *s);                        /* no blocks yet */
void cg_psum_zero(Cg *c, PSum *s, LLVMValueRef lanes);     /* a new block */
void cg_psum_add(Cg *c, const PSum *s, LLVMValueRef lane, LLVMValueRef v);
void cg_psum_push(Cg *c, PSum *s, LLVMValueRef lanes);     /* the block is complete */
void cg_psum_total(Cg *c, PSum *s, LLVMValueRef lanes);    /* acc = the sum of every block */
LLVMValueRef cg_psum_lane(Cg *c, const PSum *s, LLVMValueRef lane);
/* A loop over one dim of length len (accesses with stride[0]) whose body
 * adds into the register accumulators sums[0..nsums) (their acc): after
 * it each acc holds its blocked pairwise sum. */
void cg_sum_loop(Cg *c, Mono len, int nacc, const Acc *acc, NestBody body, void *ud, PSum *sums, int nsums);
/* A sum over the axes red[] of an index space: term(offs) is the element
 * at the offsets of acc[0..nacc) (the buffers read); acc[nacc] addresses
 * the result (stride 0 on the reduced axes); a mean divides by count. */
typedef LLVMValueRef (*SumTerm)(Cg *c, void *ud, LLVMValueRef *offs);
typedef struct SumNest {
    DType dt;
    int rank;
    Mono dims[IR_MAXRANK];
    bool red[IR_MAXRANK];
    int nacc;
    Acc acc[CG_MAXARGS];
    SumTerm term;
    void *ud;
    LLVMValueRef count; /* i64, or NULL for a sum */
} SumNest;
void cg_sum_nest(Cg *c, const SumNest *sn);
/* The column sums of fused node fn (a GEMM epilogue's or a softmax row
 * kernel's fresh results that are a sum or mean of its value): after its
 * loop, reductions of the value stored in `value` over shape `over`
 * (reduce.c). */
void cg_column_sums(Cg *c, const Node *fn, const Shape *over, LLVMValueRef value);
/* dst[0..numel(s)) = value (elem.c). */
void cg_fill_value(Cg *c, DType t, LLVMValueRef dst, const Shape *s, double value);
/* After a batch reduction's parts (plan_batch_reduction) ran with
 * `chunk` rows each into `part`: combine them in order into `out`, in
 * the function being built (reduce.c). */
void cg_reduce_combine(Cg *c, const Step *st, LLVMValueRef part, LLVMValueRef out, LLVMValueRef chunk);
/* A fused softmax cross-entropy row kernel (ir_fused_softmax) (xent.c). */
void cg_softmax_xent(Cg *c, const Step *st);
void cg_conv(Cg *c, const Step *st);
void cg_pool(Cg *c, const Step *st);
/* exp and tanh: vectorizable polynomials for f32, libm for f64 (vmath.c). */
LLVMValueRef cg_exp(Cg *c, DType t, LLVMValueRef x);
LLVMValueRef cg_tanh(Cg *c, DType t, LLVMValueRef x);
/* a p b, or a is NaN (the NaN-propagating max/min rule of docs/ops.md). */
LLVMValueRef cg_gt_or_nan(Cg *c, LLVMRealPredicate p, LLVMValueRef a, LLVMValueRef b);
/* One scalar op on loaded operand values (elem.c). */
LLVMValueRef cg_scalar_op(Cg *c, const Node *v, LLVMValueRef *in);

/* ---- run-time symbols (rtsyms.c) ---- */
typedef struct JitRtSym {
    const char *name;
    uintptr_t addr;
} JitRtSym;

/* Every runtime function generated code may call. */
const JitRtSym *jit_rt_syms(int *n);
bool jit_rt_sym_known(const char *name);

/* ---- the module (codegen.c) ---- */
/* Build the whole module (kernels + entry "entry") for a plan; with
 * profile, the entry times every step (rt_prof_tick). */
LLVMModuleRef cg_build_module(LLVMContextRef cx, const Plan *p, bool profile, Diags *d);
/* The same for steps [lo, hi) only, with the entry called entry_name
 * (the part with lo == 0 starts the profile clock). */
LLVMModuleRef cg_build_part(LLVMContextRef cx, const Plan *p, int lo, int hi, const char *entry_name,
                            bool profile, Diags *d);
/* Descriptions of the plan's steps, allocated in a (profile.c). */
JitKernelInfo *jit_describe_steps(Arena *a, const Plan *p);
/* Slots a step's kernel reads or writes, output first; returns count. */
int cg_step_slots(const Plan *p, const Step *st, int *slots);

#endif
