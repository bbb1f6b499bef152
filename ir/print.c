/* The IR text printer: one line per node (`%h = matmul(%x, %w) : f32[N,256]
 * loc("m.mdl":5:5)`), fused bodies nested, the train block and outputs.
 * Its output is the format parse.c reads back; print(parse(print(g)))
 * equals print(g) byte for byte. Also the value naming shared with the
 * parser, verifier and DOT writer. */
#include "irtext.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define LOC_COLUMN 64 /* source locations start here when the line is short */

/* ---- string sets ---- */

void ir_nameset_init(NameSet *s)
{
    memset(s, 0, sizeof *s);
    s->cap = 64;
    s->slot = xcalloc((size_t)s->cap, sizeof(char *));
}

void ir_nameset_free(NameSet *s)
{
    xfree(s->slot);
    strmap_free(&s->next);
    memset(s, 0, sizeof *s);
}

static int find_slot(const NameSet *s, const char *k)
{
    int i = (int)(str_hash(k) & (uint64_t)(s->cap - 1));
    while (s->slot[i] && strcmp(s->slot[i], k) != 0)
        i = (i + 1) & (s->cap - 1);
    return i;
}

bool ir_nameset_has(const NameSet *s, const char *k)
{
    return s->slot[find_slot(s, k)] != NULL;
}

void ir_nameset_add(NameSet *s, const char *k)
{
    if (2 * (s->n + 1) > s->cap) {
        NameSet t = {xcalloc((size_t)s->cap * 2, sizeof(char *)), s->cap * 2, 0, s->next};
        for (int i = 0; i < s->cap; i++)
            if (s->slot[i])
                t.slot[find_slot(&t, s->slot[i])] = s->slot[i], t.n++;
        xfree(s->slot);
        *s = t;
    }
    int i = find_slot(s, k);
    if (!s->slot[i]) {
        s->slot[i] = k;
        s->n++;
    }
}

/* ---- value names ---- */

static bool name_char(int c)
{
    return isalnum(c) || c == '_' || c == '.';
}

char *ir_name_sanitize(Arena *a, const char *s)
{
    if (!s || !*s)
        return arena_strdup(a, "v");
    size_t n = strlen(s);
    bool digit = isdigit((unsigned char)s[0]);
    char *r = arena_alloc(a, n + 2), *p = r;
    if (digit)
        *p++ = 'a';
    for (size_t i = 0; i < n; i++)
        *p++ = name_char((unsigned char)s[i]) ? s[i] : '_';
    *p = 0;
    return r;
}

const char *ir_name_unique(NameSet *s, Arena *a, const char *base)
{
    if (!ir_nameset_has(s, base))
        return base;
    int k = strmap_get(&s->next, base);
    for (k = k > 0 ? k : 1;; k++) {
        char *c = arena_printf(a, "%s.%d", base, k);
        if (!ir_nameset_has(s, c)) {
            strmap_put(&s->next, base, k);
            return c;
        }
    }
}

static const char *leaf_or_label(const Node *n)
{
    if (n->op == OP_INPUT || n->op == OP_PARAM)
        return n->a.name ? n->a.name : "";
    return n->label;
}

void ir_names_build(ValueNames *vn, Graph *g)
{
    vn->arena = arena_new();
    vn->n = g->nnodes;
    vn->v = arena_alloc(vn->arena, (size_t)(g->nnodes + 1) * sizeof(char *));
    NameSet used;
    ir_nameset_init(&used);
    for (int i = 0; i < g->nnodes; i++) {
        const char *base = g->nodes[i] ? leaf_or_label(g->nodes[i]) : NULL;
        if (!base) {
            vn->v[i] = arena_printf(vn->arena, "%d", i);
            continue;
        }
        const char *nm = ir_name_unique(&used, vn->arena, ir_name_sanitize(vn->arena, base));
        ir_nameset_add(&used, nm);
        vn->v[i] = nm;
    }
    ir_nameset_free(&used);
}

void ir_names_free(ValueNames *vn)
{
    arena_free(vn->arena);
    vn->arena = NULL;
    vn->v = NULL;
}

/* ---- keyword tables ---- */

