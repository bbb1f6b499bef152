/* The chart writers: SVG documents are well-formed XML with one polyline
 * per line series segment and one group per histogram; PNG files have the
 * signature, an 8-bit RGB IHDR, valid CRCs and an IDAT stream inflating to
 * the image size; pixels land where the layout puts them; files are
 * chosen by extension and errors name the file. */
#include <math.h>
#include <unistd.h>

#include "backend/insight/plot.h"
#include "test_insight.h"

static double xs[6] = {1, 2, 3, 4, 5, 6};
static double ya[6] = {2.0, 1.5, 1.1, 0.9, 0.8, 0.75};
static double yb[6] = {0.1, 0.4, NAN, 0.7, 0.8, 0.85};
static double edges[5] = {-2, -1, 0, 1, 2}, counts[4] = {1, 5, 7, 2};

static Plot sample(PlotPanel *panels, PlotSeries *ls, PlotSeries *hs)
{
    ls[0] = (PlotSeries){"loss", PLOT_LINE, xs, ya, 6};
    ls[1] = (PlotSeries){"accuracy", PLOT_LINE, xs, yb, 6};
    hs[0] = (PlotSeries){"before <&>", PLOT_HIST, edges, counts, 4};
    panels[0] = (PlotPanel){"curves", "epoch", "value", false, ls, 2, NULL, 0};
    panels[1] = (PlotPanel){"weights \"w\"", "value", "count", false, hs, 1, NULL, 0};
    return (Plot){"a & b", 2, 0, 0, panels, 2};
}

START_TEST(svg_well_formed)
{
    PlotPanel panels[2];
    PlotSeries ls[2], hs[1];
    Plot p = sample(panels, ls, hs);
    char *svg = rt_plot_svg(&p);
    ck_assert_msg(ti_xml_check(svg) == NULL, "%s", ti_xml_check(svg));
    /* the loss is one polyline; accuracy has a gap at x = 3: two pieces */
    ck_assert_int_eq(ti_count(svg, "<polyline class=\"series\""), 3);
    ck_assert_int_eq(ti_count(svg, "<g class=\"hist\">"), 1);
    ck_assert_ptr_nonnull(strstr(svg, "width=\"880\" height=\"300\""));
    ck_assert_ptr_nonnull(strstr(svg, ">before &lt;&amp;&gt;</text>"));
    ck_assert_ptr_nonnull(strstr(svg, ">weights &quot;w&quot;</text>"));
    ck_assert_ptr_nonnull(strstr(svg, "<title>a &amp; b</title>"));
    /* series colours */
    ck_assert_ptr_nonnull(strstr(svg, "stroke=\"#1f77b4\""));
    ck_assert_ptr_nonnull(strstr(svg, "stroke=\"#d62728\""));
    free(svg);
    /* the checker itself rejects broken documents */
    ck_assert_ptr_nonnull(ti_xml_check("<svg><g></svg>"));
    ck_assert_ptr_nonnull(ti_xml_check("<svg a=b/>"));
    ck_assert_ptr_nonnull(ti_xml_check("<svg>&nbsp;</svg>"));
    ck_assert_ptr_nonnull(ti_xml_check("<a/><b/>"));
}
END_TEST

START_TEST(png_valid)
{
    PlotPanel panels[2];
    PlotSeries ls[2], hs[1];
    Plot p = sample(panels, ls, hs);
    int w, h;
    unsigned char *rgb = rt_plot_raster(&p, &w, &h), *png;
    ck_assert_int_eq(w, 880);
    ck_assert_int_eq(h, 300);
    size_t len;
    ck_assert(rt_png_encode(rgb, w, h, &png, &len));
    int pw, ph;
    const char *err = ti_png_check(png, len, &pw, &ph);
    ck_assert_msg(err == NULL, "%s", err);
    ck_assert_int_eq(pw, w);
    ck_assert_int_eq(ph, h);
    /* a corrupted byte breaks a CRC */
    png[40] ^= 1;
    ck_assert_ptr_nonnull(ti_png_check(png, len, &pw, &ph));
    free(png);
    free(rgb);
}
END_TEST

/* A known picture: one panel, a horizontal line series at y = 1 over
 * x = 0..1 with the y range padded; the line's pixels carry its colour. */
