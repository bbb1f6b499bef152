/* The interpreter's driver: binding inputs and parameters (with the exact
 * diagnostics for missing, mis-shaped and mis-typed tensors and for batch
 * sizes that disagree), the batch dimension N, evaluating only what the
 * outputs need, be_interp_run_all, freeing intermediates after their last
 * use, and independent output tensors. */
#include <string.h>

#include "backend/interp/interp_impl.h"
#include "testutil.h"

/* Locations without a file name: ir_intern_file passes NULL to memcpy
 * when a graph interns its first file (a UBSan error). */
static const SrcLoc LX = {NULL, 2, 7}, LY = {NULL, 3, 7}, LW = {NULL, 4, 9}, LOP = {NULL, 6, 3};

static Graph *g;
static Diags d;
static TensorMap inputs, params;

static void setup(void)
{
    g = ir_graph_new("t");
    diags_init(&d);
    rt_map_init(&inputs);
    rt_map_init(&params);
}

static void teardown(void)
{
    ir_graph_free(g);
    diags_free(&d);
    rt_map_free(&inputs);
    rt_map_free(&params);
}

#define D(...) ((const int64_t[]){__VA_ARGS__})

/* A tensor with element i = base + i. */
static Tensor *ramp(DType dt, int rank, const int64_t *dims, double base)
{
    Tensor *t = rt_tensor_new(dt, rank, dims);
    ck_assert_ptr_nonnull(t);
    for (int64_t i = 0; i < t->numel; i++)
        ix_store(t, i, base + (double)i);
    return t;
}

static Shape shape_n(int rank, const int64_t *dims)
{
    Shape s = ir_shape(rank, dims);
    s.d[0] = IR_DIM_N;
    return s;
}

static Node *unary(Op op, Node *x)
{
    Node *n = ir_unary(g, op, x, LOP, &d);
    ck_assert_ptr_nonnull(n);
    return n;
}

static void out(Node *n)
{
    ir_add_output(g, OUT_VALUE, "y", n, NULL, false);
}

static const char *msg(int i)
{
    return i < d.n ? d.v[i].msg : "";
}

/* Run expecting failure; outs must come back NULL. */
static void run_fails(int nerrors)
{
    Tensor *outs[4] = {(Tensor *)1, (Tensor *)1, (Tensor *)1, (Tensor *)1};
    ck_assert(!be_interp_run(g, &params, &inputs, NULL, outs, &d));
    for (int i = 0; i < g->nouts; i++)
        ck_assert_ptr_null(outs[i]);
    ck_assert_int_eq(d.nerrors, nerrors);
}

/* ---- binding errors ---- */

START_TEST(missing_input)
{
    Node *x = ir_input(g, "x", DT_F32, shape_n(2, D(0, 3)), LX);
    out(unary(OP_RELU, x));
    run_fails(1);
    ck_assert_str_eq(msg(0), "missing input 'x' of type f32[N,3]");
    ck_assert_int_eq(d.v[0].loc.line, 2);
    ck_assert_int_eq(d.v[0].loc.col, 7);
}
END_TEST

START_TEST(wrong_shape_input)
{
    Node *x = ir_input(g, "x", DT_F32, shape_n(2, D(0, 3)), LX);
    out(unary(OP_RELU, x));
    rt_map_put(&inputs, "x", ramp(DT_F32, 2, D(2, 4), 0));
    run_fails(1);
    ck_assert_str_eq(msg(0), "input 'x' is f32[2,4], expected f32[N,3]");
    rt_map_put(&inputs, "x", ramp(DT_F32, 3, D(2, 3, 1), 0));
    run_fails(2);
    ck_assert_str_eq(msg(1), "input 'x' is f32[2,3,1], expected f32[N,3]");
    rt_map_put(&inputs, "x", ramp(DT_F64, 2, D(2, 3), 0));
    run_fails(3);
    ck_assert_str_eq(msg(2), "input 'x' is f64[2,3], expected f32[N,3]");
}
END_TEST

START_TEST(batch_mismatch)
{
    Node *x = ir_input(g, "x", DT_F32, shape_n(2, D(0, 3)), LX);
    Node *y = ir_input(g, "y", DT_F32, shape_n(1, D(0)), LY);
    Attrs a = ir_attrs();
    a.naxes = 1;
    a.axes[0] = 1;
    out(ir_op(g, OP_REDUCE_SUM, &x, 1, &a, LOP, &d));
    out(y);
    rt_map_put(&inputs, "x", ramp(DT_F32, 2, D(2, 3), 0));
    rt_map_put(&inputs, "y", ramp(DT_F32, 1, D(3), 0));
    run_fails(1);
    ck_assert_str_eq(msg(0), "input 'y' is f32[3], expected f32[N] with N = 2 (from input 'x')");
    ck_assert_int_eq(d.v[0].loc.line, 3);
}
END_TEST

