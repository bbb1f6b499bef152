#!/usr/bin/env bash
# 8-bit images are kept as bytes and converted per batch: training on them
# (IDX and NPY |u1, f32 and f64 models, shuffled, a partial last batch, a
# validation split) gives exactly the losses, metrics and checkpoint of the
# same run on float arrays converted up front, as the loaders used to:
# IDX byte b * (1.0/255.0), NPY |u1 byte b / 255.0, rounded to the model's
# float type.
set -u
: "${MODELC:?MODELC must point at the modelc binary}"
FM=/usr/share/datasets/fashion-mnist
if ! command -v python3 >/dev/null 2>&1 || [ ! -r "$FM/train-images-idx3-ubyte.gz" ]; then
    echo "python3 or Fashion-MNIST not found: byte data sets not checked"
    exit 0
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# the first 1000 training images as IDX files, NPY |u1 and float NPY arrays
python3 - "$FM" "$T" <<'PY' || fail "writing the test data"
import gzip, struct, sys
fm, out = sys.argv[1], sys.argv[2]
n = 1000
im = gzip.open(fm + "/train-images-idx3-ubyte.gz").read()[16:16 + n * 784]
lb = gzip.open(fm + "/train-labels-idx1-ubyte.gz").read()[8:8 + n]
open(out + "/train-images-idx3-ubyte", "wb").write(struct.pack(">4I", 0x803, n, 28, 28) + im)
open(out + "/train-labels-idx1-ubyte", "wb").write(struct.pack(">2I", 0x801, n) + lb)
def npy(name, descr, shape, data):
    h = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, ", ".join(map(str, shape)) + ("," if len(shape) == 1 else ""))
    h += " " * ((64 - (10 + len(h) + 1) % 64) % 64) + "\n"
    open(out + "/" + name, "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + data)
def floats(fmt, f):
    return b"".join(struct.pack(fmt, f(b)) for b in im)
shape = (n, 28, 28, 1)
npy("y.npy", "<i4", (n,), b"".join(struct.pack("<i", b) for b in lb))
npy("x_u1.npy", "|u1", (n, 784), im)  # reshaped to the input's [N,28,28,1]
npy("x_idx_f4.npy", "<f4", shape, floats("<f", lambda b: b * (1.0 / 255.0)))
npy("x_idx_f8.npy", "<f8", shape, floats("<d", lambda b: b * (1.0 / 255.0)))
npy("x_npy_f4.npy", "<f4", shape, floats("<f", lambda b: b / 255.0))
npy("x_npy_f8.npy", "<f8", shape, floats("<d", lambda b: b / 255.0))
PY

common=(--epochs 2 --batch 96 --seed 3 --threads 1 --val-split 0.2 --no-test --no-progress --json)
# run NAME MODEL DATA...: train, keep the JSON lines without timings and the checkpoint
run() {
    local name=$1 model=$2
    shift 2
    local data=()
    for s in "$@"; do data+=(--data "$s"); done
    "$MODELC" train "$model" "${data[@]}" "${common[@]}" --save "$T/$name.st" >"$T/$name.out" 2>"$T/$name.err" ||
        fail "$name: modelc train exited $?: $(cat "$T/$name.err")"
    grep '"loss"' "$T/$name.out" | sed -E 's/"(seconds|ms_per_step)": [0-9.e+-]+, //g' >"$T/$name.json"
    [ "$(wc -l <"$T/$name.json")" -eq 2 ] || fail "$name: expected 2 epochs: $(cat "$T/$name.out")"
}
same() {
    cmp -s "$T/$1.json" "$T/$2.json" || fail "$1 and $2 differ: $(diff "$T/$1.json" "$T/$2.json")"
    cmp -s "$T/$1.st" "$T/$2.st" || fail "the checkpoints of $1 and $2 differ"
}

mlp=examples/fashion_mlp.mdl
s2=examples/s2_init_scale/sigma_1.mdl # f64 input
run idx_f32 $mlp "$T"
run ref_idx_f32 $mlp "$T/x_idx_f4.npy" "$T/y.npy"
same idx_f32 ref_idx_f32
run idx_f64 $s2 "$T"
run ref_idx_f64 $s2 "$T/x_idx_f8.npy" "$T/y.npy"
same idx_f64 ref_idx_f64
run npy_f32 $mlp "$T/x_u1.npy" "$T/y.npy"
run ref_npy_f32 $mlp "$T/x_npy_f4.npy" "$T/y.npy"
same npy_f32 ref_npy_f32
run npy_f64 $s2 "$T/x_u1.npy" "$T/y.npy"
run ref_npy_f64 $s2 "$T/x_npy_f8.npy" "$T/y.npy"
same npy_f64 ref_npy_f64
# the two f64 conversions differ in the last bit for some bytes; the runs
# see that (so the comparisons above can tell the conversions apart)
cmp -s "$T/idx_f64.st" "$T/npy_f64.st" && fail "IDX and NPY f64 runs agree to the bit"
echo "data_bytes: ok"
