/* f32 GEMM on bf16 operands (see kernels.h, rt_gemm_bf16_f32): A and B
 * are rounded to bf16 as they are packed (round to nearest even, as
 * VCVTNEPS2BF16 does), and their products are summed in f32 by AMX's
 * tile dot products (TDPBF16PS: blocks of 32 x 32 of C, 32 of k per
 * step) or, without AMX, by AVX512-BF16's vector pair dot products
 * (VDPBF16PS; on the Xeons with both, half the f32 FMA rate, so AMX is
 * the one that pays): C = alpha * op(A) op(B) + beta * C. The rectangles,
 * blocks and thread split are those of the f32 kernels (gemm_blocked.c);
 * k is taken in pairs, so B is packed as pairs of rows (each 32-bit lane
 * one column's two values) and each row block of A as pairs along k.
 * Each element of C is one sum over the pairs of k in the same order
 * whatever the thread count (its bits differ between AMX and
 * AVX512-BF16). MODELC_BF16=avx512 takes AVX512-BF16's kernels where
 * both are there. */
#include "kernels.h"

#include "ir/base/base.h"

#include <sys/syscall.h>
#include <unistd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define BINLINE static inline __attribute__((always_inline)) TARGET

#define BF_KC 1024                         /* most of k in one block (an even number of pairs' worth) */
#define BF_PACK_U32 ((int64_t)1 << 17)     /* 32-bit pairs of B one packed block holds: 512 KB */
#define BF_MR2 14                          /* rows of a tile two vectors (32 columns) wide */
#define BF_MR1 28                          /* rows of a tile one vector (16 columns) wide */
#define AMX_MR 32                          /* rows of an AMX block of C: two tiles of 16 */

typedef struct BfJob {
    bool amx; /* AMX tiles (else AVX512-BF16's vector dot products) */
    int ta, tb, nv;
    int64_t m, n, k, kc, nc;
    float alpha, beta;
    const float *a, *b;
    float *c;
    bool by_cols;
    int64_t parts, part;
} BfJob;

/* Pairs per packed block of k: AMX tiles take 16 pairs at a time, so
 * their blocks are padded with zero pairs to a multiple of 16. */
static int64_t pairs_padded(const BfJob *g, int64_t kc)
{
    int64_t kq = (kc + 1) / 2;
    return g->amx ? (kq + 15) / 16 * 16 : kq;
}

/* 16 floats (the first n; zeros after) as bf16, rounded as VCVTNEPS2BF16
 * rounds. */
BINLINE __m256i cvt16(const float *p, int n)
{
    __m512 v = n >= 16 ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1u), p);
    return (__m256i)_mm512_cvtneps_pbh(v);
}

/* Lane j of the result: (lo[j], hi[j]), two bf16 in one 32-bit lane. */
BINLINE __m512i pairs(__m256i lo, __m256i hi)
{
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22,
                                         6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    return _mm512_permutexvar_epi16(idx, both);
}

/* B(p, j) for p in [p0, p0 + kc) (zero past k), j in [j0, j1), in panels
 * of nr columns: for each pair of rows, the panel's columns as 32-bit
 * pairs (row 2q in the low half), zero past j1. */
TARGET static void pack_b(const BfJob *g, int64_t p0, int64_t kc, int64_t j0, int64_t j1, int nr, uint32_t *out)
{
    int64_t kq = (kc + 1) / 2, kqp = pairs_padded(g, kc);
    float lo[16], hi[16];
    for (int64_t jp = j0; jp < j1; jp += nr, out += kqp * nr) {
        int w = (int)(j1 - jp < nr ? j1 - jp : nr);
        memset(out + kq * nr, 0, (size_t)((kqp - kq) * nr) * sizeof *out);
        for (int64_t q = 0; q < kq; q++) {
            int64_t p = p0 + 2 * q;
            bool second = 2 * q + 1 < kc;
            for (int v = 0; v < nr; v += 16) {
                int lanes = w - v < 16 ? (w - v > 0 ? w - v : 0) : 16;
                __m256i r0, r1;
                if (!g->tb) {
                    const float *src = g->b + p * g->n + jp + v;
                    r0 = cvt16(src, lanes);
                    r1 = second ? cvt16(src + g->n, lanes) : _mm256_setzero_si256();
                } else { /* B's rows are C's columns: B(p, j) = b[j * k + p] */
                    for (int j = 0; j < 16; j++) {
                        lo[j] = hi[j] = 0;
                        if (j < lanes) {
                            const float *src = g->b + (jp + v + j) * g->k + p;
                            lo[j] = src[0];
                            hi[j] = second ? src[1] : 0;
                        }
                    }
                    r0 = cvt16(lo, 16);
                    r1 = cvt16(hi, 16);
                }
                _mm512_storeu_si512(out + q * nr + v, pairs(r0, r1));
            }
        }
    }
}