START_TEST(param_errors)
{
    Node *x = ir_input(g, "x", DT_F32, shape_n(2, D(0, 3)), LX);
    Node *w = ir_param(g, "w", DT_F32, ir_shape2(3, 2), (Init){INIT_ZEROS, 0, 0}, true,
                       ROLE_WEIGHT, LW);
    Node *v = ir_param(g, "v", DT_F32, ir_shape1(2), (Init){INIT_ZEROS, 0, 0}, true,
                       ROLE_WEIGHT, LW);
    Node *y = ir_binary(g, OP_ADD, ir_binary(g, OP_MATMUL, x, w, LOP, &d), v, LOP, &d);
    out(y);
    rt_map_put(&inputs, "x", ramp(DT_F32, 2, D(4, 3), 0));
    rt_map_put(&params, "w", ramp(DT_F64, 2, D(3, 2), 0));
    /* every problem is reported, not just the first */
    run_fails(2);
    ck_assert_str_eq(msg(0), "parameter 'w' is f64[3,2], expected f32[3,2]");
    ck_assert_str_eq(msg(1), "missing parameter 'v' of type f32[2]");
    ck_assert_int_eq(d.v[1].loc.line, 4);
    rt_map_put(&params, "w", ramp(DT_F32, 2, D(2, 3), 0));
    rt_map_put(&params, "v", ramp(DT_F32, 1, D(2), 0));
    run_fails(3);
    ck_assert_str_eq(msg(2), "parameter 'w' is f32[2,3], expected f32[3,2]");
    rt_map_put(&params, "w", ramp(DT_F32, 2, D(3, 2), 1));
    Tensor *r;
    ck_assert(be_interp_run(g, &params, &inputs, NULL, &r, &d));
    /* x row 0 = (0,1,2), w = [[1,2],[3,4],[5,6]], v = (0,1) */
    ck_assert_int_eq(r->dims[0], 4);
    ck_assert_double_eq(rt_get(r, 0), 0 * 1 + 1 * 3 + 2 * 5 + 0);
    ck_assert_double_eq(rt_get(r, 1), 0 * 2 + 1 * 4 + 2 * 6 + 1);
    rt_tensor_free(r);
}
END_TEST

START_TEST(n_unbound)
{
    Node *p = ir_param(g, "p", DT_F32, ir_shape1(3), (Init){INIT_ZEROS, 0, 0}, true,
                       ROLE_WEIGHT, LW);
    Attrs a = ir_attrs();
    a.shape = shape_n(2, D(0, 3));
    out(ir_op(g, OP_BROADCAST, &p, 1, &a, LOP, &d));
    rt_map_put(&params, "p", ramp(DT_F32, 1, D(3), 0));
    run_fails(1);
    ck_assert_str_eq(msg(0), "broadcast of type f32[N,3] needs the batch size N, but no input binds it");
    ck_assert_int_eq(d.v[0].loc.line, 6);
}
END_TEST

START_TEST(no_batch_graph)
{
    Node *p = ir_param(g, "p", DT_F64, ir_shape1(3), (Init){INIT_ZEROS, 0, 0}, true,
                       ROLE_WEIGHT, LW);
    Node *x = ir_input(g, "x", DT_F64, ir_shape0(), LX);
    out(ir_binary(g, OP_MUL, p, x, LOP, &d));
    rt_map_put(&params, "p", ramp(DT_F64, 1, D(3), 1));
    rt_map_put(&inputs, "x", ramp(DT_F64, 0, D(0), 10));
    Tensor *r;
    ck_assert(be_interp_run(g, &params, &inputs, NULL, &r, &d));
    ck_assert_int_eq(r->numel, 3);
    ck_assert_double_eq(rt_get(r, 2), 30);
    rt_tensor_free(r);
}
END_TEST

START_TEST(batch_from_later_input)
{
    Node *x = ir_input(g, "x", DT_F32, ir_shape1(3), LX);
    Node *y = ir_input(g, "y", DT_F32, shape_n(2, D(0, 3)), LY);
    out(ir_binary(g, OP_ADD, x, y, LOP, &d));
    rt_map_put(&inputs, "x", ramp(DT_F32, 1, D(3), 100));
    rt_map_put(&inputs, "y", ramp(DT_F32, 2, D(5, 3), 0));
    Tensor *r;
    ck_assert(be_interp_run(g, &params, &inputs, NULL, &r, &d));
    ck_assert_int_eq(r->dims[0], 5);
    ck_assert_double_eq(rt_get(r, 14), 102 + 14);
    rt_tensor_free(r);
}
END_TEST

