#!/bin/bash
# gather and the embedding layer: symbolic gradients against central differences in f64 with
# ids drawn below the table's rows by modelc gradcheck and grad (several
# seeds), and an id outside the table at run time: an error naming the
# op and its model line from the interpreter and from compiled code
# alike, exit 1, no crash.
set -euo pipefail
: "${MODELC:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
m=tests/e2e/models/gather.mdl
for seed in 1 2 3; do
    "$MODELC" gradcheck "$m" --seed "$seed" > "$t/out" 2>&1 || fail "seed $seed: $(cat "$t/out")"
    grep -q "passed: 3 of 3 parameters match" "$t/out" || fail "seed $seed: $(cat "$t/out")"
    for b in interp jit; do
        "$MODELC" grad "$m" --seed "$seed" --backend "$b" -o "$t/g.st" > "$t/out" 2>&1 ||
            fail "grad $b seed $seed: $(cat "$t/out")"
    done
done
for seed in 1 2; do
    "$MODELC" gradcheck tests/e2e/models/embedding.mdl --seed "$seed" > "$t/out" 2>&1 ||
        fail "embedding seed $seed: $(cat "$t/out")"
    grep -q "passed: 4 of 4 parameters match" "$t/out" || fail "embedding seed $seed: $(cat "$t/out")"
done
# ids up to 49 for a table of 5 rows
"$MODELC" ir --no-loc "$m" > "$t/m.ir"
python3 tests/e2e/jit_tensors.py inputs "$t/m.ir" "$t/in.st" 4 1 50
for b in interp jit; do
    set +e
    "$MODELC" grad "$m" --inputs "$t/in.st" --backend "$b" -o "$t/g.st" > "$t/err" 2>&1
    rc=$?
    set -e
    [ "$rc" = 1 ] || fail "$b: exit $rc: $(cat "$t/err")"
    grep -qE "^$m:7:5: error: gather: index [0-9]+ is not an integer in \[0, 5\), the range of the gathered axis$" \
        "$t/err" || fail "$b: $(cat "$t/err")"
    grep -qF "e = gather(table, ids)" "$t/err" || fail "$b: no source line: $(cat "$t/err")"
done
echo "ok: gather"
