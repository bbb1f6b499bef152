#!/bin/bash
# A non-finite loss stops training with a message naming the step; the
# step is not applied but re-run op by op on the parameters before it,
# and the report names the first op that produced the NaN/Inf with its
# source line and operand ranges; the checkpoint of the last completed
# epoch is kept unchanged. --check-numerics catches a non-finite
# gradient one step earlier, in the backward pass; a checkpoint with
# non-finite values is never written.
set -uo pipefail
: "${MODELC:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
m=tests/e2e/models/diverge.mdl
"$MODELC" train "$m" --limit 100 --no-test --no-progress --epochs 1 --save "$t/e1.st" > /dev/null 2>&1 || exit 1
cp "$t/e1.st" "$t/ck.st"
"$MODELC" train "$m" --limit 100 --no-test --no-progress --resume "$t/ck.st" --save "$t/ck.st" \
  > "$t/out" 2> "$t/err"
rc=$?
cat "$t/err"
[ $rc -eq 1 ] || fail "expected exit 1, got $rc"
step=$(sed -n 's/.*epoch 2, batch [0-9]*: loss is infinite at step \(1[0-9]\)$/\1/p' "$t/err")
[ -n "$step" ] || fail "no 'loss is infinite' line"
grep -qx "modelc train: no update applied; step $step re-run op by op with the interpreter on the parameters before it:" "$t/err" \
  || fail "no re-run line"
grep -qx "modelc: numerics: step $step (training mode): non-finite: loss" "$t/err" || fail "numerics header"
grep -qx "$m:7:16: error: square produced +Inf in the forward pass (1 of 1 elements, first at \[0\])" "$t/err" \
  || fail "origin op and line"
grep -qx "    7 | loss = 0 - sum(square(w)) + 0.001 \* mean(x)" "$t/err" || fail "source line"
grep -q "^  operand 0: parameter 'w' f32\[1\]: min \([0-9.]*e+[0-9]*\), max \1, no NaN or Inf$" "$t/err" \
  || fail "operand range"
grep -q "the last good checkpoint .*ck.st is kept" "$t/err" || fail "checkpoint message"
cmp "$t/e1.st" "$t/ck.st" || fail "checkpoint changed"

# A finite loss with a non-finite gradient (sqrt at 0).
g=tests/e2e/models/nan_grad.mdl
for backend in jit interp; do
  "$MODELC" train "$g" --limit 100 --no-test --no-progress --no-warn --check-numerics \
    --backend $backend --save "$t/g.st" > "$t/gout" 2> "$t/gerr"
  rc=$?
  cat "$t/gerr"
  [ $rc -eq 1 ] || fail "check-numerics ($backend): expected exit 1, got $rc"
  grep -qx "modelc train: epoch 1, batch 1: step 1: the gradient of 'w' is not finite" "$t/gerr" \
    || fail "check-numerics ($backend): first line"
  grep -qx "$g:9:12: error: div produced +Inf in the backward pass (4 of 4 elements, first at \[0\])" "$t/gerr" \
    || fail "check-numerics ($backend): origin"
  grep -qx "  (part of the gradient of sqrt on this line)" "$t/gerr" || fail "gradient of sqrt"
  grep -qx "  operand 1: sqrt f32\[4\]: min 0, max 0, no NaN or Inf" "$t/gerr" || fail "operand 1"
  [ ! -e "$t/g.st" ] || fail "check-numerics ($backend): a checkpoint was written"
done
# without --check-numerics the NaN reaches the loss one step later,
# through the parameter
"$MODELC" train "$g" --limit 100 --no-test --no-progress --no-warn > "$t/gout" 2> "$t/gerr"
grep -qx "modelc train: epoch 1, batch 2: loss is NaN at step 2" "$t/gerr" || fail "nan_grad: step 2"
grep -qx "$g:8:7: error: parameter 'w' f32\[4\] already holds NaN (4 of 4 elements, first at \[0\]) before the step" \
  "$t/gerr" || { cat "$t/gerr"; fail "nan_grad: parameter report"; }
# one step per epoch: the loss stays finite, the parameters do not; no
# checkpoint is written, and the last step is explained
"$MODELC" train "$g" --limit 10 --no-test --no-progress --no-warn --save "$t/g2.st" > "$t/gout" 2> "$t/gerr"
rc=$?
cat "$t/gerr"
[ $rc -eq 1 ] || fail "non-finite checkpoint: expected exit 1, got $rc"
grep -qx "modelc train: after epoch 1 parameter 'w' is not finite; no checkpoint written" "$t/gerr" \
  || fail "non-finite checkpoint message"
grep -qx "$g:9:12: error: div produced +Inf in the backward pass (4 of 4 elements, first at \[0\])" "$t/gerr" \
  || fail "non-finite checkpoint: origin"
grep -qx "modelc train: stopped; no checkpoint was written" "$t/gerr" || fail "stopped message"
[ ! -e "$t/g2.st" ] || fail "a checkpoint with non-finite values was written"
# Scenario S1: the same network trains in training mode and diverges when
# each step runs the inference graph (--train-mode infer, a warning); the
# report re-runs the failing step in inference mode and names the op.
s1=tests/ir/insight/s1_small.mdl
"$MODELC" train "$s1" --train-mode infer --limit 640 --batch 32 --no-test --no-progress --threads 1 \
  --backend interp > "$t/s1out" 2> "$t/s1err" && fail "S1 in inference mode did not stop"
grep -q "$s1:14:10: warning: model 's1_small' is trained in inference mode" "$t/s1err" || fail "S1 warning"
grep -qx "modelc train: epoch 1, batch 18: loss is NaN at step 18" "$t/s1err" || { cat "$t/s1err"; fail "S1 step"; }
grep -q "^modelc: numerics: step 18 (inference mode): non-finite: " "$t/s1err" || fail "S1 mode of the re-run"
grep -qE "^$s1:[0-9]+:[0-9]+: error: [a-z_]+ produced [-+]?(Inf|NaN)" "$t/s1err" || fail "S1 origin"
"$MODELC" train "$s1" --limit 640 --batch 32 --no-test --no-progress --threads 1 --backend interp \
  > "$t/s1out" 2> "$t/s1err" || fail "S1 in training mode stopped"
! grep -q "warning" "$t/s1err" || fail "S1 in training mode warned"
echo "train_nan: ok"
