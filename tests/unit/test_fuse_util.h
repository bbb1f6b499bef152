/* Helpers for the fusion tests: kernel counts, test data for any graph's
 * leaves, and the three-way check fused == unfused on the interpreter and
 * on the JIT (each against the interpreter), in f32 or f64. */
#ifndef TEST_FUSE_UTIL_H
#define TEST_FUSE_UTIL_H

#include "passes/passes.h"
#include "test_jit_util.h"

/* Nodes that compute (as `modelc ir --stats` counts them): not leaves, not
 * reshapes (which alias their operand). */
static inline int tf_kernels(const Graph *g)
{
    int k = 0;
    for (int i = 0; i < g->nnodes; i++)
        k += ir_ops[g->nodes[i]->op].cls != OPC_LEAF && g->nodes[i]->op != OP_RESHAPE &&
             g->nodes[i]->op != OP_RESULT; /* a result is its fused kernel's */
    return k;
}

static inline int tf_count_op(const Graph *g, Op op)
{
    int k = 0;
    for (int i = 0; i < g->nnodes; i++)
        k += g->nodes[i]->op == op;
    return k;
}

/* A fused copy of g (verified). */
static inline Graph *tf_fused(Graph *g)
{
    Graph *f = ir_clone(g);
    Diags d;
    diags_init(&d);
    bool ok = ps_fuse(f, &d) && ir_verify(f, &d);
    if (!ok) {
        diags_print(&d, stderr);
        ir_print(f, stderr);
    }
    ck_assert_msg(ok, "fusing %s failed", g->name);
    diags_free(&d);
    return f;
}

static inline bool tf_has(const char *s, const char *part)
{
    return strstr(s, part) != NULL;
}

/* Values for every leaf by its name: labels are class indices, targets
 * 0/1 masks, variances and Adam's second moments positive, the learning
 * rate and recurrent kernels small, anything else uniform in [-1, 1] (with specials: often NaN,
 * infinities, signed zeros and other special values). */
static inline void tf_fill(Graph *g, int64_t n, uint64_t seed, bool specials, TensorMap *params,
                           TensorMap *inputs)
{
    LeafSpec *specs = xcalloc((size_t)g->nnodes + 1, sizeof(LeafSpec));
    int ns = 0;
    for (int i = 0; i < g->nnodes; i++) {
        Node *v = g->nodes[i];
        if (v->op != OP_INPUT && v->op != OP_PARAM)
            continue;
        const char *s = v->a.name;
        LeafSpec sp = {s, V_UNIF, -1, 1};
        if (v->dt == DT_I32)
            sp = (LeafSpec){s, V_INT, 0, 9};
        else if (strcmp(s, "target") == 0)
            sp.kind = V_MASK;
        else if (strcmp(s, "optimizer.lr") == 0)
            sp = (LeafSpec){s, V_UNIF, 0.01, 0.01};
        else if (strcmp(s, "optimizer.step") == 0)
            sp = (LeafSpec){s, V_UNIF, 3, 3};
        else if (tf_has(s, "optimizer.v.") || tf_has(s, "optimizer.rms.") || tf_has(s, "var"))
            sp = (LeafSpec){s, V_UNIF, 0.25, 1};
        else if (tf_has(s, "recurrent_kernel") && !tf_has(s, "optimizer."))
            /* A recurrence h' = tanh(h W + ...) with W in [-1, 1] over
             * hundreds of units is chaotic: it amplifies rounding
             * differences of one ulp to O(1) within tens of steps, so
             * no two evaluation orders would agree. Small weights keep
             * it contracting. */
            sp = (LeafSpec){s, V_UNIF, -0.05, 0.05};
        else if (specials)
            sp.kind = V_SPECIAL;
        else if (strcmp(s, "x") == 0)
            sp = (LeafSpec){s, V_UNIF, 0, 1};
        specs[ns++] = sp;
    }
    tj_fill(g, specs, ns, n, seed, params, inputs);
    free(specs);
}

/* Equal within rtol of the expected tensor's largest magnitude (sums of
 * many terms differ by rounding only); NaN and infinities exactly. */
static inline bool tf_same(const char *what, const Tensor *got, const Tensor *want, double rtol)
{
    if (got->dt != want->dt || !rt_tensor_same_shape(got, want)) {
        fprintf(stderr, "%s: types differ\n", what);
        return false;
    }
    double big = 0;
    for (int64_t i = 0; i < want->numel; i++)
        if (isfinite(rt_get(want, i)) && fabs(rt_get(want, i)) > big)
            big = fabs(rt_get(want, i));
    Tol tol = {rtol * (big > 1 ? big : 1), rtol, 0};
    for (int64_t i = 0; i < got->numel; i++)
        if (!tj_close(rt_get(got, i), rt_get(want, i), tol)) {
            fprintf(stderr, "%s: element %lld: %.17g, expected %.17g\n", what, (long long)i,
                    rt_get(got, i), rt_get(want, i));
            return false;
        }
    return true;
}

