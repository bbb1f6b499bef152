/* Random well-typed graphs, JIT against the reference interpreter: a
 * seeded generator builds chains of elementwise, broadcasting, reduction,
 * matmul, slicing, concat, transpose, softmax, argmax/one_hot, dropout
 * and fused (elementwise body) ops. Several independent graphs share one module (one output each) to
 * keep compile time modest (fast instruction selection, every third
 * module unoptimised); further modules are differentiated and their
 * gradients compared. */
#include "test_randgraph.h"

#include "passes/passes.h"

static SrcLoc TL = {"r.mdl", 1, 1};

enum { GRAPHS_PER_MODULE = 8, MODULES = 30, OPS_PER_GRAPH = 7 };

static Node *gen_unary(Gen *g)
{
    return rg_unary(g, 0.5);
}

static Node *gen_binary(Gen *g)
{
    Op op = rg_binary_ops[pick(g, ARRAY_LEN(rg_binary_ops))];
    if (g->grads && ir_ops[op].flags & OPF_NOGRAD)
        op = OP_MUL;
    Node *x = any_val(g), *y = pick(g, 3) ? any_val(g) : leaf(g);
    if (op == OP_POW) {
        x = positive(g, x, 0.5);
        y = un(g, OP_TANH, y);
    }
    if (op == OP_DIV)
        y = positive(g, y, 0.25);
    return bin(g, op, x, y);
}

static Node *gen_select(Gen *g)
{
    Node *c = ir_binary(g->g, OP_GT, any_val(g), any_val(g), TL, &g->d);
    Node *in[3] = {c, any_val(g), leaf(g)};
    return ir_op(g->g, OP_SELECT, in, 3, NULL, TL, &g->d);
}

/* reduce over some axes with keepdims (or without, then reshaped back) */
static Node *gen_reduce(Gen *g)
{
    static const Op ops[] = {OP_REDUCE_SUM, OP_REDUCE_MEAN, OP_REDUCE_MAX};
    Node *x = full(g, any_val(g));
    Attrs a = ir_attrs();
    for (int k = 0; k < x->shape.rank; k++)
        if (pick(g, 2))
            a.axes[a.naxes++] = k;
    if (!a.naxes)
        a.axes[a.naxes++] = x->shape.rank - 1;
    a.keepdims = pick(g, 2);
    Node *r = op1(g, ops[pick(g, 3)], x, &a);
    if (a.keepdims)
        return r;
    Shape s = x->shape;
    for (int i = 0; i < a.naxes; i++)
        s.d[a.axes[i]] = 1;
    return reshape(g, r, s);
}

/* [N,a,b] -> [N,K] @ W[K,K] -> [N,a,b], in one of three layouts */
static Node *gen_matmul(Gen *g)
{
    Node *x = full(g, any_val(g));
    int64_t K = g->base.d[1] * g->base.d[2];
    Node *x2 = reshape(g, x, ir_shape2(IR_DIM_N, K));
    char name[32];
    snprintf(name, sizeof name, "w%d", g->nleaves++);
    Node *w = ir_param(g->g, name, g->dt, ir_shape2(K, K), (Init){INIT_ZEROS, 0, 0}, true, ROLE_WEIGHT, TL);
    Attrs a = ir_attrs();
    Node *y;
    switch (pick(g, 4)) {
    case 0:
        y = op2(g, OP_MATMUL, x2, w, &a);
        break;
    case 1:
        a.tb = true;
        y = op2(g, OP_MATMUL, x2, w, &a);
        break;
    case 2: { /* (W x^T)^T */
        a.tb = true;
        Attrs t = ir_attrs();
        t.naxes = 2;
        t.axes[0] = 1;
        t.axes[1] = 0;
        y = op1(g, OP_TRANSPOSE, op2(g, OP_MATMUL, w, x2, &a), &t);
        break;
    }
    default: { /* column sums of x^T x: contracts over N */
        a.ta = true;
        Node *xtx = op2(g, OP_MATMUL, x2, x2, &a);
        Attrs r = ir_attrs();
        r.naxes = 1;
        r.keepdims = true;
        int64_t d[3] = {1, g->base.d[1], g->base.d[2]};
        return reshape(g, op1(g, OP_REDUCE_SUM, xtx, &r), ir_shape(3, d));
    }
    }
    return reshape(g, y, g->base);
}

/* two slices along an axis, glued back by concat (or scattered back by
 * slice_grad) */
