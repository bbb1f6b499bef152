/* Built-in losses and metrics, lowered to primitives in the numerically
 * stable forms Keras uses: log-softmax for categorical cross-entropy from
 * logits, max(z,0) - z*y + log(1 + exp(-|z|)) for binary cross-entropy
 * from logits, probabilities clipped to [1e-7, 1 - 1e-7] otherwise. Every
 * loss is the mean over the batch (and any other non-class axes). */
#include "fe.h"

#include <string.h>

#define CE_EPS 1e-7

static const ParamSpec loss_spec[] = {
    {"y_true|labels|targets", A_TENSOR, true},
    {"y_pred|logits|predictions", A_TENSOR, true},
    {"from_logits", A_BOOL, false},
    {"label_smoothing", A_NUM, false},
    {"class_weight", A_ANY, false},
};
enum { L_Y, L_P, L_LOGITS, L_SMOOTH, L_WEIGHT };

static const char *const loss_names[] = {
    [LOSS_MSE] = "mse",
    [LOSS_MAE] = "mae",
    [LOSS_BCE] = "binary_crossentropy",
    [LOSS_CCE] = "categorical_crossentropy",
    [LOSS_SCCE] = "sparse_categorical_crossentropy",
    [LOSS_HUBER] = "huber",
    [LOSS_KLD] = "kl_divergence",
};

static Node *cnst(FeCtx *c, Node *like, double v, SrcLoc loc)
{
    return fe_const_like(c, like, v, loc);
}

/* Predictions: a floating-point tensor. */
static Node *pred_arg(FeCtx *c, CallArgs *a, const char *fn)
{
    Node *p = fe_arg_tensor(c, a, 1, DT_COUNT);
    if (p && !ir_dtype_is_float(p->dt)) {
        char t[128];
        fe_error(c, a->v[1]->start, 1, "%s(): predictions must be floating-point, got %s", fn,
                 fe_type_str(p, t, sizeof t));
        return NULL;
    }
    return p;
}

/* Targets with the same shape and dtype as the predictions. */
static bool same_as_pred(FeCtx *c, CallArgs *a, const char *fn, Node *y, Node *p)
{
    char t1[128], t2[128];
    if (y->dt != p->dt || !ir_shape_eq(&y->shape, &p->shape)) {
        fe_error(c, a->v[0]->start, 1, "%s(): targets %s and predictions %s must have the same %s", fn,
                 fe_type_str(y, t1, sizeof t1), fe_type_str(p, t2, sizeof t2),
                 y->dt != p->dt ? "dtype (use cast())" : "shape");
        return false;
    }
    return true;
}

static Node *clip_probs(FeCtx *c, Node *p, SrcLoc loc)
{
    Node *lo = fe_op2(c, OP_MAXIMUM, p, cnst(c, p, CE_EPS, loc), loc);
    return fe_op2(c, OP_MINIMUM, lo, cnst(c, p, 1 - CE_EPS, loc), loc);
}

/* mean over everything of (y - p)^2 or |y - p| */
static Node *regression_loss(FeCtx *c, Node *y, Node *p, bool absolute, SrcLoc loc)
{
    Node *d = fe_op2(c, OP_SUB, y, p, loc);
    d = fe_op1(c, absolute ? OP_ABS : OP_SQUARE, d, loc);
    return fe_reduce_all(c, OP_REDUCE_MEAN, d, loc);
}

/* huber(y, p, delta=1): with a = |y - p| and q = min(a, delta), the mean
 * of q^2 / 2 + delta (a - q): a^2 / 2 up to delta, linear beyond */
static Node *huber(FeCtx *c, Node *y, Node *p, double delta, SrcLoc loc)
{
    Node *a = fe_op1(c, OP_ABS, fe_op2(c, OP_SUB, y, p, loc), loc);
    Node *q = fe_op2(c, OP_MINIMUM, a, cnst(c, a, delta, loc), loc);
    Node *quad = fe_op2(c, OP_MUL, fe_op1(c, OP_SQUARE, q, loc), cnst(c, a, 0.5, loc), loc);
    Node *lin = fe_op2(c, OP_MUL, fe_op2(c, OP_SUB, a, q, loc), cnst(c, a, delta, loc), loc);
    return fe_reduce_all(c, OP_REDUCE_MEAN, fe_op2(c, OP_ADD, quad, lin, loc), loc);
}

/* kl_divergence(y, p): y and p clipped to [1e-7, 1], the mean over the
 * rows of sum(y log(y / p), -1) (Keras's) */
