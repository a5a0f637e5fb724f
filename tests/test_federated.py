"""Federated fine-tuning with Flower, for real, on loopback only: a simulation on Flower's engine
(Ray on 127.0.0.1), then a real SuperLink + two SuperNodes over TLS that resume from the
simulation's checkpoint and run two more rounds. Sites: the sample photos in examples/ split in
two, one site with a corrupt photo. The messages a site sends are recorded by its audit mod (the
serialized bytes Flower pushes) and searched for photo and embedding bytes."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("flwr")
pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples"
SITES = {"site-a": ["ISIC_0012099", "ISIC_0012143"], "site-b": ["ISIC_0012206", "ISIC_0013128"]}


def _env(tmp: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT / "src"), env.get("PYTHONPATH", "")) if p
    )
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    env.pop("RAY_ADDRESS", None)
    env["SKINSCREEN_ENGINE"] = "onnxruntime"
    return env


def _cli(args: list[str], tmp: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "skinscreen", *args],
        capture_output=True,
        text=True,
        env=_env(tmp),
        timeout=timeout,
        cwd=tmp,
    )


@pytest.fixture(scope="module")
def fed(tmp_path_factory):
    """Two site folders (site-b with a corrupt photo) and their shared embedding cache."""
    tmp = tmp_path_factory.mktemp("fed")
    for site, ids in SITES.items():
        for sub in ("images", "masks"):
            (tmp / site / sub).mkdir(parents=True)
        for i in ids:
            shutil.copy(EX / "images" / f"{i}.jpg", tmp / site / "images")
            shutil.copy(EX / "masks" / f"{i}.png", tmp / site / "masks")
    (tmp / "site-b" / "images" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a photo")
    shutil.copy(EX / "masks" / "ISIC_0012206.png", tmp / "site-b" / "masks" / "broken.png")
    return tmp


def _common(fed: Path) -> list[str]:
    return [
        "--local-steps",
        "3",
        "--lr",
        "1e-4",
        "--views",
        "1",
        "--holdout-folds",
        "0",
        "--cache-dir",
        str(fed / "cache"),
    ]


@pytest.fixture(scope="module")
def simulated(fed):
    out = fed / "run"
    r = _cli(
        [
            "federate",
            "simulate",
            "--sites",
            f"{fed / 'site-a'},{fed / 'site-b'}",
            "--rounds",
            "1",
            "--out",
            str(out),
            "--audit-dir",
            str(fed / "audit"),
            "--json",
            *_common(fed),
        ],
        fed,
    )
    assert r.returncode == 0, r.stderr[-4000:]
    return out, json.loads(r.stdout.strip().splitlines()[-1]), r.stderr


def test_simulation_lowers_loss_and_reports_corrupt_photo(simulated):
    out, prov, stderr = simulated
    assert prov["rounds"] == 1 and prov["strategy"] == "fedavg"
    assert sorted(prov["site_photos"]) == [2, 2]
    assert sorted(prov["site_skipped"]) == [0, 1]
    assert "skipping broken.jpg" in stderr
    hist = json.loads((out / "checkpoint.json").read_text())["history"]
    assert [h["round"] for h in hist] == [1]
    before = np.mean([r["loss-before"] for r in hist[0]["train"]])  # base model, each site
    after = np.mean([r["loss"] for r in hist[0]["evaluate"]])  # the aggregated model
    assert after < before, (before, after)
    assert (out / "decoder.safetensors").is_file() and (out / "provenance.json").is_file()


def test_messages_carry_parameters_only(simulated, fed):
    """The serialized train replies hold exactly the decoder parameters: no photo, no mask, no
    embedding bytes, no file name."""
    from skinscreen.train.federated.task import get_parameters, teacher_for

    expected = {k: v.shape for k, v in get_parameters(teacher_for("litemedsam").model).items()}
    param_bytes = sum(int(np.prod(s)) * 4 for s in expected.values())
    summaries = sorted((fed / "audit").glob("*-train-*.json"))
    assert len(summaries) == 2
    cache = next((fed / "cache").glob("*/v0"))
    probes = []
    for ids in SITES.values():
        for i in ids:
            emb = np.load(cache / f"{i}.emb.npy")
            img = np.load(cache / f"{i}.img.npy")
            mid = emb.reshape(-1)[50_000:50_064]
            probes += [mid.tobytes(), mid.astype(np.float32).tobytes()]
            probes.append(img.reshape(-1)[30_000:30_096].tobytes())
            jpg = (EX / "images" / f"{i}.jpg").read_bytes()
            probes.append(jpg[len(jpg) // 2 : len(jpg) // 2 + 96])
            probes.append(i.encode())
    for js in summaries:
        s = json.loads(js.read_text())
        recs = s["array_records"]
        assert list(recs) == ["arrays"]
        shapes = {k: tuple(v["shape"]) for k, v in recs["arrays"].items()}
        assert shapes == {k: tuple(v) for k, v in expected.items()}
        assert all(isinstance(v, (int, float)) for v in s["metric_records"]["metrics"].values())
        blob = js.with_suffix(".bin").read_bytes()
        # the parameters plus Flower's framing (object ids, dtype/shape headers): under 1 %
        assert param_bytes <= len(blob) < param_bytes * 1.01
        for p in probes:
            assert p not in blob


def _certs(d: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 (test-only, made here)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "skinscreen test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    paths = (d / "ca.pem", d / "server.pem", d / "server.key")
    paths[0].write_bytes(ca.public_bytes(pem))
    paths[1].write_bytes(cert.public_bytes(pem))
    paths[2].write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


def test_real_server_and_clients_over_tls_resume_two_rounds(simulated, fed):
    """`federate server` + two `federate client` processes over TLS on 127.0.0.1 resume after the
    simulation's round 1 and run rounds 2 and 3."""
    from skinscreen.train.federated.deploy import free_port

    out, _, _ = simulated
    ca, cert, key = _certs(fed)
    port = free_port()
    env = _env(fed)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "skinscreen",
            "federate",
            "server",
            "--rounds",
            "3",
            "--resume",
            "--no-evaluate",
            "--out",
            str(out),
            "--port",
            str(port),
            "--certfile",
            str(cert),
            "--keyfile",
            str(key),
            "--ca-certfile",
            str(ca),
            "--timeout",
            "850",
            "--json",
            "--local-steps",
            "3",
            "--lr",
            "1e-4",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=fed,
    )
    clients = []
    try:
        for site in SITES:
            args = ["federate", "client", "--data", str(fed / site)]
            args += ["--superlink", f"127.0.0.1:{port}", "--root-certificates", str(ca)]
            args += ["--views", "1", "--holdout-folds", "0", "--cache-dir", str(fed / "cache")]
            clients.append(
                subprocess.Popen(
                    [sys.executable, "-m", "skinscreen", *args],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    env=env,
                    cwd=fed,
                )
            )
        stdout, stderr = server.communicate(timeout=900)
    finally:
        for p in [server, *clients]:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
    log = (out / "superlink" / "run.log").read_text(errors="replace")
    assert server.returncode == 0, stderr[-3000:] + log[-3000:]
    prov = json.loads(stdout.strip().splitlines()[-1])
    assert prov["rounds"] == 3
    hist = json.loads((out / "checkpoint.json").read_text())["history"]
    assert [h["round"] for h in hist] == [1, 2, 3]
    assert all(len(h["train"]) == 2 for h in hist)


