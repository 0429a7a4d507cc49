"""Schemathesis against the running gateway: no 5xx, and every response as the description says.

One test per documented operation, against the app served on a real port with real credentials
(the app's Basic clientId:clientSecret, a connected fake account's Bearer token). Each draws cases
from schemathesis' positive and negative strategies, and positive ones steered to real values
(a contact id and its ETag, live sync tokens, a device session, a one-time OAuth state), so the
success paths are reached as well as the refusals; about one case in ten keeps the credentials
schemathesis generated, to reach the 401s. Every response goes through schemathesis' checks:
not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance
and response_schema_conformance. The blocking HTTP client runs in a thread while the app serves on
the test's event loop.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import jsonschema_rs  # schemathesis' own JSON Schema validator (ECMA-262 regexes, unlike `jsonschema`)
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core import NOT_SET

from gateway.api.docs import load_spec
from tests.docs.conftest import CHECKS, OPERATIONS, SCHEMA, Live

#: cases per operation; DOCS_FUZZ_EXAMPLES=500 for a long local run
EXAMPLES = int(os.environ.get("DOCS_FUZZ_EXAMPLES", "40"))


async def _json(live: Live, method: str, path: str, headers: dict[str, str], **kw: Any) -> Any:
    resp = await live.gw.http.request(method, path, headers=headers, **kw)
    assert resp.status < 300, await resp.text()
    return await resp.json()


async def steering(live: Live, label: str) -> list[dict[str, Any]]:
    """Explicit parts (as_strategy keyword arguments) that lead an operation past its refusals."""
    method, path = label.split(" ", 1)
    bearer = live.bearer
    page = await _json(live, "GET", "/v1/contacts?pageSize=2", bearer)
    contact = page["records"][0]
    device = {"X-Device-UUID": str(uuid.uuid4())}
    if path.startswith("/v1/accounts/"):
        return [{"path_parameters": {"id": live.account_id}}]
    if path == "/v1/accounts" and method == "POST":
        return [{"body": {"serviceType": "fake", "credentials": {"mailbox": "fuzz"}}},
                {"body": {"serviceType": "fake", "credentials": {"mailbox": "fuzz"}, "user": "u@example.com"}}]
    if path == "/v1/contacts/{id}":
        etag = f'"{contact["etag"]}"'
        return [{"path_parameters": {"id": contact["id"]}},
                {"path_parameters": {"id": contact["id"]}, "headers": {"If-Match": etag, "If-None-Match": etag}}]
    if path == "/v1/contacts":
        return [{"query": {"pageToken": page["nextPageToken"]}}]
    if path.startswith("/v1/contacts/sync/"):
        tokens = await _json(live, "POST", "/v1/contacts/sync", bearer)
        delta = tokens["syncUpdatedToken" if path.endswith("updated") else "syncDeletedToken"]
        first = await _json(live, "GET", f"{path}?deltaToken={delta}&pageSize=1", bearer)
        steer = [{"query": {"deltaToken": delta}}]
        if "nextPageToken" in first:
            steer.append({"query": {"pageToken": first["nextPageToken"]}})
        return steer
    if path == "/api/user/contacts/sync_tokens/{token}":
        token = (await _json(live, "POST", "/api/user/contacts/sync_tokens", bearer))["token"]
        live.provider.create(live.provider.contacts["n1"][1])
        return [{"path_parameters": {"token": token}}]
    if path == "/v2/sync/start":
        return [{"headers": device}, {"headers": {"X-Basecrm-Device-UUID": device["X-Device-UUID"]}}]
    if path == "/v2/sync/{session}/queues/main":
        session = await _json(live, "POST", "/v2/sync/start", {**bearer, **device})
        return [{"headers": device, "path_parameters": {"session": session["data"]["id"]}}]
    if path == "/v2/sync/ack":
        return [{"headers": device, "body": {"data": {"ack_keys": [f"{contact['id']}.1", f"{contact['id']}.7"]}}}]
    if path == "/v1/auth/authorize":
        return [{"query": {"clientId": live.client_id, "serviceType": "google",
                           "returnUrl": "https://app.example/done"}},
                {"query": {"clientId": live.client_id}}]
    if path == "/v1/auth/callback":  # a fake provider has no browser flow: no code is ever redeemed over the net
        flow = {"clientId": live.client_id, "serviceType": "fake", "returnUrl": "https://app.example/done"}
        states = [await live.gw.core.identity.put_oauth_state(flow) for _ in range(3)]
        return [{"query": {"state": state}} for state in states]
    return []


#: Where a generated body names a URL the gateway would call (a webhook's notificationUrl), it gets this
#: loopback one instead: a test never makes the gateway reach out past this machine.
LOOPBACK_URL = "http://127.0.0.1:9/hook"


def avoid_outbound(case: schemathesis.Case) -> None:
    if isinstance(case.body, dict) and "notificationUrl" in case.body:
        case.body = {**case.body, "notificationUrl": LOOPBACK_URL}


def credentials(live: Live, label: str) -> dict[str, str]:
    operation = OPERATIONS[label]
    security = operation.definition.raw.get("security", SCHEMA.raw_schema.get("security", []))
    headers: dict[str, str] = {}
    for scheme in security[0] if security else {}:  # the first alternative the operation accepts
        headers.update(live.auth_for[scheme])
    return headers


def fuzz(live: Live, label: str, steer: list[dict[str, Any]]) -> dict[int, int]:
    operation = OPERATIONS[label]
    auth = credentials(live, label)
    strategies = [operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)]
    strategies += [operation.as_strategy(GenerationMode.POSITIVE, **explicit) for explicit in steer]
    # about one case in ten keeps the credentials schemathesis generated (not a boundary value: hypothesis
    # favours those), the others carry the real ones
    keep_generated = st.integers(0, 9).map(lambda n: n == 6) if auth else st.just(True)
    statuses: dict[int, int] = {}

    with requests.Session() as session:
        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=st.one_of(strategies), generated_auth=keep_generated)
        def run(case: schemathesis.Case, generated_auth: bool) -> None:
            if not generated_auth:
                case.headers = {**(case.headers or {}), **auth}
            avoid_outbound(case)
            response = case.call(base_url=live.base_url, session=session, timeout=15)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            case.validate_response(response, checks=CHECKS)

        run()
    return statuses


@pytest.mark.parametrize("label", sorted(OPERATIONS))
async def test_operation_conforms_to_the_description(live: Live, label: str) -> None:
    steer = await steering(live, label)
    statuses = await asyncio.to_thread(fuzz, live, label, steer)
    assert sum(statuses.values()) >= min(EXAMPLES, 5), statuses


# -- ContactInput: the gateway accepts exactly the bodies the description allows --------------------------

def contact_bodies(live: Live) -> list[tuple[bool, int]]:
    """Positive and negative POST /v1/contacts bodies: (valid per the description, status) of each."""
    spec = load_spec()
    validator = jsonschema_rs.validator_for({**spec["components"]["schemas"]["ContactInput"],
                                             "components": spec["components"]})
    operation = OPERATIONS["POST /v1/contacts"]
    bodies = st.one_of(operation.as_strategy(GenerationMode.POSITIVE, headers=live.bearer),
                       operation.as_strategy(GenerationMode.NEGATIVE, headers=live.bearer))
    seen: list[tuple[bool, int]] = []

    with requests.Session() as session:
        @settings(max_examples=2 * EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=bodies)
        def run(case: schemathesis.Case) -> None:
            if case.body is NOT_SET or isinstance(case.body, bytes):
                return  # no JSON body at all is the JSON-body tests' business
            resp = session.post(f"{live.base_url}/v1/contacts", json=case.body, headers=live.bearer, timeout=15)
            valid = validator.is_valid(case.body)
            seen.append((valid, resp.status_code))
            assert resp.status_code == (201 if valid else 400), (case.body, valid, resp.text)

        run()
    return seen


async def test_contact_bodies_are_accepted_exactly_when_the_description_allows(live: Live) -> None:
    seen = await asyncio.to_thread(contact_bodies, live)
    assert {valid for valid, _ in seen} == {True, False}, "both kinds of bodies were sent"


# -- what schemathesis found (bugs since fixed), reproduced byte for byte ----------------------------------
# Headers arrive as bytes; aiohttp decodes them as UTF-8 with surrogate escapes, so a byte like 0xE2
# becomes '\udce2', which code that encodes it again cannot handle.

async def raw_request(live: Live, head: list[bytes]) -> tuple[int, bytes, bytes]:
    server = live.gw.http.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(b"\r\n".join([*head, b"Host: gateway", b"Connection: close", b"", b""]))
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    headers, _, body = answer.partition(b"\r\n\r\n")
    return int(headers.split()[1]), headers, body


def _is_documented_error(status: int, headers: bytes, body: bytes) -> bool:
    return status < 500 and b"x-request-id:" in headers.lower() and b'"code"' in body


async def test_non_utf8_bearer_token_is_a_401_not_a_500(live: Live) -> None:
    status, headers, body = await raw_request(live, [b"GET /v1/contacts HTTP/1.1", b"Authorization: Bearer \xe2"])
    assert status == 401 and _is_documented_error(status, headers, body), (status, body)


async def test_non_ascii_basic_credentials_are_a_401_not_a_500(live: Live) -> None:
    status, headers, body = await raw_request(live, [b"GET /v1/accounts HTTP/1.1", b"Authorization: Basic \xe2abc"])
    assert status == 401 and _is_documented_error(status, headers, body), (status, body)


async def test_non_utf8_request_id_still_gets_its_json_error(live: Live) -> None:
    status, headers, body = await raw_request(live, [b"GET /nope HTTP/1.1", b"X-Request-Id: \xe2"])
    assert status == 404 and _is_documented_error(status, headers, body), (status, body)


async def test_superscript_page_size_is_a_400_not_a_500(live: Live) -> None:
    token = live.bearer["Authorization"].encode()
    status, headers, body = await raw_request(
        live, [b"GET /v1/contacts?pageSize=%C2%B2 HTTP/1.1", b"Authorization: " + token])
    assert status == 400 and _is_documented_error(status, headers, body), (status, body)
