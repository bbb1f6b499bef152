#!/bin/bash
# `modelc compile`: for every example's predict function, the object
# linked with libmodelc-rt and OpenBLAS only (no LLVM) computes the same
# bits as `modelc predict` (the JIT) on the same weights and inputs; the
# header compiles with -Wall -Wextra -Werror -pedantic as C11 and C++17.
set -uo pipefail
fail() { echo "aot_predict: $*"; exit 1; }
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
. tests/aot/build.sh

for f in examples/*.mdl examples/*/*.mdl; do
    name=${f#examples/} # the folder too: several examples are model.mdl
    name=${name%.mdl}
    name=${name//[^A-Za-z0-9_]/_}
    d="$t/$name"
    mkdir -p "$d/out"
    "$MODELC" init "$f" -o "$d/w.safetensors" --seed 3 > /dev/null || fail "$f: modelc init"
    "$MODELC" compile "$f" --weights "$d/w.safetensors" -o "$d/m.o" --header "$d/m.h" --name "m_$name" \
        --batch-max 16 > "$d/log" 2>&1 || { cat "$d/log"; fail "$f: modelc compile"; }
    aot_build "$d/m.o" "$d/m.h" "m_$name" "$d/drv" || fail "$f: cannot build the program"
    "$d/drv" predict 7 5 "$d/out" || fail "$f: the compiled predict failed"
    n=0
    for bin in "$d"/out/*.bin; do
        v=$(basename "${bin%.bin}")
        "$MODELC" predict "$f" --weights "$d/w.safetensors" --inputs "$d/out/inputs.safetensors" \
            -o "$d/$v.npy" --value "$v" 2> "$d/err" || { cat "$d/err"; fail "$f: modelc predict"; }
        tail -c "$(stat -c %s "$bin")" "$d/$v.npy" | cmp -s - "$bin" ||
            fail "$f: output '$v' of the compiled object differs from modelc predict's"
        n=$((n + 1))
    done
    [ "$n" -ge 1 ] || fail "$f: no outputs"
done

# The eval function's loss and metrics equal modelc eval's on the same batch.
for f in examples/fashion_mlp.mdl examples/fashion_cnn_bn.mdl; do
    d="$t/eval_$(basename "${f%.mdl}")"
    mkdir -p "$d/out"
    "$MODELC" init "$f" -o "$d/w.safetensors" --seed 4 > /dev/null || fail "$f: modelc init"
    "$MODELC" compile "$f" --weights "$d/w.safetensors" -o "$d/m.o" --header "$d/m.h" --name m --fn eval \
        --batch-max 16 > /dev/null || fail "$f: modelc compile --fn eval"
    aot_build "$d/m.o" "$d/m.h" m "$d/drv" || fail "$f: cannot build the eval program"
    "$d/drv" eval 7 9 "$d/out" || fail "$f: the compiled eval failed"
    "$MODELC" eval "$f" --weights "$d/w.safetensors" --data "$d/out/inputs.safetensors" --batch 7 --json \
        > "$d/jit.json" || fail "$f: modelc eval"
    python3 - "$d" <<'PY' || fail "$f: eval differs from modelc eval"
import json, struct, sys, glob, os
d = sys.argv[1]
jit = json.load(open(d + "/jit.json"))
n = 0
for b in glob.glob(d + "/out/*.bin"):
    name = os.path.basename(b)[:-4]
    if name not in jit:
        continue  # an output value, not a loss or metric
    n += 1
    (v,) = struct.unpack("<f", open(b, "rb").read())
    if "%.9g" % v != "%.9g" % jit[name]:
        sys.exit("%s: compiled %.9g, modelc eval %.9g" % (name, v, jit[name]))
if n != 2:
    sys.exit("expected a loss and a metric, compared %d values" % n)
PY
done

# The program needs no LLVM at run time.
last="$t/$name/drv"
ldd "$last" > "$t/ldd" || fail "ldd $last"
grep -qi llvm "$t/ldd" && fail "$last is linked with LLVM: $(cat "$t/ldd")"
grep -q libmodelc-rt "$t/ldd" || fail "$last is not linked with libmodelc-rt"

# The header of a predict + eval + train_step object compiles on its own,
# strictly, as C11 and as C++17; the fixed-batch form too.
for b in "--batch-max 64" "--batch 32"; do
    # shellcheck disable=SC2086
    "$MODELC" compile examples/fashion_cnn_bn.mdl -o "$t/h.o" --header "$t/h.h" --fn predict,eval,train_step \
        $b > /dev/null || fail "compile of fashion_cnn_bn with $b"
    printf '#include "h.h"\n#include "h.h"\nint main(void) { return fashion_cnn_bn_init(0, 0, 0) ? 0 : 1; }\n' > "$t/use.c"
    cc -std=c11 -Wall -Wextra -Werror -pedantic -c "$t/use.c" -o "$t/use.o" -I"$t" ||
        fail "the header does not compile as C11 ($b)"
    if command -v c++ > /dev/null; then
        cp "$t/use.c" "$t/use.cc"
        c++ -std=c++17 -Wall -Wextra -Werror -pedantic -c "$t/use.cc" -o "$t/use_cc.o" -I"$t" ||
            fail "the header does not compile as C++17 ($b)"
    fi
done
grep -q 'FASHION_CNN_BN_BATCH 32' "$t/h.h" || fail "the fixed batch is not in the header"
grep -q 'static inline int fashion_cnn_bn_train_step(fashion_cnn_bn_ctx \*ctx,' "$t/h.h" ||
    fail "no train_step function in the header"
echo "aot_predict: ok"
