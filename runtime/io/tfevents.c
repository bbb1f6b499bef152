/* TensorBoard event files: DIR/events.out.tfevents.<time>.<host>.<pid>,
 * a sequence of TFRecords (uint64 length, masked CRC32C of the length,
 * the data, masked CRC32C of the data), each an Event message
 * (runtime/io/tfevents.proto, encoded by the code protoc-c generates from
 * it). The first record carries file_version "brain.Event:2", every
 * other one a Summary with one scalar or histogram. Records are kept in
 * memory and written at rt_events_flush. This file and the generated one
 * are the only ones outside frontend/onnx/ that see protobuf-c. */
#include "runtime/io/io.h"
#include "runtime/io/rtio.h"
#include "tfevents.pb-c.h"

#include <errno.h>
#include <float.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct RtEvents {
    char *path;
    FILE *f;
    unsigned char *buf; /* records not yet written */
    size_t len, cap;
};

/* ---- CRC32C (Castagnoli, reflected polynomial 0x82F63B78) ---- */

uint32_t rt_crc32c(uint32_t crc, const void *p, size_t n)
{
    const unsigned char *s = p;
    crc = ~crc;
    while (n--) {
        crc ^= *s++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
    }
    return ~crc;
}

uint32_t rt_crc32c_mask(uint32_t crc)
{
    return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

/* ---- records ---- */

static void put_bytes(RtEvents *e, const void *p, size_t n)
{
    if (e->len + n > e->cap) {
        e->cap = e->cap ? 2 * e->cap : 4096;
        while (e->cap < e->len + n)
            e->cap *= 2;
        e->buf = xrealloc(e->buf, e->cap);
    }
    memcpy(e->buf + e->len, p, n);
    e->len += n;
}

static void put_le(RtEvents *e, uint64_t v, int bytes)
{
    unsigned char b[8];
    for (int i = 0; i < bytes; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    put_bytes(e, b, (size_t)bytes);
}

static void put_record(RtEvents *e, const unsigned char *data, size_t n)
{
    unsigned char len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (unsigned char)((uint64_t)n >> (8 * i));
    put_bytes(e, len, 8);
    put_le(e, rt_crc32c_mask(rt_crc32c(0, len, 8)), 4);
    put_bytes(e, data, n);
    put_le(e, rt_crc32c_mask(rt_crc32c(0, data, n)), 4);
}

static double wall_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void put_event(RtEvents *e, Tfevents__Event *ev)
{
    ev->has_wall_time = true;
    ev->wall_time = wall_time();
    size_t n = tfevents__event__get_packed_size(ev);
    unsigned char *data = xmalloc(n ? n : 1);
    tfevents__event__pack(ev, data);
    put_record(e, data, n);
    xfree(data);
}

static void put_summary(RtEvents *e, int64_t step, Tfevents__Summary__Value *v)
{
    Tfevents__Summary s = TFEVENTS__SUMMARY__INIT;
    Tfevents__Summary__Value *vs[1] = {v};
    s.n_value = 1;
    s.value = vs;
    Tfevents__Event ev = TFEVENTS__EVENT__INIT;
    ev.has_step = true;
    ev.step = step;
    ev.what_case = TFEVENTS__EVENT__WHAT_SUMMARY;
    ev.summary = &s;
    put_event(e, &ev);
}

void rt_events_scalar(RtEvents *e, const char *tag, int64_t step, double value)
{
    Tfevents__Summary__Value v = TFEVENTS__SUMMARY__VALUE__INIT;
    v.tag = (char *)tag;
    v.value_case = TFEVENTS__SUMMARY__VALUE__VALUE_SIMPLE_VALUE;
    v.simple_value = (float)value;
    put_summary(e, step, &v);
}

/* ---- histograms ---- */

/* TensorBoard's bucket limits: 1e-12 growing by 10% up to 1e20, then
 * DBL_MAX, mirrored for negative values around a bucket ending at 0.
 * Returns the count; lim has room for RT_HISTO_LIMITS. */
#define RT_HISTO_LIMITS 1600
static int bucket_limits(double *lim)
{
    double pos[RT_HISTO_LIMITS / 2];
    int np = 0;
    for (double v = 1e-12; v < 1e20; v *= 1.1)
        pos[np++] = v;
    pos[np++] = DBL_MAX;
    int n = 0;
    for (int i = np - 1; i >= 0; i--)
        lim[n++] = -pos[i];
    lim[n++] = 0;
    for (int i = 0; i < np; i++)
        lim[n++] = pos[i];
    return n;
}

/* The bucket of x: the first whose limit is above x. */
static int bucket_of(const double *lim, int n, double x)
{
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (lim[mid] > x)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

void rt_events_histo(RtEvents *e, const char *tag, int64_t step, const RtHisto *h)
{
    double lim[RT_HISTO_LIMITS], cnt[RT_HISTO_LIMITS] = {0};
    int nl = bucket_limits(lim);
    double w = h->nsamples ? h->count / (double)h->nsamples : 0;
    for (int i = 0; i < h->nsamples; i++)
        cnt[bucket_of(lim, nl, h->samples[i])] += w;
    /* every non-empty bucket; a run of empty ones becomes one bucket */
    double *ol = xmalloc((size_t)nl * sizeof(double)), *oc = xmalloc((size_t)nl * sizeof(double));
    int no = 0;
    for (int i = 0; i < nl;) {
        double end = lim[i], c = cnt[i++];
        if (c <= 0)
            while (i < nl && cnt[i] <= 0)
                end = lim[i++];
        ol[no] = end;
        oc[no++] = c;
    }
    Tfevents__HistogramProto hp = TFEVENTS__HISTOGRAM_PROTO__INIT;
    hp.has_min = hp.has_max = hp.has_num = hp.has_sum = hp.has_sum_squares = true;
    hp.min = h->min;
    hp.max = h->max;
    hp.num = h->count;
    hp.sum = h->sum;
    hp.sum_squares = h->sumsq;
    hp.n_bucket_limit = hp.n_bucket = (size_t)no;
    hp.bucket_limit = ol;
    hp.bucket = oc;
    Tfevents__Summary__Value v = TFEVENTS__SUMMARY__VALUE__INIT;
    v.tag = (char *)tag;
    v.value_case = TFEVENTS__SUMMARY__VALUE__VALUE_HISTO;
    v.histo = &hp;
    put_summary(e, step, &v);
    xfree(ol);
    xfree(oc);
}

/* ---- the file ---- */

RtEvents *rt_events_open(const char *dir, Diags *d)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        diag_error(d, rt_file_loc(d, dir), "cannot create the TensorBoard directory: %s", strerror(errno));
        return NULL;
    }
    char host[256] = "localhost", path[4352];
    if (gethostname(host, sizeof host - 1) != 0 || !host[0])
        strcpy(host, "localhost");
    snprintf(path, sizeof path, "%s/events.out.tfevents.%010lld.%s.%lld", dir, (long long)time(NULL), host,
             (long long)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) {
        diag_error(d, rt_file_loc(d, path), "cannot write: %s", strerror(errno));
        return NULL;
    }
    RtEvents *e = xcalloc(1, sizeof *e);
    e->path = xstrdup(path);
    e->f = f;
    Tfevents__Event ev = TFEVENTS__EVENT__INIT;
    ev.has_step = true;
    ev.what_case = TFEVENTS__EVENT__WHAT_FILE_VERSION;
    ev.file_version = "brain.Event:2";
    put_event(e, &ev);
    if (!rt_events_flush(e, d)) {
        rt_events_close(e, NULL);
        return NULL;
    }
    return e;
}

const char *rt_events_path(const RtEvents *e)
{
    return e->path;
}

bool rt_events_flush(RtEvents *e, Diags *d)
{
    bool ok = fwrite(e->buf, 1, e->len, e->f) == e->len && fflush(e->f) == 0;
    if (!ok && d)
        diag_error(d, rt_file_loc(d, e->path), "cannot write: %s", strerror(errno));
    e->len = 0;
    return ok;
}

bool rt_events_close(RtEvents *e, Diags *d)
{
    if (!e)
        return true;
    bool ok = rt_events_flush(e, d);
    if (fclose(e->f) != 0 && ok) {
        ok = false;
        if (d)
            diag_error(d, rt_file_loc(d, e->path), "cannot write: %s", strerror(errno));
    }
    xfree(e->buf);
    xfree(e->path);
    xfree(e);
    return ok;
}
