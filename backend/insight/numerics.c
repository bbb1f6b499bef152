/* Where a NaN or Inf comes from: evaluate one training step with the
 * reference interpreter, and when an output is non-finite summarise every
 * node's value (in windows, so memory stays bounded), keep the non-finite
 * nodes whose values flow into a non-finite output, and report the first
 * of them in graph order: the op, whether it is part of the forward pass,
 * the backward pass or the optimizer update, its source line with a caret,
 * and the ranges of its operands. Nothing is updated. */
#include "insight.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define WINDOW_BYTES ((int64_t)256 << 20)

struct InsNumerics {
    Graph *g;
    NumericsOpts o;
    char *part; /* per node: 'f' forward, 'b' backward, 'u' update */
    int64_t step_label; /* printed instead of RunOpts.step when > 0 */
};

typedef struct NodeSum {
    bool seen;
    int64_t numel, nan, inf, neg_inf, first_bad; /* inf counts both signs */
    double min, max; /* over finite values */
} NodeSum;

/* ---- preparation ---- */

static bool has_op(const Graph *g, Op op)
{
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i]->op == op)
            return true;
    return false;
}

/* Mark the ancestors of outputs of the given kinds with c (unmarked only). */
static void mark_part(const Graph *g, char *part, bool fwd, bool grad, char c)
{
    bool *need = xcalloc((size_t)g->nnodes + 1, sizeof(bool));
    for (int i = 0; i < g->nouts; i++) {
        OutKind k = g->outs[i].kind;
        const char *name = g->outs[i].name;
        /* the optimizer's telemetry metrics belong to the update */
        bool tel = k == OUT_METRIC && name && strncmp(name, "telemetry.", 10) == 0;
        bool f = (k == OUT_LOSS || k == OUT_METRIC || k == OUT_VALUE) && !tel;
        if ((fwd && f) || (grad && k == OUT_GRAD) || (!fwd && !grad && (k == OUT_UPDATE || tel)))
            need[g->outs[i].val->id] = true;
    }
    for (int i = g->nnodes - 1; i >= 0; i--) {
        if (!need[i])
            continue;
        if (!part[i])
            part[i] = c;
        for (int j = 0; j < g->nodes[i]->nin; j++)
            need[g->nodes[i]->in[j]->id] = true;
    }
    xfree(need);
}

/* Forward: what the loss, metrics and values need; backward: what else the
 * gradients need; update: the rest. */
static char *classify(Graph *g)
{
    for (int i = 0; i < g->nnodes; i++)
        g->nodes[i]->id = i;
    char *part = xcalloc((size_t)g->nnodes + 1, 1);
    mark_part(g, part, true, false, 'f');
    mark_part(g, part, false, true, 'b');
    mark_part(g, part, false, false, 'u');
    for (int i = 0; i < g->nnodes; i++)
        if (!part[i])
            part[i] = 'f';
    return part;
}

static bool prepare(InsNumerics *n, const Graph *src, Diags *d)
{
    SrcLoc where = {src->nfiles ? diags_intern_file(d, src->files[0]) : NULL, 0, 0};
    if (has_op(src, OP_FUSED)) {
        diag_error(d, where, "the NaN search needs the graph before fusion");
        return false;
    }
    Diags scratch;
    diags_init(&scratch);
    RecipeOpts o = ps_recipe_opts(FN_NUMERICS);
    o.mode = n->o.mode;
    o.update = n->o.update;
    n->g = ps_recipe(src, &o, &scratch);
    bool ok = n->g != NULL;
    for (int i = 0; i < scratch.n; i++)
        if (scratch.v[i].level == DIAG_ERROR)
            diag_error(d, scratch.v[i].loc, "%s", scratch.v[i].msg);
    diags_free(&scratch);
    if (ok)
        n->part = classify(n->g);
    return ok;
}

InsNumerics *ins_numerics_new(const Graph *src, const NumericsOpts *o, Diags *d)
{
    InsNumerics *n = xcalloc(1, sizeof *n);
    n->o = *o;
    if (!prepare(n, src, d)) {
        ins_numerics_free(n);
        return NULL;
    }
    return n;
}

void ins_numerics_step_label(InsNumerics *n, int64_t step)
{
    n->step_label = step;
}

void ins_numerics_free(InsNumerics *n)
{
    if (!n)
        return;
    ir_graph_free(n->g);
    xfree(n->part);
    xfree(n);
}

/* ---- evaluation ---- */

/* The caller's batch (borrowed) plus the learning rate when the graph
 * reads it and the batch does not give it. Returns how many are borrowed. */
