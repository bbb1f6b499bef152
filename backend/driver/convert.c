/* modelc convert-weights: a PyTorch state_dict or Keras weights saved as
 * safetensors become a checkpoint of a model (mc_convert_weights), and
 * the layout notes every checkpoint carries in its __metadata__
 * (mc_layout_metadata).
 *
 * The model's parameters form layers (the part of a name before its last
 * dot): dense (kernel [in, units], bias), conv2d (kernel HWIO, bias) and
 * batchnorm (gamma, beta, moving_mean, moving_var). The file's tensors
 * form modules the same way (PyTorch: fc1.weight; Keras: dense/kernel).
 * A module whose name is a layer's (Keras's batch_normalization is
 * modelc's batchnorm) is that layer; the others are paired with the
 * remaining layers in order, and their kinds must agree. PyTorch's
 * weights are transposed ([out, in] to [in, out]; OIHW to HWIO), and the
 * rows of a dense kernel fed by a flatten of a convolution's NHWC output
 * are permuted from PyTorch's NCHW flatten order (fe_onnx_nhwc_row, as
 * the ONNX importer does). */
#include "modelc_inspect.h"

#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "frontend/onnx/onnx.h"
#include "runtime/io/io.h"
#include "runtime/io/rtio.h"

typedef enum { LK_OTHER, LK_DENSE, LK_CONV, LK_BN } LayerKind;

static const char *const kind_names[] = {"other", "dense", "conv2d", "batchnorm"};

#define MAX_LAYER_PARAMS 8

/* A layer of the model: its parameters (weights and state) in graph order. */
typedef struct Layer {
    char *name;
    LayerKind kind;
    Node *p[MAX_LAYER_PARAMS];
    const char *what[MAX_LAYER_PARAMS]; /* the part after the dot */
    int np;
    int64_t flat_c, flat_hw; /* dense after a flatten of [N, H, W, C]: C and H*W */
    bool matched;
} Layer;

/* A module of the file: its tensors in file order. */
typedef struct Module {
    char *name;  /* prefix in the file */
    char *match; /* the layer name it matches by (Keras: last component, renamed) */
    LayerKind kind;
    int t[MAX_LAYER_PARAMS]; /* indices into the file's map */
    const char *what[MAX_LAYER_PARAMS];
    int nt;
    Layer *layer;
} Module;

static const char *what_of(const char *name, char sep)
{
    const char *dot = strrchr(name, sep);
    return dot ? dot + 1 : name;
}

static int find_what(const char *const *what, int n, const char *w)
{
    for (int i = 0; i < n; i++)
        if (strcmp(what[i], w) == 0)
            return i;
    return -1;
}

/* ---- the model's layers ---- */

static const Node *consumer(const Graph *g, const Node *p, Op op, int slot)
{
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        if (n->op == op && n->nin > slot && n->in[slot] == p)
            return n;
    }
    return NULL;
}

/* The [N, H, W, C] value (C > 1) whose flatten x is, through elementwise
 * ops that keep x's shape (an activation, dropout's mask and its
 * training/inference phase), or NULL. */
static const Node *flattened(const Node *x, int depth)
{
    if (x->op == OP_RESHAPE && x->nin == 1 && x->in[0]->shape.rank == 4 && x->in[0]->shape.d[3] > 1)
        return x->in[0];
    if (depth == 0 || (!ir_op_is_elementwise(x->op) && x->op != OP_PHASE))
        return NULL;
    for (int i = 0; i < x->nin; i++) {
        const Node *y = x->in[i];
        const Node *f = y->shape.rank == x->shape.rank &&
                                memcmp(y->shape.d, x->shape.d, sizeof(int64_t) * (size_t)x->shape.rank) == 0
                            ? flattened(y, depth - 1)
                            : NULL;
        if (f)
            return f;
    }
    return NULL;
}

static void classify(const Graph *g, Layer *l)
{
    if (find_what(l->what, l->np, "moving_mean") >= 0 && find_what(l->what, l->np, "gamma") >= 0) {
        l->kind = LK_BN;
        return;
    }
    int k = find_what(l->what, l->np, "kernel");
    if (k < 0)
        return;
    const Node *mm = consumer(g, l->p[k], OP_MATMUL, 1);
    if (l->p[k]->shape.rank == 2 && mm) {
        l->kind = LK_DENSE;
        const Node *x = flattened(mm->in[0], 8);
        if (x) {
            const Shape *s = &x->shape;
            l->flat_c = s->d[3];
            l->flat_hw = s->d[1] * s->d[2];
        }
    } else if (l->p[k]->shape.rank == 4 && consumer(g, l->p[k], OP_CONV2D, 1)) {
        l->kind = LK_CONV;
    }
}

