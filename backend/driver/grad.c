/* The loss and gradients for one batch (`modelc grad`) and the gradient
 * check against central differences in f64 (`modelc gradcheck`), see
 * include/modelc_inspect.h; and the parameter and input tensors of such
 * one-off evaluations (grad.h), which `modelc stats` shares. */
#include "modelc_inspect.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "backend/insight/insight.h"
#include "backend/llvm/jit.h"
#include "grad.h"
#include "runtime/io/io.h"

/* ---- parameters and inputs ---- */

static SrcLoc file_loc(Diags *d, const char *path)
{
    SrcLoc l = {diags_intern_file(d, path), 0, 0};
    return l;
}

bool gc_load_params(const Graph *g, const char *path, uint64_t seed, TensorMap *m, Diags *d)
{
    if (path)
        return rt_safetensors_read(path, m, NULL, d) && rt_check_params(g, m, path, true, d);
    if (!rt_init_params(g, m, seed, false, d))
        return false;
    bool ok = true;
    for (int i = 0; i < g->nnodes; i++) {
        const Node *p = g->nodes[i];
        if (p->op == OP_PARAM && !rt_map_get(m, p->a.name)) {
            diag_error(d, p->loc, "parameter '%s' has no initializer; give its value with --weights",
                       p->a.name);
            ok = false;
        }
    }
    return ok;
}

static bool check_input(const Node *in, const Tensor *t, const char *path, int64_t *n, Diags *d)
{
    char want[128], have[128];
    ir_type_str(in->dt, &in->shape, want, sizeof want);
    if (!t) {
        diag_error(d, file_loc(d, path), "input '%s' is missing; the model expects %s", in->a.name,
                   want);
        return false;
    }
    int64_t nn;
    if (t->dt != in->dt || !rt_tensor_matches(t, &in->shape, *n, &nn)) {
        diag_error(d, file_loc(d, path), "input '%s' is %s, the model expects %s%s", in->a.name,
                   rt_tensor_type_str(t, have, sizeof have), want,
                   t->dt == in->dt && *n >= 0 && ir_shape_has_n(&in->shape)
                       ? " with the same batch size N as the other inputs"
                       : "");
        return false;
    }
    if (nn >= 0)
        *n = nn;
    return true;
}

bool gc_load_inputs(const Graph *g, const char *path, TensorMap *m, Diags *d)
{
    if (!rt_safetensors_read(path, m, NULL, d))
        return false;
    bool ok = true;
    int64_t n = -1;
    for (int i = 0; i < g->nnodes; i++) {
        const Node *in = g->nodes[i];
        if (in->op == OP_INPUT)
            ok &= check_input(in, rt_map_get(m, in->a.name), path, &n, d);
    }
    for (int i = 0; i < m->n; i++) {
        bool known = false;
        for (int j = 0; j < g->nnodes && !known; j++)
            known = g->nodes[j]->op == OP_INPUT && strcmp(g->nodes[j]->a.name, m->names[i]) == 0;
        if (!known) {
            diag_error(d, file_loc(d, path), "tensor '%s' is not an input of model '%s'",
                       m->names[i], g->name);
            ok = false;
        }
    }
    return ok;
}

/* Does value s come from input x through ops that keep its values
 * (casts, reshapes, slices, broadcasts, transposes)? */
static bool carries(const Node *s, const Node *x)
{
    while (s->op == OP_CAST || s->op == OP_RESHAPE || s->op == OP_SLICE || s->op == OP_BROADCAST ||
           s->op == OP_TRANSPOSE)
        s = s->in[0];
    return s == x;
}

/* The number of values input x may take as an index: the smallest depth
 * of a one_hot and length of a gathered axis it feeds, or 0. */
