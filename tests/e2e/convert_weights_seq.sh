#!/bin/bash
# `modelc convert-weights` for embedding, layer_norm and the recurrent
# layers: PyTorch's state_dict (nn.Embedding, nn.LayerNorm, one-layer
# nn.LSTM, nn.GRU and nn.RNN: weight_ih_l0, weight_hh_l0 and the two
# biases) and the same weights under Keras's names (lstm/lstm_cell/kernel,
# ...) become checkpoints of tests/interop/seq.mdl that predict what
# PyTorch computed, on both backends (tests/interop/gen_seq_fixtures.py
# made the fixtures once); the mappings and the layout notes; a stacked
# bidirectional LSTM and a stacked GRU (weight_ih_l1, ..._reverse) onto a
# layer per layer and direction (seq_stacked.mdl); a second LSTM layer
# the model lacks, a direction that differs, a layer without bias and a
# size mismatch are errors.
set -euo pipefail
: "${MODELC:?MODELC not set}"
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
f=tests/interop
model=$f/seq.mdl

"$MODELC" convert-weights $model $f/seq_torch.safetensors --from torch -o "$tmp/t.safetensors" >"$tmp/t.out" ||
  fail "torch conversion"
cat >"$tmp/t.want" <<EOT
emb.weight [10,4] -> embedding.embeddings [10,4]
norm.weight [4] -> layer_norm.gamma [4]
norm.bias [4] -> layer_norm.beta [4]
lstm.weight_ih_l0 [20,4] -> lstm.kernel [4,20] (transposed)
lstm.weight_hh_l0 [20,5] -> lstm.recurrent_kernel [5,20] (transposed)
lstm.bias_ih_l0 [20] + lstm.bias_hh_l0 [20] -> lstm.bias [20] (summed)
gru.weight_ih_l0 [9,5] -> gru.kernel [5,9] (transposed, gate blocks r,z,n to z,r,h)
gru.weight_hh_l0 [9,3] -> gru.recurrent_kernel [3,9] (transposed, gate blocks r,z,n to z,r,h)
gru.bias_ih_l0 [9] + gru.bias_hh_l0 [9] -> gru.bias [2,9] (the two rows, gate blocks r,z,n to z,r,h)
rnn.weight_ih_l0 [2,3] -> simple_rnn.kernel [3,2] (transposed)
rnn.weight_hh_l0 [2,2] -> simple_rnn.recurrent_kernel [2,2] (transposed)
rnn.bias_ih_l0 [2] + rnn.bias_hh_l0 [2] -> simple_rnn.bias [2] (summed)
wrote $tmp/t.safetensors (12 tensors)
EOT
diff "$tmp/t.want" "$tmp/t.out" || fail "torch mapping lines"
"$MODELC" convert-weights $model $f/seq_keras.safetensors --from keras -o "$tmp/k.safetensors" >"$tmp/k.out" ||
  fail "keras conversion"
grep -q '^gru/gru_cell/bias \[2,9\] -> gru.bias \[2,9\]$' "$tmp/k.out" || fail "keras GRU bias line: $(cat "$tmp/k.out")"
grep -q '^layer_normalization/gamma \[4\] -> layer_norm.gamma \[4\]$' "$tmp/k.out" || fail "keras layer_norm line"
grep -q '^simple_rnn/simple_rnn_cell/kernel \[3,2\] -> simple_rnn.kernel \[3,2\]$' "$tmp/k.out" ||
  fail "keras simple_rnn line"
predicts_torch() { # MODEL WEIGHTS X Y: on both backends, what PyTorch computed
  for b in jit interp; do
    "$MODELC" predict "$1" --backend $b --weights "$2" --inputs "$3" -o "$tmp/p.$b.safetensors" >/dev/null
    python3 tests/e2e/jit_compare.py "$4" "$tmp/p.$b.safetensors" ||
      fail "$2 ($b): predictions differ from PyTorch's"
  done
}
for w in t k; do
  predicts_torch $model "$tmp/$w.safetensors" $f/seq_x.safetensors $f/seq_y.safetensors
done

