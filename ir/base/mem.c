/* The project's allocator: malloc wrappers that, inside a MemGuard, record
 * every live block and turn exhaustion into a jump back to the guard (as
 * Lua's luaD_throw does), and the test hook that fails the k-th
 * allocation. Outside a guard, exhaustion is an internal error. */
#include "base.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local MemGuard *g_guard; /* innermost guard of this thread */
static atomic_long g_fail_at;           /* 0: no injected failure */
static atomic_long g_count;             /* allocations counted since mem_fail_at */
static pthread_once_t g_env_once = PTHREAD_ONCE_INIT;

static _Noreturn void out_of_memory(size_t n);

/* ---- the set of live blocks: open addressing, linear probing ---- */

static size_t slot_of(const MemSet *s, const void *p)
{
    uintptr_t h = (uintptr_t)p >> 4;
    return (size_t)(h * 0x9E3779B97F4A7C15ull) & (s->cap - 1);
}

static bool set_grow(MemSet *s)
{
    size_t cap = s->cap ? 2 * s->cap : 256;
    void **v = calloc(cap, sizeof(void *));
    if (!v)
        return false;
    MemSet t = {v, cap, 0};
    for (size_t i = 0; i < s->cap; i++)
        if (s->v[i]) {
            size_t j = slot_of(&t, s->v[i]);
            while (t.v[j])
                j = (j + 1) & (cap - 1);
            t.v[j] = s->v[i];
            t.n++;
        }
    free(s->v);
    *s = t;
    return true;
}

static bool set_add(MemSet *s, void *p)
{
    if (2 * (s->n + 1) > s->cap && !set_grow(s))
        return false;
    size_t i = slot_of(s, p);
    while (s->v[i])
        i = (i + 1) & (s->cap - 1);
    s->v[i] = p;
    s->n++;
    return true;
}

/* Removes p; false when p is not in the set. */
static bool set_remove(MemSet *s, const void *p)
{
    if (!s->cap)
        return false;
    size_t i = slot_of(s, p);
    while (s->v[i] && s->v[i] != p)
        i = (i + 1) & (s->cap - 1);
    if (!s->v[i])
        return false;
    s->v[i] = NULL;
    s->n--;
    /* shift back the entries of the probe run that follows */
    for (size_t j = (i + 1) & (s->cap - 1); s->v[j]; j = (j + 1) & (s->cap - 1)) {
        size_t home = slot_of(s, s->v[j]);
        bool movable = i <= j ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            s->v[i] = s->v[j];
            s->v[j] = NULL;
            i = j;
        }
    }
    return true;
}

