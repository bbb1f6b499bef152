/* The IR text parser: reads what print.c writes back into a graph,
 * re-inferring every shape and reporting any difference from the printed
 * type. Every malformed input gets one `file:line:col: error: ...`; the
 * parser stops at the first error and never reads past the given length.
 *
 *   file    := 'graph' (IDENT | STRING) '{' item* '}'
 *   item    := train | node | output
 *   train   := 'train' '{' (IDENT '=' tvalue ','?)* '}'
 *   node    := VALUE '=' 'input' STRING ':' type loc?
 *            | VALUE '=' 'param' STRING pflag* ':' type loc?
 *            | VALUE '=' 'const' NUMBER ':' type loc?
 *            | VALUE '=' OP '(' (VALUE (',' VALUE)*)? ')' attrs? ':' type loc? body?
 *   pflag   := INIT '(' (NUMBER (',' NUMBER)*)? ')' | 'state' | 'slot' | 'weight' | 'frozen'
 *   attrs   := '{' (IDENT '=' avalue (',' IDENT '=' avalue)*)? '}'
 *   body    := '{' item* '}'                          (fused nodes only)
 *   output  := 'output' VALUE
 *            | 'output' KIND STRING? '=' VALUE ('result' INT)? (('wrt' | 'of') VALUE)? 'train_only'?
 *   type    := DTYPE '[' (dim (',' dim)*)? ']'        dim := 'N' | INT
 *   loc     := 'loc' '(' STRING ':' INT ':' INT ')'
 * '#' starts a comment that runs to the end of the line. */
#include "irtext.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NESTING 16
/* Slice bounds (steps may be any positive int64: ir_slice_len). */
#define MAX_SLICE (INT64_C(1) << 62)

typedef enum { T_EOF, T_IDENT, T_VALUE, T_NUM, T_STR, T_PUNCT } TokKind;

typedef struct Tok {
    TokKind kind;
    const char *p; /* start in the text */
    size_t len;
    int line, col;
    char *s; /* IDENT, NUM: the text; VALUE: the name without '%'; STR: decoded */
} Tok;

/* String -> node map (open addressing; keys are not copied). */
typedef struct NodeMap {
    const char **key;
    Node **val;
    int cap, n;
} NodeMap;

/* One graph or fused body: its value names, the names of its inputs and
 * params, and the set of value names used so far. */
typedef struct Scope {
    NodeMap values, inputs, params;
    NameSet names;
} Scope;

/* Where each parsed node was defined in the text, for the verifier. */
typedef struct NodePos {
    Node *n;
    SrcLoc text;
} NodePos;

typedef struct Parser {
    const char *file;
    const char *cur, *end, *bol;
    int line;
    Tok tok;
    Diags *d;
    bool failed;
    Arena *scratch;
    int depth;
    NodePos *pos;
    int npos, poscap;
    int loss_line; /* line of the first loss output, 0 if none yet */
    RunSettings *run; /* the train block's run settings */
} Parser;

/* ---- errors ---- */

static SrcLoc tok_loc(const Parser *P, const Tok *t)
{
    SrcLoc l = {P->file, t->line, t->col};
    return l;
}

static void err_at(Parser *P, const Tok *t, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void err_at(Parser *P, const Tok *t, const char *fmt, ...)
{
    if (P->failed)
        return;
    P->failed = true;
    va_list ap;
    va_start(ap, fmt);
    diag_add(P->d, DIAG_ERROR, tok_loc(P, t), t->len > 1 ? (int)(t->len < 60 ? t->len : 60) : 1,
             fmt, ap);
    va_end(ap);
}

static const char *tok_desc(Parser *P, const Tok *t)
{
    switch (t->kind) {
    case T_EOF:
        return "end of file";
    case T_STR:
        return "a string";
    case T_VALUE:
        return arena_printf(P->scratch, "'%%%.40s'", t->s);
    default:
        return arena_printf(P->scratch, "'%.*s'", (int)(t->len < 40 ? t->len : 40), t->p);
    }
}

/* ---- lexer ---- */

static int peekc(const Parser *P, size_t k)
{
    return (size_t)(P->end - P->cur) > k ? (unsigned char)P->cur[k] : -1;
}

static void advance(Parser *P)
{
    if (*P->cur == '\n') {
        P->line++;
        P->bol = P->cur + 1;
    }
    P->cur++;
}

static void skip_space(Parser *P)
{
    for (;;) {
        int c = peekc(P, 0);
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            advance(P);
        } else if (c == '#') {
            while (P->cur < P->end && *P->cur != '\n')
                P->cur++;
        } else {
            return;
        }
    }
}

