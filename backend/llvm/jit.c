/* Compiling a graph with LLVM: the host target machine, the new pass
 * manager at O2, ORC LLJIT (runtime symbols resolved from the process),
 * the module description kept after the graph is gone, and workspaces
 * (buffer tables with temporaries laid out per batch size). */
#include "cg.h"

#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <stdlib.h>
#include <string.h>

typedef struct JitSlot {
    JitBufInfo info;
    Mono elems;
    int first, last;
} JitSlot;

/* A node that fails for some batch sizes (see be_jit_check_n). */
typedef struct JitNReq {
    const char *op;
    DType dt;
    Shape shape;  /* needs_n: the node's; slice: the sliced tensor's */
    int axis;     /* slices: the batch axis; -1 for needs_n */
    int64_t begin, end;
    SrcLoc loc;
} JitNReq;

struct JitModule {
    JitOpts opts;
    Timer timer;
    Arena *arena;
    LLVMOrcLLJITRef jit;
    JitEntryFn entry;
    int nslots;
    JitSlot *slots;
    int nouts;
    Output *outs;
    DType *out_dt;
    Shape *out_shape;
    int *out_slot;
    bool needs_n;
    JitNReq nreq0; /* the first node needing N */
    int nreqs;
    JitNReq *nreqs_v; /* fixed slices of the batch axis */
    int nkinfo;
    JitKernelInfo *kinfo; /* per step of the entry (profile.c) */
    RtProf *prof;         /* opts.profile only */
    RtPool *pool;         /* opts.threads resolved > 1 only */
};

void be_jit_opts_default(JitOpts *o)
{
    memset(o, 0, sizeof *o);
    o->opt_level = 2;
}

/* ---- LLVM setup ---- */

static void llvm_init(void)
{
    /* Idempotent; the target registry is LLVM's own process state. */
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
}

static bool consume(LLVMErrorRef e, const char *what, Diags *d)
{
    if (!e)
        return true;
    char *msg = LLVMGetErrorMessage(e);
    SrcLoc none = {NULL, 0, 0};
    diag_error(d, none, "LLVM %s failed: %s", what, msg);
    LLVMDisposeErrorMessage(msg);
    return false;
}

static LLVMTargetMachineRef host_tm(LLVMCodeGenOptLevel level, Diags *d)
{
    char *triple = LLVMGetDefaultTargetTriple();
    char *cpu = LLVMGetHostCPUName();
    char *features = LLVMGetHostCPUFeatures();
    LLVMTargetRef target;
    char *err = NULL;
    LLVMTargetMachineRef tm = NULL;
    if (LLVMGetTargetFromTriple(triple, &target, &err)) {
        SrcLoc none = {NULL, 0, 0};
        diag_error(d, none, "no LLVM target for %s: %s", triple, err);
        LLVMDisposeMessage(err);
    } else {
        tm = LLVMCreateTargetMachine(target, triple, cpu, features, level, LLVMRelocDefault,
                                     LLVMCodeModelJITDefault);
    }
    LLVMDisposeMessage(triple);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(features);
    return tm;
}

static void set_target(LLVMModuleRef mod, LLVMTargetMachineRef tm)
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

static bool optimise(LLVMModuleRef mod, LLVMTargetMachineRef tm, int level, Diags *d)
{
    if (level <= 0)
        return true;
    LLVMPassBuilderOptionsRef pbo = LLVMCreatePassBuilderOptions();
    char pipeline[32];
    snprintf(pipeline, sizeof pipeline, "default<O%d>", level > 3 ? 3 : level);
    bool ok = consume(LLVMRunPasses(mod, pipeline, tm, pbo), "optimisation", d);
    LLVMDisposePassBuilderOptions(pbo);
    return ok;
}

/* Add the time since *t0 to phase `name` (a static string) of t. */
static void time_phase(Timer *t, const char *name, double *t0)
{
    double t1 = mc_now_ms();
    timer_add(t, name, t1 - *t0);
    *t0 = t1;
}

