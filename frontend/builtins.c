/* The built-in functions of the model language: elementwise math,
 * reductions, shape functions, casts, and the dispatch table that also
 * routes layers, losses and metrics to their files. Each entry lowers
 * directly to primitive IR ops. */
#include "fe.h"

#include <string.h>

typedef enum {
    K_UNARY,  /* op(x) */
    K_BINARY, /* op(a, b) */
    K_SPECIAL,
} BuiltinKind;

typedef struct Builtin {
    const char *name;
    BuiltinKind kind;
    Op op;
    Val (*fn)(FeCtx *c, const Expr *e, const struct Builtin *b);
    int which;
} Builtin;

static const ParamSpec x_spec[] = {{"x", A_TENSOR, true}};
static const ParamSpec ab_spec[] = {{"a", A_TENSOR, true}, {"b", A_TENSOR, true}};

static Val unary_fn(FeCtx *c, const Expr *e, const Builtin *b)
{
    CallArgs a;
    if (!fe_bind_args(c, e, b->name, x_spec, 1, &a))
        return fe_err_val();
    Node *x = fe_arg_tensor(c, &a, 0, DT_COUNT);
    return fe_tensor_val(fe_op1(c, b->op, x, e->loc));
}

static Val binary_fn(FeCtx *c, const Expr *e, const Builtin *b)
{
    CallArgs a;
    if (!fe_bind_args(c, e, b->name, ab_spec, 2, &a))
        return fe_err_val();
    Val x = fe_expr(c, a.v[0]), y = fe_expr(c, a.v[1]);
    if (x.k == V_NUM && y.k == V_NUM) {
        fe_error_expr(c, e, "%s() needs at least one tensor argument", b->name);
        return fe_err_val();
    }
    return fe_binary(c, b->op, x, y, e->loc);
}

static Val elu_fn(FeCtx *c, const Expr *e, const Builtin *b)
{
    static const ParamSpec spec[] = {{"x", A_TENSOR, true}, {"alpha", A_NUM, false}};
    CallArgs a;
    Attrs at = ir_attrs();
    if (!fe_bind_args(c, e, b->name, spec, 2, &a) || !fe_arg_num(c, &a, 1, 1.0, &at.value))
        return fe_err_val();
    Node *x = fe_arg_tensor(c, &a, 0, DT_COUNT);
    return fe_tensor_val(fe_op(c, OP_ELU, &x, 1, &at, e->loc));
}

/* The composite activations (activations.c): f(x), leaky_relu(x,
 * negative_slope=0.2), gelu(x, approximate=false). */
static Val activation_fn(FeCtx *c, const Expr *e, const Builtin *b)
{
    Activation act = (Activation)b->which;
    static const ParamSpec slope[] = {{"x", A_TENSOR, true}, {"negative_slope|alpha", A_NUM, false}};
    static const ParamSpec approx[] = {{"x", A_TENSOR, true}, {"approximate", A_BOOL, false}};
    const ParamSpec *spec = act == ACT_LEAKY_RELU ? slope : act == ACT_GELU ? approx : x_spec;
    int n = act == ACT_LEAKY_RELU || act == ACT_GELU ? 2 : 1;
    CallArgs a;
    double param = fe_activation_default(act);
    bool approximate = false;
    if (!fe_bind_args(c, e, b->name, spec, n, &a) ||
        (act == ACT_LEAKY_RELU && !fe_arg_num(c, &a, 1, param, &param)) ||
        (act == ACT_GELU && !fe_arg_bool(c, &a, 1, false, &approximate)))
        return fe_err_val();
    if (act == ACT_GELU)
        param = approximate;
    Node *x = fe_arg_tensor(c, &a, 0, DT_COUNT);
    if (x && !ir_dtype_is_float(x->dt)) {
        char t[128];
        fe_error_expr(c, e, "%s() needs a float tensor, got %s", b->name, fe_type_str(x, t, sizeof t));
        return fe_err_val();
    }
    return x ? fe_tensor_val(fe_activate_param(c, x, act, param, e->loc)) : fe_err_val();
}

/* softmax(x, axis=-1), log_softmax(x, axis=-1), argmax(x, axis=-1) */
static Val axis_fn(FeCtx *c, const Expr *e, const Builtin *b)
{
    static const ParamSpec spec[] = {{"x", A_TENSOR, true}, {"axis", A_INT, false}};
    CallArgs a;
    int64_t ax;
    if (!fe_bind_args(c, e, b->name, spec, 2, &a) ||
        !fe_arg_int(c, &a, 1, -1, INT32_MIN, INT32_MAX, &ax))
        return fe_err_val();
    Node *x = fe_arg_tensor(c, &a, 0, DT_COUNT);
    Attrs at = ir_attrs();
    at.naxes = 1;
    if (!x || !fe_norm_axis(c, a.v[1] ? a.v[1] : e, ax, x, &at.axes[0]))
        return fe_err_val();
    return fe_tensor_val(fe_op(c, b->op, &x, 1, &at, e->loc));
}

