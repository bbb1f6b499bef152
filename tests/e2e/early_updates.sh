#!/bin/bash
# Parameter updates move up to just after their gradients (plan.c,
# updates_early): the same checkpoint byte for byte as with them at the
# end of the step (MODELC_NO_EARLY_UPDATES=1), for Adam with batchnorm and
# dropout, and SGD with momentum (S1's model), and a
# smaller training workspace: the dense kernel's gradient no longer lives
# through the convolutions' backward pass.
set -euo pipefail
: "${MODELC:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
arena() {
    "$MODELC" llvm "$1" --fn train_step --memory-plan --batch 128 | sed -n 's/^; arena: \([0-9]*\) bytes.*/\1/p'
}
for m in examples/fashion_cnn_bn.mdl examples/fashion_mlp.mdl examples/fashion_cnn.mdl; do
    early=$(arena "$m")
    late=$(MODELC_NO_EARLY_UPDATES=1 arena "$m")
    [ "$early" -lt "$late" ] || { echo "$m: workspace $early bytes, $late with the updates at the end"; exit 1; }
done
for m in examples/fashion_cnn_bn.mdl examples/s1_learning_phase/model.mdl tests/e2e/models/tiny_bn.mdl; do
    "$MODELC" train "$m" --epochs 1 --limit 192 --batch 64 --no-test --no-progress --no-warn --save "$t/early.st"
    MODELC_NO_EARLY_UPDATES=1 "$MODELC" train "$m" --epochs 1 --limit 192 --batch 64 --no-test --no-progress \
        --no-warn --save "$t/late.st"
    cmp "$t/early.st" "$t/late.st" || { echo "$m: early updates change the checkpoint"; exit 1; }
done >/dev/null
echo "early updates: the same checkpoints, smaller workspaces"
