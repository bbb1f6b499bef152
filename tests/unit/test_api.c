/* The public C API: a training loop written by hand over mc_* gives
 * bit-identical parameters to `modelc train` with the same seed, data and
 * batch size; errors come back through mc_last_error. */
#define _GNU_SOURCE /* memmem */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modelc.h"
#include "runtime/io/io.h"
#include "testutil.h"

#define MODEL "tests/e2e/models/tiny_bn.mdl"

/* The first limit Fashion-MNIST training examples, bound to MODEL. */
static mc_data *load_data(int64_t limit)
{
    mc_data_options o;
    mc_data_options_default(&o);
    o.limit = limit; /* only the first examples are read */
    char *err = NULL;
    mc_data *ds = mc_data_load(MODEL, &o, &err);
    ck_assert_msg(ds != NULL, "%s", err ? err : "no data");
    ck_assert_int_eq(mc_data_count(ds), limit);
    return ds;
}

/* The first limit training examples as one batch: *v views into *ds. */
static int load_batch(mc_data **ds, int64_t limit, const mc_tensor **v)
{
    *ds = load_data(limit);
    int nv;
    ck_assert_int_eq(mc_data_batch(*ds, NULL, 0, limit, v, &nv), limit);
    return nv;
}

/* `modelc train` written out over the public API alone: the model's train
 * block, shuffling per (seed, epoch), the learning-rate schedule, epochs
 * counted into the checkpoint. */
static void hand_loop(const char *out, uint64_t seed, int epochs, int batch)
{
    mc_options o;
    mc_options_default(&o);
    o.threads = 1;
    o.seed = seed; /* shuffling and dropout masks */
    o.seed_set = true;
    mc_model *m = mc_compile(MODEL, &o);
    ck_assert_msg(m != NULL, "%s", mc_last_error(NULL));
    mc_train_config tc = mc_train_defaults(m);
    ck_assert(tc.seed == seed);
    ck_assert(mc_init_params(m, tc.seed));
    mc_data *ds = load_data(600);
    int64_t n = mc_data_count(ds), nb = (n + batch - 1) / batch;
    int64_t *perm = malloc((size_t)n * sizeof *perm);
    for (int e = mc_epoch(m); e < epochs; e++) {
        mc_shuffle(m, e, perm, n);
        for (int64_t s = 0; s < n; s += batch) {
            const mc_tensor *v;
            int nv;
            mc_data_batch(ds, perm, s, batch, &v, &nv);
            double loss, lr = mc_lr_at(m, tc.lr, e, epochs, nb);
            ck_assert_msg(mc_train_step(m, v, nv, lr, &loss), "%s", mc_last_error(m));
        }
        mc_set_epoch(m, e + 1);
    }
    ck_assert_int_eq(mc_step(m), epochs * nb);
    ck_assert_msg(mc_save(m, out), "%s", mc_last_error(m));
    free(perm);
    mc_data_free(ds);
    mc_free(m);
}

/* The bytes of a file (malloc'd), its size in *n. */
static char *slurp(const char *path, long *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    *n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)*n + 1);
    ck_assert_int_eq(fread(b, 1, (size_t)*n, f), (size_t)*n);
    fclose(f);
    return b;
}

