/* Diagnostics: collected with their source location, printed as
 * `file:line:col: error: message`, the source line and a caret. */
#include "base.h"

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
        free(d->v[i].msg);
    free(d->v);
    for (int i = 0; i < d->nsrc; i++) {
        free(d->src[i].file);
        free(d->src[i].text);
    }
    free(d->src);
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
    d->src = xrealloc(d->src, (size_t)(d->nsrc + 1) * sizeof(DiagSource));
    s = &d->src[d->nsrc++];
    s->file = xstrdup(file);
    s->text = NULL;
    s->len = 0;
    return s->file;
}

const char *diags_add_source(Diags *d, const char *file, const char *text, size_t len)
{
    const char *f = diags_intern_file(d, file);
    DiagSource *s = find_source(d, f);
    free(s->text);
    s->text = xmalloc(len + 1);
    memcpy(s->text, text, len);
    s->text[len] = 0;
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

/* Print source line `line` of s and a caret under column col. Locations
 * come from files (IR text names any line and column): no line beyond
 * the text, and the caret and its span stay within the line, or just
 * past its end. */
static void print_snippet(FILE *f, DiagSource *s, int line, int col, int span)
{
    const char *p = s->text, *end = s->text + s->len;
    for (int l = 1; l < line && p < end; p++)
        if (*p == '\n')
            l++;
    if (p >= end && line > 1)
        return;
    const char *e = p;
    while (e < end && *e != '\n' && *e != '\r')
        e++;
    fprintf(f, "%5d | ", line);
    for (const char *q = p; q < e; q++)
        fputc(*q == '\t' ? ' ' : (unsigned char)*q < 32 ? '?' : *q, f);
    fputs("\n      | ", f);
    size_t width = (size_t)(e - p), at = col > 1 ? (size_t)col - 1 : 0;
    if (at > width)
        at = width;
    size_t tildes = span > 1 ? (size_t)span - 1 : 0, room = at < width ? width - at - 1 : 0;
    if (tildes > room)
        tildes = room;
    for (size_t i = 0; i < at; i++)
        fputc(' ', f);
    fputc('^', f);
    for (size_t i = 0; i < tildes; i++)
        fputc('~', f);
    fputc('\n', f);
}

int diags_print_from(Diags *d, FILE *f, int from)
{
    for (int i = from; i < d->n; i++) {
        Diag *g = &d->v[i];
        if (g->loc.file && g->loc.line > 0)
            fprintf(f, "%s:%d:%d: ", g->loc.file, g->loc.line, g->loc.col);
        else if (g->loc.file)
            fprintf(f, "%s: ", g->loc.file);
        else
            fputs("modelc: ", f);
        fprintf(f, "%s: %s\n", level_name(g->level), g->msg);
        DiagSource *s = g->loc.file ? find_source(d, g->loc.file) : NULL;
        if (s && s->text && g->loc.line > 0)
            print_snippet(f, s, g->loc.line, g->loc.col, g->span);
    }
    if (d->max_errors > 0 && d->nerrors > d->max_errors && from <= d->n)
        fprintf(f, "modelc: too many errors (%d); stopped after %d\n", d->nerrors, d->max_errors);
    return d->n;
}

void diags_print(Diags *d, FILE *f)
{
    diags_print_from(d, f, 0);
}
