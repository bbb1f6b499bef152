/* Base utilities shared by every layer: arenas, source locations,
 * diagnostics, growable arrays and the internal-compiler-error macro. */
#ifndef MODELC_BASE_H
#define MODELC_BASE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- internal errors (bugs, never user errors) ---- */
void mc_ice(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));
#define ICE(...) mc_ice(__FILE__, __LINE__, __VA_ARGS__)
#define MC_ASSERT(c) ((c) ? (void)0 : ICE("assertion failed: %s", #c))

/* ---- allocation (mem.c) ----
 * malloc wrappers. Inside a MemGuard, every block they return is recorded
 * in the guard until freed (xfree) or the guard ends, and exhaustion jumps
 * back to the guard's MEM_TRY; outside any guard it is an internal error.
 * Memory of the library is freed with xfree, never free(). */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t sz);
void *xrealloc(void *p, size_t n); /* the new block keeps the old one's guard */
char *xstrdup(const char *s);
void xfree(void *p);                /* any malloc'd pointer, tracked or not */
/* aligned_alloc, counted and tracked as the others, freed with xfree; on
 * exhaustion it jumps as they do, or returns NULL when !jump. */
void *mem_aligned_alloc(size_t align, size_t n, bool jump);

/* The blocks a guard recorded (open addressing). */
typedef struct MemSet {
    void **v;
    size_t cap, n;
} MemSet;

/* A recovery point for running out of memory: an API call opens one with
 * MEM_TRY, and on exhaustion below it control comes back to the MEM_TRY as
 * a second, false return, with the allocator's blocks since then still in
 * g->live (nothing is freed: an object the call was building may own some
 * of them). The call then either frees them all (mem_set_free_all) or, if
 * they may hang from a long-lived object, keeps them with that object and
 * frees the rest after the object's destructor (mem_collect_begin/end). */
/* What a jump must release besides the allocator's blocks (an open file,
 * LLVM's strings): registered on the innermost guard while held. */
typedef struct MemCleanup {
    void (*fn)(void *arg);
    void *arg;
    struct MemCleanup *next;
} MemCleanup;

typedef struct MemGuard {
    jmp_buf jb;
    struct MemGuard *up;
    MemCleanup *cleanups;
    MemSet live;      /* blocks allocated under the guard, still live */
    const char *what; /* what the call was doing, for the message */
    size_t bytes;     /* the failed request */
    bool failed, collecting;
} MemGuard;

void mem_guard_push(MemGuard *g, const char *what);
#define MEM_TRY(g, what) (mem_guard_push((g), (what)), setjmp((g)->jb) == 0)
/* Ends g (call it on both paths of MEM_TRY); false when g caught a
 * failure. On success g's live blocks pass to the enclosing guard. */
bool mem_guard_pop(MemGuard *g);
/* "out of memory: cannot allocate N bytes while <what>" */
void mem_error(const MemGuard *g, char *buf, size_t n);
void mem_set_free_all(MemSet *s);
/* Run an object's destructor between these two: the blocks in *orphans it
 * frees are taken out, and mem_collect_end frees the others. */
void mem_collect_begin(MemGuard *g, MemSet *orphans);
void mem_collect_end(MemGuard *g);
/* Ends a collection without freeing: the blocks the destructor did not
 * free go back to *orphans (an object freed before the one that holds
 * the orphans, such as a model's training watch). */
void mem_collect_keep(MemGuard *g, MemSet *orphans);
/* The innermost guard of this thread fails as if an allocation of n
 * bytes had (a failure caught on another thread, passed on); outside any
 * guard it is an internal error. */
_Noreturn void mem_raise(size_t n);
/* Runs fn(arg) under a guard of its own on a thread that shares a job
 * with others (a worker of the thread pool, a compile thread) for the
 * owner, the suspended guard of the job's caller: the blocks fn leaves
 * live become the owner's (under a lock: tasks end on several threads).
 * Running out of memory in fn frees fn's blocks and returns false with
 * *bytes the failed request, for the owner to mem_raise after the job. */
bool mem_run_caught(void (*fn)(void *arg), void *arg, MemGuard *owner, size_t *bytes);
/* c (the caller's, alive until mem_cleanup_pop) runs fn(arg) if the
 * innermost guard catches a failure in between; nothing outside guards. */
void mem_cleanup_push(MemCleanup *c, void (*fn)(void *), void *arg);
void mem_cleanup_pop(MemCleanup *c);
/* For mem_cleanup_push: fclose(f). */
void mem_fclose(void *f);
/* An open_memstream whose FILE and text a jump releases. */
typedef struct MemStream {
    FILE *f;
    char *buf;
    size_t len;
    MemCleanup on_jump;
} MemStream;
FILE *mem_stream_open(MemStream *s);   /* NULL when it cannot be opened */
char *mem_stream_close(MemStream *s);  /* the text (free it), NULL if none */
/* No recovery on this thread in between (worker threads share a job:
 * a jump out of one would leave the others waiting). */
