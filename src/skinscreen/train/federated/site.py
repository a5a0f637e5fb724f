"""One site's data: its labelled photos, a patient-grouped held-out split, cached embeddings.

A site folder holds ``images/<id>.jpg|png`` and ``masks/<id>.png`` (or ``<id>_segmentation.png``),
like lesions-dev. Embeddings are computed on the site's own machine with the frozen encoder and
kept in its embedding cache (default ``$SKINSCREEN_HOME/distill-cache``); a photo or mask that
cannot be read is reported (id and reason, locally) and left out, the rest go on.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from skinscreen.errors import SkinscreenError
from skinscreen.evaluate.dataset import find_pairs
from skinscreen.io.image import load_mask
from skinscreen.train.cache import build_cache, cache_root, default_cache_dir
from skinscreen.train.finetune import Example, cached_examples, group_of, grouped_folds


@dataclass
class SiteData:
    """A site's cached training and held-out examples (view 0 and mirrors)."""

    name: str
    train: list[Example]
    test: list[Example]
    n_photos: int
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def n_train_photos(self) -> int:
        return len({e.id for e in self.train})

    @property
    def n_test_photos(self) -> int:
        return len({e.id for e in self.test})


def site_split(ids: list[str], holdout_folds: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """(train ids, held-out ids): held-out = fold 0 of a patient-grouped ``holdout_folds``-fold
    split (1/k of the patients); ``holdout_folds`` 0 (or fewer patient groups than k): no
    held-out part, the photos are all for training."""
    groups = {group_of(i) for i in ids}
    if holdout_folds < 2 or len(groups) < holdout_folds:
        return sorted(ids), []
    return grouped_folds(ids, holdout_folds, seed)[0]


def load_site(
    data_dir: Path,
    teacher,
    views: int = 2,
    holdout_folds: int = 5,
    cache_dir: Path | None = None,
    seed: int = 0,
    progress: bool = False,
    name: str | None = None,
) -> SiteData:
    """Compute the missing embeddings of ``data_dir``'s photos and return its examples.

    Unreadable photos or masks are skipped with a message on stderr; raises when nothing usable
    is left."""
    data_dir = Path(data_dir)
    pairs = find_pairs(data_dir / "images", data_dir / "masks")
    root = cache_root(cache_dir or default_cache_dir(), teacher.spec.name, seed)
    good, skipped = [], []
    for p in pairs:
        try:
            load_mask(p.mask)
            build_cache(teacher, [p.image], root, views, seed, progress=False)
            good.append(p)
        except Exception as e:  # one bad photo must not stop the site
            reason = f"{type(e).__name__}: {e}"
            skipped.append((p.id, reason))
            print(f"skinscreen federate: skipping {p.image.name}: {reason}", file=sys.stderr)
    if not good:
        raise SkinscreenError(f"{data_dir}: no readable labelled photo")
    train_ids, test_ids = site_split([p.id for p in good], holdout_folds, seed)
    masks = {p.id: p.mask for p in good}
    ex = cached_examples(root, masks, views)
    tr, te = set(train_ids), set(test_ids)
    return SiteData(
        name=name or data_dir.name,
        train=[e for e in ex if e.id in tr],
        test=[e for e in ex if e.id in te and e.view == 0],
        n_photos=len(good),
        skipped=skipped,
    )
