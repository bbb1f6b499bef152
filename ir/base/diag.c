/* Diagnostics: collected with their source location, printed as
 * `file:line:col: error: message`, the source line and a caret. */
#include "base.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

void diags_init(Diags *d)
{
    memset(d, 0, sizeof(*d));
    d->max_errors = 20;
}

void diags_free(Diags *d)
{
    for (int i = 0; i < d->n; i++)
        xfree(d->v[i].msg);
    xfree(d->v);
    for (int i = 0; i < d->nsrc; i++) {
        xfree(d->src[i].file);
        xfree(d->src[i].text);
        xfree(d->src[i].line_start);
    }
    xfree(d->src);
    memset(d, 0, sizeof(*d));
}

static DiagSource *find_source(Diags *d, const char *file)
{
    for (int i = 0; i < d->nsrc; i++)
        if (d->src[i].file == file || strcmp(d->src[i].file, file) == 0)
            return &d->src[i];
    return NULL;
}

const char *diags_intern_file(Diags *d, const char *file)
{
    DiagSource *s = find_source(d, file);
    if (s)
        return s->file;
    char *name = xstrdup(file);
    d->src = xrealloc(d->src, (size_t)(d->nsrc + 1) * sizeof(DiagSource));
    d->src[d->nsrc] = (DiagSource){name, NULL, 0, NULL, 0};
    return d->src[d->nsrc++].file;
}

const char *diags_add_source(Diags *d, const char *file, const char *text, size_t len)
{
    const char *f = diags_intern_file(d, file);
    DiagSource *s = find_source(d, f);
    char *copy = xmalloc(len + 1);
    if (len)
        memcpy(copy, text, len);
    copy[len] = 0;
    xfree(s->text);
    xfree(s->line_start);
    s->line_start = NULL;
    s->nlines = 0;
    s->text = copy;
    s->len = len;
    return s->file;
}

bool diags_too_many(const Diags *d)
{
    return d->max_errors > 0 && d->nerrors >= d->max_errors;
}

void diag_add(Diags *d, DiagLevel lvl, SrcLoc loc, int span, const char *fmt, va_list ap)
{
    if (lvl == DIAG_ERROR && diags_too_many(d)) {
        d->nerrors++;
        return;
    }
    StrBuf b;
    sb_init(&b);
    sb_vprintf(&b, fmt, ap);
    /* Own the file name: the caller's copy may die first (graph arenas). */
    if (loc.file)
        loc.file = diags_intern_file(d, loc.file);
    Diag g = {lvl, loc, span > 0 ? span : 1, sb_take(&b)};
    VEC_PUSH(d->v, d->n, d->cap, g);
    if (lvl == DIAG_ERROR)
        d->nerrors++;
    else if (lvl == DIAG_WARNING)
        d->nwarnings++;
}

#define DIAG_FN(fname, lvl)                                                                \
    void fname(Diags *d, SrcLoc loc, const char *fmt, ...)                                 \
    {                                                                                      \
        va_list ap;                                                                        \
        va_start(ap, fmt);                                                                 \
        diag_add(d, lvl, loc, 1, fmt, ap);                                                 \
        va_end(ap);                                                                        \
    }
DIAG_FN(diag_error, DIAG_ERROR)
DIAG_FN(diag_warning, DIAG_WARNING)
DIAG_FN(diag_note, DIAG_NOTE)

static const char *level_name(DiagLevel l)
{
    return l == DIAG_ERROR ? "error" : l == DIAG_WARNING ? "warning" : "note";
}

/* Where each line of s starts, so that printing many diagnostics does
 * not scan the text from its start for each. */
static void index_lines(DiagSource *s)
{
    size_t n = 1; /* lines a location can name: at most INT_MAX */
    for (size_t i = 0; i < s->len && n < INT_MAX; i++)
        n += s->text[i] == '\n';
    s->line_start = xmalloc(n * sizeof(size_t));
    s->line_start[0] = 0;
    s->nlines = 1;
    for (size_t i = 0; i < s->len && (size_t)s->nlines < n; i++)
        if (s->text[i] == '\n')
            s->line_start[s->nlines++] = i + 1;
}

/* Print source line `line` of s and a caret under column col. Locations
 * come from files (IR text names any line and column): no line beyond
 * the text, and the caret and its span stay within the line, or just
 * past its end. */
const char *diags_line(Diags *d, SrcLoc loc, size_t *len)
{
    DiagSource *s = loc.file ? find_source(d, loc.file) : NULL;
    if (!s || !s->text || loc.line < 1)
        return NULL;
    if (!s->line_start)
        index_lines(s);
    if (loc.line > s->nlines)
        return NULL;
    const char *p = s->text + s->line_start[loc.line - 1], *end = s->text + s->len, *e = p;
    if (p >= end && loc.line > 1)
        return NULL;
    while (e < end && *e != '\n' && *e != '\r')
        e++;
    *len = (size_t)(e - p);
    return p;
}

static void print_snippet(StrBuf *b, Diags *d, SrcLoc loc, int span)
{
    size_t width;
    const char *p = diags_line(d, loc, &width);
    if (!p)
        return;
    sb_printf(b, "%5d | ", loc.line);
    for (size_t i = 0; i < width; i++)
        sb_putc(b, p[i] == '\t' ? ' ' : (unsigned char)p[i] < 32 ? '?' : p[i]);
    sb_puts(b, "\n      | ");
    size_t at = loc.col > 1 ? (size_t)loc.col - 1 : 0;
    if (at > width)
        at = width;
    size_t tildes = span > 1 ? (size_t)span - 1 : 0, room = at < width ? width - at - 1 : 0;
    if (tildes > room)
        tildes = room;
    for (size_t i = 0; i < at; i++)
        sb_putc(b, ' ');
    sb_putc(b, '^');
    for (size_t i = 0; i < tildes; i++)
        sb_putc(b, '~');
    sb_putc(b, '\n');
}

/* Each diagnostic is formatted first and written at once: stderr is
 * unbuffered, and a write per character makes many warnings slow. */
int diags_print_from(Diags *d, FILE *f, int from)
{
    StrBuf b;
    sb_init(&b);
    for (int i = from; i < d->n; i++) {
        Diag *g = &d->v[i];
        b.len = 0;
        if (g->loc.file && g->loc.line > 0)
            sb_printf(&b, "%s:%d:%d: ", g->loc.file, g->loc.line, g->loc.col);
        else if (g->loc.file)
            sb_printf(&b, "%s: ", g->loc.file);
        else
            sb_puts(&b, "modelc: ");
        sb_printf(&b, "%s: %s\n", level_name(g->level), g->msg);
        print_snippet(&b, d, g->loc, g->span);
        fwrite(b.s, 1, b.len, f);
    }
    sb_free(&b);
    if (d->max_errors > 0 && d->nerrors > d->max_errors && from <= d->n)
        fprintf(f, "modelc: too many errors (%d); stopped after %d\n", d->nerrors, d->max_errors);
    return d->n;
}

void diags_print(Diags *d, FILE *f)
{
    diags_print_from(d, f, 0);
}
