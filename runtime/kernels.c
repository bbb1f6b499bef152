/* Runtime kernels for JIT-compiled code: run context and threads, GEMM
 * (f32 register-blocked in gemm_blocked.c where the CPU has AVX2, else
 * OpenBLAS in parts), convolution (register-blocked f32 loops in
 * conv_blocked.c, else im2col/col2im + GEMM), pooling, dropout masks
 * (see kernels.h). */
#include "kernels.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cblas.h>

#include "ir/base/base.h"
#include "runtime.h"

/* ---- OpenBLAS's kernels ----
 * An OpenBLAS built for many CPUs (Debian's is) picks its kernels by the
 * CPU's family and model when it loads. A CPU newer than the library gets
 * its generic SSE3 kernels ("Prescott"): on an Intel Xeon of family 6,
 * model 207 with AVX-512, OpenBLAS 0.3.21 does, and its SGEMM runs at 31
 * GFLOP/s on one core where its SkylakeX kernels reach 140. So when the
 * library loads, unless the user chose (OPENBLAS_CORETYPE), kernels below
 * AVX2 on a CPU with AVX2 and FMA are re-selected for the CPU's
 * instruction set: SkylakeX with AVX-512 F, BW, VL and DQ, else Haswell.
 * A choice of AVX2 kernels or better is the library's and stays. This
 * uses OpenBLAS's own re-selection (gotoblas_dynamic_quit/_init, which
 * read OPENBLAS_CORETYPE), present only in such builds (weak symbols);
 * it runs in a constructor, before any other thread of the process can
 * read the environment, and leaves the environment as it found it. */
extern void gotoblas_dynamic_init(void) __attribute__((weak));
extern void gotoblas_dynamic_quit(void) __attribute__((weak));
extern char *openblas_get_corename(void) __attribute__((weak));

static char g_blas_picked[32]; /* what OpenBLAS picked, when re-selected */

/* Does the kernel set `core` use AVX2 or better? */
static bool core_has_avx2(const char *core)
{
    static const char *const avx2[] = {"haswell",    "zen",       "skylakex", "cooperlake",
                                       "sapphirerapids", "icelake", "tigerlake", "alderlake"};
    for (size_t i = 0; i < sizeof avx2 / sizeof *avx2; i++)
        if (strncasecmp(core, avx2[i], strlen(avx2[i])) == 0)
            return true;
    return false;
}

static const char *cpu_blas_core(void)
{
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
        return NULL;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return "SkylakeX";
    return "Haswell";
}

__attribute__((constructor)) static void blas_select(void)
{
    if (!gotoblas_dynamic_init || !gotoblas_dynamic_quit || !openblas_get_corename ||
        getenv("OPENBLAS_CORETYPE") || getenv("MODELC_BLAS_AS_LOADED"))
        return;
    const char *picked = openblas_get_corename(), *want = cpu_blas_core();
    if (!picked || !want || core_has_avx2(picked))
        return;
    snprintf(g_blas_picked, sizeof g_blas_picked, "%s", picked);
    if (setenv("OPENBLAS_CORETYPE", want, 1) != 0)
        return;
    gotoblas_dynamic_quit();
    gotoblas_dynamic_init();
    unsetenv("OPENBLAS_CORETYPE");
}

const char *rt_blas_core(char *buf, size_t n)
{
    const char *core = openblas_get_corename ? openblas_get_corename() : NULL;
    if (!core)
        snprintf(buf, n, "a BLAS without OpenBLAS's kernel selection");
    else if (g_blas_picked[0])
        snprintf(buf, n, "OpenBLAS %s kernels (it picked %s for this CPU; re-selected by instruction set)",
                 core, g_blas_picked);
    else
        snprintf(buf, n, "OpenBLAS %s kernels", core);
    return buf;
}

void rt_ctx_init(RtCtx *c, int threads)
{
    memset(c, 0, sizeof *c);
    c->threads = threads;
}

void rt_epilogue_begin(RtCtx *c, RtRowsFn fn, void *env, int64_t chunk, int64_t scale)
{
    if (!c->epi) {
        c->epi_at.n = 0;
        c->epi = &c->epi_at;
    }
    RtEpilogue *e = c->epi;
    MC_ASSERT(e->n < RT_EPILOGUES);
    e->k[e->n].fn = fn;
    e->k[e->n].env = env;
    e->k[e->n].chunk = chunk;
    e->k[e->n].scale = scale;
    e->n++;
    e->pending = 1;
}

