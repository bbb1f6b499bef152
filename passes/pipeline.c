/* The named recipes: every compiled function written out once, as a
 * straight list of passes (QBE's func()). Each pass is one file with the
 * signature bool ps_<name>(Graph *, ..., Diags *); "outputs" keeps the
 * outputs the function returns and drops what only the others need. */
#include "passes.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    P_LOWER, P_VERIFY, P_SPECIALIZE, P_AUTODIFF, P_GRAD_INPUTS, P_OPTIMIZER, P_OUTPUTS, P_SIMPLIFY, P_FUSE, P_END
} Pass;

const char *const ps_pass_names[] = {"lower",     "verify",  "specialize", "autodiff", "grad_inputs",
                                     "optimizer", "outputs", "simplify",   "fuse",     NULL};

const char *const ps_fn_names[] = {"train_step", "eval",       "predict", "grad", "loss",
                                   "numerics",   "train_grad", "apply",   NULL};

/* The recipes. "lower" is the frontend's graph: every recipe starts from it. */
static const Pass recipe_train_step[] = {P_LOWER, P_VERIFY, P_SPECIALIZE, P_AUTODIFF, P_OPTIMIZER,
                                         P_OUTPUTS, P_SIMPLIFY, P_FUSE, P_END};
static const Pass recipe_eval[] = {P_LOWER, P_VERIFY, P_SPECIALIZE, P_OUTPUTS, P_SIMPLIFY, P_FUSE, P_END};
static const Pass recipe_grad[] = {P_LOWER, P_VERIFY, P_SPECIALIZE, P_AUTODIFF, P_OUTPUTS, P_SIMPLIFY, P_FUSE, P_END};
static const Pass recipe_loss[] = {P_LOWER, P_VERIFY, P_SPECIALIZE, P_OUTPUTS, P_END};
static const Pass recipe_numerics[] = {P_LOWER, P_VERIFY, P_SPECIALIZE, P_AUTODIFF, P_OPTIMIZER, P_END};
/* A data-parallel step is train_grad on each process's share of the batch,
 * the gradients summed over the processes, then apply on every process. */
static const Pass recipe_train_grad[] = {P_LOWER, P_VERIFY, P_SPECIALIZE, P_AUTODIFF, P_OUTPUTS, P_SIMPLIFY, P_FUSE, P_END};
static const Pass recipe_apply[] = {P_LOWER,   P_VERIFY,  P_SPECIALIZE, P_AUTODIFF, P_GRAD_INPUTS,
                                    P_OPTIMIZER, P_OUTPUTS, P_SIMPLIFY,   P_FUSE,     P_END};

static const Pass *const recipes[FN_COUNT] = {
    [FN_TRAIN_STEP] = recipe_train_step, [FN_EVAL] = recipe_eval,  [FN_PREDICT] = recipe_eval,
    [FN_GRAD] = recipe_grad,             [FN_LOSS] = recipe_loss, [FN_NUMERICS] = recipe_numerics,
    [FN_TRAIN_GRAD] = recipe_train_grad, [FN_APPLY] = recipe_apply,
};

int ps_pass_index(const char *name)
{
    for (int i = 0; ps_pass_names[i]; i++)
        if (strcmp(ps_pass_names[i], name) == 0)
            return i;
    return -1;
}

int ps_fn_index(const char *name)
{
    for (int i = 0; ps_fn_names[i]; i++)
        if (strcmp(ps_fn_names[i], name) == 0)
            return i;
    return -1;
}

RecipeOpts ps_recipe_opts(FnKind fn)
{
    RecipeOpts o;
    memset(&o, 0, sizeof o);
    o.fn = fn;
    o.mode = fn == FN_EVAL || fn == FN_PREDICT ? MODE_INFER : MODE_TRAIN;
    o.fuse = fn != FN_LOSS && fn != FN_NUMERICS;
    o.update = true;
    return o;
}

static bool runs(Pass p, const RecipeOpts *o)
{
    return p != P_FUSE || o->fuse;
}

const char *ps_recipe_pass_list(const RecipeOpts *o)
{
    static char buf[256];
    buf[0] = 0;
    for (const Pass *p = recipes[o->fn]; *p != P_END; p++)
        if (runs(*p, o))
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", buf[0] ? ", " : "", ps_pass_names[*p]);
    return buf;
}

