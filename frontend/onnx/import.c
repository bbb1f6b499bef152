/* ONNX import: a ModelProto becomes model-language text that reads as if
 * written by hand (Gemm/MatMul + Add as dense, Conv as conv2d,
 * BatchNormalization as batchnorm, activations folded into the layer
 * before them) and the initializers as named tensors. Images stay NCHW at
 * the model's inputs and outputs and run NHWC inside: a rank-4 value
 * carries its layout, transposes are emitted only where a value changes
 * layout, and weights are permuted instead wherever they can be (conv
 * kernels to HWIO, the rows of a dense layer after a flatten). Shape
 * computations of exporters (Shape, Gather, Unsqueeze, Concat on
 * constants) are folded at import time. */
#include "onnx.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "onnx.pb-c.h"

#define BATCH INT64_MIN /* in a folded shape vector: the batch size */
#define MAXR IR_MAXRANK
#define MAX_ELEMS ((int64_t)1 << 31)

typedef struct Const { /* a value known at import time */
    bool is_int;
    int rank;
    int64_t dims[MAXR];
    int64_t n;
    float *f;
    int64_t *i;
} Const;

typedef struct Val {
    const char *onnx; /* ONNX name */
    char *id;         /* the identifier holding it (NULL: a constant not yet declared) */
    bool nhwc;        /* id holds a rank-4 value in NHWC order */
    char *other_id;   /* the same value in the other layout, once made */
    int rank;
    int64_t dims[MAXR]; /* ONNX order; dims[0] == BATCH on the batch axis */
    Const *k;
    const char *origin; /* k: the initializer it was computed from by a layout change */
    bool from_init;    /* k is an initializer */
    int64_t flat_c;    /* flattened from NHWC: features in (h, w, c) order of c channels */
    int64_t prepad[4]; /* zeros a Pad added for the Conv reading it: ONNX's top, left, bottom, right */
} Val;

typedef struct Imp {
    const char *path, *file;
    Diags *d;
    Arena *a;
    StrBuf out;
    TensorMap *w;
    Val *v;
    int nv, cap;
    int *slot; /* open addressing over v by ONNX name */
    int nslot;
    char **ids; /* identifiers and layer names in use */
    int nids, idcap;
    int tmp; /* counter for t1, t2, ... */
    int64_t opset;
    const Onnx__GraphProto *g;
    bool *skip; /* nodes folded into an earlier one */
    const char *node_desc;
    bool fixed;  /* every input at its own fixed shape: no batch axis N anywhere */
    const TensorMap *bound; /* values given at import for graph inputs (NULL: none) */
    int reached; /* the node being translated (n_node: the outputs), for choosing between readings */
} Imp;

/* ---- errors ---- */

static bool fail(Imp *I, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(Imp *I, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    SrcLoc loc = {I->file, 0, 0};
    if (I->node_desc)
        diag_error(I->d, loc, "%s: %s", I->node_desc, msg);
    else
        diag_error(I->d, loc, "%s", msg);
    return false;
}

/* ---- protobuf-c allocations go through the library's allocator ---- */

static void *pb_alloc(void *ud, size_t n)
{
    (void)ud;
    return xmalloc(n ? n : 1);
}

static void pb_free(void *ud, void *p)
{
    (void)ud;
    xfree(p);
}

static ProtobufCAllocator pb_allocator = {pb_alloc, pb_free, NULL};

/* ---- identifiers ---- */

static const char *const reserved[] = {"N", "true", "false", "none", "True", "False", "None", "model",
                                       "input", "param", "metric", "output", "train", "loss",
                                       "frozen", "trainable",
                                       /* functions of the language a value must not shadow */
                                       "dense", "conv2d", "batchnorm", "dropout", "max_pool2d",
                                       "avg_pool2d", "flatten", "reshape", "transpose", "concat",
                                       "mean", "sum", "max", "min", "softmax", "log_softmax", "relu",
                                       "sigmoid", "tanh", "exp", "log", "sqrt", "abs", "clip", "elu",
                                       "selu", "softplus", "leaky_relu", "matmul", "cast", "where",
                                       "maximum", "minimum", "hard_sigmoid", "hard_silu", "erf",
                                       "sign", "softsign", "pow", "square", "rsqrt", NULL};

static bool is_reserved(const char *s);

static bool id_used(Imp *I, const char *s, bool layer)
{
    for (int i = 0; i < I->nids; i++)
        if (strcmp(I->ids[i], s) == 0)
            return true;
    return !layer && is_reserved(s);
}

static char *claim(Imp *I, const char *s)
{
    if (I->nids == I->idcap) {
        I->idcap = I->idcap ? 2 * I->idcap : 64;
        I->ids = xrealloc(I->ids, (size_t)I->idcap * sizeof *I->ids);
    }
    char *c = arena_strdup(I->a, s);
    I->ids[I->nids++] = c;
    return c;
}

/* A fresh identifier made from any string: other characters become '_'. */
static char *ident_from(Imp *I, const char *s, const char *fallback, bool layer)
{
    char base[96];
    size_t n = 0;
    for (const char *p = s; p && *p && n + 1 < sizeof base - 12; p++) {
        char ch = *p;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                  ch == '_';
        base[n++] = ok ? ch : '_';
    }
    base[n] = 0;
    while (n > 0 && base[n - 1] == '_')
        base[--n] = 0;
    size_t lead = 0;
    while (base[lead] == '_')
        lead++;
    if (lead)
        memmove(base, base + lead, n - lead + 1);
    if (!base[0] || (base[0] >= '0' && base[0] <= '9')) { /* fallback[_base], cut to fit */
        char t[sizeof base];
        size_t len = strlen(fallback) < sizeof t - 1 ? strlen(fallback) : sizeof t - 1;
        memcpy(t, fallback, len);
        if (base[0] && len + 1 < sizeof t)
            t[len++] = '_';
        size_t rest = strlen(base) < sizeof t - 1 - len ? strlen(base) : sizeof t - 1 - len;
        memcpy(t + len, base, rest);
        t[len + rest] = 0;
        memcpy(base, t, len + rest + 1);
    }
    if (!id_used(I, base, layer))
        return claim(I, base);
    char buf[120];
    for (int k = 1;; k++) {
        snprintf(buf, sizeof buf, "%s_%d", base, k);
        if (!id_used(I, buf, layer))
            return claim(I, buf);
    }
}

static char *fresh(Imp *I)
{
    char buf[32];
    do
        snprintf(buf, sizeof buf, "t%d", ++I->tmp);
    while (id_used(I, buf, false));
    return claim(I, buf);
}

/* ---- the value table ---- */

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static int find_slot(Imp *I, const char *name)
{
    size_t mask = (size_t)I->nslot - 1;
    for (size_t i = hash(name) & mask;; i = (i + 1) & mask)
        if (I->slot[i] < 0 || strcmp(I->v[I->slot[i]].onnx, name) == 0)
            return (int)i;
}

static Val *lookup(Imp *I, const char *name)
{
    if (!name || !*name || !I->nslot)
        return NULL;
    int s = find_slot(I, name);
    return I->slot[s] < 0 ? NULL : &I->v[I->slot[s]];
}

static void rehash(Imp *I, int nslot)
{
    xfree(I->slot);
    I->nslot = nslot;
    I->slot = xmalloc((size_t)nslot * sizeof *I->slot);
    for (int i = 0; i < nslot; i++)
        I->slot[i] = -1;
    for (int i = 0; i < I->nv; i++)
        I->slot[find_slot(I, I->v[i].onnx)] = i;
}

/* A new value named name (replacing an earlier one of that name). */
static Val *define(Imp *I, const char *name)
{
    if (2 * (I->nv + 1) > I->nslot)
        rehash(I, I->nslot ? 2 * I->nslot : 256);
    if (I->nv == I->cap) {
        I->cap = I->cap ? 2 * I->cap : 128;
        I->v = xrealloc(I->v, (size_t)I->cap * sizeof *I->v);
    }
    Val *v = &I->v[I->nv];
    memset(v, 0, sizeof *v);
    v->onnx = arena_strdup(I->a, name);
    I->slot[find_slot(I, name)] = I->nv++;
    return v;
}

/* ---- constants ---- */

static Const *const_new(Imp *I, bool is_int, int rank, const int64_t *dims)
{
    Const *k = arena_alloc(I->a, sizeof *k);
    k->is_int = is_int;
    k->rank = rank;
    k->n = 1;
    for (int i = 0; i < rank; i++) {
        k->dims[i] = dims[i];
        k->n *= dims[i];
    }
    if (is_int)
        k->i = arena_alloc(I->a, (size_t)(k->n ? k->n : 1) * sizeof(int64_t));
    else
        k->f = arena_alloc(I->a, (size_t)(k->n ? k->n : 1) * sizeof(float));
    return k;
}

static double kget(const Const *k, int64_t i)
{
    return k->is_int ? (double)k->i[i] : (double)k->f[i];
}

static bool dims_ok(Imp *I, const char *what, int rank, const int64_t *dims, int64_t *n)
{
    if (rank > MAXR)
        return fail(I, "%s has rank %d; at most %d is supported", what, rank, MAXR);
    *n = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0)
            return fail(I, "%s has a negative dimension %lld", what, (long long)dims[i]);
        if (dims[i] > 0 && *n > MAX_ELEMS / dims[i])
            return fail(I, "%s has more than %lld elements", what, (long long)MAX_ELEMS);
        *n *= dims[i];
    }
    return true;
}

/* A TensorProto's value as a Const (f32 for floating types, i64 for
 * integer ones). */
static Const *tensor_const(Imp *I, const Onnx__TensorProto *t, const char *what)
{
    int64_t n = 0;
    if (!dims_ok(I, what, (int)(t->n_dims > MAXR ? MAXR + 1 : t->n_dims), t->dims, &n))
        return NULL;
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
        fail(I, "%s: tensors stored in external files are not supported", what);
        return NULL;
    }
    if (t->segment) {
        fail(I, "%s: segmented tensors are not supported", what);
        return NULL;
    }
    int dt = t->data_type;
    size_t esize;
    bool is_int;
    switch (dt) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: esize = 4; is_int = false; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: esize = 8; is_int = false; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: esize = 8; is_int = true; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: esize = 4; is_int = true; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: esize = 1; is_int = true; break;
    default:
        fail(I, "%s: element type %d is not supported (float, double, int32, int64, bool are)", what, dt);
        return NULL;
    }
    size_t have = t->has_raw_data ? t->raw_data.len / esize
                  : dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT    ? t->n_float_data
                  : dt == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE ? t->n_double_data
                  : dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT64  ? t->n_int64_data
                                                                : t->n_int32_data;
    if (t->has_raw_data && t->raw_data.len != (size_t)n * esize) {
        fail(I, "%s: raw data holds %zu bytes, its shape needs %lld", what, t->raw_data.len,
             (long long)n * (long long)esize);
        return NULL;
    }
    if (have != (size_t)n) {
        fail(I, "%s holds %zu values, its shape needs %lld", what, have, (long long)n);
        return NULL;
    }
    Const *k = const_new(I, is_int, (int)t->n_dims, t->dims);
    if (t->has_raw_data) {
        const unsigned char *p = t->raw_data.data;
        for (int64_t i = 0; i < n; i++, p += esize) {
            switch (dt) {
            case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: memcpy(&k->f[i], p, 4); break;
            case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: {
                double x;
                memcpy(&x, p, 8);
                k->f[i] = (float)x;
                break;
            }
            case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: memcpy(&k->i[i], p, 8); break;
            case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: {
                int32_t x;
                memcpy(&x, p, 4);
                k->i[i] = x;
                break;
            }
            default: k->i[i] = *p != 0; break;
            }
        }
        return k;
    }
    for (int64_t i = 0; i < n; i++)
        switch (dt) {
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: k->f[i] = t->float_data[i]; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: k->f[i] = (float)t->double_data[i]; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: k->i[i] = t->int64_data[i]; break;
        default: k->i[i] = t->int32_data[i]; break;
        }
    return k;
}

static void val_from_const(Val *v, Const *k)
{
    v->k = k;
    v->rank = k->rank;
    memcpy(v->dims, k->dims, sizeof v->dims);
}

/* ---- attributes ---- */

static const Onnx__AttributeProto *attr(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && strcmp(n->attribute[i]->name, name) == 0)
            return n->attribute[i];
    return NULL;
}

static bool attr_int(Imp *I, const Onnx__NodeProto *n, const char *name, int64_t def, int64_t *out)
{
    const Onnx__AttributeProto *a = attr(n, name);
    *out = def;
    if (!a)
        return true;
    if (!a->has_i && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT)
        return fail(I, "attribute '%s' must be an integer", name);
    *out = a->i;
    return true;
}

static bool attr_float(Imp *I, const Onnx__NodeProto *n, const char *name, double def, double *out)
{
    const Onnx__AttributeProto *a = attr(n, name);
    *out = def;
    if (!a)
        return true;
    if (!a->has_f && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT)
        return fail(I, "attribute '%s' must be a float", name);
    *out = a->f;
    return true;
}

/* ints attribute: *n = -1 when absent. */
static bool attr_ints(Imp *I, const Onnx__NodeProto *n, const char *name, int64_t *v, int max, int *cnt)
{
    const Onnx__AttributeProto *a = attr(n, name);
    *cnt = -1;
    if (!a)
        return true;
    if (a->n_ints > (size_t)max)
        return fail(I, "attribute '%s' has %zu values; at most %d are supported", name, a->n_ints, max);
    for (size_t i = 0; i < a->n_ints; i++)
        v[i] = a->ints[i];
    *cnt = (int)a->n_ints;
    return true;
}

static const char *attr_str(const Onnx__NodeProto *n, const char *name, char *buf, size_t len)
{
    const Onnx__AttributeProto *a = attr(n, name);
    if (!a || !a->has_s)
        return NULL;
    size_t k = a->s.len < len - 1 ? a->s.len : len - 1;
    if (k)
        memcpy(buf, a->s.data, k);
    buf[k] = 0;
    return buf;
}

/* Attributes the translation does not read must be absent (or at their
 * default, checked by the op). */
static bool only_attrs(Imp *I, const Onnx__NodeProto *n, const char *const *known)
{
    for (size_t i = 0; i < n->n_attribute; i++) {
        const char *nm = n->attribute[i]->name ? n->attribute[i]->name : "";
        bool ok = false;
        for (int k = 0; known && known[k]; k++)
            ok |= strcmp(known[k], nm) == 0;
        if (!ok)
            return fail(I, "attribute '%s' is not supported", nm);
    }
    return true;
}

/* ---- emitting text ---- */

static void emit(Imp *I, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(Imp *I, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&I->out, fmt, ap);
    va_end(ap);
}

static bool number(Imp *I, double x, char *buf, size_t n)
{
    if (!isfinite(x))
        return fail(I, "the constant %g is not finite", x);
    char t[40];
    /* the shortest form that reads back to the same f32 */
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(t, sizeof t, "%.*g", prec, x);
        if ((float)strtod(t, NULL) == (float)x)
            break;
    }
    if (x < 0)
        snprintf(buf, n, "(%s)", t);
    else
        snprintf(buf, n, "%s", t);
    return true;
}

static void put_tensor(Imp *I, const char *name, int rank, const int64_t *dims, const float *data)
{
    Tensor *t = rt_tensor_new(DT_F32, rank, dims);
    if (!t)
        ICE("tensor of checked size could not be made");
    if (t->numel)
        memcpy(t->data, data, (size_t)t->numel * sizeof(float));
    rt_map_put(I->w, name, t);
}

static const int to_nhwc[4] = {0, 2, 3, 1}; /* NHWC axis j holds NCHW axis to_nhwc[j] */
static const int to_nchw[4] = {0, 3, 1, 2};

/* Permute a float array of the given dims: out axis j = in axis perm[j]. */
static float *permute(Imp *I, const float *x, int rank, const int64_t *dims, const int *perm, int64_t *odims)
{
    int64_t n = 1, stride[MAXR], ostride[MAXR];
    for (int i = rank - 1; i >= 0; i--) {
        stride[i] = n;
        n *= dims[i];
    }
    for (int j = 0; j < rank; j++)
        odims[j] = dims[perm[j]];
    int64_t m = 1;
    for (int j = rank - 1; j >= 0; j--) {
        ostride[j] = m;
        m *= odims[j];
    }
    float *y = arena_alloc(I->a, (size_t)(n ? n : 1) * sizeof(float));
    for (int64_t o = 0; o < n; o++) {
        int64_t src = 0, r = o;
        for (int j = 0; j < rank; j++) {
            int64_t c = r / ostride[j];
            r %= ostride[j];
            src += c * stride[perm[j]];
        }
        y[o] = x[src];
    }
    return y;
}

static void shape_str(int rank, const int64_t *dims, bool batch_n, char *buf, size_t n)
{
    size_t k = 0;
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int i = 0; i < rank && k < n; i++)
        if (i == 0 && batch_n)
            k += (size_t)snprintf(buf + k, n - k, "N");
        else
            k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)dims[i]);
    if (k < n)
        snprintf(buf + k, n - k, "]");
}

/* ---- operands ---- */

/* The identifier of v in the layout asked for (nhwc only for rank 4):
 * constants are declared as parameters on first use, a value in the
 * other layout is transposed once. */
static const char *operand(Imp *I, Val *v, bool nhwc)
{
    if (v->rank != 4)
        nhwc = false;
    if (v->k && !v->id) {
        if (v->k->is_int) {
            fail(I, "the integer tensor '%s' is used as a value; only float tensors are supported", v->onnx);
            return NULL;
        }
        char sh[160];
        const float *data = v->k->f;
        int64_t dims[MAXR];
        memcpy(dims, v->k->dims, sizeof dims);
        if (nhwc)
            data = permute(I, data, 4, v->k->dims, to_nhwc, dims);
        v->id = ident_from(I, v->onnx, "w", false);
        v->nhwc = nhwc;
        shape_str(v->rank, dims, false, sh, sizeof sh);
        emit(I, "param %s: f32%s%s\n", v->id, sh, v->from_init ? "" : " frozen");
        put_tensor(I, v->id, v->rank, dims, data);
    }
    if (v->nhwc == nhwc)
        return v->id;
    if (!v->other_id) {
        v->other_id = fresh(I);
        emit(I, "%s = transpose(%s, [%s])\n", v->other_id, v->id, nhwc ? "0, 2, 3, 1" : "0, 3, 1, 2");
    }
    return v->other_id;
}

/* An elementwise operand beside values in layout nhwc: a scalar constant
 * is a number, a constant of lower rank is lifted to rank 4 and permuted
 * as one. */
static const char *elem_operand(Imp *I, Val *v, bool nhwc, int out_rank, char *buf, size_t n)
{
    if (v->k && !v->k->is_int && v->k->n == 1 && !v->id) {
        if (!number(I, v->k->f[0], buf, n))
            return NULL;
        return buf;
    }
    if (nhwc && v->k && !v->id && v->rank < 4 && out_rank == 4) {
        /* a copy lifted to rank 4, declared for this use */
        Val lifted = *v;
        int64_t d4[4] = {1, 1, 1, 1};
        for (int i = 0; i < v->k->rank; i++)
            d4[4 - v->k->rank + i] = v->k->dims[i];
        lifted.k = arena_alloc(I->a, sizeof *lifted.k);
        *lifted.k = *v->k;
        lifted.k->rank = lifted.rank = 4;
        memcpy(lifted.k->dims, d4, sizeof d4);
        memcpy(lifted.dims, d4, sizeof d4);
        return operand(I, &lifted, true);
    }
    return operand(I, v, nhwc);
}

static Val *in_val(Imp *I, const Onnx__NodeProto *n, size_t i)
{
    if (i >= n->n_input || !n->input[i][0])
        return NULL;
    Val *v = lookup(I, n->input[i]);
    if (!v)
        fail(I, "input '%s' is not defined before this node", n->input[i]);
    return v;
}

static bool need_inputs(Imp *I, const Onnx__NodeProto *n, size_t lo, size_t hi)
{
    if (n->n_input < lo || n->n_input > hi)
        return fail(I, "has %zu inputs; expected %zu to %zu", n->n_input, lo, hi);
    for (size_t i = 0; i < lo; i++)
        if (!n->input[i][0])
            return fail(I, "input %zu is missing", i);
    return true;
}

static Val *out_val(Imp *I, const Onnx__NodeProto *n)
{
    if (n->n_output < 1 || !n->output[0][0]) {
        fail(I, "has no output");
        return NULL;
    }
    return define(I, n->output[0]);
}

/* The only node reading value name (which is no graph output), or -1. */
static int sole_consumer(Imp *I, const char *name, int after)
{
    int found = -1, readers = 0;
    for (size_t i = (size_t)after + 1; i < I->g->n_node; i++)
        for (size_t j = 0; j < I->g->node[i]->n_input; j++)
            if (strcmp(I->g->node[i]->input[j], name) == 0) {
                found = (int)i;
                readers++;
            }
    for (size_t i = 0; i < I->g->n_output; i++)
        if (I->g->output[i]->name && strcmp(I->g->output[i]->name, name) == 0)
            readers++;
    return readers == 1 ? found : -1;
}

static const char *op_of(Imp *I, int i)
{
    const char *o = I->g->node[i]->op_type;
    return o ? o : "";
}

/* ---- shape helpers ---- */

static void set_shape(Val *v, int rank, const int64_t *dims)
{
    v->rank = rank;
    memcpy(v->dims, dims, (size_t)rank * sizeof *dims);
}

static bool is_batch_first(const Val *v)
{
    return v->rank >= 1 && v->dims[0] == BATCH;
}

/* The first axis holds examples: N, or any axis in the fixed reading. */
static bool examples_first(const Imp *I, const Val *v)
{
    return is_batch_first(v) || (I->fixed && v->rank >= 1);
}

/* Numpy broadcasting of two shapes. */
static bool broadcast(Imp *I, const Val *a, const Val *b, Val *out)
{
    int r = a->rank > b->rank ? a->rank : b->rank;
    int64_t d[MAXR];
    for (int i = 0; i < r; i++) {
        int ia = i - (r - a->rank), ib = i - (r - b->rank);
        int64_t x = ia >= 0 ? a->dims[ia] : 1, y = ib >= 0 ? b->dims[ib] : 1;
        if (x == y || y == 1)
            d[i] = x;
        else if (x == 1)
            d[i] = y;
        else
            return fail(I, "shapes of '%s' and '%s' do not broadcast", a->onnx, b->onnx);
    }
    set_shape(out, r, d);
    return true;
}

/* An axis in [0, rank) from one in [-rank, rank); -1 when out of range. */
static int norm_axis(int64_t ax, int rank)
{
    if (ax < -(int64_t)rank || ax >= rank)
        return -1;
    return (int)(ax < 0 ? ax + rank : ax);
}

/* ---- constant folding of shape computations ---- */

static Val *fold_out(Imp *I, const Onnx__NodeProto *n, Const *k)
{
    Val *o = out_val(I, n);
    if (o)
        val_from_const(o, k);
    return o;
}

static bool all_const(Imp *I, const Onnx__NodeProto *n)
{
    for (size_t i = 0; i < n->n_input; i++) {
        if (!n->input[i][0])
            continue;
        Val *v = lookup(I, n->input[i]);
        if (!v || !v->k || v->id)
            return false;
    }
    return n->n_input > 0;
}

/* A float as an integer, where it is one of reasonable size. */
static bool as_int(Imp *I, double x, int64_t *out)
{
    if (!(fabs(x) < 9e15) || x != floor(x))
        return fail(I, "%g is not an integer of a supported size", x);
    *out = (int64_t)x;
    return true;
}

static bool ints_of(Imp *I, Val *v, int64_t *out, int max, int *cnt, const char *what)
{
    if (!v || !v->k || v->k->rank > 1 || v->k->n > max)
        return fail(I, "%s must be a constant list of at most %d integers", what, max);
    for (int64_t i = 0; i < v->k->n; i++) {
        if (v->k->is_int)
            out[i] = v->k->i[i];
        else if (!as_int(I, v->k->f[i], &out[i]))
            return false;
    }
    *cnt = (int)v->k->n;
    return true;
}

/* ---- the ops ---- */

typedef bool (*OpFn)(Imp *I, int idx, const Onnx__NodeProto *n);

static bool op_identity(Imp *I, int idx, const Onnx__NodeProto *n)
{
    (void)idx;
    if (!need_inputs(I, n, 1, 4))
        return false;
    Val *x = in_val(I, n, 0);
    if (!x)
        return false;
    if (strcmp(n->op_type, "Dropout") == 0 && n->n_output > 1 && n->output[1][0]) {
        /* the mask of inference: every element kept */
        Val *m = define(I, n->output[1]);
        if (x->k && !x->id) {
            Const *k = const_new(I, false, x->k->rank, x->k->dims);
            for (int64_t i = 0; i < k->n; i++)
                k->f[i] = 1;
            val_from_const(m, k);
        } else {
            set_shape(m, x->rank, x->dims);
            m->nhwc = x->nhwc;
            m->id = fresh(I);
            emit(I, "%s = where(%s == %s, 1, 1)\n", m->id, x->id, x->id);
        }
    }
    if (strcmp(n->op_type, "Cast") == 0) {
        int64_t to;
        if (!attr_int(I, n, "to", 1, &to))
            return false;
        if (x->k && !x->id) {
            Const *k = const_new(I, to != 1 && to != 11 && to != 10, x->k->rank, x->k->dims);
            for (int64_t i = 0; i < k->n; i++)
                if (!k->is_int)
                    k->f[i] = (float)kget(x->k, i);
                else if (x->k->is_int)
                    k->i[i] = x->k->i[i];
                else if (!as_int(I, trunc(x->k->f[i]), &k->i[i]))
                    return false;
            return fold_out(I, n, k) != NULL;
        }
        if (to != 1 && to != 10 && to != 11) /* float16 and double computed as float */
            return fail(I, "Cast to element type %lld is not supported (only to float, float16, double)",
                        (long long)to);
    }
    Val *o = out_val(I, n);
    if (!o)
        return false;
    const char *onnx = o->onnx;
    *o = *x;
    o->onnx = onnx;
    return true;
}

