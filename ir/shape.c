/* Shape and dtype inference: one rule per op class, with the symbolic
 * batch dimension N and overflow-checked arithmetic. Errors name the op,
 * the operand types and the dimensions that disagree. */
#include "ir.h"

#include <string.h>

#define TYBUF 128

static const char *ty(const Node *n, char *buf)
{
    return ir_type_str(n->dt, &n->shape, buf, TYBUF);
}

static void dim_str(int64_t d, char *buf)
{
    if (d == IR_DIM_N)
        strcpy(buf, "N");
    else if (ir_dim_is_batch(d))
        snprintf(buf, 24, "N*%lld", (long long)ir_dim_factor(d));
    else
        snprintf(buf, 24, "%lld", (long long)d);
}

static bool need_float(Node *n, Node *x, Diags *d)
{
    if (ir_dtype_is_float(x->dt))
        return true;
    diag_error(d, n->loc, "%s needs a floating-point operand, got %s", ir_ops[n->op].name,
               ir_dtype_name(x->dt));
    return false;
}

static bool same_dtype(Node *n, Diags *d)
{
    for (int i = 0; i < n->nin; i++)
        if (!need_float(n, n->in[i], d))
            return false;
    for (int i = 1; i < n->nin; i++) {
        if (n->in[i]->dt != n->in[0]->dt) {
            diag_error(d, n->loc, "operands of %s have different dtypes %s and %s",
                       ir_ops[n->op].name, ir_dtype_name(n->in[0]->dt), ir_dtype_name(n->in[i]->dt));
            return false;
        }
    }
    return true;
}

/* NumPy broadcasting of all operands. */
static bool infer_broadcast(Node *n, int first, Diags *d)
{
    Shape out = ir_shape0();
    for (int i = first; i < n->nin; i++)
        if (n->in[i]->shape.rank > out.rank)
            out.rank = n->in[i]->shape.rank;
    for (int k = 0; k < out.rank; k++)
        out.d[k] = 1;
    for (int i = first; i < n->nin; i++) {
        const Shape *s = &n->in[i]->shape;
        int off = out.rank - s->rank;
        for (int k = 0; k < s->rank; k++) {
            int64_t a = out.d[off + k], b = s->d[k];
            if (a == b || b == 1)
                continue;
            if (a == 1) {
                out.d[off + k] = b;
                continue;
            }
            char t1[TYBUF], t2[TYBUF], d1[24], d2[24];
            dim_str(a, d1);
            dim_str(b, d2);
            diag_error(d, n->loc, "cannot broadcast %s and %s in %s: dimensions %s and %s differ",
                       ty(n->in[first], t1), ty(n->in[i], t2), ir_ops[n->op].name, d1, d2);
            return false;
        }
    }
    n->shape = out;
    return true;
}

static bool check_axes(Node *n, const Shape *s, Diags *d)
{
    bool seen[IR_MAXRANK] = {0};
    for (int i = 0; i < n->a.naxes; i++) {
        int ax = n->a.axes[i];
        if (ax < 0 || ax >= s->rank || seen[ax]) {
            char t[TYBUF];
            diag_error(d, n->loc, "%s: axis %d is %s for %s", ir_ops[n->op].name, ax,
                       ax >= 0 && ax < s->rank ? "repeated" : "out of range", ty(n->in[0], t));
            return false;
        }
        seen[ax] = true;
    }
    return true;
}

static bool infer_reduce(Node *n, Diags *d)
{
    const Shape *s = &n->in[0]->shape;
    if (!check_axes(n, s, d))
        return false;
    if (n->op == OP_ARGMAX && n->a.naxes != 1) {
        diag_error(d, n->loc, "argmax takes exactly one axis");
        return false;
    }
    bool red[IR_MAXRANK] = {0};
    for (int i = 0; i < n->a.naxes; i++)
        red[n->a.axes[i]] = true;
    Shape out = ir_shape0();
    for (int k = 0; k < s->rank; k++) {
        if (!red[k])
            out.d[out.rank++] = s->d[k];
        else if (n->a.keepdims)
            out.d[out.rank++] = 1;
    }
    n->shape = out;
    n->dt = n->in[0]->dt;
    return true;
}

static int64_t count_static(const Shape *s, int *nn, bool *ovf)
{
    int64_t p = 1;
    *nn = 0;
    *ovf = false;
    for (int i = 0; i < s->rank; i++) {
        if (ir_dim_is_batch(s->d[i]))
            (*nn)++;
        if (mul_overflow_i64(p, ir_dim_factor(s->d[i]), &p))
            *ovf = true;
    }
    return p;
}

