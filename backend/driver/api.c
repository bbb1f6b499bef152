/* The public C API (include/modelc.h): one compiled model with its
 * training, evaluation and prediction graphs, its parameters (weights,
 * batchnorm state and optimizer slots) and a backend — the LLVM JIT with
 * persistent parameter buffers updated in place, or the interpreter. */
#include "modelc.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "frontend/onnx/onnx.h"
#include "data.h"
#include "backend/interp/interp.h"
#include "backend/llvm/jit.h"
#include "passes/passes.h"
#include "backend/insight/warn.h"
#include "runtime/io/io.h"

static char g_compile_error[4096]; /* message of the last failed mc_compile */

void mc_options_default(mc_options *o)
{
    memset(o, 0, sizeof *o);
    o->backend = MC_BACKEND_JIT;
}

static void set_error_from_diags(mc_model *m)
{
    MemStream s;
    FILE *f = mem_stream_open(&s);
    if (f)
        diags_print(&m->d, f);
    char *text = mem_stream_close(&s);
    xfree(m->err);
    m->err = text;
}

void mc_set_error(mc_model *m, const char *fmt, ...)
{
    va_list ap;
    StrBuf b;
    sb_init(&b);
    va_start(ap, fmt);
    sb_vprintf(&b, fmt, ap);
    va_end(ap);
    xfree(m->err);
    m->err = sb_take(&b);
}

const char *mc_warnings(const mc_model *m)
{
    return m && m->warnings ? m->warnings : "";
}

const char *mc_last_error(const mc_model *m)
{
    if (!m)
        return g_compile_error;
    return m->err ? m->err : "";
}

/* mc_options.dump_ir: DIR/<fn>.ir, printed as `modelc ir --fn <fn>` prints it. */
static bool dump_ir(mc_model *m, const Graph *g, FnKind fn)
{
    StrBuf path;
    sb_init(&path);
    sb_printf(&path, "%s/%s.ir", m->opt.dump_ir, ps_fn_names[fn]);
    FILE *f = fopen(path.s, "w");
    bool ok = f != NULL;
    if (f) {
        MemCleanup on_jump;
        mem_cleanup_push(&on_jump, mem_fclose, f);
        ir_print_model((Graph *)g, &m->run, f, 0);
        mem_cleanup_pop(&on_jump);
        ok = !ferror(f);
        ok = fclose(f) == 0 && ok;
    }
    if (!ok)
        diag_error(&m->d, (SrcLoc){diags_intern_file(&m->d, path.s), 0, 0}, "cannot write the IR dump: %s",
                   strerror(errno));
    sb_free(&path);
    return ok;
}

/* One compiled function of the model, from its recipe. */
static Graph *recipe(mc_model *m, FnKind fn, Mode mode)
{
    RecipeOpts o = ps_recipe_opts(fn);
    o.mode = mode;
    o.fuse = m->opt.backend == MC_BACKEND_JIT;
    o.timer = m->timer;
    return ps_recipe(m->src, &o, &m->d);
}

/* A function is about to be compiled (JIT) or first run (interpreter):
 * mc_options.dump_ir writes it, once (under mpirun, rank 0 alone). */
static bool compiling(mc_model *m, FnKind fn, const Graph *g)
{
    if (!m->opt.dump_ir || (m->dumped & (1u << fn)) || mc_dist_rank(m) != 0)
        return true;
    m->dumped |= 1u << fn;
    return dump_ir(m, g, fn);
}

static int find_out(const Graph *g, OutKind k)
{
    for (int i = 0; g && i < g->nouts; i++)
        if (g->outs[i].kind == k)
            return i;
    return -1;
}

static void jit_opts(const mc_model *m, JitOpts *jo)
{
    be_jit_opts_default(jo);
    jo->threads = m->opt.threads;
    jo->cache_dir = m->opt.cache_dir;
    jo->time_passes = m->timer != NULL;
    jo->timer = m->timer;
}

/* The training step is compiled now; the inference function is only
 * checked now and compiled when first used (jit_eval), so training starts
 * sooner and a run without evaluation never compiles it. */
static bool build_backend(mc_model *m)
{
    if (m->opt.backend != MC_BACKEND_JIT)
        return true;
    JitOpts jo;
    jit_opts(m, &jo);
    jo.profile = m->opt.profile;
    if (m->gtrain && !m->opt.eval_only && !m->opt.distributed &&
        (!compiling(m, FN_TRAIN_STEP, m->gtrain) || !(m->jtrain = be_jit_compile(m->gtrain, &jo, &m->d))))
        return false;
    return !m->geval || be_jit_check(m->geval, &m->d);
}

/* The compiled inference function (NULL on error, or for the interpreter). */
static JitModule *jit_eval(mc_model *m)
{
    if (m->opt.backend != MC_BACKEND_JIT || m->jeval)
        return m->jeval;
    JitOpts jo;
    jit_opts(m, &jo);
    jo.profile = m->opt.profile;
    if (compiling(m, FN_EVAL, m->geval))
        m->jeval = be_jit_compile(m->geval, &jo, &m->d);
    return m->jeval;
}

static bool is_telemetry(const Output *o)
{
    return o->kind == OUT_METRIC && o->name && strncmp(o->name, "telemetry.", 10) == 0;
}

