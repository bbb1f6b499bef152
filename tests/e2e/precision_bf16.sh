#!/bin/bash
# --precision bf16: the MLP trained with its GEMMs on bf16 operands
# learns as the f32 one does (a short run: test accuracies within 0.03),
# the same thread-independent checkpoint on 1 and 2 threads; evaluating
# f32 weights in bf16 gives nearly their f32 loss and accuracy, but not
# the same bits; a bad value is a usage error, the interpreter and a CPU
# without AMX-BF16 or AVX512-BF16 refuse it with a message.
set -euo pipefail
: "${MODELC:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
m=examples/fashion_mlp.mdl

set +e
"$MODELC" eval "$m" --weights x.safetensors --precision f16 2>"$t/err"
rc=$?
set -e
[ "$rc" = 2 ] || { echo "--precision f16: exit $rc, not 2"; exit 1; }
grep -q "precision must be f32 or bf16, got 'f16'" "$t/err" || { cat "$t/err"; exit 1; }
set +e
"$MODELC" train "$m" --precision bf16 --backend interp --epochs 1 --limit 64 --no-test 2>"$t/err"
rc=$?
set -e
[ "$rc" = 1 ] || { echo "--precision bf16 --backend interp: exit $rc, not 1"; exit 1; }
grep -q "bf16 precision needs the jit backend" "$t/err" || { cat "$t/err"; exit 1; }

if ! grep -qw 'amx_bf16\|avx512_bf16' /proc/cpuinfo; then
    set +e
    "$MODELC" train "$m" --precision bf16 --epochs 1 --limit 64 --no-test 2>"$t/err"
    rc=$?
    set -e
    [ "$rc" = 1 ] && grep -q "needs a CPU with AMX-BF16 or AVX512-BF16" "$t/err" || { cat "$t/err"; exit 1; }
    echo "no bf16 on this CPU: refused with a message"
    exit 0
fi

acc() { grep -o '"accuracy": [0-9.]*' "$1" | tail -1 | cut -d' ' -f2; }
for p in f32 bf16; do
    "$MODELC" train "$m" --precision "$p" --epochs 1 --limit 6000 --no-progress --no-warn --threads 2 \
        --save "$t/$p.st" --json >"$t/train_$p.json"
    "$MODELC" eval "$m" --weights "$t/$p.st" --precision "$p" --limit 2000 --threads 2 --json >"$t/eval_$p.json"
done
"$MODELC" train "$m" --precision bf16 --epochs 1 --limit 6000 --no-progress --no-warn --threads 1 \
    --save "$t/bf16_1.st" --json >/dev/null
cmp "$t/bf16.st" "$t/bf16_1.st" || { echo "bf16 training differs between 1 and 2 threads"; exit 1; }
a32=$(acc "$t/eval_f32.json")
a16=$(acc "$t/eval_bf16.json")
python3 - "$a32" "$a16" <<'PY'
import sys
a32, a16 = map(float, sys.argv[1:])
assert a32 > 0.7 and abs(a32 - a16) < 0.03, (a32, a16)
PY
# f32 weights evaluated in bf16: close, not identical
"$MODELC" eval "$m" --weights "$t/f32.st" --precision bf16 --limit 2000 --threads 2 --json >"$t/eval_x.json"
python3 - "$t/eval_f32.json" "$t/eval_x.json" <<'PY'
import json, sys
a, b = (json.loads(open(p).read().splitlines()[-1]) for p in sys.argv[1:])
assert a["loss"] != b["loss"], "bf16 evaluation gave the f32 loss bit for bit"
assert abs(a["loss"] - b["loss"]) < 0.01 * a["loss"], (a["loss"], b["loss"])
assert abs(a["accuracy"] - b["accuracy"]) <= 0.005, (a["accuracy"], b["accuracy"])
PY
echo "bf16: test accuracy $a16 against f32's $a32"
