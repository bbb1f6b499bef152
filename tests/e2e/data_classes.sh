#!/bin/bash
# --data-classes SET keeps the examples whose class label is in SET
# (labels keep their values), before --limit, for train, eval and stats
# alike; a malformed set is a usage error naming the character, data
# without class labels or with none of the classes an error naming the
# data.
set -euo pipefail
: "${MODELC:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# A model that always predicts class 7 (zero kernel, bias one-hot at 7):
# its accuracy on a data set is the share of label 7 among the examples kept.
cat > "$t/m.mdl" <<'EOF'
model lab
input x: f32[N, 1]
input y: i32[N]
logits = dense(x, 10, name="d")
loss = sparse_categorical_crossentropy(y, logits, from_logits=true)
metric accuracy = accuracy(y, logits)
train {
  optimizer = sgd(lr=0.1)
  batch = 4
  epochs = 1
}
EOF
python3 - "$t" <<'EOF'
import json, struct, sys
d = sys.argv[1]
# 30 rows: labels 0..9 three times, x = the row's index
with open(d + "/data.csv", "w") as f:
    f.write("label,x\n")
    for i in range(30):
        f.write("%d,%d\n" % (i % 10, i))
k = struct.pack("<10f", *[0.0] * 10)
b = struct.pack("<10f", *[10.0 if c == 7 else 0.0 for c in range(10)])
h = {"d.kernel": {"dtype": "F32", "shape": [1, 10], "data_offsets": [0, 40]},
     "d.bias": {"dtype": "F32", "shape": [10], "data_offsets": [40, 80]}}
hb = json.dumps(h).encode()
with open(d + "/w.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(hb)) + hb + k + b)
EOF
ev() { "$MODELC" eval "$t/m.mdl" --weights "$t/w.safetensors" --data "$t/data.csv" --label-column label "$@"; }
expect() { # $1 = expected "N examples ... accuracy: A", rest = flags
  local want=$1
  shift
  ev "$@" > "$t/out"
  grep -q "^$want" "$t/out" || fail "eval $*: expected '$want', got '$(cat "$t/out")'"
}
expect "30 examples (inference mode) - loss: [0-9.]* - accuracy: 0.1000"
expect "3 examples (inference mode) - loss: [0-9.]* - accuracy: 1.0000" --data-classes 7
expect "6 examples (inference mode) - loss: [0-9.]* - accuracy: 0.5000" --data-classes 5,7
expect "15 examples (inference mode) - loss: [0-9.]* - accuracy: 0.0000" --data-classes 0-4
expect "15 examples (inference mode) - loss: [0-9.]* - accuracy: 0.2000" --data-classes 5-9
expect "9 examples (inference mode) - loss: [0-9.]* - accuracy: 0.3333" --data-classes 0,7-8
# --limit counts the examples kept, not the rows read.
expect "2 examples (inference mode) - loss: [0-9.]* - accuracy: 1.0000" --data-classes 7 --limit 2
expect "4 examples (inference mode) - loss: [0-9.]* - accuracy: 0.0000" --data-classes 0-4 --limit 4

# Fashion-MNIST: the test split holds 1000 of each class; train takes the
# option too (the progress line counts what was kept, --limit after it).
"$MODELC" init examples/fashion_mlp.mdl -o "$t/mlp.safetensors" > /dev/null
"$MODELC" eval examples/fashion_mlp.mdl --weights "$t/mlp.safetensors" --data-classes 5-9 > "$t/out"
grep -q "^5000 examples" "$t/out" || fail "fashion-mnist classes 5-9: $(cat "$t/out")"
"$MODELC" train examples/fashion_mlp.mdl --data-classes 0-4 --limit 300 --epochs 1 --no-test --no-progress \
  --threads 1 > "$t/out"
grep -q "^train: 300 examples" "$t/out" || fail "train --data-classes: $(cat "$t/out")"

# Usage errors (exit 2) name the character where the set goes wrong.
usage() { # $1 = set, $2 = expected message
  local rc=0
  ev --data-classes "$1" > /dev/null 2> "$t/err" || rc=$?
  [ $rc -eq 2 ] || fail "--data-classes '$1': expected exit 2, got $rc"
  grep -qF "modelc eval: --data-classes $2" "$t/err" || fail "--data-classes '$1': $(cat "$t/err")"
}
usage "" "'': expected a class number at character 1"
usage "x" "'x': expected a class number at character 1"
usage "0-" "'0-': expected a class number at character 3"
usage "0-4," "'0-4,': expected a class number at character 5"
usage "1;2" "'1;2': expected ',' or '-' at character 2"
usage "2,9-3" "'2,9-3': the range 9-3 at character 3 is empty (the first class must not be above the last)"
usage "70000" "'70000': class 70000... at character 1 is above 65535"
usage "-1" "'-1': expected a class number at character 1"
rc=0
"$MODELC" train "$t/m.mdl" --data-classes 4-0 > /dev/null 2> "$t/err" || rc=$?
[ $rc -eq 2 ] && grep -qF "modelc train: --data-classes '4-0': the range 4-0" "$t/err" || fail "train usage: $(cat "$t/err")"
rc=0
"$MODELC" stats "$t/m.mdl" --data-classes 3-x > /dev/null 2> "$t/err" || rc=$?
[ $rc -eq 2 ] && grep -qF "modelc stats: --data-classes '3-x': expected a class number at character 3" "$t/err" ||
  fail "stats usage: $(cat "$t/err")"

# Data errors (exit 1) name the data.
rc=0
ev --data-classes 10-12 > /dev/null 2> "$t/err" || rc=$?
[ $rc -eq 1 ] || fail "no example kept: expected exit 1, got $rc"
grep -qF "$t/data.csv: error: --data-classes 10-12: none of the 30 examples has one of these labels" "$t/err" ||
  fail "no example kept: $(cat "$t/err")"
rc=0
"$MODELC" train examples/s3_vanishing/three_layer.mdl --data uniform:100 --data-classes 0 --no-test \
  > /dev/null 2> "$t/err" || rc=$?
[ $rc -eq 1 ] || fail "no labels: expected exit 1, got $rc"
grep -qF "uniform:100: error: --data-classes needs a column of class labels" "$t/err" || fail "no labels: $(cat "$t/err")"
echo "data_classes: ok"
