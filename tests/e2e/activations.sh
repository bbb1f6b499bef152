#!/bin/bash
# The composite activations' symbolic gradients against central
# differences in f64 (several seeds), and their errors: a bad keyword, an
# integer operand, an unknown activation word with a suggestion.
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
bad() { # model text, expected message
    printf '%s\n' "$1" > "$t/bad.mdl"
    set +e
    "$MODELC" check "$t/bad.mdl" > "$t/err" 2>&1
    rc=$?
    set -e
    [ "$rc" = 1 ] || fail "exit $rc for: $1"
    grep -qF "$2" "$t/err" || fail "expected '$2' for: $1, got: $(cat "$t/err")"
    grep -qE "bad.mdl:[0-9]+:[0-9]+" "$t/err" || fail "no position for: $1"
}
bad $'input x: i32[N, 3]\noutput y = gelu(x)' "gelu() needs a float tensor"
bad $'input x: f32[N, 3]\noutput y = gelu(x, approximate=2)' "approximate"
bad $'input x: f32[N, 3]\noutput y = leaky_relu(x, slope=0.1)' "slope"
bad $'input x: f32[N, 3]\noutput y = dense(x, 2, activation="gelux")' 'did you mean "gelu"'
echo "ok: activations"
