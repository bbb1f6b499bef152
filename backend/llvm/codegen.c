/* The LLVM module of a plan: one internal function per kernel and the
 * entry function `void entry(ptr ctx, i64 N, ptr bufs)` that loads the
 * buffer table once and calls the kernels (and copies) in order. A
 * profiling module also calls rt_prof_begin at the start and
 * rt_prof_tick(ctx, i) after step i (runtime/kernels.h). */
#include "cg.h"

#include <llvm-c/Analysis.h>
#include <stdlib.h>
#include <string.h>

int cg_step_slots(const Plan *p, const Step *st, int *slots)
{
    int n = 0;
    slots[n++] = st->out;
    if (st->kind == STEP_COPY) {
        slots[n++] = st->src;
        return n;
    }
    for (int i = 0; i < st->node->nin; i++) {
        int s = p->node_slot[st->node->in[i]->id];
        bool dup = s < 0;
        for (int j = 0; j < n && !dup; j++)
            dup = slots[j] == s;
        if (!dup) {
            MC_ASSERT(n < CG_MAXARGS - 1);
            slots[n++] = s;
        }
    }
    if (st->scratch >= 0)
        slots[n++] = st->scratch;
    return n;
}

static void emit_kernel_body(Cg *c, const Step *st)
{
    Node *v = st->node;
    switch (v->op) {
    case OP_CONST:
        cg_fill(c, st);
        return;
    case OP_TRANSPOSE:
        cg_transpose(c, st);
        return;
    case OP_SLICE:
        cg_slice(c, st);
        return;
    case OP_SLICE_GRAD:
        cg_slice_grad(c, st);
        return;
    case OP_CONCAT:
        cg_concat(c, st);
        return;
    case OP_ONE_HOT:
        cg_one_hot(c, st);
        return;
    case OP_DROPOUT_MASK:
        cg_dropout_mask(c, st);
        return;
    case OP_REDUCE_SUM:
    case OP_REDUCE_MEAN:
    case OP_REDUCE_MAX:
        cg_reduce(c, st);
        return;
    case OP_ARGMAX:
        cg_argmax(c, st);
        return;
    case OP_SOFTMAX:
    case OP_LOG_SOFTMAX:
        cg_softmax(c, st);
        return;
    case OP_MATMUL:
        cg_matmul(c, st);
        return;
    case OP_CONV2D:
    case OP_CONV2D_GRAD_INPUT:
    case OP_CONV2D_GRAD_KERNEL:
        cg_conv(c, st);
        return;
    case OP_MAX_POOL2D:
    case OP_MAX_POOL2D_GRAD:
    case OP_AVG_POOL2D:
    case OP_AVG_POOL2D_GRAD:
        cg_pool(c, st);
        return;
    case OP_BROADCAST:
    case OP_SELECT:
    case OP_FUSED:
        cg_elementwise(c, st);
        return;
    default:
        if (ir_ops[v->op].cls == OPC_UNARY || ir_ops[v->op].cls == OPC_BINARY) {
            cg_elementwise(c, st);
            return;
        }
        ICE("no code generator for %s", ir_ops[v->op].name);
    }
}

static LLVMValueRef emit_kernel(Cg *c, int i, const Step *st, const int *slots, int ns)
{
    char name[64];
    snprintf(name, sizeof name, "k%d.%s", i, ir_ops[st->node->op].name);
    cg_kernel_begin(c, name, slots, ns);
    emit_kernel_body(c, st);
    cg_kernel_end(c);
    return c->fn;
}

/* bytes of a slot for the entry's N */
static LLVMValueRef slot_bytes(Cg *c, const Slot *s)
{
    return cg_mono(c, mono_mul(s->elems, mono(ir_dtype_size(s->dt))));
}

