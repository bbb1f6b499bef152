/* Batch tiles (cg.h, plan_tiles; docs/ops.md, "Batch tiles").
 *
 * A run of consecutive steps each of which computes an example's rows of
 * its result from that example's rows of its operands (and from buffers
 * without the batch axis: weights) gives the same bits when it runs
 * TILE rows of the batch at a time through the whole run, each step with
 * N = the tile's rows on buffers offset by the tile's first row. Then a
 * temporary that only the run's steps write and read (a convolution's
 * result that its bias and activation read, an activation that pooling
 * reads, at inference) needs a tile's rows, not the batch's: at batch
 * 1000 the CNN's two convolution results shrink from 233 MB to a few MB
 * that stay in cache, instead of being written to memory and read back.
 *
 * Steps that join a run: convolutions and their input gradients, pooling
 * and its gradients, and row-parallel kernels (cg_row_chunk), with every
 * buffer leading with N or without N. Not: GEMMs (a few rows at a time
 * would make them read their weights once per tile), reductions over the
 * batch, loops. (A step that finishes an output tells the data-parallel
 * driver so after the last tile.) A producer and its epilogues join together or not
 * at all. A run becomes a tile only when it has temporaries of its own.
 *
 * The buffers of the run that are not its own (its inputs and results)
 * are kept apart from every other buffer of the run for the whole run:
 * the steps repeat once per tile.
 *
 * A tile has about TILE_BYTES of its own temporaries (at least one
 * row): a convolution's call costs some time of its own (its weights'
 * transform, its threads), so tiles of 4 MB were slower than none on the
 * CNN at batch 1000, and 32 MB tiles ran it 1.25x faster than none
 * (docs/ops.md). Rows of more than TILE_BYTES / 16 (S0's 4.9 MB images)
 * make tiles of fewer than 16 rows, each still a large call: S0's
 * training step at batch 32 in tiles of 6 rows instead of 16, 127 -> 122
 * ms and 418 -> 370 MB of peak RSS. MODELC_TILE_ROWS=R sets the rows. */
#include "cg.h"

#include <stdlib.h>
#include <string.h>

#define TILE_BYTES ((int64_t)32 << 20) /* a tile's own temporaries, about */

int64_t plan_slot_elems(Mono elems, int64_t tile_rows, int64_t n)
{
    return mono_eval(elems, tile_rows > 0 && n > tile_rows ? tile_rows : n);
}

static bool tile_op(const Plan *p, const Step *st)
{
    if (st->kind != STEP_KERNEL || st->scratch2 >= 0)
        return false;
    const Node *v = st->node;
    if (v->sub && v->sub->nouts > 1)
        return false; /* side results: a whole parameter, or sums over the batch */
    switch (v->op) {
    case OP_CONV2D:
    case OP_CONV2D_GRAD_INPUT:
    case OP_MAX_POOL2D:
    case OP_AVG_POOL2D:
    case OP_MAX_POOL2D_GRAD:
    case OP_AVG_POOL2D_GRAD:
        break;
    default:
        return cg_row_chunk(p, st) > 0;
    }
    if (st->scratch >= 0 && p->slots[st->scratch].elems.p != 0)
        return false;
    if (plan_split_kind(p, st->out, &v->shape) != 1)
        return false;
    for (int i = 0; i < v->nin; i++) {
        int s = p->node_slot[v->in[i]->id];
        if (s >= 0 && plan_split_kind(p, s, &v->in[i]->shape) < 0)
            return false;
    }
    return true;
}

/* A kernel none of whose buffers has the batch axis (batchnorm's scale
 * from its moving variance). */
static bool weights_only(const Plan *p, const Step *st)
{
    if (st->kind != STEP_KERNEL || st->epilogue || st->scratch2 >= 0)
        return false;
    int slots[CG_MAXARGS], ns = cg_step_slots(p, st, slots);
    for (int k = 0; k < ns; k++)
        if (ir_shape_has_n(&p->slots[slots[k]].shape))
            return false;
    return true;
}

static bool tiles_off(void)
{
    const char *off = getenv("MODELC_NO_TILE");
    return off && *off && strcmp(off, "0") != 0;
}

void plan_tiles_order(Plan *p)
{
    if (tiles_off())
        return;
    for (int m = 1; m + 1 < p->nsteps; m++) {
        if (!weights_only(p, &p->steps[m]) || p->steps[m + 1].epilogue || !tile_op(p, &p->steps[m - 1]))
            continue;
        int t = m; /* the earliest place after every step it depends on, not inside a chain */
        while (t > 0 && !plan_steps_depend(p, t - 1, m))
            t--;
        while (t < m && p->steps[t].epilogue)
            t++;
        if (t < m)
            plan_move_step(p, m, t);
    }
}

/* Is sl a temporary, of a row per example, that only steps [a, b) use? */
static bool own_slot(const Slot *sl, int a, int b)
{
    return sl->kind == JIT_BUF_TEMP && sl->first >= a && sl->last < b && sl->elems.p == 1 &&
           plan_n_leading(&sl->shape);
}

/* Bytes per example of the temporaries that only steps [a, b) use. */
static int64_t own_row_bytes(const Plan *p, int a, int b)
{
    int64_t bytes = 0;
    for (int s = 0; s < p->nslots; s++)
        if (own_slot(&p->slots[s], a, b))
            bytes += p->slots[s].elems.c * ir_dtype_size(p->slots[s].dt);
    return bytes;
}

static void make_tile(Plan *p, int a, int b, int id, int64_t rows)
{
    for (int s = 0; s < p->nslots; s++)
        if (own_slot(&p->slots[s], a, b))
            p->slots[s].tile_rows = rows;
    for (int i = a; i < b; i++) {
        p->steps[i].tile = id;
        p->steps[i].tile_rows = rows;
        int slots[CG_MAXARGS], ns = cg_step_slots(p, &p->steps[i], slots);
        for (int k = 0; k < ns; k++) {
            Slot *sl = &p->slots[slots[k]];
            if (sl->kind != JIT_BUF_TEMP || sl->tile_rows)
                continue;
            if (sl->first > a)
                sl->first = a;
            if (sl->last < b - 1)
                sl->last = b - 1;
        }
    }
}

void plan_tiles(Plan *p)
{
    if (tiles_off() || p->nsteps == 0)
        return;
    const char *fr = getenv("MODELC_TILE_ROWS"); /* rows per tile instead of the size rule (tests, tuning) */
    int64_t force = fr ? atoll(fr) : 0;
    bool *ok = xcalloc((size_t)p->nsteps, sizeof(bool));
    for (int i = 0; i < p->nsteps; i++)
        ok[i] = tile_op(p, &p->steps[i]);
    for (int i = 0; i < p->nsteps; i++) { /* a producer and its epilogues: all or none */
        int last = i;
        while (last + 1 < p->nsteps && p->steps[last + 1].epilogue)
            last++;
        bool all = true;
        for (int k = i; k <= last; k++)
            all &= ok[k];
        for (int k = i; k <= last; k++)
            ok[k] = all;
        i = last;
    }
    int id = 0;
    for (int a = 0; a < p->nsteps;) {
        if (!ok[a]) {
            a++;
            continue;
        }
        int b = a;
        while (b < p->nsteps && ok[b])
            b++;
        int64_t row = own_row_bytes(p, a, b);
        if (row > 0) {
            int64_t rows = TILE_BYTES / row;
            rows = rows < 1 ? 1 : rows;
            make_tile(p, a, b, ++id, force > 0 ? force : rows);
        }
        a = b;
    }
    xfree(ok);
}