static bool stored(const Node *n)
{
    return n->op == OP_PARAM && (n->a.role == ROLE_WEIGHT || n->a.role == ROLE_STATE);
}

/* The layers of g in the order of their first parameter; *n their count. */
static Layer *model_layers(const Graph *g, int *n)
{
    Layer *ls = xcalloc((size_t)g->nnodes + 1, sizeof(Layer));
    int nl = 0;
    for (int i = 0; i < g->nnodes; i++) {
        Node *p = g->nodes[i];
        if (!stored(p))
            continue;
        const char *dot = strrchr(p->a.name, '.');
        size_t len = dot ? (size_t)(dot - p->a.name) : strlen(p->a.name);
        Layer *l = NULL;
        for (int k = 0; k < nl && !l; k++)
            if (strlen(ls[k].name) == len && strncmp(ls[k].name, p->a.name, len) == 0)
                l = &ls[k];
        if (!l) {
            l = &ls[nl++];
            l->name = xmalloc(len + 1);
            memcpy(l->name, p->a.name, len);
            l->name[len] = 0;
        }
        if (l->np < MAX_LAYER_PARAMS) {
            l->what[l->np] = dot ? dot + 1 : p->a.name;
            l->p[l->np++] = p;
        }
    }
    for (int k = 0; k < nl; k++)
        classify(g, &ls[k]);
    *n = nl;
    return ls;
}

static void free_layers(Layer *ls, int n)
{
    for (int i = 0; i < n; i++)
        xfree(ls[i].name);
    xfree(ls);
}

/* ---- the layout notes of a checkpoint ---- */

/* How PyTorch holds parameter `what` of a layer of kind k: its name in
 * the module and the transformation from modelc's layout. */
static const char *torch_what(LayerKind k, const char *what)
{
    static const char *const bn[][2] = {
        {"gamma", "weight"}, {"beta", "bias"}, {"moving_mean", "running_mean"}, {"moving_var", "running_var"}};
    if (k == LK_BN) {
        for (int i = 0; i < ARRAY_LEN(bn); i++)
            if (strcmp(bn[i][0], what) == 0)
                return bn[i][1];
        return NULL;
    }
    if (strcmp(what, "kernel") == 0)
        return "weight";
    return strcmp(what, "bias") == 0 ? "bias" : NULL;
}

void mc_layout_metadata(const Graph *g, Metadata *meta)
{
    int nl;
    Layer *ls = model_layers(g, &nl);
    StrBuf order;
    sb_init(&order);
    char key[300], val[300];
    for (int i = 0; i < nl; i++) {
        const Layer *l = &ls[i];
        sb_printf(&order, "%s%s", i ? "," : "", l->name);
        for (int j = 0; j < l->np && l->kind != LK_OTHER; j++) {
            bool kernel = strcmp(l->what[j], "kernel") == 0;
            snprintf(key, sizeof key, "layout.%s", l->p[j]->a.name);
            rt_meta_set(meta, key, kernel ? (l->kind == LK_CONV ? "HWIO" : "IO") : "C");
            const char *tw = torch_what(l->kind, l->what[j]);
            if (!tw)
                continue;
            snprintf(key, sizeof key, "torch.%s", l->p[j]->a.name);
            if (kernel && l->kind == LK_CONV)
                snprintf(val, sizeof val, "%s: permute 3,2,0,1 (HWIO to OIHW)", tw);
            else if (kernel && l->flat_c)
                snprintf(val, sizeof val, "%s: transpose, columns from NHWC to NCHW flatten order (%lld channels)",
                         tw, (long long)l->flat_c);
            else if (kernel)
                snprintf(val, sizeof val, "%s: transpose", tw);
            else
                snprintf(val, sizeof val, "%s", tw);
            rt_meta_set(meta, key, val);
        }
    }
    rt_meta_set(meta, "layers", order.s ? order.s : "");
    sb_free(&order);
    free_layers(ls, nl);
}

/* ---- the file's modules ---- */

typedef struct Conv {
    const Graph *g;
    mc_weights_from from;
    const char *in;
    TensorMap src;
    Layer *layers;
    int nlayers;
    Module *mods;
    int nmods;
    Diags *d;
    SrcLoc loc; /* the input file */
    FILE *out;
} Conv;

static char sep_of(const Conv *c)
{
    return c->from == MC_FROM_KERAS ? '/' : '.';
}

