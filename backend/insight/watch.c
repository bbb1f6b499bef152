/* Watching a training run: after each epoch the update ratio |dW|/|W| of
 * every trainable parameter, per-layer statistics on a sample batch with
 * one-line warnings (saturated, dead, vanishing), clipping telemetry, and
 * per-epoch series drawn as curves at the end. The trainer calls it; it
 * evaluates with the interpreter and never changes parameters. */
#include "insight.h"
#include "backend/insight/plot.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DEAD_FRAC 0.5
#define VANISH_RATIO 1e-3

/* ---- update ratios ---- */

double ins_update_ratio(const Tensor *before, const Tensor *after)
{
    if (!rt_tensor_same_shape(before, after))
        return -1;
    double dn = 0, wn = 0;
    for (int64_t i = 0; i < before->numel; i++) {
        double b = rt_get(before, i), a = rt_get(after, i);
        dn += (a - b) * (a - b);
        wn += b * b;
    }
    if (wn == 0)
        return dn == 0 ? 0 : INFINITY;
    return sqrt(dn / wn);
}

static bool learned(const Graph *g, const Node *p)
{
    return p->op == OP_PARAM && p->a.role == ROLE_WEIGHT && !ps_is_frozen(g, p);
}

void ins_print_update_ratios(const Graph *g, const TensorMap *before, const TensorMap *after,
                             FILE *f)
{
    for (int i = 0; i < g->nnodes; i++) {
        const Node *p = g->nodes[i];
        const Tensor *b = learned(g, p) ? rt_map_get(before, p->a.name) : NULL,
                     *a = b ? rt_map_get(after, p->a.name) : NULL;
        if (a)
            fprintf(f, "  update |dW|/|W|  %-28s %.3g\n", p->a.name, ins_update_ratio(b, a));
    }
}

/* ---- the watcher ---- */

typedef struct Series {
    char *name;
    double *v; /* per slot; NAN when missing */
} Series;

/* A learned parameter: its figures at the last record and its step
 * telemetry since then. */
typedef struct WParam {
    const char *name;
    double norm, grad_norm, grad_ratio, update_ratio; /* last record; NAN unknown */
    double step_grad_norm, clip_frac;                 /* last record, from the steps */
    double gsum, clip_sum; /* since the last record: sum over steps of ||g||, clipped fraction */
    int gsteps, csteps;
} WParam;

/* A layer at the last record, and which warnings are active. */
typedef struct WLayer {
    const char *name;
    ActKind act;
    SrcLoc loc;
    double act_norm, grad_norm, grad_ratio, saturation, dead_frac; /* NAN unknown */
    int64_t dead, units; /* relu */
    bool sat_on, dead_on, vanish_on;
} WLayer;

struct Watch {
    const Graph *src;
    InsModel *m;
    WatchOpts o;
    /* per-epoch metrics */
    int nslots, cap;
    double *epochs;
    Series *metrics;
    int nmetrics;
    /* per-record gradient norms, one series per layer */
    int nrec, rcap;
    double *rec_x;
    Series *gnorm;
    int nlayers;
    WLayer *layers;
    WParam *params;
    int nparams;
    /* clipping since the last record */
    int steps, any_clip, norm_fired, norm_steps;
    double norm_sum, norm_ratio_max;
    /* clipping at the last record */
    int last_steps;
    double last_fired_frac, last_mean_norm;
    bool recorded;
    StrBuf warnings; /* of the last record, one per line */
    int nwarnings;
};