def test_result_is_a_registered_model_with_provenance(simulated, fed, monkeypatch):
    """The run's decoder asset registers as a model whose weights load (sha256-pinned deltas)
    to the federated parameters; a new process finds it by name; provenance names the run."""
    from safetensors.numpy import load_file

    from skinscreen.export.reference import load_model
    from skinscreen.spec import REGISTRY, get_spec
    from skinscreen.train.federated.asset import register_run
    from skinscreen.train.federated.task import get_parameters

    out, _, _ = simulated
    monkeypatch.setenv("SKINSCREEN_HOME", str(fed / "home"))
    spec = register_run(out, "litemedsam-fed-test")
    try:
        fedp = spec.extra["federated"]
        assert fedp["strategy"] == "fedavg" and fedp["dp"] is None
        assert sorted(fedp["site_photos"]) == [2, 2]
        assert (out / "decoder.safetensors").stat().st_size < 5_000_000
        got = get_parameters(load_model(spec))
        want = load_file(str(out / "checkpoint.safetensors"))
        assert set(got) == set(want)
        for k, v in want.items():  # int8 deltas: well under 1e-3 of the weights
            assert np.abs(got[k] - v).max() < 1e-3, k
        del REGISTRY["litemedsam-fed-test"]
        assert get_spec("litemedsam-fed-test").extra["decoder_weights"]["sha256"]
    finally:
        REGISTRY.pop("litemedsam-fed-test", None)
