/* Ahead-of-time compilation (aot.c): the JIT's functions — the same
 * plan, parts, IR and optimisation pipeline — linked into one relocatable
 * object with a description the run-time library reads
 * (runtime/aot.h), the parameter values (optional) and `<name>_model`.
 * Not a public header: the driver (backend/driver/aot.c) writes the
 * object and the C header from the result. */
#ifndef MODELC_AOT_H
#define MODELC_AOT_H

#include "backend/llvm/jit.h"

typedef struct AotFnIn {
    const char *fn; /* "predict", "eval", "train_step" */
    Graph *g;       /* from the function's recipe */
} AotFnIn;

typedef struct AotOpts {
    const char *name;     /* C identifier: prefix of every symbol */
    const char *model;    /* the model's name */
    int64_t batch;        /* the batch size, or the largest one */
    bool fixed;           /* the batch is exactly `batch` */
    uint64_t seed;        /* dropout's RNG seed */
    int64_t step;         /* the step of the weights (RNG counter) */
    const TensorMap *params; /* every parameter's value */
    bool embed;           /* put the values into the object */
    const char *triple;   /* NULL: the host's */
    const char *cpu;      /* NULL: the host's (or the target's generic CPU) */
} AotOpts;

/* An input or output as the header shows it. */
typedef struct AotArg {
    const char *name;
    DType dt;
    Shape shape;
    OutKind kind; /* outputs */
} AotArg;

typedef struct AotFnInfo {
    const char *fn;
    int nargs, nouts;
    AotArg *args, *outs;
    bool lr;       /* takes the learning rate */
    int64_t ws_bytes;
    int64_t min_n; /* the smallest batch: fixed slices of the batch axis reach it */
    int kernels, parts;
} AotFnInfo;

typedef struct AotResult {
    Arena *arena;
    int nfns;
    AotFnInfo *fns;
    int nparams;
    int64_t param_bytes;
    char *triple, *cpu; /* what the object was compiled for */
    char *obj;          /* the object file (malloc'd) */
    size_t obj_len;
} AotResult;

/* Compile fns into one object. User-level problems (an unknown target,
 * a batch too small for a fixed slice, a missing parameter value) are
 * diagnostics; false then. */
bool be_aot_compile(const AotFnIn *fns, int nfns, const AotOpts *o, AotResult *r, Diags *d);
void be_aot_result_free(AotResult *r);

#endif
