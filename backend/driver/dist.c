/* Data-parallel training over MPI (mpirun -np K modelc train): every
 * process compiles the step in two halves (the recipes train_grad and
 * apply), runs train_grad on its share of each global batch, and the
 * gradients and batchnorm state updates of all processes, weighted by
 * their shares of the rows, are summed between the two halves (packed into
 * buckets, one all-reduce each, or with deterministic_reduce gathered
 * to rank 0, summed in rank order and broadcast); then every process
 * applies the same update. Every collective is non-blocking and polled,
 * so a process that stops answering is named after a timeout instead of
 * hanging the others. MPI is used here only: built without it
 * (MODELC_MPI unset), a job has one process and mc_options.distributed is
 * an error. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_internal.h"
#include "data.h"
#include "backend/interp/interp.h"
#include "backend/llvm/jit.h"
#include "runtime/kernels.h"

#ifdef MODELC_MPI
#include <mpi.h>
#endif

#define BUCKET_ELEMS ((int64_t)1 << 22) /* elements per reduction: 16 MiB of f32 */
#define DEFAULT_TIMEOUT_S 300.0         /* mc_options.dist_timeout = 0 */
#define TAG_ALIVE 7301                  /* the hang check's messages (1 asks, 2 answers) */

typedef struct Dist {
    int rank, size;
    bool deterministic; /* sums in rank order on rank 0 */
    bool own_init;      /* MPI_Init was ours: MPI_Finalize at mc_dist_finish */
    bool finished;
    uint64_t model_hash;
#ifdef MODELC_MPI
    MPI_Comm comm;
#endif
    DType dt;          /* the gradients' dtype */
    int64_t nbucket;   /* elements of the packed gradients and states */
    void *bucket;
    void *gathered;    /* deterministic: rank 0 receives size buckets here */
    size_t ngathered;  /* its bytes */
    double *stats;     /* rows, loss, metrics, two non-finite flags per rank (loss, gradients) */
    int *bad;          /* after a step, per rank: 1 its loss, 2 its gradients were not finite */
    int *tel_of;       /* per output of apply: its index among m's telemetry, or -1 */
    double reduce_ms;  /* time in the step's sums so far */
    /* replica_mean (sync_batchnorm): the sums train_grad makes while it runs */
    RtReplica replica;
    int nscript;       /* replica_mean nodes of train_grad, in the order they run */
    int64_t *script;   /* the element count of each */
    DType *script_dt;  /* and its dtype */
    void *zeros;       /* a process without rows sums these instead */
    int ncalls;        /* replica_mean calls of the running step */
    double weight;     /* this process's share of the global batch's rows */
    bool sum_failed;   /* a sum made while train_grad ran failed */
    double timeout_ms;  /* how long a sum may wait for the others */
    /* the packed buffer: one slice per gradient and state output of
     * train_grad, in output order, or with overlap in the order train_grad
     * finishes them, cut into buckets summed as soon as they are complete */
    int nslices;
    struct Slice *slices;
    int nbuckets;
    struct Bucket *buckets;
    bool overlap;       /* buckets start while train_grad runs (JIT, all-reduce) */
    int next_slice;     /* overlap: slices packed in the running step */
    double step_weight; /* overlap: this step's w */
    RtReady ready;
    int64_t nstarted, nearly; /* buckets started so far, and while train_grad ran */
    int reporter;       /* who prints the job's messages (mc_dist_reports) */
} Dist;

int mc_dist_launched(void)
{
    const char *v = getenv("OMPI_COMM_WORLD_SIZE");
    if (!v)
        v = getenv("PMI_SIZE");
    return v ? atoi(v) : 0;
}

bool mc_dist_built(void)
{
#ifdef MODELC_MPI
    return true;
#else
    return false;
#endif
}

int mc_dist_rank(const mc_model *m)
{
    return m->dist ? m->dist->rank : 0;
}

int mc_dist_size(const mc_model *m)
{
    return m->dist ? m->dist->size : 1;
}

void mc_dist_shard(const mc_model *m, int64_t start, int64_t count, int64_t *my_start, int64_t *my_count)
{
    int64_t k = mc_dist_size(m), r = mc_dist_rank(m);
    int64_t base = count / k, rem = count % k;
    *my_start = start + r * base + (r < rem ? r : rem);
    *my_count = base + (r < rem);
}

/* ---- the communication: MPI, or one process ---- */

#ifdef MODELC_MPI
static bool mpi_ok(mc_model *m, int rc, const char *what)
{
    if (rc == MPI_SUCCESS)
        return true;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    diag_error(&m->d, (SrcLoc){0}, "%s failed on rank %d: %s", what, m->dist->rank, msg);
    return false;
}

static MPI_Datatype mpi_type(DType dt)
{
    return dt == DT_F64 ? MPI_DOUBLE : MPI_FLOAT;
}
#endif

