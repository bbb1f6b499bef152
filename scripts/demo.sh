#!/bin/sh
# The README's demo: check and print the default example.
set -e
MODELC=${1:-build/modelc}
"$MODELC" check examples/fashion_mlp.mdl
"$MODELC" params examples/fashion_mlp.mdl
"$MODELC" ir examples/fashion_mlp.mdl
