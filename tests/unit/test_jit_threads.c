/* Threads do not change results: graphs of row-parallel generated
 * kernels (elementwise, reductions keeping the batch axis, reductions
 * over it in parts) and of runtime kernels split per image, per block or
 * per part (pooling and its gradients, convolutions, dropout masks,
 * GEMMs and their epilogues) give bit-identical outputs with 1 and with 3
 * threads, for batch sizes that leave a partial last task and an empty
 * batch; they match the interpreter. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/llvm/cg.h"
#include "backend/llvm/compile.h"
#include "test_jit_util.h"

static JitModule *compile_threads(Graph *g, int threads, Diags *d)
{
    JitOpts o;
    be_jit_opts_default(&o);
    o.threads = threads;
    JitModule *m = be_jit_compile(g, &o, d);
    if (!m)
        diags_print(d, stderr);
    ck_assert_ptr_nonnull(m);
    return m;
}

static Graph *parse(const char *text, Diags *d)
{
    Graph *g = ir_parse("t.ir", text, strlen(text), d);
    if (!g)
        diags_print(d, stderr);
    ck_assert_ptr_nonnull(g);
    return g;
}

/* Outputs with 1 and 3 threads equal within `blas` (0: bit for bit), and
 * the threaded run matches the interpreter within `tol`, for batch sizes
 * ns[0..nn). */
static void check_threads_at(const char *name, const char *text, Tol blas, Tol tol, const int64_t *ns, int nn)
{
    Diags d;
    diags_init(&d);
    Graph *g = parse(text, &d);
    JitModule *m1 = compile_threads(g, 1, &d), *m3 = compile_threads(g, 3, &d);
    for (int i = 0; i < nn; i++) {
        TensorMap params, inputs;
        rt_map_init(&params);
        rt_map_init(&inputs);
        tj_fill(g, NULL, 0, ns[i], (uint64_t)(i + 7), &params, &inputs);
        RunOpts ro = {42, 3};
        Tensor **o1 = calloc((size_t)g->nouts + 1, sizeof(Tensor *));
        Tensor **o3 = calloc((size_t)g->nouts + 1, sizeof(Tensor *));
        ck_assert(be_jit_run(m1, &params, &inputs, &ro, o1, &d));
        ck_assert(be_jit_run(m3, &params, &inputs, &ro, o3, &d));
        char what[128];
        for (int k = 0; k < g->nouts; k++) {
            snprintf(what, sizeof what, "%s, output %d, N = %lld, 3 threads vs 1", name, k, (long long)ns[i]);
            ck_assert_msg(tj_same(what, o3[k], o1[k], blas), "%s differ", what);
            if (blas.atol == 0 && blas.rtol == 0 && blas.mtol == 0)
                ck_assert_msg(memcmp(o3[k]->data, o1[k]->data, (size_t)rt_tensor_bytes(o1[k])) == 0,
                              "%s: not bit-identical", what);
        }
        snprintf(what, sizeof what, "%s, N = %lld, 3 threads vs interpreter", name, (long long)ns[i]);
        ck_assert_msg(tj_check_run(what, g, m3, &params, &inputs, &ro, tol), "%s differs", what);
        tj_free_outs(o1, g->nouts);
        tj_free_outs(o3, g->nouts);
        free(o1);
        free(o3);
        rt_map_free(&params);
        rt_map_free(&inputs);
    }
    be_jit_free(m1);
    be_jit_free(m3);
    ir_graph_free(g);
    diags_free(&d);
}

static void check_threads(const char *name, const char *text, Tol blas, Tol tol)
{
    static const int64_t ns[4] = {37, 5, 1, 0};
    check_threads_at(name, text, blas, tol, ns, 4);
}

static const Tol exact = {0, 0, 0}, sum_tol = {1e-6, 1e-5, 0}, blas_tol = {1e-5, 1e-5, 0}, gemm_tol = {1e-4, 1e-4, 0};

START_TEST(elementwise_rows)
{
    check_threads("elementwise", "graph t {\n"
                                 "  %x = input \"x\" : f32[N,8,16,16]\n"
                                 "  %b = param \"b\" : f32[16]\n"
                                 "  %y = fused(%x, %b) : f32[N,8,16,16] {\n"
                                 "    %a0 = input \"0\" : f32[N,8,16,16]\n"
                                 "    %a1 = input \"1\" : f32[16]\n"
                                 "    %2 = mul(%a0, %a1) : f32[N,8,16,16]\n"
                                 "    %3 = tanh(%2) : f32[N,8,16,16]\n"
                                 "    output %3\n"
                                 "  }\n"
                                 "  %s = reduce_sum(%y) {axes=[2,3]} : f32[N,8]\n"
                                 "  %m = reduce_max(%y) {axes=[1]} : f32[N,16,16]\n"
                                 "  output value \"y\" = %y\n"
                                 "  output value \"s\" = %s\n"
                                 "  output value \"m\" = %m\n"
                                 "}\n",
                  exact, sum_tol);
}
END_TEST

/* Reductions over the batch axis with rows of at least 1024 elements run
 * as 8 ranges of rows into partial results, combined in order (N = 37:
 * ranges of 5 rows, the last of 2): sums, a mean over the batch and the
 * image axes, a maximum and a fused reduction (batchnorm's variance). */
START_TEST(batch_reductions)
{
    check_threads("batch reductions", "graph t {\n"
                                      "  %x = input \"x\" : f32[N,8,8,32]\n"
                                      "  %mu = param \"mu\" : f32[32]\n"
                                      "  %s = reduce_sum(%x) {axes=[0]} : f32[8,8,32]\n"
                                      "  %m = reduce_mean(%x) {axes=[0,1,2]} : f32[32]\n"
                                      "  %k = reduce_max(%x) {axes=[0,1,2,3], keepdims=true} : f32[1,1,1,1]\n"
                                      "  %v = fused(%x, %mu) : f32[32] {\n"
                                      "    %a0 = input \"0\" : f32[N,8,8,32]\n"
                                      "    %a1 = input \"1\" : f32[32]\n"
                                      "    %2 = sub(%a0, %a1) : f32[N,8,8,32]\n"
                                      "    %3 = square(%2) : f32[N,8,8,32]\n"
                                      "    %4 = reduce_mean(%3) {axes=[0,1,2]} : f32[32]\n"
                                      "    output %4\n"
                                      "  }\n"
                                      "  output value \"s\" = %s\n"
                                      "  output value \"m\" = %m\n"
                                      "  output value \"k\" = %k\n"
                                      "  output value \"v\" = %v\n"
                                      "}\n",
                  exact, sum_tol);
}
END_TEST

/* An update loop without a batch axis of at least 65536 elements runs
 * flat-parallel in tasks of 32768 elements (90000: a partial last task),
 * writing its side result (the slot m) in place too; so does a single
 * op of that size. */
