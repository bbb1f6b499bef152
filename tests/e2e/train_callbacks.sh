#!/bin/bash
# Callbacks and schedules in `modelc train` (docs/language.md section 9):
# early stopping fires at the predictable epoch and restores the best
# weights, the best checkpoint holds the best epoch's weights,
# reduce_lr_on_plateau lowers the learning rate (down to min_lr), a run
# interrupted and resumed equals the uninterrupted one byte for byte
# (callback state and best weights travel in the checkpoint), the cosine
# horizon is the checkpoint's, events reach --log and --json, bad options
# and monitors are errors before training; under mpirun every process
# stops at the same epoch.
set -euo pipefail
: "${MODELC:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() { echo "train_callbacks: $*" >&2; exit 1; }
base=tests/e2e/models/callbacks.mdl

# Learnable training data (label = x0 + x1 > 0) and a validation set whose
# labels are coin flips: nothing the model learns improves it.
python3 - "$t" <<'PY'
import random, sys
d = sys.argv[1]
def write(path, n, seed, learnable):
    r = random.Random(seed)
    with open(path, "w") as f:
        f.write(",".join("x%d" % i for i in range(8)) + ",label\n")
        for _ in range(n):
            x = [r.uniform(-1, 1) for _ in range(8)]
            y = int(x[0] + x[1] > 0) if learnable else r.randrange(2)
            f.write(",".join("%.6f" % v for v in x) + ",%d\n" % y)
write(d + "/train.csv", 256, 1, True)
write(d + "/val.csv", 128, 2, False)
PY
# Tensors of two safetensors files compared: all weights (not optimizer
# slots nor the callbacks' state) equal ("same") or not ("differ").
cat > "$t/st.py" <<'PY'
import json, struct, sys
def load(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    h.pop("__metadata__", None)
    return {k: b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]] for k, v in h.items()
            if not k.startswith(("optimizer.", "callbacks."))}
a, b = load(sys.argv[1]), load(sys.argv[2])
same = a == b and len(a) > 0
if (sys.argv[3] == "same") != same:
    sys.exit("%s vs %s: expected %s weights" % (sys.argv[1], sys.argv[2], sys.argv[3]))
PY
# A model file with these train-block lines added.
model() {
  sed "s|^  seed = 5|  seed = 5\n$2|" "$base" > "$t/$1.mdl"
}
data=(--data "$t/train.csv" --val-data "$t/val.csv" --label-column label --no-test --no-progress --threads 1)

# 1. Early stopping at a predictable epoch: min_delta=1 cannot be beaten
# by a loss that starts below 1, so epoch 1 stays the best and patience 2
# stops at epoch 3, restoring epoch 1's weights.
model es '  callbacks = early_stopping(patience=2, min_delta=1, restore_best_weights=true)'
"$MODELC" train "$t/es.mdl" "${data[@]}" --epochs 10 --save "$t/es.st" --log "$t/es.csv" > "$t/es.out"
grep -qx "epoch 3: val_loss did not improve for 2 epochs; stopping, restoring the weights of epoch 1 (val_loss [0-9.]*)" \
  "$t/es.out" || fail "no early stop at epoch 3: $(cat "$t/es.out")"
grep -q "^Epoch 4/10" "$t/es.out" && fail "trained on after stopping"
[ "$(tail -n +2 "$t/es.csv" | wc -l)" -eq 3 ] || fail "the log should have 3 epochs"
grep -q '^3,.*,"epoch 3: val_loss did not improve for 2 epochs; stopping' "$t/es.csv" || fail "stop not in the CSV log"
"$MODELC" train "$base" "${data[@]}" --epochs 1 --save "$t/one.st" > /dev/null
python3 "$t/st.py" "$t/es.st" "$t/one.st" same
# a checkpoint of a stopped run has nothing left to train
"$MODELC" train "$t/es.mdl" "${data[@]}" --epochs 10 --resume "$t/es.st" > "$t/es2.out"
grep -q "early stopping ended the run of this checkpoint at epoch 3; nothing to resume" "$t/es2.out"
"$MODELC" train "$t/es.mdl" "${data[@]}" --epochs 10 --resume "$t/es.st" --json > "$t/es3.out"
grep -qx '{"event": "nothing_to_resume", "stopped_epoch": 3}' "$t/es3.out"
# without restore_best_weights the last epoch's weights stay
model es_keep '  callbacks = early_stopping(patience=2, min_delta=1)'
"$MODELC" train "$t/es_keep.mdl" "${data[@]}" --epochs 10 --save "$t/keep.st" > "$t/keep.out"
grep -q "^epoch 3: val_loss did not improve for 2 epochs (best [0-9.]* at epoch 1); stopping$" "$t/keep.out"
python3 "$t/st.py" "$t/keep.st" "$t/one.st" differ

