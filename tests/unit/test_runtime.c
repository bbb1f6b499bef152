/* Runtime core: tensors and maps, the Philox RNG against the published
 * known-answer vectors, uniform/normal draws and every initializer's
 * statistics, bounds, determinism and order independence. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/io/io.h"
#include "runtime/kernels.h"
#include "runtime/runtime.h"
#include "testutil.h"

static SrcLoc L = {"t.mdl", 1, 1};

/* ---- tensors ---- */

START_TEST(tensor_alloc)
{
    int64_t dims[3] = {2, 3, 5};
    Tensor *t = rt_tensor_new(DT_F32, 3, dims);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->numel, 30);
    ck_assert_int_eq((uintptr_t)t->data % 64, 0);
    for (int64_t i = 0; i < t->numel; i++)
        ck_assert(rt_get(t, i) == 0.0);
    rt_set(t, 7, 1.5);
    ck_assert(rt_get(t, 7) == 1.5);
    ck_assert_int_eq(rt_tensor_bytes(t), 120);
    char buf[64];
    ck_assert_str_eq(rt_tensor_type_str(t, buf, sizeof buf), "f32[2,3,5]");
    Tensor *c = rt_tensor_clone(t);
    ck_assert(rt_get(c, 7) == 1.5);
    ck_assert(rt_tensor_same_shape(t, c));
    rt_set(c, 7, 2);
    ck_assert(rt_get(t, 7) == 1.5);
    rt_tensor_free(c);
    rt_tensor_free(t);

    Tensor *s = rt_tensor_new(DT_F64, 0, NULL);
    ck_assert_int_eq(s->numel, 1);
    rt_set(s, 0, 0.1);
    ck_assert(rt_get(s, 0) == 0.1);
    rt_tensor_free(s);

    int64_t e[2] = {0, 4};
    Tensor *z = rt_tensor_new(DT_I32, 2, e);
    ck_assert_ptr_nonnull(z);
    ck_assert_ptr_nonnull(z->data);
    ck_assert_int_eq(z->numel, 0);
    rt_tensor_free(z);

    int64_t i3[1] = {1};
    Tensor *it = rt_tensor_new(DT_I32, 1, i3);
    rt_set(it, 0, -7);
    ck_assert(rt_get(it, 0) == -7.0);
    rt_tensor_free(it);
}
END_TEST

START_TEST(tensor_overflow)
{
    int64_t big[3] = {INT64_C(1) << 31, INT64_C(1) << 31, INT64_C(1) << 31};
    ck_assert_ptr_null(rt_tensor_new(DT_F32, 3, big)); /* numel overflows */
    int64_t huge[1] = {INT64_C(1) << 62};
    ck_assert_ptr_null(rt_tensor_new(DT_F64, 1, huge)); /* bytes overflow */
    int64_t absurd[2] = {INT64_C(1) << 20, INT64_C(1) << 20};
    ck_assert_ptr_null(rt_tensor_new(DT_F64, 2, absurd)); /* 8 TiB */
    int64_t neg[1] = {-1};
    ck_assert_ptr_null(rt_tensor_new(DT_F32, 1, neg));
    int64_t ok[1] = {1};
    ck_assert_ptr_null(rt_tensor_new(DT_F32, IR_MAXRANK + 1, ok));
    int64_t nd[2] = {IR_DIM_N, 3};
    Shape s = ir_shape(2, nd);
    ck_assert_ptr_null(rt_tensor_for(DT_F32, &s, -5));
    Tensor *t = rt_tensor_for(DT_F32, &s, 4);
    ck_assert_int_eq(t->dims[0], 4);
    ck_assert_int_eq(t->numel, 12);
    rt_tensor_free(t);
}
END_TEST

