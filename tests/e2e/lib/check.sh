# Sourced by e2e scripts (outside the e2e glob, so not a test itself):
# check_fails TEXT MESSAGE writes TEXT to $t/bad.mdl, runs `modelc check`
# on it, and fails the script (its fail()) unless the exit code is 1 and
# the output holds MESSAGE (a fixed string). The output stays in $t/err.
check_fails() {
    printf '%s\n' "$1" > "$t/bad.mdl"
    set +e
    "$MODELC" check "$t/bad.mdl" > "$t/err" 2>&1
    local rc=$?
    set -e
    [ "$rc" = 1 ] || fail "exit $rc for: $1"
    grep -qF -- "$2" "$t/err" || fail "expected '$2' for: $1, got: $(cat "$t/err")"
}
