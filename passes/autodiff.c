/* Reverse-mode automatic differentiation. From the scalar OUT_LOSS output
 * the pass walks the forward nodes backwards and applies one
 * vector-Jacobian rule per op (a table built from ops.def, so an op without
 * a rule does not compile). Contributions to a node are summed; gradients
 * of broadcast operands are reduced back to the operand's shape. The
 * gradient computation is appended to the same graph as ordinary IR, each
 * node carrying the source location of the forward node it came from, and
 * one OUT_GRAD output ("grad.<name>") is added per trainable, non-frozen
 * parameter and per input named in wrt.
 *
 * Conventions at non-differentiable points: relu'(0) = 0; abs'(0) = 0;
 * maximum/minimum split the gradient equally between tied operands;
 * reduce_max splits it equally among tied maxima; pow follows PyTorch
 * (d/dx is 0 where the exponent is 0, d/dp is 0 where x == 0 and p >= 0).
 *
 * Test hook: with MODELC_TEST_BREAK_VJP=<op> in the environment (an op's
 * text name, e.g. relu), every gradient the rule of that op sends is
 * multiplied by 1.05: a wrong rule that tests of gradcheck must catch
 * (HACKING.md). */
#include "passes.h"

#include <stdlib.h>
#include <string.h>

typedef struct AD {
    Graph *g;
    Diags *d;
    int nfwd;       /* forward nodes have ids below this */
    Node **grad;    /* accumulated gradient of each forward node */
    bool *needed;   /* the loss depends on the node */
    bool *dep;      /* the node depends on a target through differentiable ops */
    SrcLoc loc;     /* location of the forward node being differentiated */
    int broken;     /* the op whose rule the test hook breaks, or -1 */
    bool breaking;  /* the node being differentiated has that op */
    bool failed;
    Node ***parts;  /* by node id: gradients of a loop's results 1.. (result nodes) */
} AD;

typedef void (*GradRule)(AD *c, Node *y, Node *gy);

/* ---- building gradient nodes ---- */

static Node *build(AD *c, Op op, Node **in, int nin, const Attrs *a)
{
    Diags scratch;
    diags_init(&scratch);
    Node *n = ir_op(c->g, op, in, nin, a, c->loc, &scratch);
    if (!n)
        ICE("autodiff built an ill-typed %s node: %s", ir_ops[op].name,
            scratch.n ? scratch.v[0].msg : "?");
    diags_free(&scratch);
    return n;
}

static Node *un(AD *c, Op op, Node *x)
{
    return build(c, op, &x, 1, NULL);
}

static Node *bin(AD *c, Op op, Node *x, Node *y)
{
    Node *in[2] = {x, y};
    return build(c, op, in, 2, NULL);
}

static Node *cst(AD *c, const Node *like, double v)
{
    return ir_const(c->g, like->dt, v, c->loc);
}

static Node *mul(AD *c, Node *x, Node *y)
{
    return bin(c, OP_MUL, x, y);
}

static Node *select3(AD *c, Node *cond, Node *a, Node *b)
{
    Node *in[3] = {cond, a, b};
    return build(c, OP_SELECT, in, 3, NULL);
}

static Node *reshape_to(AD *c, Node *x, const Shape *s)
{
    if (ir_shape_eq(&x->shape, s))
        return x;
    Attrs a = ir_attrs();
    a.shape = *s;
    return build(c, OP_RESHAPE, &x, 1, &a);
}

static Node *broadcast_to(AD *c, Node *x, const Shape *s)
{
    if (ir_shape_eq(&x->shape, s))
        return x;
    Attrs a = ir_attrs();
    a.shape = *s;
    return build(c, OP_BROADCAST, &x, 1, &a);
}

static Node *sum_axes(AD *c, Node *x, const int *axes, int naxes, bool keepdims)
{
    Attrs a = ir_attrs();
    a.naxes = naxes;
    memcpy(a.axes, axes, (size_t)naxes * sizeof(int));
    a.keepdims = keepdims;
    return build(c, OP_REDUCE_SUM, &x, 1, &a);
}

/* Sum a gradient computed at a broadcast result shape back to shape s. */
static Node *unbroadcast(AD *c, Node *gx, const Shape *s)
{
    const Shape *gs = &gx->shape;
    if (ir_shape_eq(gs, s))
        return gx;
    int off = gs->rank - s->rank, axes[IR_MAXRANK], naxes = 0;
    MC_ASSERT(off >= 0);
    for (int k = 0; k < gs->rank; k++)
        if (gs->d[k] == 0) /* a sum of nothing: zeros */
            return broadcast_to(c, cst(c, gx, 0.0), s);
    for (int k = 0; k < gs->rank; k++)
        if (k < off || (s->d[k - off] == 1 && gs->d[k] != 1))
            axes[naxes++] = k;
    Node *r = naxes ? sum_axes(c, gx, axes, naxes, off == 0) : gx;
    return reshape_to(c, r, s);
}

/* ---- accumulating contributions ---- */

static bool wants(AD *c, Node *x)
{
    return x->id < c->nfwd && c->needed[x->id] && c->dep[x->id];
}

static void send(AD *c, Node *x, Node *gx)
{
    if (!wants(c, x))
        return;
    if (c->breaking)
        gx = mul(c, gx, cst(c, gx, 1.05));
    gx = unbroadcast(c, gx, &x->shape);
    if (gx->dt != x->dt)
        ICE("gradient of %s has dtype %s", ir_ops[x->op].name, ir_dtype_name(gx->dt));
    c->grad[x->id] = c->grad[x->id] ? bin(c, OP_ADD, c->grad[x->id], gx) : gx;
}

/* ---- helpers for reductions ---- */