static Node *kl_divergence(FeCtx *c, Node *y, Node *p, SrcLoc loc)
{
    Node *yc = fe_op2(c, OP_MINIMUM, fe_op2(c, OP_MAXIMUM, y, cnst(c, y, CE_EPS, loc), loc), cnst(c, y, 1, loc), loc);
    Node *pc = fe_op2(c, OP_MINIMUM, fe_op2(c, OP_MAXIMUM, p, cnst(c, p, CE_EPS, loc), loc), cnst(c, p, 1, loc), loc);
    Node *t = fe_op2(c, OP_MUL, yc, fe_op1(c, OP_LOG, fe_op2(c, OP_DIV, yc, pc, loc), loc), loc);
    Node *per = fe_reduce_axis(c, OP_REDUCE_SUM, t, p->shape.rank - 1, false, loc);
    return fe_reduce_all(c, OP_REDUCE_MEAN, per, loc);
}

/* The input of a sigmoid or last-axis softmax that produced p, else NULL:
 * like Keras, cross-entropy of such probabilities uses the logits. */
static Node *logits_of(Node *p, Op op)
{
    if (!p || p->op != op)
        return NULL;
    if (op == OP_SOFTMAX && p->a.axes[0] != p->shape.rank - 1)
        return NULL;
    return p->in[0];
}

/* Per-element or per-row loss times the weights w (when given). */
static Node *weighted(FeCtx *c, Node *per, Node *w, SrcLoc loc)
{
    return w ? fe_op2(c, OP_MUL, per, w, loc) : per;
}

static Node *bce(FeCtx *c, Node *y, Node *p, bool from_logits, Node *w, SrcLoc loc)
{
    Node *z = from_logits ? p : logits_of(p, OP_SIGMOID);
    Node *per;
    if (z) {
        /* max(z, 0) - z*y + log(1 + exp(-|z|)) */
        Node *relu = fe_op2(c, OP_MAXIMUM, z, cnst(c, z, 0, loc), loc);
        Node *zy = fe_op2(c, OP_MUL, z, y, loc);
        Node *e = fe_op1(c, OP_EXP, fe_op1(c, OP_NEG, fe_op1(c, OP_ABS, z, loc), loc), loc);
        Node *l = fe_op1(c, OP_LOG, fe_op2(c, OP_ADD, cnst(c, z, 1, loc), e, loc), loc);
        per = fe_op2(c, OP_ADD, fe_op2(c, OP_SUB, relu, zy, loc), l, loc);
    } else {
        /* -(y log(p + eps) + (1 - y) log(1 - p + eps)), p clipped */
        Node *pc = clip_probs(c, p, loc);
        Node *eps = cnst(c, p, CE_EPS, loc);
        Node *lp = fe_op1(c, OP_LOG, fe_op2(c, OP_ADD, pc, eps, loc), loc);
        Node *one = cnst(c, p, 1, loc);
        Node *lq = fe_op1(c, OP_LOG, fe_op2(c, OP_ADD, fe_op2(c, OP_SUB, one, pc, loc), eps, loc), loc);
        Node *s = fe_op2(c, OP_ADD, fe_op2(c, OP_MUL, y, lp, loc),
                         fe_op2(c, OP_MUL, fe_op2(c, OP_SUB, one, y, loc), lq, loc), loc);
        per = fe_op1(c, OP_NEG, s, loc);
    }
    return fe_reduce_all(c, OP_REDUCE_MEAN, weighted(c, per, w, loc), loc);
}

/* -mean(sum(y * log q, axis=-1)) with q = log_softmax(logits) or the
 * clipped, renormalised probabilities. */
static Node *cce(FeCtx *c, Node *y, Node *p, bool from_logits, Node *w, SrcLoc loc)
{
    int last = p->shape.rank - 1;
    Node *z = from_logits ? p : logits_of(p, OP_SOFTMAX);
    Node *logq;
    if (z) {
        Attrs at = ir_attrs();
        at.naxes = 1;
        at.axes[0] = last;
        logq = fe_op(c, OP_LOG_SOFTMAX, &z, 1, &at, loc);
    } else {
        Node *sum = fe_reduce_axis(c, OP_REDUCE_SUM, p, last, true, loc);
        logq = fe_op1(c, OP_LOG, clip_probs(c, fe_op2(c, OP_DIV, p, sum, loc), loc), loc);
    }
    Node *per = fe_reduce_axis(c, OP_REDUCE_SUM, fe_op2(c, OP_MUL, y, logq, loc), last, false, loc);
    return fe_op1(c, OP_NEG, fe_reduce_all(c, OP_REDUCE_MEAN, weighted(c, per, w, loc), loc), loc);
}

