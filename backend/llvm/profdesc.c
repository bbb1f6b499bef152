/* Kernel profiles: a description of every step of the entry (what runs,
 * the value it computes, its source line) and the table of accumulated
 * per-kernel wall times of a profiling module. */
#include "cg.h"

#include <stdlib.h>
#include <string.h>

#include "ir/irtext.h"

/* "fused{sub,mul,relu}": the body's ops, leaves and constants left out */
static const char *fused_what(Arena *a, const Node *v)
{
    StrBuf b;
    sb_init(&b);
    sb_printf(&b, "fused{");
    int k = 0;
    for (int i = 0; i < v->sub->nnodes; i++) {
        const Node *u = v->sub->nodes[i];
        if (u->op == OP_INPUT || u->op == OP_CONST)
            continue;
        sb_printf(&b, "%s%s", k++ ? "," : "", ir_ops[u->op].name);
    }
    sb_printf(&b, "}");
    char *s = sb_take(&b);
    const char *r = arena_strdup(a, s);
    xfree(s);
    return r;
}

static SrcLoc keep(Arena *a, SrcLoc l)
{
    if (l.file)
        l.file = arena_strdup(a, l.file);
    return l;
}

/* A copy serves a parameter: its update (out) or its snapshot (src). */
static const char *copy_value(const Plan *p, const Step *st)
{
    const Slot *o = &p->slots[st->out], *s = &p->slots[st->src];
    return o->name ? o->name : s->name ? s->name : "";
}

JitKernelInfo *jit_describe_steps(Arena *a, const Plan *p)
{
    JitKernelInfo *k = arena_alloc(a, (size_t)(p->nsteps + 1) * sizeof *k);
    ValueNames vn;
    ir_names_build(&vn, p->g);
    for (int i = 0; i < p->nsteps; i++) {
        const Step *st = &p->steps[i];
        if (st->kind == STEP_COPY) {
            k[i].what = "copy";
            k[i].value = arena_strdup(a, copy_value(p, st));
            continue;
        }
        const Node *v = st->node;
        k[i].what = v->op == OP_FUSED ? fused_what(a, v) : ir_ops[v->op].name;
        k[i].value = arena_printf(a, "%%%s", vn.v[v->id]);
        k[i].loc = keep(a, v->loc);
    }
    /* an epilogue's time is its producer's: name both sides */
    for (int i = 1, prod = 0; i < p->nsteps; i++) {
        if (!p->steps[i].epilogue) {
            prod = i;
            continue;
        }
        k[i].what = arena_printf(a, "%s (in #%d)", k[i].what, prod);
        k[prod].what = arena_printf(a, "%s+#%d", k[prod].what, i);
    }
    ir_names_free(&vn);
    return k;
}

/* ---- the table ---- */

typedef struct Row {
    int i;
    int64_t ns;
} Row;

static int by_time_desc(const void *a, const void *b)
{
    const Row *x = a, *y = b;
    if (x->ns != y->ns)
        return x->ns < y->ns ? 1 : -1;
    return x->i - y->i;
}

#define WHAT_MAX 40

static void source_str(const JitKernelInfo *k, char *buf, size_t n)
{
    if (k->loc.file)
        snprintf(buf, n, "%s:%d", k->loc.file, k->loc.line);
    else
        snprintf(buf, n, "-");
}

static int imax(int a, int b)
{
    return a > b ? a : b;
}

void be_jit_profile_print(const JitModule *m, const char *title, FILE *f)
{
    const RtProf *p = be_jit_profile(m);
    if (!p || p->runs == 0)
        return; /* nothing ran (the data failed to load, say): no table of zeros */
    Row *rows = xcalloc((size_t)p->n + 1, sizeof *rows);
    int64_t total = 0;
    int ww = 6, wv = 5, ws = 6;
    char src[512];
    for (int i = 0; i < p->n; i++) {
        const JitKernelInfo *k = be_jit_kernel(m, i);
        rows[i].i = i;
        rows[i].ns = p->ns[i];
        total += p->ns[i];
        ww = imax(ww, (int)strlen(k->what));
        wv = imax(wv, (int)strlen(k->value));
        source_str(k, src, sizeof src);
        ws = imax(ws, (int)strlen(src));
    }
    ww = ww > WHAT_MAX ? WHAT_MAX : ww;
    qsort(rows, (size_t)p->n, sizeof *rows, by_time_desc);
    double runs = p->runs > 0 ? (double)p->runs : 1;
    const char *unit = strcmp(title, "inference") == 0 ? "batch" : "step"; /* what one run is */
    fprintf(f, "profile: %s, %lld %s%s, %.3f ms/%s in %d kernels\n", title, (long long)p->runs, unit,
            strcmp(unit, "batch") == 0 ? "es" : "s", (double)total / 1e6 / runs, unit, p->n);
    fprintf(f, "%4s  %-*s  %-*s  %-*s  %6s  %10s  %10s  %6s\n", "#", ww, "kernel", wv, "value", ws, "source",
            "calls", "ms/call", "total ms", "share");
    for (int r = 0; r < p->n; r++) {
        int i = rows[r].i;
        const JitKernelInfo *k = be_jit_kernel(m, i);
        source_str(k, src, sizeof src);
        double ms = (double)p->ns[i] / 1e6;
        int64_t calls = p->calls[i];
        char what[WHAT_MAX + 1];
        snprintf(what, sizeof what, "%s", k->what);
        if (strlen(k->what) > WHAT_MAX)
            memcpy(what + WHAT_MAX - 3, "...", 3);
        fprintf(f, "%4d  %-*s  %-*s  %-*s  %6lld  %10.4f  %10.3f  %5.1f%%\n", i, ww, what, wv, k->value, ws, src,
                (long long)calls, calls ? ms / (double)calls : 0.0, ms,
                total ? 100.0 * (double)p->ns[i] / (double)total : 0.0);
    }
    xfree(rows);
}