static void find_telemetry(mc_model *m)
{
    const Graph *g = m->gtrain;
    for (int i = 0; g && i < g->nouts; i++)
        m->ntel += is_telemetry(&g->outs[i]);
    m->tel_out = xcalloc((size_t)m->ntel + 1, sizeof(int));
    m->tel_name = xcalloc((size_t)m->ntel + 1, sizeof(char *));
    m->tel_val = xcalloc((size_t)m->ntel + 1, sizeof(double));
    for (int i = 0, k = 0; g && i < g->nouts; i++)
        if (is_telemetry(&g->outs[i])) {
            m->tel_out[k] = i;
            m->tel_name[k] = g->outs[i].name + 10;
            m->tel_val[k++] = NAN;
        }
}

int mc_num_telemetry(const mc_model *m)
{
    return m->ntel;
}

const char *mc_telemetry_name(const mc_model *m, int i)
{
    return i >= 0 && i < m->ntel ? m->tel_name[i] : NULL;
}

double mc_telemetry_value(const mc_model *m, int i)
{
    return i >= 0 && i < m->ntel ? m->tel_val[i] : NAN;
}

/* Can o's precision be had here? If not, msg (n bytes) says why. */
static bool precision_ok(const mc_options *o, char *msg, size_t n)
{
    if (o->precision == MC_PRECISION_F32)
        return true;
    if (o->precision != MC_PRECISION_BF16)
        snprintf(msg, n, "error: unknown precision %d\n", (int)o->precision);
    else if (o->backend != MC_BACKEND_JIT)
        snprintf(msg, n, "error: bf16 precision needs the jit backend (the interpreter computes in the graph's types)\n");
    else if (!rt_cpu_has_bf16())
        snprintf(msg, n, "error: bf16 precision needs a CPU with AMX-BF16 or AVX512-BF16; this one has neither\n");
    else
        return true;
    return false;
}

static mc_model *compile(mc_model *m, const char *path, const mc_options *o)
{
    if (o)
        m->opt = *o;
    else
        mc_options_default(&m->opt);
    m->timer = m->opt.time_passes ? &m->own_timer : NULL;
    Timer *timer = m->timer;
    diags_init(&m->d);
    rt_map_init(&m->params);
    rt_map_init(&m->batch);
    rt_map_init(&m->pred);
    rt_map_init(&m->imported);
    rt_map_init(&m->best_weights);
    m->cb = (CallbackState){.es_best = NAN, .ck_best = NAN, .rl_best = NAN};
    if (!precision_ok(&m->opt, g_compile_error, sizeof g_compile_error)) {
        mc_free(m);
        return NULL;
    }
    double t0 = mc_now_ms();
    m->src = fe_load_model_weights(path, &m->run, &m->imported, &m->d);
    timer_add(timer, "frontend", mc_now_ms() - t0);
    if (m->src) {
        Graph *g = m->src;
        if (m->opt.nfreeze) {
            const char **v = arena_alloc(g->arena, (size_t)(g->train.nfreeze + m->opt.nfreeze) * sizeof(char *));
            if (g->train.nfreeze)
                memcpy(v, g->train.freeze, (size_t)g->train.nfreeze * sizeof(char *));
            for (int i = 0; i < m->opt.nfreeze; i++)
                v[g->train.nfreeze + i] = arena_strdup(g->arena, m->opt.freeze[i]);
            g->train.freeze = v;
            g->train.nfreeze += m->opt.nfreeze;
        }
        m->seed = m->opt.seed_set ? m->opt.seed : m->run.seed;
        g->train.telemetry = m->opt.telemetry;
        bool has_loss = find_out(g, OUT_LOSS) >= 0;
        if (has_loss) {
            bool wrong_mode = m->opt.train_mode == MC_MODE_INFER;
            if (wrong_mode)
                ps_warn_mode(g, MODE_INFER, true, &m->d);
            m->gtrain = recipe(m, FN_TRAIN_STEP, wrong_mode ? MODE_INFER : MODE_TRAIN);
            bool eval_train = m->opt.eval_mode == MC_MODE_TRAIN;
            if (eval_train)
                ps_warn_mode(g, MODE_TRAIN, false, &m->d);
            m->geval = m->gtrain ? recipe(m, FN_EVAL, eval_train ? MODE_TRAIN : MODE_INFER) : NULL;
        }
        if (!m->d.nerrors && m->opt.distributed)
            mc_dist_setup(m);
        if (!m->d.nerrors)
            build_backend(m);
    }
    if (!m->src || m->d.nerrors || (find_out(m->src, OUT_LOSS) >= 0 && (!m->gtrain || !m->geval))) {
        set_error_from_diags(m);
        snprintf(g_compile_error, sizeof g_compile_error, "%s", m->err ? m->err : "compile failed");
        mc_free(m);
        return NULL;
    }
    if (m->d.nwarnings) {
        set_error_from_diags(m);
        m->warnings = m->err;
        m->err = NULL;
        diags_free(&m->d); /* later errors are reported without the warnings */
        diags_init(&m->d);
    }
    m->loss_out = find_out(m->gtrain, OUT_LOSS);
    m->eval_loss_out = find_out(m->geval, OUT_LOSS);
    for (int i = 0; m->geval && i < m->geval->nouts; i++)
        if (m->geval->outs[i].kind == OUT_METRIC && m->nmetrics < MC_MAX_METRICS)
            m->metric_out[m->nmetrics++] = i;
    for (int i = 0, k = 0; m->gtrain && i < m->gtrain->nouts; i++)
        if (m->gtrain->outs[i].kind == OUT_METRIC && !is_telemetry(&m->gtrain->outs[i]) &&
            k < m->nmetrics)
            m->train_metric_out[k++] = i;
    find_telemetry(m);
    return m;
}

bool mc_default_cache_dir(char *buf, size_t n)
{
    return be_jit_default_cache_dir(buf, n);
}

