/* Robustness of the frontend: every prefix (truncation) of every example
 * model and random byte mutations of each (fixed seed) go through
 * fe_compile. Errors are expected; crashes, hangs and sanitizer reports
 * are failures. Each result must be consistent: a graph exactly when no
 * error was reported, and a graph that passes the verifier. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"
#include "testutil.h"

typedef struct Files {
    char **v;
    int n, cap;
} Files;

static void find_models(const char *dir, Files *out)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *p = xmalloc(strlen(dir) + strlen(e->d_name) + 2);
        sprintf(p, "%s/%s", dir, e->d_name);
        size_t n = strlen(p);
        if (n > 4 && strcmp(p + n - 4, ".mdl") == 0) {
            VEC_PUSH(out->v, out->n, out->cap, p);
        } else {
            find_models(p, out);
            free(p);
        }
    }
    closedir(d);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static Files examples(void)
{
    Files f = {0};
    find_models("examples", &f);
    find_models("tests/diag", &f);
    qsort(f.v, (size_t)f.n, sizeof(char *), cmp_str);
    return f;
}

static void free_files(Files *f)
{
    for (int i = 0; i < f->n; i++)
        free(f->v[i]);
    free(f->v);
}

static int compiled, failed;

static void compile_one(const char *name, const char *src, size_t len)
{
    /* an exact-size copy without a terminator: reads past the end are
     * caught by AddressSanitizer */
    char *text = xmalloc(len ? len : 1);
    memcpy(text, src, len);
    Diags d;
    diags_init(&d);
    const char *file = diags_add_source(&d, name, text, len);
    Graph *g = fe_compile(file, text, len, &d);
    free(text);
    if (g) {
        ck_assert_msg(d.nerrors == 0, "%s: a graph despite %d errors", name, d.nerrors);
        ck_assert_msg(ir_verify(g, &d), "%s: lowered graph fails the verifier", name);
        compiled++;
    } else {
        ck_assert_msg(d.nerrors > 0, "%s: no graph and no error", name);
        failed++;
    }
    /* printing exercises every location and caret */
    FILE *devnull = fopen("/dev/null", "w");
    diags_print(&d, devnull);
    fclose(devnull);
    ir_graph_free(g);
    diags_free(&d);
}

START_TEST(examples_compile)
{
    Files f = examples();
    ck_assert_int_ge(f.n, 17);
    int ok = 0;
    for (int i = 0; i < f.n; i++) {
        if (strncmp(f.v[i], "examples/", 9) != 0)
            continue;
        size_t len;
        char *text = read_file(f.v[i], &len);
        ck_assert_ptr_nonnull(text);
        Diags d;
        diags_init(&d);
        Graph *g = fe_compile(f.v[i], text, len, &d);
        ck_assert_msg(g != NULL, "%s does not compile", f.v[i]);
        ck_assert_msg(ir_verify(g, &d), "%s fails the verifier", f.v[i]);
        ok++;
        ir_graph_free(g);
        diags_free(&d);
        free(text);
    }
    ck_assert_int_ge(ok, 17);
    free_files(&f);
}
END_TEST

START_TEST(every_prefix)
{
    Files f = examples();
    compiled = failed = 0;
    for (int i = 0; i < f.n; i++) {
        size_t len;
        char *text = read_file(f.v[i], &len);
        ck_assert_ptr_nonnull(text);
        for (size_t k = 0; k <= len; k++) {
            char *cut = xmalloc(k + 1);
            memcpy(cut, text, k);
            cut[k] = 0;
            compile_one(f.v[i], cut, k);
            free(cut);
        }
        free(text);
    }
    fprintf(stderr, "prefixes: %d compiled, %d failed\n", compiled, failed);
    /* truncations both succeed (at statement ends) and fail */
    ck_assert_int_gt(compiled, 100);
    ck_assert_int_gt(failed, 1000);
    free_files(&f);
}
END_TEST

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t next_rand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Bytes a mutation may insert: mostly the language's own characters. */
static char random_byte(void)
{
    static const char alphabet[] = "()[]{},:;=+-*/@<>!#\"'.0123456789eENx_ \n\t";
    uint64_t r = next_rand();
    if (r % 8 == 0)
        return (char)(1 + (r >> 8) % 255);
    return alphabet[(r >> 8) % (sizeof alphabet - 1)];
}

static size_t mutate(char *buf, size_t len, size_t cap)
{
    int edits = 1 + (int)(next_rand() % 4);
    for (int e = 0; e < edits && len > 0; e++) {
        size_t at = (size_t)(next_rand() % len);
        switch (next_rand() % 4) {
        case 0: /* replace */
            buf[at] = random_byte();
            break;
        case 1: /* delete */
            memmove(buf + at, buf + at + 1, len - at - 1);
            len--;
            break;
        case 2: /* insert */
            if (len + 1 < cap) {
                memmove(buf + at + 1, buf + at, len - at);
                buf[at] = random_byte();
                len++;
            }
            break;
        default: { /* duplicate a span */
            size_t n = 1 + (size_t)(next_rand() % 16);
            if (at + n <= len && len + n < cap) {
                char span[16];
                memcpy(span, buf + at, n);
                size_t to = (size_t)(next_rand() % len);
                memmove(buf + to + n, buf + to, len - to);
                memcpy(buf + to, span, n);
                len += n;
            }
        }
        }
    }
    for (size_t i = 0; i < len; i++)
        if (buf[i] == 0)
            buf[i] = ' '; /* load.c rejects NUL bytes before fe_compile */
    buf[len] = 0;
    return len;
}

