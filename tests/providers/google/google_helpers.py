"""Helpers shared by the Google provider tests: a movable clock, the control API client, a full contact."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.fake_clock import FakeClock

__all__ = ["FULL", "Control", "FakeClock"]


class Control:
    """The emulator's /_control API over HTTP, as the gateway's tests and bench use it."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    async def call(self, method: str, path: str, json: Any = None, expect: int = 200) -> Any:
        resp = await self.client.request(method, f"/_control{path}", json=json)
        assert resp.status == expect, await resp.text()
        return await resp.json() if resp.status not in (204,) else None

    async def add_user(self, user: str) -> str:
        body = await self.call("POST", "/users", {"user": user}, 201)
        return str(body["credentials"]["refreshToken"])

    async def create(self, user: str, contact: dict[str, Any]) -> str:
        return str((await self.call("POST", f"/users/{user}/contacts", contact, 201))["nativeId"])

    async def patch(self, user: str, native_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        return dict(await self.call("PATCH", f"/users/{user}/contacts/{native_id}", fields))

    async def delete(self, user: str, native_id: str) -> None:
        await self.call("DELETE", f"/users/{user}/contacts/{native_id}", expect=204)

    async def seed(self, user: str, count: int, seed: int = 1) -> list[str]:
        body = await self.call("POST", f"/users/{user}/seed", {"count": count, "seed": seed}, 201)
        return list(body["nativeIds"])

    async def fault(self, **fault: Any) -> None:
        await self.call("POST", "/faults", fault, 204)


#: A contact using every field a Person can hold (attribute types aside: userDefined has none).
FULL: dict[str, Any] = {
    "name": {"displayName": "Dr. Ada King Lovelace Jr.", "prefix": "Dr.", "givenName": "Ada",
             "middleName": "King", "familyName": "Lovelace", "suffix": "Jr.", "nickname": "Countess"},
    "company": {"companyName": "Analytical Engines Ltd", "department": "R&D", "jobTitle": "Analyst",
                "officeLocation": "Building 2"},
    "emailAddresses": [{"address": "ada@example.com", "type": "work", "name": "Ada L."},
                       {"address": "ada@home.example", "type": "home"}, {"address": "a@x.example"}],
    "phoneNumbers": [{"number": "+44 20 0000", "type": "mobile"}, {"number": "+44 20 0001", "type": "homeFax"},
                     {"number": "+44 20 0002", "type": "assistant"}, {"number": "+44 20 0003", "type": "pager"},
                     {"number": "555", "type": "car"}, {"number": "556", "type": "main"}],
    "addresses": [{"street": "1 Main St\nFlat 2", "city": "London", "state": "Greater London",
                   "postalCode": "W1", "country": "United Kingdom", "type": "work"},
                  {"city": "Paris", "type": "home"}],
    "urls": [{"value": "https://ada.example", "type": "homePage"}, {"value": "https://blog.example", "type": "blog"},
             {"value": "https://x.example/ada", "type": "profile"}],
    "notes": "Met at the Royal Institution.\nLikes engines.",
    "birthday": "1815-12-10",
    "keywords": ["friends", "vip"],
    "attributes": [{"name": "crmId", "value": "42"}, {"name": "flag"}],
}