/* Rows [i, i + mr) of op(A) over k in [p0, p0 + kc) as 32-bit pairs along
 * k, row r's at out[r * kqp ...]; zero past k (to kqp pairs) and in rows
 * mr..rows (AMX's tiles take 32). */
TARGET static void pack_a(const BfJob *g, int64_t i, int mr, int rows, int64_t p0, int64_t kc, int64_t kqp,
                          uint32_t *out)
{
    int64_t kq = (kc + 1) / 2;
    for (int r = 0; r < rows; r++) /* what the rows below leave: the padding, rows past mr */
        memset(out + r * kqp + (r < mr ? kq : 0), 0, (size_t)(kqp - (r < mr ? kq : 0)) * sizeof *out);
    if (!g->ta) {
        for (int r = 0; r < mr; r++) {
            const float *src = g->a + (i + r) * g->k + p0;
            uint32_t *dst = out + r * kqp;
            for (int64_t p = 0; p < kc; p += 16) {
                int n = (int)(kc - p < 16 ? kc - p : 16);
                _mm256_mask_storeu_epi32(dst + p / 2, (__mmask8)((1u << ((n + 1) / 2)) - 1u), cvt16(src + p, n));
            }
        }
        return;
    }
    float lo[16], hi[16];
    const __m512i rowstep = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                               _mm512_set1_epi32((int)kqp));
    for (int64_t q = 0; q < kq; q++) {
        int64_t p = p0 + 2 * q;
        bool second = 2 * q + 1 < kc;
        for (int r0 = 0; r0 < mr; r0 += 16) {
            int n = mr - r0 < 16 ? mr - r0 : 16;
            const float *row = g->a + p * g->m + i + r0;
            for (int r = 0; r < 16; r++) {
                lo[r] = r < n ? row[r] : 0;
                hi[r] = r < n && second ? row[g->m + r] : 0; /* A(i + r0 + r, p + 1) */
            }
            _mm512_mask_i32scatter_epi32(out + r0 * kqp + q, (__mmask16)((1u << n) - 1u), rowstep,
                                         pairs(cvt16(lo, 16), cvt16(hi, 16)), 4);
        }
    }
}

/* c[r, 0..w) of mr rows = alpha * sum over pairs q < kq of A's pair (r,
 * q) . B's pair (q, column) (+ beta * c, or + c when `add`); A's pair at
 * ap[r * ars + q * acs], B's nv vectors of pairs per q at bp. */
BINLINE void tile(const int mr, const int nv, const uint32_t *ap, int64_t ars, int64_t acs, const uint32_t *bp,
                  int64_t kq, float *c, int64_t ldc, int w, float alpha, float beta, bool add)
{
    __m512 acc[BF_MR1][2];
#pragma GCC unroll 32
    for (int r = 0; r < mr; r++) {
        acc[r][0] = _mm512_setzero_ps();
        if (nv > 1)
            acc[r][1] = _mm512_setzero_ps();
    }
    for (int64_t q = 0; q < kq; q++) {
        const uint32_t *bq = bp + q * nv * 16;
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(bq);
        __m512bh b1 = nv > 1 ? (__m512bh)_mm512_loadu_si512(bq + 16) : b0;
        const uint32_t *aq = ap + q * acs;
#pragma GCC unroll 32
        for (int r = 0; r < mr; r++) {
            __m512bh x = (__m512bh)_mm512_set1_epi32((int)aq[r * ars]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], x, b0);
            if (nv > 1)
                acc[r][1] = _mm512_dpbf16_ps(acc[r][1], x, b1);
        }
    }
