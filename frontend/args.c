/* Call arguments: matching positional and keyword arguments against a
 * function's parameter list, and converting argument expressions to the
 * kinds the built-ins need (integers, numbers, booleans, words, axes,
 * shapes, dtypes, initializers), each with a precise error. */
#include "fe.h"

#include <string.h>

/* ---- "did you mean" ---- */

static int edit_distance(const char *a, const char *b)
{
    int n = (int)strlen(a), m = (int)strlen(b);
    if (n > 64 || m > 64)
        return 99;
    int prev[65], cur[65];
    for (int j = 0; j <= m; j++)
        prev[j] = j;
    for (int i = 1; i <= n; i++) {
        cur[0] = i;
        for (int j = 1; j <= m; j++) {
            int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            int del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof(int) * (size_t)(m + 1));
    }
    return prev[m];
}

const char *fe_closest(const char *s, const char *const *cands, int n)
{
    const char *best = NULL;
    int bd = 3;
    int limit = (int)strlen(s) <= 3 ? 1 : 2;
    for (int i = 0; i < n; i++) {
        int dist = edit_distance(s, cands[i]);
        if (dist <= limit && dist < bd) {
            bd = dist;
            best = cands[i];
        }
    }
    return best;
}

/* ---- binding ---- */

const char *fe_param_name(const ParamSpec *p, char *buf, size_t n)
{
    const char *bar = strchr(p->name, '|');
    size_t len = bar ? (size_t)(bar - p->name) : strlen(p->name);
    if (len >= n)
        len = n - 1;
    memcpy(buf, p->name, len);
    buf[len] = 0;
    return buf;
}

static bool spec_matches(const ParamSpec *p, const char *kw)
{
    size_t k = strlen(kw);
    for (const char *s = p->name; *s;) {
        const char *bar = strchr(s, '|');
        size_t len = bar ? (size_t)(bar - s) : strlen(s);
        if (len == k && strncmp(s, kw, k) == 0)
            return true;
        if (!bar)
            break;
        s = bar + 1;
    }
    return false;
}

static void unknown_keyword(FeCtx *c, const char *fn, const Arg *a, const ParamSpec *spec,
                            int nspec)
{
    const char *names[FE_MAX_ARGS];
    char bufs[FE_MAX_ARGS][32];
    for (int i = 0; i < nspec; i++)
        names[i] = fe_param_name(&spec[i], bufs[i], sizeof bufs[i]);
    const char *hint = fe_closest(a->kw, names, nspec);
    if (hint)
        fe_error(c, a->kwloc, a->kwspan, "%s() has no argument named '%s'; did you mean '%s'?", fn,
                 a->kw, hint);
    else
        fe_error(c, a->kwloc, a->kwspan, "%s() has no argument named '%s'", fn, a->kw);
}

static int count_required(const ParamSpec *spec, int nspec)
{
    int r = 0;
    for (int i = 0; i < nspec; i++)
        r += spec[i].required;
    return r;
}

static void arity_error(FeCtx *c, const Expr *e, const char *fn, const ParamSpec *spec, int nspec,
                        SrcLoc at, int span)
{
    int req = count_required(spec, nspec);
    if (req == nspec)
        fe_error(c, at, span, "%s() takes %d argument%s, got %d", fn, nspec, nspec == 1 ? "" : "s",
                 e->nargs);
    else
        fe_error(c, at, span, "%s() takes at most %d arguments, got %d", fn, nspec, e->nargs);
}

