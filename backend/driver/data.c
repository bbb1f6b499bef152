/* Data sets bound to a model's inputs (mc_data in modelc.h; train, eval,
 * predict and stats load through here): names are matched first;
 * unmatched inputs are paired by dtype kind; per-example shapes are
 * reshaped when the element counts agree; class labels become one-hot
 * when the model's input asks for it. */
#include "data.h"

#include "passes/passes.h"
#include "runtime/io/io.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

/* The one_hot that class labels feed, or NULL: its depth is the number
 * of classes, and its operand, when an input [N], the labels. */
static const Node *label_one_hot(const Graph *g)
{
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i]->op == OP_ONE_HOT)
            return g->nodes[i];
    return NULL;
}

static int label_classes(const Graph *g)
{
    const Node *h = label_one_hot(g);
    return h ? (int)h->a.depth : 0;
}

/* The input of class labels [N] that the one_hot reads, or NULL. */
static const char *label_input(const Graph *g)
{
    const Node *h = label_one_hot(g);
    return h && h->in[0]->op == OP_INPUT && h->in[0]->shape.rank == 1 ? h->in[0]->a.name : NULL;
}

static DType model_float(const Graph *g)
{
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i]->op == OP_INPUT && ir_dtype_is_float(g->nodes[i]->dt))
            return g->nodes[i]->dt;
    return DT_F32;
}

static bool is_model_input(const Node *n)
{
    return n->op == OP_INPUT && strcmp(n->a.name, "optimizer.lr") != 0;
}

/* text:FILE binds to the model's inputs by their types: the first i32
 * input [N, T] takes the windows of T characters, the next i32 input
 * ([N, T] or [N]) the characters that follow. */
static bool load_text(const Graph *g, const char *path, RtLoadOpts *o, Dataset *out, Diags *d)
{
    const Node *x = NULL, *y = NULL;
    for (int i = 0; i < g->nnodes && !y; i++) {
        const Node *n = g->nodes[i];
        if (!is_model_input(n) || n->dt != DT_I32)
            continue;
        if (!x && n->shape.rank == 2 && n->shape.d[0] == IR_DIM_N && n->shape.d[1] > 0)
            x = n;
        else if (x && n->shape.d[0] == IR_DIM_N &&
                 (n->shape.rank == 1 || (n->shape.rank == 2 && n->shape.d[1] == x->shape.d[1])))
            y = n;
    }
    if (!x) {
        rt_dataset_init(out);
        diag_error(d, file_loc(d, path), "text data needs a model input of type i32[N, T] to take the "
                                         "windows of T character ids; the model has none");
        return false;
    }
    o->seq_len = x->shape.d[1];
    o->seq_labels = y && y->shape.rank == 2;
    o->x_name = x->a.name;
    o->y_name = y ? y->a.name : "y";
    int cls = label_classes(g);
    o->classes = cls > 0 ? cls : 256;
    return rt_load_text(path, o, out, d);
}

