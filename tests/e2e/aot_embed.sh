#!/bin/bash
# examples/embed from an installed prefix, with `modelc` on PATH and
# libmodelc-rt found by pkg-config alone: `make run` trains weights,
# compiles the model ahead of time, builds the program and classifies the
# 10,000 Fashion-MNIST test images with the accuracy `modelc eval` reports
# on the same weights; a second `make run` reuses the weights; `make
# run-train` trains one epoch with the compiled training step.
set -uo pipefail
fail() { echo "aot_embed: $*"; exit 1; }
build=$(cd "$(dirname "$MODELC")" && pwd)
if grep -q '^MODELC_SANITIZE:BOOL=ON' "$build/CMakeCache.txt"; then
    export CFLAGS="-O2 -fsanitize=address,undefined"
fi
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
cmake --install "$build" --prefix "$t/prefix" > "$t/install.log" 2>&1 || { cat "$t/install.log"; fail "cmake --install"; }
lib=$(ls -d "$t"/prefix/lib*/pkgconfig | head -1)
export PATH="$t/prefix/bin:$PATH" PKG_CONFIG_PATH="$lib"
mkdir -p "$t/examples"
cp -r examples/embed examples/fashion_mlp.mdl "$t/examples/"
rm -f "$t"/examples/embed/{classify,train_epoch,*.o,*.h,*.safetensors,*-ubyte}

make -C "$t/examples/embed" MODELC=modelc run > "$t/run.log" 2>&1 || { cat "$t/run.log"; fail "make run failed"; }
acc=$(grep '^accuracy: 0\.[0-9]\{4\}$' "$t/run.log") || fail "no accuracy line: $(tail -5 "$t/run.log")"
[ -x "$t/examples/embed/classify" ] || fail "the program is not left in examples/embed"
ldd "$t/examples/embed/classify" > "$t/ldd" || fail "ldd"
grep -qi llvm "$t/ldd" && fail "the program is linked with LLVM: $(cat "$t/ldd")"
modelc eval "$t/examples/fashion_mlp.mdl" --weights "$t/examples/embed/fashion_mlp.safetensors" > "$t/eval.log" ||
    fail "modelc eval failed"
want=$(grep -o 'accuracy: 0\.[0-9]*' "$t/eval.log") || fail "no accuracy from modelc eval: $(cat "$t/eval.log")"
[ "$acc" = "$want" ] || fail "the compiled model says '$acc', modelc eval '$want'"

make -C "$t/examples/embed" MODELC=modelc run > "$t/run2.log" 2>&1 || fail "second make run failed"
grep -q "modelc train" "$t/run2.log" && fail "the second run trained again"
grep -qx "$acc" "$t/run2.log" || fail "the second run differs: $(cat "$t/run2.log")"

make -C "$t/examples/embed" MODELC=modelc run-train > "$t/train.log" 2>&1 || { cat "$t/train.log"; fail "make run-train failed"; }
grep -q '^469 steps - mean loss: 0\.[0-9]* - test accuracy: 0\.[0-9]\{4\}$' "$t/train.log" ||
    fail "unexpected output of train_epoch: $(tail -3 "$t/train.log")"
for f in examples/embed/classify.c examples/embed/train_epoch.c; do
    [ "$(wc -l < "$f")" -lt 80 ] || fail "$f has 80 lines or more"
done
echo "aot_embed: ok ($acc)"
