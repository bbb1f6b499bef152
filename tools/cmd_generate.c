/* `modelc generate MODEL --weights W --prime TEXT`: sample text from a
 * character-level model, one character at a time. The model reads
 * character ids (bytes) through an i32[N, T] input; its output value is
 * the next character's scores, [N, T, V] (one row per position: the row
 * of the last character is read) or [N, V] (the character after the
 * window). Each step runs the predict function on the last T characters
 * and draws the next one from softmax(scores / temperature) with a
 * generator seeded by --seed, so a seed gives the same text every time.
 * Everything goes through the public C API. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "modelc.h"

typedef struct GenArgs {
    const char *weights, *prime, *backend, *value;
    int length, threads;
    double temperature;
    uint64_t seed;
} GenArgs;

static int parse(GenArgs *a, int argc, char **argv, const char **file)
{
    const CliOpt opts[] = {
        {"weights", CLI_STR, &a->weights, "W.safetensors", "parameter values (required)", NULL},
        {"prime", CLI_STR, &a->prime, "TEXT", "the text to continue (required, not empty)", NULL},
        {"length", CLI_INT, &a->length, "K", "characters to generate (default 200)", NULL},
        {"temperature", CLI_DOUBLE, &a->temperature, "T",
         "divide the scores by T before the softmax: below 1 more likely characters, above 1 more "
         "varied ones; 0 always takes the most likely (default 1)", NULL},
        {"seed", CLI_U64, &a->seed, "S", "seed of the sampling (default 1)", NULL},
        {"value", CLI_STR, &a->value, "NAME", "the output value holding the scores (default: the only one)", NULL},
        {"backend", CLI_STR, &a->backend, "jit|interp", "evaluator (default jit)", NULL},
        {"threads", CLI_INT, &a->threads, "T", "BLAS threads (default: number of cores)", NULL},
    };
    const CliCmd cmd = {"generate", "MODEL --weights W.safetensors --prime TEXT [options]",
                        "Sample text from a character-level model: repeatedly predict the next character from "
                        "the last T and draw it from the softmax of the scores.",
                        opts, ARRAY_LEN(opts), 1, 1};
    char **pos;
    int npos;
    int rc = cli_parse(&cmd, argc, argv, &pos, &npos);
    if (rc)
        return rc < 0 ? -1 : rc;
    *file = pos[0];
    free(pos);
    if (!a->weights)
        return cli_usage_error("generate", "missing --weights W.safetensors");
    if (!a->prime || !*a->prime)
        return cli_usage_error("generate", "missing --prime TEXT: the text to continue (at least one character)");
    if (a->length < 0)
        return cli_usage_error("generate", "--length must not be negative, got %d", a->length);
    if (!(a->temperature >= 0) || !isfinite(a->temperature))
        return cli_usage_error("generate", "--temperature must be a finite number >= 0, got %g", a->temperature);
    if (strcmp(a->backend, "jit") != 0 && strcmp(a->backend, "interp") != 0)
        return cli_usage_error("generate", "unknown backend '%s' (expected jit or interp)", a->backend);
    if (a->threads < 0)
        return cli_usage_error("generate", "--threads must not be negative, got %d", a->threads);
    return 0;
}

/* splitmix64: the sampling's generator. */
static uint64_t next_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double score_at(const mc_tensor *t, int64_t i)
{
    return t->dtype == 1 ? ((const double *)t->data)[i] : ((const float *)t->data)[i];
}

/* Draw an index from softmax(row / temp) (temp 0: the largest score). */
static int sample(const mc_tensor *t, int64_t off, int64_t v, double temp, uint64_t *rng, double *p)
{
    int64_t best = 0;
    for (int64_t c = 1; c < v; c++)
        if (score_at(t, off + c) > score_at(t, off + best))
            best = c;
    if (temp == 0)
        return (int)best;
    double mx = score_at(t, off + best), sum = 0;
    for (int64_t c = 0; c < v; c++)
        sum += p[c] = exp((score_at(t, off + c) - mx) / temp);
    double u = (double)(next_u64(rng) >> 11) * 0x1.0p-53 * sum;
    for (int64_t c = 0; c < v; c++) {
        if (u < p[c])
            return (int)c;
        u -= p[c];
    }
    return (int)best; /* rounding at the very end of the sum */
}

static bool fail(mc_model *m)
{
    fputs(mc_last_error(m), stderr);
    return false;
}

/* The text input: the first i32 input of shape [N, T]. */
static bool find_text_input(mc_model *m, const char *file, mc_tensor *x)
{
    for (int i = 0; mc_input_info(m, i, x); i++)
        if (x->dtype == 2 && x->rank == 2 && x->dims[0] == -1 && x->dims[1] > 0)
            return true;
    fprintf(stderr, "%s: error: generate needs a model input of type i32[N, T] (the character ids); "
                    "model '%s' has none\n", file, mc_model_name(m));
    return false;
}

/* The output value with the scores: --value, or the only one; [1, T, V]
 * or [1, V], float. */
