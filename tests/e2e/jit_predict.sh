#!/bin/bash
# `modelc predict`: the JIT's outputs equal the interpreter's on the
# example classifiers; safetensors, NPY and CSV outputs; --classes; and
# the errors users see.
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
T=tests/e2e/jit_tensors.py

for f in examples/fashion_mlp.mdl examples/fashion_cnn.mdl examples/fashion_cnn_bn.mdl; do
    "$MODELC" ir "$f" --no-loc --mode=infer >"$tmp/m.ir"
    python3 $T params "$tmp/m.ir" "$tmp/w.safetensors" 1
    python3 $T inputs "$tmp/m.ir" "$tmp/x.safetensors" 7 2
    "$MODELC" predict "$f" --weights "$tmp/w.safetensors" --inputs "$tmp/x.safetensors" \
        -o "$tmp/yi.safetensors" --backend=interp --classes >"$tmp/ci.txt"
    "$MODELC" predict "$f" --weights "$tmp/w.safetensors" --inputs "$tmp/x.safetensors" \
        -o "$tmp/yj.safetensors" --classes --threads 1 >"$tmp/cj.txt"
    python3 tests/e2e/jit_compare.py "$tmp/yi.safetensors" "$tmp/yj.safetensors" ||
        { echo "$f: predictions differ"; exit 1; }
    test "$(wc -l <"$tmp/cj.txt")" -eq 7
    cmp "$tmp/ci.txt" "$tmp/cj.txt" || { echo "$f: classes differ"; exit 1; }
done

# NPY and CSV outputs of the last model: 7 rows of 10 probabilities.
"$MODELC" predict examples/fashion_cnn_bn.mdl --weights "$tmp/w.safetensors" --inputs "$tmp/x.safetensors" -o "$tmp/y.csv"
test "$(wc -l <"$tmp/y.csv")" -eq 7
awk -F, 'NF != 10 { exit 1 } { s = 0; for (i = 1; i <= NF; i++) s += $i; if (s < 0.9999 || s > 1.0001) exit 1 }' "$tmp/y.csv"
"$MODELC" predict examples/fashion_cnn_bn.mdl --weights "$tmp/w.safetensors" --inputs "$tmp/x.safetensors" -o "$tmp/y.npy"
head -c 6 "$tmp/y.npy" | grep -q NUMPY

# Errors: a wrong input shape names the input; a missing weights file names
# the file; usage errors exit with 2.
"$MODELC" ir examples/fashion_mlp.mdl --no-loc --mode=infer >"$tmp/mlp.ir"
python3 $T params "$tmp/mlp.ir" "$tmp/w.safetensors" 1
sed 's/f32\[N,28,28,1\]/f32[N,28,28,2]/' "$tmp/mlp.ir" >"$tmp/bad.ir"
python3 $T inputs "$tmp/bad.ir" "$tmp/bad.safetensors" 3 1
set +e
"$MODELC" predict examples/fashion_mlp.mdl --weights "$tmp/w.safetensors" --inputs "$tmp/bad.safetensors" -o "$tmp/y.safetensors" 2>"$tmp/err.txt"
test $? -eq 1 || exit 1
grep -q "fashion_mlp.mdl:5:7: error: input 'x' is f32\[N,28,28,1\] but the data 'x' is f32\[3,28,28,2\]" "$tmp/err.txt" || { cat "$tmp/err.txt"; exit 1; }
"$MODELC" predict examples/fashion_mlp.mdl --weights "$tmp/nosuch.safetensors" --inputs "$tmp/x.safetensors" -o "$tmp/y.safetensors" 2>"$tmp/err.txt"
test $? -eq 1 || exit 1
grep -q "nosuch.safetensors" "$tmp/err.txt" || { cat "$tmp/err.txt"; exit 1; }
"$MODELC" predict examples/fashion_mlp.mdl --weights "$tmp/w.safetensors" --inputs "$tmp/x.safetensors" -o "$tmp/y.txt" 2>"$tmp/err.txt"
test $? -eq 2 || exit 1
grep -q "must end in .safetensors, .npy or .csv" "$tmp/err.txt" || { cat "$tmp/err.txt"; exit 1; }
"$MODELC" predict examples/fashion_mlp.mdl --weights "$tmp/w.safetensors" --inputs "$tmp/x.safetensors" -o "$tmp/y.npy" --value nosuch 2>"$tmp/err.txt"
test $? -eq 1 || exit 1
grep -q "has no output value 'nosuch'" "$tmp/err.txt" || { cat "$tmp/err.txt"; exit 1; }
set -e

# Inputs bind as training data does: 8-bit images (NPY |u1, scaled like
# train's) and flat [N, 784] rows both fit the model's [N, 28, 28, 1].
python3 - "$tmp" <<'PY'
import struct, sys
def npy(path, descr, shape, data):
    hdr = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
    hdr += " " * (63 - len(hdr)) + "\n"
    open(path, "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + data)
px = bytes((i * 37) % 256 for i in range(5 * 784))
npy(sys.argv[1] + "/u8.npy", "|u1", "(5, 28, 28, 1)", px)
npy(sys.argv[1] + "/flat.npy", "<f4", "(5, 784)", struct.pack("<%df" % len(px), *[b / 255.0 for b in px]))
PY
"$MODELC" predict examples/fashion_mlp.mdl --weights "$tmp/w.safetensors" --inputs "$tmp/u8.npy" --classes >"$tmp/c8.txt"
"$MODELC" predict examples/fashion_mlp.mdl --weights "$tmp/w.safetensors" --inputs "$tmp/flat.npy" --classes >"$tmp/cf.txt"
test "$(wc -l <"$tmp/c8.txt")" -eq 5
cmp "$tmp/c8.txt" "$tmp/cf.txt" || { echo "u8 and flat inputs predict differently"; exit 1; }
echo "modelc predict: ok"
