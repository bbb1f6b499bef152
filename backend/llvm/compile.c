/* From a plan to native code: the module in parts (consecutive ranges of
 * steps of about equal compile cost), each built in its own LLVM context,
 * optimised by a short pipeline made for kernel loop nests and
 * code-generated to an object file on its own thread, or loaded from the
 * object cache; then one ORC LLJIT links the objects (the runtime's
 * functions are defined from rtsyms.c's table, libm's resolve from the
 * process). The last part's `entry` calls `entry.0`,
 * `entry.1`, ... (the earlier parts) before its own kernels. */
#include "compile.h"

#include <llvm-c/BitWriter.h>
#include <llvm-c/Error.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Support.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_PARTS JIT_MAX_PARTS
#define MIN_KERNELS_TO_SPLIT 12
#define PARTS_PER_THREAD 2

/* Kernels are small loop nests: scalar cleanup, loop-invariant code
 * motion and induction variables, then the loop vectorizer. This gives the
 * same vector code as default<O2> on modelc's kernels (tests/e2e/jit_llvm.sh
 * checks it) for about a third of the optimisation time. */
#define KERNEL_PIPELINE                                                                                \
    "always-inline,function(sroa,early-cse,instcombine<no-verify-fixpoint>,simplifycfg,loop-simplify,lcssa,"               \
    "loop-mssa(licm),loop(indvars),loop-vectorize,instcombine<no-verify-fixpoint>,simplifycfg)"

const char *jit_pipeline(int level)
{
    if (level <= 0)
        return NULL;
    return level >= 3 ? "default<O3>" : KERNEL_PIPELINE;
}

/* Codegen without loop strength reduction: on modelc's kernels it was a
 * quarter of the code generation time (CNN+BN training step, one part:
 * 220 -> 160 ms in llc) and the steps ran no slower (CNN+BN 58.0 vs
 * 55.2 ms, MLP 1.49 vs 1.43 ms, medians of 5). LLVM has no per-module
 * switch for it: the option is process state, set once. */
static void llvm_options(void)
{
    const char *args[] = {"modelc", "-disable-lsr"};
    LLVMParseCommandLineOptions(2, args, NULL);
}

void jit_llvm_init(void)
{
    /* Idempotent; the target registry is LLVM's own process state. */
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
    pthread_once(&once, llvm_options);
}

void jit_inline_kernels(LLVMModuleRef mod)
{
    LLVMContextRef cx = LLVMGetModuleContext(mod);
    unsigned kind = LLVMGetEnumAttributeKindForName("alwaysinline", 12);
    for (LLVMValueRef f = LLVMGetFirstFunction(mod); f; f = LLVMGetNextFunction(f))
        if (!LLVMIsDeclaration(f) && LLVMGetLinkage(f) == LLVMInternalLinkage)
            LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(cx, kind, 0));
}

/* The host target, shared by the parts (strings owned here). */
typedef struct Host {
    char *triple, *cpu, *features;
    LLVMTargetRef target;
    LLVMCodeGenOptLevel level;
} Host;

static bool host_init(Host *h, LLVMCodeGenOptLevel level, Diags *d)
{
    h->triple = LLVMGetDefaultTargetTriple();
    h->cpu = LLVMGetHostCPUName();
    h->features = LLVMGetHostCPUFeatures();
    h->level = level;
    char *err = NULL;
    if (LLVMGetTargetFromTriple(h->triple, &h->target, &err)) {
        diag_error(d, (SrcLoc){0}, "no LLVM target for %s: %s", h->triple, err);
        LLVMDisposeMessage(err);
        return false;
    }
    return true;
}

static void host_free(Host *h)
{
    LLVMDisposeMessage(h->triple);
    LLVMDisposeMessage(h->cpu);
    LLVMDisposeMessage(h->features);
}

static void host_free_on_jump(void *h)
{
    host_free(h);
}