void rt_epilogue_end(RtCtx *c, int64_t n)
{
    RtEpilogue *e = c->epi;
    c->epi = NULL;
    if (e && e->pending) {
        e->pending = 0;
        for (int i = 0; i < e->n; i++)
            rt_parallel_rows(c, n * e->k[i].scale, e->k[i].chunk, e->k[i].fn, e->k[i].env);
    }
}

const RtEpilogue *rt_epilogue_take(const RtCtx *c, int64_t n)
{
    RtEpilogue *e = c->epi;
    if (!e || !e->pending || n < 2 * (int64_t)rt_pool_threads(c->pool))
        return NULL;
    e->pending = 0;
    return e;
}

void rt_epilogue_run(const RtEpilogue *e, int64_t b)
{
    for (int i = 0; i < e->n; i++)
        e->k[i].fn(e->k[i].env, b * e->k[i].scale, (b + 1) * e->k[i].scale);
}

int rt_threads_resolve(int threads)
{
    if (threads > 0)
        return threads;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* OpenBLAS's pthread build starts a worker per core when it loads, and
 * each spins (yielding) for about 2^28 cycles, a tenth of a second,
 * before it first sleeps, and again after every job. modelc never gives
 * OpenBLAS a job for them, so they only take time from the compile's
 * threads and the pool's (a third of a short `modelc eval`'s samples
 * were one of them yielding). As soon as the program (or the library)
 * loads, after OpenBLAS, which it depends on: one thread, with its server
 * stopped where the library has blas_thread_shutdown_ (weak: other builds
 * may not). */
extern int blas_thread_shutdown_(void) __attribute__((weak));

__attribute__((constructor)) static void blas_quiet_at_load(void)
{
    openblas_set_num_threads(1);
    if (blas_thread_shutdown_)
        blas_thread_shutdown_();
}

