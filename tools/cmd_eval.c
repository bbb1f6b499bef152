/* modelc eval: loss and metrics of a model with given weights on a data
 * set, in inference mode (batchnorm moving statistics, no dropout), or
 * with --mode train in training mode (batch statistics, dropout; nothing
 * is updated; warns). The data loads on a second thread while the model
 * compiles; the inference function is compiled before the clock starts,
 * so "seconds" and "samples_per_s" time inference alone. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "data_cli.h"

typedef struct EvalData {
    const DataArgs *da;
    const char *split;
    Dataset ds;
    bool have;
} EvalData;

/* The data thread's work (data_bg_start). */
static int load_eval_data(void *ctx, const Graph *g, uint64_t seed, Diags *d)
{
    EvalData *e = ctx;
    if (!data_load(e->da, e->split, g, seed, &e->ds, &e->have, d))
        return 1;
    if (!e->have) {
        diag_error(d, (SrcLoc){0}, "the data has no %s split; pass the file with --data", e->split);
        return 1;
    }
    return 0;
}

int cmd_eval(int argc, char **argv)
{
    DataArgs da;
    memset(&da, 0, sizeof da);
    const char *weights = NULL, *split = "test", *backend = NULL, *mode = "infer", *dump_ir = NULL;
    int batch = 0, threads = 0;
    bool json = false;
    CliOpt opts[] = {
        DATA_CLI_OPTS(da),
        {"weights", CLI_STR, &weights, "W.safetensors", "parameters (required)"},
        {"split", CLI_STR, &split, "test|train", "which split of an IDX data set (default test)"},
        {"batch", CLI_INT, &batch, "B", "batch size (default: the model's train block)"},
        {"json", CLI_FLAG, &json, NULL, "print the result as one JSON object"},
        {"threads", CLI_INT, &threads, "N", "threads (default: all cores)"},
        {"backend", CLI_STR, &backend, "jit|interp", "execution backend (default jit)"},
        {"dump-ir", CLI_STR, &dump_ir, "DIR", "write DIR/eval.ir: the IR of the function, as compiled"},
        {"mode", CLI_STR, &mode, "infer|train",
         "the graph to evaluate (default infer); train uses batch statistics and active dropout, "
         "updates nothing, and warns"},
    };
    CliCmd c = {"eval", "FILE --weights W.safetensors [options]",
                "Evaluate loss and metrics on a data set (in inference mode unless --mode train).", opts, ARRAY_LEN(opts), 1, 1};
    char **pos;
    int npos;
    int rc = cli_parse(&c, argc, argv, &pos, &npos);
    if (rc)
        return rc < 0 ? 0 : rc;
    const char *file = pos[0];
    free(pos);
    if (!weights)
        return cli_usage_error("eval", "--weights is required");
    if (strcmp(split, "test") && strcmp(split, "train"))
        return cli_usage_error("eval", "--split must be test or train, got '%s'", split);
    if (batch < 0 || threads < 0 || da.limit < 0)
        return cli_usage_error("eval", "--batch, --threads and --limit must be positive");
    mc_options mo;
    mc_options_default(&mo);
    mo.threads = threads;
    mo.eval_only = true;
    mo.dump_ir = dump_ir;
    if (strcmp(mode, "train") == 0)
        mo.eval_mode = MC_MODE_TRAIN;
    else if (strcmp(mode, "infer") != 0)
        return cli_usage_error("eval", "--mode must be infer or train, got '%s'", mode);
    if (backend && strcmp(backend, "interp") == 0)
        mo.backend = MC_BACKEND_INTERP;
    else if (backend && strcmp(backend, "jit") != 0)
        return cli_usage_error("eval", "--backend must be jit or interp, got '%s'", backend);
    EvalData ed = {.da = &da, .split = split};
    rt_dataset_init(&ed.ds);
    DataBg bg;
    data_bg_start(&bg, file, &mo, load_eval_data, &ed);
    mc_model *m = mc_compile(file, &mo);
    if (!m || !m->geval) {
        data_bg_cancel(&bg);
        rt_dataset_free(&ed.ds);
    }
    if (!m) {
        fputs(mc_last_error(NULL), stderr);
        return 1;
    }
    fputs(mc_warnings(m), stderr);
    if (!m->geval) {
        fprintf(stderr, "modelc eval: %s has no loss to evaluate\n", file);
        mc_free(m);
        return 1;
    }
    if (batch == 0)
        batch = m->src->train.batch;
    rc = 0;
    mc_init_params(m, 0);
    if (!mc_load(m, weights, NULL, true)) {
        data_bg_cancel(&bg);
        fputs(mc_last_error(m), stderr);
        rc = 1;
    } else {
        rc = data_bg_finish(&bg);
    }
    Dataset ds = ed.ds; /* the data thread has ended */
    double t_compile = mc_now_ms();
    if (rc == 0 && !mc_prepare_eval(m)) {
        fputs(mc_last_error(m), stderr);
        rc = 1;
    }
    double compile_ms = mc_now_ms() - t_compile;
    if (rc == 0) {
        TensorMap b;
        rt_map_init(&b);
        double tl = 0, tm[MC_MAX_METRICS] = {0}, t0 = mc_now_ms();
        for (int64_t start = 0; start < ds.n && rc == 0; start += batch) {
            int64_t rows = rt_dataset_batch(&ds, NULL, start, batch, &b);
            mc_tensor v[16];
            int nv = data_views(&b, v, 16);
            double l, mm[MC_MAX_METRICS];
            if (!mc_eval_batch(m, v, nv, &l, mm, MC_MAX_METRICS)) {
                fputs(mc_last_error(m), stderr);
                rc = 1;
                break;
            }
            tl += l * (double)rows;
            for (int i = 0; i < mc_num_metrics(m); i++)
                tm[i] += mm[i] * (double)rows;
        }
        double secs = (mc_now_ms() - t0) / 1e3, n = (double)(ds.n ? ds.n : 1);
        if (rc == 0 && json) {
            printf("{\"examples\": %lld, \"seconds\": %.4f, \"samples_per_s\": %.1f, "
                   "\"compile_ms\": %.3f, \"loss\": %.9g",
                   (long long)ds.n, secs, secs > 0 ? (double)ds.n / secs : 0.0, compile_ms, tl / n);
            for (int i = 0; i < mc_num_metrics(m); i++)
                printf(", \"%s\": %.9g", mc_metric_name(m, i), tm[i] / n);
            printf("}\n");
        } else if (rc == 0) {
            printf("%lld examples (%s mode) - loss: %.4f", (long long)ds.n,
                   mo.eval_mode == MC_MODE_TRAIN ? "training" : "inference", tl / n);
            for (int i = 0; i < mc_num_metrics(m); i++)
                printf(" - %s: %.4f", mc_metric_name(m, i), tm[i] / n);
            printf("\n");
        }
        rt_map_free(&b);
    }
    rt_dataset_free(&ds);
    mc_free(m);
    return rc;
}
