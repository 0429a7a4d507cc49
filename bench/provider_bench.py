"""Initial pull of 10,000 contacts from a provider emulator, and the gateway's share of it.

Measured in one run, with the emulator in its own process (as a provider would be):
- the emulator alone: a bare client lists the same 10,000 contacts (the provider's time);
- the connector alone: the provider's client library lists them and maps each one;
- the mapping alone: provider JSON -> Contact over the same items;
- the initial pull: a refresh of a new account into the mirror (connector + hashing + Redis).
The gateway's own share = (mapping + pull - connector) / pull; the rest is the provider and its
client library. Target (issues 3, 4, 5): at most 25%.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import Table, bench_settings, core_for, free_port, median_time
from gateway.config import Settings
from providers.base import Connector

COUNT = 10_000
RUNS = 3


@dataclass
class ProviderBench:
    """What differs per provider; `configure` points the gateway's settings at the emulator."""

    name: str
    service_type: str
    emulator_args: list[str]
    https: bool
    ssl: Callable[[Path], Any]
    configure: Callable[[Settings, str, Path], None]
    raw_listing: Callable[[str, dict[str, Any], Any], Awaitable[tuple[float, list[Any]]]]
    map_all: Callable[[list[Any]], None]
    connector: Callable[[Settings, dict[str, Any]], Connector]
    seed: dict[str, Any] = field(default_factory=dict)  # extra seed options (Exchange: one folder)


async def _wait_up(url: str, make_ssl: Callable[[], Any]) -> Any:
    """Wait for the emulator to answer; returns the SSL setting that reaches it (its CA appears at start)."""
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                ssl = make_ssl()
                async with session.get(f"{url}/_control/users/none/contacts", ssl=ssl):
                    return ssl
            except (aiohttp.ClientError, OSError):
                await asyncio.sleep(0.05)
    raise RuntimeError("the emulator did not start")


async def _connector_listing(connector: Connector) -> float:
    await connector.list_changes(None)  # tokens, discovery and client set-up out of the timing
    start = time.perf_counter()
    cursor, count = None, 0
    while True:
        page = await connector.list_changes(cursor)
        count += sum(1 for c in page.changes if c.content is not None)  # forces the (lazy) mapping
        cursor = page.cursor
        if not page.more:
            break
    assert count == COUNT, count
    elapsed = time.perf_counter() - start
    await connector.aclose()
    return elapsed


async def run_provider(spec: ProviderBench, table: Table, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"{'https' if spec.https else 'http'}://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, *spec.emulator_args, "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=directory)
    try:
        ssl = await _wait_up(url, lambda: spec.ssl(directory))
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{url}/_control/users", json={"user": "bench"}, ssl=ssl) as resp:
                credentials = (await resp.json())["credentials"]
            async with session.post(f"{url}/_control/users/bench/seed", json={"count": COUNT, "seed": 1, **spec.seed},
                                    ssl=ssl) as resp:
                assert resp.status == 201, await resp.text()
        settings = bench_settings(directory, f"{spec.name}bench")
        spec.configure(settings, url, directory)
        core = core_for(settings)
        app, _ = await core.identity.create_app("bench")
        raw_t, map_t, conn_t, pull_t = [], [], [], []
        for _ in range(RUNS):
            elapsed, items = await spec.raw_listing(url, credentials, ssl)
            assert len(items) == COUNT, len(items)
            raw_t.append(elapsed)
            start = time.perf_counter()
            spec.map_all(items)
            map_t.append(time.perf_counter() - start)
            conn_t.append(await _connector_listing(spec.connector(settings, credentials)))
            account = await core.identity.create_account(app.client_id, spec.service_type, credentials)
            start = time.perf_counter()
            result = await core.refresher.refresh(account.account.account_id)
            pull_t.append(time.perf_counter() - start)
            assert result.changed == COUNT, result
        raw, mapping, conn, pull = (median_time(t) for t in (raw_t, map_t, conn_t, pull_t))
        share = (mapping + pull - conn) / pull
        name = spec.name
        table.add(name, f"emulator alone: list {COUNT:,} contacts (median of {RUNS})", f"{COUNT / raw:,.0f} /s")
        table.add(name, "connector alone: client library + mapping", f"{COUNT / conn:,.0f} /s")
        table.add(name, "mapping alone: provider JSON -> Contact", f"{COUNT / mapping:,.0f} /s")
        table.add(name, f"initial pull of {COUNT:,} contacts into the mirror", f"{COUNT / pull:,.0f} /s")
        table.add(name, "gateway's own time per contact (mapping, hashing, Redis)",
                  f"{(mapping + pull - conn) / COUNT * 1e6:,.1f} us")
        table.add(name, "gateway's own share of the pull (mapping, hashing, Redis)", f"{share:.0%}", "<= 25%",
                  share <= 0.25)
        await core.aclose()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
