/* `modelc compile` behind include/modelc_inspect.h: the model's
 * functions from their recipes, compiled ahead of time by the LLVM
 * backend (backend/llvm/aot.c) into an object file, and the C header a
 * program includes to call them (docs/aot.md describes both). */
#include "modelc_inspect.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "backend/llvm/aot.h"

void mc_aot_options_default(mc_aot_options *o)
{
    memset(o, 0, sizeof *o);
}

static const char *const aot_fns[] = {"predict", "eval", "train_step"};

static bool is_c_ident(const char *s)
{
    static const char *const reserved[] = {
        "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum", "extern",
        "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return", "short", "signed",
        "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void", "volatile", "while",
        "bool", "class", "delete", "new", "namespace", "operator", "private", "protected", "public", "template",
        "this", "throw", "try", "catch", "virtual", "true", "false", NULL};
    if (!s || !*s || strlen(s) > 64 || !(isalpha((unsigned char)*s) || *s == '_'))
        return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            return false;
    for (int i = 0; reserved[i]; i++)
        if (strcmp(s, reserved[i]) == 0)
            return false;
    return true;
}

/* ---- the header ---- */

static const char *c_type(DType t)
{
    return t == DT_F64 ? "double" : t == DT_I32 ? "int32_t" : "float";
}

/* name as a C identifier: other characters become '_'; names the
 * wrappers use themselves get a trailing '_'. */
static void ident(char *buf, size_t n, const char *name)
{
    size_t k = 0;
    if (!isalpha((unsigned char)name[0]) && name[0] != '_')
        buf[k++] = '_';
    for (const char *p = name; *p && k + 2 < n; p++)
        buf[k++] = isalnum((unsigned char)*p) ? *p : '_';
    buf[k] = 0;
    static const char *const taken[] = {"ctx", "n", "lr", "in", "out", NULL};
    bool clash = !is_c_ident(buf);
    for (int i = 0; taken[i]; i++)
        clash |= strcmp(buf, taken[i]) == 0;
    if (clash && k + 1 < n) {
        buf[k] = '_';
        buf[k + 1] = 0;
    }
}

static void upper(char *buf, size_t n, const char *s)
{
    size_t k = 0;
    for (; s[k] && k + 1 < n; k++)
        buf[k] = (char)toupper((unsigned char)s[k]);
    buf[k] = 0;
}

static void shape_str(const AotArg *a, char *buf, size_t n)
{
    ir_type_str(a->dt, &a->shape, buf, n);
}

/* <MODEL>_<FN>_<X>_RANK, and _DIMS (-1 for N) with _PER_EXAMPLE for a
 * batched tensor, _DIMS with _ELEMS for one of fixed shape, _ELEMS 1 for a
 * scalar. */
static void dims_macro(FILE *f, const char *NAME, const char *FN, const char *arg, const AotArg *a)
{
    char A[96], id[96];
    ident(id, sizeof id, arg);
    upper(A, sizeof A, id);
    int64_t per = 1;
    bool batched = false;
    fprintf(f, "#define %s_%s_%s_RANK %d\n", NAME, FN, A, a->shape.rank);
    if (a->shape.rank > 0)
        fprintf(f, "#define %s_%s_%s_DIMS {", NAME, FN, A);
    for (int k = 0; k < a->shape.rank; k++) {
        bool n = ir_dim_is_batch(a->shape.d[k]); /* N is -1, N*k is -k */
        fprintf(f, "%s%lld%s", k ? ", " : "", (long long)a->shape.d[k], k == a->shape.rank - 1 ? "}\n" : "");
        batched |= n;
        per *= ir_dim_factor(a->shape.d[k]);
    }
    fprintf(f, "#define %s_%s_%s_%s %lld\n", NAME, FN, A, batched ? "PER_EXAMPLE" : "ELEMS", (long long)per);
}

static const char *const out_kinds[] = {"loss", "metric", "output value"};

