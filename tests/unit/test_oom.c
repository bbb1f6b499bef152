/* Running out of memory: a whole training run over the public API (compile
 * with per-kernel profiling and stage timings, load and split a CSV file,
 * initialise, train under the training watch with its NaN guard and
 * records, evaluate, predict, the reports, save)
 * with the k-th allocation failing, for k = 1, 2, 3, ... (every k up to
 * DENSE, then in steps of 3%; every k with MODELC_OOM_DENSE=1 in the
 * environment) past the run's last allocation. Every run either
 * completes or fails with an "out of memory" message, and never crashes;
 * the sanitizer build checks that nothing leaks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/base/base.h"
#include "modelc.h"
#include "modelc_inspect.h"
#include "runtime/kernels.h"
#include "testutil.h"

#define MODEL "tests/data/oom/mlp.mdl"
#define DATA "tests/data/oom/tiny.csv"
#define DENSE 800

static char g_msg[4096]; /* the message of the run's failure */

static bool failed(const char *msg)
{
    snprintf(g_msg, sizeof g_msg, "%s", msg && *msg ? msg : "(no message)");
    return false;
}

static bool train_epochs(mc_model *m, mc_watch *w, mc_data *tr, mc_data *val)
{
    int64_t n = mc_data_count(tr), perm[64];
    for (int e = 0; e < 2; e++) {
        mc_shuffle(m, e, perm, n);
        double loss = 0;
        for (int64_t s = 0; s < n; s += 4) {
            const mc_tensor *v;
            int nv;
            if (mc_data_batch(tr, perm, s, 4, &v, &nv) < 0)
                return failed(mc_data_error(tr));
            if (s + 4 >= n) /* mc_watch_params_finite follows the epoch */
                mc_watch_before_last_step(w);
            else
                mc_watch_before_step(w);
            if (!mc_train_step(m, v, nv, 1e-2, &loss))
                return failed(mc_last_error(m));
            if (!mc_watch_after_step(w, e, s / 4, 1e-2))
                return failed(mc_last_error(m));
            if (mc_watch_record_due(w, mc_step(m)) && !mc_watch_record(w, e + 1, mc_step(m), e + 0.5, false))
                return failed(mc_last_error(m));
        }
        mc_watch_metric(w, e + 1, "loss", loss);
        if (!mc_watch_record(w, e + 1, mc_step(m), e + 1, true) || !mc_watch_params_finite(w, e + 1, 1e-2))
            return failed(mc_last_error(m));
    }
    const mc_tensor *v, *outs;
    int nv, nouts;
    double loss, met[MC_MAX_METRICS];
    if (mc_data_batch(val, NULL, 0, mc_data_count(val), &v, &nv) < 0)
        return failed(mc_data_error(val));
    if (!mc_eval_batch(m, v, nv, &loss, met, MC_MAX_METRICS) || !mc_predict(m, v, nv, &outs, &nouts))
        return failed(mc_last_error(m));
    if (!mc_watch_finish(w))
        return failed(mc_last_error(m));
    mc_profile_report(m);
    mc_time_report(m);
    return true;
}

static int g_threads = 1; /* the runs' thread pools: 1 = none */

/* One training run; false with g_msg on failure. */
static bool run(mc_backend backend, const char *save_to)
{
    mc_options o;
    mc_options_default(&o);
    o.backend = backend;
    o.threads = g_threads;
    o.telemetry = true;
    o.profile = true;
    o.time_passes = true;
    mc_model *m = mc_compile(MODEL, &o);
    if (!m)
        return failed(mc_last_error(NULL));
    mc_data_options dopt;
    mc_data_options_default(&dopt);
    const char *src[] = {DATA};
    dopt.sources = src;
    dopt.nsources = 1;
    char *err = NULL;
    mc_data *tr = mc_data_load(MODEL, &dopt, &err), *val = NULL;
    bool ok = tr != NULL || failed(err);
    free(err);
    err = NULL;
    if (ok && !(val = mc_data_split(tr, 0.25, &err)))
        ok = failed(err);
    free(err);
    if (ok && !mc_init_params(m, 3))
        ok = failed(mc_last_error(m));
    mc_watch *w = NULL;
    FILE *sink = fopen("/dev/null", "w");
    ck_assert(sink != NULL);
    if (ok) {
        mc_watch_options wo;
        mc_watch_options_default(&wo);
        wo.every = 2;
        wo.check_numerics = true;
        wo.batch = 4;
        if (!(w = mc_watch_new(m, &wo, tr, sink, sink)))
            ok = failed(mc_last_error(m));
    }
    ok = ok && train_epochs(m, w, tr, val);
    if (ok && !mc_save(m, save_to))
        ok = failed(mc_last_error(m));
    mc_watch_free(w);
    fclose(sink);
    mc_data_free(val);
    mc_data_free(tr);
    mc_free(m);
    return ok;
}

