/* Runtime kernels for JIT-compiled code: run context and BLAS threads,
 * GEMM glue over OpenBLAS, convolution via im2col/col2im + GEMM, pooling
 * (see kernels.h). */
#include "kernels.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>

#include "ir/base.h"
#include "runtime.h"

void rt_ctx_init(RtCtx *c, int threads)
{
    memset(c, 0, sizeof *c);
    c->threads = threads;
}

int rt_threads_resolve(int threads)
{
    if (threads > 0)
        return threads;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

void rt_ctx_apply_threads(const RtCtx *c)
{
    int want = rt_threads_resolve(c->threads);
    if (openblas_get_num_threads() != want)
        openblas_set_num_threads(want);
}

double rt_dropout_uniform(const RtCtx *c, uint64_t stream, uint64_t idx)
{
    return rt_uniform(c->seed, stream, c->step, idx);
}

static blasint blas_dim(int64_t v)
{
    if (v < 0 || v > 0x7fffffff)
        ICE("matrix dimension %lld does not fit BLAS's int", (long long)v);
    return (blasint)v;
}

#define GEMM_BODY(T, BLAS)                                                                       \
    if (m <= 0 || n <= 0)                                                                        \
        return;                                                                                  \
    if (k <= 0) {                                                                                \
        for (int64_t i = 0; i < m * n; i++)                                                      \
            c[i] = beta == 0 ? (T)0 : beta * c[i];                                               \
        return;                                                                                  \
    }                                                                                            \
    BLAS(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,          \
         blas_dim(m), blas_dim(n), blas_dim(k), alpha, a, blas_dim(ta ? m : k), b,               \
         blas_dim(tb ? k : n), beta, c, blas_dim(n))

void rt_gemm_f32(int32_t ta, int32_t tb, int64_t m, int64_t n, int64_t k, float alpha,
                 const float *a, const float *b, float beta, float *c)
{
    GEMM_BODY(float, cblas_sgemm);
}

void rt_gemm_f64(int32_t ta, int32_t tb, int64_t m, int64_t n, int64_t k, double alpha,
                 const double *a, const double *b, double beta, double *c)
{
    GEMM_BODY(double, cblas_dgemm);
}

/* memset that accepts the NULL buffer of an empty tensor */
static void zero(void *p, int64_t bytes)
{
    if (bytes > 0)
        memset(p, 0, (size_t)bytes);
}

/* A 1x1, stride-1, unpadded convolution is a GEMM on the input itself. */
static bool conv_is_direct(const RtConvGeom *g)
{
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pt == 0 && g->pl == 0 &&
           g->oh == g->h && g->ow == g->w;
}

/* Few output channels: direct loops beat a matrix-vector GEMM behind an
 * im2col matrix. */
static bool conv_is_few(const RtConvGeom *g)
{
    return g->o <= RT_CONV_FEW_OUT && !conv_is_direct(g);
}

int64_t rt_conv_scratch(const RtConvGeom *g)
{
    return conv_is_direct(g) || conv_is_few(g) ? 0 : g->chunk * g->oh * g->ow * g->kh * g->kw * g->c;
}

/* The in-bounds part [y0,y1) x [x0,x1) of output pixel (oy, ox)'s window,
 * whose top-left corner (y, x) may lie in the padding. */
typedef struct ConvWin {
    int64_t y, x, y0, y1, x0, x1;
} ConvWin;

static ConvWin conv_window(const RtConvGeom *g, int64_t oy, int64_t ox)
{
    int64_t y = oy * g->sh - g->pt, x = ox * g->sw - g->pl;
    ConvWin w = {y, x, y < 0 ? 0 : y, y + g->kh > g->h ? g->h : y + g->kh, x < 0 ? 0 : x,
                 x + g->kw > g->w ? g->w : x + g->kw};
    return w;
}

/* The clipped window [y0,y1) x [x0,x1) of output pixel (oy, ox). */
typedef struct PoolWin {
    int64_t y0, y1, x0, x1;
} PoolWin;

static PoolWin pool_window(const RtPoolGeom *g, int64_t oy, int64_t ox)
{
    int64_t y = oy * g->sh - g->pt, x = ox * g->sw - g->pl;
    PoolWin w = {y < 0 ? 0 : y, y + g->kh > g->h ? g->h : y + g->kh, x < 0 ? 0 : x,
                 x + g->kw > g->w ? g->w : x + g->kw};
    return w;
}

#define T float
#define SFX f32
#include "kernels_tmpl.h"
#undef T
#undef SFX

#define T double
#define SFX f64
#include "kernels_tmpl.h"
#undef T
#undef SFX
