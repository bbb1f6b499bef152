#!/bin/bash
# ONNX import: each fixture of tests/onnx (exported from PyTorch by
# tests/onnx/gen_fixtures.py) predicts what PyTorch computed, read as
# .onnx directly (inputs and outputs under their ONNX names, the
# initializers as weights) on both backends, and through the written
# .mdl and weights; check and ir take .onnx files; unsupported ops and
# attributes, and damaged files, fail with exit 1 naming the file and
# the node.
set -euo pipefail
: "${MODELC:?MODELC not set}"
cd "$(dirname "$0")/../.."
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
cmp() { python3 tests/e2e/jit_compare.py "$1" "$2" || fail "$3: outputs differ from PyTorch's"; }

for m in mlp cnn resnet ops acts misc convs recurrent bidirectional spatial padmodes argmax convt3d; do
    f=tests/onnx/$m
    for b in jit interp; do
        "$MODELC" predict $f.onnx --backend $b --inputs $f.x.safetensors -o "$t/$m.$b.safetensors"
        cmp $f.y.safetensors "$t/$m.$b.safetensors" "$m ($b)"
    done
    "$MODELC" import $f.onnx -o "$t/$m.mdl" --weights-out "$t/$m.w.safetensors"
    "$MODELC" check "$t/$m.mdl" >/dev/null
    "$MODELC" predict "$t/$m.mdl" --weights "$t/$m.w.safetensors" --inputs $f.x.safetensors -o "$t/$m.mdl.safetensors"
    # outputs of the .mdl go by its identifiers: compare values by position
    python3 - "$f.y.safetensors" "$t/$m.mdl.safetensors" <<'PY' || fail "$m (.mdl): outputs differ"
import sys
sys.path.insert(0, "tests/e2e")
from jit_compare import read
e, g = read(sys.argv[1]), read(sys.argv[2])
assert len(e) == len(g), (sorted(e), sorted(g))
for (ne, (de, se, ve)), (ng, (dg, sg, vg)) in zip(sorted(e.items()), sorted(g.items())):
    assert se == sg, (ne, se, ng, sg)
    scale = max(abs(v) for v in ve) or 1.0
    assert max(abs(a - b) for a, b in zip(ve, vg)) <= 1e-4 * scale, ne
PY
    out=$("$MODELC" check $f.onnx)
    [[ "$out" == "$f.onnx: ok ("* ]] || fail "check $m: $out"
done

# the generated text: layers, the NCHW input kept at the boundary
"$MODELC" import tests/onnx/cnn.onnx -o "$t/cnn.mdl"
grep -q '^input image: f32\[N, 2, 8, 8\]$' "$t/cnn.mdl" || fail "cnn: input declaration"
grep -q '^t1 = transpose(image, \[0, 2, 3, 1\])$' "$t/cnn.mdl" || fail "cnn: NHWC transpose"
grep -q 'conv2d(t1, 4, 3, padding="same", activation=relu, name="conv1")' "$t/cnn.mdl" || fail "cnn: conv1"
grep -q 'batchnorm(conv1, momentum=0.9, epsilon=1e-05, name="bn1")' "$t/cnn.mdl" || fail "cnn: bn1"
grep -q 'dense(t3, 5, name="fc")' "$t/cnn.mdl" || fail "cnn: fc"
[ "$(grep -c transpose "$t/cnn.mdl")" = 1 ] || fail "cnn: the flatten should permute fc's rows, not transpose"
"$MODELC" import tests/onnx/mlp.onnx -o - | grep -q '^input input_1: f32\[N, 6\]$' || fail "mlp: renamed input"
# grouped and dilated Conv as one conv2d, ConvTranspose as conv2d_transpose;
# LSTM, GRU, RNN as the recurrent layers
# a 3-D ConvTranspose as one conv2d_transpose over the stacked depth
# slices, its depth taps as blocks of output channels
"$MODELC" import tests/onnx/convt3d.onnx -o "$t/convt3d.mdl"
grep -q '^up = conv2d_transpose(t3, 18, \[3, 3\], stride=\[1, 2\], use_bias=false, name="up")$' "$t/convt3d.mdl" ||
    fail "convt3d: $(cat "$t/convt3d.mdl")"