static bool axes_are_prefix(const Attrs *a)
{
    bool seen[IR_MAXRANK] = {0};
    for (int i = 0; i < a->naxes; i++)
        seen[a->axes[i]] = true;
    for (int i = 0; i < a->naxes; i++)
        if (!seen[i])
            return false;
    return true;
}

/* Operand shape with the reduced axes set to 1. */
static Shape kept_shape(const Node *r)
{
    Shape s = r->in[0]->shape;
    for (int i = 0; i < r->a.naxes; i++)
        s.d[r->a.axes[i]] = 1;
    return s;
}

/* Bring a tensor of the reduce node r's result shape into a form that
 * broadcasts against r's operand (inserting the dropped axes when they are
 * not leading). */
static Node *to_kept(AD *c, Node *t, const Node *r)
{
    if (r->a.keepdims || axes_are_prefix(&r->a))
        return t;
    Shape ks = kept_shape(r);
    return reshape_to(c, t, &ks);
}

static Node *unreduce(AD *c, Node *gy, const Node *r)
{
    return broadcast_to(c, to_kept(c, gy, r), &r->in[0]->shape);
}

/* 1 / (number of elements reduced by r); the batch dimension's share is
 * computed at run time as reduce_sum(broadcast(1, [N])). */
static Node *inv_count(AD *c, const Node *r)
{
    const Shape *xs = &r->in[0]->shape;
    int64_t cnt = 1;
    int nn = 0;
    for (int i = 0; i < r->a.naxes; i++) {
        int64_t dim = xs->d[r->a.axes[i]];
        if (ir_dim_is_batch(dim))
            nn++; /* N*k: the factor k counts statically */
        cnt *= ir_dim_factor(dim);
    }
    Node *s = cst(c, r, 1.0 / (double)cnt);
    if (nn == 0)
        return s;
    Shape ns = ir_shape0();
    int axes[IR_MAXRANK];
    for (int i = 0; i < nn; i++) {
        ns.d[ns.rank++] = IR_DIM_N;
        axes[i] = i;
    }
    Node *ones = broadcast_to(c, cst(c, r, 1.0), &ns);
    return bin(c, OP_DIV, s, sum_axes(c, ones, axes, nn, false));
}

/* ---- gradient rules, one per op (grad_<name> for every row of ops.def) ---- */

#define NO_GRADIENT(name)                                                                          \
    static void grad_##name(AD *c, Node *y, Node *gy)                                              \
    {                                                                                              \
        (void)c, (void)y, (void)gy;                                                                \
    }

NO_GRADIENT(input)
NO_GRADIENT(param)
NO_GRADIENT(const)
NO_GRADIENT(sign)
NO_GRADIENT(gt)
NO_GRADIENT(ge)
NO_GRADIENT(lt)
NO_GRADIENT(le)
NO_GRADIENT(eq)
NO_GRADIENT(argmax)
NO_GRADIENT(one_hot)
NO_GRADIENT(dropout_mask)

static void grad_neg(AD *c, Node *y, Node *gy)
{
    send(c, y->in[0], un(c, OP_NEG, gy));
}

static void grad_exp(AD *c, Node *y, Node *gy)
{
    send(c, y->in[0], mul(c, gy, y));
}

static void grad_log(AD *c, Node *y, Node *gy)
{
    send(c, y->in[0], bin(c, OP_DIV, gy, y->in[0]));
}

static void grad_tanh(AD *c, Node *y, Node *gy)
{
    Node *d = bin(c, OP_SUB, cst(c, y, 1), un(c, OP_SQUARE, y));
    send(c, y->in[0], mul(c, gy, d));
}

static void grad_sigmoid(AD *c, Node *y, Node *gy)
{
    Node *d = mul(c, y, bin(c, OP_SUB, cst(c, y, 1), y));
    send(c, y->in[0], mul(c, gy, d));
}

/* erf'(x) = 2/sqrt(pi) * exp(-x^2) */
static void grad_erf(AD *c, Node *y, Node *gy)
{
    Node *x = y->in[0];
    Node *d = mul(c, cst(c, x, 1.1283791670955125738961589031215), un(c, OP_EXP, un(c, OP_NEG, un(c, OP_SQUARE, x))));
    send(c, x, mul(c, gy, d));
}

/* relu'(x) = [x > 0] = [y > 0]: reading y (which the next layer keeps
 * anyway) leaves x with the forward pass as its only reader, so the
 * GEMM producing x fuses with its bias and activation. */
static void grad_relu(AD *c, Node *y, Node *gy)
{
    send(c, y->in[0], mul(c, gy, bin(c, OP_GT, y, cst(c, y, 0))));
}

/* elu'(x) = 1 for x > 0, alpha * exp(x) = y + alpha otherwise. */
static void grad_elu(AD *c, Node *y, Node *gy)
{
    Node *x = y->in[0];
    Node *neg_part = bin(c, OP_ADD, y, cst(c, y, y->a.value));
    Node *d = select3(c, bin(c, OP_GT, x, cst(c, x, 0)), cst(c, y, 1), neg_part);
    send(c, x, mul(c, gy, d));
}

static void grad_sqrt(AD *c, Node *y, Node *gy)
{
    send(c, y->in[0], bin(c, OP_DIV, mul(c, gy, cst(c, y, 0.5)), y));
}

/* rsqrt'(x) = -0.5 * x^(-3/2) = -0.5 * y^3 */
static void grad_rsqrt(AD *c, Node *y, Node *gy)
{
    Node *y3 = mul(c, y, un(c, OP_SQUARE, y));
    send(c, y->in[0], mul(c, mul(c, gy, cst(c, y, -0.5)), y3));
}

static void grad_square(AD *c, Node *y, Node *gy)
{
    Node *x = y->in[0];
    send(c, x, mul(c, gy, mul(c, x, cst(c, x, 2))));
}

