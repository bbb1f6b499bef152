#!/bin/bash
# The inspection options of modelc train under mpirun (docs/distributed.md):
# --watch prints what one process prints (the parameters and the update
# telemetry, computed from the summed gradients, are the same on every
# process; rank 0 records and prints), --plot-dir draws the curves on
# rank 0, --dump-ir writes the two halves of the step as `modelc ir`
# prints them, --profile prints both halves' kernels summed over the
# processes once, and --check-numerics and a non-finite loss stop every
# process with one report that names the process whose own values were not
# finite and the op, found on that process's share of the batch;
# --train-mode infer trains what one process trains.
set -euo pipefail
: "${MODELC:?}"
. "$(dirname "$0")/lib/mpi.sh"
python3 - "$t" <<'PY'
import json, random, struct, sys
def write(path, x, y=None):
    cols = len(x[0])
    xs = [v for row in x for v in row]
    xb = struct.pack("<%dd" % len(xs), *xs)
    hdr = {"x": {"dtype": "F64", "shape": [len(x), cols], "data_offsets": [0, len(xb)]}}
    body = xb
    if y is not None:
        yb = struct.pack("<%di" % len(y), *y)
        hdr["y"] = {"dtype": "I32", "shape": [len(y)], "data_offsets": [len(xb), len(xb) + len(yb)]}
        body += yb
    h = json.dumps(hdr).encode()
    h += b" " * (-len(h) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + body)
r = random.Random(1)
write(sys.argv[1] + "/data.safetensors", [[r.uniform(-2, 2) for _ in range(4)] for _ in range(201)],
      [r.randrange(3) for _ in range(201)])
# log(-1): the row [-1, 2] makes the loss NaN on the process that takes it
write(sys.argv[1] + "/ab.safetensors", [[1, 2], [-1, 2]])
write(sys.argv[1] + "/ba.safetensors", [[-1, 2], [1, 2]])
PY
cat > "$t/mlp.mdl" <<'EOF2'
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
  epochs = 2
  seed = 5
}
EOF2
cat > "$t/logx.mdl" <<'EOF2'
model logx
input x: f64[N, 2]
param w: f64[2] = ones()
loss = mean(log(x) * w)
train {
  optimizer = sgd(lr=0.1)
  batch = 2
  epochs = 1
}
EOF2
common=(--data "$t/data.safetensors" --no-progress --threads 1 --no-warn)
if ! mpi 2 "$MODELC" train "$t/mlp.mdl" "${common[@]}" --epochs 1 > "$t/probe.log" 2>&1; then
    grep -q "built without MPI" "$t/probe.log" || fail "mpirun -np 2: $(cat "$t/probe.log")"
    echo "SKIP: modelc was built without MPI"
    exit 0
fi

# --watch and --plot-dir: the lines of one process, and its curves
mkdir "$t/p1" "$t/p2"
"$MODELC" train "$t/mlp.mdl" "${common[@]}" --watch 4 --plot-dir "$t/p1" > "$t/w1.log"
mpi 2 "$MODELC" train "$t/mlp.mdl" "${common[@]}" --watch 4 --plot-dir "$t/p2" > "$t/w2.log" 2> "$t/w2.err" ||
    fail "--watch: $(cat "$t/w2.err")"
grep -q "^watch: epoch 1, step 4: grad norm vs last layer: dense " "$t/w1.log" || fail "no watch lines: $(cat "$t/w1.log")"
strip() { grep -v -e "ms/step" -e "^data-parallel:" -e "^wrote curves to" "$1"; }
diff <(strip "$t/w1.log") <(strip "$t/w2.log") || fail "--watch under mpirun prints other figures than one process"
for f in curves.svg curves.png grad_norms.svg grad_norms.png; do
    [ -s "$t/p2/$f" ] || fail "--plot-dir: no $f"
done

# --dump-ir: the halves as `modelc ir --fn` prints them; --profile: both
# halves, once
mkdir "$t/ir"
mpi 2 "$MODELC" train "$t/mlp.mdl" "${common[@]}" --epochs 1 --dump-ir "$t/ir" --profile > /dev/null 2> "$t/prof.err" ||
    fail "--dump-ir --profile: $(cat "$t/prof.err")"
