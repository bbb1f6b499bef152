/* `modelc params FILE`: a Keras-summary-like table of a model's
 * parameters (name, shape, dtype, initializer, status, count) and the
 * trainable / non-trainable / total counts and bytes. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

typedef struct Row {
    const char *cols[6];
} Row;

static const char *status_of(const Graph *g, const Node *p, const CliList *extra)
{
    if (p->a.role == ROLE_STATE)
        return "state";
    if (p->a.role == ROLE_SLOT)
        return "slot";
    if (!p->a.trainable)
        return "frozen";
    for (int i = 0; i < g->train.nfreeze; i++)
        if (ir_glob_match(g->train.freeze[i], p->a.name))
            return "frozen";
    for (int i = 0; i < extra->n; i++)
        if (ir_glob_match(extra->v[i], p->a.name))
            return "frozen";
    return "trainable";
}

static char *init_str(Arena *a, const Init *in)
{
    char x[40], y[40];
    fmt_double(x, sizeof x, in->a);
    fmt_double(y, sizeof y, in->b);
    switch (in->kind) {
    case INIT_CONSTANT:
        return arena_printf(a, "constant(%s)", x);
    case INIT_NORMAL:
    case INIT_TRUNC_NORMAL:
    case INIT_UNIFORM:
        return arena_printf(a, "%s(%s, %s)", ir_init_name(in->kind), x, y);
    default:
        return arena_strdup(a, ir_init_name(in->kind));
    }
}

static void print_rows(const Row *rows, int n)
{
    static const bool right[6] = {false, false, false, false, false, true};
    int w[6] = {0};
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 6; k++) {
            int l = (int)strlen(rows[i].cols[k]);
            if (l > w[k])
                w[k] = l;
        }
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < 6; k++) {
            const char *s = rows[i].cols[k];
            if (k == 5)
                printf("%*s", w[k], s);
            else
                printf("%-*s  ", right[k] ? w[k] : w[k], s);
        }
        putchar('\n');
        if (i == 0) {
            int total = 0;
            for (int k = 0; k < 6; k++)
                total += w[k] + (k < 5 ? 2 : 0);
            for (int k = 0; k < total; k++)
                putchar('-');
            putchar('\n');
        }
    }
}

static const char *human_bytes(Arena *a, int64_t b)
{
    if (b < 1024 * 1024)
        return arena_printf(a, "%.2f KiB", (double)b / 1024);
    return arena_printf(a, "%.2f MiB", (double)b / (1024.0 * 1024.0));
}

static void print_summary(Graph *g, const CliList *extra)
{
    Arena *a = arena_new();
    Row *rows = xcalloc((size_t)g->nnodes + 1, sizeof(Row));
    int n = 0;
    rows[n++] = (Row){{"name", "shape", "dtype", "initializer", "status", "count"}};
    int64_t trainable = 0, fixed = 0, bytes = 0;
    for (int i = 0; i < g->nnodes; i++) {
        Node *p = g->nodes[i];
        if (p->op != OP_PARAM)
            continue;
        char sh[128];
        int64_t k = ir_shape_numel(&p->shape, 1);
        const char *st = status_of(g, p, extra);
        rows[n++] = (Row){{p->a.name, arena_strdup(a, ir_shape_str(&p->shape, sh, sizeof sh)),
                           ir_dtype_name(p->dt), init_str(a, &p->a.init), st,
                           arena_printf(a, "%lld", (long long)k)}};
        if (strcmp(st, "trainable") == 0)
            trainable += k;
        else
            fixed += k;
        bytes += k * ir_dtype_size(p->dt);
    }
    printf("Model: %s\n\n", g->name);
    if (n > 1)
        print_rows(rows, n);
    else
        puts("(no parameters)");
    printf("\nTrainable params:     %lld\n", (long long)trainable);
    printf("Non-trainable params: %lld\n", (long long)fixed);
    if (bytes < 1024)
        printf("Total params:         %lld (%lld bytes)\n", (long long)(trainable + fixed),
               (long long)bytes);
    else
        printf("Total params:         %lld (%lld bytes, %s)\n", (long long)(trainable + fixed),
               (long long)bytes, human_bytes(a, bytes));
    free(rows);
    arena_free(a);
}

int cmd_params(int argc, char **argv)
{
    CliList freeze = {0};
    const CliOpt opts[] = {
        {"freeze", CLI_MULTI, &freeze, "PATTERN", "also treat parameters matching PATTERN as frozen"},
    };
    const CliCmd cmd = {"params", "FILE [options]",
                        "Print a table of the model's parameters: name, shape, dtype, initializer,\n"
                        "status (trainable, frozen or state) and element count, with totals.",
                        opts, ARRAY_LEN(opts), 1, 1};
    char **files;
    int nfiles;
    int rc = cli_parse(&cmd, argc, argv, &files, &nfiles);
    if (rc)
        return rc < 0 ? 0 : rc;
    Diags d;
    diags_init(&d);
    Graph *g = cli_load(files[0], &d);
    free(files);
    if (!g) {
        diags_free(&d);
        return 1;
    }
    print_summary(g, &freeze);
    ir_graph_free(g);
    diags_free(&d);
    return 0;
}