static bool is_name_char(int c)
{
    return c >= 0 && (isalnum(c) || c == '_' || c == '.');
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* One escape after a backslash; -1 after reporting an error. */
static int lex_escape(Parser *P)
{
    int c = peekc(P, 0);
    Tok at = {T_PUNCT, P->cur - 1, 2, P->line, (int)(P->cur - 1 - P->bol) + 1, NULL};
    switch (c) {
    case '"':
    case '\\':
        advance(P);
        return c;
    case 'n':
        advance(P);
        return '\n';
    case 't':
        advance(P);
        return '\t';
    case 'x': {
        int h = hexval(peekc(P, 1)), l = hexval(peekc(P, 2));
        if (h < 0 || l < 0) {
            err_at(P, &at, "'\\x' in a string needs two hex digits");
            return -1;
        }
        if (h == 0 && l == 0) {
            err_at(P, &at, "a string cannot contain a NUL byte");
            return -1;
        }
        P->cur += 3;
        return h * 16 + l;
    }
    default:
        err_at(P, &at, "unknown escape sequence in string");
        return -1;
    }
}

static void lex_string(Parser *P, Tok *t)
{
    StrBuf b;
    sb_init(&b);
    advance(P); /* opening quote */
    for (;;) {
        int c = peekc(P, 0);
        if (c < 0 || c == '\n') {
            err_at(P, t, "unterminated string");
            break;
        }
        advance(P);
        if (c == '"')
            break;
        if (c == '\\') {
            c = lex_escape(P);
            if (c < 0)
                break;
        }
        sb_putc(&b, (char)c);
    }
    t->s = arena_strndup(P->scratch, b.s ? b.s : "", b.len);
    sb_free(&b);
}

static void lex_number(Parser *P)
{
    if (peekc(P, 0) == '-' || peekc(P, 0) == '+')
        P->cur++;
    if (isalpha(peekc(P, 0))) { /* inf, nan */
        while (isalnum(peekc(P, 0)))
            P->cur++;
        return;
    }
    while (isdigit(peekc(P, 0)))
        P->cur++;
    if (peekc(P, 0) == '.') {
        P->cur++;
        while (isdigit(peekc(P, 0)))
            P->cur++;
    }
    int e = peekc(P, 0);
    if ((e == 'e' || e == 'E') &&
        (isdigit(peekc(P, 1)) || ((peekc(P, 1) == '-' || peekc(P, 1) == '+') && isdigit(peekc(P, 2))))) {
        P->cur += 2;
        while (isdigit(peekc(P, 0)))
            P->cur++;
    }
}

static bool number_start(const Parser *P)
{
    int c = peekc(P, 0), c1 = peekc(P, 1);
    if (isdigit(c) || (c == '.' && isdigit(c1)))
        return true;
    return (c == '-' || c == '+') && (isdigit(c1) || c1 == '.' || c1 == 'i' || c1 == 'n');
}

static void next(Parser *P)
{
    if (P->failed) {
        P->tok.kind = T_EOF;
        return;
    }
    skip_space(P);
    Tok *t = &P->tok;
    t->p = P->cur;
    t->line = P->line;
    t->col = (int)(P->cur - P->bol) + 1;
    t->s = NULL;
    int c = peekc(P, 0);
    if (c < 0) {
        t->kind = T_EOF;
        t->len = 0;
        return;
    }
    if (c == '"') {
        t->kind = T_STR;
        lex_string(P, t);
    } else if (c == '%') {
        t->kind = T_VALUE;
        P->cur++;
        while (is_name_char(peekc(P, 0)))
            P->cur++;
        t->s = arena_strndup(P->scratch, t->p + 1, (size_t)(P->cur - t->p - 1));
        if (!t->s[0]) {
            t->len = 1;
            err_at(P, t, "expected a value name after '%%'");
        }
    } else if (isalpha(c) || c == '_') {
        t->kind = T_IDENT;
        while (isalnum(peekc(P, 0)) || peekc(P, 0) == '_')
            P->cur++;
    } else if (number_start(P)) {
        t->kind = T_NUM;
        lex_number(P);
    } else if (strchr("{}()[],=:*", c)) {
        t->kind = T_PUNCT;
        P->cur++;
    } else {
        t->len = 1;
        if (c >= 32 && c < 127)
            err_at(P, t, "unexpected character '%c'", c);
        else
            err_at(P, t, "unexpected byte 0x%02x", c);
        t->kind = T_EOF;
        return;
    }
    t->len = (size_t)(P->cur - t->p);
    if (t->kind == T_IDENT || t->kind == T_NUM)
        t->s = arena_strndup(P->scratch, t->p, t->len);
}

/* ---- token helpers ---- */

static bool is_punct(const Parser *P, char c)
{
    return P->tok.kind == T_PUNCT && *P->tok.p == c;
}

static bool is_ident(const Parser *P, const char *s)
{
    return P->tok.kind == T_IDENT && strcmp(P->tok.s, s) == 0;
}

static bool accept(Parser *P, char c)
{
    if (!is_punct(P, c))
        return false;
    next(P);
    return true;
}

static bool expect(Parser *P, char c, const char *where)
{
    if (accept(P, c))
        return true;
    err_at(P, &P->tok, "expected '%c'%s%s, got %s", c, where ? " " : "", where ? where : "",
           tok_desc(P, &P->tok));
    return false;
}

static const char *expect_ident(Parser *P, const char *what)
{
    if (P->tok.kind != T_IDENT) {
        err_at(P, &P->tok, "expected %s, got %s", what, tok_desc(P, &P->tok));
        return NULL;
    }
    const char *s = P->tok.s;
    next(P);
    return s;
}

static const char *expect_string(Parser *P, const char *what)
{
    if (P->tok.kind != T_STR) {
        err_at(P, &P->tok, "expected %s, got %s", what, tok_desc(P, &P->tok));
        return NULL;
    }
    const char *s = P->tok.s;
    next(P);
    return s;
}

static bool parse_double(Parser *P, double *out)
{
    Tok *t = &P->tok;
    bool word = t->kind == T_IDENT && (strcmp(t->s, "inf") == 0 || strcmp(t->s, "nan") == 0);
    if (t->kind != T_NUM && !word) {
        err_at(P, t, "expected a number, got %s", tok_desc(P, t));
        return false;
    }
    char *end;
    *out = strtod(t->s, &end);
    if (end == t->s || *end) {
        err_at(P, t, "malformed number '%s'", t->s);
        return false;
    }
    next(P);
    return true;
}

static bool parse_int(Parser *P, int64_t lo, int64_t hi, const char *what, int64_t *out)
{
    Tok *t = &P->tok;
    if (t->kind != T_NUM) {
        err_at(P, t, "expected %s, got %s", what, tok_desc(P, t));
        return false;
    }
    char *end;
    errno = 0;
    long long v = strtoll(t->s, &end, 10);
    if (end == t->s || *end) {
        err_at(P, t, "expected %s, got '%s'", what, t->s);
        return false;
    }
    if (errno == ERANGE || v < lo || v > hi) {
        err_at(P, t, "%s out of range: %s (expected %lld to %lld)", what, t->s, (long long)lo,
               (long long)hi);
        return false;
    }
    *out = v;
    next(P);
    return true;
}

static bool parse_small_int(Parser *P, int lo, const char *what, int *out)
{
    int64_t v;
    if (!parse_int(P, lo, INT_MAX, what, &v))
        return false;
    *out = (int)v;
    return true;
}

static bool parse_bool(Parser *P, bool *out)
{
    if (is_ident(P, "true") || is_ident(P, "false")) {
        *out = P->tok.s[0] == 't';
        next(P);
        return true;
    }
    err_at(P, &P->tok, "expected true or false, got %s", tok_desc(P, &P->tok));
    return false;
}

/* ---- scopes ---- */

static void map_init(NodeMap *m, int cap)
{
    m->cap = cap;
    m->n = 0;
    m->key = xcalloc((size_t)cap, sizeof(char *));
    m->val = xcalloc((size_t)cap, sizeof(Node *));
}

static void map_free(NodeMap *m)
{
    xfree(m->key);
    xfree(m->val);
}

static int map_slot(const NodeMap *m, const char *k)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = k; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    int i = (int)(h & (uint64_t)(m->cap - 1));
    while (m->key[i] && strcmp(m->key[i], k) != 0)
        i = (i + 1) & (m->cap - 1);
    return i;
}

