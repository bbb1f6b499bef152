#!/bin/bash
# `modelc llvm`: the generated module's shape (kernels, entry, BLAS calls,
# runtime symbols), vector code after --opt for an elementwise model, the
# train-mode module, and usage errors.
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat >"$tmp/ew.mdl" <<'MDL'
model ew
input x: f32[N, 1024]
input z: f32[N, 1024]
output y = relu(x * 3 + z) - z / 2
MDL

# As generated: one internal function per kernel and the entry. The
# kernel is elementwise over rows of N, so it also gets a row-range thunk
# that the entry hands to the runtime's thread pool, 32 rows of 1024 per
# task.
"$MODELC" llvm "$tmp/ew.mdl" >"$tmp/ew.ll"
cat >"$tmp/ew.check" <<'CHECK'
CHECK: ModuleID = 'ew'
CHECK: target triple = "x86_64
CHECK: define internal void @k{{[0-9]+}}.{{[a-z_]+}}(ptr %ctx, i64 %N, ptr noalias %b{{[0-9]+}}
CHECK: fmul float
CHECK: define internal void @[[K:k[0-9]+]].rows(ptr %0, i64 %1, i64 %2)
CHECK: call void @[[K]].fused(ptr %ctx, i64 %n,
CHECK: define void @entry(ptr %ctx, i64 %N, ptr %bufs)
CHECK: call void @rt_parallel_rows(ptr %ctx, i64 %N, i64 32, ptr @[[K]].rows, ptr %env)
CHECK: ret void
CHECK-NOT: define
CHECK-NOT: <{{[0-9]+}} x float>
CHECK
"$FILECHECK" "$tmp/ew.check" --input-file "$tmp/ew.ll"

# Rows of more than two tasks' elements: the same kernel is flat, over
# N * row elements split 32768 per task (one image on every thread).
cat >"$tmp/big.mdl" <<'MDL'
model big
input x: f32[N, 300, 300]
output y = tanh(x) * 2
MDL
"$MODELC" llvm "$tmp/big.mdl" >"$tmp/big.ll"
cat >"$tmp/big.check" <<'CHECK'
CHECK: define internal void @[[K:k[0-9]+]].flat(ptr %0, i64 %1, i64 %2)
CHECK: define void @entry(ptr %ctx, i64 %N, ptr %bufs)
CHECK: %elems = mul nsw i64 %N, 90000
CHECK: call void @rt_parallel_rows(ptr %ctx, i64 %elems, i64 32768, ptr @[[K]].flat, ptr %env)
CHECK
"$FILECHECK" "$tmp/big.check" --input-file "$tmp/big.ll"
MODELC_NO_FLAT_ROWS=1 "$MODELC" llvm "$tmp/big.mdl" | grep -q 'call void @rt_parallel_rows(ptr %ctx, i64 %N, i64 1, ptr @k[0-9]*.rows' ||
    { echo "MODELC_NO_FLAT_ROWS=1 keeps the row-parallel kernel"; exit 1; }

# Optimised: the kernel is inlined into its thunk and the loops are
# vectorized for the host CPU.
"$MODELC" llvm "$tmp/ew.mdl" --opt >"$tmp/ew.opt.ll"
cat >"$tmp/opt.check" <<'CHECK'
CHECK-NOT: define internal void @k{{[0-9]+}}.fused
CHECK: define internal void @k{{[0-9]+}}.rows(ptr
CHECK: vector.body:
CHECK: load <{{8|16}} x float>
CHECK: fmul <{{8|16}} x float>
CHECK: fcmp ogt <{{8|16}} x float>
CHECK: store <{{8|16}} x float>
CHECK
"$FILECHECK" "$tmp/opt.check" --input-file "$tmp/ew.opt.ll"

# A reduction over the innermost axis vectorizes too (reassoc adds).
cat >"$tmp/sum.ir" <<'IR'
graph sum {
  %x = input "x" : f32[N,512]
  %s = reduce_sum(%x) {axes=[1]} : f32[N]
  output value "s" = %s
}
IR
"$MODELC" llvm "$tmp/sum.ir" >"$tmp/sum.ll"
"$MODELC" llvm "$tmp/sum.ir" --opt >"$tmp/sum.opt.ll"
echo 'CHECK: fadd reassoc float' >"$tmp/sum.check"
"$FILECHECK" "$tmp/sum.check" --input-file "$tmp/sum.ll"
echo 'CHECK: fadd reassoc <{{8|16}} x float>' >"$tmp/sumv.check"
"$FILECHECK" "$tmp/sumv.check" --input-file "$tmp/sum.opt.ll"

# Training: GEMMs through the runtime (the context's pool runs their
# parts) with transposes as flags, the
# softmax cross-entropy as one row kernel reading the logits (loss rows,
# gradient and the last bias gradient; no log_softmax kernel is left),
# and in-place parameter updates.
"$MODELC" llvm examples/fashion_mlp.mdl --mode=train >"$tmp/mlp.ll"
cat >"$tmp/mlp.check" <<'CHECK'
CHECK-DAG: call void @rt_gemm_f32(ptr %ctx, i32 0, i32 0, i64 %N, i64 256, i64 784
CHECK-DAG: call void @rt_gemm_f32(ptr %ctx, i32 1, i32 0, i64 784, i64 256, i64 %N
CHECK-DAG: call void @rt_gemm_f32(ptr %ctx, i32 0, i32 1, i64 %N, i64 256, i64 128
CHECK-DAG: define internal void @k{{[0-9]+}}.fused_softmax_xent(
CHECK-DAG: declare void @rt_gemm_f32(ptr, i32, i32, i64, i64, i64, float, ptr, ptr, float, ptr)
CHECK
"$FILECHECK" "$tmp/mlp.check" --input-file "$tmp/mlp.ll"
if grep -q "@k[0-9]*\.log_softmax\(_dot\|_grad\)\?(" "$tmp/mlp.ll"; then echo "fashion_mlp: a log_softmax kernel is left"; exit 1; fi
# Inference: the first dense layer's bias and relu run after its GEMM as
# a row-parallel kernel of their own (128 rows of 256 per task), and
# stay in the GEMM's kernel with MODELC_NO_GEMM_EPILOGUE_ROWS=1; the
# loss's log-softmax rows of 10 are row-parallel too (410 per task).
"$MODELC" llvm examples/fashion_mlp.mdl --fn eval >"$tmp/mlp_eval.ll"
cat >"$tmp/mlp_eval.check" <<'CHECK'
CHECK: define internal void @[[E:k[0-9]+]].fused.epilogue(ptr %ctx, i64 %N,
CHECK-NOT: rt_gemm_f32
CHECK: define internal void @[[E]].rows(ptr %0, i64 %1, i64 %2)
CHECK: call void @[[E]].fused.epilogue(ptr %ctx, i64 %n,
CHECK: define internal void @[[E]].fused(ptr %ctx, i64 %N,
CHECK: call void @rt_gemm_f32(ptr %ctx, i32 0, i32 0, i64 %N, i64 256, i64 784
CHECK: define void @entry(ptr %ctx, i64 %N, ptr %bufs)
CHECK: call void @[[E]].fused(ptr %ctx, i64 %N,
CHECK-NOT: call void @k
CHECK: call void @rt_parallel_rows(ptr %ctx, i64 %N, i64 128, ptr @[[E]].rows, ptr %env)
CHECK: call void @rt_parallel_rows(ptr %ctx, i64 %N, i64 410, ptr @[[S:k[0-9]+]].rows,
CHECK
"$FILECHECK" "$tmp/mlp_eval.check" --input-file "$tmp/mlp_eval.ll"
if MODELC_NO_GEMM_EPILOGUE_ROWS=1 "$MODELC" llvm examples/fashion_mlp.mdl --fn eval | grep -q "fused.epilogue"; then
    echo "MODELC_NO_GEMM_EPILOGUE_ROWS=1 still splits the GEMM's epilogue"; exit 1
fi
# Adam updates every parameter and slot in place: no end-of-step copies.
if grep -q "llvm.memcpy" "$tmp/mlp.ll"; then echo "fashion_mlp: an update is copied, not done in place"; exit 1; fi

# A CNN calls the convolution and pooling kernels of the runtime.
"$MODELC" llvm examples/fashion_cnn.mdl --mode=train >"$tmp/cnn.ll"
cat >"$tmp/cnn.check" <<'CHECK'
CHECK-DAG: call void @rt_conv2d_f32(ptr
CHECK-DAG: call void @rt_conv2d_grad_kernel_f32(ptr
CHECK-DAG: call void @rt_conv2d_grad_input_f32(ptr
CHECK-DAG: call void @rt_max_pool2d_f32(ptr
CHECK-DAG: call void @rt_max_pool2d_grad_f32(ptr
CHECK
"$FILECHECK" "$tmp/cnn.check" --input-file "$tmp/cnn.ll"

# f64 models use the double kernels.
"$MODELC" llvm examples/s2_init_scale/sigma_1.mdl --mode=train >"$tmp/f64.ll"
echo 'CHECK: call void @rt_gemm_f64(' >"$tmp/f64.check"
"$FILECHECK" "$tmp/f64.check" --input-file "$tmp/f64.ll"

# --time-passes reports the pipeline and the LLVM phases; a small module
# is one part, a training step is compiled in four parts taken in turn by
# two threads.
"$MODELC" llvm "$tmp/ew.mdl" --time-passes >/dev/null 2>"$tmp/time.txt"
cat >"$tmp/time.check" <<'CHECK'
CHECK: modelc compile time
CHECK-DAG: ms {{.*}}%  simplify
CHECK-DAG: ms {{.*}}%  llvm: build IR
CHECK-DAG: ms {{.*}}%  llvm: optimise IR
CHECK-DAG: ms {{.*}}%  llvm: codegen
CHECK-DAG: ms {{.*}}%  llvm: JIT link
CHECK: ms  100.0%  total
CHECK-NEXT: llvm: 1 kernels in 1 parts on 1 threads
CHECK
"$FILECHECK" "$tmp/time.check" --input-file "$tmp/time.txt"
"$MODELC" llvm examples/fashion_mlp.mdl --mode=train --time-passes >/dev/null 2>"$tmp/time2.txt"
if [ "$(nproc)" -ge 2 ]; then
    grep -q "llvm: 24 kernels in 4 parts on 2 threads" "$tmp/time2.txt" # the step modelc train runs
    grep -q "llvm: waiting for parts" "$tmp/time2.txt"
fi
# Large update loops without a batch axis run flat-parallel: of the MLP's
# parameters only dense.kernel (784x256) has 65536 elements or more, so
# its Adam loop (with m and v) is the one kI.flat thunk.
"$MODELC" llvm examples/fashion_mlp.mdl --mode=train >"$tmp/mlp.train.ll"
[ "$(grep -c '^define internal void @k[0-9]*\.flat(' "$tmp/mlp.train.ll")" -eq 1 ]
grep -q 'call void @rt_parallel_rows(ptr %ctx, i64 200704, i64 32768' "$tmp/mlp.train.ll"
# The optimised training step: kernels inlined into the entry, vector code.
"$MODELC" llvm examples/fashion_mlp.mdl --mode=train --opt >"$tmp/mlp.opt.ll"
# (only the thunks handed to the thread pool stay functions of their own)
! grep '^define internal' "$tmp/mlp.opt.ll" | grep -v '\.flat(\|\.rows('
cat >"$tmp/mlpopt.check" <<'CHECK'
CHECK: define void @entry(ptr
CHECK: vector.body:
CHECK: <8 x float>
CHECK
"$FILECHECK" "$tmp/mlpopt.check" --input-file "$tmp/mlp.opt.ll"

# Usage errors exit with 2, model errors with 1.
set +e
"$MODELC" llvm "$tmp/ew.mdl" --mode=eval 2>"$tmp/err.txt"
test $? -eq 2
grep -q "modelc llvm: --mode must be train or infer, got 'eval'" "$tmp/err.txt"
"$MODELC" llvm "$tmp/ew.mdl" --after=nosuch 2>"$tmp/err.txt"
test $? -eq 2
grep -q "unknown pass 'nosuch' for --after" "$tmp/err.txt"
"$MODELC" llvm "$tmp/missing.mdl" 2>"$tmp/err.txt"
test $? -eq 1
grep -q "missing.mdl" "$tmp/err.txt"
set -e
echo "modelc llvm: ok"
