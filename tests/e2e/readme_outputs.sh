#!/bin/bash
# The outputs shown in README.md and examples/*/README.md whose commands
# run no JIT code (IR text, check, params, diagnostics, the interpreter)
# are what the current build prints: scripts/readme-outputs.py --check
# (`--update` regenerates every marked block, JIT runs included). Blocks
# marked slow (minutes of interpreter time) are readme_outputs_slow.sh's. A
# changed line in a checked block, and a malformed marker, are caught.
set -euo pipefail
: "${MODELC:?MODELC not set}"
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

python3 scripts/readme-outputs.py --check --skip-slow

# A hand edit of a checked block drifts, named by file and line.
sed 's/^examples\/s0_reparam\/model2.mdl: ok (2 parameters, 3600 weights)$/&x/' \
  examples/s0_reparam/README.md > "$tmp/README.md"
cmp -s examples/s0_reparam/README.md "$tmp/README.md" && fail "the edit did not apply"
line=$(grep -n '^examples/s0_reparam/model2.mdl: ok .*x$' "$tmp/README.md" | cut -d: -f1)
rc=0
python3 scripts/readme-outputs.py --check --match "modelc check examples/s0_reparam" "$tmp/README.md" \
  > "$tmp/out" 2>&1 || rc=$?
cat "$tmp/out"
[ $rc -eq 1 ] || fail "an edited block: expected exit 1, got $rc"
grep -q "^$tmp/README.md:$line: shown output differs from the current build (modelc check examples/s0_reparam/" \
  "$tmp/out" || fail "no drift message naming the file and line $line"
grep -qx -- "-examples/s0_reparam/model2.mdl: ok (2 parameters, 3600 weights)x" "$tmp/out" || fail "no diff line"
grep -q "^@@ -$((line - 1)),3 +1,3 @@" "$tmp/out" || fail "the hunk does not give the file's line numbers"

# Masked differences (durations) are not drift; other digits are.
printf '<!-- output checked\nrun: echo "1/1 - 3.5s 12.0ms/step - loss: 0.5"\n-->\n```\n1/1 - 9.9s 1.1ms/step - loss: 0.5\n```\n' \
  > "$tmp/mask.md"
python3 scripts/readme-outputs.py --check "$tmp/mask.md" || fail "a duration counted as drift"
sed -i 's/loss: 0.5$/loss: 0.6/' "$tmp/mask.md"
rc=0
python3 scripts/readme-outputs.py --check "$tmp/mask.md" > "$tmp/out" 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "a changed loss: expected exit 1, got $rc"
sed -i 's/^-->$/mask: loss: [0-9.]+\n-->/' "$tmp/mask.md"
python3 scripts/readme-outputs.py --check "$tmp/mask.md" || fail "a block's own mask: loss still compared"

# --update rewrites the block; a marker it cannot read is exit 2.
python3 scripts/readme-outputs.py --update --match "modelc check examples/s0_reparam" "$tmp/README.md" > /dev/null
cmp "$tmp/README.md" examples/s0_reparam/README.md || fail "--update did not restore the block"
printf '<!-- output sometimes\n$ modelc check x.mdl\n-->\n```\n```\n' > "$tmp/bad.md"
rc=0
python3 scripts/readme-outputs.py --check "$tmp/bad.md" 2> "$tmp/err" || rc=$?
[ $rc -eq 2 ] || fail "a malformed marker: expected exit 2, got $rc"
grep -q "bad.md:1: a marker starts with" "$tmp/err" || fail "malformed marker message"
echo "README outputs match the build"