START_TEST(raster_pixels)
{
    double x[2] = {0, 1}, y[2] = {1, 1};
    PlotSeries s = {NULL, PLOT_LINE, x, y, 2};
    PlotPanel panel = {NULL, NULL, NULL, false, &s, 1, NULL, 0};
    Plot p = {NULL, 1, 200, 150, &panel, 1};
    int w, h;
    unsigned char *rgb = rt_plot_raster(&p, &w, &h);
    ck_assert_int_eq(w, 200);
    ck_assert_int_eq(h, 150);
    /* the plot area spans rows 28..108 (150 - 42); y = 1 sits mid-way */
    int row = 28 + 40, col = 66 + 59;
    int found = 0;
    for (int dy = -1; dy <= 1; dy++) {
        const unsigned char *px = rgb + ((size_t)(row + dy) * (size_t)w + (size_t)col) * 3;
        found |= px[0] == 0x1f && px[1] == 0x77 && px[2] == 0xb4;
    }
    ck_assert(found);
    /* the background outside the panel */
    ck_assert_int_eq(rgb[0], 0xfa);
    free(rgb);
}
END_TEST

START_TEST(files_by_extension)
{
    PlotPanel panels[2];
    PlotSeries ls[2], hs[1];
    Plot p = sample(panels, ls, hs);
    char dir[] = "/tmp/insight_plotXXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char svg[128], png[128], bad[128];
    snprintf(svg, sizeof svg, "%s/a.svg", dir);
    snprintf(png, sizeof png, "%s/a.png", dir);
    snprintf(bad, sizeof bad, "%s/a.gif", dir);
    Diags d;
    diags_init(&d);
    ck_assert(rt_plot_write(&p, svg, &d));
    ck_assert(rt_plot_write(&p, png, &d));
    ck_assert_int_eq(ti_check_svg_file(svg), 3);
    ti_check_png_file(png);
    ck_assert(!rt_plot_write(&p, bad, &d));
    ck_assert_str_eq(d.v[d.n - 1].msg, "cannot tell the picture format: use a .svg or .png file name");
    ck_assert_str_eq(d.v[d.n - 1].loc.file, bad);
    diags_free(&d);
    unlink(svg);
    unlink(png);
    rmdir(dir);
}
END_TEST

/* ins_plot_curves: one polyline per series, log scale leaves out y <= 0. */
START_TEST(curves)
{
    double e[3] = {1, 2, 3}, a[3] = {1e-3, 1e-2, 1e-1}, b[3] = {1, 0, 2};
    InsSeries s[2] = {{"dense", a}, {"dense_1", b}};
    char dir[] = "/tmp/insight_curveXXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/c.svg", dir);
    Diags d;
    diags_init(&d);
    ck_assert(ins_plot_curves(path, "gradient norms", "norm", true, e, 3, s, 2, &d));
    /* dense: one piece; dense_1 at y = 0 is left out: two single points */
    ck_assert_int_eq(ti_check_svg_file(path), 1);
    size_t len;
    char *text = ti_read(path, &len);
    ck_assert_ptr_nonnull(strstr(text, ">1e-3</text>"));
    ck_assert_ptr_nonnull(strstr(text, ">1e-1</text>"));
    free(text);
    unlink(path);
    rmdir(dir);
    diags_free(&d);
}
END_TEST

/* A panel over named categories (the layers of a health panel): one tick
 * per name at x = 1..n, labelled with the name, no fractional ticks. */
START_TEST(named_ticks)
{
    static double x[3] = {1, 2, 3}, y[3] = {0.9, 0.1, 0.4};
    static const char *const names[3] = {"dense", "dense_1", "dense_2"};
    PlotSeries s = {NULL, PLOT_LINE, x, y, 3};
    PlotPanel panel = {"saturated", "layer", "fraction", false, &s, 1, names, 3};
    Plot p = {NULL, 1, 360, 230, &panel, 1};
    char *svg = rt_plot_svg(&p);
    ck_assert_msg(ti_xml_check(svg) == NULL, "%s", ti_xml_check(svg));
    for (int i = 0; i < 3; i++) {
        char want[64];
        snprintf(want, sizeof want, ">%s</text>", names[i]);
        ck_assert_msg(strstr(svg, want) != NULL, "no tick %s", names[i]);
    }
    ck_assert_ptr_null(strstr(svg, ">1.5</text>"));
    ck_assert_ptr_null(strstr(svg, ">2.5</text>"));
    free(svg);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("insight_plot");
    TCase *t = tcase_create("plot");
    tcase_add_test(t, svg_well_formed);
    tcase_add_test(t, png_valid);
    tcase_add_test(t, raster_pixels);
    tcase_add_test(t, files_by_extension);
    tcase_add_test(t, curves);
    tcase_add_test(t, named_ticks);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
