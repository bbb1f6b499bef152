/* safetensors: a corpus of hostile headers and layouts (each rejected with
 * its own message), truncation at every offset, bit flips, round trips,
 * the exact header layout, atomic replacement, parameter checks, and
 * interoperability with an independent standard-library Python reader. */
#include "test_runtime_helpers.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "runtime/runtime.h"
#include "testutil.h"
#include "runtime/io/io.h"

/* A file image: 8-byte length, header, `dlen` data bytes (a ramp). */
static unsigned char *mk(const char *header, size_t hlen, size_t dlen, size_t *len)
{
    *len = 8 + hlen + dlen;
    unsigned char *b = xmalloc(*len);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    memcpy(b + 8, header, hlen);
    for (size_t i = 0; i < dlen; i++)
        b[8 + hlen + i] = (unsigned char)i;
    return b;
}

/* Read a file image, expect failure with `want` in the printed text. */
static void expect_reject(const unsigned char *buf, size_t len, const char *want)
{
    Diags d;
    diags_init(&d);
    TensorMap m;
    rt_map_init(&m);
    Metadata meta;
    rt_meta_init(&meta);
    bool ok = rt_safetensors_read_mem("h.safetensors", buf, len, &m, &meta, &d);
    ck_assert_msg(!ok, "accepted a file that should fail with '%s'", want);
    ck_assert_int_eq(m.n, 0);
    ck_assert_int_eq(meta.n, 0);
    th_expect_diag(&d, want);
    diags_free(&d);
    rt_map_free(&m);
    rt_meta_free(&meta);
}

static void reject_header(const char *header, size_t dlen, const char *want)
{
    size_t len;
    unsigned char *b = mk(header, strlen(header), dlen, &len);
    expect_reject(b, len, want);
    free(b);
}

START_TEST(hostile_framing)
{
    unsigned char z[8] = {0};
    expect_reject(z, 0,
                  "h.safetensors: error: file is too short to be safetensors (0 bytes; the "
                  "8-byte header length is missing)");
    expect_reject(z, 7, "file is too short to be safetensors (7 bytes;");
    expect_reject(z, 8, "h.safetensors: error: header length is 0 (byte 0)");
    unsigned char big[16] = {0x01, 0xe1, 0xf5, 0x05}; /* 100000001 */
    expect_reject(big, 16, "header length 100000001 is larger than the limit of 100000000 bytes");
    unsigned char past[20] = {50};
    expect_reject(past, 20, "header length 50 runs past the end of the file (20 bytes)");
    unsigned char huge[12] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'};
    expect_reject(huge, 12, "header length 18446744073709551615 is larger than the limit");
}
END_TEST

START_TEST(hostile_json)
{
    reject_header("{\"a\":", 0,
                  "invalid JSON in the header at byte 13: unexpected end of input, expected a "
                  "value");
    reject_header("[1,2]", 0, "header must be a JSON object, not a list");
    reject_header("\"x\"", 0, "header must be a JSON object, not a string");
    reject_header("{} x", 0,
                  "invalid JSON in the header at byte 11: trailing characters after the JSON "
                  "value");
    reject_header("{\"\xff\":1}", 0, "header is not valid UTF-8 at byte 10");
    reject_header("{\"\xc0\xaf\":1}", 0, "header is not valid UTF-8 at byte 10"); /* overlong */
    reject_header("{\"\xed\xa0\x80\":1}", 0, "header is not valid UTF-8 at byte 10"); /* surrogate */
    StrBuf deep;
    sb_init(&deep);
    sb_puts(&deep, "{\"__metadata__\":");
    for (int i = 0; i < 100000; i++)
        sb_putc(&deep, '[');
    reject_header(deep.s, 0, "invalid JSON in the header at byte 87: nesting deeper than 64 levels");
    sb_free(&deep);
    reject_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                  "\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[4,8]}}",
                  8, "invalid JSON in the header at byte 61: duplicate key 'a'");
    reject_header("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,4]}}",
                  4, "duplicate key 'dtype'");
    reject_header("{\"a\":{\"dtype\":\"F32\" \"shape\":[]}}", 0,
                  "unexpected character '\"', expected ',' or '}'");
    reject_header("{\"a\\ud800\":1}", 0, "unpaired surrogate in \\u escape");
    reject_header("{\"a\\q\":1}", 0, "invalid escape sequence in string");
    reject_header("{\"a\tb\":1}", 0, "control character 0x09 in string");
    reject_header("{\"a\":01}", 0, "invalid number: leading zero");
    reject_header("{\"a\":tru}", 0, "unexpected character 't', expected a value");
    reject_header("{'a':1}", 0, "unexpected character ''', expected a string key");
}
END_TEST

