/* The fused-node constructor (ir_fused) and the fusion pass's mechanics:
 * body/operand mismatches are diagnostics, the pass sits after simplify
 * in the pipeline, bodies stay within their size limit, a pass over a
 * graph with nothing to fuse leaves its printed form unchanged, and a
 * fused graph round-trips through IR text. */
#include "test_fuse_util.h"

static SrcLoc L = {"f.mdl", 3, 5};

/* body: input [N,4] -> tanh */
static Graph *tanh_body(DType t, Shape s)
{
    Graph *b = ir_graph_new("body");
    Diags d;
    diags_init(&d);
    Node *x = ir_input(b, "0", t, s, (SrcLoc){0});
    ir_add_output(b, OUT_VALUE, NULL, ir_unary(b, OP_TANH, x, L, &d), NULL, false);
    ck_assert_int_eq(d.nerrors, 0);
    diags_free(&d);
    return b;
}

static Shape n4(void)
{
    return ir_shape2(IR_DIM_N, 4);
}

START_TEST(fused_constructor)
{
    Graph *g = ir_graph_new("g");
    Diags d;
    diags_init(&d);
    Node *x = ir_input(g, "x", DT_F32, n4(), L);
    Node *f = ir_fused(g, tanh_body(DT_F32, n4()), &x, 1, L, &d);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(d.n, 0);
    ck_assert_int_eq(f->op, OP_FUSED);
    ck_assert_int_eq(f->dt, DT_F32);
    ck_assert(ir_shape_eq(&f->shape, &x->shape));
    ck_assert_int_eq(f->loc.line, 3);
    ck_assert_str_eq(f->loc.file, "f.mdl");
    ir_add_output(g, OUT_VALUE, "y", f, NULL, false);
    ck_assert(ir_verify(g, &d));
    char *text = ir_print_str_opts(g, IR_PRINT_NO_LOC);
    ck_assert_str_eq(text, "graph g {\n"
                           "  %x = input \"x\" : f32[N,4]\n"
                           "  %1 = fused(%x) : f32[N,4] {\n"
                           "    %a0 = input \"0\" : f32[N,4]\n"
                           "    %1 = tanh(%a0) : f32[N,4]\n"
                           "    output %1\n"
                           "  }\n"
                           "  output value \"y\" = %1\n"
                           "}\n");
    free(text);
    diags_free(&d);
    ir_graph_free(g);
}
END_TEST

/* ir_fused(body) over operands typed like in[] fails with msg at L. */
static void expect_error(Graph *body, Node **in, int nin, const char *msg)
{
    Diags d;
    diags_init(&d);
    Graph *host = ir_graph_new("host");
    Node *ops[4];
    for (int i = 0; i < nin; i++)
        ops[i] = ir_input(host, in[i]->a.name, in[i]->dt, in[i]->shape, L);
    ck_assert_ptr_null(ir_fused(host, body, ops, nin, L, &d));
    ck_assert_int_eq(d.nerrors, 1);
    ck_assert_str_eq(d.v[0].msg, msg);
    ck_assert_int_eq(d.v[0].loc.line, 3);
    ck_assert_int_eq(host->nnodes, nin);
    diags_free(&d);
    ir_graph_free(host);
}

START_TEST(fused_constructor_errors)
{
    Graph *proto = ir_graph_new("proto");
    Node *a = ir_input(proto, "a", DT_F32, n4(), L);
    Node *b = ir_input(proto, "b", DT_F64, n4(), L);
    Node *c = ir_input(proto, "c", DT_F32, ir_shape1(4), L);
    Node *two[2] = {a, a};
    expect_error(tanh_body(DT_F32, n4()), two, 2, "fused body has 1 input but the node has 2 operands");
    expect_error(tanh_body(DT_F32, n4()), &b, 1, "fused body input 0 is f32[N,4] but operand 0 is f64[N,4]");
    expect_error(tanh_body(DT_F32, n4()), &c, 1, "fused body input 0 is f32[N,4] but operand 0 is f32[4]");
    Graph *empty = ir_graph_new("empty");
    ir_input(empty, "0", DT_F32, n4(), (SrcLoc){0});
    expect_error(empty, &a, 1, "fused node without a body output");
    ir_graph_free(proto);
}
END_TEST

