/* The lexer of the model language: identifiers (dotted names such as
 * dense.kernel), integer and float literals, strings, operators, newlines
 * as statement ends and `#` comments. Errors are reported and skipped so
 * one run reports every lexical problem. */
#include "fe.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct Lexer {
    const char *file, *p, *end, *line_start;
    int line;
    Arena *a;
    Diags *d;
    TokList *out;
    int nerr;
} Lexer;

static const char *tok_names[T_COUNT] = {
    [T_EOF] = "end of file",  [T_NEWLINE] = "end of line", [T_IDENT] = "identifier",
    [T_INT] = "integer",      [T_FLOAT] = "number",        [T_STRING] = "string",
    [T_LPAREN] = "'('",       [T_RPAREN] = "')'",          [T_LBRACK] = "'['",
    [T_RBRACK] = "']'",       [T_LBRACE] = "'{'",          [T_RBRACE] = "'}'",
    [T_COMMA] = "','",        [T_COLON] = "':'",           [T_SEMI] = "';'",
    [T_ASSIGN] = "'='",       [T_PLUS] = "'+'",            [T_MINUS] = "'-'",
    [T_STAR] = "'*'",         [T_SLASH] = "'/'",           [T_POW] = "'**'",
    [T_AT] = "'@'",           [T_LT] = "'<'",              [T_GT] = "'>'",
    [T_LE] = "'<='",          [T_GE] = "'>='",             [T_EQ] = "'=='",
    [T_NE] = "'!='",
};

const char *fe_tok_name(TokKind k)
{
    return k < T_COUNT ? tok_names[k] : "?";
}

static SrcLoc loc_at(Lexer *L, const char *p)
{
    SrcLoc s = {L->file, L->line, (int)(p - L->line_start) + 1};
    return s;
}

static void lex_error(Lexer *L, const char *at, int span, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void lex_error(Lexer *L, const char *at, int span, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_add(L->d, DIAG_ERROR, loc_at(L, at), span, fmt, ap);
    va_end(ap);
    L->nerr++;
    TokList *o = L->out;
    if (!o->nbad || o->bad_lines[o->nbad - 1] != L->line)
        VEC_PUSH(o->bad_lines, o->nbad, o->capbad, L->line);
}

static Token *push(Lexer *L, TokKind k, const char *start, int len)
{
    Token t;
    memset(&t, 0, sizeof t);
    t.k = k;
    t.loc = loc_at(L, start);
    t.text = start;
    t.len = len;
    VEC_PUSH(L->out->v, L->out->n, L->out->cap, t);
    return &L->out->v[L->out->n - 1];
}

static bool ident_start(int c)
{
    return isalpha(c) || c == '_';
}

static bool ident_char(int c)
{
    return isalnum(c) || c == '_';
}

/* IDENT ::= [A-Za-z_][A-Za-z0-9_]* ('.' [A-Za-z_][A-Za-z0-9_]*)* */
static void lex_ident(Lexer *L)
{
    const char *s = L->p;
    while (L->p < L->end && ident_char((unsigned char)*L->p))
        L->p++;
    while (L->p + 1 < L->end && L->p[0] == '.' && ident_start((unsigned char)L->p[1])) {
        L->p++;
        while (L->p < L->end && ident_char((unsigned char)*L->p))
            L->p++;
    }
    Token *t = push(L, T_IDENT, s, (int)(L->p - s));
    t->str = arena_strndup(L->a, s, (size_t)(L->p - s));
}

/* Length of a well-formed number at s (digits [. digits] [e [+-] digits]
 * or . digits), 0 if malformed; *is_float set when it has '.' or 'e'. */
static size_t number_len(const char *s, const char *end, bool *is_float)
{
    const char *p = s;
    size_t nd = 0;
    *is_float = false;
    while (p < end && isdigit((unsigned char)*p))
        p++, nd++;
    if (p < end && *p == '.') {
        *is_float = true;
        p++;
        while (p < end && isdigit((unsigned char)*p))
            p++, nd++;
    }
    if (nd == 0)
        return 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        *is_float = true;
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || !isdigit((unsigned char)*p))
            return 0;
        while (p < end && isdigit((unsigned char)*p))
            p++;
    }
    return (size_t)(p - s);
}

/* The extent of a number-like run: what a user would see as one word. */
static const char *number_run(const char *p, const char *end)
{
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        if (isalnum(c) || c == '_' || c == '.')
            p++;
        else if ((c == '+' || c == '-') && (p[-1] == 'e' || p[-1] == 'E') && p + 1 < end &&
                 isdigit((unsigned char)p[1]))
            p++;
        else
            break;
    }
    return p;
}

