/* modelc train: compile the training step, then run epochs over the data
 * through the public C API with a Keras-style progress line, validation,
 * checkpoints (atomic, every epoch), resume, callbacks (early stopping, best
 * checkpoint, reduce on plateau) and machine-readable logs.
 * Static warnings, watching, curves and the NaN/Inf guard are the
 * library's (mc_watch in modelc_inspect.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "data_cli.h"
#include "modelc_inspect.h"

typedef struct TrainArgs {
    DataArgs data;
    int epochs, batch;
    double lr;
    uint64_t seed;
    const char *save, *resume, *init_from, *only, *log, *backend, *test_data, *train_mode;
    CliList freeze;
    bool json, eval_train, time_passes, no_progress, no_test, no_cache, profile;
    int threads;
    int watch; /* -1 off, 0 every epoch, K every K steps */
    const char *plot_dir, *dump_ir, *tensorboard, *precision;
    bool check_numerics, no_warn;
    bool deterministic_reduce; /* under mpirun: gradients summed in rank order */
    double dist_timeout;       /* under mpirun: seconds to wait for the others */
    bool dist_timeout_set;
    double bucket_mb;          /* under mpirun: MiB per overlapped sum */
    bool bucket_mb_set;
    bool epochs_set, batch_set, lr_set, watch_set; /* given on the command line */
    int warmup, es_patience;           /* --warmup, --early-stopping */
    double rlr_factor;                 /* --reduce-lr-on-plateau */
    const char *save_best, *monitor;   /* --save-best, --monitor */
    bool warmup_set, es_set, rlr_set;
    mc_callbacks cb;                   /* the train block's, with the options applied */
    bool any_cb;                       /* some callback is on */
} TrainArgs;

typedef struct EpochStats {
    double loss, metric[MC_MAX_METRICS];
    int64_t seen;
} EpochStats;

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
 * batch size. Under mpirun each process evaluates its share of the data
 * and the sums are added over the processes. */
static bool evaluate(mc_model *m, mc_data *ds, int batch, double *loss, double *met)
{
    double tl = 0, tm[MC_MAX_METRICS] = {0};
    int64_t seen = 0, lo, n;
    mc_dist_shard(m, 0, mc_data_count(ds), &lo, &n);
    for (int64_t start = lo; start < lo + n; start += batch) {
        const mc_tensor *v;
        int nv;
        int64_t rows = mc_data_batch(ds, NULL, start, lo + n - start < batch ? lo + n - start : batch, &v, &nv);
        double l, mm[MC_MAX_METRICS];
        if (rows < 0) {
            fputs(mc_data_error(ds), stderr);
            return false;
        }
        if (!mc_eval_batch(m, v, nv, &l, mm, MC_MAX_METRICS))
            return false;
        tl += l * (double)rows;
        for (int i = 0; i < mc_num_metrics(m); i++)
            tm[i] += mm[i] * (double)rows;
        seen += rows;
    }
    int nm = mc_num_metrics(m);
    double sums[2 + MC_MAX_METRICS] = {(double)seen, tl};
    memcpy(sums + 2, tm, (size_t)nm * sizeof(double));
    if (mc_dist_size(m) > 1 && !mc_dist_sum(m, sums, 2 + nm))
        return false;
    *loss = sums[1] / (sums[0] != 0 ? sums[0] : 1);
    for (int i = 0; i < nm; i++)
        met[i] = sums[2 + i] / (sums[0] != 0 ? sums[0] : 1);
    return true;
}

static FILE *open_log(const char *path, mc_model *m, bool val, const mc_watch *tw, bool callbacks)
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
    fprintf(f, ",seconds");
    mc_watch_csv_header(tw, f);
    if (callbacks)
        fprintf(f, ",callbacks");
    fputc('\n', f);
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
    const mc_options *mo;
    const char *model;
    mc_model *m;
    mc_data *train, *val, *test;
    bool have_val, have_test;
    char *data_err; /* the data thread's error message */
    FILE *log;
    bool first_step_done;
    mc_watch *tw;
} Run;

/* A watch record inside an epoch: a CSV row (running means so far,
 * validation columns empty) and a JSON event. */
static bool record_mid_epoch(Run *r, int epoch, int64_t bi, int64_t nb, const EpochStats *s,
                             double lr, double secs)
{
    mc_model *m = r->m;
    if (!mc_watch_record(r->tw, epoch + 1, mc_step(m), epoch + (double)(bi + 1) / (double)nb, false))
        return false;
    double seen = (double)(s->seen ? s->seen : 1);
    if (r->log) {
        fprintf(r->log, "%d,%lld,%.9g,%.9g", epoch + 1, (long long)mc_step(m), lr, s->loss / seen);
        for (int i = 0; i < mc_num_metrics(m); i++)
            fprintf(r->log, ",%.9g", s->metric[i] / seen);
        for (int i = 0; r->have_val && i <= mc_num_metrics(m); i++)
            fputc(',', r->log);
        fprintf(r->log, ",%.3f", secs);
        mc_watch_csv_row(r->tw, r->log);
        if (r->a->any_cb)
            fputc(',', r->log);
        fputc('\n', r->log);
        fflush(r->log);
    }
    if (r->a->json) {
        printf("{\"event\": \"watch\", \"epoch\": %d, \"step\": %lld, \"loss\": %.9g", epoch + 1,
               (long long)mc_step(m), s->loss / seen);
        mc_watch_json(r->tw, stdout);
        printf("}\n");
        fflush(stdout);
    }
    return true;
}

