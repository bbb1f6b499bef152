/* IR text form: every op prints and parses back to the same graph
 * (print(parse(print(g))) == print(g)), attributes, doubles, labels,
 * locations, the train block, fused bodies and DOT output. */
#include <stdlib.h>

#include "test_irtext.h"

static Graph *parse_str(const char *text, Diags *d)
{
    return ir_parse("t.ir", text, strlen(text), d);
}

/* Parse the printed g, check that printing again gives the same text and
 * that the result verifies; returns the parsed graph. */
static Graph *roundtrip(Graph *g)
{
    char *t1 = ir_print_str(g), buf[512];
    Diags d;
    diags_init(&d);
    Graph *h = parse_str(t1, &d);
    ck_assert_msg(h != NULL, "parse failed: %s\n%s", tx_first(&d, buf, sizeof buf), t1);
    char *t2 = ir_print_str(h);
    ck_assert_str_eq(t1, t2);
    ck_assert(ir_verify(h, &d));
    ck_assert_int_eq(d.n, 0);
    free(t1);
    free(t2);
    diags_free(&d);
    return h;
}

static bool same_double(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0 || (isnan(a) && isnan(b) && signbit(a) == signbit(b));
}

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Every Attrs field, slices up to the rank the op uses. */
static void check_attrs(const Node *x, const Node *y)
{
    const Attrs *a = &x->a, *b = &y->a;
    const char *op = ir_ops[x->op].name;
    ck_assert_msg(a->naxes == b->naxes, "%s: naxes", op);
    for (int i = 0; i < a->naxes; i++)
        ck_assert_msg(a->axes[i] == b->axes[i], "%s: axes", op);
    if (x->op == OP_CONCAT || x->op == OP_SOFTMAX || x->op == OP_LOG_SOFTMAX || x->op == OP_LOG_SOFTMAX_DOT ||
        x->op == OP_LOG_SOFTMAX_GRAD)
        ck_assert_msg(a->axes[0] == b->axes[0], "%s: axis", op);
    ck_assert_msg(a->keepdims == b->keepdims, "%s: keepdims", op);
    ck_assert_msg(ir_shape_eq(&a->shape, &b->shape), "%s: shape", op);
    for (int i = 0; i < IR_MAXRANK; i++)
        ck_assert_msg(a->begin[i] == b->begin[i] && a->end[i] == b->end[i] && a->step[i] == b->step[i],
                      "%s: slice entry %d", op, i);
    ck_assert_msg(!memcmp(a->stride, b->stride, sizeof a->stride), "%s: stride", op);
    ck_assert_msg(!memcmp(a->pad, b->pad, sizeof a->pad), "%s: pad", op);
    ck_assert_msg(!memcmp(a->window, b->window, sizeof a->window), "%s: window", op);
    ck_assert_msg(a->ta == b->ta && a->tb == b->tb, "%s: ta/tb", op);
    ck_assert_msg(same_double(a->value, b->value), "%s: value", op);
    ck_assert_msg(a->to == b->to, "%s: to", op);
    ck_assert_msg(a->depth == b->depth, "%s: depth", op);
    ck_assert_msg(a->stream == b->stream, "%s: stream", op);
    ck_assert_msg(same_str(a->name, b->name), "%s: name", op);
    ck_assert_msg(a->init.kind == b->init.kind && same_double(a->init.a, b->init.a) &&
                      same_double(a->init.b, b->init.b),
                  "%s: init", op);
    ck_assert_msg(a->trainable == b->trainable && a->role == b->role, "%s: trainable/role", op);
}

static void check_same_graph(Graph *g, Graph *h)
{
    ck_assert_int_eq(g->nnodes, h->nnodes);
    ck_assert_int_eq(g->nouts, h->nouts);
    for (int i = 0; i < g->nnodes; i++) {
        Node *x = g->nodes[i], *y = h->nodes[i];
        ck_assert_int_eq(x->op, y->op);
        ck_assert_int_eq(x->dt, y->dt);
        ck_assert(ir_shape_eq(&x->shape, &y->shape));
        ck_assert_int_eq(x->nin, y->nin);
        for (int j = 0; j < x->nin; j++)
            ck_assert_int_eq(x->in[j]->id, y->in[j]->id);
        check_attrs(x, y);
        ck_assert(same_str(x->loc.file, y->loc.file));
        ck_assert_int_eq(x->loc.line, y->loc.line);
        ck_assert_int_eq(x->loc.col, y->loc.col);
        if (x->op != OP_INPUT && x->op != OP_PARAM)
            ck_assert_msg(same_str(x->label, y->label), "label %s vs %s", x->label, y->label);
        ck_assert(!x->sub == !y->sub);
        if (x->sub)
            check_same_graph(x->sub, y->sub);
    }
    for (int i = 0; i < g->nouts; i++) {
        Output *a = &g->outs[i], *b = &h->outs[i];
        ck_assert_int_eq(a->kind, b->kind);
        ck_assert(same_str(a->name, b->name));
        ck_assert_int_eq(a->val->id, b->val->id);
        ck_assert(!a->target == !b->target);
        if (a->target)
            ck_assert_int_eq(a->target->id, b->target->id);
        ck_assert_int_eq(a->train_only, b->train_only);
    }
}