START_TEST(flat_update_loops)
{
    check_threads("flat", "graph t {\n"
                          "  %g = input \"g\" : f32[300,300]\n"
                          "  %lr = input \"lr\" : f32[]\n"
                          "  %w = param \"w\" : f32[300,300]\n"
                          "  %m = param \"m\" slot : f32[300,300]\n"
                          "  %w1 = fused(%m, %g, %lr, %w) : f32[300,300] {\n"
                          "    %a0 = input \"0\" : f32[300,300]\n"
                          "    %a1 = input \"1\" : f32[300,300]\n"
                          "    %a2 = input \"2\" : f32[]\n"
                          "    %a3 = input \"3\" : f32[300,300]\n"
                          "    %c = const 0.9 : f32[]\n"
                          "    %1 = mul(%a0, %c) : f32[300,300]\n"
                          "    %2 = add(%1, %a1) : f32[300,300]\n"
                          "    %3 = tanh(%2) : f32[300,300]\n"
                          "    %4 = mul(%3, %a2) : f32[300,300]\n"
                          "    %5 = sub(%a3, %4) : f32[300,300]\n"
                          "    output %5\n"
                          "    output update = %2 of %a0\n"
                          "  }\n"
                          "  %z = mul(%g, %lr) : f32[300,300]\n"
                          "  output update \"w\" = %w1 of %w\n"
                          "  output update \"m\" = %w1 result 1 of %m\n"
                          "  output value \"z\" = %z\n"
                          "}\n",
                  exact, sum_tol);
}
END_TEST

START_TEST(pooling_images)
{
    check_threads("pooling", "graph t {\n"
                             "  %x = input \"x\" : f32[N,9,8,19]\n"
                             "  %dy = input \"dy\" : f32[N,5,4,19]\n"
                             "  %p = max_pool2d(%x) {window=[3,3], stride=[2,2], pad=[1,1,1,1]} : f32[N,5,4,19]\n"
                             "  %g = max_pool2d_grad(%x, %dy) {window=[3,3], stride=[2,2], pad=[1,1,1,1]} : "
                             "f32[N,9,8,19]\n"
                             "  %a = avg_pool2d(%x) {window=[3,3], stride=[2,2], pad=[1,1,1,1]} : f32[N,5,4,19]\n"
                             "  %ga = avg_pool2d_grad(%dy) {shape=[N,9,8,19], window=[3,3], stride=[2,2], "
                             "pad=[1,1,1,1]} : f32[N,9,8,19]\n"
                             "  output value \"p\" = %p\n"
                             "  output value \"g\" = %g\n"
                             "  output value \"a\" = %a\n"
                             "  output value \"ga\" = %ga\n"
                             "}\n",
                  exact, sum_tol);
}
END_TEST

START_TEST(dropout_blocks)
{
    check_threads("dropout", "graph t {\n"
                             "  %x = input \"x\" : f64[N,2051]\n"
                             "  %m = dropout_mask(%x) {value=0.4, stream=5} : f64[N,2051]\n"
                             "  %xf = input \"xf\" : f32[N,1037]\n"
                             "  %mf = dropout_mask(%xf) {value=0.25, stream=6} : f32[N,1037]\n"
                             "  output value \"m\" = %m\n"
                             "  output value \"mf\" = %mf\n"
                             "}\n",
                  exact, exact);
}
END_TEST

/* Few output channels: direct loops per image; more: im2col/col2im per
 * image and GEMMs in parts. */
START_TEST(convolutions)
{
    check_threads("conv few", "graph t {\n"
                              "  %x = input \"x\" : f32[N,7,6,3]\n"
                              "  %k = param \"k\" : f32[3,3,3,2]\n"
                              "  %dy = input \"dy\" : f32[N,4,3,2]\n"
                              "  %y = conv2d(%x, %k) {stride=[2,2], pad=[1,1,1,0]} : f32[N,4,3,2]\n"
                              "  %dx = conv2d_grad_input(%dy, %k) {shape=[N,7,6,3], stride=[2,2], pad=[1,1,1,0]} : "
                              "f32[N,7,6,3]\n"
                              "  output value \"y\" = %y\n"
                              "  output value \"dx\" = %dx\n"
                              "}\n",
                  exact, blas_tol);
    check_threads("conv gemm", "graph t {\n"
                               "  %x = input \"x\" : f32[N,6,7,8]\n"
                               "  %k = param \"k\" : f32[3,3,8,12]\n"
                               "  %dy = input \"dy\" : f32[N,6,7,12]\n"
                               "  %y = conv2d(%x, %k) {pad=[1,1,1,1]} : f32[N,6,7,12]\n"
                               "  %dx = conv2d_grad_input(%dy, %k) {shape=[N,6,7,8], pad=[1,1,1,1]} : f32[N,6,7,8]\n"
                               "  %dk = conv2d_grad_kernel(%x, %dy) {shape=[3,3,8,12], pad=[1,1,1,1]} : "
                               "f32[3,3,8,12]\n"
                               "  output value \"y\" = %y\n"
                               "  output value \"dx\" = %dx\n"
                               "  output value \"dk\" = %dk\n"
                               "}\n",
                  exact, gemm_tol);
    /* 3x3, stride 1, 16 or more channels: Winograd (runtime/conv_winograd.c;
     * its error against the interpreter scales with the largest element,
     * as test_jit_ops.c's TOL_WINO) */
    check_threads("conv winograd", "graph t {\n"
                                   "  %x = input \"x\" : f32[N,9,10,17]\n"
                                   "  %k = param \"k\" : f32[3,3,17,19]\n"
                                   "  %dy = input \"dy\" : f32[N,9,10,19]\n"
                                   "  %y = conv2d(%x, %k) {pad=[1,1,1,1]} : f32[N,9,10,19]\n"
                                   "  %dx = conv2d_grad_input(%dy, %k) {shape=[N,9,10,17], pad=[1,1,1,1]} : "
                                   "f32[N,9,10,17]\n"
                                   "  %dk = conv2d_grad_kernel(%x, %dy) {shape=[3,3,17,19], pad=[1,1,1,1]} : "
                                   "f32[3,3,17,19]\n"
                                   "  output value \"y\" = %y\n"
                                   "  output value \"dx\" = %dx\n"
                                   "  output value \"dk\" = %dk\n"
                                   "}\n",
                  exact, (Tol){1e-5, 1e-5, 2e-5});
}
END_TEST

/* GEMMs are cut into parts by the runtime, never by BLAS's threads (whose
 * results depend on their number): the MLP's forward, input-gradient and
 * weight-gradient GEMMs at batch 128 and 200 (several parts, along rows
 * or columns, a short last one), a GEMM epilogue with its bias gradient,
 * and a convolution whose kernel gradient sums over every pixel of the
 * batch, with 1 and 3 threads. */
START_TEST(gemm_parts)
{
    static const int64_t ns[3] = {128, 200, 3};
    check_threads_at("gemm", "graph t {\n"
                             "  %x = input \"x\" : f32[N,784]\n"
                             "  %w = param \"w\" : f32[784,256]\n"
                             "  %dy = input \"dy\" : f32[N,256]\n"
                             "  %y = matmul(%x, %w) : f32[N,256]\n"
                             "  %dx = matmul(%dy, %w) {tb=true} : f32[N,784]\n"
                             "  %dw = matmul(%x, %dy) {ta=true} : f32[784,256]\n"
                             "  %f = fused(%dy, %w, %x) : f32[N,784] {\n"
                             "    %a0 = input \"0\" : f32[N,256]\n"
                             "    %a1 = input \"1\" : f32[784,256]\n"
                             "    %a2 = input \"2\" : f32[N,784]\n"
                             "    %3 = matmul(%a0, %a1) {tb=true} : f32[N,784]\n"
                             "    %4 = const 0 : f32[]\n"
                             "    %5 = gt(%a2, %4) : f32[N,784]\n"
                             "    %6 = mul(%3, %5) : f32[N,784]\n"
                             "    %7 = reduce_sum(%6) {axes=[0]} : f32[784]\n"
                             "    output %6\n"
                             "    output %7\n"
                             "  }\n"
                             "  %b = result(%f) {index=1} : f32[784]\n"
                             "  output value \"y\" = %y\n"
                             "  output value \"dx\" = %dx\n"
                             "  output value \"dw\" = %dw\n"
                             "  output value \"f\" = %f\n"
                             "  output value \"b\" = %b\n"
                             "}\n",
                     exact, gemm_tol, ns, 3);
    check_threads_at("conv kernel gradient", "graph t {\n"
                                             "  %x = input \"x\" : f32[N,28,28,1]\n"
                                             "  %k = param \"k\" : f32[3,3,1,32]\n"
                                             "  %dy = input \"dy\" : f32[N,28,28,32]\n"
                                             "  %y = conv2d(%x, %k) {pad=[1,1,1,1]} : f32[N,28,28,32]\n"
                                             "  %dk = conv2d_grad_kernel(%x, %dy) {shape=[3,3,1,32], "
                                             "pad=[1,1,1,1]} : f32[3,3,1,32]\n"
                                             "  output value \"y\" = %y\n"
                                             "  output value \"dk\" = %dk\n"
                                             "}\n",
                     exact, gemm_tol, ns, 2);
}
END_TEST

