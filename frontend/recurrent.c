/* Recurrent layers: simple_rnn, gru and lstm, each lowered to one loop
 * over the time axis whose body is one step of the cell, with Keras's
 * parameters (names, shapes, initializers) and gate orders: GRU z, r, h
 * with reset_after (two biases), LSTM i, f, c, o with a unit forget bias. */
#include "fe.h"

#include <stdio.h>
#include <string.h>

typedef enum { CELL_RNN, CELL_GRU, CELL_LSTM } CellKind;

static const char *const cell_fn[] = {"simple_rnn", "gru", "lstm"};
static const int cell_gates[] = {1, 3, 4};

enum { R_X, R_UNITS, R_ACT, R_SEQ, R_BACK, R_BIAS, R_KINIT, R_RINIT, R_BINIT, R_NAME, R_TRAIN, R_INIT, R_STATE };
static const ParamSpec rnn_spec[] = {
    {"x", A_TENSOR, true},
    {"units", A_INT, true},
    {"activation", A_WORD, false},
    {"return_sequences", A_BOOL, false},
    {"go_backwards", A_BOOL, false},
    {"use_bias", A_BOOL, false},
    {"kernel_init|kernel_initializer", A_ANY, false},
    {"recurrent_init|recurrent_initializer", A_ANY, false},
    {"bias_init|bias_initializer", A_ANY, false},
    {"name", A_STR, false},
    {"trainable", A_BOOL, false},
    {"initial_state", A_ANY, false},
    {"return_state", A_BOOL, false},
};

/* The layer's settings and the body graph being built (c->g while the
 * body is built, so fe_op and fe_activate build into it). */
typedef struct Cell {
    FeCtx *c;
    CellKind kind;
    SrcLoc loc;
    int64_t units;
    Activation act;
    bool bias;
    Node *h, *cs, *x, *k, *r, *b; /* body inputs (cs: the LSTM's cell state) */
} Cell;

static Node *op1(Cell *l, Op op, Node *x, const char *label)
{
    Node *n = fe_op1(l->c, op, x, l->loc);
    if (n && label)
        n->label = label;
    return n;
}

static Node *op2(Cell *l, Op op, Node *x, Node *y, const char *label)
{
    Node *n = fe_op2(l->c, op, x, y, l->loc);
    if (n && label)
        n->label = label;
    return n;
}

/* Columns [k*U, (k+1)*U) of a [B, G*U] value: gate k. */
static Node *gate(Cell *l, Node *z, int k, const char *label)
{
    if (!z)
        return NULL;
    Attrs a = ir_attrs();
    a.end[0] = INT64_MAX;
    a.begin[1] = k * l->units;
    a.end[1] = (k + 1) * l->units;
    Node *n = fe_op(l->c, OP_SLICE, &z, 1, &a, l->loc);
    if (n)
        n->label = label;
    return n;
}

/* Row k of the GRU's bias [2, 3U] as a [3U] vector. */
static Node *bias_row(Cell *l, int k)
{
    Attrs a = ir_attrs();
    a.begin[0] = k;
    a.end[0] = k + 1;
    a.end[1] = INT64_MAX;
    Node *row = fe_op(l->c, OP_SLICE, &l->b, 1, &a, l->loc);
    Attrs r = ir_attrs();
    r.shape = ir_shape1(3 * l->units);
    return row ? fe_op(l->c, OP_RESHAPE, &row, 1, &r, l->loc) : NULL;
}

/* h' = activation(x k + h r + b) */
static void rnn_step(Cell *l, Node **out)
{
    Node *s = op2(l, OP_ADD, op2(l, OP_MATMUL, l->x, l->k, NULL), op2(l, OP_MATMUL, l->h, l->r, NULL), NULL);
    if (l->bias)
        s = op2(l, OP_ADD, s, l->b, NULL);
    out[0] = s ? fe_activate(l->c, s, l->act, l->loc) : NULL;
    if (out[0])
        out[0]->label = "h_next";
}

/* z = sigmoid(x k_z + b0_z + h r_z + b1_z), r likewise,
 * hh = activation(x k_h + b0_h + r * (h r_h + b1_h)), h' = z h + (1 - z) hh */