START_TEST(hand_loop_equals_cli)
{
    const char *modelc = getenv("MODELC");
    ck_assert_ptr_nonnull(modelc);
    char dir[] = "/tmp/mc_apiXXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char a[256], c[256], cmd[1024];
    snprintf(a, sizeof a, "%s/api.st", dir);
    snprintf(c, sizeof c, "%s/cli.st", dir);
    hand_loop(a, 11, 2, 100);
    snprintf(cmd, sizeof cmd,
             "%s train " MODEL " --limit 600 --batch 100 --epochs 2 --seed 11 --threads 1 --no-test "
             "--no-progress --save %s > /dev/null",
             modelc, c);
    ck_assert_int_eq(system(cmd), 0);
    /* the same checkpoint, byte for byte: every weight, batchnorm
     * statistic and Adam slot, the step, the epoch and the seed */
    long na, nc;
    char *ba = slurp(a, &na), *bc = slurp(c, &nc);
    ck_assert_int_eq(na, nc);
    ck_assert_msg(memcmp(ba, bc, (size_t)na) == 0, "the checkpoints differ");
    ck_assert_ptr_nonnull(memmem(ba, (size_t)na, "optimizer.m.dense.kernel", 24)); /* Adam slots are in it */
    free(ba);
    free(bc);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(errors_are_reported)
{
    mc_options o;
    mc_options_default(&o);
    ck_assert_ptr_null(mc_compile("tests/e2e/models/does_not_exist.mdl", &o));
    ck_assert_ptr_nonnull(strstr(mc_last_error(NULL), "does_not_exist.mdl"));
    o.backend = MC_BACKEND_INTERP;
    mc_model *m = mc_compile(MODEL, &o);
    ck_assert_ptr_nonnull(m);
    mc_init_params(m, 1);
    int64_t dims[4] = {2, 28, 28, 3}; /* wrong channel count */
    float *x = calloc(2 * 28 * 28 * 3, sizeof(float));
    int32_t y[2] = {1, 2};
    int64_t ydims[1] = {2};
    mc_tensor v[2] = {{"x", 0, 4, dims, x}, {"y", 2, 1, ydims, y}};
    double loss;
    ck_assert(!mc_train_step(m, v, 2, 0.01, &loss));
    ck_assert_ptr_nonnull(strstr(mc_last_error(m), "'x'"));
    ck_assert(!mc_load(m, "tests/e2e/models/tiny_bn.mdl", NULL, true));
    ck_assert_ptr_nonnull(strstr(mc_last_error(m), "tiny_bn.mdl"));
    free(x);
    mc_free(m);
}
END_TEST

/* Sum of squares of dense.kernel in a checkpoint (deleted after). */
static double kernel_ss(const char *path)
{
    mc_options o;
    mc_options_default(&o);
    mc_model *m = mc_compile(MODEL, &o);
    ck_assert(mc_init_params(m, 0));
    ck_assert_msg(mc_load(m, path, NULL, true), "%s", mc_last_error(m));
    remove(path);
    mc_tensor k;
    ck_assert(mc_get_param(m, "dense.kernel", &k));
    ck_assert_int_eq(k.dtype, 0);
    int64_t n = 1;
    for (int i = 0; i < k.rank; i++)
        n *= k.dims[i];
    double ss = 0;
    for (int64_t i = 0; i < n; i++)
        ss += (double)((float *)k.data)[i] * ((float *)k.data)[i];
    mc_free(m);
    return ss;
}

/* MODEL compiled on one thread with the given backend, training graph
 * and eval_only, its parameters initialised from seed 5. */
static mc_model *compiled(mc_backend be, mc_mode train_mode, bool eval_only)
{
    mc_options o;
    mc_options_default(&o);
    o.threads = 1;
    o.backend = be;
    o.train_mode = train_mode;
    o.eval_only = eval_only;
    mc_model *m = mc_compile(MODEL, &o);
    ck_assert_msg(m != NULL, "%s", mc_last_error(NULL));
    ck_assert(mc_init_params(m, 5));
    return m;
}

/* One step on a fixed batch of 100 images; returns the new kernel's sum
 * of squares and leaves the compile warnings in *warn (malloc'd). */
static double one_step(mc_mode mode, mc_backend be, char **warn)
{
    mc_model *m = compiled(be, mode, false);
    *warn = strdup(mc_warnings(m));
    mc_data *ds;
    const mc_tensor *v;
    int nv = load_batch(&ds, 100, &v);
    double loss;
    ck_assert_msg(mc_train_step(m, v, nv, 0.5, &loss), "%s", mc_last_error(m));
    char path[64];
    snprintf(path, sizeof path, "api_mode_%d_%d.safetensors", (int)mode, (int)be);
    ck_assert(mc_save(m, path));
    mc_free(m);
    double ss = kernel_ss(path);
    mc_data_free(ds);
    return ss;
}

/* Training the inference graph (scenario S1's mistake) is possible but
 * warns, names the batchnorm and dropout layers, and updates the weights
 * differently from a training-mode step; both backends agree. */
START_TEST(train_in_inference_mode_warns)
{
    char *w_train, *w_infer, *w_interp;
    double init, train = one_step(MC_MODE_TRAIN, MC_BACKEND_JIT, &w_train);
    double infer = one_step(MC_MODE_INFER, MC_BACKEND_JIT, &w_infer);
    double interp = one_step(MC_MODE_INFER, MC_BACKEND_INTERP, &w_interp);
    ck_assert_str_eq(w_train, "");
    ck_assert_ptr_nonnull(strstr(w_infer, "tiny_bn.mdl:9:5: warning: model 'tiny_bn' is trained in inference mode"));
    ck_assert_ptr_nonnull(strstr(w_infer, "batchnorm 'batchnorm' normalises with its moving statistics"));
    ck_assert_ptr_nonnull(strstr(w_infer, "dropout 'dropout' drops nothing"));
    ck_assert_str_eq(w_infer, w_interp);
    {
        mc_options o;
        mc_options_default(&o);
        mc_model *m = mc_compile(MODEL, &o);
        ck_assert(mc_init_params(m, 5));
        ck_assert(mc_save(m, "api_mode_init.safetensors"));
        mc_free(m);
        init = kernel_ss("api_mode_init.safetensors");
    }
    ck_assert_msg(infer != init, "the inference-mode step did not update the kernel");
    ck_assert_msg(fabs(train - infer) > 1e-6 * train, "train %g and infer %g steps agree", train, infer);
    ck_assert_msg(fabs(interp - infer) <= 1e-4 * infer, "JIT %g vs interpreter %g", infer, interp);
    free(w_train);
    free(w_infer);
    free(w_interp);
}
END_TEST

/* Evaluating in training mode (batch statistics, dropout) warns, gives a
 * different loss than inference mode and updates nothing. */
START_TEST(eval_in_training_mode_warns)
{
    double loss[2], acc[2];
    char *warn[2];
    for (int k = 0; k < 2; k++) {
        mc_options o;
        mc_options_default(&o);
        o.threads = 1;
        o.eval_mode = k ? MC_MODE_TRAIN : MC_MODE_DEFAULT;
        mc_model *m = mc_compile(MODEL, &o);
        ck_assert_msg(m != NULL, "%s", mc_last_error(NULL));
        warn[k] = strdup(mc_warnings(m));
        ck_assert(mc_init_params(m, 5));
        mc_data *ds;
        const mc_tensor *v;
        int nv = load_batch(&ds, 200, &v);
        ck_assert_msg(mc_eval_batch(m, v, nv, &loss[k], &acc[k], 1), "%s", mc_last_error(m));
        ck_assert_int_eq(mc_step(m), 0);
        ck_assert(mc_save(m, "api_eval_mode.safetensors"));
        mc_free(m);
        mc_data_free(ds);
        /* the parameters are still the initial ones */
        mc_options_default(&o);
        m = mc_compile(MODEL, &o);
        ck_assert(mc_init_params(m, 5));
        ck_assert(mc_save(m, "api_eval_init.safetensors"));
        mc_free(m);
        ck_assert(kernel_ss("api_eval_mode.safetensors") == kernel_ss("api_eval_init.safetensors"));
    }
    ck_assert_str_eq(warn[0], "");
    ck_assert_ptr_nonnull(strstr(warn[1], "tiny_bn.mdl:9:5: warning: model 'tiny_bn' is evaluated in training mode"));
    ck_assert_ptr_nonnull(strstr(warn[1], "dropout 'dropout' drops units at random"));
    ck_assert_msg(fabs(loss[0] - loss[1]) > 1e-4, "losses %g and %g agree", loss[0], loss[1]);
    free(warn[0]);
    free(warn[1]);
}
END_TEST

/* Loss and accuracy of one evaluation of 300 images (parameters from seed
 * 5), with the inference function compiled by mc_prepare_eval first or
 * lazily by mc_eval_batch. */
static void eval_once(mc_backend be, bool prepare, bool eval_only, double *loss, double *acc)
{
    mc_model *m = compiled(be, MC_MODE_DEFAULT, eval_only);
    bool jit = be == MC_BACKEND_JIT;
    ck_assert(mc_is_compiled(m, "train_step") == (jit && !eval_only));
    ck_assert(!mc_is_compiled(m, "eval")); /* compiled on first use only */
    if (prepare) {
        ck_assert_msg(mc_prepare_eval(m), "%s", mc_last_error(m));
        ck_assert(mc_is_compiled(m, "eval") == jit);
        ck_assert(mc_prepare_eval(m)); /* once is enough */
    }
    mc_data *ds;
    const mc_tensor *v;
    int nv = load_batch(&ds, 300, &v);
    ck_assert_msg(mc_eval_batch(m, v, nv, loss, acc, 1), "%s", mc_last_error(m));
    ck_assert(mc_is_compiled(m, "eval") == jit);
    if (eval_only && jit) {
        double l;
        ck_assert(!mc_train_step(m, v, nv, 0.01, &l));
        ck_assert_str_eq(mc_last_error(m), "the model was compiled for evaluation only (mc_options.eval_only)");
    }
    mc_data_free(ds);
    mc_free(m);
}

/* mc_prepare_eval compiles the inference function up front; evaluation
 * after it gives exactly the loss of the lazy compile (and of the
 * interpreter, within rounding). Without a loss it is an error. */
START_TEST(prepare_eval)
{
    double l_lazy, a_lazy, l_prep, a_prep, l_int, a_int;
    double l_only, a_only;
    eval_once(MC_BACKEND_JIT, false, false, &l_lazy, &a_lazy);
    eval_once(MC_BACKEND_JIT, true, false, &l_prep, &a_prep);
    eval_once(MC_BACKEND_JIT, true, true, &l_only, &a_only);
    eval_once(MC_BACKEND_INTERP, true, false, &l_int, &a_int);
    ck_assert_msg(l_only == l_prep, "eval_only %.9g vs %.9g", l_only, l_prep);
    ck_assert(a_only == a_prep);
    ck_assert_msg(l_prep == l_lazy, "prepared %.9g vs lazy %.9g", l_prep, l_lazy);
    ck_assert(a_prep == a_lazy);
    ck_assert_msg(fabs(l_int - l_prep) <= 1e-5 * fabs(l_prep), "interp %.9g vs JIT %.9g", l_int,
                  l_prep);
    ck_assert(a_int == a_prep);
    ck_assert(isfinite(l_prep) && l_prep > 1.0); /* untrained: near ln(10) */

    const char *path = "api_no_loss.mdl";
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("input x: f32[N, 4]\ny = dense(x, 2)\n", f);
    fclose(f);
    mc_options o;
    mc_options_default(&o);
    mc_model *m = mc_compile(path, &o);
    remove(path);
    ck_assert_msg(m != NULL, "%s", mc_last_error(NULL));
    ck_assert(!mc_prepare_eval(m));
    ck_assert_str_eq(mc_last_error(m), "the model has no loss to evaluate");
    mc_free(m);
}
END_TEST

/* A resident size from /proc/self/status ("RssFile:"), in kB. */
static long status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, strlen(key)) == 0)
            v = strtol(line + strlen(key), NULL, 10);
    if (f)
        fclose(f);
    return v;
}

