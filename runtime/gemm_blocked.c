/* Register-blocked f32 GEMM (see kernels.h, rt_gemm_blocked_f32): C is
 * cut into rectangles, one per thread, along the columns when B is wide
 * enough, else along the rows; each rectangle packs its columns of B
 * (transposed or not) in blocks of k into the thread's own buffer and
 * runs micro-kernels of up to MR rows by one or two vectors of columns
 * over them, reading A in place (both layouts). The shapes of a small
 * network's dense layers (k and n in the hundreds) are where a
 * general-purpose BLAS loses most to its packing of all of A and B per
 * call; here only B's columns of each thread are packed, once. One set of
 * micro-kernels per instruction set (gemm_isa.inc): AVX-512 and AVX2+FMA;
 * on other CPUs rt_gemm_f32 stays on OpenBLAS. */
#include "kernels.h"
#include "simd.h"

#include "ir/base/base.h"

#include <cblas.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)

/* Most of k in one block (more is split into equal blocks), and the
 * floats of B one packed block holds (kc x nc, nc a multiple of the
 * tile's width): 512 KB, a quarter of a core's L2 on the Xeons this
 * was tuned on. */
#define GEMM_KC 1024
#define GEMM_PACK_FLOATS ((int64_t)1 << 17)

typedef struct GemmJob {
    int ta, tb, nv;
    int64_t m, n, k, kc, nc;
    float alpha, beta;
    const float *a, *b;
    float *c;
    /* the rectangles: parts along the rows or the columns of C */
    bool by_cols;
    int64_t parts, part;
    const struct GemmIsa *isa;
} GemmJob;

typedef void (*RectFn)(const GemmJob *g, int64_t i0, int64_t i1, int64_t j0, int64_t j1, float *buf);
typedef struct GemmIsa {
    int vl;
    RectFn rect;
} GemmIsa;

/* B(p, j) for p in [p0, p0 + kc), j in [j0, j1), in panels of nr
 * columns, each kc x nr row by row, zero past j1. */
static void gemm_pack_b(const GemmJob *g, int64_t p0, int64_t kc, int64_t j0, int64_t j1, int nr, float *out)
{
    for (int64_t jp = j0; jp < j1; jp += nr, out += kc * nr) {
        int w = (int)(j1 - jp < nr ? j1 - jp : nr);
        if (!g->tb) {
            const float *src = g->b + p0 * g->n + jp;
            for (int64_t p = 0; p < kc; p++) {
                memcpy(out + p * nr, src + p * g->n, (size_t)w * sizeof(float));
                for (int j = w; j < nr; j++)
                    out[p * nr + j] = 0;
            }
        } else {
            /* B's rows are C's columns: transposed in squares of 8 */
            const float *src = g->b + jp * g->k + p0;
            for (int64_t p = 0; p < kc; p += 8) {
                int pl = (int)(kc - p < 8 ? kc - p : 8);
                for (int jb = 0; jb < nr; jb += 8)
                    for (int j = jb; j < jb + 8; j++)
                        for (int q = 0; q < pl; q++)
                            out[(p + q) * nr + j] = j < w ? src[j * g->k + p + q] : 0;
            }
        }
    }
}

#if defined(__x86_64__)
/* ---- AVX2 + FMA: 16 registers of 8 floats ---- */
#define ISA avx2
#define TARGET __attribute__((target("avx2,fma")))
#define VL 8
#define VEC __m256
#define MR1 12
#define MR2 6
#define V_ZERO() _mm256_setzero_ps()
#define V_LOAD(p) _mm256_loadu_ps(p)
#define V_BCAST(p) _mm256_broadcast_ss(p)
#define V_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define V_MULS(v, s) _mm256_mul_ps(v, _mm256_set1_ps(s))
#define V_ADD(a, b) _mm256_add_ps(a, b)
#define V_STORE(p, v) _mm256_storeu_ps(p, v)
#define V_LOADN(p, n) _mm256_maskload_ps(p, rt_avx2_mask(n))
#define V_STOREN(p, v, n) _mm256_maskstore_ps(p, rt_avx2_mask(n), v)
#include "gemm_isa.inc"