/* Every k up to DENSE and over the last allocations, steps of 3% between. */
static long next_k(long k, long total, bool dense)
{
    if (dense || k < DENSE || k >= total - 2)
        return k + 1;
    long next = k + 1 + k / 32;
    return next < total - 2 ? next : total - 2;
}

static void walk(mc_backend backend)
{
    char path[] = "/tmp/modelc_oom_XXXXXX";
    int fd = mkstemp(path);
    ck_assert(fd >= 0);
    mem_fail_at(0);
    ck_assert_msg(run(backend, path), "%s", g_msg);
    long total = mem_alloc_count();
    ck_assert(total > 100);
    int runs = 0, failures = 0;
    bool dense = getenv("MODELC_OOM_DENSE") != NULL;
    for (long k = 1; k <= total + 1; k = next_k(k, total, dense)) {
        if (getenv("OOM_TRACE"))
            fprintf(stderr, "k = %ld\n", k);
        mem_fail_at(k);
        bool ok = run(backend, path);
        mem_fail_at(0);
        runs++;
        if (!ok) {
            failures++;
            ck_assert_msg(strstr(g_msg, "out of memory") != NULL, "k = %ld: %s", k, g_msg);
        }
        /* no thread pool outlives its run, whichever allocation failed
         * (a module lost to a caught failure kept its workers, reading
         * freed memory) */
        int nt = tu_process_threads();
        ck_assert_msg(nt < 0 || nt == 1, "k = %ld: %d threads after the run", k, nt);
    }
    ck_assert(failures > 0 && failures < runs); /* the last k is past the run's allocations */
    printf("%s: %ld allocations, %d runs, %d failed cleanly\n",
           backend == MC_BACKEND_JIT ? "jit" : "interp", total, runs, failures);
    remove(path);
}

START_TEST(oom_walk_interp)
{
    walk(MC_BACKEND_INTERP);
}
END_TEST

START_TEST(oom_walk_jit)
{
    walk(MC_BACKEND_JIT);
}
END_TEST

START_TEST(oom_walk_jit_threads)
{
    g_threads = 2;
    walk(MC_BACKEND_JIT);
    g_threads = 1;
}
END_TEST

/* Tasks of the thread pool that allocate: under a caller's guard, the
 * k-th allocation failing in any task (on either thread) comes back to
 * the caller's MEM_TRY once the job is over, with the blocks of the
 * failed task freed and those of the others still the caller's. */
typedef struct Blocks {
    void *p[64][3];
} Blocks;

static void alloc_task(void *arg, int64_t t)
{
    Blocks *b = arg;
    for (int i = 0; i < 3; i++)
        b->p[t][i] = xmalloc(16 + (size_t)t);
}

/* One job with the k-th allocation failing; true when it completed. */
static bool pool_job(RtPool *pool, long k, Blocks *b, MemGuard *g)
{
    memset(b, 0, sizeof *b);
    mem_fail_at(k);
    if (MEM_TRY(g, "running the pool's tasks"))
        rt_pool_run(pool, 64, alloc_task, b);
    mem_fail_at(0);
    return mem_guard_pop(g);
}

START_TEST(oom_pool_tasks)
{
    RtPool *pool = rt_pool_new(2);
    static Blocks b;
    int caught = 0;
    for (long k = 1; k <= 64 * 3 + 1; k++) {
        MemGuard g;
        if (pool_job(pool, k, &b, &g)) {
            ck_assert_int_eq(k, 64 * 3 + 1); /* only past the last allocation */
            for (int t = 0; t < 64; t++)
                for (int i = 0; i < 3; i++)
                    xfree(b.p[t][i]);
            continue;
        }
        caught++;
        ck_assert(g.bytes >= 16 && g.bytes < 16 + 64);
        char msg[200];
        mem_error(&g, msg, sizeof msg);
        ck_assert_msg(strstr(msg, "while running the pool's tasks") != NULL, "%s", msg);
        mem_set_free_all(&g.live); /* the blocks of the tasks that completed */
    }
    ck_assert_int_eq(caught, 64 * 3);
    rt_pool_free(pool);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("oom");
    TCase *tc = tcase_create("walk");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, oom_walk_interp);
    tcase_add_test(tc, oom_walk_jit);
    tcase_add_test(tc, oom_walk_jit_threads);
    tcase_add_test(tc, oom_pool_tasks);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