/* Epilogues (plan_epilogues, rt_epilogue_begin): a row-parallel kernel
 * reading the result of the step just before it (a blocked convolution,
 * a few-output one, an input gradient, a max-pool gradient; an f64
 * convolution, whose runtime call leaves it to rt_epilogue_end) runs
 * image by image inside it, moved there past a kernel gradient; a
 * pooling of that kernel's result after it. Same bits as every step on its own
 * (MODELC_NO_EPILOGUE=1), for any threads, and as the interpreter. */
static const char epilogue_graph[] =
    "graph t {\n"
    "  %x = input \"x\" : f32[N,24,23,6]\n"
    "  %k = param \"k\" : f32[3,3,6,20]\n"
    "  %k2 = param \"k2\" : f32[3,3,6,2]\n"
    "  %b = param \"b\" : f32[20]\n"
    "  %dy = input \"dy\" : f32[N,24,23,20]\n"
    "  %xd = input \"xd\" : f64[N,16,16,3]\n"
    "  %kd = param \"kd\" : f64[3,3,3,7]\n"
    "  %y = conv2d(%x, %k) {pad=[1,1,1,1]} : f32[N,24,23,20]\n"
    "  %yb = add(%y, %b) : f32[N,24,23,20]\n"
    "  %y2 = conv2d(%x, %k2) {pad=[1,1,1,1]} : f32[N,24,23,2]\n"
    "  %s2 = sigmoid(%y2) : f32[N,24,23,2]\n"
    "  %dx = conv2d_grad_input(%dy, %k) {shape=[N,24,23,6], pad=[1,1,1,1]} : f32[N,24,23,6]\n"
    "  %dk = conv2d_grad_kernel(%x, %dy) {shape=[3,3,6,20], pad=[1,1,1,1]} : f32[3,3,6,20]\n"
    "  %t = tanh(%dx) : f32[N,24,23,6]\n"
    "  %p = max_pool2d(%yb) {window=[2,2], stride=[2,2]} : f32[N,12,11,20]\n"
    "  %g = max_pool2d_grad(%yb, %p) {window=[2,2], stride=[2,2]} : f32[N,24,23,20]\n"
    "  %m = mul(%g, %yb) : f32[N,24,23,20]\n"
    "  %yd = conv2d(%xd, %kd) : f64[N,14,14,7]\n"
    "  %rd = relu(%yd) : f64[N,14,14,7]\n"
    "  output value \"yb\" = %yb\n"
    "  output value \"s2\" = %s2\n"
    "  output value \"t\" = %t\n"
    "  output value \"m\" = %m\n"
    "  output value \"rd\" = %rd\n"
    "  output value \"dk\" = %dk\n"
    "}\n";

/* The same with the convolutions Winograd runs (3x3, stride 1, 16 or
 * more channels each way: runtime/conv_winograd.c). */
static const char epilogue_wino_graph[] =
    "graph t {\n"
    "  %x = input \"x\" : f32[N,12,11,17]\n"
    "  %k = param \"k\" : f32[3,3,17,20]\n"
    "  %b = param \"b\" : f32[20]\n"
    "  %dy = input \"dy\" : f32[N,12,11,20]\n"
    "  %y = conv2d(%x, %k) {pad=[1,1,1,1]} : f32[N,12,11,20]\n"
    "  %yb = add(%y, %b) : f32[N,12,11,20]\n"
    "  %dx = conv2d_grad_input(%dy, %k) {shape=[N,12,11,17], pad=[1,1,1,1]} : f32[N,12,11,17]\n"
    "  %dk = conv2d_grad_kernel(%x, %dy) {shape=[3,3,17,20], pad=[1,1,1,1]} : f32[3,3,17,20]\n"
    "  %t = tanh(%dx) : f32[N,12,11,17]\n"
    "  output value \"yb\" = %yb\n"
    "  output value \"t\" = %t\n"
    "  output value \"dk\" = %dk\n"
    "}\n";

/* Batchnorm at inference: the scale from the moving variance is computed
 * between the convolution and the kernel applying it; it goes before the
 * convolution, so that kernel is an epilogue. */
static const char epilogue_hoist_graph[] =
    "graph t {\n"
    "  %x = input \"x\" : f32[N,18,18,5]\n"
    "  %k = param \"k\" : f32[3,3,5,8]\n"
    "  %v = param \"v\" : f32[8]\n"
    "  %y = conv2d(%x, %k) : f32[N,16,16,8]\n"
    "  %s = rsqrt(%v) : f32[8]\n"
    "  %z = mul(%y, %s) : f32[N,16,16,8]\n"
    "  output value \"z\" = %z\n"
    "}\n";

/* Modules `with` and `without` a planning feature give the same bits on
 * every output, for batch sizes ns[0..nn). */
static void same_bits(const char *feature, Graph *g, JitModule *with, JitModule *without, const int64_t *ns,
                      int nn, Diags *d)
{
    for (int i = 0; i < nn; i++) {
        TensorMap params, inputs;
        rt_map_init(&params);
        rt_map_init(&inputs);
        tj_fill(g, NULL, 0, ns[i], (uint64_t)(i + 3), &params, &inputs);
        RunOpts ro = {42, 3};
        Tensor **a = calloc((size_t)g->nouts + 1, sizeof(Tensor *)), **b = calloc((size_t)g->nouts + 1, sizeof(Tensor *));
        ck_assert(be_jit_run(with, &params, &inputs, &ro, a, d));
        ck_assert(be_jit_run(without, &params, &inputs, &ro, b, d));
        for (int k = 0; k < g->nouts; k++)
            ck_assert_msg(memcmp(a[k]->data, b[k]->data, (size_t)rt_tensor_bytes(a[k])) == 0,
                          "output %d, N = %lld: the %s change bits", k, (long long)ns[i], feature);
        tj_free_outs(a, g->nouts);
        tj_free_outs(b, g->nouts);
        free(a);
        free(b);
        rt_map_free(&params);
        rt_map_free(&inputs);
    }
}

/* A graph's epilogues (nepi of them, npools of them max-pools) on 1 and 3 threads, against the
 * interpreter within tol, and bit for bit as without them. */
