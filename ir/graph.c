/* Graph construction and rewriting: the op table, dtypes, shapes,
 * initializer names, node creation, use counts, topological order, DCE. */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

const OpInfo ir_ops[OP_COUNT] = {
#define OP(E, name, arity, cls, flags, ...) [OP_##E] = {#name, arity, cls, flags},
#include "ops.def"
#undef OP
};

/* A new row of ops.def: go through the checklist for adding an op
 * (HACKING.md), then count it here. */
_Static_assert(OP_COUNT == 61, "ops.def gained or lost an op");

int ir_op_from_name(const char *s)
{
    for (int i = 0; i < OP_COUNT; i++)
        if (strcmp(ir_ops[i].name, s) == 0)
            return i;
    return -1;
}

bool ir_op_is_elementwise(Op op)
{
    OpClass c = ir_ops[op].cls;
    return c == OPC_UNARY || c == OPC_BINARY || c == OPC_TERNARY;
}

static const char *dtype_names[DT_COUNT] = {"f32", "f64", "i32"};

const char *ir_dtype_name(DType t)
{
    return t < DT_COUNT ? dtype_names[t] : "?";
}

int ir_dtype_size(DType t)
{
    return t == DT_F64 ? 8 : 4;
}

bool ir_dtype_is_float(DType t)
{
    return t == DT_F32 || t == DT_F64;
}

Shape ir_shape0(void)
{
    Shape s;
    memset(&s, 0, sizeof s);
    return s;
}

Shape ir_shape(int rank, const int64_t *d)
{
    Shape s = ir_shape0();
    MC_ASSERT(rank >= 0 && rank <= IR_MAXRANK);
    s.rank = rank;
    for (int i = 0; i < rank; i++)
        s.d[i] = d[i];
    return s;
}

Shape ir_shape1(int64_t a)
{
    return ir_shape(1, &a);
}

Shape ir_shape2(int64_t a, int64_t b)
{
    int64_t d[2] = {a, b};
    return ir_shape(2, d);
}

bool ir_shape_eq(const Shape *a, const Shape *b)
{
    if (a->rank != b->rank)
        return false;
    for (int i = 0; i < a->rank; i++)
        if (a->d[i] != b->d[i])
            return false;
    return true;
}

bool ir_shape_has_n(const Shape *s)
{
    for (int i = 0; i < s->rank; i++)
        if (ir_dim_is_batch(s->d[i]))
            return true;
    return false;
}

int64_t ir_dim_eval(int64_t d, int64_t n)
{
    int64_t v;
    if (d >= 0)
        return d;
    if (n < 0 || mul_overflow_i64(-d, n, &v))
        return -1;
    return v;
}

int64_t ir_shape_numel(const Shape *s, int64_t n)
{
    int64_t p = 1;
    for (int i = 0; i < s->rank; i++) {
        int64_t d = ir_dim_eval(s->d[i], n);
        if (d < 0 || mul_overflow_i64(p, d, &p))
            return -1;
    }
    return p;
}

int64_t ir_dims_numel(int rank, const int64_t *d)
{
    int64_t extent = 1;
    bool empty = false;
    for (int i = 0; i < rank; i++) {
        if (d[i] < -IR_MAX_ELEMS)
            return -1;
        int64_t k = ir_dim_factor(d[i]);
        if (k == 0) {
            empty = true;
            continue;
        }
        if (k > IR_MAX_ELEMS / extent)
            return -1;
        extent *= k;
    }
    return empty ? 0 : extent;
}

bool ir_shape_valid(const Shape *s)
{
    return s->rank >= 0 && s->rank <= IR_MAXRANK && ir_dims_numel(s->rank, s->d) >= 0;
}

char *ir_shape_str(const Shape *s, char *buf, size_t n)
{
    size_t k = 0;
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int i = 0; i < s->rank && k < n; i++) {
        if (s->d[i] == IR_DIM_N)
            k += (size_t)snprintf(buf + k, n - k, "%sN", i ? "," : "");
        else if (ir_dim_is_batch(s->d[i]))
            k += (size_t)snprintf(buf + k, n - k, "%sN*%lld", i ? "," : "", (long long)ir_dim_factor(s->d[i]));
        else
            k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? "," : "", (long long)s->d[i]);
    }
    if (k < n)
        snprintf(buf + k, n - k, "]");
    return buf;
}

char *ir_type_str(DType t, const Shape *s, char *buf, size_t n)
{
    char sh[128];
    snprintf(buf, n, "%s%s", ir_dtype_name(t), ir_shape_str(s, sh, sizeof sh));
    return buf;
}

