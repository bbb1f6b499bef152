/* Moment analysis at initialisation: the per-element mean and second
 * moment of every node, propagated forward from the initializers and the
 * input statistics through matmul, conv2d, elementwise ops, reductions and
 * activations (mean-field: elements independent, pre-activations treated
 * as Gaussian where an activation needs a distribution), and the second
 * moment of the gradient propagated backward from one node. */
#include "warn.h"
#include "backend/interp/interp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* std of a standard normal truncated to [-2, 2] (runtime/init.c) */
#define TRUNC_STD 0.87962566103423978

static Moment mom(double mean, double m2)
{
    Moment m = {true, mean, m2 < mean * mean ? mean * mean : m2};
    return m;
}

static const Moment unknown = {false, 0, 0};

static double var_of(Moment m)
{
    double v = m.m2 - m.mean * m.mean;
    return v > 0 ? v : 0;
}

/* ---- Gaussian expectations ---- */

static double sigm(double z)
{
    return z >= 0 ? 1 / (1 + exp(-z)) : exp(z) / (1 + exp(z));
}

static bool positive_domain(Op op)
{
    return ir_op_has(op, OPF_POSDOMAIN);
}

/* f(z) for a differentiable unary op, by the interpreter's f64 kernel;
 * NAN for other ops (sign is piecewise constant: no Gaussian rule). */
static double apply(Op op, double alpha, double z)
{
    if (ir_ops[op].cls != OPC_UNARY || !ir_op_has(op, OPF_DIFF))
        return NAN;
    return be_interp_elem(op, DT_F64, alpha, &z);
}

static double deriv(Op op, double alpha, double z)
{
    switch (op) {
    case OP_EXP:
        return exp(z);
    case OP_LOG:
        return 1 / z;
    case OP_TANH:
        return 1 - tanh(z) * tanh(z);
    case OP_SIGMOID:
        return sigm(z) * (1 - sigm(z));
    case OP_RELU:
        return z > 0;
    case OP_ELU:
        return z > 0 ? 1 : alpha * exp(z);
    case OP_SQRT:
        return 0.5 / sqrt(z);
    case OP_RSQRT:
        return -0.5 / (z * sqrt(z));
    case OP_ABS:
        return z > 0 ? 1 : z < 0 ? -1 : 0;
    default:
        return NAN;
    }
}

/* E[h(z)] for z ~ N(mean, var) by Simpson's rule over mean +- 10 std;
 * h(z) = f(z)^p (which = 0) or f'(z)^2 (which = 1). */
static double gauss_expect(Op op, double alpha, double mean, double var, int which, int p)
{
    double sd = sqrt(var);
    if (sd < 1e-300) {
        double v = which ? deriv(op, alpha, mean) : apply(op, alpha, mean);
        return which ? v * v : pow(v, p);
    }
    enum { STEPS = 4000 };
    double lo = mean - 10 * sd, h = 20 * sd / STEPS, sum = 0;
    for (int i = 0; i <= STEPS; i++) {
        double z = lo + i * h, t = (z - mean) / sd;
        double f = which ? deriv(op, alpha, z) : apply(op, alpha, z);
        double v = (which ? f * f : pow(f, p)) * exp(-0.5 * t * t);
        sum += v * (i == 0 || i == STEPS ? 1 : i % 2 ? 4 : 2);
    }
    return sum * h / 3 / (sd * sqrt(2 * M_PI));
}

/* log, sqrt and rsqrt take positive operands: their moments come from a
 * second-order expansion around the mean (accurate while the spread is
 * small, as for batch variances), and only when the mean is at least
 * three standard deviations above zero. */
static bool domain_ok(Op op, double mean, double var)
{
    return !positive_domain(op) || mean > 3 * sqrt(var);
}

/* E[h(z)] ~ h(mu) + h''(mu) var / 2 with h = f^p (p = 1, 2). */
static double delta_expect(Op op, double mean, double var, int p)
{
    double h = mean * 1e-3;
    double f0 = pow(apply(op, 0, mean), p), fp = pow(apply(op, 0, mean + h), p),
           fm = pow(apply(op, 0, mean - h), p);
    return f0 + (fp - 2 * f0 + fm) / (h * h) * var / 2;
}

bool ps_gauss_unary(Op op, double alpha, double mean, double var, double *e1, double *e2)
{
    if (isnan(apply(op, alpha, 0.5)) || !domain_ok(op, mean, var))
        return false;
    if (positive_domain(op)) {
        *e1 = delta_expect(op, mean, var, 1);
        *e2 = delta_expect(op, mean, var, 2);
    } else {
        *e1 = gauss_expect(op, alpha, mean, var, 0, 1);
        *e2 = gauss_expect(op, alpha, mean, var, 0, 2);
    }
    return isfinite(*e1) && isfinite(*e2);
}

