#!/bin/bash
# Dropout under mpirun (docs/distributed.md): rank r draws its masks from
# the stream (seed ^ r * 0x9E3779B97F4A7C15, stream, step). Two processes
# with one row each, the same row, take one SGD step: rank 0's mask is the
# one a single process draws with the seed, rank 1's the one it draws with
# seed ^ 0x9E3779B97F4A7C15, so the parameters are the mean of those two
# single-process runs (from the same initial parameters), and those differ:
# the ranks draw different masks. Runs are reproducible: the same job
# twice gives the same bytes.
set -euo pipefail
: "${MODELC:?}"
. "$(dirname "$0")/lib/mpi.sh"
python3 - "$t" <<'PY'
import json, random, struct, sys
def write(path, rows, same):
    r = random.Random(3)
    row = [r.uniform(-1, 1) for _ in range(16)]
    xs = row * rows if same else [r.uniform(-1, 1) for _ in range(16 * rows)]
    x = struct.pack("<%dd" % len(xs), *xs)
    y = struct.pack("<%di" % rows, *[i % 2 for i in range(rows)] if not same else [1] * rows)
    hdr = {"x": {"dtype": "F64", "shape": [rows, 16], "data_offsets": [0, len(x)]},
           "y": {"dtype": "I32", "shape": [rows], "data_offsets": [len(x), len(x) + len(y)]}}
    h = json.dumps(hdr).encode()
    h += b" " * (-len(h) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + x + y)
write(sys.argv[1] + "/one.safetensors", 1, True)
write(sys.argv[1] + "/two.safetensors", 2, True)
write(sys.argv[1] + "/many.safetensors", 50, False)
PY
cat > "$t/drop.mdl" <<'EOF2'
model drop64
input x: f64[N, 16]
input y: i32[N]
h = dropout(x, 0.5)
logits = dense(h, 2)
loss = sparse_categorical_crossentropy(y, logits, from_logits=true)
train {
  optimizer = sgd(lr=0.5)
  batch = 2
  epochs = 1
  seed = 5
}
EOF2
common=(--no-progress --threads 1 --no-warn --init-from "$t/init.st")
if ! mpi 2 "$MODELC" train "$t/drop.mdl" --data "$t/two.safetensors" --no-progress --no-warn > "$t/probe.log" 2>&1; then
    grep -q "built without MPI" "$t/probe.log" || fail "mpirun -np 2: $(cat "$t/probe.log")"
    echo "SKIP: modelc was built without MPI"
    exit 0
fi
"$MODELC" init "$t/drop.mdl" -o "$t/init.st" > /dev/null
seed1=$(python3 -c "print(5 ^ 0x9E3779B97F4A7C15)")
"$MODELC" train "$t/drop.mdl" --data "$t/one.safetensors" "${common[@]}" --save "$t/r0.st" > /dev/null
"$MODELC" train "$t/drop.mdl" --data "$t/one.safetensors" "${common[@]}" --seed "$seed1" --save "$t/r1.st" > /dev/null
mpi 2 "$MODELC" train "$t/drop.mdl" --data "$t/two.safetensors" "${common[@]}" --save "$t/k2.st" > "$t/k2.log" 2>&1 ||
    fail "K=2: $(cat "$t/k2.log")"
python3 - "$t" <<'PY' || fail "the masks of the two ranks"
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
t = sys.argv[1]
r0, r1, k2 = load(t + "/r0.st"), load(t + "/r1.st"), load(t + "/k2.st")
def diff(a, b):
    return max(max(abs(x - y) for x, y in zip(a[k], b[k])) for k in a)
mean = {k: [(x + y) / 2 for x, y in zip(r0[k], r1[k])] for k in r0}
print("rank 0 against rank 1's stream: %.3g; two processes against the mean: %.3g" % (diff(r0, r1), diff(k2, mean)))
sys.exit(0 if diff(r0, r1) > 1e-2 and diff(k2, mean) <= 1e-12 else 1)
PY
# reproducible: three processes, two epochs of 9 steps, twice
for i in 1 2; do
    mpi 3 "$MODELC" train "$t/drop.mdl" --data "$t/many.safetensors" "${common[@]}" --epochs 2 --batch 6 \
        --deterministic-reduce \
        --save "$t/rep$i.st" > "$t/rep$i.log" 2>&1 || fail "run $i: $(cat "$t/rep$i.log")"
done
cmp "$t/rep1.st" "$t/rep2.st" || fail "two runs with dropout differ"
echo "dist_dropout: ok"
