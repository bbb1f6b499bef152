#!/bin/bash
# reshape's -1 absorbs the batch dimension N: exactly (the other
# dimensions hold all of the operand's static elements: reshape(x, [-1,
# 12]) of f32[N,3,4] is f32[N,12]) or with a factor (reshape(x, [-1, 4])
# of f32[N,3,4] is f32[N*3,4], and reshape back with [-1, 3, 4] gives
# f32[N,3,4]). The JIT against the interpreter (predict and gradients,
# f32 and f64, N = 1 and 3, and a batch large enough to split by rows
# over threads), symbolic gradients against central differences in f64,
# the IR text round trip, training on data, and the located errors of
# the reshapes that cannot be and of mixing N with N*k.
set -euo pipefail
: "${MODELC:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cat > "$t/r.mdl" <<'MDL'
model absorb
input x: f32[N, 3, 4]
input y: i32[N]
h = dense(x, 4, activation=tanh)
h = reshape(h, [-1, 12])
logits = dense(h, 5)
loss = sparse_categorical_crossentropy(y, logits, from_logits=true)
output p = logits
MDL
"$MODELC" ir "$t/r.mdl" --no-loc > "$t/r.ir"
grep -q 'reshape(%.*) {shape=\[N,12\]} : f32\[N,12\]' "$t/r.ir" || fail "-1 did not become N: $(cat "$t/r.ir")"
# IR text round trip: the printed graph parses back and prints the same.
"$MODELC" ir "$t/r.ir" --no-loc > "$t/r2.ir"
cmp "$t/r.ir" "$t/r2.ir" || fail "IR round trip differs"
for seed in 1 2; do
    "$MODELC" gradcheck "$t/r.mdl" --seed "$seed" > "$t/out" 2>&1 || fail "gradcheck seed $seed: $(cat "$t/out")"
    grep -q "passed: 4 of 4 parameters match" "$t/out" || fail "gradcheck seed $seed: $(cat "$t/out")"
done
"$MODELC" grad "$t/r.mdl" --backend interp -o "$t/gi.safetensors" > /dev/null
"$MODELC" grad "$t/r.mdl" --backend jit -o "$t/gj.safetensors" > /dev/null
python3 tests/e2e/jit_compare.py "$t/gi.safetensors" "$t/gj.safetensors" || fail "JIT gradients differ"
"$MODELC" ir "$t/r.mdl" --no-loc --mode=infer > "$t/m.ir"
python3 tests/e2e/jit_tensors.py params "$t/m.ir" "$t/w.safetensors" 1
python3 tests/e2e/jit_tensors.py inputs "$t/m.ir" "$t/x.safetensors" 7 2
"$MODELC" predict "$t/r.mdl" --weights "$t/w.safetensors" --inputs "$t/x.safetensors" -o "$t/pi.safetensors" --backend=interp
"$MODELC" predict "$t/r.mdl" --weights "$t/w.safetensors" --inputs "$t/x.safetensors" -o "$t/pj.safetensors" --threads 1
python3 tests/e2e/jit_compare.py "$t/pi.safetensors" "$t/pj.safetensors" || fail "JIT predictions differ"

. tests/e2e/lib/check.sh
bad() { check_fails "$1" "$2"; } # model text, expected message with its position
bad $'input x: f32[N, 3, 4]\noutput y = reshape(x, [4, -1])' \
    "bad.mdl:2:27: error: reshaping f32[N,3,4], this -1 would be the batch dimension N*3, which may only be the first dimension"
bad $'input x: f32[N, 3, 4]\noutput y = reshape(x, [12, -1])' \
    "bad.mdl:2:28: error: reshaping f32[N,3,4], this -1 would be the batch dimension N, which may only be the first dimension"
bad $'input x: f32[N, 3, 4]\noutput y = reshape(x, [-1, 5])' \
    "bad.mdl:2:24: error: cannot infer the -1 dimension when reshaping f32[N,3,4]: it would be N*12/5, not a whole multiple of the batch dimension N"
bad $'input x: f32[3, 4]\noutput y = reshape(x, [-1, 5])' \
    "bad.mdl:2:24: error: cannot infer the -1 dimension when reshaping f32[3,4]: the sizes do not divide"
bad $'input x: f32[N, 5, 6]\ninput b: f32[N, 6]\noutput y = reshape(x, [-1, 6]) + b' \
    "bad.mdl:3:32: error: cannot broadcast f32[N*5,6] and f32[N,6] in add: dimensions N*5 and N differ"
bad $'input x: f32[N, 5, 6]\nh = reshape(x, [-1, 6])\noutput y = reshape(h, [N, 7, 6])' \
    "bad.mdl:3:12: error: cannot reshape f32[N*5,6] to [N,7,6]: element counts differ"
