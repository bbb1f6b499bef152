/* Recursive-descent parser of the model language into an arena AST.
 * Statements end at a newline or ';' (newlines inside (...) and [...] are
 * ignored); after a syntax error the parser skips to the next statement
 * so several errors are reported per run. The grammar is in
 * docs/language.md; each function below names the rule it parses. */
#include "fe.h"

#include <stdlib.h>
#include <string.h>

typedef struct Parser {
    const TokList *t;
    int i;
    Arena *a;
    Diags *d;
    int nparen; /* open ( and [: newlines are skipped inside */
    int depth;
    bool err;   /* an error in the current statement */
    bool fatal; /* stop parsing (nesting limit, too many errors) */
    int err_tok;
    int nerr;
    bool quiet; /* the current error was not reported: neither are its notes */
    const int *bad_lines; /* lines with lexical errors: already reported */
    int nbad;
} Parser;

static const char *const keywords[] = {"model", "input", "param", "metric", "output", "train"};

/* ---- token access ---- */

static Token *tok_at(Parser *p, int i)
{
    return &p->t->v[i < p->t->n ? i : p->t->n - 1];
}

static Token *peek(Parser *p)
{
    if (p->nparen > 0)
        while (tok_at(p, p->i)->k == T_NEWLINE)
            p->i++;
    return tok_at(p, p->i);
}

static Token *peek2(Parser *p)
{
    peek(p);
    int j = p->i + 1;
    if (p->nparen > 0)
        while (tok_at(p, j)->k == T_NEWLINE)
            j++;
    return tok_at(p, j);
}

static Token *next(Parser *p)
{
    Token *t = peek(p);
    if (t->k != T_EOF)
        p->i++;
    return t;
}

static bool at(Parser *p, TokKind k)
{
    return peek(p)->k == k;
}

static bool accept(Parser *p, TokKind k)
{
    if (!at(p, k))
        return false;
    next(p);
    return true;
}

static bool is_word(const Token *t, const char *w)
{
    return t->k == T_IDENT && strcmp(t->str, w) == 0;
}

/* A short description of a token for messages: "'foo'", "end of line". */
static const char *describe(Parser *p, const Token *t)
{
    switch (t->k) {
    case T_IDENT:
    case T_INT:
    case T_FLOAT:
        return arena_printf(p->a, "'%.*s'", t->len > 40 ? 40 : t->len, t->text);
    case T_STRING:
        return "a string";
    default:
        return fe_tok_name(t->k);
    }
}

/* ---- errors ---- */

