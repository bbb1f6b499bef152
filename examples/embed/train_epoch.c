/* Train examples/fashion_mlp.mdl for one epoch with its training step
 * compiled ahead of time (no LLVM: libmodelc-rt only), starting from the
 * initial values embedded in the object, then classify the test images
 * with the updated parameters.
 *   usage: train_epoch TRAIN_IMAGES TRAIN_LABELS TEST_IMAGES TEST_LABELS */
#include <stdio.h>
#include <stdlib.h>

#include "mlp_train.h"

#define PIXELS MLP_TRAIN_TRAIN_STEP_X_PER_EXAMPLE
#define CLASSES MLP_TRAIN_PREDICT_PROBS_PER_EXAMPLE
#define B MLP_TRAIN_BATCH_MAX

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
        fprintf(stderr, "train_epoch: cannot read %s\n", path);
    return data;
}

static float x[B * PIXELS], probs[B * CLASSES];
static int32_t y[B];
/* Batch [start, start + n) of images/labels into x and y. */
static void batch(const unsigned char *img, const unsigned char *lab, long start, long n)
{
    for (long i = 0; i < n * PIXELS; i++)
        x[i] = (float)(img[start * PIXELS + i] * (1.0 / 255.0));
    for (long i = 0; i < n; i++)
        y[i] = lab[start + i];
}

int main(int argc, char **argv)
{
    long ni, n, nti, nt;
    if (argc != 5)
        return fprintf(stderr, "usage: train_epoch TRAIN_IMAGES TRAIN_LABELS TEST_IMAGES TEST_LABELS\n"), 2;
    unsigned char *img = read_idx(argv[1], 16, &ni), *lab = read_idx(argv[2], 8, &n);
    unsigned char *timg = read_idx(argv[3], 16, &nti), *tlab = read_idx(argv[4], 8, &nt);
    char err[256];
    mlp_train_ctx *ctx = img && lab && timg && tlab ? mlp_train_init(NULL, err, sizeof err) : NULL;
    if (!ctx)
        return fprintf(stderr, "train_epoch: %s\n", img && lab && timg && tlab ? err : "no data"), 1;
    float loss, acc, sum = 0;
    for (long s = 0; s < n; s += B) { /* one epoch, in order, Adam's learning rate of the model */
        long k = n - s < B ? n - s : B;
        batch(img, lab, s, k);
        if (mlp_train_train_step(ctx, k, x, y, 0.001, &loss, &acc) != 0)
            return fprintf(stderr, "train_epoch: %s\n", mlp_train_error(ctx)), 1;
        sum += loss * (float)k;
    }
    long correct = 0;
    for (long s = 0; s < nt; s += B) {
        long k = nt - s < B ? nt - s : B;
        batch(timg, tlab, s, k);
        if (mlp_train_predict(ctx, k, x, probs) != 0)
            return fprintf(stderr, "train_epoch: %s\n", mlp_train_error(ctx)), 1;
        for (long i = 0; i < k; i++) {
            int best = 0;
            for (int c = 1; c < CLASSES; c++)
                best = probs[i * CLASSES + c] > probs[i * CLASSES + best] ? c : best;
            correct += best == y[i];
        }
    }
    printf("%lld steps - mean loss: %.4f - test accuracy: %.4f\n", (long long)mlp_train_step(ctx), sum / (float)n,
           (double)correct / (double)nt);
    mlp_train_free(ctx);
    free(img), free(lab), free(timg), free(tlab);
    return 0;
}