Watch *ins_watch_new(const Graph *src, const WatchOpts *o, Diags *d)
{
    InsModel *m = ins_model_new(src, d);
    if (!m)
        return NULL;
    Watch *w = xcalloc(1, sizeof *w);
    w->src = src;
    w->m = m;
    w->o = *o;
    if (w->o.every < 1)
        w->o.every = 1;
    const PsLayers *ls = ins_model_layers(m);
    w->nlayers = ls->n;
    w->gnorm = xcalloc((size_t)ls->n + 1, sizeof(Series));
    w->layers = xcalloc((size_t)ls->n + 1, sizeof(WLayer));
    for (int i = 0; i < ls->n; i++) {
        w->gnorm[i].name = xstrdup(ls->v[i].name);
        w->layers[i] = (WLayer){.name = ls->v[i].name, .act = ls->v[i].act_kind,
                                .loc = ls->v[i].loc, .act_norm = NAN, .grad_norm = NAN,
                                .grad_ratio = NAN, .saturation = NAN, .dead_frac = NAN};
    }
    for (int i = 0; i < src->nnodes; i++)
        if (learned(src, src->nodes[i]))
            w->nparams++;
    w->params = xcalloc((size_t)w->nparams + 1, sizeof(WParam));
    for (int i = 0, k = 0; i < src->nnodes; i++)
        if (learned(src, src->nodes[i]))
            w->params[k++] = (WParam){.name = src->nodes[i]->a.name, .norm = NAN, .grad_norm = NAN,
                                      .grad_ratio = NAN, .update_ratio = NAN,
                                      .step_grad_norm = NAN, .clip_frac = NAN};
    sb_init(&w->warnings);
    return w;
}

static void series_free(Series *s, int n)
{
    for (int i = 0; i < n; i++) {
        xfree(s[i].name);
        xfree(s[i].v);
    }
    xfree(s);
}

void ins_watch_free(Watch *w)
{
    if (!w)
        return;
    ins_model_free(w->m);
    xfree(w->epochs);
    series_free(w->metrics, w->nmetrics);
    xfree(w->rec_x);
    series_free(w->gnorm, w->nlayers);
    xfree(w->layers);
    xfree(w->params);
    sb_free(&w->warnings);
    xfree(w);
}

/* The slot of an epoch, added (with every metric extended by NAN) when new. */
static int slot_of(Watch *w, int epoch)
{
    for (int i = 0; i < w->nslots; i++)
        if (w->epochs[i] == epoch)
            return i;
    if (w->nslots == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 16;
        w->epochs = xrealloc(w->epochs, (size_t)w->cap * sizeof(double));
        for (int i = 0; i < w->nmetrics; i++)
            w->metrics[i].v = xrealloc(w->metrics[i].v, (size_t)w->cap * sizeof(double));
    }
    int k = w->nslots++;
    w->epochs[k] = epoch;
    for (int i = 0; i < w->nmetrics; i++)
        w->metrics[i].v[k] = NAN;
    return k;
}

/* A new record slot for the gradient-norm curves at x. */
static int record_slot(Watch *w, double x)
{
    if (w->nrec == w->rcap) {
        w->rcap = w->rcap ? 2 * w->rcap : 16;
        w->rec_x = xrealloc(w->rec_x, (size_t)w->rcap * sizeof(double));
        for (int i = 0; i < w->nlayers; i++)
            w->gnorm[i].v = xrealloc(w->gnorm[i].v, (size_t)w->rcap * sizeof(double));
    }
    int k = w->nrec++;
    w->rec_x[k] = x;
    for (int i = 0; i < w->nlayers; i++)
        w->gnorm[i].v[k] = NAN;
    return k;
}

void ins_watch_metric(Watch *w, int epoch, const char *name, double value)
{
    int k = slot_of(w, epoch), i = 0;
    while (i < w->nmetrics && strcmp(w->metrics[i].name, name) != 0)
        i++;
    if (i == w->nmetrics) {
        w->metrics = xrealloc(w->metrics, (size_t)(w->nmetrics + 1) * sizeof(Series));
        w->metrics[i].name = xstrdup(name);
        w->metrics[i].v = xmalloc((size_t)w->cap * sizeof(double));
        for (int j = 0; j < w->nslots; j++)
            w->metrics[i].v[j] = NAN;
        w->nmetrics++;
    }
    w->metrics[i].v[k] = value;
}

/* ---- step telemetry ---- */

