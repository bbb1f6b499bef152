/* Data loaders: IDX (plain and gzip), CSV, NPY and safetensors data sets,
 * each with a corrupt-file corpus whose messages name the file and the
 * position; the real Fashion-MNIST files when installed; shuffling,
 * batches, validation splits and generated data. */
#include "test_runtime_helpers.h"

#include <math.h>

#include "runtime/runtime.h"
#include "testutil.h"
#include "runtime/io/io.h"
#include "runtime/io/rtio.h"

static char *tmp;

static void setup(void)
{
    tmp = th_tmpdir();
}

static void teardown(void)
{
    th_rm_rf(tmp);
}

/* A file in the test directory; the name is returned (malloc'd). */
static char *put(const char *name, const void *buf, size_t len)
{
    char *p = th_path(tmp, name);
    size_t n = strlen(name);
    if (n > 3 && strcmp(name + n - 3, ".gz") == 0)
        th_write_gz(p, buf, len);
    else
        th_write(p, buf, len);
    return p;
}

static char *put_str(const char *name, const char *text)
{
    return put(name, text, strlen(text));
}

/* The column name of ds (which must exist). */
static const DataCol *col(const Dataset *ds, const char *name)
{
    const DataCol *c = rt_dataset_col(ds, name);
    ck_assert_msg(c != NULL, "no data set tensor '%s'", name);
    return c;
}

/* ---- IDX ---- */

static size_t idx_bytes(unsigned char *b, uint32_t magic, int ndim, const uint32_t *dims,
                        const unsigned char *data, size_t n)
{
    size_t k = 0;
    for (int s = 24; s >= 0; s -= 8)
        b[k++] = (unsigned char)(magic >> s);
    for (int i = 0; i < ndim; i++)
        for (int s = 24; s >= 0; s -= 8)
            b[k++] = (unsigned char)(dims[i] >> s);
    memcpy(b + k, data, n);
    return k + n;
}

static const unsigned char pixels[12] = {0, 255, 51, 102, 1, 2, 3, 4, 5, 6, 7, 8};
static const uint32_t imdims[3] = {3, 2, 2};

/* 3 images of 2x2 and 3 labels, as files name.im / name.lb */
static void idx_pair(const char *im, const char *lb, const unsigned char *labels, uint32_t nl,
                     char **imp, char **lbp)
{
    unsigned char b[64];
    *imp = put(im, b, idx_bytes(b, 0x803, 3, imdims, pixels, 12));
    *lbp = put(lb, b, idx_bytes(b, 0x801, 1, &nl, labels, nl));
}

static void expect_idx_fail(const char *im, const char *lb, const char *want)
{
    Diags d;
    diags_init(&d);
    RtLoadOpts o;
    rt_load_opts_default(&o);
    Dataset ds;
    ck_assert(!rt_load_idx(im, lb, &o, &ds, &d));
    ck_assert_int_eq(ds.ncols, 0);
    th_expect_diag(&d, want);
    diags_free(&d);
}

START_TEST(idx_valid)
{
    static const unsigned char labels[3] = {0, 9, 3};
    char *im, *lb;
    idx_pair("im.idx.gz", "lb.idx", labels, 3, &im, &lb);
    Diags d;
    diags_init(&d);
    RtLoadOpts o;
    rt_load_opts_default(&o);
    Dataset ds;
    ck_assert(rt_load_idx(im, lb, &o, &ds, &d));
    ck_assert_int_eq(ds.n, 3);
    const DataCol *x = col(&ds, "x"), *y = col(&ds, "y");
    char buf[64];
    ck_assert_str_eq(rt_tensor_type_str(x->t, buf, sizeof buf), "f32[3,2,2,1]");
    ck_assert_str_eq(rt_tensor_type_str(y->t, buf, sizeof buf), "i32[3]");
    ck_assert(rt_col_get(x, 1) == 1.0f && rt_col_get(x, 2) == 0.2f && rt_col_get(x, 0) == 0.0f);
    ck_assert(rt_col_get(y, 1) == 9 && rt_col_get(y, 2) == 3);
    rt_dataset_free(&ds);

    o.scale = false;
    o.one_hot = true;
    o.dt = DT_F64;
    o.x_name = "image";
    o.y_name = "label";
    ck_assert(rt_load_idx(im, lb, &o, &ds, &d));
    x = col(&ds, "image"), y = col(&ds, "label");
    ck_assert_str_eq(rt_tensor_type_str(x->t, buf, sizeof buf), "f64[3,2,2,1]");
    ck_assert_str_eq(rt_tensor_type_str(y->t, buf, sizeof buf), "f64[3,10]");
    ck_assert(rt_col_get(x, 1) == 255.0);
    ck_assert(rt_col_get(y, 0) == 1 && rt_col_get(y, 10 + 9) == 1 && rt_col_get(y, 20 + 3) == 1);
    double sum = 0;
    for (int i = 0; i < 30; i++)
        sum += rt_col_get(y, i);
    ck_assert(sum == 3);
    rt_dataset_free(&ds);
    ck_assert_int_eq(d.n, 0);
    diags_free(&d);
    free(im);
    free(lb);
}
END_TEST

START_TEST(idx_corrupt)
{
    static const unsigned char labels[3] = {0, 9, 3}, bad[3] = {0, 10, 3};
    unsigned char b[64];
    char *im, *lb, *p;
    idx_pair("im.idx", "lb.idx", labels, 3, &im, &lb);

    p = put("m1.idx", b, idx_bytes(b, 0x801, 3, imdims, pixels, 12));
    expect_idx_fail(p, lb, "m1.idx: error: bad magic number 0x00000801 (expected 0x00000803 for "
                           "an IDX image file)");
    free(p);
    p = put("m2.idx", b, idx_bytes(b, 0x0d03, 3, imdims, pixels, 12));
    expect_idx_fail(p, lb, "m2.idx: error: element type 0x0d is not supported (byte 2; IDX image "
                           "files hold unsigned bytes, 0x08)");
    free(p);
    p = put("m3.idx", "PK\x03\x04zipfile", 11);
    expect_idx_fail(p, lb, "m3.idx: error: bad magic number 0x504b0304");
    free(p);
    p = put("lbad.idx", b, idx_bytes(b, 0x803, 3, imdims, pixels, 12));
    expect_idx_fail(im, p, "lbad.idx: error: bad magic number 0x00000803 (expected 0x00000801 for "
                           "an IDX label file)");
    free(p);
    uint32_t n2 = 2;
    p = put("l2.idx", b, idx_bytes(b, 0x801, 1, &n2, labels, 2));
    expect_idx_fail(im, p, "l2.idx: error: 2 labels, but");
    expect_idx_fail(im, p, "im.idx has 3 images");
    free(p);
    uint32_t n3 = 3;
    p = put("l3.idx.gz", b, idx_bytes(b, 0x801, 1, &n3, bad, 3));
    expect_idx_fail(im, p, "l3.idx.gz: error: label 10 at index 1 (byte 9) is out of range (10 "
                           "classes)");
    free(p);
    /* trailing bytes */
    size_t n = idx_bytes(b, 0x803, 3, imdims, pixels, 12);
    b[n] = 0;
    p = put("t.idx", b, n + 1);
    expect_idx_fail(p, lb, "t.idx: error: unexpected data after byte 28 (the header promises 3 "
                           "images of 2x2)");
    free(p);
    /* huge dimensions, tiny file */
    uint32_t hd[3] = {65535, 65535, 65535};
    p = put("h.idx", b, idx_bytes(b, 0x803, 3, hd, pixels, 12));
    expect_idx_fail(p, lb, "h.idx: error: IDX dimensions are too large (byte 12)");
    free(p);
    uint32_t md[3] = {100000, 28, 28};
    p = put("big.idx", b, idx_bytes(b, 0x803, 3, md, pixels, 12));
    expect_idx_fail(p, lb, "big.idx: error: truncated: the header promises 100000 images of 28x28 "
                           "(78400000 bytes from byte 16), but the data ends at byte 28");
    free(p);
    p = th_path(tmp, "nonexistent.idx");
    expect_idx_fail(p, lb, "nonexistent.idx: error: cannot open: No such file or directory");
    expect_idx_fail(tmp, lb, "error: cannot read: it is a directory");
    free(p);
    free(im);
    free(lb);
}
END_TEST

/* Every truncation of a valid image file, plain and gzip-compressed. */
START_TEST(idx_truncated_everywhere)
{
    static const unsigned char labels[3] = {0, 9, 3};
    unsigned char b[64];
    char *im, *lb;
    idx_pair("im.idx", "lb.idx", labels, 3, &im, &lb);
    size_t n = idx_bytes(b, 0x803, 3, imdims, pixels, 12);
    for (size_t k = 0; k < n; k++) {
        for (int gz = 0; gz < 2; gz++) {
            char *p = put(gz ? "cut.idx.gz" : "cut.idx", b, k), want[160];
            if (k < 4)
                snprintf(want, sizeof want, "truncated IDX header: %zu of 16 bytes", k);
            else if (k < 16)
                snprintf(want, sizeof want, "truncated IDX header: %zu of 16 bytes", k);
            else
                snprintf(want, sizeof want,
                         "cut.idx%s: error: truncated: the header promises 3 images of 2x2 (12 "
                         "bytes from byte 16), but the data ends at byte %zu",
                         gz ? ".gz" : "", k);
            if (k >= 4 || k == 0)
                expect_idx_fail(p, lb, want);
            else
                expect_idx_fail(p, lb, "error: ");
            free(p);
        }
    }
    free(im);
    free(lb);
}
END_TEST

