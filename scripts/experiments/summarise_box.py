import json, sys, numpy as np, collections
rows = json.load(open(sys.argv[1]))
conds = ["tight", "j10", "j20", "loose25"]
strats = ["U", "R1"] + [f"{s}{t}" for t in (0.5, 0.3) for s in ("L", "AVG", "UNI", "INT")]
groups = collections.defaultdict(list)
for r in rows:
    groups["all"].append(r); groups[r["group"]].append(r)
for g, rs in groups.items():
    print(f"== {g} n={len(rs)}   (mean Dice; drop vs tight:U; n drops>0.05 vs tight:U)")
    base = np.array([r["tight:U"] for r in rs])
    for s in strats:
        line = f"  {s:8s}"
        for c in conds:
            d = np.array([r.get(f"{c}:{s}", np.nan) for r in rs])
            line += f" | {c} {np.nanmean(d):.4f} ({np.nanmean(d)-base.mean():+.3f}, {int(np.sum(base - d > 0.05))})"
        print(line)
