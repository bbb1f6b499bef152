/* The autodiff pass: gradient structure per rule (matmul flag cases,
 * broadcast reduction, fan-out sums, reductions over N), which parameters
 * get gradients, zero gradients with warnings, wrt inputs, source
 * locations of gradient nodes, and the exact error messages. */
#include "test_autodiff_util.h"
#include "testutil.h"

typedef struct Fix {
    Graph *g;
    Diags d;
} Fix;

static Fix fix_new(void)
{
    Fix f;
    f.g = ir_graph_new("t");
    diags_init(&f.d);
    return f;
}

static void fix_free(Fix *f)
{
    diags_free(&f->d);
    ir_graph_free(f->g);
}

static Node *input2(Fix *f, const char *name, int64_t a, int64_t b)
{
    return ir_input(f->g, name, DT_F64, ir_shape2(a, b), TL);
}

static void loss_out(Fix *f, Node *l)
{
    ir_add_output(f->g, OUT_LOSS, "loss", l, NULL, false);
}

static bool diff_simplify(Fix *f)
{
    bool ok = ps_autodiff(f->g, NULL, 0, &f->d);
    if (ok)
        ok = ps_simplify(f->g, &f->d);
    return ok;
}

START_TEST(no_loss)
{
    Fix f = fix_new();
    Node *x = input2(&f, "x", 2, 2);
    ir_add_output(f.g, OUT_VALUE, "y", x, NULL, false);
    ck_assert(!ps_autodiff(f.g, NULL, 0, &f.d));
    ck_assert_str_eq(tu_msg(&f.d, 0), "model 't' has no loss to differentiate");
    fix_free(&f);
}
END_TEST

START_TEST(loss_not_scalar)
{
    Fix f = fix_new();
    Node *x = input2(&f, "x", IR_DIM_N, 2);
    Node *w = tu_param(f.g, "w", ir_shape1(2));
    loss_out(&f, ir_binary(f.g, OP_MUL, x, w, TL, &f.d));
    ck_assert(!ps_autodiff(f.g, NULL, 0, &f.d));
    ck_assert_str_eq(tu_msg(&f.d, 0), "the loss must be a floating-point scalar, got f64[N,2]");
    fix_free(&f);
}
END_TEST

/* loss = sum(op(A) op(B) * C): the gradient reaching the matmul is C. */
static void check_matmul(bool ta, bool tb, const char *ga, const char *gb)
{
    Fix f = fix_new();
    Node *a = tu_param(f.g, "A", ta ? ir_shape2(3, 2) : ir_shape2(2, 3));
    Node *b = tu_param(f.g, "B", tb ? ir_shape2(4, 3) : ir_shape2(3, 4));
    Node *c = input2(&f, "C", 2, 4);
    Attrs at = ir_attrs();
    at.ta = ta;
    at.tb = tb;
    Node *in[2] = {a, b};
    Node *m = ir_op(f.g, OP_MATMUL, in, 2, &at, TL, &f.d);
    loss_out(&f, tu_sum_all(f.g, ir_binary(f.g, OP_MUL, m, c, TL, &f.d), &f.d));
    ck_assert(diff_simplify(&f));
    ck_assert_str_eq(tu_grad(f.g, "A"), ga);
    ck_assert_str_eq(tu_grad(f.g, "B"), gb);
    ck_assert_int_eq(tu_count_op(f.g, OP_TRANSPOSE), 0);
    fix_free(&f);
}

START_TEST(matmul_flags)
{
    check_matmul(false, false, "matmul{tb}(C, B)", "matmul{ta}(A, C)");
    check_matmul(false, true, "matmul(C, B)", "matmul{ta}(C, A)");
    check_matmul(true, false, "matmul{tb}(B, C)", "matmul(A, C)");
    check_matmul(true, true, "matmul{ta,tb}(B, C)", "matmul{ta,tb}(C, A)");
}
END_TEST

