"""JAX side of the benchmark: the benchmark's models written directly in
jax.numpy/lax (NHWC, HWIO as the .mdl files), one jax.jit'd training
step (forward, grad, Adam as Keras defines it), printed through the
harness's JSON-line protocol (see common.py).

Run with bench/.venv/bin/python; the harness sets XLA_FLAGS for threads.
"""

import functools
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def glorot(jax, key, shape, fan_in, fan_out):
    import jax.numpy as jnp
    lim = (6.0 / (fan_in + fan_out)) ** 0.5
    return jax.random.uniform(key, shape, jnp.float32, -lim, lim)


def init_params(jax, arch_name, seed):
    """Trainable parameters (a dict) and batchnorm state (a dict)."""
    import jax.numpy as jnp
    arch = common.ARCHS[arch_name]
    keys = iter(jax.random.split(jax.random.PRNGKey(seed), 16))
    p, state = {}, {}

    def dense(name, fin, fout):
        p[name + ".w"] = glorot(jax, next(keys), (fin, fout), fin, fout)
        p[name + ".b"] = jnp.zeros((fout,), jnp.float32)

    if arch["kind"] == "mlp":
        sizes = [784] + arch["hidden"] + [10]
        for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
            dense("dense%d" % (i + 1), a, b)
        return p, state
    if arch["kind"] == "s0":
        f, cin = arch["filters"], arch["cin"]
        p["conv1.k"] = glorot(jax, next(keys), (3, 3, cin, f), 9 * cin, 9 * f)
        p["conv2.k"] = glorot(jax, next(keys), (3, 3, f, 1), 9 * f, 9)
        return p, state
    for name, cin, cout in (("conv1", 1, 32), ("conv2", 32, 64)):
        p[name + ".k"] = glorot(jax, next(keys), (3, 3, cin, cout), 9 * cin, 9 * cout)
        if arch["bn"]:
            p[name + ".gamma"] = jnp.ones((cout,), jnp.float32)
            p[name + ".beta"] = jnp.zeros((cout,), jnp.float32)
            state[name + ".mean"] = jnp.zeros((cout,), jnp.float32)
            state[name + ".var"] = jnp.ones((cout,), jnp.float32)
        else:
            p[name + ".b"] = jnp.zeros((cout,), jnp.float32)
    dense("dense1", common.flat_size(arch), 128)
    dense("dense2", 128, 10)
    return p, state