static int64_t label_classes(const Graph *g, const Node *x)
{
    int64_t k = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        int64_t c = n->op == OP_ONE_HOT && carries(n->in[0], x) ? n->a.depth
                    : (n->op == OP_GATHER || n->op == OP_GATHER_GRAD) && carries(n->in[1], x)
                        ? (n->op == OP_GATHER ? n->in[0]->shape : n->shape).d[n->a.axes[0]]
                        : 0;
        if (c > 0 && (k == 0 || c < k))
            k = c;
    }
    return k;
}

bool gc_random_inputs(const Graph *g, int64_t batch, uint64_t seed, TensorMap *m, Diags *d)
{
    for (int i = 0; i < g->nnodes; i++) {
        const Node *x = g->nodes[i];
        if (x->op != OP_INPUT)
            continue;
        Tensor *t = rt_tensor_for(x->dt, &x->shape, batch);
        if (!t) {
            char ty[128];
            ir_type_str(x->dt, &x->shape, ty, sizeof ty);
            diag_error(d, x->loc, "cannot allocate input '%s' (%s at batch size %lld): out of memory",
                       x->a.name, ty, (long long)batch);
            return false;
        }
        uint64_t stream = rt_name_stream(x->a.name);
        int64_t classes = label_classes(g, x);
        if (!classes && !ir_dtype_is_float(x->dt))
            classes = 2;
        for (int64_t k = 0; k < t->numel; k++) {
            double u = rt_uniform(seed, stream, 1, (uint64_t)k);
            rt_set(t, k, classes ? (double)(int64_t)(u * classes) : u);
        }
        rt_map_put(m, x->a.name, t);
    }
    return true;
}

int gc_find_output(const Graph *g, OutKind k)
{
    for (int i = 0; i < g->nouts; i++)
        if (g->outs[i].kind == k)
            return i;
    return -1;
}

void gc_fmt_value(char *buf, size_t n, double v, DType dt)
{
    if (isnan(v))
        snprintf(buf, n, "nan");
    else if (isinf(v))
        snprintf(buf, n, "%sinf", v < 0 ? "-" : "");
    else if (dt == DT_F32)
        snprintf(buf, n, "%.9g", v);
    else
        fmt_double(buf, n, v);
}

static bool all_finite(const Tensor *t)
{
    if (!t || !ir_dtype_is_float(t->dt))
        return true;
    for (int64_t i = 0; i < t->numel; i++)
        if (!isfinite(rt_get(t, i)))
            return false;
    return true;
}

void gc_explain_nonfinite(Graph *g, const TensorMap *params, const TensorMap *inputs,
                          const RunOpts *ro, Diags *d)
{
    Tensor **vals;
    Diags scratch;
    diags_init(&scratch);
    if (!be_interp_run_all(g, params, inputs, ro, &vals, &scratch)) {
        diags_free(&scratch);
        return;
    }
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (n->op == OP_INPUT || n->op == OP_PARAM || all_finite(vals[i]))
            continue;
        bool inherited = false;
        for (int j = 0; j < n->nin; j++)
            inherited |= !all_finite(vals[n->in[j]->id]);
        if (inherited)
            continue;
        diag_note(d, n->loc, "the first NaN or infinity comes from %s%s%s%s", ir_ops[n->op].name,
                  n->label ? " ('" : "", n->label ? n->label : "", n->label ? "')" : "");
        break;
    }
    be_interp_free_values(g, vals);
    diags_free(&scratch);
}

/* ---- modelc grad ---- */

void mc_grad_options_default(mc_grad_options *o)
{
    memset(o, 0, sizeof *o);
    o->backend = MC_BACKEND_INTERP;
    o->batch = 4;
}

/* Report a non-finite loss or gradient; true when all values are finite. */
static bool check_finite(const Output *o, const Tensor *t, Diags *d, SrcLoc loc)
{
    for (int64_t i = 0; i < t->numel; i++) {
        double v = rt_get(t, i);
        if (!isfinite(v)) {
            diag_error(d, loc, "%s '%s' is %s at element %lld", o->kind == OUT_LOSS ? "the loss" : "gradient",
                       o->name, isnan(v) ? "NaN" : "infinite", (long long)i);
            return false;
        }
    }
    return true;
}

