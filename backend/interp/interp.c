/* The interpreter's driver: binds INPUT and PARAM nodes to tensors (and
 * the batch size N to the inputs), evaluates nodes in graph order through
 * the op table built from ir/ops.def, frees each intermediate after its
 * last use, evaluates fused bodies recursively, and hands out results. */
#include "backend/interp/interp_impl.h"

#include <stdlib.h>
#include <string.h>

static const InterpFn op_fns[OP_COUNT] = {
#define OP(E, name, arity, cls, ...) [OP_##E] = INTERP_ROUTINE_##cls(name),
#include "ir/ops.def"
#undef OP
};

/* The values of one graph being evaluated, indexed by node id. */
typedef struct Eval {
    Graph *g;
    Tensor **vals;
    bool *owned; /* vals[i] was computed here and is freed here */
    bool *need;  /* node i is evaluated */
    int *uses;   /* consumers still to run (+1 per output); NULL keeps all */
    Tensor ***parts; /* by node id: side results of a fused node ([1..]), or NULL */
    int64_t live, peak; /* bytes held by owned values: now, at most */
} Eval;

static int64_t bytes_of(const Tensor *t)
{
    return t->numel * ir_dtype_size(t->dt);
}

/* Mark what the outputs need (everything when all) and count uses. */
static void eval_init(Eval *e, Graph *g, bool all)
{
    int n = g->nnodes;
    e->g = g;
    e->vals = xcalloc((size_t)n + 1, sizeof(Tensor *));
    e->owned = xcalloc((size_t)n + 1, sizeof(bool));
    e->need = xcalloc((size_t)n + 1, sizeof(bool));
    e->parts = xcalloc((size_t)n + 1, sizeof(Tensor **));
    e->uses = all ? NULL : xcalloc((size_t)n + 1, sizeof(int));
    e->live = e->peak = 0;
    for (int i = 0; i < n; i++) {
        g->nodes[i]->id = i;
        e->need[i] = all;
    }
    for (int i = 0; i < g->nouts; i++)
        e->need[g->outs[i].val->id] = true;
    for (int i = n - 1; i >= 0; i--)
        if (e->need[i])
            for (int j = 0; j < g->nodes[i]->nin; j++)
                e->need[g->nodes[i]->in[j]->id] = true;
    if (!e->uses)
        return;
    for (int i = 0; i < n; i++)
        if (e->need[i])
            for (int j = 0; j < g->nodes[i]->nin; j++)
                e->uses[g->nodes[i]->in[j]->id]++;
    for (int i = 0; i < g->nouts; i++)
        e->uses[g->outs[i].val->id]++;
}

static void free_parts(Eval *e)
{
    for (int i = 0; i < e->g->nnodes; i++) {
        Tensor **p = e->parts[i];
        for (int j = 1; p && j < e->g->nodes[i]->sub->nouts; j++)
            if (p[j])
                rt_tensor_free(p[j]);
        xfree(p);
    }
    xfree(e->parts);
}

static void eval_free(Eval *e)
{
    for (int i = 0; i < e->g->nnodes; i++)
        if (e->owned[i])
            rt_tensor_free(e->vals[i]);
    free_parts(e);
    xfree(e->vals);
    xfree(e->owned);
    xfree(e->need);
    xfree(e->uses);
}

/* ---- binding leaves ---- */

static const char *leaf_kind(const Node *nd)
{
    return nd->op == OP_PARAM ? "parameter" : "input";
}

static void report_mismatch(Interp *ip, const Node *nd, const Tensor *t, bool batch)
{
    char want[128], got[128];
    ir_type_str(nd->dt, &nd->shape, want, sizeof want);
    ix_type_str(t, got, sizeof got);
    if (batch)
        diag_error(ip->d, nd->loc, "%s '%s' is %s, expected %s with N = %lld (from %s '%s')",
                   leaf_kind(nd), nd->a.name, got, want, (long long)ip->n,
                   leaf_kind(ip->n_from), ip->n_from->a.name);
    else
        diag_error(ip->d, nd->loc, "%s '%s' is %s, expected %s", leaf_kind(nd), nd->a.name, got,
                   want);
}

