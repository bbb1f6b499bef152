/* `modelc gradcheck`: compare the symbolic gradients of a model with
 * central finite differences of its loss, in f64, on random weights and
 * a random batch. Every trainable parameter is checked on at most
 * --samples elements (stratified over the tensor with the seed), with
 * PyTorch gradcheck's criterion |analytic - numeric| <= atol + rtol*|numeric|. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/interp/interp.h"
#include "cli.h"
#include "grad_common.h"
#include "passes/passes.h"

typedef struct GcArgs {
    uint64_t seed;
    bool seed_set;
    double eps, atol, rtol;
    int batch, samples;
} GcArgs;

typedef struct Checker {
    Graph *loss_g; /* forward graph with only the loss output */
    Graph *grad_g; /* forward + backward, simplified */
    TensorMap params, inputs;
    RunOpts ro;
    const GcArgs *a;
    Diags *d;
} Checker;

typedef struct Result {
    int64_t checked, nrel;
    double max_abs, max_rel;
    bool ok;
} Result;

static int parse(GcArgs *a, int argc, char **argv, const char **file)
{
    a->seed = UINT64_MAX;
    CliOpt opts[] = {
        {"seed", CLI_U64, &a->seed, "S", "seed for weights, inputs and sampled elements (default: the model's)"},
        {"eps", CLI_DOUBLE, &a->eps, "E", "finite-difference step (default 1e-6)"},
        {"atol", CLI_DOUBLE, &a->atol, "A", "absolute tolerance (default 1e-5)"},
        {"rtol", CLI_DOUBLE, &a->rtol, "R", "relative tolerance (default 1e-3)"},
        {"batch", CLI_INT, &a->batch, "N", "examples in the random batch (default 4)"},
        {"samples", CLI_INT, &a->samples, "K", "elements checked per parameter at most (default 64)"},
    };
    CliCmd cmd = {"gradcheck", "FILE [options]",
                  "Compare symbolic gradients with central finite differences of the loss, in f64,\n"
                  "on random weights and a random batch; exit 1 on a mismatch.",
                  opts, ARRAY_LEN(opts), 1, 1};
    char **pos;
    int npos;
    int rc = cli_parse(&cmd, argc, argv, &pos, &npos);
    if (rc)
        return rc < 0 ? -1 : rc;
    *file = pos[0];
    free(pos);
    a->seed_set = a->seed != UINT64_MAX;
    if (!(a->eps > 0) || !isfinite(a->eps))
        return cli_usage_error("gradcheck", "--eps must be a positive number, got %g", a->eps);
    if (!(a->atol >= 0) || !(a->rtol >= 0))
        return cli_usage_error("gradcheck", "--atol and --rtol must not be negative");
    if (a->batch < 1 || a->samples < 1)
        return cli_usage_error("gradcheck", "--batch and --samples must be at least 1");
    return 0;
}

/* Random values for every parameter; learned weights get a small
 * perturbation so that no unit sits exactly at a kink (zero biases in
 * front of relu, ties in max). */
static void make_params(Checker *c)
{
    Graph *g = c->loss_g;
    rt_init_params(g, &c->params, c->a->seed, false);
    for (int i = 0; i < g->nnodes; i++) {
        Node *p = g->nodes[i];
        if (p->op != OP_PARAM)
            continue;
        Tensor *t = rt_map_get(&c->params, p->a.name);
        bool fresh = !t;
        if (fresh) {
            t = rt_tensor_for(p->dt, &p->shape, 0);
            if (!t)
                ICE("cannot allocate parameter '%s'", p->a.name);
            rt_map_put(&c->params, p->a.name, t);
        }
        if (p->a.role != ROLE_WEIGHT && !fresh)
            continue;
        uint64_t stream = rt_name_stream(p->a.name);
        for (int64_t k = 0; k < t->numel; k++)
            rt_set(t, k, rt_get(t, k) + 0.1 * (rt_uniform(c->a->seed, stream, 7, (uint64_t)k) - 0.5));
    }
}

static bool eval_loss(Checker *c, double *loss)
{
    Tensor *out[1] = {NULL};
    bool ok = be_interp_run(c->loss_g, &c->params, &c->inputs, &c->ro, out, c->d);
    if (ok)
        *loss = rt_get(out[0], 0);
    rt_tensor_free(out[0]);
    return ok;
}

/* The relative error is taken over elements whose gradient is at least
 * atol in magnitude; smaller ones are judged by the absolute error. */
static void compare(Result *r, double an, double num, const GcArgs *a)
{
    double err = fabs(an - num), scale = fmax(fabs(an), fabs(num));
    if (!(err <= a->atol + a->rtol * fabs(num)))
        r->ok = false;
    if (!(err <= r->max_abs))
        r->max_abs = err;
    if (scale >= a->atol && scale > 0) {
        double rel = err / scale;
        if (!(rel <= r->max_rel))
            r->max_rel = rel;
        r->nrel++;
    }
    r->checked++;
}

