#!/usr/bin/env bash
# A graph as deep as it is long: IR text with a chain of 400,000 ops
# between a softmax row kernel's loss rows and its gradient operand goes
# through every pass without a recursion as deep as the chain (fuse's
# dependence check walks it with its own stack).
set -euo pipefail
: "${MODELC:?MODELC not set}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
awk -v n=400000 'BEGIN {
  print "graph deep {"
  print "  %z = input \"z\" : f32[N,4]"
  print "  %t = input \"t\" : f32[N,4]"
  print "  %dot = log_softmax_dot(%z, %t) {axis=1} : f32[N]"
  print "  %g0 = input \"g\" : f32[N,4]"
  for (i = 1; i <= n; i++) printf "  %%g%d = neg(%%g%d) : f32[N,4]\n", i, i - 1
  printf "  %%d = log_softmax_grad(%%z, %%g%d) {axis=1} : f32[N,4]\n", n
  print "  %s = reduce_sum(%d) {axes=[0,1]} : f32[]"
  print "  %s2 = reduce_sum(%dot) {axes=[0]} : f32[]"
  print "  %l = add(%s, %s2) : f32[]"
  print "  output loss = %l"
  print "}"
}' > "$T/deep.ir"
for p in verify specialize simplify fuse; do
  if ! "$MODELC" opt --pass=$p "$T/deep.ir" > "$T/out.ir" 2> "$T/err"; then
    echo "FAIL: modelc opt --pass=$p on a 400,000-op chain"
    cat "$T/err"
    exit 1
  fi
done
grep -q "log_softmax_grad" "$T/out.ir" || { echo "FAIL: fuse lost the softmax gradient"; exit 1; }
echo "a 400,000-op chain goes through verify, specialize, simplify and fuse"