static bool comm_init(mc_model *m, Dist *t)
{
#ifdef MODELC_MPI
    int inited = 0, provided;
    MPI_Initialized(&inited);
    if (!inited) {
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
            diag_error(&m->d, (SrcLoc){0}, "cannot join the MPI job (MPI_Init failed)");
            return false;
        }
        t->own_init = true;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if (!mpi_ok(m, MPI_Comm_dup(MPI_COMM_WORLD, &t->comm), "MPI_Comm_dup"))
        return false;
    MPI_Comm_set_errhandler(t->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(t->comm, &t->rank);
    MPI_Comm_size(t->comm, &t->size);
    return true;
#else
    diag_error(&m->d, (SrcLoc){0},
               "modelc was built without MPI, so it cannot train on several processes (install "
               "libopenmpi-dev and build with -DMODELC_MPI=ON)");
    return false;
#endif
}

/* ---- waiting, with a bound ----
 * Every sum is a non-blocking collective that this process polls. A
 * process that waits longer than the timeout asks the others whether they
 * are alive (TAG_ALIVE); the ones that answer within a grace period are
 * waiting too (they answer while they poll), the others hang, were
 * stopped or are far behind: they are named, and this process gives up.
 * The first process that answered reports (mc_dist_reports). */

#ifdef MODELC_MPI
static void reply_alive(mc_model *m, int *answered)
{
    Dist *t = m->dist;
    int flag = 1;
    while (flag) {
        MPI_Status st;
        int msg = 0;
        if (MPI_Iprobe(MPI_ANY_SOURCE, TAG_ALIVE, t->comm, &flag, &st) != MPI_SUCCESS || !flag)
            return;
        MPI_Recv(&msg, 1, MPI_INT, st.MPI_SOURCE, TAG_ALIVE, t->comm, MPI_STATUS_IGNORE);
        if (msg == 1) {
            int yes = 2;
            MPI_Send(&yes, 1, MPI_INT, st.MPI_SOURCE, TAG_ALIVE, t->comm);
        } else if (answered) {
            answered[st.MPI_SOURCE] = 1;
        }
    }
}

static void nap(void)
{
    struct timespec ts = {0, 20000};
    nanosleep(&ts, NULL);
}

/* The time is up: who still answers? A diagnostic naming the others. */
static bool hung(mc_model *m, const char *what)
{
    Dist *t = m->dist;
    int *answered = xcalloc((size_t)t->size, sizeof(int));
    answered[t->rank] = 1;
    int ask = 1;
    for (int r = 0; r < t->size; r++)
        if (r != t->rank)
            MPI_Send(&ask, 1, MPI_INT, r, TAG_ALIVE, t->comm);
    double grace = t->timeout_ms < 10000 ? t->timeout_ms : 10000, t0 = mc_now_ms();
    int n = 1;
    while (n < t->size && mc_now_ms() - t0 < grace) {
        reply_alive(m, answered);
        n = 0;
        for (int r = 0; r < t->size; r++)
            n += answered[r];
        nap();
    }
    StrBuf silent;
    sb_init(&silent);
    t->reporter = -1;
    for (int r = 0; r < t->size; r++) {
        if (!answered[r])
            sb_printf(&silent, "%s%d", silent.len ? ", " : "", r);
        else if (t->reporter < 0)
            t->reporter = r;
    }
    diag_error(&m->d, (SrcLoc){0},
               "rank %d waited %.0f s for the other processes in %s at step %lld; no answer from rank %s: a "
               "process hangs, was stopped or is far behind (the bound is mc_options.dist_timeout, modelc "
               "train --dist-timeout)",
               t->rank, t->timeout_ms / 1e3, what, (long long)m->step + 1, silent.len ? silent.s : "?");
    sb_free(&silent);
    xfree(answered);
    /* the reporter prints the message; the others give it one more grace
     * period before they fail (the first process to exit ends the job) */
    for (t0 = mc_now_ms(); t->reporter != t->rank && mc_now_ms() - t0 < grace; nap())
        reply_alive(m, NULL);
    return false;
}

/* Wait for the collective req, answering the others' questions. */
static bool comm_wait(mc_model *m, MPI_Request *req, const char *what)
{
    double start = 0;
    for (long spin = 0;; spin++) {
        int done = 0;
        if (!mpi_ok(m, MPI_Test(req, &done, MPI_STATUS_IGNORE), what))
            return false;
        if (done)
            return true;
        if (spin < 4096)
            continue;
        if (spin == 4096)
            start = mc_now_ms();
        reply_alive(m, NULL);
        if (mc_now_ms() - start > m->dist->timeout_ms)
            return hung(m, what);
        nap();
    }
}

/* v[i] = the sum over ranks of v[i] in rank order, on `cnt` elements;
 * rank 0 gathers, sums and broadcasts. */
static bool ordered_sum(mc_model *m, void *v, int cnt, DType dt)
{
    Dist *t = m->dist;
    MPI_Datatype ty = mpi_type(dt);
    MPI_Request req;
    if (!mpi_ok(m, MPI_Igather(v, cnt, ty, t->gathered, cnt, ty, 0, t->comm, &req), "MPI_Igather") ||
        !comm_wait(m, &req, "MPI_Igather"))
        return false;
    if (t->rank == 0) {
        if (dt == DT_F64) {
            const double *g = t->gathered;
            double *o = v;
            for (int i = 0; i < cnt; i++) {
                double s = g[i];
                for (int r = 1; r < t->size; r++)
                    s += g[(size_t)r * (size_t)cnt + (size_t)i];
                o[i] = s;
            }
        } else {
            const float *g = t->gathered;
            float *o = v;
            for (int i = 0; i < cnt; i++) {
                float s = g[i];
                for (int r = 1; r < t->size; r++)
                    s += g[(size_t)r * (size_t)cnt + (size_t)i];
                o[i] = s;
            }
        }
    }
    return mpi_ok(m, MPI_Ibcast(v, cnt, ty, 0, t->comm, &req), "MPI_Ibcast") && comm_wait(m, &req, "MPI_Ibcast");
}

static bool allreduce(mc_model *m, void *p, int cnt, DType dt)
{
    MPI_Request req;
    return mpi_ok(m, MPI_Iallreduce(MPI_IN_PLACE, p, cnt, mpi_type(dt), MPI_SUM, m->dist->comm, &req),
                  "MPI_Iallreduce") &&
           comm_wait(m, &req, "MPI_Iallreduce");
}
#endif

/* Sum n elements of dtype dt over all ranks, in place, in buckets. */
static bool comm_sum(mc_model *m, void *v, int64_t n, DType dt)
{
#ifdef MODELC_MPI
    Dist *t = m->dist;
    if (t->size == 1)
        return true;
    size_t es = (size_t)ir_dtype_size(dt);
    size_t need = (size_t)t->size * (size_t)(n < BUCKET_ELEMS ? n : BUCKET_ELEMS) * es;
    if (t->deterministic && t->rank == 0 && t->ngathered < need) {
        xfree(t->gathered);
        t->gathered = xmalloc(need);
        t->ngathered = need;
    }
    for (int64_t off = 0; off < n; off += BUCKET_ELEMS) {
        int cnt = (int)(n - off < BUCKET_ELEMS ? n - off : BUCKET_ELEMS);
        char *p = (char *)v + (size_t)off * es;
        if (!(t->deterministic ? ordered_sum(m, p, cnt, dt) : allreduce(m, p, cnt, dt)))
            return false;
    }
#endif
    return true;
}

/* Rank 0's bytes to every rank. */
static bool comm_bcast(mc_model *m, void *v, int64_t bytes)
{
#ifdef MODELC_MPI
    const int64_t chunk = (int64_t)1 << 30;
    for (int64_t off = 0; off < bytes; off += chunk) {
        int cnt = (int)(bytes - off < chunk ? bytes - off : chunk);
        MPI_Request req;
        if (!mpi_ok(m, MPI_Ibcast((char *)v + off, cnt, MPI_BYTE, 0, m->dist->comm, &req), "MPI_Ibcast") ||
            !comm_wait(m, &req, "MPI_Ibcast"))
            return false;
    }
#endif
    return true;
}

/* all[r * n + i] = rank r's v[i]. */
static bool comm_allgather(mc_model *m, const uint64_t *v, int n, uint64_t *all)
{
#ifdef MODELC_MPI
    MPI_Request req;
    return mpi_ok(m, MPI_Iallgather(v, n, MPI_UINT64_T, all, n, MPI_UINT64_T, m->dist->comm, &req),
                  "MPI_Iallgather") &&
           comm_wait(m, &req, "MPI_Iallgather");
#else
    memcpy(all, v, (size_t)n * sizeof *v);
    return true;
#endif
}

bool mc_dist_reports(const mc_model *m)
{
    return m->dist ? m->dist->reporter == m->dist->rank : true;
}

/* ---- setup ---- */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* FNV-1a of g's IR text without locations, with the run settings. */
static uint64_t graph_hash(uint64_t h, const mc_model *m, Graph *g)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ir_print_model(g, &m->run, f, IR_PRINT_NO_LOC);
    fclose(f);
    h = fnv(h, buf, len);
    xfree(buf);
    return h;
}