static bool op_constant(Imp *I, int idx, const Onnx__NodeProto *n)
{
    (void)idx;
    const Onnx__AttributeProto *a = n->n_attribute == 1 ? n->attribute[0] : NULL;
    if (!a || !a->name)
        return fail(I, "needs exactly one attribute");
    Const *k = NULL;
    if (strcmp(a->name, "value") == 0 && a->t) {
        k = tensor_const(I, a->t, "its value");
    } else if (strcmp(a->name, "value_float") == 0) {
        k = const_new(I, false, 0, NULL);
        k->f[0] = a->f;
    } else if (strcmp(a->name, "value_int") == 0) {
        k = const_new(I, true, 0, NULL);
        k->i[0] = a->i;
    } else if (strcmp(a->name, "value_ints") == 0 || strcmp(a->name, "value_floats") == 0) {
        bool ints = a->name[6] == 'i';
        int64_t cnt = ints ? (int64_t)a->n_ints : (int64_t)a->n_floats;
        if (cnt > MAX_ELEMS)
            return fail(I, "value too large");
        k = const_new(I, ints, 1, &cnt);
        for (int64_t i = 0; i < cnt; i++)
            if (ints)
                k->i[i] = a->ints[i];
            else
                k->f[i] = a->floats[i];
    } else {
        return fail(I, "attribute '%s' is not supported", a->name);
    }
    return k && fold_out(I, n, k);
}

static bool op_shape(Imp *I, int idx, const Onnx__NodeProto *n)
{
    (void)idx;
    if (!need_inputs(I, n, 1, 1) || !only_attrs(I, n, (const char *[]){"start", "end", NULL}))
        return false;
    Val *x = in_val(I, n, 0);
    int64_t start, end;
    if (!x || !attr_int(I, n, "start", 0, &start) || !attr_int(I, n, "end", x->rank, &end))
        return false;
    start = start < 0 ? start + x->rank : start;
    end = end < 0 ? end + x->rank : end;
    start = start < 0 ? 0 : start > x->rank ? x->rank : start;
    end = end < start ? start : end > x->rank ? x->rank : end;
    int64_t r = end - start;
    Const *k = const_new(I, true, 1, &r);
    for (int64_t i = start; i < end; i++) {
        if (x->dims[i] < 0 && x->dims[i] != BATCH)
            return fail(I, "dimension %lld of '%s' is unknown", (long long)i, x->onnx);
        k->i[i - start] = x->dims[i];
    }
    return fold_out(I, n, k) != NULL;
}

static bool gather_value(Imp *I, const Onnx__NodeProto *n, Val *x, Val *ix, int64_t axis);

static bool op_gather(Imp *I, int idx, const Onnx__NodeProto *n)
{
    (void)idx;
    if (!need_inputs(I, n, 2, 2) || !only_attrs(I, n, (const char *[]){"axis", NULL}))
        return false;
    Val *x = in_val(I, n, 0), *ix = in_val(I, n, 1);
    int64_t axis;
    if (!x || !ix || !attr_int(I, n, "axis", 0, &axis))
        return false;
    if (!all_const(I, n) && (ix->k && !ix->id))
        return gather_value(I, n, x, ix, axis);
    if (!all_const(I, n)) { /* indices computed at run time: gather, negative ones counted from the end */
        int a = norm_axis(axis, x->rank);
        if (a < 0 || x->dims[a] == BATCH || x->rank + ix->rank - 1 > MAXR || (ix->rank && ix->dims[0] == BATCH))
            return fail(I, "Gather along axis %lld of '%s' is not supported", (long long)axis, x->onnx);
        const char *xi = operand(I, x, false), *ii = xi ? operand(I, ix, false) : NULL;
        Val *o = ii ? out_val(I, n) : NULL;
        if (!o)
            return false;
        int64_t d[MAXR];
        int r = 0;
        for (int j = 0; j < x->rank; j++)
            if (j != a)
                d[r++] = x->dims[j];
            else
                for (int q = 0; q < ix->rank; q++)
                    d[r++] = ix->dims[q];
        set_shape(o, r, d);
        char *w = fresh(I);
        o->id = fresh(I);
        emit(I, "%s = where(%s < 0, %s + %lld, %s)\n", w, ii, ii, (long long)x->dims[a], ii);
        emit(I, "%s = gather(%s, %s, axis=%d)\n", o->id, xi, w, a);
        return true;
    }
    if (x->k->rank != 1 || (axis != 0 && axis != -1))
        return fail(I, "Gather is supported on lists (rank 1) only");
    if (!ix->k->is_int)
        return fail(I, "indices must be integers");
    Const *k = const_new(I, x->k->is_int, ix->k->rank, ix->k->dims);
    for (int64_t i = 0; i < ix->k->n; i++) {
        int64_t j = ix->k->i[i];
        if (j < 0)
            j += x->k->n;
        if (j < 0 || j >= x->k->n)
            return fail(I, "index %lld is out of range for %lld values", (long long)ix->k->i[i],
                        (long long)x->k->n);
        if (k->is_int)
            k->i[i] = x->k->i[j];
        else
            k->f[i] = x->k->f[j];
    }
    return fold_out(I, n, k) != NULL;
}

/* Axes from the attribute (opset < 13 style) or the second input. */
static bool axes_arg(Imp *I, const Onnx__NodeProto *n, int64_t *ax, int *cnt)
{
    if (!attr_ints(I, n, "axes", ax, MAXR, cnt))
        return false;
    if (*cnt < 0 && n->n_input > 1 && n->input[1][0])
        return ints_of(I, in_val(I, n, 1), ax, MAXR, cnt, "axes");
    return true;
}

static bool emit_reshape(Imp *I, Val *x, Val *o, int rank, const int64_t *dims);

static bool op_unsqueeze(Imp *I, int idx, const Onnx__NodeProto *n)
{
    (void)idx;
    bool sq = strcmp(n->op_type, "Squeeze") == 0;
    if (!need_inputs(I, n, 1, 2) || !only_attrs(I, n, (const char *[]){"axes", NULL}))
        return false;
    Val *x = in_val(I, n, 0);
    int64_t ax[MAXR];
    int cnt;
    if (!x || !axes_arg(I, n, ax, &cnt))
        return false;
    int64_t d[MAXR + 1];
    int r = 0;
    if (sq) {
        bool drop[MAXR] = {false};
        for (int i = 0; i < cnt; i++) {
            int a = norm_axis(ax[i], x->rank);
            if (a < 0 || a >= x->rank || x->dims[a] != 1)
                return fail(I, "cannot squeeze axis %lld of '%s'", (long long)ax[i], x->onnx);
            drop[a] = true;
        }
        for (int i = 0; i < x->rank; i++)
            if (!(cnt < 0 ? x->dims[i] == 1 : drop[i]))
                d[r++] = x->dims[i];
    } else {
        int nr = x->rank + (cnt < 0 ? 0 : cnt);
        if (cnt < 0 || nr > MAXR)
            return fail(I, "needs axes, and a result of rank at most %d", MAXR);
        bool ins[MAXR] = {false};
        for (int i = 0; i < cnt; i++) {
            int a = norm_axis(ax[i], nr);
            if (a < 0 || a >= nr || ins[a])
                return fail(I, "axis %lld is out of range or repeated", (long long)ax[i]);
            ins[a] = true;
        }
        for (int i = 0, j = 0; i < nr; i++)
            d[r++] = ins[i] ? 1 : x->dims[j++];
    }
    if (x->k && !x->id) {
        Const *k = const_new(I, x->k->is_int, r, d);
        if (k->is_int)
            memcpy(k->i, x->k->i, (size_t)k->n * sizeof(int64_t));
        else
            memcpy(k->f, x->k->f, (size_t)k->n * sizeof(float));
        return fold_out(I, n, k) != NULL;
    }
    Val *o = out_val(I, n);
    return o && emit_reshape(I, x, o, r, d);
}

static bool op_concat(Imp *I, int idx, const Onnx__NodeProto *n);
static bool op_binary(Imp *I, int idx, const Onnx__NodeProto *n);

/* reshape(x, dims) on the logical layout; dims[0] may be BATCH. */
static bool emit_reshape(Imp *I, Val *x, Val *o, int rank, const int64_t *dims)
{
    if (rank > MAXR)
        return fail(I, "a result of rank %d is not supported", rank);
    bool xb = is_batch_first(x), ob = rank >= 1 && dims[0] == BATCH;
    if (xb != ob)
        return fail(I, "reshaping across the batch axis is not supported");
    for (int i = ob; i < rank; i++)
        if (dims[i] < 0)
            return fail(I, "dimension %d of the result is unknown", i);
    const char *src = operand(I, x, false);
    if (!src)
        return false;
    set_shape(o, rank, dims);
    o->id = fresh(I);
    emit(I, "%s = reshape(%s, [", o->id, src);
    for (int i = 0; i < rank; i++)
        if (i == 0 && ob)
            emit(I, "N");
        else
            emit(I, "%s%lld", i ? ", " : "", (long long)dims[i]);
    emit(I, "])\n");
    return true;
}

/* The target of a Reshape with 0 (copy, or an empty axis when allowzero)
 * and -1 (inferred) resolved. */
static bool reshape_target(Imp *I, const Val *x, const int64_t *t, int cnt, bool allowzero, int64_t *d)
{
    int64_t known = 1, xn = 1;
    int infer = -1;
    for (int i = x->dims[0] == BATCH ? 1 : 0; i < x->rank; i++)
        xn *= x->dims[i];
    for (int i = 0; i < cnt; i++) {
        d[i] = t[i];
        if (t[i] == 0 && i < x->rank && !allowzero)
            d[i] = x->dims[i];
        if (d[i] == -1) {
            if (infer >= 0)
                return fail(I, "the shape has two -1 entries");
            infer = i;
        } else if (d[i] == BATCH) {
            if (i != 0)
                return fail(I, "the batch size can only be the first dimension");
        } else if (d[i] < 0 || d[i] > MAX_ELEMS || (d[i] && known > MAX_ELEMS / d[i])) {
            return fail(I, "the shape has an entry %lld", (long long)d[i]);
        } else {
            known *= d[i];
        }
    }
    /* A fixed first dimension equal to the exported batch size, or -1
     * with the rest fixed, is the batch axis of a model exported with a
     * fixed batch. */
    if (is_batch_first(x) && cnt > 0 && d[0] != BATCH) {
        if (infer == 0 && known == xn) {
            d[0] = BATCH;
            infer = -1;
        } else if (infer < 0 && known > 0 && known / d[0] == xn) {
            known /= d[0];
            d[0] = BATCH;
        }
    }
    if (infer >= 0) {
        if (known == 0 || xn % known)
            return fail(I, "cannot infer the -1 entry of the shape");
        d[infer] = xn / known;
    }
    return true;
}

static bool flatten_like(Imp *I, int idx, Val *x, Val *o);

static bool op_reshape(Imp *I, int idx, const Onnx__NodeProto *n)
{
    if (!need_inputs(I, n, 2, 2) || !only_attrs(I, n, (const char *[]){"allowzero", NULL}))
        return false;
    Val *x = in_val(I, n, 0), *s = in_val(I, n, 1);
    int64_t t[MAXR], d[MAXR], allowzero;
    int cnt;
    if (!x || !attr_int(I, n, "allowzero", 0, &allowzero) || !ints_of(I, s, t, MAXR, &cnt, "the shape") ||
        !reshape_target(I, x, t, cnt, allowzero != 0, d))
        return false;
    if (x->k && !x->id) {
        Const *k = const_new(I, x->k->is_int, cnt, d);
        if (k->n != x->k->n)
            return fail(I, "cannot reshape %lld values to %lld", (long long)x->k->n, (long long)k->n);
        if (k->is_int)
            memcpy(k->i, x->k->i, (size_t)k->n * sizeof(int64_t));
        else
            memcpy(k->f, x->k->f, (size_t)k->n * sizeof(float));
        return fold_out(I, n, k) != NULL;
    }
    Val *o = out_val(I, n);
    if (!o)
        return false;
    if (cnt == 2 && d[0] == BATCH && x->rank == 4 && x->nhwc)
        return flatten_like(I, idx, x, o);
    return emit_reshape(I, x, o, cnt, d);
}

/* Does every reader of name multiply it by a constant matrix (Gemm with
 * B constant, MatMul)? Then a flatten in NHWC order can permute those
 * matrices' rows instead of transposing the activations. */
static bool read_by_dense_only(Imp *I, const char *name, int after)
{
    int readers = 0;
    for (size_t i = (size_t)after + 1; i < I->g->n_node; i++) {
        const Onnx__NodeProto *m = I->g->node[i];
        for (size_t j = 0; j < m->n_input; j++) {
            if (strcmp(m->input[j], name) != 0)
                continue;
            if (j != 0 || m->n_input < 2)
                return false;
            Val *b = lookup(I, m->input[1]);
            int64_t ta = 0;
            if (!b || !b->k || b->id || b->k->is_int || b->rank != 2)
                return false;
            if (strcmp(m->op_type, "Gemm") == 0) {
                const Onnx__AttributeProto *a = attr(m, "transA");
                ta = a ? a->i : 0;
            } else if (strcmp(m->op_type, "MatMul") != 0) {
                return false;
            }
            if (ta)
                return false;
            readers++;
        }
    }
    for (size_t i = 0; i < I->g->n_output; i++)
        if (I->g->output[i]->name && strcmp(I->g->output[i]->name, name) == 0)
            return false;
    return readers > 0;
}

int64_t fe_onnx_nhwc_row(int64_t i, int64_t c, int64_t hw)
{
    return c ? (i % hw) * c + i / hw : i;
}

static bool flatten_like(Imp *I, int idx, Val *x, Val *o)
{
    int64_t d[2] = {x->dims[0], x->dims[1] * x->dims[2] * x->dims[3]};
    bool spatial = x->dims[2] * x->dims[3] > 1;
    if (x->nhwc && (!spatial || read_by_dense_only(I, o->onnx, idx))) {
        set_shape(o, 2, d);
        o->id = fresh(I);
        o->flat_c = spatial ? x->dims[1] : 0;
        emit(I, "%s = flatten(%s)\n", o->id, x->id);
        return true;
    }
    return emit_reshape(I, x, o, 2, d);
}

static bool op_flatten(Imp *I, int idx, const Onnx__NodeProto *n)
{
    if (!need_inputs(I, n, 1, 1) || !only_attrs(I, n, (const char *[]){"axis", NULL}))
        return false;
    Val *x = in_val(I, n, 0);
    int64_t axis;
    if (!x || !attr_int(I, n, "axis", 1, &axis))
        return false;
    int ax = axis == x->rank ? x->rank : norm_axis(axis, x->rank);
    if (ax < 0 || (is_batch_first(x) && ax != 1))
        return fail(I, "only axis 1 (keep the batch axis) is supported");
    for (int i = 1; i < x->rank; i++)
        if (x->dims[i] < 0)
            return fail(I, "dimension %d of '%s' is unknown", i, x->onnx);
    Val *o = out_val(I, n);
    if (!o)
        return false;
    if (!is_batch_first(x)) { /* [d0 * ... * d(ax-1), the rest] */
        int64_t d[2] = {1, 1};
        for (int i = 0; i < x->rank; i++)
            d[i >= ax] *= x->dims[i];
        return emit_reshape(I, x, o, 2, d);
    }
    if (x->rank == 4)
        return flatten_like(I, idx, x, o);
    int64_t d[2] = {BATCH, 1};
    for (int i = 1; i < x->rank; i++)
        d[1] *= x->dims[i];
    if (x->rank == 2) {
        *o = *x;
        o->onnx = arena_strdup(I->a, n->output[0]);
            return true;
    }
    return emit_reshape(I, x, o, 2, d);
}

static bool op_concat(Imp *I, int idx, const Onnx__NodeProto *n)
{
    (void)idx;
    int64_t axis;
    if (!only_attrs(I, n, (const char *[]){"axis", NULL}) || !attr_int(I, n, "axis", 0, &axis))
        return false;
    if (n->n_input < 1)
        return fail(I, "has no inputs");
    if (all_const(I, n)) {
        int64_t total = 0;
        bool is_int = true;
        for (size_t i = 0; i < n->n_input; i++) {
            Val *v = in_val(I, n, i);
            if (!v || v->k->rank != 1)
                return fail(I, "concatenating constants is supported for lists only");
            total += v->k->n;
            is_int &= v->k->is_int;
        }
        if (total > (1 << 16))
            return fail(I, "concatenating constants of %lld values is not supported", (long long)total);
        Const *k = const_new(I, is_int, 1, &total);
        int64_t at = 0;
        for (size_t i = 0; i < n->n_input; i++) {
            Val *v = in_val(I, n, i);
            for (int64_t j = 0; j < v->k->n; j++, at++)
                if (is_int)
                    k->i[at] = v->k->i[j];
                else
                    k->f[at] = (float)kget(v->k, j);
        }
        return fold_out(I, n, k) != NULL;
    }
    Val *first = in_val(I, n, 0);
    if (!first)
        return false;
    int rank = first->rank, ax = norm_axis(axis, rank);
    if (ax < 0 || ax >= rank || (ax == 0 && is_batch_first(first)))
        return fail(I, "axis %lld is not supported", (long long)axis);
    bool nhwc = rank == 4;
    for (size_t i = 0; i < n->n_input; i++) {
        Val *v = in_val(I, n, i);
        if (!v)
            return false;
        if (v->rank != rank)
            return fail(I, "inputs of different ranks");
        nhwc &= v->nhwc || (v->k && !v->id);
    }
    int64_t d[MAXR];
    memcpy(d, first->dims, sizeof d);
    d[ax] = 0;
    StrBuf list;
    sb_init(&list);
    bool ok = true;
    for (size_t i = 0; i < n->n_input && ok; i++) {
        Val *v = in_val(I, n, i);
        d[ax] += v->dims[ax];
        const char *id = operand(I, v, nhwc);
        if (!id)
            ok = false;
        else
            sb_printf(&list, "%s%s", i ? ", " : "", id);
    }
    Val *o = ok ? out_val(I, n) : NULL;
    if (o) {
        set_shape(o, rank, d);
        o->id = fresh(I);
        o->nhwc = nhwc;
        int pax = ax;
        if (nhwc)
            for (int j = 0; j < 4; j++)
                if (to_nhwc[j] == ax)
                    pax = j;
        emit(I, "%s = concat([%s], axis=%d)\n", o->id, list.s ? list.s : "", pax);
    }
    sb_free(&list);
    return o != NULL;
}

/* Elementwise binary ops: on constants folded, otherwise one operator. */
static bool op_binary(Imp *I, int idx, const Onnx__NodeProto *n)
{
    (void)idx;
    if (!need_inputs(I, n, 2, 2) || !only_attrs(I, n, NULL))
        return false;
    Val *a = in_val(I, n, 0), *b = in_val(I, n, 1);
    if (!a || !b)
        return false;
    const char *op = n->op_type;
    char sym = strcmp(op, "Add") == 0 || strcmp(op, "Sum") == 0 ? '+'
               : strcmp(op, "Sub") == 0                          ? '-'
               : strcmp(op, "Mul") == 0                          ? '*'
               : strcmp(op, "Div") == 0                          ? '/'
                                                                 : '^';
    Val shape = {0};
    if (!broadcast(I, a, b, &shape))
        return false;
    if (all_const(I, n)) {
        int64_t total;
        if (!dims_ok(I, "the result", shape.rank, shape.dims, &total))
            return false;
        /* no larger than an operand (the file's own data) or a small table */
        if (total > (1 << 16) && total > a->k->n && total > b->k->n)
            return fail(I, "computing a constant of %lld values at import is not supported", (long long)total);
        Const *k = const_new(I, a->k->is_int && b->k->is_int, shape.rank, shape.dims);
        for (int64_t i = 0; i < k->n; i++) {
            /* the index of i in each operand under broadcasting */
            int64_t ia = 0, ib = 0, r = i, sa = 1, sb = 1;
            for (int d = shape.rank - 1; d >= 0; d--) {
                int64_t c = r % shape.dims[d];
                r /= shape.dims[d];
                int da = d - (shape.rank - a->rank), db = d - (shape.rank - b->rank);
                if (da >= 0) {
                    ia += (a->dims[da] == 1 ? 0 : c) * sa;
                    sa *= a->dims[da];
                }
                if (db >= 0) {
                    ib += (b->dims[db] == 1 ? 0 : c) * sb;
                    sb *= b->dims[db];
                }
            }
            double x = kget(a->k, ia), y = kget(b->k, ib);
            if (k->is_int) {
                int64_t p = a->k->i[ia], q = b->k->i[ib];
                if (p == BATCH || q == BATCH)
                    return fail(I, "arithmetic on the batch size is not supported");
                if (sym == '/' && (q == 0 || (p == INT64_MIN && q == -1)))
                    return fail(I, "integer division by zero or overflow");
                bool over = false;
                if (sym == '+')
                    over = __builtin_add_overflow(p, q, &k->i[i]);
                else if (sym == '-')
                    over = __builtin_sub_overflow(p, q, &k->i[i]);
                else if (sym == '*')
                    over = __builtin_mul_overflow(p, q, &k->i[i]);
                else if (sym == '/')
                    k->i[i] = p / q;
                else if (!as_int(I, pow((double)p, (double)q), &k->i[i]))
                    return false;
                if (over)
                    return fail(I, "integer overflow computing a constant");
            } else {
                k->f[i] = (float)(sym == '+' ? x + y : sym == '-' ? x - y : sym == '*' ? x * y : sym == '/' ? x / y
                                                                                                      : pow(x, y));
            }
        }
        return fold_out(I, n, k) != NULL;
    }
    /* constants not yet declared can be laid out either way */
    bool a_ok = a->nhwc || (a->k && !a->id), b_ok = b->nhwc || (b->k && !b->id);
    bool nhwc = shape.rank == 4 && (a->nhwc || b->nhwc) && a_ok && b_ok;
    char na[64], nb[64];
    const char *x = elem_operand(I, a, nhwc, shape.rank, na, sizeof na);
    const char *y = x ? elem_operand(I, b, nhwc, shape.rank, nb, sizeof nb) : NULL;
    Val *o = y ? out_val(I, n) : NULL;
    if (!o)
        return false;
    set_shape(o, shape.rank, shape.dims);
    o->nhwc = nhwc;
    o->id = fresh(I);
    if (sym == '^')
        emit(I, "%s = %s ** %s\n", o->id, x, y);
    else
        emit(I, "%s = %s %c %s\n", o->id, x, sym, y);
    return true;
}

/* A unary op on a float constant, computed now. */
static bool fold_unary(Imp *I, const Onnx__NodeProto *n, Val *x)
{
    const char *op = n->op_type;
    if (x->k->is_int)
        return fail(I, "%s of an integer constant is not supported", op);
    Const *k = const_new(I, false, x->k->rank, x->k->dims);
    for (int64_t i = 0; i < k->n; i++) {
        double v = x->k->f[i];
        if (strcmp(op, "Sqrt") == 0)
            v = sqrt(v);
        else if (strcmp(op, "Reciprocal") == 0)
            v = 1 / v;
        else if (strcmp(op, "Neg") == 0)
            v = -v;
        else if (strcmp(op, "Exp") == 0)
            v = exp(v);
        else if (strcmp(op, "Log") == 0)
            v = log(v);
        else if (strcmp(op, "Abs") == 0)
            v = fabs(v);
        else if (strcmp(op, "Relu") == 0)
            v = v > 0 ? v : 0;
        else if (strcmp(op, "Tanh") == 0)
            v = tanh(v);
        else if (strcmp(op, "Sigmoid") == 0)
            v = 1 / (1 + exp(-v));
        else
            return fail(I, "%s of a constant is not supported", op);
        k->f[i] = (float)v;
    }
    return fold_out(I, n, k) != NULL;
}