#define ENTRY(name, body) "\"" name "\":{" body "}"

START_TEST(hostile_entries)
{
    reject_header("{" ENTRY("w", "\"dtype\":\"Q8\",\"shape\":[1],\"data_offsets\":[0,1]") "}", 1,
                  "h.safetensors: error: tensor 'w': unknown dtype 'Q8' (byte 22)");
    reject_header("{" ENTRY("w", "\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[0,2]") "}", 2,
                  "tensor 'w': dtype BF16 is not supported (modelc reads F32, F64 and I32)");
    reject_header("{" ENTRY("w", "\"dtype\":5,\"shape\":[1],\"data_offsets\":[0,4]") "}", 4,
                  "tensor 'w': dtype must be a string, not a number");
    reject_header("{" ENTRY("w", "\"dtype\":\"F32\",\"shape\":3,\"data_offsets\":[0,4]") "}", 4,
                  "tensor 'w': shape must be a list of non-negative integers, not a number "
                  "(byte 36)");
    reject_header("{" ENTRY("w", "\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,4]") "}",
                  4, "tensor 'w': shape must be a list of non-negative integers (byte 39)");
    reject_header("{" ENTRY("w", "\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]") "}",
                  8, "tensor 'w': shape must be a list of non-negative integers (byte 37)");
    reject_header("{" ENTRY("w", "\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]") "}",
                  8, "tensor 'w': shape must be a list of non-negative integers");
    reject_header("{" ENTRY("w", "\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1],"
                                 "\"data_offsets\":[0,4]") "}",
                  4, "tensor 'w': rank 7 is larger than the maximum 6");
    reject_header("{" ENTRY("w", "\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
                                 "\"data_offsets\":[0,4]") "}",
                  4, "tensor 'w': shape [4294967296,4294967296,4294967296] has too many elements");
    reject_header("{" ENTRY("w", "\"dtype\":\"F64\",\"shape\":[2305843009213693952],"
                                 "\"data_offsets\":[0,8]") "}",
                  8, "tensor 'w': shape [2305843009213693952] has too many elements");
    /* a zero dimension does not hide the others: their strides overflow */
    reject_header("{" ENTRY("w", "\"dtype\":\"F32\",\"shape\":[0,4294967296,4294967296,4294967296],"
                                 "\"data_offsets\":[0,0]") "}",
                  0, "tensor 'w': shape [0,4294967296,4294967296,4294967296] has too many elements");
    reject_header("{" ENTRY("w", "\"dtype\":\"F32\",\"shape\":[4611686018427387904,4,0],"
                                 "\"data_offsets\":[0,0]") "}",
                  0, "tensor 'w': shape [4611686018427387904,4,0] has too many elements");
    reject_header("{" ENTRY("w", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]") "}", 4,
                  "tensor 'w': data_offsets must be two integers [begin, end] with 0 <= begin <= "
                  "end (byte 55)");
    reject_header("{" ENTRY("w", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]") "}", 4,
                  "tensor 'w': data_offsets must be two integers");
    reject_header("{" ENTRY("w", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,"
                                 "99999999999999999999]") "}",
                  4, "tensor 'w': data_offsets must be two integers");
    reject_header("{" ENTRY("w", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{}") "}", 4,
                  "tensor 'w': data_offsets must be two integers");
    reject_header("{" ENTRY("w", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]") "}", 4,
                  "tensor 'w': data_offsets [0, 4] span 4 bytes, but F32[2] needs 8");
    reject_header("{" ENTRY("w", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]") "}", 4,
                  "tensor 'w': data_offsets [0, 8] run past the end of the data (4 bytes, file "
                  "byte 66)");
    reject_header("{\"w\":5}", 0, "tensor 'w': entry must be an object, not a number (byte 13)");
    reject_header("{" ENTRY("w", "\"dtype\":\"F32\",\"shape\":[]") "}", 0,
                  "tensor 'w': missing field 'data_offsets' (byte 13)");
    reject_header("{" ENTRY("w", "\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4],"
                                 "\"extra\":1") "}",
                  4, "tensor 'w': unknown field 'extra' (byte 60)");
    reject_header("{" ENTRY("a\\u0000b", "\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]")
                  "}", 4, "tensor name contains a NUL character (byte 9)");
    reject_header("{\"__metadata__\":{\"k\":1}}", 0,
                  "__metadata__ value for 'k' must be a string, not a number (byte 29)");
    reject_header("{\"__metadata__\":[\"k\"]}", 0,
                  "__metadata__ must be an object of strings, not a list (byte 24)");
    reject_header("{\"__metadata__\":{\"k\":\"a\\u0000\"}}", 0,
                  "__metadata__ entry 'k' contains a NUL character");
}
END_TEST

