/* Lowering of a parsed model to the graph IR: the entry point
 * fe_compile, names and their bindings, and one function per statement
 * kind (model, input, param, assignment, metric, output, train), plus the
 * checks made once the whole file is lowered (loss, default output). */
#include "fe.h"

#include <stdlib.h>
#include <string.h>

/* ---- diagnostics ---- */

#define FE_DIAG_FN(fname, lvl)                                                             \
    void fname(FeCtx *c, SrcLoc loc, int span, const char *fmt, ...)                       \
    {                                                                                      \
        va_list ap;                                                                        \
        va_start(ap, fmt);                                                                 \
        diag_add(c->d, lvl, loc, span, fmt, ap);                                           \
        va_end(ap);                                                                        \
    }
FE_DIAG_FN(fe_error, DIAG_ERROR)
FE_DIAG_FN(fe_warning, DIAG_WARNING)

void fe_note(FeCtx *c, SrcLoc loc, int span, const char *fmt, ...)
{
    if (c->d->max_errors > 0 && c->d->nerrors > c->d->max_errors)
        return; /* the error it explains was not recorded */
    va_list ap;
    va_start(ap, fmt);
    diag_add(c->d, DIAG_NOTE, loc, span, fmt, ap);
    va_end(ap);
}

void fe_error_expr(FeCtx *c, const Expr *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_add(c->d, DIAG_ERROR, e->loc, e->span, fmt, ap);
    va_end(ap);
}