const char *const ir_attr_names[TA_COUNT] = {
    "axes", "axis", "keepdims", "shape", "slice", "window", "stride", "pad",
    "ta",   "tb",   "value",    "to",    "depth", "stream", "name", "alpha", "index",
    "seq",  "reverse",
};
const char *const ir_out_kind_names[5] = {
    [OUT_LOSS] = "loss",     [OUT_METRIC] = "metric", [OUT_VALUE] = "value",
    [OUT_GRAD] = "grad",     [OUT_UPDATE] = "update",
};
const char *const ir_opt_names[3] = {[OPT_SGD] = "sgd", [OPT_ADAM] = "adam", [OPT_RMSPROP] = "rmsprop"};
const char *const ir_sched_names[4] = {[SCHED_CONSTANT] = "constant",
                                       [SCHED_STEP] = "step",
                                       [SCHED_COSINE] = "cosine",
                                       [SCHED_EXPONENTIAL] = "exponential"};
const char *const ir_monitor_mode_names[3] = {[MON_AUTO] = "auto", [MON_MIN] = "min", [MON_MAX] = "max"};

int ir_keyword_index(const char *const *tab, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (strcmp(tab[i], s) == 0)
            return i;
    return -1;
}

/* The attrs column of ops.def. */
static const unsigned attr_masks[OP_COUNT] = {
#define OP(E, name, arity, cls, flags, attrs) [OP_##E] = (attrs),
#include "ops.def"
#undef OP
};

unsigned ir_attr_mask(Op op)
{
    return attr_masks[op];
}

int ir_slice_rank(const Node *n)
{
    if (n->op == OP_SLICE_GRAD)
        return n->a.shape.rank;
    return n->nin >= 1 && n->in[0] ? n->in[0]->shape.rank : 0;
}

int ir_init_arity(InitKind k)
{
    switch (k) {
    case INIT_CONSTANT:
        return 1;
    case INIT_NORMAL:
    case INIT_UNIFORM:
    case INIT_TRUNC_NORMAL:
        return 2;
    default:
        return 0;
    }
}

/* ---- the printer ---- */

typedef struct Printer {
    StrBuf *out;
    unsigned flags;
} Printer;

static void put_double(StrBuf *b, double v)
{
    char buf[64];
    fmt_double(buf, sizeof buf, v);
    sb_puts(b, buf);
}

static void put_string(StrBuf *b, const char *s)
{
    sb_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            sb_printf(b, "\\%c", *p);
        else if (*p == '\n')
            sb_puts(b, "\\n");
        else if (*p == '\t')
            sb_puts(b, "\\t");
        else if (*p < 32 || *p == 127)
            sb_printf(b, "\\x%02x", *p);
        else
            sb_putc(b, (char)*p);
    }
    sb_putc(b, '"');
}

static void put_ints(StrBuf *b, const int *v, int n)
{
    sb_putc(b, '[');
    for (int i = 0; i < n; i++)
        sb_printf(b, "%s%d", i ? "," : "", v[i]);
    sb_putc(b, ']');
}

static void put_type(StrBuf *b, DType t, const Shape *s)
{
    char buf[160];
    sb_puts(b, ir_type_str(t, s, buf, sizeof buf));
}

static void put_shape(StrBuf *b, const Shape *s)
{
    char buf[160];
    sb_puts(b, ir_shape_str(s, buf, sizeof buf));
}

static void put_slice(StrBuf *b, const Node *n)
{
    sb_putc(b, '[');
    for (int k = 0; k < ir_slice_rank(n); k++) {
        sb_printf(b, "%s%lld:", k ? ", " : "", (long long)n->a.begin[k]);
        if (n->a.end[k] != INT64_MAX)
            sb_printf(b, "%lld", (long long)n->a.end[k]);
        if (n->a.step[k] != 1)
            sb_printf(b, ":%lld", (long long)n->a.step[k]);
    }
    sb_putc(b, ']');
}

/* Whether attribute `bit` of n differs from its default. */
static bool attr_set(const Node *n, unsigned bit, const Attrs *def)
{
    const Attrs *a = &n->a;
    switch (bit) {
    case TA_KEEPDIMS:
        return a->keepdims;
    case TA_STRIDE:
        return a->stride[0] != def->stride[0] || a->stride[1] != def->stride[1];
    case TA_PAD:
        return a->pad[0] || a->pad[1] || a->pad[2] || a->pad[3];
    case TA_TA:
        return a->ta;
    case TA_TB:
        return a->tb;
    case TA_REVERSE:
        return a->reverse;
    case TA_NAME:
        return a->name != NULL;
    case TA_ALPHA:
        return a->alpha != def->alpha;
    default:
        return true;
    }
}

