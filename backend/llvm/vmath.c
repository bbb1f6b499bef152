/* exp and tanh as straight-line IR for f32, so loops that use them
 * vectorize at full width (a call to expf/tanhf is split into one scalar
 * call per lane). The algorithms are Cephes' expf and tanhf (about 1-2 ulp
 * from the correctly rounded result; docs/ops.md asks backends to agree
 * with libm within their tests' tolerance). NaN, infinities, overflow to
 * inf, underflow to 0 (through denormals) and the sign of zero match libm.
 * f64 keeps llvm.exp / tanh from libm. */
#include "cg.h"

static LLVMValueRef fc(Cg *c, double v)
{
    return LLVMConstReal(c->f32, v);
}

/* The approximations' multiplies and adds may fuse into FMAs
 * (`contract`): their error bounds hold either way. */
static LLVMValueRef contract(LLVMValueRef v)
{
    if (LLVMIsAInstruction(v))
        LLVMSetFastMathFlags(v, LLVMFastMathAllowContract);
    return v;
}

static LLVMValueRef fmul(Cg *c, LLVMValueRef a, LLVMValueRef b)
{
    return contract(LLVMBuildFMul(c->b, a, b, ""));
}

static LLVMValueRef fadd(Cg *c, LLVMValueRef a, LLVMValueRef b)
{
    return contract(LLVMBuildFAdd(c->b, a, b, ""));
}

/* coefficients[0] * x^(n-1) + ... + coefficients[n-1], by Horner */
static LLVMValueRef horner(Cg *c, LLVMValueRef x, const double *k, int n)
{
    LLVMValueRef p = fc(c, k[0]);
    for (int i = 1; i < n; i++)
        p = fadd(c, fmul(c, p, x), fc(c, k[i]));
    return p;
}

static LLVMValueRef select_lt(Cg *c, LLVMValueRef x, double lim)
{
    LLVMValueRef lt = LLVMBuildFCmp(c->b, LLVMRealOLT, x, fc(c, lim), "");
    return LLVMBuildSelect(c->b, lt, fc(c, lim), x, "");
}

/* 2^n for an i32 n in [-126, 127] */
static LLVMValueRef pow2(Cg *c, LLVMValueRef n)
{
    LLVMValueRef bits = LLVMBuildShl(c->b, LLVMBuildAdd(c->b, n, LLVMConstInt(c->i32, 127, 0), ""),
                                     LLVMConstInt(c->i32, 23, 0), "");
    return LLVMBuildBitCast(c->b, bits, c->f32, "");
}

/* expf: x = n ln2 + r, |r| <= ln2/2; e^r by a degree-6 polynomial; times
 * 2^n applied in two halves so that denormal results round correctly. */
static LLVMValueRef exp_f32(Cg *c, LLVMValueRef x)
{
    static const double P[6] = {1.9875691500E-4, 1.3981999507E-3, 8.3334519073E-3,
                                4.1665795894E-2, 1.6666665459E-1, 5.0000001201E-1};
    LLVMBuilderRef b = c->b;
    LLVMValueRef nan = LLVMBuildFCmp(b, LLVMRealUNO, x, x, "");
    /* clamp to [-104, 89]: beyond, the result is 0 or inf anyway */
    LLVMValueRef xc = select_lt(c, x, -104.0);
    LLVMValueRef gt = LLVMBuildFCmp(b, LLVMRealOGT, xc, fc(c, 89.0), "");
    xc = LLVMBuildSelect(b, gt, fc(c, 89.0), xc, "");
    xc = LLVMBuildSelect(b, nan, fc(c, 0), xc, "");
    LLVMValueRef t = fadd(c, fmul(c, xc, fc(c, 1.44269504088896341)), fc(c, 0.5));
    LLVMValueRef fn = cg_intrinsic(c, "llvm.floor", c->f32, &t, 1);
    LLVMValueRef r = LLVMBuildFSub(b, xc, fmul(c, fn, fc(c, 0.693359375)), "");
    r = LLVMBuildFSub(b, r, fmul(c, fn, fc(c, -2.12194440e-4)), "");
    LLVMValueRef z = fmul(c, r, r);
    LLVMValueRef y = fadd(c, fadd(c, fmul(c, horner(c, r, P, 6), z), r), fc(c, 1.0));
    LLVMValueRef n = LLVMBuildFPToSI(b, fn, c->i32, "");
    LLVMValueRef n1 = LLVMBuildAShr(b, n, LLVMConstInt(c->i32, 1, 0), "");
    LLVMValueRef n2 = LLVMBuildSub(b, n, n1, "");
    y = fmul(c, fmul(c, y, pow2(c, n1)), pow2(c, n2));
    return LLVMBuildSelect(b, nan, x, y, "");
}

/* tanhf: an odd polynomial for |x| < 0.625, 1 - 2/(e^2|x| + 1) above. */
static LLVMValueRef tanh_f32(Cg *c, LLVMValueRef x)
{
    static const double P[5] = {-5.70498872745E-3, 2.06390887954E-2, -5.37397155531E-2,
                                1.33314422036E-1, -3.33332819422E-1};
    LLVMBuilderRef b = c->b;
    LLVMValueRef ax = cg_intrinsic(c, "llvm.fabs", c->f32, &x, 1);
    LLVMValueRef e = exp_f32(c, fadd(c, ax, ax));
    LLVMValueRef big = LLVMBuildFSub(b, fc(c, 1.0), LLVMBuildFDiv(b, fc(c, 2.0), fadd(c, e, fc(c, 1.0)), ""), "");
    LLVMValueRef args[2] = {big, x};
    big = cg_intrinsic(c, "llvm.copysign", c->f32, args, 2);
    LLVMValueRef z = fmul(c, x, x);
    LLVMValueRef small = fadd(c, fmul(c, fmul(c, horner(c, z, P, 5), z), x), x);
    LLVMValueRef gt = LLVMBuildFCmp(b, LLVMRealOGE, ax, fc(c, 0.625), "");
    return LLVMBuildSelect(b, gt, big, small, "");
}

LLVMValueRef cg_exp(Cg *c, DType t, LLVMValueRef x)
{
    if (t == DT_F32)
        return exp_f32(c, x);
    return cg_intrinsic(c, "llvm.exp", cg_type(c, t), &x, 1);
}

LLVMValueRef cg_tanh(Cg *c, DType t, LLVMValueRef x)
{
    if (t == DT_F32)
        return tanh_f32(c, x);
    LLVMTypeRef ty = cg_type(c, t);
    return cg_call(c, "tanh", ty, &ty, 1, &x);
}
