/* The graph IR: SSA tensor ops in topological order, static dtypes and
 * shapes with the symbolic batch dimension N, the op table, the training
 * configuration carried with a model, and the functions that build, infer,
 * verify, print and parse graphs. */
#ifndef MODELC_IR_H
#define MODELC_IR_H

#include "base/base.h"

#define IR_MAXRANK 6
#define IR_DIM_N (-1) /* the symbolic batch dimension */
/* A dimension is a size (>= 0) or a multiple N*k of the batch symbol
 * (k >= 1), stored as -k: IR_DIM_N is N*1. Inputs bind N itself; N*k
 * arises where reshape folds N together with other dimensions. These
 * helpers are the one place that knows the encoding. */
static inline bool ir_dim_is_batch(int64_t d) /* N or N*k */
{
    return d < 0;
}
static inline int64_t ir_dim_batch(int64_t k) /* N*k, k >= 1 */
{
    return -k;
}
static inline int64_t ir_dim_factor(int64_t d) /* k of N*k, or the size itself */
{
    return d < 0 ? -d : d;
}
/* The dimension with N := n (n >= 0); -1 on overflow. */
int64_t ir_dim_eval(int64_t d, int64_t n);
/* Sums add their terms left to right in blocks of this many and combine
 * the block sums pairwise (docs/ops.md, "Sums"). */
#define IR_SUM_BLOCK 16

/* ---- dtypes ---- */
typedef enum { DT_F32, DT_F64, DT_I32, DT_COUNT } DType;
const char *ir_dtype_name(DType t); /* "f32" */
int ir_dtype_size(DType t);
bool ir_dtype_is_float(DType t);

/* ---- shapes ---- */
typedef struct Shape {
    int rank;
    int64_t d[IR_MAXRANK]; /* IR_DIM_N for the batch symbol */
} Shape;

Shape ir_shape0(void);                    /* scalar [] */
Shape ir_shape(int rank, const int64_t *d);
Shape ir_shape1(int64_t a);
Shape ir_shape2(int64_t a, int64_t b);
bool ir_shape_eq(const Shape *a, const Shape *b);
bool ir_shape_has_n(const Shape *s);
/* Number of elements for a concrete batch size n (N := n); -1 on overflow. */
int64_t ir_shape_numel(const Shape *s, int64_t n);

/* The size limit of every tensor, parameter, input or intermediate: at
 * most IR_MAX_ELEMS elements with N counted as 1. 2^45 elements are
 * 256 TiB as f64, more than a 64-bit machine can address (user space is
 * 2^47 bytes on x86-64 and AArch64 with 4-level page tables), so no
 * tensor that could exist is refused, the limit does not depend on the
 * dtype (casts never break it), and sizes in bytes, strides and products
 * of a few of them stay far from int64 overflow. */
#define IR_MAX_ELEMS (INT64_C(1) << 45)
#define IR_MAX_ELEMS_STR "2^45"
/* The one size check of a shape, for every shape read from a model file,
 * IR text or a data file and every shape an op infers: each dimension is
 * N*k (k >= 1) or non-negative, and the product of the dimensions with N and 0
 * counted as 1 (so every stride is bounded too) is at most IR_MAX_ELEMS.
 * Returns the number of elements with N := 1, or -1 for a shape that
 * fails the check. Never overflows. */
int64_t ir_dims_numel(int rank, const int64_t *d);
bool ir_shape_valid(const Shape *s); /* ir_dims_numel(s) >= 0 */
/* Format as "[N,784]"; buf of at least 96 bytes. */
char *ir_shape_str(const Shape *s, char *buf, size_t n);
/* Format as "f32[N,784]". */
char *ir_type_str(DType t, const Shape *s, char *buf, size_t n);

