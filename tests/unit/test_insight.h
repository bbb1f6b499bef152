/* Helpers shared by the insight tests: compiling a model from text,
 * capturing printed output, and checking pictures (SVG well-formed with
 * counted elements; PNG chunks, CRCs and the inflated image size). */
#ifndef MODELC_TEST_INSIGHT_H
#define MODELC_TEST_INSIGHT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "backend/insight/insight.h"
#include "frontend/frontend.h"
#include "testutil.h"

static inline Graph *ti_compile(const char *name, const char *text, Diags *d)
{
    Graph *g = fe_compile(name, text, strlen(text), d);
    if (!g)
        diags_print(d, stderr);
    ck_assert_ptr_nonnull(g);
    return g;
}

static inline Graph *ti_load(const char *path, Diags *d)
{
    Graph *g = fe_load_file(path, d);
    if (!g)
        diags_print(d, stderr);
    ck_assert_ptr_nonnull(g);
    return g;
}

/* A capture buffer: open, print into .f, then ti_text() closes and gives
 * the text (malloc'd, owned by the capture). */
typedef struct Capture {
    FILE *f;
    char *buf;
    size_t len;
} Capture;

static inline void ti_capture(Capture *c)
{
    c->buf = NULL;
    c->len = 0;
    c->f = open_memstream(&c->buf, &c->len);
    ck_assert_ptr_nonnull(c->f);
}

static inline const char *ti_text(Capture *c)
{
    if (c->f) {
        fclose(c->f);
        c->f = NULL;
    }
    return c->buf ? c->buf : "";
}

static inline void ti_capture_free(Capture *c)
{
    ti_text(c);
    free(c->buf);
    c->buf = NULL;
}

static inline int ti_count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static inline Tensor *ti_tensor(DType dt, int rank, const int64_t *dims, const double *v)
{
    Tensor *t = rt_tensor_new(dt, rank, dims);
    ck_assert_ptr_nonnull(t);
    for (int64_t i = 0; i < t->numel; i++)
        rt_set(t, i, v[i]);
    return t;
}

static inline char *ti_read(const char *path, size_t *len)
{
    char *s = read_file(path, len);
    ck_assert_msg(s != NULL, "cannot read %s", path);
    return s;
}

/* ---- SVG: a small XML well-formedness check ---- */

static inline bool ti_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == ':' || c == '.';
}

/* Returns NULL when well formed, else a message. Elements nest and close
 * in order, attribute values are quoted, text has no raw '<', and '&'
 * starts a known entity. There is exactly one root element. */
static inline const char *ti_xml_check(const char *s)
{
    const char *stack[64];
    size_t lens[64];
    int depth = 0, roots = 0;
    if (strncmp(s, "<?xml", 5) == 0) {
        s = strstr(s, "?>");
        if (!s)
            return "unterminated XML declaration";
        s += 2;
    }
    while (*s) {
        if (*s == '&') {
            if (strncmp(s, "&lt;", 4) && strncmp(s, "&gt;", 4) && strncmp(s, "&amp;", 5) &&
                strncmp(s, "&quot;", 6))
                return "unknown entity";
            s++;
            continue;
        }
        if (*s != '<') {
            s++;
            continue;
        }
        s++;
        bool closing = *s == '/';
        if (closing)
            s++;
        const char *name = s;
        while (ti_name_char(*s))
            s++;
        size_t nlen = (size_t)(s - name);
        if (nlen == 0)
            return "tag without a name";
        if (closing) {
            if (*s != '>' || depth == 0 || lens[depth - 1] != nlen ||
                strncmp(stack[depth - 1], name, nlen) != 0)
                return "mismatched closing tag";
            depth--;
            s++;
            continue;
        }
        for (;;) {
            while (*s == ' ' || *s == '\n' || *s == '\t')
                s++;
            if (*s == '>' || (s[0] == '/' && s[1] == '>'))
                break;
            const char *an = s;
            while (ti_name_char(*s))
                s++;
            if (s == an || *s != '=' || s[1] != '"')
                return "bad attribute";
            s += 2;
            while (*s && *s != '"' && *s != '<')
                s++;
            if (*s != '"')
                return "unterminated attribute";
            s++;
        }
        if (depth == 0)
            roots++;
        if (*s == '/') {
            s += 2;
            continue;
        }
        if (depth == 64)
            return "too deep";
        stack[depth] = name;
        lens[depth++] = nlen;
        s++;
    }
    if (depth)
        return "unclosed element";
    return roots == 1 ? NULL : "not exactly one root element";
}

