/* What `modelc train` does around its steps to explain them (mc_watch in
 * include/modelc_inspect.h): watching (per-layer statistics on a sample
 * of the training data, step telemetry, warnings, CSV/JSON columns,
 * curves) and the NaN/Inf guard.
 *
 * The NaN/Inf guard: the JIT updates the parameters in place, so the
 * parameters a failing step started from are gone once it ran. Before
 * every step the guard copies all parameters (weights, batchnorm state,
 * optimizer slots) into a second set of buffers allocated once: one
 * memcpy of the parameter set per step, no allocation. When a step's
 * loss is not finite (or, with --check-numerics, a gradient or a new
 * parameter is not), the copy is written back, so no update is applied,
 * and the step is re-run op by op with the interpreter on those
 * parameters and the same batch, learning rate and dropout masks to name
 * the first op that produced a NaN or Inf. */
#include "modelc_inspect.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/driver/api_internal.h"
#include "backend/driver/data.h"
#include "insight.h"

struct mc_watch {
    mc_model *m;
    mc_watch_options o;
    FILE *out, *err;
    FILE *text;          /* where watch lines go: out, or err with json */
    Watch *w;            /* watching or plotting */
    bool watching;       /* --watch: print and add columns */
    TensorMap *sample;   /* sample batches */
    int nsample;
    TensorMap at_record; /* learned weights at the last record (for update ratios) */
    TensorMap snap;      /* every parameter before the current step */
    int64_t snap_step;   /* mc_step before the current step */
    bool snap_valid;
    bool reported;       /* the NaN report was printed (once) */
    RtEvents *tb;        /* TensorBoard event file, or NULL */
};

/* ---- static warnings ---- */

void mc_static_warnings(const mc_model *m, const mc_data *train, FILE *f)
{
    ins_static_warnings(m->src, mc_data_dataset(train), m->run.batch, f);
}

/* ---- parameter copies ---- */

static size_t tensor_bytes(const Tensor *t)
{
    return (size_t)t->numel * (size_t)ir_dtype_size(t->dt);
}

/* dst[name] := src[name] for every tensor of src (allocating in dst only
 * when a tensor is new or changed shape), or with a model m only for
 * those a step with a non-finite loss may change: the others need no
 * copy (mc_param_kept_on_bad_loss). */
static void copy_into(TensorMap *dst, const TensorMap *src, const mc_model *m)
{
    for (int i = 0; i < src->n; i++) {
        const Tensor *s = src->t[i];
        if (m && mc_param_kept_on_bad_loss(m, src->names[i]))
            continue;
        Tensor *t = i < dst->n && strcmp(dst->names[i], src->names[i]) == 0
                        ? dst->t[i]
                        : rt_map_get(dst, src->names[i]);
        if (!t || t->dt != s->dt || !rt_tensor_same_shape(t, s)) {
            rt_map_put(dst, src->names[i], rt_tensor_clone(s));
            continue;
        }
        memcpy(t->data, s->data, tensor_bytes(s));
    }
}

/* Write the copy back into the model's own tensors (the JIT workspaces
 * stay bound to them). */
static void restore(mc_watch *t)
{
    TensorMap *p = &t->m->params;
    for (int i = 0; i < t->snap.n; i++) {
        Tensor *dst = rt_map_get(p, t->snap.names[i]);
        if (dst && dst->dt == t->snap.t[i]->dt && rt_tensor_same_shape(dst, t->snap.t[i]))
            memcpy(dst->data, t->snap.t[i]->data, tensor_bytes(dst));
        else
            rt_map_put(p, t->snap.names[i], rt_tensor_clone(t->snap.t[i]));
    }
    t->m->step = t->snap_step;
}

static bool learned(const Graph *g, const Node *p)
{
    return p->op == OP_PARAM && p->a.role == ROLE_WEIGHT && !ps_is_frozen(g, p);
}