/* ---- AVX-512: 32 registers of 16 floats, masked tails ---- */
#define ISA avx512
#define TARGET __attribute__((target("avx512f,avx2,fma")))
#define VL 16
#define VEC __m512
#define MR1 28
#define MR2 14
#define V_ZERO() _mm512_setzero_ps()
#define V_LOAD(p) _mm512_loadu_ps(p)
#define V_BCAST(p) _mm512_set1_ps(*(p))
#define V_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define V_MULS(v, s) _mm512_mul_ps(v, _mm512_set1_ps(s))
#define V_ADD(a, b) _mm512_add_ps(a, b)
#define V_STORE(p, v) _mm512_storeu_ps(p, v)
#define V_LOADN(p, n) _mm512_maskz_loadu_ps((__mmask16)((1u << (n)) - 1u), p)
#define V_STOREN(p, v, n) _mm512_mask_storeu_ps(p, (__mmask16)((1u << (n)) - 1u), v)
#include "gemm_isa.inc"
#endif

/* The micro-kernels of rt_conv_isa_level()'s instruction set; NULL below
 * AVX2 (OpenBLAS then), or when MODELC_GEMM=blas. */
static const GemmIsa *pick_isa(void)
{
    const char *want = getenv("MODELC_GEMM");
    if (want && strcmp(want, "blas") == 0)
        return NULL;
#if defined(__x86_64__)
    int lvl = rt_conv_isa_level();
    if (lvl == 3)
        return &gemm_isa_avx512;
    if (lvl == 2)
        return &gemm_isa_avx2;
#endif
    return NULL;
}

static const GemmIsa *gemm_isa(void)
{
    static const GemmIsa *chosen;
    static int picked;
    if (!__atomic_load_n(&picked, __ATOMIC_ACQUIRE)) {
        __atomic_store_n(&chosen, pick_isa(), __ATOMIC_RELEASE);
        __atomic_store_n(&picked, 1, __ATOMIC_RELEASE);
    }
    return __atomic_load_n(&chosen, __ATOMIC_ACQUIRE);
}

/* Each thread's packing buffer, kept between calls (grown when a call
 * needs more) and freed (xfree) when the thread ends. Plain calloc and
 * posix_memalign, not the guarded allocators: it outlives any one call's
 * memory guard. */
static pthread_key_t buf_key;
static bool buf_key_ok; /* set once, under buf_once */
static pthread_once_t buf_once = PTHREAD_ONCE_INIT;

typedef struct PackBuf {
    size_t bytes;
    void *p;
} PackBuf;

static void buf_free(void *v)
{
    PackBuf *b = v;
    xfree(b->p);
    xfree(b);
}

static void buf_init(void)
{
    buf_key_ok = pthread_key_create(&buf_key, buf_free) == 0;
}

void *rt_gemm_thread_buf(size_t bytes)
{
    pthread_once(&buf_once, buf_init);
    if (!buf_key_ok)
        return NULL;
    PackBuf *b = pthread_getspecific(buf_key);
    if (!b) {
        b = calloc(1, sizeof *b);
        if (!b || pthread_setspecific(buf_key, b) != 0) {
            xfree(b);
            return NULL;
        }
    }
    if (b->bytes < bytes) {
        void *p = NULL;
        if (posix_memalign(&p, 64, bytes) != 0)
            return NULL;
        xfree(b->p);
        b->p = p;
        b->bytes = bytes;
    }
    return b->p;
}

void rt_gemm_rect_blas(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, const float *b,
                       float beta, float *c, int64_t i0, int64_t i1, int64_t j0, int64_t j1)
{
    a += ta ? i0 : i0 * k;
    b += tb ? j0 * k : j0;
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)(i1 - i0),
                (int)(j1 - j0), (int)k, alpha, a, (int)(ta ? m : k), b, (int)(tb ? k : n), beta, c + i0 * n + j0,
                (int)n);
}

