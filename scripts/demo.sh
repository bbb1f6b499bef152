#!/bin/sh
# The README's demo: train the Fashion-MNIST MLP for a few epochs and
# report test accuracy.
set -e
MODELC=${1:-build/modelc}
"$MODELC" check examples/fashion_mlp.mdl
"$MODELC" params examples/fashion_mlp.mdl
"$MODELC" train examples/fashion_mlp.mdl --epochs 3 --save fashion_mlp.safetensors
