/* A fuzz target: one function that takes any bytes and must neither
 * crash, hang, leak nor trip a sanitizer. Built with libFuzzer (make fuzz,
 * clang) and replayed over its committed corpus in make test (replay.c). */
#ifndef MODELC_FUZZ_H
#define MODELC_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
