/* Winograd f32 convolutions (see kernels.h, rt_conv_wino_*): 3x3,
 * stride 1, F(m x m, 3 x 3) with m = 4 (tiles of 6 x 6 input pixels) or
 * m = 2 (4 x 4). For each tile position t of the T x T Winograd domain,
 *   forward:         M_t[tile, o] = sum_c V_t[tile, c] U_t[c, o],
 *                    V = B^T d B (input tiles), U = G k G^T (the kernel),
 *                    y = A^T M A;
 *   input gradient:  the forward convolution of dy with the flipped,
 *                    transposed kernel, padded by 2 - p;
 *   kernel gradient: dU_t[c, o] = sum over images and tiles of
 *                    V_t[tile, c] E_t[tile, o], E = A e A^T (e: dy's
 *                    m x m tiles), dk = G^T dU G.
 * Transforms run VL channels at a time, the products as register-blocked
 * GEMM micro-kernels, one set per instruction set (conv_wino_isa.inc);
 * the kernel's transforms run in double. */
#include "kernels.h"
#include "simd.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ir/base/base.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

typedef void (*MkFn)(const float *a, int64_t sp, int64_t sk, int64_t K, const float *b, int64_t ldb, float *c,
                     int64_t ldc, bool acc);
typedef void (*InFn)(const float *x, int64_t h, int64_t w, int64_t c, int64_t iy0, int64_t ix0, float *v,
                     int64_t ts);
typedef void (*OutFn)(const float *m, int64_t ts, int64_t o, float *y, int64_t yrow, int rows, int cols,
                      float alpha);
typedef void (*DyFn)(const float *dy, int64_t o, int64_t yrow, int rows, int cols, float *dm, int64_t ts);

/* One instruction set's kernels: GEMM blocks [vectors - 1][size] (rows
 * decreasing to 1), transforms [0: F(2,3), 1: F(4,3)]. */
#define NSIZES 4
typedef struct WinoIsa {
    int vl, nvmax;
    int size[4][NSIZES];
    MkFn mk[4][NSIZES];
    InFn in[2];
    OutFn out[2];
    DyFn dy[2];
} WinoIsa;

#define WCAT_(a, b) a##_##b
#define WCAT(a, b) WCAT_(a, b)

/* ---- portable C: one float per "vector" ---- */
#define ISA scalar
#define TARGET
#define VL 1
#define VEC float
#define NVMAX 2
#define PB1 8
#define PB2 5
#define V_ZERO() 0.0f
#define V_LOAD(p) (*(p))
#define V_BCAST(p) (*(p))
#define V_SET1(s) (s)
#define V_FMA(a, b, c) ((a) * (b) + (c))
#define V_MUL(v, s) ((v) * (s))
#define V_ADD(a, b) ((a) + (b))
#define V_SUB(a, b) ((a) - (b))
#define V_STORE(p, v) (*(p) = (v))
#define V_LOADN(p, n) ((void)(n), *(p))
#define V_STOREN(p, v, n) ((void)(n), *(p) = (v))
#include "conv_wino_isa.inc"

#if defined(__x86_64__)
/* ---- SSE2, every x86-64 ---- */
static inline __m128 wsse_loadn(const float *p, int n)
{
    float t[4] = {0, 0, 0, 0};
    memcpy(t, p, (size_t)n * sizeof(float));
    return _mm_loadu_ps(t);
}

static inline void wsse_storen(float *p, __m128 v, int n)
{
    float t[4];
    _mm_storeu_ps(t, v);
    memcpy(p, t, (size_t)n * sizeof(float));
}

