"""The EWS emulator in the provider benchmark (see bench/provider_bench.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp
from lxml import etree

from bench.common import Table
from bench.provider_bench import ProviderBench, run_provider
from gateway.config import Settings
from providers.base import Connector
from providers.exchange.bench import _FIELDS, _envelope, basic_auth
from providers.exchange.connector import ExchangeConnector
from providers.exchange.ews_xml import parse_contact
from providers.exchange.mapping import fields_content
from providers.exchange.soap import M, T


def configure(settings: Settings, url: str, directory: Path) -> None:
    settings.exchange.page_size = 512


async def raw_listing(url: str, credentials: dict[str, Any], ssl: Any) -> tuple[float, list[Any]]:
    """SyncFolderItems pages of 512 and a GetItem per page, in raw SOAP: the provider's own time."""
    auth = basic_auth(credentials["username"], credentials["password"])
    items: list[Any] = []
    async with aiohttp.ClientSession() as session:
        state, done = "", False
        start = time.perf_counter()
        while not done:
            token = f"<m:SyncState>{state}</m:SyncState>" if state else ""
            body = (f"<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape>"
                    f'<m:SyncFolderId><t:DistinguishedFolderId Id="contacts"/></m:SyncFolderId>{token}'
                    "<m:MaxChangesReturned>512</m:MaxChangesReturned></m:SyncFolderItems>")
            async with session.post(credentials["ewsUrl"], data=_envelope(body), headers=auth) as resp:
                root = etree.fromstring(await resp.read())
            msg = root.find(f".//{{{M}}}SyncFolderItemsResponseMessage")
            state = msg.findtext(f"{{{M}}}SyncState")
            done = msg.findtext(f"{{{M}}}IncludesLastItemInRange") == "true"
            ids = "".join(f'<t:ItemId Id="{i.get("Id")}"/>' for i in msg.iter(f"{{{T}}}ItemId"))
            body = (f"<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties>{_FIELDS}"
                    f"</t:AdditionalProperties></m:ItemShape><m:ItemIds>{ids}</m:ItemIds></m:GetItem>")
            async with session.post(credentials["ewsUrl"], data=_envelope(body), headers=auth) as resp:
                items += list(etree.fromstring(await resp.read()).iter(f"{{{T}}}Contact"))
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
