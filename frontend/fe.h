/* Internals of the model-language frontend shared by its files: tokens and
 * the lexer, the AST and the parser, and the lowering context with its
 * helpers (values, names, call arguments, built-in functions and layers).
 * Only the frontend and its unit tests include this header. */
#ifndef MODELC_FE_H
#define MODELC_FE_H

#include "frontend.h"

#define FE_MAX_DEPTH 200 /* expression nesting limit */

/* ---- tokens (lex.c) ---- */
typedef enum {
    T_EOF,
    T_NEWLINE,
    T_IDENT,
    T_INT,
    T_FLOAT,
    T_STRING,
    T_LPAREN,
    T_RPAREN,
    T_LBRACK,
    T_RBRACK,
    T_LBRACE,
    T_RBRACE,
    T_COMMA,
    T_COLON,
    T_SEMI,
    T_ASSIGN,
    T_PLUS,
    T_MINUS,
    T_STAR,
    T_SLASH,
    T_POW,
    T_AT,
    T_LT,
    T_GT,
    T_LE,
    T_GE,
    T_EQ,
    T_NE,
    T_COUNT
} TokKind;

typedef struct Token {
    TokKind k;
    SrcLoc loc;
    const char *text; /* start in the source text (valid during compilation) */
    int len;          /* bytes of source text */
    const char *str; /* identifier or decoded string (arena) */
    double num;      /* T_INT and T_FLOAT */
    int64_t ival;    /* T_INT */
} Token;

typedef struct TokList {
    Token *v;
    int n, cap;
    int *bad_lines; /* lines with lexical errors (malloc'd) */
    int nbad, capbad;
} TokList;

/* Tokenize text; lexical errors go to d and the lexer continues. The
 * list always ends with T_EOF. Strings live in arena a. Returns the
 * number of lexical errors. */
int fe_lex(const char *file, const char *text, size_t len, Arena *a, Diags *d, TokList *out);
const char *fe_tok_name(TokKind k); /* "')'", "identifier", ... */

/* ---- AST (parse.c) ---- */
typedef enum {
    E_NUM,   /* num, ival, is_int */
    E_STR,   /* str */
    E_NAME,  /* str */
    E_BOOL,  /* ival 0/1 */
    E_NONE,  /* none */
    E_LIST,  /* items */
    E_UNARY, /* op, a */
    E_BINARY, /* op, a, b */
    E_CALL,  /* str = callee, args */
    E_INDEX, /* a = base, subs */
} ExprKind;

typedef struct Expr Expr;

typedef struct Arg {
    const char *kw; /* NULL for positional */
    SrcLoc kwloc;
    int kwspan;
    Expr *val;
} Arg;

typedef struct Subscript {
    bool is_slice;
    Expr *lo, *hi, *step; /* index: lo only */
    SrcLoc loc;
} Subscript;

struct Expr {
    ExprKind k;
    SrcLoc loc;   /* the operator, name or literal token */
    int span;     /* caret length at loc */
    SrcLoc start; /* first token of the expression */
    int depth;    /* nesting depth of the subtree */
    double num;
    int64_t ival;
    bool is_int;
    const char *str;
    TokKind op;
    Expr *a, *b;
    Arg *args;
    int nargs;
    Expr **items;
    int nitems;
    Subscript *subs;
    int nsubs;
    SrcLoc close; /* ')' or ']' of calls, lists and subscripts */
};

typedef enum { S_MODEL, S_INPUT, S_PARAM, S_ASSIGN, S_METRIC, S_OUTPUT, S_TRAIN } StmtKind;

typedef struct TypeAst {
    const char *dtype;
    SrcLoc dtloc;
    int dtspan;
    Expr **dims;
    int ndims;
    SrcLoc loc; /* '[' */
} TypeAst;

typedef struct TrainItem {
    const char *key;
    SrcLoc loc;
    int span;
    Expr *val;
} TrainItem;

