"""Initial pull of 10,000 contacts from the People API emulator, and the gateway's share of it.

Measured in one run, the emulator in its own process (as a provider would be):
- the emulator alone: a bare aiohttp client lists the same 10,000 people (the provider's time);
- the connector alone: google-api-python-client lists them and maps each Person to a Contact;
- the mapping alone: Person -> Contact over the same people;
- the initial pull: a refresh of a new account into the mirror (connector + hashing + Redis).
The gateway's own share = (mapping + pull - connector) / pull; the rest is the provider and its
client library. Target (issue 3): at most 25%.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.common import Table, bench_settings, core_for, free_port, median_time
from gateway.config import GoogleSettings
from providers.google.connector import GoogleConnector
from providers.google.emulator_state import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from providers.google.mapping import PERSON_FIELDS, person_to_contact

COUNT = 10_000
RUNS = 3


async def wait_up(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(f"{url}/_control/users/none/contacts"):
                    return
            except aiohttp.ClientError:
                time.sleep(0.05)
    raise RuntimeError("the emulator did not start")


async def raw_listing(url: str, refresh_token: str) -> tuple[float, list[dict[str, Any]]]:
    """The provider alone: every page of connections.list, read and parsed, as fast as a client can."""
    async with aiohttp.ClientSession() as session:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": DEFAULT_CLIENT_ID,
                "client_secret": DEFAULT_CLIENT_SECRET}
        async with session.post(f"{url}/token", data=form) as resp:
            access = (await resp.json())["access_token"]
        people: list[dict[str, Any]] = []
        params = {"personFields": PERSON_FIELDS, "pageSize": "1000", "requestSyncToken": "true"}
        start = time.perf_counter()
        while True:
            async with session.get(f"{url}/v1/people/me/connections", params=params,
                                   headers={"Authorization": f"Bearer {access}"}) as resp:
                page = orjson.loads(await resp.read())
            people += page.get("connections", [])
            if "nextPageToken" not in page:
                return time.perf_counter() - start, people
            params = {**params, "pageToken": page["nextPageToken"]}


async def connector_listing(settings: GoogleSettings, refresh_token: str) -> float:
    connector = GoogleConnector({"refreshToken": refresh_token}, settings)
    await connector.list_changes(None)  # token refresh and client build out of the timing
    start = time.perf_counter()
    cursor, count = None, 0
    while True:
        page = await connector.list_changes(cursor)
        count += len(page.changes)
        cursor = page.cursor
        if not page.more:
            break
    assert count == COUNT, count
    return time.perf_counter() - start


async def run(table: Table, directory: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "emulator", "google", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await wait_up(url)
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{url}/_control/users", json={"user": "bench"}) as resp:
                refresh_token = (await resp.json())["credentials"]["refreshToken"]
            async with session.post(f"{url}/_control/users/bench/seed", json={"count": COUNT, "seed": 1}) as resp:
                assert resp.status == 201
        settings = bench_settings(directory, "gbench")
        g = settings.google
        g.api_base, g.token_url, g.client_id, g.client_secret = f"{url}/", f"{url}/token", DEFAULT_CLIENT_ID, \
            DEFAULT_CLIENT_SECRET
        core = core_for(settings)
        app, _ = await core.identity.create_app("bench")
        raw_times, conn_times, map_times, pull_times = [], [], [], []
        for _ in range(RUNS):
            elapsed, people = await raw_listing(url, refresh_token)
            raw_times.append(elapsed)
            start = time.perf_counter()
            for person in people:
                person_to_contact(person)
            map_times.append(time.perf_counter() - start)
            conn_times.append(await connector_listing(g, refresh_token))
            account = await core.identity.create_account(app.client_id, "google", {"refreshToken": refresh_token})
            start = time.perf_counter()
            result = await core.refresher.refresh(account.account.account_id)
            pull_times.append(time.perf_counter() - start)
            assert result.changed == COUNT, result
        raw, mapping, conn, pull = (median_time(t) for t in (raw_times, map_times, conn_times, pull_times))
        share = (mapping + pull - conn) / pull
        table.add("google", f"emulator alone: list {COUNT:,} people (median of {RUNS})", f"{COUNT / raw:,.0f} /s")
        table.add("google", "connector alone: google-api-python-client + mapping", f"{COUNT / conn:,.0f} /s")
        table.add("google", "mapping alone: Person -> Contact", f"{COUNT / mapping:,.0f} /s")
        table.add("google", f"initial pull of {COUNT:,} contacts into the mirror", f"{COUNT / pull:,.0f} /s")
        table.add("google", "gateway's own share of the pull (mapping, hashing, Redis)", f"{share:.0%}", "<= 25%",
                  share <= 0.25)
        await core.aclose()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
