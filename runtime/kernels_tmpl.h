/* Type-generic bodies of the convolution and pooling kernels, included by
 * kernels.c once per element type with T (float/double) and SFX (f32/f64)
 * defined. Not a public header. */

#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(name, SFX)
/* The max-pool rule: a later position wins when greater, or NaN over a
 * number. */
#define BETTER(v, best) ((v) > (best) || (isnan(v) && !isnan(best)))

/* Rows of nb images' patches: col[(b,oy,ox), (ky,kx,ci)]. */
static void FN(im2col)(const RtConvGeom *g, const T *x, int64_t nb, T *col)
{
    int64_t kcols = g->kh * g->kw * g->c;
    size_t run = (size_t)g->c * sizeof(T);
    for (int64_t b = 0; b < nb; b++)
        for (int64_t oy = 0; oy < g->oh; oy++)
            for (int64_t ox = 0; ox < g->ow; ox++) {
                T *row = col + ((b * g->oh + oy) * g->ow + ox) * kcols;
                for (int64_t ky = 0; ky < g->kh; ky++) {
                    int64_t iy = oy * g->sh - g->pt + ky;
                    for (int64_t kx = 0; kx < g->kw; kx++) {
                        int64_t ix = ox * g->sw - g->pl + kx;
                        T *dst = row + (ky * g->kw + kx) * g->c;
                        const T *src = x + ((b * g->h + iy) * g->w + ix) * g->c;
                        bool pad = iy < 0 || iy >= g->h || ix < 0 || ix >= g->w;
                        if (g->c >= 16)
                            pad ? memset(dst, 0, run) : memcpy(dst, src, run);
                        else
                            for (int64_t ci = 0; ci < g->c; ci++)
                                dst[ci] = pad ? 0 : src[ci];
                    }
                }
            }
}