/* The name a module matches a layer by: PyTorch's as it is; Keras's last
 * component with batch_normalization as batchnorm. */
static char *match_name(const Conv *c, const char *prefix)
{
    if (c->from == MC_FROM_TORCH)
        return xstrdup(prefix);
    const char *last = strrchr(prefix, '/');
    last = last ? last + 1 : prefix;
    const char *bn = "batch_normalization";
    if (strncmp(last, bn, strlen(bn)) == 0) {
        StrBuf b;
        sb_init(&b);
        sb_printf(&b, "batchnorm%s", last + strlen(bn));
        return sb_take(&b);
    }
    return xstrdup(last);
}

static const Tensor *mod_tensor(const Conv *c, const Module *m, const char *what)
{
    int k = find_what(m->what, m->nt, what);
    return k >= 0 ? c->src.t[m->t[k]] : NULL;
}

static void classify_module(const Conv *c, Module *m)
{
    bool torch = c->from == MC_FROM_TORCH;
    const Tensor *w = mod_tensor(c, m, torch ? "weight" : "kernel");
    if (mod_tensor(c, m, torch ? "running_mean" : "moving_mean"))
        m->kind = LK_BN;
    else if (w && w->rank == 2)
        m->kind = LK_DENSE;
    else if (w && w->rank == 4)
        m->kind = LK_CONV;
}

/* Keras names may end in ":0"; PyTorch's num_batches_tracked is skipped. */
static bool build_modules(Conv *c)
{
    c->mods = xcalloc((size_t)c->src.n + 1, sizeof(Module));
    for (int i = 0; i < c->src.n; i++) {
        char *name = c->src.names[i];
        char *colon = c->from == MC_FROM_KERAS ? strrchr(name, ':') : NULL;
        if (colon && strspn(colon + 1, "0123456789") == strlen(colon + 1))
            *colon = 0;
        const char *what = what_of(name, sep_of(c));
        if (c->from == MC_FROM_TORCH && strcmp(what, "num_batches_tracked") == 0)
            continue;
        size_t len = what == name ? 0 : (size_t)(what - name - 1);
        Module *m = NULL;
        for (int k = 0; k < c->nmods && !m; k++)
            if (strlen(c->mods[k].name) == len && strncmp(c->mods[k].name, name, len) == 0)
                m = &c->mods[k];
        if (!m) {
            m = &c->mods[c->nmods++];
            m->name = xmalloc(len + 1);
            memcpy(m->name, name, len);
            m->name[len] = 0;
            m->match = match_name(c, m->name);
        }
        if (m->nt == MAX_LAYER_PARAMS) {
            diag_error(c->d, c->loc, "module '%s' has more than %d tensors", m->name, MAX_LAYER_PARAMS);
            return false;
        }
        m->what[m->nt] = what;
        m->t[m->nt++] = i;
    }
    for (int k = 0; k < c->nmods; k++)
        classify_module(c, &c->mods[k]);
    return true;
}

/* ---- pairing modules with layers ---- */

static bool pair_by_name(Conv *c)
{
    for (int k = 0; k < c->nmods; k++) {
        Module *m = &c->mods[k];
        for (int i = 0; i < c->nlayers && !m->layer; i++)
            if (strcmp(c->layers[i].name, m->match) == 0) {
                if (c->layers[i].matched) {
                    diag_error(c->d, c->loc, "ambiguous: modules '%s' and another both name layer '%s'", m->name,
                               c->layers[i].name);
                    return false;
                }
                m->layer = &c->layers[i];
                c->layers[i].matched = true;
            }
    }
    return true;
}

static void list_names(StrBuf *b, const Conv *c, bool mods)
{
    int n = 0;
    for (int i = 0; i < (mods ? c->nmods : c->nlayers); i++) {
        const char *name = mods ? (c->mods[i].layer ? NULL : c->mods[i].name)
                                : (c->layers[i].matched ? NULL : c->layers[i].name);
        if (name)
            sb_printf(b, "%s'%s'", n++ ? ", " : "", name);
    }
    if (!n)
        sb_puts(b, "none");
}