static Graph *recipe(mc_model *m, FnKind fn)
{
    RecipeOpts o = ps_recipe_opts(fn);
    o.mode = m->opt.train_mode == MC_MODE_INFER ? MODE_INFER : MODE_TRAIN;
    o.fuse = m->opt.backend == MC_BACKEND_JIT;
    o.timer = m->timer;
    return ps_recipe(m->src, &o, &m->d);
}

static bool is_state(const Output *o)
{
    return o->kind == OUT_UPDATE && o->target->a.role == ROLE_STATE;
}

/* A gradient or state output of train_grad in the packed buffer. */
typedef struct Slice {
    int out;     /* index in train_grad's outputs */
    int64_t off; /* elements before it in the buffer */
    int64_t n;
    int step;    /* overlap: the JIT step after which it is final */
} Slice;

/* Slices [first, last) summed together; overlap only. */
typedef struct Bucket {
    int first, last;
    int nreq; /* one all-reduce per BUCKET_ELEMS */
#ifdef MODELC_MPI
    MPI_Request *req;
#endif
    bool started;
} Bucket;

static void slice_offsets(Dist *t)
{
    int64_t off = 0;
    for (int k = 0; k < t->nslices; k++) {
        t->slices[k].off = off;
        off += t->slices[k].n;
    }
}

/* The packed gradients and states: their dtype and element count. */
static bool size_bucket(mc_model *m, Dist *t)
{
    const Graph *g = m->ggrad;
    bool any = false;
    for (int i = 0; i < g->nouts; i++) {
        const Output *o = &g->outs[i];
        if (o->kind != OUT_GRAD && !is_state(o))
            continue;
        if (o->kind == OUT_GRAD && !any) {
            t->dt = o->target->dt;
            any = true;
        }
        t->nbucket += ir_dims_numel(o->target->shape.rank, o->target->shape.d);
    }
    for (int i = 0; i < g->nouts; i++) {
        const Output *o = &g->outs[i];
        if ((o->kind == OUT_GRAD || is_state(o)) && o->target->dt != t->dt) {
            diag_error(&m->d, o->target->loc,
                       "data-parallel training sums gradients and state of one dtype: '%s' is %s, the gradients %s",
                       o->target->a.name, ir_dtype_name(o->target->dt), ir_dtype_name(t->dt));
            return false;
        }
    }
    if (!any) {
        diag_error(&m->d, (SrcLoc){0}, "model '%s' has no trained parameter", m->src->name);
        return false;
    }
    t->bucket = xcalloc((size_t)t->nbucket + 1, (size_t)ir_dtype_size(t->dt));
    t->slices = xcalloc((size_t)g->nouts + 1, sizeof(Slice));
    for (int i = 0; i < g->nouts; i++)
        if (g->outs[i].kind == OUT_GRAD || is_state(&g->outs[i]))
            t->slices[t->nslices++] =
                (Slice){i, 0, ir_dims_numel(g->outs[i].target->shape.rank, g->outs[i].target->shape.d), -1};
    slice_offsets(t);
    return true;
}

static int by_step(const void *a, const void *b)
{
    const Slice *x = a, *y = b;
    return x->step != y->step ? (x->step > y->step) - (x->step < y->step) : (x->out > y->out) - (x->out < y->out);
}

/* Overlap (DDP's buckets): with the JIT and the all-reduce, the slices go
 * in the order train_grad finishes them (its entry calls rt_step_done),
 * cut into buckets of about bucket_bytes; each bucket's all-reduce starts
 * when its last slice is final, while the backward pass goes on. Not with
 * replica_mean (its sums would interleave with the buckets', and a
 * process without rows could not repeat that order). */
