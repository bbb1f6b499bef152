"""ONNX's node tests (Debian's libonnx-testdata) through modelc.

    conformance.py MODELC DATA_DIR EXPECTED_PASSING [--update]

A node test is applicable when every operator of its graph is one that
`modelc import --list-ops` prints, unless it needs an element type modelc
does not compute in (bfloat16, strings, sequences, optionals, integer
division) or its outputs depend on the reference's random generator
(Dropout in training mode with a ratio above 0): those are excluded, each
printed with its reason and counted apart. Each applicable test's inputs
(test_data_set_0/input_*.pb, written as F32, F64 or I32 for integers and
bool) run through `modelc predict model.onnx` on the JIT and on the
interpreter; inputs an operator reads as a shape, axes or pads, or as the
weights of a layer (CONST_INPUTS) are given at import instead (`modelc import --constants`,
then `modelc predict` of the written model). Each output is compared with
output_*.pb under ONNX's backend-test tolerances (rtol 1e-3, atol 1e-7).
Prints passed / applicable / total, the excluded tests and every
applicable test that fails with its reason. Exit status 1 when a test listed in EXPECTED_PASSING (one
name per line) no longer passes; --update rewrites that list instead.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

RTOL, ATOL = 1e-3, 1e-7


def st_dtype(arr):
    """The safetensors type an input is written as: F64 for double, I32 for
    integers and bool (modelc's i32 inputs), F32 for the other floats."""
    if arr.dtype == np.float64:
        return "F64", np.float64
    if arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.integer):
        return "I32", np.int32
    return "F32", np.float32


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, arr in tensors.items():
        code, dt = st_dtype(arr)
        b = np.ascontiguousarray(arr, dtype=dt).tobytes()
        header[name] = {"dtype": code, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        dt = {"F32": np.float32, "F64": np.float64, "I32": np.int32}[info["dtype"]]
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(blob[8 + n + b:8 + n + e], dtype=dt).reshape(info["shape"])
    return out


def load_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return t.name, numpy_helper.to_array(t)


# Operator inputs that modelc needs at import: shapes, axes, pads and
# fill values (its shapes are static), and the weights of the layers it
# compiles as parameters (ConvTranspose, LSTM, GRU, RNN: W, R, B,
# sequence_lens, peepholes). A node test that feeds one as a graph input
# gives its value at import (`modelc import --constants`), as an exporter
# would have given an initializer.
CONST_INPUTS = {"Reshape": {1}, "Slice": {1, 2, 3, 4}, "Squeeze": {1}, "Unsqueeze": {1}, "ReduceSum": {1},
                "ReduceMean": {1}, "ReduceMax": {1}, "ReduceMin": {1}, "Pad": {1, 2}, "ConstantOfShape": {0}, "Expand": {1},
                "ConvTranspose": {1, 2}, "LSTM": {1, 2, 3, 4, 7}, "GRU": {1, 2, 3, 4}, "RNN": {1, 2, 3, 4}}


def const_inputs(model):
    names = set()
    for n in model.graph.node:
        for k, name in enumerate(n.input):
            if k in CONST_INPUTS.get(n.op_type, ()):
                names.add(name)
    return names


# Element types modelc does not compute in: a test with a graph input or
# output, or a Cast to, of one of these is excluded (printed with its
# reason, counted apart from the applicable tests), as is a Div of
# integer operands (ONNX truncates; modelc divides in f32).
OTHER_TYPES = {onnx.TensorProto.BFLOAT16: "bfloat16", onnx.TensorProto.STRING: "string"}
INT_TYPES = {onnx.TensorProto.UINT8, onnx.TensorProto.INT8, onnx.TensorProto.UINT16, onnx.TensorProto.INT16,
             onnx.TensorProto.UINT32, onnx.TensorProto.INT32, onnx.TensorProto.UINT64, onnx.TensorProto.INT64}


def element_type_exclusion(model):
    """The reason a test needs an element type modelc does not have, or None."""
    types = {}
    for vi in list(model.graph.input) + list(model.graph.output):
        kind = vi.type.WhichOneof("value")
        if kind != "tensor_type":
            return "%s is a%s %s, not a tensor" % (vi.name, "n" if kind[0] in "aeiou" else "",
                                                   kind.replace("_type", ""))
        t = vi.type.tensor_type.elem_type
        if t in OTHER_TYPES:
            return "%s is %s" % (vi.name, OTHER_TYPES[t])
        types[vi.name] = t
    for n in model.graph.node:
        if n.op_type == "Cast":
            to = next((a.i for a in n.attribute if a.name == "to"), None)
            if to in OTHER_TYPES:
                return "a Cast to %s" % OTHER_TYPES[to]
        if n.op_type == "Div" and all(types.get(i) in INT_TYPES for i in n.input):
            return "a Div of %s operands (ONNX truncates; modelc divides in f32)" % \
                onnx.TensorProto.DataType.Name(types[n.input[0]]).lower()
    return None


def random_exclusion(model, d):
    """The reason a test's outputs depend on the reference's random generator,
    or None: Dropout in training mode with a ratio above 0 (its mask)."""
    ins = [i.name for i in model.graph.input]
    ds = os.path.join(d, "test_data_set_0")

    def value(name):
        if name in ins:
            return load_pb(os.path.join(ds, "input_%d.pb" % ins.index(name)))[1]
        return None

    for n in model.graph.node:
        if n.op_type != "Dropout" or len(n.input) < 3 or not n.input[2]:
            continue
        training, ratio = value(n.input[2]), value(n.input[1]) if len(n.input) > 1 and n.input[1] else None
        if training is not None and bool(training) and (ratio is None or float(ratio) > 0):
            return "Dropout in training mode draws its mask from the reference's random generator"
    return None


def run_test(modelc, d, tmp):
    """None when the test passes, otherwise the reason."""
    model = onnx.load(os.path.join(d, "model.onnx"))
    inits = {t.name for t in model.graph.initializer}
    ins = [i.name for i in model.graph.input if i.name not in inits]
    outs = [o.name for o in model.graph.output]
    ds = os.path.join(d, "test_data_set_0")
    xs, ys = {}, {}
    for k, name in enumerate(ins):
        _, a = load_pb(os.path.join(ds, "input_%d.pb" % k))
        if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_):
            return "input %s is %s" % (name, a.dtype)
        if np.issubdtype(a.dtype, np.integer) and a.size and (a.min() < -2**31 or a.max() >= 2**31):
            return "input %s holds integers beyond 32 bits" % name
        xs[name] = a
    for k, name in enumerate(outs):
        _, a = load_pb(os.path.join(ds, "output_%d.pb" % k))
        ys[name] = a
    xp, yp = os.path.join(tmp, "x.safetensors"), os.path.join(tmp, "y.safetensors")
    bound = {k: v for k, v in xs.items() if k in const_inputs(model)}
    model_file, weights = os.path.join(d, "model.onnx"), []
    if bound:
        cp, model_file, wp = [os.path.join(tmp, f) for f in ("c.safetensors", "m.mdl", "w.safetensors")]
        write_safetensors(cp, bound)
        r = subprocess.run([modelc, "import", os.path.join(d, "model.onnx"), "--constants", cp, "-o", model_file,
                            "--weights-out", wp], capture_output=True, text=True)
        if r.returncode != 0:
            msg = (r.stderr or r.stdout).strip().splitlines()
            return msg[0] if msg else "exit %d" % r.returncode
        xs = {k: v for k, v in xs.items() if k not in bound}
        weights = ["--weights", wp]
    write_safetensors(xp, xs)
    feed = ["--inputs", xp] if xs else []  # a model without inputs runs without --inputs
    for backend in ("jit", "interp"):
        if os.path.exists(yp):
            os.remove(yp)
        r = subprocess.run([modelc, "predict", model_file, "-o", yp, "--backend", backend,
                            "--threads", "1"] + feed + weights, capture_output=True, text=True)
        if r.returncode != 0:
            msg = (r.stderr or r.stdout).strip().splitlines()
            return msg[0] if msg else "exit %d" % r.returncode
        got = read_safetensors(yp)
        for name, want in ys.items():
            if name not in got:
                return "no output %s" % name
            g = got[name]
            if want.dtype == np.bool_:
                want = want.astype(np.float32)
            if tuple(g.shape) != tuple(want.shape):
                return "%s: output %s is %s, expected %s" % (backend, name, list(g.shape), list(want.shape))
            if not np.allclose(g.astype(np.float64), want.astype(np.float64), rtol=RTOL, atol=ATOL,
                               equal_nan=True):
                err = np.max(np.abs(g.astype(np.float64) - want.astype(np.float64)))
                return "%s: output %s differs (max abs error %.3g)" % (backend, name, err)
    return None