static void epoch_metrics(Run *r, int epoch, double tl, const double *tm, double vl,
                          const double *vm)
{
    mc_model *m = r->m;
    char name[256];
    mc_watch_metric(r->tw, epoch, "loss", tl);
    for (int i = 0; i < mc_num_metrics(m); i++)
        mc_watch_metric(r->tw, epoch, mc_metric_name(m, i), tm[i]);
    if (!r->have_val)
        return;
    mc_watch_metric(r->tw, epoch, "val_loss", vl);
    for (int i = 0; i < mc_num_metrics(m); i++) {
        snprintf(name, sizeof name, "val_%s", mc_metric_name(m, i));
        mc_watch_metric(r->tw, epoch, name, vm[i]);
    }
}

/* The epoch's values by name for the callbacks' monitors. */
static bool run_callbacks(Run *r, int epoch, double tl, const double *tm, double vl, const double *vm,
                          mc_callback_event *ev, int *nev)
{
    mc_model *m = r->m;
    int nm = mc_num_metrics(m), n = 0;
    const char *names[2 * (MC_MAX_METRICS + 1)];
    double vals[2 * (MC_MAX_METRICS + 1)];
    char vnames[MC_MAX_METRICS][128];
    names[n] = "loss";
    vals[n++] = tl;
    for (int i = 0; i < nm; i++) {
        names[n] = mc_metric_name(m, i);
        vals[n++] = tm[i];
    }
    if (r->have_val) {
        names[n] = "val_loss";
        vals[n++] = vl;
        for (int i = 0; i < nm; i++) {
            snprintf(vnames[i], sizeof vnames[i], "val_%s", mc_metric_name(m, i));
            names[n] = vnames[i];
            vals[n++] = vm[i];
        }
    }
    return mc_callbacks_epoch_end(m, epoch, r->a->lr, names, vals, n, ev, nev);
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        if ((unsigned char)*s >= 32)
            fputc(*s, f);
    }
    fputc('"', f);
}

static void print_events(Run *r, const mc_callback_event *ev, int nev)
{
    for (int i = 0; i < nev; i++) {
        const mc_callback_event *e = &ev[i];
        if (!r->a->json) {
            printf("%s\n", e->text);
            continue;
        }
        printf("{\"event\": \"%s\", \"epoch\": %d, \"monitor\": ", e->callback, e->epoch);
        json_str(stdout, e->monitor);
        printf(", \"value\": %.9g, \"best\": %.9g", e->value, e->best);
        if (strcmp(e->callback, "early_stopping") == 0)
            printf(", \"best_epoch\": %d, \"wait\": %d, \"restored\": %s", e->best_epoch, e->wait,
                   e->restored ? "true" : "false");
        else if (strcmp(e->callback, "reduce_lr_on_plateau") == 0)
            printf(", \"wait\": %d, \"lr\": %.9g", e->wait, e->lr);
        else {
            printf(", \"path\": ");
            json_str(stdout, e->path);
        }
        printf(", \"message\": ");
        json_str(stdout, e->text);
        printf("}\n");
    }
    fflush(stdout);
}

/* The CSV column "callbacks": the events' lines, quoted. */
static void log_events(FILE *f, const mc_callback_event *ev, int nev)
{
    fputs(",\"", f);
    for (int i = 0; i < nev; i++) {
        if (i)
            fputs("; ", f);
        for (const char *p = ev[i].text; *p; p++) {
            if (*p == '"')
                fputc('"', f);
            fputc(*p, f);
        }
    }
    fputc('"', f);
}

static void stopped(const char *save)
{
    if (save && access(save, F_OK) == 0)
        fprintf(stderr, "modelc train: stopped; the last good checkpoint %s is kept\n", save);
    else if (save)
        fprintf(stderr, "modelc train: stopped; no checkpoint was written\n");
}

