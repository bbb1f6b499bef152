#!/bin/bash
# Regenerate the CHECK lines of golden tests from what modelc prints now,
# like LLVM's update_test_checks.py, so checks are never tuned by hand.
#
#   scripts/update-checks.sh FILE...
#
# For each FILE: run its first RUN line without the trailing
# "| %FileCheck ..." (same substitutions as tests/run-golden.sh), delete the
# file's existing default-prefix CHECK lines and append one CHECK line per
# output line (CHECK-LABEL for a "graph" header, CHECK-NEXT after it,
# CHECK-EMPTY for blank lines). Paths of the test and of %t are replaced by
# {{.*}} patterns. The comment leader of the RUN line ("# ", "// ") is
# reused. MODELC defaults to build/modelc.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
MODELC=${MODELC:-$here/build/modelc}
FILECHECK=${FILECHECK:-/usr/lib/llvm-19/bin/FileCheck}

die() { echo "update-checks: $*" >&2; exit 1; }

# The first RUN command of $1 (continuations joined); sets run_cmd, leader.
first_run() {
  local line part
  run_cmd="" leader=""
  while IFS= read -r line; do
    case "$line" in
      *"RUN:"*) ;;
      *) [ -n "$run_cmd" ] && die "$1: RUN line continues onto a non-RUN line"; continue ;;
    esac
    [ -z "$run_cmd" ] && leader="${line%%RUN:*}"
    part="${line#*RUN:}"
    run_cmd="$run_cmd${part% \\}"
    if [[ "$part" == *'\' ]]; then run_cmd="$run_cmd "; continue; fi
    return 0
  done < "$1"
  die "$1: no RUN line"
}

# FileCheck treats {{ and [[ specially: write them as regexes.
escape_check() {
  local s="$1"
  s="${s//\{\{/\{\{[\{][\{]\}\}}"
  s="${s//\[\[/\{\{\\[\\[\}\}}"
  printf '%s' "$s"
}

update_one() {
  local f="$1" tmp out cmd abs base
  [ -f "$f" ] || die "$f: no such file"
  first_run "$f"
  cmd="${run_cmd%%| %FileCheck*}"
  [ "$cmd" = "$run_cmd" ] && die "$f: the first RUN line does not pipe into %FileCheck"
  tmp=$(mktemp -d)
  abs=$(cd "$(dirname "$f")" && pwd)/$(basename "$f")
  base=$(basename "$f")
  cmd="${cmd//%modelc/$MODELC}"
  cmd="${cmd//%FileCheck/$FILECHECK}"
  cmd="${cmd//%s/$f}"
  cmd="${cmd//%t/$tmp/t}"
  if ! out=$(bash -o pipefail -c "not() { if \"\$@\"; then return 1; fi; return 0; }; $cmd"); then
    rm -rf "$tmp"
    die "$f: the first RUN line failed: $cmd"
  fi
  [ -n "$out" ] || { rm -rf "$tmp"; die "$f: the first RUN line printed nothing"; }

  local checks="" first=1 line kind
  while IFS= read -r line; do
    line="${line%"${line##*[![:space:]]}"}"
    line=$(escape_check "$line")
    line="${line//"$abs"/\{\{.*\}\}$base}"
    line="${line//"$f"/\{\{.*\}\}$base}"
    line="${line//"$tmp/t"/\{\{.*\}\}}"
    if [ $first = 1 ]; then
      if [[ "$line" == graph* ]]; then kind="CHECK-LABEL:"; else kind="CHECK:"; fi
    elif [ -z "$line" ]; then
      kind="CHECK-EMPTY:"
    else
      kind="CHECK-NEXT:"
    fi
    first=0
    checks+="${leader}${kind}${line:+ }${line}"$'\n'
  done <<< "$out"
  rm -rf "$tmp"

  # keep everything but the old default-prefix CHECK lines; drop trailing blanks
  local kept
  kept=$(awk -v lead="$leader" '
    { s = $0; sub(/^[ \t]*/, "", s)
      if (index(s, lead) == 1 && substr(s, length(lead) + 1) ~ /^CHECK(-[A-Z]+)?:/) next
      print }' "$f")
  printf '%s\n\n%s' "$kept" "$checks" > "$f.new"
  mv "$f.new" "$f"
  echo "updated $f"
}

[ $# -ge 1 ] || die "usage: scripts/update-checks.sh FILE..."
[ -x "$MODELC" ] || die "modelc not found at $MODELC (set MODELC)"
for f in "$@"; do update_one "$f"; done