/* Run g (interpreter, or JIT module m when non-NULL); NULL on error. */
static inline Tensor **tf_run(Graph *g, JitModule *m, const TensorMap *params, const TensorMap *inputs,
                              const RunOpts *ro)
{
    Diags d;
    diags_init(&d);
    Tensor **o = xcalloc((size_t)g->nouts + 1, sizeof(Tensor *));
    bool ok = m ? be_jit_run(m, params, inputs, ro, o, &d) : be_interp_run(g, params, inputs, ro, o, &d);
    if (!ok) {
        diags_print(&d, stderr);
        free(o);
        o = NULL;
    }
    diags_free(&d);
    return o;
}

static inline bool tf_same_outs(const char *what, Graph *g, Tensor **got, Tensor **want, double rtol)
{
    bool ok = true;
    for (int i = 0; i < g->nouts && ok; i++) {
        char name[300];
        snprintf(name, sizeof name, "%.150s: output '%.100s'", what, g->outs[i].name ? g->outs[i].name : "?");
        ok = tf_same(name, got[i], want[i], rtol);
    }
    return ok;
}

static inline void tf_free_outs(Graph *g, Tensor **o)
{
    if (o)
        tj_free_outs(o, g->nouts);
    free(o);
}

typedef struct TfCheck {
    int opt_level;  /* JIT: 0 or 2; -1 = interpreter only */
    bool fast_isel;
    double rtol;    /* JIT vs interpreter */
    double exact;   /* interpreter, fused vs unfused (0: bit for bit) */
    int64_t n;      /* batch size */
    uint64_t seed;
    bool specials;  /* NaN, infinities, signed zeros among the values */
} TfCheck;

/* g unfused, f = fused g: interp(f) == interp(g) within c->exact (0:
 * bit for bit), and when c->opt_level >= 0 jit(f) == interp(f),
 * jit(g) == interp(g) and jit(f) == jit(g) within c->rtol. */
static inline void tf_check(const char *what, Graph *g, Graph *f, const TfCheck *c)
{
    TensorMap params, inputs;
    rt_map_init(&params);
    rt_map_init(&inputs);
    tf_fill(g, c->n, c->seed, c->specials, &params, &inputs);
    RunOpts ro = {c->seed, 3};
    Tensor **ig = tf_run(g, NULL, &params, &inputs, &ro), **iff = tf_run(f, NULL, &params, &inputs, &ro);
    ck_assert_msg(ig && iff, "%s: the interpreter failed", what);
    ck_assert_int_eq(g->nouts, f->nouts);
    char w[400];
    snprintf(w, sizeof w, "%.300s: interp fused vs unfused", what);
    ck_assert_msg(tf_same_outs(w, g, iff, ig, c->exact), "%s", w);
    if (c->opt_level >= 0) {
        Graph *gs[2] = {g, f};
        Tensor **want[2] = {ig, iff}, **jo[2];
        for (int k = 0; k < 2; k++) {
            Diags d;
            diags_init(&d);
            JitModule *m = tj_compile_at(gs[k], c->opt_level, c->fast_isel, &d);
            ck_assert_msg(m != NULL, "%s: the JIT rejects the %s graph", what, k ? "fused" : "unfused");
            jo[k] = tf_run(gs[k], m, &params, &inputs, &ro);
            ck_assert_msg(jo[k] != NULL, "%s: the JIT failed", what);
            snprintf(w, sizeof w, "%.300s: jit %s vs interp", what, k ? "fused" : "unfused");
            ck_assert_msg(tf_same_outs(w, gs[k], jo[k], want[k], c->rtol), "%s", w);
            be_jit_free(m);
            diags_free(&d);
        }
        snprintf(w, sizeof w, "%.300s: jit fused vs unfused", what);
        ck_assert_msg(tf_same_outs(w, g, jo[1], jo[0], c->rtol), "%s", w);
        tf_free_outs(g, jo[0]);
        tf_free_outs(f, jo[1]);
    }
    tf_free_outs(g, ig);
    tf_free_outs(f, iff);
    rt_map_free(&params);
    rt_map_free(&inputs);
}

#endif
