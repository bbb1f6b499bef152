/* The training and inference graphs of one model as a unified diff over
 * its source graph: the training step's and eval's recipes, stopped after
 * specialize, each run with node origins kept (RecipeOpts.origin), and the source
 * graph's printed lines are marked by where their node survived. Phase
 * nodes say which operand each mode takes; frozen parameters and layers
 * are labelled. */
#include "insight.h"
#include "backend/insight/warn.h"

#include <stdlib.h>
#include <string.h>

/* Where a source node survives: bit 1 training graph, bit 2 inference. */
static unsigned char *survivors(Graph *src, Mode mode, unsigned char bit, unsigned char *in,
                                bool *out_kept, Diags *d)
{
    RecipeOpts o = ps_recipe_opts(mode == MODE_TRAIN ? FN_TRAIN_STEP : FN_EVAL);
    o.stop_after = "specialize";
    o.origin = true;
    Graph *c = ps_recipe(src, &o, d);
    if (!c)
        return NULL;
    for (int i = 0; i < c->nnodes; i++)
        in[(intptr_t)c->nodes[i]->aux - 1] |= bit;
    for (int i = 0; i < src->nouts; i++) {
        bool kept = false;
        for (int j = 0; j < c->nouts && !kept; j++)
            kept = strcmp(c->outs[j].name, src->outs[i].name) == 0 &&
                   c->outs[j].kind == src->outs[i].kind;
        out_kept[i] = kept;
    }
    ir_graph_free(c);
    return in;
}

typedef struct Lines {
    char **v;
    int n;
} Lines;

static Lines split_lines(char *text)
{
    Lines l = {NULL, 0};
    int cap = 0;
    for (char *p = text; *p;) {
        char *e = strchr(p, '\n');
        if (e)
            *e = 0;
        VEC_PUSH(l.v, l.n, cap, p);
        if (!e)
            break;
        p = e + 1;
    }
    return l;
}

/* The printed name of node i: the text before " = " on its line. */
static void value_name(const Lines *nodes, int i, char *buf, size_t n)
{
    const char *s = nodes->v[i];
    while (*s == ' ')
        s++;
    const char *e = strstr(s, " = ");
    size_t k = e ? (size_t)(e - s) : strlen(s);
    if (k >= n)
        k = n - 1;
    memcpy(buf, s, k);
    buf[k] = 0;
}

static const char *mark_of(unsigned char in)
{
    return in == 3 ? " " : in == 1 ? "-" : in == 2 ? "+" : "!";
}

static void phase_comment(FILE *f, const Graph *g, const Node *ph, const Lines *nodes)
{
    char a[128], b[128];
    value_name(nodes, ph->in[0]->id, a, sizeof a);
    value_name(nodes, ph->in[1]->id, b, sizeof b);
    const char *name = ph->a.name ? ph->a.name : "?";
    if (!ps_layer_is_batchnorm(g, name))
        fprintf(f, "    ; dropout '%s': train -> %s (random mask), infer -> %s (identity)", name, a, b);
    else if (ph->a.name && ps_layer_frozen(g, name))
        fprintf(f, "    ; batchnorm '%s' (frozen): train -> %s, infer -> %s (moving statistics in both)",
                name, b, b);
    else
        fprintf(f, "    ; batchnorm '%s': train -> %s (batch statistics), infer -> %s (moving statistics)",
                name, a, b);
}

/* The layer part of a parameter name ("base_bn1" of "base_bn1.moving_mean"). */
static bool in_frozen_layer(const Graph *g, const Node *p)
{
    const char *dot = strrchr(p->a.name, '.');
    char layer[256];
    size_t n = dot ? (size_t)(dot - p->a.name) : 0;
    if (!dot || n >= sizeof layer)
        return false;
    memcpy(layer, p->a.name, n);
    layer[n] = 0;
    return ps_layer_frozen(g, layer);
}

static void param_comment(FILE *f, const Graph *g, const Node *p)
{
    if (p->a.role == ROLE_STATE)
        fputs(in_frozen_layer(g, p) ? "    ; state: never updated (its layer is frozen)"
                                    : "    ; state: updated by the training graph only",
              f);
    else if (p->a.role == ROLE_WEIGHT && ps_is_frozen(g, p))
        fputs("    ; frozen: a constant in both modes (no gradient, no update)", f);
}