static bool pair_by_order(Conv *c)
{
    int um = 0, ul = 0;
    for (int k = 0; k < c->nmods; k++)
        um += !c->mods[k].layer;
    for (int i = 0; i < c->nlayers; i++)
        ul += !c->layers[i].matched;
    if (um != ul) {
        StrBuf a, b;
        sb_init(&a);
        sb_init(&b);
        list_names(&a, c, true);
        list_names(&b, c, false);
        diag_error(c->d, c->loc,
                   "ambiguous: %d modules of the file (%s) match no layer by name, but %d layers of the model "
                   "(%s) are left: cannot pair them by order",
                   um, a.s, ul, b.s);
        sb_free(&a);
        sb_free(&b);
        return false;
    }
    int i = 0;
    for (int k = 0; k < c->nmods; k++) {
        Module *m = &c->mods[k];
        if (m->layer)
            continue;
        while (c->layers[i].matched)
            i++;
        m->layer = &c->layers[i];
        c->layers[i].matched = true;
    }
    return true;
}

/* ---- converting one tensor ---- */

/* The layer parameter a file tensor becomes, or NULL (an error). */
static const char *target_what(const Conv *c, LayerKind k, const char *what)
{
    static const char *const torch_bn[][2] = {
        {"weight", "gamma"}, {"bias", "beta"}, {"running_mean", "moving_mean"}, {"running_var", "moving_var"}};
    static const char *const keras_bn[][2] = {
        {"gamma", "gamma"}, {"beta", "beta"}, {"moving_mean", "moving_mean"}, {"moving_variance", "moving_var"}};
    if (k == LK_BN) {
        const char *const(*t)[2] = c->from == MC_FROM_TORCH ? torch_bn : keras_bn;
        for (int i = 0; i < ARRAY_LEN(torch_bn); i++)
            if (strcmp(t[i][0], what) == 0)
                return t[i][1];
        return NULL;
    }
    if (strcmp(what, c->from == MC_FROM_TORCH ? "weight" : "kernel") == 0)
        return "kernel";
    return strcmp(what, "bias") == 0 ? "bias" : NULL;
}

static void dims_str(const int64_t *d, int rank, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < rank && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? "," : "", (long long)d[i]);
    if (k < n)
        snprintf(buf + k, n - k, "]");
}

/* The file tensor's shape once converted to the layer's layout. */
static void converted_dims(const Conv *c, const Layer *l, bool kernel, const Tensor *s, int64_t *d)
{
    memcpy(d, s->dims, sizeof(int64_t) * (size_t)s->rank);
    if (c->from != MC_FROM_TORCH || !kernel)
        return;
    if (s->rank == 2) {
        d[0] = s->dims[1];
        d[1] = s->dims[0];
    } else if (s->rank == 4 && l->kind == LK_CONV) {
        int64_t hwio[4] = {s->dims[2], s->dims[3], s->dims[1], s->dims[0]};
        memcpy(d, hwio, sizeof hwio);
    }
}

static void convert_values(const Conv *c, const Layer *l, bool kernel, const Tensor *s, Tensor *t)
{
    if (c->from != MC_FROM_TORCH || !kernel) {
        for (int64_t i = 0; i < s->numel; i++)
            rt_set(t, i, rt_get(s, i));
    } else if (s->rank == 2) { /* [units, in] -> [in, units], rows in NHWC flatten order */
        int64_t units = s->dims[0], in = s->dims[1];
        for (int64_t i = 0; i < in; i++) {
            int64_t row = fe_onnx_nhwc_row(i, l->flat_c, l->flat_hw);
            for (int64_t u = 0; u < units; u++)
                rt_set(t, row * units + u, rt_get(s, u * in + i));
        }
    } else { /* OIHW -> HWIO */
        int64_t O = s->dims[0], I = s->dims[1], H = s->dims[2], W = s->dims[3];
        for (int64_t o = 0; o < O; o++)
            for (int64_t i = 0; i < I; i++)
                for (int64_t h = 0; h < H; h++)
                    for (int64_t w = 0; w < W; w++)
                        rt_set(t, ((h * W + w) * I + i) * O + o, rt_get(s, ((o * I + i) * H + h) * W + w));
    }
}

static const char *note(const Conv *c, const Layer *l, bool kernel, const Tensor *s)
{
    if (c->from != MC_FROM_TORCH || !kernel)
        return "";
    if (s->rank == 4)
        return " (OIHW to HWIO)";
    return l->flat_c ? " (transposed, rows permuted from NCHW to NHWC flatten order)" : " (transposed)";
}