START_TEST(hostile_layout)
{
    reject_header("{" ENTRY("a", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]") ","
                  ENTRY("b", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]") "}", 12,
                  "tensors 'a' [0, 8] and 'b' [4, 12] overlap");
    reject_header("{" ENTRY("a", "\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]") ","
                  ENTRY("b", "\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]") "}", 4,
                  "tensors 'a' [0, 4] and 'b' [0, 4] overlap");
    /* an empty tensor placed inside another one */
    reject_header("{" ENTRY("a", "\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]") ","
                  ENTRY("e", "\"dtype\":\"F64\",\"shape\":[0],\"data_offsets\":[8,8]") "}", 16,
                  "tensors 'a' [0, 16] and 'e' [8, 8] overlap");
    const char *gap = "{" ENTRY("a", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]") ","
                      ENTRY("b", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]") "}";
    char want[128];
    snprintf(want, sizeof want, "data bytes [4, 8) (file byte %zu) belong to no tensor",
             8 + strlen(gap) + 4);
    reject_header(gap, 12, want);
    reject_header("{" ENTRY("a", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]") "}", 8,
                  "data bytes [0, 4) (file byte 62) belong to no tensor");
    reject_header("{" ENTRY("a", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]") "}", 8,
                  "data bytes [4, 8) (file byte 66) after the last tensor belong to no tensor");
    reject_header("{}", 3, "data bytes [0, 3) (file byte 10) after the last tensor");
}
END_TEST

/* A valid file with every dtype, a scalar, an empty tensor and metadata. */
static void fill_map(TensorMap *m)
{
    int64_t d2[2] = {2, 3}, d1[1] = {5}, de[2] = {0, 3};
    Tensor *a = rt_tensor_new(DT_F32, 2, d2);
    for (int i = 0; i < 6; i++)
        rt_set(a, i, i * 0.5 - 1);
    Tensor *b = rt_tensor_new(DT_F64, 1, d1);
    for (int i = 0; i < 5; i++)
        rt_set(b, i, 1.0 / (i + 3));
    Tensor *c = rt_tensor_new(DT_I32, 1, d1);
    for (int i = 0; i < 5; i++)
        rt_set(c, i, -2 + i * 1000000);
    Tensor *s = rt_tensor_new(DT_F64, 0, NULL);
    rt_set(s, 0, NAN);
    rt_map_put(m, "layer.kernel", a);
    rt_map_put(m, "b64", b);
    rt_map_put(m, "counts", c);
    rt_map_put(m, "scalar", s);
    rt_map_put(m, "empty", rt_tensor_new(DT_F32, 2, de));
}