/* ---- initializers ---- */
typedef enum {
    INIT_NONE, /* value must come from a checkpoint */
    INIT_ZEROS,
    INIT_ONES,
    INIT_CONSTANT,      /* a = value */
    INIT_NORMAL,        /* a = mean, b = std */
    INIT_UNIFORM,       /* a = lo, b = hi */
    INIT_TRUNC_NORMAL,  /* a = mean, b = std; redrawn beyond 2 std */
    INIT_GLOROT_UNIFORM,
    INIT_GLOROT_NORMAL, /* truncated normal, std = sqrt(2/(fan_in+fan_out)) / .8796 (Keras) */
    INIT_HE_UNIFORM,
    INIT_HE_NORMAL,
    INIT_LECUN_NORMAL,
    INIT_LECUN_UNIFORM,
    INIT_ORTHOGONAL,       /* rows (or columns, whichever are fewer) orthonormal (Keras, gain 1) */
    INIT_UNIT_FORGET_BIAS, /* an LSTM bias [4U]: ones in the forget gate's quarter, zeros elsewhere */
    INIT_COUNT
} InitKind;

typedef struct Init {
    InitKind kind;
    double a, b;
} Init;

const char *ir_init_name(InitKind k); /* "glorot_uniform" */
int ir_init_from_name(const char *s);   /* -1 if unknown; accepts xavier_* aliases */
/* Keras fan computation: dense [in,out]; conv HWIO fan_in = H*W*I. */
void ir_fans(const Shape *s, double *fan_in, double *fan_out);

/* ---- parameter roles ---- */
typedef enum {
    ROLE_WEIGHT, /* learned by the optimizer when trainable */
    ROLE_STATE,  /* updated by the graph itself (batchnorm moving stats) */
    ROLE_SLOT,   /* optimizer state (momentum, Adam m/v) */
} ParamRole;

/* ---- ops ---- */
typedef enum { OPC_LEAF, OPC_UNARY, OPC_BINARY, OPC_TERNARY, OPC_REDUCE, OPC_SHAPE, OPC_OTHER } OpClass;
/* The flags column of ops.def (documented there). */
enum {
    OPF_DIFF = 1 << 0,
    OPF_NOGRAD = 1 << 1,
    OPF_RANDOM = 1 << 2,
    OPF_CHEAP = 1 << 3,
    OPF_EXPLIKE = 1 << 4,
    OPF_POSDOMAIN = 1 << 5,
    OPF_REDUCTION = 1 << 6,
    OPF_COMMUTATIVE = 1 << 7,
    OPF_INVOLUTION = 1 << 8,
    OPF_SATURATES = 1 << 9,
    OPF_KINK = 1 << 10,
};

typedef enum {
#define OP(E, ...) OP_##E,
#include "ops.def"
#undef OP
    OP_COUNT
} Op;

typedef struct OpInfo {
    const char *name;
    int arity;
    OpClass cls;
    int flags;
} OpInfo;

extern const OpInfo ir_ops[OP_COUNT];
int ir_op_from_name(const char *s); /* -1 if unknown */
bool ir_op_is_elementwise(Op op);   /* of class OPC_UNARY, OPC_BINARY or OPC_TERNARY */

/* Does op have every flag of `flags` (OPF_*)? */
static inline bool ir_op_has(Op op, int flags)
{
    return (ir_ops[op].flags & flags) == flags;
}

/* ---- attributes: one struct, each op reads the fields it documents ---- */
typedef struct Attrs {
    int naxes;
    int axes[IR_MAXRANK]; /* reduce axes; transpose perm; concat/softmax/argmax/log_softmax_dot/log_softmax_grad axis = axes[0] */
    bool keepdims;
    Shape shape;          /* reshape/broadcast target; const shape; *_grad result shape */
    int64_t begin[IR_MAXRANK], end[IR_MAXRANK], step[IR_MAXRANK]; /* slice, rank = operand rank */
    int stride[2];        /* conv/pool (h, w) */
    int pad[4];           /* conv/pool: top, bottom, left, right */
    int window[2];        /* pool (h, w) */
    bool ta, tb;          /* matmul: transpose a / b */
    double alpha;         /* matmul: result scale (default 1; fuse folds scale constants here) */
    double value;         /* const value; elu alpha; dropout rate */
    DType to;             /* cast target */
    int depth;            /* one_hot */
    uint32_t stream;      /* dropout_mask: RNG stream id */
    int index;            /* result: which body output of the fused or loop operand (>= 1) */
    int nseq;             /* loop: number of sequence operands (after the carried states) */
    bool reverse;         /* loop: steps run from the last time index to the first */
    const char *name;     /* input/param name; phase: layer name */
    Init init;            /* param initializer */
    bool trainable;       /* param */
    ParamRole role;       /* param */
} Attrs;

