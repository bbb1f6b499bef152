/* The branches of the piecewise ops (OPF_KINK in ops.def) on evaluated
 * values: for every element, which smooth piece its value came from. A
 * finite difference of a loss is only a derivative when no branch changes
 * between its two evaluations; gradcheck compares the keys of both. */
#include "backend/interp/interp_impl.h"

#include <math.h>
#include <stdlib.h>

static int32_t sign_key(double v)
{
    return v != v ? 2 : (v > 0) - (v < 0);
}

static void unary_keys(const Tensor *x, int32_t *key)
{
    for (int64_t i = 0; i < x->numel; i++)
        key[i] = sign_key(ix_load(x, i));
}

/* sign(a - b) per element of the broadcast result y. */
static void binary_keys(const Tensor *a, const Tensor *b, const Tensor *y, int32_t *key)
{
    int64_t sa[IR_MAXRANK], sb[IR_MAXRANK], c[IR_MAXRANK] = {0};
    ix_bcast_strides(a, y->rank, sa);
    ix_bcast_strides(b, y->rank, sb);
    for (int64_t i = 0; i < y->numel; i++, ix_next(y->rank, y->dims, c)) {
        double u = ix_load(a, ix_offset(y->rank, c, sa)), v = ix_load(b, ix_offset(y->rank, c, sb));
        key[i] = u != u || v != v ? 2 : (u > v) - (u < v);
    }
}

/* Per element of x: is it its slice's maximum y? */
static void reduce_max_keys(const Node *nd, const Tensor *x, const Tensor *y, int32_t *key)
{
    bool reduced[IR_MAXRANK] = {0};
    for (int i = 0; i < nd->a.naxes; i++)
        reduced[nd->a.axes[i]] = true;
    int64_t ys[IR_MAXRANK], st[IR_MAXRANK], c[IR_MAXRANK] = {0};
    ix_strides(y, ys);
    for (int k = 0, j = 0; k < x->rank; k++) {
        if (reduced[k])
            st[k] = 0;
        else
            st[k] = ys[nd->a.keepdims ? k : j];
        j += !reduced[k];
    }
    for (int64_t i = 0; i < x->numel; i++, ix_next(x->rank, x->dims, c))
        key[i] = ix_load(x, i) == ix_load(y, ix_offset(x->rank, c, st));
}

static void copy_keys(const Tensor *y, int32_t *key)
{
    for (int64_t i = 0; i < y->numel; i++)
        key[i] = ix_to_i32(ix_load(y, i));
}

/* Elements of the key of kink node nd with operand values in[] and
 * value y; fills key when it is not NULL. */
static int64_t node_keys(const Node *nd, Tensor *const *in, const Tensor *y, int32_t *key)
{
    switch (ir_ops[nd->op].cls) {
    case OPC_UNARY:
        if (key)
            unary_keys(in[0], key);
        return in[0]->numel;
    case OPC_BINARY:
        if (key)
            binary_keys(in[0], in[1], y, key);
        return y->numel;
    default:
        break;
    }
    switch (nd->op) {
    case OP_REDUCE_MAX:
        if (key)
            reduce_max_keys(nd, in[0], y, key);
        return in[0]->numel;
    case OP_ARGMAX:
        if (key)
            copy_keys(y, key);
        return y->numel;
    case OP_MAX_POOL2D:
        if (key)
            be_interp_pool_argmax(nd, in[0], y, key);
        return y->numel;
    default:
        ICE("no branch key for %s", ir_ops[nd->op].name);
    }
}

void be_interp_kink_keys(const Graph *g, Tensor *const *vals, KinkKeys *k)
{
    *k = (KinkKeys){0};
    for (int i = 0; i < g->nnodes; i++)
        k->n += ir_op_has(g->nodes[i]->op, OPF_KINK) && vals[i];
    k->node = xcalloc((size_t)k->n + 1, sizeof *k->node);
    k->len = xcalloc((size_t)k->n + 1, sizeof *k->len);
    k->key = xcalloc((size_t)k->n + 1, sizeof *k->key);
    for (int i = 0, j = 0; i < g->nnodes; i++) {
        const Node *nd = g->nodes[i];
        if (!ir_op_has(nd->op, OPF_KINK) || !vals[i])
            continue;
        Tensor *in[3] = {NULL, NULL, NULL};
        for (int m = 0; m < nd->nin && m < 3; m++)
            in[m] = vals[nd->in[m]->id];
        k->node[j] = i;
        k->len[j] = node_keys(nd, in, vals[i], NULL);
        k->key[j] = xcalloc((size_t)k->len[j] + 1, sizeof(int32_t));
        node_keys(nd, in, vals[i], k->key[j]);
        j++;
    }
}

int be_interp_kink_diff(const KinkKeys *a, const KinkKeys *b, int64_t *elem)
{
    MC_ASSERT(a->n == b->n);
    for (int j = 0; j < a->n; j++) {
        MC_ASSERT(a->node[j] == b->node[j] && a->len[j] == b->len[j]);
        for (int64_t i = 0; i < a->len[j]; i++)
            if (a->key[j][i] != b->key[j][i]) {
                if (elem)
                    *elem = i;
                return a->node[j];
            }
    }
    return -1;
}

void be_interp_kink_free(KinkKeys *k)
{
    for (int j = 0; j < k->n; j++)
        xfree(k->key[j]);
    xfree(k->key);
    xfree(k->len);
    xfree(k->node);
    *k = (KinkKeys){0};
}
