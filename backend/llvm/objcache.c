/* The on-disk cache of compiled objects. An entry is one file
 * `<dir>/<key>.o`: the magic "MCOBJ01\n", the 32-digit key, the payload's
 * length and checksum (8 bytes each, little endian), then the object file.
 * The key hashes everything the object depends on (the module's bitcode,
 * target CPU and features, pipeline, codegen level, LLVM and modelc
 * versions), so an entry never goes stale; a damaged entry fails the
 * checks and is compiled again and replaced. Writers go through a
 * temporary file and rename(2), so concurrent writers and readers only
 * ever see whole entries. */
#include "compile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "MCOBJ01\n"
#define MAGIC_LEN 8
#define MAX_OBJECT ((uint64_t)1 << 30)

/* Two 64-bit FNV-1a lanes with different bases and a final mix each. */
void key_init(KeyHash *h)
{
    h->a = 0xcbf29ce484222325ull;
    h->b = 0x84222325cbf29ce4ull;
}

void key_add(KeyHash *h, const void *data, size_t n)
{
    const unsigned char *p = data;
    uint64_t a = h->a, b = h->b;
    for (size_t i = 0; i < n; i++) {
        a = (a ^ p[i]) * 0x100000001b3ull;
        b = (b ^ p[i]) * 0x9e3779b97f4a7c15ull;
        b ^= b >> 29;
    }
    h->a = a;
    h->b = b;
}

void key_add_str(KeyHash *h, const char *s)
{
    key_add(h, s, strlen(s) + 1); /* with the terminator: "ab","c" != "a","bc" */
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

void key_hex(const KeyHash *h, char out[JIT_KEY_LEN + 1])
{
    snprintf(out, JIT_KEY_LEN + 1, "%016llx%016llx", (unsigned long long)mix(h->a),
             (unsigned long long)mix(h->b ^ h->a));
}

static uint64_t checksum(const void *data, size_t n)
{
    KeyHash h;
    key_init(&h);
    key_add(&h, data, n);
    return mix(h.a) ^ h.b;
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void entry_path(const char *dir, const char *key, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s.o", dir, key);
}

#define HEADER_LEN (MAGIC_LEN + JIT_KEY_LEN + 16)

LLVMMemoryBufferRef objcache_load(const char *dir, const char *key)
{
    char path[4096];
    entry_path(dir, key, path, sizeof path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char hdr[HEADER_LEN];
    LLVMMemoryBufferRef buf = NULL;
    char *data = NULL;
    if (fread(hdr, 1, HEADER_LEN, f) != HEADER_LEN || memcmp(hdr, MAGIC, MAGIC_LEN) != 0 ||
        memcmp(hdr + MAGIC_LEN, key, JIT_KEY_LEN) != 0)
        goto done;
    uint64_t size = get_u64(hdr + MAGIC_LEN + JIT_KEY_LEN), sum = get_u64(hdr + MAGIC_LEN + JIT_KEY_LEN + 8);
    if (size == 0 || size > MAX_OBJECT)
        goto done;
    data = xmalloc((size_t)size);
    if (fread(data, 1, (size_t)size, f) != size || fgetc(f) != EOF || checksum(data, (size_t)size) != sum)
        goto done;
    buf = LLVMCreateMemoryBufferWithMemoryRangeCopy(data, (size_t)size, key);
done:
    xfree(data);
    fclose(f);
    return buf;
}

/* mkdir -p */
static bool make_dirs(const char *dir)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return false;
    for (char *p = path + 1;; p++) {
        if (*p == '/' || !*p) {
            char c = *p;
            *p = 0;
            if (mkdir(path, 0755) != 0 && errno != EEXIST)
                return false;
            *p = c;
            if (!c)
                return true;
        }
    }
}

bool objcache_store(const char *dir, const char *key, const char *data, size_t n, int part)
{
    if (!make_dirs(dir))
        return false;
    char path[4096], tmp[4200];
    entry_path(dir, key, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.%ld.%d.tmp", path, (long)getpid(), part);
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return false;
    unsigned char hdr[HEADER_LEN];
    memcpy(hdr, MAGIC, MAGIC_LEN);
    memcpy(hdr + MAGIC_LEN, key, JIT_KEY_LEN);
    put_u64(hdr + MAGIC_LEN + JIT_KEY_LEN, n);
    put_u64(hdr + MAGIC_LEN + JIT_KEY_LEN + 8, checksum(data, n));
    bool ok = fwrite(hdr, 1, HEADER_LEN, f) == HEADER_LEN && fwrite(data, 1, n, f) == n;
    ok = (fclose(f) == 0) && ok;
    if (ok)
        ok = rename(tmp, path) == 0;
    if (!ok)
        unlink(tmp);
    return ok;
}
