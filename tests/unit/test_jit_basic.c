/* The JIT on small hand-built graphs with hand-computed results: raw
 * buffer binding, broadcasting, matmul transposes, reductions, softmax,
 * in-place updates and workspace reuse. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/llvm/jit.h"
#include "testutil.h"

static SrcLoc L = {"t.mdl", 1, 1};

typedef struct Fixture {
    Graph *g;
    Diags d;
    JitModule *m;
    JitWorkspace *w;
} Fixture;

static void fx_init(Fixture *f)
{
    memset(f, 0, sizeof *f);
    f->g = ir_graph_new("t");
    diags_init(&f->d);
}

static void fx_compile(Fixture *f, int64_t n)
{
    JitOpts o;
    be_jit_opts_default(&o);
    o.threads = 1;
    f->m = be_jit_compile(f->g, &o, &f->d);
    if (!f->m)
        diags_print(&f->d, stderr);
    ck_assert_ptr_nonnull(f->m);
    f->w = be_jit_workspace_new(f->m, n, &f->d);
    ck_assert_ptr_nonnull(f->w);
}

static void fx_bind(Fixture *f, JitBufKind k, const char *name, void *data)
{
    int i = be_jit_find_buf(f->m, k, name);
    ck_assert_int_ge(i, 0);
    be_jit_bind_data(f->w, i, data);
}

static void fx_run(Fixture *f)
{
    ck_assert(be_jit_ready(f->w, &f->d));
    RtCtx ctx;
    rt_ctx_init(&ctx, 1);
    be_jit_step(f->w, &ctx);
}

static void fx_free(Fixture *f)
{
    be_jit_workspace_free(f->w);
    be_jit_free(f->m);
    diags_free(&f->d);
    ir_graph_free(f->g);
}

static Node *in2(Fixture *f, const char *name, int64_t a, int64_t b)
{
    int64_t d[2] = {a, b};
    return ir_input(f->g, name, DT_F32, ir_shape(2, d), L);
}

static void expect(const float *got, const float *want, int n)
{
    for (int i = 0; i < n; i++)
        ck_assert_msg(fabsf(got[i] - want[i]) <= 1e-6f * (1 + fabsf(want[i])),
                      "element %d: got %.9g, want %.9g", i, got[i], want[i]);
}

START_TEST(relu_bias)
{
    Fixture f;
    fx_init(&f);
    Node *x = in2(&f, "x", IR_DIM_N, 4);
    Node *b = ir_param(f.g, "b", DT_F32, ir_shape1(4), (Init){INIT_ZEROS, 0, 0}, true, ROLE_WEIGHT, L);
    Node *y = ir_unary(f.g, OP_RELU, ir_binary(f.g, OP_ADD, x, b, L, &f.d), L, &f.d);
    ir_add_output(f.g, OUT_VALUE, "y", y, NULL, false);
    fx_compile(&f, 3);
    float xd[12] = {1, -2, 3, -4, 0.5f, 0.25f, -0.125f, 8, -1, -1, -1, -1};
    float bd[4] = {0.5f, 1, -1, 2};
    fx_bind(&f, JIT_BUF_INPUT, "x", xd);
    fx_bind(&f, JIT_BUF_PARAM, "b", bd);
    fx_run(&f);
    float want[12] = {1.5f, 0, 2, 0, 1, 1.25f, 0, 10, 0, 0, 0, 1};
    expect(be_jit_out_data(f.w, 0), want, 12);
    ck_assert_int_eq(be_jit_out_numel(f.w, 0), 12);
    fx_free(&f);
}
END_TEST

static Node *matmul(Fixture *f, Node *a, Node *b, bool ta, bool tb)
{
    Attrs at = ir_attrs();
    at.ta = ta;
    at.tb = tb;
    Node *in[2] = {a, b};
    return ir_op(f->g, OP_MATMUL, in, 2, &at, L, &f->d);
}

START_TEST(matmul_transposes)
{
    Fixture f;
    fx_init(&f);
    Node *a = in2(&f, "a", 2, 3), *b = in2(&f, "b", 3, 2), *bt = in2(&f, "bt", 2, 3);
    ir_add_output(f.g, OUT_VALUE, "ab", matmul(&f, a, b, false, false), NULL, false);
    ir_add_output(f.g, OUT_VALUE, "abt", matmul(&f, a, bt, false, true), NULL, false);
    ir_add_output(f.g, OUT_VALUE, "ata", matmul(&f, a, a, true, false), NULL, false);
    fx_compile(&f, 1);
    float ad[6] = {1, 2, 3, 4, 5, 6}, bd[6] = {1, 0, 0, 1, 2, -1}, btd[6] = {1, 0, 2, 0, 1, -1};
    fx_bind(&f, JIT_BUF_INPUT, "a", ad);
    fx_bind(&f, JIT_BUF_INPUT, "b", bd);
    fx_bind(&f, JIT_BUF_INPUT, "bt", btd);
    fx_run(&f);
    float ab[4] = {7, -1, 16, -1};
    float ata[9] = {17, 22, 27, 22, 29, 36, 27, 36, 45};
    expect(be_jit_out_data(f.w, 0), ab, 4);
    expect(be_jit_out_data(f.w, 1), ab, 4);
    expect(be_jit_out_data(f.w, 2), ata, 9);
    fx_free(&f);
}
END_TEST

static Node *reduce(Fixture *f, Op op, Node *x, int ax0, int ax1, bool keep)
{
    Attrs a = ir_attrs();
    a.axes[a.naxes++] = ax0;
    if (ax1 >= 0)
        a.axes[a.naxes++] = ax1;
    a.keepdims = keep;
    return ir_op(f->g, op, &x, 1, &a, L, &f->d);
}

START_TEST(reductions)
{
    Fixture f;
    fx_init(&f);
    Node *x = in2(&f, "x", IR_DIM_N, 3);
    ir_add_output(f.g, OUT_VALUE, "s1", reduce(&f, OP_REDUCE_SUM, x, 1, -1, false), NULL, false);
    ir_add_output(f.g, OUT_VALUE, "s0", reduce(&f, OP_REDUCE_SUM, x, 0, -1, true), NULL, false);
    ir_add_output(f.g, OUT_VALUE, "m01", reduce(&f, OP_REDUCE_MEAN, x, 0, 1, false), NULL, false);
    ir_add_output(f.g, OUT_VALUE, "x0", reduce(&f, OP_REDUCE_MAX, x, 0, -1, false), NULL, false);
    ir_add_output(f.g, OUT_VALUE, "x1", reduce(&f, OP_REDUCE_MAX, x, 1, -1, false), NULL, false);
    ir_add_output(f.g, OUT_VALUE, "am", reduce(&f, OP_ARGMAX, x, 1, -1, false), NULL, false);
    fx_compile(&f, 2);
    float xd[6] = {1, 5, 5, -2, -3, -1};
    fx_bind(&f, JIT_BUF_INPUT, "x", xd);
    fx_run(&f);
    float s1[2] = {11, -6}, s0[3] = {-1, 2, 4}, m01[1] = {5.0f / 6}, x0[3] = {1, 5, 5},
          x1[2] = {5, -1}, am[2] = {1, 2};
    expect(be_jit_out_data(f.w, 0), s1, 2);
    expect(be_jit_out_data(f.w, 1), s0, 3);
    expect(be_jit_out_data(f.w, 2), m01, 1);
    expect(be_jit_out_data(f.w, 3), x0, 3);
    expect(be_jit_out_data(f.w, 4), x1, 2);
    expect(be_jit_out_data(f.w, 5), am, 2);
    fx_free(&f);
}
END_TEST

START_TEST(softmax_rows)
{
    Fixture f;
    fx_init(&f);
    Node *x = in2(&f, "x", IR_DIM_N, 3);
    Attrs a = ir_attrs();
    a.naxes = 1;
    a.axes[0] = 1;
    ir_add_output(f.g, OUT_VALUE, "p", ir_op(f.g, OP_SOFTMAX, &x, 1, &a, L, &f.d), NULL, false);
    ir_add_output(f.g, OUT_VALUE, "lp", ir_op(f.g, OP_LOG_SOFTMAX, &x, 1, &a, L, &f.d), NULL, false);
    a.axes[0] = 0;
    ir_add_output(f.g, OUT_VALUE, "p0", ir_op(f.g, OP_SOFTMAX, &x, 1, &a, L, &f.d), NULL, false);
    fx_compile(&f, 2);
    float xd[6] = {0, 1, 2, 1000, 1000, 1000};
    fx_bind(&f, JIT_BUF_INPUT, "x", xd);
    fx_run(&f);
    double z = 1 + exp(1) + exp(2);
    float p[6] = {(float)(1 / z), (float)(exp(1) / z), (float)(exp(2) / z), 1.0f / 3, 1.0f / 3, 1.0f / 3};
    float lp[6] = {(float)-log(z), (float)(1 - log(z)), (float)(2 - log(z)), (float)-log(3), (float)-log(3),
                   (float)-log(3)};
    float p0[6] = {0, 0, 0, 1, 1, 1};
    expect(be_jit_out_data(f.w, 0), p, 6);
    expect(be_jit_out_data(f.w, 1), lp, 6);
    expect(be_jit_out_data(f.w, 2), p0, 6);
    fx_free(&f);
}
END_TEST

/* w <- w - 0.5 * g, with g = reduce_sum(x, 0): done in place; the output
 * reading the old w gets a snapshot. */
