/* The public C API: a training loop written by hand over mc_* gives
 * bit-identical parameters to `modelc train` with the same seed, data and
 * batch size; errors come back through mc_last_error. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/api_internal.h"
#include "modelc.h"
#include "runtime/runtime.h"
#include "testutil.h"

#define MODEL "tests/e2e/models/tiny_bn.mdl"
#define FASHION "/usr/share/datasets/fashion-mnist"

static void load_data(Dataset *ds, int64_t limit)
{
    RtLoadOpts o;
    rt_load_opts_default(&o);
    o.limit = limit; /* only the first examples are read */
    Diags d;
    diags_init(&d);
    ck_assert(rt_load_fashion_mnist(FASHION, "train", &o, ds, &d));
    ck_assert_int_eq(ds->n, limit);
    diags_free(&d);
}

/* The first limit training examples as one batch. */
static void load_batch(TensorMap *b, int64_t limit)
{
    Dataset ds;
    load_data(&ds, limit);
    rt_map_init(b);
    ck_assert_int_eq(rt_dataset_batch(&ds, NULL, 0, limit, b), limit);
    rt_dataset_free(&ds);
}

/* The tensors of a batch map as mc_tensor views (at most 2). */
static int views(const TensorMap *b, mc_tensor *v)
{
    ck_assert_int_le(b->n, 2);
    for (int i = 0; i < b->n; i++) {
        Tensor *t = b->t[i];
        v[i] = (mc_tensor){b->names[i], t->dt == DT_I32 ? 2 : 0, t->rank, t->dims, t->data};
    }
    return b->n;
}

