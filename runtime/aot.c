/* The ahead-of-time context: parses the description an object written
 * by `modelc compile` carries, binds parameters (embedded or from a
 * safetensors file), inputs, workspaces and outputs, and calls the
 * compiled entries (aot.h). Part of libmodelc-rt: no LLVM, no frontend. */
#include "aot.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json.h"

#define AOT_MAXRANK 8
#define AOT_ALIGN 64

typedef struct AotTensor {
    char *name;
    int dt; /* 0 f32, 1 f64, 2 i32 */
    int rank;
    int64_t dims[AOT_MAXRANK]; /* -1: N, -k: N*k */
} AotTensor;

typedef struct AotParam {
    AotTensor t;
    int64_t off; /* in the embedded weights; -1 when none */
    void *data;
    bool owned;
} AotParam;

typedef enum { BUF_NONE, BUF_INPUT, BUF_PARAM, BUF_TEMP } BufKind;

typedef struct AotBuf {
    BufKind kind;
    int param;   /* BUF_PARAM */
    int64_t off; /* BUF_TEMP: offset in the workspace */
    AotTensor t; /* BUF_INPUT */
} AotBuf;

typedef struct AotOut {
    int buf;
    AotTensor t;
    bool loss;
} AotOut;

typedef struct AotFn {
    char *name;
    int nbufs, nargs, nouts, outcap, lr;
    AotBuf *bufs;
    int *args;
    AotOut *outs;
    int64_t ws_bytes;
    int64_t min_n; /* the smallest batch (fixed slices of the batch axis) */
    bool train;
    void **table;
    void *ws;
} AotFn;

struct rt_aot {
    const RtAotModel *m;
    char *text; /* the description, split into tokens in place */
    int64_t batch;
    bool fixed;
    uint64_t seed;
    int64_t step;
    int nparams, nfns;
    AotParam *params;
    AotFn *fns;
    int threads;
    RtPool *pool;
    union {
        float f32;
        double f64;
    } lr;
    char err[512];
};

static int fail(RtAot *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(RtAot *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return -1;
}

static int64_t dt_size(int dt)
{
    return dt == 1 ? 8 : 4;
}

static int64_t numel(const AotTensor *t, int64_t n)
{
    int64_t e = 1;
    for (int k = 0; k < t->rank; k++)
        e *= t->dims[k] < 0 ? -t->dims[k] * n : t->dims[k]; /* -k: N*k */
    return e;
}

/* ---- the description ---- */

typedef struct Lex {
    char *save;
    bool bad;
} Lex;

static char *tok(Lex *l)
{
    char *s = strtok_r(NULL, " \n", &l->save);
    if (!s)
        l->bad = true;
    return s ? s : "";
}

static int64_t num(Lex *l)
{
    char *s = tok(l), *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || end == s || errno)
        l->bad = true;
    return v;
}

static int dtype(Lex *l)
{
    const char *s = tok(l);
    int dt = strcmp(s, "f32") == 0 ? 0 : strcmp(s, "f64") == 0 ? 1 : strcmp(s, "i32") == 0 ? 2 : -1;
    if (dt < 0)
        l->bad = true;
    return dt;
}

/* DT RANK d... [NAME] */
static void tensor(Lex *l, AotTensor *t, bool named)
{
    t->dt = dtype(l);
    t->rank = (int)num(l);
    if (t->rank < 0 || t->rank > AOT_MAXRANK) {
        l->bad = true;
        return;
    }
    for (int k = 0; k < t->rank; k++)
        t->dims[k] = num(l);
    if (named)
        t->name = tok(l);
}