static bool infer_reshape(Node *n, Diags *d)
{
    const Shape *s = &n->in[0]->shape, *t = &n->a.shape;
    int n1, n2;
    bool o1, o2;
    int64_t c1 = count_static(s, &n1, &o1), c2 = count_static(t, &n2, &o2);
    char t1[TYBUF], t2[96];
    if (o1 || o2) {
        diag_error(d, n->loc, "%s to %s: element count overflows", ir_ops[n->op].name,
                   ir_shape_str(t, t2, sizeof t2));
        return false;
    }
    if (n1 != n2 || c1 != c2) {
        diag_error(d, n->loc, "cannot reshape %s to %s: element counts differ", ty(n->in[0], t1),
                   ir_shape_str(t, t2, sizeof t2));
        return false;
    }
    n->shape = *t;
    return true;
}

static bool infer_bcast_to(Node *n, Diags *d)
{
    const Shape *s = &n->in[0]->shape, *t = &n->a.shape;
    int off = t->rank - s->rank;
    bool ok = off >= 0;
    for (int k = 0; ok && k < s->rank; k++)
        ok = s->d[k] == 1 || s->d[k] == t->d[off + k];
    if (!ok) {
        char t1[TYBUF], t2[96];
        diag_error(d, n->loc, "cannot broadcast %s to %s", ty(n->in[0], t1),
                   ir_shape_str(t, t2, sizeof t2));
        return false;
    }
    n->shape = *t;
    return true;
}

static bool infer_transpose(Node *n, Diags *d)
{
    const Shape *s = &n->in[0]->shape;
    if (n->a.naxes != s->rank || !check_axes(n, s, d)) {
        if (n->a.naxes != s->rank) {
            char t[TYBUF];
            diag_error(d, n->loc, "transpose of %s needs a permutation of %d axes, got %d",
                       ty(n->in[0], t), s->rank, n->a.naxes);
        }
        return false;
    }
    Shape out = *s;
    for (int k = 0; k < s->rank; k++)
        out.d[k] = s->d[n->a.axes[k]];
    n->shape = out;
    return true;
}

/* Rows [b, e) of the batch dimension need a batch of at least e
 * examples: the operand with N := e must itself pass the size check, so
 * every offset into it stays within the limit. */
static bool batch_rows_fit(Node *n, const Shape *s, int64_t e, Diags *d)
{
    Shape at = *s;
    for (int k = 0; k < at.rank; k++)
        if (ir_dim_is_batch(at.d[k]))
            at.d[k] = e;
    if (ir_shape_valid(&at))
        return true;
    char t[TYBUF];
    diag_error(d, n->loc, "slice up to row %lld of the batch dimension N of %s needs a batch of %lld "
                          "examples, more than a tensor holds (the limit is " IR_MAX_ELEMS_STR " elements)",
               (long long)e, ty(n->in[0], t), (long long)e);
    return false;
}

int64_t ir_slice_len(int64_t b, int64_t e, int64_t st)
{
    return e <= b ? 0 : (e - b - 1) / st + 1;
}

int64_t ir_slice_step(int64_t b, int64_t e, int64_t st)
{
    return ir_slice_len(b, e, st) > 1 ? st : 1;
}

/* Slice result along one axis; full-range slices of N stay N. Offsets
 * stay within the operand: 0 <= begin <= end <= the axis (for N, a batch
 * the operand could have). */
static bool slice_dim(Node *n, const Shape *s, int k, int64_t *out, Diags *d)
{
    int64_t b = n->a.begin[k], e = n->a.end[k], st = n->a.step[k], dim = s->d[k];
    char t[TYBUF];
    if (st < 1) {
        diag_error(d, n->loc, "slice step must be positive, got %lld on axis %d", (long long)st, k);
        return false;
    }
    if (ir_dim_is_batch(dim)) {
        if (e == INT64_MAX && b == 0 && st == 1) {
            *out = dim;
            return true;
        }
        if (e == INT64_MAX || b < 0 || e < b) {
            diag_error(d, n->loc, "slice of the batch dimension N must be whole or a fixed range");
            return false;
        }
        if (!batch_rows_fit(n, s, e, d))
            return false;
    } else {
        if (e == INT64_MAX)
            e = dim;
        if (b < 0 || e > dim || b > e) {
            diag_error(d, n->loc, "slice [%lld:%lld] out of range for axis %d of %s", (long long)b,
                       (long long)e, k, ty(n->in[0], t));
            return false;
        }
    }
    *out = ir_slice_len(b, e, st);
    return true;
}

