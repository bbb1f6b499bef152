"""The benchmark harness: measures modelc, PyTorch 1.13 (Debian), PyTorch 2
(eager with fused Adam, and torch.compile), Keras 3 on TensorFlow (with
and without jit_compile) and JAX side by side on the Fashion-MNIST models
and the S0 seed model in one run, against the machine's measured peak FMA
rate, and writes a table and JSON.

Every measurement is a fresh process (so start-up time and peak RSS are
per process), repetitions are interleaved (rep 1 of every configuration,
then rep 2, ...) so the machine's background noise spreads over all of
them alike, and every figure is the median over the repetitions.

Standard library only; run with /usr/bin/python3 (bench/run.sh does).
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import common  # noqa: E402  (its top level needs no NumPy)

TORCH_PY = "/usr/bin/python3"
JAX_PY = os.path.join(HERE, ".venv", "bin", "python")
TORCH2_PY = os.path.join(HERE, ".venv-torch2", "bin", "python")
KERAS_PY = os.path.join(HERE, ".venv-keras", "bin", "python")
JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
GEMM_FLOOR = os.path.join(HERE, "build", "gemm_floor")
PEAK_FMA = os.path.join(HERE, "build", "peak_fma")

# The peers: interpreter, worker script, the worker's own options.
PEERS = {
    "torch": (TORCH_PY, "torch_worker.py", []),
    "torch2": (TORCH2_PY, "torch_worker.py", ["--fused-adam"]),
    "torch2c": (TORCH2_PY, "torch_worker.py", ["--fused-adam", "--compile"]),
    "keras": (KERAS_PY, "keras_worker.py", []),
    "keras_xla": (KERAS_PY, "keras_worker.py", ["--jit-compile"]),
    "jax": (JAX_PY, "jax_worker.py", []),
}
FRAMEWORKS = ["modelc"] + list(PEERS)
# Frameworks whose first training call compiles (compile ms = first call
# minus a steady step); the eager ones report none.
COMPILING_PEERS = {"torch2c", "keras", "keras_xla", "jax"}
# Peers that do not use the system's OpenBLAS: run in the first
# --peer-envs environment only (PyTorch 1.13 runs in every --envs one).
NON_OPENBLAS = {"torch2", "torch2c", "keras", "keras_xla", "jax"}
# Peers pinned with taskset when --threads is below the core count (their
# runtimes size thread pools by the CPUs they may use).
PINNED = {"jax", "keras", "keras_xla"}

# OpenBLAS environments: the machine's setting, and OpenBLAS' own choice.
ENVS = {"haswell": {"OPENBLAS_CORETYPE": "Haswell"}, "unset": {"OPENBLAS_CORETYPE": None}}

# Training examples per epoch (2 epochs: the first warms up, the second is
# timed), sized so a full run stays near 15 minutes on this 2-core machine
# when it is idle: the MLPs get 256/100/50 steps, the CNNs 10 (each step
# is long, and the median over the repetitions steadies it).
LIMITS = {"mlp_b32": 8192, "mlp_b128": 12800, "mlp_b512": 25600,
          "cnn_b128": 1280, "cnn_bn_b128": 1280, "s0_b32": 320}
QUICK_LIMITS = {"mlp_b32": 4096, "mlp_b128": 6400, "mlp_b512": 12288,
                "cnn_b128": 768, "cnn_bn_b128": 768, "s0_b32": 192}
# Test images for the inference figure (batches of common.INFER_BATCHES:
# 1000, S0 32), and for the batch-1 latency figure.
INFER_LIMITS = {"mlp": 10000, "cnn": 2000, "cnn_bn": 2000, "s0": 320}
INFER1_LIMITS = {"mlp": 500, "cnn": 200, "cnn_bn": 200, "s0": 50}
# Cases whose training run also times inference (one per architecture).
INFER_CASES = {"mlp_b128", "cnn_b128", "cnn_bn_b128", "s0_b32"}
# Cases timed over one full epoch (60000 examples) including compile.
EPOCH_CASES = ["mlp_b128", "cnn_b128", "cnn_bn_b128"]

# The peers' epoch 1 is a warm-up of this many steps (JAX compiles in the
# first); modelc's is a whole epoch, as --limit applies to both of its.
PEER_WARMUP_STEPS = 3

CHILD_TIMEOUT_S = 600


def log(msg):
    sys.stderr.write("[bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


# ---------------------------------------------------------------- processes

def modelc_blas_core(modelc, env):
    """The OpenBLAS kernel set modelc runs on (`modelc --version`: it
    re-selects OpenBLAS's kernels when they fall below the CPU's
    instruction set), so that the GEMM floor is timed on the same kernels."""
    try:
        out = subprocess.run([modelc, "--version"], capture_output=True, text=True, env=env,
                             timeout=60).stdout
    except OSError:
        return None
    m = re.search(r"^BLAS: OpenBLAS (\S+) kernels", out, re.M)
    return m.group(1) if m else None


def child_env(env_name, threads, extra=None):
    e = dict(os.environ)
    for k, v in ENVS[env_name].items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = v
    e["OMP_NUM_THREADS"] = str(threads)
    e["OPENBLAS_NUM_THREADS"] = str(threads)
    e["MKL_NUM_THREADS"] = str(threads)
    e["TF_CPP_MIN_LOG_LEVEL"] = "2"
    e.pop("LD_PRELOAD", None)
    e["PYTHONDONTWRITEBYTECODE"] = "1"
    e.update(extra or {})
    return e


def run_child(cmd, env, cwd=None, timeout=CHILD_TIMEOUT_S):
    """Runs cmd, timestamping each JSON line of its stdout as it arrives.
    Returns {"lines": [(t_ms, obj)], "rc", "maxrss_kb", "wall_ms",
    "stderr"}; t_ms and wall_ms count from just before the process was
    started (the same instant BENCH_T0 holds)."""
    env = dict(env)
    t0_wall = time.time()
    env["BENCH_T0"] = repr(t0_wall)
    t0 = time.monotonic()
    errf = tempfile.TemporaryFile(mode="w+")
    try:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errf, env=env,
                             cwd=cwd, text=True, bufsize=1)
    except OSError as ex:
        errf.close()
        return {"lines": [], "rc": None, "maxrss_kb": None, "wall_ms": 0.0,
                "stderr": str(ex), "error": "cannot start %s: %s" % (cmd[0], ex)}
    killed = []

    def kill():
        killed.append(True)
        p.kill()
    timer = threading.Timer(timeout, kill)
    timer.start()
    lines = []
    for raw in p.stdout:
        t = (time.monotonic() - t0) * 1000.0
        raw = raw.strip()
        if not raw.startswith("{"):
            continue
        try:
            lines.append((t, json.loads(raw)))
        except ValueError:
            pass
    _, status, ru = os.wait4(p.pid, 0)
    wall = (time.monotonic() - t0) * 1000.0
    timer.cancel()
    p.returncode = os.waitstatus_to_exitcode(status)
    p.stdout.close()
    errf.seek(0)
    err = errf.read()
    errf.close()
    res = {"lines": lines, "rc": p.returncode, "maxrss_kb": ru.ru_maxrss,
           "wall_ms": wall, "cpu_ms": (ru.ru_utime + ru.ru_stime) * 1000.0,
           "stderr": err[-2000:]}
    if killed:
        res["error"] = "timed out after %d s" % timeout
    elif p.returncode != 0:
        tail = err.strip().splitlines()[-1:] or ["(no stderr)"]
        res["error"] = "exit code %s: %s" % (p.returncode, tail[0][:300])
    return res


def find_event(lines, pred):
    for t, obj in lines:
        if pred(obj):
            return t, obj
    return None, None


def parse_training(res, batch, epochs):
    """Figures of one training run from the protocol lines."""
    lines = res["lines"]
    out = {"rc": res["rc"], "wall_ms": res["wall_ms"], "maxrss_kb": res["maxrss_kb"],
           "cpu_ms": res.get("cpu_ms")}
    if res.get("error"):
        out["error"] = res["error"]
    t_first, first = find_event(lines, lambda o: o.get("event") == "first_step")
    _, comp = find_event(lines, lambda o: o.get("event") == "compiled")
    _, info = find_event(lines, lambda o: o.get("event") == "info")
    _, params = find_event(lines, lambda o: o.get("event") == "params")
    _, infer = find_event(lines, lambda o: o.get("event") == "infer")
    _, infer1 = find_event(lines, lambda o: o.get("event") == "infer1")
    ep = {o["epoch"]: (t, o) for t, o in lines if isinstance(o.get("epoch"), int)}
    if first:
        out["first_step_ms"] = t_first
        out["first_step_self_ms"] = first.get("since_start_ms")
        out["first_call_ms"] = first.get("first_call_ms")
    if comp:
        out["compile_ms"] = comp.get("compile_ms")
        out["compiled_since_start_ms"] = comp.get("since_start_ms")
    if info:
        out["info"] = info
    _, trained = find_event(lines, lambda o: o.get("event") == "trained")
    if params:
        out["trainable_params"] = params.get("trainable")
    if infer1:
        out["infer1"] = infer1
    if infer:
        out["infer"] = infer
        # inference ran in the same process: take the peak before it
        if trained and trained.get("peak_rss_kb"):
            out["process_maxrss_kb"] = out["maxrss_kb"]
            out["maxrss_kb"] = trained["peak_rss_kb"]
    last = ep.get(epochs)
    if last:
        ms = last[1].get("ms_per_step")
        if ms:
            out["ms_per_step"] = ms
            out["samples_per_s"] = batch * 1000.0 / ms
        out["loss"] = last[1].get("loss")
        out["accuracy"] = last[1].get("accuracy")
    if 1 in ep:
        out["epoch1_end_ms"] = ep[1][0]
        out["epoch1_seconds"] = ep[1][1].get("seconds")
    if "ms_per_step" not in out and "error" not in out:
        out["error"] = "no epoch %d line in the output" % epochs
    return out


# ---------------------------------------------------------------- runners

class Bench:
    def __init__(self, args):
        self.a = args
        self.tmp = tempfile.mkdtemp(prefix="modelc-bench-")
        self.runs = []
        self.broken = {}
        self.weights = {}
        self.param_check = {}
        self.torch_wait = args.torch_omp_wait
        self.torch_wait_calibration = None
        self.on_progress = lambda: None
        self.modelc_version = None
        self.epoch_skipped = []

    def limit(self, case):
        return (QUICK_LIMITS if self.a.quick else LIMITS)[case]

    def record(self, kind, fw, case, env, rep, out):
        out.update({"kind": kind, "framework": fw, "case": case, "env": env, "rep": rep})
        self.runs.append(out)
        key = (kind, fw, case, env)
        if out.get("error"):
            self.broken[key] = out["error"]
            log("%s %s %s [%s] rep %d: %s" % (kind, fw, case, env, rep, out["error"]))
        else:
            brief = ""
            if kind == "peak":
                brief = "peak FMA %s GFLOP/s (threads: GFLOP/s)" % out.get("gflops")
            elif "ms_per_step" in out:
                brief = "%.3f ms/step" % out["ms_per_step"]
            elif "samples_per_s" in out:
                brief = "%.0f samples/s" % out["samples_per_s"]
            elif "epoch1_end_ms" in out:
                brief = "1 epoch %.2f s" % (out["epoch1_end_ms"] / 1000)
            log("%s %s %s [%s] rep %d: %s" % (kind, fw, case, env, rep, brief))

    def skip(self, kind, fw, case, env):
        return (kind, fw, case, env) in self.broken

    # -- training (steady state), one process
    def data_args(self, arch):
        """The S0 model's generated images (written once per run: the same
        bytes for modelc and every peer); Fashion-MNIST needs nothing."""
        if common.ARCHS[arch]["kind"] != "s0":
            return []
        path = os.path.join(self.tmp, "s0_images.npy")
        if not os.path.exists(path):
            n = max(max(LIMITS["s0_b32"], QUICK_LIMITS["s0_b32"]), INFER_LIMITS["s0"],
                    INFER1_LIMITS["s0"])
            common.write_s0_images(path, n)
        return ["--data", path]

    def train_cmd(self, fw, case, epochs, limit, infer):
        _, arch, batch = case_spec(case)
        t = self.a.threads
        if fw == "modelc":
            return [self.a.modelc, "train", os.path.join(ROOT, common.ARCHS[arch]["mdl"]),
                    "--epochs", str(epochs), "--batch", str(batch), "--limit", str(limit),
                    "--no-test", "--no-progress", "--json", "--threads", str(t),
                    "--no-cache", "--precision", self.a.modelc_precision] + self.data_args(arch)  # cold compiles
        py, script, opts = PEERS[fw]
        cmd = [py, os.path.join(HERE, script), "--model", arch, "--batch", str(batch),
               "--limit", str(limit), "--epochs", str(epochs), "--threads", str(t)]
        cmd += opts + self.data_args(arch)
        if epochs > 1:
            cmd += ["--warmup-steps", str(PEER_WARMUP_STEPS)]
        if infer:
            cmd += ["--infer", str(INFER_LIMITS[arch]),
                    "--infer-batch", str(common.INFER_BATCHES[arch]),
                    "--infer1", str(INFER1_LIMITS[arch])]
        if fw in PINNED and t < (os.cpu_count() or t):
            cmd = ["taskset", "-c", "0-%d" % (t - 1)] + cmd
        return cmd

    def fw_env(self, fw, env):
        t = self.a.threads
        extra = {}
        if fw in ("torch", "torch2", "torch2c"):
            extra["LD_PRELOAD"] = JEMALLOC
            if self.torch_wait == "passive":
                extra["OMP_WAIT_POLICY"] = "PASSIVE"
        if fw == "jax":
            extra.update(jax_thread_env(t))
        if fw in ("keras", "keras_xla"):
            extra["KERAS_BACKEND"] = "tensorflow"
        return child_env(env, t, extra)

    def train(self, fw, case, env, rep):
        if self.skip("train", fw, case, env):
            return
        _, _, batch = case_spec(case)
        infer = case in INFER_CASES and fw != "modelc"
        cmd = self.train_cmd(fw, case, 2, self.limit(case), infer)
        res = run_child(cmd, self.fw_env(fw, env), cwd=self.tmp)
        out = parse_training(res, batch, 2)
        if fw in COMPILING_PEERS and "first_call_ms" in out and "ms_per_step" in out:
            # JAX, torch.compile and Keras compile inside the first call of
            # the train step (Keras: tracing into a tf.function, with
            # jit_compile also XLA).
            out["compile_ms"] = out["first_call_ms"] - out["ms_per_step"]
        if out.get("trainable_params") is not None:
            want = common.expected_params(case_spec(case)[1])
            if out["trainable_params"] != want:
                out["error"] = "trainable parameters %s != %d" % (out["trainable_params"], want)
        out["cmd"] = cmd
        self.record("train", fw, case, env, rep, out)

    # -- one full epoch including start-up and compile
    def epoch1(self, fw, case, env, rep):
        if self.skip("epoch1", fw, case, env) or self.skip("train", fw, case, env):
            return
        _, _, batch = case_spec(case)
        cmd = self.train_cmd(fw, case, 1, 60000, False)
        res = run_child(cmd, self.fw_env(fw, env), cwd=self.tmp)
        out = parse_training(res, batch, 1)
        out["cmd"] = cmd
        self.record("epoch1", fw, case, env, rep, out)

    # -- modelc inference (peers time it inside their training run)
    def modelc_weights(self, arch):
        if arch in self.weights:
            return self.weights[arch]
        w = os.path.join(self.tmp, arch + ".safetensors")
        res = run_child([self.a.modelc, "init", os.path.join(ROOT, common.ARCHS[arch]["mdl"]),
                         "-o", w], child_env("haswell", self.a.threads), cwd=self.tmp)
        self.weights[arch] = None if res.get("error") or not os.path.exists(w) else w
        if self.weights[arch] is None:
            log("modelc init %s: %s" % (arch, res.get("error") or "no weights written"))
        return self.weights[arch]

    def modelc_eval(self, case, env, rep, kind="infer"):
        """modelc eval at the inference batch ("infer") or at batch 1
        ("infer1", over INFER1_LIMITS examples)."""
        if self.skip(kind, "modelc", case, env):
            return
        arch = case_spec(case)[1]
        w = self.modelc_weights(arch)
        if w is None:
            self.record(kind, "modelc", case, env, rep, {"error": "modelc init failed"})
            return
        batch, limit = ((1, INFER1_LIMITS[arch]) if kind == "infer1"
                        else (common.INFER_BATCHES[arch], INFER_LIMITS[arch]))
        cmd = [self.a.modelc, "eval", os.path.join(ROOT, common.ARCHS[arch]["mdl"]),
               "--weights", w, "--batch", str(batch),
               "--limit", str(limit), "--json",
               "--warmup", "3" if kind == "infer1" else "1",  # as the peers' warm-up calls
               "--threads", str(self.a.threads), "--precision", self.a.modelc_precision] + self.data_args(arch)
        res = run_child(cmd, child_env(env, self.a.threads), cwd=self.tmp)
        out = {"rc": res["rc"], "wall_ms": res["wall_ms"], "maxrss_kb": res["maxrss_kb"],
               "cmd": cmd}
        _, ev = find_event(res["lines"], lambda o: "samples_per_s" in o)
        if ev:
            out.update({k: ev.get(k) for k in ("examples", "seconds", "samples_per_s",
                                               "compile_ms", "warmup_ms", "loss", "accuracy")})
        if res.get("error"):
            out["error"] = res["error"]
        elif not ev:
            out["error"] = "no samples_per_s line in the output"
        self.record(kind, "modelc", case, env, rep, out)

    # -- GEMM floor
    def floor(self, env, rep):
        if self.skip("floor", "openblas", "all", env):
            return
        lines = []
        for case, arch, batch in common_cases(self.a.cases):
            for s in common.gemm_shapes(arch, batch):
                lines.append("%s/%s %d %d %d %d %d" % ((case,) + s))
        cmd = [GEMM_FLOOR, "-t", str(self.a.threads), "-b", "3"]
        env_vars = child_env(env, self.a.threads)
        core = modelc_blas_core(self.a.modelc, env_vars)
        if core and "OPENBLAS_CORETYPE" not in env_vars:
            env_vars["OPENBLAS_CORETYPE"] = core  # the kernels modelc's GEMMs run on
        env_vars["BENCH_T0"] = repr(time.time())
        try:
            p = subprocess.run(cmd, input="\n".join(lines) + "\n", capture_output=True,
                               text=True, env=env_vars, timeout=CHILD_TIMEOUT_S)
            err = None if p.returncode == 0 else "exit code %d: %s" % (p.returncode,
                                                                      p.stderr.strip()[-300:])
            out_lines = p.stdout.splitlines()
        except (OSError, subprocess.TimeoutExpired) as ex:
            err, out_lines = str(ex), []
        per_case = {}
        for ln in out_lines:
            o = json.loads(ln)
            if "label" not in o:
                continue
            case, label = o["label"].split("/", 1)
            o["label"] = label
            per_case.setdefault(case, {"total_ms": 0.0, "shapes": []})
            per_case[case]["shapes"].append(o)
            per_case[case]["total_ms"] += o["ms"]
        out = {"cases": per_case}
        if err:
            out["error"] = err
        self.record("floor", "openblas", "all", env, rep, out)

    # -- the machine's peak FMA rate (bench/peak_fma.c), at 1 and --threads
    def peak(self, rep):
        if self.skip("peak", "cpu", "all", "-"):
            return
        threads = sorted({1, self.a.threads})
        cmd = [PEAK_FMA, "-t", ",".join(map(str, threads)), "-r", "5", "-m", "200"]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
            err = None if p.returncode == 0 else "exit code %d: %s" % (p.returncode,
                                                                      p.stderr.strip()[-300:])
            res = [json.loads(ln) for ln in p.stdout.splitlines() if ln.startswith("{")]
        except (OSError, ValueError, subprocess.TimeoutExpired) as ex:
            err, res = str(ex), []
        out = {"cmd": cmd, "gflops": {str(o["threads"]): o["gflops"] for o in res},
               "isa": res[0]["isa"] if res else None}
        if err:
            out["error"] = err
        elif str(self.a.threads) not in out["gflops"]:
            out["error"] = "no figure for %d threads" % self.a.threads
        self.record("peak", "cpu", "all", "-", rep, out)

    # -- modelc's own parameter count must equal the peers'
    def check_modelc_params(self):
        self.param_check = {}
        for arch in sorted({arch for _, arch, _ in common_cases(self.a.cases)}):
            mdl = os.path.join(ROOT, common.ARCHS[arch]["mdl"])
            try:
                p = subprocess.run([self.a.modelc, "params", mdl], capture_output=True,
                                   text=True, timeout=60)
                got = next((int(ln.split(":")[1]) for ln in p.stdout.splitlines()
                            if ln.startswith("Trainable params:")), None)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                got = None
            want = common.expected_params(arch)
            self.param_check[arch] = {"modelc": got, "expected": want}
            if got is not None and got != want:
                for env in self.a.envs:
                    for case, ar, _ in common.CASES:
                        if ar == arch:
                            self.broken[("train", "modelc", case, env)] = (
                                "modelc params: %d trainable, the peers have %d" % (got, want))

    # -- PyTorch's OpenMP wait policy: libgomp's default spins at the end
    # of every parallel region, which on a loaded 2-core machine can cost
    # an order of magnitude; passive waiting costs a little on an idle one.
    # 'auto' times a short MLP b128 run both ways and keeps the faster.
    def calibrate_torch(self):
        """Calibrated with the first PyTorch selected (1.13 by default); the
        choice applies to PyTorch 2 too (its wheels bundle libgomp)."""
        if self.torch_wait != "auto":
            return
        fw = next(f for f in ("torch", "torch2", "torch2c") if f in self.a.frameworks)
        env = self.a.envs[0] if fw == "torch" else self.a.peer_envs[0]
        times = {"default": [], "passive": []}
        for _ in range(2):
            for pol in ("default", "passive"):
                self.torch_wait = pol
                cmd = self.train_cmd(fw, "mlp_b128", 2, 3200, False)
                res = run_child(cmd, self.fw_env(fw, env), cwd=self.tmp)
                out = parse_training(res, 128, 2)
                if out.get("ms_per_step"):
                    times[pol].append(out["ms_per_step"])
        med = {k: median(v) for k, v in times.items()}
        ok = {k: v for k, v in med.items() if v is not None}
        self.torch_wait = min(ok, key=ok.get) if ok else "default"
        self.torch_wait_calibration = {"ms_per_step": times, "chosen": self.torch_wait}
        log("PyTorch OpenMP wait policy: %s (MLP b128 ms/step: default %s, passive %s)" % (
            self.torch_wait, fmt(med["default"], 3), fmt(med["passive"], 3)))

    # -- the whole schedule
    def run(self):
        a = self.a
        cases = [c for c, _, _ in common_cases(a.cases)]
        if "modelc" in a.frameworks:
            self.modelc_version = tool_version([a.modelc, "--version"])
            self.check_modelc_params()
        if {"torch", "torch2", "torch2c"} & set(a.frameworks):
            self.calibrate_torch()
        configs = []
        for fw in a.frameworks:
            envs = a.peer_envs if fw in NON_OPENBLAS else a.envs
            for env in envs:
                configs.append((fw, env))
        for rep in range(1, a.reps + 1):
            log("repetition %d of %d" % (rep, a.reps))
            self.peak(rep)
            for env in a.envs:
                self.floor(env, rep)
            for case in cases:
                for fw, env in configs:
                    self.train(fw, case, env, rep)
                    if fw == "modelc" and case in INFER_CASES:
                        self.modelc_eval(case, env, rep)
                        self.modelc_eval(case, env, rep, "infer1")
            self.on_progress()
        epoch_fws = [fw for fw in a.frameworks if fw in ("jax", "modelc")]
        if a.epoch_reps > 0 and epoch_fws:
            est = {(s["case"], s["framework"], s["env"]): s.get("epoch1_est_s")
                   for s in summarize(self)[0]}
            for rep in range(1, a.epoch_reps + 1):
                log("one-epoch runs, repetition %d of %d" % (rep, a.epoch_reps))
                for case in [c for c in EPOCH_CASES if c in cases]:
                    # one environment each: the comparison is with JAX,
                    # which does not use OpenBLAS
                    todo = [(fw, a.peer_envs[0] if fw == "jax" else a.envs[0]) for fw in epoch_fws]
                    # a busy machine can make an epoch last many minutes:
                    # then both sides keep their estimates
                    long = [(fw, est.get((case, fw, env))) for fw, env in todo
                            if (est.get((case, fw, env)) or 0) > a.epoch_max_s]
                    if long:
                        if rep == 1:
                            msg = "%s: estimated %s > --epoch-max-s %g; estimates used" % (
                                case, ", ".join("%s %.1f s" % x for x in long), a.epoch_max_s)
                            self.epoch_skipped.append(msg)
                            log("one-epoch run skipped, " + msg)
                        continue
                    for fw, env in todo:
                        self.epoch1(fw, case, env, rep)
                self.on_progress()
        shutil.rmtree(self.tmp, ignore_errors=True)


def jax_thread_env(threads):
    """XLA:CPU sizes its thread pools by the CPUs it may run on; with fewer
    threads than CPUs the harness also pins JAX with taskset, and one
    thread turns Eigen's multi-threading off."""
    n = os.cpu_count() or threads
    if threads >= n:
        return {}
    flags = "--xla_cpu_multi_thread_eigen=false" if threads == 1 else ""
    return {"XLA_FLAGS": flags} if flags else {}