START_TEST(every_op_roundtrips)
{
    for (int op = 0; op < OP_COUNT; op++) {
        Graph *g = ir_graph_new("t");
        Node *n = tx_op_case(g, (Op)op);
        ck_assert_msg(n != NULL, "no round-trip case for op %s", ir_ops[op].name);
        ir_add_output(g, OUT_VALUE, "out", n, NULL, false);
        Diags d;
        diags_init(&d);
        ck_assert_msg(ir_verify(g, &d), "%s: %s", ir_ops[op].name, d.n ? d.v[0].msg : "");
        diags_free(&d);
        Graph *h = roundtrip(g);
        check_same_graph(g, h);
        ir_graph_free(h);
        ir_graph_free(g);
    }
}
END_TEST

/* The line of the op's node in the printed graph, without locations. */
static char *op_line(Op op)
{
    Graph *g = ir_graph_new("t");
    tx_op_case(g, op);
    char *s = ir_print_str_opts(g, IR_PRINT_NO_LOC), key[64];
    snprintf(key, sizeof key, ir_ops[op].cls == OPC_LEAF ? " = %s " : " = %s(", ir_ops[op].name);
    char *p = strstr(s, key);
    ck_assert_ptr_nonnull(p);
    while (p > s && p[-1] != '\n')
        p--;
    while (*p == ' ')
        p++;
    char *r = strndup(p, strcspn(p, "\n"));
    free(s);
    ir_graph_free(g);
    return r;
}

START_TEST(printed_forms)
{
    struct {
        Op op;
        const char *text;
    } cases[] = {
        {OP_SLICE, "%1 = slice(%x) {slice=[0:, 2:5, 1::2]} : f32[N,3,3]"},
        {OP_SLICE_GRAD, "%1 = slice_grad(%dy) {shape=[4,7], slice=[1:3, 0::2]} : f32[4,7]"},
        {OP_CONV2D, "%2 = conv2d(%x, %k) {stride=[2,2], pad=[1,1,1,1]} : f32[N,4,4,4]"},
        {OP_MAX_POOL2D, "%1 = max_pool2d(%x) {window=[3,3], stride=[2,2], pad=[0,1,0,1]} : f32[N,4,4,2]"},
        {OP_REDUCE_MEAN, "%1 = reduce_mean(%x) {axes=[2,1], keepdims=true} : f32[N,1,1]"},
        {OP_ARGMAX, "%1 = argmax(%x) {axes=[2], keepdims=true} : f32[N,3,1]"},
        {OP_MATMUL, "%2 = matmul(%a, %b) {ta=true, tb=true} : f32[3,5]"},
        {OP_CONCAT, "%3 = concat(%x, %y, %z) {axis=1} : f32[N,6]"},
        {OP_ONE_HOT, "%1 = one_hot(%label) {to=f64, depth=10} : f64[N,10]"},
        {OP_GATHER, "%2 = gather(%table, %ids) {axis=1} : f32[4,2,3,3]"},
        {OP_GATHER_GRAD, "%2 = gather_grad(%dy, %ids) {axis=0, shape=[9,5]} : f32[9,5]"},
        {OP_DROPOUT_MASK, "%1 = dropout_mask(%x) {value=0.25, stream=7} : f32[N,3]"},
        {OP_PHASE, "%2 = phase(%t, %i) {name=\"bn1\"} : f32[N,3]"},
        {OP_REPLICA_MEAN, "%1 = replica_mean(%m) : f32[3]"},
        {OP_ELU, "%1 = elu(%x) {value=0.7} : f32[N,3]"},
        {OP_CAST, "%1 = cast(%x) {to=f64} : f64[N,3]"},
        {OP_TRANSPOSE, "%1 = transpose(%x) {axes=[2,0,1]} : f32[4,2,3]"},
        {OP_BROADCAST, "%1 = broadcast(%x) {shape=[N,2,3]} : f32[N,2,3]"},
        {OP_ADD, "%2 = add(%x, %y) : f32[N,3]"},
        {OP_PARAM, "%bn.moving_var = param \"bn.moving_var\" normal(0.5, 0.01) state frozen : f32[32]"},
        {OP_CONST, "%0 = const 0.3333333333333333 : f64[2,3]"},
        {OP_INPUT, "%image = input \"image\" : f64[N,28,28]"},
    };
    for (int i = 0; i < ARRAY_LEN(cases); i++) {
        char *l = op_line(cases[i].op);
        ck_assert_str_eq(l, cases[i].text);
        free(l);
    }
}
END_TEST