static bool infer_slice(Node *n, const Shape *s, Shape *out, Diags *d)
{
    *out = *s;
    for (int k = 0; k < s->rank; k++)
        if (!slice_dim(n, s, k, &out->d[k], d))
            return false;
    return true;
}

static bool infer_slice_grad(Node *n, Diags *d)
{
    Shape r;
    Node tmp = *n;
    Node src = *n->in[0];
    src.shape = n->a.shape;
    Node *ins[1] = {&src};
    tmp.in = ins;
    if (!infer_slice(&tmp, &n->a.shape, &r, d))
        return false;
    if (!ir_shape_eq(&r, &n->in[0]->shape)) {
        char t1[TYBUF], t2[96];
        diag_error(d, n->loc, "slice_grad: gradient %s does not match the slice of %s",
                   ty(n->in[0], t1), ir_shape_str(&n->a.shape, t2, sizeof t2));
        return false;
    }
    n->shape = n->a.shape;
    return true;
}

static bool infer_concat(Node *n, Diags *d)
{
    if (n->nin < 1) {
        diag_error(d, n->loc, "concat needs at least one operand");
        return false;
    }
    int ax = n->a.axes[0];
    Shape out = n->in[0]->shape;
    if (ax < 0 || ax >= out.rank) {
        diag_error(d, n->loc, "concat: axis %d out of range for rank %d", ax, out.rank);
        return false;
    }
    for (int i = 1; i < n->nin; i++) {
        const Shape *s = &n->in[i]->shape;
        bool ok = s->rank == out.rank;
        for (int k = 0; ok && k < s->rank; k++)
            ok = k == ax || s->d[k] == out.d[k];
        char t1[TYBUF], t2[TYBUF];
        if (!ok) {
            diag_error(d, n->loc, "concat of %s and %s along axis %d: other dimensions differ",
                       ty(n->in[0], t1), ty(n->in[i], t2), ax);
            return false;
        }
        if (ir_dim_is_batch(s->d[ax]) || ir_dim_is_batch(out.d[ax])) {
            diag_error(d, n->loc, "concat along the batch dimension N is not supported");
            return false;
        }
        if (__builtin_add_overflow(out.d[ax], s->d[ax], &out.d[ax]) || out.d[ax] > IR_MAX_ELEMS) {
            diag_error(d, n->loc, "concat of %d operands along axis %d: the result has too many "
                                  "elements (the limit is " IR_MAX_ELEMS_STR ")",
                       n->nin, ax);
            return false;
        }
    }
    n->shape = out;
    return true;
}

/* matmul of two matrices, or of stacks of them: the last two axes are
 * the matrices, the ones before them (batch axes) broadcast like NumPy.
 * Batched, N may only be the result's first axis. */
static bool infer_matmul(Node *n, Diags *d)
{
    Node *a = n->in[0], *b = n->in[1];
    const Shape *as = &a->shape, *bs = &b->shape;
    int ra = as->rank, rb = bs->rank;
    char t1[TYBUF], t2[TYBUF];
    if (ra < 2 || rb < 2) {
        diag_error(d, n->loc, "matmul needs two matrices or stacks of matrices (rank 2 or more), got %s and %s",
                   ty(a, t1), ty(b, t2));
        return false;
    }
    int64_t m = as->d[n->a.ta ? ra - 1 : ra - 2], k1 = as->d[n->a.ta ? ra - 2 : ra - 1];
    int64_t k2 = bs->d[n->a.tb ? rb - 1 : rb - 2], nn = bs->d[n->a.tb ? rb - 2 : rb - 1];
    if (k1 != k2) {
        char d1[24], d2[24];
        dim_str(k1, d1);
        dim_str(k2, d2);
        diag_error(d, n->loc, "matmul of %s and %s: inner dimensions %s and %s differ", ty(a, t1),
                   ty(b, t2), d1, d2);
        return false;
    }
    int nb = (ra > rb ? ra : rb) - 2;
    Shape out = ir_shape0();
    out.rank = nb + 2;
    for (int k = 0; k < nb; k++) {
        int ka = k - (nb - (ra - 2)), kb = k - (nb - (rb - 2));
        int64_t da = ka >= 0 ? as->d[ka] : 1, db = kb >= 0 ? bs->d[kb] : 1;
        if (da != db && da != 1 && db != 1) {
            char d1[24], d2[24];
            dim_str(da, d1);
            dim_str(db, d2);
            diag_error(d, n->loc, "matmul of %s and %s: batch dimensions %s and %s differ", ty(a, t1), ty(b, t2),
                       d1, d2);
            return false;
        }
        out.d[k] = da == 1 ? db : da;
    }
    out.d[nb] = m;
    out.d[nb + 1] = nn;
    bool n_ok = true;
    for (int k = 1; nb > 0 && k < out.rank; k++)
        n_ok &= !ir_dim_is_batch(out.d[k]);
    if (nb > 0 && (!n_ok || ir_dim_is_batch(k1))) {
        diag_error(d, n->loc, "batched matmul of %s and %s: N may only be the first batch dimension", ty(a, t1),
                   ty(b, t2));
        return false;
    }
    n->shape = out;
    return true;
}

