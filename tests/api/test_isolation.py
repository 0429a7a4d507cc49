"""One account's token never reaches another account's data, on every endpoint."""

from __future__ import annotations

from tests.conftest import Gateway


async def test_account_b_cannot_touch_account_a(gw: Gateway) -> None:
    _, auth_a, _ = await gw.connect("alice")
    _, auth_b, provider_b = await gw.connect("bob")
    a = await (await gw.http.post("/v1/contacts", json={"notes": "secret of A"}, headers=auth_a)).json()
    tokens_a = await (await gw.http.post("/v1/contacts/sync", headers=auth_a)).json()
    page_a = await (await gw.http.get("/v1/contacts/sync/updated", params={
        "deltaToken": tokens_a["syncUpdatedToken"]}, headers=auth_a)).json()
    assert len(page_a["records"]) == 1
    listed_a = await (await gw.http.get("/v1/contacts", params={"pageSize": "1"}, headers=auth_a)).json()
    assert len(listed_a["records"]) == 1

    url = f"/v1/contacts/{a['id']}"
    assert (await gw.http.get(url, headers=auth_b)).status == 404
    assert (await gw.http.patch(url, json={"notes": "x"}, headers={**auth_b, "If-Match": a["etag"]})).status == 404
    assert (await gw.http.delete(url, headers=auth_b)).status == 404
    for stream, token in (("updated", tokens_a["syncUpdatedToken"]), ("deleted", tokens_a["syncDeletedToken"]),
                          ("updated", page_a["nextDeltaToken"])):
        resp = await gw.http.get(f"/v1/contacts/sync/{stream}", params={"deltaToken": token}, headers=auth_b)
        assert resp.status == 400 and (await resp.json())["code"] == "syncToken.invalid"
    tokens_b = await (await gw.http.post("/v1/contacts/sync", headers=auth_b)).json()
    page_b = await (await gw.http.get("/v1/contacts/sync/updated", params={
        "deltaToken": tokens_b["syncUpdatedToken"]}, headers=auth_b)).json()
    assert page_b["records"] == []
    assert (await (await gw.http.get("/v1/contacts", headers=auth_b)).json())["records"] == []
    # A's contact is untouched, at the provider of B nothing was written
    assert provider_b.contacts == {}
    again = await (await gw.http.get(url, headers=auth_a)).json()
    assert again["notes"] == "secret of A" and again["etag"] == a["etag"]
