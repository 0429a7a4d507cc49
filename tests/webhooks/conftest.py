"""Webhook fixtures: a real consumer HTTP server on 127.0.0.1, workers on a clock the test moves.

The consumer answers the validation handshake, records every notification with its raw body and
headers, verifies each signature the way the README tells a consumer to, and answers what the test
asks (a status, a delay, a hold until released).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web

from gateway.config import Settings
from gateway.core import Core
from gateway.worker import Worker, WorkerReport
from tests.conftest import Gateway
from tests.fake_clock import FakeClock


def verify_signature(secret: str, headers: Any, body: bytes, tolerance_s: float = 300) -> bool:
    """What the README tells a consumer to do, written independently of gateway/webhooks/signing.py."""
    timestamp = headers["X-Gateway-Request-Timestamp"]
    expected = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(timestamp)) <= tolerance_s
    return fresh and hmac.compare_digest(expected, headers["X-Gateway-Signature"])


@dataclass
class Received:
    body: dict[str, Any]
    raw: bytes
    headers: dict[str, str]
    signed: bool


@dataclass
class Consumer:
    """The consumer's behaviour (change it any time) and what it received."""

    secret: str = ""
    url: str = ""
    status: int = 200
    delay_s: float = 0.0
    hold: asyncio.Event | None = None           # when set, notifications wait for it before answering
    validation: str = "echo"                    # echo | wrong | 500 | slow
    received: list[Received] = field(default_factory=list)
    validations: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        return [r.body["id"] for r in self.received]

    def changes(self) -> tuple[set[str], set[str]]:
        updated, deleted = set(), set()
        for r in self.received:
            updated.update(r.body["changes"]["updated"])
            deleted.update(r.body["changes"]["deleted"])
        return updated, deleted

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        token = request.query.get("validationToken")
        if token is not None:
            self.validations.append((token, dict(request.headers), raw))
            if self.validation == "500":
                return web.Response(status=500)
            if self.validation == "slow":
                await asyncio.sleep(5)
            return web.Response(text=token if self.validation == "echo" else "nope", content_type="text/plain")
        self.received.append(Received(orjson.loads(raw), raw, dict(request.headers),
                                      verify_signature(self.secret, request.headers, raw)))
        if self.hold is not None:
            await self.hold.wait()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return web.Response(status=self.status, text="ok")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings, with loopback consumers allowed and short timeouts."""
    w = settings.webhooks
    w.allow_private_targets = True
    w.delivery_timeout_s = 2.0
    w.validation_timeout_s = 1.0
    w.backoff_base_s = 10.0
    w.backoff_max_s = 3600.0
    w.visibility_timeout_s = 5.0
    settings.worker.refresh_interval_s = 60.0
    return settings


@pytest.fixture
async def consumer(aiohttp_server: Any, gw: Gateway) -> Consumer:
    state = Consumer(secret=await signing_secret(gw))
    app = web.Application()
    app.router.add_post("/hook", state.handle)
    server = await aiohttp_server(app)
    state.url = str(server.make_url("/hook"))
    return state


async def signing_secret(gw: Gateway) -> str:
    import base64

    client_id = base64.b64decode(gw.basic["Authorization"].split()[1]).decode().partition(":")[0]
    raw = await gw.core.redis.client.hget(gw.core.store.keys.app(client_id), "signing")
    return raw.decode()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def make_worker(core: Core, clock: FakeClock) -> AsyncIterator[Callable[[str], Worker]]:
    made: list[Worker] = []

    def make(name: str = "w1") -> Worker:
        worker = Worker(core, name, clock=clock)
        made.append(worker)
        return worker

    yield make
    for worker in made:
        await worker.aclose()


@pytest.fixture
def worker(make_worker: Callable[[str], Worker]) -> Worker:
    return make_worker("w1")


async def drain(worker: Worker, rounds: int = 50) -> list[WorkerReport]:
    """run_once until a burst finds nothing to do."""
    reports = []
    for _ in range(rounds):
        report = await worker.run_once(refresh=False)
        reports.append(report)
        if not report.delivery.worked:
            return reports
    raise AssertionError("the worker never went idle")


async def subscribe(gw: Gateway, account_id: str, url: str) -> dict[str, Any]:
    resp = await gw.http.post("/v1/subscriptions", headers=gw.basic,
                              json={"accountId": account_id, "resource": "/contacts", "notificationUrl": url})
    body = await resp.json()
    assert resp.status == 201, body
    return body  # type: ignore[no-any-return]


async def write_contact(gw: Gateway, auth: dict[str, str], name: str) -> str:
    resp = await gw.http.post("/v1/contacts", json={"name": {"givenName": name}}, headers=auth)
    assert resp.status == 201, await resp.text()
    return (await resp.json())["id"]  # type: ignore[no-any-return]


async def eventually(check: Callable[[], Awaitable[bool] | bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")
