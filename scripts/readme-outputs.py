#!/usr/bin/env python3
"""Regenerate (--update) or check (--check) the command outputs shown in
README.md and examples/*/README.md.

A shown output is a fenced block right after an HTML comment (invisible
when rendered) that says how to make it:

    <!-- output checked
    $ modelc ir --fn grad --after=simplify --no-loc examples/s0_reparam/model2.mdl
    lines: 3-7, 40-47
    note: conv2d_grad_kernel\\(%h => <- grad w2
    -->
    ```
    ...the generated text...
    ```

A marker and its block may be indented alike (a block inside a list item).
The first line is `<!-- output checked` (the output depends only on the
build: IR text, check, params, diagnostics, anything that runs on the
interpreter; --check compares it) or `<!-- output cpu` (runs JIT code, whose
results depend on the host CPU: --update regenerates it, --check skips it);
`slow` after either lets --skip-slow leave the block alone (--only-slow
checks those alone: tests/e2e/readme_outputs_slow.sh). Then, in order:

    $ CMD          run CMD; the block shows `$ CMD` and its output (a line
                   ending in a backslash continues on the next one, shown as
                   written)
    run: CMD       run CMD; the block shows its output only
    setup: CMD     run CMD; nothing shown (files for the next commands)
    lines: SPEC    keep these lines of the last command's output: N, N-M,
                   N- (to the end), `end`, `end-K`; a line "..." stands for
                   the lines left out before or between them
    note: RE => T  append T to the first kept line matching the regex RE (the
                   notes of one command's output aligned in one column)
    status: N      the last command's expected exit status (default 0)
    blank          an empty line in the block
    mask: RE       also mask RE when comparing this block (see below)

Commands run in bash, stdout and stderr into one stream, in a fresh
temporary directory holding links to the repository's top-level entries (so
`examples/...` prints as in the repository and files the commands write are
thrown away), with `modelc` on PATH being $MODELC (default build/modelc) and
a temporary XDG_CACHE_HOME (MODELC_CONV_ISA unset). What legitimately varies between runs is masked
before comparing, in the shown text and in the new output alike: durations
(`12.4s`, `124.2ms/step`, `261 ms`), and paths under /tmp. With --update a
line whose masked text is unchanged keeps its old text. Trailing blanks of
output lines are dropped.

Exit status: 0 when every checked block matches (or was rewritten), 1 on
drift (a diff naming the file and line of each drifted block) or when a
command fails, 2 on a malformed marker.
"""
import argparse
import difflib
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MASKS = [
    re.compile(r"\b\d+(?:\.\d+)?(?:ms|s|us)\b(?:/step)?"),
    re.compile(r"\b\d+(?:\.\d+)? ms\b"),
    re.compile(r"/tmp/[^\s'\"]+"),
]


class MarkerError(Exception):
    pass


class Command:
    def __init__(self, kind, text, line):
        self.kind = kind          # '$', 'run' or 'setup'
        self.text = text          # as written (continuations included)
        self.line = line
        self.lines = None
        self.notes = []
        self.status = 0


class Block:
    def __init__(self, path, marker_line):
        self.path = path
        self.marker_line = marker_line  # 1-based line of `<!-- output`
        self.kind = None
        self.slow = False
        self.commands = []
        self.masks = []
        self.start = None               # index of the first content line
        self.end = None                 # index of the closing fence
        self.indent = ""                # of the marker and fence (in a list)

    def where(self):
        return "%s:%d" % (os.path.relpath(self.path, ROOT), self.marker_line)

    def summary(self):
        c = [x for x in self.commands if x.kind not in ("setup", "blank")]
        return (c[0] if c else self.commands[0]).text.split("\n")[0]


def parse_marker(block, body, first_line):
    head = body[0].split()
    if head[:1] != ["output"] or len(head) < 2 or head[1] not in ("checked", "cpu"):
        raise MarkerError("%s: a marker starts with `<!-- output checked` or `<!-- output cpu`"
                          % block.where())
    block.kind = head[1]
    for w in head[2:]:
        if w != "slow":
            raise MarkerError("%s: unknown word '%s' in the marker's first line" % (block.where(), w))
        block.slow = True
    i = 1
    while i < len(body):
        ln = body[i].strip()
        lineno = first_line + i
        i += 1
        if not ln:
            continue
        if ln == "blank":
            block.commands.append(Command("blank", "", lineno))
            continue
        m = re.match(r"(\$ |run: |setup: )(.*)$", ln)
        if m:
            text = m.group(2)
            while text.endswith("\\") and i < len(body):
                text += "\n" + body[i].rstrip()
                i += 1
            block.commands.append(Command(m.group(1).strip(" :"), text, lineno))
            continue
        key, _, val = ln.partition(": ")
        if key == "mask":
            block.masks.append(re.compile(val))
            continue
        if not block.commands or block.commands[-1].kind == "blank" or \
                block.commands[-1].kind == "setup" and key != "status":
            raise MarkerError("%s:%d: '%s' must follow a shown command" % (block.path, lineno, key))
        cmd = block.commands[-1]
        if key == "lines":
            cmd.lines = parse_lines(val, block.path, lineno)
        elif key == "note":
            regex, sep, text = val.partition(" => ")
            if not sep:
                raise MarkerError("%s:%d: a note is `note: REGEX => TEXT`" % (block.path, lineno))
            cmd.notes.append((re.compile(regex), text))
        elif key == "status":
            cmd.status = int(val)
        else:
            raise MarkerError("%s:%d: unknown marker line: %s" % (block.path, lineno, ln))
    if not block.commands:
        raise MarkerError("%s: a marker without a command" % block.where())


