/* One arena for a function's temporaries (the LLVM backend's workspace
 * plan, printed by `modelc llvm --memory-plan`). */
#ifndef MODELC_PLAN_MEMORY_H
#define MODELC_PLAN_MEMORY_H

#include <stdint.h>

/* be_plan_memory: one arena for temporaries with live ranges [first,
 * last] (inclusive, in steps). Sets every off (aligned to align bytes)
 * so that temporaries live at the same time never overlap; returns the
 * arena size. be_peak_live is the lower bound: the largest sum of the
 * (aligned) sizes live at one step. */
typedef struct BeInterval {
    int first, last;
    int64_t bytes;
    int64_t off; /* set by be_plan_memory */
} BeInterval;
int64_t be_plan_memory(BeInterval *v, int n, int64_t align);
int64_t be_peak_live(const BeInterval *v, int n, int64_t align);

#endif
