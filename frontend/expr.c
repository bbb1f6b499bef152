/* Lowering of expressions: names, compile-time numbers (folded, with
 * overflow checks), operators with NumPy broadcasting and scalar literals
 * adopting the other operand's dtype, and NumPy indexing/slicing lowered
 * to SLICE plus a RESHAPE that drops indexed axes. */
#include "fe.h"

#include <math.h>
#include <string.h>

Val fe_err_val(void)
{
    Val v;
    memset(&v, 0, sizeof v);
    v.k = V_ERR;
    return v;
}

Val fe_tensor_val(Node *n)
{
    if (!n)
        return fe_err_val();
    Val v = fe_err_val();
    v.k = V_TENSOR;
    v.n = n;
    return v;
}

Val fe_num_val(double x, bool is_int, int64_t i)
{
    Val v = fe_err_val();
    v.k = V_NUM;
    v.num = is_int ? (double)i : x;
    v.is_int = is_int;
    v.i = is_int ? i : 0;
    return v;
}

const char *fe_type_str(const Node *n, char *buf, size_t len)
{
    return ir_type_str(n->dt, &n->shape, buf, len);
}

/* ---- IR construction wrappers ---- */

Node *fe_op(FeCtx *c, Op op, Node **in, int nin, const Attrs *a, SrcLoc loc)
{
    return ir_op(c->g, op, in, nin, a, loc, c->d);
}

Node *fe_op1(FeCtx *c, Op op, Node *x, SrcLoc loc)
{
    return fe_op(c, op, &x, 1, NULL, loc);
}

Node *fe_op2(FeCtx *c, Op op, Node *x, Node *y, SrcLoc loc)
{
    Node *in[2] = {x, y};
    return fe_op(c, op, in, 2, NULL, loc);
}

Node *fe_const_like(FeCtx *c, Node *like, double v, SrcLoc loc)
{
    if (!like)
        return NULL;
    return ir_const(c->g, like->dt, v, loc);
}

Node *fe_reduce_all(FeCtx *c, Op op, Node *x, SrcLoc loc)
{
    if (!x || x->shape.rank == 0)
        return x;
    Attrs a = ir_attrs();
    a.naxes = x->shape.rank;
    for (int i = 0; i < a.naxes; i++)
        a.axes[i] = i;
    return fe_op(c, op, &x, 1, &a, loc);
}

Node *fe_reduce_axis(FeCtx *c, Op op, Node *x, int axis, bool keepdims, SrcLoc loc)
{
    if (!x)
        return NULL;
    Attrs a = ir_attrs();
    a.naxes = 1;
    a.axes[0] = axis < 0 ? axis + x->shape.rank : axis;
    a.keepdims = keepdims;
    return fe_op(c, op, &x, 1, &a, loc);
}

/* ---- names ---- */

static const Stmt *later_definition(FeCtx *c, const char *name)
{
    for (int i = c->cur + 1; i < c->prog->n; i++) {
        const Stmt *s = c->prog->stmts[i];
        if (s->k != S_MODEL && s->k != S_TRAIN && s->name && strcmp(s->name, name) == 0)
            return s;
    }
    return NULL;
}

static Val unknown_name(FeCtx *c, const Expr *e)
{
    if (diags_too_many(c->d)) { /* not recorded: spare the search for a hint */
        fe_error_expr(c, e, "unknown name '%s'", e->str);
        return fe_err_val();
    }
    const Stmt *later = later_definition(c, e->str);
    if (later) {
        fe_error_expr(c, e, "'%s' is used before it is defined", e->str);
        fe_note(c, later->nameloc, later->namespan, "'%s' is defined here", e->str);
    } else if (fe_is_builtin(e->str)) {
        fe_error_expr(c, e, "'%s' is a function; call it as %s(...)", e->str, e->str);
    } else if (strcmp(e->str, "N") == 0) {
        fe_error_expr(c, e, "the batch dimension N can only appear in shapes");
    } else if (strchr(e->str, '.')) {
        fe_error_expr(c, e, "unknown parameter '%s'", e->str);
    } else {
        const char **cands = arena_alloc(c->a, (size_t)(c->nb + 1) * sizeof(char *));
        for (int i = 0; i < c->nb; i++)
            cands[i] = c->b[i].name;
        const char *hint = fe_closest(e->str, cands, c->nb);
        if (hint)
            fe_error_expr(c, e, "unknown name '%s'; did you mean '%s'?", e->str, hint);
        else
            fe_error_expr(c, e, "unknown name '%s'", e->str);
    }
    return fe_err_val();
}