static void copy_learned(mc_watch *t)
{
    const Graph *g = t->m->src;
    for (int i = 0; i < g->nnodes; i++) {
        const Node *p = g->nodes[i];
        const Tensor *v = learned(g, p) ? rt_map_get(&t->m->params, p->a.name) : NULL;
        Tensor *d = v ? rt_map_get(&t->at_record, p->a.name) : NULL;
        if (!v)
            continue;
        if (d && rt_tensor_same_shape(d, v) && d->dt == v->dt)
            memcpy(d->data, v->data, tensor_bytes(v));
        else
            rt_map_put(&t->at_record, p->a.name, rt_tensor_clone(v));
    }
}

/* ---- setup ---- */

static void take_sample(mc_watch *t, const Dataset *train)
{
    int64_t b = t->o.batch < MC_WATCH_SAMPLE ? t->o.batch : MC_WATCH_SAMPLE;
    int64_t n = train->n < MC_WATCH_SAMPLE ? train->n : MC_WATCH_SAMPLE;
    int nb = (int)((n + b - 1) / b);
    t->sample = xcalloc((size_t)nb + 1, sizeof(TensorMap));
    for (int k = 0; k < nb; k++) {
        rt_map_init(&t->sample[k]);
        int64_t start = (int64_t)k * b;
        rt_dataset_batch(train, NULL, start, n - start < b ? n - start : b, &t->sample[k]);
    }
    t->nsample = nb;
}

void mc_watch_options_default(mc_watch_options *o)
{
    memset(o, 0, sizeof *o);
    o->every = -1;
    o->batch = MC_WATCH_SAMPLE;
}

static void watch_free(mc_watch *t);

static mc_watch *watch_new(mc_model *m, const mc_watch_options *o, const Dataset *train, FILE *out,
                           FILE *err, Diags *d)
{
    mc_watch *t = xcalloc(1, sizeof *t);
    t->m = m;
    t->o = *o;
    t->out = out;
    t->err = err;
    t->text = o->json ? err : out;
    t->watching = o->every >= 0;
    if (t->o.batch < 1)
        t->o.batch = MC_WATCH_SAMPLE;
    rt_map_init(&t->snap);
    rt_map_init(&t->at_record);
    if (o->tensorboard && !(t->tb = rt_events_open(o->tensorboard, d))) {
        watch_free(t);
        return NULL;
    }
    if (t->watching || o->plot_dir) {
        WatchOpts wo = {1, m->seed, !t->watching || o->json, t->watching ? t->tb : NULL};
        t->w = ins_watch_new(m->src, &wo, d);
        if (!t->w) {
            watch_free(t);
            return NULL;
        }
        take_sample(t, train);
        copy_learned(t);
    }
    return t;
}

static mc_watch *watch_new_diags(mc_model *m, const mc_watch_options *o, const mc_data *train, FILE *out,
                                 FILE *err)
{
    Diags d;
    diags_init(&d);
    mc_watch *t = watch_new(m, o, mc_data_dataset(train), out, err, &d);
    if (!t)
        diags_print(&d, err);
    diags_free(&d);
    return t;
}

static void watch_free(mc_watch *t)
{
    if (!t)
        return;
    ins_watch_free(t->w);
    rt_events_close(t->tb, NULL);
    for (int k = 0; k < t->nsample; k++)
        rt_map_free(&t->sample[k]);
    xfree(t->sample);
    rt_map_free(&t->at_record);
    rt_map_free(&t->snap);
    xfree(t);
}

void mc_watch_csv_header(const mc_watch *t, FILE *f)
{
    if (t->watching)
        ins_watch_csv_header(t->w, f);
}

/* ---- the NaN/Inf guard ---- */

static bool before_step(mc_watch *t, bool all)
{
    copy_into(&t->snap, &t->m->params, t->o.check_numerics || all ? NULL : t->m);
    t->snap_step = t->m->step;
    t->snap_valid = true;
    return true;
}

static bool tensor_finite(const Tensor *x, int64_t *first)
{
    if (x->dt == DT_F32) {
        const float *v = x->data;
        for (int64_t i = 0; i < x->numel; i++)
            if (!isfinite(v[i]))
                return *first = i, false;
    } else if (x->dt == DT_F64) {
        const double *v = x->data;
        for (int64_t i = 0; i < x->numel; i++)
            if (!isfinite(v[i]))
                return *first = i, false;
    }
    return true;
}

