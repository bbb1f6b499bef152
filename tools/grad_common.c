/* Parameter and input tensors for `modelc grad` and `modelc gradcheck`. */
#include "grad_common.h"

#include <math.h>
#include <string.h>

#include "backend/interp/interp.h"
#include "runtime/io/io.h"

static SrcLoc file_loc(Diags *d, const char *path)
{
    SrcLoc l = {diags_intern_file(d, path), 0, 0};
    return l;
}

bool gc_load_params(const Graph *g, const char *path, uint64_t seed, TensorMap *m, Diags *d)
{
    if (path)
        return rt_safetensors_read(path, m, NULL, d) && rt_check_params(g, m, path, true, d);
    rt_init_params(g, m, seed, false);
    bool ok = true;
    for (int i = 0; i < g->nnodes; i++) {
        const Node *p = g->nodes[i];
        if (p->op == OP_PARAM && !rt_map_get(m, p->a.name)) {
            diag_error(d, p->loc, "parameter '%s' has no initializer; give its value with --weights",
                       p->a.name);
            ok = false;
        }
    }
    return ok;
}

static bool check_input(const Node *in, const Tensor *t, const char *path, int64_t *n, Diags *d)
{
    char want[128], have[128];
    ir_type_str(in->dt, &in->shape, want, sizeof want);
    if (!t) {
        diag_error(d, file_loc(d, path), "input '%s' is missing; the model expects %s", in->a.name,
                   want);
        return false;
    }
    int64_t nn;
    if (t->dt != in->dt || !rt_tensor_matches(t, &in->shape, *n, &nn)) {
        diag_error(d, file_loc(d, path), "input '%s' is %s, the model expects %s%s", in->a.name,
                   rt_tensor_type_str(t, have, sizeof have), want,
                   t->dt == in->dt && *n >= 0 && ir_shape_has_n(&in->shape)
                       ? " with the same batch size N as the other inputs"
                       : "");
        return false;
    }
    if (nn >= 0)
        *n = nn;
    return true;
}

bool gc_load_inputs(const Graph *g, const char *path, TensorMap *m, Diags *d)
{
    if (!rt_safetensors_read(path, m, NULL, d))
        return false;
    bool ok = true;
    int64_t n = -1;
    for (int i = 0; i < g->nnodes; i++) {
        const Node *in = g->nodes[i];
        if (in->op == OP_INPUT)
            ok &= check_input(in, rt_map_get(m, in->a.name), path, &n, d);
    }
    for (int i = 0; i < m->n; i++) {
        bool known = false;
        for (int j = 0; j < g->nnodes && !known; j++)
            known = g->nodes[j]->op == OP_INPUT && strcmp(g->nodes[j]->a.name, m->names[i]) == 0;
        if (!known) {
            diag_error(d, file_loc(d, path), "tensor '%s' is not an input of model '%s'",
                       m->names[i], g->name);
            ok = false;
        }
    }
    return ok;
}

/* Depth of the one_hot that input x feeds (through casts and reshapes),
 * or 0. */
static int label_classes(const Graph *g, const Node *x)
{
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        if (n->op != OP_ONE_HOT)
            continue;
        const Node *s = n->in[0];
        while (s->op == OP_CAST || s->op == OP_RESHAPE || s->op == OP_SLICE ||
               s->op == OP_BROADCAST || s->op == OP_TRANSPOSE)
            s = s->in[0];
        if (s == x)
            return n->a.depth;
    }
    return 0;
}

void gc_random_inputs(const Graph *g, int64_t batch, uint64_t seed, TensorMap *m)
{
    for (int i = 0; i < g->nnodes; i++) {
        const Node *x = g->nodes[i];
        if (x->op != OP_INPUT)
            continue;
        Tensor *t = rt_tensor_for(x->dt, &x->shape, batch);
        if (!t)
            ICE("cannot allocate input '%s'", x->a.name);
        uint64_t stream = rt_name_stream(x->a.name);
        int classes = label_classes(g, x);
        if (!classes && !ir_dtype_is_float(x->dt))
            classes = 2;
        for (int64_t k = 0; k < t->numel; k++) {
            double u = rt_uniform(seed, stream, 1, (uint64_t)k);
            rt_set(t, k, classes ? (double)(int64_t)(u * classes) : u);
        }
        rt_map_put(m, x->a.name, t);
    }
}

int gc_find_output(const Graph *g, OutKind k)
{
    for (int i = 0; i < g->nouts; i++)
        if (g->outs[i].kind == k)
            return i;
    return -1;
}

void gc_fmt_value(char *buf, size_t n, double v, DType dt)
{
    if (isnan(v))
        snprintf(buf, n, "nan");
    else if (isinf(v))
        snprintf(buf, n, "%sinf", v < 0 ? "-" : "");
    else if (dt == DT_F32)
        snprintf(buf, n, "%.9g", v);
    else
        fmt_double(buf, n, v);
}

static bool all_finite(const Tensor *t)
{
    if (!t || !ir_dtype_is_float(t->dt))
        return true;
    for (int64_t i = 0; i < t->numel; i++)
        if (!isfinite(rt_get(t, i)))
            return false;
    return true;
}

void gc_explain_nonfinite(Graph *g, const TensorMap *params, const TensorMap *inputs,
                          const RunOpts *ro, Diags *d)
{
    Tensor **vals;
    Diags scratch;
    diags_init(&scratch);
    if (!be_interp_run_all(g, params, inputs, ro, &vals, &scratch)) {
        diags_free(&scratch);
        return;
    }
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (n->op == OP_INPUT || n->op == OP_PARAM || all_finite(vals[i]))
            continue;
        bool inherited = false;
        for (int j = 0; j < n->nin; j++)
            inherited |= !all_finite(vals[n->in[j]->id]);
        if (inherited)
            continue;
        diag_note(d, n->loc, "the first NaN or infinity comes from %s%s%s%s", ir_ops[n->op].name,
                  n->label ? " ('" : "", n->label ? n->label : "", n->label ? "')" : "");
        break;
    }
    be_interp_free_values(g, vals);
    diags_free(&scratch);
}