START_TEST(tensor_matches)
{
    int64_t d[3] = {8, 28, 8};
    Tensor *t = rt_tensor_new(DT_F32, 3, d);
    int64_t s1[3] = {IR_DIM_N, 28, IR_DIM_N};
    Shape s = ir_shape(3, s1);
    int64_t n = 0;
    ck_assert(rt_tensor_matches(t, &s, -1, &n));
    ck_assert_int_eq(n, 8);
    ck_assert(rt_tensor_matches(t, &s, 8, &n));
    ck_assert(!rt_tensor_matches(t, &s, 4, &n));
    int64_t s2[3] = {IR_DIM_N, 28, 4};
    Shape b = ir_shape(3, s2);
    ck_assert(!rt_tensor_matches(t, &b, -1, &n));
    int64_t s3[3] = {8, 28, 8};
    Shape c = ir_shape(3, s3);
    ck_assert(rt_tensor_matches(t, &c, -1, &n));
    ck_assert_int_eq(n, -1);
    Shape r2 = ir_shape2(8, 28);
    ck_assert(!rt_tensor_matches(t, &r2, -1, &n));
    /* N bound twice to different sizes */
    int64_t d2[2] = {3, 4};
    Tensor *u = rt_tensor_new(DT_F32, 2, d2);
    int64_t s4[2] = {IR_DIM_N, IR_DIM_N};
    Shape nn = ir_shape(2, s4);
    ck_assert(!rt_tensor_matches(u, &nn, -1, &n));
    rt_tensor_free(u);
    rt_tensor_free(t);
}
END_TEST

START_TEST(map_ops)
{
    TensorMap m;
    rt_map_init(&m);
    int64_t d[1] = {2};
    Tensor *a = rt_tensor_new(DT_F32, 1, d), *b = rt_tensor_new(DT_F32, 1, d);
    rt_map_put(&m, "a", a);
    rt_map_put(&m, "b", b);
    ck_assert_ptr_eq(rt_map_get(&m, "a"), a);
    ck_assert_ptr_null(rt_map_get(&m, "c"));
    Tensor *a2 = rt_tensor_new(DT_F64, 1, d);
    rt_map_put(&m, "a", a2); /* frees a */
    ck_assert_int_eq(m.n, 2);
    ck_assert_ptr_eq(rt_map_get(&m, "a"), a2);
    Tensor *tb = rt_map_take(&m, "b");
    ck_assert_ptr_eq(tb, b);
    ck_assert_int_eq(m.n, 1);
    ck_assert_int_eq(rt_map_find(&m, "b"), -1);
    rt_tensor_free(tb);
    rt_map_free(&m);
    ck_assert_int_eq(m.n, 0);
}
END_TEST

/* ---- RNG ---- */

static void kat(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1,
                const uint32_t want[4])
{
    uint32_t out[4];
    rt_philox((uint64_t)k1 << 32 | k0, (uint64_t)c3 << 32 | c2, (uint64_t)c1 << 32 | c0, out);
    for (int i = 0; i < 4; i++)
        ck_assert_uint_eq(out[i], want[i]);
}

/* Random123's kat_vectors, "philox4x32 10": counter (4 words), key (2
 * words), expected output (4 words). */
START_TEST(philox_known_answers)
{
    static const uint32_t w0[4] = {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8};
    static const uint32_t w1[4] = {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd};
    static const uint32_t w2[4] = {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1};
    kat(0, 0, 0, 0, 0, 0, w0);
    kat(0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, w1);
    kat(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, w2);
}
END_TEST

