/* Which op's gradient rule is wrong: after a gradient check finds a
 * mismatch, every differentiable op of the loss function is checked on
 * its own, on the values it had in that batch. For op y = f(x1, x2, ...)
 * a small graph computes L = sum(f(x1, ...) * u) with a random cotangent
 * u; the grad recipe differentiates it with respect to the operands (the
 * op's vector-Jacobian product u^T J), and the product with a random
 * direction v is compared with the op's own central difference of L
 * along v, in f64. A difference that changes a branch of a piecewise op
 * is taken again with a smaller step. The first op (in the order of the
 * model) that disagrees is named at its model line. */
#include "backend/insight/insight.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"

enum { MAXIN = 8 };

typedef struct OpCheck {
    Graph *grad_g, *loss_g; /* of L = sum(f(x...) * u) */
    TensorMap in;           /* x0, x1, ... and u */
    const char *wrt[MAXIN];
    Tensor *grad[MAXIN];    /* the rule's gradient of L for each wrt */
    int nwrt;
    double an, num, l0;     /* the rule's u^T J v, the difference, |L| */
} OpCheck;

static bool differentiable_operand(const Node *n, int j)
{
    const Node *x = n->in[j];
    if (!ir_dtype_is_float(x->dt) || x->op == OP_CONST || ir_op_has(x->op, OPF_NOGRAD))
        return false;
    return !(n->op == OP_SELECT && j == 0);
}

static bool checkable(const Node *n)
{
    if (!ir_op_has(n->op, OPF_DIFF) || !ir_dtype_is_float(n->dt) || n->nin > MAXIN || n->op == OP_PHASE ||
        n->op == OP_FUSED || n->op == OP_RESULT)
        return false;
    for (int j = 0; j < n->nin; j++)
        if (differentiable_operand(n, j))
            return true;
    return false;
}

static Shape concrete(const Tensor *t)
{
    return ir_shape(t->rank, t->dims);
}

/* The attributes of n with the batch dimension N of a shape attribute
 * made concrete (y is n's value). */
static Attrs concrete_attrs(const Node *n, const Tensor *y)
{
    Attrs a = n->a;
    int64_t nb = -1;
    for (int k = 0; k < n->shape.rank && k < y->rank; k++)
        if (ir_dim_is_batch(n->shape.d[k]))
            nb = y->dims[k] / ir_dim_factor(n->shape.d[k]);
    for (int k = 0; k < a.shape.rank && nb >= 0; k++)
        if (ir_dim_is_batch(a.shape.d[k]))
            a.shape.d[k] = ir_dim_eval(a.shape.d[k], nb);
    return a;
}

static Tensor *random_like(const Tensor *t, uint64_t seed, uint64_t stream)
{
    Tensor *r = rt_tensor_like(t);
    for (int64_t i = 0; i < r->numel; i++)
        rt_set(r, i, 2 * rt_uniform(seed, stream, 9, (uint64_t)i) - 1);
    return r;
}

/* L = sum(f(x0, x1, ...) * u) over concrete copies of n's operands. */
static Graph *op_graph(const Node *n, Tensor *const *vals, OpCheck *oc, uint64_t seed, Diags *d)
{
    Graph *g = ir_graph_new("vjp");
    Node *in[MAXIN];
    SrcLoc loc = n->loc;
    for (int j = 0; j < n->nin; j++) {
        const Tensor *t = vals[n->in[j]->id];
        char name[16];
        snprintf(name, sizeof name, "x%d", j);
        in[j] = ir_input(g, arena_strdup(g->arena, name), t->dt, concrete(t), loc);
        rt_map_put(&oc->in, name, rt_tensor_clone(t));
        if (differentiable_operand(n, j))
            oc->wrt[oc->nwrt++] = in[j]->a.name;
    }
    Attrs a = concrete_attrs(n, vals[n->id]);
    Node *y = ir_op(g, n->op, in, n->nin, &a, loc, d);
    if (!y) {
        ir_graph_free(g);
        return NULL;
    }
    Node *u = ir_input(g, "u", y->dt, y->shape, loc);
    rt_map_put(&oc->in, "u", random_like(vals[n->id], seed, 1));
    Attrs all = ir_attrs();
    all.naxes = y->shape.rank;
    for (int k = 0; k < all.naxes; k++)
        all.axes[k] = k;
    Node *p = ir_binary(g, OP_MUL, y, u, loc, d);
    Node *l = p ? ir_op(g, OP_REDUCE_SUM, &p, 1, &all, loc, d) : NULL;
    if (!l) {
        ir_graph_free(g);
        return NULL;
    }
    ir_add_output(g, OUT_LOSS, "loss", l, NULL, false);
    return g;
}