static bool check_param(Checker *c, const char *name, const Tensor *grad, Result *r)
{
    Tensor *p = rt_map_get(&c->params, name);
    int64_t n = p->numel, k = n < c->a->samples ? n : c->a->samples;
    uint64_t stream = rt_name_stream(name);
    *r = (Result){0, 0, 0, 0, true};
    for (int64_t j = 0; j < k; j++) {
        int64_t idx = j;
        if (k < n) {
            double u = rt_uniform(c->a->seed, stream, 8, (uint64_t)j);
            idx = (int64_t)(((double)j + u) * (double)n / (double)k);
            if (idx >= n)
                idx = n - 1;
        }
        double v = rt_get(p, idx), lp, lm;
        rt_set(p, idx, v + c->a->eps);
        bool ok = eval_loss(c, &lp);
        rt_set(p, idx, v - c->a->eps);
        ok = ok && eval_loss(c, &lm);
        rt_set(p, idx, v);
        if (!ok)
            return false;
        compare(r, rt_get(grad, idx), (lp - lm) / (2 * c->a->eps), c->a);
    }
    return true;
}

static void print_row(const char *name, const Shape *s, const Result *r)
{
    char sh[96], rel[32] = "-";
    if (r->nrel)
        snprintf(rel, sizeof rel, "%.3e", r->max_rel);
    printf("%-24s %-16s %8lld %12.3e %12s  %s\n", name, ir_shape_str(s, sh, sizeof sh),
           (long long)r->checked, r->max_abs, rel, r->ok ? "ok" : "MISMATCH");
}

static bool run_checks(Checker *c, int *nbad)
{
    Graph *g = c->grad_g;
    Tensor **outs = xcalloc((size_t)g->nouts + 1, sizeof(Tensor *));
    bool ok = be_interp_run(g, &c->params, &c->inputs, &c->ro, outs, c->d);
    int li = gc_find_output(g, OUT_LOSS);
    if (ok) {
        char loss[64];
        gc_fmt_value(loss, sizeof loss, rt_get(outs[li], 0), DT_F64);
        printf("gradcheck %s: f64, batch %d, seed %llu, eps %g, atol %g, rtol %g; loss %s\n",
               g->name, c->a->batch, (unsigned long long)c->a->seed, c->a->eps, c->a->atol,
               c->a->rtol, loss);
        printf("%-24s %-16s %8s %12s %12s  %s\n", "parameter", "shape", "checked", "max abs err",
               "max rel err", "status");
    }
    int nchecked = 0;
    for (int i = 0; i < g->nouts && ok; i++) {
        Output *o = &g->outs[i];
        if (o->kind != OUT_GRAD || o->target->op != OP_PARAM)
            continue;
        Result r;
        ok = check_param(c, o->target->a.name, outs[i], &r);
        if (ok) {
            print_row(o->target->a.name, &o->target->shape, &r);
            *nbad += !r.ok;
            nchecked++;
        }
    }
    if (ok && nchecked == 0)
        printf("model '%s' has no trainable parameters to check\n", g->name);
    else if (ok)
        printf("%s: %d of %d parameters match\n", *nbad ? "FAILED" : "passed", nchecked - *nbad,
               nchecked);
    for (int i = 0; i < g->nouts; i++)
        rt_tensor_free(outs[i]);
    free(outs);
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

int cmd_gradcheck(int argc, char **argv)
{
    GcArgs a = {.eps = 1e-6, .atol = 1e-5, .rtol = 1e-3, .batch = 4, .samples = 64};
    const char *file;
    int rc = parse(&a, argc, argv, &file);
    if (rc)
        return rc < 0 ? 0 : rc;
    Diags d;
    diags_init(&d);
    Graph *g = cli_load(file, &d);
    int shown = d.n, nbad = 0;
    Checker c = {.a = &a, .d = &d};
    rt_map_init(&c.params);
    rt_map_init(&c.inputs);
    bool ok = g != NULL;
    if (ok && !a.seed_set)
        a.seed = g->train.seed;
    ok = ok && build_graphs(&c, g);
    if (ok) {
        c.ro = (RunOpts){a.seed, 0};
        make_params(&c);
        gc_random_inputs(c.loss_g, a.batch, a.seed, &c.inputs);
        ok = run_checks(&c, &nbad);
    }
    diags_print_from(&d, stderr, shown);
    rt_map_free(&c.params);
    rt_map_free(&c.inputs);
    ir_graph_free(c.loss_g);
    ir_graph_free(c.grad_g);
    ir_graph_free(g);
    diags_free(&d);
    return ok && nbad == 0 ? 0 : 1;
}