/* Max or Min of one value (itself) or of three or more: nested. */
static bool max_min_chain(Imp *I, int idx, const Onnx__NodeProto *n)
{
    if (!only_attrs(I, n, NULL) || !need_inputs(I, n, 1, 64))
        return false;
    if (n->n_input == 1)
        return op_identity(I, idx, n);
    const char *fn = strcmp(n->op_type, "Max") == 0 ? "maximum" : "minimum";
    Val shape = {0}, *v;
    StrBuf b;
    sb_init(&b);
    bool ok = true;
    for (size_t i = 0; i < n->n_input && ok; i++) {
        char num[64];
        const char *id = NULL;
        ok = (v = in_val(I, n, i)) != NULL && (i == 0 ? (shape = *v, true) : broadcast(I, &shape, v, &shape)) &&
             (id = elem_operand(I, v, false, 0, num, sizeof num)) != NULL;
        if (ok)
        {
            if (i + 1 < n->n_input)
                sb_printf(&b, "%s(%s, ", fn, id);
            else
                sb_puts(&b, id);
        }
    }
    Val *o = ok ? out_val(I, n) : NULL;
    if (o) {
        set_shape(o, shape.rank, shape.dims);
        o->id = fresh(I);
        emit(I, "%s = %s", o->id, b.s);
        for (size_t i = 1; i < n->n_input; i++)
            emit(I, ")");
        emit(I, "\n");
    }
    sb_free(&b);
    return o != NULL;
}

/* Comparisons (1 and 0 as floats), Max and Min of two, Where. */
static bool op_compare(Imp *I, int idx, const Onnx__NodeProto *n)
{
    (void)idx;
    static const struct {
        const char *op, *fmt;
    } forms[] = {{"Greater", "%s > %s"}, {"Less", "%s < %s"}, {"GreaterOrEqual", "%s >= %s"},
                 {"LessOrEqual", "%s <= %s"}, {"Equal", "%s == %s"}, {"Max", "maximum(%s, %s)"},
                 {"Min", "minimum(%s, %s)"}, {"Where", "where(%s, %s, %s)"}};
    const char *fmt = NULL;
    for (int i = 0; i < ARRAY_LEN(forms); i++)
        if (strcmp(forms[i].op, n->op_type) == 0)
            fmt = forms[i].fmt;
    size_t k = strcmp(n->op_type, "Where") == 0 ? 3 : 2;
    bool maxmin = strcmp(n->op_type, "Max") == 0 || strcmp(n->op_type, "Min") == 0;
    if (maxmin && n->n_input != 2)
        return max_min_chain(I, idx, n);
    if (!need_inputs(I, n, k, k) || !only_attrs(I, n, NULL))
        return false;
    Val *v[3], shape = {0};
    for (size_t i = 0; i < k; i++)
        if (!(v[i] = in_val(I, n, i)))
            return false;
    if (!broadcast(I, v[0], v[1], &shape) || (k == 3 && !broadcast(I, &shape, v[2], &shape)))
        return false;
    bool all_k = true, nhwc = shape.rank == 4, any_nhwc = false;
    for (size_t i = 0; i < k; i++) {
        all_k &= v[i]->k && !v[i]->id;
        nhwc &= v[i]->nhwc || (v[i]->k && !v[i]->id);
        any_nhwc |= v[i]->nhwc;
    }
    if (all_k)
        return fail(I, "%s of constants is not supported", n->op_type);
    nhwc &= any_nhwc;
    char buf[3][64];
    const char *id[3] = {"", "", ""};
    for (size_t i = 0; i < k; i++)
        if (!(id[i] = elem_operand(I, v[i], nhwc, shape.rank, buf[i], sizeof buf[i])))
            return false;
    Val *o = out_val(I, n);
    if (!o)
        return false;
    set_shape(o, shape.rank, shape.dims);
    o->nhwc = nhwc;
    o->id = fresh(I);
    emit(I, "%s = ", o->id);
    emit(I, fmt, id[0], id[1], id[2]);
    emit(I, "\n");
    return true;
}

static bool unary_emit(Imp *I, const Onnx__NodeProto *n, const char *fn, const char *extra)
{
    Val *x = in_val(I, n, 0);
    if (!x)
        return false;
    if (x->k && !x->id)
        return fold_unary(I, n, x);
    Val *o = out_val(I, n);
    if (!o)
        return false;
    set_shape(o, x->rank, x->dims);
    o->nhwc = x->nhwc;
    o->id = fresh(I);
    emit(I, "%s = %s(%s%s)\n", o->id, fn, x->id, extra ? extra : "");
    return true;
}

static const struct {
    const char *onnx, *fn;
} unaries[] = {{"Relu", "relu"}, {"Sigmoid", "sigmoid"}, {"Tanh", "tanh"}, {"Exp", "exp"},
               {"Log", "log"},   {"Sqrt", "sqrt"},       {"Abs", "abs"},   {"Softplus", "softplus"},
               {"Softsign", "softsign"}, {"Erf", "erf"},  {"Sign", "sign"}, {"Neg", "-"}, {"Reciprocal", "1 /"},
               {NULL, NULL}};

static bool op_unary(Imp *I, int idx, const Onnx__NodeProto *n)
{
    (void)idx;
    if (!need_inputs(I, n, 1, 1))
        return false;
    char extra[80] = "";
    const char *fn = NULL;
    for (int i = 0; unaries[i].onnx; i++)
        if (strcmp(unaries[i].onnx, n->op_type) == 0)
            fn = unaries[i].fn;
    if (fn) {
        if (!only_attrs(I, n, NULL))
            return false;
    } else if (strcmp(n->op_type, "LeakyRelu") == 0 || strcmp(n->op_type, "Elu") == 0) {
        double alpha;
        bool leaky = n->op_type[0] == 'L';
        char num[48];
        if (!only_attrs(I, n, (const char *[]){"alpha", NULL}) ||
            !attr_float(I, n, "alpha", leaky ? 0.01 : 1.0, &alpha) || !number(I, alpha, num, sizeof num))
            return false;
        fn = leaky ? "leaky_relu" : "elu";
        snprintf(extra, sizeof extra, leaky ? ", negative_slope=%s" : ", alpha=%s", num);
    } else if (strcmp(n->op_type, "Selu") == 0) {
        double alpha, gamma;
        if (!only_attrs(I, n, (const char *[]){"alpha", "gamma", NULL}) ||
            !attr_float(I, n, "alpha", 1.67326319217681884765625, &alpha) ||
            !attr_float(I, n, "gamma", 1.05070102214813232421875, &gamma))
            return false;
        if (fabs(alpha - 1.6732632423543772) > 1e-6 || fabs(gamma - 1.0507009873554805) > 1e-6) {
            char na[48], ng[48];
            Val *x = in_val(I, n, 0);
            Val *o = x && number(I, alpha, na, sizeof na) && number(I, gamma, ng, sizeof ng) ? out_val(I, n) : NULL;
            if (!o || (x->k && !x->id))
                return o ? fail(I, "Selu of a constant is not supported") : false;
            set_shape(o, x->rank, x->dims);
            o->nhwc = x->nhwc;
            o->id = fresh(I);
            emit(I, "%s = %s * elu(%s, alpha=%s)\n", o->id, ng, x->id, na);
            return true;
        }
        fn = "selu";
    }
    if (strcmp(fn, "-") == 0 || strcmp(fn, "1 /") == 0) {
        Val *x = in_val(I, n, 0);
        if (x && x->k && !x->id)
            return fold_unary(I, n, x);
        Val *o = x ? out_val(I, n) : NULL;
        if (!o)
            return false;
        set_shape(o, x->rank, x->dims);
        o->nhwc = x->nhwc;
        o->id = fresh(I);
        emit(I, "%s = %s%s\n", o->id, fn[0] == '-' ? "-" : "1 / ", x->id);
        return true;
    }
    return unary_emit(I, n, fn, extra);
}

static bool op_softmax(Imp *I, int idx, const Onnx__NodeProto *n)
{
    (void)idx;
    if (!need_inputs(I, n, 1, 1) || !only_attrs(I, n, (const char *[]){"axis", NULL}))
        return false;
    Val *x = in_val(I, n, 0);
    int64_t axis;
    if (!x || !attr_int(I, n, "axis", I->opset >= 13 ? -1 : 1, &axis))
        return false;
    int ax = norm_axis(axis, x->rank);
    if (ax < 0 || ax >= x->rank)
        return fail(I, "axis %lld is out of range", (long long)axis);
    if (I->opset < 13 && ax != x->rank - 1)
        return fail(I, "before opset 13 only the last axis is supported");
    int pax = ax;
    if (x->nhwc)
        for (int j = 0; j < 4; j++)
            if (to_nhwc[j] == ax)
                pax = j;
    char extra[32] = "";
    if (pax != x->rank - 1)
        snprintf(extra, sizeof extra, ", axis=%d", pax);
    return unary_emit(I, n, n->op_type[0] == 'L' ? "log_softmax" : "softmax", extra);
}

/* Clip with a bound computed at run time: maximum, then minimum. */
static bool clip_runtime(Imp *I, const Onnx__NodeProto *n)
{
    Val *x = in_val(I, n, 0);
    if (!x)
        return false;
    const char *cur = operand(I, x, x->nhwc);
    for (size_t i = 1; i < n->n_input && cur; i++) {
        Val *b = in_val(I, n, i);
        char buf[64];
        const char *bi = b ? elem_operand(I, b, false, 0, buf, sizeof buf) : NULL;
        if (!b)
            continue;
        if (!bi)
            return false;
        char *t = fresh(I);
        emit(I, "%s = %s(%s, %s)\n", t, i == 1 ? "maximum" : "minimum", cur, bi);
        cur = t;
    }
    Val *o = cur ? out_val(I, n) : NULL;
    if (!o)
        return false;
    set_shape(o, x->rank, x->dims);
    o->nhwc = x->nhwc;
    o->id = (char *)cur;
    return true;
}

static bool op_clip(Imp *I, int idx, const Onnx__NodeProto *n)
{
    (void)idx;
    if (!need_inputs(I, n, 1, 3) || !only_attrs(I, n, (const char *[]){"min", "max", NULL}))
        return false;
    double lo, hi;
    if (!attr_float(I, n, "min", -INFINITY, &lo) || !attr_float(I, n, "max", INFINITY, &hi))
        return false;
    for (size_t i = 1; i < n->n_input; i++) {
        Val *b = in_val(I, n, i);
        if (!b)
            continue;
        if (!b->k || b->id || b->k->n != 1) {
            if (b->rank != 0)
                return fail(I, "min and max must be scalars");
            return clip_runtime(I, n);
        }
        if (i == 1)
            lo = kget(b->k, 0);
        else
            hi = kget(b->k, 0);
    }
    char a[48], b[48], extra[120];
    if (isinf(lo) && isinf(hi))
        return unary_emit(I, n, "", NULL);
    if (lo == 0 && isinf(hi))
        return unary_emit(I, n, "relu", NULL);
    if (isinf(lo) || isinf(hi))
        return fail(I, "a clip with only a maximum is not supported");
    if (!number(I, lo, a, sizeof a) || !number(I, hi, b, sizeof b))
        return false;
    snprintf(extra, sizeof extra, ", %s, %s", a, b);
    return unary_emit(I, n, "clip", extra);
}

/* ---- layers ---- */

static bool is_reserved(const char *s)
{
    for (int i = 0; reserved[i]; i++)
        if (strcmp(reserved[i], s) == 0)
            return true;
    return false;
}

/* A layer's name from its weight's ("fc1.weight" gives fc1): letters,
 * digits and '_' (other characters become '_'), unique; kind_N when the
 * weight's name says nothing. */
static const char *layer_name(Imp *I, const char *wname, const char *kind)
{
    char base[96];
    snprintf(base, sizeof base, "%s", wname ? wname : "");
    size_t L = strlen(base);
    const char *suf[] = {".weight", "_weight", ".kernel", ".gamma", NULL};
    for (int i = 0; suf[i]; i++) {
        size_t k = strlen(suf[i]);
        if (L > k && strcmp(base + L - k, suf[i]) == 0)
            base[L - k] = 0;
    }
    if (strncmp(base, "onnx::", 6) == 0 || strchr(base, ':') || base[0] == '_')
        base[0] = 0;
    if (!base[0] || is_reserved(base))
        return ident_from(I, base, kind, true);
    return ident_from(I, base, kind, true);
}

/* The identifier of a layer's value: its name unless that is a word of
 * the language. */
static char *layer_value(Imp *I, const char *name)
{
    return is_reserved(name) ? fresh(I) : (char *)name;
}

/* An activation the layer can take: the sole reader of out being Relu,
 * Sigmoid or Tanh folds into the layer; *next is that node. */
static const char *fold_activation(Imp *I, int idx, const char *out, int *next)
{
    *next = sole_consumer(I, out, idx);
    if (*next < 0 || I->g->node[*next]->n_attribute)
        return NULL;
    const char *o = op_of(I, *next);
    const char *act = strcmp(o, "Relu") == 0      ? "relu"
                      : strcmp(o, "Sigmoid") == 0 ? "sigmoid"
                      : strcmp(o, "Tanh") == 0    ? "tanh"
                                                  : NULL;
    if (act)
        I->skip[*next] = true;
    return act;
}

static const char *finish_layer(Imp *I, int idx, const char *out, Val **ov, int rank, const int64_t *d)
{
    int next;
    const char *act = fold_activation(I, idx, out, &next);
    *ov = define(I, act ? I->g->node[next]->output[0] : out);
    set_shape(*ov, rank, d);
    return act;
}

/* Gemm, or MatMul of a value by a constant matrix: dense, taking a
 * following Add of a constant vector as its bias. */
static bool op_gemm(Imp *I, int idx, const Onnx__NodeProto *n)
{
    bool gemm = strcmp(n->op_type, "Gemm") == 0;
    if (!need_inputs(I, n, 2, gemm ? 3 : 2) ||
        !only_attrs(I, n, (const char *[]){"alpha", "beta", "transA", "transB", NULL}))
        return false;
    Val *a = in_val(I, n, 0), *b = in_val(I, n, 1), *c = in_val(I, n, 2);
    int64_t ta, tb;
    double alpha, beta;
    if (!a || !b || (n->n_input > 2 && n->input[2][0] && !c) || !attr_int(I, n, "transA", 0, &ta) ||
        !attr_int(I, n, "transB", 0, &tb) || !attr_float(I, n, "alpha", 1, &alpha) ||
        !attr_float(I, n, "beta", 1, &beta))
        return false;
    if (!b->k || b->id || b->k->is_int || b->rank != 2 || ta || a->rank != 2 ||
        (c && (!c->k || c->id || c->k->n != (tb ? b->dims[0] : b->dims[1])))) {
        /* A' B' (alpha, beta, C): matrix products of values */
        if (gemm ? a->rank != 2 || b->rank != 2 : a->rank < 2 || b->rank < 2)
            return fail(I, "%s of values of rank %d and %d is not supported", n->op_type, a->rank, b->rank);
        Val shape = {0}, ab = *a, bb = *b;
        ab.rank -= 2;
        bb.rank -= 2;
        if (!broadcast(I, &ab, &bb, &shape))
            return false;
        int64_t m = a->dims[a->rank - (ta ? 1 : 2)], k = a->dims[a->rank - (ta ? 2 : 1)];
        int64_t k2 = b->dims[b->rank - (tb ? 1 : 2)], nn = b->dims[b->rank - (tb ? 2 : 1)];
        /* stacks of matrices: the batch axis only first, in both stacks
         * when their ranks are equal, else in the longer one's */
        bool nb_a = a->dims[0] == BATCH, nb_b = b->dims[0] == BATCH;
        bool stacks_ok = a->rank == b->rank ? nb_a == nb_b : a->rank > b->rank ? !nb_b : !nb_a;
        if (k != k2 || (shape.rank && !stacks_ok))
            return fail(I, "the shapes of '%s' and '%s' do not multiply", a->onnx, b->onnx);
        shape.dims[shape.rank] = m;
        shape.dims[shape.rank + 1] = nn;
        char num[2][48], cb[64];
        if (!number(I, alpha, num[0], sizeof num[0]) || !number(I, beta, num[1], sizeof num[1]))
            return false;
        const char *x = operand(I, a, false), *y = x ? operand(I, b, false) : NULL;
        const char *z = y && c ? elem_operand(I, c, false, 2, cb, sizeof cb) : "";
        Val *o = z ? out_val(I, n) : NULL;
        if (!o)
            return false;
        set_shape(o, shape.rank + 2, shape.dims);
        o->id = fresh(I);
        emit(I, "%s = ", o->id);
        if (alpha != 1)
            emit(I, "%s * ", num[0]);
        if (ta || tb)
            emit(I, "matmul(%s, %s%s%s)", x, y, ta ? ", transpose_a=true" : "", tb ? ", transpose_b=true" : "");
        else
            emit(I, "%s @ %s", x, y);
        if (c && beta != 0)
            emit(I, " + %s%s%s", beta != 1 ? num[1] : "", beta != 1 ? " * " : "", z);
        emit(I, "\n");
        return true;
    }
    int64_t in = tb ? b->dims[1] : b->dims[0], units = tb ? b->dims[0] : b->dims[1];
    if (a->dims[1] >= 0 && a->dims[1] != in)
        return fail(I, "'%s' has %lld features, the matrix expects %lld", a->onnx, (long long)a->dims[1],
                    (long long)in);
    /* kernel [in, units], scaled by alpha; rows permuted after an NHWC flatten */
    float *k = arena_alloc(I->a, (size_t)(in * units > 0 ? in * units : 1) * sizeof(float));
    int64_t C = a->flat_c, HW = C ? in / C : 1;
    for (int64_t i = 0; i < in; i++)
        for (int64_t u = 0; u < units; u++) {
            float v = tb ? b->k->f[u * in + i] : b->k->f[i * units + u];
            int64_t row = fe_onnx_nhwc_row(i, C, HW);
            k[row * units + u] = (float)(alpha * v);
        }
    const char *bias_name = NULL;
    Const *bias = NULL;
    int bias_node = -1;
    const char *out = n->output[0];
    if (c) {
        if (!c->k || c->id || c->k->n != units)
            return fail(I, "C must be a constant of %lld values", (long long)units);
        bias = c->k;
        bias_name = c->onnx;
    } else if (beta == 1 && (bias_node = sole_consumer(I, out, idx)) >= 0 &&
               strcmp(op_of(I, bias_node), "Add") == 0) {
        const Onnx__NodeProto *add = I->g->node[bias_node];
        Val *other = NULL;
        for (int j = 0; j < 2 && (size_t)j < add->n_input; j++)
            if (strcmp(add->input[j], out) != 0)
                other = lookup(I, add->input[j]);
        if (other && other->k && !other->id && !other->k->is_int && other->k->n == units &&
            add->n_input == 2 && (other->rank == 1 || (other->rank == 2 && other->dims[0] == 1))) {
            bias = other->k;
            bias_name = other->onnx;
            I->skip[bias_node] = true;
            out = add->output[0];
        }
    }
    const char *x = operand(I, a, false);
    if (!x)
        return false;
    const char *name = layer_name(I, b->origin ? b->origin : b->onnx, "fc");
    Val *o;
    int64_t d[2] = {a->dims[0], units};
    const char *act = finish_layer(I, idx, out, &o, 2, d);
    o->id = layer_value(I, name);
    emit(I, "%s = dense(%s, %lld%s%s%s, name=\"%s\")\n", o->id, x, (long long)units,
         act ? ", activation=" : "", act ? act : "", bias ? "" : ", use_bias=false", name);
    char pn[200];
    int64_t kd[2] = {in, units};
    snprintf(pn, sizeof pn, "%s.kernel", name);
    put_tensor(I, pn, 2, kd, k);
    if (bias) {
        float *bv = arena_alloc(I->a, (size_t)units * sizeof(float));
        for (int64_t u = 0; u < units; u++)
            bv[u] = (float)(beta * bias->f[u]);
        snprintf(pn, sizeof pn, "%s.bias", name);
        put_tensor(I, pn, 1, &units, bv);
    }
    (void)bias_name;
    return true;
}

/* Window attributes shared by Conv and the pools: kernel, strides, and
 * pads as "valid" or "same" (TensorFlow's rule) for the input's size. */
typedef struct Window {
    int64_t k[2], s[2]; /* k: the kernel's extent, dilations included */
    int64_t dil[2];
    bool same;
    int64_t pad[4]; /* explicit: top, bottom, left, right (ONNX's begins then ends) */
} Window;

static bool same_pad(int64_t in, int64_t k, int64_t s, int64_t *lo, int64_t *hi)
{
    int64_t out = (in + s - 1) / s, total = (out - 1) * s + k - in;
    if (total < 0)
        total = 0;
    *lo = total / 2;
    *hi = total - total / 2;
    return true;
}

static bool window(Imp *I, const Onnx__NodeProto *n, const Val *x, const int64_t *kernel, Window *w)
{
    int64_t v[8];
    int cnt;
    w->k[0] = kernel[0];
    w->k[1] = kernel[1];
    w->s[0] = w->s[1] = 1;
    if (!attr_ints(I, n, "strides", v, 2, &cnt))
        return false;
    if (cnt == 2) {
        w->s[0] = v[0];
        w->s[1] = v[1];
    } else if (cnt >= 0) {
        return fail(I, "strides must have 2 values");
    }
    if (w->s[0] < 1 || w->s[1] < 1 || w->s[0] > 1 << 20 || w->s[1] > 1 << 20 || w->k[0] < 1 ||
        w->k[1] < 1 || w->k[0] > 1 << 20 || w->k[1] > 1 << 20)
        return fail(I, "kernel sizes and strides must be positive");
    if (!attr_ints(I, n, "dilations", v, 2, &cnt))
        return false;
    w->dil[0] = w->dil[1] = 1;
    if (cnt >= 0 && cnt != 2)
        return fail(I, "dilations must have 2 values");
    for (int i = 0; i < cnt; i++) {
        if (v[i] < 1 || v[i] > 1 << 10)
            return fail(I, "dilations must be from 1 to %d", 1 << 10);
        w->dil[i] = v[i];
        w->k[i] = (w->k[i] - 1) * v[i] + 1;
    }
    char ap[32];
    const char *auto_pad = attr_str(n, "auto_pad", ap, sizeof ap);
    int64_t pads[4] = {0, 0, 0, 0};
    if (!attr_ints(I, n, "pads", v, 4, &cnt))
        return false;
    if (cnt == 4)
        memcpy(pads, v, sizeof pads);
    else if (cnt >= 0)
        return fail(I, "pads must have 4 values");
    bool prepadded = x->prepad[0] || x->prepad[1] || x->prepad[2] || x->prepad[3];
    for (int i = 0; i < 4; i++)
        pads[i] += x->prepad[i];
    w->same = false;
    memset(w->pad, 0, sizeof w->pad);
    if (auto_pad && strcmp(auto_pad, "NOTSET") != 0) {
        if (prepadded)
            return fail(I, "auto_pad after a Pad is not supported");
        if (strcmp(auto_pad, "SAME_UPPER") == 0) {
            w->same = true;
        } else if (strcmp(auto_pad, "SAME_LOWER") == 0) { /* the larger half before */
            if (x->dims[2] < 0 || x->dims[3] < 0)
                return fail(I, "padding needs the spatial size of '%s'", x->onnx);
            same_pad(x->dims[2], w->k[0], w->s[0], &w->pad[1], &w->pad[0]);
            same_pad(x->dims[3], w->k[1], w->s[1], &w->pad[3], &w->pad[2]);
        } else if (strcmp(auto_pad, "VALID") != 0) {
            return fail(I, "auto_pad %s is not supported", auto_pad);
        }
        return true;
    }
    if (!pads[0] && !pads[1] && !pads[2] && !pads[3])
        return true;
    if (x->dims[2] < 0 || x->dims[3] < 0)
        return fail(I, "padding needs the spatial size of '%s'", x->onnx);
    int64_t t, b, l, r;
    same_pad(x->dims[2], w->k[0], w->s[0], &t, &b);
    same_pad(x->dims[3], w->k[1], w->s[1], &l, &r);
    if (pads[0] == t && pads[2] == b && pads[1] == l && pads[3] == r) {
        w->same = true;
        return true;
    }
    for (int i = 0; i < 4; i++)
        if (pads[i] < 0 || pads[i] > 1 << 20)
            return fail(I, "pads must be from 0 to %d", 1 << 20);
    w->pad[0] = pads[0];
    w->pad[1] = pads[2];
    w->pad[2] = pads[1];
    w->pad[3] = pads[3];
    return true;
}

static bool window_out(Imp *I, const Val *x, const Window *w, int64_t *oh, int64_t *ow)
{
    int64_t H = x->dims[2], W = x->dims[3];
    if (H < 0 || W < 0)
        return fail(I, "the spatial size of '%s' is unknown", x->onnx);
    if (w->same) {
        *oh = (H + w->s[0] - 1) / w->s[0];
        *ow = (W + w->s[1] - 1) / w->s[1];
    } else {
        H += w->pad[0] + w->pad[1];
        W += w->pad[2] + w->pad[3];
        if (H < w->k[0] || W < w->k[1])
            return fail(I, "the window is larger than the padded input");
        *oh = (H - w->k[0]) / w->s[0] + 1;
        *ow = (W - w->k[1]) / w->s[1] + 1;
    }
    return true;
}

