#!/usr/bin/env bash
# A wrong gradient rule must fail `modelc gradcheck`, kinks or not: the
# autodiff test hook MODELC_TEST_BREAK_VJP=<op> scales every gradient one
# op's rule sends by 1.05. Breaking relu, max_pool2d, conv2d, rsqrt
# (batchnorm's normalisation) and log_softmax (the softmax cross-entropy)
# one at a time must each make gradcheck on the Fashion-MNIST CNN with
# batchnorm exit 1 with mismatches, and the check of each op's rule on
# its own must name the broken op at its model line (the first such op
# in the model) with its operand types; the unbroken rules pass, and when
# the tolerance alone fails them no op is blamed.
set -u
: "${MODELC:?MODELC must point at the modelc binary}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
M=examples/fashion_cnn_bn.mdl
run() { "$MODELC" gradcheck $M --batch 2 --samples 4 >"$T/out" 2>"$T/err"; }

run || fail "the unbroken rules did not pass: $(cat "$T/out" "$T/err")"
grep -qx "passed: 10 of 10 parameters match" "$T/out" || fail "$(cat "$T/out")"
"$MODELC" gradcheck $M --batch 2 --samples 1 --atol 0 --rtol 0 >"$T/out" 2>"$T/err"
[ $? -eq 1 ] || fail "zero tolerance did not fail: $(cat "$T/out")"
grep -qE '^modelc: note: the gradient rule of each of the [0-9]+ differentiable ops agrees with its own finite difference on this batch' "$T/err" ||
    fail "zero tolerance: $(cat "$T/err")"
grep -q "disagrees" "$T/err" && fail "zero tolerance blamed an op: $(cat "$T/err")"

while read -r op at operands; do
    MODELC_TEST_BREAK_VJP=$op run
    rc=$?
    [ $rc -eq 1 ] || fail "breaking $op: gradcheck exited $rc: $(cat "$T/out" "$T/err")"
    grep -qE '^FAILED: [0-9]+ of 10 parameters match$' "$T/out" || fail "breaking $op: $(cat "$T/out")"
    grep -qE ' [1-9][0-9]* +[0-9.e+-]+ +[0-9.e+-]+  MISMATCH$' "$T/out" || fail "breaking $op: $(cat "$T/out")"
    [ "$(grep -c 'disagrees' "$T/err")" -eq 1 ] || fail "breaking $op: not one op named: $(cat "$T/err")"
    grep -qE "^$M:$at: note: the gradient rule of $op( \('[a-z_0-9]+'\))? disagrees with its own finite difference on this batch: .*operands $operands\)$" "$T/err" ||
        fail "breaking $op: the op is not named at $M:$at with operands $operands: $(cat "$T/err")"
done <<'OPS'
relu 12:5 f64\[2,28,28,32\]
max_pool2d 13:5 f64\[2,28,28,32\]
conv2d 11:5 f64\[2,28,28,1\], f64\[3,3,1,32\]
rsqrt 12:10 f64\[32\]
log_softmax 22:8 f64\[2,10\]
OPS
echo "gradcheck_mutations: ok"