static bool convert_module(Conv *c, const Module *m, TensorMap *out)
{
    Layer *l = m->layer;
    if (m->kind != l->kind || l->kind == LK_OTHER) {
        diag_error(c->d, c->loc, "module '%s' (%s) cannot be layer '%s' (%s)%s", m->name, kind_names[m->kind],
                   l->name, kind_names[l->kind], l->kind == LK_OTHER ? ": convert-weights maps dense, conv2d and batchnorm layers" : "");
        return false;
    }
    for (int j = 0; j < m->nt; j++) {
        const char *sname = c->src.names[m->t[j]];
        const Tensor *s = c->src.t[m->t[j]];
        const char *tw = target_what(c, l->kind, m->what[j]);
        int k = tw ? find_what(l->what, l->np, tw) : -1;
        if (k < 0) {
            diag_error(c->d, c->loc, "'%s' has no counterpart in layer '%s' (%s)", sname, l->name, kind_names[l->kind]);
            return false;
        }
        const Node *p = l->p[k];
        bool kernel = strcmp(tw, "kernel") == 0;
        int64_t d[IR_MAXRANK];
        char ss[128], ts[128], ps[128];
        converted_dims(c, l, kernel, s, d);
        dims_str(s->dims, s->rank, ss, sizeof ss);
        dims_str(p->shape.d, p->shape.rank, ps, sizeof ps);
        if (s->rank != p->shape.rank || memcmp(d, p->shape.d, sizeof(int64_t) * (size_t)s->rank) != 0) {
            dims_str(d, s->rank, ts, sizeof ts);
            diag_error(c->d, c->loc, "shape mismatch: '%s' %s cannot be '%s' %s", sname, ss, p->a.name, ps);
            if (strcmp(ss, ts))
                diag_note(c->d, c->loc, "'%s' converted to modelc's layout is %s", sname, ts);
            return false;
        }
        if (rt_map_get(out, p->a.name)) {
            diag_error(c->d, c->loc, "ambiguous: two tensors of the file map to '%s'", p->a.name);
            return false;
        }
        Tensor *t = rt_tensor_try_for(p->dt, &p->shape);
        if (!t) {
            diag_error(c->d, c->loc, "'%s' is too large", p->a.name);
            return false;
        }
        convert_values(c, l, kernel, s, t);
        rt_map_put(out, p->a.name, t);
        fprintf(c->out, "%s %s -> %s %s%s\n", sname, ss, p->a.name, ps, note(c, l, kernel, s));
    }
    return true;
}

static bool convert(Conv *c, TensorMap *out)
{
    if (!build_modules(c) || !pair_by_name(c) || !pair_by_order(c))
        return false;
    for (int k = 0; k < c->nmods; k++)
        if (!convert_module(c, &c->mods[k], out))
            return false;
    return true;
}

static int convert_cmd(const char *model, const mc_convert_options *o, FILE *out, FILE *err)
{
    Diags d;
    diags_init(&d);
    Graph *g = mc_load_source(model, NULL, &d, err);
    if (!g) {
        diags_free(&d);
        return 1;
    }
    Conv c = {.g = g, .from = o->from, .in = o->input, .d = &d, .out = out};
    rt_map_init(&c.src);
    c.loc = rt_file_loc(&d, o->input);
    TensorMap res;
    rt_map_init(&res);
    c.layers = model_layers(g, &c.nlayers);
    bool ok = rt_safetensors_read_skip(o->input, o->from == MC_FROM_TORCH ? ".num_batches_tracked" : NULL, &c.src, NULL, &d) && convert(&c, &res) &&
              rt_check_params(g, &res, o->input, false, &d);
    if (ok) {
        Metadata meta;
        rt_meta_init(&meta);
        rt_meta_set(&meta, RT_META_FORMAT, RT_META_FORMAT_NAME);
        rt_meta_set(&meta, RT_META_FORMAT_VERSION, RT_FORMAT_VERSION);
        rt_meta_set(&meta, RT_META_MODEL, g->name);
        rt_meta_set(&meta, "converted_from", o->from == MC_FROM_TORCH ? "torch" : "keras");
        mc_layout_metadata(g, &meta);
        ok = rt_safetensors_write(o->output, &res, &meta, &d);
        rt_meta_free(&meta);
    }
    if (ok)
        fprintf(out, "wrote %s (%d tensors)\n", o->output, res.n);
    fflush(out);
    diags_print(&d, err);
    for (int k = 0; k < c.nmods; k++) {
        xfree(c.mods[k].name);
        xfree(c.mods[k].match);
    }
    xfree(c.mods);
    free_layers(c.layers, c.nlayers);
    rt_map_free(&c.src);
    rt_map_free(&res);
    ir_graph_free(g);
    diags_free(&d);
    return ok ? 0 : 1;
}

int mc_convert_weights(const char *model, const mc_convert_options *o, FILE *out, FILE *err)
{
    MC_COMMAND(model, err, "converting weights", convert_cmd(model, o, out, err));
}