/* The adjoint of im2col: accumulate patch rows back into dx. */
static void FN(col2im)(const RtConvGeom *g, const T *col, int64_t nb, T *dx)
{
    int64_t kcols = g->kh * g->kw * g->c;
    for (int64_t b = 0; b < nb; b++)
        for (int64_t oy = 0; oy < g->oh; oy++)
            for (int64_t ox = 0; ox < g->ow; ox++) {
                const T *row = col + ((b * g->oh + oy) * g->ow + ox) * kcols;
                for (int64_t ky = 0; ky < g->kh; ky++) {
                    int64_t iy = oy * g->sh - g->pt + ky;
                    if (iy < 0 || iy >= g->h)
                        continue;
                    for (int64_t kx = 0; kx < g->kw; kx++) {
                        int64_t ix = ox * g->sw - g->pl + kx;
                        if (ix < 0 || ix >= g->w)
                            continue;
                        const T *src = row + (ky * g->kw + kx) * g->c;
                        T *dst = dx + ((b * g->h + iy) * g->w + ix) * g->c;
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

/* Few output channels: loops over the windows, no im2col (the GEMM would
 * be a matrix-vector product behind a large patch matrix). */
static void FN(conv_few)(const RtConvGeom *g, const T *x, const T *k, T *y)
{
    for (int64_t b = 0; b < g->n; b++)
        for (int64_t oy = 0; oy < g->oh; oy++)
            for (int64_t ox = 0; ox < g->ow; ox++) {
                T *yo = y + ((b * g->oh + oy) * g->ow + ox) * g->o;
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
            }
}

static void FN(conv_few_grad_input)(const RtConvGeom *g, const T *dy, const T *k, T *dx)
{
    zero(dx, g->n * g->h * g->w * g->c * (int64_t)sizeof(T));
    for (int64_t b = 0; b < g->n; b++)
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

void FN(rt_conv2d)(const RtConvGeom *g, const T *x, const T *k, T *y, T *col)
{
    if (conv_is_few(g)) {
        FN(conv_few)(g, x, k, y);
        return;
    }
    int64_t kcols = g->kh * g->kw * g->c, img_in = g->h * g->w * g->c, img_out = g->oh * g->ow * g->o;
    for (int64_t b0 = 0; b0 < g->n; b0 += g->chunk) {
        int64_t nb = g->n - b0 < g->chunk ? g->n - b0 : g->chunk;
        const T *xb = x + b0 * img_in;
        if (!conv_is_direct(g)) {
            FN(im2col)(g, xb, nb, col);
            xb = col;
        }
        FN(rt_gemm)(0, 0, nb * g->oh * g->ow, g->o, kcols, 1, xb, k, 0, y + b0 * img_out);
    }
}

void FN(rt_conv2d_grad_input)(const RtConvGeom *g, const T *dy, const T *k, T *dx, T *col)
{
    if (conv_is_few(g)) {
        FN(conv_few_grad_input)(g, dy, k, dx);
        return;
    }
    int64_t kcols = g->kh * g->kw * g->c, img_in = g->h * g->w * g->c, img_out = g->oh * g->ow * g->o;
    for (int64_t b0 = 0; b0 < g->n; b0 += g->chunk) {
        int64_t nb = g->n - b0 < g->chunk ? g->n - b0 : g->chunk, rows = nb * g->oh * g->ow;
        T *dxb = dx + b0 * img_in;
        if (conv_is_direct(g)) {
            FN(rt_gemm)(0, 1, rows, kcols, g->o, 1, dy + b0 * img_out, k, 0, dxb);
            continue;
        }
        FN(rt_gemm)(0, 1, rows, kcols, g->o, 1, dy + b0 * img_out, k, 0, col);
        zero(dxb, nb * img_in * (int64_t)sizeof(T));
        FN(col2im)(g, col, nb, dxb);
    }
}

void FN(rt_conv2d_grad_kernel)(const RtConvGeom *g, const T *x, const T *dy, T *dk, T *col)
{
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
            FN(im2col)(g, xb, nb, col);
            xb = col;
        }
        FN(rt_gemm)(1, 0, kcols, g->o, rows, 1, xb, dy + b0 * img_out, 1, dk);
    }
}

void FN(rt_max_pool2d)(const RtPoolGeom *g, const T *x, T *y)
{
    for (int64_t b = 0; b < g->n; b++)
        for (int64_t oy = 0; oy < g->oh; oy++)
            for (int64_t ox = 0; ox < g->ow; ox++) {
                T *yo = y + ((b * g->oh + oy) * g->ow + ox) * g->c;
                PoolWin w = pool_window(g, oy, ox);
                for (int64_t ci = 0; ci < g->c; ci++)
                    yo[ci] = -INFINITY;
                for (int64_t iy = w.y0; iy < w.y1; iy++)
                    for (int64_t ix = w.x0; ix < w.x1; ix++) {
                        const T *xi = x + ((b * g->h + iy) * g->w + ix) * g->c;
                        bool first = iy == w.y0 && ix == w.x0;
                        for (int64_t ci = 0; ci < g->c; ci++)
                            if (first || BETTER(xi[ci], yo[ci]))
                                yo[ci] = xi[ci];
                    }
            }
}

void FN(rt_max_pool2d_grad)(const RtPoolGeom *g, const T *x, const T *dy, T *dx)
{
    zero(dx, g->n * g->h * g->w * g->c * (int64_t)sizeof(T));
    for (int64_t b = 0; b < g->n; b++)
        for (int64_t oy = 0; oy < g->oh; oy++)
            for (int64_t ox = 0; ox < g->ow; ox++) {
                const T *dyo = dy + ((b * g->oh + oy) * g->ow + ox) * g->c;
                PoolWin w = pool_window(g, oy, ox);
                if (w.y0 >= w.y1 || w.x0 >= w.x1)
                    continue;
                for (int64_t ci = 0; ci < g->c; ci++) {
                    int64_t best = ((b * g->h + w.y0) * g->w + w.x0) * g->c + ci;
                    for (int64_t iy = w.y0; iy < w.y1; iy++)
                        for (int64_t ix = w.x0; ix < w.x1; ix++) {
                            int64_t at = ((b * g->h + iy) * g->w + ix) * g->c + ci;
                            if (BETTER(x[at], x[best]))
                                best = at;
                        }
                    dx[best] += dyo[ci];
                }
            }
}

void FN(rt_avg_pool2d)(const RtPoolGeom *g, const T *x, T *y)
{
    for (int64_t b = 0; b < g->n; b++)
        for (int64_t oy = 0; oy < g->oh; oy++)
            for (int64_t ox = 0; ox < g->ow; ox++) {
                T *yo = y + ((b * g->oh + oy) * g->ow + ox) * g->c;
                PoolWin w = pool_window(g, oy, ox);
                memset(yo, 0, (size_t)g->c * sizeof(T));
                for (int64_t iy = w.y0; iy < w.y1; iy++)
                    for (int64_t ix = w.x0; ix < w.x1; ix++) {
                        const T *xi = x + ((b * g->h + iy) * g->w + ix) * g->c;
                        for (int64_t ci = 0; ci < g->c; ci++)
                            yo[ci] += xi[ci];
                    }
                int64_t count = (w.y1 - w.y0) * (w.x1 - w.x0);
                if (count > 0)
                    for (int64_t ci = 0; ci < g->c; ci++)
                        yo[ci] /= (T)count;
            }
}

void FN(rt_avg_pool2d_grad)(const RtPoolGeom *g, const T *dy, T *dx)
{
    zero(dx, g->n * g->h * g->w * g->c * (int64_t)sizeof(T));
    for (int64_t b = 0; b < g->n; b++)
        for (int64_t oy = 0; oy < g->oh; oy++)
            for (int64_t ox = 0; ox < g->ow; ox++) {
                const T *dyo = dy + ((b * g->oh + oy) * g->ow + ox) * g->c;
                PoolWin w = pool_window(g, oy, ox);
                int64_t count = (w.y1 - w.y0) * (w.x1 - w.x0);
                if (count <= 0)
                    continue;
                for (int64_t iy = w.y0; iy < w.y1; iy++)
                    for (int64_t ix = w.x0; ix < w.x1; ix++) {
                        T *dxi = dx + ((b * g->h + iy) * g->w + ix) * g->c;
                        for (int64_t ci = 0; ci < g->c; ci++)
                            dxi[ci] += dyo[ci] / (T)count;
                    }
            }
}

#undef FN
#undef BETTER
#undef CAT
#undef CAT_
