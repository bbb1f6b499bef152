/* Lowering of the model language to IR: the parameters and outputs of
 * every example, layer lowering (padding, batchnorm, dropout, names),
 * literals, indexing, losses, the train block, and error recovery. */
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "frontend/fe.h"
#include "testutil.h"

static Graph *compile(const char *src, Diags *d)
{
    diags_init(d);
    size_t n = strlen(src);
    const char *f = diags_add_source(d, "t.mdl", src, n);
    return fe_compile(f, src, n, d);
}

/* Compile and require success; the graph must verify. */
static Graph *ok(const char *src)
{
    Diags d;
    Graph *g = compile(src, &d);
    if (!g || !ir_verify(g, &d)) {
        diags_print(&d, stderr);
        ck_abort_msg("model did not compile");
    }
    diags_free(&d);
    return g;
}

/* Compile, require failure, return the messages joined by " | ". */
static char *errors(const char *src)
{
    Diags d;
    Graph *g = compile(src, &d);
    ck_assert_ptr_null(g);
    StrBuf b;
    sb_init(&b);
    for (int i = 0; i < d.n; i++)
        sb_printf(&b, "%s%d:%d: %s", i ? " | " : "", d.v[i].loc.line, d.v[i].loc.col, d.v[i].msg);
    diags_free(&d);
    return sb_take(&b);
}

static int count_op(Graph *g, Op op)
{
    int k = 0;
    for (int i = 0; i < g->nnodes; i++)
        k += g->nodes[i]->op == op;
    return k;
}

static Node *nth_op(Graph *g, Op op, int nth)
{
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i]->op == op && nth-- == 0)
            return g->nodes[i];
    ck_abort_msg("no %s node", ir_ops[op].name);
    return NULL;
}

static const Output *output(Graph *g, const char *name)
{
    for (int i = 0; i < g->nouts; i++)
        if (strcmp(g->outs[i].name, name) == 0)
            return &g->outs[i];
    ck_abort_msg("no output %s", name);
    return NULL;
}

static char *param_names(Graph *g)
{
    StrBuf b;
    sb_init(&b);
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i]->op == OP_PARAM)
            sb_printf(&b, "%s%s", b.len ? " " : "", g->nodes[i]->a.name);
    return sb_take(&b);
}

static char *output_names(Graph *g)
{
    static const char *kinds[] = {"loss", "metric", "value", "grad", "update"};
    StrBuf b;
    sb_init(&b);
    for (int i = 0; i < g->nouts; i++)
        sb_printf(&b, "%s%s:%s", i ? " " : "", kinds[g->outs[i].kind], g->outs[i].name);
    return sb_take(&b);
}

static const char *type_of(const Node *n)
{
    static char buf[128];
    return ir_type_str(n->dt, &n->shape, buf, sizeof buf);
}

/* ---- the examples ---- */

typedef struct Example {
    const char *file, *params, *outputs;
} Example;

#define BN(l) l ".gamma " l ".beta " l ".moving_mean " l ".moving_var"
#define BNUP(l) "update:" l ".moving_mean update:" l ".moving_var"
#define MLP4 "dense.kernel dense.bias dense_1.kernel dense_1.bias dense_2.kernel dense_2.bias " \
             "dense_3.kernel dense_3.bias"

static const Example examples[] = {
    {"examples/fashion_mlp.mdl",
     "dense.kernel dense.bias dense_1.kernel dense_1.bias dense_2.kernel dense_2.bias",
     "loss:loss metric:accuracy value:probs"},
    {"examples/fashion_cnn.mdl",
     "conv2d.kernel conv2d.bias conv2d_1.kernel conv2d_1.bias dense.kernel dense.bias "
     "dense_1.kernel dense_1.bias",
     "loss:loss metric:accuracy value:probs"},
    {"examples/fashion_cnn_bn.mdl",
     "conv2d.kernel " BN("batchnorm") " conv2d_1.kernel " BN("batchnorm_1")
     " dense.kernel dense.bias dense_1.kernel dense_1.bias",
     "loss:loss " BNUP("batchnorm") " " BNUP("batchnorm_1") " metric:accuracy value:probs"},
    {"examples/s0_reparam/model1.mdl", "w1 w2", "loss:loss value:p"},
    {"examples/s0_reparam/model2.mdl", "w1 w2", "loss:loss value:p"},
    {"examples/s0_reparam/model3.mdl", "w1 w2", "loss:loss value:p"},
    {"examples/s1_learning_phase/model.mdl",
     "conv2d.kernel " BN("batchnorm") " conv2d_1.kernel " BN("batchnorm_1") " conv2d_2.kernel "
     BN("batchnorm_2") " conv2d_3.kernel " BN("batchnorm_3") " dense.kernel " BN("batchnorm_4")
     " dense_1.kernel dense_1.bias",
     "loss:loss " BNUP("batchnorm") " " BNUP("batchnorm_1") " " BNUP("batchnorm_2") " "
     BNUP("batchnorm_3") " " BNUP("batchnorm_4") " metric:accuracy value:probs"},
    {"examples/s2_init_scale/sigma_0.1.mdl", MLP4, "loss:loss value:p metric:accuracy"},
    {"examples/s2_init_scale/sigma_1.mdl", MLP4, "loss:loss value:p metric:accuracy"},
    {"examples/s2_init_scale/sigma_10.mdl", MLP4, "loss:loss value:p metric:accuracy"},
    {"examples/s2_init_scale/sigma_20.mdl", MLP4, "loss:loss value:p metric:accuracy"},
    {"examples/s2_init_scale/inputs_small.mdl", MLP4, "loss:loss value:p metric:accuracy"},
    {"examples/s2_init_scale/inputs_large.mdl", MLP4, "loss:loss value:p metric:accuracy"},
    {"examples/s3_vanishing/two_layer.mdl", "dense.kernel dense.bias dense_1.kernel dense_1.bias",
     "loss:loss value:o"},
    {"examples/s3_vanishing/three_layer.mdl",
     "dense.kernel dense.bias dense_1.kernel dense_1.bias dense_2.kernel dense_2.bias",
     "loss:loss value:o"},
    {"examples/s3_vanishing/three_layer_xavier.mdl",
     "dense.kernel dense.bias dense_1.kernel dense_1.bias dense_2.kernel dense_2.bias",
     "loss:loss value:o"},
    {"examples/s4_frozen_bn/model.mdl",
     "base_conv1.kernel " BN("base_bn1") " base_conv2.kernel " BN("base_bn2")
     " head_dense.kernel head_dense.bias head_out.kernel head_out.bias",
     "loss:loss " BNUP("base_bn1") " " BNUP("base_bn2") " metric:accuracy value:probs"},
};