static void plan_overlap(mc_model *m, Dist *t)
{
    if (!m->jgrad || t->deterministic || t->size == 1 || t->nscript > 0)
        return;
    for (int k = 0; k < t->nslices; k++)
        t->slices[k].step = be_jit_out_step(m->jgrad, t->slices[k].out);
    qsort(t->slices, (size_t)t->nslices, sizeof(Slice), by_step);
    slice_offsets(t);
    double mb = m->opt.dist_bucket_mb > 0 ? m->opt.dist_bucket_mb : 4;
    int64_t cap = (int64_t)(mb * 1048576.0) / ir_dtype_size(t->dt);
    cap = cap < 1 ? 1 : cap;
    t->buckets = xcalloc((size_t)t->nslices + 1, sizeof(Bucket));
    for (int k = 0; k < t->nslices;) {
        Bucket *b = &t->buckets[t->nbuckets++];
        b->first = k;
        int64_t n = 0;
        while (k < t->nslices && (k == b->first || n + t->slices[k].n <= cap))
            n += t->slices[k++].n;
        b->last = k;
        b->nreq = (int)((n + BUCKET_ELEMS - 1) / BUCKET_ELEMS);
#ifdef MODELC_MPI
        b->req = xcalloc((size_t)b->nreq + 1, sizeof(MPI_Request));
#endif
    }
    t->overlap = true;
}

/* The sums train_grad makes while it runs (replica_mean, from the train
 * block's sync_batchnorm): both backends run the nodes in graph order, on
 * the calling thread, so every process makes them in this order. */
static void find_replicas(Dist *t, const Graph *g)
{
    int64_t most = 1;
    for (int i = 0; i < g->nnodes; i++)
        t->nscript += g->nodes[i]->op == OP_REPLICA_MEAN;
    t->script = xcalloc((size_t)t->nscript + 1, sizeof(int64_t));
    t->script_dt = xcalloc((size_t)t->nscript + 1, sizeof(DType));
    for (int i = 0, k = 0; i < g->nnodes; i++) {
        const Node *v = g->nodes[i];
        if (v->op != OP_REPLICA_MEAN)
            continue;
        t->script[k] = ir_dims_numel(v->shape.rank, v->shape.d);
        t->script_dt[k++] = v->dt;
        most = t->script[k - 1] > most ? t->script[k - 1] : most;
    }
    t->zeros = xcalloc((size_t)most, sizeof(double));
}

static void find_outputs(mc_model *m)
{
    const Graph *g = m->ggrad;
    int k = 0;
    m->grad_loss_out = -1;
    for (int i = 0; i < g->nouts; i++) {
        if (g->outs[i].kind == OUT_LOSS && m->grad_loss_out < 0)
            m->grad_loss_out = i;
        if (g->outs[i].kind == OUT_METRIC && k < MC_MAX_METRICS)
            m->grad_metric_out[k++] = i;
    }
}

static JitModule *compile(mc_model *m, Graph *g)
{
    JitOpts jo;
    be_jit_opts_default(&jo);
    jo.threads = m->opt.threads;
    jo.cache_dir = m->opt.cache_dir;
    jo.time_passes = m->timer != NULL;
    jo.timer = m->timer;
    jo.profile = m->opt.profile;
    jo.step_done = g == m->ggrad;
    return be_jit_compile(g, &jo, &m->d);
}

bool mc_dist_setup(mc_model *m)
{
    Dist *t = m->dist = xcalloc(1, sizeof *t);
    t->deterministic = m->opt.deterministic_reduce;
    t->size = 1;
    t->timeout_ms = 1e3 * (m->opt.dist_timeout > 0 ? m->opt.dist_timeout : DEFAULT_TIMEOUT_S);
    if (!comm_init(m, t))
        return false;
    if (!(m->ggrad = recipe(m, FN_TRAIN_GRAD)) || !(m->gapply = recipe(m, FN_APPLY)))
        return false;
    if (!size_bucket(m, t))
        return false;
    find_outputs(m);
    find_replicas(t, m->ggrad);
    t->stats = xcalloc((size_t)(2 + MC_MAX_METRICS + 2 * t->size), sizeof(double));
    t->bad = xcalloc((size_t)t->size, sizeof(int));
    uint64_t h = graph_hash(0xcbf29ce484222325ull, m, m->ggrad);
    t->model_hash = fnv(graph_hash(h, m, m->gapply), &m->seed, sizeof m->seed);
    if (!mc_compiling(m, FN_TRAIN_GRAD, m->ggrad) || !mc_compiling(m, FN_APPLY, m->gapply))
        return false;
    if (m->opt.backend == MC_BACKEND_JIT &&
        (!(m->jgrad = compile(m, m->ggrad)) || !(m->japply = compile(m, m->gapply))))
        return false;
    plan_overlap(m, t);
    return true;
}

void mc_dist_free(mc_model *m)
{
    Dist *t = m->dist;
    be_jit_free(m->jgrad);
    be_jit_free(m->japply);
    ir_graph_free(m->ggrad);
    ir_graph_free(m->gapply);
    m->jgrad = m->japply = NULL;
    m->ggrad = m->gapply = NULL;
    if (!t)
        return;
#ifdef MODELC_MPI
    int fin = 0;
    MPI_Finalized(&fin);
    if (!t->finished && !fin && t->comm != MPI_COMM_NULL && t->comm)
        MPI_Comm_free(&t->comm);
#endif
    xfree(t->bucket);
    xfree(t->gathered);
    xfree(t->stats);
    xfree(t->script);
    xfree(t->script_dt);
    xfree(t->bad);
    xfree(t->tel_of);
    xfree(t->slices);
#ifdef MODELC_MPI
    for (int b = 0; b < t->nbuckets; b++)
        xfree(t->buckets[b].req);
#endif
    xfree(t->buckets);
    xfree(t->zeros);
    xfree(t);
    m->dist = NULL;
}

void mc_dist_finish(mc_model *m)
{
    Dist *t = m->dist;
    if (!t || t->finished)
        return;
#ifdef MODELC_MPI
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin) {
        MPI_Comm_free(&t->comm);
        if (t->own_init)
            MPI_Finalize();
    }
#endif
    t->finished = true;
}

/* jm's profile summed over the processes (collective), printed, then
 * this process's own figures again: times per call and per step are the
 * means over the processes. */
