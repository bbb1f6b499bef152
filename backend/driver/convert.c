/* modelc convert-weights: a PyTorch state_dict or Keras weights saved as
 * safetensors become a checkpoint of a model (mc_convert_weights), and
 * the layout notes every checkpoint carries in its __metadata__
 * (mc_layout_metadata).
 *
 * The model's parameters form layers (the part of a name before its last
 * dot): dense (kernel [in, units], bias), conv2d (kernel HWIO, bias),
 * batchnorm (gamma, beta, moving_mean, moving_var), embedding
 * (embeddings), layer_norm (gamma, beta) and the recurrent layers (kernel,
 * recurrent_kernel, bias; the gate count tells simple_rnn, gru and lstm
 * apart). The file's tensors form modules the same way (PyTorch:
 * fc1.weight; Keras: dense/kernel, lstm/lstm_cell/kernel). A module whose
 * name is a layer's (Keras's batch_normalization is modelc's batchnorm,
 * layer_normalization its layer_norm) is that layer; the others are
 * paired with the remaining layers in order, and their kinds must agree.
 * PyTorch's RNN, GRU and LSTM are split into a module per layer and
 * direction, each with its two biases summed (the GRU's kept as two
 * rows) and the GRU's gate blocks reordered from r, z, n to Keras's
 * z, r, h. PyTorch's
 * weights are transposed ([out, in] to [in, out]; OIHW to HWIO), and the
 * rows of a dense kernel fed by a flatten of a convolution's NHWC output
 * are permuted from PyTorch's NCHW flatten order (fe_onnx_nhwc_row, as
 * the ONNX importer does). */
#include "modelc_inspect.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "frontend/onnx/onnx.h"
#include "runtime/io/io.h"
#include "runtime/io/rtio.h"

typedef enum { LK_OTHER, LK_DENSE, LK_CONV, LK_BN, LK_EMB, LK_LN, LK_RNN, LK_GRU, LK_LSTM } LayerKind;

static const char *const kind_names[] = {"other", "dense", "conv2d", "batchnorm", "embedding", "layer_norm",
                                         "simple_rnn", "gru", "lstm"};

static bool recurrent_kind(LayerKind k)
{
    return k == LK_RNN || k == LK_GRU || k == LK_LSTM;
}

/* The recurrent kind of G gates (1, 3, 4), or LK_OTHER. */
static LayerKind gates_kind(int64_t G)
{
    return G == 1 ? LK_RNN : G == 3 ? LK_GRU : G == 4 ? LK_LSTM : LK_OTHER;
}

#define MAX_LAYER_PARAMS 8

