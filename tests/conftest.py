"""Shared fixtures: a real Redis (embedded, or REDIS_URL), a fake provider, the app over HTTP.

Each test gets its own key prefix, so tests never see each other's data and a
shared Redis server is never flushed.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.config import Settings
from gateway.core import Core, build_core
from gateway.store.connection import RedisHandle, start_embedded, stop_embedded
from tests.fake_provider import FakeProvider, FakeRegistry


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests configure the gateway explicitly; only REDIS_URL is honoured (to run against a server)."""
    for name in list(os.environ):
        if name.startswith("GATEWAY_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def redis_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    url = os.environ.get("REDIS_URL")
    if url:
        yield {"url": url}
        return
    socket_path, server = start_embedded(str(tmp_path_factory.mktemp("redis")))
    yield {"unix_socket_path": socket_path}
    stop_embedded(server)


def open_client(target: dict[str, Any]) -> aioredis.Redis:
    if "url" in target and os.environ.get("REDIS_CLUSTER"):
        return aioredis.RedisCluster.from_url(target["url"])  # type: ignore[return-value]
    if "url" in target:
        return aioredis.Redis.from_url(target["url"])
    return aioredis.Redis(unix_socket_path=target["unix_socket_path"])


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    prefix = f"t{uuid.uuid4().hex[:12]}"
    return Settings(
        redis={"key_prefix": prefix, "embedded_dir": str(tmp_path)},
        sync={"refresh_interval_s": 0.0, "refresh_wait_s": 5.0, "provider_backoff_s": 0.01,
              "provider_backoff_max_s": 0.05, "lock_ttl_s": 5.0},
    )


@pytest.fixture
def fakes() -> FakeRegistry:
    return FakeRegistry()


@pytest.fixture
async def core(settings: Settings, redis_target: dict[str, Any], fakes: FakeRegistry) -> AsyncIterator[Core]:
    client = open_client(redis_target)
    built = build_core(settings, {"fake": fakes.factory()}, redis=RedisHandle(client))
    yield built
    keys = [k async for k in client.scan_iter(match=f"{settings.redis.key_prefix}:*", count=1000)]
    if keys:
        await client.delete(*keys)
    await built.aclose()


@dataclass
class Gateway:
    """An HTTP client of the running app plus what a test needs to act as an app and its accounts."""

    http: TestClient
    core: Core
    fakes: FakeRegistry
    basic: dict[str, str]

    async def connect(self, mailbox: str, page_size: int = 50) -> tuple[str, dict[str, str], FakeProvider]:
        """Connect a fake mailbox; returns (accountId, Bearer headers, the provider's truth)."""
        provider = self.fakes.mailbox(mailbox, page_size)
        resp = await self.http.post("/v1/accounts", json={"serviceType": "fake", "credentials": {"mailbox": mailbox}},
                                    headers=self.basic)
        assert resp.status == 201, await resp.text()
        body = await resp.json()
        return body["accountId"], {"Authorization": f"Bearer {body['accessToken']}"}, provider


@pytest.fixture
async def gw(core: Core, settings: Settings, fakes: FakeRegistry, aiohttp_client: Any) -> Gateway:
    app_record, secret = await core.identity.create_app("test-app")
    creds = base64.b64encode(f"{app_record.client_id}:{secret}".encode()).decode()
    http = await aiohttp_client(create_app(settings, core=core))
    return Gateway(http, core, fakes, {"Authorization": f"Basic {creds}"})
