/* Inference throughput of one model's predict function for bench/aot.sh:
 * batches of B random images [B, 28, 28, 1] for about SECONDS after one
 * warm-up call; prints "samples/s: X".
 *   built with -DAOT_HEADER=... -DAOT_MODEL=...: the object written by
 *       `modelc compile`, linked with libmodelc-rt only
 *   built with -DJIT: the JIT through the C API (mc_predict), libmodelc
 * usage: aot_bench MODEL.mdl B SECONDS */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifdef JIT
#include <modelc.h>
#else
#include AOT_HEADER
#endif

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return fprintf(stderr, "usage: aot_bench MODEL.mdl B SECONDS\n"), 2;
    long b = atol(argv[2]);
    double secs = atof(argv[3]);
    float *x = malloc((size_t)b * 784 * sizeof(float)), *y = malloc((size_t)b * 64 * sizeof(float));
    for (long i = 0; i < b * 784; i++)
        x[i] = (float)(i % 255) / 255.0f;
#ifdef JIT
    mc_model *m = mc_compile(argv[1], NULL);
    if (!m)
        return fprintf(stderr, "%s", mc_last_error(NULL)), 1;
    mc_init_params(m, 1);
    const int64_t dims[4] = {b, 28, 28, 1};
    mc_tensor in = {"x", 0, 4, dims, x};
    const mc_tensor *outs;
    int nouts;
#define RUN() mc_predict(m, &in, 1, &outs, &nouts)
#else
    char err[256];
    struct rt_aot *m = rt_aot_new(&AOT_MODEL, NULL, err, sizeof err);
    if (!m)
        return fprintf(stderr, "%s: %s\n", argv[1], err), 1;
    const void *ins[1] = {x};
    void *outs[1] = {y};
#define RUN() (rt_aot_run(m, 0, b, ins, 0.0, outs) == 0)
#endif
    if (!RUN())
        return fprintf(stderr, "aot_bench: the first call failed\n"), 1;
    long calls = 0;
    double t0 = now(), t;
    do {
        RUN();
        calls++;
    } while ((t = now()) - t0 < secs);
    printf("samples/s: %.1f\n", (double)calls * (double)b / (t - t0));
    return 0;
}
