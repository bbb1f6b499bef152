/* IR text parser errors: each malformed input gets one exact
 * `file:line:col: message`; truncation at every byte offset and random
 * mutations (fixed seed) never crash and never yield an invalid graph. */
#include <stdlib.h>

#include "test_irtext.h"

#define HEAD "graph g {\n  %x = input \"x\" : f32[N,3]\n  %w = param \"w\" zeros() : f32[3,3]\n"

typedef struct {
    const char *text;
    const char *want;
} ErrCase;

static const ErrCase cases[] = {
    {HEAD "  %a = frobnicate(%x) : f32[N,3]\n}\n", "t.ir:4:8: unknown op 'frobnicate'"},
    {HEAD "  %a = neg(%zz) : f32[N,3]\n}\n", "t.ir:4:12: use of undefined value '%zz'"},
    {HEAD "  %x = neg(%x) : f32[N,3]\n}\n", "t.ir:4:3: redefinition of value '%x'"},
    {HEAD "  %a = reduce_sum(%x) {foo=1} : f32[N]\n}\n", "t.ir:4:24: unknown attribute 'foo'"},
    {HEAD "  %a = add(%x, %x) {axes=[1]} : f32[N,3]\n}\n", "t.ir:4:21: attribute 'axes' does not apply to add"},
    {HEAD "  %a = reduce_sum(%x) {axes=[1], axes=[0]} : f32[N]\n}\n", "t.ir:4:34: duplicate attribute 'axes'"},
    {HEAD "  %a = matmul(%x, %w) : f32[N,4]\n}\n",
     "t.ir:4:25: type mismatch: the text says f32[N,4] but matmul infers f32[N,3]"},
    {HEAD "  %a = neg(%x) : f32[N,3]\n", "t.ir:5:1: expected '}' to end the graph, got end of file"},
    {HEAD "  %a = matmul(%w, %x) : f32[3,3]\n}\n",
     "t.ir:4:8: matmul of f32[3,3] and f32[N,3]: inner dimensions 3 and N differ"},
    {HEAD "  %a = input \"x : f32[3]\n}\n", "t.ir:4:14: unterminated string"},
    {HEAD "  %a = input \"a\" : f16[3]\n}\n", "t.ir:4:20: expected a dtype (f32, f64 or i32), got 'f16'"},
    {HEAD "  %a = input \"a\\q\" : f32[3]\n}\n", "t.ir:4:16: unknown escape sequence in string"},
    {HEAD "  %a = input \"a\\x00\" : f32[3]\n}\n", "t.ir:4:16: a string cannot contain a NUL byte"},
    {HEAD "  %a = neg(%x) : f32[N,3] @\n}\n", "t.ir:4:27: unexpected character '@'"},
    {HEAD "  %a = param \"a\" normal(1) : f32[3]\n}\n", "t.ir:4:18: initializer normal takes 2 arguments, got 1"},
    {HEAD "  %a = param \"a\" glorot() : f32[3]\n}\n", "t.ir:4:18: unknown initializer or param flag 'glorot'"},
    {HEAD "  output result \"r\" = %x\n}\n",
     "t.ir:4:10: unknown output kind 'result' (expected loss, metric, value, grad or update)"},
    {HEAD "  %a = neg(%x) : f32[N,3]\n  output grad \"g\" = %a wrt %a\n}\n",
     "t.ir:5:3: the target of a grad output must be a param or input, not neg"},
    {HEAD "  output grad \"g\" = %x wrt %w\n}\n", "t.ir:4:3: grad output is f32[N,3] but its target is f32[3,3]"},
    {HEAD "  output update \"u\" = %w\n}\n", "t.ir:4:3: update output needs 'of %target'"},
    {HEAD "  %l = reduce_sum(%x) {axes=[0,1]} : f32[]\n  output loss \"a\" = %l\n  output loss \"b\" = %l\n}\n",
     "t.ir:6:3: a graph has at most one loss output; the first is on line 5"},
    {HEAD "  %f = fused(%x) : f32[N,3] {\n    %0 = input \"0\" : f32[3]\n    output %0\n  }\n}\n",
     "t.ir:4:8: fused body input 0 is f32[3] but operand 0 is f32[N,3]"},
    {HEAD "  %f = fused(%x) : f32[N,3] {\n    %0 = input \"0\" : f32[N,3]\n  }\n}\n",
     "t.ir:6:3: fused body has no output"},
    {HEAD "  %f = fused(%x) : f32[N,3]\n}\n", "t.ir:5:1: expected '{' to start the fused body, got '}'"},
    {HEAD "  %f = fused(%x) : f32[N,3] {\n    %0 = input \"0\" : f32[N,3]\n"
          "    %1 = softmax(%0) {axis=1} : f32[N,3]\n    output %1\n  }\n}\n",
     "t.ir:4:8: verifier: %f (fused): body contains softmax, which is not elementwise"},
    {HEAD "  %a = slice(%x) {slice=[0:1]} : f32[1]\n}\n", "t.ir:4:25: slice has 1 range but the operand has rank 2"},
    {HEAD "}\nextra\n", "t.ir:5:1: expected end of file after the graph, got 'extra'"},
    {"graph g {\n  train { optimizer=adam lrate=0.1 }\n}\n", "t.ir:2:26: unknown train setting 'lrate'"},
    {"graph g {\n  train { optimizer=adamw }\n}\n", "t.ir:2:21: unknown optimizer 'adamw'"},
    {"graph g {\n  train { batch=1 batch=2 }\n}\n", "t.ir:2:19: duplicate train setting 'batch'"},
    {"graph g {\n  train { seed=-1 }\n}\n",
     "t.ir:2:16: expected a seed (an unsigned 64-bit integer), got '-1'"},
    {"graph g {\n  %a = neg(%x) : f32[]\n  train { }\n}\n", "t.ir:2:12: use of undefined value '%x'"},
    {HEAD "  %y = input \"x\" : f32[3]\n}\n", "t.ir:4:14: duplicate input name \"x\" (first defined on line 2)"},
    {HEAD "  %v = param \"w\" ones() : f32[3]\n}\n", "t.ir:4:14: duplicate param name \"w\" (first defined on line 3)"},
    {HEAD "  %a = neg(%x) : f32[N,3] loc(\"m.mdl\" 3:4)\n}\n",
     "t.ir:4:39: expected ':' after the file name, got '3'"},
    {HEAD "  %a = input \"a\" : f32[40000000000000]\n}\n",
     "t.ir:4:24: a dimension (an integer or N) out of range: 40000000000000 (expected 0 to 35184372088832)"},
    {HEAD "  %a = input \"a\" : f32[N,8388608,8388608]\n}\n",
     "t.ir:4:23: shape [N,8388608,8388608] has too many elements (the limit is 2^45)"},
    {HEAD "  %a = input \"a\" : f32[1,2,3,4,5,6,7]\n}\n", "t.ir:4:36: a shape has at most 6 dimensions"},
    {HEAD "  %a = add(%x) : f32[N,3]\n}\n", "t.ir:4:8: add takes 2 operands, got 1"},
    {HEAD "  %a = add(%x, %x : f32[N,3]\n}\n", "t.ir:4:19: expected ')' after the operands, got ':'"},
    {HEAD "  %a = one_hot(%x) {to=i32, depth=3} : i32[N,3,3]\n}\n",
     "t.ir:4:8: one_hot: invalid operands or attributes"},
    {HEAD "  %a = conv2d(%x, %w) {stride=[1]} : f32[N,3]\n}\n", "t.ir:4:31: stride needs 2 values, got 1"},
    {HEAD "  %a = max_pool2d(%x) {window=[0,2]} : f32[N,3]\n}\n",
     "t.ir:4:32: window out of range: 0 (expected 1 to 2147483647)"},
    {HEAD "  %a = const 1.5.2 : f32[]\n}\n", "t.ir:4:17: expected ':' before the type, got '.2'"},
    {HEAD "  %a = const : f32[]\n}\n", "t.ir:4:14: expected a number, got ':'"},
    {HEAD "  %a = matmul(%x, %w) {alpha=inf} : f32[N,3]\n}\n",
     "t.ir:4:30: alpha must be a finite number, got inf"},
    {HEAD "  %a = neg(%x) : f32[N,3]\n  output value \"a\" = %a result 1\n}\n",
     "t.ir:5:25: a value that is not fused has no side result 1"},
    {HEAD "  %u = fused(%w) : f32[3,3] {\n    %a = input \"0\" : f32[3,3]\n    %1 = neg(%a) : f32[3,3]\n"
          "    output %1\n    output value = %1\n  }\n  output update \"w\" = %u result 1 of %w\n}\n",
     "t.ir:4:8: verifier: %u (fused): body output 1 must be an update of a body input or a fresh result: a sum "
     "or mean of the value of a GEMM epilogue or softmax row kernel, or its log_softmax_dot"},
    {HEAD "  %a = neg(%x) : f32[N,3]\n  %r = result(%a) {index=1} : f32[N,3]\n}\n",
     "t.ir:5:8: result reads neg, not a fused node or a loop"},
    {HEAD "  %a = neg(%x) : f32[N,3]\n  %r = result(%a) : f32[N,3]\n}\n",
     "t.ir:5:8: result reads neg, not a fused node or a loop"},
    {HEAD "  %r = result(%x) {index=0} : f32[N,3]\n}\n",
     "t.ir:4:26: a result index out of range: 0 (expected 1 to 2147483647)"},
    {"nothing here\n", "t.ir:1:1: expected 'graph' at the start of IR text, got 'nothing'"},
    {"", "t.ir:1:1: expected 'graph' at the start of IR text, got end of file"},
    {"graph {\n}\n", "t.ir:1:7: expected a graph name, got '{'"},
    {HEAD "  %a = reshape(%x) {shape=[N,4]} : f32[N,4]\n}\n",
     "t.ir:4:8: cannot reshape f32[N,3] to [N,4]: element counts differ"},
    {HEAD "  %a = neg(%x) : f32[N,3]\n  %b = exp(%a) : f32[N,3]\n  what\n}\n",
     "t.ir:6:3: expected a value definition, 'output' or '}', got 'what'"},
    {HEAD "  % = neg(%x) : f32[N,3]\n}\n", "t.ir:4:3: expected a value name after '%'"},
};

