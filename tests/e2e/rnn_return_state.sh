#!/bin/bash
# return_state=true on lstm, gru and simple_rnn (Keras: the output, then
# the final h, and c for lstm), bound by `a, b, c = layer(...)`: the
# final h equals the last step of the sequence, the states feed other
# layers and initial_state; symbolic gradients against central
# differences in f64, the JIT against the interpreter, the IR round
# trip; and the located errors.
set -euo pipefail
: "${MODELC:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cat > "$t/m.mdl" <<'MDL'
model states
input x: f32[N, 5, 3]
input y: i32[N]
seq, h, c = lstm(x, 4, return_sequences=true, return_state=true)
out, h2 = gru(seq, 3, return_state=true, initial_state=h[:, 0:3])
last, h3 = simple_rnn(x, 2, return_state=true, go_backwards=true)
z = concat([h, c, out, h2, last, h3], axis=1)
loss = sparse_categorical_crossentropy(y, dense(z, 3), from_logits=true)
output hgap = max(abs(h - seq[:, 4]))
output ogap = max(abs(out - h2))
output cnorm = max(abs(c))
MDL
"$MODELC" check "$t/m.mdl" > "$t/out" 2>&1 || fail "check: $(cat "$t/out")"
"$MODELC" ir "$t/m.mdl" --no-loc > "$t/m.ir"
grep -q '%c = result(%lstm) {index=1} : f32\[N,4\]' "$t/m.ir" || fail "no c state: $(cat "$t/m.ir")"
"$MODELC" ir "$t/m.ir" --no-loc > "$t/m2.ir"
cmp "$t/m.ir" "$t/m2.ir" || fail "IR round trip differs"
for seed in 1 2; do
    "$MODELC" gradcheck "$t/m.mdl" --seed $seed > "$t/gc" 2>&1 || fail "gradcheck: $(cat "$t/gc")"
    grep -q "passed: 11 of 11 parameters match" "$t/gc" || fail "gradcheck: $(cat "$t/gc")"
done
"$MODELC" grad "$t/m.mdl" --backend interp -o "$t/gi.safetensors" > /dev/null
"$MODELC" grad "$t/m.mdl" --backend jit -o "$t/gj.safetensors" > /dev/null
python3 tests/e2e/jit_compare.py "$t/gi.safetensors" "$t/gj.safetensors" || fail "JIT gradients differ"
# the model's own leaves: the loop bodies' inputs are indented deeper
"$MODELC" ir "$t/m.mdl" --no-loc --mode=infer | grep -E '^  %' > "$t/inf.ir"
python3 tests/e2e/jit_tensors.py params "$t/inf.ir" "$t/w.safetensors" 1
python3 tests/e2e/jit_tensors.py inputs "$t/inf.ir" "$t/x.safetensors" 6 2
"$MODELC" predict "$t/m.mdl" --weights "$t/w.safetensors" --inputs "$t/x.safetensors" -o "$t/hgap.csv" --value hgap
"$MODELC" predict "$t/m.mdl" --weights "$t/w.safetensors" --inputs "$t/x.safetensors" -o "$t/ogap.csv" --value ogap
"$MODELC" predict "$t/m.mdl" --weights "$t/w.safetensors" --inputs "$t/x.safetensors" -o "$t/cn.csv" --value cnorm
[ "$(cat "$t/hgap.csv")" = 0 ] || fail "final h is not the last output: $(cat "$t/hgap.csv")"
[ "$(cat "$t/ogap.csv")" = 0 ] || fail "gru: output and h differ: $(cat "$t/ogap.csv")"
python3 -c "import sys; sys.exit(not float(open(sys.argv[1]).read()) > 0)" "$t/cn.csv" || fail "c is zero"

. tests/e2e/lib/check.sh
bad() { # statement, expected message with its position
    check_fails "$(printf 'input x: f32[N, 5, 3]\n%s\nloss = mean(x)' "$1")" "$2"
}
bad 'h = lstm(x, 4, return_state=true)' \
    "bad.mdl:2:29: error: return_state=true gives 3 values: assign them to as many names, e.g. 'seq, h, c = lstm(...)'"
bad 'h = dense(gru(x, 4, return_state=true), 2)' "bad.mdl:2:34: error: return_state=true gives 2 values"
bad 'a, b = lstm(x, 4)' \
    "bad.mdl:2:8: error: assigning 2 names needs a call that gives 2 values (lstm, gru or simple_rnn with return_state=true)"
bad 'a, b = lstm(x, 4, return_state=true)' \
    "bad.mdl:2:8: error: this call gives 3 values (the output and the final states h and c), not 2"
bad 'a, b, c = gru(x, 4, return_state=true)' \
    "bad.mdl:2:11: error: this call gives 2 values (the output and the final state h), not 3"
bad 'a, a = gru(x, 4, return_state=true)' "bad.mdl:2:4: error: 'a' is assigned twice in one statement"
bad 'a, x = gru(x, 4, return_state=true)' "bad.mdl:2:4: error: cannot assign to input 'x'; use a new name"
bad 'a, = gru(x, 4, return_state=true)' "bad.mdl:2:4: error: expected a name after ',', found '='"
bad 'a, b = 2' "bad.mdl:2:8: error: assigning 2 names needs a call"
echo "ok: rnn_return_state"