bool ps_verify(Graph *g, Diags *d)
{
    return ir_verify(g, d);
}

bool ps_is_frozen(const Graph *g, const Node *p)
{
    if (p->op != OP_PARAM)
        return true;
    if (!p->a.trainable || p->a.role != ROLE_WEIGHT)
        return true;
    for (int i = 0; i < g->train.nfreeze; i++)
        if (ir_glob_match(g->train.freeze[i], p->a.name))
            return true;
    return false;
}

static bool has_out(const Graph *g, OutKind k)
{
    for (int i = 0; i < g->nouts; i++)
        if (g->outs[i].kind == k)
            return true;
    return false;
}

static bool is_telemetry(const Output *o)
{
    return o->kind == OUT_METRIC && o->name && strncmp(o->name, "telemetry.", 10) == 0;
}

/* Which outputs a function returns. */
static bool keeps(FnKind fn, const Output *o)
{
    OutKind k = o->kind;
    switch (fn) {
    case FN_TRAIN_STEP:
        return k == OUT_LOSS || k == OUT_METRIC || k == OUT_UPDATE;
    case FN_EVAL:
        return k == OUT_LOSS || k == OUT_METRIC || k == OUT_VALUE;
    case FN_PREDICT:
        return k == OUT_VALUE;
    case FN_GRAD:
        return k == OUT_LOSS || k == OUT_GRAD;
    case FN_LOSS:
        return k == OUT_LOSS;
    case FN_TRAIN_GRAD:
        return k == OUT_LOSS || k == OUT_METRIC || k == OUT_UPDATE || k == OUT_GRAD;
    case FN_APPLY: /* the optimizer's updates; state such as batchnorm's is train_grad's */
        return (k == OUT_UPDATE && o->target->a.role != ROLE_STATE) || is_telemetry(o);
    default:
        return true;
    }
}

/* Prediction takes only the inputs its values read: no labels. The
 * update (apply) takes no data at all, and only the parameters it reads
 * or writes. */
static void drop_unused_leaves(Graph *g, bool params)
{
    int *uses = ir_use_counts(g), k = 0;
    for (int i = 0; i < g->nouts; i++)
        if (g->outs[i].target)
            uses[g->outs[i].target->id]++;
    for (int i = 0; i < g->nnodes; i++) {
        Op op = g->nodes[i]->op;
        if ((op != OP_INPUT && (op != OP_PARAM || !params)) || uses[i] > 0)
            g->nodes[k++] = g->nodes[i];
    }
    g->nnodes = k;
    for (int i = 0; i < k; i++)
        g->nodes[i]->id = i;
    xfree(uses);
}

static bool ps_outputs(Graph *g, FnKind fn, Diags *d)
{
    int k = 0;
    for (int i = 0; i < g->nouts; i++)
        if (keeps(fn, &g->outs[i]))
            g->outs[k++] = g->outs[i];
    g->nouts = k;
    if (k == 0) {
        SrcLoc where = {g->nfiles ? diags_intern_file(d, g->files[0]) : NULL, 0, 0};
        diag_error(d, where, "model '%s' has no %s for function '%s'", g->name ? g->name : "?",
                   fn == FN_PREDICT ? "output values" : "loss", ps_fn_names[fn]);
        return false;
    }
    ir_remove_dead(g);
    if (fn == FN_PREDICT || fn == FN_APPLY)
        drop_unused_leaves(g, fn == FN_APPLY);
    return true;
}

/* True when the optimizer has run: a weight has an update. */
static bool has_weight_update(const Graph *g)
{
    for (int i = 0; i < g->nouts; i++)
        if (g->outs[i].kind == OUT_UPDATE && g->outs[i].target->a.role == ROLE_WEIGHT)
            return true;
    return false;
}

/* A graph read back from IR text may already hold gradients or updates:
 * then autodiff or the optimizer has nothing left to do. The NaN search
 * re-runs models without a loss too (forward values only). */