static bool load_raw(const DataOpts *a, const char *const *src, int nsrc, const char *split,
                     const Graph *g, uint64_t seed, Dataset *out, bool *have, Diags *d)
{
    RtLoadOpts o;
    rt_load_opts_default(&o);
    o.dt = model_float(g);
    o.scale = !a->no_scale;
    int cls = label_classes(g);
    o.classes = cls > 0 ? cls : 10;
    /* the IDX loader stops there; the others are sliced afterwards (after
       the class filter, which must see every example first) */
    o.limit = a->classes && *a->classes ? 0 : a->limit;
    const char *whole[16];
    const Graph *gi = a->all_inputs ? a->all_inputs : g;
    for (int i = 0; i < gi->nnodes && o.nwhole < (int)ARRAY_LEN(whole); i++) {
        const Node *n = gi->nodes[i];
        if (is_model_input(n) && (n->shape.rank == 0 || n->shape.d[0] != IR_DIM_N))
            whole[o.nwhole++] = n->a.name;
    }
    o.whole = whole;
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
    if (strncmp(s, "text:", 5) == 0)
        return load_text(g, s + 5, &o, out, d);
    if (suffix(s, ".csv") || suffix(s, ".csv.gz"))
        return rt_load_csv(s, &o, out, d);
    if (suffix(s, ".npy"))
        return rt_load_npy(s, nsrc > 1 ? src[1] : NULL, &o, out, d);
    if (suffix(s, ".safetensors")) {
        const char *labels = label_input(g); /* checked against the classes, whatever its name */
        if (labels)
            o.y_name = labels;
        const Node *y = ir_find_input((Graph *)gi, o.y_name);
        if (y && y->shape.rank != 1) /* an input named y that is no list of class labels */
            o.classes = 0;
        return rt_load_safetensors_dataset(s, &o, out, d);
    }
    diag_error(d, file_loc(d, s), "unknown data format (expected a directory of IDX files, "
                                  ".csv, .csv.gz, .npy, .safetensors, text:FILE, fashion-mnist or uniform:N)");
    return false;
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
    if (s->rank == 0 || s->d[0] != IR_DIM_N) { /* no batch axis: the tensor of exactly this shape */
        bool same = c->whole && !c->bytes && t->rank == s->rank;
        for (int k = 0; same && k < s->rank; k++)
            same = t->dims[k] == s->d[k];
        if (!same) {
            diag_error(d, n->loc, "input '%s' is %s (no batch axis) but the data '%s' is %s", n->a.name,
                       ir_type_str(n->dt, s, b2, sizeof b2), c->name, rt_tensor_type_str(t, b1, sizeof b1));
            return false;
        }
        rt_col_cast(c, n->dt);
        return rt_dataset_take(out, n->a.name, c);
    }
    if (per != have || c->whole) {
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

/* Bind every input of g (used_only: every input some node reads). */
static bool bind(const Graph *g, bool used_only, Dataset *raw, Dataset *out, Diags *d)
{
    const Node *un[16];
    int nun = 0;
    bool used[64] = {0};
    int *uses = ir_use_counts((Graph *)g);
    rt_dataset_init(out);
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        if (!is_model_input(n) || (used_only && uses[i] == 0))
            continue;
        int k = rt_dataset_find(raw, n->a.name);
        if (k >= 0 && k < 64) {
            used[k] = true;
            if (!fit(&raw->cols[k], n, out, d)) {
                xfree(uses);
                return false;
            }
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
            xfree(uses);
            return false;
        }
        used[pick] = true;
        if (!fit(&raw->cols[pick], n, out, d)) {
            xfree(uses);
            return false;
        }
    }
    xfree(uses);
    if (out->ncols == 0)
        out->n = raw->n;
    return true;
}

/* ---- the class filter (--data-classes) ---- */

#define MAX_CLASS 65535

/* Parse a class set "0-4,7" into set (MAX_CLASS + 1 flags; NULL: only
 * check). False with a message naming the character where it goes wrong. */
static bool classes_parse(const char *spec, unsigned char *set, char *msg, size_t size)
{
    const char *p = spec;
    for (;;) {
        const char *item = p;
        long v[2];
        for (int k = 0; k < 2; k++) {
            if (*p < '0' || *p > '9') {
                snprintf(msg, size, "'%s': expected a class number at character %d", spec,
                         (int)(p - spec) + 1);
                return false;
            }
            const char *at = p;
            long x = 0;
            while (*p >= '0' && *p <= '9' && x <= MAX_CLASS)
                x = x * 10 + (*p++ - '0');
            if (x > MAX_CLASS) {
                snprintf(msg, size, "'%s': class %.*s... at character %d is above %d", spec,
                         (int)(p - at), at, (int)(at - spec) + 1, MAX_CLASS);
                return false;
            }
            v[k] = v[1] = x;
            if (k == 0 && *p != '-')
                break;
            if (k == 0)
                p++;
            else if (v[1] < v[0]) {
                snprintf(msg, size, "'%s': the range %ld-%ld at character %d is empty (the first "
                                    "class must not be above the last)",
                         spec, v[0], v[1], (int)(item - spec) + 1);
                return false;
            }
        }
        for (long c = v[0]; set && c <= v[1]; c++)
            set[c] = 1;
        if (!*p)
            return true;
        if (*p != ',') {
            snprintf(msg, size, "'%s': expected ',' or '-' at character %d", spec, (int)(p - spec) + 1);
            return false;
        }
        p++;
    }
}

bool mc_data_classes_check(const char *spec, char *msg, size_t size)
{
    return classes_parse(spec, NULL, msg, size);
}

/* The column of class labels: the one named y, else the only column of
 * i32[N]. */
static const DataCol *label_col(const Dataset *ds)
{
    const DataCol *c = rt_dataset_col(ds, "y"), *found = NULL;
    if (c && !c->whole)
        return c;
    for (int i = 0; i < ds->ncols; i++) {
        c = &ds->cols[i];
        if (c->whole || c->t->rank != 1 || c->t->dt != DT_I32)
            continue;
        if (found)
            return NULL;
        found = c;
    }
    return found;
}

/* Keep the examples of raw whose label is in the set a->classes. */
static bool filter_classes(const DataOpts *a, const char *where, Dataset *raw, Diags *d)
{
    char msg[200];
    unsigned char *set = xcalloc(MAX_CLASS + 1, 1);
    if (!classes_parse(a->classes, set, msg, sizeof msg)) {
        diag_error(d, (SrcLoc){0}, "--data-classes %s", msg);
        xfree(set);
        return false;
    }
    const DataCol *y = label_col(raw);
    if (!y || y->t->rank != 1) {
        diag_error(d, file_loc(d, where), "--data-classes needs a column of class labels (y, or the "
                                          "only i32[N] column); this data has none");
        xfree(set);
        return false;
    }
    int64_t *rows = xmalloc((size_t)(raw->n > 0 ? raw->n : 1) * sizeof *rows), kept = 0;
    for (int64_t i = 0; i < raw->n; i++) {
        double v = rt_col_get(y, i);
        if (!(v >= 0 && v <= MAX_CLASS && v == (double)(int64_t)v)) {
            diag_error(d, file_loc(d, where), "--data-classes: example %lld has label %g in '%s', not "
                                              "a class number",
                       (long long)i, v, y->name);
            xfree(rows);
            xfree(set);
            return false;
        }
        if (set[(int64_t)v])
            rows[kept++] = i;
    }
    xfree(set);
    if (kept == 0) {
        diag_error(d, file_loc(d, where), "--data-classes %s: none of the %lld examples has one of "
                                          "these labels",
                   a->classes, (long long)raw->n);
        xfree(rows);
        return false;
    }
    Dataset sel;
    rt_dataset_select(raw, rows, kept, &sel);
    xfree(rows);
    rt_dataset_free(raw);
    *raw = sel;
    return true;
}

bool data_load_src(const DataOpts *a, const char *const *src, int nsrc, const char *split,
                   const Graph *g, uint64_t seed, Dataset *out, bool *have, Diags *d)
{
    Dataset raw;
    rt_dataset_init(&raw);
    rt_dataset_init(out);
    bool ok = load_raw(a, src, nsrc, split, g, seed, &raw, have, d);
    if (ok && *have && a->classes && *a->classes) {
        const char *s = nsrc ? src[0] : "fashion-mnist";
        ok = filter_classes(a, strcmp(s, "fashion-mnist") == 0 ? FASHION_DIR : s, &raw, d);
    }
    if (ok && *have && a->limit > 0 && raw.n > a->limit) {
        Dataset cut;
        rt_dataset_slice(&raw, 0, a->limit, &cut);
        rt_dataset_free(&raw);
        raw = cut;
    }
    if (ok && *have)
        ok = bind(g, a->used_only, &raw, out, d);
    rt_dataset_free(&raw);
    return ok;
}

bool data_load(const DataOpts *a, const char *split, const Graph *g, uint64_t seed, Dataset *out,
               bool *have, Diags *d)
{
    return data_load_src(a, a->sources, a->nsources, split, g, seed, out, have, d);
}

DType mc_dtype_of(int code)
{
    return code == 1 ? DT_F64 : code == 2 ? DT_I32 : DT_F32;
}

mc_tensor mc_view_of(const char *name, const Tensor *t)
{
    return (mc_tensor){name, t->dt == DT_F64 ? 1 : t->dt == DT_I32 ? 2 : 0, t->rank, t->dims, t->data};
}

int data_views(const TensorMap *b, mc_tensor *v, int max)
{
    int n = 0;
    for (int i = 0; i < b->n && n < max; i++, n++)
        v[n] = mc_view_of(b->names[i], b->t[i]);
    return n;
}

/* ---- the public face: mc_data ---- */

struct mc_data {
    Dataset ds;
    TensorMap batch;
    Tensor *rows;   /* in-order batches: headers over the data set's columns stored as values */
    int nrows_cap;
    mc_tensor views[16];
    char *err;      /* mc_data_error */
    bool broken;    /* a call ran out of memory: only mc_data_free remains */
    MemSet orphans; /* that call's blocks */
};

void mc_data_options_default(mc_data_options *o)
{
    memset(o, 0, sizeof *o);
    o->split = "train";
}

/* The messages of d from the first-th on, as text. */
static char *take_error(Diags *d, int first)
{
    MemStream s;
    FILE *f = mem_stream_open(&s);
    if (f)
        diags_print_from(d, f, first);
    return mem_stream_close(&s);
}

/* Every call that allocates runs under a memory guard; "error: out of
 * memory: ..." for the caller to free(). */
static char *oom_message(MemGuard *g)
{
    char msg[200];
    mem_error(g, msg, sizeof msg);
    StrBuf b;
    sb_init(&b);
    sb_printf(&b, "error: %s\n", msg);
    return sb_take(&b);
}

static mc_data *load_set(const char *model, const mc_data_options *o, char **err)
{
    Diags d;
    diags_init(&d);
    mc_data_options def;
    if (!o) {
        mc_data_options_default(&def);
        o = &def;
    }
    RunSettings run;
    Graph *g = fe_load_model(model, &run, &d);
    int first = g ? d.n : 0; /* the model's warnings are the compile's to print */
    DataOpts a = {o->sources, o->nsources, o->no_scale, o->limit, o->label_column, o->prediction, NULL,
                  o->classes};
    Graph *src = NULL;
    if (g && o->prediction) { /* the inputs the output values read */
        RecipeOpts ro = ps_recipe_opts(FN_PREDICT);
        ro.fuse = false;
        ro.stop_after = "outputs";
        src = g;
        g = ps_recipe(g, &ro, &d);
        a.all_inputs = src;
    }
    mc_data *m = xcalloc(1, sizeof *m);
    rt_map_init(&m->batch);
    bool have = false;
    bool ok = g && data_load(&a, o->split ? o->split : "train", g,
                             (o->seed_set ? o->seed : run.seed) + (uint64_t)o->stream, &m->ds, &have, &d);
    if (!ok || !have) {
        if (!ok)
            *err = take_error(&d, first);
        mc_data_free(m);
        m = NULL;
    } else if (o->decode_max > 0) {
        rt_dataset_decode_bytes(&m->ds, o->decode_max);
    }
    ir_graph_free(g);
    if (src)
        ir_graph_free(src);
    diags_free(&d);
    return m;
}

int64_t mc_data_count(const mc_data *d)
{
    return d ? d->ds.n : 0;
}

mc_data *mc_data_load(const char *model, const mc_data_options *o, char **err)
{
    MemGuard g;
    mc_data *volatile d = NULL;
    *err = NULL;
    if (MEM_TRY(&g, "loading the data"))
        d = load_set(model, o, err);
    if (mem_guard_pop(&g))
        return d;
    mem_set_free_all(&g.live);
    *err = oom_message(&g);
    return NULL;
}

/* d keeps its data set until the split is complete. */
static mc_data *data_split(mc_data *d, double frac, char **err)
{
    Diags dg;
    diags_init(&dg);
    mc_data *val = xcalloc(1, sizeof *val);
    rt_map_init(&val->batch);
    Dataset rest;
    rt_dataset_init(&rest);
    if (!rt_dataset_split(&d->ds, frac, &rest, &val->ds, &dg)) {
        *err = take_error(&dg, 0);
        mc_data_free(val);
        val = NULL;
    } else {
        rt_dataset_free(&d->ds);
        d->ds = rest;
    }
    diags_free(&dg);
    return val;
}

mc_data *mc_data_split(mc_data *d, double frac, char **err)
{
    MemGuard g;
    mc_data *volatile val = NULL;
    *err = NULL;
    if (d->broken) {
        *err = xstrdup(d->err);
        return NULL;
    }
    if (MEM_TRY(&g, "splitting the data"))
        val = data_split(d, frac, err);
    if (mem_guard_pop(&g))
        return val;
    mem_set_free_all(&g.live);
    *err = oom_message(&g);
    return NULL;
}

/* A batch as d->views: rows in order (perm NULL) are views into the
 * data set wherever a column is stored as values, no copy made; 8-bit
 * columns are converted into d->batch. */
static int64_t data_batch(mc_data *d, const int64_t *perm, int64_t start, int64_t count, int *nt)
{
    if (perm) {
        int64_t rows = rt_dataset_batch(&d->ds, perm, start, count, &d->batch);
        *nt = data_views(&d->batch, d->views, (int)ARRAY_LEN(d->views));
        return rows;
    }
    if (d->nrows_cap < d->ds.ncols) {
        d->rows = xrealloc(d->rows, (size_t)d->ds.ncols * sizeof *d->rows);
        d->nrows_cap = d->ds.ncols;
    }
    int64_t rows = rt_dataset_rows(&d->ds, start, count, &d->batch, d->rows);
    int n = 0;
    for (int i = 0; i < d->ds.ncols && n < (int)ARRAY_LEN(d->views); i++) {
        const char *name = d->ds.cols[i].name;
        const Tensor *t = d->rows[i].data ? &d->rows[i] : rt_map_get(&d->batch, name);
        if (t)
            d->views[n++] = mc_view_of(name, t);
    }
    *nt = n;
    return rows;
}

int64_t mc_data_batch(mc_data *d, const int64_t *perm, int64_t start, int64_t count, const mc_tensor **out,
                      int *nt)
{
    MemGuard g;
    volatile int64_t rows = -1;
    int n = 0; /* read only when no jump came */
    *out = NULL;
    *nt = 0;
    if (d->broken)
        return -1;
    if (MEM_TRY(&g, "making a batch of the data"))
        rows = data_batch(d, perm, start, count, &n);
    if (!mem_guard_pop(&g)) {
        d->broken = true;
        d->orphans = g.live;
        d->err = oom_message(&g);
        return -1;
    }
    *nt = n;
    *out = d->views;
    return rows;
}

const char *mc_data_error(const mc_data *d)
{
    return d && d->err ? d->err : "";
}

static void data_free(mc_data *d)
{
    rt_dataset_free(&d->ds);
    rt_map_free(&d->batch);
    xfree(d->rows);
    xfree(d->err);
    xfree(d);
}

void mc_data_free(mc_data *d)
{
    if (!d || !d->broken) {
        if (d)
            data_free(d);
        return;
    }
    MemGuard g;
    mem_collect_begin(&g, &d->orphans);
    data_free(d);
    mem_collect_end(&g);
}

const Dataset *mc_data_dataset(const mc_data *d)
{
    return d ? &d->ds : NULL;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

uint64_t mc_data_hash(const mc_data *d)
{
    uint64_t h = 0xcbf29ce484222325ull;
    const Dataset *ds = &d->ds;
    h = fnv(h, &ds->n, sizeof ds->n);
    for (int i = 0; i < ds->ncols; i++) {
        const DataCol *c = &ds->cols[i];
        const Tensor *t = c->t;
        h = fnv(h, c->name, strlen(c->name) + 1);
        h = fnv(h, &t->dt, sizeof t->dt);
        h = fnv(h, t->dims, (size_t)t->rank * sizeof t->dims[0]);
        if (c->bytes) {
            h = fnv(h, c->bytes->data, (size_t)t->numel);
            h = fnv(h, c->bytes->value, sizeof c->bytes->value);
        } else {
            h = fnv(h, t->data, (size_t)rt_tensor_bytes(t));
        }
    }
    return h;
}

/* ---- writing tensors ---- */

/* A tensor holding a copy of an mc_tensor's data. */
static Tensor *from_view(const mc_tensor *v)
{
    Tensor *t = rt_tensor_new(mc_dtype_of(v->dtype), v->rank, v->dims);
    if (t)
        memcpy(t->data, v->data, (size_t)rt_tensor_bytes(t));
    return t;
}

/* One row per example (the first dimension), values in row-major order. */
static bool write_csv(const char *path, const Tensor *t, Diags *d)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        diag_error(d, file_loc(d, path), "cannot write file");
        return false;
    }
    int64_t rows = t->rank ? t->dims[0] : 1, cols = rows ? t->numel / rows : 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            char buf[40];
            double v = rt_get(t, r * cols + c);
            if (t->dt == DT_F32)
                snprintf(buf, sizeof buf, "%.9g", v);
            else
                fmt_double(buf, sizeof buf, v);
            fprintf(f, "%s%c", buf, c + 1 == cols ? '\n' : ',');
        }
    bool ok = !ferror(f);
    ok = fclose(f) == 0 && ok;
    if (!ok)
        diag_error(d, file_loc(d, path), "error writing file");
    return ok;
}