START_TEST(uniform_draws)
{
    double sum = 0, sq = 0;
    const int n = 100000;
    int buckets[10] = {0};
    for (int i = 0; i < n; i++) {
        double u = rt_uniform(42, 7, 3, (uint64_t)i);
        ck_assert(u >= 0.0 && u < 1.0);
        ck_assert(u == rt_uniform(42, 7, 3, (uint64_t)i));
        sum += u;
        sq += u * u;
        buckets[(int)(u * 10)]++;
    }
    double mean = sum / n, var = sq / n - mean * mean;
    ck_assert_double_eq_tol(mean, 0.5, 0.005);
    ck_assert_double_eq_tol(var, 1.0 / 12, 0.002);
    for (int b = 0; b < 10; b++)
        ck_assert(abs(buckets[b] - n / 10) < 500); /* ~5 sigma */
    /* every argument matters */
    double u = rt_uniform(1, 2, 3, 4);
    ck_assert(u != rt_uniform(2, 2, 3, 4));
    ck_assert(u != rt_uniform(1, 3, 3, 4));
    ck_assert(u != rt_uniform(1, 2, 4, 4));
    ck_assert(u != rt_uniform(1, 2, 3, 5));
    /* the batched draws are the same values, from any start and count
     * (counters crossing 2^32, a step above 2^32, a partial block) */
    static const uint64_t starts[3] = {0, 5, 0xFFFFFFF0ull};
    double blk[200];
    for (int s = 0; s < 3; s++) {
        rt_uniform_fill(42, 7, 0x100000003ull, starts[s], 53, blk);
        for (int i = 0; i < 53; i++)
            ck_assert(blk[i] == rt_uniform(42, 7, 0x100000003ull, starts[s] + (uint64_t)i));
        rt_uniform_fill(42, 7, 0x100000003ull, starts[s], 200, blk); /* several blocks */
        for (int i = 0; i < 200; i++)
            ck_assert(blk[i] == rt_uniform(42, 7, 0x100000003ull, starts[s] + (uint64_t)i));
    }
}
END_TEST

START_TEST(normal_draws)
{
    double sum = 0, sq = 0, s3 = 0, s4 = 0;
    const int n = 100000;
    for (int i = 0; i < n; i++) {
        double z = rt_normal(9, 1, 0, (uint64_t)i);
        ck_assert(isfinite(z));
        sum += z;
        sq += z * z;
        s3 += z * z * z;
        s4 += z * z * z * z;
    }
    ck_assert_double_eq_tol(sum / n, 0.0, 0.015);
    ck_assert_double_eq_tol(sq / n, 1.0, 0.02);
    ck_assert_double_eq_tol(s3 / n, 0.0, 0.05);
    ck_assert_double_eq_tol(s4 / n, 3.0, 0.1);
    ck_assert(rt_normal(9, 1, 0, 5) == rt_normal(9, 1, 0, 5));
    ck_assert(rt_normal(9, 1, 0, 5) != rt_normal(9, 2, 0, 5));
}
END_TEST

/* ---- initializers ---- */

typedef struct Stats {
    double mean, std, min, max;
} Stats;

static Stats stats_of(const Tensor *t)
{
    Stats s = {0, 0, INFINITY, -INFINITY};
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < t->numel; i++) {
        double v = rt_get(t, i);
        sum += v;
        sq += v * v;
        s.min = fmin(s.min, v);
        s.max = fmax(s.max, v);
    }
    s.mean = sum / (double)t->numel;
    s.std = sqrt(sq / (double)t->numel - s.mean * s.mean);
    return s;
}

static Tensor *init2(DType dt, int64_t a, int64_t b, Init in, uint64_t seed, uint64_t stream)
{
    int64_t d[2] = {a, b};
    Tensor *t = rt_tensor_new(dt, 2, d);
    rt_init_tensor(t, in, seed, stream);
    return t;
}

/* Uniform in [-lim, lim): bounds, mean 0, std lim/sqrt(3). */
static void check_uniform(Tensor *t, double lim)
{
    Stats s = stats_of(t);
    ck_assert(s.min >= -lim && s.max < lim);
    ck_assert(s.min < -0.99 * lim && s.max > 0.99 * lim);
    ck_assert_double_eq_tol(s.mean, 0, 0.01 * lim);
    ck_assert_double_eq_tol(s.std, lim / sqrt(3), 0.01 * lim / sqrt(3));
    rt_tensor_free(t);
}