#define ISA sse2
#define TARGET
#define VL 4
#define VEC __m128
#define NVMAX 2
#define PB1 8
#define PB2 5
#define V_ZERO() _mm_setzero_ps()
#define V_LOAD(p) _mm_loadu_ps(p)
#define V_BCAST(p) _mm_set1_ps(*(p))
#define V_SET1(s) _mm_set1_ps(s)
#define V_FMA(a, b, c) _mm_add_ps(_mm_mul_ps(a, b), c)
#define V_MUL(v, s) _mm_mul_ps(v, _mm_set1_ps(s))
#define V_ADD(a, b) _mm_add_ps(a, b)
#define V_SUB(a, b) _mm_sub_ps(a, b)
#define V_STORE(p, v) _mm_storeu_ps(p, v)
#define V_LOADN(p, n) wsse_loadn(p, n)
#define V_STOREN(p, v, n) wsse_storen(p, v, n)
#include "conv_wino_isa.inc"

/* ---- AVX2 + FMA: 16 registers of 8 floats ---- */
#define ISA avx2
#define TARGET __attribute__((target("avx2,fma")))
#define VL 8
#define VEC __m256
#define NVMAX 2
#define PB1 8
#define PB2 5
#define V_ZERO() _mm256_setzero_ps()
#define V_LOAD(p) _mm256_loadu_ps(p)
#define V_BCAST(p) _mm256_broadcast_ss(p)
#define V_SET1(s) _mm256_set1_ps(s)
#define V_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define V_MUL(v, s) _mm256_mul_ps(v, _mm256_set1_ps(s))
#define V_ADD(a, b) _mm256_add_ps(a, b)
#define V_SUB(a, b) _mm256_sub_ps(a, b)
#define V_STORE(p, v) _mm256_storeu_ps(p, v)
#define V_LOADN(p, n) _mm256_maskload_ps(p, rt_avx2_mask(n))
#define V_STOREN(p, v, n) _mm256_maskstore_ps(p, rt_avx2_mask(n), v)
#include "conv_wino_isa.inc"

/* ---- AVX-512: 32 registers of 16 floats, masked tails ---- */
#define ISA avx512
#define TARGET __attribute__((target("avx512f,avx2,fma")))
#define VL 16
#define VEC __m512
#define NVMAX 4
#define PB1 14
#define PB2 12
#define PB3 8
#define PB4 6
#define V_ZERO() _mm512_setzero_ps()
#define V_LOAD(p) _mm512_loadu_ps(p)
#define V_BCAST(p) _mm512_set1_ps(*(p))
#define V_SET1(s) _mm512_set1_ps(s)
#define V_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define V_MUL(v, s) _mm512_mul_ps(v, _mm512_set1_ps(s))
#define V_ADD(a, b) _mm512_add_ps(a, b)
#define V_SUB(a, b) _mm512_sub_ps(a, b)
#define V_STORE(p, v) _mm512_storeu_ps(p, v)
#define V_LOADN(p, n) _mm512_maskz_loadu_ps((__mmask16)((1u << (n)) - 1u), p)
#define V_STOREN(p, v, n) _mm512_mask_storeu_ps(p, (__mmask16)((1u << (n)) - 1u), v)
#include "conv_wino_isa.inc"
#endif

static const WinoIsa *wisa(void)
{
    int lvl = rt_conv_isa_level();
#if defined(__x86_64__)
    if (lvl == 3)
        return &wino_isa_avx512;
    if (lvl == 2)
        return &wino_isa_avx2;
    if (lvl == 1)
        return &wino_isa_sse2;
#else
    (void)lvl;
#endif
    return &wino_isa_scalar;
}

/* MODELC_CONV_WINOGRAD: 0 off, 2 or 4 that tile everywhere, else the
 * default per pass (read once per process). */
static int wino_switch(void)
{
    static int chosen = -1;
    int s = __atomic_load_n(&chosen, __ATOMIC_ACQUIRE);
    if (s < 0) {
        const char *e = getenv("MODELC_CONV_WINOGRAD");
        s = !e || !*e ? 1 : strcmp(e, "0") == 0 ? 0 : strcmp(e, "2") == 0 ? 2 : strcmp(e, "4") == 0 ? 4 : 1;
        __atomic_store_n(&chosen, s, __ATOMIC_RELEASE);
    }
    return s;
}