START_TEST(example_params_and_outputs)
{
    const Example *ex = &examples[_i];
    Diags d;
    diags_init(&d);
    Graph *g = fe_load_file(ex->file, &d);
    if (!g)
        diags_print(&d, stderr);
    ck_assert_ptr_nonnull(g);
    ck_assert(ir_verify(g, &d));
    ck_assert_int_eq(d.n, 0);
    char *p = param_names(g), *o = output_names(g);
    ck_assert_str_eq(p, ex->params);
    ck_assert_str_eq(o, ex->outputs);
    ck_assert_int_eq(g->outs[0].kind, OUT_LOSS);
    ck_assert_int_eq(g->outs[0].val->shape.rank, 0);
    ck_assert(g->has_train);
    free(p);
    free(o);
    ir_graph_free(g);
    diags_free(&d);
}
END_TEST

START_TEST(example_details)
{
    Diags d;
    diags_init(&d);
    Graph *g = fe_load_file("examples/s2_init_scale/sigma_10.mdl", &d);
    ck_assert_ptr_nonnull(g);
    ck_assert_str_eq(g->name, "s2_sigma_10");
    Node *k = ir_find_param(g, "dense.kernel");
    ck_assert_str_eq(type_of(k), "f64[784,20]");
    ck_assert_int_eq(k->a.init.kind, INIT_NORMAL);
    ck_assert(k->a.init.a == 0 && k->a.init.b == 10);
    ck_assert_int_eq(ir_find_param(g, "dense.bias")->a.init.kind, INIT_NORMAL);
    ck_assert_int_eq(ir_find_param(g, "dense_1.kernel")->a.init.kind, INIT_GLOROT_UNIFORM);
    ck_assert_int_eq(ir_find_param(g, "dense_1.bias")->a.init.kind, INIT_ZEROS);
    ir_graph_free(g);

    g = fe_load_file("examples/s0_reparam/model2.mdl", &d);
    ck_assert_ptr_nonnull(g);
    double l1 = sqrt(6.0 / 1809.0);
    Node *w1 = ir_find_param(g, "w1"), *w2 = ir_find_param(g, "w2");
    ck_assert_int_eq(w1->a.init.kind, INIT_UNIFORM);
    ck_assert_double_eq_tol(w1->a.init.b, 3 * l1, 1e-15);
    ck_assert_double_eq_tol(w2->a.init.a, -200 * l1, 1e-12);
    ir_graph_free(g);

    g = fe_load_file("examples/s4_frozen_bn/model.mdl", &d);
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(g->train.nfreeze, 1);
    ck_assert_str_eq(g->train.freeze[0], "base_*");
    ck_assert_int_eq(count_op(g, OP_PHASE), 3); /* two batchnorms, one dropout */
    ck_assert_int_eq(count_op(g, OP_DROPOUT_MASK), 1);
    ir_graph_free(g);
    diags_free(&d);
}
END_TEST

/* ---- layers ---- */

