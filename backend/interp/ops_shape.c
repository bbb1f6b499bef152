/* Interpreter routines for reductions (sum, mean, max over Attrs.axes with
 * keepdims; argmax over axes[0]) and shape ops (broadcast, reshape,
 * transpose, slice and its scatter adjoint, concat). Shape ops copy whole
 * elements, so they work for every dtype including i32. */
#include "backend/interp/interp_impl.h"

#include <math.h>
#include <string.h>

/* A sum's walk over its operand: outputs follow the kept axes (sizes
 * kdim, operand strides kst), each output's terms the reduced axes (rdim,
 * rst), count terms per output; both in row-major order. */
typedef struct RedWalk {
    int nk, nr;
    int64_t kdim[IR_MAXRANK], kst[IR_MAXRANK];
    int64_t rdim[IR_MAXRANK], rst[IR_MAXRANK];
    int64_t count;
} RedWalk;

#define KERN_FILE "kern_reduce.inc"
#include "kern_instantiate.inc"

/* ---- reductions ---- */

/* For each input axis, the stride of the output element it lands in:
 * 0 along reduced axes, the output stride of the kept axis otherwise. */
static void reduce_strides(const Node *nd, const Tensor *a, const Tensor *out, int64_t *ost)
{
    bool red[IR_MAXRANK] = {0};
    for (int i = 0; i < nd->a.naxes; i++)
        red[nd->a.axes[i]] = true;
    int64_t st[IR_MAXRANK];
    ix_strides(out, st);
    int j = 0;
    for (int k = 0; k < a->rank; k++) {
        if (red[k]) {
            ost[k] = 0;
            j += nd->a.keepdims;
        } else {
            ost[k] = st[j++];
        }
    }
    MC_ASSERT(j == out->rank);
}

static void red_walk(const Node *nd, const Tensor *a, RedWalk *w)
{
    bool red[IR_MAXRANK] = {0};
    for (int i = 0; i < nd->a.naxes; i++)
        red[nd->a.axes[i]] = true;
    int64_t st[IR_MAXRANK];
    ix_strides(a, st);
    w->nk = w->nr = 0;
    w->count = 1;
    for (int k = 0; k < a->rank; k++) {
        if (red[k]) {
            w->rdim[w->nr] = a->dims[k];
            w->rst[w->nr++] = st[k];
            w->count *= a->dims[k];
        } else {
            w->kdim[w->nk] = a->dims[k];
            w->kst[w->nk++] = st[k];
        }
    }
}

INTERP_FN(reduce_sum)
{
    RedWalk w;
    red_walk(nd, in[0], &w);
    IX_BY_DTYPE(out->dt, reduce_sum, in[0], &w, out);
    return true;
}

INTERP_FN(reduce_mean)
{
    RedWalk w;
    red_walk(nd, in[0], &w);
    IX_BY_DTYPE(out->dt, reduce_mean, in[0], &w, out);
    return true;
}

INTERP_FN(reduce_max)
{
    int64_t ost[IR_MAXRANK];
    reduce_strides(nd, in[0], out, ost);
    IX_BY_DTYPE(out->dt, reduce_max, in[0], ost, out);
    return true;
}

/* Split t's dims around axis ax into outer * len * inner. */
static void split_axis(const Tensor *t, int ax, int64_t *outer, int64_t *len, int64_t *inner)
{
    *outer = *inner = 1;
    for (int k = 0; k < ax; k++)
        *outer *= t->dims[k];
    for (int k = ax + 1; k < t->rank; k++)
        *inner *= t->dims[k];
    *len = t->dims[ax];
}

INTERP_FN(argmax)
{
    int64_t outer, len, inner;
    split_axis(in[0], nd->a.axes[0], &outer, &len, &inner);
    IX_BY_DTYPE(out->dt, argmax, in[0], outer, len, inner, out);
    return true;
}

/* ---- shape ops ---- */

static void copy_elem(Tensor *dst, int64_t i, const Tensor *src, int64_t j)
{
    size_t es = (size_t)ir_dtype_size(src->dt);
    memcpy((char *)dst->data + (size_t)i * es, (const char *)src->data + (size_t)j * es, es);
}

INTERP_FN(broadcast)
{
    int64_t st[IR_MAXRANK], c[IR_MAXRANK] = {0};
    ix_bcast_strides(in[0], out->rank, st);
    for (int64_t i = 0; i < out->numel; i++) {
        copy_elem(out, i, in[0], ix_offset(out->rank, c, st));
        ix_next(out->rank, out->dims, c);
    }
    return true;
}

