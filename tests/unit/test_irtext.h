/* Graph builders shared by the IR text tests: one case per op with
 * non-default attributes, fused nodes, and a graph that uses every op. */
#ifndef MODELC_TEST_IRTEXT_H
#define MODELC_TEST_IRTEXT_H

#include <math.h>
#include <string.h>

#include "ir/ir.h"
#include "testutil.h"

static inline SrcLoc tx_loc(int line, int col)
{
    SrcLoc l = {"m.mdl", line, col};
    return l;
}

static inline Shape tx_shape(int rank, int64_t a, int64_t b, int64_t c, int64_t d)
{
    int64_t v[4] = {a, b, c, d};
    return ir_shape(rank, v);
}

/* An f32 input; the name gets a suffix when g already has one so named. */
static inline Node *tx_in(Graph *g, const char *name, Shape s)
{
    if (ir_find_input(g, name))
        name = arena_printf(g->arena, "%s%d", name, g->nnodes);
    return ir_input(g, name, DT_F32, s, tx_loc(1, 1));
}

/* Append a fused node whose body is `body` (ownership passes to g). */
static inline Node *tx_fused(Graph *g, Node **in, int nin, Graph *body, SrcLoc loc)
{
    Node *n = arena_alloc(g->arena, sizeof(Node));
    n->op = OP_FUSED;
    n->nin = nin;
    n->in = arena_alloc(g->arena, (size_t)nin * sizeof(Node *));
    memcpy(n->in, in, (size_t)nin * sizeof(Node *));
    n->a = ir_attrs();
    n->sub = body;
    n->loc = loc;
    n->loc.file = ir_intern_file(g, loc.file);
    Diags d;
    diags_init(&d);
    ck_assert_msg(ir_infer(n, &d), "fused: %s", d.n ? d.v[0].msg : "?");
    diags_free(&d);
    n->id = g->nnodes;
    VEC_PUSH(g->nodes, g->nnodes, g->cap, n);
    return n;
}

/* A body computing tanh(a * b + 0.5) over two operands of shapes sa, sb. */
static inline Graph *tx_body(Shape sa, Shape sb)
{
    Graph *b = ir_graph_new("fused");
    Diags d;
    diags_init(&d);
    Node *a = ir_input(b, "0", DT_F32, sa, tx_loc(9, 1));
    Node *c = ir_input(b, "1", DT_F32, sb, tx_loc(9, 2));
    Node *m = ir_binary(b, OP_MUL, a, c, tx_loc(9, 3), &d);
    Node *h = ir_const(b, DT_F32, 0.5, tx_loc(9, 4));
    Node *s = ir_binary(b, OP_ADD, m, h, tx_loc(9, 5), &d);
    s->label = "s";
    Node *t = ir_unary(b, OP_TANH, s, tx_loc(9, 6), &d);
    ck_assert_int_eq(d.nerrors, 0);
    ir_add_output(b, OUT_VALUE, NULL, t, NULL, false);
    diags_free(&d);
    return b;
}

/* A softmax row kernel: log_softmax_grad(z, gy) over [N,3] with its
 * column sum as fresh result 1. */
static inline Graph *tx_softmax_body(Shape s)
{
    Graph *b = ir_graph_new("fused");
    Diags d;
    diags_init(&d);
    Node *in[2] = {ir_input(b, "0", DT_F32, s, tx_loc(8, 1)), ir_input(b, "1", DT_F32, s, tx_loc(8, 2))};
    Attrs a = ir_attrs();
    a.naxes = 1;
    a.axes[0] = 1;
    Node *gr = ir_op(b, OP_LOG_SOFTMAX_GRAD, in, 2, &a, tx_loc(8, 3), &d);
    a.axes[0] = 0;
    Node *sum = ir_op(b, OP_REDUCE_SUM, &gr, 1, &a, tx_loc(8, 4), &d);
    ck_assert_int_eq(d.nerrors, 0);
    ir_add_output(b, OUT_VALUE, NULL, gr, NULL, false);
    ir_add_output(b, OUT_VALUE, NULL, sum, NULL, false);
    diags_free(&d);
    return b;
}

