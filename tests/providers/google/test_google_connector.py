"""GoogleConnector through the real google-api-python-client and google-auth, against the emulator."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httplib2
import pytest
from googleapiclient.errors import HttpError

from gateway.models import ContactInput, content_of
from providers.base import (
    AuthFailed,
    Conflict,
    CursorExpired,
    NotFound,
    Throttled,
    Unavailable,
)
from providers.google.connector import GoogleConnector, map_errors, parse_credentials
from providers.google.emulator import EmulatorState
from tests.providers.google.google_helpers import FULL, Control, FakeClock
from tests.providers.pages import drain, ids

Connect = Callable[..., GoogleConnector]



async def test_full_listing_pages_then_incremental_changes(alice: GoogleConnector, control: Control) -> None:
    seeded = await control.seed("alice", 25, seed=3)
    pages, cursor = await drain(alice, None)
    assert [page.more for page in pages] == [True, True, False]
    assert sorted(ids(pages)) == sorted(seeded)
    assert all(c.version and c.contact is not None and not c.deleted for p in pages for c in p.changes)
    assert cursor is not None
    assert (await alice.list_changes(cursor)).changes == []

    created = await control.create("alice", {"name": {"givenName": "New"}, "notes": "n"})
    await control.patch("alice", seeded[0], {"notes": "changed", "company": None})
    await control.delete("alice", seeded[1])
    pages, next_cursor = await drain(alice, cursor)
    changes = {c.native_id: c for p in pages for c in p.changes}
    assert set(changes) == {created, seeded[0], seeded[1]}
    assert content_of(changes[created].contact) == {"name": {"givenName": "New"}, "notes": "n"}  # type: ignore[arg-type]
    assert changes[seeded[0]].contact is not None and changes[seeded[0]].contact.notes == "changed"
    assert changes[seeded[0]].contact.company is None
    assert changes[seeded[1]].deleted and changes[seeded[1]].contact is None
    assert next_cursor is not None and next_cursor != cursor
    assert (await alice.list_changes(next_cursor)).changes == []


async def test_incremental_round_spans_pages(alice: GoogleConnector, control: Control) -> None:
    seeded = await control.seed("alice", 12)
    _, cursor = await drain(alice, None)
    for native_id in seeded:
        await control.patch("alice", native_id, {"notes": "bulk edit"})
    pages, _ = await drain(alice, cursor)
    assert [page.more for page in pages] == [True, False]
    assert sorted(ids(pages)) == sorted(seeded)
    assert all(c.contact is not None and c.contact.notes == "bulk edit" for p in pages for c in p.changes)


async def test_expired_sync_token(alice: GoogleConnector, control: Control, clock: FakeClock) -> None:
    await control.seed("alice", 15)
    _, cursor = await drain(alice, None)
    await alice.list_changes(cursor)  # still valid
    await control.call("POST", "/users/alice/expire-cursors", expect=204)
    with pytest.raises(CursorExpired):
        await alice.list_changes(cursor)

    _, cursor = await drain(alice, None)  # relisting gives a fresh token
    await alice.list_changes(cursor)
    clock.advance(8 * 86400)  # Google: sync tokens expire after 7 days
    with pytest.raises(CursorExpired):
        await alice.list_changes(cursor)
    with pytest.raises(CursorExpired):
        await alice.list_changes("not-a-cursor")


async def test_incremental_page_cursor_expires_too(alice: GoogleConnector, control: Control) -> None:
    seeded = await control.seed("alice", 12)
    _, cursor = await drain(alice, None)
    for native_id in seeded:
        await control.patch("alice", native_id, {"notes": "x"})
    first = await alice.list_changes(cursor)
    assert first.more
    await control.call("POST", "/users/alice/expire-cursors", expect=204)
    with pytest.raises(CursorExpired):
        await alice.list_changes(first.cursor)


async def test_round_trip_through_the_emulator(alice: GoogleConnector) -> None:
    contact = ContactInput.model_validate(FULL)
    created = await alice.create(contact)
    assert created.native_id.startswith("people/c") and created.version
    assert created.modified_time is not None
    assert created.contact is not None and content_of(created.contact) == content_of(contact)
    fetched = await alice.get(created.native_id)
    assert fetched.version == created.version
    assert fetched.contact is not None and content_of(fetched.contact) == content_of(contact)
    pages, _ = await drain(alice, None)
    listed = [c for p in pages for c in p.changes]
    assert [c.native_id for c in listed] == [created.native_id]
    assert listed[0].contact is not None and content_of(listed[0].contact) == content_of(contact)


async def test_keywords_are_contact_group_names(alice: GoogleConnector, control: Control,
                                                 state: EmulatorState) -> None:
    book = state.books["alice"]
    made_at_google = book.add_group("Board")  # a user group with an opaque id, made outside the gateway
    native = await control.create("alice", {"name": {"givenName": "Member"}})
    book.write(native.removeprefix("people/"), {**book.records[native.removeprefix("people/")].fields,
                                                 "memberships": [
        {"contactGroupMembership": {"contactGroupResourceName": "contactGroups/myContacts"}},
        {"contactGroupMembership": {"contactGroupResourceName": made_at_google}}]}, state.now_iso())
    pages, _ = await drain(alice, None)
    listed = {c.native_id: c.content for p in pages for c in p.changes}
    assert listed[native] == {"name": {"givenName": "Member"}, "keywords": ["Board"]}  # the name, not the id

    contact = ContactInput.model_validate({"name": {"givenName": "Tagged"}, "keywords": ["Board", "vip", "starred"]})
    created = await alice.create(contact)
    assert created.contact is not None and created.contact.keywords == ["Board", "vip", "starred"]
    vip = book.group_named("vip")
    assert vip is not None and vip != "contactGroups/vip"  # made once, with Google's own id
    groups = [m["contactGroupMembership"]["contactGroupResourceName"]
              for m in book.records[created.native_id.removeprefix("people/")].fields["memberships"]]
    assert groups == ["contactGroups/myContacts", made_at_google, vip, "contactGroups/starred"]
    again = await alice.create(ContactInput.model_validate({"keywords": ["vip"]}))
    assert again.contact is not None and again.contact.keywords == ["vip"]
    assert sum(1 for name in book.groups.values() if name == "vip") == 1


async def test_update_replaces_and_clears(alice: GoogleConnector, control: Control) -> None:
    created = await alice.create(ContactInput.model_validate(FULL))
    replacement = ContactInput.model_validate({"name": {"givenName": "Only"}, "keywords": ["k"]})
    updated = await alice.update(created.native_id, replacement, created.version)
    assert updated.version != created.version
    assert updated.contact is not None and content_of(updated.contact) == content_of(replacement)
    truth = await control.call("GET", f"/users/alice/contacts/{created.native_id}")
    assert truth["contact"] == {"name": {"givenName": "Only"}, "keywords": ["k"]}
    again = await alice.update(created.native_id, ContactInput(notes="no etag given"), None)
    assert again.contact is not None and again.contact.notes == "no etag given"


async def test_stale_etag_update_conflicts(alice: GoogleConnector, control: Control) -> None:
    created = await alice.create(ContactInput(notes="v1"))
    await control.patch("alice", created.native_id, {"notes": "changed behind our back"})
    with pytest.raises(Conflict) as info:
        await alice.update(created.native_id, ContactInput(notes="v2"), created.version)
    current = await alice.get(created.native_id)
    assert info.value.current_version == current.version != created.version
    assert current.contact is not None and current.contact.notes == "changed behind our back"


async def test_delete_checks_if_match(alice: GoogleConnector) -> None:
    created = await alice.create(ContactInput(notes="v1"))
    updated = await alice.update(created.native_id, ContactInput(notes="v2"), created.version)
    with pytest.raises(Conflict) as info:
        await alice.delete(created.native_id, created.version)
    assert info.value.current_version == updated.version
    await alice.delete(created.native_id, updated.version)
    with pytest.raises(NotFound):
        await alice.get(created.native_id)
    with pytest.raises(NotFound):
        await alice.delete(created.native_id, None)
    with pytest.raises(NotFound):
        await alice.update(created.native_id, ContactInput(notes="v3"), updated.version)
    with pytest.raises(NotFound):
        await alice.get("c123")


async def test_throttled_with_retry_after(alice: GoogleConnector, control: Control, state: EmulatorState) -> None:
    await control.fault(path="/v1/people/me/connections", status=429, times=1, retryAfter=7)
    with pytest.raises(Throttled) as info:
        await alice.list_changes(None)
    assert info.value.retry_after == 7.0
    assert state.faults == []  # one request only: the connector did not retry
    assert (await alice.list_changes(None)).more is False


async def test_unavailable(alice: GoogleConnector, control: Control) -> None:
    created = await alice.create(ContactInput(notes="x"))
    await control.fault(path="^/v1/people/c", status=503, times=1)
    with pytest.raises(Unavailable) as info:
        await alice.get(created.native_id)
    assert info.value.retry_after is None
    await control.fault(path="^/v1/people/c", status=500, times=1, retryAfter=2)
    with pytest.raises(Unavailable) as info:
        await alice.get(created.native_id)
    assert info.value.retry_after == 2.0
    assert (await alice.get(created.native_id)).contact is not None


async def test_invalid_or_revoked_refresh_token(make_connector: Connect, control: Control,
                                                state: EmulatorState) -> None:
    with pytest.raises(AuthFailed):
        await make_connector({"refreshToken": "1//bogus"}).list_changes(None)
    token = await control.add_user("bob")
    with pytest.raises(AuthFailed):
        await make_connector({"refreshToken": token}, client_secret="wrong").list_changes(None)

    bob = make_connector({"refreshToken": token})
    await bob.list_changes(None)
    resp = await control.client.post("/revoke", data={"token": token})
    assert resp.status == 200
    await bob.list_changes(None)  # the access token still works until it expires
    state.expire_access_tokens()
    with pytest.raises(AuthFailed):
        await bob.list_changes(None)


async def test_access_token_expiry_refreshes_transparently(alice: GoogleConnector, control: Control,
                                                           state: EmulatorState, clock: FakeClock) -> None:
    created = await alice.create(ContactInput(notes="x"))
    assert state.access_tokens_issued == 1
    clock.advance(3601)  # the server now answers 401 to the token the client still believes in
    assert (await alice.get(created.native_id)).contact is not None
    assert state.access_tokens_issued == 2
    token = await control.add_user("carol")
    stale = GoogleConnector({"refreshToken": token, "accessToken": "ya29.stale"}, alice._settings)
    assert (await stale.list_changes(None)).changes == []  # shared pool, given token refused then refreshed
    assert state.access_tokens_issued == 3


async def test_concurrent_calls_refresh_once(alice: GoogleConnector, control: Control,
                                             state: EmulatorState) -> None:
    seeded = await control.seed("alice", 6)
    got = await asyncio.gather(*(alice.get(native_id) for native_id in seeded))
    assert [g.native_id for g in got] == seeded
    assert state.access_tokens_issued == 1


def test_parse_credentials() -> None:
    assert parse_credentials({"refreshToken": "r"}) == {"refreshToken": "r"}
    assert parse_credentials({"refreshToken": "r", "accessToken": "a"}) == {"refreshToken": "r", "accessToken": "a"}
    bad: list[Any] = [{}, {"refreshToken": ""}, {"refreshToken": 5}, {"refreshToken": "r", "accessToken": 1},
                      {"refreshToken": "r", "password": "p"}, ["refreshToken"]]
    for raw in bad:
        with pytest.raises(ValueError, match="Google"):
            parse_credentials(raw)


def _http_error(status: int, body: bytes, **headers: str) -> HttpError:
    resp = httplib2.Response({"status": str(status), **headers})
    return HttpError(resp, body, uri="http://x/v1/people/c1")


def test_map_errors_edge_cases() -> None:
    rate = b'{"error": {"code": 403, "message": "Rate", "status": "PERMISSION_DENIED", ' \
           b'"details": [{"reason": "RATE_LIMIT_EXCEEDED"}]}}'
    assert isinstance(map_errors(_http_error(403, rate)), Throttled)
    assert isinstance(map_errors(_http_error(403, b'{"error": {"code": 403, "status": "PERMISSION_DENIED"}}')),
                      AuthFailed)
    assert isinstance(map_errors(_http_error(410, b"gone")), CursorExpired)
    dated = map_errors(_http_error(429, b"", **{"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}))
    assert isinstance(dated, Throttled) and dated.retry_after == 0.0
    assert isinstance(map_errors(ConnectionRefusedError()), Unavailable)
    assert type(map_errors(_http_error(400, b'{"error": {"code": 400, "status": "INVALID_ARGUMENT"}}'))).__name__ \
        == "ProviderError"
