/* Layer sugar lowered to primitives with Keras defaults and names:
 * dense, conv2d (layer and primitive forms), max/avg pooling, batchnorm
 * (both modes joined by a PHASE node, plus moving-statistics updates)
 * and dropout (PHASE of a masked and an identity operand). */
#include "fe.h"

#include <limits.h>
#include <string.h>

/* ---- layer names ---- */

static int find_layer(FeCtx *c, const char *name)
{
    return strmap_get(&c->layer_index, name);
}

static bool layer_name_taken(FeCtx *c, const char *name)
{
    return find_layer(c, name) >= 0;
}

static bool valid_layer_name(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!(('a' <= *s && *s <= 'z') || ('A' <= *s && *s <= 'Z') || ('0' <= *s && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '/'))
            return false;
    return true;
}

/* Name from `name=` or the first free of base, base_1, base_2, ... */
static const char *layer_name(FeCtx *c, CallArgs *a, int i, const char *base)
{
    const char *name;
    if (!fe_arg_str(c, a, i, &name))
        return NULL;
    if (name) {
        const Expr *e = a->v[i];
        if (!valid_layer_name(name)) {
            fe_error_expr(c, e, "layer name \"%s\" may only contain letters, digits, '_', '-' and '/'",
                          name);
            return NULL;
        }
        int prev = find_layer(c, name);
        if (prev >= 0) {
            fe_error_expr(c, e, "duplicate layer name \"%s\"", name);
            fe_note(c, c->layer_locs[prev], 1, "layer \"%s\" was created here", name);
            return NULL;
        }
    } else {
        /* the suffix search resumes where the last one for base stopped */
        int k = strmap_get(&c->layer_next, base);
        name = k > 0 ? arena_printf(c->a, "%s_%d", base, k) : base;
        for (k = k > 0 ? k : 0; layer_name_taken(c, name);)
            name = arena_printf(c->a, "%s_%d", base, ++k);
        strmap_put(&c->layer_next, base, k + 1);
    }
    int n = c->nlayers;
    strmap_put(&c->layer_index, name, n);
    VEC_PUSH(c->layer_locs, n, c->caplocs, a->call->loc);
    VEC_PUSH(c->layers, c->nlayers, c->caplayers, name);
    return name;
}

/* A layer's parameter, which passes the size check as a declared one does. */
static Node *layer_param(FeCtx *c, const char *layer, const char *what, DType dt, Shape s, Init init,
                         bool trainable, ParamRole role, SrcLoc loc)
{
    const char *name = arena_printf(c->a, "%s.%s", layer, what);
    if (!ir_shape_valid(&s)) {
        char t[128];
        fe_error(c, loc, 1, "parameter '%s' would be %s: too many elements (the limit is " IR_MAX_ELEMS_STR ")",
                 name, ir_type_str(dt, &s, t, sizeof t));
        return NULL;
    }
    Node *p = ir_param(c->g, name, dt, s, init, trainable, role, loc);
    strmap_put(&c->params, p->a.name, p->id);
    return p;
}

static Node *float_input(FeCtx *c, CallArgs *a, const char *fn, int min_rank, int max_rank)
{
    Node *x = fe_arg_tensor(c, a, 0, DT_COUNT);
    if (!x)
        return NULL;
    char t[128];
    if (!ir_dtype_is_float(x->dt)) {
        fe_error(c, a->v[0]->start, 1, "%s() needs a floating-point input, got %s", fn,
                 fe_type_str(x, t, sizeof t));
        return NULL;
    }
    int r = x->shape.rank;
    if (r < min_rank || r > max_rank) {
        const Expr *e = a->call;
        if (min_rank == 2 && max_rank == 2)
            fe_error_expr(c, e, "%s() needs a rank-2 input [batch, features], got %s%s", fn,
                          fe_type_str(x, t, sizeof t), r > 2 ? "; use flatten() first" : "");
        else if (min_rank == 4)
            fe_error_expr(c, e, "%s() needs an NHWC input of rank 4, got %s", fn,
                          fe_type_str(x, t, sizeof t));
        else
            fe_error_expr(c, e, "%s() needs an input of rank %d or more, got %s", fn, min_rank,
                          fe_type_str(x, t, sizeof t));
        return NULL;
    }
    return x;
}