static void profile_print(mc_model *m, JitModule *jm, const char *title, FILE *f)
{
    RtProf *p = jm ? be_jit_profile(jm) : NULL;
    if (!p)
        return;
    int64_t *own = xcalloc((size_t)(2 * p->n + 1), sizeof(int64_t));
    double *v = xcalloc((size_t)(2 * p->n + 1), sizeof(double));
    for (int i = 0; i < p->n; i++) {
        own[i] = p->ns[i];
        own[p->n + i] = p->calls[i];
    }
    own[2 * p->n] = p->runs;
    for (int i = 0; i <= 2 * p->n; i++)
        v[i] = (double)own[i];
    bool ok = comm_sum(m, v, 2 * p->n + 1, DT_F64);
    for (int i = 0; ok && i < p->n; i++) {
        p->ns[i] = (int64_t)v[i];
        p->calls[i] = (int64_t)v[p->n + i];
    }
    p->runs = ok ? (int64_t)v[2 * p->n] : p->runs;
    char t[160];
    snprintf(t, sizeof t, "%s, summed over %d processes", title, m->dist->size);
    be_jit_profile_print(jm, t, f);
    for (int i = 0; i < p->n; i++) {
        p->ns[i] = own[i];
        p->calls[i] = own[p->n + i];
    }
    p->runs = own[2 * p->n];
    xfree(own);
    xfree(v);
}

void mc_dist_profile_print(mc_model *m, FILE *f)
{
    profile_print(m, m->jgrad, "training step, first half (train_grad)", f);
    profile_print(m, m->japply, "training step, second half (apply)", f);
}

int64_t mc_dist_reduce_bytes(const mc_model *m)
{
    const Dist *t = m->dist;
    if (!t)
        return 0;
    int64_t b = t->nbucket * ir_dtype_size(t->dt);
    for (int i = 0; i < t->nscript; i++)
        b += t->script[i] * ir_dtype_size(t->script_dt[i]);
    return b;
}

double mc_dist_reduce_ms(const mc_model *m)
{
    return m->dist ? m->dist->reduce_ms : 0;
}

bool mc_dist_bcast(mc_model *m, void *v, int64_t bytes)
{
    if (!m->dist)
        return true;
    return comm_bcast(m, v, bytes) || mc_fail(m);
}

bool mc_dist_sum(mc_model *m, double *v, int n)
{
    if (!m->dist)
        return true;
    return comm_sum(m, v, n, DT_F64) || mc_fail(m);
}

/* FNV-1a of the parameters' names and sizes, in the map's order. */
static uint64_t params_hash(const mc_model *m)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < m->params.n; i++) {
        h = fnv(h, m->params.names[i], strlen(m->params.names[i]) + 1);
        int64_t b = rt_tensor_bytes(m->params.t[i]);
        h = fnv(h, &b, sizeof b);
    }
    return h;
}

enum { ST_OK, ST_MODEL, ST_PARAMS, ST_COUNT, ST_DATA, ST_SETTINGS, ST_N };

static bool check_ranks(mc_model *m, const uint64_t *all)
{
    Dist *t = m->dist;
    for (int r = 0; r < t->size; r++)
        if (!all[r * ST_N + ST_OK]) {
            mc_set_error(m, "error: rank %d of %d could not start training (its message says why)\n", r, t->size);
            return false;
        }
    for (int r = 1; r < t->size; r++) {
        const uint64_t *a = all + r * ST_N, *z = all;
        if (a[ST_MODEL] != z[ST_MODEL] || a[ST_PARAMS] != z[ST_PARAMS]) {
            mc_set_error(m,
                         "error: rank %d compiled a different model than rank 0 (hash of its train_grad and apply IR "
                         "%016llx, rank 0's %016llx): every process must train the same model file with the same "
                         "train settings and seed\n",
                         r, (unsigned long long)a[ST_MODEL], (unsigned long long)z[ST_MODEL]);
            return false;
        }
        if (a[ST_COUNT] != z[ST_COUNT] || a[ST_DATA] != z[ST_DATA]) {
            mc_set_error(m,
                         "error: rank %d has different training data than rank 0 (%llu examples, hash %016llx; rank "
                         "0: %llu examples, hash %016llx): every process must read the same data\n",
                         r, (unsigned long long)a[ST_COUNT], (unsigned long long)a[ST_DATA],
                         (unsigned long long)z[ST_COUNT], (unsigned long long)z[ST_DATA]);
            return false;
        }
        if (a[ST_SETTINGS] != z[ST_SETTINGS]) {
            mc_set_error(m, "error: rank %d trains with other settings than rank 0 (batch, epochs or learning rate): "
                            "every process must be given the same options\n", r);
            return false;
        }
    }
    return true;
}

bool mc_dist_start(mc_model *m, const mc_data *train, const void *settings, size_t nsettings, bool ok)
{
    Dist *t = m->dist;
    if (!t)
        return ok;
    uint64_t mine[ST_N] = {ok, t->model_hash, params_hash(m), train ? (uint64_t)mc_data_count(train) : 0,
                           train ? mc_data_hash(train) : 0, fnv(0xcbf29ce484222325ull, settings, nsettings)};
    uint64_t *all = xcalloc((size_t)t->size * ST_N, sizeof(uint64_t));
    bool good = comm_allgather(m, mine, ST_N, all) && check_ranks(m, all);
    xfree(all);
    if (!good)
        return m->d.nerrors ? mc_fail(m) : false;
    int64_t se[4] = {m->step, m->epoch, m->lr_horizon, m->best_weights.n};
    bool sent = comm_bcast(m, se, sizeof se) && comm_bcast(m, &m->cb, sizeof m->cb);
    for (int i = 0; sent && i < m->params.n; i++)
        sent = comm_bcast(m, m->params.t[i]->data, rt_tensor_bytes(m->params.t[i]));
    if (sent && se[3] > 0) /* rank 0's best weights (a resumed early_stopping), in the parameters' order */
        mc_cb_alloc_best(m);
    for (int i = 0; sent && se[3] > 0 && i < m->params.n; i++) {
        Tensor *b = rt_map_get(&m->best_weights, m->params.names[i]);
        sent = !b || comm_bcast(m, b->data, rt_tensor_bytes(b));
    }
    if (!sent)
        return mc_fail(m);
    m->step = se[0];
    m->epoch = (int)se[1];
    m->lr_horizon = se[2];
    return true;
}

