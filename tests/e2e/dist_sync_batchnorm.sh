#!/bin/bash
# sync_batchnorm = true under mpirun (docs/distributed.md): batchnorm's
# statistics are those of the global batch, so on an f64 model with
# batchnorm K = 2 and K = 3 give the parameters of one process after an
# epoch up to reassociation (relative difference <= 1e-9; with K = 3 the
# last batch of one row leaves two processes without rows, which take part
# in the sums with zeros), on both backends and with
# --deterministic-reduce; without it (each process's own statistics) the
# parameters differ measurably. In one process the setting changes no bit.
set -euo pipefail
: "${MODELC:?}"
. "$(dirname "$0")/lib/mpi.sh"
python3 - "$t" <<'PY'
import json, random, struct, sys
r = random.Random(1)
n = 201
xs = [r.uniform(-2, 2) for _ in range(n * 4)]
ys = [r.randrange(3) for _ in range(n)]
x = struct.pack("<%dd" % len(xs), *xs)
y = struct.pack("<%di" % n, *ys)
hdr = {"x": {"dtype": "F64", "shape": [n, 4], "data_offsets": [0, len(x)]},
       "y": {"dtype": "I32", "shape": [n], "data_offsets": [len(x), len(x) + len(y)]}}
h = json.dumps(hdr).encode()
h += b" " * (-len(h) % 8)
open(sys.argv[1] + "/data.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + x + y)
PY
cat > "$t/diff.py" <<'PY'
# diff.py A B: the largest relative difference max|a-b| / max|b| over the
# tensors of two checkpoints
import json, struct, sys
def load(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    out = {}
    for k, v in json.loads(b[8:8 + n]).items():
        if k != "__metadata__":
            s, e = v["data_offsets"]
            raw = b[8 + n + s:8 + n + e]
            out[k] = struct.unpack("<%dd" % (len(raw) // 8), raw)
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
assert sorted(a) == sorted(b)
print("%.3g" % max(max(abs(x - y) for x, y in zip(a[k], b[k])) / (max(abs(v) for v in b[k]) or 1) for k in a))
PY
# no bias before the batchnorm: its gradient is zero up to rounding, which
# Adam would blow up to the size of the learning rate
cat > "$t/sync.mdl" <<'EOF2'
model bn64
input x: f64[N, 4]
input y: i32[N]
h = dense(x, 16, use_bias=false)
h = batchnorm(h, momentum=0.9)
h = tanh(h)
logits = dense(h, 3)
loss = sparse_categorical_crossentropy(y, logits, from_logits=true)
train {
  optimizer = adam(lr=0.01)
  batch = 25
  epochs = 1
  seed = 5
  sync_batchnorm = true
}
EOF2
grep -v sync_batchnorm "$t/sync.mdl" > "$t/local.mdl"
common=(--data "$t/data.safetensors" --no-progress --threads 1 --no-warn)
if ! mpi 2 "$MODELC" train "$t/local.mdl" "${common[@]}" > "$t/probe.log" 2>&1; then
    grep -q "built without MPI" "$t/probe.log" || fail "mpirun -np 2: $(cat "$t/probe.log")"
    echo "SKIP: modelc was built without MPI"
    exit 0
fi
below() { python3 -c "import sys; sys.exit(0 if float('$1') <= float('$2') else 1)"; }

"$MODELC" train "$t/sync.mdl" "${common[@]}" --save "$t/k1.st" > /dev/null
"$MODELC" train "$t/local.mdl" "${common[@]}" --save "$t/l1.st" > /dev/null
cmp "$t/k1.st" "$t/l1.st" || fail "sync_batchnorm changes a one-process run"
mpi 1 "$MODELC" train "$t/sync.mdl" "${common[@]}" --save "$t/k1m.st" > /dev/null 2>&1 || fail "mpirun -np 1"
cmp "$t/k1.st" "$t/k1m.st" || fail "mpirun -np 1 with sync_batchnorm differs from one process"

run() { # run NAME K MODEL [options]: train, print the difference to k1.st
    local name=$1 k=$2 model=$3
    shift 3
    mpi "$k" "$MODELC" train "$t/$model.mdl" "${common[@]}" "$@" --save "$t/$name.st" > "$t/$name.log" 2>&1 ||
        fail "$name: $(cat "$t/$name.log")"
    python3 "$t/diff.py" "$t/$name.st" "$t/k1.st"
}
for c in "s2 2 sync" "s3 3 sync" "si2 2 sync --backend interp" "sd2 2 sync --deterministic-reduce"; do
    # shellcheck disable=SC2086
    d=$(run $c)
    below "$d" 1e-9 || fail "${c}: relative difference $d to one process (more than 1e-9)"
done
d=$(run l2 2 local)
below 1e-3 "$d" || fail "local statistics: relative difference $d to one process, expected a measurable one"
# the statistics' sums are counted: 1432 bytes of gradients and state, and
# 2 x 2 sums of 16 doubles per step (forward and backward)
grep -q "data-parallel: 2 processes, .* 1944 bytes summed per step" "$t/s2.log" || fail "bytes: $(cat "$t/s2.log")"
grep -q "data-parallel: 2 processes, .* 1432 bytes summed per step" "$t/l2.log" || fail "bytes: $(cat "$t/l2.log")"
echo "dist_sync_batchnorm: ok"
