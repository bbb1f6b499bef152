/* Code-generation helpers: types, constants, symbolic sizes as values,
 * calls and intrinsics, loads and stores, conversions, and the shape of
 * a kernel function. */
#include "cg.h"

#include <string.h>

static void builder_drop(void *b)
{
    LLVMDisposeBuilder(b);
}

void cg_init(Cg *c, LLVMContextRef cx, LLVMModuleRef mod, const Plan *p)
{
    memset(c, 0, sizeof *c);
    c->cx = cx;
    c->mod = mod;
    c->b = LLVMCreateBuilderInContext(cx);
    c->i1 = LLVMInt1TypeInContext(cx);
    c->i32 = LLVMInt32TypeInContext(cx);
    c->i64 = LLVMInt64TypeInContext(cx);
    c->f32 = LLVMFloatTypeInContext(cx);
    c->f64 = LLVMDoubleTypeInContext(cx);
    c->ptr = LLVMPointerTypeInContext(cx, 0);
    c->vd = LLVMVoidTypeInContext(cx);
    c->plan = p;
    mem_cleanup_push(&c->on_jump, builder_drop, c->b);
}

void cg_dispose(Cg *c)
{
    mem_cleanup_pop(&c->on_jump);
    LLVMDisposeBuilder(c->b);
}

LLVMTypeRef cg_type(Cg *c, DType t)
{
    switch (t) {
    case DT_F32:
        return c->f32;
    case DT_F64:
        return c->f64;
    case DT_I32:
        return c->i32;
    default:
        ICE("bad dtype %d", (int)t);
    }
}

LLVMValueRef cg_i64(Cg *c, int64_t v)
{
    return LLVMConstInt(c->i64, (unsigned long long)v, 1);
}

/* double to i32 as `cast` does: truncate, saturate, NaN -> 0 */
static int32_t sat_i32(double v)
{
    if (v != v)
        return 0;
    if (v <= -2147483648.0)
        return INT32_MIN;
    if (v >= 2147483647.0)
        return INT32_MAX;
    return (int32_t)v;
}

LLVMValueRef cg_fconst(Cg *c, DType t, double v)
{
    if (t == DT_I32)
        return LLVMConstInt(c->i32, (unsigned long long)(int64_t)sat_i32(v), 1);
    return LLVMConstReal(cg_type(c, t), v);
}

LLVMValueRef cg_mono(Cg *c, Mono m)
{
    if (m.c == 0 || m.p == 0)
        return cg_i64(c, m.c);
    LLVMValueRef v = c->n;
    for (int i = 1; i < m.p; i++)
        v = LLVMBuildNSWMul(c->b, v, c->n, "");
    return m.c == 1 ? v : LLVMBuildNSWMul(c->b, v, cg_i64(c, m.c), "");
}

LLVMValueRef cg_call(Cg *c, const char *name, LLVMTypeRef ret, LLVMTypeRef *pt, int np,
                     LLVMValueRef *args)
{
    LLVMTypeRef fty = LLVMFunctionType(ret, pt, (unsigned)np, 0);
    LLVMValueRef f = LLVMGetNamedFunction(c->mod, name);
    if (!f && strncmp(name, "rt_", 3) == 0 && !jit_rt_sym_known(name))
        ICE("runtime function %s is missing from backend/llvm/rtsyms.c", name);
    if (!f)
        f = LLVMAddFunction(c->mod, name, fty);
    return LLVMBuildCall2(c->b, fty, f, args, (unsigned)np, "");
}

LLVMValueRef cg_intrinsic(Cg *c, const char *name, LLVMTypeRef t, LLVMValueRef *args, int nargs)
{
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    if (!id)
        ICE("unknown intrinsic %s", name);
    LLVMValueRef f = LLVMGetIntrinsicDeclaration(c->mod, id, &t, 1);
    LLVMTypeRef fty = LLVMIntrinsicGetType(c->cx, id, &t, 1);
    return LLVMBuildCall2(c->b, fty, f, args, (unsigned)nargs, "");
}

LLVMValueRef cg_alloca(Cg *c, LLVMTypeRef t, const char *name)
{
    LLVMBuilderRef ab = LLVMCreateBuilderInContext(c->cx);
    LLVMPositionBuilderAtEnd(ab, c->alloca_bb);
    LLVMValueRef v = LLVMBuildAlloca(ab, t, name);
    LLVMDisposeBuilder(ab);
    return v;
}

static LLVMValueRef elem_ptr(Cg *c, DType t, LLVMValueRef base, LLVMValueRef off)
{
    if (!off)
        return base;
    return LLVMBuildInBoundsGEP2(c->b, cg_type(c, t), base, &off, 1, "");
}

