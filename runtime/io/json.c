/* A strict JSON reader: recursive descent over a byte buffer with a depth
 * limit; all values allocated in an arena. */
#include "json.h"

#include <stdlib.h>
#include <string.h>

typedef struct JsonParser {
    Arena *a;
    const unsigned char *p, *start, *end;
    int depth, max_depth;
    JsonError *err;
    bool failed;
} JsonParser;

static JsonValue *parse_value(JsonParser *jp);

static void fail_at(JsonParser *jp, const unsigned char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail_at(JsonParser *jp, const unsigned char *at, const char *fmt, ...)
{
    if (jp->failed)
        return;
    jp->failed = true;
    jp->err->off = (size_t)(at - jp->start);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(jp->err->msg, sizeof jp->err->msg, fmt, ap);
    va_end(ap);
}

static void unexpected(JsonParser *jp, const char *what)
{
    if (jp->p >= jp->end) {
        fail_at(jp, jp->p, "unexpected end of input, expected %s", what);
        return;
    }
    unsigned c = *jp->p;
    if (c >= 0x20 && c < 0x7f)
        fail_at(jp, jp->p, "unexpected character '%c', expected %s", (char)c, what);
    else
        fail_at(jp, jp->p, "unexpected byte 0x%02x, expected %s", c, what);
}

const char *json_kind_name(JsonKind k)
{
    static const char *names[] = {"null", "a boolean", "a number", "a string", "a list",
                                  "an object"};
    return names[k];
}

/* Decode one UTF-8 sequence at s (n bytes available): its length, or 0 if
 * malformed (overlong, surrogate, beyond U+10FFFF, truncated). */
static int utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned c = s[0];
    int len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if ((size_t)len > n)
        return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

size_t json_utf8_valid_prefix(const unsigned char *s, size_t n)
{
    size_t i = 0;
    uint32_t cp;
    while (i < n) {
        int k = utf8_seq(s + i, n - i, &cp);
        if (!k)
            break;
        i += (size_t)k;
    }
    return i;
}

static void skip_ws(JsonParser *jp)
{
    while (jp->p < jp->end && (*jp->p == ' ' || *jp->p == '\t' || *jp->p == '\n' || *jp->p == '\r'))
        jp->p++;
}

static JsonValue *new_value(JsonParser *jp, JsonKind k, const unsigned char *at)
{
    JsonValue *v = arena_alloc(jp->a, sizeof(JsonValue));
    v->kind = k;
    v->off = (size_t)(at - jp->start);
    return v;
}

static int hexval(unsigned c)
{
    if (c >= '0' && c <= '9')
        return (int)(c - '0');
    if (c >= 'a' && c <= 'f')
        return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F')
        return (int)(c - 'A' + 10);
    return -1;
}

static bool read_hex4(JsonParser *jp, uint32_t *out)
{
    uint32_t v = 0;
    if (jp->end - jp->p < 4) {
        fail_at(jp, jp->p, "truncated \\u escape");
        return false;
    }
    for (int i = 0; i < 4; i++) {
        int h = hexval(jp->p[i]);
        if (h < 0) {
            fail_at(jp, jp->p - 2, "invalid \\u escape");
            return false;
        }
        v = v * 16 + (uint32_t)h;
    }
    jp->p += 4;
    *out = v;
    return true;
}

static void put_utf8(StrBuf *b, uint32_t cp)
{
    if (cp < 0x80) {
        sb_putc(b, (char)cp);
    } else if (cp < 0x800) {
        sb_putc(b, (char)(0xC0 | (cp >> 6)));
        sb_putc(b, (char)(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        sb_putc(b, (char)(0xE0 | (cp >> 12)));
        sb_putc(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
        sb_putc(b, (char)(0x80 | (cp & 0x3F)));
    } else {
        sb_putc(b, (char)(0xF0 | (cp >> 18)));
        sb_putc(b, (char)(0x80 | ((cp >> 12) & 0x3F)));
        sb_putc(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
        sb_putc(b, (char)(0x80 | (cp & 0x3F)));
    }
}

/* \uXXXX, possibly a surrogate pair; jp->p is just past the 'u'. */
static bool parse_u_escape(JsonParser *jp, StrBuf *b)
{
    const unsigned char *at = jp->p - 2;
    uint32_t cp, lo;
    if (!read_hex4(jp, &cp))
        return false;
    if (cp >= 0xDC00 && cp <= 0xDFFF) {
        fail_at(jp, at, "unpaired surrogate in \\u escape");
        return false;
    }
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (jp->end - jp->p < 2 || jp->p[0] != '\\' || jp->p[1] != 'u') {
            fail_at(jp, at, "unpaired surrogate in \\u escape");
            return false;
        }
        jp->p += 2;
        if (!read_hex4(jp, &lo))
            return false;
        if (lo < 0xDC00 || lo > 0xDFFF) {
            fail_at(jp, at, "unpaired surrogate in \\u escape");
            return false;
        }
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    put_utf8(b, cp);
    return true;
}

static bool parse_escape(JsonParser *jp, StrBuf *b)
{
    if (jp->p >= jp->end) {
        fail_at(jp, jp->p, "unterminated string");
        return false;
    }
    unsigned c = *jp->p++;
    switch (c) {
    case '"': sb_putc(b, '"'); return true;
    case '\\': sb_putc(b, '\\'); return true;
    case '/': sb_putc(b, '/'); return true;
    case 'b': sb_putc(b, '\b'); return true;
    case 'f': sb_putc(b, '\f'); return true;
    case 'n': sb_putc(b, '\n'); return true;
    case 'r': sb_putc(b, '\r'); return true;
    case 't': sb_putc(b, '\t'); return true;
    case 'u': return parse_u_escape(jp, b);
    default:
        fail_at(jp, jp->p - 2, "invalid escape sequence in string");
        return false;
    }
}

/* A string; jp->p at the opening quote. The decoded text goes to an
 * arena copy. */
static bool parse_string_raw(JsonParser *jp, char **out, size_t *outlen)
{
    const unsigned char *open = jp->p++;
    StrBuf b;
    sb_init(&b);
    for (;;) {
        if (jp->p >= jp->end) {
            fail_at(jp, open, "unterminated string");
            break;
        }
        unsigned c = *jp->p;
        if (c == '"') {
            jp->p++;
            *out = arena_strndup(jp->a, b.s ? b.s : "", b.len);
            *outlen = b.len;
            sb_free(&b);
            return true;
        }
        if (c == '\\') {
            jp->p++;
            if (!parse_escape(jp, &b))
                break;
            continue;
        }
        if (c < 0x20) {
            fail_at(jp, jp->p, "control character 0x%02x in string", c);
            break;
        }
        uint32_t cp;
        int k = utf8_seq(jp->p, (size_t)(jp->end - jp->p), &cp);
        if (!k) {
            fail_at(jp, jp->p, "invalid UTF-8 in string");
            break;
        }
        for (int i = 0; i < k; i++)
            sb_putc(&b, (char)jp->p[i]);
        jp->p += k;
    }
    sb_free(&b);
    return false;
}

static bool is_digit(const unsigned char *p, const unsigned char *end)
{
    return p < end && *p >= '0' && *p <= '9';
}

static JsonValue *parse_number(JsonParser *jp)
{
    const unsigned char *s = jp->p, *p = jp->p, *end = jp->end;
    bool neg = false, frac = false;
    if (p < end && *p == '-')
        neg = true, p++;
    if (!is_digit(p, end)) {
        fail_at(jp, s, "invalid number");
        return NULL;
    }
    if (*p == '0' && is_digit(p + 1, end)) {
        fail_at(jp, s, "invalid number: leading zero");
        return NULL;
    }
    while (is_digit(p, end))
        p++;
    if (p < end && *p == '.') {
        frac = true, p++;
        if (!is_digit(p, end)) {
            fail_at(jp, s, "invalid number: digits expected after '.'");
            return NULL;
        }
        while (is_digit(p, end))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        frac = true, p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (!is_digit(p, end)) {
            fail_at(jp, s, "invalid number: digits expected in exponent");
            return NULL;
        }
        while (is_digit(p, end))
            p++;
    }
    JsonValue *v = new_value(jp, JSON_NUM, s);
    char *tok = arena_strndup(jp->a, (const char *)s, (size_t)(p - s));
    v->num = strtod(tok, NULL);
    if (!frac) {
        v->is_int = true;
        int64_t acc = 0;
        for (const unsigned char *q = s + neg; q < p && !v->int_big; q++) {
            int dgt = *q - '0';
            if (mul_overflow_i64(acc, 10, &acc) ||
                __builtin_add_overflow(acc, neg ? -dgt : dgt, &acc))
                v->int_big = true;
        }
        v->i = v->int_big ? 0 : acc;
    }
    jp->p = p;
    return v;
}

static bool match_word(JsonParser *jp, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(jp->end - jp->p) < n || memcmp(jp->p, w, n) != 0)
        return false;
    jp->p += n;
    return true;
}

typedef struct Member {
    char *key;
    size_t keylen, keyoff;
    JsonValue *val;
} Member;

static int cmp_member(const void *x, const void *y)
{
    const Member *a = *(Member *const *)x, *b = *(Member *const *)y;
    size_t n = a->keylen < b->keylen ? a->keylen : b->keylen;
    int c = memcmp(a->key, b->key, n);
    if (c)
        return c;
    if (a->keylen != b->keylen)
        return a->keylen < b->keylen ? -1 : 1;
    return a->keyoff < b->keyoff ? -1 : a->keyoff > b->keyoff;
}

/* Duplicate keys: sort member pointers, compare neighbours; report the
 * later occurrence. */
static bool check_duplicates(JsonParser *jp, Member *m, int n)
{
    if (n < 2)
        return true;
    Member **v = xmalloc((size_t)n * sizeof(Member *));
    for (int i = 0; i < n; i++)
        v[i] = &m[i];
    qsort(v, (size_t)n, sizeof(Member *), cmp_member);
    bool ok = true;
    for (int i = 1; i < n && ok; i++) {
        if (v[i]->keylen == v[i - 1]->keylen && memcmp(v[i]->key, v[i - 1]->key, v[i]->keylen) == 0) {
            fail_at(jp, jp->start + v[i]->keyoff, "duplicate key '%.80s'", v[i]->key);
            ok = false;
        }
    }
    xfree(v);
    return ok;
}

static JsonValue *finish_object(JsonParser *jp, JsonValue *o, Member *m, int n)
{
    if (!check_duplicates(jp, m, n))
        return NULL;
    o->n = n;
    o->items = arena_alloc(jp->a, (size_t)n * sizeof(JsonValue *));
    o->keys = arena_alloc(jp->a, (size_t)n * sizeof(char *));
    o->keylen = arena_alloc(jp->a, (size_t)n * sizeof(size_t));
    o->keyoff = arena_alloc(jp->a, (size_t)n * sizeof(size_t));
    for (int i = 0; i < n; i++) {
        o->items[i] = m[i].val;
        o->keys[i] = m[i].key;
        o->keylen[i] = m[i].keylen;
        o->keyoff[i] = m[i].keyoff;
    }
    return o;
}

/* object := '{' (string ':' value (',' string ':' value)*)? '}' */
static JsonValue *parse_object(JsonParser *jp)
{
    JsonValue *o = new_value(jp, JSON_OBJ, jp->p++);
    Member *m = NULL;
    int n = 0, cap = 0;
    skip_ws(jp);
    if (jp->p < jp->end && *jp->p == '}') {
        jp->p++;
        return o;
    }
    for (;;) {
        skip_ws(jp);
        if (jp->p >= jp->end || *jp->p != '"') {
            unexpected(jp, "a string key");
            break;
        }
        Member mb = {NULL, 0, (size_t)(jp->p - jp->start), NULL};
        if (!parse_string_raw(jp, &mb.key, &mb.keylen))
            break;
        skip_ws(jp);
        if (jp->p >= jp->end || *jp->p != ':') {
            unexpected(jp, "':'");
            break;
        }
        jp->p++;
        if (!(mb.val = parse_value(jp)))
            break;
        VEC_PUSH(m, n, cap, mb);
        skip_ws(jp);
        if (jp->p < jp->end && *jp->p == ',') {
            jp->p++;
            continue;
        }
        if (jp->p < jp->end && *jp->p == '}') {
            jp->p++;
            JsonValue *r = finish_object(jp, o, m, n);
            xfree(m);
            return r;
        }
        unexpected(jp, "',' or '}'");
        break;
    }
    xfree(m);
    return NULL;
}

/* array := '[' (value (',' value)*)? ']' */
static JsonValue *parse_array(JsonParser *jp)
{
    JsonValue *arr = new_value(jp, JSON_ARR, jp->p++);
    JsonValue **v = NULL;
    int n = 0, cap = 0;
    skip_ws(jp);
    if (jp->p < jp->end && *jp->p == ']') {
        jp->p++;
        return arr;
    }
    for (;;) {
        JsonValue *x = parse_value(jp);
        if (!x)
            break;
        VEC_PUSH(v, n, cap, x);
        skip_ws(jp);
        if (jp->p < jp->end && *jp->p == ',') {
            jp->p++;
            continue;
        }
        if (jp->p < jp->end && *jp->p == ']') {
            jp->p++;
            arr->n = n;
            arr->items = arena_alloc(jp->a, (size_t)n * sizeof(JsonValue *));
            memcpy(arr->items, v, (size_t)n * sizeof(JsonValue *));
            xfree(v);
            return arr;
        }
        unexpected(jp, "',' or ']'");
        break;
    }
    xfree(v);
    return NULL;
}

static JsonValue *parse_nested(JsonParser *jp, bool object)
{
    if (jp->depth >= jp->max_depth) {
        fail_at(jp, jp->p, "nesting deeper than %d levels", jp->max_depth);
        return NULL;
    }
    jp->depth++;
    JsonValue *v = object ? parse_object(jp) : parse_array(jp);
    jp->depth--;
    return v;
}

/* value := object | array | string | number | true | false | null */
static JsonValue *parse_value(JsonParser *jp)
{
    skip_ws(jp);
    if (jp->p >= jp->end) {
        unexpected(jp, "a value");
        return NULL;
    }
    const unsigned char *at = jp->p;
    switch (*jp->p) {
    case '{':
        return parse_nested(jp, true);
    case '[':
        return parse_nested(jp, false);
    case '"': {
        JsonValue *v = new_value(jp, JSON_STR, at);
        return parse_string_raw(jp, &v->s, &v->slen) ? v : NULL;
    }
    case 't':
    case 'f':
    case 'n':
        if (match_word(jp, "true") || match_word(jp, "false")) {
            JsonValue *v = new_value(jp, JSON_BOOL, at);
            v->b = *at == 't';
            return v;
        }
        if (match_word(jp, "null"))
            return new_value(jp, JSON_NULL, at);
        unexpected(jp, "a value");
        return NULL;
    default:
        if (*jp->p == '-' || (*jp->p >= '0' && *jp->p <= '9'))
            return parse_number(jp);
        unexpected(jp, "a value");
        return NULL;
    }
}

JsonValue *json_parse(Arena *a, const char *text, size_t len, int max_depth, JsonError *err)
{
    JsonParser jp = {a, (const unsigned char *)text, (const unsigned char *)text,
                     (const unsigned char *)text + len, 0, max_depth, err, false};
    JsonValue *v = parse_value(&jp);
    if (!v)
        return NULL;
    skip_ws(&jp);
    if (jp.p < jp.end) {
        fail_at(&jp, jp.p, "trailing characters after the JSON value");
        return NULL;
    }
    return v;
}

const JsonValue *json_get(const JsonValue *obj, const char *key)
{
    if (!obj || obj->kind != JSON_OBJ)
        return NULL;
    size_t n = strlen(key);
    for (int i = 0; i < obj->n; i++)
        if (obj->keylen[i] == n && memcmp(obj->keys[i], key, n) == 0)
            return obj->items[i];
    return NULL;
}
