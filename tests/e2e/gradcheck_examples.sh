#!/usr/bin/env bash
# `modelc gradcheck` passes on every example model: symbolic gradients in
# f64 agree with central finite differences of the loss (PyTorch's
# tolerances) on a sample of elements of every trainable parameter.
# A small batch, and two elements per parameter for the convolutional
# models (four for the recurrent one, sixteen for the others), keep the check quick even in a
# sanitizer build; the per-op checks (test_gradcheck_ops) cover every
# rule element by element.
set -u
: "${MODELC:?MODELC must point at the modelc binary}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

n=0
while IFS= read -r f; do
    n=$((n + 1))
    samples=16
    grep -q "conv2d" "$f" && samples=2
    grep -q "lstm(" "$f" && samples=4 # 64 steps of a 256-unit cell per loss
    "$MODELC" gradcheck "$f" --samples $samples --batch 2 >"$T/out" 2>"$T/err" ||
        fail "$f: gradcheck exited $?:$(printf '\n')$(cat "$T/out" "$T/err")"
    k=$(grep -c '  ok$' "$T/out")
    grep -qx "passed: $k of $k parameters match" "$T/out" || fail "$f: $(cat "$T/out")"
    [ "$k" -gt 0 ] || fail "$f: no parameter checked"
    grep -q "MISMATCH" "$T/out" && fail "$f: $(cat "$T/out")"
done < <(find examples -name '*.mdl' | sort)
[ $n -gt 0 ] || fail "no example models found"
echo "gradcheck_examples: $n models ok"
