/* CSV data sets, gzip-compressed or plain: an optional header row
 * (auto-detected: a first row with a non-number), one example per row,
 * every field a decimal number, the same field count on every row, one
 * column chosen as the label. Errors point at file:line:column. */
#include "rtio.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CSV_MAX_BYTES ((int64_t)1 << 33)

/* Counts are 64-bit: a file of up to CSV_MAX_BYTES has more lines, fields
 * and columns than an int holds; locations clamp them (rt_loc_int). */
typedef struct CsvField {
    const char *s; /* unquoted text (not NUL-terminated) */
    size_t n;
    int64_t col;   /* 1-based byte column of the field's first character */
} CsvField;

typedef struct CsvRow {
    CsvField *f;
    int64_t n, cap;
    int64_t line;
    int64_t end_col; /* column just past the last character of the line */
} CsvRow;

typedef struct Csv {
    const char *path;
    const char *p, *end;
    int64_t line;
    Diags *d;
    const char *file; /* interned path */
} Csv;

static void csv_err(Csv *c, int64_t line, int64_t col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void csv_err(Csv *c, int64_t line, int64_t col, const char *fmt, ...)
{
    SrcLoc loc = {c->file, rt_loc_int(line), rt_loc_int(col)};
    va_list ap;
    va_start(ap, fmt);
    diag_add(c->d, DIAG_ERROR, loc, 1, fmt, ap);
    va_end(ap);
}

static bool is_blank(const char *s, const char *e)
{
    for (; s < e; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r')
            return false;
    return true;
}

/* Split one line [s, e) into fields; quoted fields may contain commas
 * and doubled quotes. */
static bool split_line(Csv *c, const char *s, const char *e, CsvRow *row)
{
    const char *line0 = s;
    row->n = 0;
    if (e > s && e[-1] == '\r')
        e--;
    row->end_col = (int64_t)(e - line0) + 1;
    for (;;) {
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        CsvField f = {s, 0, (int64_t)(s - line0) + 1};
        if (s < e && *s == '"') {
            const char *q = ++s;
            while (q < e && !(*q == '"' && (q + 1 >= e || q[1] != '"')))
                q += *q == '"' ? 2 : 1;
            if (q >= e) {
                csv_err(c, row->line, f.col, "unterminated quoted field");
                return false;
            }
            f.s = s, f.n = (size_t)(q - s);
            s = q + 1;
            while (s < e && (*s == ' ' || *s == '\t'))
                s++;
            if (s < e && *s != ',') {
                csv_err(c, row->line, (int64_t)(s - line0) + 1, "unexpected text after a quoted field");
                return false;
            }
        } else {
            const char *q = s;
            while (q < e && *q != ',')
                q++;
            const char *t = q;
            while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
                t--;
            f.n = (size_t)(t - s);
            s = q;
        }
        VEC_PUSH(row->f, row->n, row->cap, f);
        if (s >= e)
            return true;
        s++; /* the comma */
    }
}

/* Read the next non-blank line into row; false at the end of the file or
 * after an error (then *err is set). */
static bool next_row(Csv *c, CsvRow *row, bool *err)
{
    while (c->p < c->end) {
        const char *s = c->p, *e = memchr(s, '\n', (size_t)(c->end - s));
        if (!e)
            e = c->end;
        c->p = e < c->end ? e + 1 : e;
        c->line++;
        if (is_blank(s, e))
            continue;
        row->line = c->line;
        if (!split_line(c, s, e, row)) {
            *err = true;
            return false;
        }
        return true;
    }
    return false;
}

/* A decimal number: [+-] digits [. digits] [e [+-] digits], with at least
 * one digit in the mantissa. No hex, inf or nan. */
static bool parse_number(const char *s, size_t n, double *v)
{
    char buf[128];
    size_t i = 0, digits = 0;
    if (n == 0 || n >= sizeof buf)
        return false;
    if (s[i] == '+' || s[i] == '-')
        i++;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    if (i < n && s[i] == '.')
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            digits++;
    if (!digits)
        return false;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t k = ++i;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            k = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == k)
            return false;
    }
    if (i != n)
        return false;
    memcpy(buf, s, n);
    buf[n] = 0;
    *v = strtod(buf, NULL);
    return isfinite(*v);
}

static bool row_is_numeric(const CsvRow *row)
{
    double v;
    for (int64_t i = 0; i < row->n; i++)
        if (!parse_number(row->f[i].s, row->f[i].n, &v))
            return false;
    return true;
}

/* The label column: by header name or by index; -1 for none. */
static bool find_label(Csv *c, const CsvRow *first, bool header, const RtLoadOpts *o, int64_t *label)
{
    *label = -1;
    if (o->csv_label) {
        if (!header) {
            csv_err(c, first->line, 1, "the label column is named '%s', but the file has no "
                                       "header row",
                    o->csv_label);
            return false;
        }
        for (int64_t i = 0; i < first->n; i++)
            if (strlen(o->csv_label) == first->f[i].n &&
                memcmp(o->csv_label, first->f[i].s, first->f[i].n) == 0)
                *label = i;
        if (*label < 0) {
            csv_err(c, first->line, 1, "no column named '%s' in the header", o->csv_label);
            return false;
        }
        return true;
    }
    if (o->csv_label_index >= first->n) {
        csv_err(c, first->line, 1, "label column %d is out of range (the file has %lld columns)",
                o->csv_label_index, (long long)first->n);
        return false;
    }
    *label = o->csv_label_index;
    return true;
}