START_TEST(doubles_exact)
{
    double v[] = {0.1, 1.0 / 3.0, -0.0, 1e-300, 5e-324, 1.7976931348623157e308, -2.5, 1e22, INFINITY,
                  -INFINITY, NAN, -NAN, 0.001, 123456789.125, 3.0};
    Graph *g = ir_graph_new("consts");
    for (int i = 0; i < ARRAY_LEN(v); i++)
        ir_const(g, i % 2 ? DT_F64 : DT_F32, v[i], tx_loc(i + 1, 1));
    Graph *h = roundtrip(g);
    for (int i = 0; i < ARRAY_LEN(v); i++)
        ck_assert_msg(same_double(h->nodes[i]->a.value, v[i]), "constant %d: %.17g", i, v[i]);
    char *s = ir_print_str_opts(g, IR_PRINT_NO_LOC);
    ck_assert_ptr_nonnull(strstr(s, "%2 = const -0 : f32[]\n"));
    ck_assert_ptr_nonnull(strstr(s, "%8 = const inf : f32[]\n"));
    ck_assert_ptr_nonnull(strstr(s, "%9 = const -inf : f64[]\n"));
    ck_assert_ptr_nonnull(strstr(s, "%0 = const 0.1 : f32[]\n"));
    free(s);
    ir_graph_free(h);
    ir_graph_free(g);
}
END_TEST

START_TEST(train_block)
{
    Graph *g = ir_graph_new("m");
    g->has_train = true;
    RunSettings ra, rb;
    ir_run_defaults(&ra);
    char *s = ir_print_str_model(g, &ra, 0);
    ck_assert_str_eq(s, "graph m {\n"
                        "  train { optimizer=adam lr=0.001 beta1=0.9 beta2=0.999 eps=1e-07 batch=32 epochs=1 "
                        "seed=0 }\n"
                        "}\n");
    free(s);
    /* without run settings the block holds the update rule alone */
    s = ir_print_str(g);
    ck_assert_str_eq(s, "graph m {\n"
                        "  train { optimizer=adam lr=0.001 beta1=0.9 beta2=0.999 eps=1e-07 }\n"
                        "}\n");
    free(s);
    tx_train(&g->train, g);
    tx_run(&ra);
    char *t1 = ir_print_str_model(g, &ra, 0);
    Diags d;
    diags_init(&d);
    Graph *h = ir_parse_model("t.ir", t1, strlen(t1), &rb, &d);
    ck_assert_ptr_nonnull(h);
    char *t2 = ir_print_str_model(h, &rb, 0);
    ck_assert_str_eq(t1, t2);
    free(t1);
    free(t2);
    diags_free(&d);
    TrainConfig *a = &g->train, *b = &h->train;
    ck_assert(h->has_train);
    ck_assert_int_eq(a->opt, b->opt);
    ck_assert(same_double(a->lr, b->lr) && same_double(a->momentum, b->momentum));
    ck_assert_int_eq(a->nesterov, b->nesterov);
    ck_assert(same_double(a->beta1, b->beta1) && same_double(a->beta2, b->beta2));
    ck_assert(same_double(a->eps, b->eps) && same_double(a->rho, b->rho));
    ck_assert_int_eq(ra.batch, rb.batch);
    ck_assert_int_eq(ra.epochs, rb.epochs);
    ck_assert(same_double(a->clip_value, b->clip_value) && same_double(a->clip_norm, b->clip_norm));
    ck_assert(same_double(a->weight_decay, b->weight_decay));
    ck_assert_int_eq(ra.sched, rb.sched);
    ck_assert_int_eq(ra.sched_step, rb.sched_step);
    ck_assert(same_double(ra.sched_gamma, rb.sched_gamma));
    ck_assert(ra.seed == rb.seed);
    ck_assert_int_eq(b->nfreeze, 2);
    ck_assert_str_eq(b->freeze[0], "conv*");
    ck_assert_str_eq(b->freeze[1], "bn?.\"x\"");
    s = ir_print_str_model(g, &ra, 0);
    ck_assert_str_eq(s, "graph m {\n"
                        "  train { optimizer=sgd lr=0.1 momentum=0.9 nesterov=true beta1=0.8 beta2=0.99 "
                        "rho=0.95 eps=1e-08 batch=128 epochs=10 clip_value=4.5 clip_norm=1.25 "
                        "weight_decay=0.0005 schedule=step sched_step=3 sched_gamma=0.5 "
                        "seed=18446744073709551615 freeze=[\"conv*\", \"bn?.\\\"x\\\"\"] }\n"
                        "}\n");
    free(s);
    ir_graph_free(h);
    ir_graph_free(g);
}
END_TEST

