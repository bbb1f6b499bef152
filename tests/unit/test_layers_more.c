/* The sequence and image functions of the model language that lower to
 * existing ops (layer_norm, global pooling, upsampling2d, pad, tensor
 * literals, gather with a literal, batched matmul, dense on a sequence,
 * conv1d, conv2d_transpose):
 * interpreter values against numbers worked out by hand in f32 and f64,
 * and the JIT (fused) against the interpreter with N = 1 and N = 3. */
#include "test_jit_util.h"

typedef struct Case {
    const char *type; /* x's shape after the dtype, N first */
    const char *call; /* the model-language expression of x */
    int nin;
    double in[12];    /* x for N = 1 */
    int nout;
    double out[16];   /* the output for N = 1 */
} Case;

#define LN(v) ((v) / sqrt(1.25 + 1e-3))

static const Case cases[] = {
    {"[N, 4]", "layer_norm(x)", 4, {1, 2, 3, 4}, 4, {LN(-1.5), LN(-0.5), LN(0.5), LN(1.5)}},
    {"[N, 2, 2]", "layer_norm(x, axis=[1, 2], epsilon=2.75)", 4, {1, 2, 3, 4}, 4, {-0.75, -0.25, 0.25, 0.75}},
    {"[N, 2, 2, 2]", "global_avg_pool2d(x)", 8, {1, 2, 3, 4, 5, 6, 7, 8}, 2, {4, 5}},
    {"[N, 2, 2, 2]", "global_max_pool2d(x, keepdims=true)", 8, {1, 2, 3, 4, 5, 6, 7, 8}, 2, {7, 8}},
    {"[N, 1, 2, 1]", "upsampling2d(x, size=[1, 2])", 2, {1, 2}, 4, {1, 1, 2, 2}},
    {"[N, 1, 1, 2]", "upsampling2d(x)", 2, {1, 2}, 8, {1, 2, 1, 2, 1, 2, 1, 2}},
    {"[N, 2]", "pad(x, [[0, 0], [1, 2]])", 2, {1, 2}, 5, {0, 1, 2, 0, 0}},
    {"[N, 2]", "pad(x, [[0, 0], [1, 0]], constant_values=9)", 2, {1, 2}, 3, {9, 1, 2}},
    {"[N, 2]", "x + [10.0, 20.0]", 2, {1, 2}, 2, {11, 22}},
    {"[N, 1, 2]", "x * [[1, 2], [3, 4], [5, 6]]", 2, {1, 2}, 6, {1, 4, 3, 8, 5, 12}},
    {"[N, 3]", "gather(x, [2, 0, 2], axis=1)", 3, {1, 2, 3}, 3, {3, 1, 3}},
    {"[N, 2, 2]", "x @ [[1.0, 0.0], [0.0, 2.0]]", 4, {1, 2, 3, 4}, 4, {1, 4, 3, 8}},
    {"[N, 2, 2]", "matmul(x, x, transpose_a=true)", 4, {1, 2, 3, 4}, 4, {10, 14, 14, 20}},
    {"[N, 3, 1]", "conv1d(x, 1, 2, kernel_init=ones)", 3, {1, 2, 3}, 2, {3, 5}},
    {"[N, 3, 1]", "conv1d(x, 1, 2, padding=same, kernel_init=ones)", 3, {1, 2, 3}, 3, {3, 5, 3}},
    {"[N, 3, 1]", "conv1d(x, 1, 2, padding=causal, kernel_init=ones)", 3, {1, 2, 3}, 3, {1, 3, 5}},
    {"[N, 4, 1]", "conv1d(x, 2, 2, stride=2, kernel_init=ones)", 4, {1, 2, 3, 4}, 4, {3, 3, 7, 7}},
    {"[N, 2, 2, 1]", "conv2d_transpose(x, 1, 2, kernel_init=ones)", 4, {1, 2, 3, 4}, 9, {1, 3, 2, 4, 10, 6, 3, 7, 4}},
    {"[N, 2, 2, 1]", "conv2d_transpose(x, 1, 2, stride=2, kernel_init=ones)", 4, {1, 2, 3, 4}, 16,
     {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}},
    {"[N, 2, 2, 1]", "conv2d_transpose(x, 1, 2, padding=same, kernel_init=ones)", 4, {1, 2, 3, 4}, 4, {1, 3, 4, 10}},
};

