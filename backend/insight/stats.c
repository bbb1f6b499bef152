/* Per-layer and per-parameter statistics over a few batches: a copy of
 * the model specialized for training gets a zero "probe" input added to
 * every layer's pre-activation and activation, autodiff differentiates
 * with respect to the parameters and the probes (so dL/dpre and dL/dout
 * come out as ordinary gradients), and the reference interpreter evaluates
 * it; the values are summarised as they arrive. */
#include "insight.h"
#include "runtime/io/io.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- running summaries ---- */

void ins_acc_init(InsAcc *a, bool keep_samples)
{
    memset(a, 0, sizeof *a);
    a->min = INFINITY;
    a->max = -INFINITY;
    a->stride = 1;
    if (keep_samples)
        a->samples = xmalloc(INS_SAMPLES * sizeof(double));
}

void ins_acc_free(InsAcc *a)
{
    xfree(a->samples);
    a->samples = NULL;
}

static void keep_sample(InsAcc *a, double v)
{
    if (a->seen++ % a->stride)
        return;
    if (a->nsamples == INS_SAMPLES) {
        for (int i = 0; i < INS_SAMPLES / 2; i++)
            a->samples[i] = a->samples[2 * i];
        a->nsamples = INS_SAMPLES / 2;
        a->stride *= 2;
        if ((a->seen - 1) % a->stride)
            return;
    }
    a->samples[a->nsamples++] = v;
}

void ins_acc_add(InsAcc *a, const Tensor *t)
{
    double n2 = 0;
    for (int64_t i = 0; i < t->numel; i++) {
        double v = rt_get(t, i);
        if (!isfinite(v)) {
            a->nonfinite++;
            continue;
        }
        a->count++;
        a->sum += v;
        a->sumsq += v * v;
        n2 += v * v;
        if (v < a->min)
            a->min = v;
        if (v > a->max)
            a->max = v;
        if (a->samples)
            keep_sample(a, v);
    }
    a->norm2_sum += n2;
    a->batches++;
}

InsSummary ins_acc_summary(const InsAcc *a)
{
    InsSummary s;
    memset(&s, 0, sizeof s);
    s.count = a->count;
    s.nonfinite = a->nonfinite;
    if (a->count == 0)
        return s;
    s.valid = true;
    s.mean = a->sum / (double)a->count;
    double var = a->sumsq / (double)a->count - s.mean * s.mean;
    s.std = var > 0 ? sqrt(var) : 0;
    s.min = a->min;
    s.max = a->max;
    s.norm = sqrt(a->norm2_sum / (a->batches ? a->batches : 1));
    return s;
}

/* ---- the prepared model ---- */

struct InsModel {
    Graph *g;
    PsLayers layers;
    Node **probes; /* INPUT nodes fed with zeros */
    int nprobes;
    int loss_out;
    int *pre_out, *out_out, *gpre_out, *gout_out; /* per layer; -1 when absent */
};

static bool has_op(const Graph *g, Op op)
{
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i]->op == op)
            return true;
    return false;
}

/* x := x + probe for every consumer of x; returns the probe input. */
static Node *add_probe(Graph *g, Node *x, const char *name)
{
    Node *p = ir_input(g, name, x->dt, x->shape, x->loc);
    Diags scratch;
    diags_init(&scratch);
    Node *sum = ir_binary(g, OP_ADD, x, p, x->loc, &scratch);
    if (!sum)
        ICE("probe on %s: %s", name, scratch.n ? scratch.v[0].msg : "?");
    diags_free(&scratch);
    ir_replace_uses(g, x, sum);
    sum->in[0] = x;
    for (int i = 0; i < g->nnodes; i++) /* a loop's other results stay its own */
        if (g->nodes[i]->op == OP_RESULT && g->nodes[i]->in[0] == sum)
            g->nodes[i]->in[0] = x;
    return p;
}