/* sum/mean/max(x, axis=None, keepdims=false); axis may be a list (axes=).
 * The composites: min = -max(-x); var = mean((x - mean(x))^2) over the
 * axes (the population variance, as Keras's ops.var); std = sqrt(var). */
enum { STAT_MIN = 1, STAT_VAR, STAT_STD };

static Val stat_of(FeCtx *c, const Expr *e, const Builtin *b, Node *x, Attrs at);

static Val reduce_fn(FeCtx *c, const Expr *e, const Builtin *b)
{
    static const ParamSpec spec[] = {
        {"x", A_TENSOR, true}, {"axis|axes", A_ANY, false}, {"keepdims", A_BOOL, false}};
    CallArgs a;
    Attrs at = ir_attrs();
    if (!fe_bind_args(c, e, b->name, spec, 3, &a) || !fe_arg_bool(c, &a, 2, false, &at.keepdims))
        return fe_err_val();
    Node *x = fe_arg_tensor(c, &a, 0, DT_COUNT);
    if (!x || !fe_arg_axes(c, &a, 1, x, at.axes, &at.naxes))
        return fe_err_val();
    if (b->which)
        return stat_of(c, e, b, x, at);
    if (at.naxes == 0)
        return fe_tensor_val(x);
    return fe_tensor_val(fe_op(c, b->op, &x, 1, &at, e->loc));
}

static Val stat_of(FeCtx *c, const Expr *e, const Builtin *b, Node *x, Attrs at)
{
    if (!ir_dtype_is_float(x->dt)) {
        char t[128];
        fe_error_expr(c, e, "%s() needs a float tensor, got %s", b->name, fe_type_str(x, t, sizeof t));
        return fe_err_val();
    }
    if (at.naxes == 0)
        return fe_tensor_val(b->which == STAT_MIN ? x : fe_op2(c, OP_MUL, x, fe_const_like(c, x, 0, e->loc), e->loc));
    SrcLoc l = e->loc;
    if (b->which == STAT_MIN) {
        Node *nx = fe_op1(c, OP_NEG, x, l);
        return fe_tensor_val(fe_op1(c, OP_NEG, fe_op(c, OP_REDUCE_MAX, &nx, 1, &at, l), l));
    }
    Attrs keep = at;
    keep.keepdims = true;
    Node *m = fe_op(c, OP_REDUCE_MEAN, &x, 1, &keep, l);
    Node *sq = fe_op1(c, OP_SQUARE, fe_op2(c, OP_SUB, x, m, l), l);
    Node *v = fe_op(c, OP_REDUCE_MEAN, &sq, 1, &at, l);
    return fe_tensor_val(b->which == STAT_STD ? fe_op1(c, OP_SQRT, v, l) : v);
}

static Val matmul_fn(FeCtx *c, const Expr *e, const Builtin *b)
{
    static const ParamSpec spec[] = {{"a", A_TENSOR, true},
                                     {"b", A_TENSOR, true},
                                     {"transpose_a", A_BOOL, false},
                                     {"transpose_b", A_BOOL, false}};
    CallArgs a;
    Attrs at = ir_attrs();
    if (!fe_bind_args(c, e, b->name, spec, 4, &a) || !fe_arg_bool(c, &a, 2, false, &at.ta) ||
        !fe_arg_bool(c, &a, 3, false, &at.tb))
        return fe_err_val();
    Node *in[2] = {fe_arg_tensor(c, &a, 0, DT_COUNT), NULL};
    in[1] = fe_arg_tensor(c, &a, 1, in[0] ? in[0]->dt : DT_COUNT);
    return fe_tensor_val(fe_op(c, OP_MATMUL, in, 2, &at, e->loc));
}

static Val where_fn(FeCtx *c, const Expr *e, const Builtin *b)
{
    static const ParamSpec spec[] = {
        {"cond", A_TENSOR, true}, {"a", A_TENSOR, true}, {"b", A_TENSOR, true}};
    CallArgs a;
    if (!fe_bind_args(c, e, b->name, spec, 3, &a))
        return fe_err_val();
    Node *cond = fe_arg_tensor(c, &a, 0, DT_COUNT);
    if (!cond)
        return fe_err_val();
    Node *in[3] = {cond, fe_arg_tensor(c, &a, 1, cond->dt), fe_arg_tensor(c, &a, 2, cond->dt)};
    return fe_tensor_val(fe_op(c, OP_SELECT, in, 3, NULL, e->loc));
}

