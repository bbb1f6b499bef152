"""Writes the motif task of this example as CSV (standard library only):
each row is a label and 32 bits, each 1 with probability 0.3; the label
is 1 when the motif 1 1 0 1 occurs somewhere in the row.

  python3 make_data.py [DIR]    # DIR/train.csv (6000 rows), DIR/test.csv (2000)
"""
import os
import random
import sys

LENGTH, P_ONE, MOTIF = 32, 0.3, [1, 1, 0, 1]


def rows(rng, n):
    for _ in range(n):
        bits = [1 if rng.random() < P_ONE else 0 for _ in range(LENGTH)]
        label = int(any(bits[i:i + len(MOTIF)] == MOTIF for i in range(LENGTH - len(MOTIF) + 1)))
        yield [label] + bits


def write(path, rng, n):
    with open(path, "w") as f:
        f.write(",".join(["label"] + ["x%d" % i for i in range(LENGTH)]) + "\n")
        for r in rows(rng, n):
            f.write(",".join(map(str, r)) + "\n")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    rng = random.Random(17)
    write(os.path.join(out, "train.csv"), rng, 6000)
    write(os.path.join(out, "test.csv"), rng, 2000)


if __name__ == "__main__":
    main()
