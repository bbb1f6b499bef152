/* The lexer: token kinds, values and positions, dotted names, numbers,
 * strings and escapes, comments and newlines, and the exact lexical
 * errors with the lexer continuing after each. */
#include <stdlib.h>
#include <string.h>

#include "frontend/fe.h"
#include "testutil.h"

typedef struct Lexed {
    Arena *a;
    Diags d;
    TokList t;
    int nerr;
} Lexed;

static Lexed *lex(const char *src)
{
    Lexed *l = xcalloc(1, sizeof(Lexed));
    l->a = arena_new();
    diags_init(&l->d);
    l->nerr = fe_lex("t.mdl", src, strlen(src), l->a, &l->d, &l->t);
    return l;
}

static void lex_free(Lexed *l)
{
    free(l->t.v);
    free(l->t.bad_lines);
    diags_free(&l->d);
    arena_free(l->a);
    free(l);
}

static void tok_is(const Token *t, TokKind k, int line, int col, int len)
{
    ck_assert_msg(t->k == k, "kind %s, expected %s", fe_tok_name(t->k), fe_tok_name(k));
    ck_assert_int_eq(t->loc.line, line);
    ck_assert_int_eq(t->loc.col, col);
    ck_assert_int_eq(t->len, len);
}

START_TEST(statement_tokens)
{
    Lexed *l = lex("h = dense(h, 256, activation=\"relu\")  # hidden\nx\n");
    Token *t = l->t.v;
    ck_assert_int_eq(l->nerr, 0);
    ck_assert_int_eq(l->t.n, 16);
    tok_is(&t[0], T_IDENT, 1, 1, 1);
    ck_assert_str_eq(t[0].str, "h");
    tok_is(&t[1], T_ASSIGN, 1, 3, 1);
    tok_is(&t[2], T_IDENT, 1, 5, 5);
    tok_is(&t[3], T_LPAREN, 1, 10, 1);
    tok_is(&t[5], T_COMMA, 1, 12, 1);
    tok_is(&t[6], T_INT, 1, 14, 3);
    ck_assert_int_eq(t[6].ival, 256);
    tok_is(&t[8], T_IDENT, 1, 19, 10);
    tok_is(&t[9], T_ASSIGN, 1, 29, 1);
    tok_is(&t[10], T_STRING, 1, 30, 6);
    ck_assert_str_eq(t[10].str, "relu");
    tok_is(&t[11], T_RPAREN, 1, 36, 1);
    tok_is(&t[12], T_NEWLINE, 1, 47, 1); /* the comment is skipped */
    tok_is(&t[13], T_IDENT, 2, 1, 1);
    tok_is(&t[14], T_NEWLINE, 2, 2, 1);
    lex_free(l);
    l = lex("x");
    ck_assert_int_eq(l->t.n, 2);
    ck_assert_int_eq(l->t.v[1].k, T_EOF);
    lex_free(l);
}
END_TEST

START_TEST(operators)
{
    Lexed *l = lex("a**b <= c >= d == e != f < g > h @ i / j * k - l + m ; : [ ] { }");
    TokKind want[] = {T_IDENT, T_POW, T_IDENT, T_LE, T_IDENT, T_GE, T_IDENT, T_EQ, T_IDENT,
                      T_NE,    T_IDENT, T_LT, T_IDENT, T_GT, T_IDENT, T_AT, T_IDENT, T_SLASH,
                      T_IDENT, T_STAR, T_IDENT, T_MINUS, T_IDENT, T_PLUS, T_IDENT, T_SEMI,
                      T_COLON, T_LBRACK, T_RBRACK, T_LBRACE, T_RBRACE, T_EOF};
    ck_assert_int_eq(l->t.n, ARRAY_LEN(want));
    for (int i = 0; i < ARRAY_LEN(want); i++)
        ck_assert_msg(l->t.v[i].k == want[i], "token %d is %s, expected %s", i,
                      fe_tok_name(l->t.v[i].k), fe_tok_name(want[i]));
    ck_assert_int_eq(l->t.v[1].len, 2);
    lex_free(l);
}
END_TEST

START_TEST(dotted_names)
{
    Lexed *l = lex("dense_1.kernel conv.b2 a. .5");
    ck_assert_int_eq(l->nerr, 1); /* "a." then a stray '.' */
    ck_assert_str_eq(l->t.v[0].str, "dense_1.kernel");
    ck_assert_str_eq(l->t.v[1].str, "conv.b2");
    ck_assert_str_eq(l->t.v[2].str, "a");
    ck_assert_int_eq(l->t.v[3].k, T_FLOAT);
    ck_assert(l->t.v[3].num == 0.5);
    ck_assert_str_eq(l->d.v[0].msg, "unexpected character '.'");
    lex_free(l);
}
END_TEST

START_TEST(numbers)
{
    Lexed *l = lex("0 42 9223372036854775807 1.5 .25 3. 1e-3 2.5E+4 7e2");
    Token *t = l->t.v;
    ck_assert_int_eq(l->nerr, 0);
    ck_assert_int_eq(t[0].k, T_INT);
    ck_assert_int_eq(t[1].ival, 42);
    ck_assert_int_eq(t[2].k, T_INT);
    ck_assert(t[2].ival == INT64_MAX);
    ck_assert_int_eq(t[3].k, T_FLOAT);
    ck_assert(t[3].num == 1.5);
    ck_assert(t[4].num == 0.25);
    ck_assert(t[5].num == 3.0 && t[5].k == T_FLOAT);
    ck_assert(t[6].num == 1e-3);
    ck_assert(t[7].num == 2.5e4);
    ck_assert(t[8].num == 700 && t[8].k == T_FLOAT);
    /* "2-1" is three tokens, "1e-3-x" is a number then '-' */
    lex_free(l);
    l = lex("2-1 1e-3-x");
    ck_assert_int_eq(l->nerr, 0);
    ck_assert_int_eq(l->t.n, 7);
    ck_assert_int_eq(l->t.v[1].k, T_MINUS);
    ck_assert(l->t.v[3].num == 1e-3);
    ck_assert_int_eq(l->t.v[4].k, T_MINUS);
    lex_free(l);
}
END_TEST

