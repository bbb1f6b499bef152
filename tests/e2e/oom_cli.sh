#!/bin/bash
# Running out of memory in `modelc train` (compile, data loading on its
# own thread, initialisation, training under the watch with its NaN guard,
# TensorBoard events, early stopping and the best checkpoint, per-kernel
# profile and compile timings, evaluation, saving): with the k-th
# allocation failing (MODELC_FAIL_ALLOC=k) for a sample of k over the whole
# run, the command either completes or exits 1 with an "out of memory"
# message, never crashes or reports an internal error. The library's own
# walk over every early k is tests/unit/test_oom.c.
set -euo pipefail
: "${MODELC:?MODELC not set}"
cd "$(dirname "$0")/../.."
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
run() {
    MODELC_FAIL_ALLOC=$1 "$MODELC" train tests/data/oom/mlp.mdl --data tests/data/oom/tiny.csv \
        --val-split 0.25 --threads 2 --no-cache --no-progress --save "$t/w.safetensors" \
        --watch 2 --check-numerics --profile --time-passes --tensorboard "$t/tb" \
        --early-stopping 1 --save-best "$t/best.safetensors" >"$t/out" 2>"$t/err"
}
completed=0 failed=0 k=1
while [ "$k" -le 100000 ]; do
    rc=0
    run "$k" || rc=$?
    if [ "$rc" = 0 ]; then
        completed=$((completed + 1))
        [ "$completed" -ge 3 ] && break # past the run's last allocation
    elif [ "$rc" = 1 ]; then
        grep -q "out of memory" "$t/err" || fail "k=$k: exit 1 without the message: $(cat "$t/err")"
        failed=$((failed + 1))
    else
        fail "k=$k: exit $rc: $(cat "$t/err")"
    fi
    ! grep -q "internal error" "$t/err" || fail "k=$k: $(cat "$t/err")"
    k=$((k < 40 ? k + 1 : k + k / 6))
done
[ "$failed" -gt 30 ] || fail "only $failed runs ran out of memory"
echo "ok: $failed runs ran out of memory cleanly, $completed completed (last k = $k)"