/* A gzip file cut short or damaged in its compressed stream. */
START_TEST(idx_corrupt_gzip)
{
    static const unsigned char labels[3] = {0, 9, 3};
    unsigned char b[64];
    char *im, *lb;
    idx_pair("im.idx.gz", "lb.idx", labels, 3, &im, &lb);
    size_t len;
    char *gz = read_file(im, &len);
    char *p = th_path(tmp, "cut.gz");
    th_write(p, gz, len - 10); /* loses the CRC trailer and some data */
    expect_idx_fail(p, lb, "cut.gz: error: compressed data ends unexpectedly after byte");
    free(p);
    gz[len - 5] ^= 0x55; /* the CRC in the trailer */
    p = th_path(tmp, "crc.gz");
    th_write(p, gz, len);
    expect_idx_fail(p, lb, "crc.gz: error: corrupt compressed data after byte 0: incorrect data "
                           "check");
    free(p);
    gz[len - 5] ^= 0x55;
    gz[len - 2] ^= 0x55; /* the length in the trailer */
    p = th_path(tmp, "len.gz");
    th_write(p, gz, len);
    expect_idx_fail(p, lb, "len.gz: error: corrupt compressed data after byte 0: incorrect length "
                           "check");
    free(p);
    gz[len - 2] ^= 0x55;
    gz[12] ^= 0xff; /* inside the deflate stream */
    p = th_path(tmp, "deflate.gz");
    th_write(p, gz, len);
    expect_idx_fail(p, lb, "deflate.gz: error: ");
    free(p);
    (void)b;
    free(gz);
    free(im);
    free(lb);
}
END_TEST

/* Load im/lb with opts o and limit k; the data set must hold exactly the
 * first min(k, n) examples of the full load `all`. */
static void expect_idx_prefix(const char *im, const char *lb, const RtLoadOpts *o, int64_t k,
                              const Dataset *all)
{
    Diags d;
    diags_init(&d);
    RtLoadOpts ol = *o;
    ol.limit = k;
    Dataset ds;
    bool ok = rt_load_idx(im, lb, &ol, &ds, &d);
    if (!ok)
        diags_print(&d, stderr);
    ck_assert(ok);
    ck_assert_int_eq(d.n, 0);
    int64_t want = k > 0 && k < all->n ? k : all->n;
    ck_assert_int_eq(ds.n, want);
    ck_assert_int_eq(ds.ncols, all->ncols);
    for (int i = 0; i < all->ncols; i++) {
        const DataCol *ac = &all->cols[i], *c = col(&ds, ac->name);
        const Tensor *a = ac->t, *t = c->t;
        ck_assert_int_eq(t->dt, a->dt);
        ck_assert_int_eq(t->rank, a->rank);
        ck_assert_int_eq(t->dims[0], want);
        for (int r = 1; r < a->rank; r++)
            ck_assert_int_eq(t->dims[r], a->dims[r]);
        ck_assert_int_eq(t->numel, a->numel / (a->dims[0] ? a->dims[0] : 1) * want);
        ck_assert(!c->bytes == !ac->bytes);
        for (int64_t e = 0; e < t->numel; e++)
            ck_assert(rt_col_get(c, e) == rt_col_get(ac, e));
    }
    rt_dataset_free(&ds);
    diags_free(&d);
}

static void expect_idx_fail_limit(const char *im, const char *lb, int64_t k, const char *want)
{
    Diags d;
    diags_init(&d);
    RtLoadOpts o;
    rt_load_opts_default(&o);
    o.limit = k;
    Dataset ds;
    ck_assert_msg(!rt_load_idx(im, lb, &o, &ds, &d), "limit %lld accepted %s", (long long)k, im);
    ck_assert_int_eq(ds.ncols, 0);
    th_expect_diag(&d, want);
    diags_free(&d);
}

/* A limit of K examples gives exactly the first K of a full load, for
 * plain and gzip files, f32 and f64, class indices and one-hot. */
START_TEST(idx_limit)
{
    static const unsigned char labels[3] = {0, 9, 3};
    for (int gz = 0; gz < 2; gz++) {
        char *im, *lb;
        idx_pair(gz ? "im.idx.gz" : "im.idx", gz ? "lb.idx.gz" : "lb.idx", labels, 3, &im, &lb);
        for (int variant = 0; variant < 2; variant++) {
            RtLoadOpts o;
            rt_load_opts_default(&o);
            if (variant) {
                o.dt = DT_F64;
                o.one_hot = true;
                o.scale = false;
            }
            Diags d;
            diags_init(&d);
            Dataset all;
            ck_assert(rt_load_idx(im, lb, &o, &all, &d));
            ck_assert_int_eq(all.n, 3);
            for (int64_t k = 0; k <= 5; k++)
                expect_idx_prefix(im, lb, &o, k, &all);
            rt_dataset_free(&all);
            diags_free(&d);
        }
        free(im);
        free(lb);
    }
}
END_TEST

/* Under a limit the headers are still checked in full, and damage within
 * the examples read is still reported; damage beyond them is not read. */
START_TEST(idx_limit_errors)
{
    static const unsigned char labels[3] = {0, 9, 3}, bad[3] = {0, 10, 3};
    unsigned char b[64];
    char *im, *lb, *p;
    idx_pair("im.idx", "lb.idx", labels, 3, &im, &lb);
    RtLoadOpts o;
    rt_load_opts_default(&o);
    Diags d;
    diags_init(&d);
    Dataset all, one;
    ck_assert(rt_load_idx(im, lb, &o, &all, &d));
    rt_dataset_slice(&all, 0, 1, &one);

    p = put("m1.idx", b, idx_bytes(b, 0x801, 3, imdims, pixels, 12));
    expect_idx_fail_limit(p, lb, 1, "m1.idx: error: bad magic number 0x00000801 (expected "
                                    "0x00000803 for an IDX image file)");
    free(p);
    p = put("lbad.idx", b, idx_bytes(b, 0x803, 3, imdims, pixels, 12));
    expect_idx_fail_limit(im, p, 1, "lbad.idx: error: bad magic number 0x00000803 (expected "
                                    "0x00000801 for an IDX label file)");
    free(p);
    uint32_t n2 = 2;
    p = put("l2.idx", b, idx_bytes(b, 0x801, 1, &n2, labels, 2));
    expect_idx_fail_limit(im, p, 1, "l2.idx: error: 2 labels, but");
    free(p);
    uint32_t hd[3] = {65535, 65535, 65535};
    p = put("h.idx", b, idx_bytes(b, 0x803, 3, hd, pixels, 12));
    expect_idx_fail_limit(p, lb, 1, "h.idx: error: IDX dimensions are too large (byte 12)");
    free(p);

    /* label 10 at index 1: reported when read, not beyond the limit */
    uint32_t n3 = 3;
    for (int gz = 0; gz < 2; gz++) {
        p = put(gz ? "l3.idx.gz" : "l3.idx", b, idx_bytes(b, 0x801, 1, &n3, bad, 3));
        expect_idx_fail_limit(im, p, 2, "error: label 10 at index 1 (byte 9) is out of range (10 "
                                        "classes)");
        expect_idx_fail_limit(im, p, 0, "error: label 10 at index 1 (byte 9) is out of range");
        expect_idx_prefix(im, p, &o, 1, &one);
        free(p);
    }

    /* cut inside the second image: limit 1 loads, limits 2 and 3 fail */
    size_t n = idx_bytes(b, 0x803, 3, imdims, pixels, 12);
    for (int gz = 0; gz < 2; gz++) {
        p = put(gz ? "cut.idx.gz" : "cut.idx", b, n - 6);
        char want[160];
        snprintf(want, sizeof want,
                 "cut.idx%s: error: truncated: the header promises 3 images of 2x2 (12 bytes "
                 "from byte 16), but the data ends at byte 22",
                 gz ? ".gz" : "");
        expect_idx_fail_limit(p, lb, 2, want);
        expect_idx_fail_limit(p, lb, 3, want);
        expect_idx_prefix(p, lb, &o, 1, &one);
        free(p);
    }

    /* trailing bytes are only looked for when every example is read */
    b[n] = 0;
    p = put("t.idx", b, n + 1);
    expect_idx_fail_limit(p, lb, 3, "t.idx: error: unexpected data after byte 28 (the header "
                                    "promises 3 images of 2x2)");
    expect_idx_fail_limit(p, lb, 4, "t.idx: error: unexpected data after byte 28");
    expect_idx_prefix(p, lb, &o, 2, &all);
    free(p);

    /* a gzip file cut in its second half: the first examples load, a full
     * read reports the cut */
    enum { BIG = 2000, PX = 28 * 28 };
    unsigned char *big = xmalloc(16 + (size_t)BIG * PX), blab[8 + BIG];
    uint32_t bd[3] = {BIG, 28, 28}, bn = BIG;
    uint64_t st = 88172645463325252ull;
    for (size_t i = 0; i < (size_t)BIG * PX; i++) {
        st ^= st << 13, st ^= st >> 7, st ^= st << 17; /* incompressible pixels */
        big[16 + i] = (unsigned char)st;
    }
    size_t nb = idx_bytes(big, 0x803, 3, bd, big + 16, (size_t)BIG * PX);
    for (int i = 0; i < BIG; i++)
        blab[8 + i] = (unsigned char)(i % 10);
    char *blp = put("big-lb.idx", blab, idx_bytes(blab, 0x801, 1, &bn, blab + 8, BIG));
    char *bip = put("big-im.idx.gz", big, nb);
    Dataset ball;
    ck_assert(rt_load_idx(bip, blp, &o, &ball, &d));
    size_t glen;
    char *gzb = read_file(bip, &glen);
    p = th_path(tmp, "big-cut.gz");
    th_write(p, gzb, glen / 2);
    expect_idx_fail_limit(p, blp, 0, "big-cut.gz: error: compressed data ends unexpectedly after "
                                     "byte");
    expect_idx_fail_limit(p, blp, BIG - 10, "big-cut.gz: error: compressed data ends unexpectedly");
    expect_idx_prefix(p, blp, &o, 10, &ball);
    free(p);
    free(gzb);
    free(bip);
    free(blp);
    free(big);
    rt_dataset_free(&ball);
    rt_dataset_free(&one);
    rt_dataset_free(&all);
    diags_free(&d);
    free(im);
    free(lb);
}
END_TEST

