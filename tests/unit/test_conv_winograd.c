/* Winograd convolutions (runtime/conv_winograd.c): the forward pass, the
 * input gradient and the kernel gradient against a direct convolution in
 * double and against the register-blocked loops they replace, on odd
 * shapes (one image, channels no multiple of a vector, 'valid', 'same',
 * asymmetric and wide padding, outputs no multiple of the tile, images
 * smaller than a tile); runs over parts of the batch from one prepared
 * kernel; bit-identical results on 1, 2 and 3 threads; when it applies;
 * each allocation failing in turn under a guard, on two threads.
 * CMake runs it for every instruction set (MODELC_CONV_ISA) and with
 * MODELC_CONV_WINOGRAD=2 (the F(2x2,3x3) tiles). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/base/base.h"
#include "runtime/kernels.h"
#include "testutil.h"

typedef struct Shape4 {
    const char *name;
    int64_t n, h, w, c, o, pt, pl, oh, ow;
} Shape4;

static const Shape4 shapes[] = {
    {"1x1 output, image smaller than a tile", 1, 3, 3, 17, 19, 0, 0, 1, 1},
    {"5x7 output, valid", 2, 7, 9, 33, 17, 0, 0, 5, 7},
    {"13x9 output, same", 3, 13, 9, 19, 33, 1, 1, 13, 9},
    {"asymmetric padding", 2, 10, 11, 16, 20, 1, 0, 9, 11},
    {"padding wider than the kernel", 1, 5, 6, 16, 16, 3, 2, 9, 7},
    {"2x2 image, same", 1, 2, 2, 20, 24, 1, 1, 2, 2},
    {"the CNN's second layer", 2, 26, 26, 32, 64, 0, 0, 24, 24},
};

static RtConvGeom geom(const Shape4 *s)
{
    RtConvGeom g = {s->n, s->h, s->w, s->c, 3, 3, s->o, s->oh, s->ow, 1, 1, s->pt, s->pl, 1};
    return g;
}

static float *rnd(size_t n, unsigned *seed, float scale)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++)
        p[i] = scale * (2.0f * (float)rand_r(seed) / (float)RAND_MAX - 1.0f);
    return p;
}

static size_t nx(const RtConvGeom *g) { return (size_t)(g->n * g->h * g->w * g->c); }
static size_t ny(const RtConvGeom *g) { return (size_t)(g->n * g->oh * g->ow * g->o); }
static size_t nk(const RtConvGeom *g) { return (size_t)(9 * g->c * g->o); }

/* The three passes in double. */
static void reference(const RtConvGeom *g, const float *x, const float *k, const float *dy, double *y, double *dx,
                      double *dk)
{
    memset(y, 0, ny(g) * sizeof(double));
    memset(dx, 0, nx(g) * sizeof(double));
    memset(dk, 0, nk(g) * sizeof(double));
    for (int64_t n = 0; n < g->n; n++)
        for (int64_t oy = 0; oy < g->oh; oy++)
            for (int64_t ox = 0; ox < g->ow; ox++)
                for (int64_t ky = 0; ky < 3; ky++)
                    for (int64_t kx = 0; kx < 3; kx++) {
                        int64_t iy = oy - g->pt + ky, ix = ox - g->pl + kx;
                        if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                            continue;
                        int64_t xi = ((n * g->h + iy) * g->w + ix) * g->c, yi = ((n * g->oh + oy) * g->ow + ox) * g->o;
                        int64_t ki = (ky * 3 + kx) * g->c * g->o;
                        for (int64_t ci = 0; ci < g->c; ci++)
                            for (int64_t co = 0; co < g->o; co++) {
                                double kv = k[ki + ci * g->o + co];
                                y[yi + co] += (double)x[xi + ci] * kv;
                                dx[xi + ci] += (double)dy[yi + co] * kv;
                                dk[ki + ci * g->o + co] += (double)x[xi + ci] * dy[yi + co];
                            }
                    }
}

/* max |a - ref| <= tol * max |ref|, and the same for the direct loops'
 * result b (which must be no worse than the bar either) */
static void close_to(const char *what, const char *shape, const float *a, const float *b, const double *ref,
                     size_t n, double tol)
{
    double mr = 0, ea = 0, eb = 0;
    for (size_t i = 0; i < n; i++) {
        mr = fmax(mr, fabs(ref[i]));
        ea = fmax(ea, fabs(a[i] - ref[i]));
        eb = fmax(eb, fabs(b[i] - ref[i]));
    }
    ck_assert_msg(mr > 0, "%s, %s: an all-zero reference", shape, what);
    ck_assert_msg(ea <= tol * mr, "%s, %s: Winograd's error %g of max %g is above %g", shape, what, ea, mr, tol * mr);
    ck_assert_msg(eb <= tol * mr, "%s, %s: the direct loops' error %g of max %g", shape, what, eb, mr);
}