static Node *map_get(const NodeMap *m, const char *k)
{
    int i = map_slot(m, k);
    return m->key[i] ? m->val[i] : NULL;
}

static void map_put(NodeMap *m, const char *k, Node *n)
{
    if (2 * (m->n + 1) > m->cap) {
        NodeMap t;
        map_init(&t, m->cap * 2);
        for (int i = 0; i < m->cap; i++)
            if (m->key[i]) {
                int j = map_slot(&t, m->key[i]);
                t.key[j] = m->key[i];
                t.val[j] = m->val[i];
                t.n++;
            }
        map_free(m);
        *m = t;
    }
    int i = map_slot(m, k);
    if (!m->key[i])
        m->n++;
    m->key[i] = k;
    m->val[i] = n;
}

static void scope_init(Scope *s)
{
    map_init(&s->values, 64);
    map_init(&s->inputs, 16);
    map_init(&s->params, 16);
    ir_nameset_init(&s->names);
}

static void scope_free(Scope *s)
{
    map_free(&s->values);
    map_free(&s->inputs);
    map_free(&s->params);
    ir_nameset_free(&s->names);
}

static Node *scope_get(const Scope *s, const char *k)
{
    return map_get(&s->values, k);
}

static void scope_put(Scope *s, const char *k, Node *n)
{
    map_put(&s->values, k, n);
    ir_nameset_add(&s->names, k);
}

/* A use of a value: VALUE token that names an earlier definition. */
static Node *parse_use(Parser *P, const Scope *sc)
{
    if (P->tok.kind != T_VALUE) {
        err_at(P, &P->tok, "expected a value such as '%%x', got %s", tok_desc(P, &P->tok));
        return NULL;
    }
    Node *n = scope_get(sc, P->tok.s);
    if (!n) {
        err_at(P, &P->tok, "use of undefined value '%%%s'", P->tok.s);
        return NULL;
    }
    next(P);
    return n;
}

/* The label a node named `nm` had when printed: NULL for numbered values,
 * "h" for "h.2" when the printer would have renamed a second "h" so. */
static const char *restore_label(Parser *P, Scope *sc, Graph *g, const char *nm)
{
    if (isdigit((unsigned char)nm[0]))
        return NULL;
    const char *dot = strrchr(nm, '.');
    if (dot && dot[1] >= '1' && dot[1] <= '9' && strspn(dot + 1, "0123456789") == strlen(dot + 1)) {
        char *base = arena_strndup(P->scratch, nm, (size_t)(dot - nm));
        const char *u = ir_name_unique(&sc->names, P->scratch, ir_name_sanitize(P->scratch, base));
        if (strcmp(u, nm) == 0)
            return arena_strdup(g->arena, base);
    }
    return arena_strdup(g->arena, nm);
}

/* ---- types and locations ---- */

/* '[' (dim (',' dim)*)? ']', a shape that passes ir_dims_numel. */
static bool parse_dims(Parser *P, Shape *s)
{
    *s = ir_shape0();
    Tok open = P->tok;
    if (!expect(P, '[', "to start a shape"))
        return false;
    if (accept(P, ']'))
        return true;
    do {
        if (s->rank == IR_MAXRANK) {
            err_at(P, &P->tok, "a shape has at most %d dimensions", IR_MAXRANK);
            return false;
        }
        if (is_ident(P, "N")) {
            s->d[s->rank++] = IR_DIM_N;
            next(P);
            if (accept(P, '*')) { /* N*k, k >= 1 */
                int64_t k;
                if (!parse_int(P, 1, IR_MAX_ELEMS, "the factor of N (a positive integer)", &k))
                    return false;
                s->d[s->rank - 1] = ir_dim_batch(k);
            }
        } else if (!parse_int(P, 0, IR_MAX_ELEMS, "a dimension (an integer or N)", &s->d[s->rank++])) {
            return false;
        }
    } while (accept(P, ','));
    if (!expect(P, ']', "to end the shape"))
        return false;
    if (!ir_shape_valid(s)) {
        char t[128];
        err_at(P, &open, "shape %s has too many elements (the limit is " IR_MAX_ELEMS_STR ")",
               ir_shape_str(s, t, sizeof t));
        return false;
    }
    return true;
}

static bool parse_dtype(Parser *P, DType *t)
{
    for (int i = 0; i < DT_COUNT; i++)
        if (is_ident(P, ir_dtype_name((DType)i))) {
            *t = (DType)i;
            next(P);
            return true;
        }
    err_at(P, &P->tok, "expected a dtype (f32, f64 or i32), got %s", tok_desc(P, &P->tok));
    return false;
}

/* ':' type; *at (if given) receives the position of the dtype. */
static bool parse_type(Parser *P, DType *t, Shape *s, Tok *at)
{
    if (!expect(P, ':', "before the type"))
        return false;
    if (at)
        *at = P->tok;
    return parse_dtype(P, t) && parse_dims(P, s);
}

static bool parse_loc(Parser *P, SrcLoc *loc)
{
    *loc = (SrcLoc){NULL, 0, 0};
    if (!is_ident(P, "loc"))
        return true;
    next(P);
    int64_t line, col;
    if (!expect(P, '(', "after 'loc'"))
        return false;
    const char *f = expect_string(P, "a file name in loc(...)");
    if (!f || !expect(P, ':', "after the file name") ||
        !parse_int(P, 0, INT_MAX, "a line number", &line) || !expect(P, ':', "after the line") ||
        !parse_int(P, 0, INT_MAX, "a column number", &col) || !expect(P, ')', "to end loc(...)"))
        return false;
    *loc = (SrcLoc){f, (int)line, (int)col};
    return true;
}

static void put_type(char *buf, DType t, const Shape *s)
{
    ir_type_str(t, s, buf, 160);
}

/* ---- attributes ---- */

typedef struct AttrCtx {
    Tok slice_tok; /* where slice=... was written, for the rank check */
    int nslice;
    unsigned seen;
} AttrCtx;