# 2. The command line's callbacks on the coin-flip validation set: the
# best checkpoint, the restored weights and a run of just the best
# epoch's length hold the same weights.
"$MODELC" train "$base" "${data[@]}" --epochs 12 --early-stopping 2 --save-best "$t/best.st" \
  --save "$t/last.st" --json > "$t/cli.json"
grep -q '"event": "early_stopping".*"restored": true' "$t/cli.json" || fail "no early_stopping event in --json"
grep -q '"event": "checkpoint".*"path": ' "$t/cli.json" || fail "no checkpoint event in --json"
best=$(sed -n 's/.*"event": "early_stopping".*"best_epoch": \([0-9]*\).*/\1/p' "$t/cli.json")
[ -n "$best" ] || fail "no best epoch"
"$MODELC" train "$base" "${data[@]}" --epochs "$best" --save "$t/upto.st" > /dev/null
python3 "$t/st.py" "$t/best.st" "$t/upto.st" same
python3 "$t/st.py" "$t/last.st" "$t/upto.st" same

# 3. reduce_lr_on_plateau: never improving by min_delta=1, patience 1
# halves the learning rate after epochs 2 and 3, then min_lr holds it.
model rlr '  callbacks = reduce_lr_on_plateau(factor=0.5, patience=1, min_delta=1, min_lr=0.003)'
"$MODELC" train "$t/rlr.mdl" "${data[@]}" --epochs 5 --log "$t/rlr.csv" > "$t/rlr.out"
grep -qx "epoch 2: val_loss did not improve for 1 epoch; reducing the learning rate to 0.005" "$t/rlr.out"
grep -qx "epoch 3: val_loss did not improve for 1 epoch; reducing the learning rate to 0.003" "$t/rlr.out"
[ "$(grep -c "reducing the learning rate" "$t/rlr.out")" -eq 2 ] || fail "min_lr did not hold"
[ "$(cut -d, -f3 "$t/rlr.csv" | tail -n +2 | tr '\n' ' ')" = "0.01 0.01 0.005 0.003 0.003 " ] ||
  fail "learning rates $(cut -d, -f3 "$t/rlr.csv" | tr '\n' ' ')"

# --warmup N: the rate rises from 0 over N steps (8 steps per epoch here;
# the log shows each epoch's last step: 7/12 and 15/12 -> capped at 1)
"$MODELC" train "$base" "${data[@]}" --epochs 2 --warmup 12 --log "$t/warm.csv" > /dev/null
[ "$(cut -d, -f3 "$t/warm.csv" | tail -n +2 | tr '\n' ' ')" = "0.00583333333 0.01 " ] ||
  fail "warm-up rates $(cut -d, -f3 "$t/warm.csv" | tr '\n' ' ')"

# 4. Interrupted after 3 of 6 epochs and resumed: the same bytes and the
# same decisions as the uninterrupted run, with an exponential schedule,
# warm-up, early stopping that fires after the resume (restoring weights
# kept in the checkpoint), reduce on plateau and a best checkpoint.
cbs='  schedule = exponential(decay_steps=5, decay_rate=0.8)\n  warmup = 6\n  callbacks = [early_stopping(patience=3, min_delta=1, restore_best_weights=true), reduce_lr_on_plateau(factor=0.5, patience=1), checkpoint(path="BEST", save_best_only=true)]'
model full "${cbs/BEST/$t/full_best.st}"
model part "${cbs/BEST/$t/part_best.st}"
"$MODELC" train "$t/full.mdl" "${data[@]}" --epochs 6 --save "$t/full.st" --log "$t/full.csv" > "$t/full.out"
"$MODELC" train "$t/part.mdl" "${data[@]}" --epochs 3 --save "$t/part.st" --log "$t/part1.csv" > /dev/null
"$MODELC" train "$t/part.mdl" "${data[@]}" --epochs 6 --resume "$t/part.st" --save "$t/part.st" \
  --log "$t/part2.csv" > "$t/part.out"
grep -q "^epoch 4: val_loss did not improve for 3 epochs; stopping, restoring the weights of epoch 1" "$t/full.out" ||
  fail "the uninterrupted run did not stop at epoch 4"
cmp "$t/full.st" "$t/part.st"
cmp "$t/full_best.st" "$t/part_best.st"
diff <(tail -n +2 "$t/full.csv" | cut -d, -f1-7,9) \
     <( (tail -n +2 "$t/part1.csv"; tail -n +2 "$t/part2.csv") | cut -d, -f1-7,9 | sed "s|part_best|full_best|g") ||
  fail "the resumed run's values or decisions differ"
