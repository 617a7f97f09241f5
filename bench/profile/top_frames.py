#!/usr/bin/env python3
"""Inclusive share of each frame in a folded-stacks file (flamegraph.py's).

Usage: bench/profile/top_frames.py FILE.folded [N] [SUBSTRING...]
"""
import collections
import sys


def main():
    path = sys.argv[1]
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    wanted = sys.argv[3:]
    total, inclusive = 0, collections.Counter()
    with open(path) as f:
        for line in f:
            stack, count = line.rsplit(" ", 1)
            count = int(count)
            total += count
            for frame in set(stack.split(";")):
                inclusive[frame] += count
    shown = 0
    for frame, count in inclusive.most_common():
        if wanted and not any(w in frame for w in wanted):
            continue
        print("%5.1f%%  %s" % (100.0 * count / max(total, 1), frame[:140]))
        shown += 1
        if shown >= limit:
            break


if __name__ == "__main__":
    main()