#define FMNIST "/usr/share/datasets/fashion-mnist"

START_TEST(fashion_mnist_real)
{
    if (access(FMNIST "/t10k-images-idx3-ubyte.gz", R_OK) != 0) {
        fprintf(stderr, "fashion_mnist_real: %s not installed, skipped\n", FMNIST);
        return;
    }
    Diags d;
    diags_init(&d);
    RtLoadOpts o;
    rt_load_opts_default(&o);
    Dataset ds;
    ck_assert(rt_load_fashion_mnist(FMNIST, "test", &o, &ds, &d));
    ck_assert_int_eq(ds.n, 10000);
    const DataCol *x = col(&ds, "x"), *y = col(&ds, "y");
    char buf[64];
    ck_assert_str_eq(rt_tensor_type_str(x->t, buf, sizeof buf), "f32[10000,28,28,1]");
    ck_assert_str_eq(rt_tensor_type_str(y->t, buf, sizeof buf), "i32[10000]");
    ck_assert(rt_col_get(y, 0) == 9); /* the first t10k label: an ankle boot */
    int counts[10] = {0};
    for (int64_t i = 0; i < y->t->numel; i++) {
        int v = (int)rt_col_get(y, i);
        ck_assert(v >= 0 && v < 10);
        counts[v]++;
    }
    for (int c = 0; c < 10; c++)
        ck_assert_int_eq(counts[c], 1000);
    double lo = 1, hi = 0;
    for (int64_t i = 0; i < x->t->numel; i++)
        lo = fmin(lo, rt_col_get(x, i)), hi = fmax(hi, rt_col_get(x, i));
    ck_assert(lo == 0.0 && hi == 1.0);
    rt_dataset_free(&ds);
    ck_assert(rt_load_fashion_mnist(FMNIST, "train", &o, &ds, &d));
    ck_assert_int_eq(ds.n, 60000);
    /* the images stay bytes: 47 MB, not 188 MB of f32 */
    ck_assert_ptr_nonnull(col(&ds, "x")->bytes);
    ck_assert_int_eq(rt_dataset_bytes(&ds), 60000 * 784 + 60000 * 4);
    y = col(&ds, "y");
    memset(counts, 0, sizeof counts);
    for (int64_t i = 0; i < y->t->numel; i++)
        counts[(int)rt_col_get(y, i)]++;
    for (int c = 0; c < 10; c++)
        ck_assert_int_eq(counts[c], 6000);
    expect_idx_prefix(FMNIST "/train-images-idx3-ubyte.gz", FMNIST "/train-labels-idx1-ubyte.gz",
                      &o, 2560, &ds);
    rt_dataset_free(&ds);
    ck_assert(!rt_load_fashion_mnist(FMNIST, "validation", &o, &ds, &d));
    th_expect_diag(&d, "modelc: error: unknown data split 'validation' (expected 'train' or 'test')");
    ck_assert(!rt_load_fashion_mnist("/nonexistent", "train", &o, &ds, &d));
    th_expect_diag(&d, "/nonexistent/train-images-idx3-ubyte.gz: error: cannot open: No such file");
    diags_free(&d);
}
END_TEST

/* ---- CSV ---- */

static void expect_csv_fail(const char *name, const char *text, const RtLoadOpts *o,
                            const char *want)
{
    char *p = put_str(name, text);
    Diags d;
    diags_init(&d);
    Dataset ds;
    ck_assert_msg(!rt_load_csv(p, o, &ds, &d), "accepted %s: %s", name, text);
    ck_assert_int_eq(ds.ncols, 0);
    th_expect_diag(&d, want);
    diags_free(&d);
    free(p);
}

static Dataset load_csv_ok(const char *name, const char *text, const RtLoadOpts *o)
{
    char *p = put_str(name, text);
    Diags d;
    diags_init(&d);
    Dataset ds;
    bool ok = rt_load_csv(p, o, &ds, &d);
    if (!ok)
        diags_print(&d, stderr);
    ck_assert(ok);
    diags_free(&d);
    free(p);
    return ds;
}

START_TEST(csv_valid)
{
    RtLoadOpts o;
    rt_load_opts_default(&o);
    Dataset ds = load_csv_ok("a.csv", "label,p1,p2\n1,0.5,2\n\n0, -1e-3 ,\"3\"\r\n", &o);
    ck_assert_int_eq(ds.n, 2);
    const DataCol *x = col(&ds, "x"), *y = col(&ds, "y");
    char buf[64];
    ck_assert_str_eq(rt_tensor_type_str(x->t, buf, sizeof buf), "f32[2,2]");
    ck_assert_str_eq(rt_tensor_type_str(y->t, buf, sizeof buf), "i32[2]");
    ck_assert(rt_col_get(x, 0) == 0.5f && rt_col_get(x, 1) == 2.0f && rt_col_get(x, 2) == -1e-3f &&
              rt_col_get(x, 3) == 3.0f);
    ck_assert(rt_col_get(y, 0) == 1 && rt_col_get(y, 1) == 0);
    rt_dataset_free(&ds);

    /* no header, label by index, float targets, gzip */
    o.csv_label_index = 2;
    o.classes = 0;
    o.dt = DT_F64;
    char *p = put_str("b.csv.gz", "1,2,3.5\n4,5,6.25\n7,8,9\n");
    Diags d;
    diags_init(&d);
    ck_assert(rt_load_csv(p, &o, &ds, &d));
    y = col(&ds, "y");
    ck_assert_str_eq(rt_tensor_type_str(y->t, buf, sizeof buf), "f64[3,1]");
    ck_assert(rt_col_get(y, 1) == 6.25);
    ck_assert(rt_col_get(col(&ds, "x"), 5) == 8);
    rt_dataset_free(&ds);
    free(p);

    /* label by name, one-hot; no label at all */
    rt_load_opts_default(&o);
    o.csv_label = "cls";
    o.one_hot = true;
    o.classes = 3;
    ds = load_csv_ok("c.csv", "a,cls\n0.1,2\n0.2,0\n", &o);
    y = col(&ds, "y");
    ck_assert_str_eq(rt_tensor_type_str(y->t, buf, sizeof buf), "f32[2,3]");
    ck_assert(rt_col_get(y, 2) == 1 && rt_col_get(y, 3) == 1 && rt_col_get(y, 0) == 0);
    rt_dataset_free(&ds);
    rt_load_opts_default(&o);
    o.csv_label_index = -1;
    ds = load_csv_ok("d.csv", "1,2\n3,4\n", &o);
    ck_assert_ptr_null(rt_dataset_col(&ds, "y"));
    ck_assert_int_eq(col(&ds, "x")->t->dims[1], 2);
    rt_dataset_free(&ds);
    /* a numeric first row forced to be a header */
    o.csv_header = 1;
    ds = load_csv_ok("e.csv", "1,2\n3,4\n", &o);
    ck_assert_int_eq(ds.n, 1);
    rt_dataset_free(&ds);
    diags_free(&d);
}
END_TEST

/* A CSV file may hold up to 8 GiB: more lines, fields and columns than an
 * int counts. The reader counts in 64 bits and a location clamps what an
 * int cannot hold; a label's text in a message is cut like a field's. */
START_TEST(csv_large_counts)
{
    ck_assert_int_eq(rt_loc_int(INT64_C(3000000000)), INT32_MAX);
    ck_assert_int_eq(rt_loc_int(INT64_C(1) << 32), INT32_MAX);
    ck_assert_int_eq(rt_loc_int(INT32_MAX), INT32_MAX);
    ck_assert_int_eq(rt_loc_int(17), 17);
    RtLoadOpts o;
    rt_load_opts_default(&o);
    char text[200];
    snprintf(text, sizeof text, "1,2\n1.%s,3\n", "5000000000000000000000000000000000000000000000000");
    expect_csv_fail("f.csv", text, &o,
                    "f.csv:2:1: error: label '1.50000000000000000000000000000000000000' is not an integer\n");
}
END_TEST

