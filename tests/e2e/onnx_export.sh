#!/bin/bash
# ONNX export: the example classifiers, exported with random weights and
# imported back, predict what the model file predicts (inputs and outputs
# under the model's names) and read as the same layers; ONNX's own checker accepts every exported file
# (when Debian's python3-onnx is installed); the PyTorch fixtures survive
# import -> export -> import; an op without an ONNX form is an error
# naming it.
set -euo pipefail
: "${MODELC:?MODELC not set}"
cd "$(dirname "$0")/../.."
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
T=tests/e2e/jit_tensors.py
checker=0
/usr/bin/python3 -c 'import onnx' 2>/dev/null && checker=1
check_onnx() {
    [ $checker = 1 ] || return 0
    /usr/bin/python3 -c 'import onnx, sys
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
assert m.opset_import[0].version == 13' "$1" || fail "$1: rejected by onnx.checker"
}

for f in examples/fashion_mlp.mdl examples/fashion_cnn.mdl examples/fashion_cnn_bn.mdl; do
    n=$(basename $f .mdl)
    "$MODELC" ir "$f" --no-loc --mode=infer >"$t/m.ir"
    python3 $T params "$t/m.ir" "$t/w.safetensors" 3
    python3 $T inputs "$t/m.ir" "$t/x.safetensors" 5 4
    "$MODELC" predict "$f" --weights "$t/w.safetensors" --inputs "$t/x.safetensors" -o "$t/y.safetensors"
    "$MODELC" export "$f" --weights "$t/w.safetensors" -o "$t/$n.onnx"
    check_onnx "$t/$n.onnx"
    for b in jit interp; do
        "$MODELC" predict "$t/$n.onnx" --backend $b --inputs "$t/x.safetensors" -o "$t/y2.safetensors"
        python3 tests/e2e/jit_compare.py "$t/y.safetensors" "$t/y2.safetensors" ||
            fail "$n ($b): the exported model predicts differently"
    done
done

# PyTorch's models: import, export, import again
for m in mlp cnn resnet ops acts misc; do
    "$MODELC" export tests/onnx/$m.onnx -o "$t/$m.onnx"
    check_onnx "$t/$m.onnx"
    "$MODELC" predict "$t/$m.onnx" --inputs tests/onnx/$m.x.safetensors -o "$t/$m.y.safetensors"
    python3 tests/e2e/jit_compare.py tests/onnx/$m.y.safetensors "$t/$m.y.safetensors" ||
        fail "$m: import -> export -> import predicts differently"
done

# import -> train -> export -> import: fine-tune PyTorch's CNN (a loss and
# labels added to the imported text, the initializers as the start), export
# the trained weights and import them again: the same predictions
"$MODELC" import tests/onnx/cnn.onnx -o "$t/tune.mdl" --weights-out "$t/tune0.safetensors"
cat >>"$t/tune.mdl" <<'MDL'
input labels: i32[N]
loss = sparse_categorical_crossentropy(labels, fc, from_logits=true)
train {
  optimizer = sgd(lr=0.1)
  batch = 16
}
MDL
"$MODELC" ir "$t/tune.mdl" --no-loc >"$t/tune.ir"
python3 $T inputs "$t/tune.ir" "$t/data.safetensors" 64 5 5
"$MODELC" train "$t/tune.mdl" --init-from "$t/tune0.safetensors" --data "$t/data.safetensors" --epochs 2 \
    --no-test --no-progress --no-warn --save "$t/tuned.safetensors" >/dev/null
cmp -s "$t/tune0.safetensors" "$t/tuned.safetensors" && fail "training changed nothing"
"$MODELC" predict "$t/tune.mdl" --weights "$t/tuned.safetensors" --inputs tests/onnx/cnn.x.safetensors \
    -o "$t/tuned.y.safetensors"
"$MODELC" export "$t/tune.mdl" --weights "$t/tuned.safetensors" -o "$t/tuned.onnx"
check_onnx "$t/tuned.onnx"
"$MODELC" predict "$t/tuned.onnx" --inputs tests/onnx/cnn.x.safetensors -o "$t/tuned2.y.safetensors"
python3 tests/e2e/jit_compare.py "$t/tuned.y.safetensors" "$t/tuned2.y.safetensors" ||
    fail "import -> train -> export -> import predicts differently"
python3 tests/e2e/jit_compare.py tests/onnx/cnn.y.safetensors "$t/tuned2.y.safetensors" >/dev/null 2>&1 &&
    fail "the fine-tuned model predicts what the pretrained one did"

# the layout round trip leaves no transposes behind
"$MODELC" export examples/fashion_cnn.mdl -o "$t/cnn.onnx"
"$MODELC" import "$t/cnn.onnx" -o "$t/cnn.mdl"
! grep -q transpose "$t/cnn.mdl" || fail "re-imported CNN keeps transposes: $(cat "$t/cnn.mdl")"
grep -q '^t1 = conv2d(x, 32, 3, activation=relu, name="conv2d")$' "$t/cnn.mdl" ||
    fail "re-imported CNN: $(cat "$t/cnn.mdl")"

# batch normalization goes out as BatchNormalization and comes back as the layer
"$MODELC" export examples/fashion_cnn_bn.mdl -o "$t/bn.onnx"
"$MODELC" import "$t/bn.onnx" -o "$t/bn.mdl"
grep -q '^t2 = batchnorm(t1, momentum=0.9, epsilon=0.001, name="batchnorm")$' "$t/bn.mdl" ||
    fail "re-imported CNN with batchnorm: $(cat "$t/bn.mdl")"
[ "$(grep -c '= batchnorm(' "$t/bn.mdl")" = 2 ] && ! grep -q transpose "$t/bn.mdl" ||
    fail "re-imported CNN with batchnorm: $(cat "$t/bn.mdl")"

# errors
cat >"$t/oh.mdl" <<'MDL'
input y: i32[N]
output o = one_hot(y, 3)
MDL
set +e
out=$("$MODELC" export "$t/oh.mdl" -o "$t/oh.onnx" 2>&1); rc=$?
set -e
[ $rc = 1 ] && [[ "$out" == *"$t/oh.onnx: error: op one_hot is not exported to ONNX"* ]] ||
    fail "one_hot: exit $rc: $out"
set +e
"$MODELC" export examples/fashion_mlp.mdl >/dev/null 2>&1; rc=$?
set -e
[ $rc = 2 ] || fail "export without -o: exit $rc, expected 2"
echo ok