void rt_ctx_apply_threads(const RtCtx *c)
{
    if (openblas_get_num_threads() != 1)
        openblas_set_num_threads(1);
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

/* How rt_gemm cuts C (kernels.h): by rows (else columns) into nparts
 * parts of `part` rows or columns, the last one shorter. */
typedef struct GemmCut {
    bool rows;
    int64_t part, nparts;
} GemmCut;

/* dim cut into about p parts (at most `most`, at least 1) of a
 * multiple of `align`. */
static GemmCut cut_dim(bool rows, int64_t dim, int64_t p, int64_t most, int64_t align)
{
    GemmCut g = {rows, 0, 1};
    if (p > most)
        p = most > 1 ? most : 1;
    g.part = (dim + p - 1) / p;
    g.part = (g.part + align - 1) / align * align;
    g.nparts = (dim + g.part - 1) / g.part;
    return g;
}

static GemmCut gemm_cut(int64_t m, int64_t n, int64_t k)
{
    bool rows = m >= n;
    int64_t dim = rows ? m : n;
    double work = (double)m * (double)n * (double)k / (double)RT_GEMM_GRAIN;
    int64_t p = work >= RT_GEMM_PARTS ? RT_GEMM_PARTS : work >= 1 ? (int64_t)work : 1;
    int64_t most = dim / RT_GEMM_SIDE;
    if (most < 2 && dim >= 2 * RT_GEMM_SIDE_MIN)
        most = 2; /* two threads rather than one, at twice the packing */
    return cut_dim(rows, dim, p, most, RT_GEMM_ALIGN);
}

/* A GEMM with one row (batch 1 through a dense layer) is a
 * matrix-vector product, bound by reading B: one part per RT_GEMV_GRAIN
 * elements of B, at most RT_GEMM_PARTS, so that both threads read half
 * of the weights. */
#define RT_GEMV_GRAIN ((int64_t)1 << 18)
static int64_t gemv_parts(int64_t n, int64_t k)
{
    int64_t p = n * k / RT_GEMV_GRAIN;
    return p > RT_GEMM_PARTS ? RT_GEMM_PARTS : p < 1 ? 1 : p;
}

/* Its columns of C in parts of RT_GEMM_ALIGN-multiples. */
static GemmCut gemv_cut(int64_t n, int64_t k)
{
    return cut_dim(false, n, gemv_parts(n, k), n / RT_GEMM_ALIGN, RT_GEMM_ALIGN);
}

/* With B not transposed and large: parts of B's rows instead (each read
 * as one run; rt_gemm adds the partial rows in order). */
static GemmCut gemv_row_cut(int64_t n, int64_t k)
{
    return cut_dim(true, k, gemv_parts(n, k), k, 1);
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

/* The f32 convolutions that run register-blocked (kernels.h): every
 * forward and kernel gradient but the 1x1 GEMM (few outputs with their
 * own micro-kernels); the input gradient at stride 1 with enough input
 * channels (they are its output channels: few of them would leave most
 * lanes of a vector idle). */
static bool conv_blocked(const RtConvGeom *g, int which)
{
    if (conv_is_direct(g))
        return false;
    return which != RT_CONV_GRAD_INPUT || (g->sh == 1 && g->sw == 1 && g->c >= RT_CONV_BLOCKED_MIN_C);
}

int64_t rt_conv_scratch(const RtConvGeom *g, int which, int elem_bytes)
{
    if (elem_bytes == (int)sizeof(float) && conv_blocked(g, which)) {
        int64_t b = which == RT_CONV_FWD          ? rt_conv_blocked_pack_size(g->kh, g->kw, g->c, g->o)
                    : which == RT_CONV_GRAD_INPUT ? rt_conv_blocked_pack_size(g->kh, g->kw, g->o, g->c)
                                                  : 0;
        /* room for either route, whichever MODELC_CONV_WINOGRAD picks */
        int64_t w = rt_conv_wino_scratch(g, which);
        return b < 0 || w < 0 ? -1 : b > w ? b : w;
    }
    if (conv_is_direct(g) || conv_is_few(g))
        return 0;
    int64_t f[6] = {g->chunk, g->oh, g->ow, g->kh, g->kw, g->c}, n = 1;
    for (int i = 0; i < 6; i++)
        if (f[i] < 0 || __builtin_mul_overflow(n, f[i], &n))
            return -1;
    return n;
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

/* ---- dropout masks: Philox-4x32-10 as in rng.c, one counter per
 * element, with the key computed once per mask ---- */

static uint64_t dropout_key(uint64_t seed, uint64_t stream)
{
    uint64_t z = stream; /* splitmix64's finaliser, as rng.c's mix64 */
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return seed ^ (z ^ (z >> 31));
}

/* keep[j] = rt_uniform(seed, stream, step, idx + j) >= rate for
 * j < RT_PHILOX_LANES, as all-ones or zero: with x the 64-bit Philox
 * output word pair behind the uniform (u = (x >> 11) * 2^-53), u >= rate
 * <=> x >> 11 >= thresh <=> x >= thresh << 11 (dropout_threshold). The
 * vector versions run the lanes as several independent registers, so
 * the rounds' multiplies overlap instead of waiting on each other.
 * rt_philox_block gives the words x themselves (the initializers'
 * uniform numbers, rng.c). */
static void philox_scalar(uint64_t key, uint64_t step, uint64_t idx, uint64_t *x)
{
    for (int j = 0; j < RT_PHILOX_LANES; j++) {
        uint64_t i = idx + (uint64_t)j;
        uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
        uint32_t c0 = (uint32_t)i, c1 = (uint32_t)(i >> 32), c2 = (uint32_t)step, c3 = (uint32_t)(step >> 32);
        for (int r = 0; r < 10; r++) {
            uint64_t p0 = (uint64_t)RT_PHILOX_M0 * c0, p1 = (uint64_t)RT_PHILOX_M1 * c2;
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
            c1 = (uint32_t)p1;
            c3 = (uint32_t)p0;
            c0 = n0;
            c2 = n2;
            k0 += RT_PHILOX_W0;
            k1 += RT_PHILOX_W1;
        }
        x[j] = ((uint64_t)c1 << 32) | c0;
    }
}

static void dropout_keep_scalar(uint64_t key, uint64_t step, uint64_t idx, uint64_t thresh, uint32_t *keep)
{
    uint64_t x[RT_PHILOX_LANES];
    philox_scalar(key, step, idx, x);
    for (int j = 0; j < RT_PHILOX_LANES; j++)
        keep[j] = x[j] >> 11 >= thresh ? 0xFFFFFFFFu : 0;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* The counters' low words idx + j, split into 32-bit halves. */
static void philox_counters(uint64_t idx, uint32_t *lo, uint32_t *hi)
{
    for (int j = 0; j < RT_PHILOX_LANES; j++) {
        lo[j] = (uint32_t)(idx + (uint64_t)j);
        hi[j] = (uint32_t)((idx + (uint64_t)j) >> 32);
    }
}

/* x[j] = w1[j]:w0[j], the output words of lane j */
static void join_words(const uint32_t *w0, const uint32_t *w1, uint64_t *x)
{
    for (int j = 0; j < RT_PHILOX_LANES; j++)
        x[j] = ((uint64_t)w1[j] << 32) | w0[j];
}

/* hi and lo 32-bit halves of the 8 products a[j] * m */
__attribute__((target("avx2"))) static inline void mul_hilo(__m256i a, __m256i m, __m256i *hi, __m256i *lo)
{
    __m256i even = _mm256_mul_epu32(a, m), odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
    *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
    *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}

/* unsigned a > b per 32-bit lane */
__attribute__((target("avx2"))) static inline __m256i gt_u32(__m256i a, __m256i b)
{
    __m256i sign = _mm256_set1_epi32((int)0x80000000u);
    return _mm256_cmpgt_epi32(_mm256_xor_si256(a, sign), _mm256_xor_si256(b, sign));
}

/* AVX2: 8 registers of 8 lanes, one lane per 32-bit element; c0, c1 the
 * output words after the rounds. */
#define AVX2_REGS (RT_PHILOX_LANES / 8)
__attribute__((target("avx2"))) static inline void philox_avx2(uint64_t key, uint64_t step, uint64_t idx,
                                                               __m256i *c0, __m256i *c1)
{
    uint32_t lo[RT_PHILOX_LANES], hi[RT_PHILOX_LANES];
    philox_counters(idx, lo, hi);
    __m256i c2[AVX2_REGS], c3[AVX2_REGS];
    for (int v = 0; v < AVX2_REGS; v++) {
        c0[v] = _mm256_loadu_si256((const __m256i *)(lo + 8 * v));
        c1[v] = _mm256_loadu_si256((const __m256i *)(hi + 8 * v));
        c2[v] = _mm256_set1_epi32((int)(uint32_t)step);
        c3[v] = _mm256_set1_epi32((int)(uint32_t)(step >> 32));
    }
    __m256i m0 = _mm256_set1_epi32((int)RT_PHILOX_M0), m1 = _mm256_set1_epi32((int)RT_PHILOX_M1);
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int r = 0; r < 10; r++) {
        __m256i kk0 = _mm256_set1_epi32((int)k0), kk1 = _mm256_set1_epi32((int)k1);
        for (int v = 0; v < AVX2_REGS; v++) {
            __m256i hi0, lo0, hi1, lo1;
            mul_hilo(c0[v], m0, &hi0, &lo0);
            mul_hilo(c2[v], m1, &hi1, &lo1);
            __m256i n0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1[v]), kk0);
            __m256i n2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3[v]), kk1);
            c1[v] = lo1;
            c3[v] = lo0;
            c0[v] = n0;
            c2[v] = n2;
        }
        k0 += RT_PHILOX_W0;
        k1 += RT_PHILOX_W1;
    }
}