def parse_lines(spec, path, lineno):
    bound = r"(\d+|end(?:-\d+)?)"
    out = []
    for part in spec.replace(" ", "").split(","):
        m = re.fullmatch(bound + r"(?:(-)" + bound + r"?)?", part)
        if not m:
            raise MarkerError("%s:%d: bad line range '%s'" % (path, lineno, part))
        lo = m.group(1)
        hi = m.group(3) if m.group(3) else ("end" if m.group(2) else lo)
        out.append((lo, hi))
    return out


def resolve(bound, n):
    if bound == "end":
        return n
    if bound.startswith("end-"):
        return n - int(bound[4:])
    return int(bound)


def select_lines(lines, spec):
    n = len(lines)
    keep = set()
    for lo, hi in spec:
        keep.update(range(max(1, resolve(lo, n)), min(n, resolve(hi, n)) + 1))
    out = []
    prev = 0
    for k in sorted(keep):
        if k != prev + 1:
            out.append("...")
        out.append(lines[k - 1])
        prev = k
    return out


def find_blocks(path):
    with open(path, encoding="utf-8") as f:
        text = f.read().split("\n")
    blocks = []
    i = 0
    while i < len(text):
        if not text[i].lstrip().startswith("<!-- output"):
            i += 1
            continue
        b = Block(path, i + 1)
        b.indent = text[i][:len(text[i]) - len(text[i].lstrip())]
        body = [text[i].strip()[len("<!-- "):]]
        j = i + 1
        while j < len(text) and text[j].strip() != "-->":
            body.append(text[j][len(b.indent):] if text[j].startswith(b.indent) else text[j])
            j += 1
        if j == len(text):
            raise MarkerError("%s: marker not closed by a line `-->`" % b.where())
        parse_marker(b, body, i + 1)
        fence = b.indent + "```"
        if j + 1 >= len(text) or not text[j + 1].startswith(fence):
            raise MarkerError("%s: the marker must be followed by a fenced block" % b.where())
        k = j + 2
        while k < len(text) and not text[k].startswith(fence):
            k += 1
        if k == len(text):
            raise MarkerError("%s: fenced block not closed" % b.where())
        b.start, b.end = j + 2, k
        blocks.append(b)
        i = k + 1
    return text, blocks


def unindent(lines, indent):
    return [x[len(indent):] if x.startswith(indent) else x.lstrip() for x in lines]


def indent_lines(lines, indent):
    return [indent + x if x else x for x in lines]


def make_workdir(modelc):
    d = tempfile.mkdtemp(prefix="readme-outputs.")
    work = os.path.join(d, "work")
    os.mkdir(work)
    for e in os.listdir(ROOT):
        if not e.startswith(".") and not e.startswith("build"):
            os.symlink(os.path.join(ROOT, e), os.path.join(work, e))
    os.mkdir(os.path.join(d, "bin"))
    os.symlink(modelc, os.path.join(d, "bin", "modelc"))
    os.mkdir(os.path.join(d, "cache"))
    return d, work


