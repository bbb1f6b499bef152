/* File helpers shared inside the runtime: atomic writes, reading through
 * zlib (gzip-compressed or plain files alike), little-endian fields.
 * Internal to the runtime. */
#ifndef MODELC_RT_IO_H
#define MODELC_RT_IO_H

#include "runtime/io/io.h"

#include <zlib.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the runtime reads and writes little-endian data in place"
#endif

/* The location used for diagnostics about a whole file. */
SrcLoc rt_file_loc(Diags *d, const char *path);
/* A 64-bit line or column count as a SrcLoc field: INT_MAX past it. */
static inline int rt_loc_int(int64_t v)
{
    return v > INT32_MAX ? INT32_MAX : v < 0 ? 0 : (int)v;
}

/* One piece of a file written by rt_write_atomic. */
typedef struct RtChunk {
    const void *p;
    size_t n;
} RtChunk;

/* Write the chunks to path atomically: a temporary file in the same
 * directory, fsync, rename over path, fsync the directory. On any failure
 * the temporary file is removed, the old file (if any) is untouched, and a
 * diagnostic names path. */
bool rt_write_atomic(const char *path, const RtChunk *chunks, int n, Diags *d);

/* Sequential reading through zlib (plain files pass through unchanged). */
typedef struct RtReader {
    gzFile gz;
    const char *path;
    SrcLoc loc;
    Diags *d;
    int64_t pos; /* uncompressed bytes consumed so far */
    MemCleanup on_jump; /* closes the file if memory runs out while open */
} RtReader;

bool rt_reader_open(RtReader *r, const char *path, Diags *d);
/* Read up to n bytes; returns the count (short only at the end of the
 * data) or -1 after reporting corrupt compressed data. */
int64_t rt_reader_read(RtReader *r, void *buf, int64_t n);
void rt_reader_close(RtReader *r);
/* Read n bytes into a buffer that grows as data arrives (so a header that
 * promises more than the file holds never causes a huge allocation). *got
 * is the count read (< n at the end of the data); NULL after a diagnostic
 * about corrupt compressed data. */
unsigned char *rt_reader_read_n(RtReader *r, int64_t n, int64_t *got);
/* 1 if no data is left, 0 if there is more, -1 after a diagnostic. */
int rt_reader_at_end(RtReader *r);
/* The whole (uncompressed) content, NUL-terminated; NULL after a
 * diagnostic, including when it exceeds max bytes. */
unsigned char *rt_read_all(const char *path, int64_t max, size_t *len, Diags *d);

/* Labels i32[N] as one-hot dt[N,classes] (labels already checked). */
Tensor *rt_one_hot(const Tensor *labels, int classes, DType dt);

static inline uint32_t rt_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t rt_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

#endif