START_TEST(broadcast_operands_reduced)
{
    Fix f = fix_new();
    Node *x = input2(&f, "x", IR_DIM_N, 3);
    Node *b1 = tu_param(f.g, "b1", ir_shape1(3));
    Node *b2 = tu_param(f.g, "b2", ir_shape2(1, 3));
    Node *s = tu_param(f.g, "s", ir_shape0());
    Node *y = ir_binary(f.g, OP_ADD, ir_binary(f.g, OP_ADD, x, b1, TL, &f.d), b2, TL, &f.d);
    y = ir_binary(f.g, OP_MUL, y, s, TL, &f.d);
    loss_out(&f, tu_sum_all(f.g, ir_unary(f.g, OP_EXP, y, TL, &f.d), &f.d));
    ck_assert(ps_autodiff(f.g, NULL, 0, &f.d));
    Node *g1 = tu_output(f.g, "grad.b1")->val, *g2 = tu_output(f.g, "grad.b2")->val;
    Node *gs = tu_output(f.g, "grad.s")->val;
    ck_assert_int_eq(g1->op, OP_REDUCE_SUM);
    ck_assert_str_eq(tu_expr(g1), tu_expr(g2->in[0]));
    ck_assert_int_eq(g1->a.naxes, 1);
    ck_assert(!g1->a.keepdims);
    ck_assert_int_eq(g2->op, OP_REDUCE_SUM);
    ck_assert(g2->a.keepdims);
    ck_assert_int_eq(gs->op, OP_REDUCE_SUM);
    ck_assert_int_eq(gs->a.naxes, 2);
    ck_assert(ir_shape_eq(&g2->shape, &b2->shape));
    ck_assert_int_eq(gs->shape.rank, 0);
    ck_assert(ps_simplify(f.g, &f.d));
    ck_assert_str_eq(tu_grad(f.g, "s"),
                     "reduce_sum{0,1}(mul(exp(mul(add(add(x, b1), b2), s)), add(add(x, b1), b2)))");
    ck_assert_str_eq(tu_grad(f.g, "b1"), "reduce_sum{0}(mul(exp(mul(add(add(x, b1), b2), s)), s))");
    ck_assert_str_eq(tu_grad(f.g, "b2"),
                     "reduce_sum{0;keep}(mul(exp(mul(add(add(x, b1), b2), s)), s))");
    fix_free(&f);
}
END_TEST

START_TEST(fan_out_sums)
{
    Fix f = fix_new();
    Node *w = tu_param(f.g, "w", ir_shape1(3));
    Node *y = ir_binary(f.g, OP_MUL, w, ir_unary(f.g, OP_EXP, w, TL, &f.d), TL, &f.d);
    loss_out(&f, tu_sum_all(f.g, y, &f.d));
    ck_assert(diff_simplify(&f));
    ck_assert_str_eq(tu_grad(f.g, "w"), "add(exp(w), mul(w, exp(w)))");
    fix_free(&f);
}
END_TEST

/* mean over the batch divides by N computed at run time. */
START_TEST(mean_over_batch)
{
    Fix f = fix_new();
    Node *x = input2(&f, "x", IR_DIM_N, 3);
    Node *w = tu_param(f.g, "w", ir_shape1(3));
    int ax[2] = {0, 1};
    Node *l = tu_reduce(f.g, OP_REDUCE_MEAN, ir_binary(f.g, OP_MUL, x, w, TL, &f.d), 2, ax, false, &f.d);
    loss_out(&f, l);
    ck_assert(diff_simplify(&f));
    ck_assert_str_eq(tu_grad(f.g, "w"),
                     "reduce_sum{0}(mul(div(0.3333333333333333, reduce_sum{0}(broadcast{[N]}(1))), x))");
    fix_free(&f);
}
END_TEST

START_TEST(reduce_not_leading_axis)
{
    Fix f = fix_new();
    Node *w = tu_param(f.g, "w", ir_shape2(2, 3));
    Node *v = tu_param(f.g, "v", ir_shape1(2));
    int ax1 = 1;
    Node *m = tu_reduce(f.g, OP_REDUCE_MAX, w, 1, &ax1, false, &f.d);
    loss_out(&f, tu_sum_all(f.g, ir_binary(f.g, OP_MUL, m, v, TL, &f.d), &f.d));
    ck_assert(diff_simplify(&f));
    ck_assert_str_eq(tu_grad(f.g, "w"),
                     "mul(eq(w, reshape{[2,1]}(reduce_max{1}(w))), div(reshape{[2,1]}(v), "
                     "reduce_sum{1;keep}(eq(w, reshape{[2,1]}(reduce_max{1}(w))))))");
    ck_assert_str_eq(tu_grad(f.g, "v"), "reduce_max{1}(w)");
    fix_free(&f);
}
END_TEST