START_TEST(same_padding)
{
    int lo, hi;
    fe_same_pad(28, 3, 1, &lo, &hi);
    ck_assert(lo == 1 && hi == 1);
    fe_same_pad(28, 3, 2, &lo, &hi);
    ck_assert(lo == 0 && hi == 1);
    fe_same_pad(7, 3, 2, &lo, &hi);
    ck_assert(lo == 1 && hi == 1);
    fe_same_pad(5, 2, 1, &lo, &hi);
    ck_assert(lo == 0 && hi == 1);
    fe_same_pad(4, 1, 3, &lo, &hi);
    ck_assert(lo == 0 && hi == 0);
    fe_same_pad(28, 5, 1, &lo, &hi);
    ck_assert(lo == 2 && hi == 2);
    /* a window of 2^32 + 3: pads that no int holds, never truncated */
    ck_assert(!fe_same_pad(8, 4294967299LL, 1, &lo, &hi));
    ck_assert(fe_same_pad(8, 4294967294LL, 1, &lo, &hi) && lo == 2147483646 && hi == 2147483647);
    ck_assert(!fe_same_pad(8, 4294967296LL, 1, &lo, &hi));

    Graph *g = ok("input x: f32[N, 28, 28, 1]\n"
                  "a = conv2d(x, 4, 3, padding=\"same\")\n"
                  "b = conv2d(a, 4, [3, 5], stride=2, padding=\"same\")\n"
                  "c = conv2d(b, 4, 3)\n"
                  "d = max_pool2d(c, 2, stride=[2, 1], padding=\"same\")\n"
                  "e = conv2d(x, 2, kernel_size=(3, 5), strides=(2, 2,), padding='same')\n"
                  "output d\noutput e\n");
    Node *a = nth_op(g, OP_CONV2D, 0), *b = nth_op(g, OP_CONV2D, 1), *c = nth_op(g, OP_CONV2D, 2);
    ck_assert(a->a.pad[0] == 1 && a->a.pad[1] == 1 && a->a.pad[2] == 1 && a->a.pad[3] == 1);
    ck_assert_str_eq(type_of(a), "f32[N,28,28,4]");
    ck_assert(b->a.stride[0] == 2 && b->a.stride[1] == 2);
    ck_assert(b->a.pad[0] == 0 && b->a.pad[1] == 1 && b->a.pad[2] == 1 && b->a.pad[3] == 2);
    ck_assert_str_eq(type_of(b), "f32[N,14,14,4]");
    ck_assert(c->a.pad[0] == 0 && c->a.pad[1] == 0 && c->a.pad[2] == 0 && c->a.pad[3] == 0);
    ck_assert_str_eq(type_of(c), "f32[N,12,12,4]");
    Node *p = nth_op(g, OP_MAX_POOL2D, 0);
    ck_assert(p->a.window[0] == 2 && p->a.window[1] == 2);
    ck_assert(p->a.stride[0] == 2 && p->a.stride[1] == 1);
    ck_assert(p->a.pad[0] == 0 && p->a.pad[1] == 0 && p->a.pad[2] == 0 && p->a.pad[3] == 1);
    ck_assert_str_eq(type_of(p), "f32[N,6,12,4]");
    ck_assert_str_eq(type_of(ir_find_param(g, "conv2d_1.kernel")), "f32[3,5,4,4]");
    /* Python tuples work as lists, trailing comma included */
    ck_assert_str_eq(type_of(ir_find_param(g, "conv2d_3.kernel")), "f32[3,5,1,2]");
    ck_assert_str_eq(type_of(output(g, "e")->val), "f32[N,14,14,2]");
    ir_graph_free(g);
}
END_TEST

START_TEST(dense_and_names)
{
    Graph *g = ok("input x: f32[N, 8]\n"
                  "h = dense(x, 4, name=\"dense\")\n"
                  "h = dense(h, 3, activation=\"tanh\", use_bias=false)\n"
                  "h = dense(h, 2, name=\"dense_2x\", trainable=false, kernel_init=zeros, "
                  "bias_init=constant(0.5))\n"
                  "h = dense(h, 2, activation=softmax)\n"
                  "output h\n");
    char *p = param_names(g);
    ck_assert_str_eq(p, "dense.kernel dense.bias dense_1.kernel dense_2x.kernel dense_2x.bias "
                        "dense_2.kernel dense_2.bias");
    free(p);
    ck_assert(!ir_find_param(g, "dense_2x.kernel")->a.trainable);
    ck_assert_int_eq(ir_find_param(g, "dense_2x.kernel")->a.init.kind, INIT_ZEROS);
    ck_assert(ir_find_param(g, "dense_2x.bias")->a.init.a == 0.5);
    ck_assert_int_eq(count_op(g, OP_MATMUL), 4);
    ck_assert_int_eq(count_op(g, OP_ADD), 3);
    ck_assert_int_eq(count_op(g, OP_TANH), 1);
    Node *sm = nth_op(g, OP_SOFTMAX, 0);
    ck_assert_int_eq(sm->a.axes[0], 1);
    ck_assert_str_eq(sm->label, "h");
    ck_assert_int_eq(sm->loc.line, 5);
    ck_assert_int_eq(sm->loc.col, 5);
    ir_graph_free(g);
}
END_TEST