def run_block(block, modelc):
    d, work = make_workdir(modelc)
    env = dict(os.environ)
    env["PATH"] = os.path.join(d, "bin") + os.pathsep + env.get("PATH", "")
    env["XDG_CACHE_HOME"] = os.path.join(d, "cache")
    env.pop("MODELC_CONV_ISA", None)
    out = []
    try:
        for c in block.commands:
            if c.kind == "blank":
                out.append("")
                continue
            p = subprocess.run(["bash", "-c", "set -o pipefail\n" + c.text], cwd=work, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            got = "\n".join(x.rstrip() for x in p.stdout.decode("utf-8", "replace").rstrip("\n").split("\n"))
            if p.returncode != c.status:
                raise RuntimeError("%s:%d: `%s` exited with %d (expected %d):\n%s" %
                                   (block.path, c.line, c.text, p.returncode, c.status, got))
            if c.kind == "setup":
                continue
            lines = got.split("\n") if got else []
            if c.kind == "$":
                shown = c.text.split("\n")
                out.append("$ " + shown[0])
                out.extend(shown[1:])
            if c.lines:
                lines = select_lines(lines, c.lines)
            annotate(lines, c, block)
            out.extend(lines)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return out


def annotate(lines, c, block):
    notes = {}
    for regex, note in c.notes:
        for k, ln in enumerate(lines):
            if ln != "..." and k not in notes and regex.search(ln):
                notes[k] = note
                break
        else:
            raise RuntimeError("%s:%d: no shown line matches the note's /%s/" %
                               (block.path, c.line, regex.pattern))
    col = max([len(lines[k]) for k in notes] + [0]) + 2
    for k, note in notes.items():
        lines[k] = lines[k].ljust(col) + note


def masked(lines, block):
    res = []
    for ln in lines:
        for m in MASKS + block.masks:
            ln = m.sub("<masked>", ln)
        res.append(ln)
    return res


def report_drift(path, block, old, new):
    """file:line of the first drifted line, then a unified diff whose
    line numbers on the shown side are the file's."""
    rel = os.path.relpath(path, ROOT)
    if rel.startswith(".."):
        rel = path
    sm = difflib.SequenceMatcher(None, masked(old, block), masked(new, block), autojunk=False)
    first = next(i1 for tag, i1, _, _, _ in sm.get_opcodes() if tag != "equal")
    print("%s:%d: shown output differs from the current build (%s):" %
          (rel, block.start + 1 + first, block.summary()))
    for ln in difflib.unified_diff([x + "\n" for x in old], [x + "\n" for x in new],
                                   "%s (shown)" % rel, "current build"):
        m = re.match(r"@@ -(\d+)(.*)$", ln)
        if m:
            ln = "@@ -%d%s\n" % (int(m.group(1)) + block.start, m.group(2))
        sys.stdout.write(ln)


def keep_masked_equal(old, new, block):
    """The new lines, with those equal to an old line but for masked parts
    kept as they were (no churn from timings)."""
    out = list(new)
    sm = difflib.SequenceMatcher(None, masked(old, block), masked(new, block), autojunk=False)
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            out[j1:j2] = old[i1:i2]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="compare the checked blocks (exit 1 on drift)")
    mode.add_argument("--update", action="store_true", help="rewrite the blocks in place")
    ap.add_argument("--checked-only", action="store_true", help="with --update: leave `cpu` blocks alone")
    slow = ap.add_mutually_exclusive_group()
    slow.add_argument("--skip-slow", action="store_true", help="leave `slow` blocks alone")
    slow.add_argument("--only-slow", action="store_true", help="only the `slow` blocks")
    ap.add_argument("--match", help="only blocks whose first command contains this text")
    ap.add_argument("--list", action="store_true", help="list the blocks and exit")
    ap.add_argument("files", nargs="*", help="default: README.md and examples/*/README.md")
    a = ap.parse_args()
    if not (a.check or a.update or a.list):
        ap.error("one of --check, --update or --list is required")

    modelc = os.path.abspath(os.environ.get("MODELC", os.path.join(ROOT, "build", "modelc")))
    files = a.files or [os.path.join(ROOT, "README.md")] + sorted(
        glob.glob(os.path.join(ROOT, "examples", "*", "README.md")))
    if not a.list and not os.access(modelc, os.X_OK):
        sys.exit("readme-outputs: no modelc at %s (set MODELC)" % modelc)

    drift = failed = checked = updated = 0
    for path in files:
        path = os.path.abspath(path)
        try:
            text, blocks = find_blocks(path)
        except MarkerError as e:
            print("readme-outputs: %s" % e, file=sys.stderr)
            return 2
        changed = False
        for b in reversed(blocks):
            if a.list:
                continue
            if a.match and a.match not in b.summary():
                continue
            if b.slow and a.skip_slow or not b.slow and a.only_slow:
                continue
            if b.kind == "cpu" and (a.check or a.checked_only):
                continue
            try:
                new = run_block(b, modelc)
            except RuntimeError as e:
                print("readme-outputs: %s" % e, file=sys.stderr)
                failed += 1
                continue
            old = unindent(text[b.start:b.end], b.indent)
            same = masked(old, b) == masked(new, b)
            if a.check:
                checked += 1
                if not same:
                    drift += 1
                    report_drift(path, b, old, new)
            elif not same:
                text[b.start:b.end] = indent_lines(keep_masked_equal(old, new, b), b.indent)
                changed = True
                updated += 1
        if a.list:
            for b in blocks:
                print("%s %s%s %s" % (b.where(), b.kind, " slow" if b.slow else "", b.summary()))
        if changed:
            with open(path, "w", encoding="utf-8") as f:
                f.write("\n".join(text))
    if a.check:
        print("readme-outputs: %d blocks checked, %d drifted, %d failed" % (checked, drift, failed))
    elif not a.list:
        print("readme-outputs: %d blocks rewritten, %d failed" % (updated, failed))
    return 1 if drift or failed else 0


if __name__ == "__main__":
    sys.exit(main())