START_TEST(empty_batch)
{
    Node *x = ir_input(g, "x", DT_F32, shape_n(2, D(0, 3)), LX);
    Attrs a = ir_attrs();
    a.naxes = 1;
    a.axes[0] = 0;
    Node *s = ir_op(g, OP_REDUCE_SUM, &x, 1, &a, LOP, &d);
    out(unary(OP_EXP, x));
    out(s);
    rt_map_put(&inputs, "x", ramp(DT_F32, 2, D(0, 3), 0));
    Tensor *r[2];
    ck_assert(be_interp_run(g, &params, &inputs, NULL, r, &d));
    ck_assert_int_eq(r[0]->numel, 0);
    ck_assert_int_eq(r[0]->dims[0], 0);
    ck_assert_int_eq(r[1]->numel, 3);
    ck_assert_double_eq(rt_get(r[1], 2), 0);
    rt_tensor_free(r[0]);
    rt_tensor_free(r[1]);
}
END_TEST

START_TEST(slice_of_batch_checked_at_run_time)
{
    Node *x = ir_input(g, "x", DT_F32, shape_n(2, D(0, 3)), LX);
    Attrs a = ir_attrs();
    a.begin[0] = 0;
    a.end[0] = 2;
    a.end[1] = INT64_MAX;
    out(ir_op(g, OP_SLICE, &x, 1, &a, LOP, &d));
    ck_assert_int_eq(g->outs[0].val->shape.d[0], 2);
    rt_map_put(&inputs, "x", ramp(DT_F32, 2, D(1, 3), 0));
    run_fails(1);
    ck_assert_str_eq(msg(0), "slice [0:2] is out of range for axis 0 of f32[1,3] (N = 1)");
    rt_map_put(&inputs, "x", ramp(DT_F32, 2, D(4, 3), 0));
    Tensor *r;
    ck_assert(be_interp_run(g, &params, &inputs, NULL, &r, &d));
    ck_assert_int_eq(r->numel, 6);
    ck_assert_double_eq(rt_get(r, 5), 5);
    rt_tensor_free(r);
}
END_TEST

/* ---- what gets evaluated ---- */

START_TEST(only_needed_leaves)
{
    Node *x = ir_input(g, "x", DT_F32, shape_n(2, D(0, 2)), LX);
    ir_input(g, "labels", DT_I32, shape_n(1, D(0)), LY);
    out(unary(OP_NEG, x));
    rt_map_put(&inputs, "x", ramp(DT_F32, 2, D(3, 2), 0));
    Tensor *r;
    ck_assert(be_interp_run(g, &params, &inputs, NULL, &r, &d));
    ck_assert_double_eq(rt_get(r, 5), -5);
    rt_tensor_free(r);
    /* run_all evaluates every node, so it needs every leaf */
    Tensor **vals;
    ck_assert(!be_interp_run_all(g, &params, &inputs, NULL, &vals, &d));
    ck_assert_ptr_null(vals);
    ck_assert_str_eq(msg(0), "missing input 'labels' of type i32[N]");
}
END_TEST

START_TEST(run_all_values)
{
    Node *x = ir_input(g, "x", DT_F64, shape_n(2, D(0, 2)), LX);
    Node *e = unary(OP_SQUARE, x);
    Node *dead = unary(OP_NEG, e); /* not an output, still evaluated */
    out(unary(OP_SQRT, e));
    rt_map_put(&inputs, "x", ramp(DT_F64, 2, D(2, 2), 1));
    Tensor **vals;
    ck_assert(be_interp_run_all(g, &params, &inputs, NULL, &vals, &d));
    /* leaves are copies the caller owns */
    ck_assert_ptr_ne(vals[x->id], rt_map_get(&inputs, "x"));
    ck_assert_double_eq(rt_get(vals[x->id], 3), 4);
    ck_assert_double_eq(rt_get(vals[e->id], 3), 16);
    ck_assert_double_eq(rt_get(vals[dead->id], 2), -9);
    ck_assert_double_eq(rt_get(vals[g->outs[0].val->id], 1), 2);
    be_interp_free_values(g, vals);
}
END_TEST

