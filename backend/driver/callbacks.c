/* The learning-rate schedule (train { schedule, warmup }) and the training
 * callbacks (train { callbacks }: early_stopping, checkpoint,
 * reduce_lr_on_plateau) with Keras 3's rules, their state kept in the model
 * so that checkpoints carry it (metadata "callbacks.*", the best weights as
 * tensors "callbacks.best_weights.<param>") and --resume continues exactly. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "runtime/io/io.h"

#define BEST_PREFIX "callbacks.best_weights."

/* ---- the schedule ---- */

static double scheduled(const mc_model *m, double lr0, int epoch, int epochs, int64_t steps_per_epoch)
{
    const RunSettings *t = &m->run;
    double step = (double)m->step;
    switch (t->sched) {
    case SCHED_STEP:
        return lr0 * pow(t->sched_gamma, (double)(epoch / (t->sched_step > 0 ? t->sched_step : 1)));
    case SCHED_COSINE: {
        int64_t h = m->lr_horizon > 0 ? m->lr_horizon : (int64_t)epochs * steps_per_epoch;
        double frac = h > 0 ? step / (double)h : 0;
        return lr0 * 0.5 * (1 + cos(M_PI * (frac > 1 ? 1 : frac)));
    }
    case SCHED_EXPONENTIAL: {
        double p = step / (double)(t->decay_steps > 0 ? t->decay_steps : 1);
        return lr0 * pow(t->decay_rate, t->staircase ? floor(p) : p);
    }
    default:
        return lr0;
    }
}

double mc_lr_at(const mc_model *m, double lr0, int epoch, int epochs, int64_t steps_per_epoch)
{
    double base = m->cb.rl_lr > 0 ? m->cb.rl_lr : lr0;
    double lr = scheduled(m, base, epoch, epochs, steps_per_epoch);
    if (m->run.warmup > 0 && m->step < m->run.warmup)
        lr *= (double)m->step / (double)m->run.warmup;
    return lr;
}

int64_t mc_lr_horizon(const mc_model *m)
{
    return m->lr_horizon;
}

void mc_set_lr_horizon(mc_model *m, int64_t steps)
{
    m->lr_horizon = steps;
}

/* ---- settings ---- */

static const char *dup_str(mc_model *m, const char *s)
{
    return s ? arena_strdup(m->src->arena, s) : NULL;
}

void mc_callbacks_get(const mc_model *m, mc_callbacks *c)
{
    const RunSettings *r = &m->run;
    RunSettings d;
    ir_run_defaults(&d);
    ir_es_defaults(&d);
    ir_ckpt_defaults(&d);
    ir_rlr_defaults(&d);
    const RunSettings *es = r->es.monitor ? r : &d, *ck = r->ckpt.monitor ? r : &d, *rl = r->rlr.monitor ? r : &d;
    memset(c, 0, sizeof *c);
    c->warmup = r->warmup;
    c->early_stopping = (mc_early_stopping){r->es.monitor != NULL, es->es.monitor, es->es.min_delta,
                                            es->es.patience, (mc_monitor_mode)es->es.mode, es->es.restore_best};
    c->checkpoint = (mc_checkpoint){r->ckpt.monitor != NULL, ck->ckpt.path, ck->ckpt.monitor,
                                    ck->ckpt.best_only, (mc_monitor_mode)ck->ckpt.mode};
    c->reduce_lr = (mc_reduce_lr){r->rlr.monitor != NULL, rl->rlr.monitor, rl->rlr.factor, rl->rlr.patience,
                                  (mc_monitor_mode)rl->rlr.mode, rl->rlr.min_delta, rl->rlr.cooldown,
                                  rl->rlr.min_lr};
}

/* A monitor is "loss", a metric's name, or either with "val_"; val_ needs
 * validation data. */
static bool check_monitor(mc_model *m, const char *cb, const char *mon, bool have_val)
{
    if (!mon || !*mon) {
        mc_set_error(m, "error: %s needs a monitor\n", cb);
        return false;
    }
    bool val = strncmp(mon, "val_", 4) == 0;
    const char *name = val ? mon + 4 : mon;
    bool known = strcmp(name, "loss") == 0;
    for (int i = 0; !known && i < mc_num_metrics(m); i++)
        known = strcmp(name, mc_metric_name(m, i)) == 0;
    if (!known) {
        char list[1024] = "loss, val_loss";
        for (int i = 0; i < mc_num_metrics(m); i++) {
            size_t n = strlen(list);
            snprintf(list + n, sizeof list - n, ", %s, val_%s", mc_metric_name(m, i), mc_metric_name(m, i));
        }
        mc_set_error(m, "error: %s: unknown monitor \"%s\": expected %s\n", cb, mon, list);
        return false;
    }
    if (val && !have_val) {
        mc_set_error(m,
                     "error: %s monitors %s, but there is no validation data: give --val-split F or "
                     "--val-data SRC, or monitor %s\n",
                     cb, mon, name);
        return false;
    }
    return true;
}

