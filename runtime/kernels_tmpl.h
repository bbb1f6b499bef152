/* Type-generic bodies of the GEMM, convolution, pooling, dropout and
 * gather kernels, included by kernels.c once per element type with T
 * (float/double), SFX (f32/f64), BLAS_GEMM (cblas_sgemm/dgemm) and
 * BLAS_GEMV (cblas_sgemv/dgemv)
 * defined. Work is split into tasks per image, per fixed block of
 * elements or per part of a GEMM (gemm_cut) that write disjoint outputs,
 * so results do not depend on the thread count. Not a public header. */

#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(name, SFX)

typedef struct FN(Gemm) {
    int32_t ta, tb;
    int64_t m, n, k;
    T alpha, beta;
    const T *a, *b;
    T *c;
    GemmCut cut;
} FN(Gemm);

/* Part p of C: its rows (with A's) or columns (with B's), the full
 * matrices' leading dimensions. */
static void FN(gemm_part)(void *arg, int64_t p)
{
    const FN(Gemm) *g = arg;
    int64_t dim = g->cut.rows ? g->m : g->n, lo = p * g->cut.part;
    int64_t len = lo + g->cut.part < dim ? g->cut.part : dim - lo, m = g->m, n = g->n;
    const T *a = g->a, *b = g->b;
    T *c = g->c;
    if (g->cut.rows) {
        a += g->ta ? lo : lo * g->k;
        c += lo * g->n;
        m = len;
    } else {
        b += g->tb ? lo * g->k : lo;
        c += lo;
        n = len;
    }
    if (g->m == 1) { /* a row times B: BLAS's matrix-vector product reads B once, unpacked */
        if (g->beta == 0)
            memset(c, 0, (size_t)n * sizeof(T)); /* not scaled: it may hold a NaN of the workspace's last use */
        if (g->tb)
            BLAS_GEMV(CblasRowMajor, CblasNoTrans, blas_dim(n), blas_dim(g->k), g->alpha, b, blas_dim(g->k), a, 1,
                      g->beta, c, 1);
        else
            BLAS_GEMV(CblasRowMajor, CblasTrans, blas_dim(g->k), blas_dim(n), g->alpha, b, blas_dim(g->n), a, 1,
                      g->beta, c, 1);
        return;
    }
    BLAS_GEMM(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans, g->tb ? CblasTrans : CblasNoTrans, blas_dim(m),
              blas_dim(n), blas_dim(g->k), g->alpha, a, blas_dim(g->ta ? g->m : g->k), b,
              blas_dim(g->tb ? g->k : g->n), g->beta, c, blas_dim(g->n));
}

/* A row times a large B[k x n] (not transposed): parts of B's rows,
 * each read front to back into its own partial row, added in order. */
typedef struct FN(Gemv) {
    int64_t n, k, part;
    const T *a, *b;
    T *parts;
} FN(Gemv);

static void FN(gemv_rows)(void *arg, int64_t p)
{
    const FN(Gemv) *g = arg;
    int64_t lo = p * g->part, len = lo + g->part < g->k ? g->part : g->k - lo;
    T *y = g->parts + p * g->n;
    memset(y, 0, (size_t)g->n * sizeof(T));
    BLAS_GEMV(CblasRowMajor, CblasTrans, blas_dim(len), blas_dim(g->n), 1, g->b + lo * g->n, blas_dim(g->n),
              g->a + lo, 1, 0, y, 1);
}

static bool FN(gemv_by_rows)(const RtCtx *ctx, int64_t n, int64_t k, T alpha, const T *a, const T *b, T beta, T *c)
{
    GemmCut cut = gemv_row_cut(n, k);
    if (cut.nparts < 2)
        return false;
    T *parts = mem_aligned_alloc(64, (size_t)(cut.nparts * n) * sizeof(T), false);
    if (!parts)
        return false; /* the column cut needs no memory */
    FN(Gemv) g = {n, k, cut.part, a, b, parts};
    rt_parallel(ctx, cut.nparts, FN(gemv_rows), &g);
    for (int64_t j = 0; j < n; j++) {
        T s = 0;
        for (int64_t p = 0; p < cut.nparts; p++)
            s += parts[p * n + j];
        c[j] = (beta == 0 ? (T)0 : beta * c[j]) + alpha * s;
    }
    xfree(parts);
    return true;
}