/* ---- the step ---- */

/* Output i of train_grad's last run (JIT: its buffer; interpreter: outs). */
static const void *grad_out(mc_model *m, Tensor **outs, int i)
{
    return m->jgrad ? be_jit_out_data(m->cur_ws, i) : outs[i]->data;
}

static double grad_scalar(mc_model *m, Tensor **outs, int i)
{
    if (!m->jgrad)
        return rt_get(outs[i], 0);
    const void *p = grad_out(m, outs, i);
    return be_jit_out_dtype(m->jgrad, i) == DT_F64 ? *(const double *)p : *(const float *)p;
}

/* dst[0..n) = w * src (zeros without src). */
static void scaled(void *dst, const void *src, int64_t n, DType dt, double w)
{
    if (!src) {
        memset(dst, 0, (size_t)n * (size_t)ir_dtype_size(dt));
    } else if (dt == DT_F64) {
        const double *s = src;
        double *d = dst;
        for (int64_t i = 0; i < n; i++)
            d[i] = s[i] * w;
    } else {
        const float *s = src;
        float *d = dst, wf = (float)w;
        for (int64_t i = 0; i < n; i++)
            d[i] = s[i] * wf;
    }
}

/* Slice k of the packed buffer: this process's gradient or new state
 * weighted by its share w (zeros without a run). */
static void pack_slice(mc_model *m, Tensor **outs, int k, bool ran, double w)
{
    Dist *t = m->dist;
    const Slice *sl = &t->slices[k];
    const Output *o = &m->ggrad->outs[sl->out];
    const void *src = NULL;
    if (ran && o->kind == OUT_GRAD)
        src = grad_out(m, outs, sl->out);
    else if (ran) /* the JIT updated the state in place */
        src = m->jgrad ? rt_map_get(&m->params, o->target->a.name)->data : outs[sl->out]->data;
    scaled((char *)t->bucket + (size_t)sl->off * (size_t)ir_dtype_size(t->dt), src, sl->n, t->dt, w);
}

/* The gradients and the new state, weighted by this rank's share w. */
static void pack(mc_model *m, Tensor **outs, bool ran, double w)
{
    for (int k = 0; k < m->dist->nslices; k++)
        pack_slice(m, outs, k, ran, w);
}

/* The summed gradients become apply's inputs, the summed state the
 * parameters' values. */
static bool unpack(mc_model *m)
{
    Dist *t = m->dist;
    size_t es = (size_t)ir_dtype_size(t->dt);
    for (int k = 0; k < t->nslices; k++) {
        const Output *o = &m->ggrad->outs[t->slices[k].out];
        Tensor *p = rt_map_get(&m->params, o->target->a.name), *dst = p;
        if (!p) {
            mc_set_error(m, "parameter '%s' has no value", o->target->a.name);
            return false;
        }
        if (o->kind == OUT_GRAD) {
            dst = rt_map_get(&m->batch, o->name);
            if (!dst) {
                dst = rt_tensor_new(p->dt, p->rank, p->dims);
                rt_map_put(&m->batch, o->name, dst);
            }
        }
        memcpy(dst->data, (char *)t->bucket + (size_t)t->slices[k].off * es, (size_t)dst->numel * es);
    }
    return true;
}

/* ---- overlap: buckets summed while train_grad runs ---- */

/* Start bucket b's all-reduce (non-blocking). */
static bool start_bucket(mc_model *m, Bucket *b, bool early)
{
    Dist *t = m->dist;
    b->started = true;
    t->nstarted++;
    t->nearly += early && t->next_slice < t->nslices; /* gradients were still to come */
#ifdef MODELC_MPI
    size_t es = (size_t)ir_dtype_size(t->dt);
    int64_t off = t->slices[b->first].off, end = off;
    for (int k = b->first; k < b->last; k++)
        end += t->slices[k].n;
    for (int r = 0; off < end; off += BUCKET_ELEMS, r++) {
        int cnt = (int)(end - off < BUCKET_ELEMS ? end - off : BUCKET_ELEMS);
        if (!mpi_ok(m, MPI_Iallreduce(MPI_IN_PLACE, (char *)t->bucket + (size_t)off * es, cnt, mpi_type(t->dt),
                                      MPI_SUM, t->comm, &b->req[r]),
                    "MPI_Iallreduce"))
            return false;
    }
#endif
    return true;
}

/* Pack the slices final by `step` (all with step < 0: before the run) and
 * start the buckets they complete, in bucket order. */
static bool slices_done(mc_model *m, int64_t step, bool early)
{
    Dist *t = m->dist;
    while (t->next_slice < t->nslices && t->slices[t->next_slice].step <= step)
        pack_slice(m, NULL, t->next_slice++, true, t->step_weight);
    bool ok = true;
    for (int b = 0; ok && b < t->nbuckets; b++)
        if (!t->buckets[b].started && t->buckets[b].last <= t->next_slice)
            ok = start_bucket(m, &t->buckets[b], early);
#ifdef MODELC_MPI
    for (int b = 0; ok && b < t->nbuckets; b++) /* Open MPI progresses them inside MPI calls */
        for (int r = 0; t->buckets[b].started && r < t->buckets[b].nreq; r++) {
            int flag;
            MPI_Test(&t->buckets[b].req[r], &flag, MPI_STATUS_IGNORE);
        }
#endif
    return ok;
}

/* rt_step_done's listener while train_grad runs. */
static void step_done(void *env, int64_t step)
{
    mc_model *m = env;
    if (!m->dist->sum_failed && !slices_done(m, step, true))
        m->dist->sum_failed = true;
}

/* Before train_grad runs: the step's weight (the slices final before its
 * first step are packed at the first rt_step_done, once its workspace is
 * bound). */
