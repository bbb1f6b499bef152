#!/usr/bin/env bash
# `modelc gradcheck` across kinks: with a step large enough that central
# differences cross the kinks of relu, max pooling, abs, clip, where on a
# comparison and max over an axis (tests/e2e/models/kinks.mdl), every
# crossing is found, named with the op and its model line, checked again
# with a smaller step and never reported as a mismatch; the kinks column
# counts the listed crossings.
set -u
: "${MODELC:?MODELC must point at the modelc binary}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
M=tests/e2e/models/kinks.mdl

"$MODELC" gradcheck $M --eps 3e-2 --samples 32 >"$T/a" 2>"$T/err" ||
    fail "gradcheck exited $?: $(cat "$T/a" "$T/err")"
grep -qx "passed: 6 of 6 parameters match" "$T/a" || fail "summary: $(cat "$T/a")"
n=$(sed -n 's/^kink crossings (a piecewise op changed branch between w - eps and w + eps): \([0-9]*\)$/\1/p' "$T/a")
[ -n "$n" ] && [ "$n" -gt 10 ] || fail "too few kink crossings: $(cat "$T/a")"
[ "$(grep -c '^  ' "$T/a")" -eq "$n" ] || fail "$n crossings but not as many lines: $(cat "$T/a")"
sum=$(awk '$2 ~ /^\[/ && NF == 9 { s += $4 } END { print s }' "$T/a")
[ "$sum" -eq "$n" ] || fail "the kinks column sums to $sum, not $n: $(cat "$T/a")"
for at in "relu at $M:7:5" "max_pool2d at $M:8:5" "abs at $M:11:5" "gt at $M:11:43" "reduce_max at $M:13:8"; do
    grep -qE "^  [a-z_0-9.]+\[[0-9]+\] +$at +central difference with eps 0\.00[0-9]*: ok$" "$T/a" ||
        fail "no crossing of $at: $(cat "$T/a")"
done
grep -qE "(minimum|maximum) at $M:11:14 " "$T/a" || fail "no crossing of clip: $(cat "$T/a")"
grep -q "MISMATCH" "$T/a" && fail "a kink crossing was reported as a mismatch: $(cat "$T/a")"
# the sampled elements are distinct (32 of conv2d.kernel's 72)
dups=$(awk '/^  / { print $1 }' "$T/a" | sort | uniq -d)
[ -z "$dups" ] || fail "elements checked twice: $dups"

# at the default step no element of this batch crosses a kink
"$MODELC" gradcheck $M >"$T/b" 2>/dev/null || fail "default eps: $(cat "$T/b")"
grep -q "kink crossings" "$T/b" && fail "crossings at eps 1e-6: $(cat "$T/b")"
echo "gradcheck_kinks: $n crossings ok"
