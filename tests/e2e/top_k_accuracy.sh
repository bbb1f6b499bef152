#!/bin/bash
# top_k_accuracy (alias sparse_top_k_categorical_accuracy): a row is a
# hit when fewer than k classes score strictly higher than its true
# class (Keras's in_top_k: classes tied at the boundary all count), with
# sparse labels or one-hot targets, on [N, C] and [N, T, C] scores; and
# the located errors of bad arguments.
set -euo pipefail
: "${MODELC:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cat > "$t/m.mdl" <<'MDL'
model topk
input x: f32[N, 4]
input y: i32[N]
param b: f32[4] = zeros()
s = x + b
loss = sparse_categorical_crossentropy(y, s, from_logits=true)
metric acc = accuracy(y, s)
metric top1 = top_k_accuracy(y, s, k=1)
metric top2 = top_k_accuracy(y, s, k=2)
metric top3 = sparse_top_k_categorical_accuracy(y, s, 3)
metric top5 = top_k_accuracy(y, s)
metric onehot2 = top_k_accuracy(one_hot(y, 4), s, k=2)
MDL
# true class ranks: 1st, 2nd, 4th, 3rd, and tied for 1st with class 0
cat > "$t/d.csv" <<'CSV'
y,a,b,c,d
0,0.9,0.5,0.1,0.2
1,0.9,0.5,0.1,0.2
2,0.9,0.5,0.1,0.2
3,0.9,0.5,0.1,0.2
1,0.5,0.5,0.1,0.1
CSV
"$MODELC" init "$t/m.mdl" -o "$t/w.safetensors" > /dev/null
for be in jit interp; do
    "$MODELC" eval "$t/m.mdl" --weights "$t/w.safetensors" --data "$t/d.csv" --label-column y \
        --backend $be > "$t/out" 2>&1 || fail "$be: $(cat "$t/out")"
    for want in "acc: 0.2000" "top1: 0.4000" "top2: 0.6000" "top3: 0.8000" "top5: 1.0000" "onehot2: 0.6000"; do
        grep -qF -- "$want" "$t/out" || fail "$be: expected '$want' in: $(cat "$t/out")"
    done
done
# [N, T, C] scores with [N, T] labels
cat > "$t/seq.mdl" <<'MDL'
input x: i32[N, 6]
input y: i32[N, 6]
logits = dense(embedding(x, 20, 4), 20)
loss = sparse_categorical_crossentropy(y, logits, from_logits=true)
metric top3 = top_k_accuracy(y, logits, k=3)
MDL
"$MODELC" grad "$t/seq.mdl" -o "$t/g.safetensors" > "$t/out" 2>&1 || fail "seq: $(cat "$t/out")"

. tests/e2e/lib/check.sh
bad() { # metric line, expected message with its position
    check_fails "$(printf 'input x: f32[N, 4]\ninput y: i32[N]\nloss = mean(x)\n%s' "$1")" "$2"
}
bad 'metric m = top_k_accuracy(y, x, k=0)' "bad.mdl:4:"
bad 'metric m = top_k_accuracy(y, x, k=0)' "must be at least 1"
bad 'metric m = top_k_accuracy(y, x, k=1.5)' "bad.mdl:4:"
bad 'metric m = top_k_accuracy(x, x, k=2, bogus=1)' "bogus"
bad 'metric m = top_k_accuracy(y, x[:, 0:1])' "bad.mdl:4:30: error: top_k_accuracy() needs scores for two or more classes, got f32[N,1]"
bad 'metric m = top_k_accuracy(x[:, 0:3], x)' "bad.mdl:4:27: error: top_k_accuracy(): labels"
echo "ok: top_k_accuracy"
