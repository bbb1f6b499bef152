/* Plain text as a character-level data set: the file's bytes are the
 * character ids (byte value = id, no vocabulary to store), cut into
 * windows of T bytes; the labels are the bytes that follow, one per
 * position (i32[N,T]) or the one after the window (i32[N]). */
#include "rtio.h"

#include <string.h>

#define TEXT_MAX_BYTES ((int64_t)1 << 32)

/* Line and column (1-based, in bytes) of offset k, for a diagnostic. */
static SrcLoc text_loc(Diags *d, const char *path, const unsigned char *s, int64_t k)
{
    int64_t line = 1, col = 1;
    for (int64_t i = 0; i < k; i++) {
        if (s[i] == '\n')
            line++, col = 1;
        else
            col++;
    }
    SrcLoc loc = rt_file_loc(d, path);
    loc.line = rt_loc_int(line);
    loc.col = rt_loc_int(col);
    return loc;
}

static Tensor *new_ids(int rank, const int64_t *dims, const char *path, Diags *d)
{
    Tensor *t = rt_tensor_new(DT_I32, rank, dims);
    if (!t) {
        char why[128];
        diag_error(d, rt_file_loc(d, path), "the text's windows do not fit: %s",
                   rt_tensor_failure(DT_I32, rank, dims, why, sizeof why));
    }
    return t;
}

bool rt_load_text(const char *path, const RtLoadOpts *o, Dataset *out, Diags *d)
{
    rt_dataset_init(out);
    int64_t T = o->seq_len;
    if (T < 1) {
        diag_error(d, rt_file_loc(d, path), "text data needs a window length of at least 1, got %lld",
                   (long long)T);
        return false;
    }
    size_t len = 0;
    unsigned char *s = rt_read_all(path, TEXT_MAX_BYTES, &len, d);
    if (!s)
        return false;
    bool ok = false;
    Tensor *x = NULL, *y = NULL;
    int64_t n = (int64_t)len;
    int vocab = o->classes > 0 && o->classes < 256 ? o->classes : 256;
    if (n == 0) {
        diag_error(d, rt_file_loc(d, path), "empty text file: no characters to learn from");
        goto done;
    }
    if (n < T + 1) {
        diag_error(d, rt_file_loc(d, path),
                   "text of %lld bytes is too short: one example needs %lld (a window of %lld "
                   "characters and the one after it)",
                   (long long)n, (long long)(T + 1), (long long)T);
        goto done;
    }
    for (int64_t k = 0; k < n; k++) {
        if (s[k] == 0) {
            diag_error(d, text_loc(d, path, s, k),
                       "NUL byte (offset %lld): text holds none; is it a binary file?", (long long)k);
            goto done;
        }
        if (s[k] >= vocab) {
            diag_error(d, text_loc(d, path, s, k),
                       "byte 0x%02x (offset %lld) is not a character id of the model: its "
                       "vocabulary has %d ids (bytes 0x00 to 0x%02x)%s",
                       s[k], (long long)k, vocab, vocab - 1,
                       s[k] >= 128 ? "; the file is not 7-bit ASCII text" : "");
            goto done;
        }
    }
    /* Example i: x = bytes [iT, iT+T), labels = bytes [iT+1, iT+T+1)
     * (or byte iT+T alone). The windows do not overlap, so every byte
     * after the first is a label once. */
    int64_t count = (n - 1) / T;
    int64_t xd[2] = {count, T};
    if (!(x = new_ids(2, xd, path, d)) || !(y = new_ids(o->seq_labels ? 2 : 1, xd, path, d)))
        goto done;
    int32_t *xp = x->data, *yp = y->data;
    for (int64_t i = 0; i < count; i++) {
        const unsigned char *w = s + i * T;
        for (int64_t t = 0; t < T; t++)
            xp[i * T + t] = w[t];
        if (o->seq_labels)
            for (int64_t t = 0; t < T; t++)
                yp[i * T + t] = w[t + 1];
        else
            yp[i] = w[T];
    }
    ok = rt_dataset_add(out, o->x_name, x); /* takes x, or frees it */
    x = NULL;
    if (ok) {
        ok = rt_dataset_add(out, o->y_name, y);
        y = NULL;
    }
    if (!ok) {
        diag_error(d, rt_file_loc(d, path), "cannot build the text data set");
        rt_dataset_free(out);
    }
done:
    if (x)
        rt_tensor_free(x);
    if (y)
        rt_tensor_free(y);
    xfree(s);
    return ok;
}