/* PIC and the small code model, as LLJIT's JITLink layer expects. */
static LLVMTargetMachineRef host_tm(const Host *h)
{
    return LLVMCreateTargetMachine(h->target, h->triple, h->cpu, h->features, h->level, LLVMRelocPIC,
                                   LLVMCodeModelSmall);
}

/* ---- one part ---- */

typedef struct Part {
    const Plan *p;
    const JitOpts *o;
    const Host *host;
    int idx, nparts, lo, hi;
    LLVMMemoryBufferRef obj; /* the result */
    bool cached;
    double ms[3]; /* build IR, optimise, codegen */
    char err[512];
    /* while the part is built */
    LLVMContextRef cx;
    LLVMTargetMachineRef tm;
    LLVMModuleRef mod;
    /* running out of memory (compile_part) */
    MemGuard *owner; /* the caller's guard, or NULL */
    bool oom;
    size_t oom_bytes;
} Part;

void jit_set_target(LLVMModuleRef mod, LLVMTargetMachineRef tm)
{
    char *triple = LLVMGetTargetMachineTriple(tm);
    LLVMSetTarget(mod, triple);
    LLVMDisposeMessage(triple);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
    char *dl = LLVMCopyStringRepOfTargetData(td);
    LLVMSetDataLayout(mod, dl);
    LLVMDisposeMessage(dl);
    LLVMDisposeTargetData(td);
}

/* entry(ctx, N, bufs) { entry.0(ctx, N, bufs); ...; <own kernels> } */
static void chain_entries(LLVMModuleRef mod, int nprev)
{
    LLVMValueRef entry = LLVMGetNamedFunction(mod, "entry");
    LLVMTypeRef fty = LLVMGlobalGetValueType(entry);
    LLVMContextRef cx = LLVMGetModuleContext(mod);
    LLVMBuilderRef b = LLVMCreateBuilderInContext(cx);
    LLVMPositionBuilderBefore(b, LLVMGetFirstInstruction(LLVMGetEntryBasicBlock(entry)));
    LLVMValueRef args[3] = {LLVMGetParam(entry, 0), LLVMGetParam(entry, 1), LLVMGetParam(entry, 2)};
    for (int i = 0; i < nprev; i++) {
        char name[32];
        snprintf(name, sizeof name, "entry.%d", i);
        LLVMValueRef f = LLVMAddFunction(mod, name, fty);
        LLVMBuildCall2(b, fty, f, args, 3, "");
    }
    LLVMDisposeBuilder(b);
}

static LLVMModuleRef build_part(Part *t, LLVMContextRef cx, LLVMTargetMachineRef tm)
{
    char name[32];
    bool last = t->idx == t->nparts - 1;
    snprintf(name, sizeof name, last ? "entry" : "entry.%d", t->idx);
    LLVMModuleRef mod = cg_build_part(cx, t->p, t->lo, t->hi, name, t->o->profile, NULL);
    if (last && t->idx > 0)
        chain_entries(mod, t->idx);
    jit_set_target(mod, tm);
    return mod;
}

/* Everything the object depends on: the IR (as bitcode), the target, the
 * pipeline and codegen level, the LLVM and modelc versions. */
static void part_key(Part *t, LLVMModuleRef mod, char key[JIT_KEY_LEN + 1])
{
    KeyHash h;
    key_init(&h);
    LLVMMemoryBufferRef bc = LLVMWriteBitcodeToMemoryBuffer(mod);
    key_add(&h, LLVMGetBufferStart(bc), LLVMGetBufferSize(bc));
    LLVMDisposeMemoryBuffer(bc);
    unsigned v[3];
    LLVMGetVersion(&v[0], &v[1], &v[2]);
    char misc[128];
    snprintf(misc, sizeof misc, "llvm %u.%u.%u modelc %s cg %d wide_vectors no-lsr", v[0], v[1], v[2], MODELC_VERSION,
             (int)t->host->level);
    key_add_str(&h, misc);
    key_add_str(&h, t->host->triple);
    key_add_str(&h, t->host->cpu);
    key_add_str(&h, t->host->features);
    const char *pipe = jit_pipeline(t->o->opt_level);
    key_add_str(&h, pipe ? pipe : "none");
    key_hex(&h, key);
}

