#!/bin/bash
# import -> train -> export -> import as one run, on PyTorch's recurrent
# model (an LSTM, a GRU and an RNN at a fixed batch size) and on its
# convolutions (a transposed one among them, a batch of N rows): the
# imported text with a loss and a train block appended trains a few steps
# from the initializers, the trained weights are exported, and the
# exported file, imported again, predicts what the trained model predicts
# on both backends (and no longer what PyTorch's did). ONNX's checker
# (full_check) accepts the exported file and its operators on NumPy
# (tests/onnx/onnx_eval.py) predict the same; without Debian's
# python3-onnx that part is skipped and so is the test (exit 77) after
# the rest has passed.
set -euo pipefail
: "${MODELC:?MODELC not set}"
cd "$(dirname "$0")/../.."
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
T=tests/e2e/jit_tensors.py
have_onnx=0
/usr/bin/python3 -c 'import onnx, numpy' 2>/dev/null && have_onnx=1

# NAME: the fixture tests/onnx/NAME.onnx; the loss text on stdin, which may
# name an output's value as @output_name@
train_export() {
    local n=$1 d="$t/$1"
    mkdir "$d"
    "$MODELC" import tests/onnx/$n.onnx -o "$d/m.mdl" --weights-out "$d/w0.safetensors"
    local loss
    loss=$(cat)
    while [[ "$loss" =~ @([a-z_]+)@ ]]; do
        local v
        v=$(sed -n "s/^output ${BASH_REMATCH[1]} = //p" "$d/m.mdl")
        [ -n "$v" ] || fail "$n: no output ${BASH_REMATCH[1]} in $(cat "$d/m.mdl")"
        loss=${loss//@${BASH_REMATCH[1]}@/$v}
    done
    printf '%s\n' "$loss" >>"$d/m.mdl"
    "$MODELC" ir "$d/m.mdl" --no-loc >"$d/m.ir"
    python3 $T inputs "$d/m.ir" "$d/data.safetensors" 16 5
    "$MODELC" train "$d/m.mdl" --init-from "$d/w0.safetensors" --data "$d/data.safetensors" --epochs 3 \
        --no-test --no-progress --no-warn --save "$d/w1.safetensors" >/dev/null
    cmp -s "$d/w0.safetensors" "$d/w1.safetensors" && fail "$n: training changed nothing"
    local x=tests/onnx/$n.x.safetensors
    for b in jit interp; do
        "$MODELC" predict "$d/m.mdl" --backend $b --weights "$d/w1.safetensors" --inputs $x -o "$d/y1.$b.safetensors"
    done
    python3 tests/e2e/jit_compare.py "$d/y1.jit.safetensors" "$d/y1.interp.safetensors" ||
        fail "$n: the trained model predicts differently on the two backends"
    python3 tests/e2e/jit_compare.py tests/onnx/$n.y.safetensors "$d/y1.jit.safetensors" >/dev/null 2>&1 &&
        fail "$n: the trained model predicts what PyTorch's did"
    "$MODELC" export "$d/m.mdl" --weights "$d/w1.safetensors" -o "$d/trained.onnx"
    "$MODELC" import "$d/trained.onnx" -o "$d/again.mdl" --weights-out "$d/again.safetensors"
    for b in jit interp; do
        "$MODELC" predict "$d/again.mdl" --backend $b --weights "$d/again.safetensors" --inputs $x \
            -o "$d/y2.$b.safetensors"
        python3 tests/e2e/jit_compare.py "$d/y1.$b.safetensors" "$d/y2.$b.safetensors" ||
            fail "$n ($b): import -> train -> export -> import predicts differently"
    done
    if [ $have_onnx = 1 ]; then
        /usr/bin/python3 tests/onnx/onnx_eval.py "$d/trained.onnx" $x "$d/y1.jit.safetensors" ||
            fail "$n: the exported file is rejected by onnx.checker or predicts differently on NumPy"
    fi
}

train_export recurrent <<'MDL'
input target: f32[2, 2]
loss = mse(target, @lstm_fc@) + mean(square(@gru_seq@)) + mean(square(@rnn_h@))
train {
  optimizer = adam(lr=0.05)
  batch = 2
}
MDL
grep -q '= gru(.*name="gru")$' "$t/recurrent/again.mdl" || fail "recurrent: $(cat "$t/recurrent/again.mdl")"

train_export convs <<'MDL'
input ta: f32[N, 3, 10, 12]
input tb: f32[N, 4, 10, 12]
loss = mse(ta, @out_a@) + mse(tb, @out_b@)
train {
  optimizer = sgd(lr=0.1)
  batch = 8
}
MDL
grep -q '= conv2d_transpose(.*name="up2")$' "$t/convs/again.mdl" || fail "convs: $(cat "$t/convs/again.mdl")"

if [ $have_onnx = 0 ]; then
    echo "python3-onnx is missing: onnx.checker not run"
    exit 77
fi
echo ok
