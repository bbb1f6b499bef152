/* Fuzz target: the IR text parser, and on a graph that parses and
 * verifies, the training step's and the prediction's whole recipes
 * (specialize, autodiff, optimizer, simplify, fuse). */
#include "fuzz.h"
#include "passes/passes.h"

static void recipe(const Graph *g, FnKind fn)
{
    Diags d;
    diags_init(&d);
    RecipeOpts o = ps_recipe_opts(fn);
    ir_graph_free(ps_recipe(g, &o, &d));
    diags_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Diags d;
    diags_init(&d);
    Graph *g = ir_parse("fuzz.ir", (const char *)data, size, &d);
    if (g && ir_verify(g, &d)) {
        recipe(g, FN_TRAIN_STEP);
        recipe(g, FN_PREDICT);
    }
    ir_graph_free(g);
    diags_free(&d);
    return 0;
}