static void check_epilogues(const char *name, const char *text, int nepi, int npools, Tol tol)
{
    static const int64_t ns[5] = {37, 6, 5, 1, 0};
    check_threads_at(name, text, exact, tol, ns, 5);
    Diags d;
    diags_init(&d);
    /* the plan runs each of them as an epilogue */
    Graph *g = parse(text, &d);
    Plan p;
    ck_assert(plan_build(&p, g, &d));
    int n = 0, pools = 0;
    for (int i = 0, prod = -1; i < p.nsteps; i++) {
        if (!p.steps[i].epilogue) {
            prod = i;
            continue;
        }
        n++;
        pools += p.steps[i].node->op == OP_MAX_POOL2D;
        Op op = p.steps[prod].node->op;
        ck_assert(op == OP_CONV2D || op == OP_CONV2D_GRAD_INPUT || op == OP_MAX_POOL2D_GRAD);
    }
    ck_assert_int_eq(n, nepi);
    ck_assert_int_eq(pools, npools);
    plan_free(&p);
    /* bit for bit the same as without them */
    JitModule *with = compile_threads(g, 2, &d);
    setenv("MODELC_NO_EPILOGUE", "1", 1);
    JitModule *without = compile_threads(g, 2, &d);
    unsetenv("MODELC_NO_EPILOGUE");
    same_bits("epilogues", g, with, without, ns, 4, &d);
    be_jit_free(with);
    be_jit_free(without);
    ir_graph_free(g);
    diags_free(&d);
}

START_TEST(epilogues)
{
    check_epilogues("epilogues", epilogue_graph, 6, 1, gemm_tol); /* the max_pool2d after the bias: a chain of two */
    check_epilogues("epilogues, Winograd", epilogue_wino_graph, 2, 0, (Tol){1e-4, 1e-4, 2e-5});
    check_epilogues("epilogues, hoisted", epilogue_hoist_graph, 1, 0, gemm_tol);
}
END_TEST

/* Flat rows (codegen.c, flat_row): elementwise kernels over rows of more
 * than two tasks' elements whose operands are of the result's shape or
 * scalars run over N * row elements, split by elements: a convolution's
 * tanh epilogue and a fused kernel with a scalar parameter after it, an
 * exp on its own; the bias add (a broadcast operand) stays row-parallel. Same bits as
 * without (MODELC_NO_FLAT_ROWS=1), on 1 and 3 threads, and as the
 * interpreter. */
static const char flat_rows_graph[] =
    "graph t {\n"
    "  %x = input \"x\" : f32[N,40,64,26]\n"
    "  %k = param \"k\" : f32[3,3,26,26]\n"
    "  %b = param \"b\" : f32[26]\n"
    "  %s = param \"s\" : f32[]\n"
    "  %y = conv2d(%x, %k) {pad=[1,1,1,1]} : f32[N,40,64,26]\n"
    "  %t = tanh(%y) : f32[N,40,64,26]\n"
    "  %f = fused(%t, %x, %s) : f32[N,40,64,26] {\n"
    "    %a0 = input \"0\" : f32[N,40,64,26]\n"
    "    %a1 = input \"1\" : f32[N,40,64,26]\n"
    "    %a2 = input \"2\" : f32[]\n"
    "    %3 = sigmoid(%a1) : f32[N,40,64,26]\n"
    "    %4 = mul(%3, %a2) : f32[N,40,64,26]\n"
    "    %5 = add(%4, %a0) : f32[N,40,64,26]\n"
    "    output %5\n"
    "  }\n"
    "  %z = add(%x, %b) : f32[N,40,64,26]\n"
    "  %u = conv2d(%z, %k) {pad=[1,1,1,1]} : f32[N,40,64,26]\n"
    "  %q = exp(%x) : f32[N,40,64,26]\n"
    "  output value \"q\" = %q\n"
    "  output value \"f\" = %f\n"
    "  output value \"u\" = %u\n"
    "}\n";

static int64_t workspace_bytes(JitModule *m, int64_t n, Diags *d)
{
    JitWorkspace *w = be_jit_workspace_new(m, n, d);
    ck_assert_ptr_nonnull(w);
    int64_t b = be_jit_workspace_bytes(w);
    be_jit_workspace_free(w);
    return b;
}

static long rss_anon_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "RssAnon:", 8) == 0)
            kb = atol(line + 8);
    if (f)
        fclose(f);
    return kb;
}

/* A workspace of 16 MB or more is resident when it is created (its pages
 * faulted in on two threads, not by the first step's kernels). */
START_TEST(workspace_prefaulted)
{
    Diags d;
    diags_init(&d);
    Graph *g = parse(epilogue_graph, &d);
    JitModule *m = compile_threads(g, 2, &d);
    int64_t n = 8;
    while (workspace_bytes(m, n, &d) < ((int64_t)48 << 20))
        n *= 2;
    long before = rss_anon_kb();
    JitWorkspace *w = be_jit_workspace_new(m, n, &d);
    ck_assert_ptr_nonnull(w);
    long grew = rss_anon_kb() - before, want = (long)(be_jit_workspace_bytes(w) / 1024);
    ck_assert_msg(before < 0 || grew >= want * 9 / 10, "RssAnon grew %ld kB for a workspace of %ld kB", grew, want);
    be_jit_workspace_free(w);
    be_jit_free(m);
    ir_graph_free(g);
    diags_free(&d);
}
END_TEST

/* A graph compiled on 3 threads with a code generation feature and with
 * it off (env=1) gives the same bits for batch sizes ns[0..nn); with
 * smaller, its workspace at ns[0] is smaller too. */
static void feature_same_bits(const char *feature, const char *text, const char *env, const int64_t *ns, int nn,
                              bool smaller)
{
    Diags d;
    diags_init(&d);
    Graph *g = parse(text, &d);
    JitModule *with = compile_threads(g, 3, &d);
    setenv(env, "1", 1);
    JitModule *without = compile_threads(g, 3, &d);
    unsetenv(env);
    if (smaller)
        ck_assert_int_lt(workspace_bytes(with, ns[0], &d), workspace_bytes(without, ns[0], &d));
    same_bits(feature, g, with, without, ns, nn, &d);
    be_jit_free(with);
    be_jit_free(without);
    ir_graph_free(g);
    diags_free(&d);
}

START_TEST(flat_rows)
{
    static const int64_t ns[4] = {3, 2, 1, 0};
    check_threads_at("flat rows", flat_rows_graph, exact, (Tol){1e-4, 1e-4, 2e-5}, ns, 4);
    feature_same_bits("flat rows", flat_rows_graph, "MODELC_NO_FLAT_ROWS", ns, 4, false);
}
END_TEST

/* Softmax, its log forms and argmax along an axis other than the batch's
 * are row-parallel however short their rows (codegen.c, heavy_rows_op),
 * in tasks of CG_ROW_GRAIN / 8 elements: rows of 10 (N = 1000: three
 * tasks) and of 7 along the last axis of [N,5,7]. Same bits on 1 and 3
 * threads, and the interpreter's values. */