/* Does t fit leaf nd? The first tensor with an N dimension binds N. */
static bool check_leaf(Interp *ip, const Node *nd, const Tensor *t)
{
    if (!t) {
        char want[128];
        diag_error(ip->d, nd->loc, "missing %s '%s' of type %s", leaf_kind(nd), nd->a.name,
                   ir_type_str(nd->dt, &nd->shape, want, sizeof want));
        return false;
    }
    bool ok = t->dt == nd->dt && t->rank == nd->shape.rank, batch = false;
    int64_t n = ip->n;
    for (int k = 0; ok && k < t->rank; k++) {
        int64_t f = ir_dim_factor(nd->shape.d[k]);
        if (!ir_dim_is_batch(nd->shape.d[k])) {
            ok = nd->shape.d[k] == t->dims[k];
        } else if (t->dims[k] % f != 0) {
            ok = false;
        } else if (n < 0) {
            n = t->dims[k] / f;
        } else if (t->dims[k] / f != n) {
            ok = false;
            batch = ip->n >= 0;
        }
    }
    if (!ok) {
        report_mismatch(ip, nd, t, batch);
        return false;
    }
    if (ip->n < 0 && n >= 0) {
        ip->n = n;
        ip->n_from = nd;
    }
    return true;
}

/* Inputs first (they define N), then parameters; every error is reported. */
static bool bind_graph(Interp *ip, Eval *e, const TensorMap *inputs)
{
    bool ok = true;
    const Op kinds[2] = {OP_INPUT, OP_PARAM};
    for (int p = 0; p < 2; p++) {
        const TensorMap *m = kinds[p] == OP_INPUT ? inputs : ip->params;
        for (int i = 0; i < e->g->nnodes; i++) {
            Node *nd = e->g->nodes[i];
            if (nd->op != kinds[p] || !e->need[i])
                continue;
            Tensor *t = m ? rt_map_get(m, nd->a.name) : NULL;
            if (check_leaf(ip, nd, t))
                e->vals[i] = t;
            else
                ok = false;
        }
    }
    return ok;
}

/* A fused body: its INPUT nodes, in order, are the fused node's operands. */
static bool bind_fused(Interp *ip, const Node *fn, Eval *e, Tensor *const *args)
{
    int k = 0;
    bool ok = true;
    for (int i = 0; i < e->g->nnodes; i++) {
        Node *nd = e->g->nodes[i];
        if (nd->op == OP_INPUT) {
            if (k < fn->nin && e->need[i] && !check_leaf(ip, nd, args[k]))
                ok = false;
            if (k < fn->nin)
                e->vals[i] = args[k];
            k++;
        } else if (nd->op == OP_PARAM && e->need[i]) {
            Tensor *t = ip->params ? rt_map_get(ip->params, nd->a.name) : NULL;
            if (check_leaf(ip, nd, t))
                e->vals[i] = t;
            else
                ok = false;
        }
    }
    if (k != fn->nin) {
        diag_error(ip->d, fn->loc, "fused body takes %d operands, got %d", k, fn->nin);
        return false;
    }
    return ok;
}

/* ---- evaluation ---- */

/* A zeroed tensor for nd's type with N bound. */
static Tensor *alloc_value(Interp *ip, const Node *nd)
{
    char ty[128];
    int64_t dims[IR_MAXRANK];
    for (int k = 0; k < nd->shape.rank; k++) {
        dims[k] = nd->shape.d[k];
        if (!ir_dim_is_batch(dims[k]))
            continue;
        if (ip->n < 0) {
            diag_error(ip->d, nd->loc, "%s of type %s needs the batch size N, but no input binds it",
                       ir_ops[nd->op].name, ir_type_str(nd->dt, &nd->shape, ty, sizeof ty));
            return NULL;
        }
        dims[k] = ir_dim_eval(dims[k], ip->n);
    }
    Tensor *t = rt_tensor_new(nd->dt, nd->shape.rank, dims);
    char why[96];
    if (!t)
        diag_error(ip->d, nd->loc, "%s of type %s with N = %lld: %s", ir_ops[nd->op].name,
                   ir_type_str(nd->dt, &nd->shape, ty, sizeof ty), (long long)ip->n,
                   rt_tensor_failure(nd->dt, nd->shape.rank, dims, why, sizeof why));
    return t;
}

