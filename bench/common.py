"""What the benchmarks share: an embedded Redis of their own, a gateway in a subprocess, timing, the table."""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson

from gateway.config import Settings
from gateway.core import Core, build_core
from gateway.store.connection import RedisHandle


@dataclass
class Row:
    section: str
    metric: str
    value: str
    target: str = ""
    verdict: str = ""


@dataclass
class Table:
    rows: list[Row] = field(default_factory=list)

    def add(self, section: str, metric: str, value: str, target: str = "", ok: bool | None = None) -> None:
        verdict = "" if ok is None else ("ok" if ok else "MISSED")
        self.rows.append(Row(section, metric, value, target, verdict))
        print(f"  {section:<10} {metric:<58} {value:>16}  {target:<14} {verdict}", flush=True)

    def render(self) -> str:
        head = ("section", "metric", "value", "target", "")
        widths = [max(len(str(getattr(r, f))) for r in self.rows + [Row(*head)])
                  for f in ("section", "metric", "value", "target", "verdict")]
        lines = [" | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
        lines.append("-+-".join("-" * w for w in widths))
        for r in self.rows:
            cells = (r.section, r.metric, r.value, r.target, r.verdict)
            lines.append(" | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)))
        return "\n".join(lines)


def median_time(times: list[float]) -> float:
    return statistics.median(times)


async def timed(fn: Callable[[], Awaitable[object]]) -> float:
    start = time.perf_counter()
    await fn()
    return time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_settings(directory: Path, prefix: str = "bench") -> Settings:
    return Settings(redis={"embedded_dir": str(directory), "key_prefix": prefix},
                    sync={"refresh_interval_s": 1e9})


def core_for(settings: Settings, handle: RedisHandle | None = None) -> Core:
    return build_core(settings, redis=handle)


class GatewayProcess:
    """`contacts-gateway serve` in its own process, as a client would meet it, on the bench's Redis."""

    def __init__(self, directory: Path, prefix: str = "bench") -> None:
        self.port = free_port()
        env = {**os.environ, "GATEWAY_REDIS__EMBEDDED_DIR": str(directory), "GATEWAY_REDIS__KEY_PREFIX": prefix,
               "GATEWAY_SYNC__REFRESH_INTERVAL_S": "1e9", "GATEWAY_HTTP__PORT": str(self.port)}
        env.pop("REDIS_URL", None)
        self.proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve"], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{self.port}"

    async def ready(self) -> None:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                try:
                    async with session.get(f"{self.base}/readyz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError("the gateway did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


async def full_pass(session: aiohttp.ClientSession, base: str, auth: dict[str, str], token: str,
                    page_size: int) -> int:
    """Follow one pass of the updated stream to its end; returns the number of records."""
    params = {"deltaToken": token, "pageSize": str(page_size)}
    count = 0
    while True:
        async with session.get(f"{base}/v1/contacts/sync/updated", params=params, headers=auth) as resp:
            page = orjson.loads(await resp.read())
        count += len(page["records"])
        if "nextDeltaToken" in page:
            return count
        params = {"pageToken": page["nextPageToken"], "pageSize": str(page_size)}
