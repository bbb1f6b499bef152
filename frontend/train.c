/* The `train { ... }` block: optimizer, batch size, epochs, clipping,
 * weight decay, learning-rate schedule and warm-up, freeze patterns, seed,
 * sync_batchnorm and callbacks, checked and stored: the update rule in the
 * graph's TrainConfig, the run settings (batch, epochs, schedule, seed,
 * callbacks) in the RunSettings beside it. */
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

/* exponential(decay_steps, decay_rate, staircase=false): Keras's
 * ExponentialDecay, per step */
static bool exponential(FeCtx *c, const Expr *e, RunSettings *t)
{
    static const ParamSpec spec[] = {
        {"decay_steps", A_INT, true}, {"decay_rate", A_NUM, true}, {"staircase", A_BOOL, false}};
    Expr call = *e;
    if (e->k != E_CALL)
        call.nargs = 0;
    CallArgs a;
    int64_t steps;
    t->sched = SCHED_EXPONENTIAL;
    if (!fe_bind_args(c, &call, "exponential", spec, 3, &a) ||
        !fe_arg_int(c, &a, 0, 1, 1, INT32_MAX, &steps) || !positive_arg(c, &a, 1, 0.96, &t->decay_rate) ||
        !fe_arg_bool(c, &a, 2, false, &t->staircase))
        return false;
    t->decay_steps = (int)steps;
    return true;
}

/* schedule = constant | cosine | step(every=1, gamma=0.1)
 *          | exponential(decay_steps, decay_rate, staircase=false) */
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
    if (w && strcmp(w, "exponential") == 0)
        return exponential(c, e, t);
    fe_error(c, e->start, w ? e->span : 1,
             "unknown schedule: expected constant, cosine, step(every=..., gamma=...) or "
             "exponential(decay_steps=..., decay_rate=...)");
    return false;
}

static const char *const modes[] = {"auto", "min", "max", NULL};
static const char *const callback_names[] = {"early_stopping", "checkpoint", "reduce_lr_on_plateau", NULL};

/* A monitored quantity: a string, copied into the graph's arena (its
 * name is checked against the model's metrics by fe_check_callbacks). */
static bool monitor_arg(FeCtx *c, CallArgs *a, int i, const char **out)
{
    const char *s;
    if (!fe_arg_str(c, a, i, &s))
        return false;
    if (s)
        *out = arena_strdup(c->g->arena, s);
    return true;
}

static bool mode_arg(FeCtx *c, CallArgs *a, int i, MonitorMode *out)
{
    int k;
    if (!fe_arg_word(c, a, i, modes, 0, &k))
        return false;
    *out = (MonitorMode)k;
    return true;
}

static bool nonneg_arg(FeCtx *c, CallArgs *a, int i, double def, double *out)
{
    if (!fe_arg_num(c, a, i, def, out))
        return false;
    if (!(*out >= 0)) {
        char b[32];
        fe_error(c, fe_arg_loc(a, i), 1, "argument '%s' of %s() must be at least 0, got %g",
                 fe_param_name(&a->spec[i], b, sizeof b), a->fn, *out);
        return false;
    }
    return true;
}

static const ParamSpec es_spec[] = {{"monitor", A_STR, false},
                                    {"min_delta", A_NUM, false},
                                    {"patience", A_INT, false},
                                    {"mode", A_WORD, false},
                                    {"restore_best_weights|restore_best", A_BOOL, false}};
static const ParamSpec ckpt_spec[] = {{"path|filepath", A_STR, true},
                                      {"monitor", A_STR, false},
                                      {"save_best_only|best_only", A_BOOL, false},
                                      {"mode", A_WORD, false}};
static const ParamSpec rlr_spec[] = {{"monitor", A_STR, false},   {"factor", A_NUM, false},
                                     {"patience", A_INT, false},  {"mode", A_WORD, false},
                                     {"min_delta", A_NUM, false}, {"cooldown", A_INT, false},
                                     {"min_lr", A_NUM, false}};