__attribute__((target("avx2"))) static void dropout_keep_avx2(uint64_t key, uint64_t step, uint64_t idx,
                                                              uint64_t thresh, uint32_t *keep)
{
    __m256i c0[AVX2_REGS], c1[AVX2_REGS];
    philox_avx2(key, step, idx, c0, c1);
    uint64_t t = thresh << 11; /* thresh < 2^53 */
    __m256i th = _mm256_set1_epi32((int)(uint32_t)(t >> 32)), tl = _mm256_set1_epi32((int)(uint32_t)t);
    for (int v = 0; v < AVX2_REGS; v++) {
        __m256i ge_lo = _mm256_andnot_si256(gt_u32(tl, c0[v]), _mm256_set1_epi32(-1));
        __m256i k = _mm256_or_si256(gt_u32(c1[v], th), _mm256_and_si256(_mm256_cmpeq_epi32(c1[v], th), ge_lo));
        _mm256_storeu_si256((__m256i *)(keep + 8 * v), k);
    }
}

__attribute__((target("avx2"))) static void philox_block_avx2(uint64_t key, uint64_t step, uint64_t idx,
                                                              uint64_t *x)
{
    __m256i c0[AVX2_REGS], c1[AVX2_REGS];
    philox_avx2(key, step, idx, c0, c1);
    uint32_t w0[RT_PHILOX_LANES], w1[RT_PHILOX_LANES];
    for (int v = 0; v < AVX2_REGS; v++) {
        _mm256_storeu_si256((__m256i *)(w0 + 8 * v), c0[v]);
        _mm256_storeu_si256((__m256i *)(w1 + 8 * v), c1[v]);
    }
    join_words(w0, w1, x);
}

