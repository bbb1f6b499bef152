#!/bin/bash
# `modelc train --watch` on the scenario examples: the one-line warnings
# fire where the scenario says training goes wrong (S2 sigma 20 and large
# inputs: saturated sigmoid; S3 three layers: vanishing gradient, dead
# ReLUs) and stay quiet on the fixes; the watched figures are CSV columns
# and JSON fields; --watch K adds records every K steps; --plot-dir
# writes curves that parse as SVG (with the expected series) and PNG
# (signature, IHDR size = the SVG's); the static warnings run before
# training with the data's statistics.
set -euo pipefail
: "${MODELC:?MODELC not set}"
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
s2=examples/s2_init_scale
s3=examples/s3_vanishing

# ---- S3: vanishing gradient and dead ReLUs, three layers only ----
"$MODELC" train $s3/three_layer.mdl --data uniform:200 --epochs 2 --no-test --watch \
  --log "$tmp/s3.csv" >"$tmp/s3.out" 2>"$tmp/s3.err"
grep -q "^watch: epoch 1: warning: layer 'dense' ($s3/three_layer.mdl:9:5) gradient vanishes: norm [0-9.e+-]*, [0-9.e+-]* x the last layer's\$" \
  "$tmp/s3.out" || { cat "$tmp/s3.out"; fail "S3 vanishing warning"; }
grep -q "^watch: epoch 1: warning: layer 'dense_1' ($s3/three_layer.mdl:10:5) has [0-9]* of 16 ReLU units dead" \
  "$tmp/s3.out" || fail "S3 dead ReLU warning"
grep -q "^watch: epoch 2: grad norm vs last layer: dense [0-9.e+-]*, dense_1 [0-9.e+-]*, dense_2 1\$" \
  "$tmp/s3.out" || fail "S3 grad norm line"
grep -q "^watch: epoch 1: update |dW|/|W|: dense.kernel " "$tmp/s3.out" || fail "S3 update ratios"
grep -q "^watch: epoch 2: clip by value 4.5: fired in [0-9]* of 200 steps" "$tmp/s3.out" || fail "S3 clipping"
[ "$(grep -c 'warning:' "$tmp/s3.out")" = 2 ] || { cat "$tmp/s3.out"; fail "S3: warnings repeat"; }
# the static warning, before training
grep -q "^$s3/three_layer.mdl:9:5: warning: layer 'dense' is expected to get a gradient" "$tmp/s3.err" \
  || fail "S3 static warning"
for f in two_layer three_layer_xavier; do
  "$MODELC" train $s3/$f.mdl --data uniform:200 --epochs 2 --no-test --watch >"$tmp/$f.out" 2>&1
  grep -q "^watch: epoch 2: grad norm vs last layer" "$tmp/$f.out" || fail "$f: not watched"
  if grep -q "warning" "$tmp/$f.out"; then cat "$tmp/$f.out"; fail "$f warns"; fi
done

# ---- S2: saturated first layer with sigma 20 and with large inputs ----
for f in sigma_20 inputs_large; do
  "$MODELC" train $s2/$f.mdl --limit 192 --val-split 0.25 --epochs 2 --no-test --watch \
    >"$tmp/$f.out" 2>"$tmp/$f.err"
  grep -q "^watch: epoch 1: warning: layer 'dense' ($s2/$f.mdl:10:5) is saturated: [0-9]*% of its sigmoid outputs within 1% of a bound\$" \
    "$tmp/$f.out" || { cat "$tmp/$f.out"; fail "$f saturation warning"; }
  grep -q "^$s2/$f.mdl:10:5: warning: layer 'dense' starts saturated" "$tmp/$f.err" \
    || fail "$f static warning"
done
# the static estimate uses the training data (Fashion-MNIST E[x^2] ~ 0.2, not 1/3)
grep -q "note: its pre-activation has std 25[0-9] at initialisation: 784 inputs with E\[x^2\] = 0.2" \
  "$tmp/sigma_20.err" || { cat "$tmp/sigma_20.err"; fail "static warning without data statistics"; }
for f in sigma_0.1 inputs_small; do
  "$MODELC" train $s2/$f.mdl --limit 192 --val-split 0.25 --epochs 2 --no-test --watch \
    >"$tmp/$f.out" 2>&1
  grep -q "^watch: epoch 2: grad norm vs last layer" "$tmp/$f.out" || fail "$f: not watched"
  if grep -q "warning" "$tmp/$f.out"; then cat "$tmp/$f.out"; fail "$f warns"; fi
done

# ---- CSV and JSON columns; --watch K; curves ----
"$MODELC" train $s2/sigma_20.mdl --limit 192 --val-split 0.25 --epochs 3 --batch 16 --no-test \
  --watch 4 --log "$tmp/w.csv" --json --plot-dir "$tmp/plots" >"$tmp/w.json" 2>"$tmp/w.err"
python3 - "$tmp" <<'PY'
import csv, json, math, struct, sys, xml.etree.ElementTree as ET
d = sys.argv[1]
layers = ["dense", "dense_1", "dense_2", "dense_3"]
params = [f"{l}.{w}" for l in layers for w in ("kernel", "bias")]