static bool check_nhwc(Node *n, Node *x, Diags *d)
{
    char t[TYBUF];
    if (x->shape.rank != 4) {
        diag_error(d, n->loc, "%s needs an NHWC tensor of rank 4, got %s", ir_ops[n->op].name,
                   ty(x, t));
        return false;
    }
    for (int k = 1; k < 4; k++)
        if (ir_dim_is_batch(x->shape.d[k])) {
            diag_error(d, n->loc, "%s: only the first dimension may be N", ir_ops[n->op].name);
            return false;
        }
    return true;
}

/* Output spatial size of a window op; false when the window does not fit. */
static bool window_out(Node *n, const Shape *x, int64_t kh, int64_t kw, int64_t *oh, int64_t *ow, Diags *d)
{
    const Attrs *a = &n->a;
    if (a->stride[0] < 1 || a->stride[1] < 1 || kh < 1 || kw < 1) {
        diag_error(d, n->loc, "%s: strides and window sizes must be positive", ir_ops[n->op].name);
        return false;
    }
    for (int i = 0; i < 4; i++)
        if (a->pad[i] < 0) {
            diag_error(d, n->loc, "%s: padding must not be negative", ir_ops[n->op].name);
            return false;
        }
    int64_t h, w;
    if (__builtin_add_overflow(x->d[1], (int64_t)a->pad[0] + a->pad[1], &h) ||
        __builtin_add_overflow(x->d[2], (int64_t)a->pad[2] + a->pad[3], &w)) {
        diag_error(d, n->loc, "%s: the padded input size overflows", ir_ops[n->op].name);
        return false;
    }
    if (h < kh || w < kw) {
        diag_error(d, n->loc, "%s: window %lldx%lld is larger than the padded input %lldx%lld",
                   ir_ops[n->op].name, (long long)kh, (long long)kw, (long long)h, (long long)w);
        return false;
    }
    *oh = (h - kh) / a->stride[0] + 1;
    *ow = (w - kw) / a->stride[1] + 1;
    return true;
}

static bool conv_out(Node *n, const Shape *x, const Shape *k, Shape *out, Diags *d)
{
    char t1[96], t2[96];
    if (k->rank != 4) {
        diag_error(d, n->loc, "conv2d kernel must be HWIO of rank 4, got %s",
                   ir_shape_str(k, t1, sizeof t1));
        return false;
    }
    if (x->d[3] != k->d[2]) {
        diag_error(d, n->loc,
                   "conv2d of %s with kernel %s: input channels %lld and kernel channels %lld differ",
                   ir_shape_str(x, t1, sizeof t1), ir_shape_str(k, t2, sizeof t2),
                   (long long)x->d[3], (long long)k->d[2]);
        return false;
    }
    int64_t oh, ow;
    if (!window_out(n, x, k->d[0], k->d[1], &oh, &ow, d))
        return false;
    int64_t dims[4] = {x->d[0], oh, ow, k->d[3]};
    *out = ir_shape(4, dims);
    return true;
}

static bool expect_shape(Node *n, const Shape *got, const Shape *want, const char *what, Diags *d)
{
    if (ir_shape_eq(got, want))
        return true;
    char t1[96], t2[96];
    diag_error(d, n->loc, "%s: %s is %s, expected %s", ir_ops[n->op].name, what,
               ir_shape_str(got, t1, sizeof t1), ir_shape_str(want, t2, sizeof t2));
    return false;
}