static Val lower_name(FeCtx *c, const Expr *e)
{
    Binding *b = fe_lookup(c, e->str);
    if (b)
        return b->v;
    if (strchr(e->str, '.')) {
        int id = strmap_get(&c->params, e->str);
        if (id >= 0)
            return fe_tensor_val(c->g->nodes[id]);
    }
    return unknown_name(c, e);
}

/* ---- numbers ---- */

static bool num_error(FeCtx *c, SrcLoc loc, const char *msg)
{
    fe_error(c, loc, 1, "%s", msg);
    return false;
}

static bool ipow(int64_t b, int64_t e, int64_t *out)
{
    if (b == 0 || b == 1) {
        *out = e == 0 ? 1 : b;
        return true;
    }
    if (b == -1) {
        *out = (e % 2) ? -1 : 1;
        return true;
    }
    int64_t r = 1;
    for (int64_t i = 0; i < e; i++) /* |b| >= 2: overflows within 63 steps */
        if (mul_overflow_i64(r, b, &r))
            return false;
    *out = r;
    return true;
}

/* Fold an integer operation; false on overflow. */
static bool fold_int(TokKind op, int64_t a, int64_t b, int64_t *r)
{
    switch (op) {
    case T_PLUS:
        return !__builtin_add_overflow(a, b, r);
    case T_MINUS:
        return !__builtin_sub_overflow(a, b, r);
    case T_STAR:
        return !__builtin_mul_overflow(a, b, r);
    case T_POW:
        return ipow(a, b, r);
    default:
        ICE("not an integer op");
    }
}

static double fold_cmp(TokKind op, double a, double b)
{
    switch (op) {
    case T_LT:
        return a < b;
    case T_GT:
        return a > b;
    case T_LE:
        return a <= b;
    case T_GE:
        return a >= b;
    case T_EQ:
        return a == b;
    default:
        return a != b;
    }
}

static Val fold(FeCtx *c, TokKind op, Val x, Val y, SrcLoc loc)
{
    bool ints = x.is_int && y.is_int;
    if (op == T_LT || op == T_GT || op == T_LE || op == T_GE || op == T_EQ || op == T_NE)
        return fe_num_val(0, true, (int64_t)fold_cmp(op, x.num, y.num));
    if (ints && (op == T_PLUS || op == T_MINUS || op == T_STAR || (op == T_POW && y.i >= 0))) {
        int64_t r;
        if (!fold_int(op, x.i, y.i, &r)) {
            num_error(c, loc, "integer overflow in constant expression");
            return fe_err_val();
        }
        return fe_num_val(0, true, r);
    }
    double r;
    switch (op) {
    case T_PLUS:
        r = x.num + y.num;
        break;
    case T_MINUS:
        r = x.num - y.num;
        break;
    case T_STAR:
        r = x.num * y.num;
        break;
    case T_SLASH:
        if (y.num == 0) {
            num_error(c, loc, "division by zero in constant expression");
            return fe_err_val();
        }
        r = x.num / y.num;
        break;
    case T_POW:
        r = pow(x.num, y.num);
        break;
    default:
        fe_error(c, loc, 1, "'@' needs two tensors, not numbers");
        return fe_err_val();
    }
    if (!isfinite(r)) {
        num_error(c, loc, isnan(r) ? "constant expression is not a number"
                                   : "constant expression overflows");
        return fe_err_val();
    }
    return fe_num_val(r, false, 0);
}