static void header_fn(FILE *f, const char *name, const char *NAME, const AotFnInfo *fi, int idx, bool fixed)
{
    char FN[64], id[96], ty[128];
    upper(FN, sizeof FN, fi->fn);
    fprintf(f, "\n/* ---- %s ----\n", fi->fn);
    if (strcmp(fi->fn, "train_step") == 0)
        fprintf(f, " * One training step on a batch: the loss and metrics are of the batch\n"
                   " * before the update; the parameters are updated in place (the\n"
                   " * optimizer's state too) and the step counter advances. A loss that is\n"
                   " * not finite returns -1 (the update is applied all the same).\n");
    else if (strcmp(fi->fn, "eval") == 0)
        fprintf(f, " * Loss and metrics of a batch in inference mode.\n");
    else
        fprintf(f, " * The model's output values for a batch, in inference mode.\n");
    if (fi->min_n > 0)
        fprintf(f, " * The model slices the batch axis at fixed positions: n must be at least %lld.\n",
                (long long)fi->min_n);
    fprintf(f, " * Inputs (read only):\n");
    for (int i = 0; i < fi->nargs; i++) {
        shape_str(&fi->args[i], ty, sizeof ty);
        ident(id, sizeof id, fi->args[i].name);
        fprintf(f, " *   %-12s %s  (input '%s')\n", id, ty, fi->args[i].name);
    }
    if (fi->lr)
        fprintf(f, " *   %-12s the learning rate of this step\n", "lr");
    fprintf(f, " * Outputs (written; NULL skips one):\n");
    for (int i = 0; i < fi->nouts; i++) {
        shape_str(&fi->outs[i], ty, sizeof ty);
        ident(id, sizeof id, fi->outs[i].name);
        fprintf(f, " *   %-12s %s  (%s '%s')\n", id, ty, out_kinds[fi->outs[i].kind], fi->outs[i].name);
    }
    fprintf(f, " */\n");
    for (int i = 0; i < fi->nargs; i++)
        dims_macro(f, NAME, FN, fi->args[i].name, &fi->args[i]);
    for (int i = 0; i < fi->nouts; i++)
        dims_macro(f, NAME, FN, fi->outs[i].name, &fi->outs[i]);
    fprintf(f, "static inline int %s_%s(%s_ctx *ctx%s", name, fi->fn, name, fixed ? "" : ", int64_t n");
    for (int i = 0; i < fi->nargs; i++) {
        ident(id, sizeof id, fi->args[i].name);
        fprintf(f, ",\n    const %s *%s", c_type(fi->args[i].dt), id);
    }
    if (fi->lr)
        fprintf(f, ",\n    double lr");
    for (int i = 0; i < fi->nouts; i++) {
        ident(id, sizeof id, fi->outs[i].name);
        fprintf(f, ",\n    %s *%s", c_type(fi->outs[i].dt), id);
    }
    fprintf(f, ")\n{\n");
    fprintf(f, "    const void *in[%d] = {", fi->nargs + 1);
    for (int i = 0; i < fi->nargs; i++) {
        ident(id, sizeof id, fi->args[i].name);
        fprintf(f, "%s%s", i ? ", " : "", id);
    }
    fprintf(f, "%s};\n    void *out[%d] = {", fi->nargs ? "" : "0", fi->nouts + 1);
    for (int i = 0; i < fi->nouts; i++) {
        ident(id, sizeof id, fi->outs[i].name);
        fprintf(f, "%s%s", i ? ", " : "", id);
    }
    fprintf(f, "%s};\n", fi->nouts ? "" : "0");
    if (fixed)
        fprintf(f, "    return rt_aot_run(ctx, %d, %s_BATCH, in, %s, out);\n}\n", idx, NAME, fi->lr ? "lr" : "0.0");
    else
        fprintf(f, "    return rt_aot_run(ctx, %d, n, in, %s, out);\n}\n", idx, fi->lr ? "lr" : "0.0");
}

