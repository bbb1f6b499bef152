/* Option parsing and help for the subcommands. */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "modelc %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'modelc %s --help'.\n", cmd);
    return 2;
}

void cli_help(const CliCmd *c, FILE *f)
{
    fprintf(f, "usage: modelc %s %s\n\n%s\n", c->name, c->usage, c->summary);
    if (c->nopts)
        fputs("\noptions:\n", f);
    for (int i = 0; i < c->nopts; i++) {
        const CliOpt *o = &c->opts[i];
        char left[64];
        if (o->metavar)
            snprintf(left, sizeof left, "--%s %s", o->name, o->metavar);
        else
            snprintf(left, sizeof left, "--%s", o->name);
        fprintf(f, "  %-28s %s\n", left, o->help);
    }
    fputs("  --help                       show this help\n", f);
}

static int set_value(const CliCmd *c, const CliOpt *o, const char *v)
{
    char *end;
    errno = 0;
    switch (o->type) {
    case CLI_STR:
        *(const char **)o->dst = v;
        return 0;
    case CLI_MULTI: {
        CliList *l = o->dst;
        if (l->n == ARRAY_LEN(l->v))
            return cli_usage_error(c->name, "too many --%s options", o->name);
        l->v[l->n++] = v;
        return 0;
    }
    case CLI_INT: {
        long x = strtol(v, &end, 10);
        if (!*v || *end || errno || x < -2147483647L || x > 2147483647L)
            return cli_usage_error(c->name, "--%s expects an integer, got '%s'", o->name, v);
        *(int *)o->dst = (int)x;
        return 0;
    }
    case CLI_U64: {
        unsigned long long x = strtoull(v, &end, 10);
        if (!*v || *end || errno || *v == '-')
            return cli_usage_error(c->name, "--%s expects a non-negative integer, got '%s'",
                                   o->name, v);
        *(uint64_t *)o->dst = x;
        return 0;
    }
    case CLI_DOUBLE: {
        double x = strtod(v, &end);
        if (!*v || *end || errno)
            return cli_usage_error(c->name, "--%s expects a number, got '%s'", o->name, v);
        *(double *)o->dst = x;
        return 0;
    }
    case CLI_FLAG:
        break;
    }
    abort(); /* flags take no value */
}

/* Levenshtein distance of a and b (99 when either is long). */
static int edit_distance(const char *a, const char *b)
{
    int n = (int)strlen(a), m = (int)strlen(b);
    if (n > 64 || m > 64)
        return 99;
    int prev[65], cur[65];
    for (int j = 0; j <= m; j++)
        prev[j] = j;
    for (int i = 1; i <= n; i++) {
        cur[0] = i;
        for (int j = 1; j <= m; j++) {
            int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            int del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof(int) * (size_t)(m + 1));
    }
    return prev[m];
}

const char *cli_closest(const char *s, const char *const *cands, int n)
{
    const char *best = NULL;
    int bd = 3, limit = strlen(s) <= 3 ? 1 : 2;
    for (int i = 0; i < n; i++) {
        int dist = edit_distance(s, cands[i]);
        if (dist <= limit && dist < bd) {
            bd = dist;
            best = cands[i];
        }
    }
    return best;
}

/* "unknown option '--nowarn'; did you mean '--no-warn'?" for argument
 * arg, whose name (without dashes or value) is name[0..len). */
static int unknown_option(const CliCmd *c, const char *arg, const char *name, size_t len)
{
    char want[64];
    snprintf(want, sizeof want, "%.*s", (int)len, name);
    const char *names[128];
    int n = 0;
    for (int k = 0; k < c->nopts && n < ARRAY_LEN(names) - 1; k++)
        names[n++] = c->opts[k].name;
    names[n++] = "help";
    const char *hint = cli_closest(want, names, n); /* also -name for --name */
    int shown = (int)(name - arg) + (int)len;
    if (hint)
        return cli_usage_error(c->name, "unknown option '%.*s'; did you mean '--%s'?", shown, arg, hint);
    return cli_usage_error(c->name, "unknown option '%.*s'", shown, arg);
}

int cli_parse(const CliCmd *c, int argc, char **argv, char ***pos, int *npos)
{
    char **p = malloc((size_t)argc * sizeof(char *));
    if (!p)
        return cli_usage_error(c->name, "out of memory");
    int np = 0;
    bool only_pos = false;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == 0) {
            p[np++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            cli_help(c, stdout);
            free(p);
            return -1;
        }
        if (a[1] != '-') {
            free(p);
            return unknown_option(c, a, a + 1, strlen(a + 1));
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const CliOpt *o = NULL;
        for (int k = 0; k < c->nopts; k++)
            if (strlen(c->opts[k].name) == len && strncmp(c->opts[k].name, name, len) == 0)
                o = &c->opts[k];
        if (!o) {
            free(p);
            return unknown_option(c, a, name, len);
        }
        if (o->given)
            *o->given = true;
        if (o->type == CLI_FLAG) {
            if (eq) {
                free(p);
                return cli_usage_error(c->name, "--%s takes no value", o->name);
            }
            *(bool *)o->dst = true;
            continue;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v) {
            if (i + 1 >= argc) {
                free(p);
                return cli_usage_error(c->name, "--%s needs a value", o->name);
            }
            v = argv[++i];
        }
        int rc = set_value(c, o, v);
        if (rc) {
            free(p);
            return rc;
        }
    }
    if (np < c->min_pos || (c->max_pos >= 0 && np > c->max_pos)) {
        free(p);
        if (np < c->min_pos)
            return cli_usage_error(c->name, "missing argument (usage: modelc %s %s)", c->name,
                                   c->usage);
        return cli_usage_error(c->name, "too many arguments (usage: modelc %s %s)", c->name,
                               c->usage);
    }
    *pos = p;
    *npos = np;
    return 0;
}

