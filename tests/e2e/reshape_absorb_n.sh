#!/bin/bash
# reshape's -1 absorbs the batch dimension N when it stands for N
# exactly (the other dimensions hold all of the operand's static
# elements) and comes first: reshape(x, [-1, 12]) of f32[N,3,4] is
# f32[N,12]. The JIT against the interpreter (predict and gradients),
# symbolic gradients against central differences in f64, the IR text
# round trip, and the located errors of the reshapes that cannot be.
set -euo pipefail
: "${MODELC:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cat > "$t/r.mdl" <<'MDL'
model absorb
input x: f32[N, 3, 4]
input y: i32[N]
h = dense(x, 4, activation=tanh)
h = reshape(h, [-1, 12])
logits = dense(h, 5)
loss = sparse_categorical_crossentropy(y, logits, from_logits=true)
output p = logits
MDL
"$MODELC" ir "$t/r.mdl" --no-loc > "$t/r.ir"
grep -q 'reshape(%.*) {shape=\[N,12\]} : f32\[N,12\]' "$t/r.ir" || fail "-1 did not become N: $(cat "$t/r.ir")"
# IR text round trip: the printed graph parses back and prints the same.
"$MODELC" ir "$t/r.ir" --no-loc > "$t/r2.ir"
cmp "$t/r.ir" "$t/r2.ir" || fail "IR round trip differs"
for seed in 1 2; do
    "$MODELC" gradcheck "$t/r.mdl" --seed "$seed" > "$t/out" 2>&1 || fail "gradcheck seed $seed: $(cat "$t/out")"
    grep -q "passed: 4 of 4 parameters match" "$t/out" || fail "gradcheck seed $seed: $(cat "$t/out")"
done
"$MODELC" grad "$t/r.mdl" --backend interp -o "$t/gi.safetensors" > /dev/null
"$MODELC" grad "$t/r.mdl" --backend jit -o "$t/gj.safetensors" > /dev/null
python3 tests/e2e/jit_compare.py "$t/gi.safetensors" "$t/gj.safetensors" || fail "JIT gradients differ"
"$MODELC" ir "$t/r.mdl" --no-loc --mode=infer > "$t/m.ir"
python3 tests/e2e/jit_tensors.py params "$t/m.ir" "$t/w.safetensors" 1
python3 tests/e2e/jit_tensors.py inputs "$t/m.ir" "$t/x.safetensors" 7 2
"$MODELC" predict "$t/r.mdl" --weights "$t/w.safetensors" --inputs "$t/x.safetensors" -o "$t/pi.safetensors" --backend=interp
"$MODELC" predict "$t/r.mdl" --weights "$t/w.safetensors" --inputs "$t/x.safetensors" -o "$t/pj.safetensors" --threads 1
python3 tests/e2e/jit_compare.py "$t/pi.safetensors" "$t/pj.safetensors" || fail "JIT predictions differ"

bad() { # model text, expected message with its position
    printf '%s\n' "$1" > "$t/bad.mdl"
    set +e
    "$MODELC" check "$t/bad.mdl" > "$t/err" 2>&1
    rc=$?
    set -e
    [ "$rc" = 1 ] || fail "exit $rc for: $1"
    grep -qF -- "$2" "$t/err" || fail "expected '$2' for: $1, got: $(cat "$t/err")"
}
bad $'input x: f32[N, 5, 50]\noutput y = reshape(x, [-1, 50])' \
    "bad.mdl:2:24: error: reshaping f32[N,5,50] with -1 here would fold the batch dimension N into it (N*5 rows)"
bad $'input x: f32[N, 3, 4]\noutput y = reshape(x, [12, -1])' \
    "bad.mdl:2:28: error: reshaping f32[N,3,4], this -1 would be the batch dimension N, which may only be the first dimension"
bad $'input x: f32[N, 3, 4]\noutput y = reshape(x, [-1, 5])' \
    "bad.mdl:2:24: error: cannot infer the -1 dimension when reshaping f32[N,3,4]: the sizes do not divide"
bad $'input x: f32[N, 3, 4]\noutput y = reshape(x, [-1, 0])' "bad.mdl:2:28: error: dimension 0 must be positive"
echo "ok: reshape_absorb_n"