/* '[' INT (',' INT)* ']' into v; exactly `want` values unless want < 0. */
static bool parse_int_list(Parser *P, int *v, int want, int lo, const char *what, int *count)
{
    int n = 0;
    Tok start = P->tok;
    if (!expect(P, '[', "to start a list"))
        return false;
    if (!is_punct(P, ']')) {
        do {
            if (n == IR_MAXRANK || (want >= 0 && n == want)) {
                err_at(P, &P->tok, "too many values in %s", what);
                return false;
            }
            if (!parse_small_int(P, lo, what, &v[n++]))
                return false;
        } while (accept(P, ','));
    }
    if (!expect(P, ']', "to end the list"))
        return false;
    if (want >= 0 && n != want) {
        err_at(P, &start, "%s needs %d values, got %d", what, want, n);
        return false;
    }
    if (count)
        *count = n;
    return true;
}

/* slice=[b:e:s, ...]; an empty end means "to the end of the axis". */
static bool parse_slice(Parser *P, Attrs *a, AttrCtx *cx)
{
    cx->slice_tok = P->tok;
    if (!expect(P, '[', "to start the slice ranges"))
        return false;
    int k = 0;
    if (!is_punct(P, ']')) {
        do {
            if (k == IR_MAXRANK) {
                err_at(P, &P->tok, "a slice has at most %d ranges", IR_MAXRANK);
                return false;
            }
            if (!parse_int(P, -MAX_SLICE, MAX_SLICE, "a slice begin", &a->begin[k]) ||
                !expect(P, ':', "after the slice begin"))
                return false;
            a->end[k] = INT64_MAX;
            if (P->tok.kind == T_NUM && !parse_int(P, -MAX_SLICE, MAX_SLICE, "a slice end", &a->end[k]))
                return false;
            if (accept(P, ':') && !parse_int(P, 1, INT64_MAX, "a slice step", &a->step[k]))
                return false;
            k++;
        } while (accept(P, ','));
    }
    cx->nslice = k;
    return expect(P, ']', "to end the slice ranges");
}

static bool parse_attr_value(Parser *P, Attrs *a, unsigned bit, AttrCtx *cx)
{
    int64_t v;
    switch (bit) {
    case TA_AXES:
        return parse_int_list(P, a->axes, -1, 0, "axes", &a->naxes);
    case TA_AXIS:
        a->naxes = 1;
        return parse_small_int(P, 0, "an axis", &a->axes[0]);
    case TA_KEEPDIMS:
        return parse_bool(P, &a->keepdims);
    case TA_TA:
        return parse_bool(P, &a->ta);
    case TA_TB:
        return parse_bool(P, &a->tb);
    case TA_SHAPE:
        return parse_dims(P, &a->shape);
    case TA_SLICE:
        return parse_slice(P, a, cx);
    case TA_STRIDE:
        return parse_int_list(P, a->stride, 2, 1, "stride", NULL);
    case TA_PAD:
        return parse_int_list(P, a->pad, 4, 0, "pad", NULL);
    case TA_WINDOW:
        return parse_int_list(P, a->window, 2, 1, "window", NULL);
    case TA_VALUE:
        return parse_double(P, &a->value);
    case TA_ALPHA: {
        Tok at = P->tok;
        if (!parse_double(P, &a->alpha))
            return false;
        if (!isfinite(a->alpha)) {
            err_at(P, &at, "alpha must be a finite number, got %s", at.s);
            return false;
        }
        return true;
    }
    case TA_TO:
        return parse_dtype(P, &a->to);
    case TA_DEPTH:
        return parse_small_int(P, 1, "depth", &a->depth);
    case TA_STREAM:
        if (!parse_int(P, 0, UINT32_MAX, "a stream id", &v))
            return false;
        a->stream = (uint32_t)v;
        return true;
    case TA_NAME:
        a->name = expect_string(P, "a quoted name");
        return a->name != NULL;
    case TA_INDEX:
        return parse_small_int(P, 1, "a result index", &a->index);
    case TA_SEQ:
        return parse_small_int(P, 1, "a sequence count", &a->nseq);
    case TA_REVERSE:
        return parse_bool(P, &a->reverse);
    default:
        ICE("unknown attribute bit %u", bit);
    }
}

static bool parse_attr(Parser *P, Op op, Attrs *a, AttrCtx *cx)
{
    Tok name = P->tok;
    const char *k = expect_ident(P, "an attribute name");
    if (!k)
        return false;
    int i = ir_keyword_index(ir_attr_names, TA_COUNT, k);
    if (i < 0) {
        err_at(P, &name, "unknown attribute '%s'", k);
        return false;
    }
    unsigned bit = 1u << i;
    if (!(ir_attr_mask(op) & bit)) {
        err_at(P, &name, "attribute '%s' does not apply to %s", k, ir_ops[op].name);
        return false;
    }
    if (cx->seen & bit) {
        err_at(P, &name, "duplicate attribute '%s'", k);
        return false;
    }
    cx->seen |= bit;
    return expect(P, '=', "after the attribute name") && parse_attr_value(P, a, bit, cx);
}

static bool parse_attrs(Parser *P, Op op, Attrs *a, AttrCtx *cx)
{
    if (!accept(P, '{'))
        return true;
    if (accept(P, '}'))
        return true;
    do {
        if (!parse_attr(P, op, a, cx))
            return false;
    } while (accept(P, ','));
    return expect(P, '}', "to end the attributes");
}

/* ---- nodes ---- */

static void remember_pos(Parser *P, Node *n, const Tok *t)
{
    NodePos np = {n, tok_loc(P, t)};
    VEC_PUSH(P->pos, P->npos, P->poscap, np);
}

static bool parse_init(Parser *P, Init *init)
{
    Tok t = P->tok;
    int k = ir_init_from_name(P->tok.s);
    next(P);
    if (!expect(P, '(', "after the initializer name"))
        return false;
    double v[2] = {0, 0};
    int n = 0;
    if (!is_punct(P, ')')) {
        do {
            if (n == 2) {
                err_at(P, &P->tok, "too many initializer arguments");
                return false;
            }
            if (!parse_double(P, &v[n++]))
                return false;
        } while (accept(P, ','));
    }
    if (!expect(P, ')', "to end the initializer arguments"))
        return false;
    int want = ir_init_arity((InitKind)k);
    if (n != want) {
        err_at(P, &t, "initializer %s takes %d argument%s, got %d", ir_init_name((InitKind)k), want,
               want == 1 ? "" : "s", n);
        return false;
    }
    *init = (Init){(InitKind)k, v[0], v[1]};
    return true;
}

