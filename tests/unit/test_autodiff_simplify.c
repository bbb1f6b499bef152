/* The simplify pass: constant folding, identities, negation folding,
 * reciprocal of constant divisors, shape no-ops, CSE, DCE, and that
 * outputs, labels and types survive the rewrites. */
#include <stdlib.h>

#include "test_autodiff_util.h"
#include "testutil.h"

typedef struct Env {
    Graph *g;
    Diags d;
    Node *x, *y, *s;
} Env;

static Env env_new(void)
{
    Env e;
    e.g = ir_graph_new("t");
    diags_init(&e.d);
    e.x = ir_input(e.g, "x", DT_F32, ir_shape2(IR_DIM_N, 3), TL);
    e.y = ir_input(e.g, "y", DT_F32, ir_shape2(IR_DIM_N, 3), TL);
    e.s = ir_input(e.g, "s", DT_F32, ir_shape0(), TL);
    return e;
}

static void env_free(Env *e)
{
    diags_free(&e->d);
    ir_graph_free(e->g);
}

static Node *C(Env *e, double v)
{
    return ir_const(e->g, DT_F32, v, TL);
}

static Node *B(Env *e, Op op, Node *a, Node *b)
{
    return ir_binary(e->g, op, a, b, TL, &e->d);
}

static Node *U(Env *e, Op op, Node *a)
{
    return ir_unary(e->g, op, a, TL, &e->d);
}

/* Simplify a graph whose only output is v; return the rendering. */
static const char *simp(Env *e, Node *v)
{
    ir_add_output(e->g, OUT_VALUE, "v", v, NULL, false);
    ck_assert(ps_simplify(e->g, &e->d));
    Node *r = tu_output(e->g, "v")->val;
    ck_assert_int_eq(r->dt, v->dt);
    ck_assert(ir_shape_eq(&r->shape, &v->shape));
    return tu_expr(r);
}

#define SIMP_CASE(name, expr, want)                                                                \
    START_TEST(name)                                                                               \
    {                                                                                              \
        Env e = env_new();                                                                         \
        ck_assert_str_eq(simp(&e, (expr)), want);                                                  \
        env_free(&e);                                                                              \
    }                                                                                              \
    END_TEST

SIMP_CASE(fold_scalars, B(&e, OP_MUL, B(&e, OP_ADD, C(&e, 2), C(&e, 3)), U(&e, OP_EXP, C(&e, 0))), "5")
SIMP_CASE(fold_keeps_division_by_zero, B(&e, OP_DIV, C(&e, 1), C(&e, 0)), "div(1, 0)")
SIMP_CASE(fold_exact_double, B(&e, OP_DIV, C(&e, 1), C(&e, 3)), "0.3333333333333333")
SIMP_CASE(mul_one, B(&e, OP_MUL, C(&e, 1), B(&e, OP_MUL, e.x, C(&e, 1))), "x")
SIMP_CASE(add_zero, B(&e, OP_ADD, C(&e, 0), B(&e, OP_SUB, B(&e, OP_ADD, e.x, C(&e, 0)), C(&e, 0))), "x")
SIMP_CASE(zero_minus, B(&e, OP_SUB, C(&e, 0), e.x), "neg(x)")
SIMP_CASE(div_one, B(&e, OP_DIV, e.x, C(&e, 1)), "x")
SIMP_CASE(div_const_is_mul, B(&e, OP_DIV, e.x, C(&e, 4)), "mul(x, 0.25)")
SIMP_CASE(div_three, U(&e, OP_TANH, B(&e, OP_DIV, e.x, C(&e, 3))), "tanh(mul(x, 0.3333333333333333))")
SIMP_CASE(const_factors_meet, B(&e, OP_MUL, C(&e, 0.5), B(&e, OP_MUL, e.x, C(&e, 2))), "x")
SIMP_CASE(const_factor_hoisted, B(&e, OP_MUL, B(&e, OP_MUL, e.x, C(&e, 2)), U(&e, OP_EXP, e.y)),
          "mul(mul(x, exp(y)), 2)")
