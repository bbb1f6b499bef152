/* Fusion on every example model, for each compiled function as its
 * recipe builds it (the training step, the grad function, evaluation), in
 * f32 and f64: the fused graph verifies, the interpreter gives the same
 * outputs bit for bit for the fused and the unfused graph, and the JIT
 * compiles both, matches the interpreter on each, and fused JIT ==
 * unfused JIT. The kernel counts of the training step that `modelc train`
 * compiles (its whole recipe) are pinned for the MLP and the CNNs, so a
 * fusion that silently stops happening fails here, and their softmax
 * cross-entropy must end as one row kernel. */
#include <glob.h>

#include "frontend/frontend.h"
#include "test_fuse_util.h"

static glob_t examples;

static bool find_examples(void)
{
    /* the examples, and the optimizer golden models (every optimizer,
     * clipping and weight decay) */
    return glob("examples/*.mdl", 0, NULL, &examples) == 0 &&
           glob("examples/*/*.mdl", GLOB_APPEND, NULL, &examples) == 0 &&
           glob("tests/ir/fuse/opt_*.mdl", GLOB_APPEND, NULL, &examples) == 0;
}

static Graph *load(const char *path)
{
    Diags d;
    diags_init(&d);
    Graph *g = fe_load_file(path, &d);
    if (!g)
        diags_print(&d, stderr);
    ck_assert_msg(g != NULL, "%s does not load", path);
    diags_free(&d);
    return g;
}

/* Function fn of the model at path, as its recipe compiles it, stopped
 * after pass stop (NULL: the whole recipe), in dtype dt. */
static Graph *compiled(const char *path, FnKind fn, const char *stop, DType dt)
{
    Graph *src = load(path);
    RecipeOpts o = ps_recipe_opts(fn);
    o.stop_after = stop;
    o.f64 = dt == DT_F64;
    Diags d;
    diags_init(&d);
    Graph *g = ps_recipe(src, &o, &d);
    if (!g)
        diags_print(&d, stderr);
    ck_assert_msg(g != NULL, "the %s recipe fails on %s", ps_fn_names[fn], path);
    diags_free(&d);
    ir_graph_free(src);
    return g;
}

/* The function before fusion: `modelc ir --fn FN --after=simplify`. */
static Graph *simplified(const char *path, FnKind fn, DType dt)
{
    return compiled(path, fn, "simplify", dt);
}

/* The training step `modelc train` compiles, before fusion. */
static Graph *train_step(const char *path)
{
    return simplified(path, FN_TRAIN_STEP, DT_F32);
}

static void check_example(const char *path, FnKind fn, DType dt)
{
    Graph *g = simplified(path, fn, dt);
    Graph *f = tf_fused(g);
    ck_assert_int_le(tf_kernels(f), tf_kernels(g));
    bool o2 = tf_has(path, "mlp") || tf_has(path, "model2");
    TfCheck c = {o2 ? 2 : 0, !o2, dt == DT_F32 ? 2e-4 : 1e-10, 0, 3, 11, false};
    char what[300];
    snprintf(what, sizeof what, "%s (%s, %s)", path, ps_fn_names[fn], ir_dtype_name(dt));
    tf_check(what, g, f, &c);
    ir_graph_free(g);
    ir_graph_free(f);
}

START_TEST(example_train_f32)
{
    check_example(examples.gl_pathv[_i], FN_TRAIN_STEP, DT_F32);
}
END_TEST

START_TEST(example_train_f64)
{
    check_example(examples.gl_pathv[_i], FN_TRAIN_STEP, DT_F64);
}
END_TEST

START_TEST(example_grad_f64)
{
    check_example(examples.gl_pathv[_i], FN_GRAD, DT_F64);
}
END_TEST

START_TEST(example_infer_f32)
{
    check_example(examples.gl_pathv[_i], FN_EVAL, DT_F32);
}
END_TEST

/* Every example fuses something, in both modes. */
START_TEST(examples_fuse)
{
    ck_assert_uint_ge(examples.gl_pathc, 17);
    for (size_t i = 0; i < examples.gl_pathc; i++) {
        for (int m = 0; m < 2; m++) {
            Graph *g = simplified(examples.gl_pathv[i], m ? FN_EVAL : FN_TRAIN_STEP, DT_F32);
            Graph *f = tf_fused(g);
            ck_assert_msg(tf_count_op(f, OP_FUSED) > 0, "%s: nothing fused", examples.gl_pathv[i]);
            ck_assert_int_lt(tf_kernels(f), tf_kernels(g));
            ir_graph_free(g);
            ir_graph_free(f);
        }
    }
}
END_TEST

