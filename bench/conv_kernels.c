/* conv_kernels: the convolution kernels of libmodelc-rt on the shapes of
 * the benchmark's models, one thread, timed in thread CPU time (so other
 * load on the machine inflates the figures less than wall time would),
 * beside the machine's peak FMA rate measured the same way and the
 * OpenBLAS SGEMM of each convolution's im2col matrix (what the GEMM route
 * costs before im2col/col2im themselves).
 *
 * Each pass that runs as Winograd (rt_conv_wino_*, 3x3 stride 1 with
 * enough channels) also gets a "direct" line: the register-blocked loops
 * it replaces. MODELC_CONV_WINOGRAD=2 or 4 picks the tile (kernels.h).
 * With -a it measures accuracy instead: the three passes against a
 * direct convolution in double on uniform [-1, 1] data and a Glorot-
 * uniform kernel, at c = 32, 64, 256 input channels.
 *
 * Build: cc -O2 -I. bench/conv_kernels.c -o bench/build/conv_kernels \
 *          build/libmodelc-rt.a -lopenblas -lm -lpthread
 * Usage: conv_kernels [-r REPS] [-c NAME] | conv_kernels -a
 *   (one line per kernel; -c: only the cases whose name contains NAME) */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/kernels.h"

void openblas_set_num_threads(int);

static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static float *rnd(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) {
        fprintf(stderr, "conv_kernels: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = (float)rand() / RAND_MAX - 0.5f;
    return p;
}

/* GFLOP/s of independent FMAs: 24 chains of 16-lane FMAs */
__attribute__((target("avx512f,fma"))) static double peak_avx512(void)
{
    __m512 a[24], m = _mm512_set1_ps(0.999999f), s = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 24; i++)
        a[i] = _mm512_set1_ps((float)i);
    long iters = 20000000;
    double t0 = cpu_ms();
    for (long k = 0; k < iters; k++)
        for (int i = 0; i < 24; i++)
            a[i] = _mm512_fmadd_ps(a[i], m, s);
    double ms = cpu_ms() - t0;
    float sink = 0;
    for (int i = 0; i < 24; i++)
        sink += _mm512_reduce_add_ps(a[i]);
    if (sink == 12345.0f)
        printf(" ");
    return 2.0 * 16 * 24 * (double)iters / (ms * 1e6);
}

typedef struct Case {
    const char *name;
    RtConvGeom g;
} Case;


/* y = conv(x, k), dx, dk in double: the reference */
static void ref_passes(const RtConvGeom *g, const double *x, const double *k, const double *dy, double *y,
                       double *dx, double *dk)
{
    memset(y, 0, sizeof(double) * (size_t)(g->n * g->oh * g->ow * g->o));
    memset(dx, 0, sizeof(double) * (size_t)(g->n * g->h * g->w * g->c));
    memset(dk, 0, sizeof(double) * (size_t)(g->kh * g->kw * g->c * g->o));
    for (int64_t n = 0; n < g->n; n++)
        for (int64_t oy = 0; oy < g->oh; oy++)
            for (int64_t ox = 0; ox < g->ow; ox++)
                for (int64_t ky = 0; ky < g->kh; ky++)
                    for (int64_t kx = 0; kx < g->kw; kx++) {
                        int64_t iy = oy * g->sh - g->pt + ky, ix = ox * g->sw - g->pl + kx;
                        if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                            continue;
                        const double *xp = x + ((n * g->h + iy) * g->w + ix) * g->c;
                        double *dxp = dx + ((n * g->h + iy) * g->w + ix) * g->c;
                        const double *kp = k + (ky * g->kw + kx) * g->c * g->o;
                        double *dkp = dk + (ky * g->kw + kx) * g->c * g->o;
                        double *yp = y + ((n * g->oh + oy) * g->ow + ox) * g->o;
                        const double *dyp = dy + ((n * g->oh + oy) * g->ow + ox) * g->o;
                        for (int64_t ci = 0; ci < g->c; ci++)
                            for (int64_t co = 0; co < g->o; co++) {
                                yp[co] += xp[ci] * kp[ci * g->o + co];
                                dxp[ci] += dyp[co] * kp[ci * g->o + co];
                                dkp[ci * g->o + co] += xp[ci] * dyp[co];
                            }
                    }
}

/* max |a - ref| / max |ref| and rms(a - ref) / rms(ref) */
static void report(const char *what, const float *a, const double *ref, size_t n)
{
    double me = 0, mr = 0, se = 0, sr = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - ref[i]);
        me = e > me ? e : me;
        mr = fabs(ref[i]) > mr ? fabs(ref[i]) : mr;
        se += e * e;
        sr += ref[i] * ref[i];
    }
    printf("%-40s max err/max %.2e   rms err/rms %.2e\n", what, me / mr, sqrt(se / sr));
}