SIMP_CASE(times_zero_kept, B(&e, OP_MUL, e.x, C(&e, 0)), "mul(x, 0)")
SIMP_CASE(double_neg, U(&e, OP_NEG, U(&e, OP_NEG, e.x)), "x")
SIMP_CASE(add_neg, B(&e, OP_ADD, e.x, U(&e, OP_NEG, e.y)), "sub(x, y)")
SIMP_CASE(neg_add, B(&e, OP_ADD, U(&e, OP_NEG, e.x), e.y), "sub(y, x)")
SIMP_CASE(sub_neg, B(&e, OP_SUB, e.x, U(&e, OP_NEG, e.y)), "add(x, y)")
SIMP_CASE(neg_sub, U(&e, OP_NEG, B(&e, OP_SUB, e.x, e.y)), "sub(y, x)")
SIMP_CASE(neg_into_const, U(&e, OP_NEG, B(&e, OP_MUL, e.x, C(&e, 0.5))), "mul(x, -0.5)")
SIMP_CASE(pow_small, B(&e, OP_ADD, B(&e, OP_POW, e.x, C(&e, 2)), B(&e, OP_POW, e.y, C(&e, 1))),
          "add(square(x), y)")
SIMP_CASE(scale_over_divisor, B(&e, OP_MUL, B(&e, OP_DIV, C(&e, 1), e.s), C(&e, 4)), "div(4, s)")
SIMP_CASE(factor_joins_scalar_quotient,
          B(&e, OP_MUL, B(&e, OP_MUL, B(&e, OP_DIV, C(&e, 0.5), e.s), e.x), C(&e, 4)),
          "mul(div(2, s), x)")
SIMP_CASE(times_reciprocal, B(&e, OP_MUL, e.x, B(&e, OP_DIV, C(&e, 1), e.y)), "div(x, y)")

/* (x * 2) * y stays when x * 2 has another user: hoisting would add a node */
START_TEST(shared_factor_not_hoisted)
{
    Env e = env_new();
    Node *x2 = B(&e, OP_MUL, e.x, C(&e, 2));
    Node *v = B(&e, OP_ADD, B(&e, OP_MUL, x2, e.y), U(&e, OP_EXP, x2));
    ck_assert_str_eq(simp(&e, v), "add(mul(mul(x, 2), y), exp(mul(x, 2)))");
    ck_assert_int_eq(tu_count_op(e.g, OP_MUL), 2);
    env_free(&e);
}
END_TEST

START_TEST(select_const_cond)
{
    Env e = env_new();
    Node *in[3] = {B(&e, OP_GT, C(&e, 2), C(&e, 1)), e.x, e.y};
    ck_assert_str_eq(simp(&e, ir_op(e.g, OP_SELECT, in, 3, NULL, TL, &e.d)), "x");
    env_free(&e);
}
END_TEST

START_TEST(shape_noops)
{
    Env e = env_new();
    Attrs a = ir_attrs();
    a.shape = e.x->shape;
    Node *b = ir_op(e.g, OP_BROADCAST, &e.x, 1, &a, TL, &e.d);
    Attrs r1 = ir_attrs(), r2 = ir_attrs();
    int64_t d1[3] = {IR_DIM_N, 3, 1};
    r1.shape = ir_shape(3, d1);
    r2.shape = e.x->shape;
    Node *r = ir_op(e.g, OP_RESHAPE, &b, 1, &r1, TL, &e.d);
    r = ir_op(e.g, OP_RESHAPE, &r, 1, &r2, TL, &e.d);
    Attrs t = ir_attrs();
    t.naxes = 2;
    t.axes[0] = 1;
    t.axes[1] = 0;
    Node *tr = ir_op(e.g, OP_TRANSPOSE, &r, 1, &t, TL, &e.d);
    tr = ir_op(e.g, OP_TRANSPOSE, &tr, 1, &t, TL, &e.d);
    ck_assert_str_eq(simp(&e, U(&e, OP_EXP, tr)), "exp(x)");
    env_free(&e);
}
END_TEST

START_TEST(broadcast_of_scalar_dropped)
{
    Env e = env_new();
    Attrs a = ir_attrs();
    a.shape = e.x->shape;
    Node *c = C(&e, 2);
    Node *b = ir_op(e.g, OP_BROADCAST, &c, 1, &a, TL, &e.d);
    ck_assert_str_eq(simp(&e, B(&e, OP_ADD, e.x, b)), "add(x, 2)");
    env_free(&e);
}
END_TEST