Attrs ir_attrs(void); /* defaults: trainable, step 1, stride 1, window 1 */

/* ---- nodes and graphs ---- */
typedef struct Graph Graph;

typedef struct Node {
    int id; /* position in g->nodes; topological */
    Op op;
    DType dt;
    Shape shape;
    int nin;
    struct Node **in;
    Attrs a;
    const char *label; /* user binding name, for printing (may be NULL) */
    SrcLoc loc;
    Graph *sub; /* FUSED, LOOP: body graph; its INPUT nodes are the operands in order */
    void *aux;  /* scratch for passes; not preserved */
    int iaux;   /* scratch for passes; not preserved */
} Node;

typedef enum {
    OUT_LOSS,   /* scalar loss to minimise */
    OUT_METRIC, /* scalar metric, name = "accuracy", ... */
    OUT_VALUE,  /* named model output (predictions) */
    OUT_GRAD,   /* gradient of the loss w.r.t. target (a PARAM or INPUT) */
    OUT_UPDATE, /* new value of target (a PARAM) after the step */
} OutKind;

typedef struct Output {
    OutKind kind;
    const char *name;
    Node *val;
    Node *target; /* OUT_GRAD, OUT_UPDATE */
    bool train_only;
    int part; /* 0: val's value; k >= 1: side result k of the FUSED node val
               * (val->sub->outs[k], an update of one of its operands) */
} Output;

/* ---- training configuration (the model's `train` block) ---- */
typedef enum { OPT_SGD, OPT_ADAM, OPT_RMSPROP } OptKind;
typedef enum { SCHED_CONSTANT, SCHED_STEP, SCHED_COSINE, SCHED_EXPONENTIAL } SchedKind;
/* How a callback's monitored quantity improves: auto = max for accuracy-like
 * names (ir_monitor_max), min otherwise. */
typedef enum { MON_AUTO, MON_MIN, MON_MAX } MonitorMode;

/* The update rule: compiled into the training step by the optimizer pass,
 * so it belongs to the graph. */
typedef struct TrainConfig {
    OptKind opt;
    double lr;
    double momentum; /* sgd */
    bool nesterov;   /* sgd */
    double beta1, beta2, eps; /* adam; rmsprop uses rho = beta2... see rho */
    double rho;      /* rmsprop */
    double clip_value; /* 0 = off */
    double clip_norm;  /* 0 = off */
    double weight_decay;
    int nfreeze;
    const char **freeze; /* name patterns (glob: * and ?) */
    bool telemetry;      /* ps_optimizer adds "telemetry.*" metric outputs (not in model files) */
} TrainConfig;

void ir_train_defaults(TrainConfig *t);

/* How a model is run, beside its graph and not in it: the train block's
 * batch, epochs, learning-rate schedule and seed. No pass reads them; the
 * front end and the IR text parser fill them in for the driver, and the
 * printer writes them back into the train block when given. */
typedef struct RunSettings {
    int batch;
    int epochs;
    SchedKind sched;
    int sched_step;     /* step schedule: every k epochs */
    double sched_gamma; /* step schedule factor */
    int decay_steps;    /* exponential schedule: lr0 * decay_rate^(step / decay_steps) */
    double decay_rate;
    bool staircase;     /* exponential: floor(step / decay_steps) */
    int warmup;         /* steps of linear warm-up from 0 (0 = none) */
    uint64_t seed;
    /* callbacks (train { callbacks = [...] }): each is off while its
     * monitor is NULL */
    struct {
        const char *monitor;
        int patience;
        double min_delta;
        MonitorMode mode;
        bool restore_best;
    } es; /* early_stopping */
    struct {
        const char *monitor;
        const char *path;
        bool best_only;
        MonitorMode mode;
    } ckpt; /* checkpoint */
    struct {
        const char *monitor;
        double factor;
        int patience;
        MonitorMode mode;
        double min_delta;
        double min_lr;
        int cooldown;
    } rlr; /* reduce_lr_on_plateau */
} RunSettings;