START_TEST(heavy_rows)
{
    static const int64_t ns[4] = {1000, 411, 1, 0};
    check_threads_at("heavy rows",
                     "graph t {\n"
                     "  %x = input \"x\" : f32[N,10]\n"
                     "  %t = input \"t\" : f32[N,10]\n"
                     "  %z = input \"z\" : f32[N,5,7]\n"
                     "  %s = softmax(%x) {axis=1} : f32[N,10]\n"
                     "  %l = log_softmax(%x) {axis=1} : f32[N,10]\n"
                     "  %d = log_softmax_dot(%x, %t) {axis=1} : f32[N]\n"
                     "  %g = log_softmax_grad(%x, %t) {axis=1} : f32[N,10]\n"
                     "  %a = argmax(%x) {axes=[1]} : f32[N]\n"
                     "  %s2 = softmax(%z) {axis=2} : f32[N,5,7]\n"
                     "  %a2 = argmax(%z) {axes=[2]} : f32[N,5]\n"
                     "  output value \"s\" = %s\n"
                     "  output value \"l\" = %l\n"
                     "  output value \"d\" = %d\n"
                     "  output value \"g\" = %g\n"
                     "  output value \"a\" = %a\n"
                     "  output value \"s2\" = %s2\n"
                     "  output value \"a2\" = %a2\n"
                     "}\n",
                     exact, sum_tol, ns, 4);
}
END_TEST

/* A GEMM's epilogue (codegen.c, gemm_epilogue_chunk) runs as a
 * row-parallel kernel after the GEMM: bias, tanh and an N-leading
 * operand (each task's rows offset), in tasks of CG_ROW_GRAIN elements
 * (N = 700: five tasks of 164 rows and a partial one; N = 165: a task
 * and one row; smaller: one task). A GEMM with a column sum over the
 * batch (fresh) keeps its epilogue. Same bits with the split off
 * (MODELC_NO_GEMM_EPILOGUE_ROWS=1), on 1 and 3 threads, and as the
 * interpreter. */
static const char gemm_epilogue_graph[] =
    "graph t {\n"
    "  %x = input \"x\" : f32[N,96]\n"
    "  %r = input \"r\" : f32[N,200]\n"
    "  %w = param \"w\" : f32[96,200]\n"
    "  %b = param \"b\" : f32[200]\n"
    "  %h = fused(%x, %w, %b, %r) : f32[N,200] {\n"
    "    %a0 = input \"0\" : f32[N,96]\n"
    "    %a1 = input \"1\" : f32[96,200]\n"
    "    %a2 = input \"2\" : f32[200]\n"
    "    %a3 = input \"3\" : f32[N,200]\n"
    "    %4 = matmul(%a0, %a1) : f32[N,200]\n"
    "    %5 = add(%4, %a2) : f32[N,200]\n"
    "    %6 = tanh(%5) : f32[N,200]\n"
    "    %7 = mul(%6, %a3) : f32[N,200]\n"
    "    output %7\n"
    "  }\n"
    "  %f = fused(%h, %w) : f32[N,96] {\n"
    "    %a0 = input \"0\" : f32[N,200]\n"
    "    %a1 = input \"1\" : f32[96,200]\n"
    "    %3 = matmul(%a0, %a1) {tb=true} : f32[N,96]\n"
    "    %4 = const 0.5 : f32[]\n"
    "    %5 = mul(%3, %4) : f32[N,96]\n"
    "    %6 = reduce_sum(%5) {axes=[0]} : f32[96]\n"
    "    output %5\n"
    "    output %6\n"
    "  }\n"
    "  %c = result(%f) {index=1} : f32[96]\n"
    "  output value \"h\" = %h\n"
    "  output value \"f\" = %f\n"
    "  output value \"c\" = %c\n"
    "}\n";

START_TEST(gemm_epilogue_rows)
{
    static const int64_t ns[5] = {700, 165, 3, 1, 0};
    check_threads_at("gemm epilogue rows", gemm_epilogue_graph, exact, gemm_tol, ns, 5);
    feature_same_bits("gemm epilogue rows", gemm_epilogue_graph, "MODELC_NO_GEMM_EPILOGUE_ROWS", ns, 5, false);
}
END_TEST

/* Batch tiles (plan_tiles): the convolutions, activations and pooling
 * of an inference run a few rows of the batch at a time, their own
 * temporaries (the convolutions' results, the first activation) a
 * tile's rows, one tile for both convolutions (a kernel on weights alone
 * between them moves before them); an input gradient and its epilogue
 * the same. Same bits as
 * without tiles (MODELC_NO_TILE=1), for any threads and batch sizes that
 * leave a partial last tile, and as the interpreter; smaller
 * workspaces. */
static const char tile_graph[] =
    "graph t {\n"
    "  %x = input \"x\" : f32[N,14,13,3]\n"
    "  %k1 = param \"k1\" : f32[3,3,3,17]\n"
    "  %b1 = param \"b1\" : f32[17]\n"
    "  %k2 = param \"k2\" : f32[3,3,17,20]\n"
    "  %b2 = param \"b2\" : f32[20]\n"
    "  %w = param \"w\" : f32[1260,5]\n"
    "  %dy = input \"dy\" : f32[N,12,11,20]\n"
    "  %c1 = conv2d(%x, %k1) {stride=[1,1]} : f32[N,12,11,17]\n"
    "  %h1 = fused(%c1, %b1) : f32[N,12,11,17] {\n"
    "    %a0 = input \"0\" : f32[N,12,11,17]\n"
    "    %a1 = input \"1\" : f32[17]\n"
    "    %2 = add(%a0, %a1) : f32[N,12,11,17]\n"
    "    %3 = relu(%2) : f32[N,12,11,17]\n"
    "    output %3\n"
    "  }\n"
    "  %sc = rsqrt(%b2) : f32[20]\n"
    "  %c2 = conv2d(%h1, %k2) {pad=[1,1,1,1]} : f32[N,12,11,20]\n"
    "  %h2 = fused(%c2, %sc) : f32[N,12,11,20] {\n"
    "    %a0 = input \"0\" : f32[N,12,11,20]\n"
    "    %a1 = input \"1\" : f32[20]\n"
    "    %2 = mul(%a0, %a1) : f32[N,12,11,20]\n"
    "    %3 = tanh(%2) : f32[N,12,11,20]\n"
    "    output %3\n"
    "  }\n"
    "  %p = max_pool2d(%h2) {window=[2,2], stride=[2,2]} : f32[N,6,5,20]\n"
    "  %s = avg_pool2d(%h2) {window=[3,3], stride=[2,2]} : f32[N,5,5,20]\n"
    "  %f = reshape(%p) {shape=[N,600]} : f32[N,600]\n"
    "  %r = reduce_sum(%s) {axes=[3]} : f32[N,5,5]\n"
    "  %dx = conv2d_grad_input(%dy, %k2) {shape=[N,12,11,17], pad=[1,1,1,1]} : f32[N,12,11,17]\n"
    "  %t = tanh(%dx) : f32[N,12,11,17]\n"
    "  %g = max_pool2d_grad(%t, %t) {window=[1,1], stride=[1,1]} : f32[N,12,11,17]\n"
    "  output value \"f\" = %f\n"
    "  output value \"r\" = %r\n"
    "  output value \"g\" = %g\n"
    "}\n";


/* Results over a dying operand (plan.c, plan_in_place): the relu
 * gradient writes over the relu output it reads last, an epilogue of the
 * input gradient over the activation it reads last (the kernel gradient
 * that also reads that activation moved before the input gradient), and
 * an add over its operand's second reader; the first reader of a value
 * read again later keeps its own buffer. Same bits as without
 * (MODELC_NO_IN_PLACE=1) on 1 and 3 threads, as the interpreter, and a
 * smaller workspace. */