/* A layer of the model: its parameters (weights and state) in graph order. */
typedef struct Layer {
    char *name;
    LayerKind kind;
    Node *p[MAX_LAYER_PARAMS];
    const char *what[MAX_LAYER_PARAMS]; /* the part after the dot */
    int np;
    int64_t flat_c, flat_hw; /* dense after a flatten of [N, H, W, C]: C and H*W */
    bool backwards;          /* a recurrent layer with go_backwards=true */
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
    bool reverse; /* PyTorch: the reverse direction of a bidirectional module */
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

static const Node *consumer_any(const Graph *g, const Node *p, Op op)
{
    for (int i = 0; i < g->nnodes; i++)
        for (int j = 0; g->nodes[i]->op == op && j < g->nodes[i]->nin; j++)
            if (g->nodes[i]->in[j] == p)
                return g->nodes[i];
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
    int e = find_what(l->what, l->np, "embeddings");
    if (e >= 0 && l->np == 1 && l->p[e]->shape.rank == 2 && consumer(g, l->p[e], OP_GATHER, 0)) {
        l->kind = LK_EMB;
        return;
    }
    if (find_what(l->what, l->np, "moving_mean") < 0 &&
        (find_what(l->what, l->np, "gamma") >= 0 || find_what(l->what, l->np, "beta") >= 0) &&
        l->np == (find_what(l->what, l->np, "gamma") >= 0) + (find_what(l->what, l->np, "beta") >= 0)) {
        l->kind = LK_LN;
        return;
    }
    int rk = find_what(l->what, l->np, "recurrent_kernel");
    if (rk >= 0) { /* [units, G*units], read by the layer's loop */
        const Shape *s = &l->p[rk]->shape;
        const Node *loop = consumer_any(g, l->p[rk], OP_LOOP);
        if (s->rank == 2 && s->d[0] > 0 && s->d[1] % s->d[0] == 0 && loop) {
            l->kind = gates_kind(s->d[1] / s->d[0]);
            l->backwards = loop->a.reverse;
        }
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
    if (k == LK_LN)
        return strcmp(what, "gamma") == 0 ? "weight" : strcmp(what, "beta") == 0 ? "bias" : NULL;
    if (strcmp(what, "kernel") == 0 || strcmp(what, "embeddings") == 0)
        return "weight";
    return strcmp(what, "bias") == 0 ? "bias" : NULL;
}

/* modelc's layout of parameter `what` of a layer of kind k. */
static const char *layout_of(LayerKind k, const char *what)
{
    bool kernel = strcmp(what, "kernel") == 0, rec = strcmp(what, "recurrent_kernel") == 0;
    switch (k) {
    case LK_CONV: return kernel ? "HWIO" : "C";
    case LK_DENSE: return kernel ? "IO" : "C";
    case LK_EMB: return "IO";
    case LK_LSTM: return kernel || rec ? "IO (gates i,f,c,o)" : "C (gates i,f,c,o)";
    case LK_GRU: return kernel || rec ? "IO (gates z,r,h)" : "2,C (input and recurrent bias; gates z,r,h)";
    case LK_RNN: return kernel || rec ? "IO" : "C";
    default: return "C";
    }
}

/* The PyTorch parameter(s) of a recurrent layer's `what` and how to get
 * them, or NULL. */
static const char *torch_recurrent(LayerKind k, const char *what)
{
    bool gru = k == LK_GRU;
    if (strcmp(what, "kernel") == 0)
        return gru ? "weight_ih_l0: transpose, gate blocks z,r,h to r,z,n" : "weight_ih_l0: transpose";
    if (strcmp(what, "recurrent_kernel") == 0)
        return gru ? "weight_hh_l0: transpose, gate blocks z,r,h to r,z,n" : "weight_hh_l0: transpose";
    if (strcmp(what, "bias") == 0)
        return gru ? "bias_ih_l0: row 0, bias_hh_l0: row 1, gate blocks z,r,h to r,z,n"
                   : "bias_ih_l0 (bias_hh_l0: zeros)";
    return NULL;
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
            rt_meta_set(meta, key, layout_of(l->kind, l->what[j]));
            const char *tw = recurrent_kind(l->kind) ? torch_recurrent(l->kind, l->what[j])
                                                     : torch_what(l->kind, l->what[j]);
            if (!tw)
                continue;
            snprintf(key, sizeof key, "torch.%s", l->p[j]->a.name);
            if (recurrent_kind(l->kind))
                snprintf(val, sizeof val, "%s", tw);
            else if (kernel && l->kind == LK_CONV)
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
    size_t len = strlen(last ? last + 1 : prefix);
    if (last && len > 5 && strcmp(last + 1 + len - 5, "_cell") == 0) { /* lstm/lstm_cell: the layer's name */
        const char *prev = last;
        while (prev > prefix && prev[-1] != '/')
            prev--;
        len = (size_t)(last - prev);
        last = prev;
    } else {
        last = last ? last + 1 : prefix;
    }
    static const char *const renamed[][2] = {{"batch_normalization", "batchnorm"},
                                             {"layer_normalization", "layer_norm"}};
    StrBuf b;
    sb_init(&b);
    for (int i = 0; i < ARRAY_LEN(renamed); i++) {
        size_t k = strlen(renamed[i][0]);
        if (len >= k && strncmp(last, renamed[i][0], k) == 0) {
            sb_printf(&b, "%s%.*s", renamed[i][1], (int)(len - k), last + k);
            return sb_take(&b);
        }
    }
    sb_printf(&b, "%.*s", (int)len, last);
    return sb_take(&b);
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
    const Tensor *b = mod_tensor(c, m, "bias");
    const Tensor *rec = mod_tensor(c, m, torch ? "weight_hh_l0" : "recurrent_kernel");
    if (mod_tensor(c, m, torch ? "running_mean" : "moving_mean"))
        m->kind = LK_BN;
    else if (rec) { /* [G*H, H] (Keras: [H, G*H]) */
        int64_t H = rec->rank == 2 ? rec->dims[torch ? 1 : 0] : 0, GH = rec->rank == 2 ? rec->dims[torch ? 0 : 1] : 0;
        m->kind = H > 0 && GH % H == 0 ? gates_kind(GH / H) : LK_OTHER;
    } else if (!torch && mod_tensor(c, m, "embeddings"))
        m->kind = LK_EMB;
    else if (!torch && (mod_tensor(c, m, "gamma") || mod_tensor(c, m, "beta")))
        m->kind = LK_LN;
    else if (torch && w && ((b && b->rank == w->rank && !memcmp(b->dims, w->dims, sizeof(int64_t) * (size_t)w->rank)) ||
                            (!b && w->rank == 1)))
        m->kind = LK_LN; /* LayerNorm: weight and bias of normalized_shape */
    else if (w && w->rank == 2)
        m->kind = LK_DENSE;
    else if (w && w->rank == 4)
        m->kind = LK_CONV;
}

/* A PyTorch recurrent tensor of layer k > 0 or of the reverse direction
 * (weight_ih_l1, bias_hh_l0_reverse, ...): its module is a layer in one
 * direction of its own, PREFIX_lK (PREFIX_lK_reverse), and its name
 * there the first layer's (weight_ih_l0). Returns that name, or NULL for
 * any other tensor. */
static const char *torch_rnn_part(const char *what, int *k, bool *reverse)
{
    static const char *const base[] = {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"};
    for (int i = 0; i < ARRAY_LEN(base); i++) {
        size_t n = strlen(base[i]) - 1; /* up to the layer number */
        if (strncmp(what, base[i], n) != 0 || !isdigit((unsigned char)what[n]))
            continue;
        char *end;
        long v = strtol(what + n, &end, 10);
        bool rev = strcmp(end, "_reverse") == 0;
        if ((*end && !rev) || v > 999 || (v == 0 && !rev) || (what[n] == '0' && end - (what + n) > 1))
            return NULL;
        *k = (int)v;
        *reverse = rev;
        return base[i];
    }
    return NULL;
}

/* Keras names may end in ":0"; PyTorch's num_batches_tracked is skipped;
 * PyTorch's stacked and bidirectional recurrent modules are split into
 * one module per layer and direction (torch_rnn_part). */
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
        int layer = 0;
        bool reverse = false;
        const char *part = c->from == MC_FROM_TORCH ? torch_rnn_part(what, &layer, &reverse) : NULL;
        char *key = xmalloc(len + 32);
        memcpy(key, name, len);
        key[len] = 0;
        if (part) {
            snprintf(key + len, 32, "%s_l%d%s", len ? "" : "rnn", layer, reverse ? "_reverse" : "");
            what = part;
        }
        Module *m = NULL;
        for (int k = 0; k < c->nmods && !m; k++)
            if (strcmp(c->mods[k].name, key) == 0)
                m = &c->mods[k];
        if (!m) {
            m = &c->mods[c->nmods++];
            m->name = key;
            m->match = match_name(c, m->name);
            m->reverse = reverse;
        } else {
            xfree(key);
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
    bool torch = c->from == MC_FROM_TORCH;
    if (k == LK_EMB)
        return strcmp(what, torch ? "weight" : "embeddings") == 0 ? "embeddings" : NULL;
    if (k == LK_LN) {
        if (strcmp(what, torch ? "weight" : "gamma") == 0)
            return "gamma";
        return strcmp(what, torch ? "bias" : "beta") == 0 ? "beta" : NULL;
    }
    if (recurrent_kind(k) && !torch && strcmp(what, "recurrent_kernel") == 0)
        return "recurrent_kernel";
    if (strcmp(what, torch ? "weight" : "kernel") == 0)
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

/* Stores t as parameter p, or an error when a tensor is there already. */
static bool put_param(Conv *c, TensorMap *out, const Node *p, Tensor *t)
{
    if (rt_map_get(out, p->a.name)) {
        rt_tensor_free(t);
        diag_error(c->d, c->loc, "ambiguous: two tensors of the file map to '%s'", p->a.name);
        return false;
    }
    rt_map_put(out, p->a.name, t);
    return true;
}

/* A shape mismatch of file tensor `sname` (dims s, want in the file's
 * layout) and parameter p. */
static bool mismatch(Conv *c, const char *sname, const Tensor *s, const int64_t *want, int wrank, const Node *p)
{
    char ss[128], ws[128], ps[128];
    dims_str(s->dims, s->rank, ss, sizeof ss);
    dims_str(want, wrank, ws, sizeof ws);
    dims_str(p->shape.d, p->shape.rank, ps, sizeof ps);
    diag_error(c->d, c->loc, "shape mismatch: '%s' %s cannot be '%s' %s", sname, ss, p->a.name, ps);
    diag_note(c->d, c->loc, "'%s' %s needs '%s' %s", p->a.name, ps, sname, ws);
    return false;
}

/* One layer in one direction of PyTorch's RNN, GRU or LSTM (weight_ih_l0
 * [G*H, I], weight_hh_l0 [G*H, H], bias_ih_l0, bias_hh_l0 [G*H], as
 * torch_rnn_part names them) onto the layer of that direction: weights
 * transposed, the GRU's gate blocks r, z, n to z, r, h;
 * the two biases summed (the GRU's as the two rows of its bias). */
static bool convert_torch_recurrent(Conv *c, const Module *m, TensorMap *out)
{
    static const char *const names[] = {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"};
    const Layer *l = m->layer;
    int ti[4] = {-1, -1, -1, -1};
    if (m->reverse != l->backwards) {
        diag_error(c->d, c->loc, "module '%s' reads the sequence %s, layer '%s' %s (go_backwards=%s)", m->name,
                   m->reverse ? "backwards" : "forwards", l->name, l->backwards ? "backwards" : "forwards",
                   l->backwards ? "true" : "false");
        return false;
    }
    for (int j = 0; j < m->nt; j++) {
        int k = find_what(names, 4, m->what[j]);
        if (k < 0) {
            diag_error(c->d, c->loc, "'%s' has no counterpart in layer '%s' (%s): a modelc layer takes weight_ih_lK, "
                                     "weight_hh_lK, bias_ih_lK and bias_hh_lK (with _reverse: a go_backwards layer)",
                       c->src.names[m->t[j]], l->name, kind_names[l->kind]);
            return false;
        }
        ti[k] = m->t[j];
    }
    int kk = find_what(l->what, l->np, "kernel"), kr = find_what(l->what, l->np, "recurrent_kernel"),
        kb = find_what(l->what, l->np, "bias");
    if (ti[0] < 0 || ti[1] < 0 || (ti[2] < 0) != (ti[3] < 0) || kk < 0) {
        diag_error(c->d, c->loc, "module '%s' needs weight_ih_l0 and weight_hh_l0, and bias_ih_l0 with bias_hh_l0",
                   m->name);
        return false;
    }
    if (ti[2] >= 0 && kb < 0) {
        diag_error(c->d, c->loc, "'%s' has no counterpart in layer '%s' (%s, use_bias=false)", c->src.names[ti[2]],
                   l->name, kind_names[l->kind]);
        return false;
    }
    bool gru = l->kind == LK_GRU;
    const Node *pk = l->p[kk], *pr = l->p[kr];
    int64_t H = pr->shape.d[0], GH = pr->shape.d[1], G = GH / H, I = pk->shape.d[0];
    static const int gru_block[3] = {1, 0, 2}; /* PyTorch's block of Keras's z, r, h */
    const char *gates = gru ? ", gate blocks r,z,n to z,r,h" : "";
    for (int w = 0; w < 2; w++) { /* kernel, recurrent kernel */
        const Tensor *s = c->src.t[ti[w]];
        const Node *p = w ? pr : pk;
        int64_t in = w ? H : I, want[2] = {GH, in};
        if (s->rank != 2 || s->dims[0] != GH || s->dims[1] != in)
            return mismatch(c, c->src.names[ti[w]], s, want, 2, p);
        Tensor *t = rt_tensor_try_for(p->dt, &p->shape);
        if (!t)
            return diag_error(c->d, c->loc, "'%s' is too large", p->a.name), false;
        for (int64_t g = 0; g < G; g++) {
            int64_t tb = gru ? gru_block[g] : g;
            for (int64_t j = 0; j < H; j++)
                for (int64_t i = 0; i < in; i++)
                    rt_set(t, i * GH + g * H + j, rt_get(s, (tb * H + j) * in + i));
        }
        if (!put_param(c, out, p, t))
            return false;
        char ss[128], ps[128];
        dims_str(s->dims, s->rank, ss, sizeof ss);
        dims_str(p->shape.d, p->shape.rank, ps, sizeof ps);
        fprintf(c->out, "%s %s -> %s %s (transposed%s)\n", c->src.names[ti[w]], ss, p->a.name, ps, gates);
    }
    if (ti[2] < 0)
        return true;
    const Node *p = l->p[kb];
    for (int w = 2; w < 4; w++) {
        const Tensor *s = c->src.t[ti[w]];
        if (s->rank != 1 || s->dims[0] != GH)
            return mismatch(c, c->src.names[ti[w]], s, &GH, 1, p);
    }
    const Tensor *bi = c->src.t[ti[2]], *bh = c->src.t[ti[3]];
    Tensor *t = rt_tensor_try_for(p->dt, &p->shape);
    if (!t)
        return diag_error(c->d, c->loc, "'%s' is too large", p->a.name), false;
    for (int64_t g = 0; g < G; g++) {
        int64_t tb = gru ? gru_block[g] : g;
        for (int64_t j = 0; j < H; j++) {
            int64_t from = tb * H + j, to = g * H + j;
            if (gru) {
                rt_set(t, to, rt_get(bi, from));
                rt_set(t, GH + to, rt_get(bh, from));
            } else {
                rt_set(t, to, rt_get(bi, from) + rt_get(bh, from));
            }
        }
    }
    if (!put_param(c, out, p, t))
        return false;
    char ss[128], ps[128];
    dims_str(bi->dims, 1, ss, sizeof ss);
    dims_str(p->shape.d, p->shape.rank, ps, sizeof ps);
    fprintf(c->out, "%s %s + %s %s -> %s %s (%s%s)\n", c->src.names[ti[2]], ss, c->src.names[ti[3]], ss, p->a.name, ps,
            gru ? "the two rows" : "summed", gates);
    return true;
}

static bool convert_module(Conv *c, const Module *m, TensorMap *out)
{
    Layer *l = m->layer;
    LayerKind mk = m->kind;
    if (mk == LK_DENSE && l->kind == LK_EMB && c->from == MC_FROM_TORCH && m->nt == 1)
        mk = LK_EMB; /* nn.Embedding: weight [num_embeddings, dim], as a Linear without bias */
    if (mk != l->kind || l->kind == LK_OTHER) {
        diag_error(c->d, c->loc, "module '%s' (%s) cannot be layer '%s' (%s)%s", m->name, kind_names[mk], l->name,
                   kind_names[l->kind],
                   l->kind == LK_OTHER ? ": convert-weights maps dense, conv2d, batchnorm, embedding, layer_norm, "
                                         "simple_rnn, gru and lstm layers"
                                       : "");
        return false;
    }
    if (recurrent_kind(l->kind) && c->from == MC_FROM_TORCH)
        return convert_torch_recurrent(c, m, out);
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
