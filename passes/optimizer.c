/* optimizer: append the parameter update as IR, after autodiff.
 * Per trainable parameter p with gradient g (Keras formulations):
 *   g = g + wd * p                              (weight decay, L2)
 *   g = min(max(g, -c), c)                      (clip by value)
 *   g = g * cn / max(||all g||, cn)             (clip by global norm)
 *   sgd:      v = mu*v - lr*g;  p += v   (nesterov: p += mu*v - lr*g)
 *   adam:     t += 1;  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g
 *             p -= lr * sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps)
 *             (the bias correction sqrt(1-b2^t)/(1-b1^t) in f64, then
 *             rounded to the parameters' dtype)
 *   rmsprop:  a = rho*a + (1-rho)*g*g;  p -= lr * g / (sqrt(a) + eps)
 * The learning rate is the scalar input "optimizer.lr" (the trainer feeds
 * the schedule's value each step); optimizer state lives in ROLE_SLOT
 * parameters named "optimizer.<slot>.<param>" and "optimizer.step", so
 * it is checkpointed like the weights. Each new value is an OUT_UPDATE.
 * With train.telemetry (set by a trainer that watches), scalar
 * train-only metrics report on every step:
 *   telemetry.grad_sq.<p>    sum of squares of p's raw gradient
 *   telemetry.clip_frac.<p>  fraction of elements beyond clip_value
 *   telemetry.clip_norm      the global norm compared with clip_norm */
#include "passes.h"

#include <stdlib.h>
#include <string.h>

typedef struct Ctx {
    Graph *g;
    Diags *d;
    DType dt;
    Node *lr;
} Ctx;

static Node *k(Ctx *c, double v, SrcLoc loc)
{
    return ir_const(c->g, c->dt, v, loc);
}

static Node *bin(Ctx *c, Op op, Node *a, Node *b)
{
    return ir_binary(c->g, op, a, b, a->loc, c->d);
}

static Node *slot(Ctx *c, const char *what, Node *p)
{
    char *name = arena_printf(c->g->arena, "optimizer.%s.%s", what, p->a.name);
    Node *s = ir_param(c->g, name, p->dt, p->shape, (Init){INIT_ZEROS, 0, 0}, false, ROLE_SLOT,
                       p->loc);
    return s;
}

static Node *clip_value(Ctx *c, Node *gr, double cv)
{
    Node *lo = bin(c, OP_MAXIMUM, gr, k(c, -cv, gr->loc));
    return bin(c, OP_MINIMUM, lo, k(c, cv, gr->loc));
}

static Node *sum_squares(Ctx *c, Node *gr)
{
    Attrs a = ir_attrs();
    a.naxes = gr->shape.rank;
    for (int i = 0; i < a.naxes; i++)
        a.axes[i] = i;
    Node *sq = ir_unary(c->g, OP_SQUARE, gr, gr->loc, c->d);
    return a.naxes ? ir_op(c->g, OP_REDUCE_SUM, &sq, 1, &a, gr->loc, c->d) : sq;
}

static void telemetry(Ctx *c, const char *what, const Node *p, Node *val)
{
    const char *name = p ? arena_printf(c->g->arena, "telemetry.%s.%s", what, p->a.name)
                         : arena_printf(c->g->arena, "telemetry.%s", what);
    ir_add_output(c->g, OUT_METRIC, name, val, NULL, true);
}

/* mean(|g| > c): the fraction of g's elements that clipping changes. */
static Node *clipped_frac(Ctx *c, Node *gr, double cv)
{
    Node *beyond = bin(c, OP_GT, ir_unary(c->g, OP_ABS, gr, gr->loc, c->d), k(c, cv, gr->loc));
    if (!beyond || gr->shape.rank == 0)
        return beyond;
    Attrs a = ir_attrs();
    a.naxes = gr->shape.rank;
    for (int i = 0; i < a.naxes; i++)
        a.axes[i] = i;
    return ir_op(c->g, OP_REDUCE_MEAN, &beyond, 1, &a, gr->loc, c->d);
}

static void update(Ctx *c, Node *target, Node *val)
{
    ir_add_output(c->g, OUT_UPDATE, target->a.name, val, target, false);
}

