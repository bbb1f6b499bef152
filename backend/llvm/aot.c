/* Ahead-of-time compilation: every function's plan is built, split into
 * parts and optimised exactly as the JIT does it (compile.c), the parts'
 * modules are linked into one module without further optimisation (so
 * each function's machine code is what the JIT runs), and the module
 * gets the description runtime/aot.c reads, the embedded parameter
 * values and the `<name>_model` record; then one object file. */
#include "aot.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/Linker.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compile.h"
#include "plan_memory.h"
#include "runtime/aot.h"

#define AOT_WEIGHT_ALIGN 64
#define AOT_WS_ALIGN 64 /* as the JIT's workspaces */

static const char *dt_name(DType t)
{
    return t == DT_F64 ? "f64" : t == DT_I32 ? "i32" : "f32";
}

static void put_shape(StrBuf *b, DType dt, const Shape *s)
{
    sb_printf(b, " %s %d", dt_name(dt), s->rank);
    for (int k = 0; k < s->rank; k++)
        sb_printf(b, " %lld", (long long)s->d[k]); /* N is -1, N*k is -k */
}

/* ---- the target ---- */

/* LLVM reports an unknown CPU only as a warning on stderr (when the
 * target machine makes its subtarget) and aborts later in code
 * generation: create the machine with stderr captured, and refuse the
 * CPU when LLVM did not recognise it. */
static LLVMTargetMachineRef checked_tm(LLVMTargetRef target, const char *triple, const char *cpu,
                                       const char *features, bool *unknown_cpu)
{
    *unknown_cpu = false;
    fflush(stderr);
    FILE *cap = tmpfile();
    int saved = cap ? dup(2) : -1;
    if (saved >= 0)
        dup2(fileno(cap), 2);
    LLVMTargetMachineRef tm = LLVMCreateTargetMachine(target, triple, cpu, features, LLVMCodeGenLevelDefault,
                                                      LLVMRelocPIC, LLVMCodeModelSmall);
    if (saved >= 0) {
        fflush(stderr);
        dup2(saved, 2);
        close(saved);
        char buf[512] = "";
        rewind(cap);
        size_t k = fread(buf, 1, sizeof buf - 1, cap);
        buf[k] = 0;
        *unknown_cpu = strstr(buf, "not a recognized processor") != NULL;
        if (!*unknown_cpu)
            fputs(buf, stderr);
    }
    if (cap)
        fclose(cap);
    return tm;
}

static LLVMTargetMachineRef target_machine(const AotOpts *o, AotResult *r, Diags *d)
{
    bool host = !o->triple;
    char *triple = host ? LLVMGetDefaultTargetTriple() : LLVMNormalizeTargetTriple(o->triple);
    char *cpu = o->cpu ? LLVMCreateMessage(o->cpu) : host ? LLVMGetHostCPUName() : LLVMCreateMessage("generic");
    char *features = host && !o->cpu ? LLVMGetHostCPUFeatures() : LLVMCreateMessage("");
    LLVMTargetRef target;
    char *err = NULL;
    LLVMTargetMachineRef tm = NULL;
    if (LLVMGetTargetFromTriple(triple, &target, &err)) {
        diag_error(d, (SrcLoc){0}, "--target %s: this LLVM has no such target (%s)", triple, err);
        LLVMDisposeMessage(err);
    } else {
        bool unknown_cpu = false;
        tm = o->cpu ? checked_tm(target, triple, cpu, features, &unknown_cpu)
                    : LLVMCreateTargetMachine(target, triple, cpu, features, LLVMCodeGenLevelDefault, LLVMRelocPIC,
                                              LLVMCodeModelSmall);
        if (unknown_cpu) {
            diag_error(d, (SrcLoc){0}, "--cpu %s: not a CPU of target %s (llc-19 -mtriple=%s -mcpu=help lists them)",
                       cpu, triple, triple);
            LLVMDisposeTargetMachine(tm);
            tm = NULL;
        } else if (!tm) {
            diag_error(d, (SrcLoc){0}, "cannot create a target machine for %s (cpu %s)", triple, cpu);
        }
    }
    r->triple = arena_strdup(r->arena, triple);
    r->cpu = arena_strdup(r->arena, cpu);
    LLVMDisposeMessage(triple);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(features);
    return tm;
}