/* Sparse labels: shape of p without its class axis (or with a trailing 1),
 * integer or float class indices. Returns one-hot targets like p. */
static Node *sparse_targets(FeCtx *c, CallArgs *a, const char *fn, Node *y, Node *p, SrcLoc loc)
{
    char t1[128], t2[128];
    Shape want = p->shape;
    want.rank--;
    Shape ys = y->shape;
    if (ys.rank == p->shape.rank && ys.d[ys.rank - 1] == 1)
        ys.rank--;
    if (p->shape.rank < 1 || !ir_shape_eq(&ys, &want) || ir_dim_is_batch(p->shape.d[p->shape.rank - 1])) {
        fe_error(c, a->v[0]->start, 1,
                 "%s(): labels %s do not match predictions %s (expected one class index per row)",
                 fn, fe_type_str(y, t1, sizeof t1), fe_type_str(p, t2, sizeof t2));
        return NULL;
    }
    if (ys.rank != y->shape.rank) {
        Attrs r = ir_attrs();
        r.shape = ys;
        y = fe_op(c, OP_RESHAPE, &y, 1, &r, loc);
    }
    int64_t classes = p->shape.d[p->shape.rank - 1];
    if (classes > INT32_MAX) {
        fe_error(c, a->v[1]->start, 1, "%s(): predictions %s have %lld classes; at most %d are supported",
                 fn, fe_type_str(p, t2, sizeof t2), (long long)classes, INT32_MAX);
        return NULL;
    }
    Attrs oh = ir_attrs();
    oh.depth = (int)classes;
    oh.to = p->dt;
    return fe_op(c, OP_ONE_HOT, &y, 1, &oh, loc);
}

/* class_weight=[w0, w1, ...]: one weight per class of targets y (one-hot
 * over the last axis, or binary 0/1 when binary): the weight of each row
 * (each element when binary), as Keras's class_weight. */
static Node *class_weights(FeCtx *c, CallArgs *a, const char *fn, Node *y, Node *p, bool binary, SrcLoc loc)
{
    const Expr *e = a->v[L_WEIGHT];
    int64_t k = binary ? 2 : p->shape.d[p->shape.rank - 1];
    if (e->k != E_LIST || e->nitems != k) {
        fe_error(c, e->start, 1, "%s(): class_weight needs a list of %lld weights, one per class", fn, (long long)k);
        return NULL;
    }
    Node *w = fe_tensor(c, e, p->dt);
    if (!w)
        return NULL;
    if (binary) { /* w0 + y * (w1 - w0) */
        Attrs s0 = ir_attrs(), s1 = ir_attrs();
        s0.end[0] = 1;
        s1.begin[0] = 1;
        s1.end[0] = 2;
        Node *w0 = fe_op(c, OP_SLICE, &w, 1, &s0, loc), *w1 = fe_op(c, OP_SLICE, &w, 1, &s1, loc);
        return fe_op2(c, OP_ADD, w0, fe_op2(c, OP_MUL, y, fe_op2(c, OP_SUB, w1, w0, loc), loc), loc);
    }
    return fe_reduce_axis(c, OP_REDUCE_SUM, fe_op2(c, OP_MUL, y, w, loc), p->shape.rank - 1, false, loc);
}

/* label_smoothing=s: targets y (1 - s) + s / k, k the classes (2 when
 * binary). */
static Node *smoothed(FeCtx *c, Node *y, double s, double k, SrcLoc loc)
{
    if (s == 0)
        return y;
    return fe_op2(c, OP_ADD, fe_op2(c, OP_MUL, y, cnst(c, y, 1 - s, loc), loc), cnst(c, y, s / k, loc), loc);
}

/* huber(y, p, delta=1.0), kl_divergence(y, p) */
static Val regression_other(FeCtx *c, const Expr *e, int which)
{
    static const ParamSpec spec[] = {
        {"y_true|labels|targets", A_TENSOR, true},
        {"y_pred|logits|predictions", A_TENSOR, true},
        {"delta", A_NUM, false},
    };
    const char *fn = e->str;
    CallArgs a;
    double delta;
    if (!fe_bind_args(c, e, fn, spec, which == LOSS_HUBER ? 3 : 2, &a) || !fe_arg_num(c, &a, 2, 1.0, &delta))
        return fe_err_val();
    if (!(delta > 0)) {
        fe_error(c, a.v[2]->start, 1, "huber(): delta must be positive, got %g", delta);
        return fe_err_val();
    }
    Node *y = fe_arg_tensor(c, &a, 0, DT_COUNT);
    Node *p = pred_arg(c, &a, fn);
    if (!y || !p || !same_as_pred(c, &a, fn, y, p))
        return fe_err_val();
    if (which == LOSS_KLD && p->shape.rank < 1) {
        fe_error_expr(c, e, "kl_divergence(): predictions need a class axis");
        return fe_err_val();
    }
    return fe_tensor_val(which == LOSS_HUBER ? huber(c, y, p, delta, e->loc) : kl_divergence(c, y, p, e->loc));
}

