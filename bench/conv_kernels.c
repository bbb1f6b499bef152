/* conv_kernels: the convolution kernels of libmodelc-rt on the shapes of
 * the benchmark's models, one thread, timed in thread CPU time (so other
 * load on the machine inflates the figures less than wall time would),
 * beside the machine's peak FMA rate measured the same way and the
 * OpenBLAS SGEMM of each convolution's im2col matrix (what the GEMM route
 * costs before im2col/col2im themselves).
 *
 * Usage: conv_kernels [-r REPS]   (prints one line per kernel) */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <immintrin.h>
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

int main(int argc, char **argv)
{
    int reps = 7;
    if (argc == 3 && strcmp(argv[1], "-r") == 0)
        reps = atoi(argv[2]);
    openblas_set_num_threads(1);
    if (__builtin_cpu_supports("avx512f"))
        printf("peak fp32 FMA, 1 thread: %.1f GFLOP/s\n", peak_avx512());
    static const Case cases[] = {
        {"cnn conv1 28x28x1->32 valid", {128, 28, 28, 1, 3, 3, 32, 26, 26, 1, 1, 0, 0, 1}},
        {"cnn conv2 26x26x32->64 valid", {128, 26, 26, 32, 3, 3, 64, 24, 24, 1, 1, 0, 0, 1}},
        {"cnn_bn conv2 28x28x32->64 same", {128, 28, 28, 32, 3, 3, 64, 28, 28, 1, 1, 1, 1, 1}},
        {"s0 conv1 64x96x3->200 same", {32, 64, 96, 3, 3, 3, 200, 64, 96, 1, 1, 1, 1, 1}},
        {"s0 conv2 64x96x200->1 same", {32, 64, 96, 200, 3, 3, 1, 64, 96, 1, 1, 1, 1, 1}},
        {"strided 28x28x32->48 s2 same", {128, 28, 28, 32, 3, 3, 48, 14, 14, 2, 2, 1, 1, 1}},
    };
    RtCtx ctx;
    rt_ctx_init(&ctx, 1);
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
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
        for (int kind = 0; kind < 4; kind++) {
            double t[64];
            int r = reps < 64 ? reps : 64;
            for (int i = 0; i < r; i++) {
                double t0 = cpu_ms();
                if (kind == 0)
                    rt_conv2d_f32(&ctx, &g, x, k, y, scratch, 1.0);
                else if (kind == 1)
                    rt_conv2d_grad_input_f32(&ctx, &g, y, k, dx, scratch);
                else if (kind == 2)
                    rt_conv2d_grad_kernel_f32(&ctx, &g, x, y, dk, scratch);
                else
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(g.n * g.oh * g.ow), (int)g.o,
                                (int)(g.kh * g.kw * g.c), 1.0f, col, (int)(g.kh * g.kw * g.c), k, (int)g.o, 0.0f, y,
                                (int)g.o);
                t[i] = cpu_ms() - t0;
            }
            qsort(t, (size_t)r, sizeof t[0], cmp);
            static const char *const kinds[4] = {"forward", "grad_input", "grad_kernel", "sgemm(im2col)"};
            printf("%-32s %-14s %9.2f ms %7.1f GFLOP/s\n", cases[ci].name, kinds[kind], t[r / 2],
                   flop / (t[r / 2] * 1e6));
        }
        free(x), free(k), free(y), free(dx), free(dk), free(scratch), free(col);
    }
    return 0;
}