static int run_epochs(Run *r)
{
    TrainArgs *a = r->a;
    mc_model *m = r->m;
    int64_t n = mc_data_count(r->train), nb = (n + a->batch - 1) / a->batch;
    int64_t *perm = malloc((size_t)(n ? n : 1) * sizeof(int64_t));
    bool tty = isatty(1) && !a->no_progress && !a->json;
    if (!perm) {
        fputs("modelc train: out of memory\n", stderr);
        return 1;
    }
    int rc = 0;
    if (mc_stop_training(m)) {
        if (a->json)
            printf("{\"event\": \"nothing_to_resume\", \"stopped_epoch\": %d}\n", mc_epoch(m));
        else
            printf("early stopping ended the run of this checkpoint at epoch %d; nothing to resume\n", mc_epoch(m));
        free(perm);
        return mc_watch_finish(r->tw) ? 0 : 1;
    }
    int64_t horizon = (int64_t)a->epochs * nb;
    if (mc_lr_horizon(m) == 0)
        mc_set_lr_horizon(m, horizon);
    else if (mc_lr_horizon(m) != horizon && mc_dist_reports(m))
        fprintf(stderr,
                "modelc train: note: the cosine schedule keeps the horizon of the checkpoint's run, %lld steps "
                "(this run's epochs and batches give %lld)\n",
                (long long)mc_lr_horizon(m), (long long)horizon);
    bool stop = false;
    for (int epoch = mc_epoch(m); epoch < a->epochs && rc == 0 && !stop; epoch++) {
        if (!a->json)
            printf("Epoch %d/%d\n", epoch + 1, a->epochs);
        mc_shuffle(m, epoch, perm, n);
        EpochStats s = {0};
        double t0 = cli_now_ms(), lr = a->lr, reduce0 = mc_dist_reduce_ms(m);
        int64_t buckets0, early0;
        mc_dist_overlap(m, &buckets0, &early0);
        for (int64_t bi = 0; bi < nb; bi++) {
            const mc_tensor *v = NULL;
            int nv = 0;
            /* the global batch's rows; under mpirun this process takes its share */
            int64_t rows = n - bi * a->batch < a->batch ? n - bi * a->batch : a->batch, my0, myn;
            mc_dist_shard(m, bi * a->batch, rows, &my0, &myn);
            if (myn > 0 && mc_data_batch(r->train, perm, my0, myn, &v, &nv) < 0) {
                fprintf(stderr, "modelc train: epoch %d, batch %lld: %s", epoch + 1, (long long)bi + 1,
                        mc_data_error(r->train));
                rc = 1;
                break;
            }
            lr = mc_lr_at(m, a->lr, epoch, a->epochs, nb);
            double loss = 0, met[MC_MAX_METRICS];
            if (a->save && bi == nb - 1) /* mc_watch_params_finite follows the epoch */
                mc_watch_before_last_step(r->tw);
            else
                mc_watch_before_step(r->tw);
            bool stepped = mc_train_step_metrics(m, v, nv, lr, &loss, met);
            if (!stepped || !mc_watch_after_step(r->tw, epoch + 1, bi, lr)) {
                if (tty)
                    printf("\n");
                fflush(stdout);
                if (!stepped && mc_dist_reports(m)) { /* every process fails alike */
                    /* one write: under mpirun another process's report must not
                     * land between the prefix and the message */
                    const char *e = mc_last_error(m);
                    size_t len = strlen(e);
                    fprintf(stderr, "modelc train: epoch %d, batch %lld: %s%s", epoch + 1, (long long)bi + 1, e,
                            len && e[len - 1] == '\n' ? "" : "\n");
                }
                if (!stepped && !isfinite(loss)) /* under mpirun the first rank at fault searches */
                    mc_watch_step_failed(r->tw, epoch + 1, bi, lr);
                if ((stepped || !isfinite(loss)) && mc_dist_size(m) > 1) {
                    double done = 0; /* all stop at this step: wait for the op-by-op report */
                    mc_dist_sum(m, &done, 1);
                }
                stopped(a->save);
                rc = 1;
                break;
            }
            if (a->json && !r->first_step_done) {
                printf("{\"event\": \"first_step\", \"since_start_ms\": %.3f}\n", cli_since_start_ms());
                fflush(stdout);
            }
            r->first_step_done = true;
            mc_watch_step_loss(r->tw, mc_step(m), loss, lr);
            s.loss += loss * (double)rows;
            for (int i = 0; i < mc_num_metrics(m); i++)
                s.metric[i] += met[i] * (double)rows;
            s.seen += rows;
            if (tty && (bi % 10 == 0 || bi + 1 == nb))
                progress(m, bi + 1, nb, (cli_now_ms() - t0) / 1e3, &s, false);
            if (bi + 1 < nb && mc_watch_record_due(r->tw, mc_step(m))) {
                if (tty)
                    printf("\n");
                if (!record_mid_epoch(r, epoch, bi, nb, &s, lr, (cli_now_ms() - t0) / 1e3)) {
                    rc = 1;
                    break;
                }
            }
        }
        if (rc)
            break;
        double secs = (cli_now_ms() - t0) / 1e3;
        mc_set_epoch(m, epoch + 1);
        double tl = s.loss / (double)(s.seen ? s.seen : 1), tm[MC_MAX_METRICS];
        for (int i = 0; i < mc_num_metrics(m); i++)
            tm[i] = s.metric[i] / (double)(s.seen ? s.seen : 1);
        double vl = 0, vm[MC_MAX_METRICS] = {0}, el = 0, em[MC_MAX_METRICS] = {0};
        if ((r->have_val && !evaluate(m, r->val, a->batch, &vl, vm)) ||
            (a->eval_train && !evaluate(m, r->train, a->batch, &el, em))) {
            rc = fail_model(m);
            break;
        }
        epoch_metrics(r, epoch + 1, tl, tm, vl, vm);
        mc_callback_event ev[MC_MAX_CALLBACK_EVENTS];
        int nev = 0;
        if (a->any_cb && !run_callbacks(r, epoch + 1, tl, tm, vl, vm, ev, &nev)) {
            rc = fail_model(m);
            break;
        }
        for (int i = 0; i < nev; i++)
            stop |= ev[i].stop;
        if (a->json && !mc_watch_record(r->tw, epoch + 1, mc_step(m), epoch + 1, true)) {
            rc = 1;
            break;
        }
        if (a->json) {
            printf("{\"epoch\": %d, \"step\": %lld, \"lr\": %.9g, \"seconds\": %.3f, "
                   "\"ms_per_step\": %.4f, \"examples\": %lld",
                   epoch + 1, (long long)mc_step(m), lr, secs, nb ? 1e3 * secs / (double)nb : 0.0,
                   (long long)s.seen);
            json_metrics(stdout, m, "", tl, tm);
            if (mc_dist_size(m) > 1) {
                int64_t buckets, early;
                mc_dist_overlap(m, &buckets, &early);
                printf(", \"allreduce_ms\": %.3f, \"allreduce_bytes_per_step\": %lld, \"allreduce_buckets\": %lld, "
                       "\"allreduce_buckets_in_backward\": %lld",
                       mc_dist_reduce_ms(m) - reduce0, (long long)mc_dist_reduce_bytes(m),
                       (long long)(buckets - buckets0), (long long)(early - early0));
            }
            if (r->have_val)
                json_metrics(stdout, m, "val_", vl, vm);
            if (a->eval_train)
                json_metrics(stdout, m, "train_eval_", el, em);
            mc_watch_json(r->tw, stdout);
            printf("}\n");
        } else {
            if (tty) { /* the progress line ends with the epoch's loss and metrics */
                progress(m, nb, nb, secs, &s, true);
            } else {
                printf("%lld/%lld - %.1fs %.1fms/step", (long long)nb, (long long)nb, secs,
                       nb ? 1e3 * secs / (double)nb : 0.0);
                print_metrics(stdout, m, "", tl, tm);
            }
            if (r->have_val)
                print_metrics(stdout, m, "val_", vl, vm);
            printf("\n  (loss/metrics above: running mean over the epoch of pre-update batch values)\n");
            if (a->eval_train) {
                printf("  after the epoch, inference mode on the training data:");
                print_metrics(stdout, m, "", el, em);
                printf("\n");
            }
        }
        print_events(r, ev, nev);
        fflush(stdout);
        if (!a->json && !mc_watch_record(r->tw, epoch + 1, mc_step(m), epoch + 1, true)) {
            rc = 1;
            break;
        }
        if (r->log) {
            fprintf(r->log, "%d,%lld,%.9g,%.9g", epoch + 1, (long long)mc_step(m), lr, tl);
            for (int i = 0; i < mc_num_metrics(m); i++)
                fprintf(r->log, ",%.9g", tm[i]);
            if (r->have_val) {
                fprintf(r->log, ",%.9g", vl);
                for (int i = 0; i < mc_num_metrics(m); i++)
                    fprintf(r->log, ",%.9g", vm[i]);
            }
            fprintf(r->log, ",%.3f", secs);
            mc_watch_csv_row(r->tw, r->log);
            if (a->any_cb)
                log_events(r->log, ev, nev);
            fputc('\n', r->log);
            fflush(r->log);
        }
        if (!mc_watch_epoch_end(r->tw, epoch + 1, lr)) {
            rc = 1;
            break;
        }
        if (a->save && !mc_watch_params_finite(r->tw, epoch + 1, lr)) {
            stopped(a->save);
            rc = 1;
            break;
        }
        if (a->save && !mc_save(m, a->save)) {
            rc = fail_model(m);
            break;
        }
    }
    if (rc == 0 && !mc_watch_finish(r->tw))
        rc = 1;
    free(perm);
    return rc;
}

