/* The command line's data options as mc_data_options, and the data
 * thread that loads while the model compiles. */
#include "data_cli.h"

#include <string.h>
#include <sys/resource.h>

void data_options(const DataArgs *a, const mc_options *mo, const char *const *src, int nsrc,
                  const char *split, int stream, mc_data_options *o)
{
    mc_data_options_default(o);
    o->sources = src ? src : a->data.v;
    o->nsources = src ? nsrc : a->data.n;
    o->split = split;
    o->no_scale = a->no_scale;
    o->limit = a->limit;
    o->label_column = a->label_col;
    o->classes = a->classes;
    o->seed = mo->seed;
    o->seed_set = mo->seed_set;
    o->stream = stream;
}

int data_args_check(const char *cmd, const DataArgs *a)
{
    if (a->limit_set && a->limit < 1)
        return cli_usage_error(cmd, "--limit must be at least 1, got %d", a->limit);
    if (a->val_split_set && !(a->val_split >= 0 && a->val_split < 1))
        return cli_usage_error(cmd, "--val-split must be in [0, 1), got %g", a->val_split);
    char msg[200];
    if (a->classes && !mc_data_classes_check(a->classes, msg, sizeof msg))
        return cli_usage_error(cmd, "--data-classes %s", msg);
    return 0;
}

/* The data thread yields to the compile's threads (two on a 2-core
 * machine): Linux's nice value is per thread, so the loading takes the
 * cycles the compile leaves. Should that fail, it runs at the normal
 * priority. */
static void *bg_thread(void *p)
{
    DataBg *l = p;
    (void)setpriority(PRIO_PROCESS, 0, 10);
    l->rc = l->fn(l->ctx);
    return NULL;
}

void data_bg_start(DataBg *l, int (*fn)(void *ctx), void *ctx)
{
    memset(l, 0, sizeof *l);
    l->fn = fn;
    l->ctx = ctx;
    l->started = pthread_create(&l->th, NULL, bg_thread, l) == 0;
    if (!l->started)
        l->rc = fn(ctx);
}

int data_bg_wait(DataBg *l)
{
    if (l->started)
        pthread_join(l->th, NULL);
    l->started = false;
    return l->rc;
}
