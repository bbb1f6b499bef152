/* The data-parallel step's two halves, train_grad then apply, give the
 * training step's loss, metrics and every update bit for bit, by the
 * interpreter (unfused) and by the JIT (fused), on models with
 * batchnorm (state updated by train_grad), dropout, weight decay, clipping
 * and each optimizer. */
#include "test_jit_util.h"

static const char *const models[] = {
    "model bn_adam\n"
    "input x: f32[N, 6]\n"
    "input y: i32[N]\n"
    "h = dense(x, 8, activation=relu)\n"
    "h = batchnorm(h)\n"
    "h = dropout(h, 0.25)\n"
    "logits = dense(h, 3)\n"
    "loss = sparse_categorical_crossentropy(y, logits, from_logits=true)\n"
    "metric accuracy = accuracy(y, logits)\n"
    "train {\n"
    "  optimizer = adam(lr=0.01)\n"
    "  clip_norm = 0.5\n"
    "  weight_decay = 0.001\n"
    "}\n",
    "model sgd_momentum\n"
    "input x: f64[N, 6]\n"
    "input y: i32[N]\n"
    "h = dense(x, 5, activation=tanh)\n"
    "logits = dense(h, 3)\n"
    "loss = sparse_categorical_crossentropy(y, logits, from_logits=true)\n"
    "train {\n"
    "  optimizer = sgd(lr=0.1, momentum=0.9, nesterov=true)\n"
    "  clip_value = 0.05\n"
    "}\n",
    "model rms\n"
    "input x: f32[N, 4]\n"
    "input y: f32[N, 2]\n"
    "param w: f32[4, 2] = normal(0, 0.5)\n"
    "param f: f32[2] = ones() frozen\n"
    "loss = mse(y, x @ w * f)\n"
    "train {\n"
    "  optimizer = rmsprop(lr=0.01)\n"
    "}\n",
};

static const LeafSpec specs[] = {
    {"y", V_INT, 0, 2},
    {"optimizer.lr", V_UNIF, 0.001, 0.01},
    {"optimizer.step", V_INT, 0, 5},
    {"optimizer.v.dense.kernel", V_UNIF, 0, 1},
    {"optimizer.v.dense.bias", V_UNIF, 0, 1},
    {"optimizer.v.dense_1.kernel", V_UNIF, 0, 1},
    {"optimizer.v.dense_1.bias", V_UNIF, 0, 1},
    {"optimizer.v.batchnorm.gamma", V_UNIF, 0, 1},
    {"optimizer.v.batchnorm.beta", V_UNIF, 0, 1},
    {"optimizer.rms.w", V_UNIF, 0, 1},
    {"batchnorm.moving_variance", V_UNIF, 0.5, 2},
};

static bool run(Graph *g, JitModule *jm, const TensorMap *params, const TensorMap *inputs, Tensor **outs)
{
    Diags d;
    diags_init(&d);
    RunOpts ro = {7, 3};
    bool ok = jm ? be_jit_run(jm, params, inputs, &ro, outs, &d) : be_interp_run(g, params, inputs, &ro, outs, &d);
    if (!ok)
        diags_print(&d, stderr);
    diags_free(&d);
    return ok;
}

static JitModule *compile(Graph *g, bool jit)
{
    if (!jit)
        return NULL;
    Diags d;
    diags_init(&d);
    JitModule *jm = tj_compile(g, &d);
    ck_assert_ptr_nonnull(jm);
    diags_free(&d);
    return jm;
}

static int find(const Graph *g, OutKind k, const char *name)
{
    for (int i = 0; i < g->nouts; i++)
        if (g->outs[i].kind == k && strcmp(g->outs[i].name, name) == 0)
            return i;
    return -1;
}

static bool same_bits(const Tensor *a, const Tensor *b)
{
    return a && b && a->dt == b->dt && a->numel == b->numel &&
           memcmp(a->data, b->data, (size_t)rt_tensor_bytes(a)) == 0;
}

