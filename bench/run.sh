#!/bin/sh
# The one command of the benchmark: installs what is missing
# (bench/setup.sh), builds the GEMM-floor and peak-FMA timers, and runs the harness,
# which prints the table and writes bench/results/latest.json (and .txt).
# All options go to the harness: bench/run.sh --help lists them
# (--reps N, --quick, --threads T, --modelc PATH, --frameworks, --cases, ...).
set -eu

here=$(cd "$(dirname "$0")" && pwd)

case " $* " in
*" -h "* | *" --help "*) exec /usr/bin/python3 "$here/harness.py" --help ;;
esac

sh "$here/setup.sh"

mkdir -p "$here/build"
if [ ! -x "$here/build/gemm_floor" ] || [ "$here/gemm_floor.c" -nt "$here/build/gemm_floor" ]; then
    # shellcheck disable=SC2046
    cc -O2 -std=gnu11 -Wall -Wextra -Werror $(pkg-config --cflags openblas) \
        "$here/gemm_floor.c" -o "$here/build/gemm_floor" $(pkg-config --libs openblas)
fi
if [ ! -x "$here/build/peak_fma" ] || [ "$here/peak_fma.c" -nt "$here/build/peak_fma" ]; then
    cc -O2 -std=gnu11 -Wall -Wextra -Werror -pthread "$here/peak_fma.c" -o "$here/build/peak_fma"
fi

exec /usr/bin/python3 "$here/harness.py" "$@"