static const char in_place_graph[] =
    "graph t {\n"
    "  %x = input \"x\" : f32[N,24,23,6]\n"
    "  %k = param \"k\" : f32[3,3,6,8]\n"
    "  %k2 = param \"k2\" : f32[3,3,8,5]\n"
    "  %dy = input \"dy\" : f32[N,24,23,5]\n"
    "  %y = conv2d(%x, %k) {pad=[1,1,1,1]} : f32[N,24,23,8]\n"
    "  %h = tanh(%y) : f32[N,24,23,8]\n"
    "  %s = mul(%h, %h) : f32[N,24,23,8]\n"
    "  %o = add(%s, %h) : f32[N,24,23,8]\n"
    "  %dh = conv2d_grad_input(%dy, %k2) {shape=[N,24,23,8], pad=[1,1,1,1]} : f32[N,24,23,8]\n"
    "  %dk2 = conv2d_grad_kernel(%h, %dy) {shape=[3,3,8,5], pad=[1,1,1,1]} : f32[3,3,8,5]\n"
    "  %g = fused(%dh, %h) : f32[N,24,23,8] {\n"
    "    %a0 = input \"0\" : f32[N,24,23,8]\n"
    "    %a1 = input \"1\" : f32[N,24,23,8]\n"
    "    %2 = mul(%a1, %a1) : f32[N,24,23,8]\n"
    "    %3 = const 1 : f32[]\n"
    "    %4 = sub(%3, %2) : f32[N,24,23,8]\n"
    "    %5 = mul(%a0, %4) : f32[N,24,23,8]\n"
    "    output %5\n"
    "  }\n"
    "  %r = relu(%o) : f32[N,24,23,8]\n"
    "  output value \"g\" = %g\n"
    "  output value \"dk2\" = %dk2\n"
    "  output value \"r\" = %r\n"
    "}\n";

START_TEST(in_place)
{
    static const int64_t ns[4] = {7, 2, 1, 0};
    check_threads_at("in place", in_place_graph, exact, gemm_tol, ns, 4);
    feature_same_bits("results in place", in_place_graph, "MODELC_NO_IN_PLACE", ns, 4, true);
}
END_TEST

START_TEST(batch_tiles)
{
    static const int64_t ns[5] = {37, 8, 5, 1, 0};
    setenv("MODELC_TILE_ROWS", "4", 1); /* 37 = 9 tiles of 4 and one of 1 */
    check_threads_at("batch tiles", tile_graph, exact, (Tol){1e-4, 1e-4, 2e-5}, ns, 5);
    Diags d;
    diags_init(&d);
    Graph *g = parse(tile_graph, &d);
    Plan p;
    ck_assert(plan_build(&p, g, &d));
    int tiled = 0, own = 0;
    for (int i = 0; i < p.nsteps; i++) {
        tiled += p.steps[i].tile > 0;
        ck_assert(!p.steps[i].tile || p.steps[i].tile_rows == 4);
    }
    for (int s = 0; s < p.nslots; s++)
        own += p.slots[s].tile_rows > 0;
    ck_assert_int_ge(tiled, 6);
    /* the rsqrt on weights between the two convolutions moved before them: one tile */
    int tc1 = -1, tc2 = -2;
    for (int i = 0; i < p.nsteps; i++) {
        const char *nm = p.steps[i].node->label;
        if (nm && strcmp(nm, "c1") == 0)
            tc1 = p.steps[i].tile;
        if (nm && strcmp(nm, "c2") == 0)
            tc2 = p.steps[i].tile;
    }
    ck_assert_int_eq(tc1, tc2);
    ck_assert_int_ge(own, 3); /* %c1, %h1, %c2 at least */
    plan_free(&p);
    JitModule *with = compile_threads(g, 2, &d);
    unsetenv("MODELC_TILE_ROWS");
    setenv("MODELC_NO_TILE", "1", 1);
    JitModule *without = compile_threads(g, 2, &d);
    unsetenv("MODELC_NO_TILE");
    ck_assert_int_lt(workspace_bytes(with, 37, &d), workspace_bytes(without, 37, &d));
    same_bits("tiles", g, with, without, ns, 5, &d);
    be_jit_free(with);
    be_jit_free(without);
    ir_graph_free(g);
    diags_free(&d);
}
END_TEST

/* A module compiled in as many parts as there may be (compile.c cuts
 * the steps into JIT_MAX_PARTS ranges) computes the same bits as in one
 * part: no range starts inside a batch tile (whose steps run tile by
 * tile on the tile's own temporaries) or at an epilogue. */
static JitModule *compile_jobs(Graph *g, int jobs, Diags *d)
{
    JitOpts o;
    be_jit_opts_default(&o);
    o.threads = 2;
    o.jobs = jobs;
    JitModule *m = be_jit_compile(g, &o, d);
    if (!m)
        diags_print(d, stderr);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(be_jit_stats(m)->parts, jobs == 1 ? 1 : JIT_MAX_PARTS);
    return m;
}

START_TEST(compile_parts)
{
    static const int64_t ns[4] = {37, 5, 1, 0};
    const char *graphs[2] = {tile_graph, epilogue_graph};
    setenv("MODELC_TILE_ROWS", "4", 1);
    for (int i = 0; i < 2; i++) {
        Diags d;
        diags_init(&d);
        Graph *g = parse(graphs[i], &d);
        JitModule *one = compile_jobs(g, 1, &d), *many = compile_jobs(g, JIT_MAX_PARTS, &d);
        same_bits("module parts", g, many, one, ns, 4, &d);
        be_jit_free(one);
        be_jit_free(many);
        ir_graph_free(g);
        diags_free(&d);
    }
    unsetenv("MODELC_TILE_ROWS");
}
END_TEST

/* A GEMM with one row (a dense layer at batch 1) is BLAS's
 * matrix-vector product on parts of the columns: every transpose, alpha
 * and beta, a beta of 0 over a NaN, columns not a multiple of the part
 * size and one part or four; the same bits on 1 and 3 threads, and the
 * product within float rounding. */