START_TEST(pipeline_order)
{
    int s = ps_pass_index("simplify"), f = ps_pass_index("fuse");
    ck_assert_int_ge(s, 0);
    ck_assert_int_eq(f, s + 1);
    ck_assert_ptr_null(ps_pass_names[f + 1]);
    /* the compiled functions fuse; the gradient check's do not */
    ck_assert(ps_recipe_opts(FN_TRAIN_STEP).fuse && ps_recipe_opts(FN_PREDICT).fuse);
    ck_assert(!ps_recipe_opts(FN_LOSS).fuse && !ps_recipe_opts(FN_NUMERICS).fuse);
    ck_assert_str_eq(ps_recipe_pass_list(&(RecipeOpts){.fn = FN_TRAIN_STEP, .fuse = true}),
                     "lower, verify, specialize, autodiff, optimizer, outputs, simplify, fuse");
}
END_TEST

/* A chain of 150 cheap ops: every body holds at most 64 ops. */
START_TEST(body_size_limit)
{
    Graph *g = ir_graph_new("long");
    Diags d;
    diags_init(&d);
    Node *x = ir_input(g, "x", DT_F32, n4(), L);
    Node *v = x;
    for (int i = 0; i < 150; i++)
        v = ir_binary(g, i % 2 ? OP_ADD : OP_MUL, v, x, L, &d);
    ir_add_output(g, OUT_VALUE, "y", v, NULL, false);
    Graph *f = tf_fused(g);
    ck_assert_int_eq(tf_count_op(f, OP_FUSED), 3);
    int total = 0;
    for (int i = 0; i < f->nnodes; i++) {
        Node *n = f->nodes[i];
        if (n->op != OP_FUSED)
            continue;
        int ops = 0;
        for (int j = 0; j < n->sub->nnodes; j++)
            ops += ir_ops[n->sub->nodes[j]->op].cls != OPC_LEAF;
        ck_assert_int_le(ops, 64);
        total += ops;
    }
    ck_assert_int_eq(total, 150);
    TfCheck c = {0, true, 1e-5, 0, 2, 1, false};
    tf_check("long chain", g, f, &c);
    diags_free(&d);
    ir_graph_free(g);
    ir_graph_free(f);
}
END_TEST

/* Nothing fusible (the matmul and the relu are outputs, so the relu can
 * neither take the matmul as its GEMM nor fuse into the reduction): the
 * printed graph is unchanged. */
START_TEST(nothing_to_fuse)
{
    Graph *g = ir_graph_new("plain");
    Diags d;
    diags_init(&d);
    Node *x = ir_input(g, "x", DT_F32, n4(), L);
    Node *w = ir_param(g, "w", DT_F32, ir_shape2(4, 4), (Init){INIT_ZEROS, 0, 0}, true, ROLE_WEIGHT, L);
    Node *m = ir_binary(g, OP_MATMUL, x, w, L, &d);
    Node *y = ir_unary(g, OP_RELU, m, L, &d);
    ir_add_output(g, OUT_VALUE, "m", m, NULL, false);
    ir_add_output(g, OUT_VALUE, "r", y, NULL, false);
    Attrs a = ir_attrs();
    a.naxes = 1;
    a.axes[0] = 1;
    ir_add_output(g, OUT_VALUE, "y", ir_op(g, OP_REDUCE_SUM, &y, 1, &a, L, &d), NULL, false);
    char *before = ir_print_str(g);
    ck_assert(ps_fuse(g, &d));
    char *after = ir_print_str(g);
    ck_assert_str_eq(after, before);
    free(before);
    free(after);
    diags_free(&d);
    ir_graph_free(g);
}
END_TEST

/* The printed fused graph parses back to the same text and verifies. */
START_TEST(fused_text_roundtrip)
{
    Graph *g = ir_graph_new("rt");
    Diags d;
    diags_init(&d);
    Node *x = ir_input(g, "x", DT_F32, n4(), L);
    Node *b = ir_param(g, "b", DT_F32, ir_shape1(4), (Init){INIT_ZEROS, 0, 0}, true, ROLE_WEIGHT, L);
    Node *h = ir_unary(g, OP_TANH, ir_binary(g, OP_ADD, x, b, L, &d), L, &d);
    Node *e = ir_unary(g, OP_EXP, h, L, &d);
    Attrs a = ir_attrs();
    a.naxes = 1;
    a.axes[0] = 1;
    a.keepdims = true;
    Node *s = ir_op(g, OP_REDUCE_SUM, &e, 1, &a, L, &d);
    ir_add_output(g, OUT_VALUE, "p", ir_binary(g, OP_DIV, e, s, L, &d), NULL, false);
    ir_add_output(g, OUT_VALUE, "h", h, NULL, false);
    Graph *f = tf_fused(g);
    ck_assert_int_eq(tf_count_op(f, OP_FUSED), 1); /* tanh(x + b); exp is read twice, the division alone */
    char *text = ir_print_str(f);
    Graph *back = ir_parse("rt.ir", text, strlen(text), &d);
    ck_assert_ptr_nonnull(back);
    ck_assert(ir_verify(back, &d));
    char *again = ir_print_str(back);
    ck_assert_str_eq(again, text);
    free(text);
    free(again);
    diags_free(&d);
    ir_graph_free(back);
    ir_graph_free(f);
    ir_graph_free(g);
}
END_TEST

