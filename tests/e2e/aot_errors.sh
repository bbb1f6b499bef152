#!/bin/bash
# `modelc compile`'s errors, and the compiled object's: a missing or
# mismatching weights file, an unknown --fn, a batch above --batch-max or
# other than --batch, a name that is not a C identifier, an unknown
# target or CPU, an index outside a gathered axis at run time; usage
# errors exit 2, bad input 1, each with a clear message. And --target:
# objects for another x86-64 CPU and for aarch64 that llvm-objdump reads.
set -uo pipefail
fail() { echo "aot_errors: $*"; exit 1; }
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
. tests/aot/build.sh
f=examples/fashion_mlp.mdl

# expect CODE PATTERN ARGS...: modelc ARGS exits with CODE, stderr matches PATTERN
expect() {
    local code=$1 pat=$2
    shift 2
    "$MODELC" "$@" > "$t/out" 2> "$t/err"
    local rc=$?
    [ "$rc" -eq "$code" ] || fail "modelc $*: exit $rc, expected $code: $(cat "$t/err")"
    grep -q -- "$pat" "$t/err" || fail "modelc $*: no '$pat' in: $(cat "$t/err")"
}
o=(-o "$t/m.o" --header "$t/m.h")

expect 2 "missing the object file" compile "$f"
expect 2 "unknown function 'nosuch' for --fn" compile "$f" "${o[@]}" --fn predict,nosuch
expect 2 "unknown function 'grad' for --fn" compile "$f" "${o[@]}" --fn grad
expect 2 "'9lives' is not a C identifier" compile "$f" "${o[@]}" --name 9lives
expect 2 "'a-b' is not a C identifier" compile "$f" "${o[@]}" --name a-b
expect 1 "'int' is not a C identifier" compile "$f" "${o[@]}" --name int
expect 2 "exclude each other" compile "$f" "${o[@]}" --batch 4 --batch-max 8
expect 2 "--batch must be at least 1" compile "$f" "${o[@]}" --batch 0
expect 2 "exclude each other" compile "$f" "${o[@]}" --embed-weights --weights-file
expect 1 "nosuch.safetensors" compile "$f" "${o[@]}" --weights "$t/nosuch.safetensors"
"$MODELC" init examples/fashion_cnn.mdl -o "$t/cnn.safetensors" > /dev/null || fail "modelc init"
expect 1 "is not a parameter of model 'fashion_mlp'" compile "$f" "${o[@]}" --weights "$t/cnn.safetensors"
"$MODELC" init "$f" -o "$t/w.safetensors" > /dev/null || fail "modelc init"
expect 1 "this LLVM has no such target" compile "$f" "${o[@]}" --target nosuch-linux-gnu
expect 1 "--cpu nosuchcpu: not a CPU of target" compile "$f" "${o[@]}" --cpu nosuchcpu
expect 1 "--cpu znver3: not a CPU of target aarch64" compile "$f" "${o[@]}" --target aarch64-linux-gnu --cpu znver3
printf 'model nolo\ninput x: f32[N, 3]\noutput y = x * 2\n' > "$t/noloss.mdl"
expect 1 "has no loss, so it has no train_step function" compile "$t/noloss.mdl" "${o[@]}" --fn train_step
[ ! -e "$t/m.o" ] || fail "a failed compile left an object"

# The compiled object's own errors.
"$MODELC" compile "$f" "${o[@]}" --weights "$t/w.safetensors" --batch-max 32 > /dev/null || fail "compile"
aot_build "$t/m.o" "$t/m.h" fashion_mlp "$t/drv" || fail "build"
"$t/drv" run predict 32 || fail "batch 32 of --batch-max 32 fails"
"$t/drv" run predict 33 2> "$t/err" && fail "batch 33 above --batch-max 32 was accepted"
grep -q "batch 33 is outside 0..32" "$t/err" || fail "unclear batch error: $(cat "$t/err")"
"$MODELC" compile "$f" "${o[@]}" --batch 8 > /dev/null || fail "compile --batch 8"
aot_build "$t/m.o" "$t/m.h" fashion_mlp "$t/drv8" || fail "build --batch 8"
"$t/drv8" run predict 7 2> "$t/err" && fail "batch 7 of --batch 8 was accepted"
grep -q "the batch is 7, but the model was compiled for batch 8" "$t/err" || fail "unclear fixed batch error: $(cat "$t/err")"
"$MODELC" compile "$f" "${o[@]}" --weights-file --fn train_step > /dev/null || fail "compile --weights-file"
aot_build "$t/m.o" "$t/m.h" fashion_mlp "$t/drvf" || fail "build --weights-file"
"$t/drvf" run train_step 4 "$t/cnn.safetensors" 2> "$t/err" && fail "the weights of another model were accepted"
grep -q "cnn.safetensors: tensor 'dense.kernel' does not match the compiled model, which expects f32\[784,256\]" "$t/err" ||
    fail "unclear weights error: $(cat "$t/err")"