void mem_set_free_all(MemSet *s)
{
    for (size_t i = 0; i < s->cap; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* ---- guards ---- */

static void read_env(void)
{
    const char *e = getenv("MODELC_FAIL_ALLOC");
    if (e && *e)
        mem_fail_at(strtol(e, NULL, 10));
}

void mem_guard_push(MemGuard *g, const char *what)
{
    pthread_once(&g_env_once, read_env);
    memset(&g->live, 0, sizeof g->live);
    g->up = g_guard;
    g->what = what;
    g->bytes = 0;
    g->failed = false;
    g->collecting = false;
    g->cleanups = NULL;
    g_guard = g;
}

void mem_cleanup_push(MemCleanup *c, void (*fn)(void *), void *arg)
{
    c->fn = fn;
    c->arg = arg;
    c->next = NULL;
    if (g_guard) {
        c->next = g_guard->cleanups;
        g_guard->cleanups = c;
    }
}

void mem_cleanup_pop(MemCleanup *c)
{
    for (MemGuard *g = g_guard; g; g = g->up)
        for (MemCleanup **p = &g->cleanups; *p; p = &(*p)->next)
            if (*p == c) {
                *p = c->next;
                return;
            }
}

bool mem_guard_pop(MemGuard *g)
{
    if (g_guard != g)
        ICE("memory guards popped out of order");
    g_guard = g->up;
    if (g->failed)
        return false;
    MemGuard *up = g->up;
    for (size_t i = 0; up && i < g->live.cap; i++)
        if (g->live.v[i] && !set_add(&up->live, g->live.v[i]))
            ICE("out of memory tracking allocations");
    free(g->live.v);
    memset(&g->live, 0, sizeof g->live);
    return true;
}

void mem_collect_begin(MemGuard *g, MemSet *orphans)
{
    mem_guard_push(g, "releasing memory");
    g->collecting = true;
    g->live = *orphans;
    memset(orphans, 0, sizeof *orphans);
}

void mem_collect_end(MemGuard *g)
{
    if (g_guard != g)
        ICE("memory guards popped out of order");
    g_guard = g->up;
    mem_set_free_all(&g->live);
}

void mem_collect_keep(MemGuard *g, MemSet *orphans)
{
    if (g_guard != g)
        ICE("memory guards popped out of order");
    g_guard = g->up;
    *orphans = g->live;
    memset(&g->live, 0, sizeof g->live);
}

static pthread_mutex_t g_adopt = PTHREAD_MUTEX_INITIALIZER; /* owners' sets, in mem_run_caught */

bool mem_run_caught(void (*fn)(void *arg), void *arg, MemGuard *owner, size_t *bytes)
{
    MemGuard g;
    if (MEM_TRY(&g, owner ? owner->what : "running a task"))
        fn(arg);
    if (g_guard != &g)
        ICE("memory guards popped out of order");
    g_guard = g.up;
    if (g.failed) {
        mem_set_free_all(&g.live);
        *bytes = g.bytes;
        return false;
    }
    pthread_mutex_lock(&g_adopt);
    for (size_t i = 0; owner && i < g.live.cap; i++)
        if (g.live.v[i] && !set_add(&owner->live, g.live.v[i]))
            ICE("out of memory tracking allocations");
    pthread_mutex_unlock(&g_adopt);
    free(g.live.v);
    return true;
}

void mem_fclose(void *f)
{
    fclose(f);
}

static void stream_drop(void *p)
{
    MemStream *s = p;
    fclose(s->f);
    free(s->buf);
}

FILE *mem_stream_open(MemStream *s)
{
    s->buf = NULL;
    s->len = 0;
    s->f = open_memstream(&s->buf, &s->len);
    if (s->f)
        mem_cleanup_push(&s->on_jump, stream_drop, s);
    return s->f;
}

char *mem_stream_close(MemStream *s)
{
    if (!s->f)
        return NULL;
    mem_cleanup_pop(&s->on_jump);
    fclose(s->f);
    s->f = NULL;
    return s->buf;
}

MemGuard *mem_guard_suspend(void)
{
    MemGuard *g = g_guard;
    g_guard = NULL;
    return g;
}

MemGuard *mem_guard_current(void)
{
    return g_guard;
}

void mem_guard_resume(MemGuard *g)
{
    g_guard = g;
}

void mem_raise(size_t n)
{
    out_of_memory(n);
}

void mem_error(const MemGuard *g, char *buf, size_t n)
{
    snprintf(buf, n, "out of memory: cannot allocate %zu bytes while %s", g->bytes,
             g->what ? g->what : "running");
}

/* ---- the test hook ---- */

void mem_fail_at(long k)
{
    atomic_store(&g_count, 0);
    atomic_store(&g_fail_at, k > 0 ? k : 0);
}

long mem_alloc_count(void)
{
    return atomic_load(&g_count);
}

/* Whether this allocation is the one the hook fails. Only allocations
 * under a guard count, so the count does not depend on other threads. */
static bool injected(void)
{
    if (!g_guard || g_guard->collecting)
        return false;
    long c = atomic_fetch_add(&g_count, 1) + 1;
    long k = atomic_load(&g_fail_at);
    return k > 0 && c == k;
}

static _Noreturn void out_of_memory(size_t n)
{
    MemGuard *g = g_guard;
    if (!g || g->collecting)
        ICE("out of memory allocating %zu bytes", n);
    g->failed = true;
    g->bytes = n;
    while (g->cleanups) {
        MemCleanup *c = g->cleanups;
        g->cleanups = c->next;
        c->fn(c->arg);
    }
    longjmp(g->jb, 1);
}

/* Record a new block in the innermost guard; p == NULL is a failure. */
static void *track(void *p, size_t n, bool jump)
{
    if (!p) {
        if (jump)
            out_of_memory(n);
        return NULL;
    }
    if (g_guard && !set_add(&g_guard->live, p)) {
        free(p);
        if (jump)
            out_of_memory(n);
        return NULL;
    }
    return p;
}

static void untrack(void *p)
{
    for (MemGuard *g = g_guard; g && p; g = g->up)
        if (set_remove(&g->live, p))
            return;
}

void *xmalloc(size_t n)
{
    return track(injected() ? NULL : malloc(n ? n : 1), n, true);
}

void *xcalloc(size_t n, size_t sz)
{
    size_t bytes;
    if (__builtin_mul_overflow(n, sz, &bytes))
        bytes = SIZE_MAX;
    return track(injected() ? NULL : calloc(n ? n : 1, sz ? sz : 1), bytes, true);
}

void *xrealloc(void *p, size_t n)
{
    if (!p)
        return xmalloc(n);
    if (injected())
        out_of_memory(n);
    /* the block keeps its owner: tracked by the guard it was tracked by */
    MemGuard *owner = g_guard;
    while (owner && !set_remove(&owner->live, p))
        owner = owner->up;
    void *q = realloc(p, n ? n : 1);
    /* re-adding never grows the set: an entry was just removed */
    if (owner && !set_add(&owner->live, q ? q : p))
        ICE("out of memory tracking allocations");
    if (!q)
        out_of_memory(n);
    return q;
}

char *xstrdup(const char *s)
{
    size_t n = strlen(s);
    char *p = xmalloc(n + 1);
    memcpy(p, s, n + 1);
    return p;
}

void *mem_aligned_alloc(size_t align, size_t n, bool jump)
{
    size_t bytes = (n + align - 1) / align * align;
    return track(injected() ? NULL : aligned_alloc(align, bytes ? bytes : align), n, jump);
}

void xfree(void *p)
{
    untrack(p);
    free(p);
}
