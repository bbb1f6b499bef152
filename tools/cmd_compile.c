/* `modelc compile FILE -o OUT.o --header OUT.h [options]`: the model's
 * functions compiled ahead of time into a relocatable object and a C
 * header (include/modelc_inspect.h, mc_compile_aot). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "modelc_inspect.h"

typedef struct CompileArgs {
    const char *output, *header, *weights, *name, *target, *cpu;
    CliList fns;
    int batch, batch_max;
    bool embed, weights_file, batch_given, batch_max_given, seed_given;
    uint64_t seed;
} CompileArgs;

static bool is_ident(const char *s)
{
    if (!*s || (!isalpha((unsigned char)*s) && *s != '_'))
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_')
            return false;
    return true;
}

static int parse(CompileArgs *a, int argc, char **argv, const char **file)
{
    const CliOpt opts[] = {
        {"output", CLI_STR, &a->output, "OUT.o", "the object file to write (also -o; required)", NULL},
        {"header", CLI_STR, &a->header, "OUT.h", "the C header to write (default: OUT.o with .h)", NULL},
        {"weights", CLI_STR, &a->weights, "W.safetensors",
         "parameter values (default: the model's initialisers with the seed)", NULL},
        {"fn", CLI_MULTI, &a->fns, "NAME", "predict, eval or train_step; repeatable or comma-separated (default: predict)",
         NULL},
        {"batch", CLI_INT, &a->batch, "N", "compile for exactly N examples per call", &a->batch_given},
        {"batch-max", CLI_INT, &a->batch_max, "N", "any batch up to N per call (default: the train block's batch)",
         &a->batch_max_given},
        {"embed-weights", CLI_FLAG, &a->embed, NULL, "put the parameter values into the object (the default)", NULL},
        {"weights-file", CLI_FLAG, &a->weights_file, NULL,
         "embed no values: the program passes a safetensors file to <name>_init", NULL},
        {"name", CLI_STR, &a->name, "C_IDENT", "prefix of the generated symbols (default: the model's name)", NULL},
        {"target", CLI_STR, &a->target, "TRIPLE", "LLVM target triple, e.g. aarch64-linux-gnu (default: the host)",
         NULL},
        {"cpu", CLI_STR, &a->cpu, "NAME", "CPU to tune for (default: the host's; generic with --target)", NULL},
        {"seed", CLI_U64, &a->seed, "S", "seed of the initialisers and dropout (default: the train block's)",
         &a->seed_given},
    };
    const CliCmd cmd = {"compile", "FILE -o OUT.o [--header OUT.h] [--weights W.safetensors] [options]",
                        "Compile a model's functions ahead of time into an object file and a C header;\n"
                        "the program links libmodelc-rt and OpenBLAS (pkg-config modelc-rt), not LLVM.",
                        opts, ARRAY_LEN(opts), 1, 1};
    char **av = cli_expand_output(argc, argv), **pos;
    int npos;
    int rc = cli_parse(&cmd, argc, av, &pos, &npos);
    free(av);
    if (rc)
        return rc < 0 ? -1 : rc;
    *file = pos[0];
    free(pos);
    if (!a->output)
        return cli_usage_error("compile", "missing the object file (-o OUT.o)");
    if (a->batch_given && a->batch_max_given)
        return cli_usage_error("compile", "--batch and --batch-max exclude each other");
    if ((a->batch_given && a->batch < 1) || (a->batch_max_given && a->batch_max < 1))
        return cli_usage_error("compile", "%s must be at least 1, got %d", a->batch_given ? "--batch" : "--batch-max",
                               a->batch_given ? a->batch : a->batch_max);
    if (a->embed && a->weights_file)
        return cli_usage_error("compile", "--embed-weights and --weights-file exclude each other");
    if (a->cpu && !*a->cpu)
        return cli_usage_error("compile", "--cpu needs a CPU name");
    if (a->name && !is_ident(a->name))
        return cli_usage_error("compile", "--name '%s' is not a C identifier (letters, digits, '_'; not a digit first)",
                               a->name);
    return 0;
}

static int check_fns(const char *const *v, int n)
{
    static const char *const known[] = {"predict", "eval", "train_step"};
    for (int i = 0; i < n; i++) {
        bool ok = false;
        for (int k = 0; k < ARRAY_LEN(known); k++)
            ok |= strcmp(v[i], known[k]) == 0;
        if (!ok)
            return cli_usage_error("compile", "unknown function '%s' for --fn (expected predict, eval or train_step)",
                                   v[i]);
    }
    return 0;
}

/* "--fn a,b --fn c" -> a, b, c (strings owned by *buf). */
static int split_fns(const CliList *l, const char **v, int cap, char **buf)
{
    size_t len = 1;
    for (int i = 0; i < l->n; i++)
        len += strlen(l->v[i]) + 1;
    char *s = *buf = calloc(len, 1), *save = NULL;
    int n = 0;
    for (int i = 0; i < l->n; i++) {
        strcat(s, l->v[i]);
        strcat(s, ",");
    }
    for (char *t = strtok_r(s, ",", &save); t && n < cap; t = strtok_r(NULL, ",", &save))
        v[n++] = t;
    return n;
}

static char *default_header(const char *obj)
{
    size_t n = strlen(obj);
    char *h = malloc(n + 3);
    memcpy(h, obj, n + 1);
    if (n > 2 && strcmp(h + n - 2, ".o") == 0)
        h[n - 2] = 0;
    strcat(h, ".h");
    return h;
}

int cmd_compile(int argc, char **argv)
{
    CompileArgs a = {0};
    const char *file;
    int rc = parse(&a, argc, argv, &file);
    if (rc)
        return rc < 0 ? 0 : rc;
    char *hdr = a.header ? NULL : default_header(a.output);
    if (!a.header)
        a.header = hdr;
    if (cli_check_output_file("-o", a.output) || cli_check_output_file("--header", a.header)) {
        free(hdr);
        return 1;
    }
    mc_aot_options o;
    mc_aot_options_default(&o);
    const char *fns[64];
    char *fbuf = NULL;
    o.output = a.output;
    o.header = a.header;
    o.weights = a.weights;
    o.nfns = split_fns(&a.fns, fns, 64, &fbuf);
    if ((rc = check_fns(fns, o.nfns)) != 0) {
        free(fbuf);
        free(hdr);
        return rc;
    }
    o.fns = fns;
    o.batch = a.batch_given ? a.batch : 0;
    o.batch_max = a.batch_max_given ? a.batch_max : 0;
    o.weights_file = a.weights_file;
    o.name = a.name;
    o.target = a.target;
    o.cpu = a.cpu;
    o.seed = a.seed;
    o.seed_set = a.seed_given;
    rc = mc_compile_aot(file, &o, stdout, stderr);
    free(fbuf);
    free(hdr);
    return rc;
}
