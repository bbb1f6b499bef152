#!/bin/bash
# Data-parallel training under mpirun (docs/distributed.md): one process
# under mpirun gives the bits of a plain run; on an f64 MLP,
# two processes give the parameters of one process after an epoch up to
# the reassociation of the gradient sum (relative difference <= 1e-9), with
# uneven shares and a last global batch of one row (one process has no
# rows); --deterministic-reduce runs are bit for bit the same; processes
# that compiled another model or read other data refuse to start, naming
# the rank; --resume continues with another number of processes.
set -euo pipefail
: "${MODELC:?}"
. "$(dirname "$0")/lib/mpi.sh"
# MPI stays in the driver: one file includes mpi.h, and not the runtime
users=$(grep -rlE '#include <mpi.h>' ir frontend passes backend runtime tools include || true)
[ "$users" = backend/driver/dist.c ] || fail "mpi.h is included by: $users"

python3 - "$t" <<'PY'
import json, random, struct, sys
def write(path, n, seed):
    r = random.Random(seed)
    xs = [r.uniform(-2, 2) for _ in range(n * 4)]
    ys = [r.randrange(3) for _ in range(n)]
    x = struct.pack("<%dd" % len(xs), *xs)
    y = struct.pack("<%di" % n, *ys)
    hdr = {"x": {"dtype": "F64", "shape": [n, 4], "data_offsets": [0, len(x)]},
           "y": {"dtype": "I32", "shape": [n], "data_offsets": [len(x), len(x) + len(y)]}}
    h = json.dumps(hdr).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + x + y)