int64_t mc_release_compiler_memory(void)
{
    return be_jit_release_compiler_memory();
}

static void drop_workspaces(mc_model *m)
{
    for (int i = 0; i < MC_NWS; i++) {
        be_jit_workspace_free(m->wtrain[i]);
        be_jit_workspace_free(m->weval[i]);
        be_jit_workspace_free(m->wpredict[i]);
        be_jit_workspace_free(m->wgrad[i]);
        be_jit_workspace_free(m->wapply[i]);
        m->wtrain[i] = m->weval[i] = m->wpredict[i] = m->wgrad[i] = m->wapply[i] = NULL;
    }
}

/* ---- running out of memory: every call below is one MEM_TRY; a call
 * that runs out leaves the model broken, holding the call's blocks ---- */

static bool usable(mc_model *m)
{
    if (m->broken)
        mc_set_error(m, "error: the model is unusable: an earlier call ran out of memory");
    return !m->broken;
}

static bool out_of_memory(mc_model *m, MemGuard *g)
{
    char msg[200];
    mem_error(g, msg, sizeof msg);
    m->broken = true;
    m->orphans = g->live;
    mc_set_error(m, "error: %s", msg);
    return false;
}

mc_model *mc_compile(const char *path, const mc_options *o)
{
    MemGuard g;
    mc_model *volatile m = NULL;
    mc_model *volatile res = NULL;
    if (MEM_TRY(&g, "compiling the model")) {
        m = xcalloc(1, sizeof *m);
        res = compile(m, path, o);
    }
    if (mem_guard_pop(&g))
        return res;
    char msg[200];
    mem_error(&g, msg, sizeof msg);
    snprintf(g_compile_error, sizeof g_compile_error, "%s: error: %s\n", path, msg);
    if (m) {
        m->broken = true;
        m->orphans = g.live;
        mc_free(m);
    } else {
        mem_set_free_all(&g.live);
    }
    return NULL;
}

static void destroy(mc_model *m)
{
    drop_workspaces(m);
    mc_dist_free(m);
    be_jit_free(m->jtrain);
    be_jit_free(m->jeval);
    be_jit_free(m->jpredict);
    ir_graph_free(m->gtrain);
    ir_graph_free(m->geval);
    ir_graph_free(m->gpredict);
    rt_map_free(&m->pred);
    xfree(m->pred_view);
    ir_graph_free(m->src);
    rt_map_free(&m->params);
    rt_map_free(&m->best_weights);
    rt_map_free(&m->imported);
    rt_map_free(&m->batch);
    rt_tensor_free(m->lr);
    xfree(m->tel_out);
    xfree(m->tel_name);
    xfree(m->tel_val);
    xfree(m->profile_report);
    xfree(m->time_report);
    diags_free(&m->d);
    xfree(m->err);
    xfree(m->warnings);
    xfree(m);
}

void mc_free(mc_model *m)
{
    if (!m)
        return;
    if (!m->broken) {
        destroy(m);
        return;
    }
    MemGuard g;
    mem_collect_begin(&g, &m->orphans);
    destroy(m);
    mem_collect_end(&g);
}

static bool fail(mc_model *m);

/* The graph whose parameters are the full set (weights, state, slots). */
const Graph *mc_param_graph(const mc_model *m)
{
    return m->gtrain ? m->gtrain : m->src;
}

bool mc_param_kept_on_bad_loss(const mc_model *m, const char *name)
{
    if (m->opt.distributed)
        return false;
    if (!m->jtrain)
        return m->opt.backend == MC_BACKEND_INTERP;
    int b = be_jit_find_buf(m->jtrain, JIT_BUF_PARAM, name);
    return b < 0 || be_jit_buf(m->jtrain, b)->kept; /* not in the step: not written */
}

static bool init_params(mc_model *m, uint64_t seed)
{
    drop_workspaces(m);
    bool ok = rt_init_params(mc_param_graph(m), &m->params, seed, true, &m->d) &&
              (!m->geval || rt_init_params(m->geval, &m->params, seed, false, &m->d)) &&
              rt_init_params(m->src, &m->params, seed, false, &m->d);
    for (int i = 0; ok && i < m->imported.n; i++)
        if (rt_map_get(&m->params, m->imported.names[i]))
            rt_map_put(&m->params, m->imported.names[i], rt_tensor_clone(m->imported.t[i]));
    m->step = 0;
    m->epoch = 0;
    mc_cb_reset(m);
    return ok ? true : fail(m);
}

int64_t mc_step(const mc_model *m)
{
    return m->step;
}

static const Node *model_input(const mc_model *m, int i)
{
    for (int k = 0; k < m->src->nnodes; k++) {
        const Node *n = m->src->nodes[k];
        if (n->op == OP_INPUT && strcmp(n->a.name, "optimizer.lr") != 0 && i-- == 0)
            return n;
    }
    return NULL;
}

int mc_num_inputs(const mc_model *m)
{
    int i = 0;
    while (model_input(m, i))
        i++;
    return i;
}

bool mc_input_info(const mc_model *m, int i, mc_tensor *out)
{
    const Node *n = i >= 0 ? model_input(m, i) : NULL;
    if (!n)
        return false;
    _Static_assert(IR_DIM_N == -1, "mc_input_info gives N as -1");
    *out = (mc_tensor){n->a.name, n->dt == DT_F64 ? 1 : n->dt == DT_I32 ? 2 : 0, n->shape.rank, n->shape.d, NULL};
    return true;
}

int mc_num_metrics(const mc_model *m)
{
    return m->nmetrics;
}

