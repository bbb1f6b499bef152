#!/usr/bin/env bash
# `modelc gradcheck` with the default eps passes on the examples with
# ReLU, max pooling and batchnorm for seeds 1 to 5 (weights, batch and
# sampled elements change with the seed): a difference that crosses a
# kink is checked again, not reported as a mismatch. A small batch and
# few elements per parameter keep the run short; the kinks column is
# summed over all runs and printed.
set -u
: "${MODELC:?MODELC must point at the modelc binary}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

kinks=0 runs=0
while read -r m samples; do
    for seed in 1 2 3 4 5; do
        "$MODELC" gradcheck "$m" --seed $seed --samples $samples --batch 2 >"$T/out" 2>"$T/err" ||
            fail "$m --seed $seed: exited $?: $(cat "$T/out" "$T/err")"
        k=$(awk '$2 ~ /^\[/ && NF == 9 { n++ } END { print n + 0 }' "$T/out")
        [ "$k" -gt 0 ] || fail "$m --seed $seed: no parameter rows: $(cat "$T/out")"
        grep -qx "passed: $k of $k parameters match" "$T/out" || fail "$m --seed $seed: $(cat "$T/out")"
        grep -q "MISMATCH" "$T/out" && fail "$m --seed $seed: $(cat "$T/out")"
        kinks=$((kinks + $(awk '$2 ~ /^\[/ && NF == 9 { s += $4 } END { print s + 0 }' "$T/out")))
        runs=$((runs + 1))
    done
done <<'MODELS'
examples/fashion_cnn.mdl 4
examples/fashion_cnn_bn.mdl 4
examples/s4_frozen_bn/model.mdl 4
examples/s1_learning_phase/model.mdl 1
MODELS
echo "gradcheck_seeds: $runs runs ok, $kinks kink crossings checked again"