void FN(rt_gemm)(const RtCtx *ctx, int32_t ta, int32_t tb, int64_t m, int64_t n, int64_t k, T alpha, const T *a,
                 const T *b, T beta, T *c)
{
    if (m <= 0 || n <= 0)
        return;
    if (k <= 0) {
        for (int64_t i = 0; i < m * n; i++)
            c[i] = beta == 0 ? (T)0 : beta * c[i];
        return;
    }
#if CONV_BLOCKED
    if (ctx && ctx->gemm_bf16 && m >= RT_GEMM_BF16_MIN_ROWS &&
        rt_gemm_bf16_f32(ctx, ta, tb, m, n, k, alpha, a, b, beta, c))
        return;
#endif
    if (m == 1 && !tb && FN(gemv_by_rows)(ctx, n, k, alpha, a, b, beta, c))
        return;
#if CONV_BLOCKED
    if (rt_gemm_blocked_f32(ctx, ta, tb, m, n, k, alpha, a, b, beta, c))
        return;
#endif
    FN(Gemm) g = {ta, tb, m, n, k, alpha, beta, a, b, c, m == 1 ? gemv_cut(n, k) : gemm_cut(m, n, k)};
    rt_parallel(ctx, g.cut.nparts, FN(gemm_part), &g);
}

/* Patch rows of one image: col[(oy,ox), (ky,kx,ci)]. */
static void FN(im2col_image)(const RtConvGeom *g, const T *x, T *col)
{
    int64_t kcols = g->kh * g->kw * g->c;
    size_t run = (size_t)g->c * sizeof(T);
    for (int64_t oy = 0; oy < g->oh; oy++)
        for (int64_t ox = 0; ox < g->ow; ox++) {
            T *row = col + (oy * g->ow + ox) * kcols;
            for (int64_t ky = 0; ky < g->kh; ky++) {
                int64_t iy = oy * g->sh - g->pt + ky;
                bool rowpad = iy < 0 || iy >= g->h;
                if (!rowpad && g->sw == 1) {
                    /* the in-bounds part of the window row is one run */
                    int64_t x0 = ox - g->pl, lo = x0 < 0 ? -x0 : 0;
                    int64_t hi = x0 + g->kw > g->w ? g->w - x0 : g->kw;
                    lo = lo > g->kw ? g->kw : lo;
                    hi = hi < lo ? lo : hi;
                    T *dst = row + ky * g->kw * g->c;
                    if (lo > 0)
                        memset(dst, 0, (size_t)lo * run);
                    if (hi > lo)
                        memcpy(dst + lo * g->c, x + (iy * g->w + x0 + lo) * g->c, (size_t)(hi - lo) * run);
                    if (hi < g->kw)
                        memset(dst + hi * g->c, 0, (size_t)(g->kw - hi) * run);
                    continue;
                }
                for (int64_t kx = 0; kx < g->kw; kx++) {
                    int64_t ix = ox * g->sw - g->pl + kx;
                    T *dst = row + (ky * g->kw + kx) * g->c;
                    if (rowpad || ix < 0 || ix >= g->w)
                        memset(dst, 0, run);
                    else
                        memcpy(dst, x + (iy * g->w + ix) * g->c, run);
                }
            }
        }
}

typedef struct FN(Im2col) {
    const RtConvGeom *g;
    T *x;
    T *col;
} FN(Im2col);

static void FN(im2col_task)(void *arg, int64_t b)
{
    const FN(Im2col) *a = arg;
    const RtConvGeom *g = a->g;
    FN(im2col_image)(g, a->x + b * g->h * g->w * g->c, a->col + b * g->oh * g->ow * g->kh * g->kw * g->c);
}

/* Rows of nb images' patches, one task per image. */
static void FN(im2col)(const RtCtx *c, const RtConvGeom *g, const T *x, int64_t nb, T *col)
{
    FN(Im2col) a = {g, (T *)x, col};
    rt_parallel(c, nb, FN(im2col_task), &a);
}