/* One data set: NULL with r->data_err set on error, NULL with *have false
 * when the source has no such split. */
static mc_data *load(Run *r, const char *const *src, int nsrc, const char *split, int stream, bool *have)
{
    mc_data_options o;
    data_options(&r->a->data, r->mo, src, nsrc, split, stream, &o);
    char *err = NULL;
    mc_data *ds = mc_data_load(r->model, &o, &err);
    *have = ds != NULL;
    if (err && !r->data_err)
        r->data_err = err;
    else
        free(err);
    return ds;
}

/* The training, validation and test data, on the data thread
 * (data_bg_start): decompression and conversion overlap the compile. */
static int setup_data(void *ctx)
{
    Run *r = ctx;
    TrainArgs *a = r->a;
    bool have;
    if (!(r->train = load(r, NULL, 0, "train", 0, &have)))
        return 1;
    if (a->data.val_data) {
        const char *src[1] = {a->data.val_data};
        if (!(r->val = load(r, src, 1, "train", 1, &r->have_val)) && r->data_err)
            return 1;
    } else if (a->data.val_split > 0) {
        if (!(r->val = mc_data_split(r->train, a->data.val_split, &r->data_err)))
            return 1;
        r->have_val = true;
    }
    if (!a->no_test) {
        const char *src[1] = {a->test_data};
        r->test = a->test_data ? load(r, src, 1, "train", 2, &r->have_test) : load(r, NULL, 0, "test", 0, &r->have_test);
        if (r->data_err)
            return 1;
    }
    if (mc_data_count(r->train) == 0) {
        r->data_err = strdup("error: the training data is empty\n");
        return 1;
    }
    return 0;
}

static void free_data(Run *r)
{
    mc_data_free(r->train);
    mc_data_free(r->val);
    mc_data_free(r->test);
    free(r->data_err);
    r->train = r->val = r->test = NULL;
    r->data_err = NULL;
}

