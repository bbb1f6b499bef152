#!/bin/bash
# A recurrent layer is one loop whatever the number of steps: for an LSTM
# over 3 and over 200 steps the training step's IR has the same number of
# lines and its LLVM module the same functions (the body's code is
# compiled once); an LSTM trains with the JIT, and its IR round-trips.
set -euo pipefail
: "${MODELC:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
for steps in 3 200; do
    cat > "$t/m$steps.mdl" <<MDL
model lstm$steps
input x: f32[N, $steps, 8]
input y: f32[N, 4]
h = lstm(x, 16)
loss = mse(y, dense(h, 4))
MDL
    "$MODELC" ir "$t/m$steps.mdl" --fn train_step > "$t/ir$steps.ir" || fail "modelc ir, $steps steps"
    "$MODELC" llvm "$t/m$steps.mdl" --fn train_step > "$t/ll$steps" || fail "modelc llvm, $steps steps"
    grep -c '^define' "$t/ll$steps" > "$t/defs$steps"
    "$MODELC" ir "$t/ir$steps.ir" > "$t/again$steps" || fail "the IR of $steps steps does not parse"
    cmp -s "$t/ir$steps.ir" "$t/again$steps" || fail "the IR of $steps steps does not round-trip"
done
[ "$(wc -l < "$t/ir3.ir")" -eq "$(wc -l < "$t/ir200.ir")" ] || fail "the IR grows with the steps"
[ "$(wc -l < "$t/ir200.ir")" -lt 600 ] || fail "the IR of a 200-step LSTM is $(wc -l < "$t/ir200.ir") lines"
cmp -s "$t/defs3" "$t/defs200" || fail "the LLVM module has $(cat "$t/defs3") functions for 3 steps, $(cat "$t/defs200") for 200"
python3 - "$t/seq.safetensors" <<'PY'
import json, random, struct, sys
random.seed(3)
x = [random.uniform(-1, 1) for _ in range(64 * 3 * 8)]
y = [sum(x[n * 24 + k * 8] for k in range(3)) / 3 for n in range(64) for _ in range(4)]
header, blobs, off = {}, [], 0
for name, shape, v in (("x", [64, 3, 8], x), ("y", [64, 4], y)):
    b = struct.pack("<%df" % len(v), *v)
    header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(b)]}
    blobs.append(b)
    off += len(b)
h = json.dumps(header).encode()
h += b" " * ((8 - (8 + len(h)) % 8) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
PY
"$MODELC" train "$t/m3.mdl" --data "$t/seq.safetensors" --batch 16 --epochs 2 --no-warn > "$t/train" 2>&1 ||
    fail "training: $(cat "$t/train")"
grep -q 'Epoch 2/2' "$t/train" || fail "training did not run two epochs: $(cat "$t/train")"
echo "ok: the 200-step LSTM's training step is $(wc -l < "$t/ir200.ir") lines of IR, $(cat "$t/defs200") LLVM functions"