/* The first parameter holding a non-finite value, or NULL. */
static const char *nonfinite_param(const mc_watch *t)
{
    const TensorMap *p = &t->m->params;
    int64_t first;
    for (int i = 0; i < p->n; i++)
        if (!tensor_finite(p->t[i], &first))
            return p->names[i];
    return NULL;
}

static const char *nonfinite_telemetry(const mc_watch *t)
{
    for (int i = 0; i < mc_num_telemetry(t->m); i++)
        if (!isfinite(mc_telemetry_value(t->m, i)))
            return mc_telemetry_name(t->m, i);
    return NULL;
}

/* Restore the parameters from before the step and re-run it op by op.
 * Under mpirun every process restores, and the first process whose own
 * loss (else gradients) was not finite re-runs its share of the batch with
 * its own dropout masks (mc_dist_culprit, mc_dist_seed). */
static void explain(mc_watch *t, double lr)
{
    if (!t->snap_valid)
        return;
    restore(t);
    if (t->reported)
        return;
    t->reported = true;
    int rank = mc_dist_rank(t->m);
    if (rank != mc_dist_culprit(t->m))
        return;
    fflush(t->out);
    char share[64] = "";
    if (mc_dist_size(t->m) > 1)
        snprintf(share, sizeof share, " and rank %d's share of the batch", rank);
    fprintf(t->err,
            "modelc train: no update applied; step %lld re-run op by op with the interpreter on "
            "the parameters before it%s:\n",
            (long long)t->snap_step + 1, share);
    RunOpts ro = {mc_dist_seed(t->m), (uint64_t)t->snap_step};
    NumericsOpts no = {t->m->opt.train_mode == MC_MODE_INFER ? MODE_INFER : MODE_TRAIN, true, lr};
    Diags d;
    diags_init(&d);
    InsNumerics *n = ins_numerics_new(t->m->src, &no, &d);
    InsNumResult r = INS_NUM_ERROR;
    if (n) {
        ins_numerics_step_label(n, t->snap_step + 1);
        r = ins_numerics_check(n, &t->m->params, &t->m->batch, &ro, t->err); /* as before the step */
    }
    diags_print(&d, t->err);
    diags_free(&d);
    ins_numerics_free(n);
    if (r == INS_NUM_FINITE)
        fprintf(t->err,
                "modelc train: the interpreter computes step %lld without a NaN or Inf: the "
                "compiled step and the reference disagree here\n",
                (long long)t->snap_step + 1);
}

/* What --check-numerics found (printed by rank 0 under mpirun, where the
 * gradients are the processes' sum: the message names the processes whose
 * own gradients were not finite). */
static void report_nonfinite(const mc_watch *t, int epoch, int64_t bi, const char *bad_grad, const char *bad)
{
    char ranks[160] = "", where[240] = "";
    mc_dist_bad_ranks(t->m, 2, ranks, sizeof ranks);
    if (mc_dist_size(t->m) > 1)
        snprintf(where, sizeof where, " (summed over %d processes; not finite on rank %s)", mc_dist_size(t->m),
                 ranks[0] ? ranks : "?");
    long long b = (long long)bi + 1, step = (long long)t->snap_step + 1;
    if (bad_grad && strncmp(bad_grad, "grad_sq.", 8) == 0)
        fprintf(t->err, "modelc train: epoch %d, batch %lld: step %lld: the gradient of '%s' is not finite%s\n",
                epoch, b, step, bad_grad + 8, where);
    else if (bad_grad)
        fprintf(t->err, "modelc train: epoch %d, batch %lld: step %lld: telemetry '%s' is not finite%s\n", epoch,
                b, step, bad_grad, where);
    else
        fprintf(t->err, "modelc train: epoch %d, batch %lld: step %lld made parameter '%s' non-finite\n", epoch,
                b, step, bad);
}

