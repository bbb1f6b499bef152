/* The `train { ... }` block: optimizer, batch size, epochs, clipping,
 * weight decay, learning-rate schedule, freeze patterns, seed and
 * sync_batchnorm, checked
 * and stored: the update rule in the graph's TrainConfig, the run settings
 * (batch, epochs, schedule, seed) in the RunSettings beside it. */
#include "fe.h"

#include <string.h>

static bool item_num(FeCtx *c, const TrainItem *it, double lo, bool lo_open, double *out)
{
    Val v;
    int errs = c->d->nerrors;
    bool ok = (it->val->k == E_NUM || it->val->k == E_UNARY || it->val->k == E_BINARY ||
               it->val->k == E_NAME) &&
              fe_const_num(c, it->val, &v);
    if (!ok) {
        if (c->d->nerrors == errs)
            fe_error(c, it->val->start, 1, "train setting '%s' must be a number", it->key);
        return false;
    }
    if (v.num < lo || (lo_open && v.num == lo)) {
        fe_error(c, it->val->start, 1, "train setting '%s' must be %s %g, got %g", it->key,
                 lo_open ? "greater than" : "at least", lo, v.num);
        return false;
    }
    *out = v.num;
    return true;
}

static bool item_int(FeCtx *c, const TrainItem *it, int64_t lo, int64_t hi, int64_t *out)
{
    Val v;
    int errs = c->d->nerrors;
    bool ok = (it->val->k == E_NUM || it->val->k == E_UNARY || it->val->k == E_BINARY ||
               it->val->k == E_NAME) &&
              fe_const_num(c, it->val, &v) && v.is_int;
    if (!ok) {
        if (c->d->nerrors == errs)
            fe_error(c, it->val->start, 1, "train setting '%s' must be an integer", it->key);
        return false;
    }
    if (v.i < lo || v.i > hi) {
        if (v.i < lo)
            fe_error(c, it->val->start, 1, "train setting '%s' must be at least %lld, got %lld",
                     it->key, (long long)lo, (long long)v.i);
        else
            fe_error(c, it->val->start, 1, "train setting '%s' must be at most %lld, got %lld",
                     it->key, (long long)hi, (long long)v.i);
        return false;
    }
    *out = v.i;
    return true;
}

/* A number in [lo, hi) given as an argument, e.g. momentum=0.9. */
static bool frac_arg(FeCtx *c, CallArgs *a, int i, double def, double lo, double hi, bool open_lo,
                     double *out)
{
    if (!fe_arg_num(c, a, i, def, out))
        return false;
    if (*out < lo || *out >= hi || (open_lo && *out == lo)) {
        char b[32];
        fe_error(c, fe_arg_loc(a, i), 1, "argument '%s' of %s() must be in %s%g, %g), got %g",
                 fe_param_name(&a->spec[i], b, sizeof b), a->fn, open_lo ? "(" : "[", lo, hi, *out);
        return false;
    }
    return true;
}

static bool positive_arg(FeCtx *c, CallArgs *a, int i, double def, double *out)
{
    if (!fe_arg_num(c, a, i, def, out))
        return false;
    if (!(*out > 0)) {
        char b[32];
        fe_error(c, fe_arg_loc(a, i), 1, "argument '%s' of %s() must be positive, got %g",
                 fe_param_name(&a->spec[i], b, sizeof b), a->fn, *out);
        return false;
    }
    return true;
}

static const char *const optimizers[] = {"sgd", "adam", "rmsprop", NULL};

/* optimizer = sgd(lr, momentum, nesterov) | adam(lr, beta1, beta2, eps)
 *           | rmsprop(lr, rho, eps) */