static bool infer_conv(Node *n, Diags *d)
{
    Shape out;
    switch (n->op) {
    case OP_CONV2D:
        if (!check_nhwc(n, n->in[0], d) || !conv_out(n, &n->in[0]->shape, &n->in[1]->shape, &n->shape, d))
            return false;
        return true;
    case OP_CONV2D_GRAD_INPUT: /* (dy, k) -> x shape */
        if (!check_nhwc(n, n->in[0], d) || n->a.shape.rank != 4)
            return false;
        if (!conv_out(n, &n->a.shape, &n->in[1]->shape, &out, d))
            return false;
        if (!expect_shape(n, &n->in[0]->shape, &out, "output gradient", d))
            return false;
        n->shape = n->a.shape;
        return true;
    case OP_CONV2D_GRAD_KERNEL: /* (x, dy) -> k shape */
        if (!check_nhwc(n, n->in[0], d) || !conv_out(n, &n->in[0]->shape, &n->a.shape, &out, d))
            return false;
        if (!expect_shape(n, &n->in[1]->shape, &out, "output gradient", d))
            return false;
        n->shape = n->a.shape;
        return true;
    default:
        ICE("not a conv op");
    }
}

static bool infer_pool(Node *n, Diags *d)
{
    const Shape *x = n->op == OP_AVG_POOL2D_GRAD ? &n->a.shape : &n->in[0]->shape;
    if (n->op == OP_AVG_POOL2D_GRAD && x->rank != 4) {
        diag_error(d, n->loc, "avg_pool2d_grad needs an NHWC result shape");
        return false;
    }
    if (n->op != OP_AVG_POOL2D_GRAD && !check_nhwc(n, n->in[0], d))
        return false;
    int64_t oh, ow;
    if (!window_out(n, x, n->a.window[0], n->a.window[1], &oh, &ow, d))
        return false;
    int64_t dims[4] = {x->d[0], oh, ow, x->d[3]};
    Shape y = ir_shape(4, dims);
    switch (n->op) {
    case OP_MAX_POOL2D:
    case OP_AVG_POOL2D:
        n->shape = y;
        return true;
    case OP_MAX_POOL2D_GRAD:
        if (!expect_shape(n, &n->in[1]->shape, &y, "output gradient", d))
            return false;
        n->shape = *x;
        return true;
    case OP_AVG_POOL2D_GRAD:
        if (!expect_shape(n, &n->in[0]->shape, &y, "output gradient", d))
            return false;
        n->shape = *x;
        return true;
    default:
        ICE("not a pool op");
    }
}

static bool infer_axis_op(Node *n, Diags *d)
{
    int ax = n->a.axes[0];
    if (ax < 0 || ax >= n->in[0]->shape.rank) {
        char t[TYBUF];
        diag_error(d, n->loc, "%s: axis %d out of range for %s", ir_ops[n->op].name, ax,
                   ty(n->in[0], t));
        return false;
    }
    n->shape = n->in[0]->shape;
    return true;
}

/* log_softmax_dot(z, t) / log_softmax_grad(z, gy): operands of one
 * shape, the axis of z; the dot drops the axis. */
static bool infer_softmax_pair(Node *n, Diags *d)
{
    if (!same_dtype(n, d) || !infer_axis_op(n, d))
        return false;
    if (!ir_shape_eq(&n->in[0]->shape, &n->in[1]->shape)) {
        char t0[TYBUF], t1[TYBUF];
        diag_error(d, n->loc, "%s: operands differ in shape: %s and %s", ir_ops[n->op].name, ty(n->in[0], t0),
                   ty(n->in[1], t1));
        return false;
    }
    if (n->op == OP_LOG_SOFTMAX_DOT) {
        int ax = n->a.axes[0];
        for (int k = ax; k + 1 < n->shape.rank; k++)
            n->shape.d[k] = n->shape.d[k + 1];
        n->shape.rank--;
    }
    return true;
}

/* The result of gathering along axis axes[0] of shape x with indices of
 * shape ix: x[:axis] + ix + x[axis+1:], with N (if any) first. */