static bool after_step(mc_watch *t, int epoch, int64_t bi, double lr)
{
    mc_model *m = t->m;
    if (t->w && mc_num_telemetry(m)) {
        const char *names[512];
        double vals[512];
        int n = mc_num_telemetry(m) < 512 ? mc_num_telemetry(m) : 512;
        for (int i = 0; i < n; i++) {
            names[i] = mc_telemetry_name(m, i);
            vals[i] = mc_telemetry_value(m, i);
        }
        ins_watch_step(t->w, names, vals, n);
    }
    if (!t->o.check_numerics)
        return true;
    const char *bad_grad = nonfinite_telemetry(t);
    const char *bad = bad_grad ? NULL : nonfinite_param(t);
    if (!bad_grad && !bad)
        return true;
    fflush(t->out);
    if (mc_dist_rank(t->m) == 0)
        report_nonfinite(t, epoch, bi, bad_grad, bad);
    explain(t, lr);
    return false;
}

static bool step_failed(mc_watch *t, int epoch, int64_t bi, double lr)
{
    (void)epoch;
    (void)bi;
    explain(t, lr);
    return true;
}

static bool params_finite(mc_watch *t, int epoch, double lr)
{
    const char *bad = nonfinite_param(t);
    if (!bad)
        return true;
    fflush(t->out);
    if (mc_dist_rank(t->m) == 0)
        fprintf(t->err,
                "modelc train: after epoch %d parameter '%s' is not finite; no checkpoint written\n",
                epoch, bad);
    explain(t, lr);
    return false;
}

/* ---- watching ---- */

bool mc_watch_record_due(const mc_watch *t, int64_t step)
{
    return t->watching && t->o.every > 0 && step % t->o.every == 0;
}

static bool record(mc_watch *t, int epoch, int64_t step, double x, bool epoch_end)
{
    if (!t->w)
        return true;
    Diags d;
    diags_init(&d);
    WatchPoint pt = {epoch, step, x, epoch_end};
    FILE *log = t->watching ? t->text : NULL;
    fflush(t->out);
    bool ok = ins_watch_record(t->w, &pt, &t->at_record, &t->m->params, t->sample, t->nsample,
                               log, &d);
    if (log)
        fflush(log);
    copy_learned(t);
    diags_print(&d, t->err);
    diags_free(&d);
    return ok;
}

void mc_watch_csv_row(const mc_watch *t, FILE *f)
{
    if (t->watching)
        ins_watch_csv_row(t->w, f);
}

void mc_watch_json(const mc_watch *t, FILE *f)
{
    if (!t->watching)
        return;
    fputs(", \"watch\": ", f);
    ins_watch_json(t->w, f);
}

static bool metric(mc_watch *t, int epoch, const char *name, double value)
{
    if (t->w)
        ins_watch_metric(t->w, epoch, name, value);
    if (t->tb) {
        char tag[300];
        snprintf(tag, sizeof tag, "epoch/%s", name);
        rt_events_scalar(t->tb, tag, epoch, value);
    }
    return true;
}

/* ---- TensorBoard ---- */

static bool step_loss(mc_watch *t, int64_t step, double loss, double lr)
{
    if (!t->tb)
        return true;
    rt_events_scalar(t->tb, "step/loss", step, loss);
    rt_events_scalar(t->tb, "step/lr", step, lr);
    return true;
}

static bool epoch_end(mc_watch *t, int epoch, double lr)
{
    if (!t->tb)
        return true;
    rt_events_scalar(t->tb, "epoch/lr", epoch, lr);
    Diags d;
    diags_init(&d);
    bool ok = rt_events_flush(t->tb, &d);
    diags_print(&d, t->err);
    diags_free(&d);
    return ok;
}

const char *mc_watch_events_path(const mc_watch *t)
{
    return t && t->tb ? rt_events_path(t->tb) : NULL;
}

static bool finish(mc_watch *t)
{
    if (!t->o.plot_dir || !t->w)
        return true;
    Diags d;
    diags_init(&d);
    bool ok = ins_watch_plots(t->w, t->o.plot_dir, &d);
    diags_print(&d, t->err);
    diags_free(&d);
    if (ok && !t->o.json)
        fprintf(t->out, "wrote curves to %s/\n", t->o.plot_dir);
    return ok;
}

/* ---- running out of memory ----
 * Each call runs under a memory guard. A call that runs out prints the
 * error, leaves the model broken (its next call fails, so training
 * stops) and the call's blocks with the model: some may hang from the
 * watch, which mc_watch_free frees first, handing the rest back. */