/* early_stopping(monitor="val_loss", min_delta=0, patience=0, mode="auto",
 *                restore_best_weights=false) */
static bool early_stopping(FeCtx *c, const Expr *call, RunSettings *r)
{
    CallArgs a;
    int64_t patience;
    ir_es_defaults(r);
    bool ok = fe_bind_args(c, call, "early_stopping", es_spec, ARRAY_LEN(es_spec), &a) &&
              monitor_arg(c, &a, 0, &r->es.monitor) && nonneg_arg(c, &a, 1, 0, &r->es.min_delta) &&
              fe_arg_int(c, &a, 2, 0, 0, INT32_MAX, &patience) && mode_arg(c, &a, 3, &r->es.mode) &&
              fe_arg_bool(c, &a, 4, false, &r->es.restore_best);
    r->es.patience = ok ? (int)patience : 0;
    return ok;
}

/* checkpoint(path, monitor="val_loss", save_best_only=false, mode="auto") */
static bool checkpoint(FeCtx *c, const Expr *call, RunSettings *r)
{
    CallArgs a;
    const char *path;
    ir_ckpt_defaults(r);
    bool ok = fe_bind_args(c, call, "checkpoint", ckpt_spec, ARRAY_LEN(ckpt_spec), &a) &&
              fe_arg_str(c, &a, 0, &path) && monitor_arg(c, &a, 1, &r->ckpt.monitor) &&
              fe_arg_bool(c, &a, 2, false, &r->ckpt.best_only) && mode_arg(c, &a, 3, &r->ckpt.mode);
    if (ok && !*path) {
        fe_error(c, fe_arg_loc(&a, 0), 1, "argument 'path' of checkpoint() must not be empty");
        ok = false;
    }
    if (ok)
        r->ckpt.path = arena_strdup(c->g->arena, path);
    return ok;
}

/* reduce_lr_on_plateau(monitor="val_loss", factor=0.1, patience=10,
 *                      mode="auto", min_delta=1e-4, cooldown=0, min_lr=0) */
static bool reduce_lr_on_plateau(FeCtx *c, const Expr *call, RunSettings *r)
{
    CallArgs a;
    int64_t patience, cooldown;
    ir_rlr_defaults(r);
    bool ok = fe_bind_args(c, call, "reduce_lr_on_plateau", rlr_spec, ARRAY_LEN(rlr_spec), &a) &&
              monitor_arg(c, &a, 0, &r->rlr.monitor) &&
              frac_arg(c, &a, 1, 0.1, 0, 1, true, &r->rlr.factor) &&
              fe_arg_int(c, &a, 2, 10, 0, INT32_MAX, &patience) && mode_arg(c, &a, 3, &r->rlr.mode) &&
              nonneg_arg(c, &a, 4, 1e-4, &r->rlr.min_delta) &&
              fe_arg_int(c, &a, 5, 0, 0, INT32_MAX, &cooldown) && nonneg_arg(c, &a, 6, 0, &r->rlr.min_lr);
    r->rlr.patience = ok ? (int)patience : 10;
    r->rlr.cooldown = ok ? (int)cooldown : 0;
    return ok;
}

/* callbacks = [early_stopping(...), checkpoint(...), reduce_lr_on_plateau(...)]
 * (or one of them), each at most once. */
