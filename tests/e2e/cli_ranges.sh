#!/bin/bash
# Every out-of-range option value is a usage error (exit 2) whose message
# names the option; no value stands for "not given" (-1 is not the
# model's default, the largest seed is a seed).
set -uo pipefail
: "${MODELC:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
m=examples/fashion_mlp.mdl
fails=0

usage() { # usage COMMAND OPTION VALUE: exit 2 and a message naming --OPTION
    local cmd=$1 opt=$2 val=$3 rc=0
    shift 3
    "$MODELC" "$cmd" "$m" "--$opt=$val" "$@" > "$t/out" 2> "$t/err" || rc=$?
    if [ "$rc" -ne 2 ] || ! grep -q "^modelc $cmd: --$opt" "$t/err"; then
        echo "FAIL: modelc $cmd --$opt=$val: exit $rc, not a usage error naming --$opt:"
        cat "$t/err"
        fails=$((fails + 1))
    fi
}

for v in -1 0; do
    usage train epochs $v
    usage train batch $v
    usage train lr $v
    usage train limit $v
    usage eval batch $v --weights w.st
    usage eval limit $v --weights w.st
    usage stats batch $v
    usage stats batches $v
    usage stats limit $v
done
usage train lr nan
usage train lr inf
usage train threads -1
usage train val-split 1
usage train val-split -0.5
usage train watch -1
usage eval threads -1 --weights w.st
usage eval warmup -1 --weights w.st

# The largest seed is a seed, not "unset".
max=18446744073709551615
"$MODELC" init "$m" -o "$t/w.st" --seed $max > "$t/out" || fails=$((fails + 1))
grep -q "(seed $max)" "$t/out" || { echo "FAIL: init --seed $max: $(cat "$t/out")"; fails=$((fails + 1)); }
"$MODELC" gradcheck examples/s3_vanishing/three_layer.mdl --seed $max --samples 2 > "$t/out" ||
    { echo "FAIL: gradcheck --seed $max"; fails=$((fails + 1)); }
grep -q "seed $max," "$t/out" || { echo "FAIL: gradcheck --seed $max: $(head -1 "$t/out")"; fails=$((fails + 1)); }

[ "$fails" -eq 0 ] || exit 1
echo "cli_ranges: ok"