const char *mc_metric_name(const mc_model *m, int i)
{
    return i >= 0 && i < m->nmetrics ? m->geval->outs[m->metric_out[i]].name : NULL;
}

static bool rank_ok(mc_model *m, const mc_tensor *b)
{
    if (b->rank >= 0 && b->rank <= IR_MAXRANK)
        return true;
    mc_set_error(m, "input '%s': rank %d is not supported", b->name, b->rank);
    return false;
}

/* Copy the user's batch into m->batch (reusing tensors of the same shape):
 * a training step's batch outlives the call, since a failed step's
 * numerics check re-runs it afterwards (train_watch.c). */
static bool stage_batch(mc_model *m, const mc_tensor *b, int nb)
{
    for (int i = 0; i < nb; i++) {
        if (!rank_ok(m, &b[i]))
            return false;
        Tensor *t = rt_map_get(&m->batch, b[i].name);
        bool fits = t && t->dt == mc_dtype_of(b[i].dtype) && t->rank == b[i].rank;
        for (int k = 0; fits && k < b[i].rank; k++)
            fits = t->dims[k] == b[i].dims[k];
        if (!fits) {
            t = rt_tensor_new(mc_dtype_of(b[i].dtype), b[i].rank, b[i].dims);
            if (!t) {
                char why[96];
                mc_set_error(m, "input '%s': %s", b[i].name,
                             rt_tensor_failure(mc_dtype_of(b[i].dtype), b[i].rank, b[i].dims, why, sizeof why));
                return false;
            }
            rt_map_put(&m->batch, b[i].name, t);
        }
        memcpy(t->data, b[i].data, (size_t)t->numel * (size_t)ir_dtype_size(t->dt));
    }
    return true;
}

/* The caller's batch, bound in place for one run of the inference or
 * prediction function (nothing reads it after the call): tensor headers
 * over the caller's memory, which the run only reads, in a map that does
 * not own them. Only the inputs given are there: nothing is left over
 * from an earlier call. */
typedef struct BatchView {
    Tensor *t;
    TensorMap map;
} BatchView;

static bool view_batch(mc_model *m, const mc_tensor *b, int nb, BatchView *v)
{
    rt_map_init(&v->map);
    v->t = xcalloc((size_t)(nb > 0 ? nb : 1), sizeof *v->t);
    for (int i = 0; i < nb; i++) {
        if (!rank_ok(m, &b[i]))
            return false;
        Tensor *t = &v->t[i];
        t->dt = mc_dtype_of(b[i].dtype);
        t->rank = b[i].rank;
        t->numel = 1;
        for (int k = 0; k < t->rank; k++) {
            t->dims[k] = b[i].dims[k];
            if (t->dims[k] < 0 || __builtin_mul_overflow(t->numel, t->dims[k], &t->numel)) {
                mc_set_error(m, "input '%s': dimension %d is %lld", b[i].name, k, (long long)t->dims[k]);
                return false;
            }
        }
        t->data = (void *)b[i].data;
        if (!t->data && t->numel > 0) {
            mc_set_error(m, "input '%s' has no data", b[i].name);
            return false;
        }
        rt_map_take(&v->map, b[i].name); /* a repeated name: the last counts, as in stage_batch */
        rt_map_put(&v->map, b[i].name, t);
    }
    return true;
}

static void view_free(BatchView *v)
{
    while (v->map.n > 0)
        rt_map_take(&v->map, v->map.names[v->map.n - 1]); /* not freed: the caller's */
    rt_map_free(&v->map);
    xfree(v->t);
}

/* The inputs of a run: the caller's view when there is one, else the
 * staged copy. */
static const TensorMap *batch_map(const mc_model *m, const BatchView *v)
{
    return v ? &v->map : &m->batch;
}

static int64_t batch_n(const mc_model *m, const Graph *g, const BatchView *v)
{
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        if (n->op == OP_INPUT && n->shape.rank > 0 && n->shape.d[0] == IR_DIM_N) {
            Tensor *t = rt_map_get(batch_map(m, v), n->a.name);
            if (t && t->rank > 0)
                return t->dims[0];
        }
    }
    return 0;
}

static void set_lr(mc_model *m, const Graph *g, double lr)
{
    Node *in = ir_find_input((Graph *)g, "optimizer.lr");
    if (!in)
        return;
    if (!m->lr || m->lr->dt != in->dt) {
        rt_tensor_free(m->lr);
        m->lr = rt_tensor_new(in->dt, 0, NULL);
    }
    rt_set(m->lr, 0, lr);
}

/* JIT: find or make the workspace for batch size n, bound to m->params. */
static JitWorkspace *workspace(mc_model *m, JitModule *jm, JitWorkspace **cache, int64_t n)
{
    for (int i = 0; i < MC_NWS; i++)
        if (cache[i] && be_jit_workspace_n(cache[i]) == n)
            return cache[i];
    int slot = cache[0] ? 1 : 0;
    be_jit_workspace_free(cache[slot]);
    cache[slot] = NULL;
    JitWorkspace *w = be_jit_workspace_new(jm, n, &m->d);
    if (!w)
        return NULL;
    for (int i = 0; i < be_jit_nbufs(jm); i++) {
        const JitBufInfo *bi = be_jit_buf(jm, i);
        if (bi->kind != JIT_BUF_PARAM)
            continue;
        Tensor *t = rt_map_get(&m->params, bi->name);
        if (!t || !be_jit_bind(w, i, t, &m->d)) {
            if (!t)
                diag_error(&m->d, (SrcLoc){0}, "parameter '%s' has no value", bi->name);
            be_jit_workspace_free(w);
            return NULL;
        }
    }
    cache[slot] = w;
    return w;
}