static void overlap_begin(mc_model *m, double w)
{
    Dist *t = m->dist;
    t->next_slice = 0;
    t->step_weight = w;
    for (int b = 0; b < t->nbuckets; b++)
        t->buckets[b].started = false;
    t->ready = (RtReady){m, step_done};
}

/* After it (or instead of it, without rows): the rest, then every bucket's
 * sum. */
static bool overlap_end(mc_model *m, bool ran)
{
    Dist *t = m->dist;
    while (t->next_slice < t->nslices)
        pack_slice(m, NULL, t->next_slice++, ran, t->step_weight);
    for (int b = 0; b < t->nbuckets; b++)
        if (!t->buckets[b].started && !start_bucket(m, &t->buckets[b], false))
            return false;
#ifdef MODELC_MPI
    for (int b = 0; b < t->nbuckets; b++)
        for (int r = 0; r < t->buckets[b].nreq; r++)
            if (!comm_wait(m, &t->buckets[b].req[r], "MPI_Iallreduce"))
                return false;
#endif
    return true;
}

void mc_dist_overlap(const mc_model *m, int64_t *buckets, int64_t *early)
{
    *buckets = m->dist ? m->dist->nstarted : 0;
    *early = m->dist ? m->dist->nearly : 0;
}

/* False when a gradient of train_grad's last run holds a NaN or Inf. */
static bool grads_finite(mc_model *m, Tensor **outs)
{
    const Graph *g = m->ggrad;
    for (int i = 0; i < g->nouts; i++) {
        if (g->outs[i].kind != OUT_GRAD)
            continue;
        int64_t n = ir_dims_numel(g->outs[i].target->shape.rank, g->outs[i].target->shape.d);
        const void *v = grad_out(m, outs, i);
        for (int64_t k = 0; k < n; k++)
            if (!isfinite(m->dist->dt == DT_F64 ? ((const double *)v)[k] : ((const float *)v)[k]))
                return false;
    }
    return true;
}

/* The telemetry (mc_options.telemetry) is the update's, computed by apply
 * from the summed gradients: the same on every process. */
static void take_telemetry(mc_model *m, Tensor **outs)
{
    const Graph *g = m->gapply;
    Dist *t = m->dist;
    if (!t->tel_of) {
        t->tel_of = xcalloc((size_t)g->nouts + 1, sizeof(int));
        for (int i = 0; i < g->nouts; i++) {
            t->tel_of[i] = -1;
            for (int k = 0; k < m->ntel; k++)
                if (g->outs[i].name && strncmp(g->outs[i].name, "telemetry.", 10) == 0 &&
                    strcmp(g->outs[i].name + 10, m->tel_name[k]) == 0)
                    t->tel_of[i] = k;
        }
    }
    for (int i = 0; i < g->nouts; i++) {
        if (t->tel_of[i] < 0)
            continue;
        double v;
        if (m->japply) {
            const void *p = be_jit_out_data(m->cur_ws, i);
            v = be_jit_out_dtype(m->japply, i) == DT_F64 ? *(const double *)p : *(const float *)p;
        } else {
            v = rt_get(outs[i], 0);
        }
        m->tel_val[t->tel_of[i]] = v;
    }
}

int mc_dist_culprit(const mc_model *m)
{
    const Dist *t = m->dist;
    for (int want = 1; t && want <= 2; want++)
        for (int r = 0; r < t->size; r++)
            if (t->bad[r] & want)
                return r;
    return 0;
}

uint64_t mc_dist_seed(const mc_model *m)
{
    return m->seed ^ (uint64_t)mc_dist_rank(m) * 0x9E3779B97F4A7C15ull;
}

void mc_dist_bad_ranks(const mc_model *m, int which, char *buf, size_t n)
{
    const Dist *t = m->dist;
    size_t len = 0;
    buf[0] = 0;
    for (int r = 0; t && r < t->size && len < n; r++)
        if (t->bad[r] & which)
            len += (size_t)snprintf(buf + len, n - len, "%s%d", len ? ", " : "", r);
}

/* ---- replica_mean: the sums made while train_grad runs ---- */

/* data = the sum over the processes of weight * data: every process
 * weights its value by its share of the rows (RtReplica.mean). */
static void replica_mean(void *env, void *data, int64_t n, int f64)
{
    mc_model *m = env;
    Dist *t = m->dist;
    DType dt = f64 ? DT_F64 : DT_F32;
    if (t->ncalls >= t->nscript || t->script[t->ncalls] != n || t->script_dt[t->ncalls] != dt)
        ICE("replica_mean call %d of %lld elements is not the %d-th of train_grad's graph", t->ncalls + 1,
            (long long)n, t->ncalls + 1);
    t->ncalls++;
    if (t->sum_failed)
        return;
    scaled(data, data, n, dt, t->weight);
    double t0 = mc_now_ms();
    t->sum_failed = !comm_sum(m, data, n, dt);
    t->reduce_ms += mc_now_ms() - t0;
}

/* A process without rows this step takes part in the sums of the others
 * with zeros. */
static bool replica_zeros(mc_model *m)
{
    Dist *t = m->dist;
    for (int i = 0; i < t->nscript; i++) {
        memset(t->zeros, 0, (size_t)t->script[i] * (size_t)ir_dtype_size(t->script_dt[i]));
        replica_mean(m, t->zeros, t->script[i], t->script_dt[i] == DT_F64);
    }
    return !t->sum_failed;
}

/* This process's share of the global batch (n of its rows), which
 * replica_mean and the overlapped buckets weight by: one sum before the
 * step, only when train_grad has replica_mean nodes or overlaps. */
static bool replica_weight(mc_model *m, int64_t n)
{
    Dist *t = m->dist;
    double rows = (double)n;
    t->ncalls = 0;
    t->sum_failed = false;
    if (t->nscript == 0 && !t->overlap)
        return true;
    if (!comm_sum(m, &rows, 1, DT_F64))
        return false;
    t->weight = rows > 0 ? (double)n / rows : 0;
    return true;
}

