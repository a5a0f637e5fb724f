"""The case-history database: one SQLite file with ``lesions`` and ``visits``."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from skinscreen.errors import SkinscreenError

CASES_ENV = "SKINSCREEN_CASES"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lesions (
    id TEXT PRIMARY KEY,
    body_site TEXT,
    notes TEXT,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS visits (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    lesion_id TEXT NOT NULL REFERENCES lesions(id) ON DELETE CASCADE,
    taken TEXT NOT NULL,
    added TEXT NOT NULL,
    photo_name TEXT NOT NULL,
    photo_sha256 TEXT NOT NULL,
    photo BLOB NOT NULL,
    report TEXT NOT NULL,
    notes TEXT
);
CREATE INDEX IF NOT EXISTS visits_by_lesion ON visits (lesion_id, taken);
"""


@dataclass(frozen=True)
class LesionRecord:
    """One lesion: ``id`` chosen by the user (e.g. ``left-forearm-1``), its visits counted."""

    id: str
    body_site: str | None
    notes: str | None
    created: str
    n_visits: int
    last_visit: str | None

    def to_json_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class VisitRecord:
    """One visit: the photo (as given) and its assessment report (schema-versioned JSON)."""

    id: int
    lesion_id: str
    taken: str
    added: str
    photo_name: str
    photo_sha256: str
    report: dict
    notes: str | None

    def to_json_dict(self) -> dict:
        return dict(self.__dict__)


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def check_lesion_id(lesion_id: str) -> str:
    lid = (lesion_id or "").strip()
    if not lid or len(lid) > 200 or any(ord(c) < 32 for c in lid):
        raise SkinscreenError(
            f"lesion id {lesion_id!r} is not usable: give 1-200 printable characters, "
            "e.g. left-forearm-1"
        )
    return lid


def check_date(taken: str | None) -> str:
    if taken is None:
        return _now()
    try:
        return dt.datetime.fromisoformat(taken).isoformat()
    except ValueError:
        raise SkinscreenError(
            f"date {taken!r} is not an ISO date: give YYYY-MM-DD (or YYYY-MM-DDTHH:MM)"
        ) from None