double ps_gauss_deriv2(Op op, double alpha, double mean, double var)
{
    if (op == OP_RELU)
        return ps_gauss_positive(mean, var);
    if (isnan(deriv(op, alpha, 0.5)) || !domain_ok(op, mean, var))
        return NAN;
    if (positive_domain(op))
        return deriv(op, alpha, mean) * deriv(op, alpha, mean);
    return gauss_expect(op, alpha, mean, var, 1, 0);
}

/* P(z > t) */
static double upper_tail(double mean, double var, double t)
{
    double sd = sqrt(var);
    if (sd < 1e-300)
        return mean > t ? 1 : 0;
    return 0.5 * erfc((t - mean) / (sd * M_SQRT2));
}

double ps_gauss_positive(double mean, double var)
{
    return upper_tail(mean, var, 0);
}

double ps_gauss_saturated(ActKind k, double mean, double var)
{
    double t = k == ACT_SIGMOID ? log(99.0) : k == ACT_TANH ? atanh(0.99) : NAN;
    if (isnan(t))
        return 0;
    return upper_tail(mean, var, t) + upper_tail(-mean, var, t);
}

/* ---- leaves ---- */

Moment ps_input_moment(const Node *in, const WarnInputs *wi, bool *assumed)
{
    *assumed = false;
    if (!ir_dtype_is_float(in->dt))
        return unknown;
    for (int i = 0; wi && i < wi->n; i++)
        if (strcmp(wi->v[i].name, in->a.name) == 0)
            return mom(wi->v[i].mean, wi->v[i].var + wi->v[i].mean * wi->v[i].mean);
    *assumed = true;
    if (in->shape.rank >= 3)
        return mom(0.5, 1.0 / 3);
    return mom(0, 1);
}

Moment ps_init_moment(const Node *p)
{
    const Init *in = &p->a.init;
    double fi, fo;
    ir_fans(&p->shape, &fi, &fo);
    double avg = (fi + fo) / 2, lim;
    switch (in->kind) {
    case INIT_ZEROS:
        return mom(0, 0);
    case INIT_ONES:
        return mom(1, 1);
    case INIT_CONSTANT:
        return mom(in->a, in->a * in->a);
    case INIT_NORMAL:
        return mom(in->a, in->a * in->a + in->b * in->b);
    case INIT_UNIFORM:
        lim = (in->b - in->a) / 2;
        return mom((in->a + in->b) / 2, (in->a + in->b) * (in->a + in->b) / 4 + lim * lim / 3);
    case INIT_TRUNC_NORMAL:
        return mom(in->a, in->a * in->a + in->b * in->b * TRUNC_STD * TRUNC_STD);
    case INIT_GLOROT_UNIFORM:
    case INIT_GLOROT_NORMAL:
        return mom(0, 1 / avg);
    case INIT_HE_UNIFORM:
    case INIT_HE_NORMAL:
        return mom(0, 2 / fi);
    case INIT_LECUN_NORMAL:
    case INIT_LECUN_UNIFORM:
        return mom(0, 1 / fi);
    case INIT_ORTHOGONAL: { /* unit rows or columns: 1 / the longer side */
        double cols = p->shape.rank ? (double)p->shape.d[p->shape.rank - 1] : 1;
        double rows = p->shape.rank >= 2 ? fi : 1;
        return mom(0, 1 / (rows > cols ? rows : cols));
    }
    case INIT_UNIT_FORGET_BIAS:
        return mom(0.25, 0.25);
    default:
        return unknown;
    }
}

/* ---- forward rules ---- */

static int64_t per_example(const Shape *s)
{
    int64_t n = ir_shape_numel(s, 1);
    return n > 0 ? n : 1;
}

static Moment sum_of(Moment x, double count)
{
    double v = var_of(x);
    return mom(count * x.mean, count * v + count * count * x.mean * x.mean);
}

/* z = sum_k a_k b_k over k = 1..count with independent factors. */
static Moment dot_of(Moment a, Moment b, double count)
{
    double mu = a.mean * b.mean, v = a.m2 * b.m2 - mu * mu;
    return mom(count * mu, count * (v > 0 ? v : 0) + count * count * mu * mu);
}

static double contraction(const Node *n)
{
    if (n->op == OP_CONV2D) {
        const Shape *k = &n->in[1]->shape;
        return (double)(k->d[0] * k->d[1] * k->d[2]);
    }
    const Shape *a = &n->in[0]->shape;
    return (double)a->d[n->a.ta ? a->rank - 2 : a->rank - 1];
}

/* Elements a reduction combines; the batch dimension counts as the
 * model's training batch size. */
