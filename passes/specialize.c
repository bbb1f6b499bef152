/* specialize(mode): resolve PHASE nodes into the training or inference
 * computation. A layer whose weights are all frozen behaves as in
 * inference in both modes (moving statistics, no statistics update).
 * In inference mode the train-only outputs (moving-average updates) go. */
#include "passes.h"

#include <string.h>

/* Does param p belong to layer (its name is "<layer>.<something>")? */
static bool in_layer(const char *layer, const Node *p)
{
    size_t n = strlen(layer);
    return strncmp(p->a.name, layer, n) == 0 && p->a.name[n] == '.';
}

/* True when the layer has weights and every one of them is frozen. */
static bool layer_frozen(const Graph *g, const char *layer)
{
    int weights = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const Node *p = g->nodes[i];
        if (p->op != OP_PARAM || p->a.role != ROLE_WEIGHT || !in_layer(layer, p))
            continue;
        weights++;
        if (!ps_is_frozen(g, p))
            return false;
    }
    return weights > 0;
}

static bool target_in_frozen_layer(const Graph *g, const Node *target)
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
    return layer_frozen(g, layer);
}

bool ps_specialize(Graph *g, Mode mode, Diags *d)
{
    (void)d;
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (n->op != OP_PHASE)
            continue;
        bool train = mode == MODE_TRAIN && !(n->a.name && layer_frozen(g, n->a.name));
        ir_replace_uses(g, n, n->in[train ? 0 : 1]);
    }
    int k = 0;
    for (int i = 0; i < g->nouts; i++) {
        Output *o = &g->outs[i];
        bool drop = o->train_only &&
                    (mode == MODE_INFER || (o->target && target_in_frozen_layer(g, o->target)));
        if (!drop)
            g->outs[k++] = *o;
    }
    g->nouts = k;
    ir_remove_dead(g);
    return true;
}
