"""Shared pieces of the benchmark: the model list, data loading (Fashion-MNIST,
and the generated images of the S0 case),
expected parameter counts, the GEMM shapes of one training step, and the
JSON-line protocol the framework workers speak to the harness.

Runs under Debian's /usr/bin/python3 (NumPy 1.x) and under the venvs
(NumPy 2.x); the harness itself imports only the parts that need no NumPy.
"""

import gzip
import json
import os
import struct
import sys
import time

DATA_DIR = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")

# Adam as Keras defines it; every framework uses these.
ADAM = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-7}
# Keras BatchNormalization defaults, as modelc's batchnorm() uses them.
BN_MOMENTUM = 0.99
BN_EPS = 1e-3

# name -> architecture of its .mdl file.  The conv padding follows the
# .mdl files: fashion_cnn.mdl uses 'valid' (28 -> 26 -> 24),
# bench/models/fashion_cnn_bn.mdl uses padding="same" (28 -> 28 -> 28).
ARCHS = {
    "mlp": {"mdl": "examples/fashion_mlp.mdl", "kind": "mlp",
            "hidden": [256, 128]},
    "cnn": {"mdl": "examples/fashion_cnn.mdl", "kind": "cnn",
            "padding": "valid", "bn": False, "dropout": None},
    "cnn_bn": {"mdl": "bench/models/fashion_cnn_bn.mdl", "kind": "cnn",
               "padding": "same", "bn": True, "dropout": (0.25, 0.5)},
    # The S0 seed model (examples/s0_reparam/model1.mdl) on 64x96 RGB
    # images: conv 3x3 3->200 (no bias), tanh, conv 3x3 200->1 (no bias),
    # sigmoid, 'same'; per-pixel binary cross-entropy against
    # target = mean over channels > 0.5. Data: generated (s0_images).
    "s0": {"mdl": "bench/models/s0_64x96.mdl", "kind": "s0",
           "h": 64, "w": 96, "cin": 3, "filters": 200},
}

# The benchmark cases: (case name, architecture, batch size).
CASES = [
    ("mlp_b32", "mlp", 32),
    ("mlp_b128", "mlp", 128),
    ("mlp_b512", "mlp", 512),
    ("cnn_b128", "cnn", 128),
    ("cnn_bn_b128", "cnn_bn", 128),
    ("s0_b32", "s0", 32),
]

# Inference batch ("infer/s"): 1000, except for S0 whose 200-channel
# activation would take 4.9 GB at batch 1000; it uses its training batch.
INFER_BATCH = 1000
INFER_BATCHES = {"mlp": 1000, "cnn": 1000, "cnn_bn": 1000, "s0": 32}

# The generated S0 images: 8-bit, uniform, from this seed (Python's
# random.Random(seed).randbytes), scaled by 1/255 like Fashion-MNIST.
S0_SEED = 20260416


def write_npy_u8(path, shape, data):
    """Writes bytes `data` as a C-order uint8 .npy of `shape` (no NumPy
    needed: the harness writes the S0 images with this)."""
    import struct
    dims = ", ".join("%d" % d for d in shape) + ("," if len(shape) == 1 else "")
    hdr = "{'descr': '|u1', 'fortran_order': False, 'shape': (%s), }" % dims
    hdr += " " * (64 - (10 + len(hdr) + 1) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode("latin1"))
        f.write(data)


def write_s0_images(path, n):
    """n generated 64x96x3 8-bit images, the same bytes for every framework."""
    import random
    a = ARCHS["s0"]
    shape = (n, a["h"], a["w"], a["cin"])
    write_npy_u8(path, shape, random.Random(S0_SEED).randbytes(n * a["h"] * a["w"] * a["cin"]))


def load_s0(path, limit=None):
    """(x float32 [n,64,96,3] in [0,1], target float32 [n,64,96,1]) from the
    harness's generated .npy; target = mean over channels > 0.5, as the
    .mdl computes it (the .mdl inside the step, the peers here: the same
    values, a negligible cost)."""
    import numpy as np
    raw = np.load(path, mmap_mode="r")
    n = raw.shape[0] if limit is None else min(limit, raw.shape[0])
    x = np.asarray(raw[:n]).astype(np.float32) / np.float32(255.0)
    t = (x.mean(axis=3, keepdims=True) > 0.5).astype(np.float32)
    return x, t


def load_data(arch_name, split, limit=None, data=None):
    """The training ('train') or inference ('test') data of a model."""
    if ARCHS[arch_name]["kind"] == "s0":
        if not data:
            raise SystemExit("the s0 model needs --data (the generated .npy)")
        return load_s0(data, limit)
    return load_fashion(split, limit)


def conv_geometry(arch):
    """(h1, h2, pooled) spatial sizes after conv1, conv2 and the 2x2 pool."""
    if arch["padding"] == "same":
        h1, h2 = 28, 28
    else:
        h1, h2 = 26, 24
    return h1, h2, h2 // 2


