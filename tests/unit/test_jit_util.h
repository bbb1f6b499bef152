/* Helpers for the JIT tests: deterministic test data for a graph's
 * leaves, running a graph with the interpreter and the JIT, and comparing
 * their outputs with a tolerance (NaN and infinities exactly). */
#ifndef TEST_JIT_UTIL_H
#define TEST_JIT_UTIL_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/interp/interp.h"
#include "backend/llvm/jit.h"
#include "frontend/frontend.h"
#include "passes/passes.h"
#include "testutil.h"

/* How a leaf's values are drawn. */
typedef enum { V_UNIF, V_SIGNED, V_INT, V_MASK, V_SPECIAL } VKind;

typedef struct LeafSpec {
    const char *name;
    VKind kind;
    double lo, hi; /* V_UNIF, V_INT: [lo, hi]; V_SIGNED: +-[lo, hi] */
} LeafSpec;

typedef struct Rng {
    uint64_t s;
} Rng;

static inline double tj_rand(Rng *r) /* [0, 1) */
{
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return (double)(r->s >> 11) / 9007199254740992.0;
}

static const double tj_specials[] = {NAN, INFINITY, -INFINITY, 0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.0, 1e30, -1e-30};

static inline double tj_value(Rng *r, const LeafSpec *s)
{
    double u = tj_rand(r);
    switch (s->kind) {
    case V_UNIF:
        return s->lo + (s->hi - s->lo) * u;
    case V_SIGNED: {
        double m = s->lo + (s->hi - s->lo) * tj_rand(r);
        return u < 0.5 ? -m : m;
    }
    case V_INT:
        return floor(s->lo + (s->hi - s->lo + 1) * u);
    case V_MASK:
        return u < 0.5 ? 0.0 : 1.0;
    case V_SPECIAL:
        if (u < 0.6)
            return tj_specials[(int)(tj_rand(r) * ARRAY_LEN(tj_specials))];
        return 4 * tj_rand(r) - 2;
    }
    return 0;
}

/* Fill `params`/`inputs` with a tensor for every INPUT/PARAM leaf of g
 * (N = n), drawn per the spec with the leaf's name (default: uniform in
 * [-1, 1]). */
static inline void tj_fill(Graph *g, const LeafSpec *specs, int nspecs, int64_t n, uint64_t seed,
                           TensorMap *params, TensorMap *inputs)
{
    Rng r = {seed * 0x9E3779B97F4A7C15ull + 12345};
    for (int i = 0; i < g->nnodes; i++) {
        Node *v = g->nodes[i];
        if (v->op != OP_INPUT && v->op != OP_PARAM)
            continue;
        LeafSpec def = {v->a.name, V_UNIF, -1, 1};
        const LeafSpec *s = &def;
        for (int k = 0; k < nspecs; k++)
            if (strcmp(specs[k].name, v->a.name) == 0)
                s = &specs[k];
        Tensor *t = rt_tensor_for(v->dt, &v->shape, n);
        ck_assert_ptr_nonnull(t);
        LeafSpec sp = *s;
        if (sp.kind == V_SPECIAL && v->dt == DT_I32)
            sp.kind = V_INT;
        for (int64_t e = 0; e < t->numel; e++)
            rt_set(t, e, tj_value(&r, &sp));
        rt_map_put(v->op == OP_INPUT ? inputs : params, v->a.name, t);
    }
}

/* |a - b| <= atol + rtol |b| + mtol max |b| (the largest finite element
 * of the expected tensor: an error that scales with the tensor's sums,
 * as a Winograd convolution's does, not with each element). */
typedef struct Tol {
    double atol, rtol, mtol;
} Tol;

/* Equal within tolerance; NaN and infinities must match exactly. */
static inline bool tj_close(double a, double b, Tol t)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    if (isinf(a) || isinf(b))
        return a == b;
    return fabs(a - b) <= t.atol + t.rtol * fabs(b);
}

/* Compare every element; returns false after printing the first
 * difference. */