LLVMValueRef cg_load(Cg *c, DType t, LLVMValueRef base, LLVMValueRef off)
{
    LLVMValueRef v = LLVMBuildLoad2(c->b, cg_type(c, t), elem_ptr(c, t, base, off), "");
    LLVMSetAlignment(v, (unsigned)ir_dtype_size(t));
    return v;
}

void cg_store(Cg *c, DType t, LLVMValueRef v, LLVMValueRef base, LLVMValueRef off)
{
    LLVMValueRef s = LLVMBuildStore(c->b, v, elem_ptr(c, t, base, off));
    LLVMSetAlignment(s, (unsigned)ir_dtype_size(t));
}

LLVMValueRef cg_convert(Cg *c, LLVMValueRef v, DType from, DType to)
{
    if (from == to)
        return v;
    LLVMTypeRef t = cg_type(c, to);
    if (from == DT_I32)
        return LLVMBuildSIToFP(c->b, v, t, "");
    if (to == DT_I32) { /* truncate, saturate, NaN -> 0 */
        LLVMTypeRef tys[2] = {t, cg_type(c, from)};
        unsigned id = LLVMLookupIntrinsicID("llvm.fptosi.sat", 15);
        LLVMValueRef f = LLVMGetIntrinsicDeclaration(c->mod, id, tys, 2);
        return LLVMBuildCall2(c->b, LLVMIntrinsicGetType(c->cx, id, tys, 2), f, &v, 1, "");
    }
    return from == DT_F32 ? LLVMBuildFPExt(c->b, v, t, "") : LLVMBuildFPTrunc(c->b, v, t, "");
}

static void add_attr(Cg *c, LLVMValueRef fn, unsigned idx, const char *name)
{
    unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
    LLVMAddAttributeAtIndex(fn, idx, LLVMCreateEnumAttribute(c->cx, kind, 0));
}

void cg_kernel_begin(Cg *c, const char *name, const int *slots, int nslots)
{
    c->nk = 0;
    for (int i = 0; i < nslots; i++) {
        bool dup = false;
        for (int j = 0; j < c->nk; j++)
            dup |= c->kslot[j] == slots[i];
        if (!dup) {
            MC_ASSERT(c->nk < CG_MAXARGS);
            c->kslot[c->nk++] = slots[i];
        }
    }
    LLVMTypeRef pt[CG_MAXARGS + 2];
    pt[0] = c->ptr;
    pt[1] = c->i64;
    for (int i = 0; i < c->nk; i++)
        pt[i + 2] = c->ptr;
    LLVMTypeRef fty = LLVMFunctionType(c->vd, pt, (unsigned)c->nk + 2, 0);
    c->fn = LLVMAddFunction(c->mod, name, fty);
    LLVMSetLinkage(c->fn, LLVMInternalLinkage);
    add_attr(c, c->fn, LLVMAttributeFunctionIndex, "nounwind");
    c->ctxp = LLVMGetParam(c->fn, 0);
    c->n = LLVMGetParam(c->fn, 1);
    LLVMSetValueName2(c->ctxp, "ctx", 3);
    LLVMSetValueName2(c->n, "N", 1);
    for (int i = 0; i < c->nk; i++) {
        c->kptr[i] = LLVMGetParam(c->fn, (unsigned)i + 2);
        char nm[24];
        snprintf(nm, sizeof nm, "b%d", c->kslot[i]);
        LLVMSetValueName2(c->kptr[i], nm, strlen(nm));
        add_attr(c, c->fn, (unsigned)i + 3, "noalias");
    }
    c->alloca_bb = LLVMAppendBasicBlockInContext(c->cx, c->fn, "entry");
    LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(c->cx, c->fn, "body");
    LLVMPositionBuilderAtEnd(c->b, body);
}

LLVMValueRef cg_buf(Cg *c, int slot)
{
    for (int i = 0; i < c->nk; i++)
        if (c->kslot[i] == slot)
            return c->kptr[i];
    ICE("slot %d is not a parameter of the kernel", slot);
}

void cg_kernel_end(Cg *c)
{
    LLVMBuildRetVoid(c->b);
    LLVMBuilderRef ab = LLVMCreateBuilderInContext(c->cx);
    LLVMPositionBuilderAtEnd(ab, c->alloca_bb);
    LLVMBuildBr(ab, LLVMGetNextBasicBlock(c->alloca_bb));
    LLVMDisposeBuilder(ab);
}