START_TEST(error_messages)
{
    const ErrCase *c = &cases[_i];
    Diags d;
    diags_init(&d);
    Graph *g = ir_parse("t.ir", c->text, strlen(c->text), &d);
    char buf[512];
    ck_assert_ptr_null(g);
    ck_assert_int_ge(d.nerrors, 1);
    ck_assert_str_eq(tx_first(&d, buf, sizeof buf), c->want);
    diags_free(&d);
}
END_TEST

/* The caret under the error spans the offending token. */
START_TEST(error_snippet)
{
    const char *text = HEAD "  %a = frobnicate(%x) : f32[N,3]\n}\n";
    Diags d;
    diags_init(&d);
    diags_add_source(&d, "t.ir", text, strlen(text));
    ck_assert_ptr_null(ir_parse("t.ir", text, strlen(text), &d));
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    diags_print(&d, f);
    fclose(f);
    ck_assert_str_eq(buf, "t.ir:4:8: error: unknown op 'frobnicate'\n"
                          "    4 |   %a = frobnicate(%x) : f32[N,3]\n"
                          "      |        ^~~~~~~~~~\n");
    free(buf);
    diags_free(&d);
}
END_TEST

/* Parse text[0..len); a failure must come with a located error, a
 * success must verify and print stably. Returns whether it parsed. */