/* pflag* of a param: initializer, role and frozen, each at most once. */
static bool parse_param_flags(Parser *P, Init *init, ParamRole *role, bool *trainable)
{
    bool have_init = false, have_role = false;
    while (P->tok.kind == T_IDENT) {
        Tok t = P->tok;
        const char *s = t.s;
        if (strcmp(s, "state") == 0 || strcmp(s, "slot") == 0 || strcmp(s, "weight") == 0) {
            if (have_role) {
                err_at(P, &t, "a param has only one role");
                return false;
            }
            have_role = true;
            *role = s[1] == 't' ? ROLE_STATE : s[1] == 'l' ? ROLE_SLOT : ROLE_WEIGHT;
            next(P);
        } else if (strcmp(s, "frozen") == 0) {
            if (!*trainable) {
                err_at(P, &t, "duplicate 'frozen'");
                return false;
            }
            *trainable = false;
            next(P);
        } else if (ir_init_from_name(s) >= 0) {
            if (have_init) {
                err_at(P, &t, "a param has only one initializer");
                return false;
            }
            have_init = true;
            if (!parse_init(P, init))
                return false;
        } else {
            err_at(P, &t, "unknown initializer or param flag '%s'", s);
            return false;
        }
    }
    return true;
}

static int text_line(const Parser *P, const Node *n)
{
    for (int i = 0; i < P->npos; i++)
        if (P->pos[i].n == n)
            return P->pos[i].text.line;
    return 0;
}

/* Input and param names are unique within a graph. */
static bool check_leaf_name(Parser *P, Scope *sc, const char *kind, const char *name, const Tok *at)
{
    NodeMap *m = kind[0] == 'i' ? &sc->inputs : &sc->params;
    Node *prev = map_get(m, name);
    if (prev) {
        err_at(P, at, "duplicate %s name \"%s\" (first defined on line %d)", kind, name, text_line(P, prev));
        return false;
    }
    return true;
}

static Node *parse_leaf(Parser *P, Graph *g, Scope *sc, const char *kind)
{
    Init init = {INIT_NONE, 0, 0};
    ParamRole role = ROLE_WEIGHT;
    bool trainable = true;
    const char *name = NULL;
    double value = 0;
    if (kind[0] == 'c') {
        if (!parse_double(P, &value))
            return NULL;
    } else {
        Tok at = P->tok;
        name = expect_string(P, kind[0] == 'i' ? "the input's quoted name" : "the param's quoted name");
        if (!name || !check_leaf_name(P, sc, kind, name, &at) ||
            (kind[0] == 'p' && !parse_param_flags(P, &init, &role, &trainable)))
            return NULL;
    }
    DType t;
    Shape s;
    SrcLoc loc;
    if (!parse_type(P, &t, &s, NULL) || !parse_loc(P, &loc))
        return NULL;
    if (kind[0] != 'c') {
        Node *n = kind[0] == 'i' ? ir_input(g, name, t, s, loc)
                                 : ir_param(g, name, t, s, init, trainable, role, loc);
        map_put(kind[0] == 'i' ? &sc->inputs : &sc->params, n->a.name, n);
        return n;
    }
    Node *n = ir_const(g, t, value, loc);
    n->a.shape = n->shape = s;
    return n;
}

static bool parse_operands(Parser *P, const Scope *sc, Node ***in, int *nin)
{
    int cap = 0;
    *in = NULL;
    *nin = 0;
    if (!expect(P, '(', "before the operands"))
        return false;
    if (accept(P, ')'))
        return true;
    do {
        Node *x = parse_use(P, sc);
        if (!x)
            return false;
        VEC_PUSH(*in, *nin, cap, x);
    } while (accept(P, ','));
    return expect(P, ')', "after the operands");
}

static bool check_slice_rank(Parser *P, const Node *tmp, const AttrCtx *cx)
{
    if (!(cx->seen & TA_SLICE))
        return true;
    int want = ir_slice_rank(tmp);
    if (cx->nslice == want)
        return true;
    err_at(P, &cx->slice_tok, "slice has %d range%s but %s has rank %d", cx->nslice,
           cx->nslice == 1 ? "" : "s", tmp->op == OP_SLICE ? "the operand" : "the result shape", want);
    return false;
}

/* Infer the type of a node under construction (reporting at the text
 * position `at`) and compare it with the printed type. */
static bool check_type(Parser *P, Node *tmp, const Tok *at, const Tok *type_tok, DType t, const Shape *s)
{
    tmp->loc = tok_loc(P, at);
    int before = P->d->nerrors;
    if (!ir_infer(tmp, P->d)) {
        if (P->d->nerrors == before)
            err_at(P, at, "%s: invalid operands or attributes", ir_ops[tmp->op].name);
        P->failed = true;
        return false;
    }
    if (tmp->dt == t && ir_shape_eq(&tmp->shape, s))
        return true;
    char want[160], got[160];
    put_type(want, t, s);
    put_type(got, tmp->dt, &tmp->shape);
    err_at(P, type_tok, "type mismatch: the text says %s but %s infers %s", want, ir_ops[tmp->op].name, got);
    return false;
}

static bool parse_items(Parser *P, Graph *g, Scope *sc, bool top);

/* body := '{' item* '}' for a fused or loop node; checks inputs against
 * the operands (a loop's sequences one step each). */
