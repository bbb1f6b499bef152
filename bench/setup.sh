#!/bin/sh
# Installs what the benchmark needs and is missing (bench only; the tests
# never need any of it): Debian's PyTorch for /usr/bin/python3, jemalloc
# for LD_PRELOAD with PyTorch, and from PyPI: JAX (CPU) in bench/.venv
# (version JAX_VERSION, default the one the harness was checked with),
# PyTorch 2.x in bench/.venv-torch2 (TORCH2_SPEC, default "torch") and
# Keras 3 on TensorFlow (CPU) in bench/.venv-keras (KERAS_SPEC, default
# "tensorflow-cpu keras"), each with NumPy. The Keras venv is made from
# KERAS_PYTHON (default: python3 on PATH), which TensorFlow's wheels must
# support. Safe to run again: it does nothing when everything is there.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
venv="$here/.venv"
venv_torch2="$here/.venv-torch2"
venv_keras="$here/.venv-keras"
sys_py=/usr/bin/python3
jemalloc=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2

need_apt=""
"$sys_py" -c "import torch, numpy; print('setup: PyTorch', torch.__version__)" >&2 2>/dev/null ||
    need_apt="$need_apt python3-torch"
[ -e "$jemalloc" ] || need_apt="$need_apt libjemalloc2"
"$sys_py" -c "import venv, ensurepip" 2>/dev/null || need_apt="$need_apt python3-venv"
command -v cc >/dev/null 2>&1 || need_apt="$need_apt gcc"
pkg-config --exists openblas 2>/dev/null || need_apt="$need_apt libopenblas-dev pkg-config"
command -v taskset >/dev/null 2>&1 || need_apt="$need_apt util-linux"

if [ -n "$need_apt" ]; then
    echo "setup: installing from Debian:$need_apt" >&2
    if [ "$(id -u)" -ne 0 ]; then
        SUDO=sudo
    else
        SUDO=
    fi
    $SUDO apt-get update -q >&2
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $need_apt >&2
fi

# Each check imports the packages and prints their versions (once: the
# imports take seconds, TensorFlow's tens of seconds on a busy machine).
check_jax() {
    "$venv/bin/python" -c "import jax, numpy; print('setup: JAX', jax.__version__, 'NumPy', numpy.__version__)" 2>/dev/null
}
check_torch2() {
    "$venv_torch2/bin/python" -c "import torch, numpy; print('setup: PyTorch 2 (venv)', torch.__version__)" 2>/dev/null
}
check_keras() {
    TF_CPP_MIN_LOG_LEVEL=2 "$venv_keras/bin/python" -c "import tensorflow as tf, keras, numpy; print('setup: TensorFlow', tf.__version__, 'Keras', keras.__version__)" 2>/dev/null
}

if ! check_jax >&2; then
    echo "setup: creating $venv with JAX (CPU) from PyPI" >&2
    rm -rf "$venv"
    "$sys_py" -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip >&2
    "$venv/bin/pip" install -q "jax==${JAX_VERSION:-0.10.2}" >&2
    check_jax >&2
fi

if ! check_torch2 >&2; then
    echo "setup: creating $venv_torch2 with PyTorch 2.x from PyPI" >&2
    rm -rf "$venv_torch2"
    "$sys_py" -m venv "$venv_torch2"
    "$venv_torch2/bin/pip" install -q --upgrade pip >&2
    # shellcheck disable=SC2086
    "$venv_torch2/bin/pip" install -q ${TORCH2_SPEC:-torch} numpy >&2
    check_torch2 >&2
fi

if ! check_keras >&2; then
    keras_py=${KERAS_PYTHON:-$(command -v python3 || echo "$sys_py")}
    echo "setup: creating $venv_keras with Keras 3 and TensorFlow (CPU) from PyPI ($keras_py)" >&2
    rm -rf "$venv_keras"
    "$keras_py" -m venv "$venv_keras"
    "$venv_keras/bin/pip" install -q --upgrade pip >&2
    # shellcheck disable=SC2086
    "$venv_keras/bin/pip" install -q ${KERAS_SPEC:-tensorflow-cpu keras} numpy >&2
    check_keras >&2
fi