START_TEST(embedding_lowering)
{
    Graph *g = ok("input t: i32[N, 5]\n"
                  "a = embedding(t, 11, 4)\n"
                  "b = embedding(t, 7, 4, name=\"pos\", dtype=f64, embeddings_init=zeros, trainable=false)\n"
                  "output a\noutput b\n");
    char *p = param_names(g);
    ck_assert_str_eq(p, "embedding.embeddings pos.embeddings");
    free(p);
    Node *w = ir_find_param(g, "embedding.embeddings");
    ck_assert_str_eq(type_of(w), "f32[11,4]");
    ck_assert_int_eq(w->a.init.kind, INIT_UNIFORM);
    ck_assert(w->a.init.a == -0.05 && w->a.init.b == 0.05 && w->a.trainable);
    Node *v = ir_find_param(g, "pos.embeddings");
    ck_assert_str_eq(type_of(v), "f64[7,4]");
    ck_assert(v->a.init.kind == INIT_ZEROS && !v->a.trainable);
    Node *a = output(g, "a")->val;
    ck_assert_int_eq(a->op, OP_GATHER);
    ck_assert(a->in[0] == w && a->in[1] == ir_find_input(g, "t") && a->a.axes[0] == 0);
    ck_assert_str_eq(type_of(a), "f32[N,5,4]");
    ck_assert_str_eq(type_of(output(g, "b")->val), "f64[N,5,4]");
    ir_graph_free(g);
    char *e = errors("input t: i32[N, 5]\noutput a = embedding(t, 0, 4)\n");
    ck_assert_str_eq(e, "2:25: argument 'input_dim' of embedding() must be at least 1, got 0");
    free(e);
    e = errors("input t: i32[N, 5]\noutput a = embedding(t, 3, 4, dtype=i32)\n");
    ck_assert_str_eq(e, "2:37: embedding() tables are f32 or f64, not i32");
    free(e);
    e = errors("input t: i32[N, 5]\noutput a = embedding(t, 3)\n");
    ck_assert_str_eq(e, "2:12: embedding() is missing its argument 'output_dim'");
    free(e);
}
END_TEST

START_TEST(regularizer_lowering)
{
    Graph *g = ok("input x: f32[N, 4]\n"
                  "h = dense(x, 3, kernel_regularizer=l2(1e-4))\n"
                  "loss = mean(h)\n");
    Node *l = g->outs[0].val;
    ck_assert_int_eq(g->outs[0].kind, OUT_LOSS);
    ck_assert_int_eq(l->op, OP_ADD);
    ck_assert_str_eq(l->label, "regularized_loss");
    ck_assert_str_eq(l->in[0]->label, "loss");
    ck_assert_str_eq(l->in[1]->label, "dense.kernel_regularizer");
    ck_assert_int_eq(l->in[1]->loc.line, 2);
    ir_graph_free(g);
    char *e = errors("input x: f32[N, 4]\nh = dense(x, 3, kernel_regularizer=l3(1))\nloss = mean(h)\n");
    ck_assert_str_eq(e, "2:36: kernel_regularizer must be l2(factor), l1(factor), l1_l2(l1=, l2=) or none");
    free(e);
    e = errors("input x: f32[N, 4]\nh = dense(x, 3, kernel_regularizer=l2(-1))\nloss = mean(h)\n");
    ck_assert_str_eq(e, "2:39: l2(): the factor must be a number >= 0");
    free(e);
    e = errors("input x: f32[N, 4]\nh = dense(x, 3, kernel_regularizer=l2(l1=1))\nloss = mean(h)\n");
    ck_assert_str_eq(e, "2:42: l2() takes one factor, l2=");
    free(e);
}
END_TEST

START_TEST(batchnorm_lowering)
{
    Graph *g = ok("input x: f64[N, 6, 6, 3]\n"
                  "h = batchnorm(x, momentum=0.9, epsilon=0.01)\n"
                  "output h\n");
    Node *mm = ir_find_param(g, "batchnorm.moving_mean"), *mv = ir_find_param(g, "batchnorm.moving_var");
    Node *gamma = ir_find_param(g, "batchnorm.gamma");
    ck_assert(gamma->a.trainable && gamma->a.role == ROLE_WEIGHT);
    ck_assert_int_eq(gamma->a.init.kind, INIT_ONES);
    ck_assert(!mm->a.trainable && mm->a.role == ROLE_STATE && mm->a.init.kind == INIT_ZEROS);
    ck_assert(!mv->a.trainable && mv->a.role == ROLE_STATE && mv->a.init.kind == INIT_ONES);
    ck_assert_str_eq(type_of(mm), "f64[3]");
    Node *ph = nth_op(g, OP_PHASE, 0);
    ck_assert_str_eq(ph->a.name, "batchnorm");
    ck_assert_str_eq(type_of(ph), "f64[N,6,6,3]");
    /* batch statistics over N, H, W; the inference operand uses the state */
    Node *mean_b = nth_op(g, OP_REDUCE_MEAN, 0);
    ck_assert_int_eq(mean_b->a.naxes, 3);
    ck_assert(mean_b->a.axes[0] == 0 && mean_b->a.axes[1] == 1 && mean_b->a.axes[2] == 2);
    ck_assert_int_eq(count_op(g, OP_RSQRT), 2);
    const Output *um = output(g, "batchnorm.moving_mean"), *uv = output(g, "batchnorm.moving_var");
    ck_assert(um->kind == OUT_UPDATE && um->train_only && um->target == mm);
    ck_assert(uv->kind == OUT_UPDATE && uv->train_only && uv->target == mv);
    /* new = 0.9 * moving + 0.1 * batch */
    Node *add = um->val;
    ck_assert_int_eq(add->op, OP_ADD);
    ck_assert_int_eq(add->in[0]->op, OP_MUL);
    ck_assert(add->in[0]->in[0]->op == OP_CONST && add->in[0]->in[0]->a.value == 0.9);
    ck_assert(add->in[0]->in[1] == mm);
    ck_assert_double_eq_tol(add->in[1]->in[0]->a.value, 0.1, 1e-15);
    ck_assert(add->in[1]->in[1] == mean_b);
    ck_assert_int_eq(add->in[0]->in[0]->dt, DT_F64);
    ir_graph_free(g);
}
END_TEST