typedef struct Count {
    const char *path;
    int unfused, fused, nfused;
} Count;

/* Kernels of the training step before and after fusion. */
START_TEST(train_step_kernels)
{
    static const Count want[] = {
        {"examples/fashion_mlp.mdl", 119, 24, 14},
        {"examples/fashion_cnn.mdl", 153, 37, 18},
        {"examples/fashion_cnn_bn.mdl", 248, 63, 38},
    };
    for (size_t i = 0; i < ARRAY_LEN(want); i++) {
        Graph *g = train_step(want[i].path);
        Graph *f = compiled(want[i].path, FN_TRAIN_STEP, NULL, DT_F32);
        int ku = tf_kernels(g), kf = tf_kernels(f), nf = tf_count_op(f, OP_FUSED);
        printf("%s: train step %d kernels, %d after fusion (%d fused)\n", want[i].path, ku, kf, nf);
        ck_assert_int_eq(ku, want[i].unfused);
        ck_assert_int_eq(kf, want[i].fused);
        ck_assert_int_eq(nf, want[i].nfused);
        ir_graph_free(g);
        ir_graph_free(f);
    }
}
END_TEST

/* The output of g updating the parameter called name, or NULL. */
static const Output *update_of(const Graph *g, const char *name)
{
    for (int i = 0; i < g->nouts; i++)
        if (g->outs[i].kind == OUT_UPDATE && strcmp(g->outs[i].target->a.name, name) == 0)
            return &g->outs[i];
    return NULL;
}

/* One loop per parameter: in every example's training step, each
 * optimizer slot ("optimizer.<slot>.<param>") is updated as a side result
 * of the fused node that updates <param>, in place. */
START_TEST(train_step_one_update_loop)
{
    int slots = 0;
    for (size_t i = 0; i < examples.gl_pathc; i++) {
        const char *path = examples.gl_pathv[i];
        Graph *g = train_step(path);
        Graph *f = tf_fused(g);
        ir_graph_free(g);
        for (int k = 0; k < f->nouts; k++) {
            const Output *o = &f->outs[k];
            const char *name = o->target ? o->target->a.name : NULL;
            if (o->kind != OUT_UPDATE || strncmp(name, "optimizer.", 10) != 0 ||
                strcmp(name, "optimizer.step") == 0)
                continue;
            const char *param = strchr(name + 10, '.');
            ck_assert_msg(param != NULL, "%s: slot %s", path, name);
            const Output *p = update_of(f, param + 1);
            ck_assert_msg(p != NULL, "%s: no update of %s", path, param + 1);
            ck_assert_msg(o->val == p->val && o->part >= 1 && p->part == 0,
                          "%s: %s is not updated in the loop that updates %s", path, name, param + 1);
            ck_assert_ptr_eq(f->nodes[o->val->id], o->val);
            ck_assert_int_eq(o->val->op, OP_FUSED);
            slots++;
        }
        ir_graph_free(f);
    }
    printf("%d optimizer slots updated in their parameter's loop\n", slots);
    ck_assert_int_ge(slots, 40);
}
END_TEST

/* The softmax cross-entropy of the training step is one row kernel after
 * fusion: a fused node whose value is log_softmax_grad (dlogits), with
 * the loss rows (log_softmax_dot) and the last layer's bias gradient (a
 * column sum) as fresh results; log_softmax(logits) is no longer
 * computed. */
START_TEST(train_step_softmax_rows)
{
    static const char *const paths[] = {"examples/fashion_mlp.mdl", "examples/fashion_cnn.mdl",
                                        "examples/fashion_cnn_bn.mdl"};
    for (size_t i = 0; i < ARRAY_LEN(paths); i++) {
        Graph *g = train_step(paths[i]);
        Graph *f = tf_fused(g);
        ck_assert_int_eq(tf_count_op(g, OP_LOG_SOFTMAX), 1);
        ck_assert_int_eq(tf_count_op(g, OP_LOG_SOFTMAX_DOT) + tf_count_op(g, OP_LOG_SOFTMAX_GRAD), 0);
        ck_assert_msg(tf_count_op(f, OP_LOG_SOFTMAX) == 0, "%s: a log_softmax kernel is left", paths[i]);
        ck_assert_int_eq(tf_count_op(f, OP_LOG_SOFTMAX_DOT) + tf_count_op(f, OP_LOG_SOFTMAX_GRAD), 0);
        int rows = 0;
        for (int k = 0; k < f->nnodes; k++) {
            const Node *v = f->nodes[k];
            if (!ir_fused_softmax(v))
                continue;
            rows++;
            ck_assert_int_eq(v->sub->nouts, 3);
            ck_assert_int_eq(v->sub->outs[1].val->op, OP_LOG_SOFTMAX_DOT);
            ck_assert_int_eq(v->sub->outs[2].val->op, OP_REDUCE_SUM);
        }
        ck_assert_int_eq(rows, 1);
        ir_graph_free(g);
        ir_graph_free(f);
    }
}
END_TEST