START_TEST(update_in_place)
{
    Fixture f;
    fx_init(&f);
    Node *x = in2(&f, "x", IR_DIM_N, 2);
    Node *w = ir_param(f.g, "w", DT_F32, ir_shape1(2), (Init){INIT_ZEROS, 0, 0}, true, ROLE_WEIGHT, L);
    Node *gsum = reduce(&f, OP_REDUCE_SUM, ir_binary(f.g, OP_MUL, x, w, L, &f.d), 0, -1, false);
    Node *nw = ir_binary(f.g, OP_SUB, w, ir_binary(f.g, OP_MUL, ir_const(f.g, DT_F32, 0.5, L), gsum, L, &f.d),
                         L, &f.d);
    ir_add_output(f.g, OUT_VALUE, "old", w, NULL, false);
    ir_add_output(f.g, OUT_UPDATE, "w", nw, w, false);
    fx_compile(&f, 2);
    float xd[4] = {1, 2, 3, 4}, wd[2] = {1, -1};
    fx_bind(&f, JIT_BUF_INPUT, "x", xd);
    fx_bind(&f, JIT_BUF_PARAM, "w", wd);
    fx_run(&f);
    float old[2] = {1, -1}, nwv[2] = {1 - 0.5f * 4, -1 + 0.5f * 6};
    expect(be_jit_out_data(f.w, 0), old, 2);
    expect(wd, nwv, 2);
    ck_assert_ptr_eq(be_jit_out_data(f.w, 1), wd);
    fx_run(&f);
    float nw2[2] = {nwv[0] - 0.5f * 4 * nwv[0], nwv[1] - 0.5f * 6 * nwv[1]};
    expect(wd, nw2, 2);
    expect(be_jit_out_data(f.w, 0), nwv, 2);
    fx_free(&f);
}
END_TEST

