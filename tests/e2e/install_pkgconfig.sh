#!/bin/bash
# make install into a temporary prefix: the command, both libraries, the
# headers and the pkg-config files; then a C program built with
# `pkg-config --cflags --libs modelc` alone (no --whole-archive, no
# -rdynamic) compiles a model with the JIT and trains it for a few steps,
# against the shared library and against the static one.
set -uo pipefail
fail() { echo "install_pkgconfig: $*"; exit 1; }
build=$(cd "$(dirname "$MODELC")" && pwd)
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
cmake --install "$build" --prefix "$t/prefix" > "$t/install.log" 2>&1 || { cat "$t/install.log"; fail "cmake --install failed"; }
lib=$(ls -d "$t"/prefix/lib*/pkgconfig | head -1)
lib=${lib%/pkgconfig}
for f in bin/modelc include/modelc.h include/modelc_inspect.h; do
    [ -e "$t/prefix/$f" ] || fail "$f is not installed"
done
for f in libmodelc.a libmodelc.so libmodelc-rt.a libmodelc-rt.so pkgconfig/modelc.pc pkgconfig/modelc-rt.pc; do
    [ -e "$lib/$f" ] || fail "$(basename "$lib")/$f is not installed"
done
"$t/prefix/bin/modelc" --version > /dev/null || fail "the installed modelc does not run"
export PKG_CONFIG_PATH="$lib/pkgconfig"
[ "$(pkg-config --variable=libdir modelc)" -ef "$lib" ] || fail "modelc.pc's libdir is $(pkg-config --variable=libdir modelc), not $lib"
# A sanitized build's libraries need the sanitizer runtime in the program.
san=""
grep -q '^MODELC_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" && san="-fsanitize=address,undefined"

cat > "$t/use.c" <<'C'
#include <modelc.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    mc_model *m = mc_compile(argv[1], NULL);
    if (!m) {
        fprintf(stderr, "%s", mc_last_error(NULL));
        return 1;
    }
    mc_init_params(m, 1);
    static float x[8 * 28 * 28];
    static int32_t y[8];
    for (int i = 0; i < 8 * 28 * 28; i++)
        x[i] = (float)(i % 17) / 17.0f;
    for (int i = 0; i < 8; i++)
        y[i] = i % 10;
    const int64_t dx[4] = {8, 28, 28, 1}, dy[1] = {8};
    mc_tensor batch[2] = {{"x", 0, 4, dx, x}, {"y", 2, 1, dy, y}};
    double loss = 0;
    for (int s = 0; s < 3; s++)
        if (!mc_train_step(m, batch, 2, 0.01, &loss)) {
            fprintf(stderr, "%s\n", mc_last_error(m));
            return 1;
        }
    printf("steps %lld loss %.6f\n", (long long)mc_step(m), loss);
    mc_free(m);
    return 0;
}
C
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror $san "$t/use.c" -o "$t/use" $(pkg-config --cflags --libs modelc) ||
    fail "cannot build a C program with pkg-config modelc"
LD_LIBRARY_PATH="$lib" "$t/use" examples/fashion_mlp.mdl > "$t/shared.out" || fail "the program linked with libmodelc.so fails"
grep -q '^steps 3 loss ' "$t/shared.out" || fail "unexpected output: $(cat "$t/shared.out")"
ldd "$t/use" | grep "libmodelc.so" >/dev/null || fail "the program is not linked with libmodelc.so"
static_libs=$(pkg-config --static --libs modelc | sed 's/-lmodelc\b//')
# shellcheck disable=SC2086
cc -std=c11 -Wall -Wextra -Werror $san "$t/use.c" -o "$t/use_static" $(pkg-config --cflags modelc) "$lib/libmodelc.a" $static_libs ||
    fail "cannot build a C program against libmodelc.a with pkg-config --static modelc"
"$t/use_static" examples/fashion_mlp.mdl > "$t/static.out" || fail "the program linked with libmodelc.a fails"
cmp -s "$t/shared.out" "$t/static.out" || fail "shared and static builds differ: $(cat "$t/shared.out" "$t/static.out")"
echo "install_pkgconfig: ok"