static Node *step_adam(Ctx *c, const TrainConfig *t, Node *p, Node *gr, Node *lr_t)
{
    Node *m = slot(c, "m", p), *v = slot(c, "v", p);
    Node *m2 = bin(c, OP_ADD, bin(c, OP_MUL, k(c, t->beta1, p->loc), m),
                   bin(c, OP_MUL, k(c, 1 - t->beta1, p->loc), gr));
    Node *g2 = ir_unary(c->g, OP_SQUARE, gr, gr->loc, c->d);
    Node *v2 = bin(c, OP_ADD, bin(c, OP_MUL, k(c, t->beta2, p->loc), v),
                   bin(c, OP_MUL, k(c, 1 - t->beta2, p->loc), g2));
    update(c, m, m2);
    update(c, v, v2);
    Node *den = bin(c, OP_ADD, ir_unary(c->g, OP_SQRT, v2, p->loc, c->d), k(c, t->eps, p->loc));
    return bin(c, OP_SUB, p, bin(c, OP_MUL, lr_t, bin(c, OP_DIV, m2, den)));
}

static Node *step_sgd(Ctx *c, const TrainConfig *t, Node *p, Node *gr)
{
    Node *lrg = bin(c, OP_MUL, c->lr, gr);
    if (t->momentum == 0)
        return bin(c, OP_SUB, p, lrg);
    Node *v = slot(c, "momentum", p);
    Node *v2 = bin(c, OP_SUB, bin(c, OP_MUL, k(c, t->momentum, p->loc), v), lrg);
    update(c, v, v2);
    if (t->nesterov)
        return bin(c, OP_ADD, p, bin(c, OP_SUB, bin(c, OP_MUL, k(c, t->momentum, p->loc), v2), lrg));
    return bin(c, OP_ADD, p, v2);
}

static Node *step_rmsprop(Ctx *c, const TrainConfig *t, Node *p, Node *gr)
{
    Node *a = slot(c, "rms", p);
    Node *a2 = bin(c, OP_ADD, bin(c, OP_MUL, k(c, t->rho, p->loc), a),
                   bin(c, OP_MUL, k(c, 1 - t->rho, p->loc), ir_unary(c->g, OP_SQUARE, gr, p->loc, c->d)));
    update(c, a, a2);
    Node *den = bin(c, OP_ADD, ir_unary(c->g, OP_SQRT, a2, p->loc, c->d), k(c, t->eps, p->loc));
    return bin(c, OP_SUB, p, bin(c, OP_MUL, c->lr, bin(c, OP_DIV, gr, den)));
}

static Node *cast(Ctx *c, Node *x, DType to)
{
    if (x->dt == to)
        return x;
    Attrs a = ir_attrs();
    a.to = to;
    return ir_op(c->g, OP_CAST, &x, 1, &a, x->loc, c->d);
}

/* Adam's bias-corrected step size lr * sqrt(1 - b2^t) / (1 - b1^t), t += 1.
 * The step t is an f64 in every model (exact up to 2^53 steps; an f32
 * stops counting at 2^24). The correction is computed in f64 from the
 * exact betas (Keras computes pow(f32(b2), t) in f32: with b2 = 0.999 its
 * 1 - b2^t is 1.3e-5 off at t = 1), then rounded to the parameters'
 * dtype. */
static Node *adam_lr(Ctx *c, const TrainConfig *t, SrcLoc loc)
{
    Node *step = ir_param(c->g, "optimizer.step", DT_F64, ir_shape0(), (Init){INIT_ZEROS, 0, 0},
                          false, ROLE_SLOT, loc);
    Node *one = ir_const(c->g, DT_F64, 1, loc);
    Node *t64 = bin(c, OP_ADD, step, one);
    update(c, step, t64);
    Node *c2 = bin(c, OP_SUB, one, bin(c, OP_POW, ir_const(c->g, DT_F64, t->beta2, loc), t64));
    Node *c1 = bin(c, OP_SUB, one, bin(c, OP_POW, ir_const(c->g, DT_F64, t->beta1, loc), t64));
    Node *corr = bin(c, OP_DIV, ir_unary(c->g, OP_SQRT, c2, loc, c->d), c1);
    return bin(c, OP_MUL, c->lr, cast(c, corr, c->dt));
}

