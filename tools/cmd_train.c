/* modelc train: compile the training step, then run epochs over the data
 * through the public C API with a Keras-style progress line, validation,
 * checkpoints (atomic, every epoch), resume and machine-readable logs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "data_cli.h"

typedef struct TrainArgs {
    DataArgs data;
    int epochs, batch;
    double lr;
    uint64_t seed;
    const char *save, *resume, *init_from, *only, *log, *backend, *test_data;
    CliList freeze;
    bool json, eval_train, time_passes, no_progress, no_test, profile;
    int threads;
} TrainArgs;

typedef struct EpochStats {
    double loss, metric[MC_MAX_METRICS];
    int64_t seen;
} EpochStats;

static double lr_at(const TrainConfig *t, double lr0, int epoch, int epochs, int64_t step,
                    int64_t steps_per_epoch)
{
    switch (t->sched) {
    case SCHED_STEP:
        return lr0 * pow(t->sched_gamma, (double)(epoch / (t->sched_step > 0 ? t->sched_step : 1)));
    case SCHED_COSINE: {
        double total = (double)epochs * (double)steps_per_epoch;
        double frac = total > 0 ? (double)step / total : 0;
        return lr0 * 0.5 * (1 + cos(M_PI * (frac > 1 ? 1 : frac)));
    }
    default:
        return lr0;
    }
}

static void print_metrics(FILE *f, mc_model *m, const char *prefix, double loss, const double *met)
{
    fprintf(f, " - %sloss: %.4f", prefix, loss);
    for (int i = 0; i < mc_num_metrics(m); i++)
        fprintf(f, " - %s%s: %.4f", prefix, mc_metric_name(m, i), met[i]);
}

static void progress(mc_model *m, int64_t b, int64_t nb, double secs, const EpochStats *s,
                     bool final)
{
    int width = 30, done = nb ? (int)(width * b / nb) : width;
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < done ? '=' : i == done ? '>' : '.';
    bar[width] = 0;
    if (final)
        memset(bar, '=', (size_t)width);
    printf("\r%lld/%lld [%s] %.0fs %.0fms/step", (long long)b, (long long)nb, bar, secs,
           b ? 1e3 * secs / (double)b : 0.0);
    double met[MC_MAX_METRICS];
    for (int i = 0; i < mc_num_metrics(m); i++)
        met[i] = s->metric[i] / (double)(s->seen ? s->seen : 1);
    print_metrics(stdout, m, "", s->loss / (double)(s->seen ? s->seen : 1), met);
    fflush(stdout);
}

/* Loss and metrics over a whole data set in inference mode, weighted by
 * batch size. */
static bool evaluate(mc_model *m, const Dataset *ds, int batch, double *loss, double *met)
{
    TensorMap b;
    rt_map_init(&b);
    double tl = 0, tm[MC_MAX_METRICS] = {0};
    int64_t seen = 0;
    for (int64_t start = 0; start < ds->n; start += batch) {
        int64_t rows = rt_dataset_batch(ds, NULL, start, batch, &b);
        mc_tensor v[16];
        int nv = data_views(&b, v, 16);
        double l, mm[MC_MAX_METRICS];
        if (!mc_eval_batch(m, v, nv, &l, mm, MC_MAX_METRICS)) {
            rt_map_free(&b);
            return false;
        }
        tl += l * (double)rows;
        for (int i = 0; i < mc_num_metrics(m); i++)
            tm[i] += mm[i] * (double)rows;
        seen += rows;
    }
    rt_map_free(&b);
    *loss = tl / (double)(seen ? seen : 1);
    for (int i = 0; i < mc_num_metrics(m); i++)
        met[i] = tm[i] / (double)(seen ? seen : 1);
    return true;
}

static FILE *open_log(const char *path, mc_model *m, bool val)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return NULL;
    fprintf(f, "epoch,step,lr,loss");
    for (int i = 0; i < mc_num_metrics(m); i++)
        fprintf(f, ",%s", mc_metric_name(m, i));
    if (val) {
        fprintf(f, ",val_loss");
        for (int i = 0; i < mc_num_metrics(m); i++)
            fprintf(f, ",val_%s", mc_metric_name(m, i));
    }
    fprintf(f, ",seconds\n");
    return f;
}

static void json_metrics(FILE *f, mc_model *m, const char *prefix, double loss, const double *met)
{
    fprintf(f, ", \"%sloss\": %.9g", prefix, loss);
    for (int i = 0; i < mc_num_metrics(m); i++)
        fprintf(f, ", \"%s%s\": %.9g", prefix, mc_metric_name(m, i), met[i]);
}

static int fail_model(mc_model *m)
{
    fprintf(stderr, "%s", mc_last_error(m));
    size_t n = strlen(mc_last_error(m));
    if (n && mc_last_error(m)[n - 1] != '\n')
        fputc('\n', stderr);
    return 1;
}