/* The bytes of parameter name (any dtype: optimizer.step is f64),
 * malloc'd; *bytes their count. */
static void *param_copy(mc_model *m, const char *name, size_t *bytes)
{
    mc_tensor t;
    ck_assert_msg(mc_get_param(m, name, &t), "%s", name);
    *bytes = t.dtype == 1 ? sizeof(double) : sizeof(float); /* f64; f32 and i32 */
    for (int i = 0; i < t.rank; i++)
        *bytes *= (size_t)t.dims[i];
    void *c = malloc(*bytes ? *bytes : 1);
    memcpy(c, t.data, *bytes);
    return c;
}

/* A compiled step whose loss is NaN applies none of its updates that come
 * after the loss (the weights and Adam's slots keep their bits), so the
 * NaN guard need not copy them before every step; the batchnorm's moving
 * statistics, updated before the loss is known, do change. */
START_TEST(nan_loss_skips_updates)
{
    mc_options o;
    mc_options_default(&o);
    o.threads = 2;
    mc_model *m = mc_compile(MODEL, &o);
    ck_assert_msg(m != NULL, "%s", mc_last_error(NULL));
    ck_assert(mc_init_params(m, 1));
    mc_data *ds;
    const mc_tensor *v;
    int nv = load_batch(&ds, 64, &v);
    double loss;
    ck_assert(mc_train_step(m, v, nv, 0.002, &loss)); /* Adam's slots are not zeros */
    mc_tensor b;
    ck_assert(mc_get_param(m, "dense_1.bias", &b)); /* a view: a NaN logit for every example */
    ((float *)b.data)[3] = NAN;
    static const char *kept[] = {"dense.kernel", "dense_1.bias", "optimizer.m.dense.kernel",
                                 "optimizer.v.dense_1.kernel", "optimizer.step"};
    void *before[5];
    size_t n[5], nmean;
    for (int i = 0; i < 5; i++)
        before[i] = param_copy(m, kept[i], &n[i]);
    void *mean = param_copy(m, "batchnorm.moving_mean", &nmean);
    ck_assert(!mc_train_step(m, v, nv, 0.002, &loss));
    ck_assert(isnan(loss));
    for (int i = 0; i < 5; i++) {
        size_t k;
        void *after = param_copy(m, kept[i], &k);
        ck_assert_msg(k == n[i] && memcmp(after, before[i], k) == 0, "%s changed", kept[i]);
        free(after);
        free(before[i]);
    }
    void *mean2 = param_copy(m, "batchnorm.moving_mean", &nmean);
    ck_assert(memcmp(mean, mean2, nmean) != 0);
    free(mean);
    free(mean2);
    mc_data_free(ds);
    mc_free(m);
}
END_TEST