static void print_nodes(FILE *f, const Graph *g, const Lines *nodes, const unsigned char *in)
{
    for (int i = 0; i < g->nnodes; i++) {
        const Node *x = g->nodes[i];
        bool phase = x->op == OP_PHASE;
        fprintf(f, "%s%s", phase ? "~" : mark_of(in[i]), nodes->v[i]);
        if (phase)
            phase_comment(f, g, x, nodes);
        else if (x->op == OP_DROPOUT_MASK)
            fputs("    ; random mask: training only", f);
        else if (x->op == OP_PARAM)
            param_comment(f, g, x);
        fputc('\n', f);
    }
}

static void print_outputs(FILE *f, const Graph *g, const Lines *outs, const bool *kt,
                          const bool *ki)
{
    for (int i = 0; i < g->nouts; i++) {
        unsigned char in = (unsigned char)((kt[i] ? 1 : 0) | (ki[i] ? 2 : 0));
        fprintf(f, "%s%s", mark_of(in), outs->v[i]);
        if (g->outs[i].train_only && in == 0)
            fputs("    ; frozen layer: its statistics are not updated", f);
        else if (g->outs[i].train_only)
            fputs("    ; training only", f);
        fputc('\n', f);
    }
}

static void summary(FILE *f, const Graph *g, const unsigned char *in)
{
    int bn = 0, drop = 0, frozen_layers = 0, frozen = 0, nt = 0, ni = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const Node *x = g->nodes[i];
        nt += (in[i] & 1) != 0;
        ni += (in[i] & 2) != 0;
        if (x->op == OP_PARAM && x->a.role == ROLE_WEIGHT && ps_is_frozen(g, x))
            frozen++;
        if (x->op != OP_PHASE || !x->a.name)
            continue;
        if (ps_layer_is_batchnorm(g, x->a.name)) {
            bn++;
            frozen_layers += ps_layer_frozen(g, x->a.name);
        } else {
            drop++;
        }
    }
    fprintf(f, "; training graph: %d nodes, inference graph: %d nodes\n", nt, ni);
    fprintf(f, "; %d batchnorm layer%s: batch statistics and moving-average updates in training, "
               "moving statistics in inference",
            bn, bn == 1 ? "" : "s");
    if (frozen_layers)
        fprintf(f, " (%d frozen: moving statistics in both)", frozen_layers);
    fprintf(f, "\n; %d dropout layer%s: a random mask in training, the identity in inference\n",
            drop, drop == 1 ? "" : "s");
    fprintf(f, "; %d frozen parameter%s\n", frozen, frozen == 1 ? "" : "s");
}

bool ins_mode_diff(Graph *src, const RunSettings *run, FILE *f, unsigned flags, Diags *d)
{
    for (int i = 0; i < src->nnodes; i++)
        src->nodes[i]->id = i;
    unsigned char *in = xcalloc((size_t)src->nnodes + 1, 1);
    bool *kt = xcalloc((size_t)src->nouts + 1, sizeof(bool)),
         *ki = xcalloc((size_t)src->nouts + 1, sizeof(bool));
    bool ok = survivors(src, MODE_TRAIN, 1, in, kt, d) && survivors(src, MODE_INFER, 2, in, ki, d);
    if (ok) {
        char *text = ir_print_str_model(src, run, flags);
        Lines all = split_lines(text);
        int first = 0;
        while (first < all.n && strncmp(all.v[first], "  %", 3) != 0)
            first++;
        Lines nodes = {all.v + first, src->nnodes};
        Lines outs = {all.v + first + src->nnodes, src->nouts};
        MC_ASSERT(first + src->nnodes + src->nouts < all.n);
        fprintf(f, "; model %s: training graph (specialize train) vs inference graph (specialize infer)\n",
                src->name);
        fputs("; ' ' both   '-' training only   '+' inference only   '~' phase (resolved per mode)   "
              "'!' neither\n",
              f);
        for (int i = 0; i < first; i++)
            fprintf(f, " %s\n", all.v[i]);
        print_nodes(f, src, &nodes, in);
        print_outputs(f, src, &outs, kt, ki);
        fprintf(f, " %s\n", all.v[first + src->nnodes + src->nouts]);
        summary(f, src, in);
        xfree(all.v);
        xfree(text);
    }
    xfree(in);
    xfree(kt);
    xfree(ki);
    return ok;
}
