/* File formats and data sets: safetensors checkpoints, IDX, CSV and NPY
 * files, and data sets of named example tensors. The run-time library
 * that compiled code calls (runtime.h) does not need them. */
#ifndef MODELC_RT_IO_IO_H
#define MODELC_RT_IO_IO_H

#include "runtime/runtime.h"

/* ---- safetensors (safetensors.c) ---- */
/* Metadata (string key/value pairs in __metadata__). */
typedef struct Metadata {
    int n, cap;
    char **keys, **vals;
} Metadata;
void rt_meta_init(Metadata *m);
void rt_meta_free(Metadata *m);
void rt_meta_set(Metadata *m, const char *key, const char *val);
const char *rt_meta_get(const Metadata *m, const char *key);

/* Read: every hostile-file condition becomes a diagnostic naming the file
 * (and the byte offset where it applies). meta may be NULL. The file's
 * tensors are added to out (replacing entries of the same name) only when
 * the whole file is valid; F32, F64 and I32 are accepted. */
bool rt_safetensors_read(const char *path, TensorMap *out, Metadata *meta, Diags *d);
bool rt_safetensors_read_mem(const char *path, const unsigned char *buf, size_t len,
                             TensorMap *out, Metadata *meta, Diags *d);
/* The same, skipping tensors whose name ends in `skip` (of any dtype;
 * only their place in the data is checked): PyTorch's int64
 * ".num_batches_tracked". */
bool rt_safetensors_read_skip(const char *path, const char *skip, TensorMap *out, Metadata *meta, Diags *d);
/* Write atomically: temp file, fsync, rename, fsync directory; on failure
 * the old file is untouched. Tensors sorted by name, contiguous, metadata
 * first, the header padded with spaces to a multiple of 8 bytes. */
bool rt_safetensors_write(const char *path, const TensorMap *m, const Metadata *meta, Diags *d);

/* Check a map against the graph's parameters: missing, extra, wrong
 * dtype/shape are errors naming the tensor. */
bool rt_check_params(const Graph *g, const TensorMap *m, const char *file, bool allow_extra,
                     Diags *d);

/* Metadata keys and values `modelc init` and checkpoints record. */
#define RT_META_FORMAT "format"
#define RT_META_FORMAT_NAME "modelc-params"
#define RT_META_FORMAT_VERSION "format_version"
#define RT_FORMAT_VERSION "1"
#define RT_META_MODEL "model"
#define RT_META_SEED "seed"

/* ---- TensorBoard event files (tfevents.c) ---- */
typedef struct RtEvents RtEvents;
/* Create dir when missing (one level) and start
 * dir/events.out.tfevents.<time>.<host>.<pid> with its file_version
 * record; NULL with a diagnostic naming the file. */
RtEvents *rt_events_open(const char *dir, Diags *d);
const char *rt_events_path(const RtEvents *e);
/* One Event with a Summary of one value, kept until the next flush. */
void rt_events_scalar(RtEvents *e, const char *tag, int64_t step, double value);
/* A histogram of `count` values (min, max, sum, sum of squares over all of
 * them) from nsamples of them, each standing for count / nsamples values. */
typedef struct RtHisto {
    const double *samples;
    int nsamples;
    double count, min, max, sum, sumsq;
} RtHisto;
void rt_events_histo(RtEvents *e, const char *tag, int64_t step, const RtHisto *h);
/* Write the records kept so far (false with a diagnostic; d may be NULL). */
bool rt_events_flush(RtEvents *e, Diags *d);
/* Flush, close and free (NULL is accepted). */
bool rt_events_close(RtEvents *e, Diags *d);
/* CRC32C (Castagnoli) continuing from crc (0 to start), and the masked
 * form TFRecords store. */
uint32_t rt_crc32c(uint32_t crc, const void *p, size_t n);
uint32_t rt_crc32c_mask(uint32_t crc);

/* ---- data sets (dataset.c): N examples as named tensors whose leading
 * dimension is N ("x" inputs, "y" labels or targets) ---- */

/* 8-bit data (IDX images, NPY |u1 arrays) kept as its bytes: element i is
 * value[data[i]], each value already rounded to the tensor's dtype the way
 * a conversion at load time would have rounded it. Batches convert by
 * table lookup (rt_dataset_batch), so the values are bit-identical. */
typedef struct RtBytes {
    unsigned char *data; /* one byte per element, owned */
    double value[256];
} RtBytes;

/* One data set tensor [N, ...]. t gives its dtype and shape, and holds its
 * values unless bytes is set: then t->data is NULL and the values are read
 * through rt_col_get or a batch. */