bool fe_const_num(FeCtx *c, const Expr *e, Val *out)
{
    Val v = fe_err_val();
    switch (e->k) {
    case E_NUM:
    case E_NAME:
    case E_UNARY:
    case E_BINARY:
        v = fe_expr(c, e);
        if (v.k == V_TENSOR) {
            fe_error_expr(c, e, "expected a constant number, found a tensor");
            return false;
        }
        break;
    case E_BOOL:
        fe_error_expr(c, e, "expected a number, found '%s'", e->ival ? "true" : "false");
        return false;
    case E_STR:
        fe_error_expr(c, e, "expected a number, found a string");
        return false;
    case E_LIST:
        fe_error_expr(c, e, "expected a number, found a list");
        return false;
    default:
        fe_error_expr(c, e, "expected a constant number");
        return false;
    }
    *out = v;
    return v.k == V_NUM;
}

/* ---- tensors ---- */

/* A tensor literal: a list of numbers is a vector, a list of equally
 * shaped lists stacks them; dtype dt (float). Lowered to scalar
 * constants reshaped to [1, ...] and concatenated along axis 0. */
static Node *literal(FeCtx *c, const Expr *e, DType dt, int depth)
{
    if (e->nitems == 0 || depth >= IR_MAXRANK) {
        fe_error(c, e->start, 1, e->nitems ? "a tensor literal has at most %d dimensions" : "an empty list is not a tensor",
                 IR_MAXRANK);
        return NULL;
    }
    Node **in = arena_alloc(c->a, (size_t)e->nitems * sizeof(Node *));
    for (int i = 0; i < e->nitems; i++) {
        const Expr *it = e->items[i];
        Val v;
        if (it->k == E_LIST) {
            in[i] = literal(c, it, dt, depth + 1);
        } else if (it->k == E_STR || it->k == E_BOOL || it->k == E_NONE || it->k == E_CALL || it->k == E_INDEX) {
            fe_error_expr(c, it, "a tensor literal holds numbers only; stack() joins tensors");
            return NULL;
        } else {
            in[i] = fe_const_num(c, it, &v) ? ir_const(c->g, dt, v.num, it->loc) : NULL;
        }
        if (!in[i])
            return NULL;
        if (i > 0 && !ir_shape_eq(&in[i]->shape, &in[0]->shape)) {
            fe_error_expr(c, it, "the items of a tensor literal differ in shape");
            return NULL;
        }
    }
    for (int i = 0; i < e->nitems; i++) {
        Attrs r = ir_attrs();
        r.shape.rank = in[i]->shape.rank + 1;
        r.shape.d[0] = 1;
        for (int k = 0; k < in[i]->shape.rank; k++)
            r.shape.d[k + 1] = in[i]->shape.d[k];
        in[i] = fe_op(c, OP_RESHAPE, &in[i], 1, &r, e->loc);
    }
    if (e->nitems == 1)
        return in[0];
    Attrs at = ir_attrs();
    at.naxes = 1;
    return fe_op(c, OP_CONCAT, in, e->nitems, &at, e->loc);
}

Node *fe_tensor(FeCtx *c, const Expr *e, DType like)
{
    if (e->k == E_LIST)
        return literal(c, e, like == DT_F64 ? DT_F64 : DT_F32, 0);
    Val v = fe_expr(c, e);
    if (v.k == V_NUM)
        return ir_const(c->g, like == DT_COUNT ? DT_F32 : like, v.num, e->loc);
    return v.k == V_TENSOR ? v.n : NULL;
}

static Op binop(TokKind k)
{
    switch (k) {
    case T_PLUS:
        return OP_ADD;
    case T_MINUS:
        return OP_SUB;
    case T_STAR:
        return OP_MUL;
    case T_SLASH:
        return OP_DIV;
    case T_POW:
        return OP_POW;
    case T_LT:
        return OP_LT;
    case T_GT:
        return OP_GT;
    case T_LE:
        return OP_LE;
    case T_GE:
        return OP_GE;
    case T_EQ:
    case T_NE:
        return OP_EQ;
    case T_AT:
        return OP_MATMUL;
    default:
        ICE("not a binary operator");
    }
}