static bool check_settings(mc_model *m, const mc_callbacks *c, bool have_val)
{
    const mc_early_stopping *es = &c->early_stopping;
    const mc_checkpoint *ck = &c->checkpoint;
    const mc_reduce_lr *rl = &c->reduce_lr;
    if (c->warmup < 0) {
        mc_set_error(m, "error: warmup must be at least 0 steps, got %d\n", c->warmup);
        return false;
    }
    if (es->on && (es->patience < 0 || !(es->min_delta >= 0) || es->mode < 0 || es->mode > 2)) {
        mc_set_error(m, "error: early_stopping needs patience >= 0, min_delta >= 0 and a mode auto, min or max\n");
        return false;
    }
    if (ck->on && (!ck->path || !*ck->path)) {
        mc_set_error(m, "error: checkpoint needs a path\n");
        return false;
    }
    if (rl->on && !(rl->factor > 0 && rl->factor < 1)) {
        mc_set_error(m, "error: reduce_lr_on_plateau's factor must be in (0, 1), got %g\n", rl->factor);
        return false;
    }
    if (rl->on && (rl->patience < 0 || rl->cooldown < 0 || !(rl->min_delta >= 0) || !(rl->min_lr >= 0))) {
        mc_set_error(m, "error: reduce_lr_on_plateau needs patience, cooldown, min_delta and min_lr >= 0\n");
        return false;
    }
    return (!es->on || check_monitor(m, "early_stopping", es->monitor, have_val)) &&
           (!ck->on || check_monitor(m, "checkpoint", ck->monitor, have_val)) &&
           (!rl->on || check_monitor(m, "reduce_lr_on_plateau", rl->monitor, have_val));
}

bool mc_cb_set(mc_model *m, const mc_callbacks *c, bool have_val)
{
    if (!check_settings(m, c, have_val))
        return false;
    RunSettings *r = &m->run;
    const mc_early_stopping *es = &c->early_stopping;
    const mc_checkpoint *ck = &c->checkpoint;
    const mc_reduce_lr *rl = &c->reduce_lr;
    r->warmup = c->warmup;
    r->es.monitor = es->on ? dup_str(m, es->monitor) : NULL;
    r->es.min_delta = es->min_delta;
    r->es.patience = es->patience;
    r->es.mode = (MonitorMode)es->mode;
    r->es.restore_best = es->restore_best_weights;
    r->ckpt.monitor = ck->on ? dup_str(m, ck->monitor) : NULL;
    r->ckpt.path = ck->on ? dup_str(m, ck->path) : NULL;
    r->ckpt.best_only = ck->save_best_only;
    r->ckpt.mode = (MonitorMode)ck->mode;
    r->rlr.monitor = rl->on ? dup_str(m, rl->monitor) : NULL;
    r->rlr.factor = rl->factor;
    r->rlr.patience = rl->patience;
    r->rlr.mode = (MonitorMode)rl->mode;
    r->rlr.min_delta = rl->min_delta;
    r->rlr.cooldown = rl->cooldown;
    r->rlr.min_lr = rl->min_lr;
    return true;
}

/* ---- state ---- */

void mc_cb_reset(mc_model *m)
{
    m->cb = (CallbackState){.es_best = NAN, .ck_best = NAN, .rl_best = NAN};
    m->lr_horizon = 0;
    rt_map_free(&m->best_weights);
}

bool mc_stop_training(const mc_model *m)
{
    return m->cb.es_stopped > 0;
}

/* Metadata values: doubles with 17 digits (they read back exactly,
 * "nan" for no best yet). */
