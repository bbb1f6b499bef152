#!/usr/bin/env python3
"""Regenerate the CHECK lines of golden tests in tests/diag from modelc's
actual output (like LLVM's update_test_checks.py): review the diff before
committing, never edit CHECK lines by hand to make a test pass.

usage: tests/diag/update_checks.py [--modelc build/modelc] [FILE.mdl ...]

For each file, the first RUN line's command (the part before
`| %FileCheck`) is run from the repository root; every output line becomes
a CHECK (first) or CHECK-NEXT line anchored at both ends, the file path is
matched by {{.*}}, and a final CHECK-NOT makes sure nothing follows.
"""
import glob
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_line(text):
    for line in text.splitlines():
        m = re.search(r"RUN:\s*(.*)", line)
        if m:
            return m.group(1)
    return None


def command(run, path, modelc):
    cmd = run.split("| %FileCheck")[0].strip()
    if cmd.startswith("not "):
        cmd = cmd[4:]
    return cmd.replace("%modelc", modelc).replace("%s", path)


def pattern(line, path):
    if "{{" in line or "[[" in line:
        sys.exit("cannot express output line as a FileCheck pattern: " + line)
    if line.startswith(path):
        return "{{^.*}}" + os.path.basename(path) + line[len(path):] + "{{$}}"
    return "{{^}}" + line + "{{$}}"


def update(path, modelc):
    rel = os.path.relpath(os.path.abspath(path), ROOT)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    run = run_line(text)
    if not run or "%FileCheck" not in run:
        return
    out = subprocess.run(command(run, rel, modelc), shell=True, cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT).stdout.decode()
    body = [l for l in text.splitlines() if not re.match(r"#\s*CHECK", l)]
    while body and body[-1] == "":
        body.pop()
    checks = []
    for i, line in enumerate(out.splitlines()):
        if line == "":
            checks.append("# CHECK-EMPTY:")
        else:
            checks.append("# %s %s" % ("CHECK:" if i == 0 else "CHECK-NEXT:", pattern(line, rel)))
    checks.append("# CHECK-NOT: {{.}}")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(body + checks) + "\n")


def main():
    args = sys.argv[1:]
    modelc = os.path.join(ROOT, "build", "modelc")
    if args[:1] == ["--modelc"]:
        modelc = os.path.abspath(args[1])
        args = args[2:]
    files = args or sorted(glob.glob(os.path.join(ROOT, "tests", "diag", "*.mdl")))
    for f in files:
        update(f, modelc)


if __name__ == "__main__":
    main()