static Node *gen_slices(Gen *g)
{
    Node *x = full(g, any_val(g));
    int ax = 1 + pick(g, 2);
    int64_t dim = x->shape.d[ax];
    if (dim < 2)
        return x;
    int64_t cut = 1 + pick(g, (int)dim - 1);
    Attrs a = ir_attrs(), b = ir_attrs();
    for (int k = 0; k < x->shape.rank; k++)
        a.end[k] = b.end[k] = INT64_MAX;
    a.end[ax] = cut;
    b.begin[ax] = cut;
    if (pick(g, 2)) {
        Node *in[2] = {op1(g, OP_SLICE, x, &a), ir_unary(g->g, OP_NEG, op1(g, OP_SLICE, x, &b), TL, &g->d)};
        Attrs c = ir_attrs();
        c.axes[0] = ax;
        return ir_op(g->g, OP_CONCAT, in, 2, &c, TL, &g->d);
    }
    b.step[ax] = 2;
    b.step[3 - ax] = 1 + pick(g, 2);
    b.shape = x->shape;
    return op1(g, OP_SLICE_GRAD, op1(g, OP_SLICE, x, &b), &b);
}

static Node *gen_transpose(Gen *g)
{
    Node *x = full(g, any_val(g));
    Attrs a, back;
    rg_perm3(g, &a, &back);
    Node *t = ir_unary(g->g, OP_SQUARE, op1(g, OP_TRANSPOSE, x, &a), TL, &g->d);
    return op1(g, OP_TRANSPOSE, t, &back);
}

static Node *gen_softmax(Gen *g)
{
    Attrs a = ir_attrs();
    a.axes[0] = pick(g, 3);
    return op1(g, pick(g, 2) ? OP_SOFTMAX : OP_LOG_SOFTMAX, full(g, any_val(g)), &a);
}

/* one_hot(argmax(x, last axis)) * y */
static Node *gen_argmax(Gen *g)
{
    Attrs a = ir_attrs();
    a.naxes = 1;
    a.axes[0] = 2;
    Node *am = op1(g, OP_ARGMAX, full(g, any_val(g)), &a);
    Attrs o = ir_attrs();
    o.depth = (int)g->base.d[2];
    o.to = g->dt;
    return ir_binary(g->g, OP_MUL, op1(g, OP_ONE_HOT, am, &o), any_val(g), TL, &g->d);
}

static Node *gen_dropout(Gen *g)
{
    Attrs a = ir_attrs();
    a.value = 0.25;
    a.stream = (uint32_t)g->nleaves;
    Node *x = any_val(g);
    return ir_binary(g->g, OP_MUL, x, op1(g, OP_DROPOUT_MASK, x, &a), TL, &g->d);
}

/* A fused node over 1-3 operands whose body is a random chain of
 * elementwise ops with broadcasting and scalar constants. */
static Node *gen_fused(Gen *g)
{
    Graph *body = ir_graph_new("fused");
    Node *ops[3], *vals[12];
    int nin = 1 + pick(g, 3), nv = 0;
    for (int i = 0; i < nin; i++) {
        ops[i] = any_val(g);
        char name[16];
        snprintf(name, sizeof name, "%d", i);
        vals[nv++] = ir_input(body, name, g->dt, ops[i]->shape, TL);
    }
    for (int k = 1 + pick(g, 4); k > 0; k--) {
        Node *x = vals[nv - 1 - pick(g, nv < 3 ? nv : 3)], *y = vals[pick(g, nv)], *v;
        switch (pick(g, 5)) {
        case 0:
            v = ir_unary(body, rg_unary_ops[pick(g, 4)], ir_unary(body, OP_TANH, x, TL, &g->d), TL, &g->d);
            break;
        case 1:
            v = ir_binary(body, rg_binary_ops[pick(g, 3)], x, y, TL, &g->d);
            break;
        case 2:
            v = ir_binary(body, rg_binary_ops[5 + pick(g, 7)], x, ir_const(body, g->dt, 0.25, TL), TL, &g->d);
            break;
        case 3: {
            Node *in[3] = {ir_binary(body, OP_GE, x, y, TL, &g->d), y, x};
            v = ir_op(body, OP_SELECT, in, 3, NULL, TL, &g->d);
            break;
        }
        default:
            v = ir_unary(body, OP_SIGMOID, ir_binary(body, OP_MUL, x, y, TL, &g->d), TL, &g->d);
            break;
        }
        MC_ASSERT(v != NULL && nv < ARRAY_LEN(vals));
        vals[nv++] = v;
    }
    ir_add_output(body, OUT_VALUE, NULL, vals[nv - 1], NULL, false);
    Node *n = arena_alloc(g->g->arena, sizeof(Node));
    n->op = OP_FUSED;
    n->nin = nin;
    n->in = arena_alloc(g->g->arena, (size_t)nin * sizeof(Node *));
    memcpy(n->in, ops, (size_t)nin * sizeof(Node *));
    n->a = ir_attrs();
    n->sub = body;
    n->loc = TL;
    n->loc.file = ir_intern_file(g->g, TL.file);
    ck_assert(ir_infer(n, &g->d));
    n->id = g->g->nnodes;
    VEC_PUSH(g->g->nodes, g->g->nnodes, g->g->cap, n);
    return n;
}

