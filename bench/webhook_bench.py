"""Webhooks: what one worker sustains, and how long a change at a provider takes to reach a consumer.

- Throughput: a backlog of single-change notifications is queued (through the mirror's apply script,
  as real changes are), then one `contacts-gateway worker` process is started and delivers them to an
  aiohttp consumer in this process, which verifies every signature. Rate = notifications received
  between the first and the last, divided by that time. Once over 20 accounts (one subscription each),
  once over a single subscription (whose notifications go out WINDOW at a time).
- Latency: the Google People API emulator in its own process, an account with a subscription, one
  worker process refreshing every REFRESH_S. A contact is created through the emulator's control API
  (t0) and the consumer records when its notification arrives. The wait for the worker's next
  refresh tick is part of it (uniform in [0, REFRESH_S]), so p50 is about REFRESH_S / 2 plus the pull
  and the delivery; the changes are spaced at random so they do not lock to the tick.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from bench.common import Table, bench_settings, core_for, free_port
from bench.google_bench import configure as configure_google
from gateway.config import Settings
from gateway.core import Core
from gateway.models import ContactInput
from gateway.sync.mirror import prepare
from gateway.webhooks.delivery import WINDOW
from providers.base import RemoteContact
from providers.google.emulator_state import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

SECTION = "webhooks"
ACCOUNTS = 20
PER_ACCOUNT = 500
SINGLE = 3_000
REFRESH_S = 1.0
SAMPLES = 80


@dataclass
class Consumer:
    secret: str
    times: list[float] = field(default_factory=list)
    bad: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    expect: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if "validationToken" in request.query:
            return web.Response(text=request.query["validationToken"])
        timestamp = request.headers["X-Gateway-Request-Timestamp"]
        digest = hmac.new(self.secret.encode(), b"v0:" + timestamp.encode() + b":" + raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(digest, request.headers["X-Gateway-Signature"]):
            self.bad += 1
        if orjson.loads(raw)["changes"]["updated"]:
            self.times.append(time.perf_counter())
            if len(self.times) >= self.expect:
                self.arrived.set()
        return web.Response(text="ok")


async def start_consumer(consumer: Consumer) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/hook", consumer.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/hook"


def start_worker(directory: Path, prefix: str, extra: dict[str, str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "GATEWAY_REDIS__EMBEDDED_DIR": str(directory), "GATEWAY_REDIS__KEY_PREFIX": prefix,
           "GATEWAY_WEBHOOKS__ALLOW_PRIVATE_TARGETS": "true", "GATEWAY_WORKER__REFRESH_INTERVAL_S": "1e9", **extra}
    env.pop("REDIS_URL", None)
    return subprocess.Popen([sys.executable, "-m", "gateway", "worker", "--name", "bench"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def subscribe(core: Core, app: Any, account_id: str, url: str) -> None:
    checked = await core.webhooks.validate_url(url, app.signing_secret)
    await core.webhooks.create(app, account_id, "/contacts", checked)


async def throughput(table: Table, directory: Path, accounts: int, per_account: int, label: str) -> None:
    prefix = f"whtp{accounts}"
    settings = bench_settings(directory, prefix)
    settings.webhooks.allow_private_targets = True
    core = core_for(settings)
    app, _ = await core.identity.create_app("bench")
    consumer = Consumer(app.signing_secret, expect=accounts * per_account)
    runner, url = await start_consumer(consumer)
    ids = []
    for _ in range(accounts):
        created = await core.identity.create_account(app.client_id, "google", {"refreshToken": "unused"})
        account_id = created.account.account_id
        await core.store.set_state(account_id, last_refresh=time.time() + 1e9, ready=1)  # no pulls here
        await subscribe(core, app, account_id, url)
        ids.append(account_id)
    for account_id in ids:  # one change per apply: one notification each
        for n in range(per_account):
            remote = RemoteContact(f"people/{n}", "v1", ContactInput.model_validate({"name": {"givenName": f"P{n}"}}))
            await core.store.apply(account_id, [prepare(remote)], "2026-01-01T00:00:00.000Z", 0)
    proc = start_worker(directory, prefix, {})
    try:
        await asyncio.wait_for(consumer.arrived.wait(), 300)
    finally:
        stop(proc)
    total = len(consumer.times)
    rate = (total - 1) / (consumer.times[-1] - consumer.times[0])
    assert consumer.bad == 0, f"{consumer.bad} signatures did not verify"
    table.add(SECTION, f"notifications/s, one worker, {label}", f"{rate:,.0f} /s")
    await runner.cleanup()
    await core.aclose()


async def _control(session: aiohttp.ClientSession, url: str, path: str, body: dict[str, Any]) -> Any:
    async with session.post(f"{url}/_control{path}", json=body) as resp:
        assert resp.status in (200, 201), await resp.text()
        return await resp.json()


async def latency(table: Table, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    emulator = subprocess.Popen([sys.executable, "-m", "gateway", "emulator", "google", "--port", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=directory)
    worker = None
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                try:
                    async with session.get(f"{url}/_control/users/none/contacts"):
                        break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)
            credentials = (await _control(session, url, "/users", {"user": "bench"}))["credentials"]
            await _control(session, url, "/users/bench/seed", {"count": 100, "seed": 1})
            prefix = "whlat"
            settings: Settings = bench_settings(directory, prefix)
            settings.webhooks.allow_private_targets = True
            configure_google(settings, url, directory)
            core = core_for(settings)
            app, _ = await core.identity.create_app("bench")
            account = await core.identity.create_account(app.client_id, "google", credentials)
            account_id = account.account.account_id
            await core.refresher.refresh(account_id)
            consumer = Consumer(app.signing_secret)
            runner, hook = await start_consumer(consumer)
            await subscribe(core, app, account_id, hook)
            worker = start_worker(directory, prefix, {
                "GATEWAY_WORKER__REFRESH_INTERVAL_S": str(REFRESH_S), "GATEWAY_WORKER__POLL_INTERVAL_S": "0.05",
                "GATEWAY_GOOGLE__API_BASE": f"{url}/", "GATEWAY_GOOGLE__TOKEN_URL": f"{url}/token",
                "GATEWAY_GOOGLE__CLIENT_ID": DEFAULT_CLIENT_ID, "GATEWAY_GOOGLE__CLIENT_SECRET": DEFAULT_CLIENT_SECRET})
            rng = random.Random(1)
            waits = []
            for n in range(SAMPLES + 1):  # the first one warms the worker up
                consumer.expect = n + 1
                consumer.arrived.clear()
                await asyncio.sleep(rng.uniform(0, REFRESH_S))
                await _control(session, url, "/users/bench/contacts", {"name": {"givenName": f"Late{n}"}})
                start = time.perf_counter()
                await asyncio.wait_for(consumer.arrived.wait(), 60)
                if n:
                    waits.append(consumer.times[n] - start)
            waits.sort()
            p50 = statistics.median(waits)
            p99 = waits[min(len(waits) - 1, int(len(waits) * 0.99))]
            label = f"worker refresh every {REFRESH_S:g} s, {SAMPLES} changes"
            table.add(SECTION, f"provider change -> webhook, p50 ({label})", f"{p50 * 1000:,.0f} ms")
            table.add(SECTION, f"provider change -> webhook, p99 ({label})", f"{p99 * 1000:,.0f} ms")
            stop(worker)  # before the core lets go of the embedded Redis, which the worker shares
            worker = None
            await runner.cleanup()
            await core.aclose()
    finally:
        if worker is not None:
            stop(worker)
        stop(emulator)


async def run(table: Table, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    await throughput(table, directory / "many", ACCOUNTS, PER_ACCOUNT, f"{ACCOUNTS} accounts x 1 subscription")
    await throughput(table, directory / "one", 1, SINGLE, f"1 subscription ({WINDOW} in flight)")
    await latency(table, directory / "latency")
