/* Layer sugar lowered to primitives with Keras defaults and names:
 * dense, embedding, conv2d (layer and primitive forms), max/avg pooling, batchnorm
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

/* ---- kernel regularizers ---- */

/* The factor of argument `kw` (or positional k) of regularizer call r,
 * def when absent. */
static bool reg_factor(FeCtx *c, const Expr *r, const char *kw, int k, double def, double *out)
{
    *out = def;
    for (int i = 0; i < r->nargs; i++) {
        const Arg *g = &r->args[i];
        if (g->kw ? strcmp(g->kw, kw) != 0 : i != k)
            continue;
        Val v;
        if (g->val->k == E_LIST || g->val->k == E_STR || !fe_const_num(c, g->val, &v) || !(v.num >= 0)) {
            fe_error_expr(c, g->val, "%s(): the factor must be a number >= 0", r->str);
            return false;
        }
        *out = v.num;
    }
    return true;
}

/* factor * sum(f(w)) over every axis, f = square or abs */
static Node *penalty(FeCtx *c, Node *w, Op f, double factor, SrcLoc loc)
{
    Node *t = fe_reduce_all(c, OP_REDUCE_SUM, fe_op1(c, f, w, loc), loc);
    return fe_op2(c, OP_MUL, t, fe_const_like(c, w, factor, loc), loc);
}

bool fe_regularize(FeCtx *c, const Expr *e, Node *w, SrcLoc loc)
{
    if (!e || e->k == E_NONE)
        return true;
    bool l1 = e->k == E_CALL && !strcmp(e->str, "l1"), l2 = e->k == E_CALL && !strcmp(e->str, "l2");
    bool both = e->k == E_CALL && !strcmp(e->str, "l1_l2");
    if (!l1 && !l2 && !both) {
        fe_error_expr(c, e, "kernel_regularizer must be l2(factor), l1(factor), l1_l2(l1=, l2=) or none");
        return false;
    }
    for (int i = 0; i < e->nargs; i++)
        if ((e->args[i].kw && strcmp(e->args[i].kw, l1 ? "l1" : "l2") && !(both && !strcmp(e->args[i].kw, "l1"))) ||
            i >= (both ? 2 : 1)) {
            fe_error_expr(c, e->args[i].val, "%s() takes %s", e->str, both ? "l1= and l2=" : l1 ? "one factor, l1=" : "one factor, l2=");
            return false;
        }
    double f1 = 0, f2 = 0;
    if ((l1 || both) && !reg_factor(c, e, "l1", 0, 0.01, &f1))
        return false;
    if ((l2 || both) && !reg_factor(c, e, "l2", both ? 1 : 0, 0.01, &f2))
        return false;
    Node *p = NULL;
    if (f1 > 0)
        p = penalty(c, w, OP_ABS, f1, e->loc);
    if (f2 > 0) {
        Node *q = penalty(c, w, OP_SQUARE, f2, e->loc);
        p = p ? fe_op2(c, OP_ADD, p, q, e->loc) : q;
    }
    (void)loc;
    if (p) {
        p->label = arena_printf(c->g->arena, "%s_regularizer", w->a.name);
        VEC_PUSH(c->penalties, c->npenalties, c->cappenalties, p);
    }
    return true;
}

/* ---- dense ---- */

enum { D_X, D_UNITS, D_ACT, D_BIAS, D_KINIT, D_BINIT, D_NAME, D_TRAIN, D_KREG };
static const ParamSpec dense_spec[] = {
    {"x", A_TENSOR, true},          {"units", A_INT, true},         {"activation", A_WORD, false},
    {"use_bias", A_BOOL, false},    {"kernel_init|kernel_initializer", A_ANY, false},
    {"bias_init|bias_initializer", A_ANY, false}, {"name", A_STR, false}, {"trainable", A_BOOL, false},
    {"kernel_regularizer", A_ANY, false},
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
    Node *x = float_input(c, &a, "dense", 2, IR_MAXRANK);
    const char *name = x ? layer_name(c, &a, D_NAME, "dense") : NULL;
    if (!name)
        return fe_err_val();
    Node *w = layer_param(c, name, "kernel", x->dt, ir_shape2(x->shape.d[x->shape.rank - 1], units), ki,
                          trainable, ROLE_WEIGHT, e->loc);
    if (!w || !fe_regularize(c, a.v[D_KREG], w, e->loc))
        return fe_err_val();
    Node *y = fe_op2(c, OP_MATMUL, x, w, e->loc);
    if (bias) {
        Node *b = layer_param(c, name, "bias", x->dt, ir_shape1(units), bi, trainable, ROLE_WEIGHT,
                              e->loc);
        y = fe_op2(c, OP_ADD, y, b, e->loc);
    }
    return fe_tensor_val(fe_activate(c, y, act, e->loc));
}

