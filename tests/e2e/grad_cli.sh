#!/usr/bin/env bash
# `modelc grad`: exact loss and gradients for a model small enough to
# differentiate by hand (from --inputs and --weights files), --wrt inputs,
# the same seed giving the same bytes, weights from `modelc init`, the JIT
# backend giving the same values, and the errors: inputs or weights that
# do not fit the model, a NaN loss, usage errors.
set -u
: "${MODELC:?MODELC must point at the modelc binary}"
if ! command -v python3 >/dev/null 2>&1; then
    echo "python3 not found: grad files not checked"
    exit 0
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
PY=tests/data/safetensors_py.py
fail() { echo "FAIL: $*" >&2; exit 1; }

# write FILE NAME DTYPE SHAPE VALUES [NAME DTYPE SHAPE VALUES]...
# e.g. write x.st x F32 2,2 1,2,3,4
write() {
    python3 - "$@" <<'PYEOF'
import json, struct, sys
path, args = sys.argv[1], sys.argv[2:]
codes = {"F32": "f", "F64": "d", "I32": "i"}
header, blobs, off = {}, b"", 0
for i in range(0, len(args), 4):
    name, dt, shape, vals = args[i:i + 4]
    shape = [int(s) for s in shape.split(",")] if shape else []
    vals = [float(v) if dt != "I32" else int(v) for v in vals.split(",")]
    data = struct.pack("<%d%s" % (len(vals), codes[dt]), *vals)
    header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(data)]}
    blobs += data
    off += len(data)
h = json.dumps(header, sort_keys=True).encode()
h += b" " * (-len(h) % 8)
open(path, "wb").write(struct.pack("<Q", len(h)) + h + blobs)
PYEOF
}

# loss = sum(x * w) + sum(w^2): d/dw = sum over rows of x + 2w, d/dx = w
cat >"$T/lin.mdl" <<'EOF'
model lin
input x: f32[N, 2]
param w: f32[2] = constant(0.5)
loss = sum(x * w) + sum(square(w))
EOF
write "$T/x.st" x F32 2,2 1,2,3,4
write "$T/w.st" w F32 2 0.5,-1

"$MODELC" grad "$T/lin.mdl" --inputs "$T/x.st" --weights "$T/w.st" --wrt x -o "$T/g.st" \
    >"$T/out" 2>"$T/err" || fail "grad exited $?: $(cat "$T/err")"
# 0.5*(1+3) - (2+4) + 0.25 + 1 = -2.75
grep -qx "loss: -2.75" "$T/out" || fail "loss: $(cat "$T/out")"
grep -qx "wrote 2 gradients to $T/g.st" "$T/out" || fail "summary: $(cat "$T/out")"
python3 "$PY" dump "$T/g.st" >"$T/dump" || fail "the Python reader rejected the gradients"
grep -qxF "grad.w F32 [2] [5.0, 4.0]" "$T/dump" || fail "grad.w: $(cat "$T/dump")"
grep -qxF "grad.x F32 [2, 2] [0.5, -1.0, 0.5, -1.0]" "$T/dump" || fail "grad.x: $(cat "$T/dump")"
grep -qF "'loss': '-2.75'" "$T/dump" || fail "metadata: $(cat "$T/dump")"

# same seed, same bytes; weights from `modelc init` with that seed are the
# ones grad initialises itself
"$MODELC" grad examples/fashion_mlp.mdl --seed 9 -o "$T/a.st" >"$T/a.out" || fail "grad (seed 9)"
"$MODELC" grad examples/fashion_mlp.mdl --seed 9 -o "$T/b.st" >/dev/null || fail "grad (seed 9, again)"
cmp -s "$T/a.st" "$T/b.st" || fail "the same seed gave different gradients"
"$MODELC" init examples/fashion_mlp.mdl --seed 9 -o "$T/w9.st" >/dev/null || fail "init"
"$MODELC" grad examples/fashion_mlp.mdl --seed 9 --weights "$T/w9.st" -o "$T/c.st" >"$T/c.out" ||
    fail "grad --weights"
cmp -s "$T/a.st" "$T/c.st" || fail "weights from init gave different gradients"
"$MODELC" grad examples/fashion_mlp.mdl --seed 10 -o "$T/d.st" >/dev/null || fail "grad (seed 10)"
cmp -s "$T/a.st" "$T/d.st" && fail "a different seed gave the same gradients"