START_TEST(csv_corrupt)
{
    RtLoadOpts o;
    rt_load_opts_default(&o);
    expect_csv_fail("f.csv", "label,a,b\n1,2,3\n2,4,abc\n", &o,
                    "f.csv:3:5: error: non-numeric field 'abc'");
    expect_csv_fail("f.csv", "label,a,b\n1,2,3\n2,4\n1,1,1\n", &o,
                    "f.csv:3:4: error: expected 3 fields, got 2");
    expect_csv_fail("f.csv", "1,2,3\n\n\n2,4,5,6\n", &o,
                    "f.csv:4:7: error: expected 3 fields, got 4");
    expect_csv_fail("f.csv", "1,2,3\n12,4,5\n", &o,
                    "f.csv:2:1: error: label 12 is out of range (10 classes)");
    expect_csv_fail("f.csv", "1,2,3\n-1,4,5\n", &o, "f.csv:2:1: error: label -1 is out of range");
    expect_csv_fail("f.csv", "1,2,3\n1.5,2,3\n", &o, "f.csv:2:1: error: label '1.5' is not an integer");
    expect_csv_fail("f.csv", "1,2,3\n1,nan,3\n", &o, "f.csv:2:3: error: non-numeric field 'nan'");
    expect_csv_fail("f.csv", "1,2,3\n1,inf,3\n", &o, "f.csv:2:3: error: non-numeric field 'inf'");
    expect_csv_fail("f.csv", "1,2,3\n1,0x10,3\n", &o, "f.csv:2:3: error: non-numeric field '0x10'");
    expect_csv_fail("f.csv", "1,2,3\n1,1e999,3\n", &o, "f.csv:2:3: error: non-numeric field '1e999'");
    expect_csv_fail("f.csv", "1,2,3\n1,,3\n", &o, "f.csv:2:3: error: non-numeric field ''");
    expect_csv_fail("f.csv", "1,2,3\n2,\"4,5\n", &o, "f.csv:2:3: error: unterminated quoted field");
    expect_csv_fail("f.csv", "1,2,3\n1,\"2\"x,3\n", &o,
                    "f.csv:2:6: error: unexpected text after a quoted field");
    expect_csv_fail("f.csv", "", &o, "f.csv: error: the file contains no data");
    expect_csv_fail("f.csv", "\n  \n", &o, "f.csv: error: the file contains no data");
    expect_csv_fail("f.csv", "a,b\n", &o, "f.csv: error: the file contains a header but no data rows");
    o.csv_label = "target";
    expect_csv_fail("f.csv", "label,a\n1,2\n", &o,
                    "f.csv:1:1: error: no column named 'target' in the header");
    expect_csv_fail("f.csv", "1,2\n", &o,
                    "f.csv:1:1: error: the label column is named 'target', but the file has no "
                    "header row");
    o.csv_label = NULL;
    o.csv_label_index = 5;
    expect_csv_fail("f.csv", "1,2\n", &o,
                    "f.csv:1:1: error: label column 5 is out of range (the file has 2 columns)");
    Diags d;
    diags_init(&d);
    Dataset ds;
    char *p = put("nul.csv", "1,2\0,3\n", 7);
    ck_assert(!rt_load_csv(p, &o, &ds, &d));
    th_expect_diag(&d, "nul.csv: error: the file contains NUL bytes; is it a binary file?");
    free(p);
    p = th_path(tmp, "missing.csv");
    ck_assert(!rt_load_csv(p, &o, &ds, &d));
    th_expect_diag(&d, "missing.csv: error: cannot open: No such file or directory");
    diags_free(&d);
    free(p);
}
END_TEST

/* ---- NPY ---- */

/* An NPY file with the given version and header dict (padded). */
static size_t npy_bytes(unsigned char *b, int version, const char *dict, const void *data,
                        size_t n)
{
    size_t pre = version == 1 ? 10 : 12, dl = strlen(dict), hl = dl + 1;
    while ((pre + hl) % 64)
        hl++;
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)version;
    b[7] = 0;
    for (size_t i = 0; i < pre - 8; i++)
        b[8 + i] = (unsigned char)(hl >> (8 * i));
    memcpy(b + pre, dict, dl);
    memset(b + pre + dl, ' ', hl - dl - 1);
    b[pre + hl - 1] = '\n';
    if (n)
        memcpy(b + pre + hl, data, n);
    return pre + hl + n;
}

static char *put_npy(const char *name, int version, const char *dict, const void *data, size_t n)
{
    unsigned char b[512];
    return put(name, b, npy_bytes(b, version, dict, data, n));
}

static void expect_npy_fail(const char *p, const char *want)
{
    Diags d;
    diags_init(&d);
    ck_assert_ptr_null(rt_npy_read(p, &d));
    th_expect_diag(&d, want);
    diags_free(&d);
}

static void expect_npy_bad(const char *dict, const void *data, size_t n, const char *want)
{
    char *p = put_npy("bad.npy", 1, dict, data, n);
    expect_npy_fail(p, want);
    free(p);
}

START_TEST(npy_valid)
{
    float f[6] = {1, 2, 3, 4, 5, 6.5f};
    Diags d;
    diags_init(&d);
    char buf[64];
    for (int v = 1; v <= 3; v++) {
        char *p = put_npy("f.npy", v, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                          f, sizeof f);
        Tensor *t = rt_npy_read(p, &d);
        ck_assert_ptr_nonnull(t);
        ck_assert_str_eq(rt_tensor_type_str(t, buf, sizeof buf), "f32[2,3]");
        ck_assert(rt_get(t, 5) == 6.5f);
        rt_tensor_free(t);
        free(p);
    }
    int64_t i8[3] = {-5, 7, 2147483647};
    char *p = put_npy("i.npy", 1, "{\"shape\": (3,), \"fortran_order\": False, \"descr\": \"<i8\"}",
                      i8, sizeof i8);
    Tensor *t = rt_npy_read(p, &d);
    ck_assert_str_eq(rt_tensor_type_str(t, buf, sizeof buf), "i32[3]");
    ck_assert(rt_get(t, 0) == -5 && rt_get(t, 2) == 2147483647);
    rt_tensor_free(t);
    free(p);
    double s = 0.25;
    p = put_npy("s.npy", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': ()}", &s, 8);
    t = rt_npy_read(p, &d);
    ck_assert_int_eq(t->rank, 0);
    ck_assert(rt_get(t, 0) == 0.25);
    rt_tensor_free(t);
    free(p);
    int16_t i2[2] = {-300, 300};
    p = put_npy("i2.npy", 1, "{'descr': '<i2', 'fortran_order': False, 'shape': (2,)}", i2, 4);
    t = rt_npy_read(p, &d);
    ck_assert(rt_get(t, 0) == -300 && rt_get(t, 1) == 300);
    rt_tensor_free(t);
    free(p);
    p = put_npy("e.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 5)}", NULL, 0);
    t = rt_npy_read(p, &d);
    ck_assert_str_eq(rt_tensor_type_str(t, buf, sizeof buf), "f32[0,5]");
    rt_tensor_free(t);
    free(p);

    /* write and read back */
    int64_t dims[2] = {3, 2};
    Tensor *w = rt_tensor_new(DT_F64, 2, dims);
    for (int i = 0; i < 6; i++)
        rt_set(w, i, i / 7.0);
    p = th_path(tmp, "w.npy");
    ck_assert(rt_npy_write(p, w, &d));
    size_t len;
    char *raw = read_file(p, &len);
    ck_assert_uint_eq(len, 128 + 48); /* the header is padded to 64-byte alignment */
    const char *hdr = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }";
    ck_assert(memcmp(raw + 10, hdr, strlen(hdr)) == 0);
    ck_assert_int_eq(raw[127], '\n');
    free(raw);
    t = rt_npy_read(p, &d);
    ck_assert(rt_tensor_same_shape(t, w) && memcmp(t->data, w->data, 48) == 0);
    rt_tensor_free(t);
    rt_tensor_free(w);
    free(p);
    int64_t three = 3;
    w = rt_tensor_new(DT_I32, 1, &three);
    rt_set(w, 2, -9);
    p = th_path(tmp, "v.npy");
    ck_assert(rt_npy_write(p, w, &d));
    raw = read_file(p, &len);
    ck_assert_ptr_nonnull(strstr(raw + 10, "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }"));
    free(raw);
    t = rt_npy_read(p, &d);
    ck_assert(rt_get(t, 2) == -9);
    rt_tensor_free(t);
    rt_tensor_free(w);
    free(p);
    ck_assert_int_eq(d.n, 0);
    diags_free(&d);
}
END_TEST

START_TEST(npy_corrupt)
{
    float f[6] = {1, 2, 3, 4, 5, 6};
    char *p = put("magic.npy", "\x93NUMPZ\x01\x00\x10\x00", 10);
    expect_npy_fail(p, "magic.npy: error: not an NPY file (the magic string \\x93NUMPY is missing)");
    free(p);
    p = put("v4.npy", "\x93NUMPY\x04\x00\x10\x00", 10);
    expect_npy_fail(p, "v4.npy: error: unsupported NPY version 4.0 (byte 6)");
    free(p);
    p = put("short.npy", "\x93NUMPY\x01", 7);
    expect_npy_fail(p, "short.npy: error: truncated NPY header: 7 of 10 bytes");
    free(p);
    p = put("hdr.npy", "\x93NUMPY\x01\x00\x40\x00{'descr'", 18);
    expect_npy_fail(p, "hdr.npy: error: truncated NPY header: 8 of 64 bytes after byte 10");
    free(p);
    const char *ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    expect_npy_bad("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", f, 16,
                   "bad.npy: error: object arrays are not supported (descr '|O')");
    expect_npy_bad("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", f, 24,
                   "bad.npy: error: Fortran-order arrays are not supported (fortran_order is True)");
    expect_npy_bad("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", f, 24,
                   "bad.npy: error: big-endian data is not supported (descr '>f4')");
    expect_npy_bad("{'descr': '<f2', 'fortran_order': False, 'shape': (2, 3), }", f, 12,
                   "bad.npy: error: unsupported dtype '<f2'");
    expect_npy_bad("{'descr': '<U4', 'fortran_order': False, 'shape': (1,), }", f, 16,
                   "bad.npy: error: unsupported dtype '<U4'");
    expect_npy_bad("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", f, 8,
                   "bad.npy: error: structured arrays are not supported");
    expect_npy_bad("{'descr': '<f4', 'fortran_order': False}", f, 24,
                   "bad.npy: error: bad NPY header at byte 49: missing key 'shape'");
    expect_npy_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}", f, 24,
                   "bad.npy: error: bad NPY header at byte 68: unknown key 'x'");
    expect_npy_bad("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}", f,
                   24, "bad NPY header at byte 27: duplicate key 'descr'");
    expect_npy_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (-2, 3), }", f, 24,
                   "bad NPY header at byte 61: 'shape' must be a tuple of non-negative integers");
    expect_npy_bad("{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3], }", f, 24,
                   "'shape' must be a tuple of non-negative integers");
    expect_npy_bad("{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3), }", f, 24,
                   "'fortran_order' must be True or False");
    expect_npy_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1), }", f, 4,
                   "more than 6 dimensions");
    expect_npy_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999, "
                   "99999999999), }",
                   f, 4, "bad.npy: error: the NPY shape is too large");
    expect_npy_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } junk", f, 24,
                   "unexpected text after the dictionary");
    int64_t big[2] = {1, 3000000000LL};
    expect_npy_bad("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", big, 16,
                   "bad.npy: error: value 3000000000 at index 1 (byte 136) does not fit in i32");
    /* trailing data and truncation at several offsets */
    unsigned char b[512];
    size_t n = npy_bytes(b, 1, ok, f, 24);
    p = put("trail.npy", b, n + 3);
    expect_npy_fail(p, "trail.npy: error: unexpected data after byte 152 (the header promises 24 "
                       "bytes)");
    free(p);
    size_t cuts[] = {128, 129, 134, 144, 151};
    for (size_t i = 0; i < ARRAY_LEN(cuts); i++) {
        char want[160];
        snprintf(want, sizeof want, "cut.npy: error: truncated: the header promises 24 bytes of "
                                    "data from byte 128, but the data ends at byte %zu",
                 cuts[i]);
        p = put("cut.npy", b, cuts[i]);
        expect_npy_fail(p, want);
        free(p);
    }
    for (size_t k = 0; k < 128; k++) { /* inside the header: always an error */
        p = put("cuth.npy", b, k);
        expect_npy_fail(p, "cuth.npy: error: ");
        free(p);
    }
}
END_TEST

