"""Pins of the emulator's identity-platform and Graph behaviour (raw HTTPS), where the connector depends on it."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from aiohttp import ClientSession
from yarl import URL

from providers.microsoft.emulator import EmulatorState
from tests.providers.microsoft.microsoft_helpers import Control, FakeClock, graph_call

TENANT_PATHS = "/common/oauth2/v2.0/token"


def _claims(jwt: str) -> dict[str, Any]:
    header, body, signature = jwt.split(".")
    assert signature == "" and json.loads(base64.urlsafe_b64decode(header + "==")) == {"typ": "JWT", "alg": "none"}
    return dict(json.loads(base64.urlsafe_b64decode(body + "==")))


async def login(http: ClientSession, state: EmulatorState, refresh_token: str) -> str:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": state.client_id,
            "client_secret": state.client_secret, "scope": "Contacts.ReadWrite offline_access openid profile"}
    body = await graph_call(http, "POST", TENANT_PATHS, None, 200, data=form)
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and body["refresh_token"] != refresh_token
    return str(body["access_token"])


async def user(control: Control, state: EmulatorState, name: str) -> str:
    return await login(control.client, state, await control.add_user(name))  # type: ignore[arg-type]


async def test_identity_platform(http: ClientSession, control: Control, state: EmulatorState) -> None:
    config = await graph_call(http, "GET", "/common/v2.0/.well-known/openid-configuration", None, 200)
    origin = str(http._base_url).rstrip("/")
    assert config["token_endpoint"] == f"{origin}/common/oauth2/v2.0/token" and origin.startswith("https://")
    assert config["authorization_endpoint"] == f"{origin}/common/oauth2/v2.0/authorize"
    bad = await graph_call(http, "GET", "/nope/v2.0/.well-known/openid-configuration", None, 400)
    assert bad["error"] == "invalid_tenant" and bad["error_codes"] == [90002]
    discovery = await graph_call(http, "GET", "/common/discovery/instance", None, 200, params={
        "api-version": "1.1", "authorization_endpoint": f"{origin}/{state.tenant_id}/oauth2/v2.0/authorize"})
    assert discovery["tenant_discovery_endpoint"] == \
        f"{origin}/{state.tenant_id}/v2.0/.well-known/openid-configuration"

    refresh = await control.add_user("alice")
    grant = {"grant_type": "refresh_token", "refresh_token": refresh, "client_id": state.client_id,
             "client_secret": state.client_secret, "scope": "Contacts.ReadWrite"}
    tokens = await graph_call(http, "POST", TENANT_PATHS, None, 200, data=grant)
    claims = _claims(tokens["id_token"])
    assert claims["preferred_username"] == "alice@contoso.test" and claims["aud"] == state.client_id
    info = json.loads(base64.urlsafe_b64decode(tokens["client_info"] + "=="))
    assert info == {"uid": claims["oid"], "utid": state.tenant_id}
    await graph_call(http, "POST", TENANT_PATHS, None, 200, data=grant)  # the old refresh token stays valid
    for form, status, error, code in (({"refresh_token": "0.nope"}, 400, "invalid_grant", 70000),
                                      ({"client_secret": "wrong"}, 401, "invalid_client", 7000215),
                                      ({"grant_type": "password"}, 400, "unsupported_grant_type", 70003),
                                      ({"grant_type": "client_credentials"}, 400, "invalid_request", 900023)):
        body = await graph_call(http, "POST", TENANT_PATHS, None, status, data={**grant, **form})
        assert body["error"] == error and body["error_codes"] == [code]

    app_grant = {"grant_type": "client_credentials", "client_id": state.client_id,
                 "client_secret": state.client_secret, "scope": "Contacts.ReadWrite"}
    token_url = f"/{state.tenant_id}/oauth2/v2.0/token"
    assert (await graph_call(http, "POST", token_url, None, 400, data=app_grant))["error"] == "invalid_scope"
    app = await graph_call(http, "POST", token_url, None, 200,
                           data={**app_grant, "scope": "https://graph.microsoft.com/.default"})
    assert "refresh_token" not in app and app["expires_in"] == 3600
    me = await graph_call(http, "GET", "/v1.0/me/contacts", app["access_token"], 400)
    assert "delegated" in me["error"]["message"]
    await graph_call(http, "GET", "/v1.0/users/alice@contoso.test/contacts", app["access_token"], 200)
    missing = await graph_call(http, "GET", "/v1.0/users/nobody/contacts", app["access_token"], 404)
    assert missing["error"]["code"] == "ErrorInvalidUser"


async def test_authorize_consents_at_once(http: ClientSession, control: Control, state: EmulatorState) -> None:
    await control.add_user("alice")
    await control.add_user("bob")
    resp = await http.get(f"/{state.tenant_id}/oauth2/v2.0/authorize", allow_redirects=False, params={
        "client_id": state.client_id, "redirect_uri": "https://app.example/cb?x=1", "response_type": "code",
        "state": "s1", "login_hint": "bob@contoso.test", "scope": "Contacts.ReadWrite offline_access"})
    assert resp.status == 302
    location = URL(resp.headers["Location"])
    assert location.host == "app.example" and location.query["state"] == "s1" and location.query["x"] == "1"
    exchange = {"grant_type": "authorization_code", "code": location.query["code"], "client_id": state.client_id,
                "client_secret": state.client_secret, "redirect_uri": "https://app.example/cb?x=1"}
    tokens = await graph_call(http, "POST", TENANT_PATHS, None, 200, data=exchange)
    assert _claims(tokens["id_token"])["name"] == "bob"
    assert (await graph_call(http, "POST", TENANT_PATHS, None, 400, data=exchange))["error"] == "invalid_grant"
    bob_id = await control.create("bob", {"notes": "bob's"})
    listed = await graph_call(http, "GET", "/v1.0/me/contacts", await login(http, state, tokens["refresh_token"]),
                              200)
    assert [c["id"] for c in listed["value"]] == [bob_id]


async def test_access_tokens_expire(http: ClientSession, control: Control, state: EmulatorState,
                                    clock: FakeClock) -> None:
    token = await user(control, state, "alice")
    await graph_call(http, "GET", "/v1.0/me/contactFolders", token, 200)
    clock.advance(3600)
    body = await graph_call(http, "GET", "/v1.0/me/contactFolders", token, 401)
    assert body["error"]["code"] == "InvalidAuthenticationToken"
    assert (await http.get("/v1.0/me/contactFolders")).status == 401


async def test_delta_pages_select_and_tombstones(http: ClientSession, control: Control,
                                                 state: EmulatorState) -> None:
    token = await user(control, state, "alice")
    await control.seed("alice", 5)  # default folder: #0, #2, #4
    delta, prefer = "/v1.0/me/contacts/delta", {"Prefer": "odata.maxpagesize=2"}
    resp = await http.get(delta, params={"$select": "givenName,surname"},
                          headers={**prefer, "Authorization": f"Bearer {token}"})
    assert resp.headers["Preference-Applied"] == "odata.maxpagesize=2"
    pages = [await resp.json()]
    while "@odata.nextLink" in pages[-1]:
        assert "@odata.deltaLink" not in pages[-1]
        link = pages[-1]["@odata.nextLink"]
        assert link.startswith(str(http._base_url).rstrip("/") + delta + "?$skiptoken=")
        pages.append(await graph_call(http, "GET", link, token, 200, headers=prefer))
    assert [len(p["value"]) for p in pages] == [2, 1]
    assert set(pages[1]["value"][0]) == {"@odata.etag", "id", "givenName", "surname"}  # $select kept in the token
    first = pages[0]["value"][0]
    delta_link = pages[-1]["@odata.deltaLink"]

    await control.patch("alice", first["id"], {"notes": "changed"})
    gone = pages[0]["value"][1]["id"]
    await control.delete("alice", gone)
    changes = await graph_call(http, "GET", delta_link, token, 200)
    assert [c["id"] for c in changes["value"]] == [first["id"], gone]
    assert changes["value"][0]["givenName"] == first["givenName"] and "personalNotes" not in changes["value"][0]
    assert changes["value"][0]["@odata.etag"] != first["@odata.etag"]
    assert changes["value"][1] == {"id": gone, "@removed": {"reason": "deleted"}}
    quiet = await graph_call(http, "GET", changes["@odata.deltaLink"], token, 200)
    assert quiet["value"] == [] and "@odata.deltaLink" in quiet
    full = await graph_call(http, "GET", delta, token, 200)  # a first round skips old tombstones
    assert gone not in [c["id"] for c in full["value"]] and len(full["value"]) == 2


async def test_page_size_default_and_cap(http: ClientSession, control: Control, state: EmulatorState) -> None:
    token = await user(control, state, "alice")
    await control.seed("alice", 48)  # 30 in the default folder
    state.max_page_size = 25
    for prefer, size in (({}, 10), ({"Prefer": "odata.maxpagesize=5000"}, 25), ({"Prefer": "odata.maxpagesize=7"}, 7)):
        resp = await http.get("/v1.0/me/contacts/delta", headers={**prefer, "Authorization": f"Bearer {token}"})
        assert resp.headers["Preference-Applied"] == f"odata.maxpagesize={size}"
        assert len((await resp.json())["value"]) == size
    listed = await graph_call(http, "GET", "/v1.0/me/contacts", token, 200, params={"$top": "4"})
    assert len(listed["value"]) == 4 and "$skip=4" in listed["@odata.nextLink"]


async def test_evicted_delta_token_is_410(http: ClientSession, control: Control, state: EmulatorState) -> None:
    token = await user(control, state, "alice")
    await control.seed("alice", 3)
    page = await graph_call(http, "GET", "/v1.0/me/contacts/delta", token, 200)
    await control.call("POST", "/users/alice/expire-cursors", expect=204)
    for link in (page["@odata.deltaLink"], str(http._base_url).rstrip("/") + "/v1.0/me/contacts/delta?$deltatoken=x"):
        resp = await http.get(link, headers={"Authorization": f"Bearer {token}"})
        assert resp.status == 410
        body = await resp.json()
        assert set(body) == {"error"} and body["error"]["code"] == "syncStateNotFound"
        assert body["error"]["message"] and set(body["error"]["innerError"]) == {"date", "request-id",
                                                                                 "client-request-id"}
        assert resp.headers["Location"] == str(http._base_url).rstrip("/") + "/v1.0/me/contacts/delta"
        assert len((await graph_call(http, "GET", resp.headers["Location"], token, 200))["value"]) == 2


async def test_users_are_isolated(http: ClientSession, control: Control, state: EmulatorState) -> None:
    alice, bob = await user(control, state, "alice"), await user(control, state, "bob")
    alice_ids, bob_ids = await control.seed("alice", 3, seed=1), await control.seed("bob", 4, seed=1)
    listed = await graph_call(http, "GET", "/v1.0/me/contacts", alice, 200)
    assert {c["id"] for c in listed["value"]} == {alice_ids[0], alice_ids[2]}
    foreign = bob_ids[0]
    for method in ("GET", "PATCH", "DELETE"):
        await graph_call(http, method, f"/v1.0/me/contacts/{foreign}", alice, 404, json={"notes": "x"})
    denied = await graph_call(http, "GET", "/v1.0/users/bob/contacts", alice, 403)
    assert denied["error"]["code"] == "ErrorAccessDenied"
    await graph_call(http, "GET", "/v1.0/users/alice@contoso.test/contacts", alice, 200)
    bob_folders = await graph_call(http, "GET", "/v1.0/me/contactFolders", bob, 200)
    alice_folders = await graph_call(http, "GET", "/v1.0/me/contactFolders", alice, 200)
    assert {f["displayName"] for f in bob_folders["value"]} == {"Work", "Family"}
    assert {f["displayName"] for f in alice_folders["value"]} == {"Work"}
    assert not {f["id"] for f in bob_folders["value"]} & {f["id"] for f in alice_folders["value"]}
    truth = await control.call("GET", "/users/bob/contacts")
    assert [t["nativeId"] for t in truth] == bob_ids
    alice_truth = await control.call("GET", "/users/alice/contacts")  # the same seed, the same contacts
    assert [t["contact"] for t in alice_truth] == [t["contact"] for t in truth[:3]]


async def test_etags_and_if_match(http: ClientSession, control: Control, state: EmulatorState) -> None:
    token = await user(control, state, "alice")
    created = await graph_call(http, "POST", "/v1.0/me/contacts", token, 201, json={"givenName": "Ada"})
    assert created["@odata.etag"] == f'W/"{created["changeKey"]}"' and created["homeAddress"] == {}
    path = f"/v1.0/me/contacts/{created['id']}"
    updated = await graph_call(http, "PATCH", path, token, 200, json={"surname": "King"},
                               headers={"If-Match": created["@odata.etag"]})
    assert updated["changeKey"] != created["changeKey"] and updated["givenName"] == "Ada"
    stale = await graph_call(http, "PATCH", path, token, 412, json={"surname": "X"},
                             headers={"If-Match": created["@odata.etag"]})
    assert stale["error"]["code"] == "ErrorIrresolvableConflict" and "change key" in stale["error"]["message"]
    await graph_call(http, "DELETE", path, token, 412, headers={"If-Match": created["@odata.etag"]})
    starred = await graph_call(http, "PATCH", path, token, 200, json={"surname": None}, headers={"If-Match": "*"})
    assert starred["surname"] is None and starred["changeKey"] != updated["changeKey"]
    bad = await graph_call(http, "PATCH", path, token, 400, json={"folder": "Work"})
    assert bad["error"]["code"] == "RequestBodyRead" and "'folder' does not exist" in bad["error"]["message"]
    await graph_call(http, "PATCH", path, token, 400, json={"birthday": "not a date"})
    await graph_call(http, "DELETE", path, token, 204, headers={"If-Match": starred["@odata.etag"]})
    gone = await graph_call(http, "GET", path, token, 404)
    assert gone["error"]["code"] == "ErrorItemNotFound"


async def test_folders(http: ClientSession, control: Control, state: EmulatorState) -> None:
    token = await user(control, state, "alice")
    assert (await graph_call(http, "GET", "/v1.0/me/contactFolders", token, 200))["value"] == []
    folder = await graph_call(http, "POST", "/v1.0/me/contactFolders", token, 201, json={"displayName": "Work"})
    await graph_call(http, "POST", "/v1.0/me/contactFolders", token, 409, json={"displayName": "work"})
    default_id = state.mailboxes["alice"].default.folder_id
    assert folder["parentFolderId"] == default_id
    listed = await graph_call(http, "GET", "/v1.0/me/contactFolders", token, 200)
    assert listed["value"] == [folder]  # the default folder is not listed, as at Graph
    inside = await graph_call(http, "POST", f"/v1.0/me/contactFolders/{folder['id']}/contacts", token, 201,
                              json={"givenName": "In"})
    assert inside["parentFolderId"] == folder["id"]
    assert (await graph_call(http, "GET", f"/v1.0/me/contacts/{inside['id']}", token, 200))["givenName"] == "In"
    await graph_call(http, "GET", f"/v1.0/me/contactFolders/{default_id}/contacts/{inside['id']}", token, 404)
    assert (await graph_call(http, "GET", "/v1.0/me/contacts", token, 200))["value"] == []
    await graph_call(http, "DELETE", f"/v1.0/me/contactFolders/{default_id}", token, 403)
    await graph_call(http, "DELETE", f"/v1.0/me/contactFolders/{folder['id']}", token, 204)
    await graph_call(http, "GET", f"/v1.0/me/contacts/{inside['id']}", token, 404)
    await graph_call(http, "GET", f"/v1.0/me/contactFolders/{folder['id']}/contacts/delta", token, 404)


async def test_child_folders(http: ClientSession, control: Control, state: EmulatorState) -> None:
    token = await user(control, state, "alice")
    work = await graph_call(http, "POST", "/v1.0/me/contactFolders", token, 201, json={"displayName": "Work"})
    children = f"/v1.0/me/contactFolders/{work['id']}/childFolders"
    assert (await graph_call(http, "GET", children, token, 200))["value"] == []
    child = await graph_call(http, "POST", children, token, 201, json={"displayName": "Clients"})
    assert child["parentFolderId"] == work["id"]
    await graph_call(http, "POST", children, token, 409, json={"displayName": "clients"})  # siblings only
    await graph_call(http, "POST", "/v1.0/me/contactFolders", token, 201, json={"displayName": "Clients"})
    assert (await graph_call(http, "GET", children, token, 200))["value"] == [child]
    assert {f["displayName"] for f in (await graph_call(http, "GET", "/v1.0/me/contactFolders", token,
                                                        200))["value"]} == {"Work", "Clients"}
    inside = await graph_call(http, "POST", f"/v1.0/me/contactFolders/{child['id']}/contacts", token, 201,
                              json={"givenName": "Nested"})
    delta = await graph_call(http, "GET", f"/v1.0/me/contactFolders/{child['id']}/contacts/delta", token, 200)
    assert [c["id"] for c in delta["value"]] == [inside["id"]]
    await graph_call(http, "POST", "/v1.0/me/contactFolders/nope/childFolders", token, 404,
                     json={"displayName": "X"})
    await graph_call(http, "DELETE", f"/v1.0/me/contactFolders/{work['id']}", token, 204)  # the subtree goes too
    await graph_call(http, "GET", f"/v1.0/me/contactFolders/{child['id']}", token, 404)
    await graph_call(http, "GET", f"/v1.0/me/contacts/{inside['id']}", token, 404)


async def test_control_api(http: ClientSession, control: Control, state: EmulatorState) -> None:
    token = await user(control, state, "alice")
    native_id = await control.create("alice", {"name": {"givenName": "Ada"}, "notes": "n", "keywords": ["vip"],
                                               "id": "ignored", "attributes": [{"name": "folder", "value": "VIPs"}]})
    patched = await control.patch("alice", native_id, {"notes": None, "urls": [{"value": "https://a.example"}]})
    assert patched["contact"] == {"name": {"givenName": "Ada"}, "urls": [{"value": "https://a.example",
                                                                         "type": "work"}],
                                  "keywords": ["vip"], "attributes": [{"name": "folder", "value": "VIPs"}]}
    assert (await control.call("GET", f"/users/alice/contacts/{native_id}"))["nativeId"] == native_id
    await control.call("PATCH", f"/users/alice/contacts/{native_id}", {"bogus": 1}, expect=400)
    await control.call("POST", "/users/alice/contacts", {"emailAddresses": [{"address": "nope"}]}, expect=400)
    await control.call("POST", "/users/nobody/contacts", {}, expect=404)
    await control.call("POST", "/users", {"user": ""}, expect=400)
    await control.call("POST", "/faults", {"path": "(", "status": 503}, expect=400)
    await control.call("POST", "/users/alice/seed", {"count": -1}, expect=400)
    seeded = await control.seed("alice", 4, seed="s")
    assert len({c["parentFolderId"] for c in (await graph_call(http, "GET", "/v1.0/me/contacts/delta", token, 200))[
        "value"]}) == 1  # the default folder's delta sees only its own contacts
    truth = await control.call("GET", "/users/alice/contacts")
    assert [t["nativeId"] for t in truth] == [native_id, *seeded]
    folders = [next((a["value"] for a in t["contact"].get("attributes", []) if a["name"] == "folder"), None)
               for t in truth[1:]]
    assert folders == [None, "Work", None, "Family"]

    path = f"/v1.0/me/contacts/{native_id}"
    await control.fault(path="^/v1.0/me/contacts/", delayMs=250, times=1)
    await control.fault(path="/_control|^/v1.0/me/contacts/", status=503, times=2)
    await control.call("GET", "/users/alice/contacts")  # faults never hit the control API
    started = time.monotonic()
    await graph_call(http, "GET", path, token, 200)
    assert time.monotonic() - started >= 0.25
    body = await graph_call(http, "GET", path, token, 503)
    assert body["error"]["code"] == "ServiceUnavailable"
    await control.call("DELETE", "/faults", expect=204)
    await graph_call(http, "GET", path, token, 200)
    await control.delete("alice", native_id)
    await control.call("DELETE", f"/users/alice/contacts/{native_id}", expect=404)
