#!/bin/bash
# Clipping telemetry of `modelc train --watch`: with clip values far
# below every gradient each step clips and the per-parameter clipped
# fraction is (near) 1; with huge ones nothing is clipped and the
# figures are exactly 0. Also by global norm. The telemetry comes from
# metric outputs of the compiled step; the interpreter backend must give
# the same figures.
set -euo pipefail
: "${MODELC:?MODELC not set}"
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
m=tests/e2e/models

run() { # model backend -> $tmp/<model>.<backend>.{json,txt}
  "$MODELC" train "$m/$1.mdl" --data uniform:64 --no-test --watch --json --backend "$2" --no-warn \
    >"$tmp/$1.$2.json" 2>"$tmp/$1.$2.txt" || fail "$1 ($2) exit $?"
}
for model in clip_value_tiny clip_value_huge clip_norm_tiny clip_norm_huge; do
  run $model jit
  run $model interp
done

# the text telemetry (stderr with --json): 64 examples, batch 8 = 8 steps
grep -qx "watch: epoch 2: clip by value 1e-06: fired in 8 of 8 steps; dense.kernel 100% of elements, dense.bias 100% of elements, dense_1.kernel 100% of elements, dense_1.bias 100% of elements" \
  "$tmp/clip_value_tiny.jit.txt" || { cat "$tmp/clip_value_tiny.jit.txt"; fail "tiny clip_value line"; }
grep -qx "watch: epoch 2: clip by value 1e+06: fired in 0 of 8 steps; nothing clipped" \
  "$tmp/clip_value_huge.jit.txt" || { cat "$tmp/clip_value_huge.jit.txt"; fail "huge clip_value line"; }
grep -q "^watch: epoch 2: clip by norm 1e-06: fired in 8 of 8 steps (100%), mean pre-clip norm " \
  "$tmp/clip_norm_tiny.jit.txt" || { cat "$tmp/clip_norm_tiny.jit.txt"; fail "tiny clip_norm line"; }
grep -q "^watch: epoch 2: clip by norm 1e+06: fired in 0 of 8 steps (0%), mean pre-clip norm " \
  "$tmp/clip_norm_huge.jit.txt" || { cat "$tmp/clip_norm_huge.jit.txt"; fail "huge clip_norm line"; }

python3 - "$tmp" <<'PY'
import json, math, sys
d = sys.argv[1]
def epochs(model, backend):
    rows = [json.loads(l) for l in open(f"{d}/{model}.{backend}.json")]
    return [r for r in rows if "epoch" in r and "event" not in r]
params = ["dense.kernel", "dense.bias", "dense_1.kernel", "dense_1.bias"]
for backend in ("jit", "interp"):
    for e in epochs("clip_value_tiny", backend):
        w = e["watch"]
        assert w["clip"] == {"steps": 8, "fired_frac": 1}, w["clip"]
        for p in params:
            assert w["params"][p]["clip_frac"] == 1, (p, w["params"][p])
    for e in epochs("clip_value_huge", backend):
        w = e["watch"]
        assert w["clip"] == {"steps": 8, "fired_frac": 0}, w["clip"]
        for p in params:
            assert w["params"][p]["clip_frac"] == 0, (p, w["params"][p])
    for e in epochs("clip_norm_tiny", backend):
        c = e["watch"]["clip"]
        assert c["steps"] == 8 and c["fired_frac"] == 1 and c["mean_norm"] > 1e-3, c
    for e in epochs("clip_norm_huge", backend):
        c = e["watch"]["clip"]
        assert c["steps"] == 8 and c["fired_frac"] == 0 and 1e-3 < c["mean_norm"] < 1e6, c
        assert "clip_frac" not in e["watch"]["params"]["dense.kernel"]
# the compiled step's telemetry equals the interpreter's
for model in ("clip_value_tiny", "clip_norm_huge"):
    for a, b in zip(epochs(model, "jit"), epochs(model, "interp")):
        for p in params:
            x, y = a["watch"]["params"][p]["step_grad_norm"], b["watch"]["params"][p]["step_grad_norm"]
            assert x > 0 and abs(x - y) <= 1e-4 * abs(y), (model, p, x, y)
    if model == "clip_norm_huge":
        x, y = a["watch"]["clip"]["mean_norm"], b["watch"]["clip"]["mean_norm"]
        assert abs(x - y) <= 1e-4 * y, (x, y)
PY
echo "train_clip: ok"