START_TEST(dropout_lowering)
{
    Graph *g = ok("input x: f32[N, 8]\n"
                  "h = dropout(x, 0.25)\n"
                  "h = dropout(h, 0.5, name=\"drop\")\n"
                  "h = dropout(h, 0)\n"
                  "output h\n");
    ck_assert_int_eq(count_op(g, OP_PHASE), 2);
    Node *m0 = nth_op(g, OP_DROPOUT_MASK, 0), *m1 = nth_op(g, OP_DROPOUT_MASK, 1);
    ck_assert(m0->a.value == 0.25 && m0->a.stream == 0);
    ck_assert(m1->a.value == 0.5 && m1->a.stream == 1);
    ck_assert_int_eq(g->next_stream, 2);
    Node *p0 = nth_op(g, OP_PHASE, 0), *p1 = nth_op(g, OP_PHASE, 1);
    ck_assert_str_eq(p0->a.name, "dropout");
    ck_assert_str_eq(p1->a.name, "drop");
    ck_assert_int_eq(p0->in[0]->op, OP_MUL);
    ck_assert(p0->in[0]->in[1] == m0);
    ck_assert(p0->in[1] == g->nodes[0]); /* inference: the input itself */
    ck_assert(output(g, "h")->val == p1); /* rate 0 adds nothing */
    ir_graph_free(g);
}
END_TEST

/* ---- expressions ---- */

START_TEST(literals_adopt_dtype)
{
    Graph *g = ok("input x: f64[N, 4]\n"
                  "a = (x - 0.5) * 0.2\n"
                  "b = 2 ** 3 * x / (1 + 1)\n"
                  "c = x ** 2\n"
                  "d = -x ** 3\n"
                  "e = x != 1\n"
                  "output a\noutput b\noutput c\noutput d\noutput e\n");
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i]->op == OP_CONST)
            ck_assert_int_eq(g->nodes[i]->dt, DT_F64);
    /* folded: 2 ** 3 = 8 and 1 + 1 = 2 */
    Node *mul = output(g, "b")->val->in[0];
    ck_assert_int_eq(mul->op, OP_MUL);
    ck_assert(mul->in[0]->op == OP_CONST && mul->in[0]->a.value == 8);
    ck_assert(output(g, "b")->val->in[1]->a.value == 2);
    ck_assert_int_eq(output(g, "c")->val->op, OP_SQUARE);
    Node *d = output(g, "d")->val;
    ck_assert(d->op == OP_NEG && d->in[0]->op == OP_POW);
    Node *e = output(g, "e")->val;
    ck_assert(e->op == OP_SUB && e->in[1]->op == OP_EQ);
    ir_graph_free(g);
}
END_TEST

START_TEST(indexing)
{
    Graph *g = ok("input x: f32[N, 5, 6]\n"
                  "a = x[:, 1:3]\n"
                  "b = x[0, -1]\n"
                  "c = x[2:4, ::2, 1:-1:3]\n"
                  "d = x[:, :]\n"
                  "output a\noutput b\noutput c\noutput d\n");
    Node *a = output(g, "a")->val;
    ck_assert_int_eq(a->op, OP_SLICE);
    ck_assert_str_eq(type_of(a), "f32[N,2,6]");
    ck_assert(a->a.begin[1] == 1 && a->a.end[1] == 3 && a->a.end[0] == INT64_MAX);
    Node *b = output(g, "b")->val;
    ck_assert_int_eq(b->op, OP_RESHAPE);
    ck_assert_str_eq(type_of(b), "f32[6]");
    ck_assert(b->in[0]->a.begin[0] == 0 && b->in[0]->a.end[0] == 1);
    ck_assert(b->in[0]->a.begin[1] == 4 && b->in[0]->a.end[1] == 5);
    Node *c = output(g, "c")->val;
    ck_assert_str_eq(type_of(c), "f32[2,3,2]");
    ck_assert(c->a.begin[2] == 1 && c->a.end[2] == 5 && c->a.step[2] == 3);
    ck_assert(output(g, "d")->val == g->nodes[0]);
    ir_graph_free(g);
}
END_TEST