# the layout notes
python3 tests/data/safetensors_py.py dump "$tmp/t.safetensors" >"$tmp/dump"
for want in 'torch.gru.kernel.*weight_ih_l0: transpose, gate blocks z,r,h to r,z,n' \
  'torch.lstm.bias.*bias_ih_l0 (bias_hh_l0: zeros)' 'layout.lstm.kernel.*IO (gates i,f,c,o)' \
  'torch.embedding.embeddings.*weight' 'torch.layer_norm.beta.*bias' 'layout.gru.bias.*2,C'; do
  grep -q "$want" "$tmp/dump" || fail "metadata: no '$want' in $(grep -E 'torch|layout' "$tmp/dump")"
done

# stacked and bidirectional: one module per layer and direction, paired
# in order (the reverse ones with go_backwards layers)
st=$f/seq_stacked.mdl
"$MODELC" convert-weights $st $f/seq_stacked_torch.safetensors --from torch -o "$tmp/s.safetensors" >"$tmp/s.out" ||
  fail "stacked conversion"
for want in 'lstm.weight_ih_l0_reverse \[16,3\] -> lstm_1.kernel \[3,16\] (transposed)' \
  'lstm.bias_ih_l1 \[16\] + lstm.bias_hh_l1 \[16\] -> lstm_2.bias \[16\] (summed)' \
  'lstm.weight_hh_l1_reverse \[16,4\] -> lstm_3.recurrent_kernel \[4,16\] (transposed)' \
  'gru.weight_ih_l1 \[9,3\] -> gru_1.kernel \[3,9\] (transposed, gate blocks r,z,n to z,r,h)' \
  'wrote .*(18 tensors)'; do
  grep -q "^$want\$" "$tmp/s.out" || fail "stacked: no '$want' in $(cat "$tmp/s.out")"
done
predicts_torch $st "$tmp/s.safetensors" $f/seq_stacked_x.safetensors $f/seq_stacked_y.safetensors

# errors
expect_err() { # code message command...
  local code=$1 msg=$2
  shift 2
  set +e
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  set -e
  [ $rc = "$code" ] || { cat "$tmp/err"; fail "exit $rc, expected $code: $*"; }
  grep -qF -- "$msg" "$tmp/err" || { cat "$tmp/err"; fail "message '$msg' expected: $*"; }
}
expect_err 1 "$f/seq_two_layers.safetensors: error: ambiguous: 4 modules of the file ('emb', 'norm', 'lstm_l1', 'rnn') match no layer by name, but 3 layers of the model ('embedding', 'layer_norm', 'simple_rnn') are left" \
  "$MODELC" convert-weights $model $f/seq_two_layers.safetensors --from torch -o "$tmp/x.safetensors"
sed '0,/go_backwards=true/s/, go_backwards=true//' $st >"$tmp/forward.mdl"
expect_err 1 "error: module 'lstm_l0_reverse' reads the sequence backwards, layer 'lstm_1' forwards (go_backwards=false)" \
  "$MODELC" convert-weights "$tmp/forward.mdl" $f/seq_stacked_torch.safetensors --from torch -o "$tmp/x.safetensors"
sed 's/lstm(h, 5, return_sequences=true)/lstm(h, 5, return_sequences=true, use_bias=false)/' $model >"$tmp/nobias.mdl"
expect_err 1 "error: 'lstm.bias_ih_l0' has no counterpart in layer 'lstm' (lstm, use_bias=false)" \
  "$MODELC" convert-weights "$tmp/nobias.mdl" $f/seq_torch.safetensors --from torch -o "$tmp/x.safetensors"
sed 's/gru(h, 3,/gru(h, 4,/; s/simple_rnn(h, 2)/simple_rnn(h[:, :, 0:3], 2)/' $model >"$tmp/wide.mdl"
expect_err 1 "error: shape mismatch: 'gru.weight_ih_l0' [9,5] cannot be 'gru.kernel' [5,12]" \
  "$MODELC" convert-weights "$tmp/wide.mdl" $f/seq_torch.safetensors --from torch -o "$tmp/x.safetensors"
grep -qF "note: 'gru.kernel' [5,12] needs 'gru.weight_ih_l0' [12,5]" "$tmp/err" || fail "layout note: $(cat "$tmp/err")"
[ ! -e "$tmp/x.safetensors" ] || fail "a checkpoint was written after an error"
echo "OK"