typedef struct Stmt {
    StmtKind k;
    SrcLoc loc; /* keyword or name */
    const char *name;
    SrcLoc nameloc;
    int namespan;
    TypeAst type;   /* input, param */
    Expr *init;     /* param initializer, or NULL */
    Expr *trainable; /* param `trainable=EXPR`, or NULL */
    bool frozen;    /* param `frozen` */
    SrcLoc flagloc;
    Expr *val;      /* assign, metric, output (NULL: `output NAME`) */
    struct StmtName {
        const char *name;
        SrcLoc loc;
        int span;
    } *more;        /* assign `a, b, c = ...`: the names after the first */
    int nmore;
    TrainItem *items;
    int nitems;
} Stmt;

typedef struct Program {
    Stmt **stmts;
    int n;
} Program;

/* Parse tokens into a program. Syntax errors go to d; returns false when
 * any were reported (the program may then be partial). */
bool fe_parse(const TokList *toks, Arena *a, Diags *d, Program *out);
/* As fe_parse; syntax errors on the lines listed in bad_lines (lines with
 * a lexical error) are not reported again, the statement is skipped. */
bool fe_parse_lines(const TokList *toks, const int *bad_lines, int nbad, Arena *a, Diags *d,
                    Program *out);

/* ---- lowering (lower.c and friends) ---- */
typedef enum { V_ERR, V_TENSOR, V_NUM } ValKind;

typedef struct Val {
    ValKind k;
    Node *n;     /* V_TENSOR */
    double num;  /* V_NUM */
    int64_t i;   /* V_NUM with is_int */
    bool is_int;
} Val;

typedef enum { B_INPUT, B_PARAM, B_VALUE } BindKind;

typedef struct Binding {
    const char *name;
    BindKind kind;
    Val v;
    SrcLoc loc;
} Binding;

typedef struct FeCtx {
    Graph *g;
    RunSettings *run; /* the train block's batch, epochs, schedule, seed */
    Diags *d;
    Arena *a; /* AST and scratch; freed by fe_compile */
    const Program *prog;
    int cur; /* index of the statement being lowered */
    Binding *b;
    int nb, capb;
    StrMap bindings;     /* name -> index in b */
    const char **layers; /* layer names in use */
    SrcLoc *layer_locs;  /* the call that created each */
    int nlayers, caplayers, caplocs;
    StrMap layer_index;  /* name -> index in layers */
    StrMap layer_next;   /* default name base -> next suffix to try */
    StrMap params;       /* parameter name -> node id */
    StrMap outputs;      /* names of value and metric outputs */
    int errors_at_start; /* d->nerrors when lowering started */
    Node **penalties;    /* kernel regularizers' terms, added to the loss */
    int npenalties, cappenalties;
    bool sync_batchnorm; /* the train block's: batch statistics over the processes */
    /* A statement `a, b, ... = call(...)`: its call (the one expression
     * that may give several values) and the values it gave. */
    const Expr *multi_expr;
    Node *multi[4];
    int nmulti;
} FeCtx;