static void grad_abs(AD *c, Node *y, Node *gy)
{
    Node *x = y->in[0];
    send(c, x, mul(c, gy, un(c, OP_SIGN, x)));
}

static void grad_cast(AD *c, Node *y, Node *gy)
{
    Node *x = y->in[0];
    if (!ir_dtype_is_float(x->dt) || !ir_dtype_is_float(y->dt) || !wants(c, x))
        return;
    Attrs a = ir_attrs();
    a.to = x->dt;
    send(c, x, build(c, OP_CAST, &gy, 1, &a));
}

static void grad_add(AD *c, Node *y, Node *gy)
{
    send(c, y->in[0], gy);
    send(c, y->in[1], gy);
}

static void grad_sub(AD *c, Node *y, Node *gy)
{
    send(c, y->in[0], gy);
    if (wants(c, y->in[1]))
        send(c, y->in[1], un(c, OP_NEG, gy));
}

static void grad_mul(AD *c, Node *y, Node *gy)
{
    Node *a = y->in[0], *b = y->in[1];
    if (wants(c, a))
        send(c, a, mul(c, gy, b));
    if (wants(c, b))
        send(c, b, mul(c, gy, a));
}

static void grad_div(AD *c, Node *y, Node *gy)
{
    Node *a = y->in[0], *b = y->in[1];
    if (wants(c, a))
        send(c, a, bin(c, OP_DIV, gy, b));
    if (wants(c, b)) {
        Node *q = bin(c, OP_DIV, mul(c, gy, a), un(c, OP_SQUARE, b));
        send(c, b, un(c, OP_NEG, q));
    }
}

static void grad_pow(AD *c, Node *y, Node *gy)
{
    Node *x = y->in[0], *p = y->in[1];
    if (wants(c, x)) {
        Node *pm1 = bin(c, OP_SUB, p, cst(c, p, 1));
        Node *d = mul(c, p, bin(c, OP_POW, x, pm1));
        Node *p0 = bin(c, OP_EQ, p, cst(c, p, 0));
        send(c, x, mul(c, gy, select3(c, p0, cst(c, y, 0), d)));
    }
    if (wants(c, p)) {
        Node *d = mul(c, y, un(c, OP_LOG, x));
        Node *x0 = bin(c, OP_EQ, x, cst(c, x, 0)), *pge = bin(c, OP_GE, p, cst(c, p, 0));
        send(c, p, mul(c, gy, select3(c, mul(c, x0, pge), cst(c, y, 0), d)));
    }
}

/* maximum/minimum: the winner takes the gradient; ties split it equally. */
static Node *extremum_share(AD *c, Node *y, Op win, Node *a, Node *b)
{
    Node *tie = bin(c, OP_EQ, a, b);
    return select3(c, tie, cst(c, y, 0.5), bin(c, win, a, b));
}

static void grad_extremum(AD *c, Node *y, Node *gy, Op win_a, Op win_b)
{
    Node *a = y->in[0], *b = y->in[1];
    if (wants(c, a))
        send(c, a, mul(c, gy, extremum_share(c, y, win_a, a, b)));
    if (wants(c, b))
        send(c, b, mul(c, gy, extremum_share(c, y, win_b, a, b)));
}

static void grad_maximum(AD *c, Node *y, Node *gy)
{
    grad_extremum(c, y, gy, OP_GT, OP_LT);
}

static void grad_minimum(AD *c, Node *y, Node *gy)
{
    grad_extremum(c, y, gy, OP_LT, OP_GT);
}

static void grad_select(AD *c, Node *y, Node *gy)
{
    Node *cond = y->in[0], *a = y->in[1], *b = y->in[2];
    if (wants(c, a))
        send(c, a, select3(c, cond, gy, cst(c, y, 0)));
    if (wants(c, b))
        send(c, b, select3(c, cond, cst(c, y, 0), gy));
}

static void grad_reduce_sum(AD *c, Node *y, Node *gy)
{
    send(c, y->in[0], unreduce(c, gy, y));
}

static void grad_reduce_mean(AD *c, Node *y, Node *gy)
{
    send(c, y->in[0], unreduce(c, mul(c, gy, inv_count(c, y)), y));
}

/* The maxima share the gradient: mask / count(mask) per reduced slice. */
static void grad_reduce_max(AD *c, Node *y, Node *gy)
{
    Node *x = y->in[0];
    Node *mask = bin(c, OP_EQ, x, to_kept(c, y, y));
    Attrs a = y->a;
    a.keepdims = true;
    Node *cnt = build(c, OP_REDUCE_SUM, &mask, 1, &a);
    send(c, x, mul(c, mask, bin(c, OP_DIV, to_kept(c, gy, y), cnt)));
}

static void grad_broadcast(AD *c, Node *y, Node *gy)
{
    send(c, y->in[0], gy);
}

static void grad_reshape(AD *c, Node *y, Node *gy)
{
    send(c, y->in[0], reshape_to(c, gy, &y->in[0]->shape));
}

static void grad_transpose(AD *c, Node *y, Node *gy)
{
    Attrs a = ir_attrs();
    a.naxes = y->a.naxes;
    for (int k = 0; k < a.naxes; k++)
        a.axes[y->a.axes[k]] = k;
    send(c, y->in[0], build(c, OP_TRANSPOSE, &gy, 1, &a));
}

static Attrs slice_attrs(const Attrs *src)
{
    Attrs a = ir_attrs();
    memcpy(a.begin, src->begin, sizeof a.begin);
    memcpy(a.end, src->end, sizeof a.end);
    memcpy(a.step, src->step, sizeof a.step);
    return a;
}