/* The last consumer of an operand frees it (outputs hold an extra use). */
static void release_operands(Eval *e, const Node *nd)
{
    if (!e->uses)
        return;
    for (int j = 0; j < nd->nin; j++) {
        int id = nd->in[j]->id;
        if (--e->uses[id] == 0 && e->owned[id]) {
            e->live -= bytes_of(e->vals[id]);
            rt_tensor_free(e->vals[id]);
            e->vals[id] = NULL;
            e->owned[id] = false;
        }
    }
}

static bool eval_node(Interp *ip, Eval *e, Node *nd)
{
    Tensor *ins[8], **in = nd->nin <= 8 ? ins : xmalloc((size_t)nd->nin * sizeof(Tensor *));
    for (int j = 0; j < nd->nin; j++) {
        in[j] = e->vals[nd->in[j]->id];
        MC_ASSERT(in[j]);
    }
    Tensor *out = alloc_value(ip, nd);
    if ((nd->op == OP_FUSED || nd->op == OP_LOOP) && nd->sub->nouts > 1)
        ip->parts = e->parts[nd->id] = xcalloc((size_t)nd->sub->nouts, sizeof(Tensor *));
    ip->results = (Tensor *const *const *)e->parts;
    bool ok = out && op_fns[nd->op](ip, nd, in, out);
    ip->parts = NULL;
    if (in != ins)
        xfree(in);
    if (!ok) {
        if (out)
            rt_tensor_free(out);
        return false;
    }
    e->vals[nd->id] = out;
    e->owned[nd->id] = true;
    e->live += bytes_of(out);
    if (e->live > e->peak)
        e->peak = e->live;
    release_operands(e, nd);
    return true;
}

/* Evaluate the needed nodes in order; leaves INPUT/PARAM are bound. */
static bool eval_nodes(Interp *ip, Eval *e)
{
    for (int i = 0; i < e->g->nnodes; i++) {
        Node *nd = e->g->nodes[i];
        if (!e->need[i] || nd->op == OP_INPUT || nd->op == OP_PARAM)
            continue;
        if (!eval_node(ip, e, nd))
            return false;
    }
    return true;
}

INTERP_FN(fused)
{
    Graph *s = nd->sub;
    MC_ASSERT(s && s->nouts >= 1);
    Tensor **parts = ip->parts;
    ip->parts = NULL;
    Eval e;
    eval_init(&e, s, false);
    bool ok = bind_fused(ip, nd, &e, in) && eval_nodes(ip, &e);
    if (ok) {
        const Tensor *r = e.vals[s->outs[0].val->id];
        MC_ASSERT(r->dt == out->dt && r->numel == out->numel);
        if (r->numel)
            memcpy(out->data, r->data, (size_t)r->numel * (size_t)ir_dtype_size(r->dt));
        for (int j = 1; parts && j < s->nouts; j++)
            parts[j] = rt_tensor_clone(e.vals[s->outs[j].val->id]);
    }
    eval_free(&e);
    return ok;
}

/* ---- loops ---- */

/* Rows and row bytes of a sequence x [d0, T, rest...] around axis 1. */
static void seq_geometry(const Tensor *x, int64_t *rows, size_t *row_bytes)
{
    int64_t inner = 1;
    for (int k = 2; k < x->rank; k++)
        inner *= x->dims[k];
    *rows = x->dims[0];
    *row_bytes = (size_t)inner * (size_t)ir_dtype_size(x->dt);
}

