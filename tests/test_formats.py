"""Exchange formats (docs/formats.md): DICOM in, DICOM SEG / COCO RLE / GeoJSON / FHIR out, and
model cards, checked with the field's own readers and validators (pydicom, highdicom, dciodvfy,
pycocotools, shapely, scikit-image, fhir.resources, PyYAML)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys

import numpy as np
import pydicom
import pytest
import yaml

from skinscreen.errors import ImageError, SkinscreenError
from skinscreen.io.dicom import dicom_identifiers, dicom_mm_per_pixel, is_dicom
from skinscreen.io.image import load_image, load_mask
from skinscreen.preprocess.transforms import box_from_mask
from skinscreen.report.formats import coco, dicom_seg, fhir, geojson

from .conftest import EXAMPLES, ROOT

SKINSCREEN = [sys.executable, "-m", "skinscreen"]
SPACING = 0.0125  # mm per pixel stated by the test DICOM
SECRET = "PAT-SECRET-4711"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SKINSCREEN, *args], capture_output=True, text=True, cwd=ROOT, timeout=600
    )


def dciodvfy_errors(path) -> list[str]:
    """dciodvfy's Error lines (Debian's dicom3tools); skip when it is not installed."""
    exe = shutil.which("dciodvfy")
    if exe is None:
        pytest.skip("dciodvfy (Debian package dicom3tools) is not installed")
    r = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=60)
    return [ln for ln in (r.stdout + r.stderr).splitlines() if ln.startswith("Error")]


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.logical_and(a, b).sum() / max(int(a.sum() + b.sum()), 1)


def photo_dicom(path, photo, *, spacing=SPACING, patient_id=SECRET) -> None:
    """A sample photo as a DICOM Secondary Capture with a stated pixel spacing and patient ID."""
    sc = dicom_seg.secondary_capture(photo, mm_per_pixel=spacing, description="test photo")
    sc.PatientID = patient_id
    sc.PatientName = "Test^Patient"
    path.write_bytes(dicom_seg.to_bytes(sc))


@pytest.fixture(scope="module")
def samples(sample_pairs):
    return [(p.stem, load_image(p), load_mask(m)) for p, m in sample_pairs]


# --- DICOM SEG ---------------------------------------------------------------------------------


def test_dicom_seg_round_trip_is_identical_and_valid(tmp_path, samples):
    import highdicom as hd

    for i, (stem, photo, mask) in enumerate(samples):
        spacing = SPACING if i % 2 else None  # with and without a stated spacing
        source = dicom_seg.secondary_capture(photo, mm_per_pixel=spacing, description=stem)
        alg = dicom_seg.Algorithm("litemedsam", variant="onnx-int8")
        seg = dicom_seg.segmentation(source, mask, fractional=False, algorithm=alg)
        data = dicom_seg.to_bytes(seg)
        assert np.array_equal(dicom_seg.read_segment(data), mask), stem
        ds = pydicom.dcmread(io.BytesIO(data))
        assert ds.SOPClassUID == pydicom.uid.SegmentationStorage
        assert ds.SegmentationType == "BINARY"
        ref = ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0]
        assert ref.ReferencedSOPInstanceUID == source.SOPInstanceUID
        assert ds.StudyInstanceUID == source.StudyInstanceUID
        item = ds.SegmentSequence[0]
        assert item.SegmentLabel == "lesion" and item.SegmentAlgorithmType == "AUTOMATIC"
        algo = item.SegmentationAlgorithmIdentificationSequence[0]
        assert algo.AlgorithmName == "litemedsam" and algo.AlgorithmVersion
        assert "onnx-int8" in algo.AlgorithmParameters
        if spacing is None:  # highdicom's reader (it wants a slice thickness with a spacing)
            back = hd.seg.segread(io.BytesIO(data)).get_pixels_by_source_instance(
                source_sop_instance_uids=[source.SOPInstanceUID], segment_numbers=[1]
            )
            assert np.array_equal(back[0, ..., 0].astype(bool), mask)
        else:
            measures = ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
            assert [float(v) for v in measures.PixelSpacing] == [spacing, spacing]
        if i == 0:
            (tmp_path / "seg.dcm").write_bytes(data)
            (tmp_path / "source.dcm").write_bytes(dicom_seg.to_bytes(source))
            assert dciodvfy_errors(tmp_path / "seg.dcm") == []
            assert dciodvfy_errors(tmp_path / "source.dcm") == []


def test_fractional_seg_keeps_the_probability_map(tmp_path, samples):
    _, photo, mask = samples[0]
    rng = np.random.default_rng(0)
    prob = np.clip(mask * 0.8 + rng.random(mask.shape) * 0.2, 0, 1).astype(np.float32)
    source = dicom_seg.secondary_capture(photo, mm_per_pixel=None, description="p")
    seg = dicom_seg.segmentation(
        source, prob, fractional=True, algorithm=dicom_seg.Algorithm("litemedsam")
    )
    data = dicom_seg.to_bytes(seg)
    back = dicom_seg.read_segment(data)
    assert pydicom.dcmread(io.BytesIO(data)).SegmentationType == "FRACTIONAL"
    assert np.abs(back - prob).max() <= 0.5 / 255 + 1e-6
    (tmp_path / "prob.dcm").write_bytes(data)
    assert dciodvfy_errors(tmp_path / "prob.dcm") == []


# --- COCO RLE and GeoJSON ----------------------------------------------------------------------


def test_coco_rle_round_trip_is_identical(samples):
    from pycocotools import mask as mask_api

    for stem, _, mask in samples:
        doc = json.loads(json.dumps(coco.coco_document(mask, file_name=f"{stem}.jpg")))
        ann = doc["annotations"][0]
        rle = {"size": ann["segmentation"]["size"], "counts": ann["segmentation"]["counts"]}
        decoded = mask_api.decode({**rle, "counts": rle["counts"].encode()}).astype(bool)
        assert np.array_equal(decoded, mask), stem
        assert ann["area"] == int(mask.sum())
        ys, xs = np.nonzero(mask)
        assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        assert doc["images"][0]["width"] == mask.shape[1]


def test_geojson_polygon_rasterises_back_to_the_mask(samples):
    import shapely
    from skimage.draw import polygon2mask

    for stem, _, mask in samples:
        doc = json.loads(json.dumps(geojson.feature_collection(mask, properties={})))
        geom = shapely.geometry.shape(doc["features"][0]["geometry"])
        assert geom.is_valid and geom.area == pytest.approx(mask.sum())
        # an independent rasteriser (scikit-image, pixel centres) on the exterior rings, holes out
        polys = list(getattr(geom, "geoms", [geom]))
        raster = np.zeros(mask.shape, dtype=bool)
        for p in polys:
            ring = np.asarray(p.exterior.coords) - 0.5  # pixel-edge coords -> centre indices
            raster |= polygon2mask(mask.shape, ring[:, ::-1])
            for hole in p.interiors:
                raster &= ~polygon2mask(mask.shape, (np.asarray(hole.coords) - 0.5)[:, ::-1])
        assert dice(raster, mask) >= 0.99, stem
        assert np.array_equal(geojson.rasterise(geom, mask.shape), mask), stem


# --- FHIR --------------------------------------------------------------------------------------


def test_fhir_observation_validates_as_r4(samples):
    from fhir.resources.R4B.observation import Observation

    from skinscreen.assess.scale import Scale
    from skinscreen.report.build import assess_image

    stem, photo, mask = samples[0]
    report = assess_image(photo, mask, scale=Scale(0.02, "user"), image_name=f"{stem}.jpg").report
    d = report.model_dump(mode="json")
    doc = fhir.observation(d, body_site="SCT:14975008:Forearm skin")
    obs = Observation.model_validate(doc)
    assert obs.status == "preliminary"
    assert doc["bodySite"]["coding"][0] == {
        "system": fhir.SNOMED,
        "code": "14975008",
        "display": "Forearm skin",
    }
    comps = {c["code"]["coding"][0]["code"]: c for c in doc["component"]}
    assert comps["area-mm2"]["valueQuantity"]["value"] == pytest.approx(d["area_mm2"], abs=1e-4)
    assert comps["area-mm2"]["valueQuantity"]["code"] == "mm2"
    assert comps["abrupt-border-octants"]["valueInteger"] == d["border"]["abrupt_octants"]
    assert "subject" not in doc and "derivedFrom" not in doc
    with_ids = fhir.observation(
        d,
        body_site="left forearm",
        identifiers={"patient_id": SECRET, "study_instance_uid": "1.2.3"},
    )
    assert with_ids["subject"]["identifier"]["value"] == SECRET
    assert with_ids["bodySite"] == {"text": "left forearm"}
    for bad in (
        {**doc, "status": "not-a-status"},
        {**doc, "component": [{"valueInteger": 1}]},  # a component without its code
        {**doc, "issued": "yesterday"},
    ):
        with pytest.raises(SkinscreenError, match="does not validate"):
            fhir.validate(bad)


# --- DICOM in ----------------------------------------------------------------------------------


def test_dicom_photos_load_like_the_jpeg(tmp_path, samples):
    import highdicom as hd

    stem, photo, _ = samples[0]
    p = tmp_path / "photo.dcm"
    photo_dicom(p, photo)
    assert is_dicom(p) and is_dicom(p.read_bytes())
    assert np.array_equal(load_image(p), photo)
    assert np.array_equal(load_image(p.read_bytes()), photo)
    assert dicom_mm_per_pixel(p) == pytest.approx(SPACING)
    ids = dicom_identifiers(p)
    assert ids["patient_id"] == SECRET and ids["study_instance_uid"]
    # JPEG-compressed DICOM (JPEG baseline, YBR_FULL_422): decoded by the extra's handlers
    sc = hd.sc.SCImage(
        pixel_array=photo, photometric_interpretation="YBR_FULL_422", bits_allocated=8,
        coordinate_system="PATIENT", study_instance_uid=hd.UID(), series_instance_uid=hd.UID(),
        series_number=1, sop_instance_uid=hd.UID(), instance_number=1, manufacturer="test",
        patient_orientation=("L", "F"), transfer_syntax_uid=pydicom.uid.JPEGBaseline8Bit,
    )  # fmt: skip
    jpeg_dcm = dicom_seg.to_bytes(sc)
    got = load_image(jpeg_dcm)
    assert got.shape == photo.shape
    assert np.abs(got.astype(int) - photo).mean() < 2.0  # JPEG loss only; colours in RGB order
    # non-square pixels: no single mm-per-pixel
    sc2 = dicom_seg.secondary_capture(photo, mm_per_pixel=0.01, description="x")
    sc2.PixelSpacing = [0.01, 0.02]
    (tmp_path / "aniso.dcm").write_bytes(dicom_seg.to_bytes(sc2))
    assert dicom_mm_per_pixel(tmp_path / "aniso.dcm") is None
    assert dicom_mm_per_pixel(EXAMPLES / "images" / f"{stem}.jpg") is None


def structured_report(path) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = pydicom.uid.BasicTextSRStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.Modality = "SR"
    ds.save_as(path, enforce_file_format=True)


def test_non_image_and_corrupt_dicom_are_refused(tmp_path, samples):
    structured_report(tmp_path / "sr.dcm")
    with pytest.raises(ImageError, match="no pixel data, not an image"):
        load_image(tmp_path / "sr.dcm")
    photo_dicom(tmp_path / "ok.dcm", samples[0][1])
    data = (tmp_path / "ok.dcm").read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="cannot decode the DICOM pixel data"):
        load_image(tmp_path / "cut.dcm")
    (tmp_path / "junk.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 40)
    with pytest.raises(ImageError, match="DICOM"):
        load_image(tmp_path / "junk.dcm")


# --- CLI end to end ----------------------------------------------------------------------------


def test_assess_dicom_reports_mm_without_a_flag(tmp_path, sample_pairs, samples):
    """The DICOM's pixel spacing gives the same figures as the JPEG with --mm-per-pixel; every
    format is written and valid; identifiers only where asked, never on stdout/stderr."""
    img, mask_path = sample_pairs[0]
    stem, photo, _ = samples[0]
    dcm = tmp_path / f"{stem}.dcm"
    photo_dicom(dcm, photo)
    box = ",".join(f"{v:g}" for v in box_from_mask(load_mask(mask_path)))
    out = tmp_path / "out"
    formats = "png,dicom-seg,dicom-seg-fractional,coco,geojson,fhir"
    a = run(
        "assess", str(dcm), "--box", box, "--json", "--out", str(out), "--format", formats,
        "--body-site", "left forearm", "--identifiers", "--threads", "2",
    )  # fmt: skip
    assert a.returncode == 0, a.stderr
    # the JPEG, measured on the same outline (no second model run) with the flag
    b = run(
        "assess", str(img), "--mask", str(out / f"{stem}_mask.png"), "--mm-per-pixel",
        str(SPACING), "--json",
    )  # fmt: skip
    assert b.returncode == 0, b.stderr
    da, db = json.loads(a.stdout), json.loads(b.stdout)
    assert da["scale"] == {"mm_per_pixel": SPACING, "source": "dicom"}
    assert db["scale"] == {"mm_per_pixel": SPACING, "source": "user"}
    for key in ("area_px", "area_mm2", "perimeter_mm", "diameter_max_mm", "diameter_equivalent_mm"):
        assert da[key] == db[key], key
    for key in ("asymmetry", "border", "colors", "ita_deg", "diameter_over_6mm"):
        assert da[key] == db[key], key
    assert SECRET not in a.stdout + a.stderr
    names = {p.name for p in out.iterdir()}
    for n in ("_mask.png", "_seg.dcm", "_prob_seg.dcm", ".coco.json", ".geojson", ".fhir.json"):
        assert f"{stem}{n}" in names, n
    assert f"{stem}_source.dcm" not in names  # the input itself is the SEG's source
    seg = pydicom.dcmread(out / f"{stem}_seg.dcm")
    src = pydicom.dcmread(dcm, stop_before_pixels=True)
    ref = seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0]
    assert ref.ReferencedSOPInstanceUID == src.SOPInstanceUID
    assert seg.StudyInstanceUID == src.StudyInstanceUID and seg.PatientID == SECRET
    algo = seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert algo.AlgorithmName == "litemedsam"
    assert "weights_sha256=" in algo.AlgorithmParameters and "variant=" in algo.AlgorithmParameters
    got = dicom_seg.read_segment((out / f"{stem}_seg.dcm").read_bytes())
    assert np.array_equal(got, load_mask(out / f"{stem}_mask.png"))
    assert dciodvfy_errors(out / f"{stem}_seg.dcm") == []
    assert dciodvfy_errors(out / f"{stem}_prob_seg.dcm") == []
    obs = json.loads((out / f"{stem}.fhir.json").read_text())
    fhir.validate(obs)
    assert obs["subject"]["identifier"]["value"] == SECRET
    assert obs["bodySite"] == {"text": "left forearm"}
    assert SECRET not in (out / f"{stem}.json").read_text()


def test_cli_refuses_bad_dicom_and_writes_nothing(tmp_path, samples):
    stem, photo, mask = samples[0]
    structured_report(tmp_path / "report.dcm")
    out = tmp_path / "out"
    r = run("assess", str(tmp_path / "report.dcm"), "--mask", str(tmp_path), "--out", str(out))
    assert r.returncode == 1
    assert "no pixel data, not an image" in r.stderr
    assert not out.exists()
    # a batch: the corrupt DICOM fails, the good JPEG's coco/geojson (and no png) are written
    photo_dicom(tmp_path / "ok.dcm", photo)
    data = (tmp_path / "ok.dcm").read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[: len(data) // 2])
    img = EXAMPLES / "images" / f"{stem}.jpg"
    r = run(
        "segment", str(img), str(tmp_path / "cut.dcm"), "--out", str(out),
        "--format", "coco,geojson", "--threads", "2",
    )  # fmt: skip
    assert r.returncode == 1
    assert "cannot decode the DICOM pixel data" in r.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{stem}.coco.json", f"{stem}.geojson", f"{stem}.json", f"{stem}_overlay.png"]
    )
    rec = json.loads((out / f"{stem}.json").read_text())
    doc = json.loads((out / f"{stem}.coco.json").read_text())
    assert doc["annotations"][0]["area"] == rec["area_px"]
    r = run("segment", str(img), "--format", "png,tiff")
    assert r.returncode == 2 and "unknown format" in r.stderr


def test_model_cards():
    from skinscreen.modelcard import render_card
    from skinscreen.spec import REGISTRY

    for name in REGISTRY:
        card = render_card(name)
        assert card.startswith("---\n")
        meta = yaml.safe_load(card.split("---\n")[1])
        assert meta["library_name"] == "skinscreen" and meta["license"]
        assert meta["model-index"][0]["name"] == name
        for section in ("Intended use", "Training data and licences", "Measured accuracy"):
            assert f"## {section}" in card
        assert "## Known failure modes" in card and "never a diagnosis" in card
    meta = yaml.safe_load(render_card("litemedsam").split("---\n")[1])
    groups = {r["dataset"]["split"] for r in meta["model-index"][0]["results"]}
    assert {"brown (ITA)", "dark (ITA)", "very light (ITA)"} <= groups
    assert yaml.safe_load(render_card("litemedsam-boxaug").split("---\n")[1])["license"] == "other"
    r = run("models", "--card", "litemedsam")
    assert r.returncode == 0 and r.stdout == render_card("litemedsam")
    assert run("models", "--card", "nope").returncode == 2
