"""Regenerate the ONNX fixtures of tests/e2e/onnx_*.sh and test_onnx.c.

Run with Debian's Python, which has torch and onnx:

    /usr/bin/python3 tests/onnx/gen_fixtures.py

For each model NAME it writes NAME.onnx (torch.onnx.export), NAME.x.safetensors
(inputs under the graph's input names) and NAME.y.safetensors (the outputs
PyTorch computes, under the graph's output names). The models are small
and seeded, so the files are small and the same on every run; the tests
read only these files and never import torch.
"""
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, arr in tensors.items():
        ints = np.issubdtype(np.asarray(arr).dtype, np.integer)
        a = np.ascontiguousarray(arr, dtype=np.int32 if ints else np.float32)
        b = a.tobytes()
        header[name] = {"dtype": "I32" if ints else "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def randomize_bn(m):
    for mod in m.modules():
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            with torch.no_grad():
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.5, 0.5)


class Mlp(nn.Module):  # Gemm, Relu, Tanh, Softmax; names that are not identifiers
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 8)
        self.fc2 = nn.Linear(8, 5)
        self.out = nn.Linear(5, 3)

    def forward(self, x):
        h = torch.relu(self.fc1(x))
        h = torch.tanh(self.fc2(h))
        return torch.softmax(self.out(h), dim=-1)


class Cnn(nn.Module):  # Conv(+Relu), BatchNormalization, MaxPool, view(x.size(0), -1), Gemm
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 6, 3)
        self.fc = nn.Linear(6 * 2 * 2, 5)

    def forward(self, x):
        h = self.bn1(torch.relu(self.conv1(x)))
        h = F.max_pool2d(h, 2)
        h = torch.relu(self.conv2(h))
        h = h.view(h.size(0), -1)
        return F.log_softmax(self.fc(h), dim=1)


class Resnet(nn.Module):  # Conv+BN folded, residual Add, Concat, strided and padded Conv and pools,
    def __init__(self):   # GlobalAveragePool, Flatten
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.a = nn.Conv2d(4, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 2, 1)
        self.down = nn.Conv2d(6, 6, 3, stride=2, padding=1)
        self.head = nn.Linear(6, 4)

    def forward(self, x):
        h = F.relu(self.bn(self.stem(x)))
        h = h + F.leaky_relu(self.a(h), 0.1)
        h = torch.cat([h, torch.sigmoid(self.b(h))], dim=1)
        h = F.max_pool2d(F.relu(self.down(h)), 3, stride=1, padding=1)
        h = F.avg_pool2d(h, 2, stride=1, padding=1, count_include_pad=False)
        h = F.adaptive_avg_pool2d(h, 1)
        h = torch.flatten(h, 1)
        return self.head(h) * 0.5 - 1.0


class Ops(nn.Module):  # MatMul + Add, elementwise ops, reductions, Transpose, Reshape, Unsqueeze
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.w = nn.Parameter(torch.randn(4, 6, generator=g))
        self.b = nn.Parameter(torch.randn(6, generator=g))
        self.scale = nn.Parameter(torch.rand(6, generator=g) + 0.5)

    def forward(self, x):
        h = torch.matmul(x, self.w) + self.b
        e = F.elu(h) + F.softplus(h) - torch.exp(-torch.abs(h))
        e = e * self.scale / 2.0
        s = torch.sqrt(torch.abs(e) + 1.0) + torch.log(e * e + 1.0) + torch.clamp(h, 0.0, 6.0)
        p = torch.pow(s, 2.0) - F.selu(h)
        t = p.reshape(p.size(0), 2, 3).transpose(1, 2)
        m = torch.mean(t, dim=2) + torch.sum(t, dim=1, keepdim=True).squeeze(1).unsqueeze(1)[:, :, 0:1]
        return m, torch.max(t, dim=1)[0] - torch.neg(torch.min(t, dim=2)[0]).sum(dim=1, keepdim=True)


class Unsupported(nn.Module):  # Sin: no translation
    def forward(self, x):
        return torch.sin(x) + 1.0


