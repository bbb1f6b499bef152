#!/bin/bash
# The IR shown is the IR run: for every example, the functions that
# `modelc train --dump-ir DIR` compiles (train_step.ir, eval.ir), the one
# `modelc eval --dump-ir` and the one `modelc predict --dump-ir` compile
# are byte for byte what `modelc ir --fn NAME` prints; a directory that
# cannot be written is an error before training.
set -euo pipefail
: "${MODELC:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
n=0
for m in examples/*.mdl examples/*/*.mdl; do
    data=()
    case "$m" in
    examples/s3_vanishing/*) data=(--data uniform:16) ;;
    examples/transformer_block/*)
        [ -s "$t/tb/train.csv" ] || { mkdir -p "$t/tb" && python3 examples/transformer_block/make_data.py "$t/tb"; }
        data=(--data "$t/tb/train.csv" --test-data "$t/tb/test.csv" --label-column label) ;;
    examples/char_lstm/*)
        [ -s "$t/text.txt" ] || for i in $(seq 1 40); do echo "line $i of a text to read"; done > "$t/text.txt"
        data=(--data "text:$t/text.txt" --val-split 0.25) ;;
    examples/seq_classify/*)
        [ -s "$t/seq/train.csv" ] || { mkdir -p "$t/seq" && python3 examples/seq_classify/make_data.py "$t/seq"; }
        data=(--data "$t/seq/train.csv" --test-data "$t/seq/test.csv" --label-column label) ;;
    esac
    rm -rf "$t/d" && mkdir "$t/d"
    "$MODELC" train "$m" "${data[@]}" --limit 16 --batch 8 --epochs 1 --no-warn \
        --dump-ir "$t/d" > "$t/out" 2>&1 || fail "$m: $(cat "$t/out")"
    for fn in train_step eval; do
        [ -s "$t/d/$fn.ir" ] || fail "$m: no $fn.ir"
        "$MODELC" ir "$m" --fn "$fn" > "$t/$fn.ir"
        cmp "$t/$fn.ir" "$t/d/$fn.ir" || fail "$m: modelc ir --fn $fn differs from train --dump-ir"
    done
    # the dumped IR parses back and prints the same text
    "$MODELC" ir "$t/d/train_step.ir" > "$t/again.ir"
    cmp "$t/again.ir" "$t/d/train_step.ir" || fail "$m: the dumped train_step.ir does not round-trip"
    n=$((n + 1))
done
[ "$n" -ge 20 ] || fail "only $n examples"

# eval compiles only the evaluation function
"$MODELC" init examples/fashion_mlp.mdl -o "$t/w.st" > /dev/null
rm -rf "$t/e" && mkdir "$t/e"
"$MODELC" eval examples/fashion_mlp.mdl --weights "$t/w.st" --limit 16 --dump-ir "$t/e" > /dev/null
[ "$(ls "$t/e")" = eval.ir ] || fail "eval dumped $(ls "$t/e")"
"$MODELC" ir examples/fashion_mlp.mdl --fn eval | cmp - "$t/e/eval.ir" || fail "eval --dump-ir differs"

# predict compiles only the predict function
python3 - "$t/x.npy" <<'PY'
import struct, sys
hdr = "{'descr': '|u1', 'fortran_order': False, 'shape': (3, 28, 28, 1), }"
hdr += " " * (63 - len(hdr)) + "\n"
with open(sys.argv[1], "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + bytes(range(256)) * 9 + bytes(48))
PY
rm -rf "$t/p" && mkdir "$t/p"
"$MODELC" predict examples/fashion_mlp.mdl --weights "$t/w.st" --inputs "$t/x.npy" --classes --dump-ir "$t/p" > /dev/null
[ "$(ls "$t/p")" = predict.ir ] || fail "predict dumped $(ls "$t/p")"
"$MODELC" ir examples/fashion_mlp.mdl --fn predict | cmp - "$t/p/predict.ir" || fail "predict --dump-ir differs"

# the interpreter runs the unfused functions, and says so in the dump
rm -rf "$t/i" && mkdir "$t/i"
"$MODELC" train examples/fashion_mlp.mdl --backend interp --limit 8 --batch 8 --epochs 1 --no-test \
    --no-warn --dump-ir "$t/i" > /dev/null
"$MODELC" ir examples/fashion_mlp.mdl --fn train_step --backend interp | cmp - "$t/i/train_step.ir" ||
    fail "interp train_step differs"
grep -q ' fused(' "$t/i/train_step.ir" && fail "the interpreter's step is fused"

# an unwritable dump directory: a clear error naming the path, exit 1
if "$MODELC" train examples/fashion_mlp.mdl --limit 8 --epochs 1 --no-test --dump-ir "$t/nope/x" \
    > "$t/out" 2> "$t/err"; then fail "accepted a missing directory"; fi
grep -qF "$t/nope/x/train_step.ir" "$t/err" || fail "$(cat "$t/err")"
echo "ir_dump: ok ($n examples)"