/* Returns the number of gradients written, or -1 after an error. */
static int write_grads(Graph *g, Tensor **outs, const char *path, const char *loss, Diags *d)
{
    TensorMap m;
    rt_map_init(&m);
    for (int i = 0; i < g->nouts; i++) {
        if (g->outs[i].kind != OUT_GRAD)
            continue;
        rt_map_put(&m, g->outs[i].name, outs[i]);
        outs[i] = NULL;
    }
    Metadata meta;
    rt_meta_init(&meta);
    rt_meta_set(&meta, RT_META_MODEL, g->name);
    rt_meta_set(&meta, "loss", loss);
    bool ok = rt_safetensors_write(path, &m, &meta, d);
    int n = m.n;
    rt_meta_free(&meta);
    rt_map_free(&m);
    return ok ? n : -1;
}

bool gc_run_jit(Graph *g, const TensorMap *params, const TensorMap *inputs, const RunOpts *ro,
                Tensor **outs, Diags *d)
{
    JitOpts o;
    be_jit_opts_default(&o);
    JitModule *m = be_jit_compile(g, &o, d);
    bool ok = m && be_jit_run(m, params, inputs, ro, outs, d);
    be_jit_free(m);
    return ok;
}

static Graph *grad_fn(const Graph *src, const mc_grad_options *a, bool fuse, Diags *d)
{
    RecipeOpts o = ps_recipe_opts(FN_GRAD);
    o.fuse = fuse;
    o.wrt = a->wrt;
    o.nwrt = a->nwrt;
    return ps_recipe(src, &o, d);
}

static bool evaluate(const Graph *src, Graph *g, const mc_grad_options *a, uint64_t seed, FILE *out, Diags *d)
{
    TensorMap params, inputs;
    rt_map_init(&params);
    rt_map_init(&inputs);
    bool ok = gc_load_params(g, a->weights, seed, &params, d);
    if (ok && a->inputs)
        ok = gc_load_inputs(g, a->inputs, &inputs, d);
    else if (ok)
        ok = gc_random_inputs(g, a->batch, seed, &inputs, d);
    Tensor **outs = xcalloc((size_t)g->nouts + 1, sizeof(Tensor *));
    RunOpts ro = {seed, 0};
    if (a->backend == MC_BACKEND_JIT)
        ok = ok && gc_run_jit(g, &params, &inputs, &ro, outs, d);
    else
        ok = ok && be_interp_run(g, &params, &inputs, &ro, outs, d);
    int li = gc_find_output(g, OUT_LOSS);
    char loss[64] = "";
    if (ok) {
        gc_fmt_value(loss, sizeof loss, rt_get(outs[li], 0), outs[li]->dt);
        fprintf(out, "loss: %s\n", loss);
        for (int i = 0; i < g->nouts && ok; i++)
            if (g->outs[i].kind == OUT_LOSS || g->outs[i].kind == OUT_GRAD)
                ok = check_finite(&g->outs[i], outs[i], d, g->outs[i].val->loc);
        if (!ok) { /* the search evaluates every op: the unfused function */
            Graph *u = grad_fn(src, a, false, d);
            if (u)
                gc_explain_nonfinite(u, &params, &inputs, &ro, d);
            ir_graph_free(u);
        }
    }
    int nw = ok ? write_grads(g, outs, a->output, loss, d) : -1;
    ok = nw >= 0;
    if (ok)
        fprintf(out, "wrote %d gradient%s to %s\n", nw, nw == 1 ? "" : "s", a->output);
    for (int i = 0; i < g->nouts; i++)
        rt_tensor_free(outs[i]);
    xfree(outs);
    rt_map_free(&params);
    rt_map_free(&inputs);
    return ok;
}