/* rt_prof_begin(ctx) (i < 0) or rt_prof_tick(ctx, i) */
static void prof_call(Cg *c, LLVMValueRef ctxp, int i)
{
    LLVMTypeRef pt[2] = {c->ptr, c->i32};
    LLVMValueRef args[2] = {ctxp, LLVMConstInt(c->i32, (unsigned long long)i, 0)};
    if (i < 0)
        cg_call(c, "rt_prof_begin", c->vd, pt, 1, args);
    else
        cg_call(c, "rt_prof_tick", c->vd, pt, 2, args);
}

LLVMModuleRef cg_build_module(LLVMContextRef cx, const Plan *p, bool profile, Diags *d)
{
    LLVMModuleRef mod = LLVMModuleCreateWithNameInContext(p->g->name, cx);
    Cg c;
    cg_init(&c, cx, mod, p);
    LLVMValueRef *kfn = xcalloc((size_t)p->nsteps + 1, sizeof(LLVMValueRef));
    int slots[CG_MAXARGS];
    for (int i = 0; i < p->nsteps; i++)
        if (p->steps[i].kind == STEP_KERNEL) {
            int ns = cg_step_slots(p, &p->steps[i], slots);
            kfn[i] = emit_kernel(&c, i, &p->steps[i], slots, ns);
        }

    LLVMTypeRef pt[3] = {c.ptr, c.i64, c.ptr};
    LLVMTypeRef fty = LLVMFunctionType(c.vd, pt, 3, 0);
    LLVMValueRef entry = LLVMAddFunction(mod, "entry", fty);
    LLVMValueRef ctxp = LLVMGetParam(entry, 0), bufs = LLVMGetParam(entry, 2);
    LLVMSetValueName2(ctxp, "ctx", 3);
    LLVMSetValueName2(LLVMGetParam(entry, 1), "N", 1);
    LLVMSetValueName2(bufs, "bufs", 4);
    LLVMPositionBuilderAtEnd(c.b, LLVMAppendBasicBlockInContext(cx, entry, "entry"));
    c.fn = entry;
    c.n = LLVMGetParam(entry, 1);
    LLVMValueRef *bp = xcalloc((size_t)p->nslots + 1, sizeof(LLVMValueRef));
    for (int s = 0; s < p->nslots; s++) {
        LLVMValueRef idx = cg_i64(&c, s);
        LLVMValueRef at = LLVMBuildInBoundsGEP2(c.b, c.ptr, bufs, &idx, 1, "");
        char nm[24];
        snprintf(nm, sizeof nm, "b%d", s);
        bp[s] = LLVMBuildLoad2(c.b, c.ptr, at, nm);
    }
    if (profile)
        prof_call(&c, ctxp, -1);
    for (int i = 0; i < p->nsteps; i++) {
        const Step *st = &p->steps[i];
        if (st->kind == STEP_COPY) {
            LLVMBuildMemCpy(c.b, bp[st->out], 16, bp[st->src], 16, slot_bytes(&c, &p->slots[st->src]));
            if (profile)
                prof_call(&c, ctxp, i);
            continue;
        }
        int ns = cg_step_slots(p, st, slots);
        LLVMValueRef args[CG_MAXARGS + 2];
        int na = 0;
        args[na++] = ctxp;
        args[na++] = c.n;
        for (int j = 0; j < ns; j++) {
            bool dup = false;
            for (int k = 0; k < j; k++)
                dup |= slots[k] == slots[j];
            if (!dup)
                args[na++] = bp[slots[j]];
        }
        LLVMBuildCall2(c.b, LLVMGlobalGetValueType(kfn[i]), kfn[i], args, (unsigned)na, "");
        if (profile)
            prof_call(&c, ctxp, i);
    }
    LLVMBuildRetVoid(c.b);
    free(bp);
    free(kfn);
    cg_dispose(&c);

    char *msg = NULL;
    if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &msg)) {
        fprintf(stderr, "%s", msg);
        ICE("generated LLVM module does not verify: %s", msg);
    }
    LLVMDisposeMessage(msg);
    (void)d;
    return mod;
}
