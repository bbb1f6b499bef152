/* Memory planning: temporaries with known live ranges (in kernel steps)
 * and sizes share one arena. Greedy first fit, largest first: each
 * temporary goes to the lowest offset that no already placed temporary
 * with an overlapping live range occupies. The arena is sized once per
 * batch size, before the first step, so training does not allocate per
 * step. The backend computes the live ranges (backend/llvm/plan.c) and
 * calls this for every workspace; `modelc llvm --memory-plan` prints the
 * result (be_jit_print_memory_plan). */
#include "plan_memory.h"

#include "ir/base/base.h"

#include <stdlib.h>

typedef struct Order {
    const BeInterval *v;
    int i;
} Order;

static int by_size_desc(const void *a, const void *b)
{
    const Order *x = a, *y = b;
    int64_t sx = x->v[x->i].bytes, sy = y->v[y->i].bytes;
    if (sx != sy)
        return sx > sy ? -1 : 1;
    return x->i - y->i;
}

static bool live_overlap(const BeInterval *a, const BeInterval *b)
{
    return a->first <= b->last && b->first <= a->last;
}

static int64_t round_up(int64_t v, int64_t align)
{
    return align > 1 ? (v + align - 1) / align * align : v;
}

int64_t be_plan_memory(BeInterval *v, int n, int64_t align)
{
    Order *ord = xcalloc((size_t)n + 1, sizeof *ord);
    for (int i = 0; i < n; i++)
        ord[i] = (Order){v, i};
    qsort(ord, (size_t)n, sizeof *ord, by_size_desc);
    int64_t total = 0;
    for (int k = 0; k < n; k++) {
        BeInterval *a = &v[ord[k].i];
        int64_t size = round_up(a->bytes, align), off = 0;
        for (bool moved = true; moved;) {
            moved = false;
            for (int j = 0; j < k; j++) {
                const BeInterval *b = &v[ord[j].i];
                int64_t bsize = round_up(b->bytes, align);
                if (live_overlap(a, b) && off < b->off + bsize && b->off < off + size) {
                    off = b->off + bsize;
                    moved = true;
                }
            }
        }
        a->off = off;
        if (off + size > total)
            total = off + size;
    }
    xfree(ord);
    return total;
}

int64_t be_peak_live(const BeInterval *v, int n, int64_t align)
{
    int steps = 0;
    for (int i = 0; i < n; i++)
        if (v[i].last + 1 > steps)
            steps = v[i].last + 1;
    int64_t peak = 0;
    for (int s = 0; s < steps; s++) {
        int64_t live = 0;
        for (int i = 0; i < n; i++)
            if (v[i].first <= s && s <= v[i].last)
                live += round_up(v[i].bytes, align);
        if (live > peak)
            peak = live;
    }
    return peak;
}