printf 'model other\ninput x: f32[N, 3]\nparam w: f32[3] = ones\noutput y = x * w\n' > "$t/other.mdl"
"$MODELC" init "$t/other.mdl" -o "$t/other.safetensors" > /dev/null || fail "modelc init other"
"$t/drvf" run train_step 4 "$t/other.safetensors" 2> "$t/err" && fail "the weights of another model were accepted"
grep -q "other.safetensors: parameter 'dense.kernel' is missing" "$t/err" || fail "unclear missing tensor error: $(cat "$t/err")"
"$t/drvf" run train_step 4 "$t/nosuch.safetensors" 2> "$t/err" && fail "a missing weights file was accepted"
grep -q "nosuch.safetensors: No such file" "$t/err" || fail "unclear missing file error: $(cat "$t/err")"
sed 's/dense(h, 128/dense(h, 64/' "$f" > "$t/narrow.mdl"
"$MODELC" init "$t/narrow.mdl" -o "$t/narrow.safetensors" > /dev/null || fail "modelc init narrow"
"$t/drvf" run train_step 4 "$t/narrow.safetensors" 2> "$t/err" && fail "weights of other shapes were accepted"
grep -q "does not match the compiled model, which expects f32\[" "$t/err" || fail "unclear shape error: $(cat "$t/err")"
"$t/drvf" run train_step 4 "$t/w.safetensors" || fail "the model's own weights fail"

# A fixed slice of the batch axis: the compiled batch must reach it, and
# so must every call's.
printf 'model sl\ninput x: f32[N, 3]\noutput y = x[1:3] * 2\n' > "$t/sl.mdl"
expect 1 "this slice needs a batch of at least 3, the batch is 2" compile "$t/sl.mdl" -o "$t/sl.o" --header "$t/sl.h" --batch 2
"$MODELC" compile "$t/sl.mdl" -o "$t/sl.o" --header "$t/sl.h" --batch-max 8 > /dev/null || fail "compile sl"
grep -q "n must be at least 3" "$t/sl.h" || fail "the header does not give the smallest batch"
aot_build "$t/sl.o" "$t/sl.h" sl "$t/drvsl" || fail "build sl"
"$t/drvsl" run predict 3 || fail "batch 3 of the slicing model fails"
"$t/drvsl" run predict 2 2> "$t/err" && fail "batch 2 below the slice was accepted"
grep -q "batch 2 is outside 3..8" "$t/err" || fail "unclear slice error: $(cat "$t/err")"

# An index outside the gathered axis at run time: the call fails with
# the message, no crash.
printf 'model ga\ninput x: f32[N, 2]\nparam t: f32[3, 4] = ones\noutput y = gather(t, x * 0 + 7)\n' > "$t/ga.mdl"
"$MODELC" compile "$t/ga.mdl" -o "$t/ga.o" --header "$t/ga.h" --batch-max 4 > /dev/null || fail "compile ga"
aot_build "$t/ga.o" "$t/ga.h" ga "$t/drvga" || fail "build ga"
"$t/drvga" run predict 2 2> "$t/err" && fail "an index outside the table was accepted"
grep -q "predict: index 7 is not an integer in \[0, 3), the range of the gathered axis" "$t/err" ||
    fail "unclear gather error: $(cat "$t/err")"

# Other CPUs and targets: objects llvm-objdump reads.
objdump=$(command -v llvm-objdump-19 || command -v "$(dirname "$FILECHECK")/llvm-objdump" || command -v llvm-objdump) ||
    fail "no llvm-objdump"
"$MODELC" compile "$f" -o "$t/v2.o" --header "$t/v2.h" --target x86_64-linux-gnu --cpu x86-64-v2 > "$t/out" ||
    fail "compile for x86-64-v2"
"$objdump" -d "$t/v2.o" > "$t/v2.dis" || fail "llvm-objdump rejects the x86-64-v2 object"
grep -q "fashion_mlp__predict_entry" "$t/v2.dis" || fail "no entry in the x86-64-v2 object"
grep -q "zmm" "$t/v2.dis" && fail "the x86-64-v2 object uses AVX-512"
if "$MODELC" compile "$f" -o "$t/a64.o" --header "$t/a64.h" --target aarch64-linux-gnu --cpu cortex-a72 > "$t/out" 2> "$t/err"; then
    grep -q "aarch64-unknown-linux-gnu" "$t/out" || fail "no target in the summary: $(cat "$t/out")"
    "$objdump" -d "$t/a64.o" > "$t/a64.dis" || fail "llvm-objdump rejects the aarch64 object"
    grep -q "file format elf64-littleaarch64" "$t/a64.dis" || fail "not an aarch64 object: $(head -3 "$t/a64.dis")"
    grep -q "fashion_mlp__predict_entry" "$t/a64.dis" || fail "no entry in the aarch64 object"
else
    # An LLVM built without AArch64: a clear error.
    grep -q "this LLVM has no such target" "$t/err" || fail "compile for aarch64: $(cat "$t/err")"
    echo "aot_errors: this LLVM has no AArch64 target; skipped its object"
fi
echo "aot_errors: ok"
