/* Runs a function of an object written by `modelc compile`, linked with
 * libmodelc-rt only (the model comes in as -DAOT_HEADER and -DAOT_MODEL):
 *
 *   aot_driver predict N SEED OUTDIR [WEIGHTS]
 *       inputs from aot_data.h written to OUTDIR/inputs.safetensors (for
 *       `modelc predict`), each output to OUTDIR/<name>.bin
 *   aot_driver train_step N STEPS LR OUTDIR [WEIGHTS]
 *       STEPS steps on batches drawn with seeds 1..STEPS; each loss on
 *       stdout, each parameter afterwards to OUTDIR/<name>.bin
 *   aot_driver run FN N [WEIGHTS]
 *       one call; prints the error, exit 1 when it fails
 * AOT_THREADS=T sets the context's threads. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include AOT_HEADER
#include "aot_data.h"

int rt_aot_fn(const struct rt_aot *c, const char *name);
int rt_aot_ninputs(const struct rt_aot *c, int fn);
int rt_aot_noutputs(const struct rt_aot *c, int fn);
const char *rt_aot_input(const struct rt_aot *c, int fn, int i, int *dtype, int *rank, const int64_t **dims);
const char *rt_aot_output(const struct rt_aot *c, int fn, int i, int *dtype, int *rank, const int64_t **dims);
int rt_aot_nparams(const struct rt_aot *c);
const char *rt_aot_param_name(const struct rt_aot *c, int i);

#define MAXT 16

typedef struct T {
    const char *name;
    int dt, rank;
    int64_t dims[8], count;
    void *data;
} T;

static int64_t dsize(int dt)
{
    return dt == 1 ? 8 : 4;
}

static void describe(T *t, const char *name, int dt, int rank, const int64_t *dims, int64_t n)
{
    t->name = name;
    t->dt = dt;
    t->rank = rank;
    t->count = 1;
    for (int k = 0; k < rank; k++) {
        t->dims[k] = dims[k] < 0 ? n : dims[k];
        t->count *= t->dims[k];
    }
    t->data = calloc((size_t)(t->count * dsize(dt)) + 8, 1);
}

static int bad(struct rt_aot *c, const char *what)
{
    fprintf(stderr, "aot_driver: %s: %s\n", what, c ? rt_aot_error(c) : "");
    return 1;
}

static void write_bin(const char *dir, const char *name, const void *data, int64_t bytes)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.bin", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, (size_t)bytes, f) != (size_t)bytes || fclose(f) != 0) {
        fprintf(stderr, "aot_driver: cannot write %s\n", path);
        exit(1);
    }
}

/* The inputs as a safetensors file. */
static void write_safetensors(const char *dir, const T *ts, int n)
{
    static const char *const names[] = {"F32", "F64", "I32"};
    char hdr[4096], path[512];
    int len = snprintf(hdr, sizeof hdr, "{");
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        len += snprintf(hdr + len, sizeof hdr - (size_t)len, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", i ? "," : "",
                        ts[i].name, names[ts[i].dt]);
        for (int k = 0; k < ts[i].rank; k++)
            len += snprintf(hdr + len, sizeof hdr - (size_t)len, "%s%lld", k ? "," : "", (long long)ts[i].dims[k]);
        int64_t bytes = ts[i].count * dsize(ts[i].dt);
        len += snprintf(hdr + len, sizeof hdr - (size_t)len, "],\"data_offsets\":[%lld,%lld]}", (long long)off,
                        (long long)(off + bytes));
        off += bytes;
    }
    len += snprintf(hdr + len, sizeof hdr - (size_t)len, "}");
    snprintf(path, sizeof path, "%s/inputs.safetensors", dir);
    FILE *f = fopen(path, "wb");
    uint64_t hl = (uint64_t)len;
    unsigned char le[8];
    for (int k = 0; k < 8; k++)
        le[k] = (unsigned char)(hl >> (8 * k));
    fwrite(le, 1, 8, f);
    fwrite(hdr, 1, (size_t)len, f);
    for (int i = 0; i < n; i++)
        fwrite(ts[i].data, 1, (size_t)(ts[i].count * dsize(ts[i].dt)), f);
    fclose(f);
}