static bool run_pass(Graph *g, Pass p, const RecipeOpts *o, Diags *d)
{
    switch (p) {
    case P_LOWER:
        return true;
    case P_VERIFY:
        return ps_verify(g, d);
    case P_SPECIALIZE:
        return ps_specialize(g, o->mode, d);
    case P_AUTODIFF:
        if (has_out(g, OUT_GRAD) || (o->fn == FN_NUMERICS && !has_out(g, OUT_LOSS)))
            return true;
        return ps_autodiff(g, o->wrt, o->nwrt, d);
    case P_GRAD_INPUTS:
        return ps_grad_inputs(g, d);
    case P_OPTIMIZER:
        if (has_weight_update(g) || (o->fn == FN_NUMERICS && (!o->update || o->mode != MODE_TRAIN)))
            return true;
        return ps_optimizer(g, d);
    case P_OUTPUTS:
        return ps_outputs(g, o->fn, d);
    case P_SIMPLIFY:
        return ps_simplify(g, d);
    case P_FUSE:
        return ps_fuse(g, d);
    case P_END:
        break;
    }
    ICE("bad pass %d", p);
}

/* The verifier runs after the passes that rewrite the graph wholesale. */
static bool rewrites(Pass p)
{
    return p == P_SIMPLIFY || p == P_FUSE;
}

/* The pass of o's recipe named `name`, or NULL with a diagnostic. */
static const Pass *find_pass(const RecipeOpts *o, const char *name, Diags *d)
{
    for (const Pass *p = recipes[o->fn]; *p != P_END; p++)
        if (runs(*p, o) && strcmp(ps_pass_names[*p], name) == 0)
            return p;
    diag_error(d, (SrcLoc){0}, "function '%s' has no pass '%s' (its passes: %s)", ps_fn_names[o->fn], name,
               ps_recipe_pass_list(o));
    return NULL;
}

/* Passes [from, end of recipe], stopping after `stop` when given. */
static bool run_passes(Graph *g, const Pass *from, const Pass *stop, const RecipeOpts *o, Diags *d)
{
    int errors = d->nerrors;
    for (const Pass *p = from; *p != P_END; p++) {
        if (!runs(*p, o))
            continue;
        double t0 = mc_now_ms();
        bool ok = run_pass(g, *p, o, d) && (!rewrites(*p) || ps_verify(g, d));
        if (*p != P_LOWER)
            timer_add(o->timer, ps_pass_names[*p], mc_now_ms() - t0);
        if (!ok || d->nerrors > errors)
            return false;
        if (p == stop)
            break;
    }
    return true;
}

Graph *ps_recipe(const Graph *src, const RecipeOpts *o, Diags *d)
{
    const Pass *stop = NULL;
    if (o->stop_after && !(stop = find_pass(o, o->stop_after, d)))
        return NULL;
    Graph *g = o->f64 ? ps_to_f64((Graph *)src) : ir_clone((Graph *)src);
    if (o->origin)
        for (int i = 0; i < g->nnodes; i++)
            g->nodes[i]->aux = (void *)(intptr_t)(i + 1);
    if (!run_passes(g, recipes[o->fn], stop, o, d)) {
        ir_graph_free(g);
        return NULL;
    }
    return g;
}

bool ps_recipe_resume(Graph *g, const RecipeOpts *o, const char *from, Diags *d)
{
    const Pass *start = find_pass(o, from, d), *stop = NULL;
    if (!start || (o->stop_after && !(stop = find_pass(o, o->stop_after, d))))
        return false;
    if (stop && stop < start) {
        diag_error(d, (SrcLoc){0}, "function '%s': pass '%s' comes before '%s'", ps_fn_names[o->fn],
                   o->stop_after, from);
        return false;
    }
    return run_passes(g, start, stop, o, d);
}

bool ps_run_one(Graph *g, const char *name, const RecipeOpts *o, Diags *d)
{
    int p = ps_pass_index(name);
    if (p < 0) {
        diag_error(d, (SrcLoc){0}, "unknown pass '%s'", name);
        return false;
    }
    double t0 = mc_now_ms();
    bool ok = run_pass(g, (Pass)p, o, d);
    timer_add(o->timer, ps_pass_names[p], mc_now_ms() - t0);
    return ok && !d->nerrors;
}