/* ---- dense ---- */

enum { D_X, D_UNITS, D_ACT, D_BIAS, D_KINIT, D_BINIT, D_NAME, D_TRAIN };
static const ParamSpec dense_spec[] = {
    {"x", A_TENSOR, true},          {"units", A_INT, true},         {"activation", A_WORD, false},
    {"use_bias", A_BOOL, false},    {"kernel_init|kernel_initializer", A_ANY, false},
    {"bias_init|bias_initializer", A_ANY, false}, {"name", A_STR, false}, {"trainable", A_BOOL, false},
};

Val fe_layer_dense(FeCtx *c, const Expr *e)
{
    CallArgs a;
    int64_t units;
    Activation act;
    bool bias, trainable;
    Init ki, bi;
    if (!fe_bind_args(c, e, "dense", dense_spec, ARRAY_LEN(dense_spec), &a) ||
        !fe_arg_int(c, &a, D_UNITS, 0, 1, INT32_MAX, &units) ||
        !fe_arg_activation(c, &a, D_ACT, &act) || !fe_arg_bool(c, &a, D_BIAS, true, &bias) ||
        !fe_arg_init(c, &a, D_KINIT, INIT_GLOROT_UNIFORM, &ki) ||
        !fe_arg_init(c, &a, D_BINIT, INIT_ZEROS, &bi) ||
        !fe_arg_bool(c, &a, D_TRAIN, true, &trainable))
        return fe_err_val();
    Node *x = float_input(c, &a, "dense", 2, 2);
    const char *name = x ? layer_name(c, &a, D_NAME, "dense") : NULL;
    if (!name)
        return fe_err_val();
    Node *w = layer_param(c, name, "kernel", x->dt, ir_shape2(x->shape.d[1], units), ki, trainable,
                          ROLE_WEIGHT, e->loc);
    Node *y = fe_op2(c, OP_MATMUL, x, w, e->loc);
    if (bias) {
        Node *b = layer_param(c, name, "bias", x->dt, ir_shape1(units), bi, trainable, ROLE_WEIGHT,
                              e->loc);
        y = fe_op2(c, OP_ADD, y, b, e->loc);
    }
    return fe_tensor_val(fe_activate(c, y, act, e->loc));
}

/* ---- convolution ---- */

bool fe_same_pad(int64_t in, int64_t k, int stride, int *lo, int *hi)
{
    int64_t out = (in + stride - 1) / stride;
    int64_t total = (out - 1) * stride + k - in;
    if (total < 0)
        total = 0;
    if (total - total / 2 > INT_MAX)
        return false;
    *lo = (int)(total / 2);
    *hi = (int)(total - total / 2);
    return true;
}

/* The pads of a window op on x (mode and pads from fe_arg_padding);
 * false after an error at e when 'same' padding would not fit the pad
 * attributes (a window far larger than x). */
static bool set_padding(FeCtx *c, const Expr *e, Attrs *at, const Node *x, int64_t kh, int64_t kw,
                        int mode, const int *pads)
{
    memcpy(at->pad, pads, sizeof at->pad);
    if (mode != 1 || x->shape.rank != 4)
        return true;
    if (fe_same_pad(x->shape.d[1], kh, at->stride[0], &at->pad[0], &at->pad[1]) &&
        fe_same_pad(x->shape.d[2], kw, at->stride[1], &at->pad[2], &at->pad[3]))
        return true;
    fe_error_expr(c, e, "padding=\"same\" for a %lldx%lld window needs more than %d rows or columns "
                        "of padding",
                  (long long)kh, (long long)kw, INT_MAX);
    return false;
}

static bool is_number_expr(FeCtx *c, const Expr *e)
{
    switch (e->k) {
    case E_NUM:
        return true;
    case E_UNARY:
        return is_number_expr(c, e->a);
    case E_BINARY:
        return is_number_expr(c, e->a) && is_number_expr(c, e->b);
    case E_NAME: {
        Binding *b = fe_lookup(c, e->str);
        return b && b->v.k == V_NUM;
    }
    default:
        return false;
    }
}