/* Rectangle t of C. Without a buffer (out of memory) it is OpenBLAS's,
 * on the same rectangle. */
static void gemm_task(void *arg, int64_t t)
{
    const GemmJob *g = arg;
    int64_t r[4];
    if (!rt_gemm_rect_of(g->m, g->n, g->by_cols, g->part, t, r))
        return;
    int64_t i0 = r[0], i1 = r[1], j0 = r[2], j1 = r[3];
    int nr = g->nv * g->isa->vl;
    int64_t cols = j1 - j0 < g->nc ? j1 - j0 : g->nc;
    float *buf = rt_gemm_thread_buf((size_t)(g->kc * ((cols + nr - 1) / nr * nr)) * sizeof(float));
    if (buf)
        g->isa->rect(g, i0, i1, j0, j1, buf);
    else
        rt_gemm_rect_blas(g->ta, g->tb, g->m, g->n, g->k, g->alpha, g->a, g->b, g->beta, g->c, i0, i1, j0, j1);
}

/* Work below which one thread does it all: the pool's hand-off costs
 * more than half of it saves. */
#define GEMM_SERIAL_WORK ((int64_t)1 << 19)

bool rt_gemm_blocked_f32(const RtCtx *ctx, int32_t ta, int32_t tb, int64_t m, int64_t n, int64_t k, float alpha,
                         const float *a, const float *b, float beta, float *c)
{
    const GemmIsa *isa = gemm_isa();
    if (!isa || m < 2 || n < 1 || k < 1 || m > INT32_MAX || n > INT32_MAX || k > INT32_MAX)
        return false;
    GemmJob g = {ta != 0, tb != 0, n <= isa->vl ? 1 : 2, m, n, k, 0, 0, alpha, beta, a, b, c, false, 1, 0, isa};
    int nr = g.nv * isa->vl;
    int64_t nkb = (k + GEMM_KC - 1) / GEMM_KC;
    g.kc = (k + nkb - 1) / nkb;
    g.nc = GEMM_PACK_FLOATS / g.kc / nr * nr;
    if (g.nc < nr)
        g.nc = nr;
    rt_gemm_split(ctx, m, n, k, nr, &g.by_cols, &g.parts, &g.part);
    rt_parallel(ctx, g.parts, gemm_task, &g);
    return true;
}

bool rt_gemm_rect_of(int64_t m, int64_t n, bool by_cols, int64_t part, int64_t t, int64_t r[4])
{
    int64_t dim = by_cols ? n : m, lo = t * part, hi = lo + part < dim ? lo + part : dim;
    r[0] = by_cols ? 0 : lo;
    r[1] = by_cols ? m : hi;
    r[2] = by_cols ? lo : 0;
    r[3] = by_cols ? hi : n;
    return lo < hi;
}

void rt_gemm_split(const RtCtx *ctx, int64_t m, int64_t n, int64_t k, int nr, bool *by_cols, int64_t *parts,
                   int64_t *part)
{
    int64_t threads = rt_pool_threads(ctx ? ctx->pool : NULL), panels = (n + nr - 1) / nr;
    double work = (double)m * (double)n * (double)k;
    *by_cols = false;
    *parts = 1;
    if (threads > 1 && work >= (double)GEMM_SERIAL_WORK) {
        /* columns when each thread gets a panel and the rows are not
         * many more than the columns (A read by every thread, B packed
         * once); else rows (B packed by every thread) */
        *by_cols = panels >= threads && m < 4 * n;
        *parts = *by_cols ? (panels < threads ? panels : threads) : (m < threads ? m : threads);
    }
    *part = *by_cols ? (panels + *parts - 1) / *parts * nr : (m + *parts - 1) / *parts;
}
