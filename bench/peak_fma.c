/* peak_fma: measures this machine's peak single-precision FMA rate, the
 * ceiling the benchmark's "% of peak" column is relative to.
 *
 * Each thread runs a loop of independent fused multiply-adds on vector
 * registers: 16 accumulators (more than FMA latency x FMA ports needs on
 * any current x86 core), the loop body written out in full so every
 * accumulator stays in a register and nothing but FMAs is in the loop.
 * The widest instruction set the CPU has is used (AVX-512F, else AVX2 +
 * FMA), picked at run time; the result is summed and printed so the
 * compiler cannot drop the work.
 *
 * For each thread count given with -t (default 1 and 2) it prints one JSON
 * line {"isa", "threads", "gflops", "trials"}: the best of the trials
 * (-r, default 5) of a loop lasting about -m milliseconds (default 200)
 * per thread; the best, because a peak is what the hardware reaches when
 * nothing else interferes.
 *
 * Usage: peak_fma [-t 1,2] [-r TRIALS] [-m MS]
 */
#define _POSIX_C_SOURCE 200809L
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

#define NACC 16

#define FMA16(op, a, b)                                                                            \
    a##0 = op(a##0, b, c);                                                                         \
    a##1 = op(a##1, b, c);                                                                         \
    a##2 = op(a##2, b, c);                                                                         \
    a##3 = op(a##3, b, c);                                                                         \
    a##4 = op(a##4, b, c);                                                                         \
    a##5 = op(a##5, b, c);                                                                         \
    a##6 = op(a##6, b, c);                                                                         \
    a##7 = op(a##7, b, c);                                                                         \
    a##8 = op(a##8, b, c);                                                                         \
    a##9 = op(a##9, b, c);                                                                         \
    a##10 = op(a##10, b, c);                                                                       \
    a##11 = op(a##11, b, c);                                                                       \
    a##12 = op(a##12, b, c);                                                                       \
    a##13 = op(a##13, b, c);                                                                       \
    a##14 = op(a##14, b, c);                                                                       \
    a##15 = op(a##15, b, c)

/* distinct starting values, so the compiler cannot merge the chains */
#define DECL16(T, a, set1, s)                                                                      \
    T a##0 = set1(s + 0), a##1 = set1(s + 1), a##2 = set1(s + 2), a##3 = set1(s + 3),               \
      a##4 = set1(s + 4), a##5 = set1(s + 5), a##6 = set1(s + 6), a##7 = set1(s + 7),               \
      a##8 = set1(s + 8), a##9 = set1(s + 9), a##10 = set1(s + 10), a##11 = set1(s + 11),           \
      a##12 = set1(s + 12), a##13 = set1(s + 13), a##14 = set1(s + 14), a##15 = set1(s + 15)

#define SUM16(add, a)                                                                              \
    add(add(add(add(a##0, a##1), add(a##2, a##3)), add(add(a##4, a##5), add(a##6, a##7))),         \
        add(add(add(a##8, a##9), add(a##10, a##11)), add(add(a##12, a##13), add(a##14, a##15))))

/* x = x * b + c with b slightly below 1 keeps the values bounded. */
__attribute__((target("avx512f"))) static float loop_avx512(long iters, float seed)
{
    __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-6f);
    DECL16(__m512, x, _mm512_set1_ps, seed);
    for (long i = 0; i < iters; i++) {
        FMA16(_mm512_fmadd_ps, x, b);
        FMA16(_mm512_fmadd_ps, x, b);
        FMA16(_mm512_fmadd_ps, x, b);
        FMA16(_mm512_fmadd_ps, x, b);
    }
    return _mm512_reduce_add_ps(SUM16(_mm512_add_ps, x));
}

__attribute__((target("avx2,fma"))) static float loop_avx2(long iters, float seed)
{
    __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
    DECL16(__m256, x, _mm256_set1_ps, seed);
    for (long i = 0; i < iters; i++) {
        FMA16(_mm256_fmadd_ps, x, b);
        FMA16(_mm256_fmadd_ps, x, b);
        FMA16(_mm256_fmadd_ps, x, b);
        FMA16(_mm256_fmadd_ps, x, b);
    }
    __m256 s = SUM16(_mm256_add_ps, x);
    float v[8];
    _mm256_storeu_ps(v, s);
    return v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
}

static int lanes;             /* floats per vector */
static float (*kernel)(long, float);
static const char *isa;

/* FLOPs of one iteration: 4 x 16 FMAs of `lanes` floats, 2 FLOPs each. */
static double flops_per_iter(void)
{
    return 4.0 * NACC * lanes * 2.0;
}

typedef struct {
    long iters;
    float out;
    pthread_barrier_t *bar;
} Job;

static void *worker(void *p)
{
    Job *j = p;
    pthread_barrier_wait(j->bar);
    j->out = kernel(j->iters, 1.0f + (float)(j->iters & 7));
    return NULL;
}

/* GFLOP/s of `threads` threads each running `iters` iterations. */
static double run(int threads, long iters, float *sink)
{
    pthread_t tid[64];
    Job job[64];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)threads + 1);
    for (int t = 0; t < threads; t++) {
        job[t] = (Job){iters, 0, &bar};
        if (pthread_create(&tid[t], NULL, worker, &job[t]) != 0) {
            fprintf(stderr, "peak_fma: cannot start thread %d\n", t);
            exit(1);
        }
    }
    double t0 = now_s();
    pthread_barrier_wait(&bar);
    for (int t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        *sink += job[t].out;
    }
    double sec = now_s() - t0;
    pthread_barrier_destroy(&bar);
    return threads * iters * flops_per_iter() / sec / 1e9;
}

int main(int argc, char **argv)
{
    const char *tlist = "1,2";
    int trials = 5;
    double ms = 200;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-t") == 0 && i + 1 < argc)
            tlist = argv[++i];
        else if (strcmp(argv[i], "-r") == 0 && i + 1 < argc)
            trials = atoi(argv[++i]);
        else if (strcmp(argv[i], "-m") == 0 && i + 1 < argc)
            ms = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: peak_fma [-t 1,2] [-r TRIALS] [-m MS]\n");
            return 2;
        }
    }
    if (trials < 1 || ms <= 0) {
        fprintf(stderr, "peak_fma: -r and -m must be positive\n");
        return 2;
    }
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        kernel = loop_avx512, lanes = 16, isa = "avx512f";
    } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        kernel = loop_avx2, lanes = 8, isa = "avx2+fma";
    } else {
        fprintf(stderr, "peak_fma: the CPU has neither AVX-512F nor AVX2+FMA\n");
        return 1;
    }
    float sink = 0;
    /* size the loop: a short calibration run on one thread */
    long iters = 1 << 16;
    double g = 0;
    for (int k = 0; k < 3; k++) {
        double v = run(1, iters, &sink);
        g = v > g ? v : g;
    }
    iters = (long)(g * 1e9 * (ms / 1000.0) / flops_per_iter()) + 1;

    char *list = strdup(tlist);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        int threads = atoi(tok);
        if (threads < 1 || threads > 64) {
            fprintf(stderr, "peak_fma: bad thread count '%s'\n", tok);
            return 2;
        }
        double best = 0;
        for (int r = 0; r < trials; r++) {
            double v = run(threads, iters, &sink);
            if (v > best)
                best = v;
        }
        printf("{\"isa\": \"%s\", \"threads\": %d, \"gflops\": %.2f, \"trials\": %d, "
               "\"ms_per_trial\": %.0f, \"finite\": %s}\n",
               isa, threads, best, trials, ms, sink == sink ? "true" : "false");
        fflush(stdout);
    }
    free(list);
    return 0;
}