static int write_grads_cmd(const char *path, const mc_grad_options *o, FILE *out, FILE *err)
{
    Diags d;
    diags_init(&d);
    RunSettings run;
    Graph *g = mc_load_source(path, &run, &d, err);
    int shown = d.n;
    bool ok = g != NULL;
    if (ok && (!o->output || o->batch < 1)) {
        diag_error(&d, (SrcLoc){0}, o->output ? "the random batch needs at least 1 example"
                                              : "no output file for the gradients");
        ok = false;
    }
    Graph *f = ok ? grad_fn(g, o, o->backend == MC_BACKEND_JIT, &d) : NULL;
    ok = f && evaluate(g, f, o, o->seed_set ? o->seed : run.seed, out, &d);
    diags_print_from(&d, err, shown);
    ir_graph_free(f);
    ir_graph_free(g);
    diags_free(&d);
    return ok ? 0 : 1;
}

/* ---- modelc gradcheck ---- */

void mc_gradcheck_options_default(mc_gradcheck_options *o)
{
    memset(o, 0, sizeof *o);
    o->eps = 1e-6;
    o->atol = 1e-5;
    o->rtol = 1e-3;
    o->batch = 4;
    o->samples = 64;
    o->backend = MC_BACKEND_INTERP;
}

/* An element whose central difference crossed a kink, and how it was
 * checked instead. */
typedef enum { X_SKIPPED, X_CENTRAL, X_FORWARD, X_BACKWARD } Recheck;

typedef struct Crossing {
    const char *param;
    int64_t idx;
    int node;     /* the first kink node whose branch changed (in loss_g) */
    Recheck how;
    double eps;   /* of the difference checked */
    bool ok;
} Crossing;

typedef struct Checker {
    Graph *loss_g; /* forward graph with only the loss output */
    Graph *grad_g; /* forward + backward, simplified */
    TensorMap params, inputs;
    RunOpts ro;
    mc_gradcheck_options a; /* with the seed resolved */
    double loss0;           /* the loss at the unperturbed weights ... */
    KinkKeys keys0;         /* ... and the branches of its piecewise ops */
    Crossing *cross;
    int ncross, capcross;
    FILE *out;
    Diags *d;
} Checker;

typedef struct Result {
    int64_t checked, nrel, kinks, skipped, bad;
    double max_abs, max_rel;
} Result;

/* Random values for every parameter; learned weights get a small
 * perturbation so that no unit sits exactly at a kink (zero biases in
 * front of relu, ties in max). */
bool gc_check_params(const Graph *g, uint64_t seed, TensorMap *m, Diags *d)
{
    if (!rt_init_params(g, m, seed, false, d))
        return false;
    for (int i = 0; i < g->nnodes; i++) {
        Node *p = g->nodes[i];
        if (p->op != OP_PARAM)
            continue;
        Tensor *t = rt_map_get(m, p->a.name);
        bool fresh = !t;
        if (fresh) {
            t = rt_tensor_for(p->dt, &p->shape, 0);
            if (!t) {
                rt_param_alloc_error(p, d);
                return false;
            }
            rt_map_put(m, p->a.name, t);
        }
        if (p->a.role != ROLE_WEIGHT && !fresh)
            continue;
        uint64_t stream = rt_name_stream(p->a.name);
        for (int64_t k = 0; k < t->numel; k++)
            rt_set(t, k, rt_get(t, k) + 0.1 * (rt_uniform(seed, stream, 7, (uint64_t)k) - 0.5));
    }
    return true;
}

/* The loss at the current weights and the branches of every piecewise
 * op on the way to it. */
static bool eval_loss(Checker *c, double *loss, KinkKeys *k)
{
    Tensor **vals;
    if (!be_interp_run_all(c->loss_g, &c->params, &c->inputs, &c->ro, &vals, c->d))
        return false;
    *loss = rt_get(vals[c->loss_g->outs[gc_find_output(c->loss_g, OUT_LOSS)].val->id], 0);
    be_interp_kink_keys(c->loss_g, vals, k);
    be_interp_free_values(c->loss_g, vals);
    return true;
}