typedef struct DataCol {
    char *name;
    Tensor *t;
    RtBytes *bytes;
    bool whole; /* no example axis: the same tensor in every batch (an input without N) */
} DataCol;

typedef struct Dataset {
    int64_t n; /* examples: the leading dimension of the tensors that are not whole (1 when all are) */
    int ncols, cap, nrows; /* nrows: the columns that are not whole */
    DataCol *cols;
} Dataset;

/* Loader options; rt_load_opts_default gives the defaults in brackets. */
typedef struct RtLoadOpts {
    DType dt;           /* float dtype of inputs and float targets [f32] */
    bool scale;         /* 8-bit pixel data (IDX, NPY |u1) divided by 255 [true] */
    bool one_hot;       /* class labels as one-hot dt[N,classes] instead of i32[N] [false] */
    int classes;        /* labels must be < classes; 0 = CSV/NPY labels are float targets [10] */
    const char *x_name; /* ["x"] */
    const char *y_name; /* ["y"] */
    int csv_header;     /* -1 auto-detect (first row has a non-number), 0 none, 1 present [-1] */
    const char *csv_label;   /* label column by header name [NULL] */
    int csv_label_index;     /* label column by 0-based index when csv_label is NULL; -1 none [0] */
    int64_t limit;      /* IDX: read (and inflate) only the first limit examples, 0 = all [0];
                         * the other loaders read everything (callers slice) */
    int64_t seq_len;    /* text: characters per window, T [0] */
    bool seq_labels;    /* text: labels i32[N,T] (the next character at every position)
                         * instead of i32[N] (the one after the window) [false] */
    const char *const *whole; /* safetensors: names of tensors without an example axis, */
    int nwhole;               /* for inputs without N (added as whole columns) [none] */
} RtLoadOpts;
void rt_load_opts_default(RtLoadOpts *o);
/* Every loader initialises `out` itself; on failure it is left empty. */

void rt_dataset_init(Dataset *ds);
void rt_dataset_free(Dataset *ds);
/* Add (taking ownership) a tensor whose leading dimension is the example
 * count; the first tensor sets ds->n. False (tensor freed) when the counts
 * disagree or the tensor is a scalar. */
bool rt_dataset_add(Dataset *ds, const char *name, Tensor *t);
/* Add 8-bit data of dtype dt and shape dims (dims[0] examples), taking
 * ownership of data (one byte per element); byte b stands for value[b]
 * (rounded here to dt). False (data freed) as for rt_dataset_add. */
bool rt_dataset_add_bytes(Dataset *ds, const char *name, DType dt, int rank,
                          const int64_t *dims, unsigned char *data, const double value[256]);
/* Move the data of column *c (of another data set) into ds as name; c
 * keeps its name and is left without data (only rt_dataset_free and
 * rt_dataset_find may be used on its data set after that). */
bool rt_dataset_take(Dataset *ds, const char *name, DataCol *c);
/* Add (taking ownership) a tensor of any shape, scalars too, without an
 * example axis: every batch and slice holds all of it (an input whose
 * shape has no N). A data set of whole columns only has one example. */
bool rt_dataset_add_whole(Dataset *ds, const char *name, Tensor *t);
/* Index of the column named name, or -1; the column itself, or NULL. */
int rt_dataset_find(const Dataset *ds, const char *name);
const DataCol *rt_dataset_col(const Dataset *ds, const char *name);
/* Element i of a column's values (as rt_get). */
double rt_col_get(const DataCol *c, int64_t i);
/* Convert a column's values to dt in place (as rt_tensor_cast; 8-bit data
 * keeps its bytes and converts its 256 values). */
void rt_col_cast(DataCol *c, DType dt);
/* Bytes of element data the data set holds (one per element of 8-bit
 * data). */
int64_t rt_dataset_bytes(const Dataset *ds);
/* Examples [begin, begin+count) of ds copied into out (initialised here). */
void rt_dataset_slice(const Dataset *ds, int64_t begin, int64_t count, Dataset *out);
/* Examples rows[0], ..., rows[count-1] of ds, in that order, copied into
 * out (initialised here); whole columns are copied as they are. */
void rt_dataset_select(const Dataset *ds, const int64_t *rows, int64_t count, Dataset *out);
/* Keras validation_split: train gets the first floor(n*(1-val_frac))
 * examples, val the rest (taken before any shuffling). An error when
 * val_frac is not in (0,1) or either part would be empty. */
bool rt_dataset_split(const Dataset *ds, double val_frac, Dataset *train, Dataset *val,
                      Diags *d);
/* perm[i] = i, then a Fisher-Yates shuffle driven by rt_uniform(seed,
 * stream "shuffle", epoch, i): the same (seed, epoch) gives the same order. */