static int build_inputs(const InsNumerics *n, const TensorMap *batch, TensorMap *in)
{
    rt_map_init(in);
    for (int i = 0; i < batch->n; i++)
        rt_map_put(in, batch->names[i], batch->t[i]);
    Node *lr = ir_find_input(n->g, "optimizer.lr");
    if (lr && !rt_map_get(batch, "optimizer.lr")) {
        Tensor *t = rt_tensor_for(lr->dt, &lr->shape, 0);
        rt_set(t, 0, n->o.lr > 0 ? n->o.lr : n->g->train.lr);
        rt_map_put(in, "optimizer.lr", t);
    }
    return batch->n;
}

static void free_inputs(TensorMap *in, int borrowed)
{
    for (int i = 0; i < borrowed; i++)
        in->t[i] = NULL;
    rt_map_free(in);
}

static bool finite_tensor(const Tensor *t)
{
    for (int64_t i = 0; i < t->numel; i++)
        if (!isfinite(rt_get(t, i)))
            return false;
    return true;
}

static NodeSum summarize(const Tensor *t)
{
    NodeSum s = {true, t->numel, 0, 0, 0, -1, INFINITY, -INFINITY};
    for (int64_t i = 0; i < t->numel; i++) {
        double v = rt_get(t, i);
        if (isfinite(v)) {
            s.min = v < s.min ? v : s.min;
            s.max = v > s.max ? v : s.max;
            continue;
        }
        if (s.first_bad < 0)
            s.first_bad = i;
        if (isnan(v))
            s.nan++;
        else
            s.inf++;
        if (v < 0)
            s.neg_inf++;
    }
    return s;
}

static int64_t batch_n(const Graph *g, const TensorMap *in)
{
    for (int i = 0; i < g->nnodes; i++) {
        const Node *x = g->nodes[i];
        int64_t nn;
        const Tensor *t = x->op == OP_INPUT ? rt_map_get(in, x->a.name) : NULL;
        if (t && ir_shape_has_n(&x->shape) && rt_tensor_matches(t, &x->shape, -1, &nn))
            return nn;
    }
    return 1;
}

/* Evaluate nodes [lo, hi) as outputs and summarise them into sums. */
static bool eval_window(InsNumerics *n, const TensorMap *params, const TensorMap *in,
                        const RunOpts *ro, int lo, int hi, NodeSum *sums, Diags *d)
{
    Graph *g = n->g;
    Output *saved = g->outs;
    int nsaved = g->nouts, k = 0;
    Output *tmp = xcalloc((size_t)(hi - lo) + 1, sizeof(Output));
    for (int i = lo; i < hi; i++)
        tmp[k++] = (Output){OUT_VALUE, "window", g->nodes[i], NULL, false, 0};
    g->outs = tmp;
    g->nouts = k;
    Tensor **vals = xcalloc((size_t)k + 1, sizeof(Tensor *));
    bool ok = be_interp_run(g, params, in, ro, vals, d);
    g->outs = saved;
    g->nouts = nsaved;
    for (int i = 0; i < k; i++) {
        if (ok)
            sums[lo + i] = summarize(vals[i]);
        rt_tensor_free(vals[i]);
    }
    xfree(vals);
    xfree(tmp);
    for (int i = 0; i < g->nnodes; i++)
        g->nodes[i]->id = i;
    return ok;
}

static bool summarize_all(InsNumerics *n, const TensorMap *params, const TensorMap *in,
                          const RunOpts *ro, NodeSum *sums, Diags *d)
{
    int64_t nb = batch_n(n->g, in), bytes = 0;
    int lo = 0;
    for (int i = 0; i < n->g->nnodes; i++) {
        const Node *x = n->g->nodes[i];
        int64_t e = ir_shape_numel(&x->shape, nb);
        bytes += (e > 0 ? e : 1) * ir_dtype_size(x->dt);
        if (bytes < WINDOW_BYTES && i + 1 < n->g->nnodes)
            continue;
        if (!eval_window(n, params, in, ro, lo, i + 1, sums, d))
            return false;
        lo = i + 1;
        bytes = 0;
    }
    return true;
}

/* The non-finite nodes whose values reach a non-finite output through
 * non-finite values; returns the first in graph order, or -1. */
static int find_origin(const Graph *g, const NodeSum *sums, const bool *bad_out)
{
    bool *mark = xcalloc((size_t)g->nnodes + 1, sizeof(bool));
    for (int i = 0; i < g->nouts; i++)
        if (bad_out[i])
            mark[g->outs[i].val->id] = true;
    for (int i = g->nnodes - 1; i >= 0; i--) {
        if (!mark[i] || !(sums[i].nan + sums[i].inf))
            continue;
        const Node *x = g->nodes[i];
        for (int j = 0; j < x->nin; j++) {
            const NodeSum *s = &sums[x->in[j]->id];
            if (s->nan + s->inf)
                mark[x->in[j]->id] = true;
        }
    }
    int first = -1;
    for (int i = 0; i < g->nnodes && first < 0; i++)
        if (mark[i] && sums[i].nan + sums[i].inf)
            first = i;
    xfree(mark);
    return first;
}

