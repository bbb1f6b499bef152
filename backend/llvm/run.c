/* Running a compiled graph on named tensors (the interpreter's calling
 * convention): binding with dtype/shape checks, the batch size from the
 * inputs, private copies of parameters the step updates, and the outputs
 * copied into new tensors. */
#include "cg.h"

#include <stdlib.h>
#include <string.h>

static SrcLoc noloc(void)
{
    SrcLoc l = {NULL, 0, 0};
    return l;
}

static bool check_tensor(const JitBufInfo *b, const Tensor *t, int64_t n_in, int64_t *n, Diags *d)
{
    const char *what = b->kind == JIT_BUF_INPUT ? "input" : "parameter";
    char want[128], got[128];
    if (t->dt != b->dt || !rt_tensor_matches(t, &b->shape, n_in, n)) {
        diag_error(d, noloc(), "%s '%s' is %s, expected %s", what, b->name,
                   rt_tensor_type_str(t, got, sizeof got), ir_type_str(b->dt, &b->shape, want, sizeof want));
        return false;
    }
    return true;
}

bool be_jit_bind(JitWorkspace *w, int i, Tensor *t, Diags *d)
{
    int64_t n;
    if (!check_tensor(be_jit_buf(be_jit_workspace_module(w), i), t, be_jit_workspace_n(w), &n, d))
        return false;
    be_jit_bind_data(w, i, t->data);
    return true;
}

/* Is parameter buffer i written by the step (the target of an update)? */
static bool is_updated(const JitModule *m, int i)
{
    for (int k = 0; k < be_jit_nouts(m); k++)
        if (be_jit_out(m, k)->kind == OUT_UPDATE && be_jit_out_buf(m, k) == i)
            return true;
    return false;
}

/* N from the inputs: every input with N in its shape must agree. */
static bool batch_size(const JitModule *m, const TensorMap *inputs, int64_t *n, Diags *d)
{
    *n = -1;
    for (int i = 0; i < be_jit_nbufs(m); i++) {
        const JitBufInfo *b = be_jit_buf(m, i);
        if (b->kind != JIT_BUF_INPUT)
            continue;
        Tensor *t = inputs ? rt_map_get(inputs, b->name) : NULL;
        if (!t) {
            diag_error(d, noloc(), "missing input '%s'", b->name);
            return false;
        }
        int64_t got;
        if (!check_tensor(b, t, *n, &got, d))
            return false;
        if (got >= 0)
            *n = got;
    }
    if (*n < 0)
        *n = 1;
    return true;
}

bool be_jit_run(JitModule *m, const TensorMap *params, const TensorMap *inputs, const RunOpts *o,
                Tensor **outs, Diags *d)
{
    int64_t n;
    if (!batch_size(m, inputs, &n, d))
        return false;
    JitWorkspace *w = be_jit_workspace_new(m, n, d);
    if (!w)
        return false;
    int nb = be_jit_nbufs(m);
    Tensor **priv = xcalloc((size_t)nb + 1, sizeof(Tensor *));
    bool ok = true;
    for (int i = 0; i < nb && ok; i++) {
        const JitBufInfo *b = be_jit_buf(m, i);
        if (b->kind == JIT_BUF_TEMP)
            continue;
        Tensor *t = rt_map_get(b->kind == JIT_BUF_INPUT ? inputs : params, b->name);
        if (!t) {
            diag_error(d, noloc(), "missing parameter '%s'", b->name);
            ok = false;
            break;
        }
        if (b->kind == JIT_BUF_PARAM && is_updated(m, i))
            t = priv[i] = rt_tensor_clone(t);
        ok = be_jit_bind(w, i, t, d);
    }
    if (ok) {
        RtCtx ctx;
        rt_ctx_init(&ctx, be_jit_opts(m)->threads);
        ctx.seed = o ? o->seed : 0;
        ctx.step = o ? o->step : 0;
        be_jit_step(w, &ctx);
        for (int i = 0; i < be_jit_nouts(m); i++) {
            outs[i] = rt_tensor_for(be_jit_out_dtype(m, i), be_jit_out_shape(m, i), n);
            size_t bytes = (size_t)outs[i]->numel * (size_t)ir_dtype_size(outs[i]->dt);
            if (bytes)
                memcpy(outs[i]->data, be_jit_out_data(w, i), bytes);
        }
    }
    for (int i = 0; i < nb; i++)
        rt_tensor_free(priv[i]);
    free(priv);
    be_jit_workspace_free(w);
    return ok;
}