START_TEST(gemm_one_row)
{
    static const int64_t shapes[][2] = {{37, 5}, {130, 301}, {128, 9216}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (int tb = 0; tb < 2; tb++)
            for (int bi = 0; bi < 2; bi++) {
                int64_t n = shapes[si][0], k = shapes[si][1];
                float *a = malloc((size_t)k * sizeof(float)), *b = malloc((size_t)(n * k) * sizeof(float));
                float *c[2] = {malloc((size_t)n * sizeof(float)), malloc((size_t)n * sizeof(float))};
                for (int64_t i = 0; i < k; i++)
                    a[i] = (float)((i * 37 % 101) - 50) / 50.0f;
                for (int64_t i = 0; i < n * k; i++)
                    b[i] = (float)((i * 53 % 97) - 48) / 48.0f;
                float beta = bi ? 0.5f : 0.0f;
                for (int t = 0; t < 2; t++) {
                    RtCtx ctx;
                    rt_ctx_init(&ctx, t ? 3 : 1);
                    ctx.pool = t ? rt_pool_new(3) : NULL;
                    for (int64_t j = 0; j < n; j++)
                        c[t][j] = bi ? (float)j : NAN;
                    rt_gemm_f32(&ctx, (int32_t)(si % 2), tb, 1, n, k, 2.0f, a, b, beta, c[t]);
                    if (ctx.pool)
                        rt_pool_free(ctx.pool);
                }
                ck_assert_msg(memcmp(c[0], c[1], (size_t)n * sizeof(float)) == 0, "n %lld, k %lld, tb %d: threads",
                              (long long)n, (long long)k, tb);
                for (int64_t j = 0; j < n; j++) {
                    double want = bi ? 0.5 * (double)j : 0, mag = 0;
                    for (int64_t i = 0; i < k; i++) {
                        double bv = b[tb ? j * k + i : i * n + j];
                        want += 2.0 * a[i] * bv;
                        mag += fabs(2.0 * a[i] * bv);
                    }
                    ck_assert_msg(fabs(c[0][j] - want) <= 1e-5 * mag + 1e-6, "n %lld, k %lld, tb %d, beta %g: C[%lld] %g, want %g",
                                  (long long)n, (long long)k, tb, beta, (long long)j, c[0][j], want);
                }
                free(a);
                free(b);
                free(c[0]);
                free(c[1]);
            }
}
END_TEST

/* The pool itself: every task runs once, whatever the thread count. */
typedef struct Count {
    int64_t hits[1000];
} Count;

static void count_task(void *arg, int64_t t)
{
    __atomic_fetch_add(&((Count *)arg)->hits[t], 1, __ATOMIC_RELAXED);
}

/* A task that starts a job of its own on the same pool: run serially. */
typedef struct Nest {
    RtPool *p;
    Count inner[8];
} Nest;

static void nest_task(void *arg, int64_t t)
{
    Nest *n = arg;
    rt_pool_run(n->p, 100, count_task, &n->inner[t]);
}

/* The GEMM tests' operands for op(A) m x k, op(B) k x n (values not
 * bf16 numbers), and C's old values (NaN when beta is 0); each test runs
 * the GEMM into c[0] on 1 thread and c[1] on 3, from c0, with `bf16`. */
typedef struct GemmCase {
    float *a, *b, *c0, *c[2];
} GemmCase;

static GemmCase gemm_case(int64_t m, int64_t n, int64_t k, bool scaled)
{
    GemmCase g = {malloc((size_t)(m * k) * sizeof(float)), malloc((size_t)(k * n) * sizeof(float)),
                  malloc((size_t)(m * n) * sizeof(float)),
                  {malloc((size_t)(m * n) * sizeof(float)), malloc((size_t)(m * n) * sizeof(float))}};
    for (int64_t i = 0; i < m * k; i++)
        g.a[i] = (float)((i * 37 % 101) - 50) / 50.0f;
    for (int64_t i = 0; i < k * n; i++)
        g.b[i] = (float)((i * 53 % 97) - 48) / 48.0f;
    for (int64_t i = 0; i < m * n; i++)
        g.c0[i] = scaled ? (float)(i % 13) - 6.0f : NAN;
    return g;
}

/* The GEMM on 1 and 3 threads (c[0], c[1], from c0): the blocked kernels
 * directly (`blocked`), the bf16 kernels directly (`bf16`), else
 * rt_gemm_f32; the two must be the same bits. */
static void gemm_case_run(GemmCase *g, int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, float beta,
                          bool blocked, bool bf16)
{
    for (int t = 0; t < 2; t++) {
        RtCtx ctx;
        rt_ctx_init(&ctx, t ? 3 : 1);
        ctx.pool = t ? rt_pool_new(3) : NULL;
        memcpy(g->c[t], g->c0, (size_t)(m * n) * sizeof(float));
        if (bf16)
            ck_assert(rt_gemm_bf16_f32(&ctx, ta, tb, m, n, k, alpha, g->a, g->b, beta, g->c[t]));
        else if (blocked)
            ck_assert(rt_gemm_blocked_f32(&ctx, ta, tb, m, n, k, alpha, g->a, g->b, beta, g->c[t]));
        else
            rt_gemm_f32(&ctx, ta, tb, m, n, k, alpha, g->a, g->b, beta, g->c[t]);
        if (ctx.pool)
            rt_pool_free(ctx.pool);
    }
    ck_assert_msg(memcmp(g->c[0], g->c[1], (size_t)(m * n) * sizeof(float)) == 0, "%lldx%lldx%lld ta %d tb %d: threads",
                  (long long)m, (long long)n, (long long)k, ta, tb);
}

static void gemm_case_free(GemmCase *g)
{
    free(g->a);
    free(g->b);
    free(g->c0);
    free(g->c[0]);
    free(g->c[1]);
}

/* The register-blocked f32 GEMM (rt_gemm_blocked_f32) on odd shapes: rows
 * and columns not a multiple of a tile, one column, k split into blocks
 * (1025, 2100) and B wider than one packed block (300 columns at k 1025),
 * every transpose, alpha and beta (beta 0 over a C of NaNs). Every
 * element must equal, bit for bit, alpha times the fmaf sum over k in
 * order in blocks of equal size at most 1024, plus beta times the old
 * value (alpha and beta powers of two, so a fused multiply-add in the
 * scaling cannot change a bit), with 1 and 3 threads; below AVX2 it is
 * OpenBLAS's, within rounding. */
START_TEST(gemm_blocked_shapes)
{
    static const int64_t shapes[][3] = {{2, 1, 1},     {3, 7, 5},      {13, 17, 16},   {14, 32, 33},
                                        {15, 33, 100}, {29, 16, 7},    {30, 300, 1025}, {64, 40, 2100},
                                        {128, 10, 128}, {200, 129, 31}, {57, 64, 64}};
    bool blocked = rt_conv_isa_level() >= 2 && !getenv("MODELC_GEMM");
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (int tr = 0; tr < 4; tr++)
            for (int sc = 0; sc < 2; sc++) {
                int64_t m = shapes[si][0], n = shapes[si][1], k = shapes[si][2];
                int ta = tr & 1, tb = tr >> 1;
                float alpha = sc ? 2.0f : 1.0f, beta = sc ? 0.5f : 0.0f;
                GemmCase gc = gemm_case(m, n, k, sc);
                float *a = gc.a, *b = gc.b, *c0 = gc.c0, *const *c = gc.c;
                gemm_case_run(&gc, ta, tb, m, n, k, alpha, beta, blocked, false);
                int64_t nkb = (k + 1023) / 1024, kc = (k + nkb - 1) / nkb;
                for (int64_t i = 0; i < m; i++)
                    for (int64_t j = 0; j < n; j++) {
                        float r = c0[i * n + j];
                        double want = sc ? (double)beta * r : 0, mag = fabs(want);
                        for (int64_t p0 = 0; p0 < k; p0 += kc) {
                            float acc = 0;
                            for (int64_t p = p0; p < k && p < p0 + kc; p++) {
                                float av = a[ta ? p * m + i : i * k + p], bv = b[tb ? j * k + p : p * n + j];
                                acc = fmaf(av, bv, acc);
                                want += (double)alpha * av * bv;
                                mag += fabs((double)alpha * av * bv);
                            }
                            r = p0 > 0 ? acc * alpha + r : beta != 0 ? acc * alpha + r * beta : acc * alpha;
                        }
                        float got = c[0][i * n + j];
                        if (blocked)
                            ck_assert_msg(memcmp(&got, &r, sizeof r) == 0,
                                          "%lldx%lldx%lld ta %d tb %d alpha %g: C[%lld,%lld] %.9g, in-order sum %.9g",
                                          (long long)m, (long long)n, (long long)k, ta, tb, alpha, (long long)i,
                                          (long long)j, got, r);
                        ck_assert_msg(fabs(got - want) <= 1e-5 * mag + 1e-6,
                                      "%lldx%lldx%lld ta %d tb %d: C[%lld,%lld] %g, want %g", (long long)m,
                                      (long long)n, (long long)k, ta, tb, (long long)i, (long long)j, got, want);
                    }
                gemm_case_free(&gc);
            }
}
END_TEST

/* x rounded to bf16, nearest even (no denormals or NaNs here). */
static float to_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    memcpy(&x, &u, sizeof u);
    return x;
}