/* The schedule's and the callbacks' run settings print and parse back:
 * every field, strings with quotes and a default that differs. */
START_TEST(train_callbacks_roundtrip)
{
    Graph *g = ir_graph_new("m");
    g->has_train = true;
    RunSettings ra, rb;
    ir_run_defaults(&ra);
    ra.sched = SCHED_EXPONENTIAL;
    ra.decay_steps = 250;
    ra.decay_rate = 0.3;
    ra.staircase = true;
    ra.warmup = 17;
    ir_es_defaults(&ra);
    ra.es.monitor = "val_accuracy";
    ra.es.patience = 4;
    ra.es.min_delta = 0.125;
    ra.es.mode = MON_MAX;
    ra.es.restore_best = true;
    ir_ckpt_defaults(&ra);
    ra.ckpt.path = "dir/\"best\".st";
    ra.ckpt.best_only = true;
    ir_rlr_defaults(&ra);
    ra.rlr.monitor = "loss";
    ra.rlr.factor = 0.25;
    ra.rlr.patience = 1;
    ra.rlr.mode = MON_MIN;
    ra.rlr.min_delta = 1e-3;
    ra.rlr.cooldown = 2;
    ra.rlr.min_lr = 1e-5;
    char *t1 = ir_print_str_model(g, &ra, 0);
    ck_assert_str_eq(t1, "graph m {\n"
                         "  train { optimizer=adam lr=0.001 beta1=0.9 beta2=0.999 eps=1e-07 batch=32 epochs=1 "
                         "schedule=exponential decay_steps=250 decay_rate=0.3 staircase=true warmup=17 seed=0 "
                         "es_monitor=\"val_accuracy\" es_min_delta=0.125 es_patience=4 es_mode=max "
                         "es_restore_best=true ckpt_path=\"dir/\\\"best\\\".st\" ckpt_monitor=\"val_loss\" "
                         "ckpt_best_only=true ckpt_mode=auto rlr_monitor=\"loss\" rlr_factor=0.25 rlr_patience=1 "
                         "rlr_mode=min rlr_min_delta=0.001 rlr_cooldown=2 rlr_min_lr=1e-05 }\n"
                         "}\n");
    Diags d;
    diags_init(&d);
    Graph *h = ir_parse_model("t.ir", t1, strlen(t1), &rb, &d);
    ck_assert_ptr_nonnull(h);
    char *t2 = ir_print_str_model(h, &rb, 0);
    ck_assert_str_eq(t1, t2);
    ck_assert(rb.sched == SCHED_EXPONENTIAL && rb.decay_steps == 250 && same_double(rb.decay_rate, 0.3));
    ck_assert(rb.staircase && rb.warmup == 17);
    ck_assert_str_eq(rb.es.monitor, "val_accuracy");
    ck_assert(rb.es.patience == 4 && rb.es.mode == MON_MAX && rb.es.restore_best);
    ck_assert_str_eq(rb.ckpt.path, "dir/\"best\".st");
    ck_assert(rb.rlr.cooldown == 2 && same_double(rb.rlr.min_lr, 1e-5) && rb.rlr.mode == MON_MIN);
    free(t1);
    free(t2);
    ir_graph_free(h);
    /* callbacks that are off print nothing */
    ir_run_defaults(&ra);
    t1 = ir_print_str_model(g, &ra, 0);
    ck_assert_ptr_null(strstr(t1, "es_"));
    ck_assert_ptr_null(strstr(t1, "rlr_"));
    free(t1);
    /* a bad mode is a located error */
    const char *bad = "graph m {\n  train { es_monitor=\"loss\" es_mode=up }\n}\n";
    ck_assert_ptr_null(ir_parse_model("t.ir", bad, strlen(bad), &rb, &d));
    ck_assert(d.nerrors > 0);
    diags_free(&d);
    ir_graph_free(g);
}
END_TEST

