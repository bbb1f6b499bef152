/* The layers of a lowered graph, recovered from parameter names and the
 * ops that consume them: kernel -> matmul/conv2d -> bias/scale chain ->
 * activation. Used by the static warnings and the statistics tools. */
#include "warn.h"

#include <stdlib.h>
#include <string.h>

/* The op of each activation kind. */
static const Op act_ops[ACT_COUNT] = {
    [ACT_NONE] = OP_COUNT, [ACT_SIGMOID] = OP_SIGMOID, [ACT_TANH] = OP_TANH,
    [ACT_RELU] = OP_RELU,  [ACT_ELU] = OP_ELU,         [ACT_SOFTMAX] = OP_SOFTMAX,
};

ActKind ps_act_kind(Op op)
{
    for (int k = ACT_NONE + 1; k < ACT_COUNT; k++)
        if (act_ops[k] == op)
            return (ActKind)k;
    return ACT_NONE;
}

const char *ps_act_name(ActKind k)
{
    return k == ACT_NONE ? "linear" : ir_ops[act_ops[k]].name;
}

bool ps_act_saturates(ActKind k)
{
    return k != ACT_NONE && ir_op_has(act_ops[k], OPF_SATURATES);
}

/* "dense_1.kernel" -> "dense_1"; a name without '.' is its own layer. */
static const char *layer_of(Graph *g, const char *param)
{
    const char *dot = strrchr(param, '.');
    return dot ? arena_strndup(g->arena, param, (size_t)(dot - param)) : param;
}

/* The layer called name; index maps names to positions in l. */
static PsLayer *find_or_add(PsLayers *l, int *cap, StrMap *index, const char *name)
{
    int i = strmap_get(index, name);
    if (i >= 0)
        return &l->v[i];
    PsLayer z;
    memset(&z, 0, sizeof z);
    z.name = name;
    strmap_put(index, name, l->n);
    VEC_PUSH(l->v, l->n, *cap, z);
    return &l->v[l->n - 1];
}

/* Consumers of each forward node: cons[id] lists, ncons[id] counts. */
typedef struct Uses {
    int *n;
    Node ***v;
} Uses;

static Uses uses_build(Graph *g, int nfwd)
{
    Uses u = {xcalloc((size_t)nfwd + 1, sizeof(int)), xcalloc((size_t)nfwd + 1, sizeof(Node **))};
    int *cap = xcalloc((size_t)nfwd + 1, sizeof(int));
    for (int i = 0; i < nfwd; i++) {
        Node *c = g->nodes[i];
        for (int j = 0; j < c->nin; j++) {
            int id = c->in[j]->id;
            if (j > 0 && c->in[j - 1] == c->in[j])
                continue;
            VEC_PUSH(u.v[id], u.n[id], cap[id], c);
        }
    }
    xfree(cap);
    return u;
}

static void uses_free(Uses *u, int nfwd)
{
    for (int i = 0; i < nfwd; i++)
        xfree(u->v[i]);
    xfree(u->v);
    xfree(u->n);
}

static bool has_param(const PsLayer *l, const Node *p)
{
    for (int i = 0; i < l->nparams; i++)
        if (l->params[i] == p)
            return true;
    return false;
}

/* A constant or one of the layer's own parameters, possibly reshaped. */
static bool layer_local(const PsLayer *l, const Node *x)
{
    while (x->op == OP_BROADCAST || x->op == OP_RESHAPE || x->op == OP_CAST)
        x = x->in[0];
    return x->op == OP_CONST || (x->op == OP_PARAM && has_param(l, x));
}

static bool affine_step(const PsLayer *l, const Node *cur, const Node *c)
{
    if (c->op != OP_ADD && c->op != OP_SUB && c->op != OP_MUL && c->op != OP_DIV)
        return false;
    const Node *other = c->in[0] == cur ? c->in[1] : c->in[0];
    if (c->op == OP_DIV && c->in[1] == cur)
        return false;
    return layer_local(l, other);
}

