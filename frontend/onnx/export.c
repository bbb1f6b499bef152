/* ONNX export: an inference graph (the predict recipe, unfused) and its
 * parameter values become an ONNX model of opset 13. The graph keeps
 * modelc's layouts at its inputs and outputs (NHWC images); each
 * convolution and pooling is wrapped in the two transposes ONNX's NCHW
 * operators need, and HWIO kernels are transposed to OIHW by a node on
 * the initializer. Every output value gets an Identity under its name. */
#include "onnx.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "onnx.pb-c.h"

#define OPSET 13

typedef struct Ex {
    Arena *a;
    Diags *d;
    const char *file;
    Onnx__NodeProto **nodes;
    size_t nn, ncap;
    Onnx__TensorProto **inits;
    size_t ni, icap;
    int tmp;
    const char **name; /* ONNX value name of each IR node */
    const Graph *g;
    int *uses;         /* readers of each IR node (operands and outputs) */
    bool *inner;       /* nodes inside a recognised batch normalization */
    const TensorMap *params;
} Ex;

static bool xfail(Ex *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool xfail(Ex *e, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    diag_error(e->d, (SrcLoc){e->file, 0, 0}, "%s", msg);
    return false;
}

static const char *tmp(Ex *e)
{
    return arena_printf(e->a, "_t%d", ++e->tmp);
}

static Onnx__NodeProto *node(Ex *e, const char *op, const char *const *in, int nin, const char *out)
{
    Onnx__NodeProto *n = arena_alloc(e->a, sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = arena_strdup(e->a, op);
    n->n_input = (size_t)nin;
    n->input = arena_alloc(e->a, (size_t)(nin + 1) * sizeof(char *));
    for (int i = 0; i < nin; i++)
        n->input[i] = arena_strdup(e->a, in[i]);
    n->n_output = 1;
    n->output = arena_alloc(e->a, sizeof(char *));
    n->output[0] = arena_strdup(e->a, out);
    n->name = arena_printf(e->a, "%s_%zu", op, e->nn);
    if (e->nn == e->ncap) {
        e->ncap = e->ncap ? 2 * e->ncap : 64;
        e->nodes = xrealloc(e->nodes, e->ncap * sizeof *e->nodes);
    }
    e->nodes[e->nn++] = n;
    return n;
}

static Onnx__AttributeProto *new_attr(Ex *e, Onnx__NodeProto *n, const char *name,
                                      Onnx__AttributeProto__AttributeType type)
{
    Onnx__AttributeProto *a = arena_alloc(e->a, sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = arena_strdup(e->a, name);
    a->has_type = true;
    a->type = type;
    Onnx__AttributeProto **v = arena_alloc(e->a, (n->n_attribute + 1) * sizeof *v);
    if (n->n_attribute)
        memcpy(v, n->attribute, n->n_attribute * sizeof *v);
    v[n->n_attribute++] = a;
    n->attribute = v;
    return a;
}

static void attr_i(Ex *e, Onnx__NodeProto *n, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = new_attr(e, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = true;
    a->i = v;
}

static void attr_f(Ex *e, Onnx__NodeProto *n, const char *name, double v)
{
    Onnx__AttributeProto *a = new_attr(e, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = true;
    a->f = (float)v;
}

static void attr_ints(Ex *e, Onnx__NodeProto *n, const char *name, const int64_t *v, int cnt)
{
    Onnx__AttributeProto *a = new_attr(e, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->n_ints = (size_t)cnt;
    a->ints = arena_alloc(e->a, (size_t)(cnt + 1) * sizeof(int64_t));
    if (cnt)
        memcpy(a->ints, v, (size_t)cnt * sizeof(int64_t));
}

static int elem_type(DType dt)
{
    return dt == DT_F64 ? ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE
           : dt == DT_I32 ? ONNX__TENSOR_PROTO__DATA_TYPE__INT32
                          : ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
}

static size_t dt_size(DType dt)
{
    return dt == DT_F64 ? 8 : 4;
}

/* An initializer of raw little-endian bytes. */
static const char *init_raw(Ex *e, const char *name, int type, int rank, const int64_t *dims, const void *data,
                            size_t bytes)
{
    Onnx__TensorProto *t = arena_alloc(e->a, sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = arena_strdup(e->a, name);
    t->n_dims = (size_t)rank;
    t->dims = arena_alloc(e->a, (size_t)(rank + 1) * sizeof(int64_t));
    if (rank)
        memcpy(t->dims, dims, (size_t)rank * sizeof(int64_t));
    t->has_data_type = true;
    t->data_type = type;
    t->has_raw_data = true;
    t->raw_data.len = bytes;
    t->raw_data.data = arena_alloc(e->a, bytes ? bytes : 1);
    if (bytes)
        memcpy(t->raw_data.data, data, bytes);
    if (e->ni == e->icap) {
        e->icap = e->icap ? 2 * e->icap : 64;
        e->inits = xrealloc(e->inits, e->icap * sizeof *e->inits);
    }
    e->inits[e->ni++] = t;
    return t->name;
}

static const char *ints_init(Ex *e, const int64_t *v, int n)
{
    int64_t d = n;
    return init_raw(e, tmp(e), ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 1, &d, v, (size_t)n * sizeof(int64_t));
}

/* A scalar of dtype dt. */
static const char *scalar_init(Ex *e, DType dt, double v)
{
    if (dt == DT_F64)
        return init_raw(e, tmp(e), elem_type(dt), 0, NULL, &v, 8);
    if (dt == DT_I32) {
        int32_t i = (int32_t)v;
        return init_raw(e, tmp(e), elem_type(dt), 0, NULL, &i, 4);
    }
    float f = (float)v;
    return init_raw(e, tmp(e), elem_type(dt), 0, NULL, &f, 4);
}

static const char *un(Ex *e, const char *op, const char *x)
{
    const char *o = tmp(e);
    node(e, op, &x, 1, o);
    return o;
}

static const char *bin(Ex *e, const char *op, const char *x, const char *y)
{
    const char *in[2] = {x, y}, *o = tmp(e);
    node(e, op, in, 2, o);
    return o;
}

static const char *transpose(Ex *e, const char *x, const int64_t *perm, int rank)
{
    const char *o = tmp(e);
    attr_ints(e, node(e, "Transpose", &x, 1, o), "perm", perm, rank);
    return o;
}

static const int64_t nhwc_to_nchw[4] = {0, 3, 1, 2}, nchw_to_nhwc[4] = {0, 2, 3, 1};

static Onnx__ValueInfoProto *value_info(Ex *e, const char *name, DType dt, const Shape *s)
{
    Onnx__ValueInfoProto *v = arena_alloc(e->a, sizeof *v);
    onnx__value_info_proto__init(v);
    v->name = arena_strdup(e->a, name);
    Onnx__TypeProto *t = arena_alloc(e->a, sizeof *t);
    onnx__type_proto__init(t);
    Onnx__TypeProto__Tensor *tt = arena_alloc(e->a, sizeof *tt);
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = true;
    tt->elem_type = elem_type(dt);
    Onnx__TensorShapeProto *sh = arena_alloc(e->a, sizeof *sh);
    onnx__tensor_shape_proto__init(sh);
    sh->n_dim = (size_t)s->rank;
    sh->dim = arena_alloc(e->a, (size_t)(s->rank + 1) * sizeof *sh->dim);
    for (int i = 0; i < s->rank; i++) {
        Onnx__TensorShapeProto__Dimension *d = arena_alloc(e->a, sizeof *d);
        onnx__tensor_shape_proto__dimension__init(d);
        if (ir_dim_is_batch(s->d[i])) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            char nk[32];
            if (s->d[i] == IR_DIM_N)
                snprintf(nk, sizeof nk, "N");
            else
                snprintf(nk, sizeof nk, "N*%lld", (long long)ir_dim_factor(s->d[i]));
            d->dim_param = arena_strdup(e->a, nk);
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = s->d[i];
        }
        sh->dim[i] = d;
    }
    tt->shape = sh;
    t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    t->tensor_type = tt;
    v->type = t;
    return v;
}

static const char *param_init(Ex *e, const Node *p, const TensorMap *params)
{
    Tensor *t = rt_map_get(params, p->a.name);
    if (!t) {
        xfail(e, "parameter '%s' has no value", p->a.name);
        return NULL;
    }
    Tensor *c = t->dt == p->dt ? t : rt_tensor_cast(t, p->dt);
    const char *name = init_raw(e, p->a.name, elem_type(p->dt), t->rank, t->dims, c->data,
                                (size_t)c->numel * dt_size(p->dt));
    if (c != t)
        rt_tensor_free(c);
    return name;
}

static const char *const_init(Ex *e, const Node *k)
{
    if (ir_shape_has_n(&k->shape) || k->shape.rank == 0)
        return scalar_init(e, k->dt, k->a.value);
    int64_t n = 1;
    for (int i = 0; i < k->shape.rank; i++)
        n *= k->shape.d[i];
    size_t es = dt_size(k->dt);
    unsigned char *buf = arena_alloc(e->a, (size_t)n * es + 1);
    for (int64_t i = 0; i < n; i++) {
        if (k->dt == DT_F64)
            memcpy(buf + i * 8, &k->a.value, 8);
        else if (k->dt == DT_I32) {
            int32_t v = (int32_t)k->a.value;
            memcpy(buf + i * 4, &v, 4);
        } else {
            float v = (float)k->a.value;
            memcpy(buf + i * 4, &v, 4);
        }
    }
    return init_raw(e, tmp(e), elem_type(k->dt), k->shape.rank, k->shape.d, buf, (size_t)n * es);
}

static void pads_strides(Ex *e, Onnx__NodeProto *n, const Attrs *a)
{
    int64_t pads[4] = {a->pad[0], a->pad[2], a->pad[1], a->pad[3]}, st[2] = {a->stride[0], a->stride[1]};
    attr_ints(e, n, "strides", st, 2);
    attr_ints(e, n, "pads", pads, 4);
}

static const char *axes_init(Ex *e, const Node *x)
{
    int64_t ax[IR_MAXRANK];
    for (int i = 0; i < x->a.naxes; i++)
        ax[i] = x->a.axes[i];
    return ints_init(e, ax, x->a.naxes);
}

/* The only reader of node x, or NULL. */
static const Node *sole_reader(Ex *e, const Node *x)
{
    if (e->uses[x->id] != 1)
        return NULL;
    for (int i = x->id + 1; i < e->g->nnodes; i++)
        for (int j = 0; j < e->g->nodes[i]->nin; j++)
            if (e->g->nodes[i]->in[j] == x)
                return e->g->nodes[i];
    return NULL;
}

/* conv2d between transposes to NCHW and back; a bias added next (a
 * vector of the output channels) becomes Conv's third input, and an
 * activation after it runs before the transpose back, so that the
 * pattern reads as one layer. The nodes taken along get the result's
 * name. */
static const char *export_conv(Ex *e, const Node *x, const char *a, const char *b)
{
    static const int64_t hwio_to_oihw[4] = {3, 2, 0, 1};
    const char *w[3] = {transpose(e, a, nhwc_to_nchw, 4), transpose(e, b, hwio_to_oihw, 4), NULL};
    int nw = 2;
    const Node *last = x, *r = x->a.alpha == 1 ? sole_reader(e, x) : NULL;
    int64_t C = x->shape.d[3];
    if (r && r->op == OP_ADD) {
        const Node *bias = r->in[0] == x ? r->in[1] : r->in[0];
        if (bias->op == OP_PARAM && bias->shape.rank == 1 && bias->shape.d[0] == C) {
            if (!e->name[bias->id]) /* declared after the convolution */
                e->name[bias->id] = param_init(e, bias, e->params);
            if (!e->name[bias->id])
                return NULL;
            w[nw++] = e->name[bias->id];
            last = r;
            r = sole_reader(e, r);
        }
    }
    const char *c = tmp(e);
    Onnx__NodeProto *n = node(e, "Conv", w, nw, c);
    int64_t k[2] = {x->in[1]->shape.d[0], x->in[1]->shape.d[1]};
    attr_ints(e, n, "kernel_shape", k, 2);
    pads_strides(e, n, &x->a);
    if (r && (r->op == OP_RELU || r->op == OP_SIGMOID || r->op == OP_TANH)) {
        c = un(e, r->op == OP_RELU ? "Relu" : r->op == OP_SIGMOID ? "Sigmoid" : "Tanh", c);
        last = r;
    }
    const char *o = transpose(e, c, nchw_to_nhwc, 4);
    if (x->a.alpha != 1)
        o = bin(e, "Mul", o, scalar_init(e, x->dt, x->a.alpha));
    for (const Node *t = x; t != last;) {
        t = sole_reader(e, t);
        e->name[t->id] = o;
    }
    return o;
}

static bool is_vec_param(const Node *p, int64_t c)
{
    return p->op == OP_PARAM && p->shape.rank == 1 && p->shape.d[0] == c;
}

/* The operand of binary node x that is not `other`, or NULL when x does
 * not read it (either order). */
static const Node *other_in(const Node *x, const Node *other)
{
    return x->in[0] == other ? x->in[1] : x->in[1] == other ? x->in[0] : NULL;
}

/* Inference batch normalization as the frontend lowers it:
 *   add(mul(mul(sub(x, mean), rsqrt(add(var, eps))), gamma), beta)
 * over the last axis, each inner value read once. Fills bn[] with x,
 * gamma, beta, mean, var and *eps; marks the inner nodes. */
static bool match_bn(Ex *e, const Node *root, const Node **bn, double *eps)
{
    if (root->op != OP_ADD || root->shape.rank < 2)
        return false;
    int64_t c = root->shape.d[root->shape.rank - 1];
    for (int k = 0; k < 2; k++) {
        const Node *m2 = root->in[k], *beta = root->in[1 - k];
        if (m2->op != OP_MUL || !is_vec_param(beta, c) || e->uses[m2->id] != 1)
            continue;
        for (int j = 0; j < 2; j++) {
            const Node *m1 = m2->in[j], *gamma = m2->in[1 - j];
            if (m1->op != OP_MUL || !is_vec_param(gamma, c) || e->uses[m1->id] != 1)
                continue;
            for (int i = 0; i < 2; i++) {
                const Node *sub = m1->in[i], *rs = m1->in[1 - i];
                if (sub->op != OP_SUB || rs->op != OP_RSQRT || e->uses[sub->id] != 1 || e->uses[rs->id] != 1)
                    continue;
                const Node *ad = rs->in[0], *mean = sub->in[1];
                if (ad->op != OP_ADD || e->uses[ad->id] != 1 || !is_vec_param(mean, c))
                    continue;
                const Node *var = ad->in[0]->op == OP_PARAM ? ad->in[0] : ad->in[1];
                const Node *k_eps = other_in(ad, var);
                if (!is_vec_param(var, c) || !k_eps || k_eps->op != OP_CONST || k_eps->shape.rank != 0)
                    continue;
                bn[0] = sub->in[0];
                bn[1] = gamma;
                bn[2] = beta;
                bn[3] = mean;
                bn[4] = var;
                *eps = k_eps->a.value;
                e->inner[m2->id] = e->inner[m1->id] = e->inner[sub->id] = e->inner[rs->id] = true;
                e->inner[ad->id] = true;
                return true;
            }
        }
    }
    return false;
}

/* BatchNormalization (inference) on NCHW: images between transposes. */
static const char *export_bn(Ex *e, const Node *root, const Node *const *bn, double eps)
{
    for (int i = 1; i < 5; i++)
        if (!e->name[bn[i]->id] && !(e->name[bn[i]->id] = param_init(e, bn[i], e->params)))
            return NULL;
    bool image = bn[0]->shape.rank == 4;
    if (bn[0]->shape.rank != 2 && !image)
        return NULL;
    const char *w[5] = {e->name[bn[0]->id], e->name[bn[1]->id], e->name[bn[2]->id], e->name[bn[3]->id],
                        e->name[bn[4]->id]};
    if (image)
        w[0] = transpose(e, w[0], nhwc_to_nchw, 4);
    const char *o = tmp(e);
    attr_f(e, node(e, "BatchNormalization", w, 5, o), "epsilon", eps);
    (void)root;
    return image ? transpose(e, o, nchw_to_nhwc, 4) : o;
}

/* The ONNX value computing node x; its operands are e->name[...]. */
static const char *export_node(Ex *e, const Node *x, const TensorMap *params)
{
    const char *in[3];
    for (int i = 0; i < x->nin && i < 3; i++)
        in[i] = e->name[x->in[i]->id];
    const char *a = x->nin > 0 ? in[0] : NULL, *b = x->nin > 1 ? in[1] : NULL;
    switch (x->op) {
    case OP_INPUT: return arena_strdup(e->a, x->a.name);
    case OP_PARAM: return param_init(e, x, params);
    case OP_CONST: return const_init(e, x);
    case OP_NEG: return un(e, "Neg", a);
    case OP_EXP: return un(e, "Exp", a);
    case OP_LOG: return un(e, "Log", a);
    case OP_TANH: return un(e, "Tanh", a);
    case OP_SIGMOID: return un(e, "Sigmoid", a);
    case OP_RELU: return un(e, "Relu", a);
    case OP_SQRT: return un(e, "Sqrt", a);
    case OP_RSQRT: return un(e, "Reciprocal", un(e, "Sqrt", a));
    case OP_SQUARE: return bin(e, "Mul", a, a);
    case OP_ABS: return un(e, "Abs", a);
    case OP_ERF: return un(e, "Erf", a);
    case OP_SIGN: return un(e, "Sign", a);
    case OP_ELU: {
        const char *o = tmp(e);
        attr_f(e, node(e, "Elu", &a, 1, o), "alpha", x->a.value);
        return o;
    }
    case OP_CAST: {
        const char *o = tmp(e);
        attr_i(e, node(e, "Cast", &a, 1, o), "to", elem_type(x->a.to));
        return o;
    }
    case OP_ADD: return bin(e, "Add", a, b);
    case OP_SUB: return bin(e, "Sub", a, b);
    case OP_MUL: return bin(e, "Mul", a, b);
    case OP_DIV: return bin(e, "Div", a, b);
    case OP_POW: return bin(e, "Pow", a, b);
    case OP_MAXIMUM: return bin(e, "Max", a, b);
    case OP_MINIMUM: return bin(e, "Min", a, b);
    case OP_GT:
    case OP_GE:
    case OP_LT:
    case OP_LE:
    case OP_EQ: {
        static const char *const names[] = {"Greater", "GreaterOrEqual", "Less", "LessOrEqual", "Equal"};
        const char *c = bin(e, names[x->op - OP_GT], a, b), *o = tmp(e);
        attr_i(e, node(e, "Cast", &c, 1, o), "to", elem_type(x->dt));
        return o;
    }
    case OP_SELECT: {
        const char *z = bin(e, "Equal", a, scalar_init(e, x->in[0]->dt, 0));
        const char *w[3] = {z, in[2], b}, *o = tmp(e);
        node(e, "Where", w, 3, o);
        return o;
    }
    case OP_REDUCE_SUM: {
        const char *w[2] = {a, axes_init(e, x)}, *o = tmp(e);
        attr_i(e, node(e, "ReduceSum", w, 2, o), "keepdims", x->a.keepdims);
        return o;
    }
    case OP_REDUCE_MEAN:
    case OP_REDUCE_MAX: {
        int64_t ax[IR_MAXRANK];
        for (int i = 0; i < x->a.naxes; i++)
            ax[i] = x->a.axes[i];
        const char *o = tmp(e);
        Onnx__NodeProto *n = node(e, x->op == OP_REDUCE_MEAN ? "ReduceMean" : "ReduceMax", &a, 1, o);
        attr_ints(e, n, "axes", ax, x->a.naxes);
        attr_i(e, n, "keepdims", x->a.keepdims);
        return o;
    }
    case OP_ARGMAX: {
        const char *i = tmp(e), *o = tmp(e);
        Onnx__NodeProto *n = node(e, "ArgMax", &a, 1, i);
        attr_i(e, n, "axis", x->a.axes[0]);
        attr_i(e, n, "keepdims", x->a.keepdims);
        attr_i(e, node(e, "Cast", &i, 1, o), "to", elem_type(x->dt));
        return o;
    }
    case OP_RESHAPE: {
        int64_t s[IR_MAXRANK];
        for (int i = 0; i < x->a.shape.rank; i++)
            /* 0 copies the operand's N at the same place; otherwise the
             * one batch dimension (N*k, or N from N*k) is Reshape's -1 */
            s[i] = !ir_dim_is_batch(x->a.shape.d[i]) ? x->a.shape.d[i]
                   : x->a.shape.d[i] == IR_DIM_N && i < x->in[0]->shape.rank && x->in[0]->shape.d[i] == IR_DIM_N
                       ? 0
                       : -1;
        return bin(e, "Reshape", a, ints_init(e, s, x->a.shape.rank));
    }
    case OP_TRANSPOSE: {
        int64_t p[IR_MAXRANK];
        for (int i = 0; i < x->a.naxes; i++)
            p[i] = x->a.axes[i];
        return transpose(e, a, p, x->a.naxes);
    }
    case OP_SLICE: {
        int r = x->in[0]->shape.rank;
        int64_t st[IR_MAXRANK], en[IR_MAXRANK], ax[IR_MAXRANK], sp[IR_MAXRANK];
        for (int i = 0; i < r; i++) {
            ax[i] = i;
            st[i] = x->a.begin[i];
            en[i] = ir_dim_is_batch(x->in[0]->shape.d[i]) ? INT64_MAX : x->a.end[i];
            sp[i] = x->a.step[i] ? x->a.step[i] : 1;
        }
        const char *w[5] = {a, ints_init(e, st, r), ints_init(e, en, r), ints_init(e, ax, r), ints_init(e, sp, r)};
        const char *o = tmp(e);
        node(e, "Slice", w, 5, o);
        return o;
    }
    case OP_CONCAT: {
        const char **w = arena_alloc(e->a, (size_t)x->nin * sizeof *w);
        for (int i = 0; i < x->nin; i++)
            w[i] = e->name[x->in[i]->id];
        const char *o = tmp(e);
        attr_i(e, node(e, "Concat", w, x->nin, o), "axis", x->a.axes[0]);
        return o;
    }
    case OP_MATMUL: {
        const char *o = tmp(e);
        if (x->in[0]->shape.rank != 2 || x->in[1]->shape.rank != 2)
            return xfail(e, "matmul of rank other than 2 is not exported"), NULL;
        const char *w[2] = {a, b};
        Onnx__NodeProto *n = node(e, "Gemm", w, 2, o);
        if (x->a.ta)
            attr_i(e, n, "transA", 1);
        if (x->a.tb)
            attr_i(e, n, "transB", 1);
        if (x->a.alpha != 1)
            attr_f(e, n, "alpha", x->a.alpha);
        return o;
    }
    case OP_CONV2D:
        return export_conv(e, x, a, b);
    case OP_MAX_POOL2D:
    case OP_AVG_POOL2D: {
        const char *t = transpose(e, a, nhwc_to_nchw, 4), *c = tmp(e);
        Onnx__NodeProto *n = node(e, x->op == OP_MAX_POOL2D ? "MaxPool" : "AveragePool", &t, 1, c);
        int64_t k[2] = {x->a.window[0], x->a.window[1]};
        attr_ints(e, n, "kernel_shape", k, 2);
        pads_strides(e, n, &x->a);
        return transpose(e, c, nchw_to_nhwc, 4);
    }
    case OP_SOFTMAX:
    case OP_LOG_SOFTMAX: {
        const char *o = tmp(e);
        attr_i(e, node(e, x->op == OP_SOFTMAX ? "Softmax" : "LogSoftmax", &a, 1, o), "axis", x->a.axes[0]);
        return o;
    }
    default:
        xfail(e, "op %s is not exported to ONNX", ir_ops[x->op].name);
        return NULL;
    }
}

static bool write_model(Ex *e, const Graph *g, const char *path)
{
    Onnx__GraphProto gp;
    onnx__graph_proto__init(&gp);
    gp.name = arena_strdup(e->a, g->name ? g->name : "model");
    gp.n_node = e->nn;
    gp.node = e->nodes;
    gp.n_initializer = e->ni;
    gp.initializer = e->inits;
    int nin = 0, nout = 0;
    for (int i = 0; i < g->nnodes; i++)
        nin += g->nodes[i]->op == OP_INPUT;
    gp.input = arena_alloc(e->a, (size_t)(nin + 1) * sizeof *gp.input);
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i]->op == OP_INPUT)
            gp.input[gp.n_input++] = value_info(e, g->nodes[i]->a.name, g->nodes[i]->dt, &g->nodes[i]->shape);
    for (int i = 0; i < g->nouts; i++)
        nout += g->outs[i].kind == OUT_VALUE;
    gp.output = arena_alloc(e->a, (size_t)(nout + 1) * sizeof *gp.output);
    for (int i = 0; i < g->nouts; i++)
        if (g->outs[i].kind == OUT_VALUE)
            gp.output[gp.n_output++] = value_info(e, g->outs[i].name, g->outs[i].val->dt, &g->outs[i].val->shape);
    Onnx__OperatorSetIdProto op;
    onnx__operator_set_id_proto__init(&op);
    op.domain = (char *)"";
    op.has_version = true;
    op.version = OPSET;
    Onnx__OperatorSetIdProto *ops[1] = {&op};
    Onnx__ModelProto m;
    onnx__model_proto__init(&m);
    m.has_ir_version = true;
    m.ir_version = 8;
    m.producer_name = (char *)"modelc";
    m.producer_version = (char *)MODELC_VERSION;
    m.n_opset_import = 1;
    m.opset_import = ops;
    m.graph = &gp;
    size_t n = onnx__model_proto__get_packed_size(&m);
    uint8_t *buf = xmalloc(n ? n : 1);
    onnx__model_proto__pack(&m, buf);
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(buf, 1, n, f) == n;
    if (f)
        ok = fclose(f) == 0 && ok;
    xfree(buf);
    if (!ok)
        return xfail(e, "cannot write the ONNX file: %s", strerror(errno));
    return true;
}

bool fe_onnx_export(const Graph *g, const TensorMap *params, const char *path, Diags *d)
{
    Ex e = {0};
    e.a = arena_new();
    e.d = d;
    e.file = diags_intern_file(d, path);
    e.name = arena_alloc(e.a, (size_t)(g->nnodes + 1) * sizeof *e.name);
    e.g = g;
    e.params = params;
    e.uses = arena_alloc(e.a, (size_t)(g->nnodes + 1) * sizeof *e.uses);
    for (int i = 0; i < g->nnodes; i++)
        for (int j = 0; j < g->nodes[i]->nin; j++)
            e.uses[g->nodes[i]->in[j]->id]++;
    for (int i = 0; i < g->nouts; i++)
        e.uses[g->outs[i].val->id]++;
    e.inner = arena_alloc(e.a, (size_t)(g->nnodes + 1) * sizeof *e.inner);
    const Node **bn = arena_alloc(e.a, (size_t)(g->nnodes + 1) * 5 * sizeof *bn);
    double *eps = arena_alloc(e.a, (size_t)(g->nnodes + 1) * sizeof *eps);
    bool *is_bn = arena_alloc(e.a, (size_t)(g->nnodes + 1) * sizeof *is_bn);
    for (int i = g->nnodes - 1; i >= 0; i--)
        if (!e.inner[i] && (g->nodes[i]->shape.rank == 2 || g->nodes[i]->shape.rank == 4))
            is_bn[i] = match_bn(&e, g->nodes[i], bn + 5 * i, &eps[i]);
    bool ok = true;
    for (int i = 0; i < g->nnodes && ok; i++) {
        const Node *x = g->nodes[i];
        if (e.name[x->id] || e.inner[x->id])
            continue; /* taken along by another node */
        e.name[x->id] = is_bn[i] ? export_bn(&e, x, bn + 5 * i, eps[i]) : export_node(&e, x, params);
        ok = e.name[x->id] != NULL;
    }
    for (int i = 0; ok && i < g->nouts; i++)
        if (g->outs[i].kind == OUT_VALUE) {
            const char *v = e.name[g->outs[i].val->id];
            node(&e, "Identity", &v, 1, g->outs[i].name);
        }
    ok = ok && write_model(&e, g, path);
    xfree(e.nodes);
    xfree(e.inits);
    arena_free(e.a);
    return ok;
}