static void insert_probes(InsModel *m)
{
    Graph *g = m->g;
    m->probes = xcalloc((size_t)(2 * m->layers.n) + 1, sizeof(Node *));
    for (int i = 0; i < m->layers.n; i++) {
        PsLayer *l = &m->layers.v[i];
        if (!l->linear || !ir_dtype_is_float(l->pre->dt))
            continue;
        const char *pn = arena_printf(g->arena, "insight.pre.%s", l->name);
        m->probes[m->nprobes++] = add_probe(g, l->pre, pn);
        if (l->act)
            m->probes[m->nprobes++] =
                add_probe(g, l->act, arena_printf(g->arena, "insight.out.%s", l->name));
    }
    ir_toposort(g);
}

static int find_out(const Graph *g, OutKind k, const Node *target)
{
    for (int i = 0; i < g->nouts; i++)
        if (g->outs[i].kind == k && (!target || g->outs[i].target == target))
            return i;
    return -1;
}

static int value_out(Graph *g, Node *x, const char *what, const char *layer)
{
    ir_add_output(g, OUT_VALUE, arena_printf(g->arena, "insight.%s.%s", what, layer), x, NULL,
                  false);
    return g->nouts - 1;
}

static Node *probe_named(const InsModel *m, const char *what, const char *layer)
{
    size_t n = strlen(what);
    for (int i = 0; i < m->nprobes; i++) {
        const char *s = m->probes[i]->a.name + strlen("insight.");
        if (strncmp(s, what, n) == 0 && s[n] == '.' && strcmp(s + n + 1, layer) == 0)
            return m->probes[i];
    }
    return NULL;
}

static void map_outputs(InsModel *m)
{
    int n = m->layers.n;
    m->pre_out = xmalloc(((size_t)n + 1) * sizeof(int));
    m->out_out = xmalloc(((size_t)n + 1) * sizeof(int));
    m->gpre_out = xmalloc(((size_t)n + 1) * sizeof(int));
    m->gout_out = xmalloc(((size_t)n + 1) * sizeof(int));
    for (int i = 0; i < n; i++) {
        PsLayer *l = &m->layers.v[i];
        Node *pp = probe_named(m, "pre", l->name), *po = probe_named(m, "out", l->name);
        m->gpre_out[i] = pp ? find_out(m->g, OUT_GRAD, pp) : -1;
        m->gout_out[i] = po ? find_out(m->g, OUT_GRAD, po) : m->gpre_out[i];
        m->pre_out[i] = pp ? value_out(m->g, l->pre, "pre", l->name) : -1;
        m->out_out[i] = po ? value_out(m->g, l->act, "out", l->name) : m->pre_out[i];
    }
    m->loss_out = find_out(m->g, OUT_LOSS, NULL);
}

static bool prepare(InsModel *m, const Graph *src, Diags *d)
{
    SrcLoc where = {src->nfiles ? diags_intern_file(d, src->files[0]) : NULL, 0, 0};
    if (has_op(src, OP_FUSED) || find_out(src, OUT_GRAD, NULL) >= 0) {
        diag_error(d, where, "statistics need the model as loaded (before autodiff and fusion)");
        return false;
    }
    if (find_out(src, OUT_LOSS, NULL) < 0) {
        diag_error(d, where, "model '%s' has no loss: statistics need a loss to differentiate",
                   src->name);
        return false;
    }
    /* The gradient recipe stopped after specialize; the probes go in, then
     * its autodiff differentiates with respect to them too. */
    RecipeOpts o = ps_recipe_opts(FN_GRAD);
    o.stop_after = "specialize";
    m->g = ps_recipe(src, &o, d);
    bool ok = m->g != NULL;
    Diags scratch;
    diags_init(&scratch);
    if (ok) {
        ps_find_layers(m->g, m->g->nnodes, &m->layers);
        insert_probes(m);
        const char **names = xcalloc((size_t)m->nprobes + 1, sizeof(char *));
        for (int i = 0; i < m->nprobes; i++)
            names[i] = m->probes[i]->a.name;
        o.wrt = names;
        o.nwrt = m->nprobes;
        o.stop_after = "autodiff";
        ok = ps_recipe_resume(m->g, &o, "autodiff", &scratch);
        xfree(names);
        for (int i = 0; i < scratch.n; i++)
            if (scratch.v[i].level == DIAG_ERROR)
                diag_error(d, scratch.v[i].loc, "%s", scratch.v[i].msg);
    }
    diags_free(&scratch);
    if (ok)
        map_outputs(m);
    return ok;
}