void ir_run_defaults(RunSettings *r);
/* The callbacks' defaults (Keras 3's), for a callback being switched on. */
void ir_es_defaults(RunSettings *r);
void ir_ckpt_defaults(RunSettings *r);
void ir_rlr_defaults(RunSettings *r);
/* Whether monitor (a loss or metric name, maybe val_-prefixed) improves
 * upwards under mode auto: names containing "acc" or "auc", and
 * precision, recall and f1 scores. */
bool ir_monitor_max(const char *monitor);

struct Graph {
    Arena *arena;
    const char *name;
    Node **nodes;
    int nnodes, cap;
    Output *outs;
    int nouts, outcap;
    TrainConfig train;
    bool has_train; /* the model had a train block */
    uint32_t next_stream;
    const char **files; /* interned source file names (SrcLoc.file points here) */
    int nfiles;
};

Graph *ir_graph_new(const char *name);
void ir_graph_free(Graph *g);

/* Append a node; operands must already be in g. Shape and dtype are
 * inferred (ir_infer); on a user-level error a diagnostic is emitted at
 * loc and NULL is returned. */
Node *ir_op(Graph *g, Op op, Node **in, int nin, const Attrs *a, SrcLoc loc, Diags *d);
Node *ir_unary(Graph *g, Op op, Node *x, SrcLoc loc, Diags *d);
Node *ir_binary(Graph *g, Op op, Node *x, Node *y, SrcLoc loc, Diags *d);
Node *ir_input(Graph *g, const char *name, DType t, Shape s, SrcLoc loc);
Node *ir_param(Graph *g, const char *name, DType t, Shape s, Init init, bool trainable,
               ParamRole role, SrcLoc loc);
Node *ir_const(Graph *g, DType t, double v, SrcLoc loc); /* scalar */
/* A fused node over operands in[0..nin) whose body graph's INPUT nodes
 * (in node order) have the operands' dtypes and shapes and whose outs[0]
 * is the result. The node takes ownership of body; on a mismatch a
 * diagnostic is emitted at loc, body is freed and NULL returned. */
Node *ir_fused(Graph *g, Graph *body, Node **in, int nin, SrcLoc loc, Diags *d);
/* The matmul a fused body contains (the GEMM whose epilogue the body's
 * elementwise ops are: it reads two body inputs and has the result's
 * shape, ir_verify checks), or NULL. */
Node *ir_fused_anchor(const Node *fused);
/* The reduction a fused body ends with (its output, reducing the body's
 * elementwise ops, ir_verify checks), or NULL. */
Node *ir_fused_reduction(const Node *fused);
/* The log_softmax_grad that is a fused body's value when the body is a
 * softmax cross-entropy row kernel (its log_softmax_dot of the same
 * logits is a fresh result, ir_verify checks), or NULL. */
Node *ir_fused_softmax(const Node *fused);
/* Is body output j (j >= 1) a fresh result, read by result nodes, rather
 * than an update of one of the body's inputs (a side result taken by an
 * update output)? Fresh results are column reductions of the value (a
 * GEMM epilogue's or a softmax row kernel's) and a softmax row kernel's
 * log_softmax_dot. */
bool ir_fused_fresh(const Node *fused, int j);
/* Index of body input node x among the body's inputs (= operand index). */
int ir_fused_input_index(const Node *fused, const Node *x);
/* The operand that side result j (j >= 1) of a fused node overwrites:
 * the input its body output j updates. */
int ir_fused_side_operand(const Node *fused, int j);
/* A loop node (docs/ops.md, "loop") over operands in[0..nin): the
 * carried states, then nseq sequences, then invariants; body as for
 * ir_fused but with each sequence's body input one step of it (axis 1
 * dropped). Takes ownership of body; on a mismatch a diagnostic is
 * emitted at loc, body is freed and NULL returned. */
