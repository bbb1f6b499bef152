#!/bin/bash
# Bad data files in `modelc train` and `modelc eval`: the data loads on a
# second thread while the model compiles, yet every message is the one a
# sequential run prints, in the same order (compile errors alone; compile
# warnings, then data errors), with exit code 1. Under --limit K only the
# first K examples of an IDX file are read: damage beyond them is not
# seen, damage within them is reported exactly as without a limit.
set -euo pipefail
: "${MODELC:?MODELC not set}"
cd "$(dirname "$0")/../.."
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
m=tests/e2e/models/tiny_bn.mdl
common=(--no-progress --threads 1 --no-cache --no-warn --epochs 1 --batch 10)

# IDX directories: good/ (100 training, 50 test examples, gzip), cut/ (the
# plain image file ends inside image 61), cutgz/ (the same, compressed),
# cuttest/ (good training files, the test images cut like cut/),
# badlabel/ (label 12 at index 80), magic/ (a label file as image file).
python3 - "$t" <<'EOF'
import gzip, os, random, struct, sys
t = sys.argv[1]
rng = random.Random(7)
def images(n):
    return struct.pack(">IIII", 0x803, n, 28, 28) + bytes(rng.randrange(256) for _ in range(n * 784))
def labels(n, bad=None):
    v = [i % 10 for i in range(n)]
    if bad is not None:
        v[bad] = 12
    return struct.pack(">II", 0x801, n) + bytes(v)
def put(d, name, data, gz):
    os.makedirs(os.path.join(t, d), exist_ok=True)
    p = os.path.join(t, d, name + (".gz" if gz else ""))
    open(p, "wb").write(gzip.compress(data) if gz else data)
im, lb, tim, tlb = images(100), labels(100), images(50), labels(50)
for d, i, l, gz in [("good", im, lb, True), ("cut", im[:16 + 60 * 784 + 5], lb, False),
                    ("cutgz", im[:16 + 60 * 784 + 5], lb, True), ("badlabel", im, labels(100, 80), True),
                    ("magic", lb, lb, True)]:
    put(d, "train-images-idx3-ubyte", i, gz)
    put(d, "train-labels-idx1-ubyte", l, gz)
    put(d, "t10k-images-idx3-ubyte", tim if d == "good" else i, gz)
    put(d, "t10k-labels-idx1-ubyte", tlb if d == "good" else l, gz)
put("cuttest", "train-images-idx3-ubyte", im, False)
put("cuttest", "train-labels-idx1-ubyte", lb, False)
put("cuttest", "t10k-images-idx3-ubyte", im[:16 + 60 * 784 + 5], False)
put("cuttest", "t10k-labels-idx1-ubyte", lb, False)
EOF

# expect_fail NAME EXPECTED-STDERR-FILE CMD...: exit code 1, exact stderr
expect_fail() {
  local name=$1 want=$2
  shift 2
  local rc=0
  "$@" >"$t/out" 2>"$t/err" || rc=$?
  [ "$rc" -eq 1 ] || { cat "$t/err"; fail "$name: exit $rc, expected 1"; }
  diff -u "$want" "$t/err" || fail "$name: stderr differs"
}
train() { "$MODELC" train "$m" "${common[@]}" "$@"; }

# good data: 100 examples, or the first 50
train --data "$t/good" --no-test --json --save "$t/w.st" > "$t/out" || fail "good data"
grep -q '"examples": 100' "$t/out" || fail "good data: 100 examples"
train --data "$t/good" --no-test --limit 50 > "$t/out" || fail "good data, --limit 50"
grep -q "^train: 50 examples" "$t/out" || fail "good data: --limit 50 trains on 50 examples"

