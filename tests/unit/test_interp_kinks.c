/* The branch keys of the piecewise ops (backend/interp/kinks.c) that
 * gradcheck compares between w + eps and w - eps: for every OPF_KINK op,
 * values on the same pieces give equal keys and a change of piece is
 * found at the element where it happens, with broadcasting, reductions
 * with and without keepdims and pooling windows. */
#include <string.h>

#include "backend/interp/interp_impl.h"
#include "testutil.h"

static const SrcLoc L0 = {NULL, 1, 1};

typedef struct Case {
    Op op;
    int64_t xdims[4];
    int xrank;
    double x[6], same[6], moved[6]; /* moved changes the piece of element `at` */
    int64_t at;
    bool drop; /* reduce_max over axis 0 without keepdims */
} Case;

static Tensor *tensor(const Case *c, const double *v)
{
    Tensor *t = rt_tensor_new(DT_F64, c->xrank, c->xdims);
    for (int64_t i = 0; i < t->numel; i++)
        rt_set(t, i, v[i]);
    return t;
}

static Node *build(Graph *g, const Case *c, Diags *d)
{
    Node *x = ir_input(g, "x", DT_F64, ir_shape(c->xrank, c->xdims), L0);
    Attrs a = ir_attrs();
    switch (ir_ops[c->op].cls) {
    case OPC_UNARY:
        return ir_op(g, c->op, &x, 1, NULL, L0, d);
    case OPC_BINARY: { /* against 2.5, broadcast */
        Node *in[2] = {x, ir_input(g, "b", DT_F64, ir_shape1(1), L0)};
        return ir_op(g, c->op, in, 2, NULL, L0, d);
    }
    default:
        break;
    }
    if (c->op == OP_MAX_POOL2D) {
        a.window[0] = a.window[1] = 2;
        a.stride[0] = a.stride[1] = 2;
    } else {
        a.naxes = 1;
        a.axes[0] = c->drop ? 0 : 1;
        a.keepdims = c->op == OP_REDUCE_MAX && !c->drop;
    }
    return ir_op(g, c->op, &x, 1, &a, L0, d);
}

/* The first kink node and element whose key differs between x = a and
 * x = b, or -1. */
static int diff_keys(Graph *g, const Case *c, const double *a, const double *b, int64_t *elem)
{
    KinkKeys k[2];
    for (int s = 0; s < 2; s++) {
        TensorMap in, none;
        rt_map_init(&in);
        rt_map_init(&none);
        rt_map_put(&in, "x", tensor(c, s ? b : a));
        Tensor *bt = rt_tensor_new(DT_F64, 1, (const int64_t[]){1});
        rt_set(bt, 0, 2.5);
        if (ir_find_input(g, "b"))
            rt_map_put(&in, "b", bt);
        else
            rt_tensor_free(bt);
        Tensor **vals;
        Diags d;
        diags_init(&d);
        ck_assert_msg(be_interp_run_all(g, &none, &in, &(RunOpts){0, 0}, &vals, &d), "run failed");
        be_interp_kink_keys(g, vals, &k[s]);
        ck_assert_int_eq(k[s].n, 1);
        be_interp_free_values(g, vals);
        diags_free(&d);
        rt_map_free(&in);
        rt_map_free(&none);
    }
    int r = be_interp_kink_diff(&k[0], &k[1], elem);
    be_interp_kink_free(&k[0]);
    be_interp_kink_free(&k[1]);
    return r;
}

#define X3 .xdims = {3}, .xrank = 1
#define X23 .xdims = {2, 3}, .xrank = 2
/* unary: the sign; binary: the sign of x - 2.5; reductions over axis 1
 * (keepdims for reduce_max) unless drop */
