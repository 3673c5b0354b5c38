#!/usr/bin/env python3
"""A/B of two flexjit builds' bench runs (flexjit_attention_bench --json) from one job.

Each side may give several runs (interleaved A, B, A, B in the job); a case's time is the
best of its runs. Prints per case forward and backward ms and new/base, the geometric means
and the largest deviation, and each side's run-to-run spread (the noise floor).

  python3 bench/compare_runs.py --base base_1.jsonl base_2.jsonl --new new_1.jsonl new_2.jsonl
"""
import argparse
import json
import math


def load(paths):
    runs = []
    for p in paths:
        with open(p) as f:
            runs.append({(r["case"], r["D"]): r for r in map(json.loads, f) if "fwd_ms" in r})
    return runs


def best(runs, key, field):
    values = [r[key][field] for r in runs if key in r and r[key].get(field)]
    return min(values) if values else None


def geomean(values):
    return math.exp(sum(map(math.log, values)) / len(values))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", nargs="+", required=True)
    ap.add_argument("--new", nargs="+", required=True)
    a = ap.parse_args()
    base, new = load(a.base), load(a.new)
    fields = [f for f in ("fwd_ms", "bwd_ms") if any(f in r for run in new for r in run.values())]
    head = "".join(f" {f + ' base':>12} {f + ' new':>11} {'new/base':>8}" for f in fields)
    print(f"{'case':16} {'D':>4}{head}")
    ratios = {f: [] for f in fields}
    for key in new[0]:
        line = f"{key[0]:16} {key[1]:4}"
        for f in fields:
            b, n = best(base, key, f), best(new, key, f)
            ratios[f].append(n / b)
            line += f" {b:12.3f} {n:11.3f} {n / b:8.3f}"
        print(line)
    for f in fields:
        r = ratios[f]
        print(f"{f}: geomean new/base {geomean(r):.3f}, largest deviation {max(abs(x - 1) for x in r):.1%}")
    for name, runs in (("base", base), ("new", new)):
        if len(runs) < 2:
            continue
        for f in fields:
            spread = max(abs(runs[1][k][f] / runs[0][k][f] - 1) for k in runs[0] if k in runs[1])
            print(f"{name} run-to-run spread {f}: {spread:.1%}")


if __name__ == "__main__":
    main()
