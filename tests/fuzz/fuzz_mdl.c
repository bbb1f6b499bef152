/* Fuzz target: the model-file front end (lexer, parser, lowering, shape
 * inference) on any bytes. */
#include "frontend/frontend.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Diags d;
    diags_init(&d);
    Graph *g = fe_compile("fuzz.mdl", (const char *)data, size, &d);
    ir_graph_free(g);
    diags_free(&d);
    return 0;
}