/* A loop body over h [N,3], x_t [N,2], w [2,3]: h' = tanh(x_t w + h),
 * carried and per-step. */
static inline Graph *tx_loop_body(void)
{
    Graph *b = ir_graph_new("loop");
    Diags d;
    diags_init(&d);
    Node *h = ir_input(b, "h", DT_F32, tx_shape(2, IR_DIM_N, 3, 0, 0), tx_loc(7, 1));
    Node *x = ir_input(b, "x", DT_F32, tx_shape(2, IR_DIM_N, 2, 0, 0), tx_loc(7, 2));
    Node *w = ir_input(b, "w", DT_F32, tx_shape(2, 2, 3, 0, 0), tx_loc(7, 3));
    Node *m = ir_binary(b, OP_MATMUL, x, w, tx_loc(7, 4), &d);
    Node *t = ir_unary(b, OP_TANH, ir_binary(b, OP_ADD, m, h, tx_loc(7, 5), &d), tx_loc(7, 6), &d);
    t->label = "h_next";
    ck_assert_int_eq(d.nerrors, 0);
    ir_add_output(b, OUT_UPDATE, NULL, t, h, false);
    ir_add_output(b, OUT_VALUE, NULL, t, NULL, false);
    diags_free(&d);
    return b;
}

static inline Node *tx_op(Graph *g, Op op, Node **in, int nin, const Attrs *a)
{
    Diags d;
    diags_init(&d);
    Node *n = ir_op(g, op, in, nin, a, tx_loc(10 + op, 3), &d);
    ck_assert_msg(n != NULL, "%s: %s", ir_ops[op].name, d.n ? d.v[0].msg : "?");
    diags_free(&d);
    return n;
}

/* One node of op `op` with every attribute it reads set to a non-default
 * value, plus the inputs it needs; NULL when no case exists for op. */