/* Build and (optionally) optimise the module for g in context cx. */
static LLVMModuleRef build(Graph *g, LLVMContextRef cx, const JitOpts *o, bool opt, Plan *p,
                           Timer *t, Diags *d)
{
    double t0 = mc_now_ms();
    if (!plan_build(p, g, d))
        return NULL;
    llvm_init();
    LLVMModuleRef mod = cg_build_module(cx, p, o->profile, d);
    LLVMTargetMachineRef tm = host_tm(LLVMCodeGenLevelDefault, d);
    if (!tm) {
        LLVMDisposeModule(mod);
        return NULL;
    }
    set_target(mod, tm);
    time_phase(t, "llvm: build IR", &t0);
    bool ok = !opt || optimise(mod, tm, o->opt_level, d);
    if (opt)
        time_phase(t, "llvm: optimise IR", &t0);
    LLVMDisposeTargetMachine(tm);
    if (!ok) {
        LLVMDisposeModule(mod);
        return NULL;
    }
    return mod;
}

char *be_jit_llvm_ir(Graph *g, const JitOpts *o, bool optimized, Diags *d)
{
    JitOpts def;
    if (!o) {
        be_jit_opts_default(&def);
        o = &def;
    }
    Plan p;
    LLVMContextRef cx = LLVMContextCreate();
    Timer own = {0}, *t = o->time_passes ? (o->timer ? o->timer : &own) : NULL;
    LLVMModuleRef mod = build(g, cx, o, optimized, &p, t, d);
    if (t == &own)
        timer_print(&own, stderr);
    char *text = NULL;
    if (mod) {
        char *s = LLVMPrintModuleToString(mod);
        text = xstrdup(s);
        LLVMDisposeMessage(s);
        LLVMDisposeModule(mod);
    }
    plan_free(&p);
    LLVMContextDispose(cx);
    return text;
}

/* ---- the module description ---- */

static SrcLoc keep_loc(JitModule *m, SrcLoc l)
{
    if (l.file)
        l.file = arena_strdup(m->arena, l.file);
    return l;
}

static void describe_n(JitModule *m, const Plan *p)
{
    if (p->needs_n) {
        Node *v = p->needs_n;
        JitNReq r = {ir_ops[v->op].name, v->dt, v->shape, -1, 0, 0, keep_loc(m, v->loc)};
        m->needs_n = true;
        m->nreq0 = r;
    }
    m->nreqs = p->nnchecks;
    m->nreqs_v = arena_alloc(m->arena, (size_t)(p->nnchecks + 1) * sizeof(JitNReq));
    for (int i = 0; i < p->nnchecks; i++) {
        const NCheck *c = &p->nchecks[i];
        Node *v = c->node;
        JitNReq r = {ir_ops[v->op].name, v->op == OP_SLICE ? v->in[0]->dt : v->dt, *c->whole, c->axis,
                     v->a.begin[c->axis], v->a.end[c->axis], keep_loc(m, v->loc)};
        m->nreqs_v[i] = r;
    }
}

static void describe(JitModule *m, const Plan *p)
{
    Graph *g = p->g;
    m->nslots = p->nslots;
    m->slots = arena_alloc(m->arena, (size_t)(p->nslots + 1) * sizeof(JitSlot));
    for (int i = 0; i < p->nslots; i++) {
        const Slot *s = &p->slots[i];
        JitSlot *t = &m->slots[i];
        t->info.kind = s->kind;
        t->info.name = s->name ? arena_strdup(m->arena, s->name) : NULL;
        t->info.dt = s->dt;
        t->info.shape = s->shape;
        t->info.used = s->used;
        t->info.loc = keep_loc(m, s->loc);
        t->elems = s->elems;
        t->first = s->first;
        t->last = s->last;
    }
    describe_n(m, p);
    m->nkinfo = p->nsteps;
    m->kinfo = jit_describe_steps(m->arena, p);
    if (m->opts.profile)
        m->prof = rt_prof_new(p->nsteps);
    if (rt_threads_resolve(m->opts.threads) > 1)
        m->pool = rt_pool_new(rt_threads_resolve(m->opts.threads));
    m->nouts = g->nouts;
    size_t n = (size_t)g->nouts + 1;
    m->outs = arena_alloc(m->arena, n * sizeof(Output));
    m->out_dt = arena_alloc(m->arena, n * sizeof(DType));
    m->out_shape = arena_alloc(m->arena, n * sizeof(Shape));
    m->out_slot = arena_alloc(m->arena, n * sizeof(int));
    for (int i = 0; i < g->nouts; i++) {
        const Output *o = &g->outs[i];
        m->outs[i].kind = o->kind;
        m->outs[i].name = arena_strdup(m->arena, o->name);
        m->outs[i].train_only = o->train_only;
        m->out_dt[i] = o->val->dt;
        m->out_shape[i] = o->val->shape;
        m->out_slot[i] = p->out_slot[i];
    }
}