static bool parse_fn(RtAot *c, Lex *l, AotFn *f)
{
    f->name = tok(l);
    f->nbufs = (int)num(l);
    f->ws_bytes = num(l);
    f->train = num(l) != 0;
    f->min_n = num(l);
    f->lr = -1;
    if (l->bad || f->nbufs < 0 || f->nbufs > 1 << 20 || f->ws_bytes < 0)
        return false;
    f->bufs = calloc((size_t)f->nbufs + 1, sizeof *f->bufs);
    f->args = calloc((size_t)f->nbufs + 1, sizeof *f->args);
    f->outcap = f->nbufs + 1;
    f->outs = calloc((size_t)f->outcap, sizeof *f->outs);
    f->table = calloc((size_t)f->nbufs + 1, sizeof *f->table);
    if (!f->bufs || !f->args || !f->outs || !f->table)
        return false;
    for (int i = 0; i < f->nbufs && !l->bad; i++) {
        AotBuf *b = &f->bufs[i];
        const char *kind = tok(l);
        if (strcmp(kind, "buf") != 0)
            return false;
        kind = tok(l);
        if (strcmp(kind, "input") == 0) {
            b->kind = BUF_INPUT;
            tensor(l, &b->t, true);
        } else if (strcmp(kind, "param") == 0) {
            b->kind = BUF_PARAM;
            b->param = (int)num(l);
            l->bad |= b->param < 0 || b->param >= c->nparams;
        } else if (strcmp(kind, "none") == 0) {
            b->kind = BUF_NONE; /* not read by this function */
        } else if (strcmp(kind, "temp") == 0) {
            b->kind = BUF_TEMP;
            b->off = num(l);
            l->bad |= b->off < 0 || b->off > f->ws_bytes;
        } else {
            return false;
        }
    }
    for (;;) {
        const char *w = tok(l);
        if (l->bad)
            return false;
        if (strcmp(w, "end") == 0)
            return true;
        int i = (int)num(l);
        if (i < 0 || i >= f->nbufs)
            return false;
        if (f->bufs[i].kind != (strcmp(w, "out") == 0 ? f->bufs[i].kind : BUF_INPUT))
            return false;
        if (strcmp(w, "arg") == 0 && f->nargs < f->nbufs) {
            f->args[f->nargs++] = i;
        } else if (strcmp(w, "lr") == 0) {
            f->lr = i;
        } else if (strcmp(w, "out") == 0) {
            if (f->nouts == f->outcap) { /* outputs may share a buffer: more outputs than buffers */
                AotOut *v = realloc(f->outs, (size_t)(2 * f->outcap) * sizeof *v);
                if (!v)
                    return false;
                memset(v + f->outcap, 0, (size_t)f->outcap * sizeof *v);
                f->outs = v;
                f->outcap *= 2;
            }
            AotOut *o = &f->outs[f->nouts++];
            o->buf = i;
            tensor(l, &o->t, false);
            o->loss = strcmp(tok(l), "loss") == 0;
            o->t.name = tok(l);
        } else {
            return false;
        }
    }
}

static bool parse(RtAot *c)
{
    const RtAotModel *m = c->m;
    c->text = malloc(m->desc_len + 1);
    if (!c->text)
        return false;
    memcpy(c->text, m->desc, m->desc_len);
    c->text[m->desc_len] = 0;
    Lex l = {NULL, false};
    char *first = strtok_r(c->text, " \n", &l.save);
    if (!first || strcmp(first, "modelc-aot") != 0 || num(&l) != RT_AOT_ABI)
        return false;
    if (strcmp(tok(&l), "model") != 0)
        return false;
    tok(&l);
    if (strcmp(tok(&l), "batch") != 0)
        return false;
    c->batch = num(&l);
    c->fixed = strcmp(tok(&l), "fixed") == 0;
    if (strcmp(tok(&l), "seed") != 0)
        return false;
    c->seed = (uint64_t)num(&l);
    if (strcmp(tok(&l), "step") != 0)
        return false;
    c->step = num(&l);
    if (strcmp(tok(&l), "params") != 0)
        return false;
    c->nparams = (int)num(&l);
    if (l.bad || c->nparams < 0 || c->nparams > 1 << 20)
        return false;
    c->params = calloc((size_t)c->nparams + 1, sizeof *c->params);
    c->nfns = (int)m->nfns;
    c->fns = calloc((size_t)c->nfns + 1, sizeof *c->fns);
    if (!c->params || !c->fns)
        return false;
    for (int i = 0; i < c->nparams && !l.bad; i++) {
        AotParam *p = &c->params[i];
        if (strcmp(tok(&l), "param") != 0)
            return false;
        tensor(&l, &p->t, true);
        p->off = num(&l);
        for (int k = 0; k < p->t.rank; k++)
            l.bad |= p->t.dims[k] < 0;
    }
    for (int i = 0; i < c->nfns && !l.bad; i++)
        if (strcmp(tok(&l), "fn") != 0 || !parse_fn(c, &l, &c->fns[i]))
            return false;
    return !l.bad;
}

/* ---- parameters ---- */

static bool any_train(const RtAot *c)
{
    for (int i = 0; i < c->nfns; i++)
        if (c->fns[i].train)
            return true;
    return false;
}

static int64_t param_bytes(const AotParam *p)
{
    return numel(&p->t, 0) * dt_size(p->t.dt);
}

static void *alloc_aligned(int64_t bytes)
{
    size_t n = (size_t)((bytes + AOT_ALIGN - 1) / AOT_ALIGN * AOT_ALIGN);
    return aligned_alloc(AOT_ALIGN, n ? n : AOT_ALIGN);
}

