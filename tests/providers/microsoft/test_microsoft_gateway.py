"""The gateway end to end with Microsoft 365: msal and the Graph client against the HTTPS emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from yarl import URL

from gateway.config import MicrosoftSettings, Settings
from providers.microsoft.emulator import EmulatorState
from tests.providers.gateway_harness import ProviderGateway, provider_gateway
from tests.providers.microsoft.microsoft_helpers import FULL, Control


@pytest.fixture
async def mg(settings: Settings, redis_target: dict[str, Any], ms_settings: MicrosoftSettings, control: Control,
             aiohttp_client: Any) -> AsyncIterator[ProviderGateway]:
    settings.microsoft = ms_settings.model_copy(update={"page_size": 50})
    async with provider_gateway(settings, redis_target, control, aiohttp_client, "office365") as gateway:
        yield gateway


async def test_every_field_round_trips_through_graph(mg: ProviderGateway) -> None:
    _, auth = await mg.connect("alice")
    resp = await mg.http.post("/v1/contacts", json=FULL, headers=auth)
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    assert {k: created[k] for k in FULL} == FULL
    tokens = await mg.start(auth)
    records, _ = await mg.sync_all(auth, tokens["syncUpdatedToken"])
    assert len(records) == 1 and {k: records[0][k] for k in FULL} == FULL and records[0]["etag"] == created["etag"]


async def test_delta_eviction_is_absorbed_across_folders(mg: ProviderGateway) -> None:
    account_id, auth = await mg.connect("alice")
    await mg.control.seed("alice", 150, seed=3)
    tokens = await mg.start(auth)
    records, delta = await mg.sync_all(auth, tokens["syncUpdatedToken"])
    assert len(records) == 150
    folders = {a["value"] for r in records for a in r.get("attributes", []) if a["name"] == "folder"}
    assert len(folders) >= 1  # contacts outside the default folder carry their folder
    head = await mg.core.store.head(account_id)
    truth = await mg.control.call("GET", "/users/alice/contacts")
    await mg.control.call("POST", "/users/alice/expire-cursors", expect=204)
    await mg.control.patch("alice", truth[0]["nativeId"], {"notes": "changed while evicted"})
    await mg.control.delete("alice", truth[1]["nativeId"])
    changed, _ = await mg.sync_all(auth, delta)
    assert [r["notes"] for r in changed] == ["changed while evicted"]
    gone, _ = await mg.sync_all(auth, tokens["syncDeletedToken"], "deleted")
    assert len(gone) == 1
    assert await mg.core.store.head(account_id) == head + 2


async def test_patch_conflicting_with_a_change_in_outlook_is_412(mg: ProviderGateway) -> None:
    _, auth = await mg.connect("alice")
    created = await (await mg.http.post("/v1/contacts", json={"notes": "mine"}, headers=auth)).json()
    native = (await mg.control.call("GET", "/users/alice/contacts"))[0]["nativeId"]
    await mg.control.patch("alice", native, {"notes": "theirs"})
    resp = await mg.http.patch(f"/v1/contacts/{created['id']}", json={"notes": "again"},
                               headers={**auth, "If-Match": created["etag"]})
    assert resp.status == 412
    now = await (await mg.http.get(f"/v1/contacts/{created['id']}", headers=auth)).json()
    assert now["notes"] == "theirs" and now["etag"] == (await resp.json())["currentEtag"]


async def test_throttling_is_retried_then_reported(mg: ProviderGateway) -> None:
    _, auth = await mg.connect("alice")
    await mg.control.fault(path=r"/contacts$", status=429, times=2, retryAfter=0)
    assert (await mg.http.post("/v1/contacts", json={"notes": "after two 429s"}, headers=auth)).status == 201
    await mg.control.fault(path=r"/contacts$", status=503, times=20)
    resp = await mg.http.post("/v1/contacts", json={"notes": "never"}, headers=auth)
    assert resp.status == 503 and (await resp.json())["code"] == "provider.unavailable"
    await mg.control.call("DELETE", "/faults", expect=204)
    truth = await mg.control.call("GET", "/users/alice/contacts")
    assert [t["contact"].get("notes") for t in truth] == ["after two 429s"]


async def test_expired_access_token_is_refreshed_and_revoked_one_needs_reauth(mg: ProviderGateway,
                                                                              state: EmulatorState) -> None:
    account_id, auth = await mg.connect("alice")
    await mg.control.create("alice", {"name": {"givenName": "A"}})
    state.expire_access_tokens()
    tokens = await mg.start(auth)
    records, _ = await mg.sync_all(auth, tokens["syncUpdatedToken"])
    assert len(records) == 1
    state.revoke_refresh_tokens("alice")
    state.expire_access_tokens()
    await mg.core.connectors.drop(account_id)  # a new process: no token cached in memory
    resp = await mg.http.post("/v1/contacts/sync", headers=auth)
    assert resp.status == 401 and (await resp.json())["code"] == "account.reauth_required"


async def test_browser_flow_connects_a_delegated_account(mg: ProviderGateway, emulator: TestServer) -> None:
    await mg.control.call("POST", "/users", {"user": "carol"}, 201)
    await mg.control.seed("carol", 4, seed=2)
    resp = await mg.http.get("/v1/auth/authorize", params={
        "clientId": mg.client_id, "serviceType": "office365", "returnUrl": "https://app.example/done",
        "loginHint": "carol"}, allow_redirects=False)
    assert resp.status == 302, await resp.text()
    consent = URL(resp.headers["Location"])
    assert consent.path.endswith("/oauth2/v2.0/authorize") and "client_secret" not in consent.query
    back = await mg.control.client.get(consent.path_qs, allow_redirects=False)
    callback = URL(back.headers["Location"])
    done = await mg.http.get(callback.path_qs, allow_redirects=False)
    assert done.status == 302, await done.text()
    final = URL(done.headers["Location"])
    assert final.query["status"] == "success" and set(final.query) == {"accountId", "status"}
    token = await (await mg.http.post(f"/v1/accounts/{final.query['accountId']}/token", headers=mg.basic)).json()
    auth = {"Authorization": f"Bearer {token['accessToken']}"}
    records, _ = await mg.sync_all(auth, (await mg.start(auth))["syncUpdatedToken"])
    assert len(records) == 4
