#!/usr/bin/env python3
"""Compare the tensors two safetensors files share (parameters, batchnorm
statistics; optimizer slots and the step are left out): one line each,
`identical` when the bytes are the same, otherwise the largest absolute
difference. Standard library only.

    python3 compare.py A.safetensors B.safetensors [GLOB...]

With globs, only the tensors whose names match one of them.
"""
import fnmatch
import json
import struct
import sys


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, t in header.items():
        lo, hi = t["data_offsets"]
        out[name] = (t["dtype"], t["shape"], data[8 + n + lo:8 + n + hi])
    return out


def values(dtype, raw):
    code = {"F32": "f", "F64": "d", "I32": "i"}[dtype]
    return struct.unpack("<%d%s" % (len(raw) // struct.calcsize(code), code), raw)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__.strip())
    a, b = load(sys.argv[1]), load(sys.argv[2])
    globs = sys.argv[3:] or ["*"]
    names = [k for k in a if k in b and not k.startswith("optimizer.")
             and any(fnmatch.fnmatchcase(k, g) for g in globs)]
    width = max(len(k) for k in names) if names else 0
    for k in names:
        (da, sa, ra), (db, sb, rb) = a[k], b[k]
        if (da, sa) != (db, sb):
            how = "%s%s vs %s%s" % (da, sa, db, sb)
        elif ra == rb:
            how = "identical"
        else:
            diff = max(abs(x - y) for x, y in zip(values(da, ra), values(db, rb)))
            how = "differs (max |difference| %.4g)" % diff
        print("%-*s  %s" % (width, k, how))


if __name__ == "__main__":
    main()
