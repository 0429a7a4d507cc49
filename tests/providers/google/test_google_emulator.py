"""Pins of the emulator's People API behaviour (raw HTTP), where the connector depends on it."""

from __future__ import annotations

import time
from typing import Any

from aiohttp.test_utils import TestClient
from yarl import URL

from providers.google.emulator import EmulatorState
from providers.google.mapping import PERSON_FIELDS
from tests.providers.google.google_helpers import Control, FakeClock

CONNECTIONS = "/v1/people/me/connections"
EXPIRED_BODY = {"error": {
    "code": 400, "status": "FAILED_PRECONDITION",
    "message": "Sync token is expired. Clear local cache and retry call without the sync token.",
    "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "EXPIRED_SYNC_TOKEN",
                 "domain": "people.googleapis.com"}]}}


async def login(client: TestClient, state: EmulatorState, refresh_token: str) -> dict[str, str]:
    resp = await client.post("/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token,
                                             "client_id": state.client_id, "client_secret": state.client_secret})
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    return {"Authorization": f"Bearer {body['access_token']}"}


async def call(client: TestClient, method: str, path: str, headers: dict[str, str], expect: int,
               **kwargs: Any) -> Any:
    resp = await client.request(method, path, headers=headers, **kwargs)
    assert resp.status == expect, await resp.text()
    return await resp.json()


async def user(control: Control, state: EmulatorState, name: str) -> dict[str, str]:
    return await login(control.client, state, await control.add_user(name))


async def test_page_size_limits(control: Control, state: EmulatorState) -> None:
    auth = await user(control, state, "alice")
    await control.seed("alice", 150)
    c = control.client
    for bad in ("1001", "-1", "ten"):
        body = await call(c, "GET", CONNECTIONS, auth, 400, params={"personFields": "names", "pageSize": bad})
        assert body["error"]["status"] == "INVALID_ARGUMENT" and body["error"]["code"] == 400
    for default in ({"pageSize": "0"}, {}):
        body = await call(c, "GET", CONNECTIONS, auth, 200, params={"personFields": "names", **default})
        assert len(body["connections"]) == 100 and "nextPageToken" in body and "nextSyncToken" not in body
        assert body["totalItems"] == 150
    body = await call(c, "GET", CONNECTIONS, auth, 200, params={"personFields": "names", "pageSize": "1000"})
    assert len(body["connections"]) == 150 and "nextPageToken" not in body and "nextSyncToken" not in body
    assert set(body["connections"][0]) == {"resourceName", "etag", "names"}


async def test_field_masks_are_required(control: Control, state: EmulatorState) -> None:
    auth = await user(control, state, "alice")
    native_id = await control.create("alice", {"notes": "x"})
    c = control.client
    for path in (CONNECTIONS, f"/v1/{native_id}"):
        body = await call(c, "GET", path, auth, 400)
        assert "personFields" in body["error"]["message"] and body["error"]["status"] == "INVALID_ARGUMENT"
        await call(c, "GET", path, auth, 400, params={"personFields": "names,bogus"})
    person = await call(c, "GET", f"/v1/{native_id}", auth, 200, params={"personFields": "biographies"})
    await call(c, "PATCH", f"/v1/{native_id}:updateContact", auth, 400, json={"etag": person["etag"]})
    await call(c, "PATCH", f"/v1/{native_id}:updateContact", auth, 400, json={"etag": person["etag"]},
               params={"updatePersonFields": "photos"})


async def test_users_are_isolated(control: Control, state: EmulatorState) -> None:
    alice, bob = await user(control, state, "alice"), await user(control, state, "bob")
    alice_ids, bob_ids = await control.seed("alice", 3, seed=1), await control.seed("bob", 4, seed=1)
    c = control.client
    for auth, own in ((alice, alice_ids), (bob, bob_ids)):
        body = await call(c, "GET", CONNECTIONS, auth, 200, params={"personFields": "names"})
        assert [p["resourceName"] for p in body["connections"]] == own
    foreign = bob_ids[0]
    await call(c, "GET", f"/v1/{foreign}", alice, 404, params={"personFields": "names"})
    await call(c, "PATCH", f"/v1/{foreign}:updateContact", alice, 404, params={"updatePersonFields": "names"},
               json={"etag": "%x", "names": [{"givenName": "Mallory"}]})
    await call(c, "DELETE", f"/v1/{foreign}:deleteContact", alice, 404)
    truth = await control.call("GET", "/users/bob/contacts")
    assert [t["nativeId"] for t in truth] == bob_ids
    # the same seed gives the same contacts, whoever they belong to
    alice_truth = await control.call("GET", "/users/alice/contacts")
    assert [t["contact"] for t in alice_truth] == [t["contact"] for t in truth[:3]]


