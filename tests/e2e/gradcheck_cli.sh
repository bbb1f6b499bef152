#!/usr/bin/env bash
# `modelc gradcheck`: the table it prints, that it fails (exit 1, status
# MISMATCH) when the tolerance cannot be met, that the same seed gives the
# same table, and its errors.
set -u
: "${MODELC:?MODELC must point at the modelc binary}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
M=examples/s3_vanishing/two_layer.mdl

"$MODELC" gradcheck $M --seed 4 >"$T/a" 2>"$T/err" || fail "gradcheck exited $?: $(cat "$T/a" "$T/err")"
head -1 "$T/a" | grep -qE '^gradcheck s3_two_layer: f64, batch 4, seed 4, eps 1e-06, atol 1e-05, rtol 0.001; loss [0-9.e+-]+$' ||
    fail "header: $(head -1 "$T/a")"
sed -n 2p "$T/a" | grep -qE '^parameter +shape +checked +kinks +skipped +mismatched +max abs err +max rel err +status$' ||
    fail "columns: $(sed -n 2p "$T/a")"
grep -qE '^dense.kernel +\[1,16\] +16 +0 +0 +0 +[0-9.e+-]+ +[0-9.e+-]+  ok$' "$T/a" || fail "dense.kernel row: $(cat "$T/a")"
grep -qE '^dense_1.bias +\[1\] +1 +0 +0 +0 +[0-9.e+-]+ +[0-9.e+-]+  ok$' "$T/a" || fail "dense_1.bias row: $(cat "$T/a")"
grep -qx "passed: 4 of 4 parameters match" "$T/a" || fail "summary: $(cat "$T/a")"
"$MODELC" gradcheck $M --seed 4 >"$T/b" 2>/dev/null || fail "second run"
cmp -s "$T/a" "$T/b" || fail "the same seed gave a different table"

# elements are sampled: at most --samples per parameter
"$MODELC" gradcheck $M --samples 3 >"$T/c" 2>/dev/null || fail "--samples 3"
grep -qE '^dense.kernel +\[1,16\] +3 ' "$T/c" || fail "--samples 3: $(cat "$T/c")"

# no finite-difference estimate is exact: zero tolerance must fail
"$MODELC" gradcheck $M --atol 0 --rtol 0 >"$T/d" 2>/dev/null
[ $? -eq 1 ] || fail "zero tolerance did not exit 1"
grep -qE '^dense.kernel +\[1,16\] +16 +0 +0 +[1-9][0-9]* .*MISMATCH$' "$T/d" || fail "no MISMATCH row: $(cat "$T/d")"
grep -qx "FAILED: 0 of 4 parameters match" "$T/d" || fail "summary: $(cat "$T/d")"

# errors
cat >"$T/noloss.mdl" <<'MDL'
model noloss
input x: f32[N, 2]
output y = dense(x, 3)
MDL
"$MODELC" gradcheck "$T/noloss.mdl" >/dev/null 2>"$T/err"
[ $? -eq 1 ] || fail "a model without a loss did not exit 1"
grep -qF "error: model 'noloss' has no loss to differentiate" "$T/err" || fail "$(cat "$T/err")"
"$MODELC" gradcheck $M --eps 0 2>"$T/err"
[ $? -eq 2 ] || fail "--eps 0 is not a usage error"
grep -qF -- "--eps must be a positive number" "$T/err" || fail "$(cat "$T/err")"
"$MODELC" gradcheck $M --atol -1 2>/dev/null
[ $? -eq 2 ] || fail "--atol -1 is not a usage error"
"$MODELC" gradcheck $M --samples 0 2>/dev/null
[ $? -eq 2 ] || fail "--samples 0 is not a usage error"
"$MODELC" gradcheck "$T/missing.mdl" 2>/dev/null
[ $? -eq 1 ] || fail "a missing file did not exit 1"
echo "gradcheck_cli: ok"