typedef struct CsvData {
    double *x, *y;
    int64_t nx, capx, ny, capy;
    int64_t rows;
} CsvData;

static bool check_label(Csv *c, const CsvRow *row, const CsvField *f, double v, int classes)
{
    if (classes <= 0)
        return true;
    if (v != floor(v)) {
        csv_err(c, row->line, f->col, "label '%.*s' is not an integer", f->n > 40 ? 40 : (int)f->n, f->s);
        return false;
    }
    if (v < 0 || v >= classes) {
        csv_err(c, row->line, f->col, "label %.0f is out of range (%d classes)", v, classes);
        return false;
    }
    return true;
}

static bool add_row(Csv *c, const CsvRow *row, int64_t nfields, int64_t label, int classes, CsvData *cd)
{
    if (row->n != nfields) {
        int64_t col = row->n < nfields ? row->end_col : row->f[nfields].col;
        csv_err(c, row->line, col, "expected %lld fields, got %lld", (long long)nfields, (long long)row->n);
        return false;
    }
    for (int64_t i = 0; i < row->n; i++) {
        const CsvField *f = &row->f[i];
        double v;
        if (!parse_number(f->s, f->n, &v)) {
            csv_err(c, row->line, f->col, "non-numeric field '%.*s'", f->n > 40 ? 40 : (int)f->n,
                    f->s);
            return false;
        }
        if (i == label) {
            if (!check_label(c, row, f, v, classes))
                return false;
            VEC_PUSH(cd->y, cd->ny, cd->capy, v);
        } else {
            VEC_PUSH(cd->x, cd->nx, cd->capx, v);
        }
    }
    cd->rows++;
    return true;
}

static void build_dataset(const CsvData *cd, int64_t xcols, bool has_label, const RtLoadOpts *o,
                          Dataset *out)
{
    int64_t dims[2] = {cd->rows, xcols};
    Tensor *x = rt_tensor_new(o->dt, 2, dims);
    if (!x)
        ICE("cannot allocate CSV data");
    for (int64_t i = 0; i < cd->nx; i++)
        rt_set(x, i, cd->x[i]);
    rt_dataset_add(out, o->x_name, x);
    if (!has_label)
        return;
    Tensor *y;
    if (o->classes > 0) {
        y = rt_tensor_new(DT_I32, 1, dims);
        for (int64_t i = 0; i < cd->ny; i++)
            rt_set(y, i, cd->y[i]);
        if (o->one_hot) {
            Tensor *h = rt_one_hot(y, o->classes, o->dt);
            rt_tensor_free(y);
            y = h;
        }
    } else {
        int64_t yd[2] = {cd->rows, 1};
        y = rt_tensor_new(o->dt, 2, yd);
        for (int64_t i = 0; i < cd->ny; i++)
            rt_set(y, i, cd->y[i]);
    }
    rt_dataset_add(out, o->y_name, y);
}

static bool parse_csv(Csv *c, const RtLoadOpts *o, Dataset *out)
{
    CsvRow row = {0};
    CsvData cd = {0};
    bool err = false, ok = false, header;
    int64_t label = -1, nfields;
    if (!next_row(c, &row, &err)) {
        if (!err)
            csv_err(c, 0, 0, "the file contains no data");
        goto done;
    }
    header = o->csv_header == 1 || (o->csv_header < 0 && !row_is_numeric(&row));
    nfields = row.n;
    if (!find_label(c, &row, header, o, &label))
        goto done;
    if (!header && !add_row(c, &row, nfields, label, o->classes, &cd))
        goto done;
    while (next_row(c, &row, &err))
        if (!add_row(c, &row, nfields, label, o->classes, &cd))
            goto done;
    if (err)
        goto done;
    if (cd.rows == 0) {
        csv_err(c, 0, 0, "the file contains a header but no data rows");
        goto done;
    }
    build_dataset(&cd, nfields - (label >= 0), label >= 0, o, out);
    ok = true;
done:
    xfree(row.f);
    xfree(cd.x);
    xfree(cd.y);
    return ok;
}

bool rt_load_csv(const char *path, const RtLoadOpts *o, Dataset *out, Diags *d)
{
    rt_dataset_init(out);
    size_t len;
    unsigned char *buf = rt_read_all(path, CSV_MAX_BYTES, &len, d);
    if (!buf)
        return false;
    Csv c = {path, (const char *)buf, (const char *)buf + len, 0, d, diags_intern_file(d, path)};
    if (memchr(buf, 0, len)) {
        csv_err(&c, 0, 0, "the file contains NUL bytes; is it a binary file?");
        xfree(buf);
        return false;
    }
    bool ok = parse_csv(&c, o, out);
    xfree(buf);
    if (!ok)
        rt_dataset_free(out);
    return ok;
}
