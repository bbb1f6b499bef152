/* Loading data for train/eval/stats and fitting it to the model's inputs:
 * names are matched first; unmatched inputs are paired by dtype kind;
 * per-example shapes are reshaped when the element counts agree; class
 * labels become one-hot when the model's input asks for it. */
#include "data_cli.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/resource.h>

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

static bool suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcmp(s + n - k, suf) == 0;
}

static SrcLoc file_loc(Diags *d, const char *f)
{
    return (SrcLoc){diags_intern_file(d, f), 0, 0};
}

/* Classes a label input feeds: the depth of the one_hot reading it. */
static int label_classes(const Graph *g)
{
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i]->op == OP_ONE_HOT)
            return g->nodes[i]->a.depth;
    return 0;
}

static DType model_float(const Graph *g)
{
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i]->op == OP_INPUT && ir_dtype_is_float(g->nodes[i]->dt))
            return g->nodes[i]->dt;
    return DT_F32;
}

static bool load_raw(const DataArgs *a, const char **src, int nsrc, const char *split,
                     const Graph *g, uint64_t seed, Dataset *out, bool *have, Diags *d)
{
    RtLoadOpts o;
    rt_load_opts_default(&o);
    o.dt = model_float(g);
    o.scale = !a->no_scale;
    int cls = label_classes(g);
    o.classes = cls > 0 ? cls : 10;
    o.limit = a->limit; /* the IDX loader stops there; the others are sliced afterwards */
    if (a->label_col) {
        char *end;
        long idx = strtol(a->label_col, &end, 10);
        if (*end)
            o.csv_label = a->label_col;
        else
            o.csv_label_index = (int)idx;
    }
    *have = true;
    const char *s = nsrc ? src[0] : "fashion-mnist";
    struct stat st;
    if (strncmp(s, "uniform:", 8) == 0) {
        char *end;
        long long n = strtoll(s + 8, &end, 10);
        if (*end || n <= 0 || n > 100000000) {
            diag_error(d, (SrcLoc){0}, "--data uniform:N needs a positive count, got '%s'", s);
            return false;
        }
        if (strcmp(split, "test") == 0)
            seed ^= 0x9e3779b97f4a7c15ull; /* a different sample for the test split */
        return rt_dataset_uniform(out, n, o.dt, "x", "y", -1, 1, seed);
    }
    if (strcmp(s, "fashion-mnist") == 0 || (stat(s, &st) == 0 && S_ISDIR(st.st_mode)))
        return rt_load_fashion_mnist(strcmp(s, "fashion-mnist") == 0 ? FASHION_DIR : s, split, &o,
                                     out, d);
    if (strcmp(split, "test") == 0) {
        *have = false;
        return true;
    }
    if (suffix(s, ".csv") || suffix(s, ".csv.gz"))
        return rt_load_csv(s, &o, out, d);
    if (suffix(s, ".npy"))
        return rt_load_npy(s, nsrc > 1 ? src[1] : NULL, &o, out, d);
    if (suffix(s, ".safetensors"))
        return rt_load_safetensors_dataset(s, &o, out, d);
    diag_error(d, file_loc(d, s), "unknown data format (expected a directory of IDX files, "
                                  ".csv, .csv.gz, .npy, .safetensors, fashion-mnist or uniform:N)");
    return false;
}

static bool is_model_input(const Node *n)
{
    return n->op == OP_INPUT && strcmp(n->a.name, "optimizer.lr") != 0;
}

/* Fit column c of the loaded data to input node n (dtype, one-hot,
 * per-example reshape) and add it to out under the input's name. Except
 * for one-hot labels the column is moved, not copied: reshaped in place
 * and converted when the dtype differs (8-bit data keeps its bytes and
 * converts its 256 values). */
static bool fit(DataCol *c, const Node *n, Dataset *out, Diags *d)
{
    Tensor *t = c->t;
    const Shape *s = &n->shape;
    int64_t per = ir_shape_numel(s, 1), have = t->rank ? t->numel / (t->dims[0] ? t->dims[0] : 1) : 1;
    int64_t rows = t->rank ? t->dims[0] : 1;
    char b1[96], b2[128];
    if (t->dt == DT_I32 && ir_dtype_is_float(n->dt) && have == 1 && per > 1 && s->rank == 2) {
        int64_t dims[2] = {rows, s->d[1]};
        Tensor *r = rt_tensor_new(n->dt, 2, dims);
        for (int64_t i = 0; i < rows; i++) {
            int64_t k = (int64_t)rt_col_get(c, i);
            if (k >= 0 && k < s->d[1])
                rt_set(r, i * s->d[1] + k, 1);
        }
        return rt_dataset_add(out, n->a.name, r);
    }
    if (per != have || s->rank == 0 || s->d[0] != IR_DIM_N) {
        diag_error(d, n->loc, "input '%s' is %s but the data '%s' is %s", n->a.name,
                   ir_type_str(n->dt, s, b2, sizeof b2), c->name, rt_tensor_type_str(t, b1, sizeof b1));
        return false;
    }
    int64_t dims[IR_MAXRANK] = {0};
    dims[0] = rows;
    for (int k = 1; k < s->rank; k++)
        dims[k] = s->d[k];
    t->rank = s->rank; /* same elements, same order: only the shape changes */
    memcpy(t->dims, dims, sizeof dims);
    rt_col_cast(c, n->dt);
    return rt_dataset_take(out, n->a.name, c);
}