static double reduce_count(const Node *n, int batch)
{
    const Shape *s = &n->in[0]->shape;
    double c = 1;
    for (int i = 0; i < n->a.naxes; i++) {
        int64_t d = s->d[n->a.axes[i]];
        c *= ir_dim_is_batch(d) ? (double)ir_dim_factor(d) * (batch > 0 ? batch : 1) : (double)d;
    }
    return c;
}

static Moment unary_moment(const Node *n, Moment x)
{
    double e1, e2, v = var_of(x);
    switch (n->op) {
    case OP_NEG:
        return mom(-x.mean, x.m2);
    case OP_SQUARE:
        return mom(x.m2, pow(x.mean, 4) + 6 * x.mean * x.mean * v + 3 * v * v);
    case OP_CAST:
        return ir_dtype_is_float(n->dt) ? x : unknown;
    default:
        if (ps_gauss_unary(n->op, n->a.value, x.mean, v, &e1, &e2))
            return mom(e1, e2);
        return unknown;
    }
}

static Moment binary_moment(const Node *n, Moment a, Moment b)
{
    switch (n->op) {
    case OP_ADD:
        return mom(a.mean + b.mean, a.m2 + b.m2 + 2 * a.mean * b.mean);
    case OP_SUB:
        return mom(a.mean - b.mean, a.m2 + b.m2 - 2 * a.mean * b.mean);
    case OP_MUL:
        return mom(a.mean * b.mean, a.m2 * b.m2);
    case OP_DIV:
        if (n->in[1]->op != OP_CONST || n->in[1]->a.value == 0)
            return unknown;
        return mom(a.mean / b.mean, a.m2 / b.m2);
    default:
        return unknown;
    }
}

static Moment other_moment(const Node *n, const Moment *m, int batch)
{
    Moment x = n->nin ? m[n->in[0]->id] : unknown;
    switch (n->op) {
    case OP_REDUCE_SUM:
        return sum_of(x, reduce_count(n, batch));
    case OP_REDUCE_MEAN: {
        double c = reduce_count(n, batch);
        return mom(x.mean, var_of(x) / c + x.mean * x.mean);
    }
    case OP_BROADCAST:
    case OP_RESHAPE:
    case OP_TRANSPOSE:
    case OP_SLICE:
    case OP_MAX_POOL2D: /* approximation: the maximum keeps the moments */
        return x;
    case OP_AVG_POOL2D: {
        double area = (double)n->a.window[0] * n->a.window[1];
        return mom(x.mean, var_of(x) / area + x.mean * x.mean);
    }
    case OP_MATMUL:
    case OP_CONV2D:
        return dot_of(x, m[n->in[1]->id], contraction(n));
    case OP_SOFTMAX: {
        double k = (double)n->shape.d[n->a.axes[0]];
        return mom(1 / k, 1 / (k * k));
    }
    case OP_ONE_HOT:
        return mom(1.0 / n->a.depth, 1.0 / n->a.depth);
    case OP_DROPOUT_MASK:
        return mom(1, 1 / (1 - n->a.value));
    case OP_PHASE:
    case OP_REPLICA_MEAN:
        return x;
    default:
        return unknown;
    }
}

static bool operands_known(const Node *n, const Moment *m)
{
    for (int j = 0; j < n->nin; j++)
        if (!m[n->in[j]->id].known)
            return false;
    return true;
}

static Moment node_moment(const Node *n, const Moment *m, const WarnInputs *wi, int batch)
{
    bool assumed;
    switch (n->op) {
    case OP_INPUT:
        return ps_input_moment(n, wi, &assumed);
    case OP_PARAM:
        return ps_init_moment(n);
    case OP_CONST:
        return mom(n->a.value, n->a.value * n->a.value);
    case OP_ONE_HOT:
    case OP_DROPOUT_MASK:
        return other_moment(n, m, batch);
    default:
        break;
    }
    if (!operands_known(n, m))
        return unknown;
    if (ir_ops[n->op].cls == OPC_UNARY)
        return unary_moment(n, m[n->in[0]->id]);
    if (ir_ops[n->op].cls == OPC_BINARY)
        return binary_moment(n, m[n->in[0]->id], m[n->in[1]->id]);
    return other_moment(n, m, batch);
}

Moment *ps_moments(Graph *g, const WarnInputs *wi)
{
    Moment *m = xcalloc((size_t)g->nnodes + 1, sizeof(Moment));
    for (int i = 0; i < g->nnodes; i++) {
        g->nodes[i]->id = i;
        m[i] = node_moment(g->nodes[i], m, wi, wi ? wi->batch : 0);
    }
    return m;
}

/* ---- backward rules ---- */

typedef struct Back {
    int batch;
    const Moment *f;
    double *d;
    bool *reached;
} Back;

