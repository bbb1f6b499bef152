/* Interpreter routines for leaves and elementwise ops (unary math, cast,
 * binary arithmetic and comparisons with NumPy broadcasting, select), the
 * scalar evaluation of elementwise ops for the constant folder, and the
 * element and index helpers shared by all routines. */
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

/* ---- unary and binary: the scalar kernels, by op ----
 * One pair per unary and binary row of ir/ops.def, built from the table,
 * so an op without kernels in kern_elem.inc does not compile. cast
 * converts between dtypes through double (ix_load, ix_store) and has no
 * kernel of one float type. */

typedef struct Kernel {
    float (*f32)(float, float);
    double (*f64)(double, double);
} Kernel;

#define cast_f32 NULL
#define cast_f64 NULL
#define KERNEL_OPC_UNARY(E, name) [OP_##E] = {name##_f32, name##_f64},
#define KERNEL_OPC_BINARY(E, name) [OP_##E] = {name##_f32, name##_f64},
#define KERNEL_OPC_TERNARY(E, name)
#define KERNEL_OPC_LEAF(E, name)
#define KERNEL_OPC_REDUCE(E, name)
#define KERNEL_OPC_SHAPE(E, name)
#define KERNEL_OPC_OTHER(E, name)
static const Kernel kernels[OP_COUNT] = {
#define OP(E, name, arity, cls, ...) KERNEL_##cls(E, name)
#include "ir/ops.def"
#undef OP
};
#undef cast_f32
#undef cast_f64

static void convert(const Tensor *a, Tensor *out)
{
    for (int64_t i = 0; i < out->numel; i++)
        ix_store(out, i, ix_load(a, i));
}

/* The routine of every unary and binary op: its kernel over the elements
 * in the result's float type (unary kernels get elu's alpha as their
 * second argument); cast converts each element: float -> f32 rounds to
 * nearest, float -> i32 truncates toward zero and saturates (NaN -> 0). */
INTERP_FN(elementwise)
{
    const Kernel *k = &kernels[nd->op];
    bool unary = ir_ops[nd->op].cls == OPC_UNARY;
    if (nd->op == OP_CAST)
        convert(in[0], out);
    else if (out->dt == DT_F32 && unary)
        map1_f32(k->f32, nd->a.value, in[0], out);
    else if (out->dt == DT_F64 && unary)
        map1_f64(k->f64, nd->a.value, in[0], out);
    else if (out->dt == DT_F32)
        map2_f32(k->f32, in[0], in[1], out);
    else if (out->dt == DT_F64)
        map2_f64(k->f64, in[0], in[1], out);
    else
        ICE("%s on %s", ir_ops[nd->op].name, ir_dtype_name(out->dt));
    return true;
}

/* ---- scalars: the constant folder's evaluator ---- */

double be_interp_round(DType dt, double v)
{
    switch (dt) {
    case DT_F32:
        return (float)v;
    case DT_F64:
        return v;
    case DT_I32:
        return ix_to_i32(v);
    default:
        ICE("bad dtype %d", (int)dt);
    }
}

double be_interp_elem(Op op, DType dt, double alpha, const double *x)
{
    if (op == OP_CAST)
        return be_interp_round(dt, x[0]);
    MC_ASSERT(ir_op_is_elementwise(op) && ir_dtype_is_float(dt));
    double v[3] = {0, 0, 0}; /* operands past the arity are never read (zeroed for -O3's warning) */
    for (int i = 0; i < ir_ops[op].arity; i++)
        v[i] = be_interp_round(dt, x[i]);
    if (op == OP_SELECT)
        return dt == DT_F32 ? pick_f32((float)v[0], (float)v[1], (float)v[2]) : pick_f64(v[0], v[1], v[2]);
    double b = ir_ops[op].cls == OPC_UNARY ? alpha : v[1];
    return dt == DT_F32 ? kernels[op].f32((float)v[0], (float)b) : kernels[op].f64(v[0], b);
}

INTERP_FN(select)
{
    IX_BY_DTYPE(out->dt, select, in[0], in[1], in[2], out);
    return true;
}
