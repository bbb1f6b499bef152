#!/bin/bash
# Every example model: the loss and gradients of one batch evaluated by
# the JIT equal the reference interpreter's (tolerance: jit_compare.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
for f in examples/*.mdl examples/*/*.mdl; do
    "$MODELC" grad "$f" --backend=interp --seed 7 --batch 2 -o "$tmp/interp.safetensors" >"$tmp/interp.txt"
    "$MODELC" grad "$f" --backend=jit --seed 7 --batch 2 -o "$tmp/jit.safetensors" >"$tmp/jit.txt"
    python3 tests/e2e/jit_compare.py "$tmp/interp.safetensors" "$tmp/jit.safetensors" || { echo "$f: gradients differ"; exit 1; }
    li=$(sed -n 's/^loss: //p' "$tmp/interp.txt")
    lj=$(sed -n 's/^loss: //p' "$tmp/jit.txt")
    python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(abs(a - b) > 1e-5 * abs(a) + 1e-12)" "$li" "$lj" ||
        { echo "$f: jit loss $lj, interpreter loss $li"; exit 1; }
    n=$((n + 1))
done
test "$n" -ge 10 || { echo "only $n example models found"; exit 1; }
echo "$n examples: jit gradients match the interpreter"