static void give(Back *b, const Node *x, double v)
{
    if (!ir_dtype_is_float(x->dt) || !(v >= 0) || !isfinite(v))
        return;
    b->d[x->id] += v;
    b->reached[x->id] = true;
}

static double ratio(const Node *y, const Node *x)
{
    return (double)per_example(&y->shape) / (double)per_example(&x->shape);
}

static void back_matmul(Back *b, const Node *y, double dy)
{
    const Node *a = y->in[0], *w = y->in[1];
    const Shape *as = &a->shape, *ws = &w->shape;
    int64_t cols = ws->d[y->a.tb ? ws->rank - 2 : ws->rank - 1];
    int64_t rows = as->d[y->a.ta ? as->rank - 1 : as->rank - 2];
    give(b, a, dy * (double)cols * b->f[w->id].m2);
    give(b, w, dy * (double)ir_dim_eval(rows, 1) * b->f[a->id].m2); /* rows per example */
}

static void back_conv(Back *b, const Node *y, double dy)
{
    const Node *x = y->in[0], *k = y->in[1];
    const Shape *ks = &k->shape, *ys = &y->shape;
    double fan = (double)(ks->d[0] * ks->d[1] * ks->d[3]) / (y->a.stride[0] * y->a.stride[1]);
    give(b, x, dy * fan * b->f[k->id].m2);
    give(b, k, dy * (double)(ys->d[1] * ys->d[2]) * b->f[x->id].m2);
}

static void back_unary(Back *b, const Node *y, double dy)
{
    const Node *x = y->in[0];
    Moment fx = b->f[x->id];
    switch (y->op) {
    case OP_NEG:
    case OP_CAST:
        give(b, x, dy);
        return;
    case OP_SQUARE:
        give(b, x, dy * 4 * fx.m2);
        return;
    default:
        if (fx.known)
            give(b, x, dy * ps_gauss_deriv2(y->op, y->a.value, fx.mean, var_of(fx)));
    }
}

static void back_binary(Back *b, const Node *y, double dy)
{
    const Node *x0 = y->in[0], *x1 = y->in[1];
    switch (y->op) {
    case OP_ADD:
    case OP_SUB:
        give(b, x0, dy * ratio(y, x0));
        give(b, x1, dy * ratio(y, x1));
        return;
    case OP_MUL:
        if (b->f[x1->id].known)
            give(b, x0, dy * ratio(y, x0) * b->f[x1->id].m2);
        if (b->f[x0->id].known)
            give(b, x1, dy * ratio(y, x1) * b->f[x0->id].m2);
        return;
    case OP_DIV:
        if (x1->op == OP_CONST && x1->a.value != 0)
            give(b, x0, dy * ratio(y, x0) / (x1->a.value * x1->a.value));
        return;
    default:
        return;
    }
}

static void back_node(Back *b, const Node *y, double dy)
{
    if (ir_ops[y->op].cls == OPC_UNARY) {
        back_unary(b, y, dy);
        return;
    }
    if (ir_ops[y->op].cls == OPC_BINARY) {
        back_binary(b, y, dy);
        return;
    }
    switch (y->op) {
    case OP_MATMUL:
        back_matmul(b, y, dy);
        return;
    case OP_CONV2D:
        back_conv(b, y, dy);
        return;
    case OP_RESHAPE:
    case OP_TRANSPOSE:
    case OP_REDUCE_SUM:
    case OP_SOFTMAX:
    case OP_LOG_SOFTMAX:
    case OP_PHASE:
        give(b, y->in[0], dy);
        return;
    case OP_REDUCE_MEAN: {
        double c = reduce_count(y, b->batch);
        give(b, y->in[0], dy / (c * c));
        return;
    }
    case OP_BROADCAST:
    case OP_SLICE:
    case OP_MAX_POOL2D:
        give(b, y->in[0], dy * ratio(y, y->in[0]));
        return;
    case OP_AVG_POOL2D:
        give(b, y->in[0], dy * ratio(y, y->in[0]) / ((double)y->a.window[0] * y->a.window[1]));
        return;
    case OP_CONCAT:
        for (int j = 0; j < y->nin; j++)
            give(b, y->in[j], dy);
        return;
    default:
        return;
    }
}

double *ps_grad_moments(Graph *g, const Moment *fwd, const Node *from, int batch, bool *reached)
{
    Back b = {batch, fwd, xcalloc((size_t)g->nnodes + 1, sizeof(double)), reached};
    memset(reached, 0, (size_t)g->nnodes * sizeof(bool));
    b.d[from->id] = 1;
    reached[from->id] = true;
    for (int i = from->id; i >= 0; i--)
        if (reached[i] && b.d[i] > 0)
            back_node(&b, g->nodes[i], b.d[i]);
    return b.d;
}