class Convs(nn.Module):  # grouped and dilated Conv, ConvTranspose (strided, padded, grouped)
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 6, 3, groups=2, dilation=2, padding=2)
        self.up = nn.ConvTranspose2d(6, 3, 3, stride=2, padding=1, output_padding=1)
        self.up2 = nn.ConvTranspose2d(6, 4, 2, stride=2, groups=2, bias=False)

    def forward(self, x):
        h = torch.relu(self.conv(x))
        return self.up(h), self.up2(h)


class Recurrent(nn.Module):  # LSTM, GRU and RNN (one direction, batch first)
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 4, batch_first=True)
        self.gru = nn.GRU(3, 4, batch_first=True)
        self.rnn = nn.RNN(3, 5, batch_first=True)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        seq, _ = self.lstm(x)
        g, _ = self.gru(x)
        _, h = self.rnn(x)
        return self.fc(seq[:, -1]), g, h[0]


class Bidirectional(nn.Module):  # bidirectional LSTM, GRU and RNN (batch first)
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 4, batch_first=True, bidirectional=True)
        self.gru = nn.GRU(3, 5, batch_first=True, bidirectional=True)
        self.rnn = nn.RNN(3, 2, batch_first=True, bidirectional=True)

    def forward(self, x):
        seq, (h, _) = self.lstm(x)
        g, gh = self.gru(x)
        r, _ = self.rnn(x)
        return seq, h, g, gh.transpose(0, 1), r


class Argmax(nn.Module):  # MaxPool's indices output (PyTorch's per-channel ones: exported as a Sub of two)
    def __init__(self):
        super().__init__()
        self.pool = nn.MaxPool2d(3, stride=2, padding=1, return_indices=True)

    def forward(self, x):
        y, i = self.pool(x)
        return y, i.float()