/* The relative error is taken over elements whose gradient is at least
 * atol in magnitude; smaller ones are judged by the absolute error. */
static bool compare(Result *r, double an, double num, const mc_gradcheck_options *a)
{
    double err = fabs(an - num), scale = fmax(fabs(an), fabs(num));
    bool ok = err <= a->atol + a->rtol * fabs(num);
    r->bad += !ok;
    if (!(err <= r->max_abs))
        r->max_abs = err;
    if (scale >= a->atol && scale > 0) {
        double rel = err / scale;
        if (!(rel <= r->max_rel))
            r->max_rel = rel;
        r->nrel++;
    }
    r->checked++;
    return ok;
}

static void add_crossing(Checker *c, Crossing x)
{
    if (c->ncross == c->capcross) {
        c->capcross = c->capcross ? 2 * c->capcross : 16;
        c->cross = xrealloc(c->cross, (size_t)c->capcross * sizeof *c->cross);
    }
    c->cross[c->ncross++] = x;
}

/* The loss and branches at w + eps and w - eps for element idx of p. */
static bool eval_pair(Checker *c, Tensor *p, int64_t idx, double eps, double *l, KinkKeys *k)
{
    double v = rt_get(p, idx);
    rt_set(p, idx, v + eps);
    bool ok = eval_loss(c, &l[0], &k[0]);
    rt_set(p, idx, v - eps);
    ok = ok && eval_loss(c, &l[1], &k[1]);
    rt_set(p, idx, v);
    return ok;
}

static void free_pair(KinkKeys *k)
{
    be_interp_kink_free(&k[0]);
    be_interp_kink_free(&k[1]);
}

enum { RECHECKS = 3 }; /* eps / 10, / 100, / 1000 */

/* A branch changed between w - eps and w + eps: the central difference
 * is no derivative. It is taken again with eps / 10, / 100 and / 1000;
 * when every one still crosses, the one-sided difference over the
 * smallest step on the side that keeps every branch of w is checked, and
 * when both sides change one the element is skipped. */
static bool check_crossing(Checker *c, Tensor *p, const char *name, int64_t idx, double an, int node,
                           Result *r)
{
    Crossing x = {name, idx, node, X_SKIPPED, c->a.eps, true};
    r->kinks++;
    for (int t = 0; t < RECHECKS && x.how == X_SKIPPED; t++) {
        double l[2];
        KinkKeys k[2] = {{0}, {0}};
        x.eps /= 10;
        if (!eval_pair(c, p, idx, x.eps, l, k))
            return false;
        if (be_interp_kink_diff(&k[0], &k[1], NULL) < 0) {
            x.how = X_CENTRAL;
            x.ok = compare(r, an, (l[0] - l[1]) / (2 * x.eps), &c->a);
        } else if (t == RECHECKS - 1 && be_interp_kink_diff(&c->keys0, &k[0], NULL) < 0) {
            x.how = X_FORWARD;
            x.ok = compare(r, an, (l[0] - c->loss0) / x.eps, &c->a);
        } else if (t == RECHECKS - 1 && be_interp_kink_diff(&c->keys0, &k[1], NULL) < 0) {
            x.how = X_BACKWARD;
            x.ok = compare(r, an, (c->loss0 - l[1]) / x.eps, &c->a);
        }
        free_pair(k);
    }
    r->skipped += x.how == X_SKIPPED;
    add_crossing(c, x);
    return true;
}