static void window_args(const Window *w, char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = 0;
    if (w->s[0] != 1 || w->s[1] != 1)
        k += (size_t)snprintf(buf + k, n - k, w->s[0] == w->s[1] ? ", stride=%lld" : ", stride=[%lld, %lld]",
                              (long long)w->s[0], (long long)w->s[1]);
    if (w->same && k < n)
        snprintf(buf + k, n - k, ", padding=\"same\"");
    else if ((w->pad[0] || w->pad[1] || w->pad[2] || w->pad[3]) && k < n)
        snprintf(buf + k, n - k, ", padding=[%lld, %lld, %lld, %lld]", (long long)w->pad[0],
                 (long long)w->pad[1], (long long)w->pad[2], (long long)w->pad[3]);
}

/* Conv with weights computed at run time (a graph input): the primitive
 * conv2d of the NHWC value with the kernel transposed to HWIO. */
static bool conv_runtime(Imp *I, int idx, const Onnx__NodeProto *n, Val *x, Val *w, Val *b, int64_t group)
{
    (void)idx;
    if (w->rank != 4 || w->dims[0] < 0 || w->dims[1] != x->dims[1])
        return fail(I, "the weights must be a [O, I, kh, kw] tensor of '%s''s %lld channels", x->onnx,
                    (long long)x->dims[1]);
    if (group != 1)
        return fail(I, "group = %lld needs constant weights", (long long)group);
    Window win;
    int64_t oh, ow, O = w->dims[0];
    if (!window(I, n, x, w->dims + 2, &win) || !window_out(I, x, &win, &oh, &ow))
        return false;
    if (win.dil[0] != 1 || win.dil[1] != 1)
        return fail(I, "dilations need constant weights");
    if (b && (b->rank != 1 || b->dims[0] != O))
        return fail(I, "the bias must have %lld values", (long long)O);
    const char *xi = operand(I, x, true), *wi = xi ? operand(I, w, false) : NULL;
    const char *bi = wi && b ? operand(I, b, false) : "";
    Val *o = bi ? out_val(I, n) : NULL;
    if (!o)
        return false;
    int64_t d[4] = {x->dims[0], O, oh, ow};
    set_shape(o, 4, d);
    o->nhwc = true;
    o->id = fresh(I);
    char wa[96], *k = fresh(I);
    window_args(&win, wa, sizeof wa);
    emit(I, "%s = transpose(%s, [2, 3, 1, 0])\n", k, wi);
    emit(I, "%s = conv2d(%s, %s%s)%s%s\n", o->id, xi, k, wa, b ? " + " : "", bi);
    return true;
}

/* A 1-D Conv or ConvTranspose ([N, C, L] values, [O, I, k] weights) as the
 * 2-D op on a unit height: the input and weights viewed as [N, C, 1, L]
 * and [O, I, 1, k], the window attributes given a leading 1 (pads 0), and
 * the 2-D result viewed back as [N, O, L']. */
static bool lift_1d(Imp *I, int idx, const Onnx__NodeProto *n, OpFn op2d)
{
    Val *x = in_val(I, n, 0), *w = in_val(I, n, 1);
    if (!x || !w)
        return false;
    if (w->rank != 3)
        return fail(I, "the weights of a 1-D convolution must be a [O, I, k] tensor");
    if (n->n_output < 1 || !n->output[0][0])
        return fail(I, "has no output");
    const char *xname = x->onnx, *wname = w->onnx;
    char *names[3], *outname;
    for (int i = 0; i < 3; i++) {
        names[i] = NULL;
        if ((size_t)i < n->n_input) {
            size_t len = strlen(n->input[i]) + 16;
            names[i] = arena_alloc(I->a, len);
            snprintf(names[i], len, "%s%s", n->input[i], n->input[i][0] && i < 2 ? " (as 2-D)" : "");
        }
    }
    size_t olen = strlen(n->output[0]) + 16;
    outname = arena_alloc(I->a, olen);
    snprintf(outname, olen, "%s (as 2-D)", n->output[0]);
    /* the input viewed as [N, C, 1, L] */
    int64_t d4[4] = {x->dims[0], x->dims[1], 1, x->dims[2]};
    Val *x4 = define(I, names[0]);
    x = lookup(I, xname); /* define may move the table */
    if (!emit_reshape(I, x, x4, 4, d4))
        return false;
    Val *w4 = define(I, names[1]);
    w = lookup(I, wname);
    int64_t k4[4] = {w->dims[0], w->dims[1], 1, w->dims[2]};
    if (w->k && !w->id) {
        Const *k = arena_alloc(I->a, sizeof *k);
        *k = *w->k;
        k->rank = 4;
        memcpy(k->dims, k4, sizeof k4);
        val_from_const(w4, k);
        w4->origin = w->origin ? w->origin : w->onnx;
        w4->from_init = w->from_init;
    } else if (!emit_reshape(I, w, w4, 4, k4)) {
        return false;
    }
    /* the node with its window attributes lifted */
    Onnx__NodeProto m = *n;
    m.input = names;
    m.n_input = n->n_input < 3 ? n->n_input : 3;
    if (n->n_input > 3)
        return fail(I, "has %zu inputs; expected 2 to 3", n->n_input);
    m.output = &outname;
    m.n_output = 1;
    m.attribute = arena_alloc(I->a, (n->n_attribute + 1) * sizeof *m.attribute);
    for (size_t i = 0; i < n->n_attribute; i++) {
        const Onnx__AttributeProto *a = n->attribute[i];
        const char *nm = a->name ? a->name : "";
        m.attribute[i] = (Onnx__AttributeProto *)a;
        if (!a->n_ints)
            continue;
        bool pads = strcmp(nm, "pads") == 0;
        bool lifted = pads || strcmp(nm, "kernel_shape") == 0 || strcmp(nm, "strides") == 0 ||
                      strcmp(nm, "dilations") == 0 || strcmp(nm, "output_padding") == 0 ||
                      strcmp(nm, "output_shape") == 0;
        if (!lifted)
            continue;
        if (a->n_ints != (pads ? 2u : 1u))
            return fail(I, "attribute '%s' must have %d value%s for a 1-D convolution", nm, pads ? 2 : 1,
                        pads ? "s" : "");
        Onnx__AttributeProto *b = arena_alloc(I->a, sizeof *b);
        *b = *a;
        b->ints = arena_alloc(I->a, 4 * sizeof *b->ints);
        if (pads) {
            b->n_ints = 4;
            b->ints[0] = b->ints[2] = 0;
            b->ints[1] = a->ints[0];
            b->ints[3] = a->ints[1];
        } else {
            b->n_ints = 2;
            b->ints[0] = strcmp(nm, "output_padding") == 0 ? 0 : 1;
            b->ints[1] = a->ints[0];
        }
        m.attribute[i] = b;
    }
    if (!op2d(I, idx, &m))
        return false;
    Val *o = define(I, n->output[0]), *o4 = lookup(I, outname);
    int64_t od[3] = {o4->dims[0], o4->dims[1], o4->dims[3]};
    return emit_reshape(I, o4, o, 3, od);
}

static bool op_conv(Imp *I, int idx, const Onnx__NodeProto *n)
{
    if (!need_inputs(I, n, 2, 3) ||
        !only_attrs(I, n, (const char *[]){"kernel_shape", "strides", "pads", "dilations", "group", "auto_pad", NULL}))
        return false;
    Val *x = in_val(I, n, 0), *w = in_val(I, n, 1), *b = in_val(I, n, 2);
    int64_t group;
    if (!x || !w || (n->n_input > 2 && n->input[2][0] && !b) || !attr_int(I, n, "group", 1, &group))
        return false;
    if (x->rank == 3 && examples_first(I, x))
        return lift_1d(I, idx, n, op_conv);
    if (x->rank != 4 || !examples_first(I, x))
        return fail(I, "only 1-D and 2-D convolutions of [N, C, L] and [N, C, H, W] values are supported");
    if (!w->k || w->id || w->k->is_int || w->rank != 4)
        return conv_runtime(I, idx, n, x, w, b, group);
    int64_t O = w->dims[0], Cg = w->dims[1], C = x->dims[1];
    if (group < 1 || group > C || C % group || O % group || Cg * group != C)
        return fail(I, "'%s' has %lld channels, the weights expect %lld in %lld group%s", x->onnx,
                    (long long)C, (long long)Cg * group, (long long)group, group == 1 ? "" : "s");
    Window win;
    int64_t oh, ow;
    if (!window(I, n, x, w->dims + 2, &win) || !window_out(I, x, &win, &oh, &ow))
        return false;
    if (b && (!b->k || b->id || b->k->is_int || b->k->n != O))
        return fail(I, "the bias must be a constant of %lld values", (long long)O);
    /* the kernel as one dense convolution: groups on the block diagonal
     * (zeros between them), dilations as zeros between the taps */
    int64_t kh = w->dims[2], kw = w->dims[3], KH = win.k[0], KW = win.k[1];
    double kvals = (double)C * (double)O * (double)KH * (double)KW;
    if ((group > 1 || KH != kh || KW != kw) && kvals > (double)(1 << 24))
        return fail(I, "the grouped or dilated kernel would hold %.0f values; at most %d are supported", kvals,
                    1 << 24);
    int64_t kd[4] = {KH, KW, C, O};
    float *kern = arena_alloc(I->a, (size_t)(KH * KW * C * O) * sizeof(float));
    memset(kern, 0, (size_t)(KH * KW * C * O) * sizeof(float));
    int64_t Og = O / group;
    for (int64_t o = 0; o < O; o++)
        for (int64_t c = 0; c < Cg; c++)
            for (int64_t i = 0; i < kh; i++)
                for (int64_t j = 0; j < kw; j++) {
                    int64_t ci = (o / Og) * Cg + c, hi = i * win.dil[0], wj = j * win.dil[1];
                    kern[((hi * KW + wj) * C + ci) * O + o] = w->k->f[((o * Cg + c) * kh + i) * kw + j];
                }
    const char *xi = operand(I, x, true);
    if (!xi)
        return false;
    const char *name = layer_name(I, w->origin ? w->origin : w->onnx, "conv");
    Val *o;
    int64_t d[4] = {x->dims[0], O, oh, ow};
    const char *act = finish_layer(I, idx, n->output[0], &o, 4, d);
    o->nhwc = true;
    o->id = layer_value(I, name);
    char ks[64], wa[96];
    if (KH == KW)
        snprintf(ks, sizeof ks, "%lld", (long long)KH);
    else
        snprintf(ks, sizeof ks, "[%lld, %lld]", (long long)KH, (long long)KW);
    window_args(&win, wa, sizeof wa);
    emit(I, "%s = conv2d(%s, %lld, %s%s%s%s%s, name=\"%s\")\n", o->id, xi, (long long)O, ks, wa,
         act ? ", activation=" : "", act ? act : "", b ? "" : ", use_bias=false", name);
    char pn[200];
    snprintf(pn, sizeof pn, "%s.kernel", name);
    put_tensor(I, pn, 4, kd, kern);
    if (b) {
        snprintf(pn, sizeof pn, "%s.bias", name);
        put_tensor(I, pn, 1, &O, b->k->f);
    }
    return true;
}

/* reshape of identifier src (a contiguous value) to dims; dims[0] may be
 * BATCH. Returns the new identifier. */
static const char *reshape_id(Imp *I, const char *src, int rank, const int64_t *dims)
{
    char *t = fresh(I);
    emit(I, "%s = reshape(%s, [", t, src);
    for (int i = 0; i < rank; i++)
        if (dims[i] == BATCH)
            emit(I, "N");
        else
            emit(I, "%s%lld", i ? ", " : "", (long long)dims[i]);
    emit(I, "])\n");
    return t;
}

/* Pooling of any rank (1-D, 3-D) and dilated pooling, one spatial axis at
 * a time: max and average pooling over a box are separable (the average
 * of the non-padding positions of a box is the average along one axis of
 * the averages along the others). An axis without dilation is the 2-D
 * pool of the value viewed as [N, P, L, Q] in NHWC with a [1, k] window;
 * a dilated axis is the maximum or mean of its k strided slices. */
/* The geometry of a pooling window along each spatial axis i: stride
 * s[i], dilation dil[i], padding lo[i] before and hi[i] after (ceil_mode's
 * extension included) and the output size O[i]. */
static bool pool_geometry(Imp *I, const Onnx__NodeProto *n, const Val *x, bool maxp, const int64_t *ks, int nk,
                          int64_t ceil_mode, int64_t cip, int64_t *s, int64_t *dil, int64_t *lo, int64_t *hi,
                          int64_t *O)
{
    int r = x->rank, ns = r - 2;
    int64_t v[2 * MAXR];
    int cnt;
    if (nk != ns)
        return fail(I, "kernel_shape has %d values for %d spatial axes", nk, ns);
    for (int i = 0; i < ns; i++) {
        s[i] = dil[i] = 1;
        lo[i] = hi[i] = 0;
        if (x->dims[2 + i] < 1)
            return fail(I, "the spatial size of '%s' is unknown", x->onnx);
    }
    if (!attr_ints(I, n, "strides", v, MAXR, &cnt))
        return false;
    if (cnt >= 0 && cnt != ns)
        return fail(I, "strides must have %d values", ns);
    for (int i = 0; i < cnt; i++)
        s[i] = v[i];
    if (!attr_ints(I, n, "dilations", v, MAXR, &cnt))
        return false;
    if (cnt >= 0 && cnt != ns)
        return fail(I, "dilations must have %d values", ns);
    for (int i = 0; i < cnt; i++)
        dil[i] = v[i];
    if (!attr_ints(I, n, "pads", v, 2 * MAXR, &cnt))
        return false;
    if (cnt >= 0 && cnt != 2 * ns)
        return fail(I, "pads must have %d values", 2 * ns);
    for (int i = 0; i < cnt / 2; i++) {
        lo[i] = v[i];
        hi[i] = v[i + ns];
    }
    for (int i = 0; i < ns; i++)
        if (ks[i] < 1 || ks[i] > 1 << 20 || s[i] < 1 || s[i] > 1 << 20 || dil[i] < 1 || dil[i] > 1 << 10 ||
            lo[i] < 0 || lo[i] > 1 << 20 || hi[i] < 0 || hi[i] > 1 << 20)
            return fail(I, "kernel sizes, strides and dilations must be positive, pads from 0 to %d", 1 << 20);
    char ap[32];
    const char *auto_pad = attr_str(n, "auto_pad", ap, sizeof ap);
    if (auto_pad && strcmp(auto_pad, "NOTSET") != 0 && strcmp(auto_pad, "VALID") != 0 &&
        strcmp(auto_pad, "SAME_UPPER") != 0 && strcmp(auto_pad, "SAME_LOWER") != 0)
        return fail(I, "auto_pad %s is not supported", auto_pad);
    bool same = auto_pad && strncmp(auto_pad, "SAME", 4) == 0;
    if (auto_pad && strcmp(auto_pad, "NOTSET") != 0)
        for (int i = 0; i < ns; i++)
            lo[i] = hi[i] = 0;
    for (int i = 0; i < ns; i++) {
        int64_t L = x->dims[2 + i], K = (ks[i] - 1) * dil[i] + 1;
        if (same) {
            int64_t lo2, hi2;
            same_pad(L, K, s[i], &lo2, &hi2);
            lo[i] = strcmp(auto_pad, "SAME_UPPER") == 0 ? lo2 : hi2;
            hi[i] = strcmp(auto_pad, "SAME_UPPER") == 0 ? hi2 : lo2;
        }
        int64_t in = L + lo[i] + hi[i];
        if (in < K)
            return fail(I, "the window is larger than the padded input");
        O[i] = (in - K) / s[i] + 1;
        if (ceil_mode && !same) {
            O[i] = (in - K + s[i] - 1) / s[i] + 1;
            if ((O[i] - 1) * s[i] >= L + lo[i])
                O[i]--; /* a window starting in the end padding is dropped */
            int64_t ext = (O[i] - 1) * s[i] + K - in;
            if (ext > 0 && cip && !maxp)
                return fail(I, "ceil_mode = 1 with count_include_pad = 1 is not supported");
            hi[i] += ext > 0 ? ext : 0;
        }
    }
    return true;
}

static bool pool_axes(Imp *I, const Onnx__NodeProto *n, Val *x, bool maxp, const int64_t *ks, int nk,
                      int64_t ceil_mode, int64_t cip)
{
    int r = x->rank, ns = r - 2;
    int64_t s[MAXR], dil[MAXR], plo[MAXR], phi[MAXR], PO[MAXR];
    if (!pool_geometry(I, n, x, maxp, ks, nk, ceil_mode, cip, s, dil, plo, phi, PO))
        return false;
    const char *cur = operand(I, x, false);
    if (!cur)
        return false;
    int64_t d[MAXR];
    memcpy(d, x->dims, sizeof d);
    for (int i = 0; i < ns; i++) {
        int a = 2 + i;
        int64_t L = d[a], lo = plo[i], hi = phi[i], O = PO[i];
        if (ks[i] == 1 && s[i] == 1 && !lo && !hi)
            continue;
        char pads[MAXR][64];
        if (cip && !maxp && (lo || hi)) { /* the zeros counted: padded first */
            char *p = fresh(I);
            emit(I, "%s = pad(%s, [", p, cur);
            for (int j = 0; j < r; j++)
                emit(I, "%s[%lld, %lld]", j ? ", " : "", (long long)(j == a ? lo : 0), (long long)(j == a ? hi : 0));
            emit(I, "])\n");
            cur = p;
            d[a] = L = L + lo + hi;
            lo = hi = 0;
        }
        if (dil[i] > 1) {
            if (lo || hi)
                return fail(I, "dilated pooling with padding is not supported");
            if (ks[i] > 64)
                return fail(I, "dilated pooling windows of more than 64 taps are not supported");
            const char *acc = NULL;
            for (int64_t j = 0; j < ks[i]; j++) {
                for (int q = 0; q < r; q++)
                    snprintf(pads[q], sizeof pads[q], ":");
                snprintf(pads[a], sizeof pads[a], "%lld:%lld:%lld", (long long)(j * dil[i]),
                         (long long)(j * dil[i] + (O - 1) * s[i] + 1), (long long)s[i]);
                char *t = fresh(I);
                emit(I, "%s = ", t);
                if (acc)
                    emit(I, maxp ? "maximum(%s, " : "%s + ", acc);
                emit(I, "%s[", cur);
                for (int q = 0; q < r; q++)
                    emit(I, "%s%s", q ? ", " : "", pads[q]);
                emit(I, "]%s\n", acc && maxp ? ")" : "");
                acc = t;
            }
            if (!maxp) {
                char *t = fresh(I);
                emit(I, "%s = %s / %lld\n", t, acc, (long long)ks[i]);
                acc = t;
            }
            cur = acc;
            d[a] = O;
            continue;
        }
        int64_t P = 1, Q = 1, v4[4];
        for (int j = 1; j < a; j++)
            P *= d[j];
        for (int j = a + 1; j < r; j++)
            Q *= d[j];
        v4[0] = d[0];
        v4[1] = P;
        v4[2] = L;
        v4[3] = Q;
        const char *t4 = reshape_id(I, cur, 4, v4);
        char *p = fresh(I);
        emit(I, "%s = %s(%s, [1, %lld], stride=[1, %lld]", p, maxp ? "max_pool2d" : "avg_pool2d", t4,
             (long long)ks[i], (long long)s[i]);
        if (lo || hi)
            emit(I, ", padding=[0, 0, %lld, %lld]", (long long)lo, (long long)hi);
        emit(I, ")\n");
        d[a] = O;
        cur = reshape_id(I, p, r, d);
    }
    Val *o = out_val(I, n);
    if (!o)
        return false;
    set_shape(o, r, d);
    o->id = (char *)cur;
    if (cur == x->id || cur == x->other_id) { /* nothing pooled: a copy under its own name */
        o->id = fresh(I);
        emit(I, "%s = %s\n", o->id, cur);
    }
    return true;
}

/* MaxPool with its indices output: over the value padded with the most
 * negative float, each window tap is a strided slice of it and of a
 * constant holding each position's flattened NCHW index (ONNX's, row- or
 * column-major over the spatial axes by storage_order; the batch axis
 * fixed), and a chain of where(tap > best, ...) keeps the first maximal
 * tap's value and index. The indices are floats holding integers. */
static bool maxpool_indices(Imp *I, const Onnx__NodeProto *n, Val *x, const int64_t *ks, int nk, int64_t ceil_mode)
{
    int r = x->rank, ns = r - 2;
    int64_t s[MAXR], dil[MAXR], lo[MAXR], hi[MAXR], O[MAXR], order;
    if (!attr_int(I, n, "storage_order", 0, &order) ||
        !pool_geometry(I, n, x, true, ks, nk, ceil_mode, 0, s, dil, lo, hi, O))
        return false;
    if (order != 0 && order != 1)
        return fail(I, "storage_order must be 0 or 1");
    if (x->dims[0] == BATCH || x->dims[0] < 1 || x->dims[1] < 1)
        return fail(I, "the indices output needs a fixed batch size");
    int64_t pd[MAXR], total = 1, taps = 1;
    for (int a = 0; a < r; a++) {
        pd[a] = a < 2 ? x->dims[a] : x->dims[a] + lo[a - 2] + hi[a - 2];
        total *= pd[a];
        if (total > 1 << 22)
            return fail(I, "the indices output is supported for at most %d padded values", 1 << 22);
    }
    for (int i = 0; i < ns; i++)
        taps *= ks[i];
    if (taps > 256)
        return fail(I, "the indices output is supported for windows of at most 256 taps");
    const char *xi = operand(I, x, false);
    if (!xi)
        return false;
    bool padded = false;
    for (int i = 0; i < ns; i++)
        padded |= lo[i] || hi[i];
    if (padded) {
        char *p = fresh(I);
        emit(I, "%s = pad(%s, [[0, 0], [0, 0]", p, xi);
        for (int i = 0; i < ns; i++)
            emit(I, ", [%lld, %lld]", (long long)lo[i], (long long)hi[i]);
        emit(I, "], constant_values=(-3.4e+38))\n");
        xi = p;
    }
    /* each padded position's index in the unpadded input (0 in the padding) */
    float *ix = arena_alloc(I->a, (size_t)total * sizeof *ix);
    for (int64_t p = 0; p < total; p++) {
        int64_t rem = p, c[MAXR];
        for (int a = r - 1; a >= 0; a--) {
            c[a] = rem % pd[a];
            rem /= pd[a];
        }
        int64_t v = c[0] * x->dims[1] + c[1], sp = 0, stride = 1;
        bool inside = true;
        for (int k = 0; k < ns; k++) { /* row-major: the last axis fastest; column-major: the first */
            int i = order ? k : ns - 1 - k;
            int64_t q = c[2 + i] - lo[i];
            inside &= q >= 0 && q < x->dims[2 + i];
            sp += q * stride;
            stride *= x->dims[2 + i];
        }
        ix[p] = inside ? (float)(v * stride + sp) : 0;
    }
    char *P = fresh(I);
    emit(I, "param %s: f32[", P);
    for (int a = 0; a < r; a++)
        emit(I, "%s%lld", a ? ", " : "", (long long)pd[a]);
    emit(I, "] frozen\n");
    put_tensor(I, P, r, pd, ix);
    const char *best = NULL, *bi = NULL;
    for (int64_t t = 0; t < taps; t++) {
        char sub[256];
        size_t k = (size_t)snprintf(sub, sizeof sub, ":, :");
        int64_t rem = t, off[MAXR];
        for (int i = ns - 1; i >= 0; i--) { /* the tap's offsets, row-major over the window */
            off[i] = rem % ks[i];
            rem /= ks[i];
        }
        for (int i = 0; i < ns && k < sizeof sub; i++) {
            int64_t b = off[i] * dil[i];
            k += (size_t)snprintf(sub + k, sizeof sub - k, ", %lld:%lld:%lld", (long long)b,
                                  (long long)(b + (O[i] - 1) * s[i] + 1), (long long)s[i]);
        }
        char *v = fresh(I), *j = fresh(I);
        emit(I, "%s = %s[%s]\n", v, xi, sub);
        emit(I, "%s = %s[%s]\n", j, P, sub);
        if (!best) {
            best = v;
            bi = j;
            continue;
        }
        char *m = fresh(I), *nb = fresh(I), *ni = fresh(I);
        emit(I, "%s = %s > %s\n", m, v, best);
        emit(I, "%s = where(%s, %s, %s)\n", nb, m, v, best);
        emit(I, "%s = where(%s, %s, %s)\n", ni, m, j, bi);
        best = nb;
        bi = ni;
    }
    int64_t od[MAXR];
    od[0] = x->dims[0];
    od[1] = x->dims[1];
    for (int i = 0; i < ns; i++)
        od[2 + i] = O[i];
    const char *ids[2] = {best, bi};
    for (int k = 0; k < 2; k++) {
        if (!n->output[k][0])
            continue;
        Val *o = define(I, n->output[k]);
        set_shape(o, r, od);
        o->id = (char *)ids[k];
    }
    return true;
}

