import json, sys, numpy as np, collections
rows = json.load(open(sys.argv[1]))
keys = [k for k in rows[0] if k not in ("id", "group") and not k.endswith("_iou")]
groups = collections.defaultdict(list)
for r in rows:
    groups["all"].append(r); groups[r["group"]].append(r)
for g, rs in groups.items():
    print(f"== {g} n={len(rs)}")
    for k in keys:
        j = np.array([r.get(k, 0.0) for r in rs])
        print(f"  {k:8s} J {j.mean():.4f} thrJ {np.where(j >= 0.65, j, 0).mean():.4f} fail {np.mean(j < 0.65):.3f}")