/* ---- parameters ---- */

typedef struct Params {
    int n, cap;
    const char **names;
    const Tensor **vals;
    int64_t *off; /* in the embedded blob */
} Params;

static int param_index(Params *ps, const char *name, const Tensor *t)
{
    for (int i = 0; i < ps->n; i++)
        if (strcmp(ps->names[i], name) == 0)
            return i;
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? 2 * ps->cap : 16;
        ps->names = xrealloc(ps->names, (size_t)ps->cap * sizeof *ps->names);
        ps->vals = xrealloc(ps->vals, (size_t)ps->cap * sizeof *ps->vals);
        ps->off = xrealloc(ps->off, (size_t)ps->cap * sizeof *ps->off);
    }
    ps->names[ps->n] = name;
    ps->vals[ps->n] = t;
    ps->off[ps->n] = -1;
    return ps->n++;
}

static void params_free(Params *ps)
{
    xfree(ps->names);
    xfree(ps->vals);
    xfree(ps->off);
}

/* ---- one function ---- */

/* Offsets of the plan's temporaries in one workspace for N = n (the
 * JIT's layout for that batch); off[slot], -1 for other slots. */
static int64_t layout(const Plan *p, int64_t n, int64_t *off, Diags *d)
{
    BeInterval *pl = xcalloc((size_t)p->nslots + 1, sizeof *pl);
    int *which = xcalloc((size_t)p->nslots + 1, sizeof *which);
    int np = 0;
    int64_t total = -1;
    for (int i = 0; i < p->nslots; i++) {
        const Slot *s = &p->slots[i];
        off[i] = -1;
        if (s->kind != JIT_BUF_TEMP)
            continue;
        int64_t e = plan_slot_elems(s->elems, s->tile_rows, n), bytes;
        if (e < 0 || mul_overflow_i64(e, ir_dtype_size(s->dt), &bytes) || bytes > INT64_MAX / 4) {
            diag_error(d, (SrcLoc){0}, "batch size %lld: buffer sizes overflow", (long long)n);
            goto out;
        }
        pl[np] = (BeInterval){s->first, s->last, bytes, 0};
        which[np++] = i;
    }
    total = be_plan_memory(pl, np, AOT_WS_ALIGN);
    for (int i = 0; i < np; i++)
        off[which[i]] = pl[i].off;
out:
    xfree(pl);
    xfree(which);
    return total;
}

/* The batch must reach every fixed slice of the batch axis. */
static bool check_batch(const Plan *p, const char *fn, int64_t n, Diags *d)
{
    bool ok = true;
    for (int i = 0; i < p->nnchecks; i++) {
        const NCheck *c = &p->nchecks[i];
        int64_t end = c->node->a.end[c->axis];
        if (end > n) {
            diag_error(d, jit_diag_loc(d, c->node->loc), "%s: this slice needs a batch of at least %lld, the batch is %lld",
                       fn, (long long)end, (long long)n);
            ok = false;
        }
    }
    return ok;
}

static bool is_lr(const Slot *s)
{
    return s->kind == JIT_BUF_INPUT && s->name && strcmp(s->name, "optimizer.lr") == 0;
}

/* The description of one function (runtime/aot.c parses it) and what the
 * header shows of it. */