/* Diagnostics with a caret span. */
void fe_error(FeCtx *c, SrcLoc loc, int span, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void fe_warning(FeCtx *c, SrcLoc loc, int span, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void fe_note(FeCtx *c, SrcLoc loc, int span, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void fe_error_expr(FeCtx *c, const Expr *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* names (lower.c) */
Binding *fe_lookup(FeCtx *c, const char *name);
void fe_bind(FeCtx *c, const char *name, BindKind k, Val v, SrcLoc loc);

/* values (expr.c) */
Val fe_err_val(void);
Val fe_tensor_val(Node *n);
Val fe_num_val(double v, bool is_int, int64_t i);
Val fe_expr(FeCtx *c, const Expr *e);
/* Lower e and require a tensor; numbers become scalar constants of dtype
 * `like` (f32 when DT_COUNT). NULL after an error. */
Node *fe_tensor(FeCtx *c, const Expr *e, DType like);
/* Evaluate a compile-time number (literals, bound numbers, arithmetic);
 * false after reporting an error. */
bool fe_const_num(FeCtx *c, const Expr *e, Val *out);
Node *fe_const_like(FeCtx *c, Node *like, double v, SrcLoc loc);
Node *fe_op(FeCtx *c, Op op, Node **in, int nin, const Attrs *a, SrcLoc loc);
Node *fe_op1(FeCtx *c, Op op, Node *x, SrcLoc loc);
Node *fe_op2(FeCtx *c, Op op, Node *x, Node *y, SrcLoc loc);
Node *fe_reduce_all(FeCtx *c, Op op, Node *x, SrcLoc loc);
Node *fe_reduce_axis(FeCtx *c, Op op, Node *x, int axis, bool keepdims, SrcLoc loc);
/* Binary elementwise op where either side may be a number. */
Val fe_binary(FeCtx *c, Op op, Val x, Val y, SrcLoc loc);
const char *fe_type_str(const Node *n, char *buf, size_t len);

/* call arguments (args.c) */
typedef enum {
    A_TENSOR,
    A_NUM,    /* any constant number */
    A_INT,    /* constant integer */
    A_BOOL,
    A_STR,    /* string literal */
    A_WORD,   /* string literal or bare identifier */
    A_ANY,    /* checked by the handler */
} ArgType;

typedef struct ParamSpec {
    const char *name; /* "kernel|kernel_size": aliases after '|' */
    ArgType type;     /* what the handler converts it to (fe_arg_*) */
    bool required;
} ParamSpec;

#define FE_MAX_ARGS 16

typedef struct CallArgs {
    const Expr *call;
    const char *fn;
    const ParamSpec *spec;
    int nspec;
    const Expr *v[FE_MAX_ARGS]; /* bound argument expressions, NULL when absent */
} CallArgs;

/* Match positional and keyword arguments of call e to spec. */
bool fe_bind_args(FeCtx *c, const Expr *e, const char *fn, const ParamSpec *spec, int nspec,
                  CallArgs *out);
const char *fe_param_name(const ParamSpec *p, char *buf, size_t n);
bool fe_arg_int(FeCtx *c, CallArgs *a, int i, int64_t def, int64_t lo, int64_t hi, int64_t *out);
bool fe_arg_num(FeCtx *c, CallArgs *a, int i, double def, double *out);
bool fe_arg_bool(FeCtx *c, CallArgs *a, int i, bool def, bool *out);
/* A word from a fixed set; *out = index into words (NULL-terminated). */
bool fe_arg_word(FeCtx *c, CallArgs *a, int i, const char *const *words, int def, int *out);
bool fe_arg_str(FeCtx *c, CallArgs *a, int i, const char **out); /* NULL when absent */
Node *fe_arg_tensor(FeCtx *c, CallArgs *a, int i, DType like);
/* One int or a list of two ints, e.g. kernel=3 or kernel=[3, 3]. */
bool fe_arg_pair(FeCtx *c, CallArgs *a, int i, int def, int out[2]);
/* padding="valid" (*mode 0), "same" (1) or [top, bottom, left, right]
 * (2, the amounts in pads). */
bool fe_arg_padding(FeCtx *c, CallArgs *a, int i, int *mode, int pads[4]);
/* Axis list normalised against rank (axis=1, axis=[0, 1], axes=[..]). */
bool fe_arg_axes(FeCtx *c, CallArgs *a, int i, const Node *x, int *axes, int *naxes);
bool fe_norm_axis(FeCtx *c, const Expr *e, int64_t ax, const Node *x, int *out);
/* Initializer: zeros, normal(0, 1), "he_normal", ... */
bool fe_init(FeCtx *c, const Expr *e, Init *out);
bool fe_arg_init(FeCtx *c, CallArgs *a, int i, InitKind def, Init *out);
bool fe_dtype_name(const char *s, DType *out);
bool fe_arg_dtype(FeCtx *c, CallArgs *a, int i, DType def, DType *out);
/* Shape list [N, -1, 28]: N -> IR_DIM_N, -1 -> *infer index (or -1). */
bool fe_shape_list(FeCtx *c, const Expr *e, Shape *out, int *infer, bool allow_infer);
SrcLoc fe_arg_loc(CallArgs *a, int i);

/* built-in functions (builtins.c) */
Val fe_call(FeCtx *c, const Expr *e);
bool fe_is_builtin(const char *name);
/* Apply an activation by name ("relu", "none", ...); x unchanged for none. */
typedef enum {
    ACT_NONE, ACT_RELU, ACT_TANH, ACT_SIGMOID, ACT_ELU, ACT_SOFTMAX,
    /* composites of primitive ops (activations.c) */
    ACT_LEAKY_RELU, ACT_GELU, ACT_SOFTPLUS, ACT_SOFTSIGN, ACT_SELU, ACT_SWISH, ACT_HARD_SIGMOID, ACT_HARD_SILU,
    ACT_COUNT
} Activation;
/* A composite activation with its parameter (leaky_relu's negative_slope,
 * gelu's approximate flag); ACT_NONE..ACT_SOFTMAX lower to one op. */
Node *fe_activate_param(FeCtx *c, Node *x, Activation act, double param, SrcLoc loc);
double fe_activation_default(Activation act);
bool fe_arg_activation(FeCtx *c, CallArgs *a, int i, Activation *out);
const char *fe_activation_word(Activation act); /* "relu"; ACT_NONE is "none" */
Node *fe_activate(FeCtx *c, Node *x, Activation act, SrcLoc loc);

/* layers (layers.c) */
/* kernel_regularizer=l2(f) / l1(f) / l1_l2(l1=, l2=) / none of layer
 * argument e on kernel w: the penalty f * sum(w^2) (and/or abs) is kept
 * for the loss (FeCtx.penalties). False after an error. */
bool fe_regularize(FeCtx *c, const Expr *e, Node *w, SrcLoc loc);
Val fe_layer_dense(FeCtx *c, const Expr *e);
Val fe_layer_embedding(FeCtx *c, const Expr *e);
Val fe_layer_layer_norm(FeCtx *c, const Expr *e);
Val fe_layer_global_pool(FeCtx *c, const Expr *e, Op op); /* OP_REDUCE_MEAN or OP_REDUCE_MAX */
Val fe_layer_upsampling2d(FeCtx *c, const Expr *e);
Val fe_layer_conv1d(FeCtx *c, const Expr *e);
Val fe_layer_conv2d_transpose(FeCtx *c, const Expr *e);
Val fe_layer_conv2d(FeCtx *c, const Expr *e); /* layer or primitive */
Val fe_layer_pool(FeCtx *c, const Expr *e, Op op);
Val fe_layer_batchnorm(FeCtx *c, const Expr *e);
Val fe_layer_dropout(FeCtx *c, const Expr *e);
/* The layer's name from argument i (`name=`) or the first free of base,
 * base_1, ...; and one of its parameters, "<layer>.<what>". */
const char *fe_layer_name(FeCtx *c, CallArgs *a, int i, const char *base);
Node *fe_layer_param(FeCtx *c, const char *layer, const char *what, DType dt, Shape s, Init init, bool trainable,
                     ParamRole role, SrcLoc loc);
/* recurrent layers (recurrent.c): which = 0 simple_rnn, 1 gru, 2 lstm */
Val fe_layer_recurrent(FeCtx *c, const Expr *e, int which);
/* TF "same" padding for one spatial axis; false when a pad would not fit
 * the int of a pad attribute. */
bool fe_same_pad(int64_t in, int64_t k, int stride, int *lo, int *hi);

/* losses and metrics (losses.c) */
Val fe_loss(FeCtx *c, const Expr *e, int which);
Val fe_metric(FeCtx *c, const Expr *e, int which);
enum { LOSS_MSE, LOSS_MAE, LOSS_BCE, LOSS_CCE, LOSS_SCCE, LOSS_HUBER, LOSS_KLD };
enum { METRIC_ACCURACY, METRIC_BINARY_ACCURACY, METRIC_TOP_K };

/* the train block (train.c) */
bool fe_train_block(FeCtx *c, const Stmt *s);
void fe_check_freeze(FeCtx *c, const Stmt *s);
void fe_check_callbacks(FeCtx *c, const Stmt *s);
/* `sync_batchnorm = true` in the train block s (NULL: none), read before
 * the layers are lowered; its checks come with the block's. */
bool fe_train_sync_batchnorm(const Stmt *s);

/* edit distance for "did you mean" hints (args.c) */
const char *fe_closest(const char *s, const char *const *cands, int n);

#endif
