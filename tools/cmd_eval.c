/* modelc eval: loss and metrics of a model with given weights on a data
 * set, in inference mode (batchnorm moving statistics, no dropout), or
 * with --mode train in training mode (batch statistics, dropout; nothing
 * is updated; warns). The data loads on a second thread while the model
 * compiles; the inference function is compiled before the clock starts,
 * so "seconds" and "samples_per_s" time inference alone; --warmup K runs
 * the first batch K times before the clock starts (the first run of a
 * batch size allocates its workspace and the BLAS threads' buffers). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "data_cli.h"

typedef struct EvalData {
    const DataArgs *da;
    const mc_options *mo;
    const char *model, *split;
    mc_data *ds;
    char *err;
} EvalData;

/* 8-bit data is converted to floats once, while the model compiles, when
 * that takes at most this much memory (all of Fashion-MNIST's training
 * images: 188 MB): then every batch is a view into the data, with no
 * copy or conversion timed. Larger data stays bytes. */
#define EVAL_DECODE_MAX ((int64_t)512 << 20)

/* The data thread's work (data_bg_start). A source without a test split
 * (CSV, NPY, safetensors) is evaluated whole. */
static int load_eval_data(void *ctx)
{
    EvalData *e = ctx;
    mc_data_options o;
    data_options(e->da, e->mo, NULL, 0, e->split, 0, &o);
    o.decode_max = EVAL_DECODE_MAX;
    e->ds = mc_data_load(e->model, &o, &e->err);
    if (!e->ds && !e->err && strcmp(e->split, "test") == 0 && e->da->data.n) {
        o.split = "train";
        e->ds = mc_data_load(e->model, &o, &e->err);
    }
    if (!e->ds && !e->err)
        e->err = strdup("error: the data has no test split\n");
    return e->ds ? 0 : 1;
}

