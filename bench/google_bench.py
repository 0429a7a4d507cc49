"""The Google People API emulator in the provider benchmark (see bench/provider_bench.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.common import Table
from bench.provider_bench import ProviderBench, run_provider
from gateway.config import Settings
from providers.base import Connector
from providers.google.connector import GoogleConnector
from providers.google.emulator_state import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from providers.google.mapping import PERSON_FIELDS, person_content


def configure(settings: Settings, url: str, directory: Path) -> None:
    g = settings.google
    g.api_base, g.token_url, g.client_id, g.client_secret = f"{url}/", f"{url}/token", DEFAULT_CLIENT_ID, \
        DEFAULT_CLIENT_SECRET


async def raw_listing(url: str, credentials: dict[str, Any], ssl: Any) -> tuple[float, list[Any]]:
    """connections.list page by page with a bare aiohttp client: the provider's own time."""
    async with aiohttp.ClientSession() as session:
        form = {"grant_type": "refresh_token", "refresh_token": credentials["refreshToken"],
                "client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET}
        async with session.post(f"{url}/token", data=form) as resp:
            access = (await resp.json())["access_token"]
        people: list[Any] = []
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


def connector(settings: Settings, credentials: dict[str, Any]) -> Connector:
    return GoogleConnector(credentials, settings.google)


SPEC = ProviderBench(
    name="google", service_type="google", emulator_args=["-m", "gateway", "emulator", "google"],
    https=False, ssl=lambda _d: True, configure=configure, raw_listing=raw_listing,
    map_all=lambda people: [person_content(p) for p in people] and None, connector=connector)


async def run(table: Table, directory: Path) -> None:
    await run_provider(SPEC, table, directory)