/* mc_release_compiler_memory gives back LLVM's resident code pages after
 * a compile (when LLVM is a shared library, as Debian's is): the
 * process's file-backed resident memory falls by about as much; the
 * compiled model still trains and evaluates alike, and a later compile
 * (reading the pages again) works. */
START_TEST(release_compiler_memory)
{
    mc_options o;
    mc_options_default(&o);
    o.threads = 1;
    mc_model *m = mc_compile(MODEL, &o);
    ck_assert_msg(m != NULL, "%s", mc_last_error(NULL));
    ck_assert(mc_init_params(m, 1));
    ck_assert(mc_prepare_eval(m));
    mc_data *ds;
    const mc_tensor *v;
    int nv = load_batch(&ds, 64, &v);
    double l0, m0[MC_MAX_METRICS], l1, m1[MC_MAX_METRICS], loss;
    ck_assert(mc_eval_batch(m, v, nv, &l0, m0, MC_MAX_METRICS));
    long before = status_kb("RssFile:");
    int64_t released = mc_release_compiler_memory();
    long after = status_kb("RssFile:");
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[4096];
    bool shared = false;
    while (maps && fgets(line, sizeof line, maps))
        shared |= strstr(line, "/libLLVM") != NULL;
    if (maps)
        fclose(maps);
    if (shared) {
        ck_assert_msg(released > (4 << 20), "released %lld bytes", (long long)released);
        ck_assert_msg(before - after >= released / 1024 - 1024, "RssFile %ld -> %ld kB after releasing %lld bytes",
                      before, after, (long long)released);
    }
    ck_assert(mc_eval_batch(m, v, nv, &l1, m1, MC_MAX_METRICS));
    ck_assert(l1 == l0);
    ck_assert(mc_train_step(m, v, nv, 0.001, &loss));
    mc_free(m);
    m = mc_compile(MODEL, &o); /* LLVM's code read again */
    ck_assert_msg(m != NULL, "%s", mc_last_error(NULL));
    ck_assert(mc_init_params(m, 1));
    ck_assert(mc_eval_batch(m, v, nv, &l1, m1, MC_MAX_METRICS));
    ck_assert(l1 == l0);
    double loss2;
    ck_assert(mc_train_step(m, v, nv, 0.001, &loss2));
    ck_assert(isfinite(loss) && loss2 == loss);
    mc_free(m);
    mc_data_free(ds);
}
END_TEST

/* Evaluation and prediction bind the caller's batch in place (the JIT
 * backend): the caller's memory, read during the call, gives the same
 * loss as the interpreter's staged copy; a bad tensor is an error, not a
 * crash; and an input left out is missing, not taken from an earlier
 * training step's batch. */
