/* Static warnings before training, from the moment analysis (moments.c):
 *   - a sigmoid/tanh layer whose pre-activation is so wide at
 *     initialisation that more than half of its outputs sit within 1% of
 *     the bounds (scenario S2);
 *   - a gradient that reaches a layer's kernel more than 100x smaller (in
 *     std) than the output layer's, predicted by propagating its second
 *     moment backwards through the initial weights (scenario S3);
 * and, for the C API, a warning when a model with batchnorm or dropout is
 * trained in inference mode or evaluated in training mode (scenario S1). */
#include "warn.h"

#include <math.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* ---- emitting ---- */

/* Length of the identifier at loc in the registered source, at least 1
 * (loc may name any line and column: it comes from a file). */
int ps_loc_span(Diags *d, SrcLoc loc)
{
    size_t len;
    const char *p = diags_line(d, loc, &len);
    if (!p || loc.col < 1 || (size_t)loc.col > len)
        return 1;
    size_t at = (size_t)loc.col - 1, n = 0;
    while (at + n < len && n < INT_MAX &&
           (p[at + n] == '_' || (p[at + n] >= 'a' && p[at + n] <= 'z') ||
            (p[at + n] >= 'A' && p[at + n] <= 'Z') || (p[at + n] >= '0' && p[at + n] <= '9')))
        n++;
    return n ? (int)n : 1;
}

static SrcLoc own_loc(Diags *d, SrcLoc loc)
{
    if (loc.file)
        loc.file = diags_intern_file(d, loc.file);
    return loc;
}