[ "$(grep -c conv2d_transpose "$t/convt3d.mdl")" = 2 ] || fail "convt3d: $(cat "$t/convt3d.mdl")"
"$MODELC" import tests/onnx/convs.onnx -o "$t/convs.mdl"
grep -q 'conv2d(t1, 6, 5, padding="same", activation=relu, name="conv")' "$t/convs.mdl" || fail "convs: conv"
grep -q 'conv2d_transpose(conv, 3, 3, stride=2, use_bias=false, name="up")' "$t/convs.mdl" || fail "convs: up"
"$MODELC" import tests/onnx/recurrent.onnx -o "$t/rec.mdl"
for l in 'lstm(t[0-9]*, 4, return_sequences=true, name="lstm")' 'gru(t[0-9]*, 4, return_sequences=true, name="gru")' \
    'simple_rnn(t[0-9]*, 5, return_sequences=true, name="rnn")'; do
    grep -q "$l" "$t/rec.mdl" || fail "recurrent: $l"
done
# bidirectional: a forward and a go_backwards layer, stacked on ONNX's directions axis
"$MODELC" import tests/onnx/bidirectional.onnx -o "$t/bi.mdl"
for l in 'lstm(t[0-9]*, 4, return_sequences=true, go_backwards=true, name="lstm_reverse")' \
    'gru(t[0-9]*, 5, return_sequences=true, go_backwards=true, name="gru_reverse")' 'stack(\[t[0-9]*, t[0-9]*\], axis=1)'; do
    grep -q "$l" "$t/bi.mdl" || fail "bidirectional: $l"
done
# a graph of whole tensors: inputs without N; its shape input given at import
f=tests/onnx/fixed
"$MODELC" import $f.onnx --constants $f.c.safetensors -o "$t/fixed.mdl" --weights-out "$t/fixed.w.safetensors"
grep -q '^input w: f32\[4, 2\]$' "$t/fixed.mdl" || fail "fixed: weight input"
for b in jit interp; do
    "$MODELC" predict "$t/fixed.mdl" --weights "$t/fixed.w.safetensors" --inputs $f.x.safetensors -o "$t/fixed.$b.safetensors" --backend $b
    cmp $f.y.safetensors "$t/fixed.$b.safetensors" "fixed ($b)"
done
# a model without inputs runs without --inputs; as .onnx and as the written .mdl
f=tests/onnx/noinput
"$MODELC" import $f.onnx -o "$t/noinput.mdl" --weights-out "$t/noinput.w.safetensors"
for b in jit interp; do
    "$MODELC" predict $f.onnx -o "$t/noinput.$b.safetensors" --backend $b
    cmp $f.y.safetensors "$t/noinput.$b.safetensors" "noinput ($b)"
    "$MODELC" predict "$t/noinput.mdl" --weights "$t/noinput.w.safetensors" -o "$t/noinput.mdl.$b.safetensors" --backend $b
    cmp $f.y.safetensors "$t/noinput.mdl.$b.safetensors" "noinput .mdl ($b)"
done
# ir prints the ONNX names of inputs
"$MODELC" ir tests/onnx/mlp.onnx | grep -q 'input "input.1"' || fail "ir: ONNX input name"
"$MODELC" import --list-ops | grep -qx Conv || fail "--list-ops"

# errors: exit 1, the file, the node and the op
expect_err() { # want-substring command...
    local want=$1; shift
    set +e
    out=$("$@" 2>&1)
    rc=$?
    set -e
    [ $rc = 1 ] || fail "$*: exit $rc, expected 1: $out"
    [[ "$out" == *"$want"* ]] || fail "$*: got '$out', expected '$want'"
}
expect_err "tests/onnx/unsupported.onnx: error: node '/Sin' (Sin): operator Sin is not supported" \
    "$MODELC" import tests/onnx/unsupported.onnx -o "$t/u.mdl"
expect_err "tests/onnx/fixed.onnx: error: node 5 (Reshape): the shape must be a constant list" \
    "$MODELC" check tests/onnx/fixed.onnx
"$MODELC" import tests/onnx/mlp.onnx -o "$t/m.mdl" --weights-out "$t/m.w.safetensors"
expect_err "tests/onnx/mlp.onnx: error: 'fc1.bias' given a value is no input of the graph" \
    "$MODELC" import tests/onnx/mlp.onnx --constants "$t/m.w.safetensors" -o "$t/x.mdl"