static bool check_param(Checker *c, const char *name, const Tensor *grad, Result *r)
{
    Tensor *p = rt_map_get(&c->params, name);
    int64_t n = p->numel, k = n < c->a.samples ? n : c->a.samples;
    uint64_t stream = rt_name_stream(name);
    *r = (Result){0};
    for (int64_t j = 0; j < k; j++) {
        int64_t idx = j;
        if (k < n) { /* one element of each of k strata, no element twice */
            double u = rt_uniform(c->a.seed, stream, 8, (uint64_t)j);
            int64_t lo = j * n / k, hi = (j + 1) * n / k;
            idx = lo + (int64_t)(u * (double)(hi - lo));
            if (idx >= hi)
                idx = hi - 1;
        }
        double l[2];
        KinkKeys kk[2] = {{0}, {0}};
        bool ok = eval_pair(c, p, idx, c->a.eps, l, kk);
        int node = ok ? be_interp_kink_diff(&kk[0], &kk[1], NULL) : -1;
        free_pair(kk);
        if (ok && node >= 0)
            ok = check_crossing(c, p, name, idx, rt_get(grad, idx), node, r);
        else if (ok)
            compare(r, rt_get(grad, idx), (l[0] - l[1]) / (2 * c->a.eps), &c->a);
        if (!ok)
            return false;
    }
    return true;
}

static void print_row(const char *name, const Shape *s, const Result *r, FILE *out)
{
    char sh[96], rel[32] = "-";
    if (r->nrel)
        snprintf(rel, sizeof rel, "%.3e", r->max_rel);
    fprintf(out, "%-24s %-16s %8lld %6lld %8lld %10lld %12.3e %12s  %s\n", name, ir_shape_str(s, sh, sizeof sh),
            (long long)r->checked, (long long)r->kinks, (long long)r->skipped, (long long)r->bad, r->max_abs,
            rel, r->bad ? "MISMATCH" : "ok");
}

static void print_crossings(const Checker *c, FILE *out)
{
    if (!c->ncross)
        return;
    fprintf(out, "kink crossings (a piecewise op changed branch between w - eps and w + eps): %d\n", c->ncross);
    for (int i = 0; i < c->ncross; i++) {
        const Crossing *x = &c->cross[i];
        const Node *n = c->loss_g->nodes[x->node];
        char elem[160], at[256];
        snprintf(elem, sizeof elem, "%s[%lld]", x->param, (long long)x->idx);
        snprintf(at, sizeof at, "%s at %s:%d:%d", ir_ops[n->op].name, n->loc.file ? n->loc.file : "?",
                 n->loc.line, n->loc.col);
        static const char *const how[] = {"skipped: both sides change a branch at eps %g",
                                          "central difference with eps %g", "forward difference with eps %g",
                                          "backward difference with eps %g"};
        char what[96];
        snprintf(what, sizeof what, how[x->how], x->eps);
        fprintf(out, "  %-24s %-48s %s%s\n", elem, at, what,
                x->how == X_SKIPPED ? "" : x->ok ? ": ok" : ": MISMATCH");
    }
}

static bool run_checks(Checker *c, int *nbad)
{
    Graph *g = c->grad_g;
    FILE *out = c->out;
    Tensor **outs = xcalloc((size_t)g->nouts + 1, sizeof(Tensor *));
    bool ok = be_interp_run(g, &c->params, &c->inputs, &c->ro, outs, c->d);
    int li = gc_find_output(g, OUT_LOSS);
    if (ok) {
        char loss[64];
        gc_fmt_value(loss, sizeof loss, rt_get(outs[li], 0), DT_F64);
        fprintf(out, "gradcheck %s: f64, batch %d, seed %llu, eps %g, atol %g, rtol %g; loss %s\n",
                g->name, c->a.batch, (unsigned long long)c->a.seed, c->a.eps, c->a.atol, c->a.rtol, loss);
        fprintf(out, "%-24s %-16s %8s %6s %8s %10s %12s %12s  %s\n", "parameter", "shape", "checked", "kinks",
                "skipped", "mismatched", "max abs err", "max rel err", "status");
    }
    int nchecked = 0;
    for (int i = 0; i < g->nouts && ok; i++) {
        Output *o = &g->outs[i];
        if (o->kind != OUT_GRAD || o->target->op != OP_PARAM)
            continue;
        Result r;
        ok = check_param(c, o->target->a.name, outs[i], &r);
        if (ok) {
            print_row(o->target->a.name, &o->target->shape, &r, out);
            *nbad += r.bad > 0;
            nchecked++;
        }
    }
    if (ok)
        print_crossings(c, out);
    if (ok && nchecked == 0)
        fprintf(out, "model '%s' has no trainable parameters to check\n", g->name);
    else if (ok)
        fprintf(out, "%s: %d of %d parameters match\n", *nbad ? "FAILED" : "passed", nchecked - *nbad,
                nchecked);
    for (int i = 0; i < g->nouts; i++)
        rt_tensor_free(outs[i]);
    xfree(outs);
    return ok;
}