static int accuracy(void)
{
    static const int cs[3] = {32, 64, 256};
    RtCtx ctx;
    rt_ctx_init(&ctx, 1);
    for (int i = 0; i < 3; i++) {
        int64_t c = cs[i], o = cs[i];
        RtConvGeom g = {8, 24, 24, c, 3, 3, o, 24, 24, 1, 1, 1, 1, 1};
        size_t nx = (size_t)(g.n * g.h * g.w * c), nk = (size_t)(9 * c * o), ny = (size_t)(g.n * g.oh * g.ow * o);
        double *x = malloc(nx * sizeof(double)), *k = malloc(nk * sizeof(double)), *dy = malloc(ny * sizeof(double));
        double *ry = malloc(ny * sizeof(double)), *rdx = malloc(nx * sizeof(double)), *rdk = malloc(nk * sizeof(double));
        float *xf = malloc(nx * sizeof(float)), *kf = malloc(nk * sizeof(float)), *dyf = malloc(ny * sizeof(float));
        float *y = malloc(ny * sizeof(float)), *dx = malloc(nx * sizeof(float)), *dk = malloc(nk * sizeof(float));
        int64_t ns = 0;
        for (int w = 0; w < 3; w++) {
            int64_t s = rt_conv_scratch(&g, w, 4);
            ns = s > ns ? s : ns;
        }
        float *scratch = malloc((size_t)(ns > 0 ? ns : 1) * sizeof(float));
        if (!x || !k || !dy || !ry || !rdx || !rdk || !xf || !kf || !dyf || !y || !dx || !dk || !scratch) {
            fprintf(stderr, "conv_kernels: out of memory\n");
            return 1;
        }
        double lim = sqrt(6.0 / (double)(9 * c + 9 * o)); /* Glorot uniform */
        for (size_t j = 0; j < nx; j++)
            xf[j] = (float)(2.0 * rand() / RAND_MAX - 1), x[j] = xf[j];
        for (size_t j = 0; j < ny; j++)
            dyf[j] = (float)(2.0 * rand() / RAND_MAX - 1), dy[j] = dyf[j];
        for (size_t j = 0; j < nk; j++)
            kf[j] = (float)(lim * (2.0 * rand() / RAND_MAX - 1)), k[j] = kf[j];
        ref_passes(&g, x, k, dy, ry, rdx, rdk);
        char what[100];
        for (int route = 0; route < 2; route++) {
            const char *name = route ? "direct" : "dispatch";
            if (route) {
                rt_conv_blocked_fwd(&ctx, &g, xf, kf, y, scratch, 1.0f);
                rt_conv_blocked_grad_input(&ctx, &g, dyf, kf, dx, scratch);
                rt_conv_blocked_grad_kernel(&ctx, &g, xf, dyf, dk);
            } else {
                rt_conv2d_f32(&ctx, &g, xf, kf, y, scratch, 1.0);
                rt_conv2d_grad_input_f32(&ctx, &g, dyf, kf, dx, scratch);
                rt_conv2d_grad_kernel_f32(&ctx, &g, xf, dyf, dk, scratch);
            }
            snprintf(what, sizeof what, "c=o=%lld %s forward", (long long)c, name);
            report(what, y, ry, ny);
            snprintf(what, sizeof what, "c=o=%lld %s grad_input", (long long)c, name);
            report(what, dx, rdx, nx);
            snprintf(what, sizeof what, "c=o=%lld %s grad_kernel", (long long)c, name);
            report(what, dk, rdk, nk);
        }
        free(x), free(k), free(dy), free(ry), free(rdx), free(rdk), free(xf), free(kf), free(dyf);
        free(y), free(dx), free(dk), free(scratch);
    }
    return 0;
}

