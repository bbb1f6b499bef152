#!/bin/bash
# A non-finite loss stops training with a message naming the step; the
# checkpoint of the last completed epoch is kept unchanged.
set -uo pipefail
: "${MODELC:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
m=tests/e2e/models/diverge.mdl
"$MODELC" train "$m" --limit 100 --no-test --no-progress --epochs 1 --save "$t/e1.st" > /dev/null || exit 1
cp "$t/e1.st" "$t/ck.st"
"$MODELC" train "$m" --limit 100 --no-test --no-progress --resume "$t/ck.st" --save "$t/ck.st" \
  > "$t/out" 2> "$t/err"
rc=$?
cat "$t/err"
[ $rc -eq 1 ] || { echo "expected exit 1, got $rc"; exit 1; }
grep -q "epoch 2, batch [0-9]*: loss is infinite at step 1[0-9]" "$t/err" || exit 1
grep -q "the last good checkpoint .*ck.st is kept" "$t/err" || exit 1
cmp "$t/e1.st" "$t/ck.st" || { echo "checkpoint changed"; exit 1; }
echo "train_nan: ok"