Val fe_loss(FeCtx *c, const Expr *e, int which)
{
    const char *fn = e->str;
    CallArgs a;
    bool from_logits;
    double smooth;
    if (which == LOSS_HUBER || which == LOSS_KLD)
        return regression_other(c, e, which);
    int nspec = which == LOSS_MSE || which == LOSS_MAE ? 2 : 5;
    if (!fe_bind_args(c, e, fn, loss_spec, nspec, &a) ||
        !fe_arg_bool(c, &a, L_LOGITS, false, &from_logits) || !fe_arg_num(c, &a, L_SMOOTH, 0, &smooth))
        return fe_err_val();
    if (!(smooth >= 0 && smooth <= 1)) {
        fe_error(c, a.v[L_SMOOTH]->start, 1, "%s(): label_smoothing must be in [0, 1], got %g", fn, smooth);
        return fe_err_val();
    }
    Node *y = fe_arg_tensor(c, &a, 0, DT_COUNT);
    Node *p = pred_arg(c, &a, fn);
    if (!y || !p)
        return fe_err_val();
    if (which == LOSS_SCCE) {
        y = sparse_targets(c, &a, fn, y, p, e->loc);
        Node *w = y && nspec > 2 && a.v[L_WEIGHT] ? class_weights(c, &a, fn, y, p, false, e->loc) : NULL;
        if (!y || (a.v[L_WEIGHT] && !w))
            return fe_err_val();
        y = smoothed(c, y, smooth, (double)p->shape.d[p->shape.rank - 1], e->loc);
        return fe_tensor_val(cce(c, y, p, from_logits, w, e->loc));
    }
    if (!same_as_pred(c, &a, fn, y, p))
        return fe_err_val();
    Node *w = NULL;
    if (nspec > 2 && a.v[L_WEIGHT]) {
        if (which == LOSS_CCE && p->shape.rank < 1) {
            fe_error_expr(c, e, "%s(): predictions need a class axis", loss_names[which]);
            return fe_err_val();
        }
        w = class_weights(c, &a, fn, y, p, which == LOSS_BCE, e->loc);
        if (!w)
            return fe_err_val();
    }
    if (which == LOSS_BCE || which == LOSS_CCE)
        y = smoothed(c, y, smooth, which == LOSS_BCE ? 2.0 : (double)p->shape.d[p->shape.rank > 0 ? p->shape.rank - 1 : 0],
                     e->loc);
    switch (which) {
    case LOSS_MSE:
    case LOSS_MAE:
        return fe_tensor_val(regression_loss(c, y, p, which == LOSS_MAE, e->loc));
    case LOSS_BCE:
        return fe_tensor_val(bce(c, y, p, from_logits, w, e->loc));
    case LOSS_CCE:
        if (p->shape.rank < 1) {
            fe_error_expr(c, e, "%s(): predictions need a class axis", loss_names[which]);
            return fe_err_val();
        }
        return fe_tensor_val(cce(c, y, p, from_logits, w, e->loc));
    default:
        ICE("bad loss");
    }
}

/* ---- metrics ---- */

static Node *argmax_last(FeCtx *c, Node *x, SrcLoc loc)
{
    if (!x)
        return NULL;
    Attrs at = ir_attrs();
    at.naxes = 1;
    at.axes[0] = x->shape.rank - 1;
    return fe_op(c, OP_ARGMAX, &x, 1, &at, loc);
}