async def test_sync_tokens_pages_and_tombstones(control: Control, state: EmulatorState, clock: FakeClock) -> None:
    auth = await user(control, state, "alice")
    seeded = await control.seed("alice", 5)
    c, params = control.client, {"personFields": PERSON_FIELDS, "pageSize": "2", "requestSyncToken": "true"}
    pages = [await call(c, "GET", CONNECTIONS, auth, 200, params=params)]
    while "nextPageToken" in pages[-1]:
        assert "nextSyncToken" not in pages[-1]
        pages.append(await call(c, "GET", CONNECTIONS, auth, 200,
                                params={**params, "pageToken": pages[-1]["nextPageToken"]}))
    assert [len(p["connections"]) for p in pages] == [2, 2, 1]
    sync = pages[-1]["nextSyncToken"]

    await control.delete("alice", seeded[2])
    created = await control.create("alice", {"notes": "new"})
    inc = {"personFields": PERSON_FIELDS, "syncToken": sync}
    body = await call(c, "GET", CONNECTIONS, auth, 200, params=inc)
    tombstone, fresh = body["connections"]
    assert tombstone["resourceName"] == seeded[2] and tombstone["metadata"]["deleted"] is True
    assert set(tombstone) == {"resourceName", "etag", "metadata"}
    assert fresh["resourceName"] == created and fresh["biographies"][0]["value"] == "new"
    after = await call(c, "GET", CONNECTIONS, auth, 200, params={**inc, "syncToken": body["nextSyncToken"]})
    assert "connections" not in after and after["nextSyncToken"]

    full = await call(c, "GET", CONNECTIONS, auth, 200, params={"personFields": "names", "pageSize": "100"})
    assert seeded[2] not in [p["resourceName"] for p in full["connections"]]  # full listings skip tombstones

    await control.call("POST", "/users/alice/expire-cursors", expect=204)
    assert await call(c, "GET", CONNECTIONS, auth, 400, params=inc) == EXPIRED_BODY
    assert await call(c, "GET", CONNECTIONS, auth, 400, params={**inc, "syncToken": "garbage"}) == EXPIRED_BODY
    fresh_sync = (await call(c, "GET", CONNECTIONS, auth, 200, params={**params, "pageSize": "100"}))["nextSyncToken"]
    await call(c, "GET", CONNECTIONS, auth, 200, params={**inc, "syncToken": fresh_sync})
    clock.advance(7 * 86400 + 1)
    auth = await user(control, state, "alice")  # the old access token has expired too
    assert await call(c, "GET", CONNECTIONS, auth, 400, params={**inc, "syncToken": fresh_sync}) == EXPIRED_BODY


async def test_update_and_delete_contact(control: Control, state: EmulatorState) -> None:
    auth = await user(control, state, "alice")
    c = control.client
    person = await call(c, "POST", "/v1/people:createContact", auth, 200,
                        json={"names": [{"givenName": "Ada"}], "biographies": [{"value": "keep"}]})
    path = f"/v1/{person['resourceName']}:updateContact"
    mask = {"updatePersonFields": "names"}
    body = await call(c, "PATCH", path, auth, 400, params=mask, json={"names": [{"givenName": "B"}]})
    assert body["error"]["status"] == "INVALID_ARGUMENT"
    stale = await call(c, "PATCH", path, auth, 400, params=mask, json={"etag": "%stale", "names": []})
    assert stale["error"] == {"code": 400, "status": "FAILED_PRECONDITION", "message": (
        "Request person.etag is different than the current person.etag. Clear local cache and get the latest "
        "person.")}
    await call(c, "POST", "/v1/people:createContact", auth, 400, json={"names": [{"givenName": "A"}, {}]})

    updated = await call(c, "PATCH", path, auth, 200, params=mask,
                         json={"etag": person["etag"], "names": [{"givenName": "Grace"}]})
    assert updated["etag"] != person["etag"]
    assert updated["names"] == [{"givenName": "Grace"}] and updated["biographies"] == [{"value": "keep"}]
    source_etag = updated["metadata"]["sources"][0]["etag"]
    cleared = await call(c, "PATCH", path, auth, 200, params={"updatePersonFields": "names,biographies"},
                         json={"metadata": {"sources": [{"type": "CONTACT", "etag": source_etag}]}})
    assert "names" not in cleared and "biographies" not in cleared and cleared["etag"] != updated["etag"]

    delete = f"/v1/{person['resourceName']}:deleteContact"
    assert await call(c, "DELETE", delete, auth, 200) == {}
    await call(c, "DELETE", delete, auth, 404)
    gone = await call(c, "GET", f"/v1/{person['resourceName']}", auth, 404, params={"personFields": "names"})
    assert gone["error"] == {"code": 404, "status": "NOT_FOUND", "message": "Requested entity was not found."}