/* The bound of docs/ops.md for F(4x4,3x3) at these channel counts (its
 * error is about 10 times the direct loops'; F(2x2,3x3) is below it) */
#define WINO_TOL 3e-5

static int64_t scratch_floats(const RtConvGeom *g)
{
    int64_t most = 1;
    for (int w = 0; w < 3; w++) {
        int64_t s = rt_conv_scratch(g, w, 4);
        ck_assert_int_ge(s, 0);
        most = s > most ? s : most;
    }
    return most;
}

START_TEST(against_reference)
{
    const Shape4 *s = &shapes[_i];
    RtConvGeom g = geom(s);
    unsigned seed = 7u + (unsigned)_i;
    float *x = rnd(nx(&g), &seed, 1), *k = rnd(nk(&g), &seed, 0.2f), *dy = rnd(ny(&g), &seed, 1);
    double *ry = malloc(ny(&g) * sizeof(double)), *rdx = malloc(nx(&g) * sizeof(double)),
           *rdk = malloc(nk(&g) * sizeof(double));
    float *y = rnd(ny(&g), &seed, 1), *dx = rnd(nx(&g), &seed, 1), *dk = rnd(nk(&g), &seed, 1);
    float *by = rnd(ny(&g), &seed, 1), *bdx = rnd(nx(&g), &seed, 1), *bdk = rnd(nk(&g), &seed, 1);
    /* exactly the scratch rt_conv_scratch asks for: ASan sees any overrun */
    float *scratch = malloc((size_t)scratch_floats(&g) * sizeof(float));
    ck_assert_int_ge(scratch_floats(&g), rt_conv_wino_scratch(&g, RT_CONV_FWD));
    ck_assert_int_ge(scratch_floats(&g), rt_conv_wino_scratch(&g, RT_CONV_GRAD_INPUT));
    ck_assert_int_ge(scratch_floats(&g), rt_conv_wino_scratch(&g, RT_CONV_GRAD_KERNEL));
    ck_assert_int_ge(rt_conv_wino_scratch(&g, RT_CONV_FWD), 36 * g.c * g.o);
    RtCtx ctx;
    rt_ctx_init(&ctx, 1);
    reference(&g, x, k, dy, ry, rdx, rdk);
    rt_conv_wino(&ctx, &g, RT_CONV_FWD, x, k, y, scratch, 1.0f);
    rt_conv_blocked_fwd(&ctx, &g, x, k, by, scratch, 1.0f);
    close_to("forward", s->name, y, by, ry, ny(&g), WINO_TOL);
    rt_conv_wino(&ctx, &g, RT_CONV_GRAD_INPUT, dy, k, dx, scratch, 1.0f);
    rt_conv_blocked_grad_input(&ctx, &g, dy, k, bdx, scratch);
    close_to("input gradient", s->name, dx, bdx, rdx, nx(&g), WINO_TOL);
    rt_conv_wino_grad_kernel(&ctx, &g, x, dy, dk, scratch); /* in exactly the planned scratch */
    rt_conv_blocked_grad_kernel(&ctx, &g, x, dy, bdk);
    close_to("kernel gradient", s->name, dk, bdk, rdk, nk(&g), WINO_TOL);
    /* alpha scales the forward result */
    rt_conv_wino(&ctx, &g, RT_CONV_FWD, x, k, y, scratch, -0.5f);
    for (size_t i = 0; i < ny(&g); i++)
        ry[i] *= -0.5;
    rt_conv_blocked_fwd(&ctx, &g, x, k, by, scratch, -0.5f);
    close_to("forward, alpha -0.5", s->name, y, by, ry, ny(&g), WINO_TOL);
    free(x), free(k), free(dy), free(ry), free(rdx), free(rdk), free(y), free(dx), free(dk);
    free(by), free(bdx), free(bdk), free(scratch);
}
END_TEST

/* One prepared kernel, then runs over single images (x and y offset, n =
 * 1) in reverse order: the same bits as the whole pass. */
