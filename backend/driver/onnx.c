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

static bool import(const char *path, const char *constants, const char *weights_out, char **mdl, char **err)
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
        if (weights_out) {
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
    return mc_onnx_import_bound(path, NULL, weights_out, mdl, err);
}

bool mc_onnx_import_bound(const char *path, const char *constants, const char *weights_out, char **mdl,
                          char **err)
{
    MemGuard g;
    volatile bool ok = false;
    *mdl = *err = NULL;
    if (MEM_TRY(&g, "importing an ONNX model"))
        ok = import(path, constants, weights_out, mdl, err);
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
