/* Fuzz target: the IDX reader (magic, dimensions, data size, labels
 * against images) on any bytes: the first byte says where the image file
 * ends and the label file begins. */
#include <unistd.h>

#include "fuzz.h"
#include "runtime/io/io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t cut = 1 + (size - 1) * data[0] / 255;
    char images[32], labels[32];
    int fi = fuzz_file(data + 1, cut - 1, images);
    int fl = fi < 0 ? -1 : fuzz_file(data + cut, size - cut, labels);
    if (fl >= 0) {
        Diags d;
        diags_init(&d);
        RtLoadOpts o;
        rt_load_opts_default(&o);
        Dataset ds;
        rt_load_idx(images, labels, &o, &ds, &d);
        rt_dataset_free(&ds);
        o.limit = 2;
        o.one_hot = true;
        o.scale = false;
        rt_load_idx(images, labels, &o, &ds, &d);
        rt_dataset_free(&ds);
        diags_free(&d);
        close(fl);
    }
    if (fi >= 0)
        close(fi);
    return 0;
}
