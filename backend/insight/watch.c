/* Watching a training run: after each epoch the update ratio |dW|/|W| of
 * every trainable parameter, per-layer statistics on a sample batch with
 * one-line warnings (saturated, dead, vanishing), clipping telemetry, and
 * per-epoch series drawn as curves at the end. The trainer calls it; it
 * evaluates with the interpreter and never changes parameters. */
#include "insight.h"
#include "runtime/plot.h"

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
    double *v; /* per epoch slot; NAN when missing */
} Series;

typedef struct ClipParam {
    const char *name;
    double frac_sum; /* sum over steps of the fraction of elements clipped */
    int fired;       /* steps where some element was clipped */
} ClipParam;

struct Watch {
    const Graph *src;
    InsModel *m;
    WatchOpts o;
    int nslots, cap;
    double *epochs;
    Series *metrics;
    int nmetrics;
    Series *gnorm; /* one per layer, gradient norm on the sample batch */
    int nlayers;
    ClipParam *clip;
    int nclip, clip_steps, norm_fired;
    double norm_ratio_max;
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
    for (int i = 0; i < ls->n; i++)
        w->gnorm[i].name = xstrdup(ls->v[i].name);
    for (int i = 0; i < src->nnodes; i++)
        if (learned(src, src->nodes[i]))
            w->nclip++;
    w->clip = xcalloc((size_t)w->nclip + 1, sizeof(ClipParam));
    for (int i = 0, k = 0; i < src->nnodes; i++)
        if (learned(src, src->nodes[i]))
            w->clip[k++].name = src->nodes[i]->a.name;
    return w;
}

static void series_free(Series *s, int n)
{
    for (int i = 0; i < n; i++) {
        free(s[i].name);
        free(s[i].v);
    }
    free(s);
}

void ins_watch_free(Watch *w)
{
    if (!w)
        return;
    ins_model_free(w->m);
    free(w->epochs);
    series_free(w->metrics, w->nmetrics);
    series_free(w->gnorm, w->nlayers);
    free(w->clip);
    free(w);
}

/* The slot of an epoch, added (with every series extended by NAN) when new. */
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
        for (int i = 0; i < w->nlayers; i++)
            w->gnorm[i].v = xrealloc(w->gnorm[i].v, (size_t)w->cap * sizeof(double));
    }
    int k = w->nslots++;
    w->epochs[k] = epoch;
    for (int i = 0; i < w->nmetrics; i++)
        w->metrics[i].v[k] = NAN;
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

/* ---- clipping ---- */

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
    char name[512];
    for (int i = 0; i < w->nclip; i++) {
        snprintf(name, sizeof name, "grad.%s", w->clip[i].name);
        const Tensor *g = rt_map_get(grads, name);
        if (!g)
            continue;
        total += grad_sumsq(g);
        if (tc->clip_value > 0) {
            double f = clipped_fraction(g, tc->clip_value);
            w->clip[i].frac_sum += f;
            w->clip[i].fired += f > 0;
        }
    }
    if (tc->clip_norm > 0) {
        double r = sqrt(total) / tc->clip_norm;
        w->norm_fired += r > 1;
        w->norm_ratio_max = r > w->norm_ratio_max ? r : w->norm_ratio_max;
    }
    w->clip_steps++;
}