static int setup(struct rt_aot *c, const char *fname, int64_t n, T *in, int *nin, T *out, int *nout, int *fn)
{
    *fn = rt_aot_fn(c, fname);
    if (*fn < 0)
        return fprintf(stderr, "aot_driver: no function %s\n", fname), 1;
    *nin = rt_aot_ninputs(c, *fn);
    *nout = rt_aot_noutputs(c, *fn);
    for (int i = 0; i < *nin; i++) {
        int dt, rank;
        const int64_t *dims;
        const char *name = rt_aot_input(c, *fn, i, &dt, &rank, &dims);
        describe(&in[i], name, dt, rank, dims, n);
    }
    for (int i = 0; i < *nout; i++) {
        int dt, rank;
        const int64_t *dims;
        const char *name = rt_aot_output(c, *fn, i, &dt, &rank, &dims);
        describe(&out[i], name, dt, rank, dims, n);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return fprintf(stderr, "usage: aot_driver predict|train_step|run ...\n"), 2;
    const char *mode = argv[1];
    bool train = strcmp(mode, "train_step") == 0, run = strcmp(mode, "run") == 0;
    int64_t n = atoll(argv[run ? 3 : 2]);
    const char *weights = run ? (argc > 4 ? argv[4] : NULL) : argc > (train ? 6 : 5) ? argv[train ? 6 : 5] : NULL;
    char err[512];
    struct rt_aot *c = rt_aot_new(&AOT_MODEL, weights, err, sizeof err);
    if (!c)
        return fprintf(stderr, "aot_driver: init: %s\n", err), 1;
    const char *threads = getenv("AOT_THREADS"); /* default: one per core */
    if (threads && rt_aot_set_threads(c, atoi(threads)) != 0)
        return bad(c, "threads");
    T in[MAXT], out[MAXT];
    int nin, nout, fn;
    if (setup(c, run ? argv[2] : train ? "train_step" : mode, n, in, &nin, out, &nout, &fn))
        return 1;
    const void *ip[MAXT];
    void *op[MAXT];
    for (int i = 0; i < nin; i++)
        ip[i] = in[i].data;
    for (int i = 0; i < nout; i++)
        op[i] = out[i].data;
    int rc = 0;
    if (run) {
        if (rt_aot_run(c, fn, n, ip, 0.01, op))
            rc = bad(c, argv[2]);
    } else if (!train) {
        for (int i = 0; i < nin; i++)
            aot_fill(in[i].data, in[i].dt, in[i].count, strtoull(argv[3], NULL, 10) * 16 + (uint64_t)i);
        write_safetensors(argv[4], in, nin);
        if (rt_aot_run(c, fn, n, ip, 0, op))
            rc = bad(c, mode);
        for (int i = 0; i < nout && !rc; i++)
            write_bin(argv[4], out[i].name, out[i].data, out[i].count * dsize(out[i].dt));
    } else {
        int steps = atoi(argv[3]);
        double lr = atof(argv[4]);
        for (int s = 1; s <= steps && !rc; s++) {
            for (int i = 0; i < nin; i++)
                aot_fill(in[i].data, in[i].dt, in[i].count, (uint64_t)s * 16 + (uint64_t)i);
            if (rt_aot_run(c, fn, n, ip, lr, op)) {
                rc = bad(c, "train_step");
                break;
            }
            for (int i = 0; i < nout; i++)
                if (out[i].count == 1)
                    printf("%s %.9g\n", out[i].name, out[i].dt == 1 ? *(double *)out[i].data : *(float *)out[i].data);
        }
        for (int i = 0; i < rt_aot_nparams(c) && !rc; i++) {
            int dt;
            int64_t count;
            const char *name = rt_aot_param_name(c, i);
            void *p = rt_aot_param(c, name, &dt, &count);
            write_bin(argv[5], name, p, count * dsize(dt));
        }
    }
    for (int i = 0; i < nin; i++)
        free(in[i].data);
    for (int i = 0; i < nout; i++)
        free(out[i].data);
    rt_aot_free(c);
    return rc;
}