static void lex_number(Lexer *L)
{
    const char *s = L->p, *e = number_run(s, L->end);
    int span = (int)(e - s);
    bool is_float;
    size_t n = number_len(s, L->end, &is_float);
    L->p = e;
    Token *t = push(L, is_float ? T_FLOAT : T_INT, s, span);
    if (n != (size_t)span) {
        lex_error(L, s, span, "invalid number '%.*s'", span, s);
        t->k = T_FLOAT;
        return;
    }
    char buf[512];
    if (n >= sizeof buf) {
        lex_error(L, s, span, "number is too long");
        return;
    }
    memcpy(buf, s, n);
    buf[n] = 0;
    if (!is_float) {
        int64_t v = 0;
        for (size_t i = 0; i < n; i++) {
            if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, buf[i] - '0', &v)) {
                lex_error(L, s, span, "integer literal %s is too large (the limit is %lld)", buf,
                          (long long)INT64_MAX);
                t->k = T_FLOAT;
                v = 0;
                break;
            }
        }
        t->ival = v;
        t->num = (double)v;
        return;
    }
    errno = 0;
    t->num = strtod(buf, NULL);
    if (isinf(t->num)) {
        lex_error(L, s, span, "number %s is out of range", buf);
        t->num = 0;
    }
}

static int escape_char(char c)
{
    switch (c) {
    case 'n':
        return '\n';
    case 't':
        return '\t';
    case '\\':
    case '"':
    case '\'':
        return c;
    default:
        return -1;
    }
}

/* STRING ::= '"' chars '"' | "'" chars "'" ; no newlines inside */
static void lex_string(Lexer *L)
{
    const char *s = L->p;
    char q = *L->p++;
    StrBuf b;
    sb_init(&b);
    bool closed = false;
    while (L->p < L->end && *L->p != '\n' && *L->p != '\r') {
        char c = *L->p++;
        if (c == q) {
            closed = true;
            break;
        }
        if (c == '\\' && L->p < L->end && *L->p != '\n') {
            int e = escape_char(*L->p);
            if (e < 0)
                lex_error(L, L->p - 1, 2, "unknown escape sequence '\\%c' in string", *L->p);
            else
                sb_putc(&b, (char)e);
            L->p++;
            continue;
        }
        sb_putc(&b, c);
    }
    if (!closed)
        lex_error(L, s, 1, "unterminated string");
    Token *t = push(L, T_STRING, s, (int)(L->p - s));
    t->str = arena_strndup(L->a, b.s ? b.s : "", b.len);
    sb_free(&b);
}

typedef struct Punct {
    const char *text;
    TokKind k;
} Punct;

/* Longest match first. */
static const Punct puncts[] = {
    {"**", T_POW}, {"<=", T_LE},     {">=", T_GE},     {"==", T_EQ},    {"!=", T_NE},
    {"(", T_LPAREN}, {")", T_RPAREN}, {"[", T_LBRACK}, {"]", T_RBRACK}, {"{", T_LBRACE},
    {"}", T_RBRACE}, {",", T_COMMA},  {":", T_COLON},  {";", T_SEMI},   {"=", T_ASSIGN},
    {"+", T_PLUS},   {"-", T_MINUS},  {"*", T_STAR},   {"/", T_SLASH},  {"@", T_AT},
    {"<", T_LT},     {">", T_GT},
};

static bool lex_punct(Lexer *L)
{
    for (int i = 0; i < ARRAY_LEN(puncts); i++) {
        size_t n = strlen(puncts[i].text);
        if ((size_t)(L->end - L->p) >= n && memcmp(L->p, puncts[i].text, n) == 0) {
            push(L, puncts[i].k, L->p, (int)n);
            L->p += n;
            return true;
        }
    }
    return false;
}

static void bad_char(Lexer *L)
{
    unsigned char c = (unsigned char)*L->p;
    if (c >= 0x80) {
        const char *s = L->p++;
        while (L->p < L->end && ((unsigned char)*L->p & 0xC0) == 0x80)
            L->p++;
        lex_error(L, s, 1, "unexpected non-ASCII character '%.*s'", (int)(L->p - s), s);
        return;
    }
    if (isprint(c))
        lex_error(L, L->p, 1, "unexpected character '%c'", c);
    else
        lex_error(L, L->p, 1, "unexpected character 0x%02x", c);
    L->p++;
}

static void newline(Lexer *L)
{
    push(L, T_NEWLINE, L->p, 1);
    L->p++;
    L->line++;
    L->line_start = L->p;
}

static void lex_one(Lexer *L)
{
    unsigned char c = (unsigned char)*L->p;
    if (c == '\n') {
        newline(L);
    } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
        L->p++;
    } else if (c == '#') {
        while (L->p < L->end && *L->p != '\n')
            L->p++;
    } else if (ident_start(c)) {
        lex_ident(L);
    } else if (isdigit(c) || (c == '.' && L->p + 1 < L->end && isdigit((unsigned char)L->p[1]))) {
        lex_number(L);
    } else if (c == '"' || c == '\'') {
        lex_string(L);
    } else if (!lex_punct(L)) {
        bad_char(L);
    }
}

int fe_lex(const char *file, const char *text, size_t len, Arena *a, Diags *d, TokList *out)
{
    Lexer L = {file, text, text + len, text, 1, a, d, out, 0};
    memset(out, 0, sizeof *out);
    while (L.p < L.end)
        lex_one(&L);
    push(&L, T_EOF, L.p, 1);
    return L.nerr;
}
