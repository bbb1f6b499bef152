/* Internal interface of the LLVM backend's compile pipeline: the plan to
 * native code in parts compiled on their own threads (compile.c), and the
 * on-disk cache of their object files (objcache.c). Not a public header. */
#ifndef MODELC_COMPILE_H
#define MODELC_COMPILE_H

#include <llvm-c/LLJIT.h>

#include "cg.h"

/* The optimisation pipeline of an opt level (NULL: none). Level 2 is
 * modelc's own short pipeline for kernel loop nests; level 3 is LLVM's
 * default<O3>. */
const char *jit_pipeline(int level);
/* Mark the module's internal functions (kernels) alwaysinline, so that
 * the pipeline inlines them into their entry. */
void jit_inline_kernels(LLVMModuleRef mod);
void jit_llvm_init(void);
/* The target triple and data layout of tm on mod. */
void jit_set_target(LLVMModuleRef mod, LLVMTargetMachineRef tm);
/* Run the optimisation pipeline of level on mod (nothing for level 0);
 * false with the message in err on failure. */
bool jit_optimise(LLVMModuleRef mod, LLVMTargetMachineRef tm, int level, char *err, size_t errn);

/* Compile plan p into a new LLJIT: *jit and its `entry`; phase times go
 * to t (may be NULL), counts to st. */
bool jit_compile_plan(const Plan *p, const JitOpts *o, LLVMOrcLLJITRef *jit, JitEntryFn *entry,
                      JitStats *st, Timer *t, Diags *d);

/* The modules of plan p's parts in context cx, split, built and
 * optimised exactly as jit_compile_plan does for the JIT, with the entry
 * functions renamed prefix + "entry" (the last part's, which runs the
 * whole plan) and prefix + "entry.<i>" (mods must hold
 * JIT_MAX_PARTS). Returns the number of parts; -1 with err set. */
#define JIT_MAX_PARTS 8
int jit_build_parts(const Plan *p, const JitOpts *o, LLVMContextRef cx, LLVMTargetMachineRef tm,
                    const char *prefix, LLVMModuleRef *mods, char *err, size_t errn);

/* ---- object cache (objcache.c) ---- */
#define JIT_KEY_LEN 32 /* hex digits */

typedef struct KeyHash {
    uint64_t a, b;
} KeyHash;

void key_init(KeyHash *h);
void key_add(KeyHash *h, const void *data, size_t n);
void key_add_str(KeyHash *h, const char *s);
void key_hex(const KeyHash *h, char out[JIT_KEY_LEN + 1]);

/* The object stored under key in dir, or NULL when there is none or the
 * entry is damaged (wrong magic, key, length or checksum). */
LLVMMemoryBufferRef objcache_load(const char *dir, const char *key);
/* Store an object under key: written to a temporary file and renamed, so
 * readers never see a partial entry. False when it could not be written
 * (the cache is an optimisation: callers go on without it). */
bool objcache_store(const char *dir, const char *key, const char *data, size_t n, int part);

#endif
