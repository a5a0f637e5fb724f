"""The opt-in case history: create, revisit, search, export, delete (nothing left on disk)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

from skinscreen.cases import CaseStore, open_store
from skinscreen.errors import SkinscreenError
from skinscreen.report.build import segment_and_assess

from .conftest import EXAMPLES

PHOTO = EXAMPLES / "images" / "ISIC_0012099.jpg"
BOX = [400, 150, 610, 450]


def cli(*args: str, db) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "skinscreen", "cases", "--db", str(db), *args],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_history_is_off_unless_a_file_is_named(monkeypatch, tmp_path):
    monkeypatch.delenv("SKINSCREEN_CASES", raising=False)
    with pytest.raises(SkinscreenError, match="opt-in"):
        open_store(None)
    with pytest.raises(SkinscreenError, match="no case history"):
        open_store(tmp_path / "missing.db")  # only adding a visit creates the file
    assert not (tmp_path / "missing.db").exists()


def test_create_revisit_search_export_and_delete_completely(predictor, tmp_path):
    db = tmp_path / "cases.db"
    store = CaseStore(db, create=True)
    photo = PHOTO.read_bytes()
    report = segment_and_assess(predictor, PHOTO, box=BOX, mm_per_pixel=0.02).report
    first = store.add_visit(
        "left-forearm-1", photo, PHOTO.name, report.model_dump(mode="json"),
        taken="2026-03-01", body_site="left forearm", notes="baseline",
    )  # fmt: skip
    second = store.add_visit(
        "left-forearm-1", photo, PHOTO.name, report.model_dump(mode="json"), taken="2026-09-01"
    )
    store.add_visit("back-2", photo, PHOTO.name, report.model_dump(mode="json"), body_site="back")

    lesions = {les.id: les for les in store.lesions()}
    assert set(lesions) == {"left-forearm-1", "back-2"}
    assert lesions["left-forearm-1"].n_visits == 2
    assert lesions["left-forearm-1"].body_site == "left forearm"  # kept on the revisit
    assert [les.id for les in store.lesions("forearm")] == ["left-forearm-1"]
    assert [les.id for les in store.lesions("baseline")] == ["left-forearm-1"]
    visits = store.visits("left-forearm-1")
    assert [v.id for v in visits] == [first.id, second.id]  # oldest first
    assert visits[0].report == report.model_dump(mode="json")
    assert store.photo(first.id) == photo  # what compare-over-time reads back

    rows = store.rows()
    assert len(rows) == 3 and {"lesion_id", "taken", "diameter_max_mm"} <= set(rows[0])
    assert rows[0]["diameter_max_mm"] == pytest.approx(report.diameter_max_mm)

    assert store.delete_lesion("left-forearm-1") == 2
    assert [les.id for les in store.lesions()] == ["back-2"]
    with pytest.raises(SkinscreenError, match="no lesion"):
        store.visits("left-forearm-1")
    raw = db.read_bytes()
    assert b"left-forearm-1" not in raw and b"baseline" not in raw
    store.delete_lesion("back-2")
    raw = db.read_bytes()
    assert photo[1000:1064] not in raw  # no photo bytes left in the file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cases.db"]  # no journal left beside it


def test_cli_add_show_export_delete(tmp_path):
    db = tmp_path / "cases.db"
    r = cli("add", "mole-1", str(PHOTO), "--box", ",".join(map(str, BOX)),
            "--mm-per-pixel", "0.02", "--date", "2026-01-05", "--json", db=db)  # fmt: skip
    assert r.returncode == 0, r.stderr
    visit = json.loads(r.stdout)
    assert visit["lesion_id"] == "mole-1" and visit["report"]["schema_version"]
    r = cli("show", "mole-1", db=db)
    assert r.returncode == 0 and "mm" in r.stdout
    r = cli("export", db=db)
    assert r.returncode == 0
    assert [row["lesion_id"] for row in csv.DictReader(io.StringIO(r.stdout))] == ["mole-1"]
    r = cli("delete", "mole-1", db=db)
    assert r.returncode == 0 and "1 visit" in r.stdout
    r = cli("show", "mole-1", db=db)
    assert r.returncode == 1 and "no lesion" in r.stderr and "Traceback" not in r.stderr
    fresh = tmp_path / "new.db"
    r = cli("add", "mole-1", str(PHOTO), "--date", "not-a-date", db=fresh)
    assert r.returncode == 1 and "ISO date" in r.stderr
    assert not fresh.exists()  # nothing half-made
