#!/bin/bash
# Empty tensors (a fixed dimension of 0): empty slices, concatenation with
# empty pieces, transposes and reshapes of them and elementwise ops on
# them give the same outputs on the JIT (1 and 2 threads) as on the
# interpreter; gradients through them (and of an empty parameter) match
# finite differences; a model with them trains on both backends alike;
# an op that would compute something from nothing is an error at its
# position.
set -euo pipefail
cd "$(dirname "$0")/../.."
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
T=tests/e2e/jit_tensors.py

cat > "$t/e.mdl" <<'MDL'
model empty
input x: f32[N, 4, 5]
input e: f32[N, 0, 5]
param s: f32[0, 5] = normal(0.1)
a = x[:, 2:2, :]
b = concat([x, e, a], axis=1)
c = transpose(e, [0, 2, 1])
output y = tanh(b) * 2 + x[:, 1:2, :]
output z = reshape(c, [N, 5, 0, 1]) + 3
output w = e[:, :, 1:3] - s[:, 0:2]
output v = concat([s, s], axis=0)
MDL
"$MODELC" ir "$t/e.mdl" --no-loc --mode=infer >"$t/e.ir"
grep -q '%a = slice(%x) {slice=\[0:, 2:2, 0:5\]} : f32\[N,0,5\]' "$t/e.ir" || fail "empty slice: $(cat "$t/e.ir")"
grep -q '%z = add(%[0-9]*, %[0-9]*) : f32\[N,5,0,1\]' "$t/e.ir" || fail "empty reshape: $(cat "$t/e.ir")"
python3 $T params "$t/e.ir" "$t/w.safetensors" 1
for n in 7 1; do
    python3 $T inputs "$t/e.ir" "$t/x.safetensors" "$n" 2
    "$MODELC" predict "$t/e.mdl" --weights "$t/w.safetensors" --inputs "$t/x.safetensors" \
        -o "$t/yi.safetensors" --backend interp
    for th in 1 2; do
        "$MODELC" predict "$t/e.mdl" --weights "$t/w.safetensors" --inputs "$t/x.safetensors" \
            -o "$t/yj.safetensors" --threads "$th"
        python3 tests/e2e/jit_compare.py "$t/yi.safetensors" "$t/yj.safetensors" ||
            fail "N=$n, $th threads: the JIT differs from the interpreter"
    done
done

# Gradients through empty pieces and of an empty parameter; training.
cat > "$t/g.mdl" <<'MDL'
model g
input x: f32[N, 4]
input t: f32[N, 4]
param w: f32[0, 4] = normal(0.1)
param v: f32[4] = ones
h = dense(x, 4, name="d")
e = h[:, 1:1]
out = concat([h * v, tanh(e) * 2 + reshape(w, [0]), x[:, 0:0]], axis=1)
loss = mean(square(out - t))
train {
    optimizer = adam(lr=0.01)
    epochs = 2
}
MDL
"$MODELC" gradcheck "$t/g.mdl" >"$t/gc.txt" 2>&1 || fail "gradcheck: $(cat "$t/gc.txt")"
grep -q '^w  *\[0,4\]  *0 .* ok$' "$t/gc.txt" || fail "the empty parameter: $(cat "$t/gc.txt")"
grep -q 'passed: 4 of 4 parameters match' "$t/gc.txt" || fail "gradcheck: $(cat "$t/gc.txt")"
"$MODELC" ir "$t/g.mdl" --no-loc >"$t/g.ir"
python3 $T inputs "$t/g.ir" "$t/d.safetensors" 64 3
for b in jit interp; do
    "$MODELC" train "$t/g.mdl" --data "$t/d.safetensors" --batch 16 --backend $b --seed 1 \
        --save "$t/$b.safetensors" >"$t/$b.txt" 2>&1 || fail "train on $b: $(cat "$t/$b.txt")"
done
python3 tests/e2e/jit_compare.py "$t/interp.safetensors" "$t/jit.safetensors" ||
    fail "trained weights differ between the backends"

# Ops that would compute something from nothing, and bad bounds.
. tests/e2e/lib/check.sh
bad() { check_fails "$1" "$2"; } # model text, expected message with its position
bad $'input x: f32[N, 4]\nloss = mean(x[:, 1:1])' \
    "bad.mdl:2:8: error: reduce_mean of the empty tensor f32[N,0] (a dimension is 0) is not supported"
bad $'input x: f32[N, 0]\noutput y = dense(x, 3)' \
    "bad.mdl:2:12: error: matmul of the empty tensor f32[N,0] (a dimension is 0) is not supported"
bad $'input x: f32[N, 4, 0, 1]\noutput y = conv2d(x, 2, 1)' \
    "error: conv2d of the empty tensor f32[N,4,0,1] (a dimension is 0) is not supported"
bad $'input x: f32[N, 4]\noutput y = softmax(x[:, 2:2])' \
    "bad.mdl:2:12: error: softmax of the empty tensor f32[N,0] (a dimension is 0) is not supported"
bad $'input x: f32[N, 4]\noutput y = x[:, 3:1]' \
    "bad.mdl:2:17: error: slice 3:1 is reversed or out of range for axis 1 of f32[N,4]"
bad $'input x: f32[N, 4]\noutput y = reshape(x[:, 0:0], [N, -1, 0])' \
    "error: cannot infer the -1 dimension when reshaping f32[N,0]: the other dimensions hold no elements"
echo "ok"