/* s = x[:, t] (s has x's shape without axis 1), or x[:, t] = s. */
static void seq_copy(Tensor *x, int64_t t, Tensor *s, bool put)
{
    int64_t rows;
    size_t rb;
    seq_geometry(x, &rows, &rb);
    char *xp = x->data, *sp = s->data;
    for (int64_t r = 0; r < rows; r++) {
        char *row = xp + ((size_t)(r * x->dims[1] + t)) * rb;
        if (put)
            memcpy(row, sp + (size_t)r * rb, rb);
        else
            memcpy(sp + (size_t)r * rb, row, rb);
    }
}

static Tensor *step_of(const Tensor *x)
{
    int64_t dims[IR_MAXRANK];
    dims[0] = x->dims[0];
    for (int k = 2; k < x->rank; k++)
        dims[k - 1] = x->dims[k];
    return rt_tensor_new(x->dt, x->rank - 1, dims);
}

static Tensor *stacked_of(const Tensor *s, int64_t steps)
{
    int64_t dims[IR_MAXRANK];
    dims[0] = s->dims[0];
    dims[1] = steps;
    for (int k = 1; k < s->rank; k++)
        dims[k + 1] = s->dims[k];
    return rt_tensor_new(s->dt, s->rank + 1, dims);
}

/* One step of loop nd: the body on args; carried states replaced by
 * their updates, per-step results stored at time index t of res. */
static bool loop_step(Interp *ip, const Node *nd, Tensor **args, Tensor **res, int64_t t)
{
    Graph *s = nd->sub;
    int nc = ir_loop_ncarry(nd);
    Eval e;
    eval_init(&e, s, false);
    bool ok = bind_fused(ip, nd, &e, args) && eval_nodes(ip, &e);
    Tensor **next = xcalloc((size_t)nc, sizeof(Tensor *));
    for (int j = 0; ok && j < s->nouts; j++) {
        const Tensor *v = e.vals[s->outs[j].val->id];
        if (j < nc) {
            next[j] = rt_tensor_clone(v);
            continue;
        }
        if (!res[j])
            res[j] = stacked_of(v, ir_loop_steps(nd));
        seq_copy(res[j], t, (Tensor *)v, true);
    }
    eval_free(&e);
    for (int j = 0; ok && j < nc; j++) { /* the body's values may be the old states */
        rt_tensor_free(args[j]);
        args[j] = next[j];
    }
    xfree(next);
    return ok;
}

INTERP_FN(loop)
{
    Graph *s = nd->sub;
    int nc = ir_loop_ncarry(nd), ns = nd->a.nseq;
    int64_t steps = ir_loop_steps(nd);
    Tensor **parts = ip->parts;
    ip->parts = NULL;
    Tensor **args = xcalloc((size_t)nd->nin, sizeof(Tensor *));
    Tensor **res = xcalloc((size_t)s->nouts, sizeof(Tensor *));
    for (int k = 0; k < nd->nin; k++)
        args[k] = k < nc ? rt_tensor_clone(in[k]) : k < nc + ns ? step_of(in[k]) : in[k];
    bool ok = true;
    for (int64_t i = 0; ok && i < steps; i++) {
        int64_t t = nd->a.reverse ? steps - 1 - i : i;
        for (int k = nc; k < nc + ns; k++)
            seq_copy(in[k], t, args[k], false);
        ok = loop_step(ip, nd, args, res, t);
    }
    if (ok) {
        MC_ASSERT(args[0]->dt == out->dt && args[0]->numel == out->numel);
        if (out->numel)
            memcpy(out->data, args[0]->data, (size_t)out->numel * (size_t)ir_dtype_size(out->dt));
        for (int j = 1; parts && j < s->nouts; j++) {
            parts[j] = j < nc ? args[j] : res[j];
            if (j < nc)
                args[j] = NULL;
            else
                res[j] = NULL;
        }
    }
    for (int k = 0; k < nc + ns; k++)
        if (args[k])
            rt_tensor_free(args[k]);
    for (int j = 0; j < s->nouts; j++)
        if (res[j])
            rt_tensor_free(res[j]);
    xfree(args);
    xfree(res);
    return ok;
}

