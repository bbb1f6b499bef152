/* Precision conversion for gradient checking: a deep copy of a graph in
 * which every f32 value (nodes, constants, casts, one-hot results, fused
 * bodies) becomes f64. Integer values stay integers. */
#include "passes.h"

static void convert(Graph *g)
{
    Diags scratch;
    diags_init(&scratch);
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (n->sub)
            convert(n->sub);
        if (n->a.to == DT_F32)
            n->a.to = DT_F64;
        if (n->dt == DT_F32)
            n->dt = DT_F64;
        if (ir_ops[n->op].cls != OPC_LEAF && !ir_infer(n, &scratch))
            ICE("f64 conversion made %s ill-typed: %s", ir_ops[n->op].name,
                scratch.n ? scratch.v[0].msg : "?");
    }
    diags_free(&scratch);
}

Graph *ps_to_f64(Graph *g)
{
    Graph *c = ir_clone(g);
    convert(c);
    return c;
}