static Val clip_fn(FeCtx *c, const Expr *e, const Builtin *b)
{
    static const ParamSpec spec[] = {{"x", A_TENSOR, true}, {"lo", A_NUM, true}, {"hi", A_NUM, true}};
    CallArgs a;
    double lo, hi;
    if (!fe_bind_args(c, e, b->name, spec, 3, &a) || !fe_arg_num(c, &a, 1, 0, &lo) ||
        !fe_arg_num(c, &a, 2, 0, &hi))
        return fe_err_val();
    if (lo > hi) {
        fe_error_expr(c, e, "clip(): lo %g is greater than hi %g", lo, hi);
        return fe_err_val();
    }
    Node *x = fe_arg_tensor(c, &a, 0, DT_COUNT);
    Node *y = fe_op2(c, OP_MAXIMUM, x, fe_const_like(c, x, lo, e->loc), e->loc);
    return fe_tensor_val(fe_op2(c, OP_MINIMUM, y, fe_const_like(c, x, hi, e->loc), e->loc));
}

/* ---- shape functions ---- */

static int64_t static_count(const Shape *s, bool *has_n)
{
    int64_t p = 1;
    *has_n = false;
    for (int i = 0; i < s->rank; i++) {
        if (ir_dim_is_batch(s->d[i]))
            *has_n = true;
        if (mul_overflow_i64(p, ir_dim_factor(s->d[i]), &p))
            return -1;
    }
    return p;
}

static Node *reshape_to(FeCtx *c, Node *x, Shape t, SrcLoc loc)
{
    Attrs at = ir_attrs();
    at.shape = t;
    return fe_op(c, OP_RESHAPE, &x, 1, &at, loc);
}

static Val reshape_fn(FeCtx *c, const Expr *e, const Builtin *b)
{
    static const ParamSpec spec[] = {{"x", A_TENSOR, true}, {"shape", A_ANY, true}};
    CallArgs a;
    Shape t;
    int infer;
    if (!fe_bind_args(c, e, b->name, spec, 2, &a))
        return fe_err_val();
    Node *x = fe_arg_tensor(c, &a, 0, DT_COUNT);
    if (!fe_shape_list(c, a.v[1], &t, &infer, true) || !x)
        return fe_err_val();
    if (infer >= 0) {
        bool xn, tn;
        int64_t have = static_count(&x->shape, &xn), known = static_count(&t, &tn);
        char buf[128];
        /* A -1 where the target has no N absorbs x's batch dimension: it
         * is N*k with k = (x's elements per N) / (the other dimensions),
         * plain N when k is 1. Like N it may only come first. */
        if (xn && !tn && have >= 0 && known > 0 && have % known == 0) {
            int64_t k = have / known;
            if (infer != 0) {
                char nk[32];
                if (k == 1)
                    snprintf(nk, sizeof nk, "N");
                else
                    snprintf(nk, sizeof nk, "N*%lld", (long long)k);
                fe_error(c, a.v[1]->items[infer]->start, 1,
                         "reshaping %s, this -1 would be the batch dimension %s, which may only be the first "
                         "dimension",
                         fe_type_str(x, buf, sizeof buf), nk);
                return fe_err_val();
            }
            t.d[0] = ir_dim_batch(k);
            return fe_tensor_val(reshape_to(c, x, t, e->loc));
        }
        if (xn && !tn && have >= 0 && known > 0) {
            fe_error(c, a.v[1]->items[infer]->start, 1,
                     "cannot infer the -1 dimension when reshaping %s: it would be N*%lld/%lld, not a whole "
                     "multiple of the batch dimension N",
                     fe_type_str(x, buf, sizeof buf), (long long)have, (long long)known);
            return fe_err_val();
        }
        if (have < 0 || known <= 0 || xn != tn || have % known != 0) {
            fe_error(c, a.v[1]->items[infer]->start, 1,
                     "cannot infer the -1 dimension when reshaping %s: %s", fe_type_str(x, buf, sizeof buf),
                     tn && !xn ? "N must appear in both shapes"
                     : known == 0 ? "the other dimensions hold no elements"
                                  : "the sizes do not divide");
            return fe_err_val();
        }
        t.d[infer] = have / known;
    }
    return fe_tensor_val(reshape_to(c, x, t, e->loc));
}

/* squeeze(x, axis=None): drop the axes of size 1 (all of them, or the
 * ones given); expand_dims(x, axis): insert one of size 1 (axis counts in
 * the result, -1 appends). The batch axis N is never squeezed. */
