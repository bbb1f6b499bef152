# Shared by the AOT tests (sourced): aot_build OBJ HEADER MODEL OUT builds
# tests/aot/aot_driver.c against a compiled object with libmodelc-rt,
# OpenBLAS and libm only. Needs $MODELC and $t (a temporary directory).
build=$(cd "$(dirname "$MODELC")" && pwd)
san=""
grep -q '^MODELC_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" && san="-fsanitize=address,undefined"
aot_build() {
    cc -std=c11 -Wall -Wextra -Werror $san -I"$(dirname "$2")" -Itests/aot -DAOT_HEADER="\"$(basename "$2")\"" \
        -DAOT_MODEL="$3_model" tests/aot/aot_driver.c "$1" -o "$4" \
        -L"$build" -lmodelc-rt -lopenblas -lm -Wl,-rpath,"$build"
}
