/* The ONNX importer on good, truncated, bit-flipped and hand-made corrupt
 * files: a good fixture translates; every damaged one either translates
 * or fails with errors located in the file, never a crash (the sanitizer
 * build checks memory); malformed headers give their exact message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/onnx/onnx.h"
#include "testutil.h"

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    unsigned char *b = malloc(1 << 20);
    *n = fread(b, 1, 1 << 20, f);
    fclose(f);
    return b;
}

/* Import bytes; on failure every error names the file. */
static bool import(const unsigned char *b, size_t n, const char *first_msg)
{
    Diags d;
    diags_init(&d);
    OnnxImport im;
    bool ok = fe_onnx_import("bad.onnx", b, n, &im, &d);
    ck_assert_msg(ok == (d.nerrors == 0), "ok %d, %d errors, size %zu: %s", ok, d.nerrors, n,
                  d.n ? d.v[0].msg : "");
    if (ok) {
        ck_assert(im.mdl != NULL && strstr(im.mdl, "output ") != NULL);
        fe_onnx_import_free(&im);
    }
    for (int i = 0; i < d.n; i++)
        ck_assert_str_eq(d.v[i].loc.file, "bad.onnx");
    if (first_msg) {
        ck_assert_int_ge(d.n, 1);
        ck_assert_str_eq(d.v[0].msg, first_msg);
    }
    diags_free(&d);
    return ok;
}

START_TEST(good_fixtures)
{
    static const char *const files[] = {"mlp",     "cnn",      "resnet",        "ops",     "acts",  "misc",   "convs",
                                        "recurrent", "spatial", "padmodes", "bidirectional", "noinput", "argmax"};
    for (int i = 0; i < ARRAY_LEN(files); i++) {
        char p[64];
        snprintf(p, sizeof p, "tests/onnx/%s.onnx", files[i]);
        size_t n;
        unsigned char *b = slurp(p, &n);
        ck_assert(import(b, n, NULL));
        free(b);
    }
}
END_TEST

START_TEST(truncated_everywhere)
{
    static const char *const files[] = {"mlp", "cnn"};
    for (int f = 0; f < 2; f++) {
        char p[64];
        snprintf(p, sizeof p, "tests/onnx/%s.onnx", files[f]);
        size_t n;
        unsigned char *b = slurp(p, &n);
        int rejected = 0;
        for (size_t k = 0; k < n; k++)
            rejected += !import(b, k, NULL);
        /* a cut at a field boundary may leave a well-formed, smaller model */
        ck_assert_int_gt(rejected, (int)(n * 9 / 10));
        free(b);
    }
}
END_TEST

START_TEST(bit_flips)
{
    size_t n;
    unsigned char *b = slurp("tests/onnx/mlp.onnx", &n);
    int rejected = 0;
    for (size_t k = 0; k < n; k++)
        for (int bit = 0; bit < 8; bit++) {
            b[k] ^= (unsigned char)(1u << bit);
            rejected += !import(b, n, NULL);
            b[k] ^= (unsigned char)(1u << bit);
        }
    ck_assert_int_gt(rejected, 0);
    free(b);
}
END_TEST

/* The layers a graph of whole tensors, ConvTranspose, the recurrent ops
 * (bidirectional too), 1-D and 3-D windows, Pad's modes and negative
 * steps bring: every truncation and bit flip of their fixtures translates
 * or fails with located errors. */
START_TEST(new_ops_damaged)
{
    static const char *const files[] = {"convs",         "recurrent", "fixed", "spatial", "padmodes",
                                        "bidirectional", "noinput",   "argmax"};
    for (int f = 0; f < ARRAY_LEN(files); f++) {
        char p[64];
        snprintf(p, sizeof p, "tests/onnx/%s.onnx", files[f]);
        size_t n;
        unsigned char *b = slurp(p, &n);
        int rejected = 0;
        for (size_t k = 0; k < n; k++)
            rejected += !import(b, k, NULL);
        for (size_t k = 0; k < n; k += 3)
            for (int bit = 0; bit < 8; bit++) {
                b[k] ^= (unsigned char)(1u << bit);
                rejected += !import(b, n, NULL);
                b[k] ^= (unsigned char)(1u << bit);
            }
        ck_assert_int_gt(rejected, (int)(n * 9 / 10));
        free(b);
    }
}
END_TEST

