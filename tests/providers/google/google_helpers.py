"""Helpers shared by the Google provider tests: a movable clock, the control API client, a full contact."""

from __future__ import annotations

from typing import Any

from tests.fake_clock import FakeClock
from tests.providers.control import EmulatorControl

__all__ = ["FULL", "Control", "FakeClock"]


class Control(EmulatorControl):
    """The Google (and Graph) emulator's /_control API: a new user's credentials are a refresh token."""

    async def add_user(self, user: str) -> str:
        body = await self.call("POST", "/users", {"user": user}, 201)
        return str(body["credentials"]["refreshToken"])


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