static bool jit_link(JitModule *m, LLVMOrcThreadSafeContextRef tsc, LLVMModuleRef mod, Diags *d)
{
    bool fast = m->opts.fast_isel || m->opts.opt_level <= 0;
    LLVMTargetMachineRef tm = host_tm(fast ? LLVMCodeGenLevelNone : LLVMCodeGenLevelDefault, d);
    if (!tm) {
        LLVMDisposeModule(mod);
        return false;
    }
    LLVMOrcLLJITBuilderRef jb = LLVMOrcCreateLLJITBuilder();
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(jb, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm));
    if (!consume(LLVMOrcCreateLLJIT(&m->jit, jb), "JIT creation", d)) {
        LLVMDisposeModule(mod);
        return false;
    }
    LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(mod, tsc);
    LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(m->jit);
    if (!consume(LLVMOrcLLJITAddLLVMIRModule(m->jit, jd, tsm), "adding the module to the JIT", d)) {
        LLVMOrcDisposeThreadSafeModule(tsm);
        return false;
    }
    LLVMOrcExecutorAddress addr = 0;
    if (!consume(LLVMOrcLLJITLookup(m->jit, &addr, "entry"), "JIT code generation", d))
        return false;
    m->entry = (JitEntryFn)(uintptr_t)addr;
    return true;
}

JitModule *be_jit_compile(Graph *g, const JitOpts *o, Diags *d)
{
    JitModule *m = xcalloc(1, sizeof *m);
    if (o)
        m->opts = *o;
    else
        be_jit_opts_default(&m->opts);
    m->arena = arena_new();
    Plan p;
    LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
    LLVMContextRef cx = LLVMOrcThreadSafeContextGetContext(tsc);
    LLVMModuleRef mod = build(g, cx, &m->opts, true, &p, m->opts.time_passes ? &m->timer : NULL, d);
    bool ok = mod != NULL;
    if (ok) {
        describe(m, &p);
        double t0 = mc_now_ms();
        ok = jit_link(m, tsc, mod, d);
        time_phase(m->opts.time_passes ? &m->timer : NULL, "llvm: JIT codegen and link", &t0);
    }
    plan_free(&p);
    LLVMOrcDisposeThreadSafeContext(tsc);
    if (!ok) {
        be_jit_free(m);
        return NULL;
    }
    if (m->opts.time_passes) {
        for (int i = 0; i < m->timer.n; i++)
            timer_add(m->opts.timer, m->timer.name[i], m->timer.ms[i]);
        if (!m->opts.timer)
            timer_print(&m->timer, stderr);
    }
    return m;
}

void be_jit_free(JitModule *m)
{
    if (!m)
        return;
    if (m->jit)
        LLVMConsumeError(LLVMOrcDisposeLLJIT(m->jit));
    rt_prof_free(m->prof);
    rt_pool_free(m->pool);
    arena_free(m->arena);
    free(m);
}

int be_jit_nbufs(const JitModule *m)
{
    return m->nslots;
}

const JitBufInfo *be_jit_buf(const JitModule *m, int i)
{
    MC_ASSERT(i >= 0 && i < m->nslots);
    return &m->slots[i].info;
}

