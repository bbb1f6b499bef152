/* Printing statistics: tables of layers and parameters, text histograms,
 * two runs side by side, JSON, and histogram pictures. */
#include "insight.h"
#include "backend/insight/plot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- shared helpers ---- */

static void num(FILE *f, double v)
{
    if (isnan(v))
        fprintf(f, " %11s", "-");
    else
        fprintf(f, " %11.4g", v);
}

static const char *where(SrcLoc l, char *buf, size_t n)
{
    if (l.file && l.line)
        snprintf(buf, n, "%s:%d:%d", l.file, l.line, l.col);
    else
        snprintf(buf, n, "-");
    return buf;
}

static void shape_str(const Node *p, char *buf, size_t n)
{
    ir_shape_str(&p->shape, buf, n);
}

typedef struct Quantity {
    const char *label;
    const InsAcc *acc;
} Quantity;

static int layer_quantities(const InsLayerStats *l, Quantity *q)
{
    int n = 0;
    q[n++] = (Quantity){l->has_act ? "pre-act" : "output", &l->pre};
    if (l->has_act)
        q[n++] = (Quantity){"activation", &l->out};
    q[n++] = (Quantity){l->has_act ? "grad pre" : "grad out", &l->grad_pre};
    if (l->has_act)
        q[n++] = (Quantity){"grad act", &l->grad_out};
    return n;
}

static void summary_row(FILE *f, const InsAcc *a)
{
    InsSummary s = ins_acc_summary(a);
    if (!s.valid) {
        for (int i = 0; i < 5; i++)
            num(f, NAN);
    } else {
        num(f, s.mean);
        num(f, s.std);
        num(f, s.min);
        num(f, s.max);
        num(f, s.norm);
    }
    if (s.nonfinite)
        fprintf(f, "  (%lld non-finite)", (long long)s.nonfinite);
    fputc('\n', f);
}

static void fmt_sat(char *buf, size_t n, const InsLayerStats *l)
{
    double sat = ins_layer_saturation(l);
    if (sat < 0)
        snprintf(buf, n, "-");
    else
        snprintf(buf, n, "%.1f%%", 100 * sat);
}

static void fmt_dead(char *buf, size_t n, const InsLayerStats *l)
{
    int64_t dead = ins_layer_dead(l);
    if (dead < 0)
        snprintf(buf, n, "-");
    else
        snprintf(buf, n, "%lld/%lld", (long long)dead, (long long)l->units);
}

/* ---- tables ---- */

static void print_layer_summary(const InsStats *s, FILE *f)
{
    fprintf(f, "%-14s %-8s %10s %10s %11s %11s  %s\n", "layer", "act", "saturated", "dead relu",
            "grad norm", "vs last", "source");
    for (int i = 0; i < s->nlayers; i++) {
        const InsLayerStats *l = &s->layers[i];
        char sat[32], dead[48], loc[256];
        fmt_sat(sat, sizeof sat, l);
        fmt_dead(dead, sizeof dead, l);
        double gn = ins_layer_grad_norm(l, s->batches), gr = ins_layer_grad_ratio(s, i);
        fprintf(f, "%-14s %-8s %10s %10s", l->name, ps_act_name(l->act), sat, dead);
        num(f, gn < 0 ? NAN : gn);
        num(f, gr < 0 ? NAN : gr);
        fprintf(f, "  %s\n", where(l->loc, loc, sizeof loc));
    }
}

static void print_layer_values(const InsStats *s, FILE *f)
{
    fprintf(f, "%-14s %-11s %11s %11s %11s %11s %11s\n", "layer", "value", "mean", "std", "min",
            "max", "norm");
    for (int i = 0; i < s->nlayers; i++) {
        const InsLayerStats *l = &s->layers[i];
        if (!l->pre.batches)
            continue;
        Quantity q[4];
        int n = layer_quantities(l, q);
        for (int k = 0; k < n; k++) {
            fprintf(f, "%-14s %-11s", k ? "" : l->name, q[k].label);
            summary_row(f, q[k].acc);
        }
    }
}

