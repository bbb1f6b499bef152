#!/usr/bin/env bash
# A wrong gradient rule must fail `modelc gradcheck`, kinks or not: the
# autodiff test hook MODELC_TEST_BREAK_VJP=<op> scales every gradient one
# op's rule sends by 1.05. Breaking relu, max_pool2d, conv2d, rsqrt
# (batchnorm's normalisation) and log_softmax (the softmax cross-entropy)
# one at a time must each make gradcheck on the Fashion-MNIST CNN with
# batchnorm exit 1 with mismatches; the unbroken rules pass.
set -u
: "${MODELC:?MODELC must point at the modelc binary}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
M=examples/fashion_cnn_bn.mdl
run() { "$MODELC" gradcheck $M --batch 2 --samples 4 >"$T/out" 2>"$T/err"; }

run || fail "the unbroken rules did not pass: $(cat "$T/out" "$T/err")"
grep -qx "passed: 10 of 10 parameters match" "$T/out" || fail "$(cat "$T/out")"
for op in relu max_pool2d conv2d rsqrt log_softmax; do
    MODELC_TEST_BREAK_VJP=$op run
    rc=$?
    [ $rc -eq 1 ] || fail "breaking $op: gradcheck exited $rc: $(cat "$T/out" "$T/err")"
    grep -qE '^FAILED: [0-9]+ of 10 parameters match$' "$T/out" || fail "breaking $op: $(cat "$T/out")"
    grep -qE ' [1-9][0-9]* +[0-9.e+-]+ +[0-9.e+-]+  MISMATCH$' "$T/out" || fail "breaking $op: $(cat "$T/out")"
done
echo "gradcheck_mutations: ok"