Val fe_binary(FeCtx *c, Op op, Val x, Val y, SrcLoc loc)
{
    if (x.k == V_ERR || y.k == V_ERR)
        return fe_err_val();
    if (x.k == V_NUM && y.k == V_NUM)
        x = fe_tensor_val(ir_const(c->g, DT_F32, x.num, loc));
    Node *a = x.k == V_TENSOR ? x.n : ir_const(c->g, y.n->dt, x.num, loc);
    Node *b = y.k == V_TENSOR ? y.n : ir_const(c->g, x.n->dt, y.num, loc);
    return fe_tensor_val(fe_op2(c, op, a, b, loc));
}

/* One operand of a binary operator: a tensor literal takes the dtype of
 * the other operand when that is a float tensor, as a number does. */
static Val operand(FeCtx *c, const Expr *e, const Val *other)
{
    if (e->k != E_LIST)
        return fe_expr(c, e);
    DType dt = other && other->k == V_TENSOR && ir_dtype_is_float(other->n->dt) ? other->n->dt : DT_F32;
    Node *t = fe_tensor(c, e, dt);
    return t ? fe_tensor_val(t) : fe_err_val();
}

static Val lower_binary(FeCtx *c, const Expr *e)
{
    bool right_first = e->a->k == E_LIST && e->b->k != E_LIST;
    Val y = right_first ? fe_expr(c, e->b) : fe_err_val();
    Val x = operand(c, e->a, right_first ? &y : NULL);
    if (!right_first)
        y = operand(c, e->b, &x);
    if (x.k == V_ERR || y.k == V_ERR)
        return fe_err_val();
    if (x.k == V_NUM && y.k == V_NUM)
        return fold(c, e->op, x, y, e->loc);
    if (e->op == T_AT && (x.k != V_TENSOR || y.k != V_TENSOR)) {
        fe_error_expr(c, e, "'@' needs two matrices, not a number");
        return fe_err_val();
    }
    if (e->op == T_POW && y.k == V_NUM && y.num == 2)
        return fe_tensor_val(fe_op1(c, OP_SQUARE, x.n, e->loc));
    Val r = fe_binary(c, binop(e->op), x, y, e->loc);
    if (e->op != T_NE || r.k != V_TENSOR)
        return r;
    return fe_binary(c, OP_SUB, fe_num_val(1, true, 1), r, e->loc);
}

static Val lower_unary(FeCtx *c, const Expr *e)
{
    Val x = fe_expr(c, e->a);
    if (x.k == V_TENSOR)
        return fe_tensor_val(fe_op1(c, OP_NEG, x.n, e->loc));
    if (x.k == V_NUM) {
        if (x.is_int && x.i == INT64_MIN) {
            num_error(c, e->loc, "integer overflow in constant expression");
            return fe_err_val();
        }
        return x.is_int ? fe_num_val(0, true, -x.i) : fe_num_val(-x.num, false, 0);
    }
    return x;
}

/* ---- indexing ---- */

static bool const_int(FeCtx *c, const Expr *e, int64_t *out)
{
    Val v;
    if (!fe_const_num(c, e, &v))
        return false;
    if (!v.is_int) {
        fe_error_expr(c, e, "indices must be integers, got %g", v.num);
        return false;
    }
    *out = v.i;
    return true;
}

/* One subscript on axis k of x: fills begin/end/step; *drop for an index. */
static bool subscript(FeCtx *c, const Subscript *s, Node *x, int k, Attrs *a, bool *drop)
{
    int64_t dim = x->shape.d[k], lo = 0, hi = INT64_MAX, st = 1;
    char t[128];
    *drop = !s->is_slice;
    if ((s->lo && !const_int(c, s->lo, &lo)) || (s->hi && !const_int(c, s->hi, &hi)) ||
        (s->step && !const_int(c, s->step, &st)))
        return false;
    if (st < 1) {
        fe_error(c, s->step->loc, s->step->span, "slice step must be positive, got %lld", (long long)st);
        return false;
    }
    if (ir_dim_is_batch(dim)) {
        if (lo < 0 || (s->hi && hi < 0)) {
            fe_error(c, s->loc, 1, "negative indices are not allowed on the batch dimension N");
            return false;
        }
        if (!s->is_slice && __builtin_add_overflow(lo, 1, &hi)) {
            fe_error(c, s->loc, 1, "index %lld is out of range for the batch dimension N", (long long)lo);
            return false;
        }
        if (s->is_slice && !s->hi && (lo != 0 || st != 1)) {
            fe_error(c, s->loc, 1, "a slice of the batch dimension N must be whole or a fixed range");
            return false;
        }
    } else {
        int64_t orig = lo;
        if (lo < 0)
            lo += dim;
        if (!s->is_slice) {
            if (lo < 0 || lo >= dim) {
                fe_error(c, s->loc, 1, "index %lld is out of range for axis %d of %s",
                         (long long)orig, k, fe_type_str(x, t, sizeof t));
                return false;
            }
            hi = lo + 1;
        } else {
            if (!s->hi)
                hi = dim;
            else if (hi < 0)
                hi += dim;
            if (lo < 0 || hi > dim || lo > hi) {
                fe_error(c, s->loc, 1, "slice %lld:%lld is reversed or out of range for axis %d of %s",
                         (long long)lo, (long long)hi, k, fe_type_str(x, t, sizeof t));
                return false;
            }
        }
    }
    a->begin[k] = lo;
    a->end[k] = hi;
    a->step[k] = st;
    return true;
}