/* ---- the report ---- */

static void index_str(char *buf, size_t n, const Node *x, int64_t nb, int64_t flat)
{
    int64_t dims[IR_MAXRANK], idx[IR_MAXRANK];
    int r = x->shape.rank;
    for (int k = 0; k < r; k++)
        dims[k] = ir_dim_eval(x->shape.d[k], nb);
    for (int k = r - 1; k >= 0; k--) {
        idx[k] = dims[k] ? flat % dims[k] : 0;
        flat = dims[k] ? flat / dims[k] : 0;
    }
    size_t len = (size_t)snprintf(buf, n, "[");
    for (int k = 0; k < r && len < n; k++)
        len += (size_t)snprintf(buf + len, n - len, "%s%lld", k ? ", " : "", (long long)idx[k]);
    if (len < n)
        snprintf(buf + len, n - len, "]");
}

static const char *what_bad(const NodeSum *s)
{
    const char *inf = s->neg_inf == s->inf ? "-Inf" : s->neg_inf ? "+Inf and -Inf" : "+Inf";
    if (s->nan && s->inf)
        return s->neg_inf == s->inf ? "NaN and -Inf" : s->neg_inf ? "NaN and +/-Inf" : "NaN and +Inf";
    return s->nan ? "NaN" : inf;
}

/* "sigmoid 'p' f32[8,1]" with N replaced by the batch size nb. */
static void describe(char *buf, size_t n, const Node *x, int64_t nb)
{
    char ty[128];
    Shape sh = x->shape;
    for (int k = 0; k < sh.rank; k++)
        if (ir_dim_is_batch(sh.d[k]))
            sh.d[k] = ir_dim_eval(sh.d[k], nb);
    ir_type_str(x->dt, &sh, ty, sizeof ty);
    if (x->op == OP_PARAM || x->op == OP_INPUT)
        snprintf(buf, n, "%s '%s' %s", x->op == OP_PARAM ? "parameter" : "input", x->a.name, ty);
    else if (x->op == OP_CONST)
        snprintf(buf, n, "const %.9g", x->a.value);
    else if (x->label)
        snprintf(buf, n, "%s '%s' %s", ir_ops[x->op].name, x->label, ty);
    else
        snprintf(buf, n, "%s %s", ir_ops[x->op].name, ty);
}

static void operand_lines(FILE *out, const Node *x, const NodeSum *sums, int64_t nb)
{
    for (int j = 0; j < x->nin; j++) {
        const Node *o = x->in[j];
        const NodeSum *s = &sums[o->id];
        char desc[256];
        describe(desc, sizeof desc, o, nb);
        fprintf(out, "  operand %d: %s: ", j, desc);
        if (s->min <= s->max)
            fprintf(out, "min %.9g, max %.9g", s->min, s->max);
        else
            fputs("no finite value", out);
        if (s->nan + s->inf)
            fprintf(out, ", %lld NaN, %lld Inf\n", (long long)s->nan, (long long)s->inf);
        else
            fputs(", no NaN or Inf\n", out);
    }
}

static bool same_loc(SrcLoc a, SrcLoc b)
{
    return a.line == b.line && a.col == b.col && a.file && b.file && strcmp(a.file, b.file) == 0;
}

/* A backward node keeps the location of the forward op it differentiates:
 * name that op when the location identifies one kind of op. */
static void gradient_of(FILE *out, const InsNumerics *n, const Node *x)
{
    int op = -1;
    for (int i = 0; i < n->g->nnodes; i++) {
        const Node *y = n->g->nodes[i];
        if (n->part[i] != 'f' || !same_loc(y->loc, x->loc) || ir_ops[y->op].cls == OPC_LEAF)
            continue;
        if (op >= 0 && op != (int)y->op) {
            op = -2;
            break;
        }
        op = (int)y->op;
    }
    if (op >= 0)
        fprintf(out, "  (part of the gradient of %s on this line)\n", ir_ops[op].name);
    else
        fputs("  (part of the gradient of the operations on this line)\n", out);
}

static const char *part_name(char p)
{
    return p == 'f' ? "forward pass" : p == 'b' ? "backward pass" : "optimizer update";
}

static SrcLoc with_source(Diags *d, SrcLoc loc)
{
    if (!loc.file)
        return loc;
    size_t len;
    char *text = read_file(loc.file, &len);
    if (text) {
        loc.file = diags_add_source(d, loc.file, text, len);
        xfree(text);
    } else {
        loc.file = diags_intern_file(d, loc.file);
    }
    return loc;
}