static const Case cases[] = {
    {OP_RELU, X3, {-1, 0.5, 2}, {-0.9, 0.6, 2.1}, {-1, -0.5, 2}, 1},
    {OP_ABS, X3, {-1, 0.5, 2}, {-0.9, 0.6, 2.1}, {-1, 0.5, -2}, 2},
    {OP_SIGN, X3, {-1, 0.5, 2}, {-0.9, 0.6, 2.1}, {0, 0.5, 2}, 0},
    {OP_MAXIMUM, X3, {1, 2, 3}, {1.1, 2.1, 3.1}, {1, 2.6, 3}, 1},
    {OP_MINIMUM, X3, {1, 2, 3}, {1.1, 2.1, 3.1}, {1, 2, 2.4}, 2},
    {OP_GT, X3, {1, 2, 3}, {1.1, 2.1, 3.1}, {2.5, 2, 3}, 0},
    {OP_GE, X3, {1, 2, 3}, {1.1, 2.1, 3.1}, {1, 2.5, 3}, 1},
    {OP_LT, X3, {1, 2, 3}, {1.1, 2.1, 3.1}, {1, 2, 2}, 2},
    {OP_LE, X3, {1, 2, 3}, {1.1, 2.1, 3.1}, {2.7, 2, 3}, 0},
    {OP_EQ, X3, {1, 2, 3}, {1.1, 2.1, 3.1}, {1, 2, 2.5}, 2},
    /* keepdims; rows [1 3 2] [5 4 0]: in row 1, 4 overtakes 5 (element 3) */
    {OP_REDUCE_MAX, X23, {1, 3, 2, 5, 4, 0}, {1.1, 3.1, 2, 5, 4, 0.2}, {1, 3, 2, 5, 6, 0}, 3},
    /* columns [1 5] [3 4] [2 0]: in column 1, 3 overtakes 4 (element 1) */
    {OP_REDUCE_MAX, X23, {1, 3, 2, 5, 4, 0}, {1.1, 3.1, 2, 5, 4, 0.2}, {1, 4.5, 2, 5, 4, 0}, 1, .drop = true},
    /* the index per row: row 0's maximum moves */
    {OP_ARGMAX, X23, {1, 3, 2, 5, 4, 0}, {1.1, 3.1, 2, 5, 4, 0.2}, {1, 3, 4, 5, 4, 0}, 0},
    /* [1, 2, 3, 1] image 2x3, one window 2x2 (the last column is cut) */
    {OP_MAX_POOL2D, .xdims = {1, 2, 3, 1}, .xrank = 4, {1, 4, 2, 3, 0, 9}, {1.5, 4, 2, 3.5, 0, 8}, {1, 4, 2, 4.5, 0, 9}, 0},
};

START_TEST(branch_keys)
{
    const Case *c = &cases[_i];
    Graph *g = ir_graph_new("t");
    Diags d;
    diags_init(&d);
    Node *y = build(g, c, &d);
    ck_assert_msg(y, "%s: %s", ir_ops[c->op].name, d.n ? d.v[0].msg : "?");
    int64_t elem = -1;
    ck_assert_msg(diff_keys(g, c, c->x, c->same, &elem) < 0, "%s: the same pieces differ at %lld",
                  ir_ops[c->op].name, (long long)elem);
    ck_assert_msg(diff_keys(g, c, c->x, c->moved, &elem) == y->id, "%s: no change of piece found",
                  ir_ops[c->op].name);
    ck_assert_msg(elem == c->at, "%s: the change found at element %lld, expected %lld", ir_ops[c->op].name,
                  (long long)elem, (long long)c->at);
    diags_free(&d);
    ir_graph_free(g);
}
END_TEST

/* Every piecewise op of ops.def has a case above. */
START_TEST(every_kink_op_tested)
{
    for (int op = 0; op < OP_COUNT; op++) {
        if (!ir_op_has((Op)op, OPF_KINK))
            continue;
        bool found = false;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            found |= (int)cases[i].op == op;
        ck_assert_msg(found, "%s has OPF_KINK but no case in test_interp_kinks.c", ir_ops[op].name);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("interp_kinks");
    TCase *tc = tcase_create("kinks");
    tcase_add_loop_test(tc, branch_keys, 0, (int)(sizeof cases / sizeof cases[0]));
    tcase_add_test(tc, every_kink_op_tested);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