static bool same_tensor(const Tensor *a, const Tensor *b)
{
    return a && b && a->dt == b->dt && rt_tensor_same_shape(a, b) &&
           memcmp(a->data, b->data, (size_t)rt_tensor_bytes(a)) == 0;
}

START_TEST(round_trip)
{
    char *dir = th_tmpdir(), *p = th_path(dir, "w.safetensors");
    TensorMap m, r;
    rt_map_init(&m);
    rt_map_init(&r);
    fill_map(&m);
    Metadata meta, rmeta;
    rt_meta_init(&meta);
    rt_meta_init(&rmeta);
    rt_meta_set(&meta, "model", "mlp \"quoted\" \\ \xc3\xa9");
    rt_meta_set(&meta, "seed", "42");
    Diags d;
    diags_init(&d);
    ck_assert(rt_safetensors_write(p, &m, &meta, &d));
    ck_assert(rt_safetensors_read(p, &r, &rmeta, &d));
    ck_assert_int_eq(d.n, 0);
    ck_assert_int_eq(r.n, 5);
    for (int i = 0; i < m.n; i++)
        ck_assert_msg(same_tensor(m.t[i], rt_map_get(&r, m.names[i])), "%s", m.names[i]);
    ck_assert(isnan(rt_get(rt_map_get(&r, "scalar"), 0)));
    ck_assert_int_eq(rt_map_get(&r, "scalar")->rank, 0);
    ck_assert_str_eq(rt_meta_get(&rmeta, "model"), "mlp \"quoted\" \\ \xc3\xa9");
    ck_assert_str_eq(rt_meta_get(&rmeta, "seed"), "42");
    /* the file's mode is an ordinary one, and no temporary is left */
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0644);
    /* overwrite with different content */
    rt_map_free(&r);
    rt_map_init(&r);
    rt_map_put(&m, "scalar", rt_tensor_new(DT_F32, 0, NULL));
    ck_assert(rt_safetensors_write(p, &m, NULL, &d));
    ck_assert(rt_safetensors_read(p, &r, NULL, &d));
    ck_assert_int_eq(rt_map_get(&r, "scalar")->dt, DT_F32);
    rt_map_free(&r);
    rt_map_free(&m);
    rt_meta_free(&meta);
    rt_meta_free(&rmeta);
    diags_free(&d);
    free(p);
    th_rm_rf(dir);
}
END_TEST

/* The exact bytes: sorted names, contiguous offsets, metadata first,
 * header padded with spaces to a multiple of 8. */
START_TEST(exact_layout)
{
    char *dir = th_tmpdir(), *p = th_path(dir, "x.safetensors");
    TensorMap m;
    rt_map_init(&m);
    int64_t d1[1] = {2};
    Tensor *b = rt_tensor_new(DT_F32, 1, d1), *a = rt_tensor_new(DT_I32, 1, d1);
    rt_set(b, 0, 1.0);
    rt_set(a, 1, 7);
    rt_map_put(&m, "b", b);
    rt_map_put(&m, "a", a);
    Metadata meta;
    rt_meta_init(&meta);
    rt_meta_set(&meta, "k", "v");
    Diags d;
    diags_init(&d);
    ck_assert(rt_safetensors_write(p, &m, &meta, &d));
    size_t len;
    char *buf = read_file(p, &len);
    const char *hdr = "{\"__metadata__\":{\"k\":\"v\"},"
                      "\"a\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}";
    size_t hl = strlen(hdr), padded = (hl + 7) / 8 * 8;
    ck_assert_uint_eq(len, 8 + padded + 16);
    ck_assert_uint_eq((unsigned char)buf[0], padded);
    ck_assert(memcmp(buf + 8, hdr, hl) == 0);
    for (size_t i = hl; i < padded; i++)
        ck_assert_int_eq(buf[8 + i], ' ');
    int32_t iv[2];
    float fv[2];
    memcpy(iv, buf + 8 + padded, 8);
    memcpy(fv, buf + 8 + padded + 8, 8);
    ck_assert_int_eq(iv[1], 7);
    ck_assert(fv[0] == 1.0f);
    free(buf);
    rt_map_free(&m);
    rt_meta_free(&meta);
    diags_free(&d);
    free(p);
    th_rm_rf(dir);
}
END_TEST