static Val squeeze_fn(FeCtx *c, const Expr *e, const Builtin *b)
{
    static const ParamSpec spec[] = {{"x", A_TENSOR, true}, {"axis|axes", A_ANY, false}};
    CallArgs a;
    if (!fe_bind_args(c, e, b->name, spec, 2, &a))
        return fe_err_val();
    Node *x = fe_arg_tensor(c, &a, 0, DT_COUNT);
    int axes[IR_MAXRANK], naxes = 0;
    if (!x)
        return fe_err_val();
    bool drop[IR_MAXRANK] = {false};
    if (a.v[1]) {
        if (!fe_arg_axes(c, &a, 1, x, axes, &naxes))
            return fe_err_val();
        for (int k = 0; k < naxes; k++) {
            if (x->shape.d[axes[k]] != 1) {
                char t[128];
                fe_error(c, a.v[1]->start, a.v[1]->span, "squeeze(): axis %d of %s has size %s, not 1", axes[k],
                         fe_type_str(x, t, sizeof t), ir_dim_is_batch(x->shape.d[axes[k]]) ? "N" : "other than 1");
                return fe_err_val();
            }
            drop[axes[k]] = true;
        }
    } else {
        for (int k = 0; k < x->shape.rank; k++)
            drop[k] = x->shape.d[k] == 1;
    }
    Shape t = {0};
    for (int k = 0; k < x->shape.rank; k++)
        if (!drop[k])
            t.d[t.rank++] = x->shape.d[k];
    return fe_tensor_val(t.rank == x->shape.rank ? x : reshape_to(c, x, t, e->loc));
}

static Node *expand(FeCtx *c, Node *x, int axis, SrcLoc loc)
{
    Shape t = {0};
    for (int k = 0; k <= x->shape.rank; k++)
        t.d[t.rank++] = k == axis ? 1 : x->shape.d[k < axis ? k : k - 1];
    return reshape_to(c, x, t, loc);
}

/* An axis of the result of inserting one axis into x: -r-1 <= ax <= r. */
static bool insert_axis(FeCtx *c, const Expr *at, int64_t ax, const Node *x, int *out)
{
    int r = x->shape.rank;
    if (r + 1 > IR_MAXRANK || ax < -r - 1 || ax > r) {
        char t[128];
        fe_error(c, at->start, at->k == E_NUM ? at->span : 1, "axis %lld is out of range for a new axis of %s",
                 (long long)ax, fe_type_str(x, t, sizeof t));
        return false;
    }
    *out = (int)(ax < 0 ? ax + r + 1 : ax);
    return true;
}

static Val expand_dims_fn(FeCtx *c, const Expr *e, const Builtin *b)
{
    static const ParamSpec spec[] = {{"x", A_TENSOR, true}, {"axis", A_INT, true}};
    CallArgs a;
    int64_t ax;
    int axis;
    if (!fe_bind_args(c, e, b->name, spec, 2, &a) || !fe_arg_int(c, &a, 1, 0, INT32_MIN, INT32_MAX, &ax))
        return fe_err_val();
    Node *x = fe_arg_tensor(c, &a, 0, DT_COUNT);
    if (!x || !insert_axis(c, a.v[1], ax, x, &axis))
        return fe_err_val();
    return fe_tensor_val(expand(c, x, axis, e->loc));
}

static Val flatten_fn(FeCtx *c, const Expr *e, const Builtin *b)
{
    CallArgs a;
    if (!fe_bind_args(c, e, b->name, x_spec, 1, &a))
        return fe_err_val();
    Node *x = fe_arg_tensor(c, &a, 0, DT_COUNT);
    if (!x)
        return fe_err_val();
    if (x->shape.rank == 0) {
        char t[128];
        fe_error_expr(c, e, "flatten() needs a tensor of rank 1 or more, got %s",
                      fe_type_str(x, t, sizeof t));
        return fe_err_val();
    }
    int64_t p = 1;
    for (int i = 1; i < x->shape.rank; i++) {
        if (ir_dim_is_batch(x->shape.d[i]) || mul_overflow_i64(p, x->shape.d[i], &p)) {
            fe_error_expr(c, e, "flatten(): the flattened size overflows");
            return fe_err_val();
        }
    }
    Shape t = ir_shape2(x->shape.d[0], p);
    if (x->shape.rank == 2)
        return fe_tensor_val(x);
    return fe_tensor_val(reshape_to(c, x, t, e->loc));
}

static Val transpose_fn(FeCtx *c, const Expr *e, const Builtin *b)
{
    static const ParamSpec spec[] = {{"x", A_TENSOR, true}, {"perm|axes", A_ANY, false}};
    CallArgs a;
    if (!fe_bind_args(c, e, b->name, spec, 2, &a))
        return fe_err_val();
    Node *x = fe_arg_tensor(c, &a, 0, DT_COUNT);
    if (!x)
        return fe_err_val();
    Attrs at = ir_attrs();
    int r = x->shape.rank;
    if (!a.v[1]) {
        at.naxes = r;
        for (int k = 0; k < r; k++)
            at.axes[k] = r - 1 - k;
    } else {
        if (a.v[1]->k != E_LIST || a.v[1]->nitems != r) {
            char t[128];
            fe_error(c, a.v[1]->start, 1, "transpose of %s needs a permutation of %d axes",
                     fe_type_str(x, t, sizeof t), r);
            return fe_err_val();
        }
        if (!fe_arg_axes(c, &a, 1, x, at.axes, &at.naxes))
            return fe_err_val();
    }
    return fe_tensor_val(fe_op(c, OP_TRANSPOSE, &x, 1, &at, e->loc));
}

