"""Reference outputs and gradients of modelc's recurrent layers from
PyTorch's nn.RNN, nn.GRU and nn.LSTM, for tests/unit/test_rnn_fixtures.c.

  /usr/bin/python3 tests/rnn/gen_fixtures.py     (from the repository root)

For each case it writes tests/rnn/<case>.mdl, a model of one layer
whose loss is sum(out * r), and tests/rnn/<case>.safetensors (f64) with
the layer's parameters in Keras's layout and names, the inputs x and r,
the expected output "expect.out" and the expected gradients
"expect.grad.<name>" of the loss with respect to every parameter, x
and the initial states h0 (and c0) where the case gives them.

Keras's weights are the leaves; PyTorch's are built from them:
  kernel [F, G*U] is weight_ih^T and recurrent_kernel [U, G*U] is
  weight_hh^T, with the gates reordered for the GRU (Keras z, r, h;
  PyTorch r, z, n); the LSTM's gates i, f, c, o are PyTorch's i, f, g, o.
  simple_rnn and lstm have one bias (bias_ih; bias_hh = 0), the GRU two
  (Keras bias[0] = bias_ih, bias[1] = bias_hh: reset_after).
  go_backwards: PyTorch runs on x reversed along time; modelc stacks
  each step's output at the time index it read, so PyTorch's sequence is
  reversed back before comparing.
The tests never import torch: they read the committed files.
"""
import json
import os
import struct

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))

# name, layer, batch, steps, features, units, return_sequences, go_backwards, activation,
# initial state given
CASES = [
    ("simple_rnn", "simple_rnn", 2, 4, 3, 5, False, False, "tanh", False),
    ("simple_rnn_relu_seq_back", "simple_rnn", 3, 5, 2, 4, True, True, "relu", False),
    ("gru_seq", "gru", 2, 4, 3, 5, True, False, "tanh", False),
    ("gru_back", "gru", 3, 6, 2, 3, False, True, "tanh", False),
    ("gru_init", "gru", 2, 3, 2, 4, True, False, "tanh", True),
    ("lstm", "lstm", 2, 5, 3, 4, False, False, "tanh", False),
    ("lstm_seq_back", "lstm", 3, 4, 2, 3, True, True, "tanh", False),
    ("lstm_n1_t1", "lstm", 1, 1, 3, 2, True, False, "tanh", False),
    ("lstm_init_back", "lstm", 2, 4, 3, 3, False, True, "tanh", True),
]

GATES = {"simple_rnn": 1, "gru": 3, "lstm": 4}


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f8")
        b = a.tobytes()
        header[name] = {"dtype": "F64", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def torch_layer(layer, f, u, act, k, rk, b):
    """The PyTorch module and its weights from the Keras leaves."""
    if layer == "simple_rnn":
        m = torch.nn.RNN(f, u, batch_first=True, nonlinearity=act)
        w = {"weight_ih_l0": k.t(), "weight_hh_l0": rk.t(), "bias_ih_l0": b, "bias_hh_l0": torch.zeros_like(b)}
    elif layer == "lstm":
        m = torch.nn.LSTM(f, u, batch_first=True)
        w = {"weight_ih_l0": k.t(), "weight_hh_l0": rk.t(), "bias_ih_l0": b, "bias_hh_l0": torch.zeros_like(b)}
    else:
        m = torch.nn.GRU(f, u, batch_first=True)

        def rz(t):  # Keras z, r, h columns -> PyTorch r, z, n rows
            return torch.cat([t[..., u:2 * u], t[..., 0:u], t[..., 2 * u:]], dim=-1)

        w = {"weight_ih_l0": rz(k).t(), "weight_hh_l0": rz(rk).t(), "bias_ih_l0": rz(b[0]), "bias_hh_l0": rz(b[1])}
    m = m.double()
    for p in list(m._parameters):
        del m._parameters[p]
    for name, t in w.items():
        setattr(m, name, t)
    m._flat_weights = [getattr(m, wn) for wn in m._flat_weights_names]
    return m


def case(name, layer, n, t, f, u, seq, back, act, init):
    g = torch.Generator().manual_seed(sum(map(ord, name)))

    def rand(*shape):
        return (torch.rand(*shape, generator=g, dtype=torch.float64) * 2 - 1).requires_grad_()

    gu = GATES[layer] * u
    k, rk = rand(f, gu), rand(u, gu)
    b = rand(2, gu) if layer == "gru" else rand(gu)
    x = rand(n, t, f)
    r = torch.rand(*((n, t, u) if seq else (n, u)), generator=g, dtype=torch.float64) * 2 - 1
    m = torch_layer(layer, f, u, act, k, rk, b)
    xs = x.flip(1) if back else x
    states = {}
    if init:
        states["h0"] = rand(n, u)
        if layer == "lstm":
            states["c0"] = rand(n, u)
    if not init:
        ys, hn = m(xs)
    elif layer == "lstm":
        ys, hn = m(xs, (states["h0"][None], states["c0"][None]))
    else:
        ys, hn = m(xs, states["h0"][None])
    if seq:
        out = ys.flip(1) if back else ys
    else:
        out = ys[:, -1]
    loss = (out * r).sum()
    loss.backward()
    p = layer
    tensors = {
        f"{p}.kernel": k.detach(), f"{p}.recurrent_kernel": rk.detach(), f"{p}.bias": b.detach(),
        "x": x.detach(), "r": r,
        "expect.out": out.detach(), "expect.loss": loss.detach().reshape(()),
        f"expect.grad.{p}.kernel": k.grad, f"expect.grad.{p}.recurrent_kernel": rk.grad,
        f"expect.grad.{p}.bias": b.grad, "expect.grad.x": x.grad,
    }
    for s, v in states.items():
        tensors[s] = v.detach()
        tensors["expect.grad." + s] = v.grad
    write_safetensors(os.path.join(HERE, name + ".safetensors"), {a: v.numpy() for a, v in tensors.items()})
    rshape = f"N, {t}, {u}" if seq else f"N, {u}"
    opts = "".join([", return_sequences=true" if seq else "", ", go_backwards=true" if back else "",
                    f', activation="{act}"' if act != "tanh" else ""])
    if init:
        opts += ", initial_state=" + ("[h0, c0]" if layer == "lstm" else "h0")
    state_inputs = "".join(f"input {s}: f64[N, {u}]\n" for s in states)
    with open(os.path.join(HERE, name + ".mdl"), "w") as fm:
        fm.write(f"# Generated by tests/rnn/gen_fixtures.py: {layer} against PyTorch.\n"
                 f"model {name}\n"
                 f"input x: f64[N, {t}, {f}]\n"
                 f"input r: f64[{rshape}]\n"
                 f"{state_inputs}"
                 f"out = {layer}(x, {u}{opts})\n"
                 f"loss = sum(out * r)\n"
                 f"output out\n")


def main():
    for c in CASES:
        case(*c)


if __name__ == "__main__":
    main()