static void print_params(const InsStats *s, FILE *f)
{
    fprintf(f, "%-26s %-12s %-7s %11s %11s %11s %11s %11s %11s\n", "parameter", "shape", "value",
            "mean", "std", "min", "max", "norm", "|grad|/|W|");
    for (int i = 0; i < s->nparams; i++) {
        const InsParamStats *p = &s->params[i];
        char sh[96];
        shape_str(p->node, sh, sizeof sh);
        fprintf(f, "%-26s %-12s %-7s", p->name, sh, "weight");
        summary_row(f, &p->w);
        if (!p->g.batches) {
            fprintf(f, "%-26s %-12s %-7s %s\n", "", "", "grad",
                    p->node->a.role == ROLE_STATE ? "(state: no gradient)"
                    : p->trainable                ? "(no gradient)"
                                                  : "(frozen: no gradient)");
            continue;
        }
        fprintf(f, "%-26s %-12s %-7s", "", "", "grad");
        InsSummary g = ins_acc_summary(&p->g);
        num(f, g.mean);
        num(f, g.std);
        num(f, g.min);
        num(f, g.max);
        num(f, g.norm);
        double r = ins_param_grad_ratio(s, i);
        num(f, r < 0 ? NAN : r);
        fputc('\n', f);
    }
}

void ins_stats_print(const InsStats *s, FILE *f)
{
    fprintf(f, "model %s: %d batch%s, %lld example%s, training mode; mean loss %.6g\n\n", s->model,
            s->batches, s->batches == 1 ? "" : "es", (long long)s->examples,
            s->examples == 1 ? "" : "s", s->batches ? s->loss_sum / s->batches : NAN);
    print_layer_summary(s, f);
    fputc('\n', f);
    print_layer_values(s, f);
    fputc('\n', f);
    print_params(s, f);
}

/* ---- histograms ---- */

typedef struct Hist {
    int n;
    double lo, hi;
    double *edges, *ca, *cb; /* cb NULL without a second run */
} Hist;

static bool range_of(const InsAcc *a, double *lo, double *hi)
{
    if (!a || !a->nsamples)
        return false;
    for (int i = 0; i < a->nsamples; i++) {
        if (a->samples[i] < *lo)
            *lo = a->samples[i];
        if (a->samples[i] > *hi)
            *hi = a->samples[i];
    }
    return true;
}

static void count_into(const InsAcc *a, const Hist *h, double *c)
{
    for (int i = 0; i < h->n; i++)
        c[i] = 0;
    if (!a)
        return;
    double w = (h->hi - h->lo) / h->n;
    for (int i = 0; i < a->nsamples; i++) {
        int k = w > 0 ? (int)((a->samples[i] - h->lo) / w) : 0;
        c[k < 0 ? 0 : k >= h->n ? h->n - 1 : k] += 1;
    }
}

/* Bins over the range of both sample sets; false when there are none. */
static bool hist_make(Hist *h, const InsAcc *a, const InsAcc *b, int bins)
{
    h->lo = INFINITY;
    h->hi = -INFINITY;
    bool any = range_of(a, &h->lo, &h->hi);
    any |= range_of(b, &h->lo, &h->hi);
    if (!any)
        return false;
    if (h->lo == h->hi) {
        double d = h->lo == 0 ? 1e-12 : fabs(h->lo) * 1e-6;
        h->lo -= d;
        h->hi += d;
    }
    h->n = bins;
    h->edges = xmalloc(((size_t)bins + 1) * sizeof(double));
    for (int i = 0; i <= bins; i++)
        h->edges[i] = h->lo + (h->hi - h->lo) * i / bins;
    h->ca = xmalloc((size_t)bins * sizeof(double));
    count_into(a, h, h->ca);
    h->cb = NULL;
    if (b) {
        h->cb = xmalloc((size_t)bins * sizeof(double));
        count_into(b, h, h->cb);
    }
    return true;
}

static void hist_free(Hist *h)
{
    xfree(h->edges);
    xfree(h->ca);
    xfree(h->cb);
}

