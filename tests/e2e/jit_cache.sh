#!/bin/bash
# The JIT object cache: a cold compile fills $XDG_CACHE_HOME/modelc, a warm
# one runs no LLVM optimisation and trains to the same bytes, damaged
# entries (truncated, flipped byte, garbage) are compiled again and
# replaced by the same object, --no-cache neither reads nor writes it, and
# two concurrent cold runs leave only whole entries.
set -euo pipefail
: "${MODELC:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
export XDG_CACHE_HOME="$t/cache"
dir="$t/cache/modelc"
m=tests/e2e/models/tiny_bn.mdl
common=(--limit 300 --batch 100 --epochs 1 --no-test --no-progress --seed 7 --threads 1 --json)

run() { # run NAME [flags]: checkpoint in $t/NAME.st, timings in $t/NAME.time
    local name=$1
    shift
    "$MODELC" train "$m" "${common[@]}" --time-passes --save "$t/$name.st" "$@" >"$t/$name.log" 2>"$t/$name.time"
}
optimise_ms() { awk '/llvm: optimise IR/ {print $1}' "$1"; }

# --no-cache writes nothing
run nocache --no-cache
test ! -e "$dir"

# cold: LLVM runs, entries appear
run cold
ls "$dir"/*.o >/dev/null
test "$(optimise_ms "$t/cold.time")" != "0.000"
mkdir "$t/orig"
cp "$dir"/*.o "$t/orig/"
ls "$dir" | grep -v '\.o$' && { echo "stray files in the cache"; exit 1; }

# warm: every part comes from the cache, same trained parameters
run warm
test "$(optimise_ms "$t/warm.time")" = "0.000"
cmp "$t/cold.st" "$t/warm.st"
cmp "$t/nocache.st" "$t/warm.st"

# damaged entries are detected, compiled again and replaced
damage() { # damage HOW FILE
    case $1 in
    truncate) head -c 100 "$2" >"$2.x" && mv "$2.x" "$2" ;;
    flip) printf '\x5a' | dd of="$2" bs=1 seek=200 conv=notrunc status=none ;;
    garbage) head -c 4000 /dev/urandom >"$2" ;;
    empty) : >"$2" ;;
    esac
}
for how in truncate flip garbage empty; do
    for f in "$dir"/*.o; do damage "$how" "$f"; done
    run "$how"
    test "$(optimise_ms "$t/$how.time")" != "0.000"
    cmp "$t/cold.st" "$t/$how.st"
    for f in "$t"/orig/*.o; do cmp "$f" "$dir/$(basename "$f")"; done
done

# concurrent cold runs: both succeed, the cache holds only whole entries
rm -rf "$dir"
run par1 & p1=$!
run par2 & p2=$!
wait $p1
wait $p2
cmp "$t/cold.st" "$t/par1.st"
cmp "$t/cold.st" "$t/par2.st"
for f in "$t"/orig/*.o; do cmp "$f" "$dir/$(basename "$f")"; done
test "$(ls "$dir" | wc -l)" = "$(ls "$t/orig" | wc -l)"

# an unwritable cache directory is not an error
rm -rf "$dir"
mkdir -p "$t/cache"
: >"$dir" # a file where the directory should be
run unwritable
cmp "$t/cold.st" "$t/unwritable.st"
echo "jit cache: ok"