static WParam *param_named(Watch *w, const char *name)
{
    for (int i = 0; i < w->nparams; i++)
        if (strcmp(w->params[i].name, name) == 0)
            return &w->params[i];
    return NULL;
}

static void add_grad_sq(WParam *p, double sq)
{
    p->gsum += sqrt(sq);
    p->gsteps++;
}

static void add_clip_frac(WParam *p, double f, bool *any)
{
    p->clip_sum += f;
    p->csteps++;
    *any |= f > 0;
}

static void add_clip_norm(Watch *w, double norm)
{
    double r = norm / w->src->train.clip_norm;
    w->norm_sum += norm;
    w->norm_steps++;
    w->norm_fired += r > 1;
    w->norm_ratio_max = r > w->norm_ratio_max ? r : w->norm_ratio_max;
}

void ins_watch_step(Watch *w, const char *const *names, const double *values, int n)
{
    bool any = false;
    for (int i = 0; i < n; i++) {
        WParam *p;
        if (strncmp(names[i], "grad_sq.", 8) == 0 && (p = param_named(w, names[i] + 8)))
            add_grad_sq(p, values[i]);
        else if (strncmp(names[i], "clip_frac.", 10) == 0 && (p = param_named(w, names[i] + 10)))
            add_clip_frac(p, values[i], &any);
        else if (strcmp(names[i], "clip_norm") == 0 && w->src->train.clip_norm > 0)
            add_clip_norm(w, values[i]);
    }
    w->any_clip += any;
    w->steps++;
}

static double clipped_fraction(const Tensor *g, double c)
{
    int64_t n = 0;
    for (int64_t i = 0; i < g->numel; i++)
        n += fabs(rt_get(g, i)) > c;
    return g->numel ? (double)n / (double)g->numel : 0;
}

static double grad_sumsq(const Tensor *g)
{
    double s = 0;
    for (int64_t i = 0; i < g->numel; i++)
        s += rt_get(g, i) * rt_get(g, i);
    return s;
}

void ins_watch_clip_step(Watch *w, const TensorMap *grads)
{
    const TrainConfig *tc = &w->src->train;
    double total = 0;
    bool any = false;
    char name[512];
    for (int i = 0; i < w->nparams; i++) {
        snprintf(name, sizeof name, "grad.%s", w->params[i].name);
        const Tensor *g = rt_map_get(grads, name);
        if (!g)
            continue;
        double sq = grad_sumsq(g);
        total += sq;
        add_grad_sq(&w->params[i], sq);
        if (tc->clip_value > 0)
            add_clip_frac(&w->params[i], clipped_fraction(g, tc->clip_value), &any);
    }
    if (tc->clip_norm > 0)
        add_clip_norm(w, sqrt(total));
    w->any_clip += any;
    w->steps++;
}

/* Move the step telemetry into the record and start counting again. */
static void close_steps(Watch *w)
{
    for (int i = 0; i < w->nparams; i++) {
        WParam *p = &w->params[i];
        p->step_grad_norm = p->gsteps ? p->gsum / p->gsteps : NAN;
        p->clip_frac = p->csteps ? p->clip_sum / p->csteps : NAN;
        p->gsum = p->clip_sum = 0;
        p->gsteps = p->csteps = 0;
    }
    w->last_steps = w->steps;
    const TrainConfig *tc = &w->src->train;
    double fired = tc->clip_norm > 0 ? w->norm_fired : w->any_clip;
    w->last_fired_frac = w->steps && (tc->clip_value > 0 || tc->clip_norm > 0) ? fired / w->steps : NAN;
    w->last_mean_norm = w->norm_steps ? w->norm_sum / w->norm_steps : NAN;
}

static void reset_steps(Watch *w)
{
    w->steps = w->any_clip = w->norm_fired = w->norm_steps = 0;
    w->norm_sum = w->norm_ratio_max = 0;
}

/* ---- printing a record ---- */

static void prefix(char *buf, size_t n, const WatchPoint *pt)
{
    if (pt->epoch_end)
        snprintf(buf, n, "watch: epoch %d:", pt->epoch);
    else
        snprintf(buf, n, "watch: epoch %d, step %lld:", pt->epoch, (long long)pt->step);
}

