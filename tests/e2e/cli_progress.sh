#!/bin/bash
# On a terminal, modelc train redraws one progress line per epoch; the
# line it leaves at the end of the epoch names each metric once (the
# training figures, then validation), and a pipe gets the same figures.
set -euo pipefail
: "${MODELC:?}"
args=(train examples/fashion_mlp.mdl --limit 64 --batch 16 --epochs 1 --val-split 0.25 --no-test --no-warn)
python3 - "$MODELC" "${args[@]}" <<'PY'
import os, subprocess, sys

master, slave = os.openpty()
p = subprocess.Popen(sys.argv[1:], stdout=slave, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
os.close(slave)
out = b""
while True:
    try:
        chunk = os.read(master, 4096)
    except OSError:  # EIO: the other end is closed
        break
    if not chunk:
        break
    out += chunk
err = p.communicate()[1]
if p.returncode != 0:
    sys.exit("modelc train failed on a terminal: %s" % err.decode())
lines = out.decode().replace("\r\n", "\n").split("\n")
epoch = lines.index("Epoch 1/1")
final = lines[epoch + 1].split("\r")[-1]
for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
    n = final.count(" - %s: " % name)
    if n != 1:
        sys.exit("the final progress line names %s %d times: %r" % (name, n, final))
if not final.startswith("3/3 [=============================="):
    sys.exit("the final progress line is not complete: %r" % final)
PY
out=$("$MODELC" "${args[@]}" | grep -- '- loss: ')
for name in loss accuracy val_loss val_accuracy; do
    [ "$(grep -o -- " - $name: " <<< "$out" | wc -l)" -eq 1 ] || { echo "cli_progress: '$name' not once: $out"; exit 1; }
done
echo "cli_progress: ok"