/* A bar of '#'; padded to width when another column follows. */
static void bar(FILE *f, double c, double max, int width, bool pad)
{
    int n = max > 0 ? (int)lround(c / max * width) : 0;
    if (c > 0 && n == 0)
        n = 1;
    for (int i = 0; i < (pad ? width : n); i++)
        fputc(i < n ? '#' : ' ', f);
}

static void text_hist(FILE *f, const char *title, const InsAcc *a, const InsAcc *b, int bins,
                      int width)
{
    Hist h;
    if (!hist_make(&h, a, b, bins))
        return;
    double max = 0;
    for (int i = 0; i < bins; i++) {
        max = h.ca[i] > max ? h.ca[i] : max;
        max = h.cb && h.cb[i] > max ? h.cb[i] : max;
    }
    fprintf(f, "%s (%d value%s%s)\n", title, a->nsamples, a->nsamples == 1 ? "" : "s",
            a->stride > 1 ? ", sampled" : "");
    for (int i = 0; i < bins; i++) {
        fprintf(f, "  [%10.3g, %10.3g) %7.0f ", h.edges[i], h.edges[i + 1], h.ca[i]);
        bar(f, h.ca[i], max, width, h.cb != NULL);
        if (h.cb) {
            fprintf(f, " | %7.0f ", h.cb[i]);
            bar(f, h.cb[i], max, width, false);
        }
        fputc('\n', f);
    }
    fputc('\n', f);
    hist_free(&h);
}

void ins_stats_print_hist(const InsStats *s, const InsStats *b, FILE *f, int bins, int width)
{
    char title[256];
    for (int i = 0; i < s->nlayers; i++) {
        const InsLayerStats *l = &s->layers[i], *lb = b ? &b->layers[i] : NULL;
        Quantity q[4], qb[4];
        int n = layer_quantities(l, q);
        if (lb)
            layer_quantities(lb, qb);
        for (int k = 0; k < n; k++) {
            snprintf(title, sizeof title, "layer %s: %s", l->name, q[k].label);
            text_hist(f, title, q[k].acc, lb ? qb[k].acc : NULL, bins, width);
        }
    }
    for (int i = 0; i < s->nparams; i++) {
        const InsParamStats *p = &s->params[i], *pb = b ? &b->params[i] : NULL;
        snprintf(title, sizeof title, "parameter %s: weights", p->name);
        text_hist(f, title, &p->w, pb ? &pb->w : NULL, bins, width);
        snprintf(title, sizeof title, "parameter %s: gradient", p->name);
        text_hist(f, title, &p->g, pb ? &pb->g : NULL, bins, width);
    }
}

/* ---- side by side ---- */

static void cmp_row(FILE *f, const char *name, const char *what, const InsAcc *a, const InsAcc *b)
{
    InsSummary x = ins_acc_summary(a), y = ins_acc_summary(b);
    fprintf(f, "%-26s %-11s", name, what);
    num(f, x.valid ? x.mean : NAN);
    num(f, x.valid ? x.std : NAN);
    fputs("  |", f);
    num(f, y.valid ? y.mean : NAN);
    num(f, y.valid ? y.std : NAN);
    fputc('\n', f);
}

