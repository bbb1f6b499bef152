"""Regenerate the fixtures of tests/e2e/convert_weights.sh.

Run once with Debian's Python, which has torch:

    /usr/bin/python3 tests/interop/gen_fixtures.py

It builds small_cnn.mdl's network in PyTorch (conv 2->3 with bias,
BatchNorm2d with random statistics, ReLU, 2x2 max pooling, flatten in
NCHW order, Linear 27->5, ReLU, Linear 5->4, softmax), seeded, and writes

  torch.safetensors   its state_dict (conv.weight OIHW, bn.running_mean,
                      bn.num_batches_tracked, fc1.weight [out,in], ...)
                      in the state_dict's order
  keras.safetensors   the same weights under Keras-style names
                      (conv2d/kernel:0 HWIO, batch_normalization/gamma:0,
                      dense/kernel:0 [in,out] with NHWC-flatten rows, ...),
                      sorted by name, so only names can pair them
  bad_shape.safetensors  the state_dict with fc1 of 6 units
  extra.safetensors      the state_dict with one module too many
  x.safetensors       inputs x [8,6,6,2] (NHWC, as modelc reads them)
  y.safetensors       the probabilities PyTorch computes, as `probs`

The test reads only these files and never imports torch.
"""
import json
import os
import struct

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, arr in tensors.items():
        a = np.ascontiguousarray(arr)
        dt = {np.float32: "F32", np.int32: "I32", np.int64: "I64"}[a.dtype.type]
        b = a.tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(os.path.join(HERE, path), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


class SmallCnn(nn.Module):
    def __init__(self, units=5):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.fc1 = nn.Linear(27, units)
        self.fc2 = nn.Linear(units, 4)

    def forward(self, x):
        h = torch.relu(self.bn(self.conv(x)))
        h = torch.max_pool2d(h, 2).flatten(1)
        return torch.softmax(self.fc2(torch.relu(self.fc1(h))), dim=-1)


def state(m):
    return {k: v.detach().numpy() for k, v in m.state_dict().items()}


def main():
    torch.manual_seed(7)
    m = SmallCnn()
    with torch.no_grad():
        m.bn.running_mean.uniform_(-0.5, 0.5)
        m.bn.running_var.uniform_(0.5, 2.0)
        m.bn.weight.uniform_(0.5, 1.5)
        m.bn.bias.uniform_(-0.5, 0.5)
    m.eval()
    x = torch.rand(8, 2, 6, 6)
    with torch.no_grad():
        y = m(x).numpy()
    sd = state(m)
    write_safetensors("torch.safetensors", sd)
    # Keras names and layouts: HWIO kernels, [in, out] dense kernels whose
    # rows follow the NHWC flatten (h, w, c) of the [3, 3, 3] pooled map
    w1 = sd["fc1.weight"].reshape(5, 3, 3, 3).transpose(2, 3, 1, 0).reshape(27, 5)
    keras = {
        "conv2d/kernel:0": sd["conv.weight"].transpose(2, 3, 1, 0),
        "conv2d/bias:0": sd["conv.bias"],
        "batch_normalization/gamma:0": sd["bn.weight"],
        "batch_normalization/beta:0": sd["bn.bias"],
        "batch_normalization/moving_mean:0": sd["bn.running_mean"],
        "batch_normalization/moving_variance:0": sd["bn.running_var"],
        "dense/kernel:0": w1,
        "dense/bias:0": sd["fc1.bias"],
        "dense_1/kernel:0": sd["fc2.weight"].T,
        "dense_1/bias:0": sd["fc2.bias"],
    }
    write_safetensors("keras.safetensors", dict(sorted(keras.items())))
    write_safetensors("bad_shape.safetensors", state(SmallCnn(units=6)))
    extra = dict(sd)
    extra["head.weight"] = np.zeros((4, 4), np.float32)
    write_safetensors("extra.safetensors", extra)
    write_safetensors("x.safetensors", {"x": x.numpy().transpose(0, 2, 3, 1)})
    write_safetensors("y.safetensors", {"probs": y})


if __name__ == "__main__":
    main()
