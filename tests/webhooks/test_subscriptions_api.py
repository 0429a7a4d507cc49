"""The subscriptions API: the validation handshake, egress refusals, Basic auth and ownership, paging."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from gateway.webhooks.egress import EgressRefused, GuardedResolver, address_allowed, check_url
from tests.conftest import Gateway
from tests.webhooks.conftest import Consumer, subscribe, verify_signature


def body(account_id: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"accountId": account_id, "resource": "/contacts", "notificationUrl": url, **extra}


async def other_app(gw: Gateway) -> dict[str, str]:
    record, secret = await gw.core.identity.create_app("other")
    creds = base64.b64encode(f"{record.client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {creds}"}


async def test_create_validates_the_url_with_a_signed_handshake(gw: Gateway, consumer: Consumer) -> None:
    account_id, _, _ = await gw.connect("alice")
    sub = await subscribe(gw, account_id, consumer.url)
    assert set(sub) == {"id", "accountId", "resource", "notificationUrl", "active", "failSince", "failDescription"}
    assert sub["accountId"] == account_id and sub["resource"] == "/contacts" and sub["notificationUrl"] == consumer.url
    assert sub["active"] is True and sub["failSince"] is None and sub["failDescription"] is None
    (token, headers, raw), = consumer.validations
    assert len(token) >= 20 and raw == b"" and verify_signature(consumer.secret, headers, raw)
    k = gw.core.store.account(account_id)
    assert await gw.core.redis.client.smembers(k.subscriptions) == {sub["id"].encode()}
    assert (await gw.http.get(f"/v1/subscriptions/{sub['id']}", headers=gw.basic)).status == 200
    # the query string of the URL is kept, the token added to it
    with_query = await subscribe(gw, account_id, consumer.url + "?tenant=7")
    assert with_query["notificationUrl"].endswith("/hook?tenant=7") and len(consumer.validations) == 2


@pytest.mark.parametrize("mode, fragment", [("wrong", "not the validationToken"), ("500", "answered 500"),
                                            ("slow", "did not answer")])
async def test_a_url_that_fails_the_handshake_is_refused(gw: Gateway, consumer: Consumer, mode: str,
                                                         fragment: str) -> None:
    account_id, _, _ = await gw.connect("alice")
    consumer.validation = mode
    resp = await gw.http.post("/v1/subscriptions", json=body(account_id, consumer.url), headers=gw.basic)
    err = await resp.json()
    assert resp.status == 400 and err["code"] == "subscription.validation_failed", err
    assert fragment in err["message"] and err["field"] == "notificationUrl"
    assert await gw.core.redis.client.scard(gw.core.store.account(account_id).subscriptions) == 0
    assert (await (await gw.http.get("/v1/subscriptions", headers=gw.basic)).json())["records"] == []


async def test_an_unreachable_url_is_refused(gw: Gateway, unused_tcp_port: int) -> None:
    account_id, _, _ = await gw.connect("alice")
    resp = await gw.http.post("/v1/subscriptions", json=body(account_id, f"http://127.0.0.1:{unused_tcp_port}/h"),
                              headers=gw.basic)
    err = await resp.json()
    assert resp.status == 400 and err["code"] == "subscription.validation_failed" and "reached" in err["message"]


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:9/hook", "http://localhost/hook", "http://10.1.2.3/", "http://192.168.0.1/",
    "http://169.254.169.254/latest/meta-data", "http://[::1]/", "http://[fe80::1]/", "http://[::ffff:127.0.0.1]/",
    "http://0.0.0.0/", "http://100.64.0.1/",
])
async def test_private_targets_are_refused_by_default(gw: Gateway, consumer: Consumer, url: str) -> None:
    gw.core.settings.webhooks.allow_private_targets = False
    account_id, _, _ = await gw.connect("alice")
    resp = await gw.http.post("/v1/subscriptions", json=body(account_id, url), headers=gw.basic)
    err = await resp.json()
    assert resp.status == 400 and err["code"] == "subscription.url_refused", err
    assert consumer.validations == []


@pytest.mark.parametrize("url", ["ftp://example.com/h", "file:///etc/passwd", "//example.com/h", "example.com",
                                 "http://", "javascript:alert(1)", "http://example.com:99999/"])
async def test_only_absolute_http_urls(gw: Gateway, url: str) -> None:
    account_id, _, _ = await gw.connect("alice")
    resp = await gw.http.post("/v1/subscriptions", json=body(account_id, url), headers=gw.basic)
    err = await resp.json()
    assert resp.status == 400 and err["code"] == "subscription.url_refused", err


def test_egress_rules() -> None:
    for host in ("127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.1.1", "::1", "fe80::1%eth0",
                 "fc00::1", "100.64.0.1", "::ffff:10.0.0.1"):
        assert not address_allowed(host, allow_private=False), host
        assert address_allowed(host, allow_private=True), host
    for host in ("0.0.0.0", "::", "224.0.0.1", "ff02::1"):
        assert not address_allowed(host, allow_private=True), host
    for host in ("93.184.216.34", "8.8.8.8", "2606:2800:220:1:248:1893:25c8:1946"):
        assert address_allowed(host, allow_private=False), host
    assert str(check_url("https://hooks.example.com/x?a=1", allow_private=False)) == "https://hooks.example.com/x?a=1"
    with pytest.raises(EgressRefused):
        check_url("http://127.0.0.1/", allow_private=False)
    assert check_url("http://127.0.0.1/", allow_private=True).host == "127.0.0.1"


async def test_names_are_checked_where_they_are_resolved() -> None:
    """A host name that resolves to a loopback address is refused at connection time (no rebinding window)."""
    strict, lax = GuardedResolver(allow_private=False), GuardedResolver(allow_private=True)
    with pytest.raises(OSError, match="private, loopback"):
        await strict.resolve("localhost", 80)
    with pytest.raises(OSError):
        await strict.resolve("2130706433", 80)  # 127.0.0.1 spelled as a number
    assert {r["host"] for r in await lax.resolve("localhost", 80)} <= {"127.0.0.1", "::1"}


async def test_bad_bodies(gw: Gateway, consumer: Consumer) -> None:
    account_id, _, _ = await gw.connect("alice")
    cases = [
        (body(account_id, consumer.url, resource="/events"), "validation_error", "resource"),
        (body(account_id, consumer.url, extra=1), "validation_error", "extra"),
        ({"resource": "/contacts", "notificationUrl": consumer.url}, "validation_error", "accountId"),
        (body(account_id, 42), "validation_error", "notificationUrl"),
        (body(account_id, ""), "validation_error", "notificationUrl"),
        ([1], "validation_error", "body"),
    ]
    for payload, code, field in cases:
        resp = await gw.http.post("/v1/subscriptions", json=payload, headers=gw.basic)
        err = await resp.json()
        assert resp.status == 400 and err["code"] == code and err["field"] == field, (payload, err)
    resp = await gw.http.post("/v1/subscriptions", data=b"{", headers={**gw.basic, "Content-Type": "application/json"})
    assert resp.status == 400 and (await resp.json())["code"] == "invalid_json"
    assert consumer.validations == []


async def test_every_endpoint_needs_the_apps_basic_credentials(gw: Gateway, consumer: Consumer) -> None:
    account_id, bearer, _ = await gw.connect("alice")
    sub = await subscribe(gw, account_id, consumer.url)
    calls = [("POST", "/v1/subscriptions"), ("GET", "/v1/subscriptions"), ("GET", f"/v1/subscriptions/{sub['id']}"),
             ("DELETE", f"/v1/subscriptions/{sub['id']}"), ("GET", f"/v1/subscriptions/{sub['id']}/deliveries")]
    wrong = {"Authorization": "Basic " + base64.b64encode(b"app_0000:nope").decode()}
    for method, path in calls:
        for headers in ({}, bearer, wrong):
            resp = await gw.http.request(method, path, headers=headers, json=body(account_id, consumer.url))
            err = await resp.json()
            assert resp.status == 401 and err["code"] == "unauthorized" and err["requestId"], (method, path)
            assert "Basic" in resp.headers["WWW-Authenticate"]
    assert (await gw.http.get(f"/v1/subscriptions/{sub['id']}", headers=gw.basic)).status == 200


async def test_another_apps_subscriptions_and_accounts_are_not_found(gw: Gateway, consumer: Consumer) -> None:
    account_id, _, _ = await gw.connect("alice")
    sub = await subscribe(gw, account_id, consumer.url)
    other = await other_app(gw)
    for method, path in [("GET", f"/v1/subscriptions/{sub['id']}"), ("DELETE", f"/v1/subscriptions/{sub['id']}"),
                         ("GET", f"/v1/subscriptions/{sub['id']}/deliveries"), ("GET", "/v1/subscriptions/sub_x"),
                         ("GET", "/v1/subscriptions/sub_0123456789abcdef0123")]:
        resp = await gw.http.request(method, path, headers=other)
        assert resp.status == 404 and (await resp.json())["code"] == "not_found", (method, path)
    assert (await (await gw.http.get("/v1/subscriptions", headers=other)).json())["records"] == []
    # another app cannot subscribe to this app's account (nor to one that does not exist)
    for target in (account_id, "acc_nope"):
        resp = await gw.http.post("/v1/subscriptions", json=body(target, consumer.url), headers=other)
        assert resp.status == 404 and (await resp.json())["code"] == "not_found"
    assert len(consumer.validations) == 1  # no request left the gateway for them
    assert (await gw.http.get(f"/v1/subscriptions/{sub['id']}", headers=gw.basic)).status == 200


async def test_list_pages_get_and_delete(gw: Gateway, consumer: Consumer) -> None:
    first, _, _ = await gw.connect("alice")
    second, _, _ = await gw.connect("bob")
    made = [await subscribe(gw, a, consumer.url) for a in (first, second, first)]
    page = await (await gw.http.get("/v1/subscriptions", params={"pageSize": "2"}, headers=gw.basic)).json()
    assert [s["id"] for s in page["records"]] == [s["id"] for s in made[:2]] and page["nextPageToken"]
    rest = await (await gw.http.get("/v1/subscriptions", params={"pageSize": "2", "pageToken": page["nextPageToken"]},
                                    headers=gw.basic)).json()
    assert rest == {"records": [made[2]]}
    bad = await gw.http.get("/v1/subscriptions", params={"pageToken": "zzz"}, headers=gw.basic)
    assert bad.status == 400 and (await bad.json())["field"] == "pageToken"
    assert (await gw.http.get("/v1/subscriptions", params={"pageSize": "0"}, headers=gw.basic)).status == 400
    one = await (await gw.http.get(f"/v1/subscriptions/{made[1]['id']}", headers=gw.basic)).json()
    assert one == made[1]
    assert (await gw.http.delete(f"/v1/subscriptions/{made[0]['id']}", headers=gw.basic)).status == 204
    assert (await gw.http.get(f"/v1/subscriptions/{made[0]['id']}", headers=gw.basic)).status == 404
    assert (await gw.http.delete(f"/v1/subscriptions/{made[0]['id']}", headers=gw.basic)).status == 404
    listed = await (await gw.http.get("/v1/subscriptions", headers=gw.basic)).json()
    assert [s["id"] for s in listed["records"]] == [made[1]["id"], made[2]["id"]]
    client = gw.core.redis.client
    assert await client.smembers(gw.core.store.account(first).subscriptions) == {made[2]["id"].encode()}
    assert await client.sismember(gw.core.store.keys.webhook_accounts, first)
    assert (await gw.http.delete(f"/v1/subscriptions/{made[2]['id']}", headers=gw.basic)).status == 204
    assert not await client.sismember(gw.core.store.keys.webhook_accounts, first)


async def test_subscriptions_per_account_are_bounded(gw: Gateway, consumer: Consumer) -> None:
    gw.core.settings.webhooks.max_subscriptions_per_account = 2
    account_id, _, _ = await gw.connect("alice")
    for _ in range(2):
        await subscribe(gw, account_id, consumer.url)
    resp = await gw.http.post("/v1/subscriptions", json=body(account_id, consumer.url), headers=gw.basic)
    assert resp.status == 400 and (await resp.json())["code"] == "subscription.limit"


async def test_deleting_the_account_forgets_its_subscriptions(gw: Gateway, consumer: Consumer) -> None:
    account_id, _, _ = await gw.connect("alice")
    sub = await subscribe(gw, account_id, consumer.url)
    assert (await gw.http.delete(f"/v1/accounts/{account_id}", headers=gw.basic)).status == 204
    assert (await gw.http.get(f"/v1/subscriptions/{sub['id']}", headers=gw.basic)).status == 404
    assert (await (await gw.http.get("/v1/subscriptions", headers=gw.basic)).json())["records"] == []
