/* The public side of ONNX import (include/modelc.h): the translation is
 * frontend/onnx/, this file runs it under a memory guard and writes the
 * initializers as a parameter file. */
#include "api_internal.h"
#include "frontend/onnx/onnx.h"
#include "runtime/io/io.h"

#include <errno.h>
#include <string.h>

static char *diag_text(Diags *d)
{
    MemStream s;
    FILE *f = mem_stream_open(&s);
    if (f)
        diags_print(d, f);
    char *t = mem_stream_close(&s);
    return t ? t : xstrdup("error: ONNX import failed\n");
}

static bool ident_char(char c)
{
    return c == '_' || (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z');
}

/* Does the text use name as a whole word? */
static bool uses_word(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = strstr(text, name); p; p = strstr(p + 1, name))
        if ((p == text || !ident_char(p[-1])) && !ident_char(p[n]))
            return true;
    return false;
}

/* The text that makes an imported model train (mc_onnx_train), appended
 * to b; false with an error in d. */
static bool train_text(const char *path, const OnnxImport *im, const mc_onnx_train *t, StrBuf *b, Diags *d)
{
    static const char *const losses[] = {"mse", "mae", "binary_crossentropy", "categorical_crossentropy",
                                         "sparse_categorical_crossentropy"};
    SrcLoc loc = {diags_intern_file(d, path), 0, 0};
    int k = -1;
    for (int i = 0; i < ARRAY_LEN(losses) && t->loss; i++)
        if (strcmp(t->loss, losses[i]) == 0)
            k = i;
    if (k < 0) {
        diag_error(d, loc, "unknown loss '%s' (mse, mae, binary_crossentropy, categorical_crossentropy or "
                           "sparse_categorical_crossentropy)", t->loss ? t->loss : "");
        return false;
    }
    const char *labels = t->labels ? t->labels : "labels", *opt = t->optimizer ? t->optimizer : "adam(lr=0.001)";
    bool ident = labels[0] && !(labels[0] >= '0' && labels[0] <= '9');
    for (const char *p = labels; *p && ident; p++)
        ident = ident_char(*p);
    if (!ident || uses_word(im->mdl, labels)) {
        diag_error(d, loc, "the labels' name '%s' is %s", labels,
                   ident ? "already a name of the model" : "not an identifier");
        return false;
    }
    size_t n = strspn(opt, "abcdefghijklmnopqrstuvwxyz");
    bool opt_ok = (n == 3 && strncmp(opt, "sgd", 3) == 0) || (n == 4 && strncmp(opt, "adam", 4) == 0) ||
                  (n == 7 && strncmp(opt, "rmsprop", 7) == 0);
    opt_ok &= opt[n] == 0 || (opt[n] == '(' && opt[strlen(opt) - 1] == ')' && !strchr(opt, '\n') && !strchr(opt, '}'));
    if (!opt_ok) {
        diag_error(d, loc, "the optimizer '%s' is not sgd, adam or rmsprop (with arguments in parentheses)", opt);
        return false;
    }
    bool sparse = k == 4, probs = strcmp(im->out_op, k == 2 ? "Sigmoid" : "Softmax") == 0;
    if (sparse && (im->out_rank != 2 || im->out_dims[0] != -1)) {
        diag_error(d, loc, "sparse_categorical_crossentropy needs an output of [N, classes]");
        return false;
    }
    if (im->out_rank < 1 || im->out_dims[0] != -1) {
        diag_error(d, loc, "the output '%s' has no batch axis N to train on", im->out_id);
        return false;
    }
    sb_printf(b, "\n# training (modelc import --loss %s --optimizer %s)\n", losses[k], opt);
    if (sparse) {
        sb_printf(b, "input %s: i32[N]\n", labels);
    } else {
        sb_printf(b, "input %s: f32[N", labels);
        for (int i = 1; i < im->out_rank; i++)
            sb_printf(b, ", %lld", (long long)im->out_dims[i]);
        sb_printf(b, "]\n");
    }
    sb_printf(b, "loss = %s(%s, %s%s)\n", losses[k], labels, im->out_id,
              k < 2 ? "" : probs ? ", from_logits=false" : ", from_logits=true");
    if (sparse || k == 3)
        sb_printf(b, "metric accuracy = accuracy(%s, %s)\n", labels, im->out_id);
    sb_printf(b, "\ntrain {\n  optimizer = %s\n}\n", opt);
    return true;
}

static bool import(const char *path, const char *constants, const char *weights_out, const mc_onnx_train *t,
                   char **mdl, char **err)
{
    Diags d;
    diags_init(&d);
    size_t len;
    TensorMap bound;
    rt_map_init(&bound);
    char *bytes = read_file(path, &len);
    OnnxImport im;
    bool ok = false;
    if (!bytes) {
        SrcLoc loc = {diags_intern_file(&d, path), 0, 0};
        diag_error(&d, loc, "cannot read file: %s", strerror(errno));
    } else if (constants && !rt_safetensors_read(constants, &bound, NULL, &d)) {
        ok = false;
    } else if (fe_onnx_import_bound(path, (const unsigned char *)bytes, len, constants ? &bound : NULL, &im, &d)) {
        ok = true;
        if (t) {
            StrBuf b;
            sb_init(&b);
            sb_puts(&b, im.mdl);
            ok = train_text(path, &im, t, &b, &d);
            xfree(im.mdl);
            im.mdl = sb_take(&b);
        }
        if (ok && weights_out) {
            Metadata meta;
            rt_meta_init(&meta);
            rt_meta_set(&meta, RT_META_FORMAT, RT_META_FORMAT_NAME);
            rt_meta_set(&meta, RT_META_FORMAT_VERSION, RT_FORMAT_VERSION);
            rt_meta_set(&meta, "source", path);
            ok = rt_safetensors_write(weights_out, &im.weights, &meta, &d);
            rt_meta_free(&meta);
        }
        if (ok) {
            *mdl = im.mdl;
            im.mdl = NULL;
        }
        fe_onnx_import_free(&im);
    }
    xfree(bytes);
    rt_map_free(&bound);
    if (!ok)
        *err = diag_text(&d);
    diags_free(&d);
    return ok;
}

bool mc_onnx_import(const char *path, const char *weights_out, char **mdl, char **err)
{
    return mc_onnx_import_train(path, NULL, weights_out, NULL, mdl, err);
}

bool mc_onnx_import_bound(const char *path, const char *constants, const char *weights_out, char **mdl,
                          char **err)
{
    return mc_onnx_import_train(path, constants, weights_out, NULL, mdl, err);
}

bool mc_onnx_import_train(const char *path, const char *constants, const char *weights_out, const mc_onnx_train *t,
                          char **mdl, char **err)
{
    MemGuard g;
    volatile bool ok = false;
    *mdl = *err = NULL;
    if (MEM_TRY(&g, "importing an ONNX model"))
        ok = import(path, constants, weights_out, t, mdl, err);
    if (mem_guard_pop(&g))
        return ok;
    mem_set_free_all(&g.live);
    char msg[200];
    mem_error(&g, msg, sizeof msg);
    StrBuf b;
    sb_init(&b);
    sb_printf(&b, "error: %s\n", msg);
    *mdl = NULL;
    *err = sb_take(&b);
    return false;
}

char *mc_onnx_ops(void)
{
    return fe_onnx_op_list();
}
