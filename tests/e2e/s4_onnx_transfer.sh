#!/bin/bash
# examples/s4_frozen_bn/README.md's transfer learning from an imported
# ONNX base, at a tiny scale (300 examples, one epoch): a base trained on
# Fashion-MNIST's classes 0-4, exported to ONNX and imported back, predicts
# what the original predicts; finetune.mdl's base is the imported one line
# for line; fine-tuning a new head on classes 5-9 with the base frozen
# leaves every base tensor (moving statistics included) bit-identical, and
# the training graph's loss equals the inference graph's; without the
# freeze the base moves and the two modes disagree.
set -euo pipefail
: "${MODELC:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
ex=examples/s4_frozen_bn
common=(--limit 300 --epochs 1 --no-test --no-progress --no-warn --threads 1)

"$MODELC" train $ex/base.mdl --data-classes 0-4 "${common[@]}" --save "$t/base.safetensors" > "$t/out"
grep -q "^train: 300 examples" "$t/out" || fail "base training: $(cat "$t/out")"
"$MODELC" export $ex/base.mdl --weights "$t/base.safetensors" -o "$t/base.onnx"
"$MODELC" import "$t/base.onnx" -o "$t/imported.mdl" --weights-out "$t/imported.safetensors"

# Tensor checks on safetensors files: "same A B NAME..." (bytes equal),
# "differ A B NAME...", "close A B NAME TOL" (largest |a - b|), and
# "images OUT": 32 test images of Fashion-MNIST as x f32[32, 28, 28, 1].
cat > "$t/st.py" <<'EOF'
import gzip, json, struct, sys
def load(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    h.pop("__metadata__", None)
    return {k: b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]] for k, v in h.items()}
how = sys.argv[1]
if how == "images":
    raw = gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").read()[16:16 + 32 * 784]
    data = struct.pack("<%df" % len(raw), *[v / 255.0 for v in raw])
    h = json.dumps({"x": {"dtype": "F32", "shape": [32, 28, 28, 1], "data_offsets": [0, len(data)]}}).encode()
    open(sys.argv[2], "wb").write(struct.pack("<Q", len(h)) + h + data)
    sys.exit(0)
a, b = load(sys.argv[2]), load(sys.argv[3])
if how == "close":
    name, tol = sys.argv[4], float(sys.argv[5])
    x, y = (struct.unpack("<%df" % (len(v[name]) // 4), v[name]) for v in (a, b))
    d = max(abs(p - q) for p, q in zip(x, y))
    if len(x) != len(y) or d > tol:
        sys.exit("%s: largest difference %g > %g" % (name, d, tol))
    sys.exit(0)
for name in sys.argv[4:]:
    if (a[name] == b[name]) != (how == "same"):
        sys.exit("%s: expected %s" % (name, how))
EOF
st() { python3 "$t/st.py" "$@" || fail "st.py $*"; }
base_tensors=(base_conv1.kernel base_bn1.gamma base_bn1.beta base_bn1.moving_mean base_bn1.moving_var
  base_conv2.kernel base_bn2.gamma base_bn2.beta base_bn2.moving_mean base_bn2.moving_var)

# The round trip: the same tensors bit for bit, the same predictions from
# the imported model file and from the ONNX file itself.
st same "$t/base.safetensors" "$t/imported.safetensors" "${base_tensors[@]}" pre_out.kernel pre_out.bias
st images "$t/x.safetensors"
"$MODELC" predict $ex/base.mdl --weights "$t/base.safetensors" --inputs "$t/x.safetensors" -o "$t/p0.safetensors"
"$MODELC" predict "$t/imported.mdl" --weights "$t/imported.safetensors" --inputs "$t/x.safetensors" \
  -o "$t/p1.safetensors"
"$MODELC" predict "$t/base.onnx" --inputs "$t/x.safetensors" -o "$t/p2.safetensors"
st close "$t/p0.safetensors" "$t/p1.safetensors" probs 1e-6
st close "$t/p0.safetensors" "$t/p2.safetensors" probs 1e-6

# finetune.mdl keeps the imported base line for line.
base_lines() { sed -n '/^base_conv1 =/,/^t4 =/p' "$1"; }
[ "$(base_lines "$t/imported.mdl" | wc -l)" -eq 8 ] || fail "the imported base: $(cat "$t/imported.mdl")"
diff <(base_lines "$t/imported.mdl") <(base_lines $ex/finetune.mdl) || fail "finetune.mdl's base is not the imported one"

# Fine-tuning on classes 5-9 with the base frozen: the base is bit-identical
# afterwards, the head trained.
"$MODELC" init $ex/finetune.mdl -o "$t/init.safetensors" > /dev/null
"$MODELC" train $ex/finetune.mdl --init-from "$t/imported.safetensors" --only 'base_*' --data-classes 5-9 \
  "${common[@]}" --save "$t/ft.safetensors" > /dev/null
st same "$t/imported.safetensors" "$t/ft.safetensors" "${base_tensors[@]}"
st differ "$t/init.safetensors" "$t/ft.safetensors" head_dense.kernel head_out.kernel

# The frozen batchnorm behaves as in inference in both modes: the training
# graph's loss is the inference graph's, and --mode train has nothing to
# warn about.
ev() { # $1 = model, $2 = weights, $3 = mode
  "$MODELC" eval "$1" --weights "$2" --data-classes 5-9 --limit 200 --batch 50 --threads 1 --json --mode "$3" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["loss"])'
}
li=$(ev $ex/finetune.mdl "$t/ft.safetensors" infer)
lt=$(ev $ex/finetune.mdl "$t/ft.safetensors" train 2> "$t/warn")
[ "$li" = "$lt" ] || fail "frozen: inference loss $li, training-mode loss $lt"
[ ! -s "$t/warn" ] || fail "frozen: eval --mode train warned: $(cat "$t/warn")"

# Without the freeze the base moves (its moving statistics too) and the
# training graph normalises with batch statistics: the modes disagree.
sed '/freeze = /d' $ex/finetune.mdl > "$t/unfrozen.mdl"
grep -q freeze "$t/unfrozen.mdl" && fail "the freeze is still there"
"$MODELC" train "$t/unfrozen.mdl" --init-from "$t/imported.safetensors" --only 'base_*' --data-classes 5-9 \
  "${common[@]}" --save "$t/uf.safetensors" > /dev/null
st differ "$t/imported.safetensors" "$t/uf.safetensors" "${base_tensors[@]}"
li=$(ev "$t/unfrozen.mdl" "$t/uf.safetensors" infer)
lt=$(ev "$t/unfrozen.mdl" "$t/uf.safetensors" train 2> "$t/warn")
[ "$li" != "$lt" ] || fail "unfrozen: both modes give $li"
grep -q "batchnorm 'base_bn1' normalises with this batch's statistics" "$t/warn" || fail "unfrozen: no warning"
echo "s4_onnx_transfer: ok"