static void put_attr(StrBuf *b, const Node *n, unsigned bit)
{
    const Attrs *a = &n->a;
    switch (bit) {
    case TA_AXES:
        put_ints(b, a->axes, a->naxes < 0 ? 0 : a->naxes > IR_MAXRANK ? IR_MAXRANK : a->naxes);
        break;
    case TA_AXIS:
        sb_printf(b, "%d", a->axes[0]);
        break;
    case TA_KEEPDIMS:
    case TA_TA:
    case TA_TB:
    case TA_REVERSE:
        sb_puts(b, "true");
        break;
    case TA_SHAPE:
        put_shape(b, &a->shape);
        break;
    case TA_SLICE:
        put_slice(b, n);
        break;
    case TA_STRIDE:
        put_ints(b, a->stride, 2);
        break;
    case TA_PAD:
        put_ints(b, a->pad, 4);
        break;
    case TA_WINDOW:
        put_ints(b, a->window, 2);
        break;
    case TA_VALUE:
        put_double(b, a->value);
        break;
    case TA_ALPHA:
        put_double(b, a->alpha);
        break;
    case TA_TO:
        sb_puts(b, ir_dtype_name(a->to));
        break;
    case TA_DEPTH:
        sb_printf(b, "%d", a->depth);
        break;
    case TA_STREAM:
        sb_printf(b, "%u", (unsigned)a->stream);
        break;
    case TA_INDEX:
        sb_printf(b, "%d", a->index);
        break;
    case TA_SEQ:
        sb_printf(b, "%d", a->nseq);
        break;
    case TA_NAME:
        put_string(b, a->name);
        break;
    default:
        ICE("unknown attribute bit %u", bit);
    }
}

void ir_put_attrs(StrBuf *b, const Node *n)
{
    Attrs def = ir_attrs();
    unsigned mask = ir_attr_mask(n->op);
    int k = 0;
    for (int i = 0; i < TA_COUNT; i++) {
        unsigned bit = 1u << i;
        if (!(mask & bit) || !attr_set(n, bit, &def))
            continue;
        sb_puts(b, k++ ? ", " : " {");
        sb_printf(b, "%s=", ir_attr_names[i]);
        put_attr(b, n, bit);
    }
    if (k)
        sb_putc(b, '}');
}

static void put_init(StrBuf *b, const Init *in)
{
    if (in->kind == INIT_NONE)
        return;
    sb_printf(b, " %s(", ir_init_name(in->kind));
    int ar = ir_init_arity(in->kind);
    if (ar >= 1)
        put_double(b, in->a);
    if (ar >= 2) {
        sb_puts(b, ", ");
        put_double(b, in->b);
    }
    sb_putc(b, ')');
}

static void put_leaf(StrBuf *b, const Node *n)
{
    switch (n->op) {
    case OP_INPUT:
        sb_puts(b, "input ");
        put_string(b, n->a.name ? n->a.name : "");
        break;
    case OP_PARAM:
        sb_puts(b, "param ");
        put_string(b, n->a.name ? n->a.name : "");
        put_init(b, &n->a.init);
        if (n->a.role == ROLE_STATE)
            sb_puts(b, " state");
        else if (n->a.role == ROLE_SLOT)
            sb_puts(b, " slot");
        if (!n->a.trainable)
            sb_puts(b, " frozen");
        break;
    default: /* OP_CONST */
        sb_puts(b, "const ");
        put_double(b, n->a.value);
        break;
    }
}

static void put_ref(StrBuf *b, const ValueNames *vn, const Graph *g, const Node *v)
{
    if (v && v->id >= 0 && v->id < g->nnodes && g->nodes[v->id] == v)
        sb_printf(b, "%%%s", vn->v[v->id]);
    else
        sb_puts(b, "%<invalid>");
}

static void indent(StrBuf *b, int depth)
{
    for (int i = 0; i < depth; i++)
        sb_puts(b, "  ");
}

/* Pad the current line (which started at line_start) and append loc. */
static void put_loc(Printer *p, size_t line_start, SrcLoc loc)
{
    if (!loc.file || (p->flags & IR_PRINT_NO_LOC))
        return;
    StrBuf *b = p->out;
    size_t len = b->len - line_start;
    if (len + 2 <= LOC_COLUMN)
        while (b->len - line_start < LOC_COLUMN)
            sb_putc(b, ' ');
    else
        sb_puts(b, "  ");
    sb_puts(b, "loc(");
    put_string(b, loc.file);
    sb_printf(b, ":%d:%d)", loc.line, loc.col);
}

static void print_graph_body(Printer *p, Graph *g, int depth);