START_TEST(shape_functions)
{
    Graph *g = ok("input x: f32[N, 4, 6]\n"
                  "a = reshape(x, [N, -1, 3])\n"
                  "b = flatten(x)\n"
                  "c = transpose(reshape(x, [N, 24]))\n"
                  "d = sum(x, axis=[1, -1], keepdims=true)\n"
                  "e = mean(x)\n"
                  "f = concat([x, x * 2], axis=-1)\n"
                  "g = cast(one_hot(cast(x, i32), 3), f64)\n"
                  "output a\noutput b\noutput c\noutput d\noutput e\noutput f\noutput g\n");
    ck_assert_str_eq(type_of(output(g, "a")->val), "f32[N,8,3]");
    ck_assert_str_eq(type_of(output(g, "b")->val), "f32[N,24]");
    ck_assert_str_eq(type_of(output(g, "c")->val), "f32[24,N]");
    ck_assert_str_eq(type_of(output(g, "d")->val), "f32[N,1,1]");
    ck_assert_str_eq(type_of(output(g, "e")->val), "f32[]");
    ck_assert_str_eq(type_of(output(g, "f")->val), "f32[N,4,12]");
    ck_assert_str_eq(type_of(output(g, "g")->val), "f64[N,4,6,3]");
    ir_graph_free(g);
}
END_TEST

START_TEST(dotted_parameter_reference)
{
    Graph *g = ok("input x: f32[N, 4]\n"
                  "input y: f32[N, 2]\n"
                  "p = dense(x, 2)\n"
                  "loss = mse(y, p)\n"
                  "loss = loss + 1e-4 * sum(dense.kernel ** 2)\n");
    Node *loss = g->outs[0].val;
    ck_assert_int_eq(loss->op, OP_ADD);
    ck_assert_str_eq(loss->label, "loss");
    Node *sq = loss->in[1]->in[1]->in[0];
    ck_assert_int_eq(sq->op, OP_SQUARE);
    ck_assert(sq->in[0] == ir_find_param(g, "dense.kernel"));
    /* default output: the last assignment other than the loss */
    ck_assert(output(g, "predictions")->val->op == OP_ADD);
    ir_graph_free(g);
}
END_TEST

/* ---- losses and metrics ---- */

START_TEST(sparse_ce_and_accuracy)
{
    Graph *g = ok("input x: f32[N, 4]\n"
                  "input y: i32[N]\n"
                  "z = dense(x, 3)\n"
                  "loss = sparse_categorical_crossentropy(y, z, from_logits=true)\n"
                  "metric acc = accuracy(y, z)\n");
    Node *oh = nth_op(g, OP_ONE_HOT, 0);
    ck_assert(oh->a.depth == 3 && oh->a.to == DT_F32 && oh->in[0] == ir_find_input(g, "y"));
    Node *ls = nth_op(g, OP_LOG_SOFTMAX, 0);
    ck_assert_int_eq(ls->a.axes[0], 1);
    ck_assert_int_eq(g->outs[0].val->op, OP_NEG);
    const Output *acc = output(g, "acc");
    ck_assert_int_eq(acc->kind, OUT_METRIC);
    ck_assert_int_eq(acc->val->op, OP_REDUCE_MEAN);
    ck_assert_int_eq(acc->val->in[0]->op, OP_EQ);
    ck_assert_int_eq(acc->val->in[0]->in[0]->op, OP_ARGMAX);
    ck_assert_int_eq(acc->val->in[0]->in[1]->op, OP_CAST);
    ir_graph_free(g);
}
END_TEST

static bool reaches(Node *from, Node *target, int depth)
{
    if (from == target)
        return true;
    for (int i = 0; depth > 0 && i < from->nin; i++)
        if (reaches(from->in[i], target, depth - 1))
            return true;
    return false;
}

START_TEST(cross_entropy_forms)
{
    /* from probabilities of a sigmoid: computed from its logits */
    Graph *g = ok("input x: f32[N, 4]\n"
                  "input t: f32[N, 4]\n"
                  "p = sigmoid(x * 2)\n"
                  "loss = binary_crossentropy(t, p)\n");
    Node *sig = nth_op(g, OP_SIGMOID, 0);
    ck_assert(!reaches(g->outs[0].val, sig, 50));
    ck_assert_int_eq(count_op(g, OP_ABS), 1);
    ir_graph_free(g);
    /* from other probabilities: clipped, with log(p + eps) */
    g = ok("input x: f32[N, 4]\n"
           "input t: f32[N, 4]\n"
           "loss = binary_crossentropy(t, clip(x, 0, 1))\n");
    ck_assert_int_eq(count_op(g, OP_LOG), 2);
    ck_assert_int_eq(count_op(g, OP_MAXIMUM), 2); /* clip() and the eps clip */
    bool eps = false;
    for (int i = 0; i < g->nnodes; i++)
        eps |= g->nodes[i]->op == OP_CONST && g->nodes[i]->a.value == 1e-7;
    ck_assert(eps);
    ir_graph_free(g);
    /* categorical from a softmax: log_softmax of its input */
    g = ok("input x: f32[N, 4]\n"
           "input t: f32[N, 4]\n"
           "loss = categorical_crossentropy(t, softmax(x))\n");
    ck_assert_int_eq(count_op(g, OP_LOG_SOFTMAX), 1);
    ck_assert(!reaches(g->outs[0].val, nth_op(g, OP_SOFTMAX, 0), 50));
    ir_graph_free(g);
}
END_TEST