/* Updates that swap two parameters read both old values (snapshots);
 * an update whose parameter is read by a later kernel is copied at the
 * end; be_jit_run leaves the caller's tensors alone. */
START_TEST(update_order)
{
    Fixture f;
    fx_init(&f);
    Init z = {INIT_ZEROS, 0, 0};
    Node *p = ir_param(f.g, "p", DT_F32, ir_shape1(3), z, true, ROLE_WEIGHT, L);
    Node *q = ir_param(f.g, "q", DT_F32, ir_shape1(3), z, true, ROLE_WEIGHT, L);
    Node *r = ir_param(f.g, "r", DT_F32, ir_shape1(3), z, true, ROLE_WEIGHT, L);
    Node *r2 = ir_binary(f.g, OP_MUL, r, ir_const(f.g, DT_F32, 2, L), L, &f.d);
    Node *later = ir_binary(f.g, OP_ADD, r, ir_const(f.g, DT_F32, 1, L), L, &f.d); /* reads old r after r2 */
    ir_add_output(f.g, OUT_UPDATE, "p", q, p, false);
    ir_add_output(f.g, OUT_UPDATE, "q", p, q, false);
    ir_add_output(f.g, OUT_UPDATE, "r", r2, r, false);
    ir_add_output(f.g, OUT_VALUE, "later", later, NULL, false);
    ir_add_output(f.g, OUT_VALUE, "q_old", q, NULL, false);
    fx_compile(&f, 1);
    float pd[3] = {1, 2, 3}, qd[3] = {4, 5, 6}, rd[3] = {7, 8, 9};
    fx_bind(&f, JIT_BUF_PARAM, "p", pd);
    fx_bind(&f, JIT_BUF_PARAM, "q", qd);
    fx_bind(&f, JIT_BUF_PARAM, "r", rd);
    fx_run(&f);
    float p1[3] = {4, 5, 6}, q1[3] = {1, 2, 3}, r1[3] = {14, 16, 18}, l1[3] = {8, 9, 10};
    expect(pd, p1, 3);
    expect(qd, q1, 3);
    expect(rd, r1, 3);
    expect(be_jit_out_data(f.w, 3), l1, 3);
    expect(be_jit_out_data(f.w, 4), p1, 3);

    /* the same through be_jit_run: new tensors, inputs untouched */
    TensorMap params;
    rt_map_init(&params);
    const char *names[3] = {"p", "q", "r"};
    float *vals[3] = {p1, q1, r1};
    for (int i = 0; i < 3; i++) {
        Tensor *t = rt_tensor_new(DT_F32, 1, (int64_t[]){3});
        memcpy(t->data, vals[i], sizeof p1);
        rt_map_put(&params, names[i], t);
    }
    Tensor *outs[5];
    ck_assert(be_jit_run(f.m, &params, NULL, NULL, outs, &f.d));
    float r2v[3] = {28, 32, 36};
    expect(outs[0]->data, q1, 3);
    expect(outs[1]->data, p1, 3);
    expect(outs[2]->data, r2v, 3);
    expect(rt_map_get(&params, "p")->data, p1, 3);
    expect(rt_map_get(&params, "r")->data, r1, 3);
    for (int i = 0; i < 5; i++)
        rt_tensor_free(outs[i]);
    rt_map_free(&params);
    fx_free(&f);
}
END_TEST