static void gru_step(Cell *l, Node **out)
{
    Node *mx = op2(l, OP_MATMUL, l->x, l->k, "x_gates"), *mh = op2(l, OP_MATMUL, l->h, l->r, "h_gates");
    if (l->bias) {
        mx = op2(l, OP_ADD, mx, bias_row(l, 0), "x_gates");
        mh = op2(l, OP_ADD, mh, bias_row(l, 1), "h_gates");
    }
    Node *z = op1(l, OP_SIGMOID, op2(l, OP_ADD, gate(l, mx, 0, "x_z"), gate(l, mh, 0, "h_z"), NULL), "z");
    Node *r = op1(l, OP_SIGMOID, op2(l, OP_ADD, gate(l, mx, 1, "x_r"), gate(l, mh, 1, "h_r"), NULL), "r");
    Node *pre = op2(l, OP_ADD, gate(l, mx, 2, "x_h"), op2(l, OP_MUL, r, gate(l, mh, 2, "h_h"), NULL), NULL);
    Node *hh = pre ? fe_activate(l->c, pre, l->act, l->loc) : NULL;
    Node *one = z ? fe_const_like(l->c, z, 1, l->loc) : NULL;
    Node *keep = op2(l, OP_MUL, z, l->h, NULL), *take = op2(l, OP_MUL, op2(l, OP_SUB, one, z, NULL), hh, NULL);
    out[0] = op2(l, OP_ADD, keep, take, "h_next");
}

/* g = x k + h r + b; i, f, o = sigmoid of their quarters, c' = f c + i
 * activation(g_c), h' = o activation(c') */
static void lstm_step(Cell *l, Node **out)
{
    Node *g = op2(l, OP_ADD, op2(l, OP_MATMUL, l->x, l->k, NULL), op2(l, OP_MATMUL, l->h, l->r, NULL), "gates");
    if (l->bias)
        g = op2(l, OP_ADD, g, l->b, "gates");
    Node *i = op1(l, OP_SIGMOID, gate(l, g, 0, "g_i"), "i");
    Node *f = op1(l, OP_SIGMOID, gate(l, g, 1, "g_f"), "f");
    Node *gc = gate(l, g, 2, "g_c");
    Node *cand = gc ? fe_activate(l->c, gc, l->act, l->loc) : NULL;
    Node *o = op1(l, OP_SIGMOID, gate(l, g, 3, "g_o"), "o");
    Node *cn = op2(l, OP_ADD, op2(l, OP_MUL, f, l->cs, NULL), op2(l, OP_MUL, i, cand, NULL), "c_next");
    Node *ac = cn ? fe_activate(l->c, cn, l->act, l->loc) : NULL;
    out[0] = op2(l, OP_MUL, o, ac, "h_next");
    out[1] = cn;
}

/* The body graph: inputs h (and c), x_t, kernel, recurrent_kernel, bias;
 * outputs the updated states, then h' per step. NULL after an error.
 * Its name is the layer's kind and activation, "lstm:tanh" (ONNX export
 * reads it back: frontend/onnx/export.c). */
static Graph *cell_body(Cell *l, const Node *x, Node *const *w, int nw)
{
    FeCtx *c = l->c;
    char bname[64];
    snprintf(bname, sizeof bname, "%s:%s", cell_fn[l->kind], fe_activation_word(l->act));
    Graph *outer = c->g, *body = ir_graph_new(bname);
    int64_t dims[2] = {x->shape.d[0], l->units};
    Shape hs = ir_shape(2, dims), xs = ir_shape2(x->shape.d[0], x->shape.d[2]);
    l->h = ir_input(body, "h", x->dt, hs, l->loc);
    l->cs = l->kind == CELL_LSTM ? ir_input(body, "c", x->dt, hs, l->loc) : NULL;
    l->x = ir_input(body, "x", x->dt, xs, l->loc);
    static const char *const wnames[] = {"kernel", "recurrent_kernel", "bias"};
    Node *win[3] = {NULL, NULL, NULL};
    for (int k = 0; k < nw; k++)
        win[k] = ir_input(body, wnames[k], w[k]->dt, w[k]->shape, l->loc);
    l->k = win[0];
    l->r = win[1];
    l->b = win[2];
    Node *out[2] = {NULL, NULL};
    int errors = c->d->nerrors;
    c->g = body;
    if (l->kind == CELL_RNN)
        rnn_step(l, out);
    else if (l->kind == CELL_GRU)
        gru_step(l, out);
    else
        lstm_step(l, out);
    c->g = outer;
    if (!out[0] || (l->kind == CELL_LSTM && !out[1]) || c->d->nerrors != errors) {
        ir_graph_free(body);
        return NULL;
    }
    ir_add_output(body, OUT_UPDATE, NULL, out[0], l->h, false);
    if (l->cs)
        ir_add_output(body, OUT_UPDATE, NULL, out[1], l->cs, false);
    ir_add_output(body, OUT_VALUE, NULL, out[0], NULL, false);
    return body;
}