static bool describe_fn(const Plan *p, const AotFnIn *in, const AotOpts *o, Params *ps, StrBuf *b,
                        AotFnInfo *fi, Arena *a, Diags *d)
{
    int64_t *off = xcalloc((size_t)p->nslots + 1, sizeof *off);
    int64_t ws = layout(p, o->batch, off, d);
    bool ok = ws >= 0;
    bool train = false;
    for (int i = 0; i < p->g->nouts; i++)
        train |= p->g->outs[i].kind == OUT_UPDATE;
    int64_t min_n = 0; /* fixed slices of the batch axis need N >= their end */
    for (int i = 0; i < p->nnchecks; i++) {
        const NCheck *c = &p->nchecks[i];
        if (c->node->a.end[c->axis] > min_n)
            min_n = c->node->a.end[c->axis];
    }
    sb_printf(b, "fn %s %d %lld %d %lld\n", in->fn, p->nslots, (long long)ws, train, (long long)min_n);
    fi->min_n = min_n;
    fi->fn = in->fn;
    fi->ws_bytes = ws;
    fi->args = arena_alloc(a, (size_t)(p->nslots + 1) * sizeof(AotArg));
    fi->outs = arena_alloc(a, (size_t)(p->g->nouts + 1) * sizeof(AotArg));
    for (int i = 0; ok && i < p->nslots; i++) {
        const Slot *s = &p->slots[i];
        if (s->kind == JIT_BUF_TEMP) {
            sb_printf(b, "buf temp %lld\n", (long long)off[i]);
        } else if (!s->used) {
            sb_printf(b, "buf none\n");
        } else if (s->kind == JIT_BUF_INPUT) {
            sb_puts(b, "buf input");
            put_shape(b, s->dt, &s->shape);
            sb_printf(b, " %s\n", s->name);
        } else {
            const Tensor *t = rt_map_get(o->params, s->name);
            if (!t) {
                diag_error(d, (SrcLoc){0}, "parameter '%s' has no value", s->name);
                ok = false;
                break;
            }
            sb_printf(b, "buf param %d\n", param_index(ps, s->name, t));
        }
    }
    for (int i = 0; ok && i < p->nslots; i++) {
        const Slot *s = &p->slots[i];
        if (s->kind != JIT_BUF_INPUT || !s->used)
            continue;
        if (is_lr(s)) {
            sb_printf(b, "lr %d\n", i);
            fi->lr = true;
            continue;
        }
        sb_printf(b, "arg %d\n", i);
        fi->args[fi->nargs++] = (AotArg){arena_strdup(a, s->name), s->dt, s->shape, OUT_VALUE};
    }
    static const char *const kinds[] = {"loss", "metric", "value"};
    for (int i = 0; ok && i < p->g->nouts; i++) {
        const Output *out = &p->g->outs[i];
        if (out->kind == OUT_UPDATE)
            continue;
        MC_ASSERT(out->kind <= OUT_VALUE);
        sb_printf(b, "out %d", p->out_slot[i]);
        put_shape(b, out->val->dt, &out->val->shape);
        sb_printf(b, " %s %s\n", kinds[out->kind], out->name);
        fi->outs[fi->nouts++] = (AotArg){arena_strdup(a, out->name), out->val->dt, out->val->shape, out->kind};
    }
    sb_puts(b, "end\n");
    xfree(off);
    return ok;
}

/* ---- the module's data ---- */

static LLVMValueRef const_global(LLVMModuleRef mod, const char *name, LLVMValueRef init, bool external,
                                 unsigned align)
{
    LLVMValueRef g = LLVMAddGlobal(mod, LLVMTypeOf(init), name);
    LLVMSetInitializer(g, init);
    LLVMSetGlobalConstant(g, 1);
    LLVMSetLinkage(g, external ? LLVMExternalLinkage : LLVMPrivateLinkage);
    if (align)
        LLVMSetAlignment(g, align);
    return g;
}