def flat_size(arch):
    return conv_geometry(arch)[2] ** 2 * 64


def expected_params(arch_name):
    """Trainable parameter count, computed from the architecture alone
    (what `modelc params` reports as trainable)."""
    arch = ARCHS[arch_name]
    if arch["kind"] == "mlp":
        sizes = [784] + arch["hidden"] + [10]
        return sum(a * b + b for a, b in zip(sizes, sizes[1:]))
    if arch["kind"] == "s0":
        return 9 * arch["cin"] * arch["filters"] + 9 * arch["filters"]
    bias = 0 if arch["bn"] else 1
    conv1 = 9 * 1 * 32 + 32 * bias
    conv2 = 9 * 32 * 64 + 64 * bias
    bn = (2 * 32 + 2 * 64) if arch["bn"] else 0
    dense = flat_size(arch) * 128 + 128 + 128 * 10 + 10
    return conv1 + conv2 + bn + dense


def gemm_shapes(arch_name, batch):
    """The GEMMs of one training step, as (label, M, N, K, transA, transB)
    in row-major terms (C[M,N] = op(A)[M,K] op(B)[K,N]).

    Dense x[B,in] W[in,out]: forward (B,out,in,N,N); dX = dY W^T
    (B,in,out,N,T), skipped for the first layer whose input needs no
    gradient; dW = X^T dY (in,out,B,T,N).  Convolutions as im2col GEMMs
    (NHWC, HWIO): P[B*OH*OW, kh*kw*Cin] K[kh*kw*Cin, Cout] forward,
    dW = P^T dY, dP = dY K^T (then col2im) except for the first conv."""
    arch = ARCHS[arch_name]
    shapes = []

    def dense(tag, fin, fout, first):
        shapes.append((tag + ".fwd", batch, fout, fin, 0, 0))
        if not first:
            shapes.append((tag + ".dX", batch, fin, fout, 0, 1))
        shapes.append((tag + ".dW", fin, fout, batch, 1, 0))

    def conv(tag, oh, cin, cout, first, ow=None):
        m, k = batch * oh * (oh if ow is None else ow), 9 * cin
        shapes.append((tag + ".fwd", m, cout, k, 0, 0))
        if not first:
            shapes.append((tag + ".dX", m, k, cout, 0, 1))
        shapes.append((tag + ".dW", k, cout, m, 1, 0))

    if arch["kind"] == "mlp":
        sizes = [784] + arch["hidden"] + [10]
        for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
            dense("dense%d" % (i + 1), a, b, i == 0)
    elif arch["kind"] == "s0":
        conv("conv1", arch["h"], arch["cin"], arch["filters"], True, arch["w"])
        conv("conv2", arch["h"], arch["filters"], 1, False, arch["w"])
    else:
        h1, h2, _ = conv_geometry(arch)
        conv("conv1", h1, 1, 32, True)
        conv("conv2", h2, 32, 64, False)
        dense("dense1", flat_size(arch), 128, False)
        dense("dense2", 128, 10, False)
    return shapes


def step_gflop(arch_name, batch):
    """GFLOP of one training step: 2 FLOPs per multiply-add of the step's
    GEMMs (gemm_shapes: forward, kernel gradient, input gradient except
    the first layer's), i.e. about 3x the forward pass of the convolution
    and dense layers. Elementwise ops, pooling, batchnorm and the
    optimizer are not counted."""
    return sum(2.0 * m * n * k for _, m, n, k, _, _ in gemm_shapes(arch_name, batch)) / 1e9


def forward_gflop(arch_name, batch):
    """GFLOP of one forward pass (inference) of `batch` examples."""
    return sum(2.0 * m * n * k for lab, m, n, k, _, _ in gemm_shapes(arch_name, batch)
               if lab.endswith(".fwd")) / 1e9


def _read_idx(path, want_dims):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic = struct.unpack(">I", raw[:4])[0]
    ndim = magic & 0xFF
    if magic >> 8 != 0x08 or ndim != want_dims:
        raise ValueError("%s: not an IDX ubyte file of rank %d" % (path, want_dims))
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return raw[4 + 4 * ndim:], dims


def load_fashion(split, limit=None):
    """(x float32 [n,28,28,1] in [0,1], y int32 [n]) of 'train' or 'test'."""
    import numpy as np
    prefix = "train" if split == "train" else "t10k"
    img, dims = _read_idx(os.path.join(DATA_DIR, prefix + "-images-idx3-ubyte.gz"), 3)
    lab, ldims = _read_idx(os.path.join(DATA_DIR, prefix + "-labels-idx1-ubyte.gz"), 1)
    n = dims[0] if limit is None else min(limit, dims[0])
    x = np.frombuffer(img, dtype=np.uint8, count=n * 28 * 28)
    x = (x.astype(np.float32) / np.float32(255.0)).reshape(n, 28, 28, 1)
    y = np.frombuffer(lab, dtype=np.uint8, count=n).astype(np.int32)
    return x, y


