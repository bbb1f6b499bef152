#!/usr/bin/python3
"""A stand-in for the modelc binary in the harness's self-test: speaks the
command-line and JSON-line protocol the harness expects from
`modelc train/eval/init/params/--version`, sleeping instead of
computing.  Its figures mean nothing; it only checks the plumbing
(bench/tests/selftest.sh).  FAKE_MODELC_FAIL=train|eval|init makes that
command fail, to test the harness's error handling.
"""

import argparse
import json
import os
import sys
import time

T0 = time.time()
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import common  # noqa: E402


def arch_of(mdl):
    for name, a in common.ARCHS.items():
        if os.path.basename(a["mdl"]) == os.path.basename(mdl):
            return name
    sys.stderr.write("fake modelc: unknown model file %s\n" % mdl)
    sys.exit(1)


def say(**kv):
    print(json.dumps(kv), flush=True)


def since_ms():
    return (time.time() - T0) * 1000.0


def main():
    argv = sys.argv[1:]
    if argv == ["--version"]:
        print("modelc 0.0.0-fake (harness self-test stand-in)")
        return 0
    cmd = argv[0] if argv else ""
    if os.environ.get("FAKE_MODELC_FAIL") == cmd:
        sys.stderr.write("fake modelc: %s failed on request\n" % cmd)
        return 1
    p = argparse.ArgumentParser(prog="modelc " + cmd)
    p.add_argument("model")
    if cmd == "params":
        a = p.parse_args(argv[1:])
        print("Trainable params:     %d" % common.expected_params(arch_of(a.model)))
        return 0
    if cmd == "init":
        p.add_argument("-o", required=True)
        a = p.parse_args(argv[1:])
        arch_of(a.model)
        with open(a.o, "wb") as f:
            f.write(b"\0" * 8)
        return 0
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", action="store_true")
    p.add_argument("--data")
    p.add_argument("--no-cache", action="store_true")
    if cmd == "train":
        p.add_argument("--epochs", type=int, required=True)
        p.add_argument("--limit", type=int, required=True)
        p.add_argument("--no-test", action="store_true")
        p.add_argument("--no-progress", action="store_true")
        a = p.parse_args(argv[1:])
        arch_of(a.model)
        time.sleep(0.02)
        say(event="compiled", compile_ms=20.0, since_start_ms=since_ms())
        step_s = 0.0001 * a.batch / 32
        time.sleep(step_s)
        say(event="first_step", since_start_ms=since_ms())
        steps = a.limit // a.batch
        for e in range(1, a.epochs + 1):
            time.sleep(step_s * steps)
            say(epoch=e, step=steps * e, seconds=step_s * steps, ms_per_step=step_s * 1000,
                loss=1.0 / e, accuracy=0.5)
        return 0
    if cmd == "eval":
        p.add_argument("--weights", required=True)
        p.add_argument("--limit", type=int, default=10000)
        a = p.parse_args(argv[1:])
        arch_of(a.model)
        time.sleep(0.05)
        if a.batch == 1:
            say(examples=a.limit, seconds=0.05, samples_per_s=2000.0, loss=2.3)
        else:
            say(examples=min(a.limit, 10000), seconds=0.05, samples_per_s=200000.0, loss=2.3,
                accuracy=0.1)
        return 0
    sys.stderr.write("fake modelc: unknown command '%s'\n" % cmd)
    return 2


if __name__ == "__main__":
    sys.exit(main())
