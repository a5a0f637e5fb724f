"""Robustness and fairness suite: Dice under photo and prompt perturbations, by skin tone and source.

For every photo/mask pair and every condition of :mod:`skinscreen.evaluate.perturbations` the
photo is perturbed (geometric conditions move the mask too), optionally colour-corrected with
Shades-of-Gray, encoded, prompted (tight ground-truth box of the perturbed mask, jittered or loosened
for prompt conditions, or the automatic box) and scored against the expert mask. Each result row
also records the skin tone around the lesion (ITA category of a ring of skin, measured once on
the unperturbed photo), the source set, and the warnings that the assessment's quality checks
(:func:`skinscreen.assess.quality.assess_quality`) raise for the perturbed photo, so a drop in
Dice can be matched with a warning the user would have seen.

Outputs (``write_report``): ``robustness_per_image.csv``, ``robustness_summary.csv``,
``robustness.md`` (condition, skin-tone and source tables), ``dice_by_condition.png`` and
``dice_by_skin_tone.png``.
"""

from __future__ import annotations

import csv
import io
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from skinscreen.errors import SkinscreenError
from skinscreen.evaluate.dataset import Pair, jitter_box, predicted_mask, seed_for
from skinscreen.evaluate.metrics import ISIC_JACCARD_THRESHOLD, dice, jaccard, threshold_jaccard
from skinscreen.evaluate.perturbations import Perturbation
from skinscreen.preprocess.transforms import box_from_mask, expand_box

#: a condition "drops" a photo when its Dice falls by more than this below the original's
DROP = 0.05

#: ITA categories (Del Bino & Bernerd 2013), lightest first; used when skinscreen.assess is absent
_ITA_CATEGORIES = (
    (55.0, "very light"),
    (41.0, "light"),
    (28.0, "intermediate"),
    (10.0, "tan"),
    (-30.0, "brown"),
    (-np.inf, "dark"),
)
SKIN_TONE_ORDER = tuple(name for _, name in _ITA_CATEGORIES) + ("unknown",)