void ins_stats_print_compare(const InsStats *a, const InsStats *b, const char *la, const char *lb,
                             FILE *f)
{
    fprintf(f, "model %s: %s (left) vs %s (right); %d batch%s of statistics each\n", a->model, la,
            lb, a->batches, a->batches == 1 ? "" : "es");
    fprintf(f, "mean loss %.6g | %.6g\n\n", a->batches ? a->loss_sum / a->batches : NAN,
            b->batches ? b->loss_sum / b->batches : NAN);
    fprintf(f, "%-14s %-8s %10s %10s %11s  | %10s %10s %11s\n", "layer", "act", "saturated",
            "dead relu", "grad vs last", "saturated", "dead relu", "grad vs last");
    for (int i = 0; i < a->nlayers && i < b->nlayers; i++) {
        char s1[32], s2[32], d1[48], d2[48];
        fmt_sat(s1, sizeof s1, &a->layers[i]);
        fmt_sat(s2, sizeof s2, &b->layers[i]);
        fmt_dead(d1, sizeof d1, &a->layers[i]);
        fmt_dead(d2, sizeof d2, &b->layers[i]);
        double r1 = ins_layer_grad_ratio(a, i), r2 = ins_layer_grad_ratio(b, i);
        fprintf(f, "%-14s %-8s %10s %10s", a->layers[i].name, ps_act_name(a->layers[i].act), s1, d1);
        num(f, r1 < 0 ? NAN : r1);
        fprintf(f, "  | %10s %10s", s2, d2);
        num(f, r2 < 0 ? NAN : r2);
        fputc('\n', f);
    }
    fprintf(f, "\n%-26s %-11s %11s %11s  | %11s %11s\n", "layer / parameter", "value", "mean",
            "std", "mean", "std");
    for (int i = 0; i < a->nlayers && i < b->nlayers; i++) {
        Quantity qa[4], qb[4];
        int n = layer_quantities(&a->layers[i], qa);
        layer_quantities(&b->layers[i], qb);
        for (int k = 0; k < n; k++)
            cmp_row(f, k ? "" : a->layers[i].name, qa[k].label, qa[k].acc, qb[k].acc);
    }
    for (int i = 0; i < a->nparams && i < b->nparams; i++) {
        cmp_row(f, a->params[i].name, "weight", &a->params[i].w, &b->params[i].w);
        if (a->params[i].g.batches)
            cmp_row(f, "", "grad", &a->params[i].g, &b->params[i].g);
    }
}

/* ---- JSON ---- */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 32)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void json_num(FILE *f, double v)
{
    if (!isfinite(v))
        fputs("null", f);
    else
        fprintf(f, "%.17g", v);
}

static void json_summary(FILE *f, const char *key, const InsAcc *a)
{
    InsSummary s = ins_acc_summary(a);
    json_str(f, key);
    if (!s.valid && !s.nonfinite) {
        fputs(":null", f);
        return;
    }
    fputs(":{\"mean\":", f);
    json_num(f, s.valid ? s.mean : NAN);
    fputs(",\"std\":", f);
    json_num(f, s.valid ? s.std : NAN);
    fputs(",\"min\":", f);
    json_num(f, s.valid ? s.min : NAN);
    fputs(",\"max\":", f);
    json_num(f, s.valid ? s.max : NAN);
    fputs(",\"norm\":", f);
    json_num(f, s.valid ? s.norm : NAN);
    fprintf(f, ",\"count\":%lld,\"nonfinite\":%lld}", (long long)s.count, (long long)s.nonfinite);
}

static void json_layer(FILE *f, const InsStats *s, int i)
{
    const InsLayerStats *l = &s->layers[i];
    char loc[256];
    fputs("{\"name\":", f);
    json_str(f, l->name);
    fputs(",\"act\":", f);
    json_str(f, ps_act_name(l->act));
    fputs(",\"loc\":", f);
    json_str(f, where(l->loc, loc, sizeof loc));
    fputc(',', f);
    json_summary(f, "pre", &l->pre);
    fputc(',', f);
    json_summary(f, "out", &l->out);
    fputc(',', f);
    json_summary(f, "grad_pre", &l->grad_pre);
    fputc(',', f);
    json_summary(f, "grad_out", &l->grad_out);
    double sat = ins_layer_saturation(l), gn = ins_layer_grad_norm(l, s->batches),
           gr = ins_layer_grad_ratio(s, i);
    fputs(",\"saturated\":", f);
    json_num(f, sat < 0 ? NAN : sat);
    int64_t dead = ins_layer_dead(l);
    if (dead < 0)
        fputs(",\"dead\":null", f);
    else
        fprintf(f, ",\"dead\":%lld,\"units\":%lld", (long long)dead, (long long)l->units);
    fputs(",\"grad_norm\":", f);
    json_num(f, gn < 0 ? NAN : gn);
    fputs(",\"grad_ratio\":", f);
    json_num(f, gr < 0 ? NAN : gr);
    fputc('}', f);
}

