"""PyTorch side of the benchmark: trains one of the benchmark's models
(the same architecture, batch, data and Adam settings as the .mdl files)
and prints the harness's JSON-line protocol (see common.py).

Run with Debian's /usr/bin/python3 (python3-torch 1.13), or with
bench/.venv-torch2/bin/python (PyTorch 2.x from PyPI) and --fused-adam
(torch.optim.Adam(fused=True)) and optionally --compile (torch.compile of
the model: forward and backward graphs compiled by Inductor); the harness
adds LD_PRELOAD=libjemalloc and OMP/MKL/OpenBLAS thread counts.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def build_model(torch, arch_name):
    nn = torch.nn
    arch = common.ARCHS[arch_name]
    if arch["kind"] == "s0":
        f = arch["filters"]
        return nn.Sequential(nn.Conv2d(arch["cin"], f, 3, padding=1, bias=False), nn.Tanh(),
                             nn.Conv2d(f, 1, 3, padding=1, bias=False), nn.Sigmoid())
    if arch["kind"] == "mlp":
        layers = [nn.Flatten()]
        sizes = [784] + arch["hidden"]
        for a, b in zip(sizes, sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], 10))
        return nn.Sequential(*layers)
    pad = 1 if arch["padding"] == "same" else 0
    bn = arch["bn"]
    # PyTorch's momentum weighs the new batch statistic: 1 - Keras' 0.99.
    layers = [nn.Conv2d(1, 32, 3, padding=pad, bias=not bn)]
    if bn:
        layers.append(nn.BatchNorm2d(32, eps=common.BN_EPS, momentum=1 - common.BN_MOMENTUM))
    layers += [nn.ReLU(), nn.Conv2d(32, 64, 3, padding=pad, bias=not bn)]
    if bn:
        layers.append(nn.BatchNorm2d(64, eps=common.BN_EPS, momentum=1 - common.BN_MOMENTUM))
    layers += [nn.ReLU(), nn.MaxPool2d(2)]
    # NCHW flatten order: the same model as the .mdl's NHWC flatten up to
    # a fixed permutation of the first dense layer's rows.
    layers.append(nn.Flatten())
    if arch["dropout"]:
        layers.append(nn.Dropout(arch["dropout"][0]))
    layers += [nn.Linear(common.flat_size(arch), 128), nn.ReLU()]
    if arch["dropout"]:
        layers.append(nn.Dropout(arch["dropout"][1]))
    layers.append(nn.Linear(128, 10))
    return nn.Sequential(*layers)


def keras_init(torch, model):
    """Glorot-uniform kernels and zero biases, as the .mdl layers (and the
    JAX worker) initialise them."""
    for mod in model.modules():
        if isinstance(mod, (torch.nn.Linear, torch.nn.Conv2d)):
            torch.nn.init.xavier_uniform_(mod.weight)
            if mod.bias is not None:
                torch.nn.init.zeros_(mod.bias)


def bce(torch, p, y):
    """Binary cross-entropy from probabilities as Keras (and modelc's
    binary_crossentropy) computes it: p clipped to [1e-7, 1 - 1e-7]."""
    p = p.clamp(1e-7, 1 - 1e-7)
    return -(y * torch.log(p + 1e-7) + (1 - y) * torch.log(1 - p + 1e-7)).mean()


def main():
    t_main = time.time()
    def extra(p):
        p.add_argument("--fused-adam", action="store_true",
                       help="torch.optim.Adam(fused=True) (PyTorch 2)")
        p.add_argument("--compile", action="store_true", help="torch.compile the model")
    args = common.common_args(extra=extra)
    fused, compiled = args.fused_adam, args.compile
    em = common.Emitter()
    import numpy as np
    import torch
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    em.emit(event="info", framework="torch", version=torch.__version__,
            threads=torch.get_num_threads(), fused_adam=fused, compile=compiled,
            mkldnn=bool(torch.backends.mkldnn.is_available()),
            onednn=onednn_version(torch), blas=blas_library(),
            mkl=bool(torch.backends.mkl.is_available()),
            import_ms=(time.time() - t_main) * 1000.0)

    arch = common.ARCHS[args.model]
    model = build_model(torch, args.model)
    keras_init(torch, model)
    nparams = sum(p.numel() for p in model.parameters() if p.requires_grad)
    want = common.expected_params(args.model)
    assert nparams == want, "parameter count %d != %d" % (nparams, want)
    em.emit(event="params", trainable=nparams)

    x, y = common.load_data(args.model, "train", args.limit, args.data)
    if arch["kind"] in ("cnn", "s0"):
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # NCHW
    if arch["kind"] == "s0":
        y = np.ascontiguousarray(y.transpose(0, 3, 1, 2))
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    else:
        xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))

    opt_kw = {"fused": True} if fused else {}
    opt = torch.optim.Adam(model.parameters(), lr=common.ADAM["lr"],
                           betas=(common.ADAM["beta1"], common.ADAM["beta2"]),
                           eps=common.ADAM["eps"], **opt_kw)
    if arch["kind"] == "s0":
        def lossf(p, yb):
            return bce(torch, p, yb)
    else:
        lossf = torch.nn.CrossEntropyLoss()
    model.train()
    net = torch.compile(model) if compiled else model

    def step(xb, yb):
        opt.zero_grad(set_to_none=True)
        loss = lossf(net(xb), yb)
        loss.backward()
        opt.step()
        return loss.detach()

    common.run_epochs(em, args, xt, yt, step, lambda l: l.item())

    if args.infer or args.infer1:
        infer(em, torch, net, model, args)


def infer(em, torch, net, model, args):
    """Inference (model.eval(), inference_mode) at --infer-batch over the
    first --infer test examples, then at batch 1 over --infer1 of them;
    the outputs are probabilities (softmax, or the S0 model's sigmoid)."""
    import numpy as np
    arch = common.ARCHS[args.model]
    x, _ = common.load_data(args.model, "test", max(args.infer, args.infer1), args.data)
    if arch["kind"] in ("cnn", "s0"):
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    xt = torch.from_numpy(x)
    model.eval()

    def predict(xb):
        out = net(xb)
        return out if arch["kind"] == "s0" else torch.softmax(out, dim=1)

    with torch.inference_mode():
        if args.infer:
            common.run_inference(em, "infer", predict, xt[:args.infer], args.infer_batch,
                                 lambda o: o.numpy())
        if args.infer1:
            common.run_inference(em, "infer1", predict, xt[:args.infer1], 1,
                                 lambda o: o.numpy(), warmup=3)


def onednn_version(torch):
    import re
    m = re.search(r"MKL-DNN (v[0-9.]+)", torch.__config__.show())
    return ("oneDNN " + m.group(1)) if m and torch.backends.mkldnn.is_available() else None


def blas_library():
    """The BLAS shared object this process mapped (Debian's torch links
    libblas.so.3, an alternatives link to OpenBLAS or another BLAS)."""
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({ln.split()[-1] for ln in f
                           if "blas" in ln or "dnnl" in ln or "mkl" in ln})
        return [os.path.realpath(p) for p in libs if p.startswith("/")]
    except OSError:
        return []


if __name__ == "__main__":
    main()