/* conv2d(x, w, stride=1, padding="valid"): the primitive */
static Val conv_primitive(FeCtx *c, const Expr *e)
{
    static const ParamSpec spec[] = {{"x", A_TENSOR, true},
                                     {"w|kernel", A_TENSOR, true},
                                     {"stride|strides", A_ANY, false},
                                     {"padding", A_ANY, false}};
    CallArgs a;
    Attrs at = ir_attrs();
    int pad, pads[4];
    if (!fe_bind_args(c, e, "conv2d", spec, 4, &a) || !fe_arg_pair(c, &a, 2, 1, at.stride) ||
        !fe_arg_padding(c, &a, 3, &pad, pads))
        return fe_err_val();
    Node *in[2] = {fe_arg_tensor(c, &a, 0, DT_COUNT), fe_arg_tensor(c, &a, 1, DT_COUNT)};
    if (!in[0] || !in[1])
        return fe_err_val();
    if (in[1]->shape.rank == 4 &&
        !set_padding(c, e, &at, in[0], in[1]->shape.d[0], in[1]->shape.d[1], pad, pads))
        return fe_err_val();
    return fe_tensor_val(fe_op(c, OP_CONV2D, in, 2, &at, e->loc));
}

enum { C_X, C_FILTERS, C_KERNEL, C_STRIDE, C_PAD, C_ACT, C_BIAS, C_KINIT, C_BINIT, C_NAME, C_TRAIN };
static const ParamSpec conv_spec[] = {
    {"x", A_TENSOR, true},
    {"filters", A_INT, true},
    {"kernel|kernel_size", A_ANY, true},
    {"stride|strides", A_ANY, false},
    {"padding", A_ANY, false},
    {"activation", A_WORD, false},
    {"use_bias", A_BOOL, false},
    {"kernel_init|kernel_initializer", A_ANY, false},
    {"bias_init|bias_initializer", A_ANY, false},
    {"name", A_STR, false},
    {"trainable", A_BOOL, false},
};

/* conv2d(x, filters, kernel, stride=1, padding="valid", ...): the layer */
static Val conv_layer(FeCtx *c, const Expr *e)
{
    CallArgs a;
    int64_t filters;
    int k[2], pad, pads[4];
    Activation act;
    bool bias, trainable;
    Init ki, bi;
    Attrs at = ir_attrs();
    if (!fe_bind_args(c, e, "conv2d", conv_spec, ARRAY_LEN(conv_spec), &a) ||
        !fe_arg_int(c, &a, C_FILTERS, 0, 1, INT32_MAX, &filters) ||
        !fe_arg_pair(c, &a, C_KERNEL, 3, k) || !fe_arg_pair(c, &a, C_STRIDE, 1, at.stride) ||
        !fe_arg_padding(c, &a, C_PAD, &pad, pads) ||
        !fe_arg_activation(c, &a, C_ACT, &act) || !fe_arg_bool(c, &a, C_BIAS, true, &bias) ||
        !fe_arg_init(c, &a, C_KINIT, INIT_GLOROT_UNIFORM, &ki) ||
        !fe_arg_init(c, &a, C_BINIT, INIT_ZEROS, &bi) ||
        !fe_arg_bool(c, &a, C_TRAIN, true, &trainable))
        return fe_err_val();
    Node *x = float_input(c, &a, "conv2d", 4, 4);
    const char *name = x ? layer_name(c, &a, C_NAME, "conv2d") : NULL;
    if (!name)
        return fe_err_val();
    int64_t kd[4] = {k[0], k[1], x->shape.d[3], filters};
    Node *w = layer_param(c, name, "kernel", x->dt, ir_shape(4, kd), ki, trainable, ROLE_WEIGHT,
                          e->loc);
    if (!set_padding(c, e, &at, x, k[0], k[1], pad, pads))
        return fe_err_val();
    Node *in[2] = {x, w};
    Node *y = fe_op(c, OP_CONV2D, in, 2, &at, e->loc);
    if (bias && y) {
        Node *b = layer_param(c, name, "bias", x->dt, ir_shape1(filters), bi, trainable,
                              ROLE_WEIGHT, e->loc);
        y = fe_op2(c, OP_ADD, y, b, e->loc);
    }
    return fe_tensor_val(fe_activate(c, y, act, e->loc));
}

