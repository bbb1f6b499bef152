/* The modelc command-line driver: dispatches to one function per
 * subcommand (tools/cmd_<name>.c). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "modelc.h"

#define CMD(name, summary) int cmd_##name(int argc, char **argv) __attribute__((weak));
#include "commands.def"
#undef CMD

typedef struct {
    const char *name;
    const char *summary;
    int (*run)(int, char **);
} Command;

static const Command commands[] = {
#define CMD(name, summary) {#name, summary, cmd_##name},
#include "commands.def"
#undef CMD
};

/* A command's name as typed: its function's, with '-' for '_'
 * (convert_weights is `modelc convert-weights`). */
static const char *shown(const char *name)
{
    static char buf[64];
    snprintf(buf, sizeof buf, "%s", name);
    for (char *p = buf; *p; p++)
        if (*p == '_')
            *p = '-';
    return buf;
}

static void usage(FILE *f)
{
    fputs("usage: modelc COMMAND [options] [args]\n\n"
          "A compiler and trainer for small neural-network model files (*.mdl).\n\n"
          "commands:\n",
          f);
    int w = 0;
    for (int i = 0; i < ARRAY_LEN(commands); i++)
        if (commands[i].run && (int)strlen(commands[i].name) > w)
            w = (int)strlen(commands[i].name);
    for (int i = 0; i < ARRAY_LEN(commands); i++)
        if (commands[i].run)
            fprintf(f, "  %-*s %s\n", w, shown(commands[i].name), commands[i].summary);
    fputs("\nRun 'modelc COMMAND --help' or 'modelc help COMMAND' for a command's options.\n"
          "  --version  print the version\n",
          f);
}

static const Command *find_command(const char *name)
{
    for (int i = 0; i < ARRAY_LEN(commands); i++)
        if (strcmp(shown(commands[i].name), name) == 0)
            return &commands[i];
    return NULL;
}

/* "unknown command 'trian'; did you mean 'train'?" and the usage. */
static int unknown_command(const char *name)
{
    const char *names[ARRAY_LEN(commands) + 1];
    char typed[ARRAY_LEN(commands)][64];
    int n = 0;
    for (int i = 0; i < ARRAY_LEN(commands); i++)
        if (commands[i].run) {
            snprintf(typed[n], sizeof typed[n], "%s", shown(commands[i].name));
            names[n] = typed[n];
            n++;
        }
    names[n++] = "help";
    const char *hint = cli_closest(name, names, n);
    if (hint)
        fprintf(stderr, "modelc: unknown command '%s'; did you mean '%s'?\n", name, hint);
    else
        fprintf(stderr, "modelc: unknown command '%s'\n", name);
    usage(stderr);
    return 2;
}

static int run(const Command *c, int argc, char **argv)
{
    if (!c->run) {
        fprintf(stderr, "modelc: command '%s' is not available in this build\n", shown(c->name));
        return 2;
    }
    return c->run(argc, argv);
}

/* `modelc help [COMMAND]`: the usage, or the command's --help. */
static int help(int argc, char **argv)
{
    if (argc < 2) {
        usage(stdout);
        return 0;
    }
    if (argc > 2) {
        fprintf(stderr, "modelc help: give one command (usage: modelc help [COMMAND])\n");
        return 2;
    }
    const Command *c = find_command(argv[1]);
    if (!c)
        return unknown_command(argv[1]);
    char *args[] = {argv[1], "--help", NULL};
    return run(c, 2, args);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *c = argv[1];
    if (strcmp(c, "help") == 0)
        return help(argc - 1, argv + 1);
    if (strcmp(c, "--help") == 0 || strcmp(c, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(c, "--version") == 0) {
        printf("modelc %s\nBLAS: %s\n", MODELC_VERSION, mc_blas_info());
        return 0;
    }
    const Command *cmd = find_command(c);
    return cmd ? run(cmd, argc - 1, argv + 1) : unknown_command(c);
}
