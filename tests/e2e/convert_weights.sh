#!/bin/bash
# `modelc convert-weights`: a PyTorch state_dict (by order: conv OIHW,
# BatchNorm with num_batches_tracked, Linear [out,in] after an NCHW
# flatten) and the same weights under Keras names (sorted, so paired by
# name) become checkpoints of tests/interop/small_cnn.mdl whose
# predictions are PyTorch's (tests/interop/gen_fixtures.py made the
# fixtures once); every mapping is printed; a shape mismatch, a module too
# many and usage mistakes are clear errors.
set -euo pipefail
: "${MODELC:?MODELC not set}"
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
f=tests/interop
model=$f/small_cnn.mdl

compare() { # expected.safetensors got.safetensors
  python3 - "$1" "$2" <<'PY'
import sys
sys.path.insert(0, "tests/e2e")
from jit_compare import read
e, g = read(sys.argv[1]), read(sys.argv[2])
de, se, ve = e["probs"]
dg, sg, vg = g["probs"]
assert se == sg, (se, sg)
err = max(abs(a - b) for a, b in zip(ve, vg))
assert err <= 1e-5, err
PY
}

"$MODELC" convert-weights $model $f/torch.safetensors --from torch -o "$tmp/t.safetensors" >"$tmp/t.out" \
  || fail "torch conversion"
cat >"$tmp/t.want" <<EOT
conv.weight [3,2,3,3] -> conv2d.kernel [3,3,2,3] (OIHW to HWIO)
conv.bias [3] -> conv2d.bias [3]
bn.weight [3] -> batchnorm.gamma [3]
bn.bias [3] -> batchnorm.beta [3]
bn.running_mean [3] -> batchnorm.moving_mean [3]
bn.running_var [3] -> batchnorm.moving_var [3]
fc1.weight [5,27] -> dense.kernel [27,5] (transposed, rows permuted from NCHW to NHWC flatten order)
fc1.bias [5] -> dense.bias [5]
fc2.weight [4,5] -> dense_1.kernel [5,4] (transposed)
fc2.bias [4] -> dense_1.bias [4]
wrote $tmp/t.safetensors (10 tensors)
EOT
diff "$tmp/t.want" "$tmp/t.out" || fail "torch mapping lines"
for b in jit interp; do
  "$MODELC" predict $model --backend $b --weights "$tmp/t.safetensors" --inputs $f/x.safetensors \
    -o "$tmp/t.$b.safetensors" >/dev/null
  compare $f/y.safetensors "$tmp/t.$b.safetensors" || fail "torch weights ($b): predictions differ"
done

"$MODELC" convert-weights $model $f/keras.safetensors --from keras -o "$tmp/k.safetensors" >"$tmp/k.out" \
  || fail "keras conversion"
grep -q '^conv2d/kernel \[3,3,2,3\] -> conv2d.kernel \[3,3,2,3\]$' "$tmp/k.out" || fail "keras kernel line"
grep -q '^batch_normalization/moving_variance \[3\] -> batchnorm.moving_var \[3\]$' "$tmp/k.out" \
  || fail "keras batchnorm line"
"$MODELC" predict $model --weights "$tmp/k.safetensors" --inputs $f/x.safetensors -o "$tmp/k.y.safetensors" >/dev/null
compare $f/y.safetensors "$tmp/k.y.safetensors" || fail "keras weights: predictions differ"

# a dropout (or an activation) between the flatten and the dense layer
sed 's/^h = flatten(h)$/h = relu(dropout(flatten(h), 0.5))/' $model >"$tmp/drop.mdl"
grep -q dropout "$tmp/drop.mdl" || fail "drop.mdl"
"$MODELC" convert-weights "$tmp/drop.mdl" $f/torch.safetensors --from torch -o "$tmp/d.safetensors" >"$tmp/d.out" \
  || fail "conversion with dropout"
grep -q '^fc1.weight \[5,27\] -> dense.kernel \[27,5\] (transposed, rows permuted' "$tmp/d.out" \
  || fail "flatten through dropout not seen"
"$MODELC" predict "$tmp/drop.mdl" --weights "$tmp/d.safetensors" --inputs $f/x.safetensors -o "$tmp/d.y.safetensors" >/dev/null
compare $f/y.safetensors "$tmp/d.y.safetensors" || fail "dropout model: predictions differ"

# the layout notes in the checkpoint
python3 tests/data/safetensors_py.py dump "$tmp/t.safetensors" >"$tmp/dump"
grep -q 'layout.conv2d.kernel.*HWIO' "$tmp/dump" || fail "layout metadata"
grep -q 'torch.dense_1.kernel.*weight: transpose' "$tmp/dump" || fail "torch metadata"

# errors
expect_err() { # code message command...
  local code=$1 msg=$2
  shift 2
  set +e
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  set -e
  [ $rc = "$code" ] || { cat "$tmp/err"; fail "exit $rc, expected $code: $*"; }
  grep -qF -- "$msg" "$tmp/err" || { cat "$tmp/err"; fail "message '$msg' expected: $*"; }
}
expect_err 1 "$f/bad_shape.safetensors: error: shape mismatch: 'fc1.weight' [6,27] cannot be 'dense.kernel' [27,5]" \
  "$MODELC" convert-weights $model $f/bad_shape.safetensors --from torch -o "$tmp/x.safetensors"
expect_err 1 "$f/extra.safetensors: error: ambiguous: 5 modules of the file ('conv', 'bn', 'fc1', 'fc2', 'head') match no layer by name, but 4 layers of the model ('conv2d', 'batchnorm', 'dense', 'dense_1') are left" \
  "$MODELC" convert-weights $model $f/extra.safetensors --from torch -o "$tmp/x.safetensors"
cat >"$tmp/swapped.mdl" <<'EOT'
model swapped
input x: f32[N, 6, 6, 2]
h = dense(x, 3)
h = batchnorm(h)
h = conv2d(h, 5, 3)
h = flatten(h)
output o = dense(h, 4)
EOT
expect_err 1 "$f/torch.safetensors: error: module 'conv' (conv2d) cannot be layer 'dense' (dense)" \
  "$MODELC" convert-weights "$tmp/swapped.mdl" $f/torch.safetensors --from torch -o "$tmp/x.safetensors"
sed 's/f32\[N, 6, 6, 2\]/f32[N, 6, 6, 1]/' $model >"$tmp/gray.mdl"
expect_err 1 "shape mismatch: 'conv.weight' [3,2,3,3] cannot be 'conv2d.kernel' [3,3,1,3]" \
  "$MODELC" convert-weights "$tmp/gray.mdl" $f/torch.safetensors --from torch -o "$tmp/x.safetensors"
grep -qF "note: 'conv.weight' converted to modelc's layout is [3,3,2,3]" "$tmp/err" || fail "layout note"
expect_err 1 "6 layers of the model" \
  "$MODELC" convert-weights examples/fashion_cnn_bn.mdl $f/torch.safetensors --from torch -o "$tmp/x.safetensors"
expect_err 2 "--from must be torch or keras, got 'jax'" \
  "$MODELC" convert-weights $model $f/torch.safetensors --from jax -o "$tmp/x.safetensors"
expect_err 2 "-o OUT.safetensors" "$MODELC" convert-weights $model $f/torch.safetensors --from torch
[ ! -e "$tmp/x.safetensors" ] || fail "a checkpoint was written after an error"
echo "OK"