START_TEST(eval_binds_caller_batch)
{
    mc_data *ds;
    const mc_tensor *v;
    int nv = load_batch(&ds, 64, &v);
    ck_assert_int_eq(nv, 2);
    double loss[2], acc[2];
    for (int b = 0; b < 2; b++) {
        mc_model *m = compiled(b ? MC_BACKEND_INTERP : MC_BACKEND_JIT, MC_MODE_DEFAULT, false);
        mc_tensor copy[2];
        memcpy(copy, v, sizeof copy);
        size_t bytes = sizeof(float);
        for (int k = 0; k < v[0].rank; k++)
            bytes *= (size_t)v[0].dims[k];
        float *x = malloc(bytes + sizeof(float));
        memcpy(x + 1, v[0].data, bytes); /* 4-byte aligned, not 64 */
        copy[0].data = x + 1;
        ck_assert_msg(mc_eval_batch(m, copy, 2, &loss[b], &acc[b], 1), "%s", mc_last_error(m));
        double l;
        ck_assert_msg(mc_train_step(m, copy, 2, 0.01, &l), "%s", mc_last_error(m));
        /* labels left out: an error naming them */
        ck_assert(!mc_eval_batch(m, copy, 1, &l, acc, 1));
        ck_assert_ptr_nonnull(strstr(mc_last_error(m), "'y'"));
        mc_tensor bad = copy[0];
        int64_t dims[8];
        memcpy(dims, v[0].dims, (size_t)v[0].rank * sizeof *dims);
        dims[1] = -3;
        bad.dims = dims;
        mc_tensor two[2] = {bad, copy[1]};
        ck_assert(!mc_eval_batch(m, two, 2, &l, acc, 1));
        ck_assert_str_ne(mc_last_error(m), "");
        two[0] = copy[0];
        two[0].rank = 99;
        ck_assert(!mc_eval_batch(m, two, 2, &l, acc, 1));
        ck_assert_ptr_nonnull(strstr(mc_last_error(m), "rank 99 is not supported"));
        two[0] = copy[0];
        two[0].data = NULL;
        ck_assert(!mc_eval_batch(m, two, 2, &l, acc, 1));
        ck_assert_str_ne(mc_last_error(m), "");
        const mc_tensor *out;
        int nout;
        two[0] = copy[0];
        two[0].rank = 99;
        ck_assert(!mc_predict(m, two, 1, &out, &nout));
        ck_assert_ptr_nonnull(strstr(mc_last_error(m), "rank 99 is not supported"));
        ck_assert_msg(mc_eval_batch(m, copy, 2, &l, acc, 1), "%s", mc_last_error(m)); /* still usable */
        free(x);
        mc_free(m);
    }
    ck_assert_msg(fabs(loss[0] - loss[1]) <= 1e-4 * loss[1], "JIT %g vs interpreter %g", loss[0], loss[1]);
    ck_assert_msg(fabs(acc[0] - acc[1]) <= 1.0 / 64, "accuracy %g vs %g", acc[0], acc[1]); /* a near tie may flip */
    mc_data_free(ds);
}
END_TEST

/* mc_data_options.decode_max: 8-bit images converted when loading give
 * the same batches, bit for bit, in order and shuffled, as images kept as
 * bytes; and the same loss. */
START_TEST(data_decoded_when_loaded)
{
    mc_data *ds[2];
    for (int k = 0; k < 2; k++) {
        mc_data_options o;
        mc_data_options_default(&o);
        o.limit = 100;
        o.decode_max = k ? (int64_t)1 << 30 : 0;
        char *err = NULL;
        ds[k] = mc_data_load(MODEL, &o, &err);
        ck_assert_msg(ds[k] != NULL, "%s", err ? err : "no data");
    }
    int64_t perm[100];
    for (int i = 0; i < 100; i++)
        perm[i] = (i * 37) % 100;
    for (int shuffled = 0; shuffled < 2; shuffled++)
        for (int64_t s = 0; s < 100; s += 32) {
            const mc_tensor *v[2];
            int nv[2];
            for (int k = 0; k < 2; k++)
                ck_assert_int_eq(mc_data_batch(ds[k], shuffled ? perm : NULL, s, 32, &v[k], &nv[k]),
                                 s + 32 <= 100 ? 32 : 100 - s);
            ck_assert_int_eq(nv[0], 2);
            ck_assert_int_eq(nv[1], 2);
            for (int i = 0; i < 2; i++) {
                ck_assert_str_eq(v[0][i].name, v[1][i].name);
                ck_assert_int_eq(v[0][i].rank, v[1][i].rank);
                size_t bytes = v[0][i].dtype == 1 ? 8 : 4;
                for (int d = 0; d < v[0][i].rank; d++) {
                    ck_assert_int_eq(v[0][i].dims[d], v[1][i].dims[d]);
                    bytes *= (size_t)v[0][i].dims[d];
                }
                ck_assert(memcmp(v[0][i].data, v[1][i].data, bytes) == 0);
            }
            if (s == 0 && !shuffled) {
                double l[2], a[2];
                for (int k = 0; k < 2; k++) {
                    mc_model *m = compiled(MC_BACKEND_JIT, MC_MODE_DEFAULT, true);
                    ck_assert_msg(mc_eval_batch(m, v[k], nv[k], &l[k], &a[k], 1), "%s", mc_last_error(m));
                    mc_free(m);
                }
                ck_assert(l[0] == l[1] && a[0] == a[1]);
            }
        }
    mc_data_free(ds[0]);
    mc_data_free(ds[1]);
}
END_TEST