START_TEST(npy_dataset)
{
    unsigned char px[6] = {0, 255, 51, 0, 0, 0};
    int32_t lab[2] = {3, 1}, badlab[2] = {3, 11};
    float fl[2] = {3, 1};
    char *x = put_npy("x.npy", 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3), }",
                      px, 6);
    char *y = put_npy("y.npy", 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }",
                      lab, 8);
    Diags d;
    diags_init(&d);
    RtLoadOpts o;
    rt_load_opts_default(&o);
    Dataset ds;
    ck_assert(rt_load_npy(x, y, &o, &ds, &d));
    char buf[64];
    ck_assert_str_eq(rt_tensor_type_str(col(&ds, "x")->t, buf, sizeof buf), "f32[2,3]");
    ck_assert(rt_col_get(col(&ds, "x"), 1) == 1.0f);
    ck_assert(rt_col_get(col(&ds, "x"), 2) == 0.2f);
    ck_assert(rt_col_get(col(&ds, "y"), 0) == 3);
    rt_dataset_free(&ds);
    char *yb = put_npy("yb.npy", 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }",
                       badlab, 8);
    ck_assert(!rt_load_npy(x, yb, &o, &ds, &d));
    th_expect_diag(&d, "yb.npy: error: label 11 at index 1 (byte 132) is out of range (10 classes)");
    char *y3 = put_npy("y3.npy", 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (1,), }",
                       lab, 4);
    ck_assert(!rt_load_npy(x, y3, &o, &ds, &d));
    th_expect_diag(&d, "y3.npy: error: 1 labels, but");
    char *yf = put_npy("yf.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
                       fl, 8);
    ck_assert(!rt_load_npy(x, yf, &o, &ds, &d));
    th_expect_diag(&d, "yf.npy: error: class labels must be integers, not float32");
    o.classes = 0;
    ck_assert(rt_load_npy(x, yf, &o, &ds, &d));
    ck_assert(rt_col_get(col(&ds, "y"), 1) == 1.0f);
    rt_dataset_free(&ds);
    diags_free(&d);
    free(x), free(y), free(yb), free(y3), free(yf);
}
END_TEST

/* Shapes whose element count overflows, wraps back to zero, or hides
 * behind a zero dimension are rejected by every loader, with the same
 * size check as model shapes (ir_dims_numel), never a wrapped count. */
START_TEST(shape_overflow)
{
    static const char *const shapes[] = {"(4611686018427387904, 4, 0)", "(0, 4611686018427387904, 4)",
                                         "(0, 1099511627776, 1099511627776)",
                                         "(99999999999, 99999999999, 99999999999)"};
    static const char *const descrs[] = {"<f4", "|u1", "<i4"};
    float f[4] = {0};
    RtLoadOpts o;
    rt_load_opts_default(&o);
    o.classes = 0;
    Diags d;
    diags_init(&d);
    for (int i = 0; i < ARRAY_LEN(shapes); i++)
        for (int j = 0; j < ARRAY_LEN(descrs); j++) {
            char dict[160];
            snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                     descrs[j], shapes[i]);
            char *p = put_npy("big.npy", 1, dict, f, 0);
            expect_npy_fail(p, "big.npy: error: the NPY shape is too large");
            Dataset ds;
            ck_assert(!rt_load_npy(p, NULL, &o, &ds, &d));
            ck_assert_int_eq(ds.ncols, 0);
            th_expect_diag(&d, "big.npy: error: the NPY shape is too large");
            free(p);
        }
    /* IDX: three 32-bit dimensions, the first zero */
    static const unsigned char labels[1] = {0};
    uint32_t zero = 0, dims[3] = {0, 4294967295u, 4294967295u};
    unsigned char b[64];
    char *im = put("zim.idx", b, idx_bytes(b, 0x803, 3, dims, pixels, 0));
    char *lb = put("zlb.idx", b, idx_bytes(b, 0x801, 1, &zero, labels, 0));
    expect_idx_fail(im, lb, "zim.idx: error: IDX dimensions are too large");
    free(im), free(lb);
    diags_free(&d);
}
END_TEST

/* Flip every bit of a valid NPY, IDX and CSV file: a clean accept or a
 * clean diagnostic, never a crash (run under ASan/UBSan). */
START_TEST(bit_flips)
{
    float f[6] = {1, 2, 3, 4, 5, 6};
    unsigned char npy[512], idx[64];
    size_t nn = npy_bytes(npy, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f,
                          sizeof f);
    size_t ni = idx_bytes(idx, 0x803, 3, imdims, pixels, 12);
    static const unsigned char labels[3] = {0, 9, 3};
    char *im, *lb;
    idx_pair("im.idx", "lb.idx", labels, 3, &im, &lb);
    char csv[] = "label,a,b\n1,0.5,\"2\"\n0,-1e-3,3\n";
    size_t nc = strlen(csv);
    RtLoadOpts o;
    rt_load_opts_default(&o);
    int rejected = 0;
    for (int file = 0; file < 3; file++) {
        unsigned char *b = file == 0 ? npy : file == 1 ? idx : (unsigned char *)csv;
        size_t n = file == 0 ? nn : file == 1 ? ni : nc;
        for (size_t k = 0; k < n; k++) {
            for (int bit = 0; bit < 8; bit++) {
                b[k] ^= (unsigned char)(1u << bit);
                char *p = put("flip.bin", b, n);
                Diags d;
                diags_init(&d);
                Dataset ds;
                bool ok;
                if (file == 0) {
                    Tensor *t = rt_npy_read(p, &d);
                    ok = t != NULL;
                    rt_tensor_free(t);
                } else if (file == 1) {
                    ok = rt_load_idx(p, lb, &o, &ds, &d);
                    rt_dataset_free(&ds);
                } else {
                    ok = rt_load_csv(p, &o, &ds, &d);
                    rt_dataset_free(&ds);
                }
                ck_assert(ok == (d.nerrors == 0));
                rejected += !ok;
                b[k] ^= (unsigned char)(1u << bit);
                diags_free(&d);
                free(p);
            }
        }
    }
    ck_assert(rejected > 0);
    free(im);
    free(lb);
}
END_TEST

/* ---- safetensors data sets ---- */

/* Tensors named in RtLoadOpts.whole (inputs without N) keep their shape,
 * scalars and other example counts included, and every batch and slice
 * holds all of them; a data set of whole tensors only has one example. */
