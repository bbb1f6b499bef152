#!/bin/bash
# modelc train --profile times every kernel of the compiled training step
# and prints one table row per kernel (and copy) of the entry, slowest
# first, naming the op or fused group, the value it computes and its
# source line (a kernel run as another's epilogue named on both rows);
# the calls match the steps run and the shares add up to 100%. Without --profile no table appears; the interpreter refuses it.
set -euo pipefail
: "${MODELC:?}" "${FILECHECK:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
m=examples/fashion_cnn_bn.mdl
"$MODELC" train "$m" --limit 96 --batch 32 --epochs 1 --no-test --no-progress --profile \
    > "$t/out" 2> "$t/prof"
"$FILECHECK" --input-file "$t/prof" "$0" --check-prefix=PROF
# PROF: profile: training step, 3 steps, {{[0-9.]+}} ms/step in [[K:[0-9]+]] kernels
# PROF-NEXT: {{^}} # kernel value source calls ms/call total ms share{{$}}
# PROF-DAG: {{^ [0-9]+}} conv2d_grad_input %{{[0-9a-z_.]+}} examples/fashion_cnn_bn.mdl:14 3 {{[0-9]+\.[0-9]{4} [0-9]+\.[0-9]{3} [0-9]+\.[0-9]%$}}
# PROF-DAG: {{^ [0-9]+}} conv2d %h.3 examples/fashion_cnn_bn.mdl:14 3 {{[0-9]}}
# PROF-DAG: {{^ [0-9]+}} max_pool2d_grad+#[[E:[0-9]+]] %{{[0-9]+}} examples/fashion_cnn_bn.mdl:13 3 {{[0-9]}}
# PROF-DAG: {{^ }}[[E]] fused{gt,mul} (in #{{[0-9]+}}) %{{[0-9]+}} examples/fashion_cnn_bn.mdl:12 3 {{[0-9]}}
# PROF-DAG: {{^ [0-9]+}} dropout_mask %{{[0-9]+}} examples/fashion_cnn_bn.mdl:19 3 {{[0-9]}}
# PROF-DAG: {{^ [0-9]+}} fused{sub,mul,mul,add,relu} %h.1 examples/fashion_cnn_bn.mdl:12 3 {{[0-9]}}
# PROF-DAG: {{^ [0-9]+}} fused{matmul,add,relu} %h.7 examples/fashion_cnn_bn.mdl:18 3 {{[0-9]}}
# PROF-DAG: {{^ [0-9]+}} fused{matmul,mul,gt,mul,reduce_sum} %{{[0-9]+}} examples/fashion_cnn_bn.mdl:20 3 {{[0-9]}}
# PROF-DAG: {{^ [0-9]+}} fused{log_softmax_dot,div,mul,log_sof... %{{[0-9]+}} examples/fashion_cnn_bn.mdl:22 3 {{[0-9]}}

# one row per kernel, each run once per step, kernel numbers 0..K-1, rows
# sorted by total time, shares summing to 100% (up to their rounding)
awk 'NR == 1 { k = $(NF - 1); next }
     NR == 2 { next }
     { rows++; seen[$1] = 1; share += $NF + 0
       if ($(NF - 3) != 3) { print "calls: " $0; bad = 1 }
       if (NR > 3 && $(NF - 1) + 0 > prev + 0) { print "order: " $0; bad = 1 }
       prev = $(NF - 1) }
     END { for (i = 0; i < k; i++) if (!(i in seen)) { print "missing kernel " i; bad = 1 }
           if (rows != k) { print rows " rows for " k " kernels"; bad = 1 }
           # each share is rounded to 0.1%: the sum is 100 within 0.05 per row
           if (share < 100 - 0.05 * rows - 1e-9 || share > 100 + 0.05 * rows + 1e-9) {
               print "shares add up to " share " over " rows " rows"; bad = 1 }
           exit bad }' "$t/prof"

# off by default; interpreter runs cannot be profiled
"$MODELC" train "$m" --limit 32 --batch 32 --epochs 1 --no-test --no-progress > "$t/out" 2> "$t/err"
if grep -q profile "$t/err"; then echo "a table without --profile"; exit 1; fi
rc=0
"$MODELC" train "$m" --limit 32 --epochs 1 --no-test --backend interp --profile > /dev/null 2> "$t/err" || rc=$?
[ $rc -eq 2 ] || { echo "interp --profile: exit $rc"; exit 1; }
grep -q -- "--profile needs the jit backend" "$t/err"
# a run that stops before its first step prints its error, no table
rc=0
printf 'not images' > "$t/bad.npy"
"$MODELC" train "$m" --data "$t/bad.npy" --epochs 1 --no-test --no-progress --profile > /dev/null 2> "$t/err" || rc=$?
[ $rc -eq 1 ] || { echo "train --profile on bad data: exit $rc"; exit 1; }
if grep -q "^profile:" "$t/err"; then echo "a profile table after a data error:"; cat "$t/err"; exit 1; fi
rc=0
"$MODELC" eval "$m" --weights w.st --backend interp --profile > /dev/null 2> "$t/err" || rc=$?
[ $rc -eq 2 ] || { echo "eval interp --profile: exit $rc"; exit 1; }

# modelc eval --profile: the inference function's kernels over every
# batch, the warm-up ones too (3 + 2 batches of 20); with tiles of 16
# rows each convolution's chain (batchnorm, relu and pooling as its
# epilogues) runs twice per batch
"$MODELC" init "$m" -o "$t/w.st" > /dev/null
MODELC_TILE_ROWS=16 "$MODELC" eval "$m" --weights "$t/w.st" --limit 60 --batch 20 --warmup 2 --profile > "$t/out" 2> "$t/eprof"
"$FILECHECK" --input-file "$t/eprof" "$0" --check-prefix=EVAL
# EVAL: profile: inference, 5 batches, {{[0-9.]+}} ms/batch in {{[0-9]+}} kernels
# EVAL-DAG: {{^ [0-9]+}} conv2d+#{{[0-9]+}}+#{{[0-9]+}} %h examples/fashion_cnn_bn.mdl:11 10 {{[0-9]}}
# EVAL-DAG: {{^ [0-9]+}} conv2d+#{{[0-9]+}}+#{{[0-9]+}} %h.3 examples/fashion_cnn_bn.mdl:14 10 {{[0-9]}}
# EVAL-DAG: {{^ [0-9]+}} max_pool2d (in #{{[0-9]+}}) %h.2 examples/fashion_cnn_bn.mdl:13 10 {{[0-9]}}
# EVAL-DAG: {{^ [0-9]+}} fused{matmul,add,relu} %h.7 examples/fashion_cnn_bn.mdl:18 5 {{[0-9]}}
grep -q "examples (inference mode)" "$t/out"
echo "train_profile: ok"