/* ---- embedding ---- */

enum { EM_TOKENS, EM_IN, EM_OUT, EM_INIT, EM_DTYPE, EM_NAME, EM_TRAIN };
static const ParamSpec embedding_spec[] = {
    {"tokens|x|inputs", A_TENSOR, true}, {"input_dim", A_INT, true}, {"output_dim", A_INT, true},
    {"embeddings_init|embeddings_initializer", A_ANY, false}, {"dtype", A_WORD, false},
    {"name", A_STR, false}, {"trainable", A_BOOL, false},
};

/* embedding(tokens, input_dim, output_dim): gather(<name>.embeddings,
 * tokens) with the table [input_dim, output_dim] initialised uniform in
 * [-0.05, 0.05] (Keras's "uniform") */
Val fe_layer_embedding(FeCtx *c, const Expr *e)
{
    CallArgs a;
    int64_t in, out;
    Init init;
    DType dt;
    bool trainable;
    if (!fe_bind_args(c, e, "embedding", embedding_spec, ARRAY_LEN(embedding_spec), &a) ||
        !fe_arg_int(c, &a, EM_IN, 0, 1, INT32_MAX, &in) || !fe_arg_int(c, &a, EM_OUT, 0, 1, INT32_MAX, &out) ||
        !fe_arg_init(c, &a, EM_INIT, INIT_UNIFORM, &init) || !fe_arg_dtype(c, &a, EM_DTYPE, DT_F32, &dt) ||
        !fe_arg_bool(c, &a, EM_TRAIN, true, &trainable))
        return fe_err_val();
    if (!a.v[EM_INIT])
        init = (Init){INIT_UNIFORM, -0.05, 0.05};
    if (!ir_dtype_is_float(dt)) {
        fe_error(c, a.v[EM_DTYPE]->start, a.v[EM_DTYPE]->span, "embedding() tables are f32 or f64, not %s",
                 ir_dtype_name(dt));
        return fe_err_val();
    }
    Node *tokens = fe_arg_tensor(c, &a, EM_TOKENS, DT_I32);
    const char *name = tokens ? layer_name(c, &a, EM_NAME, "embedding") : NULL;
    if (!name)
        return fe_err_val();
    Node *w = layer_param(c, name, "embeddings", dt, ir_shape2(in, out), init, trainable, ROLE_WEIGHT, e->loc);
    Node *ops[2] = {w, tokens};
    Attrs at = ir_attrs();
    at.naxes = 1;
    return w ? fe_tensor_val(fe_op(c, OP_GATHER, ops, 2, &at, e->loc)) : fe_err_val();
}

/* ---- layer normalization ---- */

enum { LN_X, LN_AXIS, LN_EPS, LN_CENTER, LN_SCALE, LN_NAME, LN_TRAIN };
static const ParamSpec layer_norm_spec[] = {
    {"x", A_TENSOR, true},        {"axis|axes", A_ANY, false}, {"epsilon|eps", A_NUM, false},
    {"center", A_BOOL, false},    {"scale", A_BOOL, false},    {"name", A_STR, false},
    {"trainable", A_BOOL, false},
};

/* A parameter over the normalised axes red[] of x, reshaped to broadcast
 * against x (1 on the other axes after the first normalised one). */
