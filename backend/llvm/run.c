/* Running a compiled graph on named tensors with the interpreter's
 * calling convention and messages (docs/ops.md, "Evaluation"): inputs
 * bind N first, then parameters; every binding error is reported; the
 * parameters a step updates are copied so the caller's stay unchanged;
 * outputs are copied into new tensors. */
#include "cg.h"

#include <stdlib.h>
#include <string.h>

static const char *kind_name(const JitBufInfo *b)
{
    return b->kind == JIT_BUF_PARAM ? "parameter" : "input";
}

bool be_jit_bind(JitWorkspace *w, int i, Tensor *t, Diags *d)
{
    const JitBufInfo *b = be_jit_buf(be_jit_workspace_module(w), i);
    char want[128], got[128];
    int64_t n;
    if (t->dt != b->dt || !rt_tensor_matches(t, &b->shape, be_jit_workspace_n(w), &n)) {
        diag_error(d, jit_diag_loc(d, b->loc), "%s '%s' is %s, expected %s", kind_name(b), b->name,
                   rt_tensor_type_str(t, got, sizeof got), ir_type_str(b->dt, &b->shape, want, sizeof want));
        return false;
    }
    be_jit_bind_data(w, i, t->data);
    return true;
}

typedef struct Binder {
    const JitModule *m;
    int64_t n;  /* -1 until bound */
    int n_from; /* buffer that bound N */
} Binder;

static void report_mismatch(Binder *bd, const JitBufInfo *b, const Tensor *t, bool batch, Diags *d)
{
    char want[128], got[128];
    ir_type_str(b->dt, &b->shape, want, sizeof want);
    rt_tensor_type_str(t, got, sizeof got);
    if (batch) {
        const JitBufInfo *f = be_jit_buf(bd->m, bd->n_from);
        diag_error(d, jit_diag_loc(d, b->loc), "%s '%s' is %s, expected %s with N = %lld (from %s '%s')", kind_name(b),
                   b->name, got, want, (long long)bd->n, kind_name(f), f->name);
    } else {
        diag_error(d, jit_diag_loc(d, b->loc), "%s '%s' is %s, expected %s", kind_name(b), b->name, got, want);
    }
}