/* concat(values, axis=-1), and stack(values, axis=0): expand_dims each at
 * axis (an axis of the result), then concat. */
static Val concat_fn(FeCtx *c, const Expr *e, const Builtin *b)
{
    static const ParamSpec spec[] = {{"values", A_ANY, true}, {"axis", A_INT, false}};
    bool stack = b->which != 0;
    CallArgs a;
    int64_t ax;
    if (!fe_bind_args(c, e, b->name, spec, 2, &a) ||
        !fe_arg_int(c, &a, 1, stack ? 0 : -1, INT32_MIN, INT32_MAX, &ax))
        return fe_err_val();
    const Expr *l = a.v[0];
    if (l->k != E_LIST || l->nitems < 1) {
        fe_error(c, l->start, 1, "%s() needs a list of tensors such as [a, b]", b->name);
        return fe_err_val();
    }
    Node **in = arena_alloc(c->a, (size_t)l->nitems * sizeof(Node *));
    bool ok = true;
    for (int i = 0; i < l->nitems; i++) {
        in[i] = fe_tensor(c, l->items[i], DT_COUNT);
        ok &= in[i] != NULL;
    }
    Attrs at = ir_attrs();
    at.naxes = 1;
    const Expr *at_expr = a.v[1] ? a.v[1] : e;
    if (!ok || !(stack ? insert_axis(c, at_expr, ax, in[0], &at.axes[0])
                       : fe_norm_axis(c, at_expr, ax, in[0], &at.axes[0])))
        return fe_err_val();
    for (int i = 0; stack && i < l->nitems; i++)
        in[i] = expand(c, in[i], at.axes[0], e->loc);
    return fe_tensor_val(fe_op(c, OP_CONCAT, in, l->nitems, &at, e->loc));
}

static Val cast_fn(FeCtx *c, const Expr *e, const Builtin *b)
{
    static const ParamSpec spec[] = {{"x", A_TENSOR, true}, {"dtype", A_WORD, true}};
    CallArgs a;
    Attrs at = ir_attrs();
    if (!fe_bind_args(c, e, b->name, spec, 2, &a) || !fe_arg_dtype(c, &a, 1, DT_F32, &at.to))
        return fe_err_val();
    Node *x = fe_arg_tensor(c, &a, 0, at.to);
    if (x && x->dt == at.to)
        return fe_tensor_val(x);
    return fe_tensor_val(fe_op(c, OP_CAST, &x, 1, &at, e->loc));
}

static Val one_hot_fn(FeCtx *c, const Expr *e, const Builtin *b)
{
    static const ParamSpec spec[] = {
        {"indices", A_TENSOR, true}, {"depth", A_INT, true}, {"dtype", A_WORD, false}};
    CallArgs a;
    Attrs at = ir_attrs();
    int64_t depth;
    if (!fe_bind_args(c, e, b->name, spec, 3, &a) ||
        !fe_arg_int(c, &a, 1, 0, 1, INT32_MAX, &depth) || !fe_arg_dtype(c, &a, 2, DT_F32, &at.to))
        return fe_err_val();
    if (!ir_dtype_is_float(at.to)) {
        fe_error(c, a.v[2]->start, a.v[2]->span, "one_hot() produces f32 or f64, not %s",
                 ir_dtype_name(at.to));
        return fe_err_val();
    }
    at.depth = (int)depth;
    Node *x = fe_arg_tensor(c, &a, 0, DT_COUNT);
    return fe_tensor_val(fe_op(c, OP_ONE_HOT, &x, 1, &at, e->loc));
}

/* gather(x, indices, axis=0): indices are i32 or integral floats */
static Val gather_fn(FeCtx *c, const Expr *e, const Builtin *b)
{
    static const ParamSpec spec[] = {{"x", A_TENSOR, true}, {"indices", A_TENSOR, true}, {"axis", A_INT, false}};
    CallArgs a;
    int64_t ax;
    if (!fe_bind_args(c, e, b->name, spec, 3, &a) || !fe_arg_int(c, &a, 2, 0, INT32_MIN, INT32_MAX, &ax))
        return fe_err_val();
    Node *in[2] = {fe_arg_tensor(c, &a, 0, DT_COUNT), fe_arg_tensor(c, &a, 1, DT_I32)};
    Attrs at = ir_attrs();
    at.naxes = 1;
    if (!in[0] || !in[1] || !fe_norm_axis(c, a.v[2] ? a.v[2] : e, ax, in[0], &at.axes[0]))
        return fe_err_val();
    if (!ir_dtype_is_float(in[0]->dt)) {
        char t[128];
        fe_error(c, a.v[0]->start, 1, "gather() takes values from a float tensor, got %s",
                 fe_type_str(in[0], t, sizeof t));
        return fe_err_val();
    }
    return fe_tensor_val(fe_op(c, OP_GATHER, in, 2, &at, e->loc));
}