/* From the steps the trainer reported, or else from the sample batch. */
static void print_clip_value(Watch *w, const InsStats *s, const char *pre, FILE *log)
{
    double c = w->src->train.clip_value;
    fprintf(log, "%s clip by value %g:", pre, c);
    int shown = 0;
    bool from_steps = false;
    for (int i = 0; i < w->nparams; i++)
        from_steps |= !isnan(w->params[i].clip_frac);
    if (from_steps) {
        fprintf(log, " fired in %d of %d steps;", w->any_clip, w->steps);
        for (int i = 0; i < w->nparams; i++)
            if (w->params[i].clip_frac > 0)
                fprintf(log, "%s %s %.3g%% of elements", shown++ ? "," : "", w->params[i].name,
                        100 * w->params[i].clip_frac);
    } else {
        fputs(" (sample batch)", log);
        for (int i = 0; i < s->nparams; i++) {
            const InsParamStats *p = &s->params[i];
            InsSummary g = ins_acc_summary(&p->g);
            if (!g.valid || (fabs(g.min) <= c && fabs(g.max) <= c))
                continue;
            fprintf(log, "%s %s beyond +-%g (min %.3g, max %.3g)", shown++ ? "," : "", p->name, c,
                    g.min, g.max);
        }
    }
    fputs(shown ? "\n" : " nothing clipped\n", log);
}

static void print_clip_norm(Watch *w, const InsStats *s, const char *pre, FILE *log)
{
    double c = w->src->train.clip_norm;
    fprintf(log, "%s clip by norm %g:", pre, c);
    if (w->norm_steps) {
        fprintf(log,
                " fired in %d of %d steps (%.3g%%), mean pre-clip norm %.3g, largest %.3g x the "
                "threshold\n",
                w->norm_fired, w->norm_steps, 100.0 * w->norm_fired / w->norm_steps,
                w->norm_sum / w->norm_steps, w->norm_ratio_max);
        return;
    }
    double total = 0;
    for (int i = 0; i < s->nparams; i++)
        if (s->params[i].trainable && s->params[i].g.batches)
            total += s->params[i].g.norm2_sum / s->params[i].g.batches;
    fprintf(log, " (sample batch) global gradient norm %.3g, %.3g x the threshold\n", sqrt(total),
            sqrt(total) / c);
}

static void print_updates(const Watch *w, const char *pre, FILE *log)
{
    int k = 0;
    for (int i = 0; i < w->nparams; i++) {
        if (isnan(w->params[i].update_ratio))
            continue;
        if (k++ == 0)
            fprintf(log, "%s update |dW|/|W|:", pre);
        fprintf(log, "%s %s %.3g", k > 1 ? "," : "", w->params[i].name, w->params[i].update_ratio);
    }
    if (k)
        fputc('\n', log);
}

static void print_norms(const Watch *w, const char *pre, FILE *log)
{
    int k = 0;
    for (int i = 0; i < w->nlayers; i++) {
        if (isnan(w->layers[i].grad_ratio))
            continue;
        if (k++ == 0)
            fprintf(log, "%s grad norm vs last layer:", pre);
        fprintf(log, "%s %s %.3g", k > 1 ? "," : "", w->layers[i].name, w->layers[i].grad_ratio);
    }
    if (k)
        fputc('\n', log);
}

static void loc_str(char *buf, size_t n, SrcLoc l)
{
    if (l.file && l.line)
        snprintf(buf, n, " (%s:%d:%d)", l.file, l.line, l.col);
    else
        buf[0] = 0;
}

