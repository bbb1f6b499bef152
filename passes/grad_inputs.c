/* grad_inputs: each parameter's gradient becomes an input of the
 * function. After autodiff, every OUT_GRAD output of a parameter p reads
 * a new input "grad.<p>" of p's dtype and shape instead of the backward
 * pass, so the optimizer that follows builds the update from gradients
 * computed elsewhere: the `apply` function of a data-parallel run, whose
 * gradients are summed over all processes between the backward pass
 * (`train_grad`) and the update. The forward and backward nodes are
 * left dead for `outputs` to remove. */
#include "passes.h"

bool ps_grad_inputs(Graph *g, Diags *d)
{
    for (int i = 0; i < g->nouts; i++) {
        Output *o = &g->outs[i];
        if (o->kind != OUT_GRAD || !o->target || o->target->op != OP_PARAM)
            continue;
        const Node *p = o->target;
        const char *name = arena_printf(g->arena, "grad.%s", p->a.name);
        Node *in = ir_find_input(g, name);
        if (in && (in->dt != p->dt || !ir_shape_eq(&in->shape, &p->shape))) {
            diag_error(d, in->loc, "input '%s' must have the type of parameter '%s'", name, p->a.name);
            return false;
        }
        o->val = in ? in : ir_input(g, name, p->dt, p->shape, p->loc);
    }
    return true;
}