/* Dropout masks of rank r come from (seed ^ r * 0x9E3779B97F4A7C15,
 * stream, step) (mc_dist_seed): rank 0 draws one process's masks, the
 * others their own (m->seed itself, which orders the examples, is the same
 * everywhere). */
static bool run_grad(mc_model *m, int64_t n, Tensor **outs)
{
    Dist *t = m->dist;
    uint64_t seed = m->seed;
    m->seed = mc_dist_seed(m);
    t->replica = (RtReplica){m, replica_mean};
    bool ok;
    if (m->jgrad) {
        m->replica = &t->replica;
        m->ready = t->overlap ? &t->ready : NULL;
        ok = mc_jit_run(m, m->jgrad, m->wgrad, n);
        m->replica = NULL;
        m->ready = NULL;
    } else {
        RunOpts ro = {m->seed, (uint64_t)m->step};
        ok = be_interp_run_replica(m->ggrad, &m->params, &m->batch, &ro, &t->replica, outs, &m->d);
    }
    m->seed = seed;
    if (ok && t->ncalls != t->nscript)
        ICE("train_grad made %d of its %d replica_mean sums", t->ncalls, t->nscript);
    return ok && !t->sum_failed;
}

static bool run_apply(mc_model *m, double lr)
{
    mc_stage_lr(m, m->gapply, lr);
    if (m->japply) {
        if (!mc_jit_run(m, m->japply, m->wapply, 0))
            return false;
        take_telemetry(m, NULL);
        return true;
    }
    Graph *g = m->gapply;
    Tensor **outs = xcalloc((size_t)g->nouts + 1, sizeof(Tensor *));
    if (m->lr)
        rt_map_put(&m->batch, "optimizer.lr", rt_tensor_clone(m->lr));
    RunOpts ro = {m->seed, (uint64_t)m->step};
    bool ok = be_interp_run(g, &m->params, &m->batch, &ro, outs, &m->d);
    if (ok)
        take_telemetry(m, outs);
    for (int i = 0; i < g->nouts; i++) {
        if (ok && g->outs[i].kind == OUT_UPDATE)
            rt_map_put(&m->params, g->outs[i].target->a.name, outs[i]);
        else
            rt_tensor_free(outs[i]);
    }
    xfree(outs);
    return ok;
}

static void free_outs(const mc_model *m, Tensor **outs)
{
    for (int i = 0; outs && i < m->ggrad->nouts; i++)
        rt_tensor_free(outs[i]);
    xfree(outs);
}

/* The ranks whose own loss was not finite, as text. */
static void bad_loss(mc_model *m, double loss, const double *flags)
{
    StrBuf b;
    sb_init(&b);
    for (int r = 0; r < m->dist->size; r++)
        if (flags[r] != 0)
            sb_printf(&b, "%s%d", b.len ? ", " : "", r);
    mc_set_error(m, "loss is %s at step %lld (on rank %s of %d)", isnan(loss) ? "NaN" : "infinite",
                 (long long)m->step + 1, b.len ? b.s : "?", m->dist->size);
    sb_free(&b);
}

bool mc_dist_train_step(mc_model *m, const mc_tensor *batch, int nbatch, double lr, double *loss,
                        double *metrics)
{
    Dist *t = m->dist;
    int64_t n = 0;
    if (nbatch > 0) {
        if (!mc_stage_batch(m, batch, nbatch))
            return false;
        n = mc_batch_rows(m, m->ggrad);
    }
    int nm = m->nmetrics, ns = 2 + nm + 2 * t->size;
    double *st = t->stats, l = 0;
    memset(st, 0, (size_t)ns * sizeof(double));
    Tensor **outs = n > 0 && !m->jgrad ? xcalloc((size_t)m->ggrad->nouts + 1, sizeof(Tensor *)) : NULL;
    if (!replica_weight(m, n) || (n == 0 && !replica_zeros(m))) {
        free_outs(m, outs);
        return mc_fail(m);
    }
    if (t->overlap)
        overlap_begin(m, t->weight);
    if (n > 0) {
        if (!run_grad(m, n, outs)) {
            free_outs(m, outs);
            return mc_fail(m);
        }
        l = grad_scalar(m, outs, m->grad_loss_out);
        st[1] = (double)n * l;
        for (int i = 0; i < nm; i++)
            st[2 + i] = (double)n * grad_scalar(m, outs, m->grad_metric_out[i]);
        st[2 + nm + t->rank] = !isfinite(l);
        st[2 + nm + t->size + t->rank] = m->opt.telemetry && !grads_finite(m, outs);
    }
    st[0] = (double)n;
    double t0 = mc_now_ms();
    bool summed = !t->overlap || overlap_end(m, n > 0);
    summed = summed && comm_sum(m, st, ns, DT_F64);
    t->reduce_ms += mc_now_ms() - t0;
    if (!summed) {
        free_outs(m, outs);
        return mc_fail(m);
    }
    for (int r = 0; r < t->size; r++)
        t->bad[r] = (st[2 + nm + r] != 0) | (st[2 + nm + t->size + r] != 0) << 1;
    double total = st[0];
    *loss = total > 0 ? st[1] / total : NAN;
    if (total <= 0 || !isfinite(*loss)) {
        free_outs(m, outs);
        if (total <= 0)
            mc_set_error(m, "the global batch at step %lld is empty", (long long)m->step + 1);
        else
            bad_loss(m, *loss, st + 2 + nm);
        return false;
    }
    if (!t->overlap) {
        pack(m, outs, n > 0, (double)n / total);
        t0 = mc_now_ms();
        summed = comm_sum(m, t->bucket, t->nbucket, t->dt);
        t->reduce_ms += mc_now_ms() - t0;
    }
    free_outs(m, outs);
    if (!summed || !unpack(m) || !run_apply(m, lr))
        return m->d.nerrors ? mc_fail(m) : false;
    for (int i = 0; metrics && i < nm; i++)
        metrics[i] = st[2 + i] / total;
    m->step++;
    return true;
}