static void grad_slice(AD *c, Node *y, Node *gy)
{
    Attrs a = slice_attrs(&y->a);
    a.shape = y->in[0]->shape;
    send(c, y->in[0], build(c, OP_SLICE_GRAD, &gy, 1, &a));
}

static void grad_slice_grad(AD *c, Node *y, Node *gy)
{
    Attrs a = slice_attrs(&y->a);
    send(c, y->in[0], build(c, OP_SLICE, &gy, 1, &a));
}

static void grad_concat(AD *c, Node *y, Node *gy)
{
    int ax = y->a.axes[0];
    int64_t off = 0;
    for (int i = 0; i < y->nin; i++) {
        Node *x = y->in[i];
        int64_t len = x->shape.d[ax];
        if (wants(c, x)) {
            Attrs a = ir_attrs();
            for (int k = 0; k < IR_MAXRANK; k++)
                a.end[k] = INT64_MAX;
            a.begin[ax] = off;
            a.end[ax] = off + len;
            send(c, x, build(c, OP_SLICE, &gy, 1, &a));
        }
        off += len;
    }
}

/* The indices get no gradient (the result is piecewise constant in them). */
static void grad_gather(AD *c, Node *y, Node *gy)
{
    Attrs a = ir_attrs();
    a.naxes = 1;
    a.axes[0] = y->a.axes[0];
    a.shape = y->in[0]->shape;
    Node *in[2] = {gy, y->in[1]};
    send(c, y->in[0], build(c, OP_GATHER_GRAD, in, 2, &a));
}

static void grad_gather_grad(AD *c, Node *y, Node *gy)
{
    Attrs a = ir_attrs();
    a.naxes = 1;
    a.axes[0] = y->a.axes[0];
    Node *in[2] = {gy, y->in[1]};
    send(c, y->in[0], build(c, OP_GATHER, in, 2, &a));
}

static Node *matmul(AD *c, Node *a, Node *b, bool ta, bool tb, double alpha)
{
    Attrs at = ir_attrs();
    at.ta = ta;
    at.tb = tb;
    at.alpha = alpha;
    Node *in[2] = {a, b};
    return build(c, OP_MATMUL, in, 2, &at);
}

/* C = alpha op(A) op(B) with op = transpose when the flag is set. No
 * transpose is materialised: every case is one matmul with flags (and
 * the same alpha). */
static void grad_matmul(AD *c, Node *y, Node *gy)
{
    Node *a = y->in[0], *b = y->in[1];
    bool ta = y->a.ta, tb = y->a.tb;
    double al = y->a.alpha;
    if (wants(c, a)) {
        Node *da = !ta ? matmul(c, gy, b, false, !tb, al) /* G op(B)^T */
                       : matmul(c, b, gy, tb, true, al);  /* (G op(B)^T)^T = op(B) G^T */
        send(c, a, da);
    }
    if (wants(c, b)) {
        Node *db = !tb ? matmul(c, a, gy, !ta, false, al) /* op(A)^T G */
                       : matmul(c, gy, a, true, ta, al);  /* (op(A)^T G)^T = G^T op(A) */
        send(c, b, db);
    }
}

static Attrs window_attrs(const Attrs *src, const Shape *result)
{
    Attrs a = ir_attrs();
    memcpy(a.stride, src->stride, sizeof a.stride);
    memcpy(a.pad, src->pad, sizeof a.pad);
    memcpy(a.window, src->window, sizeof a.window);
    if (result)
        a.shape = *result;
    return a;
}

static Node *conv_op(AD *c, Op op, Node *p, Node *q, const Attrs *src, const Shape *result)
{
    Attrs a = window_attrs(src, result);
    Node *in[2] = {p, q};
    return build(c, op, in, 2, &a);
}

/* y = alpha conv2d(x, k): both gradients are of alpha dy. */
static void grad_conv2d(AD *c, Node *y, Node *gy)
{
    Node *x = y->in[0], *k = y->in[1];
    if (y->a.alpha != 1)
        gy = mul(c, gy, cst(c, gy, y->a.alpha));
    if (wants(c, x))
        send(c, x, conv_op(c, OP_CONV2D_GRAD_INPUT, gy, k, &y->a, &x->shape));
    if (wants(c, k))
        send(c, k, conv_op(c, OP_CONV2D_GRAD_KERNEL, x, gy, &y->a, &k->shape));
}

/* y = conv2d_grad_input(dy, k) is linear in dy and in k. */
static void grad_conv2d_grad_input(AD *c, Node *y, Node *gy)
{
    Node *dy = y->in[0], *k = y->in[1];
    if (wants(c, dy))
        send(c, dy, conv_op(c, OP_CONV2D, gy, k, &y->a, NULL));
    if (wants(c, k))
        send(c, k, conv_op(c, OP_CONV2D_GRAD_KERNEL, gy, dy, &y->a, &k->shape));
}

/* y = conv2d_grad_kernel(x, dy) is linear in x and in dy. */
static void grad_conv2d_grad_kernel(AD *c, Node *y, Node *gy)
{
    Node *x = y->in[0], *dy = y->in[1];
    if (wants(c, x))
        send(c, x, conv_op(c, OP_CONV2D_GRAD_INPUT, dy, gy, &y->a, &x->shape));
    if (wants(c, dy))
        send(c, dy, conv_op(c, OP_CONV2D, x, gy, &y->a, NULL));
}

static void grad_max_pool2d(AD *c, Node *y, Node *gy)
{
    Node *x = y->in[0];
    send(c, x, conv_op(c, OP_MAX_POOL2D_GRAD, x, gy, &y->a, NULL));
}

/* Routing through max_pool2d_grad is piecewise constant in x; its
 * adjoint in dy (a gather at the window maxima) has no primitive. */
