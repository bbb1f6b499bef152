/* specialize(mode): resolve PHASE nodes into the training or inference
 * computation. A layer whose weights are all frozen behaves as in
 * inference in both modes (moving statistics, no statistics update).
 * In inference mode the train-only outputs (moving-average updates) go. */
#include "passes.h"

#include <stdlib.h>
#include <string.h>

/* The frozen state of every layer, computed once: a param belongs to
 * layer L when its name is "L.<something>" (for each '.' in it). */
typedef struct Layers {
    StrMap index; /* layer name -> position in state */
    int *state;   /* 1: has weights, all frozen; 0: has a trainable weight */
    int n, cap;
    Arena *names;
} Layers;

static void layers_build(Layers *l, const Graph *g)
{
    memset(l, 0, sizeof *l);
    l->names = arena_new();
    for (int i = 0; i < g->nnodes; i++) {
        const Node *p = g->nodes[i];
        if (p->op != OP_PARAM || p->a.role != ROLE_WEIGHT)
            continue;
        bool frozen = ps_is_frozen(g, p);
        for (const char *dot = strchr(p->a.name, '.'); dot; dot = strchr(dot + 1, '.')) {
            char *layer = arena_strndup(l->names, p->a.name, (size_t)(dot - p->a.name));
            int k = strmap_get(&l->index, layer);
            if (k < 0) {
                strmap_put(&l->index, layer, l->n);
                VEC_PUSH(l->state, l->n, l->cap, frozen);
            } else if (!frozen) {
                l->state[k] = 0;
            }
        }
    }
}

static void layers_free(Layers *l)
{
    strmap_free(&l->index);
    xfree(l->state);
    arena_free(l->names);
}

/* True when the layer has weights and every one of them is frozen. */
static bool layer_frozen(const Layers *l, const char *layer)
{
    int k = strmap_get(&l->index, layer);
    return k >= 0 && l->state[k];
}

static bool target_in_frozen_layer(const Layers *l, const Node *target)
{
    const char *dot = strrchr(target->a.name, '.');
    if (!dot)
        return false;
    char layer[256];
    size_t n = (size_t)(dot - target->a.name);
    if (n >= sizeof layer)
        return false;
    memcpy(layer, target->a.name, n);
    layer[n] = 0;
    return layer_frozen(l, layer);
}

bool ps_specialize(Graph *g, Mode mode, Diags *d)
{
    (void)d;
    Layers l;
    layers_build(&l, g);
    Node **with = xcalloc((size_t)g->nnodes + 1, sizeof(Node *));
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (n->op != OP_PHASE)
            continue;
        bool train = mode == MODE_TRAIN && !(n->a.name && layer_frozen(&l, n->a.name));
        with[i] = n->in[train ? 0 : 1];
    }
    ir_replace_all(g, with);
    xfree(with);
    int k = 0;
    for (int i = 0; i < g->nouts; i++) {
        Output *o = &g->outs[i];
        bool drop = o->train_only &&
                    (mode == MODE_INFER || (o->target && target_in_frozen_layer(&l, o->target)));
        if (!drop)
            g->outs[k++] = *o;
    }
    g->nouts = k;
    layers_free(&l);
    ir_remove_dead(g);
    return true;
}
