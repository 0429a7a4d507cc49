"""The gateway end to end with Google: real client library, real HTTP, the People API emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from yarl import URL

from gateway.config import Settings
from providers.google.emulator import EmulatorState
from tests.providers.gateway_harness import ProviderGateway, provider_gateway
from tests.providers.google.google_helpers import FULL, Control


@pytest.fixture
async def gg(settings: Settings, redis_target: dict[str, Any], emulator: TestServer, control: Control,
             state: EmulatorState, aiohttp_client: Any) -> AsyncIterator[ProviderGateway]:
    settings.google.api_base = str(emulator.make_url("/"))
    settings.google.token_url = str(emulator.make_url("/token"))
    settings.google.authorize_url = str(emulator.make_url("/o/oauth2/v2/auth"))
    settings.google.client_id, settings.google.client_secret = state.client_id, state.client_secret
    settings.google.page_size = 50
    async with provider_gateway(settings, redis_target, control, aiohttp_client, "google") as gateway:
        yield gateway


async def test_every_field_round_trips_through_google(gg: ProviderGateway) -> None:
    _, auth = await gg.connect("alice")
    resp = await gg.http.post("/v1/contacts", json=FULL, headers=auth)
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    assert {k: created[k] for k in FULL} == FULL
    truth = await gg.control.call("GET", "/users/alice/contacts")
    assert [t["contact"]["name"]["givenName"] for t in truth] == ["Ada"]
    # and back again through a pull: a second client sees the same content
    tokens = await gg.start(auth)
    records, _ = await gg.sync_all(auth, tokens["syncUpdatedToken"])
    assert len(records) == 1 and {k: records[0][k] for k in FULL} == FULL
    assert records[0]["etag"] == created["etag"]


async def test_expired_sync_token_is_absorbed(gg: ProviderGateway) -> None:
    account_id, auth = await gg.connect("alice")
    natives = await gg.control.seed("alice", 120, seed=7)
    tokens = await (await gg.http.post("/v1/contacts/sync", headers=auth)).json()
    records, delta = await gg.sync_all(auth, tokens["syncUpdatedToken"])
    assert len(records) == 120
    head = await gg.core.store.head(account_id)
    await gg.control.call("POST", "/users/alice/expire-cursors", expect=204)
    await gg.control.patch("alice", natives[5], {"notes": "changed while the token was expired"})
    await gg.control.delete("alice", natives[9])
    changed, delta2 = await gg.sync_all(auth, delta)
    assert [r["notes"] for r in changed] == ["changed while the token was expired"]
    deleted, _ = await gg.sync_all(auth, tokens["syncDeletedToken"], "deleted")
    assert len(deleted) == 1
    assert await gg.core.store.head(account_id) == head + 2  # the relist gave revisions to real changes only
    again, _ = await gg.sync_all(auth, delta2)
    assert again == []


async def test_patch_conflicting_with_a_change_at_google_is_412_and_refreshes(gg: ProviderGateway) -> None:
    _, auth = await gg.connect("alice")
    created = await (await gg.http.post("/v1/contacts", json={"notes": "mine"}, headers=auth)).json()
    native = (await gg.control.call("GET", "/users/alice/contacts"))[0]["nativeId"]
    await gg.control.patch("alice", native, {"notes": "theirs"})
    resp = await gg.http.patch(f"/v1/contacts/{created['id']}", json={"notes": "again"},
                               headers={**auth, "If-Match": created["etag"]})
    assert resp.status == 412
    current = (await resp.json())["currentEtag"]
    now = await (await gg.http.get(f"/v1/contacts/{created['id']}", headers=auth)).json()
    assert now["notes"] == "theirs" and now["etag"] == current
    resp = await gg.http.patch(f"/v1/contacts/{created['id']}", json={"notes": "merged"},
                               headers={**auth, "If-Match": current})
    assert resp.status == 200 and (await resp.json())["notes"] == "merged"


async def test_throttling_and_outage_are_retried_then_reported(gg: ProviderGateway) -> None:
    _, auth = await gg.connect("alice")
    await gg.control.fault(path=r"createContact", status=429, times=2, retryAfter=0)
    resp = await gg.http.post("/v1/contacts", json={"notes": "after two 429s"}, headers=auth)
    assert resp.status == 201
    await gg.control.fault(path=r"createContact", status=503, times=20)
    resp = await gg.http.post("/v1/contacts", json={"notes": "never"}, headers=auth)
    body = await resp.json()
    assert resp.status == 503 and body["code"] == "provider.unavailable" and resp.headers["Retry-After"]
    await gg.control.call("DELETE", "/faults", expect=204)
    truth = await gg.control.call("GET", "/users/alice/contacts")
    assert [t["contact"]["notes"] for t in truth] == ["after two 429s"]


async def test_revoked_refresh_token_needs_reauthorization(gg: ProviderGateway, state: EmulatorState) -> None:
    account_id, auth = await gg.connect("alice")
    creds = await gg.core.identity.credentials(account_id)
    assert state.revoke(creds["refreshToken"])
    state.expire_access_tokens()
    resp = await gg.http.post("/v1/contacts/sync", headers=auth)
    body = await resp.json()
    assert resp.status == 401 and body["code"] == "account.reauth_required", body
    account = await gg.core.identity.account(account_id)
    assert account is not None and account.status == "reauth_required"
    assert (await gg.http.get("/v1/contacts", headers=auth)).status == 401


async def test_browser_flow_connects_an_account(gg: ProviderGateway) -> None:
    await gg.control.add_user("carol")
    await gg.control.seed("carol", 3, seed=1)
    resp = await gg.http.get("/v1/auth/authorize", params={
        "clientId": gg.client_id, "serviceType": "google", "returnUrl": "https://app.example/done",
        "loginHint": "carol"}, allow_redirects=False)
    assert resp.status == 302
    consent = URL(resp.headers["Location"])
    assert consent.path == "/o/oauth2/v2/auth" and "client_secret" not in consent.query
    back = await gg.control.client.get(consent.path_qs, allow_redirects=False)  # the emulator consents at once
    callback = URL(back.headers["Location"])
    assert callback.path == "/v1/auth/callback"
    done = await gg.http.get(callback.path_qs, allow_redirects=False)
    assert done.status == 302, await done.text()
    final = URL(done.headers["Location"])
    assert final.host == "app.example" and final.query["status"] == "success"
    assert set(final.query) == {"accountId", "status"}
    replay = await gg.http.get(callback.path_qs, allow_redirects=False)
    assert replay.status == 400 and (await replay.json())["code"] == "auth.state_invalid"
    token = await (await gg.http.post(f"/v1/accounts/{final.query['accountId']}/token", headers=gg.basic)).json()
    auth = {"Authorization": f"Bearer {token['accessToken']}"}
    tokens = await (await gg.http.post("/v1/contacts/sync", headers=auth)).json()
    records, _ = await gg.sync_all(auth, tokens["syncUpdatedToken"])
    assert len(records) == 3


async def test_authorize_rejects_bad_parameters(gg: ProviderGateway) -> None:
    good = {"clientId": gg.client_id, "serviceType": "google", "returnUrl": "https://app.example/"}
    for bad, field in (({"clientId": "nope"}, "clientId"), ({"serviceType": "nope"}, "serviceType"),
                       ({"returnUrl": "javascript:alert(1)"}, "returnUrl"), ({"returnUrl": "/relative"}, "returnUrl")):
        resp = await gg.http.get("/v1/auth/authorize", params={**good, **bad}, allow_redirects=False)
        assert resp.status == 400 and (await resp.json())["field"] == field


async def test_a_group_renamed_at_google_renames_its_members_keyword(gg: ProviderGateway,
                                                                       state: EmulatorState) -> None:
    """Google reports no change for the members of a renamed group; the gateway still does, once each."""
    account_id, auth = await gg.connect("alice")
    members = [await gg.control.create("alice", {"name": {"givenName": f"M{i}"}, "keywords": ["Board", "vip"]})
               for i in range(3)]
    await gg.control.create("alice", {"name": {"givenName": "Other"}, "keywords": ["vip"]})
    await gg.control.seed("alice", 60, seed=3)
    tokens = await (await gg.http.post("/v1/contacts/sync", headers=auth)).json()
    records, delta = await gg.sync_all(auth, tokens["syncUpdatedToken"])
    assert sum(1 for r in records if "Board" in r.get("keywords", [])) == len(members)
    head = await gg.core.store.head(account_id)
    board = state.books["alice"].group_named("Board")
    resp = await gg.control.client.put(f"/v1/{board}", json={"contactGroup": {"name": "Directors"}},
                                       headers={"Authorization": f"Bearer {state.issue_access_token('alice')}"})
    assert resp.status == 200, await resp.text()
    changed, delta2 = await gg.sync_all(auth, delta)
    assert sorted(r["name"]["givenName"] for r in changed) == ["M0", "M1", "M2"]
    assert all(r["keywords"] == ["Directors", "vip"] for r in changed)
    assert await gg.core.store.head(account_id) == head + len(members)  # the relist changed nothing else
    again, _ = await gg.sync_all(auth, delta2)
    assert again == []
