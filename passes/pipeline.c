/* The pass pipeline, written out in one place:
 *   verify → specialize(mode) → autodiff → optimizer → simplify → fuse
 * Each pass is one file with the signature bool ps_<name>(Graph *, ..., Diags *). */
#include "passes.h"

#include <string.h>

const char *const ps_pass_names[] = {"lower",     "verify",   "specialize", "autodiff",
                                     "optimizer", "simplify", "fuse",     NULL};

enum { P_LOWER, P_VERIFY, P_SPECIALIZE, P_AUTODIFF, P_OPTIMIZER, P_SIMPLIFY, P_FUSE, P_COUNT };

PipelineOpts ps_default_opts(Mode mode)
{
    PipelineOpts o;
    memset(&o, 0, sizeof o);
    o.mode = mode;
    o.simplify = true;
    return o;
}

int ps_pass_index(const char *name)
{
    for (int i = 0; ps_pass_names[i]; i++)
        if (strcmp(ps_pass_names[i], name) == 0)
            return i;
    return -1;
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

static bool run_pass(Graph *g, int p, const PipelineOpts *o, Diags *d)
{
    switch (p) {
    case P_LOWER:
        return true;
    case P_VERIFY:
        return ps_verify(g, d);
    case P_SPECIALIZE:
        return ps_specialize(g, o->mode, d);
    case P_AUTODIFF:
        return ps_autodiff(g, o->wrt, o->nwrt, d);
    case P_OPTIMIZER:
        return ps_optimizer(g, d);
    case P_SIMPLIFY:
        return ps_simplify(g, d);
    case P_FUSE:
        return ps_fuse(g, d);
    }
    ICE("bad pass index %d", p);
}

static bool pass_enabled(int p, const PipelineOpts *o, int stop)
{
    bool train = o->mode == MODE_TRAIN;
    switch (p) {
    /* Gradients of an inference-mode graph only when asked for explicitly
     * (the C API's MC_MODE_INFER training step, scenario S1). */
    case P_AUTODIFF:
        return o->grads || o->update || (train && stop >= P_AUTODIFF);
    case P_OPTIMIZER:
        return o->update || (train && stop >= P_OPTIMIZER);
    case P_SIMPLIFY:
        return o->simplify || stop >= P_SIMPLIFY;
    case P_FUSE:
        return o->fuse || stop >= P_FUSE;
    default:
        return true;
    }
}

bool ps_run_pipeline(Graph *g, const PipelineOpts *o, Diags *d)
{
    int stop = P_COUNT - 1;
    if (o->stop_after) {
        stop = ps_pass_index(o->stop_after);
        if (stop < 0) {
            diag_error(d, (SrcLoc){0}, "unknown pass '%s'", o->stop_after);
            return false;
        }
    }
    for (int p = 0; p <= stop; p++) {
        if (!pass_enabled(p, o, o->stop_after ? stop : -1))
            continue;
        double t0 = mc_now_ms();
        bool ok = run_pass(g, p, o, d);
        timer_add(o->timer, ps_pass_names[p], mc_now_ms() - t0);
        if (!ok || d->nerrors)
            return false;
    }
    return true;
}

bool ps_run_one(Graph *g, const char *name, const PipelineOpts *o, Diags *d)
{
    int p = ps_pass_index(name);
    if (p < 0) {
        diag_error(d, (SrcLoc){0}, "unknown pass '%s'", name);
        return false;
    }
    double t0 = mc_now_ms();
    bool ok = run_pass(g, p, o, d);
    timer_add(o->timer, ps_pass_names[p], mc_now_ms() - t0);
    return ok && !d->nerrors;
}