/* x of rank 3 [batch, time, features] with a fixed number of steps. */
static Node *sequence_input(FeCtx *c, CallArgs *a, const char *fn)
{
    Node *x = fe_arg_tensor(c, a, R_X, DT_COUNT);
    if (!x)
        return NULL;
    char t[128];
    if (!ir_dtype_is_float(x->dt)) {
        fe_error(c, a->v[R_X]->start, 1, "%s() needs a floating-point input, got %s", fn, fe_type_str(x, t, sizeof t));
        return NULL;
    }
    if (x->shape.rank != 3) {
        fe_error_expr(c, a->call, "%s() needs a sequence of rank 3 [batch, time, features], got %s", fn,
                      fe_type_str(x, t, sizeof t));
        return NULL;
    }
    if (ir_dim_is_batch(x->shape.d[1]) || x->shape.d[1] < 1 || ir_dim_is_batch(x->shape.d[2])) {
        fe_error_expr(c, a->call, "%s() needs at least one time step and fixed time and feature sizes, got %s", fn,
                      fe_type_str(x, t, sizeof t));
        return NULL;
    }
    return x;
}

/* initial_state=: the states [batch, units] the loop starts from (h, or
 * [h, c] for an LSTM); zeros when absent. False after an error. */
static bool initial_states(FeCtx *c, CallArgs *a, const Node *x, int64_t units, int nc, Node **h0)
{
    const Expr *e = a->v[R_INIT];
    int64_t dims[2] = {x->shape.d[0], units};
    Shape want = ir_shape(2, dims);
    if (!e) {
        Attrs zs = ir_attrs();
        zs.shape = want;
        Node *zero = fe_const_like(c, (Node *)x, 0, a->call->loc);
        h0[0] = h0[1] = fe_op(c, OP_BROADCAST, &zero, 1, &zs, a->call->loc);
        return h0[0] != NULL;
    }
    const Expr *const *items = e->k == E_LIST ? (const Expr *const *)e->items : &e;
    int n = e->k == E_LIST ? e->nitems : 1;
    if (n != nc) {
        fe_error_expr(c, e, "initial_state of %s() is %s, got %d tensor%s", a->fn,
                      nc == 2 ? "a list [h, c] of two tensors" : "one tensor h", n, n == 1 ? "" : "s");
        return false;
    }
    for (int k = 0; k < nc; k++) {
        h0[k] = fe_tensor(c, items[k], x->dt);
        if (!h0[k])
            return false;
        char t1[128], t2[128];
        if (h0[k]->dt != x->dt || !ir_shape_eq(&h0[k]->shape, &want)) {
            fe_error_expr(c, items[k], "initial state of %s() must be %s, got %s", a->fn,
                          ir_type_str(x->dt, &want, t1, sizeof t1), fe_type_str(h0[k], t2, sizeof t2));
            return false;
        }
    }
    return true;
}

