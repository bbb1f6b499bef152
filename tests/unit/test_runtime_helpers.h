/* Helpers for the runtime's unit tests: temporary directories, writing
 * test files (plain or gzip), and reading back printed diagnostics. */
#ifndef MODELC_TEST_RUNTIME_HELPERS_H
#define MODELC_TEST_RUNTIME_HELPERS_H


#include <check.h>
#include <dirent.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "ir/base/base.h"

#define TH_UNUSED __attribute__((unused))

static TH_UNUSED char *th_tmpdir(void)
{
    char *t = xstrdup("/tmp/modelc-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(t));
    return t;
}

static void th_rm_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        chmod(path, 0755);
        DIR *dp = opendir(path);
        struct dirent *e;
        while (dp && (e = readdir(dp))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            size_t n = strlen(path) + strlen(e->d_name) + 2;
            char *sub = xmalloc(n);
            snprintf(sub, n, "%s/%s", path, e->d_name);
            th_rm_tree(sub);
            free(sub);
        }
        if (dp)
            closedir(dp);
    }
    remove(path);
}

/* Remove a temporary directory tree and free its name. */
static TH_UNUSED void th_rm_rf(char *dir)
{
    th_rm_tree(dir);
    free(dir);
}

/* dir/name in a malloc'd string. */
static TH_UNUSED char *th_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static TH_UNUSED void th_write(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
    fclose(f);
}

static TH_UNUSED void th_write_gz(const char *path, const void *buf, size_t len)
{
    gzFile f = gzopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(gzwrite(f, buf, (unsigned)len), (int)len);
    gzclose(f);
}

/* Everything diags_print would show, in a malloc'd string. */
static TH_UNUSED char *th_diag_text(Diags *d)
{
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    diags_print(d, f);
    fclose(f);
    return s;
}

/* Assert the printed diagnostics contain `want`, then clear them. */
static TH_UNUSED void th_expect_diag_at(Diags *d, const char *want, int line)
{
    char *txt = th_diag_text(d);
    bool found = txt && strstr(txt, want) != NULL;
    if (!found)
        fprintf(stderr, "line %d: expected diagnostic containing:\n  %s\ngot:\n  %s\n", line,
                want, txt ? txt : "(nothing)");
    free(txt);
    diags_free(d);
    diags_init(d);
    ck_assert_msg(found, "missing diagnostic (line %d)", line);
}
#define th_expect_diag(d, want) th_expect_diag_at(d, want, __LINE__)

#endif