static inline bool tj_same(const char *what, const Tensor *got, const Tensor *want, Tol tol)
{
    if (got->dt != want->dt || !rt_tensor_same_shape(got, want)) {
        char a[128], b[128];
        fprintf(stderr, "%s: type %s, expected %s\n", what, rt_tensor_type_str(got, a, sizeof a),
                rt_tensor_type_str(want, b, sizeof b));
        return false;
    }
    if (tol.mtol > 0) {
        double most = 0;
        for (int64_t i = 0; i < want->numel; i++) {
            double b = fabs(rt_get(want, i));
            most = isfinite(b) && b > most ? b : most;
        }
        tol.atol += tol.mtol * most;
    }
    for (int64_t i = 0; i < got->numel; i++) {
        double a = rt_get(got, i), b = rt_get(want, i);
        if (!tj_close(a, b, tol)) {
            fprintf(stderr, "%s: element %lld: jit %.17g, interp %.17g\n", what, (long long)i, a, b);
            return false;
        }
    }
    return true;
}

static inline void tj_free_outs(Tensor **o, int n)
{
    for (int i = 0; i < n; i++)
        rt_tensor_free(o[i]);
}

/* Compile with opt_level 0 or 2; fast_isel for cheaper codegen. */
/* Function fn of the model in src (model-file text), from its recipe,
 * fused when asked. */
static inline Graph *tj_recipe(const char *src, FnKind fn, bool fuse)
{
    Diags d;
    diags_init(&d);
    Graph *m = fe_compile("t.mdl", src, strlen(src), &d);
    if (!m)
        diags_print(&d, stderr);
    ck_assert_ptr_nonnull(m);
    RecipeOpts o = ps_recipe_opts(fn);
    o.fuse = fuse;
    Graph *g = ps_recipe(m, &o, &d);
    if (!g)
        diags_print(&d, stderr);
    ck_assert_ptr_nonnull(g);
    ir_graph_free(m);
    diags_free(&d);
    return g;
}

static inline JitModule *tj_compile_at(Graph *g, int opt_level, bool fast_isel, Diags *d)
{
    JitOpts o;
    be_jit_opts_default(&o);
    o.threads = 1;
    o.opt_level = opt_level;
    o.fast_isel = fast_isel;
    o.time_passes = getenv("TJ_TIME") != NULL;
    JitModule *m = be_jit_compile(g, &o, d);
    if (!m)
        diags_print(d, stderr);
    return m;
}

static inline JitModule *tj_compile(Graph *g, Diags *d)
{
    return tj_compile_at(g, 2, false, d);
}

/* Run g on both backends (one compiled module m) and compare every output.
 * When the interpreter reports an error, the JIT must report the same
 * first message. */
static inline bool tj_check_run(const char *what, Graph *g, JitModule *m, const TensorMap *params,
                                const TensorMap *inputs, const RunOpts *ro, Tol tol)
{
    Diags di, dj;
    diags_init(&di);
    diags_init(&dj);
    Tensor **oi = calloc((size_t)g->nouts + 1, sizeof(Tensor *));
    Tensor **oj = calloc((size_t)g->nouts + 1, sizeof(Tensor *));
    bool ri = be_interp_run(g, params, inputs, ro, oi, &di);
    bool rj = be_jit_run(m, params, inputs, ro, oj, &dj);
    bool ok = ri == rj;
    if (!ok) {
        fprintf(stderr, "%s: interp %s, jit %s\n", what, ri ? "ran" : "failed", rj ? "ran" : "failed");
        diags_print(&di, stderr);
        diags_print(&dj, stderr);
    } else if (!ri) {
        ok = di.n > 0 && dj.n > 0 && strcmp(di.v[0].msg, dj.v[0].msg) == 0;
        if (!ok)
            fprintf(stderr, "%s: interp says '%s', jit says '%s'\n", what, di.n ? di.v[0].msg : "",
                    dj.n ? dj.v[0].msg : "");
    } else {
        for (int i = 0; i < g->nouts && ok; i++) {
            char name[400];
            snprintf(name, sizeof name, "%.200s: output '%.100s'", what, g->outs[i].name);
            ok = tj_same(name, oj[i], oi[i], tol);
        }
    }
    if (ri)
        tj_free_outs(oi, g->nouts);
    if (rj)
        tj_free_outs(oj, g->nouts);
    free(oi);
    free(oj);
    diags_free(&di);
    diags_free(&dj);
    return ok;
}

#endif