/* Bias gradients are column sums accumulated by the kernel that computes
 * the gradient they sum: the softmax row kernel for the last dense
 * layer, the backward GEMM's epilogue (the activation's derivative) for
 * the others. In the MLP's training step no sum over the batch of a
 * gradient is a kernel of its own. */
START_TEST(train_step_bias_grads)
{
    Graph *g = train_step("examples/fashion_mlp.mdl");
    Graph *f = tf_fused(g);
    int sums = 0, gemm = 0, rows = 0;
    for (int k = 0; k < f->nnodes; k++) {
        const Node *v = f->nodes[k];
        sums += v->op == OP_REDUCE_SUM && v->in[0]->shape.rank == 2;
        if (v->op != OP_RESULT)
            continue;
        const Node *x = v->in[0]->sub->outs[v->a.index].val;
        if (x->op != OP_REDUCE_SUM)
            continue;
        gemm += ir_fused_anchor(v->in[0]) != NULL;
        rows += ir_fused_softmax(v->in[0]) != NULL;
    }
    ck_assert_int_eq(sums, 0);
    ck_assert_int_eq(gemm, 2);
    ck_assert_int_eq(rows, 1);
    ir_graph_free(g);
    ir_graph_free(f);
}
END_TEST

/* A recipe stopped after specialize and resumed at autodiff is the whole
 * recipe; node origins survive specialize. */
START_TEST(example_recipe_resume)
{
    const char *path = examples.gl_pathv[_i];
    Graph *src = load(path), *whole = compiled(path, FN_TRAIN_STEP, NULL, DT_F32);
    RecipeOpts o = ps_recipe_opts(FN_TRAIN_STEP);
    o.stop_after = "specialize";
    o.origin = true;
    Diags d;
    diags_init(&d);
    Graph *g = ps_recipe(src, &o, &d);
    ck_assert_ptr_nonnull(g);
    for (int i = 0; i < g->nnodes; i++) {
        intptr_t k = (intptr_t)g->nodes[i]->aux;
        ck_assert_msg(k >= 1 && k <= src->nnodes, "%s: node %d has no origin", path, i);
        ck_assert_int_eq(g->nodes[i]->op == OP_PHASE, false);
        ck_assert_int_eq(src->nodes[k - 1]->op, g->nodes[i]->op);
    }
    o.stop_after = NULL;
    ck_assert(ps_recipe_resume(g, &o, "autodiff", &d));
    char *a = ir_print_str(g), *b = ir_print_str(whole);
    ck_assert_msg(strcmp(a, b) == 0, "%s: resumed recipe differs", path);
    /* a stop before the start is an error */
    o.stop_after = "specialize";
    ck_assert(!ps_recipe_resume(g, &o, "fuse", &d));
    ck_assert_int_eq(d.nerrors, 1);
    free(a);
    free(b);
    diags_free(&d);
    ir_graph_free(g);
    ir_graph_free(whole);
    ir_graph_free(src);
}
END_TEST

int main(void)
{
    if (!find_examples()) {
        fprintf(stderr, "no example models under examples/ (run from the source directory)\n");
        return EXIT_FAILURE;
    }
    int n = (int)examples.gl_pathc;
    Suite *s = suite_create("fuse_examples");
    TCase *k = tcase_create("kernels");
    tcase_set_timeout(k, 120);
    tcase_add_test(k, examples_fuse);
    tcase_add_test(k, train_step_kernels);
    tcase_add_test(k, train_step_one_update_loop);
    tcase_add_test(k, train_step_softmax_rows);
    tcase_add_test(k, train_step_bias_grads);
    suite_add_tcase(s, k);
    TCase *t = tcase_create("examples");
    tcase_set_timeout(t, 1200);
    tcase_add_loop_test(t, example_train_f32, 0, n);
    tcase_add_loop_test(t, example_train_f64, 0, n);
    tcase_add_loop_test(t, example_grad_f64, 0, n);
    tcase_add_loop_test(t, example_infer_f32, 0, n);
    tcase_add_loop_test(t, example_recipe_resume, 0, n);
    suite_add_tcase(s, t);
    int rc = tu_run(s);
    globfree(&examples);
    return rc;
}