bool fe_bind_args(FeCtx *c, const Expr *e, const char *fn, const ParamSpec *spec, int nspec,
                  CallArgs *out)
{
    MC_ASSERT(nspec <= FE_MAX_ARGS);
    memset(out, 0, sizeof *out);
    out->call = e;
    out->fn = fn;
    out->spec = spec;
    out->nspec = nspec;
    int npos = 0;
    for (int i = 0; i < e->nargs; i++) {
        const Arg *a = &e->args[i];
        int slot = -1;
        if (!a->kw) {
            if (npos >= nspec) {
                arity_error(c, e, fn, spec, nspec, a->val->start, 1);
                return false;
            }
            slot = npos++;
        } else {
            for (int k = 0; k < nspec && slot < 0; k++)
                if (spec_matches(&spec[k], a->kw))
                    slot = k;
            if (slot < 0) {
                unknown_keyword(c, fn, a, spec, nspec);
                return false;
            }
            if (out->v[slot]) {
                char b[32];
                fe_error(c, a->kwloc, a->kwspan, "%s() got two values for argument '%s'", fn,
                         fe_param_name(&spec[slot], b, sizeof b));
                return false;
            }
        }
        out->v[slot] = a->val;
    }
    for (int k = 0; k < nspec; k++) {
        if (spec[k].required && !out->v[k]) {
            char b[32];
            if (count_required(spec, nspec) == nspec && e->nargs < nspec)
                arity_error(c, e, fn, spec, nspec, e->loc, e->span);
            else
                fe_error(c, e->loc, e->span, "%s() is missing its argument '%s'", fn,
                         fe_param_name(&spec[k], b, sizeof b));
            return false;
        }
    }
    return true;
}

SrcLoc fe_arg_loc(CallArgs *a, int i)
{
    return a->v[i] ? a->v[i]->start : a->call->loc;
}

static void arg_error(FeCtx *c, CallArgs *a, int i, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void arg_error(FeCtx *c, CallArgs *a, int i, const char *fmt, ...)
{
    char b[32];
    StrBuf s;
    sb_init(&s);
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&s, fmt, ap);
    va_end(ap);
    const Expr *e = a->v[i];
    bool simple = e->k != E_BINARY && e->k != E_INDEX && e->k != E_UNARY;
    fe_error(c, e->start, simple ? e->span : 1, "argument '%s' of %s() %s",
             fe_param_name(&a->spec[i], b, sizeof b), a->fn, s.s);
    sb_free(&s);
}

/* ---- scalar arguments ---- */

static bool const_num_quiet(FeCtx *c, const Expr *e, Val *out)
{
    if (e->k == E_STR || e->k == E_BOOL || e->k == E_LIST || e->k == E_NONE || e->k == E_CALL)
        return false;
    return fe_const_num(c, e, out);
}

bool fe_arg_int(FeCtx *c, CallArgs *a, int i, int64_t def, int64_t lo, int64_t hi, int64_t *out)
{
    *out = def;
    if (!a->v[i])
        return true;
    Val v;
    int errs = c->d->nerrors;
    if (!const_num_quiet(c, a->v[i], &v) || !v.is_int) {
        if (c->d->nerrors == errs)
            arg_error(c, a, i, "must be an integer");
        return false;
    }
    if (v.i < lo || v.i > hi) {
        if (hi == INT32_MAX)
            arg_error(c, a, i, "must be at least %lld, got %lld", (long long)lo, (long long)v.i);
        else
            arg_error(c, a, i, "must be between %lld and %lld, got %lld", (long long)lo,
                      (long long)hi, (long long)v.i);
        return false;
    }
    *out = v.i;
    return true;
}

bool fe_arg_num(FeCtx *c, CallArgs *a, int i, double def, double *out)
{
    *out = def;
    if (!a->v[i])
        return true;
    Val v;
    int errs = c->d->nerrors;
    if (!const_num_quiet(c, a->v[i], &v)) {
        if (c->d->nerrors == errs)
            arg_error(c, a, i, "must be a number");
        return false;
    }
    *out = v.num;
    return true;
}

bool fe_arg_bool(FeCtx *c, CallArgs *a, int i, bool def, bool *out)
{
    *out = def;
    if (!a->v[i])
        return true;
    if (a->v[i]->k != E_BOOL) {
        arg_error(c, a, i, "must be true or false");
        return false;
    }
    *out = a->v[i]->ival != 0;
    return true;
}

static const char *word_of(const Expr *e)
{
    if (e->k == E_STR || e->k == E_NAME)
        return e->str;
    if (e->k == E_NONE)
        return "none";
    return NULL;
}

