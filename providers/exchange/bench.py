"""Sync speed of N contacts from the EWS emulator: raw SOAP, and through ExchangeConnector (exchangelib).

`python -m providers.exchange.bench --count 10000` starts the emulator in-process on 127.0.0.1, seeds one
mailbox, then times a full sync twice: raw (aiohttp posting SyncFolderItems pages of 512 and GetItem for
each page's ids with every mapped property, as the connector asks) and through the connector (page size
512). The raw figure is the emulator's own throughput; the connector's includes exchangelib's XML parsing,
which dominates.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import time

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from lxml import etree

from gateway.config import ExchangeSettings
from providers.exchange.connector import ExchangeConnector
from providers.exchange.emulator import EmulatorState, create_app
from providers.exchange.ews_xml import ELEMENTS, META_URIS
from providers.exchange.soap import EWS_PATH, SOAP, M, T

_FIELDS = "".join(f'<t:FieldURI FieldURI="{uri}"/>' for uri, _ in (*ELEMENTS.values(), *((u, u) for u in META_URIS)))


def basic_auth(login: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()}


def _envelope(body: str) -> str:
    return (f'<s:Envelope xmlns:s="{SOAP}" xmlns:m="{M}" xmlns:t="{T}"><s:Header><t:RequestServerVersion '
            f'Version="Exchange2016"/></s:Header><s:Body>{body}</s:Body></s:Envelope>')


async def raw_sync(session: ClientSession, url: str, auth: dict[str, str]) -> list[etree._Element]:
    """A full sync of the Contacts folder in raw SOAP; returns the `t:Contact` elements fetched."""
    state, fetched, done = "", [], False
    while not done:
        token = f"<m:SyncState>{state}</m:SyncState>" if state else ""
        body = (f"<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:SyncFolderId>"
                f'<t:DistinguishedFolderId Id="contacts"/></m:SyncFolderId>{token}'
                "<m:MaxChangesReturned>512</m:MaxChangesReturned></m:SyncFolderItems>")
        async with session.post(url, data=_envelope(body), headers=auth) as resp:
            root = etree.fromstring(await resp.read())
        msg = root.find(f".//{{{M}}}SyncFolderItemsResponseMessage")
        state = msg.findtext(f"{{{M}}}SyncState")
        done = msg.findtext(f"{{{M}}}IncludesLastItemInRange") == "true"
        ids = "".join(f'<t:ItemId Id="{i.get("Id")}"/>' for i in msg.iter(f"{{{T}}}ItemId"))
        body = (f"<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties>{_FIELDS}"
                f"</t:AdditionalProperties></m:ItemShape><m:ItemIds>{ids}</m:ItemIds></m:GetItem>")
        async with session.post(url, data=_envelope(body), headers=auth) as resp:
            fetched += etree.fromstring(await resp.read()).iter(f"{{{T}}}Contact")
    return fetched


async def connector_sync(connector: ExchangeConnector) -> int:
    cursor, count, more = None, 0, True
    while more:
        page = await connector.list_changes(cursor)
        cursor, more, count = page.cursor, page.more, count + len(page.changes)
    return count


async def main(count: int) -> None:
    state = EmulatorState()
    state.add_user("bench")
    server = TestServer(create_app(state), host="127.0.0.1")
    await server.start_server()
    try:
        async with ClientSession() as session:
            resp = await session.post(server.make_url("/_control/users"), json={"user": "bench"})
            creds = (await resp.json())["credentials"]
            await session.post(server.make_url("/_control/users/bench/seed"),
                               json={"count": count, "seed": 1, "folders": 0})
            started = time.perf_counter()
            fetched = len(await raw_sync(session, str(server.make_url(EWS_PATH)),
                                         basic_auth(creds["username"], creds["password"])))
            raw_s = time.perf_counter() - started
        connector = ExchangeConnector(creds, ExchangeSettings(page_size=512))
        started = time.perf_counter()
        synced = await connector_sync(connector)
        connector_s = time.perf_counter() - started
        await connector.aclose()
    finally:
        await server.close()
    print(f"raw SOAP:  {fetched} contacts in {raw_s:.2f} s ({fetched / raw_s:,.0f}/s)")
    print(f"connector: {synced} contacts in {connector_s:.2f} s ({synced / connector_s:,.0f}/s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    asyncio.run(main(parser.parse_args().count))