void mc_cb_save_meta(const mc_model *m, Metadata *meta)
{
    char buf[256];
    const CallbackState *s = &m->cb;
    if (m->lr_horizon > 0 && m->run.sched == SCHED_COSINE) {
        snprintf(buf, sizeof buf, "%lld", (long long)m->lr_horizon);
        rt_meta_set(meta, "lr_horizon", buf);
    }
    if (m->run.es.monitor) {
        snprintf(buf, sizeof buf, "best=%.17g best_epoch=%d wait=%d stopped=%d", s->es_best, s->es_best_epoch,
                 s->es_wait, s->es_stopped);
        rt_meta_set(meta, "callbacks.early_stopping", buf);
    }
    if (m->run.ckpt.monitor) {
        snprintf(buf, sizeof buf, "best=%.17g", s->ck_best);
        rt_meta_set(meta, "callbacks.checkpoint", buf);
    }
    if (m->run.rlr.monitor) {
        snprintf(buf, sizeof buf, "best=%.17g wait=%d cooldown=%d lr=%.17g", s->rl_best, s->rl_wait,
                 s->rl_cooldown, s->rl_lr);
        rt_meta_set(meta, "callbacks.reduce_lr_on_plateau", buf);
    }
}

/* "key=value" in a metadata value. */
static const char *field(const char *v, const char *key)
{
    size_t n = strlen(key);
    for (const char *p = v; p && *p; p = strchr(p, ' '), p = p ? p + 1 : NULL)
        if (strncmp(p, key, n) == 0 && p[n] == '=')
            return p + n + 1;
    return NULL;
}

static double fget(const char *v, const char *key, double def)
{
    const char *f = v ? field(v, key) : NULL;
    return f ? strtod(f, NULL) : def;
}

static int iget(const char *v, const char *key)
{
    const char *f = v ? field(v, key) : NULL;
    return f ? atoi(f) : 0;
}

/* A checkpoint's state; one without it (older, or of a run without these
 * callbacks) starts them afresh. */
void mc_cb_load_meta(mc_model *m, const Metadata *meta)
{
    const char *h = rt_meta_get(meta, "lr_horizon");
    const char *es = rt_meta_get(meta, "callbacks.early_stopping");
    const char *ck = rt_meta_get(meta, "callbacks.checkpoint");
    const char *rl = rt_meta_get(meta, "callbacks.reduce_lr_on_plateau");
    m->lr_horizon = h ? strtoll(h, NULL, 10) : 0;
    CallbackState *s = &m->cb;
    s->es_best = fget(es, "best", NAN);
    s->es_best_epoch = iget(es, "best_epoch");
    s->es_wait = iget(es, "wait");
    s->es_stopped = iget(es, "stopped");
    s->ck_best = fget(ck, "best", NAN);
    s->rl_best = fget(rl, "best", NAN);
    s->rl_wait = iget(rl, "wait");
    s->rl_cooldown = iget(rl, "cooldown");
    s->rl_lr = fget(rl, "lr", 0);
}

bool mc_cb_is_state_tensor(const char *name)
{
    return strncmp(name, BEST_PREFIX, strlen(BEST_PREFIX)) == 0;
}

/* Takes t (a checkpoint's callbacks.best_weights.<param>) if the model has
 * that parameter with its shape and dtype; frees it otherwise. */
void mc_cb_take_state_tensor(mc_model *m, const char *name, Tensor *t)
{
    const char *p = name + strlen(BEST_PREFIX);
    Tensor *cur = rt_map_get(&m->params, p);
    if (cur && rt_tensor_same_shape(cur, t) && cur->dt == t->dt)
        rt_map_put(&m->best_weights, p, t);
    else
        rt_tensor_free(t);
}

/* The map a checkpoint writes: the parameters, then the best weights
 * under their prefix; both borrowed (free with mc_cb_free_save_map). */
void mc_cb_save_map(const mc_model *m, TensorMap *out)
{
    int n = m->params.n + m->best_weights.n;
    out->n = out->cap = n;
    out->names = xmalloc((size_t)(n ? n : 1) * sizeof(char *));
    out->t = xmalloc((size_t)(n ? n : 1) * sizeof(Tensor *));
    for (int i = 0; i < m->params.n; i++) {
        out->names[i] = xstrdup(m->params.names[i]);
        out->t[i] = m->params.t[i];
    }
    for (int i = 0; i < m->best_weights.n; i++) {
        size_t len = strlen(BEST_PREFIX) + strlen(m->best_weights.names[i]) + 1;
        char *s = xmalloc(len);
        snprintf(s, len, "%s%s", BEST_PREFIX, m->best_weights.names[i]);
        out->names[m->params.n + i] = s;
        out->t[m->params.n + i] = m->best_weights.t[i];
    }
}

void mc_cb_free_save_map(TensorMap *map)
{
    for (int i = 0; i < map->n; i++)
        xfree(map->names[i]);
    xfree(map->names);
    xfree(map->t);
}

/* The model's weights and state, not the optimizer's slots: what Keras's
 * get_weights() gives. */
