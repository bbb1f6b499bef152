/* Compiling a graph with LLVM (the plan, then compile.c's parts and
 * ORC LLJIT), the module as text for `modelc llvm`, the module
 * description kept after the graph is gone, and workspaces (buffer tables
 * with temporaries laid out per batch size). */
#define _GNU_SOURCE /* dl_iterate_phdr */
#include "compile.h"

#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <link.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "plan_memory.h"
#include "passes/passes.h"

typedef struct JitSlot {
    JitBufInfo info;
    Mono elems;
    int64_t tile_rows; /* Slot.tile_rows */
    int first, last;
    const char *what; /* temporaries: the value or scratch it holds */
    SrcLoc where;     /* temporaries: the source of the node computing it */
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
    int *out_step; /* be_jit_out_step */
    bool needs_n;
    JitNReq nreq0; /* the first node needing N */
    int nreqs;
    JitNReq *nreqs_v; /* fixed slices of the batch axis */
    JitStats stats;
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

/* ---- the module as text (modelc llvm) ---- */

static LLVMTargetMachineRef host_tm(Diags *d)
{
    char *triple = LLVMGetDefaultTargetTriple();
    char *cpu = LLVMGetHostCPUName();
    char *features = LLVMGetHostCPUFeatures();
    LLVMTargetRef target;
    char *err = NULL;
    LLVMTargetMachineRef tm = NULL;
    if (LLVMGetTargetFromTriple(triple, &target, &err)) {
        diag_error(d, (SrcLoc){0}, "no LLVM target for %s: %s", triple, err);
        LLVMDisposeMessage(err);
    } else {
        tm = LLVMCreateTargetMachine(target, triple, cpu, features, LLVMCodeGenLevelDefault, LLVMRelocPIC,
                                     LLVMCodeModelSmall);
    }
    LLVMDisposeMessage(triple);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(features);
    return tm;
}

static bool optimise(LLVMModuleRef mod, LLVMTargetMachineRef tm, int level, Diags *d)
{
    char err[512];
    if (jit_optimise(mod, tm, level, err, sizeof err))
        return true;
    diag_error(d, (SrcLoc){0}, "%s", err);
    return false;
}

/* The whole module for g in context cx, optimised if asked. */
static LLVMModuleRef build(Graph *g, LLVMContextRef cx, const JitOpts *o, bool opt, Plan *p, Diags *d)
{
    if (!plan_build(p, g, d))
        return NULL;
    jit_llvm_init();
    LLVMModuleRef mod = cg_build_module(cx, p, o->profile, d);
    LLVMTargetMachineRef tm = host_tm(d);
    if (!tm) {
        LLVMDisposeModule(mod);
        return NULL;
    }
    jit_set_target(mod, tm);
    bool ok = !opt || optimise(mod, tm, o->opt_level, d);
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
    LLVMModuleRef mod = build(g, cx, o, optimized, &p, d);
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

bool be_jit_check(Graph *g, Diags *d)
{
    Plan p;
    bool ok = plan_build(&p, g, d);
    plan_free(&p);
    return ok;
}

/* The process's resident file-backed memory in bytes (RssFile of
 * /proc/self/status), 0 when unknown. */
static int64_t rss_file_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int64_t kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "RssFile:", 8) == 0)
            kb = strtoll(line + 8, NULL, 10);
    if (f)
        fclose(f);
    return kb * 1024;
}

/* For each loaded libLLVM: its code segments (loaded, executable, never
 * writable: no relocations or data in them), their resident pages given
 * back. */
static int release_llvm_code(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    const char *name = info->dlpi_name ? info->dlpi_name : "", *base = strrchr(name, '/');
    if (strncmp(base ? base + 1 : name, "libLLVM", 7) != 0)
        return 0;
    (void)arg;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X) || (ph->p_flags & PF_W))
            continue;
        uintptr_t lo = (info->dlpi_addr + ph->p_vaddr) & ~(page - 1);
        uintptr_t hi = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + page - 1) & ~(page - 1);
        madvise((void *)lo, hi - lo, MADV_DONTNEED);
    }
    return 0;
}

int64_t be_jit_release_compiler_memory(void)
{
    int64_t before = rss_file_bytes();
    dl_iterate_phdr(release_llvm_code, NULL);
    malloc_trim(0);
    int64_t after = rss_file_bytes();
    return before > after ? before - after : 0;
}