static bool op_pool(Imp *I, int idx, const Onnx__NodeProto *n)
{
    (void)idx;
    bool maxp = strcmp(n->op_type, "MaxPool") == 0;
    if (!need_inputs(I, n, 1, 1) ||
        !only_attrs(I, n, (const char *[]){"kernel_shape", "strides", "pads", "dilations", "auto_pad",
                                          "ceil_mode", "count_include_pad", "storage_order", NULL}))
        return false;
    Val *x = in_val(I, n, 0);
    int64_t ks[MAXR], ceil_mode, cip;
    int cnt;
    int64_t dl[MAXR];
    int ndl;
    if (!x || !attr_ints(I, n, "kernel_shape", ks, MAXR, &cnt) || !attr_int(I, n, "ceil_mode", 0, &ceil_mode) ||
        !attr_int(I, n, "count_include_pad", 0, &cip) || !attr_ints(I, n, "dilations", dl, MAXR, &ndl))
        return false;
    if (x->rank < 3 || !examples_first(I, x) || cnt != x->rank - 2)
        return fail(I, "only pooling of [N, C, ...] values with one window size per spatial axis is supported");
    if (n->n_output > 2)
        return fail(I, "has %zu outputs; expected 1 or 2", n->n_output);
    if (n->n_output > 1 && n->output[1][0])
        return maxp ? maxpool_indices(I, n, x, ks, cnt, ceil_mode) : fail(I, "has 2 outputs; expected 1");
    bool dilated = false;
    for (int i = 0; i < ndl; i++)
        dilated |= dl[i] != 1;
    if (x->rank != 4 || dilated)
        return pool_axes(I, n, x, maxp, ks, cnt, ceil_mode, cip);
    Window win;
    int64_t oh, ow;
    if (!window(I, n, x, ks, &win) || !window_out(I, x, &win, &oh, &ow))
        return false;
    if (win.dil[0] != 1 || win.dil[1] != 1)
        return fail(I, "dilations other than 1 are not supported in pooling");
    bool padded = win.same || win.pad[0] || win.pad[1] || win.pad[2] || win.pad[3];
    if (ceil_mode && !win.same) { /* the last window may start in the input and end past it */
        int64_t ext[2];
        for (int a = 0; a < 2; a++) {
            int64_t in = x->dims[2 + a] + win.pad[2 * a] + win.pad[2 * a + 1];
            int64_t out = (in - win.k[a] + win.s[a] - 1) / win.s[a] + 1;
            if ((out - 1) * win.s[a] >= x->dims[2 + a] + win.pad[2 * a])
                out--; /* a window starting in the end padding is dropped */
            ext[a] = (out - 1) * win.s[a] + win.k[a] - in;
            if (ext[a] > 0 && cip && !maxp)
                return fail(I, "ceil_mode = 1 with count_include_pad = 1 is not supported");
        }
        win.pad[1] += ext[0] > 0 ? ext[0] : 0;
        win.pad[3] += ext[1] > 0 ? ext[1] : 0;
        if (!window_out(I, x, &win, &oh, &ow))
            return false;
    }
    const char *xi = operand(I, x, true);
    if (xi && cip && padded && !maxp) { /* the zeros counted: padded first */
        int64_t t = win.pad[0], b = win.pad[1], l = win.pad[2], r = win.pad[3];
        if (win.same) {
            same_pad(x->dims[2], win.k[0], win.s[0], &t, &b);
            same_pad(x->dims[3], win.k[1], win.s[1], &l, &r);
        }
        char *p = fresh(I);
        emit(I, "%s = pad(%s, [[0, 0], [%lld, %lld], [%lld, %lld], [0, 0]])\n", p, xi, (long long)t,
             (long long)b, (long long)l, (long long)r);
        xi = p;
        win.same = false;
        memset(win.pad, 0, sizeof win.pad);
    }
    Val *o = xi ? out_val(I, n) : NULL;
    if (!o)
        return false;
    int64_t d[4] = {x->dims[0], x->dims[1], oh, ow};
    set_shape(o, 4, d);
    o->nhwc = true;
    o->id = fresh(I);
    char ps[64], wa[96];
    if (win.k[0] == win.k[1])
        snprintf(ps, sizeof ps, "%lld", (long long)win.k[0]);
    else
        snprintf(ps, sizeof ps, "[%lld, %lld]", (long long)win.k[0], (long long)win.k[1]);
    if (win.s[0] == win.k[0] && win.s[1] == win.k[1]) {
        Window w2 = win;
        w2.s[0] = w2.s[1] = 1;
        window_args(&w2, wa, sizeof wa);
    } else {
        window_args(&win, wa, sizeof wa);
        if (win.s[0] == 1 && win.s[1] == 1) { /* the pools' stride defaults to the window */
            char rest[96];
            memcpy(rest, wa, sizeof rest);
            memcpy(wa, ", stride=1", 11);
            strncat(wa, rest, sizeof wa - strlen(wa) - 1);
        }
    }
    emit(I, "%s = %s(%s, %s%s)\n", o->id, maxp ? "max_pool2d" : "avg_pool2d", xi, ps, wa);
    return true;
}

static bool op_global_pool(Imp *I, int idx, const Onnx__NodeProto *n)
{
    (void)idx;
    if (!need_inputs(I, n, 1, 1) || !only_attrs(I, n, NULL))
        return false;
    Val *x = in_val(I, n, 0);
    if (!x)
        return false;
    if (x->rank != 4 || !examples_first(I, x))
        return fail(I, "only [N, C, H, W] values are supported");
    const char *xi = operand(I, x, true);
    Val *o = xi ? out_val(I, n) : NULL;
    if (!o)
        return false;
    int64_t d[4] = {x->dims[0], x->dims[1], 1, 1};
    set_shape(o, 4, d);
    o->nhwc = true;
    o->id = fresh(I);
    emit(I, "%s = %s(%s, axis=[1, 2], keepdims=true)\n", o->id, n->op_type[6] == 'A' ? "mean" : "max", xi);
    return true;
}

static bool op_batchnorm(Imp *I, int idx, const Onnx__NodeProto *n)
{
    if (!need_inputs(I, n, 5, 5) ||
        !only_attrs(I, n, (const char *[]){"epsilon", "momentum", "spatial", "training_mode", NULL}))
        return false;
    int64_t tm;
    double eps, mom;
    if (!attr_int(I, n, "training_mode", 0, &tm) || !attr_float(I, n, "epsilon", 1e-5, &eps) ||
        !attr_float(I, n, "momentum", 0.9, &mom))
        return false;
    for (size_t i = 1; i < n->n_output && !tm; i++)
        if (n->output[i][0])
            return fail(I, "the running statistics outputs need training_mode = 1");
    if (n->n_output > 3)
        return fail(I, "has %zu outputs; expected 1 to 3", n->n_output);
    Val *x = in_val(I, n, 0), *p[4];
    if (!x)
        return false;
    if (!(x->rank == 4 || x->rank == 2) || !examples_first(I, x))
        return fail(I, "only [N, C] and [N, C, H, W] values are supported");
    int64_t C = x->dims[1];
    bool runtime = false;
    for (int i = 0; i < 4; i++) {
        p[i] = in_val(I, n, (size_t)i + 1);
        if (!p[i])
            return false;
        if (p[i]->rank != 1 || p[i]->dims[0] != C)
            return fail(I, "scale, bias, mean and variance must have %lld values", (long long)C);
        runtime |= !p[i]->k || p[i]->id || p[i]->k->is_int;
    }
    if (tm) { /* the batch's statistics (biased variance), and the running ones updated with them */
        const char *xi = operand(I, x, true), *pi[4];
        char num[2][48];
        for (int i = 0; i < 4; i++)
            if (!xi || !(pi[i] = operand(I, p[i], false)))
                return false;
        if (!number(I, eps, num[0], sizeof num[0]) || !number(I, mom, num[1], sizeof num[1]))
            return false;
        const char *axes = x->rank == 4 ? "0, 1, 2" : "0";
        char *m = fresh(I), *v = fresh(I), *ids[3] = {fresh(I), NULL, NULL};
        emit(I, "%s = mean(%s, axis=[%s])\n", m, xi, axes);
        emit(I, "%s = mean(square(%s - %s), axis=[%s])\n", v, xi, m, axes);
        emit(I, "%s = (%s - %s) * (%s * rsqrt(%s + %s)) + %s\n", ids[0], xi, m, pi[0], v, num[0], pi[1]);
        for (int i = 1; i < 3; i++) {
            if (i >= (int)n->n_output || !n->output[i][0])
                continue;
            ids[i] = fresh(I);
            emit(I, "%s = %s * %s + %s * (1 - %s)\n", ids[i], pi[1 + i], num[1], i == 1 ? m : v, num[1]);
        }
        int rank = x->rank;
        int64_t dims[MAXR];
        memcpy(dims, x->dims, sizeof dims);
        for (int i = 0; i < 3; i++) {
            if (!ids[i])
                continue;
            Val *o = define(I, n->output[i]);
            if (i == 0) {
                set_shape(o, rank, dims);
                o->nhwc = rank == 4;
            } else {
                set_shape(o, 1, &C);
            }
            o->id = ids[i];
        }
        (void)idx;
        return true;
    }
    if (runtime) { /* statistics computed at run time: the inference formula, on the channels axis last */
        const char *xi = operand(I, x, true), *pi[4];
        char num[48];
        for (int i = 0; i < 4; i++)
            if (!xi || !(pi[i] = operand(I, p[i], false)))
                return false;
        Val *o = number(I, eps, num, sizeof num) ? out_val(I, n) : NULL;
        if (!o)
            return false;
        set_shape(o, x->rank, x->dims);
        o->nhwc = x->rank == 4;
        o->id = fresh(I);
        emit(I, "%s = (%s - %s) * (%s * rsqrt(%s + %s)) + %s\n", o->id, xi, pi[2], pi[0], pi[3], num, pi[1]);
        (void)idx;
        return true;
    }
    const char *xi = operand(I, x, true);
    if (!xi)
        return false;
    const char *name = layer_name(I, p[0]->onnx, "bn");
    char num[2][48];
    if (!number(I, mom, num[0], sizeof num[0]) || !number(I, eps, num[1], sizeof num[1]))
        return false;
    Val *o = out_val(I, n);
    if (!o)
        return false;
    set_shape(o, x->rank, x->dims);
    o->nhwc = x->rank == 4;
    o->id = layer_value(I, name);
    emit(I, "%s = batchnorm(%s, momentum=%s, epsilon=%s, name=\"%s\")\n", o->id, xi, num[0], num[1], name);
    static const char *const what[4] = {"gamma", "beta", "moving_mean", "moving_var"};
    for (int i = 0; i < 4; i++) {
        char pn[200];
        snprintf(pn, sizeof pn, "%s.%s", name, what[i]);
        put_tensor(I, pn, 1, &C, p[i]->k->f);
    }
    (void)idx;
    return true;
}

static bool op_transpose(Imp *I, int idx, const Onnx__NodeProto *n)
{
    (void)idx;
    if (!need_inputs(I, n, 1, 1) || !only_attrs(I, n, (const char *[]){"perm", NULL}))
        return false;
    Val *x = in_val(I, n, 0);
    int64_t perm[MAXR];
    int cnt;
    if (!x || !attr_ints(I, n, "perm", perm, MAXR, &cnt))
        return false;
    if (cnt < 0) {
        cnt = x->rank;
        for (int i = 0; i < cnt; i++)
            perm[i] = cnt - 1 - i;
    }
    if (cnt != x->rank)
        return fail(I, "perm has %d entries for a rank-%d value", cnt, x->rank);
    bool seen[MAXR] = {false};
    for (int i = 0; i < cnt; i++) {
        if (perm[i] < 0 || perm[i] >= cnt || seen[perm[i]])
            return fail(I, "perm is not a permutation");
        seen[perm[i]] = true;
    }
    if (is_batch_first(x) && perm[0] != 0)
        return fail(I, "moving the batch axis is not supported");
    int64_t d[MAXR];
    for (int i = 0; i < cnt; i++)
        d[i] = x->dims[perm[i]];
    if (x->k && !x->id) {
        int p[MAXR];
        for (int i = 0; i < cnt; i++)
            p[i] = (int)perm[i];
        Const *k = const_new(I, x->k->is_int, cnt, d);
        int64_t od[MAXR];
        if (x->k->is_int) {
            /* the same walk over a copy of the integers as floats would lose them: index map */
            float *pos = arena_alloc(I->a, (size_t)(x->k->n ? x->k->n : 1) * sizeof(float));
            if (x->k->n > (1 << 24))
                return fail(I, "transposing an integer constant this large is not supported");
            for (int64_t i = 0; i < x->k->n; i++)
                pos[i] = (float)i;
            float *y = permute(I, pos, cnt, x->k->dims, p, od);
            for (int64_t i = 0; i < k->n; i++)
                k->i[i] = x->k->i[(int64_t)y[i]];
        } else {
            float *y = permute(I, x->k->f, cnt, x->k->dims, p, od);
            memcpy(k->f, y, (size_t)k->n * sizeof(float));
        }
        Val *o = fold_out(I, n, k);
        if (o)
            o->origin = x->origin ? x->origin : x->onnx;
        return o != NULL;
    }
    /* physical axes of the result relative to x's physical layout */
    int q[MAXR];
    for (int i = 0; i < cnt; i++)
        q[i] = x->nhwc ? to_nchw[perm[i]] : (int)perm[i];
    Val *o = out_val(I, n);
    if (!o)
        return false;
    set_shape(o, cnt, d);
    bool ident = true, ident_nhwc = cnt == 4;
    for (int i = 0; i < cnt; i++) {
        ident &= q[i] == i;
        if (cnt == 4)
            ident_nhwc &= q[to_nhwc[i]] == i;
    }
    if (ident || ident_nhwc) { /* the same data: x read in its own or the other layout */
        o->id = x->id;
        o->nhwc = !ident;
        return true;
    }
    o->id = fresh(I);
    emit(I, "%s = transpose(%s, [", o->id, x->id);
    for (int i = 0; i < cnt; i++)
        emit(I, "%s%d", i ? ", " : "", q[i]);
    emit(I, "])\n");
    return true;
}

/* x[...] with one subscript per physical axis: sub[i] for logical axis i */
static bool emit_subscript(Imp *I, Val *x, Val *o, char (*sub)[64])
{
    const char *xi = operand(I, x, x->nhwc);
    if (!xi)
        return false;
    o->id = fresh(I);
    o->nhwc = x->nhwc && o->rank == 4;
    emit(I, "%s = %s[", o->id, xi);
    for (int j = 0; j < x->rank; j++)
        emit(I, "%s%s", j ? ", " : "", sub[x->nhwc ? to_nhwc[j] : j]);
    emit(I, "]\n");
    return true;
}

/* gather(src, idx, axis=a) with the indices a frozen parameter: Pad's
 * edge and reflect modes and Slice with negative steps pick positions
 * along an axis. Returns the result's identifier. */
static const char *gather_positions(Imp *I, const char *src, int a, const int64_t *idx, int64_t k)
{
    float *f = arena_alloc(I->a, (size_t)k * sizeof *f);
    for (int64_t i = 0; i < k; i++)
        f[i] = (float)idx[i];
    char *p = fresh(I), *t = fresh(I);
    emit(I, "param %s: f32[%lld] frozen\n", p, (long long)k);
    put_tensor(I, p, 1, &k, f);
    emit(I, "%s = gather(%s, %s, axis=%d)\n", t, src, p, a);
    return t;
}

/* Pad in edge or reflect mode: along each padded axis, the positions
 * [0, ..., 0, 0, 1, ..., L-1, L-1, ...] (edge) or [b, ..., 1, 0, 1, ...,
 * L-1, L-2, ...] (reflect) gathered. */
static bool pad_gather(Imp *I, const Onnx__NodeProto *n, Val *x, const int64_t *pads, bool reflect)
{
    int r = x->rank;
    int64_t d[MAXR];
    const char *cur = operand(I, x, false);
    if (!cur)
        return false;
    for (int a = 0; a < r; a++) {
        int64_t b = pads[a], e = pads[a + r], L = x->dims[a];
        d[a] = L;
        if (!b && !e)
            continue;
        if (L == BATCH)
            return fail(I, "padding along the batch axis is not supported");
        if (L < 1)
            return fail(I, "the size of axis %d of '%s' is unknown", a, x->onnx);
        if (b < 0 || e < 0 || b > 1 << 16 || e > 1 << 16 || (reflect && (b >= L || e >= L)))
            return fail(I, "pads must be from 0 to %s in %s mode", reflect ? "the axis size - 1" : "65536",
                        reflect ? "reflect" : "edge");
        d[a] = L + b + e;
        int64_t *idx = arena_alloc(I->a, (size_t)d[a] * sizeof *idx);
        for (int64_t i = 0; i < d[a]; i++) {
            int64_t j = i - b;
            if (reflect)
                j = j < 0 ? -j : j >= L ? 2 * (L - 1) - j : j;
            else
                j = j < 0 ? 0 : j >= L ? L - 1 : j;
            idx[i] = j;
        }
        cur = gather_positions(I, cur, a, idx, d[a]);
    }
    Val *o = out_val(I, n);
    if (!o)
        return false;
    set_shape(o, r, d);
    o->id = (char *)cur;
    return true;
}

/* Slice of a constant, with ONNX's clamping and negative steps. */
static bool slice_const(Imp *I, const Onnx__NodeProto *n, Val *x, const int64_t *st, const int64_t *en,
                        const int64_t *ax, const int64_t *sp, int ns)
{
    const Const *c = x->k;
    int64_t b[MAXR], step[MAXR], d[MAXR];
    for (int i = 0; i < c->rank; i++) {
        b[i] = 0;
        step[i] = 1;
        d[i] = c->dims[i];
    }
    for (int i = 0; i < ns; i++) {
        int a = norm_axis(ax ? ax[i] : i, c->rank);
        int64_t k = sp ? sp[i] : 1;
        if (a < 0 || a >= c->rank || k == 0 || k == INT64_MIN)
            return fail(I, "axis or step out of range");
        int64_t dim = c->dims[a];
        int64_t lo = st[i] < 0 ? (st[i] < -dim ? 0 : st[i] + dim) : st[i];
        int64_t hi = en[i] < 0 ? (en[i] < -dim ? -1 : en[i] + dim) : en[i];
        if (k > 0) {
            lo = lo > dim ? dim : lo;
            hi = hi < 0 ? 0 : hi > dim ? dim : hi;
            d[a] = hi > lo ? (hi - lo - 1) / k + 1 : 0;
        } else {
            lo = lo > dim - 1 ? dim - 1 : lo;
            hi = hi > dim - 1 ? dim - 1 : hi;
            d[a] = lo > hi ? (lo - hi - 1) / -k + 1 : 0;
        }
        b[a] = lo;
        step[a] = k;
    }
    Const *k = const_new(I, c->is_int, c->rank, d);
    for (int64_t o = 0; o < k->n; o++) {
        int64_t src = 0, r = o, stride = 1;
        for (int j = c->rank - 1; j >= 0; j--) {
            int64_t q = r % d[j];
            r /= d[j];
            src += (b[j] + q * step[j]) * stride;
            stride *= c->dims[j];
        }
        if (k->is_int)
            k->i[o] = c->i[src];
        else
            k->f[o] = c->f[src];
    }
    return fold_out(I, n, k) != NULL;
}

static bool op_slice(Imp *I, int idx, const Onnx__NodeProto *n)
{
    (void)idx;
    if (!need_inputs(I, n, 1, 5) || !only_attrs(I, n, (const char *[]){"starts", "ends", "axes", NULL}))
        return false;
    Val *x = in_val(I, n, 0);
    if (!x)
        return false;
    int64_t st[MAXR], en[MAXR], ax[MAXR], sp[MAXR];
    int ns, ne, na = -1, np = -1;
    if (I->opset < 10) {
        if (!attr_ints(I, n, "starts", st, MAXR, &ns) || !attr_ints(I, n, "ends", en, MAXR, &ne) ||
            !attr_ints(I, n, "axes", ax, MAXR, &na))
            return false;
    } else {
        if (n->n_input < 3 || !ints_of(I, in_val(I, n, 1), st, MAXR, &ns, "starts") ||
            !ints_of(I, in_val(I, n, 2), en, MAXR, &ne, "ends") ||
            (n->n_input > 3 && n->input[3][0] && !ints_of(I, in_val(I, n, 3), ax, MAXR, &na, "axes")) ||
            (n->n_input > 4 && n->input[4][0] && !ints_of(I, in_val(I, n, 4), sp, MAXR, &np, "steps")))
            return false;
    }
    if (ns != ne || ns < 0 || (na >= 0 && na != ns) || (np >= 0 && np != ns))
        return fail(I, "starts, ends, axes and steps differ in length");
    if (x->k && !x->id)
        return slice_const(I, n, x, st, en, na >= 0 ? ax : NULL, np >= 0 ? sp : NULL, ns);
    int64_t d[MAXR], neg_lo[MAXR], neg_step[MAXR];
    bool neg_axis[MAXR] = {false}, any_neg = false;
    char sub[MAXR][64];
    memcpy(d, x->dims, sizeof d);
    for (int i = 0; i < x->rank; i++)
        snprintf(sub[i], sizeof sub[i], ":");
    for (int i = 0; i < ns; i++) {
        int a = norm_axis(na >= 0 ? ax[i] : i, x->rank);
        int64_t step = np >= 0 ? sp[i] : 1;
        if (a < 0 || a >= x->rank)
            return fail(I, "axis %lld is out of range", (long long)(na >= 0 ? ax[i] : i));
        if (step == 0 || step == INT64_MIN)
            return fail(I, "a step of 0 is not valid");
        int64_t dim = x->dims[a];
        if (dim == BATCH) {
            if (st[i] == 0 && en[i] >= INT32_MAX && step == 1)
                continue;
            return fail(I, "slicing the batch axis is not supported");
        }
        if (step < 0) { /* the positions from the start down, gathered */
            int64_t lo = st[i] < 0 ? (st[i] < -dim ? -1 : st[i] + dim) : st[i];
            int64_t hi = en[i] < 0 ? (en[i] < -dim ? -1 : en[i] + dim) : en[i];
            lo = lo > dim - 1 ? dim - 1 : lo;
            hi = hi > dim - 1 ? dim - 1 : hi;
            if (lo <= hi) { /* nothing taken */
                d[a] = 0;
                snprintf(sub[a], sizeof sub[a], "0:0");
                continue;
            }
            neg_axis[a] = true;
            neg_lo[a] = lo;
            neg_step[a] = step;
            d[a] = (lo - hi - 1) / -step + 1;
            continue;
        }
        int64_t b = st[i] < 0 ? st[i] + dim : st[i], e = en[i] < 0 ? en[i] + dim : en[i];
        b = b < 0 ? 0 : b > dim ? dim : b;
        e = e < 0 ? 0 : e > dim ? dim : e;
        if (e < b)
            e = b; /* nothing taken */
        if (step > e - b && e > b)
            step = e - b; /* one element either way */
        d[a] = (e - b + step - 1) / step;
        if (step == 1)
            snprintf(sub[a], sizeof sub[a], "%lld:%lld", (long long)b, (long long)e);
        else
            snprintf(sub[a], sizeof sub[a], "%lld:%lld:%lld", (long long)b, (long long)e, (long long)step);
    }
    for (int a = 0; a < x->rank; a++)
        any_neg |= neg_axis[a];
    if (!any_neg) {
        Val *o = out_val(I, n);
        if (!o)
            return false;
        set_shape(o, x->rank, d);
        return emit_subscript(I, x, o, sub);
    }
    /* the positive steps as a subscript of the logical layout, then each
     * negative one as a gather */
    const char *cur = operand(I, x, false);
    if (!cur)
        return false;
    bool sliced = false;
    for (int a = 0; a < x->rank; a++)
        sliced |= strcmp(sub[a], ":") != 0;
    if (sliced) {
        char *t = fresh(I);
        emit(I, "%s = %s[", t, cur);
        for (int a = 0; a < x->rank; a++)
            emit(I, "%s%s", a ? ", " : "", sub[a]);
        emit(I, "]\n");
        cur = t;
    }
    for (int a = 0; a < x->rank; a++) {
        if (!neg_axis[a])
            continue;
        int64_t *pos = arena_alloc(I->a, (size_t)d[a] * sizeof *pos);
        for (int64_t i = 0; i < d[a]; i++)
            pos[i] = neg_lo[a] + i * neg_step[a];
        cur = gather_positions(I, cur, a, pos, d[a]);
    }
    Val *o = out_val(I, n);
    if (!o)
        return false;
    set_shape(o, x->rank, d);
    o->id = (char *)cur;
    return true;
}

/* Gather of one constant index along an axis of a value: x[:, i] */
static bool gather_value(Imp *I, const Onnx__NodeProto *n, Val *x, Val *ix, int64_t axis)
{
    int a = norm_axis(axis, x->rank);
    if (a < 0 || a >= x->rank || x->dims[a] == BATCH || !ix->k || ix->id || !ix->k->is_int ||
        ix->k->rank != 0)
        return fail(I, "Gather is supported on constants, or with one constant index on a "
                       "non-batch axis");
    int64_t i = ix->k->i[0] < 0 ? ix->k->i[0] + x->dims[a] : ix->k->i[0];
    if (i < 0 || i >= x->dims[a])
        return fail(I, "index %lld is out of range", (long long)ix->k->i[0]);
    char sub[MAXR][64];
    int64_t d[MAXR];
    int r = 0;
    for (int j = 0; j < x->rank; j++) {
        snprintf(sub[j], sizeof sub[j], j == a ? "%lld" : ":", (long long)i);
        if (j != a)
            d[r++] = x->dims[j];
    }
    Val *o = out_val(I, n);
    if (!o)
        return false;
    set_shape(o, r, d);
    Val lx = *x;
    if (x->nhwc) /* a dropped axis leaves no NHWC value */
        lx.id = (char *)operand(I, x, false), lx.nhwc = false;
    return lx.id && emit_subscript(I, &lx, o, sub);
}