int main(int argc, char **argv)
{
    int reps = 7;
    if (argc == 2 && strcmp(argv[1], "-a") == 0)
        return accuracy();
    const char *only = NULL;
    for (int i = 1; i + 1 < argc; i += 2)
        if (strcmp(argv[i], "-r") == 0)
            reps = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "-c") == 0)
            only = argv[i + 1];
    openblas_set_num_threads(1);
    if (__builtin_cpu_supports("avx512f"))
        printf("peak fp32 FMA, 1 thread: %.1f GFLOP/s\n", peak_avx512());
    static const Case cases[] = {
        {"cnn conv1 28x28x1->32 valid", {128, 28, 28, 1, 3, 3, 32, 26, 26, 1, 1, 0, 0, 1}},
        {"cnn conv2 26x26x32->64 valid", {128, 26, 26, 32, 3, 3, 64, 24, 24, 1, 1, 0, 0, 1}},
        {"cnn_bn conv2 28x28x32->64 same", {128, 28, 28, 32, 3, 3, 64, 28, 28, 1, 1, 1, 1, 1}},
        {"small 28x28x16->16 same", {128, 28, 28, 16, 3, 3, 16, 28, 28, 1, 1, 1, 1, 1}},
        {"s0 conv1 64x96x3->200 same", {32, 64, 96, 3, 3, 3, 200, 64, 96, 1, 1, 1, 1, 1}},
        {"s0 conv2 64x96x200->1 same", {32, 64, 96, 200, 3, 3, 1, 64, 96, 1, 1, 1, 1, 1}},
        {"strided 28x28x32->48 s2 same", {128, 28, 28, 32, 3, 3, 48, 14, 14, 2, 2, 1, 1, 1}},
    };
    RtCtx ctx;
    rt_ctx_init(&ctx, 1);
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        if (only && !strstr(cases[ci].name, only))
            continue;
        RtConvGeom g = cases[ci].g;
        size_t nx = (size_t)(g.n * g.h * g.w * g.c), nk = (size_t)(g.kh * g.kw * g.c * g.o),
               ny = (size_t)(g.n * g.oh * g.ow * g.o);
        double flop = 2.0 * (double)ny * (double)(g.kh * g.kw * g.c);
        float *x = rnd(nx), *k = rnd(nk), *y = rnd(ny), *dx = rnd(nx), *dk = rnd(nk);
        int64_t most = 0;
        for (int w = 0; w < 3; w++) {
            int64_t s = rt_conv_scratch(&g, w, 4);
            most = s > most ? s : most;
        }
        g.chunk = 1; /* the im2col route's scratch: one image */
        most = most > g.oh * g.ow * g.kh * g.kw * g.c ? most : g.oh * g.ow * g.kh * g.kw * g.c;
        float *scratch = rnd((size_t)most);
        float *col = rnd((size_t)(g.n * g.oh * g.ow * g.kh * g.kw * g.c));
        for (int kind = 0; kind < 7; kind++) {
            double t[64];
            int r = reps < 64 ? reps : 64;
            if (kind >= 4 && !rt_conv_wino_applies(&g, kind - 4))
                continue;
            for (int i = 0; i < r; i++) {
                double t0 = cpu_ms();
                if (kind == 0)
                    rt_conv2d_f32(&ctx, &g, x, k, y, scratch, 1.0);
                else if (kind == 1)
                    rt_conv2d_grad_input_f32(&ctx, &g, y, k, dx, scratch);
                else if (kind == 2)
                    rt_conv2d_grad_kernel_f32(&ctx, &g, x, y, dk, scratch);
                else if (kind == 4)
                    rt_conv_blocked_fwd(&ctx, &g, x, k, y, scratch, 1.0f);
                else if (kind == 5)
                    rt_conv_blocked_grad_input(&ctx, &g, y, k, dx, scratch);
                else if (kind == 6)
                    rt_conv_blocked_grad_kernel(&ctx, &g, x, y, dk);
                else
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(g.n * g.oh * g.ow), (int)g.o,
                                (int)(g.kh * g.kw * g.c), 1.0f, col, (int)(g.kh * g.kw * g.c), k, (int)g.o, 0.0f, y,
                                (int)g.o);
                t[i] = cpu_ms() - t0;
            }
            qsort(t, (size_t)r, sizeof t[0], cmp);
            static const char *const kinds[7] = {"forward",        "grad_input",        "grad_kernel",
                                                 "sgemm(im2col)",  "forward direct",    "grad_input direct",
                                                 "grad_kernel direct"};
            char label[40];
            snprintf(label, sizeof label, "%s%s", kinds[kind],
                     kind < 3 && rt_conv_wino_applies(&g, kind) ? (rt_conv_wino_tile(&g, kind) == 4 ? " wino F4" : " wino F2")
                                                                : "");
            /* GFLOP/s of the direct convolution's multiply-adds, for any route */
            printf("%-32s %-20s %9.2f ms %7.1f GFLOP/s\n", cases[ci].name, label, t[r / 2], flop / (t[r / 2] * 1e6));
        }
        free(x), free(k), free(y), free(dx), free(dk), free(scratch), free(col);
    }
    return 0;
}
