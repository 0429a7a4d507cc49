"""Refresh: pulls, cursor expiry absorbed by a relist and diff, retries, and revoked credentials."""

from __future__ import annotations

import pytest

from gateway.models import ContactInput
from providers.base import AuthFailed, Throttled, Unavailable
from tests.conftest import Gateway


def person(name: str) -> ContactInput:
    return ContactInput.model_validate({"name": {"givenName": name}})


async def test_cursor_expiry_relists_without_client_visible_resync(gw: Gateway) -> None:
    account_id, auth, provider = await gw.connect("alice", page_size=3)
    natives = [provider.create(person(f"P{i}")) for i in range(10)]
    start = await (await gw.http.post("/v1/contacts/sync", headers=auth)).json()
    page = await (await gw.http.get("/v1/contacts/sync/updated", params={
        "deltaToken": start["syncUpdatedToken"], "pageSize": "1000"}, headers=auth)).json()
    assert len(page["records"]) == 10
    deleted_token = start["syncDeletedToken"]
    head = await gw.core.store.head(account_id)
    # behind the gateway's back: the cursor expires, one contact changes, one is deleted
    provider.expire_cursors()
    provider.update(natives[3], person("changed"))
    provider.delete(natives[7])
    result = await gw.core.refresher.refresh(account_id)
    assert result.full and result.changed == 2
    assert await gw.core.store.head(account_id) == head + 2  # only the real changes took revisions
    delta = await (await gw.http.get("/v1/contacts/sync/updated", params={"deltaToken": page["nextDeltaToken"]},
                                     headers=auth)).json()
    assert [r["name"]["givenName"] for r in delta["records"]] == ["changed"]
    gone = await (await gw.http.get("/v1/contacts/sync/deleted", params={"deltaToken": deleted_token},
                                    headers=auth)).json()
    assert len(gone["records"]) == 1


async def test_relist_keeps_a_contact_written_through_the_gateway_meanwhile(gw: Gateway) -> None:
    account_id, auth, provider = await gw.connect("alice", page_size=2)
    for i in range(3):
        provider.create(person(f"P{i}"))
    await gw.core.refresher.refresh(account_id)
    provider.expire_cursors()
    created = await gw.http.post("/v1/contacts", json={"name": {"givenName": "mine"}}, headers=auth)
    assert created.status == 201
    await gw.core.refresher.refresh(account_id)
    assert await gw.core.store.count(account_id, "live") == 4


async def test_throttling_is_retried_then_reported(gw: Gateway) -> None:
    account_id, auth, provider = await gw.connect("alice")
    provider.create(person("A"))
    provider.fail_next = [Throttled(retry_after=0.01), Unavailable()]
    await gw.core.refresher.refresh(account_id)
    assert await gw.core.store.count(account_id, "live") == 1
    provider.fail_next = [Unavailable(retry_after=0.01)] * 10
    resp = await gw.http.post("/v1/contacts", json={"name": {"givenName": "B"}}, headers=auth)
    assert resp.status == 503
    body = await resp.json()
    assert body["code"] == "provider.unavailable" and "Retry-After" in resp.headers
    assert len(provider.fail_next) == 10 - 4  # one try and three retries, no more
    assert len(provider.contacts) == 1


async def test_revoked_credentials_mark_the_account(gw: Gateway) -> None:
    account_id, auth, provider = await gw.connect("alice")
    provider.fail_next = [AuthFailed("invalid_grant")]
    with pytest.raises(AuthFailed):
        await gw.core.refresher.refresh(account_id)
    account = await gw.core.identity.account(account_id)
    assert account is not None and account.status == "reauth_required"
    resp = await gw.http.post("/v1/contacts/sync", headers=auth)
    assert resp.status == 401 and (await resp.json())["code"] == "account.reauth_required"


async def test_sync_start_reports_ready_false_while_the_first_pull_waits(gw: Gateway) -> None:
    _, auth, provider = await gw.connect("alice")
    provider.fail_next = [Unavailable(retry_after=60)]  # longer than we wait: the pull fails
    body = await (await gw.http.post("/v1/contacts/sync", params={"awaitReady": "false"}, headers=auth)).json()
    assert body == {"syncUpdatedToken": None, "syncDeletedToken": None, "ready": False}
    await gw.core.refresher.wait_idle()  # the background pull fails
    body = await (await gw.http.post("/v1/contacts/sync", headers=auth)).json()
    assert body["ready"] is True and body["syncUpdatedToken"]


async def test_a_page_pulled_before_a_gateway_write_does_not_undo_it(gw: Gateway) -> None:
    account_id, auth, provider = await gw.connect("alice")
    native = provider.create(person("v1"))
    await gw.core.refresher.refresh(account_id)
    cid = (await (await gw.http.get("/v1/contacts", headers=auth)).json())["records"][0]["id"]
    provider.expire_cursors()  # the next pull relists, and so carries the contact as it is now (v1)

    async def gateway_write_meanwhile() -> None:
        etag = (await gw.http.get(f"/v1/contacts/{cid}", headers=auth)).headers["ETag"]
        resp = await gw.http.patch(f"/v1/contacts/{cid}", json={"name": {"givenName": "v3 through the gateway"}},
                                   headers={**auth, "If-Match": etag})
        assert resp.status == 200, await resp.text()

    provider.during_list.append(gateway_write_meanwhile)  # runs after the page (holding v1) was read
    await gw.core.refresher.refresh(account_id)
    mirror = await (await gw.http.get(f"/v1/contacts/{cid}", headers=auth)).json()
    truth = provider.contacts[native][1].name
    assert truth is not None and truth.givenName == "v3 through the gateway"
    assert mirror["name"]["givenName"] == truth.givenName