static void grad_max_pool2d_grad(AD *c, Node *y, Node *gy)
{
    (void)gy;
    if (!wants(c, y->in[1]))
        return;
    diag_error(c->d, y->loc, "second derivative through max_pool2d is not supported");
    c->failed = true;
}

static void grad_avg_pool2d(AD *c, Node *y, Node *gy)
{
    Attrs a = window_attrs(&y->a, &y->in[0]->shape);
    send(c, y->in[0], build(c, OP_AVG_POOL2D_GRAD, &gy, 1, &a));
}

static void grad_avg_pool2d_grad(AD *c, Node *y, Node *gy)
{
    Attrs a = window_attrs(&y->a, NULL);
    send(c, y->in[0], build(c, OP_AVG_POOL2D, &gy, 1, &a));
}

static Node *sum_axis_keep(AD *c, Node *x, int axis)
{
    return sum_axes(c, x, &axis, 1, true);
}

/* softmax: dx = y * (g - sum(g * y)) */
static void grad_softmax(AD *c, Node *y, Node *gy)
{
    Node *s = sum_axis_keep(c, mul(c, gy, y), y->a.axes[0]);
    send(c, y->in[0], mul(c, y, bin(c, OP_SUB, gy, s)));
}

/* log_softmax: dx = g - exp(y) * sum(g) */
static void grad_log_softmax(AD *c, Node *y, Node *gy)
{
    Node *s = sum_axis_keep(c, gy, y->a.axes[0]);
    send(c, y->in[0], bin(c, OP_SUB, gy, mul(c, un(c, OP_EXP, y), s)));
}

/* Made by fuse from a loss and its gradient, after autodiff. */
static void grad_after_fuse(AD *c, Node *y)
{
    diag_error(c->d, y->loc, "cannot differentiate %s: it comes from fuse, run autodiff before fuse",
               ir_ops[y->op].name);
    c->failed = true;
}

static void grad_log_softmax_dot(AD *c, Node *y, Node *gy)
{
    (void)gy;
    grad_after_fuse(c, y);
}

static void grad_log_softmax_grad(AD *c, Node *y, Node *gy)
{
    (void)gy;
    grad_after_fuse(c, y);
}

static void grad_phase(AD *c, Node *y, Node *gy)
{
    (void)gy;
    diag_error(c->d, y->loc, "phase node for '%s' is still in the graph: run specialize before autodiff",
               y->a.name ? y->a.name : "?");
    c->failed = true;
}

/* The weighted mean over the processes is its own adjoint: each process
 * differentiates its own loss and its gradients are weighted by its share
 * w_r before they are summed, so the gradient that reaches x on process r
 * is the mean of the processes' incoming gradients (docs/ops.md). */
static void grad_replica_mean(AD *c, Node *y, Node *gy)
{
    send(c, y->in[0], un(c, OP_REPLICA_MEAN, gy));
}

static void grad_fused(AD *c, Node *y, Node *gy)
{
    (void)gy;
    diag_error(c->d, y->loc, "cannot differentiate a fused node: run autodiff before fuse");
    c->failed = true;
}

/* A loop's result j: its gradient waits for the loop's rule (which runs
 * later, walking backwards), and the loop gets a gradient of its value
 * (zeros when nothing reads it) so that the rule runs. */
static void grad_result(AD *c, Node *y, Node *gy)
{
    Node *f = y->in[0];
    if (f->op != OP_LOOP) {
        grad_after_fuse(c, y);
        return;
    }
    if (!wants(c, f))
        return;
    if (!c->parts)
        c->parts = xcalloc((size_t)c->nfwd, sizeof(Node **));
    Node **p = c->parts[f->id];
    if (!p)
        p = c->parts[f->id] = xcalloc((size_t)f->sub->nouts, sizeof(Node *));
    int j = y->a.index;
    p[j] = p[j] ? bin(c, OP_ADD, p[j], gy) : gy;
    if (!c->grad[f->id])
        c->grad[f->id] = broadcast_to(c, cst(c, f, 0), &f->shape);
}

/* ---- loops: the adjoint is a reverse loop over the saved states ---- */

static Node *zeros_like(AD *c, const Node *x)
{
    return broadcast_to(c, cst(c, x, 0), &x->shape);
}

static Node *result_of(AD *c, Node *f, int j)
{
    if (j == 0)
        return f;
    Attrs a = ir_attrs();
    a.index = j;
    return build(c, OP_RESULT, &f, 1, &a);
}

/* Copy forward body node x into b->g with operands from map. */
static Node *clone_body_node(AD *b, Node *x, Node **map)
{
    Node **in = xmalloc(((size_t)x->nin + 1) * sizeof(Node *));
    for (int j = 0; j < x->nin; j++)
        in[j] = map[x->in[j]->id];
    Node *r;
    b->loc = x->loc;
    if (x->op == OP_CONST) {
        r = ir_const(b->g, x->dt, x->a.value, x->loc);
    } else if (x->sub) {
        Diags scratch;
        diags_init(&scratch);
        r = x->op == OP_LOOP ? ir_loop(b->g, ir_clone(x->sub), in, x->nin, x->a.nseq, x->a.reverse, x->loc, &scratch)
                             : ir_fused(b->g, ir_clone(x->sub), in, x->nin, x->loc, &scratch);
        if (!r)
            ICE("autodiff could not copy a %s body: %s", ir_ops[x->op].name, scratch.n ? scratch.v[0].msg : "?");
        diags_free(&scratch);
    } else {
        r = build(b, x->op, in, x->nin, &x->a);
    }
    r->label = x->label;
    xfree(in);
    return r;
}

static const GradRule grad_rules[OP_COUNT];