MemGuard *mem_guard_suspend(void);
MemGuard *mem_guard_current(void); /* this thread's innermost guard, or NULL */
void mem_guard_resume(MemGuard *g);

/* Test hook: the k-th allocation counted from now fails (k = 0: none).
 * Only allocations under a guard count. MODELC_FAIL_ALLOC=k in the
 * environment sets it when the first guard opens. */
void mem_fail_at(long k);
long mem_alloc_count(void); /* allocations counted since mem_fail_at */

/* ---- arena (base.c) ---- */
typedef struct ArenaChunk ArenaChunk;
typedef struct Arena {
    ArenaChunk *head;
    size_t used_total;
} Arena;

Arena *arena_new(void);
void arena_free(Arena *a);
void *arena_alloc(Arena *a, size_t n); /* zeroed, 16-byte aligned */
char *arena_strdup(Arena *a, const char *s);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_printf(Arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- growable string buffer (base.c) ---- */
typedef struct StrBuf {
    char *s;
    size_t len, cap;
} StrBuf;
void sb_init(StrBuf *b);
void sb_free(StrBuf *b);
void sb_putc(StrBuf *b, char c);
void sb_puts(StrBuf *b, const char *s);
void sb_printf(StrBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_vprintf(StrBuf *b, const char *fmt, va_list ap);
char *sb_take(StrBuf *b); /* returns malloc'd string, resets buffer */

/* Shortest "%.17g"-style number that reads back to the same double. */
void fmt_double(char *buf, size_t n, double v);

/* ---- source locations and diagnostics (diag.c) ---- */
typedef struct SrcLoc {
    const char *file; /* interned; NULL when unknown */
    int line, col;    /* 1-based; 0 when unknown */
} SrcLoc;

typedef enum { DIAG_ERROR, DIAG_WARNING, DIAG_NOTE } DiagLevel;

typedef struct Diag {
    DiagLevel level;
    SrcLoc loc;
    int span; /* carets to draw (>=1) */
    char *msg;
} Diag;

typedef struct DiagSource {
    char *file;
    char *text;
    size_t len;
    size_t *line_start; /* offset of each line, built when first printed */
    int nlines;
} DiagSource;

typedef struct Diags {
    Diag *v;
    int n, cap;
    int nerrors, nwarnings;
    int max_errors; /* stop collecting after this many (default 20) */
    DiagSource *src;
    int nsrc;
    bool color;
} Diags;

void diags_init(Diags *d);
void diags_free(Diags *d);
/* Register a file's text so diagnostics can show the source line.
 * Returns the interned file name to use in SrcLoc. */
const char *diags_add_source(Diags *d, const char *file, const char *text, size_t len);
const char *diags_intern_file(Diags *d, const char *file);
void diag_error(Diags *d, SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_warning(Diags *d, SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_note(Diags *d, SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_add(Diags *d, DiagLevel lvl, SrcLoc loc, int span, const char *fmt, va_list ap);
/* Line loc.line of the registered text of loc.file and its length
 * (without the line break); NULL when there is no such line. */
const char *diags_line(Diags *d, SrcLoc loc, size_t *len);
/* Print all diagnostics (file:line:col: level: msg, source line, caret). */
void diags_print(Diags *d, FILE *f);
/* Print only diagnostics from index `from`; returns new count. */
int diags_print_from(Diags *d, FILE *f, int from);
bool diags_too_many(const Diags *d);

/* ---- file helpers (base.c) ---- */
/* Read a whole file; NULL and errno set on failure. Adds a NUL terminator. */
char *read_file(const char *path, size_t *len);

/* ---- string -> int map (base.c): open addressing; keys are not copied
 * and must outlive the map ---- */
typedef struct StrMap {
    const char **key;
    int *val;
    int cap, n;
} StrMap;
void strmap_init(StrMap *m);
void strmap_free(StrMap *m);
int strmap_get(const StrMap *m, const char *k); /* -1 when absent */
void strmap_put(StrMap *m, const char *k, int v);
uint64_t str_hash(const char *s); /* FNV-1a */

/* Checked arithmetic for shape products; return false on overflow. */
bool mul_overflow_i64(int64_t a, int64_t b, int64_t *out);

#define ARRAY_LEN(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Push onto a (ptr, n, cap) malloc'd vector. */
#define VEC_PUSH(ptr, n, cap, val)                                                         \
    do {                                                                                   \
        if ((n) == (cap)) {                                                                \
            (cap) = (cap) ? 2 * (cap) : 8;                                                 \
            (ptr) = xrealloc((ptr), (size_t)(cap) * sizeof(*(ptr)));                       \
        }                                                                                  \
        (ptr)[(n)++] = (val);                                                              \
    } while (0)

#endif
