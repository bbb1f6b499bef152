/* `modelc predict FILE --weights W --inputs X -o Y`: compile the model's
 * predict function (its output values only), run it with the JIT or the
 * interpreter on the inputs and write the outputs as safetensors, NPY or
 * CSV; --classes prints each example's predicted class (argmax). Inputs
 * bind to the model as training data does (by name, converted and
 * reshaped); everything goes through the public C API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "modelc.h"

typedef struct PredictArgs {
    const char *weights, *inputs, *output, *backend, *value, *dump_ir, *precision;
    bool classes, time_passes;
    int threads;
} PredictArgs;

static bool has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcmp(s + n - k, suf) == 0;
}

static int parse(PredictArgs *a, int argc, char **argv, const char **file)
{
    const CliOpt opts[] = {
        {"weights", CLI_STR, &a->weights, "W.safetensors", "parameter values (required, except for .onnx models: their initializers)", NULL},
        {"inputs", CLI_STR, &a->inputs, "X",
         "the model's inputs (required unless it has none): .safetensors, .npy, .csv, or any source --data of "
         "train takes",
         NULL},
        {"output", CLI_STR, &a->output, "Y", "where to write the outputs: .safetensors, .npy or .csv (also -o)", NULL},
        {"value", CLI_STR, &a->value, "NAME", "the output value to write to .npy/.csv (default: the only one)", NULL},
        {"backend", CLI_STR, &a->backend, "jit|interp", "evaluator (default jit)", NULL},
        {"classes", CLI_FLAG, &a->classes, NULL, "print the predicted class (argmax) of each example", NULL},
        {"threads", CLI_INT, &a->threads, "T", "BLAS threads (default: number of cores)", NULL},
        {"precision", CLI_STR, &a->precision, "f32|bf16", CLI_PRECISION_HELP, NULL},
        {"time-passes", CLI_FLAG, &a->time_passes, NULL, "report compile phase times on stderr", NULL},
        {"dump-ir", CLI_STR, &a->dump_ir, "DIR", "write DIR/predict.ir: the IR of the function, as compiled", NULL},
    };
    const CliCmd cmd = {"predict", "FILE --weights W.safetensors --inputs X.safetensors -o Y [options]",
                        "Run a model's inference graph on inputs and write its output values.",
                        opts, ARRAY_LEN(opts), 1, 1};
    char **av = cli_expand_output(argc, argv), **pos;
    int npos;
    int rc = cli_parse(&cmd, argc, av, &pos, &npos);
    free(av);
    if (rc)
        return rc < 0 ? -1 : rc;
    *file = pos[0];
    free(pos);
    if (!a->weights && !has_suffix(*file, ".onnx"))
        return cli_usage_error("predict", "missing --weights W.safetensors");
    if (!a->output && !a->classes)
        return cli_usage_error("predict", "missing the output file (-o Y.safetensors|.npy|.csv)");
    if (a->output && !has_suffix(a->output, ".safetensors") && !has_suffix(a->output, ".npy") &&
        !has_suffix(a->output, ".csv"))
        return cli_usage_error("predict", "output '%s' must end in .safetensors, .npy or .csv", a->output);
    if (strcmp(a->backend, "jit") != 0 && strcmp(a->backend, "interp") != 0)
        return cli_usage_error("predict", "unknown backend '%s' (expected jit or interp)", a->backend);
    if (a->threads < 0)
        return cli_usage_error("predict", "--threads must not be negative, got %d", a->threads);
    return 0;
}

static double value_at(const mc_tensor *t, int64_t i)
{
    return t->dtype == 1 ? ((const double *)t->data)[i]
           : t->dtype == 2 ? ((const int32_t *)t->data)[i]
                           : ((const float *)t->data)[i];
}

/* The argmax over the last axis of the first [N, C] output value. */
static bool print_classes(const mc_tensor *outs, int n, const PredictArgs *a)
{
    for (int i = 0; i < n; i++) {
        const mc_tensor *t = &outs[i];
        if (t->rank != 2 || (a->value && strcmp(a->value, t->name) != 0))
            continue;
        for (int64_t r = 0; r < t->dims[0]; r++) {
            int64_t best = 0;
            for (int64_t c = 1; c < t->dims[1]; c++)
                if (value_at(t, r * t->dims[1] + c) > value_at(t, r * t->dims[1] + best))
                    best = c;
            printf("%lld\n", (long long)best);
        }
        return true;
    }
    fprintf(stderr, "%s: error: --classes needs an output value of shape [N, classes]\n",
            a->inputs ? a->inputs : "predict");
    return false;
}