static const char *init_names[INIT_COUNT] = {
    [INIT_NONE] = "none",
    [INIT_ZEROS] = "zeros",
    [INIT_ONES] = "ones",
    [INIT_CONSTANT] = "constant",
    [INIT_NORMAL] = "normal",
    [INIT_UNIFORM] = "uniform",
    [INIT_TRUNC_NORMAL] = "truncated_normal",
    [INIT_GLOROT_UNIFORM] = "glorot_uniform",
    [INIT_GLOROT_NORMAL] = "glorot_normal",
    [INIT_HE_UNIFORM] = "he_uniform",
    [INIT_HE_NORMAL] = "he_normal",
    [INIT_LECUN_NORMAL] = "lecun_normal",
    [INIT_LECUN_UNIFORM] = "lecun_uniform",
    [INIT_ORTHOGONAL] = "orthogonal",
    [INIT_UNIT_FORGET_BIAS] = "unit_forget_bias",
};

const char *ir_init_name(InitKind k)
{
    return k < INIT_COUNT ? init_names[k] : "?";
}

int ir_init_from_name(const char *s)
{
    for (int i = 0; i < INIT_COUNT; i++)
        if (strcmp(init_names[i], s) == 0)
            return i;
    if (strcmp(s, "xavier_uniform") == 0)
        return INIT_GLOROT_UNIFORM;
    if (strcmp(s, "xavier_normal") == 0)
        return INIT_GLOROT_NORMAL;
    return -1;
}

void ir_fans(const Shape *s, double *fan_in, double *fan_out)
{
    if (s->rank == 0) {
        *fan_in = *fan_out = 1;
    } else if (s->rank == 1) {
        *fan_in = *fan_out = (double)s->d[0];
    } else if (s->rank == 2) {
        *fan_in = (double)s->d[0];
        *fan_out = (double)s->d[1];
    } else {
        double rf = 1;
        for (int i = 0; i < s->rank - 2; i++)
            rf *= (double)s->d[i];
        *fan_in = rf * (double)s->d[s->rank - 2];
        *fan_out = rf * (double)s->d[s->rank - 1];
    }
}

Attrs ir_attrs(void)
{
    Attrs a;
    memset(&a, 0, sizeof a);
    a.trainable = true;
    for (int i = 0; i < IR_MAXRANK; i++)
        a.step[i] = 1;
    a.stride[0] = a.stride[1] = 1;
    a.window[0] = a.window[1] = 1;
    a.to = DT_F32;
    a.alpha = 1;
    return a;
}

void ir_train_defaults(TrainConfig *t)
{
    memset(t, 0, sizeof *t);
    t->opt = OPT_ADAM;
    t->lr = 0.001;
    t->beta1 = 0.9;
    t->beta2 = 0.999;
    t->eps = 1e-7;
    t->rho = 0.9;
}

void ir_run_defaults(RunSettings *r)
{
    memset(r, 0, sizeof *r);
    r->batch = 32;
    r->epochs = 1;
    r->sched = SCHED_CONSTANT;
    r->sched_step = 1;
    r->sched_gamma = 0.1;
    r->decay_steps = 1;
    r->decay_rate = 0.96;
    r->seed = 0;
    ir_es_defaults(r);
    ir_ckpt_defaults(r);
    ir_rlr_defaults(r);
    r->es.monitor = r->ckpt.monitor = r->rlr.monitor = NULL;
}

void ir_es_defaults(RunSettings *r)
{
    r->es.monitor = "val_loss";
    r->es.patience = 0;
    r->es.min_delta = 0;
    r->es.mode = MON_AUTO;
    r->es.restore_best = false;
}

void ir_ckpt_defaults(RunSettings *r)
{
    r->ckpt.monitor = "val_loss";
    r->ckpt.path = NULL;
    r->ckpt.best_only = false;
    r->ckpt.mode = MON_AUTO;
}

void ir_rlr_defaults(RunSettings *r)
{
    r->rlr.monitor = "val_loss";
    r->rlr.factor = 0.1;
    r->rlr.patience = 10;
    r->rlr.mode = MON_AUTO;
    r->rlr.min_delta = 1e-4;
    r->rlr.min_lr = 0;
    r->rlr.cooldown = 0;
}

