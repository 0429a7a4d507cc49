"""The worker's refresh schedule (throttling, revoked credentials, the per-account lock) and its loop."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from gateway.models import ContactInput
from gateway.worker import Worker
from providers.base import AuthFailed, Throttled, Unavailable
from tests.conftest import Gateway
from tests.webhooks.conftest import Consumer, FakeClock, eventually, subscribe


def person(name: str) -> ContactInput:
    return ContactInput.model_validate({"name": {"givenName": name}})


async def test_accounts_are_refreshed_on_schedule(gw: Gateway, worker: Worker, clock: FakeClock) -> None:
    first, _, provider = await gw.connect("alice")
    second, _, _ = await gw.connect("bob")
    provider.create(person("A"))
    report = await worker.run_once()
    assert sorted(report.refresh.refreshed) == sorted([first, second]) and report.refresh.changed == 1
    assert await gw.core.store.count(first, "live") == 1
    provider.create(person("B"))
    clock.advance(30)
    assert (await worker.run_once()).refresh.refreshed == []  # the interval is 60 s
    clock.advance(31)
    report = await worker.run_once()
    assert sorted(report.refresh.refreshed) == sorted([first, second])
    assert await gw.core.store.count(first, "live") == 2


async def test_a_refresh_by_a_request_counts(gw: Gateway, worker: Worker) -> None:
    account_id, auth, _ = await gw.connect("alice")
    assert (await gw.http.post("/v1/contacts/sync", headers=auth)).status == 200
    await gw.core.refresher.wait_idle()
    assert (await worker.run_once()).refresh.refreshed == []


async def test_no_account_is_pulled_by_two_at_once(gw: Gateway, worker: Worker) -> None:
    account_id, _, _ = await gw.connect("alice")
    lock = gw.core.store.account(account_id).refresh_lock
    holder = await gw.core.store.try_lock(lock, 5)  # another process is pulling it
    assert holder is not None
    report = await worker.run_once()
    assert report.refresh.busy == [account_id] and report.refresh.refreshed == []
    await gw.core.store.unlock(lock, holder)
    assert (await worker.run_once()).refresh.refreshed == [account_id]


async def test_provider_throttling_is_honoured(gw: Gateway, worker: Worker, clock: FakeClock) -> None:
    account_id, _, provider = await gw.connect("alice")
    provider.fail_next = [Throttled(retry_after=120)]  # longer than the gateway waits in-line
    report = await worker.run_once()
    assert report.refresh.throttled == [account_id]
    state = await gw.core.store.state(account_id)
    assert 119 <= float(state["next_refresh_at"]) - clock() <= 120
    clock.advance(100)
    assert (await worker.run_once()).refresh.refreshed == []
    clock.advance(21)
    assert (await worker.run_once()).refresh.refreshed == [account_id]
    assert "next_refresh_at" not in await gw.core.store.state(account_id)
    # down without a hint: the configured backoff
    provider.fail_next = [Unavailable()] * 4
    clock.advance(61)
    assert (await worker.run_once()).refresh.throttled == [account_id]
    state = await gw.core.store.state(account_id)
    assert 59 <= float(state["next_refresh_at"]) - clock() <= 60


async def test_rejected_credentials_back_off(gw: Gateway, worker: Worker, clock: FakeClock) -> None:
    account_id, auth, provider = await gw.connect("alice")
    provider.fail_next = [AuthFailed("revoked")]
    report = await worker.run_once()
    assert report.refresh.auth_failed == [account_id]
    account = await gw.core.identity.account(account_id)
    assert account is not None and account.status == "reauth_required"
    waits = []
    for _ in range(3):
        state = await gw.core.store.state(account_id)
        waits.append(round(float(state["next_refresh_at"]) - clock()))
        clock.advance(waits[-1] - 5)
        assert (await worker.run_once()).refresh.auth_failed == []  # not before the backoff
        clock.advance(6)
        provider.fail_next = [AuthFailed("revoked")]
        assert (await worker.run_once()).refresh.auth_failed == [account_id]
    assert waits == [300, 600, 1200]
    clock.advance(2400)  # credentials work again
    assert (await worker.run_once()).refresh.refreshed == [account_id]
    account = await gw.core.identity.account(account_id)
    assert account is not None and account.status == "active"
    assert "auth_failures" not in await gw.core.store.state(account_id)


async def test_run_delivers_a_provider_change(gw: Gateway, consumer: Consumer, settings: Any) -> None:
    """The loop end to end: a change at the provider, the scheduled refresh, the webhook."""
    settings.worker.refresh_interval_s = 0.2
    settings.worker.poll_interval_s = 0.05
    account_id, _, provider = await gw.connect("alice")
    await gw.core.refresher.refresh(account_id)
    await subscribe(gw, account_id, consumer.url)
    stop = asyncio.Event()
    worker = Worker(gw.core, "looping")
    running = asyncio.create_task(worker.run(stop))
    provider.create(person("new"))
    await eventually(lambda: len(consumer.received) == 1)
    provider.create(person("newer"))
    await eventually(lambda: len(consumer.received) == 2)
    stop.set()
    await asyncio.wait_for(running, 10)
    assert all(r.signed for r in consumer.received)


async def test_the_worker_command_starts_and_stops(tmp_path: Path) -> None:
    env = {**os.environ, "GATEWAY_REDIS__EMBEDDED_DIR": str(tmp_path), "GATEWAY_REDIS__KEY_PREFIX": "clitest",
           "GATEWAY_WORKER__POLL_INTERVAL_S": "0.05"}
    env.pop("REDIS_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "worker", "--name", "cli"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines: list[str] = []
        assert proc.stdout is not None
        while not any("worker cli" in line for line in lines):
            line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 20)
            assert line, "".join(lines)
            lines.append(line)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