static void json_param(FILE *f, const InsStats *s, int i)
{
    const InsParamStats *p = &s->params[i];
    char sh[96];
    shape_str(p->node, sh, sizeof sh);
    fputs("{\"name\":", f);
    json_str(f, p->name);
    fputs(",\"layer\":", f);
    json_str(f, p->layer);
    fputs(",\"shape\":", f);
    json_str(f, sh);
    fprintf(f, ",\"trainable\":%s,", p->trainable ? "true" : "false");
    json_summary(f, "weight", &p->w);
    fputc(',', f);
    json_summary(f, "grad", &p->g);
    double r = ins_param_grad_ratio(s, i);
    fputs(",\"grad_weight_ratio\":", f);
    json_num(f, r < 0 ? NAN : r);
    fputc('}', f);
}

static void json_stats(FILE *f, const InsStats *s)
{
    fputs("{\"model\":", f);
    json_str(f, s->model);
    fprintf(f, ",\"batches\":%d,\"examples\":%lld,\"loss\":", s->batches, (long long)s->examples);
    json_num(f, s->batches ? s->loss_sum / s->batches : NAN);
    fputs(",\"layers\":[", f);
    for (int i = 0; i < s->nlayers; i++) {
        fputs(i ? ",\n" : "\n", f);
        json_layer(f, s, i);
    }
    fputs("],\"params\":[", f);
    for (int i = 0; i < s->nparams; i++) {
        fputs(i ? ",\n" : "\n", f);
        json_param(f, s, i);
    }
    fputs("]}", f);
}

void ins_stats_print_json(const InsStats *a, const InsStats *b, FILE *f)
{
    if (!b) {
        json_stats(f, a);
    } else {
        fputs("{\"before\":", f);
        json_stats(f, a);
        fputs(",\n\"after\":", f);
        json_stats(f, b);
        fputc('}', f);
    }
    fputc('\n', f);
}

/* ---- pictures ---- */

typedef struct Pics {
    PlotPanel *panels;
    int n, cap;
    PlotSeries *series; /* two per panel */
    Hist *hists;
    char **titles;
} Pics;

static void density(double *c, int n)
{
    double t = 0;
    for (int i = 0; i < n; i++)
        t += c[i];
    for (int i = 0; t > 0 && i < n; i++)
        c[i] /= t;
}

static void add_hist_panel(Pics *p, const char *title, const InsAcc *a, const InsAcc *b,
                           const char *xlabel, bool two)
{
    Hist h;
    if (!hist_make(&h, a, b, 40))
        return;
    density(h.ca, h.n);
    if (h.cb)
        density(h.cb, h.n);
    int k = p->n++;
    p->hists[k] = h;
    p->titles[k] = xstrdup(title);
    p->series[2 * k] = (PlotSeries){two ? "before" : NULL, PLOT_HIST, h.edges, h.ca, h.n};
    p->series[2 * k + 1] = (PlotSeries){"after", PLOT_HIST, h.edges, h.cb, h.n};
    p->panels[k] = (PlotPanel){p->titles[k], xlabel, "fraction", false, &p->series[2 * k],
                               h.cb ? 2 : 1, NULL, 0};
}

static const InsParamStats *kernel_of(const InsStats *s, const InsLayerStats *l)
{
    for (int i = 0; i < s->nparams; i++)
        if (strcmp(s->params[i].layer, l->name) == 0 && s->params[i].node->shape.rank >= 2)
            return &s->params[i];
    for (int i = 0; i < s->nparams; i++)
        if (strcmp(s->params[i].layer, l->name) == 0)
            return &s->params[i];
    return NULL;
}

/* One row of four panels per layer: weights, pre-activation, activation,
 * weight gradient. */