static void bad_outputs(FILE *out, const Graph *g, const bool *bad_out)
{
    int k = 0;
    fputs("non-finite:", out);
    for (int i = 0; i < g->nouts; i++) {
        if (!bad_out[i])
            continue;
        if (k++ == 6) {
            fputs(" ...", out);
            break;
        }
        fprintf(out, "%s %s", k > 1 ? "," : "", g->outs[i].name ? g->outs[i].name : "?");
    }
    fputc('\n', out);
}

static void report(const InsNumerics *n, const RunOpts *ro, int origin, const NodeSum *sums,
                   const bool *bad_out, int64_t nb, FILE *out)
{
    const Node *x = n->g->nodes[origin];
    const NodeSum *s = &sums[origin];
    char idx[160], desc[256];
    index_str(idx, sizeof idx, x, nb, s->first_bad);
    unsigned long long step = n->step_label > 0 ? (unsigned long long)n->step_label
                              : ro                ? (unsigned long long)ro->step
                                                  : 0;
    fprintf(out, "modelc: numerics: step %llu (%s mode): ", step,
            n->o.mode == MODE_TRAIN ? "training" : "inference");
    bad_outputs(out, n->g, bad_out);
    Diags d;
    diags_init(&d);
    SrcLoc loc = with_source(&d, x->loc);
    if (x->op == OP_PARAM || x->op == OP_INPUT) {
        describe(desc, sizeof desc, x, nb);
        diag_error(&d, loc, "%s already holds %s (%lld of %lld elements, first at %s) before the step",
                   desc, what_bad(s), (long long)(s->nan + s->inf), (long long)s->numel, idx);
    } else {
        diag_error(&d, loc, "%s produced %s in the %s (%lld of %lld elements, first at %s)",
                   ir_ops[x->op].name, what_bad(s), part_name(n->part[origin]),
                   (long long)(s->nan + s->inf), (long long)s->numel, idx);
        d.v[d.n - 1].span = ps_loc_span(&d, loc);
    }
    diags_print(&d, out);
    diags_free(&d);
    if (n->part[origin] == 'b')
        gradient_of(out, n, x);
    operand_lines(out, x, sums, nb);
    fputs("  nothing was updated\n", out);
}

/* ---- entry points ---- */

InsNumResult ins_numerics_check(InsNumerics *n, const TensorMap *params, const TensorMap *batch,
                                const RunOpts *ro, FILE *out)
{
    TensorMap in;
    int borrowed = build_inputs(n, batch, &in);
    Graph *g = n->g;
    Diags d;
    diags_init(&d);
    Tensor **outs = xcalloc((size_t)g->nouts + 1, sizeof(Tensor *));
    InsNumResult r = INS_NUM_FINITE;
    bool *bad_out = xcalloc((size_t)g->nouts + 1, sizeof(bool));
    if (!be_interp_run(g, params, &in, ro, outs, &d)) {
        r = INS_NUM_ERROR;
    } else {
        for (int i = 0; i < g->nouts; i++)
            if (!finite_tensor(outs[i])) {
                bad_out[i] = true;
                r = INS_NUM_FOUND;
            }
    }
    for (int i = 0; i < g->nouts; i++)
        rt_tensor_free(outs[i]);
    xfree(outs);
    if (r == INS_NUM_FOUND) {
        NodeSum *sums = xcalloc((size_t)g->nnodes + 1, sizeof(NodeSum));
        if (!summarize_all(n, params, &in, ro, sums, &d)) {
            r = INS_NUM_ERROR;
        } else {
            int origin = find_origin(g, sums, bad_out);
            if (origin < 0)
                ICE("a non-finite output without a non-finite node");
            report(n, ro, origin, sums, bad_out, batch_n(g, &in), out);
        }
        xfree(sums);
    }
    if (r == INS_NUM_ERROR)
        diags_print(&d, out);
    xfree(bad_out);
    diags_free(&d);
    free_inputs(&in, borrowed);
    return r;
}

InsNumResult ins_nan_origin(const Graph *src, const TensorMap *params, const TensorMap *batch,
                            const RunOpts *ro, const NumericsOpts *o, FILE *out)
{
    Diags d;
    diags_init(&d);
    InsNumerics *n = ins_numerics_new(src, o, &d);
    InsNumResult r = INS_NUM_ERROR;
    if (n)
        r = ins_numerics_check(n, params, batch, ro, out);
    else
        diags_print(&d, out);
    ins_numerics_free(n);
    diags_free(&d);
    return r;
}