static bool parse_checked(const char *text, size_t len)
{
    Diags d;
    diags_init(&d);
    Graph *g = ir_parse("t.ir", text, len, &d);
    if (!g) {
        ck_assert_int_ge(d.nerrors, 1);
        ck_assert_ptr_nonnull(d.v[0].loc.file);
        ck_assert_int_ge(d.v[0].loc.line, 1);
        ck_assert_int_ge(d.v[0].loc.col, 1);
        diags_free(&d);
        return false;
    }
    ck_assert_int_eq(d.nerrors, 0);
    ck_assert(ir_verify(g, &d));
    char *s1 = ir_print_str(g);
    Graph *h = ir_parse("t2.ir", s1, strlen(s1), &d);
    ck_assert_msg(h != NULL, "reprint does not parse: %s\n%s", d.n ? d.v[0].msg : "", s1);
    char *s2 = ir_print_str(h);
    ck_assert_str_eq(s1, s2);
    free(s1);
    free(s2);
    ir_graph_free(h);
    ir_graph_free(g);
    diags_free(&d);
    return true;
}

START_TEST(truncation_every_offset)
{
    Graph *g = tx_big_graph();
    char *text = ir_print_str(g);
    size_t len = strlen(text);
    ck_assert_int_gt(len, 5000);
    for (size_t n = 0; n < len; n++) {
        char *copy = malloc(n ? n : 1); /* exact size: any overread trips ASan */
        memcpy(copy, text, n);
        bool ok = parse_checked(copy, n);
        ck_assert_msg(ok == (n >= len - 1), "prefix of %zu bytes %s", n, ok ? "parsed" : "failed");
        free(copy);
    }
    free(text);
    ir_graph_free(g);
}
END_TEST

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Replace, delete, insert or duplicate bytes, or swap two lines. */
static size_t mutate(char *t, size_t len, size_t cap, uint64_t *rng)
{
    static const char alphabet[] = "{}[](),:=%\"#\\\n 0123456789-.eNxafinloutpgrdhs_\t\x01\xff";
    size_t at = len ? rng_next(rng) % len : 0;
    switch (rng_next(rng) % 5) {
    case 0:
        if (len)
            t[at] = alphabet[rng_next(rng) % (sizeof alphabet - 1)];
        return len;
    case 1:
        if (len) {
            memmove(t + at, t + at + 1, len - at - 1);
            len--;
        }
        return len;
    case 2:
        if (len + 1 < cap) {
            memmove(t + at + 1, t + at, len - at);
            t[at] = alphabet[rng_next(rng) % (sizeof alphabet - 1)];
            len++;
        }
        return len;
    case 3: {
        size_t n = rng_next(rng) % 40;
        if (at + n <= len && len + n < cap) {
            memmove(t + at + n, t + at, len - at);
            len += n;
        }
        return len;
    }
    default: {
        size_t b = rng_next(rng) % (len ? len : 1), n = rng_next(rng) % 60;
        if (b + n > len)
            n = len - b;
        if (at + n <= len && b + n <= len) {
            char tmp[64];
            memcpy(tmp, t + b, n);
            memmove(t + b, t + at, n);
            memcpy(t + at, tmp, n);
        }
        return len;
    }
    }
}

