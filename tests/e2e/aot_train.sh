#!/bin/bash
# `modelc compile --fn train_step`: 20 training steps of the compiled
# object (libmodelc-rt only) equal 20 steps of the JIT (mc_train_step on
# the same batches and learning rate) bit for bit: every loss and metric,
# and every parameter and optimizer slot afterwards; then the same with
# the parameters read from a checkpoint at _init (--weights-file), and on
# one thread; and 3 steps of fashion_cnn_bn (batchnorm, dropout).
set -uo pipefail
fail() { echo "aot_train: $*"; exit 1; }
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
. tests/aot/build.sh
f=examples/fashion_mlp.mdl
mkdir -p "$t/aot" "$t/jit" "$t/aotf"

"$MODELC" compile "$f" -o "$t/m.o" --header "$t/m.h" --fn train_step,predict --batch-max 32 > /dev/null ||
    fail "modelc compile --fn train_step"
grep -q 'static inline int fashion_mlp_train_step(fashion_mlp_ctx \*ctx, int64_t n,' "$t/m.h" || fail "no train_step in the header"
grep -q 'double lr' "$t/m.h" || fail "train_step takes no learning rate"
aot_build "$t/m.o" "$t/m.h" fashion_mlp "$t/drv" || fail "cannot build the program"
"$t/drv" train_step 32 20 0.003 "$t/aot" > "$t/aot.txt" || fail "the compiled train_step failed"

cc -std=c11 -Wall -Wextra -Werror $san -Iinclude -Itests/aot tests/aot/jit_train.c -o "$t/jit_train" \
    -L"$build" -lmodelc -Wl,-rpath,"$build" || fail "cannot build the JIT program"
params=$(cd "$t/aot" && ls -- *.bin | sed 's/\.bin$//')
[ "$(echo "$params" | wc -l)" -ge 6 ] || fail "too few parameters: $params"
# shellcheck disable=SC2086
"$t/jit_train" "$f" 32 20 0.003 "$t/jit" x:0:28,28,1 y:2: -- $params > "$t/jit.txt" || fail "the JIT program failed"

[ "$(grep -c '^loss ' "$t/aot.txt")" -eq 20 ] || fail "expected 20 losses: $(cat "$t/aot.txt")"
cmp -s "$t/aot.txt" "$t/jit.txt" || fail "losses and metrics differ: $(diff "$t/aot.txt" "$t/jit.txt" | head)"
grep -q '^optimizer\.' <<< "$params" || fail "no optimizer slots among the parameters"
for p in $params; do
    cmp -s "$t/aot/$p.bin" "$t/jit/$p.bin" || fail "parameter $p differs after 20 steps"
done
# One thread computes the same bits as one per core.
mkdir -p "$t/aot1"
AOT_THREADS=1 "$t/drv" train_step 32 20 0.003 "$t/aot1" > "$t/aot1.txt" || fail "train_step on one thread failed"
cmp -s "$t/aot.txt" "$t/aot1.txt" || fail "one thread gives other losses"
for p in $params; do
    cmp -s "$t/aot/$p.bin" "$t/aot1/$p.bin" || fail "parameter $p differs on one thread"
done
# The losses changed: the steps did train.
[ "$(sort -u "$t/aot.txt" | grep -c '^loss')" -gt 10 ] || fail "the loss does not move: $(cat "$t/aot.txt")"

# Batchnorm (batch statistics, moving averages) and dropout (the RNG's
# seed and step): fashion_cnn_bn, 3 steps.
c=examples/fashion_cnn_bn.mdl
mkdir -p "$t/cnn_aot" "$t/cnn_jit"
"$MODELC" compile "$c" -o "$t/c.o" --header "$t/c.h" --fn train_step --batch-max 8 > /dev/null || fail "compile $c"
aot_build "$t/c.o" "$t/c.h" fashion_cnn_bn "$t/drvc" || fail "cannot build the $c program"
"$t/drvc" train_step 8 3 0.01 "$t/cnn_aot" > "$t/cnn_aot.txt" || fail "the compiled train_step of $c failed"
cparams=$(cd "$t/cnn_aot" && ls -- *.bin | sed 's/\.bin$//')
grep -q 'moving' <<< "$cparams" || fail "no batchnorm state among $c's parameters"
# shellcheck disable=SC2086
"$t/jit_train" "$c" 8 3 0.01 "$t/cnn_jit" x:0:28,28,1 y:2: -- $cparams > "$t/cnn_jit.txt" || fail "the JIT program failed on $c"
cmp -s "$t/cnn_aot.txt" "$t/cnn_jit.txt" || fail "$c: losses differ: $(diff "$t/cnn_aot.txt" "$t/cnn_jit.txt" | head)"
for p in $cparams; do
    cmp -s "$t/cnn_aot/$p.bin" "$t/cnn_jit/$p.bin" || fail "$c: parameter $p differs after 3 steps"
done

# The same object without embedded values reads them from a checkpoint.
"$MODELC" init "$f" -o "$t/w.safetensors" > /dev/null || fail "modelc init"
"$MODELC" compile "$f" -o "$t/f.o" --header "$t/f.h" --fn train_step --batch-max 32 --weights-file > /dev/null ||
    fail "modelc compile --weights-file"
aot_build "$t/f.o" "$t/f.h" fashion_mlp "$t/drvf" || fail "cannot build the --weights-file program"
"$t/drvf" train_step 32 20 0.003 "$t/aotf" "$t/w.safetensors" > "$t/aotf.txt" || fail "train_step from a checkpoint failed"
cmp -s "$t/aot.txt" "$t/aotf.txt" || fail "a checkpoint of the initial values trains differently"
"$t/drvf" run train_step 32 > "$t/err" 2>&1 && fail "no weights file was accepted"
grep -q "weights-file" "$t/err" || fail "unclear error without a weights file: $(cat "$t/err")"
echo "aot_train: ok"
