/* Helpers shared by the unit tests (Check). */
#ifndef MODELC_TESTUTIL_H
#define MODELC_TESTUTIL_H

#include <check.h>

int tu_run(Suite *s);
/* Threads of this process (/proc/self/task), or -1 without procfs. */
int tu_process_threads(void);

#endif