START_TEST(safetensors_whole_columns)
{
    TensorMap m;
    rt_map_init(&m);
    int64_t xd[2] = {4, 3}, wd[2] = {3, 2};
    Tensor *x = rt_tensor_new(DT_F32, 2, xd), *w = rt_tensor_new(DT_F32, 2, wd), *s = rt_tensor_new(DT_F32, 0, NULL);
    for (int i = 0; i < 12; i++)
        rt_set(x, i, i);
    for (int i = 0; i < 6; i++)
        rt_set(w, i, 10 + i);
    rt_set(s, 0, 7);
    rt_map_put(&m, "x", x);
    rt_map_put(&m, "w", w);
    rt_map_put(&m, "s", s);
    char *p = th_path(tmp, "whole.safetensors");
    Diags d;
    diags_init(&d);
    ck_assert(rt_safetensors_write(p, &m, NULL, &d));
    RtLoadOpts o;
    rt_load_opts_default(&o);
    const char *whole[2] = {"w", "s"};
    o.whole = whole;
    o.nwhole = 2;
    Dataset ds, part;
    ck_assert(rt_load_safetensors_dataset(p, &o, &ds, &d));
    ck_assert_int_eq(ds.n, 4);
    ck_assert(col(&ds, "w")->whole && !col(&ds, "x")->whole);
    TensorMap b;
    rt_map_init(&b);
    int64_t perm[4] = {3, 1, 0, 2};
    ck_assert_int_eq(rt_dataset_batch(&ds, perm, 1, 2, &b), 2);
    ck_assert_int_eq(rt_map_get(&b, "x")->dims[0], 2);
    ck_assert(rt_get(rt_map_get(&b, "x"), 0) == 3);
    Tensor *bw = rt_map_get(&b, "w");
    ck_assert(bw->rank == 2 && bw->dims[0] == 3 && rt_get(bw, 5) == 15);
    ck_assert(rt_map_get(&b, "s")->rank == 0 && rt_get(rt_map_get(&b, "s"), 0) == 7);
    rt_dataset_slice(&ds, 1, 2, &part);
    ck_assert_int_eq(part.n, 2);
    ck_assert(col(&part, "w")->t->dims[0] == 3);
    rt_dataset_free(&part);
    /* rows picked in any order, repeated; whole tensors as they are */
    rt_dataset_select(&ds, (const int64_t[]){3, 0, 3}, 3, &part);
    ck_assert_int_eq(part.n, 3);
    ck_assert(!col(&part, "x")->whole && col(&part, "x")->t->dims[0] == 3);
    ck_assert(rt_get(col(&part, "x")->t, 0) == 9 && rt_get(col(&part, "x")->t, 3) == 0 &&
              rt_get(col(&part, "x")->t, 8) == 11);
    ck_assert(col(&part, "w")->whole && col(&part, "w")->t->dims[0] == 3 && rt_get(col(&part, "w")->t, 5) == 15);
    rt_dataset_free(&part);
    /* 8-bit data stays bytes */
    double value[256];
    for (int i = 0; i < 256; i++)
        value[i] = i / 2.0;
    unsigned char *bytes = xmalloc(8);
    for (int i = 0; i < 8; i++)
        bytes[i] = (unsigned char)(10 * i);
    ck_assert(rt_dataset_add_bytes(&ds, "b", DT_F32, 2, (const int64_t[]){4, 2}, bytes, value));
    rt_dataset_select(&ds, (const int64_t[]){2, 1}, 2, &part);
    const DataCol *bc = col(&part, "b");
    ck_assert(bc->bytes && bc->t->dims[0] == 2 && bc->t->dims[1] == 2);
    ck_assert(rt_col_get(bc, 0) == 20 && rt_col_get(bc, 1) == 25 && rt_col_get(bc, 2) == 10 &&
              rt_col_get(bc, 3) == 15);
    rt_dataset_free(&part);
    rt_dataset_free(&ds);
    rt_map_free(&b);
    /* whole tensors only: one example */
    rt_dataset_init(&ds);
    ck_assert(rt_dataset_add_whole(&ds, "w", rt_tensor_clone(w)));
    ck_assert_int_eq(ds.n, 1);
    ck_assert(rt_dataset_add(&ds, "x", rt_tensor_clone(x)));
    ck_assert_int_eq(ds.n, 4);
    rt_dataset_free(&ds);
    /* without the names, the scalar is an error as before */
    o.nwhole = 0;
    ck_assert(!rt_load_safetensors_dataset(p, &o, &ds, &d));
    th_expect_diag(&d, "tensor 's' is a scalar; data set tensors need a leading example dimension");
    rt_map_free(&m);
    diags_free(&d);
    free(p);
}
END_TEST

START_TEST(safetensors_dataset)
{
    TensorMap m;
    rt_map_init(&m);
    int64_t xd[2] = {4, 3}, yd[1] = {4}, zd[1] = {5};
    Tensor *x = rt_tensor_new(DT_F64, 2, xd), *y = rt_tensor_new(DT_I32, 1, yd);
    for (int i = 0; i < 12; i++)
        rt_set(x, i, i * 0.5);
    for (int i = 0; i < 4; i++)
        rt_set(y, i, i * 2);
    rt_map_put(&m, "x", x);
    rt_map_put(&m, "y", y);
    char *p = th_path(tmp, "data.safetensors");
    Diags d;
    diags_init(&d);
    ck_assert(rt_safetensors_write(p, &m, NULL, &d));
    RtLoadOpts o;
    rt_load_opts_default(&o);
    Dataset ds;
    ck_assert(rt_load_safetensors_dataset(p, &o, &ds, &d));
    ck_assert_int_eq(ds.n, 4);
    ck_assert_int_eq(col(&ds, "x")->t->dt, DT_F32);
    ck_assert(rt_col_get(col(&ds, "x"), 11) == 5.5f);
    ck_assert(rt_col_get(col(&ds, "y"), 3) == 6);
    rt_dataset_free(&ds);
    o.classes = 5;
    ck_assert(!rt_load_safetensors_dataset(p, &o, &ds, &d));
    th_expect_diag(&d, "data.safetensors: error: label 6 at index 3 of 'y' is out of range (5 "
                       "classes)");
    rt_map_put(&m, "z", rt_tensor_new(DT_F32, 1, zd));
    ck_assert(rt_safetensors_write(p, &m, NULL, &d));
    ck_assert(!rt_load_safetensors_dataset(p, &o, &ds, &d));
    th_expect_diag(&d, "data.safetensors: error: tensor 'z' has 5 examples, but 'x' has 4");
    rt_map_free(&m);
    rt_map_init(&m);
    rt_map_put(&m, "s", rt_tensor_new(DT_F32, 0, NULL));
    ck_assert(rt_safetensors_write(p, &m, NULL, &d));
    ck_assert(!rt_load_safetensors_dataset(p, &o, &ds, &d));
    th_expect_diag(&d, "tensor 's' is a scalar; data set tensors need a leading example dimension");
    rt_map_free(&m);
    rt_map_init(&m);
    ck_assert(rt_safetensors_write(p, &m, NULL, &d));
    ck_assert(!rt_load_safetensors_dataset(p, &o, &ds, &d));
    th_expect_diag(&d, "data.safetensors: error: the file contains no tensors");
    rt_map_free(&m);
    diags_free(&d);
    free(p);
}
END_TEST

/* ---- data set operations ---- */

static Dataset ramp(int64_t n)
{
    Dataset ds;
    rt_dataset_init(&ds);
    int64_t xd[2] = {n, 2};
    Tensor *x = rt_tensor_new(DT_F32, 2, xd), *y = rt_tensor_new(DT_I32, 1, &n);
    for (int64_t i = 0; i < n; i++) {
        rt_set(x, 2 * i, (double)i);
        rt_set(x, 2 * i + 1, -(double)i);
        rt_set(y, i, (double)(i % 10));
    }
    ck_assert(rt_dataset_add(&ds, "x", x));
    ck_assert(rt_dataset_add(&ds, "y", y));
    return ds;
}

START_TEST(shuffle_and_batches)
{
    Dataset ds = ramp(10);
    int64_t p1[10], p2[10], p3[10];
    rt_perm_identity(p1, 10);
    rt_perm_identity(p2, 10);
    rt_perm_identity(p3, 10);
    rt_shuffle(p1, 10, 42, 0);
    rt_shuffle(p2, 10, 42, 0);
    rt_shuffle(p3, 10, 42, 1);
    ck_assert(memcmp(p1, p2, sizeof p1) == 0);
    ck_assert(memcmp(p1, p3, sizeof p1) != 0);
    bool seen[10] = {0};
    for (int i = 0; i < 10; i++) {
        ck_assert(p1[i] >= 0 && p1[i] < 10 && !seen[p1[i]]);
        seen[p1[i]] = true;
    }
    /* every element lands in position 0 about equally often */
    int first[5] = {0};
    for (uint64_t e = 0; e < 5000; e++) {
        int64_t q[5];
        rt_perm_identity(q, 5);
        rt_shuffle(q, 5, 7, e);
        first[q[0]]++;
    }
    for (int i = 0; i < 5; i++)
        ck_assert_msg(abs(first[i] - 1000) < 150, "position 0 held %d %d times", i, first[i]);

    TensorMap b;
    rt_map_init(&b);
    ck_assert_int_eq(rt_dataset_batch(&ds, p1, 0, 4, &b), 4);
    Tensor *bx = rt_map_get(&b, "x");
    ck_assert_int_eq(bx->dims[0], 4);
    for (int k = 0; k < 4; k++) {
        ck_assert(rt_get(bx, 2 * k) == (double)p1[k]);
        ck_assert(rt_get(bx, 2 * k + 1) == -(double)p1[k]);
        ck_assert(rt_get(rt_map_get(&b, "y"), k) == (double)(p1[k] % 10));
    }
    ck_assert_int_eq(rt_dataset_batch(&ds, p1, 4, 4, &b), 4);
    ck_assert_ptr_eq(rt_map_get(&b, "x"), bx); /* same shape: reused */
    ck_assert(rt_get(bx, 0) == (double)p1[4]);
    ck_assert_int_eq(rt_dataset_batch(&ds, p1, 8, 4, &b), 2); /* the partial last batch */
    ck_assert_int_eq(rt_map_get(&b, "x")->dims[0], 2);
    ck_assert(rt_get(rt_map_get(&b, "x"), 2) == (double)p1[9]);
    ck_assert_int_eq(rt_dataset_batch(&ds, p1, 10, 4, &b), 0);
    ck_assert_int_eq(rt_dataset_batch(&ds, NULL, 3, 2, &b), 2);
    ck_assert(rt_get(rt_map_get(&b, "x"), 2) == 4.0);
    rt_map_free(&b);

    int64_t zd[1] = {3};
    ck_assert(!rt_dataset_add(&ds, "bad", rt_tensor_new(DT_F32, 1, zd)));
    ck_assert(!rt_dataset_add(&ds, "s", rt_tensor_new(DT_F32, 0, NULL)));
    ck_assert_int_eq(ds.ncols, 2);
    rt_dataset_free(&ds);
}
END_TEST