bool be_jit_default_cache_dir(char *buf, size_t n)
{
    const char *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int k;
    if (x && *x == '/')
        k = snprintf(buf, n, "%s/modelc", x);
    else if (home && *home)
        k = snprintf(buf, n, "%s/.cache/modelc", home);
    else
        return false;
    return k > 0 && (size_t)k < n;
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

static const char *node_what(JitModule *m, const Node *v, const char *prefix)
{
    StrBuf b;
    sb_init(&b);
    if (v->label)
        sb_printf(&b, "%s%%%s = %s", prefix, v->label, ir_ops[v->op].name);
    else
        sb_printf(&b, "%s%%%d = %s", prefix, v->id, ir_ops[v->op].name);
    const char *r = arena_strdup(m->arena, b.s);
    sb_free(&b);
    return r;
}

/* What each temporary holds, for the printed memory plan. */
static void describe_temps(JitModule *m, const Plan *p)
{
    for (int i = 0; i < p->nsteps; i++) {
        const Step *st = &p->steps[i];
        JitSlot *out = &m->slots[st->out];
        if (st->kind == STEP_COPY) {
            if (!out->what && out->info.kind == JIT_BUF_TEMP) {
                const JitSlot *src = &m->slots[st->src];
                out->what = src->info.name ? arena_strdup(m->arena, src->info.name) : "copy";
                out->where = src->info.loc;
            }
            continue;
        }
        if (!out->what) {
            out->what = node_what(m, st->node, "");
            out->where = keep_loc(m, st->node->loc);
        }
        for (int j = 1; st->node->sub && j < st->node->sub->nouts; j++) {
            int ps = plan_part_slot(p, st->node, j);
            if (ps >= 0 && !m->slots[ps].what) {
                char pre[32];
                snprintf(pre, sizeof pre, "result %d of ", j);
                m->slots[ps].what = node_what(m, st->node, pre);
                m->slots[ps].where = keep_loc(m, st->node->loc);
            }
        }
        if (st->scratch >= 0 && !m->slots[st->scratch].what) {
            m->slots[st->scratch].what = node_what(m, st->node, "scratch of ");
            m->slots[st->scratch].where = keep_loc(m, st->node->loc);
        }
        if (st->scratch2 >= 0 && !m->slots[st->scratch2].what) {
            m->slots[st->scratch2].what = node_what(m, st->node, "body buffers of ");
            m->slots[st->scratch2].where = keep_loc(m, st->node->loc);
        }
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
        t->info.kept = s->kept;
        t->info.loc = keep_loc(m, s->loc);
        t->elems = s->elems;
        t->tile_rows = s->tile_rows;
        t->first = s->first;
        t->last = s->last;
    }
    describe_temps(m, p);
    describe_n(m, p);
    m->nkinfo = p->nsteps;
    m->kinfo = jit_describe_steps(m->arena, p);
    if (m->opts.profile)
        m->prof = rt_prof_new(p->nsteps);
    m->nouts = g->nouts;
    size_t n = (size_t)g->nouts + 1;
    m->outs = arena_alloc(m->arena, n * sizeof(Output));
    m->out_dt = arena_alloc(m->arena, n * sizeof(DType));
    m->out_shape = arena_alloc(m->arena, n * sizeof(Shape));
    m->out_slot = arena_alloc(m->arena, n * sizeof(int));
    m->out_step = arena_alloc(m->arena, n * sizeof(int));
    for (int i = 0; i < g->nouts; i++) {
        const Output *o = &g->outs[i];
        m->outs[i].kind = o->kind;
        m->outs[i].name = arena_strdup(m->arena, o->name);
        m->outs[i].train_only = o->train_only;
        m->out_dt[i] = o->val->dt;
        m->out_shape[i] = o->val->shape;
        m->out_slot[i] = p->out_slot[i];
        m->out_step[i] = plan_out_step(p, i);
    }
}

JitModule *be_jit_compile(Graph *g, const JitOpts *o, Diags *d)
{
    JitModule *m = xcalloc(1, sizeof *m);
    if (o)
        m->opts = *o;
    else
        be_jit_opts_default(&m->opts);
    m->arena = arena_new();
    Timer *t = m->opts.time_passes ? &m->timer : NULL;
    Plan p;
    double t0 = mc_now_ms();
    bool ok = plan_build(&p, g, d);
    p.step_done = m->opts.step_done;
    timer_add(t, "llvm: plan", mc_now_ms() - t0);
    if (ok) {
        describe(m, &p);
        ok = jit_compile_plan(&p, &m->opts, &m->jit, &m->entry, &m->stats, t, d);
    }
    plan_free(&p);
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
    /* last, with nothing after it that can run out of memory: a failure
     * caught in between would free m without stopping the pool's workers */
    if (rt_threads_resolve(m->opts.threads) > 1)
        m->pool = rt_pool_new(rt_threads_resolve(m->opts.threads));
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
    xfree(m);
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

int be_jit_out_step(const JitModule *m, int i)
{
    return m->out_step[i];
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

const JitStats *be_jit_stats(const JitModule *m)
{
    return &m->stats;
}

/* ---- workspaces ---- */

struct JitWorkspace {
    const JitModule *m;
    int64_t n;
    void **bufs;
    void *mem;
    int64_t bytes;
};

#define WS_ALIGN 64

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
        if (ir_dim_is_batch(s->d[k]))
            out->d[k] = ir_dim_eval(s->d[k], n);
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

/* The temporaries' live ranges and sizes for batch size n (which[i]:
 * the slot of interval i); -1 with a diagnostic on overflow. */
static int temp_intervals(const JitModule *m, int64_t n, BeInterval *pl, int *which, Diags *d)
{
    int np = 0;
    for (int i = 0; i < m->nslots; i++) {
        const JitSlot *s = &m->slots[i];
        if (s->info.kind != JIT_BUF_TEMP)
            continue;
        int64_t e = plan_slot_elems(s->elems, s->tile_rows, n), bytes;
        if (e < 0 || mul_overflow_i64(e, ir_dtype_size(s->info.dt), &bytes) || bytes > INT64_MAX / 4) {
            diag_error(d, (SrcLoc){NULL, 0, 0}, "batch size %lld: buffer sizes overflow", (long long)n);
            return -1;
        }
        pl[np] = (BeInterval){s->first, s->last, bytes, 0};
        which[np++] = i;
    }
    return np;
}

/* A large workspace's pages are made resident on two threads when it is
 * created: the first step no longer takes its page faults one by one on
 * the threads that compute (CNN+BN's 104 MB training workspace: the
 * first step 74 -> 68 ms, medians of 4). MADV_POPULATE_WRITE (Linux 5.14)
 * or a write to each page. */
#define PREFAULT_MIN_BYTES ((size_t)16 << 20)
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
typedef struct PageRange {
    char *lo;
    size_t n;
} PageRange;

static void *prefault_range(void *arg)
{
    PageRange *q = arg;
    if (madvise(q->lo, q->n, MADV_POPULATE_WRITE) != 0)
        for (size_t i = 0; i < q->n; i += 4096)
            ((volatile char *)q->lo)[i] = 0; /* the contents are undefined until the step writes them */
    return NULL;
}

static void prefault(void *mem, size_t bytes)
{
    uintptr_t lo = ((uintptr_t)mem + 4095) & ~(uintptr_t)4095, hi = ((uintptr_t)mem + bytes) & ~(uintptr_t)4095;
    if (bytes < PREFAULT_MIN_BYTES || hi <= lo)
        return;
    size_t half = ((hi - lo) / 2) & ~(size_t)4095;
    PageRange a = {(char *)lo, half}, b = {(char *)lo + half, (hi - lo) - half};
    pthread_t t;
    bool other = sysconf(_SC_NPROCESSORS_ONLN) > 1 && pthread_create(&t, NULL, prefault_range, &b) == 0;
    prefault_range(&a);
    if (other)
        pthread_join(t, NULL);
    else
        prefault_range(&b);
}

JitWorkspace *be_jit_workspace_new(const JitModule *m, int64_t n, Diags *d)
{
    SrcLoc none = {NULL, 0, 0};
    if (!be_jit_check_n(m, n, d))
        return NULL;
    if (n < 0)
        n = 0;
    BeInterval *pl = xcalloc((size_t)m->nslots + 1, sizeof(BeInterval));
    int *which = xcalloc((size_t)m->nslots + 1, sizeof(int));
    int np = temp_intervals(m, n, pl, which, d);
    if (np < 0) {
        xfree(pl);
        xfree(which);
        return NULL;
    }
    int64_t total = be_plan_memory(pl, np, WS_ALIGN);
    if (total == 0)
        total = WS_ALIGN; /* empty temporaries still get a valid address */
    JitWorkspace *w = xcalloc(1, sizeof *w);
    w->m = m;
    w->n = n;
    w->bytes = total;
    w->bufs = xcalloc((size_t)m->nslots + 1, sizeof(void *));
    if (!(w->mem = mem_aligned_alloc(WS_ALIGN, (size_t)total, false))) {
        diag_error(d, none, "out of memory: cannot allocate %lld bytes of workspace for batch size %lld",
                   (long long)total, (long long)n);
        xfree(pl);
        xfree(which);
        be_jit_workspace_free(w);
        return NULL;
    }
    prefault(w->mem, (size_t)total);
    for (int i = 0; i < np; i++)
        w->bufs[which[i]] = (char *)w->mem + pl[i].off;
    xfree(pl);
    xfree(which);
    return w;
}

void be_jit_workspace_free(JitWorkspace *w)
{
    if (!w)
        return;
    xfree(w->mem);
    xfree(w->bufs);
    xfree(w);
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

/* ---- the printed memory plan ---- */

typedef struct PlanRow {
    const BeInterval *iv;
    const JitSlot *s;
} PlanRow;

static int by_first(const void *a, const void *b)
{
    const PlanRow *x = a, *y = b;
    if (x->iv->first != y->iv->first)
        return x->iv->first - y->iv->first;
    return x->iv->off < y->iv->off ? -1 : x->iv->off > y->iv->off;
}

static void print_plan(FILE *f, const JitModule *m, int64_t n, BeInterval *pl, const int *which, int np)
{
    int64_t arena = be_plan_memory(pl, np, WS_ALIGN), sum = 0, params = 0;
    for (int i = 0; i < np; i++)
        sum += (pl[i].bytes + WS_ALIGN - 1) / WS_ALIGN * WS_ALIGN;
    for (int i = 0; i < m->nslots; i++) {
        const JitSlot *s = &m->slots[i];
        int64_t e = mono_eval(s->elems, n);
        if (s->info.kind != JIT_BUF_TEMP && s->info.used && e > 0)
            params += e * ir_dtype_size(s->info.dt);
    }
    PlanRow *rows = xcalloc((size_t)np + 1, sizeof *rows);
    int nr = 0;
    for (int i = 0; i < np; i++)
        if (pl[i].first >= 0 || pl[i].bytes > 0) /* not a slot merged into another (plan_in_place) */
            rows[nr++] = (PlanRow){&pl[i], &m->slots[which[i]]};
    qsort(rows, (size_t)nr, sizeof *rows, by_first);
    fprintf(f, "; memory plan for N = %lld: %d temporaries in one arena, live ranges in kernel steps\n",
            (long long)n, nr);
    fprintf(f, "%12s %12s  %-11s  %s\n", "offset", "bytes", "live", "value");
    for (int i = 0; i < nr; i++) {
        const PlanRow *r = &rows[i];
        char live[32];
        snprintf(live, sizeof live, "[%d,%d]", r->iv->first, r->iv->last);
        fprintf(f, "%12lld %12lld  %-11s  %s", (long long)r->iv->off, (long long)r->iv->bytes, live,
                r->s->what ? r->s->what : "?");
        if (r->s->tile_rows)
            fprintf(f, " [a batch tile's %lld rows]", (long long)r->s->tile_rows);
        if (r->s->where.file)
            fprintf(f, "  (%s:%d)", r->s->where.file, r->s->where.line);
        fputc('\n', f);
    }
    int64_t peak = be_peak_live(pl, np, WS_ALIGN);
    fprintf(f, "; temporaries without reuse: %lld bytes\n", (long long)sum);
    fprintf(f, "; arena: %lld bytes (largest sum live at one step: %lld bytes; reuse saves %.1f%%)\n",
            (long long)arena, (long long)peak, sum ? 100.0 * (double)(sum - arena) / (double)sum : 0.0);
    fprintf(f, "; inputs and parameters (bound by the caller, updated in place): %lld bytes\n",
            (long long)params);
    xfree(rows);
}

bool be_jit_print_memory_plan(const JitModule *m, int64_t n, FILE *f, Diags *d)
{
    if (!be_jit_check_n(m, n, d))
        return false;
    BeInterval *pl = xcalloc((size_t)m->nslots + 1, sizeof(BeInterval));
    int *which = xcalloc((size_t)m->nslots + 1, sizeof(int));
    int np = temp_intervals(m, n, pl, which, d);
    if (np >= 0)
        print_plan(f, m, n, pl, which, np);
    xfree(pl);
    xfree(which);
    return np >= 0;
}