static Graph *parse_body(Parser *P, Node *tmp, const Tok *at)
{
    bool loop = tmp->op == OP_LOOP;
    const char *what = ir_ops[tmp->op].name;
    Tok open = P->tok;
    if (!expect(P, '{', loop ? "to start the loop body" : "to start the fused body"))
        return NULL;
    if (P->depth >= MAX_NESTING) {
        err_at(P, &open, "%s bodies nested more than %d deep", what, MAX_NESTING);
        return NULL;
    }
    Graph *body = ir_graph_new(what);
    Scope sc;
    scope_init(&sc);
    P->depth++;
    bool ok = parse_items(P, body, &sc, false);
    P->depth--;
    scope_free(&sc);
    Tok close = P->tok;
    ok = ok && expect(P, '}', loop ? "to end the loop body" : "to end the fused body");
    if (ok && body->nouts < 1) {
        err_at(P, &close, "%s body has no output", what);
        ok = false;
    }
    tmp->sub = body;
    if (ok && loop && ir_loop_ncarry(tmp) < 1) {
        err_at(P, &close, "loop body has no update output (a carried state)");
        ok = false;
    }
    int k = 0;
    for (int i = 0; ok && i < body->nnodes; i++) {
        Node *b = body->nodes[i];
        if (b->op != OP_INPUT)
            continue;
        Shape want = k < tmp->nin ? ir_body_input_shape(tmp, k) : b->shape;
        if (k < tmp->nin && (b->dt != tmp->in[k]->dt || !ir_shape_eq(&b->shape, &want))) {
            char t1[160], t2[160];
            put_type(t1, b->dt, &b->shape);
            put_type(t2, tmp->in[k]->dt, &want);
            err_at(P, at, "%s body input %d is %s but operand %d %s %s", what, k, t1, k, loop ? "gives" : "is", t2);
            ok = false;
        }
        k++;
    }
    if (ok && k != tmp->nin) {
        err_at(P, at, "%s body has %d input%s but the node has %d operand%s", what, k, k == 1 ? "" : "s",
               tmp->nin, tmp->nin == 1 ? "" : "s");
        ok = false;
    }
    tmp->sub = NULL;
    if (!ok) {
        ir_graph_free(body);
        return NULL;
    }
    return body;
}

static Node *append_node(Graph *g, const Node *tmp, SrcLoc loc)
{
    Node *n = arena_alloc(g->arena, sizeof(Node));
    *n = *tmp;
    if (tmp->nin) {
        n->in = arena_alloc(g->arena, (size_t)tmp->nin * sizeof(Node *));
        memcpy(n->in, tmp->in, (size_t)tmp->nin * sizeof(Node *));
    }
    n->a.name = arena_strdup(g->arena, tmp->a.name);
    n->loc = loc;
    if (loc.file)
        n->loc.file = ir_intern_file(g, loc.file);
    n->id = g->nnodes;
    VEC_PUSH(g->nodes, g->nnodes, g->cap, n);
    return n;
}

/* OP '(' operands ')' attrs? ':' type loc? body? */
static Node *parse_op(Parser *P, Graph *g, const Scope *sc, Op op, const Tok *at)
{
    Node tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.op = op;
    tmp.a = ir_attrs();
    AttrCtx cx = {.seen = 0};
    Node **in = NULL;
    Node *n = NULL;
    DType t;
    Shape s;
    SrcLoc loc;
    if (!parse_operands(P, sc, &in, &tmp.nin))
        goto out;
    tmp.in = in;
    if (!parse_attrs(P, op, &tmp.a, &cx) || !check_slice_rank(P, &tmp, &cx))
        goto out;
    Tok type_tok;
    if (!parse_type(P, &t, &s, &type_tok) || !parse_loc(P, &loc))
        goto out;
    if ((op == OP_FUSED || op == OP_LOOP) && !(tmp.sub = parse_body(P, &tmp, at)))
        goto out;
    if (!check_type(P, &tmp, at, &type_tok, t, &s)) {
        ir_graph_free(tmp.sub);
        goto out;
    }
    n = append_node(g, &tmp, loc);
out:
    xfree(in);
    return n;
}

/* node := VALUE '=' rhs */
static bool parse_node(Parser *P, Graph *g, Scope *sc)
{
    Tok name = P->tok;
    if (scope_get(sc, name.s)) {
        err_at(P, &name, "redefinition of value '%%%s'", name.s);
        return false;
    }
    next(P);
    if (!expect(P, '=', "after the value name"))
        return false;
    Tok optok = P->tok;
    const char *opname = expect_ident(P, "an op name");
    if (!opname)
        return false;
    int op = ir_op_from_name(opname);
    if (op < 0) {
        err_at(P, &optok, "unknown op '%s'", opname);
        return false;
    }
    Node *n = ir_ops[op].cls == OPC_LEAF ? parse_leaf(P, g, sc, opname) : parse_op(P, g, sc, (Op)op, &optok);
    if (!n)
        return false;
    if (n->op != OP_INPUT && n->op != OP_PARAM)
        n->label = restore_label(P, sc, g, name.s);
    scope_put(sc, name.s, n);
    remember_pos(P, n, &optok);
    return true;
}

/* ---- outputs ---- */

static bool check_output(Parser *P, const Tok *at, OutKind k, Node *val, Node *target)
{
    char t1[160], t2[160];
    if ((k == OUT_GRAD || k == OUT_UPDATE) && !target) {
        err_at(P, at, "%s output needs '%s %%target'", ir_out_kind_names[k], k == OUT_GRAD ? "wrt" : "of");
        return false;
    }
    if (target && (k == OUT_GRAD || k == OUT_UPDATE) && target->op != OP_PARAM && target->op != OP_INPUT) {
        err_at(P, at, "the target of a %s output must be a param or input, not %s", ir_out_kind_names[k],
               ir_ops[target->op].name);
        return false;
    }
    if (target && (k == OUT_GRAD || k == OUT_UPDATE) &&
        (target->dt != val->dt || !ir_shape_eq(&target->shape, &val->shape))) {
        put_type(t1, val->dt, &val->shape);
        put_type(t2, target->dt, &target->shape);
        err_at(P, at, "%s output is %s but its target is %s", ir_out_kind_names[k], t1, t2);
        return false;
    }
    if (k == OUT_LOSS && P->loss_line) {
        err_at(P, at, "a graph has at most one loss output; the first is on line %d", P->loss_line);
        return false;
    }
    return true;
}

static bool parse_output(Parser *P, Graph *g, const Scope *sc, bool top)
{
    Tok at = P->tok;
    next(P);
    OutKind k = OUT_VALUE;
    const char *name = NULL;
    if (P->tok.kind != T_VALUE) {
        Tok kt = P->tok;
        const char *ks = expect_ident(P, "an output kind or value");
        if (!ks)
            return false;
        int ki = ir_keyword_index(ir_out_kind_names, 5, ks);
        if (ki < 0) {
            err_at(P, &kt, "unknown output kind '%s' (expected loss, metric, value, grad or update)", ks);
            return false;
        }
        k = (OutKind)ki;
        if (P->tok.kind == T_STR) {
            name = P->tok.s;
            next(P);
        }
        if (!expect(P, '=', "before the output value"))
            return false;
    }
    Node *val = parse_use(P, sc), *target = NULL;
    if (!val)
        return false;
    int64_t part = 0;
    if (is_ident(P, "result")) {
        Tok rt = P->tok;
        next(P);
        if (!parse_int(P, 1, 64, "a side result index", &part))
            return false;
        if (val->op != OP_FUSED || !val->sub || part >= val->sub->nouts) {
            err_at(P, &rt, "%s has no side result %lld", val->op == OP_FUSED ? "this fused node" : "a value that is not fused",
                   (long long)part);
            return false;
        }
    }
    if (is_ident(P, "wrt") || is_ident(P, "of")) {
        next(P);
        if (!(target = parse_use(P, sc)))
            return false;
    }
    bool train_only = is_ident(P, "train_only");
    if (train_only)
        next(P);
    if (!check_output(P, &at, k, val, target))
        return false;
    if (k == OUT_LOSS && top)
        P->loss_line = at.line;
    ir_add_output(g, k, name, val, target, train_only);
    g->outs[g->nouts - 1].part = (int)part;
    return true;
}