int cmd_eval(int argc, char **argv)
{
    DataArgs da;
    memset(&da, 0, sizeof da);
    const char *weights = NULL, *split = "test", *backend = NULL, *mode = "infer", *dump_ir = NULL, *precision = NULL;
    int batch = 0, threads = 0, warmup = 0;
    bool json = false, batch_set = false, profile = false;
    CliOpt opts[] = {
        DATA_CLI_OPTS(da),
        {"weights", CLI_STR, &weights, "W.safetensors", "parameters (required)", NULL},
        {"split", CLI_STR, &split, "test|train", "which split of an IDX data set (default test)", NULL},
        {"batch", CLI_INT, &batch, "B", "batch size (default: the model's train block)", &batch_set},
        {"json", CLI_FLAG, &json, NULL, "print the result as one JSON object", NULL},
        {"threads", CLI_INT, &threads, "N", "threads (default: all cores)", NULL},
        {"precision", CLI_STR, &precision, "f32|bf16", CLI_PRECISION_HELP, NULL},
        {"warmup", CLI_INT, &warmup, "K",
         "evaluate the first batch K times before timing (not counted in the results; default 0)", NULL},
        {"backend", CLI_STR, &backend, "jit|interp", "execution backend (default jit)", NULL},
        {"profile", CLI_FLAG, &profile, NULL,
         "time every kernel of the inference function over all batches (warm-up included); table on stderr", NULL},
        {"dump-ir", CLI_STR, &dump_ir, "DIR", "write DIR/eval.ir: the IR of the function, as compiled", NULL},
        {"mode", CLI_STR, &mode, "infer|train",
         "the graph to evaluate (default infer); train uses batch statistics and active dropout, "
         "updates nothing, and warns", NULL},
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
    if (batch_set && batch < 1)
        return cli_usage_error("eval", "--batch must be at least 1, got %d", batch);
    if (threads < 0)
        return cli_usage_error("eval", "--threads must not be negative, got %d", threads);
    if (warmup < 0)
        return cli_usage_error("eval", "--warmup must not be negative, got %d", warmup);
    if ((rc = data_args_check("eval", &da)))
        return rc;
    mc_options mo;
    mc_options_default(&mo);
    mo.threads = threads;
    mo.eval_only = true;
    if ((rc = cli_precision("eval", precision, &mo.precision)))
        return rc;
    mo.dump_ir = dump_ir;
    if (strcmp(mode, "train") == 0)
        mo.eval_mode = MC_MODE_TRAIN;
    else if (strcmp(mode, "infer") != 0)
        return cli_usage_error("eval", "--mode must be infer or train, got '%s'", mode);
    if (backend && strcmp(backend, "interp") == 0)
        mo.backend = MC_BACKEND_INTERP;
    else if (backend && strcmp(backend, "jit") != 0)
        return cli_usage_error("eval", "--backend must be jit or interp, got '%s'", backend);
    if (profile && mo.backend != MC_BACKEND_JIT)
        return cli_usage_error("eval", "--profile needs the jit backend");
    mo.profile = profile;
    if (dump_ir && cli_check_dump_dir("--dump-ir", dump_ir, "eval"))
        return 1;
    EvalData ed = {.da = &da, .mo = &mo, .model = file, .split = split};
    DataBg bg;
    data_bg_start(&bg, load_eval_data, &ed);
    mc_model *m = mc_compile(file, &mo);
    rc = data_bg_wait(&bg);
    if (!m) {
        fputs(mc_last_error(NULL), stderr);
        rc = 1;
    } else if (fputs(mc_warnings(m), stderr), !mc_has_loss(m)) {
        fprintf(stderr, "modelc eval: %s has no loss to evaluate\n", file);
        rc = 1;
    } else if (!mc_init_params(m, 0) || !mc_load(m, weights, NULL, true)) {
        fputs(mc_last_error(m), stderr);
        rc = 1;
    } else if (rc) {
        fputs(ed.err, stderr);
    }
    free(ed.err);
    if (rc) {
        mc_data_free(ed.ds);
        mc_free(m);
        return 1;
    }
    if (!batch_set)
        batch = mc_train_defaults(m).batch;
    mc_data *ds = ed.ds;
    int64_t n = mc_data_count(ds);
    double t_compile = cli_now_ms();
    if (rc == 0 && !mc_prepare_eval(m)) {
        fputs(mc_last_error(m), stderr);
        rc = 1;
    }
    double compile_ms = cli_now_ms() - t_compile;
    if (rc == 0)
        mc_release_compiler_memory();
    double t_warm = cli_now_ms();
    for (int k = 0; k < warmup && rc == 0 && n > 0; k++) {
        const mc_tensor *v;
        int nv;
        double l, mm[MC_MAX_METRICS];
        if (mc_data_batch(ds, NULL, 0, batch, &v, &nv) < 0) {
            fputs(mc_data_error(ds), stderr);
            rc = 1;
        } else if (!mc_eval_batch(m, v, nv, &l, mm, MC_MAX_METRICS)) {
            fputs(mc_last_error(m), stderr);
            rc = 1;
        }
    }
    double warmup_ms = cli_now_ms() - t_warm;
    if (rc == 0) {
        double tl = 0, tm[MC_MAX_METRICS] = {0}, t0 = cli_now_ms();
        for (int64_t start = 0; start < n && rc == 0; start += batch) {
            const mc_tensor *v;
            int nv;
            int64_t rows = mc_data_batch(ds, NULL, start, batch, &v, &nv);
            double l, mm[MC_MAX_METRICS];
            if (rows < 0) {
                fputs(mc_data_error(ds), stderr);
                rc = 1;
                break;
            }
            if (!mc_eval_batch(m, v, nv, &l, mm, MC_MAX_METRICS)) {
                fputs(mc_last_error(m), stderr);
                rc = 1;
                break;
            }
            tl += l * (double)rows;
            for (int i = 0; i < mc_num_metrics(m); i++)
                tm[i] += mm[i] * (double)rows;
        }
        double secs = (cli_now_ms() - t0) / 1e3, nn = (double)(n ? n : 1);
        if (rc == 0 && json) {
            printf("{\"examples\": %lld, \"seconds\": %.4f, \"samples_per_s\": %.1f, "
                   "\"compile_ms\": %.3f, \"warmup_ms\": %.3f, \"loss\": %.9g",
                   (long long)n, secs, secs > 0 ? (double)n / secs : 0.0, compile_ms, warmup_ms, tl / nn);
            for (int i = 0; i < mc_num_metrics(m); i++)
                printf(", \"%s\": %.9g", mc_metric_name(m, i), tm[i] / nn);
            printf("}\n");
        } else if (rc == 0) {
            printf("%lld examples (%s mode) - loss: %.4f", (long long)n,
                   mo.eval_mode == MC_MODE_TRAIN ? "training" : "inference", tl / nn);
            for (int i = 0; i < mc_num_metrics(m); i++)
                printf(" - %s: %.4f", mc_metric_name(m, i), tm[i] / nn);
            printf("\n");
        }
    }
    if (profile && rc == 0) {
        const char *report = mc_profile_report(m);
        fputs(report ? report : mc_last_error(m), stderr);
    }
    mc_data_free(ds);
    mc_free(m);
    return rc;
}