/* Reverse mode inside a body graph b->g whose first b->nfwd nodes are
 * the forward computation: gradients seeded at some of them (b->grad),
 * flowing to the nodes marked in b->dep's targets. */
static void body_backward(AD *b)
{
    for (int i = 0; i < b->nfwd; i++) {
        Node *n = b->g->nodes[i];
        if (b->dep[i] || !ir_op_has(n->op, OPF_DIFF) || !ir_dtype_is_float(n->dt))
            continue;
        for (int j = 0; j < n->nin && !b->dep[i]; j++)
            b->dep[i] = b->dep[n->in[j]->id];
    }
    for (int i = b->nfwd - 1; i >= 0; i--)
        if (b->needed[i])
            for (int j = 0; j < b->g->nodes[i]->nin; j++)
                b->needed[b->g->nodes[i]->in[j]->id] = true;
    for (int i = b->nfwd - 1; i >= 0 && !b->failed; i--) {
        Node *n = b->g->nodes[i];
        if (!b->grad[i] || !b->needed[i] || !b->dep[i])
            continue;
        b->loc = n->loc;
        b->breaking = (int)n->op == b->broken;
        grad_rules[n->op](b, n, b->grad[i]);
        b->breaking = false;
    }
}

/* What the adjoint loop of loop L reads and writes. */
typedef struct LoopAdj {
    Node *L;
    int nc, ns, ni, nout; /* carried, sequences, invariants, body outputs before saving */
    Node **gout;          /* gradient of each result (NULL: none) */
    bool *want;           /* by operand: its gradient is sent */
    int nacc, ngs;        /* invariants with a gradient, per-step results with one */
} LoopAdj;

/* The backward body: inputs are the carried gradients of the states and
 * the sums of the invariants' gradients; then the sequences, the saved
 * states before each step and the gradients of the per-step results;
 * then the invariants. The forward body is copied after them and
 * differentiated; its outputs are the updated carried gradients, then
 * the gradient of each sequence that wants one. */
static Graph *adjoint_body(AD *c, LoopAdj *A, Diags *d)
{
    Node *L = A->L;
    Graph *F = L->sub, *G = ir_graph_new("loop_grad");
    Node **fin = xcalloc((size_t)L->nin + 1, sizeof(Node *));
    for (int i = 0, k = 0; i < F->nnodes; i++)
        if (F->nodes[i]->op == OP_INPUT)
            fin[k++] = F->nodes[i];
    Node **dh = xcalloc((size_t)A->nc + 1, sizeof(Node *)), **acc = xcalloc((size_t)A->ni + 1, sizeof(Node *));
    Node **map = xcalloc((size_t)F->nnodes + 1, sizeof(Node *)), **gs = xcalloc((size_t)A->nout + 1, sizeof(Node *));
    SrcLoc none = {0};
    for (int j = 0; j < A->nc; j++)
        dh[j] = ir_input(G, arena_printf(G->arena, "d%s", fin[j]->a.name), fin[j]->dt, fin[j]->shape, none);
    for (int m = 0; m < A->ni; m++)
        if (A->want[A->nc + A->ns + m]) {
            Node *w = fin[A->nc + A->ns + m];
            acc[m] = ir_input(G, arena_printf(G->arena, "d%s", w->a.name), w->dt, w->shape, none);
        }
    for (int s = 0; s < A->ns; s++)
        map[fin[A->nc + s]->id] = ir_input(G, fin[A->nc + s]->a.name, fin[A->nc + s]->dt, fin[A->nc + s]->shape, none);
    for (int j = 0; j < A->nc; j++)
        map[fin[j]->id] = ir_input(G, fin[j]->a.name, fin[j]->dt, fin[j]->shape, none);
    for (int k = A->nc; k < A->nout; k++)
        if (A->gout[k]) {
            Node *v = F->outs[k].val;
            gs[k] = ir_input(G, arena_printf(G->arena, "dout%d", k), v->dt, v->shape, none);
        }
    for (int m = 0; m < A->ni; m++) {
        Node *w = fin[A->nc + A->ns + m];
        map[w->id] = ir_input(G, w->a.name, w->dt, w->shape, none);
    }
    AD b = {.g = G, .d = d, .broken = c->broken};
    for (int i = 0; i < F->nnodes; i++) {
        F->nodes[i]->id = i;
        if (F->nodes[i]->op != OP_INPUT)
            map[i] = clone_body_node(&b, F->nodes[i], map);
    }
    b.nfwd = G->nnodes;
    b.grad = xcalloc((size_t)b.nfwd, sizeof(Node *));
    b.needed = xcalloc((size_t)b.nfwd, sizeof(bool));
    b.dep = xcalloc((size_t)b.nfwd, sizeof(bool));
    for (int k = 0; k < A->nout; k++) {
        Node *seed = k < A->nc ? dh[k] : gs[k], *at = map[F->outs[k].val->id];
        if (!seed)
            continue;
        b.loc = at->loc;
        b.grad[at->id] = b.grad[at->id] ? bin(&b, OP_ADD, b.grad[at->id], seed) : seed;
        b.needed[at->id] = true;
    }
    for (int k = 0; k < L->nin; k++)
        if (k < A->nc || A->want[k])
            b.dep[map[fin[k]->id]->id] = true;
    body_backward(&b);
    for (int j = 0; j < A->nc; j++) {
        Node *h = map[fin[j]->id], *g = b.grad[h->id] ? b.grad[h->id] : zeros_like(&b, h);
        ir_add_output(G, OUT_UPDATE, NULL, g, dh[j], false);
    }
    for (int m = 0; m < A->ni; m++) {
        if (!acc[m])
            continue;
        Node *w = map[fin[A->nc + A->ns + m]->id];
        Node *g = b.grad[w->id] ? bin(&b, OP_ADD, acc[m], b.grad[w->id]) : acc[m];
        ir_add_output(G, OUT_UPDATE, NULL, g, acc[m], false);
    }
    for (int s = 0; s < A->ns; s++) {
        if (!A->want[A->nc + s])
            continue;
        Node *x = map[fin[A->nc + s]->id];
        ir_add_output(G, OUT_VALUE, NULL, b.grad[x->id] ? b.grad[x->id] : zeros_like(&b, x), NULL, false);
    }
    c->failed |= b.failed;
    if (b.parts)
        for (int i = 0; i < b.nfwd; i++)
            xfree(b.parts[i]);
    xfree(b.parts);
    xfree(b.grad);
    xfree(b.needed);
    xfree(b.dep);
    xfree(fin);
    xfree(dh);
    xfree(acc);
    xfree(map);
    xfree(gs);
    return G;
}