/* Truncated normal with target std `sd` (after the Keras correction):
 * bounds 2*sd/0.8796, std sd. */
static void check_trunc(Tensor *t, double sd)
{
    double bound = 2 * sd / 0.87962566103423978;
    Stats s = stats_of(t);
    ck_assert(s.min >= -bound * (1 + 1e-6) && s.max <= bound * (1 + 1e-6));
    ck_assert(s.max > 0.98 * bound && s.min < -0.98 * bound);
    ck_assert_double_eq_tol(s.mean, 0, 0.01 * sd);
    ck_assert_double_eq_tol(s.std, sd, 0.015 * sd);
    rt_tensor_free(t);
}

START_TEST(init_glorot_he_lecun)
{
    /* dense [200, 500]: fan_in 200, fan_out 500 */
    check_uniform(init2(DT_F64, 200, 500, (Init){INIT_GLOROT_UNIFORM, 0, 0}, 1, 11),
                  sqrt(6.0 / 700));
    check_uniform(init2(DT_F32, 200, 500, (Init){INIT_HE_UNIFORM, 0, 0}, 1, 12), sqrt(6.0 / 200));
    check_uniform(init2(DT_F32, 200, 500, (Init){INIT_LECUN_UNIFORM, 0, 0}, 1, 13),
                  sqrt(3.0 / 200));
    check_trunc(init2(DT_F64, 200, 500, (Init){INIT_GLOROT_NORMAL, 0, 0}, 1, 14), sqrt(2.0 / 700));
    check_trunc(init2(DT_F32, 200, 500, (Init){INIT_HE_NORMAL, 0, 0}, 1, 15), sqrt(2.0 / 200));
    check_trunc(init2(DT_F64, 200, 500, (Init){INIT_LECUN_NORMAL, 0, 0}, 1, 16), sqrt(1.0 / 200));
    /* conv HWIO [5,5,40,100]: fan_in 1000, fan_out 2500 */
    int64_t d[4] = {5, 5, 40, 100};
    Tensor *k = rt_tensor_new(DT_F32, 4, d);
    rt_init_tensor(k, (Init){INIT_HE_NORMAL, 0, 0}, 3, 4);
    check_trunc(k, sqrt(2.0 / 1000));
    k = rt_tensor_new(DT_F64, 4, d);
    rt_init_tensor(k, (Init){INIT_GLOROT_UNIFORM, 0, 0}, 3, 4);
    check_uniform(k, sqrt(6.0 / 3500));
}
END_TEST

/* orthogonal: the fewer of rows and columns orthonormal, of a [4, 12]
 * recurrent kernel (rows) and of a [12, 4] matrix (columns); the same
 * seed gives the same matrix. unit_forget_bias: ones in the second
 * quarter only. */
static double dot_of(const Tensor *t, int64_t cols, int64_t a, int64_t b, bool rows, int64_t len)
{
    double s = 0;
    for (int64_t k = 0; k < len; k++)
        s += rows ? rt_get(t, a * cols + k) * rt_get(t, b * cols + k) : rt_get(t, k * cols + a) * rt_get(t, k * cols + b);
    return s;
}

START_TEST(init_orthogonal_forget)
{
    Tensor *w = init2(DT_F64, 4, 12, (Init){INIT_ORTHOGONAL, 0, 0}, 7, 3);
    Tensor *v = init2(DT_F64, 12, 4, (Init){INIT_ORTHOGONAL, 0, 0}, 7, 3);
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) {
            ck_assert_double_eq_tol(dot_of(w, 12, a, b, true, 12), a == b, 1e-12);
            ck_assert_double_eq_tol(dot_of(v, 4, a, b, false, 12), a == b, 1e-12);
        }
    Tensor *w2 = init2(DT_F64, 4, 12, (Init){INIT_ORTHOGONAL, 0, 0}, 7, 3);
    for (int64_t i = 0; i < w->numel; i++)
        ck_assert(rt_get(w, i) == rt_get(w2, i));
    Tensor *f = rt_tensor_new(DT_F32, 1, (int64_t[]){12});
    rt_init_tensor(f, (Init){INIT_UNIT_FORGET_BIAS, 0, 0}, 1, 1);
    for (int64_t i = 0; i < 12; i++)
        ck_assert(rt_get(f, i) == (i >= 3 && i < 6 ? 1 : 0));
    rt_tensor_free(w);
    rt_tensor_free(v);
    rt_tensor_free(w2);
    rt_tensor_free(f);
}
END_TEST

