/* The counter-based RNG: Philox-4x32-10 (Salmon, Moraes, Dror, Shaw,
 * "Parallel random numbers: as easy as 1, 2, 3", SC 2011) and the uniform
 * and normal draws built on it. Every draw is a pure function of its
 * arguments, so masks and initial weights never depend on evaluation order,
 * thread count or whether training was resumed. */
#include "runtime.h"

#include <math.h>

#include "kernels.h"

static void philox_round(uint32_t c[4], const uint32_t k[2])
{
    uint64_t p0 = (uint64_t)RT_PHILOX_M0 * c[0];
    uint64_t p1 = (uint64_t)RT_PHILOX_M1 * c[2];
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    uint32_t n0 = hi1 ^ c[1] ^ k[0];
    uint32_t n2 = hi0 ^ c[3] ^ k[1];
    c[0] = n0;
    c[1] = lo1;
    c[2] = n2;
    c[3] = lo0;
}

/* Counter words: c0,c1 = low/high half of ctr_lo; c2,c3 = of ctr_hi.
 * Key words: k0,k1 = low/high half of key. */
void rt_philox(uint64_t key, uint64_t ctr_hi, uint64_t ctr_lo, uint32_t out[4])
{
    uint32_t k[2] = {(uint32_t)key, (uint32_t)(key >> 32)};
    uint32_t c[4] = {(uint32_t)ctr_lo, (uint32_t)(ctr_lo >> 32), (uint32_t)ctr_hi,
                     (uint32_t)(ctr_hi >> 32)};
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k[0] += RT_PHILOX_W0;
            k[1] += RT_PHILOX_W1;
        }
        philox_round(c, k);
    }
    for (int i = 0; i < 4; i++)
        out[i] = c[i];
}

/* A 64-bit finaliser (splitmix64's) so that nearby stream ids give
 * unrelated keys. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void draw(uint64_t seed, uint64_t stream, uint64_t step, uint64_t idx, uint32_t out[4])
{
    rt_philox(seed ^ mix64(stream), step, idx, out);
}

static uint64_t bits53(uint32_t lo, uint32_t hi)
{
    return (((uint64_t)hi << 32) | lo) >> 11;
}

double rt_uniform(uint64_t seed, uint64_t stream, uint64_t step, uint64_t idx)
{
    uint32_t w[4];
    draw(seed, stream, step, idx, w);
    return (double)bits53(w[0], w[1]) * 0x1p-53;
}

/* rt_uniform for idx0 .. idx0 + n - 1, RT_PHILOX_LANES counters at a
 * time in vector registers (kernels.c: the same rounds as rt_philox, so
 * the same values). */
void rt_uniform_fill(uint64_t seed, uint64_t stream, uint64_t step, uint64_t idx0, int64_t n, double *out)
{
    uint64_t key = seed ^ mix64(stream), x[RT_PHILOX_LANES];
    for (int64_t b = 0; b < n; b += RT_PHILOX_LANES) {
        rt_philox_block(key, step, idx0 + (uint64_t)b, x);
        for (int l = 0; l < RT_PHILOX_LANES && b + l < n; l++)
            out[b + l] = (double)(x[l] >> 11) * 0x1p-53;
    }
}

/* Box-Muller: u1 in (0,1] (so the log is finite), u2 in [0,1). */
double rt_normal(uint64_t seed, uint64_t stream, uint64_t step, uint64_t idx)
{
    uint32_t w[4];
    draw(seed, stream, step, idx, w);
    double u1 = (double)(bits53(w[0], w[1]) + 1) * 0x1p-53;
    double u2 = (double)bits53(w[2], w[3]) * 0x1p-53;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}