static void write_header(FILE *f, const char *path, const char *name, const mc_aot_options *o, const char *src,
                         const char *model, const AotResult *r, int64_t batch)
{
    char NAME[96];
    upper(NAME, sizeof NAME, name);
    bool fixed = o->batch > 0;
    fprintf(f, "/* %s: model '%s' (%s) compiled ahead of time by modelc %s\n", path, model, src, MODELC_VERSION);
    fprintf(f, " * for %s (cpu %s); functions:", r->triple, r->cpu);
    for (int i = 0; i < r->nfns; i++)
        fprintf(f, " %s", r->fns[i].fn);
    fprintf(f, ".\n *\n");
    fprintf(f, " * Build: compile your program with this header and link the object with\n"
               " * libmodelc-rt (and OpenBLAS, which it uses):\n"
               " *     cc prog.c %s.o $(pkg-config --cflags --libs modelc-rt)\n *\n", name);
    fprintf(f, " * Context: %s_init() creates one; it holds the parameters, the\n"
               " * workspaces and the threads. Parameters come from the object (weights_file\n"
               " * NULL; %s) or from a safetensors checkpoint written by modelc\n"
               " * (weights_file: every parameter with the shapes below; missing\n"
               " * optimizer slots start at zero). One context serves one thread at a time.\n *\n",
            name, o->weights_file ? "this object has none: pass a file" : "embedded at compile time");
    if (fixed)
        fprintf(f, " * Batch: every function works on exactly %s_BATCH = %lld examples.\n", NAME, (long long)batch);
    else
        fprintf(f, " * Batch: every function takes n, the number of examples,\n"
                   " * 0 <= n <= %s_BATCH_MAX = %lld (the workspaces are laid out for it).\n",
                NAME, (long long)batch);
    fprintf(f, " * Tensors are dense row-major arrays; N in a shape is the batch. For\n"
               " * each input and output X of function F: <MODEL>_<F>_<X>_RANK, _DIMS (an\n"
               " * initializer, -1 for N, -k for N*k) and _PER_EXAMPLE (elements per example).\n *\n"
               " * Results: 0, or -1 with %s_error(ctx) saying why. Results are the\n"
               " * bits modelc's JIT computes for the same function and batch, for any\n"
               " * number of threads (%s_set_threads; default: one per core). */\n",
            name, name);
    fprintf(f, "#ifndef %s_H\n#define %s_H\n\n#include <stddef.h>\n#include <stdint.h>\n\n", NAME, NAME);
    fprintf(f, "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
    fprintf(f, "/* The interface of libmodelc-rt shared by every compiled model. */\n"
               "#ifndef MODELC_RT_AOT_ABI\n#define MODELC_RT_AOT_ABI %d\n"
               "struct rt_aot_model;\nstruct rt_aot;\n"
               "struct rt_aot *rt_aot_new(const struct rt_aot_model *m, const char *weights_file, char *err,\n"
               "                          size_t errlen);\n"
               "void rt_aot_free(struct rt_aot *c);\n"
               "int rt_aot_run(struct rt_aot *c, int fn, int64_t n, const void *const *inputs, double lr,\n"
               "               void *const *outputs);\n"
               "const char *rt_aot_error(const struct rt_aot *c);\n"
               "int rt_aot_set_threads(struct rt_aot *c, int threads);\n"
               "void *rt_aot_param(struct rt_aot *c, const char *name, int *dtype, int64_t *numel);\n"
               "int64_t rt_aot_step(const struct rt_aot *c);\n"
               "#endif\n\n",
            1);
    fprintf(f, "typedef struct rt_aot %s_ctx;\n", name);
    fprintf(f, "extern const struct rt_aot_model %s_model; /* in the object */\n\n", name);
    fprintf(f, "#define %s_%s %lld\n", NAME, fixed ? "BATCH" : "BATCH_MAX", (long long)batch);
    fprintf(f, "#define %s_NUM_PARAMS %d /* parameter tensors, %lld bytes */\n\n", NAME, r->nparams,
            (long long)r->param_bytes);
    fprintf(f, "/* NULL on failure, with the reason in err (errlen bytes; err may be NULL). */\n");
    fprintf(f, "static inline %s_ctx *%s_init(const char *weights_file, char *err, size_t errlen)\n{\n"
               "    return rt_aot_new(&%s_model, weights_file, err, errlen);\n}\n",
            name, name, name);
    fprintf(f, "static inline void %s_free(%s_ctx *ctx)\n{\n    rt_aot_free(ctx);\n}\n", name, name);
    fprintf(f, "static inline const char *%s_error(const %s_ctx *ctx)\n{\n    return rt_aot_error(ctx);\n}\n",
            name, name);
    fprintf(f, "/* 0 = one thread per core. */\n");
    fprintf(f, "static inline int %s_set_threads(%s_ctx *ctx, int threads)\n{\n"
               "    return rt_aot_set_threads(ctx, threads);\n}\n",
            name, name);
    fprintf(f, "/* A parameter's values by name (e.g. to save them after training): dtype 0\n"
               " * f32, 1 f64, 2 i32; NULL if there is no such parameter. */\n");
    fprintf(f, "static inline void *%s_param(%s_ctx *ctx, const char *name, int *dtype, int64_t *numel)\n{\n"
               "    return rt_aot_param(ctx, name, dtype, numel);\n}\n",
            name, name);
    fprintf(f, "/* Training steps taken: the checkpoint's step, plus one per %s_train_step. */\n", name);
    fprintf(f, "static inline int64_t %s_step(const %s_ctx *ctx)\n{\n    return rt_aot_step(ctx);\n}\n", name,
            name);
    for (int i = 0; i < r->nfns; i++)
        header_fn(f, name, NAME, &r->fns[i], i, fixed);
    fprintf(f, "\n#ifdef __cplusplus\n}\n#endif\n\n#endif\n");
}

/* ---- the command ---- */

static bool write_file(const char *path, const void *data, size_t len, FILE *err)
{
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(data, 1, len, f) == len;
    if (f)
        ok = fclose(f) == 0 && ok;
    if (!ok)
        fprintf(err, "%s: cannot write: %s\n", path, strerror(errno));
    return ok;
}

static bool check_options(const mc_aot_options *o, const char *name, FILE *err)
{
    if (!is_c_ident(name)) {
        fprintf(err, "modelc compile: '%s' is not a C identifier; choose the prefix of the generated "
                     "symbols with --name\n",
                name);
        return false;
    }
    for (int i = 0; i < o->nfns; i++) {
        bool known = false;
        for (size_t k = 0; k < sizeof aot_fns / sizeof aot_fns[0]; k++)
            known |= strcmp(o->fns[i], aot_fns[k]) == 0;
        if (!known) {
            fprintf(err, "modelc compile: unknown function '%s' (expected predict, eval or train_step)\n", o->fns[i]);
            return false;
        }
        for (int j = 0; j < i; j++)
            if (strcmp(o->fns[i], o->fns[j]) == 0) {
                fprintf(err, "modelc compile: function '%s' is given twice\n", o->fns[i]);
                return false;
            }
    }
    return true;
}

/* The parameters: initialised with the seed, then the weights file's. */
static bool load_params(mc_model *m, const mc_aot_options *o, FILE *err)
{
    mc_init_params(m, m->seed);
    if (o->weights && !mc_load(m, o->weights, NULL, true)) {
        fprintf(err, "%s", mc_last_error(m));
        return false;
    }
    return true;
}

static int compile(mc_model *m, const char *path, const mc_aot_options *o, const char *name, FILE *out, FILE *err)
{
    const char *def = "predict";
    const char *const *fns = o->nfns ? o->fns : &def;
    int nfns = o->nfns ? o->nfns : 1;
    AotFnIn in[3];
    int nin = 0;
    bool ok = true;
    for (int i = 0; ok && i < nfns; i++) {
        FnKind fk = (FnKind)ps_fn_index(fns[i]);
        if (fk != FN_PREDICT && !m->gtrain) {
            fprintf(err, "modelc compile: model '%s' has no loss, so it has no %s function\n", mc_model_name(m),
                    fns[i]);
            ok = false;
            break;
        }
        RecipeOpts ro = ps_recipe_opts(fk);
        ro.fuse = true; /* as the JIT compiles it */
        Graph *g = ps_recipe(m->src, &ro, &m->d);
        if (!g) {
            diags_print(&m->d, err);
            ok = false;
            break;
        }
        in[nin++] = (AotFnIn){fns[i], g};
    }
    int64_t batch = o->batch > 0 ? o->batch : o->batch_max > 0 ? o->batch_max : mc_train_defaults(m).batch;
    AotOpts ao = {name, mc_model_name(m), batch, o->batch > 0, m->seed, m->step, &m->params, !o->weights_file,
                  o->target, o->cpu};
    AotResult r;
    double t0 = mc_now_ms();
    if (ok && !be_aot_compile(in, nin, &ao, &r, &m->d)) {
        diags_print(&m->d, err);
        be_aot_result_free(&r);
        ok = false;
    }
    double ms = mc_now_ms() - t0;
    for (int i = 0; i < nin; i++)
        ir_graph_free(in[i].g);
    if (!ok)
        return 1;
    FILE *h = fopen(o->header, "w");
    if (h)
        write_header(h, o->header, name, o, path, mc_model_name(m), &r, batch);
    ok = h && !ferror(h);
    if (h)
        ok = fclose(h) == 0 && ok;
    if (!ok)
        fprintf(err, "%s: cannot write: %s\n", o->header, strerror(errno));
    ok = ok && write_file(o->output, r.obj, r.obj_len, err);
    if (ok) {
        int kernels = 0;
        for (int i = 0; i < r.nfns; i++)
            kernels += r.fns[i].kernels;
        fprintf(out, "modelc compile: %s (%zu bytes, %s, %d kernels, %d parameters%s) and %s in %.0f ms\n",
                o->output, r.obj_len, r.triple, kernels, r.nparams, o->weights_file ? "" : " embedded", o->header,
                ms);
    }
    be_aot_result_free(&r);
    return ok ? 0 : 1;
}

int mc_compile_aot(const char *path, const mc_aot_options *o, FILE *out, FILE *err)
{
    if (!o->output || !o->header) {
        fprintf(err, "modelc compile: an object file and a header file are required\n");
        return 1;
    }
    if (o->name && !check_options(o, o->name, err))
        return 1;
    mc_options mo;
    mc_options_default(&mo);
    mo.eval_only = true; /* the JIT compiles nothing here */
    mo.seed = o->seed;
    mo.seed_set = o->seed_set;
    mc_model *m = mc_compile(path, &mo);
    if (!m) {
        fprintf(err, "%s", mc_last_error(NULL));
        return 1;
    }
    fputs(mc_warnings(m), err);
    const char *name = o->name ? o->name : mc_model_name(m);
    int rc = 1;
    if (check_options(o, name, err) && load_params(m, o, err))
        rc = compile(m, path, o, name, out, err);
    mc_free(m);
    return rc;
}
