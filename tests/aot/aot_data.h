/* Inputs for the AOT tests, the same for the compiled object and the
 * JIT: element i of a batch drawn from seed is a fixed function of
 * (seed, i); floats lie in [0, 1), integers (labels) in [0, 10). */
#ifndef AOT_DATA_H
#define AOT_DATA_H

#include <stdint.h>

static inline uint32_t aot_hash(uint64_t seed, uint64_t i)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + i * 0xBF58476D1CE4E5B9ull + 1;
    x ^= x >> 31;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 29;
    return (uint32_t)(x >> 32);
}

/* dtype 0 f32, 1 f64, 2 i32 */
static inline void aot_fill(void *data, int dtype, int64_t count, uint64_t seed)
{
    for (int64_t i = 0; i < count; i++) {
        uint32_t h = aot_hash(seed, (uint64_t)i);
        if (dtype == 2)
            ((int32_t *)data)[i] = (int32_t)(h % 10);
        else if (dtype == 1)
            ((double *)data)[i] = (double)(h >> 8) / 16777216.0;
        else
            ((float *)data)[i] = (float)(h >> 8) / 16777216.0f;
    }
}

#endif