/* Pad by nothing is the identity; zeros around the spatial axes of an
 * image read only by a Conv become the Conv's padding. */
static bool op_pad(Imp *I, int idx, const Onnx__NodeProto *n)
{
    if (!need_inputs(I, n, 1, 4) || !only_attrs(I, n, (const char *[]){"mode", "pads", "value", NULL}))
        return false;
    int64_t pads[2 * MAXR];
    int cnt;
    double value;
    char mode[32];
    Val *x = in_val(I, n, 0);
    if (!x || !attr_ints(I, n, "pads", pads, 2 * MAXR, &cnt) || !attr_float(I, n, "value", 0, &value))
        return false;
    if (cnt < 0 && n->n_input > 1 && !ints_of(I, in_val(I, n, 1), pads, 2 * MAXR, &cnt, "pads"))
        return false;
    Val *cv = in_val(I, n, 2);
    if (!cv && n->n_input > 2 && n->input[2][0])
        return false;
    if (cv && cv->k && !cv->id && cv->k->n == 1)
        value = kget(cv->k, 0);
    else if (cv)
        return fail(I, "the padding value must be a constant");
    const char *m = attr_str(n, "mode", mode, sizeof mode);
    bool any = false;
    for (int i = 0; i < cnt; i++)
        any |= pads[i] != 0;
    if (!any)
        return op_identity(I, idx, n);
    if (m && (strcmp(m, "edge") == 0 || strcmp(m, "reflect") == 0)) {
        if (cnt != 2 * x->rank)
            return fail(I, "pads must have %d values", 2 * x->rank);
        return pad_gather(I, n, x, pads, m[0] == 'r');
    }
    int next = sole_consumer(I, n->output[0], idx);
    bool spatial = x->rank == 4 && cnt == 8 && !pads[0] && !pads[1] && !pads[4] && !pads[5];
    for (int i = 0; i < cnt; i++)
        spatial &= pads[i] >= 0 && pads[i] <= 1 << 20;
    if (!spatial || (m && strcmp(m, "constant") != 0) || value != 0 || next < 0 ||
        strcmp(op_of(I, next), "Conv") != 0 || strcmp(I->g->node[next]->input[0], n->output[0]) != 0) {
        /* otherwise pad() of the value in its ONNX layout */
        if ((m && strcmp(m, "constant") != 0) || cnt != 2 * x->rank)
            return fail(I, "only constant padding of every axis is supported (mode %s)", m ? m : "constant");
        int64_t d[MAXR];
        for (int i = 0; i < x->rank; i++) {
            if (pads[i] < 0 || pads[i + x->rank] < 0 || pads[i] > 1 << 20 || pads[i + x->rank] > 1 << 20 ||
                ((pads[i] || pads[i + x->rank]) && x->dims[i] == BATCH))
                return fail(I, "pads must be from 0 to %d, and none along the batch axis", 1 << 20);
            d[i] = x->dims[i] == BATCH ? BATCH : x->dims[i] + pads[i] + pads[i + x->rank];
        }
        char num[48];
        const char *xi = number(I, value, num, sizeof num) ? operand(I, x, false) : NULL;
        Val *o = xi ? out_val(I, n) : NULL;
        if (!o)
            return false;
        set_shape(o, x->rank, d);
        o->id = fresh(I);
        emit(I, "%s = pad(%s, [", o->id, xi);
        for (int i = 0; i < x->rank; i++)
            emit(I, "%s[%lld, %lld]", i ? ", " : "", (long long)pads[i], (long long)pads[i + x->rank]);
        emit(I, "]%s%s)\n", value != 0 ? ", constant_values=" : "", value != 0 ? num : "");
        return true;
    }
    Val *o = out_val(I, n);
    if (!o)
        return false;
    const char *onnx = o->onnx;
    *o = *x;
    o->onnx = onnx;
    o->other_id = NULL;
    o->prepad[0] += pads[2];
    o->prepad[1] += pads[3];
    o->prepad[2] += pads[6];
    o->prepad[3] += pads[7];
    return true;
}

/* HardSigmoid, HardSwish, PRelu: their formulas. */
static bool op_hard(Imp *I, int idx, const Onnx__NodeProto *n)
{
    (void)idx;
    bool prelu = strcmp(n->op_type, "PRelu") == 0, swish = strcmp(n->op_type, "HardSwish") == 0;
    if (!need_inputs(I, n, prelu ? 2 : 1, prelu ? 2 : 1) ||
        !only_attrs(I, n, (const char *[]){"alpha", "beta", NULL}))
        return false;
    Val *x = in_val(I, n, 0);
    if (!x)
        return false;
    if (x->k && !x->id)
        return fail(I, "%s of a constant is not supported", n->op_type);
    if (prelu) {
        Val *slope = in_val(I, n, 1), shape = {0};
        char buf[64];
        if (!slope || !broadcast(I, x, slope, &shape))
            return false;
        if (shape.rank != x->rank)
            return fail(I, "the slope must broadcast to the input's shape");
        const char *sl = elem_operand(I, slope, x->nhwc, x->rank, buf, sizeof buf);
        Val *o = sl ? out_val(I, n) : NULL;
        if (!o)
            return false;
        set_shape(o, x->rank, x->dims);
        o->nhwc = x->nhwc;
        o->id = fresh(I);
        emit(I, "%s = where(%s > 0, %s, %s * %s)\n", o->id, x->id, x->id, x->id, sl);
        return true;
    }
    if (swish)
        return unary_emit(I, n, "hard_silu", NULL);
    double alpha, beta;
    char a[48], b[48], extra[120];
    if (!attr_float(I, n, "alpha", 0.2, &alpha) || !attr_float(I, n, "beta", 0.5, &beta) ||
        !number(I, alpha, a, sizeof a) || !number(I, beta, b, sizeof b))
        return false;
    if (fabs(alpha - 1.0 / 6) < 1e-7 && beta == 0.5)
        return unary_emit(I, n, "hard_sigmoid", NULL);
    Val *o = out_val(I, n);
    if (!o)
        return false;
    set_shape(o, x->rank, x->dims);
    o->nhwc = x->nhwc;
    o->id = fresh(I);
    snprintf(extra, sizeof extra, "%s * %s + %s", x->id, a, b);
    emit(I, "%s = clip(%s, 0, 1)\n", o->id, extra);
    return true;
}

/* Sum of any number of values: one chain of additions. */
static bool op_sum(Imp *I, int idx, const Onnx__NodeProto *n)
{
    if (!only_attrs(I, n, NULL) || !need_inputs(I, n, 1, 64))
        return false;
    if (n->n_input == 1)
        return op_identity(I, idx, n);
    if (n->n_input == 2)
        return op_binary(I, idx, n);
    Val shape = {0}, *v;
    StrBuf b;
    sb_init(&b);
    bool ok = true;
    for (size_t i = 0; i < n->n_input && ok; i++) {
        char num[64];
        const char *id = NULL;
        ok = (v = in_val(I, n, i)) != NULL && (i == 0 ? (shape = *v, true) : broadcast(I, &shape, v, &shape)) &&
             (id = elem_operand(I, v, false, 0, num, sizeof num)) != NULL;
        if (ok)
            sb_printf(&b, "%s%s", i ? " + " : "", id);
    }
    Val *o = ok ? out_val(I, n) : NULL;
    if (o) {
        set_shape(o, shape.rank, shape.dims);
        o->id = fresh(I);
        emit(I, "%s = %s\n", o->id, b.s);
    }
    sb_free(&b);
    return o != NULL;
}

/* ConstantOfShape of a constant shape, computed now. */
static bool op_constant_of_shape(Imp *I, int idx, const Onnx__NodeProto *n)
{
    (void)idx;
    if (!need_inputs(I, n, 1, 1) || !only_attrs(I, n, (const char *[]){"value", NULL}))
        return false;
    int64_t d[MAXR], total;
    int cnt;
    if (!ints_of(I, in_val(I, n, 0), d, MAXR, &cnt, "the shape"))
        return false;
    for (int i = 0; i < cnt; i++)
        if (d[i] == BATCH)
            return fail(I, "a constant with the batch size in its shape is not supported");
    if (!dims_ok(I, "the result", cnt, d, &total))
        return false;
    if (total > (1 << 16))
        return fail(I, "a constant of %lld values is not supported", (long long)total);
    const Onnx__AttributeProto *a = attr(n, "value");
    if (a && !a->t)
        return fail(I, "attribute 'value' must be a tensor");
    Const *v = a ? tensor_const(I, a->t, "its value") : NULL;
    if (a && (!v || v->n != 1))
        return v ? fail(I, "the value must hold one element") : false;
    Const *k = const_new(I, v && v->is_int, cnt, d);
    for (int64_t i = 0; i < k->n; i++)
        if (k->is_int)
            k->i[i] = v->i[0];
        else
            k->f[i] = v ? v->f[0] : 0;
    return fold_out(I, n, k) != NULL;
}

static bool op_reduce(Imp *I, int idx, const Onnx__NodeProto *n)
{
    (void)idx;
    if (!need_inputs(I, n, 1, 2) ||
        !only_attrs(I, n, (const char *[]){"axes", "keepdims", "noop_with_empty_axes", NULL}))
        return false;
    Val *x = in_val(I, n, 0);
    int64_t ax[MAXR], keep, noop;
    int cnt;
    if (!x || !axes_arg(I, n, ax, &cnt) || !attr_int(I, n, "keepdims", 1, &keep) ||
        !attr_int(I, n, "noop_with_empty_axes", 0, &noop))
        return false;
    if (cnt <= 0 && noop)
        return unary_emit(I, n, "", NULL);
    bool sel[MAXR] = {false};
    if (cnt <= 0)
        for (int i = 0; i < x->rank; i++)
            sel[i] = true;
    for (int i = 0; i < cnt; i++) {
        int a = norm_axis(ax[i], x->rank);
        if (a < 0 || a >= x->rank)
            return fail(I, "axis %lld is out of range", (long long)ax[i]);
        sel[a] = true;
    }
    const char *fn = strcmp(n->op_type, "ReduceSum") == 0    ? "sum"
                     : strcmp(n->op_type, "ReduceMean") == 0 ? "mean"
                     : strcmp(n->op_type, "ReduceMax") == 0  ? "max"
                                                             : "min";
    int64_t d[MAXR];
    int r = 0;
    for (int i = 0; i < x->rank; i++)
        if (!sel[i])
            d[r++] = x->dims[i];
        else if (keep)
            d[r++] = 1;
    bool nhwc = x->nhwc && keep;
    const char *xi = operand(I, x, nhwc);
    Val *o = xi ? out_val(I, n) : NULL;
    if (!o)
        return false;
    set_shape(o, r, d);
    o->nhwc = nhwc;
    o->id = fresh(I);
    emit(I, "%s = %s(%s, axis=[", o->id, fn, xi);
    for (int i = 0, k = 0; i < x->rank; i++) {
        int logical = nhwc ? to_nhwc[i] : i;
        if (sel[logical])
            emit(I, "%s%d", k++ ? ", " : "", i);
    }
    emit(I, "]%s)\n", keep ? ", keepdims=true" : "");
    return true;
}


/* The geometry of a transposed convolution along its ns spatial axes
 * (kernel sizes k): strides st, dilations dil, output_padding opad and
 * pads (ns begins, then ns ends; from output_shape or auto_pad SAME when
 * given, an end negative for zeros added), the dilated kernel K, the
 * full ("valid") output and the output after the pads. */
static bool convt_geometry(Imp *I, const Onnx__NodeProto *n, const Val *x, const int64_t *k, int ns, int64_t *st,
                           int64_t *dil, int64_t *opad, int64_t *pads, int64_t *K, int64_t *full, int64_t *out)
{
    int64_t v[2 * MAXR], oshape[MAXR];
    int cnt, ocnt;
    for (int a = 0; a < ns; a++) {
        st[a] = dil[a] = 1;
        opad[a] = pads[a] = pads[a + ns] = 0;
    }
    if (!attr_ints(I, n, "strides", v, ns, &cnt))
        return false;
    for (int i = 0; i < cnt; i++)
        st[i] = v[i];
    if (!attr_ints(I, n, "dilations", v, ns, &cnt))
        return false;
    for (int i = 0; i < cnt; i++)
        dil[i] = v[i];
    if (!attr_ints(I, n, "output_padding", v, ns, &cnt))
        return false;
    for (int i = 0; i < cnt; i++)
        opad[i] = v[i];
    if (!attr_ints(I, n, "pads", v, 2 * ns, &cnt))
        return false;
    if (cnt >= 0 && cnt != 2 * ns)
        return fail(I, "pads must have %d values", 2 * ns);
    for (int i = 0; i < cnt; i++)
        pads[i] = v[i];
    if (!attr_ints(I, n, "output_shape", oshape, ns, &ocnt))
        return false;
    for (int a = 0; a < ns; a++)
        if (st[a] < 1 || st[a] > 1 << 10 || dil[a] < 1 || dil[a] > 1 << 10 || opad[a] < 0 || opad[a] >= st[a] ||
            pads[a] < 0 || pads[a + ns] < 0 || pads[a] > 1 << 20 || pads[a + ns] > 1 << 20)
            return fail(I, "strides, dilations, pads or output_padding out of range");
    char ap[32];
    const char *auto_pad = attr_str(n, "auto_pad", ap, sizeof ap);
    bool same = auto_pad && strncmp(auto_pad, "SAME_", 5) == 0;
    if (auto_pad && !same && strcmp(auto_pad, "NOTSET") != 0 && strcmp(auto_pad, "VALID") != 0)
        return fail(I, "auto_pad %s is not supported", auto_pad);
    for (int a = 0; a < ns; a++) {
        K[a] = (k[a] - 1) * dil[a] + 1;
        full[a] = (x->dims[2 + a] - 1) * st[a] + K[a];
        if (ocnt == ns || same) { /* pads from the output size asked for */
            int64_t want = ocnt == ns ? oshape[a] : x->dims[2 + a] * st[a];
            int64_t total = full[a] + opad[a] - want;
            if (want < 1 || want > full[a] + (1 << 20))
                return fail(I, "output_shape %lld cannot be reached", (long long)want);
            bool lower = same && strcmp(auto_pad, "SAME_LOWER") == 0;
            pads[a] = total < 0 ? 0 : lower ? total - total / 2 : total / 2;
            pads[a + ns] = total - pads[a]; /* negative: zeros added at the end */
        }
        out[a] = full[a] - pads[a] - pads[a + ns] + opad[a];
        if (out[a] < 1)
            return fail(I, "the output would be empty");
    }
    return true;
}

/* The [C, O/group, k...] weights of a transposed convolution as the
 * kernel [K0, K1, R * O, C] of conv2d_transpose (groups on the block
 * diagonal, dilations as zeros between the taps). A 3-D kernel's depth
 * taps r go to R = k_depth blocks of O output channels (lead = 1 axis
 * before the two of the 2-D kernel); a 2-D one has R = 1. */
static float *convt_kernel(Imp *I, const Val *w, int64_t group, int lead, const int64_t *K, const int64_t *dil)
{
    int64_t C = w->dims[0], Og = w->dims[1], O = Og * group, Cg = C / group, R = lead ? w->dims[2] : 1;
    int64_t kh = w->dims[2 + lead], kw = w->dims[3 + lead];
    size_t kn = (size_t)(K[0] * K[1] * R * O * C);
    float *kern = arena_alloc(I->a, kn * sizeof(float));
    memset(kern, 0, kn * sizeof(float));
    for (int64_t c = 0; c < C; c++)
        for (int64_t o = 0; o < Og; o++)
            for (int64_t r = 0; r < R; r++)
                for (int64_t i = 0; i < kh; i++)
                    for (int64_t j = 0; j < kw; j++) {
                        int64_t oo = r * O + (c / Cg) * Og + o;
                        kern[((i * dil[0] * K[1] + j * dil[1]) * R * O + oo) * C + c] =
                            w->k->f[(((c * Og + o) * R + r) * kh + i) * kw + j];
                    }
    return kern;
}

/* Checks shared by the 2-D and 3-D transposed convolutions: constant
 * weights of rank r with x's channels and a constant bias of O values. */
static bool convt_weights(Imp *I, const Val *x, const Val *w, const Val *b, int64_t group, int rank,
                          const char *layout)
{
    if (!w->k || w->id || w->k->is_int || w->rank != rank)
        return fail(I, "the weights must be a constant %s tensor", layout);
    int64_t C = x->dims[1], O = w->dims[1] * group;
    if (group < 1 || w->dims[0] != C || C % group)
        return fail(I, "'%s' has %lld channels, the weights expect %lld in %lld group%s", x->onnx, (long long)C,
                    (long long)w->dims[0], (long long)group, group == 1 ? "" : "s");
    if (b && (!b->k || b->id || b->k->is_int || b->k->n != O))
        return fail(I, "the bias must be a constant of %lld values", (long long)O);
    return true;
}

/* The conv2d_transpose kernel of kvals values: at most 2^24. */
static bool convt_kernel_fits(Imp *I, double kvals)
{
    if (kvals > (double)(1 << 24))
        return fail(I, "the kernel would hold %.0f values; at most %d are supported", kvals, 1 << 24);
    return true;
}

/* The full output src of a transposed convolution (channels last, rank - 2
 * spatial axes) cropped by the pads and extended at the end with zeros
 * by output_padding beyond them (or a negative end pad), the bias b
 * added. Returns its identifier, NULL on an error. */
static const char *convt_crop(Imp *I, const char *src, int rank, const int64_t *full, const int64_t *pads,
                              const int64_t *opad, Val *b)
{
    int ns = rank - 2;
    int64_t e[MAXR];
    bool grow = false, cut = false;
    for (int a = 0; a < ns; a++) {
        e[a] = full[a] - pads[a + ns] + opad[a];
        grow |= e[a] > full[a];
        cut |= pads[a] || e[a] < full[a];
    }
    const char *cur = src;
    if (cut) {
        char *t = fresh(I);
        emit(I, "%s = %s[:", t, src);
        for (int a = 0; a < ns; a++)
            emit(I, ", %lld:%lld", (long long)pads[a], (long long)(e[a] < full[a] ? e[a] : full[a]));
        emit(I, ", :]\n");
        cur = t;
    }
    if (grow) {
        char *p = fresh(I);
        emit(I, "%s = pad(%s, [[0, 0]", p, cur);
        for (int a = 0; a < ns; a++)
            emit(I, ", [0, %lld]", (long long)(e[a] > full[a] ? e[a] - full[a] : 0));
        emit(I, ", [0, 0]])\n");
        cur = p;
    }
    if (b) {
        const char *bi = operand(I, b, false);
        if (!bi)
            return NULL;
        char *t = fresh(I);
        emit(I, "%s = %s + %s\n", t, cur, bi);
        cur = t;
    }
    return cur;
}

static bool convt_3d(Imp *I, const Onnx__NodeProto *n, Val *x, Val *w, Val *b, int64_t group);

/* ConvTranspose onto conv2d_transpose ("valid": the full output), the
 * kernel [C, O/group, kh, kw] in Keras's [kh, kw, O, C] (convt_kernel);
 * ONNX's pads crop the full output, output_padding extends its end, the
 * bias added last. 1-D ones are lifted to 2-D, 3-D ones go through
 * convt_3d. */
static bool op_conv_transpose(Imp *I, int idx, const Onnx__NodeProto *n)
{
    if (!need_inputs(I, n, 2, 3) ||
        !only_attrs(I, n, (const char *[]){"kernel_shape", "strides", "pads", "dilations", "group", "auto_pad",
                                           "output_padding", "output_shape", NULL}))
        return false;
    Val *x = in_val(I, n, 0), *w = in_val(I, n, 1), *b = in_val(I, n, 2);
    int64_t group, st[2], dil[2], pads[4], opad[2], K[2], full[2], out[2];
    if (!x || !w || (n->n_input > 2 && n->input[2][0] && !b) || !attr_int(I, n, "group", 1, &group))
        return false;
    if (x->rank == 3 && examples_first(I, x) && x->dims[2] > 0)
        return lift_1d(I, idx, n, op_conv_transpose);
    if (x->rank == 5 && examples_first(I, x) && x->dims[2] > 0 && x->dims[3] > 0 && x->dims[4] > 0)
        return convt_3d(I, n, x, w, b, group);
    if (x->rank != 4 || !examples_first(I, x) || x->dims[2] < 0 || x->dims[3] < 0)
        return fail(I, "only 1-D, 2-D and 3-D transposed convolutions of [N, C, L], [N, C, H, W] and "
                       "[N, C, D, H, W] values are supported");
    if (!convt_weights(I, x, w, b, group, 4, "[C, O, kh, kw]") ||
        !convt_geometry(I, n, x, w->dims + 2, 2, st, dil, opad, pads, K, full, out) ||
        !convt_kernel_fits(I, (double)x->dims[1] * (double)(w->dims[1] * group) * (double)K[0] * (double)K[1]))
        return false;
    int64_t C = x->dims[1], O = w->dims[1] * group;
    int64_t kd[4] = {K[0], K[1], O, C};
    float *kern = convt_kernel(I, w, group, 0, K, dil);
    const char *xi = operand(I, x, true);
    if (!xi)
        return false;
    const char *name = layer_name(I, w->origin ? w->origin : w->onnx, "conv_transpose");
    bool crop = pads[0] || pads[1] || pads[2] || pads[3] || opad[0] || opad[1];
    char ks[64], ss[64], pn[200];
    snprintf(ks, sizeof ks, K[0] == K[1] ? "%lld" : "[%lld, %lld]", (long long)K[0], (long long)K[1]);
    if (st[0] == 1 && st[1] == 1)
        ss[0] = 0;
    else
        snprintf(ss, sizeof ss, st[0] == st[1] ? ", stride=%lld" : ", stride=[%lld, %lld]", (long long)st[0],
                 (long long)st[1]);
    Val *o = out_val(I, n);
    if (!o)
        return false;
    int64_t d[4] = {x->dims[0], O, out[0], out[1]};
    set_shape(o, 4, d);
    o->nhwc = true;
    char *full_id = crop ? fresh(I) : layer_value(I, name);
    emit(I, "%s = conv2d_transpose(%s, %lld, %s%s%s, name=\"%s\")\n", full_id, xi, (long long)O, ks, ss,
         b && !crop ? "" : ", use_bias=false", name);
    snprintf(pn, sizeof pn, "%s.kernel", name);
    put_tensor(I, pn, 4, kd, kern);
    if (!crop) {
        o->id = full_id;
        if (b) {
            snprintf(pn, sizeof pn, "%s.bias", name);
            put_tensor(I, pn, 1, &O, b->k->f);
        }
        return true;
    }
    o->id = (char *)convt_crop(I, full_id, 4, full, pads, opad, b);
    return o->id != NULL;
}

/* A 3-D ConvTranspose ([N, C, D, H, W] values, [C, O/group, kd, kh, kw]
 * weights) as one conv2d_transpose. The input's depth slices, in NDHWC,
 * are stacked along the height with g rows of zeros after each, enough
 * that the slices' 2-D outputs stay apart ((H + g) * sh rows each, at
 * least the 2-D output's height); the kernel's depth taps r are blocks
 * of O output channels (convt_kernel). The output, cut back into depth
 * slices, gets each tap's block to depth d * sd + r * dd: the slices
 * spread by the depth stride with zeros between them, each block padded
 * by its tap's offset, and the blocks added. Then the pads crop, the
 * bias is added, and the result goes back to NCDHW. */