START_TEST(init_parametric)
{
    Tensor *t = init2(DT_F64, 100, 1000, (Init){INIT_NORMAL, 1.0, 2.0}, 5, 1);
    Stats s = stats_of(t);
    ck_assert_double_eq_tol(s.mean, 1.0, 0.02);
    ck_assert_double_eq_tol(s.std, 2.0, 0.03);
    ck_assert(s.max > 1 + 2 * 3.5 && s.min < 1 - 2 * 3.5); /* not truncated */
    rt_tensor_free(t);

    t = init2(DT_F32, 100, 1000, (Init){INIT_UNIFORM, -3.0, 5.0}, 5, 2);
    s = stats_of(t);
    ck_assert(s.min >= -3.0 && s.max < 5.0);
    ck_assert_double_eq_tol(s.mean, 1.0, 0.03);
    ck_assert_double_eq_tol(s.std, 8.0 / sqrt(12), 0.02);
    rt_tensor_free(t);

    t = init2(DT_F64, 100, 1000, (Init){INIT_TRUNC_NORMAL, 0.5, 0.1}, 5, 3);
    s = stats_of(t);
    ck_assert(s.min >= 0.3 - 1e-12 && s.max <= 0.7 + 1e-12);
    ck_assert(s.min < 0.302 && s.max > 0.698);
    ck_assert_double_eq_tol(s.mean, 0.5, 0.001);
    ck_assert_double_eq_tol(s.std, 0.1 * 0.87962566103423978, 0.0015);
    rt_tensor_free(t);

    t = init2(DT_F32, 3, 4, (Init){INIT_CONSTANT, 0.25, 0}, 5, 4);
    for (int i = 0; i < 12; i++)
        ck_assert(rt_get(t, i) == 0.25);
    rt_init_tensor(t, (Init){INIT_ONES, 0, 0}, 5, 4);
    for (int i = 0; i < 12; i++)
        ck_assert(rt_get(t, i) == 1.0);
    rt_init_tensor(t, (Init){INIT_ZEROS, 0, 0}, 5, 4);
    for (int i = 0; i < 12; i++)
        ck_assert(rt_get(t, i) == 0.0);
    rt_init_tensor(t, (Init){INIT_NONE, 0, 0}, 5, 4); /* leaves the values alone */
    for (int i = 0; i < 12; i++)
        ck_assert(rt_get(t, i) == 0.0);
    rt_tensor_free(t);
}
END_TEST