static bool write_tensors(const char *path, const mc_tensor *t, int n, const char *model_name, Diags *d)
{
    bool st = suffix(path, ".safetensors");
    if (!st && !suffix(path, ".npy") && !suffix(path, ".csv")) {
        diag_error(d, file_loc(d, path), "unknown output format (expected .safetensors, .npy or .csv)");
        return false;
    }
    if (!st && n != 1) {
        diag_error(d, file_loc(d, path), "a .npy or .csv file holds one tensor, not %d", n);
        return false;
    }
    TensorMap m;
    rt_map_init(&m);
    bool ok = true;
    for (int i = 0; i < n && ok; i++) {
        Tensor *c = from_view(&t[i]);
        if (!c) {
            diag_error(d, file_loc(d, path), "cannot allocate a copy of '%s'", t[i].name);
            ok = false;
        } else {
            rt_map_put(&m, t[i].name, c);
        }
    }
    if (ok && st) {
        Metadata meta;
        rt_meta_init(&meta);
        if (model_name)
            rt_meta_set(&meta, RT_META_MODEL, model_name);
        ok = rt_safetensors_write(path, &m, &meta, d);
        rt_meta_free(&meta);
    } else if (ok) {
        ok = suffix(path, ".npy") ? rt_npy_write(path, m.t[0], d) : write_csv(path, m.t[0], d);
    }
    rt_map_free(&m);
    return ok;
}

static bool write_tensors_diag(const char *path, const mc_tensor *t, int n, const char *model_name,
                               char **err)
{
    Diags d;
    diags_init(&d);
    bool ok = write_tensors(path, t, n, model_name, &d);
    *err = ok ? NULL : take_error(&d, 0);
    diags_free(&d);
    return ok;
}

bool mc_write_tensors(const char *path, const mc_tensor *t, int n, const char *model_name, char **err)
{
    MemGuard g;
    volatile bool ok = false;
    *err = NULL;
    if (MEM_TRY(&g, "writing tensors"))
        ok = write_tensors_diag(path, t, n, model_name, err);
    if (mem_guard_pop(&g))
        return ok;
    mem_set_free_all(&g.live);
    *err = oom_message(&g);
    return false;
}