static bool eval_loss(OpCheck *oc, const TensorMap *in, double *l, KinkKeys *k, Diags *d)
{
    Tensor **vals;
    TensorMap none;
    rt_map_init(&none);
    bool ok = be_interp_run_all(oc->loss_g, &none, in, &(RunOpts){0, 0}, &vals, d);
    if (ok) {
        *l = rt_get(vals[oc->loss_g->outs[0].val->id], 0);
        be_interp_kink_keys(oc->loss_g, vals, k);
        be_interp_free_values(oc->loss_g, vals);
    }
    rt_map_free(&none);
    return ok;
}

/* The operands moved by h along the directions dir (one per wrt). */
static void moved(const OpCheck *oc, Tensor *const *dir, double h, TensorMap *out)
{
    rt_map_init(out);
    for (int i = 0; i < oc->in.n; i++) {
        Tensor *t = rt_tensor_clone(oc->in.t[i]);
        for (int w = 0; w < oc->nwrt; w++)
            if (strcmp(oc->wrt[w], oc->in.names[i]) == 0)
                for (int64_t k = 0; k < t->numel; k++)
                    rt_set(t, k, rt_get(t, k) + h * rt_get(dir[w], k));
        rt_map_put(out, oc->in.names[i], t);
    }
}

/* The central difference of L along dir with the largest step of 1e-6,
 * 1e-7, ... 1e-9 that changes no branch. */
static bool difference(OpCheck *oc, Tensor *const *dir, int nsteps, bool *found, Diags *d)
{
    double h = 1e-6;
    *found = false;
    for (int i = 0; i < nsteps && !*found; i++, h /= 10) {
        double l[2];
        KinkKeys k[2] = {{0}, {0}};
        bool ok = true;
        for (int s = 0; s < 2 && ok; s++) {
            TensorMap m;
            moved(oc, dir, s ? -h : h, &m);
            ok = eval_loss(oc, &m, &l[s], &k[s], d);
            rt_map_free(&m);
        }
        if (ok && be_interp_kink_diff(&k[0], &k[1], NULL) < 0) {
            oc->num = (l[0] - l[1]) / (2 * h);
            oc->l0 = fmax(fabs(l[0]), fabs(l[1])) / h;
            *found = true;
        }
        be_interp_kink_free(&k[0]);
        be_interp_kink_free(&k[1]);
        if (!ok)
            return false;
    }
    return true;
}

/* The rule's gradient of L with respect to each operand in oc->wrt. */
static bool by_rule(OpCheck *oc, Diags *d)
{
    Tensor **outs = xcalloc((size_t)oc->grad_g->nouts + 1, sizeof(Tensor *));
    TensorMap none;
    rt_map_init(&none);
    bool ok = be_interp_run(oc->grad_g, &none, &oc->in, &(RunOpts){0, 0}, outs, d);
    for (int i = 0; ok && i < oc->grad_g->nouts; i++) {
        const Output *o = &oc->grad_g->outs[i];
        for (int w = 0; o->kind == OUT_GRAD && w < oc->nwrt; w++)
            if (strcmp(o->target->a.name, oc->wrt[w]) == 0 && !oc->grad[w]) {
                oc->grad[w] = outs[i];
                outs[i] = NULL;
            }
    }
    for (int i = 0; i < oc->grad_g->nouts; i++)
        rt_tensor_free(outs[i]);
    xfree(outs);
    rt_map_free(&none);
    for (int w = 0; w < oc->nwrt; w++)
        ok = ok && oc->grad[w];
    return ok;
}

/* u^T J v by the rule: the sum over operands of <grad x_j, v_j>. */
static double along(const OpCheck *oc, Tensor *const *dir)
{
    double s = 0;
    for (int w = 0; w < oc->nwrt; w++)
        for (int64_t k = 0; k < dir[w]->numel; k++)
            s += rt_get(oc->grad[w], k) * rt_get(dir[w], k);
    return s;
}

/* Random directions, nonzero on a random share `density` of the elements
 * (all of them at 1); the number of nonzero elements. */
static int64_t directions(const OpCheck *oc, uint64_t seed, int t, double density, Tensor **dir)
{
    int64_t support = 0;
    for (int w = 0; w < oc->nwrt; w++) {
        dir[w] = random_like(rt_map_get(&oc->in, oc->wrt[w]), seed, 2 + (uint64_t)w);
        for (int64_t k = 0; k < dir[w]->numel; k++) {
            bool keep = density >= 1 || rt_uniform(seed, 100 + (uint64_t)w, (uint64_t)t, (uint64_t)k) < density;
            if (!keep)
                rt_set(dir[w], k, 0);
            support += keep;
        }
    }
    return support;
}