static bool bind(const Graph *g, Dataset *raw, Dataset *out, Diags *d)
{
    const Node *un[16];
    int nun = 0;
    bool used[64] = {0};
    rt_dataset_init(out);
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        if (!is_model_input(n))
            continue;
        int k = rt_dataset_find(raw, n->a.name);
        if (k >= 0 && k < 64) {
            used[k] = true;
            if (!fit(&raw->cols[k], n, out, d))
                return false;
        } else if (nun < 16) {
            un[nun++] = n;
        }
    }
    for (int j = 0; j < nun; j++) {
        const Node *n = un[j];
        int pick = -1;
        for (int k = 0; k < raw->ncols && k < 64; k++) {
            if (used[k])
                continue;
            bool lab = raw->cols[k].t->dt == DT_I32;
            bool want_lab = n->dt == DT_I32 || (n->shape.rank == 2 && strcmp(raw->cols[k].name, "y") == 0);
            if (pick < 0 || lab == want_lab)
                pick = lab == want_lab || pick < 0 ? k : pick;
            if (lab == want_lab)
                break;
        }
        if (pick < 0) {
            diag_error(d, n->loc, "no data for input '%s' (the data has no unused tensor to bind)",
                       n->a.name);
            return false;
        }
        used[pick] = true;
        if (!fit(&raw->cols[pick], n, out, d))
            return false;
    }
    if (out->ncols == 0)
        out->n = raw->n;
    return true;
}

bool data_load_src(const DataArgs *a, const char **src, int nsrc, const char *split,
                   const Graph *g, uint64_t seed, Dataset *out, bool *have, Diags *d)
{
    Dataset raw;
    rt_dataset_init(&raw);
    rt_dataset_init(out);
    bool ok = load_raw(a, src, nsrc, split, g, seed, &raw, have, d);
    if (ok && *have && a->limit > 0 && raw.n > a->limit) {
        Dataset cut;
        rt_dataset_slice(&raw, 0, a->limit, &cut);
        rt_dataset_free(&raw);
        raw = cut;
    }
    if (ok && *have)
        ok = bind(g, &raw, out, d);
    rt_dataset_free(&raw);
    return ok;
}

bool data_load(const DataArgs *a, const char *split, const Graph *g, uint64_t seed, Dataset *out,
               bool *have, Diags *d)
{
    return data_load_src(a, (const char **)a->data.v, a->data.n, split, g, seed, out, have, d);
}

static void *bg_main(void *p)
{
    DataBg *l = p;
    l->rc = l->fn(l->ctx, l->g, l->seed, &l->d);
    return NULL;
}

/* The data thread yields to the compile's threads (two on a 2-core
 * machine): Linux's nice value is per thread, so the loading takes the
 * cycles the compile leaves. Should that fail, it runs at the normal
 * priority. */
static void *bg_thread(void *p)
{
    (void)setpriority(PRIO_PROCESS, 0, 10);
    return bg_main(p);
}

void data_bg_start(DataBg *l, const char *model, const mc_options *mo, DataBgFn fn, void *ctx)
{
    memset(l, 0, sizeof *l);
    l->fn = fn;
    l->ctx = ctx;
    l->rc = 1;
    diags_init(&l->d);
    diags_init(&l->parse_d);
    l->g = fe_load_file(model, &l->parse_d); /* errors are reported by the compile */
    if (!l->g)
        return;
    l->seed = mo->seed_set ? mo->seed : l->g->train.seed;
    l->started = pthread_create(&l->th, NULL, bg_thread, l) == 0;
    if (!l->started)
        bg_main(l);
}

static void bg_free(DataBg *l)
{
    if (l->started)
        pthread_join(l->th, NULL);
    l->started = false;
    ir_graph_free(l->g);
    l->g = NULL;
    diags_free(&l->d);
    diags_free(&l->parse_d);
}

int data_bg_finish(DataBg *l)
{
    if (l->started)
        pthread_join(l->th, NULL);
    l->started = false;
    diags_print(l->g ? &l->d : &l->parse_d, stderr);
    int rc = l->g ? l->rc : 1;
    bg_free(l);
    return rc;
}

void data_bg_cancel(DataBg *l)
{
    bg_free(l);
}

int data_views(const TensorMap *b, mc_tensor *v, int max)
{
    int n = 0;
    for (int i = 0; i < b->n && n < max; i++, n++) {
        Tensor *t = b->t[i];
        v[n] = (mc_tensor){b->names[i], t->dt == DT_F64 ? 1 : t->dt == DT_I32 ? 2 : 0, t->rank,
                           t->dims, t->data};
    }
    return n;
}