static Graph *predict_graph(const Case *c, const char *dt, bool fuse)
{
    char src[512];
    snprintf(src, sizeof src, "input x: %s%s\ny = %s\noutput y\n", dt, c->type, c->call);
    return tj_recipe(src, FN_PREDICT, fuse);
}

START_TEST(values)
{
    const Case *c = &cases[_i];
    const char *dts[2] = {"f32", "f64"};
    for (int k = 0; k < 2; k++) {
        Graph *g = predict_graph(c, dts[k], false);
        const Node *x = ir_find_input(g, "x");
        Tensor *t = rt_tensor_for(x->dt, &x->shape, 1);
        ck_assert_int_eq(t->numel, c->nin);
        for (int i = 0; i < c->nin; i++)
            rt_set(t, i, c->in[i]);
        TensorMap params, inputs;
        rt_map_init(&params);
        rt_map_init(&inputs);
        rt_map_put(&inputs, "x", t);
        for (int i = 0; i < g->nnodes; i++) { /* ones and zeros as initialised */
            const Node *p = g->nodes[i];
            if (p->op != OP_PARAM)
                continue;
            Tensor *v = rt_tensor_for(p->dt, &p->shape, 1);
            for (int64_t j = 0; j < v->numel; j++)
                rt_set(v, j, p->a.init.kind == INIT_ONES);
            rt_map_put(&params, p->a.name, v);
        }
        Tensor *out[2] = {NULL, NULL};
        Diags d;
        diags_init(&d);
        RunOpts ro = {1, 0};
        ck_assert(be_interp_run(g, &params, &inputs, &ro, out, &d));
        ck_assert_int_eq(out[0]->numel, c->nout);
        double tol = k ? 1e-15 : 1e-6;
        for (int i = 0; i < c->nout; i++)
            ck_assert_msg(fabs(rt_get(out[0], i) - c->out[i]) <= tol * fmax(1, fabs(c->out[i])),
                          "%s %s: element %d is %.17g, want %.17g", c->call, dts[k], i, rt_get(out[0], i),
                          c->out[i]);
        rt_tensor_free(out[0]);
        diags_free(&d);
        rt_map_free(&inputs);
        rt_map_free(&params);
        ir_graph_free(g);
    }
}
END_TEST

START_TEST(jit_matches_interp)
{
    const Case *c = &cases[_i];
    const char *dts[2] = {"f32", "f64"};
    for (int k = 0; k < 2; k++)
        for (int64_t n = 1; n <= 3; n += 2) {
            Graph *g = predict_graph(c, dts[k], true);
            Diags d;
            diags_init(&d);
            JitModule *m = tj_compile(g, &d);
            ck_assert_ptr_nonnull(m);
            TensorMap params, inputs;
            rt_map_init(&params);
            rt_map_init(&inputs);
            LeafSpec sp = {"x", V_UNIF, -3, 3};
            tj_fill(g, &sp, 1, n, (uint64_t)(n * 3 + k), &params, &inputs);
            RunOpts ro = {1, 0};
            char what[200];
            snprintf(what, sizeof what, "%s %s N %lld", c->call, dts[k], (long long)n);
            Tol tol = k ? (Tol){1e-14, 1e-13, 0} : (Tol){1e-6, 1e-5, 0};
            ck_assert(tj_check_run(what, g, m, &params, &inputs, &ro, tol));
            rt_map_free(&params);
            rt_map_free(&inputs);
            be_jit_free(m);
            diags_free(&d);
            ir_graph_free(g);
        }
}
END_TEST

/* Shapes: dense on a sequence acts on the last axis; batched matmul
 * broadcasts batch axes; a literal nests. */