/* One [before, after] pair of pad(): non-negative integers. */
static bool pad_pair(FeCtx *c, const Expr *e, int64_t *out)
{
    if (e->k != E_LIST || e->nitems != 2) {
        fe_error(c, e->start, 1, "pad(): each axis needs a pair [before, after]");
        return false;
    }
    for (int k = 0; k < 2; k++) {
        Val v;
        const Expr *it = e->items[k];
        if (it->k == E_LIST || it->k == E_STR || !fe_const_num(c, it, &v) || !v.is_int || v.i < 0 || v.i > INT32_MAX) {
            fe_error(c, it->start, 1, "pad(): padding must be a non-negative integer");
            return false;
        }
        out[k] = v.i;
    }
    return true;
}

/* pad(x, pad_width, constant_values=0): pad_width lists one [before,
 * after] per axis (the batch axis N only [0, 0]). Lowered to slice_grad
 * (x placed into zeros) plus, for a nonzero constant, the constant times
 * 1 - slice_grad(ones). */
static Val pad_fn(FeCtx *c, const Expr *e, const Builtin *b)
{
    static const ParamSpec spec[] = {
        {"x", A_TENSOR, true}, {"pad_width|paddings", A_ANY, true}, {"constant_values|value", A_NUM, false}};
    CallArgs a;
    double cv;
    if (!fe_bind_args(c, e, b->name, spec, 3, &a) || !fe_arg_num(c, &a, 2, 0, &cv))
        return fe_err_val();
    Node *x = fe_arg_tensor(c, &a, 0, DT_COUNT);
    if (!x)
        return fe_err_val();
    const Expr *pw = a.v[1];
    char t[128];
    if (pw->k != E_LIST || pw->nitems != x->shape.rank) {
        fe_error(c, pw->start, 1, "pad() of %s needs a list of %d pairs [before, after], one per axis",
                 fe_type_str(x, t, sizeof t), x->shape.rank);
        return fe_err_val();
    }
    if (!ir_dtype_is_float(x->dt)) {
        fe_error_expr(c, e, "pad() needs a float tensor, got %s", fe_type_str(x, t, sizeof t));
        return fe_err_val();
    }
    Attrs at = ir_attrs();
    at.shape = x->shape;
    for (int k = 0; k < x->shape.rank; k++) {
        int64_t p[2];
        if (!pad_pair(c, pw->items[k], p))
            return fe_err_val();
        at.begin[k] = p[0];
        at.end[k] = p[0] + x->shape.d[k];
        if (ir_dim_is_batch(x->shape.d[k])) {
            if (p[0] || p[1]) {
                fe_error(c, pw->items[k]->start, 1, "pad(): the batch axis N cannot be padded");
                return fe_err_val();
            }
            at.end[k] = INT64_MAX;
        } else if (__builtin_add_overflow(at.end[k], p[1], &at.shape.d[k])) {
            fe_error(c, pw->items[k]->start, 1, "pad(): the padded size overflows");
            return fe_err_val();
        }
    }
    SrcLoc l = e->loc;
    Node *y = fe_op(c, OP_SLICE_GRAD, &x, 1, &at, l);
    if (!y || cv == 0)
        return y ? fe_tensor_val(y) : fe_err_val();
    Attrs bc = ir_attrs();
    bc.shape = x->shape;
    Node *one = fe_const_like(c, x, 1, l);
    Node *ones = fe_op(c, OP_BROADCAST, &one, 1, &bc, l);
    Node *inside = fe_op(c, OP_SLICE_GRAD, &ones, 1, &at, l);
    Node *border = fe_op2(c, OP_SUB, fe_const_like(c, x, 1, l), inside, l);
    return fe_tensor_val(fe_op2(c, OP_ADD, y, fe_op2(c, OP_MUL, border, fe_const_like(c, x, cv, l), l), l));
}

/* ---- routing to layers, losses and metrics ---- */

static Val dense_fn(FeCtx *c, const Expr *e, const Builtin *b)
{
    (void)b;
    return fe_layer_dense(c, e);
}

static Val embedding_fn(FeCtx *c, const Expr *e, const Builtin *b)
{
    (void)b;
    return fe_layer_embedding(c, e);
}

