/* Random graphs through the fusion pass: a seeded generator builds
 * elementwise chains with broadcasting operands, values read many times,
 * casts, shape changes (reshape, transpose, reductions), matmuls and
 * intermediate outputs, in f32 or f64, some with special values (NaN,
 * infinities, signed zeros). For each graph the fused graph verifies, the
 * interpreter gives the same outputs for both graphs bit for bit, and the
 * JIT compiles both and matches the interpreter and itself; further
 * graphs are differentiated first. Over the whole run fusion must actually happen. */
#include "test_fuse_util.h"
#include "test_randgraph.h"

static SrcLoc TL = {"rand.mdl", 1, 1};

enum { GRAPHS = 40, GRAD_GRAPHS = 16, OPS = 14 };

static int fused_total, kernels_saved, gemm_epilogues, gemm_alphas, reductions;

static Node *gen_unary(Gen *g)
{
    return rg_unary(g, 0.7);
}

static Node *gen_binary(Gen *g)
{
    Op op = rg_binary_ops[pick(g, ARRAY_LEN(rg_binary_ops))];
    if (g->grads && ir_ops[op].flags & OPF_NOGRAD)
        op = OP_SUB;
    Node *x = any_val(g);
    int w = pick(g, 4);
    Node *y = w == 0 ? leaf(g) : w == 1 ? k(g, 0.5 + pick(g, 4)) : any_val(g);
    if (pick(g, 4) == 0) {
        Node *t = x;
        x = y;
        y = t;
    }
    if (op == OP_POW) {
        x = positive(g, x, 0.5);
        y = un(g, OP_TANH, y);
    }
    if (op == OP_DIV)
        y = positive(g, y, 0.5);
    return bin(g, op, x, y);
}

static Node *gen_select(Gen *g)
{
    Node *c = bin(g, OP_GT, any_val(g), any_val(g));
    Node *in[3] = {c, any_val(g), pick(g, 2) ? leaf(g) : any_val(g)};
    return chk(g, ir_op(g->g, OP_SELECT, in, 3, NULL, TL, &g->d));
}

/* f32 <-> f64 and back: a cast pair inside a chain */
static Node *gen_cast(Gen *g)
{
    Attrs a = ir_attrs();
    a.to = g->dt == DT_F32 ? DT_F64 : DT_F32;
    Node *c = op1(g, OP_CAST, any_val(g), &a);
    c = un(g, OP_NEG, c);
    a.to = g->dt;
    return op1(g, OP_CAST, c, &a);
}

/* [N,a,b] -> [N,a*b] -> elementwise -> [N,a,b] */
static Node *gen_reshape(Gen *g)
{
    Attrs a = ir_attrs();
    a.shape = ir_shape2(IR_DIM_N, g->base.d[1] * g->base.d[2]);
    Node *r = op1(g, OP_RESHAPE, full(g, any_val(g)), &a);
    r = un(g, pick(g, 2) ? OP_TANH : OP_RELU, r);
    a.shape = g->base;
    return op1(g, OP_RESHAPE, r, &a);
}

static Node *gen_transpose(Gen *g)
{
    Attrs a, back;
    rg_perm3(g, &a, &back);
    Node *t = bin(g, OP_MUL, op1(g, OP_TRANSPOSE, full(g, any_val(g)), &a), k(g, 1.5));
    return op1(g, OP_TRANSPOSE, un(g, OP_ABS, t), &back);
}

/* a reduction with keepdims: a smaller value that later ops broadcast */
static Node *gen_reduce(Gen *g)
{
    static const Op ops[] = {OP_REDUCE_SUM, OP_REDUCE_MEAN, OP_REDUCE_MAX};
    Node *x = full(g, any_val(g));
    Attrs a = ir_attrs();
    for (int i = 0; i < 3; i++)
        if (pick(g, 2))
            a.axes[a.naxes++] = i;
    if (!a.naxes)
        a.axes[a.naxes++] = 2;
    a.keepdims = true;
    return op1(g, ops[pick(g, 3)], x, &a);
}

/* An epilogue the GEMM producing y may fuse with: a bias and an
 * activation, a scale by a constant (folded into alpha), or nothing. */
static Node *epilogue(Gen *g, Node *y)
{
    switch (pick(g, 4)) {
    case 0: {
        char name[16];
        snprintf(name, sizeof name, "b%d", g->nleaves++);
        Node *b = ir_param(g->g, name, g->dt, ir_shape1(y->shape.d[1]), (Init){INIT_ZEROS, 0, 0}, true,
                           ROLE_WEIGHT, TL);
        return un(g, pick(g, 2) ? OP_RELU : OP_TANH, bin(g, OP_ADD, y, b));
    }
    case 1:
        return un(g, OP_TANH, bin(g, pick(g, 2) ? OP_MUL : OP_DIV, y, k(g, 3)));
    case 2:
        return bin(g, OP_MUL, k(g, -0.5), y);
    default:
        return y;
    }
}

/* [N,a,b] -> [N,K] @ W[K,K] (+ epilogue) -> [N,a,b] */
static Node *gen_matmul(Gen *g)
{
    int64_t kk = g->base.d[1] * g->base.d[2];
    Attrs a = ir_attrs();
    a.shape = ir_shape2(IR_DIM_N, kk);
    Node *x = op1(g, OP_RESHAPE, full(g, any_val(g)), &a);
    char name[16];
    snprintf(name, sizeof name, "w%d", g->nleaves++);
    Node *w = ir_param(g->g, name, g->dt, ir_shape2(kk, kk), (Init){INIT_ZEROS, 0, 0}, true, ROLE_WEIGHT, TL);
    Node *y = epilogue(g, bin(g, OP_MATMUL, x, w));
    a.shape = g->base;
    return op1(g, OP_RESHAPE, y, &a);
}

