/* Arenas, string buffers, checked arithmetic, file reading, ICE. */
#include "base.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void mc_ice(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "modelc: internal error at %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

struct ArenaChunk {
    ArenaChunk *next;
    size_t cap, used;
    _Alignas(16) unsigned char data[];
};

Arena *arena_new(void)
{
    return xcalloc(1, sizeof(Arena));
}

void arena_free(Arena *a)
{
    if (!a)
        return;
    for (ArenaChunk *c = a->head, *next; c; c = next) {
        next = c->next;
        xfree(c);
    }
    xfree(a);
}

void *arena_alloc(Arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    ArenaChunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        c = xmalloc(sizeof(ArenaChunk) + cap);
        c->cap = cap;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    a->used_total += n;
    memset(p, 0, n);
    return p;
}

char *arena_strndup(Arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

char *arena_strdup(Arena *a, const char *s)
{
    return s ? arena_strndup(a, s, strlen(s)) : NULL;
}

char *arena_printf(Arena *a, const char *fmt, ...)
{
    StrBuf b;
    sb_init(&b);
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&b, fmt, ap);
    va_end(ap);
    char *p = arena_strndup(a, b.s, b.len);
    sb_free(&b);
    return p;
}

void sb_init(StrBuf *b)
{
    b->s = NULL;
    b->len = b->cap = 0;
}

void sb_free(StrBuf *b)
{
    xfree(b->s);
    sb_init(b);
}

static void sb_reserve(StrBuf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1)
        cap *= 2;
    b->s = xrealloc(b->s, cap);
    b->cap = cap;
}

void sb_putc(StrBuf *b, char c)
{
    sb_reserve(b, 1);
    b->s[b->len++] = c;
    b->s[b->len] = 0;
}

void sb_puts(StrBuf *b, const char *s)
{
    size_t n = strlen(s);
    sb_reserve(b, n);
    memcpy(b->s + b->len, s, n + 1);
    b->len += n;
}

void sb_vprintf(StrBuf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        ICE("bad format string %s", fmt);
    sb_reserve(b, (size_t)n);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void sb_printf(StrBuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(b, fmt, ap);
    va_end(ap);
}

char *sb_take(StrBuf *b)
{
    char *s = b->s ? b->s : xstrdup("");
    sb_init(b);
    return s;
}

void fmt_double(char *buf, size_t n, double v)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    /* make integral values recognisable as numbers with a fraction-free form */
}

char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    MemCleanup on_jump;
    mem_cleanup_push(&on_jump, mem_fclose, f);
    size_t cap = 4096, n = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (n + 1 >= cap) {
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                int e = errno;
                mem_cleanup_pop(&on_jump);
                fclose(f);
                xfree(buf);
                errno = e ? e : EIO;
                return NULL;
            }
            break;
        }
    }
    mem_cleanup_pop(&on_jump);
    fclose(f);
    buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}

bool mul_overflow_i64(int64_t a, int64_t b, int64_t *out)
{
    return __builtin_mul_overflow(a, b, out);
}

/* ---- string -> int map ---- */

uint64_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

void strmap_init(StrMap *m)
{
    m->cap = 16;
    m->n = 0;
    m->key = xcalloc((size_t)m->cap, sizeof(char *));
    m->val = xcalloc((size_t)m->cap, sizeof(int));
}

void strmap_free(StrMap *m)
{
    xfree(m->key);
    xfree(m->val);
    memset(m, 0, sizeof *m);
}

static int strmap_slot(const StrMap *m, const char *k)
{
    int i = (int)(str_hash(k) & (uint64_t)(m->cap - 1));
    while (m->key[i] && strcmp(m->key[i], k) != 0)
        i = (i + 1) & (m->cap - 1);
    return i;
}

int strmap_get(const StrMap *m, const char *k)
{
    if (!m->cap)
        return -1;
    int i = strmap_slot(m, k);
    return m->key[i] ? m->val[i] : -1;
}

void strmap_put(StrMap *m, const char *k, int v)
{
    if (!m->cap)
        strmap_init(m);
    if (2 * (m->n + 1) > m->cap) {
        StrMap t = {xcalloc((size_t)m->cap * 2, sizeof(char *)), xcalloc((size_t)m->cap * 2, sizeof(int)),
                    m->cap * 2, m->n};
        for (int i = 0; i < m->cap; i++)
            if (m->key[i]) {
                int j = strmap_slot(&t, m->key[i]);
                t.key[j] = m->key[i];
                t.val[j] = m->val[i];
            }
        xfree(m->key);
        xfree(m->val);
        *m = t;
    }
    int i = strmap_slot(m, k);
    if (!m->key[i])
        m->n++;
    m->key[i] = k;
    m->val[i] = v;
}