InsModel *ins_model_new(const Graph *src, Diags *d)
{
    InsModel *m = xcalloc(1, sizeof *m);
    if (!prepare(m, src, d)) {
        ins_model_free(m);
        return NULL;
    }
    return m;
}

void ins_model_free(InsModel *m)
{
    if (!m)
        return;
    ps_layers_free(&m->layers);
    xfree(m->probes);
    xfree(m->pre_out);
    xfree(m->out_out);
    xfree(m->gpre_out);
    xfree(m->gout_out);
    ir_graph_free(m->g);
    xfree(m);
}

const PsLayers *ins_model_layers(const InsModel *m)
{
    return &m->layers;
}

Graph *ins_model_graph(InsModel *m)
{
    return m->g;
}

/* ---- statistics ---- */

void ins_stats_init(InsStats *s, InsModel *m, bool hist)
{
    memset(s, 0, sizeof *s);
    s->model = m->g->name;
    s->hist = hist;
    s->nlayers = m->layers.n;
    s->layers = xcalloc((size_t)s->nlayers + 1, sizeof(InsLayerStats));
    for (int i = 0; i < s->nlayers; i++) {
        InsLayerStats *l = &s->layers[i];
        const PsLayer *pl = &m->layers.v[i];
        l->name = pl->name;
        l->act = pl->act_kind;
        l->has_act = pl->act != NULL;
        l->loc = pl->loc;
        ins_acc_init(&l->pre, hist);
        ins_acc_init(&l->out, hist);
        ins_acc_init(&l->grad_pre, hist);
        ins_acc_init(&l->grad_out, hist);
        if (pl->act_kind == ACT_RELU) {
            const Shape *sh = &pl->act->shape;
            l->units = sh->rank ? sh->d[sh->rank - 1] : 1;
            l->alive = xcalloc((size_t)l->units, sizeof(bool));
        }
    }
    for (int i = 0; i < m->layers.n; i++)
        s->nparams += m->layers.v[i].nparams;
    s->params = xcalloc((size_t)s->nparams + 1, sizeof(InsParamStats));
    int k = 0;
    for (int i = 0; i < m->layers.n; i++)
        for (int j = 0; j < m->layers.v[i].nparams; j++) {
            InsParamStats *p = &s->params[k++];
            p->node = m->layers.v[i].params[j];
            p->name = p->node->a.name;
            p->layer = m->layers.v[i].name;
            p->trainable = !ps_is_frozen(m->g, p->node);
            ins_acc_init(&p->w, hist);
            ins_acc_init(&p->g, hist);
        }
}

void ins_stats_free(InsStats *s)
{
    for (int i = 0; i < s->nlayers; i++) {
        InsLayerStats *l = &s->layers[i];
        ins_acc_free(&l->pre);
        ins_acc_free(&l->out);
        ins_acc_free(&l->grad_pre);
        ins_acc_free(&l->grad_out);
        xfree(l->alive);
    }
    for (int i = 0; i < s->nparams; i++) {
        ins_acc_free(&s->params[i].w);
        ins_acc_free(&s->params[i].g);
    }
    xfree(s->layers);
    xfree(s->params);
    memset(s, 0, sizeof *s);
}

/* The batch size: the first input of g with N in its shape that the batch
 * has with the right rank. */
static int64_t batch_size(const Graph *g, const TensorMap *batch)
{
    for (int i = 0; i < g->nnodes; i++) {
        const Node *x = g->nodes[i];
        if (x->op != OP_INPUT || !ir_shape_has_n(&x->shape))
            continue;
        const Tensor *t = rt_map_get(batch, x->a.name);
        int64_t n;
        if (t && rt_tensor_matches(t, &x->shape, -1, &n) && n >= 0)
            return n;
    }
    return -1;
}

