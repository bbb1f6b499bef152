/* Memory planning (backend/llvm/plan_memory.c): temporaries live at the same
 * time never share bytes, dead ones are reused, the arena covers every
 * placement and is never below the live lower bound. */
#include <stdlib.h>

#include <stdbool.h>
#include <stdlib.h>

#include "backend/llvm/plan_memory.h"
#include "testutil.h"

static int64_t up(int64_t v, int64_t a)
{
    return (v + a - 1) / a * a;
}

/* No two temporaries with overlapping live ranges overlap in memory;
 * every placement is aligned and inside the arena. */
static void check_plan(const BeInterval *v, int n, int64_t align, int64_t arena)
{
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(v[i].off % align, 0);
        ck_assert_int_le(v[i].off + up(v[i].bytes, align), arena);
        for (int j = i + 1; j < n; j++) {
            bool live = v[i].first <= v[j].last && v[j].first <= v[i].last;
            bool mem = v[i].off < v[j].off + up(v[j].bytes, align) &&
                       v[j].off < v[i].off + up(v[i].bytes, align) && v[i].bytes && v[j].bytes;
            ck_assert_msg(!(live && mem), "temporaries %d and %d overlap", i, j);
        }
    }
    ck_assert_int_ge(arena, be_peak_live(v, n, align));
}

START_TEST(reuse_after_death)
{
    /* a [0,1] and b [2,3] never live together: b reuses a's bytes;
     * c [1,2] overlaps both and goes after them. */
    BeInterval v[3] = {{0, 1, 100, -1}, {2, 3, 100, -1}, {1, 2, 50, -1}};
    int64_t arena = be_plan_memory(v, 3, 64);
    ck_assert_int_eq(v[0].off, 0);
    ck_assert_int_eq(v[1].off, 0);
    ck_assert_int_eq(v[2].off, 128);
    ck_assert_int_eq(arena, 192);
    ck_assert_int_eq(be_peak_live(v, 3, 64), 192);
    check_plan(v, 3, 64, arena);
}
END_TEST

START_TEST(all_live_is_the_sum)
{
    BeInterval v[4] = {{0, 5, 10, 0}, {0, 5, 70, 0}, {1, 5, 64, 0}, {2, 3, 1, 0}};
    int64_t arena = be_plan_memory(v, 4, 64);
    ck_assert_int_eq(arena, 64 + 128 + 64 + 64);
    check_plan(v, 4, 64, arena);
    ck_assert_int_eq(be_plan_memory(v, 0, 64), 0);
}
END_TEST

START_TEST(random_intervals)
{
    srand(12345);
    for (int round = 0; round < 300; round++) {
        int n = 1 + rand() % 40;
        BeInterval v[40];
        int64_t sum = 0;
        for (int i = 0; i < n; i++) {
            int a = rand() % 30, b = a + rand() % 10;
            v[i] = (BeInterval){a, b, (int64_t)(rand() % 5000), 0};
            sum += up(v[i].bytes, 16);
        }
        int64_t arena = be_plan_memory(v, n, 16);
        check_plan(v, n, 16, arena);
        ck_assert_int_le(arena, sum);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("plan_memory");
    TCase *t = tcase_create("plan");
    tcase_add_test(t, reuse_after_death);
    tcase_add_test(t, all_live_is_the_sum);
    tcase_add_test(t, random_intervals);
    suite_add_tcase(s, t);
    return tu_run(s);
}