/* A chain of elementwise ops over [N, 1000] needs a few buffers, not one
 * per node: temporaries with disjoint lifetimes share memory. */
START_TEST(workspace_reuse)
{
    Fixture f;
    fx_init(&f);
    Node *x = in2(&f, "x", IR_DIM_N, 1000), *v = x;
    for (int i = 0; i < 12; i++)
        v = ir_unary(f.g, i % 2 ? OP_NEG : OP_SQUARE, v, L, &f.d);
    ir_add_output(f.g, OUT_VALUE, "y", v, NULL, false);
    fx_compile(&f, 8);
    ck_assert_int_le(be_jit_workspace_bytes(f.w), 2 * 8 * 1000 * 4);
    float *xd = calloc(8000, sizeof(float));
    for (int i = 0; i < 8000; i++)
        xd[i] = (float)(i % 5) * 0.5f;
    fx_bind(&f, JIT_BUF_INPUT, "x", xd);
    fx_run(&f);
    const float *y = be_jit_out_data(f.w, 0);
    for (int i = 0; i < 8000; i++) {
        double e = xd[i];
        for (int k = 0; k < 12; k++)
            e = k % 2 ? -e : e * e;
        ck_assert_msg(fabs(y[i] - e) <= 1e-6 * (1 + fabs(e)), "element %d: %g, want %g", i, y[i], e);
    }
    free(xd);
    fx_free(&f);
}
END_TEST

/* Binding errors: a missing input, and a batch size that disagrees. */
START_TEST(binding_errors)
{
    Fixture f;
    fx_init(&f);
    Node *x = in2(&f, "x", IR_DIM_N, 2), *y = in2(&f, "y", IR_DIM_N, 2);
    ir_add_output(f.g, OUT_VALUE, "s", ir_binary(f.g, OP_ADD, x, y, L, &f.d), NULL, false);
    fx_compile(&f, 1);
    TensorMap in;
    rt_map_init(&in);
    rt_map_put(&in, "x", rt_tensor_new(DT_F32, 2, (int64_t[]){3, 2}));
    Tensor *outs[1];
    ck_assert(!be_jit_run(f.m, NULL, &in, NULL, outs, &f.d));
    ck_assert_str_eq(f.d.v[f.d.n - 1].msg, "missing input 'y' of type f32[N,2]");
    rt_map_put(&in, "y", rt_tensor_new(DT_F32, 2, (int64_t[]){4, 2}));
    ck_assert(!be_jit_run(f.m, NULL, &in, NULL, outs, &f.d));
    ck_assert_str_eq(f.d.v[f.d.n - 1].msg, "input 'y' is f32[4,2], expected f32[N,2] with N = 3 (from input 'x')");
    rt_map_free(&in);
    fx_free(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("jit_basic");
    TCase *t = tcase_create("basic");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, relu_bias);
    tcase_add_test(t, matmul_transposes);
    tcase_add_test(t, reductions);
    tcase_add_test(t, softmax_rows);
    tcase_add_test(t, update_in_place);
    tcase_add_test(t, update_order);
    tcase_add_test(t, workspace_reuse);
    tcase_add_test(t, binding_errors);
    suite_add_tcase(s, t);
    return tu_run(s);
}
