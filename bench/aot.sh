#!/bin/sh
# Ahead-of-time compilation against the JIT (not a test; run it on an
# idle machine): for each model, the size of the object `modelc compile`
# writes (weights embedded), the median wall time of `modelc compile`
# over REPS runs, and predict's samples/s at batch 1 and 1000 for the
# compiled object (libmodelc-rt) and for the JIT (mc_predict), each for
# SECONDS. Writes the table to stdout and bench/results/aot.txt.
#   bench/aot.sh [BUILD_DIR] (default build; needs libmodelc-rt and libmodelc there)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=$(cd "${1:-$root/build}" && pwd)
modelc="$build/modelc"
REPS=${REPS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-3}
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
mkdir -p "$here/results"

ms() { date +%s%N | awk '{ printf "%.1f", $1 / 1e6 }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

cc -O2 -DJIT -I"$root/include" "$here/aot_bench.c" -o "$t/jit" -L"$build" -lmodelc -Wl,-rpath,"$build"
{
    printf '%-12s %12s %12s %6s %14s %14s\n' model object_bytes compile_ms batch aot_samples/s jit_samples/s
    for model in fashion_mlp fashion_cnn; do
        mdl="$root/examples/$model.mdl"
        : > "$t/times"
        for _ in $(seq "$REPS"); do
            a=$(ms)
            "$modelc" compile "$mdl" -o "$t/$model.o" --header "$t/$model.h" --batch-max 1000 > /dev/null
            b=$(ms)
            awk -v a="$a" -v b="$b" 'BEGIN { printf "%.1f\n", b - a }' >> "$t/times"
        done
        size=$(stat -c %s "$t/$model.o")
        compile=$(median < "$t/times")
        cc -O2 -I"$t" -DAOT_HEADER="\"$model.h\"" -DAOT_MODEL="${model}_model" "$here/aot_bench.c" "$t/$model.o" \
            -o "$t/aot_$model" -L"$build" -lmodelc-rt -lm -Wl,-rpath,"$build"
        for batch in 1 1000; do
            aot=$("$t/aot_$model" "$mdl" "$batch" "$SECONDS_PER_RUN" | awk '{ print $2 }')
            jit=$(XDG_CACHE_HOME="$t/cache" "$t/jit" "$mdl" "$batch" "$SECONDS_PER_RUN" | awk '{ print $2 }')
            printf '%-12s %12s %12s %6s %14s %14s\n' "$model" "$size" "$compile" "$batch" "$aot" "$jit"
        done
    done
} | tee "$here/results/aot.txt"