/* mc_predict runs the predict function on inputs alone (no labels): the
 * JIT and the interpreter agree, every row of probabilities sums to 1,
 * and the outputs are named; a missing input is an error naming it. */
START_TEST(predict_outputs)
{
    const char *model = "examples/fashion_mlp.mdl";
    float *probs[2];
    for (int b = 0; b < 2; b++) {
        mc_options o;
        mc_options_default(&o);
        o.backend = b ? MC_BACKEND_INTERP : MC_BACKEND_JIT;
        mc_model *m = mc_compile(model, &o);
        ck_assert_msg(m != NULL, "%s", mc_last_error(NULL));
        ck_assert(mc_init_params(m, 3));
        mc_data_options d;
        mc_data_options_default(&d);
        d.limit = 5;
        d.prediction = true;
        char *err = NULL;
        mc_data *ds = mc_data_load(model, &d, &err);
        ck_assert_msg(ds != NULL, "%s", err);
        const mc_tensor *in, *out;
        int nin, nout;
        mc_data_batch(ds, NULL, 0, 5, &in, &nin);
        ck_assert_int_eq(nin, 1); /* x only */
        ck_assert_str_eq(in[0].name, "x");
        ck_assert_msg(mc_predict(m, in, nin, &out, &nout), "%s", mc_last_error(m));
        ck_assert(mc_is_compiled(m, "predict") == !b);
        ck_assert_int_eq(nout, 1);
        ck_assert_str_eq(out[0].name, "probs");
        ck_assert_int_eq(out[0].rank, 2);
        ck_assert_int_eq(out[0].dims[0], 5);
        ck_assert_int_eq(out[0].dims[1], 10);
        probs[b] = malloc(50 * sizeof(float));
        memcpy(probs[b], out[0].data, 50 * sizeof(float));
        for (int r = 0; r < 5; r++) {
            double sum = 0;
            for (int c = 0; c < 10; c++)
                sum += probs[b][r * 10 + c];
            ck_assert_msg(fabs(sum - 1) < 1e-5, "row %d sums to %g", r, sum);
        }
        mc_data_free(ds);
        mc_free(m);
    }
    for (int i = 0; i < 50; i++)
        ck_assert_msg(fabsf(probs[0][i] - probs[1][i]) <= 1e-5f, "JIT %g vs interpreter %g", probs[0][i],
                      probs[1][i]);
    free(probs[0]);
    free(probs[1]);

    mc_options o;
    mc_options_default(&o);
    mc_model *m = mc_compile(MODEL, &o);
    ck_assert(mc_init_params(m, 3));
    const mc_tensor *out;
    int nout;
    ck_assert(!mc_predict(m, NULL, 0, &out, &nout));
    ck_assert_ptr_nonnull(strstr(mc_last_error(m), "no data for input 'x'"));
    mc_free(m);
}
END_TEST

/* mc_input_info: the model's inputs in declaration order, N as -1,
 * without the optimizer's learning rate. */
START_TEST(input_info)
{
    mc_options o;
    mc_options_default(&o);
    mc_model *m = mc_compile("examples/char_lstm/model.mdl", &o);
    ck_assert_msg(m != NULL, "%s", mc_last_error(NULL));
    ck_assert_int_eq(mc_num_inputs(m), 2);
    const char *names[2] = {"x", "y"};
    for (int i = 0; i < 2; i++) {
        mc_tensor t;
        ck_assert(mc_input_info(m, i, &t));
        ck_assert_str_eq(t.name, names[i]);
        ck_assert_int_eq(t.dtype, 2);
        ck_assert_int_eq(t.rank, 2);
        ck_assert_int_eq(t.dims[0], -1);
        ck_assert_int_eq(t.dims[1], 64);
        ck_assert_ptr_null(t.data);
    }
    mc_tensor t;
    ck_assert(!mc_input_info(m, 2, &t));
    ck_assert(!mc_input_info(m, -1, &t));
    mc_free(m);
    m = mc_compile("examples/fashion_mlp.mdl", &o);
    ck_assert(mc_input_info(m, 0, &t));
    ck_assert_str_eq(t.name, "x");
    ck_assert_int_eq(t.dtype, 0);
    ck_assert_int_eq(t.rank, 4);
    ck_assert_int_eq(t.dims[3], 1);
    ck_assert_int_eq(mc_num_inputs(m), 2);
    mc_free(m);
}
END_TEST

/* Without mc_options.distributed a model is a job of one process: its
 * share of a batch is the batch, the start check passes `ok` through,
 * sums leave the values alone and nothing is summed per step. */