/* The parameter table of the description, and the embedded values. */
static char *weights_blob(Params *ps, bool embed, StrBuf *b, int64_t *len)
{
    int64_t total = 0;
    for (int i = 0; i < ps->n; i++) {
        if (embed) {
            ps->off[i] = total;
            total += (rt_tensor_bytes(ps->vals[i]) + AOT_WEIGHT_ALIGN - 1) / AOT_WEIGHT_ALIGN * AOT_WEIGHT_ALIGN;
        }
        const Tensor *t = ps->vals[i];
        Shape s = {.rank = t->rank};
        for (int k = 0; k < t->rank; k++)
            s.d[k] = t->dims[k];
        sb_puts(b, "param");
        put_shape(b, t->dt, &s);
        sb_printf(b, " %s %lld\n", ps->names[i], (long long)ps->off[i]);
    }
    *len = total;
    if (!embed)
        return NULL;
    char *blob = xcalloc((size_t)total + 1, 1);
    for (int i = 0; i < ps->n; i++)
        memcpy(blob + ps->off[i], ps->vals[i]->data, (size_t)rt_tensor_bytes(ps->vals[i]));
    return blob;
}

static void add_model(LLVMModuleRef mod, const AotOpts *o, const AotFnIn *fns, int nfns, const StrBuf *desc,
                      const char *blob, int64_t bloblen)
{
    LLVMContextRef cx = LLVMGetModuleContext(mod);
    LLVMTypeRef i32 = LLVMInt32TypeInContext(cx), i64 = LLVMInt64TypeInContext(cx);
    LLVMTypeRef ptr = LLVMPointerTypeInContext(cx, 0);
    StrBuf nm;
    sb_init(&nm);
    sb_printf(&nm, "%s__desc", o->name);
    LLVMValueRef dg = const_global(mod, nm.s, LLVMConstStringInContext(cx, desc->s, (unsigned)desc->len, 1), false, 1);
    LLVMValueRef wg = LLVMConstNull(ptr);
    if (blob) {
        sb_free(&nm);
        sb_printf(&nm, "%s__weights", o->name);
        wg = const_global(mod, nm.s, LLVMConstStringInContext(cx, blob, (unsigned)bloblen, 1), false,
                          AOT_WEIGHT_ALIGN);
    }
    LLVMValueRef *ents = xcalloc((size_t)nfns, sizeof *ents);
    for (int i = 0; i < nfns; i++) {
        sb_free(&nm);
        sb_printf(&nm, "%s__%s_entry", o->name, fns[i].fn);
        ents[i] = LLVMGetNamedFunction(mod, nm.s);
        MC_ASSERT(ents[i]);
    }
    sb_free(&nm);
    sb_printf(&nm, "%s__entries", o->name);
    LLVMValueRef eg = const_global(mod, nm.s, LLVMConstArray2(ptr, ents, (uint64_t)nfns), false, 8);
    LLVMValueRef fields[7] = {LLVMConstInt(i32, RT_AOT_ABI, 0), LLVMConstInt(i32, (unsigned)nfns, 0), dg,
                              LLVMConstInt(i64, desc->len, 0), wg, LLVMConstInt(i64, (unsigned long long)bloblen, 0),
                              eg};
    sb_free(&nm);
    sb_printf(&nm, "%s_model", o->name);
    const_global(mod, nm.s, LLVMConstStructInContext(cx, fields, 7, 0), true, 8);
    sb_free(&nm);
    xfree(ents);
}

/* ---- the object ---- */

static bool add_fn(LLVMModuleRef mod, LLVMTargetMachineRef tm, const AotFnIn *in, const AotOpts *o, Params *ps,
                   StrBuf *desc, AotFnInfo *fi, AotResult *r, Diags *d)
{
    Plan p;
    if (!plan_build(&p, in->g, d)) {
        plan_free(&p);
        return false;
    }
    bool ok = check_batch(&p, in->fn, o->batch, d) && describe_fn(&p, in, o, ps, desc, fi, r->arena, d);
    if (ok) {
        JitOpts jo;
        be_jit_opts_default(&jo);
        char prefix[160], err[512];
        snprintf(prefix, sizeof prefix, "%s__%s_", o->name, in->fn);
        LLVMModuleRef parts[JIT_MAX_PARTS];
        int n = jit_build_parts(&p, &jo, LLVMGetModuleContext(mod), tm, prefix, parts, err, sizeof err);
        if (n < 0) {
            diag_error(d, (SrcLoc){0}, "%s", err);
            ok = false;
        }
        for (int i = 0; i < n; i++)
            if (LLVMLinkModules2(mod, parts[i]) && ok) {
                diag_error(d, (SrcLoc){0}, "cannot link the parts of %s", in->fn);
                ok = false;
            }
        fi->parts = n;
        for (int i = 0; i < p.nsteps; i++)
            fi->kernels += p.steps[i].kind == STEP_KERNEL;
    }
    plan_free(&p);
    return ok;
}