/* On a CPU with AVX-512, loops vectorize 16 floats wide: LLVM's default
 * for these CPUs is 256-bit vectors, which halves the throughput of the
 * compute-bound elementwise kernels (tanh, exp, sigmoid: S0's tanh at
 * batch 1, 1.6 -> 1.3 ms). */
static void wide_vectors(LLVMModuleRef mod, LLVMTargetMachineRef tm)
{
    char *f = LLVMGetTargetMachineFeatureString(tm);
    bool avx512 = f && strstr(f, "+avx512f");
    LLVMDisposeMessage(f);
    if (!avx512)
        return;
    LLVMContextRef cx = LLVMGetModuleContext(mod);
    LLVMAttributeRef a = LLVMCreateStringAttribute(cx, "prefer-vector-width", 19, "512", 3);
    for (LLVMValueRef fn = LLVMGetFirstFunction(mod); fn; fn = LLVMGetNextFunction(fn))
        if (!LLVMIsDeclaration(fn))
            LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, a);
}

bool jit_optimise(LLVMModuleRef mod, LLVMTargetMachineRef tm, int level, char *err, size_t errn)
{
    const char *pipe = jit_pipeline(level);
    if (!pipe)
        return true;
    jit_inline_kernels(mod);
    wide_vectors(mod, tm);
    LLVMPassBuilderOptionsRef pbo = LLVMCreatePassBuilderOptions();
    LLVMErrorRef e = LLVMRunPasses(mod, pipe, tm, pbo);
    LLVMDisposePassBuilderOptions(pbo);
    if (!e)
        return true;
    char *msg = LLVMGetErrorMessage(e);
    snprintf(err, errn, "LLVM optimisation failed: %s", msg);
    LLVMDisposeErrorMessage(msg);
    return false;
}

static bool emit(Part *t, LLVMModuleRef mod, LLVMTargetMachineRef tm)
{
    char *msg = NULL;
    if (!LLVMTargetMachineEmitToMemoryBuffer(tm, mod, LLVMObjectFile, &msg, &t->obj))
        return true;
    snprintf(t->err, sizeof t->err, "LLVM code generation failed: %s", msg ? msg : "?");
    LLVMDisposeMessage(msg);
    t->obj = NULL;
    return false;
}

/* LLVM's objects of a part, released when the allocator jumps out of it. */
static void part_drop(void *arg)
{
    Part *t = arg;
    if (t->mod)
        LLVMDisposeModule(t->mod);
    if (t->tm)
        LLVMDisposeTargetMachine(t->tm);
    if (t->cx)
        LLVMContextDispose(t->cx);
    t->mod = NULL;
    t->tm = NULL;
    t->cx = NULL;
}

static void part_body(void *arg)
{
    Part *t = arg;
    MemCleanup on_jump;
    mem_cleanup_push(&on_jump, part_drop, t);
    double t0 = mc_now_ms();
    t->cx = LLVMContextCreate();
    t->tm = host_tm(t->host);
    t->mod = build_part(t, t->cx, t->tm);
    char key[JIT_KEY_LEN + 1] = "";
    if (t->o->cache_dir) {
        part_key(t, t->mod, key);
        t->obj = objcache_load(t->o->cache_dir, key);
        t->cached = t->obj != NULL;
    }
    double t1 = mc_now_ms();
    t->ms[0] = t1 - t0;
    if (!t->obj && jit_optimise(t->mod, t->tm, t->o->opt_level, t->err, sizeof t->err)) {
        double t2 = mc_now_ms();
        t->ms[1] = t2 - t1;
        if (emit(t, t->mod, t->tm) && t->o->cache_dir)
            objcache_store(t->o->cache_dir, key, LLVMGetBufferStart(t->obj), LLVMGetBufferSize(t->obj), t->idx);
        t->ms[2] = mc_now_ms() - t2;
    }
    mem_cleanup_pop(&on_jump);
    part_drop(t);
}