/* The f32 GEMM on bf16 operands (rt_gemm_bf16_f32, RtCtx.gemm_bf16 in
 * rt_gemm_f32) on odd shapes: one row, rows and columns not a multiple
 * of a tile (16 or 32), an odd k and k split into blocks (1025, 2100),
 * every transpose, alpha and beta (beta 0 over a C of NaNs). Each element
 * must be within f32 rounding of alpha times the exact sum of the
 * bf16-rounded operands' products, plus beta times the old value, the
 * same bits with 1 and 3 threads, and (the operands being no bf16
 * numbers) away from the f32 product somewhere. rt_gemm_f32 asked for
 * bf16 (RtCtx.gemm_bf16) runs them from RT_GEMM_BF16_MIN_ROWS rows on and
 * keeps fewer rows in f32. MODELC_BF16=avx512 (a CMake variant) runs
 * AVX512-BF16's kernels instead of AMX's. Without either,
 * rt_gemm_bf16_f32 declines. */
START_TEST(gemm_bf16_shapes)
{
    if (!rt_cpu_has_bf16()) {
        float a = 1, b = 1, c = 0;
        ck_assert(!rt_gemm_bf16_f32(NULL, 0, 0, 1, 1, 1, 1.0f, &a, &b, 0.0f, &c));
        return;
    }
    static const int64_t shapes[][3] = {{1, 5, 9},      {2, 1, 1},    {3, 7, 5},       {13, 17, 16},
                                        {33, 65, 31},   {15, 33, 100}, {30, 300, 1025}, {64, 40, 2100},
                                        {128, 10, 128}, {200, 129, 33}};
    double far = 0; /* the largest distance from the f32 products, relative */
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (int tr = 0; tr < 4; tr++)
            for (int sc = 0; sc < 2; sc++) {
                int64_t m = shapes[si][0], n = shapes[si][1], k = shapes[si][2];
                int ta = tr & 1, tb = tr >> 1;
                float alpha = sc ? 2.0f : 1.0f, beta = sc ? 0.5f : 0.0f;
                GemmCase gc = gemm_case(m, n, k, sc);
                float *a = gc.a, *b = gc.b, *c0 = gc.c0, *const *c = gc.c;
                gemm_case_run(&gc, ta, tb, m, n, k, alpha, beta, false, true);
                for (int64_t i = 0; i < m; i++)
                    for (int64_t j = 0; j < n; j++) {
                        double old = sc ? (double)beta * c0[i * n + j] : 0, want = old, f32 = old, mag = fabs(old);
                        for (int64_t p = 0; p < k; p++) {
                            float av = a[ta ? p * m + i : i * k + p], bv = b[tb ? j * k + p : p * n + j];
                            want += (double)alpha * to_bf16(av) * to_bf16(bv);
                            f32 += (double)alpha * av * bv;
                            mag += fabs((double)alpha * av * bv);
                        }
                        float got = c[0][i * n + j];
                        ck_assert_msg(fabs(got - want) <= 1e-5 * mag + 1e-6,
                                      "%lldx%lldx%lld ta %d tb %d: C[%lld,%lld] %.9g, want %.9g", (long long)m,
                                      (long long)n, (long long)k, ta, tb, (long long)i, (long long)j, got, want);
                        if (fabs(got - f32) / (mag + 1e-30) > far)
                            far = fabs(got - f32) / (mag + 1e-30);
                    }
                gemm_case_free(&gc);
            }
    ck_assert_msg(far > 1e-4, "bf16 results within %g of the f32 products: not rounded to bf16?", far);
    for (int64_t m = RT_GEMM_BF16_MIN_ROWS - 1; m <= RT_GEMM_BF16_MIN_ROWS; m++) {
        int64_t n = 40, k = 50;
        GemmCase gc = gemm_case(m, n, k, false), f32 = gemm_case(m, n, k, false);
        RtCtx ctx;
        rt_ctx_init(&ctx, 1);
        ctx.gemm_bf16 = true;
        rt_gemm_f32(&ctx, 0, 0, m, n, k, 1.0f, gc.a, gc.b, 0.0f, gc.c[0]);
        ck_assert(rt_gemm_bf16_f32(&ctx, 0, 0, m, n, k, 1.0f, gc.a, gc.b, 0.0f, gc.c[1]));
        ctx.gemm_bf16 = false;
        rt_gemm_f32(&ctx, 0, 0, m, n, k, 1.0f, f32.a, f32.b, 0.0f, f32.c[0]);
        bool as_f32 = memcmp(gc.c[0], f32.c[0], (size_t)(m * n) * sizeof(float)) == 0;
        bool as_bf16 = memcmp(gc.c[0], gc.c[1], (size_t)(m * n) * sizeof(float)) == 0;
        ck_assert_msg(m < RT_GEMM_BF16_MIN_ROWS ? as_f32 && !as_bf16 : as_bf16 && !as_f32, "%lld rows", (long long)m);
        gemm_case_free(&gc);
        gemm_case_free(&f32);
    }
}
END_TEST

START_TEST(pool_nested_jobs)
{
    Nest *n = calloc(1, sizeof *n);
    n->p = rt_pool_new(3);
    rt_pool_run(n->p, 8, nest_task, n);
    for (int t = 0; t < 8; t++)
        for (int i = 0; i < 1000; i++)
            ck_assert_int_eq(n->inner[t].hits[i], i < 100 ? 1 : 0);
    rt_pool_free(n->p);
    free(n);
}
END_TEST

START_TEST(pool_runs_every_task_once)
{
    for (int threads = 1; threads <= 4; threads++) {
        RtPool *p = rt_pool_new(threads);
        ck_assert_int_eq(rt_pool_threads(p), threads);
        for (int rep = 0; rep < 50; rep++) {
            Count c;
            memset(&c, 0, sizeof c);
            int64_t n = rep * 20 % 1000;
            rt_pool_run(p, n, count_task, &c);
            for (int64_t t = 0; t < 1000; t++)
                ck_assert_int_eq(c.hits[t], t < n ? 1 : 0);
        }
        rt_pool_free(p);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("jit_threads");
    TCase *t = tcase_create("threads");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, pool_runs_every_task_once);
    tcase_add_test(t, pool_nested_jobs);
    tcase_add_test(t, elementwise_rows);
    tcase_add_test(t, epilogues);
    tcase_add_test(t, batch_tiles);
    tcase_add_test(t, flat_rows);
    tcase_add_test(t, gemm_epilogue_rows);
    tcase_add_test(t, heavy_rows);
    tcase_add_test(t, in_place);
    tcase_add_test(t, gemm_one_row);
    tcase_add_test(t, gemm_blocked_shapes);
    tcase_add_test(t, gemm_bf16_shapes);
    tcase_add_test(t, batch_reductions);
    tcase_add_test(t, flat_update_loops);
    tcase_add_test(t, pooling_images);
    tcase_add_test(t, dropout_blocks);
    tcase_add_test(t, convolutions);
    tcase_add_test(t, gemm_parts);
    tcase_add_test(t, compile_parts);
    tcase_add_test(t, workspace_prefaulted);
    suite_add_tcase(s, t);
    return tu_run(s);
}