static Node *gen_op(Gen *g)
{
    if (!g->grads && pick(g, 8) == 0)
        return gen_fused(g);
    int k = pick(g, 20);
    if (k < 5)
        return gen_unary(g);
    if (k < 10)
        return gen_binary(g);
    switch (k) {
    case 10:
        return gen_select(g);
    case 11:
    case 12:
        return gen_reduce(g);
    case 13:
    case 14:
        return gen_matmul(g);
    case 15:
        return gen_slices(g);
    case 16:
        return gen_transpose(g);
    case 17:
        return gen_softmax(g);
    case 18:
        return g->grads ? gen_softmax(g) : gen_argmax(g);
    default:
        return gen_dropout(g);
    }
}

/* One random graph: leaves, then ops; its last value is an output. */
static void gen_graph(Gen *g, int index)
{
    int64_t d[3] = {IR_DIM_N, 1 + pick(g, 4), 1 + pick(g, 5)};
    g->base = ir_shape(3, d);
    g->nvals = 0;
    for (int i = 0; i < 2; i++)
        push(g, leaf(g));
    for (int i = 0; i < OPS_PER_GRAPH; i++)
        push(g, gen_op(g));
    char name[32];
    snprintf(name, sizeof name, "y%d", index);
    Node *y = g->vals[g->nvals - 1];
    if (g->grads) {
        Node *p = ir_binary(g->g, OP_MUL, y, leaf(g), TL, &g->d);
        Attrs a = ir_attrs();
        for (int k = 0; k < p->shape.rank; k++)
            a.axes[a.naxes++] = k;
        y = op1(g, OP_REDUCE_SUM, p, &a);
    }
    ir_add_output(g->g, g->grads ? OUT_METRIC : OUT_VALUE, name, y, NULL, false);
}

/* loss = sum of the graphs' scalars; then autodiff + simplify */
static void differentiate(Gen *g)
{
    Node *loss = NULL;
    for (int i = 0; i < g->g->nouts; i++)
        loss = loss ? ir_binary(g->g, OP_ADD, loss, g->g->outs[i].val, TL, &g->d) : g->g->outs[i].val;
    ir_add_output(g->g, OUT_LOSS, "loss", loss, NULL, false);
    if (!ps_autodiff(g->g, NULL, 0, &g->d) || !ps_simplify(g->g, &g->d)) {
        diags_print(&g->d, stderr);
        ir_print(g->g, stderr);
    }
    ck_assert_int_eq(g->d.nerrors, 0);
}

static void run_module(int seed, bool grads)
{
    Gen g;
    char name[32];
    snprintf(name, sizeof name, "random%d", seed);
    rg_init(&g, 0x2545F4914F6CDD1Dull * (uint64_t)(seed + 1), seed % 2 ? DT_F32 : DT_F64, grads, 4, 2,
            32, TL, name);
    for (int i = 0; i < GRAPHS_PER_MODULE; i++)
        gen_graph(&g, i);
    if (grads)
        differentiate(&g);
    if (g.d.nerrors)
        diags_print(&g.d, stderr);
    ck_assert_int_eq(g.d.nerrors, 0);
    /* every third module at O0; codegen without the optimising selector */
    JitModule *m = tj_compile_at(g.g, seed % 3 == 2 ? 0 : 2, true, &g.d);
    ck_assert_ptr_nonnull(m);
    Tol tol = g.dt == DT_F32 ? (Tol){1e-4, 1e-3, 0} : (Tol){1e-10, 1e-9, 0};
    int64_t ns[2] = {3, 1};
    for (int i = 0; i < 2; i++) {
        TensorMap params, inputs;
        rt_map_init(&params);
        rt_map_init(&inputs);
        tj_fill(g.g, NULL, 0, ns[i], (uint64_t)seed * 7 + (uint64_t)i, &params, &inputs);
        RunOpts ro = {(uint64_t)seed, 5};
        char what[64];
        snprintf(what, sizeof what, "%s%s, N = %lld", name, grads ? " grads" : "", (long long)ns[i]);
        bool ok = tj_check_run(what, g.g, m, &params, &inputs, &ro, tol);
        if (!ok)
            ir_print(g.g, stderr);
        ck_assert_msg(ok, "%s differs", what);
        rt_map_free(&params);
        rt_map_free(&inputs);
    }
    be_jit_free(m);
    diags_free(&g.d);
    ir_graph_free(g.g);
}

START_TEST(random_forward)
{
    run_module(_i, false);
}
END_TEST

START_TEST(random_gradients)
{
    run_module(1000 + _i, true);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("jit_random");
    TCase *t = tcase_create("random");
    tcase_set_timeout(t, 600);
    tcase_add_loop_test(t, random_forward, 0, MODULES);
    tcase_add_loop_test(t, random_gradients, 0, MODULES / 2);
    suite_add_tcase(s, t);
    return tu_run(s);
}