/* Does t fit buffer i? The first tensor with an N dimension binds N. */
static bool check_leaf(Binder *bd, int i, const Tensor *t, Diags *d)
{
    const JitBufInfo *b = be_jit_buf(bd->m, i);
    if (!t) {
        char want[128];
        diag_error(d, jit_diag_loc(d, b->loc), "missing %s '%s' of type %s", kind_name(b), b->name,
                   ir_type_str(b->dt, &b->shape, want, sizeof want));
        return false;
    }
    bool ok = t->dt == b->dt && t->rank == b->shape.rank, batch = false;
    int64_t n = bd->n;
    for (int k = 0; ok && k < t->rank; k++) {
        int64_t f = ir_dim_factor(b->shape.d[k]);
        if (!ir_dim_is_batch(b->shape.d[k])) {
            ok = b->shape.d[k] == t->dims[k];
        } else if (t->dims[k] % f != 0) {
            ok = false;
        } else if (n < 0) {
            n = t->dims[k] / f;
        } else if (t->dims[k] / f != n) {
            ok = false;
            batch = bd->n >= 0;
        }
    }
    if (!ok) {
        report_mismatch(bd, b, t, batch, d);
        return false;
    }
    if (bd->n < 0 && n >= 0) {
        bd->n = n;
        bd->n_from = i;
    }
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

/* Inputs first (they define N), then parameters; every error reported. */
static bool bind_all(Binder *bd, const TensorMap *params, const TensorMap *inputs, Tensor **bound,
                     Diags *d)
{
    bool ok = true;
    const JitBufKind kinds[2] = {JIT_BUF_INPUT, JIT_BUF_PARAM};
    for (int p = 0; p < 2; p++)
        for (int i = 0; i < be_jit_nbufs(bd->m); i++) {
            const JitBufInfo *b = be_jit_buf(bd->m, i);
            if (b->kind != kinds[p] || !b->used)
                continue;
            const TensorMap *map = p == 0 ? inputs : params;
            Tensor *t = map ? rt_map_get(map, b->name) : NULL;
            if (check_leaf(bd, i, t, d))
                bound[i] = t;
            else
                ok = false;
        }
    return ok;
}

static bool copy_outputs(const JitModule *m, JitWorkspace *w, Tensor **outs, Diags *d)
{
    int64_t n = be_jit_workspace_n(w);
    for (int i = 0; i < be_jit_nouts(m); i++) {
        outs[i] = rt_tensor_for(be_jit_out_dtype(m, i), be_jit_out_shape(m, i), n);
        if (!outs[i]) {
            SrcLoc none = {NULL, 0, 0};
            int64_t dims[IR_MAXRANK];
            const Shape *s = be_jit_out_shape(m, i);
            for (int k = 0; k < s->rank; k++)
                dims[k] = ir_dim_eval(s->d[k], n);
            char why[96];
            diag_error(d, none, "output '%s' for N = %lld: %s", be_jit_out(m, i)->name, (long long)n,
                       rt_tensor_failure(be_jit_out_dtype(m, i), s->rank, dims, why, sizeof why));
            for (int j = 0; j < i; j++) {
                rt_tensor_free(outs[j]);
                outs[j] = NULL;
            }
            return false;
        }
        size_t bytes = (size_t)outs[i]->numel * (size_t)ir_dtype_size(outs[i]->dt);
        if (bytes)
            memcpy(outs[i]->data, be_jit_out_data(w, i), bytes);
    }
    return true;
}

bool be_jit_faults_ok(const JitModule *m, const RtCtx *ctx, Diags *d)
{
    if (!ctx->fault_step)
        return true;
    int i = ctx->fault_step - 1;
    const JitKernelInfo *k = i < be_jit_nkernels(m) ? be_jit_kernel(m, i) : NULL;
    SrcLoc none = {NULL, 0, 0};
    diag_error(d, k ? jit_diag_loc(d, k->loc) : none, "%s: index %g is not an integer in [0, %lld), the range of the gathered axis",
               k ? k->what : "gather", ctx->fault_value, (long long)ctx->fault_bound);
    return false;
}

bool be_jit_run(JitModule *m, const TensorMap *params, const TensorMap *inputs, const RunOpts *o,
                Tensor **outs, Diags *d)
{
    int nb = be_jit_nbufs(m);
    Tensor **bound = xcalloc((size_t)nb + 1, sizeof(Tensor *));
    Tensor **priv = xcalloc((size_t)nb + 1, sizeof(Tensor *));
    Binder bd = {m, -1, -1};
    JitWorkspace *w = NULL;
    bool ok = bind_all(&bd, params, inputs, bound, d) && (w = be_jit_workspace_new(m, bd.n, d));
    for (int i = 0; ok && i < nb; i++) {
        if (!bound[i])
            continue;
        if (be_jit_buf(m, i)->kind == JIT_BUF_PARAM && is_updated(m, i))
            bound[i] = priv[i] = rt_tensor_clone(bound[i]);
        be_jit_bind_data(w, i, bound[i]->data);
    }
    if (ok) {
        RtCtx ctx;
        rt_ctx_init(&ctx, be_jit_opts(m)->threads);
        ctx.seed = o ? o->seed : 0;
        ctx.step = o ? o->step : 0;
        be_jit_step(w, &ctx);
        ok = be_jit_faults_ok(m, &ctx, d) && copy_outputs(m, w, outs, d);
    }
    for (int i = 0; i < nb; i++)
        rt_tensor_free(priv[i]);
    xfree(priv);
    xfree(bound);
    be_jit_workspace_free(w);
    return ok;
}
