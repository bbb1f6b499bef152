/* Passes still under construction are weak symbols here, so the pipeline
 * links and reports them as unavailable instead of failing to build. A
 * real definition in its own file replaces these. */
#include "passes.h"

static bool unavailable(const char *pass, Diags *d)
{
    diag_error(d, (SrcLoc){0}, "the %s pass is not available in this build", pass);
    return false;
}

__attribute__((weak)) bool ps_autodiff(Graph *g, const char **wrt, int nwrt, Diags *d)
{
    return unavailable("autodiff", d);
}

__attribute__((weak)) bool ps_simplify(Graph *g, Diags *d)
{
    (void)g;
    return true; /* simplification is optional: an unsimplified graph is still correct */
}

__attribute__((weak)) bool ps_fuse(Graph *g, Diags *d)
{
    (void)g;
    return true; /* fusion is optional: the unfused graph is still correct */
}
