"""Which part of Llama carries the d=32 win: each swapped variant's x-frontier against the
unswapped baseline's, seed by seed (the same seeds 0-2; paired, since a seed fixes the data
order and the initialisation of both). Reads the kept results:

    python3 experiments/ablation-compare.py

Prints per variant: its x-frontier (the tool's interval), and the paired difference from the
baseline with its 95% t interval. Standard library only."""
import json
import math
import statistics

T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776}  # t(0.975, n-1)
ARM = "stack-at-2400-at38"


def per_seed(name):
    r = json.load(open(f"results/{name}/results.json"))
    f = r["frontier"]
    rows = {row["run"]: row["x_frontier"] for row in f["rows"]}
    arm = next(a for a in f["arms"] if a["arm"] == ARM)
    final = next(a for a in r["arms"] if a["arm"] == ARM)["final_val_loss"]["mean"]
    return {s: rows[f"{ARM}-s{s}"] for s in (0, 1, 2)}, arm["x_frontier"], final


def interval(xs):
    m, n = statistics.mean(xs), len(xs)
    h = T975[n - 1] * statistics.stdev(xs) / math.sqrt(n)
    return m, m - h, m + h


base, base_x, base_loss = per_seed("ablation-llama")
print(f"| variant | final loss | x-frontier (95% CI) | paired difference from Llama (95% CI) |")
print(f"|---|---|---|---|")
print(f"| Llama (none swapped) | {base_loss:.4f} | {base_x['mean']:.2f} ({base_x['ci'][0]:.2f}-{base_x['ci'][1]:.2f}) | - |")
for swap, label in [("positions", "learned positions"), ("mlp", "GELU MLP"), ("norm", "LayerNorm")]:
    try:
        mine, x, loss = per_seed(f"ablation-{swap}")
    except FileNotFoundError:
        print(f"| {label} | not run | | |")
        continue
    d = [mine[s] - base[s] for s in (0, 1, 2)]
    m, lo, hi = interval(d)
    verdict = "no difference" if lo <= 0 <= hi else ("lower" if hi < 0 else "higher")
    print(f"| {label} | {loss:.4f} | {x['mean']:.2f} ({x['ci'][0]:.2f}-{x['ci'][1]:.2f}) | {m:+.2f} ({lo:+.2f} to {hi:+.2f}): {verdict} |")
