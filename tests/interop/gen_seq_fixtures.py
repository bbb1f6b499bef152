"""Regenerate the sequence fixtures of tests/e2e/convert_weights_seq.sh.

Run once with Debian's Python, which has torch:

    /usr/bin/python3 tests/interop/gen_seq_fixtures.py

It builds seq.mdl's network in PyTorch (Embedding 10x4, LayerNorm(4) with
random weight and bias, LSTM 4->5, GRU 5->3 and RNN 3->2, batch first,
one layer each), seeded, and writes

  seq_torch.safetensors  its state_dict in the state_dict's order (emb,
                         norm and rnn pair with modelc's layers by order,
                         lstm and gru by name): weight_ih_l0 [G*H, I],
                         weight_hh_l0, bias_ih_l0, bias_hh_l0; gates
                         i, f, g, o (LSTM) and r, z, n (GRU)
  seq_keras.safetensors  the same weights under Keras's names and
                         layouts (embedding/embeddings:0,
                         layer_normalization/gamma:0,
                         lstm/lstm_cell/kernel:0 [I, 4H], the two biases
                         summed; gru/gru_cell/bias:0 [2, 3H] with gates
                         z, r, h), sorted by name
  seq_two_layers.safetensors  an LSTM of two layers (weight_ih_l1): an
                         error
  seq_x.safetensors      tokens [8, 6] (i32)
  seq_y.safetensors      the RNN's last state PyTorch computes, as `y`

and, with the argument `stacked` (only these), seq_stacked.mdl's
network: a bidirectional LSTM of two layers and a GRU of two layers,

  seq_stacked_torch.safetensors  its state_dict (weight_ih_l0,
                         weight_ih_l0_reverse, ..., weight_ih_l1, ...)
  seq_stacked_x.safetensors      x [5, 6, 3]
  seq_stacked_y.safetensors      the GRU's last state, as `y`

The test reads only these files and never imports torch.
"""
import sys

import numpy as np
import torch
import torch.nn as nn

from gen_fixtures import write_safetensors


class Seq(nn.Module):
    def __init__(self, lstm_layers=1):
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.norm = nn.LayerNorm(4)
        self.lstm = nn.LSTM(4, 5, num_layers=lstm_layers, batch_first=True)
        self.gru = nn.GRU(5, 3, batch_first=True)
        self.rnn = nn.RNN(3, 2, batch_first=True)

    def forward(self, t):
        h = self.norm(self.emb(t))
        h, _ = self.lstm(h)
        h, _ = self.gru(h)
        _, hn = self.rnn(h)
        return hn[0]


def state(m):
    return {k: v.detach().numpy() for k, v in m.state_dict().items()}


def gru_keras(w, H):
    """PyTorch's gate blocks r, z, n as Keras's z, r, h."""
    r, z, n = w[:H], w[H:2 * H], w[2 * H:]
    return np.concatenate([z, r, n])


class Stacked(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True)
        self.gru = nn.GRU(8, 3, num_layers=2, batch_first=True)

    def forward(self, x):
        h, _ = self.lstm(x)
        _, hn = self.gru(h)
        return hn[-1]


def stacked():
    torch.manual_seed(12)
    m = Stacked()
    m.eval()
    x = torch.randn(5, 6, 3)
    with torch.no_grad():
        y = m(x).numpy()
    write_safetensors("seq_stacked_torch.safetensors", state(m))
    write_safetensors("seq_stacked_x.safetensors", {"x": x.numpy()})
    write_safetensors("seq_stacked_y.safetensors", {"y": y})


def main():
    if sys.argv[1:] == ["stacked"]:
        stacked()
        return
    torch.manual_seed(11)
    m = Seq()
    with torch.no_grad():
        m.norm.weight.uniform_(0.5, 1.5)
        m.norm.bias.uniform_(-0.5, 0.5)
    m.eval()
    t = torch.randint(0, 10, (8, 6))
    with torch.no_grad():
        y = m(t).numpy()
    sd = state(m)
    write_safetensors("seq_torch.safetensors", sd)
    keras = {
        "embedding/embeddings:0": sd["emb.weight"],
        "layer_normalization/gamma:0": sd["norm.weight"],
        "layer_normalization/beta:0": sd["norm.bias"],
        "lstm/lstm_cell/kernel:0": sd["lstm.weight_ih_l0"].T,
        "lstm/lstm_cell/recurrent_kernel:0": sd["lstm.weight_hh_l0"].T,
        "lstm/lstm_cell/bias:0": sd["lstm.bias_ih_l0"] + sd["lstm.bias_hh_l0"],
        "gru/gru_cell/kernel:0": gru_keras(sd["gru.weight_ih_l0"], 3).T,
        "gru/gru_cell/recurrent_kernel:0": gru_keras(sd["gru.weight_hh_l0"], 3).T,
        "gru/gru_cell/bias:0": np.stack([gru_keras(sd["gru.bias_ih_l0"], 3), gru_keras(sd["gru.bias_hh_l0"], 3)]),
        "simple_rnn/simple_rnn_cell/kernel:0": sd["rnn.weight_ih_l0"].T,
        "simple_rnn/simple_rnn_cell/recurrent_kernel:0": sd["rnn.weight_hh_l0"].T,
        "simple_rnn/simple_rnn_cell/bias:0": sd["rnn.bias_ih_l0"] + sd["rnn.bias_hh_l0"],
    }
    write_safetensors("seq_keras.safetensors", dict(sorted(keras.items())))
    write_safetensors("seq_two_layers.safetensors", state(Seq(lstm_layers=2)))
    write_safetensors("seq_x.safetensors", {"tokens": t.numpy().astype(np.int32)})
    write_safetensors("seq_y.safetensors", {"y": y})


if __name__ == "__main__":
    main()