async def test_oauth_endpoints(control: Control, state: EmulatorState, clock: FakeClock) -> None:
    c = control.client
    refresh = await control.add_user("alice")
    await control.add_user("bob")
    grant = {"grant_type": "refresh_token", "refresh_token": refresh, "client_id": state.client_id,
             "client_secret": state.client_secret}
    resp = await c.post("/token", data={**grant, "refresh_token": "1//nope"})
    assert resp.status == 400 and (await resp.json())["error"] == "invalid_grant"
    resp = await c.post("/token", data={**grant, "client_secret": "wrong"})
    assert resp.status == 401 and (await resp.json())["error"] == "invalid_client"
    resp = await c.post("/token", data={**grant, "grant_type": "password"})
    assert resp.status == 400 and (await resp.json())["error"] == "unsupported_grant_type"
    body = await call(c, "GET", CONNECTIONS, {}, 401, params={"personFields": "names"})
    assert body["error"]["status"] == "UNAUTHENTICATED"

    resp = await c.get("/o/oauth2/v2/auth", allow_redirects=False, params={
        "client_id": state.client_id, "redirect_uri": "http://app.example/cb?x=1", "response_type": "code",
        "state": "s1", "login_hint": "bob", "scope": "https://www.googleapis.com/auth/contacts"})
    assert resp.status == 302
    location = URL(resp.headers["Location"])
    assert location.host == "app.example" and location.query["state"] == "s1" and location.query["x"] == "1"
    exchange = {"grant_type": "authorization_code", "code": location.query["code"], "client_id": state.client_id,
                "client_secret": state.client_secret, "redirect_uri": "http://app.example/cb?x=1"}
    tokens = await call(c, "POST", "/token", {}, 200, data=exchange)
    assert tokens["refresh_token"] and tokens["access_token"]
    await call(c, "POST", "/token", {}, 400, data=exchange)  # a code is single use
    bob_id = await control.create("bob", {"notes": "bob's"})
    auth = await login(c, state, tokens["refresh_token"])
    listed = await call(c, "GET", CONNECTIONS, auth, 200, params={"personFields": "names"})
    assert [p["resourceName"] for p in listed["connections"]] == [bob_id]
    clock.advance(3600)
    await call(c, "GET", CONNECTIONS, auth, 401, params={"personFields": "names"})


async def test_control_api(control: Control, state: EmulatorState) -> None:
    auth = await user(control, state, "alice")
    native_id = await control.create("alice", {"name": {"givenName": "Ada"}, "notes": "n",
                                               "keywords": ["vip"], "id": "ignored"})
    patched = await control.patch("alice", native_id, {"notes": None, "urls": [{"value": "https://a.example"}]})
    assert patched["contact"] == {"name": {"givenName": "Ada"}, "urls": [{"value": "https://a.example"}],
                                  "keywords": ["vip"]}
    bare = native_id.removeprefix("people/")
    assert (await control.call("GET", f"/users/alice/contacts/{bare}"))["nativeId"] == native_id
    await control.call("PATCH", f"/users/alice/contacts/{native_id}", {"bogus": 1}, expect=400)
    await control.call("POST", "/users/alice/contacts", {"emailAddresses": [{"address": "nope"}]}, expect=400)
    await control.call("POST", "/users/nobody/contacts", {}, expect=404)
    await control.call("POST", "/users", {"user": ""}, expect=400)
    await control.call("POST", "/faults", {"path": "(", "status": 503}, expect=400)

    await control.fault(path="/v1/people/", delayMs=250, times=1)
    await control.fault(path="/_control|/v1/people/", status=503, times=2)
    await control.call("GET", "/users/alice/contacts")  # faults never hit the control API
    started = time.monotonic()
    await call(control.client, "GET", f"/v1/{native_id}", auth, 200, params={"personFields": "names"})
    assert time.monotonic() - started >= 0.25
    await call(control.client, "GET", f"/v1/{native_id}", auth, 503, params={"personFields": "names"})
    await control.call("DELETE", "/faults", expect=204)
    await call(control.client, "GET", f"/v1/{native_id}", auth, 200, params={"personFields": "names"})