static int init_params(Run *r)
{
    TrainArgs *a = r->a;
    mc_model *m = r->m;
    if (!mc_init_params(m, mc_train_defaults(m).seed))
        return fail_model(m);
    if (mc_dist_rank(m) != 0) /* rank 0 loads, mc_dist_start broadcasts */
        return 0;
    if (a->init_from && !mc_load(m, a->init_from, a->only ? a->only : "*", false))
        return fail_model(m);
    if (a->resume) {
        if (!mc_load(m, a->resume, NULL, true))
            return fail_model(m);
        if (!a->json)
            printf("resumed from %s at epoch %d, step %lld\n", a->resume, mc_epoch(m),
                   (long long)mc_step(m));
    }
    return 0;
}

/* The train block's callbacks with the command line's options applied,
 * checked (monitors, validation data) before training starts. A callback
 * the command line switches on keeps the train block's settings for it, or
 * Keras's defaults; --early-stopping restores the best weights unless the
 * train block's early_stopping says restore_best_weights=false. */
static int set_callbacks(Run *r)
{
    TrainArgs *a = r->a;
    mc_callbacks *c = &a->cb;
    mc_callbacks_get(r->m, c);
    if (a->warmup_set)
        c->warmup = a->warmup;
    if (a->es_set) {
        if (!c->early_stopping.on)
            c->early_stopping.restore_best_weights = true;
        c->early_stopping.on = true;
        c->early_stopping.patience = a->es_patience;
        if (a->monitor)
            c->early_stopping.monitor = a->monitor;
    }
    if (a->rlr_set) {
        c->reduce_lr.on = true;
        c->reduce_lr.factor = a->rlr_factor;
        if (a->monitor)
            c->reduce_lr.monitor = a->monitor;
    }
    if (a->save_best) {
        c->checkpoint.on = true;
        c->checkpoint.path = a->save_best;
        c->checkpoint.save_best_only = true;
        if (a->monitor)
            c->checkpoint.monitor = a->monitor;
    }
    a->any_cb = c->early_stopping.on || c->checkpoint.on || c->reduce_lr.on;
    if (!mc_callbacks_set(r->m, c, r->have_val)) {
        fprintf(stderr, "modelc train: ");
        return fail_model(r->m);
    }
    return 0;
}

static int cmd_train_args(int argc, char **argv);

/* `--watch` takes an optional K: "--watch", "--watch K" (K digits) and
 * "--watch=K" become "--watch=0" / "--watch=K" for the option parser.
 * Returns a new argv (the strings are argv's or owned by *own), NULL
 * when out of memory. */
static char **watch_argv(int argc, char **argv, int *nargc, char **own)
{
    char **v = calloc((size_t)argc + 1, sizeof(char *));
    int n = 0;
    *own = NULL;
    for (int i = 0; v && i < argc; i++) {
        if (strcmp(argv[i], "--watch") != 0 || *own) {
            v[n++] = argv[i];
            continue;
        }
        const char *k = i + 1 < argc ? argv[i + 1] : "";
        bool digits = *k && strspn(k, "0123456789") == strlen(k);
        size_t len = strlen("--watch=") + strlen(k) + 2;
        if (!(*own = malloc(len))) {
            free(v);
            return NULL;
        }
        snprintf(*own, len, "--watch=%s", digits ? k : "0");
        v[n++] = *own;
        i += digits;
    }
    *nargc = n;
    return v;
}

int cmd_train(int argc, char **argv)
{
    int nargc;
    char *own;
    char **nargv = watch_argv(argc, argv, &nargc, &own);
    if (!nargv) {
        fputs("modelc train: out of memory\n", stderr);
        return 1;
    }
    int rc = cmd_train_args(nargc, nargv);
    free(nargv);
    free(own);
    return rc;
}

/* Every value given must be in range: usage errors naming the option. */
static int check_ranges(const TrainArgs *a)
{
    if (a->epochs_set && a->epochs < 1)
        return cli_usage_error("train", "--epochs must be at least 1, got %d", a->epochs);
    if (a->batch_set && a->batch < 1)
        return cli_usage_error("train", "--batch must be at least 1, got %d", a->batch);
    if (a->lr_set && !(a->lr > 0 && isfinite(a->lr)))
        return cli_usage_error("train", "--lr must be a positive number, got %g", a->lr);
    if (a->threads < 0)
        return cli_usage_error("train", "--threads must not be negative, got %d", a->threads);
    if (a->watch_set && a->watch < 0)
        return cli_usage_error("train", "--watch K needs K >= 1 steps, got %d", a->watch);
    if (a->warmup_set && a->warmup < 0)
        return cli_usage_error("train", "--warmup must be at least 0 steps, got %d", a->warmup);
    if (a->es_set && a->es_patience < 0)
        return cli_usage_error("train", "--early-stopping PATIENCE must be at least 0, got %d", a->es_patience);
    if (a->rlr_set && !(a->rlr_factor > 0 && a->rlr_factor < 1))
        return cli_usage_error("train", "--reduce-lr-on-plateau FACTOR must be in (0, 1), got %g", a->rlr_factor);
    if (a->monitor && !*a->monitor)
        return cli_usage_error("train", "--monitor needs a name such as val_loss");
    if (a->monitor && !a->es_set && !a->rlr_set && !a->save_best)
        return cli_usage_error("train", "--monitor applies to --early-stopping, --reduce-lr-on-plateau and --save-best");
    return data_args_check("train", &a->data);
}