/* Labels become value names; repeated ones get .1, .2; odd ones are
 * made valid; the parsed graph prints the same names. */
START_TEST(labels_and_names)
{
    const char *labels[] = {"h.1", "h", "h", "h", "h.5", "0", "a0", "", "x y", NULL, "h.2x", "h"};
    const char *want[] = {"h.1", "h", "h.2", "h.3", "h.5", "a0", "a0.1", "v", "x_y", "10", "h.2x", "h.4"};
    Graph *g = ir_graph_new("t");
    Node *x = tx_in(g, "x", ir_shape1(3));
    for (int i = 0; i < ARRAY_LEN(labels); i++) {
        Diags d;
        diags_init(&d);
        Node *n = ir_unary(g, OP_RELU, x, tx_loc(i + 2, 3), &d);
        n->label = labels[i];
        diags_free(&d);
    }
    char *s = ir_print_str_opts(g, IR_PRINT_NO_LOC);
    for (int i = 0; i < ARRAY_LEN(labels); i++) {
        char line[64];
        snprintf(line, sizeof line, "  %%%s = relu(%%x) : f32[3]\n", want[i]);
        ck_assert_msg(strstr(s, line), "missing %s in\n%s", line, s);
    }
    Graph *h = roundtrip(g);
    ck_assert_str_eq(h->nodes[3]->label, "h");  /* h.2 was a renamed h */
    ck_assert_str_eq(h->nodes[1]->label, "h.1"); /* h.1 was a label itself */
    ck_assert_ptr_null(h->nodes[10]->label);
    free(s);
    ir_graph_free(h);
    ir_graph_free(g);
}
END_TEST

START_TEST(leaf_names_sanitised)
{
    Graph *g = ir_graph_new("t");
    tx_in(g, "in put", ir_shape1(2));
    ir_param(g, "3x3/kernel", DT_F32, ir_shape1(2), (Init){INIT_CONSTANT, 0.1, 0}, true, ROLE_SLOT, tx_loc(1, 1));
    ir_param(g, "w", DT_F32, ir_shape1(2), (Init){INIT_NONE, 0, 0}, true, ROLE_WEIGHT, tx_loc(1, 1));
    Diags d;
    diags_init(&d);
    ir_unary(g, OP_EXP, g->nodes[0], tx_loc(2, 1), &d)->label = "w";
    diags_free(&d);
    char *s = ir_print_str_opts(g, IR_PRINT_NO_LOC);
    ck_assert_str_eq(s, "graph t {\n"
                        "  %in_put = input \"in put\" : f32[2]\n"
                        "  %a3x3_kernel = param \"3x3/kernel\" constant(0.1) slot : f32[2]\n"
                        "  %w = param \"w\" : f32[2]\n"
                        "  %w.1 = exp(%in_put) : f32[2]\n"
                        "}\n");
    Graph *h = roundtrip(g);
    ck_assert_str_eq(h->nodes[1]->a.name, "3x3/kernel");
    ck_assert_str_eq(h->nodes[3]->label, "w");
    free(s);
    ir_graph_free(h);
    ir_graph_free(g);
}
END_TEST

