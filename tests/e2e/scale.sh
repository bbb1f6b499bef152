#!/usr/bin/env bash
# Large models take time linear in their size, from the front end to the
# last pass and the printed diagnostics. Each generated model is far
# larger than any real one; each command runs under a time limit that
# linear work meets many times over on a slow, loaded machine, while
# quadratic work (a name looked up by scanning every name, a suffix
# search that restarts from 1, a replacement that scans the graph once
# per node, a source line found by scanning the file once per warning)
# takes minutes or hours.
set -euo pipefail
: "${MODELC:?MODELC not set}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# Quadratic name tables also took quadratic memory: bound it, except
# under AddressSanitizer, which reserves terabytes of address space and
# runs several times slower (the time limits grow to match).
slow=1
if ldd "$MODELC" 2>/dev/null | grep libasan > /dev/null; then # no -q: under pipefail an early exit would fail ldd with SIGPIPE
  slow=5
else
  ulimit -v 8000000
fi

run() { # LIMIT WHAT COMMAND...: the command must succeed within LIMIT seconds
  local limit=$(($1 * slow)) what=$2
  shift 2
  local t0=$SECONDS rc=0
  timeout "$limit" "$@" > "$T/out" 2> "$T/err" || rc=$?
  if [ "$rc" -ne 0 ]; then
    [ "$rc" -eq 124 ] && echo "FAIL: $what took more than $limit s" || echo "FAIL: $what exited with $rc"
    tail -5 "$T/err"
    exit 1
  fi
  echo "$what: $((SECONDS - t0)) s"
}

# 2 N statements: distinct names, one name rebound over and over (a
# label shared by N values), an output every 40 statements
chain() {
  awk -v n="$1" 'BEGIN {
    print "input x: f32[N, 4]"
    print "param w: f32[4] = ones()"
    print "h = x * w"
    for (i = 1; i <= n; i++) {
      printf "t%d = h * 0.5\n", i
      printf "h = t%d + 1.0\n", i
      if (i % 20 == 0) printf "output o%d = t%d\n", i, i
    }
    print "loss = mean(h)"
  }'
}
chain 100000 > "$T/chain.mdl"
run 60 "check, 200,000 statements" "$MODELC" check "$T/chain.mdl"
chain 50000 > "$T/chain.mdl"
run 120 "ir --after=fuse, 100,000 statements" "$MODELC" ir "$T/chain.mdl" --after=fuse

# 5,000 unnamed dense layers (default names dense, dense_1, ...), each
# kernel also read by its dotted name
awk -v n=5000 'BEGIN {
  print "input x: f32[N, 4]"
  print "h0 = x"
  for (i = 1; i <= n; i++) {
    printf "h%d = dense(h%d, 4)\n", i, i - 1
    printf "s%d = sum(%s.kernel)\n", i, i == 1 ? "dense" : sprintf("dense_%d", i - 1)
  }
  printf "loss = mean(h%d) + s%d\n", n, n
}' > "$T/layers.mdl"
run 60 "check, 5,000 dense layers" "$MODELC" check "$T/layers.mdl"
run 120 "ir --after=fuse, 5,000 dense layers" "$MODELC" ir "$T/layers.mdl" --after=fuse

# 50,000 dropout layers: 50,000 phase nodes for specialize to resolve
awk -v n=50000 'BEGIN {
  print "input x: f32[N, 4]"
  print "param w: f32[4] = ones()"
  print "h = x * w"
  for (i = 1; i <= n; i++) print "h = dropout(h, 0.1)"
  print "loss = mean(h)"
}' > "$T/dropout.mdl"
run 60 "ir --after=specialize, 50,000 dropout layers" "$MODELC" ir "$T/dropout.mdl" --after=specialize

# 100,000 parameters the loss does not use: 100,000 warnings, each with
# its source line
awk -v n=100000 'BEGIN {
  print "input x: f32[N, 4]"
  for (i = 0; i < n; i++) printf "param p%d: f32[4] = zeros()\n", i
  print "loss = mean(x)"
}' > "$T/unused.mdl"
run 60 "check, 100,000 parameters" "$MODELC" check "$T/unused.mdl"
run 60 "ir --after=autodiff, 100,000 warnings" "$MODELC" ir "$T/unused.mdl" --after=autodiff
grep -c "warning: the loss does not depend on parameter" "$T/err" | grep -qx 100000 ||
  { echo "FAIL: expected 100,000 warnings"; exit 1; }