static void layer_panels(Pics *p, const InsStats *a, const InsStats *b, int i)
{
    const InsLayerStats *l = &a->layers[i], *lb = b ? &b->layers[i] : NULL;
    const InsParamStats *k = kernel_of(a, l), *kb = b ? kernel_of(b, &b->layers[i]) : NULL;
    char t[256];
    bool two = b != NULL;
    if (k) {
        snprintf(t, sizeof t, "%s weights", k->name);
        add_hist_panel(p, t, &k->w, kb ? &kb->w : NULL, "value", two);
    }
    snprintf(t, sizeof t, "%s %s", l->name, l->has_act ? "pre-activation" : "output");
    add_hist_panel(p, t, &l->pre, lb ? &lb->pre : NULL, "value", two);
    if (l->has_act) {
        snprintf(t, sizeof t, "%s %s output", l->name, ps_act_name(l->act));
        add_hist_panel(p, t, &l->out, lb ? &lb->out : NULL, "value", two);
    }
    if (k && k->g.batches) {
        snprintf(t, sizeof t, "%s gradient", k->name);
        add_hist_panel(p, t, &k->g, kb ? &kb->g : NULL, "value", two);
    }
}

/* Saturated (sigmoid/tanh) or dead (relu) fraction of each layer; NAN for
 * layers without one. */
static void unhealthy(const InsStats *s, double *y)
{
    for (int i = 0; i < s->nlayers; i++) {
        double sat = ins_layer_saturation(&s->layers[i]);
        int64_t dead = ins_layer_dead(&s->layers[i]);
        y[i] = sat >= 0 ? sat
               : dead >= 0 && s->layers[i].units ? (double)dead / (double)s->layers[i].units
                                                  : NAN;
    }
}

/* The last panel: x = the layers by name, y = saturated or dead
 * fraction. */
static void health_panel(Pics *p, const InsStats *a, const InsStats *b, double *buf, const char **names)
{
    int n = a->nlayers, k = p->n++;
    double *x = buf, *ya = buf + n, *yb = buf + 2 * n;
    for (int i = 0; i < n; i++) {
        x[i] = i + 1;
        names[i] = a->layers[i].name;
    }
    unhealthy(a, ya);
    if (b)
        unhealthy(b, yb);
    p->titles[k] = xstrdup("saturated (sigmoid/tanh) or dead (relu) fraction");
    p->series[2 * k] = (PlotSeries){b ? "before" : NULL, PLOT_LINE, x, ya, n};
    p->series[2 * k + 1] = (PlotSeries){"after", PLOT_LINE, x, yb, n};
    p->panels[k] = (PlotPanel){p->titles[k], "layer", "fraction", false, &p->series[2 * k], b ? 2 : 1,
                               names, n};
}

bool ins_stats_plot(const InsStats *a, const InsStats *b, const char *path, Diags *d)
{
    int max = 4 * a->nlayers + 2;
    Pics p = {xcalloc((size_t)max, sizeof(PlotPanel)), 0, max,
              xcalloc(2 * (size_t)max, sizeof(PlotSeries)), xcalloc((size_t)max, sizeof(Hist)),
              xcalloc((size_t)max, sizeof(char *))};
    for (int i = 0; i < a->nlayers; i++)
        layer_panels(&p, a, b, i);
    double *health = xcalloc(3 * (size_t)a->nlayers + 1, sizeof(double));
    const char **names = xcalloc((size_t)a->nlayers + 1, sizeof(char *));
    if (a->nlayers)
        health_panel(&p, a, b, health, names);
    char title[256];
    snprintf(title, sizeof title, "%s: %d batch%s of %lld examples%s", a->model, a->batches,
             a->batches == 1 ? "" : "es", (long long)(a->batches ? a->examples / a->batches : 0),
             b ? " (blue: before, red: after)" : "");
    Plot plot = {title, 4, 360, 230, p.panels, p.n};
    bool ok = rt_plot_write(&plot, path, d);
    for (int i = 0; i < p.n; i++) {
        hist_free(&p.hists[i]);
        xfree(p.titles[i]);
    }
    xfree(health);
    xfree(names);
    xfree(p.panels);
    xfree(p.series);
    xfree(p.hists);
    xfree(p.titles);
    return ok;
}