/* A shape given as a graph input needs its value at import. */
START_TEST(bound_inputs)
{
    size_t n;
    unsigned char *b = slurp("tests/onnx/fixed.onnx", &n);
    import(b, n, "node 5 (Reshape): the shape must be a constant list of at most 6 integers");
    TensorMap m;
    rt_map_init(&m);
    int64_t two = 2;
    Tensor *shape = rt_tensor_new(DT_I32, 1, &two);
    rt_set(shape, 0, 3);
    rt_set(shape, 1, 4);
    rt_map_put(&m, "shape", shape);
    Diags d;
    diags_init(&d);
    OnnxImport im;
    ck_assert(fe_onnx_import_bound("fixed.onnx", b, n, &m, &im, &d));
    ck_assert(strstr(im.mdl, "input a: f32[3, 4]\n") != NULL);
    ck_assert(strstr(im.mdl, "concat([t1, a], axis=0)") != NULL);
    ck_assert(strstr(im.mdl, "reshape(t3, [3, 4])") != NULL);
    fe_onnx_import_free(&im);
    rt_map_put(&m, "nope", rt_tensor_new(DT_F32, 1, &two));
    ck_assert(!fe_onnx_import_bound("fixed.onnx", b, n, &m, &im, &d));
    ck_assert_str_eq(d.v[d.n - 1].msg, "'nope' given a value is no input of the graph");
    diags_free(&d);
    rt_map_free(&m);
    free(b);
}
END_TEST

START_TEST(corrupt_headers)
{
    import((const unsigned char *)"", 0, "the model imports no version of the standard operator set");
    import((const unsigned char *)"hello, world", 12,
           "not a valid ONNX model (the protobuf message is malformed or truncated)");
    /* opset_import { version: 99 } */
    import((const unsigned char *)"\x42\x02\x10\x63", 4, "opset 99 is not supported (1 to 18 are)");
    /* opset_import { version: 13 }, no graph */
    import((const unsigned char *)"\x42\x02\x10\x0d", 4, "the model has no graph");
    /* opset 13, graph { node { output: "y" op_type: "Sin" } output { name: "y" } } */
    import((const unsigned char *)"\x42\x02\x10\x0d\x3a\x0f\x0a\x08\x12\x01y\x22\x03Sin\x62\x03\x0a\x01y", 21,
           "node 0 (Sin): operator Sin is not supported (modelc import --list-ops lists those that are)");
    /* opset 13, graph { initializer { dims: [3], data_type: FLOAT, raw_data: 4 bytes } } */
    import((const unsigned char *)"\x42\x02\x10\x0d\x3a\x0c\x2a\x0a\x08\x03\x10\x01\x4a\x04\x00\x00\x80\x3f",
           18, "initializer '': raw data holds 4 bytes, its shape needs 12");
    /* a negative dimension */
    import((const unsigned char *)"\x42\x02\x10\x0d\x3a\x0f\x2a\x0d\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\x10\x01",
           21, "initializer '' has a negative dimension -1");
}
END_TEST

/* Messages nested 100000 deep (graph { node { attribute { g { ... } } } }
 * would take protobuf-c's recursion that deep): refused up front. */
START_TEST(deep_nesting)
{
    enum { LEVELS = 100000 };
    size_t cap = (size_t)LEVELS * 8 + 16, start = cap;
    unsigned char *b = malloc(cap);
    for (int k = 0; k < LEVELS; k++) {
        size_t len = cap - start;
        unsigned char v[10];
        int nv = 0;
        do {
            v[nv++] = (unsigned char)((len & 0x7f) | (len > 0x7f ? 0x80 : 0));
            len >>= 7;
        } while (len);
        start -= (size_t)nv;
        memcpy(b + start, v, (size_t)nv);
        b[--start] = 0x3a; /* field 7, length-delimited */
    }
    import(b + start, cap - start, "messages nested more than 64 deep: not an ONNX model this importer reads");
    free(b);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("onnx");
    TCase *t = tcase_create("import");
    tcase_set_timeout(t, 300);
    tcase_add_test(t, good_fixtures);
    tcase_add_test(t, truncated_everywhere);
    tcase_add_test(t, bit_flips);
    tcase_add_test(t, corrupt_headers);
    tcase_add_test(t, new_ops_damaged);
    tcase_add_test(t, bound_inputs);
    tcase_add_test(t, deep_nesting);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