static bool jit_run(mc_model *m, JitModule *jm, JitWorkspace **cache, int64_t n, const BatchView *v)
{
    JitWorkspace *w = workspace(m, jm, cache, n);
    if (!w)
        return false;
    for (int i = 0; i < be_jit_nbufs(jm); i++) {
        const JitBufInfo *bi = be_jit_buf(jm, i);
        if (bi->kind != JIT_BUF_INPUT)
            continue;
        Tensor *t = strcmp(bi->name, "optimizer.lr") == 0 ? m->lr : rt_map_get(batch_map(m, v), bi->name);
        if (!t) {
            diag_error(&m->d, (SrcLoc){0}, "no data for input '%s'", bi->name);
            return false;
        }
        if (!be_jit_bind(w, i, t, &m->d))
            return false;
    }
    RtCtx ctx;
    rt_ctx_init(&ctx, m->opt.threads);
    ctx.gemm_bf16 = m->opt.precision == MC_PRECISION_BF16;
    ctx.seed = m->seed;
    ctx.step = (uint64_t)m->step;
    ctx.replica = m->replica;
    ctx.ready = m->ready;
    m->cur_ws = w; /* also for ctx.ready's listener, while the step runs */
    be_jit_step(w, &ctx);
    return be_jit_faults_ok(jm, &ctx, &m->d);
}

/* Read scalar output i of the last run. */
static double out_scalar(mc_model *m, JitModule *jm, Tensor **outs, int i)
{
    if (jm) {
        const void *p = be_jit_out_data(m->cur_ws, i);
        return be_jit_out_dtype(jm, i) == DT_F64 ? *(const double *)p : *(const float *)p;
    }
    return rt_get(outs[i], 0);
}

static bool fail(mc_model *m)
{
    set_error_from_diags(m);
    diags_free(&m->d);
    diags_init(&m->d);
    return false;
}


static bool train_step(mc_model *m, const mc_tensor *batch, int nbatch, double lr, double *loss,
                       double *metrics)
{
    if (!m->gtrain) {
        mc_set_error(m, "the model has no loss, so it cannot be trained");
        return false;
    }
    if (m->opt.eval_only && m->opt.backend == MC_BACKEND_JIT) {
        mc_set_error(m, "the model was compiled for evaluation only (mc_options.eval_only)");
        return false;
    }
    if (m->opt.distributed)
        return mc_dist_train_step(m, batch, nbatch, lr, loss, metrics);
    if (!stage_batch(m, batch, nbatch))
        return false;
    set_lr(m, m->gtrain, lr);
    int64_t n = batch_n(m, m->gtrain, NULL);
    Graph *g = m->gtrain;
    double l;
    if (m->jtrain) {
        if (!jit_run(m, m->jtrain, m->wtrain, n, NULL))
            return fail(m);
        l = out_scalar(m, m->jtrain, NULL, m->loss_out);
        for (int i = 0; metrics && i < m->nmetrics; i++)
            metrics[i] = out_scalar(m, m->jtrain, NULL, m->train_metric_out[i]);
        for (int i = 0; i < m->ntel; i++)
            m->tel_val[i] = out_scalar(m, m->jtrain, NULL, m->tel_out[i]);
    } else {
        Tensor **outs = xcalloc((size_t)g->nouts, sizeof(Tensor *));
        if (m->lr)
            rt_map_put(&m->batch, "optimizer.lr", rt_tensor_clone(m->lr));
        RunOpts ro = {m->seed, (uint64_t)m->step};
        bool ok = compiling(m, FN_TRAIN_STEP, g) && be_interp_run(g, &m->params, &m->batch, &ro, outs, &m->d);
        if (!ok) {
            xfree(outs);
            return fail(m);
        }
        l = rt_get(outs[m->loss_out], 0);
        for (int i = 0; metrics && i < m->nmetrics; i++)
            metrics[i] = rt_get(outs[m->train_metric_out[i]], 0);
        for (int i = 0; i < m->ntel; i++)
            m->tel_val[i] = rt_get(outs[m->tel_out[i]], 0);
        for (int i = 0; i < g->nouts; i++) {
            if (g->outs[i].kind == OUT_UPDATE && isfinite(l))
                rt_map_put(&m->params, g->outs[i].target->a.name, outs[i]);
            else
                rt_tensor_free(outs[i]);
        }
        xfree(outs);
    }
    *loss = l;
    if (!isfinite(l)) {
        mc_set_error(m, "loss is %s at step %lld", isnan(l) ? "NaN" : "infinite", (long long)m->step + 1);
        return false;
    }
    m->step++;
    return true;
}

static bool prepare_eval(mc_model *m)
{
    if (!m->geval) {
        mc_set_error(m, "the model has no loss to evaluate");
        return false;
    }
    if (m->opt.backend == MC_BACKEND_JIT && !jit_eval(m))
        return fail(m);
    return true;
}