/* The f64 grad and loss functions, unfused (the interpreter runs them). */
static bool build_graphs(Checker *c, Graph *g)
{
    RecipeOpts o = ps_recipe_opts(FN_GRAD);
    o.fuse = false;
    o.f64 = true;
    c->grad_g = ps_recipe(g, &o, c->d);
    o = ps_recipe_opts(FN_LOSS);
    o.f64 = true;
    c->loss_g = c->grad_g ? ps_recipe(g, &o, c->d) : NULL;
    return c->loss_g != NULL;
}

static bool valid(const mc_gradcheck_options *a, Diags *d)
{
    if (a->eps > 0 && isfinite(a->eps) && a->atol >= 0 && a->rtol >= 0 && a->batch >= 1 && a->samples >= 1)
        return true;
    diag_error(d, (SrcLoc){0}, "gradcheck needs eps > 0, atol and rtol >= 0, batch and samples >= 1");
    return false;
}

static int gradcheck_cmd(const char *path, const mc_gradcheck_options *o, FILE *out, FILE *err)
{
    Diags d;
    diags_init(&d);
    RunSettings run;
    Graph *g = mc_load_source(path, &run, &d, err);
    int shown = d.n, nbad = 0;
    Checker c = {.a = *o, .out = out, .d = &d};
    rt_map_init(&c.params);
    rt_map_init(&c.inputs);
    bool ok = g != NULL && valid(o, &d);
    if (ok && !o->seed_set)
        c.a.seed = run.seed;
    if (ok && o->f32) {
        ok = gc_precision_report(g, &c.a, out, &d);
    } else if (ok && (ok = build_graphs(&c, g))) {
        c.ro = (RunOpts){c.a.seed, 0};
        ok = gc_check_params(c.loss_g, c.a.seed, &c.params, c.d) &&
             gc_random_inputs(c.loss_g, c.a.batch, c.a.seed, &c.inputs, c.d) &&
             eval_loss(&c, &c.loss0, &c.keys0) && run_checks(&c, &nbad);
        if (ok && nbad)
            ins_vjp_first_wrong(c.loss_g, &c.params, &c.inputs, &c.ro, c.a.seed, &d);
    }
    diags_print_from(&d, err, shown);
    be_interp_kink_free(&c.keys0);
    xfree(c.cross);
    rt_map_free(&c.params);
    rt_map_free(&c.inputs);
    ir_graph_free(c.loss_g);
    ir_graph_free(c.grad_g);
    ir_graph_free(g);
    diags_free(&d);
    return ok && nbad == 0 ? 0 : 1;
}

int mc_write_grads(const char *path, const mc_grad_options *o, FILE *out, FILE *err)
{
    MC_COMMAND(path, err, "computing gradients", write_grads_cmd(path, o, out, err));
}

int mc_gradcheck(const char *path, const mc_gradcheck_options *o, FILE *out, FILE *err)
{
    MC_COMMAND(path, err, "checking gradients", gradcheck_cmd(path, o, out, err));
}
