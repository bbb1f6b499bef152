#!/bin/bash
# Sequence and image functions that lower to existing ops: a model with
# an embedding, dense on a sequence and batched matmul (attention
# scores), one with upsampling2d, pad, global pooling, layer_norm and
# a tensor literal, one with conv1d and conv2d_transpose (kernel
# regularizers on three layers). Symbolic gradients against central differences in
# f64 (several seeds), the JIT's gradients against the interpreter's,
# and the errors of bad arguments (exit 1, a position).
set -euo pipefail
: "${MODELC:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
for m in sequence:6 image_seq:8 conv_more:10; do
    f=tests/e2e/models/${m%:*}.mdl
    for seed in 1 2 3; do
        "$MODELC" gradcheck "$f" --seed "$seed" > "$t/out" 2>&1 || fail "$f seed $seed: $(cat "$t/out")"
        grep -q "passed: ${m#*:} of ${m#*:} parameters match" "$t/out" || fail "$f seed $seed: $(cat "$t/out")"
    done
    "$MODELC" grad "$f" --backend interp -o "$t/interp.st" > /dev/null
    "$MODELC" grad "$f" --backend jit -o "$t/jit.st" > /dev/null
    python3 tests/e2e/jit_compare.py "$t/interp.st" "$t/jit.st" || fail "$f: JIT gradients differ"
done
. tests/e2e/lib/check.sh
bad() { # model text, expected message
    check_fails "$1" "$2"
    grep -qE "bad.mdl:[0-9]+:[0-9]+" "$t/err" || fail "no position for: $1"
}
bad $'input x: f32[N, 3]\noutput y = layer_norm(x, axis=0)' "layer_norm() normalises each example: its axes cannot include N"
bad $'input x: f32[N, 3]\noutput y = layer_norm(x, epsilon=0)' "argument 'epsilon' of layer_norm() must be positive"
bad $'input x: f32[N, 3]\noutput y = global_avg_pool2d(x)' "global_avg_pool2d() needs an NHWC input of rank 4"
bad $'input x: f32[N, 3]\noutput y = upsampling2d(x)' "upsampling2d() needs an NHWC input of rank 4"
bad $'input x: f32[N, 2, 2, 1]\noutput y = upsampling2d(x, size=0)' "argument 'size' of upsampling2d() must be a positive integer"
bad $'input x: f32[N, 3]\noutput y = pad(x, [[0, 0]])' "pad() of f32[N,3] needs a list of 2 pairs [before, after], one per axis"
bad $'input x: f32[N, 3]\noutput y = pad(x, [[1, 0], [0, 0]])' "pad(): the batch axis N cannot be padded"
bad $'input x: f32[N, 3]\noutput y = pad(x, [[0, 0], [0, -1]])' "pad(): padding must be a non-negative integer"
bad $'input x: f32[N, 3]\noutput y = x + [[1.0, 2.0], [3.0]]' "the items of a tensor literal differ in shape"
bad $'input x: f32[N, 3]\noutput y = x + [1.0, x]' "expected a constant number, found a tensor"
bad $'input x: f32[N, 3]\noutput y = x + [1.0, relu(x)]' "a tensor literal holds numbers only; stack() joins tensors"
bad $'input x: f32[N, 3]\noutput y = x + []' "an empty list is not a tensor"
bad $'input x: f32[N, 2, 3]\ninput z: f32[N, 4, 3]\noutput y = x @ z' "inner dimensions 3 and 4 differ"
bad $'input x: f32[N, 2, 3]\ninput z: f32[2, 3, 4]\noutput y = x @ z' "batch dimensions N and 2 differ"
bad $'input x: f32[N]\noutput y = dense(x, 3)' "dense() needs an input of rank 2 or more"
bad $'input x: f32[N, 4, 4, 1]\noutput y = conv1d(x, 2, 3)' "conv1d() needs an input of rank 3 or more, got f32[N,4,4,1]"
bad $'input x: f32[N, 4, 1]\noutput y = conv1d(x, 2, [3, 3])' "argument 'kernel' of conv1d() must be an integer"
bad $'input x: f32[N, 4, 1]\noutput y = conv1d(x, 2, 3, padding="full")' 'padding'
bad $'input x: f32[N, 4, 1]\noutput y = conv1d(x, 2, 5)' "window 1x5 is larger than the padded input 1x4"
bad $'input x: f32[N, 4, 1]\noutput y = conv2d_transpose(x, 2, 3)' "conv2d_transpose() needs an NHWC input of rank 4"
bad $'input x: f32[N, 4, 4, 1]\noutput y = conv2d_transpose(x, 0, 3)' "argument 'filters' of conv2d_transpose() must be at least 1"
bad $'input x: f32[N, 3]\ninput y: i32[N]\nloss = sparse_categorical_crossentropy(y, x, label_smoothing=2)' "label_smoothing must be in [0, 1], got 2"
bad $'input x: f32[N, 3]\ninput y: i32[N]\nloss = sparse_categorical_crossentropy(y, x, class_weight=[1, 2])' "class_weight needs a list of 3 weights, one per class"
bad $'input x: f32[N, 1]\ninput y: f32[N, 1]\nloss = binary_crossentropy(y, x, class_weight=[1, 2, 3])' "class_weight needs a list of 2 weights, one per class"
bad $'input x: f32[N, 1]\ninput y: f32[N, 1]\nloss = mse(y, x, label_smoothing=0.1)' "label_smoothing"
bad $'input x: f32[N, 5, 50]\noutput y = reshape(x, [-1, 7])' "it would be N*250/7, not a whole multiple of the batch dimension N"
bad $'input x: f32[N, 3]\ninput y: f32[N, 3]\nloss = huber(y, x, delta=0)' "huber(): delta must be positive, got 0"
bad $'input x: f32[N, 3]\ninput y: f32[N, 2]\nloss = kl_divergence(y, x)' "must have the same shape"
bad $'input x: f32[N, 3]\nh = dense(x, 2, kernel_regularizer=l2)\nloss = mean(h)' "kernel_regularizer must be l2(factor), l1(factor), l1_l2(l1=, l2=) or none"
echo "ok: layers_more"
