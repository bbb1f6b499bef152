#!/bin/bash
# Library code frees with xfree, never free(): a block recorded by a
# MemGuard (ir/base/mem.c) and released behind its back would be freed a
# second time when the guard recovers from running out of memory. Only the
# allocator itself calls free().
set -uo pipefail
cd "$(dirname "$0")/../.."
bad=$(grep -nE '(^|[^A-Za-z0-9_.>])free\(' --include='*.c' --include='*.h' --include='*.inc' -r \
    ir frontend passes backend runtime | grep -v '^ir/base/mem\.c:' | grep -vE ':[0-9]+:\s*(/?\*|//)')
[ -z "$bad" ] || { echo "lib_xfree: library code calls free(); use xfree():"; echo "$bad"; exit 1; }
echo "ok"