/* The adjoint of im2col for image b: its patch rows summed into dx. */
static void FN(col2im_task)(void *arg, int64_t b)
{
    const FN(Im2col) *a = arg;
    const RtConvGeom *g = a->g;
    int64_t kcols = g->kh * g->kw * g->c;
    T *dx = a->x + b * g->h * g->w * g->c;
    const T *col = a->col + b * g->oh * g->ow * kcols;
    memset(dx, 0, (size_t)(g->h * g->w * g->c) * sizeof(T));
    for (int64_t oy = 0; oy < g->oh; oy++)
        for (int64_t ox = 0; ox < g->ow; ox++) {
            const T *row = col + (oy * g->ow + ox) * kcols;
            for (int64_t ky = 0; ky < g->kh; ky++) {
                int64_t iy = oy * g->sh - g->pt + ky;
                if (iy < 0 || iy >= g->h)
                    continue;
                for (int64_t kx = 0; kx < g->kw; kx++) {
                    int64_t ix = ox * g->sw - g->pl + kx;
                    if (ix < 0 || ix >= g->w)
                        continue;
                    const T *src = row + (ky * g->kw + kx) * g->c;
                    T *dst = dx + (iy * g->w + ix) * g->c;
                    for (int64_t ci = 0; ci < g->c; ci++)
                        dst[ci] += src[ci];
                }
            }
        }
}

/* sum a[i] * b[i * bstride] with four partial sums (latency, not order) */
static T FN(dot)(const T *a, const T *b, int64_t n, int64_t bstride)
{
    T s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i * bstride];
        s1 += a[i + 1] * b[(i + 1) * bstride];
        s2 += a[i + 2] * b[(i + 2) * bstride];
        s3 += a[i + 3] * b[(i + 3) * bstride];
    }
    for (; i < n; i++)
        s0 += a[i] * b[i * bstride];
    return (s0 + s1) + (s2 + s3);
}

/* y[i * ys] += a * x[i * xs]; the unit-stride case vectorizes */
static void FN(axpy)(T *restrict y, int64_t ys, const T *restrict x, int64_t xs, T a, int64_t n)
{
    if (ys == 1 && xs == 1) {
        for (int64_t i = 0; i < n; i++)
            y[i] += a * x[i];
        return;
    }
    for (int64_t i = 0; i < n; i++)
        y[i * ys] += a * x[i * xs];
}

typedef struct FN(ConvArgs) {
    const RtConvGeom *g;
    const T *a, *b;
    T *out;
    T alpha; /* rt_conv2d's result scale */
} FN(ConvArgs);

/* Few output channels: loops over the windows, no im2col (the GEMM would
 * be a matrix-vector product behind a large patch matrix). One task per
 * image. */
static void FN(conv_few_task)(void *arg, int64_t b)
{
    const FN(ConvArgs) *a = arg;
    const RtConvGeom *g = a->g;
    const T *x = a->a, *k = a->b;
    for (int64_t oy = 0; oy < g->oh; oy++)
        for (int64_t ox = 0; ox < g->ow; ox++) {
            T *yo = a->out + ((b * g->oh + oy) * g->ow + ox) * g->o;
            for (int64_t co = 0; co < g->o; co++)
                yo[co] = 0;
            ConvWin w = conv_window(g, oy, ox);
            for (int64_t iy = w.y0; iy < w.y1; iy++)
                for (int64_t ix = w.x0; ix < w.x1; ix++) {
                    const T *xi = x + ((b * g->h + iy) * g->w + ix) * g->c;
                    const T *kk = k + ((iy - w.y) * g->kw + (ix - w.x)) * g->c * g->o;
                    for (int64_t co = 0; co < g->o; co++)
                        yo[co] += FN(dot)(xi, kk + co, g->c, g->o);
                }
            if (a->alpha != 1)
                for (int64_t co = 0; co < g->o; co++)
                    yo[co] *= a->alpha;
        }
}

static void FN(conv_few_grad_input_task)(void *arg, int64_t b)
{
    const FN(ConvArgs) *a = arg;
    const RtConvGeom *g = a->g;
    const T *dy = a->a, *k = a->b;
    T *dx = a->out;
    zero(dx + b * g->h * g->w * g->c, g->h * g->w * g->c * (int64_t)sizeof(T));
    for (int64_t oy = 0; oy < g->oh; oy++)
        for (int64_t ox = 0; ox < g->ow; ox++) {
            const T *go = dy + ((b * g->oh + oy) * g->ow + ox) * g->o;
            ConvWin w = conv_window(g, oy, ox);
            for (int64_t iy = w.y0; iy < w.y1; iy++)
                for (int64_t ix = w.x0; ix < w.x1; ix++) {
                    T *dxi = dx + ((b * g->h + iy) * g->w + ix) * g->c;
                    const T *kk = k + ((iy - w.y) * g->kw + (ix - w.x)) * g->c * g->o;
                    for (int64_t co = 0; co < g->o; co++)
                        FN(axpy)(dxi, 1, kk + co, g->o, go[co], g->c);
                }
        }
}