static bool eval_batch(mc_model *m, const mc_tensor *batch, int nbatch, double *loss, double *metrics,
                       int nmetrics)
{
    if (!m->geval) {
        mc_set_error(m, "the model has no loss to evaluate");
        return false;
    }
    Graph *g = m->geval;
    Tensor **outs = NULL;
    BatchView v;
    bool ok = view_batch(m, batch, nbatch, &v);
    if (ok && m->opt.backend == MC_BACKEND_JIT) {
        if (!jit_eval(m) || !jit_run(m, m->jeval, m->weval, batch_n(m, g, &v), &v))
            ok = fail(m);
    } else if (ok) {
        outs = xcalloc((size_t)g->nouts, sizeof(Tensor *));
        RunOpts ro = {m->seed, (uint64_t)m->step};
        if (!compiling(m, FN_EVAL, g) || !be_interp_run(g, &m->params, &v.map, &ro, outs, &m->d))
            ok = fail(m);
    }
    view_free(&v);
    if (ok) {
        *loss = out_scalar(m, m->jeval, outs, m->eval_loss_out);
        for (int i = 0; i < nmetrics && i < m->nmetrics; i++)
            metrics[i] = out_scalar(m, m->jeval, outs, m->metric_out[i]);
    }
    if (outs) {
        for (int i = 0; i < g->nouts; i++)
            rt_tensor_free(outs[i]);
        xfree(outs);
    }
    return ok;
}

static bool save(mc_model *m, const char *path)
{
    Metadata meta;
    rt_meta_init(&meta);
    rt_meta_set(&meta, RT_META_FORMAT, RT_META_FORMAT_NAME);
    rt_meta_set(&meta, RT_META_FORMAT_VERSION, RT_FORMAT_VERSION);
    rt_meta_set(&meta, RT_META_MODEL, m->src->name);
    char buf[64];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)m->seed);
    rt_meta_set(&meta, RT_META_SEED, buf);
    snprintf(buf, sizeof buf, "%lld", (long long)m->step);
    rt_meta_set(&meta, "step", buf);
    snprintf(buf, sizeof buf, "%d", m->epoch);
    rt_meta_set(&meta, "epoch", buf);
    mc_layout_metadata(m->src, &meta);
    mc_cb_save_meta(m, &meta);
    TensorMap all;
    mc_cb_save_map(m, &all);
    bool ok = rt_safetensors_write(path, &all, &meta, &m->d);
    mc_cb_free_save_map(&all);
    rt_meta_free(&meta);
    return ok ? true : fail(m);
}

/* Every parameter of the lowered model (weights and state) must be in the
 * file; optimizer slots are loaded when present; tensors the model does
 * not have are errors. */
static bool check_loaded(mc_model *m, const TensorMap *in, const char *path)
{
    SrcLoc loc = {diags_intern_file(&m->d, path), 0, 0};
    const Graph *pg = mc_param_graph(m);
    for (int i = 0; i < in->n; i++)
        if (!mc_cb_is_state_tensor(in->names[i]) && !ir_find_param((Graph *)pg, in->names[i]) &&
            !ir_find_param(m->src, in->names[i]))
            diag_error(&m->d, loc, "tensor '%s' is not a parameter of model '%s'", in->names[i],
                       m->src->name);
    for (int i = 0; i < m->src->nnodes; i++) {
        const Node *p = m->src->nodes[i];
        if (p->op == OP_PARAM && !rt_map_get(in, p->a.name))
            diag_error(&m->d, loc, "parameter '%s' is missing", p->a.name);
    }
    return m->d.nerrors == 0;
}

/* A partial load takes optimizer slots only when the pattern asks for
 * them by name: transfer learning loads weights, not another run's Adam
 * moments. */
static bool wanted(const char *only, const char *name)
{
    if (strncmp(name, "optimizer.", 10) == 0 && strncmp(only, "optimizer.", 10) != 0)
        return false;
    return ir_glob_match(only, name);
}

/* Adam's step counter was kept in the parameters' dtype before it became
 * an f64: a checkpoint's f32 counter is taken as its value. */
static bool old_step_counter(const char *name, const Tensor *cur, const Tensor *in)
{
    return strcmp(name, "optimizer.step") == 0 && cur->dt == DT_F64 && in->dt == DT_F32 &&
           rt_tensor_same_shape(cur, in);
}

static bool load(mc_model *m, const char *path, const char *only, bool strict)
{
    TensorMap in;
    Metadata meta;
    rt_map_init(&in);
    rt_meta_init(&meta);
    bool ok = rt_safetensors_read(path, &in, &meta, &m->d);
    const Graph *pg = mc_param_graph(m);
    if (ok && !only && strict)
        ok = check_loaded(m, &in, path);
    int loaded = 0;
    if (ok && !only)
        rt_map_free(&m->best_weights);
    for (int i = 0; ok && i < in.n; i++) {
        const char *name = in.names[i];
        if (mc_cb_is_state_tensor(name)) {
            if (!only) { /* the callbacks' state comes with the step and epoch */
                char *own = xstrdup(name);
                mc_cb_take_state_tensor(m, own, rt_map_take(&in, own));
                xfree(own);
                i--;
            }
            continue;
        }
        if ((only && !wanted(only, name)) ||
            (!ir_find_param((Graph *)pg, name) && !ir_find_param(m->src, name)))
            continue; /* not asked for, or not part of this model */
        Tensor *cur = rt_map_get(&m->params, name);
        if (cur && old_step_counter(name, cur, in.t[i])) {
            Tensor *t = rt_tensor_cast(in.t[i], cur->dt);
            rt_tensor_free(in.t[i]);
            in.t[i] = t;
        }
        if (cur && (!rt_tensor_same_shape(cur, in.t[i]) || cur->dt != in.t[i]->dt)) {
            char a[96], b[96];
            diag_error(&m->d, (SrcLoc){diags_intern_file(&m->d, path), 0, 0},
                       "tensor '%s' is %s, the model expects %s", name,
                       rt_tensor_type_str(in.t[i], a, sizeof a), rt_tensor_type_str(cur, b, sizeof b));
            ok = false;
            break;
        }
        char *own = xstrdup(name); /* rt_map_take frees the map's copy */
        rt_map_put(&m->params, own, rt_map_take(&in, own));
        xfree(own);
        i--; /* rt_map_take removed entry i */
        loaded++;
    }
    if (ok && only && loaded == 0) {
        diag_error(&m->d, (SrcLoc){diags_intern_file(&m->d, path), 0, 0},
                   "no tensor of this checkpoint matching '%s' is a parameter of model '%s'", only,
                   m->src->name ? m->src->name : "?");
        ok = false;
    }
    if (ok && !only) {
        const char *s = rt_meta_get(&meta, "step");
        const char *e = rt_meta_get(&meta, "epoch");
        m->step = s ? strtoll(s, NULL, 10) : 0;
        m->epoch = e ? atoi(e) : 0;
        mc_cb_load_meta(m, &meta);
    }
    rt_map_free(&in);
    rt_meta_free(&meta);
    drop_workspaces(m);
    return ok ? true : fail(m);
}