static Node *gen_op(Gen *g)
{
    int r = pick(g, 26);
    if (r < 8)
        return gen_unary(g);
    if (r < 16)
        return gen_binary(g);
    switch (r) {
    case 16:
    case 17:
        return gen_select(g);
    case 18:
        return g->grads ? gen_unary(g) : gen_cast(g);
    case 19:
        return gen_reshape(g);
    case 20:
        return gen_transpose(g);
    case 21:
    case 22:
        return gen_reduce(g);
    default:
        return gen_matmul(g);
    }
}

static void output(Gen *g, Node *v)
{
    char name[16];
    snprintf(name, sizeof name, "y%d", g->nouts++);
    ir_add_output(g->g, g->grads ? OUT_METRIC : OUT_VALUE, name, v, NULL, false);
}

/* Scalar loss from a value (for differentiated graphs). */
static Node *total(Gen *g, Node *v)
{
    Node *p = bin(g, OP_MUL, v, leaf(g));
    Attrs a = ir_attrs();
    for (int i = 0; i < p->shape.rank; i++)
        a.axes[a.naxes++] = i;
    return p->shape.rank ? op1(g, OP_REDUCE_SUM, p, &a) : p;
}

static Graph *gen_graph(int seed, bool grads)
{
    Gen g;
    char name[32];
    snprintf(name, sizeof name, "rand%d", seed);
    rg_init(&g, 0x9E3779B97F4A7C15ull * (uint64_t)(seed + 17), seed % 2 ? DT_F32 : DT_F64, grads, 6, 3,
            48, TL, name);
    int64_t d[3] = {IR_DIM_N, 1 + pick(&g, 4), 1 + pick(&g, 5)};
    g.base = ir_shape(3, d);
    push(&g, ir_input(g.g, "x", g.dt, g.base, TL)); /* binds N */
    for (int i = 0; i < 2; i++)
        push(&g, leaf(&g));
    for (int i = 0; i < OPS; i++) {
        push(&g, gen_op(&g));
        if (pick(&g, 6) == 0)
            output(&g, g.vals[g.nvals - 1]);
    }
    output(&g, bin(&g, OP_ADD, g.vals[g.nvals - 1], g.vals[0])); /* reads x */
    if (grads) {
        Node *loss = NULL;
        for (int i = 0; i < g.g->nouts; i++) {
            Node *t = total(&g, g.g->outs[i].val);
            loss = loss ? bin(&g, OP_ADD, loss, t) : t;
        }
        ir_add_output(g.g, OUT_LOSS, "loss", loss, NULL, false);
        bool ok = ps_autodiff(g.g, NULL, 0, &g.d) && ps_simplify(g.g, &g.d);
        if (!ok)
            diags_print(&g.d, stderr);
        ck_assert(ok);
    }
    ck_assert_int_eq(g.d.nerrors, 0);
    ck_assert(ir_verify(g.g, &g.d));
    diags_free(&g.d);
    return g.g;
}

static void check_random(int seed, bool grads)
{
    Graph *g = gen_graph(seed, grads);
    Graph *f = tf_fused(g);
    fused_total += tf_count_op(f, OP_FUSED);
    for (int i = 0; i < f->nnodes; i++) {
        const Node *an = ir_fused_anchor(f->nodes[i]);
        gemm_epilogues += an != NULL;
        gemm_alphas += an && an->a.alpha != 1;
        reductions += ir_fused_reduction(f->nodes[i]) != NULL;
    }
    kernels_saved += tf_kernels(g) - tf_kernels(f);
    ck_assert_int_le(tf_kernels(f), tf_kernels(g));
    bool f32 = g->outs[0].val->dt == DT_F32;
    TfCheck c = {seed % 4 == 3 ? 2 : 0, seed % 4 != 3, f32 ? 1e-4 : 1e-10, 0, 1 + seed % 3,
                 (uint64_t)seed, seed % 5 == 0};
    char what[64];
    snprintf(what, sizeof what, "random graph %d%s", seed, grads ? " (gradients)" : "");
    tf_check(what, g, f, &c);
    ir_graph_free(g);
    ir_graph_free(f);
}

START_TEST(random_forward)
{
    check_random(_i, false);
}
END_TEST

START_TEST(random_gradients)
{
    check_random(1000 + _i, true);
}
END_TEST

/* Runs after the loops (Check keeps the order in one process). */
START_TEST(fusion_happened)
{
    printf("random graphs: %d fused nodes (%d GEMM epilogues, %d with a folded scale, %d reductions), "
           "%d kernels fewer\n",
           fused_total, gemm_epilogues, gemm_alphas, reductions, kernels_saved);
    ck_assert_int_ge(reductions, 20);
    ck_assert_int_ge(gemm_epilogues, 20);
    ck_assert_int_ge(gemm_alphas, 10);
    ck_assert_int_ge(fused_total, GRAPHS + GRAD_GRAPHS);
    ck_assert_int_ge(kernels_saved, 2 * (GRAPHS + GRAD_GRAPHS));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fuse_random");
    TCase *t = tcase_create("random");
    tcase_set_timeout(t, 900);
    tcase_add_loop_test(t, random_forward, 0, GRAPHS);
    tcase_add_loop_test(t, random_gradients, 0, GRAD_GRAPHS);
    tcase_add_test(t, fusion_happened);
    suite_add_tcase(s, t);
    return tu_run(s);
}
