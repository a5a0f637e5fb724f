"""Every model asset is verified before use; a failed check is a clear error, never a fallback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from skinscreen.auto.learned import LOCALISER_SHA256, _asset, _verified_asset
from skinscreen.cli.main import main
from skinscreen.engine.bundle import MANIFEST, bundle_path, open_bundle, sha256_file
from skinscreen.errors import BundleError
from skinscreen.paths import bundle_dir
from skinscreen.spec import get_spec

PHOTO = Path(__file__).resolve().parents[1] / "examples" / "images" / "ISIC_0012099.jpg"


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    out, err = capsys.readouterr()
    return e.value.code, out, err


def test_pinned_localiser_hashes_match_the_shipped_files():
    for name, digest in LOCALISER_SHA256.items():
        assert sha256_file(_asset(name)) == digest, name


def test_registry_pins_the_student_and_the_box_check_decoder():
    assert len(get_spec("skinscreen-student-v1").checkpoint.sha256) == 64
    assert len(get_spec("litemedsam-boxaug").extra["decoder_weights"]["sha256"]) == 64


def test_a_modified_or_truncated_localiser_is_refused(tmp_path):
    src = _asset("litemedsam-localiser.onnx")
    bad = tmp_path / src.name
    data = bytearray(src.read_bytes())
    data[len(data) // 2] ^= 0x01
    bad.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="sha256"):
        _verified_asset(bad)
    bad.write_bytes(src.read_bytes()[:1000])
    with pytest.raises(BundleError, match="sha256"):
        _verified_asset(bad)
    other = tmp_path / "unknown-localiser.onnx"
    other.write_bytes(b"x")
    with pytest.raises(BundleError, match="no pinned sha256"):
        _verified_asset(other)


def _bundle_copy(tmp_path: Path, model: str = "litemedsam") -> Path:
    """A bundle folder whose files link to the cached bundle's and whose manifest is a copy."""
    src = bundle_dir(model)
    dst = tmp_path / model
    dst.mkdir(parents=True)
    for p in src.iterdir():
        if p.name != MANIFEST:
            (dst / p.name).symlink_to(p)
    shutil.copy(src / MANIFEST, dst / MANIFEST)
    return dst


@pytest.mark.parametrize(
    "rel", ["../../../../etc/passwd", "/etc/passwd", "onnx-int8/../../x.onnx", "", 7]
)
def test_manifest_paths_are_confined_to_the_bundle(tmp_path, rel):
    with pytest.raises(BundleError):
        bundle_path(tmp_path, rel)


def test_a_traversing_manifest_is_refused_by_the_cli(tmp_path, capsys):
    root = _bundle_copy(tmp_path)
    m = json.loads((root / MANIFEST).read_text())
    m["variants"][m["default_variant"]]["files"]["encoder"]["path"] = "../../../../etc/hostname"
    (root / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(BundleError, match="outside the bundle folder"):
        open_bundle(root=root)
    out_dir = tmp_path / "out"
    code, _, err = run_cli(
        [
            "segment",
            str(PHOTO),
            "--box",
            "400,150,610,450",
            "--bundle",
            str(root),
            "--out",
            str(out_dir),
        ],
        capsys,
    )
    assert code == 1 and "outside the bundle folder" in err and "Traceback" not in err
    assert not out_dir.exists() or not any(out_dir.iterdir())


@pytest.mark.parametrize(
    "manifest", ["{not json", "[]", '{"variants": {}, "default_variant": "x"}', '"text"']
)
def test_a_broken_box_check_manifest_is_an_error_not_check_off(
    tmp_path, monkeypatch, capsys, manifest
):
    home = tmp_path / "home"
    (home / "bundles").mkdir(parents=True)
    (home / "bundles" / "litemedsam").symlink_to(bundle_dir("litemedsam"))
    boxaug = _bundle_copy(home / "bundles", "litemedsam-boxaug")
    (boxaug / MANIFEST).write_text(manifest)
    monkeypatch.setenv("SKINSCREEN_HOME", str(home))
    monkeypatch.setenv("SKINSCREEN_OPENVINO_CACHE", "0")
    code, _, err = run_cli(["segment", str(PHOTO), "--box", "400,150,610,450", "--json"], capsys)
    assert code == 1 and "malformed" in err and "Traceback" not in err, err


def test_a_tampered_box_check_decoder_is_an_error(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    (home / "bundles").mkdir(parents=True)
    (home / "bundles" / "litemedsam").symlink_to(bundle_dir("litemedsam"))
    boxaug = _bundle_copy(home / "bundles", "litemedsam-boxaug")
    m = json.loads((boxaug / MANIFEST).read_text())
    dec = m["variants"][m["default_variant"]]["files"]["decoder"]
    dec["sha256"] = "0" * 64
    (boxaug / MANIFEST).write_text(json.dumps(m))
    monkeypatch.setenv("SKINSCREEN_HOME", str(home))
    code, _, err = run_cli(["segment", str(PHOTO), "--box", "400,150,610,450", "--json"], capsys)
    assert code == 1 and "sha256 mismatch" in err, err