Val fe_layer_conv2d(FeCtx *c, const Expr *e)
{
    int npos = 0;
    const Expr *second = NULL;
    bool kw_filters = false, kw_w = false;
    for (int i = 0; i < e->nargs; i++) {
        const Arg *g = &e->args[i];
        if (!g->kw && npos++ == 1)
            second = g->val;
        if (g->kw && strcmp(g->kw, "filters") == 0)
            kw_filters = true;
        if (g->kw && strcmp(g->kw, "w") == 0)
            kw_w = true;
    }
    if (second ? is_number_expr(c, second) : kw_filters)
        return conv_layer(c, e);
    if (second || kw_w)
        return conv_primitive(c, e);
    fe_error_expr(c, e, "conv2d() needs a kernel tensor, conv2d(x, w), or a number of filters, "
                        "conv2d(x, 32, 3)");
    return fe_err_val();
}

/* ---- pooling ---- */

/* max_pool2d(x, pool=2, stride=pool, padding="valid"), avg_pool2d(...) */
Val fe_layer_pool(FeCtx *c, const Expr *e, Op op)
{
    static const ParamSpec spec[] = {{"x", A_TENSOR, true},
                                     {"pool|pool_size", A_ANY, false},
                                     {"stride|strides", A_ANY, false},
                                     {"padding", A_ANY, false}};
    const char *fn = op == OP_MAX_POOL2D ? "max_pool2d" : "avg_pool2d";
    CallArgs a;
    Attrs at = ir_attrs();
    int pad, pads[4];
    if (!fe_bind_args(c, e, fn, spec, 4, &a) || !fe_arg_pair(c, &a, 1, 2, at.window) ||
        !fe_arg_padding(c, &a, 3, &pad, pads))
        return fe_err_val();
    if (!a.v[2]) {
        at.stride[0] = at.window[0];
        at.stride[1] = at.window[1];
    } else if (!fe_arg_pair(c, &a, 2, 1, at.stride)) {
        return fe_err_val();
    }
    Node *x = float_input(c, &a, fn, 4, 4);
    if (!x)
        return fe_err_val();
    if (!set_padding(c, e, &at, x, at.window[0], at.window[1], pad, pads))
        return fe_err_val();
    return fe_tensor_val(fe_op(c, op, &x, 1, &at, e->loc));
}

/* ---- batch normalization ---- */

typedef struct BnParams {
    Node *gamma, *beta, *mean, *var;
} BnParams;

/* xc * rsqrt(var + eps) * gamma + beta, with xc = x - mean */
static Node *bn_normalize(FeCtx *c, Node *xc, Node *var, const BnParams *p, double eps, SrcLoc loc)
{
    Node *inv = fe_op1(c, OP_RSQRT, fe_op2(c, OP_ADD, var, fe_const_like(c, var, eps, loc), loc), loc);
    Node *y = fe_op2(c, OP_MUL, fe_op2(c, OP_MUL, xc, inv, loc), p->gamma, loc);
    return fe_op2(c, OP_ADD, y, p->beta, loc);
}

/* momentum * moving + (1 - momentum) * batch */
static Node *moving_average(FeCtx *c, Node *moving, Node *batch, double momentum, SrcLoc loc)
{
    Node *a = fe_op2(c, OP_MUL, fe_const_like(c, moving, momentum, loc), moving, loc);
    Node *b = fe_op2(c, OP_MUL, fe_const_like(c, moving, 1 - momentum, loc), batch, loc);
    return fe_op2(c, OP_ADD, a, b, loc);
}

static void bn_params(FeCtx *c, const char *name, Node *x, bool trainable, SrcLoc loc, BnParams *p)
{
    Shape s = ir_shape1(x->shape.d[x->shape.rank - 1]);
    Init ones = {INIT_ONES, 0, 0}, zeros = {INIT_ZEROS, 0, 0};
    p->gamma = layer_param(c, name, "gamma", x->dt, s, ones, trainable, ROLE_WEIGHT, loc);
    p->beta = layer_param(c, name, "beta", x->dt, s, zeros, trainable, ROLE_WEIGHT, loc);
    p->mean = layer_param(c, name, "moving_mean", x->dt, s, zeros, false, ROLE_STATE, loc);
    p->var = layer_param(c, name, "moving_var", x->dt, s, ones, false, ROLE_STATE, loc);
}