/* The update is built in one dtype: every trained parameter's, and the
 * learning rate's when the graph already has it. */
static bool one_dtype(const Output *grads, int n, const Node *lr, Diags *d)
{
    const Node *p0 = grads[0].target;
    for (int i = 1; i < n; i++) {
        const Node *p = grads[i].target;
        if (p->dt != p0->dt) {
            diag_error(d, p->loc, "the optimizer updates every trained parameter in one dtype: '%s' is %s, '%s' is %s",
                       p->a.name, ir_dtype_name(p->dt), p0->a.name, ir_dtype_name(p0->dt));
            return false;
        }
    }
    if (lr && (lr->dt != p0->dt || lr->shape.rank != 0)) {
        diag_error(d, lr->loc, "input 'optimizer.lr' must be a scalar of the parameters' dtype %s",
                   ir_dtype_name(p0->dt));
        return false;
    }
    return true;
}

bool ps_optimizer(Graph *g, Diags *d)
{
    const TrainConfig *t = &g->train;
    int ngrad = 0, nouts = g->nouts;
    Output *grads = xmalloc((size_t)(nouts ? nouts : 1) * sizeof(Output));
    for (int i = 0; i < nouts; i++)
        if (g->outs[i].kind == OUT_GRAD && g->outs[i].target->op == OP_PARAM)
            grads[ngrad++] = g->outs[i];
    if (ngrad == 0) {
        xfree(grads);
        return true;
    }
    SrcLoc loc = grads[0].target->loc;
    Ctx c = {g, d, grads[0].target->dt, NULL};
    Node *lr = ir_find_input(g, "optimizer.lr");
    if (!one_dtype(grads, ngrad, lr, d)) {
        xfree(grads);
        return false;
    }
    c.lr = lr ? lr : ir_input(g, "optimizer.lr", c.dt, ir_shape0(), loc);
    Node **gr = xmalloc((size_t)ngrad * sizeof(Node *));
    for (int i = 0; i < ngrad; i++) {
        Node *p = grads[i].target, *x = grads[i].val;
        if (t->telemetry)
            telemetry(&c, "grad_sq", p, sum_squares(&c, x));
        if (t->weight_decay != 0)
            x = bin(&c, OP_ADD, x, bin(&c, OP_MUL, k(&c, t->weight_decay, p->loc), p));
        if (t->telemetry && t->clip_value > 0)
            telemetry(&c, "clip_frac", p, clipped_frac(&c, x, t->clip_value));
        if (t->clip_value > 0)
            x = clip_value(&c, x, t->clip_value);
        gr[i] = x;
    }
    if (t->clip_norm > 0) {
        Node *total = sum_squares(&c, gr[0]);
        for (int i = 1; i < ngrad; i++)
            total = bin(&c, OP_ADD, total, sum_squares(&c, gr[i]));
        Node *norm = ir_unary(g, OP_SQRT, total, loc, d);
        if (t->telemetry)
            telemetry(&c, "clip_norm", NULL, norm);
        Node *cn = k(&c, t->clip_norm, loc);
        Node *scale = bin(&c, OP_DIV, cn, bin(&c, OP_MAXIMUM, norm, cn));
        for (int i = 0; i < ngrad; i++)
            gr[i] = bin(&c, OP_MUL, gr[i], scale);
    }
    Node *lr_t = t->opt == OPT_ADAM ? adam_lr(&c, t, loc) : NULL;
    for (int i = 0; i < ngrad && !d->nerrors; i++) {
        Node *p = grads[i].target, *np;
        switch (t->opt) {
        case OPT_ADAM:
            np = step_adam(&c, t, p, gr[i], lr_t);
            break;
        case OPT_SGD:
            np = step_sgd(&c, t, p, gr[i]);
            break;
        default:
            np = step_rmsprop(&c, t, p, gr[i]);
            break;
        }
        if (np)
            update(&c, p, np);
    }
    xfree(gr);
    xfree(grads);
    return d->nerrors == 0;
}
