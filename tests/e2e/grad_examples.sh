#!/usr/bin/env bash
# `modelc grad` on every example model: a finite loss, one gradient per
# trainable parameter (frozen ones and batchnorm statistics get none),
# each named grad.<parameter> with the parameter's dtype and shape, in a
# file an independent reader accepts.
set -u
: "${MODELC:?MODELC must point at the modelc binary}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
have_py=0
command -v python3 >/dev/null 2>&1 && have_py=1

n=0
while IFS= read -r f; do
    n=$((n + 1))
    "$MODELC" grad "$f" --batch 2 -o "$T/g.st" >"$T/out" 2>"$T/err" || fail "$f: grad exited $?: $(cat "$T/err")"
    grep -qE '^loss: -?[0-9]+(\.[0-9]+)?(e[-+][0-9]+)?$' "$T/out" || fail "$f: no finite loss: $(cat "$T/out")"
    ngrad=$(sed -n 's/^wrote \([0-9]*\) gradients\{0,1\} to .*/\1/p' "$T/out")
    [ -n "$ngrad" ] && [ "$ngrad" -gt 0 ] || fail "$f: $(cat "$T/out")"
    "$MODELC" params "$f" >"$T/params" 2>&1 || fail "$f: modelc params failed"
    [ $have_py = 1 ] || continue
    python3 - "$f" "$T/g.st" "$ngrad" "$T/params" <<'PYEOF' || exit 1
import json, struct, sys
model, path, ngrad, params = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
blob = open(path, "rb").read()
(n,) = struct.unpack("<Q", blob[:8])
header = json.loads(blob[8:8 + n])
header.pop("__metadata__", None)
# `modelc params` lists: name shape dtype initializer... status count
want = {}
for line in open(params):
    f = line.split()
    if len(f) >= 6 and f[-2] == "trainable":
        want["grad." + f[0]] = (f[2].upper(), f[1])
got = {k: (v["dtype"], "[" + ",".join(map(str, v["shape"])) + "]") for k, v in header.items()}
if got != want or len(got) != ngrad:
    sys.exit("FAIL: %s: gradients %r, trainable parameters %r" % (model, got, want))
PYEOF
done < <(find examples -name '*.mdl' | sort)
[ $n -gt 0 ] || fail "no example models found"
# the frozen base of S4 gets no gradients
"$MODELC" grad examples/s4_frozen_bn/model.mdl --batch 2 -o "$T/s4.st" >"$T/out" 2>&1 || fail "s4"
grep -qx "wrote 4 gradients to $T/s4.st" "$T/out" || fail "s4: $(cat "$T/out")"
echo "grad_examples: $n models ok"
