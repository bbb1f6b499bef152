/* Fuzz target: the CSV reader (header detection, quoting, numbers, label
 * column, ragged rows) on any bytes, with class labels and with a float
 * target. */
#include <unistd.h>

#include "fuzz.h"
#include "runtime/io/io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[32];
    int fd = fuzz_file(data, size, path);
    if (fd < 0)
        return 0;
    Diags d;
    diags_init(&d);
    RtLoadOpts o;
    rt_load_opts_default(&o);
    Dataset ds;
    rt_load_csv(path, &o, &ds, &d);
    rt_dataset_free(&ds);
    o.classes = 0;
    o.csv_header = 1;
    o.csv_label = "label";
    rt_load_csv(path, &o, &ds, &d);
    rt_dataset_free(&ds);
    diags_free(&d);
    close(fd);
    return 0;
}