START_TEST(locations)
{
    Graph *g = ir_graph_new("t");
    Node *x = ir_input(g, "x", DT_F32, ir_shape1(3), (SrcLoc){"dir/my \"model\".mdl", 12, 40});
    Diags d;
    diags_init(&d);
    Node *y = ir_unary(g, OP_EXP, x, (SrcLoc){NULL, 0, 0}, &d);
    Node *z = ir_unary(g, OP_LOG, y, (SrcLoc){"other.mdl", 1, 1}, &d);
    ir_add_output(g, OUT_VALUE, "z", z, NULL, false);
    char *s = ir_print_str(g);
    ck_assert_str_eq(s, "graph t {\n"
                        "  %x = input \"x\" : f32[3]                                       "
                        "loc(\"dir/my \\\"model\\\".mdl\":12:40)\n"
                        "  %1 = exp(%x) : f32[3]\n"
                        "  %2 = log(%1) : f32[3]                                         loc(\"other.mdl\":1:1)\n"
                        "  output value \"z\" = %2\n"
                        "}\n");
    Graph *h = roundtrip(g);
    ck_assert_str_eq(h->nodes[0]->loc.file, "dir/my \"model\".mdl");
    ck_assert_int_eq(h->nodes[0]->loc.line, 12);
    ck_assert_int_eq(h->nodes[0]->loc.col, 40);
    ck_assert_ptr_null(h->nodes[1]->loc.file);
    ck_assert_int_eq(h->nfiles, 2);
    free(s);
    s = ir_print_str_opts(g, IR_PRINT_NO_LOC);
    ck_assert_ptr_null(strstr(s, "loc("));
    Graph *k = parse_str(s, &d);
    ck_assert_ptr_nonnull(k);
    ck_assert_ptr_null(k->nodes[0]->loc.file);
    free(s);
    diags_free(&d);
    ir_graph_free(k);
    ir_graph_free(h);
    ir_graph_free(g);
}
END_TEST

START_TEST(fused_nesting)
{
    Graph *g = ir_graph_new("f");
    Shape s = tx_shape(2, IR_DIM_N, 3, 0, 0);
    Node *in[2] = {tx_in(g, "x", s), tx_in(g, "b", ir_shape1(3))};
    Node *f = tx_fused(g, in, 2, tx_body(s, ir_shape1(3)), tx_loc(7, 5));
    f->label = "act";
    Node *in2[2] = {f, in[0]};
    tx_fused(g, in2, 2, tx_body(s, s), tx_loc(8, 5));
    ir_add_output(g, OUT_VALUE, "y", g->nodes[3], NULL, false);
    char *t = ir_print_str_opts(g, IR_PRINT_NO_LOC);
    ck_assert_str_eq(t, "graph f {\n"
                        "  %x = input \"x\" : f32[N,3]\n"
                        "  %b = input \"b\" : f32[3]\n"
                        "  %act = fused(%x, %b) : f32[N,3] {\n"
                        "    %a0 = input \"0\" : f32[N,3]\n"
                        "    %a1 = input \"1\" : f32[3]\n"
                        "    %2 = mul(%a0, %a1) : f32[N,3]\n"
                        "    %3 = const 0.5 : f32[]\n"
                        "    %s = add(%2, %3) : f32[N,3]\n"
                        "    %5 = tanh(%s) : f32[N,3]\n"
                        "    output %5\n"
                        "  }\n"
                        "  %3 = fused(%act, %x) : f32[N,3] {\n"
                        "    %a0 = input \"0\" : f32[N,3]\n"
                        "    %a1 = input \"1\" : f32[N,3]\n"
                        "    %2 = mul(%a0, %a1) : f32[N,3]\n"
                        "    %3 = const 0.5 : f32[]\n"
                        "    %s = add(%2, %3) : f32[N,3]\n"
                        "    %5 = tanh(%s) : f32[N,3]\n"
                        "    output %5\n"
                        "  }\n"
                        "  output value \"y\" = %3\n"
                        "}\n");
    char *u = ir_print_str(g);
    ck_assert_ptr_nonnull(strstr(u, "  %act = fused(%x, %b) : f32[N,3]                               loc(\"m.mdl\":7:5) {\n"));
    Graph *h = roundtrip(g);
    check_same_graph(g, h);
    ck_assert_int_eq(h->nodes[2]->sub->nnodes, 6);
    ck_assert_int_eq(h->nodes[2]->sub->nouts, 1);
    free(t);
    free(u);
    ir_graph_free(h);
    ir_graph_free(g);
}
END_TEST

/* A multiple N*k of the batch dimension (reshape's [N,5,6] -> [N*5,6]
 * and back) prints as N*5, parses back to the same dimension, and is
 * neither N nor a size. */