static void print_node(Printer *p, Graph *g, const ValueNames *vn, int i, int depth)
{
    StrBuf *b = p->out;
    Node *n = g->nodes[i];
    size_t start = b->len;
    indent(b, depth);
    sb_printf(b, "%%%s = ", vn->v[i]);
    if (n->op < 0 || n->op >= OP_COUNT) {
        sb_printf(b, "<bad op %d>\n", (int)n->op);
        return;
    }
    if (ir_ops[n->op].cls == OPC_LEAF) {
        put_leaf(b, n);
    } else {
        sb_printf(b, "%s(", ir_ops[n->op].name);
        for (int j = 0; j < n->nin; j++) {
            if (j)
                sb_puts(b, ", ");
            put_ref(b, vn, g, n->in[j]);
        }
        sb_putc(b, ')');
        ir_put_attrs(b, n);
    }
    sb_puts(b, " : ");
    put_type(b, n->dt, &n->shape);
    put_loc(p, start, n->loc);
    if ((n->op == OP_FUSED || n->op == OP_LOOP) && n->sub) {
        sb_puts(b, " {\n");
        print_graph_body(p, n->sub, depth + 1);
        indent(b, depth);
        sb_putc(b, '}');
    }
    sb_putc(b, '\n');
}

static void print_output(Printer *p, Graph *g, const ValueNames *vn, const Output *o, int depth)
{
    StrBuf *b = p->out;
    indent(b, depth);
    sb_puts(b, "output ");
    bool bare = o->kind == OUT_VALUE && !o->name && !o->target && !o->train_only;
    if (!bare) {
        sb_puts(b, o->kind >= 0 && o->kind <= OUT_UPDATE ? ir_out_kind_names[o->kind] : "?");
        if (o->name) {
            sb_putc(b, ' ');
            put_string(b, o->name);
        }
        sb_puts(b, " = ");
    }
    put_ref(b, vn, g, o->val);
    if (o->part)
        sb_printf(b, " result %d", o->part);
    if (o->target) {
        sb_puts(b, o->kind == OUT_GRAD ? " wrt " : " of ");
        put_ref(b, vn, g, o->target);
    }
    if (o->train_only)
        sb_puts(b, " train_only");
    sb_putc(b, '\n');
}

static void print_graph_body(Printer *p, Graph *g, int depth)
{
    ValueNames vn;
    ir_names_build(&vn, g);
    for (int i = 0; i < g->nnodes; i++)
        print_node(p, g, &vn, i, depth);
    for (int i = 0; i < g->nouts; i++)
        print_output(p, g, &vn, &g->outs[i], depth);
    ir_names_free(&vn);
}

/* A double field shown when always_show or different from its default. */
static void put_field_d(StrBuf *b, const char *k, double v, double def, bool always_show)
{
    if (always_show || memcmp(&v, &def, sizeof v) != 0) {
        sb_printf(b, " %s=", k);
        put_double(b, v);
    }
}

static void put_field_i(StrBuf *b, const char *k, long long v, long long def, bool always_show)
{
    if (always_show || v != def)
        sb_printf(b, " %s=%lld", k, v);
}

static const char *mode_name(MonitorMode m)
{
    return m >= MON_AUTO && m <= MON_MAX ? ir_monitor_mode_names[m] : "?";
}

/* The callbacks that are on, every field of each. */
static void print_callbacks(StrBuf *b, const RunSettings *r)
{
    if (r->es.monitor) {
        sb_puts(b, " es_monitor=");
        put_string(b, r->es.monitor);
        put_field_d(b, "es_min_delta", r->es.min_delta, 0, true);
        put_field_i(b, "es_patience", r->es.patience, 0, true);
        sb_printf(b, " es_mode=%s es_restore_best=%s", mode_name(r->es.mode),
                  r->es.restore_best ? "true" : "false");
    }
    if (r->ckpt.monitor) {
        sb_puts(b, " ckpt_path=");
        put_string(b, r->ckpt.path ? r->ckpt.path : "");
        sb_puts(b, " ckpt_monitor=");
        put_string(b, r->ckpt.monitor);
        sb_printf(b, " ckpt_best_only=%s ckpt_mode=%s", r->ckpt.best_only ? "true" : "false",
                  mode_name(r->ckpt.mode));
    }
    if (r->rlr.monitor) {
        sb_puts(b, " rlr_monitor=");
        put_string(b, r->rlr.monitor);
        put_field_d(b, "rlr_factor", r->rlr.factor, 0, true);
        put_field_i(b, "rlr_patience", r->rlr.patience, 0, true);
        sb_printf(b, " rlr_mode=%s", mode_name(r->rlr.mode));
        put_field_d(b, "rlr_min_delta", r->rlr.min_delta, 0, true);
        put_field_i(b, "rlr_cooldown", r->rlr.cooldown, 0, true);
        put_field_d(b, "rlr_min_lr", r->rlr.min_lr, 0, true);
    }
}

