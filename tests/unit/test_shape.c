/* Shape and dtype inference: broadcasting, matmul, conv, reshape, slice,
 * and the exact error messages users see. */
#include <string.h>

#include "ir/ir.h"
#include "testutil.h"

static SrcLoc L = {"t.mdl", 3, 5};

static const char *first_msg(Diags *d)
{
    return d->n ? d->v[0].msg : "";
}

START_TEST(broadcast_bias)
{
    Graph *g = ir_graph_new("t");
    Diags d;
    diags_init(&d);
    int64_t xd[2] = {IR_DIM_N, 256};
    Node *x = ir_input(g, "x", DT_F32, ir_shape(2, xd), L);
    Node *b = ir_param(g, "b", DT_F32, ir_shape1(256), (Init){INIT_ZEROS, 0, 0}, true, ROLE_WEIGHT, L);
    Node *y = ir_binary(g, OP_ADD, x, b, L, &d);
    ck_assert_ptr_nonnull(y);
    char buf[128];
    ck_assert_str_eq(ir_type_str(y->dt, &y->shape, buf, sizeof buf), "f32[N,256]");
    Node *c = ir_param(g, "c", DT_F32, ir_shape1(10), (Init){INIT_ZEROS, 0, 0}, true, ROLE_WEIGHT, L);
    ck_assert_ptr_null(ir_binary(g, OP_ADD, x, c, L, &d));
    ck_assert_str_eq(first_msg(&d),
                     "cannot broadcast f32[N,256] and f32[10] in add: dimensions 256 and 10 differ");
    diags_free(&d);
    ir_graph_free(g);
}
END_TEST

START_TEST(matmul_inner)
{
    Graph *g = ir_graph_new("t");
    Diags d;
    diags_init(&d);
    int64_t xd[2] = {IR_DIM_N, 784};
    Node *x = ir_input(g, "x", DT_F32, ir_shape(2, xd), L);
    Node *w = ir_param(g, "w", DT_F32, ir_shape2(100, 10), (Init){INIT_ZEROS, 0, 0}, true, ROLE_WEIGHT, L);
    ck_assert_ptr_null(ir_binary(g, OP_MATMUL, x, w, L, &d));
    ck_assert_str_eq(first_msg(&d),
                     "matmul of f32[N,784] and f32[100,10]: inner dimensions 784 and 100 differ");
    /* x^T @ x contracts over N */
    Attrs a = ir_attrs();
    a.ta = true;
    Node *in[2] = {x, x};
    Node *xtx = ir_op(g, OP_MATMUL, in, 2, &a, L, &d);
    ck_assert_ptr_nonnull(xtx);
    ck_assert_int_eq(xtx->shape.d[0], 784);
    ck_assert_int_eq(xtx->shape.d[1], 784);
    diags_free(&d);
    ir_graph_free(g);
}
END_TEST

START_TEST(conv_same)
{
    Graph *g = ir_graph_new("t");
    Diags d;
    diags_init(&d);
    int64_t xd[4] = {IR_DIM_N, 28, 28, 1}, kd[4] = {3, 3, 1, 32};
    Node *x = ir_input(g, "x", DT_F32, ir_shape(4, xd), L);
    Node *k = ir_param(g, "k", DT_F32, ir_shape(4, kd), (Init){INIT_GLOROT_UNIFORM, 0, 0}, true, ROLE_WEIGHT, L);
    Attrs a = ir_attrs();
    a.pad[0] = a.pad[1] = a.pad[2] = a.pad[3] = 1;
    Node *in[2] = {x, k};
    Node *y = ir_op(g, OP_CONV2D, in, 2, &a, L, &d);
    ck_assert_ptr_nonnull(y);
    char buf[128];
    ck_assert_str_eq(ir_type_str(y->dt, &y->shape, buf, sizeof buf), "f32[N,28,28,32]");
    Attrs p = ir_attrs();
    p.window[0] = p.window[1] = p.stride[0] = p.stride[1] = 2;
    Node *z = ir_op(g, OP_MAX_POOL2D, &y, 1, &p, L, &d);
    ck_assert_str_eq(ir_type_str(z->dt, &z->shape, buf, sizeof buf), "f32[N,14,14,32]");
    diags_free(&d);
    ir_graph_free(g);
}
END_TEST

