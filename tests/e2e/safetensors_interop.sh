#!/usr/bin/env bash
# `modelc init` writes parameters that an independent reader (Python's
# standard library only: json + struct) accepts: sorted names, contiguous
# offsets, a space-padded header, the metadata modelc records, initial
# values within the initializers' bounds. Also: the same seed gives the
# same bytes, failures keep the old file, and usage errors exit 2.
set -u
: "${MODELC:?MODELC must point at the modelc binary}"
if ! command -v python3 >/dev/null 2>&1; then
    echo "python3 not found: safetensors interoperability not checked"
    exit 0
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
PY=tests/data/safetensors_py.py
fail() { echo "FAIL: $*" >&2; exit 1; }

"$MODELC" init examples/fashion_mlp.mdl -o "$T/w.safetensors" >"$T/out" 2>"$T/err" ||
    fail "modelc init exited $?: $(cat "$T/err")"
grep -qF "wrote 6 parameters (235146 values) of model 'fashion_mlp' to $T/w.safetensors (seed 42)" "$T/out" ||
    fail "unexpected output: $(cat "$T/out")"
python3 "$PY" summary "$T/w.safetensors" >"$T/sum" || fail "the Python reader rejected the file"

python3 - "$T/sum" <<'PYEOF' || exit 1
import math, sys
lines = open(sys.argv[1]).read().splitlines()
meta = dict(l[5:].split("=", 1) for l in lines if l.startswith("meta "))
want = {"format": "modelc-params", "format_version": "1", "model": "fashion_mlp", "seed": "42"}
if meta != want:
    sys.exit("FAIL: metadata %r, expected %r" % (meta, want))
rows = {}
for l in lines:
    if l.startswith("meta "):
        continue
    name, dtype, rest = l.split(" ", 2)
    shape, stats = rest.split("] ", 1)
    vals = dict(s.split("=") for s in stats.split())
    rows[name] = (dtype, shape + "]", {k: float(v) for k, v in vals.items()})
expect = {"dense.kernel": "[784, 256]", "dense.bias": "[256]", "dense_1.kernel": "[256, 128]",
          "dense_1.bias": "[128]", "dense_2.kernel": "[128, 10]", "dense_2.bias": "[10]"}
if sorted(rows) != sorted(expect):
    sys.exit("FAIL: tensors %s" % sorted(rows))
for name, shape in expect.items():
    dtype, got, st = rows[name]
    if dtype != "F32" or got != shape:
        sys.exit("FAIL: %s is %s%s, expected F32%s" % (name, dtype, got, shape))
    if name.endswith(".bias"):
        if st["min"] != 0 or st["max"] != 0:
            sys.exit("FAIL: bias %s is not zero" % name)
        continue
    fan_in, fan_out = (int(x) for x in shape[1:-1].split(", "))
    limit = math.sqrt(6.0 / (fan_in + fan_out))  # glorot_uniform
    if not (-limit <= st["min"] < -0.95 * limit and 0.95 * limit < st["max"] < limit):
        sys.exit("FAIL: %s spans [%g, %g], glorot limit %g" % (name, st["min"], st["max"], limit))
    if abs(st["mean"]) > 0.05 * limit:
        sys.exit("FAIL: %s has mean %g" % (name, st["mean"]))
PYEOF

# determinism: same seed, same bytes; another seed, other values
"$MODELC" init examples/fashion_mlp.mdl -o "$T/again.safetensors" >/dev/null || fail "second init"
cmp -s "$T/w.safetensors" "$T/again.safetensors" || fail "the same seed gave different files"
"$MODELC" init examples/fashion_mlp.mdl -o "$T/s7.safetensors" --seed 7 >/dev/null || fail "--seed 7"
cmp -s "$T/w.safetensors" "$T/s7.safetensors" && fail "--seed 7 gave the same file"
python3 "$PY" summary "$T/s7.safetensors" | grep -x "meta seed=7" >/dev/null || fail "seed 7 not recorded"

# failures keep the old file and name the output
cp "$T/w.safetensors" "$T/keep"
mkdir "$T/dir.safetensors"
"$MODELC" init examples/fashion_mlp.mdl -o "$T/dir.safetensors" >/dev/null 2>"$T/err"
[ $? -eq 1 ] || fail "writing onto a directory should exit 1"
grep -qF "$T/dir.safetensors: error: cannot write: it is a directory" "$T/err" ||
    fail "unexpected message: $(cat "$T/err")"
"$MODELC" init "$T/missing.mdl" -o "$T/w.safetensors" >/dev/null 2>"$T/err"
[ $? -eq 1 ] || fail "a missing model should exit 1"
grep -qF "$T/missing.mdl: error: cannot read file" "$T/err" || fail "unexpected message: $(cat "$T/err")"
cmp -s "$T/w.safetensors" "$T/keep" || fail "a failed init changed the old file"
ls -A "$T" | grep '\.tmp-' >/dev/null && fail "a temporary file was left behind"

# usage errors
"$MODELC" init examples/fashion_mlp.mdl >/dev/null 2>"$T/err"
[ $? -eq 2 ] || fail "a missing -o should exit 2"
grep -qF "missing the output file (-o W.safetensors)" "$T/err" || fail "unexpected message: $(cat "$T/err")"
"$MODELC" init examples/fashion_mlp.mdl -o "$T/x" --seed -3 >/dev/null 2>&1
[ $? -eq 2 ] || fail "a negative seed should exit 2"
echo "ok"
