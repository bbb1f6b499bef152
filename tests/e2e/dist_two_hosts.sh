#!/bin/bash
# Data-parallel training across two "hosts": bench/two_hosts.sh joins two
# network namespaces by a veth pair and runs mpirun across them over TCP;
# the parameters must match one process's within 1e-4 (f32, Adam, 16
# steps; the difference is the gradient sum's rounding). Skipped, saying
# why, without mpirun or without the right to create network namespaces.
set -euo pipefail
: "${MODELC:?}"
if ! command -v mpirun > /dev/null; then
    echo "SKIP: mpirun not found (scripts/install-deps.sh installs openmpi-bin)"
    exit 0
fi
probe=modelc-probe-$$
if ! ip netns add "$probe" 2> /dev/null; then
    echo "SKIP: cannot create network namespaces here (needs root with CAP_SYS_ADMIN)"
    exit 0
fi
ip netns del "$probe"
probe_out=$(OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun --allow-run-as-root --oversubscribe \
    -np 2 "$MODELC" train tests/e2e/models/tiny_bn.mdl --limit 10 --epochs 1 --no-test --no-warn 2>&1) || true
if grep -q "built without MPI" <<< "$probe_out"; then
    echo "SKIP: modelc was built without MPI (it refuses to run as one of 2 processes)"
    exit 0
fi
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" # see dist_train.sh
out=$(sh bench/two_hosts.sh "$MODELC" 1e-4 2>&1) || { echo "FAIL: $out" >&2; exit 1; }
echo "$out" | grep -q "data-parallel: 2 processes" || { echo "FAIL: not data-parallel: $out" >&2; exit 1; }
echo "$out" | tail -1
echo "dist_two_hosts: ok"
