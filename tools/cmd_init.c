/* `modelc init FILE -o W.safetensors [--seed S]`: compile a model, give
 * every parameter its initial value (rt_init_params) and write them to a
 * safetensors file atomically. The metadata records the format, its
 * version, the model name and the seed. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "runtime/runtime.h"
#include "runtime/io/io.h"

typedef struct InitArgs {
    const char *output;
    uint64_t seed;
    bool seed_set;
} InitArgs;

static int parse(InitArgs *a, int argc, char **argv, const char **file)
{
    CliOpt opts[] = {
        {"output", CLI_STR, &a->output, "W.safetensors", "where to write the parameters (also -o)"},
        {"seed", CLI_U64, &a->seed, "S", "seed for the random initializers (default: the model's)"},
    };
    CliCmd cmd = {"init", "FILE -o W.safetensors [--seed S]",
                  "Initialise every parameter of a model with its initializer and write them\n"
                  "to a safetensors file (replaced atomically).",
                  opts, ARRAY_LEN(opts), 1, 1};
    return cli_parse_output_seed(&cmd, argc, argv, file, &a->output, "W.safetensors", &a->seed, &a->seed_set);
}

/* Parameters without an initializer are left out (with a warning); ones
 * too large to allocate are errors at their source location. */
static bool check_sizes(const Graph *g, Diags *d)
{
    bool ok = true;
    for (int i = 0; i < g->nnodes; i++) {
        const Node *p = g->nodes[i];
        if (p->op != OP_PARAM)
            continue;
        char ty[128];
        ir_type_str(p->dt, &p->shape, ty, sizeof ty);
        int64_t numel = ir_shape_numel(&p->shape, 0), bytes;
        if (ir_shape_has_n(&p->shape) || numel < 0 ||
            mul_overflow_i64(numel, ir_dtype_size(p->dt), &bytes) || bytes > RT_TENSOR_MAX_BYTES) {
            diag_error(d, p->loc, "parameter '%s' (%s) is too large to initialise", p->a.name, ty);
            ok = false;
        } else if (p->a.init.kind == INIT_NONE) {
            diag_warning(d, p->loc,
                         "parameter '%s' has no initializer; it is left out and must come from a "
                         "checkpoint",
                         p->a.name);
        }
    }
    return ok;
}

static bool write_params(const Graph *g, const InitArgs *a, uint64_t seed, Diags *d)
{
    TensorMap m;
    rt_map_init(&m);
    rt_init_params(g, &m, seed, true);
    Metadata meta;
    rt_meta_init(&meta);
    char seedstr[32];
    snprintf(seedstr, sizeof seedstr, "%" PRIu64, seed);
    rt_meta_set(&meta, RT_META_FORMAT, RT_META_FORMAT_NAME);
    rt_meta_set(&meta, RT_META_FORMAT_VERSION, RT_FORMAT_VERSION);
    rt_meta_set(&meta, RT_META_MODEL, g->name);
    rt_meta_set(&meta, RT_META_SEED, seedstr);
    bool ok = rt_safetensors_write(a->output, &m, &meta, d);
    if (ok) {
        int64_t values = 0;
        for (int i = 0; i < m.n; i++)
            values += m.t[i]->numel;
        printf("wrote %d parameters (%" PRId64 " values) of model '%s' to %s (seed %s)\n", m.n,
               values, g->name, a->output, seedstr);
    }
    rt_meta_free(&meta);
    rt_map_free(&m);
    return ok;
}

int cmd_init(int argc, char **argv)
{
    InitArgs a = {0};
    const char *file;
    int rc = parse(&a, argc, argv, &file);
    if (rc)
        return rc < 0 ? 0 : rc;
    Diags d;
    diags_init(&d);
    Graph *g = cli_load(file, &d);
    int shown = d.n;
    bool ok = g != NULL;
    if (ok) {
        uint64_t seed = a.seed_set ? a.seed : g->train.seed;
        ok = check_sizes(g, &d) && write_params(g, &a, seed, &d);
    }
    diags_print_from(&d, stderr, shown);
    ir_graph_free(g);
    diags_free(&d);
    return ok ? 0 : 1;
}
