#!/bin/bash
# Character-level text: `--data text:FILE` trains a tiny embedding-LSTM
# model for an epoch on a generated text file (windows of the model's T
# characters, the next character as labels, [N, T] or [N]); `modelc
# generate` then samples from it deterministically (the same seed gives
# the same text, another seed other text, the interpreter the JIT's
# greedy text); gradients of the model need no data; and the errors:
# empty, short and binary files name the file, usage errors exit 2.
set -euo pipefail
: "${MODELC:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
for i in $(seq 1 60); do echo "the cat sat on the mat $i times, and the dog ran."; done > "$t/text.txt"
cat > "$t/seq.mdl" <<'MDL'
model tiny_char
input x: i32[N, 16]
input y: i32[N, 16]
h = embedding(x, 128, 8)
h = lstm(h, 24, return_sequences=true)
logits = dense(h, 128)
loss = sparse_categorical_crossentropy(y, logits, from_logits=true)
output next = logits
train {
  optimizer = adam(lr=0.01)
  batch = 16
  epochs = 1
  seed = 1
}
MDL
"$MODELC" train "$t/seq.mdl" --data "text:$t/text.txt" --val-split 0.1 --no-progress \
    --save "$t/w.safetensors" > "$t/train.out" 2>&1 || fail "train: $(cat "$t/train.out")"
# 2991 bytes in windows of 16: 186 examples, 167 for training.
grep -q "train: 167 examples, 19 validation, batch 16, 1 epochs" "$t/train.out" || fail "$(cat "$t/train.out")"
grep -q "val_loss: [0-9]" "$t/train.out" || fail "no validation loss: $(cat "$t/train.out")"
gen() { "$MODELC" generate "$t/seq.mdl" --weights "$t/w.safetensors" --prime "the " --length 60 "$@"; }
gen --seed 1 --temperature 0.8 > "$t/a1"
gen --seed 1 --temperature 0.8 > "$t/a2"
gen --seed 2 --temperature 0.8 > "$t/b"
cmp -s "$t/a1" "$t/a2" || fail "the same seed gave different text"
cmp -s "$t/a1" "$t/b" && fail "seeds 1 and 2 gave the same text"
[ "$(head -c 4 "$t/a1")" = "the " ] || fail "the prime is not printed first: $(cat "$t/a1")"
[ "$(wc -c < "$t/a1")" = 65 ] || fail "expected 4 + 60 characters and a newline: $(wc -c < "$t/a1")"
gen --temperature 0 > "$t/gj"
gen --temperature 0 --backend interp > "$t/gi"
cmp -s "$t/gj" "$t/gi" || fail "greedy text differs between the JIT and the interpreter"
# A prime longer than the window: only the last 16 characters count.
"$MODELC" generate "$t/seq.mdl" --weights "$t/w.safetensors" --length 20 --temperature 0 \
    --prime "$(head -c 100 "$t/text.txt" | tr '\n' ' ')" > "$t/long" || fail "long prime"

# Labels [N]: the character after the window, a many-to-one model.
cat > "$t/last.mdl" <<'MDL'
model last_char
input x: i32[N, 12]
input y: i32[N]
h = embedding(x, 128, 8)
h = lstm(h, 16)
logits = dense(h, 128)
loss = sparse_categorical_crossentropy(y, logits, from_logits=true)
output next = logits
train {
  batch = 16
  epochs = 1
}
MDL
"$MODELC" train "$t/last.mdl" --data "text:$t/text.txt" --no-progress --no-test --save "$t/w2.safetensors" \
    > "$t/train2.out" 2>&1 || fail "train [N]: $(cat "$t/train2.out")"
grep -q "train: 249 examples" "$t/train2.out" || fail "$(cat "$t/train2.out")"
"$MODELC" generate "$t/last.mdl" --weights "$t/w2.safetensors" --prime "t" --length 10 --seed 3 > "$t/c"
[ "$(wc -c < "$t/c")" = 12 ] || fail "[N] model: $(cat "$t/c")"

# Gradients and the gradient check need no data: token ids are drawn
# below the embedding's input_dim.
"$MODELC" gradcheck "$t/seq.mdl" > "$t/gc" 2>&1 || fail "gradcheck: $(cat "$t/gc")"
grep -q "passed: 6 of 6 parameters match" "$t/gc" || fail "gradcheck: $(cat "$t/gc")"
"$MODELC" grad "$t/seq.mdl" -o "$t/g.safetensors" > "$t/g" 2>&1 || fail "grad: $(cat "$t/g")"

# Errors with exit 1 that name the file.
err() { # expected message, then the command
    local want=$1
    shift
    set +e
    "$@" > "$t/err" 2>&1
    local rc=$?
    set -e
    [ "$rc" = 1 ] || fail "exit $rc (expected 1) for: $* -- $(cat "$t/err")"
    grep -qF -- "$want" "$t/err" || fail "expected '$want' for: $*, got: $(cat "$t/err")"
}
: > "$t/empty.txt"
printf 'too short' > "$t/short.txt"
printf 'text\0binary data, long enough for a window' > "$t/bin.txt"
err "empty.txt: error: empty text file" "$MODELC" train "$t/seq.mdl" --data "text:$t/empty.txt" --no-progress
err "short.txt: error: text of 9 bytes is too short: one example needs 17" \
    "$MODELC" train "$t/seq.mdl" --data "text:$t/short.txt" --no-progress
err "bin.txt:1:5: error: NUL byte (offset 4)" "$MODELC" train "$t/seq.mdl" --data "text:$t/bin.txt" --no-progress
err "nothere.txt" "$MODELC" train "$t/seq.mdl" --data "text:$t/nothere.txt" --no-progress
printf 'input x: f32[N, 4]\ninput y: i32[N]\nloss = sparse_categorical_crossentropy(y, dense(x, 3), from_logits=true)\n' > "$t/float.mdl"
err "text data needs a model input of type i32[N, T]" "$MODELC" train "$t/float.mdl" --data "text:$t/text.txt" --no-progress
err "generate needs a model input of type i32[N, T]" \
    "$MODELC" generate "$t/float.mdl" --weights "$t/w.safetensors" --prime "a"
err "byte 0xc3 at offset 1 of --prime is not one of the model's 128 character ids" \
    "$MODELC" generate "$t/seq.mdl" --weights "$t/w.safetensors" --prime $'a\xc3\xa9'

# Usage errors exit 2.
usage() {
    set +e
    "$MODELC" generate "$@" > "$t/err" 2>&1
    local rc=$?
    set -e
    [ "$rc" = 2 ] || fail "exit $rc (expected 2) for generate $* -- $(cat "$t/err")"
}
usage "$t/seq.mdl" --prime "a"
usage "$t/seq.mdl" --weights "$t/w.safetensors"
usage "$t/seq.mdl" --weights "$t/w.safetensors" --prime ""
usage "$t/seq.mdl" --weights "$t/w.safetensors" --prime "a" --length -1
usage "$t/seq.mdl" --weights "$t/w.safetensors" --prime "a" --temperature -0.5
usage "$t/seq.mdl" --weights "$t/w.safetensors" --prime "a" --backend gpu
usage "$t/seq.mdl" --weights "$t/w.safetensors" --prime "a" --bogus
usage --weights "$t/w.safetensors" --prime "a"
echo "ok: char_text"