int be_jit_find_buf(const JitModule *m, JitBufKind kind, const char *name)
{
    for (int i = 0; i < m->nslots; i++)
        if (m->slots[i].info.kind == kind && m->slots[i].info.name && strcmp(m->slots[i].info.name, name) == 0)
            return i;
    return -1;
}

int be_jit_nouts(const JitModule *m)
{
    return m->nouts;
}

const Output *be_jit_out(const JitModule *m, int i)
{
    return &m->outs[i];
}

DType be_jit_out_dtype(const JitModule *m, int i)
{
    return m->out_dt[i];
}

const Shape *be_jit_out_shape(const JitModule *m, int i)
{
    return &m->out_shape[i];
}

int be_jit_out_buf(const JitModule *m, int i)
{
    return m->out_slot[i];
}

JitEntryFn be_jit_entry(const JitModule *m)
{
    return m->entry;
}

const JitOpts *be_jit_opts(const JitModule *m)
{
    return &m->opts;
}

int be_jit_nkernels(const JitModule *m)
{
    return m->nkinfo;
}

const JitKernelInfo *be_jit_kernel(const JitModule *m, int i)
{
    MC_ASSERT(i >= 0 && i < m->nkinfo);
    return &m->kinfo[i];
}

RtProf *be_jit_profile(const JitModule *m)
{
    return m->prof;
}

const Timer *be_jit_timer(const JitModule *m)
{
    return &m->timer;
}

/* ---- workspaces ---- */

struct JitWorkspace {
    const JitModule *m;
    int64_t n;
    void **bufs;
    void *mem;
    int64_t bytes;
};

typedef struct Placed {
    int slot;
    int64_t off, size;
} Placed;

static int by_size_desc(const void *a, const void *b)
{
    const Placed *x = a, *y = b;
    if (x->size != y->size)
        return x->size > y->size ? -1 : 1;
    return x->slot - y->slot;
}

static bool overlap(const JitSlot *a, const JitSlot *b)
{
    return a->first <= b->last && b->first <= a->last;
}

#define WS_ALIGN 64

/* Greedy first fit, largest first: a temporary goes to the lowest offset
 * that no live-overlapping, already placed temporary occupies. */
static int64_t layout(const JitModule *m, Placed *pl, int np)
{
    qsort(pl, (size_t)np, sizeof *pl, by_size_desc);
    int64_t total = 0;
    for (int i = 0; i < np; i++) {
        int64_t off = 0;
        for (bool moved = true; moved;) {
            moved = false;
            for (int j = 0; j < i; j++) {
                if (!overlap(&m->slots[pl[i].slot], &m->slots[pl[j].slot]))
                    continue;
                if (off < pl[j].off + pl[j].size && pl[j].off < off + pl[i].size) {
                    off = pl[j].off + pl[j].size;
                    moved = true;
                }
            }
        }
        pl[i].off = off;
        if (off + pl[i].size > total)
            total = off + pl[i].size;
    }
    return total;
}

SrcLoc jit_diag_loc(Diags *d, SrcLoc l)
{
    if (l.file)
        l.file = diags_intern_file(d, l.file);
    return l;
}

static void shape_at(const Shape *s, int64_t n, Shape *out)
{
    *out = *s;
    for (int k = 0; k < s->rank; k++)
        if (s->d[k] == IR_DIM_N)
            out->d[k] = n;
}

bool be_jit_check_n(const JitModule *m, int64_t n, Diags *d)
{
    char ty[128];
    if (n < 0) {
        if (m->needs_n)
            diag_error(d, jit_diag_loc(d, m->nreq0.loc), "%s of type %s needs the batch size N, but no input binds it",
                       m->nreq0.op, ir_type_str(m->nreq0.dt, &m->nreq0.shape, ty, sizeof ty));
        return !m->needs_n;
    }
    bool ok = true;
    for (int i = 0; i < m->nreqs; i++) {
        const JitNReq *r = &m->nreqs_v[i];
        if (r->end <= n)
            continue;
        Shape s;
        shape_at(&r->shape, n, &s);
        diag_error(d, jit_diag_loc(d, r->loc), "%s [%lld:%lld] is out of range for axis %d of %s (N = %lld)", r->op,
                   (long long)r->begin, (long long)r->end, r->axis, ir_type_str(r->dt, &s, ty, sizeof ty),
                   (long long)n);
        ok = false;
    }
    return ok;
}

