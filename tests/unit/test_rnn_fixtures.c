/* simple_rnn, gru and lstm against reference values from PyTorch
 * (tests/rnn/, written by tests/rnn/gen_fixtures.py, which documents how
 * Keras's weights map onto PyTorch's): for each case the layer's output,
 * the loss sum(out * r) and the gradients of every parameter, of the
 * input sequence and of the initial states where a case gives them, evaluated in f64 by the interpreter and by the JIT
 * (the compiled recipes, loop bodies fused). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/interp/interp.h"
#include "backend/llvm/jit.h"
#include "frontend/frontend.h"
#include "passes/passes.h"
#include "runtime/io/io.h"
#include "testutil.h"

static const char *const cases[] = {
    "simple_rnn", "simple_rnn_relu_seq_back", "gru_seq", "gru_back", "gru_init",
    "lstm",       "lstm_seq_back",            "lstm_n1_t1", "lstm_init_back",
};

typedef struct Fixture {
    Graph *src;
    TensorMap all, params, inputs;
    Diags d;
} Fixture;

static void load(Fixture *f, const char *name)
{
    char path[256];
    diags_init(&f->d);
    rt_map_init(&f->all);
    rt_map_init(&f->params);
    rt_map_init(&f->inputs);
    snprintf(path, sizeof path, "tests/rnn/%s.mdl", name);
    RunSettings run;
    f->src = fe_load_model(path, &run, &f->d);
    ck_assert_msg(f->src != NULL, "%s: %s", path, f->d.n ? f->d.v[0].msg : "?");
    snprintf(path, sizeof path, "tests/rnn/%s.safetensors", name);
    ck_assert_msg(rt_safetensors_read(path, &f->all, NULL, &f->d), "%s: %s", path, f->d.n ? f->d.v[0].msg : "?");
    for (int i = 0; i < f->all.n; i++) {
        const char *k = f->all.names[i];
        if (strncmp(k, "expect.", 7) == 0)
            continue;
        bool input = strcmp(k, "x") == 0 || strcmp(k, "r") == 0 || strcmp(k, "h0") == 0 || strcmp(k, "c0") == 0;
        rt_map_put(input ? &f->inputs : &f->params, k, rt_tensor_clone(f->all.t[i]));
    }
}

static void unload(Fixture *f)
{
    ir_graph_free(f->src);
    rt_map_free(&f->all);
    rt_map_free(&f->params);
    rt_map_free(&f->inputs);
    diags_free(&f->d);
}

/* Every element within 1e-10 of the reference, relative to its size. */
static void expect_close(const char *name, const char *what, const Tensor *got, const Tensor *want)
{
    ck_assert_msg(want != NULL, "%s: no reference for %s", name, what);
    ck_assert_msg(got->numel == want->numel, "%s: %s has %lld elements, the reference %lld", name, what,
                  (long long)got->numel, (long long)want->numel);
    for (int k = 0; k < got->rank && got->rank == want->rank; k++)
        ck_assert_int_eq(got->dims[k], want->dims[k]);
    for (int64_t i = 0; i < got->numel; i++) {
        double g = rt_get(got, i), w = rt_get(want, i);
        ck_assert_msg(fabs(g - w) <= 1e-10 * (1 + fabs(w)), "%s: %s[%lld] is %.17g, PyTorch gives %.17g", name, what,
                      (long long)i, g, w);
    }
}

/* Run recipe fn (compiled by the JIT, or interpreted unfused) and compare
 * each output with "expect.<output name>". */
static int check_recipe(Fixture *f, const char *name, FnKind fn, bool jit)
{
    RecipeOpts o = ps_recipe_opts(fn);
    o.fuse = jit;
    const char *wrt[3] = {"x", "h0", "c0"};
    if (fn == FN_GRAD) { /* x, and the initial states the case has */
        o.wrt = wrt;
        o.nwrt = 1 + (rt_map_get(&f->inputs, "h0") != NULL) + (rt_map_get(&f->inputs, "c0") != NULL);
    }
    Graph *g = ps_recipe(f->src, &o, &f->d);
    ck_assert_msg(g != NULL, "%s: %s", name, f->d.n ? f->d.v[0].msg : "?");
    Tensor **outs = xcalloc((size_t)g->nouts + 1, sizeof(Tensor *));
    bool ok;
    if (jit) {
        JitOpts jo;
        be_jit_opts_default(&jo);
        JitModule *m = be_jit_compile(g, &jo, &f->d);
        ck_assert_msg(m != NULL, "%s: %s", name, f->d.n ? f->d.v[0].msg : "?");
        ok = be_jit_run(m, &f->params, &f->inputs, NULL, outs, &f->d);
        be_jit_free(m);
    } else {
        ok = be_interp_run(g, &f->params, &f->inputs, NULL, outs, &f->d);
    }
    ck_assert_msg(ok, "%s: %s", name, f->d.n ? f->d.v[0].msg : "?");
    int checked = 0;
    for (int i = 0; i < g->nouts; i++) {
        char key[160];
        snprintf(key, sizeof key, "expect.%s", g->outs[i].name);
        expect_close(name, g->outs[i].name, outs[i], rt_map_get(&f->all, key));
        checked++;
        rt_tensor_free(outs[i]);
    }
    xfree(outs);
    ir_graph_free(g);
    return checked;
}

START_TEST(against_pytorch)
{
    Fixture f;
    load(&f, cases[_i]);
    for (int jit = 0; jit < 2; jit++) {
        ck_assert_int_eq(check_recipe(&f, cases[_i], FN_PREDICT, jit), 1);
        /* the loss, three parameters, x and the initial states */
        int states = (rt_map_get(&f.inputs, "h0") != NULL) + (rt_map_get(&f.inputs, "c0") != NULL);
        ck_assert_int_eq(check_recipe(&f, cases[_i], FN_GRAD, jit), 5 + states);
    }
    unload(&f);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("rnn_fixtures");
    TCase *t = tcase_create("fixtures");
    tcase_set_timeout(t, 60);
    tcase_add_loop_test(t, against_pytorch, 0, (int)(sizeof cases / sizeof cases[0]));
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
