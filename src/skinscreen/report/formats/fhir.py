"""A FHIR R4 Observation of one lesion assessment, built and validated with fhir.resources.

fhir.resources 8.x has no R4 subpackage: its top level is R5, and ``fhir.resources.R4B`` is the
closest to R4 (Observation is the same resource in R4 and R4B: same elements, cardinalities and
value sets). Documents are validated with the R4B models and use only R4 elements.

Status is ``preliminary``: an AI result that no clinician has reviewed. The measured features are
``component`` entries coded in skinscreen's own code system (:data:`FEATURE_SYSTEM`; there are no
LOINC codes for these measurements), with UCUM units. Identifiers (subject, derived-from study)
are only put in when the caller passes them (``--identifiers``).
"""

from __future__ import annotations

import datetime as dt
import re

from skinscreen._version import __version__
from skinscreen.disclaimer import DISCLAIMER

#: Code system of the feature codes (a URN: no web page is implied or called).
FEATURE_SYSTEM = "urn:skinscreen:lesion-feature"
SNOMED = "http://snomed.info/sct"
#: R4 ObservationStatus (a required binding)
OBSERVATION_STATUS = (
    "registered",
    "preliminary",
    "final",
    "amended",
    "corrected",
    "cancelled",
    "entered-in-error",
    "unknown",
)
UCUM = "http://unitsofmeasure.org"

# (code, display, report key, UCUM unit) for quantities; None values are left out
_QUANTITIES = [
    ("area-mm2", "Lesion area", "area_mm2", "mm2"),
    ("area-px", "Lesion area in photo pixels", "area_px", "{pixel}"),
    ("perimeter-mm", "Lesion perimeter", "perimeter_mm", "mm"),
    ("diameter-max-mm", "Maximum Feret diameter", "diameter_max_mm", "mm"),
    ("diameter-max-px", "Maximum Feret diameter in photo pixels", "diameter_max_px", "{pixel}"),
    ("diameter-equivalent-mm", "Equivalent-disc diameter", "diameter_equivalent_mm", "mm"),
    ("ita-deg", "Individual Typology Angle of the surrounding skin", "ita_deg", "deg"),
]


def _concept(code: str, display: str) -> dict:
    return {
        "coding": [{"system": FEATURE_SYSTEM, "code": code, "display": display}],
        "text": display,
    }


def body_site_concept(value: str) -> dict:
    """``--body-site`` -> CodeableConcept: ``SCT:<code>[:text]`` (a SNOMED CT body structure) or
    free text (e.g. ``left forearm``)."""
    m = re.fullmatch(r"(?i)sct:(\d{6,18})(?::(.+))?", value.strip())
    if m:
        coding = {"system": SNOMED, "code": m.group(1)}
        if m.group(2):
            coding["display"] = m.group(2).strip()
        return {"coding": [coding], **({"text": m.group(2).strip()} if m.group(2) else {})}
    return {"text": value.strip()}


def observation(
    report: dict,
    *,
    body_site: str | None = None,
    identifiers: dict[str, str] | None = None,
    issued: dt.datetime | None = None,
) -> dict:
    """A validated FHIR Observation (JSON dict) from a :class:`LesionReport` dump.

    Raises:
        SkinscreenError: the document does not validate (a bug) or the extra is missing.
    """
    comps = []
    for code, display, key, unit in _QUANTITIES:
        v = report.get(key)
        if v is None:
            continue
        comps.append(
            {
                "code": _concept(code, display),
                "valueQuantity": {
                    "value": round(float(v), 4),
                    "unit": unit,
                    "system": UCUM,
                    "code": unit,
                },
            }
        )
    a, b, c = report["asymmetry"], report["border"], report["colors"]
    for code, display, value in [
        ("asymmetric-axes-shape", "Axes with shape asymmetry (0-2)", a["asymmetric_axes"]),
        ("asymmetric-axes-colour", "Axes with colour asymmetry (0-2)", a["color_asymmetric_axes"]),
        (
            "abrupt-border-octants",
            "Border octants with an abrupt cut-off (0-8)",
            b["abrupt_octants"],
        ),
        ("colour-count", "Dermoscopic colours present (0-6)", c["count"]),
    ]:
        comps.append({"code": _concept(code, display), "valueInteger": int(value)})
    comps.append(
        {
            "code": _concept("border-compactness", "Border compactness P^2/(4 pi A)"),
            "valueQuantity": {
                "value": round(float(b["compactness"]), 4),
                "unit": "1",
                "system": UCUM,
                "code": "1",
            },
        }
    )
    if report.get("diameter_over_6mm") is not None:
        comps.append(
            {
                "code": _concept("diameter-over-6mm", "Maximum diameter over 6 mm"),
                "valueBoolean": bool(report["diameter_over_6mm"]),
            }
        )
    if c["present"]:
        comps.append(
            {
                "code": _concept("colours-present", "Dermoscopic colours present"),
                "valueString": ", ".join(x.replace("_", " ") for x in c["present"]),
            }
        )
    seg = report["segmentation"]
    method = (
        f"skinscreen {__version__}, model {seg.get('model')}"
        + (f" ({seg.get('variant')})" if seg.get("variant") else "")
        if seg.get("source") == "model"
        else f"skinscreen {__version__}, outline supplied by the user"
    )
    doc: dict = {
        "resourceType": "Observation",
        "status": "preliminary",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "imaging",
                        "display": "Imaging",
                    }
                ]
            }
        ],
        "code": {
            "coding": [
                {
                    "system": FEATURE_SYSTEM,
                    "code": "lesion-assessment",
                    "display": "Skin lesion assessment",
                }
            ],
            "text": "Skin lesion assessment (skinscreen, screening aid)",
        },
        "issued": (issued or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"),
        "method": {"text": method},
        "note": [{"text": DISCLAIMER}],
        "component": comps,
    }
    if body_site:
        doc["bodySite"] = body_site_concept(body_site)
    if report.get("warnings"):
        doc["note"].append({"text": "Warnings: " + "; ".join(report["warnings"])})
    if identifiers:
        if identifiers.get("patient_id"):
            doc["subject"] = {"type": "Patient", "identifier": {"value": identifiers["patient_id"]}}
        if identifiers.get("study_instance_uid"):
            doc["derivedFrom"] = [
                {
                    "type": "ImagingStudy",
                    "identifier": {
                        "system": "urn:dicom:uid",
                        "value": "urn:oid:" + identifiers["study_instance_uid"],
                    },
                }
            ]
    validate(doc)
    return doc


def validate(doc: dict) -> None:
    """Validate an Observation dict with fhir.resources' R4B model (see the module docstring).

    Raises:
        SkinscreenError: invalid, or fhir.resources missing.
    """
    from skinscreen.errors import SkinscreenError

    try:
        from fhir.resources.R4B.observation import Observation
    except ImportError:  # pragma: no cover - the extra is installed by make
        raise SkinscreenError(
            "FHIR output needs the 'formats' extra: pip install 'skinscreen[formats]'"
        ) from None
    try:
        Observation.model_validate(doc)
    except Exception as e:
        raise SkinscreenError(f"FHIR Observation does not validate: {e}") from None
    # the models check types and cardinalities, not the required value set of status
    if doc.get("status") not in OBSERVATION_STATUS:
        raise SkinscreenError(
            f"FHIR Observation does not validate: status {doc.get('status')!r} is not one of "
            f"{', '.join(OBSERVATION_STATUS)}"
        )