/* Sums over all images into one kernel: serial, in image order. */
static void FN(conv_few_grad_kernel)(const RtConvGeom *g, const T *x, const T *dy, T *dk)
{
    zero(dk, g->kh * g->kw * g->c * g->o * (int64_t)sizeof(T));
    for (int64_t b = 0; b < g->n; b++)
        for (int64_t oy = 0; oy < g->oh; oy++)
            for (int64_t ox = 0; ox < g->ow; ox++) {
                const T *go = dy + ((b * g->oh + oy) * g->ow + ox) * g->o;
                ConvWin w = conv_window(g, oy, ox);
                for (int64_t iy = w.y0; iy < w.y1; iy++)
                    for (int64_t ix = w.x0; ix < w.x1; ix++) {
                        const T *xi = x + ((b * g->h + iy) * g->w + ix) * g->c;
                        T *dkk = dk + ((iy - w.y) * g->kw + (ix - w.x)) * g->c * g->o;
                        for (int64_t co = 0; co < g->o; co++)
                            FN(axpy)(dkk + co, g->o, xi, 1, go[co], g->c);
                    }
            }
}

void FN(rt_conv2d)(const RtCtx *c, const RtConvGeom *g, const T *x, const T *k, T *y, T *col, double alpha)
{
#if CONV_BLOCKED
    if (rt_conv_wino_applies(g, RT_CONV_FWD)) {
        rt_conv_wino(c, g, RT_CONV_FWD, x, k, y, col, (float)alpha);
        return;
    }
    if (conv_blocked(g, RT_CONV_FWD)) {
        if (g->o <= RT_CONV_FEW_OUT)
            rt_conv_blocked_few(c, g, x, k, y, col, (float)alpha);
        else
            rt_conv_blocked_fwd(c, g, x, k, y, col, (float)alpha);
        return;
    }
#endif
    if (conv_is_few(g)) {
        FN(ConvArgs) a = {g, x, k, y, (T)alpha};
        rt_parallel(c, g->n, FN(conv_few_task), &a);
        return;
    }
    int64_t kcols = g->kh * g->kw * g->c, img_in = g->h * g->w * g->c, img_out = g->oh * g->ow * g->o;
    for (int64_t b0 = 0; b0 < g->n; b0 += g->chunk) {
        int64_t nb = g->n - b0 < g->chunk ? g->n - b0 : g->chunk;
        const T *xb = x + b0 * img_in;
        if (!conv_is_direct(g)) {
            FN(im2col)(c, g, xb, nb, col);
            xb = col;
        }
        FN(rt_gemm)(c, 0, 0, nb * g->oh * g->ow, g->o, kcols, (T)alpha, xb, k, 0, y + b0 * img_out);
    }
}

void FN(rt_conv2d_grad_input)(const RtCtx *c, const RtConvGeom *g, const T *dy, const T *k, T *dx, T *col)
{
#if CONV_BLOCKED
    if (rt_conv_wino_applies(g, RT_CONV_GRAD_INPUT)) {
        rt_conv_wino(c, g, RT_CONV_GRAD_INPUT, dy, k, dx, col, 1.0f);
        return;
    }
    if (conv_blocked(g, RT_CONV_GRAD_INPUT)) {
        rt_conv_blocked_grad_input(c, g, dy, k, dx, col);
        return;
    }
#endif
    if (conv_is_few(g)) {
        FN(ConvArgs) a = {g, dy, k, dx, 1};
        rt_parallel(c, g->n, FN(conv_few_grad_input_task), &a);
        return;
    }
    int64_t kcols = g->kh * g->kw * g->c, img_in = g->h * g->w * g->c, img_out = g->oh * g->ow * g->o;
    for (int64_t b0 = 0; b0 < g->n; b0 += g->chunk) {
        int64_t nb = g->n - b0 < g->chunk ? g->n - b0 : g->chunk, rows = nb * g->oh * g->ow;
        T *dxb = dx + b0 * img_in;
        if (conv_is_direct(g)) {
            FN(rt_gemm)(c, 0, 1, rows, kcols, g->o, 1, dy + b0 * img_out, k, 0, dxb);
            continue;
        }
        FN(rt_gemm)(c, 0, 1, rows, kcols, g->o, 1, dy + b0 * img_out, k, 0, col);
        FN(Im2col) a = {g, dxb, col};
        rt_parallel(c, nb, FN(col2im_task), &a);
    }
}