bool fe_arg_word(FeCtx *c, CallArgs *a, int i, const char *const *words, int def, int *out)
{
    *out = def;
    if (!a->v[i])
        return true;
    const char *w = word_of(a->v[i]);
    for (int k = 0; w && words[k]; k++)
        if (strcmp(w, words[k]) == 0) {
            *out = k;
            return true;
        }
    StrBuf b;
    sb_init(&b);
    int n = 0;
    for (int k = 0; words[k]; k++, n++)
        sb_printf(&b, "%s\"%s\"", k == 0 ? "" : words[k + 1] ? ", " : " or ", words[k]);
    const char *hint = w ? fe_closest(w, words, n) : NULL;
    if (hint)
        arg_error(c, a, i, "got \"%s\"; did you mean \"%s\"? (it must be %s)", w, hint, b.s);
    else if (w)
        arg_error(c, a, i, "must be %s, got \"%s\"", b.s, w);
    else
        arg_error(c, a, i, "must be %s", b.s);
    sb_free(&b);
    return false;
}

bool fe_arg_str(FeCtx *c, CallArgs *a, int i, const char **out)
{
    *out = NULL;
    if (!a->v[i])
        return true;
    if (a->v[i]->k != E_STR) {
        arg_error(c, a, i, "must be a string");
        return false;
    }
    *out = a->v[i]->str;
    return true;
}

Node *fe_arg_tensor(FeCtx *c, CallArgs *a, int i, DType like)
{
    const Expr *e = a->v[i];
    if (!e)
        return NULL;
    if (e->k == E_STR || e->k == E_BOOL || e->k == E_NONE) {
        arg_error(c, a, i, "must be a tensor");
        return NULL;
    }
    return fe_tensor(c, e, like);
}

bool fe_arg_pair(FeCtx *c, CallArgs *a, int i, int def, int out[2])
{
    out[0] = out[1] = def;
    const Expr *e = a->v[i];
    if (!e)
        return true;
    const Expr *items[2] = {e, e};
    if (e->k == E_LIST) {
        if (e->nitems != 2) {
            arg_error(c, a, i, "must be one integer or a list of two, got %d item%s", e->nitems,
                      e->nitems == 1 ? "" : "s");
            return false;
        }
        items[0] = e->items[0];
        items[1] = e->items[1];
    }
    for (int k = 0; k < 2; k++) {
        Val v;
        int errs = c->d->nerrors;
        if (!const_num_quiet(c, items[k], &v) || !v.is_int || v.i < 1 || v.i > 1 << 20) {
            if (c->d->nerrors == errs)
                arg_error(c, a, i, "must be a positive integer or a list of two");
            return false;
        }
        out[k] = (int)v.i;
    }
    return true;
}

bool fe_arg_padding(FeCtx *c, CallArgs *a, int i, int *mode, int pads[4])
{
    static const char *const words[] = {"valid", "same", NULL};
    const Expr *e = a->v[i];
    memset(pads, 0, 4 * sizeof *pads);
    if (!e || e->k != E_LIST)
        return fe_arg_word(c, a, i, words, 0, mode);
    *mode = 2;
    if (e->nitems != 4) {
        arg_error(c, a, i, "must be \"valid\", \"same\" or a list of four amounts [top, bottom, left, "
                           "right], got %d item%s",
                  e->nitems, e->nitems == 1 ? "" : "s");
        return false;
    }
    for (int k = 0; k < 4; k++) {
        Val v;
        int errs = c->d->nerrors;
        if (!const_num_quiet(c, e->items[k], &v) || !v.is_int || v.i < 0 || v.i > 1 << 20) {
            if (c->d->nerrors == errs)
                arg_error(c, a, i, "must hold integer amounts from 0 to %d", 1 << 20);
            return false;
        }
        pads[k] = (int)v.i;
    }
    return true;
}

/* ---- axes ---- */

bool fe_norm_axis(FeCtx *c, const Expr *e, int64_t ax, const Node *x, int *out)
{
    int r = x->shape.rank;
    if (ax < -r || ax >= r) {
        char t[128];
        fe_error(c, e->start, e->k == E_NUM ? e->span : 1, "axis %lld is out of range for %s",
                 (long long)ax, fe_type_str(x, t, sizeof t));
        return false;
    }
    *out = (int)(ax < 0 ? ax + r : ax);
    return true;
}

