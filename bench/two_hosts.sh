#!/bin/sh
# Two hosts on one machine: two network namespaces joined by a veth pair,
# and `mpirun` across them over TCP (the multi-host path, which the tests'
# shared-memory runs do not take). Needs root (ip netns). Trains the
# Fashion-MNIST MLP on 2000 examples with 2 processes, one per "host", and
# compares the parameters with one process's: exit 1 when the largest
# relative difference exceeds LIMIT (tests/e2e/dist_two_hosts.sh).
#
#   bench/two_hosts.sh [MODELC [LIMIT]]     (default build/modelc, 1e-4)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
modelc=$(cd "$(dirname "${1:-$here/build/modelc}")" && pwd)/$(basename "${1:-$here/build/modelc}")
limit=${2:-1e-4}
ns0=modelc-h0-$$
ns1=modelc-h1-$$
veth0=mc$$a
veth1=mc$$b
t=$(mktemp -d)
cleanup() {
    ip netns del "$ns0" 2> /dev/null || true
    ip netns del "$ns1" 2> /dev/null || true
    ip link del "$veth0" 2> /dev/null || true
    rm -rf "$t"
}
trap cleanup EXIT
ip netns add "$ns0"
ip netns add "$ns1"
ip link add "$veth0" type veth peer name "$veth1"
ip link set "$veth0" netns "$ns0"
ip link set "$veth1" netns "$ns1"
ip -n "$ns0" addr add 10.77.0.1/24 dev "$veth0"
ip -n "$ns1" addr add 10.77.0.2/24 dev "$veth1"
for n in "$ns0" "$ns1"; do ip -n "$n" link set lo up; done
ip -n "$ns0" link set "$veth0" up
ip -n "$ns1" link set "$veth1" up

# Open MPI starts its daemon on a remote host as `AGENT HOST COMMAND...`:
# here the "host" is a namespace.
cat > "$t/agent" <<EOF
#!/bin/sh
host=\$1
shift
case \$host in
10.77.0.1) ns=$ns0 ;;
10.77.0.2) ns=$ns1 ;;
*) echo "two_hosts: unknown host \$host" >&2; exit 1 ;;
esac
exec ip netns exec \$ns sh -c "\$*"
EOF
chmod +x "$t/agent"

cd "$here"
common="examples/fashion_mlp.mdl --limit 2000 --epochs 1 --no-test --no-warn --no-progress --threads 1 --no-cache"
# shellcheck disable=SC2086
"$modelc" train $common --save "$t/one.st" > /dev/null
# shellcheck disable=SC2086
ip netns exec "$ns0" env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
    mpirun --allow-run-as-root --host 10.77.0.1:1,10.77.0.2:1 -np 2 \
    --mca plm_rsh_agent "$t/agent" --mca btl tcp,self \
    --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24 \
    "$modelc" train $common --save "$t/two.st"
/usr/bin/python3 - "$t/two.st" "$t/one.st" "$limit" <<'PY'
import json, struct, sys
def load(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    hdr = json.loads(b[8:8 + n])
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__" or v["dtype"] != "F32":
            continue
        s, e = v["data_offsets"]
        out[k] = struct.unpack("<%df" % ((e - s) // 4), b[8 + n + s:8 + n + e])
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
worst = max(max(abs(x - y) for x, y in zip(a[k], b[k])) / (max(abs(v) for v in b[k]) or 1) for k in b)
print("two hosts over TCP against one process: largest relative difference %.3g (f32)" % worst)
sys.exit(0 if worst <= float(sys.argv[3]) else 1)
PY