static bool gather_shape(Node *n, const Shape *x, const Shape *ix, Shape *out, Diags *d)
{
    int ax = n->a.axes[0];
    char t1[96], t2[96];
    if (ax < 0 || ax >= x->rank) {
        diag_error(d, n->loc, "%s: axis %d out of range for %s", ir_ops[n->op].name, ax,
                   ir_shape_str(x, t1, sizeof t1));
        return false;
    }
    if (ir_dim_is_batch(x->d[ax])) {
        diag_error(d, n->loc, "%s along the batch dimension N is not supported", ir_ops[n->op].name);
        return false;
    }
    if (x->rank - 1 + ix->rank > IR_MAXRANK) {
        diag_error(d, n->loc, "%s of %s with indices %s: the result has more than %d dimensions",
                   ir_ops[n->op].name, ir_shape_str(x, t1, sizeof t1), ir_shape_str(ix, t2, sizeof t2),
                   IR_MAXRANK);
        return false;
    }
    *out = ir_shape0();
    for (int k = 0; k < ax; k++)
        out->d[out->rank++] = x->d[k];
    for (int k = 0; k < ix->rank; k++)
        out->d[out->rank++] = ix->d[k];
    for (int k = ax + 1; k < x->rank; k++)
        out->d[out->rank++] = x->d[k];
    for (int k = 1; k < out->rank; k++)
        if (ir_dim_is_batch(out->d[k])) {
            char t3[96];
            diag_error(d, n->loc, "%s of %s with indices %s would give %s: only the first dimension may be N",
                       ir_ops[n->op].name, ir_shape_str(x, t1, sizeof t1), ir_shape_str(ix, t2, sizeof t2),
                       ir_shape_str(out, t3, sizeof t3));
            return false;
        }
    return true;
}

/* gather (x, indices) and gather_grad (gy, indices) -> shape */
static bool infer_gather(Node *n, Diags *d)
{
    Node *v = n->in[0], *ix = n->in[1];
    if (!need_float(n, v, d))
        return false;
    if (n->op == OP_GATHER)
        return gather_shape(n, &v->shape, &ix->shape, &n->shape, d);
    Shape y;
    if (!gather_shape(n, &n->a.shape, &ix->shape, &y, d) || !expect_shape(n, &v->shape, &y, "output gradient", d))
        return false;
    n->shape = n->a.shape;
    return true;
}

static bool infer_leaf(Node *n, Diags *d)
{
    (void)d;
    n->shape = n->a.shape;
    if (n->op == OP_CONST)
        n->dt = n->a.to;
    return true;
}

static bool infer_fused(Node *n, Diags *d)
{
    Graph *s = n->sub;
    if (!s || s->nouts < 1) {
        diag_error(d, n->loc, "fused node without a body");
        return false;
    }
    n->dt = s->outs[0].val->dt;
    n->shape = s->outs[0].val->shape;
    return true;
}

/* loop: the carried states, then a->nseq sequences sharing axis 1 (the
 * steps, at least one), then invariants; the value is the final carried
 * state 0 (the body's checks are the verifier's and ir_loop's). */
static bool infer_loop(Node *n, Diags *d)
{
    Graph *s = n->sub;
    int nc = ir_loop_ncarry(n);
    if (!s || nc < 1) {
        diag_error(d, n->loc, "loop body has no update output (a carried state)");
        return false;
    }
    if (n->a.nseq < 1 || nc + n->a.nseq > n->nin) {
        diag_error(d, n->loc, "loop needs %d carried state%s and at least one sequence, has %d operand%s with seq=%d",
                   nc, nc == 1 ? "" : "s", n->nin, n->nin == 1 ? "" : "s", n->a.nseq);
        return false;
    }
    int64_t t = -1;
    for (int k = nc; k < nc + n->a.nseq; k++) {
        const Node *x = n->in[k];
        char ty0[TYBUF], ty1[TYBUF];
        if (x->shape.rank < 2 || ir_dim_is_batch(x->shape.d[1]) || x->shape.d[1] < 1) {
            diag_error(d, n->loc, "loop: sequence operand %d is %s; a sequence has its steps (at least one) as axis 1",
                       k, ty(x, ty0));
            return false;
        }
        if (t >= 0 && x->shape.d[1] != t) {
            diag_error(d, n->loc, "loop: sequences differ in length: %s and %s", ty(n->in[nc], ty0), ty(x, ty1));
            return false;
        }
        t = x->shape.d[1];
    }
    n->dt = s->outs[0].val->dt;
    n->shape = s->outs[0].val->shape;
    return true;
}

/* result(f){index=k}: the type of fused f's body output k, a fresh
 * result (not an update of one of its operands), or of loop f's result
 * k (ir_loop_result_type). */