START_TEST(one_process_job)
{
    mc_options o;
    mc_options_default(&o);
    mc_model *m = mc_compile(MODEL, &o);
    ck_assert_ptr_nonnull(m);
    ck_assert(mc_init_params(m, 3));
    ck_assert_int_eq(mc_dist_rank(m), 0);
    ck_assert_int_eq(mc_dist_size(m), 1);
    int64_t start, count;
    mc_dist_shard(m, 256, 100, &start, &count);
    ck_assert(start == 256 && count == 100);
    mc_dist_shard(m, 0, 0, &start, &count);
    ck_assert(start == 0 && count == 0);
    double settings[2] = {1, 2}, v[2] = {0.5, -3};
    ck_assert(mc_dist_start(m, NULL, settings, sizeof settings, true));
    ck_assert(!mc_dist_start(m, NULL, settings, sizeof settings, false));
    ck_assert(mc_dist_sum(m, v, 2) && v[0] == 0.5 && v[1] == -3);
    ck_assert_int_eq(mc_dist_reduce_bytes(m), 0);
    ck_assert(mc_dist_reduce_ms(m) == 0);
    mc_dist_finish(m);
    mc_free(m);
}
END_TEST

/* Adam's step counter is an f64; a checkpoint written when it was an f32
 * still loads, its value kept. */
START_TEST(f32_step_counter_loads)
{
    char p1[] = "/tmp/modelc_step_XXXXXX", p2[] = "/tmp/modelc_step_XXXXXX";
    ck_assert(mkstemp(p1) >= 0 && mkstemp(p2) >= 0);
    mc_options o;
    mc_options_default(&o);
    o.backend = MC_BACKEND_INTERP;
    mc_model *m = mc_compile(MODEL, &o);
    ck_assert(m && mc_init_params(m, 3) && mc_save(m, p1));
    Diags d;
    diags_init(&d);
    TensorMap ck;
    Metadata meta;
    rt_map_init(&ck);
    rt_meta_init(&meta);
    ck_assert(rt_safetensors_read(p1, &ck, &meta, &d));
    ck_assert_int_eq(rt_map_get(&ck, "optimizer.step")->dt, DT_F64);
    Tensor *old = rt_tensor_new(DT_F32, 0, NULL);
    rt_set(old, 0, 1234);
    rt_map_put(&ck, "optimizer.step", old);
    ck_assert(rt_safetensors_write(p2, &ck, &meta, &d));
    ck_assert_msg(mc_load(m, p2, NULL, true), "%s", mc_last_error(m));
    mc_tensor t;
    ck_assert(mc_get_param(m, "optimizer.step", &t));
    ck_assert_int_eq(t.dtype, 1);
    ck_assert(*(const double *)t.data == 1234);
    rt_map_free(&ck);
    rt_meta_free(&meta);
    diags_free(&d);
    mc_free(m);
    remove(p1);
    remove(p2);
}
END_TEST

/* A model with the given train block settings, in a temporary file;
 * compiled for the interpreter with parameters initialised. */
static mc_model *with_train(const char *settings, char *path)
{
    strcpy(path, "/tmp/modelc_sched_XXXXXX.mdl");
    int fd = mkstemps(path, 4);
    ck_assert(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "input x: f32[N, 4]\ninput y: i32[N]\nlogits = dense(x, 3)\n"
               "loss = sparse_categorical_crossentropy(y, logits, from_logits=true)\n"
               "metric accuracy = accuracy(y, logits)\n"
               "train {\n  optimizer = sgd(lr=0.01)\n%s\n}\n", settings);
    fclose(f);
    mc_options o;
    mc_options_default(&o);
    o.backend = MC_BACKEND_INTERP;
    mc_model *m = mc_compile(path, &o);
    ck_assert_msg(m != NULL, "%s", mc_last_error(NULL));
    ck_assert(mc_init_params(m, 1));
    return m;
}

/* Put the model at step `step` (a checkpoint with that step, loaded). */
static void at_step(mc_model *m, int64_t step)
{
    char p[] = "/tmp/modelc_step_XXXXXX";
    ck_assert(mkstemp(p) >= 0);
    ck_assert(mc_save(m, p));
    Diags d;
    diags_init(&d);
    TensorMap ck;
    Metadata meta;
    rt_map_init(&ck);
    rt_meta_init(&meta);
    ck_assert(rt_safetensors_read(p, &ck, &meta, &d));
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)step);
    rt_meta_set(&meta, "step", buf);
    ck_assert(rt_safetensors_write(p, &ck, &meta, &d));
    ck_assert_msg(mc_load(m, p, NULL, true), "%s", mc_last_error(m));
    ck_assert_int_eq(mc_step(m), step);
    rt_map_free(&ck);
    rt_meta_free(&meta);
    diags_free(&d);
    remove(p);
}

static void lr_is(mc_model *m, int64_t step, double want)
{
    at_step(m, step);
    double got = mc_lr_at(m, 0.01, 0, 1, 10);
    ck_assert_msg(fabs(got - want) <= 1e-15 * want, "step %lld: lr %.17g, want %.17g", (long long)step, got, want);
}

/* Keras's ExponentialDecay (lr0 * rate^(step / decay_steps), floored
 * with staircase), the linear warm-up from 0 and the cosine schedule over
 * a horizon the checkpoint keeps, against values computed by hand. */