/* Warnings that start at this record (edge-triggered per layer and kind). */
static void collect_warnings(Watch *w, const char *pre)
{
    char at[300];
    sb_free(&w->warnings);
    sb_init(&w->warnings);
    w->nwarnings = 0;
    for (int i = 0; i < w->nlayers; i++) {
        WLayer *l = &w->layers[i];
        loc_str(at, sizeof at, l->loc);
        bool sat = l->saturation > PS_SATURATED_FRAC, dead = l->dead_frac > DEAD_FRAC,
             van = l->grad_ratio < VANISH_RATIO;
        if (sat && !l->sat_on) {
            sb_printf(&w->warnings,
                      "%s warning: layer '%s'%s is saturated: %.0f%% of its %s outputs within 1%% "
                      "of a bound\n",
                      pre, l->name, at, 100 * l->saturation, ps_act_name(l->act));
            w->nwarnings++;
        }
        if (dead && !l->dead_on) {
            sb_printf(&w->warnings,
                      "%s warning: layer '%s'%s has %lld of %lld ReLU units dead (zero for every "
                      "sample example)\n",
                      pre, l->name, at, (long long)l->dead, (long long)l->units);
            w->nwarnings++;
        }
        if (van && !l->vanish_on) {
            sb_printf(&w->warnings,
                      "%s warning: layer '%s'%s gradient vanishes: norm %.3g, %.3g x the last "
                      "layer's\n",
                      pre, l->name, at, l->grad_norm, l->grad_ratio);
            w->nwarnings++;
        }
        l->sat_on = sat;
        l->dead_on = dead;
        l->vanish_on = van;
    }
}

/* ---- taking a record ---- */

static double or_nan(double v)
{
    return v < 0 ? NAN : v;
}

static void record_layers(Watch *w, const InsStats *s, int slot)
{
    for (int i = 0; i < w->nlayers && i < s->nlayers; i++) {
        const InsLayerStats *sl = &s->layers[i];
        WLayer *l = &w->layers[i];
        InsSummary out = ins_acc_summary(&sl->out);
        l->act_norm = out.valid ? out.norm : NAN;
        l->grad_norm = or_nan(ins_layer_grad_norm(sl, s->batches));
        l->grad_ratio = or_nan(ins_layer_grad_ratio(s, i));
        l->saturation = or_nan(ins_layer_saturation(sl));
        int64_t dead = ins_layer_dead(sl);
        l->dead_frac = dead >= 0 && sl->units ? (double)dead / (double)sl->units : NAN;
        l->dead = dead;
        l->units = sl->units;
        w->gnorm[i].v[slot] = l->grad_norm;
    }
}

static void record_params(Watch *w, const InsStats *s, const TensorMap *before,
                          const TensorMap *after)
{
    for (int i = 0; i < w->nparams; i++) {
        WParam *p = &w->params[i];
        p->norm = p->grad_norm = p->grad_ratio = p->update_ratio = NAN;
        for (int j = 0; j < s->nparams; j++) {
            if (strcmp(s->params[j].name, p->name) != 0)
                continue;
            InsSummary ws = ins_acc_summary(&s->params[j].w), gs = ins_acc_summary(&s->params[j].g);
            p->norm = ws.valid ? ws.norm : NAN;
            p->grad_norm = gs.valid ? gs.norm : NAN;
            p->grad_ratio = or_nan(ins_param_grad_ratio(s, j));
        }
        const Tensor *b = before ? rt_map_get(before, p->name) : NULL,
                     *a = b ? rt_map_get(after, p->name) : NULL;
        if (a)
            p->update_ratio = or_nan(ins_update_ratio(b, a));
    }
}

/* ---- TensorBoard ---- */

static void tb_histo(RtEvents *ev, const char *kind, const char *name, int64_t step, const InsAcc *a)
{
    if (!a->count || !a->nsamples)
        return;
    char tag[512];
    snprintf(tag, sizeof tag, "%s/%s", kind, name);
    RtHisto h = {a->samples, a->nsamples, (double)a->count, a->min, a->max, a->sum, a->sumsq};
    rt_events_histo(ev, tag, step, &h);
}

static void tb_scalar(RtEvents *ev, const char *kind, const char *name, int64_t step, double v)
{
    char tag[512];
    snprintf(tag, sizeof tag, "%s/%s", kind, name);
    if (isfinite(v) && v >= 0)
        rt_events_scalar(ev, tag, step, v);
}