START_TEST(random_mutations)
{
    Files f = examples();
    compiled = failed = 0;
    for (int i = 0; i < f.n; i++) {
        size_t len;
        char *text = read_file(f.v[i], &len);
        ck_assert_ptr_nonnull(text);
        size_t cap = len + 512;
        char *buf = xmalloc(cap);
        int rounds = strncmp(f.v[i], "examples/", 9) == 0 ? 1000 : 100;
        for (int m = 0; m < rounds; m++) {
            memcpy(buf, text, len);
            size_t n = mutate(buf, len, cap);
            compile_one(f.v[i], buf, n);
        }
        free(buf);
        free(text);
    }
    fprintf(stderr, "mutations: %d compiled, %d failed\n", compiled, failed);
    ck_assert_int_gt(failed, 100);
    free_files(&f);
}
END_TEST

/* Pathological inputs: deep nesting, long chains, huge numbers, many
 * errors, long lines. */
START_TEST(pathological)
{
    StrBuf b;
    sb_init(&b);
    sb_puts(&b, "input x: f32[N, 4]\nloss = mean(");
    for (int i = 0; i < 100000; i++)
        sb_putc(&b, '(');
    compile_one("deep.mdl", b.s, b.len);
    sb_free(&b);

    sb_puts(&b, "input x: f32[N, 4]\nloss = mean(x");
    for (int i = 0; i < 50000; i++)
        sb_puts(&b, " + x");
    sb_puts(&b, ")\n");
    compile_one("chain.mdl", b.s, b.len);
    sb_free(&b);

    sb_puts(&b, "input x: f32[N, 4]\nloss = mean(");
    for (int i = 0; i < 50000; i++)
        sb_puts(&b, "-");
    sb_puts(&b, "x)\n");
    compile_one("unary.mdl", b.s, b.len);
    sb_free(&b);

    for (int i = 0; i < 5000; i++)
        sb_puts(&b, "h = foo(x)\n");
    compile_one("errors.mdl", b.s, b.len);
    sb_free(&b);

    sb_puts(&b, "input x: f32[N, 4]\nh = x");
    for (int i = 0; i < 1000; i++)
        sb_puts(&b, "[0]");
    sb_puts(&b, "\n");
    compile_one("index.mdl", b.s, b.len);
    sb_free(&b);

    sb_puts(&b, "input x: f32[N, 4]\nh = x");
    for (int i = 0; i < 400000; i++)
        sb_puts(&b, "[0]");
    sb_puts(&b, "\n");
    compile_one("index_chain.mdl", b.s, b.len);
    sb_free(&b);

    sb_puts(&b, "input x: f32[N, 4]\nloss = mean(x * 2 ** 2 ** 2 ** 2 ** 2 ** 2 ** 2)\n"
                "a = 9223372036854775807 + 1\nb = -9223372036854775807 - 2\n"
                "c = 1e308 * 10\nd = (-1) ** 9223372036854775807\n"
                "e = 2 ** 1000\nf = 1 / 0\ng = 0.0 ** -1\n");
    compile_one("numbers.mdl", b.s, b.len);
    sb_free(&b);
}
END_TEST

/* One expression of each recursive shape, 400,000 levels deep: every one
 * stops at the nesting limit with one located error (a crash here is a
 * stack overflow). */
static void deep_one(const char *name, const char *head, const char *rep, const char *tail)
{
    StrBuf b;
    sb_init(&b);
    sb_puts(&b, "input x: f32[N, 4]\n");
    sb_puts(&b, head);
    for (int i = 0; i < 400000; i++)
        sb_puts(&b, rep);
    sb_puts(&b, tail);
    Diags d;
    diags_init(&d);
    const char *file = diags_add_source(&d, name, b.s, b.len);
    Graph *g = fe_compile(file, b.s, b.len, &d);
    ck_assert_msg(!g, "%s: compiled", name);
    ck_assert_msg(d.nerrors == 1, "%s: %d errors", name, d.nerrors);
    ck_assert_msg(strstr(d.v[0].msg, "nested too deeply"), "%s: %s", name, d.v[0].msg);
    ck_assert_int_eq(d.v[0].loc.line, 2);
    diags_free(&d);
    sb_free(&b);
}

START_TEST(deep_expressions)
{
    deep_one("power.mdl", "loss = mean(x)", " ** 1", "\n");
    deep_one("power_unary.mdl", "loss = mean(x)", " ** -1", "\n");
    deep_one("unary.mdl", "loss = mean(", "-", "x)\n");
    deep_one("sum.mdl", "loss = mean(x", " + x", ")\n");
    deep_one("product.mdl", "loss = mean(x", " * x", ")\n");
    deep_one("compare.mdl", "loss = mean(", "x < (", "x\n");
    deep_one("call.mdl", "loss = ", "mean(", "x\n");
    deep_one("paren.mdl", "loss = mean(", "(", "x\n");
    deep_one("list.mdl", "h = concat(", "[", "x\n");
    deep_one("index.mdl", "h = x", "[x", "\n");
    deep_one("index_chain.mdl", "h = x", "[0]", "\n");
    deep_one("slice.mdl", "h = x", "[0:x", "\n");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("frontend_fuzz");
    TCase *t = tcase_create("fuzz");
    tcase_set_timeout(t, 600);
    tcase_add_test(t, examples_compile);
    tcase_add_test(t, every_prefix);
    tcase_add_test(t, random_mutations);
    tcase_add_test(t, pathological);
    tcase_add_test(t, deep_expressions);
    suite_add_tcase(s, t);
    return tu_run(s);
}