START_TEST(which_params)
{
    Fix f = fix_new();
    f.g->train.nfreeze = 1;
    const char *pat[1] = {"base.*"};
    f.g->train.freeze = pat;
    Node *x = input2(&f, "x", IR_DIM_N, 3);
    Node *w = tu_param(f.g, "head.w", ir_shape1(3));
    Node *fz = tu_param(f.g, "base.w", ir_shape1(3));
    Node *nt = ir_param(f.g, "c", DT_F64, ir_shape1(3), tu_zeros(), false, ROLE_WEIGHT, TL);
    Node *st = ir_param(f.g, "bn.mean", DT_F64, ir_shape1(3), tu_zeros(), true, ROLE_STATE, TL);
    Node *y = ir_binary(f.g, OP_MUL, x, w, TL, &f.d);
    y = ir_binary(f.g, OP_MUL, y, fz, TL, &f.d);
    y = ir_binary(f.g, OP_ADD, y, nt, TL, &f.d);
    y = ir_binary(f.g, OP_SUB, y, st, TL, &f.d);
    loss_out(&f, tu_sum_all(f.g, y, &f.d));
    ck_assert(ps_autodiff(f.g, NULL, 0, &f.d));
    int ngrad = 0;
    for (int i = 0; i < f.g->nouts; i++)
        ngrad += f.g->outs[i].kind == OUT_GRAD;
    ck_assert_int_eq(ngrad, 1);
    Output *o = tu_output(f.g, "grad.head.w");
    ck_assert_ptr_nonnull(o);
    ck_assert_ptr_eq(o->target, w);
    ck_assert_int_eq(f.d.n, 0);
    f.g->train.nfreeze = 0;
    fix_free(&f);
}
END_TEST

START_TEST(unused_param_zero)
{
    Fix f = fix_new();
    SrcLoc lu = {"t.mdl", 7, 3};
    Node *w = tu_param(f.g, "w", ir_shape1(3));
    ir_param(f.g, "unused", DT_F64, ir_shape2(2, 2), tu_zeros(), true, ROLE_WEIGHT, lu);
    loss_out(&f, tu_sum_all(f.g, w, &f.d));
    ck_assert(diff_simplify(&f));
    ck_assert_int_eq(f.d.nwarnings, 1);
    ck_assert_str_eq(tu_msg(&f.d, 0), "the loss does not depend on parameter 'unused'; its gradient is zero");
    ck_assert_int_eq(f.d.v[0].loc.line, 7);
    ck_assert_str_eq(tu_grad(f.g, "unused"), "broadcast{[2,2]}(0)");
    ck_assert_str_eq(tu_grad(f.g, "w"), "broadcast{[3]}(1)");
    fix_free(&f);
}
END_TEST

START_TEST(nondifferentiable_path)
{
    Fix f = fix_new();
    Node *x = input2(&f, "x", 2, 3);
    Node *w = tu_param(f.g, "w", ir_shape1(3));
    Attrs a = ir_attrs();
    a.naxes = 1;
    a.axes[0] = 1;
    Node *y = ir_binary(f.g, OP_MUL, x, w, TL, &f.d);
    Node *am = ir_op(f.g, OP_ARGMAX, &y, 1, &a, TL, &f.d);
    loss_out(&f, tu_sum_all(f.g, am, &f.d));
    ck_assert(ps_autodiff(f.g, NULL, 0, &f.d));
    ck_assert_str_eq(tu_msg(&f.d, 0),
                     "the loss depends on parameter 'w' only through non-differentiable ops; its gradient is zero");
    fix_free(&f);
}
END_TEST

START_TEST(wrt_inputs)
{
    Fix f = fix_new();
    Node *x = input2(&f, "x", IR_DIM_N, 3);
    ir_input(f.g, "labels", DT_I32, ir_shape1(IR_DIM_N), TL);
    Node *w = tu_param(f.g, "w", ir_shape1(3));
    loss_out(&f, tu_sum_all(f.g, ir_binary(f.g, OP_MUL, x, w, TL, &f.d), &f.d));
    const char *bad[1] = {"nope"};
    ck_assert(!ps_autodiff(f.g, bad, 1, &f.d));
    ck_assert_str_eq(tu_msg(&f.d, 0),
                     "cannot differentiate with respect to 'nope': model 't' has no input of that name");
    const char *lab[1] = {"labels"};
    ck_assert(!ps_autodiff(f.g, lab, 1, &f.d));
    ck_assert_str_eq(tu_msg(&f.d, 1), "cannot differentiate with respect to i32 input 'labels'");
    const char *ok[2] = {"x", "x"};
    ck_assert(ps_autodiff(f.g, ok, 2, &f.d));
    ck_assert(ps_simplify(f.g, &f.d));
    ck_assert_str_eq(tu_grad(f.g, "x"), "broadcast{[N,3]}(w)");
    ck_assert_str_eq(tu_grad(f.g, "w"), "reduce_sum{0}(x)");
    ck_assert_int_eq(f.g->nouts, 3);
    ck_assert(!ps_autodiff(f.g, NULL, 0, &f.d));
    ck_assert_str_eq(tu_msg(&f.d, 2), "model 't' already has gradients");
    fix_free(&f);
}
END_TEST

