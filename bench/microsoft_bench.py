"""The Microsoft Graph emulator (HTTPS) in the provider benchmark (see bench/provider_bench.py)."""

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
from providers.microsoft.connector import MicrosoftConnector
from providers.microsoft.emulator_state import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from providers.microsoft.mapping import graph_content
from providers.microsoft.tls import client_context

CA = "ca.pem"


def configure(settings: Settings, url: str, directory: Path) -> None:
    m = settings.microsoft
    m.authority, m.graph_base, m.ca_bundle = f"{url}/common", f"{url}/v1.0", str(directory / CA)
    m.client_id, m.client_secret, m.page_size = DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, 500


async def _follow(session: aiohttp.ClientSession, link: str, headers: dict[str, str], ssl: Any) -> list[Any]:
    items: list[Any] = []
    while True:
        async with session.get(link, headers=headers, ssl=ssl) as resp:
            page = orjson.loads(await resp.read())
        items += page.get("value", [])
        if "@odata.nextLink" not in page:
            return items
        link = page["@odata.nextLink"]


async def raw_listing(url: str, credentials: dict[str, Any], ssl: Any) -> tuple[float, list[Any]]:
    """The delta of the default folder and of every other folder, with a bare aiohttp client."""
    async with aiohttp.ClientSession() as session:
        form = {"grant_type": "refresh_token", "refresh_token": credentials["refreshToken"],
                "client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET,
                "scope": "Contacts.ReadWrite offline_access"}
        async with session.post(f"{url}/common/oauth2/v2.0/token", data=form, ssl=ssl) as resp:
            access = (await resp.json())["access_token"]
        headers = {"Authorization": f"Bearer {access}", "Prefer": "odata.maxpagesize=500"}
        start = time.perf_counter()
        items = await _follow(session, f"{url}/v1.0/me/contacts/delta", headers, ssl)
        async with session.get(f"{url}/v1.0/me/contactFolders", headers=headers, ssl=ssl) as resp:
            folders = orjson.loads(await resp.read())["value"]
        for folder in folders:
            items += await _follow(session, f"{url}/v1.0/me/contactFolders/{folder['id']}/contacts/delta", headers,
                                   ssl)
        return time.perf_counter() - start, items


def connector(settings: Settings, credentials: dict[str, Any]) -> Connector:
    return MicrosoftConnector(credentials, settings.microsoft)


SPEC = ProviderBench(
    name="microsoft", service_type="office365",
    emulator_args=["-m", "providers.microsoft.emulator", "--ca-file", CA],
    https=True, ssl=lambda d: client_context(d / CA), configure=configure,
    raw_listing=raw_listing, map_all=lambda items: [graph_content(i) for i in items] and None,
    connector=connector)


async def run(table: Table, directory: Path) -> None:
    await run_provider(SPEC, table, directory)