static bool watch_out_of_memory(mc_model *m, MemGuard *g, FILE *err)
{
    char msg[200];
    mem_error(g, msg, sizeof msg);
    m->broken = true;
    m->orphans = g->live;
    mc_set_error(m, "error: %s", msg);
    fprintf(err, "modelc train: error: %s\n", msg);
    return false;
}

#define WATCH_CALL(m, err, what, call)                                                             \
    do {                                                                                           \
        if ((m)->broken)                                                                           \
            return false;                                                                          \
        MemGuard g_;                                                                               \
        volatile bool ok_ = false;                                                                 \
        if (MEM_TRY(&g_, what))                                                                    \
            ok_ = call;                                                                            \
        return mem_guard_pop(&g_) ? ok_ : watch_out_of_memory(m, &g_, err);                        \
    } while (0)

mc_watch *mc_watch_new(mc_model *m, const mc_watch_options *o, const mc_data *train, FILE *out, FILE *err)
{
    if (m->broken)
        return NULL;
    mc_watch *volatile res = NULL;
    MemGuard g;
    if (MEM_TRY(&g, "setting up the training watch"))
        res = watch_new_diags(m, o, train, out, err);
    if (mem_guard_pop(&g))
        return res;
    watch_out_of_memory(m, &g, err); /* the partial watch is among the orphans */
    return NULL;
}

void mc_watch_free(mc_watch *t)
{
    if (!t)
        return;
    if (!t->m->broken) {
        watch_free(t);
        return;
    }
    mc_model *m = t->m;
    MemGuard g;
    mem_collect_begin(&g, &m->orphans);
    watch_free(t);
    mem_collect_keep(&g, &m->orphans);
}

static bool guarded_before_step(mc_watch *t, bool all)
{
    WATCH_CALL(t->m, t->err, "keeping the parameters before a step", before_step(t, all));
}

void mc_watch_before_step(mc_watch *t)
{
    guarded_before_step(t, false);
}

void mc_watch_before_last_step(mc_watch *t)
{
    guarded_before_step(t, true);
}

bool mc_watch_after_step(mc_watch *t, int epoch, int64_t bi, double lr)
{
    WATCH_CALL(t->m, t->err, "watching a step", after_step(t, epoch, bi, lr));
}

static bool guarded_step_failed(mc_watch *t, int epoch, int64_t bi, double lr)
{
    WATCH_CALL(t->m, t->err, "explaining a failed step", step_failed(t, epoch, bi, lr));
}

void mc_watch_step_failed(mc_watch *t, int epoch, int64_t bi, double lr)
{
    guarded_step_failed(t, epoch, bi, lr);
}

bool mc_watch_params_finite(mc_watch *t, int epoch, double lr)
{
    WATCH_CALL(t->m, t->err, "checking the parameters", params_finite(t, epoch, lr));
}

bool mc_watch_record(mc_watch *t, int epoch, int64_t step, double x, bool epoch_end)
{
    WATCH_CALL(t->m, t->err, "taking a watch record", record(t, epoch, step, x, epoch_end));
}

static bool guarded_metric(mc_watch *t, int epoch, const char *name, double value)
{
    WATCH_CALL(t->m, t->err, "recording a metric", metric(t, epoch, name, value));
}

void mc_watch_metric(mc_watch *t, int epoch, const char *name, double value)
{
    guarded_metric(t, epoch, name, value);
}

bool mc_watch_finish(mc_watch *t)
{
    WATCH_CALL(t->m, t->err, "drawing the training curves", finish(t));
}

static bool guarded_step_loss(mc_watch *t, int64_t step, double loss, double lr)
{
    WATCH_CALL(t->m, t->err, "writing TensorBoard events", step_loss(t, step, loss, lr));
}

void mc_watch_step_loss(mc_watch *t, int64_t step, double loss, double lr)
{
    guarded_step_loss(t, step, loss, lr);
}

bool mc_watch_epoch_end(mc_watch *t, int epoch, double lr)
{
    WATCH_CALL(t->m, t->err, "writing TensorBoard events", epoch_end(t, epoch, lr));
}