/* Parts run on the compile's threads, where a jump back to the caller's
 * memory guard would leave the other parts behind. Under a caller's
 * guard (t->owner) each part runs under a guard of its own
 * (mem_run_caught): a part that runs out of memory releases its blocks
 * and LLVM objects, and jit_compile_plan raises the failure on the
 * caller's guard once every part is done. */
static void *compile_part(void *arg)
{
    Part *t = arg;
    MemGuard *guard = mem_guard_suspend();
    if (!t->owner)
        part_body(t);
    else if (!mem_run_caught(part_body, t, t->owner, &t->oom_bytes))
        t->oom = true;
    mem_guard_resume(guard);
    return NULL;
}

/* The parts not yet taken: each compile thread takes the next one until
 * none is left. */
typedef struct PartQueue {
    Part *parts;
    int n;
    atomic_int next;
} PartQueue;

static void *compile_parts(void *arg)
{
    PartQueue *q = arg;
    for (int i; (i = atomic_fetch_add(&q->next, 1)) < q->n;)
        compile_part(&q->parts[i]);
    return NULL;
}

/* ---- splitting the steps ---- */

static bool has_n(const Shape *s)
{
    for (int k = 0; k < s->rank; k++)
        if (ir_dim_is_batch(s->d[k]))
            return true;
    return false;
}

/* Estimated optimise + codegen time of a step's kernel in units of about
 * 0.5 ms (measured per kernel on fashion_mlp): runtime calls are nearly
 * free, loops whose trip count depends on N cost more (runtime checks and
 * remainder loops), exp/tanh polynomials and softmax rows most. */
static int node_cost(const Node *v);

/* A loop: its body's kernels, each compiled once. */
static int body_cost(const Graph *body)
{
    int c = 8;
    for (int i = 0; i < body->nnodes; i++) {
        const Node *x = body->nodes[i];
        if (ir_ops[x->op].cls != OPC_LEAF && x->op != OP_RESHAPE && x->op != OP_RESULT)
            c += node_cost(x);
    }
    return c;
}

/* A reduction, or a fused group ending in one. */
static bool reduces(const Node *v)
{
    if (v->op == OP_FUSED)
        for (int i = 0; i < v->sub->nnodes; i++)
            if (ir_ops[v->sub->nodes[i]->op].cls == OPC_REDUCE)
                return true;
    return ir_ops[v->op].cls == OPC_REDUCE;
}

static int step_cost(const Step *st)
{
    return st->kind == STEP_COPY ? 0 : node_cost(st->node);
}

static int node_cost(const Node *v)
{
    switch (v->op) {
    case OP_LOOP:
        return body_cost(v->sub);
    case OP_MATMUL:
    case OP_CONV2D:
    case OP_CONV2D_GRAD_INPUT:
    case OP_CONV2D_GRAD_KERNEL:
    case OP_MAX_POOL2D:
    case OP_MAX_POOL2D_GRAD:
    case OP_AVG_POOL2D:
    case OP_AVG_POOL2D_GRAD:
        return 1;
    case OP_SOFTMAX:
    case OP_LOG_SOFTMAX:
    case OP_LOG_SOFTMAX_DOT:
    case OP_LOG_SOFTMAX_GRAD:
        return 26;
    case OP_FUSED:
        if (ir_fused_softmax(v))
            return 30; /* the two row kernels in one */
        break;
    default:
        break;
    }
    if (v->op == OP_DROPOUT_MASK)
        return 1;
    bool batch = has_n(&v->shape) || (v->nin && has_n(&v->in[0]->shape));
    int c = 4 + (batch ? 6 : 0);
    if (batch && reduces(v))
        c += 12; /* the partial results of the batch's parts and their sum */
    if (ir_op_has(v->op, OPF_EXPLIKE))
        c += 4;
    for (int i = 0; v->op == OP_FUSED && i < v->sub->nnodes; i++)
        c += ir_op_has(v->sub->nodes[i]->op, OPF_EXPLIKE) ? 4 : 0;
    return c;
}