static unsigned char *valid_image(size_t *len)
{
    char *dir = th_tmpdir(), *p = th_path(dir, "v.safetensors");
    TensorMap m;
    rt_map_init(&m);
    fill_map(&m);
    Metadata meta;
    rt_meta_init(&meta);
    rt_meta_set(&meta, "format", "modelc-params");
    Diags d;
    diags_init(&d);
    ck_assert(rt_safetensors_write(p, &m, &meta, &d));
    unsigned char *buf = (unsigned char *)read_file(p, len);
    rt_map_free(&m);
    rt_meta_free(&meta);
    diags_free(&d);
    free(p);
    th_rm_rf(dir);
    return buf;
}

START_TEST(truncation_every_offset)
{
    size_t len;
    unsigned char *buf = valid_image(&len);
    Diags d;
    diags_init(&d);
    for (size_t k = 0; k < len; k++) {
        unsigned char *cut = xmalloc(k + 1);
        memcpy(cut, buf, k);
        TensorMap m;
        rt_map_init(&m);
        ck_assert_msg(!rt_safetensors_read_mem("t.safetensors", cut, k, &m, NULL, &d),
                      "accepted a file truncated to %zu of %zu bytes", k, len);
        ck_assert_int_eq(m.n, 0);
        ck_assert_int_eq(d.nerrors, 1);
        diags_free(&d);
        diags_init(&d);
        free(cut);
    }
    /* and one byte too many */
    unsigned char *longer = xmalloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0;
    TensorMap m;
    rt_map_init(&m);
    ck_assert(!rt_safetensors_read_mem("t.safetensors", longer, len + 1, &m, NULL, &d));
    th_expect_diag(&d, "after the last tensor belong to no tensor");
    ck_assert(rt_safetensors_read_mem("t.safetensors", buf, len, &m, NULL, &d));
    ck_assert_int_eq(m.n, 5);
    rt_map_free(&m);
    free(longer);
    free(buf);
    diags_free(&d);
}
END_TEST

/* Flip every bit of a valid file: never a crash or a leak (run under
 * ASan), always a clean accept or a clean diagnostic. */
START_TEST(bit_flips)
{
    size_t len;
    unsigned char *buf = valid_image(&len);
    int accepted = 0, rejected = 0;
    for (size_t k = 0; k < len; k++) {
        for (int bit = 0; bit < 8; bit++) {
            Diags d;
            diags_init(&d);
            buf[k] ^= (unsigned char)(1u << bit);
            TensorMap m;
            rt_map_init(&m);
            Metadata meta;
            rt_meta_init(&meta);
            bool ok = rt_safetensors_read_mem("f.safetensors", buf, len, &m, &meta, &d);
            ck_assert(ok == (d.nerrors == 0));
            ok ? accepted++ : rejected++;
            buf[k] ^= (unsigned char)(1u << bit);
            rt_map_free(&m);
            rt_meta_free(&meta);
            diags_free(&d);
        }
    }
    /* flips in the data are accepted (it is data), most header flips not */
    ck_assert(accepted > 0 && rejected > 0);
    free(buf);
}
END_TEST