int cli_find(const char *const *names, const char *name)
{
    for (int i = 0; names[i]; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

int cli_unknown_name(const char *cmd, const char *what, const char *name, const char *opt,
                     const char *const *names)
{
    char list[1024] = "";
    size_t len = 0;
    for (int i = 0; names[i] && len < sizeof list; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", names[i]);
    size_t n = strlen(what);
    const char *plural = n && what[n - 1] == 's' ? "es" : "s";
    return cli_usage_error(cmd, "unknown %s '%s' for %s (valid %s%s: %s)", what, name, opt, what, plural, list);
}

static int cannot_write(const char *opt, const char *path, const char *why)
{
    fprintf(stderr, "%s: error: cannot write: %s (%s)\n", path, why, opt);
    return 1;
}

/* The directory holding path (at most n bytes). */
static void parent_dir(const char *path, char *dir, size_t n)
{
    size_t len = strlen(path) < n - 1 ? strlen(path) : n - 1; /* cut to fit */
    memcpy(dir, path, len);
    dir[len] = 0;
    while (len > 1 && dir[len - 1] == '/')
        dir[--len] = 0;
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, n, ".");
    else if (slash == dir)
        dir[1] = 0;
    else
        *slash = 0;
}

/* An existing directory in which files can be made. */
static int check_dir(const char *opt, const char *path, const char *dir)
{
    struct stat st;
    char why[4200];
    if (stat(dir, &st) != 0)
        snprintf(why, sizeof why, "the directory '%s' does not exist", dir);
    else if (!S_ISDIR(st.st_mode))
        snprintf(why, sizeof why, "'%s' is not a directory", dir);
    else if (access(dir, W_OK | X_OK) != 0)
        snprintf(why, sizeof why, "no permission to write in '%s'", dir);
    else
        return 0;
    return cannot_write(opt, path, why);
}

int cli_check_output_file(const char *opt, const char *path)
{
    struct stat st;
    char dir[4096];
    if (!*path)
        return cannot_write(opt, path, "the name is empty");
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return cannot_write(opt, path, "it is a directory");
        if (access(path, W_OK) != 0)
            return cannot_write(opt, path, strerror(errno));
        if (!S_ISREG(st.st_mode)) /* a device or a pipe is written in place */
            return 0;
    }
    parent_dir(path, dir, sizeof dir);
    return check_dir(opt, path, dir);
}

int cli_check_output_dir(const char *opt, const char *path)
{
    struct stat st;
    char dir[4096];
    if (!*path)
        return cannot_write(opt, path, "the name is empty");
    if (stat(path, &st) == 0)
        return check_dir(opt, path, path);
    parent_dir(path, dir, sizeof dir);
    return check_dir(opt, path, dir);
}

int cli_check_dump_dir(const char *opt, const char *dir, const char *fn)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.ir", dir, fn);
    return cli_check_output_file(opt, path);
}

double cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* From /proc/self/stat's start time: the kernel started the process
 * then, so exec and shared-library loading are included. */
double cli_since_start_ms(void)
{
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return -1;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long long start = 0;
    /* fields after the command: state(3) ... starttime(22) */
    int field = 2;
    for (char *q = p + 1; *q && field < 22; q++)
        if (*q == ' ') {
            field++;
            if (field == 22)
                start = strtoull(q + 1, NULL, 10);
        }
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    double now = (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
    return now - (double)start * 1e3 / (double)sysconf(_SC_CLK_TCK);
}

char **cli_expand_output(int argc, char **argv)
{
    char **v = malloc((size_t)(argc + 1) * sizeof(char *));
    if (!v)
        abort();
    for (int i = 0; i < argc; i++)
        v[i] = strcmp(argv[i], "-o") == 0 ? "--output" : argv[i];
    v[argc] = NULL;
    return v;
}

int cli_parse_output(const CliCmd *c, int argc, char **argv, const char **file, const char **output,
                     const char *what_out)
{
    char **av = cli_expand_output(argc, argv), **pos;
    int npos;
    int rc = cli_parse(c, argc, av, &pos, &npos);
    free(av);
    if (rc)
        return rc < 0 ? -1 : rc;
    *file = pos[0];
    free(pos);
    if (!*output)
        return cli_usage_error(c->name, "missing the output file (-o %s)", what_out);
    return 0;
}

int cli_precision(const char *cmd, const char *arg, mc_precision *out)
{
    *out = MC_PRECISION_F32;
    if (!arg || strcmp(arg, "f32") == 0)
        return 0;
    if (strcmp(arg, "bf16") == 0) {
        *out = MC_PRECISION_BF16;
        return 0;
    }
    return cli_usage_error(cmd, "--precision must be f32 or bf16, got '%s'", arg);
}
