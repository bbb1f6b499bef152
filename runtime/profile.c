/* Per-kernel timing for profiling entries (kernels.h, RtProf): a
 * monotonic clock read between kernels, accumulated per kernel slot. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ir/base/base.h"
#include "kernels.h"

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

RtProf *rt_prof_new(int n)
{
    RtProf *p = xcalloc(1, sizeof *p);
    p->n = n;
    p->ns = xcalloc((size_t)n + 1, sizeof(int64_t));
    p->calls = xcalloc((size_t)n + 1, sizeof(int64_t));
    return p;
}

void rt_prof_free(RtProf *p)
{
    if (!p)
        return;
    xfree(p->ns);
    xfree(p->calls);
    xfree(p);
}

void rt_prof_reset(RtProf *p)
{
    memset(p->ns, 0, (size_t)p->n * sizeof(int64_t));
    memset(p->calls, 0, (size_t)p->n * sizeof(int64_t));
    p->runs = 0;
}

void rt_prof_begin(RtCtx *c)
{
    if (!c->prof)
        return;
    c->prof->runs++;
    c->prof->last = now_ns();
}

void rt_step_done(const RtCtx *c, int64_t step)
{
    if (c->ready)
        c->ready->done(c->ready->env, step);
}

void rt_prof_tick(RtCtx *c, int32_t i)
{
    RtProf *p = c->prof;
    if (!p || i < 0 || i >= p->n)
        return;
    int64_t t = now_ns();
    p->ns[i] += t - p->last;
    p->calls[i]++;
    p->last = t;
}