static void write_small(const char *p, double v)
{
    TensorMap m;
    rt_map_init(&m);
    Tensor *t = rt_tensor_new(DT_F64, 0, NULL);
    rt_set(t, 0, v);
    rt_map_put(&m, "v", t);
    Diags d;
    diags_init(&d);
    ck_assert(rt_safetensors_write(p, &m, NULL, &d));
    diags_free(&d);
    rt_map_free(&m);
}

static double read_small(const char *p)
{
    TensorMap m;
    rt_map_init(&m);
    Diags d;
    diags_init(&d);
    ck_assert(rt_safetensors_read(p, &m, NULL, &d));
    double v = rt_get(rt_map_get(&m, "v"), 0);
    diags_free(&d);
    rt_map_free(&m);
    return v;
}

static int count_entries(const char *dir)
{
    int n = 0;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
    FILE *f = popen(cmd, "r");
    ck_assert(fscanf(f, "%d", &n) == 1);
    pclose(f);
    return n;
}

START_TEST(atomic_failures)
{
    char *dir = th_tmpdir(), *p = th_path(dir, "w.safetensors");
    write_small(p, 1.5);
    Diags d;
    diags_init(&d);
    TensorMap big;
    rt_map_init(&big);
    int64_t n[1] = {100000};
    rt_map_put(&big, "big", rt_tensor_new(DT_F64, 1, n));

    /* the target is a directory */
    char *sub = th_path(dir, "sub.safetensors");
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    ck_assert(!rt_safetensors_write(sub, &big, NULL, &d));
    th_expect_diag(&d, "sub.safetensors: error: cannot write: it is a directory");

    /* the directory does not exist */
    char *nodir = th_path(dir, "missing/w.safetensors");
    ck_assert(!rt_safetensors_write(nodir, &big, NULL, &d));
    th_expect_diag(&d, "cannot create a temporary file in");
    th_expect_diag(&d, "");

    /* the disk fills up (a file size limit) in the middle of the write */
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 4096;
    void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    bool ok = rt_safetensors_write(p, &big, NULL, &d);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, oldsig);
    ck_assert(!ok);
    th_expect_diag(&d, "w.safetensors: error: cannot write: File too large");
    ck_assert(read_small(p) == 1.5);
    ck_assert_int_eq(count_entries(dir), 2); /* w.safetensors and sub.safetensors only */

    /* a read-only directory (meaningless for root, who may write anyway) */
    if (geteuid() != 0) {
        ck_assert_int_eq(chmod(dir, 0555), 0);
        ck_assert(!rt_safetensors_write(p, &big, NULL, &d));
        chmod(dir, 0755);
        th_expect_diag(&d, "cannot create a temporary file in");
        ck_assert(read_small(p) == 1.5);
    } else {
        fprintf(stderr, "atomic_failures: running as root, read-only directory case skipped\n");
    }
    /* a successful replacement */
    write_small(p, 2.5);
    ck_assert(read_small(p) == 2.5);
    ck_assert_int_eq(count_entries(dir), 2);

    /* reading errors name the file */
    ck_assert(!rt_safetensors_read(sub, &big, NULL, &d));
    th_expect_diag(&d, "sub.safetensors: error: cannot read: Is a directory");
    ck_assert(!rt_safetensors_read(nodir, &big, NULL, &d));
    th_expect_diag(&d, "missing/w.safetensors: error: cannot read: No such file or directory");

    TensorMap bad;
    rt_map_init(&bad);
    rt_map_put(&bad, "__metadata__", rt_tensor_new(DT_F32, 0, NULL));
    ck_assert(!rt_safetensors_write(p, &bad, NULL, &d));
    th_expect_diag(&d, "cannot write a tensor named '__metadata__' (a reserved name)");
    rt_map_free(&bad);

    rt_map_free(&big);
    diags_free(&d);
    free(sub);
    free(nodir);
    free(p);
    th_rm_rf(dir);
}
END_TEST