/* The caller's batch tensors (borrowed) and zero probes (owned). */
static int64_t build_inputs(const InsModel *m, const TensorMap *batch, TensorMap *in)
{
    rt_map_init(in);
    for (int i = 0; i < batch->n; i++)
        rt_map_put(in, batch->names[i], batch->t[i]);
    int64_t n = batch_size(m->g, batch);
    for (int i = 0; i < m->nprobes && n >= 0; i++) {
        Tensor *t = rt_tensor_for(m->probes[i]->dt, &m->probes[i]->shape, n);
        if (!t)
            ICE("cannot allocate probe '%s'", m->probes[i]->a.name);
        rt_map_put(in, m->probes[i]->a.name, t);
    }
    return n;
}

static void free_inputs(TensorMap *in, int nborrowed)
{
    for (int i = 0; i < nborrowed; i++)
        in->t[i] = NULL;
    rt_map_free(in);
}

static void count_layer(InsLayerStats *l, const Tensor *out)
{
    int64_t u = l->units;
    for (int64_t i = 0; i < out->numel; i++) {
        double v = rt_get(out, i);
        if (l->act == ACT_SIGMOID)
            l->saturated += v < 0.01 || v > 0.99;
        else if (l->act == ACT_TANH)
            l->saturated += fabs(v) > 0.99;
        else if (l->alive && v > 0)
            l->alive[i % u] = true;
    }
    l->sat_total += out->numel;
}

static double sumsq(const Tensor *t)
{
    double s = 0;
    for (int64_t i = 0; i < t->numel; i++) {
        double v = rt_get(t, i);
        s += v * v;
    }
    return s;
}

static void add_layers(InsStats *s, const InsModel *m, Tensor **outs)
{
    for (int i = 0; i < s->nlayers; i++) {
        InsLayerStats *l = &s->layers[i];
        if (m->pre_out[i] < 0)
            continue;
        ins_acc_add(&l->pre, outs[m->pre_out[i]]);
        ins_acc_add(&l->out, outs[m->out_out[i]]);
        if (m->gpre_out[i] >= 0)
            ins_acc_add(&l->grad_pre, outs[m->gpre_out[i]]);
        if (m->gout_out[i] >= 0)
            ins_acc_add(&l->grad_out, outs[m->gout_out[i]]);
        if (l->has_act)
            count_layer(l, outs[m->out_out[i]]);
    }
}

static void add_params(InsStats *s, const InsModel *m, const TensorMap *params, Tensor **outs)
{
    for (int i = 0; i < s->nparams; i++) {
        InsParamStats *p = &s->params[i];
        const Tensor *w = rt_map_get(params, p->name);
        if (s->batches == 0 && w)
            ins_acc_add(&p->w, w);
        int k = find_out(m->g, OUT_GRAD, p->node);
        if (k < 0)
            continue;
        ins_acc_add(&p->g, outs[k]);
        for (int j = 0; j < s->nlayers; j++)
            if (strcmp(s->layers[j].name, p->layer) == 0) {
                s->layers[j].grad_norm2_sum += sumsq(outs[k]);
                s->layers[j].has_grad = true;
            }
    }
}

bool ins_stats_add_batch(InsStats *s, InsModel *m, const TensorMap *params, const TensorMap *batch,
                         const RunOpts *ro, Diags *d)
{
    TensorMap in;
    int64_t n = build_inputs(m, batch, &in);
    Tensor **outs = xcalloc((size_t)m->g->nouts + 1, sizeof(Tensor *));
    bool ok = be_interp_run(m->g, params, &in, ro, outs, d);
    if (ok) {
        add_layers(s, m, outs);
        add_params(s, m, params, outs);
        s->loss_sum += rt_get(outs[m->loss_out], 0);
        s->examples += n > 0 ? n : 0;
        s->batches++;
    }
    for (int i = 0; i < m->g->nouts; i++)
        rt_tensor_free(outs[i]);
    xfree(outs);
    free_inputs(&in, batch->n);
    return ok;
}

/* ---- derived figures ---- */

double ins_layer_saturation(const InsLayerStats *l)
{
    if (!ps_act_saturates(l->act) || l->sat_total == 0)
        return -1;
    return (double)l->saturated / (double)l->sat_total;
}