void FN(rt_conv2d_grad_kernel)(const RtCtx *c, const RtConvGeom *g, const T *x, const T *dy, T *dk, T *col)
{
#if CONV_BLOCKED
    if (rt_conv_wino_applies(g, RT_CONV_GRAD_KERNEL)) {
        rt_conv_wino_grad_kernel(c, g, x, dy, dk, col);
        return;
    }
    if (conv_blocked(g, RT_CONV_GRAD_KERNEL)) {
        if (g->o <= RT_CONV_FEW_OUT)
            rt_conv_blocked_few_grad_kernel(c, g, x, dy, dk);
        else
            rt_conv_blocked_grad_kernel(c, g, x, dy, dk);
        return;
    }
#endif
    if (conv_is_few(g)) {
        FN(conv_few_grad_kernel)(g, x, dy, dk);
        return;
    }
    int64_t kcols = g->kh * g->kw * g->c, img_in = g->h * g->w * g->c, img_out = g->oh * g->ow * g->o;
    zero(dk, kcols * g->o * (int64_t)sizeof(T));
    for (int64_t b0 = 0; b0 < g->n; b0 += g->chunk) {
        int64_t nb = g->n - b0 < g->chunk ? g->n - b0 : g->chunk, rows = nb * g->oh * g->ow;
        const T *xb = x + b0 * img_in;
        if (!conv_is_direct(g)) {
            FN(im2col)(c, g, xb, nb, col);
            xb = col;
        }
        FN(rt_gemm)(c, 1, 0, kcols, g->o, rows, 1, xb, dy + b0 * img_out, 1, dk);
    }
}

typedef struct FN(PoolArgs) {
    const RtPoolGeom *g;
    const T *x, *dy;
    T *out;
    const RtEpilogue *epi; /* run on each image after it (rt_epilogue_take), or NULL */
} FN(PoolArgs);

/* The max-pool rule, branch-free so the channel loops vectorize: a later
 * position wins when greater, or NaN over a number. */
static inline bool FN(better)(T v, T best)
{
    return v > best || (v != v && best == best);
}

RT_VEC_CLONES static void FN(max_pool_task)(void *arg, int64_t b)
{
    const FN(PoolArgs) *a = arg;
    const RtPoolGeom *g = a->g;
    for (int64_t oy = 0; oy < g->oh; oy++)
        for (int64_t ox = 0; ox < g->ow; ox++) {
            T *restrict yo = a->out + ((b * g->oh + oy) * g->ow + ox) * g->c;
            PoolWin w = pool_window(g, oy, ox);
            if (w.y0 >= w.y1 || w.x0 >= w.x1) {
                for (int64_t ci = 0; ci < g->c; ci++)
                    yo[ci] = -INFINITY;
                continue;
            }
            memcpy(yo, a->x + ((b * g->h + w.y0) * g->w + w.x0) * g->c, (size_t)g->c * sizeof(T));
            for (int64_t iy = w.y0; iy < w.y1; iy++)
                for (int64_t ix = iy == w.y0 ? w.x0 + 1 : w.x0; ix < w.x1; ix++) {
                    const T *restrict xi = a->x + ((b * g->h + iy) * g->w + ix) * g->c;
                    for (int64_t ci = 0; ci < g->c; ci++) {
                        T v = xi[ci], m = yo[ci];
                        yo[ci] = FN(better)(v, m) ? v : m;
                    }
                }
        }
}

void FN(rt_max_pool2d)(const RtCtx *c, const RtPoolGeom *g, const T *x, T *y)
{
    FN(PoolArgs) a = {g, x, NULL, y, NULL};
    rt_parallel(c, g->n, FN(max_pool_task), &a);
}

/* Per output pixel: the first maximum of each channel's window (best
 * value and its window position, kept for all channels at once so the
 * channel loops vectorize), then dx at each window position += dy where
 * that position won (a select per position, no scatter); stored, not
 * added, when the windows tile the image (each position in exactly one
 * window: pool_tiles). */