START_TEST(batch_multiple_roundtrips)
{
    Graph *g = ir_graph_new("td");
    Diags d;
    diags_init(&d);
    int64_t xd[3] = {IR_DIM_N, 5, 6};
    Node *x = tx_in(g, "x", ir_shape(3, xd));
    Attrs a = ir_attrs();
    a.shape = ir_shape2(ir_dim_batch(5), 6);
    Node *h = ir_op(g, OP_RESHAPE, &x, 1, &a, tx_loc(3, 5), &d);
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(h->shape.d[0], ir_dim_batch(5));
    Node *t = ir_op(g, OP_TANH, &h, 1, NULL, tx_loc(4, 5), &d);
    a.shape = ir_shape(3, xd);
    Node *y = ir_op(g, OP_RESHAPE, &t, 1, &a, tx_loc(5, 5), &d);
    ck_assert_ptr_nonnull(y);
    ir_add_output(g, OUT_VALUE, "y", y, NULL, false);
    char *p = ir_print_str_opts(g, IR_PRINT_NO_LOC);
    ck_assert_str_eq(p, "graph td {\n"
                        "  %x = input \"x\" : f32[N,5,6]\n"
                        "  %1 = reshape(%x) {shape=[N*5,6]} : f32[N*5,6]\n"
                        "  %2 = tanh(%1) : f32[N*5,6]\n"
                        "  %3 = reshape(%2) {shape=[N,5,6]} : f32[N,5,6]\n"
                        "  output value \"y\" = %3\n"
                        "}\n");
    Graph *r = roundtrip(g);
    check_same_graph(g, r);
    ck_assert_int_eq(r->nodes[1]->shape.d[0], ir_dim_batch(5));
    ck_assert_int_eq(r->nodes[1]->a.shape.d[0], ir_dim_batch(5));
    /* N*1 is N */
    Graph *one = parse_str("graph o {\n  %x = input \"x\" : f32[N*1,3]\n  output value \"y\" = %x\n}\n", &d);
    ck_assert_ptr_nonnull(one);
    ck_assert_int_eq(one->nodes[0]->shape.d[0], IR_DIM_N);
    /* evaluation and the size check */
    ck_assert_int_eq(ir_dim_eval(ir_dim_batch(5), 3), 15);
    ck_assert_int_eq(ir_dim_eval(IR_DIM_N, 3), 3);
    ck_assert_int_eq(ir_dim_eval(7, 3), 7);
    ck_assert_int_eq(ir_dim_eval(ir_dim_batch(INT64_C(1) << 40), INT64_C(1) << 40), -1);
    ck_assert_int_eq(ir_shape_numel(&h->shape, 3), 90);
    ck_assert_int_eq(ir_dims_numel(h->shape.rank, h->shape.d), 30);
    /* N and N*5 do not broadcast */
    Node *in2[2] = {h, tx_in(g, "b", ir_shape2(IR_DIM_N, 6))};
    ck_assert_ptr_null(ir_op(g, OP_ADD, in2, 2, NULL, tx_loc(6, 5), &d));
    ck_assert_ptr_nonnull(strstr(d.v[d.n - 1].msg, "dimensions N*5 and N differ"));
    free(p);
    diags_free(&d);
    ir_graph_free(one);
    ir_graph_free(r);
    ir_graph_free(g);
}
END_TEST

START_TEST(big_graph)
{
    Graph *g = tx_big_graph();
    Diags d;
    diags_init(&d);
    ck_assert_msg(ir_verify(g, &d), "%s", d.n ? d.v[0].msg : "");
    diags_free(&d);
    Graph *h = roundtrip(g);
    check_same_graph(g, h);
    ck_assert_int_eq(h->next_stream, 8);
    char *s = ir_print_str(g);
    ck_assert(strncmp(s, "graph \"big model\" {\n  train { optimizer=sgd", 42) == 0);
    ck_assert_ptr_nonnull(strstr(s, "\n  output loss \"loss\" = %loss\n"
                                    "  output metric \"accuracy\" = %loss train_only\n"
                                    "  output value \"probs\" = %x\n"
                                    "  output grad \"grad.bn.moving_var\" = %151 wrt %bn.moving_var\n"
                                    "  output update \"bn.moving_var\" = %151 of %bn.moving_var train_only\n}\n"));
    free(s);
    ir_graph_free(h);
    ir_graph_free(g);
}
END_TEST

/* Hand-written text: comments, tabs, CRLF, names in any style. */
START_TEST(hand_written)
{
    const char *text = "# a comment before the graph\r\n"
                       "graph hand {   # trailing comment\r\n"
                       "\t%in = input \"x\" : f32[N, 4]\r\n"
                       "  %99 = relu(%in) : f32[N,4]  loc(\"a.mdl\":2:3)\n"
                       "  %k = param \"k\" xavier_uniform() frozen weight : f32[4,2]\n"
                       "  %y = matmul(%99, %k) {} : f32[N,2]\n"
                       "  %c = const -inf : f32[]\n"
                       "  output %y\n"
                       "  output value = %c # unnamed\n"
                       "}\n"
                       "# trailing comment without newline";
    Diags d;
    diags_init(&d);
    Graph *g = parse_str(text, &d);
    ck_assert_ptr_nonnull(g);
    char *s = ir_print_str(g);
    ck_assert_str_eq(s, "graph hand {\n"
                        "  %x = input \"x\" : f32[N,4]\n"
                        "  %1 = relu(%x) : f32[N,4]                                      loc(\"a.mdl\":2:3)\n"
                        "  %k = param \"k\" glorot_uniform() frozen : f32[4,2]\n"
                        "  %y = matmul(%1, %k) : f32[N,2]\n"
                        "  %c = const -inf : f32[]\n"
                        "  output %y\n"
                        "  output %c\n"
                        "}\n");
    free(s);
    diags_free(&d);
    ir_graph_free(g);
}
END_TEST