#pragma GCC unroll 32
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) {
            int lanes = w - v * 16 < 16 ? w - v * 16 : 16;
            if (lanes <= 0)
                continue;
            __mmask16 mk = (__mmask16)((1u << lanes) - 1u);
            float *cp = c + r * ldc + v * 16;
            __m512 res = _mm512_mul_ps(acc[r][v], _mm512_set1_ps(alpha));
            if (add)
                res = _mm512_add_ps(res, _mm512_maskz_loadu_ps(mk, cp));
            else if (beta != 0)
                res = _mm512_add_ps(res, _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, cp), _mm512_set1_ps(beta)));
            _mm512_mask_storeu_ps(cp, mk, res);
        }
}

#define T1(n)                                                                                                  \
    case n:                                                                                                    \
        tile(n, 1, ap, ars, acs, bp, kq, c, ldc, w, alpha, beta, add);                                        \
        return;
#define T2(n)                                                                                                  \
    case n:                                                                                                    \
        tile(n, 2, ap, ars, acs, bp, kq, c, ldc, w, alpha, beta, add);                                        \
        return;

TARGET static void tile_any(int mr, int nv, const uint32_t *ap, int64_t ars, int64_t acs, const uint32_t *bp,
                            int64_t kq, float *c, int64_t ldc, int w, float alpha, float beta, bool add)
{
    if (nv == 1)
        switch (mr) {
            T1(1) T1(2) T1(3) T1(4) T1(5) T1(6) T1(7) T1(8) T1(9) T1(10) T1(11) T1(12) T1(13) T1(14)
            T1(15) T1(16) T1(17) T1(18) T1(19) T1(20) T1(21) T1(22) T1(23) T1(24) T1(25) T1(26) T1(27) T1(28)
        }
    else
        switch (mr) {
            T2(1) T2(2) T2(3) T2(4) T2(5) T2(6) T2(7) T2(8) T2(9) T2(10) T2(11) T2(12) T2(13) T2(14)
        }
    MC_ASSERT(!"bf16 gemm tile size");
}
#undef T1
#undef T2

/* C's rows [i0, i1) and columns [j0, j1): for each block of k and of
 * columns, B's part packed, then per balanced row block A's rows packed
 * and a tile per panel. */
TARGET static void rect(const BfJob *g, int64_t i0, int64_t i1, int64_t j0, int64_t j1, uint32_t *bbuf,
                        uint32_t *abuf)
{
    int nv = g->nv, nr = nv * 16, mrmax = nv > 1 ? BF_MR2 : BF_MR1;
    int64_t rows = i1 - i0, nrb = (rows + mrmax - 1) / mrmax;
    for (int64_t p0 = 0; p0 < g->k; p0 += g->kc) {
        int64_t kc = g->k - p0 < g->kc ? g->k - p0 : g->kc, kq = (kc + 1) / 2;
        for (int64_t jc = j0; jc < j1; jc += g->nc) {
            int64_t je = jc + g->nc < j1 ? jc + g->nc : j1;
            pack_b(g, p0, kc, jc, je, nr, bbuf);
            for (int64_t rb = 0, i = i0; rb < nrb; rb++) {
                int mr = (int)(rows / nrb + (rb < rows % nrb));
                pack_a(g, i, mr, mr, p0, kc, kq, abuf);
                for (int64_t j = jc; j < je; j += nr)
                    tile_any(mr, nv, abuf, kq, 1, bbuf + (j - jc) * kq, kq, g->c + i * g->n + j, g->n,
                             (int)(je - j < nr ? je - j : nr), g->alpha, g->beta, p0 > 0);
                i += mr;
            }
        }
    }
}

/* ---- AMX: tiles of 16 rows by 64 bytes ----
 * Tiles 0-3 accumulate a 32 x 32 block of C (rows 0-15 and 16-31 by
 * columns 0-15 and 16-31), 4-5 hold two row halves of A (16 rows by 16
 * pairs of k), 6-7 two column halves of B (16 pairs of k by 16 columns).
 * The block goes through a 32 x 32 buffer to C (alpha, beta, the edges). */
