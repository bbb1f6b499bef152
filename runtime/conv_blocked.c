/* Register-blocked f32 convolutions on NHWC tensors without im2col (see
 * kernels.h, rt_conv_blocked_*): the forward convolution and, for stride
 * 1, its input gradient as a forward convolution of dy with the flipped,
 * transposed kernel; the kernel gradient as tiles of dk accumulated in
 * registers over each image's pixels. One set of micro-kernels per
 * instruction set (conv_isa.inc), chosen at run time. */
#include "kernels.h"
#include "simd.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

typedef void (*FwdFn)(const float *x, int64_t xo, int64_t xpix, int64_t xrow, int64_t c, const float *kp,
                      int64_t obw, int64_t kw, int64_t ky0, int64_t ky1, int64_t kx0, int64_t kx1, float *y,
                      int64_t ypix, int last, float alpha);
typedef void (*GkFn)(const float *x, int64_t xo, int64_t xpix, int64_t xrowstep, const float *dy, int64_t o,
                     int64_t ow, int64_t oy0, int64_t oy1, int64_t ox0, int64_t ox1, float *dk, bool first,
                     int last);

typedef void (*FewFn)(const float *x, int64_t xo, int64_t xpix, int64_t xrow, int64_t c, const float *kt,
                      int64_t kw, int64_t kco, int64_t ky0, int64_t ky1, int64_t kx0, int64_t kx1, float *y,
                      float alpha);
typedef void (*GkcFn)(const float *x, int64_t xo, int64_t xpix, int64_t xrowstep, const float *dy, int64_t ow,
                      int64_t oy0, int64_t oy1, int64_t ox0, int64_t ox1, float *dk, bool first, int lanes);

/* One instruction set's micro-kernels: [vectors - 1][size], the sizes
 * (pixels of a forward block, input channels of a kernel-gradient block)
 * decreasing to 1 */
#define NSIZES 4
typedef struct ConvIsa {
    int vl, nvmax;
    int size[4][NSIZES];
    FwdFn fwd[4][NSIZES];
    GkFn gk[4][NSIZES];
    /* few outputs: [outputs - 1][block, one] */
    int fewpb;
    int cv[4];
    FewFn few[4][2];
    GkcFn gkc[4][2];
} ConvIsa;

#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)

/* ---- portable C: one float per "vector" ---- */
#define ISA scalar
#define TARGET
#define VL 1
#define VEC float
#define NVMAX 2
#define PB1 8
#define PB2 5
#define FEWPB 2
#define CV1 6
#define CV2 4
#define CV3 3
#define CV4 2
#define V_HSUM(v) (v)
#define V_ZERO() 0.0f
#define V_LOAD(p) (*(p))
#define V_BCAST(p) (*(p))
#define V_FMA(a, b, c) ((a) * (b) + (c))
#define V_MUL(v, s) ((v) * (s))
#define V_ADD(a, b) ((a) + (b))
#define V_STORE(p, v) (*(p) = (v))
#define V_LOADN(p, n) ((void)(n), *(p))
#define V_STOREN(p, v, n) ((void)(n), *(p) = (v))
#include "conv_isa.inc"

#if defined(__x86_64__)
/* ---- SSE2, every x86-64 ---- */
static inline __m128 sse_loadn(const float *p, int n)
{
    float t[4] = {0, 0, 0, 0};
    memcpy(t, p, (size_t)n * sizeof(float));
    return _mm_loadu_ps(t);
}

static inline void sse_storen(float *p, __m128 v, int n)
{
    float t[4];
    _mm_storeu_ps(t, v);
    memcpy(p, t, (size_t)n * sizeof(float));
}

static inline float sse_hsum(__m128 v)
{
    float t[4];
    _mm_storeu_ps(t, v);
    return (t[0] + t[1]) + (t[2] + t[3]);
}