static bool wino_shape(const RtConvGeom *g)
{
    return g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 && g->c >= RT_CONV_WINO_MIN_C &&
           g->o >= RT_CONV_WINO_MIN_C && g->h > 0 && g->w > 0 && g->oh > 0 && g->ow > 0;
}

bool rt_conv_wino_applies(const RtConvGeom *g, int which)
{
    (void)which;
    return wino_shape(g) && wino_switch() != 0;
}

/* The default tiles per pass (docs/ops.md, "Winograd convolutions"). */
static const int default_tile[3] = {4, 4, 4};

int rt_conv_wino_tile(const RtConvGeom *g, int which)
{
    (void)g;
    int s = wino_switch();
    return s == 2 || s == 4 ? s : default_tile[which];
}

static int64_t gk_chunks(int64_t n, int64_t plane);

int64_t rt_conv_wino_scratch(const RtConvGeom *g, int which)
{
    if (!wino_shape(g))
        return 0;
    if (which == RT_CONV_GRAD_KERNEL) { /* the partial sums of GK_CHUNKS chunks, 6x6 tiles, o in 16s */
        int64_t plane = 36, f[2] = {g->c, (g->o + 15) / 16 * 16};
        for (int i = 0; i < 2; i++)
            if (f[i] < 0 || __builtin_mul_overflow(plane, f[i], &plane))
                return -1;
        int64_t n = gk_chunks(INT64_MAX, plane), all;
        return __builtin_mul_overflow(n, plane, &all) ? -1 : all;
    }
    int64_t ci = which == RT_CONV_FWD ? g->c : g->o, co = which == RT_CONV_FWD ? g->o : g->c;
    int64_t n = (co + 15) / 16 * 16; /* every instruction set's row: co in whole vectors */
    int64_t f[2] = {36, ci};
    for (int i = 0; i < 2; i++)
        if (f[i] < 0 || __builtin_mul_overflow(n, f[i], &n))
            return -1;
    return n;
}

/* ---- the kernel's transforms, in double ---- */

/* G of F(4x4,3x3) (T = 6) or F(2x2,3x3) (T = 4): T rows of 3 */
static const double G4[6][3] = {{1.0 / 4, 0, 0},
                                {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                {0, 0, 1}};
static const double G2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};

/* u[T x T] = G k G^T for the 3x3 kernel k (k[r * ks0 + s * ks1]) */
static void kernel_tf(int T, const float *k, int64_t ks0, int64_t ks1, double *u)
{
    const double(*G)[3] = T == 6 ? G4 : G2;
    double t[6][3];
    for (int i = 0; i < T; i++)
        for (int s = 0; s < 3; s++)
            t[i][s] = G[i][0] * k[0 * ks0 + s * ks1] + G[i][1] * k[1 * ks0 + s * ks1] + G[i][2] * k[2 * ks0 + s * ks1];
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++)
            u[i * T + j] = t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2];
}

/* dk[3 x 3] = G^T du G */
static void kernel_tf_adj(int T, const double *du, double *dk)
{
    const double(*G)[3] = T == 6 ? G4 : G2;
    double t[3][6];
    for (int r = 0; r < 3; r++)
        for (int j = 0; j < T; j++) {
            double s = 0;
            for (int i = 0; i < T; i++)
                s += G[i][r] * du[i * T + j];
            t[r][j] = s;
        }
    for (int r = 0; r < 3; r++)
        for (int q = 0; q < 3; q++) {
            double s = 0;
            for (int j = 0; j < T; j++)
                s += t[r][j] * G[j][q];
            dk[r * 3 + q] = s;
        }
}

/* ---- a pass as a forward convolution ---- */

/* The convolution a run computes: for the input gradient, the one of dy
 * with the flipped kernel. */
typedef struct Wg {
    int m, T, TT, var;   /* output tile, input tile, positions, transform set */
    int64_t n, h, w, c, o, oh, ow, pt, pl;
    int64_t th, tw;      /* tile rows and columns */
    int64_t cs, os;      /* c and o rounded up to whole vectors */
} Wg;