def make_forward(jax, arch_name):
    """forward(params, state, x, key, train) -> (logits, new_state)."""
    import jax.numpy as jnp
    from jax import lax
    arch = common.ARCHS[arch_name]

    if arch["kind"] == "mlp":
        nlayers = len(arch["hidden"]) + 1

        def forward(p, state, x, key, train):
            h = x.reshape(x.shape[0], -1)
            for i in range(1, nlayers + 1):
                h = h @ p["dense%d.w" % i] + p["dense%d.b" % i]
                if i < nlayers:
                    h = jax.nn.relu(h)
            return h, state
        return forward

    dn = ("NHWC", "HWIO", "NHWC")
    if arch["kind"] == "s0":
        def forward(p, state, x, key, train):
            h = jnp.tanh(lax.conv_general_dilated(x, p["conv1.k"], (1, 1), "SAME",
                                                  dimension_numbers=dn))
            z = lax.conv_general_dilated(h, p["conv2.k"], (1, 1), "SAME", dimension_numbers=dn)
            return jax.nn.sigmoid(z), state
        return forward

    pad = "SAME" if arch["padding"] == "same" else "VALID"

    def conv_block(name, p, state, h, train, new_state):
        h = lax.conv_general_dilated(h, p[name + ".k"], (1, 1), pad, dimension_numbers=dn)
        if arch["bn"]:
            if train:
                mean = jnp.mean(h, axis=(0, 1, 2))
                var = jnp.mean(jnp.square(h - mean), axis=(0, 1, 2))
                m = common.BN_MOMENTUM
                new_state[name + ".mean"] = m * state[name + ".mean"] + (1 - m) * mean
                new_state[name + ".var"] = m * state[name + ".var"] + (1 - m) * var
            else:
                mean, var = state[name + ".mean"], state[name + ".var"]
            h = (h - mean) * lax.rsqrt(var + common.BN_EPS) * p[name + ".gamma"] + p[name + ".beta"]
        else:
            h = h + p[name + ".b"]
        return jax.nn.relu(h)

    def dropout(h, rate, key, train):
        if not train:
            return h
        keep = jax.random.uniform(key, h.shape) >= rate
        return jnp.where(keep, h / (1.0 - rate), 0.0)

    def forward(p, state, x, key, train):
        new_state = {}
        h = conv_block("conv1", p, state, x, train, new_state)
        h = conv_block("conv2", p, state, h, train, new_state)
        h = lax.reduce_window(h, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
        h = h.reshape(h.shape[0], -1)
        k1, k2 = jax.random.split(key)
        if arch["dropout"]:
            h = dropout(h, arch["dropout"][0], k1, train)
        h = jax.nn.relu(h @ p["dense1.w"] + p["dense1.b"])
        if arch["dropout"]:
            h = dropout(h, arch["dropout"][1], k2, train)
        return h @ p["dense2.w"] + p["dense2.b"], (new_state if train else state)
    return forward


def make_step(jax, forward, kind):
    import jax.numpy as jnp
    a = common.ADAM

    def loss_fn(p, state, x, y, key):
        out, new_state = forward(p, state, x, key, True)
        if kind == "s0":
            # binary cross-entropy from probabilities, as Keras and modelc
            q = jnp.clip(out, 1e-7, 1 - 1e-7)
            loss = -jnp.mean(y * jnp.log(q + 1e-7) + (1 - y) * jnp.log(1 - q + 1e-7))
            return loss, new_state
        logp = jax.nn.log_softmax(out)
        loss = -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))
        return loss, new_state

    @functools.partial(jax.jit, donate_argnums=(0, 1, 2, 3))
    def step(p, m, v, state, t, key, x, y):
        key, sub = jax.random.split(key)
        (loss, new_state), g = jax.value_and_grad(loss_fn, has_aux=True)(p, state, x, y, sub)
        t = t + 1
        lr_t = a["lr"] * jnp.sqrt(1 - a["beta2"] ** t) / (1 - a["beta1"] ** t)
        m = jax.tree_util.tree_map(lambda m_, g_: a["beta1"] * m_ + (1 - a["beta1"]) * g_, m, g)
        v = jax.tree_util.tree_map(lambda v_, g_: a["beta2"] * v_ + (1 - a["beta2"]) * g_ * g_, v, g)
        p = jax.tree_util.tree_map(lambda p_, m_, v_: p_ - lr_t * m_ / (jnp.sqrt(v_) + a["eps"]),
                                   p, m, v)
        return p, m, v, new_state, t, key, loss
    return step


def main():
    t_main = time.time()
    args = common.common_args()
    em = common.Emitter()
    import jax
    import jax.numpy as jnp
    import numpy as np
    em.emit(event="info", framework="jax", version=jax.__version__,
            devices=[str(d) for d in jax.devices()],
            xla_flags=os.environ.get("XLA_FLAGS", ""),
            import_ms=(time.time() - t_main) * 1000.0)

    params, state = init_params(jax, args.model, args.seed)
    nparams = sum(int(np.prod(v.shape)) for v in params.values())
    want = common.expected_params(args.model)
    assert nparams == want, "parameter count %d != %d" % (nparams, want)
    em.emit(event="params", trainable=nparams)

    x, y = common.load_data(args.model, "train", args.limit, args.data)
    forward = make_forward(jax, args.model)
    step = make_step(jax, forward, common.ARCHS[args.model]["kind"])
    m0 = jax.tree_util.tree_map(jnp.zeros_like, params)
    v0 = jax.tree_util.tree_map(jnp.zeros_like, params)
    carry = [params, m0, v0, state, jnp.zeros((), jnp.float32), jax.random.PRNGKey(args.seed)]

    def train_step(xb, yb):
        out = step(*carry, xb, yb)
        carry[:] = out[:6]
        return out[6]

    common.run_epochs(em, args, x, y, train_step, lambda l: l.block_until_ready())

    if args.infer or args.infer1:
        infer(em, jax, forward, carry[0], carry[3], args)


def infer(em, jax, forward, params, state, args):
    """Inference with a jitted forward (compiled in the warm-up call) at
    --infer-batch over --infer test examples, then at batch 1 over --infer1."""
    import numpy as np
    x, _ = common.load_data(args.model, "test", max(args.infer, args.infer1), args.data)
    key = jax.random.PRNGKey(0)
    s0 = common.ARCHS[args.model]["kind"] == "s0"

    @jax.jit
    def predict(p, s, xb):
        out = forward(p, s, xb, key, False)[0]
        return out if s0 else jax.nn.softmax(out)

    def run(xb):
        return predict(params, state, xb)

    if args.infer:
        common.run_inference(em, "infer", run, x[:args.infer], args.infer_batch, np.asarray)
    if args.infer1:
        common.run_inference(em, "infer1", run, x[:args.infer1], 1, np.asarray, warmup=3)


if __name__ == "__main__":
    main()
