#!/usr/bin/env python3
"""Read a TensorBoard event file without TensorFlow: check the TFRecord
framing and both masked CRC32Cs of every record, decode each Event
(wall_time 1, step 2, file_version 3, summary 5; Summary.value 1;
Value tag 1, simple_value 2, histo 5; HistogramProto min 1 .. sum_squares
5, bucket_limit 6, bucket 7) and print one line per value:

    file_version brain.Event:2
    STEP scalar TAG VALUE
    STEP histo TAG num=N min=A max=B sum=S buckets=K count=C

Exit 1 with the byte offset on the first framing, CRC or decoding error.
`--selftest` checks the CRC32C against the standard check value."""
import struct
import sys


def _table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        t.append(c)
    return t


TABLE = _table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked(c):
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


class Bad(Exception):
    pass


def varint(b, i):
    v = shift = 0
    while True:
        if i >= len(b):
            raise Bad("truncated varint")
        x = b[i]
        i += 1
        v |= (x & 0x7F) << shift
        shift += 7
        if not x & 0x80:
            return v, i
        if shift > 63:
            raise Bad("varint too long")


def fields(b):
    """(field number, wire type, value) of a message's bytes."""
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 1:
            if i + 8 > len(b):
                raise Bad("truncated fixed64")
            v, i = b[i:i + 8], i + 8
        elif wt == 5:
            if i + 4 > len(b):
                raise Bad("truncated fixed32")
            v, i = b[i:i + 4], i + 4
        elif wt == 2:
            n, i = varint(b, i)
            if i + n > len(b):
                raise Bad("truncated length-delimited field")
            v, i = b[i:i + n], i + n
        else:
            raise Bad("wire type %d" % wt)
        yield num, wt, v


def f64(v):
    return struct.unpack("<d", v)[0]


def packed_doubles(v):
    if len(v) % 8:
        raise Bad("packed doubles of %d bytes" % len(v))
    return list(struct.unpack("<%dd" % (len(v) // 8), v))


def histo(b):
    h = {"limits": [], "buckets": []}
    names = {1: "min", 2: "max", 3: "num", 4: "sum", 5: "sum_squares"}
    for num, wt, v in fields(b):
        if num in names and wt == 1:
            h[names[num]] = f64(v)
        elif num == 6 and wt == 2:
            h["limits"] += packed_doubles(v)
        elif num == 7 and wt == 2:
            h["buckets"] += packed_doubles(v)
    if len(h["limits"]) != len(h["buckets"]):
        raise Bad("%d bucket limits for %d buckets" % (len(h["limits"]), len(h["buckets"])))
    return h


def event(b):
    ev = {"step": 0, "values": []}
    for num, wt, v in fields(b):
        if num == 1 and wt == 1:
            ev["wall_time"] = f64(v)
        elif num == 2 and wt == 0:
            ev["step"] = v - (1 << 64) if v >= 1 << 63 else v
        elif num == 3 and wt == 2:
            ev["file_version"] = v.decode()
        elif num == 5 and wt == 2:
            for n2, w2, val in fields(v):
                if n2 != 1 or w2 != 2:
                    continue
                item = {}
                for n3, w3, x in fields(val):
                    if n3 == 1 and w3 == 2:
                        item["tag"] = x.decode()
                    elif n3 == 2 and w3 == 5:
                        item["simple_value"] = struct.unpack("<f", x)[0]
                    elif n3 == 5 and w3 == 2:
                        item["histo"] = histo(x)
                ev["values"].append(item)
    return ev


def records(data):
    off = 0
    while off < len(data):
        if off + 12 > len(data):
            raise Bad("byte %d: truncated record header" % off)
        head = data[off:off + 8]
        (n,) = struct.unpack("<Q", head)
        (hcrc,) = struct.unpack("<I", data[off + 8:off + 12])
        if hcrc != masked(crc32c(head)):
            raise Bad("byte %d: the length's CRC does not match" % off)
        if off + 12 + n + 4 > len(data):
            raise Bad("byte %d: truncated record of %d bytes" % (off, n))
        body = data[off + 12:off + 12 + n]
        (dcrc,) = struct.unpack("<I", data[off + 12 + n:off + 16 + n])
        if dcrc != masked(crc32c(body)):
            raise Bad("byte %d: the data's CRC does not match" % (off + 12))
        yield off, body
        off += 16 + n


def main():
    if sys.argv[1:] == ["--selftest"]:
        c = crc32c(b"123456789")
        print("crc32c(123456789) = 0x%08X" % c)
        return 0 if c == 0xE3069283 else 1
    data = open(sys.argv[1], "rb").read()
    try:
        for off, body in records(data):
            try:
                ev = event(body)
            except Bad as e:
                raise Bad("byte %d: %s" % (off, e))
            if "file_version" in ev:
                print("file_version", ev["file_version"])
            for v in ev["values"]:
                if "simple_value" in v:
                    print(ev["step"], "scalar", v["tag"], "%.6g" % v["simple_value"])
                elif "histo" in v:
                    h = v["histo"]
                    print(ev["step"], "histo", v["tag"],
                          "num=%g min=%.6g max=%.6g sum=%.6g buckets=%d count=%g" %
                          (h.get("num", 0), h.get("min", 0), h.get("max", 0), h.get("sum", 0),
                           len(h["buckets"]), round(sum(h["buckets"]), 3)))
    except Bad as e:
        print("%s: %s" % (sys.argv[1], e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
