"""The documentation tests' own fixtures, over tests/conftest.py's `gw` (a real app on a real port).

`live` is that running gateway as an outside client sees it: its base URL, the app's Basic
credentials, a connected fake account's Bearer token, and an address book with a few contacts.
Clients that block (schemathesis uses `requests`, Chromium is a subprocess) run off the event loop,
so the app keeps serving them.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.api.docs import load_spec
from gateway.models import ContactInput
from tests.conftest import Gateway
from tests.fake_provider import FakeProvider

SCHEMA = schemathesis.openapi.from_dict(load_spec())
OPERATIONS = {op.label: op for op in (result.ok() for result in SCHEMA.get_all_operations())}
#: what "every response matches the description" means: status, content type, headers and body
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]

SEED: list[dict[str, Any]] = [
    {"name": {"givenName": "Ada", "familyName": "Lovelace"},
     "company": {"companyName": "Analytical", "jobTitle": "Eng"},
     "emailAddresses": [{"address": "ada@example.com", "type": "work"}],
     "phoneNumbers": [{"number": "+44 1", "type": "work"}, {"number": "+44 2", "type": "mobile"},
                      {"number": "+44 3", "type": "pager"}],
     "addresses": [{"street": "1 Lane\nFlat 2", "city": "London", "postalCode": "N1", "type": "home"}],
     "keywords": ["starred"], "birthday": "--12-10", "notes": "first"},
    {"name": {"displayName": "Grace Hopper"}, "urls": [{"value": "https://example.com", "type": "blog"}],
     "attributes": [{"name": "rank", "value": "admiral"}]},
    {"name": {"givenName": "Edsger"}},
    {"emailAddresses": [{"address": "alan@example.org"}], "phoneNumbers": [{"number": "5", "type": "homeFax"}]},
]


@dataclass
class Live:
    gw: Gateway
    base_url: str
    basic: dict[str, str]
    bearer: dict[str, str]
    account_id: str
    client_id: str
    provider: FakeProvider

    @property
    def auth_for(self) -> dict[str, dict[str, str]]:
        """Headers per security scheme name."""
        return {"bearerAuth": self.bearer, "basicAuth": self.basic}


@pytest.fixture
def openapi() -> dict[str, Any]:
    return load_spec()


@pytest.fixture
async def live(gw: Gateway) -> Live:
    account_id, bearer, provider = await gw.connect("docs", page_size=3)
    for raw in SEED:
        provider.create(ContactInput.model_validate(raw))
    await gw.core.refresher.refresh(account_id)
    client_id = base64.b64decode(gw.basic["Authorization"].split()[1]).decode().partition(":")[0]
    base_url = str(gw.http.make_url("")).rstrip("/")
    return Live(gw, base_url, gw.basic, bearer, account_id, client_id, provider)