def case_spec(case):
    for c, arch, batch in common.CASES:
        if c == case:
            return c, arch, batch
    raise KeyError(case)


def common_cases(selected):
    return [c for c in common.CASES if c[0] in selected]


# ---------------------------------------------------------------- summary

def median(xs):
    xs = [x for x in xs if isinstance(x, (int, float))]
    return statistics.median(xs) if xs else None


def summarize(b):
    """Medians over the repetitions, per (case, framework, env)."""
    rows = {}
    for r in b.runs:
        if r["kind"] not in ("train", "infer", "infer1", "epoch1") or r.get("error"):
            continue
        key = (r["case"], r["framework"], r["env"])
        rows.setdefault(key, {"train": [], "infer": [], "infer1": [],
                              "epoch1": []})[r["kind"]].append(r)
    peak = peak_gflops(b)
    floors = {}
    for r in b.runs:
        if r["kind"] == "floor" and not r.get("error"):
            for case, v in r["cases"].items():
                floors.setdefault((case, r["env"]), []).append(v["total_ms"])
    summary = []
    for (case, fw, env), g in rows.items():
        tr, inf, ep = g["train"], g["infer"], g["epoch1"]
        s = {"case": case, "framework": fw, "env": env, "reps": len(tr)}
        s["ms_per_step"] = median(r.get("ms_per_step") for r in tr)
        s["samples_per_s"] = median(r.get("samples_per_s") for r in tr)
        s["first_step_ms"] = median(r.get("first_step_ms") for r in tr)
        s["compile_ms"] = median(r.get("compile_ms") for r in tr)
        s["peak_rss_mb"] = median((r.get("maxrss_kb") or 0) / 1024.0 or None for r in tr)
        infer_runs = inf or [r for r in tr if r.get("infer")]
        s["infer_samples_per_s"] = median(
            (r.get("samples_per_s") if r["kind"] == "infer" else r["infer"].get("samples_per_s"))
            for r in infer_runs)
        infer1_runs = g["infer1"] or [r for r in tr if r.get("infer1")]
        s["infer1_samples_per_s"] = median(
            (r.get("samples_per_s") if r["kind"] == "infer1" else r["infer1"].get("samples_per_s"))
            for r in infer1_runs)
        s["infer1_ms"] = 1000.0 / s["infer1_samples_per_s"] if s["infer1_samples_per_s"] else None
        arch, batch = case_spec(case)[1], case_spec(case)[2]
        s["gflop_per_step"] = common.step_gflop(arch, batch)
        s["gflops"] = (s["gflop_per_step"] / s["ms_per_step"] * 1000.0
                       if s["ms_per_step"] else None)
        s["pct_peak"] = 100.0 * s["gflops"] / peak if s["gflops"] and peak else None
        if s["infer_samples_per_s"]:
            s["infer_gflops"] = common.forward_gflop(arch, 1) * s["infer_samples_per_s"]
        s["epoch1_s"] = median((r.get("epoch1_end_ms") or 0) / 1000.0 or None for r in ep)
        s["epoch1_reps"] = len(ep)
        # start -> first step, then the other steps of a 60000-example epoch
        # at the steady rate: what a 1-epoch run costs, from the medians
        batch = case_spec(case)[2]
        # (Fashion-MNIST cases only: the S0 case's data set is generated)
        if s["first_step_ms"] and s["ms_per_step"] and case_spec(case)[1] != "s0":
            s["epoch1_est_s"] = (s["first_step_ms"] +
                                 (60000 // batch - 1) * s["ms_per_step"]) / 1000.0
        fl = median(floors.get((case, env), []))
        s["gemm_floor_ms"] = fl
        if fw == "modelc" and fl and s["ms_per_step"]:
            s["floor_ratio"] = s["ms_per_step"] / fl
        for r in tr:
            if r.get("info"):
                s["info"] = r["info"]
                break
        summary.append(s)
    # PyTorch's best environment per case
    best = {}
    for s in summary:
        if s["framework"] == "torch" and s["samples_per_s"]:
            cur = best.get(s["case"])
            if cur is None or s["samples_per_s"] > cur["samples_per_s"]:
                best[s["case"]] = s
    for s in summary:
        tb = best.get(s["case"])
        if tb and s["samples_per_s"]:
            s["x_torch_best"] = s["samples_per_s"] / tb["samples_per_s"]
    # the best peer per case (any framework but modelc, any environment),
    # for training, inference at the inference batch, and at batch 1
    for key, col in (("samples_per_s", "x_best_peer"), ("infer_samples_per_s", "infer_x_best_peer"),
                     ("infer1_samples_per_s", "infer1_x_best_peer")):
        bp = {}
        for s in summary:
            if s["framework"] != "modelc" and s.get(key):
                if s["case"] not in bp or s[key] > bp[s["case"]][key]:
                    bp[s["case"]] = s
        for s in summary:
            p = bp.get(s["case"])
            if p and s.get(key):
                s[col] = s[key] / p[key]
                s[col.replace("x_", "") + "_name"] = "%s [%s]" % (p["framework"], p["env"])
    order = {c: i for i, (c, _, _) in enumerate(common.CASES)}
    fworder = {fw: i for i, fw in enumerate(FRAMEWORKS)}
    summary.sort(key=lambda s: (order.get(s["case"], 99), fworder.get(s["framework"], 9), s["env"]))
    return summary, {c: {"env": s["env"], "samples_per_s": s["samples_per_s"]}
                     for c, s in best.items()}


def peak_gflops(b, threads=None):
    """The machine's peak FMA GFLOP/s at `threads` (default --threads):
    the highest of the repetitions' peak_fma figures (each already the
    best of its trials): a ceiling, so the least disturbed measurement."""
    t = str(threads or b.a.threads)
    vals = [r["gflops"].get(t) for r in b.runs if r["kind"] == "peak" and not r.get("error")]
    vals = [v for v in vals if v]
    return max(vals) if vals else None


def floor_medians(b):
    """{case: {env: median total ms}} of the GEMM-floor runs."""
    acc = {}
    for r in b.runs:
        if r["kind"] == "floor" and not r.get("error"):
            for case, v in r["cases"].items():
                acc.setdefault(case, {}).setdefault(r["env"], []).append(v["total_ms"])
    return {c: {e: median(v) for e, v in d.items()} for c, d in acc.items()}


def targets(summary):
    """The issue's targets for modelc, each met or not, per OpenBLAS
    environment: modelc is compared with PyTorch in the same environment
    (like with like), with JAX (whose XLA does not use OpenBLAS) as run,
    and with the GEMM floor measured in the same environment."""
    by = {(s["case"], s["framework"], s["env"]): s for s in summary}
    cases = [c for c, _, _ in common.CASES if any(s["case"] == c for s in summary)]
    envs = sorted({s["env"] for s in summary if s["framework"] == "modelc"}) or ["haswell"]
    out = []

    def ratio(a, b):
        return a / b if a and b else None

    def jax(c):
        return next((s for s in summary if s["case"] == c and s["framework"] == "jax"), {})

    for env in envs:
        def m(c):
            return by.get((c, "modelc", env), {})

        def t(c):
            return by.get((c, "torch", env), {})

        def add(name, case, value, goal, met, note=""):
            if case in cases:
                out.append({"target": name, "case": case, "env": env, "value": value,
                            "goal": goal, "met": None if value is None else met(value),
                            "note": note})

        add("samples/s vs PyTorch", "mlp_b128",
            ratio(m("mlp_b128").get("samples_per_s"), t("mlp_b128").get("samples_per_s")),
            ">= 2.5x", lambda v: v >= 2.5)
        add("step time vs GEMM floor", "mlp_b128", m("mlp_b128").get("floor_ratio"),
            "<= 1.5x", lambda v: v <= 1.5)
        for c in ("cnn_b128", "cnn_bn_b128"):
            add("samples/s vs PyTorch", c,
                ratio(m(c).get("samples_per_s"), t(c).get("samples_per_s")),
                ">= 2x", lambda v: v >= 2)
        for c in EPOCH_CASES:
            mv, jv = m(c).get("epoch1_s"), jax(c).get("epoch1_s")
            how = "measured"
            if not (mv and jv):
                mv, jv = m(c).get("epoch1_est_s"), jax(c).get("epoch1_est_s")
                how = "estimated"
            add("1-epoch wall incl. compile vs JAX", c, ratio(mv, jv), "< 1x",
                lambda v: v < 1, "%s: JAX %s s" % (how, fmt(jv, 2)))
        for c in cases:
            limit = 100 if c.startswith("mlp") else 250
            add("compile ms", c, m(c).get("compile_ms"), "<= %d" % limit,
                lambda v, limit=limit: v <= limit)
        for c in cases:
            add("peak RSS vs PyTorch", c,
                ratio(m(c).get("peak_rss_mb"), t(c).get("peak_rss_mb")),
                "<= 0.33x", lambda v: v <= 1 / 3)
        for c in cases:
            add("start -> first step ms", c, m(c).get("first_step_ms"), "<= 300",
                lambda v: v <= 300)
        for c in ("mlp_b128", "cnn_b128", "cnn_bn_b128"):
            add("inference samples/s vs PyTorch", c,
                ratio(m(c).get("infer_samples_per_s"), t(c).get("infer_samples_per_s")),
                ">= 2x", lambda v: v >= 2)
        # issue 16: against the best peer (any framework, any environment)
        for c in ("cnn_b128", "cnn_bn_b128", "s0_b32"):
            add("samples/s vs best peer", c, m(c).get("x_best_peer"), ">= 1.5x",
                lambda v: v >= 1.5, m(c).get("best_peer_name", ""))
        for c in ("cnn_b128", "cnn_bn_b128"):
            add("% of peak FMA", c, m(c).get("pct_peak"), ">= 60", lambda v: v >= 60)
        t2 = next((s for s in summary if s["case"] == "mlp_b128" and s["framework"] == "torch2"), {})
        add("samples/s vs PyTorch 2 fused Adam", "mlp_b128",
            ratio(m("mlp_b128").get("samples_per_s"), t2.get("samples_per_s")),
            ">= 1.5x", lambda v: v >= 1.5)
        add("step time vs GEMM floor (issue 16)", "mlp_b128", m("mlp_b128").get("floor_ratio"),
            "<= 1.2x", lambda v: v <= 1.2)
        for c in sorted(INFER_CASES, key=lambda c: cases.index(c) if c in cases else 99):
            add("inference (batch %d) vs best peer" % common.INFER_BATCHES[case_spec(c)[1]], c,
                m(c).get("infer_x_best_peer"), ">= 1.5x", lambda v: v >= 1.5,
                m(c).get("infer_best_peer_name", ""))
            add("inference batch 1 vs best peer", c, m(c).get("infer1_x_best_peer"), ">= 1.5x",
                lambda v: v >= 1.5, m(c).get("infer1_best_peer_name", ""))
    return out


# ---------------------------------------------------------------- printing

def fmt(v, nd=1):
    if v is None:
        return "-"
    if isinstance(v, float) and abs(v) >= 10000:
        return "%.0f" % v
    return ("%." + str(nd) + "f") % v


def table(headers, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(headers)]
    lines = ["  ".join(str(h).rjust(w) if i > 2 else str(h).ljust(w)
                       for i, (h, w) in enumerate(zip(headers, widths)))]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append("  ".join(str(c).rjust(w) if i > 2 else str(c).ljust(w)
                               for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(lines)


def render(result):
    out = []
    meta = result["meta"]
    out.append("modelc benchmark  %s  threads=%d  reps=%d%s%s" % (
        meta["date"], meta["threads"], meta["reps"], "  (quick)" if meta["quick"] else "",
        "" if meta.get("complete", True) else "  PARTIAL (run still going or interrupted)"))
    out.append("cpu: %s, %d cores (%s); load average before %s, after %s" % (
        meta["cpu"], meta["nproc"], " ".join(meta["cpu_flags"]) or "-",
        meta["loadavg_before"], meta["loadavg_after"]))
    pb, pa = meta.get("cpu_pressure_before"), meta.get("cpu_pressure_after")
    if pb and pa:
        out.append("cpu pressure (share of time tasks waited for a core, 60 s avg): "
                   "before %.0f%%, after %.0f%%%s" % (
                       pb["avg60"], pa["avg60"],
                       "  -- the machine was busy: figures are noisy"
                       if max(pb["avg60"], pa["avg60"]) > 25 else ""))
    out.append("lscpu model name: %s; OPENBLAS_CORETYPE in the harness's environment: %s" % (
        meta.get("lscpu_model_name") or "-", meta.get("openblas_coretype_env") or "(unset)"))
    pk = result.get("peak_fma") or {}
    if pk.get("gflops"):
        out.append("peak fp32 FMA (bench/peak_fma.c, %s, best of %d measurements): %s" % (
            pk.get("isa"), pk.get("runs", 0), ", ".join(
                "%s thread%s %.0f GFLOP/s" % (t, "" if t == "1" else "s", v)
                for t, v in sorted(pk["gflops"].items(), key=lambda kv: int(kv[0])))))
    out.append("modelc: %s (%s)%s" % (meta["modelc"] or "not measured", meta["modelc_version"] or "-",
                                      ", --precision bf16" if meta.get("modelc_precision") == "bf16" else ""))
    for s in result["summary"]:
        info = s.get("info") or {}
        if s["framework"] == "torch" and info:
            out.append("PyTorch %s: %d threads, jemalloc, OMP_WAIT_POLICY %s, convs %s, BLAS %s" % (
                info.get("version"), info.get("threads", 0), meta.get("torch_omp_wait"),
                info.get("onednn") or "native", ", ".join(
                    os.path.basename(os.path.dirname(p)) + "/" + os.path.basename(p)
                    for p in info.get("blas", [])
                    if "blas" in os.path.basename(p)) or "?"))
            break
    seen = set()
    for s in result["summary"]:
        info = s.get("info") or {}
        fw = s["framework"]
        if fw in seen or not info:
            continue
        if fw in ("torch2", "torch2c"):
            seen.add(fw)
            out.append("%s: PyTorch %s (PyPI), %d threads, jemalloc, OMP_WAIT_POLICY %s, "
                       "Adam(fused=True)%s, convs %s, MKL %s" % (
                           fw, info.get("version"), info.get("threads", 0),
                           meta.get("torch_omp_wait"),
                           ", torch.compile (Inductor)" if info.get("compile") else ", eager",
                           info.get("onednn") or "native", "yes" if info.get("mkl") else "no"))
        if fw in ("keras", "keras_xla"):
            seen.add(fw)
            out.append("%s: Keras %s on TensorFlow %s, train_on_batch, jit_compile=%s, "
                       "intra/inter-op threads %s/%s" % (
                           fw, info.get("version"), info.get("tensorflow"),
                           info.get("jit_compile"), info.get("intra_op_threads"),
                           info.get("inter_op_threads")))
    for s in result["summary"]:
        info = s.get("info") or {}
        if s["framework"] == "jax" and info:
            out.append("JAX %s (XLA:CPU), XLA_FLAGS=%r" % (info.get("version"),
                                                          info.get("xla_flags", "")))
            break
    out.append("")
    rows = []
    for s in result["summary"]:
        rows.append([s["case"], s["framework"], s["env"], fmt(s["samples_per_s"], 0),
                     fmt(s["ms_per_step"], 3), fmt(s.get("gflop_per_step"), 3),
                     fmt(s.get("gflops"), 1), fmt(s.get("pct_peak"), 1),
                     fmt(s.get("x_best_peer"), 2), fmt(s.get("x_torch_best"), 2),
                     fmt(s["infer_samples_per_s"], 0), fmt(s.get("infer1_ms"), 3),
                     fmt(s["first_step_ms"], 0),
                     fmt(s["compile_ms"], 0), fmt(s["peak_rss_mb"], 0),
                     fmt(s.get("gemm_floor_ms"), 3) if s["framework"] == "modelc" else "",
                     fmt(s.get("floor_ratio"), 2) if s["framework"] == "modelc" else "",
                     fmt(s.get("epoch1_s"), 2) if s.get("epoch1_s")
                     else ("~" + fmt(s.get("epoch1_est_s"), 1) if s.get("epoch1_est_s") else "-")])
    out.append(table(["case", "framework", "env", "samples/s", "ms/step", "GFLOP/step",
                      "GFLOP/s", "% peak", "x best peer", "x torch-best",
                      "infer/s", "b1 ms", "start->1st ms", "compile ms", "RSS MB", "floor ms",
                      "x floor", "1-epoch s"], rows))
    out.append("")
    fl = result.get("gemm_floor") or {}
    if fl:
        envs = sorted({e for v in fl.values() for e in v})
        frows = []
        for c, _, _ in common.CASES:
            if c in fl:
                gf = sum(2.0 * m * n * k for _, m, n, k, _, _ in
                         common.gemm_shapes(case_spec(c)[1], case_spec(c)[2])) / 1e9
                frows.append([c, "%.3f" % gf, ""] + [
                    "%s (%s GFLOP/s)" % (fmt(fl[c].get(e), 3),
                                         fmt(gf / fl[c][e] * 1000 if fl[c].get(e) else None, 0))
                    for e in envs])
        out.append("GEMM floor per training step (OpenBLAS sgemm, median ms):")
        out.append(table(["case", "GFLOP", ""] + envs, frows))
        out.append("")
    best = result["torch_best"]
    if best:
        out.append("PyTorch best environment per case: " + ", ".join(
            "%s=%s" % (c, v["env"]) for c, v in best.items()))
    out.append("")
    envs = []
    for t in result["targets"]:
        if t["env"] not in envs:
            envs.append(t["env"])
    keyed, order = {}, []
    for t in result["targets"]:
        k = (t["target"], t["case"], t["goal"])
        if k not in keyed:
            keyed[k] = {}
            order.append(k)
        keyed[k][t["env"]] = t
    trows = []
    for k in order:
        row = [k[0], k[1], k[2]]
        notes = []
        for env in envs:
            t = keyed[k].get(env)
            if t is None:
                row += ["", ""]
                continue
            row += [fmt(t["value"], 2),
                    "n/a" if t["met"] is None else ("met" if t["met"] else "NOT met")]
            if t["note"] and t["note"] not in notes:
                notes.append(t["note"])
        trows.append(row + ["; ".join(notes)])
    if trows:
        hdr = ["target (modelc)", "case", "goal"]
        for env in envs:
            hdr += [env, "status"]
        out.append(table(hdr + ["note"], trows))
    for msg in meta.get("epoch_runs_skipped") or []:
        out.append("one-epoch run skipped, " + msg)
    errors = result["errors"]
    if errors:
        out.append("")
        out.append("failed configurations (skipped after their first failure):")
        for e in errors:
            out.append("  %s" % e)
    return "\n".join(out)


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                if ln.startswith("model name"):
                    return ln.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def lscpu_model_name():
    """lscpu's "Model name" (may differ from /proc/cpuinfo's under a VM)."""
    try:
        p = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, LC_ALL="C"))
        for ln in p.stdout.splitlines():
            if ln.startswith("Model name:"):
                return ln.split(":", 1)[1].strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return None


def peak_summary(b):
    runs = [r for r in b.runs if r["kind"] == "peak" and not r.get("error")]
    threads = sorted({t for r in runs for t in r["gflops"]}, key=int)
    return {"isa": runs[0]["isa"] if runs else None, "runs": len(runs),
            "gflops": {t: peak_gflops(b, int(t)) for t in threads},
            "all": {t: [r["gflops"].get(t) for r in runs] for t in threads}}


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                if ln.startswith("flags"):
                    fl = ln.split(":", 1)[1].split()
                    return [x for x in ("avx2", "fma", "avx512f", "avx512bw", "avx512vl",
                                        "avx512_bf16", "avx_vnni") if x in fl]
    except OSError:
        pass
    return []


def cpu_pressure():
    """Share of time some task waited for a CPU over the last 10 and 60 s
    (/proc/pressure/cpu): how much others competed for the cores."""
    try:
        with open("/proc/pressure/cpu") as f:
            for ln in f:
                if ln.startswith("some"):
                    kv = dict(x.split("=") for x in ln.split()[1:])
                    return {"avg10": float(kv["avg10"]), "avg60": float(kv["avg60"])}
    except (OSError, ValueError, KeyError):
        pass
    return None


def tool_version(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        return (p.stdout.strip() or p.stderr.strip()).splitlines()[-1] if p.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return None


def main(argv=None):
    p = argparse.ArgumentParser(
        description="modelc vs PyTorch 1.13 and 2, Keras/TensorFlow and JAX on the "
                    "Fashion-MNIST models and the S0 seed model")
    p.add_argument("--reps", type=int, default=None, help="repetitions (default 5, quick 2)")
    p.add_argument("--epoch-reps", type=int, default=None,
                   help="repetitions of the full-epoch runs (default 1, quick 0: 0 estimates "
                        "the epoch from the steady-state runs instead)")
    p.add_argument("--epoch-max-s", type=float, default=180,
                   help="skip a case's full-epoch runs when a side's estimate exceeds this")
    p.add_argument("--quick", action="store_true", help="fewer, shorter runs")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--modelc", default=os.path.join(ROOT, "build", "modelc"))
    p.add_argument("--modelc-precision", default="f32", choices=("f32", "bf16"),
                   help="modelc's --precision for its training and inference runs (bf16: "
                        "GEMMs on bf16 operands; the peers stay f32)")
    p.add_argument("--frameworks", default=",".join(FRAMEWORKS),
                   help="any of %s (default all)" % ", ".join(FRAMEWORKS))
    p.add_argument("--cases", default=",".join(c for c, _, _ in common.CASES))
    p.add_argument("--envs", default="haswell,unset",
                   help="OpenBLAS environments for modelc and PyTorch")
    p.add_argument("--peer-envs", "--jax-envs", dest="peer_envs", default="haswell",
                   help="environments for the peers that do not use OpenBLAS (%s)" %
                        ", ".join(sorted(NON_OPENBLAS)))
    p.add_argument("--torch-omp-wait", default="auto", choices=("auto", "default", "passive"),
                   help="PyTorch's OMP_WAIT_POLICY: libgomp's default, PASSIVE, or the "
                        "faster of the two on a short run (auto)")
    p.add_argument("--out", default=os.path.join(HERE, "results", "latest.json"))
    a = p.parse_args(argv)
    a.reps = a.reps if a.reps is not None else (2 if a.quick else 5)
    a.epoch_reps = a.epoch_reps if a.epoch_reps is not None else (0 if a.quick else 1)
    a.frameworks = [x for x in a.frameworks.split(",") if x]
    a.cases = [x for x in a.cases.split(",") if x]
    a.envs = [x for x in a.envs.split(",") if x]
    a.peer_envs = [x for x in a.peer_envs.split(",") if x]
    for fw in a.frameworks:
        if fw not in FRAMEWORKS:
            p.error("unknown framework %r (one of %s)" % (fw, ", ".join(FRAMEWORKS)))
    for c in a.cases:
        if c not in LIMITS:
            p.error("unknown case %r (one of %s)" % (c, ", ".join(LIMITS)))
    for e in a.envs + a.peer_envs:
        if e not in ENVS:
            p.error("unknown environment %r (one of %s)" % (e, ", ".join(ENVS)))
    if a.reps < 1 or a.threads < 1:
        p.error("--reps and --threads must be positive")
    a.modelc = os.path.abspath(a.modelc)
    if "modelc" in a.frameworks and not os.access(a.modelc, os.X_OK):
        log("no modelc binary at %s: measuring the peers only" % a.modelc)
        a.frameworks.remove("modelc")

    started = time.time()
    before = (os.getloadavg()[0], cpu_pressure())
    b = Bench(a)
    # after every repetition the results so far are written, marked
    # partial, so an interrupted run still leaves its figures
    b.on_progress = lambda: write_results(a, b, started, before, complete=False)
    b.run()
    text = write_results(a, b, started, before, complete=True)
    print(text)
    log("wrote %s (%.0f s)" % (a.out, time.time() - started))
    return 0


def build_result(a, b, started, before, complete):
    summary, best = summarize(b)
    for c, v in best.items():
        v["config"] = "%s, LD_PRELOAD=jemalloc, OMP_WAIT_POLICY=%s, %d threads" % (
            "OPENBLAS_CORETYPE=Haswell" if v["env"] == "haswell" else "OPENBLAS_CORETYPE unset",
            "PASSIVE" if b.torch_wait == "passive" else "(libgomp default)", a.threads)
    errors = ["%s %s %s [%s]: %s" % (k[0], k[1], k[2], k[3], v) for k, v in b.broken.items()]
    return {
        "meta": {
            "complete": complete,
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "duration_s": time.time() - started,
            "threads": a.threads, "reps": a.reps, "epoch_reps": a.epoch_reps,
            "quick": a.quick, "cases": a.cases, "frameworks": a.frameworks,
            "envs": a.envs, "peer_envs": a.peer_envs,
            "limits": {c: b.limit(c) for c in a.cases},
            "cpu": cpu_name(), "cpu_flags": cpu_flags(), "nproc": os.cpu_count(),
            "lscpu_model_name": lscpu_model_name(),
            "openblas_coretype_env": os.environ.get("OPENBLAS_CORETYPE"),
            "openblas_coretype_per_env": {e: ENVS[e].get("OPENBLAS_CORETYPE") for e in a.envs},
            "infer_batches": {c: common.INFER_BATCHES[case_spec(c)[1]] for c in a.cases},
            "infer1_examples": {c: INFER1_LIMITS[case_spec(c)[1]] for c in a.cases
                                if c in INFER_CASES},
            "loadavg_before": "%.2f" % before[0],
            "loadavg_after": "%.2f" % os.getloadavg()[0],
            "modelc": a.modelc if "modelc" in a.frameworks else None,
            "modelc_version": b.modelc_version,
            "modelc_precision": a.modelc_precision,
            "jemalloc": JEMALLOC,
            "torch_omp_wait": (b.torch_wait if {"torch", "torch2", "torch2c"} & set(a.frameworks)
                               else None),
            "torch_omp_wait_calibration": b.torch_wait_calibration,
            "cpu_pressure_before": before[1],
            "cpu_pressure_after": cpu_pressure(),
            "epoch_runs_skipped": b.epoch_skipped,
            "jax_xla_flags": jax_thread_env(a.threads).get("XLA_FLAGS", ""),
        },
        "param_check": b.param_check,
        "summary": summary,
        "torch_best": best,
        "peak_fma": peak_summary(b),
        "gemm_floor": floor_medians(b),
        "targets": targets(summary),
        "errors": errors,
        "runs": b.runs,
    }


def write_results(a, b, started, before, complete):
    """Writes the JSON and the table (atomically); returns the table."""
    result = build_result(a, b, started, before, complete)
    text = render(result)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    for path, write in ((a.out, lambda f: json.dump(result, f, indent=1)),
                        (os.path.splitext(a.out)[0] + ".txt", lambda f: f.write(text + "\n"))):
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            write(f)
        os.replace(tmp, path)
    return text

if __name__ == "__main__":
    sys.exit(main())