START_TEST(shapes)
{
    const char *want[][3] = {
        {"[N, 5, 3]", "dense(x, 4)", "f64[N,5,4]"},
        {"[N, 2, 5, 3]", "dense(x, 4, activation=relu)", "f64[N,2,5,4]"},
        {"[N, 5, 3]", "x @ transpose(x, [0, 2, 1])", "f64[N,5,5]"},
        {"[N, 2, 3]", "matmul(x, [[1.0], [2.0], [3.0]])", "f64[N,2,1]"},
        {"[N, 1, 2, 3]", "matmul(x, [[[1.0], [2.0], [3.0]], [[4.0], [5.0], [6.0]]])", "f64[N,2,2,1]"},
        {"[N, 6, 6, 3]", "upsampling2d(x, size=3)", "f64[N,18,18,3]"},
        {"[N, 6, 6, 3]", "global_avg_pool2d(x, keepdims=true)", "f64[N,1,1,3]"},
        {"[N, 4]", "x * [[[1.0, 2.0, 3.0, 4.0]]]", "f64[1,N,4]"},
        {"[N, 9, 3]", "conv1d(x, 4, 3, stride=2, padding=same)", "f64[N,5,4]"},
        {"[N, 9, 3]", "conv1d(x, 4, 3, padding=causal)", "f64[N,9,4]"},
        {"[N, 5, 4, 3]", "conv2d_transpose(x, 2, [3, 2], stride=2)", "f64[N,11,8,2]"},
        {"[N, 5, 4, 3]", "conv2d_transpose(x, 2, 3, stride=2, padding=same)", "f64[N,10,8,2]"},
    };
    for (int k = 0; k < ARRAY_LEN(want); k++) {
        Case c = {want[k][0], want[k][1], 0, {0}, 0, {0}};
        Graph *g = predict_graph(&c, "f64", false);
        char buf[128];
        ir_type_str(g->outs[0].val->dt, &g->outs[0].val->shape, buf, sizeof buf);
        ck_assert_msg(strcmp(buf, want[k][2]) == 0, "%s: %s", want[k][1], buf);
        ir_graph_free(g);
    }
}
END_TEST

/* label_smoothing and class_weight of the cross-entropies, huber and
 * kl_divergence, by hand:
 * logits [0, 0, ln 2] are the probabilities [1/4, 1/4, 1/2]; a binary
 * logit ln 3 the probability 3/4. */
START_TEST(loss_options)
{
    const double l2 = log(2.0), l3 = log(3.0), l43 = log(4.0 / 3.0);
    struct {
        const char *call;
        double want;
    } cases[] = {
        {"sparse_categorical_crossentropy(y, z, from_logits=true)", (l2 + 2 * l2) / 2},
        {"sparse_categorical_crossentropy(y, z, from_logits=true, label_smoothing=0.3)",
         (1.2 * l2 + (0.8 * 2 * l2 + 0.1 * 2 * l2 + 0.1 * l2)) / 2},
        {"sparse_categorical_crossentropy(y, z, from_logits=true, class_weight=[1, 1, 3])", (3 * l2 + 2 * l2) / 2},
        {"categorical_crossentropy(one_hot(y, 3, f64), softmax(z), class_weight=[0.5, 1, 1])", (l2 + 0.5 * 2 * l2) / 2},
        {"binary_crossentropy(b, zb, from_logits=true)", (l43 + (l3 + l43)) / 2},
        {"binary_crossentropy(b, zb, from_logits=true, label_smoothing=0.2)", ((0.1 * l3 + l43) + (0.9 * l3 + l43)) / 2},
        {"binary_crossentropy(b, zb, from_logits=true, class_weight=[2, 5])", (5 * l43 + 2 * (l3 + l43)) / 2},
        {"huber(b, zb)", (0.5 * (l3 - 1) * (l3 - 1) + (0.5 + (l3 - 1))) / 2},
        {"huber(b, zb, delta=2)", (0.5 * (l3 - 1) * (l3 - 1) + 0.5 * l3 * l3) / 2},
        {"kl_divergence(one_hot(y, 3, f64), softmax(z))",
         (l2 + 2e-7 * log(4e-7) + (log(4.0) + 1e-7 * log(4e-7) + 1e-7 * log(2e-7))) / 2},
    };
    for (int k = 0; k < ARRAY_LEN(cases); k++) {
        char src[400];
        snprintf(src, sizeof src, "input z: f64[N, 3]\ninput y: i32[N]\ninput zb: f64[N, 1]\ninput b: f64[N, 1]\n"
                                  "output l = %s\n", cases[k].call);
        Graph *g = tj_recipe(src, FN_PREDICT, false);
        TensorMap params, inputs;
        rt_map_init(&params);
        rt_map_init(&inputs);
        Shape sz = ir_shape2(IR_DIM_N, 3), sy = ir_shape1(IR_DIM_N), sb = ir_shape2(IR_DIM_N, 1);
        Tensor *z = rt_tensor_for(DT_F64, &sz, 2), *y = rt_tensor_for(DT_I32, &sy, 2);
        Tensor *zb = rt_tensor_for(DT_F64, &sb, 2), *b = rt_tensor_for(DT_F64, &sb, 2);
        for (int i = 0; i < 6; i++)
            rt_set(z, i, i % 3 == 2 ? l2 : 0);
        rt_set(y, 0, 2);
        rt_set(y, 1, 0);
        rt_set(zb, 0, l3);
        rt_set(zb, 1, l3);
        rt_set(b, 0, 1);
        rt_set(b, 1, 0);
        rt_map_put(&inputs, "z", z);
        rt_map_put(&inputs, "y", y);
        rt_map_put(&inputs, "zb", zb);
        rt_map_put(&inputs, "b", b);
        Tensor *out[2] = {NULL, NULL};
        Diags d;
        diags_init(&d);
        RunOpts ro = {1, 0};
        ck_assert(be_interp_run(g, &params, &inputs, &ro, out, &d));
        ck_assert_msg(fabs(rt_get(out[0], 0) - cases[k].want) < 1e-14, "%s: %.17g, want %.17g", cases[k].call,
                      rt_get(out[0], 0), cases[k].want);
        rt_tensor_free(out[0]);
        diags_free(&d);
        rt_map_free(&inputs);
        rt_map_free(&params);
        ir_graph_free(g);
    }
}
END_TEST

