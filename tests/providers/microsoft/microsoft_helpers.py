"""Helpers shared by the Microsoft provider tests: a full holdable contact, delta draining, raw Graph calls.

The movable clock and the control API client are the Google tests' ones: the control API is the same on
every emulator (EMULATORS.md), so one client serves them all.
"""

from __future__ import annotations

from typing import Any

from aiohttp import ClientSession

from tests.providers.google.google_helpers import Control, FakeClock

__all__ = ["FULL", "Control", "FakeClock", "graph_call"]

#: A contact using every field Graph can hold, in the order Graph gives them back (see mapping.py).
FULL: dict[str, Any] = {
    "name": {"displayName": "Dr. Ada King Lovelace Jr.", "prefix": "Dr.", "givenName": "Ada",
             "middleName": "King", "familyName": "Lovelace", "suffix": "Jr.", "nickname": "Countess"},
    "company": {"companyName": "Analytical Engines Ltd", "department": "R&D", "jobTitle": "Analyst",
                "officeLocation": "Building 2"},
    "emailAddresses": [{"address": "ada@example.com", "name": "Ada L."}, {"address": "ada@home.example"}],
    "phoneNumbers": [{"number": "+44 20 0001", "type": "work"}, {"number": "+44 20 0002", "type": "work"},
                     {"number": "+44 20 0003", "type": "home"}, {"number": "+44 20 0000", "type": "mobile"}],
    "addresses": [{"street": "1 Main St\nFlat 2", "city": "London", "state": "Greater London", "postalCode": "W1",
                   "country": "United Kingdom", "type": "work"},
                  {"city": "Paris", "type": "home"}, {"street": "3 Other Road", "type": "other"}],
    "urls": [{"value": "https://ada.example", "type": "work"}],
    "notes": "Met at the Royal Institution.\nLikes engines.",
    "birthday": "1815-12-10",
    "keywords": ["friends", "vip"],
    "attributes": [{"name": "folder", "value": "Work"}],
}



async def graph_call(session: ClientSession, method: str, path: str, token: str | None, expect: int,
                     **kwargs: Any) -> Any:
    """A raw request to the emulator (Graph or identity platform); asserts the status, returns the JSON."""
    headers = dict(kwargs.pop("headers", {}))
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    resp = await session.request(method, path, headers=headers, **kwargs)
    assert resp.status == expect, await resp.text()
    return await resp.json() if resp.status != 204 else None
