"""Request guards of the web app: Host header, cross-site POSTs, and a bounded work queue.

- :class:`HostOriginGuard` (pure ASGI middleware): a ``Host`` header outside the allowed names
  is refused with 421 (a DNS-rebinding page reaches 127.0.0.1 under its own name); a
  state-changing request (POST...) that a browser marks cross-site (``Sec-Fetch-Site:
  cross-site``/``same-site``) or whose ``Origin`` is neither this server nor an allowed origin is
  refused with 403 (a form on another site cannot run the model).
- :class:`WorkQueue`: at most ``workers`` model requests run, at most ``queue`` wait; beyond that
  the answer is 503 with ``Retry-After`` at once (before the upload is read). A waiting request
  whose client went away is dropped before it costs an encoder run.
- :func:`release_memory`: hands freed heap back to the OS (glibc ``malloc_trim``) once the queue
  has been empty for :data:`TRIM_AFTER_IDLE_S`, so RSS comes back down after a burst. A waiting
  request whose client disconnected is detected through the server's own ``receive`` (kept in
  the scope by :class:`HostOriginGuard`, outside Starlette's middleware wrappers).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import threading
from collections.abc import Iterable

from fastapi import HTTPException, Request

#: Host names the server answers to by default (any port). ``testserver`` is Starlette's
#: TestClient's name: a single label that no public DNS resolves, so not a rebinding vector.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]", "localhost.localdomain", "testserver")
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
#: Seconds the work queue must stay empty before freed heap is handed back to the OS.
TRIM_AFTER_IDLE_S = 5.0


def _host_name(host: str) -> str:
    """``Host`` header value without its port (``[::1]:8000`` -> ``[::1]``), lower-case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class HostOriginGuard:
    """ASGI middleware: Host allowlist (None: any host) and same-origin state-changing requests.

    Args:
        allowed_hosts: host names (no port) to answer; None answers any (the user bound a
            non-loopback interface on purpose).
        allowed_origins: extra ``scheme://host[:port]`` origins allowed to POST (the CORS list).
    """

    def __init__(self, app, allowed_hosts: Iterable[str] | None, allowed_origins: Iterable[str]):
        self.app = app
        self.hosts = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}
        self.origins = {o.rstrip("/").lower() for o in allowed_origins}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        # the server's own receive, for WorkQueue's disconnect check (inner middleware wraps it)
        scope["skinscreen.receive"] = receive
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if self.hosts is not None and _host_name(host) not in self.hosts:
            return await _plain(
                send, 421, f"unknown Host {host[:80]!r}: open http://127.0.0.1 instead"
            )
        if scope["method"] in UNSAFE_METHODS:
            site = headers.get("sec-fetch-site", "").lower()
            origin = headers.get("origin")
            same = {f"http://{host.lower()}", f"https://{host.lower()}"}
            if origin is not None and origin.rstrip("/").lower() not in same | self.origins:
                return await _plain(send, 403, "cross-site request refused (Origin)")
            if site in ("cross-site", "same-site") and (
                origin is None or origin.rstrip("/").lower() not in self.origins
            ):
                return await _plain(send, 403, "cross-site request refused (Sec-Fetch-Site)")
        return await self.app(scope, receive, send)


async def _plain(send, status: int, detail: str) -> None:
    import json

    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-content-type-options", b"nosniff"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class ClientGone(Exception):
    """The client disconnected while its request waited: nothing to answer."""


class WorkQueue:
    """At most ``workers`` running and ``queue`` waiting model requests (asyncio side).

    ``admit()`` refuses with 503 + ``Retry-After`` when full; ``run(request, fn, ...)`` waits
    for a worker slot (polling for a disconnected client), then runs ``fn`` in a thread.
    """

    def __init__(self, workers: int = 1, queue: int = 4, retry_after_s: int = 2):
        self.workers = max(1, int(workers))
        self.capacity = self.workers + max(0, int(queue))
        self.retry_after_s = int(retry_after_s)
        self.admitted = 0
        self.running = 0
        self.refused = 0
        self.dropped = 0
        self._slots: asyncio.Semaphore | None = None

    def stats(self) -> dict:
        return {
            "workers": self.workers,
            "capacity": self.capacity,
            "admitted": self.admitted,
            "running": self.running,
            "refused": self.refused,
            "dropped_disconnected": self.dropped,
        }

    @contextlib.contextmanager
    def admit(self):
        if self.admitted >= self.capacity:
            self.refused += 1
            raise HTTPException(
                503,
                "the server is busy (work queue full): retry shortly",
                headers={"Retry-After": str(self.retry_after_s)},
            )
        self.admitted += 1
        try:
            yield
        finally:
            self.admitted -= 1
            if self.admitted == 0:
                # malloc_trim holds the heap lock for up to seconds on a big heap: run it only
                # once the server has stayed idle a while, never between two requests of a burst
                t = threading.Timer(TRIM_AFTER_IDLE_S, self._trim_if_idle)
                t.daemon = True
                t.start()

    def _trim_if_idle(self) -> None:
        if self.admitted == 0:
            release_memory()

    async def run(self, request: Request, fn, *args):
        from fastapi.concurrency import run_in_threadpool

        if self._slots is None:
            self._slots = asyncio.Semaphore(self.workers)
        while True:
            try:
                await asyncio.wait_for(self._slots.acquire(), timeout=0.25)
                break
            except TimeoutError:
                if await client_gone(request):
                    self.dropped += 1
                    raise ClientGone() from None
        try:
            if await client_gone(request):
                self.dropped += 1
                raise ClientGone()
            self.running += 1
            try:
                return await run_in_threadpool(fn, *args)
            finally:
                self.running -= 1
        finally:
            self._slots.release()


async def client_gone(request: Request) -> bool:
    """True when the client has disconnected (asks the server's receive without waiting)."""
    import anyio

    raw = request.scope.get("skinscreen.receive")
    if raw is None:
        return await request.is_disconnected()
    message: dict = {}
    with anyio.CancelScope() as cs:
        cs.cancel()
        message = await raw()
    return message.get("type") == "http.disconnect"


_LIBC = None


def release_memory() -> None:
    """Return freed heap pages to the OS (glibc ``malloc_trim(0)``; no-op elsewhere)."""
    global _LIBC
    try:
        if _LIBC is None:
            _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _LIBC.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def public_message(text: str) -> str:
    """An error text fit for a response: local paths (the skinscreen home, the user's home, the
    package folder) replaced by placeholders, so no client learns where files live."""
    from pathlib import Path

    from skinscreen import paths

    pkg = str(Path(__file__).resolve().parents[1])
    for path, label in (
        (str(paths.home()), "$SKINSCREEN_HOME"),
        (pkg, "<skinscreen>"),
        (str(Path.home()), "~"),
    ):
        if path and path != "/":
            text = text.replace(path, label)
    return text
