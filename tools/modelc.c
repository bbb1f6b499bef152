/* The modelc command-line driver: dispatches to one function per
 * subcommand (tools/cmd_<name>.c). */
#include <stdio.h>
#include <string.h>

#include "cli.h"

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

static void usage(FILE *f)
{
    fputs("usage: modelc COMMAND [options] [args]\n\n"
          "A compiler and trainer for small neural-network model files (*.mdl).\n\n"
          "commands:\n",
          f);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (commands[i].run)
            fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fputs("\nRun 'modelc COMMAND --help' for a command's options.\n"
          "  --version  print the version\n",
          f);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *c = argv[1];
    if (strcmp(c, "--help") == 0 || strcmp(c, "-h") == 0 || strcmp(c, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(c, "--version") == 0) {
        printf("modelc %s\n", MODELC_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(commands[i].name, c) == 0) {
            if (!commands[i].run) {
                fprintf(stderr, "modelc: command '%s' is not available in this build\n", c);
                return 2;
            }
            return commands[i].run(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "modelc: unknown command '%s'\n", c);
    usage(stderr);
    return 2;
}
