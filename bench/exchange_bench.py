"""The EWS emulator in the provider benchmark (see bench/provider_bench.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import Table
from bench.provider_bench import ProviderBench, run_provider
from gateway.config import Settings
from providers.base import Connector
from providers.exchange.bench import basic_auth, raw_sync
from providers.exchange.connector import ExchangeConnector
from providers.exchange.ews_xml import parse_contact
from providers.exchange.mapping import fields_content


def configure(settings: Settings, url: str, directory: Path) -> None:
    settings.exchange.page_size = 512


async def raw_listing(url: str, credentials: dict[str, Any], ssl: Any) -> tuple[float, list[Any]]:
    """SyncFolderItems pages of 512 and a GetItem per page, in raw SOAP: the provider's own time."""
    async with aiohttp.ClientSession() as session:
        start = time.perf_counter()
        items = await raw_sync(session, credentials["ewsUrl"],
                               basic_auth(credentials["username"], credentials["password"]))
        return time.perf_counter() - start, items


def connector(settings: Settings, credentials: dict[str, Any]) -> Connector:
    return ExchangeConnector(credentials, settings.exchange)


SPEC = ProviderBench(
    name="exchange", service_type="exchange", emulator_args=["-m", "gateway", "emulator", "exchange"],
    https=False, ssl=lambda _d: True, configure=configure, raw_listing=raw_listing,
    map_all=lambda items: [fields_content(parse_contact(i)) for i in items] and None, connector=connector,
    seed={"folders": 0})


async def run(table: Table, directory: Path) -> None:
    await run_provider(SPEC, table, directory)