/* The files and directories training writes, checked before it starts. */
static int check_outputs(const TrainArgs *a)
{
    return (a->save && cli_check_output_file("--save", a->save)) ||
           (a->save_best && cli_check_output_file("--save-best", a->save_best)) ||
           (a->log && cli_check_output_file("--log", a->log)) ||
           (a->plot_dir && cli_check_output_dir("--plot-dir", a->plot_dir)) ||
           (a->tensorboard && cli_check_output_dir("--tensorboard", a->tensorboard)) ||
           (a->dump_ir && cli_check_dump_dir("--dump-ir", a->dump_ir, "train_step"));
}

/* Under mpirun (data-parallel training): the options that apply only
 * there, and whether modelc can be one of several processes. */
static int dist_options(const TrainArgs *a, mc_options *mo)
{
    int k = mc_dist_launched();
    if (k > 1 && !mc_dist_built()) {
        fprintf(stderr, "modelc train: started as one of %d MPI processes, but modelc was built without MPI "
                        "(install libopenmpi-dev and build with -DMODELC_MPI=ON)\n", k);
        return 1;
    }
    mo->distributed = k > 0 && mc_dist_built();
    mo->deterministic_reduce = a->deterministic_reduce;
    mo->dist_timeout = a->dist_timeout;
    if (a->deterministic_reduce && !mo->distributed)
        return cli_usage_error("train", "--deterministic-reduce applies only to a run started by mpirun");
    if (a->dist_timeout_set && !(a->dist_timeout > 0 && isfinite(a->dist_timeout)))
        return cli_usage_error("train", "--dist-timeout must be a positive number of seconds, got %g", a->dist_timeout);
    if (a->bucket_mb_set && !(a->bucket_mb > 0 && isfinite(a->bucket_mb)))
        return cli_usage_error("train", "--bucket-mb must be a positive number, got %g", a->bucket_mb);
    mo->dist_bucket_mb = a->bucket_mb;
    return 0;
}

