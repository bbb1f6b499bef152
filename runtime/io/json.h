/* A small strict JSON reader (RFC 8259) for safetensors headers: values
 * live in an arena, every value remembers its byte offset, duplicate
 * object keys, invalid UTF-8, lone surrogates, excessive nesting and
 * trailing characters are errors. Internal to the runtime. */
#ifndef MODELC_RT_JSON_H
#define MODELC_RT_JSON_H

#include "ir/base/base.h"

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUM, JSON_STR, JSON_ARR, JSON_OBJ } JsonKind;

typedef struct JsonValue JsonValue;
struct JsonValue {
    JsonKind kind;
    size_t off;     /* byte offset of the value's first character */
    bool b;         /* JSON_BOOL */
    double num;     /* JSON_NUM */
    bool is_int;    /* JSON_NUM written without fraction or exponent ... */
    bool int_big;   /* ... but outside the int64 range */
    int64_t i;      /* the integer when is_int && !int_big */
    char *s;        /* JSON_STR: decoded, NUL-terminated */
    size_t slen;    /* bytes in s (s may contain NUL from \u0000) */
    int n;          /* JSON_ARR items / JSON_OBJ members */
    JsonValue **items;
    char **keys;    /* JSON_OBJ: decoded keys, parallel to items */
    size_t *keylen;
    size_t *keyoff; /* offset of each key's opening quote */
};

typedef struct JsonError {
    size_t off;
    char msg[200];
} JsonError;

/* Parse exactly one JSON value (surrounded by optional whitespace) from
 * text[0..len). NULL on error with *err set. */
JsonValue *json_parse(Arena *a, const char *text, size_t len, int max_depth, JsonError *err);
/* Member of an object by key, NULL when absent. */
const JsonValue *json_get(const JsonValue *obj, const char *key);
const char *json_kind_name(JsonKind k);
/* Length of the longest valid UTF-8 prefix of s[0..n). */
size_t json_utf8_valid_prefix(const unsigned char *s, size_t n);

#endif
