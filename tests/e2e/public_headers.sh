#!/bin/bash
# The C API is the boundary: the command-line tools include only the
# public headers (include/modelc.h, include/modelc_inspect.h) and their
# own; the public headers include nothing of the library's, and compile
# as C11 and as C++.
set -uo pipefail
fail() { echo "public_headers: $*"; exit 1; }

bad=$(grep -nE '#include "(backend|passes|runtime|frontend|ir)/' tools/*.c tools/*.h)
[ -z "$bad" ] || fail "tools/ includes internal headers:
$bad"
# Every quoted include of a tool is a tool's own file or a public header.
own=" cli.h data_cli.h commands.def modelc.h modelc_inspect.h "
while IFS= read -r line; do
    f=${line#*\"}
    f=${f%%\"*}
    [[ "$own" == *" $f "* ]] || fail "tools/ includes \"$f\" ($line)"
done < <(grep -H '#include "' tools/*.c tools/*.h)

hdrs=$(cd include && ls)
[ "$hdrs" = $'modelc.h\nmodelc_inspect.h' ] || fail "include/ holds more than modelc.h and modelc_inspect.h: $hdrs"
grep -h '#include "' include/*.h | grep -vx '#include "modelc.h"' && fail "a public header includes a library header"

t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
for h in include/*.h; do
    printf '#include "%s"\n#include "%s"\n' "$(basename "$h")" "$(basename "$h")" > "$t/use.c"
    cc -std=c11 -Wall -Wextra -Wpedantic -Werror -fsyntax-only -Iinclude "$t/use.c" ||
        fail "$h does not compile as C11 on its own"
    if command -v c++ > /dev/null; then
        cp "$t/use.c" "$t/use.cc"
        c++ -Wall -Wextra -Werror -fsyntax-only -Iinclude "$t/use.cc" || fail "$h does not compile as C++"
    fi
done
# The C++ compiler sees C linkage: a C++ program links against the library.
if command -v c++ > /dev/null && command -v nm > /dev/null; then
    printf '#include "modelc_inspect.h"\nint main() { return mc_fn_names()[0] ? 0 : 1; }\n' > "$t/link.cc"
    c++ -c -Iinclude "$t/link.cc" -o "$t/link.o" || fail "cannot compile a C++ user"
    nm "$t/link.o" | grep ' U mc_fn_names$' >/dev/null || fail "mc_fn_names has C++ linkage in C++"
fi
echo "public_headers: ok"