INTERP_FN(reshape)
{
    MC_ASSERT(in[0]->numel == out->numel && in[0]->dt == out->dt);
    if (out->numel)
        memcpy(out->data, in[0]->data, (size_t)out->numel * (size_t)ir_dtype_size(out->dt));
    return true;
}

/* out.dims[k] = in.dims[perm[k]]: output axis k walks input axis perm[k]. */
INTERP_FN(transpose)
{
    int64_t ist[IR_MAXRANK], st[IR_MAXRANK], c[IR_MAXRANK] = {0};
    ix_strides(in[0], ist);
    for (int k = 0; k < out->rank; k++)
        st[k] = ist[nd->a.axes[k]];
    for (int64_t i = 0; i < out->numel; i++) {
        copy_elem(out, i, in[0], ix_offset(out->rank, c, st));
        ix_next(out->rank, out->dims, c);
    }
    return true;
}

/* The slice (begin, end, step) of `whole` must yield `part`'s dims. Static
 * axes were checked by shape inference; a fixed range of the batch
 * dimension can only be checked now that N is known. */
static bool slice_fits(Interp *ip, const Node *nd, const Tensor *whole, const Tensor *part)
{
    for (int k = 0; k < whole->rank; k++) {
        int64_t b = nd->a.begin[k], e = nd->a.end[k], st = nd->a.step[k], dim = whole->dims[k];
        if (e == INT64_MAX)
            e = dim;
        if (b >= 0 && b <= e && e <= dim && st >= 1 && ir_slice_len(b, e, st) == part->dims[k])
            continue;
        char t[128];
        diag_error(ip->d, nd->loc, "%s [%lld:%lld] is out of range for axis %d of %s (N = %lld)",
                   ir_ops[nd->op].name, (long long)nd->a.begin[k], (long long)nd->a.end[k], k,
                   ix_type_str(whole, t, sizeof t), (long long)ip->n);
        return false;
    }
    return true;
}

/* Strides that take a multi-index of the slice to its offset in the whole
 * tensor, and the offset of the slice's first element (slice_fits holds). */
static int64_t slice_strides(const Node *nd, const Tensor *whole, int64_t *st)
{
    int64_t wst[IR_MAXRANK], base = 0;
    ix_strides(whole, wst);
    for (int k = 0; k < whole->rank; k++) {
        int64_t b = nd->a.begin[k], e = nd->a.end[k] == INT64_MAX ? whole->dims[k] : nd->a.end[k];
        st[k] = ir_slice_step(b, e, nd->a.step[k]) * wst[k];
        base += b * wst[k];
    }
    return base;
}

INTERP_FN(slice)
{
    if (!slice_fits(ip, nd, in[0], out))
        return false;
    int64_t st[IR_MAXRANK], c[IR_MAXRANK] = {0};
    int64_t base = slice_strides(nd, in[0], st);
    for (int64_t i = 0; i < out->numel; i++) {
        copy_elem(out, i, in[0], base + ix_offset(out->rank, c, st));
        ix_next(out->rank, out->dims, c);
    }
    return true;
}

/* Zeros of Attrs.shape with the operand written into the slice. */
INTERP_FN(slice_grad)
{
    const Tensor *g = in[0];
    if (!slice_fits(ip, nd, out, g))
        return false;
    int64_t st[IR_MAXRANK], c[IR_MAXRANK] = {0};
    int64_t base = slice_strides(nd, out, st);
    for (int64_t i = 0; i < g->numel; i++) {
        copy_elem(out, base + ix_offset(g->rank, c, st), g, i);
        ix_next(g->rank, g->dims, c);
    }
    return true;
}

/* Row-major: for each index of the axes before the concat axis, the
 * operands' blocks follow each other in operand order. */
INTERP_FN(concat)
{
    int ax = nd->a.axes[0];
    int64_t outer, len, inner;
    split_axis(out, ax, &outer, &len, &inner);
    size_t es = (size_t)ir_dtype_size(out->dt);
    for (int64_t o = 0; o < outer; o++) {
        int64_t at = 0;
        for (int j = 0; j < nd->nin; j++) {
            int64_t blk = in[j]->dims[ax] * inner;
            if (blk > 0)
                memcpy((char *)out->data + (size_t)((o * len + at) * inner) * es,
                       (const char *)in[j]->data + (size_t)(o * blk) * es, (size_t)blk * es);
            at += in[j]->dims[ax];
        }
        MC_ASSERT(at == len);
    }
    return true;
}
