"""Keras 3 (TensorFlow backend) side of the benchmark: the benchmark's
models as keras.Sequential (NHWC, Glorot-uniform kernels and zero biases
as the .mdl layers, Keras' own BatchNormalization and Dropout), compiled
with Adam and the same loss, trained one batch at a time with
model.train_on_batch (Keras' compiled train step: a tf.function, or with
--jit-compile an XLA-compiled one), printed through the harness's
JSON-line protocol (see common.py).

Run with bench/.venv-keras/bin/python; the harness sets OMP/MKL thread
counts and TF_CPP_MIN_LOG_LEVEL, and the worker sets TensorFlow's
intra- and inter-op thread pools to --threads.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_model(keras, arch_name):
    L = keras.layers
    arch = common.ARCHS[arch_name]
    if arch["kind"] == "s0":
        f = arch["filters"]
        return keras.Sequential([
            keras.Input((arch["h"], arch["w"], arch["cin"])),
            L.Conv2D(f, 3, padding="same", use_bias=False, activation="tanh"),
            L.Conv2D(1, 3, padding="same", use_bias=False, activation="sigmoid"),
        ])
    if arch["kind"] == "mlp":
        layers = [keras.Input((28, 28, 1)), L.Flatten()]
        layers += [L.Dense(n, activation="relu") for n in arch["hidden"]]
        layers.append(L.Dense(10))
        return keras.Sequential(layers)
    pad, bn = arch["padding"], arch["bn"]
    layers = [keras.Input((28, 28, 1))]
    for filters in (32, 64):
        layers.append(L.Conv2D(filters, 3, padding=pad, use_bias=not bn,
                               activation=None if bn else "relu"))
        if bn:
            layers += [L.BatchNormalization(momentum=common.BN_MOMENTUM, epsilon=common.BN_EPS),
                       L.ReLU()]
    layers += [L.MaxPooling2D(2), L.Flatten()]
    if arch["dropout"]:
        layers.append(L.Dropout(arch["dropout"][0]))
    layers.append(L.Dense(128, activation="relu"))
    if arch["dropout"]:
        layers.append(L.Dropout(arch["dropout"][1]))
    layers.append(L.Dense(10))
    return keras.Sequential(layers)


def main():
    t_main = time.time()

    def extra(p):
        p.add_argument("--jit-compile", action="store_true",
                       help="model.compile(jit_compile=True): the train step compiled by XLA")
    args = common.common_args(extra=extra)
    em = common.Emitter()
    import numpy as np
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import keras
    keras.utils.set_random_seed(args.seed)
    em.emit(event="info", framework="keras", version=keras.__version__,
            tensorflow=tf.__version__, backend=keras.backend.backend(),
            jit_compile=args.jit_compile,
            intra_op_threads=tf.config.threading.get_intra_op_parallelism_threads(),
            inter_op_threads=tf.config.threading.get_inter_op_parallelism_threads(),
            onednn=os.environ.get("TF_ENABLE_ONEDNN_OPTS", "(default)"),
            import_ms=(time.time() - t_main) * 1000.0)

    kind = common.ARCHS[args.model]["kind"]
    model = build_model(keras, args.model)
    nparams = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    want = common.expected_params(args.model)
    assert nparams == want, "parameter count %d != %d" % (nparams, want)
    em.emit(event="params", trainable=nparams)

    a = common.ADAM
    opt = keras.optimizers.Adam(learning_rate=a["lr"], beta_1=a["beta1"], beta_2=a["beta2"],
                                epsilon=a["eps"])
    if kind == "s0":
        loss = keras.losses.BinaryCrossentropy()
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=opt, loss=loss, jit_compile=args.jit_compile)

    x, y = common.load_data(args.model, "train", args.limit, args.data)

    def step(xb, yb):
        return model.train_on_batch(xb, yb)  # returns the loss, a Python float

    common.run_epochs(em, args, x, y, step, float)

    if args.infer or args.infer1:
        x, _ = common.load_data(args.model, "test", max(args.infer, args.infer1), args.data)
        def softmax(z):
            e = np.exp(z - z.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)

        def predict(xb):
            o = model.predict_on_batch(xb)  # a NumPy array
            return o if kind == "s0" else softmax(o)

        if args.infer:
            common.run_inference(em, "infer", predict, x[:args.infer], args.infer_batch,
                                 np.asarray)
        if args.infer1:
            common.run_inference(em, "infer1", predict, x[:args.infer1], 1, np.asarray,
                                 warmup=3)


if __name__ == "__main__":
    main()
