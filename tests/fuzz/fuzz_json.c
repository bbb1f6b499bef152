/* Fuzz target: the strict JSON reader on any bytes. */
#include "fuzz.h"
#include "runtime/io/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Arena *a = arena_new();
    JsonError err;
    json_parse(a, (const char *)data, size, 64, &err);
    arena_free(a);
    return 0;
}
