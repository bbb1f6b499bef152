/* Chart layout (panels with axes, ticks, grid, line series, histograms and
 * a legend) drawn through a Canvas, the SVG canvas, and writing a chart
 * to a .svg or .png file. */
#include "plot_canvas.h"
#include "runtime/io/rtio.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PANEL_W 440
#define PANEL_H 270
#define TITLE_H 30
#define M_LEFT 66
#define M_RIGHT 16
#define M_TOP 28
#define M_BOTTOM 42
#define GRID 0xe4e4e4u
#define AXIS 0x444444u
#define INK 0x222222u

uint32_t rt_plot_color(int i)
{
    static const uint32_t pal[] = {0x1f77b4, 0xd62728, 0x2ca02c, 0xff7f0e,
                                   0x9467bd, 0x8c564b, 0xe377c2, 0x17becf};
    return pal[(unsigned)i % (sizeof pal / sizeof pal[0])];
}

/* ---- layout ---- */

static int cols_of(const Plot *p)
{
    return p->cols > 0 ? p->cols : 1;
}

void plot_size(const Plot *p, int *w, int *h)
{
    int cols = cols_of(p), n = p->npanels > 0 ? p->npanels : 1;
    int rows = (n + cols - 1) / cols;
    *w = cols * (p->panel_w > 0 ? p->panel_w : PANEL_W);
    *h = rows * (p->panel_h > 0 ? p->panel_h : PANEL_H) + (p->title ? TITLE_H : 0);
}

typedef struct Range {
    double lo, hi;
} Range;

static double ty(const PlotPanel *pp, double y)
{
    if (!pp->logy)
        return y;
    return y > 0 ? log10(y) : NAN;
}

static void widen(Range *r, double v)
{
    if (!isfinite(v))
        return;
    if (v < r->lo)
        r->lo = v;
    if (v > r->hi)
        r->hi = v;
}

static void data_ranges(const PlotPanel *pp, Range *x, Range *y)
{
    x->lo = y->lo = INFINITY;
    x->hi = y->hi = -INFINITY;
    for (int s = 0; s < pp->nseries; s++) {
        const PlotSeries *ps = &pp->series[s];
        for (int i = 0; i < ps->n; i++) {
            widen(x, ps->x[i]);
            widen(y, ty(pp, ps->y[i]));
        }
        if (ps->kind == PLOT_HIST && ps->n > 0) {
            widen(x, ps->x[ps->n]);
            if (!pp->logy)
                widen(y, 0);
        }
    }
    Range *rs[2] = {x, y};
    for (int k = 0; k < 2; k++) {
        Range *r = rs[k];
        if (!(r->lo <= r->hi)) {
            r->lo = 0;
            r->hi = 1;
        } else if (r->lo == r->hi) {
            double d = r->lo == 0 ? 1 : fabs(r->lo) * 0.1;
            r->lo -= d;
            r->hi += d;
        }
    }
    if (pp->xnames && pp->nxnames > 0) { /* categories 1..n, half a slot of margin */
        x->lo = 0.5;
        x->hi = pp->nxnames + 0.5;
    }
    double pad = (y->hi - y->lo) * 0.05;
    y->hi += pad;
    if (y->lo != 0 || pp->logy)
        y->lo -= pad;
}