# S3 CSV: one row per epoch, the watched columns filled
rows = list(csv.DictReader(open(f"{d}/s3.csv")))
assert [r["epoch"] for r in rows] == ["1", "2"], rows
for r in rows:
    for l in ("dense", "dense_1", "dense_2"):
        for c in ("act_norm", "grad_norm", "grad_ratio"):
            float(r[f"layer.{l}.{c}"])
    assert float(r["layer.dense.grad_ratio"]) < 1e-3 and float(r["layer.dense_2.grad_ratio"]) == 1
    assert float(r["layer.dense_1.dead_frac"]) > 0.5
    assert "layer.dense_2.dead_frac" not in r and "layer.dense.saturation" not in r
    for p in ("dense.kernel", "dense_2.bias"):
        for c in ("norm", "grad_norm", "grad_ratio", "update_ratio", "step_grad_norm", "clip_frac"):
            v = float(r[f"param.{p}.{c}"])
            assert v >= 0, (p, c, v)
    assert 0 <= float(r["clip.fired_frac"]) <= 1

# --watch 4 with 144 examples / batch 16 = 9 steps per epoch: records
# after steps 4, 8 (epoch 1), 12, 16 (epoch 2), 20, 24 (epoch 3) and at
# each epoch end (9, 18, 27)
rows = list(csv.DictReader(open(f"{d}/w.csv")))
assert [int(r["step"]) for r in rows] == [4, 8, 9, 12, 16, 18, 20, 24, 27], [r["step"] for r in rows]
for r in rows:
    mid = int(r["step"]) % 9 != 0
    assert (r["val_loss"] == "") == mid, r
    s = float(r["layer.dense.saturation"])
    assert s > 0.5, s
    for p in params:
        assert float(r[f"param.{p}.grad_ratio"]) > 0
lines = [json.loads(l) for l in open(f"{d}/w.json")]
ev = [l for l in lines if l.get("event") == "watch"]
ep = [l for l in lines if "epoch" in l and "event" not in l]
assert [e["step"] for e in ev] == [4, 8, 12, 16, 20, 24], ev
assert [e["step"] for e in ep] == [9, 18, 27]
prev = 0
for e in sorted(ev + ep, key=lambda e: e["step"]):
    w = e["watch"]
    assert list(w["layers"]) == layers and list(w["params"]) == params, w
    assert w["layers"]["dense"]["saturation"] > 0.5
    assert w["layers"]["dense_3"]["grad_ratio"] == 1
    assert w["params"]["dense.kernel"]["step_grad_norm"] > 0
    assert w["clip"] == {"steps": e["step"] - prev}, (w["clip"], e["step"], prev)
    prev = e["step"]
assert len(ev[0]["watch"]["warnings"]) == 1 and "is saturated" in ev[0]["watch"]["warnings"][0]
assert all(not e["watch"]["warnings"] for e in ev[1:] + ep), [e["watch"]["warnings"] for e in ev + ep]

# curves: series names from the legends, one polyline per series
def svg(path):
    root = ET.parse(path).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == ns + "svg", root.tag
    lines = [e for e in root.iter(ns + "polyline") if e.get("class") == "series"]
    legend = [e.text for e in root.iter(ns + "text") if e.get("text-anchor") == "start"]
    return root, lines, legend
def png_size(path):
    b = open(path, "rb").read()
    assert b[:8] == b"\x89PNG\r\n\x1a\n", path
    assert b[12:16] == b"IHDR"
    return struct.unpack(">II", b[16:24])
root, lines, legend = svg(f"{d}/plots/curves.svg")
assert legend == ["loss", "val_loss", "accuracy", "val_accuracy"], legend
assert len(lines) == 4, len(lines)
for l in lines:
    assert len(l.get("points").split()) == 3  # three epochs
assert png_size(f"{d}/plots/curves.png") == (int(float(root.get("width"))), int(float(root.get("height"))))
root, lines, legend = svg(f"{d}/plots/grad_norms.svg")
assert legend == layers, legend
assert len(lines) == 4 and all(len(l.get("points").split()) == 9 for l in lines)  # 9 records
assert png_size(f"{d}/plots/grad_norms.png") == (int(float(root.get("width"))), int(float(root.get("height"))))
PY
# with --json the watch text goes to stderr, stdout stays JSON
grep -q "^watch: epoch 1, step 4: warning: layer 'dense' ($s2/sigma_20.mdl:10:5) is saturated" "$tmp/w.err" \
  || { cat "$tmp/w.err"; fail "JSON mode: warning not on stderr"; }

# usage errors
set +e
"$MODELC" train $s3/two_layer.mdl --watch=-3 >/dev/null 2>"$tmp/u.err"; rc=$?
set -e
[ $rc -eq 2 ] && grep -q "watch K needs K >= 1" "$tmp/u.err" || fail "--watch=-3: exit $rc"
echo "train_watch: ok"
