/* The JIT's side of tests/e2e/aot_train.sh, on the public C API alone:
 *
 *   jit_train MODEL N STEPS LR OUTDIR INPUT:DTYPE:D1,D2.. ... -- PARAM...
 *
 * initialises the parameters with the model's seed, takes STEPS training
 * steps on the batches aot_driver draws (input i of step s from seed
 * s*16+i, in the order given), prints each step's loss and metrics as
 * aot_driver does, and writes each PARAM afterwards to OUTDIR/<name>.bin. */
#include <modelc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aot_data.h"

#define MAXIN 8

int main(int argc, char **argv)
{
    if (argc < 7)
        return fprintf(stderr, "usage: jit_train MODEL N STEPS LR OUTDIR INPUT:DTYPE:DIMS... -- PARAM...\n"), 2;
    int64_t n = atoll(argv[2]);
    int steps = atoi(argv[3]);
    double lr = atof(argv[4]);
    const char *outdir = argv[5];
    mc_tensor in[MAXIN];
    int64_t dims[MAXIN][8];
    int nin = 0, a = 6;
    for (; a < argc && strcmp(argv[a], "--") != 0 && nin < MAXIN; a++, nin++) {
        char *spec = argv[a], *c1 = strchr(spec, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            return fprintf(stderr, "jit_train: bad input spec %s\n", spec), 2;
        *c1 = *c2 = 0;
        int64_t count = n;
        int rank = 1;
        dims[nin][0] = n;
        for (char *s = c2 + 1; *s; s++) {
            dims[nin][rank] = strtoll(s, &s, 10);
            count *= dims[nin][rank++];
            if (!*s)
                break;
        }
        int dt = atoi(c1 + 1);
        void *data = calloc((size_t)count, dt == 1 ? 8 : 4);
        in[nin] = (mc_tensor){spec, dt, rank, dims[nin], data};
    }
    mc_model *m = mc_compile(argv[1], NULL);
    if (!m)
        return fprintf(stderr, "%s", mc_last_error(NULL)), 1;
    mc_init_params(m, mc_train_defaults(m).seed);
    for (int s = 1; s <= steps; s++) {
        for (int i = 0; i < nin; i++) {
            int64_t count = 1;
            for (int k = 0; k < in[i].rank; k++)
                count *= in[i].dims[k];
            aot_fill(in[i].data, in[i].dtype, count, (uint64_t)s * 16 + (uint64_t)i);
        }
        double loss, metrics[MC_MAX_METRICS];
        if (!mc_train_step_metrics(m, in, nin, lr, &loss, metrics))
            return fprintf(stderr, "jit_train: %s\n", mc_last_error(m)), 1;
        printf("loss %.9g\n", loss);
        for (int i = 0; i < mc_num_metrics(m); i++)
            printf("%s %.9g\n", mc_metric_name(m, i), metrics[i]);
    }
    for (a++; a < argc; a++) {
        mc_tensor t;
        if (!mc_get_param(m, argv[a], &t))
            return fprintf(stderr, "jit_train: %s\n", mc_last_error(m)), 1;
        int64_t count = 1;
        for (int k = 0; k < t.rank; k++)
            count *= t.dims[k];
        char path[512];
        snprintf(path, sizeof path, "%s/%s.bin", outdir, argv[a]);
        FILE *f = fopen(path, "wb");
        size_t bytes = (size_t)count * (t.dtype == 1 ? 8 : 4);
        if (!f || fwrite(t.data, 1, bytes, f) != bytes || fclose(f) != 0)
            return fprintf(stderr, "jit_train: cannot write %s\n", path), 1;
    }
    for (int i = 0; i < nin; i++)
        free(in[i].data);
    mc_free(m);
    return 0;
}