void ins_tb_stats(RtEvents *ev, const InsStats *s, int64_t step)
{
    for (int i = 0; i < s->nlayers; i++)
        tb_scalar(ev, "grad_norm", s->layers[i].name, step, ins_layer_grad_norm(&s->layers[i], s->batches));
    for (int i = 0; i < s->nparams; i++) {
        tb_histo(ev, "weights", s->params[i].name, step, &s->params[i].w);
        tb_histo(ev, "gradients", s->params[i].name, step, &s->params[i].g);
    }
    for (int i = 0; i < s->nlayers; i++)
        tb_histo(ev, "activations", s->layers[i].name, step, &s->layers[i].out);
}

/* A record's figures: per-parameter update ratios, then ins_tb_stats. */
static void tb_record(const Watch *w, const InsStats *s, int64_t step)
{
    for (int i = 0; i < w->nparams; i++)
        tb_scalar(w->o.events, "update_ratio", w->params[i].name, step, w->params[i].update_ratio);
    ins_tb_stats(w->o.events, s, step);
}

bool ins_watch_record(Watch *w, const WatchPoint *pt, const TensorMap *before,
                      const TensorMap *after, const TensorMap *batches, int nbatches, FILE *log,
                      Diags *d)
{
    InsStats s;
    ins_stats_init(&s, w->m, w->o.events != NULL);
    RunOpts ro = {w->o.seed, (uint64_t)(pt->step >= 0 ? pt->step : pt->epoch)};
    bool ok = true;
    for (int k = 0; k < nbatches && ok; k++)
        ok = ins_stats_add_batch(&s, w->m, after, &batches[k], &ro, d);
    if (ok) {
        char pre[96];
        prefix(pre, sizeof pre, pt);
        close_steps(w);
        record_layers(w, &s, record_slot(w, pt->x));
        record_params(w, &s, before, after);
        collect_warnings(w, pre);
        w->recorded = true;
        if (w->o.events)
            tb_record(w, &s, pt->step >= 0 ? pt->step : pt->epoch);
        if (log && !w->o.quiet) {
            print_updates(w, pre, log);
            print_norms(w, pre, log);
        }
        if (log) {
            if (w->src->train.clip_value > 0)
                print_clip_value(w, &s, pre, log);
            if (w->src->train.clip_norm > 0)
                print_clip_norm(w, &s, pre, log);
        }
        if (log && w->nwarnings)
            fputs(w->warnings.s, log);
    }
    reset_steps(w);
    ins_stats_free(&s);
    return ok;
}

bool ins_watch_epoch(Watch *w, int epoch, const TensorMap *before, const TensorMap *after,
                     const TensorMap *batch, FILE *log, Diags *d)
{
    if (epoch % w->o.every != 0)
        return true;
    WatchPoint pt = {epoch, -1, epoch, true};
    return ins_watch_record(w, &pt, before, after, batch, 1, log, d);
}

int ins_watch_nwarnings(const Watch *w)
{
    return w->nwarnings;
}

/* ---- CSV and JSON ---- */

static bool has_sat(const WLayer *l)
{
    return ps_act_saturates(l->act);
}

void ins_watch_csv_header(const Watch *w, FILE *f)
{
    for (int i = 0; i < w->nlayers; i++) {
        const char *n = w->layers[i].name;
        fprintf(f, ",layer.%s.act_norm,layer.%s.grad_norm,layer.%s.grad_ratio", n, n, n);
        if (has_sat(&w->layers[i]))
            fprintf(f, ",layer.%s.saturation", n);
        if (w->layers[i].act == ACT_RELU)
            fprintf(f, ",layer.%s.dead_frac", n);
    }
    bool cv = w->src->train.clip_value > 0, cn = w->src->train.clip_norm > 0;
    for (int i = 0; i < w->nparams; i++) {
        const char *n = w->params[i].name;
        fprintf(f, ",param.%s.norm,param.%s.grad_norm,param.%s.grad_ratio,param.%s.update_ratio,"
                   "param.%s.step_grad_norm",
                n, n, n, n, n);
        if (cv)
            fprintf(f, ",param.%s.clip_frac", n);
    }
    if (cv || cn)
        fputs(",clip.fired_frac", f);
    if (cn)
        fputs(",clip.mean_norm", f);
}

