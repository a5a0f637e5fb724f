import json, sys, numpy as np
rows = json.load(open(sys.argv[1]))
conds = ["tight", "j10", "j20", "loose25"]
A = lambda b: max(0, b[2] - b[0]) * max(0, b[3] - b[1])
I = lambda a, b: A([max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])])
base = {r["id"]: r["tight:U"] for r in rows}
def feats(r, c, thr=0.5):
    L, u = r.get(f"{c}:Lbox{thr}"), r[f"{c}:ubox"]
    if L is None:
        return 1.0, 0.0
    return A(L) / A(u), 1 - I(L, u) / A(L)   # small: loose box; large: box cuts the lesion
for thr in (0.5, 0.3):
  for tl in (0.3, 0.4, 0.5):
    for to in (0.15, 0.25, 0.35):
        line = f"thr{thr} loose<{tl} out>{to}:"
        for c in conds:
            f = [feats(r, c, thr) for r in rows]
            warn = np.array([a < tl or o > to for a, o in f])
            drop = np.array([base[r["id"]] - r[f"{c}:U"] > 0.05 for r in rows])
            line += f" {c} warn {warn.mean():.2f} drops {drop.sum()} unwarned {int((drop & ~warn).sum())};"
        print(line)