static double nice_step(double range)
{
    double raw = range / 5, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

static void fmt_tick(char *buf, size_t n, double v, double step, bool exp10)
{
    if (exp10) {
        snprintf(buf, n, "1e%d", (int)lround(v));
        return;
    }
    if (fabs(v) < step * 1e-6)
        v = 0;
    snprintf(buf, n, "%.4g", v);
}

typedef struct Area {
    double x, y, w, h;
    Range xr, yr;
} Area;

static double px(const Area *a, double x)
{
    return a->x + (x - a->xr.lo) / (a->xr.hi - a->xr.lo) * a->w;
}

static double py(const Area *a, double y)
{
    return a->y + a->h - (y - a->yr.lo) / (a->yr.hi - a->yr.lo) * a->h;
}

/* One tick per category, labelled with its name cut to the slot's width. */
static void draw_xnames(Canvas *c, const Area *a, const PlotPanel *pp)
{
    int fit = (int)(a->w / pp->nxnames / 6);
    for (int i = 0; i < pp->nxnames; i++) {
        double x = px(a, i + 1);
        char lab[32];
        snprintf(lab, sizeof lab, "%.*s", fit < 1 ? 1 : fit > 31 ? 31 : fit, pp->xnames[i]);
        c->line(c, x, a->y + a->h, x, a->y + a->h + 4, AXIS);
        c->text(c, x, a->y + a->h + 15, lab, 7, ANCHOR_MIDDLE, INK, false);
    }
}

static void draw_xticks(Canvas *c, const Area *a)
{
    double step = nice_step(a->xr.hi - a->xr.lo), first = ceil(a->xr.lo / step) * step;
    int widest = 0;
    char lab[32];
    for (double v = first; v <= a->xr.hi + step * 1e-9; v += step) {
        fmt_tick(lab, sizeof lab, v, step, false);
        widest = (int)strlen(lab) > widest ? (int)strlen(lab) : widest;
    }
    double step_px = step / (a->xr.hi - a->xr.lo) * a->w;
    int every = (int)ceil((widest * 6 + 8) / (step_px > 1 ? step_px : 1)), k = 0;
    for (double v = first; v <= a->xr.hi + step * 1e-9; v += step, k++) {
        double x = px(a, v);
        c->line(c, x, a->y, x, a->y + a->h, GRID);
        c->line(c, x, a->y + a->h, x, a->y + a->h + 4, AXIS);
        if (k % every)
            continue;
        fmt_tick(lab, sizeof lab, v, step, false);
        c->text(c, x, a->y + a->h + 15, lab, 7, ANCHOR_MIDDLE, INK, false);
    }
}

static void draw_yticks(Canvas *c, const Area *a, bool logy)
{
    double range = a->yr.hi - a->yr.lo;
    double step = logy && range >= 1 ? ceil(range / 6) : nice_step(range);
    bool exp10 = logy && step == floor(step);
    for (double v = ceil(a->yr.lo / step) * step; v <= a->yr.hi + step * 1e-9; v += step) {
        double y = py(a, v);
        char lab[32];
        c->line(c, a->x, y, a->x + a->w, y, GRID);
        c->line(c, a->x - 4, y, a->x, y, AXIS);
        if (logy && !exp10)
            snprintf(lab, sizeof lab, "%.3g", pow(10, v));
        else
            fmt_tick(lab, sizeof lab, v, step, exp10);
        c->text(c, a->x - 7, y + 3, lab, 7, ANCHOR_END, INK, false);
    }
}

static void draw_line_series(Canvas *c, const Area *a, const PlotPanel *pp, const PlotSeries *s,
                             uint32_t col)
{
    double *xy = xmalloc(((size_t)s->n + 1) * 2 * sizeof(double));
    int k = 0;
    for (int i = 0; i <= s->n; i++) {
        double y = i < s->n ? ty(pp, s->y[i]) : NAN;
        if (i < s->n && isfinite(y) && isfinite(s->x[i])) {
            xy[2 * k] = px(a, s->x[i]);
            xy[2 * k + 1] = py(a, y);
            k++;
            continue;
        }
        if (k == 1)
            c->rect(c, xy[0] - 2, xy[1] - 2, 4, 4, col, 1);
        else if (k > 1)
            c->polyline(c, xy, k, col, 2);
        k = 0;
    }
    xfree(xy);
}

static void draw_hist_series(Canvas *c, const Area *a, const PlotPanel *pp, const PlotSeries *s,
                             uint32_t col)
{
    if (c->group)
        c->group(c, "hist", true);
    double base = pp->logy ? a->yr.lo : 0;
    for (int i = 0; i < s->n; i++) {
        double y = ty(pp, s->y[i]);
        if (!isfinite(y) || y <= base)
            continue;
        double x0 = px(a, s->x[i]), x1 = px(a, s->x[i + 1]), y0 = py(a, y), y1 = py(a, base);
        c->rect(c, x0, y0, x1 - x0 > 1 ? x1 - x0 : 1, y1 - y0, col, 0.55);
    }
    if (c->group)
        c->group(c, "hist", false);
}

static void draw_legend(Canvas *c, const Area *a, const PlotPanel *pp)
{
    int n = 0, wmax = 0;
    for (int s = 0; s < pp->nseries; s++)
        if (pp->series[s].name) {
            n++;
            int w = (int)strlen(pp->series[s].name) * 6;
            wmax = w > wmax ? w : wmax;
        }
    if (n == 0)
        return;
    double bw = wmax + 26, bh = n * 12 + 6, bx = a->x + a->w - bw - 4, by = a->y + 4;
    c->rect(c, bx, by, bw, bh, 0xffffff, 0.85);
    c->frame(c, bx, by, bw, bh, 0xbbbbbb);
    int k = 0;
    for (int s = 0; s < pp->nseries; s++) {
        if (!pp->series[s].name)
            continue;
        double y = by + 5 + 12 * k++;
        c->rect(c, bx + 5, y + 1, 10, 6, rt_plot_color(s), 1);
        c->text(c, bx + 20, y + 7, pp->series[s].name, 7, ANCHOR_START, INK, false);
    }
}

static void draw_panel(Canvas *c, const PlotPanel *pp, double x, double y, double w, double h)
{
    Area a = {x + M_LEFT, y + M_TOP, w - M_LEFT - M_RIGHT, h - M_TOP - M_BOTTOM, {0, 0}, {0, 0}};
    data_ranges(pp, &a.xr, &a.yr);
    c->rect(c, a.x, a.y, a.w, a.h, 0xffffff, 1);
    if (pp->xnames && pp->nxnames > 0)
        draw_xnames(c, &a, pp);
    else
        draw_xticks(c, &a);
    draw_yticks(c, &a, pp->logy);
    for (int s = 0; s < pp->nseries; s++) {
        const PlotSeries *ps = &pp->series[s];
        if (ps->kind == PLOT_HIST)
            draw_hist_series(c, &a, pp, ps, rt_plot_color(s));
        else
            draw_line_series(c, &a, pp, ps, rt_plot_color(s));
    }
    c->frame(c, a.x, a.y, a.w, a.h, AXIS);
    draw_legend(c, &a, pp);
    if (pp->title)
        c->text(c, a.x + a.w / 2, y + 17, pp->title, 7, ANCHOR_MIDDLE, INK, false);
    if (pp->xlabel)
        c->text(c, a.x + a.w / 2, a.y + a.h + 32, pp->xlabel, 7, ANCHOR_MIDDLE, INK, false);
    if (pp->ylabel)
        c->text(c, x + 12, a.y + a.h / 2, pp->ylabel, 7, ANCHOR_MIDDLE, INK, true);
}

void plot_draw(const Plot *p, Canvas *c)
{
    int cols = cols_of(p);
    double pw = p->panel_w > 0 ? p->panel_w : PANEL_W, ph = p->panel_h > 0 ? p->panel_h : PANEL_H;
    double top = p->title ? TITLE_H : 0;
    c->rect(c, 0, 0, c->w, c->h, 0xfafafa, 1);
    if (p->title)
        c->text(c, c->w / 2.0, 21, p->title, 14, ANCHOR_MIDDLE, INK, false);
    for (int i = 0; i < p->npanels; i++)
        draw_panel(c, &p->panels[i], (i % cols) * pw, top + (i / cols) * ph, pw, ph);
}

/* ---- SVG canvas ---- */

static void svg_color(StrBuf *b, uint32_t rgb)
{
    sb_printf(b, "#%06x", rgb & 0xffffffu);
}

static void svg_line(Canvas *c, double x0, double y0, double x1, double y1, uint32_t rgb)
{
    StrBuf *b = c->impl;
    sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"", x0, y0, x1, y1);
    svg_color(b, rgb);
    sb_puts(b, "\" stroke-width=\"1\"/>\n");
}