static bool optimizer(FeCtx *c, const TrainItem *it, TrainConfig *t)
{
    static const ParamSpec sgd[] = {
        {"lr|learning_rate", A_NUM, false}, {"momentum", A_NUM, false}, {"nesterov", A_BOOL, false}};
    static const ParamSpec adam[] = {{"lr|learning_rate", A_NUM, false},
                                     {"beta1|beta_1", A_NUM, false},
                                     {"beta2|beta_2", A_NUM, false},
                                     {"eps|epsilon", A_NUM, false}};
    static const ParamSpec rms[] = {
        {"lr|learning_rate", A_NUM, false}, {"rho", A_NUM, false}, {"eps|epsilon", A_NUM, false}};
    const Expr *e = it->val;
    int k = -1;
    for (int i = 0; (e->k == E_CALL || e->k == E_NAME || e->k == E_STR) && optimizers[i]; i++)
        if (strcmp(e->str, optimizers[i]) == 0)
            k = i;
    if (k < 0) {
        fe_error(c, e->start, e->k == E_BINARY ? 1 : e->span,
                 "unknown optimizer%s%s%s: expected sgd(...), adam(...) or rmsprop(...)",
                 e->str ? " '" : "", e->str ? e->str : "", e->str ? "'" : "");
        return false;
    }
    Expr call = *e;
    if (e->k != E_CALL)
        call.nargs = 0;
    CallArgs a;
    t->opt = k == 0 ? OPT_SGD : k == 1 ? OPT_ADAM : OPT_RMSPROP;
    switch (t->opt) {
    case OPT_SGD:
        return fe_bind_args(c, &call, "sgd", sgd, 3, &a) && positive_arg(c, &a, 0, 0.01, &t->lr) &&
               frac_arg(c, &a, 1, 0, 0, 1, false, &t->momentum) &&
               fe_arg_bool(c, &a, 2, false, &t->nesterov);
    case OPT_ADAM:
        return fe_bind_args(c, &call, "adam", adam, 4, &a) &&
               positive_arg(c, &a, 0, 0.001, &t->lr) &&
               frac_arg(c, &a, 1, 0.9, 0, 1, false, &t->beta1) &&
               frac_arg(c, &a, 2, 0.999, 0, 1, false, &t->beta2) &&
               positive_arg(c, &a, 3, 1e-7, &t->eps);
    case OPT_RMSPROP:
        return fe_bind_args(c, &call, "rmsprop", rms, 3, &a) &&
               positive_arg(c, &a, 0, 0.001, &t->lr) &&
               frac_arg(c, &a, 1, 0.9, 0, 1, false, &t->rho) && positive_arg(c, &a, 2, 1e-7, &t->eps);
    }
    return false;
}

/* schedule = constant | cosine | step(every=1, gamma=0.1) */
static bool schedule(FeCtx *c, const TrainItem *it, RunSettings *t)
{
    static const ParamSpec step[] = {{"every", A_INT, false}, {"gamma", A_NUM, false}};
    const Expr *e = it->val;
    const char *w = e->k == E_CALL || e->k == E_NAME || e->k == E_STR ? e->str : NULL;
    if (w && e->k != E_CALL && strcmp(w, "constant") == 0) {
        t->sched = SCHED_CONSTANT;
        return true;
    }
    if (w && e->k != E_CALL && strcmp(w, "cosine") == 0) {
        t->sched = SCHED_COSINE;
        return true;
    }
    if (w && strcmp(w, "step") == 0) {
        Expr call = *e;
        if (e->k != E_CALL)
            call.nargs = 0;
        CallArgs a;
        int64_t every;
        t->sched = SCHED_STEP;
        if (!fe_bind_args(c, &call, "step", step, 2, &a) ||
            !fe_arg_int(c, &a, 0, 1, 1, INT32_MAX, &every) ||
            !positive_arg(c, &a, 1, 0.1, &t->sched_gamma))
            return false;
        t->sched_step = (int)every;
        return true;
    }
    fe_error(c, e->start, w ? e->span : 1,
             "unknown schedule: expected constant, cosine or step(every=..., gamma=...)");
    return false;
}

/* freeze = ["conv*", "batchnorm*"] (or one string) */
static bool freeze(FeCtx *c, const TrainItem *it, TrainConfig *t)
{
    const Expr *e = it->val;
    const Expr *one[1] = {e};
    const Expr *const *items = e->k == E_LIST ? (const Expr *const *)e->items : one;
    int n = e->k == E_LIST ? e->nitems : 1;
    const char **pats = arena_alloc(c->g->arena, (size_t)(n ? n : 1) * sizeof(char *));
    for (int i = 0; i < n; i++) {
        if (items[i]->k != E_STR) {
            fe_error(c, items[i]->start, 1,
                     "freeze patterns must be strings such as \"conv2d*\"");
            return false;
        }
        pats[i] = arena_strdup(c->g->arena, items[i]->str);
    }
    t->freeze = pats;
    t->nfreeze = n;
    return true;
}

static const char *const settings[] = {"optimizer", "batch", "epochs", "clip_value", "clip_norm",
                                       "weight_decay", "schedule", "freeze", "seed", "sync_batchnorm"};

