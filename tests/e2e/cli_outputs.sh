#!/bin/bash
# Every file or directory a command writes is checked before the work
# starts: a path that cannot be written is an error naming it (exit 1)
# before any compile or training step, not after the first epoch or at
# the end of training.
set -uo pipefail
: "${MODELC:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
m=examples/s3_vanishing/three_layer.mdl
train=(train "$m" --data uniform:64 --epochs 1 --no-test --no-progress --no-warn)
mkdir "$t/dir"
touch "$t/file"
fails=0

refused() { # refused PATH OPTION COMMAND...: exit 1 at once, naming PATH and OPTION
    local path=$1 opt=$2 rc=0
    shift 2
    "$MODELC" "$@" > "$t/out" 2> "$t/err" || rc=$?
    if [ "$rc" -ne 1 ] || [ -s "$t/out" ] || ! grep -qF "$path: error: cannot write: " "$t/err" ||
        ! grep -qF -- "($opt)" "$t/err"; then
        echo "FAIL: modelc $*: exit $rc; stdout: $(head -c 300 "$t/out"); stderr: $(cat "$t/err")"
        fails=$((fails + 1))
    fi
}

refused "$t/no/dir/x.st" --save "${train[@]}" --save "$t/no/dir/x.st"
refused "$t/dir" --save "${train[@]}" --save "$t/dir"
refused "$t/file/x.st" --save "${train[@]}" --save "$t/file/x.st"
refused "$t/no/log.csv" --log "${train[@]}" --log "$t/no/log.csv"
refused "$t/no/such/dir" --plot-dir "${train[@]}" --plot-dir "$t/no/such/dir"
refused "$t/file" --plot-dir "${train[@]}" --plot-dir "$t/file"
refused "$t/no/ir/train_step.ir" --dump-ir "${train[@]}" --dump-ir "$t/no/ir"
refused "$t/no/w.st" -o init "$m" -o "$t/no/w.st"
refused "$t/no/g.st" -o grad "$m" -o "$t/no/g.st"
refused "$t/no/p.svg" --plot stats "$m" --data uniform:8 --plot "$t/no/p.svg"

# predict and eval check before loading weights or data
"$MODELC" init "$m" -o "$t/w.st" > /dev/null || fails=$((fails + 1))
refused "$t/no/y.npy" -o predict "$m" --weights "$t/w.st" --inputs uniform:4 -o "$t/no/y.npy"
refused "$t/no/predict.ir" --dump-ir predict "$m" --weights "$t/w.st" --inputs uniform:4 --classes \
    --dump-ir "$t/no"
refused "$t/no/eval.ir" --dump-ir eval "$m" --weights "$t/w.st" --data uniform:8 --dump-ir "$t/no"

# a plot directory that does not exist yet is made; /dev/null is a log
"$MODELC" "${train[@]}" --plot-dir "$t/dir/new" --log /dev/null > /dev/null 2> "$t/err" ||
    { echo "FAIL: a new --plot-dir or --log /dev/null was refused: $(cat "$t/err")"; fails=$((fails + 1)); }
[ -f "$t/dir/new/curves.svg" ] || { echo "FAIL: no curves in the new --plot-dir"; fails=$((fails + 1)); }

[ "$fails" -eq 0 ] || exit 1
echo "cli_outputs: ok"
