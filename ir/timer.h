/* Wall-clock timing of compilation phases: a list of named durations that
 * any layer can append to and the driver prints for --time-passes. */
#ifndef MODELC_TIMER_H
#define MODELC_TIMER_H

#include <stdio.h>

typedef struct TimerEntry {
    char *name; /* owned */
    double ms;
} TimerEntry;

typedef struct Timer {
    TimerEntry *v;
    int n, cap;
} Timer;

void timer_init(Timer *t);
void timer_free(Timer *t);
/* Monotonic clock in milliseconds. */
double timer_now_ms(void);
/* Append one phase; entries with the same name accumulate. */
void timer_add(Timer *t, const char *name, double ms);
double timer_get(const Timer *t, const char *name); /* 0 if absent */
double timer_total(const Timer *t);
/* A table of phases in insertion order with percentages and the total. */
void timer_print(const Timer *t, FILE *f);

#endif
