/* gemm_floor: times OpenBLAS cblas_sgemm (row-major) for the shapes given
 * on stdin, one per line:
 *
 *     LABEL M N K TRANSA TRANSB
 *
 * (TRANSA/TRANSB 0 or 1; '#' starts a comment).  For each shape it prints
 * one JSON line {"label", "m", "n", "k", "ta", "tb", "ms", "gflops"}
 * where ms is the median over several timed batches of the mean time of
 * one call; a final line {"total_ms": ...} sums them.  This is the time
 * the GEMMs of one training step take at the speed OpenBLAS reaches for
 * exactly those shapes: the floor a GEMM-based step cannot beat.
 *
 * Usage: gemm_floor [-t THREADS] [-b BATCHES] [-m MIN_BATCH_MS] < shapes
 */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void openblas_set_num_threads(int);

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static float *random_matrix(size_t n, unsigned *seed)
{
    float *p = malloc(n * sizeof *p);
    if (!p) {
        fprintf(stderr, "gemm_floor: out of memory (%zu floats)\n", n);
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        p[i] = (float)(*seed >> 8) / 16777216.0f - 0.5f;
    }
    return p;
}

/* Median over `batches` batches of the mean ms of one call, each batch
 * running enough calls to last at least min_ms. */
static double time_shape(int m, int n, int k, int ta, int tb, int batches, double min_ms)
{
    unsigned seed = 12345;
    float *a = random_matrix((size_t)m * k, &seed);
    float *b = random_matrix((size_t)k * n, &seed);
    float *c = random_matrix((size_t)m * n, &seed);
    int lda = ta ? m : k, ldb = tb ? k : n;
    enum CBLAS_TRANSPOSE opa = ta ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE opb = tb ? CblasTrans : CblasNoTrans;

    /* warm-up, and a first estimate of one call */
    double t = now_ms();
    int warm = 0;
    do {
        cblas_sgemm(CblasRowMajor, opa, opb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, n);
        warm++;
    } while (now_ms() - t < min_ms && warm < 1000);
    double one = (now_ms() - t) / warm;
    int calls = one > 0 ? (int)(min_ms / one) + 1 : 1000;

    double *ms = malloc((size_t)batches * sizeof *ms);
    if (!ms)
        exit(1);
    for (int r = 0; r < batches; r++) {
        t = now_ms();
        for (int i = 0; i < calls; i++)
            cblas_sgemm(CblasRowMajor, opa, opb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, n);
        ms[r] = (now_ms() - t) / calls;
    }
    qsort(ms, (size_t)batches, sizeof *ms, cmp_double);
    double med = batches % 2 ? ms[batches / 2] : (ms[batches / 2 - 1] + ms[batches / 2]) / 2;
    free(ms);
    free(a);
    free(b);
    free(c);
    return med;
}

static void usage(void)
{
    fprintf(stderr, "usage: gemm_floor [-t THREADS] [-b BATCHES] [-m MIN_BATCH_MS] < shapes\n"
                    "  each input line: LABEL M N K TRANSA TRANSB\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int threads = 0, batches = 5;
    double min_ms = 20;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "-t"))
            threads = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "-b"))
            batches = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "-m"))
            min_ms = atof(argv[++i]);
        else
            usage();
    }
    if (batches < 1 || min_ms <= 0 || threads < 0)
        usage();
    if (threads > 0)
        openblas_set_num_threads(threads);

    char line[512], label[128];
    double total = 0;
    int lineno = 0;
    while (fgets(line, sizeof line, stdin)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        int m, n, k, ta, tb;
        char extra;
        int got = sscanf(line, "%127s %d %d %d %d %d %c", label, &m, &n, &k, &ta, &tb, &extra);
        if (got <= 0)
            continue;
        if (got != 6 || m < 1 || n < 1 || k < 1 || (ta != 0 && ta != 1) || (tb != 0 && tb != 1)) {
            fprintf(stderr, "gemm_floor: line %d: expected 'LABEL M N K TRANSA TRANSB'\n", lineno);
            return 1;
        }
        double ms = time_shape(m, n, k, ta, tb, batches, min_ms);
        total += ms;
        printf("{\"label\": \"%s\", \"m\": %d, \"n\": %d, \"k\": %d, \"ta\": %d, \"tb\": %d, "
               "\"ms\": %.6f, \"gflops\": %.2f}\n",
               label, m, n, k, ta, tb, ms, 2.0 * m * n * k / (ms * 1e6));
        fflush(stdout);
    }
    printf("{\"total_ms\": %.6f}\n", total);
    return 0;
}
