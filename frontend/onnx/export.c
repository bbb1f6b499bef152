/* ONNX export: an inference graph (the predict recipe, unfused) and its
 * parameter values become an ONNX model of opset 14. The graph keeps
 * modelc's layouts at its inputs and outputs (NHWC images); each
 * convolution (transposed too) and pooling is wrapped in the two
 * transposes ONNX's NCHW operators need, and HWIO kernels are transposed
 * to OIHW by a node on the initializer. The loop of a recurrent layer is
 * one LSTM, GRU or RNN node (layout 1: batch first), its weights written
 * as initializers in ONNX's layout and gate order. Every output value
 * gets an Identity under its name. */
#include "onnx.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "onnx.pb-c.h"

#define OPSET 14

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
    bool *inner;       /* nodes exported with another: inside a batch normalization, a recurrent
                        * layer's zero initial states and its weights */
    const char *(*res)[3]; /* a recurrent layer's ONNX outputs Y, Y_h, Y_c by loop node */
    const TensorMap *params;
    const Graph *src;      /* the model's source graph (its training updates), or NULL */
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

static void attr_s(Ex *e, Onnx__NodeProto *n, const char *name, const char *v)
{
    Onnx__AttributeProto *a = new_attr(e, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    a->has_s = true;
    a->s.len = strlen(v);
    a->s.data = (uint8_t *)arena_strdup(e->a, v);
}

static void attr_strings(Ex *e, Onnx__NodeProto *n, const char *name, const char *const *v, int cnt)
{
    Onnx__AttributeProto *a = new_attr(e, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS);
    a->n_strings = (size_t)cnt;
    a->strings = arena_alloc(e->a, (size_t)(cnt + 1) * sizeof *a->strings);
    for (int i = 0; i < cnt; i++) {
        a->strings[i].len = strlen(v[i]);
        a->strings[i].data = (uint8_t *)arena_strdup(e->a, v[i]);
    }
}

/* Replaces node n's one output by the cnt outputs out[]. */
static void set_outputs(Ex *e, Onnx__NodeProto *n, const char *const *out, int cnt)
{
    n->n_output = (size_t)cnt;
    n->output = arena_alloc(e->a, (size_t)cnt * sizeof(char *));
    for (int i = 0; i < cnt; i++)
        n->output[i] = arena_strdup(e->a, out[i]);
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

/* conv2d (or conv2d_grad_input, a transposed convolution) between
 * transposes to NCHW and back; a bias added next (a vector of the output
 * channels) becomes Conv's third input, and an activation after it runs
 * before the transpose back, so that the pattern reads as one layer. The
 * nodes taken along get the result's name. Both kernels go from
 * [kh, kw, a, b] to [b, a, kh, kw]: Conv's OIHW from HWIO, and
 * ConvTranspose's [C_in, C_out, kh, kw] from conv2d_transpose's
 * [kh, kw, filters, C]. */
static const char *export_conv(Ex *e, const Node *x, const char *a, const char *b)
{
    static const int64_t hwio_to_oihw[4] = {3, 2, 0, 1};
    bool tr = x->op == OP_CONV2D_GRAD_INPUT;
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
    Onnx__NodeProto *n = node(e, tr ? "ConvTranspose" : "Conv", w, nw, c);
    int64_t k[2] = {x->in[1]->shape.d[0], x->in[1]->shape.d[1]};
    attr_ints(e, n, "kernel_shape", k, 2);
    if (!tr) {
        pads_strides(e, n, &x->a);
    } else {
        /* ONNX's output (in - 1) * s + k + output_padding - begin - end
         * is Attrs.shape: the rows past the full output are zeros */
        int64_t st[2] = {x->a.stride[0], x->a.stride[1]}, pads[4] = {x->a.pad[0], x->a.pad[2], 0, 0}, op[2] = {0, 0};
        bool extra = false;
        for (int i = 0; i < 2; i++) {
            int64_t full = (x->in[0]->shape.d[1 + i] - 1) * st[i] + k[i];
            int64_t end = full - pads[i] - x->shape.d[1 + i];
            pads[2 + i] = end > 0 ? end : 0;
            op[i] = end < 0 ? -end : 0;
            extra |= end < 0;
        }
        attr_ints(e, n, "strides", st, 2);
        attr_ints(e, n, "pads", pads, 4);
        if (extra)
            attr_ints(e, n, "output_padding", op, 2);
    }
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

/* ---- recurrent layers ---- */

enum { RNN_SIMPLE, RNN_GRU, RNN_LSTM };

/* The kind of recurrent layer loop x is (RNN_*), with its activation
 * word in act; -1 when x is no loop of a recurrent layer. The lowering
 * names the body "lstm:tanh" (frontend/recurrent.c); the operands are the
 * carried states, the sequence, kernel, recurrent kernel and bias. */
static int rnn_kind(const Node *x, const char **act)
{
    static const char *const kinds[] = {"simple_rnn", "gru", "lstm"};
    if (x->op != OP_LOOP || !x->sub || !x->sub->name || x->a.nseq != 1)
        return -1;
    const char *colon = strchr(x->sub->name, ':');
    int kind = -1;
    for (int k = 0; colon && k < 3; k++)
        if (strlen(kinds[k]) == (size_t)(colon - x->sub->name) && !strncmp(x->sub->name, kinds[k], strlen(kinds[k])))
            kind = k;
    if (kind < 0)
        return -1;
    *act = colon + 1;
    int nc = kind == RNN_LSTM ? 2 : 1, G = kind == RNN_LSTM ? 4 : kind == RNN_GRU ? 3 : 1;
    if (ir_loop_ncarry(x) != nc || (x->nin != nc + 3 && x->nin != nc + 4))
        return -1;
    const Shape *h = &x->in[0]->shape, *s = &x->in[nc]->shape, *k = &x->in[nc + 1]->shape,
                *r = &x->in[nc + 2]->shape;
    if (h->rank != 2 || s->rank != 3 || k->rank != 2 || r->rank != 2)
        return -1;
    int64_t H = h->d[1], GH = G * H;
    if (k->d[0] != s->d[2] || k->d[1] != GH || r->d[0] != H || r->d[1] != GH)
        return -1;
    if (x->nin == nc + 4) {
        const Shape *b = &x->in[nc + 3]->shape;
        if (kind == RNN_GRU ? b->rank != 2 || b->d[0] != 2 || b->d[1] != GH : b->rank != 1 || b->d[0] != GH)
            return -1;
    }
    return kind;
}

/* A carried state the layer starts from zeros: broadcast of 0. */
static bool zero_state(const Node *s)
{
    return s->op == OP_BROADCAST && s->in[0]->op == OP_CONST && s->in[0]->a.value == 0;
}

static const char *unsqueeze(Ex *e, const char *x, int64_t axis)
{
    return bin(e, "Unsqueeze", x, ints_init(e, &axis, 1));
}

static const char *squeeze(Ex *e, const char *x, int64_t axis)
{
    return bin(e, "Squeeze", x, ints_init(e, &axis, 1));
}

/* ONNX's W [1, G*H, I], R [1, G*H, H] (which 0, 1) or B [1, 2*G*H]
 * (which 2) from the parameter p: kernels transposed, the LSTM's gate
 * blocks from Keras's i, f, c, o to ONNX's i, o, f, c, its bias (and
 * the simple RNN's) as W's bias with R's zero, the GRU's two rows as
 * they are. The initializer keeps p's name when only layers read p (the
 * first of them). */
static const char *rnn_weight(Ex *e, const Node *p, int kind, int which, int64_t H)
{
    Tensor *t = rt_map_get(e->params, p->a.name);
    if (!t)
        return xfail(e, "parameter '%s' has no value", p->a.name), NULL;
    Tensor *c = t->dt == p->dt ? t : rt_tensor_cast(t, p->dt);
    static const int lstm_block[4] = {0, 3, 1, 2}; /* Keras's block of ONNX's gate g */
    int G = kind == RNN_LSTM ? 4 : kind == RNN_GRU ? 3 : 1;
    int64_t GH = G * H, rows = which == 2 ? 1 : p->shape.d[0];
    size_t es = dt_size(p->dt);
    int64_t dims[3] = {1, which == 2 ? 2 * GH : GH, rows};
    unsigned char *dst = arena_alloc(e->a, (size_t)(2 * GH * rows) * es), *src = c->data;
    if (which == 2 && kind == RNN_GRU) {
        memcpy(dst, src, (size_t)(2 * GH) * es);
    } else {
        for (int g = 0; g < G; g++) {
            int64_t kb = kind == RNN_LSTM ? lstm_block[g] : g;
            for (int64_t j = 0; j < H; j++)
                for (int64_t i = 0; i < rows; i++)
                    memcpy(dst + (size_t)((g * H + j) * rows + i) * es, src + (size_t)(i * GH + kb * H + j) * es,
                           es);
        }
    }
    bool own = e->inner[p->id] && !e->name[p->id]; /* the first of the layers reading p */
    const char *o = init_raw(e, own ? p->a.name : tmp(e), elem_type(p->dt), which == 2 ? 2 : 3, dims, dst,
                             (size_t)(dims[1] * rows) * es);
    if (own)
        e->name[p->id] = o;
    if (c != t)
        rt_tensor_free(c);
    return o;
}

/* A recurrent layer's loop as one LSTM, GRU or RNN node with layout 1
 * ([B, T, I] in, Y [B, T, 1, H], Y_h and Y_c [B, 1, H]); the loop's
 * value (the last h) is Y_h without its direction axis, its results
 * (OP_RESULT) Y and Y_c likewise. */
static const char *export_recurrent(Ex *e, const Node *x, int kind, const char *act)
{
    static const char *const ops[] = {"RNN", "GRU", "LSTM"};
    int nc = kind == RNN_LSTM ? 2 : 1;
    int64_t H = x->in[0]->shape.d[1], B = x->in[0]->shape.d[0];
    const char *onnx_act = !strcmp(act, "tanh") ? "Tanh" : !strcmp(act, "relu") ? "Relu"
                           : !strcmp(act, "sigmoid")                            ? "Sigmoid"
                                                                                : NULL;
    if (!onnx_act)
        return xfail(e, "%s layer '%s' with activation %s has no ONNX form (tanh, relu and sigmoid have)", ops[kind],
                     x->label ? x->label : "?", act),
               NULL;
    const char *in[7] = {e->name[x->in[nc]->id], NULL, NULL, "", "", "", ""};
    int nin = x->nin == nc + 4 ? 4 : 3;
    for (int k = 0; k + 1 < nin; k++) {
        const Node *p = x->in[nc + 1 + k];
        if (p->op != OP_PARAM)
            return xfail(e, "%s layer '%s' whose weights are computed has no ONNX form", ops[kind],
                         x->label ? x->label : "?"),
                   NULL;
        if (!(in[1 + k] = rnn_weight(e, p, kind, k, H)))
            return NULL;
    }
    bool given[2] = {false, false};
    for (int k = 0; k < nc; k++)
        given[k] = !zero_state(x->in[k]);
    if (given[0] || given[1]) {
        for (int k = 0; k < nc; k++) {
            if (given[k]) {
                in[5 + k] = unsqueeze(e, e->name[x->in[k]->id], 1);
            } else { /* one LSTM state given: the other zeros of [B, 1, H] */
                if (ir_dim_is_batch(B))
                    return xfail(e, "LSTM layer '%s' with only one of its initial states given has no ONNX form "
                                    "for a batch of N rows",
                                 x->label ? x->label : "?"),
                           NULL;
                int64_t d[3] = {B, 1, H};
                size_t bytes = (size_t)(B * H) * dt_size(x->dt);
                void *z = arena_alloc(e->a, bytes); /* zeroed */
                in[5 + k] = init_raw(e, tmp(e), elem_type(x->dt), 3, d, z, bytes);
            }
        }
        nin = 5 + nc;
    }
    const char *out[3] = {tmp(e), tmp(e), kind == RNN_LSTM ? tmp(e) : NULL};
    Onnx__NodeProto *n = node(e, ops[kind], in, nin, out[0]);
    set_outputs(e, n, out, nc + 1);
    attr_i(e, n, "hidden_size", H);
    attr_i(e, n, "layout", 1);
    if (x->a.reverse)
        attr_s(e, n, "direction", "reverse");
    if (kind == RNN_GRU)
        attr_i(e, n, "linear_before_reset", 1);
    if (strcmp(onnx_act, "Tanh") != 0) {
        const char *acts[3] = {kind == RNN_SIMPLE ? onnx_act : "Sigmoid", onnx_act, onnx_act};
        attr_strings(e, n, "activations", acts, kind == RNN_LSTM ? 3 : kind == RNN_GRU ? 2 : 1);
    }
    e->res[x->id][0] = out[0];
    e->res[x->id][1] = out[1];
    e->res[x->id][2] = out[2];
    bool read = false; /* the last h by another reader than a result */
    for (int i = x->id + 1; i < e->g->nnodes && !read; i++)
        for (int j = 0; j < e->g->nodes[i]->nin; j++)
            read |= e->g->nodes[i]->in[j] == x && e->g->nodes[i]->op != OP_RESULT;
    for (int i = 0; i < e->g->nouts; i++)
        read |= e->g->outs[i].val == x;
    return read ? squeeze(e, out[1], 1) : out[1];
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

/* The momentum of a batchnorm whose moving mean is param: its update in
 * the source graph is momentum * moving + (1 - momentum) * batch
 * (frontend/layers.c, moving_average). */
static bool bn_momentum(const Graph *src, const Node *param, double *momentum)
{
    for (int i = 0; src && i < src->nouts; i++) {
        const Output *o = &src->outs[i];
        if (o->kind != OUT_UPDATE || !o->target || o->target->op != OP_PARAM ||
            strcmp(o->target->a.name, param->a.name) != 0 || o->val->op != OP_ADD)
            continue;
        for (int k = 0; k < 2; k++) {
            const Node *m = o->val->in[k];
            if (m->op != OP_MUL)
                continue;
            for (int j = 0; j < 2; j++)
                if (m->in[j]->op == OP_CONST && m->in[j]->shape.rank == 0 && m->in[1 - j]->op == OP_PARAM &&
                    strcmp(m->in[1 - j]->a.name, param->a.name) == 0) {
                    *momentum = m->in[j]->a.value;
                    return true;
                }
        }
    }
    return false;
}

/* BatchNormalization (inference) on NCHW: images between transposes; the
 * momentum of the training update too, when the source graph has it. */
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
    Onnx__NodeProto *nd = node(e, "BatchNormalization", w, 5, o);
    attr_f(e, nd, "epsilon", eps);
    double momentum;
    if (bn_momentum(e->src, bn[3], &momentum))
        attr_f(e, nd, "momentum", momentum);
    (void)root;
    return image ? transpose(e, o, nchw_to_nhwc, 4) : o;
}

/* broadcast(x) to Attrs.shape: Expand, its shape a constant (1 where
 * the operand has the same batch dimension, which Expand keeps) or, with
 * another N in it, N taken from a graph input at run time. */
static const char *export_broadcast(Ex *e, const Node *x, const char *a)
{
    int r = x->a.shape.rank, off = r - x->in[0]->shape.rank;
    int64_t sh[IR_MAXRANK];
    bool has_n = false;
    for (int i = 0; i < r; i++) {
        sh[i] = x->a.shape.d[i];
        if (ir_dim_is_batch(sh[i]) && i >= off && x->in[0]->shape.d[i - off] == sh[i])
            sh[i] = 1;
        has_n |= ir_dim_is_batch(sh[i]);
    }
    if (!has_n)
        return bin(e, "Expand", a, ints_init(e, sh, r));
    const char *nsize = NULL; /* [N], int64 */
    for (int i = 0; i < e->g->nnodes && !nsize; i++) {
        const Node *in = e->g->nodes[i];
        for (int k = 0; in->op == OP_INPUT && k < in->shape.rank && !nsize; k++)
            if (in->shape.d[k] == IR_DIM_N) {
                int64_t b = k, en = k + 1;
                const char *w[3] = {un(e, "Shape", in->a.name), ints_init(e, &b, 1), ints_init(e, &en, 1)};
                nsize = tmp(e);
                node(e, "Slice", w, 3, nsize);
            }
    }
    for (int i = 0; i < r; i++)
        if (ir_dim_is_batch(sh[i]) && (sh[i] != IR_DIM_N || !nsize))
            return xfail(e, "broadcast to N*k rows is not exported to ONNX"), NULL;
    const char **parts = arena_alloc(e->a, (size_t)(r + 1) * sizeof *parts);
    for (int i = 0; i < r; i++)
        parts[i] = sh[i] == IR_DIM_N ? nsize : ints_init(e, &sh[i], 1);
    const char *shape = tmp(e);
    attr_i(e, node(e, "Concat", parts, r, shape), "axis", 0);
    return bin(e, "Expand", a, shape);
}

/* Pad of a (the operand of slice_grad x) by x's slice, with the constant
 * value cv (NULL: zeros); steps of 1 only. */
static const char *export_pad(Ex *e, const Node *x, const char *a, const char *cv)
{
    int r = x->shape.rank;
    int64_t pads[2 * IR_MAXRANK];
    for (int i = 0; i < r; i++) {
        if ((x->a.step[i] ? x->a.step[i] : 1) != 1)
            return xfail(e, "slice_grad with a step other than 1 is not exported to ONNX"), NULL;
        bool nb = ir_dim_is_batch(x->shape.d[i]);
        pads[i] = nb ? 0 : x->a.begin[i];
        pads[r + i] = nb ? 0 : x->shape.d[i] - x->a.begin[i] - x->in[0]->shape.d[i];
    }
    const char *w[3] = {a, ints_init(e, pads, 2 * r), cv}, *o = tmp(e);
    node(e, "Pad", w, cv ? 3 : 2, o);
    return o;
}

static bool is_scalar(const Node *n, double v)
{
    return n->op == OP_CONST && n->shape.rank == 0 && n->a.value == v;
}

/* One reader fewer of n; read by nothing exported, n is taken along
 * (not exported), and so, in turn, are its operands. */
static void release(Ex *e, const Node *n)
{
    if (--e->uses[n->id] > 0 || n->op == OP_INPUT)
        return;
    e->inner[n->id] = true; /* read by nothing exported */
    for (int i = 0; i < n->nin; i++)
        release(e, n->in[i]);
}

/* pad(x, widths, c) with c != 0 as the frontend lowers it (builtins.c,
 * pad_fn): add(slice_grad(x), mul(sub(1, slice_grad(broadcast(1))), c)),
 * the two slice_grads alike, or as simplify leaves it for c = 1 (no mul)
 * and c = -1 (a sub for the add). Returns slice_grad(x) with *cv = c,
 * or NULL; the root then reads x alone, and what it no longer reads is
 * released (release). */
static const Node *match_pad(Ex *e, const Node *root, double *cv)
{
    if (root->op != OP_ADD && root->op != OP_SUB)
        return NULL;
    for (int i = 0; i < (root->op == OP_ADD ? 2 : 1); i++) {
        const Node *y = root->in[i], *t = root->in[1 - i], *k = NULL, *sub = t;
        if (y->op != OP_SLICE_GRAD)
            continue;
        for (int j = 0; t->op == OP_MUL && j < 2 && !k; j++)
            if (t->in[1 - j]->op == OP_CONST && t->in[1 - j]->shape.rank == 0) {
                k = t->in[1 - j];
                sub = t->in[j];
            }
        if ((t->op == OP_MUL && !k) || sub->op != OP_SUB || !is_scalar(sub->in[0], 1) ||
            sub->in[1]->op != OP_SLICE_GRAD || sub->in[1]->in[0]->op != OP_BROADCAST)
            continue;
        const Node *inside = sub->in[1], *ones = inside->in[0];
        if (!is_scalar(ones->in[0], 1) || !ir_shape_eq(&inside->shape, &y->shape) ||
            !ir_shape_eq(&ones->shape, &y->in[0]->shape) ||
            memcmp(inside->a.begin, y->a.begin, sizeof y->a.begin) != 0 ||
            memcmp(inside->a.step, y->a.step, sizeof y->a.step) != 0)
            continue;
        e->uses[y->in[0]->id]++;
        release(e, y);
        release(e, t);
        *cv = (k ? k->a.value : 1) * (root->op == OP_SUB ? -1 : 1);
        return y;
    }
    return NULL;
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
        if (x->in[0]->shape.rank != 2 || x->in[1]->shape.rank != 2) { /* stacks of matrices */
            const char *w[2] = {a, b};
            for (int k = 0; k < 2; k++) {
                int r = x->in[k]->shape.rank;
                if (!(k ? x->a.tb : x->a.ta))
                    continue;
                int64_t p[IR_MAXRANK];
                for (int i = 0; i < r; i++)
                    p[i] = i;
                p[r - 2] = r - 1;
                p[r - 1] = r - 2;
                w[k] = transpose(e, w[k], p, r);
            }
            node(e, "MatMul", w, 2, o);
            return x->a.alpha != 1 ? bin(e, "Mul", o, scalar_init(e, x->dt, x->a.alpha)) : o;
        }
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
    case OP_CONV2D_GRAD_INPUT:
        return export_conv(e, x, a, b);
    case OP_LOOP: {
        const char *act;
        int kind = rnn_kind(x, &act);
        if (kind < 0)
            break;
        return export_recurrent(e, x, kind, act);
    }
    case OP_RESULT: {
        const Node *l = x->in[0];
        if (l->op != OP_LOOP || !e->res[l->id][0])
            break;
        int nc = ir_loop_ncarry(l);
        if (x->a.index == nc)
            return squeeze(e, e->res[l->id][0], 2);
        if (x->a.index == 1 && nc == 2)
            return squeeze(e, e->res[l->id][2], 1);
        break;
    }
    case OP_BROADCAST:
        return export_broadcast(e, x, a);
    case OP_GATHER: {
        const char *idx = b;
        if (x->in[1]->dt != DT_I32) {
            idx = tmp(e);
            attr_i(e, node(e, "Cast", &b, 1, idx), "to", ONNX__TENSOR_PROTO__DATA_TYPE__INT64);
        }
        const char *w[2] = {a, idx}, *o = tmp(e);
        attr_i(e, node(e, "Gather", w, 2, o), "axis", x->a.axes[0]);
        return o;
    }
    case OP_ONE_HOT: { /* (x == k) for k in [0, depth), compared as doubles */
        const char *xd = tmp(e), *u = tmp(e);
        attr_i(e, node(e, "Cast", &a, 1, xd), "to", ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE);
        int64_t last = -1, depth = x->a.depth;
        const char *w[2] = {xd, ints_init(e, &last, 1)};
        node(e, "Unsqueeze", w, 2, u);
        double *ks = arena_alloc(e->a, (size_t)depth * sizeof *ks);
        for (int64_t k = 0; k < depth; k++)
            ks[k] = (double)k;
        const char *range = init_raw(e, tmp(e), ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE, 1, &depth, ks,
                                     (size_t)depth * sizeof *ks);
        const char *eq = bin(e, "Equal", u, range), *o = tmp(e);
        attr_i(e, node(e, "Cast", &eq, 1, o), "to", elem_type(x->dt));
        return o;
    }
    case OP_SLICE_GRAD: /* zeros around the operand: Pad, for steps of 1 */
        return export_pad(e, x, a, NULL);
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
        break;
    }
    xfail(e, "op %s is not exported to ONNX", ir_ops[x->op].name);
    return NULL;
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

bool fe_onnx_export(const Graph *g, const Graph *src, const TensorMap *params, const char *path, Diags *d)
{
    Ex e = {0};
    e.src = src;
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
    /* pad with a constant other than 0: one Pad with its constant_value */
    const Node **pad = arena_alloc(e.a, (size_t)(g->nnodes + 1) * sizeof *pad);
    double *pad_cv = arena_alloc(e.a, (size_t)(g->nnodes + 1) * sizeof *pad_cv);
    for (int i = g->nnodes - 1; i >= 0; i--)
        if (!e.inner[i] && !is_bn[i])
            pad[i] = match_pad(&e, g->nodes[i], &pad_cv[i]);
    /* the zeros a recurrent layer starts from are ONNX's default state,
     * and its weights go out in ONNX's layout: neither is exported as it
     * is when only such layers read it */
    e.res = arena_alloc(e.a, (size_t)(g->nnodes + 1) * sizeof *e.res);
    int *taken_reads = arena_alloc(e.a, (size_t)(g->nnodes + 1) * sizeof *taken_reads);
    for (int i = 0; i < g->nnodes; i++) {
        const char *act;
        int kind = rnn_kind(g->nodes[i], &act);
        int nc = kind == RNN_LSTM ? 2 : 1;
        for (int k = 0; kind >= 0 && k < g->nodes[i]->nin; k++)
            if (k < nc ? zero_state(g->nodes[i]->in[k]) : k > nc && g->nodes[i]->in[k]->op == OP_PARAM)
                taken_reads[g->nodes[i]->in[k]->id]++;
    }
    for (int i = 0; i < g->nnodes; i++)
        if (taken_reads[i] && taken_reads[i] == e.uses[i])
            e.inner[i] = true;
    bool ok = true;
    for (int i = 0; i < g->nnodes && ok; i++) {
        const Node *x = g->nodes[i];
        if (e.name[x->id] || e.inner[x->id])
            continue; /* taken along by another node */
        if (pad[i])
            e.name[x->id] = export_pad(&e, pad[i], e.name[pad[i]->in[0]->id], scalar_init(&e, x->dt, pad_cv[i]));
        else
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