class CaseStore:
    """The case history in one SQLite file.

    Args:
        path: the database file.
        create: make the file when it does not exist (only ``add`` creates; every other
            command refuses a missing file, so a typo never starts a new history).
    """

    def __init__(self, path: str | os.PathLike, *, create: bool = False):
        self.path = Path(path)
        if not self.path.is_file():
            if not create:
                raise SkinscreenError(
                    f"no case history at {self.path}: add a visit first "
                    "(skinscreen cases --db FILE add LESION_ID PHOTO ...)"
                )
            if not self.path.parent.is_dir():
                raise SkinscreenError(f"{self.path.parent} is not a folder: create it first")
        with self._connect() as db:
            db.executescript(_SCHEMA)
            db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            with closing(sqlite3.connect(self.path)) as db:
                db.execute("PRAGMA foreign_keys = ON")
                db.execute("PRAGMA secure_delete = ON")  # deleted rows' bytes are overwritten
                db.execute("PRAGMA journal_mode = DELETE")  # no -wal file left beside it
                with db:
                    yield db
        except sqlite3.DatabaseError as e:
            raise SkinscreenError(f"{self.path}: not a skinscreen case history ({e})") from None

    # -- writing ---------------------------------------------------------------------------------
    def add_visit(
        self,
        lesion_id: str,
        photo: bytes,
        photo_name: str,
        report: dict,
        *,
        taken: str | None = None,
        body_site: str | None = None,
        notes: str | None = None,
    ) -> VisitRecord:
        """Store a visit (the lesion is created on its first visit; a body site given later
        updates it)."""
        lid = check_lesion_id(lesion_id)
        when = check_date(taken)
        sha = hashlib.sha256(photo).hexdigest()
        added = _now()
        with self._connect() as db:
            db.execute(
                "INSERT INTO lesions (id, body_site, created) VALUES (?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET body_site = COALESCE(excluded.body_site, body_site)",
                (lid, body_site, added),
            )
            cur = db.execute(
                "INSERT INTO visits (lesion_id, taken, added, photo_name, photo_sha256, photo, "
                "report, notes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (lid, when, added, photo_name, sha, photo, json.dumps(report), notes),
            )
            vid = int(cur.lastrowid)
        return VisitRecord(vid, lid, when, added, photo_name, sha, report, notes)

    def delete_lesion(self, lesion_id: str) -> int:
        """Remove a lesion and every visit of it; returns the number of visits removed."""
        lid = check_lesion_id(lesion_id)
        with self._connect() as db:
            n = db.execute("SELECT COUNT(*) FROM visits WHERE lesion_id = ?", (lid,)).fetchone()[0]
            gone = db.execute("DELETE FROM lesions WHERE id = ?", (lid,)).rowcount
        if not gone:
            raise SkinscreenError(f"no lesion {lid!r} in {self.path} (see: skinscreen cases list)")
        self._vacuum()
        return int(n)

    def delete_visit(self, visit_id: int) -> None:
        with self._connect() as db:
            gone = db.execute("DELETE FROM visits WHERE id = ?", (int(visit_id),)).rowcount
        if not gone:
            raise SkinscreenError(f"no visit {visit_id} in {self.path}")
        self._vacuum()

    def _vacuum(self) -> None:
        with closing(sqlite3.connect(self.path)) as db:
            db.execute("VACUUM")

    # -- reading ---------------------------------------------------------------------------------
    def lesions(self, search: str | None = None) -> list[LesionRecord]:
        """Every lesion (or those whose id, body site or notes contain ``search``), by id."""
        sql = (
            "SELECT l.id, l.body_site, l.notes, l.created, COUNT(v.id), MAX(v.taken) "
            "FROM lesions l LEFT JOIN visits v ON v.lesion_id = l.id"
        )
        args: tuple = ()
        if search:
            sql += " WHERE l.id LIKE ? OR l.body_site LIKE ? OR l.notes LIKE ? OR v.notes LIKE ?"
            args = (f"%{search}%",) * 4
        sql += " GROUP BY l.id ORDER BY l.id"
        with self._connect() as db:
            return [LesionRecord(*row) for row in db.execute(sql, args)]

    def visits(self, lesion_id: str) -> list[VisitRecord]:
        """The visits of one lesion, oldest first."""
        lid = check_lesion_id(lesion_id)
        with self._connect() as db:
            rows = db.execute(
                "SELECT id, lesion_id, taken, added, photo_name, photo_sha256, report, notes "
                "FROM visits WHERE lesion_id = ? ORDER BY taken, id",
                (lid,),
            ).fetchall()
        if not rows and not any(les.id == lid for les in self.lesions()):
            raise SkinscreenError(f"no lesion {lid!r} in {self.path} (see: skinscreen cases list)")
        return [
            VisitRecord(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[7]) for r in rows
        ]

    def photo(self, visit_id: int) -> bytes:
        """The photo of a visit, as it was given (for comparing with a later one)."""
        with self._connect() as db:
            row = db.execute("SELECT photo FROM visits WHERE id = ?", (int(visit_id),)).fetchone()
        if row is None:
            raise SkinscreenError(f"no visit {visit_id} in {self.path}")
        return bytes(row[0])

    def rows(self) -> list[dict]:
        """One flat row per visit (lesion, date and the report's headline features): the CSV
        export."""
        from skinscreen.report.build import flat_row
        from skinscreen.report.schema import LesionReport

        out = []
        for les in self.lesions():
            for v in self.visits(les.id):
                row = {"lesion_id": les.id, "body_site": les.body_site, "visit": v.id}
                row["taken"] = v.taken
                row.update(flat_row(LesionReport.model_validate(v.report)))
                out.append(row)
        return out


def open_store(path: str | os.PathLike | None, *, create: bool = False) -> CaseStore:
    """The case history at ``path`` (None: ``$SKINSCREEN_CASES``); an error when neither is
    given, because the history is opt-in."""
    path = path or os.environ.get(CASES_ENV)
    if not path:
        raise SkinscreenError(
            "the case history is off (it is opt-in): give --db FILE (or set "
            f"{CASES_ENV}) to keep lesions and visits in a file you choose"
        )
    return CaseStore(path, create=create)