typedef struct Run {
    TrainArgs *a;
    mc_model *m;
    Dataset train, val, test;
    bool have_val, have_test;
    FILE *log;
    bool first_step_done;
} Run;

static int run_epochs(Run *r)
{
    TrainArgs *a = r->a;
    mc_model *m = r->m;
    const TrainConfig *tc = &m->src->train;
    int64_t n = r->train.n, nb = (n + a->batch - 1) / a->batch;
    int64_t *perm = xmalloc((size_t)(n ? n : 1) * sizeof(int64_t));
    TensorMap b;
    rt_map_init(&b);
    bool tty = isatty(1) && !a->no_progress && !a->json;
    int rc = 0;
    for (int epoch = m->epoch; epoch < a->epochs && rc == 0; epoch++) {
        if (!a->json)
            printf("Epoch %d/%d\n", epoch + 1, a->epochs);
        rt_perm_identity(perm, n);
        rt_shuffle(perm, n, m->seed, (uint64_t)epoch);
        EpochStats s = {0};
        double t0 = mc_now_ms(), lr = a->lr;
        for (int64_t bi = 0; bi < nb; bi++) {
            int64_t rows = rt_dataset_batch(&r->train, perm, bi * a->batch, a->batch, &b);
            mc_tensor v[16];
            int nv = data_views(&b, v, 16);
            lr = lr_at(tc, a->lr, epoch, a->epochs, mc_step(m), nb);
            double loss, met[MC_MAX_METRICS];
            if (!mc_train_step_ex(m, v, nv, lr, &loss, met)) {
                if (tty)
                    printf("\n");
                fflush(stdout);
                fprintf(stderr, "modelc train: epoch %d, batch %lld: ", epoch + 1, (long long)bi + 1);
                fail_model(m);
                if (a->save)
                    fprintf(stderr, "modelc train: stopped; the last good checkpoint %s is kept\n",
                            a->save);
                rc = 1;
                break;
            }
            if (a->json && !r->first_step_done) {
                printf("{\"event\": \"first_step\", \"since_start_ms\": %.3f}\n", cli_since_start_ms());
                fflush(stdout);
            }
            r->first_step_done = true;
            s.loss += loss * (double)rows;
            for (int i = 0; i < mc_num_metrics(m); i++)
                s.metric[i] += met[i] * (double)rows;
            s.seen += rows;
            if (tty && (bi % 10 == 0 || bi + 1 == nb))
                progress(m, bi + 1, nb, (mc_now_ms() - t0) / 1e3, &s, false);
        }
        if (rc)
            break;
        double secs = (mc_now_ms() - t0) / 1e3;
        m->epoch = epoch + 1;
        double tl = s.loss / (double)(s.seen ? s.seen : 1), tm[MC_MAX_METRICS];
        for (int i = 0; i < mc_num_metrics(m); i++)
            tm[i] = s.metric[i] / (double)(s.seen ? s.seen : 1);
        double vl = 0, vm[MC_MAX_METRICS] = {0}, el = 0, em[MC_MAX_METRICS] = {0};
        if (r->have_val && !evaluate(m, &r->val, a->batch, &vl, vm))
            return fail_model(m);
        if (a->eval_train && !evaluate(m, &r->train, a->batch, &el, em))
            return fail_model(m);
        if (a->json) {
            printf("{\"epoch\": %d, \"step\": %lld, \"lr\": %.9g, \"seconds\": %.3f, "
                   "\"ms_per_step\": %.4f, \"examples\": %lld",
                   epoch + 1, (long long)mc_step(m), lr, secs, nb ? 1e3 * secs / (double)nb : 0.0,
                   (long long)s.seen);
            json_metrics(stdout, m, "", tl, tm);
            if (r->have_val)
                json_metrics(stdout, m, "val_", vl, vm);
            if (a->eval_train)
                json_metrics(stdout, m, "train_eval_", el, em);
            printf("}\n");
        } else {
            if (tty)
                progress(m, nb, nb, secs, &s, true);
            else
                printf("%lld/%lld - %.1fs %.1fms/step", (long long)nb, (long long)nb, secs,
                       nb ? 1e3 * secs / (double)nb : 0.0);
            print_metrics(stdout, m, "", tl, tm);
            if (r->have_val)
                print_metrics(stdout, m, "val_", vl, vm);
            printf("\n  (loss/metrics above: running mean over the epoch of pre-update batch values)\n");
            if (a->eval_train) {
                printf("  after the epoch, inference mode on the training data:");
                print_metrics(stdout, m, "", el, em);
                printf("\n");
            }
        }
        fflush(stdout);
        if (r->log) {
            fprintf(r->log, "%d,%lld,%.9g,%.9g", epoch + 1, (long long)mc_step(m), lr, tl);
            for (int i = 0; i < mc_num_metrics(m); i++)
                fprintf(r->log, ",%.9g", tm[i]);
            if (r->have_val) {
                fprintf(r->log, ",%.9g", vl);
                for (int i = 0; i < mc_num_metrics(m); i++)
                    fprintf(r->log, ",%.9g", vm[i]);
            }
            fprintf(r->log, ",%.3f\n", secs);
            fflush(r->log);
        }
        if (a->save && !mc_save(m, a->save))
            return fail_model(m);
    }
    rt_map_free(&b);
    free(perm);
    return rc;
}

