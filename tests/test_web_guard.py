"""Server hardening: Host allowlist, cross-site POSTs, bounded JSON, no local paths, a bounded
work queue (503 + Retry-After), dropped work for gone clients, health under load."""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from skinscreen.web import WebSettings, create_app  # noqa: E402

PHOTO = Path(__file__).resolve().parents[1] / "examples" / "images" / "ISIC_0012099.jpg"
BOX = "[400, 150, 610, 450]"


@pytest.fixture(scope="module")
def settings(predictor) -> WebSettings:
    return WebSettings(bundle_dir=predictor.bundle.root, threads=2, box_check=False)


@pytest.fixture(scope="module")
def client(settings):
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as c:
        yield c


def _post(client, headers=None, box=BOX):
    return client.post(
        "/api/segment",
        files={"image": ("p.jpg", PHOTO.read_bytes(), "image/jpeg")},
        data={"box": box, "features": "false"},
        headers=headers or {},
    )


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1.nip.io:8000", "attacker.test:80"])
def test_foreign_host_headers_are_refused(client, host):
    r = client.get("/api/health", headers={"Host": host})
    assert r.status_code == 421
    assert client.get("/api/health", headers={"Host": "localhost:8000"}).status_code == 200


def test_any_host_when_bound_to_the_network_on_purpose(settings):
    with TestClient(create_app(replace(settings, allowed_hosts=None))) as c:
        assert c.get("/api/health", headers={"Host": "my-laptop.lan"}).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": "http://other.localhost"},
    ],
)
def test_cross_site_posts_are_refused(client, headers):
    r = _post(client, headers)
    assert r.status_code == 403 and "cross-site" in r.json()["detail"]


def test_same_origin_posts_run(client):
    r = _post(client, {"Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 200 and r.json()["area_px"] > 0


@pytest.mark.parametrize("box", ["[" * 5000, "[" * 100 + "]" * 100, "[1," * 3000, "9" * 10000])
def test_deep_or_long_box_json_is_a_4xx(client, box):
    r = _post(client, box=box)
    assert 400 <= r.status_code < 500, r.status_code


def test_no_local_paths_in_responses(client, predictor):
    text = client.get("/api/models").text + client.get("/api/health").text
    home = str(Path.home())
    assert str(predictor.bundle.root) not in text and home not in text
    for m in client.get("/api/models").json():
        assert "/" not in m["path"]


@pytest.fixture()
def live(settings):
    import uvicorn

    app = create_app(replace(settings, queue_size=1))
    app.state.service.load()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        assert time.time() < deadline
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", port, app
    server.should_exit = True
    thread.join(timeout=10)


def _photo_variant(i: int) -> bytes:
    """Distinct bytes (no encoding-cache hit): the JPEG with a few trailing bytes."""
    return PHOTO.read_bytes() + b"\x00" * i


def test_full_queue_answers_503_with_retry_after_and_health_stays_up(live):
    url, _, app = live

    def call(i):
        with httpx.Client(timeout=300) as c:
            return c.post(
                f"{url}/api/segment",
                files={"image": ("p.jpg", _photo_variant(i), "image/jpeg")},
                data={"box": BOX, "features": "false"},
            )

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(call, i) for i in range(8)]
        time.sleep(0.3)
        with httpx.Client(timeout=30) as c:
            health = c.get(f"{url}/api/health")
        results = [f.result() for f in futures]
    assert health.status_code == 200 and health.json()["queue"]["capacity"] == 2
    codes = sorted(r.status_code for r in results)
    assert set(codes) <= {200, 503} and 200 in codes and 503 in codes, codes
    for r in results:
        if r.status_code == 503:
            assert int(r.headers["Retry-After"]) > 0
        else:
            assert r.json()["area_px"] > 0
    assert app.state.work_queue.stats()["admitted"] == 0


def test_work_of_a_gone_client_is_dropped(live):
    url, port, app = live
    app.state.service.cache.clear()
    first = threading.Thread(
        target=lambda: httpx.post(
            f"{url}/api/segment",
            files={"image": ("p.jpg", _photo_variant(100), "image/jpeg")},
            data={"box": BOX, "features": "false"},
            timeout=300,
        )
    )
    first.start()
    deadline = time.time() + 60
    while app.state.work_queue.stats()["running"] < 1:  # the first holds the only worker
        assert time.time() < deadline
        time.sleep(0.01)
    req = httpx.Request(
        "POST",
        f"{url}/api/segment",
        files={"image": ("p.jpg", _photo_variant(101), "image/jpeg")},
        data={"box": BOX, "features": "false"},
    )
    body = req.read()
    head = f"POST /api/segment HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in req.headers.items() if k.lower() != "host"
    )
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(head.encode() + b"\r\n" + body)
        time.sleep(0.1)  # queued behind the first request; then the client gives up
    first.join(timeout=300)
    deadline = time.time() + 60
    while app.state.work_queue.stats()["dropped_disconnected"] < 1:
        assert time.time() < deadline, app.state.work_queue.stats()
        time.sleep(0.2)
    # the dropped photo was never encoded: only the first one is in the cache
    assert len(app.state.service.cache) == 1
    assert json.loads(httpx.get(f"{url}/api/health", timeout=60).text)["queue"]["admitted"] == 0