/* ---- the train block ---- */

static bool parse_name_list(Parser *P, Graph *g, TrainConfig *t)
{
    const char *v[256];
    int n = 0;
    if (!expect(P, '[', "to start the freeze list"))
        return false;
    if (!is_punct(P, ']')) {
        do {
            if (n == ARRAY_LEN(v)) {
                err_at(P, &P->tok, "too many freeze patterns");
                return false;
            }
            if (!(v[n++] = expect_string(P, "a quoted name pattern")))
                return false;
        } while (accept(P, ','));
    }
    if (!expect(P, ']', "to end the freeze list"))
        return false;
    t->nfreeze = n;
    t->freeze = arena_alloc(g->arena, (size_t)(n ? n : 1) * sizeof(char *));
    for (int i = 0; i < n; i++)
        t->freeze[i] = arena_strdup(g->arena, v[i]);
    return true;
}

static bool parse_keyword(Parser *P, const char *const *tab, int n, const char *what, int *out)
{
    Tok t = P->tok;
    const char *s = expect_ident(P, what);
    if (!s)
        return false;
    *out = ir_keyword_index(tab, n, s);
    if (*out < 0)
        err_at(P, &t, "unknown %s '%s'", what, s);
    return *out >= 0;
}

typedef enum { TF_DOUBLE, TF_INT, TF_BOOL, TF_OPT, TF_SCHED, TF_SEED, TF_FREEZE, TF_STR, TF_MODE } TrainFieldKind;

/* The settings of a train block and where they live: in the graph's
 * TrainConfig (the update rule) or in the RunSettings beside it. */
static const struct {
    const char *name;
    TrainFieldKind kind;
    bool run; /* a RunSettings field */
    size_t off;
} train_fields[] = {
    {"optimizer", TF_OPT, false, offsetof(TrainConfig, opt)},
    {"lr", TF_DOUBLE, false, offsetof(TrainConfig, lr)},
    {"momentum", TF_DOUBLE, false, offsetof(TrainConfig, momentum)},
    {"nesterov", TF_BOOL, false, offsetof(TrainConfig, nesterov)},
    {"beta1", TF_DOUBLE, false, offsetof(TrainConfig, beta1)},
    {"beta2", TF_DOUBLE, false, offsetof(TrainConfig, beta2)},
    {"eps", TF_DOUBLE, false, offsetof(TrainConfig, eps)},
    {"rho", TF_DOUBLE, false, offsetof(TrainConfig, rho)},
    {"batch", TF_INT, true, offsetof(RunSettings, batch)},
    {"epochs", TF_INT, true, offsetof(RunSettings, epochs)},
    {"clip_value", TF_DOUBLE, false, offsetof(TrainConfig, clip_value)},
    {"clip_norm", TF_DOUBLE, false, offsetof(TrainConfig, clip_norm)},
    {"weight_decay", TF_DOUBLE, false, offsetof(TrainConfig, weight_decay)},
    {"schedule", TF_SCHED, true, offsetof(RunSettings, sched)},
    {"sched_step", TF_INT, true, offsetof(RunSettings, sched_step)},
    {"sched_gamma", TF_DOUBLE, true, offsetof(RunSettings, sched_gamma)},
    {"decay_steps", TF_INT, true, offsetof(RunSettings, decay_steps)},
    {"decay_rate", TF_DOUBLE, true, offsetof(RunSettings, decay_rate)},
    {"staircase", TF_BOOL, true, offsetof(RunSettings, staircase)},
    {"warmup", TF_INT, true, offsetof(RunSettings, warmup)},
    {"seed", TF_SEED, true, offsetof(RunSettings, seed)},
    {"freeze", TF_FREEZE, false, offsetof(TrainConfig, freeze)},
    {"es_monitor", TF_STR, true, offsetof(RunSettings, es.monitor)},
    {"es_min_delta", TF_DOUBLE, true, offsetof(RunSettings, es.min_delta)},
    {"es_patience", TF_INT, true, offsetof(RunSettings, es.patience)},
    {"es_mode", TF_MODE, true, offsetof(RunSettings, es.mode)},
    {"es_restore_best", TF_BOOL, true, offsetof(RunSettings, es.restore_best)},
    {"ckpt_path", TF_STR, true, offsetof(RunSettings, ckpt.path)},
    {"ckpt_monitor", TF_STR, true, offsetof(RunSettings, ckpt.monitor)},
    {"ckpt_best_only", TF_BOOL, true, offsetof(RunSettings, ckpt.best_only)},
    {"ckpt_mode", TF_MODE, true, offsetof(RunSettings, ckpt.mode)},
    {"rlr_monitor", TF_STR, true, offsetof(RunSettings, rlr.monitor)},
    {"rlr_factor", TF_DOUBLE, true, offsetof(RunSettings, rlr.factor)},
    {"rlr_patience", TF_INT, true, offsetof(RunSettings, rlr.patience)},
    {"rlr_mode", TF_MODE, true, offsetof(RunSettings, rlr.mode)},
    {"rlr_min_delta", TF_DOUBLE, true, offsetof(RunSettings, rlr.min_delta)},
    {"rlr_cooldown", TF_INT, true, offsetof(RunSettings, rlr.cooldown)},
    {"rlr_min_lr", TF_DOUBLE, true, offsetof(RunSettings, rlr.min_lr)},
};
_Static_assert(ARRAY_LEN(train_fields) <= 64, "parse_train's seen mask");

