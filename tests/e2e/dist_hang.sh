#!/bin/bash
# A process of a data-parallel run stops answering without dying (SIGSTOP
# of rank 1, then of rank 0 in a job of three): the others give up after
# --dist-timeout seconds plus a grace period of at most as long, with a
# message naming the silent rank, and the launcher ends the job; the last
# checkpoint is intact. --dist-timeout takes positive seconds.
set -euo pipefail
: "${MODELC:?}"
if ! command -v mpirun > /dev/null; then
    echo "SKIP: mpirun not found (scripts/install-deps.sh installs openmpi-bin)"
    exit 0
fi
t=$(mktemp -d)
pid=""
victim=""
cleanup() {
    [ -n "$victim" ] && kill -CONT "$victim" 2> /dev/null
    [ -n "$pid" ] && kill "$pid" 2> /dev/null
    rm -rf "$t"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
m=tests/e2e/models/tiny_bn.mdl
if ! mpirun --allow-run-as-root --oversubscribe -np 2 "$MODELC" train "$m" --limit 10 --epochs 1 --no-test --no-warn \
    > "$t/probe.log" 2>&1; then
    grep -q "built without MPI" "$t/probe.log" || fail "mpirun -np 2: $(cat "$t/probe.log")"
    echo "SKIP: modelc was built without MPI"
    exit 0
fi
set +e
"$MODELC" train "$m" --limit 10 --dist-timeout 0 > /dev/null 2> "$t/u"
rc=$?
set -e
[ $rc -eq 2 ] && grep -q "\-\-dist-timeout must be a positive number of seconds, got 0" "$t/u" || fail "--dist-timeout 0"

# stop(K, RANK): train with K processes, SIGSTOP rank RANK after the first
# checkpoint, and require the job to end within 30 s naming it
stop() {
    local k=$1 rank=$2
    rm -f "$t/ckpt.st"
    mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$k" "$MODELC" train "$m" --limit 600 \
        --epochs 100000 --no-test --no-progress --no-warn --threads 1 --save "$t/ckpt.st" --dist-timeout 3 \
        > "$t/out" 2>&1 &
    pid=$!
    for _ in $(seq 600); do [ -s "$t/ckpt.st" ] && break; sleep 0.2; done
    [ -s "$t/ckpt.st" ] || fail "no checkpoint after two minutes: $(cat "$t/out")"
    victim=""
    for c in $(pgrep -P "$pid"); do
        if tr '\0' '\n' < "/proc/$c/environ" 2> /dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$rank"; then victim=$c; fi
    done
    [ -n "$victim" ] || fail "rank $rank not found among the children of mpirun"
    kill -STOP "$victim"
    local start rc secs
    start=$(date +%s)
    set +e
    wait "$pid"
    rc=$?
    set -e
    pid=""
    secs=$(($(date +%s) - start))
    kill -CONT "$victim" 2> /dev/null || true
    victim=""
    [ "$rc" -ne 0 ] || fail "mpirun exited with 0 after rank $rank was stopped"
    [ "$secs" -le 30 ] || fail "the others stopped only after $secs s"
    [ "$(grep -c "waited 3 s for the other processes in .* no answer from rank $rank: a process hangs" "$t/out")" = 1 ] ||
        fail "no single message naming rank $rank: $(cat "$t/out")"
    "$MODELC" eval "$m" --weights "$t/ckpt.st" --limit 100 > "$t/eval" 2>&1 || fail "checkpoint: $(cat "$t/eval")"
    echo "rank $rank of $k stopped: the others gave up after $secs s"
}
stop 2 1
stop 3 0
grep "no answer" "$t/out"
echo "dist_hang: ok"