static bool profile_report(mc_model *m)
{
    MemStream s;
    FILE *f = mem_stream_open(&s);
    if (f && m->dist)
        mc_dist_profile_print(m, f);
    if (f && m->jtrain)
        be_jit_profile_print(m->jtrain, "training step", f);
    if (f && m->jeval && m->opt.eval_only)
        be_jit_profile_print(m->jeval, "inference", f);
    xfree(m->profile_report);
    m->profile_report = mem_stream_close(&s);
    return true;
}

const char *mc_blas_info(void)
{
    static char buf[160];
    return rt_blas_core(buf, sizeof buf);
}

mc_train_config mc_train_defaults(const mc_model *m)
{
    return (mc_train_config){m->run.epochs, m->run.batch, m->src->train.lr, m->seed};
}

void mc_shuffle(const mc_model *m, int epoch, int64_t *perm, int64_t n)
{
    rt_perm_identity(perm, n);
    rt_shuffle(perm, n, m->seed, (uint64_t)epoch);
}

int mc_epoch(const mc_model *m)
{
    return m->epoch;
}

void mc_set_epoch(mc_model *m, int epoch)
{
    m->epoch = epoch;
}

const char *mc_model_name(const mc_model *m)
{
    return m->src->name ? m->src->name : "";
}

bool mc_has_loss(const mc_model *m)
{
    return m->gtrain != NULL;
}

/* The predict function, built and (JIT) compiled on first use. */
static bool prepare_predict(mc_model *m)
{
    if (!m->gpredict && !(m->gpredict = recipe(m, FN_PREDICT, MODE_INFER)))
        return false;
    if (m->opt.backend == MC_BACKEND_JIT && !m->jpredict) {
        JitOpts jo;
        jit_opts(m, &jo);
        if (compiling(m, FN_PREDICT, m->gpredict))
            m->jpredict = be_jit_compile(m->gpredict, &jo, &m->d);
        return m->jpredict != NULL;
    }
    return true;
}

/* Output i of the last JIT run as a tensor of its shape at batch n. */
static Tensor *jit_output(mc_model *m, int i, int64_t n)
{
    const Shape *s = be_jit_out_shape(m->jpredict, i);
    int64_t dims[IR_MAXRANK];
    for (int k = 0; k < s->rank; k++)
        dims[k] = ir_dim_eval(s->d[k], n);
    Tensor *t = rt_tensor_new(be_jit_out_dtype(m->jpredict, i), s->rank, dims);
    if (t)
        memcpy(t->data, be_jit_out_data(m->cur_ws, i), (size_t)rt_tensor_bytes(t));
    return t;
}

static bool predict(mc_model *m, const mc_tensor *batch, int nbatch, const mc_tensor **outs, int *nouts)
{
    *outs = NULL;
    *nouts = 0;
    if (!prepare_predict(m))
        return fail(m);
    Graph *g = m->gpredict;
    BatchView v;
    if (!view_batch(m, batch, nbatch, &v)) {
        view_free(&v);
        return false;
    }
    int64_t n = batch_n(m, g, &v);
    Tensor **res = xcalloc((size_t)g->nouts, sizeof(Tensor *));
    bool ok = true;
    if (m->jpredict) {
        ok = jit_run(m, m->jpredict, m->wpredict, n, &v);
        for (int i = 0; ok && i < g->nouts; i++)
            if (!(res[i] = jit_output(m, i, n))) {
                diag_error(&m->d, (SrcLoc){0}, "cannot allocate output '%s'", g->outs[i].name);
                ok = false;
            }
    } else {
        RunOpts ro = {m->seed, (uint64_t)m->step};
        ok = compiling(m, FN_PREDICT, g) && be_interp_run(g, &m->params, &v.map, &ro, res, &m->d);
    }
    view_free(&v);
    rt_map_free(&m->pred);
    rt_map_init(&m->pred);
    xfree(m->pred_view);
    m->pred_view = xcalloc((size_t)g->nouts, sizeof(mc_tensor));
    for (int i = 0; i < g->nouts; i++) {
        if (ok)
            rt_map_put(&m->pred, g->outs[i].name, res[i]);
        else
            rt_tensor_free(res[i]);
    }
    xfree(res);
    if (!ok)
        return fail(m);
    for (int i = 0; i < g->nouts; i++)
        m->pred_view[i] = mc_view_of(g->outs[i].name, rt_map_get(&m->pred, g->outs[i].name));
    *outs = m->pred_view;
    *nouts = g->nouts;
    return true;
}