static bool is_weight(const char *name)
{
    return strncmp(name, "optimizer.", 10) != 0;
}

static void snapshot(mc_model *m)
{
    for (int i = 0; i < m->params.n; i++)
        if (is_weight(m->params.names[i])) {
            Tensor *have = rt_map_get(&m->best_weights, m->params.names[i]);
            if (have)
                memcpy(have->data, m->params.t[i]->data, (size_t)rt_tensor_bytes(have));
            else
                rt_map_put(&m->best_weights, m->params.names[i], rt_tensor_clone(m->params.t[i]));
        }
}

/* In place: the JIT's buffers are the parameters' own. */
static void restore(mc_model *m)
{
    for (int i = 0; i < m->best_weights.n; i++) {
        Tensor *cur = rt_map_get(&m->params, m->best_weights.names[i]);
        if (cur)
            memcpy(cur->data, m->best_weights.t[i]->data, (size_t)rt_tensor_bytes(cur));
    }
}

/* Under mpirun the other processes receive rank 0's best weights
 * (mc_dist_start): allocated here first, in the parameters' order. */
void mc_cb_alloc_best(mc_model *m)
{
    for (int i = 0; i < m->params.n; i++)
        if (is_weight(m->params.names[i]) && !rt_map_get(&m->best_weights, m->params.names[i]))
            rt_map_put(&m->best_weights, m->params.names[i], rt_tensor_clone(m->params.t[i]));
}

/* ---- the decisions at the end of an epoch ---- */

static bool maximise(MonitorMode mode, const char *monitor)
{
    return mode == MON_MAX || (mode == MON_AUTO && ir_monitor_max(monitor));
}

static const char *plural(int n)
{
    return n == 1 ? "" : "s";
}

static mc_callback_event *event(mc_callback_event *ev, int *nev, const char *cb, const char *monitor, double v,
                                int epoch)
{
    mc_callback_event *e = &ev[(*nev)++];
    memset(e, 0, sizeof *e);
    e->callback = cb;
    e->monitor = monitor;
    e->epoch = epoch;
    e->value = v;
    return e;
}

/* Keras's ModelCheckpoint: the monitored value beats the best so far
 * (no min_delta), or every epoch without save_best_only. */
static bool checkpoint(mc_model *m, int epoch, double v, mc_callback_event *ev, int *nev)
{
    const RunSettings *r = &m->run;
    CallbackState *s = &m->cb;
    bool max = maximise(r->ckpt.mode, r->ckpt.monitor);
    bool better = !isnan(v) && (isnan(s->ck_best) || (max ? v > s->ck_best : v < s->ck_best));
    if (!better && r->ckpt.best_only)
        return true;
    mc_callback_event *e = event(ev, nev, "checkpoint", r->ckpt.monitor, v, epoch);
    e->best = better ? v : s->ck_best;
    e->best_epoch = epoch;
    e->path = r->ckpt.path;
    if (!r->ckpt.best_only)
        snprintf(e->text, sizeof e->text, "epoch %d: saving the model to %s", epoch, r->ckpt.path);
    else if (isnan(s->ck_best))
        snprintf(e->text, sizeof e->text, "epoch %d: %s is %.4f; saving the model to %s", epoch, r->ckpt.monitor,
                 v, r->ckpt.path);
    else
        snprintf(e->text, sizeof e->text, "epoch %d: %s improved from %.4f to %.4f; saving the model to %s", epoch,
                 r->ckpt.monitor, s->ck_best, v, r->ckpt.path);
    if (better)
        s->ck_best = v;
    return mc_dist_rank(m) != 0 || mc_save(m, r->ckpt.path);
}

/* Keras 3's EarlyStopping: wait counts epochs since the last improvement
 * by more than min_delta; at wait >= patience (not on the first epoch)
 * training stops, and with restore_best_weights the best epoch's weights
 * come back. */