#define ISA sse2
#define TARGET
#define VL 4
#define VEC __m128
#define NVMAX 2
#define PB1 8
#define PB2 5
#define FEWPB 2
#define CV1 6
#define CV2 4
#define CV3 3
#define CV4 2
#define V_HSUM(v) sse_hsum(v)
#define V_ZERO() _mm_setzero_ps()
#define V_LOAD(p) _mm_loadu_ps(p)
#define V_BCAST(p) _mm_set1_ps(*(p))
#define V_FMA(a, b, c) _mm_add_ps(_mm_mul_ps(a, b), c)
#define V_MUL(v, s) _mm_mul_ps(v, _mm_set1_ps(s))
#define V_ADD(a, b) _mm_add_ps(a, b)
#define V_STORE(p, v) _mm_storeu_ps(p, v)
#define V_LOADN(p, n) sse_loadn(p, n)
#define V_STOREN(p, v, n) sse_storen(p, v, n)
#include "conv_isa.inc"

/* ---- AVX2 + FMA: 16 registers of 8 floats ---- */
__attribute__((target("avx2,fma"))) static inline float avx2_hsum(__m256 v)
{
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    float t[4];
    _mm_storeu_ps(t, h);
    return (t[0] + t[1]) + (t[2] + t[3]);
}

#define ISA avx2
#define TARGET __attribute__((target("avx2,fma")))
#define VL 8
#define VEC __m256
#define NVMAX 2
#define PB1 8
#define PB2 5
#define FEWPB 2
#define CV1 6
#define CV2 4
#define CV3 3
#define CV4 2
#define V_HSUM(v) avx2_hsum(v)
#define V_ZERO() _mm256_setzero_ps()
#define V_LOAD(p) _mm256_loadu_ps(p)
#define V_BCAST(p) _mm256_broadcast_ss(p)
#define V_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define V_MUL(v, s) _mm256_mul_ps(v, _mm256_set1_ps(s))
#define V_ADD(a, b) _mm256_add_ps(a, b)
#define V_STORE(p, v) _mm256_storeu_ps(p, v)
#define V_LOADN(p, n) _mm256_maskload_ps(p, rt_avx2_mask(n))
#define V_STOREN(p, v, n) _mm256_maskstore_ps(p, rt_avx2_mask(n), v)
#include "conv_isa.inc"

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
#define FEWPB 4
#define CV1 8
#define CV2 8
#define CV3 6
#define CV4 5
#define V_HSUM(v) _mm512_reduce_add_ps(v)
#define V_ZERO() _mm512_setzero_ps()
#define V_LOAD(p) _mm512_loadu_ps(p)
#define V_BCAST(p) _mm512_set1_ps(*(p))
#define V_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define V_MUL(v, s) _mm512_mul_ps(v, _mm512_set1_ps(s))
#define V_ADD(a, b) _mm512_add_ps(a, b)
#define V_STORE(p, v) _mm512_storeu_ps(p, v)
#define V_LOADN(p, n) _mm512_maskz_loadu_ps((__mmask16)((1u << (n)) - 1u), p)
#define V_STOREN(p, v, n) _mm512_mask_storeu_ps(p, (__mmask16)((1u << (n)) - 1u), v)
#include "conv_isa.inc"
#endif

/* The best instruction set this CPU has, or the one MODELC_CONV_ISA
 * names (avx512, avx2, sse2, scalar) when the CPU has it: the tests run
 * every set the machine can. */
static int pick_level(void)
{
    const char *want = getenv("MODELC_CONV_ISA");
    int cap = 0; /* 0 scalar, 1 sse2, 2 avx2, 3 avx512 */
#if defined(__x86_64__)
    __builtin_cpu_init();
    cap = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 3
          : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")                                     ? 2
                                                                                                                 : 1;
#endif
    int lvl = cap;
    if (want && *want) {
        static const char *const names[4] = {"scalar", "sse2", "avx2", "avx512"};
        for (int i = 0; i < 4; i++)
            if (strcmp(want, names[i]) == 0 && i < cap)
                lvl = i;
    }
    return lvl;
}

int rt_conv_isa_level(void)
{
    static int chosen = -1;
    int l = __atomic_load_n(&chosen, __ATOMIC_ACQUIRE);
    if (l < 0) {
        l = pick_level();
        __atomic_store_n(&chosen, l, __ATOMIC_RELEASE);
    }
    return l;
}

