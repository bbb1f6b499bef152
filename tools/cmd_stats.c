/* `modelc stats FILE`: forward and backward passes in training mode on a
 * few batches with the reference interpreter, summarised per layer and
 * per parameter; text histograms, a picture, two checkpoints side by
 * side, or JSON (mc_stats). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "data_cli.h"
#include "modelc_inspect.h"

typedef struct StatsArgs {
    DataArgs data;
    CliList fdiff;
    const char *mode;
} StatsArgs;

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int parse(StatsArgs *a, mc_stats_options *o, int argc, char **argv, const char **file)
{
    bool batch_set = false;
    const CliOpt opts[] = {
        {"weights", CLI_STR, &o->weights, "CKPT", "parameters (default: initialise with --seed)", NULL},
        DATA_CLI_OPTS(a->data),
        {"batches", CLI_INT, &o->batches, "K", "number of batches (default 4)", NULL},
        {"batch", CLI_INT, &o->batch, "B", "examples per batch (default: the model's, at most 64)", &batch_set},
        {"seed", CLI_U64, &o->seed, "S", "seed for initial weights and dropout (default: the model's)",
         &o->seed_set},
        {"hist", CLI_FLAG, &o->hist, NULL, "draw text histograms", NULL},
        {"plot", CLI_STR, &o->plot, "OUT", "draw histograms to OUT.svg or OUT.png", NULL},
        {"tensorboard", CLI_STR, &o->tensorboard, "DIR",
         "also write per-layer gradient norms and histograms of weights, gradients and activations as "
         "TensorBoard events into DIR (step 0; the --compare checkpoint's at step 1)", NULL},
        {"compare", CLI_STR, &o->compare, "CKPT2", "compare with a second checkpoint (after)", NULL},
        {"json", CLI_FLAG, &o->json, NULL, "print JSON instead of tables", NULL},
        {"no-warn", CLI_FLAG, &o->no_warn, NULL, "skip the static warnings before the tables", NULL},
        {"numerics", CLI_FLAG, &o->numerics, NULL,
         "instead: evaluate one step on the first batch and report the first op that produces "
         "a NaN or Inf (exit status 1 when one does)", NULL},
        {"forward-diff", CLI_MULTI, &a->fdiff, "FILE2",
         "instead: evaluate FILE and FILE2 (inference mode, each initialised with the same seed) "
         "on the first batch and print the largest difference of each output and the losses "
         "(repeatable)", NULL},
        {"mode", CLI_STR, &a->mode, "MODE",
         "with --numerics: the mode the step runs in, train (default) or infer", NULL},
    };
    const CliCmd cmd = {
        "stats", "FILE [options]",
        "Run forward and backward passes (training mode, interpreter) on K batches and print\n"
        "per-layer and per-parameter statistics: mean, std, min, max and norm of weights,\n"
        "pre-activations, activations and gradients; saturated sigmoid/tanh outputs (within\n"
        "1% of a bound), dead ReLU units (zero for every example), each layer's gradient norm\n"
        "relative to the last layer's, and |grad W|/|W| per parameter. Norms are per batch,\n"
        "root-mean-squared over the batches. The first K*B examples of the training data are\n"
        "used, bound to the model's inputs as by modelc train.",
        opts, ARRAY_LEN(opts), 1, 1};
    char **pos;
    int npos;
    int rc = cli_parse(&cmd, argc, argv, &pos, &npos);
    if (rc)
        return rc < 0 ? -1 : rc;
    *file = pos[0];
    free(pos);
    if (o->batches < 1)
        return cli_usage_error("stats", "--batches must be at least 1, got %d", o->batches);
    if (strcmp(a->mode, "train") != 0 && strcmp(a->mode, "infer") != 0)
        return cli_usage_error("stats", "--mode must be train or infer, got '%s'", a->mode);
    if (o->plot && !ends_with(o->plot, ".svg") && !ends_with(o->plot, ".png"))
        return cli_usage_error("stats", "--plot needs a .svg or .png file name, got '%s'", o->plot);
    if (batch_set && o->batch < 1)
        return cli_usage_error("stats", "--batch must be at least 1, got %d", o->batch);
    return data_args_check("stats", &a->data);
}

int cmd_stats(int argc, char **argv)
{
    StatsArgs a;
    memset(&a, 0, sizeof a);
    a.mode = "train";
    mc_stats_options o;
    mc_stats_options_default(&o);
    const char *file;
    int rc = parse(&a, &o, argc, argv, &file);
    if (rc)
        return rc < 0 ? 0 : rc;
    if ((o.plot && cli_check_output_file("--plot", o.plot)) ||
        (o.tensorboard && cli_check_output_dir("--tensorboard", o.tensorboard)))
        return 1;
    mc_options mo;
    mc_options_default(&mo);
    data_options(&a.data, &mo, NULL, 0, "train", 0, &o.data);
    o.mode = strcmp(a.mode, "infer") == 0 ? MC_MODE_INFER : MC_MODE_TRAIN;
    o.forward_diff = a.fdiff.v;
    o.nforward_diff = a.fdiff.n;
    return mc_stats(file, &o, stdout, stderr);
}