bool mc_get_param(mc_model *m, const char *name, mc_tensor *out)
{
    Tensor *t = rt_map_get(&m->params, name);
    if (!t) {
        mc_set_error(m, "model '%s' has no parameter '%s' with a value", mc_model_name(m), name);
        return false;
    }
    *out = mc_view_of(name, t);
    return true;
}

bool mc_is_compiled(const mc_model *m, const char *fn)
{
    if (strcmp(fn, "train_step") == 0)
        return m->jtrain != NULL;
    if (strcmp(fn, "eval") == 0)
        return m->jeval != NULL;
    if (strcmp(fn, "predict") == 0)
        return m->jpredict != NULL;
    return false;
}

static bool time_report(mc_model *m)
{
    xfree(m->time_report);
    m->time_report = NULL;
    if (!m->timer)
        return true;
    MemStream s;
    FILE *f = mem_stream_open(&s);
    if (f)
        timer_print(m->timer, f);
    m->time_report = mem_stream_close(&s);
    return true;
}

/* ---- the pieces of a step, for the data-parallel step (dist.c) ---- */

bool mc_stage_batch(mc_model *m, const mc_tensor *b, int nb)
{
    return stage_batch(m, b, nb);
}

void mc_stage_lr(mc_model *m, const Graph *g, double lr)
{
    set_lr(m, g, lr);
}

bool mc_jit_run(mc_model *m, JitModule *jm, JitWorkspace **cache, int64_t n)
{
    return jit_run(m, jm, cache, n, NULL);
}

int64_t mc_batch_rows(const mc_model *m, const Graph *g)
{
    return batch_n(m, g, NULL);
}

bool mc_fail(mc_model *m)
{
    return fail(m);
}

bool mc_compiling(mc_model *m, FnKind fn, const Graph *g)
{
    return compiling(m, fn, g);
}

/* ---- the calls on a model, each under a memory guard ---- */

#define GUARDED(m, what, call)                                                                     \
    do {                                                                                           \
        if (!usable(m))                                                                            \
            return false;                                                                          \
        MemGuard g;                                                                                \
        bool ok = false;                                                                           \
        if (MEM_TRY(&g, what))                                                                     \
            ok = call;                                                                             \
        return mem_guard_pop(&g) ? ok : out_of_memory(m, &g);                                      \
    } while (0)

static bool export_onnx(mc_model *m, const char *path)
{
    RecipeOpts o = ps_recipe_opts(FN_PREDICT);
    o.fuse = false;
    Graph *g = ps_recipe(m->src, &o, &m->d);
    bool ok = g && fe_onnx_export(g, m->src, &m->params, path, &m->d);
    ir_graph_free(g);
    return ok ? true : fail(m);
}

bool mc_export_onnx(mc_model *m, const char *path)
{
    GUARDED(m, "exporting the model to ONNX", export_onnx(m, path));
}

bool mc_init_params(mc_model *m, uint64_t seed)
{
    GUARDED(m, "initialising the parameters", init_params(m, seed));
}

bool mc_train_step_metrics(mc_model *m, const mc_tensor *batch, int nbatch, double lr, double *loss,
                           double *metrics)
{
    GUARDED(m, "running a training step", train_step(m, batch, nbatch, lr, loss, metrics));
}

bool mc_train_step(mc_model *m, const mc_tensor *batch, int nbatch, double lr, double *loss)
{
    return mc_train_step_metrics(m, batch, nbatch, lr, loss, NULL);
}

bool mc_prepare_eval(mc_model *m)
{
    GUARDED(m, "compiling the inference function", prepare_eval(m));
}

bool mc_eval_batch(mc_model *m, const mc_tensor *batch, int nbatch, double *loss, double *metrics,
                   int nmetrics)
{
    GUARDED(m, "evaluating a batch", eval_batch(m, batch, nbatch, loss, metrics, nmetrics));
}

bool mc_save(mc_model *m, const char *path)
{
    GUARDED(m, "saving the parameters", save(m, path));
}

bool mc_load(mc_model *m, const char *path, const char *only, bool strict)
{
    GUARDED(m, "loading the parameters", load(m, path, only, strict));
}

/* The reports: "" when there is none, or when writing one ran out of
 * memory (then mc_last_error says so). */
static const char *report(mc_model *m, bool (*write)(mc_model *), char *const *text)
{
    if (!usable(m))
        return "";
    MemGuard g;
    if (MEM_TRY(&g, "writing a report"))
        write(m);
    if (!mem_guard_pop(&g)) {
        out_of_memory(m, &g);
        return "";
    }
    return *text ? *text : "";
}

const char *mc_profile_report(mc_model *m)
{
    return report(m, profile_report, &m->profile_report);
}

const char *mc_time_report(mc_model *m)
{
    return report(m, time_report, &m->time_report);
}

bool mc_predict(mc_model *m, const mc_tensor *batch, int nbatch, const mc_tensor **outs, int *nouts)
{
    *outs = NULL;
    *nouts = 0;
    GUARDED(m, "predicting", predict(m, batch, nbatch, outs, nouts));
}

bool mc_callbacks_set(mc_model *m, const mc_callbacks *c, bool have_val)
{
    GUARDED(m, "setting the callbacks", mc_cb_set(m, c, have_val));
}

bool mc_callbacks_epoch_end(mc_model *m, int epoch, double lr0, const char *const *names, const double *values,
                            int n, mc_callback_event *ev, int *nev)
{
    *nev = 0;
    GUARDED(m, "running the callbacks", mc_cb_epoch_end(m, epoch, lr0, names, values, n, ev, nev));
}