/* Prediction reads the embedded values in place; a training step
 * updates its own copies. */
static int embedded_params(RtAot *c)
{
    const RtAotModel *m = c->m;
    if (!m->weights)
        return fail(c, "model compiled with --weights-file: pass a safetensors file to _init");
    bool copy = any_train(c);
    for (int i = 0; i < c->nparams; i++) {
        AotParam *p = &c->params[i];
        int64_t bytes = param_bytes(p);
        if (p->off < 0 || (uint64_t)p->off + (uint64_t)bytes > m->weights_len)
            return fail(c, "parameter '%s' is not embedded in the object", p->t.name);
        if (!copy) {
            p->data = (void *)(m->weights + p->off);
            continue;
        }
        if (!(p->data = alloc_aligned(bytes)))
            return fail(c, "out of memory for parameter '%s'", p->t.name);
        p->owned = true;
        memcpy(p->data, m->weights + p->off, (size_t)bytes);
    }
    return 0;
}

static unsigned char *load_file(RtAot *c, const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fail(c, "%s: %s", path, strerror(errno));
        return NULL;
    }
    unsigned char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        fclose(f);
        *len = (size_t)n;
        return buf;
    }
    fail(c, "%s: cannot read the file", path);
    xfree(buf);
    fclose(f);
    return NULL;
}

static const char *st_dtype(int dt)
{
    return dt == 1 ? "F64" : dt == 2 ? "I32" : "F32";
}

/* One parameter from a safetensors header entry. */
static int file_param(RtAot *c, const char *path, AotParam *p, const JsonValue *e, const unsigned char *data,
                      uint64_t datalen)
{
    const JsonValue *dt = json_get(e, "dtype"), *sh = json_get(e, "shape"), *off = json_get(e, "data_offsets");
    int64_t bytes = param_bytes(p);
    if (e->kind != JSON_OBJ || !dt || dt->kind != JSON_STR || !sh || sh->kind != JSON_ARR || !off ||
        off->kind != JSON_ARR || off->n != 2)
        return fail(c, "%s: tensor '%s' has a malformed header entry", path, p->t.name);
    bool same = strcmp(dt->s, st_dtype(p->t.dt)) == 0 && sh->n == p->t.rank;
    for (int k = 0; same && k < sh->n; k++)
        same = sh->items[k]->kind == JSON_NUM && sh->items[k]->is_int && sh->items[k]->i == p->t.dims[k];
    if (!same) {
        char want[160];
        int w = snprintf(want, sizeof want, "%s[", p->t.dt == 1 ? "f64" : p->t.dt == 2 ? "i32" : "f32");
        for (int k = 0; k < p->t.rank && w < (int)sizeof want - 24; k++)
            w += snprintf(want + w, sizeof want - (size_t)w, "%s%lld", k ? "," : "", (long long)p->t.dims[k]);
        snprintf(want + w, sizeof want - (size_t)w, "]");
        return fail(c, "%s: tensor '%s' does not match the compiled model, which expects %s", path, p->t.name,
                    want);
    }
    const JsonValue *a = off->items[0], *b = off->items[1];
    if (a->kind != JSON_NUM || b->kind != JSON_NUM || !a->is_int || !b->is_int || a->i < 0 || b->i < a->i ||
        (uint64_t)b->i > datalen || b->i - a->i != bytes)
        return fail(c, "%s: tensor '%s' has bad data offsets", path, p->t.name);
    if (!(p->data = alloc_aligned(bytes)))
        return fail(c, "out of memory for parameter '%s'", p->t.name);
    p->owned = true;
    memcpy(p->data, data + a->i, (size_t)bytes);
    return 0;
}

/* Every parameter from a safetensors checkpoint; optimizer slots a
 * checkpoint lacks start at zero, as in a fresh run. */
