"""Load a modelc checkpoint of examples/fashion_mlp.mdl into the same
network in PyTorch, following the notes in the checkpoint's __metadata__
(layers, and for each parameter the PyTorch name and transposition), and
print the predicted class and its probability for each image of X.npy.

    /usr/bin/python3 load_into_torch.py CKPT.safetensors X.npy
"""
import json, struct, sys
import numpy as np, torch

blob = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", blob[:8])[0]
header = json.loads(blob[8:8 + n])
meta = header.pop("__metadata__")
def tensor(name):
    begin, end = header[name]["data_offsets"]
    return np.frombuffer(blob[8 + n + begin:8 + n + end], np.float32).reshape(header[name]["shape"])

net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 256), torch.nn.ReLU(),
                          torch.nn.Linear(256, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
linears = [m for m in net if isinstance(m, torch.nn.Linear)]
for layer, module in zip(meta["layers"].split(","), linears):
    for what in ("kernel", "bias"):
        name, _, how = meta[f"torch.{layer}.{what}"].partition(": ")
        w = tensor(f"{layer}.{what}")
        getattr(module, name).data = torch.from_numpy((w.T if how == "transpose" else w).copy())

probs = torch.softmax(net(torch.from_numpy(np.load(sys.argv[2]))), dim=-1)
for i, p in enumerate(probs):
    print(f"{i}: class {int(p.argmax())} p={float(p.max()):.4f}")