static Val layer_norm_fn(FeCtx *c, const Expr *e, const Builtin *b)
{
    (void)b;
    return fe_layer_layer_norm(c, e);
}

static Val global_pool_fn(FeCtx *c, const Expr *e, const Builtin *b)
{
    return fe_layer_global_pool(c, e, b->op);
}

static Val upsampling_fn(FeCtx *c, const Expr *e, const Builtin *b)
{
    (void)b;
    return fe_layer_upsampling2d(c, e);
}

static Val conv1d_fn(FeCtx *c, const Expr *e, const Builtin *b)
{
    (void)b;
    return fe_layer_conv1d(c, e);
}

static Val conv_transpose_fn(FeCtx *c, const Expr *e, const Builtin *b)
{
    (void)b;
    return fe_layer_conv2d_transpose(c, e);
}

static Val conv_fn(FeCtx *c, const Expr *e, const Builtin *b)
{
    (void)b;
    return fe_layer_conv2d(c, e);
}

static Val pool_fn(FeCtx *c, const Expr *e, const Builtin *b)
{
    return fe_layer_pool(c, e, b->op);
}

static Val bn_fn(FeCtx *c, const Expr *e, const Builtin *b)
{
    (void)b;
    return fe_layer_batchnorm(c, e);
}

static Val rnn_fn(FeCtx *c, const Expr *e, const Builtin *b)
{
    return fe_layer_recurrent(c, e, b->which);
}

static Val dropout_fn(FeCtx *c, const Expr *e, const Builtin *b)
{
    (void)b;
    return fe_layer_dropout(c, e);
}

static Val loss_fn(FeCtx *c, const Expr *e, const Builtin *b)
{
    return fe_loss(c, e, b->which);
}

static Val metric_fn(FeCtx *c, const Expr *e, const Builtin *b)
{
    return fe_metric(c, e, b->which);
}

#define UN(name, op) {name, K_UNARY, op, unary_fn, 0}
#define BIN(name, op) {name, K_BINARY, op, binary_fn, 0}
#define SP(name, fn, op, which) {name, K_SPECIAL, op, fn, which}

