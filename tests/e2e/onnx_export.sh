#!/bin/bash
# ONNX export: the example classifiers, exported with random weights and
# imported back, predict what the model file predicts (inputs and outputs
# under the model's names) and read as the same layers; ONNX's own checker accepts every exported file
# (when Debian's python3-onnx is installed); the PyTorch fixtures survive
# import -> export -> import; recurrent layers (every argument that
# changes the ONNX node), transposed convolutions, whole-tensor graphs and
# the other ops of inference graphs, run by tests/onnx/onnx_eval.py (the
# ONNX operators on NumPy), predict what modelc predicts; an op without an
# ONNX form is an error naming it.
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
assert m.opset_import[0].version == 14' "$1" || fail "$1: rejected by onnx.checker"
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

# PyTorch's models: import, export, import again; the exported file on
# NumPy predicts what PyTorch did
onnx_eval() { # MODEL.onnx X Y: ONNX's semantics on NumPy against Y
    [ $checker = 1 ] || return 0
    /usr/bin/python3 tests/onnx/onnx_eval.py "$@" || fail "$1: ONNX's operators on NumPy predict differently"
}
for m in mlp cnn resnet ops acts misc convs recurrent; do
    "$MODELC" export tests/onnx/$m.onnx -o "$t/$m.onnx"
    check_onnx "$t/$m.onnx"
    "$MODELC" predict "$t/$m.onnx" --inputs tests/onnx/$m.x.safetensors -o "$t/$m.y.safetensors"
    python3 tests/e2e/jit_compare.py tests/onnx/$m.y.safetensors "$t/$m.y.safetensors" ||
        fail "$m: import -> export -> import predicts differently"
done
for m in convs recurrent; do
    onnx_eval "$t/$m.onnx" tests/onnx/$m.x.safetensors tests/onnx/$m.y.safetensors
done
# the recurrent fixture goes out as LSTM, GRU and RNN nodes, batch first
[ $checker = 0 ] || /usr/bin/python3 -c 'import onnx, sys
ops = [(n.op_type, {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute})
       for n in onnx.load(sys.argv[1]).graph.node if n.op_type in ("LSTM", "GRU", "RNN")]
assert [o for o, _ in ops] == ["LSTM", "GRU", "RNN"], ops
assert all(a["layout"] == 1 for _, a in ops) and ops[1][1]["linear_before_reset"] == 1, ops' "$t/recurrent.onnx" ||
    fail "recurrent.onnx: not one node per layer"
# a graph on whole tensors (no N): imported with its shape input given
"$MODELC" import tests/onnx/fixed.onnx --constants tests/onnx/fixed.c.safetensors -o "$t/fixed.mdl" \
    --weights-out "$t/fixed.w.safetensors"
"$MODELC" export "$t/fixed.mdl" --weights "$t/fixed.w.safetensors" -o "$t/fixed.onnx"
check_onnx "$t/fixed.onnx"
onnx_eval "$t/fixed.onnx" tests/onnx/fixed.x.safetensors tests/onnx/fixed.y.safetensors
"$MODELC" predict "$t/fixed.onnx" --inputs tests/onnx/fixed.x.safetensors -o "$t/fixed.y.safetensors"
python3 tests/e2e/jit_compare.py tests/onnx/fixed.y.safetensors "$t/fixed.y.safetensors" ||
    fail "fixed: import -> export -> import predicts differently"

# models written here: random weights, modelc's predictions against the
# exported file's on NumPy and, where the importer reads it (reimport=1),
# against the exported file imported again, on both backends
export_case() { # NAME REIMPORT, the model on stdin
    local n=$1
    cat >"$t/$n.mdl"
    "$MODELC" ir "$t/$n.mdl" --no-loc --mode=infer >"$t/$n.ir"
    python3 $T params "$t/$n.ir" "$t/$n.w.safetensors" 7
    python3 $T inputs "$t/$n.ir" "$t/$n.x.safetensors" 3 8 3
    "$MODELC" predict "$t/$n.mdl" --weights "$t/$n.w.safetensors" --inputs "$t/$n.x.safetensors" \
        -o "$t/$n.y.safetensors"
    "$MODELC" export "$t/$n.mdl" --weights "$t/$n.w.safetensors" -o "$t/$n.onnx"
    check_onnx "$t/$n.onnx"
    onnx_eval "$t/$n.onnx" "$t/$n.x.safetensors" "$t/$n.y.safetensors"
    [ "$2" = 1 ] || return 0
    for b in jit interp; do
        "$MODELC" predict "$t/$n.onnx" --backend $b --inputs "$t/$n.x.safetensors" -o "$t/$n.y2.safetensors"
        python3 tests/e2e/jit_compare.py "$t/$n.y.safetensors" "$t/$n.y2.safetensors" ||
            fail "$n ($b): the exported model imported again predicts differently"
    done
}
# recurrent layers: reverse, an initial state, the LSTM's cell state,
# activations, no bias, a batch of N rows
export_case rnn_state 1 <<'MDL'
model rnn_state
input x: f32[N, 6, 3]
input h0: f32[N, 4]
seq, h, c = lstm(x, 4, return_sequences=true, return_state=true, go_backwards=true, name="enc")
g = gru(seq, 4, go_backwards=true, initial_state=h, name="dec")
r = simple_rnn(x, 3, activation=relu, return_sequences=true, initial_state=h0[:, 0:3], name="rr")
s, hs = gru(x, 2, activation=sigmoid, return_state=true, use_bias=false, name="nb")
l2 = lstm(x, 3, initial_state=[h0[:, 0:3], h0[:, 1:4]], name="l2")
output seq = seq
output c = c
output g = g
output r = r
output hs = hs
output l2 = l2
MDL
export_case rnn 1 <<'MDL'
model rnn
input x: f32[N, 5, 3]
input h0: f32[N, 3]
a = lstm(x, 4, return_sequences=true, go_backwards=true, name="a")
b = gru(a, 3, initial_state=h0, name="b")
c = simple_rnn(x, 2, return_sequences=true, name="c")
output y = dense(b, 2, name="fc")
output c = c
MDL
grep -q '^t1 = lstm(x, 4, return_sequences=true, go_backwards=true, name="a")$' < <("$MODELC" import "$t/rnn.onnx" -o /dev/stdout) ||
    fail "rnn: the LSTM does not come back as the layer: $("$MODELC" import "$t/rnn.onnx" -o /dev/stdout)"
