#!/bin/bash
# The composite activations', reductions' (min, var, std) and shape
# functions' (squeeze, expand_dims, stack) symbolic gradients against
# central differences in f64 (several seeds), and their errors: a bad
# keyword, an integer operand, an unknown activation word with a
# suggestion, squeezing an axis that is not 1, an axis out of range.
set -euo pipefail
: "${MODELC:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
m=tests/e2e/models/activations.mdl
for seed in 1 2 3; do
    "$MODELC" gradcheck "$m" --seed "$seed" > "$t/out" 2>&1 || fail "seed $seed: $(cat "$t/out")"
    grep -q "passed: 16 of 16 parameters match" "$t/out" || fail "seed $seed: $(cat "$t/out")"
done
for seed in 1 2 3; do
    "$MODELC" gradcheck tests/e2e/models/stats_shapes.mdl --seed "$seed" > "$t/out" 2>&1 ||
        fail "stats seed $seed: $(cat "$t/out")"
    grep -q "passed: 4 of 4 parameters match" "$t/out" || fail "stats seed $seed: $(cat "$t/out")"
done
. tests/e2e/lib/check.sh
bad() { # model text, expected message
    check_fails "$1" "$2"
    grep -qE "bad.mdl:[0-9]+:[0-9]+" "$t/err" || fail "no position for: $1"
}
bad $'input x: i32[N, 3]\noutput y = gelu(x)' "gelu() needs a float tensor"
bad $'input x: f32[N, 3]\noutput y = gelu(x, approximate=2)' "approximate"
bad $'input x: f32[N, 3]\noutput y = leaky_relu(x, slope=0.1)' "slope"
bad $'input x: f32[N, 3]\noutput y = dense(x, 2, activation="gelux")' 'did you mean "gelu"'
bad $'input x: f32[N, 3]\noutput y = squeeze(x, axis=1)' "squeeze(): axis 1 of f32[N,3] has size other than 1"
bad $'input x: f32[N, 3]\noutput y = squeeze(x, axis=0)' "has size N, not 1"
bad $'input x: f32[N, 3]\noutput y = expand_dims(x, 3)' "axis 3 is out of range for a new axis of f32[N,3]"
bad $'input x: f32[N, 3]\noutput y = stack([x, x], axis=-4)' "axis -4 is out of range"
bad $'input x: f32[N, 3]\ninput z: f32[N, 4]\noutput y = stack([x, z], axis=1)' "concat"
bad $'input x: i32[N, 3]\noutput y = std(x, axis=1)' "std() needs a float tensor"
echo "ok: activations"
