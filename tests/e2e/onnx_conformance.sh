#!/bin/bash
# ONNX's own node tests (Debian's libonnx-testdata, installed by
# scripts/install-deps.sh): every test whose operators modelc imports runs
# through import + predict on the JIT and the interpreter against the
# expected outputs (tests/onnx/conformance.py). The summary (passed /
# applicable / total, and each applicable test that fails with its reason)
# is printed; a test of tests/onnx/conformance_passing.txt that stops
# passing fails this script. After a fix, regenerate the list with
#   /usr/bin/python3 tests/onnx/conformance.py build/modelc \
#       /usr/share/libonnx-testdata/data/node tests/onnx/conformance_passing.txt --update
set -euo pipefail
: "${MODELC:?MODELC not set}"
cd "$(dirname "$0")/../.."
data=/usr/share/libonnx-testdata/data/node
[ -d "$data" ] || { echo "FAIL: $data is missing: run scripts/install-deps.sh (libonnx-testdata)"; exit 1; }
/usr/bin/python3 -c 'import onnx' 2>/dev/null ||
    { echo "FAIL: /usr/bin/python3 has no onnx module: run scripts/install-deps.sh (python3-onnx)"; exit 1; }
/usr/bin/python3 tests/onnx/conformance.py "$MODELC" "$data" tests/onnx/conformance_passing.txt
