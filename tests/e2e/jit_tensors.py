"""Deterministic test tensors for a model, written as safetensors with the
standard library only. The model's parameters and inputs are read from
its IR text (`modelc ir --no-loc`).

  jit_tensors.py params MODEL.ir OUT.safetensors SEED
  jit_tensors.py inputs MODEL.ir OUT.safetensors N SEED [CLASSES]
"""
import json
import random
import re
import struct
import sys

LEAF = re.compile(r'^  %\S+ = (param|input) "([^"]+)".*: (f32|f64|i32)\[([^\]]*)\]')  # not in loop bodies
CODES = {"f32": ("F32", "f"), "f64": ("F64", "d"), "i32": ("I32", "i")}


def leaves(path, kind):
    out = []
    with open(path) as f:
        for line in f:
            m = LEAF.match(line)
            if m and m.group(1) == kind:
                dims = [d for d in m.group(4).split(",") if d]
                out.append((m.group(2), m.group(3), dims))
    return out


def write(path, tensors):
    header, data = {}, b""
    for name, dt, shape, vals in sorted(tensors):
        st, code = CODES[dt]
        raw = struct.pack("<%d%s" % (len(vals), code), *vals)
        header[name] = {"dtype": st, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def main():
    cmd, model, out = sys.argv[1], sys.argv[2], sys.argv[3]
    n = int(sys.argv[4]) if cmd == "inputs" else 0
    rng = random.Random(int(sys.argv[5] if cmd == "inputs" else sys.argv[4]))
    classes = int(sys.argv[6]) if cmd == "inputs" and len(sys.argv) > 6 else 10
    tensors = []
    for name, dt, dims in leaves(model, "param" if cmd == "params" else "input"):
        shape = [n if d == "N" else int(d) for d in dims]
        count = 1
        for d in shape:
            count *= d
        if dt == "i32":
            vals = [rng.randrange(classes) for _ in range(count)]
        elif cmd == "params":
            vals = [rng.gauss(0.0, 0.2) for _ in range(count)]
        else:
            vals = [rng.random() for _ in range(count)]
        tensors.append((name, dt, shape, vals))
    write(out, tensors)


if __name__ == "__main__":
    main()