# truncated image files: an error without a limit and with one reaching the
# cut; the first 60 images load
cut="error: truncated: the header promises 100 images of 28x28 (78400 bytes from byte 16), but the data ends at byte 47061"
echo "$t/cut/train-images-idx3-ubyte: $cut" > "$t/want"
expect_fail "cut" "$t/want" train --data "$t/cut" --no-test
expect_fail "cut, --limit 61" "$t/want" train --data "$t/cut" --no-test --limit 61
train --data "$t/cut" --no-test --limit 60 > "$t/out" || fail "cut, --limit 60 must load"
grep -q "^train: 60 examples" "$t/out" || fail "cut, --limit 60: 60 examples"
echo "$t/cutgz/train-images-idx3-ubyte.gz: $cut" > "$t/want"
expect_fail "cutgz" "$t/want" train --data "$t/cutgz" --no-test
train --data "$t/cutgz" --no-test --limit 60 > /dev/null || fail "cutgz, --limit 60 must load"

# a label out of range: seen only when read
echo "$t/badlabel/train-labels-idx1-ubyte.gz: error: label 12 at index 80 (byte 88) is out of range (10 classes)" > "$t/want"
expect_fail "badlabel" "$t/want" train --data "$t/badlabel" --no-test
expect_fail "badlabel, --limit 81" "$t/want" train --data "$t/badlabel" --no-test --limit 81
train --data "$t/badlabel" --no-test --limit 80 > /dev/null || fail "badlabel, --limit 80 must load"

# headers are checked whatever the limit
echo "$t/magic/train-images-idx3-ubyte.gz: error: bad magic number 0x00000801 (expected 0x00000803 for an IDX image file)" > "$t/want"
expect_fail "magic, --limit 5" "$t/want" train --data "$t/magic" --no-test --limit 5
echo "$t/none/train-images-idx3-ubyte.gz: error: cannot open: No such file or directory" > "$t/want"
mkdir "$t/none"
expect_fail "missing files" "$t/want" train --data "$t/none" --no-test --limit 5

# the test split loads on the data thread too (after the training data)
echo "$t/cuttest/t10k-images-idx3-ubyte: $cut" > "$t/want"
expect_fail "cut test split" "$t/want" train --data "$t/cuttest"

# data that does not fit the model: the message points into the model file
printf '%s\n' "$m:4:7: error: input 'x' is f32[N,28,28,1] but the data 'x' is f32[10,1]" \
    "    4 | input x: f32[N, 28, 28, 1]" "      |       ^" > "$t/want"
expect_fail "shape mismatch" "$t/want" train --data uniform:10 --no-test

# a model that does not compile: its errors alone, never the data's
sed 's/^h = flatten(h)$/h = flatten(h, 1, 2, 3)/' "$m" > "$t/bad.mdl"
"$MODELC" check "$t/bad.mdl" 2> "$t/want" && fail "bad.mdl must not compile"
expect_fail "compile error + bad data" "$t/want" \
  "$MODELC" train "$t/bad.mdl" "${common[@]}" --data "$t/cut" --no-test

# compile warnings come first, then the data errors
sed 's/^  seed = 3$/  seed = 3\n  freeze = ["nothing_*"]/' "$m" > "$t/warn.mdl"
"$MODELC" check "$t/warn.mdl" 2> "$t/want" > /dev/null || fail "warn.mdl must compile"
grep -q "warning: freeze pattern" "$t/want" || fail "warn.mdl must warn"
echo "$t/cut/train-images-idx3-ubyte: $cut" >> "$t/want"
expect_fail "warning + bad data" "$t/want" \
  "$MODELC" train "$t/warn.mdl" "${common[@]}" --data "$t/cut" --no-test