static void print_train(Printer *p, const TrainConfig *t, const RunSettings *run)
{
    StrBuf *b = p->out;
    TrainConfig d;
    ir_train_defaults(&d);
    RunSettings rd;
    ir_run_defaults(&rd);
    bool sgd = t->opt == OPT_SGD, adam = t->opt == OPT_ADAM, rms = t->opt == OPT_RMSPROP;
    sb_printf(b, "  train { optimizer=%s",
              t->opt >= 0 && t->opt <= OPT_RMSPROP ? ir_opt_names[t->opt] : "?");
    put_field_d(b, "lr", t->lr, d.lr, true);
    put_field_d(b, "momentum", t->momentum, d.momentum, sgd);
    if (sgd || t->nesterov != d.nesterov)
        sb_printf(b, " nesterov=%s", t->nesterov ? "true" : "false");
    put_field_d(b, "beta1", t->beta1, d.beta1, adam);
    put_field_d(b, "beta2", t->beta2, d.beta2, adam);
    put_field_d(b, "rho", t->rho, d.rho, rms);
    put_field_d(b, "eps", t->eps, d.eps, adam || rms);
    if (run) {
        put_field_i(b, "batch", run->batch, rd.batch, true);
        put_field_i(b, "epochs", run->epochs, rd.epochs, true);
    }
    put_field_d(b, "clip_value", t->clip_value, d.clip_value, false);
    put_field_d(b, "clip_norm", t->clip_norm, d.clip_norm, false);
    put_field_d(b, "weight_decay", t->weight_decay, d.weight_decay, false);
    if (run) {
        bool step = run->sched == SCHED_STEP;
        if (run->sched != rd.sched)
            sb_printf(b, " schedule=%s",
                      run->sched >= 0 && run->sched <= SCHED_EXPONENTIAL ? ir_sched_names[run->sched] : "?");
        put_field_i(b, "sched_step", run->sched_step, rd.sched_step, step);
        put_field_d(b, "sched_gamma", run->sched_gamma, rd.sched_gamma, step);
        bool expo = run->sched == SCHED_EXPONENTIAL;
        put_field_i(b, "decay_steps", run->decay_steps, rd.decay_steps, expo);
        put_field_d(b, "decay_rate", run->decay_rate, rd.decay_rate, expo);
        if (expo || run->staircase != rd.staircase)
            sb_printf(b, " staircase=%s", run->staircase ? "true" : "false");
        put_field_i(b, "warmup", run->warmup, rd.warmup, false);
        sb_printf(b, " seed=%llu", (unsigned long long)run->seed);
        print_callbacks(b, run);
    }
    if (t->nfreeze > 0) {
        sb_puts(b, " freeze=[");
        for (int i = 0; i < t->nfreeze; i++) {
            if (i)
                sb_puts(b, ", ");
            put_string(b, t->freeze[i] ? t->freeze[i] : "");
        }
        sb_putc(b, ']');
    }
    sb_puts(b, " }\n");
}

static bool plain_ident(const char *s)
{
    if (!s || !(isalpha((unsigned char)*s) || *s == '_'))
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_')
            return false;
    return true;
}

static void print_graph(Graph *g, const RunSettings *run, StrBuf *b, unsigned flags)
{
    Printer p = {b, flags};
    sb_puts(b, "graph ");
    if (plain_ident(g->name))
        sb_puts(b, g->name);
    else
        put_string(b, g->name ? g->name : "");
    sb_puts(b, " {\n");
    if (g->has_train)
        print_train(&p, &g->train, run);
    print_graph_body(&p, g, 1);
    sb_puts(b, "}\n");
}

char *ir_print_str_model(Graph *g, const RunSettings *run, unsigned flags)
{
    StrBuf b;
    sb_init(&b);
    print_graph(g, run, &b, flags);
    return sb_take(&b);
}

void ir_print_model(Graph *g, const RunSettings *run, FILE *f, unsigned flags)
{
    char *s = ir_print_str_model(g, run, flags);
    fputs(s, f);
    xfree(s);
}

char *ir_print_str_opts(Graph *g, unsigned flags)
{
    return ir_print_str_model(g, NULL, flags);
}

void ir_print_opts(Graph *g, FILE *f, unsigned flags)
{
    ir_print_model(g, NULL, f, flags);
}

char *ir_print_str(Graph *g)
{
    return ir_print_str_opts(g, 0);
}

void ir_print(Graph *g, FILE *f)
{
    ir_print_opts(g, f, 0);
}