def _lab(image: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 sRGB -> float32 CIELAB (D65), L* in [0, 100]."""
    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def skin_ring(mask: np.ndarray, inner: float = 0.1, outer: float = 0.5) -> np.ndarray:
    """``(H, W)`` bool ring of skin around the lesion ``mask``.

    Pixels farther than ``inner`` and at most ``outer`` x the lesion's equivalent diameter from
    the lesion (at least 3 and 10 px), inside the photo.
    """
    area = float(mask.sum())
    if area == 0:
        return np.zeros_like(mask, dtype=bool)
    diam = 2.0 * np.sqrt(area / np.pi)
    dist = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)
    return (dist > max(3.0, inner * diam)) & (dist <= max(10.0, outer * diam))


def skin_tone(image: np.ndarray, mask: np.ndarray) -> tuple[float | None, str]:
    """ITA (degrees) and its category for the skin ring around ``mask``.

    ITA = atan((L* - 50) / b*) of the ring's median L* and b*, excluding clipped pixels
    (any channel >= 250 or all <= 15). Uses ``skinscreen.assess.skintone`` when it is installed.
    Returns ``(None, "unknown")`` when fewer than 50 skin pixels remain or b* <= 0.5.
    """
    ring = skin_ring(mask)
    ring &= (image.max(axis=2) < 250) & (image.max(axis=2) > 15)
    if ring.sum() < 50:
        return None, "unknown"
    lab = np.median(_lab(image)[ring], axis=0)
    try:
        from skinscreen.assess.skintone import ita_category, ita_deg
    except ImportError:  # pragma: no cover - assess is part of the package, this is a fallback
        ita_deg = ita_category = None
    if ita_deg is not None:
        ita = ita_deg(lab)
        return (None, "unknown") if ita is None else (ita, ita_category(ita))
    lightness, _, b = (float(v) for v in lab)
    if b <= 0.5:
        return None, "unknown"
    ita = float(np.degrees(np.arctan((lightness - 50.0) / b)))
    return ita, next(name for lower, name in _ITA_CATEGORIES if ita > lower)


def source_of(image_id: str, metadata: dict[str, str] | None = None) -> str:
    """Source set of a photo: the ``source`` column of a ``metadata.csv`` next to the images
    when present, else guessed from the id prefix (``ISIC_``, ``PAD_``, ``WL_dermis``...)."""
    if metadata and image_id in metadata:
        return metadata[image_id]
    prefixes = (
        ("ISIC_", "ISIC"),
        ("PAD_", "PAD-UFES-20"),
        ("WL_dermis", "DermIS"),
        ("WL_dermquest", "DermQuest"),
    )
    return next((name for p, name in prefixes if image_id.startswith(p)), "other")


def read_metadata(images_dir: Path) -> dict[str, str]:
    """``id -> source`` from ``metadata.csv`` in the images folder or its parent, if any."""
    for d in (Path(images_dir), Path(images_dir).parent):
        f = d / "metadata.csv"
        if f.is_file():
            with f.open(newline="") as fh:
                return {r["id"]: r.get("source", "") for r in csv.DictReader(fh) if "id" in r}
    return {}


def _shades_of_gray(image: np.ndarray) -> np.ndarray:
    try:
        from skinscreen.assess.color import shades_of_gray
    except ImportError:  # pragma: no cover
        shades_of_gray = None
    if shades_of_gray is not None:
        return shades_of_gray(image)
    x = image.astype(np.float64) / 255.0
    e = np.power(np.mean(np.power(x.reshape(-1, 3), 6.0), axis=0), 1 / 6.0)
    e = e / max(float(np.linalg.norm(e)), 1e-12)
    return np.clip(image * (1.0 / (np.sqrt(3.0) * np.maximum(e, 1e-6))) + 0.5, 0, 255).astype(
        np.uint8
    )


#: ``quality_warnings`` of a row where automatic mode found no lesion (the user is told to draw a
#: box; the row scores an empty outline).
NO_LESION_WARNING = "no-lesion-found"


def _quality_warnings(image: np.ndarray, mask: np.ndarray) -> list[str] | None:
    """Short names of the quality warnings for this photo and predicted mask (None: unavailable)."""
    if not mask.any():
        return ["no-mask"]
    try:
        from skinscreen.assess.quality import assess_quality
    except ImportError:
        return None
    try:
        report = assess_quality(image, mask)
    except Exception:  # the suite must not stop on one photo; record that the check failed
        return ["quality-check-failed"]
    keys = (
        ("blurred", "blur"),
        ("overexposed", "overexposed"),
        ("too dark", "dark"),
        ("washed out", "washed-out"),
        ("colour cast", "colour-cast"),
        ("touches the edge", "edge"),
        ("pixels across", "small"),
        ("covers", "large"),
        ("Too little skin", "no-skin"),
        ("JPEG-compressed", "jpeg"),
    )
    out = []
    for w in report.warnings:
        out.append(next((short for needle, short in keys if needle in w), "other"))
    return out


@dataclass
class RobustnessResult:
    """Per-image rows (one per photo x condition x colour constancy) and per-photo failures."""

    rows: list[dict] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)


def _prompt_box(
    cond: Perturbation, mask: np.ndarray, image_id: str, seed: int, margin: float = 0.0
) -> np.ndarray:
    """The expert mask's tight box, jittered or loosened by ``cond`` (the box "as drawn"), then
    grown by ``margin`` as the predictor grows a drawn box."""
    box = box_from_mask(mask)
    if box is None:
        raise SkinscreenError(f"{image_id}: the expert mask is empty after {cond.name}")
    if cond.box_jitter:
        rng = np.random.default_rng(seed_for(f"{image_id}:{cond.name}", seed))
        box = jitter_box(box, mask.shape, rng, amount=cond.box_jitter)
    if cond.box_margin:
        box = expand_box(box, cond.box_margin, mask.shape)
    if margin:
        box = expand_box(box, margin, mask.shape)
    return box


def run_robustness(
    predictor,
    pairs: Iterable[Pair],
    conditions: list[Perturbation],
    *,
    prompt: str = "gt-box",
    colour_constancy: bool = True,
    seed: int = 0,
    metadata: dict[str, str] | None = None,
    progress: Callable | None = None,
    margin: float = 0.0,
) -> RobustnessResult:
    """Run every condition on every pair; per-photo errors are collected, not raised.

    Args:
        predictor: a ``LesionPredictor``.
        pairs: photo/mask pairs (:func:`skinscreen.evaluate.dataset.find_pairs`).
        conditions: perturbations; the first must be ``original``.
        prompt: ``gt-box`` (tight box of the perturbed expert mask) or ``auto`` (no box; prompt
            conditions are skipped).
        colour_constancy: also run the reference and photometric conditions after Shades-of-Gray
            colour constancy (rows with ``colour_constancy`` True).
        seed: seed for box jitter (per image and condition).
        metadata: ``id -> source`` (see :func:`read_metadata`).
        margin: grow every prompt box (after its jitter or loosening: the box "as drawn") by
            this fraction of its width/height per side, as the predictor grows a drawn box by
            default (``--margin 0.05`` measures LiteMedSAM's default); 0: the raw box.
    """
    from skinscreen.io.image import load_image, load_mask

    if prompt not in ("gt-box", "auto"):
        raise SkinscreenError(f"--robustness supports --prompt gt-box or auto, not {prompt!r}")
    res = RobustnessResult()
    pairs = list(pairs)
    for pair in progress(pairs) if progress else pairs:
        try:
            truth = load_mask(pair.mask)
            photo = load_image(pair.image)
            if photo.shape[:2] != truth.shape:
                raise SkinscreenError(
                    f"photo is {photo.shape[1]}x{photo.shape[0]} but mask is {truth.shape[1]}x{truth.shape[0]}"
                )
            ita, tone = skin_tone(photo, truth)
            base = {
                "id": pair.id,
                "source": source_of(pair.id, metadata),
                "ita": None if ita is None else round(ita, 1),
                "skin_tone": tone,
                "prompt": prompt,
                "box_margin": margin,
            }
            res.rows.extend(
                _run_pair(
                    predictor,
                    pair.id,
                    photo,
                    truth,
                    conditions,
                    base,
                    prompt,
                    colour_constancy,
                    seed,
                    margin,
                )
            )
        except SkinscreenError as e:
            res.failures.append((pair.id, str(e)))
        finally:
            predictor.reset_image()
    return res


def _run_pair(
    predictor, image_id, photo, truth, conditions, base, prompt, colour_constancy, seed, margin
):
    rows: list[dict] = []
    reference: dict[bool, float] = {}
    cc_modes = (False, True) if colour_constancy else (False,)
    # image conditions first (one encoder run each), prompt conditions reuse the original's encoding
    ordered = sorted(conditions, key=lambda c: (c.name != "original", not c.changes_image))
    encoded_original: dict[bool, object] = {}
    for cond in ordered:
        if not cond.changes_image and cond.name != "original" and prompt == "auto":
            continue
        for cc in cc_modes:
            if cc and not (cond.photometric or cond.name == "original"):
                continue
            image, mask = cond.apply(photo, truth)
            if cc:
                image = _shades_of_gray(image)
            t0 = time.perf_counter()
            if cond.changes_image or cc not in encoded_original:
                enc = predictor.set_image(image)
                if not cond.changes_image:
                    encoded_original[cc] = enc
            else:
                predictor.set_encoding(encoded_original[cc])
            box = None if prompt == "auto" else _prompt_box(cond, mask, image_id, seed, margin)
            # _prompt_box applies the margin; no lesion found in this version of the photo: an
            # empty outline the user was told about, not a reason to drop the photo
            pred, seg = predicted_mask(predictor, box, 0.0, mask.shape)
            latency = (time.perf_counter() - t0) * 1e3
            d, j = dice(pred, mask), jaccard(pred, mask)
            if cond.name == "original":
                reference[cc] = d
            warnings = [NO_LESION_WARNING] if seg is None else _quality_warnings(image, pred)
            rows.append(
                {
                    **base,
                    "condition": cond.name,
                    "group": cond.group,
                    "colour_constancy": cc,
                    "dice": round(d, 5),
                    "jaccard": round(j, 5),
                    "threshold_jaccard": round(threshold_jaccard(j), 5),
                    "dice_change": round(d - reference.get(cc, d), 5),
                    "quality_warnings": "" if warnings is None else ";".join(warnings),
                    "warned": None if warnings is None else bool(warnings),
                    "iou_prediction": None if seg is None else round(seg.iou_prediction, 4),
                    **_estimate(seg),
                    "latency_ms": round(latency, 1),
                }
            )
    return rows


def _estimate(seg) -> dict:
    """The outline-quality estimate of a row (None where no outline or no quality model)."""
    q = None if seg is None else seg.outline_quality
    return {
        "predicted_jaccard": None if q is None else q["predicted_jaccard"],
        "p_failure": None if q is None else q["p_failure"],
        "check_outline": None if q is None else q["check_outline"],
    }


# -- summaries ------------------------------------------------------------------------------------


def _mean(xs: list[float]) -> float | None:
    return round(statistics.fmean(xs), 4) if xs else None


def summarise(rows: list[dict], keys: tuple[str, ...]) -> list[dict]:
    """Group rows by ``keys`` and give n, Dice/Jaccard/threshold-Jaccard means, failure rate, the
    mean Dice change vs the original, the share of photos that dropped by more than
    :data:`DROP`, and how many of those drops came without any quality warning."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    out = []
    for k, rs in groups.items():
        drops = [r for r in rs if r["dice_change"] < -DROP]
        unwarned = [r for r in drops if r["warned"] is False]
        out.append(
            {
                **dict(zip(keys, k, strict=True)),
                "n": len(rs),
                "dice": _mean([r["dice"] for r in rs]),
                "jaccard": _mean([r["jaccard"] for r in rs]),
                "threshold_jaccard": _mean([r["threshold_jaccard"] for r in rs]),
                "failure_rate": round(
                    sum(r["jaccard"] < ISIC_JACCARD_THRESHOLD for r in rs) / len(rs), 4
                ),
                "dice_change": _mean([r["dice_change"] for r in rs]),
                "dropped": round(len(drops) / len(rs), 4),
                "dropped_unwarned": len(unwarned),
                # drops the outline-quality estimate flagged ("check this outline")
                "dropped_flagged": sum(bool(r.get("check_outline")) for r in drops),
                "warned": round(sum(bool(r["warned"]) for r in rs) / len(rs), 4),
            }
        )
    return out


def _order(rows: list[dict], conditions: list[str]) -> list[dict]:
    pos = {c: i for i, c in enumerate(conditions)}
    tone = {t: i for i, t in enumerate(SKIN_TONE_ORDER)}
    return sorted(
        rows,
        key=lambda r: (
            pos.get(r.get("condition"), 99),
            tone.get(r.get("skin_tone"), 99),
            str(r.get("source", "")),
            bool(r.get("colour_constancy")),
        ),
    )


def _md_table(rows: list[dict], cols: list[str]) -> str:
    def fmt(v):
        if v is None:
            return ""
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, float):
            return f"{v:.3f}"
        return str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def report_tables(rows: list[dict], conditions: list[Perturbation]) -> dict[str, list[dict]]:
    """The summary tables: ``by_condition`` (condition x colour constancy), ``by_skin_tone``
    (skin tone x colour constancy, all conditions pooled, plus the original photos alone),
    ``by_source``, and ``skin_tone_by_condition``."""
    names = [c.name for c in conditions]
    orig = [r for r in rows if r["condition"] == "original"]
    return {
        "by_condition": _order(summarise(rows, ("condition", "group", "colour_constancy")), names),
        "by_skin_tone_original": _order(summarise(orig, ("skin_tone", "colour_constancy")), names),
        "by_skin_tone": _order(summarise(rows, ("skin_tone", "colour_constancy")), names),
        "by_source": _order(summarise(rows, ("source", "colour_constancy")), names),
        "skin_tone_by_condition": _order(
            summarise([r for r in rows if not r["colour_constancy"]], ("condition", "skin_tone")),
            names,
        ),
    }


# -- plots (OpenCV, no plotting dependency) -------------------------------------------------------

_COLOURS = ((180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214))  # BGR


def bar_chart(
    labels: list[str],
    series: dict[str, list[float | None]],
    title: str,
    *,
    lo: float = 0.0,
    hi: float = 1.0,
) -> np.ndarray:
    """Horizontal grouped bar chart as a ``(h, w, 3)`` uint8 BGR image (values in [lo, hi])."""
    n, k = len(labels), max(1, len(series))
    bar_h, gap, left, right, top = 12, 8, 170, 60, 50
    height = top + n * (k * bar_h + gap) + 40
    width = 760
    img = np.full((height, width, 3), 255, np.uint8)
    cv2.putText(img, title, (10, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    span = width - left - right

    def x_of(v: float) -> int:
        return left + int(round((min(max(v, lo), hi) - lo) / (hi - lo) * span))

    for t in np.linspace(lo, hi, 6):
        x = x_of(t)
        cv2.line(img, (x, top - 5), (x, height - 35), (225, 225, 225), 1)
        cv2.putText(
            img,
            f"{t:.2f}",
            (x - 14, height - 18),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4,
            (80, 80, 80),
            1,
            cv2.LINE_AA,
        )
    for i, lab in enumerate(labels):
        y0 = top + i * (k * bar_h + gap)
        cv2.putText(
            img,
            lab[:24],
            (8, y0 + k * bar_h // 2 + 5),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.42,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
        for j, (_, vals) in enumerate(series.items()):
            v = vals[i]
            if v is None:
                continue
            y = y0 + j * bar_h
            cv2.rectangle(img, (left, y), (x_of(v), y + bar_h - 2), _COLOURS[j % len(_COLOURS)], -1)
            cv2.putText(
                img,
                f"{v:.3f}",
                (x_of(v) + 4, y + bar_h - 3),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.36,
                (0, 0, 0),
                1,
                cv2.LINE_AA,
            )
    lx = left
    for j, name in enumerate(series):
        cv2.rectangle(img, (lx, 30), (lx + 12, 40), _COLOURS[j % len(_COLOURS)], -1)
        cv2.putText(
            img, name, (lx + 16, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA
        )
        lx += 20 + 9 * len(name)
    return img


def _png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise SkinscreenError("could not encode the plot as PNG")
    return buf.tobytes()


def _csv(rows: list[dict]) -> bytes:
    if not rows:
        return b""
    buf = io.StringIO()
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue().encode()


def _axis_lo(values: list[float | None]) -> float:
    vs = [v for v in values if v is not None]
    return max(0.0, np.floor((min(vs) - 0.05) * 10) / 10) if vs else 0.0


def build_report(
    result: RobustnessResult, conditions: list[Perturbation], *, title: str, model: str
) -> dict[str, bytes]:
    """File name -> bytes of the CSVs, the Markdown report and the two PNG plots."""
    tables = report_tables(result.rows, conditions)
    names = [c.name for c in conditions]
    by_cond = tables["by_condition"]
    series = {}
    for cc, label in ((False, "as taken"), (True, "Shades-of-Gray")):
        vals = {r["condition"]: r["dice"] for r in by_cond if r["colour_constancy"] is cc}
        if vals:
            series[label] = [vals.get(n) for n in names]
    allv = [v for s in series.values() for v in s]
    cond_png = bar_chart(names, series, f"{title}: mean Dice per condition", lo=_axis_lo(allv))
    tones = [t for t in SKIN_TONE_ORDER if any(r["skin_tone"] == t for r in result.rows)]
    tone_series = {}
    orig = {
        (r["skin_tone"], r["colour_constancy"]): r["dice"] for r in tables["by_skin_tone_original"]
    }
    pooled = {(r["skin_tone"], r["colour_constancy"]): r["dice"] for r in tables["by_skin_tone"]}
    tone_series["original photo"] = [orig.get((t, False)) for t in tones]
    tone_series["all conditions"] = [pooled.get((t, False)) for t in tones]
    if any((t, True) in orig for t in tones):
        tone_series["original + SoG"] = [orig.get((t, True)) for t in tones]
    n_by_tone = {t: len({r["id"] for r in result.rows if r["skin_tone"] == t}) for t in tones}
    tone_png = bar_chart(
        [f"{t} (n={n_by_tone[t]})" for t in tones],
        tone_series,
        f"{title}: mean Dice by skin tone (ITA)",
        lo=_axis_lo([v for s in tone_series.values() for v in s]),
    )
    cols = [
        "condition",
        "group",
        "colour_constancy",
        "n",
        "dice",
        "dice_change",
        "jaccard",
        "threshold_jaccard",
        "failure_rate",
        "dropped",
        "dropped_unwarned",
        "dropped_flagged",
        "warned",
    ]
    md = [
        f"# Robustness: {title}",
        "",
        f"Model `{model}`, {len({r['id'] for r in result.rows})} photos, prompt "
        f"`{result.rows[0]['prompt'] if result.rows else '-'}`"
        f"{_margin_note(result)}. dice_change: mean paired change "
        f"vs the original photo (same colour-constancy setting); dropped: share of photos whose "
        f"Dice fell by more than {DROP}; dropped_unwarned: how many of those had no quality "
        "warning from `skinscreen.assess`; dropped_flagged: how many of those the outline-quality "
        "estimate flagged (check_outline); warned: share of photos with any quality warning.",
        "",
        "## By condition",
        "",
        _md_table(by_cond, cols),
        "",
        "## By skin tone (ITA of the skin ring around the lesion), original photos",
        "",
        _md_table(
            tables["by_skin_tone_original"],
            [
                "skin_tone",
                "colour_constancy",
                "n",
                "dice",
                "jaccard",
                "threshold_jaccard",
                "failure_rate",
            ],
        ),
        "",
        "## By skin tone, all conditions pooled",
        "",
        _md_table(
            tables["by_skin_tone"],
            [
                "skin_tone",
                "colour_constancy",
                "n",
                "dice",
                "dice_change",
                "dropped",
                "dropped_unwarned",
            ],
        ),
        "",
        "## By source set, all conditions pooled",
        "",
        _md_table(
            tables["by_source"],
            [
                "source",
                "colour_constancy",
                "n",
                "dice",
                "dice_change",
                "dropped",
                "dropped_unwarned",
            ],
        ),
        "",
        "## Skin tone x condition (as taken)",
        "",
        _md_table(
            tables["skin_tone_by_condition"],
            ["condition", "skin_tone", "n", "dice", "dice_change", "dropped_unwarned"],
        ),
        "",
        "Condition definitions:",
        "",
        *[f"- `{c.name}` ({c.group}): {c.description}" for c in conditions],
        "",
    ]
    if result.failures:
        md += ["Failed photos:", "", *[f"- {i}: {msg}" for i, msg in result.failures], ""]
    summary_rows = [{"table": name, **r} for name, rs in tables.items() for r in rs]
    return {
        "robustness_per_image.csv": _csv(result.rows),
        "robustness_summary.csv": _csv(summary_rows),
        "robustness.md": "\n".join(md).encode(),
        "dice_by_condition.png": _png(cond_png),
        "dice_by_skin_tone.png": _png(tone_png),
    }


def _margin_note(result: RobustnessResult) -> str:
    m = result.rows[0].get("box_margin", 0.0) if result.rows else 0.0
    return f", every prompt box grown by {m:g} per side (--margin)" if m else ", raw boxes"


def json_summary(result: RobustnessResult, conditions: list[Perturbation], *, model: str) -> dict:
    """One JSON-ready object: n, n_failed, model, and the summary tables."""
    return {
        "n": len({r["id"] for r in result.rows}),
        "n_failed": len(result.failures),
        "model": model,
        "prompt": result.rows[0]["prompt"] if result.rows else None,
        "box_margin": result.rows[0].get("box_margin", 0.0) if result.rows else None,
        **report_tables(result.rows, conditions),
    }


def run_cli(
    predictor,
    pairs: list[Pair],
    *,
    images_dir: Path,
    conditions: str | None,
    prompt: str,
    colour_constancy: bool,
    seed: int,
    out_dir: Path | None,
    as_json: bool,
    progress: Callable | None = None,
    margin: float = 0.0,
    workers: int = 1,
    threads: int | None = None,
) -> list[tuple[str, str]]:
    """``skinscreen evaluate --robustness``: run the suite (over ``workers`` processes when more
    than one, :mod:`skinscreen.evaluate.parallel`; ``threads`` per worker), write the report to
    ``out_dir`` (atomically), print a JSON summary or the condition table; returns the per-photo
    failures."""
    import json

    import click

    from skinscreen.evaluate.perturbations import select
    from skinscreen.io.write import write_files_atomic

    if prompt == "gt-box-jitter":
        raise SkinscreenError(
            "--robustness has its own jitter conditions: use --prompt gt-box (or auto)"
        )
    conds = select(conditions)
    options = dict(
        prompt=prompt,
        colour_constancy=colour_constancy,
        seed=seed,
        metadata=read_metadata(images_dir),
        margin=margin,
    )
    if workers > 1:
        from skinscreen.evaluate.parallel import run_robustness_workers

        result = run_robustness_workers(
            predictor,
            pairs,
            conditions,
            workers=workers,
            threads=threads,
            progress=progress,
            **options,
        )
    else:
        result = run_robustness(predictor, pairs, conds, progress=progress, **options)
    model = predictor.spec.name
    if out_dir is not None and result.rows:
        files = build_report(
            result, conds, title=Path(images_dir).parent.name or "photos", model=model
        )
        write_files_atomic({Path(out_dir) / name: data for name, data in files.items()})
    summary = json_summary(result, conds, model=model)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        for r in summary["by_condition"]:
            cc = " +SoG" if r["colour_constancy"] else ""
            click.echo(
                f"{r['condition'] + cc:<24} n={r['n']:<4} Dice {r['dice']:.3f} "
                f"(change {r['dice_change']:+.3f}, dropped {r['dropped']:.0%}, "
                f"unwarned drops {r['dropped_unwarned']})"
            )
    return result.failures
