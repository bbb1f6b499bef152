/* Base utilities shared by every layer: arenas, source locations,
 * diagnostics, growable arrays and the internal-compiler-error macro. */
#ifndef MODELC_BASE_H
#define MODELC_BASE_H

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

/* malloc wrappers that ICE on exhaustion */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t sz);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

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