static void svg_polyline(Canvas *c, const double *xy, int n, uint32_t rgb, double width)
{
    StrBuf *b = c->impl;
    sb_puts(b, "<polyline class=\"series\" fill=\"none\" stroke=\"");
    svg_color(b, rgb);
    sb_printf(b, "\" stroke-width=\"%g\" stroke-linejoin=\"round\" points=\"", width);
    for (int i = 0; i < n; i++)
        sb_printf(b, "%s%.1f,%.1f", i ? " " : "", xy[2 * i], xy[2 * i + 1]);
    sb_puts(b, "\"/>\n");
}

static void svg_group(Canvas *c, const char *cls, bool begin)
{
    StrBuf *b = c->impl;
    if (begin)
        sb_printf(b, "<g class=\"%s\">\n", cls);
    else
        sb_puts(b, "</g>\n");
}

static void svg_rect(Canvas *c, double x, double y, double w, double h, uint32_t fill, double alpha)
{
    StrBuf *b = c->impl;
    sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"", x, y, w, h);
    svg_color(b, fill);
    if (alpha < 1)
        sb_printf(b, "\" fill-opacity=\"%.2f", alpha);
    sb_puts(b, "\"/>\n");
}

static void svg_frame(Canvas *c, double x, double y, double w, double h, uint32_t rgb)
{
    StrBuf *b = c->impl;
    sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"",
              x, y, w, h);
    svg_color(b, rgb);
    sb_puts(b, "\"/>\n");
}