/* From the steps the trainer reported, or else from the sample batch. */
static void print_clip_value(Watch *w, const InsStats *s, int epoch, FILE *log)
{
    double c = w->src->train.clip_value;
    fprintf(log, "watch: epoch %d: clip by value %g:", epoch, c);
    int shown = 0;
    if (w->clip_steps) {
        int fired = 0;
        for (int i = 0; i < w->nclip; i++)
            fired = w->clip[i].fired > fired ? w->clip[i].fired : fired;
        fprintf(log, " fired in %d of %d steps;", fired, w->clip_steps);
        for (int i = 0; i < w->nclip; i++)
            if (w->clip[i].fired)
                fprintf(log, "%s %s %.3g%% of elements", shown++ ? "," : "", w->clip[i].name,
                        100 * w->clip[i].frac_sum / w->clip_steps);
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

static void print_clip_norm(Watch *w, const InsStats *s, int epoch, FILE *log)
{
    double c = w->src->train.clip_norm;
    fprintf(log, "watch: epoch %d: clip by norm %g:", epoch, c);
    if (w->clip_steps) {
        fprintf(log, " fired in %d of %d steps, largest global norm %.3g x the threshold\n",
                w->norm_fired, w->clip_steps, w->norm_ratio_max);
        return;
    }
    double total = 0;
    for (int i = 0; i < s->nparams; i++)
        if (s->params[i].g.batches)
            total += s->params[i].g.norm2_sum;
    fprintf(log, " (sample batch) global gradient norm %.3g, %.3g x the threshold\n", sqrt(total),
            sqrt(total) / c);
}

static void reset_clip(Watch *w)
{
    for (int i = 0; i < w->nclip; i++) {
        w->clip[i].frac_sum = 0;
        w->clip[i].fired = 0;
    }
    w->clip_steps = w->norm_fired = 0;
    w->norm_ratio_max = 0;
}

/* ---- per epoch ---- */

static void print_updates(const Watch *w, int epoch, const TensorMap *before,
                          const TensorMap *after, FILE *log)
{
    int k = 0;
    for (int i = 0; i < w->src->nnodes; i++) {
        const Node *p = w->src->nodes[i];
        const Tensor *b = learned(w->src, p) ? rt_map_get(before, p->a.name) : NULL,
                     *a = b ? rt_map_get(after, p->a.name) : NULL;
        if (!a)
            continue;
        if (k++ == 0)
            fprintf(log, "watch: epoch %d: update |dW|/|W|:", epoch);
        fprintf(log, "%s %s %.3g", k > 1 ? "," : "", p->a.name, ins_update_ratio(b, a));
    }
    if (k)
        fputc('\n', log);
}

static void print_norms(Watch *w, const InsStats *s, int epoch, int slot, FILE *log)
{
    int k = 0;
    for (int i = 0; i < s->nlayers; i++) {
        double r = ins_layer_grad_ratio(s, i), n = ins_layer_grad_norm(&s->layers[i], s->batches);
        if (n >= 0)
            w->gnorm[i].v[slot] = n;
        if (r < 0)
            continue;
        if (k++ == 0)
            fprintf(log, "watch: epoch %d: grad norm vs last layer:", epoch);
        fprintf(log, "%s %s %.3g", k > 1 ? "," : "", s->layers[i].name, r);
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

static void print_warnings(const InsStats *s, int epoch, FILE *log)
{
    char at[300];
    for (int i = 0; i < s->nlayers; i++) {
        const InsLayerStats *l = &s->layers[i];
        loc_str(at, sizeof at, l->loc);
        double sat = ins_layer_saturation(l), r = ins_layer_grad_ratio(s, i);
        int64_t dead = ins_layer_dead(l);
        if (sat > PS_SATURATED_FRAC)
            fprintf(log,
                    "watch: epoch %d: warning: layer '%s'%s is saturated: %.0f%% of its %s outputs "
                    "within 1%% of a bound\n",
                    epoch, l->name, at, 100 * sat, ps_act_name(l->act));
        if (dead >= 0 && l->units && (double)dead / (double)l->units > DEAD_FRAC)
            fprintf(log,
                    "watch: epoch %d: warning: layer '%s'%s has %lld of %lld ReLU units dead (zero "
                    "for every example)\n",
                    epoch, l->name, at, (long long)dead, (long long)l->units);
        if (r >= 0 && r < VANISH_RATIO)
            fprintf(log,
                    "watch: epoch %d: warning: layer '%s'%s gradient vanishes: norm %.3g, %.3g x "
                    "the last layer's\n",
                    epoch, l->name, at, ins_layer_grad_norm(l, s->batches), r);
    }
}

bool ins_watch_epoch(Watch *w, int epoch, const TensorMap *before, const TensorMap *after,
                     const TensorMap *batch, FILE *log, Diags *d)
{
    if (epoch % w->o.every != 0)
        return true;
    int slot = slot_of(w, epoch);
    if (before && !w->o.quiet)
        print_updates(w, epoch, before, after, log);
    InsStats s;
    ins_stats_init(&s, w->m, false);
    RunOpts ro = {w->o.seed, (uint64_t)epoch};
    bool ok = ins_stats_add_batch(&s, w->m, after, batch, &ro, d);
    if (ok) {
        if (!w->o.quiet)
            print_norms(w, &s, epoch, slot, log);
        else
            for (int i = 0; i < s.nlayers; i++)
                w->gnorm[i].v[slot] = ins_layer_grad_norm(&s.layers[i], s.batches);
        print_warnings(&s, epoch, log);
        if (w->src->train.clip_value > 0)
            print_clip_value(w, &s, epoch, log);
        if (w->src->train.clip_norm > 0)
            print_clip_norm(w, &s, epoch, log);
    }
    reset_clip(w);
    ins_stats_free(&s);
    return ok;
}

/* ---- pictures ---- */

bool ins_plot_curves(const char *path, const char *title, const char *ylabel, bool logy,
                     const double *x, int npoints, const InsSeries *s, int nseries, Diags *d)
{
    PlotSeries *ps = xcalloc((size_t)nseries + 1, sizeof(PlotSeries));
    for (int i = 0; i < nseries; i++)
        ps[i] = (PlotSeries){s[i].name, PLOT_LINE, x, s[i].y, npoints};
    PlotPanel panel = {title, "epoch", ylabel, logy, ps, nseries};
    Plot p = {NULL, 1, 640, 380, &panel, 1};
    bool ok = rt_plot_write(&p, path, d);
    free(ps);
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
    PlotPanel panels[2] = {{"loss", "epoch", "loss", false, ps, nloss},
                           {"metrics", "epoch", "value", false, ps + nloss, w->nmetrics - nloss}};
    int np = w->nmetrics - nloss ? 2 : 1;
    Plot p = {w->src->name, np, 480, 320, nloss ? panels : panels + 1, nloss ? np : 1};
    bool ok = rt_plot_write(&p, path, d);
    free(ps);
    return ok;
}

static bool plot_norms(Watch *w, const char *path, Diags *d)
{
    InsSeries *s = xcalloc((size_t)w->nlayers + 1, sizeof(InsSeries));
    for (int i = 0; i < w->nlayers; i++)
        s[i] = (InsSeries){w->gnorm[i].name, w->gnorm[i].v};
    char title[256];
    snprintf(title, sizeof title, "%s: gradient norm per layer (sample batch)", w->src->name);
    bool ok = ins_plot_curves(path, title, "norm (log)", true, w->epochs, w->nslots, s, w->nlayers, d);
    free(s);
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
            free(path);
        }
        StrBuf b;
        sb_init(&b);
        sb_printf(&b, "%s/grad_norms.%s", dir, ext[k]);
        path = sb_take(&b);
        ok = ok && plot_norms(w, path, d);
        free(path);
    }
    return ok;
}