/* The first matmul/conv2d using one of the layer's params as its weight. */
static void find_linear(PsLayer *l, const Uses *u)
{
    for (int i = 0; i < l->nparams; i++) {
        Node *p = l->params[i];
        for (int k = 0; k < u->n[p->id]; k++) {
            Node *c = u->v[p->id][k];
            if ((c->op != OP_MATMUL && c->op != OP_CONV2D) || (l->linear && l->linear->id < c->id))
                continue;
            l->linear = c;
            l->kernel = p;
            l->input = c->in[0] == p ? c->in[1] : c->in[0];
        }
    }
    if (l->linear)
        return;
    for (int i = 0; i < l->nparams; i++) {
        Node *p = l->params[i];
        if (p->a.role != ROLE_WEIGHT)
            continue;
        for (int k = 0; k < u->n[p->id]; k++)
            if (!l->linear || u->v[p->id][k]->id < l->linear->id)
                l->linear = u->v[p->id][k];
    }
}

/* The one activation among several readers of a pre-activation (a
 * softmax output whose logits the loss also reads), or NULL. */
static Node *sole_activation(Node *cur, const Uses *u)
{
    Node *act = NULL;
    for (int k = 0; k < u->n[cur->id]; k++)
        if (ps_act_kind(u->v[cur->id][k]->op) != ACT_NONE) {
            if (act)
                return NULL;
            act = u->v[cur->id][k];
        }
    return act;
}

static void follow_chain(PsLayer *l, const Uses *u)
{
    Node *cur = l->linear;
    while (u->n[cur->id] >= 1) {
        Node *c = u->n[cur->id] == 1 ? u->v[cur->id][0] : sole_activation(cur, u);
        ActKind k = c ? ps_act_kind(c->op) : ACT_NONE;
        if (k != ACT_NONE) {
            l->act = c;
            l->act_kind = k;
            break;
        }
        if (!c || !affine_step(l, cur, c))
            break;
        cur = c;
    }
    l->pre = cur;
}

static int by_linear(const void *a, const void *b)
{
    const PsLayer *x = a, *y = b;
    int ix = x->linear ? x->linear->id : 1 << 30, iy = y->linear ? y->linear->id : 1 << 30;
    if (ix != iy)
        return ix < iy ? -1 : 1;
    return x->params[0]->id < y->params[0]->id ? -1 : x->params[0]->id > y->params[0]->id;
}

void ps_find_layers(Graph *g, int nfwd, PsLayers *out)
{
    memset(out, 0, sizeof *out);
    int cap = 0;
    StrMap index = {0};
    for (int i = 0; i < g->nnodes; i++)
        g->nodes[i]->id = i;
    for (int i = 0; i < nfwd; i++) {
        Node *p = g->nodes[i];
        if (p->op != OP_PARAM || p->a.role == ROLE_SLOT)
            continue;
        PsLayer *l = find_or_add(out, &cap, &index, layer_of(g, p->a.name));
        l->params = xrealloc(l->params, (size_t)(l->nparams + 1) * sizeof(Node *));
        l->params[l->nparams++] = p;
    }
    strmap_free(&index);
    Uses u = uses_build(g, nfwd);
    for (int i = 0; i < out->n; i++) {
        PsLayer *l = &out->v[i];
        find_linear(l, &u);
        if (l->linear)
            follow_chain(l, &u);
        l->loc = l->act ? l->act->loc : l->linear ? l->linear->loc : l->params[0]->loc;
    }
    uses_free(&u, nfwd);
    if (out->n > 1) /* qsort's base must not be NULL, even for no elements */
        qsort(out->v, (size_t)out->n, sizeof(PsLayer), by_linear);
}

void ps_layers_free(PsLayers *l)
{
    for (int i = 0; i < l->n; i++)
        xfree(l->v[i].params);
    xfree(l->v);
    memset(l, 0, sizeof *l);
}