for fn in train_grad apply; do
    "$MODELC" ir --fn $fn "$t/mlp.mdl" | cmp - "$t/ir/$fn.ir" || fail "--dump-ir: $fn.ir"
done
[ "$(grep -c "^profile: training step, first half (train_grad), summed over 2 processes, 17 steps" "$t/prof.err")" = 1 ] ||
    fail "--profile: $(cat "$t/prof.err")"
[ "$(grep -c "^profile: training step, second half (apply), summed over 2 processes, 18 steps" "$t/prof.err")" = 1 ] ||
    fail "--profile: $(cat "$t/prof.err")"

# --check-numerics: a gradient that is not finite on both processes
g=tests/e2e/models/nan_grad.mdl
if mpi 2 "$MODELC" train "$g" --limit 100 --no-test --no-progress --no-warn --check-numerics --save "$t/g.st" \
    > /dev/null 2> "$t/g.err"; then fail "--check-numerics: a run with a non-finite gradient succeeded"; fi
grep -qx "modelc train: epoch 1, batch 1: step 1: the gradient of 'w' is not finite (summed over 2 processes; not finite on rank 0, 1)" \
    "$t/g.err" || fail "--check-numerics: $(cat "$t/g.err")"
[ "$(grep -c "error: div produced +Inf in the backward pass" "$t/g.err")" = 1 ] || fail "--check-numerics report: $(cat "$t/g.err")"
[ ! -e "$t/g.st" ] || fail "--check-numerics: a checkpoint was written"

# a NaN loss on one process: the report names it and the op, searched on
# its share (the row [-1, 2] is on rank 0 in one order of the data, on
# rank 1 in the other)
named=""
for d in ab ba; do
    if mpi 2 "$MODELC" train "$t/logx.mdl" --data "$t/$d.safetensors" --no-test --no-progress --no-warn > /dev/null \
        2> "$t/$d.err"; then fail "a NaN loss ($d) did not stop the run"; fi
    r=$(sed -n 's/^modelc train: epoch 1, batch 1: loss is NaN at step 1 (on rank \([01]\) of 2)$/\1/p' "$t/$d.err")
    [ -n "$r" ] || fail "no rank named ($d): $(cat "$t/$d.err")"
    grep -q "^modelc train: no update applied; step 1 re-run op by op .* and rank $r's share of the batch:$" "$t/$d.err" ||
        fail "not searched on rank $r ($d): $(cat "$t/$d.err")"
    grep -q "logx.mdl:4:13: error: log produced NaN in the forward pass" "$t/$d.err" || fail "no op ($d): $(cat "$t/$d.err")"
    named="$named$r"
done
[ "$named" = 01 ] || [ "$named" = 10 ] || fail "the bad row was named on ranks '$named', expected both"

# --train-mode infer: the step of the inference graph (batchnorm on its
# moving statistics, no dropout), the parameters of one process (f32,
# Adam: within 1e-5; about 3e-7 here), its warning printed once
b=(tests/e2e/models/tiny_bn.mdl --limit 300 --epochs 1 --no-test --no-progress --no-warn --threads 1 --train-mode infer)
"$MODELC" train "${b[@]}" --save "$t/i1.st" > /dev/null 2>&1
mpi 2 "$MODELC" train "${b[@]}" --save "$t/i2.st" > "$t/i2.log" 2>&1 || fail "--train-mode infer: $(cat "$t/i2.log")"
[ "$(grep -c "warning: .*inference mode" "$t/i2.log")" = 1 ] || fail "--train-mode warning: $(cat "$t/i2.log")"
python3 - "$t/i2.st" "$t/i1.st" <<'PY' || fail "--train-mode infer under mpirun differs from one process"
import json, struct, sys
def load(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    out = {}
    for k, v in json.loads(b[8:8 + n]).items():
        if k != "__metadata__":
            s, e = v["data_offsets"]
            f = {"F32": "f", "F64": "d"}[v["dtype"]]
            raw = b[8 + n + s:8 + n + e]
            out[k] = struct.unpack("<%d%s" % (len(raw) // struct.calcsize(f), f), raw)
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
worst = max(max(abs(x - y) for x, y in zip(a[k], b[k])) / (max(abs(v) for v in b[k]) or 1) for k in a)
sys.exit(0 if worst <= 1e-5 else 1)
PY
echo "dist_options: ok"