# transposed convolutions: "same" with a kernel smaller than the stride
# (ONNX's output_padding), "valid", bias and activation inside the transposes
export_case upconv 1 <<'MDL'
model upconv
input x: f32[N, 5, 4, 3]
a = conv2d_transpose(x, 4, 3, stride=2, padding="same", activation=relu, name="a")
b = conv2d_transpose(x, 2, [1, 3], stride=[3, 2], padding="same", name="b")
c = conv2d_transpose(x, 2, 2, use_bias=false, activation=tanh, name="c")
output a = a
output b = b
output c = c
MDL
# whole tensors, scalars, and the remaining ops of inference graphs
export_case whole 1 <<'MDL'
model whole
input a: f32[3, 4]
input v: f32[4]
input s: f32[]
param w: f32[4, 2] = glorot_uniform()
t = (a * s + v) @ w
output y = softmax(t, axis=0)
output z = sum(t, axis=0)
output m = mean(a)
MDL
export_case others 1 <<'MDL'
model others
input x: f32[N, 3, 4, 2]
input y: i32[N]
input s: f32[N, 2, 3, 4]
input idx: i32[2]
param w: f32[4, 5] = glorot_uniform()
output up = upsampling2d(x, 2)
output q = pad(x, [[0, 0], [2, 0], [1, 1], [0, 0]])
output o = one_hot(y, 4)
output g = gather(x, idx, axis=2)
output m = matmul(s, w)
MDL
# a pad with a constant other than 0 is one Pad with its constant_value
export_case padconst 1 <<'MDL'
model padconst
input x: f32[N, 3, 4, 2]
output p = pad(x, [[0, 0], [1, 2], [0, 1], [0, 0]], 0.5)
output q = pad(relu(x), [[0, 0], [0, 0], [2, 0], [1, 1]], -1) * 2
MDL
# a zero pad added to another value (an input, no border term) is a
# plain Pad and an Add
export_case padsum 1 <<'MDL'
model padsum
input x: f32[N, 3, 4, 2]
input z: f32[N, 6, 5, 2]
output y = pad(x, [[0, 0], [1, 2], [0, 1], [0, 0]]) + z
MDL
"$MODELC" import "$t/padconst.onnx" -o "$t/padconst2.mdl"
grep -q ' = pad(x, \[\[0, 0\], \[1, 2\], \[0, 1\], \[0, 0\]\], constant_values=0.5)$' "$t/padconst2.mdl" &&
    grep -q ' = pad(t[0-9]*, \[\[0, 0\], \[0, 0\], \[2, 0\], \[1, 1\]\], constant_values=(-1))$' "$t/padconst2.mdl" &&
    [ "$(grep -c '= pad(' "$t/padconst2.mdl")" = 2 ] || fail "padconst: not two pads: $(cat "$t/padconst2.mdl")"

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
grep -q '^t2 = batchnorm(t1, momentum=0.99, epsilon=0.001, name="batchnorm")$' "$t/bn.mdl" ||
    fail "re-imported CNN with batchnorm: $(cat "$t/bn.mdl")"
[ "$(grep -c '= batchnorm(' "$t/bn.mdl")" = 2 ] && ! grep -q transpose "$t/bn.mdl" ||
    fail "re-imported CNN with batchnorm: $(cat "$t/bn.mdl")"

# errors
cat >"$t/elu.mdl" <<'MDL'
input x: f32[N, 4, 2]
output o = simple_rnn(x, 3, activation=elu, name="r")
MDL
set +e
out=$("$MODELC" export "$t/elu.mdl" -o "$t/elu.onnx" 2>&1); rc=$?
set -e
[ $rc = 1 ] && [[ "$out" == *"$t/elu.onnx: error: RNN layer 'r' with activation elu has no ONNX form (tanh, relu and sigmoid have)"* ]] ||
    fail "elu: exit $rc: $out"
set +e
"$MODELC" export examples/fashion_mlp.mdl >/dev/null 2>&1; rc=$?
set -e
[ $rc = 2 ] || fail "export without -o: exit $rc, expected 2"
echo ok