RT_VEC_CLONES static void FN(max_pool_grad_pixel)(const RtPoolGeom *g, PoolWin w, const T *restrict x,
                                                  const T *restrict dyo, T *restrict dx, T *restrict best,
                                                  int32_t *restrict at, bool tiled)
{
    int64_t ww = w.x1 - w.x0;
    const T *x0 = x + (w.y0 * g->w + w.x0) * g->c;
    for (int64_t ci = 0; ci < g->c; ci++) {
        best[ci] = x0[ci];
        at[ci] = 0;
    }
    for (int64_t iy = w.y0; iy < w.y1; iy++)
        for (int64_t ix = w.x0; ix < w.x1; ix++) {
            int32_t p = (int32_t)((iy - w.y0) * ww + (ix - w.x0));
            const T *restrict xi = x + (iy * g->w + ix) * g->c;
            for (int64_t ci = 0; ci < g->c; ci++) {
                T v = xi[ci], m = best[ci];
                bool up = FN(better)(v, m);
                best[ci] = up ? v : m;
                at[ci] = up ? p : at[ci];
            }
        }
    for (int64_t iy = w.y0; iy < w.y1; iy++)
        for (int64_t ix = w.x0; ix < w.x1; ix++) {
            int32_t p = (int32_t)((iy - w.y0) * ww + (ix - w.x0));
            T *restrict di = dx + (iy * g->w + ix) * g->c;
            if (tiled)
                for (int64_t ci = 0; ci < g->c; ci++)
                    di[ci] = at[ci] == p ? dyo[ci] : (T)0;
            else
                for (int64_t ci = 0; ci < g->c; ci++)
                    di[ci] += at[ci] == p ? dyo[ci] : (T)0;
        }
}

static void FN(max_pool_grad_task)(void *arg, int64_t b)
{
    const FN(PoolArgs) *a = arg;
    const RtPoolGeom *g = a->g;
    T *dx = a->out + b * g->h * g->w * g->c;
    const T *x = a->x + b * g->h * g->w * g->c;
    bool tiled = pool_tiles(g);
    if (!tiled)
        memset(dx, 0, (size_t)(g->h * g->w * g->c) * sizeof(T));
    T *best = xmalloc((size_t)(g->c + 1) * sizeof(T));
    int32_t *at = xmalloc((size_t)(g->c + 1) * sizeof(int32_t));
    for (int64_t oy = 0; oy < g->oh; oy++)
        for (int64_t ox = 0; ox < g->ow; ox++) {
            PoolWin w = pool_window(g, oy, ox);
            if (w.y0 < w.y1 && w.x0 < w.x1)
                FN(max_pool_grad_pixel)(g, w, x, a->dy + ((b * g->oh + oy) * g->ow + ox) * g->c, dx, best, at, tiled);
        }
    xfree(best);
    xfree(at);
    if (a->epi)
        rt_epilogue_run(a->epi, b);
}

void FN(rt_max_pool2d_grad)(const RtCtx *c, const RtPoolGeom *g, const T *x, const T *dy, T *dx)
{
    FN(PoolArgs) a = {g, x, dy, dx, rt_epilogue_take(c, g->n)};
    rt_parallel(c, g->n, FN(max_pool_grad_task), &a);
}

static void FN(avg_pool_task)(void *arg, int64_t b)
{
    const FN(PoolArgs) *a = arg;
    const RtPoolGeom *g = a->g;
    for (int64_t oy = 0; oy < g->oh; oy++)
        for (int64_t ox = 0; ox < g->ow; ox++) {
            T *restrict yo = a->out + ((b * g->oh + oy) * g->ow + ox) * g->c;
            PoolWin w = pool_window(g, oy, ox);
            memset(yo, 0, (size_t)g->c * sizeof(T));
            for (int64_t iy = w.y0; iy < w.y1; iy++)
                for (int64_t ix = w.x0; ix < w.x1; ix++) {
                    const T *restrict xi = a->x + ((b * g->h + iy) * g->w + ix) * g->c;
                    for (int64_t ci = 0; ci < g->c; ci++)
                        yo[ci] += xi[ci];
                }
            int64_t count = (w.y1 - w.y0) * (w.x1 - w.x0);
            if (count > 0)
                for (int64_t ci = 0; ci < g->c; ci++)
                    yo[ci] /= (T)count;
        }
}

void FN(rt_avg_pool2d)(const RtCtx *c, const RtPoolGeom *g, const T *x, T *y)
{
    FN(PoolArgs) a = {g, x, NULL, y, NULL};
    rt_parallel(c, g->n, FN(avg_pool_task), &a);
}