static bool convt_3d(Imp *I, const Onnx__NodeProto *n, Val *x, Val *w, Val *b, int64_t group)
{
    int64_t st[3], dil[3], pads[6], opad[3], K[3], full[3], out[3];
    if (!convt_weights(I, x, w, b, group, 5, "[C, O, kd, kh, kw]") ||
        !convt_geometry(I, n, x, w->dims + 2, 3, st, dil, opad, pads, K, full, out))
        return false;
    int64_t N = x->dims[0], C = x->dims[1], O = w->dims[1] * group, R = w->dims[2];
    int64_t D = x->dims[2], H = x->dims[3], W = x->dims[4], sd = st[0], sh = st[1], sw = st[2];
    if (!convt_kernel_fits(I, (double)C * (double)(R * O) * (double)K[1] * (double)K[2]))
        return false;
    int64_t g = K[1] > sh ? (K[1] - 1) / sh : 0, slot = (H + g) * sh, Ht = (D * (H + g) - 1) * sh + K[1];
    if ((double)D * (double)slot * (double)full[2] * (double)(R * O) > (double)MAX_ELEMS)
        return fail(I, "the stacked depth slices would be too large");
    const char *xi = operand(I, x, false);
    if (!xi)
        return false;
    char *t = fresh(I);
    emit(I, "%s = transpose(%s, [0, 2, 3, 4, 1])\n", t, xi);
    const char *cur = t;
    if (g) {
        t = fresh(I);
        emit(I, "%s = pad(%s, [[0, 0], [0, 0], [0, %lld], [0, 0], [0, 0]])\n", t, cur, (long long)g);
        cur = t;
    }
    cur = reshape_id(I, cur, 4, (int64_t[]){N, D * (H + g), W, C});
    float *kern = convt_kernel(I, w, group, 1, K + 1, dil + 1);
    const char *name = layer_name(I, w->origin ? w->origin : w->onnx, "conv_transpose");
    char *up = layer_value(I, name), pn[200];
    emit(I, "%s = conv2d_transpose(%s, %lld, [%lld, %lld], stride=[%lld, %lld], use_bias=false, name=\"%s\")\n", up,
         cur, (long long)(R * O), (long long)K[1], (long long)K[2], (long long)sh, (long long)sw, name);
    snprintf(pn, sizeof pn, "%s.kernel", name);
    put_tensor(I, pn, 4, (int64_t[]){K[1], K[2], R * O, C}, kern);
    cur = up;
    if (Ht != D * slot) { /* the last slice's slot, whole */
        t = fresh(I);
        if (Ht > D * slot)
            emit(I, "%s = %s[:, 0:%lld, :, :]\n", t, cur, (long long)(D * slot));
        else
            emit(I, "%s = pad(%s, [[0, 0], [0, %lld], [0, 0], [0, 0]])\n", t, cur, (long long)(D * slot - Ht));
        cur = t;
    }
    cur = reshape_id(I, cur, 5, (int64_t[]){N, D, slot, full[2], R * O});
    if (slot != full[1]) { /* each slice's rows */
        t = fresh(I);
        emit(I, "%s = %s[:, :, 0:%lld, :, :]\n", t, cur, (long long)full[1]);
        cur = t;
    }
    int64_t Ds = (D - 1) * sd + 1;
    if (sd > 1) { /* the depth slices sd apart */
        cur = reshape_id(I, cur, 4, (int64_t[]){N, D, 1, full[1] * full[2] * R * O});
        t = fresh(I);
        emit(I, "%s = pad(%s, [[0, 0], [0, 0], [0, %lld], [0, 0]])\n", t, cur, (long long)(sd - 1));
        cur = reshape_id(I, t, 5, (int64_t[]){N, D * sd, full[1], full[2], R * O});
        t = fresh(I);
        emit(I, "%s = %s[:, 0:%lld, :, :, :]\n", t, cur, (long long)Ds);
        cur = t;
    }
    const char *acc = NULL;
    for (int64_t r = 0; r < R; r++) {
        const char *tap = cur;
        if (R > 1) {
            t = fresh(I);
            emit(I, "%s = %s[:, :, :, :, %lld:%lld]\n", t, cur, (long long)(r * O), (long long)((r + 1) * O));
            tap = t;
        }
        int64_t lo = r * dil[0], hi = K[0] - 1 - lo;
        if (lo || hi) {
            t = fresh(I);
            emit(I, "%s = pad(%s, [[0, 0], [%lld, %lld], [0, 0], [0, 0], [0, 0]])\n", t, tap, (long long)lo,
                 (long long)hi);
            tap = t;
        }
        if (acc) {
            t = fresh(I);
            emit(I, "%s = %s + %s\n", t, acc, tap);
            tap = t;
        }
        acc = tap;
    }
    const char *y = convt_crop(I, acc, 5, full, pads, opad, b);
    if (!y)
        return false;
    Val *o = out_val(I, n);
    if (!o)
        return false;
    set_shape(o, 5, (int64_t[]){N, O, out[0], out[1], out[2]});
    o->id = fresh(I);
    emit(I, "%s = transpose(%s, [0, 4, 1, 2, 3])\n", o->id, y);
    return true;
}

/* Does a node after idx, or a graph output, read value name? */
static bool is_read(Imp *I, const char *name, int idx)
{
    for (size_t i = (size_t)idx + 1; i < I->g->n_node; i++)
        for (size_t j = 0; j < I->g->node[i]->n_input; j++)
            if (strcmp(I->g->node[i]->input[j], name) == 0)
                return true;
    for (size_t i = 0; i < I->g->n_output; i++)
        if (I->g->output[i]->name && strcmp(I->g->output[i]->name, name) == 0)
            return true;
    return false;
}

/* Expand: a constant broadcast now; a value plus zeros of the shape. */
static bool op_expand(Imp *I, int idx, const Onnx__NodeProto *n)
{
    (void)idx;
    if (!need_inputs(I, n, 2, 2) || !only_attrs(I, n, NULL))
        return false;
    Val *x = in_val(I, n, 0), *sv = in_val(I, n, 1);
    int64_t t[MAXR];
    int cnt;
    if (!x || !ints_of(I, sv, t, MAXR, &cnt, "the shape"))
        return false;
    Val target = {0}, shape = {0};
    target.onnx = sv->onnx;
    /* the batch size (an exporter's Shape of an input) only where x has
     * its batch axis: x gives it, the zeros have 1 there */
    bool batch = cnt >= 1 && t[0] == BATCH;
    if (batch) {
        if (x->rank != cnt || !is_batch_first(x))
            return fail(I, "expanding to the batch size needs a value with the batch axis first");
        t[0] = 1;
    }
    set_shape(&target, cnt, t);
    for (int i = 0; i < cnt; i++)
        if (t[i] == BATCH || t[i] < 1)
            return fail(I, "the shape must be positive sizes");
    if (!broadcast(I, x, &target, &shape))
        return false;
    int64_t total, zd[MAXR];
    memcpy(zd, shape.dims, sizeof zd);
    if (shape.rank >= 1 && shape.dims[0] == BATCH)
        zd[0] = 1; /* from x */
    if (!dims_ok(I, "the result", shape.rank, zd, &total))
        return false;
    if (total > (1 << 16))
        return fail(I, "expanding to %lld values is not supported", (long long)total);
    Const *z = const_new(I, x->k && !x->id && x->k->is_int, shape.rank, zd);
    for (int64_t i = 0; i < z->n; i++) {
        if (!x->k || x->id) {
            z->f[i] = 0;
            continue;
        }
        int64_t src = 0, r = i, stride = 1;
        for (int d = shape.rank - 1; d >= 0; d--) {
            int64_t c = r % shape.dims[d];
            r /= shape.dims[d];
            int dx = d - (shape.rank - x->rank);
            if (dx >= 0) {
                src += (x->dims[dx] == 1 ? 0 : c) * stride;
                stride *= x->dims[dx];
            }
        }
        if (z->is_int)
            z->i[i] = x->k->i[src];
        else
            z->f[i] = (float)kget(x->k, src);
    }
    if (x->k && !x->id)
        return fold_out(I, n, z) != NULL;
    Val zv = {0};
    zv.onnx = "zeros";
    val_from_const(&zv, z);
    const char *xi = operand(I, x, false), *zi = xi ? operand(I, &zv, false) : NULL;
    Val *o = zi ? out_val(I, n) : NULL;
    if (!o)
        return false;
    set_shape(o, shape.rank, shape.dims);
    o->id = fresh(I);
    emit(I, "%s = %s + %s\n", o->id, xi, zi);
    return true;
}

static bool recurrent_outputs(Imp *I, const Onnx__NodeProto *n, const char *const *seq, const char *const *cell,
                              int nd, int64_t B, int64_t T, int64_t H, int64_t layout, bool reverse);

/* A constant of the import declared as a parameter under name. */
static const char *declare(Imp *I, const char *name, int rank, const int64_t *dims, const float *data)
{
    Val v = {0};
    v.onnx = name;
    v.from_init = true;
    Const *k = const_new(I, false, rank, dims);
    memcpy(k->f, data, (size_t)k->n * sizeof(float));
    val_from_const(&v, k);
    return operand(I, &v, false);
}

/* The zero state [B, H] of a recurrent op written out step by step, a
 * frozen parameter <name>_zeros. */
static const char *zero_state(Imp *I, const char *name, int64_t B, int64_t H)
{
    char pn[160];
    int64_t zd[2] = {B, H};
    snprintf(pn, sizeof pn, "%s_zeros", name);
    Val v = {0};
    v.onnx = pn;
    Const *k = const_new(I, false, 2, zd);
    memset(k->f, 0, (size_t)k->n * sizeof(float));
    val_from_const(&v, k);
    return operand(I, &v, false);
}

/* LSTM with peepholes (which the layer does not compute) written out step
 * by step: kern, rec and bias in Keras's gate order i, f, c, o; peep [3, H]
 * in ONNX's i, o, f; the parameters <name>_kernel, <name>_recurrent_kernel,
 * <name>_bias and <name>_peephole. */
static const char *lstm_steps(Imp *I, const char *name, const char *xi, int64_t B, int64_t T, int64_t In,
                              int64_t H, const float *kern, const float *rec, const float *bias, const float *peep,
                              const char *h0, const char *c0, bool reverse)
{
    if (B == BATCH && (!h0 || !c0))
        return fail(I, "peepholes need a fixed batch size or an initial state"), NULL;
    char pn[160];
    int64_t kd[2] = {In, 4 * H}, rd[2] = {H, 4 * H}, bd = 4 * H, pd[2] = {3, H};
    snprintf(pn, sizeof pn, "%s_kernel", name);
    const char *K = declare(I, pn, 2, kd, kern);
    snprintf(pn, sizeof pn, "%s_recurrent_kernel", name);
    const char *R = K ? declare(I, pn, 2, rd, rec) : NULL;
    snprintf(pn, sizeof pn, "%s_bias", name);
    const char *bi = R ? declare(I, pn, 1, &bd, bias) : NULL;
    snprintf(pn, sizeof pn, "%s_peephole", name);
    const char *P = bi ? declare(I, pn, 2, pd, peep) : NULL;
    const char *h = P ? (h0 ? h0 : zero_state(I, name, B, H)) : NULL;
    const char *c = h ? (c0 ? c0 : h0 ? zero_state(I, name, B, H) : h) : NULL;
    if (!c)
        return NULL;
    long long h1 = (long long)H, h2 = 2 * h1, h3 = 3 * h1, h4 = 4 * h1;
    char **step = arena_alloc(I->a, (size_t)T * sizeof *step);
    for (int64_t s = 0; s < T; s++) {
        int64_t t = reverse ? T - 1 - s : s;
        char *g = fresh(I), *ig = fresh(I), *fg = fresh(I), *cn = fresh(I), *og = fresh(I), *hn = fresh(I);
        emit(I, "%s = %s[:, %lld, :] @ %s + %s @ %s + %s\n", g, xi, (long long)t, K, h, R, bi);
        emit(I, "%s = sigmoid(%s[:, 0:%lld] + %s[0] * %s)\n", ig, g, h1, P, c);
        emit(I, "%s = sigmoid(%s[:, %lld:%lld] + %s[2] * %s)\n", fg, g, h1, h2, P, c);
        emit(I, "%s = %s * %s + %s * tanh(%s[:, %lld:%lld])\n", cn, fg, c, ig, g, h2, h3);
        emit(I, "%s = sigmoid(%s[:, %lld:%lld] + %s[1] * %s)\n", og, g, h3, h4, P, cn);
        emit(I, "%s = %s * tanh(%s)\n", hn, og, cn);
        step[t] = hn;
        h = hn;
        c = cn;
    }
    char *seq = fresh(I);
    emit(I, "%s = stack([", seq);
    for (int64_t t = 0; t < T; t++)
        emit(I, "%s%s", t ? ", " : "", step[t]);
    emit(I, "], axis=1)\n");
    return seq;
}

/* GRU with linear_before_reset = 0 (the reset gate applied to the state
 * before its product), which the gru layer does not compute: its steps
 * written out, h' = (1 - z) * tanh(x W_h + (r * h) R_h + b_h) + z * h.
 * The sequence [B, T, H] in time order; NULL after an error. */
static const char *gru_steps(Imp *I, const char *name, const char *xi, int64_t B, int64_t T, int64_t In,
                             int64_t H, const float *kern, const float *rec, const float *bias, const char *h0,
                             bool reverse)
{
    if (B == BATCH && !h0)
        return fail(I, "linear_before_reset = 0 needs a fixed batch size or an initial state"), NULL;
    char pn[160];
    int64_t kd[2] = {In, 3 * H}, rd[2] = {H, 3 * H}, bd = 3 * H;
    snprintf(pn, sizeof pn, "%s_kernel", name);
    const char *K = declare(I, pn, 2, kd, kern);
    snprintf(pn, sizeof pn, "%s_recurrent_kernel", name);
    const char *R = K ? declare(I, pn, 2, rd, rec) : NULL;
    snprintf(pn, sizeof pn, "%s_input_bias", name);
    const char *bx = R ? declare(I, pn, 1, &bd, bias) : NULL;
    snprintf(pn, sizeof pn, "%s_recurrent_bias", name);
    const char *bh = bx ? declare(I, pn, 1, &bd, bias + 3 * H) : NULL;
    if (!bh)
        return NULL;
    const char *h = h0 ? h0 : zero_state(I, name, B, H);
    if (!h)
        return NULL;
    char *Rh = fresh(I), *bhh = fresh(I);
    emit(I, "%s = %s[:, %lld:%lld]\n", Rh, R, (long long)(2 * H), (long long)(3 * H));
    emit(I, "%s = %s[%lld:%lld]\n", bhh, bh, (long long)(2 * H), (long long)(3 * H));
    char **step = arena_alloc(I->a, (size_t)T * sizeof *step);
    for (int64_t s = 0; s < T; s++) {
        int64_t t = reverse ? T - 1 - s : s;
        char *g = fresh(I), *hr = fresh(I), *z = fresh(I), *r = fresh(I), *hh = fresh(I), *hn = fresh(I);
        emit(I, "%s = %s[:, %lld, :] @ %s + %s\n", g, xi, (long long)t, K, bx);
        emit(I, "%s = %s @ %s + %s\n", hr, h, R, bh);
        emit(I, "%s = sigmoid(%s[:, 0:%lld] + %s[:, 0:%lld])\n", z, g, (long long)H, hr, (long long)H);
        emit(I, "%s = sigmoid(%s[:, %lld:%lld] + %s[:, %lld:%lld])\n", r, g, (long long)H, (long long)(2 * H), hr,
             (long long)H, (long long)(2 * H));
        emit(I, "%s = tanh(%s[:, %lld:%lld] + (%s * %s) @ %s + %s)\n", hh, g, (long long)(2 * H),
             (long long)(3 * H), r, h, Rh, bhh);
        emit(I, "%s = (1 - %s) * %s + %s * %s\n", hn, z, hh, z, h);
        step[t] = hn;
        h = hn;
    }
    char *seq = fresh(I);
    emit(I, "%s = stack([", seq);
    for (int64_t t = 0; t < T; t++)
        emit(I, "%s%s", t ? ", " : "", step[t]);
    emit(I, "], axis=1)\n");
    return seq;
}

/* LSTM, GRU and RNN onto the lstm, gru and simple_rnn layers (one
 * direction, Keras's gate orders: LSTM i, f, c, o from ONNX's i, o, f, c;
 * GRU z, r, h as ONNX with linear_before_reset = 1). The layer returns the
 * sequence [B, T, H]; Y and Y_h are views of it. */
static bool op_recurrent(Imp *I, int idx, const Onnx__NodeProto *n)
{
    (void)idx;
    const char *op = n->op_type;
    bool lstm = strcmp(op, "LSTM") == 0, gru = strcmp(op, "GRU") == 0;
    int G = lstm ? 4 : gru ? 3 : 1;
    if (!need_inputs(I, n, 3, lstm ? 8 : 6) ||
        !only_attrs(I, n, (const char *[]){"activations", "activation_alpha", "activation_beta", "clip",
                                           "direction", "hidden_size", "input_forget", "layout",
                                           "linear_before_reset", NULL}))
        return false;
    Val *x = in_val(I, n, 0), *w = in_val(I, n, 1), *r = in_val(I, n, 2), *b = in_val(I, n, 3);
    Val *sl = in_val(I, n, 4), *h0 = in_val(I, n, 5), *c0 = lstm ? in_val(I, n, 6) : NULL;
    Val *peep = lstm ? in_val(I, n, 7) : NULL;
    int64_t hidden, layout, lbr, input_forget;
    char dir[32];
    const char *direction = attr_str(n, "direction", dir, sizeof dir);
    if (!x || !w || !r || !attr_int(I, n, "hidden_size", -1, &hidden) || !attr_int(I, n, "layout", 0, &layout) ||
        !attr_int(I, n, "linear_before_reset", 0, &lbr) || !attr_int(I, n, "input_forget", 0, &input_forget))
        return false;
    if (direction && strcmp(direction, "forward") != 0 && strcmp(direction, "reverse") != 0 &&
        strcmp(direction, "bidirectional") != 0)
        return fail(I, "direction %s is not supported (forward, reverse and bidirectional are)", direction);
    int nd = direction && strcmp(direction, "bidirectional") == 0 ? 2 : 1;
    bool reverse = direction && strcmp(direction, "reverse") == 0;
    if (attr(n, "clip") || input_forget)
        return fail(I, "clip and input_forget are not supported");
    const Onnx__AttributeProto *acts = attr(n, "activations");
    /* each direction's list in turn: the gates' Sigmoid, then the state's
     * activation (the LSTM's cell and output ones alike), the layer's
     * activation= */
    const char *act[2] = {"tanh", "tanh"};
    if (acts) {
        size_t per = lstm ? 3 : gru ? 2 : 1;
        if (acts->n_strings != per * (size_t)nd)
            return fail(I, "activations must list %zu functions", per * (size_t)nd);
        for (size_t i = 0; i < acts->n_strings; i++) {
            char a[32];
            size_t k = acts->strings[i].len < sizeof a - 1 ? acts->strings[i].len : sizeof a - 1;
            memcpy(a, acts->strings[i].data, k);
            a[k] = 0;
            size_t j = i % per, d = i / per;
            const char *m = !strcasecmp(a, "Tanh") ? "tanh" : !strcasecmp(a, "Relu") ? "relu"
                          : !strcasecmp(a, "Sigmoid") ? "sigmoid" : NULL;
            bool gate = per > 1 && j == 0;
            if (!m || (gate && strcmp(m, "sigmoid") != 0) || (j > 1 && strcmp(m, act[d]) != 0))
                return fail(I, "activations %s: the gates' must be Sigmoid, the state's Tanh, Relu or Sigmoid "
                               "(an LSTM's two alike)", a);
            if (!gate)
                act[d] = m;
        }
    }
    if (attr(n, "activation_alpha") || attr(n, "activation_beta"))
        return fail(I, "activation_alpha and activation_beta are not supported");
    if (layout != 0 && layout != 1)
        return fail(I, "layout %lld is not supported", (long long)layout);
    if (x->rank != 3 || x->dims[2] < 0 || (layout == 0 && (x->dims[0] == BATCH || x->dims[1] < 0)) ||
        (layout == 1 && x->dims[1] < 1))
        return fail(I, "X must be [T, B, I] (layout 0) with a fixed batch size, or [B, T, I] (layout 1)");
    int64_t B = layout ? x->dims[0] : x->dims[1], T = layout ? x->dims[1] : x->dims[0], In = x->dims[2];
    if (hidden > MAX_ELEMS)
        return fail(I, "hidden_size %lld is out of range", (long long)hidden);
    int64_t H = hidden > 0 ? hidden : w->rank == 3 ? w->dims[1] / G : -1;
    if (w->rank != 3 || w->dims[0] != nd || w->dims[1] != G * H || w->dims[2] != In || !w->k || w->id ||
        w->k->is_int || r->rank != 3 || r->dims[0] != nd || r->dims[1] != G * H || r->dims[2] != H || !r->k ||
        r->id || r->k->is_int ||
        (b && (b->rank != 2 || b->dims[0] != nd || b->dims[1] != 2 * G * H || !b->k || b->id || b->k->is_int)))
        return fail(I, "W, R and B must be constants of %d direction%s ([%d, %d*H, I], [%d, %d*H, H], [%d, %d*H])",
                    nd, nd > 1 ? "s" : "", nd, G, nd, G, nd, 2 * G);
    if (H < 1 || T < 1 || In < 1 || G * H * (In + H) > MAX_ELEMS / 4)
        return fail(I, "hidden_size %lld is out of range", (long long)H);
    bool peeps = false;
    if (peep) {
        if (!peep->k || peep->id || peep->k->is_int || peep->rank != 2 || peep->dims[0] != nd ||
            peep->dims[1] != 3 * H)
            return fail(I, "the peephole weights must be a constant [%d, %lld]", nd, (long long)(3 * H));
        for (int64_t i = 0; i < peep->k->n; i++)
            peeps |= peep->k->f[i] != 0;
        if (peeps && T > 256)
            return fail(I, "peepholes are written out step by step, for at most 256 steps");
    }
    if (sl) {
        bool full = sl->k && !sl->id;
        for (int64_t i = 0; full && i < sl->k->n; i++)
            full = kget(sl->k, i) == T;
        if (!full)
            return fail(I, "sequence_lens other than the full length %lld are not supported", (long long)T);
    }
    if (gru && !lbr && T > 256)
        return fail(I, "linear_before_reset = 0 is written out step by step, for at most 256 steps");
    const char *xi = operand(I, x, false);
    if (!xi)
        return false;
    if (layout == 0) {
        char *t = fresh(I);
        emit(I, "%s = transpose(%s, [1, 0, 2])\n", t, xi);
        xi = t;
    }
    /* initial states: direction d of [nd, B, H] (layout 1: [B, nd, H]) */
    Val *st[2] = {h0, c0};
    const char *sid[2][2] = {{NULL, NULL}, {NULL, NULL}};
    for (int k = 0; k < 2; k++) {
        Val *v = st[k];
        if (!v)
            continue;
        bool ok = v->rank == 3 && v->dims[2] == H &&
                  (layout ? v->dims[0] == B && v->dims[1] == nd : v->dims[0] == nd && v->dims[1] == B);
        if (!ok)
            return fail(I, "the initial state must be [%lld, %lld, %lld]", layout ? (long long)B : (long long)nd,
                        layout ? (long long)nd : (long long)B, (long long)H);
        for (int d = 0; d < nd; d++) {
            bool zeros = v->k && !v->id && !v->k->is_int;
            for (int64_t i = 0; zeros && i < v->k->n; i++)
                zeros = v->k->f[i] == 0;
            if (zeros) /* the layer's own start */
                continue;
            const char *vi = operand(I, v, false);
            if (!vi)
                return false;
            char *t = fresh(I);
            if (layout)
                emit(I, "%s = %s[:, %d, :]\n", t, vi, d);
            else
                emit(I, "%s = %s[%d]\n", t, vi, d);
            sid[d][k] = t;
        }
    }
    const char *kind = lstm ? "lstm" : gru ? "gru" : "rnn";
    const char *name0 = layer_name(I, w->origin ? w->origin : w->onnx, kind), *seqs[2], *cells[2] = {NULL, NULL};
    bool want_c = lstm && n->n_output > 2 && n->output[2][0] && is_read(I, n->output[2], idx);
    if (want_c && peeps)
        return fail(I, "the cell state output Y_c of an LSTM with peepholes is not supported");
    for (int d = 0; d < nd; d++) {
        bool back = nd == 2 ? d == 1 : reverse;
        const char *name = name0;
        if (d == 1) {
            char nm[160];
            snprintf(nm, sizeof nm, "%s_reverse", name0);
            name = layer_name(I, nm, kind);
        }
        /* ONNX gate g of Keras's column block k */
        static const int lstm_gate[4] = {0, 2, 3, 1}; /* i, f, c, o from i, o, f, c */
        const float *wf = w->k->f + (size_t)d * (size_t)(G * H * In), *rf = r->k->f + (size_t)d * (size_t)(G * H * H);
        const float *bf = b ? b->k->f + (size_t)d * (size_t)(2 * G * H) : NULL;
        float *kern = arena_alloc(I->a, (size_t)(In * G * H) * sizeof(float));
        float *rec = arena_alloc(I->a, (size_t)(H * G * H) * sizeof(float));
        float *bias = arena_alloc(I->a, (size_t)(2 * G * H) * sizeof(float));
        for (int kb = 0; kb < G; kb++) {
            int og = lstm ? lstm_gate[kb] : kb;
            for (int64_t j = 0; j < H; j++) {
                int64_t row = og * H + j, col = kb * H + j;
                for (int64_t i = 0; i < In; i++)
                    kern[i * G * H + col] = wf[row * In + i];
                for (int64_t i = 0; i < H; i++)
                    rec[i * G * H + col] = rf[row * H + i];
                float wb = bf ? bf[row] : 0, rb = bf ? bf[G * H + row] : 0;
                if (gru) {
                    bias[col] = wb;
                    bias[G * H + col] = rb;
                } else {
                    bias[col] = wb + rb;
                }
            }
        }
        const char *h0i = sid[d][0], *c0i = sid[d][1];
        if (((lstm && peeps) || (gru && !lbr)) && strcmp(act[d], "tanh") != 0)
            return fail(I, "activations other than Tanh are not supported with %s",
                        lstm ? "peepholes" : "linear_before_reset = 0");
        if (lstm && peeps) {
            seqs[d] = lstm_steps(I, name, xi, B, T, In, H, kern, rec, bias, peep->k->f + (size_t)d * (size_t)(3 * H),
                                 h0i, c0i, back);
            if (!seqs[d])
                return false;
            continue;
        }
        if (gru && !lbr) {
            if (!(seqs[d] = gru_steps(I, name, xi, B, T, In, H, kern, rec, bias, h0i, back)))
                return false;
            continue;
        }
        char init[200] = "";
        if (lstm && (h0i || c0i)) {
            if (!h0i || !c0i)
                return fail(I, "initial_h and initial_c must be given together");
            snprintf(init, sizeof init, ", initial_state=[%s, %s]", h0i, c0i);
        } else if (h0i) {
            snprintf(init, sizeof init, ", initial_state=%s", h0i);
        }
        char *seq = fresh(I);
        if (want_c) { /* the final cell state too */
            char *h = fresh(I);
            cells[d] = fresh(I);
            emit(I, "%s, %s, %s = ", seq, h, cells[d]);
        } else {
            emit(I, "%s = ", seq);
        }
        char actarg[32] = "";
        if (strcmp(act[d], "tanh") != 0)
            snprintf(actarg, sizeof actarg, ", activation=%s", act[d]);
        emit(I, "%s(%s, %lld%s, return_sequences=true%s%s%s, name=\"%s\")\n", lstm ? "lstm" : gru ? "gru" : "simple_rnn",
             xi, (long long)H, actarg, want_c ? ", return_state=true" : "", back ? ", go_backwards=true" : "", init, name);
        char pn[200];
        int64_t kd[2] = {In, G * H}, rd[2] = {H, G * H}, bd[2] = {2, G * H};
        snprintf(pn, sizeof pn, "%s.kernel", name);
        put_tensor(I, pn, 2, kd, kern);
        snprintf(pn, sizeof pn, "%s.recurrent_kernel", name);
        put_tensor(I, pn, 2, rd, rec);
        snprintf(pn, sizeof pn, "%s.bias", name);
        if (gru)
            put_tensor(I, pn, 2, bd, bias);
        else
            put_tensor(I, pn, 1, bd + 1, bias);
        seqs[d] = seq;
    }
    return recurrent_outputs(I, n, seqs, want_c ? cells : NULL, nd, B, T, H, layout, reverse);
}

