#!/bin/bash
# The README blocks marked `slow` (minutes of interpreter time, such as
# the gradient check of examples/s1_learning_phase with its kink
# crossings) are what the current build prints. readme_outputs.sh checks
# every other block; this one runs beside it. Under the sanitizers the
# interpreter is about twenty times slower, so that build skips it
# (exit 77) and the ordinary build checks it.
set -euo pipefail
: "${MODELC:?MODELC not set}"
cd "$(dirname "$0")/../.."
if [ -n "${MODELC_SANITIZED:-}" ]; then
  echo "skipped in the sanitizer build"
  exit 77
fi
n=$(python3 scripts/readme-outputs.py --list | grep -c ' slow ' || true)
[ "$n" -ge 1 ] || { echo "FAIL: no slow block is marked"; exit 1; }
python3 scripts/readme-outputs.py --check --only-slow