static void csv_val(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, ",%.6g", v);
    else if (isinf(v))
        fputs(v > 0 ? ",inf" : ",-inf", f);
    else
        fputc(',', f);
}

void ins_watch_csv_row(const Watch *w, FILE *f)
{
    bool r = w->recorded;
    for (int i = 0; i < w->nlayers; i++) {
        const WLayer *l = &w->layers[i];
        csv_val(f, r ? l->act_norm : NAN);
        csv_val(f, r ? l->grad_norm : NAN);
        csv_val(f, r ? l->grad_ratio : NAN);
        if (has_sat(l))
            csv_val(f, r ? l->saturation : NAN);
        if (l->act == ACT_RELU)
            csv_val(f, r ? l->dead_frac : NAN);
    }
    bool cv = w->src->train.clip_value > 0, cn = w->src->train.clip_norm > 0;
    for (int i = 0; i < w->nparams; i++) {
        const WParam *p = &w->params[i];
        csv_val(f, r ? p->norm : NAN);
        csv_val(f, r ? p->grad_norm : NAN);
        csv_val(f, r ? p->grad_ratio : NAN);
        csv_val(f, r ? p->update_ratio : NAN);
        csv_val(f, r ? p->step_grad_norm : NAN);
        if (cv)
            csv_val(f, r ? p->clip_frac : NAN);
    }
    if (cv || cn)
        csv_val(f, r ? w->last_fired_frac : NAN);
    if (cn)
        csv_val(f, r ? w->last_mean_norm : NAN);
}

static void json_num(FILE *f, const char *key, double v, bool first)
{
    fprintf(f, "%s\"%s\": ", first ? "" : ", ", key);
    if (isfinite(v))
        fprintf(f, "%.9g", v);
    else
        fputs(isinf(v) ? (v > 0 ? "1e999" : "-1e999") : "null", f);
}