/* kernel_regularizer: the penalties join the loss, by hand on a kernel
 * of ones ([2, 3], so sum(w^2) = sum(|w|) = 6) */
START_TEST(regularizers)
{
    const char *regs[4] = {"l2(0.5)", "l1(0.25)", "l1_l2(l1=0.1, l2=0.5)", "l2()"};
    const double want[4] = {3, 1.5, 3.6, 0.06};
    for (int k = 0; k < 4; k++) {
        char src[300];
        snprintf(src, sizeof src,
                 "input x: f64[N, 2]\nh = dense(x, 3, use_bias=false, kernel_init=ones, kernel_regularizer=%s)\n"
                 "loss = mean(h) * 0\n",
                 regs[k]);
        Graph *g = tj_recipe(src, FN_LOSS, false);
        TensorMap params, inputs;
        rt_map_init(&params);
        rt_map_init(&inputs);
        Shape sx = ir_shape2(IR_DIM_N, 2), sw = ir_shape2(2, 3);
        Tensor *x = rt_tensor_for(DT_F64, &sx, 1), *w = rt_tensor_for(DT_F64, &sw, 1);
        for (int i = 0; i < 6; i++)
            rt_set(w, i, 1);
        rt_map_put(&inputs, "x", x);
        rt_map_put(&params, "dense.kernel", w);
        Tensor *out[4] = {NULL};
        Diags d;
        diags_init(&d);
        RunOpts ro = {1, 0};
        ck_assert_int_le(g->nouts, 4);
        ck_assert(be_interp_run(g, &params, &inputs, &ro, out, &d));
        ck_assert_int_eq(g->outs[0].kind, OUT_LOSS);
        ck_assert_msg(fabs(rt_get(out[0], 0) - want[k]) < 1e-14, "%s: %.17g", regs[k], rt_get(out[0], 0));
        for (int i = 0; i < g->nouts; i++)
            rt_tensor_free(out[i]);
        diags_free(&d);
        rt_map_free(&inputs);
        rt_map_free(&params);
        ir_graph_free(g);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("layers_more");
    TCase *t = tcase_create("layers_more");
    tcase_set_timeout(t, 120);
    tcase_add_loop_test(t, values, 0, ARRAY_LEN(cases));
    tcase_add_loop_test(t, jit_matches_interp, 0, ARRAY_LEN(cases));
    tcase_add_test(t, shapes);
    tcase_add_test(t, loss_options);
    tcase_add_test(t, regularizers);
    suite_add_tcase(s, t);
    return tu_run(s);
}
