/* Private to the IR text form (print.c, parse.c, dot.c, verify.c): value
 * names, the attributes each op shows in text, and the keyword tables that
 * the printer and the parser must agree on. */
#ifndef MODELC_IRTEXT_H
#define MODELC_IRTEXT_H

#include "ir.h"

/* ---- a set of strings (open addressing; keys are not copied) ---- */
typedef struct NameSet {
    const char **slot;
    int cap, n;
    StrMap next; /* base -> the K where ir_name_unique's search resumes */
} NameSet;

void ir_nameset_init(NameSet *s);
void ir_nameset_free(NameSet *s);
bool ir_nameset_has(const NameSet *s, const char *k);
void ir_nameset_add(NameSet *s, const char *k);

/* A value name candidate from a label or leaf name: characters outside
 * [A-Za-z0-9_.] become '_', a leading digit gets an 'a' prefix, an empty
 * name becomes "v". Allocated in a. */
char *ir_name_sanitize(Arena *a, const char *s);
/* base itself when unused in s, else the first unused "base.K" (K >= 1).
 * Allocated in a; not added to s. The set only grows, so the search for
 * base resumes where its last one stopped: many values of one label take
 * linear time, not quadratic. base must live as long as s. */
const char *ir_name_unique(NameSet *s, Arena *a, const char *base);

/* The name each node of g prints as, without the '%': leaves use their
 * name, other nodes their label, both made valid and unique; the rest
 * use their position. Indexed by position in g->nodes. */
typedef struct ValueNames {
    Arena *arena;
    const char **v;
    int n;
} ValueNames;

void ir_names_build(ValueNames *vn, Graph *g);
void ir_names_free(ValueNames *vn);

/* ---- attributes shown in text, in print order ---- */
enum {
    TA_AXES = 1 << 0,     /* axes=[0,1] (reductions, transpose) */
    TA_AXIS = 1 << 1,     /* axis=1 (concat, softmax): axes[0] */
    TA_KEEPDIMS = 1 << 2, /* keepdims=true */
    TA_SHAPE = 1 << 3,    /* shape=[N,3] */
    TA_SLICE = 1 << 4,    /* slice=[0:, 2:5, 0::2] (begin:end:step, empty end = to the end) */
    TA_WINDOW = 1 << 5,   /* window=[2,2] */
    TA_STRIDE = 1 << 6,   /* stride=[2,2] */
    TA_PAD = 1 << 7,      /* pad=[top,bottom,left,right] */
    TA_TA = 1 << 8,       /* ta=true */
    TA_TB = 1 << 9,       /* tb=true */
    TA_VALUE = 1 << 10,   /* value=0.5 (elu alpha, dropout rate) */
    TA_TO = 1 << 11,      /* to=f64 */
    TA_DEPTH = 1 << 12,   /* depth=10 */
    TA_STREAM = 1 << 13,  /* stream=3 */
    TA_NAME = 1 << 14,    /* name="bn1" */
    TA_ALPHA = 1 << 15,   /* alpha=0.5 (matmul result scale) */
    TA_INDEX = 1 << 16,   /* index=1 (result) */
    TA_SEQ = 1 << 17,     /* seq=1 (loop: sequence operands) */
    TA_REVERSE = 1 << 18, /* reverse=true (loop) */
    TA_COUNT = 19
};

extern const char *const ir_attr_names[TA_COUNT]; /* indexed by bit number */
/* " {name=value, ...}" of the attributes n sets (nothing when none), as
 * the IR text prints them. */
void ir_put_attrs(StrBuf *b, const Node *n);
unsigned ir_attr_mask(Op op);                     /* attributes op may carry: ops.def */
/* Attributes printed even when they hold the default value. */
#define TA_ALWAYS (TA_AXES | TA_AXIS | TA_SHAPE | TA_SLICE | TA_WINDOW | TA_VALUE | TA_TO | TA_DEPTH | TA_STREAM | TA_SEQ)
/* Number of begin/end/step entries a slice op carries. */
int ir_slice_rank(const Node *n);

/* ---- keywords ---- */
extern const char *const ir_out_kind_names[5]; /* loss metric value grad update */
extern const char *const ir_opt_names[3];      /* sgd adam rmsprop */
extern const char *const ir_sched_names[4];    /* constant step cosine exponential */
extern const char *const ir_monitor_mode_names[3]; /* auto min max */
/* Parameters an initializer takes in text: constant(a), normal(a, b), ... */
int ir_init_arity(InitKind k);
/* Index of s in a table of n names, or -1. */
int ir_keyword_index(const char *const *tab, int n, const char *s);

#endif