static SrcLoc L = {"m.mdl", 1, 1};

START_TEST(check_params)
{
    Graph *g = ir_graph_new("m");
    ir_param(g, "dense.kernel", DT_F32, ir_shape2(784, 256), (Init){INIT_GLOROT_UNIFORM, 0, 0},
             true, ROLE_WEIGHT, L);
    ir_param(g, "dense.bias", DT_F32, ir_shape1(256), (Init){INIT_ZEROS, 0, 0}, true,
             ROLE_WEIGHT, L);
    ir_param(g, "out.bias", DT_F32, ir_shape1(10), (Init){INIT_ZEROS, 0, 0}, true, ROLE_WEIGHT,
             L);
    TensorMap m;
    rt_map_init(&m);
    rt_map_put(&m, "dense.kernel", rt_tensor_new(DT_F32, 2, (int64_t[]){784, 128}));
    rt_map_put(&m, "dense.bias", rt_tensor_new(DT_F64, 1, (int64_t[]){256}));
    rt_map_put(&m, "stray", rt_tensor_new(DT_F32, 0, NULL));
    Diags d;
    diags_init(&d);
    ck_assert(!rt_check_params(g, &m, "w.safetensors", false, &d));
    char *txt = th_diag_text(&d);
    ck_assert_str_eq(txt,
                     "w.safetensors: error: tensor 'dense.kernel' has shape [784,128], the model "
                     "expects [784,256]\n"
                     "w.safetensors: error: tensor 'dense.bias' has dtype f64, the model expects "
                     "f32\n"
                     "w.safetensors: error: tensor 'out.bias' is missing; the model expects "
                     "f32[10]\n"
                     "w.safetensors: error: tensor 'stray' is not a parameter of the model\n");
    free(txt);
    diags_free(&d);
    diags_init(&d);
    ck_assert(!rt_check_params(g, &m, "w.safetensors", true, &d));
    ck_assert_int_eq(d.nerrors, 3);
    diags_free(&d);
    diags_init(&d);
    rt_map_free(&m);
    rt_map_init(&m);
    rt_init_params(g, &m, 1, false, NULL);
    rt_map_put(&m, "stray", rt_tensor_new(DT_F32, 0, NULL));
    ck_assert(rt_check_params(g, &m, "w.safetensors", true, &d));
    ck_assert(!rt_check_params(g, &m, "w.safetensors", false, &d));
    ck_assert_int_eq(d.nerrors, 1);
    rt_map_free(&m);
    diags_free(&d);
    ir_graph_free(g);
}
END_TEST

/* Interoperability with tests/data/safetensors_py.py, a reader and writer
 * using only Python's standard library (json + struct). */
