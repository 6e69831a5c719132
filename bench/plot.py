#!/usr/bin/env python3
"""Draws one throughput-vs-concurrency plot for docs/benchmarks.md.

Usage: plot.py DATA.csv OUT.png TITLE XLABEL YLABEL (log|linear)
DATA.csv has the columns series,x,y (one line per measured point), written by
consul-bench. Every number in the plot comes from that file.
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> int:
    if len(sys.argv) != 7:
        print(__doc__, file=sys.stderr)
        return 2
    data, out, title, xlabel, ylabel, scale = sys.argv[1:]
    series: dict[str, list[tuple[float, float]]] = {}
    with open(data, newline="") as f:
        for row in csv.DictReader(f):
            series.setdefault(row["series"], []).append((float(row["x"]), float(row["y"])))
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for name, points in series.items():
        points.sort()
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        ax.plot(xs, ys, marker="o", label=name)
    if scale == "log":
        ax.set_xscale("log", base=2)
        xs_all = sorted({p[0] for pts in series.values() for p in pts})
        ax.set_xticks(xs_all)
        ax.set_xticklabels([f"{x:g}" for x in xs_all])
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