def main():
    modelc, data, expected_path = sys.argv[1], sys.argv[2], sys.argv[3]
    update = "--update" in sys.argv[4:]
    supported = set(subprocess.run([modelc, "import", "--list-ops"], capture_output=True, text=True,
                                   check=True).stdout.split())
    tests = sorted(t for t in os.listdir(data) if os.path.exists(os.path.join(data, t, "model.onnx")))
    passed, failed, applicable, by_type, by_random = [], [], 0, [], []
    with tempfile.TemporaryDirectory() as tmp:
        for t in tests:
            d = os.path.join(data, t)
            model = onnx.load(os.path.join(d, "model.onnx"))
            ops = {n.op_type for n in model.graph.node}
            if not ops or not ops <= supported or any(n.domain not in ("", "ai.onnx") for n in model.graph.node):
                continue
            why = element_type_exclusion(model)
            if why:
                by_type.append((t, why))
                continue
            why = random_exclusion(model, d)
            if why:
                by_random.append((t, why))
                continue
            applicable += 1
            try:
                why = run_test(modelc, d, tmp)
            except Exception as e:  # inputs that are sequences or optionals, not tensors
                why = "the test data cannot be read as tensors (%s)" % type(e).__name__
            (passed if why is None else failed).append((t, why))
    print("ONNX node tests: %d passed / %d applicable / %d total; excluded for element type: %d, "
          "for random outputs: %d" % (len(passed), applicable, len(tests), len(by_type), len(by_random)))
    for t, why in by_type:
        print("  EXCLUDED %s: element type: %s" % (t, why))
    for t, why in by_random:
        print("  EXCLUDED %s: random: %s" % (t, why))
    for t, why in failed:
        print("  FAIL %s: %s" % (t, why))
    names = [t for t, _ in passed]
    if update:
        with open(expected_path, "w") as f:
            f.write("".join(n + "\n" for n in names))
        return 0
    with open(expected_path) as f:
        expected = [l.strip() for l in f if l.strip()]
    lost = sorted(set(expected) - set(names))
    for t in lost:
        print("REGRESSION: %s passed before" % t)
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
