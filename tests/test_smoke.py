from __future__ import annotations

from gateway.models import ContactInput
from tests.conftest import Gateway


async def test_sync_flow(gw: Gateway) -> None:
    account_id, auth, provider = await gw.connect("alice")
    for i in range(120):
        provider.create(ContactInput.model_validate({"name": {"givenName": f"P{i}"}}))
    r = await gw.http.post("/v1/contacts/sync", headers=auth)
    body = await r.json()
    assert r.status == 200 and body["ready"] is True, body
    got = []
    r = await gw.http.get("/v1/contacts/sync/updated", params={"deltaToken": body["syncUpdatedToken"]}, headers=auth)
    page = await r.json()
    got += page["records"]
    while "nextPageToken" in page:
        r = await gw.http.get("/v1/contacts/sync/updated", params={"pageToken": page["nextPageToken"]}, headers=auth)
        page = await r.json()
        got += page["records"]
    assert len(got) == 120
    assert "nextDeltaToken" in page