START_TEST(runs_over_parts)
{
    const Shape4 *s = &shapes[_i];
    RtConvGeom g = geom(s);
    g.n = 3;
    unsigned seed = 11u;
    float *x = rnd(nx(&g), &seed, 1), *k = rnd(nk(&g), &seed, 0.2f), *dy = rnd(ny(&g), &seed, 1);
    float *y = rnd(ny(&g), &seed, 1), *y2 = rnd(ny(&g), &seed, 1), *dx = rnd(nx(&g), &seed, 1),
          *dx2 = rnd(nx(&g), &seed, 1);
    float *scratch = malloc((size_t)scratch_floats(&g) * sizeof(float));
    RtCtx ctx;
    rt_ctx_init(&ctx, 1);
    rt_conv_wino(&ctx, &g, RT_CONV_FWD, x, k, y, scratch, 2.0f);
    rt_conv_wino(&ctx, &g, RT_CONV_GRAD_INPUT, dy, k, dx, scratch, 1.0f);
    RtConvGeom one = g;
    one.n = 1;
    int64_t xi = g.h * g.w * g.c, yi = g.oh * g.ow * g.o;
    rt_conv_wino_prepare(&g, RT_CONV_FWD, k, scratch);
    for (int64_t n = g.n - 1; n >= 0; n--)
        rt_conv_wino_run(&one, RT_CONV_FWD, x + n * xi, scratch, y2 + n * yi, 2.0f);
    ck_assert_msg(memcmp(y, y2, ny(&g) * sizeof(float)) == 0, "%s: forward runs differ", s->name);
    rt_conv_wino_prepare(&g, RT_CONV_GRAD_INPUT, k, scratch);
    for (int64_t n = g.n - 1; n >= 0; n--)
        rt_conv_wino_run(&one, RT_CONV_GRAD_INPUT, dy + n * yi, scratch, dx2 + n * xi, 1.0f);
    ck_assert_msg(memcmp(dx, dx2, nx(&g) * sizeof(float)) == 0, "%s: input gradient runs differ", s->name);
    free(x), free(k), free(dy), free(y), free(y2), free(dx), free(dx2), free(scratch);
}
END_TEST

/* 1, 2 and 3 threads give the same bits; the kernel gradient over a batch
 * of 37 images (chunks of different sizes), the forward pass and the
 * input gradient with few images (tasks over tile rows) and many. */
START_TEST(threads_bit_identical)
{
    static const Shape4 ts[] = {
        {"37 images", 37, 12, 10, 17, 33, 1, 1, 12, 10},
        {"one tall image", 1, 40, 9, 16, 18, 1, 0, 38, 9},
    };
    for (size_t si = 0; si < sizeof ts / sizeof ts[0]; si++) {
        RtConvGeom g = geom(&ts[si]);
        unsigned seed = 5u;
        float *x = rnd(nx(&g), &seed, 1), *k = rnd(nk(&g), &seed, 0.2f), *dy = rnd(ny(&g), &seed, 1);
        float *out[3][3];
        float *scratch = malloc((size_t)scratch_floats(&g) * sizeof(float));
        for (int th = 1; th <= 3; th++) {
            RtCtx ctx;
            rt_ctx_init(&ctx, th);
            ctx.pool = rt_pool_new(th);
            float *y = rnd(ny(&g), &seed, 1), *dx = rnd(nx(&g), &seed, 1), *dk = rnd(nk(&g), &seed, 1);
            rt_conv_wino(&ctx, &g, RT_CONV_FWD, x, k, y, scratch, 1.0f);
            rt_conv_wino(&ctx, &g, RT_CONV_GRAD_INPUT, dy, k, dx, scratch, 1.0f);
            rt_conv_wino_grad_kernel(&ctx, &g, x, dy, dk, NULL);
            out[th - 1][0] = y, out[th - 1][1] = dx, out[th - 1][2] = dk;
            rt_pool_free(ctx.pool);
        }
        size_t sizes[3] = {ny(&g), nx(&g), nk(&g)};
        static const char *const what[3] = {"forward", "input gradient", "kernel gradient"};
        for (int p = 0; p < 3; p++)
            for (int th = 2; th <= 3; th++)
                ck_assert_msg(memcmp(out[0][p], out[th - 1][p], sizes[p] * sizeof(float)) == 0,
                              "%s, %s: %d threads differ from 1", ts[si].name, what[p], th);
        for (int th = 0; th < 3; th++)
            for (int p = 0; p < 3; p++)
                free(out[th][p]);
        free(x), free(k), free(dy), free(scratch);
    }
}
END_TEST

/* 3x3, stride 1, at least 16 input and output channels, unless
 * MODELC_CONV_WINOGRAD=0; the scratch size never depends on the switch. */
