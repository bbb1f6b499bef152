/* Small chart writers for statistics and training curves: panels of line
 * series and histograms laid out once and drawn either as SVG text or as
 * an RGB raster saved as PNG (deflate through zlib). No other
 * dependencies. */
#ifndef MODELC_PLOT_H
#define MODELC_PLOT_H

#include "ir/base/base.h"

typedef enum { PLOT_LINE, PLOT_HIST } PlotKind;

typedef struct PlotSeries {
    const char *name;
    PlotKind kind;
    /* PLOT_LINE: n points (x[i], y[i]); a NaN y leaves a gap.
     * PLOT_HIST: n bins, x holds the n+1 bin edges, y the n counts. */
    const double *x, *y;
    int n;
} PlotSeries;

typedef struct PlotPanel {
    const char *title, *xlabel, *ylabel;
    bool logy; /* log10 y axis; values <= 0 are left out */
    const PlotSeries *series;
    int nseries;
    const char *const *xnames; /* NULL, or names of x = 1..nxnames (one tick each) */
    int nxnames;
} PlotPanel;

typedef struct Plot {
    const char *title;
    int cols;             /* panels per row (0 = 1) */
    int panel_w, panel_h; /* pixels per panel (0 = 440 x 270) */
    const PlotPanel *panels;
    int npanels;
} Plot;

/* The colour of series i (0xRRGGBB), the same in both formats. */
uint32_t rt_plot_color(int i);

/* An SVG 1.1 document (malloc'd): one <polyline class="series"> per line
 * series segment, one <g class="hist"> of <rect> per histogram series. */
char *rt_plot_svg(const Plot *p);
/* The same chart as 8-bit RGB rows (malloc'd, *w * *h * 3 bytes). */
unsigned char *rt_plot_raster(const Plot *p, int *w, int *h);
/* PNG (colour type 2, 8 bits, no interlace) of RGB rows; malloc'd. */
bool rt_png_encode(const unsigned char *rgb, int w, int h, unsigned char **out, size_t *len);
/* Write p to path as SVG or PNG, chosen by the extension (.svg/.png);
 * atomically; errors name the file. */
bool rt_plot_write(const Plot *p, const char *path, Diags *d);

#endif