bad $'input x: f32[N, 5, 6]\nh = reshape(x, [-1, 6])\noutput y = concat([h, h], axis=1)' \
    "bad.mdl:3:12: error: concat of f32[N*5,6]: a multiple of the batch dimension N (made by reshape) is not supported here"
bad $'input x: f32[N, 5, 6]\nh = reshape(x, [-1, 6])\noutput y = h[:, 1:3]' \
    "bad.mdl:3:13: error: slice of f32[N*5,6]: a multiple of the batch dimension N (made by reshape) is not supported here"
bad $'input x: f32[N, 3, 4]\noutput y = reshape(x, [-1, 0])' "bad.mdl:2:24: error: cannot infer the -1 dimension when reshaping f32[N,3,4]: the other dimensions hold no elements"

# ---- the time-distributed pattern: [N, T, 6] -> [N*T, 6] -> dense -> [N, T, 4] ----
cat > "$t/td.mdl" <<'MDL'
model td
input x: f32[N, 5, 6]
input y: i32[N, 5]
h = reshape(x, [-1, 6])
h = dense(h, 4, activation=tanh)
z = reshape(h, [-1, 5, 4])
logits = dense(z, 3)
loss = sparse_categorical_crossentropy(y, logits, from_logits=true)
output p = logits
MDL
# ... and a per-timestep loss and metric over [N*T, C] rows, with dropout
cat > "$t/pt.mdl" <<'MDL'
model pt
input x: f32[N, 5, 6]
input y: i32[N, 5]
h = reshape(x, [-1, 6])
h = dense(h, 4, activation=relu)
h = dropout(h, 0.25)
logits = dense(h, 3)
rows = reshape(y, [-1])
loss = sparse_categorical_crossentropy(rows, logits, from_logits=true)
metric acc = accuracy(rows, logits)
output p = reshape(softmax(logits), [-1, 5, 3])
MDL
sed -e 's/f32\[/f64[/' -e 's/^model td/model td64/' "$t/td.mdl" > "$t/td64.mdl"
"$MODELC" ir "$t/td.mdl" --no-loc > "$t/td.ir"
grep -q 'reshape(%x) {shape=\[N\*5,6\]} : f32\[N\*5,6\]' "$t/td.ir" || fail "-1 did not become N*5: $(cat "$t/td.ir")"
grep -q 'reshape(%h.1) {shape=\[N,5,4\]} : f32\[N,5,4\]' "$t/td.ir" || fail "-1 did not become N: $(cat "$t/td.ir")"
for m in td pt; do
    for fn in train_step predict; do
        "$MODELC" ir "$t/$m.mdl" --no-loc --fn "$fn" > "$t/$m.$fn.ir"
        "$MODELC" ir "$t/$m.$fn.ir" --no-loc > "$t/$m.$fn.2.ir"
        cmp "$t/$m.$fn.ir" "$t/$m.$fn.2.ir" || fail "$m $fn: IR round trip differs"
    done
done
grep -q 'f32\[N\*5,4\]' "$t/pt.train_step.ir" || fail "no N*5 in the train step: $(cat "$t/pt.train_step.ir")"
# the mean over N*5 rows divides by 5 N
grep -q 'const -0.2 : f32\[\]' "$t/pt.train_step.ir" || fail "the loss's gradient does not divide by 5 N"
for m in td pt td64; do
    "$MODELC" gradcheck "$t/$m.mdl" --seed 3 > "$t/out" 2>&1 || fail "gradcheck $m: $(cat "$t/out")"
    grep -q "passed: 4 of 4 parameters match" "$t/out" || fail "gradcheck $m: $(cat "$t/out")"
    "$MODELC" ir "$t/$m.mdl" --no-loc --mode=infer > "$t/m.ir"
    python3 tests/e2e/jit_tensors.py params "$t/m.ir" "$t/w.safetensors" 1
    for n in 1 3; do
        "$MODELC" grad "$t/$m.mdl" --batch "$n" --backend interp -o "$t/gi.safetensors" > /dev/null
        "$MODELC" grad "$t/$m.mdl" --batch "$n" --backend jit -o "$t/gj.safetensors" > /dev/null
        python3 tests/e2e/jit_compare.py "$t/gi.safetensors" "$t/gj.safetensors" || fail "$m N=$n: JIT gradients differ"
        python3 tests/e2e/jit_tensors.py inputs "$t/m.ir" "$t/x.safetensors" "$n" 2 3
        "$MODELC" predict "$t/$m.mdl" --weights "$t/w.safetensors" --inputs "$t/x.safetensors" -o "$t/pi.safetensors" --backend=interp
        "$MODELC" predict "$t/$m.mdl" --weights "$t/w.safetensors" --inputs "$t/x.safetensors" -o "$t/pj.safetensors" --threads 2
        python3 tests/e2e/jit_compare.py "$t/pi.safetensors" "$t/pj.safetensors" || fail "$m N=$n: JIT predictions differ"
    done