static Node *norm_param(FeCtx *c, const char *name, const char *what, Node *x, const bool *red, Init init,
                        bool trainable, SrcLoc loc)
{
    Shape ps = ir_shape0(), bs = ir_shape0();
    int first = -1;
    for (int k = 0; k < x->shape.rank; k++) {
        if (red[k]) {
            ps.d[ps.rank++] = x->shape.d[k];
            if (first < 0)
                first = k;
        }
        if (first >= 0)
            bs.d[bs.rank++] = red[k] ? x->shape.d[k] : 1;
    }
    Node *p = layer_param(c, name, what, x->dt, ps, init, trainable, ROLE_WEIGHT, loc);
    if (!p || ir_shape_eq(&ps, &bs))
        return p;
    Attrs at = ir_attrs();
    at.shape = bs;
    return fe_op(c, OP_RESHAPE, &p, 1, &at, loc);
}

/* layer_norm(x, axis=-1, epsilon=1e-3): per example, over the axes,
 * (x - mean) * rsqrt(var + epsilon) * gamma + beta (Keras's
 * LayerNormalization: biased variance, gamma ones, beta zeros) */
Val fe_layer_layer_norm(FeCtx *c, const Expr *e)
{
    CallArgs a;
    double eps;
    bool center, scale, trainable;
    if (!fe_bind_args(c, e, "layer_norm", layer_norm_spec, ARRAY_LEN(layer_norm_spec), &a) ||
        !fe_arg_num(c, &a, LN_EPS, 1e-3, &eps) || !fe_arg_bool(c, &a, LN_CENTER, true, &center) ||
        !fe_arg_bool(c, &a, LN_SCALE, true, &scale) || !fe_arg_bool(c, &a, LN_TRAIN, true, &trainable))
        return fe_err_val();
    if (eps <= 0) {
        fe_error(c, a.v[LN_EPS]->start, 1, "argument 'epsilon' of layer_norm() must be positive, got %g", eps);
        return fe_err_val();
    }
    Node *x = float_input(c, &a, "layer_norm", 1, IR_MAXRANK);
    Attrs red = ir_attrs();
    red.keepdims = true;
    if (!x)
        return fe_err_val();
    if (!a.v[LN_AXIS]) {
        red.naxes = 1;
        red.axes[0] = x->shape.rank - 1;
    } else if (!fe_arg_axes(c, &a, LN_AXIS, x, red.axes, &red.naxes)) {
        return fe_err_val();
    }
    bool on[IR_MAXRANK] = {false};
    for (int k = 0; k < red.naxes; k++) {
        if (ir_dim_is_batch(x->shape.d[red.axes[k]])) {
            const Expr *at = a.v[LN_AXIS] ? a.v[LN_AXIS] : e;
            fe_error(c, at->start, 1, "layer_norm() normalises each example: its axes cannot include N");
            return fe_err_val();
        }
        on[red.axes[k]] = true;
    }
    const char *name = layer_name(c, &a, LN_NAME, "layer_norm");
    if (!name)
        return fe_err_val();
    SrcLoc l = e->loc;
    Node *mean = fe_op(c, OP_REDUCE_MEAN, &x, 1, &red, l);
    Node *xc = fe_op2(c, OP_SUB, x, mean, l);
    Node *sq = fe_op1(c, OP_SQUARE, xc, l);
    Node *var = fe_op(c, OP_REDUCE_MEAN, &sq, 1, &red, l);
    Node *y = fe_op2(c, OP_MUL, xc, fe_op1(c, OP_RSQRT, fe_op2(c, OP_ADD, var, fe_const_like(c, x, eps, l), l), l), l);
    if (scale)
        y = fe_op2(c, OP_MUL, y, norm_param(c, name, "gamma", x, on, (Init){INIT_ONES, 0, 0}, trainable, l), l);
    if (center)
        y = fe_op2(c, OP_ADD, y, norm_param(c, name, "beta", x, on, (Init){INIT_ZEROS, 0, 0}, trainable, l), l);
    return y ? fe_tensor_val(y) : fe_err_val();
}

/* ---- global pooling, upsampling ---- */

/* global_avg_pool2d(x, keepdims=false) / global_max_pool2d: the mean or
 * maximum over H and W of an NHWC input */