static bool infer_result(Node *n, Diags *d)
{
    const Node *f = n->in[0];
    int k = n->a.index;
    if ((f->op != OP_FUSED && f->op != OP_LOOP) || !f->sub) {
        diag_error(d, n->loc, "result reads %s, not a fused node or a loop", ir_ops[f->op].name);
        return false;
    }
    if (k < 1 || k >= f->sub->nouts) {
        diag_error(d, n->loc, "result index %d: the %s node has %d result%s besides its value", k,
                   ir_ops[f->op].name, f->sub->nouts - 1, f->sub->nouts == 2 ? "" : "s");
        return false;
    }
    if (f->op == OP_LOOP) {
        if (!ir_loop_result_type(f, k, &n->dt, &n->shape)) {
            diag_error(d, n->loc, "result %d of the loop: a per-step result needs a rank from 1 to %d", k,
                       IR_MAXRANK - 1);
            return false;
        }
        return true;
    }
    const Output *o = &f->sub->outs[k];
    if (o->kind != OUT_VALUE || o->target) {
        diag_error(d, n->loc, "result %d of the fused node is an update of one of its operands, "
                              "taken by an update output, not by result", k);
        return false;
    }
    n->dt = o->val->dt;
    n->shape = o->val->shape;
    return true;
}

/* The rule of n's op, without the size check of the result. */
static bool infer_rule(Node *n, Diags *d)
{
    const OpInfo *oi = &ir_ops[n->op];
    if (oi->arity >= 0 && n->nin != oi->arity) {
        diag_error(d, n->loc, "%s takes %d operand%s, got %d", oi->name, oi->arity,
                   oi->arity == 1 ? "" : "s", n->nin);
        return false;
    }
    if (n->nin > 0)
        n->dt = n->in[0]->dt;
    switch (oi->cls) {
    case OPC_LEAF:
        return infer_leaf(n, d);
    case OPC_UNARY:
        if (n->op == OP_CAST) {
            n->shape = n->in[0]->shape;
            n->dt = n->a.to;
            return true;
        }
        if (!need_float(n, n->in[0], d))
            return false;
        n->shape = n->in[0]->shape;
        return true;
    case OPC_BINARY:
        return same_dtype(n, d) && infer_broadcast(n, 0, d);
    case OPC_TERNARY: /* select */
        if (!same_dtype(n, d) || !infer_broadcast(n, 0, d))
            return false;
        n->dt = n->in[1]->dt;
        return true;
    case OPC_REDUCE:
        return need_float(n, n->in[0], d) && infer_reduce(n, d);
    case OPC_SHAPE:
        switch (n->op) {
        case OP_BROADCAST:
            return infer_bcast_to(n, d);
        case OP_RESHAPE:
            return infer_reshape(n, d);
        case OP_TRANSPOSE:
            return infer_transpose(n, d);
        case OP_SLICE:
            return infer_slice(n, &n->in[0]->shape, &n->shape, d);
        case OP_SLICE_GRAD:
            return infer_slice_grad(n, d);
        case OP_CONCAT:
            return same_dtype(n, d) && infer_concat(n, d);
        default:
            break;
        }
        break;
    case OPC_OTHER:
        switch (n->op) {
        case OP_MATMUL:
            return same_dtype(n, d) && infer_matmul(n, d);
        case OP_CONV2D:
        case OP_CONV2D_GRAD_INPUT:
        case OP_CONV2D_GRAD_KERNEL:
            return same_dtype(n, d) && infer_conv(n, d);
        case OP_MAX_POOL2D:
        case OP_MAX_POOL2D_GRAD:
        case OP_AVG_POOL2D:
        case OP_AVG_POOL2D_GRAD:
            return same_dtype(n, d) && infer_pool(n, d);
        case OP_SOFTMAX:
        case OP_LOG_SOFTMAX:
            return need_float(n, n->in[0], d) && infer_axis_op(n, d);
        case OP_LOG_SOFTMAX_DOT:
        case OP_LOG_SOFTMAX_GRAD:
            return infer_softmax_pair(n, d);
        case OP_ONE_HOT: {
            Shape s = n->in[0]->shape;
            if (s.rank >= IR_MAXRANK || n->a.depth < 1) {
                diag_error(d, n->loc, "one_hot: bad rank or depth %d", n->a.depth);
                return false;
            }
            s.d[s.rank++] = n->a.depth;
            n->shape = s;
            n->dt = n->a.to;
            return ir_dtype_is_float(n->dt);
        }
        case OP_GATHER:
        case OP_GATHER_GRAD:
            return infer_gather(n, d);
        case OP_DROPOUT_MASK:
            if (!need_float(n, n->in[0], d))
                return false;
            if (!(n->a.value >= 0 && n->a.value < 1)) {
                diag_error(d, n->loc, "dropout rate must be in [0, 1), got %g", n->a.value);
                return false;
            }
            n->shape = n->in[0]->shape;
            return true;
        case OP_REPLICA_MEAN:
            if (!need_float(n, n->in[0], d))
                return false;
            for (int k = 0; k < n->in[0]->shape.rank; k++)
                if (ir_dim_is_batch(n->in[0]->shape.d[k])) {
                    diag_error(d, n->loc, "replica_mean: the operand must not have the batch axis N (every process "
                                          "must contribute the same number of elements)");
                    return false;
                }
            n->shape = n->in[0]->shape;
            return true;
        case OP_PHASE:
            if (!same_dtype(n, d))
                return false;
            if (!ir_shape_eq(&n->in[0]->shape, &n->in[1]->shape)) {
                diag_error(d, n->loc, "phase: training and inference values differ in shape");
                return false;
            }
            n->shape = n->in[0]->shape;
            return true;
        case OP_FUSED:
            return infer_fused(n, d);
        case OP_RESULT:
            return infer_result(n, d);
        case OP_LOOP:
            return infer_loop(n, d);
        default:
            break;
        }
        break;
    }
    ICE("no shape rule for op %s", oi->name);
}

