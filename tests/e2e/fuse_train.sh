#!/bin/bash
# modelc train compiles fused kernels: the fuse pass shows in the compile
# report, the LLVM module has one function per kernel that
# `modelc ir --after=fuse --stats` counts, and training the MLP and the
# batchnorm CNN on the (fused) JIT gives the interpreter's losses,
# accuracies and checkpoints (which evaluates the unfused graph).
set -euo pipefail
: "${MODELC:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT

# one LLVM function per kernel of the fused graph (besides the row- and
# element-range thunks of row- and flat-parallel kernels and batch
# reductions in parts, and GEMM epilogues run as kernels of their own)
for m in examples/fashion_mlp.mdl examples/fashion_cnn_bn.mdl examples/s0_reparam/model2.mdl; do
    k=$("$MODELC" ir "$m" --after=fuse --stats | sed -n 's/^kernels: //p')
    f=$("$MODELC" llvm "$m" --mode=train | grep '^define internal' | grep -vc '\.rows(\|\.flat(\|\.part(\|\.epilogue(')
    [ "$k" = "$f" ] || { echo "$m: $k kernels after fusion, $f LLVM kernel functions"; exit 1; }
done

# the pass runs in modelc train
"$MODELC" train examples/fashion_mlp.mdl --epochs 1 --limit 128 --no-test --no-progress \
    --time-passes > /dev/null 2> "$t/time"
grep -Eq '^ +[0-9.]+ ms +[0-9.]+% +fuse$' "$t/time" || { cat "$t/time"; exit 1; }

# jit (fused) and interpreter give the same training run
compare() {
    python3 - "$1" "$2" <<'PY'
import json, sys
def last(path):
    rows = [json.loads(l) for l in open(path) if l.startswith("{")]
    return [r for r in rows if "epoch" in r][-1]
a, b = last(sys.argv[1]), last(sys.argv[2])
for key, tol in (("loss", 1e-4), ("accuracy", 1e-2)):
    if abs(a[key] - b[key]) > tol * max(1.0, abs(a[key])):
        sys.exit("%s: jit %r, interpreter %r" % (key, a[key], b[key]))
PY
}
common=(--epochs 1 --no-test --no-progress --json --seed 3 --threads 1)
"$MODELC" train examples/fashion_mlp.mdl "${common[@]}" --limit 512 --save "$t/jit.st" > "$t/jit.log"
"$MODELC" train examples/fashion_mlp.mdl "${common[@]}" --limit 512 --backend interp --save "$t/interp.st" > "$t/interp.log"
compare "$t/jit.log" "$t/interp.log" || { echo "fashion_mlp: the fused JIT run differs"; exit 1; }
python3 tests/e2e/jit_compare.py "$t/interp.st" "$t/jit.st" || { echo "fashion_mlp: checkpoints differ"; exit 1; }
"$MODELC" train examples/fashion_cnn_bn.mdl "${common[@]}" --limit 64 --batch 32 > "$t/jit.log"
"$MODELC" train examples/fashion_cnn_bn.mdl "${common[@]}" --limit 64 --batch 32 --backend interp > "$t/interp.log"
compare "$t/jit.log" "$t/interp.log" || { echo "fashion_cnn_bn: the fused JIT run differs"; exit 1; }
echo "fused training matches the interpreter"