static int setup_data(Run *r, Diags *d)
{
    TrainArgs *a = r->a;
    const Graph *g = r->m->src;
    bool have;
    if (!data_load(&a->data, "train", g, r->m->seed, &r->train, &have, d))
        return 1;
    if (a->data.val_data) {
        const char *src[1] = {a->data.val_data};
        if (!data_load_src(&a->data, src, 1, "train", g, r->m->seed + 1, &r->val, &r->have_val, d))
            return 1;
    } else if (a->data.val_split > 0) {
        Dataset all = r->train;
        rt_dataset_init(&r->train);
        bool ok = rt_dataset_split(&all, a->data.val_split, &r->train, &r->val, d);
        rt_dataset_free(&all);
        if (!ok)
            return 1;
        r->have_val = true;
    }
    if (!a->no_test) {
        if (a->test_data) {
            const char *src[1] = {a->test_data};
            if (!data_load_src(&a->data, src, 1, "train", g, r->m->seed + 2, &r->test, &r->have_test, d))
                return 1;
        } else if (!data_load(&a->data, "test", g, r->m->seed, &r->test, &r->have_test, d)) {
            return 1;
        }
    }
    if (r->train.n == 0) {
        diag_error(d, (SrcLoc){0}, "the training data is empty");
        return 1;
    }
    return 0;
}

static int init_params(Run *r)
{
    TrainArgs *a = r->a;
    mc_model *m = r->m;
    mc_init_params(m, m->seed);
    if (a->init_from && !mc_load(m, a->init_from, a->only ? a->only : "*", false))
        return fail_model(m);
    if (a->resume) {
        if (!mc_load(m, a->resume, NULL, true))
            return fail_model(m);
        if (!a->json)
            printf("resumed from %s at epoch %d, step %lld\n", a->resume, m->epoch,
                   (long long)mc_step(m));
    }
    return 0;
}

