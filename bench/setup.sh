#!/bin/sh
# Installs what the benchmark needs and is missing (bench only; the tests
# never need any of it): Debian's PyTorch for /usr/bin/python3, jemalloc
# for LD_PRELOAD with PyTorch, and JAX (CPU) from PyPI in bench/.venv
# (version JAX_VERSION, default the one the harness was checked with).
# Safe to run again: it does nothing when everything is there.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
venv="$here/.venv"
sys_py=/usr/bin/python3
jemalloc=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2

need_apt=""
"$sys_py" -c "import torch, numpy" 2>/dev/null || need_apt="$need_apt python3-torch"
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

if ! "$venv/bin/python" -c "import jax, numpy" 2>/dev/null; then
    echo "setup: creating $venv with JAX (CPU) from PyPI" >&2
    rm -rf "$venv"
    "$sys_py" -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip >&2
    "$venv/bin/pip" install -q "jax==${JAX_VERSION:-0.10.2}" >&2
fi

"$sys_py" -c "import torch; print('setup: PyTorch', torch.__version__)" >&2
"$venv/bin/python" -c "import jax, numpy; print('setup: JAX', jax.__version__, 'NumPy', numpy.__version__)" >&2
