/* Fuzz target: the safetensors reader (header JSON, offsets, dtypes,
 * shapes) on any bytes. */
#include "fuzz.h"
#include "runtime/io/io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Diags d;
    diags_init(&d);
    TensorMap m;
    Metadata meta;
    rt_map_init(&m);
    rt_meta_init(&meta);
    rt_safetensors_read_mem("fuzz.safetensors", data, size, &m, &meta, &d);
    rt_map_free(&m);
    rt_meta_free(&meta);
    diags_free(&d);
    return 0;
}