Val fe_layer_global_pool(FeCtx *c, const Expr *e, Op op)
{
    static const ParamSpec spec[] = {{"x", A_TENSOR, true}, {"keepdims", A_BOOL, false}};
    const char *fn = op == OP_REDUCE_MEAN ? "global_avg_pool2d" : "global_max_pool2d";
    CallArgs a;
    Attrs at = ir_attrs();
    if (!fe_bind_args(c, e, fn, spec, 2, &a) || !fe_arg_bool(c, &a, 1, false, &at.keepdims))
        return fe_err_val();
    Node *x = float_input(c, &a, fn, 4, 4);
    if (!x)
        return fe_err_val();
    at.naxes = 2;
    at.axes[0] = 1;
    at.axes[1] = 2;
    return fe_tensor_val(fe_op(c, op, &x, 1, &at, e->loc));
}

/* upsampling2d(x, size=2): nearest neighbour, each pixel repeated
 * size[0] x size[1] times: reshape [N,H,1,W,1,C], broadcast
 * [N,H,sh,W,sw,C], reshape [N,H*sh,W*sw,C] */
Val fe_layer_upsampling2d(FeCtx *c, const Expr *e)
{
    static const ParamSpec spec[] = {{"x", A_TENSOR, true}, {"size", A_ANY, false}};
    CallArgs a;
    int sz[2];
    if (!fe_bind_args(c, e, "upsampling2d", spec, 2, &a) || !fe_arg_pair(c, &a, 1, 2, sz))
        return fe_err_val();
    Node *x = float_input(c, &a, "upsampling2d", 4, 4);
    if (!x)
        return fe_err_val();
    const int64_t *d = x->shape.d;
    int64_t h, w;
    if (mul_overflow_i64(d[1], sz[0], &h) || mul_overflow_i64(d[2], sz[1], &w)) {
        fe_error_expr(c, e, "upsampling2d(): the upsampled size overflows");
        return fe_err_val();
    }
    Attrs r1 = ir_attrs(), b = ir_attrs(), r2 = ir_attrs();
    int64_t s1[6] = {d[0], d[1], 1, d[2], 1, d[3]}, s2[6] = {d[0], d[1], sz[0], d[2], sz[1], d[3]};
    int64_t s3[4] = {d[0], h, w, d[3]};
    r1.shape = ir_shape(6, s1);
    b.shape = ir_shape(6, s2);
    r2.shape = ir_shape(4, s3);
    SrcLoc l = e->loc;
    Node *y = fe_op(c, OP_RESHAPE, &x, 1, &r1, l);
    y = y ? fe_op(c, OP_BROADCAST, &y, 1, &b, l) : NULL;
    y = y ? fe_op(c, OP_RESHAPE, &y, 1, &r2, l) : NULL;
    return y ? fe_tensor_val(y) : fe_err_val();
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

enum { C_X, C_FILTERS, C_KERNEL, C_STRIDE, C_PAD, C_ACT, C_BIAS, C_KINIT, C_BINIT, C_NAME, C_TRAIN, C_KREG };
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
    {"kernel_regularizer", A_ANY, false},
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
    if (!w || !fe_regularize(c, a.v[C_KREG], w, e->loc) || !set_padding(c, e, &at, x, k[0], k[1], pad, pads))
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

/* ---- conv1d, conv2d_transpose ---- */

static const char *const padding_words[] = {"valid", "same", NULL}; /* conv2d_transpose: no list */
static const char *const padding_words_1d[] = {"valid", "same", "causal", NULL};

/* The reshape of x to shape s (d[] of rank r). */
static Node *reshaped(FeCtx *c, Node *x, int r, const int64_t *d, SrcLoc loc)
{
    Attrs at = ir_attrs();
    at.shape = ir_shape(r, d);
    return x ? fe_op(c, OP_RESHAPE, &x, 1, &at, loc) : NULL;
}

/* Bias and activation of a convolution layer's result y. */
static Val conv_finish(FeCtx *c, Node *y, const char *name, bool bias, int64_t filters, Init bi, bool trainable,
                       Activation act, SrcLoc loc)
{
    if (bias && y) {
        Node *b = layer_param(c, name, "bias", y->dt, ir_shape1(filters), bi, trainable, ROLE_WEIGHT, loc);
        y = b ? fe_op2(c, OP_ADD, y, b, loc) : NULL;
    }
    return y ? fe_tensor_val(fe_activate(c, y, act, loc)) : fe_err_val();
}

/* conv1d(x, filters, kernel, stride=1, padding="valid", ...): on
 * [N, T, C], kernel <name>.kernel [kernel, C, filters] (Keras's layout);
 * lowered to conv2d of the [N, 1, T, C] view with the [1, kernel, C,
 * filters] view of the kernel, reshaped back to [N, T', filters].
 * padding "causal" pads kernel - 1 steps in front only. */
Val fe_layer_conv1d(FeCtx *c, const Expr *e)
{
    CallArgs a;
    int64_t filters, k, stride;
    int pad;
    Activation act;
    bool bias, trainable;
    Init ki, bi;
    if (!fe_bind_args(c, e, "conv1d", conv_spec, ARRAY_LEN(conv_spec), &a) ||
        !fe_arg_int(c, &a, C_FILTERS, 0, 1, INT32_MAX, &filters) || !fe_arg_int(c, &a, C_KERNEL, 0, 1, 1 << 20, &k) ||
        !fe_arg_int(c, &a, C_STRIDE, 1, 1, 1 << 20, &stride) ||
        !fe_arg_word(c, &a, C_PAD, padding_words_1d, 0, &pad) || !fe_arg_activation(c, &a, C_ACT, &act) ||
        !fe_arg_bool(c, &a, C_BIAS, true, &bias) || !fe_arg_init(c, &a, C_KINIT, INIT_GLOROT_UNIFORM, &ki) ||
        !fe_arg_init(c, &a, C_BINIT, INIT_ZEROS, &bi) || !fe_arg_bool(c, &a, C_TRAIN, true, &trainable))
        return fe_err_val();
    Node *x = float_input(c, &a, "conv1d", 3, 3);
    const char *name = x ? layer_name(c, &a, C_NAME, "conv1d") : NULL;
    if (!name)
        return fe_err_val();
    const int64_t *d = x->shape.d;
    Attrs at = ir_attrs();
    at.stride[1] = (int)stride;
    if (pad == 1 && !fe_same_pad(d[1], k, (int)stride, &at.pad[2], &at.pad[3])) {
        fe_error_expr(c, e, "padding=\"same\" for a kernel of %lld needs too much padding", (long long)k);
        return fe_err_val();
    }
    if (pad == 2)
        at.pad[2] = (int)(k - 1);
    int64_t kd[3] = {k, d[2], filters};
    Node *w = layer_param(c, name, "kernel", x->dt, ir_shape(3, kd), ki, trainable, ROLE_WEIGHT, e->loc);
    if (!w || !fe_regularize(c, a.v[C_KREG], w, e->loc))
        return fe_err_val();
    int64_t xv[4] = {d[0], 1, d[1], d[2]}, wv[4] = {1, k, d[2], filters};
    Node *in[2] = {reshaped(c, x, 4, xv, e->loc), reshaped(c, w, 4, wv, e->loc)};
    Node *y = in[0] && in[1] ? fe_op(c, OP_CONV2D, in, 2, &at, e->loc) : NULL;
    if (y) {
        int64_t yv[3] = {d[0], y->shape.d[2], filters};
        y = reshaped(c, y, 3, yv, e->loc);
    }
    return conv_finish(c, y, name, bias, filters, bi, trainable, act, e->loc);
}

/* The output size of a transposed convolution along one axis, and its
 * pads (those of the convolution it is the adjoint of). */
static bool transpose_size(int64_t in, int k, int s, bool same, int64_t *out, int *lo, int *hi)
{
    *lo = *hi = 0;
    if (same)
        return !mul_overflow_i64(in, s, out) && *out <= IR_MAX_ELEMS && fe_same_pad(*out, k, s, lo, hi);
    return !mul_overflow_i64(in - 1, s, out) && !__builtin_add_overflow(*out, (int64_t)k, out) && *out <= IR_MAX_ELEMS;
}

/* conv2d_transpose(x, filters, kernel, stride=1, padding="valid", ...):
 * the adjoint of a convolution, conv2d_grad_input(x, <name>.kernel) with
 * the kernel [kh, kw, filters, C] (Keras's layout); the output is
 * [N, (H-1)*s + kh, (W-1)*s + kw, filters] ("valid") or [N, H*s, W*s,
 * filters] ("same"). */
Val fe_layer_conv2d_transpose(FeCtx *c, const Expr *e)
{
    CallArgs a;
    int64_t filters;
    int k[2], pad;
    Activation act;
    bool bias, trainable;
    Init ki, bi;
    Attrs at = ir_attrs();
    if (!fe_bind_args(c, e, "conv2d_transpose", conv_spec, ARRAY_LEN(conv_spec), &a) ||
        !fe_arg_int(c, &a, C_FILTERS, 0, 1, INT32_MAX, &filters) || !fe_arg_pair(c, &a, C_KERNEL, 3, k) ||
        !fe_arg_pair(c, &a, C_STRIDE, 1, at.stride) || !fe_arg_word(c, &a, C_PAD, padding_words, 0, &pad) ||
        !fe_arg_activation(c, &a, C_ACT, &act) || !fe_arg_bool(c, &a, C_BIAS, true, &bias) ||
        !fe_arg_init(c, &a, C_KINIT, INIT_GLOROT_UNIFORM, &ki) || !fe_arg_init(c, &a, C_BINIT, INIT_ZEROS, &bi) ||
        !fe_arg_bool(c, &a, C_TRAIN, true, &trainable))
        return fe_err_val();
    Node *x = float_input(c, &a, "conv2d_transpose", 4, 4);
    const char *name = x ? layer_name(c, &a, C_NAME, "conv2d_transpose") : NULL;
    if (!name)
        return fe_err_val();
    int64_t od[4] = {x->shape.d[0], 0, 0, filters};
    if (!transpose_size(x->shape.d[1], k[0], at.stride[0], pad == 1, &od[1], &at.pad[0], &at.pad[1]) ||
        !transpose_size(x->shape.d[2], k[1], at.stride[1], pad == 1, &od[2], &at.pad[2], &at.pad[3])) {
        fe_error_expr(c, e, "conv2d_transpose(): the output size overflows");
        return fe_err_val();
    }
    at.shape = ir_shape(4, od);
    int64_t kd[4] = {k[0], k[1], filters, x->shape.d[3]};
    Node *w = layer_param(c, name, "kernel", x->dt, ir_shape(4, kd), ki, trainable, ROLE_WEIGHT, e->loc);
    if (!w || !fe_regularize(c, a.v[C_KREG], w, e->loc))
        return fe_err_val();
    Node *in[2] = {x, w};
    Node *y = fe_op(c, OP_CONV2D_GRAD_INPUT, in, 2, &at, e->loc);
    return conv_finish(c, y, name, bias, filters, bi, trainable, act, e->loc);
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

/* The mean over the batch (and the spatial axes); with the train block's
 * sync_batchnorm, over the global batch of a data-parallel job. */
static Node *batch_stat(FeCtx *c, Node *x, const Attrs *red, SrcLoc loc)
{
    Node *m = fe_op(c, OP_REDUCE_MEAN, &x, 1, red, loc);
    return c->sync_batchnorm ? fe_op1(c, OP_REPLICA_MEAN, m, loc) : m;
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
    Node *mean_b = batch_stat(c, x, &red, loc);
    Node *xc = fe_op2(c, OP_SUB, x, mean_b, loc);
    Node *sq = fe_op1(c, OP_SQUARE, xc, loc);
    Node *var_b = batch_stat(c, sq, &red, loc);
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

const char *fe_layer_name(FeCtx *c, CallArgs *a, int i, const char *base)
{
    return layer_name(c, a, i, base);
}

Node *fe_layer_param(FeCtx *c, const char *layer, const char *what, DType dt, Shape s, Init init, bool trainable,
                     ParamRole role, SrcLoc loc)
{
    return layer_param(c, layer, what, dt, s, init, trainable, role, loc);
}
