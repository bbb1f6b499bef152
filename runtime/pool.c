/* A small persistent thread pool for the runtime kernels and the
 * generated row-parallel kernels (kernels.h, RtPool): the calling thread
 * and nthreads-1 workers take task indices from one counter. Which thread
 * runs a task never changes what the task computes, so results do not
 * depend on the thread count. Workers sleep on a condition variable
 * between jobs, after spinning for a while (RT_POOL_SPIN_NS) so that the
 * next kernel of a step, usually microseconds away, starts without a
 * wake-up; the caller spins the same way for the job's end. A job started
 * while another runs (from inside a task, or from a second caller) runs
 * serially on its caller. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

#include "ir/base/base.h"
#include "kernels.h"

/* How long a worker waits for the next job, and the caller for the
 * workers, before sleeping (MODELC_POOL_SPIN_US overrides; 0 = never
 * spin). */
#define RT_POOL_SPIN_NS 100000

struct RtPool {
    int nthreads; /* including the caller */
    pthread_t *workers;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    atomic_ullong gen;  /* job generation: written under mu, read by spinning workers without it */
    atomic_int busy;    /* workers still in the current job */
    int sleepers;       /* workers asleep on wake, under mu */
    bool caller_asleep; /* the caller asleep on done, under mu */
    atomic_bool quit;
    int64_t spin_ns;
    atomic_bool active; /* a job is running: nested calls run serially */
    /* the current job */
    RtTaskFn fn;
    void *arg;
    int64_t ntasks;
    atomic_llong next;
};

