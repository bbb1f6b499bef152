/* Command-line helpers shared by the subcommands: option parsing with
 * usage errors (exit 2) and help text. The commands reach the library
 * through its public headers only (include/modelc.h, modelc_inspect.h). */
#ifndef MODELC_CLI_H
#define MODELC_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "modelc.h"

#define ARRAY_LEN(a) ((int)(sizeof(a) / sizeof((a)[0])))

typedef enum { CLI_FLAG, CLI_STR, CLI_INT, CLI_DOUBLE, CLI_U64, CLI_MULTI } CliType;

typedef struct CliOpt {
    const char *name;    /* without the leading "--" */
    CliType type;
    void *dst;           /* bool*, const char**, int*, double*, uint64_t*, CliList* */
    const char *metavar; /* for help; NULL for flags */
    const char *help;
    bool *given;         /* set when the option is on the command line (may be NULL) */
} CliOpt;

typedef struct CliList {
    int n;
    const char *v[64];
} CliList;

typedef struct CliCmd {
    const char *name;
    const char *usage;   /* "FILE... [options]" */
    const char *summary;
    const CliOpt *opts;
    int nopts;
    int min_pos, max_pos; /* positional argument counts; max -1 = any */
} CliCmd;

/* Parse argv (argv[0] is the command name). Returns 0 on success with the
 * positional arguments in pos/npos (pointers into argv); 2 after printing
 * a usage error; -1 after printing help (caller exits 0). Options may be
 * given as --name=value or --name value. */
int cli_parse(const CliCmd *c, int argc, char **argv, char ***pos, int *npos);
void cli_help(const CliCmd *c, FILE *f);
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* --precision f32|bf16 (NULL: f32) into *out; else a usage error (2). */
int cli_precision(const char *cmd, const char *arg, mc_precision *out);
#define CLI_PRECISION_HELP                                                                                   \
    "f32 (default) or bf16: dense layers' and im2col convolutions' GEMMs on bf16 operands, summed in f32 " \
    "(AMX or AVX512-BF16; parameters stay f32)"

/* The candidate closest to s by edit distance (at most 1 for names of up
 * to 3 characters, else 2), for "did you mean"; NULL when none is. */
const char *cli_closest(const char *s, const char *const *cands, int n);

/* The index of name in a NULL-terminated list, or -1. */
int cli_find(const char *const *names, const char *name);
/* The usage error for an unknown name of a list given to an option:
 * "unknown pass 'x' for --after (valid passes: lower, verify, ...)". */
int cli_unknown_name(const char *cmd, const char *what, const char *name, const char *opt,
                     const char *const *names);

/* A copy of argv (malloc'd, NULL-terminated; the caller frees the array)
 * in which "-o" is spelled "--output" for cli_parse. */
char **cli_expand_output(int argc, char **argv);

/* Parse a command that takes one FILE and "-o"/"--output" (opts has an
 * option "output" writing to *output). Returns 0, -1 after --help, or the
 * usage exit code; a missing output is a usage error naming what_out. */
int cli_parse_output(const CliCmd *c, int argc, char **argv, const char **file, const char **output,
                     const char *what_out);

/* Output paths are checked before any work starts. A file: it can be
 * created or replaced (its directory exists and is writable, and it is
 * not a directory). A directory: it exists and is writable, or it can be
 * made in an existing writable directory. A dump directory: DIR/<fn>.ir
 * can be written. Returns 0, or 1 after printing
 * "PATH: error: cannot write: why (OPT)". */
int cli_check_output_file(const char *opt, const char *path);
int cli_check_output_dir(const char *opt, const char *path);
int cli_check_dump_dir(const char *opt, const char *dir, const char *fn);

/* A monotonic clock in milliseconds. */
double cli_now_ms(void);

/* Milliseconds since the process started (exec included); -1 if unknown. */
double cli_since_start_ms(void);

#endif