Val fe_layer_batchnorm(FeCtx *c, const Expr *e)
{
    static const ParamSpec spec[] = {{"x", A_TENSOR, true},
                                     {"momentum", A_NUM, false},
                                     {"epsilon|eps", A_NUM, false},
                                     {"name", A_STR, false},
                                     {"trainable", A_BOOL, false}};
    CallArgs a;
    double momentum, eps;
    bool trainable;
    if (!fe_bind_args(c, e, "batchnorm", spec, 5, &a) || !fe_arg_num(c, &a, 1, 0.99, &momentum) ||
        !fe_arg_num(c, &a, 2, 1e-3, &eps) || !fe_arg_bool(c, &a, 4, true, &trainable))
        return fe_err_val();
    if (momentum < 0 || momentum > 1) {
        fe_error(c, a.v[1]->start, 1, "argument 'momentum' of batchnorm() must be in [0, 1], got %g",
                 momentum);
        return fe_err_val();
    }
    if (eps <= 0) {
        fe_error(c, a.v[2]->start, 1, "argument 'epsilon' of batchnorm() must be positive, got %g", eps);
        return fe_err_val();
    }
    Node *x = float_input(c, &a, "batchnorm", 2, IR_MAXRANK);
    const char *name = x ? layer_name(c, &a, 3, "batchnorm") : NULL;
    if (!name)
        return fe_err_val();
    SrcLoc loc = e->loc;
    BnParams p;
    bn_params(c, name, x, trainable, loc, &p);
    Attrs red = ir_attrs();
    red.naxes = x->shape.rank - 1;
    for (int i = 0; i < red.naxes; i++)
        red.axes[i] = i;
    Node *mean_b = fe_op(c, OP_REDUCE_MEAN, &x, 1, &red, loc);
    Node *xc = fe_op2(c, OP_SUB, x, mean_b, loc);
    Node *sq = fe_op1(c, OP_SQUARE, xc, loc);
    Node *var_b = fe_op(c, OP_REDUCE_MEAN, &sq, 1, &red, loc);
    Node *train = bn_normalize(c, xc, var_b, &p, eps, loc);
    Node *infer = bn_normalize(c, fe_op2(c, OP_SUB, x, p.mean, loc), p.var, &p, eps, loc);
    Attrs ph = ir_attrs();
    ph.name = name;
    Node *in[2] = {train, infer};
    Node *y = fe_op(c, OP_PHASE, in, 2, &ph, loc);
    Node *new_mean = moving_average(c, p.mean, mean_b, momentum, loc);
    Node *new_var = moving_average(c, p.var, var_b, momentum, loc);
    if (!y || !new_mean || !new_var)
        return fe_err_val();
    ir_add_output(c->g, OUT_UPDATE, arena_printf(c->a, "%s.moving_mean", name), new_mean, p.mean, true);
    ir_add_output(c->g, OUT_UPDATE, arena_printf(c->a, "%s.moving_var", name), new_var, p.var, true);
    return fe_tensor_val(y);
}

/* ---- dropout ---- */

Val fe_layer_dropout(FeCtx *c, const Expr *e)
{
    static const ParamSpec spec[] = {
        {"x", A_TENSOR, true}, {"rate", A_NUM, true}, {"name", A_STR, false}};
    CallArgs a;
    Attrs m = ir_attrs();
    if (!fe_bind_args(c, e, "dropout", spec, 3, &a) || !fe_arg_num(c, &a, 1, 0, &m.value))
        return fe_err_val();
    if (!(m.value >= 0 && m.value < 1)) {
        fe_error(c, a.v[1]->start, 1, "argument 'rate' of dropout() must be in [0, 1), got %g", m.value);
        return fe_err_val();
    }
    Node *x = float_input(c, &a, "dropout", 0, IR_MAXRANK);
    const char *name = x ? layer_name(c, &a, 2, "dropout") : NULL;
    if (!name)
        return fe_err_val();
    if (m.value == 0)
        return fe_tensor_val(x);
    m.stream = c->g->next_stream++;
    Node *mask = fe_op(c, OP_DROPOUT_MASK, &x, 1, &m, e->loc);
    Node *train = fe_op2(c, OP_MUL, x, mask, e->loc);
    Attrs ph = ir_attrs();
    ph.name = name;
    Node *in[2] = {train, x};
    return fe_tensor_val(fe_op(c, OP_PHASE, in, 2, &ph, e->loc));
}
