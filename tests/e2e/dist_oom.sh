#!/bin/bash
# Running out of memory on one process of a data-parallel run: with the
# k-th allocation of rank 1 failing (MODELC_FAIL_ALLOC=k for that rank
# only), for a sample of k over the whole run, that rank exits 1 with an
# "out of memory" message and mpirun stops the job at once: no hang, no
# crash, no internal error on either rank.
set -euo pipefail
: "${MODELC:?}"
. "$(dirname "$0")/lib/mpi.sh"
cat > "$t/rank.sh" <<'SH'
#!/bin/bash
if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then export MODELC_FAIL_ALLOC=$FAIL_AT; fi
exec "$MODELC" "$@"
SH
chmod +x "$t/rank.sh"
export MODELC
model=tests/data/oom/mlp.mdl
completed=0 failed=0 k=1
while [ "$k" -le 100000 ]; do
    rc=0
    FAIL_AT=$k ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" timeout 300 \
        mpirun --allow-run-as-root --oversubscribe --bind-to none -x FAIL_AT -x MODELC -np 2 "$t/rank.sh" \
        train "$model" --data tests/data/oom/tiny.csv --val-split 0.25 --threads 1 --no-cache \
        --no-progress --save "$t/w.safetensors" >"$t/out" 2>"$t/err" || rc=$?
    [ "$rc" != 124 ] || fail "k=$k: the run hung"
    ! grep -q "internal error\|Segmentation\|Aborted\|signal" "$t/err" || fail "k=$k: $(cat "$t/err")"
    if [ "$rc" = 0 ]; then
        completed=$((completed + 1))
        [ "$completed" -ge 2 ] && break # past the run's last allocation
    else
        grep -q "error: out of memory: cannot allocate" "$t/err" || fail "k=$k: exit $rc without the message: $(cat "$t/err")"
        failed=$((failed + 1))
    fi
    k=$((k < 8 ? k + 1 : k + k / 3))
done
[ "$failed" -gt 10 ] || fail "only $failed runs ran out of memory"
echo "ok: $failed runs ran out of memory on rank 1 and stopped cleanly, $completed completed (last k = $k)"