static Wg wg_make(const RtConvGeom *g, int which, const WinoIsa *I)
{
    Wg q;
    q.m = rt_conv_wino_tile(g, which);
    q.T = q.m + 2;
    q.TT = q.T * q.T;
    q.var = q.m == 4;
    if (which == RT_CONV_GRAD_INPUT) {
        q.n = g->n, q.h = g->oh, q.w = g->ow, q.c = g->o, q.o = g->c, q.oh = g->h, q.ow = g->w;
        q.pt = 2 - g->pt, q.pl = 2 - g->pl;
    } else {
        q.n = g->n, q.h = g->h, q.w = g->w, q.c = g->c, q.o = g->o, q.oh = g->oh, q.ow = g->ow;
        q.pt = g->pt, q.pl = g->pl;
    }
    q.th = (q.oh + q.m - 1) / q.m;
    q.tw = (q.ow + q.m - 1) / q.m;
    q.cs = (q.c + I->vl - 1) / I->vl * I->vl;
    q.os = (q.o + I->vl - 1) / I->vl * I->vl;
    return q;
}

/* Input channels [c0, c1) of the transformed kernel. */
static void prepare_range(const RtConvGeom *g, int which, const float *k, float *scratch, int64_t c0, int64_t c1)
{
    const WinoIsa *I = wisa();
    Wg q = wg_make(g, which, I);
    /* u[t][ci][co] of the convolution run computes: k[ky][kx][ci][co]
     * (HWIO), or for the input gradient k[2-ky][2-kx][co][ci] */
    int64_t s0 = g->kw * g->c * g->o, s1 = g->c * g->o;
    double u[36];
    for (int64_t ci = c0; ci < c1 && ci < q.c; ci++) {
        for (int64_t co = 0; co < q.o; co++) {
            if (which == RT_CONV_GRAD_INPUT)
                kernel_tf(q.T, k + 2 * s0 + 2 * s1 + co * g->o + ci, -s0, -s1, u);
            else
                kernel_tf(q.T, k + ci * g->o + co, s0, s1, u);
            for (int t = 0; t < q.TT; t++)
                scratch[(t * q.c + ci) * q.os + co] = (float)u[t];
        }
        for (int t = 0; t < q.TT; t++)
            for (int64_t co = q.o; co < q.os; co++)
                scratch[(t * q.c + ci) * q.os + co] = 0;
    }
}

void rt_conv_wino_prepare(const RtConvGeom *g, int which, const float *k, float *scratch)
{
    prepare_range(g, which, k, scratch, 0, INT64_MAX);
}

/* The same on the context's threads, PREP_CHANNELS input channels per
 * task (every element is computed the same way whichever task runs it). */
#define PREP_CHANNELS 8
typedef struct PrepJob {
    const RtConvGeom *g;
    int which;
    const float *k;
    float *scratch;
} PrepJob;

static void prepare_task(void *arg, int64_t t)
{
    const PrepJob *j = arg;
    prepare_range(j->g, j->which, j->k, j->scratch, t * PREP_CHANNELS, (t + 1) * PREP_CHANNELS);
}

static void prepare(const RtCtx *ctx, const RtConvGeom *g, int which, const float *k, float *scratch)
{
    Wg q = wg_make(g, which, wisa());
    PrepJob j = {g, which, k, scratch};
    rt_parallel(ctx, (q.c + PREP_CHANNELS - 1) / PREP_CHANNELS, prepare_task, &j);
}

/* c[rows x os] (+)= a b through the micro-kernels: a(p, k) at
 * a[p * sp + k * sk], b[K x os] (ldb = os), c's rows ldc = os apart. */
static void gemm(const WinoIsa *I, int64_t rows, int64_t K, const float *a, int64_t sp, int64_t sk, const float *b,
                 float *c, int64_t os, bool acc)
{
    int64_t obw = (int64_t)I->nvmax * I->vl;
    for (int64_t o0 = 0; o0 < os; o0 += obw) {
        int nv = (int)((os - o0 < obw ? os - o0 : obw) / I->vl);
        const int *size = I->size[nv - 1];
        for (int64_t p = 0; p < rows;) {
            int s = 0;
            while (s < NSIZES - 1 && p + size[s] > rows)
                s++;
            I->mk[nv - 1][s](a + p * sp, sp, sk, K, b + o0, os, c + p * os + o0, os, acc);
            p += size[s];
        }
    }
}