Node *ir_loop(Graph *g, Graph *body, Node **in, int nin, int nseq, bool reverse, SrcLoc loc, Diags *d);
/* Number of carried states of a loop: the update outputs its body's
 * outputs begin with. */
int ir_loop_ncarry(const Node *loop);
/* The number of steps of a loop: axis 1 of its first sequence operand. */
int64_t ir_loop_steps(const Node *loop);
/* The shape body input k of fused or loop node n has: operand k's, with
 * axis 1 dropped for a loop's sequence operand. */
Shape ir_body_input_shape(const Node *n, int k);
/* The dtype and shape of result j of loop n (j = 0: its value): body
 * output j's, with the steps inserted as axis 1 for a per-step result.
 * False when the shape cannot be formed (rank too large). */
bool ir_loop_result_type(const Node *n, int j, DType *dt, Shape *s);
Node *ir_find_param(Graph *g, const char *name);
const char *ir_intern_file(Graph *g, const char *file);
Node *ir_find_input(Graph *g, const char *name);
void ir_add_output(Graph *g, OutKind k, const char *name, Node *val, Node *target, bool train_only);

/* Shape/dtype inference for one node from its operands and attributes
 * (shape.c). Returns false after emitting a diagnostic at n->loc. */
bool ir_infer(Node *n, Diags *d);
/* Elements of the slice range [b, e) with step st >= 1; never overflows. */
int64_t ir_slice_len(int64_t b, int64_t e, int64_t st);
/* The step that offsets into the operand use: 1 when the range keeps at
 * most one element (any step selects the same one), else st, then less
 * than the range, so step times stride stays within the operand. */
int64_t ir_slice_step(int64_t b, int64_t e, int64_t st);

/* Structural check of a whole graph (verify.c): operand order, arity,
 * dtypes and shapes re-inferred, outputs, unique names. */
bool ir_verify(Graph *g, Diags *d);

/* Graph rewriting helpers (graph.c). */
void ir_replace_uses(Graph *g, Node *old, Node *with); /* in nodes and outputs */
/* Every use (operands, output values) of node i becomes a use of with[i]
 * when that is set (to an earlier node), chains followed, in one sweep:
 * many replacements in linear time, where ir_replace_uses is linear each.
 * with is indexed by position in g->nodes; ids are renumbered. */
void ir_replace_all(Graph *g, Node **with);
void ir_toposort(Graph *g);                          /* re-establish order, renumber */
void ir_remove_dead(Graph *g);                       /* DCE from outputs; keeps leaves */
int *ir_use_counts(Graph *g);                        /* malloc'd, indexed by id */
Graph *ir_clone(Graph *g);                           /* deep copy */

/* Text form (print.c / parse.c). The printed form parses back to an
 * identical graph. */
void ir_print(Graph *g, FILE *f);
char *ir_print_str(Graph *g);
void ir_print_dot(Graph *g, FILE *f);
/* Printer flags: IR_PRINT_NO_LOC leaves out the loc(...) annotations. */
enum { IR_PRINT_NO_LOC = 1 };
void ir_print_opts(Graph *g, FILE *f, unsigned flags);
char *ir_print_str_opts(Graph *g, unsigned flags); /* malloc'd */
Graph *ir_parse(const char *file, const char *text, size_t len, Diags *d);
/* The same, with the train block's run settings (defaults when there is
 * none); ir_parse drops them. */
Graph *ir_parse_model(const char *file, const char *text, size_t len, RunSettings *run, Diags *d);
/* A graph with its run settings (NULL: the graph alone). */
void ir_print_model(Graph *g, const RunSettings *run, FILE *f, unsigned flags);
char *ir_print_str_model(Graph *g, const RunSettings *run, unsigned flags); /* malloc'd */

/* Glob match used for freeze patterns: '*' and '?'. */
bool ir_glob_match(const char *pat, const char *s);

#endif