static inline Node *tx_op_case(Graph *g, Op op)
{
    Attrs a = ir_attrs();
    Shape nx3 = tx_shape(2, IR_DIM_N, 3, 0, 0);
    Shape img = tx_shape(4, IR_DIM_N, 8, 8, 2);
    Node *in[3];
    switch (op) {
    case OP_INPUT:
        return ir_input(g, "image", DT_F64, tx_shape(3, IR_DIM_N, 28, 28, 0), tx_loc(2, 7));
    case OP_PARAM:
        return ir_param(g, "bn.moving_var", DT_F32, ir_shape1(32), (Init){INIT_NORMAL, 0.5, 0.01}, false,
                        ROLE_STATE, tx_loc(3, 9));
    case OP_CONST: {
        Node *c = ir_const(g, DT_F64, 1.0 / 3.0, tx_loc(4, 2));
        c->a.shape = c->shape = ir_shape2(2, 3);
        return c;
    }
    case OP_NEG: case OP_EXP: case OP_LOG: case OP_TANH: case OP_SIGMOID: case OP_RELU:
    case OP_SQRT: case OP_RSQRT: case OP_SQUARE: case OP_ABS: case OP_ERF: case OP_SIGN:
        in[0] = tx_in(g, "x", nx3);
        return tx_op(g, op, in, 1, NULL);
    case OP_ELU:
        a.value = 0.7;
        in[0] = tx_in(g, "x", nx3);
        return tx_op(g, op, in, 1, &a);
    case OP_CAST:
        a.to = DT_F64;
        in[0] = tx_in(g, "x", nx3);
        return tx_op(g, op, in, 1, &a);
    case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_POW: case OP_MAXIMUM:
    case OP_MINIMUM: case OP_GT: case OP_GE: case OP_LT: case OP_LE: case OP_EQ:
        in[0] = tx_in(g, "x", nx3);
        in[1] = tx_in(g, "y", ir_shape1(3));
        return tx_op(g, op, in, 2, NULL);
    case OP_SELECT:
        in[0] = tx_in(g, "c", nx3);
        in[1] = tx_in(g, "a", ir_shape1(3));
        in[2] = tx_in(g, "b", nx3);
        return tx_op(g, op, in, 3, NULL);
    case OP_REDUCE_SUM: case OP_REDUCE_MEAN: case OP_REDUCE_MAX: case OP_ARGMAX:
        a.naxes = 1;
        a.axes[0] = 2;
        if (op != OP_ARGMAX) {
            a.naxes = 2;
            a.axes[1] = 1;
        }
        a.keepdims = true;
        in[0] = tx_in(g, "x", tx_shape(3, IR_DIM_N, 3, 4, 0));
        return tx_op(g, op, in, 1, &a);
    case OP_BROADCAST:
        a.shape = tx_shape(3, IR_DIM_N, 2, 3, 0);
        in[0] = tx_in(g, "x", ir_shape1(3));
        return tx_op(g, op, in, 1, &a);
    case OP_RESHAPE:
        a.shape = tx_shape(2, IR_DIM_N, 12, 0, 0);
        in[0] = tx_in(g, "x", tx_shape(3, IR_DIM_N, 4, 3, 0));
        return tx_op(g, op, in, 1, &a);
    case OP_TRANSPOSE:
        a.naxes = 3;
        a.axes[0] = 2, a.axes[1] = 0, a.axes[2] = 1;
        in[0] = tx_in(g, "x", tx_shape(3, 2, 3, 4, 0));
        return tx_op(g, op, in, 1, &a);
    case OP_SLICE:
        a.begin[0] = 0, a.end[0] = INT64_MAX;
        a.begin[1] = 2, a.end[1] = 5;
        a.begin[2] = 1, a.end[2] = INT64_MAX, a.step[2] = 2;
        in[0] = tx_in(g, "x", tx_shape(3, IR_DIM_N, 7, 7, 0));
        return tx_op(g, op, in, 1, &a);
    case OP_SLICE_GRAD:
        a.shape = ir_shape2(4, 7);
        a.begin[0] = 1, a.end[0] = 3;
        a.begin[1] = 0, a.end[1] = INT64_MAX, a.step[1] = 2;
        in[0] = tx_in(g, "dy", ir_shape2(2, 4));
        return tx_op(g, op, in, 1, &a);
    case OP_CONCAT:
        a.naxes = 1;
        a.axes[0] = 1;
        in[0] = tx_in(g, "x", tx_shape(2, IR_DIM_N, 2, 0, 0));
        in[1] = tx_in(g, "y", nx3);
        in[2] = tx_in(g, "z", tx_shape(2, IR_DIM_N, 1, 0, 0));
        return tx_op(g, op, in, 3, &a);
    case OP_MATMUL:
        a.ta = a.tb = true;
        in[0] = tx_in(g, "a", ir_shape2(4, 3));
        in[1] = tx_in(g, "b", ir_shape2(5, 4));
        return tx_op(g, op, in, 2, &a);
    case OP_CONV2D:
        a.stride[0] = a.stride[1] = 2;
        a.pad[0] = a.pad[1] = a.pad[2] = a.pad[3] = 1;
        in[0] = tx_in(g, "x", img);
        in[1] = tx_in(g, "k", tx_shape(4, 3, 3, 2, 4));
        return tx_op(g, op, in, 2, &a);
    case OP_CONV2D_GRAD_INPUT:
        a.stride[0] = a.stride[1] = 2;
        a.pad[0] = a.pad[1] = a.pad[2] = a.pad[3] = 1;
        a.shape = img;
        in[0] = tx_in(g, "dy", tx_shape(4, IR_DIM_N, 4, 4, 4));
        in[1] = tx_in(g, "k", tx_shape(4, 3, 3, 2, 4));
        return tx_op(g, op, in, 2, &a);
    case OP_CONV2D_GRAD_KERNEL:
        a.stride[0] = a.stride[1] = 2;
        a.pad[0] = a.pad[1] = a.pad[2] = a.pad[3] = 1;
        a.shape = tx_shape(4, 3, 3, 2, 4);
        in[0] = tx_in(g, "x", img);
        in[1] = tx_in(g, "dy", tx_shape(4, IR_DIM_N, 4, 4, 4));
        return tx_op(g, op, in, 2, &a);
    case OP_MAX_POOL2D: case OP_AVG_POOL2D:
        a.window[0] = a.window[1] = 3;
        a.stride[0] = a.stride[1] = 2;
        a.pad[1] = a.pad[3] = 1;
        in[0] = tx_in(g, "x", img);
        return tx_op(g, op, in, 1, &a);
    case OP_MAX_POOL2D_GRAD:
        a.window[0] = a.window[1] = 3;
        a.stride[0] = a.stride[1] = 2;
        a.pad[1] = a.pad[3] = 1;
        in[0] = tx_in(g, "x", img);
        in[1] = tx_in(g, "dy", tx_shape(4, IR_DIM_N, 4, 4, 2));
        return tx_op(g, op, in, 2, &a);
    case OP_AVG_POOL2D_GRAD:
        a.window[0] = a.window[1] = 3;
        a.stride[0] = a.stride[1] = 2;
        a.pad[1] = a.pad[3] = 1;
        a.shape = img;
        in[0] = tx_in(g, "dy", tx_shape(4, IR_DIM_N, 4, 4, 2));
        return tx_op(g, op, in, 1, &a);
    case OP_SOFTMAX: case OP_LOG_SOFTMAX:
        a.naxes = 1;
        a.axes[0] = 1;
        in[0] = tx_in(g, "x", nx3);
        return tx_op(g, op, in, 1, &a);
    case OP_LOG_SOFTMAX_DOT: case OP_LOG_SOFTMAX_GRAD:
        a.naxes = 1;
        a.axes[0] = 1;
        in[0] = tx_in(g, "x", nx3);
        in[1] = tx_in(g, "t", nx3);
        return tx_op(g, op, in, 2, &a);
    case OP_ONE_HOT:
        a.depth = 10;
        a.to = DT_F64;
        in[0] = tx_in(g, "label", ir_shape1(IR_DIM_N));
        return tx_op(g, op, in, 1, &a);
    case OP_GATHER:
        a.naxes = 1;
        a.axes[0] = 1;
        in[0] = tx_in(g, "table", tx_shape(3, 4, 9, 3, 0));
        in[1] = ir_input(g, "ids", DT_I32, ir_shape2(2, 3), tx_loc(2, 5));
        return tx_op(g, op, in, 2, &a);
    case OP_GATHER_GRAD:
        a.naxes = 1;
        a.axes[0] = 0;
        a.shape = ir_shape2(9, 5);
        in[0] = tx_in(g, "dy", tx_shape(3, IR_DIM_N, 3, 5, 0));
        in[1] = tx_in(g, "ids", nx3);
        return tx_op(g, op, in, 2, &a);
    case OP_DROPOUT_MASK:
        a.value = 0.25;
        a.stream = 7;
        in[0] = tx_in(g, "x", nx3);
        return tx_op(g, op, in, 1, &a);
    case OP_REPLICA_MEAN:
        in[0] = tx_in(g, "m", ir_shape1(3));
        return tx_op(g, op, in, 1, &a);
    case OP_PHASE:
        a.name = "bn1";
        in[0] = tx_in(g, "t", nx3);
        in[1] = tx_in(g, "i", nx3);
        return tx_op(g, op, in, 2, &a);
    case OP_FUSED:
        in[0] = tx_in(g, "x", nx3);
        in[1] = tx_in(g, "y", ir_shape1(3));
        return tx_fused(g, in, 2, tx_body(nx3, ir_shape1(3)), tx_loc(40, 1));
    case OP_LOOP: {
        Diags d;
        diags_init(&d);
        in[0] = tx_in(g, "h", nx3);
        in[1] = tx_in(g, "x", tx_shape(3, IR_DIM_N, 5, 2, 0));
        in[2] = tx_in(g, "w", tx_shape(2, 2, 3, 0, 0));
        Node *n = ir_loop(g, tx_loop_body(), in, 3, 1, true, tx_loc(42, 1), &d);
        ck_assert_msg(n != NULL, "loop: %s", d.n ? d.v[0].msg : "?");
        diags_free(&d);
        return n;
    }
    case OP_RESULT:
        in[0] = tx_in(g, "x", nx3);
        in[1] = tx_in(g, "i", nx3);
        in[0] = tx_fused(g, in, 2, tx_softmax_body(nx3), tx_loc(41, 1));
        a.index = 1;
        return tx_op(g, op, in, 1, &a);
    default:
        return NULL;
    }
}