START_TEST(python_interop)
{
    if (system("python3 -c 'import json, struct' >/dev/null 2>&1") != 0) {
        fprintf(stderr, "python_interop: python3 not available, skipped\n");
        return;
    }
    char *dir = th_tmpdir(), *p = th_path(dir, "c.safetensors"), *q = th_path(dir, "py.safetensors");
    TensorMap m;
    rt_map_init(&m);
    fill_map(&m);
    Metadata meta;
    rt_meta_init(&meta);
    rt_meta_set(&meta, "model", "mlp");
    Diags d;
    diags_init(&d);
    ck_assert(rt_safetensors_write(p, &m, &meta, &d));
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "python3 tests/data/safetensors_py.py dump '%s'", p);
    FILE *f = popen(cmd, "r");
    char out[4096];
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = 0;
    ck_assert_int_eq(pclose(f), 0);
    ck_assert_str_eq(out, "__metadata__ {'model': 'mlp'}\n"
                          "b64 F64 [5] [0.3333333333333333, 0.25, 0.2, 0.16666666666666666, "
                          "0.14285714285714285]\n"
                          "counts I32 [5] [-2, 999998, 1999998, 2999998, 3999998]\n"
                          "empty F32 [0, 3] []\n"
                          "layer.kernel F32 [2, 3] [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5]\n"
                          "scalar F64 [] [nan]\n");
    snprintf(cmd, sizeof cmd, "python3 tests/data/safetensors_py.py write '%s'", q);
    ck_assert_int_eq(system(cmd), 0);
    TensorMap r;
    rt_map_init(&r);
    Metadata rm;
    rt_meta_init(&rm);
    ck_assert(rt_safetensors_read(q, &r, &rm, &d));
    ck_assert_str_eq(rt_meta_get(&rm, "source"), "python");
    Tensor *w = rt_map_get(&r, "w"), *i = rt_map_get(&r, "i"), *s = rt_map_get(&r, "s");
    ck_assert(w && i && s);
    char buf[64];
    ck_assert_str_eq(rt_tensor_type_str(w, buf, sizeof buf), "f32[2,2]");
    ck_assert_str_eq(rt_tensor_type_str(i, buf, sizeof buf), "i32[3]");
    ck_assert_str_eq(rt_tensor_type_str(s, buf, sizeof buf), "f64[]");
    ck_assert(rt_get(w, 3) == 4.5 && rt_get(i, 2) == -3 && rt_get(s, 0) == 0.1);
    rt_map_free(&r);
    rt_meta_free(&rm);
    rt_map_free(&m);
    rt_meta_free(&meta);
    diags_free(&d);
    free(p);
    free(q);
    th_rm_rf(dir);
}
END_TEST

/* PyTorch's int64 num_batches_tracked is refused, or skipped when asked,
 * its place in the data still checked. */
START_TEST(skip_suffix)
{
    const char *path = "tests/interop/torch.safetensors";
    TensorMap m;
    rt_map_init(&m);
    Diags d;
    diags_init(&d);
    ck_assert(!rt_safetensors_read(path, &m, NULL, &d));
    ck_assert_ptr_nonnull(strstr(d.v[0].msg, "'bn.num_batches_tracked': dtype I64 is not supported"));
    diags_free(&d);
    diags_init(&d);
    ck_assert(rt_safetensors_read_skip(path, ".num_batches_tracked", &m, NULL, &d));
    ck_assert_int_eq(m.n, 10);
    ck_assert_ptr_null(rt_map_get(&m, "bn.num_batches_tracked"));
    ck_assert_ptr_nonnull(rt_map_get(&m, "bn.running_var"));
    ck_assert_str_eq(m.names[0], "conv.weight"); /* in the order of the data */
    ck_assert_str_eq(m.names[9], "fc2.bias");
    rt_map_free(&m);
    diags_free(&d);
}
END_TEST

/* The CRC32C check value and TFRecord's mask. */
START_TEST(crc32c_check_value)
{
    ck_assert_uint_eq(rt_crc32c(0, "123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(rt_crc32c(rt_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
    ck_assert_uint_eq(rt_crc32c(0, "", 0), 0);
    uint32_t c = 0xE3069283u;
    ck_assert_uint_eq(rt_crc32c_mask(c), (((c >> 15) | (c << 17)) + 0xa282ead8u) & 0xffffffffu);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("safetensors");
    TCase *t = tcase_create("safetensors");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, hostile_framing);
    tcase_add_test(t, hostile_json);
    tcase_add_test(t, hostile_entries);
    tcase_add_test(t, hostile_layout);
    tcase_add_test(t, round_trip);
    tcase_add_test(t, exact_layout);
    tcase_add_test(t, truncation_every_offset);
    tcase_add_test(t, bit_flips);
    tcase_add_test(t, atomic_failures);
    tcase_add_test(t, check_params);
    tcase_add_test(t, python_interop);
    tcase_add_test(t, skip_suffix);
    tcase_add_test(t, crc32c_check_value);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
