/* Loop nests over tensors: guarded rotated loops, and nests that drop
 * unit dimensions and merge dimensions contiguous for every buffer they
 * address, so that the innermost loop is as long as possible and unit-
 * or zero-strided (what the loop vectorizer wants). */
#include "cg.h"

#include <llvm-c/DebugInfo.h>
#include <string.h>

LLVMValueRef cg_loop_begin(Cg *c, Loop *l, LLVMValueRef count, const char *name)
{
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(c->b);
    l->body = LLVMAppendBasicBlockInContext(c->cx, c->fn, name);
    l->exit = LLVMAppendBasicBlockInContext(c->cx, c->fn, "");
    l->count = count;
    LLVMValueRef nonempty = LLVMBuildICmp(c->b, LLVMIntSGT, count, cg_i64(c, 0), "");
    LLVMBuildCondBr(c->b, nonempty, l->body, l->exit);
    LLVMPositionBuilderAtEnd(c->b, l->body);
    l->iv = LLVMBuildPhi(c->b, c->i64, name);
    LLVMValueRef zero = cg_i64(c, 0);
    LLVMAddIncoming(l->iv, &zero, &pre, 1);
    return l->iv;
}

/* Loop metadata distinct !{self, !{"llvm.loop.unroll.disable"}}: the
 * vectorizer still interleaves, but constant-trip loops are not fully
 * unrolled into huge straight-line blocks, which tripled codegen time
 * (the machine scheduler is superlinear in block size) for no measurable
 * gain in step time. */
static void no_unroll(Cg *c, LLVMValueRef br)
{
    LLVMMetadataRef tmp = LLVMTemporaryMDNode(c->cx, NULL, 0);
    const char *key = "llvm.loop.unroll.disable";
    LLVMMetadataRef kv = LLVMMDStringInContext2(c->cx, key, strlen(key));
    LLVMMetadataRef ops[2] = {tmp, LLVMMDNodeInContext2(c->cx, &kv, 1)};
    LLVMMetadataRef id = LLVMMDNodeInContext2(c->cx, ops, 2);
    LLVMMetadataReplaceAllUsesWith(tmp, id);
    unsigned kind = LLVMGetMDKindIDInContext(c->cx, "llvm.loop", 9);
    LLVMSetMetadata(br, kind, LLVMMetadataAsValue(c->cx, id));
}

void cg_loop_end(Cg *c, Loop *l)
{
    LLVMValueRef next = LLVMBuildNUWAdd(c->b, l->iv, cg_i64(c, 1), "");
    LLVMValueRef more = LLVMBuildICmp(c->b, LLVMIntSLT, next, l->count, "");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(c->b);
    LLVMValueRef br = LLVMBuildCondBr(c->b, more, l->body, l->exit);
    no_unroll(c, br);
    LLVMAddIncoming(l->iv, &next, &latch, 1);
    LLVMPositionBuilderAtEnd(c->b, l->exit);
}

void cg_bcast_strides(const Shape *s, const Shape *out, Mono *st)
{
    Mono own[IR_MAXRANK];
    mono_strides(s, own);
    int off = out->rank - s->rank;
    for (int k = 0; k < out->rank; k++) {
        int ks = k - off;
        st[k] = ks < 0 || (s->d[ks] == 1 && out->d[k] != 1) ? mono(0) : own[ks];
    }
}

typedef struct Nest {
    int rank, nacc;
    Mono dims[IR_MAXRANK];
    Acc acc[CG_MAXARGS];
    NestBody body;
    void *ud;
} Nest;

static void drop_dim(Nest *t, int k)
{
    for (int j = k; j + 1 < t->rank; j++) {
        t->dims[j] = t->dims[j + 1];
        for (int a = 0; a < t->nacc; a++)
            t->acc[a].stride[j] = t->acc[a].stride[j + 1];
    }
    t->rank--;
}

static void simplify(Nest *t)
{
    for (int k = t->rank - 1; k >= 0; k--)
        if (mono_is(t->dims[k], 1))
            drop_dim(t, k);
    for (int k = t->rank - 2; k >= 0; k--) {
        bool ok = true;
        for (int a = 0; a < t->nacc && ok; a++)
            ok = mono_eq(t->acc[a].stride[k], mono_mul(t->acc[a].stride[k + 1], t->dims[k + 1]));
        if (!ok)
            continue;
        t->dims[k + 1] = mono_mul(t->dims[k], t->dims[k + 1]);
        drop_dim(t, k);
    }
}

static LLVMValueRef advance(Cg *c, LLVMValueRef off, LLVMValueRef iv, Mono stride)
{
    if (mono_is(stride, 0))
        return off;
    LLVMValueRef step = mono_is(stride, 1) ? iv : LLVMBuildNSWMul(c->b, iv, cg_mono(c, stride), "");
    return off ? LLVMBuildNSWAdd(c->b, off, step, "") : step;
}

static void emit_level(Cg *c, Nest *t, int k, LLVMValueRef *offs)
{
    if (k == t->rank) {
        LLVMValueRef fixed[CG_MAXARGS];
        for (int a = 0; a < t->nacc; a++)
            fixed[a] = offs[a] ? offs[a] : cg_i64(c, 0);
        t->body(c, t->ud, fixed);
        return;
    }
    Loop l;
    char name[16];
    snprintf(name, sizeof name, "i%d", k);
    LLVMValueRef iv = cg_loop_begin(c, &l, cg_mono(c, t->dims[k]), name);
    LLVMValueRef inner[CG_MAXARGS];
    for (int a = 0; a < t->nacc; a++)
        inner[a] = advance(c, offs[a], iv, t->acc[a].stride[k]);
    emit_level(c, t, k + 1, inner);
    cg_loop_end(c, &l);
}

void cg_nest(Cg *c, int rank, const Mono *dims, int nacc, const Acc *acc, NestBody body, void *ud)
{
    Nest t;
    MC_ASSERT(nacc <= CG_MAXARGS && rank <= IR_MAXRANK);
    t.rank = rank;
    t.nacc = nacc;
    memcpy(t.dims, dims, (size_t)rank * sizeof(Mono));
    memcpy(t.acc, acc, (size_t)nacc * sizeof(Acc));
    t.body = body;
    t.ud = ud;
    simplify(&t);
    LLVMValueRef offs[CG_MAXARGS];
    for (int a = 0; a < nacc; a++)
        offs[a] = acc[a].off;
    emit_level(c, &t, 0, offs);
}