START_TEST(broadcast_hoisted)
{
    Env e = env_new();
    Attrs a = ir_attrs();
    a.shape = e.x->shape;
    Node *b = ir_op(e.g, OP_BROADCAST, &e.s, 1, &a, TL, &e.d);
    Node *w = ir_input(e.g, "w", DT_F32, ir_shape1(3), TL);
    ck_assert_str_eq(simp(&e, B(&e, OP_MUL, b, w)), "broadcast{[N,3]}(mul(s, w))");
    env_free(&e);
}
END_TEST

START_TEST(cse_and_dce)
{
    Env e = env_new();
    Node *a = U(&e, OP_EXP, e.x), *b = U(&e, OP_EXP, e.x);
    U(&e, OP_LOG, e.y); /* dead */
    const char *r = simp(&e, B(&e, OP_MUL, B(&e, OP_ADD, a, C(&e, 1)), B(&e, OP_ADD, b, C(&e, 1))));
    ck_assert_str_eq(r, "mul(add(exp(x), 1), add(exp(x), 1))");
    /* x, y, s, exp, const, add, mul */
    ck_assert_int_eq(e.g->nnodes, 7);
    ck_assert_int_eq(tu_count_op(e.g, OP_EXP), 1);
    ck_assert_int_eq(tu_count_op(e.g, OP_LOG), 0);
    env_free(&e);
}
END_TEST

START_TEST(labels_and_locations_kept)
{
    Env e = env_new();
    SrcLoc l = {"t.mdl", 9, 4};
    Node *h = ir_binary(e.g, OP_DIV, e.x, C(&e, 8), l, &e.d);
    h->label = "h";
    ck_assert_str_eq(simp(&e, h), "mul(x, 0.125)");
    Node *m = tu_output(e.g, "v")->val;
    ck_assert_str_eq(m->label, "h");
    ck_assert_int_eq(m->loc.line, 9);
    ck_assert_int_eq(m->loc.col, 4);
    env_free(&e);
}
END_TEST

START_TEST(fixed_point)
{
    Env e = env_new();
    Node *v = B(&e, OP_MUL, U(&e, OP_NEG, B(&e, OP_DIV, e.x, C(&e, 2))), U(&e, OP_NEG, e.y));
    ck_assert_str_eq(simp(&e, v), "mul(mul(x, y), 0.5)");
    int n = e.g->nnodes;
    char *before = xstrdup(tu_expr(tu_output(e.g, "v")->val));
    ck_assert(ps_simplify(e.g, &e.d));
    ck_assert_int_eq(e.g->nnodes, n);
    ck_assert_str_eq(tu_expr(tu_output(e.g, "v")->val), before);
    free(before);
    env_free(&e);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("simplify");
    TCase *t = tcase_create("rules");
    tcase_add_test(t, fold_scalars);
    tcase_add_test(t, fold_keeps_division_by_zero);
    tcase_add_test(t, fold_exact_double);
    tcase_add_test(t, mul_one);
    tcase_add_test(t, add_zero);
    tcase_add_test(t, zero_minus);
    tcase_add_test(t, div_one);
    tcase_add_test(t, div_const_is_mul);
    tcase_add_test(t, div_three);
    tcase_add_test(t, const_factors_meet);
    tcase_add_test(t, const_factor_hoisted);
    tcase_add_test(t, times_zero_kept);
    tcase_add_test(t, double_neg);
    tcase_add_test(t, add_neg);
    tcase_add_test(t, neg_add);
    tcase_add_test(t, sub_neg);
    tcase_add_test(t, neg_sub);
    tcase_add_test(t, neg_into_const);
    tcase_add_test(t, pow_small);
    tcase_add_test(t, scale_over_divisor);
    tcase_add_test(t, factor_joins_scalar_quotient);
    tcase_add_test(t, times_reciprocal);
    tcase_add_test(t, shared_factor_not_hoisted);
    tcase_add_test(t, select_const_cond);
    tcase_add_test(t, shape_noops);
    tcase_add_test(t, broadcast_of_scalar_dropped);
    tcase_add_test(t, broadcast_hoisted);
    tcase_add_test(t, cse_and_dce);
    tcase_add_test(t, labels_and_locations_kept);
    tcase_add_test(t, fixed_point);
    suite_add_tcase(s, t);
    return tu_run(s);
}