static const Builtin builtins[] = {
    UN("exp", OP_EXP),
    UN("log", OP_LOG),
    UN("tanh", OP_TANH),
    UN("sigmoid", OP_SIGMOID),
    UN("relu", OP_RELU),
    UN("sqrt", OP_SQRT),
    UN("rsqrt", OP_RSQRT),
    UN("square", OP_SQUARE),
    UN("abs", OP_ABS),
    UN("erf", OP_ERF),
    UN("sign", OP_SIGN),
    BIN("maximum", OP_MAXIMUM),
    BIN("minimum", OP_MINIMUM),
    BIN("pow", OP_POW),
    SP("elu", elu_fn, OP_ELU, 0),
    SP("leaky_relu", activation_fn, OP_SELECT, ACT_LEAKY_RELU),
    SP("gelu", activation_fn, OP_MUL, ACT_GELU),
    SP("softplus", activation_fn, OP_LOG, ACT_SOFTPLUS),
    SP("softsign", activation_fn, OP_DIV, ACT_SOFTSIGN),
    SP("selu", activation_fn, OP_ELU, ACT_SELU),
    SP("silu", activation_fn, OP_MUL, ACT_SWISH),
    SP("swish", activation_fn, OP_MUL, ACT_SWISH),
    SP("hard_sigmoid", activation_fn, OP_MINIMUM, ACT_HARD_SIGMOID),
    SP("hard_silu", activation_fn, OP_MUL, ACT_HARD_SILU),
    SP("hard_swish", activation_fn, OP_MUL, ACT_HARD_SILU),
    SP("softmax", axis_fn, OP_SOFTMAX, 0),
    SP("log_softmax", axis_fn, OP_LOG_SOFTMAX, 0),
    SP("argmax", axis_fn, OP_ARGMAX, 0),
    SP("sum", reduce_fn, OP_REDUCE_SUM, 0),
    SP("mean", reduce_fn, OP_REDUCE_MEAN, 0),
    SP("max", reduce_fn, OP_REDUCE_MAX, 0),
    SP("min", reduce_fn, OP_REDUCE_MAX, STAT_MIN),
    SP("var", reduce_fn, OP_REDUCE_MEAN, STAT_VAR),
    SP("std", reduce_fn, OP_REDUCE_MEAN, STAT_STD),
    SP("squeeze", squeeze_fn, OP_RESHAPE, 0),
    SP("expand_dims", expand_dims_fn, OP_RESHAPE, 0),
    SP("stack", concat_fn, OP_CONCAT, 1),
    SP("matmul", matmul_fn, OP_MATMUL, 0),
    SP("where", where_fn, OP_SELECT, 0),
    SP("clip", clip_fn, OP_MAXIMUM, 0),
    SP("reshape", reshape_fn, OP_RESHAPE, 0),
    SP("flatten", flatten_fn, OP_RESHAPE, 0),
    SP("transpose", transpose_fn, OP_TRANSPOSE, 0),
    SP("concat", concat_fn, OP_CONCAT, 0),
    SP("cast", cast_fn, OP_CAST, 0),
    SP("one_hot", one_hot_fn, OP_ONE_HOT, 0),
    SP("gather", gather_fn, OP_GATHER, 0),
    SP("pad", pad_fn, OP_SLICE_GRAD, 0),
    SP("dense", dense_fn, OP_MATMUL, 0),
    SP("embedding", embedding_fn, OP_GATHER, 0),
    SP("layer_norm", layer_norm_fn, OP_RSQRT, 0),
    SP("layernorm", layer_norm_fn, OP_RSQRT, 0),
    SP("global_avg_pool2d", global_pool_fn, OP_REDUCE_MEAN, 0),
    SP("global_max_pool2d", global_pool_fn, OP_REDUCE_MAX, 0),
    SP("upsampling2d", upsampling_fn, OP_BROADCAST, 0),
    SP("conv2d", conv_fn, OP_CONV2D, 0),
    SP("conv1d", conv1d_fn, OP_CONV2D, 0),
    SP("conv2d_transpose", conv_transpose_fn, OP_CONV2D_GRAD_INPUT, 0),
    SP("max_pool2d", pool_fn, OP_MAX_POOL2D, 0),
    SP("avg_pool2d", pool_fn, OP_AVG_POOL2D, 0),
    SP("batchnorm", bn_fn, OP_PHASE, 0),
    SP("dropout", dropout_fn, OP_PHASE, 0),
    SP("simple_rnn", rnn_fn, OP_LOOP, 0),
    SP("gru", rnn_fn, OP_LOOP, 1),
    SP("lstm", rnn_fn, OP_LOOP, 2),
    SP("mse", loss_fn, OP_SUB, LOSS_MSE),
    SP("mean_squared_error", loss_fn, OP_SUB, LOSS_MSE),
    SP("mae", loss_fn, OP_SUB, LOSS_MAE),
    SP("mean_absolute_error", loss_fn, OP_SUB, LOSS_MAE),
    SP("binary_crossentropy", loss_fn, OP_LOG, LOSS_BCE),
    SP("categorical_crossentropy", loss_fn, OP_LOG, LOSS_CCE),
    SP("sparse_categorical_crossentropy", loss_fn, OP_LOG, LOSS_SCCE),
    SP("huber", loss_fn, OP_MINIMUM, LOSS_HUBER),
    SP("kl_divergence", loss_fn, OP_LOG, LOSS_KLD),
    SP("kld", loss_fn, OP_LOG, LOSS_KLD),
    SP("accuracy", metric_fn, OP_EQ, METRIC_ACCURACY),
    SP("binary_accuracy", metric_fn, OP_EQ, METRIC_BINARY_ACCURACY),
    SP("top_k_accuracy", metric_fn, OP_LT, METRIC_TOP_K),
    SP("sparse_top_k_categorical_accuracy", metric_fn, OP_LT, METRIC_TOP_K),
};

static const Builtin *find(const char *name)
{
    for (int i = 0; i < ARRAY_LEN(builtins); i++)
        if (strcmp(builtins[i].name, name) == 0)
            return &builtins[i];
    return NULL;
}

bool fe_is_builtin(const char *name)
{
    return find(name) != NULL;
}

static Val unknown_function(FeCtx *c, const Expr *e)
{
    if (ir_init_from_name(e->str) > INIT_NONE) {
        fe_error_expr(c, e, "'%s' is an initializer; use it in a param declaration or as kernel_init=",
                      e->str);
        return fe_err_val();
    }
    Binding *bd = fe_lookup(c, e->str);
    if (bd) {
        fe_error_expr(c, e, "'%s' is a %s, not a function", e->str,
                      bd->kind == B_INPUT ? "input" : bd->kind == B_PARAM ? "parameter" : "value");
        return fe_err_val();
    }
    const char *names[ARRAY_LEN(builtins)];
    for (int i = 0; i < ARRAY_LEN(builtins); i++)
        names[i] = builtins[i].name;
    const char *hint = fe_closest(e->str, names, ARRAY_LEN(builtins));
    if (hint)
        fe_error_expr(c, e, "unknown function '%s'; did you mean '%s'?", e->str, hint);
    else
        fe_error_expr(c, e, "unknown function '%s'", e->str);
    return fe_err_val();
}

Val fe_call(FeCtx *c, const Expr *e)
{
    const Builtin *b = find(e->str);
    if (!b)
        return unknown_function(c, e);
    return b->fn(c, e, b);
}