/* What a fusion golden file must contain after fusion. */
typedef struct Want {
    int gemms, scaled, reductions; /* GEMM epilogues, those with alpha != 1, fused reductions */
    int conv_scaled, sides;        /* convolutions with alpha != 1, side updates */
    int fresh, rows;               /* fresh results, softmax row kernels */
} Want;

/* A fusion golden file runs: it has the expected GEMM epilogues, folded
 * scales, fused reductions and side results, and the fused JIT agrees
 * with the unfused JIT and the interpreter at several batch sizes. */
static void run_golden(const char *path, Want want)
{
    size_t len;
    char *text = read_file(path, &len);
    ck_assert_ptr_nonnull(text);
    Diags d;
    diags_init(&d);
    Graph *g = ir_parse(path, text, len, &d);
    if (!g)
        diags_print(&d, stderr);
    ck_assert_ptr_nonnull(g);
    Graph *f = tf_fused(g);
    Want got = {0};
    for (int i = 0; i < f->nnodes; i++) {
        const Node *v = f->nodes[i], *an = ir_fused_anchor(v);
        got.gemms += an != NULL;
        got.scaled += an && an->a.alpha != 1;
        got.reductions += ir_fused_reduction(v) != NULL;
        got.conv_scaled += v->op == OP_CONV2D && v->a.alpha != 1;
        for (int j = 1; v->op == OP_FUSED && j < v->sub->nouts; j++) {
            got.sides += !ir_fused_fresh(v, j);
            got.fresh += ir_fused_fresh(v, j);
        }
        got.rows += ir_fused_softmax(v) != NULL;
    }
    ck_assert_int_eq(got.gemms, want.gemms);
    ck_assert_int_eq(got.scaled, want.scaled);
    ck_assert_int_eq(got.reductions, want.reductions);
    ck_assert_int_eq(got.conv_scaled, want.conv_scaled);
    ck_assert_int_eq(got.sides, want.sides);
    ck_assert_int_eq(got.fresh, want.fresh);
    ck_assert_int_eq(got.rows, want.rows);
    for (int64_t n = 1; n <= 33; n += 16) {
        TfCheck c = {2, false, 1e-5, 1e-6, n, (uint64_t)n, false};
        tf_check(path, g, f, &c);
    }
    free(text);
    diags_free(&d);
    ir_graph_free(f);
    ir_graph_free(g);
}

/* The fusion goldens run through the JIT, with what each must contain. */
static const struct {
    const char *path;
    Want want;
} goldens[] = {
    {"tests/ir/fuse/gemm_epilogue.ir", {5, 2, 0, 0, 0, 0, 0}},
    {"tests/ir/fuse/reduce.ir", {1, 0, 3, 0, 0, 1, 0}},
    {"tests/ir/fuse/conv_scale.ir", {0, 0, 0, 2, 0, 0, 0}},
    {"tests/ir/fuse/slot_update.ir", {1, 0, 0, 0, 2, 0, 0}},
    {"tests/ir/fuse/column_sums.ir", {2, 0, 0, 0, 0, 3, 0}},
    {"tests/ir/fuse/softmax_rows.ir", {0, 0, 0, 0, 0, 5, 3}},
    {"tests/ir/fuse/softmax_xent.ir", {0, 0, 0, 0, 0, 2, 2}},
};

START_TEST(goldens_run)
{
    run_golden(goldens[_i].path, goldens[_i].want);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fuse");
    TCase *t = tcase_create("fuse");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, fused_constructor);
    tcase_add_test(t, fused_constructor_errors);
    tcase_add_test(t, pipeline_order);
    tcase_add_test(t, body_size_limit);
    tcase_add_test(t, nothing_to_fuse);
    tcase_add_test(t, fused_text_roundtrip);
    tcase_add_loop_test(t, goldens_run, 0, (int)ARRAY_LEN(goldens));
    suite_add_tcase(s, t);
    return tu_run(s);
}
