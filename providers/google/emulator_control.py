"""The emulator's control API (/_control, identical on every provider emulator; see EMULATORS.md).

Contacts go in and out as unified Contact JSON and are stored as Persons through mapping.py, the same
mapping the connector uses, so a change made here is what the gateway later reads from the People API.
Native ids are resource names ("people/c123"); in URLs they may be given raw, %2F-encoded, or bare ("c123").
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.models import WRITABLE_FIELDS, ContactInput
from providers.control_kit import SERVER_FIELDS as _SERVER_FIELDS
from providers.control_kit import add_fault_routes, new_user_name, seed_params
from providers.control_kit import http_error as _http_error
from providers.control_kit import json_response as _json
from providers.control_kit import parse_contact as _contact
from providers.control_kit import read_body as _body
from providers.google.emulator_state import STATE, EmulatorState, PersonRecord
from providers.google.mapping import UPDATE_FIELDS, contact_to_person, person_to_contact
from providers.google.seed import generate


def _user(request: web.Request) -> tuple[EmulatorState, str]:
    state, user = request.app[STATE], request.match_info["user"]
    if user not in state.books:
        raise _http_error(404, f"no such user: {user}")
    return state, user


def _record(request: web.Request) -> tuple[EmulatorState, str, PersonRecord]:
    state, user = _user(request)
    native_id = request.match_info["native_id"].replace("%2F", "/").replace("%2f", "/")
    record = state.books[user].get(native_id.removeprefix("people/"))
    if record is None:
        raise _http_error(404, f"no such contact: {native_id}")
    return state, user, record


def _view(state: EmulatorState, user: str, record: PersonRecord) -> dict[str, Any]:
    contact = person_to_contact(record.render(), state.books[user].groups)
    return {"nativeId": record.resource_name, "contact": contact.model_dump(mode="json", exclude_none=True)}


def _person(state: EmulatorState, user: str, contact: ContactInput) -> dict[str, Any]:
    """The Person for unified content; a keyword naming no contact group makes a user group, as the
    connector does."""
    book = state.books[user]
    groups = {k: book.group_named(k) or book.add_group(k) for k in contact.keywords or [] if k != "myContacts"}
    return contact_to_person(contact, groups)


async def _create_user(request: web.Request) -> web.Response:
    user = await new_user_name(request)
    token = request.app[STATE].add_user(user)
    return _json({"user": user, "credentials": {"refreshToken": token}}, 201)


async def _create_contact(request: web.Request) -> web.Response:
    state, user = _user(request)
    record = state.create(user, _person(state, user, _contact(await _body(request))))
    return _json({"nativeId": record.resource_name}, 201)


async def _list_contacts(request: web.Request) -> web.Response:
    state, user = _user(request)
    records = [r for r in state.books[user].records.values() if not r.deleted]
    return _json([_view(state, user, r) for r in sorted(records, key=lambda r: r.seq)])


async def _get_contact(request: web.Request) -> web.Response:
    state, user, record = _record(request)
    return _json(_view(state, user, record))


async def _patch_contact(request: web.Request) -> web.Response:
    """Top-level fields present replace the stored ones, null clears, absent ones stay."""
    state, user, record = _record(request)
    body = await _body(request)
    unknown = set(body) - WRITABLE_FIELDS - _SERVER_FIELDS
    if unknown:
        raise _http_error(400, f"unknown contact fields: {sorted(unknown)}")
    merged = person_to_contact(record.render(), state.books[user].groups).model_dump(exclude_none=True)
    merged.update({k: v for k, v in body.items() if k in WRITABLE_FIELDS})
    person = _person(state, user, _contact({k: v for k, v in merged.items() if v is not None}))
    return _json(_view(state, user, state.update(user, record.person_id, person, set(UPDATE_FIELDS))))


async def _delete_contact(request: web.Request) -> web.Response:
    state, user, record = _record(request)
    state.delete(user, record.person_id)
    return web.Response(status=204)


async def _seed(request: web.Request) -> web.Response:
    state, user = _user(request)
    body = await _body(request)
    count, seed = seed_params(body)
    ids = [state.create(user, _person(state, user, c)).resource_name for c in generate(count, seed)]
    return _json({"count": len(ids), "nativeIds": ids}, 201)


async def _expire_cursors(request: web.Request) -> web.Response:
    state, user = _user(request)
    state.expire_cursors(user)
    return web.Response(status=204)


def add_control_routes(app: web.Application) -> None:
    """Mount /_control on an emulator app whose state is app[STATE]."""
    router = app.router
    router.add_post("/_control/users", _create_user)
    router.add_post("/_control/users/{user}/contacts", _create_contact)
    router.add_get("/_control/users/{user}/contacts", _list_contacts)
    router.add_get("/_control/users/{user}/contacts/{native_id:.+}", _get_contact)
    router.add_patch("/_control/users/{user}/contacts/{native_id:.+}", _patch_contact)
    router.add_delete("/_control/users/{user}/contacts/{native_id:.+}", _delete_contact)
    router.add_post("/_control/users/{user}/seed", _seed)
    router.add_post("/_control/users/{user}/expire-cursors", _expire_cursors)
    add_fault_routes(app, STATE)