def fixed_model():  # a graph on whole tensors: broadcasting, Concat and Softmax on axis 0,
    # a weight and a shape given as graph inputs (onnx.helper, NumPy's values)
    from onnx import TensorProto, helper
    nodes = [
        helper.make_node("Add", ["a", "b"], ["s"]),
        helper.make_node("Concat", ["s", "a"], ["c"], axis=0),
        helper.make_node("MatMul", ["c", "w"], ["m"]),
        helper.make_node("Transpose", ["m"], ["t"]),
        helper.make_node("Softmax", ["t"], ["y"], axis=0),
        helper.make_node("Reshape", ["m", "shape"], ["r"]),
    ]
    f = TensorProto.FLOAT
    graph = helper.make_graph(
        nodes, "fixed",
        [helper.make_tensor_value_info("a", f, [3, 4]), helper.make_tensor_value_info("b", f, [4]),
         helper.make_tensor_value_info("w", f, [4, 2]), helper.make_tensor_value_info("shape", TensorProto.INT64, [2])],
        [helper.make_tensor_value_info("y", f, [2, 6]), helper.make_tensor_value_info("r", f, [3, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    rs = np.random.RandomState(1)
    a, b, w = (rs.randn(*d).astype(np.float32) for d in ((3, 4), (4,), (4, 2)))
    m = np.concatenate([a + b, a], axis=0) @ w
    e = np.exp(m.T - m.T.max(axis=0))
    with open(os.path.join(HERE, "fixed.onnx"), "wb") as fh:
        fh.write(model.SerializeToString())
    write_safetensors(os.path.join(HERE, "fixed.x.safetensors"), {"a": a, "b": b, "w": w})
    write_safetensors(os.path.join(HERE, "fixed.c.safetensors"), {"shape": np.array([3, 4], dtype=np.int64)})
    write_safetensors(os.path.join(HERE, "fixed.y.safetensors"), {"y": e / e.sum(axis=0), "r": m.reshape(3, 4)})


class Grouped(nn.Module):  # Conv with group = 2
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, groups=2)

    def forward(self, x):
        return self.conv(x)


class Acts(nn.Module):  # Pad folded into Conv, PRelu, HardSwish, HardSigmoid
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, stride=2)
        self.prelu = nn.PReLU(3, init=0.3)

    def forward(self, x):
        h = self.prelu(self.conv(F.pad(x, (1, 2, 0, 1))))
        return F.hardswish(h) + F.hardsigmoid(h) * 2.0


class Spatial(nn.Module):  # 1-D Conv, pools and ConvTranspose; 3-D pools; a dilated 2-D pool
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(3, 4, 3, stride=2, padding=1)
        self.pool = nn.MaxPool1d(3, stride=2, padding=1)
        self.avg = nn.AvgPool1d(2, ceil_mode=True, count_include_pad=False)
        self.up = nn.ConvTranspose1d(4, 2, 3, stride=2, padding=1, output_padding=1)
        self.max3 = nn.MaxPool3d(2, stride=1, padding=1)
        self.avg3 = nn.AvgPool3d((2, 3, 1), stride=(1, 2, 1), padding=(1, 1, 0), count_include_pad=False)
        self.dil = nn.MaxPool2d(2, stride=1, dilation=2)

    def forward(self, x):  # x: [N, 3, 24]
        h = self.avg(self.pool(torch.relu(self.conv(x))))
        v = x.view(x.size(0), 3, 4, 3, 2)
        return self.up(h), self.avg3(self.max3(v)), self.dil(x.view(x.size(0), 3, 4, 6))


class Convt3d(nn.Module):  # 3-D ConvTranspose: strided, padded, grouped, dilated; and plain
    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose3d(4, 6, (3, 2, 3), stride=(2, 1, 2), padding=(1, 0, 1), output_padding=(1, 0, 0),
                                     dilation=(1, 2, 1), groups=2)
        self.plain = nn.ConvTranspose3d(4, 3, 2, bias=False)

    def forward(self, x):  # x: [N, 4, 3, 4, 5]
        return self.up(x), self.plain(x)


class PadModes(nn.Module):  # Pad in reflect and edge modes, Slice with a negative step (flip)
    def forward(self, x):  # x: [N, 2, 5, 6]
        a = F.pad(x, (1, 2, 2, 1), mode="reflect")
        b = F.pad(torch.relu(x), (0, 3, 1, 0), mode="replicate")
        return a[:, :, 1:7, :] * 0.5 + b, torch.flip(x, [2, 3])


def helper_model():  # Sum of three, ConstantOfShape, Max and Min of two, Where (onnx.helper)
    from onnx import TensorProto, helper
    nodes = [
        helper.make_node("Sum", ["x", "x", "x"], ["s"]),
        helper.make_node("Constant", [], ["shape"], value=helper.make_tensor("v", TensorProto.INT64, [1], [3])),
        helper.make_node("ConstantOfShape", ["shape"], ["c"],
                         value=helper.make_tensor("w", TensorProto.FLOAT, [1], [0.25])),
        helper.make_node("Max", ["s", "c"], ["m"]),
        helper.make_node("Min", ["m", "x"], ["k"]),
        helper.make_node("Greater", ["x", "c"], ["g"]),
        helper.make_node("Where", ["g", "k", "s"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "misc", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    x = np.random.RandomState(0).randn(4, 3).astype(np.float32)
    s = 3 * x
    k = np.minimum(np.maximum(s, 0.25), x)
    y = np.where(x > 0.25, k, s)
    with open(os.path.join(HERE, "misc.onnx"), "wb") as f:
        f.write(model.SerializeToString())
    write_safetensors(os.path.join(HERE, "misc.x.safetensors"), {"x": x})
    write_safetensors(os.path.join(HERE, "misc.y.safetensors"), {"y": y})


def noinput_model():  # a graph without inputs: Constant, ConstantOfShape of a constant shape, Add
    from onnx import TensorProto, helper
    c = np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5
    nodes = [
        helper.make_node("Constant", [], ["c"], value=helper.make_tensor("v", TensorProto.FLOAT, [2, 3], c.ravel())),
        helper.make_node("Constant", [], ["shape"], value=helper.make_tensor("s", TensorProto.INT64, [2], [2, 3])),
        helper.make_node("ConstantOfShape", ["shape"], ["h"],
                         value=helper.make_tensor("w", TensorProto.FLOAT, [1], [0.5])),
        helper.make_node("Add", ["c", "h"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "noinput", [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3]),
                                                     helper.make_tensor_value_info("c", TensorProto.FLOAT, [2, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    with open(os.path.join(HERE, "noinput.onnx"), "wb") as f:
        f.write(model.SerializeToString())
    write_safetensors(os.path.join(HERE, "noinput.y.safetensors"), {"y": c + 0.5, "c": c})


def export(name, model, shape, input_names, output_names, seed=0, opset=13, dynamic=True):
    torch.manual_seed(seed)
    model.eval()
    x = torch.randn(*shape)
    with torch.no_grad():
        ys = model(x)
    if not isinstance(ys, tuple):
        ys = (ys,)
    axes = {n: {0: "batch"} for n in input_names + output_names} if dynamic else None
    torch.onnx.export(model, x, os.path.join(HERE, name + ".onnx"), input_names=input_names,
                      output_names=output_names, dynamic_axes=axes, opset_version=opset)
    write_safetensors(os.path.join(HERE, name + ".x.safetensors"), {input_names[0]: x.numpy()})
    write_safetensors(os.path.join(HERE, name + ".y.safetensors"),
                      {n: y.numpy() for n, y in zip(output_names, ys)})


def main():
    only = sys.argv[1:]
    if only:  # regenerate the fixtures named
        for name in only:
            torch.manual_seed(0)
            if name == "spatial":
                export("spatial", Spatial(), (2, 3, 24), ["x"], ["out_1d", "out_3d", "out_dil"])
            elif name == "bidirectional":
                export("bidirectional", Bidirectional(), (2, 5, 3), ["x"],
                       ["lstm_seq", "lstm_h", "gru_seq", "gru_h", "rnn_seq"], dynamic=False)
            elif name == "argmax":
                export("argmax", Argmax(), (2, 3, 7, 6), ["x"], ["y", "indices"], dynamic=False)
            elif name == "noinput":
                noinput_model()
            elif name == "convt3d":
                export("convt3d", Convt3d(), (2, 4, 3, 4, 5), ["x"], ["up", "plain"])
            elif name == "padmodes":
                export("padmodes", PadModes(), (2, 2, 5, 6), ["x"], ["y", "flipped"])
            else:
                raise SystemExit("unknown fixture %s" % name)
        return 0
    torch.manual_seed(0)
    export("mlp", Mlp(), (3, 6), ["input.1"], ["probs"])
    torch.manual_seed(0)
    cnn = Cnn()
    randomize_bn(cnn)
    export("cnn", cnn, (3, 2, 8, 8), ["image"], ["log_probs"])
    torch.manual_seed(0)
    res = Resnet()
    randomize_bn(res)
    export("resnet", res, (2, 3, 6, 6), ["x"], ["y"], opset=17)
    torch.manual_seed(0)
    export("ops", Ops(), (3, 4), ["x"], ["mean", "range"])
    torch.manual_seed(0)
    export("acts", Acts(), (2, 2, 7, 6), ["x"], ["y"])
    helper_model()
    noinput_model()
    torch.manual_seed(0)
    export("convs", Convs(), (2, 4, 5, 6), ["x"], ["out_a", "out_b"])
    torch.manual_seed(0)
    export("recurrent", Recurrent(), (2, 5, 3), ["x"], ["lstm_fc", "gru_seq", "rnn_h"], dynamic=False)
    torch.manual_seed(0)
    export("bidirectional", Bidirectional(), (2, 5, 3), ["x"], ["lstm_seq", "lstm_h", "gru_seq", "gru_h", "rnn_seq"],
           dynamic=False)
    torch.manual_seed(0)
    export("argmax", Argmax(), (2, 3, 7, 6), ["x"], ["y", "indices"], dynamic=False)
    fixed_model()
    torch.manual_seed(0)
    export("spatial", Spatial(), (2, 3, 24), ["x"], ["out_1d", "out_3d", "out_dil"])
    torch.manual_seed(0)
    export("padmodes", PadModes(), (2, 2, 5, 6), ["x"], ["y", "flipped"])
    torch.manual_seed(0)
    export("convt3d", Convt3d(), (2, 4, 3, 4, 5), ["x"], ["up", "plain"])
    torch.manual_seed(0)
    for name, model, shape in (("unsupported", Unsupported(), (2, 3)), ("grouped", Grouped(), (1, 2, 5, 5))):
        torch.onnx.export(model, torch.zeros(*shape), os.path.join(HERE, name + ".onnx"),
                          input_names=["x"], output_names=["y"], opset_version=13)
    return 0


if __name__ == "__main__":
    sys.exit(main())