static bool emit(LLVMModuleRef mod, LLVMTargetMachineRef tm, AotResult *r, Diags *d)
{
    char *msg = NULL;
    if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &msg))
        ICE("the linked module does not verify: %s", msg);
    LLVMDisposeMessage(msg);
    msg = NULL;
    LLVMMemoryBufferRef buf;
    if (LLVMTargetMachineEmitToMemoryBuffer(tm, mod, LLVMObjectFile, &msg, &buf)) {
        diag_error(d, (SrcLoc){0}, "LLVM code generation failed: %s", msg ? msg : "?");
        LLVMDisposeMessage(msg);
        return false;
    }
    r->obj_len = LLVMGetBufferSize(buf);
    r->obj = xmalloc(r->obj_len + 1);
    memcpy(r->obj, LLVMGetBufferStart(buf), r->obj_len);
    LLVMDisposeMemoryBuffer(buf);
    return true;
}

bool be_aot_compile(const AotFnIn *fns, int nfns, const AotOpts *o, AotResult *r, Diags *d)
{
    memset(r, 0, sizeof *r);
    r->arena = arena_new();
    r->nfns = nfns;
    r->fns = arena_alloc(r->arena, (size_t)(nfns + 1) * sizeof(AotFnInfo));
    jit_llvm_init();
    if (o->triple) {
        LLVMInitializeAllTargetInfos();
        LLVMInitializeAllTargets();
        LLVMInitializeAllTargetMCs();
        LLVMInitializeAllAsmPrinters();
    }
    LLVMTargetMachineRef tm = target_machine(o, r, d);
    if (!tm)
        return false;
    LLVMContextRef cx = LLVMContextCreate();
    LLVMModuleRef mod = LLVMModuleCreateWithNameInContext(o->name, cx);
    jit_set_target(mod, tm);
    Params ps = {0};
    StrBuf fdesc, desc;
    sb_init(&fdesc);
    sb_init(&desc);
    bool ok = true;
    for (int i = 0; ok && i < nfns; i++)
        ok = add_fn(mod, tm, &fns[i], o, &ps, &fdesc, &r->fns[i], r, d);
    if (ok) {
        sb_printf(&desc, "modelc-aot %d\nmodel %s\nbatch %lld %s\nseed %llu\nstep %lld\nparams %d\n", RT_AOT_ABI,
                  o->model, (long long)o->batch, o->fixed ? "fixed" : "max", (unsigned long long)o->seed,
                  (long long)o->step, ps.n);
        int64_t len;
        char *blob = weights_blob(&ps, o->embed, &desc, &len);
        sb_puts(&desc, fdesc.s ? fdesc.s : "");
        add_model(mod, o, fns, nfns, &desc, blob, len);
        xfree(blob);
        r->nparams = ps.n;
        for (int i = 0; i < ps.n; i++)
            r->param_bytes += rt_tensor_bytes(ps.vals[i]);
        ok = emit(mod, tm, r, d);
    }
    sb_free(&fdesc);
    sb_free(&desc);
    params_free(&ps);
    LLVMDisposeModule(mod);
    LLVMContextDispose(cx);
    LLVMDisposeTargetMachine(tm);
    return ok;
}

void be_aot_result_free(AotResult *r)
{
    arena_free(r->arena);
    xfree(r->obj);
    memset(r, 0, sizeof *r);
}
