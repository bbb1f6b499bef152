/* What every backend shares: the options of one run of a compiled
 * function. The interpreter (interp/) and the LLVM JIT (llvm/) both take
 * them. */
#ifndef MODELC_BACKEND_H
#define MODELC_BACKEND_H

#include <stdint.h>

typedef struct RunOpts {
    uint64_t seed;  /* RNG seed for dropout masks */
    uint64_t step;  /* training step (counter for the RNG) */
} RunOpts;

#endif