static int params_from(RtAot *c, const char *path, const unsigned char *buf, size_t len)
{
    uint64_t hlen = 0;
    for (int i = 0; i < 8 && len >= 8; i++)
        hlen |= (uint64_t)buf[i] << (8 * i);
    if (len < 8 || hlen > len - 8)
        return fail(c, "%s: not a safetensors file (bad header length)", path);
    Arena *a = arena_new();
    JsonError je;
    const JsonValue *h = json_parse(a, (const char *)buf + 8, (size_t)hlen, 64, &je);
    int rc = 0;
    if (!h || h->kind != JSON_OBJ)
        rc = fail(c, "%s: not a safetensors file (%s)", path, h ? "the header is not an object" : je.msg);
    for (int i = 0; rc == 0 && i < c->nparams; i++) {
        AotParam *p = &c->params[i];
        const JsonValue *e = json_get(h, p->t.name);
        if (e) {
            rc = file_param(c, path, p, e, buf + 8 + hlen, len - 8 - hlen);
        } else if (strncmp(p->t.name, "optimizer.", 10) == 0) {
            if (!(p->data = alloc_aligned(param_bytes(p))))
                rc = fail(c, "out of memory for parameter '%s'", p->t.name);
            p->owned = true;
            if (p->data)
                memset(p->data, 0, (size_t)param_bytes(p));
        } else {
            rc = fail(c, "%s: parameter '%s' is missing", path, p->t.name);
        }
    }
    const JsonValue *meta = rc == 0 ? json_get(h, "__metadata__") : NULL;
    const JsonValue *step = meta && meta->kind == JSON_OBJ ? json_get(meta, "step") : NULL;
    c->step = step && step->kind == JSON_STR ? strtoll(step->s, NULL, 10) : 0;
    arena_free(a);
    return rc;
}

static int file_params(RtAot *c, const char *path)
{
    size_t len;
    unsigned char *buf = load_file(c, path, &len);
    if (!buf)
        return -1;
    int rc = params_from(c, path, buf, len);
    xfree(buf);
    return rc;
}

/* ---- the context ---- */

static int bind(RtAot *c)
{
    for (int i = 0; i < c->nfns; i++) {
        AotFn *f = &c->fns[i];
        if (!(f->ws = alloc_aligned(f->ws_bytes)))
            return fail(c, "out of memory for the workspace of %s (%lld bytes)", f->name, (long long)f->ws_bytes);
        for (int j = 0; j < f->nbufs; j++) {
            const AotBuf *b = &f->bufs[j];
            if (b->kind == BUF_PARAM)
                f->table[j] = c->params[b->param].data;
            else if (b->kind == BUF_TEMP)
                f->table[j] = (char *)f->ws + b->off;
        }
        if (f->lr >= 0)
            f->table[f->lr] = &c->lr;
    }
    return 0;
}

RtAot *rt_aot_new(const RtAotModel *m, const char *weights_file, char *err, size_t errlen)
{
    RtAot *c = calloc(1, sizeof *c);
    int rc = -1;
    if (c) {
        c->m = m;
        if (!m || m->abi != RT_AOT_ABI)
            rc = fail(c, "the object was compiled for another version of libmodelc-rt (interface %u, this is %d)",
                      m ? m->abi : 0, RT_AOT_ABI);
        else if (!parse(c))
            rc = fail(c, "the object's model description is damaged");
        else
            rc = weights_file ? file_params(c, weights_file) : embedded_params(c);
        if (rc == 0)
            rc = bind(c);
        if (rc == 0)
            rc = rt_aot_set_threads(c, 0);
    }
    if (rc == 0)
        return c;
    if (err && errlen)
        snprintf(err, errlen, "%s", c ? c->err : "out of memory");
    rt_aot_free(c);
    return NULL;
}

void rt_aot_free(RtAot *c)
{
    if (!c)
        return;
    for (int i = 0; c->params && i < c->nparams; i++)
        if (c->params[i].owned)
            xfree(c->params[i].data);
    for (int i = 0; c->fns && i < c->nfns; i++) {
        AotFn *f = &c->fns[i];
        xfree(f->bufs);
        xfree(f->args);
        xfree(f->outs);
        xfree(f->table);
        xfree(f->ws);
    }
    rt_pool_free(c->pool);
    xfree(c->params);
    xfree(c->fns);
    xfree(c->text);
    xfree(c);
}

const char *rt_aot_error(const RtAot *c)
{
    return c ? c->err : "no context";
}

int rt_aot_set_threads(RtAot *c, int threads)
{
    if (threads < 0)
        return fail(c, "threads must not be negative, got %d", threads);
    rt_pool_free(c->pool);
    c->pool = NULL;
    c->threads = threads;
    if (rt_threads_resolve(threads) > 1)
        c->pool = rt_pool_new(rt_threads_resolve(threads));
    return 0;
}

static double out_scalar(const AotOut *o, const void *p)
{
    return o->t.dt == 1 ? *(const double *)p : o->t.dt == 2 ? *(const int32_t *)p : *(const float *)p;
}

