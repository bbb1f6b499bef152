/* Wall-clock timing of compilation stages, printed by --time-passes. */
#ifndef MODELC_TIMER_H
#define MODELC_TIMER_H

#include <stdio.h>

#define TIMER_MAX 128

typedef struct Timer {
    int n;
    const char *name[TIMER_MAX]; /* static strings */
    double ms[TIMER_MAX];
} Timer;

double mc_now_ms(void); /* monotonic clock */
/* Add ms to the entry called name (created on first use). t may be NULL. */
void timer_add(Timer *t, const char *name, double ms);
void timer_print(const Timer *t, FILE *f);

#endif