static void free_dirs(const OpCheck *oc, Tensor **dir)
{
    for (int w = 0; w < oc->nwrt; w++)
        rt_tensor_free(dir[w]);
}

static bool build(OpCheck *oc, Graph *g, Diags *d)
{
    RecipeOpts o = ps_recipe_opts(FN_GRAD);
    o.fuse = false;
    o.wrt = oc->wrt;
    o.nwrt = oc->nwrt;
    oc->grad_g = ps_recipe(g, &o, d);
    o = ps_recipe_opts(FN_LOSS);
    oc->loss_g = oc->grad_g ? ps_recipe(g, &o, d) : NULL;
    return oc->loss_g != NULL;
}

enum { SPARSER = 20 };

/* Compare along a direction whose differences change no branch: every
 * element first with steps down to 1e-9; when each of them crosses a
 * kink (ties of a max, zeros after relu), directions on a random half,
 * quarter, ... of the elements. 1 when the rule disagrees, 0 when it
 * agrees, 2 when every direction crosses a kink, -1 on an error. */
static int compare_op(OpCheck *oc, uint64_t seed, Diags *d)
{
    bool found = false;
    int r = 0;
    double density = 1;
    for (int t = 0; t < SPARSER && !found; t++, density /= 2) {
        Tensor *dir[MAXIN];
        if (directions(oc, seed, t, density, dir) == 0) {
            free_dirs(oc, dir);
            break;
        }
        if (!difference(oc, dir, t ? 1 : 4, &found, d))
            r = -1;
        oc->an = along(oc, dir);
        free_dirs(oc, dir);
        if (r < 0)
            return r;
    }
    double err = fabs(oc->an - oc->num);
    if (!found)
        return 2;
    return !(err <= 1e-4 * fmax(fabs(oc->an), fabs(oc->num)) + 1e-15 * (1 + oc->l0));
}

/* As compare_op, for op n on its values vals. */
static int check_op(const Node *n, Tensor *const *vals, uint64_t seed, double *an, double *num, Diags *d)
{
    OpCheck oc = {0};
    rt_map_init(&oc.in);
    Graph *g = op_graph(n, vals, &oc, seed, d);
    int r = -1;
    if (g && build(&oc, g, d) && by_rule(&oc, d)) {
        r = compare_op(&oc, seed, d);
        *an = oc.an;
        *num = oc.num;
    }
    for (int w = 0; w < oc.nwrt; w++)
        rt_tensor_free(oc.grad[w]);
    ir_graph_free(oc.grad_g);
    ir_graph_free(oc.loss_g);
    ir_graph_free(g);
    rt_map_free(&oc.in);
    return r;
}

static void operand_types(const Node *n, Tensor *const *vals, char *buf, size_t size)
{
    buf[0] = 0;
    for (int j = 0; j < n->nin; j++) {
        char t[96];
        const Tensor *v = vals[n->in[j]->id];
        Shape s = concrete(v);
        snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", j ? ", " : "", ir_type_str(v->dt, &s, t, sizeof t));
    }
}

int ins_vjp_first_wrong(Graph *g, const TensorMap *params, const TensorMap *inputs, const RunOpts *ro,
                        uint64_t seed, Diags *d)
{
    Tensor **vals;
    Diags scratch;
    diags_init(&scratch);
    if (!be_interp_run_all(g, params, inputs, ro, &vals, &scratch)) {
        diags_free(&scratch);
        return -1;
    }
    int wrong = -1, checked = 0, unjudged = 0;
    for (int i = 0; i < g->nnodes && wrong < 0; i++) {
        const Node *n = g->nodes[i];
        if (!checkable(n) || !vals[i])
            continue;
        double an = 0, num = 0;
        int r = check_op(n, vals, seed + (uint64_t)i, &an, &num, &scratch);
        checked += r == 0;
        unjudged += r == 2;
        if (r != 1)
            continue;
        char ops[512];
        operand_types(n, vals, ops, sizeof ops);
        diag_note(d, n->loc,
                  "the gradient rule of %s%s%s%s disagrees with its own finite difference on this batch: "
                  "u^T J v = %.9g by the rule, %.9g by the difference (random u and v, f64; operands %s)",
                  ir_ops[n->op].name, n->label ? " ('" : "", n->label ? n->label : "", n->label ? "')" : "",
                  an, num, ops);
        d->v[d->n - 1].span = ps_loc_span(d, n->loc);
        wrong = i;
    }
    if (wrong < 0)
        diag_note(d, (SrcLoc){0},
                  "the gradient rule of each of the %d differentiable ops agrees with its own finite "
                  "difference on this batch%s",
                  checked, unjudged ? " (some could not be judged: every difference crossed a kink)" : "");
    be_interp_free_values(g, vals);
    diags_free(&scratch);
    return wrong;
}
