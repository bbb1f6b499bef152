#!/bin/bash
# OpenBLAS's kernels (runtime/kernels.c): the user's OPENBLAS_CORETYPE is
# kept; OpenBLAS's own choice is kept unless it fell below AVX2 on a CPU
# with AVX2 and FMA, where the kernels are re-selected for the CPU's
# instruction set (SkylakeX with AVX-512 F/BW/VL/DQ, else Haswell);
# MODELC_BLAS_AS_LOADED=1 keeps whatever OpenBLAS picked. `modelc
# --version` says which kernels run.
set -euo pipefail
: "${MODELC:?MODELC not set}"
fail() { echo "FAIL: $*"; exit 1; }
blas() { "$@" | sed -n 's/^BLAS: //p'; }

# The user's choice stands, in both directions.
[[ $(blas env OPENBLAS_CORETYPE=Prescott "$MODELC" --version) == "OpenBLAS Prescott kernels" ]] ||
    fail "OPENBLAS_CORETYPE=Prescott was not kept: $(blas env OPENBLAS_CORETYPE=Prescott "$MODELC" --version)"
[[ $(blas env OPENBLAS_CORETYPE=Haswell "$MODELC" --version) == "OpenBLAS Haswell kernels" ]] ||
    fail "OPENBLAS_CORETYPE=Haswell was not kept"

flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
has() { [[ " $flags " == *" $1 "* ]]; }
now=$(blas env -u OPENBLAS_CORETYPE "$MODELC" --version)
loaded=$(blas env -u OPENBLAS_CORETYPE MODELC_BLAS_AS_LOADED=1 "$MODELC" --version)
echo "as loaded: $loaded; in use: $now"
[[ $loaded != *"re-selected"* ]] || fail "MODELC_BLAS_AS_LOADED=1 still re-selected: $loaded"
if ! has avx2 || ! has fma; then
    [[ $now == "$loaded" ]] || fail "re-selected on a CPU without AVX2 and FMA: $now"
    echo "ok: no AVX2+FMA, OpenBLAS's choice kept ($now)"
    exit 0
fi
want=Haswell
has avx512f && has avx512bw && has avx512vl && has avx512dq && want=SkylakeX
case "$loaded" in
*Haswell* | *Zen* | *SkylakeX* | *Cooperlake* | *SapphireRapids*)
    [[ $now == "$loaded" ]] || fail "OpenBLAS picked AVX2 kernels or better ($loaded), yet: $now"
    echo "ok: OpenBLAS's own choice kept ($now)" ;;
*)
    [[ $now == "OpenBLAS $want kernels (it picked "*"; re-selected by instruction set)" ]] ||
        fail "expected $want kernels re-selected, got: $now" ;;
esac
echo "ok: $now"
# (Every test program links the runtime, so the JIT-against-interpreter
# tests run on the kernels chosen here.)