static const ConvIsa *pick_isa(void)
{
    int lvl = rt_conv_isa_level();
#if defined(__x86_64__)
    if (lvl == 3)
        return &conv_isa_avx512;
    if (lvl == 2)
        return &conv_isa_avx2;
    if (lvl == 1)
        return &conv_isa_sse2;
#else
    (void)lvl;
#endif
    return &conv_isa_scalar;
}

static const ConvIsa *isa(void)
{
    static const ConvIsa *chosen;
    const ConvIsa *i = __atomic_load_n(&chosen, __ATOMIC_ACQUIRE);
    if (!i) {
        i = pick_isa();
        __atomic_store_n(&chosen, i, __ATOMIC_RELEASE);
    }
    return i;
}

/* floor(a / b) and ceil(a / b) for b > 0 */
static int64_t fdiv(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

static int64_t cdiv(int64_t a, int64_t b)
{
    return -fdiv(-a, b);
}

static int64_t clamp(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Output channels in blocks of nv vectors (obw floats). */
typedef struct Blocks {
    int nv;
    int64_t obw, n;
} Blocks;

static Blocks blocks(const ConvIsa *I, int64_t o)
{
    if (o <= 0)
        return (Blocks){1, I->vl, 0};
    int64_t nv = (o + I->vl - 1) / I->vl;
    Blocks b = {(int)(nv < I->nvmax ? nv : I->nvmax), 0, 0};
    b.obw = (int64_t)b.nv * I->vl;
    b.n = (o + b.obw - 1) / b.obw;
    return b;
}

int64_t rt_conv_blocked_pack_size(int64_t kh, int64_t kw, int64_t c, int64_t o)
{
    /* every instruction set's blocks of output channels fit in o rounded
     * up to 64 (the widest block: 4 vectors of 16) */
    int64_t r = (o + 63) / 64 * 64, n = r;
    int64_t f[3] = {kh, kw, c};
    for (int i = 0; i < 3; i++)
        if (f[i] < 0 || __builtin_mul_overflow(n, f[i], &n))
            return -1;
    return n;
}

/* kp[block][ky][kx][ci][lane] from k[ky][kx][ci][co] (HWIO), or, flipped,
 * from k[kh-1-ky][kw-1-kx][co][ci] (the input gradient's kernel: its
 * input channels are the forward output channels). Lanes past o are 0. */
static void pack(const RtConvGeom *g, const float *k, bool flipped, Blocks b, float *kp)
{
    int64_t ci_n = flipped ? g->o : g->c, co_n = flipped ? g->c : g->o;
    for (int64_t bi = 0; bi < b.n; bi++)
        for (int64_t ky = 0; ky < g->kh; ky++)
            for (int64_t kx = 0; kx < g->kw; kx++)
                for (int64_t ci = 0; ci < ci_n; ci++) {
                    float *dst = kp + (((bi * g->kh + ky) * g->kw + kx) * ci_n + ci) * b.obw;
                    for (int64_t l = 0; l < b.obw; l++) {
                        int64_t co = bi * b.obw + l;
                        float v = 0;
                        if (co < co_n)
                            v = flipped ? k[(((g->kh - 1 - ky) * g->kw + (g->kw - 1 - kx)) * g->c + co) * g->o + ci]
                                        : k[((ky * g->kw + kx) * g->c + ci) * g->o + co];
                        dst[l] = v;
                    }
                }
}

typedef struct FwdJob FwdJob;
struct FwdJob {
    void (*row)(const FwdJob *j, const float *x, float *y, int64_t oy);
    const ConvIsa *I;
    RtConvGeom g; /* the convolution computed (for an input gradient, the flipped one) */
    const float *x, *kp;
    float *y;
    float alpha;
    Blocks b;
    int64_t rows, groups;
    const RtEpilogue *epi; /* whole images per task, each followed by it (rt_epilogue_take) */
};

static void fwd_row(const FwdJob *j, const float *x, float *y, int64_t oy)
{
    const RtConvGeom *g = &j->g;
    int64_t c = g->c, o = g->o, iy0 = oy * g->sh - g->pt;
    int64_t ky0 = clamp(-iy0, 0, g->kh), ky1 = clamp(g->h - iy0, ky0, g->kh);
    /* output columns whose whole window row lies inside the image */
    int64_t ox_lo = clamp(cdiv(g->pl, g->sw), 0, g->ow);
    int64_t ox_hi = clamp(fdiv(g->w - g->kw + g->pl, g->sw) + 1, ox_lo, g->ow);
    for (int64_t bi = 0; bi < j->b.n; bi++) {
        int64_t o0 = bi * j->b.obw, width = o - o0 < j->b.obw ? o - o0 : j->b.obw;
        int nvb = (int)((width + j->I->vl - 1) / j->I->vl), last = (int)(width - (int64_t)(nvb - 1) * j->I->vl);
        const int *size = j->I->size[nvb - 1];
        const float *kp = j->kp + bi * g->kh * g->kw * c * j->b.obw;
        float *yr = y + oy * g->ow * o + o0;
        for (int64_t ox = 0; ox < g->ow;) {
            int64_t ix0 = ox * g->sw - g->pl;
            int s = 0;
            if (ox >= ox_lo)
                while (s < NSIZES - 1 && ox + size[s] > ox_hi)
                    s++;
            if (ox >= ox_lo && ox + size[s] <= ox_hi) {
                j->I->fwd[nvb - 1][s](x, iy0 * g->w * c + ix0 * c, g->sw * c, g->w * c, c, kp, j->b.obw, g->kw, ky0,
                                      ky1, 0, g->kw, yr + ox * o, o, last, j->alpha);
                ox += size[s];
            } else { /* a pixel whose window crosses the border */
                int64_t kx0 = clamp(-ix0, 0, g->kw), kx1 = clamp(g->w - ix0, kx0, g->kw);
                j->I->fwd[nvb - 1][NSIZES - 1](x, iy0 * g->w * c + ix0 * c, g->sw * c, g->w * c, c, kp, j->b.obw,
                                               g->kw, ky0, ky1, kx0, kx1, yr + ox * o, o, last, j->alpha);
                ox++;
            }
        }
    }
}

/* Task t: rows [r0, r1) of image n, one row at a time (fwd_row or, for
 * few outputs, few_row). */
static void fwd_task(void *arg, int64_t t)
{
    const FwdJob *j = arg;
    const RtConvGeom *g = &j->g;
    int64_t n = t / j->groups, r0 = t % j->groups * j->rows, r1 = r0 + j->rows < g->oh ? r0 + j->rows : g->oh;
    const float *x = j->x + n * g->h * g->w * g->c;
    float *y = j->y + n * g->oh * g->ow * g->o;
    for (int64_t oy = r0; oy < r1; oy++)
        j->row(j, x, y, oy);
    if (j->epi)
        rt_epilogue_run(j->epi, n);
}

/* Output rows in groups, so every thread gets several tasks even for
 * one image (the split does not change any output element). */
static void row_groups(const RtCtx *ctx, FwdJob *j)
{
    j->epi = rt_epilogue_take(ctx, j->g.n);
    if (j->epi) {
        j->groups = 1;
        j->rows = j->g.oh;
        return;
    }
    int64_t threads = rt_pool_threads(ctx->pool), oh = j->g.oh;
    j->groups = clamp((4 * threads + j->g.n - 1) / j->g.n, 1, oh);
    j->rows = (oh + j->groups - 1) / j->groups;
    j->groups = (oh + j->rows - 1) / j->rows;
}

/* y = alpha conv(x, kp) for geometry g, kp packed in blocks b */
static void run_fwd(const RtCtx *ctx, const ConvIsa *I, const RtConvGeom *g, const float *x, const float *kp,
                    Blocks b, float *y, float alpha)
{
    if (g->n <= 0 || g->oh <= 0 || g->ow <= 0 || g->o <= 0)
        return;
    FwdJob j = {fwd_row, I, *g, x, kp, y, alpha, b, 1, 1, NULL};
    row_groups(ctx, &j);
    rt_parallel(ctx, g->n * j.groups, fwd_task, &j);
}

void rt_conv_blocked_fwd(const RtCtx *ctx, const RtConvGeom *g, const float *x, const float *k, float *y,
                         float *scratch, float alpha)
{
    const ConvIsa *I = isa();
    Blocks b = blocks(I, g->o);
    pack(g, k, false, b, scratch);
    run_fwd(ctx, I, g, x, scratch, b, y, alpha);
}

void rt_conv_blocked_grad_input(const RtCtx *ctx, const RtConvGeom *g, const float *dy, const float *k, float *dx,
                                float *scratch)
{
    /* dx[iy, ix, c] = sum over taps and o of dy[iy + pt - ky, ix + pl - kx, o] k[ky, kx, c, o]: a
     * stride-1 convolution of dy with the flipped kernel, padded by k - 1 - p */
    RtConvGeom f = {g->n, g->oh, g->ow, g->o, g->kh, g->kw, g->c, g->h, g->w, 1, 1, g->kh - 1 - g->pt,
                    g->kw - 1 - g->pl, g->chunk};
    const ConvIsa *I = isa();
    Blocks b = blocks(I, g->c);
    pack(g, k, true, b, scratch);
    run_fwd(ctx, I, &f, dy, scratch, b, dx, 1.0f);
}

/* ---- the kernel gradient ---- */

#define GK_BAND 128

/* The output pixels of image n whose tap (ky, kx) lies inside the image,
 * within the band of rows [r0, r1): rows [y0, y1), columns [x0, x1);
 * first when they start the tile's sum. False when the band has nothing
 * to do (a tile with no pixels at all is still zeroed once, by r0 = 0). */
typedef struct TapBand {
    int64_t y0, y1, x0, x1;
    bool first;
} TapBand;

static bool tap_band(const RtConvGeom *g, int64_t ky, int64_t kx, int64_t n, int64_t r0, int64_t r1, TapBand *t)
{
    int64_t oy0 = clamp(cdiv(g->pt - ky, g->sh), 0, g->oh);
    int64_t oy1 = clamp(fdiv(g->h - 1 + g->pt - ky, g->sh) + 1, oy0, g->oh);
    t->x0 = clamp(cdiv(g->pl - kx, g->sw), 0, g->ow);
    t->x1 = clamp(fdiv(g->w - 1 + g->pl - kx, g->sw) + 1, t->x0, g->ow);
    t->y0 = clamp(r0, oy0, oy1);
    t->y1 = clamp(r1, t->y0, oy1);
    t->first = n == 0 && t->y0 == oy0;
    return t->y0 < t->y1 || (t->first && r0 == 0);
}

typedef struct GkJob GkJob;
struct GkJob {
    void (*tile)(const GkJob *j, int64_t t, int64_t n, int64_t r0, int64_t r1);
    const ConvIsa *I;
    const RtConvGeom *g;
    const float *x, *dy;
    float *dk;
    Blocks b;
    int64_t groups, ntiles, ntasks;
    int64_t chunk, nfull; /* few outputs: channels of a full chunk, full chunks */
};

/* Tile t: tap (ky, kx), output block bi and group gi of the input
 * channels, which go in blocks of the sizes for the block's vectors. */
static void gk_tile_at(const GkJob *j, int64_t t, int64_t n, int64_t r0, int64_t r1)
{
    const RtConvGeom *g = j->g;
    int64_t bi = t % j->b.n, rest = t / j->b.n, gi = rest % j->groups, tap = rest / j->groups;
    int64_t ky = tap / g->kw, kx = tap % g->kw;
    int64_t c0 = gi * g->c / j->groups, c1 = (gi + 1) * g->c / j->groups;
    int64_t o0 = bi * j->b.obw, width = g->o - o0 < j->b.obw ? g->o - o0 : j->b.obw;
    int nvb = (int)((width + j->I->vl - 1) / j->I->vl), last = (int)(width - (int64_t)(nvb - 1) * j->I->vl);
    const int *size = j->I->size[nvb - 1];
    TapBand tb;
    if (!tap_band(g, ky, kx, n, r0, r1, &tb))
        return;
    const float *x = j->x + n * g->h * g->w * g->c;
    const float *dy = j->dy + n * g->oh * g->ow * g->o + o0;
    float *dk = j->dk + (ky * g->kw + kx) * g->c * g->o + o0;
    int64_t xo = ((ky - g->pt) * g->w + (kx - g->pl)) * g->c;
    for (int64_t ci = c0; ci < c1;) {
        int s = 0;
        while (s < NSIZES - 1 && ci + size[s] > c1)
            s++;
        j->I->gk[nvb - 1][s](x, xo + ci, g->sw * g->c, g->sh * g->w * g->c, dy, g->o, g->ow, tb.y0, tb.y1, tb.x0,
                             tb.x1, dk + ci * g->o, tb.first, last);
        ci += size[s];
    }
}

/* Images in order, each in bands of output rows (about GK_BAND pixels:
 * they stay in cache while every tile of the task reads them, and each
 * tile's sum over a band is added to dk in turn, so the rounding error
 * grows with the band, not with the batch). */
static void gk_task(void *arg, int64_t t)
{
    const GkJob *j = arg;
    const RtConvGeom *g = j->g;
    int64_t lo = t * j->ntiles / j->ntasks, hi = (t + 1) * j->ntiles / j->ntasks;
    int64_t band = g->ow > 0 ? (GK_BAND + g->ow - 1) / g->ow : 1;
    for (int64_t n = 0; n < g->n; n++)
        for (int64_t r0 = 0; r0 < g->oh || r0 == 0; r0 += band)
            for (int64_t tt = lo; tt < hi; tt++)
                j->tile(j, tt, n, r0, r0 + band);
}

void rt_conv_blocked_grad_kernel(const RtCtx *ctx, const RtConvGeom *g, const float *x, const float *dy, float *dk)
{
    if (g->n <= 0 || g->o <= 0 || g->c <= 0) {
        int64_t m = g->kh * g->kw * g->c * g->o;
        if (m > 0)
            memset(dk, 0, (size_t)m * sizeof(float));
        return;
    }
    const ConvIsa *I = isa();
    GkJob j = {gk_tile_at, I, g, x, dy, dk, blocks(I, g->o), 1, 0, 0, 0, 0};
    int64_t threads = rt_pool_threads(ctx->pool), base = g->kh * g->kw * j.b.n;
    /* channel groups so the tiles split evenly over the threads */
    while (j.groups < g->c && (base * j.groups < threads || base * j.groups % threads != 0))
        j.groups++;
    j.ntiles = base * j.groups;
    j.ntasks = j.ntiles < threads ? j.ntiles : threads;
    rt_parallel(ctx, j.ntasks, gk_task, &j);
}

/* ---- few output channels (at most 4): vectors along the input channels ---- */

static void few_row(const FwdJob *j, const float *x, float *y, int64_t oy)
{
    const RtConvGeom *g = &j->g;
    int64_t c = g->c, o = g->o, iy0 = oy * g->sh - g->pt, kco = g->kh * g->kw * c;
    int64_t ky0 = clamp(-iy0, 0, g->kh), ky1 = clamp(g->h - iy0, ky0, g->kh);
    int64_t ox_lo = clamp(cdiv(g->pl, g->sw), 0, g->ow);
    int64_t ox_hi = clamp(fdiv(g->w - g->kw + g->pl, g->sw) + 1, ox_lo, g->ow);
    const FewFn *fn = j->I->few[o - 1];
    int64_t pb = j->I->fewpb;
    float *yr = y + oy * g->ow * o;
    for (int64_t ox = 0; ox < g->ow;) {
        int64_t ix0 = ox * g->sw - g->pl;
        if (ox >= ox_lo && ox + pb <= ox_hi) {
            fn[0](x, iy0 * g->w * c + ix0 * c, g->sw * c, g->w * c, c, j->kp, g->kw, kco, ky0, ky1, 0, g->kw,
                  yr + ox * o, j->alpha);
            ox += pb;
        } else {
            int64_t kx0 = clamp(-ix0, 0, g->kw), kx1 = clamp(g->w - ix0, kx0, g->kw);
            fn[1](x, iy0 * g->w * c + ix0 * c, g->sw * c, g->w * c, c, j->kp, g->kw, kco, ky0, ky1, kx0, kx1,
                  yr + ox * o, j->alpha);
            ox++;
        }
    }
}

void rt_conv_blocked_few(const RtCtx *ctx, const RtConvGeom *g, const float *x, const float *k, float *y,
                         float *scratch, float alpha)
{
    if (g->n <= 0 || g->oh <= 0 || g->ow <= 0 || g->o <= 0)
        return;
    /* kt[co][ky][kx][ci]: each output's kernel contiguous along ci */
    int64_t taps = g->kh * g->kw;
    for (int64_t co = 0; co < g->o; co++)
        for (int64_t t = 0; t < taps; t++)
            for (int64_t ci = 0; ci < g->c; ci++)
                scratch[(co * taps + t) * g->c + ci] = k[(t * g->c + ci) * g->o + co];
    FwdJob j = {few_row, isa(), *g, x, scratch, y, alpha, {0, 0, 0}, 1, 1, NULL};
    row_groups(ctx, &j);
    rt_parallel(ctx, g->n * j.groups, fwd_task, &j);
}

/* Tile t: tap (ky, kx) and a chunk of the input channels: a full chunk of
 * cv vectors, or one vector of what is left (the last one partial). */
static void gkc_tile_at(const GkJob *j, int64_t t, int64_t n, int64_t r0, int64_t r1)
{
    const RtConvGeom *g = j->g;
    int64_t per = j->ntiles / (g->kh * g->kw), tap = t / per, ch = t % per;
    int64_t ky = tap / g->kw, kx = tap % g->kw, vl = j->I->vl;
    bool full = ch < j->nfull;
    int64_t ci0 = full ? ch * j->chunk : j->nfull * j->chunk + (ch - j->nfull) * vl;
    int lanes = full ? (int)vl : (int)(g->c - ci0 < vl ? g->c - ci0 : vl);
    TapBand tb;
    if (!tap_band(g, ky, kx, n, r0, r1, &tb))
        return;
    const float *x = j->x + n * g->h * g->w * g->c;
    const float *dy = j->dy + n * g->oh * g->ow * g->o;
    float *dk = j->dk + ((ky * g->kw + kx) * g->c + ci0) * g->o;
    int64_t xo = ((ky - g->pt) * g->w + (kx - g->pl)) * g->c + ci0;
    j->I->gkc[g->o - 1][full ? 0 : 1](x, xo, g->sw * g->c, g->sh * g->w * g->c, dy, g->ow, tb.y0, tb.y1, tb.x0,
                                       tb.x1, dk, tb.first, lanes);
}

void rt_conv_blocked_few_grad_kernel(const RtCtx *ctx, const RtConvGeom *g, const float *x, const float *dy,
                                     float *dk)
{
    if (g->n <= 0 || g->o <= 0 || g->c <= 0) {
        int64_t m = g->kh * g->kw * g->c * g->o;
        if (m > 0)
            memset(dk, 0, (size_t)m * sizeof(float));
        return;
    }
    const ConvIsa *I = isa();
    GkJob j = {gkc_tile_at, I, g, x, dy, dk, {0, 0, 0}, 1, 0, 0, 0, 0};
    j.chunk = (int64_t)I->cv[g->o - 1] * I->vl;
    j.nfull = g->c / j.chunk;
    int64_t rest = g->c - j.nfull * j.chunk;
    j.ntiles = g->kh * g->kw * (j.nfull + (rest + I->vl - 1) / I->vl);
    int64_t threads = rt_pool_threads(ctx->pool);
    j.ntasks = j.ntiles < threads ? j.ntiles : threads;
    rt_parallel(ctx, j.ntasks, gk_task, &j);
}