static bool whole_axis(const Attrs *a, const Shape *s, int k)
{
    return a->begin[k] == 0 && a->step[k] == 1 &&
           (a->end[k] == INT64_MAX || (!ir_dim_is_batch(s->d[k]) && a->end[k] == s->d[k]));
}

static Val lower_index(FeCtx *c, const Expr *e)
{
    Val base = fe_expr(c, e->a);
    if (base.k != V_TENSOR) {
        if (base.k == V_NUM)
            fe_error_expr(c, e, "only tensors can be indexed");
        return fe_err_val();
    }
    Node *x = base.n;
    char t[128];
    if (e->nsubs > x->shape.rank) {
        fe_error(c, e->subs[x->shape.rank].loc, 1, "too many indices for %s: %d given",
                 fe_type_str(x, t, sizeof t), e->nsubs);
        return fe_err_val();
    }
    Attrs a = ir_attrs();
    bool drop[IR_MAXRANK] = {0}, any_drop = false, trivial = true;
    for (int k = 0; k < x->shape.rank; k++) {
        a.begin[k] = 0;
        a.end[k] = INT64_MAX;
    }
    for (int k = 0; k < e->nsubs; k++) {
        if (!subscript(c, &e->subs[k], x, k, &a, &drop[k]))
            return fe_err_val();
        any_drop |= drop[k];
    }
    for (int k = 0; k < x->shape.rank; k++)
        trivial &= whole_axis(&a, &x->shape, k);
    Node *y = trivial ? x : fe_op(c, OP_SLICE, &x, 1, &a, e->loc);
    if (!y || !any_drop)
        return fe_tensor_val(y);
    Attrs r = ir_attrs();
    for (int k = 0; k < y->shape.rank; k++)
        if (!drop[k])
            r.shape.d[r.shape.rank++] = y->shape.d[k];
    return fe_tensor_val(fe_op(c, OP_RESHAPE, &y, 1, &r, e->loc));
}

/* ---- dispatch ---- */

Val fe_expr(FeCtx *c, const Expr *e)
{
    switch (e->k) {
    case E_NUM:
        return fe_num_val(e->num, e->is_int, e->ival);
    case E_NAME:
        return lower_name(c, e);
    case E_UNARY:
        return lower_unary(c, e);
    case E_BINARY:
        return lower_binary(c, e);
    case E_CALL:
        return fe_call(c, e);
    case E_INDEX:
        return lower_index(c, e);
    case E_STR:
        fe_error_expr(c, e, "expected a tensor or a number, found a string");
        return fe_err_val();
    case E_BOOL:
        fe_error_expr(c, e, "expected a tensor or a number, found '%s'", e->ival ? "true" : "false");
        return fe_err_val();
    case E_NONE:
        fe_error_expr(c, e, "expected a tensor or a number, found 'none'");
        return fe_err_val();
    case E_LIST: {
        Node *t = literal(c, e, DT_F32, 0);
        return t ? fe_tensor_val(t) : fe_err_val();
    }
    }
    ICE("bad expression kind");
}
