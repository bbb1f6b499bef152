# Sourced by the tests/e2e/dist_*.sh scripts (outside the e2e glob, so not
# a test itself): fail(), a skip when mpirun is missing, a temporary
# directory $t removed on exit, the environment Open MPI needs to run as
# root in a container, and mpi K CMD... to start K processes.
fail() { echo "FAIL: $*" >&2; exit 1; }
if ! command -v mpirun > /dev/null; then
    echo "SKIP: mpirun not found (scripts/install-deps.sh installs openmpi-bin)"
    exit 0
fi
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
# In the sanitizer build, leak checks are off for the processes mpirun
# starts: Open MPI keeps what MPI_Init allocates, and its stacks end in
# unsymbolized frames that no suppression can tell from modelc's
# (address and undefined-behaviour checks stay on).
mpi() {
    local k=$1
    shift
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
        mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$k" "$@"
}