START_TEST(schedules_follow_keras)
{
    char path[64];
    mc_model *m = with_train("  schedule = exponential(decay_steps=10, decay_rate=0.5)", path);
    lr_is(m, 0, 0.01);
    lr_is(m, 5, 0.007071067811865476);
    lr_is(m, 10, 0.005);
    lr_is(m, 37, 0.0007694652583405726);
    mc_free(m);
    remove(path);

    m = with_train("  schedule = exponential(10, 0.5, staircase=true)", path);
    lr_is(m, 9, 0.01);
    lr_is(m, 10, 0.005);
    lr_is(m, 37, 0.00125);
    mc_free(m);
    remove(path);

    m = with_train("  schedule = exponential(decay_steps=10, decay_rate=0.5)\n  warmup = 20", path);
    at_step(m, 0);
    ck_assert(mc_lr_at(m, 0.01, 0, 1, 10) == 0);
    lr_is(m, 5, 0.001767766952966369);
    lr_is(m, 19, 0.0025454619735236963);
    lr_is(m, 20, 0.0025);
    mc_free(m);
    remove(path);

    /* cosine: the horizon comes from the checkpoint, not from this call's epochs */
    m = with_train("  schedule = cosine", path);
    mc_set_lr_horizon(m, 100);
    lr_is(m, 25, 0.008535533905932738);
    lr_is(m, 100, 0);
    lr_is(m, 150, 0);
    ck_assert_int_eq(mc_lr_horizon(m), 100);
    mc_free(m);
    remove(path);
}
END_TEST

/* The callbacks' decisions on given epoch values: Keras 3's rules. */
START_TEST(callback_decisions)
{
    char path[64];
    mc_model *m = with_train("  callbacks = [early_stopping(patience=2, min_delta=0.01, restore_best_weights=true),\n"
                             "               reduce_lr_on_plateau(monitor=\"val_accuracy\", factor=0.5, patience=1)]",
                             path);
    mc_callbacks c;
    mc_callbacks_get(m, &c);
    ck_assert(c.early_stopping.on && c.early_stopping.patience == 2 && c.reduce_lr.on && !c.checkpoint.on);
    /* val_ monitors need validation data */
    ck_assert(!mc_callbacks_set(m, &c, false));
    ck_assert_ptr_nonnull(strstr(mc_last_error(m), "no validation data"));
    c.reduce_lr.monitor = "val_acc";
    ck_assert(!mc_callbacks_set(m, &c, true));
    ck_assert_ptr_nonnull(strstr(mc_last_error(m), "unknown monitor \"val_acc\""));
    c.reduce_lr.monitor = "val_accuracy";
    ck_assert_msg(mc_callbacks_set(m, &c, true), "%s", mc_last_error(m));
    const char *names[4] = {"loss", "accuracy", "val_loss", "val_accuracy"};
    /* val_loss: 1.0 (best), 0.995 (not by min_delta), 0.98 (best), 0.975, 0.99: stop at 5;
     * val_accuracy (max): 0.5, 0.6, 0.6, 0.55, 0.7: reduce at 3 and at 4 */
    double vl[5] = {1.0, 0.995, 0.98, 0.975, 0.99}, va[5] = {0.5, 0.6, 0.6, 0.55, 0.7};
    int reduced_at[5] = {0}, stop_at = 0;
    for (int e = 1; e <= 5 && !stop_at; e++) {
        double v[4] = {1, 0.5, vl[e - 1], va[e - 1]};
        mc_callback_event ev[MC_MAX_CALLBACK_EVENTS];
        int nev;
        ck_assert_msg(mc_callbacks_epoch_end(m, e, 0.01, names, v, 4, ev, &nev), "%s", mc_last_error(m));
        for (int i = 0; i < nev; i++) {
            if (strcmp(ev[i].callback, "reduce_lr_on_plateau") == 0)
                reduced_at[e - 1] = 1;
            if (ev[i].stop) {
                stop_at = e;
                ck_assert_int_eq(ev[i].best_epoch, 3);
                ck_assert(ev[i].restored);
                ck_assert_str_eq(ev[i].text, "epoch 5: val_loss did not improve for 2 epochs; stopping, "
                                             "restoring the weights of epoch 3 (val_loss 0.9800)");
            }
        }
    }
    ck_assert_int_eq(stop_at, 5);
    ck_assert(mc_stop_training(m));
    ck_assert(!reduced_at[0] && !reduced_at[1] && reduced_at[2] && reduced_at[3] && !reduced_at[4]);
    ck_assert(mc_lr_at(m, 0.01, 0, 1, 10) == 0.01 * 0.5 * 0.5);
    mc_free(m);
    remove(path);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("api");
    TCase *t = tcase_create("api");
    tcase_set_timeout(t, 600);
    tcase_add_test(t, errors_are_reported);
    tcase_add_test(t, schedules_follow_keras);
    tcase_add_test(t, callback_decisions);
    tcase_add_test(t, hand_loop_equals_cli);
    tcase_add_test(t, train_in_inference_mode_warns);
    tcase_add_test(t, eval_in_training_mode_warns);
    tcase_add_test(t, prepare_eval);
    tcase_add_test(t, predict_outputs);
    tcase_add_test(t, eval_binds_caller_batch);
    tcase_add_test(t, data_decoded_when_loaded);
    tcase_add_test(t, input_info);
    tcase_add_test(t, release_compiler_memory);
    tcase_add_test(t, nan_loss_skips_updates);
    tcase_add_test(t, one_process_job);
    tcase_add_test(t, f32_step_counter_loads);
    suite_add_tcase(s, t);
    return tu_run(s);
}
