"""Compare the tensors of two safetensors files (standard library only):
same names, dtypes and shapes; values equal within a tolerance relative to
each tensor's largest magnitude (f32: 1e-4, f64: 1e-10); NaN and
infinities must match exactly.

  jit_compare.py EXPECTED.safetensors GOT.safetensors
"""
import json
import math
import struct
import sys

FORMATS = {"F32": ("f", 4), "F64": ("d", 8), "I32": ("i", 4)}
RTOL = {"F32": 1e-4, "F64": 1e-10, "I32": 0.0}


def read(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    header.pop("__metadata__", None)
    data = blob[8 + n:]
    out = {}
    for name, info in header.items():
        code, size = FORMATS[info["dtype"]]
        begin, end = info["data_offsets"]
        vals = struct.unpack("<%d%s" % ((end - begin) // size, code), data[begin:end])
        out[name] = (info["dtype"], info["shape"], vals)
    return out


def same(a, b):
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return None


def main(expected, got):
    e, g = read(expected), read(got)
    if sorted(e) != sorted(g):
        sys.exit("%s: tensors %s, expected %s" % (got, sorted(g), sorted(e)))
    bad = 0
    for name in sorted(e):
        (dt, shape, ev), (dt2, shape2, gv) = e[name], g[name]
        if (dt, shape) != (dt2, shape2):
            sys.exit("%s: %s is %s%s, expected %s%s" % (got, name, dt2, shape2, dt, shape))
        scale = max([abs(v) for v in ev if math.isfinite(v)] + [0.0])
        tol = RTOL[dt] * scale + (1e-30 if dt == "F64" else 1e-12)
        worst = 0.0
        for i, (a, b) in enumerate(zip(ev, gv)):
            s = same(a, b)
            if s is False:
                print("%s: %s[%d] = %r, expected %r" % (got, name, i, b, a))
                bad += 1
                break
            if s is None and abs(a - b) > tol:
                print("%s: %s[%d] = %r, expected %r (tolerance %.3g)" % (got, name, i, b, a, tol))
                bad += 1
                break
            if s is None:
                worst = max(worst, abs(a - b) / scale if scale else 0.0)
    if bad:
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