bool fe_arg_axes(FeCtx *c, CallArgs *a, int i, const Node *x, int *axes, int *naxes)
{
    const Expr *e = a->v[i];
    *naxes = 0;
    if (!e || e->k == E_NONE) {
        for (int k = 0; k < x->shape.rank; k++)
            axes[(*naxes)++] = k;
        return true;
    }
    const Expr *one[1] = {e};
    const Expr *const *items = e->k == E_LIST ? (const Expr *const *)e->items : one;
    int n = e->k == E_LIST ? e->nitems : 1;
    if (n > x->shape.rank) {
        arg_error(c, a, i, "lists %d axes but the operand has rank %d", n, x->shape.rank);
        return false;
    }
    for (int k = 0; k < n; k++) {
        Val v;
        int errs = c->d->nerrors;
        if (!const_num_quiet(c, items[k], &v) || !v.is_int) {
            if (c->d->nerrors == errs)
                arg_error(c, a, i, "must be an integer axis or a list of axes");
            return false;
        }
        if (!fe_norm_axis(c, items[k], v.i, x, &axes[k]))
            return false;
        for (int j = 0; j < k; j++)
            if (axes[j] == axes[k]) {
                fe_error_expr(c, items[k], "axis %lld is repeated", (long long)v.i);
                return false;
            }
    }
    *naxes = n;
    return true;
}

/* ---- shapes ---- */

static bool dim_value(FeCtx *c, const Expr *e, int k, bool allow_infer, int64_t *out)
{
    if (e->k == E_NAME && strcmp(e->str, "N") == 0) {
        if (k != 0) {
            fe_error_expr(c, e, "the batch dimension N may only be the first dimension");
            return false;
        }
        *out = IR_DIM_N;
        return true;
    }
    if (e->k == E_NONE) {
        fe_error_expr(c, e, "write the batch dimension as N, not None");
        return false;
    }
    Val v;
    int errs = c->d->nerrors;
    if (!const_num_quiet(c, e, &v) || !v.is_int) {
        if (c->d->nerrors == errs)
            fe_error_expr(c, e, "a dimension must be an integer or N");
        return false;
    }
    if (v.i == -1 && allow_infer) {
        *out = -2;
        return true;
    }
    if (v.i < 0) {
        fe_error(c, e->start, e->k == E_NUM ? e->span : 1, "dimension %lld must be positive",
                 (long long)v.i);
        return false;
    }
    *out = v.i;
    return true;
}

bool fe_shape_list(FeCtx *c, const Expr *e, Shape *out, int *infer, bool allow_infer)
{
    *out = ir_shape0();
    *infer = -1;
    if (e->k != E_LIST) {
        fe_error(c, e->start, 1, "expected a shape such as [N, 10]");
        return false;
    }
    if (e->nitems > IR_MAXRANK) {
        fe_error_expr(c, e->items[IR_MAXRANK], "too many dimensions: at most %d are supported",
                      IR_MAXRANK);
        return false;
    }
    bool ok = true;
    for (int k = 0; k < e->nitems; k++) {
        int64_t d;
        if (!dim_value(c, e->items[k], k, allow_infer, &d)) {
            ok = false;
            continue;
        }
        if (d == -2) {
            if (*infer >= 0) {
                fe_error_expr(c, e->items[k], "only one dimension can be -1");
                ok = false;
            }
            *infer = k;
            d = 1;
        }
        out->d[k] = d;
    }
    out->rank = e->nitems;
    if (ok && !ir_shape_valid(out)) {
        char t[128];
        fe_error(c, e->loc, 1, "shape %s has too many elements (the limit is " IR_MAX_ELEMS_STR ")",
                 ir_shape_str(out, t, sizeof t));
        return false;
    }
    return ok;
}

/* ---- dtypes ---- */

