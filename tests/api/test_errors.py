"""Every failure is JSON {code, message, requestId} with the right status; probes answer."""

from __future__ import annotations

from tests.conftest import Gateway


async def assert_error(resp: object, status: int, code: str) -> None:
    body = await resp.json()  # type: ignore[attr-defined]
    assert resp.status == status, body  # type: ignore[attr-defined]
    assert body["code"] == code and body["message"] and body["requestId"]
    assert resp.headers["X-Request-Id"] == body["requestId"]  # type: ignore[attr-defined]


async def test_unknown_route_and_method(gw: Gateway) -> None:
    await assert_error(await gw.http.get("/nope"), 404, "not_found")
    resp = await gw.http.put("/v1/contacts", json={})
    await assert_error(resp, 405, "method_not_allowed")
    assert "GET" in resp.headers["Allow"]


async def test_auth_is_required_and_checked(gw: Gateway) -> None:
    await assert_error(await gw.http.get("/v1/contacts"), 401, "unauthorized")
    await assert_error(await gw.http.get("/v1/contacts", headers={"Authorization": "Bearer nope"}), 401,
                       "unauthorized")
    await assert_error(await gw.http.get("/v1/accounts"), 401, "unauthorized")
    await assert_error(await gw.http.get("/v1/accounts", headers={"Authorization": "Basic !!!"}), 401,
                       "unauthorized")
    _, auth, _ = await gw.connect("alice")
    # an account token is not an app credential, and the reverse
    await assert_error(await gw.http.get("/v1/accounts", headers=auth), 401, "unauthorized")
    await assert_error(await gw.http.get("/v1/contacts", headers=gw.basic), 401, "unauthorized")


async def test_probes(gw: Gateway) -> None:
    assert (await gw.http.get("/healthz")).status == 200
    resp = await gw.http.get("/readyz")
    assert resp.status == 200 and (await resp.json())["redis"] == "ok"


async def test_request_id_is_echoed(gw: Gateway) -> None:
    resp = await gw.http.get("/nope", headers={"X-Request-Id": "abc123"})
    assert (await resp.json())["requestId"] == "abc123"
