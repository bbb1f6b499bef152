#!/bin/bash
# Transfer learning and learning-rate schedules in `modelc train`:
# --init-from CKPT --only PATTERN loads exactly the matching parameters
# (and never another run's optimizer slots unless asked), --freeze keeps
# them bit-identical through training, a pattern matching nothing is an
# error; step and cosine schedules give the documented per-epoch learning
# rates and really drive the update.
set -euo pipefail
: "${MODELC:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
m=tests/e2e/models/tiny_bn.mdl
common=(--limit 300 --batch 100 --no-test --no-progress --threads 1)

# Compare tensors of two safetensors files: "same NAME" / "differ NAME".
cat > "$t/st.py" <<'EOF'
import json, struct, sys
def load(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    h.pop("__metadata__", None)
    return {k: b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]] for k, v in h.items()}
a, b = load(sys.argv[1]), load(sys.argv[2])
for spec in sys.argv[3:]:
    how, name = spec.split(":", 1)
    same = a[name] == b[name]
    if (how == "same") != same:
        sys.exit("%s: expected %s, got %s" % (name, how, "same" if same else "different"))
print("ok")
EOF

# A source run, then a run that takes only the first dense layer from it
# and freezes it: dense.* must come out bit-identical to the source, the
# rest must have trained from a fresh initialisation (another seed).
"$MODELC" train "$m" "${common[@]}" --epochs 2 --seed 1 --save "$t/src.st" > /dev/null
"$MODELC" train "$m" "${common[@]}" --epochs 1 --seed 2 --init-from "$t/src.st" --only 'dense.*' \
  --freeze 'dense.*' --save "$t/dst.st" > /dev/null
python3 "$t/st.py" "$t/src.st" "$t/dst.st" same:dense.kernel same:dense.bias \
  differ:dense_1.kernel differ:batchnorm.gamma

# Without --freeze the loaded layer trains on (it moves away from the source).
"$MODELC" train "$m" "${common[@]}" --epochs 1 --seed 2 --init-from "$t/src.st" --only 'dense.*' \
  --save "$t/dst2.st" > /dev/null
python3 "$t/st.py" "$t/src.st" "$t/dst2.st" differ:dense.kernel

# --init-from without --only loads every parameter but not the Adam slots
# nor the step: one epoch from the source equals one epoch from the source's
# parameters with fresh optimizer state, which differs from resuming.
"$MODELC" train "$m" "${common[@]}" --epochs 1 --seed 2 --init-from "$t/src.st" --save "$t/all.st" > /dev/null
"$MODELC" train "$m" "${common[@]}" --epochs 3 --seed 1 --resume "$t/src.st" --save "$t/res.st" > /dev/null
python3 "$t/st.py" "$t/all.st" "$t/res.st" differ:dense.kernel differ:optimizer.m.dense.kernel
python3 "$t/st.py" "$t/src.st" "$t/all.st" differ:optimizer.m.dense.kernel

# A pattern that matches nothing is an error naming the checkpoint.
if "$MODELC" train "$m" "${common[@]}" --epochs 1 --init-from "$t/src.st" --only 'conv*' 2> "$t/err"; then
  exit 1
fi
grep -q "src.st: error: no tensor of this checkpoint matching 'conv\*' is a parameter of model 'tiny_bn'" "$t/err"
# A tensor of the same name but another shape is an error too.
"$MODELC" init examples/fashion_cnn.mdl -o "$t/cnn.st" > /dev/null
if "$MODELC" train "$m" "${common[@]}" --epochs 1 --init-from "$t/cnn.st" 2> "$t/err2"; then exit 1; fi
grep -q "cnn.st: error: tensor 'dense.bias' is f32\[128\], the model expects f32\[32\]" "$t/err2"

# Schedules: the learning rate of each epoch's last step, from --json.
sched() { # $1 = schedule setting, rest = flags
  local s=$1
  shift
  sed "s/^  seed = 3\$/  seed = 3\n  schedule = $s/" "$m" > "$t/s.mdl"
  grep -q "schedule = $s" "$t/s.mdl"
  "$MODELC" train "$t/s.mdl" "${common[@]}" --lr 0.01 --json "$@"
}
sched 'step(every=2, gamma=0.5)' --epochs 5 > "$t/step.json"
sched cosine --epochs 3 > "$t/cos.json"
python3 - "$t/step.json" "$t/cos.json" <<'EOF'
import json, math, sys
def lrs(p):
    return [r["lr"] for r in map(json.loads, open(p)) if "epoch" in r]
step = lrs(sys.argv[1])
assert step == [0.01, 0.01, 0.005, 0.005, 0.0025], step
cos = lrs(sys.argv[2])
steps = 9  # 3 epochs of 3 batches; the rate of step s is lr0/2 (1 + cos(pi s / total))
want = [0.005 * (1 + math.cos(math.pi * (3 * e + 2) / steps)) for e in range(3)]
assert all(abs(a - b) < 1e-9 for a, b in zip(cos, want)) and len(cos) == 3, (cos, want)
print("schedules ok")
EOF
# gamma = 1 is the constant rate, bit for bit; gamma = 0.5 changes the result.
sched 'step(every=1, gamma=1)' --epochs 3 --save "$t/g1.st" > /dev/null
sched constant --epochs 3 --save "$t/c.st" > /dev/null
sched 'step(every=1, gamma=0.5)' --epochs 3 --save "$t/g05.st" > /dev/null
cmp "$t/g1.st" "$t/c.st"
python3 "$t/st.py" "$t/c.st" "$t/g05.st" differ:dense.kernel
echo "train_transfer: ok"