/* AVX-512: 4 registers of 16 lanes. */
#define AVX512_REGS (RT_PHILOX_LANES / 16)
__attribute__((target("avx512f"))) static inline void mul_hilo16(__m512i a, __m512i m, __m512i *hi, __m512i *lo)
{
    __m512i even = _mm512_mul_epu32(a, m), odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
    *hi = _mm512_mask_blend_epi32((__mmask16)0xAAAA, _mm512_srli_epi64(even, 32), odd);
    *lo = _mm512_mask_blend_epi32((__mmask16)0xAAAA, even, _mm512_slli_epi64(odd, 32));
}

__attribute__((target("avx512f"))) static inline void philox_avx512(uint64_t key, uint64_t step, uint64_t idx,
                                                                    __m512i *c0, __m512i *c1)
{
    uint32_t lo[RT_PHILOX_LANES], hi[RT_PHILOX_LANES];
    philox_counters(idx, lo, hi);
    __m512i c2[AVX512_REGS], c3[AVX512_REGS];
    for (int v = 0; v < AVX512_REGS; v++) {
        c0[v] = _mm512_loadu_si512(lo + 16 * v);
        c1[v] = _mm512_loadu_si512(hi + 16 * v);
        c2[v] = _mm512_set1_epi32((int)(uint32_t)step);
        c3[v] = _mm512_set1_epi32((int)(uint32_t)(step >> 32));
    }
    __m512i m0 = _mm512_set1_epi32((int)RT_PHILOX_M0), m1 = _mm512_set1_epi32((int)RT_PHILOX_M1);
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int r = 0; r < 10; r++) {
        __m512i kk0 = _mm512_set1_epi32((int)k0), kk1 = _mm512_set1_epi32((int)k1);
        for (int v = 0; v < AVX512_REGS; v++) {
            __m512i hi0, lo0, hi1, lo1;
            mul_hilo16(c0[v], m0, &hi0, &lo0);
            mul_hilo16(c2[v], m1, &hi1, &lo1);
            __m512i n0 = _mm512_xor_si512(_mm512_xor_si512(hi1, c1[v]), kk0);
            __m512i n2 = _mm512_xor_si512(_mm512_xor_si512(hi0, c3[v]), kk1);
            c1[v] = lo1;
            c3[v] = lo0;
            c0[v] = n0;
            c2[v] = n2;
        }
        k0 += RT_PHILOX_W0;
        k1 += RT_PHILOX_W1;
    }
}

__attribute__((target("avx512f"))) static void dropout_keep_avx512(uint64_t key, uint64_t step, uint64_t idx,
                                                                   uint64_t thresh, uint32_t *keep)
{
    __m512i c0[AVX512_REGS], c1[AVX512_REGS];
    philox_avx512(key, step, idx, c0, c1);
    uint64_t t = thresh << 11; /* thresh < 2^53 */
    __m512i th = _mm512_set1_epi32((int)(uint32_t)(t >> 32)), tl = _mm512_set1_epi32((int)(uint32_t)t);
    for (int v = 0; v < AVX512_REGS; v++) {
        /* x >= t: hi > th, or hi == th and lo >= tl (unsigned) */
        __mmask16 k = _mm512_cmpgt_epu32_mask(c1[v], th) |
                      (_mm512_cmpeq_epu32_mask(c1[v], th) & _mm512_cmpge_epu32_mask(c0[v], tl));
        _mm512_storeu_si512(keep + 16 * v, _mm512_maskz_set1_epi32(k, -1));
    }
}

__attribute__((target("avx512f"))) static void philox_block_avx512(uint64_t key, uint64_t step, uint64_t idx,
                                                                   uint64_t *x)
{
    __m512i c0[AVX512_REGS], c1[AVX512_REGS];
    philox_avx512(key, step, idx, c0, c1);
    uint32_t w0[RT_PHILOX_LANES], w1[RT_PHILOX_LANES];
    for (int v = 0; v < AVX512_REGS; v++) {
        _mm512_storeu_si512(w0 + 16 * v, c0[v]);
        _mm512_storeu_si512(w1 + 16 * v, c1[v]);
    }
    join_words(w0, w1, x);
}

/* The instruction set of the keep masks, or the one MODELC_PHILOX_ISA
 * names (avx512, avx2; scalar or sse2 for the portable loop) when the
 * CPU has it: the tests compare every set the machine can run with
 * rt_uniform. */
