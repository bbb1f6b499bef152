#!/bin/bash
# Training is bit-identical for any thread count: a few steps of the CNN
# with batchnorm (convolution GEMMs and their im2col, batch reductions in
# parts, pooling, dropout) and of the MLP (GEMMs with epilogues and column
# sums, the softmax row kernel, parameter update loops) with --threads 1,
# 2 and 3 save the same checkpoint byte for byte, and evaluate alike.
set -euo pipefail
: "${MODELC:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
for m in fashion_cnn_bn fashion_mlp; do
    for n in 1 2 3; do
        "$MODELC" train "examples/$m.mdl" --epochs 1 --limit 384 --batch 64 --no-test --no-progress --no-warn \
            --eval-train --threads "$n" --save "$t/$m.$n.st" --json |
            grep -o '"[a-z_]*\(loss\|accuracy\)": [-0-9.e]*' > "$t/$m.$n.json"
    done
    for n in 2 3; do
        cmp "$t/$m.1.st" "$t/$m.$n.st" || { echo "$m: --threads $n changes the checkpoint"; exit 1; }
        cmp "$t/$m.1.json" "$t/$m.$n.json" || { echo "$m: --threads $n changes the metrics"; exit 1; }
    done
done
echo "training is bit-identical with 1, 2 and 3 threads"