static int cmd_train_args(int argc, char **argv)
{
    TrainArgs a;
    memset(&a, 0, sizeof a);
    mc_options mo;
    mc_options_default(&mo);
    CliOpt opts[] = {
        DATA_CLI_OPTS(a.data),
        {"test-data", CLI_STR, &a.test_data, "SRC", "data for the final test evaluation", NULL},
        {"no-test", CLI_FLAG, &a.no_test, NULL, "skip the final test-set evaluation", NULL},
        {"epochs", CLI_INT, &a.epochs, "K", "number of epochs (default: the model's train block)", &a.epochs_set},
        {"batch", CLI_INT, &a.batch, "B", "batch size (default: the model's train block)", &a.batch_set},
        {"lr", CLI_DOUBLE, &a.lr, "LR", "learning rate (default: the model's optimizer)", &a.lr_set},
        {"seed", CLI_U64, &mo.seed, "S", "seed for initialisation, shuffling and dropout", &mo.seed_set},
        {"freeze", CLI_MULTI, &a.freeze, "PATTERN", "keep parameters matching PATTERN fixed", NULL},
        {"init-from", CLI_STR, &a.init_from, "CKPT", "load parameters from a checkpoint first", NULL},
        {"only", CLI_STR, &a.only, "PATTERN", "with --init-from: load only matching tensors", NULL},
        {"save", CLI_STR, &a.save, "CKPT", "write a checkpoint (atomically) after every epoch", NULL},
        {"resume", CLI_STR, &a.resume, "CKPT", "continue training from a checkpoint", NULL},
        {"warmup", CLI_INT, &a.warmup, "N",
         "raise the learning rate linearly from 0 over the first N steps (default: the model's train block)",
         &a.warmup_set},
        {"early-stopping", CLI_INT, &a.es_patience, "PATIENCE",
         "stop when the monitored value has not improved for PATIENCE epochs (restoring the best weights "
         "unless the train block's early_stopping says otherwise)", &a.es_set},
        {"reduce-lr-on-plateau", CLI_DOUBLE, &a.rlr_factor, "FACTOR",
         "multiply the learning rate by FACTOR when the monitored value stops improving "
         "(patience and the rest: the train block's reduce_lr_on_plateau, else Keras's defaults)", &a.rlr_set},
        {"save-best", CLI_STR, &a.save_best, "CKPT",
         "write a checkpoint (atomically) whenever the monitored value is the best so far", NULL},
        {"monitor", CLI_STR, &a.monitor, "NAME",
         "what --early-stopping, --reduce-lr-on-plateau and --save-best watch: val_loss (default), loss, a "
         "metric or val_<metric>", NULL},
        {"log", CLI_STR, &a.log, "FILE.csv", "write per-epoch metrics as CSV", NULL},
        {"json", CLI_FLAG, &a.json, NULL, "print per-epoch metrics as JSON lines", NULL},
        {"eval-train", CLI_FLAG, &a.eval_train, NULL,
         "evaluate the training data after each epoch (inference mode, post-update)", NULL},
        {"no-progress", CLI_FLAG, &a.no_progress, NULL, "no progress bar", NULL},
        {"threads", CLI_INT, &a.threads, "N", "threads (default: all cores)", NULL},
        {"precision", CLI_STR, &a.precision, "f32|bf16", CLI_PRECISION_HELP, NULL},
        {"train-mode", CLI_STR, &a.train_mode, "train|infer",
         "the graph each step differentiates (default train); infer reproduces a hand-written step that "
         "ran the model in inference mode (scenario S1) and warns", NULL},
        {"backend", CLI_STR, &a.backend, "jit|interp", "execution backend (default jit)", NULL},
        {"time-passes", CLI_FLAG, &a.time_passes, NULL, "print where compile time went", NULL},
        {"watch", CLI_INT, &a.watch, "[K]",
         "after every epoch (and every K steps) record per-layer statistics on 64 training "
         "examples, update ratios and gradient/clipping telemetry; warn when a layer saturates, "
         "dies or its gradient vanishes; the figures go to --log and --json",
         &a.watch_set},
        {"plot-dir", CLI_STR, &a.plot_dir, "DIR",
         "at the end draw loss/metric curves and per-layer gradient norms (SVG and PNG) into DIR", NULL},
        {"tensorboard", CLI_STR, &a.tensorboard, "DIR",
         "write TensorBoard event files into DIR: loss and learning rate per step, metrics per epoch; "
         "with --watch also per-layer gradient norms, update ratios and histograms of weights, "
         "gradients and activations at each record", NULL},
        {"check-numerics", CLI_FLAG, &a.check_numerics, NULL,
         "check every step's gradients and new parameters for NaN/Inf (the loss is always checked)", NULL},
        {"no-warn", CLI_FLAG, &a.no_warn, NULL, "skip the static warnings before training", NULL},
        {"dump-ir", CLI_STR, &a.dump_ir, "DIR",
         "write DIR/train_step.ir and DIR/eval.ir: the IR of each function exactly as it is compiled", NULL},
        {"no-cache", CLI_FLAG, &a.no_cache, NULL, "compile without the object cache ($XDG_CACHE_HOME/modelc)", NULL},
        {"profile", CLI_FLAG, &a.profile, NULL, "time every kernel of the training step; table on stderr at the end", NULL},
        {"deterministic-reduce", CLI_FLAG, &a.deterministic_reduce, NULL,
         "under mpirun: sum the gradients in rank order on rank 0, so a run is bit-reproducible", NULL},
        {"dist-timeout", CLI_DOUBLE, &a.dist_timeout, "SECONDS",
         "under mpirun: stop when the other processes have not answered for SECONDS (default 300)",
         &a.dist_timeout_set},
        {"bucket-mb", CLI_DOUBLE, &a.bucket_mb, "MB",
         "under mpirun: sum the gradients in buckets of about MB MiB, each started while the backward pass "
         "still runs (default 4)", &a.bucket_mb_set},
    };
    CliCmd c = {
        "train", "FILE [options]",
        "Train a model on data (Fashion-MNIST by default).\n"
        "Before training, the static warnings of modelc check are printed, estimated with the\n"
        "statistics of the training data. When a step's loss is NaN or infinite, training\n"
        "stops without applying that step: it is re-run op by op with the interpreter on the\n"
        "parameters before it, and the first op (forward, backward or optimizer update) that\n"
        "produced a NaN or Inf is named with its source line and operand ranges. The last\n"
        "good checkpoint is kept; a checkpoint with non-finite values is never written.",
        opts, ARRAY_LEN(opts), 1, 1};
    char **pos;
    int npos;
    int rc = cli_parse(&c, argc, argv, &pos, &npos);
    if (rc)
        return rc < 0 ? 0 : rc;
    if ((rc = check_ranges(&a)))
        return free(pos), rc;
    if (!a.watch_set)
        a.watch = -1;
    if (a.backend) {
        if (strcmp(a.backend, "interp") == 0)
            mo.backend = MC_BACKEND_INTERP;
        else if (strcmp(a.backend, "jit") != 0)
            return free(pos), cli_usage_error("train", "--backend must be jit or interp, got '%s'", a.backend);
    }
    if (a.data.val_split > 0 && a.data.val_data) {
        free(pos);
        return cli_usage_error("train", "--val-split and --val-data exclude each other");
    }
    if (a.profile && mo.backend != MC_BACKEND_JIT)
        return free(pos), cli_usage_error("train", "--profile needs the jit backend");
    if ((rc = dist_options(&a, &mo)))
        return free(pos), rc;
    mo.threads = a.threads;
    if ((rc = cli_precision("train", a.precision, &mo.precision)))
        return free(pos), rc;
    mo.profile = a.profile;
    mo.dump_ir = a.dump_ir;
    mo.time_passes = a.time_passes;
    mo.freeze = a.freeze.v;
    mo.nfreeze = a.freeze.n;
    mo.telemetry = a.watch >= 0 || a.check_numerics;
    if (a.train_mode && strcmp(a.train_mode, "infer") == 0)
        mo.train_mode = MC_MODE_INFER;
    else if (a.train_mode && strcmp(a.train_mode, "train") != 0)
        return free(pos), cli_usage_error("train", "--train-mode must be train or infer, got '%s'", a.train_mode);
    if (check_outputs(&a))
        return free(pos), 1;
    char cache_dir[4096];
    if (!a.no_cache && mc_default_cache_dir(cache_dir, sizeof cache_dir))
        mo.cache_dir = cache_dir;
    Run r = {.a = &a, .mo = &mo, .model = pos[0]};
    DataBg ld;
    data_bg_start(&ld, setup_data, &r);
    double t_compile = cli_now_ms();
    mc_model *m = mc_compile(pos[0], &mo);
    double compile_ms = cli_now_ms() - t_compile;
    rc = data_bg_wait(&ld);
    free(pos);
    if (!m) {
        fputs(mc_last_error(NULL), stderr);
        free_data(&r);
        return 1;
    }
    int rank = mc_dist_rank(m);
    if (rank != 0) { /* rank 0 prints and writes for the job */
        if (!freopen("/dev/null", "w", stdout)) {
            fputs("modelc train: cannot open /dev/null\n", stderr);
            rc = 1;
        }
        a.save = a.log = NULL;
        a.no_warn = true;
    }
    if (rank == 0)
        fputs(mc_warnings(m), stderr);
    if (!mc_has_loss(m)) {
        fprintf(stderr, "modelc train: %s has no loss, so it cannot be trained\n", mc_model_name(m));
        free_data(&r);
        mc_free(m);
        return 1;
    }
    mc_train_config tc = mc_train_defaults(m);
    if (!a.epochs_set)
        a.epochs = tc.epochs;
    if (!a.batch_set)
        a.batch = tc.batch;
    if (!a.lr_set)
        a.lr = tc.lr;
    r.m = m;
    if (r.data_err)
        fputs(r.data_err, stderr);
    if (!rc)
        rc = set_callbacks(&r);
    if (!rc)
        rc = init_params(&r);
    double settings[8] = {a.epochs, a.batch, a.lr, a.cb.warmup, a.es_set ? a.es_patience : -1,
                          a.rlr_set ? a.rlr_factor : -1, a.save_best != NULL, 0};
    if (a.monitor) /* the same option on every process */
        for (const char *p = a.monitor; *p; p++)
            settings[7] = settings[7] * 31 + (unsigned char)*p;
    if (!mc_dist_start(m, r.train, settings, sizeof settings, rc == 0)) {
        if (rc == 0 && mc_dist_reports(m))
            fail_model(m);
        rc = 1;
    }
    if (!rc && !a.no_warn)
        mc_static_warnings(m, r.train, stderr);
    /* under mpirun rank 0 watches and plots: the parameters and the telemetry
     * (from the summed gradients) are the same on every process */
    mc_watch_options wo = {.every = rank == 0 ? a.watch : -1, .plot_dir = rank == 0 ? a.plot_dir : NULL,
                           .check_numerics = a.check_numerics, .json = a.json, .batch = a.batch,
                           .tensorboard = rank == 0 ? a.tensorboard : NULL};
    if (!rc && !(r.tw = mc_watch_new(m, &wo, r.train, stdout, stderr)))
        rc = 1;
    if (!rc && a.log && !(r.log = open_log(a.log, m, r.have_val, r.tw, a.any_cb))) {
        fprintf(stderr, "modelc train: cannot write %s\n", a.log);
        rc = 1;
    }
    if (!rc && a.time_passes)
        fputs(mc_time_report(m), stderr);
    if (!rc && a.json) {
        printf("{\"event\": \"compiled\", \"compile_ms\": %.3f, \"since_start_ms\": %.3f}\n",
               compile_ms, cli_since_start_ms());
    }
    if (!rc && !a.json)
        printf("train: %lld examples%s%lld validation, batch %d, %d epochs, seed %llu\n",
               (long long)mc_data_count(r.train), ", ", (long long)mc_data_count(r.val), a.batch, a.epochs,
               (unsigned long long)tc.seed);
    if (!rc && !a.json && mc_dist_size(m) > 1)
        printf("data-parallel: %d processes, each a share of every batch of %d, %lld bytes summed per step%s\n",
               mc_dist_size(m), a.batch, (long long)mc_dist_reduce_bytes(m),
               a.deterministic_reduce ? ", gradients summed in rank order" : "");
    /* the inference function too when validation or test data will need
     * it, so that no compile follows: then what compiling took goes back */
    if (!rc && (r.have_val || r.have_test) && !mc_prepare_eval(m))
        rc = fail_model(m);
    if (!rc)
        mc_release_compiler_memory();
    if (!rc)
        rc = run_epochs(&r);
    if (!rc && r.have_test) {
        double tl, tm[MC_MAX_METRICS];
        if (!evaluate(m, r.test, a.batch, &tl, tm))
            rc = fail_model(m);
        else if (a.json) {
            printf("{\"test\": true");
            json_metrics(stdout, m, "test_", tl, tm);
            printf("}\n");
        } else {
            printf("test (%lld examples, inference mode):", (long long)mc_data_count(r.test));
            print_metrics(stdout, m, "test_", tl, tm);
            printf("\n");
        }
    }
    if (a.profile && (rc == 0 || mc_dist_size(m) == 1)) { /* under mpirun the report is collective */
        fflush(stdout);
        const char *report = mc_profile_report(m);
        if (rank == 0)
            fputs(report, stderr);
    }
    if (r.log)
        fclose(r.log);
    mc_watch_free(r.tw);
    free_data(&r);
    if (rc == 0)
        mc_dist_finish(m);
    mc_free(m);
    return rc;
}
