#!/bin/sh
# Data-parallel figures for docs/distributed.md (not a test; never run by
# make test): on this machine, one process with two threads against two
# processes with one thread each (mpirun), for the Fashion-MNIST MLP and
# CNN: training samples per second, the share of the step spent summing
# gradients, and the bytes summed per step. Prints one line per
# configuration; the figures in docs/distributed.md come from it.
#
#   bench/dist.sh [MODELC [EPOCHS [LIMIT]]]  (default build/modelc, 1 epoch,
#                                            all 60,000 examples)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
modelc=${1:-$here/build/modelc}
epochs=${2:-1}
limit=""
if [ -n "${3:-}" ]; then limit="--limit $3"; fi
command -v mpirun > /dev/null || { echo "bench/dist.sh: mpirun not found (scripts/install-deps.sh)" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT

summary() { # $1: label, $2: JSON lines of a run
    /usr/bin/python3 - "$1" "$2" <<'PY'
import json, sys
ex = secs = red = 0.0
nbytes = 0
for line in open(sys.argv[2]):
    if not line.startswith("{"):
        continue
    e = json.loads(line)
    if "epoch" not in e:
        continue
    ex += e["examples"]; secs += e["seconds"]
    red += e.get("allreduce_ms", 0.0) / 1e3
    nbytes = e.get("allreduce_bytes_per_step", 0)
share = 100 * red / secs if secs else 0
print("%-34s %9.0f samples/s  all-reduce %5.1f %% of the time  %10d bytes per step" %
      (sys.argv[1], ex / secs if secs else 0, share, nbytes))
PY
}

for m in examples/fashion_mlp.mdl examples/fashion_cnn.mdl; do
    common="$here/$m --epochs $epochs $limit --no-test --no-warn --json --no-cache"
    # shellcheck disable=SC2086
    "$modelc" train $common --threads 2 > "$t/one.json"
    summary "$(basename "$m" .mdl): 1 process x 2 threads" "$t/one.json"
    # shellcheck disable=SC2086
    mpirun --allow-run-as-root --oversubscribe --bind-to core -np 2 "$modelc" train $common --threads 1 > "$t/two.json"
    summary "$(basename "$m" .mdl): 2 processes x 1 thread" "$t/two.json"
done