static int philox_isa(void)
{
    static int chosen = -1;
    int c = __atomic_load_n(&chosen, __ATOMIC_RELAXED);
    if (c < 0) {
        __builtin_cpu_init();
        int cap = __builtin_cpu_supports("avx512f") ? 2 : __builtin_cpu_supports("avx2") ? 1 : 0;
        const char *want = getenv("MODELC_PHILOX_ISA");
        c = cap;
        if (want && (strcmp(want, "scalar") == 0 || strcmp(want, "sse2") == 0))
            c = 0;
        else if (want && strcmp(want, "avx2") == 0 && cap >= 1)
            c = 1;
        __atomic_store_n(&chosen, c, __ATOMIC_RELAXED);
    }
    return c;
}

static void dropout_keep(uint64_t key, uint64_t step, uint64_t idx, uint64_t thresh, uint32_t *keep)
{
    int isa = philox_isa();
    if (isa == 2)
        dropout_keep_avx512(key, step, idx, thresh, keep);
    else if (isa == 1)
        dropout_keep_avx2(key, step, idx, thresh, keep);
    else
        dropout_keep_scalar(key, step, idx, thresh, keep);
}

void rt_philox_block(uint64_t key, uint64_t step, uint64_t idx, uint64_t *x)
{
    int isa = philox_isa();
    if (isa == 2)
        philox_block_avx512(key, step, idx, x);
    else if (isa == 1)
        philox_block_avx2(key, step, idx, x);
    else
        philox_scalar(key, step, idx, x);
}
#else
#define dropout_keep dropout_keep_scalar
void rt_philox_block(uint64_t key, uint64_t step, uint64_t idx, uint64_t *x)
{
    philox_scalar(key, step, idx, x);
}
#endif

/* u = bits * 2^-53 >= rate  <=>  bits >= ceil(rate * 2^53), exactly */
static uint64_t dropout_threshold(double rate)
{
    return rate <= 0 ? 0 : (uint64_t)ceil(rate * 0x1p53);
}

/* Channel loops worth an AVX2 version, chosen at load time (ifunc). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RT_VEC_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define RT_VEC_CLONES
#endif

void rt_fault(RtCtx *c, int64_t step, double value, int64_t bound)
{
    if (c->fault_step)
        return;
    c->fault_step = (int32_t)step + 1;
    c->fault_value = value;
    c->fault_bound = bound;
}

static double gather_raw(const RtGatherGeom *g, const void *idx, int64_t j)
{
    switch (g->idt) {
    case 0:
        return ((const float *)idx)[j];
    case 1:
        return ((const double *)idx)[j];
    default:
        return ((const int32_t *)idx)[j];
    }
}

int64_t rt_gather_index(const RtGatherGeom *g, const void *idx, int64_t j)
{
    double v = gather_raw(g, idx, j);
    return v >= 0 && v < (double)g->len && v == floor(v) ? (int64_t)v : -1;
}

/* Are all indices good? Records the first bad one. */
static bool gather_check(RtCtx *c, const RtGatherGeom *g, const void *idx)
{
    for (int64_t j = 0; j < g->nidx; j++)
        if (rt_gather_index(g, idx, j) < 0) {
            rt_fault(c, g->step, gather_raw(g, idx, j), g->len);
            return false;
        }
    return true;
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

/* Do the windows cover the image exactly once (stride = window, no
 * padding, no rows or columns left over)? */
static bool pool_tiles(const RtPoolGeom *g)
{
    return g->sh == g->kh && g->sw == g->kw && g->pt == 0 && g->pl == 0 && g->oh * g->kh == g->h &&
           g->ow * g->kw == g->w;
}

#define T float
#define SFX f32
#define BLAS_GEMM cblas_sgemm
#define BLAS_GEMV cblas_sgemv
#define CONV_BLOCKED 1
#include "kernels_tmpl.h"
#undef T
#undef SFX
#undef BLAS_GEMM
#undef BLAS_GEMV
#undef CONV_BLOCKED
#undef CONV_BLOCKED

#define T double
#define SFX f64
#define BLAS_GEMM cblas_dgemm
#define BLAS_GEMV cblas_dgemv
#define CONV_BLOCKED 0
#include "kernels_tmpl.h"
#undef T
#undef SFX
#undef BLAS_GEMM
#undef BLAS_GEMV
#undef CONV_BLOCKED