START_TEST(init_determinism)
{
    Init in = {INIT_GLOROT_NORMAL, 0, 0};
    Tensor *a = init2(DT_F32, 30, 40, in, 7, rt_name_stream("dense.kernel"));
    Tensor *b = init2(DT_F32, 30, 40, in, 7, rt_name_stream("dense.kernel"));
    Tensor *c = init2(DT_F32, 30, 40, in, 7, rt_name_stream("dense_1.kernel"));
    Tensor *e = init2(DT_F32, 30, 40, in, 8, rt_name_stream("dense.kernel"));
    ck_assert(memcmp(a->data, b->data, (size_t)rt_tensor_bytes(a)) == 0);
    int same_c = 0, same_e = 0;
    for (int64_t i = 0; i < a->numel; i++) {
        same_c += rt_get(a, i) == rt_get(c, i);
        same_e += rt_get(a, i) == rt_get(e, i);
    }
    ck_assert_int_eq(same_c, 0);
    ck_assert_int_eq(same_e, 0);
    /* element i depends only on (seed, stream, i): a longer tensor with
     * the same fans starts with the same draws */
    Init u = {INIT_NORMAL, 0, 1};
    Tensor *s = init2(DT_F64, 10, 10, u, 3, 99), *l = init2(DT_F64, 10, 1000, u, 3, 99);
    for (int i = 0; i < 100; i++)
        ck_assert(rt_get(s, i) == rt_get(l, i));
    Tensor *tn = init2(DT_F64, 10, 10, (Init){INIT_TRUNC_NORMAL, 0, 1}, 3, 99);
    Tensor *tl = init2(DT_F64, 10, 1000, (Init){INIT_TRUNC_NORMAL, 0, 1}, 3, 99);
    for (int i = 0; i < 100; i++)
        ck_assert(rt_get(tn, i) == rt_get(tl, i));
    Tensor *ts[] = {a, b, c, e, s, l, tn, tl};
    for (int i = 0; i < 8; i++)
        rt_tensor_free(ts[i]);
}
END_TEST

/* A uniform fill large enough to run in parts on threads (and in blocks
 * of the vector Philox) gives every element its own draw, f32 and f64:
 * 3 x 100003 elements (not a multiple of a block or of the parts). */
START_TEST(init_uniform_parts)
{
    DType dts[2] = {DT_F32, DT_F64};
    for (int k = 0; k < 2; k++) {
        Tensor *t = init2(dts[k], 3, 100003, (Init){INIT_UNIFORM, -2, 3}, 11, 5);
        for (int64_t i = 0; i < t->numel; i++) {
            double want = -2 + 5 * rt_uniform(11, 5, 0, (uint64_t)i);
            ck_assert(rt_get(t, i) == rt_dtype_round(dts[k], want));
        }
        rt_tensor_free(t);
    }
}
END_TEST

START_TEST(name_stream_fnv1a)
{
    ck_assert_uint_eq(rt_name_stream(""), UINT64_C(0xcbf29ce484222325));
    ck_assert_uint_eq(rt_name_stream("a"), UINT64_C(0xaf63dc4c8601ec8c));
    ck_assert_uint_eq(rt_name_stream("foobar"), UINT64_C(0x85944171f73967e8));
}
END_TEST

START_TEST(init_params_graph)
{
    Graph *g = ir_graph_new("m");
    ir_param(g, "dense.kernel", DT_F32, ir_shape2(784, 128), (Init){INIT_GLOROT_UNIFORM, 0, 0},
             true, ROLE_WEIGHT, L);
    ir_param(g, "dense.bias", DT_F32, ir_shape1(128), (Init){INIT_ZEROS, 0, 0}, true, ROLE_WEIGHT,
             L);
    ir_param(g, "bn.moving_var", DT_F64, ir_shape1(16), (Init){INIT_ONES, 0, 0}, false,
             ROLE_STATE, L);
    ir_param(g, "pretrained", DT_F32, ir_shape1(3), (Init){INIT_NONE, 0, 0}, true, ROLE_WEIGHT,
             L);
    TensorMap m;
    rt_map_init(&m);
    rt_init_params(g, &m, 42, false, NULL);
    ck_assert_int_eq(m.n, 3);
    ck_assert_ptr_null(rt_map_get(&m, "pretrained"));
    Tensor *k = rt_map_get(&m, "dense.kernel");
    char buf[64];
    ck_assert_str_eq(rt_tensor_type_str(k, buf, sizeof buf), "f32[784,128]");
    Tensor *ref = rt_tensor_like(k);
    rt_init_tensor(ref, (Init){INIT_GLOROT_UNIFORM, 0, 0}, 42, rt_name_stream("dense.kernel"));
    ck_assert(memcmp(ref->data, k->data, (size_t)rt_tensor_bytes(k)) == 0);
    rt_tensor_free(ref);
    Tensor *mv = rt_map_get(&m, "bn.moving_var");
    ck_assert_int_eq(mv->dt, DT_F64);
    ck_assert(rt_get(mv, 15) == 1.0);
    /* missing only: an existing tensor is kept */
    rt_set(k, 0, 123);
    rt_init_params(g, &m, 43, false, NULL);
    ck_assert_ptr_eq(rt_map_get(&m, "dense.kernel"), k);
    ck_assert(rt_get(k, 0) == 123);
    rt_init_params(g, &m, 42, true, NULL);
    ck_assert(rt_get(rt_map_get(&m, "dense.kernel"), 0) != 123);
    rt_map_free(&m);
    ir_graph_free(g);
}
END_TEST