bool ir_monitor_max(const char *monitor)
{
    const char *n = strncmp(monitor, "val_", 4) == 0 ? monitor + 4 : monitor;
    return strstr(n, "acc") || strstr(n, "auc") || strncmp(n, "precision", 9) == 0 ||
           strncmp(n, "recall", 6) == 0 || strncmp(n, "f1", 2) == 0;
}

Graph *ir_graph_new(const char *name)
{
    Graph *g = xcalloc(1, sizeof(Graph));
    g->arena = arena_new();
    g->name = arena_strdup(g->arena, name ? name : "model");
    ir_train_defaults(&g->train);
    return g;
}

void ir_graph_free(Graph *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i]->sub)
            ir_graph_free(g->nodes[i]->sub);
    xfree(g->nodes);
    xfree(g->outs);
    arena_free(g->arena);
    xfree(g);
}

static Node *new_node(Graph *g, Op op, Node **in, int nin, const Attrs *a, SrcLoc loc)
{
    Node *n = arena_alloc(g->arena, sizeof(Node));
    n->op = op;
    n->nin = nin;
    if (nin) {
        n->in = arena_alloc(g->arena, (size_t)nin * sizeof(Node *));
        memcpy(n->in, in, (size_t)nin * sizeof(Node *));
    }
    n->a = a ? *a : ir_attrs();
    if (n->a.name)
        n->a.name = arena_strdup(g->arena, n->a.name);
    n->loc = loc;
    if (loc.file)
        n->loc.file = ir_intern_file(g, loc.file);
    return n;
}

const char *ir_intern_file(Graph *g, const char *file)
{
    for (int i = 0; i < g->nfiles; i++)
        if (g->files[i] == file || strcmp(g->files[i], file) == 0)
            return g->files[i];
    const char **v = arena_alloc(g->arena, (size_t)(g->nfiles + 1) * sizeof(char *));
    if (g->nfiles)
        memcpy(v, g->files, (size_t)g->nfiles * sizeof(char *));
    v[g->nfiles] = arena_strdup(g->arena, file);
    g->files = v;
    return g->files[g->nfiles++];
}

static void append(Graph *g, Node *n)
{
    n->id = g->nnodes;
    VEC_PUSH(g->nodes, g->nnodes, g->cap, n);
}

Node *ir_op(Graph *g, Op op, Node **in, int nin, const Attrs *a, SrcLoc loc, Diags *d)
{
    for (int i = 0; i < nin; i++)
        if (!in[i])
            return NULL; /* an operand already failed; its error was reported */
    Node *n = new_node(g, op, in, nin, a, loc);
    /* Diagnostics keep the caller's file-name pointer (owned by the Diags
     * or the caller), never the graph's copy, which dies with the graph. */
    SrcLoc own = n->loc;
    n->loc = loc;
    bool ok = ir_infer(n, d);
    n->loc = own;
    if (!ok)
        return NULL;
    append(g, n);
    return n;
}

Node *ir_unary(Graph *g, Op op, Node *x, SrcLoc loc, Diags *d)
{
    return ir_op(g, op, &x, 1, NULL, loc, d);
}

Node *ir_binary(Graph *g, Op op, Node *x, Node *y, SrcLoc loc, Diags *d)
{
    Node *in[2] = {x, y};
    return ir_op(g, op, in, 2, NULL, loc, d);
}

/* Body inputs in order must have the dtypes and shapes
 * ir_body_input_shape gives for the operands of n (its sub the body). */
static bool body_matches(const Node *n, SrcLoc loc, Diags *d)
{
    Graph *body = n->sub;
    const char *what = ir_ops[n->op].name;
    if (!body || body->nouts < 1) {
        diag_error(d, loc, "%s node without a body output", what);
        return false;
    }
    if (n->op == OP_LOOP && (ir_loop_ncarry(n) < 1 || ir_loop_ncarry(n) + n->a.nseq > n->nin)) {
        diag_error(d, loc, "loop with %d carried state%s and %d sequence%s has %d operand%s", ir_loop_ncarry(n),
                   ir_loop_ncarry(n) == 1 ? "" : "s", n->a.nseq, n->a.nseq == 1 ? "" : "s", n->nin,
                   n->nin == 1 ? "" : "s");
        return false;
    }
    int k = 0;
    for (int i = 0; i < body->nnodes; i++) {
        Node *b = body->nodes[i];
        if (b->op != OP_INPUT)
            continue;
        Shape want = k < n->nin ? ir_body_input_shape(n, k) : b->shape;
        if (k < n->nin && (b->dt != n->in[k]->dt || !ir_shape_eq(&b->shape, &want))) {
            char t1[128], t2[128];
            diag_error(d, loc, "%s body input %d is %s but operand %d %s %s", what, k,
                       ir_type_str(b->dt, &b->shape, t1, sizeof t1), k, n->op == OP_LOOP ? "gives" : "is",
                       ir_type_str(n->in[k]->dt, &want, t2, sizeof t2));
            return false;
        }
        k++;
    }
    if (k != n->nin) {
        diag_error(d, loc, "%s body has %d input%s but the node has %d operand%s", what, k,
                   k == 1 ? "" : "s", n->nin, n->nin == 1 ? "" : "s");
        return false;
    }
    return true;
}

