#!/bin/bash
# The gradient sums overlap the backward pass (DDP's buckets,
# docs/distributed.md): with the JIT, train_grad's entry reports each
# finished gradient, and a bucket's all-reduce starts as soon as its
# gradients are final. With small buckets (--bucket-mb) most of them start
# while gradients are still to come; the parameters are the bytes of the
# same run summed after the backward pass (--deterministic-reduce: the
# same order of additions with two processes) and within 1e-9 of one
# process, also with three processes and a process without rows. The
# interpreter, --deterministic-reduce and sync_batchnorm do not overlap.
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
# diff.py A B LIMIT: the largest relative difference over the tensors of
# two checkpoints must be <= LIMIT
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
worst = max(max(abs(x - y) for x, y in zip(a[k], b[k])) / (max(abs(v) for v in b[k]) or 1) for k in a)
sys.exit(0 if worst <= float(sys.argv[3]) else 1)
PY
cat > "$t/mlp.mdl" <<'EOF2'
model mlp64
input x: f64[N, 4]
input y: i32[N]
h = dense(x, 16, activation=tanh)
h = dense(h, 8, activation=relu)
logits = dense(h, 3)
loss = sparse_categorical_crossentropy(y, logits, from_logits=true)
train {
  optimizer = adam(lr=0.01)
  batch = 25
  epochs = 1
  seed = 5
}
EOF2
common=(--data "$t/data.safetensors" --no-progress --threads 1 --no-warn)
if ! mpi 2 "$MODELC" train "$t/mlp.mdl" "${common[@]}" > "$t/probe.log" 2>&1; then
    grep -q "built without MPI" "$t/probe.log" || fail "mpirun -np 2: $(cat "$t/probe.log")"
    echo "SKIP: modelc was built without MPI"
    exit 0
fi
set +e
"$MODELC" train "$t/mlp.mdl" "${common[@]}" --bucket-mb 0 > /dev/null 2> "$t/u"
rc=$?
set -e
[ $rc -eq 2 ] && grep -q "\-\-bucket-mb must be a positive number, got 0" "$t/u" || fail "--bucket-mb 0"

# buckets(LOG): "B E": buckets started in the epoch, and of them while
# gradients were still to come
buckets() { sed -n 's/.*"allreduce_buckets": \([0-9]*\), "allreduce_buckets_in_backward": \([0-9]*\).*/\1 \2/p' "$1"; }
run() { # run NAME K [options]
    local name=$1 k=$2
    shift 2
    mpi "$k" "$MODELC" train "$t/mlp.mdl" "${common[@]}" --json --save "$t/$name.st" "$@" > "$t/$name.log" 2>&1 ||
        fail "$name: $(cat "$t/$name.log")"
}
"$MODELC" train "$t/mlp.mdl" "${common[@]}" --save "$t/k1.st" > /dev/null
# 6 gradients of 243 doubles in buckets of 65 doubles: 4 per step, 3 of
# them started before the backward pass ends; 9 steps
run small 2 --bucket-mb 0.0005
[ "$(buckets "$t/small.log")" = "36 27" ] || fail "small buckets: '$(buckets "$t/small.log")'"
run whole 2
[ "$(buckets "$t/whole.log")" = "9 0" ] || fail "one bucket: '$(buckets "$t/whole.log")'"
run after 2 --deterministic-reduce
[ "$(buckets "$t/after.log")" = "0 0" ] || fail "--deterministic-reduce overlaps: '$(buckets "$t/after.log")'"
cmp "$t/small.st" "$t/after.st" || fail "overlapped sums differ from the sums after the backward pass"
cmp "$t/whole.st" "$t/after.st" || fail "one bucket differs from the sums after the backward pass"
python3 "$t/diff.py" "$t/small.st" "$t/k1.st" 1e-9 || fail "overlapped K=2 differs from K=1"
run small3 3 --bucket-mb 0.0005
python3 "$t/diff.py" "$t/small3.st" "$t/k1.st" 1e-9 || fail "overlapped K=3 differs from K=1"
run interp 2 --bucket-mb 0.0005 --backend interp
[ "$(buckets "$t/interp.log")" = "0 0" ] || fail "the interpreter overlaps: '$(buckets "$t/interp.log")'"
echo "dist_overlap: ok"
