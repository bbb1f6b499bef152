/* Phase timing for --time-passes (see timer.h). */
#include "timer.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base.h"

void timer_init(Timer *t)
{
    memset(t, 0, sizeof *t);
}

void timer_free(Timer *t)
{
    for (int i = 0; i < t->n; i++)
        free(t->v[i].name);
    free(t->v);
    memset(t, 0, sizeof *t);
}

double timer_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void timer_add(Timer *t, const char *name, double ms)
{
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->v[i].name, name) == 0) {
            t->v[i].ms += ms;
            return;
        }
    TimerEntry e = {xstrdup(name), ms};
    VEC_PUSH(t->v, t->n, t->cap, e);
}

double timer_get(const Timer *t, const char *name)
{
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->v[i].name, name) == 0)
            return t->v[i].ms;
    return 0;
}

double timer_total(const Timer *t)
{
    double s = 0;
    for (int i = 0; i < t->n; i++)
        s += t->v[i].ms;
    return s;
}

void timer_print(const Timer *t, FILE *f)
{
    double total = timer_total(t);
    fprintf(f, "===- modelc time report -===\n");
    fprintf(f, "%10s %7s  %s\n", "ms", "%", "phase");
    for (int i = 0; i < t->n; i++)
        fprintf(f, "%10.3f %6.1f%%  %s\n", t->v[i].ms, total > 0 ? 100.0 * t->v[i].ms / total : 0.0,
                t->v[i].name);
    fprintf(f, "%10.3f %6.1f%%  total\n", total, 100.0);
}