/* Tiles in a group: their transformed inputs and products stay in cache
 * while every tile position's GEMM reads them. */
static int64_t group_tiles(const Wg *q)
{
    int64_t per = (int64_t)q->TT * (q->cs + q->os), g = ((int64_t)1 << 17) / (per > 0 ? per : 1);
    return g < 8 ? 8 : g > 512 ? 512 : g;
}

/* A run's buffers: transformed input tiles and their products, for
 * groups of up to G tiles. */
typedef struct RunBufs {
    int64_t G;
    float *v, *mm;
} RunBufs;

static RunBufs bufs_new(const Wg *q, int64_t tiles)
{
    RunBufs b = {group_tiles(q), NULL, NULL};
    if (b.G > tiles)
        b.G = tiles > 0 ? tiles : 1;
    b.v = xmalloc((size_t)(q->TT * b.G * q->cs) * sizeof(float));
    b.mm = xmalloc((size_t)(q->TT * b.G * q->os) * sizeof(float));
    return b;
}

static void bufs_free(RunBufs *b)
{
    xfree(b->v);
    xfree(b->mm);
}

/* Images [n0, n1), tile rows [r0, r1) of each, serially. */
static void run_range(const WinoIsa *I, const Wg *q, const RunBufs *b, const float *x, const float *u, float *y,
                      float alpha, int64_t n0, int64_t n1, int64_t r0, int64_t r1)
{
    int64_t rows = r1 - r0, total = (n1 - n0) * rows * q->tw, G = b->G;
    float *v = b->v, *mm = b->mm;
    for (int64_t g0 = 0; g0 < total; g0 += G) {
        int64_t cnt = total - g0 < G ? total - g0 : G;
        for (int64_t i = 0; i < cnt; i++) {
            int64_t idx = g0 + i, n = n0 + idx / (rows * q->tw), ty = r0 + idx / q->tw % rows, tx = idx % q->tw;
            I->in[q->var](x + n * q->h * q->w * q->c, q->h, q->w, q->c, ty * q->m - q->pt, tx * q->m - q->pl,
                          v + i * q->cs, G * q->cs);
        }
        for (int t = 0; t < q->TT; t++)
            gemm(I, cnt, q->c, v + t * G * q->cs, q->cs, 1, u + t * q->c * q->os, mm + t * G * q->os, q->os, false);
        for (int64_t i = 0; i < cnt; i++) {
            int64_t idx = g0 + i, n = n0 + idx / (rows * q->tw), ty = r0 + idx / q->tw % rows, tx = idx % q->tw;
            int64_t oy = ty * q->m, ox = tx * q->m;
            int nr = (int)(q->oh - oy < q->m ? q->oh - oy : q->m), nc = (int)(q->ow - ox < q->m ? q->ow - ox : q->m);
            I->out[q->var](mm + i * q->os, G * q->os, q->o, y + ((n * q->oh + oy) * q->ow + ox) * q->o, q->ow * q->o,
                           nr, nc, alpha);
        }
    }
}

void rt_conv_wino_run(const RtConvGeom *g, int which, const float *x, const float *scratch, float *y, float alpha)
{
    const WinoIsa *I = wisa();
    Wg q = wg_make(g, which, I);
    if (q.n <= 0 || q.th <= 0 || q.tw <= 0)
        return;
    RunBufs b = bufs_new(&q, q.n * q.th * q.tw);
    run_range(I, &q, &b, x, scratch, y, alpha, 0, q.n, 0, q.th);
    bufs_free(&b);
}

