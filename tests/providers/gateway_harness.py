"""A gateway wired to one provider emulator, for end-to-end tests of every provider alike."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.config import Settings
from gateway.core import Core, build_core
from gateway.store.connection import RedisHandle
from tests.conftest import open_client


@dataclass
class ProviderGateway:
    http: TestClient
    core: Core
    control: Any  # the emulator's /_control client (tests.providers.google.google_helpers.Control)
    basic: dict[str, str]
    client_id: str
    service_type: str

    async def connect(self, user: str) -> tuple[str, dict[str, str]]:
        """Create a mailbox at the emulator and connect it; returns (accountId, Bearer headers)."""
        created = await self.control.call("POST", "/users", {"user": user}, 201)
        resp = await self.http.post("/v1/accounts", json={"serviceType": self.service_type,
                                                          "credentials": created["credentials"]},
                                    headers=self.basic)
        assert resp.status == 201, await resp.text()
        body = await resp.json()
        return body["accountId"], {"Authorization": f"Bearer {body['accessToken']}"}

    async def sync_all(self, auth: dict[str, str], token: str, stream: str = "updated") -> tuple[list[Any], str]:
        """One whole pass of a stream; returns its records and the next delta token."""
        records: list[Any] = []
        params = {"deltaToken": token, "pageSize": "1000"}
        while True:
            resp = await self.http.get(f"/v1/contacts/sync/{stream}", params=params, headers=auth)
            assert resp.status == 200, await resp.text()
            page = await resp.json()
            records += page["records"]
            if "nextDeltaToken" in page:
                return records, page["nextDeltaToken"]
            params = {"pageToken": page["nextPageToken"], "pageSize": "1000"}

    async def start(self, auth: dict[str, str]) -> dict[str, Any]:
        body = await (await self.http.post("/v1/contacts/sync", headers=auth)).json()
        assert body["ready"] is True, body
        return body  # type: ignore[no-any-return]


@asynccontextmanager
async def provider_gateway(settings: Settings, redis_target: dict[str, Any], control: Any, aiohttp_client: Any,
                           service_type: str) -> AsyncIterator[ProviderGateway]:
    client = open_client(redis_target)
    core = build_core(settings, redis=RedisHandle(client))
    app, secret = await core.identity.create_app(f"{service_type}-test")
    basic = {"Authorization": "Basic " + base64.b64encode(f"{app.client_id}:{secret}".encode()).decode()}
    http = await aiohttp_client(create_app(settings, core=core))
    try:
        yield ProviderGateway(http, core, control, basic, app.client_id, service_type)
    finally:
        keys = [k async for k in client.scan_iter(match=f"{settings.redis.key_prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
        await core.aclose()
