"""SOURCE -> the sorted list of photos to process (no Ray here).

A SOURCE is one photo, a folder (the image files directly inside it), a Parquet table with a path column,
a CSV file with a header holding a path column, or a text list (one path per line; blank lines
and ``#`` comments ignored). Relative paths in a list or table are relative to the list's folder.
An optional ``mask`` column (CSV/Parquet) gives ``batch evaluate`` each photo's expert mask.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from skinscreen.cli.common import IMAGE_SUFFIXES
from skinscreen.errors import SkinscreenError


@dataclass(frozen=True)
class Item:
    """One photo: ``id`` (the file stem, which names its outputs), its path, and an optional
    expert mask path (``batch evaluate``)."""

    id: str
    path: str
    mask: str | None = None


def _resolve(value: str, base: Path) -> str:
    p = Path(value.strip()).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def _from_columns(paths: list, masks: list | None, base: Path, source: Path) -> list[Item]:
    items = []
    for i, value in enumerate(paths):
        if value is None or not str(value).strip():
            raise SkinscreenError(f"{source}: row {i + 1} has an empty path")
        mask = masks[i] if masks is not None else None
        items.append(
            Item(
                Path(str(value).strip()).stem,
                _resolve(str(value), base),
                _resolve(str(mask), base) if mask not in (None, "") else None,
            )
        )
    return items


def read_source(source: Path, path_column: str = "path") -> list[Item]:
    """The photos of ``source``, sorted by id; raises :class:`SkinscreenError` on an empty
    source, a missing path column, or two photos with the same file stem (their outputs,
    ``<stem>_mask.png`` ..., would overwrite each other)."""
    source = Path(source)
    if source.is_dir():
        items = [
            Item(p.stem, str(p.resolve()))
            for p in sorted(source.iterdir())
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        ]
    elif not source.is_file():
        raise SkinscreenError(f"{source}: no such folder or file")
    elif source.suffix.lower() in IMAGE_SUFFIXES or source.suffix.lower() == ".dcm":
        items = [Item(source.stem, str(source.resolve()))]  # one photo
    elif source.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        names = pq.read_schema(source).names
        if path_column not in names:
            raise SkinscreenError(
                f"{source}: no column {path_column!r} (columns: {', '.join(names)}); "
                "name the photo column with --path-column"
            )
        cols = [path_column] + (["mask"] if "mask" in names else [])
        table = pq.read_table(source, columns=cols).to_pydict()
        items = _from_columns(table[path_column], table.get("mask"), source.parent, source)
    elif source.suffix.lower() in (".csv", ".tsv"):
        with open(source, newline="") as f:
            dialect = "excel-tab" if source.suffix.lower() == ".tsv" else "excel"
            rows = list(csv.DictReader(f, dialect=dialect))
        header = list(rows[0]) if rows else []
        if path_column not in header:
            raise SkinscreenError(
                f"{source}: the header has no {path_column!r} column (columns: "
                f"{', '.join(header) or 'none'}); name it with --path-column, or give a plain "
                "text list (one path per line, .txt)"
            )
        masks = [r.get("mask") for r in rows] if "mask" in header else None
        items = _from_columns([r[path_column] for r in rows], masks, source.parent, source)
    else:
        try:
            text = source.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise SkinscreenError(
                f"{source}: not a photo, a folder or a list of paths: give a folder, a Parquet or "
                "CSV table with a path column, or a text file with one path per line"
            ) from None
        lines = [ln.strip() for ln in text.splitlines()]
        lines = [ln for ln in lines if ln and not ln.startswith("#")]
        items = _from_columns(lines, None, source.parent, source)
    if not items:
        raise SkinscreenError(
            f"{source}: no photos ({', '.join(sorted(IMAGE_SUFFIXES))} files, or rows of a list)"
        )
    dup = [k for k, n in Counter(it.id for it in items).items() if n > 1]
    if dup:
        raise SkinscreenError(
            f"{source}: {len(dup)} file name(s) occur twice (e.g. {sorted(dup)[0]!r}): outputs are "
            "named by file stem, so every photo needs its own; rename or split the list"
        )
    return sorted(items, key=lambda it: it.id)