head -c 700 tests/onnx/cnn.onnx >"$t/cut.onnx"
expect_err "$t/cut.onnx: error: not a valid ONNX model" "$MODELC" predict "$t/cut.onnx" --inputs tests/onnx/cnn.x.safetensors -o "$t/y.safetensors"
printf 'not a model' >"$t/text.onnx"
expect_err "$t/text.onnx: error: not a valid ONNX model" "$MODELC" import "$t/text.onnx" -o "$t/x.mdl"
expect_err "$t/missing.onnx: error: cannot read file" "$MODELC" import "$t/missing.onnx" -o "$t/x.mdl"

# --loss and --optimizer add a labels input, the loss (from logits when
# the output is no Softmax) and a train block: the import trains as it is
"$MODELC" import tests/onnx/cnn.onnx -o "$t/ct.mdl" --weights-out "$t/ct.w.safetensors" \
    --loss sparse_categorical_crossentropy --optimizer 'sgd(lr=0.01, momentum=0.9)'
for want in '^input labels: i32\[N\]$' \
    '^loss = sparse_categorical_crossentropy(labels, log_probs, from_logits=true)$' \
    '^metric accuracy = accuracy(labels, log_probs)$' '^  optimizer = sgd(lr=0.01, momentum=0.9)$'; do
    grep -q "$want" "$t/ct.mdl" || fail "--loss: no '$want' in $(tail -8 "$t/ct.mdl")"
done
"$MODELC" import tests/onnx/mlp.onnx -o "$t/mt.mdl" --weights-out "$t/mt.w.safetensors" --loss mse --labels target
grep -q '^input target: f32\[N, 3\]$' "$t/mt.mdl" && grep -q '^loss = mse(target, probs)$' "$t/mt.mdl" &&
    grep -q '^  optimizer = adam(lr=0.001)$' "$t/mt.mdl" || fail "--loss mse: $(tail -8 "$t/mt.mdl")"
"$MODELC" ir "$t/mt.mdl" --no-loc >"$t/mt.ir"
python3 tests/e2e/jit_tensors.py inputs "$t/mt.ir" "$t/mt.d.safetensors" 64 3
"$MODELC" train "$t/mt.mdl" --data "$t/mt.d.safetensors" --init-from "$t/mt.w.safetensors" --epochs 2 --batch 16 \
    --json >"$t/mt.train" || fail "training the imported model: $(cat "$t/mt.train")"
grep -q '"epoch": 2' "$t/mt.train" || fail "training the imported model: $(cat "$t/mt.train")"
expect_err "tests/onnx/mlp.onnx: error: unknown loss 'hinge'" "$MODELC" import tests/onnx/mlp.onnx -o "$t/x.mdl" --loss hinge
expect_err "error: the labels' name 'input_1' is already a name of the model" \
    "$MODELC" import tests/onnx/mlp.onnx -o "$t/x.mdl" --loss mse --labels input_1
expect_err "error: the optimizer 'lamb' is not sgd, adam or rmsprop" \
    "$MODELC" import tests/onnx/mlp.onnx -o "$t/x.mdl" --loss mse --optimizer lamb
[ ! -e "$t/x.mdl" ] || fail "a model file was written after an error"

# usage errors: exit 2
set +e
"$MODELC" import tests/onnx/mlp.onnx --optimizer adam -o "$t/x.mdl" >/dev/null 2>&1; rc0=$?
[ $rc0 = 2 ] || fail "--optimizer without --loss: exit $rc0"
"$MODELC" import tests/onnx/mlp.onnx >/dev/null 2>&1; rc1=$?
"$MODELC" import -o "$t/x.mdl" >/dev/null 2>&1; rc2=$?
out=$("$MODELC" predict tests/onnx/mlp.onnx -o "$t/x.safetensors" 2>&1); rc3=$?
set -e
[ $rc1 = 2 ] && [ $rc2 = 2 ] && [ $rc3 = 2 ] || fail "usage errors exit $rc1 $rc2 $rc3, expected 2"
[[ "$out" == *"missing --inputs"* ]] || fail "predict without --inputs: $out"
echo ok
