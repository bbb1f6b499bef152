#!/bin/bash
# Running out of memory while importing, running and exporting ONNX
# models: with the k-th allocation failing (MODELC_FAIL_ALLOC=k) for a
# sample of k over the whole run of `modelc import`, `modelc predict
# model.onnx` and `modelc export`, the command either completes or exits 1
# with an "out of memory" message, never crashes or reports an internal
# error.
set -euo pipefail
: "${MODELC:?MODELC not set}"
cd "$(dirname "$0")/../.."
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
walk() { # name command...
    local name=$1 completed=0 failed=0 k=1 rc
    shift
    while [ "$k" -le 100000 ]; do
        rc=0
        MODELC_FAIL_ALLOC=$k "$@" >"$t/out" 2>"$t/err" || rc=$?
        if [ "$rc" = 0 ]; then
            completed=$((completed + 1))
            [ "$completed" -ge 3 ] && break
        elif [ "$rc" = 1 ]; then
            grep -q "out of memory" "$t/err" || fail "$name k=$k: exit 1 without the message: $(cat "$t/err")"
            failed=$((failed + 1))
        else
            fail "$name k=$k: exit $rc: $(cat "$t/err")"
        fi
        ! grep -q "internal error" "$t/err" || fail "$name k=$k: $(cat "$t/err")"
        k=$((k < 60 ? k + 1 : k + k / 8))
    done
    [ "$failed" -gt 40 ] || fail "$name: only $failed runs ran out of memory"
}
walk import "$MODELC" import tests/onnx/resnet.onnx -o "$t/m.mdl" --weights-out "$t/w.safetensors"
walk predict "$MODELC" predict tests/onnx/cnn.onnx --backend interp --threads 1 \
    --inputs tests/onnx/cnn.x.safetensors -o "$t/y.safetensors"
walk export "$MODELC" export tests/onnx/resnet.onnx -o "$t/r.onnx"
echo ok