#define AMX_TARGET __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512bf16")))

typedef struct AmxCfg {
    uint8_t palette, start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} AmxCfg;

/* The 32 x 32 block from tiles 0-3 (in buf) into C's rows [i, i + mr)
 * and columns [j, j + w). */
TARGET static void amx_store(const BfJob *g, const float *buf, int64_t i, int mr, int64_t j, int w, bool add)
{
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < 2; v++) {
            int lanes = w - v * 16 < 16 ? w - v * 16 : 16;
            if (lanes <= 0)
                continue;
            __mmask16 mk = (__mmask16)((1u << lanes) - 1u);
            float *cp = g->c + (i + r) * g->n + j + v * 16;
            __m512 res = _mm512_mul_ps(_mm512_loadu_ps(buf + r * 32 + v * 16), _mm512_set1_ps(g->alpha));
            if (add)
                res = _mm512_add_ps(res, _mm512_maskz_loadu_ps(mk, cp));
            else if (g->beta != 0)
                res = _mm512_add_ps(res, _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, cp), _mm512_set1_ps(g->beta)));
            _mm512_mask_storeu_ps(cp, mk, res);
        }
}

/* rect for AMX: B's panels of 32 columns packed per block of k and of
 * columns, then per row block of 32, A's rows packed and a 32 x 32 block
 * of C per panel, 16 pairs of k per step. */
AMX_TARGET static void amx_rect(const BfJob *g, int64_t i0, int64_t i1, int64_t j0, int64_t j1, uint32_t *bbuf,
                                uint32_t *abuf)
{
    AmxCfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.rows[t] = 16;
        cfg.colsb[t] = 64;
    }
    _tile_loadconfig(&cfg);
    float *out = (float *)(abuf + AMX_MR * ((g->kc + 1) / 2 + 16)); /* after A's rows */
    for (int64_t p0 = 0; p0 < g->k; p0 += g->kc) {
        int64_t kc = g->k - p0 < g->kc ? g->k - p0 : g->kc, kqp = pairs_padded(g, kc);
        for (int64_t jc = j0; jc < j1; jc += g->nc) {
            int64_t je = jc + g->nc < j1 ? jc + g->nc : j1;
            pack_b(g, p0, kc, jc, je, 32, bbuf);
            for (int64_t i = i0; i < i1; i += AMX_MR) {
                int mr = (int)(i1 - i < AMX_MR ? i1 - i : AMX_MR);
                pack_a(g, i, mr, AMX_MR, p0, kc, kqp, abuf);
                for (int64_t j = jc; j < je; j += 32) {
                    const uint32_t *bp = bbuf + (j - jc) * kqp;
                    _tile_zero(0);
                    _tile_zero(1);
                    _tile_zero(2);
                    _tile_zero(3);
                    for (int64_t q = 0; q < kqp; q += 16) {
                        _tile_loadd(4, abuf + q, kqp * 4);
                        _tile_loadd(5, abuf + 16 * kqp + q, kqp * 4);
                        _tile_loadd(6, bp + q * 32, 128);
                        _tile_loadd(7, bp + q * 32 + 16, 128);
                        _tile_dpbf16ps(0, 4, 6);
                        _tile_dpbf16ps(1, 4, 7);
                        _tile_dpbf16ps(2, 5, 6);
                        _tile_dpbf16ps(3, 5, 7);
                    }
                    _tile_stored(0, out, 128);
                    _tile_stored(1, out + 16, 128);
                    _tile_stored(2, out + 16 * 32, 128);
                    _tile_stored(3, out + 16 * 32 + 16, 128);
                    amx_store(g, out, i, mr, j, (int)(je - j < 32 ? je - j : 32), p0 > 0);
                }
            }
        }
    }
    _tile_release();
}

/* AMX needs the kernel's leave to use its tile data (once per process). */
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18
static bool amx_ok(void)
{
    static int ok = -1;
    int v = __atomic_load_n(&ok, __ATOMIC_ACQUIRE);
    if (v < 0) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("amx-tile") && __builtin_cpu_supports("amx-bf16") &&
            __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
            syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
        __atomic_store_n(&ok, v, __ATOMIC_RELEASE);
    }
    return v == 1;
}