async def test_contact_groups(control: Control, state: EmulatorState) -> None:
    auth = await user(control, state, "alice")
    c = control.client
    listed = await call(c, "GET", "/v1/contactGroups", auth, 200, params={"pageSize": "1000"})
    system = {g["name"]: g for g in listed["contactGroups"]}
    assert {"myContacts", "starred", "friends"} <= set(system) and listed["totalItems"] == len(system)
    assert system["starred"]["resourceName"] == "contactGroups/starred"
    assert system["starred"]["groupType"] == "SYSTEM_CONTACT_GROUP"
    made = await call(c, "POST", "/v1/contactGroups", auth, 200, json={"contactGroup": {"name": "Clients"}})
    assert made["groupType"] == "USER_CONTACT_GROUP" and made["name"] == "Clients"
    assert made["resourceName"].startswith("contactGroups/") and made["resourceName"] != "contactGroups/Clients"
    duplicate = await call(c, "POST", "/v1/contactGroups", auth, 409, json={"contactGroup": {"name": "Clients"}})
    assert duplicate["error"]["status"] == "ALREADY_EXISTS"
    await call(c, "POST", "/v1/contactGroups", auth, 400, json={"contactGroup": {}})
    paged = await call(c, "GET", "/v1/contactGroups", auth, 200, params={"pageSize": "2"})
    assert len(paged["contactGroups"]) == 2 and "nextPageToken" in paged

    def person(group: str) -> dict[str, Any]:
        return {"names": [{"givenName": "G"}], "memberships": [
            {"contactGroupMembership": {"contactGroupResourceName": group}}]}
    unknown = await call(c, "POST", "/v1/people:createContact", auth, 400, json=person("contactGroups/nope"))
    assert "contactGroups/nope" in unknown["error"]["message"]
    created = await call(c, "POST", "/v1/people:createContact", auth, 200, json=person(made["resourceName"]),
                         params={"personFields": "memberships"})
    assert created["memberships"][0]["contactGroupMembership"]["contactGroupId"] == \
        made["resourceName"].removeprefix("contactGroups/")
    # the control API speaks keywords (group names) and makes the user groups it needs
    native = await control.create("alice", {"name": {"givenName": "K"}, "keywords": ["Clients", "vip", "starred"]})
    view = await control.call("GET", f"/users/alice/contacts/{native}")
    assert view["contact"]["keywords"] == ["Clients", "vip", "starred"]
    assert state.books["alice"].group_named("vip") is not None


async def test_renaming_a_contact_group(control: Control, state: EmulatorState) -> None:
    auth = await user(control, state, "alice")
    c = control.client
    made = await call(c, "POST", "/v1/contactGroups", auth, 200, json={"contactGroup": {"name": "Clients"}})
    await call(c, "POST", "/v1/contactGroups", auth, 200, json={"contactGroup": {"name": "Board"}})
    native = await control.create("alice", {"name": {"givenName": "K"}, "keywords": ["Clients"]})
    before = await call(c, "GET", f"/v1/{native}", auth, 200, params={"personFields": "memberships"})
    listing = await call(c, "GET", CONNECTIONS, auth, 200, params={"personFields": "names", "requestSyncToken": "true"})
    path = f"/v1/{made['resourceName']}"
    stale = {"contactGroup": {"name": "Customers", "etag": "#stale"}}
    assert (await call(c, "PUT", path, auth, 400, json=stale))["error"]["status"] == "FAILED_PRECONDITION"
    taken = await call(c, "PUT", path, auth, 409, json={"contactGroup": {"name": "Board"}})
    assert taken["error"]["status"] == "ALREADY_EXISTS"
    system = await call(c, "PUT", "/v1/contactGroups/starred", auth, 400, json={"contactGroup": {"name": "Stars"}})
    assert system["error"]["status"] == "FAILED_PRECONDITION"
    await call(c, "PUT", "/v1/contactGroups/nope", auth, 404, json={"contactGroup": {"name": "Stars"}})
    await call(c, "PUT", path, auth, 400, json={"contactGroup": {"name": " "}})
    renamed = await call(c, "PUT", path, auth, 200,
                         json={"contactGroup": {"name": "Customers", "etag": made["etag"]}})
    assert renamed["name"] == "Customers" and renamed["etag"] != made["etag"]
    assert renamed["resourceName"] == made["resourceName"]
    # the member itself did not change: same etag, and the sync token reports nothing
    after = await call(c, "GET", f"/v1/{native}", auth, 200, params={"personFields": "memberships"})
    assert after["etag"] == before["etag"]
    delta = await call(c, "GET", CONNECTIONS, auth, 200,
                       params={"personFields": "names", "syncToken": listing["nextSyncToken"]})
    assert "connections" not in delta or delta["connections"] == []
    view = await control.call("GET", f"/users/alice/contacts/{native}")
    assert view["contact"]["keywords"] == ["Customers"]
