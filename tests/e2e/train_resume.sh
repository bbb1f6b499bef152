#!/bin/bash
# Resuming from a checkpoint gives bit-identical parameters to an
# uninterrupted run; checkpoints carry step/epoch; corrupt checkpoints and
# impossible flags are rejected with exit 1 / 2.
set -euo pipefail
: "${MODELC:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
m=tests/e2e/models/tiny_bn.mdl
common=(--limit 600 --batch 100 --no-test --no-progress --seed 7 --threads 1)
"$MODELC" train "$m" "${common[@]}" --epochs 2 --save "$t/full.st" > "$t/full.log"
"$MODELC" train "$m" "${common[@]}" --epochs 1 --save "$t/half.st" > /dev/null
"$MODELC" train "$m" "${common[@]}" --epochs 2 --resume "$t/half.st" --save "$t/resumed.st" > "$t/res.log"
grep -q "resumed from .*half.st at epoch 1, step 6" "$t/res.log"
cmp "$t/full.st" "$t/resumed.st"
# the same seed gives the same bytes; another seed does not
"$MODELC" train "$m" "${common[@]}" --epochs 1 --save "$t/half2.st" > /dev/null
cmp "$t/half.st" "$t/half2.st"
"$MODELC" train "$m" --limit 600 --batch 100 --no-test --no-progress --seed 8 --threads 1 --epochs 1 --save "$t/other.st" > /dev/null
! cmp -s "$t/half.st" "$t/other.st"
# a truncated checkpoint is an error naming the file
head -c 1000 "$t/half.st" > "$t/trunc.st"
if "$MODELC" train "$m" "${common[@]}" --epochs 2 --resume "$t/trunc.st" 2> "$t/err"; then exit 1; fi
grep -q "trunc.st" "$t/err"
# a checkpoint of another model is rejected
"$MODELC" init examples/fashion_mlp.mdl -o "$t/mlp.st"
if "$MODELC" train "$m" "${common[@]}" --resume "$t/mlp.st" 2> "$t/err2"; then exit 1; fi
grep -q "not a parameter of model" "$t/err2"
# usage errors exit 2
set +e
"$MODELC" train "$m" --batch 0; [ $? -eq 2 ] || exit 1
"$MODELC" train "$m" --val-split 1.5; [ $? -eq 2 ] || exit 1
"$MODELC" train "$m" --backend gpu; [ $? -eq 2 ] || exit 1
"$MODELC" train; [ $? -eq 2 ] || exit 1
echo "train_resume: ok"