int cmd_train(int argc, char **argv)
{
    TrainArgs a;
    memset(&a, 0, sizeof a);
    a.epochs = -1;
    a.batch = -1;
    a.lr = -1;
    bool seed_given = false;
    const char *seed_str = NULL;
    CliOpt opts[] = {
        DATA_CLI_OPTS(a.data),
        {"test-data", CLI_STR, &a.test_data, "SRC", "data for the final test evaluation"},
        {"no-test", CLI_FLAG, &a.no_test, NULL, "skip the final test-set evaluation"},
        {"epochs", CLI_INT, &a.epochs, "K", "number of epochs (default: the model's train block)"},
        {"batch", CLI_INT, &a.batch, "B", "batch size (default: the model's train block)"},
        {"lr", CLI_DOUBLE, &a.lr, "LR", "learning rate (default: the model's optimizer)"},
        {"seed", CLI_STR, &seed_str, "S", "seed for initialisation, shuffling and dropout"},
        {"freeze", CLI_MULTI, &a.freeze, "PATTERN", "keep parameters matching PATTERN fixed"},
        {"init-from", CLI_STR, &a.init_from, "CKPT", "load parameters from a checkpoint first"},
        {"only", CLI_STR, &a.only, "PATTERN", "with --init-from: load only matching tensors"},
        {"save", CLI_STR, &a.save, "CKPT", "write a checkpoint (atomically) after every epoch"},
        {"resume", CLI_STR, &a.resume, "CKPT", "continue training from a checkpoint"},
        {"log", CLI_STR, &a.log, "FILE.csv", "write per-epoch metrics as CSV"},
        {"json", CLI_FLAG, &a.json, NULL, "print per-epoch metrics as JSON lines"},
        {"eval-train", CLI_FLAG, &a.eval_train, NULL,
         "evaluate the training data after each epoch (inference mode, post-update)"},
        {"no-progress", CLI_FLAG, &a.no_progress, NULL, "no progress bar"},
        {"threads", CLI_INT, &a.threads, "N", "threads (default: all cores)"},
        {"backend", CLI_STR, &a.backend, "jit|interp", "execution backend (default jit)"},
        {"time-passes", CLI_FLAG, &a.time_passes, NULL, "print where compile time went"},
        {"profile", CLI_FLAG, &a.profile, NULL, "time every kernel of the training step; table on stderr at the end"},
    };
    CliCmd c = {"train", "FILE [options]", "Train a model on data (Fashion-MNIST by default).",
                opts, ARRAY_LEN(opts), 1, 1};
    char **pos;
    int npos;
    int rc = cli_parse(&c, argc, argv, &pos, &npos);
    if (rc)
        return rc < 0 ? 0 : rc;
    mc_options mo;
    mc_options_default(&mo);
    if (a.backend) {
        if (strcmp(a.backend, "interp") == 0)
            mo.backend = MC_BACKEND_INTERP;
        else if (strcmp(a.backend, "jit") != 0)
            return free(pos), cli_usage_error("train", "--backend must be jit or interp, got '%s'", a.backend);
    }
    if (seed_str) {
        char *end;
        mo.seed = strtoull(seed_str, &end, 10);
        if (!*seed_str || *end || *seed_str == '-')
            return free(pos), cli_usage_error("train", "--seed expects a non-negative integer, got '%s'", seed_str);
        mo.seed_set = seed_given = true;
    }
    if ((a.epochs != -1 && a.epochs < 0) || (a.batch != -1 && a.batch < 1) || (a.lr != -1 && !(a.lr > 0)) ||
        a.threads < 0 || a.data.val_split < 0 || a.data.val_split >= 1 || a.data.limit < 0) {
        free(pos);
        return cli_usage_error("train", "--epochs, --batch, --lr, --threads, --limit must be positive "
                                        "and --val-split in [0, 1)");
    }
    if (a.data.val_split > 0 && a.data.val_data) {
        free(pos);
        return cli_usage_error("train", "--val-split and --val-data exclude each other");
    }
    if (a.profile && mo.backend != MC_BACKEND_JIT)
        return free(pos), cli_usage_error("train", "--profile needs the jit backend");
    mo.threads = a.threads;
    mo.profile = a.profile;
    mo.freeze = a.freeze.v;
    mo.nfreeze = a.freeze.n;
    Timer timer = {0};
    double t_compile = mc_now_ms();
    mc_model *m = mc_compile_ex(pos[0], &mo, a.time_passes ? &timer : NULL);
    double compile_ms = mc_now_ms() - t_compile;
    free(pos);
    if (!m) {
        fputs(mc_last_error(NULL), stderr);
        return 1;
    }
    if (!m->gtrain) {
        fprintf(stderr, "modelc train: %s has no loss, so it cannot be trained\n", m->src->name);
        mc_free(m);
        return 1;
    }
    (void)seed_given;
    const TrainConfig *tc = &m->src->train;
    if (a.epochs < 0)
        a.epochs = tc->epochs;
    if (a.batch < 0)
        a.batch = tc->batch;
    if (a.lr < 0)
        a.lr = tc->lr;
    Run r = {.a = &a, .m = m};
    Diags d;
    diags_init(&d);
    rc = setup_data(&r, &d);
    diags_print(&d, stderr);
    if (!rc)
        rc = init_params(&r);
    if (!rc && a.log && !(r.log = open_log(a.log, m, r.have_val))) {
        fprintf(stderr, "modelc train: cannot write %s\n", a.log);
        rc = 1;
    }
    if (!rc && a.time_passes)
        timer_print(&timer, stderr);
    if (!rc && a.json) {
        printf("{\"event\": \"compiled\", \"compile_ms\": %.3f, \"since_start_ms\": %.3f}\n",
               compile_ms, cli_since_start_ms());
    }
    if (!rc && !a.json)
        printf("train: %lld examples%s%lld validation, batch %d, %d epochs, seed %llu\n",
               (long long)r.train.n, ", ", (long long)(r.have_val ? r.val.n : 0), a.batch, a.epochs,
               (unsigned long long)m->seed);
    if (!rc)
        rc = run_epochs(&r);
    if (!rc && r.have_test) {
        double tl, tm[MC_MAX_METRICS];
        if (!evaluate(m, &r.test, a.batch, &tl, tm))
            rc = fail_model(m);
        else if (a.json) {
            printf("{\"test\": true");
            json_metrics(stdout, m, "test_", tl, tm);
            printf("}\n");
        } else {
            printf("test (%lld examples, inference mode):", (long long)r.test.n);
            print_metrics(stdout, m, "test_", tl, tm);
            printf("\n");
        }
    }
    if (a.profile) {
        fflush(stdout);
        fputs(mc_profile_report(m), stderr);
    }
    if (r.log)
        fclose(r.log);
    rt_dataset_free(&r.train);
    rt_dataset_free(&r.val);
    rt_dataset_free(&r.test);
    diags_free(&d);
    mc_free(m);
    return rc;
}