/* sync_batchnorm = true | false. Lowering the layers read it already
 * (fe_train_sync_batchnorm): here it is only checked. */
static bool item_bool(FeCtx *c, const TrainItem *it)
{
    if (it->val->k == E_BOOL)
        return true;
    fe_error(c, it->val->start, 1, "train setting '%s' must be true or false", it->key);
    return false;
}

bool fe_train_sync_batchnorm(const Stmt *s)
{
    for (int i = 0; s && i < s->nitems; i++)
        if (strcmp(s->items[i].key, "sync_batchnorm") == 0)
            return s->items[i].val->k == E_BOOL && s->items[i].val->ival != 0;
    return false;
}

static bool setting(FeCtx *c, const TrainItem *it, TrainConfig *t)
{
    const char *k = it->key;
    int64_t v;
    if (strcmp(k, "optimizer") == 0)
        return optimizer(c, it, t);
    if (strcmp(k, "batch") == 0 || strcmp(k, "batch_size") == 0) {
        bool ok = item_int(c, it, 1, INT32_MAX, &v);
        c->run->batch = (int)v;
        return ok;
    }
    if (strcmp(k, "epochs") == 0) {
        bool ok = item_int(c, it, 1, INT32_MAX, &v);
        c->run->epochs = (int)v;
        return ok;
    }
    if (strcmp(k, "clip_value") == 0 || strcmp(k, "clipvalue") == 0)
        return item_num(c, it, 0, false, &t->clip_value);
    if (strcmp(k, "clip_norm") == 0 || strcmp(k, "clipnorm") == 0)
        return item_num(c, it, 0, false, &t->clip_norm);
    if (strcmp(k, "weight_decay") == 0)
        return item_num(c, it, 0, false, &t->weight_decay);
    if (strcmp(k, "schedule") == 0)
        return schedule(c, it, c->run);
    if (strcmp(k, "freeze") == 0)
        return freeze(c, it, t);
    if (strcmp(k, "seed") == 0) {
        bool ok = item_int(c, it, 0, INT64_MAX, &v);
        c->run->seed = (uint64_t)v;
        return ok;
    }
    if (strcmp(k, "sync_batchnorm") == 0)
        return item_bool(c, it);
    const char *hint = fe_closest(k, settings, ARRAY_LEN(settings));
    if (hint)
        fe_error(c, it->loc, it->span, "unknown train setting '%s'; did you mean '%s'?", k, hint);
    else
        fe_error(c, it->loc, it->span, "unknown train setting '%s'", k);
    return false;
}

static const char *canonical_key(const char *k)
{
    if (strcmp(k, "batch_size") == 0)
        return "batch";
    if (strcmp(k, "clipvalue") == 0)
        return "clip_value";
    if (strcmp(k, "clipnorm") == 0)
        return "clip_norm";
    return k;
}

bool fe_train_block(FeCtx *c, const Stmt *s)
{
    TrainConfig *t = &c->g->train;
    bool ok = true;
    for (int i = 0; i < s->nitems; i++) {
        const TrainItem *it = &s->items[i];
        for (int j = 0; j < i; j++)
            if (strcmp(canonical_key(s->items[j].key), canonical_key(it->key)) == 0) {
                fe_error(c, it->loc, it->span, "train setting '%s' is given twice", it->key);
                fe_note(c, s->items[j].loc, s->items[j].span, "first given here");
                ok = false;
                break;
            }
        ok &= setting(c, it, t);
    }
    c->g->has_train = true;
    return ok;
}

void fe_check_freeze(FeCtx *c, const Stmt *s)
{
    for (int i = 0; i < s->nitems; i++) {
        const TrainItem *it = &s->items[i];
        if (strcmp(it->key, "freeze") != 0)
            continue;
        const Expr *e = it->val;
        const Expr *one[1] = {e};
        const Expr *const *items = e->k == E_LIST ? (const Expr *const *)e->items : one;
        int n = e->k == E_LIST ? e->nitems : 1;
        for (int k = 0; k < n; k++) {
            if (items[k]->k != E_STR)
                continue;
            bool hit = false;
            for (int j = 0; j < c->g->nnodes && !hit; j++) {
                Node *p = c->g->nodes[j];
                hit = p->op == OP_PARAM && ir_glob_match(items[k]->str, p->a.name);
            }
            if (!hit)
                fe_warning(c, items[k]->loc, items[k]->span,
                           "freeze pattern \"%s\" matches no parameter", items[k]->str);
        }
    }
}
