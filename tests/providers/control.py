"""A client of the /_control API every provider emulator serves (../shared/EMULATORS.md), over HTTP."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient


class EmulatorControl:
    """The calls every emulator answers alike; provider helpers add their own (credentials, folders, ...)."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    async def call(self, method: str, path: str, json: Any = None, expect: int = 200) -> Any:
        resp = await self.client.request(method, f"/_control{path}", json=json)
        assert resp.status == expect, await resp.text()
        return await resp.json() if resp.status != 204 else None

    async def create(self, user: str, contact: dict[str, Any]) -> str:
        return str((await self.call("POST", f"/users/{user}/contacts", contact, 201))["nativeId"])

    async def patch(self, user: str, native_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        return dict(await self.call("PATCH", f"/users/{user}/contacts/{native_id}", fields))

    async def delete(self, user: str, native_id: str) -> None:
        await self.call("DELETE", f"/users/{user}/contacts/{native_id}", expect=204)

    async def seed(self, user: str, count: int, seed: int = 1, **options: Any) -> list[str]:
        body = await self.call("POST", f"/users/{user}/seed", {"count": count, "seed": seed, **options}, 201)
        return list(body["nativeIds"])

    async def fault(self, **fault: Any) -> None:
        await self.call("POST", "/faults", fault, 204)

    async def expire(self, user: str) -> None:
        await self.call("POST", f"/users/{user}/expire-cursors", expect=204)

    async def truth(self, user: str) -> dict[str, dict[str, Any]]:
        return {c["nativeId"]: c["contact"] for c in await self.call("GET", f"/users/{user}/contacts")}