/* A kernel, and a loop's kernel with those of its body. */
static int kernels_of(const Node *v)
{
    int k = 1;
    for (int i = 0; v->op == OP_LOOP && i < v->sub->nnodes; i++) {
        const Node *x = v->sub->nodes[i];
        if (ir_ops[x->op].cls != OPC_LEAF && x->op != OP_RESHAPE && x->op != OP_RESULT)
            k += kernels_of(x);
    }
    return k;
}

static int count_kernels(const Plan *p)
{
    int k = 0;
    for (int i = 0; i < p->nsteps; i++)
        if (p->steps[i].kind == STEP_KERNEL)
            k += kernels_of(p->steps[i].node);
    return k;
}

/* Compile threads: o->jobs, or two on a multi-core host for a module of
 * MIN_KERNELS_TO_SPLIT kernels or more. */
static int choose_threads(const Plan *p, const JitOpts *o)
{
    int n = o->jobs;
    if (n <= 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        n = cpus >= 2 && count_kernels(p) >= MIN_KERNELS_TO_SPLIT ? 2 : 1;
    }
    return n < MAX_PARTS ? n : MAX_PARTS;
}

/* PARTS_PER_THREAD parts per compile thread, which the threads take in
 * turn: the cost estimates are rough (a part's compile time is off by up
 * to a third), and a thread done early takes the next part instead of
 * waiting for the slowest of one part per thread. Each part costs about
 * 2 ms of its own (context, target machine, object). */
static int choose_parts(const Plan *p, int threads)
{
    int n = threads > 1 ? threads * PARTS_PER_THREAD : 1;
    if (n > MAX_PARTS)
        n = MAX_PARTS;
    if (n > p->nsteps)
        n = p->nsteps > 0 ? p->nsteps : 1;
    return n;
}

/* May a part start at step j? Not inside a batch tile (the tile's loop
 * runs its steps on its own temporaries, tile by tile) nor at an
 * epilogue (it runs image by image inside its producer's call). */
static bool can_cut(const Plan *p, int j)
{
    const Step *a = &p->steps[j - 1], *b = &p->steps[j];
    return !(b->tile && b->tile == a->tile) && !b->epilogue;
}

/* Cut the steps into n consecutive ranges of about equal cost. */
static void split(const Plan *p, Part *parts, int n)
{
    long total = 0;
    for (int i = 0; i < p->nsteps; i++)
        total += step_cost(&p->steps[i]);
    long acc = 0;
    int k = 0;
    parts[0].lo = 0;
    for (int i = 0; i < p->nsteps && k < n - 1; i++) {
        acc += step_cost(&p->steps[i]);
        if (acc * n >= total * (k + 1) && p->nsteps - (i + 1) >= n - 1 - k && i + 1 < p->nsteps &&
            can_cut(p, i + 1)) {
            parts[k].hi = i + 1;
            parts[++k].lo = i + 1;
        }
    }
    parts[k].hi = p->nsteps; /* the last part cut runs to the end */
    for (int j = k + 1; j < n; j++) /* fewer cuts than parts (a step costing more than a part's
                                     * share, such as a loop): empty tail parts */
        parts[j].lo = parts[j].hi = p->nsteps;
}

/* ---- parts for an object file (aot.c) ---- */

/* Functions named "entry" or "entry.<i>" (defined or called) become
 * prefix + that name. */
