"""An independent safetensors reader and writer using only the Python
standard library (json + struct), for interoperability tests.

  safetensors_py.py dump FILE      print metadata and every tensor, sorted
  safetensors_py.py summary FILE   metadata, then name dtype shape min max mean
  safetensors_py.py write FILE     write a small file with known contents
"""
import json
import math
import struct
import sys

FORMATS = {"F32": ("f", 4), "F64": ("d", 8), "I32": ("i", 4)}


def fmt(v):
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    return repr(v)


def load(path):
    """Validate the layout; return (metadata, {name: (dtype, shape, values)})."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    if (8 + n) % 8:
        sys.exit("header is not padded to a multiple of 8 bytes")
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    meta = header.pop("__metadata__", None)
    pos = 0
    for name in sorted(header, key=lambda k: header[k]["data_offsets"]):
        begin, end = header[name]["data_offsets"]
        if begin != pos:
            sys.exit("tensor %s is not contiguous" % name)
        pos = end
    if pos != len(data):
        sys.exit("data has %d trailing bytes" % (len(data) - pos))
    if list(header) != sorted(header):
        sys.exit("tensors are not sorted by name")
    tensors = {}
    for name in sorted(header):
        info = header[name]
        code, size = FORMATS[info["dtype"]]
        count = 1
        for d in info["shape"]:
            count *= d
        begin, end = info["data_offsets"]
        if end - begin != count * size:
            sys.exit("tensor %s has the wrong size" % name)
        vals = struct.unpack("<%d%s" % (count, code), data[begin:end])
        tensors[name] = (info["dtype"], info["shape"], vals)
    return meta, tensors


def dump(path):
    meta, tensors = load(path)
    if meta is not None:
        print("__metadata__", meta)
    for name, (dtype, shape, vals) in tensors.items():
        print(name, dtype, shape, "[" + ", ".join(fmt(v) for v in vals) + "]")


def summary(path):
    meta, tensors = load(path)
    for k in sorted(meta or {}):
        print("meta %s=%s" % (k, meta[k]))
    for name, (dtype, shape, vals) in tensors.items():
        mean = sum(vals) / len(vals) if vals else 0.0
        lo = min(vals) if vals else 0.0
        hi = max(vals) if vals else 0.0
        print("%s %s %s min=%.6g max=%.6g mean=%.6g" % (name, dtype, shape, lo, hi, mean))


def write(path):
    tensors = [
        ("w", "F32", [2, 2], struct.pack("<4f", 1.0, 2.0, 3.0, 4.5)),
        ("i", "I32", [3], struct.pack("<3i", 1, 2, -3)),
        ("s", "F64", [], struct.pack("<d", 0.1)),
    ]
    header = {"__metadata__": {"source": "python"}}
    data = b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


if __name__ == "__main__":
    {"dump": dump, "summary": summary, "write": write}[sys.argv[1]](sys.argv[2])