void rt_perm_identity(int64_t *perm, int64_t n);
void rt_shuffle(int64_t *perm, int64_t n, uint64_t seed, uint64_t epoch);
/* Gather examples perm[start..start+count) (perm NULL = identity) into out,
 * one tensor of values per data set tensor (8-bit data converted) with
 * leading dimension = the rows taken (the last batch may be partial).
 * Reuses out's tensors when their shape fits. Returns the number of rows
 * (0 when start >= n). */
int64_t rt_dataset_batch(const Dataset *ds, const int64_t *perm, int64_t start, int64_t count,
                         TensorMap *out);
/* rt_dataset_batch of rows in order (no perm) that copies only what it
 * must: a column stored as values (not 8-bit, not whole) comes as
 * views[i], a header over its rows inside the data set (valid while ds
 * is); the others are put in out as rt_dataset_batch puts them, with
 * views[i].data NULL. views has ds->ncols elements. */
int64_t rt_dataset_rows(const Dataset *ds, int64_t start, int64_t count, TensorMap *out, Tensor *views);
/* Convert 8-bit columns to tensors of their values (the same values a
 * batch's table lookup gives), column by column while the converted
 * data stays within max_bytes in all; a column that does not fit, or
 * whose memory cannot be had, stays bytes. Returns the bytes used. */
int64_t rt_dataset_decode_bytes(Dataset *ds, int64_t max_bytes);
/* dst[i] := tab[src[i]] for n bytes (vectorised where the CPU can;
 * rt_conv_isa_level chooses): how a batch of 8-bit data becomes f32. */
void rt_bytes_to_f32(const float tab[256], const unsigned char *src, size_t n, float *dst);
/* Scenario S3: n inputs uniform in [lo, hi) as x_name dt[n,1] and, when
 * y_name is not NULL, a target y_name equal to the input. */
bool rt_dataset_uniform(Dataset *out, int64_t n, DType dt, const char *x_name,
                        const char *y_name, double lo, double hi, uint64_t seed);
/* Every tensor of a safetensors file is one data set tensor (same leading
 * dimension); floats are converted to o->dt. */
bool rt_load_safetensors_dataset(const char *path, const RtLoadOpts *o, Dataset *out,
                                 Diags *d);

/* ---- IDX files (idx.c), gzip-compressed or plain ---- */
/* An image file (magic 0x00000803, [N,rows,cols] unsigned bytes) and a label
 * file (0x00000801, [N]): x = dt[N,rows,cols,1] kept as 8-bit data, y =
 * i32[N] or one-hot. */
bool rt_load_idx(const char *images, const char *labels, const RtLoadOpts *o, Dataset *out,
                 Diags *d);
/* dir/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]; split is "train"
 * or "test". */
bool rt_load_fashion_mnist(const char *dir, const char *split, const RtLoadOpts *o,
                           Dataset *out, Diags *d);

/* ---- CSV files (csv.c), gzip-compressed or plain ---- */
/* One example per row; the label column (o->csv_label / csv_label_index)
 * becomes y (class index when o->classes > 0, else a float target
 * dt[N,1]), the other columns x = dt[N,cols]. */
bool rt_load_csv(const char *path, const RtLoadOpts *o, Dataset *out, Diags *d);

/* ---- NPY files (npy.c), versions 1-3 ---- */
/* One array: '<f4' -> f32, '<f8' -> f64, integer and bool types -> i32
 * (values must fit). */
Tensor *rt_npy_read(const char *path, Diags *d);
bool rt_npy_write(const char *path, const Tensor *t, Diags *d); /* atomic, version 1 */
/* x from x_path (converted to o->dt; |u1 kept as 8-bit data of dtype
 * o->dt, scaled when o->scale) and, when y_path is not NULL, labels from
 * y_path (integers checked against o->classes; float targets when
 * classes == 0). */
bool rt_load_npy(const char *x_path, const char *y_path, const RtLoadOpts *o, Dataset *out,
                 Diags *d);

/* ---- plain text (text.c), gzip-compressed or plain ---- */
/* A character-level data set: each byte is a character id (its value,
 * which must be below o->classes when that is under 256). Example i is
 * the window of bytes [iT, iT+T) as x = i32[N,T] (T = o->seq_len); its
 * label is the byte after each position, y = i32[N,T] (o->seq_labels),
 * or the byte after the window, y = i32[N]. N = (bytes - 1) / T: the
 * windows do not overlap and the last partial one is dropped. An empty
 * file or one shorter than T + 1 bytes is an error naming the file; a
 * NUL byte (a binary file) or a byte out of range one at its line and
 * column. */
bool rt_load_text(const char *path, const RtLoadOpts *o, Dataset *out, Diags *d);

#endif