write(sys.argv[1] + "/data.safetensors", 201, 1)
write(sys.argv[1] + "/other.safetensors", 201, 2)
PY
cat > "$t/compare.py" <<'PY'
# compare.py A B LIMIT: the largest relative difference max|a-b| / max|b|
# over the tensors of two checkpoints must be <= LIMIT.
import json, struct, sys
def load(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    hdr = json.loads(b[8:8 + n])
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        raw = b[8 + n + s:8 + n + e]
        fmt = {"F64": "d", "F32": "f", "I32": "i"}[v["dtype"]]
        out[k] = struct.unpack("<%d%s" % (len(raw) // struct.calcsize(fmt), fmt), raw)
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
assert sorted(a) == sorted(b), (sorted(a), sorted(b))
worst = 0.0
for k in a:
    scale = max(abs(v) for v in b[k]) or 1.0
    worst = max(worst, max(abs(x - y) for x, y in zip(a[k], b[k])) / scale)
print("relative difference %.3g" % worst)
sys.exit(0 if worst <= float(sys.argv[3]) else 1)
PY
cat > "$t/mlp.mdl" <<'EOF'
model mlp64
input x: f64[N, 4]
input y: i32[N]
h = dense(x, 16, activation=tanh)
h = dense(h, 8, activation=relu)
logits = dense(h, 3)
loss = sparse_categorical_crossentropy(y, logits, from_logits=true)
metric accuracy = accuracy(y, logits)
train {
  optimizer = adam(lr=0.01)
  batch = 25
  epochs = 1
  seed = 5
}
EOF
sed 's/dense(h, 8,/dense(h, 9,/' "$t/mlp.mdl" > "$t/other.mdl"
common=(--data "$t/data.safetensors" --no-progress --threads 1 --no-warn)

# built without MPI, modelc refuses to be one of several processes
if ! mpi 2 "$MODELC" train "$t/mlp.mdl" "${common[@]}" > "$t/probe.log" 2>&1; then
    grep -q "built without MPI" "$t/probe.log" || fail "mpirun -np 2: $(cat "$t/probe.log")"
    echo "SKIP: modelc was built without MPI (it refuses to run as one of 2 processes)"
    exit 0
fi

# one process against two: 201 rows in batches of 25 (13 + 12 rows per
# process), the last batch of one row (1 + 0)
"$MODELC" train "$t/mlp.mdl" "${common[@]}" --save "$t/k1.st" > "$t/k1.log"
mpi 2 "$MODELC" train "$t/mlp.mdl" "${common[@]}" --save "$t/k2.st" > "$t/k2.log" 2>&1 || fail "K=2: $(cat "$t/k2.log")"
grep -q "data-parallel: 2 processes" "$t/k2.log" || fail "no data-parallel line: $(cat "$t/k2.log")"
[ "$(grep -c '^Epoch 1/1' "$t/k2.log")" = 1 ] || fail "the progress is printed more than once: $(cat "$t/k2.log")"
python3 "$t/compare.py" "$t/k2.st" "$t/k1.st" 1e-9 || fail "K=2 differs from K=1"
# the loss line is the global batch's: the same figures as one process
l1=$(grep -o 'loss: [0-9.]*' "$t/k1.log" | head -1)
l2=$(grep -o 'loss: [0-9.]*' "$t/k2.log" | head -1)
[ "$l1" = "$l2" ] || fail "epoch loss $l2 under mpirun, $l1 in one process"
# one process under mpirun runs the two halves (train_grad, apply) and
# their sums: the same bits as the fused training step, also with
# batchnorm, dropout and Adam
mpi 1 "$MODELC" train "$t/mlp.mdl" "${common[@]}" --save "$t/k1m.st" > /dev/null 2>&1 || fail "mpirun -np 1"
cmp "$t/k1.st" "$t/k1m.st" || fail "mpirun -np 1 differs from one process"
bn=(tests/e2e/models/tiny_bn.mdl --limit 500 --no-test --no-progress --no-warn --threads 1)
"$MODELC" train "${bn[@]}" --save "$t/bn1.st" > /dev/null
mpi 1 "$MODELC" train "${bn[@]}" --save "$t/bn1m.st" > /dev/null 2>&1 || fail "mpirun -np 1 (batchnorm)"
cmp "$t/bn1.st" "$t/bn1m.st" || fail "mpirun -np 1 differs from one process (batchnorm, dropout)"
# --json reports the time in the sums and the bytes summed per step: the
# 243 f64 parameters of the MLP
mpi 2 "$MODELC" train "$t/mlp.mdl" "${common[@]}" --json > "$t/k2.json" 2>&1 || fail "--json: $(cat "$t/k2.json")"
grep -q '"allreduce_ms": [0-9.]*, "allreduce_bytes_per_step": 1944' "$t/k2.json" || fail "--json: $(cat "$t/k2.json")"
# validation and the final test are evaluated on shares too, their sums
# added over the processes: the same figures as one process
ev=(--data "$t/data.safetensors" --val-split 0.3 --test-data "$t/other.safetensors" --no-progress --threads 1 --no-warn)
"$MODELC" train "$t/mlp.mdl" "${ev[@]}" > "$t/ev1.log"
mpi 3 "$MODELC" train "$t/mlp.mdl" "${ev[@]}" > "$t/ev3.log" 2>&1 || fail "validation: $(cat "$t/ev3.log")"
for what in val_loss val_accuracy test_loss test_accuracy; do
    a=$(grep -o "$what: [0-9.]*" "$t/ev1.log")
    b=$(grep -o "$what: [0-9.]*" "$t/ev3.log")
    [ -n "$a" ] && [ "$a" = "$b" ] || fail "$what: '$b' under mpirun, '$a' in one process"
done
# three processes (9 + 8 + 8 rows): the same within the bound
mpi 3 "$MODELC" train "$t/mlp.mdl" "${common[@]}" --save "$t/k3.st" > "$t/k3.log" 2>&1 || fail "K=3: $(cat "$t/k3.log")"
python3 "$t/compare.py" "$t/k3.st" "$t/k1.st" 1e-9 || fail "K=3 differs from K=1"

# --deterministic-reduce: bit for bit the same from run to run
for i in 1 2; do
    mpi 2 "$MODELC" train "$t/mlp.mdl" "${common[@]}" --epochs 2 --deterministic-reduce --save "$t/det$i.st" \
        > "$t/det$i.log" 2>&1 || fail "deterministic run $i: $(cat "$t/det$i.log")"
done
cmp "$t/det1.st" "$t/det2.st" || fail "--deterministic-reduce runs differ"
grep -q "gradients summed in rank order" "$t/det1.log" || fail "no deterministic note"

# --resume with another number of processes: one epoch with two, the
# second with one (and the other way round) against two epochs with one
"$MODELC" train "$t/mlp.mdl" "${common[@]}" --epochs 2 --save "$t/full1.st" > /dev/null
"$MODELC" train "$t/mlp.mdl" "${common[@]}" --epochs 2 --resume "$t/k2.st" --save "$t/r21.st" > "$t/r21.log"
grep -q "resumed from .*k2.st at epoch 1, step 9" "$t/r21.log" || fail "resume: $(cat "$t/r21.log")"
python3 "$t/compare.py" "$t/r21.st" "$t/full1.st" 1e-9 || fail "resumed K=2 -> 1 differs"
mpi 2 "$MODELC" train "$t/mlp.mdl" "${common[@]}" --epochs 2 --resume "$t/k1.st" --save "$t/r12.st" \
    > "$t/r12.log" 2>&1 || fail "resume K=1 -> 2: $(cat "$t/r12.log")"
grep -q "resumed from .*k1.st at epoch 1, step 9" "$t/r12.log" || fail "resume: $(cat "$t/r12.log")"
python3 "$t/compare.py" "$t/r12.st" "$t/full1.st" 1e-9 || fail "resumed K=1 -> 2 differs"

# another model, other data or another seed on rank 1: no process trains
if mpi 1 "$MODELC" train "$t/mlp.mdl" "${common[@]}" : -np 1 "$MODELC" train "$t/other.mdl" "${common[@]}" \
    > "$t/mm.log" 2>&1; then fail "a different model on rank 1 was accepted"; fi
grep -q "error: rank 1 compiled a different model than rank 0" "$t/mm.log" || fail "model mismatch: $(cat "$t/mm.log")"
if mpi 1 "$MODELC" train "$t/mlp.mdl" "${common[@]}" : -np 1 "$MODELC" train "$t/mlp.mdl" --data "$t/other.safetensors" \
    --no-progress --threads 1 --no-warn > "$t/dm.log" 2>&1; then fail "other data on rank 1 was accepted"; fi
grep -q "error: rank 1 has different training data than rank 0 (201 examples" "$t/dm.log" ||
    fail "data mismatch: $(cat "$t/dm.log")"
if mpi 1 "$MODELC" train "$t/mlp.mdl" "${common[@]}" : -np 1 "$MODELC" train "$t/mlp.mdl" "${common[@]}" --seed 9 \
    > "$t/sm.log" 2>&1; then fail "another seed on rank 1 was accepted"; fi
grep -q "rank 1 compiled a different model" "$t/sm.log" || fail "seed mismatch: $(cat "$t/sm.log")"
if mpi 1 "$MODELC" train "$t/mlp.mdl" "${common[@]}" : -np 1 "$MODELC" train "$t/mlp.mdl" "${common[@]}" --batch 10 \
    > "$t/bm.log" 2>&1; then fail "another batch on rank 1 was accepted"; fi
grep -q "error: rank 1 trains with other settings than rank 0" "$t/bm.log" || fail "batch mismatch: $(cat "$t/bm.log")"

# a non-finite loss stops every process; rank 0 names the ranks and the op
if mpi 2 "$MODELC" train tests/e2e/models/diverge.mdl --limit 100 --no-test --no-progress --no-warn --epochs 3 \
    > "$t/nan.out" 2> "$t/nan.err"; then fail "a diverging run succeeded"; fi
grep -q "^modelc train: epoch 2, batch [0-9]*: loss is infinite at step [0-9]* (on rank 0, 1 of 2)$" "$t/nan.err" ||
    fail "no rank in the report: $(cat "$t/nan.err")"
grep -q "diverge.mdl:7:16: error: square produced +Inf in the forward pass" "$t/nan.err" ||
    fail "no op in the report: $(cat "$t/nan.err")"

# options that do not apply
set +e
"$MODELC" train "$t/mlp.mdl" "${common[@]}" --deterministic-reduce > /dev/null 2> "$t/u1"
rc=$?
set -e
[ $rc -eq 2 ] && grep -q "applies only to a run started by mpirun" "$t/u1" || fail "--deterministic-reduce alone"
echo "dist_train: ok"