static void emit(Diags *d, DiagLevel lvl, SrcLoc loc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void emit(Diags *d, DiagLevel lvl, SrcLoc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    loc = own_loc(d, loc);
    diag_add(d, lvl, loc, lvl == DIAG_NOTE ? 1 : ps_loc_span(d, loc), fmt, ap);
    va_end(ap);
}

/* Notes carry the file only: the warning above shows the line. */
static SrcLoc file_of(SrcLoc loc)
{
    SrcLoc l = {loc.file, 0, 0};
    return l;
}

static void fmt_init(char *buf, size_t n, const Init *in)
{
    char a[32], b[32];
    snprintf(a, sizeof a, "%.6g", in->a);
    snprintf(b, sizeof b, "%.6g", in->b);
    switch (in->kind) {
    case INIT_CONSTANT:
        snprintf(buf, n, "constant(%s)", a);
        return;
    case INIT_NORMAL:
    case INIT_UNIFORM:
    case INIT_TRUNC_NORMAL:
        snprintf(buf, n, "%s(%s, %s)", ir_init_name(in->kind), a, b);
        return;
    default:
        snprintf(buf, n, "%s", ir_init_name(in->kind));
    }
}

/* ---- the analysis context ---- */

typedef struct Warn {
    Graph *g;
    Diags *d;
    PsLayers layers;
    Moment *m;
    bool *warned; /* per layer */
    const char *assumed; /* how missing input statistics were filled in, or NULL */
    int batch;
} Warn;

static double var_of(Moment m)
{
    double v = m.m2 - m.mean * m.mean;
    return v > 0 ? v : 0;
}

static double contraction_of(const PsLayer *l)
{
    const Shape *k = &l->kernel->shape;
    if (l->linear->op == OP_CONV2D)
        return (double)(k->d[0] * k->d[1] * k->d[2]);
    return (double)k->d[l->linear->in[1] == l->kernel ? (l->linear->a.tb ? 1 : 0)
                                                       : (l->linear->a.ta ? 0 : 1)];
}

/* ---- saturation ---- */

static void saturation_notes(Warn *w, const PsLayer *l, Moment pre)
{
    SrcLoc f = file_of(l->loc);
    if (!l->kernel || !l->input || !w->m[l->input->id].known) {
        emit(w->d, DIAG_NOTE, f, "its pre-activation has mean %.3g and std %.3g at initialisation",
             pre.mean, sqrt(var_of(pre)));
        return;
    }
    double fan = contraction_of(l), xm2 = w->m[l->input->id].m2;
    Moment km = w->m[l->kernel->id];
    char init[96];
    fmt_init(init, sizeof init, &l->kernel->a.init);
    emit(w->d, DIAG_NOTE, f,
         "its pre-activation has std %.3g at initialisation: %.0f inputs with E[x^2] = %.3g%s%s%s "
         "times weights with std %.3g (%s)",
         sqrt(var_of(pre)), fan, xm2, w->assumed ? " (" : "", w->assumed ? w->assumed : "",
         w->assumed ? ")" : "", sqrt(var_of(km)), init);
    if (xm2 > 10) {
        emit(w->d, DIAG_NOTE, f, "scale the layer's inputs to about unit size (E[x^2] near 1)");
        return;
    }
    double fi, fo;
    ir_fans(&l->kernel->shape, &fi, &fo);
    emit(w->d, DIAG_NOTE, f,
         "draw the weights with std about 1/sqrt(%.0f * %.3g) = %.3g or less so the "
         "pre-activation has std near 1 (glorot_uniform gives %.3g here), and the bias with "
         "a small std (zeros)",
         fan, xm2, 1 / sqrt(fan * xm2), sqrt(2 / (fi + fo)));
}

static void check_saturation(Warn *w)
{
    for (int i = 0; i < w->layers.n; i++) {
        PsLayer *l = &w->layers.v[i];
        if (!ps_act_saturates(l->act_kind) || !w->m[l->pre->id].known)
            continue;
        Moment pre = w->m[l->pre->id];
        double sat = ps_gauss_saturated(l->act_kind, pre.mean, var_of(pre));
        if (sat <= PS_SATURATED_FRAC)
            continue;
        emit(w->d, DIAG_WARNING, l->loc,
             "layer '%s' starts saturated: about %.0f%% of its %s outputs are expected within 1%% "
             "of %s, where the gradient is nearly zero",
             l->name, 100 * sat, ps_act_name(l->act_kind),
             l->act_kind == ACT_SIGMOID ? "0 or 1" : "-1 or 1");
        saturation_notes(w, l, pre);
        w->warned[i] = true;
    }
}

/* ---- vanishing gradients ----
 * Under SGD a layer's weights move by lr * grad, so what decides whether a
 * layer learns is its gradient relative to its weights, ||dW|| / ||W||,
 * compared across layers. Adam and RMSprop divide each step by the
 * gradient's running RMS, which cancels a uniformly small gradient; the
 * check applies to SGD only. */

static bool has_kernel(const Warn *w, const PsLayer *l)
{
    return l->kernel && l->input && w->m[l->kernel->id].known && w->m[l->input->id].known &&
           w->m[l->kernel->id].m2 > 0;
}

static void vanish_notes(Warn *w, int at, int out, const double *ratio)
{
    SrcLoc f = file_of(w->layers.v[at].loc);
    StrBuf b;
    sb_init(&b);
    for (int i = 0; i <= out; i++)
        if (ratio[i] >= 0)
            sb_printf(&b, "%s%s %.2g", b.len ? ", " : "", w->layers.v[i].name, sqrt(ratio[i]));
    emit(w->d, DIAG_NOTE, f, "expected ||grad W|| / ||W|| of each layer's kernel relative to '%s': %s",
         w->layers.v[out].name, b.s);
    sb_free(&b);
    const PsLayer *next = NULL;
    for (int i = at + 1; i <= out && !next; i++)
        if (has_kernel(w, &w->layers.v[i]))
            next = &w->layers.v[i];
    if (!next)
        return;
    char init[96];
    fmt_init(init, sizeof init, &next->kernel->a.init);
    const Shape *ks = &next->kernel->shape;
    double fan_out = (double)ks->d[ks->rank - 1];
    bool relu = w->layers.v[at].act_kind == ACT_RELU;
    emit(w->d, DIAG_NOTE, f,
         "on the way back each layer multiplies the gradient by about std(w) * sqrt(fan-out) = "
         "%.2g for '%s' (%s, fan-out %.0f); initialise the kernels with glorot_uniform "
         "(xavier_uniform) or he_normal%s",
         sqrt(w->m[next->kernel->id].m2 * fan_out), next->name, init, fan_out,
         relu ? " and give the ReLU layers a small positive bias, e.g. bias_init=constant(0.1)"
              : "");
}

/* ratio[i]: (E[dW_i^2] / E[W_i^2]) / (same for the output layer), or -1. */
static double *relative_grads(Warn *w, int out)
{
    bool *reached = xcalloc((size_t)w->g->nnodes + 1, sizeof(bool));
    double *dm = ps_grad_moments(w->g, w->m, w->layers.v[out].pre, w->batch, reached);
    double *ratio = xmalloc((size_t)w->layers.n * sizeof(double));
    const Node *ko = w->layers.v[out].kernel;
    double ref = dm[ko->id] / w->m[ko->id].m2;
    for (int i = 0; i < w->layers.n; i++) {
        const PsLayer *l = &w->layers.v[i];
        ratio[i] = -1;
        if (i <= out && has_kernel(w, l) && reached[l->kernel->id] && ref > 0)
            ratio[i] = dm[l->kernel->id] / w->m[l->kernel->id].m2 / ref;
    }
    xfree(dm);
    xfree(reached);
    return ratio;
}

static void check_vanishing(Warn *w)
{
    if (w->g->train.opt != OPT_SGD)
        return;
    int out = -1;
    for (int i = 0; i < w->layers.n; i++)
        if (has_kernel(w, &w->layers.v[i]))
            out = i;
    if (out <= 0)
        return;
    double *ratio = relative_grads(w, out);
    for (int i = 0; i < out; i++) {
        if (ratio[i] < 0 || sqrt(ratio[i]) >= PS_VANISH_RATIO || w->warned[i])
            continue;
        emit(w->d, DIAG_WARNING, w->layers.v[i].loc,
             "layer '%s' is expected to get a gradient %.2g times the output layer's ('%s') "
             "relative to the size of its weights: under SGD it will barely move (vanishing "
             "gradient)",
             w->layers.v[i].name, sqrt(ratio[i]), w->layers.v[out].name);
        vanish_notes(w, i, out, ratio);
        w->warned[i] = true;
        break;
    }
    xfree(ratio);
}

/* ---- entry points ---- */

static bool has_op(const Graph *g, Op op)
{
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i]->op == op)
            return true;
    return false;
}

