/* Graphviz output of a graph: one box per node labelled with its op and
 * type (leaves with their name), an edge from each operand to its user,
 * outputs as separate ellipses, parameters coloured by whether training
 * updates them. Render with `dot -Tsvg`. */
#include "irtext.h"

#include <string.h>

#define COLOR_INPUT "#cfe8ff"
#define COLOR_TRAINABLE "#c8f0c8"
#define COLOR_FROZEN "#d9d9d9"
#define COLOR_STATE "#ffe4b5"
#define COLOR_CONST "#f5f5f5"
#define COLOR_FUSED "#f0d8f8"
#define COLOR_OUTPUT "#fff3b0"

/* Text inside a DOT double-quoted string. */
static void dot_escape(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        if ((unsigned char)*s < 32)
            fputc(' ', f);
        else
            fputc(*s, f);
    }
}

/* Not trained: marked frozen or matched by a freeze pattern of the
 * train block. */
static bool param_frozen(const Graph *g, const Node *n)
{
    if (!n->a.trainable)
        return true;
    for (int i = 0; i < g->train.nfreeze && n->a.name; i++)
        if (ir_glob_match(g->train.freeze[i], n->a.name))
            return true;
    return false;
}

static void dot_leaf(FILE *f, const Graph *g, const Node *n, const char *type)
{
    bool frozen = n->op == OP_PARAM && param_frozen(g, n);
    char num[64];
    switch (n->op) {
    case OP_INPUT:
        fprintf(f, "label=\"input ");
        dot_escape(f, n->a.name);
        fprintf(f, "\\n%s\", fillcolor=\"%s\"", type, COLOR_INPUT);
        break;
    case OP_PARAM:
        fprintf(f, "label=\"param ");
        dot_escape(f, n->a.name);
        fprintf(f, "%s\\n%s\", fillcolor=\"%s\"",
                n->a.role == ROLE_STATE  ? " (state)"
                : n->a.role == ROLE_SLOT ? " (slot)"
                : frozen                 ? " (frozen)"
                                         : "",
                type, n->a.role != ROLE_WEIGHT ? COLOR_STATE : frozen ? COLOR_FROZEN : COLOR_TRAINABLE);
        break;
    default:
        fmt_double(num, sizeof num, n->a.value);
        fprintf(f, "label=\"const %s\\n%s\", fillcolor=\"%s\"", num, type, COLOR_CONST);
        break;
    }
}

/* A fused node lists the ops of its body. */
static void dot_fused_ops(FILE *f, const Graph *b)
{
    int k = 0;
    for (int i = 0; b && i < b->nnodes; i++) {
        Op op = b->nodes[i]->op;
        if (op == OP_INPUT)
            continue;
        fprintf(f, "%s%s", k++ ? (k % 4 == 1 ? ",\\n" : ", ") : "\\n", ir_ops[op].name);
    }
}

static void dot_node(FILE *f, const Graph *g, const ValueNames *vn, int i)
{
    const Node *n = g->nodes[i];
    char type[160];
    ir_type_str(n->dt, &n->shape, type, sizeof type);
    fprintf(f, "  n%d [", i);
    if (ir_ops[n->op].cls == OPC_LEAF) {
        dot_leaf(f, g, n, type);
    } else {
        fprintf(f, "label=\"%%");
        dot_escape(f, vn->v[i]);
        fprintf(f, " = %s", ir_ops[n->op].name);
        StrBuf at;
        sb_init(&at);
        ir_put_attrs(&at, n);
        if (at.s)
            dot_escape(f, at.s);
        sb_free(&at);
        if (n->op == OP_FUSED || n->op == OP_LOOP)
            dot_fused_ops(f, n->sub);
        fprintf(f, "\\n%s\"", type);
        if (n->op == OP_FUSED)
            fprintf(f, ", fillcolor=\"%s\"", COLOR_FUSED);
    }
    if (n->loc.file && n->loc.line > 0) {
        fprintf(f, ", tooltip=\"");
        dot_escape(f, n->loc.file);
        fprintf(f, ":%d:%d\"", n->loc.line, n->loc.col);
    }
    fprintf(f, "];\n");
    for (int j = 0; j < n->nin; j++)
        fprintf(f, "  n%d -> n%d;\n", n->in[j]->id, i);
}

static void dot_output(FILE *f, const Output *o, int k)
{
    fprintf(f, "  out%d [shape=ellipse, fillcolor=\"%s\", label=\"%s", k, COLOR_OUTPUT,
            ir_out_kind_names[o->kind]);
    if (o->name) {
        fputc(' ', f);
        dot_escape(f, o->name);
    }
    fprintf(f, "%s\"];\n", o->train_only ? "\\n(train only)" : "");
    fprintf(f, "  n%d -> out%d;\n", o->val->id, k);
    if (o->target)
        fprintf(f, "  out%d -> n%d [style=dashed, constraint=false, label=\"%s\"];\n", k, o->target->id,
                o->kind == OUT_GRAD ? "wrt" : "of");
}

void ir_print_dot(Graph *g, FILE *f)
{
    ValueNames vn;
    ir_names_build(&vn, g);
    fprintf(f, "digraph \"");
    dot_escape(f, g->name);
    fprintf(f, "\" {\n  rankdir=TB;\n");
    fprintf(f, "  node [shape=box, style=\"rounded,filled\", fillcolor=white, fontname=\"monospace\"];\n");
    for (int i = 0; i < g->nnodes; i++)
        dot_node(f, g, &vn, i);
    for (int k = 0; k < g->nouts; k++)
        dot_output(f, &g->outs[k], k);
    fprintf(f, "}\n");
    ir_names_free(&vn);
}
