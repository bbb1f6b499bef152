/* Interpreter routines for leaves and elementwise ops (unary math, cast,
 * binary arithmetic and comparisons with NumPy broadcasting, select), and
 * the element and index helpers shared by all routines. */
#include "backend/interp/interp_impl.h"

#include <math.h>
#include <string.h>

#define KERN_FILE "kern_elem.inc"
#include "kern_instantiate.inc"

/* ---- helpers ---- */

double ix_load(const Tensor *t, int64_t i)
{
    switch (t->dt) {
    case DT_F32:
        return ((const float *)t->data)[i];
    case DT_F64:
        return ((const double *)t->data)[i];
    case DT_I32:
        return ((const int32_t *)t->data)[i];
    default:
        ICE("bad dtype %d", (int)t->dt);
    }
}

int32_t ix_to_i32(double v)
{
    if (v != v)
        return 0;
    if (v <= (double)INT32_MIN)
        return INT32_MIN;
    if (v >= (double)INT32_MAX)
        return INT32_MAX;
    return (int32_t)v; /* C truncates toward zero */
}

void ix_store(Tensor *t, int64_t i, double v)
{
    switch (t->dt) {
    case DT_F32:
        ((float *)t->data)[i] = (float)v;
        return;
    case DT_F64:
        ((double *)t->data)[i] = v;
        return;
    case DT_I32:
        ((int32_t *)t->data)[i] = ix_to_i32(v);
        return;
    default:
        ICE("bad dtype %d", (int)t->dt);
    }
}

void ix_strides(const Tensor *t, int64_t *st)
{
    int64_t s = 1;
    for (int k = t->rank - 1; k >= 0; k--) {
        st[k] = s;
        s *= t->dims[k];
    }
}

void ix_bcast_strides(const Tensor *t, int r, int64_t *st)
{
    int64_t own[IR_MAXRANK];
    ix_strides(t, own);
    int off = r - t->rank;
    MC_ASSERT(off >= 0);
    for (int k = 0; k < r; k++)
        st[k] = k < off || t->dims[k - off] == 1 ? 0 : own[k - off];
}

char *ix_type_str(const Tensor *t, char *buf, size_t n)
{
    Shape s = ir_shape(t->rank, t->dims);
    return ir_type_str(t->dt, &s, buf, n);
}

/* ---- leaves ---- */

INTERP_FN(input)
{
    ICE("input '%s' reached the op table; the driver binds inputs", nd->a.name);
}

INTERP_FN(param)
{
    ICE("param '%s' reached the op table; the driver binds params", nd->a.name);
}

INTERP_FN(const)
{
    for (int64_t i = 0; i < out->numel; i++)
        ix_store(out, i, nd->a.value);
    return true;
}

/* ---- unary ---- */

static void unary(const Node *nd, const Tensor *a, Tensor *out, float (*f)(float, float),
                  double (*g)(double, double))
{
    if (out->dt == DT_F32)
        map1_f32(f, nd->a.value, a, out);
    else if (out->dt == DT_F64)
        map1_f64(g, nd->a.value, a, out);
    else
        ICE("%s on %s", ir_ops[nd->op].name, ir_dtype_name(out->dt));
}

#define UNARY(name)                                                                        \
    INTERP_FN(name)                                                                        \
    {                                                                                      \
        unary(nd, in[0], out, name##_f32, name##_f64);                                     \
        return true;                                                                       \
    }

UNARY(neg)
UNARY(exp)
UNARY(log)
UNARY(tanh)
UNARY(sigmoid)
UNARY(relu)
UNARY(elu)
UNARY(sqrt)
UNARY(rsqrt)
UNARY(square)
UNARY(abs)
UNARY(sign)

/* Any dtype to any dtype through double, which holds f32 and i32 exactly:
 * float -> f32 rounds to nearest, float -> i32 truncates toward zero and
 * saturates (NaN -> 0). */
INTERP_FN(cast)
{
    for (int64_t i = 0; i < out->numel; i++)
        ix_store(out, i, ix_load(in[0], i));
    return true;
}

/* ---- binary ---- */

static void binary(const Node *nd, Tensor *const *in, Tensor *out, float (*f)(float, float),
                   double (*g)(double, double))
{
    if (out->dt == DT_F32)
        map2_f32(f, in[0], in[1], out);
    else if (out->dt == DT_F64)
        map2_f64(g, in[0], in[1], out);
    else
        ICE("%s on %s", ir_ops[nd->op].name, ir_dtype_name(out->dt));
}

#define BINARY(name)                                                                       \
    INTERP_FN(name)                                                                        \
    {                                                                                      \
        binary(nd, in, out, name##_f32, name##_f64);                                       \
        return true;                                                                       \
    }

BINARY(add)
BINARY(sub)
BINARY(mul)
BINARY(div)
BINARY(pow)
BINARY(maximum)
BINARY(minimum)
BINARY(gt)
BINARY(ge)
BINARY(lt)
BINARY(le)
BINARY(eq)

INTERP_FN(select)
{
    IX_BY_DTYPE(out->dt, select, in[0], in[1], in[2], out);
    return true;
}
