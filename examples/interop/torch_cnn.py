"""examples/fashion_cnn_bn.mdl's network in PyTorch, with random weights
and batchnorm statistics: writes its state_dict (cnn.safetensors, in the
state_dict's order; Debian's Python has no `safetensors` package, so the
file is written with json and struct), four random images
(x.safetensors, NHWC as modelc reads them) and PyTorch's probabilities
for them (torch_probs.npy).

    /usr/bin/python3 examples/interop/torch_cnn.py
"""
import json, struct
import numpy as np, torch, torch.nn as nn

def save(path, tensors):
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        b = np.ascontiguousarray(a).tobytes()
        dtype = {np.float32: "F32", np.int64: "I64"}[a.dtype.type]
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))

torch.manual_seed(1)
# modelc's batchnorm has Keras's epsilon, 1e-3
net = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32, eps=1e-3), nn.ReLU(),
                    nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64, eps=1e-3),
                    nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Dropout(0.3),
                    nn.Linear(128, 10))
for m in net.modules():
    if isinstance(m, nn.BatchNorm2d):
        with torch.no_grad():
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.5, 0.5)
net.eval()
x = torch.rand(4, 1, 28, 28)
save("cnn.safetensors", {k: v.numpy() for k, v in net.state_dict().items()})
save("x.safetensors", {"x": x.numpy().transpose(0, 2, 3, 1)})
np.save("torch_probs.npy", torch.softmax(net(x), dim=-1).detach().numpy())