START_TEST(split_and_slice)
{
    Dataset ds = ramp(10), tr, va;
    Diags d;
    diags_init(&d);
    ck_assert(rt_dataset_split(&ds, 0.25, &tr, &va, &d));
    ck_assert_int_eq(tr.n, 7); /* floor(10 * 0.75) */
    ck_assert_int_eq(va.n, 3);
    ck_assert(rt_col_get(col(&va, "x"), 0) == 7.0);
    ck_assert(rt_col_get(col(&va, "y"), 2) == 9.0);
    ck_assert(rt_col_get(col(&tr, "x"), 13) == -6.0);
    rt_dataset_free(&tr);
    rt_dataset_free(&va);
    ck_assert(!rt_dataset_split(&ds, 0.0, &tr, &va, &d));
    th_expect_diag(&d, "modelc: error: validation fraction 0 is not between 0 and 1");
    ck_assert(!rt_dataset_split(&ds, 1.5, &tr, &va, &d));
    th_expect_diag(&d, "validation fraction 1.5 is not between 0 and 1");
    ck_assert(!rt_dataset_split(&ds, 1e-17, &tr, &va, &d));
    th_expect_diag(&d, "a validation fraction of 1e-17 leaves an empty validation set (10 examples "
                       "in all)");
    ck_assert(!rt_dataset_split(&ds, 0.99, &tr, &va, &d));
    th_expect_diag(&d, "leaves an empty training set");
    Dataset s;
    rt_dataset_slice(&ds, 8, 100, &s);
    ck_assert_int_eq(s.n, 2);
    ck_assert(rt_col_get(col(&s, "x"), 2) == 9.0);
    rt_dataset_free(&s);
    rt_dataset_free(&ds);
    diags_free(&d);
}
END_TEST

/* ---- 8-bit data kept as bytes ---- */

#define BN 37 /* examples of 4x4 bytes; every byte value occurs */

static unsigned char byte_px[BN * 16], byte_lb[BN];

/* byte_px/byte_lb loaded from IDX files, or (npy) from an NPY |u1 array
 * of shape (37, 16) and i32 labels. */
static Dataset load_bytes(bool npy, DType dt)
{
    for (int i = 0; i < BN * 16; i++)
        byte_px[i] = (unsigned char)(i * 97 + 13);
    int32_t lab[BN];
    for (int i = 0; i < BN; i++)
        lab[i] = byte_lb[i] = (unsigned char)(i * 7 % 10);
    RtLoadOpts o;
    rt_load_opts_default(&o);
    o.dt = dt;
    Diags d;
    diags_init(&d);
    Dataset ds;
    unsigned char b[BN * 16 + 256];
    char *im, *lb;
    if (!npy) {
        uint32_t dims[3] = {BN, 4, 4}, n = BN;
        im = put("b.im", b, idx_bytes(b, 0x803, 3, dims, byte_px, sizeof byte_px));
        lb = put("b.lb", b, idx_bytes(b, 0x801, 1, &n, byte_lb, BN));
        ck_assert(rt_load_idx(im, lb, &o, &ds, &d));
    } else {
        im = put("b.npy", b, npy_bytes(b, 1, "{'descr': '|u1', 'fortran_order': False, 'shape': "
                                             "(37, 16), }",
                                       byte_px, sizeof byte_px));
        lb = put("l.npy", b, npy_bytes(b, 1, "{'descr': '<i4', 'fortran_order': False, 'shape': "
                                             "(37,), }",
                                       lab, sizeof lab));
        ck_assert(rt_load_npy(im, lb, &o, &ds, &d));
    }
    ck_assert_int_eq(d.n, 0);
    diags_free(&d);
    free(im);
    free(lb);
    ck_assert_ptr_nonnull(col(&ds, "x")->bytes);
    ck_assert_ptr_null(col(&ds, "x")->t->data);
    ck_assert_int_eq(rt_dataset_bytes(&ds), BN * 16 + BN * 4);
    return ds;
}

/* The data of load_bytes converted to values up front, as the loaders did
 * before they kept bytes: IDX b * (1.0/255.0), NPY b / 255.0, then stored
 * as the dtype of x. */
static Dataset up_front(const Dataset *bytes, bool npy)
{
    const Tensor *x = col(bytes, "x")->t;
    Tensor *v = rt_tensor_new(x->dt, x->rank, x->dims);
    for (int64_t i = 0; i < v->numel; i++)
        rt_set(v, i, npy ? byte_px[i] / 255.0 : byte_px[i] * (1.0 / 255.0));
    Dataset ds;
    rt_dataset_init(&ds);
    ck_assert(rt_dataset_add(&ds, "x", v));
    ck_assert(rt_dataset_add(&ds, "y", rt_tensor_clone(col(bytes, "y")->t)));
    return ds;
}

/* Do the batches of a shuffled epoch (batch 8, so the last one is partial)
 * hold the same bits from a and b? */
static bool same_batches(const Dataset *a, const Dataset *b, uint64_t epoch)
{
    ck_assert_int_eq(a->n, b->n);
    ck_assert_int_ne(a->n % 8, 0);
    int64_t perm[BN];
    rt_perm_identity(perm, a->n);
    rt_shuffle(perm, a->n, 11, epoch);
    TensorMap ba, bb;
    rt_map_init(&ba);
    rt_map_init(&bb);
    bool same = true;
    for (int64_t s = 0; s < a->n; s += 8) {
        int64_t rows = rt_dataset_batch(a, perm, s, 8, &ba);
        ck_assert_int_eq(rt_dataset_batch(b, perm, s, 8, &bb), rows);
        ck_assert_int_eq(ba.n, bb.n);
        for (int i = 0; i < bb.n; i++) {
            const Tensor *ta = rt_map_get(&ba, bb.names[i]), *tb = bb.t[i];
            ck_assert(ta && ta->dt == tb->dt && rt_tensor_same_shape(ta, tb));
            ck_assert_int_eq(ta->dims[0], rows);
            same = same && memcmp(ta->data, tb->data, (size_t)rt_tensor_bytes(tb)) == 0;
        }
    }
    rt_map_free(&ba);
    rt_map_free(&bb);
    return same;
}

/* Batches gathered from bytes equal, bit for bit, those from the values
 * converted up front: IDX and NPY, f32 and f64, shuffled, with a partial
 * last batch, after a validation split, and after converting a column to
 * another dtype (as binding to a model input does). */
START_TEST(byte_batches)
{
    for (int npy = 0; npy < 2; npy++) {
        for (int f64 = 0; f64 < 2; f64++) {
            Dataset by = load_bytes(npy, f64 ? DT_F64 : DT_F32), ref = up_front(&by, npy);
            char buf[64], want[64];
            snprintf(want, sizeof want, npy ? "%s[37,16]" : "%s[37,4,4,1]", f64 ? "f64" : "f32");
            ck_assert_str_eq(rt_tensor_type_str(col(&by, "x")->t, buf, sizeof buf), want);
            for (uint64_t e = 0; e < 2; e++)
                ck_assert(same_batches(&by, &ref, e));
            for (int64_t i = 0; i < BN * 16; i++)
                ck_assert(rt_col_get(col(&by, "x"), i) == rt_col_get(col(&ref, "x"), i));
            Diags d;
            diags_init(&d);
            Dataset bt, bv, rtr, rv;
            ck_assert(rt_dataset_split(&by, 0.25, &bt, &bv, &d));
            ck_assert(rt_dataset_split(&ref, 0.25, &rtr, &rv, &d));
            ck_assert_ptr_nonnull(col(&bt, "x")->bytes);
            ck_assert_ptr_nonnull(col(&bv, "x")->bytes);
            ck_assert(same_batches(&bt, &rtr, 0) && same_batches(&bv, &rv, 1));
            DataCol *cb = &bt.cols[rt_dataset_find(&bt, "x")], *cr = &rtr.cols[rt_dataset_find(&rtr, "x")];
            rt_col_cast(cb, f64 ? DT_F32 : DT_F64);
            rt_col_cast(cr, f64 ? DT_F32 : DT_F64);
            ck_assert_ptr_nonnull(cb->bytes);
            ck_assert(same_batches(&bt, &rtr, 2));
            rt_col_cast(cb, DT_I32);
            rt_col_cast(cr, DT_I32);
            ck_assert(same_batches(&bt, &rtr, 3));
            Dataset other = up_front(&by, !npy); /* the other loader's arithmetic */
            ck_assert(same_batches(&by, &other, 0) == !f64); /* f32 rounds both alike */
            Dataset *all[] = {&by, &ref, &bt, &bv, &rtr, &rv, &other};
            for (size_t i = 0; i < ARRAY_LEN(all); i++)
                rt_dataset_free(all[i]);
            diags_free(&d);
        }
    }
}
END_TEST

/* In-order batches (rt_dataset_rows) are views into the data set where a
 * column is stored as values, and hold the same bits as rt_dataset_batch;
 * 8-bit data converted up front (rt_dataset_decode_bytes, within its
 * budget) equals the bytes' batches, and becomes views too. */
START_TEST(in_order_views)
{
    for (int npy = 0; npy < 2; npy++) {
        Dataset by = load_bytes(npy, DT_F32), ref = up_front(&by, npy);
        int xi = rt_dataset_find(&by, "x"), yi = rt_dataset_find(&by, "y");
        ck_assert(xi >= 0 && yi >= 0 && by.ncols == 2);
        /* not enough budget for x (BN * 16 floats): it stays bytes */
        ck_assert_int_eq(rt_dataset_decode_bytes(&by, BN * 16 * 4 - 1), 0);
        ck_assert_ptr_nonnull(by.cols[xi].bytes);
        for (int decoded = 0; decoded < 2; decoded++) {
            TensorMap out, bb;
            rt_map_init(&out);
            rt_map_init(&bb);
            Tensor views[2];
            for (int64_t s = 0; s < by.n + 8; s += 8) {
                int64_t rows = rt_dataset_rows(&by, s, 8, &out, views);
                ck_assert_int_eq(rows, s >= by.n ? 0 : s + 8 <= by.n ? 8 : by.n - s);
                ck_assert_int_eq(rt_dataset_batch(&ref, NULL, s, 8, &bb), rows);
                if (rows == 0) {
                    ck_assert(!views[0].data && !views[1].data);
                    continue;
                }
                /* labels are stored as values: a view, no copy */
                ck_assert_ptr_eq(views[yi].data, (char *)by.cols[yi].t->data + s * 4);
                ck_assert_int_eq(views[yi].dims[0], rows);
                ck_assert_int_eq(views[yi].numel, rows);
                const Tensor *x = decoded ? &views[xi] : rt_map_get(&out, "x");
                ck_assert(decoded ? views[xi].data != NULL : views[xi].data == NULL);
                if (decoded)
                    ck_assert_ptr_eq(x->data, (char *)by.cols[xi].t->data + s * 16 * 4);
                const Tensor *rx = rt_map_get(&bb, "x"), *ry = rt_map_get(&bb, "y");
                ck_assert(x && x->dt == rx->dt && rt_tensor_same_shape(x, rx));
                ck_assert(memcmp(x->data, rx->data, (size_t)rt_tensor_bytes(rx)) == 0);
                ck_assert(rt_tensor_same_shape(&views[yi], ry));
                ck_assert(memcmp(views[yi].data, ry->data, (size_t)rt_tensor_bytes(ry)) == 0);
            }
            rt_map_free(&out);
            rt_map_free(&bb);
            if (!decoded) {
                ck_assert_int_eq(rt_dataset_decode_bytes(&by, BN * 16 * 4), BN * 16 * 4);
                ck_assert_ptr_null(by.cols[xi].bytes);
                ck_assert_ptr_nonnull(by.cols[xi].t->data);
                ck_assert(same_batches(&by, &ref, 0)); /* shuffled batches: the same bits too */
            }
        }
        rt_dataset_free(&by);
        rt_dataset_free(&ref);
    }
}
END_TEST