static Node *body_node(Graph *g, Op op, Graph *body, Node **in, int nin, const Attrs *a, SrcLoc loc, Diags *d)
{
    for (int i = 0; i < nin; i++)
        if (!in[i]) {
            ir_graph_free(body);
            return NULL;
        }
    Node tmp = {.op = op, .nin = nin, .in = in, .a = a ? *a : ir_attrs(), .sub = body};
    if (op == OP_LOOP && !ir_infer(&tmp, d)) {
        ir_graph_free(body);
        return NULL;
    }
    if (!body_matches(&tmp, loc, d)) {
        ir_graph_free(body);
        return NULL;
    }
    Node *n = new_node(g, op, in, nin, a, loc);
    n->sub = body;
    bool ok = ir_infer(n, d);
    MC_ASSERT(ok); /* a body with an output always gives a type */
    append(g, n);
    return n;
}

Node *ir_fused(Graph *g, Graph *body, Node **in, int nin, SrcLoc loc, Diags *d)
{
    return body_node(g, OP_FUSED, body, in, nin, NULL, loc, d);
}

Node *ir_loop(Graph *g, Graph *body, Node **in, int nin, int nseq, bool reverse, SrcLoc loc, Diags *d)
{
    Attrs a = ir_attrs();
    a.nseq = nseq;
    a.reverse = reverse;
    return body_node(g, OP_LOOP, body, in, nin, &a, loc, d);
}

int ir_loop_ncarry(const Node *loop)
{
    int k = 0;
    while (loop->sub && k < loop->sub->nouts && loop->sub->outs[k].kind == OUT_UPDATE)
        k++;
    return k;
}

int64_t ir_loop_steps(const Node *loop)
{
    int k = ir_loop_ncarry(loop);
    return k < loop->nin && loop->in[k]->shape.rank >= 2 ? loop->in[k]->shape.d[1] : 0;
}

Shape ir_body_input_shape(const Node *n, int k)
{
    Shape s = n->in[k]->shape;
    int c = n->op == OP_LOOP ? ir_loop_ncarry(n) : 0;
    if (n->op == OP_LOOP && k >= c && k < c + n->a.nseq && s.rank >= 2) {
        for (int i = 1; i + 1 < s.rank; i++)
            s.d[i] = s.d[i + 1];
        s.d[--s.rank] = 0;
    }
    return s;
}

bool ir_loop_result_type(const Node *n, int j, DType *dt, Shape *s)
{
    const Node *v = n->sub->outs[j].val;
    *dt = v->dt;
    *s = v->shape;
    if (j < ir_loop_ncarry(n))
        return true;
    if (s->rank < 1 || s->rank >= IR_MAXRANK)
        return false;
    for (int i = s->rank; i > 1; i--)
        s->d[i] = s->d[i - 1];
    s->d[1] = ir_loop_steps(n);
    s->rank++;
    return true;
}

Node *ir_fused_anchor(const Node *fused)
{
    if (fused->op != OP_FUSED || !fused->sub)
        return NULL;
    for (int i = 0; i < fused->sub->nnodes; i++)
        if (fused->sub->nodes[i]->op == OP_MATMUL)
            return fused->sub->nodes[i];
    return NULL;
}

Node *ir_fused_reduction(const Node *fused)
{
    if (fused->op != OP_FUSED || !fused->sub || fused->sub->nouts < 1)
        return NULL;
    Node *r = fused->sub->outs[0].val;
    return ir_op_has(r->op, OPF_REDUCTION) ? r : NULL;
}

Node *ir_fused_softmax(const Node *fused)
{
    if (fused->op != OP_FUSED || !fused->sub || fused->sub->nouts < 1)
        return NULL;
    Node *r = fused->sub->outs[0].val;
    return r->op == OP_LOG_SOFTMAX_GRAD ? r : NULL;
}