START_TEST(reshape_and_slice)
{
    Graph *g = ir_graph_new("t");
    Diags d;
    diags_init(&d);
    int64_t xd[4] = {IR_DIM_N, 7, 7, 64}, td[2] = {IR_DIM_N, 3136}, bad[2] = {IR_DIM_N, 3000};
    Node *x = ir_input(g, "x", DT_F32, ir_shape(4, xd), L);
    Attrs a = ir_attrs();
    a.shape = ir_shape(2, td);
    ck_assert_ptr_nonnull(ir_op(g, OP_RESHAPE, &x, 1, &a, L, &d));
    a.shape = ir_shape(2, bad);
    ck_assert_ptr_null(ir_op(g, OP_RESHAPE, &x, 1, &a, L, &d));
    ck_assert_str_eq(first_msg(&d), "cannot reshape f32[N,7,7,64] to [N,3000]: element counts differ");
    Attrs s = ir_attrs();
    s.begin[0] = 0;
    s.end[0] = 1;
    s.begin[1] = 2;
    s.end[1] = 5;
    s.end[2] = INT64_MAX;
    s.end[3] = INT64_MAX;
    Node *y = ir_op(g, OP_SLICE, &x, 1, &s, L, &d);
    ck_assert_ptr_nonnull(y);
    char buf[128];
    ck_assert_str_eq(ir_type_str(y->dt, &y->shape, buf, sizeof buf), "f32[1,3,7,64]");
    diags_free(&d);
    ir_graph_free(g);
}
END_TEST

START_TEST(numel_overflow)
{
    int64_t dd[3] = {1LL << 40, 1LL << 30, 4};
    Shape s = ir_shape(3, dd);
    ck_assert_int_eq(ir_shape_numel(&s, 1), -1);
}
END_TEST

/* The one size check: at most 2^45 elements, N and zero dimensions
 * counted as one, never overflowing on the way. */
START_TEST(size_limit)
{
    int64_t ok[3] = {IR_DIM_N, 1LL << 20, 1LL << 25};
    ck_assert_int_eq(ir_dims_numel(3, ok), IR_MAX_ELEMS);
    int64_t over[3] = {IR_DIM_N, (1LL << 20) + 1, 1LL << 25};
    ck_assert_int_eq(ir_dims_numel(3, over), -1);
    int64_t empty[3] = {0, 4, 5};
    ck_assert_int_eq(ir_dims_numel(3, empty), 0);
    int64_t empty_big[4] = {0, 1LL << 40, 1LL << 40, 0};
    ck_assert_int_eq(ir_dims_numel(4, empty_big), -1);
    int64_t huge[6] = {INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX};
    ck_assert_int_eq(ir_dims_numel(6, huge), -1);
    int64_t wraps[3] = {1LL << 62, 4, 0}; /* a product that wraps to zero */
    ck_assert_int_eq(ir_dims_numel(3, wraps), -1);
    int64_t multiple[2] = {4, ir_dim_batch(5)}; /* N*5 counts 5 */
    ck_assert_int_eq(ir_dims_numel(2, multiple), 20);
    int64_t multiple_over[2] = {ir_dim_batch(1LL << 40), 1LL << 6};
    ck_assert_int_eq(ir_dims_numel(2, multiple_over), -1);
    int64_t negative[2] = {4, INT64_MIN}; /* no factor of N */
    ck_assert_int_eq(ir_dims_numel(2, negative), -1);
    ck_assert_int_eq(ir_dims_numel(0, NULL), 1);
    Shape s = ir_shape(3, ok);
    ck_assert(ir_shape_valid(&s));
    s = ir_shape(3, wraps);
    ck_assert(!ir_shape_valid(&s));
}
END_TEST

/* Slice lengths and offset steps never overflow, whatever the step. */
START_TEST(slice_arithmetic)
{
    ck_assert_int_eq(ir_slice_len(1, 4, INT64_MAX), 1);
    ck_assert_int_eq(ir_slice_len(0, 10, 3), 4);
    ck_assert_int_eq(ir_slice_len(0, 9, 3), 3);
    ck_assert_int_eq(ir_slice_len(5, 5, 2), 0);
    ck_assert_int_eq(ir_slice_len(0, INT64_MAX, INT64_MAX), 1);
    ck_assert_int_eq(ir_slice_step(1, 4, INT64_MAX), 1);
    ck_assert_int_eq(ir_slice_step(0, 10, 3), 3);
    ck_assert_int_eq(ir_slice_step(0, 3, 3), 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("shape");
    TCase *t = tcase_create("infer");
    tcase_add_test(t, broadcast_bias);
    tcase_add_test(t, matmul_inner);
    tcase_add_test(t, conv_same);
    tcase_add_test(t, reshape_and_slice);
    tcase_add_test(t, numel_overflow);
    tcase_add_test(t, size_limit);
    tcase_add_test(t, slice_arithmetic);
    suite_add_tcase(s, t);
    return tu_run(s);
}