START_TEST(random_mutations)
{
    Graph *g = tx_big_graph();
    char *text = ir_print_str(g);
    size_t len = strlen(text), cap = len + 512;
    char *buf = malloc(cap);
    uint64_t rng = 0x9E3779B97F4A7C15ULL;
    int parsed = 0;
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(buf, text, len);
        size_t n = len;
        int k = 1 + (int)(rng_next(&rng) % 3);
        for (int j = 0; j < k; j++)
            n = mutate(buf, n, cap, &rng);
        char *exact = malloc(n ? n : 1);
        memcpy(exact, buf, n);
        parsed += parse_checked(exact, n);
        free(exact);
    }
    /* some mutations (in comments, names, numbers) keep the text valid */
    ck_assert_int_gt(parsed, 20);
    ck_assert_int_lt(parsed, 2900);
    free(buf);
    free(text);
    ir_graph_free(g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("irtext_parse");
    TCase *t = tcase_create("errors");
    tcase_add_loop_test(t, error_messages, 0, ARRAY_LEN(cases));
    tcase_add_test(t, error_snippet);
    suite_add_tcase(s, t);
    TCase *f = tcase_create("fuzz");
    tcase_set_timeout(f, 300);
    tcase_add_test(f, truncation_every_offset);
    tcase_add_test(f, random_mutations);
    suite_add_tcase(s, f);
    return tu_run(s);
}