done
# The memory plan sizes N*5 rows: %h is f32[N*5,4], 240 bytes for N = 3.
"$MODELC" llvm "$t/pt.mdl" --memory-plan --batch 3 > "$t/plan"
grep -Eq '^ +[0-9]+ +240 +\[[0-9,]+\] +%h = fused' "$t/plan" || fail "memory plan: $(cat "$t/plan")"
# A batch whose rows the JIT splits over threads (N*5 rows of 300).
cat > "$t/wide.mdl" <<'MDL'
model wide
input x: f32[N, 5, 300]
h = reshape(x, [-1, 300])
h = dense(h, 300, activation=tanh)
output p = sum(reshape(h, [-1, 5, 300]), axis=1)
MDL
"$MODELC" ir "$t/wide.mdl" --no-loc --mode=infer > "$t/m.ir"
python3 tests/e2e/jit_tensors.py params "$t/m.ir" "$t/w.safetensors" 1
python3 tests/e2e/jit_tensors.py inputs "$t/m.ir" "$t/x.safetensors" 67 2
"$MODELC" predict "$t/wide.mdl" --weights "$t/w.safetensors" --inputs "$t/x.safetensors" -o "$t/pi.safetensors" --backend=interp
"$MODELC" predict "$t/wide.mdl" --weights "$t/w.safetensors" --inputs "$t/x.safetensors" -o "$t/pj.safetensors" --threads 2
python3 tests/e2e/jit_compare.py "$t/pi.safetensors" "$t/pj.safetensors" || fail "wide: JIT predictions differ"

# Data binding: the inputs stay [N, 5, 6] and [N, 5]; one epoch on both backends.
"$MODELC" ir "$t/pt.mdl" --no-loc --mode=infer > "$t/m.ir"
python3 tests/e2e/jit_tensors.py inputs "$t/m.ir" "$t/data.safetensors" 48 5 3
for be in jit interp; do
    "$MODELC" train "$t/pt.mdl" --data "$t/data.safetensors" --epochs 1 --batch 16 --seed 1 --threads 1 --no-test \
        --no-progress --json --backend "$be" --save "$t/$be.st" > "$t/train.$be" 2>&1 || fail "train $be: $(cat "$t/train.$be")"
    grep '"loss"' "$t/train.$be" | grep -q '"examples": 48' || fail "train $be: $(cat "$t/train.$be")"
    grep '"loss"' "$t/train.$be" | grep -q '"acc": ' || fail "train $be: no accuracy: $(cat "$t/train.$be")"
done

# The loss and the metric over N*5 rows: the same on both backends (the
# loss to f32 rounding).
for be in jit interp; do
    "$MODELC" eval "$t/pt.mdl" --backend "$be" --weights "$t/jit.st" --data "$t/data.safetensors" --json 2>&1 |
        grep -o '"loss": [0-9.]*, "acc": [0-9.]*' > "$t/eval.$be" || fail "eval $be"
done
python3 - "$t/eval.jit" "$t/eval.interp" <<'PY' || fail "eval differs: $(cat "$t/eval.jit" "$t/eval.interp")"
import json, sys
a, b = (json.loads("{" + open(p).read() + "}") for p in sys.argv[1:])
assert a["acc"] == b["acc"] and abs(a["loss"] - b["loss"]) <= 1e-6 * abs(b["loss"]), (a, b)
PY

# IR text: N*k parses back; a factor must be a positive integer.
ir_bad() { # IR text, expected message
    printf '%s\n' "$1" > "$t/bad.ir"
    set +e
    "$MODELC" check "$t/bad.ir" > "$t/err" 2>&1
    rc=$?
    set -e
    [ "$rc" = 1 ] || fail "exit $rc for: $1"
    grep -qF -- "$2" "$t/err" || fail "expected '$2' for: $1, got: $(cat "$t/err")"
}
ir_bad $'graph g {\n  %x = input "x" : f32[N*0,3]\n  output value "y" = %x\n}' "bad.ir:2:26: error: the factor of N (a positive integer) out of range: 0"
ir_bad $'graph g {\n  %x = input "x" : f32[N*,3]\n  output value "y" = %x\n}' "bad.ir:2:26: error:"
ir_bad $'graph g {\n  %x = input "x" : f32[N,3]\n  %y = reshape(%x) {shape=[N*2,3]} : f32[N*2,3]\n  output value "y" = %y\n}' \
    "cannot reshape f32[N,3] to [N*2,3]: element counts differ"
ir_bad $'graph g {\n  %x = input "x" : f32[N*2,3]\n  output value "y" = %x\n}' \
    "a graph's inputs may have the batch dimension N but not a multiple of it"
echo "ok: reshape_absorb_n"