INTERP_FN(result)
{
    (void)in;
    const Node *f = nd->in[0];
    Tensor *const *p = ip->results ? ip->results[f->id] : NULL;
    const Tensor *r = p && nd->a.index >= 1 && nd->a.index < f->sub->nouts ? p[nd->a.index] : NULL;
    if (!r) {
        diag_error(ip->d, nd->loc, "result %d of a %s node that did not compute it", nd->a.index,
                   ir_ops[f->op].name);
        return false;
    }
    MC_ASSERT(r->dt == out->dt && r->numel == out->numel);
    if (r->numel)
        memcpy(out->data, r->data, (size_t)r->numel * (size_t)ir_dtype_size(r->dt));
    return true;
}

INTERP_FN(phase)
{
    diag_error(ip->d, nd->loc, "phase node%s%s%s left in graph; run specialize first",
               nd->a.name ? " '" : "", nd->a.name ? nd->a.name : "", nd->a.name ? "'" : "");
    return false;
}

/* ---- entry points ---- */

static bool run(Graph *g, const TensorMap *params, const TensorMap *inputs, const RunOpts *o,
                const struct RtReplica *replica, bool all, Eval *e, Diags *d)
{
    static const RunOpts no_opts = {0, 0};
    Interp ip = {o ? o : &no_opts, params, -1, NULL, d, NULL, NULL, replica};
    eval_init(e, g, all);
    return bind_graph(&ip, e, inputs) && eval_nodes(&ip, e);
}

static bool run_outs(Graph *g, const TensorMap *params, const TensorMap *inputs, const RunOpts *o,
                     const struct RtReplica *replica, Tensor **outs, int64_t *peak, Diags *d)
{
    Eval e;
    bool ok = run(g, params, inputs, o, replica, false, &e, d);
    for (int i = 0; i < g->nouts; i++) {
        const Output *out = &g->outs[i];
        outs[i] = ok ? rt_tensor_clone(out->part ? e.parts[out->val->id][out->part] : e.vals[out->val->id])
                     : NULL;
    }
    if (peak)
        *peak = e.peak;
    eval_free(&e);
    return ok;
}

bool be_interp_run_peak(Graph *g, const TensorMap *params, const TensorMap *inputs,
                        const RunOpts *o, Tensor **outs, int64_t *peak, Diags *d)
{
    return run_outs(g, params, inputs, o, NULL, outs, peak, d);
}

bool be_interp_run(Graph *g, const TensorMap *params, const TensorMap *inputs, const RunOpts *o,
                   Tensor **outs, Diags *d)
{
    return run_outs(g, params, inputs, o, NULL, outs, NULL, d);
}

bool be_interp_run_replica(Graph *g, const TensorMap *params, const TensorMap *inputs, const RunOpts *o,
                           const struct RtReplica *replica, Tensor **outs, Diags *d)
{
    return run_outs(g, params, inputs, o, replica, outs, NULL, d);
}

bool be_interp_run_all(Graph *g, const TensorMap *params, const TensorMap *inputs,
                       const RunOpts *o, Tensor ***vals, Diags *d)
{
    Eval e;
    *vals = NULL;
    if (!run(g, params, inputs, o, NULL, true, &e, d)) {
        eval_free(&e);
        return false;
    }
    for (int i = 0; i < g->nnodes; i++) {
        if (!e.owned[i]) {
            e.vals[i] = rt_tensor_clone(e.vals[i]);
            e.owned[i] = true;
        }
    }
    *vals = e.vals;
    e.vals = NULL;
    free_parts(&e);
    xfree(e.owned);
    xfree(e.need);
    xfree(e.uses);
    return true;
}

void be_interp_free_values(Graph *g, Tensor **vals)
{
    if (!vals)
        return;
    for (int i = 0; i < g->nnodes; i++)
        if (vals[i])
            rt_tensor_free(vals[i]);
    xfree(vals);
}