static void rename_entries(LLVMModuleRef mod, const char *prefix)
{
    for (LLVMValueRef f = LLVMGetFirstFunction(mod); f; f = LLVMGetNextFunction(f)) {
        size_t len;
        const char *name = LLVMGetValueName2(f, &len);
        if (strcmp(name, "entry") != 0 && strncmp(name, "entry.", 6) != 0)
            continue;
        char buf[256];
        int k = snprintf(buf, sizeof buf, "%s%s", prefix, name);
        LLVMSetValueName2(f, buf, (size_t)k);
    }
}

int jit_build_parts(const Plan *p, const JitOpts *o, LLVMContextRef cx, LLVMTargetMachineRef tm,
                    const char *prefix, LLVMModuleRef *mods, char *err, size_t errn)
{
    int n = choose_parts(p, choose_threads(p, o));
    Part *parts = xcalloc((size_t)n, sizeof *parts);
    split(p, parts, n);
    int built = 0;
    err[0] = 0;
    for (int i = 0; i < n; i++) {
        Part *q = &parts[i];
        q->p = p;
        q->o = o;
        q->idx = i;
        q->nparts = n;
        mods[i] = build_part(q, cx, tm);
        built++;
        if (!jit_optimise(mods[i], tm, o->opt_level, err, errn))
            break;
        rename_entries(mods[i], prefix);
    }
    xfree(parts);
    if (built == n && !err[0])
        return n;
    for (int i = 0; i < built; i++)
        LLVMDisposeModule(mods[i]);
    return -1;
}

/* ---- linking ---- */

static bool consume(LLVMErrorRef e, const char *what, Diags *d)
{
    if (!e)
        return true;
    char *msg = LLVMGetErrorMessage(e);
    diag_error(d, (SrcLoc){0}, "LLVM %s failed: %s", what, msg);
    LLVMDisposeErrorMessage(msg);
    return false;
}

/* The runtime's functions as absolute symbols of the JITDylib. */
static bool define_runtime(LLVMOrcLLJITRef jit, LLVMOrcJITDylibRef jd, Diags *d)
{
    int n;
    const JitRtSym *rs = jit_rt_syms(&n);
    LLVMOrcCSymbolMapPair *pairs = xcalloc((size_t)n, sizeof *pairs);
    for (int i = 0; i < n; i++) {
        pairs[i].Name = LLVMOrcLLJITMangleAndIntern(jit, rs[i].name);
        pairs[i].Sym.Address = rs[i].addr;
        pairs[i].Sym.Flags.GenericFlags = LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable;
        pairs[i].Sym.Flags.TargetFlags = 0;
    }
    LLVMOrcMaterializationUnitRef mu = LLVMOrcAbsoluteSymbols(pairs, (size_t)n);
    xfree(pairs);
    return consume(LLVMOrcJITDylibDefine(jd, mu), "defining the runtime's symbols", d);
}

static bool link_parts(const Host *h, Part *parts, int n, LLVMOrcLLJITRef *jit, JitEntryFn *entry, Diags *d)
{
    LLVMOrcLLJITBuilderRef jb = LLVMOrcCreateLLJITBuilder();
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(jb, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(host_tm(h)));
    if (!consume(LLVMOrcCreateLLJIT(jit, jb), "JIT creation", d))
        return false;
    LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(*jit);
    bool ok = define_runtime(*jit, jd, d);
    for (int i = 0; i < n; i++) {
        LLVMMemoryBufferRef obj = parts[i].obj;
        parts[i].obj = NULL; /* the JIT takes ownership */
        if (ok)
            ok = consume(LLVMOrcLLJITAddObjectFile(*jit, jd, obj), "adding an object to the JIT", d);
        else
            LLVMDisposeMemoryBuffer(obj);
    }
    LLVMOrcExecutorAddress addr = 0;
    if (!ok || !consume(LLVMOrcLLJITLookup(*jit, &addr, "entry"), "JIT linking", d))
        return false;
    *entry = (JitEntryFn)(uintptr_t)addr;
    return true;
}

