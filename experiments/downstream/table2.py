#!/usr/bin/env python3
"""Table 2's columns for a kept experiment with `[eval]` (docs/evaluation.md): each grown
arm and each size trained alone at the arms' FLOPs, mean and 95% t interval over seeds, and
each arm's paired difference (same seed) from the best size alone at those FLOPs, chosen per
seed by validation loss as the frontier chooses it.

    python3 experiments/downstream/table2.py results/llama-tiny-downstream

Reads only the kept runs' summary.json and downstream.json; standard library only.
"""

import json
import math
import os
import re
import statistics
import sys

# Student's t, 0.975 quantile, by degrees of freedom.
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}
COLUMNS = [
    ("val loss", "val", "{:.4f}"),
    ("LAMBADA acc", "lambada.acc", "{:.4f}"),
    ("LAMBADA ppl", "lambada.perplexity", "{:.3g}"),
    ("WikiText-2 bits/byte", "wikitext2.bits_per_byte", "{:.4f}"),
    ("WikiText-2 word ppl", "wikitext2.word_perplexity", "{:.3g}"),
    ("PTB bits/byte", "ptb.bits_per_byte", "{:.4f}"),
    ("PTB word ppl", "ptb.word_perplexity", "{:.3g}"),
]


def load(run):
    s = json.load(open(os.path.join(run, "summary.json")))
    d = json.load(open(os.path.join(run, "downstream.json")))
    m = {"val": s["final_val_loss"], "flops": s["flops"]}
    for r in d["results"]:
        for k, v in r.items():
            if isinstance(v, (int, float)) and k != "examples":
                m[f"{r['task']}.{k}"] = v
    return m


def interval_of(xs):
    """Mean and the 95% t interval's ends (None for one seed)."""
    mean = statistics.fmean(xs)
    if len(xs) < 2:
        return mean, None, None
    h = T975[len(xs) - 1] * statistics.stdev(xs) / math.sqrt(len(xs))
    return mean, mean - h, mean + h


def interval(xs, fmt, log=False):
    """Mean and 95% t interval; with `log`, the geometric mean and the interval of the logs
    (perplexities, whose seeds differ by factors)."""
    back = math.exp if log else (lambda x: x)
    mean, lo, hi = interval_of([math.log(x) for x in xs] if log else xs)
    if lo is None:
        return fmt.format(back(mean)) + " (1 seed)"
    return f"{fmt.format(back(mean))} ({fmt.format(back(lo))}–{fmt.format(back(hi))})"


def main(root):
    runs = {}
    for name in sorted(os.listdir(root)):
        m = re.fullmatch(r"(.+)-s(\d+)", name)
        if m and os.path.isfile(os.path.join(root, name, "downstream.json")):
            runs.setdefault(m.group(1), {})[int(m.group(2))] = load(os.path.join(root, name))
    arms = {k: v for k, v in runs.items() if k.startswith(("stack", "expand", "convergence"))}
    flops = statistics.fmean(r["flops"] for a in arms.values() for r in a.values())
    alone = {k: v for k, v in runs.items() if k not in arms and abs(math.log(next(iter(v.values()))["flops"] / flops)) < math.log(1.5)}
    seeds = sorted(set.intersection(*(set(v) for v in runs.values())))
    print(f"seeds {seeds}; arms' FLOPs {flops:.4g}\n")
    print("| run | " + " | ".join(c[0] for c in COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for name, by_seed in list(arms.items()) + sorted(alone.items(), key=lambda kv: statistics.fmean(r["val"] for r in kv[1].values())):
        cells = [interval([by_seed[s][key] for s in seeds], fmt, key.endswith("perplexity")) for _, key, fmt in COLUMNS]
        print(f"| {name} | " + " | ".join(cells) + " |")
    best = {s: min(alone.values(), key=lambda v: v[s]["val"])[s] for s in seeds}
    names = {s: next(k for k, v in alone.items() if v[s] is best[s]) for s in seeds}
    print(f"\nPaired difference, arm − best size alone at these FLOPs (per seed: {names}):\n")
    print("| arm | " + " | ".join(c[0] for c in COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for name, by_seed in arms.items():
        cells = []
        for _, key, fmt in COLUMNS:
            if key.endswith("perplexity"):
                # Perplexities differ by orders of magnitude: a ratio, as log differences.
                xs = [math.log(by_seed[s][key] / best[s][key]) for s in seeds]
                cells.append("log ratio " + interval(xs, "{:+.3f}"))
            else:
                cells.append(interval([by_seed[s][key] - best[s][key] for s in seeds], "{:+.4f}"))
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
