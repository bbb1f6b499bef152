#!/bin/bash
# modelc stats end to end: tables, JSON (parsed by Python's json module,
# with the figures S2 and S3 are about), text histograms, pictures (SVG
# parsed as XML, PNG checked chunk by chunk), two checkpoints side by
# side, --numerics, and usage errors.
set -euo pipefail
: "${MODELC:?MODELC not set}"
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# S3: the first layer's gradient is ~1e-5 of the last layer's with three
# layers, ~1e-3 with two; the output is constant over the examples.
"$MODELC" stats examples/s3_vanishing/three_layer.mdl --data uniform:64 --batches 8 --json >"$tmp/s3.json"
"$MODELC" stats examples/s3_vanishing/two_layer.mdl --data uniform:64 --batches 8 --json >"$tmp/s3b.json"
python3 - "$tmp/s3.json" "$tmp/s3b.json" <<'EOF'
import json, sys
three, two = (json.load(open(p)) for p in sys.argv[1:3])
l3 = {l["name"]: l for l in three["layers"]}
l2 = {l["name"]: l for l in two["layers"]}
assert three["batches"] == 8 and three["examples"] == 8, three
assert [l["name"] for l in three["layers"]] == ["dense", "dense_1", "dense_2"]
assert l3["dense"]["grad_ratio"] < 1e-4, l3["dense"]["grad_ratio"]
assert 1e-4 < l2["dense"]["grad_ratio"] < 1e-1, l2["dense"]["grad_ratio"]
assert l3["dense_2"]["grad_ratio"] == 1
assert l3["dense_2"]["out"]["std"] < 1e-6, l3["dense_2"]["out"]
assert l3["dense"]["act"] == "relu" and 0 <= l3["dense"]["dead"] <= 16 and l3["dense"]["units"] == 16
p = {q["name"]: q for q in three["params"]}
assert p["dense.kernel"]["shape"] == "[1,16]" and p["dense.kernel"]["trainable"]
assert p["dense.kernel"]["grad_weight_ratio"] < p["dense_2.kernel"]["grad_weight_ratio"] / 100
print("S3 JSON ok")
EOF

# S2: sigma 20 saturates the first sigmoid layer, sigma 0.1 does not.
"$MODELC" stats examples/s2_init_scale/sigma_20.mdl --batches 2 --json >"$tmp/s20.json"
"$MODELC" stats examples/s2_init_scale/sigma_0.1.mdl --batches 2 --json >"$tmp/s01.json"
python3 - "$tmp/s20.json" "$tmp/s01.json" <<'EOF'
import json, sys
hi, lo = (json.load(open(p)) for p in sys.argv[1:3])
assert hi["layers"][0]["saturated"] > 0.9, hi["layers"][0]["saturated"]
assert lo["layers"][0]["saturated"] < 0.05, lo["layers"][0]["saturated"]
assert hi["examples"] == 64
print("S2 JSON ok")
EOF

# Tables and text histograms.
"$MODELC" stats examples/s2_init_scale/sigma_20.mdl --batches 1 --batch 16 --hist >"$tmp/hist.txt"
grep -q '^model s2_sigma_20: 1 batch, 16 examples, training mode; mean loss ' "$tmp/hist.txt" || fail "header"
grep -Eq '^dense +sigmoid +[0-9.]+% +- ' "$tmp/hist.txt" || fail "layer table"
grep -q '^layer dense: activation (320 values)$' "$tmp/hist.txt" || fail "histogram title"
[ "$(grep -c '^  \[' "$tmp/hist.txt")" -ge 200 ] || fail "histogram rows"

