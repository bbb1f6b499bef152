/* Fuzz target: the NPY reader (magic, version, header dict, dtype, shape,
 * data size) on any bytes, as one array and as a data set of examples
 * and labels. */
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
    rt_tensor_free(rt_npy_read(path, &d));
    RtLoadOpts o;
    rt_load_opts_default(&o);
    Dataset ds;
    rt_load_npy(path, path, &o, &ds, &d);
    rt_dataset_free(&ds);
    o.classes = 0;
    o.dt = DT_F64;
    rt_load_npy(path, NULL, &o, &ds, &d);
    rt_dataset_free(&ds);
    diags_free(&d);
    close(fd);
    return 0;
}