static bool parse_seed(Parser *P, uint64_t *seed)
{
    if (P->tok.kind == T_NUM && P->tok.s[0] != '-') {
        char *end;
        errno = 0;
        unsigned long long u = strtoull(P->tok.s, &end, 10);
        if (!*end && errno != ERANGE) {
            *seed = u;
            next(P);
            return true;
        }
    }
    err_at(P, &P->tok, "expected a seed (an unsigned 64-bit integer), got %s", tok_desc(P, &P->tok));
    return false;
}

static bool parse_train_value(Parser *P, Graph *g, int key)
{
    void *field = (char *)(train_fields[key].run ? (void *)P->run : (void *)&g->train) + train_fields[key].off;
    const char *name = train_fields[key].name;
    int e;
    switch (train_fields[key].kind) {
    case TF_DOUBLE:
        return parse_double(P, field);
    case TF_INT:
        return parse_small_int(P, INT_MIN, name, field);
    case TF_BOOL:
        return parse_bool(P, field);
    case TF_OPT:
        return parse_keyword(P, ir_opt_names, 3, name, &e) && (g->train.opt = (OptKind)e, true);
    case TF_SCHED:
        return parse_keyword(P, ir_sched_names, 4, name, &e) && (P->run->sched = (SchedKind)e, true);
    case TF_MODE:
        return parse_keyword(P, ir_monitor_mode_names, 3, name, &e) && (*(MonitorMode *)field = (MonitorMode)e, true);
    case TF_STR: {
        const char *s = expect_string(P, "a quoted string");
        return s && (*(const char **)field = arena_strdup(g->arena, s), true);
    }
    case TF_SEED:
        return parse_seed(P, field);
    case TF_FREEZE:
        return parse_name_list(P, g, &g->train);
    }
    ICE("bad train field kind");
}

static bool parse_train(Parser *P, Graph *g, bool top)
{
    Tok at = P->tok;
    if (!top) {
        err_at(P, &at, "a train block is only allowed at the top level of a graph");
        return false;
    }
    if (g->has_train) {
        err_at(P, &at, "duplicate train block");
        return false;
    }
    g->has_train = true;
    next(P);
    if (!expect(P, '{', "after 'train'"))
        return false;
    unsigned long long seen = 0;
    while (!P->failed && !is_punct(P, '}')) {
        Tok kt = P->tok;
        const char *k = expect_ident(P, "a train setting or '}'");
        if (!k)
            return false;
        int i = -1;
        for (int j = 0; j < ARRAY_LEN(train_fields); j++)
            if (strcmp(train_fields[j].name, k) == 0)
                i = j;
        if (i < 0) {
            err_at(P, &kt, "unknown train setting '%s'", k);
            return false;
        }
        if (seen & (1ull << i)) {
            err_at(P, &kt, "duplicate train setting '%s'", k);
            return false;
        }
        seen |= 1ull << i;
        if (!expect(P, '=', "after the train setting") || !parse_train_value(P, g, i))
            return false;
        accept(P, ',');
    }
    return expect(P, '}', "to end the train block");
}

/* ---- graphs ---- */

static bool parse_items(Parser *P, Graph *g, Scope *sc, bool top)
{
    while (!P->failed && !is_punct(P, '}') && P->tok.kind != T_EOF) {
        bool ok;
        if (P->tok.kind == T_VALUE)
            ok = parse_node(P, g, sc);
        else if (is_ident(P, "output"))
            ok = parse_output(P, g, sc, top);
        else if (is_ident(P, "train"))
            ok = parse_train(P, g, top);
        else {
            err_at(P, &P->tok, "expected a value definition, 'output' or '}', got %s", tok_desc(P, &P->tok));
            ok = false;
        }
        if (!ok)
            return false;
    }
    return !P->failed;
}

static void finish_streams(Graph *g)
{
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i]->op == OP_DROPOUT_MASK && g->nodes[i]->a.stream >= g->next_stream &&
            g->nodes[i]->a.stream < UINT32_MAX)
            g->next_stream = g->nodes[i]->a.stream + 1;
}

/* Run the verifier with each node located at its definition in the text. */
static bool verify_at_text(Parser *P, Graph *g)
{
    SrcLoc *saved = xmalloc((size_t)(P->npos ? P->npos : 1) * sizeof(SrcLoc));
    for (int i = 0; i < P->npos; i++) {
        saved[i] = P->pos[i].n->loc;
        P->pos[i].n->loc = P->pos[i].text;
    }
    bool ok = ir_verify(g, P->d);
    for (int i = 0; i < P->npos; i++)
        P->pos[i].n->loc = saved[i];
    xfree(saved);
    return ok;
}

static Graph *parse_graph(Parser *P)
{
    if (!is_ident(P, "graph")) {
        err_at(P, &P->tok, "expected 'graph' at the start of IR text, got %s", tok_desc(P, &P->tok));
        return NULL;
    }
    next(P);
    const char *name;
    if (P->tok.kind == T_STR) {
        name = P->tok.s;
        next(P);
    } else if (!(name = expect_ident(P, "a graph name"))) {
        return NULL;
    }
    if (!expect(P, '{', "after the graph name"))
        return NULL;
    Graph *g = ir_graph_new(name);
    Scope sc;
    scope_init(&sc);
    bool ok = parse_items(P, g, &sc, true);
    scope_free(&sc);
    ok = ok && expect(P, '}', "to end the graph");
    if (ok && P->tok.kind != T_EOF) {
        err_at(P, &P->tok, "expected end of file after the graph, got %s", tok_desc(P, &P->tok));
        ok = false;
    }
    if (ok) {
        finish_streams(g);
        ok = verify_at_text(P, g);
    }
    if (!ok) {
        ir_graph_free(g);
        return NULL;
    }
    return g;
}

Graph *ir_parse(const char *file, const char *text, size_t len, Diags *d)
{
    RunSettings run;
    return ir_parse_model(file, text, len, &run, d);
}

Graph *ir_parse_model(const char *file, const char *text, size_t len, RunSettings *run, Diags *d)
{
    Parser P;
    memset(&P, 0, sizeof P);
    ir_run_defaults(run);
    P.run = run;
    P.file = diags_intern_file(d, file ? file : "<ir>");
    P.cur = P.bol = text;
    P.end = text + len;
    P.line = 1;
    P.d = d;
    P.scratch = arena_new();
    next(&P);
    Graph *g = parse_graph(&P);
    arena_free(P.scratch);
    xfree(P.pos);
    return g;
}