START_TEST(dot_output)
{
    Graph *g = tx_big_graph();
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ir_print_dot(g, f);
    fclose(f);
    ck_assert(strncmp(buf, "digraph \"big model\" {\n", 22) == 0);
    ck_assert_ptr_nonnull(strstr(buf, "  n0 [label=\"input image\\nf64[N,28,28]\", fillcolor=\"#cfe8ff\", "
                                      "tooltip=\"m.mdl:2:7\"];\n"));
    ck_assert_ptr_nonnull(strstr(buf, "  n1 [label=\"param bn.moving_var (state)\\nf32[32]\", "
                                      "fillcolor=\"#ffe4b5\", tooltip=\"m.mdl:3:9\"];\n"));
    ck_assert_ptr_nonnull(strstr(buf, "  n6 [label=\"%h = exp\\nf32[N,3]\", tooltip=\"m.mdl:14:3\"];\n"
                                      "  n5 -> n6;\n"));
    ck_assert_ptr_nonnull(strstr(buf, "  out3 [shape=ellipse, fillcolor=\"#fff3b0\", label=\"grad grad.bn.moving_var\"];\n"
                                      "  n151 -> out3;\n"
                                      "  out3 -> n1 [style=dashed, constraint=false, label=\"wrt\"];\n"));
    ck_assert_ptr_nonnull(strstr(buf, "= fused\\nmul, const, add, tanh\\nf32[N,3]\", fillcolor=\"#f0d8f8\""));
    ck_assert(len > 2 && strcmp(buf + len - 2, "}\n") == 0);
    free(buf);
    ir_graph_free(g);
}
END_TEST

START_TEST(frozen_param_color)
{
    Graph *g = ir_graph_new("t");
    ir_param(g, "w", DT_F32, ir_shape1(2), (Init){INIT_ZEROS, 0, 0}, false, ROLE_WEIGHT, (SrcLoc){0});
    ir_param(g, "v", DT_F32, ir_shape1(2), (Init){INIT_ZEROS, 0, 0}, true, ROLE_WEIGHT, (SrcLoc){0});
    ir_param(g, "base.k", DT_F32, ir_shape1(2), (Init){INIT_ZEROS, 0, 0}, true, ROLE_WEIGHT, (SrcLoc){0});
    const char *pat[1] = {"base.*"};
    g->train.nfreeze = 1;
    g->train.freeze = pat;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ir_print_dot(g, f);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(buf, "n0 [label=\"param w (frozen)\\nf32[2]\", fillcolor=\"#d9d9d9\"];"));
    ck_assert_ptr_nonnull(strstr(buf, "n1 [label=\"param v\\nf32[2]\", fillcolor=\"#c8f0c8\"];"));
    ck_assert_ptr_nonnull(strstr(buf, "n2 [label=\"param base.k (frozen)\\nf32[2]\", fillcolor=\"#d9d9d9\"];"));
    free(buf);
    ir_graph_free(g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("irtext");
    TCase *t = tcase_create("roundtrip");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, every_op_roundtrips);
    tcase_add_test(t, printed_forms);
    tcase_add_test(t, batch_multiple_roundtrips);
    tcase_add_test(t, doubles_exact);
    tcase_add_test(t, train_block);
    tcase_add_test(t, train_callbacks_roundtrip);
    tcase_add_test(t, labels_and_names);
    tcase_add_test(t, leaf_names_sanitised);
    tcase_add_test(t, locations);
    tcase_add_test(t, fused_nesting);
    tcase_add_test(t, big_graph);
    tcase_add_test(t, hand_written);
    tcase_add_test(t, dot_output);
    tcase_add_test(t, frozen_param_color);
    suite_add_tcase(s, t);
    return tu_run(s);
}