/* accuracy(y, scores): sparse labels or one-hot targets */
static Node *accuracy(FeCtx *c, CallArgs *a, Node *y, Node *p, SrcLoc loc)
{
    char t1[128], t2[128];
    int r = p->shape.rank;
    if (r < 1 || p->shape.d[r - 1] < 2) {
        fe_error(c, a->v[1]->start, 1,
                 "accuracy() needs scores for two or more classes, got %s; use binary_accuracy()",
                 fe_type_str(p, t1, sizeof t1));
        return NULL;
    }
    Node *pred = argmax_last(c, p, loc);
    Attrs cast = ir_attrs();
    cast.to = p->dt;
    Node *truth = y->dt == p->dt ? y : fe_op(c, OP_CAST, &y, 1, &cast, loc);
    if (ir_shape_eq(&y->shape, &p->shape)) {
        truth = argmax_last(c, truth, loc);
    } else {
        Shape want = p->shape;
        want.rank--;
        Shape ys = y->shape;
        if (ys.rank == r && ys.d[r - 1] == 1)
            ys.rank--;
        if (!ir_shape_eq(&ys, &want)) {
            fe_error(c, a->v[0]->start, 1, "accuracy(): labels %s do not match scores %s",
                     fe_type_str(y, t1, sizeof t1), fe_type_str(p, t2, sizeof t2));
            return NULL;
        }
        if (ys.rank != y->shape.rank) {
            Attrs rs = ir_attrs();
            rs.shape = ys;
            truth = fe_op(c, OP_RESHAPE, &truth, 1, &rs, loc);
        }
    }
    return fe_reduce_all(c, OP_REDUCE_MEAN, fe_op2(c, OP_EQ, pred, truth, loc), loc);
}

/* Keras's top-k categorical accuracy (tf.math.in_top_k): a row is a hit
 * when fewer than k classes score strictly higher than its true class, so
 * classes tied with it at the boundary all count as in the top k. */
static Node *top_k_accuracy(FeCtx *c, CallArgs *a, const char *fn, Node *y, Node *p, int64_t k, SrcLoc loc)
{
    int r = p->shape.rank;
    char t1[128];
    if (r < 1 || p->shape.d[r - 1] < 2 || ir_dim_is_batch(p->shape.d[r - 1])) {
        fe_error(c, a->v[1]->start, 1, "%s() needs scores for two or more classes, got %s", fn,
                 fe_type_str(p, t1, sizeof t1));
        return NULL;
    }
    Node *t = y;
    if (ir_shape_eq(&y->shape, &p->shape)) {
        Attrs cast = ir_attrs();
        cast.to = p->dt;
        if (y->dt != p->dt)
            t = fe_op(c, OP_CAST, &y, 1, &cast, loc);
    } else if (!(t = sparse_targets(c, a, fn, y, p, loc))) {
        return NULL;
    }
    Node *truth = fe_reduce_axis(c, OP_REDUCE_SUM, fe_op2(c, OP_MUL, t, p, loc), r - 1, true, loc);
    Node *above = fe_reduce_axis(c, OP_REDUCE_SUM, fe_op2(c, OP_GT, p, truth, loc), r - 1, false, loc);
    Node *hit = fe_op2(c, OP_LT, above, cnst(c, above, (double)k, loc), loc);
    return fe_reduce_all(c, OP_REDUCE_MEAN, hit, loc);
}

Val fe_metric(FeCtx *c, const Expr *e, int which)
{
    static const ParamSpec spec[] = {
        {"y_true|labels|targets", A_TENSOR, true},
        {"y_pred|logits|predictions", A_TENSOR, true},
        {"threshold", A_NUM, false},
    };
    static const ParamSpec spec_k[] = {
        {"y_true|labels|targets", A_TENSOR, true},
        {"y_pred|logits|predictions", A_TENSOR, true},
        {"k", A_NUM, false},
    };
    const char *fn = e->str;
    CallArgs a;
    double thr = 0.5;
    int64_t k = 5;
    if (which == METRIC_TOP_K) {
        if (!fe_bind_args(c, e, fn, spec_k, 3, &a) || !fe_arg_int(c, &a, 2, 5, 1, INT32_MAX, &k))
            return fe_err_val();
    } else if (!fe_bind_args(c, e, fn, spec, which == METRIC_BINARY_ACCURACY ? 3 : 2, &a) ||
               !fe_arg_num(c, &a, 2, 0.5, &thr)) {
        return fe_err_val();
    }
    Node *y = fe_arg_tensor(c, &a, 0, DT_COUNT);
    Node *p = pred_arg(c, &a, fn);
    if (!y || !p)
        return fe_err_val();
    if (which == METRIC_TOP_K) {
        Node *r = top_k_accuracy(c, &a, fn, y, p, k, e->loc);
        return r ? fe_tensor_val(r) : fe_err_val();
    }
    if (which == METRIC_ACCURACY)
        return fe_tensor_val(accuracy(c, &a, y, p, e->loc));
    if (!same_as_pred(c, &a, fn, y, p))
        return fe_err_val();
    Node *hit = fe_op2(c, OP_GT, p, cnst(c, p, thr, e->loc), e->loc);
    return fe_tensor_val(fe_reduce_all(c, OP_REDUCE_MEAN, fe_op2(c, OP_EQ, hit, y, e->loc), e->loc));
}