/* ---- train block ---- */

/* sync_batchnorm, read before the layers above the block are lowered:
 * each batchnorm's mean and variance become replica_mean of the local
 * reduce_mean (and nothing else changes); false or absent, none. */
START_TEST(sync_batchnorm)
{
    static const char *const setting[3] = {"  sync_batchnorm = true\n", "  sync_batchnorm = false\n", ""};
    int nodes[3];
    for (int k = 0; k < 3; k++) {
        char src[512];
        snprintf(src, sizeof src,
                 "input x: f32[N, 6, 6, 2]\n"
                 "h = batchnorm(conv2d(x, 4, 3))\n"
                 "h = batchnorm(dense(flatten(h), 5))\n"
                 "loss = mean(h)\n"
                 "train {\n"
                 "  batch = 8\n"
                 "%s"
                 "}\n",
                 setting[k]);
        Graph *g = ok(src);
        nodes[k] = g->nnodes;
        ck_assert_int_eq(count_op(g, OP_REPLICA_MEAN), k == 0 ? 4 : 0);
        for (int i = 0; k == 0 && i < 4; i++) {
            Node *r = nth_op(g, OP_REPLICA_MEAN, i);
            ck_assert_int_eq(r->in[0]->op, OP_REDUCE_MEAN);
            ck_assert_int_eq(r->shape.rank, 1);
        }
        ir_graph_free(g);
    }
    ck_assert_int_eq(nodes[0], nodes[2] + 4);
    ck_assert_int_eq(nodes[1], nodes[2]);
}
END_TEST

/* Compile with the run settings the train block gives. */
static Graph *ok_run(const char *src, RunSettings *run)
{
    Diags d;
    diags_init(&d);
    Graph *g = fe_compile_model("t.mdl", src, strlen(src), run, &d);
    if (!g || !ir_verify(g, &d)) {
        diags_print(&d, stderr);
        ck_abort_msg("model did not compile");
    }
    diags_free(&d);
    return g;
}

START_TEST(train_block)
{
    RunSettings r;
    Graph *g = ok_run("input x: f32[N, 4]\n"
                  "loss = mean(x)\n"
                  "train {\n"
                  "  optimizer = sgd(lr=0.1, momentum=0.9, nesterov=true)\n"
                  "  batch = 64; epochs = 3\n"
                  "  clip_value = 4.5\n"
                  "  clip_norm = 1\n"
                  "  weight_decay = 1e-4\n"
                  "  schedule = step(every=2, gamma=0.5)\n"
                  "  freeze = \"x*\"\n"
                  "  seed = 42\n"
                  "}\n", &r);
    const TrainConfig *t = &g->train;
    ck_assert(g->has_train);
    ck_assert_int_eq(t->opt, OPT_SGD);
    ck_assert(t->lr == 0.1 && t->momentum == 0.9 && t->nesterov);
    ck_assert(r.batch == 64 && r.epochs == 3);
    ck_assert(t->clip_value == 4.5 && t->clip_norm == 1 && t->weight_decay == 1e-4);
    ck_assert(r.sched == SCHED_STEP && r.sched_step == 2 && r.sched_gamma == 0.5);
    ck_assert(t->nfreeze == 1 && strcmp(t->freeze[0], "x*") == 0);
    ck_assert(r.seed == 42);
    ir_graph_free(g);

    g = ok_run("input x: f32[N, 4]\nloss = mean(x)\ntrain {\n  optimizer = rmsprop(0.01, rho=0.8)\n"
               "  schedule = cosine\n}\n", &r);
    ck_assert(g->train.opt == OPT_RMSPROP && g->train.lr == 0.01 && g->train.rho == 0.8);
    ck_assert(g->train.eps == 1e-7 && r.sched == SCHED_COSINE);
    ck_assert(r.batch == 32 && r.epochs == 1);
    ir_graph_free(g);

    g = ok("input x: f32[N, 4]\nloss = mean(x)\n");
    ck_assert(!g->has_train);
    ck_assert_str_eq(g->name, "t");
    ir_graph_free(g);
}
END_TEST

/* Schedules, warm-up and callbacks: Keras's defaults for what is not
 * given, both spellings of restore_best_weights and save_best_only. */