static const mc_tensor *scores_of(mc_model *m, const char *file, const mc_tensor *outs, int n,
                                  const GenArgs *a, int64_t T)
{
    const mc_tensor *s = NULL;
    for (int i = 0; i < n && !s; i++)
        if (a->value ? strcmp(outs[i].name, a->value) == 0 : n == 1)
            s = &outs[i];
    if (!s) {
        if (a->value)
            fprintf(stderr, "%s: error: model '%s' has no output value '%s'\n", file, mc_model_name(m), a->value);
        else
            fprintf(stderr, "%s: error: model '%s' has %d output values; choose the scores with --value NAME\n",
                    file, mc_model_name(m), n);
        return NULL;
    }
    bool ok = s->dtype != 2 && ((s->rank == 3 && s->dims[1] == T) || s->rank == 2) &&
              s->dims[s->rank - 1] >= 1 && s->dims[s->rank - 1] <= 256;
    if (!ok) {
        fprintf(stderr, "%s: error: output value '%s' must hold float scores of the next character, "
                        "[N, %lld, V] or [N, V] with V <= 256\n", file, s->name, (long long)T);
        return NULL;
    }
    return s;
}

static bool generate(mc_model *m, const char *file, const GenArgs *a)
{
    mc_tensor x;
    if (!find_text_input(m, file, &x))
        return false;
    if (!mc_init_params(m, 0) || !mc_load(m, a->weights, NULL, true))
        return fail(m);
    int64_t T = x.dims[1];
    size_t plen = strlen(a->prime), cap = plen + (size_t)a->length + 1;
    unsigned char *text = malloc(cap);
    int32_t *ids = malloc((size_t)T * sizeof *ids);
    double *p = malloc(256 * sizeof *p);
    if (!text || !ids || !p) {
        fprintf(stderr, "error: out of memory\n");
        free(text), free(ids), free(p);
        return false;
    }
    memcpy(text, a->prime, plen);
    size_t len = plen;
    uint64_t rng = a->seed;
    int64_t dims[2] = {1, T};
    mc_tensor in = {x.name, 2, 2, dims, ids};
    const mc_tensor *outs, *s;
    int nouts;
    /* A first run on filler (id 0, which every vocabulary has) finds the
     * scores' output value and the vocabulary size V. */
    memset(ids, 0, (size_t)T * sizeof *ids);
    bool ok = mc_predict(m, &in, 1, &outs, &nouts) || fail(m);
    s = ok ? scores_of(m, file, outs, nouts, a, T) : NULL;
    ok = s != NULL;
    int64_t vocab = ok ? s->dims[s->rank - 1] : 0;
    for (size_t k = 0; ok && k < plen; k++)
        if (text[k] >= vocab) {
            fprintf(stderr, "%s: error: byte 0x%02x at offset %zu of --prime is not one of the model's %lld "
                            "character ids\n", file, text[k], k, (long long)vocab);
            ok = false;
        }
    if (ok)
        fwrite(text, 1, len, stdout);
    for (int k = 0; ok && k < a->length; k++) {
        /* The last T characters. A shorter text starts the window and the
         * row of its last character is read ([N, T, V] scores: forward
         * recurrent layers never see the filler after it); for [N, V]
         * scores it ends the window, after filler. */
        int64_t have = (int64_t)len < T ? (int64_t)len : T;
        int64_t at = s->rank == 3 ? 0 : T - have;
        memset(ids, 0, (size_t)T * sizeof *ids);
        for (int64_t t = 0; t < have; t++)
            ids[at + t] = text[len - (size_t)have + (size_t)t];
        ok = mc_predict(m, &in, 1, &outs, &nouts) || fail(m);
        if (!ok)
            break;
        s = scores_of(m, file, outs, nouts, a, T);
        int64_t off = s->rank == 3 ? (have - 1) * vocab : 0;
        int c = sample(s, off, vocab, a->temperature, &rng, p);
        text[len++] = (unsigned char)c;
        fputc(c, stdout);
    }
    if (ok)
        fputc('\n', stdout);
    fflush(stdout);
    free(text), free(ids), free(p);
    return ok;
}

int cmd_generate(int argc, char **argv)
{
    GenArgs a = {.backend = "jit", .length = 200, .temperature = 1.0, .seed = 1};
    const char *file;
    int rc = parse(&a, argc, argv, &file);
    if (rc)
        return rc < 0 ? 0 : rc;
    mc_options mo;
    mc_options_default(&mo);
    mo.backend = strcmp(a.backend, "interp") == 0 ? MC_BACKEND_INTERP : MC_BACKEND_JIT;
    mo.threads = a.threads;
    mo.eval_only = true;
    mc_model *m = mc_compile(file, &mo);
    if (!m) {
        fputs(mc_last_error(NULL), stderr);
        return 1;
    }
    fputs(mc_warnings(m), stderr);
    bool ok = generate(m, file, &a);
    mc_free(m);
    return ok ? 0 : 1;
}
