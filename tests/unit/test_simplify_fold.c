/* Constant folding against the interpreter, for every elementwise op of
 * ir/ops.def on operand values that include the edges (zeros of both
 * signs, negatives, tiny and large magnitudes, overflow of exp,
 * infinities, NaN):
 *   - the scalar evaluator (be_interp_elem) gives, bit for bit, what the
 *     interpreter computes for the node, in f32 and in f64;
 *   - simplify folds a scalar node of constants exactly when the
 *     interpreter's value of the node in f64 is finite, and then to that
 *     value bit for bit; evaluating the folded graph gives it back
 *     (rounded to f32 in an f32 graph: constants hold exact doubles).
 * A new elementwise op is covered without touching this file. */
#include <math.h>
#include <string.h>

#include "backend/interp/interp.h"
#include "ir/ir.h"
#include "passes/passes.h"
#include "testutil.h"

static const SrcLoc TL = {"fold.mdl", 1, 1};

static const double values[] = {0.0,   -0.0,   1.0,     -1.0,    0.5,       -2.5,     3.0,
                                -20.0, 1e-310, 88.8,    710.0,   -745.5,    1e300,    -1e300,
                                INFINITY, -INFINITY, NAN};
#define NVALUES ((int)(sizeof values / sizeof values[0]))

/* select's conditions, and the values it picks from */
static const double conds[] = {0.0, -0.0, 1.0, -2.0, INFINITY, NAN};
static const double picks[] = {-0.0, 2.5, -1e300, INFINITY, NAN};

typedef struct Case {
    Op op;
    DType from; /* a cast's operand dtype */
    double alpha; /* elu */
    int nin;
    double x[3];
} Case;

static bool same_bits(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

static const char *describe(const Case *c, DType dt)
{
    static char buf[256];
    int n = snprintf(buf, sizeof buf, "%s %s(", ir_dtype_name(dt), ir_ops[c->op].name);
    for (int i = 0; i < c->nin; i++)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "%s%.17g", i ? ", " : "", c->x[i]);
    snprintf(buf + n, sizeof buf - (size_t)n, ")");
    return buf;
}

/* c as a graph whose only output is the node, of dtype dt; the operands
 * are constants of dtype dt (a cast's of `from`), returned in in[]. */
static Graph *build(const Case *c, DType dt, DType from, Node **in)
{
    Graph *g = ir_graph_new("fold");
    for (int i = 0; i < c->nin; i++)
        in[i] = ir_const(g, c->op == OP_CAST ? from : dt, c->x[i], TL);
    Attrs a = ir_attrs();
    if (c->op == OP_ELU)
        a.value = c->alpha;
    if (c->op == OP_CAST)
        a.to = dt;
    Diags d;
    diags_init(&d);
    Node *n = ir_op(g, c->op, in, c->nin, &a, TL, &d);
    ck_assert_msg(n != NULL, "%s: %s", describe(c, dt), d.n ? d.v[0].msg : "?");
    ir_add_output(g, OUT_VALUE, "v", n, NULL, false);
    diags_free(&d);
    return g;
}

/* The interpreter's value of g's only output. */
static double run(Graph *g)
{
    TensorMap none;
    rt_map_init(&none);
    Tensor *out = NULL;
    Diags d;
    diags_init(&d);
    ck_assert_msg(be_interp_run(g, &none, &none, NULL, &out, &d), "%s", d.n ? d.v[0].msg : "?");
    double v = rt_get(out, 0);
    rt_tensor_free(out);
    rt_map_free(&none);
    diags_free(&d);
    return v;
}

/* The scalar evaluator against the interpreter, in dtype dt. */
static void check_elem(const Case *c, DType dt)
{
    Node *in[3];
    Graph *g = build(c, dt, c->from, in);
    double x[3];
    for (int i = 0; i < c->nin; i++)
        x[i] = be_interp_round(in[i]->dt, c->x[i]);
    double got = be_interp_elem(c->op, dt, c->alpha, x), want = run(g);
    ck_assert_msg(same_bits(got, want), "%s: be_interp_elem gives %.17g, the interpreter %.17g", describe(c, dt),
                  got, want);
    ir_graph_free(g);
}