/* The forward loop also returns the carried states before each step
 * (results nout.., stacked), which the adjoint reads in reverse. */
static Node **save_states(AD *c, LoopAdj *A)
{
    Node *L = A->L;
    Graph *F = L->sub;
    Node **saved = xcalloc((size_t)A->nc, sizeof(Node *));
    for (int j = 0, k = 0; j < F->nnodes && k < A->nc; j++)
        if (F->nodes[j]->op == OP_INPUT)
            ir_add_output(F, OUT_VALUE, NULL, F->nodes[j], NULL, false), k++;
    for (int j = 0; j < A->nc; j++)
        saved[j] = result_of(c, L, A->nout + j);
    return saved;
}

static void grad_loop(AD *c, Node *L, Node *gy)
{
    Graph *F = L->sub;
    LoopAdj A = {L, ir_loop_ncarry(L), L->a.nseq, 0, F->nouts, NULL, NULL, 0, 0};
    A.ni = L->nin - A.nc - A.ns;
    for (int j = 0; j < A.nc; j++)
        if (F->outs[j].val->shape.rank < 1 || F->outs[j].val->shape.rank >= IR_MAXRANK) {
            diag_error(c->d, L->loc, "cannot differentiate a loop whose carried state %d has rank %d", j,
                       F->outs[j].val->shape.rank);
            c->failed = true;
            return;
        }
    A.gout = xcalloc((size_t)A.nout, sizeof(Node *));
    A.want = xcalloc((size_t)L->nin, sizeof(bool));
    A.gout[0] = gy;
    for (int j = 1; j < A.nout; j++)
        A.gout[j] = c->parts && c->parts[L->id] ? c->parts[L->id][j] : NULL;
    for (int k = 0; k < L->nin; k++)
        A.want[k] = wants(c, L->in[k]);
    for (int m = 0; m < A.ni; m++)
        A.nacc += A.want[A.nc + A.ns + m];
    for (int k = A.nc; k < A.nout; k++)
        A.ngs += A.gout[k] != NULL;
    Node **saved = save_states(c, &A);
    Graph *G = adjoint_body(c, &A, c->d);
    int nops = 0, cap = A.nc + A.nacc + A.ns + A.nc + A.ngs + A.ni;
    Node **ops = xcalloc((size_t)cap + 1, sizeof(Node *));
    for (int j = 0; j < A.nc; j++)
        ops[nops++] = A.gout[j] ? A.gout[j] : zeros_like(c, L->in[j]);
    for (int m = 0; m < A.ni; m++)
        if (A.want[A.nc + A.ns + m])
            ops[nops++] = zeros_like(c, L->in[A.nc + A.ns + m]);
    for (int s = 0; s < A.ns; s++)
        ops[nops++] = L->in[A.nc + s];
    for (int j = 0; j < A.nc; j++)
        ops[nops++] = saved[j];
    for (int k = A.nc; k < A.nout; k++)
        if (A.gout[k])
            ops[nops++] = A.gout[k];
    for (int m = 0; m < A.ni; m++)
        ops[nops++] = L->in[A.nc + A.ns + m];
    Diags scratch;
    diags_init(&scratch);
    Node *R = ir_loop(c->g, G, ops, nops, A.ns + A.nc + A.ngs, !L->a.reverse, L->loc, &scratch);
    if (!R)
        ICE("autodiff built an ill-typed adjoint loop: %s", scratch.n ? scratch.v[0].msg : "?");
    diags_free(&scratch);
    int r = 0;
    for (int j = 0; j < A.nc; j++, r++)
        if (A.want[j])
            send(c, L->in[j], result_of(c, R, r));
    for (int m = 0; m < A.ni; m++)
        if (A.want[A.nc + A.ns + m])
            send(c, L->in[A.nc + A.ns + m], result_of(c, R, r++));
    for (int s = 0; s < A.ns; s++)
        if (A.want[A.nc + s])
            send(c, L->in[A.nc + s], result_of(c, R, r++));
    xfree(ops);
    xfree(saved);
    xfree(A.gout);
    xfree(A.want);
}

static const GradRule grad_rules[OP_COUNT] = {
#define OP(E, name, ...) [OP_##E] = grad_##name,
#include "ir/ops.def"
#undef OP
};

/* ---- the pass ---- */

static SrcLoc graph_loc(const Graph *g)
{
    SrcLoc l = {g->nfiles ? g->files[0] : NULL, 0, 0};
    return l;
}