START_TEST(when_it_applies)
{
    const char *e = getenv("MODELC_CONV_WINOGRAD");
    bool on = !(e && strcmp(e, "0") == 0);
    RtConvGeom cnn2 = {128, 26, 26, 32, 3, 3, 64, 24, 24, 1, 1, 0, 0, 1};
    RtConvGeom cnn1 = {128, 28, 28, 1, 3, 3, 32, 26, 26, 1, 1, 0, 0, 1};
    RtConvGeom few = {8, 8, 8, 32, 3, 3, 4, 8, 8, 1, 1, 1, 1, 1};
    RtConvGeom s2 = {8, 8, 8, 32, 3, 3, 32, 4, 4, 2, 2, 1, 1, 1};
    RtConvGeom k5 = {8, 8, 8, 32, 5, 5, 32, 4, 4, 1, 1, 0, 0, 1};
    RtConvGeom c15 = {8, 8, 8, 15, 3, 3, 32, 8, 8, 1, 1, 1, 1, 1};
    for (int w = 0; w < 3; w++) {
        ck_assert(rt_conv_wino_applies(&cnn2, w) == on);
        ck_assert(!rt_conv_wino_applies(&cnn1, w));
        ck_assert(!rt_conv_wino_applies(&few, w));
        ck_assert(!rt_conv_wino_applies(&s2, w));
        ck_assert(!rt_conv_wino_applies(&k5, w));
        ck_assert(!rt_conv_wino_applies(&c15, w));
        int m = rt_conv_wino_tile(&cnn2, w);
        ck_assert(m == 2 || m == 4);
    }
    ck_assert_int_ge(rt_conv_scratch(&cnn2, RT_CONV_FWD, 4), 36 * 32 * 64);
    ck_assert_int_ge(rt_conv_scratch(&cnn2, RT_CONV_GRAD_INPUT, 4), 36 * 64 * 32);
    ck_assert_int_eq(rt_conv_wino_scratch(&cnn1, RT_CONV_FWD), 0);
    RtConvGeom huge = cnn2;
    huge.c = (int64_t)1 << 40;
    huge.o = (int64_t)1 << 40;
    ck_assert_int_eq(rt_conv_wino_scratch(&huge, RT_CONV_FWD), -1);
}
END_TEST

/* The k-th allocation of the three passes failing, on two threads: the
 * failure comes back to the caller's MEM_TRY with the failed task's
 * blocks freed (ASan's leak check sees the rest freed with the guard's
 * live set), until k passes the last allocation. */
START_TEST(out_of_memory)
{
    Shape4 sh = {"oom", 9, 10, 9, 17, 20, 1, 1, 10, 9};
    RtConvGeom g = geom(&sh);
    unsigned seed = 3u;
    float *x = rnd(nx(&g), &seed, 1), *k = rnd(nk(&g), &seed, 0.2f), *dy = rnd(ny(&g), &seed, 1);
    float *y = rnd(ny(&g), &seed, 1), *dx = rnd(nx(&g), &seed, 1), *dk = rnd(nk(&g), &seed, 1);
    float *scratch = malloc((size_t)scratch_floats(&g) * sizeof(float));
    RtCtx ctx;
    rt_ctx_init(&ctx, 2);
    ctx.pool = rt_pool_new(2);
    int caught = 0;
    bool done = false;
    for (long at = 1; at < 1000 && !done; at++) {
        MemGuard mg;
        mem_fail_at(at);
        if (MEM_TRY(&mg, "running a Winograd convolution")) {
            rt_conv_wino(&ctx, &g, RT_CONV_FWD, x, k, y, scratch, 1.0f);
            rt_conv_wino(&ctx, &g, RT_CONV_GRAD_INPUT, dy, k, dx, scratch, 1.0f);
            rt_conv_wino_grad_kernel(&ctx, &g, x, dy, dk, NULL);
        }
        mem_fail_at(0);
        done = mem_guard_pop(&mg);
        if (!done) {
            char msg[200];
            mem_error(&mg, msg, sizeof msg);
            ck_assert_msg(strstr(msg, "while running a Winograd convolution") != NULL, "%s", msg);
            mem_set_free_all(&mg.live);
            caught++;
        }
    }
    ck_assert(done);
    ck_assert_int_ge(caught, 3);
    rt_pool_free(ctx.pool);
    free(x), free(k), free(dy), free(y), free(dx), free(dk), free(scratch);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("conv_winograd");
    TCase *t = tcase_create("core");
    tcase_set_timeout(t, 120);
    int nshapes = (int)(sizeof shapes / sizeof shapes[0]);
    tcase_add_loop_test(t, against_reference, 0, nshapes);
    tcase_add_loop_test(t, runs_over_parts, 0, nshapes);
    tcase_add_test(t, threads_bit_identical);
    tcase_add_test(t, when_it_applies);
    tcase_add_test(t, out_of_memory);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