static void svg_escape(StrBuf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<':
            sb_puts(b, "&lt;");
            break;
        case '>':
            sb_puts(b, "&gt;");
            break;
        case '&':
            sb_puts(b, "&amp;");
            break;
        case '"':
            sb_puts(b, "&quot;");
            break;
        default:
            if ((unsigned char)*s >= 32 || *s == '\t')
                sb_putc(b, *s);
        }
    }
}

static void svg_text(Canvas *c, double x, double y, const char *s, int size, Anchor a, uint32_t rgb,
                     bool vertical)
{
    static const char *anchors[] = {"start", "middle", "end"};
    StrBuf *b = c->impl;
    sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%d\" text-anchor=\"%s\" fill=\"", x, y,
              size == 14 ? 16 : 11, anchors[a]);
    svg_color(b, rgb);
    sb_putc(b, '"');
    if (vertical)
        sb_printf(b, " transform=\"rotate(-90 %.1f %.1f)\"", x, y);
    sb_putc(b, '>');
    svg_escape(b, s);
    sb_puts(b, "</text>\n");
}

char *rt_plot_svg(const Plot *p)
{
    StrBuf b;
    sb_init(&b);
    Canvas c = {0, 0, svg_line, svg_polyline, svg_group, svg_rect, svg_frame, svg_text, &b};
    plot_size(p, &c.w, &c.h);
    sb_printf(&b,
              "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
              "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" "
              "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"monospace\">\n",
              c.w, c.h, c.w, c.h);
    if (p->title) {
        sb_puts(&b, "<title>");
        svg_escape(&b, p->title);
        sb_puts(&b, "</title>\n");
    }
    plot_draw(p, &c);
    sb_puts(&b, "</svg>\n");
    return sb_take(&b);
}

/* ---- files ---- */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

bool rt_plot_write(const Plot *p, const char *path, Diags *d)
{
    if (ends_with(path, ".svg")) {
        char *svg = rt_plot_svg(p);
        RtChunk ch = {svg, strlen(svg)};
        bool ok = rt_write_atomic(path, &ch, 1, d);
        xfree(svg);
        return ok;
    }
    if (!ends_with(path, ".png")) {
        diag_error(d, rt_file_loc(d, path), "cannot tell the picture format: use a .svg or .png file name");
        return false;
    }
    int w, h;
    unsigned char *rgb = rt_plot_raster(p, &w, &h), *png = NULL;
    size_t len = 0;
    bool ok = rt_png_encode(rgb, w, h, &png, &len);
    xfree(rgb);
    if (!ok) {
        diag_error(d, rt_file_loc(d, path), "cannot encode the PNG image");
        return false;
    }
    RtChunk ch = {png, len};
    ok = rt_write_atomic(path, &ch, 1, d);
    xfree(png);
    return ok;
}