static void run_tasks(RtPool *p)
{
    for (;;) {
        int64_t t = atomic_fetch_add(&p->next, 1);
        if (t >= p->ntasks)
            return;
        p->fn(p->arg, t);
    }
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Spin until done(p, arg) or spin_ns have passed; true when done. */
static bool spin_until(const RtPool *p, bool (*done)(const RtPool *, uint64_t), uint64_t arg)
{
    if (p->spin_ns <= 0)
        return done(p, arg);
    int64_t end = 0;
    for (unsigned i = 0;; i++) {
        if (done(p, arg))
            return true;
        if ((i & 63) == 0) {
            int64_t t = now_ns();
            if (!end)
                end = t + p->spin_ns;
            else if (t >= end)
                return false;
        }
        CPU_RELAX();
    }
}

static bool new_job(const RtPool *p, uint64_t seen)
{
    return atomic_load_explicit(&p->gen, memory_order_acquire) != seen ||
           atomic_load_explicit(&p->quit, memory_order_relaxed);
}

static bool job_over(const RtPool *p, uint64_t unused)
{
    (void)unused;
    return atomic_load_explicit(&p->busy, memory_order_acquire) == 0;
}

static void *worker(void *arg)
{
    RtPool *p = arg;
    uint64_t seen = 0;
    for (;;) {
        if (!spin_until(p, new_job, seen)) {
            pthread_mutex_lock(&p->mu);
            p->sleepers++;
            while (!new_job(p, seen))
                pthread_cond_wait(&p->wake, &p->mu);
            p->sleepers--;
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->quit))
            break;
        seen = atomic_load_explicit(&p->gen, memory_order_acquire);
        run_tasks(p);
        if (atomic_fetch_sub_explicit(&p->busy, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            if (p->caller_asleep)
                pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

/* The pool's memory is plain calloc, outside any memory guard: a guard
 * that catches a failure frees the blocks allocated under it, and a pool
 * whose owner was lost that way still has live workers reading it. Its
 * owner frees it with rt_pool_free (which stops the workers first).
 * NULL when even that fails: the caller then runs its jobs serially. */
RtPool *rt_pool_new(int nthreads)
{
    RtPool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->nthreads = nthreads < 1 ? 1 : nthreads;
    p->spin_ns = RT_POOL_SPIN_NS;
    const char *spin = getenv("MODELC_POOL_SPIN_US");
    if (spin && *spin)
        p->spin_ns = (int64_t)(atof(spin) * 1000);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    p->workers = calloc((size_t)p->nthreads, sizeof(pthread_t));
    if (!p->workers) {
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->wake);
        pthread_cond_destroy(&p->done);
        xfree(p);
        return NULL;
    }
    for (int i = 1; i < p->nthreads; i++)
        if (pthread_create(&p->workers[i - 1], NULL, worker, p) != 0) {
            p->nthreads = i; /* run with the threads that started */
            break;
        }
    return p;
}

void rt_pool_free(RtPool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->quit, true);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->nthreads; i++)
        pthread_join(p->workers[i - 1], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    xfree(p->workers);
    xfree(p);
}

int rt_pool_threads(const RtPool *p)
{
    return p ? p->nthreads : 1;
}

static void pool_run(RtPool *p, int64_t ntasks, RtTaskFn fn, void *arg);

/* Running out of memory in a task. Tasks share a job with other threads:
 * a jump out of one would leave the others waiting. So when the caller
 * runs under a MemGuard, every task runs under a guard of its own
 * (mem_run_caught); a task that runs out frees its blocks, the tasks not
 * yet started are skipped, and once the job is over the failure is raised
 * on the caller's guard. */
typedef struct Caught {
    RtTaskFn fn;
    void *arg;
    MemGuard *owner; /* the caller's guard, suspended */
    atomic_bool failed;
    _Atomic size_t bytes;
} Caught;

typedef struct CaughtTask {
    Caught *job;
    int64_t t;
} CaughtTask;

static void caught_body(void *arg)
{
    const CaughtTask *c = arg;
    c->job->fn(c->job->arg, c->t);
}

static void caught_task(void *arg, int64_t t)
{
    Caught *j = arg;
    if (atomic_load(&j->failed))
        return;
    CaughtTask c = {j, t};
    size_t bytes = 0;
    if (!mem_run_caught(caught_body, &c, j->owner, &bytes)) {
        atomic_store(&j->bytes, bytes);
        atomic_store(&j->failed, true);
    }
}

void rt_pool_run(RtPool *p, int64_t ntasks, RtTaskFn fn, void *arg)
{
    MemGuard *guard = mem_guard_suspend();
    if (!guard) {
        pool_run(p, ntasks, fn, arg);
        return;
    }
    Caught j = {.fn = fn, .arg = arg, .owner = guard};
    atomic_init(&j.failed, false);
    atomic_init(&j.bytes, 0);
    pool_run(p, ntasks, caught_task, &j);
    mem_guard_resume(guard);
    if (atomic_load(&j.failed))
        mem_raise(atomic_load(&j.bytes));
}

static void pool_run(RtPool *p, int64_t ntasks, RtTaskFn fn, void *arg)
{
    if (ntasks <= 0)
        return;
    if (!p || p->nthreads < 2 || ntasks == 1 || atomic_exchange(&p->active, true)) {
        for (int64_t t = 0; t < ntasks; t++)
            fn(arg, t);
        return;
    }
    /* the job, then its generation (release: a worker that sees the
     * generation sees the job); sleeping workers are woken under mu,
     * which they hold from counting themselves to waiting */
    p->fn = fn;
    p->arg = arg;
    p->ntasks = ntasks;
    atomic_store(&p->next, 0);
    atomic_store(&p->busy, p->nthreads - 1);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    if (p->sleepers)
        pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    run_tasks(p);
    if (!spin_until(p, job_over, 0)) {
        pthread_mutex_lock(&p->mu);
        p->caller_asleep = true;
        while (!job_over(p, 0))
            pthread_cond_wait(&p->done, &p->mu);
        p->caller_asleep = false;
        pthread_mutex_unlock(&p->mu);
    }
    atomic_store(&p->active, false);
}

void rt_parallel(const RtCtx *c, int64_t ntasks, RtTaskFn fn, void *arg)
{
    rt_pool_run(c ? c->pool : NULL, ntasks, fn, arg);
}

typedef struct Rows {
    RtRowsFn fn;
    void *env;
    int64_t n, chunk;
} Rows;

static void rows_task(void *arg, int64_t t)
{
    const Rows *r = arg;
    int64_t lo = t * r->chunk, hi = lo + r->chunk < r->n ? lo + r->chunk : r->n;
    r->fn(r->env, lo, hi);
}

void rt_parallel_rows(const RtCtx *c, int64_t n, int64_t chunk, RtRowsFn fn, void *env)
{
    if (chunk < 1)
        chunk = 1;
    int64_t ntasks = (n + chunk - 1) / chunk;
    if (ntasks <= 1 || !c || !c->pool) {
        if (n > 0)
            fn(env, 0, n);
        return;
    }
    Rows r = {fn, env, n, chunk};
    rt_parallel(c, ntasks, rows_task, &r);
}

void rt_parallel_parts(const RtCtx *c, int64_t n, int64_t chunk, RtRowsFn fn, void *env)
{
    if (chunk < 1)
        chunk = 1;
    Rows r = {fn, env, n, chunk};
    rt_parallel(c, (n + chunk - 1) / chunk, rows_task, &r);
}