def common_args(argv=None, extra=None):
    """The command line every framework worker accepts (extra(parser) adds
    a worker's own options)."""
    import argparse
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True, choices=sorted(ARCHS))
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--limit", type=int, required=True,
                   help="training examples per epoch")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--infer", type=int, default=0, metavar="N",
                   help="after training, time inference at --infer-batch on the first N test images")
    p.add_argument("--infer-batch", type=int, default=INFER_BATCH)
    p.add_argument("--infer1", type=int, default=0, metavar="N",
                   help="after training, time inference at batch 1 (latency) on N test images")
    p.add_argument("--data", default=None,
                   help="the generated images of the s0 model (.npy, 8-bit)")
    p.add_argument("--warmup-steps", type=int, default=0,
                   help="run only this many steps in epoch 1 (0: the whole epoch)")
    p.add_argument("--seed", type=int, default=42)
    if extra:
        extra(p)
    return p.parse_args(argv)


class Emitter:
    """Prints protocol lines (one JSON object per line, flushed).
    since_start_ms counts from BENCH_T0 (the harness's wall clock just
    before it started this process), or from this object's creation."""

    def __init__(self):
        t0 = os.environ.get("BENCH_T0")
        self.t0 = float(t0) if t0 else time.time()

    def since_start_ms(self):
        return (time.time() - self.t0) * 1000.0

    def emit(self, **kv):
        sys.stdout.write(json.dumps(kv) + "\n")
        sys.stdout.flush()


def peak_rss_kb():
    """This process's peak resident set so far (VmHWM), in KiB."""
    try:
        with open("/proc/self/status") as f:
            for ln in f:
                if ln.startswith("VmHWM:"):
                    return int(ln.split()[1])
    except (OSError, ValueError):
        pass
    return None


def run_inference(em, event, predict, x, batch, to_host, warmup=1):
    """Times inference over x in batches of `batch` (the last partial batch
    included): `warmup` calls on the first batch first (compiles, caches),
    then every batch, each result brought to the host (to_host) so the time
    includes the computation. Emits {"event": event, "examples", "batch",
    "seconds", "samples_per_s", "ms_per_batch", "warmup_ms"}."""
    n = x.shape[0]
    t = time.perf_counter()
    for _ in range(warmup):
        to_host(predict(x[:batch]))
    warm_ms = (time.perf_counter() - t) * 1000.0
    t = time.perf_counter()
    nb = 0
    for i in range(0, n, batch):
        to_host(predict(x[i:i + batch]))
        nb += 1
    sec = time.perf_counter() - t
    em.emit(event=event, examples=int(n), batch=batch, seconds=sec, samples_per_s=n / sec,
            ms_per_batch=sec * 1000.0 / nb, warmup_ms=warm_ms)


def run_epochs(em, args, x, y, step_fn, sync, compile_probe=None):
    """The training loop shared by the workers: epochs over the first
    `limit` examples in a fresh random order each epoch, the last partial
    batch dropped so every step has the same shape (with --warmup-steps W,
    epoch 1 stops after W steps: a warm-up only).  step_fn(xb, yb)
    returns the loss (a framework scalar); sync(loss) waits for it.
    Emits first_step after the first step, and one line per epoch."""
    import numpy as np
    rng = np.random.default_rng(args.seed)
    n = x.shape[0]
    steps = n // args.batch
    if steps < 1:
        raise SystemExit("limit %d is smaller than the batch %d" % (n, args.batch))
    first_step_ms = None
    first_call_ms = None
    done = 0
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(n)
        t_epoch = time.perf_counter()
        loss = None
        nsteps = steps
        if epoch == 1 and args.epochs > 1 and args.warmup_steps > 0:
            nsteps = min(steps, args.warmup_steps)
        for s in range(nsteps):
            idx = order[s * args.batch:(s + 1) * args.batch]
            xb, yb = x[idx], y[idx]
            t = time.perf_counter()
            loss = step_fn(xb, yb)
            if first_step_ms is None:
                sync(loss)
                first_call_ms = (time.perf_counter() - t) * 1000.0
                first_step_ms = em.since_start_ms()
                em.emit(event="first_step", since_start_ms=first_step_ms,
                        first_call_ms=first_call_ms)
        last = float(sync(loss))
        sec = time.perf_counter() - t_epoch
        done += nsteps
        em.emit(epoch=epoch, step=done, seconds=sec,
                ms_per_step=sec * 1000.0 / nsteps, loss=last,
                since_start_ms=em.since_start_ms())
    em.emit(event="trained", peak_rss_kb=peak_rss_kb())
    return first_call_ms
