"""Writes the retrieval task of this example as CSV (standard library
only): each row is a label and 12 tokens drawn uniformly from 0..15; the
label is 1 when the first token occurs again later in the row.

  python3 make_data.py [DIR]    # DIR/train.csv (8000 rows), DIR/test.csv (2000)
"""
import os
import random
import sys

LENGTH, VOCAB = 12, 16


def write(path, rng, n):
    with open(path, "w") as f:
        f.write(",".join(["label"] + ["t%d" % i for i in range(LENGTH)]) + "\n")
        for _ in range(n):
            t = [rng.randrange(VOCAB) for _ in range(LENGTH)]
            f.write(",".join(map(str, [int(t[0] in t[1:])] + t)) + "\n")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    rng = random.Random(5)
    write(os.path.join(out, "train.csv"), rng, 8000)
    write(os.path.join(out, "test.csv"), rng, 2000)


if __name__ == "__main__":
    main()