# inputs that do not fit
write "$T/bad.st" x F32 2,3 1,2,3,4,5,6
"$MODELC" grad "$T/lin.mdl" --inputs "$T/bad.st" -o "$T/g2.st" 2>"$T/err" && fail "accepted x of shape [2,3]"
grep -qF "error: input 'x' is f32[2,3], the model expects f32[N,2]" "$T/err" || fail "$(cat "$T/err")"
write "$T/extra.st" x F32 1,2 1,2 y F32 1 3
"$MODELC" grad "$T/lin.mdl" --inputs "$T/extra.st" -o "$T/g2.st" 2>"$T/err" && fail "accepted an extra tensor"
grep -qF "error: tensor 'y' is not an input of model 'lin'" "$T/err" || fail "$(cat "$T/err")"
write "$T/none.st" y F32 1 3
"$MODELC" grad "$T/lin.mdl" --inputs "$T/none.st" -o "$T/g2.st" 2>"$T/err" && fail "accepted a missing input"
grep -qF "error: input 'x' is missing; the model expects f32[N,2]" "$T/err" || fail "$(cat "$T/err")"
[ -e "$T/g2.st" ] && fail "wrote gradients after an error"

# weights that do not fit
write "$T/w3.st" w F32 3 1,2,3
"$MODELC" grad "$T/lin.mdl" --weights "$T/w3.st" -o "$T/g2.st" 2>"$T/err" && fail "accepted w of shape [3]"
grep -qF "tensor 'w' has shape [3], the model expects [2]" "$T/err" || fail "$(cat "$T/err")"

# a NaN loss is an error naming the loss
cat >"$T/nan.mdl" <<'EOF'
model nan
input x: f32[N, 2]
param w: f32[2] = constant(0.5)
loss = sum(log(x * w - 2))
EOF
"$MODELC" grad "$T/nan.mdl" -o "$T/g3.st" >"$T/out" 2>"$T/err" && fail "accepted a NaN loss"
grep -qF "error: the loss 'loss' is NaN at element 0" "$T/err" || fail "$(cat "$T/err")"
grep -qF "note: the first NaN or infinity comes from log" "$T/err" || fail "$(cat "$T/err")"
[ -e "$T/g3.st" ] && fail "wrote gradients of a NaN loss"

# --wrt of something that is not an input
"$MODELC" grad "$T/lin.mdl" --wrt nope -o "$T/g2.st" 2>"$T/err" && fail "accepted --wrt nope"
grep -qF "nope" "$T/err" || fail "$(cat "$T/err")"

# the JIT backend computes the same exact values
"$MODELC" grad "$T/lin.mdl" --inputs "$T/x.st" --weights "$T/w.st" --wrt x -o "$T/gj.st" \
    --backend=jit >"$T/out" 2>"$T/err" || fail "grad --backend=jit exited $?: $(cat "$T/err")"
grep -qx "loss: -2.75" "$T/out" || fail "jit loss: $(cat "$T/out")"
python3 "$PY" dump "$T/gj.st" >"$T/dumpj" || fail "the Python reader rejected the JIT gradients"
cmp -s "$T/dump" "$T/dumpj" || fail "JIT gradients differ: $(cat "$T/dumpj")"

# usage errors
"$MODELC" grad "$T/lin.mdl" --backend=gpu -o "$T/g2.st" 2>"$T/err"
[ $? -eq 2 ] || fail "--backend=gpu is not a usage error"
grep -qF "unknown backend 'gpu' (expected interp or jit)" "$T/err" || fail "$(cat "$T/err")"
"$MODELC" grad "$T/lin.mdl" 2>"$T/err"
[ $? -eq 2 ] || fail "a missing -o is not a usage error"
grep -qF "missing the output file (-o G.safetensors)" "$T/err" || fail "$(cat "$T/err")"
"$MODELC" grad "$T/lin.mdl" --batch 0 -o "$T/g2.st" 2>/dev/null
[ $? -eq 2 ] || fail "--batch 0 is not a usage error"
"$MODELC" grad "$T/missing.mdl" -o "$T/g2.st" 2>"$T/err"
[ $? -eq 1 ] || fail "a missing model file does not exit 1"
echo "grad_cli: ok"