int64_t ins_layer_dead(const InsLayerStats *l)
{
    if (!l->alive)
        return -1;
    int64_t dead = 0;
    for (int64_t u = 0; u < l->units; u++)
        dead += !l->alive[u];
    return dead;
}

double ins_layer_grad_norm(const InsLayerStats *l, int batches)
{
    if (!l->has_grad || batches <= 0)
        return -1;
    return sqrt(l->grad_norm2_sum / batches);
}

double ins_layer_grad_ratio(const InsStats *s, int i)
{
    int last = -1;
    for (int j = 0; j < s->nlayers; j++)
        if (s->layers[j].has_grad)
            last = j;
    double ref = last >= 0 ? ins_layer_grad_norm(&s->layers[last], s->batches) : -1;
    double v = ins_layer_grad_norm(&s->layers[i], s->batches);
    if (v < 0 || !(ref > 0))
        return -1;
    return v / ref;
}

double ins_param_grad_ratio(const InsStats *s, int i)
{
    InsSummary w = ins_acc_summary(&s->params[i].w), g = ins_acc_summary(&s->params[i].g);
    if (!w.valid || !g.valid || !(w.norm > 0))
        return -1;
    return g.norm / w.norm;
}

/* ---- input statistics for the static warnings ---- */

/* The sum and the sum of squares of a column's values: 8-bit data by a
 * histogram of its bytes (Fashion-MNIST's 47 million pixels took 150 ms
 * through rt_col_get, before the first step of every full run), f32 and
 * f64 straight from the tensor. */
static void column_sums(const DataCol *c, double *sum, double *sumsq)
{
    const Tensor *t = c->t;
    double s = 0, q = 0;
    if (c->bytes) {
        uint64_t h[4][256];
        memset(h, 0, sizeof h);
        const unsigned char *b = c->bytes->data;
        int64_t k = 0;
        for (; k + 4 <= t->numel; k += 4) {
            h[0][b[k]]++;
            h[1][b[k + 1]]++;
            h[2][b[k + 2]]++;
            h[3][b[k + 3]]++;
        }
        for (; k < t->numel; k++)
            h[0][b[k]]++;
        for (int v = 0; v < 256; v++) {
            double n = (double)(h[0][v] + h[1][v] + h[2][v] + h[3][v]), e = c->bytes->value[v];
            s += n * e;
            q += n * e * e;
        }
    } else if (t->dt == DT_F32) {
        const float *x = t->data;
        for (int64_t k = 0; k < t->numel; k++) {
            s += x[k];
            q += (double)x[k] * x[k];
        }
    } else if (t->dt == DT_F64) {
        const double *x = t->data;
        for (int64_t k = 0; k < t->numel; k++) {
            s += x[k];
            q += x[k] * x[k];
        }
    } else {
        for (int64_t k = 0; k < t->numel; k++) {
            double e = rt_col_get(c, k);
            s += e;
            q += e * e;
        }
    }
    *sum = s;
    *sumsq = q;
}

void ins_input_stats(const Graph *g, const Dataset *data, WarnInputs *out)
{
    WarnInput *v = xcalloc((size_t)g->nnodes + 1, sizeof(WarnInput));
    int n = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const Node *x = g->nodes[i];
        const DataCol *c = x->op == OP_INPUT && ir_dtype_is_float(x->dt)
                               ? rt_dataset_col(data, x->a.name)
                               : NULL;
        const Tensor *t = c ? c->t : NULL;
        if (!t || t->numel == 0)
            continue;
        double sum = 0, sumsq = 0;
        column_sums(c, &sum, &sumsq);
        double mean = sum / (double)t->numel, var = sumsq / (double)t->numel - mean * mean;
        v[n++] = (WarnInput){x->a.name, mean, var > 0 ? var : 0};
    }
    out->v = v;
    out->batch = 0;
    out->n = n;
}

void ins_input_stats_free(WarnInputs *w)
{
    xfree((void *)w->v);
    w->v = NULL;
    w->n = 0;
}