bool ir_fused_fresh(const Node *fused, int j)
{
    const Output *o = &fused->sub->outs[j];
    return j >= 1 && o->kind == OUT_VALUE && !o->target;
}

int ir_fused_input_index(const Node *fused, const Node *x)
{
    int k = 0;
    for (int i = 0; i < fused->sub->nnodes; i++) {
        const Node *b = fused->sub->nodes[i];
        if (b == x)
            return k;
        k += b->op == OP_INPUT;
    }
    ICE("node is not an input of the fused body");
}

int ir_fused_side_operand(const Node *fused, int j)
{
    return ir_fused_input_index(fused, fused->sub->outs[j].target);
}

Node *ir_input(Graph *g, const char *name, DType t, Shape s, SrcLoc loc)
{
    Attrs a = ir_attrs();
    a.name = name;
    a.shape = s;
    Node *n = new_node(g, OP_INPUT, NULL, 0, &a, loc);
    n->dt = t;
    n->shape = s;
    append(g, n);
    return n;
}

Node *ir_param(Graph *g, const char *name, DType t, Shape s, Init init, bool trainable,
               ParamRole role, SrcLoc loc)
{
    Attrs a = ir_attrs();
    a.name = name;
    a.shape = s;
    a.init = init;
    a.trainable = trainable;
    a.role = role;
    Node *n = new_node(g, OP_PARAM, NULL, 0, &a, loc);
    n->dt = t;
    n->shape = s;
    append(g, n);
    return n;
}

Node *ir_const(Graph *g, DType t, double v, SrcLoc loc)
{
    Attrs a = ir_attrs();
    a.value = v;
    a.to = t;
    Node *n = new_node(g, OP_CONST, NULL, 0, &a, loc);
    n->dt = t;
    n->shape = ir_shape0();
    append(g, n);
    return n;
}

static Node *find_leaf(Graph *g, Op op, const char *name)
{
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i]->op == op && strcmp(g->nodes[i]->a.name, name) == 0)
            return g->nodes[i];
    return NULL;
}

Node *ir_find_param(Graph *g, const char *name)
{
    return find_leaf(g, OP_PARAM, name);
}

Node *ir_find_input(Graph *g, const char *name)
{
    return find_leaf(g, OP_INPUT, name);
}

void ir_add_output(Graph *g, OutKind k, const char *name, Node *val, Node *target, bool train_only)
{
    Output o = {k, arena_strdup(g->arena, name), val, target, train_only, 0};
    VEC_PUSH(g->outs, g->nouts, g->outcap, o);
}

void ir_replace_uses(Graph *g, Node *old, Node *with)
{
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (n == with)
            continue;
        for (int j = 0; j < n->nin; j++)
            if (n->in[j] == old)
                n->in[j] = with;
    }
    for (int i = 0; i < g->nouts; i++)
        if (g->outs[i].val == old)
            g->outs[i].val = with;
}

void ir_replace_all(Graph *g, Node **with)
{
    for (int i = 0; i < g->nnodes; i++) /* a replacement is earlier: resolved already */
        g->nodes[i]->id = i;
    for (int i = 0; i < g->nnodes; i++)
        if (with[i] && with[with[i]->id])
            with[i] = with[with[i]->id];
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        for (int j = 0; j < n->nin; j++)
            if (with[n->in[j]->id])
                n->in[j] = with[n->in[j]->id];
    }
    for (int i = 0; i < g->nouts; i++)
        if (with[g->outs[i].val->id])
            g->outs[i].val = with[g->outs[i].val->id];
}

int *ir_use_counts(Graph *g)
{
    int *uses = xcalloc((size_t)g->nnodes + 1, sizeof(int));
    for (int i = 0; i < g->nnodes; i++)
        g->nodes[i]->id = i;
    for (int i = 0; i < g->nnodes; i++)
        for (int j = 0; j < g->nodes[i]->nin; j++)
            uses[g->nodes[i]->in[j]->id]++;
    for (int i = 0; i < g->nouts; i++)
        uses[g->outs[i].val->id]++;
    return uses;
}

/* Depth-first post-order from each node in current order: keeps the
 * existing order wherever it is already valid. */