static bool callbacks(FeCtx *c, const TrainItem *it, RunSettings *r)
{
    const Expr *e = it->val;
    const Expr *one[1] = {e};
    const Expr *const *items = e->k == E_LIST ? (const Expr *const *)e->items : one;
    int n = e->k == E_LIST ? e->nitems : 1;
    const Expr *seen[3] = {NULL, NULL, NULL};
    bool ok = true;
    for (int i = 0; i < n; i++) {
        const Expr *x = items[i];
        int k = -1;
        for (int j = 0; (x->k == E_CALL || x->k == E_NAME) && callback_names[j]; j++)
            if (strcmp(x->str, callback_names[j]) == 0)
                k = j;
        if (k < 0) {
            const char *hint = x->k == E_CALL || x->k == E_NAME
                                   ? fe_closest(x->str, callback_names, 3)
                                   : NULL;
            if (hint)
                fe_error(c, x->start, x->k == E_NAME ? x->span : (int)strlen(x->str),
                         "unknown callback '%s'; did you mean '%s'?", x->str, hint);
            else
                fe_error(c, x->start, x->k == E_NAME ? x->span : x->str ? (int)strlen(x->str) : 1,
                         "unknown callback%s%s%s: expected early_stopping(...), checkpoint(...) or "
                         "reduce_lr_on_plateau(...)",
                         x->str ? " '" : "", x->str ? x->str : "", x->str ? "'" : "");
            ok = false;
            continue;
        }
        if (seen[k]) {
            fe_error(c, x->start, (int)strlen(x->str), "callback '%s' is given twice", x->str);
            fe_note(c, seen[k]->start, (int)strlen(x->str), "first given here");
            ok = false;
            continue;
        }
        seen[k] = x;
        Expr call = *x;
        if (x->k != E_CALL)
            call.nargs = 0;
        ok &= k == 0 ? early_stopping(c, &call, r) : k == 1 ? checkpoint(c, &call, r)
                                                             : reduce_lr_on_plateau(c, &call, r);
    }
    return ok;
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
                                       "weight_decay", "schedule", "freeze", "seed", "sync_batchnorm",
                                       "warmup", "callbacks"};

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
    if (strcmp(k, "warmup") == 0) {
        bool ok = item_int(c, it, 0, INT32_MAX, &v);
        c->run->warmup = (int)v;
        return ok;
    }
    if (strcmp(k, "callbacks") == 0)
        return callbacks(c, it, c->run);
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

/* The callbacks' monitors name the loss or a metric of the model, maybe
 * with val_: checked once every metric statement is lowered. */
static void check_monitor(FeCtx *c, const Expr *call, int pos)
{
    const Expr *v = NULL;
    for (int k = 0; k < call->nargs; k++)
        if ((!call->args[k].kw && k == pos) ||
            (call->args[k].kw && strcmp(call->args[k].kw, "monitor") == 0))
            v = call->args[k].val;
    if (!v || v->k != E_STR)
        return;
    const char *mon = v->str;
    const char *name = strncmp(mon, "val_", 4) == 0 ? mon + 4 : mon;
    if (strcmp(name, "loss") == 0)
        return;
    StrBuf b;
    sb_init(&b);
    sb_puts(&b, "loss, val_loss");
    for (int k = 0; k < c->g->nouts; k++) {
        const Output *o = &c->g->outs[k];
        if (o->kind != OUT_METRIC)
            continue;
        if (strcmp(o->name, name) == 0) {
            sb_free(&b);
            return;
        }
        sb_printf(&b, ", %s, val_%s", o->name, o->name);
    }
    fe_error(c, v->start, v->span, "unknown monitor \"%s\": expected %s", mon, b.s);
    sb_free(&b);
}

void fe_check_callbacks(FeCtx *c, const Stmt *s)
{
    for (int i = 0; i < s->nitems; i++) {
        const TrainItem *it = &s->items[i];
        if (strcmp(it->key, "callbacks") != 0)
            continue;
        const Expr *e = it->val;
        const Expr *one[1] = {e};
        const Expr *const *items = e->k == E_LIST ? (const Expr *const *)e->items : one;
        int n = e->k == E_LIST ? e->nitems : 1;
        for (int k = 0; k < n; k++) {
            const Expr *x = items[k];
            if (x->k != E_CALL)
                continue;
            if (strcmp(x->str, "early_stopping") == 0)
                check_monitor(c, x, 0);
            else if (strcmp(x->str, "checkpoint") == 0)
                check_monitor(c, x, 1);
            else if (strcmp(x->str, "reduce_lr_on_plateau") == 0)
                check_monitor(c, x, 0);
        }
    }
}
