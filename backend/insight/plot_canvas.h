/* The drawing surface shared by the chart layout (plot.c) and its two
 * back ends: SVG text (plot.c) and an RGB raster with a 5x7 bitmap font
 * (plot_raster.c). Internal to the runtime. */
#ifndef MODELC_PLOT_CANVAS_H
#define MODELC_PLOT_CANVAS_H

#include "plot.h"

typedef enum { ANCHOR_START, ANCHOR_MIDDLE, ANCHOR_END } Anchor;

typedef struct Canvas Canvas;
struct Canvas {
    int w, h;
    /* axes, ticks and grid */
    void (*line)(Canvas *c, double x0, double y0, double x1, double y1, uint32_t rgb);
    /* one segment of a data series: n points as x,y pairs */
    void (*polyline)(Canvas *c, const double *xy, int n, uint32_t rgb, double width);
    /* a group of shapes (a histogram series); may be NULL */
    void (*group)(Canvas *c, const char *cls, bool begin);
    void (*rect)(Canvas *c, double x, double y, double w, double h, uint32_t fill, double alpha);
    void (*frame)(Canvas *c, double x, double y, double w, double h, uint32_t rgb);
    /* size: font height in pixels (7 or 14); vertical: rotated 90 degrees
     * counter-clockwise around (x, y) */
    void (*text)(Canvas *c, double x, double y, const char *s, int size, Anchor a, uint32_t rgb,
                 bool vertical);
    void *impl;
};

/* Lay out and draw p on c (c->w, c->h from plot_size). */
void plot_size(const Plot *p, int *w, int *h);
void plot_draw(const Plot *p, Canvas *c);

/* The raster canvas (plot_raster.c). */
Canvas *raster_canvas_new(int w, int h);
unsigned char *raster_canvas_take(Canvas *c); /* frees the canvas, returns the RGB rows */

#endif