void ir_toposort(Graph *g)
{
    int n = g->nnodes;
    for (int i = 0; i < n; i++) {
        g->nodes[i]->iaux = 0; /* 0 new, 1 on stack, 2 done */
        g->nodes[i]->id = i;
    }
    Node **out = xmalloc((size_t)(n ? n : 1) * sizeof(Node *));
    int nout = 0;
    Node **stack = xmalloc((size_t)(n ? n : 1) * sizeof(Node *));
    int *next = xmalloc((size_t)(n ? n : 1) * sizeof(int));
    for (int r = 0; r < n; r++) {
        if (g->nodes[r]->iaux)
            continue;
        int sp = 0;
        stack[sp] = g->nodes[r];
        next[sp] = 0;
        g->nodes[r]->iaux = 1;
        sp++;
        while (sp) {
            Node *t = stack[sp - 1];
            if (next[sp - 1] < t->nin) {
                Node *c = t->in[next[sp - 1]++];
                if (c->iaux == 1)
                    ICE("cycle in graph at node %d", c->id);
                if (c->iaux == 0) {
                    c->iaux = 1;
                    stack[sp] = c;
                    next[sp] = 0;
                    sp++;
                }
            } else {
                t->iaux = 2;
                out[nout++] = t;
                sp--;
            }
        }
    }
    MC_ASSERT(nout == n);
    if (n) /* an empty graph may have no node array: no memcpy from or to NULL */
        memcpy(g->nodes, out, (size_t)n * sizeof(Node *));
    for (int i = 0; i < n; i++)
        g->nodes[i]->id = i;
    xfree(out);
    xfree(stack);
    xfree(next);
}

void ir_remove_dead(Graph *g)
{
    int n = g->nnodes;
    for (int i = 0; i < n; i++) {
        g->nodes[i]->id = i;
        g->nodes[i]->iaux = ir_ops[g->nodes[i]->op].cls == OPC_LEAF && g->nodes[i]->op != OP_CONST;
    }
    for (int i = 0; i < g->nouts; i++) {
        g->outs[i].val->iaux = 1;
        if (g->outs[i].target)
            g->outs[i].target->iaux = 1;
    }
    for (int i = n - 1; i >= 0; i--)
        if (g->nodes[i]->iaux)
            for (int j = 0; j < g->nodes[i]->nin; j++)
                g->nodes[i]->in[j]->iaux = 1;
    int k = 0;
    for (int i = 0; i < n; i++) {
        Node *t = g->nodes[i];
        if (t->iaux) {
            t->id = k;
            g->nodes[k++] = t;
        } else if (t->sub) {
            ir_graph_free(t->sub);
            t->sub = NULL;
        }
    }
    g->nnodes = k;
}

Graph *ir_clone(Graph *g)
{
    Graph *c = ir_graph_new(g->name);
    c->train = g->train;
    if (g->train.nfreeze) {
        c->train.freeze = arena_alloc(c->arena, (size_t)g->train.nfreeze * sizeof(char *));
        for (int i = 0; i < g->train.nfreeze; i++)
            c->train.freeze[i] = arena_strdup(c->arena, g->train.freeze[i]);
    }
    c->has_train = g->has_train;
    c->next_stream = g->next_stream;
    Node **map = xmalloc((size_t)(g->nnodes ? g->nnodes : 1) * sizeof(Node *));
    for (int i = 0; i < g->nnodes; i++) {
        Node *s = g->nodes[i];
        s->id = i;
        Node **in = s->nin ? xmalloc((size_t)s->nin * sizeof(Node *)) : NULL;
        for (int j = 0; j < s->nin; j++)
            in[j] = map[s->in[j]->id];
        Node *t = new_node(c, s->op, in, s->nin, &s->a, s->loc);
        xfree(in);
        t->dt = s->dt;
        t->shape = s->shape;
        t->label = arena_strdup(c->arena, s->label);
        if (s->sub)
            t->sub = ir_clone(s->sub);
        append(c, t);
        map[i] = t;
    }
    for (int i = 0; i < g->nouts; i++) {
        Output *o = &g->outs[i];
        ir_add_output(c, o->kind, o->name, map[o->val->id], o->target ? map[o->target->id] : NULL,
                      o->train_only);
        c->outs[c->nouts - 1].part = o->part;
    }
    xfree(map);
    return c;
}

bool ir_glob_match(const char *p, const char *s)
{
    const char *star = NULL, *ss = NULL;
    while (*s) {
        if (*p == '?' || *p == *s) {
            p++;
            s++;
        } else if (*p == '*') {
            star = p++;
            ss = s;
        } else if (star) {
            p = star + 1;
            s = ++ss;
        } else {
            return false;
        }
    }
    while (*p == '*')
        p++;
    return *p == 0;
}