bool fe_dtype_name(const char *s, DType *out)
{
    static const struct {
        const char *name;
        DType t;
    } names[] = {{"f32", DT_F32},     {"f64", DT_F64},     {"i32", DT_I32},
                 {"float32", DT_F32}, {"float64", DT_F64}, {"int32", DT_I32}};
    for (int i = 0; i < ARRAY_LEN(names); i++)
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].t;
            return true;
        }
    return false;
}

bool fe_arg_dtype(FeCtx *c, CallArgs *a, int i, DType def, DType *out)
{
    *out = def;
    if (!a->v[i])
        return true;
    const char *w = word_of(a->v[i]);
    if (w && fe_dtype_name(w, out))
        return true;
    arg_error(c, a, i, "must be a dtype: f32, f64 or i32");
    return false;
}

/* ---- initializers ---- */

static const ParamSpec const_args[] = {{"value", A_NUM, true}};
static const ParamSpec normal_args[] = {{"mean", A_NUM, false}, {"std|stddev", A_NUM, false}};
static const ParamSpec uniform_args[] = {{"lo|minval", A_NUM, false}, {"hi|maxval", A_NUM, false}};

static bool init_args(FeCtx *c, const Expr *e, const char *name, Init *out)
{
    CallArgs a;
    switch (out->kind) {
    case INIT_CONSTANT:
        return fe_bind_args(c, e, name, const_args, 1, &a) && fe_arg_num(c, &a, 0, 0, &out->a);
    case INIT_NORMAL:
    case INIT_TRUNC_NORMAL:
        if (!fe_bind_args(c, e, name, normal_args, 2, &a) || !fe_arg_num(c, &a, 0, 0, &out->a) ||
            !fe_arg_num(c, &a, 1, 0.05, &out->b))
            return false;
        if (out->b < 0) {
            arg_error(c, &a, 1, "must not be negative");
            return false;
        }
        return true;
    case INIT_UNIFORM:
        if (!fe_bind_args(c, e, name, uniform_args, 2, &a) ||
            !fe_arg_num(c, &a, 0, -0.05, &out->a) || !fe_arg_num(c, &a, 1, 0.05, &out->b))
            return false;
        if (out->a > out->b) {
            fe_error_expr(c, e, "uniform(): lo %g is greater than hi %g", out->a, out->b);
            return false;
        }
        return true;
    default:
        if (e->nargs) {
            fe_error(c, e->args[0].val->start, 1, "%s() takes no arguments", name);
            return false;
        }
        return true;
    }
}

bool fe_init(FeCtx *c, const Expr *e, Init *out)
{
    memset(out, 0, sizeof *out);
    if (e->k == E_NONE) {
        out->kind = INIT_NONE;
        return true;
    }
    const char *name = e->k == E_CALL || e->k == E_NAME || e->k == E_STR ? e->str : NULL;
    if (!name) {
        fe_error(c, e->start, 1, "expected an initializer such as zeros or normal(0, 0.01)");
        return false;
    }
    int k = ir_init_from_name(name);
    if (k < 0 || k == INIT_NONE) {
        static const char *const all[] = {
            "zeros", "ones", "constant", "normal", "uniform", "truncated_normal", "glorot_uniform",
            "glorot_normal", "xavier_uniform", "xavier_normal", "he_uniform", "he_normal",
            "lecun_normal", "lecun_uniform"};
        const char *hint = fe_closest(name, all, ARRAY_LEN(all));
        if (hint)
            fe_error_expr(c, e, "unknown initializer '%s'; did you mean '%s'?", name, hint);
        else
            fe_error_expr(c, e, "unknown initializer '%s'", name);
        return false;
    }
    out->kind = (InitKind)k;
    if (e->k != E_CALL) {
        if (k == INIT_CONSTANT) {
            fe_error_expr(c, e, "constant needs a value: constant(0.1)");
            return false;
        }
        Expr call = *e;
        call.nargs = 0;
        return init_args(c, &call, name, out);
    }
    return init_args(c, e, name, out);
}

bool fe_arg_init(FeCtx *c, CallArgs *a, int i, InitKind def, Init *out)
{
    memset(out, 0, sizeof *out);
    out->kind = def;
    return !a->v[i] || fe_init(c, a->v[i], out);
}