typedef struct RunJob {
    const WinoIsa *I;
    const Wg *q;
    const float *x, *u;
    float *y;
    float alpha;
    int64_t per, groups, rows; /* images per task, or tile-row groups of one image */
    const RtEpilogue *epi;     /* run on each image after it (rt_epilogue_take), or NULL */
} RunJob;

static void run_task(void *arg, int64_t t)
{
    const RunJob *j = arg;
    const Wg *q = j->q;
    if (j->groups > 1) {
        int64_t n = t / j->groups, r0 = t % j->groups * j->rows, r1 = r0 + j->rows < q->th ? r0 + j->rows : q->th;
        RunBufs b = bufs_new(q, (r1 - r0) * q->tw);
        run_range(j->I, q, &b, j->x, j->u, j->y, j->alpha, n, n + 1, r0, r1);
        bufs_free(&b);
        return;
    }
    int64_t n0 = t * j->per, n1 = n0 + j->per < q->n ? n0 + j->per : q->n;
    RunBufs b = bufs_new(q, (j->epi ? 1 : n1 - n0) * q->th * q->tw);
    if (j->epi) /* image by image, each followed by the epilogue */
        for (int64_t n = n0; n < n1; n++) {
            run_range(j->I, q, &b, j->x, j->u, j->y, j->alpha, n, n + 1, 0, q->th);
            rt_epilogue_run(j->epi, n);
        }
    else
        run_range(j->I, q, &b, j->x, j->u, j->y, j->alpha, n0, n1, 0, q->th);
    bufs_free(&b);
}

void rt_conv_wino(const RtCtx *ctx, const RtConvGeom *g, int which, const float *x, const float *k, float *y,
                  float *scratch, float alpha)
{
    const WinoIsa *I = wisa();
    Wg q = wg_make(g, which, I);
    prepare(ctx, g, which, k, scratch);
    if (q.n <= 0 || q.oh <= 0 || q.ow <= 0)
        return;
    /* The split changes no output element: each is one GEMM sum over the
     * channels and one output transform. Runs of images per task (each
     * task allocates its buffers once), tile rows of one image when the
     * batch is small. */
    int64_t threads = rt_pool_threads(ctx->pool), want = 4 * threads;
    RunJob j = {I, &q, x, scratch, y, alpha, 1, 1, q.th, rt_epilogue_take(ctx, q.n)};
    int64_t ntasks;
    if (q.n >= want || j.epi) {
        j.per = (q.n + want - 1) / want;
        ntasks = (q.n + j.per - 1) / j.per;
    } else {
        j.groups = (want + q.n - 1) / q.n;
        j.groups = j.groups > q.th ? q.th : j.groups;
        j.rows = (q.th + j.groups - 1) / j.groups;
        j.groups = (q.th + j.rows - 1) / j.rows;
        ntasks = q.n * j.groups;
    }
    rt_parallel(ctx, ntasks, run_task, &j);
}

/* ---- the kernel gradient ---- */

/* Images go in at most GK_CHUNKS chunks fixed by the batch size (and
 * fewer when their partial sums would pass GK_PART_BYTES): a task sums
 * its chunk's products into its own partial dU, and the partial sums
 * are added in chunk order, so the result does not depend on the
 * threads. */
#define GK_CHUNKS 16
#define GK_PART_BYTES ((int64_t)64 << 20)

typedef struct GkJob {
    const WinoIsa *I;
    const Wg *q;
    const RtConvGeom *g;
    const float *x, *dy;
    float *part; /* [chunk][t][c][os] */
    float *dk;
    int64_t nch;
} GkJob;