grep -q "reducing the learning rate" "$t/full.csv" || fail "reduce_lr_on_plateau never acted"

# 5. The cosine schedule's horizon is the checkpoint's: resuming a 1-epoch
# run for a second epoch keeps the 8-step horizon (the rate is 0 past it).
model cos '  schedule = cosine'
"$MODELC" train "$t/cos.mdl" "${data[@]}" --epochs 1 --save "$t/cos.st" > /dev/null
"$MODELC" train "$t/cos.mdl" "${data[@]}" --epochs 2 --resume "$t/cos.st" --log "$t/cos.csv" \
  > /dev/null 2> "$t/cos.err"
grep -q "note: the cosine schedule keeps the horizon of the checkpoint's run, 8 steps (this run's epochs and batches give 16)" \
  "$t/cos.err" || fail "no horizon note: $(cat "$t/cos.err")"
[ "$(tail -1 "$t/cos.csv" | cut -d, -f3)" = "0" ] || fail "the horizon moved: $(tail -1 "$t/cos.csv")"
# a checkpoint without callback state (an older run) resumes with callbacks
"$MODELC" train "$base" "${data[@]}" --epochs 2 --early-stopping 5 --resume "$t/one.st" > "$t/old.out"
grep -q "resumed from .*one.st at epoch 1" "$t/old.out"

# 6. Errors before training: usage errors exit 2, a monitor the model does
# not have or a val_ monitor without validation data exit 1.
set +e
"$MODELC" train "$base" "${data[@]}" --early-stopping -1 2> "$t/e1"; [ $? -eq 2 ] || fail "--early-stopping -1"
"$MODELC" train "$base" "${data[@]}" --reduce-lr-on-plateau 1 2> "$t/e2"; [ $? -eq 2 ] || fail "--reduce-lr-on-plateau 1"
"$MODELC" train "$base" "${data[@]}" --warmup -3 2> "$t/e3"; [ $? -eq 2 ] || fail "--warmup -3"
"$MODELC" train "$base" "${data[@]}" --monitor loss 2> "$t/e4"; [ $? -eq 2 ] || fail "--monitor alone"
"$MODELC" train "$base" "${data[@]}" --early-stopping 2 --monitor val_acc > "$t/o5" 2> "$t/e5"
[ $? -eq 1 ] || fail "unknown monitor"
"$MODELC" train "$base" --data "$t/train.csv" --label-column label --no-test --early-stopping 2 > "$t/o6" 2> "$t/e6"
[ $? -eq 1 ] || fail "val_loss without validation data"
set -e
grep -q "must be at least 0, got -1" "$t/e1"
grep -q "must be in (0, 1), got 1" "$t/e2"
grep -q 'early_stopping: unknown monitor "val_acc": expected loss, val_loss, accuracy, val_accuracy' "$t/e5"
grep -q "early_stopping monitors val_loss, but there is no validation data" "$t/e6"
grep -q "Epoch 1" "$t/o5" "$t/o6" && fail "trained despite the error"

# 7. Under mpirun every process takes rank 0's values, so all stop together.
if command -v mpirun > /dev/null; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
  mpi() {
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
      mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 "$@"
  }
  if mpi "$MODELC" train "$t/es.mdl" "${data[@]}" --epochs 10 --save "$t/dist.st" > "$t/dist.out" 2> "$t/dist.err"; then
    grep -q "^epoch 3: val_loss did not improve for 2 epochs; stopping, restoring the weights of epoch 1" "$t/dist.out" ||
      fail "mpirun: $(cat "$t/dist.out")"
    [ "$(grep -c "^Epoch" "$t/dist.out")" -eq 3 ] || fail "mpirun: rank 0 did not stop at epoch 3"
    # resumed under mpirun: rank 0's callback state and best weights reach
    # every process (a process that did not stop would hang the job)
    mpi "$MODELC" train "$t/es.mdl" "${data[@]}" --epochs 2 --save "$t/dist2.st" > /dev/null
    mpi "$MODELC" train "$t/es.mdl" "${data[@]}" --epochs 10 --resume "$t/dist2.st" --save "$t/dist2.st" \
      --dist-timeout 60 > "$t/dist2.out"
    grep -q "^epoch 3: val_loss did not improve for 2 epochs; stopping" "$t/dist2.out"
    cmp "$t/dist.st" "$t/dist2.st"
  else
    grep -q "built without MPI" "$t/dist.err" || fail "mpirun -np 2: $(cat "$t/dist.err")"
  fi
fi
echo "train_callbacks: ok"
