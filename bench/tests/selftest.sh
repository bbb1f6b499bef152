#!/bin/sh
# Self-test of the harness's plumbing, with the modelc stand-in
# (tests/fake_modelc.py) and no peers, so it takes seconds: the modelc
# protocol is parsed, the GEMM floor runs, JSON and table are written, and
# a failing modelc command is reported instead of stopping the run; the
# peak FMA timer runs and the GFLOP columns are derived from it.
# Usage: bench/tests/selftest.sh   (needs bench/build/gemm_floor and bench/build/peak_fma:
# run.sh builds them)
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fake="$here/tests/fake_modelc.py"
pass=0
fail=0

check() { # check NAME PYTHON-EXPRESSION-ON-r (r = the result JSON)
    if /usr/bin/python3 -c "
import json, sys
r = json.load(open('$tmp/latest.json'))
sys.exit(0 if ($2) else 1)"; then
        pass=$((pass + 1))
    else
        echo "FAIL: $1" >&2
        fail=$((fail + 1))
    fi
}

/usr/bin/python3 "$here/harness.py" --quick --reps 2 --epoch-reps 1 --frameworks modelc \
    --cases mlp_b128,cnn_bn_b128 --modelc "$fake" --out "$tmp/latest.json" \
    >"$tmp/table.txt" 2>"$tmp/log.txt"

check "two summary rows per case" "len(r['summary']) == 4"
check "medians of the fake's 0.4 ms/step" "all(abs(s['ms_per_step'] - 0.4) < 1e-9 for s in r['summary'])"
check "compile from the compiled line" "all(s['compile_ms'] == 20.0 for s in r['summary'])"
check "inference from modelc eval" "all(s['infer_samples_per_s'] == 200000.0 for s in r['summary'])"
check "start to first step measured" "all(0 < s['first_step_ms'] < 5000 for s in r['summary'])"
check "peak RSS of the child" "all(s['peak_rss_mb'] > 1 for s in r['summary'])"
check "GEMM floor per case and env" "all(s['gemm_floor_ms'] > 0 and s['floor_ratio'] > 0 for s in r['summary'])"
check "one-epoch runs in the first env, estimates elsewhere" "all((s['epoch1_s'] or 0) > 0 if s['env'] == 'haswell' else (s['epoch1_s'] is None and s['epoch1_est_s'] > 0) for s in r['summary'])"
check "parameter counts agreed" "all(v['modelc'] == v['expected'] for v in r['param_check'].values())"
check "inference at batch 1 from modelc eval" "all(s['infer1_samples_per_s'] == 2000.0 and s['infer1_ms'] == 0.5 for s in r['summary'])"
check "peak FMA measured at 1 and 2 threads" "r['peak_fma']['gflops']['1'] > 0 and r['peak_fma']['gflops']['2'] > 0"
check "GFLOP per step, GFLOP/s and % of peak" "all(s['gflop_per_step'] > 0 and abs(s['gflops'] - s['gflop_per_step'] / 0.4 * 1000) < 1e-6 and s['pct_peak'] > 0 for s in r['summary'])"
check "lscpu model name recorded" "r['meta']['lscpu_model_name']"
check "no errors" "r['errors'] == []"
check "complete run" "r['meta']['complete'] is True"
check "targets judged" "any(t['met'] is True for t in r['targets'])"
check "peer targets n/a" "all(t['met'] is None for t in r['targets'] if 'PyTorch' in t['target'])"
if grep -q "cnn_bn_b128  modelc" "$tmp/table.txt"; then pass=$((pass + 1)); else
    echo "FAIL: table row" >&2; fail=$((fail + 1)); fi
[ -s "$tmp/latest.txt" ] && pass=$((pass + 1)) || { echo "FAIL: latest.txt" >&2; fail=$((fail + 1)); }

FAKE_MODELC_FAIL=train /usr/bin/python3 "$here/harness.py" --quick --reps 2 --epoch-reps 1 \
    --frameworks modelc --cases mlp_b128 --modelc "$fake" --out "$tmp/latest.json" \
    >"$tmp/table.txt" 2>"$tmp/log.txt"
check "failure recorded once per configuration" "len(r['errors']) == 2 and 'failed on request' in r['errors'][0]"
check "failed configuration not retried" "sum(1 for x in r['runs'] if x['kind'] == 'train') == 2"
if grep -q "failed configurations" "$tmp/table.txt"; then pass=$((pass + 1)); else
    echo "FAIL: failure listed under the table" >&2; fail=$((fail + 1)); fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