static void check_split(const char *src, bool jit)
{
    Graph *gs = tj_recipe(src, FN_TRAIN_STEP, jit), *gg = tj_recipe(src, FN_TRAIN_GRAD, jit),
          *ga = tj_recipe(src, FN_APPLY, jit);
    for (int i = 0; i < ga->nnodes; i++) /* apply reads no data */
        ck_assert(ga->nodes[i]->op != OP_INPUT || strncmp(ga->nodes[i]->a.name, "grad.", 5) == 0 ||
                  strcmp(ga->nodes[i]->a.name, "optimizer.lr") == 0);
    JitModule *js = compile(gs, jit), *jg = compile(gg, jit), *ja = compile(ga, jit);
    TensorMap params, inputs, ginputs;
    rt_map_init(&params);
    rt_map_init(&inputs);
    rt_map_init(&ginputs);
    tj_fill(gs, specs, ARRAY_LEN(specs), 5, 11, &params, &inputs);
    Tensor **os = xcalloc((size_t)gs->nouts + 1, sizeof(Tensor *));
    Tensor **og = xcalloc((size_t)gg->nouts + 1, sizeof(Tensor *));
    Tensor **oa = xcalloc((size_t)ga->nouts + 1, sizeof(Tensor *));
    ck_assert(run(gs, js, &params, &inputs, os));
    ck_assert(run(gg, jg, &params, &inputs, og));
    for (int i = 0; i < gg->nouts; i++)
        if (gg->outs[i].kind == OUT_GRAD)
            rt_map_put(&ginputs, gg->outs[i].name, rt_tensor_clone(og[i]));
    rt_map_put(&ginputs, "optimizer.lr", rt_tensor_clone(rt_map_get(&inputs, "optimizer.lr")));
    ck_assert(run(ga, ja, &params, &ginputs, oa));
    int nupd = 0;
    for (int i = 0; i < gs->nouts; i++) {
        const Output *o = &gs->outs[i];
        const char *what = ps_fn_names[FN_TRAIN_GRAD];
        int k = find(gg, o->kind, o->name);
        const Tensor *t = k >= 0 ? og[k] : NULL;
        if (k < 0 && (k = find(ga, o->kind, o->name)) >= 0) {
            what = ps_fn_names[FN_APPLY];
            t = oa[k];
        }
        ck_assert_msg(t, "%s: output '%s' of the training step is in neither half", gs->name, o->name);
        ck_assert_msg(same_bits(t, os[i]), "%s (%s): '%s' of %s differs from the training step's", gs->name,
                      jit ? "jit" : "interp", o->name, what);
        nupd += o->kind == OUT_UPDATE;
    }
    ck_assert_int_gt(nupd, 0);
    tj_free_outs(os, gs->nouts);
    tj_free_outs(og, gg->nouts);
    tj_free_outs(oa, ga->nouts);
    free(os);
    free(og);
    free(oa);
    rt_map_free(&params);
    rt_map_free(&inputs);
    rt_map_free(&ginputs);
    be_jit_free(js);
    be_jit_free(jg);
    be_jit_free(ja);
    ir_graph_free(gs);
    ir_graph_free(gg);
    ir_graph_free(ga);
}

START_TEST(split_interp)
{
    check_split(models[_i], false);
}
END_TEST

START_TEST(split_jit)
{
    check_split(models[_i], true);
}
END_TEST

/* apply's updates are exactly the training step's, its gradients exactly
 * autodiff's: batchnorm's moving statistics are train_grad's alone. */
START_TEST(state_updates_in_train_grad)
{
    Graph *gg = tj_recipe(models[0], FN_TRAIN_GRAD, false), *ga = tj_recipe(models[0], FN_APPLY, false);
    ck_assert_int_ge(find(gg, OUT_UPDATE, "batchnorm.moving_mean"), 0);
    ck_assert_int_lt(find(ga, OUT_UPDATE, "batchnorm.moving_mean"), 0);
    ck_assert_int_ge(find(gg, OUT_GRAD, "grad.dense.kernel"), 0);
    ck_assert_int_ge(find(ga, OUT_UPDATE, "optimizer.m.dense.kernel"), 0);
    ck_assert_ptr_nonnull(ir_find_input(ga, "grad.dense.kernel"));
    ck_assert_ptr_null(ir_find_input(ga, "x"));
    ir_graph_free(gg);
    ir_graph_free(ga);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("recipe_split");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, split_interp, 0, ARRAY_LEN(models));
    tcase_add_loop_test(tc, split_jit, 0, ARRAY_LEN(models));
    tcase_add_test(tc, state_updates_in_train_grad);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
