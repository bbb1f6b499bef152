#!/bin/bash
# `modelc train --tensorboard DIR`: one event file whose every record has
# a correct TFRecord frame and both masked CRC32Cs (checked by the
# project's own reader, tests/tensorboard/read_events.py, no TensorFlow),
# the file_version record first, step/loss and step/lr at every step,
# epoch metrics equal to the JSON lines, and with --watch the per-layer
# gradient norms, update ratios and histograms; a flipped byte is
# detected; an unwritable DIR stops before training. `modelc stats
# --tensorboard` writes its statistics the same way.
set -euo pipefail
: "${MODELC:?MODELC not set}"
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
reader=tests/tensorboard/read_events.py

python3 $reader --selftest >/dev/null || fail "the reader's CRC32C check value"

# 256 examples, 48 for validation, batch 52: 4 steps per epoch, 2 epochs
"$MODELC" train examples/fashion_mlp.mdl --limit 256 --val-split 0.1875 --batch 52 --epochs 2 \
  --no-test --watch --json --tensorboard "$tmp/tb" >"$tmp/json" 2>"$tmp/err" || { cat "$tmp/err"; fail "train"; }
[ "$(ls "$tmp/tb" | wc -l)" = 1 ] || fail "one event file expected: $(ls "$tmp/tb")"
ev=$(ls "$tmp/tb"/*)
case "$(basename "$ev")" in
  events.out.tfevents.[0-9]*.*.[0-9]*) ;;
  *) fail "event file name $(basename "$ev")" ;;
esac
python3 $reader "$ev" >"$tmp/ev" || fail "the reader rejects the file"
[ "$(head -1 "$tmp/ev")" = "file_version brain.Event:2" ] || fail "first record: $(head -1 "$tmp/ev")"
[ "$(grep -c ' scalar step/loss ' "$tmp/ev")" = 8 ] || fail "8 step losses expected"
[ "$(grep ' scalar step/loss ' "$tmp/ev" | cut -d' ' -f1 | tr '\n' ' ')" = "1 2 3 4 5 6 7 8 " ] \
  || fail "steps of step/loss"
grep -q '^1 scalar step/lr 0.001$' "$tmp/ev" || fail "step/lr" # the cosine schedule's first rate
for tag in loss accuracy val_loss val_accuracy lr; do
  for e in 1 2; do
    grep -q "^$e scalar epoch/$tag " "$tmp/ev" || fail "epoch/$tag at epoch $e"
  done
done
# the epoch's loss and validation accuracy are the JSON line's
python3 - "$tmp/json" "$tmp/ev" <<'PY' || fail "epoch metrics differ from --json"
import json, sys
ep = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{"epoch"')]
tb = {}
for l in open(sys.argv[2]):
    f = l.split()
    if f[1] == "scalar" and f[2].startswith("epoch/"):
        tb[(int(f[0]), f[2][6:])] = float(f[3])
assert len(ep) == 2, ep
for e in ep:
    for k in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        a, b = e[k], tb[(e["epoch"], k)]
        assert abs(a - b) <= 1e-5 * max(1, abs(a)), (k, a, b)
PY
# watch records at each epoch's end (steps 4 and 8)
for s in 4 8; do
  for l in dense dense_1 dense_2; do
    grep -q "^$s scalar grad_norm/$l [0-9]" "$tmp/ev" || fail "grad_norm/$l at step $s"
    grep -q "^$s histo activations/$l num=" "$tmp/ev" || fail "activations/$l at step $s"
  done
  grep -q "^$s scalar update_ratio/dense.kernel [0-9]" "$tmp/ev" || fail "update_ratio at step $s"
  grep -q "^$s histo weights/dense.kernel num=200704 .* count=200704\$" "$tmp/ev" \
    || fail "weights/dense.kernel histogram at step $s"
  grep -q "^$s histo gradients/dense_2.bias num=" "$tmp/ev" || fail "gradients/dense_2.bias at step $s"
done
# activations of dense_2 on the 64 sampled examples: 640 values
grep -q "^8 histo activations/dense_2 num=640 .* count=640\$" "$tmp/ev" || fail "activation histogram count"

# a flipped byte anywhere is detected
size=$(stat -c %s "$ev")
for off in 3 10 20 $((size / 2)) $((size - 1)); do
  cp "$ev" "$tmp/bad"
  python3 -c "
import sys
p, o = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, 'rb').read()); b[o] ^= 0x10; open(p, 'wb').write(b)" "$tmp/bad" $off
  if python3 $reader "$tmp/bad" >/dev/null 2>"$tmp/bad.err"; then fail "byte $off flipped: not detected"; fi
  grep -q "CRC does not match\|truncated" "$tmp/bad.err" || { cat "$tmp/bad.err"; fail "byte $off: message"; }
done

# without --watch: only the scalars
"$MODELC" train examples/fashion_mlp.mdl --limit 128 --batch 64 --epochs 1 --no-test \
  --tensorboard "$tmp/tb2" >/dev/null 2>"$tmp/err" || { cat "$tmp/err"; fail "train without --watch"; }
python3 $reader "$tmp/tb2"/* >"$tmp/ev2" || fail "reader, no watch"
[ "$(grep -c ' scalar step/loss ' "$tmp/ev2")" = 2 ] || fail "2 step losses expected"
if grep -q histo "$tmp/ev2"; then fail "histograms without --watch"; fi

# modelc stats --tensorboard: the statistics at step 0, the compared checkpoint's at step 1
"$MODELC" train examples/fashion_mlp.mdl --limit 128 --batch 64 --epochs 1 --no-test --save "$tmp/ck.safetensors" \
  >/dev/null 2>&1 || fail "train for stats"
"$MODELC" stats examples/fashion_mlp.mdl --limit 128 --batches 2 --no-warn --compare "$tmp/ck.safetensors" \
  --tensorboard "$tmp/tb3" >"$tmp/stats.out" 2>&1 || { cat "$tmp/stats.out"; fail "stats"; }
grep -q "^wrote TensorBoard events to $tmp/tb3/\$" "$tmp/stats.out" || fail "stats: wrote line"
python3 $reader "$tmp/tb3"/* >"$tmp/ev3" || fail "reader, stats"
for s in 0 1; do
  grep -q "^$s histo weights/dense.kernel num=200704 " "$tmp/ev3" || fail "stats: weights at step $s"
  grep -q "^$s histo activations/dense_2 num=1280 .* count=1280\$" "$tmp/ev3" || fail "stats: activations at $s"
  grep -q "^$s scalar grad_norm/dense_1 [0-9]" "$tmp/ev3" || fail "stats: grad norm at $s"
done
touch "$tmp/file"
if "$MODELC" stats examples/fashion_mlp.mdl --limit 64 --tensorboard "$tmp/file/tb" >/dev/null 2>"$tmp/err"; then
  fail "stats: unwritable dir accepted"
fi
grep -q -- "--tensorboard" "$tmp/err" || fail "stats: message names the option"

# an unwritable DIR: a clear error before training
if "$MODELC" train examples/fashion_mlp.mdl --limit 64 --epochs 1 --no-test \
  --tensorboard "$tmp/file/tb" >"$tmp/out" 2>"$tmp/err"; then fail "unwritable dir accepted"; fi
grep -q -- "--tensorboard" "$tmp/err" || { cat "$tmp/err"; fail "message names the option"; }
if grep -q "^Epoch" "$tmp/out"; then fail "training started"; fi
echo "OK"