/* Folding a node of dtype dt; counts the folds. */
static void check_fold(const Case *c, DType dt, int *folded)
{
    Node *in[3];
    Graph *ref = build(c, DT_F64, DT_F64, in);
    double want = run(ref);
    ir_graph_free(ref);

    Graph *g = build(c, dt, c->from, in);
    Diags d;
    diags_init(&d);
    ck_assert(ps_simplify(g, &d));
    diags_free(&d);
    Node *r = g->outs[0].val;
    bool operand = false; /* (a folded constant equal to an operand is merged into it) */
    for (int i = 0; i < c->nin; i++)
        operand |= r == in[i];
    if (isfinite(want)) {
        ck_assert_msg(r->op == OP_CONST, "%s is not folded (the interpreter gives %.17g)",
                      describe(c, dt), want);
        ck_assert_msg(same_bits(r->a.value, want), "%s folds to %.17g, the interpreter gives %.17g",
                      describe(c, dt), r->a.value, want);
        double back = run(g);
        ck_assert_msg(same_bits(back, be_interp_round(dt, want)), "%s: the folded graph gives %.17g",
                      describe(c, dt), back);
        ++*folded;
    } else {
        ck_assert_msg(r->op != OP_CONST || operand, "%s folds to %.17g, the interpreter gives %.17g",
                      describe(c, dt), r->a.value, want);
    }
    ir_graph_free(g);
}

static void check(const Case *c, int *folded)
{
    static const DType dts[] = {DT_F32, DT_F64};
    for (int k = 0; k < 2; k++) {
        check_elem(c, dts[k]);
        check_fold(c, dts[k], folded);
    }
}

/* Every operand combination for op; the number of folds. */
static int check_op(Op op)
{
    Case c = {op, DT_F64, 1.0, ir_ops[op].arity, {0, 0, 0}};
    int folded = 0;
    if (op == OP_SELECT) {
        for (int i = 0; i < (int)(sizeof conds / sizeof conds[0]); i++)
            for (int j = 0; j < (int)(sizeof picks / sizeof picks[0]); j++)
                for (int k = 0; k < (int)(sizeof picks / sizeof picks[0]); k++) {
                    c.x[0] = conds[i], c.x[1] = picks[j], c.x[2] = picks[k];
                    check(&c, &folded);
                }
        return folded;
    }
    for (int i = 0; i < NVALUES; i++) {
        c.x[0] = values[i];
        if (c.nin == 1) {
            static const double alphas[] = {1.0, 0.3};
            static const DType froms[] = {DT_F64, DT_F32};
            for (int k = 0; k < 2; k++) {
                c.alpha = alphas[k];
                c.from = froms[k];
                check(&c, &folded);
            }
            continue;
        }
        for (int j = 0; j < NVALUES; j++) {
            c.x[1] = values[j];
            check(&c, &folded);
        }
    }
    return folded;
}

START_TEST(every_elementwise_op_folds_as_interpreted)
{
    int ops = 0;
    for (int op = 0; op < OP_COUNT; op++) {
        if (!ir_op_is_elementwise((Op)op))
            continue;
        ops++;
        ck_assert_msg(check_op((Op)op) > 0, "%s never folds", ir_ops[op].name);
    }
    ck_assert_int_gt(ops, 0);
}
END_TEST

/* The old evaluator's disagreements with the interpreter, now gone. */
START_TEST(edges_of_the_interpreter)
{
    Case max_nan = {OP_MAXIMUM, DT_F64, 1.0, 2, {NAN, 1.0, 0}};
    Case sign_nan = {OP_SIGN, DT_F64, 1.0, 1, {NAN, 0, 0}};
    int folded = 0;
    check(&max_nan, &folded);
    check(&sign_nan, &folded);
    ck_assert_int_eq(folded, 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("simplify_fold");
    TCase *t = tcase_create("fold");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, every_elementwise_op_folds_as_interpreted);
    tcase_add_test(t, edges_of_the_interpreter);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
