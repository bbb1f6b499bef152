/* A fuzz target: one function that takes any bytes and must neither
 * crash, hang, leak nor trip a sanitizer. Built with libFuzzer (make fuzz,
 * clang) and replayed over its committed corpus in make test (replay.c). */
#ifndef MODELC_FUZZ_H
#define MODELC_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The loaders that read files by name get the bytes as an in-memory
 * file, /proc/self/fd/N (path: 32 bytes); -1 when it cannot be made. */
int fuzz_file(const uint8_t *data, size_t size, char *path);

#endif