static Node *find_loss(Graph *g, Diags *d)
{
    Node *loss = NULL;
    int nloss = 0;
    for (int i = 0; i < g->nouts; i++) {
        if (g->outs[i].kind == OUT_GRAD) {
            diag_error(d, graph_loc(g), "model '%s' already has gradients", g->name);
            return NULL;
        }
        if (g->outs[i].kind == OUT_LOSS && nloss++ == 0)
            loss = g->outs[i].val;
    }
    if (nloss != 1) {
        if (nloss == 0)
            diag_error(d, graph_loc(g), "model '%s' has no loss to differentiate", g->name);
        else
            diag_error(d, graph_loc(g), "model '%s' has %d losses; autodiff needs exactly one",
                       g->name, nloss);
        return NULL;
    }
    if (loss->shape.rank != 0 || !ir_dtype_is_float(loss->dt)) {
        char t[128];
        diag_error(d, loss->loc, "the loss must be a floating-point scalar, got %s",
                   ir_type_str(loss->dt, &loss->shape, t, sizeof t));
        return NULL;
    }
    return loss;
}

static bool is_target(const Graph *g, const Node *n, Node *const *wrt, int nwrt)
{
    if (!ir_dtype_is_float(n->dt))
        return false;
    if (n->op == OP_PARAM)
        return !ps_is_frozen(g, n);
    for (int i = 0; i < nwrt; i++)
        if (wrt[i] == n)
            return true;
    return false;
}

static void mark(AD *c, Node *loss, Node *const *wrt, int nwrt)
{
    for (int i = 0; i < c->nfwd; i++) {
        Node *n = c->g->nodes[i];
        if (is_target(c->g, n, wrt, nwrt)) {
            c->dep[i] = true;
            continue;
        }
        if (!ir_op_has(n->op, OPF_DIFF) || !ir_dtype_is_float(n->dt))
            continue;
        for (int j = 0; j < n->nin && !c->dep[i]; j++)
            c->dep[i] = c->dep[n->in[j]->id];
    }
    c->needed[loss->id] = true;
    for (int i = loss->id; i >= 0; i--)
        if (c->needed[i])
            for (int j = 0; j < c->g->nodes[i]->nin; j++)
                c->needed[c->g->nodes[i]->in[j]->id] = true;
}

static bool resolve_wrt(Graph *g, const char *const *names, int n, Node **out, Diags *d)
{
    for (int i = 0; i < n; i++) {
        out[i] = ir_find_input(g, names[i]);
        if (!out[i]) {
            diag_error(d, graph_loc(g), "cannot differentiate with respect to '%s': model '%s' has no input of that name",
                       names[i], g->name);
            return false;
        }
        if (!ir_dtype_is_float(out[i]->dt)) {
            diag_error(d, out[i]->loc, "cannot differentiate with respect to %s input '%s'",
                       ir_dtype_name(out[i]->dt), names[i]);
            return false;
        }
    }
    return true;
}

/* The gradient of a target, or zeros (with a warning) when none arrived. */
static Node *final_grad(AD *c, Node *t)
{
    if (c->grad[t->id])
        return c->grad[t->id];
    const char *what = t->op == OP_PARAM ? "parameter" : "input";
    if (c->needed[t->id])
        diag_warning(c->d, t->loc,
                     "the loss depends on %s '%s' only through non-differentiable ops; its gradient is zero",
                     what, t->a.name);
    else
        diag_warning(c->d, t->loc, "the loss does not depend on %s '%s'; its gradient is zero", what,
                     t->a.name);
    c->loc = t->loc;
    return broadcast_to(c, cst(c, t, 0), &t->shape);
}

static void add_grad_output(AD *c, Node *t)
{
    char *name = arena_printf(c->g->arena, "grad.%s", t->a.name);
    ir_add_output(c->g, OUT_GRAD, name, final_grad(c, t), t, false);
}

static void backward(AD *c, Node *loss)
{
    c->loc = loss->loc;
    c->grad[loss->id] = cst(c, loss, 1);
    for (int i = loss->id; i >= 0 && !c->failed; i--) {
        Node *n = c->g->nodes[i];
        if (!c->grad[i] || !c->needed[i] || !c->dep[i])
            continue;
        c->loc = n->loc;
        c->breaking = (int)n->op == c->broken;
        grad_rules[n->op](c, n, c->grad[i]);
        c->breaking = false;
    }
}

bool ps_autodiff(Graph *g, const char *const *wrt, int nwrt, Diags *d)
{
    Node *loss = find_loss(g, d);
    if (!loss)
        return false;
    Node **wrt_nodes = xcalloc((size_t)nwrt + 1, sizeof(Node *));
    if (!resolve_wrt(g, wrt, nwrt, wrt_nodes, d)) {
        xfree(wrt_nodes);
        return false;
    }
    const char *broken = getenv("MODELC_TEST_BREAK_VJP");
    AD c = {.g = g, .d = d, .nfwd = g->nnodes, .broken = broken ? ir_op_from_name(broken) : -1};
    for (int i = 0; i < g->nnodes; i++)
        g->nodes[i]->id = i;
    size_t n = (size_t)g->nnodes;
    c.grad = xcalloc(n, sizeof(Node *));
    c.needed = xcalloc(n, sizeof(bool));
    c.dep = xcalloc(n, sizeof(bool));
    mark(&c, loss, wrt_nodes, nwrt);
    backward(&c, loss);
    if (!c.failed) {
        for (int i = 0; i < c.nfwd; i++) {
            Node *p = g->nodes[i];
            if (p->op == OP_PARAM && is_target(g, p, NULL, 0))
                add_grad_output(&c, p);
        }
        for (int i = 0; i < nwrt; i++) {
            bool dup = false;
            for (int j = 0; j < i; j++)
                dup |= wrt_nodes[j] == wrt_nodes[i];
            if (!dup)
                add_grad_output(&c, wrt_nodes[i]);
        }
    }
    if (c.parts)
        for (int i = 0; i < c.nfwd; i++)
            xfree(c.parts[i]);
    xfree(c.parts);
    xfree(c.grad);
    xfree(c.needed);
    xfree(c.dep);
    xfree(wrt_nodes);
    return !c.failed;
}