START_TEST(phase_needs_specialize)
{
    Fix f = fix_new();
    SrcLoc lp = {"t.mdl", 4, 9};
    Node *w = tu_param(f.g, "bn.gamma", ir_shape1(3));
    Node *in[2] = {w, ir_unary(f.g, OP_EXP, w, TL, &f.d)};
    Attrs a = ir_attrs();
    a.name = "bn";
    Node *p = ir_op(f.g, OP_PHASE, in, 2, &a, lp, &f.d);
    loss_out(&f, tu_sum_all(f.g, p, &f.d));
    ck_assert(!ps_autodiff(f.g, NULL, 0, &f.d));
    ck_assert_str_eq(tu_msg(&f.d, 0),
                     "phase node for 'bn' is still in the graph: run specialize before autodiff");
    ck_assert_int_eq(f.d.v[0].loc.line, 4);
    fix_free(&f);
}
END_TEST

START_TEST(max_pool_second_derivative)
{
    Fix f = fix_new();
    int64_t xd[4] = {1, 4, 4, 1}, yd[4] = {1, 2, 2, 1};
    Node *x = ir_input(f.g, "x", DT_F64, ir_shape(4, xd), TL);
    Node *dy = tu_param(f.g, "dy", ir_shape(4, yd));
    Attrs a = ir_attrs();
    a.window[0] = a.window[1] = a.stride[0] = a.stride[1] = 2;
    Node *in[2] = {x, dy};
    Node *g = ir_op(f.g, OP_MAX_POOL2D_GRAD, in, 2, &a, TL, &f.d);
    loss_out(&f, tu_sum_all(f.g, g, &f.d));
    ck_assert(!ps_autodiff(f.g, NULL, 0, &f.d));
    ck_assert_str_eq(tu_msg(&f.d, 0), "second derivative through max_pool2d is not supported");
    fix_free(&f);
}
END_TEST

/* Every gradient node carries the location of the forward node it came
 * from; the S0 conv model shows its 1/3 factor in the kernel gradient. */
START_TEST(locations_and_s0_factor)
{
    Fix f = fix_new();
    SrcLoc lc = {"t.mdl", 3, 7}, ld = {"t.mdl", 3, 20}, lt = {"t.mdl", 4, 5}, ll = {"t.mdl", 6, 1};
    int64_t xd[4] = {IR_DIM_N, 5, 5, 1}, kd[4] = {3, 3, 1, 2};
    Node *x = ir_input(f.g, "x", DT_F64, ir_shape(4, xd), TL);
    Node *k = tu_param(f.g, "k", ir_shape(4, kd));
    Attrs a = ir_attrs();
    a.pad[0] = a.pad[1] = a.pad[2] = a.pad[3] = 1;
    Node *in[2] = {x, k};
    Node *c = ir_op(f.g, OP_CONV2D, in, 2, &a, lc, &f.d);
    Node *s = ir_binary(f.g, OP_DIV, c, ir_const(f.g, DT_F64, 3, ld), ld, &f.d);
    Node *h = ir_unary(f.g, OP_TANH, s, lt, &f.d);
    int ax[4] = {0, 1, 2, 3};
    loss_out(&f, tu_reduce(f.g, OP_REDUCE_SUM, h, 4, ax, false, &f.d));
    f.g->outs[0].val->loc = ll;
    int nfwd = f.g->nnodes;
    ck_assert(ps_autodiff(f.g, NULL, 0, &f.d));
    for (int i = nfwd; i < f.g->nnodes; i++) {
        Node *n = f.g->nodes[i];
        if (n->op == OP_CONV2D_GRAD_KERNEL)
            ck_assert_int_eq(n->loc.col, lc.col);
        if (n->op == OP_SQUARE)
            ck_assert_int_eq(n->loc.line, lt.line);
        ck_assert(n->loc.line == 3 || n->loc.line == 4 || n->loc.line == 6);
    }
    ck_assert(ps_simplify(f.g, &f.d));
    ck_assert_str_eq(tu_grad(f.g, "k"),
                     "conv2d_grad_kernel{[3,3,1,2]}(x, mul(sub(1, square(tanh(mul(conv2d(x, k), "
                     "0.3333333333333333)))), 0.3333333333333333))");
    fix_free(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("autodiff");
    TCase *t = tcase_create("rules");
    tcase_add_test(t, no_loss);
    tcase_add_test(t, loss_not_scalar);
    tcase_add_test(t, matmul_flags);
    tcase_add_test(t, broadcast_operands_reduced);
    tcase_add_test(t, fan_out_sums);
    tcase_add_test(t, mean_over_batch);
    tcase_add_test(t, reduce_not_leading_axis);
    tcase_add_test(t, which_params);
    tcase_add_test(t, unused_param_zero);
    tcase_add_test(t, nondifferentiable_path);
    tcase_add_test(t, wrt_inputs);
    tcase_add_test(t, phase_needs_specialize);
    tcase_add_test(t, max_pool_second_derivative);
    tcase_add_test(t, locations_and_s0_factor);
    suite_add_tcase(s, t);
    return tu_run(s);
}