# eval: weights errors come before (and instead of) data errors
ev() { "$MODELC" eval "$m" --threads 1 "$@"; }
ev --weights "$t/w.st" --data "$t/good" --json > "$t/out" || fail "eval on good data"
grep -q '"examples": 50' "$t/out" || fail "eval: 50 test examples"
# the inference compile is timed apart from the evaluation
python3 -c "import json,sys; o=json.load(open(sys.argv[1])); assert o['compile_ms'] > 0 and o['seconds'] > 0 and o['samples_per_s'] > 0, o" "$t/out" || fail "eval --json: compile_ms"
# warm-up batches are timed apart and change nothing in the results
ev --weights "$t/w.st" --data "$t/good" --json --batch 16 > "$t/cold" || fail "eval --batch 16"
ev --weights "$t/w.st" --data "$t/good" --json --batch 16 --warmup 2 > "$t/warm" || fail "eval --warmup 2"
python3 -c "
import json,sys
a, b = (json.load(open(f)) for f in sys.argv[1:])
assert b['warmup_ms'] > 0 and a['warmup_ms'] == 0, (a, b)
assert b['examples'] == a['examples'] and b['loss'] == a['loss'] and b['accuracy'] == a['accuracy'], (a, b)
" "$t/cold" "$t/warm" || fail "eval --warmup: results"
echo "$t/cut/t10k-images-idx3-ubyte: $cut" > "$t/want"
expect_fail "eval cut" "$t/want" ev --weights "$t/w.st" --data "$t/cut"
ev --weights "$t/w.st" --data "$t/cut" --limit 60 > /dev/null || fail "eval cut, --limit 60 must load"
ev --weights "$t/nothing.st" --data "$t/good" 2> "$t/want" && fail "eval without weights"
expect_fail "eval bad weights + bad data" "$t/want" ev --weights "$t/nothing.st" --data "$t/cut"
printf '%s\n' "$m:4:7: error: input 'x' is f32[N,28,28,1] but the data 'x' is f32[10,1]" \
    "    4 | input x: f32[N, 28, 28, 1]" "      |       ^" > "$t/want"
expect_fail "eval shape mismatch" "$t/want" ev --weights "$t/w.st" --data uniform:10
# data without a test split (NPY, CSV) is evaluated whole: labels missing
# from it are named
printf '%s\n' "$m:5:7: error: no data for input 'y' (the data has no unused tensor to bind)" \
    "    5 | input y: i32[N]" "      |       ^" > "$t/want"
python3 -c "
import struct
open('$t/d.npy','wb').write(b'\x93NUMPY\x01\x00' + struct.pack('<H', 118) + (\"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 784), }\".ljust(117) + '\n').encode() + bytes(2 * 784 * 4))
"
expect_fail "eval no test split" "$t/want" ev --weights "$t/w.st" --data "$t/d.npy"
python3 -c "
import struct
open('$t/l.npy','wb').write(b'\x93NUMPY\x01\x00' + struct.pack('<H', 118) + (\"{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }\".ljust(117) + '\n').encode() + struct.pack('<2i', 3, 7))
"
ev --weights "$t/w.st" --data "$t/d.npy" --data "$t/l.npy" > "$t/out" || fail "eval on x.npy y.npy"
grep -q '^2 examples' "$t/out" || fail "eval x.npy y.npy: $(cat "$t/out")"

# class labels are checked whatever the labels input is named (here
# `target`, as `modelc import --loss` names it `labels`)
printf 'input x: f32[N, 4]\ninput target: i32[N]\nlogits = dense(x, 3)\nloss = sparse_categorical_crossentropy(target, logits, from_logits=true)\n' > "$t/tg.mdl"
python3 - "$t/tg.safetensors" <<'PY'
import json, struct, sys
x, y = struct.pack("<16f", *([0.5] * 16)), struct.pack("<4i", 0, 2, 5, 1)
h = json.dumps({"x": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 64]},
                "target": {"dtype": "I32", "shape": [4], "data_offsets": [64, 80]}}).encode()
h += b" " * (-len(h) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + x + y)
PY
set +e
"$MODELC" train "$t/tg.mdl" --data "$t/tg.safetensors" "${common[@]}" > "$t/out" 2>&1
rc=$?
set -e
[ $rc = 1 ] || fail "out-of-range labels named target: exit $rc"
grep -qF "$t/tg.safetensors: error: label 5 at index 2 of 'target' is out of range (3 classes)" "$t/out" ||
    fail "out-of-range labels named target: $(cat "$t/out")"
echo ok