static void hand_loop(const char *out, uint64_t seed, int epochs, int batch, double lr)
{
    mc_options o;
    mc_options_default(&o);
    o.threads = 1;
    o.seed = seed; /* shuffling and dropout masks */
    o.seed_set = true;
    mc_model *m = mc_compile(MODEL, &o);
    ck_assert_msg(m != NULL, "%s", mc_last_error(NULL));
    ck_assert(mc_init_params(m, seed));
    Dataset ds;
    load_data(&ds, 600);
    int64_t *perm = malloc((size_t)ds.n * sizeof *perm);
    TensorMap b;
    rt_map_init(&b);
    for (int e = 0; e < epochs; e++) {
        rt_perm_identity(perm, ds.n);
        rt_shuffle(perm, ds.n, seed, (uint64_t)e);
        for (int64_t s = 0; s < ds.n; s += batch) {
            rt_dataset_batch(&ds, perm, s, batch, &b);
            mc_tensor v[2];
            views(&b, v);
            double loss;
            ck_assert_msg(mc_train_step(m, v, b.n, lr, &loss), "%s", mc_last_error(m));
        }
    }
    ck_assert_int_eq(mc_step(m), epochs * ((600 + batch - 1) / batch));
    ck_assert_msg(mc_save(m, out), "%s", mc_last_error(m));
    rt_map_free(&b);
    free(perm);
    rt_dataset_free(&ds);
    mc_free(m);
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
    hand_loop(a, 11, 2, 100, 0.002);
    snprintf(cmd, sizeof cmd,
             "%s train " MODEL " --limit 600 --batch 100 --epochs 2 --seed 11 --threads 1 --no-test "
             "--no-progress --save %s > /dev/null",
             modelc, c);
    ck_assert_int_eq(system(cmd), 0);
    TensorMap ta, tc;
    rt_map_init(&ta);
    rt_map_init(&tc);
    Diags d;
    diags_init(&d);
    ck_assert(rt_safetensors_read(a, &ta, NULL, &d));
    ck_assert(rt_safetensors_read(c, &tc, NULL, &d));
    ck_assert_int_eq(ta.n, tc.n);
    ck_assert_int_gt(ta.n, 10); /* weights, batchnorm state, Adam slots, step */
    for (int i = 0; i < ta.n; i++) {
        Tensor *x = ta.t[i], *y = rt_map_get(&tc, ta.names[i]);
        ck_assert_msg(y != NULL, "%s missing from the CLI checkpoint", ta.names[i]);
        ck_assert(rt_tensor_same_shape(x, y));
        ck_assert_msg(memcmp(x->data, y->data, (size_t)rt_tensor_bytes(x)) == 0,
                      "tensor %s differs", ta.names[i]);
    }
    rt_map_free(&ta);
    rt_map_free(&tc);
    diags_free(&d);
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
    TensorMap w;
    Metadata meta;
    Diags d;
    rt_map_init(&w);
    rt_meta_init(&meta);
    diags_init(&d);
    ck_assert(rt_safetensors_read(path, &w, &meta, &d));
    remove(path);
    const Tensor *k = rt_map_get(&w, "dense.kernel");
    double ss = 0;
    for (int64_t i = 0; i < k->numel; i++)
        ss += rt_get(k, i) * rt_get(k, i);
    rt_map_free(&w);
    rt_meta_free(&meta);
    diags_free(&d);
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
    TensorMap ds;
    load_batch(&ds, 100);
    mc_tensor v[2];
    views(&ds, v);
    double loss;
    ck_assert_msg(mc_train_step(m, v, ds.n, 0.5, &loss), "%s", mc_last_error(m));
    char path[64];
    snprintf(path, sizeof path, "api_mode_%d_%d.safetensors", (int)mode, (int)be);
    ck_assert(mc_save(m, path));
    mc_free(m);
    double ss = kernel_ss(path);
    rt_map_free(&ds);
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
        TensorMap ds;
        load_batch(&ds, 200);
        mc_tensor v[2];
        views(&ds, v);
        ck_assert_msg(mc_eval_batch(m, v, ds.n, &loss[k], &acc[k], 1), "%s", mc_last_error(m));
        ck_assert_int_eq(mc_step(m), 0);
        ck_assert(mc_save(m, "api_eval_mode.safetensors"));
        mc_free(m);
        rt_map_free(&ds);
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
    if (be == MC_BACKEND_JIT)
        ck_assert(eval_only ? m->jtrain == NULL : m->jtrain != NULL);
    ck_assert_ptr_null(m->jeval); /* compiled on first use only */
    if (prepare) {
        ck_assert_msg(mc_prepare_eval(m), "%s", mc_last_error(m));
        if (be == MC_BACKEND_JIT)
            ck_assert_ptr_nonnull(m->jeval);
        struct JitModule *jm = m->jeval;
        ck_assert(mc_prepare_eval(m)); /* once is enough */
        ck_assert_ptr_eq(m->jeval, jm);
    }
    TensorMap ds;
    load_batch(&ds, 300);
    mc_tensor v[2];
    views(&ds, v);
    ck_assert_msg(mc_eval_batch(m, v, ds.n, loss, acc, 1), "%s", mc_last_error(m));
    if (be == MC_BACKEND_JIT)
        ck_assert_ptr_nonnull(m->jeval);
    else
        ck_assert_ptr_null(m->jeval);
    if (eval_only && be == MC_BACKEND_JIT) {
        double l;
        ck_assert(!mc_train_step(m, v, ds.n, 0.01, &l));
        ck_assert_str_eq(mc_last_error(m), "the model was compiled for evaluation only (mc_options.eval_only)");
    }
    rt_map_free(&ds);
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

int main(void)
{
    Suite *s = suite_create("api");
    TCase *t = tcase_create("api");
    tcase_set_timeout(t, 600);
    tcase_add_test(t, errors_are_reported);
    tcase_add_test(t, hand_loop_equals_cli);
    tcase_add_test(t, train_in_inference_mode_warns);
    tcase_add_test(t, eval_in_training_mode_warns);
    tcase_add_test(t, prepare_eval);
    suite_add_tcase(s, t);
    return tu_run(s);
}