/* Every rule's result passes the one size check (ir_dims_numel): a rule
 * may combine valid operands into a shape too large (broadcasting,
 * matmul, concat, one_hot, a reshape or broadcast target). */
/* Ops whose kernels count the batch in rows of N (windows, gathers, loops
 * over steps, slices and concatenations with their offsets) take N but
 * not a multiple N*k (k > 1) of it, which only reshape makes. */
static bool takes_n_multiple(int op)
{
    switch (op) {
    case OP_CONV2D:
    case OP_CONV2D_GRAD_INPUT:
    case OP_CONV2D_GRAD_KERNEL:
    case OP_MAX_POOL2D:
    case OP_MAX_POOL2D_GRAD:
    case OP_AVG_POOL2D:
    case OP_AVG_POOL2D_GRAD:
    case OP_GATHER:
    case OP_GATHER_GRAD:
    case OP_LOOP:
    case OP_SLICE:
    case OP_SLICE_GRAD:
    case OP_CONCAT:
    case OP_REPLICA_MEAN:
        return false;
    default:
        return true;
    }
}

static bool has_n_multiple(const Shape *s)
{
    for (int k = 0; k < s->rank; k++)
        if (ir_dim_is_batch(s->d[k]) && s->d[k] != IR_DIM_N)
            return true;
    return false;
}

/* Empty tensors: a fixed dimension may be 0 (an empty slice, ONNX's
 * shapes with a zero). Ops that map elements to elements, shape ops and
 * outputs take empty operands; the others (reductions, matmul, windows,
 * gathers, softmax, recurrent loops) would compute something from
 * nothing, and an empty operand is an error there. */
static bool takes_empty(int op)
{
    switch (ir_ops[op].cls) {
    case OPC_LEAF:
    case OPC_UNARY:
    case OPC_BINARY:
    case OPC_TERNARY:
    case OPC_SHAPE:
        return true;
    default:
        return op == OP_FUSED || op == OP_RESULT;
    }
}

static bool has_zero_dim(const Shape *s)
{
    for (int k = 0; k < s->rank; k++)
        if (s->d[k] == 0)
            return true;
    return false;
}

bool ir_infer(Node *n, Diags *d)
{
    if (!takes_empty(n->op))
        for (int i = 0; i < n->nin; i++)
            if (has_zero_dim(&n->in[i]->shape)) {
                char t[TYBUF];
                diag_error(d, n->loc, "%s of the empty tensor %s (a dimension is 0) is not supported",
                           ir_ops[n->op].name, ty(n->in[i], t));
                return false;
            }
    if (!takes_n_multiple(n->op)) {
        bool multi = n->op == OP_SLICE_GRAD && has_n_multiple(&n->a.shape);
        for (int i = 0; i < n->nin; i++)
            multi |= has_n_multiple(&n->in[i]->shape);
        if (multi) {
            char t[TYBUF];
            ir_shape_str(&n->a.shape, t, sizeof t);
            for (int i = n->nin - 1; i >= 0; i--)
                if (has_n_multiple(&n->in[i]->shape))
                    ty(n->in[i], t);
            diag_error(d, n->loc, "%s of %s: a multiple of the batch dimension N (made by reshape) is not "
                                  "supported here; reshape back to N first", ir_ops[n->op].name, t);
            return false;
        }
    }
    if (!infer_rule(n, d))
        return false;
    if (ir_shape_valid(&n->shape))
        return true;
    char t[TYBUF];
    diag_error(d, n->loc, "%s: the result %s has too many elements (the limit is " IR_MAX_ELEMS_STR ")",
               ir_ops[n->op].name, ty(n, t));
    return false;
}
