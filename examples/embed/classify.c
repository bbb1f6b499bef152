/* Classify the 10,000 Fashion-MNIST test images with examples/fashion_mlp.mdl
 * compiled ahead of time (`modelc compile`, see the Makefile): no LLVM,
 * only libmodelc-rt. Prints the accuracy, as `modelc eval` does.
 *   usage: classify IMAGES LABELS   (uncompressed IDX files) */
#include <stdio.h>
#include <stdlib.h>

#include "fashion_mlp.h"

#define PIXELS FASHION_MLP_PREDICT_X_PER_EXAMPLE
#define CLASSES FASHION_MLP_PREDICT_PROBS_PER_EXAMPLE

/* An IDX file's bytes after its header of `skip` bytes; *n: their count. */
static unsigned char *read_idx(const char *path, long skip, long *n)
{
    FILE *f = fopen(path, "rb");
    unsigned char *data = NULL;
    if (f && fseek(f, 0, SEEK_END) == 0 && (*n = ftell(f) - skip) > 0 && fseek(f, skip, SEEK_SET) == 0 &&
        (data = malloc((size_t)*n)) && fread(data, 1, (size_t)*n, f) != (size_t)*n) {
        free(data);
        data = NULL;
    }
    if (f)
        fclose(f);
    if (!data)
        fprintf(stderr, "classify: cannot read %s\n", path);
    return data;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: classify IMAGES LABELS\n");
        return 2;
    }
    long nimg, count;
    unsigned char *images = read_idx(argv[1], 16, &nimg), *labels = read_idx(argv[2], 8, &count);
    if (!images || !labels || nimg != count * PIXELS)
        return 1;
    char err[256];
    fashion_mlp_ctx *ctx = fashion_mlp_init(NULL, err, sizeof err); /* the embedded weights */
    if (!ctx) {
        fprintf(stderr, "classify: %s\n", err);
        return 1;
    }
    static float x[FASHION_MLP_BATCH_MAX * PIXELS], probs[FASHION_MLP_BATCH_MAX * CLASSES];
    long correct = 0;
    for (long start = 0; start < count; start += FASHION_MLP_BATCH_MAX) {
        long n = count - start < FASHION_MLP_BATCH_MAX ? count - start : FASHION_MLP_BATCH_MAX;
        for (long i = 0; i < n * PIXELS; i++) /* bytes scaled to [0, 1] as modelc's loaders do */
            x[i] = (float)(images[start * PIXELS + i] * (1.0 / 255.0));
        if (fashion_mlp_predict(ctx, n, x, probs) != 0) {
            fprintf(stderr, "classify: %s\n", fashion_mlp_error(ctx));
            return 1;
        }
        for (long i = 0; i < n; i++) {
            int best = 0;
            for (int c = 1; c < CLASSES; c++)
                if (probs[i * CLASSES + c] > probs[i * CLASSES + best])
                    best = c;
            correct += best == labels[start + i];
        }
    }
    printf("accuracy: %.4f\n", (double)correct / (double)count);
    fashion_mlp_free(ctx);
    free(images);
    free(labels);
    return 0;
}