/* How the defaults of ps_input_moment filled in missing statistics. */
static const char *assumption(const Graph *g, const WarnInputs *wi)
{
    bool image = false, other = false, a;
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i]->op == OP_INPUT) {
            ps_input_moment(g->nodes[i], wi, &a);
            image |= a && g->nodes[i]->shape.rank >= 3;
            other |= a && g->nodes[i]->shape.rank < 3;
        }
    if (image && other)
        return "assuming pixels uniform in [0, 1] and other inputs standardised";
    if (image)
        return "assuming pixels uniform in [0, 1]";
    return other ? "assuming standardised inputs" : NULL;
}

bool ps_warn(Graph *g, const WarnInputs *wi, Diags *d)
{
    if (has_op(g, OP_FUSED))
        return false;
    Graph *c = NULL;
    if (has_op(g, OP_PHASE)) {
        Diags scratch;
        diags_init(&scratch);
        RecipeOpts o = ps_recipe_opts(FN_TRAIN_STEP);
        o.stop_after = "specialize";
        c = ps_recipe(g, &o, &scratch);
        diags_free(&scratch);
    }
    if (!c)
        c = ir_clone(g);
    Warn w = {.g = c, .d = d, .batch = wi ? wi->batch : 0};
    ps_find_layers(c, c->nnodes, &w.layers);
    w.m = ps_moments(c, wi);
    w.warned = xcalloc((size_t)w.layers.n + 1, sizeof(bool));
    w.assumed = assumption(c, wi);
    check_saturation(&w);
    check_vanishing(&w);
    xfree(w.warned);
    xfree(w.m);
    ps_layers_free(&w.layers);
    ir_graph_free(c);
    return true;
}

int ps_warn_report(Graph *g, int batch, Diags *d, FILE *f)
{
    int from = d->n, before = d->nwarnings;
    WarnInputs wi = {NULL, 0, batch};
    ps_warn(g, &wi, d);
    diags_print_from(d, f, from);
    return d->nwarnings - before;
}

/* ---- training/inference mode misuse ---- */

bool ps_layer_frozen(const Graph *g, const char *layer)
{
    size_t n = strlen(layer);
    int weights = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const Node *p = g->nodes[i];
        if (p->op != OP_PARAM || p->a.role != ROLE_WEIGHT || strncmp(p->a.name, layer, n) != 0 ||
            p->a.name[n] != '.')
            continue;
        weights++;
        if (!ps_is_frozen(g, p))
            return false;
    }
    return weights > 0;
}

bool ps_layer_is_batchnorm(const Graph *g, const char *layer)
{
    size_t n = strlen(layer);
    for (int i = 0; i < g->nnodes; i++) {
        const Node *p = g->nodes[i];
        if (p->op == OP_PARAM && strncmp(p->a.name, layer, n) == 0 && p->a.name[n] == '.' &&
            strcmp(p->a.name + n + 1, "moving_mean") == 0)
            return true;
    }
    return false;
}

static void mode_note(Diags *d, const Graph *g, const Node *ph, bool infer_training)
{
    const char *name = ph->a.name ? ph->a.name : "?";
    bool bn = ps_layer_is_batchnorm(g, name);
    const char *what =
        infer_training
            ? (bn ? "normalises with its moving statistics instead of the batch's, so its scale "
                    "and shift see a different distribution than in training mode"
                  : "drops nothing")
            : (bn ? "normalises with this batch's statistics instead of its moving statistics"
                  : "drops units at random");
    emit(d, DIAG_NOTE, ph->loc, "%s '%s' %s", bn ? "batchnorm" : "dropout", name, what);
}

bool ps_warn_mode(const Graph *src, Mode mode, bool updating, Diags *d)
{
    bool infer_training = mode == MODE_INFER && updating;
    if (!infer_training && !(mode == MODE_TRAIN && !updating))
        return false;
    const Node *first = NULL;
    for (int i = 0; i < src->nnodes; i++) {
        const Node *n = src->nodes[i];
        if (n->op != OP_PHASE || (n->a.name && ps_layer_frozen(src, n->a.name)))
            continue;
        if (!first) {
            first = n;
            if (infer_training)
                emit(d, DIAG_WARNING, n->loc,
                     "model '%s' is trained in inference mode: its batchnorm and dropout layers "
                     "compute what they compute at evaluation, not what training needs",
                     src->name);
            else
                emit(d, DIAG_WARNING, n->loc,
                     "model '%s' is evaluated in training mode: the result depends on the batch "
                     "and on random dropout masks",
                     src->name);
        }
        mode_note(d, src, n, infer_training);
    }
    return first != NULL;
}