static void FN(avg_pool_grad_task)(void *arg, int64_t b)
{
    const FN(PoolArgs) *a = arg;
    const RtPoolGeom *g = a->g;
    zero(a->out + b * g->h * g->w * g->c, g->h * g->w * g->c * (int64_t)sizeof(T));
    for (int64_t oy = 0; oy < g->oh; oy++)
        for (int64_t ox = 0; ox < g->ow; ox++) {
            const T *dyo = a->dy + ((b * g->oh + oy) * g->ow + ox) * g->c;
            PoolWin w = pool_window(g, oy, ox);
            int64_t count = (w.y1 - w.y0) * (w.x1 - w.x0);
            if (count <= 0)
                continue;
            for (int64_t iy = w.y0; iy < w.y1; iy++)
                for (int64_t ix = w.x0; ix < w.x1; ix++) {
                    T *restrict dxi = a->out + ((b * g->h + iy) * g->w + ix) * g->c;
                    for (int64_t ci = 0; ci < g->c; ci++)
                        dxi[ci] += dyo[ci] / (T)count;
                }
        }
}

void FN(rt_avg_pool2d_grad)(const RtCtx *c, const RtPoolGeom *g, const T *dy, T *dx)
{
    FN(PoolArgs) a = {g, NULL, dy, dx, NULL};
    rt_parallel(c, g->n, FN(avg_pool_grad_task), &a);
}

typedef struct FN(Dropout) {
    const RtCtx *c;
    uint64_t key, thresh;
    T scale;
    int64_t n;
    T *out;
} FN(Dropout);

static void FN(dropout_task)(void *arg, int64_t t)
{
    const FN(Dropout) *a = arg;
    int64_t lo = t * RT_DROPOUT_BLOCK, hi = lo + RT_DROPOUT_BLOCK < a->n ? lo + RT_DROPOUT_BLOCK : a->n;
    uint32_t keep[RT_PHILOX_LANES];
    for (int64_t i0 = lo; i0 < hi; i0 += RT_PHILOX_LANES) {
        dropout_keep(a->key, a->c->step, (uint64_t)i0, a->thresh, keep);
        int64_t m = hi - i0 < RT_PHILOX_LANES ? hi - i0 : RT_PHILOX_LANES;
        for (int64_t j = 0; j < m; j++) /* branch-free: a random mask mispredicts */
            a->out[i0 + j] = a->scale * (T)(keep[j] & 1u);
    }
}

void FN(rt_dropout_mask)(const RtCtx *c, uint64_t stream, double rate, int64_t n, T *out)
{
    FN(Dropout) a = {c, dropout_key(c->seed, stream), dropout_threshold(rate), (T)1 / ((T)1 - (T)rate), n, out};
    rt_parallel(c, (n + RT_DROPOUT_BLOCK - 1) / RT_DROPOUT_BLOCK, FN(dropout_task), &a);
}


void FN(rt_gather)(RtCtx *c, const RtGatherGeom *g, const T *x, const void *idx, T *y)
{
    if (!gather_check(c, g, idx)) {
        memset(y, 0, (size_t)(g->outer * g->nidx * g->inner) * sizeof(T));
        return;
    }
    size_t row = (size_t)g->inner * sizeof(T);
    for (int64_t o = 0; o < g->outer; o++)
        for (int64_t j = 0; j < g->nidx; j++)
            if (row)
                memcpy(y + (o * g->nidx + j) * g->inner, x + (o * g->len + rt_gather_index(g, idx, j)) * g->inner,
                       row);
}

void FN(rt_gather_grad)(RtCtx *c, const RtGatherGeom *g, const T *gy, const void *idx, T *gx)
{
    memset(gx, 0, (size_t)(g->outer * g->len * g->inner) * sizeof(T));
    if (!gather_check(c, g, idx))
        return;
    for (int64_t o = 0; o < g->outer; o++)
        for (int64_t j = 0; j < g->nidx; j++) {
            const T *src = gy + (o * g->nidx + j) * g->inner;
            T *dst = gx + (o * g->len + rt_gather_index(g, idx, j)) * g->inner;
            for (int64_t i = 0; i < g->inner; i++)
                dst[i] += src[i];
        }
}

void FN(rt_replica_mean)(const RtCtx *c, int64_t n, const T *x, T *out)
{
    if (out != x)
        memmove(out, x, (size_t)n * sizeof(T));
    if (c->replica)
        c->replica->mean(c->replica->env, out, n, sizeof(T) == sizeof(double));
}

#undef FN
#undef CAT
#undef CAT_
