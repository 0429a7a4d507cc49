"""Every documented answer, really given: the gateway's flows driven to each status the description lists.

Random cases (test_docs_schemathesis.py) seldom reach a 412, a 410, a 429, a second sync page or a
device queue; here each is provoked on purpose, through the running app on its real port, and every
response goes through the same schemathesis checks. At the end, each (operation, status) that the
description documents for the gateway's own faces must have been seen: a documented error that can
no longer happen, or a new one left undocumented, fails here.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import requests
from redis.exceptions import ConnectionError as RedisConnectionError
from schemathesis.core import NOT_SET

from gateway.models import ContactInput
from providers.base import Unavailable
from tests.docs.conftest import CHECKS, OPERATIONS, Live

#: the faces this description was written with; other faces are fuzzed (test_docs_schemathesis.py)
#: and their own tests provoke their answers
FACES = {"health", "accounts", "auth", "contacts", "sync", "sync-tokens", "device-sync", "docs"}
TOO_LARGE = {"notes": "x" * (1024 * 1024 + 1)}


class Api:
    """Calls one documented operation, checks the response against the description, records the status."""

    def __init__(self, live: Live) -> None:
        self.live = live
        self.session = requests.Session()
        self.seen: set[tuple[str, int]] = set()

    async def __call__(self, label: str, expect: int, auth: dict[str, str] | None = None, body: Any = NOT_SET,
                       **parts: Any) -> Any:
        case = OPERATIONS[label].Case(body=body, **parts)
        headers = self.live.bearer if auth is None else auth
        response = await asyncio.to_thread(case.call, base_url=self.live.base_url, session=self.session,
                                           headers=headers, timeout=30)
        assert response.status_code == expect, (label, response.status_code, response.text[:500])
        # a 503 provoked on purpose is documented; everything else about it is still checked
        case.validate_response(response, checks=CHECKS if expect < 500 else CHECKS[1:])
        self.seen.add((label, expect))
        if response.headers.get("content-type", [""])[0].startswith("application/json"):
            return response.json()
        return response


def documented(openapi: dict[str, Any]) -> set[tuple[str, int]]:
    return {(f"{method.upper()} {path}", int(code)) for path, item in openapi["paths"].items()
            for method, op in item.items() if isinstance(op, dict) and "responses" in op
            and FACES & set(op.get("tags", [])) for code in op["responses"]}


async def health_and_docs(api: Api, live: Live) -> None:
    await api("GET /healthz", 200, auth={})
    await api("GET /readyz", 200, auth={})
    client = live.gw.core.redis.client
    original = client.ping

    async def down() -> None:
        raise RedisConnectionError("connection refused")

    client.ping = down  # type: ignore[method-assign]
    try:
        await api("GET /readyz", 503, auth={})
    finally:
        client.ping = original  # type: ignore[method-assign]
    await api("GET /api-docs/openapi.json", 200, auth={})
    await api("GET /api-docs/ui", 200, auth={})
    for name in ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-16x16.png"):
        await api("GET /api-docs/assets/{asset}", 200, auth={}, path_parameters={"asset": name})
    await api("GET /api-docs/assets/{asset}", 404, auth={}, path_parameters={"asset": "index.html"})


async def accounts(api: Api, live: Live) -> None:
    basic = live.basic
    made = await api("POST /v1/accounts", 201, auth=basic, body={"serviceType": "fake",
                                                                  "credentials": {"mailbox": "spare"}, "user": "u"})
    for body, code in (({"serviceType": "nope", "credentials": {}}, "validation_error"),
                       ({"serviceType": "fake", "credentials": {}}, "account.credentials_invalid"),
                       ({"serviceType": "fake", "credentials": {"mailbox": "m"}, "x": 1}, "validation_error")):
        assert (await api("POST /v1/accounts", 400, auth=basic, body=body))["code"] == code
    await api("POST /v1/accounts", 401, auth={})
    await api("POST /v1/accounts", 413, auth=basic, body=TOO_LARGE)
    listed = await api("GET /v1/accounts", 200, auth=basic)
    assert {a["accountId"] for a in listed["records"]} == {live.account_id, made["accountId"]}
    await api("GET /v1/accounts", 401, auth={"Authorization": "Basic !!!"})
    spare = {"id": made["accountId"]}
    assert (await api("GET /v1/accounts/{id}", 200, auth=basic, path_parameters=spare))["user"] == "u"
    await api("GET /v1/accounts/{id}", 404, auth=basic, path_parameters={"id": "acc_none"})
    await api("GET /v1/accounts/{id}", 401, auth=live.bearer, path_parameters=spare)
    await api("POST /v1/accounts/{id}/token", 200, auth=basic, path_parameters=spare)
    await api("POST /v1/accounts/{id}/token", 404, auth=basic, path_parameters={"id": "acc_none"})
    await api("POST /v1/accounts/{id}/token", 401, auth={}, path_parameters=spare)
    await api("DELETE /v1/accounts/{id}", 204, auth=basic, path_parameters=spare)
    await api("DELETE /v1/accounts/{id}", 404, auth=basic, path_parameters=spare)
    await api("DELETE /v1/accounts/{id}", 401, auth={}, path_parameters=spare)


async def auth_flow(api: Api, live: Live) -> None:
    back = "https://app.example/done"
    query = {"clientId": live.client_id, "serviceType": "google", "returnUrl": back}
    to_google = await api("GET /v1/auth/authorize", 302, auth={}, query=query)
    assert to_google.headers["location"][0].startswith("https://accounts.google.com/")
    await api("GET /v1/auth/authorize", 400, auth={}, query={**query, "serviceType": "fake"})
    # the fake provider has no browser flow: the callback sends the user back with an error, redeeming nothing
    flow = {"clientId": live.client_id, "serviceType": "fake", "returnUrl": back}
    state = await live.gw.core.identity.put_oauth_state(flow)
    returned = await api("GET /v1/auth/callback", 302, auth={}, query={"state": state, "code": "c"})
    assert returned.headers["location"][0].startswith(back + "?") and "status=error" in returned.headers["location"][0]
    await api("GET /v1/auth/callback", 400, auth={}, query={"state": state})  # used once


async def contacts(api: Api, live: Live) -> None:
    first = await api("GET /v1/contacts", 200, query={"pageSize": 3})
    rest = await api("GET /v1/contacts", 200, query={"pageToken": first["nextPageToken"]})
    assert len(first["records"]) + len(rest["records"]) == 4 and "nextPageToken" not in rest
    await api("GET /v1/contacts", 400, query={"pageSize": 0})
    await api("GET /v1/contacts", 401, auth={})
    created = await api("POST /v1/contacts", 201, body={"name": {"givenName": "New"}, "keywords": ["favorite"]})
    await api("POST /v1/contacts", 400, body={"name": {"givenName": "x" * 257}})
    await api("POST /v1/contacts", 401, auth={}, body={})
    await api("POST /v1/contacts", 413, body=TOO_LARGE)
    live.provider.fail_next = [Unavailable("down", retry_after=1)] * 10
    await api("POST /v1/contacts", 503, body={})
    one = {"id": created["id"]}
    etag = f'"{created["etag"]}"'
    await api("GET /v1/contacts/{id}", 200, path_parameters=one)
    await api("GET /v1/contacts/{id}", 304, path_parameters=one, headers={"If-None-Match": etag})
    await api("GET /v1/contacts/{id}", 404, path_parameters={"id": "none"})
    await api("GET /v1/contacts/{id}", 401, auth={}, path_parameters=one)
    patch = {"notes": "met", "name": None}
    await api("PATCH /v1/contacts/{id}", 428, path_parameters=one, body=patch)
    await api("PATCH /v1/contacts/{id}", 412, path_parameters=one, headers={"If-Match": '"0"'}, body=patch)
    await api("PATCH /v1/contacts/{id}", 400, path_parameters=one, headers={"If-Match": etag}, body={"id": "x"})
    await api("PATCH /v1/contacts/{id}", 404, path_parameters={"id": "none"}, headers={"If-Match": etag}, body={})
    await api("PATCH /v1/contacts/{id}", 401, auth={}, path_parameters=one, headers={"If-Match": etag}, body={})
    await api("PATCH /v1/contacts/{id}", 413, path_parameters=one, headers={"If-Match": etag}, body=TOO_LARGE)
    live.provider.fail_next = [Unavailable("down")] * 10
    await api("PATCH /v1/contacts/{id}", 503, path_parameters=one, headers={"If-Match": etag}, body=patch)
    live.provider.fail_next = []
    changed = await api("PATCH /v1/contacts/{id}", 200, path_parameters=one, headers={"If-Match": etag}, body=patch)
    assert changed["notes"] == "met" and "name" not in changed
    await api("DELETE /v1/contacts/{id}", 412, path_parameters=one, headers={"If-Match": etag})
    live.provider.fail_next = [Unavailable("down")] * 10
    await api("DELETE /v1/contacts/{id}", 503, path_parameters=one)
    live.provider.fail_next = []
    await api("DELETE /v1/contacts/{id}", 401, auth={}, path_parameters=one)
    await api("DELETE /v1/contacts/{id}", 204, path_parameters=one, headers={"If-Match": f'"{changed["etag"]}"'})
    await api("DELETE /v1/contacts/{id}", 404, path_parameters=one)


async def delta_sync(api: Api, live: Live) -> None:
    core, account_id = live.gw.core, live.account_id
    await api("POST /v1/contacts/sync", 401, auth={})
    await api("POST /v1/contacts/sync", 400, query={"awaitReady": "maybe"})
    tokens = await api("POST /v1/contacts/sync", 200, query={"awaitReady": "true"})
    assert tokens["ready"] is True
    for stream, key in (("updated", "syncUpdatedToken"), ("deleted", "syncDeletedToken")):
        label = f"GET /v1/contacts/sync/{stream}"
        page = await api(label, 200, query={"deltaToken": tokens[key], "pageSize": 1})
        while "nextPageToken" in page:
            page = await api(label, 200, query={"pageToken": page["nextPageToken"], "pageSize": 1})
        await api(label, 400, query={})
        await api(label, 400, query={"deltaToken": "forged"})
        await api(label, 401, auth={}, query={"deltaToken": tokens[key]})
        native = live.provider.create(ContactInput.model_validate({"name": {"givenName": stream}}))
        live.provider.delete(native)
        moved = await api(label, 200, query={"deltaToken": page["nextDeltaToken"]})
        await core.store.set_state(account_id, floor=10**12)  # as if tombstones were compacted past it
        await api(label, 410, query={"deltaToken": moved["nextDeltaToken"]})
        await core.store.set_state(account_id, floor=0)


async def sync_tokens(api: Api, live: Live) -> None:
    core, account_id = live.gw.core, live.account_id
    await api("POST /api/user/contacts/sync_tokens", 401, auth={})
    token = (await api("POST /api/user/contacts/sync_tokens", 200))["token"]
    label = "POST /api/user/contacts/sync_tokens/{token}"
    await api(label, 401, auth={}, path_parameters={"token": token})
    await api(label, 400, path_parameters={"token": "forged"})
    await api(label, 400, path_parameters={"token": token}, query={"limit": 0})
    kept = live.provider.create(ContactInput.model_validate({"name": {"givenName": "Kept"}}))
    live.provider.create(ContactInput.model_validate({"name": {"displayName": "Other"}}))
    live.provider.delete(next(iter(sorted(live.provider.contacts))))
    live.provider.update(kept, ContactInput.model_validate({"name": {"givenName": "Kept2"}}))
    kinds: set[str] = set()
    page = {"more": True, "token": token}
    while page["more"]:
        page = await api(label, 200, path_parameters={"token": page["token"]}, query={"limit": 1})
        kinds |= {item["change_type"] for item in page["items"]}
    assert kinds == {"CREATED", "DELETED"}
    await core.store.set_state(account_id, floor=10**12)
    await api(label, 410, path_parameters={"token": token})
    await core.store.set_state(account_id, floor=0)


async def device_sync(api: Api, live: Live) -> None:
    device = {"X-Device-UUID": str(uuid.uuid4())}
    await api("POST /v2/sync/start", 401, auth={}, headers=device)
    await api("POST /v2/sync/start", 400, headers={"X-Device-UUID": "not-a-uuid"})
    session = await api("POST /v2/sync/start", 201, headers=device)
    where = {"session": session["data"]["id"]}
    label = "GET /v2/sync/{session}/queues/main"
    items: list[dict[str, Any]] = []
    live.gw.core.sessions.page_size = 2
    while True:
        page = await api(label, 200 if len(items) < session["data"]["queues"][0]["data"]["total_count"] else 204,
                         headers=device, path_parameters=where)
        if not isinstance(page, dict):
            break
        items += page["items"]
    await api(label, 400, path_parameters=where)
    await api(label, 401, auth={}, headers=device, path_parameters=where)
    await api(label, 404, headers={"X-Device-UUID": str(uuid.uuid4())}, path_parameters=where)
    keys = [item["meta"]["sync"]["ack_key"] for item in items]
    await api("POST /v2/sync/ack", 400, headers=device, body={"data": {"ack_keys": ["nodot"]}})
    await api("POST /v2/sync/ack", 401, auth={}, headers=device, body={"data": {"ack_keys": keys}})
    await api("POST /v2/sync/ack", 413, headers=device, body=TOO_LARGE)
    await api("POST /v2/sync/ack", 202, headers=device, body={"data": {"ack_keys": keys}})
    await api("POST /v2/sync/start", 204, headers={"X-Basecrm-Device-UUID": device["X-Device-UUID"]})
    live.gw.core.sessions.max_sessions = 1
    await api("POST /v2/sync/start", 429, headers={"X-Device-UUID": str(uuid.uuid4())})


async def reauth(api: Api, live: Live) -> None:
    await live.gw.core.identity.set_status(live.account_id, "reauth_required")
    body = await api("GET /v1/contacts", 401)
    assert body["code"] == "account.reauth_required"
    await live.gw.core.identity.set_status(live.account_id, "active")


async def test_every_documented_answer_is_given_and_matches(live: Live, openapi: dict[str, Any]) -> None:
    api = Api(live)
    try:
        for flow in (health_and_docs, accounts, auth_flow, contacts, delta_sync, sync_tokens, device_sync, reauth):
            await flow(api, live)
    finally:
        api.session.close()
    missing = documented(openapi) - api.seen
    assert missing == set(), f"documented, never provoked: {sorted(missing)}"
