"""Run an ONNX model on NumPy, for the operators modelc's export writes,
each written from the ONNX operator specification (opsets 13 and 14), and
compare with expected outputs; Debian's python3-onnx 1.12 has no
onnx.reference. Also runs onnx.checker (full_check) on the model.

  onnx_eval.py MODEL.onnx INPUTS.safetensors EXPECTED.safetensors

Exit 0 when every graph output matches the tensor of its name (relative
1e-4 of the largest magnitude), 1 otherwise, 77 when onnx or numpy is
missing.
"""
import json
import struct
import sys

try:
    import numpy as np
    import onnx
    from onnx import numpy_helper
except ImportError:
    sys.exit(77)

DT = {"F32": np.float32, "F64": np.float64, "I32": np.int32}


def read_st(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(blob[8 + n + b:8 + n + e], dtype=DT[info["dtype"]]).reshape(info["shape"])
    return out


def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


ACTS = {b"Tanh": np.tanh, b"Relu": lambda x: np.maximum(x, 0), b"Sigmoid": sigmoid}


def recurrent(op, x, W, R, B, h0, c0, a):
    """ONNX RNN, GRU, LSTM in one direction (forward or reverse), any layout."""
    layout = a.get("layout", 0)
    H = a["hidden_size"]
    G = {"RNN": 1, "GRU": 3, "LSTM": 4}[op]
    defaults = {"RNN": [b"Tanh"], "GRU": [b"Sigmoid", b"Tanh"], "LSTM": [b"Sigmoid", b"Tanh", b"Tanh"]}[op]
    acts = [ACTS[s] for s in a.get("activations", defaults)]
    if layout == 1:
        x = x.transpose(1, 0, 2)
    T, Bn = x.shape[0], x.shape[1]
    W, R = W[0], R[0]
    B = B[0] if B is not None else np.zeros(2 * G * H, x.dtype)
    Wb, Rb = B[:G * H], B[G * H:]
    if h0 is not None and layout == 1:
        h0 = h0.transpose(1, 0, 2)
    if c0 is not None and layout == 1:
        c0 = c0.transpose(1, 0, 2)
    h = h0[0] if h0 is not None else np.zeros((Bn, H), x.dtype)
    c = c0[0] if c0 is not None else np.zeros((Bn, H), x.dtype)
    Y = np.zeros((T, 1, Bn, H), x.dtype)
    steps = range(T - 1, -1, -1) if a.get("direction", b"forward") == b"reverse" else range(T)

    def blk(M, k):
        return M[k * H:(k + 1) * H]

    for t in steps:
        xt = x[t]
        if op == "RNN":
            h = acts[0](xt @ W.T + h @ R.T + Wb + Rb)
        elif op == "GRU":
            f, g = acts
            z = f(xt @ blk(W, 0).T + h @ blk(R, 0).T + blk(Wb, 0) + blk(Rb, 0))
            r = f(xt @ blk(W, 1).T + h @ blk(R, 1).T + blk(Wb, 1) + blk(Rb, 1))
            if a.get("linear_before_reset", 0):
                hh = g(xt @ blk(W, 2).T + r * (h @ blk(R, 2).T + blk(Rb, 2)) + blk(Wb, 2))
            else:
                hh = g(xt @ blk(W, 2).T + (r * h) @ blk(R, 2).T + blk(Rb, 2) + blk(Wb, 2))
            h = (1 - z) * hh + z * h
        else:
            f, g, hf = acts
            pre = [xt @ blk(W, k).T + h @ blk(R, k).T + blk(Wb, k) + blk(Rb, k) for k in range(4)]
            i, o, fg, cc = f(pre[0]), f(pre[1]), f(pre[2]), g(pre[3])
            c = fg * c + i * cc
            h = o * hf(c)
        Y[t, 0] = h
    Yh, Yc = h[None], c[None]
    if layout == 1:
        Y, Yh, Yc = Y.transpose(2, 0, 1, 3), Yh.transpose(1, 0, 2), Yc.transpose(1, 0, 2)
    return [Y, Yh, Yc]


def conv(x, w, b, a, transposed):
    """Conv (NCHW, OIHW) and ConvTranspose ([C_in, C_out, kh, kw]), group 1."""
    kh, kw = w.shape[2], w.shape[3]
    sh, sw = a.get("strides", [1, 1])
    pt, pl, pb, pr = a.get("pads", [0, 0, 0, 0])
    assert a.get("group", 1) == 1 and a.get("dilations", [1, 1]) == [1, 1]
    N, C, Hh, Ww = x.shape
    if not transposed:
        xp = np.zeros((N, C, Hh + pt + pb, Ww + pl + pr), x.dtype)
        xp[:, :, pt:pt + Hh, pl:pl + Ww] = x
        oh, ow = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
        y = np.zeros((N, w.shape[0], oh, ow), x.dtype)
        for i in range(oh):
            for j in range(ow):
                win = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
                y[:, :, i, j] = np.einsum("nchw,ochw->no", win, w)
    else:
        op = a.get("output_padding", [0, 0])
        fh, fw = (Hh - 1) * sh + kh + op[0], (Ww - 1) * sw + kw + op[1]
        full = np.zeros((N, w.shape[1], fh, fw), x.dtype)
        for i in range(Hh):
            for j in range(Ww):
                full[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += np.einsum("nc,cohw->nohw", x[:, :, i, j], w)
        y = full[:, :, pt:fh - pb, pl:fw - pr]
    if b is not None:
        y = y + b.reshape(1, -1, 1, 1)
    return y


def run(model, feeds):
    env = dict(feeds)
    for t in model.graph.initializer:
        env[t.name] = numpy_helper.to_array(t)
    for n in model.graph.node:
        a = attrs(n)
        x = [env[i] if i else None for i in n.input]
        op = n.op_type
        if op in ("RNN", "GRU", "LSTM"):
            pad = x + [None] * (8 - len(x))
            outs = recurrent(op, pad[0], pad[1], pad[2], pad[3], pad[5], pad[6], a)
        elif op in ("Conv", "ConvTranspose"):
            outs = [conv(x[0], x[1], x[2] if len(x) > 2 else None, a, op == "ConvTranspose")]
        elif op == "Identity":
            outs = [x[0]]
        elif op == "Transpose":
            outs = [np.transpose(x[0], a["perm"])]
        elif op in ("Add", "Sub", "Mul", "Div", "Max", "Min", "Pow"):
            f = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide, "Max": np.maximum,
                 "Min": np.minimum, "Pow": np.power}[op]
            outs = [f(x[0], x[1]).astype(x[0].dtype)]
        elif op in ("Relu", "Sigmoid", "Tanh", "Exp", "Log", "Neg", "Sqrt", "Abs", "Reciprocal"):
            f = {"Relu": lambda v: np.maximum(v, 0), "Sigmoid": sigmoid, "Tanh": np.tanh, "Exp": np.exp,
                 "Log": np.log, "Neg": np.negative, "Sqrt": np.sqrt, "Abs": np.abs,
                 "Reciprocal": np.reciprocal}[op]
            outs = [f(x[0]).astype(x[0].dtype)]
        elif op == "Gemm":
            A = x[0].T if a.get("transA", 0) else x[0]
            Bm = x[1].T if a.get("transB", 0) else x[1]
            y = a.get("alpha", 1.0) * (A @ Bm)
            if len(x) > 2 and x[2] is not None:
                y = y + a.get("beta", 1.0) * x[2]
            outs = [y.astype(x[0].dtype)]
        elif op == "MatMul":
            outs = [x[0] @ x[1]]
        elif op == "Reshape":
            shape = [x[0].shape[i] if s == 0 else s for i, s in enumerate(x[1].tolist())]
            outs = [x[0].reshape(shape)]
        elif op == "Squeeze":
            outs = [np.squeeze(x[0], axis=tuple(x[1].tolist()))]
        elif op == "Unsqueeze":
            outs = [np.expand_dims(x[0], axis=tuple(x[1].tolist()))]
        elif op == "Expand":
            outs = [x[0] * np.ones(x[1].tolist(), x[0].dtype)]
        elif op == "Shape":
            outs = [np.array(x[0].shape, np.int64)]
        elif op == "Pad":
            assert a.get("mode", b"constant") == b"constant"
            r = x[0].ndim
            p = x[1].tolist()
            v = x[2].item() if len(x) > 2 and x[2] is not None else 0
            outs = [np.pad(x[0], [(p[i], p[r + i]) for i in range(r)], constant_values=v)]
        elif op == "Gather":
            outs = [np.take(x[0], x[1].astype(np.int64), axis=a.get("axis", 0))]
        elif op in ("Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual"):
            f = {"Equal": np.equal, "Greater": np.greater, "Less": np.less, "GreaterOrEqual": np.greater_equal,
                 "LessOrEqual": np.less_equal}[op]
            outs = [f(x[0], x[1])]
        elif op == "Cast":
            to = {1: np.float32, 6: np.int32, 7: np.int64, 9: np.bool_, 11: np.float64}[a["to"]]
            outs = [x[0].astype(to)]
        elif op == "Where":
            outs = [np.where(x[0], x[1], x[2])]
        elif op == "Concat":
            outs = [np.concatenate(x, axis=a["axis"])]
        elif op == "Slice":
            sl = [slice(None)] * x[0].ndim
            axes = x[3].tolist() if len(x) > 3 else list(range(len(x[1])))
            steps = x[4].tolist() if len(x) > 4 else [1] * len(x[1])
            for s, e, ax, st in zip(x[1].tolist(), x[2].tolist(), axes, steps):
                sl[ax] = slice(s, min(e, x[0].shape[ax]), st)
            outs = [x[0][tuple(sl)]]
        elif op in ("Softmax", "LogSoftmax"):
            v = x[0] - x[0].max(axis=a.get("axis", -1), keepdims=True)
            ex = np.exp(v)
            s = ex.sum(axis=a.get("axis", -1), keepdims=True)
            outs = [ex / s if op == "Softmax" else v - np.log(s)]
        elif op in ("ReduceSum", "ReduceMean", "ReduceMax"):
            axes = tuple(x[1].tolist() if op == "ReduceSum" else a["axes"])
            f = {"ReduceSum": np.sum, "ReduceMean": np.mean, "ReduceMax": np.max}[op]
            outs = [f(x[0], axis=axes, keepdims=bool(a.get("keepdims", 1)))]
        else:
            sys.exit("onnx_eval.py: operator %s is not implemented here" % op)
        for name, v in zip(n.output, outs):
            if name:
                env[name] = v
    return {o.name: env[o.name] for o in model.graph.output}


def main(model_path, inputs, expected):
    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    got = run(model, read_st(inputs))
    want = read_st(expected)
    bad = 0
    for name, v in got.items():
        w = want[name]
        if v.shape != w.shape:
            print("%s: %s has shape %s, expected %s" % (model_path, name, v.shape, w.shape))
            bad += 1
            continue
        scale = max(float(np.abs(w).max()) if w.size else 0.0, 1e-30)
        err = float(np.abs(v.astype(np.float64) - w.astype(np.float64)).max()) if w.size else 0.0
        if not err <= 1e-4 * scale:
            print("%s: %s differs by %g (largest magnitude %g)" % (model_path, name, err, scale))
            bad += 1
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