static void gk_chunk(void *arg, int64_t j)
{
    const GkJob *J = arg;
    const WinoIsa *I = J->I;
    const Wg *q = J->q;
    int64_t n0 = j * q->n / J->nch, n1 = (j + 1) * q->n / J->nch, tpi = q->th * q->tw, total = (n1 - n0) * tpi;
    float *part = J->part + j * q->TT * q->c * q->os;
    if (total <= 0) {
        memset(part, 0, (size_t)(q->TT * q->c * q->os) * sizeof(float));
        return;
    }
    int64_t G = group_tiles(q);
    if (G > total)
        G = total;
    float *v = xmalloc((size_t)(q->TT * G * q->cs) * sizeof(float));
    float *e = xmalloc((size_t)(q->TT * G * q->os) * sizeof(float));
    for (int64_t g0 = 0; g0 < total; g0 += G) {
        int64_t cnt = total - g0 < G ? total - g0 : G;
        for (int64_t i = 0; i < cnt; i++) {
            int64_t idx = g0 + i, n = n0 + idx / tpi, ty = idx / q->tw % q->th, tx = idx % q->tw;
            int64_t oy = ty * q->m, ox = tx * q->m;
            int nr = (int)(q->oh - oy < q->m ? q->oh - oy : q->m), nc = (int)(q->ow - ox < q->m ? q->ow - ox : q->m);
            I->in[q->var](J->x + n * q->h * q->w * q->c, q->h, q->w, q->c, oy - q->pt, ox - q->pl, v + i * q->cs,
                          G * q->cs);
            I->dy[q->var](J->dy + ((n * q->oh + oy) * q->ow + ox) * q->o, q->o, q->ow * q->o, nr, nc,
                          e + i * q->os, G * q->os);
        }
        for (int t = 0; t < q->TT; t++) /* the first group starts the sums */
            gemm(I, q->c, cnt, v + t * G * q->cs, 1, q->cs, e + t * G * q->os, part + t * q->c * q->os, q->os, g0 > 0);
    }
    xfree(v);
    xfree(e);
}

/* Input channel ci of dk: the partial sums in chunk order, then G^T . G */
static void gk_finish(void *arg, int64_t ci)
{
    const GkJob *J = arg;
    const Wg *q = J->q;
    int64_t plane = q->TT * q->c * q->os, os = q->os;
    float *sum = xmalloc((size_t)(q->TT * os) * sizeof(float));
    for (int t = 0; t < q->TT; t++) {
        float *restrict st = sum + t * os;
        const float *p = J->part + (t * q->c + ci) * os;
        memcpy(st, p, (size_t)os * sizeof(float));
        for (int64_t j = 1; j < J->nch; j++) {
            const float *restrict pj = p + j * plane;
            for (int64_t co = 0; co < os; co++)
                st[co] += pj[co];
        }
    }
    double du[36], d[9];
    for (int64_t co = 0; co < q->o; co++) {
        for (int t = 0; t < q->TT; t++)
            du[t] = sum[t * os + co];
        kernel_tf_adj(q->T, du, d);
        for (int r = 0; r < 9; r++)
            J->dk[(r * q->c + ci) * q->o + co] = (float)d[r];
    }
    xfree(sum);
}

/* Chunks of a batch of n images whose partial sums take plane floats each. */
static int64_t gk_chunks(int64_t n, int64_t plane)
{
    int64_t nch = n < GK_CHUNKS ? n : GK_CHUNKS;
    while (nch > 1 && nch * plane * (int64_t)sizeof(float) > GK_PART_BYTES)
        nch--;
    return nch < 1 ? 1 : nch;
}

void rt_conv_wino_grad_kernel(const RtCtx *ctx, const RtConvGeom *g, const float *x, const float *dy, float *dk,
                              float *scratch)
{
    const WinoIsa *I = wisa();
    Wg q = wg_make(g, RT_CONV_GRAD_KERNEL, I);
    int64_t plane = q.TT * q.c * q.os, nch = gk_chunks(q.n, plane);
    GkJob J = {I, &q, g, x, dy, scratch, dk, nch};
    /* this tile and vector width's sums fit the planned scratch (sized for 6x6 tiles and 16 floats) */
    bool own = !scratch || nch * plane > rt_conv_wino_scratch(g, RT_CONV_GRAD_KERNEL);
    if (own)
        J.part = xmalloc((size_t)(nch * plane) * sizeof(float));
    rt_parallel(ctx, nch, gk_chunk, &J);
    rt_parallel(ctx, q.c, gk_finish, &J);
    if (own)
        xfree(J.part);
}