static void early_stopping(mc_model *m, int epoch, double v, mc_callback_event *ev, int *nev)
{
    const RunSettings *r = &m->run;
    CallbackState *s = &m->cb;
    bool max = maximise(r->es.mode, r->es.monitor);
    s->es_wait++;
    bool better = !isnan(v) && (isnan(s->es_best) || (max ? v - r->es.min_delta > s->es_best
                                                          : v + r->es.min_delta < s->es_best));
    if (better) {
        s->es_best = v;
        s->es_best_epoch = epoch;
        s->es_wait = 0;
        if (r->es.restore_best)
            snapshot(m);
        return;
    }
    if (s->es_wait < r->es.patience || epoch <= 1)
        return;
    s->es_stopped = epoch;
    mc_callback_event *e = event(ev, nev, "early_stopping", r->es.monitor, v, epoch);
    e->best = s->es_best;
    e->best_epoch = s->es_best_epoch;
    e->wait = s->es_wait;
    e->stop = true;
    e->restored = r->es.restore_best && m->best_weights.n > 0 && s->es_best_epoch > 0;
    if (e->restored) {
        restore(m);
        snprintf(e->text, sizeof e->text,
                 "epoch %d: %s did not improve for %d epoch%s; stopping, restoring the weights of epoch %d (%s %.4f)",
                 epoch, r->es.monitor, s->es_wait, plural(s->es_wait), s->es_best_epoch, r->es.monitor, s->es_best);
    } else {
        snprintf(e->text, sizeof e->text, "epoch %d: %s did not improve for %d epoch%s (best %.4f at epoch %d); stopping",
                 epoch, r->es.monitor, s->es_wait, plural(s->es_wait), s->es_best, s->es_best_epoch);
    }
}

/* Keras 3's ReduceLROnPlateau, on the base learning rate the schedule
 * starts from: after `patience` epochs without an improvement by more
 * than min_delta (outside the cooldown) it becomes max(lr * factor,
 * min_lr), unless it is at min_lr already. */
static void reduce_lr(mc_model *m, int epoch, double v, double lr0, mc_callback_event *ev, int *nev)
{
    const RunSettings *r = &m->run;
    CallbackState *s = &m->cb;
    bool max = maximise(r->rlr.mode, r->rlr.monitor);
    if (s->rl_cooldown > 0) {
        s->rl_cooldown--;
        s->rl_wait = 0;
    }
    bool better = !isnan(v) && (isnan(s->rl_best) || (max ? v > s->rl_best + r->rlr.min_delta
                                                          : v < s->rl_best - r->rlr.min_delta));
    if (better) {
        s->rl_best = v;
        s->rl_wait = 0;
        return;
    }
    if (s->rl_cooldown > 0 || ++s->rl_wait < r->rlr.patience)
        return;
    double old = s->rl_lr > 0 ? s->rl_lr : lr0;
    if (!(old > r->rlr.min_lr))
        return;
    double lr = old * r->rlr.factor;
    if (lr < r->rlr.min_lr)
        lr = r->rlr.min_lr;
    mc_callback_event *e = event(ev, nev, "reduce_lr_on_plateau", r->rlr.monitor, v, epoch);
    e->best = s->rl_best;
    e->wait = s->rl_wait;
    e->lr = lr;
    snprintf(e->text, sizeof e->text, "epoch %d: %s did not improve for %d epoch%s; reducing the learning rate to %.6g",
             epoch, r->rlr.monitor, s->rl_wait, plural(s->rl_wait), lr);
    s->rl_lr = lr;
    s->rl_cooldown = r->rlr.cooldown;
    s->rl_wait = 0;
}

static bool lookup(mc_model *m, const char *mon, const char *const *names, const double *values, int n, double *v)
{
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], mon) == 0) {
            *v = values[i];
            return true;
        }
    mc_set_error(m, "error: the monitored quantity %s is not among this epoch's values\n", mon);
    return false;
}

bool mc_cb_epoch_end(mc_model *m, int epoch, double lr0, const char *const *names, const double *values, int n,
                     mc_callback_event *ev, int *nev)
{
    const RunSettings *r = &m->run;
    double *vals = xmalloc((size_t)(n ? n : 1) * sizeof(double));
    memcpy(vals, values, (size_t)n * sizeof(double));
    /* every process decides on rank 0's values, so all decide alike */
    bool ok = mc_dist_bcast(m, vals, (int64_t)n * (int64_t)sizeof(double));
    double v;
    *nev = 0;
    if (ok && r->ckpt.monitor && (!r->ckpt.path || !*r->ckpt.path)) {
        mc_set_error(m, "error: checkpoint needs a path\n");
        ok = false;
    }
    if (ok && r->ckpt.monitor)
        ok = lookup(m, r->ckpt.monitor, names, vals, n, &v) && checkpoint(m, epoch, v, ev, nev);
    if (ok && r->rlr.monitor && (ok = lookup(m, r->rlr.monitor, names, vals, n, &v)))
        reduce_lr(m, epoch, v, lr0, ev, nev);
    if (ok && r->es.monitor && (ok = lookup(m, r->es.monitor, names, vals, n, &v)))
        early_stopping(m, epoch, v, ev, nev);
    xfree(vals);
    return ok;
}
