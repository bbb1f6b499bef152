#!/usr/bin/env bash
# `modelc gradcheck --dtype f32 [--backend jit]`: the f32 gradients, unfused
# on the interpreter and fused as the JIT compiles them, against the f64
# gradients of the same weights and batch. Every error is a share of the
# tensor's scale: above zero (f32 is not f64) and at f32's rounding level
# (below 1e-5) on the Fashion-MNIST MLP and CNN; usage errors exit 2.
set -u
: "${MODELC:?MODELC must point at the modelc binary}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

for m in examples/fashion_mlp.mdl examples/fashion_cnn.mdl; do
    "$MODELC" gradcheck $m --dtype f32 --backend jit --batch 8 >"$T/a" 2>"$T/err" ||
        fail "$m: exited $?: $(cat "$T/a" "$T/err")"
    head -1 "$T/a" | grep -qE '^gradcheck fashion_[a-z]+: f32 gradients against f64 of the same weights and batch, batch 8, seed 42; loss [0-9.e+-]+$' ||
        fail "$m: header: $(cat "$T/a")"
    sed -n 3p "$T/a" | grep -qE '^parameter +shape +max \|g64\| +unfused f32 +fused f32 \(jit\)$' || fail "$m: columns: $(cat "$T/a")"
    rows=$(awk 'NR > 3 && $2 ~ /^\[/' "$T/a" | wc -l)
    [ "$rows" -ge 6 ] || fail "$m: $rows rows: $(cat "$T/a")"
    awk 'NR > 3 && $2 ~ /^\[/ { if (!($3 > 0) || !($4 > 0 && $4 < 1e-5) || !($5 > 0 && $5 < 1e-5)) bad = bad $1 " " }
         END { if (bad != "") { print bad; exit 1 } }' "$T/a" >"$T/bad" || fail "$m: errors out of range for $(cat "$T/bad"): $(cat "$T/a")"
    grep -qE '^largest: unfused f32 [0-9.e+-]+, fused f32 \(jit\) [0-9.e+-]+$' "$T/a" || fail "$m: $(cat "$T/a")"
done

# the interpreter alone: the unfused column only, the same numbers
"$MODELC" gradcheck examples/fashion_mlp.mdl --dtype f32 --batch 8 >"$T/b" 2>/dev/null || fail "--dtype f32 alone"
sed -n 3p "$T/b" | grep -qE '^parameter +shape +max \|g64\| +unfused f32$' || fail "interp columns: $(cat "$T/b")"
"$MODELC" gradcheck examples/fashion_mlp.mdl --dtype f32 --backend jit --batch 8 >"$T/a" 2>/dev/null
diff <(awk 'NR > 3 && $2 ~ /^\[/ { print $1, $3, $4 }' "$T/a") <(awk 'NR > 3 && $2 ~ /^\[/ { print $1, $3, $4 }' "$T/b") >/dev/null ||
    fail "the unfused column differs with and without the JIT"

# usage errors
"$MODELC" gradcheck examples/fashion_mlp.mdl --backend jit 2>"$T/err"
[ $? -eq 2 ] || fail "--backend jit without --dtype f32 is not a usage error"
grep -qF -- "--backend jit compares f32 gradients: add --dtype f32" "$T/err" || fail "$(cat "$T/err")"
"$MODELC" gradcheck examples/fashion_mlp.mdl --dtype f16 2>"$T/err"
[ $? -eq 2 ] || fail "--dtype f16 is not a usage error"
grep -qF "unknown dtype 'f16' (expected f64 or f32)" "$T/err" || fail "$(cat "$T/err")"
"$MODELC" gradcheck examples/fashion_mlp.mdl --dtype f32 --backend gpu 2>/dev/null
[ $? -eq 2 ] || fail "--backend gpu is not a usage error"
echo "gradcheck_f32: ok"