JitWorkspace *be_jit_workspace_new(const JitModule *m, int64_t n, Diags *d)
{
    SrcLoc none = {NULL, 0, 0};
    if (!be_jit_check_n(m, n, d))
        return NULL;
    if (n < 0)
        n = 0;
    Placed *pl = xcalloc((size_t)m->nslots + 1, sizeof(Placed));
    int np = 0;
    for (int i = 0; i < m->nslots; i++) {
        const JitSlot *s = &m->slots[i];
        if (s->info.kind != JIT_BUF_TEMP)
            continue;
        int64_t e = mono_eval(s->elems, n), bytes;
        if (e < 0 || mul_overflow_i64(e, ir_dtype_size(s->info.dt), &bytes) || bytes > INT64_MAX / 4) {
            diag_error(d, none, "batch size %lld: buffer sizes overflow", (long long)n);
            free(pl);
            return NULL;
        }
        pl[np].slot = i;
        pl[np++].size = (bytes + WS_ALIGN - 1) / WS_ALIGN * WS_ALIGN;
    }
    int64_t total = layout(m, pl, np);
    if (total == 0)
        total = WS_ALIGN; /* empty temporaries still get a valid address */
    JitWorkspace *w = xcalloc(1, sizeof *w);
    w->m = m;
    w->n = n;
    w->bytes = total;
    w->bufs = xcalloc((size_t)m->nslots + 1, sizeof(void *));
    if (!(w->mem = aligned_alloc(WS_ALIGN, (size_t)total))) {
        diag_error(d, none, "cannot allocate %lld bytes of workspace for batch size %lld",
                   (long long)total, (long long)n);
        free(pl);
        be_jit_workspace_free(w);
        return NULL;
    }
    for (int i = 0; i < np; i++)
        w->bufs[pl[i].slot] = (char *)w->mem + pl[i].off;
    free(pl);
    return w;
}

void be_jit_workspace_free(JitWorkspace *w)
{
    if (!w)
        return;
    free(w->mem);
    free(w->bufs);
    free(w);
}

int64_t be_jit_workspace_n(const JitWorkspace *w)
{
    return w->n;
}

const JitModule *be_jit_workspace_module(const JitWorkspace *w)
{
    return w->m;
}

int64_t be_jit_workspace_bytes(const JitWorkspace *w)
{
    return w->bytes;
}

void be_jit_bind_data(JitWorkspace *w, int i, void *data)
{
    MC_ASSERT(i >= 0 && i < w->m->nslots && w->m->slots[i].info.kind != JIT_BUF_TEMP);
    w->bufs[i] = data;
}

bool be_jit_ready(const JitWorkspace *w, Diags *d)
{
    for (int i = 0; i < w->m->nslots; i++) {
        const JitBufInfo *b = &w->m->slots[i].info;
        if (b->kind != JIT_BUF_TEMP && b->used && !w->bufs[i]) {
            diag_error(d, jit_diag_loc(d, b->loc), "%s '%s' is not bound", b->kind == JIT_BUF_INPUT ? "input" : "parameter",
                       b->name);
            return false;
        }
    }
    return true;
}

void be_jit_step(JitWorkspace *w, RtCtx *ctx)
{
    rt_ctx_apply_threads(ctx);
    if (!ctx->prof)
        ctx->prof = w->m->prof;
    if (!ctx->pool)
        ctx->pool = w->m->pool;
    w->m->entry(ctx, w->n, w->bufs);
}

void *be_jit_out_data(const JitWorkspace *w, int i)
{
    return w->bufs[w->m->out_slot[i]];
}

int64_t be_jit_out_numel(const JitWorkspace *w, int i)
{
    return ir_shape_numel(&w->m->out_shape[i], w->n);
}