/* Rectangle t of C; its buffers: B's packed block, then one row block of
 * A (room for a tile's rows by a block of k, plus a vector of slack for
 * pack_a's last masked stores). */
static void task(void *arg, int64_t t)
{
    const BfJob *g = arg;
    int64_t r[4];
    if (!rt_gemm_rect_of(g->m, g->n, g->by_cols, g->part, t, r))
        return;
    int64_t i0 = r[0], i1 = r[1], j0 = r[2], j1 = r[3];
    int nr = g->amx ? 32 : g->nv * 16;
    int64_t kq = pairs_padded(g, g->kc), cols = j1 - j0 < g->nc ? j1 - j0 : g->nc;
    size_t bwords = (size_t)(kq * ((cols + nr - 1) / nr * nr));
    size_t awords = g->amx ? (size_t)(AMX_MR * (kq + 16) + AMX_MR * 32) : (size_t)(kq * BF_MR1 + 16);
    uint32_t *buf = rt_gemm_thread_buf((bwords + awords) * sizeof(uint32_t));
    if (!buf) /* out of memory for the buffer: this rectangle in f32, as gemm_blocked.c does */
        rt_gemm_rect_blas(g->ta, g->tb, g->m, g->n, g->k, g->alpha, g->a, g->b, g->beta, g->c, i0, i1, j0, j1);
    else if (g->amx)
        amx_rect(g, i0, i1, j0, j1, buf, buf + bwords);
    else
        rect(g, i0, i1, j0, j1, buf, buf + bwords);
}

/* AVX512-BF16's vector dot products (without AMX) */
static bool avx512bf16_ok(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
}

/* The kernels MODELC_BF16 names (amx, avx512), or the best there are: 2
 * AMX, 1 AVX512-BF16, 0 none. */
static int bf16_level(void)
{
    static int level = -1;
    int l = __atomic_load_n(&level, __ATOMIC_ACQUIRE);
    if (l < 0) {
        const char *want = getenv("MODELC_BF16");
        bool amx = amx_ok(), vec = avx512bf16_ok();
        if (want && strcmp(want, "avx512") == 0)
            l = vec ? 1 : 0;
        else
            l = amx ? 2 : vec ? 1 : 0;
        __atomic_store_n(&level, l, __ATOMIC_RELEASE);
    }
    return l;
}

bool rt_cpu_has_bf16(void)
{
    return bf16_level() > 0;
}

bool rt_gemm_bf16_f32(const RtCtx *ctx, int32_t ta, int32_t tb, int64_t m, int64_t n, int64_t k, float alpha,
                      const float *a, const float *b, float beta, float *c)
{
    int level = bf16_level();
    if (level == 0 || m < 1 || n < 1 || k < 1 || m > INT32_MAX || n > INT32_MAX || k > INT32_MAX)
        return false;
    BfJob g = {level == 2, ta != 0, tb != 0, n <= 16 ? 1 : 2, m, n, k, 0, 0, alpha, beta, a, b, c, false, 1, 0};
    int nr = g.amx ? 32 : g.nv * 16;
    int64_t nkb = (k + BF_KC - 1) / BF_KC;
    g.kc = (k + nkb - 1) / nkb;
    g.kc += g.kc & 1; /* even: only the last block has an unpaired row */
    int64_t kq = pairs_padded(&g, g.kc);
    g.nc = BF_PACK_U32 / kq / nr * nr;
    if (g.nc < nr)
        g.nc = nr;
    rt_gemm_split(ctx, m, n, k, nr, &g.by_cols, &g.parts, &g.part);
    rt_parallel(ctx, g.parts, task, &g);
    return true;
}

#else

bool rt_cpu_has_bf16(void)
{
    return false;
}

bool rt_gemm_bf16_f32(const RtCtx *ctx, int32_t ta, int32_t tb, int64_t m, int64_t n, int64_t k, float alpha,
                      const float *a, const float *b, float beta, float *c)
{
    (void)ctx, (void)ta, (void)tb, (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)b, (void)beta, (void)c;
    return false;
}

#endif