/* A final state output (Y_h, Y_c) [nd, B, H] ([B, nd, H] for layout 1)
 * under ONNX name out, from the directions' states st[d] [B, H]. */
static void state_output(Imp *I, const char *out, const char *const *st, int nd, const char *bs, int64_t B,
                         int64_t H, int64_t layout)
{
    char *id = fresh(I);
    if (nd == 1)
        emit(I, layout == 0 ? "%s = reshape(%s, [1, %s, %lld])\n" : "%s = reshape(%s, [%s, 1, %lld])\n", id, st[0],
             bs, (long long)H);
    else
        emit(I, "%s = stack([%s, %s], axis=%d)\n", id, st[0], st[1], layout == 0 ? 0 : 1);
    Val *y = define(I, out);
    y->id = id;
    int64_t d0[3] = {nd, B, H}, d1[3] = {B, nd, H};
    set_shape(y, 3, layout == 0 ? d0 : d1);
}

/* Y: [T, nd, B, H] (layout 1: [B, T, nd, H]); Y_h and Y_c: [nd, B, H]
 * ([B, nd, H]), views of the sequences seq[d] [B, T, H] of the nd
 * directions (the backward one second; with one direction, reverse says
 * which it is) and of their final cell states cell[d] (NULL: Y_c is not
 * read). */
static bool recurrent_outputs(Imp *I, const Onnx__NodeProto *n, const char *const *seq, const char *const *cell,
                              int nd, int64_t B, int64_t T, int64_t H, int64_t layout, bool reverse)
{
    char bs[32];
    if (B == BATCH)
        snprintf(bs, sizeof bs, "N");
    else
        snprintf(bs, sizeof bs, "%lld", (long long)B);
    if (n->n_output > 0 && n->output[0][0]) {
        const char *src[2] = {seq[0], nd > 1 ? seq[1] : NULL};
        if (layout == 0) /* [T, B, H] each */
            for (int d = 0; d < nd; d++) {
                char *t = fresh(I);
                emit(I, "%s = transpose(%s, [1, 0, 2])\n", t, seq[d]);
                src[d] = t;
            }
        char *id = fresh(I);
        if (nd == 1 && layout == 0)
            emit(I, "%s = reshape(%s, [%lld, 1, %s, %lld])\n", id, src[0], (long long)T, bs, (long long)H);
        else if (nd == 1)
            emit(I, "%s = reshape(%s, [%s, %lld, 1, %lld])\n", id, src[0], bs, (long long)T, (long long)H);
        else
            emit(I, "%s = stack([%s, %s], axis=%d)\n", id, src[0], src[1], layout == 0 ? 1 : 2);
        Val *y = define(I, n->output[0]);
        y->id = id;
        int64_t d0[4] = {T, nd, B, H}, d1[4] = {B, T, nd, H};
        set_shape(y, 4, layout == 0 ? d0 : d1);
    }
    if (n->n_output > 1 && n->output[1][0]) {
        const char *last[2];
        for (int d = 0; d < nd; d++) {
            bool back = nd == 2 ? d == 1 : reverse;
            char *t = fresh(I);
            emit(I, "%s = %s[:, %lld, :]\n", t, seq[d], (long long)(back ? 0 : T - 1));
            last[d] = t;
        }
        state_output(I, n->output[1], last, nd, bs, B, H, layout);
    }
    if (cell)
        state_output(I, n->output[2], cell, nd, bs, B, H, layout);
    return true;
}

static const struct {
    const char *op;
    OpFn fn;
} ops[] = {
    {"Gemm", op_gemm},
    {"MatMul", op_gemm},
    {"Conv", op_conv},
    {"ConvTranspose", op_conv_transpose},
    {"LSTM", op_recurrent},
    {"GRU", op_recurrent},
    {"RNN", op_recurrent},
    {"BatchNormalization", op_batchnorm},
    {"MaxPool", op_pool},
    {"AveragePool", op_pool},
    {"GlobalAveragePool", op_global_pool},
    {"GlobalMaxPool", op_global_pool},
    {"Add", op_binary},
    {"Sub", op_binary},
    {"Mul", op_binary},
    {"Div", op_binary},
    {"Pow", op_binary},
    {"Relu", op_unary},
    {"LeakyRelu", op_unary},
    {"Elu", op_unary},
    {"Selu", op_unary},
    {"Sigmoid", op_unary},
    {"Tanh", op_unary},
    {"Softplus", op_unary},
    {"Softsign", op_unary},
    {"Exp", op_unary},
    {"Log", op_unary},
    {"Sqrt", op_unary},
    {"Abs", op_unary},
    {"Neg", op_unary},
    {"Reciprocal", op_unary},
    {"Erf", op_unary},
    {"Sign", op_unary},
    {"Greater", op_compare},
    {"Less", op_compare},
    {"GreaterOrEqual", op_compare},
    {"LessOrEqual", op_compare},
    {"Equal", op_compare},
    {"Max", op_compare},
    {"Min", op_compare},
    {"Where", op_compare},
    {"Softmax", op_softmax},
    {"LogSoftmax", op_softmax},
    {"Clip", op_clip},
    {"Flatten", op_flatten},
    {"Reshape", op_reshape},
    {"Transpose", op_transpose},
    {"Concat", op_concat},
    {"Squeeze", op_unsqueeze},
    {"Unsqueeze", op_unsqueeze},
    {"ReduceSum", op_reduce},
    {"ReduceMean", op_reduce},
    {"ReduceMax", op_reduce},
    {"ReduceMin", op_reduce},
    {"Identity", op_identity},
    {"Dropout", op_identity},
    {"Cast", op_identity},
    {"Constant", op_constant},
    {"Shape", op_shape},
    {"Gather", op_gather},
    {"Slice", op_slice},
    {"Pad", op_pad},
    {"HardSigmoid", op_hard},
    {"HardSwish", op_hard},
    {"PRelu", op_hard},
    {"Sum", op_sum},
    {"ConstantOfShape", op_constant_of_shape},
    {"Expand", op_expand},
};

char *fe_onnx_op_list(void)
{
    StrBuf b;
    sb_init(&b);
    for (int i = 0; i < ARRAY_LEN(ops); i++)
        sb_printf(&b, "%s\n", ops[i].op);
    return sb_take(&b);
}

/* ---- the graph ---- */

static bool check_opset(Imp *I, const Onnx__ModelProto *m)
{
    I->opset = -1;
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = m->opset_import[i];
        const char *dom = o->domain ? o->domain : "";
        if (!*dom || strcmp(dom, "ai.onnx") == 0)
            I->opset = o->version;
    }
    if (I->opset < 0)
        return fail(I, "the model imports no version of the standard operator set");
    if (I->opset < 1 || I->opset > 18)
        return fail(I, "opset %lld is not supported (1 to 18 are)", (long long)I->opset);
    return true;
}

/* The model-language dtype of an ONNX input's element type: f32 for
 * float (and float16, bfloat16, read as f32), f64 for double, i32 for the
 * integer types and bool (cast to f32 where the graph computes with them);
 * NULL for others (strings, complex). */
static const char *input_dtype(int32_t t)
{
    switch (t) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16: return "f32";
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: return "f64";
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64:
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: return "i32";
    default: return NULL;
    }
}

/* Does input vi have a known size (0 for an empty axis) along axis i? */
static bool dim_known(const Onnx__ValueInfoProto *vi, size_t i, int64_t *size)
{
    const Onnx__TypeProto *t = vi->type;
    if (!t || t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !t->tensor_type || !t->tensor_type->shape ||
        i >= t->tensor_type->shape->n_dim)
        return false;
    const Onnx__TensorShapeProto__Dimension *d = t->tensor_type->shape->dim[i];
    *size = d->dim_value;
    return d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && d->dim_value >= 0;
}

static bool graph_input(Imp *I, const Onnx__ValueInfoProto *vi, OnnxImport *im)
{
    const char *name = vi->name ? vi->name : "";
    if (lookup(I, name))
        return true; /* an initializer listed as an input (IR version < 4) */
    const Onnx__TypeProto *t = vi->type;
    if (!t || t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !t->tensor_type ||
        !t->tensor_type->shape)
        return fail(I, "input '%s' is not a tensor of known rank", name);
    const char *dt = input_dtype(t->tensor_type->elem_type);
    if (!dt)
        return fail(I, "input '%s' has element type %d; float, double, integer and bool inputs are supported",
                    name, t->tensor_type->elem_type);
    const Onnx__TensorShapeProto *s = t->tensor_type->shape;
    if (s->n_dim > MAXR)
        return fail(I, "input '%s' has rank %zu; at most %d is supported", name, s->n_dim, MAXR);
    Val *v = define(I, name);
    v->rank = (int)s->n_dim;
    int64_t n = 1;
    for (size_t i = 0; i < s->n_dim; i++) {
        int64_t size = 0;
        bool known = dim_known(vi, i, &size);
        if (i == 0 && !I->fixed && !known) { /* a fixed first size: a whole tensor */
            v->dims[0] = BATCH;
            continue;
        }
        if (!known)
            return fail(I, "dimension %zu of input '%s' is not a fixed size", i, name);
        if (size > MAX_ELEMS || (size && n > MAX_ELEMS / size))
            return fail(I, "input '%s' is too large", name);
        n *= size;
        v->dims[i] = size;
    }

    v->id = ident_from(I, name, "x", false);
    if (strcmp(v->id, name) != 0) {
        im->mdl_name[im->nrenamed] = xstrdup(v->id);
        im->onnx_name[im->nrenamed++] = xstrdup(name);
    }
    char sh[160];
    shape_str(v->rank, v->dims, is_batch_first(v), sh, sizeof sh);
    emit(I, "input %s: %s%s\n", v->id, dt, sh);
    if (strcmp(dt, "f32") != 0) { /* computed with as f32 */
        const char *in = v->id;
        v->id = fresh(I);
        emit(I, "%s = cast(%s, f32)\n", v->id, in);
    }
    return true;
}

static bool translate_nodes(Imp *I)
{
    const Onnx__GraphProto *g = I->g;
    char desc[300];
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *n = g->node[i];
        bool any_out = false;
        for (size_t k = 0; k < n->n_output; k++)
            any_out |= n->output[k][0] != 0;
        if (!n->op_type || !any_out) {
            snprintf(desc, sizeof desc, "node %zu", i);
            I->node_desc = desc;
            return fail(I, "has no operator or no output");
        }
    }
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *n = g->node[i];
        const char *op = n->op_type ? n->op_type : "";
        snprintf(desc, sizeof desc, "node '%s' (%s)", n->name && n->name[0] ? n->name : "", op);
        if (!n->name || !n->name[0])
            snprintf(desc, sizeof desc, "node %zu (%s)", i, op);
        I->node_desc = desc;
        I->reached = (int)i;
        if (I->skip[i])
            continue;
        if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx") != 0)
            return fail(I, "operators of domain '%s' are not supported", n->domain);
        OpFn fn = NULL;
        for (int k = 0; k < ARRAY_LEN(ops) && !fn; k++)
            if (strcmp(ops[k].op, op) == 0)
                fn = ops[k].fn;
        if (!fn)
            return fail(I, "operator %s is not supported (modelc import --list-ops lists those that are)", op);
        if (!fn(I, (int)i, n))
            return false;
    }
    I->node_desc = NULL;
    I->reached = (int)g->n_node;
    return true;
}

static bool graph_outputs(Imp *I, OnnxImport *im)
{
    if (I->g->n_output == 0)
        return fail(I, "the graph has no outputs");
    for (size_t i = 0; i < I->g->n_output; i++) {
        const char *name = I->g->output[i]->name ? I->g->output[i]->name : "";
        Val *v = lookup(I, name);
        if (!v)
            return fail(I, "output '%s' is not computed by the graph", name);
        if (v->flat_c)
            return fail(I, "output '%s' cannot be kept in NHWC order", name);
        if (v->k && !v->id && v->k->is_int) { /* an integer constant output: its values as floats */
            Const *f = const_new(I, false, v->k->rank, v->k->dims);
            for (int64_t j = 0; j < f->n; j++)
                if (v->k->i[j] == BATCH)
                    return fail(I, "output '%s' holds the batch size", name);
                else
                    f->f[j] = (float)v->k->i[j];
            v->k = f;
        }
        const char *id;
        if (v->k && !v->id) { /* a constant output: its parameter leaves the output its name */
            const char *onnx = v->onnx;
            size_t len = strlen(name) + 8;
            char *pn = arena_alloc(I->a, len);
            snprintf(pn, len, "%s_const", name);
            v->onnx = pn;
            id = operand(I, v, false);
            v->onnx = onnx;
        } else {
            id = operand(I, v, false);
        }
        if (!id)
            return false;
        char *oid = ident_from(I, name, "y", false);
        if (strcmp(oid, name) != 0) {
            im->mdl_name[im->nrenamed] = xstrdup(oid);
            im->onnx_name[im->nrenamed++] = xstrdup(name);
        }
        emit(I, "output %s = %s\n", oid, id);
        if (i == 0) {
            im->out_id = xstrdup(oid);
            im->out_rank = v->rank;
            for (int k = 0; k < v->rank && k < 6; k++)
                im->out_dims[k] = v->dims[k] == BATCH ? -1 : v->dims[k];
            const char *src = name, *op = "";
            for (int hops = 0; hops < 64 && src; hops++) { /* the producer, through Identity */
                const Onnx__NodeProto *p = NULL;
                for (size_t k = 0; k < I->g->n_node && !p; k++)
                    if (I->g->node[k]->n_output > 0 && strcmp(I->g->node[k]->output[0], src) == 0)
                        p = I->g->node[k];
                op = p && p->op_type ? p->op_type : "";
                src = p && strcmp(op, "Identity") == 0 && p->n_input > 0 ? p->input[0] : NULL;
            }
            im->out_op = xstrdup(op);
        }
    }
    return true;
}

static bool translate(Imp *I, const Onnx__ModelProto *m, OnnxImport *im)
{
    if (!check_opset(I, m))
        return false;
    const Onnx__GraphProto *g = m->graph;
    if (!g)
        return fail(I, "the model has no graph");
    I->g = g;
    I->skip = arena_alloc(I->a, g->n_node + 1);
    size_t nio = g->n_input + g->n_output + 1;
    im->mdl_name = xcalloc(nio, sizeof(char *));
    im->onnx_name = xcalloc(nio, sizeof(char *));
    const char *base = strrchr(I->path, '/');
    base = base ? base + 1 : I->path;
    emit(I, "# Imported from %s (ONNX IR version %lld, opset %lld%s%s%s%s)\n", base,
         (long long)m->ir_version, (long long)I->opset, m->producer_name && *m->producer_name ? ", " : "",
         m->producer_name ? m->producer_name : "", m->producer_version && *m->producer_version ? " " : "",
         m->producer_version ? m->producer_version : "");
    char stem[96];
    snprintf(stem, sizeof stem, "%s", base);
    char *dot = strrchr(stem, '.');
    if (dot)
        *dot = 0;
    emit(I, "model %s\n\n", ident_from(I, g->name && *g->name && strcmp(g->name, "main_graph") ? g->name : stem,
                                       "model", false));
    for (size_t i = 0; i < g->n_initializer; i++) {
        const Onnx__TensorProto *t = g->initializer[i];
        char what[200];
        snprintf(what, sizeof what, "initializer '%s'", t->name ? t->name : "");
        Const *k = tensor_const(I, t, what);
        if (!k)
            return false;
        Val *v = define(I, t->name ? t->name : "");
        val_from_const(v, k);
        v->from_init = true;
    }
    if (g->n_sparse_initializer)
        return fail(I, "sparse initializers are not supported");
    for (size_t i = 0; I->bound && i < g->n_input; i++) {
        const char *name = g->input[i]->name ? g->input[i]->name : "";
        const Tensor *t = rt_map_get((TensorMap *)I->bound, name);
        if (!t || lookup(I, name))
            continue;
        Const *k = const_new(I, t->dt == DT_I32, t->rank, t->dims);
        for (int64_t j = 0; j < k->n; j++)
            if (k->is_int)
                k->i[j] = (int64_t)rt_get(t, j);
            else
                k->f[j] = (float)rt_get(t, j);
        val_from_const(define(I, name), k);
    }
    for (int i = 0; I->bound && i < I->bound->n; i++) {
        bool found = false;
        for (size_t j = 0; j < g->n_input && !found; j++)
            found = g->input[j]->name && strcmp(g->input[j]->name, I->bound->names[i]) == 0;
        if (!found)
            return fail(I, "'%s' given a value is no input of the graph", I->bound->names[i]);
    }
    for (size_t i = 0; i < g->n_input; i++)
        if (!graph_input(I, g->input[i], im))
            return false;
    emit(I, "\n");
    return translate_nodes(I) && graph_outputs(I, im);
}

/* protobuf-c decodes nested messages recursively: a file nesting them
 * deeper than any model does (graphs in attributes of nodes of graphs,
 * types of sequences of types) is refused before it can exhaust the
 * stack. Without the schema, every length-delimited field whose bytes
 * read as a message counts as one; a field that does not read as one
 * ends the scan of its level, which is all this check needs. */
#define MAX_NESTING 64

static bool varint(const unsigned char *p, size_t n, size_t *i, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*i >= n)
            return false;
        unsigned char b = p[(*i)++];
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return true;
    }
    return false;
}

static bool nesting_ok(const unsigned char *p, size_t n, int depth)
{
    if (depth > MAX_NESTING)
        return false;
    size_t i = 0;
    while (i < n) {
        uint64_t key, v;
        if (!varint(p, n, &i, &key))
            return true;
        switch (key & 7) {
        case 0:
            if (!varint(p, n, &i, &v))
                return true;
            break;
        case 1:
        case 5:
            if (n - i < ((key & 7) == 1 ? 8u : 4u))
                return true;
            i += (key & 7) == 1 ? 8 : 4;
            break;
        case 2:
            if (!varint(p, n, &i, &v) || v > n - i)
                return true;
            if (!nesting_ok(p + i, (size_t)v, depth + 1))
                return false;
            i += (size_t)v;
            break;
        default:
            return true;
        }
    }
    return true;
}

/* One reading of model m: with the batch axis N first in every input, or
 * (fixed) at the inputs' own shapes. *reached: how far it got. */
static bool attempt(const char *path, const Onnx__ModelProto *m, bool fixed, const TensorMap *bound,
                    OnnxImport *out, Diags *d, int *reached)
{
    memset(out, 0, sizeof *out);
    rt_map_init(&out->weights);
    Imp I = {0};
    I.path = path;
    I.file = diags_intern_file(d, path);
    I.d = d;
    I.a = arena_new();
    I.w = &out->weights;
    I.fixed = fixed;
    I.bound = bound;
    I.reached = -1;
    sb_init(&I.out);
    bool ok = translate(&I, m, out);
    *reached = ok ? INT32_MAX : I.reached;
    out->mdl = sb_take(&I.out);
    xfree(I.v);
    xfree(I.slot);
    xfree(I.ids);
    arena_free(I.a);
    if (!ok)
        fe_onnx_import_free(out);
    return ok;
}

/* Which readings fit the inputs: a symbolic first dimension anywhere
 * means the batch reading; inputs all of fixed size with one first
 * dimension may be either (an exporter's fixed batch size, or a graph
 * that works on whole tensors); otherwise only the fixed reading. */
static void readings(const Onnx__ModelProto *m, const TensorMap *bound, bool *batch, bool *fixed)
{
    const Onnx__GraphProto *g = m->graph;
    bool symbolic = false, same = true, any = false;
    int64_t first = -1;
    *batch = true;
    *fixed = false;
    if (!g)
        return;
    for (size_t i = 0; i < g->n_input; i++) {
        const Onnx__ValueInfoProto *vi = g->input[i];
        bool init = false;
        for (size_t k = 0; k < g->n_initializer && !init; k++)
            init = vi->name && g->initializer[k]->name && strcmp(vi->name, g->initializer[k]->name) == 0;
        if (init || (bound && vi->name && rt_map_get((TensorMap *)bound, vi->name)))
            continue;
        const Onnx__TypeProto *t = vi->type;
        if (!t || t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !t->tensor_type ||
            !t->tensor_type->shape)
            return;
        const Onnx__TensorShapeProto *s = t->tensor_type->shape;
        for (size_t k = 0; k < s->n_dim; k++) {
            int64_t size;
            if (!dim_known(vi, k, &size))
                symbolic = true;
            else if (k == 0 && first >= 0 && size != first)
                same = false;
            else if (k == 0)
                first = size;
        }
        same &= s->n_dim > 0;
        any = true;
    }
    if (symbolic || !any)
        return;
    *fixed = true;
    *batch = same;
}

static void copy_diags(const Diags *from, Diags *to)
{
    for (int i = 0; i < from->n; i++) {
        SrcLoc loc = from->v[i].loc;
        loc.file = diags_intern_file(to, loc.file);
        diag_error(to, loc, "%s", from->v[i].msg);
    }
}

bool fe_onnx_import(const char *path, const unsigned char *buf, size_t len, OnnxImport *out, Diags *d)
{
    return fe_onnx_import_bound(path, buf, len, NULL, out, d);
}

bool fe_onnx_import_bound(const char *path, const unsigned char *buf, size_t len, const TensorMap *bound,
                          OnnxImport *out, Diags *d)
{
    memset(out, 0, sizeof *out);
    rt_map_init(&out->weights);
    Imp I = {0};
    I.file = diags_intern_file(d, path);
    I.d = d;
    if (!nesting_ok(buf, len, 0))
        return fail(&I, "messages nested more than %d deep: not an ONNX model this importer reads", MAX_NESTING);
    Onnx__ModelProto *m = onnx__model_proto__unpack(&pb_allocator, len, buf);
    if (!m)
        return fail(&I, "not a valid ONNX model (the protobuf message is malformed or truncated)");
    bool batch, fixed, ok;
    readings(m, bound, &batch, &fixed);
    if (batch && fixed) {
        /* the batch reading first (what an exporter with a fixed batch
         * size means), then the fixed one; when both fail, the messages
         * of the one that got further */
        Diags s1, s2;
        int r1, r2;
        diags_init(&s1);
        diags_init(&s2);
        r2 = -1;
        ok = attempt(path, m, false, bound, out, &s1, &r1) || attempt(path, m, true, bound, out, &s2, &r2);
        if (!ok)
            copy_diags(r1 >= r2 ? &s1 : &s2, d);
        diags_free(&s1);
        diags_free(&s2);
    } else {
        int r;
        ok = attempt(path, m, fixed, bound, out, d, &r);
    }
    onnx__model_proto__free_unpacked(m, &pb_allocator);
    return ok;
}

void fe_onnx_import_free(OnnxImport *im)
{
    xfree(im->mdl);
    rt_map_free(&im->weights);
    for (int i = 0; i < im->nrenamed; i++) {
        xfree(im->mdl_name[i]);
        xfree(im->onnx_name[i]);
    }
    xfree(im->mdl_name);
    xfree(im->onnx_name);
    xfree(im->out_id);
    xfree(im->out_op);
    memset(im, 0, sizeof *im);
    rt_map_init(&im->weights);
}