/* OpenBLAS's pthread build starts a worker thread per core when it loads
 * and lets them spin; modelc keeps OpenBLAS single-threaded and stops
 * them when its runtime loads (kernels.c, blas_quiet_at_load): this process runs
 * on its main thread alone whenever no pool or fill is running. */
START_TEST(blas_workers_stopped)
{
    int n = tu_process_threads();
    if (n < 0)
        return; /* no procfs: nothing to count */
    ck_assert_int_eq(n, 1);
    float a[4] = {1, 2, 3, 4}, c[4];
    RtCtx ctx;
    rt_ctx_init(&ctx, 1);
    rt_gemm_f32(&ctx, 0, 0, 2, 2, 2, 1.0f, a, a, 0.0f, c); /* OpenBLAS or the blocked kernels: still works */
    ck_assert(c[0] == 7 && c[1] == 10 && c[2] == 15 && c[3] == 22);
}
END_TEST

/* 8-bit data to f32 through its table (rt_bytes_to_f32), under every
 * MODELC_CONV_ISA CMake runs this test with: every byte value, lengths
 * around the vector widths (8 and 16), sources at odd offsets, and the
 * floats after the end left alone. */
START_TEST(bytes_to_f32_lengths)
{
    float tab[256];
    for (int i = 0; i < 256; i++)
        tab[i] = (float)((i * 37) % 256) * -0.731f + (float)i * 1e-3f; /* not affine in i */
    enum { MAXN = 1000 };
    unsigned char src[MAXN + 64];
    for (int i = 0; i < MAXN + 64; i++)
        src[i] = (unsigned char)(i * 101 + 7); /* every value, in no order */
    float out[MAXN + 1];
    const size_t lens[] = {0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 256, 784, 787, MAXN};
    for (size_t li = 0; li < sizeof lens / sizeof *lens; li++)
        for (size_t off = 0; off < 4; off++) {
            size_t n = lens[li];
            for (size_t i = 0; i <= n; i++)
                out[i] = -12345.0f;
            rt_bytes_to_f32(tab, src + off * 13, n, out);
            for (size_t i = 0; i < n; i++)
                ck_assert_msg(out[i] == tab[src[off * 13 + i]], "n=%zu off=%zu i=%zu", n, off, i);
            ck_assert(out[n] == -12345.0f);
        }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("runtime");
    TCase *t = tcase_create("core");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, blas_workers_stopped);
    tcase_add_test(t, bytes_to_f32_lengths);
    tcase_add_test(t, tensor_alloc);
    tcase_add_test(t, tensor_overflow);
    tcase_add_test(t, tensor_matches);
    tcase_add_test(t, map_ops);
    tcase_add_test(t, philox_known_answers);
    tcase_add_test(t, init_uniform_parts);
    tcase_add_test(t, uniform_draws);
    tcase_add_test(t, normal_draws);
    tcase_add_test(t, init_glorot_he_lecun);
    tcase_add_test(t, init_parametric);
    tcase_add_test(t, init_orthogonal_forget);
    tcase_add_test(t, init_determinism);
    tcase_add_test(t, name_stream_fnv1a);
    tcase_add_test(t, init_params_graph);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