START_TEST(number_errors)
{
    Lexed *l = lex("a = 1.2.3 + 1e + 12abc\nb = 99999999999999999999 * 1e400\n");
    ck_assert_int_eq(l->nerr, 5);
    ck_assert_int_eq(l->d.nerrors, 5);
    ck_assert_str_eq(l->d.v[0].msg, "invalid number '1.2.3'");
    ck_assert_int_eq(l->d.v[0].loc.col, 5);
    ck_assert_int_eq(l->d.v[0].span, 5);
    ck_assert_str_eq(l->d.v[1].msg, "invalid number '1e'");
    ck_assert_int_eq(l->d.v[1].loc.col, 13);
    ck_assert_str_eq(l->d.v[2].msg, "invalid number '12abc'");
    ck_assert_str_eq(l->d.v[3].msg,
                     "integer literal 99999999999999999999 is too large (the limit is "
                     "9223372036854775807)");
    ck_assert_int_eq(l->d.v[3].loc.line, 2);
    ck_assert_int_eq(l->d.v[3].loc.col, 5);
    ck_assert_str_eq(l->d.v[4].msg, "number 1e400 is out of range");
    ck_assert_int_eq(l->t.nbad, 2);
    ck_assert_int_eq(l->t.bad_lines[0], 1);
    ck_assert_int_eq(l->t.bad_lines[1], 2);
    lex_free(l);
}
END_TEST

START_TEST(strings)
{
    Lexed *l = lex("'it''s' \"a\\\"b\\n\\t\\\\\" \"x\"");
    ck_assert_int_eq(l->nerr, 0);
    ck_assert_str_eq(l->t.v[0].str, "it");
    ck_assert_str_eq(l->t.v[1].str, "s");
    ck_assert_str_eq(l->t.v[2].str, "a\"b\n\t\\");
    ck_assert_str_eq(l->t.v[3].str, "x");
    lex_free(l);
}
END_TEST

START_TEST(string_errors)
{
    Lexed *l = lex("s = \"abc\nt = 'a\\qb'\nu = \"\"\n");
    ck_assert_int_eq(l->nerr, 2);
    ck_assert_str_eq(l->d.v[0].msg, "unterminated string");
    ck_assert_int_eq(l->d.v[0].loc.line, 1);
    ck_assert_int_eq(l->d.v[0].loc.col, 5);
    ck_assert_str_eq(l->d.v[1].msg, "unknown escape sequence '\\q' in string");
    ck_assert_int_eq(l->d.v[1].loc.line, 2);
    ck_assert_int_eq(l->d.v[1].loc.col, 7);
    ck_assert_int_eq(l->d.v[1].span, 2);
    /* the unterminated string still ends at the line end: line 2 lexes */
    int idents = 0;
    for (int i = 0; i < l->t.n; i++)
        idents += l->t.v[i].k == T_IDENT;
    ck_assert_int_eq(idents, 3);
    lex_free(l);
}
END_TEST

START_TEST(bad_characters)
{
    Lexed *l = lex("a $ b ` c\x01 d \xc3\xa4 e\n");
    ck_assert_int_eq(l->nerr, 4);
    ck_assert_str_eq(l->d.v[0].msg, "unexpected character '$'");
    ck_assert_int_eq(l->d.v[0].loc.col, 3);
    ck_assert_str_eq(l->d.v[1].msg, "unexpected character '`'");
    ck_assert_str_eq(l->d.v[2].msg, "unexpected character 0x01");
    ck_assert_str_eq(l->d.v[3].msg, "unexpected non-ASCII character '\xc3\xa4'");
    ck_assert_int_eq(l->d.v[3].loc.col, 14);
    int idents = 0;
    for (int i = 0; i < l->t.n; i++)
        idents += l->t.v[i].k == T_IDENT;
    ck_assert_int_eq(idents, 5); /* every word survives */
    lex_free(l);
}
END_TEST

START_TEST(line_endings_and_tabs)
{
    Lexed *l = lex("a\r\n\tb = 1\r\n");
    ck_assert_int_eq(l->nerr, 0);
    tok_is(&l->t.v[0], T_IDENT, 1, 1, 1);
    tok_is(&l->t.v[1], T_NEWLINE, 1, 3, 1);
    tok_is(&l->t.v[2], T_IDENT, 2, 2, 1);
    tok_is(&l->t.v[4], T_INT, 2, 6, 1);
    lex_free(l);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("frontend_lex");
    TCase *t = tcase_create("lex");
    tcase_add_test(t, statement_tokens);
    tcase_add_test(t, operators);
    tcase_add_test(t, dotted_names);
    tcase_add_test(t, numbers);
    tcase_add_test(t, number_errors);
    tcase_add_test(t, strings);
    tcase_add_test(t, string_errors);
    tcase_add_test(t, bad_characters);
    tcase_add_test(t, line_endings_and_tabs);
    suite_add_tcase(s, t);
    return tu_run(s);
}
