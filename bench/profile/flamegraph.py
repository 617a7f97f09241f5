#!/usr/bin/env python3
"""Turns `perf script` output into folded stacks and an SVG flame graph.

Usage: perf script -i perf.data | bench/profile/flamegraph.py TITLE OUT.svg [OUT.folded]

Standard library only (no FlameGraph checkout is needed). Frames are
shortened: template arguments and parameter lists are dropped, so that
nlohmann's or gRPC's long names stay readable in a box.
"""
import collections
import html
import re
import sys


def short(name):
    name = re.sub(r"\(.*\)$", "", name)  # parameter lists
    out, depth = [], 0
    for ch in name:  # drop template arguments, nested ones too
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(ch)
    name = "".join(out)
    name = re.sub(r"\babi:cxx11\b|\[\]", "", name)
    name = name.replace("::debian3::", "::").replace("json_abi_v3_11_2::", "")
    return name.strip() or "?"


def fold(lines):
    stacks = collections.Counter()
    comm, frames = None, []
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            if comm is not None:
                stacks[";".join([comm] + list(reversed(frames)))] += 1
            comm, frames = None, []
            continue
        if not line.startswith((" ", "\t")):
            comm = line.split()[0]  # thread name
            frames = []
            continue
        parts = line.strip().split(" ", 1)
        if len(parts) < 2:
            continue
        sym = parts[1]
        sym = re.sub(r"\s+\(\S+\)$", "", sym)  # "(dso)"
        sym = re.sub(r"\+0x[0-9a-f]+$", "", sym)
        if sym.startswith("[unknown]"):
            m = re.search(r"\((\S+)\)", parts[1])
            sym = "[" + (m.group(1).rsplit("/", 1)[-1] if m else "unknown") + "]"
        frames.append(short(sym))
    if comm is not None:
        stacks[";".join([comm] + list(reversed(frames)))] += 1
    return stacks


def color(name):
    h = sum(ord(c) for c in name)
    if name.startswith("[k]") or "_[k]" in name or name.startswith(("__x64_sys", "do_syscall", "entry_SYSCALL")):
        return "rgb(230,{},60)".format(120 + h % 60)
    if "grpc" in name or "Grpc" in name:
        return "rgb(90,{},220)".format(130 + h % 70)
    if name.startswith("chat::"):
        return "rgb(60,{},90)".format(170 + h % 60)
    return "rgb(240,{},{})".format(140 + h % 80, 40 + h % 50)


def svg(stacks, title, width=1400, row=16):
    root = {"n": 0, "c": {}}
    for stack, count in stacks.items():
        node = root
        node["n"] += count
        for frame in stack.split(";"):
            node = node["c"].setdefault(frame, {"n": 0, "c": {}})
            node["n"] += count
    total = root["n"] or 1
    boxes, depth_max = [], 0

    def walk(node, x, depth):
        nonlocal depth_max
        depth_max = max(depth_max, depth)
        for name, child in sorted(node["c"].items()):
            w = child["n"] / total * width
            if w >= 0.3:
                boxes.append((x, depth, w, name, child["n"]))
                walk(child, x, depth + 1)
            x += w

    walk(root, 0, 0)
    height = (depth_max + 3) * row + 30
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="monospace" font-size="11">' % (width, height),
           '<rect width="100%" height="100%" fill="#fdfdf6"/>',
           '<text x="6" y="18" font-size="14">%s (%d samples)</text>'
           % (html.escape(title), total)]
    for x, depth, w, name, n in boxes:
        y = height - (depth + 2) * row
        label = "%s (%.1f%%)" % (name, 100.0 * n / total)
        out.append('<g><title>%s</title><rect x="%.1f" y="%d" width="%.1f" '
                   'height="%d" fill="%s" stroke="#fff" stroke-width="0.3"/>'
                   % (html.escape(label), x, y, w, row - 1, color(name)))
        chars = int(w / 6.6)
        if chars >= 3:
            text = label if len(label) <= chars else label[: chars - 2] + ".."
            out.append('<text x="%.1f" y="%d">%s</text>'
                       % (x + 2, y + row - 4, html.escape(text)))
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    stacks = fold(sys.stdin)
    with open(sys.argv[2], "w") as f:
        f.write(svg(stacks, sys.argv[1]))
    if len(sys.argv) > 3:
        with open(sys.argv[3], "w") as f:
            for stack, n in sorted(stacks.items()):
                f.write("%s %d\n" % (stack, n))


if __name__ == "__main__":
    main()