/* Where to point at a whole expression: its first token. */
static void error_at_start(FeCtx *c, const Expr *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void error_at_start(FeCtx *c, const Expr *e, const char *fmt, ...)
{
    bool simple = e->k == E_CALL || e->k == E_NAME || e->k == E_NUM;
    va_list ap;
    va_start(ap, fmt);
    diag_add(c->d, DIAG_ERROR, e->start, simple ? e->span : 1, fmt, ap);
    va_end(ap);
}

/* ---- names ---- */

Binding *fe_lookup(FeCtx *c, const char *name)
{
    int i = strmap_get(&c->bindings, name);
    return i >= 0 ? &c->b[i] : NULL;
}

void fe_bind(FeCtx *c, const char *name, BindKind k, Val v, SrcLoc loc)
{
    Binding *b = fe_lookup(c, name);
    if (!b) {
        Binding nb = {name, k, v, loc};
        strmap_put(&c->bindings, name, c->nb);
        VEC_PUSH(c->b, c->nb, c->capb, nb);
        return;
    }
    b->kind = k;
    b->v = v;
    b->loc = loc;
}

static const char *kind_word(BindKind k)
{
    return k == B_INPUT ? "input" : k == B_PARAM ? "parameter" : "value";
}

static bool is_reserved(const char *name)
{
    static const char *const words[] = {"N", "true", "false", "True", "False", "none", "None"};
    for (int i = 0; i < ARRAY_LEN(words); i++)
        if (strcmp(name, words[i]) == 0)
            return true;
    return false;
}

/* A name a statement may introduce: not reserved, no '.', and (for
 * input/param) not used before. */
static bool check_new_name(FeCtx *c, const Stmt *s, bool declaration)
{
    if (is_reserved(s->name)) {
        fe_error(c, s->nameloc, s->namespan, "'%s' is reserved and cannot be %s", s->name,
                 strcmp(s->name, "N") == 0 ? "bound (it is the batch dimension)" : "bound");
        return false;
    }
    if (strchr(s->name, '.')) {
        fe_error(c, s->nameloc, s->namespan,
                 "'%s': names cannot contain '.' (dotted names refer to layer parameters)",
                 s->name);
        return false;
    }
    Binding *b = fe_lookup(c, s->name);
    if (b && (declaration || b->kind != B_VALUE)) {
        if (declaration)
            fe_error(c, s->nameloc, s->namespan, "redefinition of '%s'", s->name);
        else
            fe_error(c, s->nameloc, s->namespan, "cannot assign to %s '%s'; use a new name",
                     kind_word(b->kind), s->name);
        fe_note(c, b->loc, 1, "'%s' was declared here", s->name);
        return false;
    }
    return true;
}

/* ---- types ---- */

static bool lower_type(FeCtx *c, const TypeAst *ty, DType *dt, Shape *sh, bool allow_n)
{
    bool ok = fe_dtype_name(ty->dtype, dt);
    if (!ok)
        fe_error(c, ty->dtloc, ty->dtspan, "unknown dtype '%s' (expected f32, f64 or i32)",
                 ty->dtype);
    Expr list;
    memset(&list, 0, sizeof list);
    list.k = E_LIST;
    list.loc = list.start = ty->loc;
    list.span = 1;
    list.items = ty->dims;
    list.nitems = ty->ndims;
    int infer;
    if (!fe_shape_list(c, &list, sh, &infer, false))
        return false;
    if (!allow_n && ir_shape_has_n(sh)) {
        for (int i = 0; i < ty->ndims; i++)
            if (ty->dims[i]->k == E_NAME)
                fe_error_expr(c, ty->dims[i], "parameter shapes cannot contain the batch dimension N");
        return false;
    }
    return ok;
}

/* ---- statements ---- */

static void lower_input(FeCtx *c, const Stmt *s)
{
    DType dt;
    Shape sh;
    if (!check_new_name(c, s, true)) {
        return;
    }
    if (!lower_type(c, &s->type, &dt, &sh, true)) {
        fe_bind(c, s->name, B_INPUT, fe_err_val(), s->nameloc);
        return;
    }
    Node *n = ir_input(c->g, s->name, dt, sh, s->nameloc);
    fe_bind(c, s->name, B_INPUT, fe_tensor_val(n), s->nameloc);
}

static bool param_trainable(FeCtx *c, const Stmt *s, bool *out)
{
    *out = !s->frozen;
    if (!s->trainable)
        return true;
    if (s->frozen) {
        fe_error(c, s->flagloc, 9, "give either 'frozen' or 'trainable=...', not both");
        return false;
    }
    if (s->trainable->k != E_BOOL) {
        fe_error_expr(c, s->trainable, "'trainable' must be true or false");
        return false;
    }
    *out = s->trainable->ival != 0;
    return true;
}

static void lower_param(FeCtx *c, const Stmt *s)
{
    DType dt;
    Shape sh;
    if (!check_new_name(c, s, true))
        return;
    bool ok = lower_type(c, &s->type, &dt, &sh, false);
    if (ok && !ir_dtype_is_float(dt)) {
        fe_error(c, s->type.dtloc, s->type.dtspan, "parameters must be f32 or f64, not %s",
                 ir_dtype_name(dt));
        ok = false;
    }
    Init init = {sh.rank >= 2 ? INIT_GLOROT_UNIFORM : INIT_ZEROS, 0, 0};
    if (s->init && !fe_init(c, s->init, &init))
        ok = false;
    bool trainable;
    if (!param_trainable(c, s, &trainable))
        ok = false;
    if (!ok) {
        fe_bind(c, s->name, B_PARAM, fe_err_val(), s->nameloc);
        return;
    }
    Node *n = ir_param(c->g, s->name, dt, sh, init, trainable, ROLE_WEIGHT, s->nameloc);
    strmap_put(&c->params, n->a.name, n->id);
    fe_bind(c, s->name, B_PARAM, fe_tensor_val(n), s->nameloc);
}

static void set_label(FeCtx *c, Val v, const char *name)
{
    if (v.k != V_TENSOR || v.n->label || ir_ops[v.n->op].cls == OPC_LEAF)
        return;
    v.n->label = arena_strdup(c->g->arena, name);
}

/* a, b, c = call(...): the call gives as many values (a recurrent layer
 * with return_state=true), bound in order. */
static void lower_multi_assign(FeCtx *c, const Stmt *s)
{
    int n = 1 + s->nmore;
    bool ok = true;
    for (int i = 0; i < n; i++) {
        Stmt one = *s;
        if (i > 0) {
            one.name = s->more[i - 1].name;
            one.nameloc = s->more[i - 1].loc;
            one.namespan = s->more[i - 1].span;
        }
        for (int j = 0; ok && j < i; j++)
            if (strcmp(j ? s->more[j - 1].name : s->name, one.name) == 0) {
                fe_error(c, one.nameloc, one.namespan, "'%s' is assigned twice in one statement", one.name);
                ok = false;
            }
        ok = ok && check_new_name(c, &one, false);
    }
    c->multi_expr = s->val;
    c->nmulti = 0;
    Val v = ok ? fe_expr(c, s->val) : fe_err_val();
    c->multi_expr = NULL;
    if (v.k != V_ERR && c->nmulti != n) {
        if (c->nmulti == 0)
            error_at_start(c, s->val,
                           "assigning %d names needs a call that gives %d values (lstm, gru or simple_rnn "
                           "with return_state=true)", n, n);
        else
            error_at_start(c, s->val, "this call gives %d values (the output and the final state%s), not %d",
                           c->nmulti, c->nmulti > 2 ? "s h and c" : " h", n);
        v = fe_err_val();
    }
    for (int i = 0; i < n; i++) {
        const char *name = i ? s->more[i - 1].name : s->name;
        Val vi = v.k == V_ERR ? v : fe_tensor_val(c->multi[i]);
        if (v.k != V_ERR)
            set_label(c, vi, name);
        if (v.k != V_ERR || (!fe_lookup(c, name) && !is_reserved(name)))
            fe_bind(c, name, B_VALUE, vi, i ? s->more[i - 1].loc : s->nameloc);
    }
}

static void lower_assign(FeCtx *c, const Stmt *s)
{
    if (s->nmore) {
        lower_multi_assign(c, s);
        return;
    }
    if (!check_new_name(c, s, false)) {
        if (!fe_lookup(c, s->name) && !is_reserved(s->name))
            fe_bind(c, s->name, B_VALUE, fe_err_val(), s->nameloc);
        return;
    }
    Val v = fe_expr(c, s->val);
    set_label(c, v, s->name);
    fe_bind(c, s->name, B_VALUE, v, s->nameloc);
}

/* Value and metric outputs are named by statements (no '.', unlike the
 * update outputs layers add); c->outputs holds their names. */
static bool output_name_taken(FeCtx *c, const Stmt *s)
{
    if (strmap_get(&c->outputs, s->name) < 0)
        return false;
    fe_error(c, s->nameloc, s->namespan, "duplicate output name '%s'", s->name);
    return true;
}

static void add_named_output(FeCtx *c, OutKind k, const char *name, Node *v)
{
    ir_add_output(c->g, k, name, v, NULL, false);
    strmap_put(&c->outputs, name, c->g->nouts - 1);
}

static bool require_scalar(FeCtx *c, const Expr *e, Val v, const char *what)
{
    if (v.k == V_ERR)
        return false;
    if (v.k != V_TENSOR) {
        error_at_start(c, e, "%s must be a tensor expression, not a constant number", what);
        return false;
    }
    char buf[128];
    if (v.n->shape.rank != 0 || !ir_dtype_is_float(v.n->dt)) {
        error_at_start(c, e, "%s must be a floating-point scalar, got %s; reduce it with mean(...) or sum(...)",
                       what, fe_type_str(v.n, buf, sizeof buf));
        return false;
    }
    return true;
}

static void lower_metric(FeCtx *c, const Stmt *s)
{
    if (!check_new_name(c, s, false))
        return;
    Val v = fe_expr(c, s->val);
    fe_bind(c, s->name, B_VALUE, v, s->nameloc);
    const char *what = arena_printf(c->a, "metric '%s'", s->name);
    if (!require_scalar(c, s->val, v, what) || output_name_taken(c, s))
        return;
    set_label(c, v, s->name);
    add_named_output(c, OUT_METRIC, s->name, v.n);
}

static void lower_output(FeCtx *c, const Stmt *s)
{
    Val v;
    if (s->val) {
        if (!check_new_name(c, s, false))
            return;
        v = fe_expr(c, s->val);
        fe_bind(c, s->name, B_VALUE, v, s->nameloc);
    } else {
        Expr name;
        memset(&name, 0, sizeof name);
        name.k = E_NAME;
        name.str = s->name;
        name.loc = name.start = s->nameloc;
        name.span = s->namespan;
        v = fe_expr(c, &name);
    }
    if (v.k == V_ERR || output_name_taken(c, s))
        return;
    if (v.k != V_TENSOR) {
        fe_error(c, s->nameloc, s->namespan, "output '%s' must be a tensor, not a constant number",
                 s->name);
        return;
    }
    set_label(c, v, s->name);
    add_named_output(c, OUT_VALUE, s->name, v.n);
}

static const Stmt *find_stmt(FeCtx *c, StmtKind k, int from)
{
    for (int i = from; i < c->prog->n; i++)
        if (c->prog->stmts[i]->k == k)
            return c->prog->stmts[i];
    return NULL;
}

static void lower_model(FeCtx *c, const Stmt *s)
{
    const Stmt *first = find_stmt(c, S_MODEL, 0);
    if (first != s) {
        fe_error(c, s->loc, 5, "the model is already named '%s'", first->name);
        fe_note(c, first->loc, 5, "first named here");
    }
}

static void lower_train(FeCtx *c, const Stmt *s)
{
    const Stmt *first = find_stmt(c, S_TRAIN, 0);
    if (first != s) {
        fe_error(c, s->loc, 5, "only one train block is allowed");
        fe_note(c, first->loc, 5, "the first train block is here");
        return;
    }
    fe_train_block(c, s);
}

static void lower_stmt(FeCtx *c, const Stmt *s)
{
    switch (s->k) {
    case S_MODEL:
        lower_model(c, s);
        break;
    case S_INPUT:
        lower_input(c, s);
        break;
    case S_PARAM:
        lower_param(c, s);
        break;
    case S_ASSIGN:
        lower_assign(c, s);
        break;
    case S_METRIC:
        lower_metric(c, s);
        break;
    case S_OUTPUT:
        lower_output(c, s);
        break;
    case S_TRAIN:
        lower_train(c, s);
        break;
    }
}

/* ---- whole-model checks ---- */

static const Stmt *last_assign(FeCtx *c, const char *name, bool not_name)
{
    for (int i = c->prog->n - 1; i >= 0; i--) {
        const Stmt *s = c->prog->stmts[i];
        if (s->k == S_ASSIGN && (strcmp(s->name, name) == 0) != not_name)
            return s;
    }
    return NULL;
}

static void finish_loss(FeCtx *c)
{
    const Stmt *s = last_assign(c, "loss", false);
    if (!s) {
        const Stmt *t = find_stmt(c, S_TRAIN, 0);
        if (t)
            fe_error(c, t->loc, 5, "a model with a train block needs a loss: assign 'loss = ...'");
        return;
    }
    Binding *b = fe_lookup(c, "loss");
    if (!b || b->kind != B_VALUE || !require_scalar(c, s->val, b->v, "the loss"))
        return;
    for (int i = 0; i < c->npenalties; i++) {
        Node *sum = fe_op2(c, OP_ADD, b->v.n, c->penalties[i], c->penalties[i]->loc);
        if (!sum)
            return;
        b->v = fe_tensor_val(sum);
    }
    set_label(c, b->v, c->npenalties ? "regularized_loss" : "loss");
    for (int i = 0; i < c->g->nouts; i++)
        if (strcmp(c->g->outs[i].name, "loss") == 0) {
            fe_error(c, s->nameloc, s->namespan, "duplicate output name 'loss'");
            return;
        }
    ir_add_output(c->g, OUT_LOSS, "loss", b->v.n, NULL, false);
    Output loss = c->g->outs[c->g->nouts - 1]; /* list the loss first */
    memmove(c->g->outs + 1, c->g->outs, (size_t)(c->g->nouts - 1) * sizeof(Output));
    c->g->outs[0] = loss;
}

/* Without `output` statements the value of the last assignment other
 * than the loss becomes the output "predictions". */
static void finish_outputs(FeCtx *c)
{
    if (find_stmt(c, S_OUTPUT, 0))
        return;
    const Stmt *s = last_assign(c, "loss", true);
    if (!s)
        return;
    Binding *b = fe_lookup(c, s->name);
    if (!b || b->v.k != V_TENSOR)
        return;
    for (int i = 0; i < c->g->nouts; i++)
        if (strcmp(c->g->outs[i].name, "predictions") == 0)
            return;
    ir_add_output(c->g, OUT_VALUE, "predictions", b->v.n, NULL, false);
}

static void finish(FeCtx *c)
{
    finish_loss(c);
    finish_outputs(c);
    const Stmt *t = find_stmt(c, S_TRAIN, 0);
    if (t) {
        fe_check_freeze(c, t);
        fe_check_callbacks(c, t);
    }
    if (c->d->nerrors == c->errors_at_start && c->g->nouts == 0) {
        SrcLoc l = c->prog->stmts[0]->loc;
        fe_error(c, l, 1, "the model computes nothing: assign 'loss = ...' or declare 'output NAME = ...'");
    }
}

/* ---- entry point ---- */

static const char *file_stem(Arena *a, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    return arena_strndup(a, base, n);
}

/* Shape errors from ir_op carry the graph's interned copy of the file
 * name; point them at the Diags' copy so they outlive the graph. */
static void rehome_files(Diags *d, int from)
{
    for (int i = from; i < d->n; i++)
        if (d->v[i].loc.file)
            d->v[i].loc.file = diags_intern_file(d, d->v[i].loc.file);
}

static Graph *lower_program(const char *path, const Program *prog, Arena *a, RunSettings *run, Diags *d)
{
    int first_diag = d->n;
    FeCtx c;
    memset(&c, 0, sizeof c);
    c.run = run;
    c.d = d;
    c.a = a;
    c.prog = prog;
    c.errors_at_start = d->nerrors;
    const Stmt *m = NULL;
    for (int i = 0; i < prog->n && !m; i++)
        if (prog->stmts[i]->k == S_MODEL)
            m = prog->stmts[i];
    c.g = ir_graph_new(m ? m->name : file_stem(a, path));
    c.sync_batchnorm = fe_train_sync_batchnorm(find_stmt(&c, S_TRAIN, 0));
    for (c.cur = 0; c.cur < prog->n; c.cur++)
        lower_stmt(&c, prog->stmts[c.cur]);
    finish(&c);
    xfree(c.b);
    xfree(c.layers);
    xfree(c.layer_locs);
    xfree(c.penalties);
    strmap_free(&c.bindings);
    strmap_free(&c.layer_index);
    strmap_free(&c.layer_next);
    strmap_free(&c.params);
    strmap_free(&c.outputs);
    rehome_files(d, first_diag);
    if (d->nerrors > c.errors_at_start) {
        ir_graph_free(c.g);
        return NULL;
    }
    return c.g;
}

static int loc_cmp(const SrcLoc *a, const SrcLoc *b)
{
    if (a->line != b->line)
        return a->line < b->line ? -1 : 1;
    return a->col < b->col ? -1 : a->col > b->col;
}

/* Order the diagnostics of this file by position (lexical errors are
 * found before syntax errors); notes stay after the diagnostic they
 * explain. Insertion sort of groups: files have few errors. */
static void sort_diags(Diags *d, int from)
{
    for (int i = from + 1; i < d->n; i++) {
        if (d->v[i].level == DIAG_NOTE)
            continue;
        int end = i + 1;
        while (end < d->n && d->v[end].level == DIAG_NOTE)
            end++;
        int at = i;
        while (at > from) {
            int prev = at - 1;
            while (prev > from && d->v[prev].level == DIAG_NOTE)
                prev--;
            if (loc_cmp(&d->v[prev].loc, &d->v[i].loc) <= 0)
                break;
            at = prev;
        }
        if (at < i) {
            int k = end - i;
            Diag *tmp = xmalloc((size_t)k * sizeof(Diag));
            memcpy(tmp, d->v + i, (size_t)k * sizeof(Diag));
            memmove(d->v + at + k, d->v + at, (size_t)(i - at) * sizeof(Diag));
            memcpy(d->v + at, tmp, (size_t)k * sizeof(Diag));
            xfree(tmp);
        }
        i = end - 1;
    }
}

Graph *fe_compile(const char *path, const char *text, size_t len, Diags *d)
{
    RunSettings run;
    return fe_compile_model(path, text, len, &run, d);
}

Graph *fe_compile_model(const char *path, const char *text, size_t len, RunSettings *run, Diags *d)
{
    ir_run_defaults(run);
    int first_diag = d->n;
    Arena *a = arena_new();
    int errors = d->nerrors;
    TokList toks;
    fe_lex(path, text, len, a, d, &toks);
    Program prog = {NULL, 0};
    Graph *g = NULL;
    fe_parse_lines(&toks, toks.bad_lines, toks.nbad, a, d, &prog);
    if (d->nerrors == errors) {
        if (prog.n == 0) {
            SrcLoc l = {path, 0, 0};
            diag_error(d, l, "empty model: declare inputs with 'input x: f32[N, ...]' and a loss or outputs");
        } else {
            g = lower_program(path, &prog, a, run, d);
        }
    }
    xfree(toks.v);
    xfree(toks.bad_lines);
    arena_free(a);
    sort_diags(d, first_diag);
    return g;
}
