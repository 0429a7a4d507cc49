"""Accounts: connect, list, read, delete, with credentials encrypted at rest."""

from __future__ import annotations

from tests.conftest import Gateway


async def test_connect_list_get_delete(gw: Gateway) -> None:
    account_id, auth, provider = await gw.connect("alice")
    listed = await (await gw.http.get("/v1/accounts", headers=gw.basic)).json()
    assert [a["accountId"] for a in listed["records"]] == [account_id]
    one = await (await gw.http.get(f"/v1/accounts/{account_id}", headers=gw.basic)).json()
    assert one["serviceType"] == "fake" and one["status"] == "active"
    raw = await gw.core.redis.client.hget(gw.core.store.account(account_id).account, "creds")
    assert raw is not None and b"alice" not in raw  # encrypted at rest
    assert await gw.core.identity.credentials(account_id) == {"mailbox": "alice"}
    assert (await gw.http.delete(f"/v1/accounts/{account_id}", headers=gw.basic)).status == 204
    assert (await gw.http.get("/v1/contacts", headers=auth)).status == 401
    assert (await gw.http.get(f"/v1/accounts/{account_id}", headers=gw.basic)).status == 404
    left = [k async for k in gw.core.redis.client.scan_iter(match=f"{gw.core.store.account(account_id).base}:*")]
    assert left == []


async def test_bad_account_requests(gw: Gateway) -> None:
    cases = [
        ({"serviceType": "nope", "credentials": {}}, "validation_error", "serviceType"),
        ({"serviceType": "fake"}, "validation_error", "credentials"),
        ({"serviceType": "fake", "credentials": {}}, "account.credentials_invalid", "credentials"),
        ({"serviceType": "fake", "credentials": {"mailbox": "m"}, "extra": 1}, "validation_error", "extra"),
    ]
    for body, code, field in cases:
        resp = await gw.http.post("/v1/accounts", json=body, headers=gw.basic)
        err = await resp.json()
        assert resp.status == 400 and err["code"] == code and err["field"] == field, err
    assert (await (await gw.http.get("/v1/accounts", headers=gw.basic)).json())["records"] == []


async def test_another_apps_accounts_are_invisible(gw: Gateway) -> None:
    import base64

    account_id, _, _ = await gw.connect("alice")
    other, secret = await gw.core.identity.create_app("other")
    basic = {"Authorization": "Basic " + base64.b64encode(f"{other.client_id}:{secret}".encode()).decode()}
    assert (await (await gw.http.get("/v1/accounts", headers=basic)).json())["records"] == []
    assert (await gw.http.get(f"/v1/accounts/{account_id}", headers=basic)).status == 404
    assert (await gw.http.delete(f"/v1/accounts/{account_id}", headers=basic)).status == 404
    wrong = {"Authorization": "Basic " + base64.b64encode(f"{other.client_id}:wrong".encode()).decode()}
    assert (await gw.http.get("/v1/accounts", headers=wrong)).status == 401
