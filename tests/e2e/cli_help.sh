#!/bin/bash
# Help and "did you mean": `modelc help COMMAND` is the command's --help,
# an unknown command or option suggests the closest one, and stats takes
# --no-warn as train does.
set -uo pipefail
: "${MODELC:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

cmds=$("$MODELC" --help | sed -n 's/^  \([a-z]\{1,\}\) .*/\1/p' | grep -v '^version$')
[ -n "$cmds" ] || fail "no commands in modelc --help"
for c in $cmds; do
    "$MODELC" help "$c" > "$t/help" 2> "$t/err" || fail "modelc help $c exited $?"
    "$MODELC" "$c" --help > "$t/own" || fail "modelc $c --help exited $?"
    cmp -s "$t/help" "$t/own" || fail "modelc help $c is not modelc $c --help: $(head -1 "$t/help")"
    grep -q "^usage: modelc $c " "$t/help" || fail "modelc help $c: $(head -1 "$t/help")"
done
"$MODELC" help > "$t/help" && "$MODELC" --help > "$t/own" && cmp -s "$t/help" "$t/own" ||
    fail "modelc help is not modelc --help"

suggests() { # suggests EXPECTED ARGS...: exit 2 and EXPECTED on stderr
    local want=$1 rc=0
    shift
    "$MODELC" "$@" > /dev/null 2> "$t/err" || rc=$?
    [ "$rc" -eq 2 ] && grep -qF -- "$want" "$t/err" || fail "modelc $*: exit $rc: $(head -1 "$t/err")"
}
suggests "modelc: unknown command 'trian'; did you mean 'train'?" trian x.mdl
suggests "modelc: unknown command 'trian'; did you mean 'train'?" help trian
suggests "modelc: unknown command 'hlep'; did you mean 'help'?" hlep
suggests "modelc: unknown command 'frobnicate'" frobnicate
suggests "modelc train: unknown option '--nowarn'; did you mean '--no-warn'?" train x.mdl --nowarn
suggests "modelc stats: unknown option '--nowarn'; did you mean '--no-warn'?" stats x.mdl --nowarn
suggests "modelc train: unknown option '--epoch'; did you mean '--epochs'?" train x.mdl --epoch=3
suggests "modelc train: unknown option '-epochs'; did you mean '--epochs'?" train x.mdl -epochs 3
suggests "modelc ir: unknown option '--afterr'; did you mean '--after'?" ir x.mdl --afterr lower
suggests "modelc check: unknown option '--quite'; did you mean '--quiet'?" check x.mdl --quite
suggests "modelc eval: unknown option '--weight'; did you mean '--weights'?" eval x.mdl --weight w.st

# stats --no-warn: the tables without the static warnings
m=examples/s3_vanishing/three_layer.mdl
"$MODELC" stats "$m" --data uniform:8 --batches 1 > /dev/null 2> "$t/err" || fail "stats exited $?"
grep -q "warning:" "$t/err" || fail "stats printed no static warning for $m"
"$MODELC" stats "$m" --data uniform:8 --batches 1 --no-warn > "$t/out" 2> "$t/err" || fail "stats --no-warn exited $?"
[ -s "$t/err" ] && fail "stats --no-warn printed: $(head -1 "$t/err")"
grep -q "^layer " "$t/out" || fail "stats --no-warn printed no table"

[ "$fails" -eq 0 ] || exit 1
echo "cli_help: ok"