int rt_aot_run(RtAot *c, int fn, int64_t n, const void *const *inputs, double lr, void *const *outputs)
{
    c->err[0] = 0;
    if (fn < 0 || fn >= c->nfns)
        return fail(c, "no function %d (the model has %d)", fn, c->nfns);
    AotFn *f = &c->fns[fn];
    if (c->fixed && n != c->batch)
        return fail(c, "%s: the batch is %lld, but the model was compiled for batch %lld", f->name, (long long)n,
                    (long long)c->batch);
    if (n < f->min_n || n > c->batch)
        return fail(c, "%s: batch %lld is outside %lld..%lld (compiled with --batch-max %lld%s)", f->name,
                    (long long)n, (long long)f->min_n, (long long)c->batch, (long long)c->batch,
                    f->min_n ? "; the model slices the batch axis" : "");
    for (int i = 0; i < f->nargs; i++) {
        const AotBuf *b = &f->bufs[f->args[i]];
        if (!inputs[i] && numel(&b->t, n) > 0)
            return fail(c, "%s: input '%s' is NULL", f->name, b->t.name);
        f->table[f->args[i]] = (void *)inputs[i];
    }
    if (f->lr >= 0) {
        if (f->bufs[f->lr].t.dt == 1)
            c->lr.f64 = lr;
        else
            c->lr.f32 = (float)lr;
    }
    RtCtx ctx;
    rt_ctx_init(&ctx, c->threads);
    ctx.seed = c->seed;
    ctx.step = (uint64_t)c->step;
    ctx.pool = c->pool;
    rt_ctx_apply_threads(&ctx);
    c->m->entries[fn](&ctx, n, f->table);
    if (ctx.fault_step)
        return fail(c, "%s: index %g is not an integer in [0, %lld), the range of the gathered axis (kernel %d)", f->name,
                    ctx.fault_value, (long long)ctx.fault_bound, (int)ctx.fault_step - 1);
    double loss = 0;
    for (int i = 0; i < f->nouts; i++) {
        const AotOut *o = &f->outs[i];
        size_t bytes = (size_t)(numel(&o->t, n) * dt_size(o->t.dt));
        if (o->loss)
            loss = out_scalar(o, f->table[o->buf]);
        if (outputs[i] && bytes)
            memcpy(outputs[i], f->table[o->buf], bytes);
    }
    if (!f->train)
        return 0;
    if (!isfinite(loss))
        return fail(c, "loss is %s at step %lld", isnan(loss) ? "NaN" : "infinite", (long long)c->step + 1);
    c->step++;
    return 0;
}

void *rt_aot_param(RtAot *c, const char *name, int *dtype, int64_t *count)
{
    for (int i = 0; i < c->nparams; i++)
        if (strcmp(c->params[i].t.name, name) == 0) {
            if (dtype)
                *dtype = c->params[i].t.dt;
            if (count)
                *count = numel(&c->params[i].t, 0);
            return c->params[i].data;
        }
    return NULL;
}

int rt_aot_nparams(const RtAot *c)
{
    return c->nparams;
}

const char *rt_aot_param_name(const RtAot *c, int i)
{
    return i >= 0 && i < c->nparams ? c->params[i].t.name : NULL;
}

int64_t rt_aot_step(const RtAot *c)
{
    return c->step;
}

int rt_aot_fn(const RtAot *c, const char *name)
{
    for (int i = 0; i < c->nfns; i++)
        if (strcmp(c->fns[i].name, name) == 0)
            return i;
    return -1;
}

int rt_aot_ninputs(const RtAot *c, int fn)
{
    return fn >= 0 && fn < c->nfns ? c->fns[fn].nargs : 0;
}

int rt_aot_noutputs(const RtAot *c, int fn)
{
    return fn >= 0 && fn < c->nfns ? c->fns[fn].nouts : 0;
}

static const char *describe(const AotTensor *t, int *dtype, int *rank, const int64_t **dims)
{
    *dtype = t->dt;
    *rank = t->rank;
    *dims = t->dims;
    return t->name;
}

const char *rt_aot_input(const RtAot *c, int fn, int i, int *dtype, int *rank, const int64_t **dims)
{
    if (fn < 0 || fn >= c->nfns || i < 0 || i >= c->fns[fn].nargs)
        return NULL;
    return describe(&c->fns[fn].bufs[c->fns[fn].args[i]].t, dtype, rank, dims);
}

const char *rt_aot_output(const RtAot *c, int fn, int i, int *dtype, int *rank, const int64_t **dims)
{
    if (fn < 0 || fn >= c->nfns || i < 0 || i >= c->fns[fn].nouts)
        return NULL;
    return describe(&c->fns[fn].outs[i].t, dtype, rank, dims);
}
