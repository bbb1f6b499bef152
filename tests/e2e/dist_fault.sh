#!/bin/bash
# A process of a data-parallel run dies (SIGKILL of rank 1 after the
# first checkpoint): the others stop within a bounded time with a message
# naming the rank, and the last checkpoint rank 0 wrote is intact.
set -euo pipefail
: "${MODELC:?}"
if ! command -v mpirun > /dev/null; then
    echo "SKIP: mpirun not found (scripts/install-deps.sh installs openmpi-bin)"
    exit 0
fi
t=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2> /dev/null; rm -rf "$t"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
# no leak checks in the processes mpirun starts (see dist_train.sh)
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
if ! mpirun --allow-run-as-root --oversubscribe -np 2 "$MODELC" train tests/e2e/models/tiny_bn.mdl --limit 10 \
    --epochs 1 --no-test --no-warn > "$t/probe.log" 2>&1; then
    grep -q "built without MPI" "$t/probe.log" || fail "mpirun -np 2: $(cat "$t/probe.log")"
    echo "SKIP: modelc was built without MPI (it refuses to run as one of 2 processes)"
    exit 0
fi
m=tests/e2e/models/tiny_bn.mdl
mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 "$MODELC" train "$m" --limit 2000 --epochs 100000 \
    --no-test --no-progress --no-warn --threads 1 --save "$t/ckpt.st" > "$t/out" 2>&1 &
pid=$!
for _ in $(seq 600); do [ -s "$t/ckpt.st" ] && break; sleep 0.2; done
[ -s "$t/ckpt.st" ] || fail "no checkpoint after two minutes: $(cat "$t/out")"
# rank 1: the child of mpirun whose environment says so
victim=""
for c in $(pgrep -P "$pid"); do
    if tr '\0' '\n' < "/proc/$c/environ" 2> /dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1"; then victim=$c; fi
done
[ -n "$victim" ] || fail "rank 1 not found among the children of mpirun"
kill -9 "$victim"
start=$(date +%s)
set +e
wait "$pid"
rc=$?
set -e
pid=""
secs=$(($(date +%s) - start))
[ "$rc" -ne 0 ] || fail "mpirun exited with 0 after rank 1 was killed"
[ "$secs" -le 60 ] || fail "the other process stopped only after $secs s"
grep -q "rank 1 .*signal 9" "$t/out" || fail "no message naming rank 1: $(cat "$t/out")"
# the last checkpoint loads and evaluates
"$MODELC" eval "$m" --weights "$t/ckpt.st" --limit 100 > "$t/eval" 2>&1 || fail "checkpoint: $(cat "$t/eval")"
grep "signal 9" "$t/out"
echo "dist_fault: ok (stopped $secs s after the kill)"