static void perr(Parser *p, SrcLoc loc, int span, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static bool on_bad_line(const Parser *p, int line)
{
    for (int i = 0; i < p->nbad; i++)
        if (p->bad_lines[i] == line)
            return true;
    return false;
}

static void perr(Parser *p, SrcLoc loc, int span, const char *fmt, ...)
{
    if (p->err)
        return;
    p->quiet = false;
    if (on_bad_line(p, loc.line) || on_bad_line(p, tok_at(p, p->i)->loc.line)) {
        p->quiet = true;
        p->err = true;
        p->err_tok = p->i;
        p->nerr++;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    diag_add(p->d, DIAG_ERROR, loc, span, fmt, ap);
    va_end(ap);
    p->err = true;
    p->err_tok = p->i;
    p->nerr++;
}

static void perr_tok(Parser *p, Token *t, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void perr_tok(Parser *p, Token *t, const char *fmt, ...)
{
    if (p->err)
        return;
    StrBuf b;
    sb_init(&b);
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&b, fmt, ap);
    va_end(ap);
    perr(p, t->loc, t->k == T_NEWLINE || t->k == T_EOF ? 1 : t->len, "%s", b.s ? b.s : "");
    sb_free(&b);
}

static void note(Parser *p, SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void note(Parser *p, SrcLoc loc, const char *fmt, ...)
{
    if (p->quiet || (p->d->max_errors > 0 && p->d->nerrors > p->d->max_errors))
        return; /* its error was not recorded */
    va_list ap;
    va_start(ap, fmt);
    diag_add(p->d, DIAG_NOTE, loc, 1, fmt, ap);
    va_end(ap);
}

static bool expect(Parser *p, TokKind k, const char *context)
{
    if (accept(p, k))
        return true;
    Token *t = peek(p);
    perr_tok(p, t, "expected %s%s, found %s", fe_tok_name(k), context, describe(p, t));
    return false;
}

/* Closing bracket of a list opened at `open`: if the line ended first,
 * the bracket was never closed; point at it. */
static bool expect_close(Parser *p, TokKind k, const Token *open, const char *what)
{
    if (accept(p, k))
        return true;
    if (p->err)
        return false;
    Token *t = peek(p);
    bool newline_before = p->i > 0 && tok_at(p, p->i - 1)->k == T_NEWLINE;
    if (newline_before || t->k == T_EOF) {
        perr(p, open->loc, 1, "%s is never closed", fe_tok_name(open->k));
        p->err_tok = p->i;
        return false;
    }
    perr_tok(p, t, "expected %s, found %s", what, describe(p, t));
    note(p, open->loc, "to match this %s", fe_tok_name(open->k));
    return false;
}

/* ---- AST construction ---- */

static Expr *new_expr(Parser *p, ExprKind k, const Token *t)
{
    Expr *e = arena_alloc(p->a, sizeof(Expr));
    e->k = k;
    e->loc = t->loc;
    e->start = t->loc;
    e->span = t->len > 0 ? t->len : 1;
    e->depth = 1;
    return e;
}

/* Two depths are bounded, each checked before it grows: the parser's
 * recursion (p->depth, by enter() before every recursive call) and the
 * depth of the tree it builds (e->depth, which the recursive passes over
 * the AST follow), also for left-associative chains that the parser
 * builds in a loop. Either limit stops the parse with an error at the
 * token that would go deeper. */
static bool too_deep(Parser *p, const Token *t)
{
    perr(p, t->loc, 1, "expression nested too deeply (more than %d levels)", FE_MAX_DEPTH);
    p->fatal = true;
    return false;
}

static bool check_depth(Parser *p, Expr *e, const Token *t)
{
    return e->depth <= FE_MAX_DEPTH || too_deep(p, t);
}

/* Before parsing the right operand of `left op ...`: would the new node be
 * too deep? */
static bool can_extend(Parser *p, const Expr *left, const Token *op)
{
    return left->depth + 1 <= FE_MAX_DEPTH || too_deep(p, op);
}

static int max_depth(const Expr *a, const Expr *b)
{
    int x = a ? a->depth : 0, y = b ? b->depth : 0;
    return x > y ? x : y;
}

static Expr *parse_expr(Parser *p);
static Expr *parse_unary(Parser *p);

/* Called before each recursive descent; leave() after it returns. */
static bool enter(Parser *p, const Token *t)
{
    return ++p->depth <= FE_MAX_DEPTH || too_deep(p, t);
}

static void leave(Parser *p)
{
    p->depth--;
}

/* args ::= '(' [arg {',' arg} [',']] ')' ;  arg ::= IDENT '=' expr | expr */
static bool parse_args(Parser *p, Expr *call, const Token *open)
{
    Arg *v = NULL;
    int n = 0, cap = 0;
    bool ok = true, seen_kw = false;
    p->nparen++;
    while (!at(p, T_RPAREN) && !at(p, T_EOF)) {
        Arg a;
        memset(&a, 0, sizeof a);
        Token *t = peek(p);
        if (t->k == T_IDENT && peek2(p)->k == T_ASSIGN) {
            a.kw = t->str;
            a.kwloc = t->loc;
            a.kwspan = t->len;
            next(p);
            next(p);
            seen_kw = true;
        } else if (seen_kw) {
            perr_tok(p, t, "positional argument after keyword argument");
            ok = false;
            break;
        }
        a.val = parse_expr(p);
        if (!a.val) {
            ok = false;
            break;
        }
        VEC_PUSH(v, n, cap, a);
        if (!accept(p, T_COMMA))
            break;
    }
    if (ok)
        ok = expect_close(p, T_RPAREN, open, "',' or ')'");
    if (ok)
        call->close = tok_at(p, p->i - 1)->loc;
    p->nparen--;
    if (n) {
        call->args = arena_alloc(p->a, (size_t)n * sizeof(Arg));
        memcpy(call->args, v, (size_t)n * sizeof(Arg));
    }
    call->nargs = n;
    for (int i = 0; i < n; i++)
        if (call->depth < v[i].val->depth + 1)
            call->depth = v[i].val->depth + 1;
    xfree(v);
    return ok;
}

/* list ::= '[' [expr {',' expr} [',']] ']' */
static Expr *parse_list(Parser *p)
{
    Token *open = next(p);
    Expr *e = new_expr(p, E_LIST, open);
    Expr **v = NULL;
    int n = 0, cap = 0;
    bool ok = true;
    p->nparen++;
    while (!at(p, T_RBRACK) && !at(p, T_EOF)) {
        Expr *x = parse_expr(p);
        if (!x) {
            ok = false;
            break;
        }
        VEC_PUSH(v, n, cap, x);
        if (e->depth < x->depth + 1)
            e->depth = x->depth + 1;
        if (!accept(p, T_COMMA))
            break;
    }
    if (ok)
        ok = expect_close(p, T_RBRACK, open, "',' or ']'");
    p->nparen--;
    if (n) {
        e->items = arena_alloc(p->a, (size_t)n * sizeof(Expr *));
        memcpy(e->items, v, (size_t)n * sizeof(Expr *));
    }
    e->nitems = n;
    xfree(v);
    return ok && check_depth(p, e, open) ? e : NULL;
}

/* tuple ::= '(' expr ',' [expr {',' expr} [',']] ')' : a list, as in
 * kernel_size=(3, 3). Called after the first expr; stops before ')'. */
static Expr *parse_tuple(Parser *p, const Token *open, Expr *first)
{
    Expr *e = new_expr(p, E_LIST, open);
    Expr **v = NULL;
    int n = 0, cap = 0;
    VEC_PUSH(v, n, cap, first);
    e->depth = first->depth + 1;
    while (accept(p, T_COMMA) && !at(p, T_RPAREN) && !at(p, T_EOF)) {
        Expr *x = parse_expr(p);
        if (!x) {
            xfree(v);
            return NULL;
        }
        VEC_PUSH(v, n, cap, x);
        if (e->depth < x->depth + 1)
            e->depth = x->depth + 1;
    }
    e->items = arena_alloc(p->a, (size_t)n * sizeof(Expr *));
    memcpy(e->items, v, (size_t)n * sizeof(Expr *));
    e->nitems = n;
    xfree(v);
    return check_depth(p, e, open) ? e : NULL;
}

/* primary ::= INT | FLOAT | STRING | 'true' | 'false' | 'none' | IDENT [args]
 *           | '(' expr ')' | tuple | list */
static Expr *parse_primary(Parser *p)
{
    Token *t = peek(p);
    Expr *e;
    switch (t->k) {
    case T_INT:
    case T_FLOAT:
        next(p);
        e = new_expr(p, E_NUM, t);
        e->num = t->num;
        e->ival = t->ival;
        e->is_int = t->k == T_INT;
        return e;
    case T_STRING:
        next(p);
        e = new_expr(p, E_STR, t);
        e->str = t->str;
        return e;
    case T_IDENT:
        next(p);
        if (is_word(t, "true") || is_word(t, "True") || is_word(t, "false") || is_word(t, "False")) {
            e = new_expr(p, E_BOOL, t);
            e->ival = t->str[0] == 't' || t->str[0] == 'T';
            return e;
        }
        if (is_word(t, "none") || is_word(t, "None"))
            return new_expr(p, E_NONE, t);
        if (at(p, T_LPAREN)) {
            Token *open = next(p);
            e = new_expr(p, E_CALL, t);
            e->str = t->str;
            return parse_args(p, e, open) && check_depth(p, e, open) ? e : NULL;
        }
        e = new_expr(p, E_NAME, t);
        e->str = t->str;
        return e;
    case T_LPAREN: {
        Token *open = next(p);
        p->nparen++;
        e = parse_expr(p);
        if (e && at(p, T_COMMA))
            e = parse_tuple(p, open, e);
        bool ok = e && expect_close(p, T_RPAREN, open, "',' or ')'");
        p->nparen--;
        return ok ? e : NULL;
    }
    case T_LBRACK:
        return parse_list(p);
    default:
        perr_tok(p, t, "expected an expression, found %s", describe(p, t));
        return NULL;
    }
}

/* subscript ::= expr | [expr] ':' [expr] [':' [expr]] */
static bool parse_subscript(Parser *p, Subscript *s)
{
    memset(s, 0, sizeof *s);
    s->loc = peek(p)->loc;
    if (!at(p, T_COLON)) {
        s->lo = parse_expr(p);
        if (!s->lo)
            return false;
    }
    if (!accept(p, T_COLON))
        return true;
    s->is_slice = true;
    if (!at(p, T_COLON) && !at(p, T_COMMA) && !at(p, T_RBRACK)) {
        s->hi = parse_expr(p);
        if (!s->hi)
            return false;
    }
    if (!accept(p, T_COLON))
        return true;
    if (!at(p, T_COMMA) && !at(p, T_RBRACK)) {
        s->step = parse_expr(p);
        if (!s->step)
            return false;
    }
    return true;
}

/* index ::= '[' subscript {',' subscript} [','] ']' */
static Expr *parse_index(Parser *p, Expr *base)
{
    Token *open = next(p);
    Expr *e = new_expr(p, E_INDEX, open);
    e->a = base;
    e->start = base->start;
    e->depth = base->depth + 1;
    Subscript *v = NULL;
    int n = 0, cap = 0;
    bool ok = true;
    p->nparen++;
    do {
        if (at(p, T_RBRACK))
            break;
        Subscript s;
        if (!parse_subscript(p, &s)) {
            ok = false;
            break;
        }
        VEC_PUSH(v, n, cap, s);
        Expr *parts[3] = {s.lo, s.hi, s.step};
        for (int k = 0; k < 3; k++)
            if (parts[k] && e->depth < parts[k]->depth + 1)
                e->depth = parts[k]->depth + 1;
    } while (accept(p, T_COMMA));
    if (ok && n == 0) {
        perr_tok(p, peek(p), "expected an index or a slice, found %s", describe(p, peek(p)));
        ok = false;
    }
    if (ok)
        ok = expect_close(p, T_RBRACK, open, "',' or ']'");
    p->nparen--;
    if (n) {
        e->subs = arena_alloc(p->a, (size_t)n * sizeof(Subscript));
        memcpy(e->subs, v, (size_t)n * sizeof(Subscript));
    }
    e->nsubs = n;
    xfree(v);
    return ok && check_depth(p, e, open) ? e : NULL;
}

/* postfix ::= primary {index} */
static Expr *parse_postfix(Parser *p)
{
    Expr *e = parse_primary(p);
    while (e && !p->err) {
        if (at(p, T_LBRACK)) {
            e = can_extend(p, e, peek(p)) ? parse_index(p, e) : NULL;
        } else if (at(p, T_LPAREN)) {
            perr_tok(p, peek(p), "only functions can be called; this is not a function name");
            return NULL;
        } else {
            break;
        }
    }
    return e;
}

static Expr *binary(Parser *p, Token *op, Expr *a, Expr *b)
{
    Expr *e = new_expr(p, E_BINARY, op);
    e->op = op->k;
    e->a = a;
    e->b = b;
    e->start = a->start;
    e->depth = max_depth(a, b) + 1;
    return check_depth(p, e, op) ? e : NULL;
}

/* power ::= postfix ['**' unary]   (right associative) */
static Expr *parse_power(Parser *p)
{
    Expr *e = parse_postfix(p);
    if (!e || !at(p, T_POW))
        return e;
    Token *op = next(p);
    if (!can_extend(p, e, op) || !enter(p, op))
        return NULL;
    Expr *r = parse_unary(p);
    leave(p);
    return r ? binary(p, op, e, r) : NULL;
}

/* unary ::= ('-' | '+') unary | power */
static Expr *parse_unary(Parser *p)
{
    Token *t = peek(p);
    if (t->k != T_MINUS && t->k != T_PLUS)
        return parse_power(p);
    next(p);
    if (!enter(p, t))
        return NULL;
    Expr *a = parse_unary(p);
    leave(p);
    if (!a)
        return NULL;
    if (t->k == T_PLUS)
        return a;
    Expr *e = new_expr(p, E_UNARY, t);
    e->op = T_MINUS;
    e->a = a;
    e->depth = a->depth + 1;
    return check_depth(p, e, t) ? e : NULL;
}

/* term ::= unary {('*' | '/' | '@') unary} */
static Expr *parse_term(Parser *p)
{
    Expr *e = parse_unary(p);
    while (e && (at(p, T_STAR) || at(p, T_SLASH) || at(p, T_AT))) {
        Token *op = next(p);
        if (!can_extend(p, e, op))
            return NULL;
        Expr *r = parse_unary(p);
        e = r ? binary(p, op, e, r) : NULL;
    }
    return e;
}

/* arith ::= term {('+' | '-') term} */
static Expr *parse_arith(Parser *p)
{
    Expr *e = parse_term(p);
    while (e && (at(p, T_PLUS) || at(p, T_MINUS))) {
        Token *op = next(p);
        if (!can_extend(p, e, op))
            return NULL;
        Expr *r = parse_term(p);
        e = r ? binary(p, op, e, r) : NULL;
    }
    return e;
}

static bool is_cmp(TokKind k)
{
    return k == T_LT || k == T_GT || k == T_LE || k == T_GE || k == T_EQ || k == T_NE;
}

/* expr ::= arith [('<' | '>' | '<=' | '>=' | '==' | '!=') arith] */
static Expr *parse_expr(Parser *p)
{
    Token *t = peek(p);
    if (!enter(p, t))
        return NULL;
    Expr *e = parse_arith(p);
    if (e && is_cmp(peek(p)->k)) {
        Token *op = next(p);
        if (!can_extend(p, e, op)) {
            leave(p);
            return NULL;
        }
        Expr *r = parse_arith(p);
        e = r ? binary(p, op, e, r) : NULL;
        if (e && is_cmp(peek(p)->k)) {
            perr_tok(p, peek(p), "comparisons cannot be chained; use parentheses");
            e = NULL;
        }
    }
    leave(p);
    return e;
}

/* ---- statements ---- */

static bool parse_name(Parser *p, Stmt *s, const char *what)
{
    Token *t = peek(p);
    if (t->k != T_IDENT) {
        perr_tok(p, t, "expected %s name, found %s", what, describe(p, t));
        return false;
    }
    next(p);
    s->name = t->str;
    s->nameloc = t->loc;
    s->namespan = t->len;
    return true;
}

/* type ::= DTYPE '[' [expr {',' expr} [',']] ']' */
static bool parse_type(Parser *p, TypeAst *ty)
{
    Token *t = peek(p);
    if (t->k != T_IDENT) {
        perr_tok(p, t, "expected a type such as f32[N, 10], found %s", describe(p, t));
        return false;
    }
    next(p);
    ty->dtype = t->str;
    ty->dtloc = t->loc;
    ty->dtspan = t->len;
    Token *open = peek(p);
    if (open->k != T_LBRACK) {
        perr_tok(p, open, "expected '[' and a shape after dtype '%s', found %s", t->str,
                 describe(p, open));
        return false;
    }
    next(p);
    ty->loc = open->loc;
    Expr **v = NULL;
    int n = 0, cap = 0;
    bool ok = true;
    p->nparen++;
    while (!at(p, T_RBRACK) && !at(p, T_EOF)) {
        Expr *x = parse_expr(p);
        if (!x) {
            ok = false;
            break;
        }
        VEC_PUSH(v, n, cap, x);
        if (!accept(p, T_COMMA))
            break;
    }
    if (ok)
        ok = expect_close(p, T_RBRACK, open, "',' or ']' in the shape");
    p->nparen--;
    if (n) {
        ty->dims = arena_alloc(p->a, (size_t)n * sizeof(Expr *));
        memcpy(ty->dims, v, (size_t)n * sizeof(Expr *));
    }
    ty->ndims = n;
    xfree(v);
    return ok;
}

/* input ::= 'input' IDENT ':' type */
static bool parse_input(Parser *p, Stmt *s)
{
    return parse_name(p, s, "an input") &&
           expect(p, T_COLON, arena_printf(p->a, " after '%s'", s->name)) &&
           parse_type(p, &s->type);
}

/* param ::= 'param' IDENT ':' type ['=' expr] {'frozen' | 'trainable' '=' expr} */
static bool parse_param(Parser *p, Stmt *s)
{
    if (!parse_name(p, s, "a parameter") ||
        !expect(p, T_COLON, arena_printf(p->a, " after '%s'", s->name)) || !parse_type(p, &s->type))
        return false;
    if (accept(p, T_ASSIGN) && !(s->init = parse_expr(p)))
        return false;
    for (;;) {
        Token *t = peek(p);
        if (is_word(t, "frozen")) {
            next(p);
            s->frozen = true;
            s->flagloc = t->loc;
        } else if (is_word(t, "trainable") && peek2(p)->k == T_ASSIGN) {
            next(p);
            next(p);
            s->flagloc = t->loc;
            if (!(s->trainable = parse_expr(p)))
                return false;
        } else {
            return true;
        }
    }
}

/* Resume after an error: at the error token when it starts a line (the
 * construct before it was cut short), else after the end of the line. */
static void skip_after_error(Parser *p, int start)
{
    p->nparen = 0;
    p->depth = 0;
    int j = p->err_tok;
    if (j > start && tok_at(p, j - 1)->k == T_NEWLINE) {
        p->i = j;
    } else {
        p->i = j > p->i ? j : p->i;
        while (!at(p, T_NEWLINE) && !at(p, T_SEMI) && !at(p, T_EOF))
            p->i++;
    }
    if (p->i <= start)
        p->i = start + 1;
    p->err = false;
}

static bool parse_train_item(Parser *p, TrainItem *it)
{
    Token *t = peek(p);
    if (t->k != T_IDENT) {
        perr_tok(p, t, "expected a setting such as 'epochs = 10', found %s", describe(p, t));
        return false;
    }
    next(p);
    it->key = t->str;
    it->loc = t->loc;
    it->span = t->len;
    if (!expect(p, T_ASSIGN, arena_printf(p->a, " after '%s'", t->str)) ||
        !(it->val = parse_expr(p)))
        return false;
    if (!at(p, T_NEWLINE) && !at(p, T_SEMI) && !at(p, T_RBRACE)) {
        perr_tok(p, peek(p), "expected end of line after setting '%s', found %s", it->key,
                 describe(p, peek(p)));
        return false;
    }
    return true;
}

/* train ::= 'train' '{' {item (NEWLINE | ';')} '}' ;  item ::= IDENT '=' expr
 * Errors in one setting are reported and the next setting is parsed. */
static bool parse_train(Parser *p, Stmt *s)
{
    Token *open = peek(p);
    if (!expect(p, T_LBRACE, " after 'train'"))
        return false;
    TrainItem *v = NULL;
    int n = 0, cap = 0;
    for (;;) {
        while (accept(p, T_NEWLINE) || accept(p, T_SEMI))
            ;
        if (at(p, T_RBRACE) || at(p, T_EOF) || p->fatal)
            break;
        int start = p->i;
        TrainItem it;
        if (parse_train_item(p, &it))
            VEC_PUSH(v, n, cap, it);
        else if (!p->fatal)
            skip_after_error(p, start);
    }
    bool closed = accept(p, T_RBRACE);
    if (!closed && !p->fatal) {
        perr(p, open->loc, 1, "'{' of the train block is never closed");
        p->err_tok = p->i;
    }
    if (n) {
        s->items = arena_alloc(p->a, (size_t)n * sizeof(TrainItem));
        memcpy(s->items, v, (size_t)n * sizeof(TrainItem));
    }
    s->nitems = n;
    xfree(v);
    return closed;
}

static bool is_keyword_stmt(Parser *p, const Token *t)
{
    if (t->k != T_IDENT || peek2(p)->k == T_ASSIGN)
        return false;
    for (int i = 0; i < ARRAY_LEN(keywords); i++)
        if (strcmp(t->str, keywords[i]) == 0)
            return true;
    return false;
}

static bool parse_keyword_stmt(Parser *p, Stmt *s, const Token *t)
{
    if (is_word(t, "model")) {
        s->k = S_MODEL;
        return parse_name(p, s, "a model");
    }
    if (is_word(t, "input")) {
        s->k = S_INPUT;
        return parse_input(p, s);
    }
    if (is_word(t, "param")) {
        s->k = S_PARAM;
        return parse_param(p, s);
    }
    if (is_word(t, "train")) {
        s->k = S_TRAIN;
        return parse_train(p, s);
    }
    s->k = is_word(t, "metric") ? S_METRIC : S_OUTPUT;
    if (!parse_name(p, s, s->k == S_METRIC ? "a metric" : "an output"))
        return false;
    if (s->k == S_OUTPUT && !at(p, T_ASSIGN))
        return true; /* output NAME: export an existing value */
    return expect(p, T_ASSIGN, arena_printf(p->a, " after '%s'", s->name)) &&
           (s->val = parse_expr(p)) != NULL;
}

/* stmt ::= 'model' IDENT | input | param | train | 'metric' IDENT '=' expr
 *        | 'output' IDENT ['=' expr] | IDENT '=' expr */
static Stmt *parse_stmt(Parser *p)
{
    Token *t = peek(p);
    Stmt *s = arena_alloc(p->a, sizeof(Stmt));
    s->loc = t->loc;
    bool ok;
    if (is_keyword_stmt(p, t)) {
        next(p);
        ok = parse_keyword_stmt(p, s, t);
    } else if (t->k == T_IDENT) {
        s->k = S_ASSIGN;
        next(p);
        s->name = t->str;
        s->nameloc = t->loc;
        s->namespan = t->len;
        while (at(p, T_COMMA) && !p->err) { /* a, b, c = call(...) */
            next(p);
            Token *u = peek(p);
            if (u->k != T_IDENT) {
                perr_tok(p, u, "expected a name after ',', found %s", describe(p, u));
                break;
            }
            next(p);
            struct StmtName *m = arena_alloc(p->a, (size_t)(s->nmore + 1) * sizeof *m);
            if (s->nmore)
                memcpy(m, s->more, (size_t)s->nmore * sizeof *m);
            m[s->nmore] = (struct StmtName){u->str, u->loc, u->len};
            s->more = m;
            s->nmore++;
        }
        Token *eq = peek(p);
        if (p->err)
            ;
        else if (eq->k == T_LPAREN && !s->nmore)
            perr_tok(p, t, "the value of '%s(...)' must be bound to a name, e.g. 'h = %s(...)'",
                     t->str, t->str);
        else if (eq->k != T_ASSIGN)
            perr_tok(p, eq, "expected '=' after '%s', found %s", t->str, describe(p, eq));
        ok = !p->err && accept(p, T_ASSIGN) && (s->val = parse_expr(p)) != NULL;
    } else {
        perr_tok(p, t, "expected a statement, found %s", describe(p, t));
        ok = false;
    }
    if (ok && !at(p, T_NEWLINE) && !at(p, T_SEMI) && !at(p, T_EOF)) {
        Token *u = peek(p);
        perr_tok(p, u, "expected end of statement, found %s", describe(p, u));
        ok = false;
    }
    return ok ? s : NULL;
}

bool fe_parse(const TokList *toks, Arena *a, Diags *d, Program *out)
{
    return fe_parse_lines(toks, NULL, 0, a, d, out);
}

bool fe_parse_lines(const TokList *toks, const int *bad_lines, int nbad, Arena *a, Diags *d,
                    Program *out)
{
    Parser p;
    memset(&p, 0, sizeof p);
    p.bad_lines = bad_lines;
    p.nbad = nbad;
    p.t = toks;
    p.a = a;
    p.d = d;
    Stmt **v = NULL;
    int n = 0, cap = 0;
    while (!p.fatal) {
        while (accept(&p, T_NEWLINE) || accept(&p, T_SEMI))
            ;
        if (at(&p, T_EOF))
            break;
        int start = p.i;
        Stmt *s = parse_stmt(&p);
        if (s)
            VEC_PUSH(v, n, cap, s);
        else if (!p.fatal)
            skip_after_error(&p, start);
    }
    out->stmts = NULL;
    if (n) {
        out->stmts = arena_alloc(a, (size_t)n * sizeof(Stmt *));
        memcpy(out->stmts, v, (size_t)n * sizeof(Stmt *));
    }
    out->n = n;
    xfree(v);
    return p.nerr == 0;
}
