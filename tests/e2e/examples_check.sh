#!/bin/bash
# Every example model passes `modelc check` without a diagnostic and gets
# its one-line summary; `modelc check` on all of them at once agrees.
set -euo pipefail
: "${MODELC:?MODELC not set}"
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mapfile -t files < <(find examples -name '*.mdl' | sort)
if [ "${#files[@]}" -lt 17 ]; then
  echo "expected at least 17 example models, found ${#files[@]}"
  exit 1
fi
for f in "${files[@]}"; do
  if ! "$MODELC" check "$f" >"$tmp/out" 2>"$tmp/err"; then
    echo "FAIL: modelc check $f"
    cat "$tmp/err"
    exit 1
  fi
  if [ -s "$tmp/err" ]; then
    echo "FAIL: modelc check $f printed diagnostics:"
    cat "$tmp/err"
    exit 1
  fi
  if ! grep -Eq "^$f: ok \([0-9]+ parameters?, [0-9]+ weights?\)$" "$tmp/out"; then
    echo "FAIL: unexpected summary for $f:"
    cat "$tmp/out"
    exit 1
  fi
done
"$MODELC" check "${files[@]}" >"$tmp/all"
if [ "$(grep -c ': ok (' "$tmp/all")" -ne "${#files[@]}" ]; then
  echo "FAIL: checking all examples at once"
  cat "$tmp/all"
  exit 1
fi
echo "${#files[@]} examples pass modelc check"