/* The outputs to write: all of them to safetensors, the one chosen by
 * --value (or the only one) to NPY or CSV. */
static bool write_outputs(mc_model *m, const mc_tensor *outs, int n, const PredictArgs *a)
{
    const mc_tensor *w = outs;
    int nw = n;
    if (!has_suffix(a->output, ".safetensors")) {
        w = NULL;
        for (int i = 0; i < n && !w; i++)
            if (a->value ? strcmp(outs[i].name, a->value) == 0 : n == 1)
                w = &outs[i];
        nw = 1;
        if (!w && a->value) {
            fprintf(stderr, "%s: error: model '%s' has no output value '%s'\n", a->output, mc_model_name(m),
                    a->value);
            return false;
        }
        if (!w) {
            fprintf(stderr, "%s: error: model '%s' has %d output values; choose one with --value NAME\n",
                    a->output, mc_model_name(m), n);
            return false;
        }
    }
    char *err = NULL;
    bool ok = mc_write_tensors(a->output, w, nw, mc_model_name(m), &err);
    if (err)
        fputs(err, stderr);
    free(err);
    return ok;
}

static bool fail(mc_model *m)
{
    fputs(mc_last_error(m), stderr);
    return false;
}

static bool predict(mc_model *m, const char *file, const PredictArgs *a)
{
    if (!mc_init_params(m, 0) || (a->weights && !mc_load(m, a->weights, NULL, true)))
        return fail(m);
    if (!a->inputs) { /* a model without inputs (checked by the caller) */
        const mc_tensor *outs;
        int nouts;
        bool ok = mc_predict(m, NULL, 0, &outs, &nouts) || fail(m);
        if (ok && a->classes)
            ok = print_classes(outs, nouts, a);
        return ok && (!a->output || write_outputs(m, outs, nouts, a));
    }
    mc_data_options o;
    mc_data_options_default(&o);
    const char *src[1] = {a->inputs};
    o.sources = src;
    o.nsources = 1;
    o.prediction = true;
    char *err = NULL;
    mc_data *ds = mc_data_load(file, &o, &err);
    if (!ds) {
        fputs(err ? err : "error: no inputs\n", stderr);
        free(err);
        return false;
    }
    const mc_tensor *in, *outs;
    int nin, nouts;
    bool ok = mc_data_batch(ds, NULL, 0, mc_data_count(ds), &in, &nin) >= 0;
    if (!ok)
        fputs(mc_data_error(ds), stderr);
    ok = ok && (mc_predict(m, in, nin, &outs, &nouts) || fail(m));
    if (ok && a->classes)
        ok = print_classes(outs, nouts, a);
    if (ok && a->output)
        ok = write_outputs(m, outs, nouts, a);
    mc_data_free(ds);
    return ok;
}

int cmd_predict(int argc, char **argv)
{
    PredictArgs a = {.backend = "jit"};
    const char *file;
    int rc = parse(&a, argc, argv, &file);
    if (rc)
        return rc < 0 ? 0 : rc;
    if ((a.output && cli_check_output_file("-o", a.output)) ||
        (a.dump_ir && cli_check_dump_dir("--dump-ir", a.dump_ir, "predict")))
        return 1;
    mc_options mo;
    mc_options_default(&mo);
    mo.backend = strcmp(a.backend, "interp") == 0 ? MC_BACKEND_INTERP : MC_BACKEND_JIT;
    mo.threads = a.threads;
    if ((rc = cli_precision("predict", a.precision, &mo.precision)))
        return rc;
    mo.eval_only = true;
    mo.time_passes = a.time_passes;
    mo.dump_ir = a.dump_ir;
    mc_model *m = mc_compile(file, &mo);
    if (!m) {
        fputs(mc_last_error(NULL), stderr);
        return 1;
    }
    if (!a.inputs && mc_num_inputs(m) > 0) {
        mc_free(m);
        return cli_usage_error("predict", "missing --inputs X.safetensors");
    }
    fputs(mc_warnings(m), stderr);
    bool ok = predict(m, file, &a);
    if (a.time_passes)
        fputs(mc_time_report(m), stderr);
    mc_free(m);
    return ok ? 0 : 1;
}