static void json_str(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void json_warnings(const Watch *w, FILE *f)
{
    fputs("\"warnings\": [", f);
    const char *s = w->nwarnings ? w->warnings.s : "";
    int k = 0;
    while (*s) {
        const char *e = strchr(s, '\n');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        fputs(k++ ? ", " : "", f);
        json_str(f, s, n);
        s += n + (e != NULL);
    }
    fputc(']', f);
}

void ins_watch_json(const Watch *w, FILE *f)
{
    fputs("{\"layers\": {", f);
    for (int i = 0; i < w->nlayers; i++) {
        const WLayer *l = &w->layers[i];
        fprintf(f, "%s\"%s\": {", i ? ", " : "", l->name);
        json_num(f, "act_norm", l->act_norm, true);
        json_num(f, "grad_norm", l->grad_norm, false);
        json_num(f, "grad_ratio", l->grad_ratio, false);
        if (has_sat(l))
            json_num(f, "saturation", l->saturation, false);
        if (l->act == ACT_RELU)
            json_num(f, "dead_frac", l->dead_frac, false);
        fputc('}', f);
    }
    fputs("}, \"params\": {", f);
    bool cv = w->src->train.clip_value > 0, cn = w->src->train.clip_norm > 0;
    for (int i = 0; i < w->nparams; i++) {
        const WParam *p = &w->params[i];
        fprintf(f, "%s\"%s\": {", i ? ", " : "", p->name);
        json_num(f, "norm", p->norm, true);
        json_num(f, "grad_norm", p->grad_norm, false);
        json_num(f, "grad_ratio", p->grad_ratio, false);
        json_num(f, "update_ratio", p->update_ratio, false);
        json_num(f, "step_grad_norm", p->step_grad_norm, false);
        if (cv)
            json_num(f, "clip_frac", p->clip_frac, false);
        fputc('}', f);
    }
    fprintf(f, "}, \"clip\": {\"steps\": %d", w->last_steps);
    if (cv || cn)
        json_num(f, "fired_frac", w->last_fired_frac, false);
    if (cn)
        json_num(f, "mean_norm", w->last_mean_norm, false);
    fputs("}, ", f);
    json_warnings(w, f);
    fputc('}', f);
}

/* ---- pictures ---- */

bool ins_plot_curves(const char *path, const char *title, const char *ylabel, bool logy,
                     const double *x, int npoints, const InsSeries *s, int nseries, Diags *d)
{
    PlotSeries *ps = xcalloc((size_t)nseries + 1, sizeof(PlotSeries));
    for (int i = 0; i < nseries; i++)
        ps[i] = (PlotSeries){s[i].name, PLOT_LINE, x, s[i].y, npoints};
    PlotPanel panel = {title, "epoch", ylabel, logy, ps, nseries, NULL, 0};
    Plot p = {NULL, 1, 640, 380, &panel, 1};
    bool ok = rt_plot_write(&p, path, d);
    xfree(ps);
    return ok;
}

static bool is_loss(const char *name)
{
    return strstr(name, "loss") != NULL;
}

/* Loss-like metrics in one panel, the others in a second. */
static bool plot_metrics(Watch *w, const char *path, Diags *d)
{
    PlotSeries *ps = xcalloc((size_t)w->nmetrics + 1, sizeof(PlotSeries));
    int nl = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < w->nmetrics; i++)
            if (is_loss(w->metrics[i].name) == (pass == 0))
                ps[nl++] = (PlotSeries){w->metrics[i].name, PLOT_LINE, w->epochs, w->metrics[i].v,
                                        w->nslots};
    int nloss = 0;
    for (int i = 0; i < w->nmetrics; i++)
        nloss += is_loss(w->metrics[i].name);
    PlotPanel panels[2] = {{"loss", "epoch", "loss", false, ps, nloss, NULL, 0},
                           {"metrics", "epoch", "value", false, ps + nloss, w->nmetrics - nloss, NULL, 0}};
    int np = w->nmetrics - nloss ? 2 : 1;
    Plot p = {w->src->name, np, 480, 320, nloss ? panels : panels + 1, nloss ? np : 1};
    bool ok = rt_plot_write(&p, path, d);
    xfree(ps);
    return ok;
}

static bool plot_norms(Watch *w, const char *path, Diags *d)
{
    InsSeries *s = xcalloc((size_t)w->nlayers + 1, sizeof(InsSeries));
    for (int i = 0; i < w->nlayers; i++)
        s[i] = (InsSeries){w->gnorm[i].name, w->gnorm[i].v};
    char title[256];
    snprintf(title, sizeof title, "%s: gradient norm per layer (sample batch)", w->src->name);
    bool ok = ins_plot_curves(path, title, "norm (log)", true, w->rec_x, w->nrec, s, w->nlayers, d);
    xfree(s);
    return ok;
}

bool ins_watch_plots(Watch *w, const char *dir, Diags *d)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        SrcLoc l = {diags_intern_file(d, dir), 0, 0};
        diag_error(d, l, "cannot create the directory: %s", strerror(errno));
        return false;
    }
    static const char *ext[] = {"svg", "png"};
    bool ok = true;
    for (int k = 0; k < 2 && ok; k++) {
        char *path = NULL;
        if (w->nmetrics) {
            StrBuf b;
            sb_init(&b);
            sb_printf(&b, "%s/curves.%s", dir, ext[k]);
            path = sb_take(&b);
            ok = plot_metrics(w, path, d);
            xfree(path);
        }
        if (!w->nrec)
            continue;
        StrBuf b;
        sb_init(&b);
        sb_printf(&b, "%s/grad_norms.%s", dir, ext[k]);
        path = sb_take(&b);
        ok = ok && plot_norms(w, path, d);
        xfree(path);
    }
    return ok;
}