START_TEST(outputs_are_independent)
{
    Node *x = ir_input(g, "x", DT_F32, ir_shape1(3), LX);
    Node *r = unary(OP_RELU, x);
    Node *sq = ir_binary(g, OP_MUL, r, r, LOP, &d); /* one operand used twice */
    out(r);
    out(unary(OP_NEG, r)); /* r is an output and an operand */
    out(r);
    out(sq);
    rt_map_put(&inputs, "x", ramp(DT_F32, 1, D(3), -1));
    Tensor *o[4];
    ck_assert(be_interp_run(g, &params, &inputs, NULL, o, &d));
    ck_assert_ptr_ne(o[0], o[2]);
    for (int i = 0; i < 3; i++) {
        double v = i - 1 > 0 ? i - 1 : 0;
        ck_assert_double_eq(rt_get(o[0], i), v);
        ck_assert_double_eq(rt_get(o[1], i), -v);
        ck_assert_double_eq(rt_get(o[2], i), v);
        ck_assert_double_eq(rt_get(o[3], i), v * v);
    }
    for (int i = 0; i < 4; i++)
        rt_tensor_free(o[i]);
    /* an output that is an input is a copy */
    Graph *h = ir_graph_new("id");
    ir_add_output(h, OUT_VALUE, "x", ir_input(h, "x", DT_F32, ir_shape1(3), LX), NULL, false);
    ck_assert(be_interp_run(h, &params, &inputs, NULL, o, &d));
    ck_assert_ptr_ne(o[0], rt_map_get(&inputs, "x"));
    ck_assert_double_eq(rt_get(o[0], 0), -1);
    rt_tensor_free(o[0]);
    ir_graph_free(h);
}
END_TEST

/* A chain of k elementwise ops holds at most two activations at a time;
 * be_interp_run_all keeps all of them. */
START_TEST(intermediates_freed)
{
    Node *x = ir_input(g, "x", DT_F32, shape_n(2, D(0, 1024)), LX);
    Node *y = x;
    for (int i = 0; i < 8; i++)
        y = unary(i % 2 ? OP_ABS : OP_NEG, y);
    out(y);
    rt_map_put(&inputs, "x", ramp(DT_F32, 2, D(64, 1024), 0));
    int64_t bytes = 64 * 1024 * 4, peak = 0;
    Tensor *r;
    ck_assert(be_interp_run_peak(g, &params, &inputs, NULL, &r, &peak, &d));
    ck_assert_int_eq(peak, 2 * bytes);
    ck_assert_double_eq(rt_get(r, 7), 7); /* abs(-x) four times */
    rt_tensor_free(r);
}
END_TEST

START_TEST(fused_operand_count)
{
    Node *x = ir_input(g, "x", DT_F32, ir_shape1(2), LX);
    Graph *sub = ir_graph_new("body");
    Node *a = ir_input(sub, "a", DT_F32, ir_shape1(2), LX);
    Node *b = ir_input(sub, "b", DT_F32, ir_shape1(2), LX);
    ir_add_output(sub, OUT_VALUE, "o", ir_binary(sub, OP_ADD, a, b, LOP, &d), NULL, false);
    Node *f = arena_alloc(g->arena, sizeof(Node));
    f->op = OP_FUSED;
    f->nin = 1;
    f->in = arena_alloc(g->arena, sizeof(Node *));
    f->in[0] = x;
    f->a = ir_attrs();
    f->loc = LOP;
    f->sub = sub;
    ck_assert(ir_infer(f, &d));
    f->id = g->nnodes;
    VEC_PUSH(g->nodes, g->nnodes, g->cap, f);
    out(f);
    rt_map_put(&inputs, "x", ramp(DT_F32, 1, D(2), 0));
    run_fails(1);
    ck_assert_str_eq(msg(0), "fused body takes 2 operands, got 1");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("interp_run");
    TCase *t = tcase_create("run");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, missing_input);
    tcase_add_test(t, wrong_shape_input);
    tcase_add_test(t, batch_mismatch);
    tcase_add_test(t, param_errors);
    tcase_add_test(t, n_unbound);
    tcase_add_test(t, no_batch_graph);
    tcase_add_test(t, batch_from_later_input);
    tcase_add_test(t, empty_batch);
    tcase_add_test(t, slice_of_batch_checked_at_run_time);
    tcase_add_test(t, only_needed_leaves);
    tcase_add_test(t, run_all_values);
    tcase_add_test(t, outputs_are_independent);
    tcase_add_test(t, intermediates_freed);
    tcase_add_test(t, fused_operand_count);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