/* ---- PNG ---- */

static inline uint32_t ti_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Check a PNG file: signature, IHDR first (8-bit RGB), CRC of every chunk,
 * IEND last, and the IDAT stream inflating to exactly h * (1 + 3w) bytes
 * with filter byte 0 on every row. Returns NULL or a message; *w, *h set. */
static inline const char *ti_png_check(const unsigned char *p, size_t len, int *w, int *h)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len < 8 || memcmp(p, sig, 8) != 0)
        return "bad signature";
    size_t off = 8, zlen = 0;
    unsigned char *z = NULL;
    bool ihdr = false, iend = false;
    const char *err = NULL;
    while (off + 12 <= len && !err) {
        uint32_t n = ti_be32(p + off);
        const unsigned char *type = p + off + 4, *data = p + off + 8;
        if (off + 12 + n > len) {
            err = "chunk past the end";
            break;
        }
        uLong crc = crc32(crc32(0L, type, 4), data, n);
        if (crc != ti_be32(data + n))
            err = "bad CRC";
        else if (!ihdr && memcmp(type, "IHDR", 4) != 0)
            err = "IHDR is not first";
        else if (memcmp(type, "IHDR", 4) == 0) {
            ihdr = true;
            *w = (int)ti_be32(data);
            *h = (int)ti_be32(data + 4);
            if (n != 13 || data[8] != 8 || data[9] != 2 || data[12] != 0)
                err = "IHDR is not 8-bit RGB, non-interlaced";
        } else if (memcmp(type, "IDAT", 4) == 0) {
            z = realloc(z, zlen + n + 1);
            memcpy(z + zlen, data, n);
            zlen += n;
        } else if (memcmp(type, "IEND", 4) == 0) {
            iend = true;
            if (off + 12 != len)
                err = "data after IEND";
        }
        off += 12 + n;
    }
    if (!err && (!ihdr || !iend))
        err = "missing IHDR or IEND";
    if (!err) {
        uLongf want = (uLongf)(*h) * (1 + 3 * (uLongf)(*w)), got = want + 16;
        unsigned char *raw = malloc(got);
        if (uncompress(raw, &got, z, zlen) != Z_OK || got != want)
            err = "IDAT does not inflate to the image size";
        for (int y = 0; !err && y < *h; y++)
            if (raw[(size_t)y * (1 + 3 * (size_t)*w)] != 0)
                err = "unexpected row filter";
        free(raw);
    }
    free(z);
    return err;
}

static inline void ti_check_png_file(const char *path)
{
    size_t len;
    char *s = ti_read(path, &len);
    int w = 0, h = 0;
    const char *err = ti_png_check((const unsigned char *)s, len, &w, &h);
    ck_assert_msg(err == NULL, "%s: %s", path, err);
    ck_assert_int_gt(w, 100);
    ck_assert_int_gt(h, 100);
    free(s);
}

/* Check an SVG file and return how many line series it draws. */
static inline int ti_check_svg_file(const char *path)
{
    size_t len;
    char *s = ti_read(path, &len);
    const char *err = ti_xml_check(s);
    ck_assert_msg(err == NULL, "%s: %s", path, err);
    ck_assert_ptr_nonnull(strstr(s, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
    int n = ti_count(s, "<polyline class=\"series\"");
    free(s);
    return n;
}

#endif