START_TEST(train_callbacks)
{
    RunSettings r;
    Graph *g = ok_run("input x: f32[N, 4]\ninput y: i32[N]\nloss = mean(x)\n"
                      "train {\n  schedule = exponential(100, 0.5, staircase=true)\n  warmup = 20\n"
                      "  callbacks = [early_stopping(patience=3, restore_best=true),\n"
                      "               reduce_lr_on_plateau(\"val_accuracy\", factor=0.5, cooldown=1),\n"
                      "               checkpoint(\"best.st\", save_best_only=true, mode=\"min\")]\n}\n"
                      "metric accuracy = accuracy(y, x)\n",
                      &r);
    ck_assert(r.sched == SCHED_EXPONENTIAL && r.decay_steps == 100 && r.decay_rate == 0.5 && r.staircase);
    ck_assert_int_eq(r.warmup, 20);
    ck_assert_str_eq(r.es.monitor, "val_loss");
    ck_assert(r.es.patience == 3 && r.es.min_delta == 0 && r.es.mode == MON_AUTO && r.es.restore_best);
    ck_assert_str_eq(r.rlr.monitor, "val_accuracy");
    ck_assert(r.rlr.factor == 0.5 && r.rlr.patience == 10 && r.rlr.min_delta == 1e-4 && r.rlr.cooldown == 1 &&
              r.rlr.min_lr == 0 && r.rlr.mode == MON_AUTO);
    ck_assert_str_eq(r.ckpt.path, "best.st");
    ck_assert_str_eq(r.ckpt.monitor, "val_loss");
    ck_assert(r.ckpt.best_only && r.ckpt.mode == MON_MIN);
    ir_graph_free(g);

    g = ok_run("input x: f32[N, 4]\nloss = mean(x)\ntrain {\n"
               "  callbacks = early_stopping(monitor=\"loss\", min_delta=0.01, restore_best_weights=true)\n}\n",
               &r);
    ck_assert(r.sched == SCHED_CONSTANT && r.warmup == 0);
    ck_assert_str_eq(r.es.monitor, "loss");
    ck_assert(r.es.patience == 0 && r.es.min_delta == 0.01 && r.es.restore_best);
    ck_assert_ptr_null(r.rlr.monitor);
    ck_assert_ptr_null(r.ckpt.monitor);
    ir_graph_free(g);

    ck_assert(!ir_monitor_max("val_loss") && !ir_monitor_max("loss") && !ir_monitor_max("mae"));
    ck_assert(ir_monitor_max("accuracy") && ir_monitor_max("val_accuracy") && ir_monitor_max("val_auc"));
}
END_TEST

/* ---- errors ---- */

START_TEST(error_recovery)
{
    char *e = errors("input x: f32[N, 4]\n"
                     "a = foo(x)\n"
                     "b = a * 2\n"
                     "c = relu(b) @ x\n"
                     "d = dense(x, 3, activation=swishy)\n"
                     "loss = mean(x + nothing)\n");
    ck_assert_str_eq(e, "2:5: unknown function 'foo' | "
                        "5:28: argument 'activation' of dense() got \"swishy\"; did you mean \"swish\"? "
                        "(it must be \"none\", \"linear\", \"relu\", \"tanh\", \"sigmoid\", \"elu\", "
                        "\"softmax\", \"leaky_relu\", \"gelu\", \"softplus\", \"softsign\", \"selu\", "
                        "\"silu\", \"swish\", \"hard_sigmoid\", \"hard_silu\" or \"hard_swish\") | "
                        "6:17: unknown name 'nothing'");
    free(e);
    e = errors("input x: f32[N, 4]\nh = relu(x\ng = x +\nloss = mean(x)\n");
    ck_assert_str_eq(e, "2:9: '(' is never closed | 3:8: expected an expression, found end of line");
    free(e);
    e = errors("input x: f32[N, 4]\nparam w: f32[4, 3]\nloss = mean(x @ w @ w)\n");
    ck_assert_str_eq(e, "3:19: matmul of f32[N,3] and f32[4,3]: inner dimensions 3 and 4 differ");
    free(e);
}
END_TEST

START_TEST(error_limit)
{
    StrBuf b;
    sb_init(&b);
    sb_puts(&b, "input x: f32[N, 4]\n");
    for (int i = 0; i < 30; i++)
        sb_printf(&b, "h%d = x @ x\n", i);
    Diags d;
    diags_init(&d);
    d.max_errors = 5;
    const char *f = diags_add_source(&d, "t.mdl", b.s, b.len);
    ck_assert_ptr_null(fe_compile(f, b.s, b.len, &d));
    ck_assert_int_eq(d.n, 5);
    ck_assert_int_eq(d.nerrors, 30); /* all counted, 5 recorded */
    diags_free(&d);
    sb_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("frontend_lower");
    TCase *t = tcase_create("lower");
    tcase_add_loop_test(t, example_params_and_outputs, 0, ARRAY_LEN(examples));
    tcase_add_test(t, example_details);
    tcase_add_test(t, same_padding);
    tcase_add_test(t, dense_and_names);
    tcase_add_test(t, embedding_lowering);
    tcase_add_test(t, regularizer_lowering);
    tcase_add_test(t, batchnorm_lowering);
    tcase_add_test(t, dropout_lowering);
    tcase_add_test(t, literals_adopt_dtype);
    tcase_add_test(t, indexing);
    tcase_add_test(t, shape_functions);
    tcase_add_test(t, dotted_parameter_reference);
    tcase_add_test(t, sparse_ce_and_accuracy);
    tcase_add_test(t, cross_entropy_forms);
    tcase_add_test(t, train_block);
    tcase_add_test(t, train_callbacks);
    tcase_add_test(t, sync_batchnorm);
    tcase_add_test(t, error_recovery);
    tcase_add_test(t, error_limit);
    suite_add_tcase(s, t);
    return tu_run(s);
}