/* The phase times summed over the parts and shared by the threads that
 * compiled them, and the rest of the wall time of the parallel section
 * (a thread without a part while another compiles its last) as waiting:
 * the entries add up to the wall time. */
static void report_times(const Part *parts, int n, int threads, double wall, Timer *t)
{
    double ms[3] = {0, 0, 0};
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 3; k++)
            ms[k] += parts[i].ms[k] / threads;
    timer_add(t, "llvm: build IR", ms[0]);
    timer_add(t, "llvm: optimise IR", ms[1]);
    timer_add(t, "llvm: codegen", ms[2]);
    double busy = ms[0] + ms[1] + ms[2];
    if (threads > 1)
        timer_add(t, "llvm: waiting for parts", wall > busy ? wall - busy : 0);
}

bool jit_compile_plan(const Plan *p, const JitOpts *o, LLVMOrcLLJITRef *jit, JitEntryFn *entry,
                      JitStats *st, Timer *t, Diags *d)
{
    jit_llvm_init();
    bool fast = o->fast_isel || o->opt_level <= 0;
    Host h = {0};
    MemCleanup on_jump;
    mem_cleanup_push(&on_jump, host_free_on_jump, &h);
    if (!host_init(&h, fast ? LLVMCodeGenLevelNone : LLVMCodeGenLevelDefault, d)) {
        mem_cleanup_pop(&on_jump);
        host_free(&h);
        return false;
    }
    int nth = choose_threads(p, o), n = choose_parts(p, nth);
    if (nth > n)
        nth = n;
    Part *parts = xcalloc((size_t)n, sizeof *parts);
    split(p, parts, n);
    pthread_t *th = xcalloc((size_t)nth, sizeof *th);
    bool *started = xcalloc((size_t)nth, sizeof *started);
    double t0 = mc_now_ms();
    MemGuard *owner = mem_guard_current();
    for (int i = 0; i < n; i++) {
        Part *q = &parts[i];
        q->owner = owner;
        q->p = p;
        q->o = o;
        q->host = &h;
        q->idx = i;
        q->nparts = n;
    }
    PartQueue queue = {.parts = parts, .n = n};
    for (int i = 1; i < nth; i++)
        started[i] = pthread_create(&th[i], NULL, compile_parts, &queue) == 0;
    compile_parts(&queue); /* this thread takes parts too (all of them without threads) */
    for (int i = 1; i < nth; i++)
        if (started[i])
            pthread_join(th[i], NULL);
    double t1 = mc_now_ms();
    for (int i = 0; i < n; i++)
        if (parts[i].oom) {
            size_t bytes = parts[i].oom_bytes;
            for (int k = 0; k < n; k++)
                if (parts[k].obj)
                    LLVMDisposeMemoryBuffer(parts[k].obj);
            mem_raise(bytes); /* the caller's guard: host_free_on_jump releases h */
        }
    bool ok = true;
    for (int i = 0; i < n; i++) {
        st->cached_parts += parts[i].cached;
        if (!parts[i].obj) {
            diag_error(d, (SrcLoc){0}, "%s", parts[i].err[0] ? parts[i].err : "LLVM compile failed");
            ok = false;
        }
    }
    st->kernels = count_kernels(p);
    st->parts = n;
    st->threads = nth;
    report_times(parts, n, nth, t1 - t0, t);
    if (ok)
        ok = link_parts(&h, parts, n, jit, entry, d);
    for (int i = 0; i < n; i++)
        if (parts[i].obj)
            LLVMDisposeMemoryBuffer(parts[i].obj);
    timer_add(t, "llvm: JIT link", mc_now_ms() - t1);
    mem_cleanup_pop(&on_jump);
    host_free(&h);
    xfree(parts);
    xfree(th);
    xfree(started);
    return ok;
}