# Pictures.
"$MODELC" stats examples/s2_init_scale/sigma_20.mdl --batches 1 --batch 16 --plot "$tmp/h.svg" >"$tmp/out"
grep -q "^wrote $tmp/h.svg\$" "$tmp/out" || fail "plot message"
"$MODELC" stats examples/s2_init_scale/sigma_20.mdl --batches 1 --batch 16 --plot "$tmp/h.png" >/dev/null
python3 - "$tmp/h.svg" "$tmp/h.png" <<'EOF'
import struct, sys, zlib
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
ns = "{http://www.w3.org/2000/svg}"
assert root.tag == ns + "svg"
hists = [g for g in root.iter(ns + "g") if g.get("class") == "hist"]
assert len(hists) == 16, len(hists)   # 4 layers of 4 panels (the softmax layer has its activation too)
data = open(sys.argv[2], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n"
off, idat, w = 8, b"", None
while off < len(data):
    n, = struct.unpack(">I", data[off:off + 4])
    kind, body = data[off + 4:off + 8], data[off + 8:off + 8 + n]
    crc, = struct.unpack(">I", data[off + 8 + n:off + 12 + n])
    assert zlib.crc32(kind + body) & 0xffffffff == crc, kind
    if kind == b"IHDR":
        w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
        assert depth == 8 and ctype == 2
    if kind == b"IDAT":
        idat += body
    off += 12 + n
assert len(zlib.decompress(idat)) == h * (1 + 3 * w)
print("pictures ok", w, h)
EOF

# Two checkpoints side by side: initial weights with two seeds.
"$MODELC" init examples/s3_vanishing/two_layer.mdl -o "$tmp/a.safetensors" --seed 1 >/dev/null
"$MODELC" init examples/s3_vanishing/two_layer.mdl -o "$tmp/b.safetensors" --seed 2 >/dev/null
"$MODELC" stats examples/s3_vanishing/two_layer.mdl --data uniform:16 --weights "$tmp/a.safetensors" \
  --compare "$tmp/b.safetensors" >"$tmp/cmp.txt"
grep -q "(left) vs $tmp/b.safetensors (right)" "$tmp/cmp.txt" || fail "compare header"
grep -Eq '^dense.kernel +weight .*\|' "$tmp/cmp.txt" || fail "compare rows"
"$MODELC" stats examples/s3_vanishing/two_layer.mdl --data uniform:16 --weights "$tmp/a.safetensors" \
  --compare "$tmp/b.safetensors" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert set(d)=={"before","after"}; print("compare JSON ok")'

# S0: the three reparameterised models compute the same outputs; their
# kernels' gradients relative to the weights differ by 9x and 40000x.
"$MODELC" stats examples/s0_reparam/model1.mdl --batch 2 \
  --forward-diff examples/s0_reparam/model2.mdl --forward-diff examples/s0_reparam/model3.mdl >"$tmp/fd"
[ "$(grep -c 'max |difference|' "$tmp/fd")" -eq 4 ] || fail "forward diff lines"
awk '/max \|difference\|/ { if ($5 + 0 > 1e-6) bad = 1 } END { exit bad }' "$tmp/fd" || fail "forward outputs differ"
for m in 1 2; do
  "$MODELC" stats examples/s0_reparam/model$m.mdl --batches 1 --batch 2 --json >"$tmp/s0_$m.json"
done
python3 - "$tmp/s0_1.json" "$tmp/s0_2.json" <<'EOF2'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
ra = {p["name"]: p["grad_weight_ratio"] for p in a["params"]}
rb = {p["name"]: p["grad_weight_ratio"] for p in b["params"]}
assert abs(ra["w1"] / rb["w1"] - 9) < 1e-3 * 9, (ra, rb)
assert abs(ra["w2"] / rb["w2"] - 40000) < 1e-3 * 40000, (ra, rb)
print("S0 ok")
EOF2

# --numerics.
"$MODELC" stats examples/s3_vanishing/two_layer.mdl --data uniform:8 --numerics >"$tmp/num"
grep -q 'every value of the forward and backward pass is finite' "$tmp/num" || fail "numerics ok"

# Errors.
set +e
"$MODELC" stats examples/s3_vanishing/two_layer.mdl --batches 0 >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q -- "--batches must be at least 1, got 0" "$tmp/err" || fail "usage error ($rc)"
"$MODELC" stats examples/s3_vanishing/two_layer.mdl --data uniform:8 --plot "$tmp/x.gif" >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q "needs a .svg or .png file name, got '$tmp/x.gif'" "$tmp/err" || fail "plot error ($rc)"
"$MODELC" stats examples/s3_vanishing/two_layer.mdl --data uniform:8 --plot "$tmp/no/such/dir/x.svg" >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc -eq 1 ] && grep -q "no/such/dir/x.svg" "$tmp/err" || fail "plot write error ($rc)"
"$MODELC" stats examples/s3_vanishing/two_layer.mdl --data uniform:8 --weights "$tmp/missing.safetensors" >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc -eq 1 ] && grep -q "missing.safetensors" "$tmp/err" || fail "missing weights ($rc)"
set -e
echo "modelc stats end to end ok"