START_TEST(uniform_dataset)
{
    Dataset a, b;
    ck_assert(rt_dataset_uniform(&a, 100000, DT_F32, "x", "y", -1, 1, 5));
    ck_assert(rt_dataset_uniform(&b, 100000, DT_F32, "x", "y", -1, 1, 5));
    const DataCol *x = col(&a, "x"), *y = col(&a, "y");
    char buf[64];
    ck_assert_str_eq(rt_tensor_type_str(x->t, buf, sizeof buf), "f32[100000,1]");
    ck_assert(memcmp(x->t->data, y->t->data, (size_t)rt_tensor_bytes(x->t)) == 0);
    ck_assert(memcmp(x->t->data, col(&b, "x")->t->data, (size_t)rt_tensor_bytes(x->t)) == 0);
    double sum = 0, lo = 1, hi = -1;
    for (int64_t i = 0; i < x->t->numel; i++) {
        double v = rt_col_get(x, i);
        sum += v;
        lo = fmin(lo, v), hi = fmax(hi, v);
    }
    ck_assert(lo >= -1 && hi <= 1 && lo < -0.999 && hi > 0.999);
    ck_assert_double_eq_tol(sum / 100000, 0.0, 0.01);
    rt_dataset_free(&a);
    rt_dataset_free(&b);
    ck_assert(rt_dataset_uniform(&a, 10, DT_F64, "in", NULL, -1, 1, 6));
    ck_assert_int_eq(a.ncols, 1);
    ck_assert_int_eq(col(&a, "in")->t->dt, DT_F64);
    rt_dataset_free(&a);
}
END_TEST


/* ---- plain text ---- */

static void text_opts(RtLoadOpts *o, int64_t T, bool seq, int classes)
{
    rt_load_opts_default(o);
    o->seq_len = T;
    o->seq_labels = seq;
    o->classes = classes;
}

START_TEST(text_valid)
{
    RtLoadOpts o;
    Diags d;
    diags_init(&d);
    Dataset ds;
    /* 11 bytes, T = 3: (11 - 1) / 3 = 3 windows; the last byte is only a label. */
    char *p = put_str("t.txt", "abcdefghij\n");
    text_opts(&o, 3, true, 128);
    ck_assert(rt_load_text(p, &o, &ds, &d));
    ck_assert_int_eq(ds.n, 3);
    const DataCol *x = col(&ds, "x"), *y = col(&ds, "y");
    ck_assert_int_eq(x->t->dt, DT_I32);
    ck_assert_int_eq(x->t->rank, 2);
    ck_assert_int_eq(x->t->dims[1], 3);
    ck_assert_int_eq(y->t->rank, 2);
    const char *want_x = "abcdefghi", *want_y = "bcdefghij";
    for (int i = 0; i < 9; i++) {
        ck_assert_int_eq((int)rt_col_get(x, i), want_x[i]);
        ck_assert_int_eq((int)rt_col_get(y, i), want_y[i]);
    }
    rt_dataset_free(&ds);
    /* Labels [N]: the byte after each window; names from the options. */
    text_opts(&o, 4, false, 0);
    o.x_name = "chars", o.y_name = "next";
    ck_assert(rt_load_text(p, &o, &ds, &d));
    ck_assert_int_eq(ds.n, 2);
    const DataCol *nx = col(&ds, "next");
    ck_assert_int_eq(nx->t->rank, 1);
    ck_assert_int_eq((int)rt_col_get(nx, 0), 'e');
    ck_assert_int_eq((int)rt_col_get(nx, 1), 'i');
    ck_assert_int_eq((int)rt_col_get(col(&ds, "chars"), 4), 'e');
    rt_dataset_free(&ds);
    free(p);
    /* Exactly T + 1 bytes: one example; gzip-compressed text reads the same. */
    p = put_str("t.txt.gz", "hello");
    text_opts(&o, 4, true, 256);
    ck_assert(rt_load_text(p, &o, &ds, &d));
    ck_assert_int_eq(ds.n, 1);
    ck_assert_int_eq((int)rt_col_get(col(&ds, "y"), 3), 'o');
    rt_dataset_free(&ds);
    free(p);
    /* Bytes above 0x7f are ids when the vocabulary has 256. */
    p = put("hi.txt", "\xc3\xa9t\xc3\xa9", 5);
    text_opts(&o, 2, true, 256);
    ck_assert(rt_load_text(p, &o, &ds, &d));
    ck_assert_int_eq((int)rt_col_get(col(&ds, "x"), 0), 0xc3);
    rt_dataset_free(&ds);
    free(p);
    ck_assert_int_eq(d.nerrors, 0);
    diags_free(&d);
}
END_TEST

static void expect_text_fail(const char *name, const void *buf, size_t len, int64_t T, int classes,
                             const char *want)
{
    Diags d;
    diags_init(&d);
    Dataset ds;
    RtLoadOpts o;
    text_opts(&o, T, true, classes);
    char *p = put(name, buf, len);
    ck_assert_msg(!rt_load_text(p, &o, &ds, &d), "%s loaded", name);
    ck_assert_int_eq(ds.n, 0);
    ck_assert_int_eq(ds.ncols, 0);
    th_expect_diag(&d, want);
    diags_free(&d);
    free(p);
}

START_TEST(text_corrupt)
{
    expect_text_fail("empty.txt", "", 0, 4, 128, "empty.txt: error: empty text file: no characters to learn from");
    expect_text_fail("short.txt", "abcd", 4, 4, 128,
                     "short.txt: error: text of 4 bytes is too short: one example needs 5 (a window of 4 "
                     "characters and the one after it)");
    expect_text_fail("bin.txt", "ab\ncd\0ef", 8, 2, 256,
                     "bin.txt:2:3: error: NUL byte (offset 5): text holds none; is it a binary file?");
    expect_text_fail("utf8.txt", "caf\xc3\xa9\n", 6, 2, 128,
                     "utf8.txt:1:4: error: byte 0xc3 (offset 3) is not a character id of the model: its "
                     "vocabulary has 128 ids (bytes 0x00 to 0x7f); the file is not 7-bit ASCII text");
    expect_text_fail("small.txt", "abz", 3, 1, 100,
                     "small.txt:1:3: error: byte 0x7a (offset 2) is not a character id of the model: its "
                     "vocabulary has 100 ids (bytes 0x00 to 0x63)");
    expect_text_fail("t.txt", "abc", 3, 0, 128, "t.txt: error: text data needs a window length of at least 1, got 0");
    /* A file that is not there, and corrupt gzip data, name the file. */
    Diags d;
    diags_init(&d);
    Dataset ds;
    RtLoadOpts o;
    text_opts(&o, 2, true, 128);
    char *p = th_path(tmp, "missing.txt");
    ck_assert(!rt_load_text(p, &o, &ds, &d));
    th_expect_diag(&d, "missing.txt: error");
    free(p);
    unsigned char gz[64];
    memcpy(gz, "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 10);
    memset(gz + 10, 0xff, sizeof gz - 10);
    p = put("bad.txt", gz, sizeof gz);
    ck_assert(!rt_load_text(p, &o, &ds, &d));
    th_expect_diag(&d, "bad.txt");
    diags_free(&d);
    free(p);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("loaders");
    TCase *t = tcase_create("loaders");
    tcase_set_timeout(t, 300);
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, idx_valid);
    tcase_add_test(t, idx_corrupt);
    tcase_add_test(t, idx_truncated_everywhere);
    tcase_add_test(t, idx_corrupt_gzip);
    tcase_add_test(t, idx_limit);
    tcase_add_test(t, idx_limit_errors);
    tcase_add_test(t, fashion_mnist_real);
    tcase_add_test(t, csv_valid);
    tcase_add_test(t, csv_corrupt);
    tcase_add_test(t, csv_large_counts);
    tcase_add_test(t, npy_valid);
    tcase_add_test(t, npy_corrupt);
    tcase_add_test(t, npy_dataset);
    tcase_add_test(t, shape_overflow);
    tcase_add_test(t, bit_flips);
    tcase_add_test(t, safetensors_dataset);
    tcase_add_test(t, safetensors_whole_columns);
    tcase_add_test(t, shuffle_and_batches);
    tcase_add_test(t, split_and_slice);
    tcase_add_test(t, uniform_dataset);
    tcase_add_test(t, byte_batches);
    tcase_add_test(t, in_order_views);
    tcase_add_test(t, text_valid);
    tcase_add_test(t, text_corrupt);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
