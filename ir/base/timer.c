/* Stage timing for --time-passes. */
#include "timer.h"

#include <string.h>
#include <time.h>

double mc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void timer_add(Timer *t, const char *name, double ms)
{
    if (!t)
        return;
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->name[i], name) == 0) {
            t->ms[i] += ms;
            return;
        }
    if (t->n == TIMER_MAX)
        return;
    t->name[t->n] = name;
    t->ms[t->n++] = ms;
}

void timer_print(const Timer *t, FILE *f)
{
    double total = 0;
    for (int i = 0; i < t->n; i++)
        total += t->ms[i];
    fprintf(f, "===-- modelc compile time --===\n");
    for (int i = 0; i < t->n; i++)
        fprintf(f, "  %9.3f ms  %5.1f%%  %s\n", t->ms[i], total > 0 ? 100 * t->ms[i] / total : 0,
                t->name[i]);
    fprintf(f, "  %9.3f ms  100.0%%  total\n", total);
}