static Val recurrent(FeCtx *c, const Expr *e, CellKind kind)
{
    const char *fn = cell_fn[kind];
    CallArgs a;
    int64_t units;
    bool seq, back, trainable, state;
    Init ki, ri, bi;
    Cell l = {.c = c, .kind = kind, .loc = e->loc, .act = ACT_TANH};
    if (!fe_bind_args(c, e, fn, rnn_spec, ARRAY_LEN(rnn_spec), &a) ||
        !fe_arg_int(c, &a, R_UNITS, 0, 1, INT32_MAX, &units) ||
        (a.v[R_ACT] && !fe_arg_activation(c, &a, R_ACT, &l.act)) || !fe_arg_bool(c, &a, R_SEQ, false, &seq) ||
        !fe_arg_bool(c, &a, R_BACK, false, &back) || !fe_arg_bool(c, &a, R_BIAS, true, &l.bias) ||
        !fe_arg_init(c, &a, R_KINIT, INIT_GLOROT_UNIFORM, &ki) || !fe_arg_init(c, &a, R_RINIT, INIT_ORTHOGONAL, &ri) ||
        !fe_arg_init(c, &a, R_BINIT, kind == CELL_LSTM && !a.v[R_BINIT] ? INIT_UNIT_FORGET_BIAS : INIT_ZEROS, &bi) ||
        !fe_arg_bool(c, &a, R_TRAIN, true, &trainable) || !fe_arg_bool(c, &a, R_STATE, false, &state))
        return fe_err_val();
    if (state && c->multi_expr != e) {
        fe_error_expr(c, a.v[R_STATE], "return_state=true gives %d values: assign them to as many names, "
                                       "e.g. '%s = %s(...)'",
                      kind == CELL_LSTM ? 3 : 2, kind == CELL_LSTM ? "seq, h, c" : "seq, h", fn);
        return fe_err_val();
    }
    l.units = units;
    Node *x = sequence_input(c, &a, fn);
    const char *name = x ? fe_layer_name(c, &a, R_NAME, fn) : NULL;
    if (!name)
        return fe_err_val();
    int64_t gu = cell_gates[kind] * units;
    Node *w[3];
    int nw = 2;
    w[0] = fe_layer_param(c, name, "kernel", x->dt, ir_shape2(x->shape.d[2], gu), ki, trainable, ROLE_WEIGHT, e->loc);
    w[1] = fe_layer_param(c, name, "recurrent_kernel", x->dt, ir_shape2(units, gu), ri, trainable, ROLE_WEIGHT, e->loc);
    if (l.bias)
        w[nw++] = fe_layer_param(c, name, "bias", x->dt, kind == CELL_GRU ? ir_shape2(2, gu) : ir_shape1(gu), bi,
                                 trainable, ROLE_WEIGHT, e->loc);
    for (int k = 0; k < nw; k++)
        if (!w[k])
            return fe_err_val();
    Graph *body = cell_body(&l, x, w, nw);
    if (!body)
        return fe_err_val();
    int nc = kind == CELL_LSTM ? 2 : 1, nin = 0;
    Node *h0[2];
    if (!initial_states(c, &a, x, units, nc, h0)) {
        ir_graph_free(body);
        return fe_err_val();
    }
    Node *in[6];
    for (int k = 0; k < nc; k++)
        in[nin++] = h0[k];
    in[nin++] = x;
    for (int k = 0; k < nw; k++)
        in[nin++] = w[k];
    Node *loop = ir_loop(c->g, body, in, nin, 1, back, e->loc, c->d);
    if (!loop)
        return fe_err_val();
    loop->label = name ? arena_strdup(c->g->arena, name) : NULL; /* name may live in the AST */
    Node *out = loop;
    if (seq) {
        Attrs r = ir_attrs();
        r.index = nc;
        out = fe_op(c, OP_RESULT, &loop, 1, &r, e->loc);
    }
    if (state) { /* Keras's [output, h] or [output, h, c] */
        c->multi[0] = out;
        c->multi[1] = loop;
        if (nc == 2) {
            Attrs r = ir_attrs();
            r.index = 1;
            c->multi[2] = fe_op(c, OP_RESULT, &loop, 1, &r, e->loc);
        }
        c->nmulti = 1 + nc;
    }
    return fe_tensor_val(out);
}

Val fe_layer_recurrent(FeCtx *c, const Expr *e, int which)
{
    return recurrent(c, e, (CellKind)which);
}
