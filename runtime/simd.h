/* Vector helpers shared by the runtime's micro-kernels (conv_blocked.c,
 * conv_winograd.c, gemm_blocked.c), x86-64 only. Not a public header. */
#ifndef MODELC_RUNTIME_SIMD_H
#define MODELC_RUNTIME_SIMD_H

#if defined(__x86_64__)
#include <immintrin.h>

/* The first n of 8 lanes set: AVX2's masked loads and stores of a
 * partial vector. */
__attribute__((target("avx2,fma"))) static inline __m256i rt_avx2_mask(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
#endif

#endif
