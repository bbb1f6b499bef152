/* Helpers for the autodiff and simplify unit tests: graph building
 * shorthands and a compact expression rendering of a node's dataflow,
 * e.g. "mul(x, 0.25)", so tests compare readable strings. */
#ifndef TEST_AUTODIFF_UTIL_H
#define TEST_AUTODIFF_UTIL_H

#include <string.h>

#include "ir/ir.h"
#include "passes/passes.h"

static SrcLoc TL = {"t.mdl", 1, 1};

static inline Init tu_zeros(void)
{
    return (Init){INIT_ZEROS, 0, 0};
}

static inline Node *tu_param(Graph *g, const char *name, Shape s)
{
    return ir_param(g, name, DT_F64, s, tu_zeros(), true, ROLE_WEIGHT, TL);
}

static inline Node *tu_reduce(Graph *g, Op op, Node *x, int naxes, const int *axes, bool keep,
                              Diags *d)
{
    Attrs a = ir_attrs();
    a.naxes = naxes;
    for (int i = 0; i < naxes; i++)
        a.axes[i] = axes[i];
    a.keepdims = keep;
    return ir_op(g, op, &x, 1, &a, TL, d);
}

/* sum of all elements */
static inline Node *tu_sum_all(Graph *g, Node *x, Diags *d)
{
    int axes[IR_MAXRANK];
    for (int i = 0; i < x->shape.rank; i++)
        axes[i] = i;
    return tu_reduce(g, OP_REDUCE_SUM, x, x->shape.rank, axes, false, d);
}

static inline Output *tu_output(Graph *g, const char *name)
{
    for (int i = 0; i < g->nouts; i++)
        if (strcmp(g->outs[i].name, name) == 0)
            return &g->outs[i];
    return NULL;
}

static inline void tu_expr_rec(StrBuf *b, const Node *n, int depth)
{
    char buf[96];
    if (n->op == OP_INPUT || n->op == OP_PARAM) {
        sb_puts(b, n->a.name);
        return;
    }
    if (n->op == OP_CONST) {
        fmt_double(buf, sizeof buf, n->a.value);
        sb_puts(b, buf);
        return;
    }
    if (depth > 12) {
        sb_puts(b, "...");
        return;
    }
    sb_puts(b, ir_ops[n->op].name);
    switch (n->op) {
    case OP_MATMUL:
        if (n->a.ta || n->a.tb)
            sb_printf(b, "{%s%s%s}", n->a.ta ? "ta" : "", n->a.ta && n->a.tb ? "," : "",
                      n->a.tb ? "tb" : "");
        break;
    case OP_REDUCE_SUM:
    case OP_REDUCE_MEAN:
    case OP_REDUCE_MAX:
    case OP_TRANSPOSE:
    case OP_SOFTMAX:
    case OP_LOG_SOFTMAX:
    case OP_LOG_SOFTMAX_DOT:
    case OP_LOG_SOFTMAX_GRAD:
        sb_puts(b, "{");
        for (int i = 0; i < n->a.naxes; i++)
            sb_printf(b, "%s%d", i ? "," : "", n->a.axes[i]);
        if (n->a.keepdims)
            sb_puts(b, ";keep");
        sb_puts(b, "}");
        break;
    case OP_BROADCAST:
    case OP_RESHAPE:
    case OP_SLICE_GRAD:
    case OP_CONV2D_GRAD_INPUT:
    case OP_CONV2D_GRAD_KERNEL:
    case OP_AVG_POOL2D_GRAD:
        sb_printf(b, "{%s}", ir_shape_str(&n->a.shape, buf, sizeof buf));
        break;
    default:
        break;
    }
    sb_puts(b, "(");
    for (int i = 0; i < n->nin; i++) {
        if (i)
            sb_puts(b, ", ");
        tu_expr_rec(b, n->in[i], depth + 1);
    }
    sb_puts(b, ")");
}

/* Rendering of n; valid until the next call. */
static inline const char *tu_expr(const Node *n)
{
    static char last[8192];
    StrBuf b;
    sb_init(&b);
    tu_expr_rec(&b, n, 0);
    snprintf(last, sizeof last, "%s", b.s ? b.s : "");
    sb_free(&b);
    return last;
}

static inline const char *tu_grad(Graph *g, const char *param)
{
    char name[128];
    snprintf(name, sizeof name, "grad.%s", param);
    Output *o = tu_output(g, name);
    return o ? tu_expr(o->val) : "(none)";
}

static inline const char *tu_msg(const Diags *d, int i)
{
    return i < d->n ? d->v[i].msg : "";
}

static inline int tu_count_op(const Graph *g, Op op)
{
    int k = 0;
    for (int i = 0; i < g->nnodes; i++)
        k += g->nodes[i]->op == op;
    return k;
}

#endif
