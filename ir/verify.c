/* The IR verifier: checks the structural invariants every pass relies on
 * (operands before users, arity, types that re-inference reproduces,
 * well-formed outputs, unique leaf names, valid fused bodies) and reports
 * each violation as a diagnostic at the offending node. It never changes
 * the graph and is safe on graphs with dangling or foreign pointers. */
#include "irtext.h"

#include <stdlib.h>
#include <string.h>

/* Node pointer -> position in g->nodes, without dereferencing keys. */
typedef struct PtrMap {
    const Node **key;
    int *pos;
    int cap;
} PtrMap;

typedef struct Verifier {
    Graph *g;
    Diags *d;
    const char *where; /* "" or "in the body of fused %7: " */
    ValueNames vn;
    PtrMap map;
    bool ok;
} Verifier;

static bool verify_graph(Graph *g, Diags *d, const char *where);

static int ptr_slot(const PtrMap *m, const Node *p)
{
    uint64_t h = (uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ULL;
    int i = (int)(h >> 40) & (m->cap - 1);
    while (m->key[i] && m->key[i] != p)
        i = (i + 1) & (m->cap - 1);
    return i;
}

static void map_build(PtrMap *m, Graph *g)
{
    m->cap = 16;
    while (m->cap < 2 * g->nnodes + 2)
        m->cap *= 2;
    m->key = xcalloc((size_t)m->cap, sizeof(Node *));
    m->pos = xcalloc((size_t)m->cap, sizeof(int));
    for (int i = 0; i < g->nnodes; i++) {
        if (!g->nodes[i])
            continue;
        int s = ptr_slot(m, g->nodes[i]);
        if (!m->key[s]) {
            m->key[s] = g->nodes[i];
            m->pos[s] = i;
        }
    }
}

/* Position of p in the graph, or -1 when p is not one of its nodes. */
static int map_get(const PtrMap *m, const Node *p)
{
    if (!p)
        return -1;
    int s = ptr_slot(m, p);
    return m->key[s] ? m->pos[s] : -1;
}

static void verr(Verifier *V, int i, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void verr(Verifier *V, int i, const char *fmt, ...)
{
    StrBuf b;
    sb_init(&b);
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&b, fmt, ap);
    va_end(ap);
    Node *n = i >= 0 ? V->g->nodes[i] : NULL;
    SrcLoc loc = n ? n->loc : (SrcLoc){NULL, 0, 0};
    if (n && n->op >= 0 && n->op < OP_COUNT)
        diag_error(V->d, loc, "verifier: %s%%%s (%s): %s", V->where, V->vn.v[i], ir_ops[n->op].name, b.s);
    else
        diag_error(V->d, loc, "verifier: %s%s", V->where, b.s);
    sb_free(&b);
    V->ok = false;
}

static const char *type_str(const Node *n, char *buf)
{
    return ir_type_str(n->dt, &n->shape, buf, 160);
}

/* Operands exist, belong to the graph and come before node i. */
static bool check_operands(Verifier *V, int i)
{
    Node *n = V->g->nodes[i];
    if (n->nin < 0 || (n->nin > 0 && !n->in)) {
        verr(V, i, "bad operand list (%d operands)", n->nin);
        return false;
    }
    bool ok = true;
    for (int j = 0; j < n->nin; j++) {
        int p = map_get(&V->map, n->in[j]);
        if (p < 0) {
            verr(V, i, "operand %d is %s", j, n->in[j] ? "not a node of this graph" : "missing");
            ok = false;
        } else if (p >= i) {
            verr(V, i, "operand %d (%%%s) is defined %s its use", j, V->vn.v[p], p == i ? "by" : "after");
            ok = false;
        }
    }
    const OpInfo *oi = &ir_ops[n->op];
    if (oi->arity >= 0 && n->nin != oi->arity) {
        verr(V, i, "takes %d operand%s, has %d", oi->arity, oi->arity == 1 ? "" : "s", n->nin);
        ok = false;
    }
    if (n->op == OP_CONCAT && n->nin < 1) {
        verr(V, i, "needs at least one operand");
        ok = false;
    }
    return ok;
}

/* Side result j of fused node i: the body's output j updates one of its
 * operands, a parameter of the result's type, in place (a loop that also
 * writes an optimizer slot). The graph checks that one update output
 * takes each (check_side_outputs). */
static bool check_side_result(Verifier *V, int i, int j)
{
    Node *n = V->g->nodes[i];
    const Output *o = &n->sub->outs[j];
    char t1[160], t2[160];
    if (o->kind != OUT_UPDATE || !o->target || o->target->op != OP_INPUT) {
        verr(V, i, "body output %d must be an update of a body input or a fresh result", j);
        return false;
    }
    if (ir_fused_reduction(n) || ir_fused_softmax(n)) {
        verr(V, i, "body output %d: a fused node that %s updates no operand", j,
             ir_fused_reduction(n) ? "ends with a reduction" : "is a softmax row kernel");
        return false;
    }
    Node *p = n->in[ir_fused_side_operand(n, j)];
    if (p->op != OP_PARAM) {
        verr(V, i, "body output %d updates operand %%%s, which is %s, not a param", j,
             V->vn.v[map_get(&V->map, p)], ir_ops[p->op].name);
        return false;
    }
    if (o->val->dt != n->dt || !ir_shape_eq(&o->val->shape, &n->shape)) {
        verr(V, i, "body output %d is %s but the fused result is %s", j, type_str(o->val, t1), type_str(n, t2));
        return false;
    }
    return true;
}

/* Fresh result j of fused node i (read by result nodes): a sum or mean of
 * the body's value in a GEMM epilogue or a softmax row kernel (a column
 * reduction, accumulated by the kernel's loop), or a softmax row kernel's
 * log_softmax_dot of the same logits along the same axis. */
static bool check_fresh_result(Verifier *V, int i, int j)
{
    Node *n = V->g->nodes[i];
    Node *x = n->sub->outs[j].val, *grad = ir_fused_softmax(n);
    if (x->op == OP_LOG_SOFTMAX_DOT) {
        if (grad && x->in[0] == grad->in[0] && x->a.axes[0] == grad->a.axes[0])
            return true;
        verr(V, i, "body output %d: a log_softmax_dot result needs log_softmax_grad of the same logits "
                   "and axis as the body's value", j);
        return false;
    }
    if ((x->op == OP_REDUCE_SUM || x->op == OP_REDUCE_MEAN) && x->in[0] == n->sub->outs[0].val &&
        (ir_fused_anchor(n) || grad))
        return true;
    verr(V, i, "body output %d must be an update of a body input or a fresh result: a sum or mean of "
               "the value of a GEMM epilogue or softmax row kernel, or its log_softmax_dot", j);
    return false;
}

/* Is body node x a fresh result of fused node n? */
static bool is_fresh_output(const Node *n, const Node *x)
{
    for (int j = 1; j < n->sub->nouts; j++)
        if (n->sub->outs[j].val == x && ir_fused_fresh(n, j))
            return true;
    return false;
}

/* Body ops the loop evaluates per element read no reduction and no
 * softmax row op: those are outputs only. */
static bool row_op(const Node *x)
{
    return ir_op_has(x->op, OPF_REDUCTION) || x->op == OP_LOG_SOFTMAX_DOT ||
           x->op == OP_LOG_SOFTMAX_GRAD;
}

/* One body node of fused node i; counts matmuls and softmax row ops. */
static bool check_body_node(Verifier *V, int i, Node *x, int *anchors, int *rows)
{
    Node *n = V->g->nodes[i];
    Graph *b = n->sub;
    bool reduction = ir_op_has(x->op, OPF_REDUCTION);
    for (int j = 0; j < x->nin && !reduction; j++) /* a reduction's operand: check_fresh_result */
        if (row_op(x->in[j])) {
            verr(V, i, "body op %s reads %s, which only a body output may be", ir_ops[x->op].name,
                 ir_ops[x->in[j]->op].name);
            return false;
        }
    if (reduction) {
        bool final = x == b->outs[0].val && x->in[0]->op != OP_INPUT;
        if (!final && !is_fresh_output(n, x)) {
            verr(V, i, "body contains %s that is neither its final reduction (the output, reading an "
                       "elementwise op) nor a fresh result", ir_ops[x->op].name);
            return false;
        }
    } else if (x->op == OP_MATMUL) {
        if (++*anchors > 1 || x->in[0]->op != OP_INPUT || x->in[1]->op != OP_INPUT ||
            !ir_shape_eq(&x->shape, &n->shape) || x->shape.rank != 2) {
            verr(V, i, "body contains a matmul that cannot be its GEMM (one at most, reading "
                       "two body inputs, with the fused result's shape)");
            return false;
        }
    } else if (x->op == OP_LOG_SOFTMAX_GRAD || x->op == OP_LOG_SOFTMAX_DOT) {
        bool grad = x->op == OP_LOG_SOFTMAX_GRAD;
        if (++*rows > 2 || x->in[0]->op != OP_INPUT || (grad ? x != b->outs[0].val : !is_fresh_output(n, x))) {
            verr(V, i, "body contains %s that cannot be its softmax row kernel (the value is one "
                       "log_softmax_grad, a fresh result at most one log_softmax_dot, of body input logits)",
                 ir_ops[x->op].name);
            return false;
        }
    } else if (x->op != OP_CONST && x->op != OP_INPUT && !ir_op_is_elementwise(x->op)) {
        verr(V, i, "body contains %s, which is not elementwise", ir_ops[x->op].name);
        return false;
    }
    return true;
}

/* A fused body: a valid graph of inputs, constants and elementwise ops
 * whose inputs match the operands in order; besides, one of
 *   - at most one matmul of two inputs with the result's shape (the GEMM
 *     whose epilogue the elementwise ops are, see ir_fused_anchor);
 *   - a reduction as the output (over the elementwise ops, see
 *     ir_fused_reduction);
 *   - log_softmax_grad of a body input as the output (a softmax row
 *     kernel, see ir_fused_softmax).
 * Outputs after the first are side results: updates of body inputs or
 * fresh results (check_side_result, check_fresh_result). */
static bool check_fused(Verifier *V, int i)
{
    Node *n = V->g->nodes[i];
    Graph *b = n->sub;
    if (!b) {
        verr(V, i, "fused node without a body");
        return false;
    }
    char *where = arena_printf(V->vn.arena, "%sin the body of fused %%%s: ", V->where, V->vn.v[i]);
    if (!verify_graph(b, V->d, where)) {
        V->ok = false;
        return false;
    }
    if (b->nouts < 1) {
        verr(V, i, "body has no output");
        return false;
    }
    int k = 0, anchors = 0, rows = 0;
    bool ok = true;
    for (int j = 0; j < b->nnodes; j++) {
        Node *x = b->nodes[j];
        if (x->op == OP_INPUT) {
            char t1[160], t2[160];
            if (k < n->nin && (x->dt != n->in[k]->dt || !ir_shape_eq(&x->shape, &n->in[k]->shape))) {
                verr(V, i, "body input %d is %s but operand %d is %s", k, type_str(x, t1), k,
                     type_str(n->in[k], t2));
                ok = false;
            }
            k++;
        }
        ok = check_body_node(V, i, x, &anchors, &rows) && ok;
    }
    if (k != n->nin) {
        verr(V, i, "body has %d input%s for %d operand%s", k, k == 1 ? "" : "s", n->nin,
             n->nin == 1 ? "" : "s");
        ok = false;
    }
    int kinds = (anchors > 0) + (ir_fused_reduction(n) != NULL) + (ir_fused_softmax(n) != NULL);
    if (ok && kinds > 1) {
        verr(V, i, "body is at most one of a GEMM epilogue, a reduction and a softmax row kernel");
        ok = false;
    }
    for (int j = 1; ok && j < b->nouts; j++)
        ok = ir_fused_fresh(n, j) ? check_fresh_result(V, i, j) : check_side_result(V, i, j);
    return ok;
}

/* A loop body: a valid graph without parameters, random or phase ops,
 * whose inputs match the operands (sequences one step each, see
 * ir_body_input_shape); its outputs are first the updates of the carried
 * states, output j of body input j with that input's type, then per-step
 * results (plain values of rank 1 or more). */
static bool check_loop(Verifier *V, int i)
{
    Node *n = V->g->nodes[i];
    Graph *b = n->sub;
    if (!b) {
        verr(V, i, "loop without a body");
        return false;
    }
    char *where = arena_printf(V->vn.arena, "%sin the body of loop %%%s: ", V->where, V->vn.v[i]);
    if (!verify_graph(b, V->d, where)) {
        V->ok = false;
        return false;
    }
    int nc = ir_loop_ncarry(n);
    if (nc < 1) {
        verr(V, i, "loop body has no update output (a carried state)");
        return false;
    }
    bool ok = true;
    int k = 0;
    Node **inputs = xcalloc((size_t)b->nnodes + 1, sizeof(Node *));
    for (int j = 0; j < b->nnodes; j++) {
        Node *x = b->nodes[j];
        if (x->op == OP_PARAM || x->op == OP_PHASE || ir_op_has(x->op, OPF_RANDOM)) {
            verr(V, i, "loop body contains %s; a loop body takes parameters as operands and has no %s",
                 ir_ops[x->op].name, x->op == OP_PARAM ? "parameters" : "random or mode-dependent ops");
            ok = false;
        }
        if (x->op != OP_INPUT)
            continue;
        char t1[160], t2[160];
        if (k < n->nin) {
            Shape want = ir_body_input_shape(n, k);
            if (x->dt != n->in[k]->dt || !ir_shape_eq(&x->shape, &want)) {
                verr(V, i, "loop body input %d is %s but operand %d gives %s", k, type_str(x, t1), k,
                     ir_type_str(n->in[k]->dt, &want, t2, sizeof t2));
                ok = false;
            }
        }
        inputs[k++] = x;
    }
    if (k != n->nin) {
        verr(V, i, "loop body has %d input%s for %d operand%s", k, k == 1 ? "" : "s", n->nin, n->nin == 1 ? "" : "s");
        ok = false;
    }
    for (int j = 0; ok && j < b->nouts; j++) {
        const Output *o = &b->outs[j];
        if (j < nc && o->target != inputs[j]) {
            verr(V, i, "loop body output %d updates %s, not body input %d (the carried states lead the operands)", j,
                 o->target && o->target->op == OP_INPUT ? "another input" : "no input", j);
            ok = false;
        } else if (j >= nc && (o->kind != OUT_VALUE || o->target || o->part || o->train_only)) {
            verr(V, i, "loop body output %d must be a plain per-step value: the updates of the carried states come first", j);
            ok = false;
        } else if (j >= nc && (o->val->shape.rank < 1 || o->val->shape.rank >= IR_MAXRANK)) {
            verr(V, i, "loop body output %d is a per-step result of rank %d; it needs a rank from 1 to %d", j,
                 o->val->shape.rank, IR_MAXRANK - 1);
            ok = false;
        }
    }
    xfree(inputs);
    return ok;
}

/* Shape inference on a copy of node i must reproduce its dtype and shape. */
static void check_type(Verifier *V, int i)
{
    Node *n = V->g->nodes[i];
    Node c = *n;
    Diags tmp;
    diags_init(&tmp);
    char t1[160], t2[160];
    if (!ir_infer(&c, &tmp))
        verr(V, i, "shape inference fails: %s", tmp.n ? tmp.v[0].msg : "invalid operands or attributes");
    else if (c.dt != n->dt || !ir_shape_eq(&c.shape, &n->shape))
        verr(V, i, "has type %s but its operands and attributes give %s", type_str(n, t1), type_str(&c, t2));
    diags_free(&tmp);
}

static void check_leaf_name(Verifier *V, int i, NameSet *inputs, NameSet *params)
{
    Node *n = V->g->nodes[i];
    if (n->op != OP_INPUT && n->op != OP_PARAM)
        return;
    /* A graph's own inputs and parameters bind N itself; a multiple N*k
     * is made by reshape (a fused or loop body's operands may have one). */
    for (int k = 0; !V->where[0] && k < n->shape.rank; k++)
        if (ir_dim_is_batch(n->shape.d[k]) && n->shape.d[k] != IR_DIM_N) {
            char t[128];
            verr(V, i, "has type %s: a graph's %s may have the batch dimension N but not a multiple of it",
                 type_str(n, t), n->op == OP_INPUT ? "inputs" : "parameters");
            break;
        }
    NameSet *s = n->op == OP_INPUT ? inputs : params;
    if (!n->a.name) {
        verr(V, i, "has no name");
    } else if (ir_nameset_has(s, n->a.name)) {
        verr(V, i, "duplicate %s name \"%s\"", ir_ops[n->op].name, n->a.name);
    } else {
        ir_nameset_add(s, n->a.name);
    }
}

static void check_node(Verifier *V, int i, NameSet *inputs, NameSet *params)
{
    Node *n = V->g->nodes[i];
    if (!n) {
        verr(V, -1, "node %d is missing", i);
        return;
    }
    if (n->op < 0 || n->op >= OP_COUNT) {
        verr(V, -1, "node %d has an invalid op %d", i, (int)n->op);
        return;
    }
    if (n->id != i)
        verr(V, i, "has id %d at position %d", n->id, i);
    if (n->dt < 0 || n->dt >= DT_COUNT) {
        verr(V, i, "has an invalid dtype %d", (int)n->dt);
        return;
    }
    if (n->shape.rank < 0 || n->shape.rank > IR_MAXRANK) {
        verr(V, i, "has an invalid rank %d", n->shape.rank);
        return;
    }
    check_leaf_name(V, i, inputs, params);
    if (n->sub && n->op != OP_FUSED && n->op != OP_LOOP)
        verr(V, i, "has a body but is not a fused node or a loop");
    if (!check_operands(V, i))
        return;
    if (n->op == OP_FUSED && !check_fused(V, i))
        return;
    if (n->op == OP_LOOP && !check_loop(V, i))
        return;
    check_type(V, i);
}

static const char *out_desc(Verifier *V, const Output *o)
{
    const char *k = o->kind >= 0 && o->kind <= OUT_UPDATE ? ir_out_kind_names[o->kind] : "?";
    return arena_printf(V->vn.arena, "output %s%s%s%s", k, o->name ? " \"" : "", o->name ? o->name : "",
                        o->name ? "\"" : "");
}

static void check_output(Verifier *V, int k, int *nloss)
{
    Output *o = &V->g->outs[k];
    const char *what = out_desc(V, o);
    int p = map_get(&V->map, o->val);
    if (o->kind < 0 || o->kind > OUT_UPDATE) {
        verr(V, -1, "output %d has an invalid kind %d", k, (int)o->kind);
        return;
    }
    if (p < 0) {
        verr(V, -1, "%s refers to %s", what, o->val ? "a node outside the graph" : "no node");
        return;
    }
    Node *v = o->val;
    char t1[160], t2[160];
    if (o->part && (v->op != OP_FUSED || !v->sub || o->part < 1 || o->part >= v->sub->nouts)) {
        verr(V, p, "%s reads side result %d of a node that does not have it", what, o->part);
        return;
    }
    const Output *side = o->part ? &v->sub->outs[o->part] : NULL;
    if (side && ir_fused_fresh(v, o->part)) {
        verr(V, p, "%s takes result %d, a fresh result, which a result node reads (result(%%%s) {index=%d})",
             what, o->part, V->vn.v[p], o->part);
        return;
    }
    if (side && (side->kind != OUT_UPDATE || !side->target || side->target->op != OP_INPUT))
        return; /* check_fused reports the body output */
    Node *overwrites = side ? v->in[ir_fused_side_operand(v, o->part)] : NULL;
    if (overwrites && (o->kind != OUT_UPDATE || o->target != overwrites)) {
        verr(V, p, "%s: side result %d updates %%%s in place, so it can only be that param's update", what,
             o->part, V->vn.v[map_get(&V->map, overwrites)]);
        return;
    }
    if (o->kind == OUT_LOSS) {
        bool one = ir_dtype_is_float(v->dt) && ir_shape_numel(&v->shape, 2) == 1;
        if (!one)
            verr(V, p, "%s must be a floating-point scalar, is %s", what, type_str(v, t1));
        if (++*nloss == 2)
            verr(V, p, "%s: a graph has at most one loss output", what);
    }
    if (o->kind != OUT_GRAD && o->kind != OUT_UPDATE)
        return;
    int tp = map_get(&V->map, o->target);
    if (tp < 0) {
        verr(V, p, "%s has %s target", what, o->target ? "a foreign" : "no");
        return;
    }
    Node *t = o->target;
    if (t->op != OP_PARAM && t->op != OP_INPUT)
        verr(V, p, "%s: target %%%s is %s, not a param or input", what, V->vn.v[tp], ir_ops[t->op].name);
    else if (t->dt != v->dt || !ir_shape_eq(&t->shape, &v->shape))
        verr(V, p, "%s is %s but its target %%%s is %s", what, type_str(v, t1), V->vn.v[tp],
             type_str(t, t2));
}

/* The first node after position i that reads p, or -1. */
static int reader_after(const Graph *g, int i, const Node *p)
{
    for (int u = i + 1; u < g->nnodes; u++)
        for (int k = 0; k < g->nodes[u]->nin; k++)
            if (g->nodes[u]->in[k] == p)
                return u;
    return -1;
}

/* Every side update of a fused node is taken by exactly one update
 * output, and no node after the fused node reads the param it
 * overwrites. Linear in the graph: the outputs of each node are chained
 * and the last reader of each node is known up front. */
static void check_side_outputs(Verifier *V)
{
    Graph *g = V->g;
    int *first_out = xmalloc(((size_t)g->nnodes + 1) * sizeof(int));
    int *next_out = xmalloc(((size_t)g->nouts + 1) * sizeof(int));
    int *last_read = xmalloc(((size_t)g->nnodes + 1) * sizeof(int));
    for (int i = 0; i < g->nnodes; i++)
        first_out[i] = last_read[i] = -1;
    for (int k = g->nouts - 1; k >= 0; k--) {
        int p = map_get(&V->map, g->outs[k].val);
        next_out[k] = first_out[p];
        first_out[p] = k;
    }
    for (int u = 0; u < g->nnodes; u++)
        for (int k = 0; k < g->nodes[u]->nin; k++)
            last_read[map_get(&V->map, g->nodes[u]->in[k])] = u;
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        for (int j = 1; n->op == OP_FUSED && j < n->sub->nouts; j++) {
            if (ir_fused_fresh(n, j))
                continue;
            int taken = 0;
            for (int k = first_out[i]; k >= 0; k = next_out[k])
                taken += g->outs[k].part == j;
            if (taken != 1)
                verr(V, i, "side result %d is taken by %d update outputs, must be by one", j, taken);
            Node *p = n->in[ir_fused_side_operand(n, j)];
            int pp = map_get(&V->map, p);
            if (last_read[pp] > i) {
                verr(V, reader_after(g, i, p), "reads %%%s after fused %%%s overwrote it (side result %d)",
                     V->vn.v[pp], V->vn.v[i], j);
                goto out;
            }
        }
    }
out:
    xfree(first_out);
    xfree(next_out);
    xfree(last_read);
}

static bool verify_graph(Graph *g, Diags *d, const char *where)
{
    Verifier V = {g, d, where, {0}, {0}, true};
    if (g->nnodes < 0 || (g->nnodes > 0 && !g->nodes)) {
        diag_error(d, (SrcLoc){NULL, 0, 0}, "verifier: %sbad node list", where);
        return false;
    }
    ir_names_build(&V.vn, g);
    map_build(&V.map, g);
    NameSet inputs, params;
    ir_nameset_init(&inputs);
    ir_nameset_init(&params);
    for (int i = 0; i < g->nnodes; i++)
        check_node(&V, i, &inputs, &params);
    int nloss = 0;
    for (int k = 0; k < g->nouts; k++)
        check_output(&V, k, &nloss);
    if (V.ok)
        check_side_outputs(&V);
    ir_nameset_free(&inputs);
    ir_nameset_free(&params);
    xfree(V.map.key);
    xfree(V.map.pos);
    ir_names_free(&V.vn);
    return V.ok;
}

bool ir_verify(Graph *g, Diags *d)
{
    return verify_graph(g, d, "");
}