static inline void tx_run(RunSettings *r)
{
    r->batch = 128;
    r->epochs = 10;
    r->sched = SCHED_STEP;
    r->sched_step = 3;
    r->sched_gamma = 0.5;
    r->seed = 18446744073709551615ULL;
}

static inline void tx_train(TrainConfig *t, Graph *g)
{
    t->opt = OPT_SGD;
    t->lr = 0.1;
    t->momentum = 0.9;
    t->nesterov = true;
    t->beta1 = 0.8;
    t->beta2 = 0.99;
    t->eps = 1e-8;
    t->rho = 0.95;
    t->clip_value = 4.5;
    t->clip_norm = 1.25;
    t->weight_decay = 5e-4;
    t->nfreeze = 2;
    t->freeze = arena_alloc(g->arena, 2 * sizeof(char *));
    t->freeze[0] = "conv*";
    t->freeze[1] = "bn?.\"x\"";
}

/* A graph that uses every op at least once, with a train block, every
 * output kind and labels; used for truncation and mutation tests. */
static inline Graph *tx_big_graph(void)
{
    Graph *g = ir_graph_new("big model");
    g->has_train = true;
    tx_train(&g->train, g);
    for (int op = 0; op < OP_COUNT; op++) {
        Node *n = tx_op_case(g, (Op)op);
        ck_assert_ptr_nonnull(n);
        if (ir_ops[op].cls != OPC_LEAF)
            n->label = op % 3 ? "h" : NULL;
    }
    Diags d;
    diags_init(&d);
    Node *w = ir_find_param(g, "bn.moving_var");
    Node *x = ir_find_input(g, "x");
    Attrs ra = ir_attrs();
    ra.naxes = 2;
    ra.axes[1] = 1;
    Node *s = ir_op(g, OP_REDUCE_SUM, &x, 1, &ra, tx_loc(90, 1), &d);
    ck_assert_ptr_nonnull(s);
    s->label = "loss";
    Node *u = ir_unary(g, OP_NEG, w, tx_loc(91, 1), &d);
    ck_assert_int_eq(d.nerrors, 0);
    ir_add_output(g, OUT_LOSS, "loss", s, NULL, false);
    ir_add_output(g, OUT_METRIC, "accuracy", s, NULL, true);
    ir_add_output(g, OUT_VALUE, "probs", x, NULL, false);
    ir_add_output(g, OUT_GRAD, "grad.bn.moving_var", u, w, false);
    ir_add_output(g, OUT_UPDATE, "bn.moving_var", u, w, true);
    diags_free(&d);
    return g;
}

/* "file:line:col: message" of the first diagnostic. */
static inline const char *tx_first(Diags *d, char *buf, size_t n)
{
    if (!d->n)
        return "";
    Diag *g = &d->v[0];
    snprintf(buf, n, "%s:%d:%d: %s", g->loc.file ? g->loc.file : "?", g->loc.line, g->loc.col, g->msg);
    return buf;
}

#endif
