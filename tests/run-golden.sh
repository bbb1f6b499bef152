#!/bin/bash
# Run the RUN: lines of one golden test file (LLVM lit style).
#   %s        the test file        %modelc   the modelc binary
#   %FileCheck FileCheck           %t        a temporary path for this test
# A RUN line may continue onto the next with a trailing backslash.
set -o pipefail
f="$1"
: "${MODELC:?MODELC not set}" "${FILECHECK:?FILECHECK not set}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
cmd=""
while IFS= read -r line; do
  case "$line" in
    *"RUN:"*) part="${line#*RUN:}" ;;
    *) continue ;;
  esac
  cmd="$cmd${part% \\}"
  if [[ "$part" == *'\' ]]; then cmd="$cmd "; continue; fi
  n=$((n + 1))
  cmd="${cmd//%modelc/$MODELC}"
  cmd="${cmd//%FileCheck/$FILECHECK}"
  cmd="${cmd//%s/$f}"
  cmd="${cmd//%t/$tmp/t}"
  echo "RUN[$n]: $cmd"
  if ! bash -o pipefail -c "not() { if \"\$@\"; then return 1; fi; return 0; }; $cmd"; then
    echo "FAILED: $f (RUN line $n)"
    exit 1
  fi
  cmd=""
done < "$f"
if [ "$n" -eq 0 ]; then echo "no RUN lines in $f"; exit 1; fi
