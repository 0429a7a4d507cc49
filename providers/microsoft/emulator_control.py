"""The emulator's control API (/_control, identical on every provider emulator; see EMULATORS.md).

Contacts go in and out as unified Contact JSON and are stored as Graph contacts through mapping.py, the same
mapping the connector uses, so a change made here is what the gateway later reads from Graph. The folder
attribute places a new contact (a folder of that name is made when none exists); a PATCH never moves a
contact, as Graph cannot. Native ids are Graph contact ids.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.models import WRITABLE_FIELDS, ContactInput
from providers.base import folder_of
from providers.control_kit import SERVER_FIELDS as _SERVER_FIELDS
from providers.control_kit import add_fault_routes, new_user_name, seed_params
from providers.control_kit import http_error as _http_error
from providers.control_kit import json_response as _json
from providers.control_kit import parse_contact as _contact
from providers.control_kit import read_body as _body
from providers.microsoft.emulator_state import STATE, ContactRecord, EmulatorState, Folder, Mailbox
from providers.microsoft.mapping import contact_to_graph, graph_to_contact
from providers.microsoft.seed import generate


def _mailbox(request: web.Request) -> tuple[EmulatorState, Mailbox]:
    state = request.app[STATE]
    mailbox = state.mailboxes.get(request.match_info["user"])
    if mailbox is None:
        raise _http_error(404, f"no such user: {request.match_info['user']}")
    return state, mailbox


def _record(request: web.Request) -> tuple[EmulatorState, Mailbox, ContactRecord]:
    state, mailbox = _mailbox(request)
    record = mailbox.get(request.match_info["native_id"])
    if record is None:
        raise _http_error(404, f"no such contact: {request.match_info['native_id']}")
    return state, mailbox, record


def _folder_name(mailbox: Mailbox, record: ContactRecord) -> str | None:
    return mailbox.path_of(mailbox.folders[record.folder_id])


def _view(mailbox: Mailbox, record: ContactRecord) -> dict[str, Any]:
    contact = graph_to_contact(record.render(), _folder_name(mailbox, record))
    return {"nativeId": record.contact_id, "contact": contact.model_dump(mode="json", exclude_none=True)}


def store(state: EmulatorState, mailbox: Mailbox, contact: ContactInput) -> ContactRecord:
    """Create a contact from unified content, in the folder its folder attribute names: a "/"-joined path
    below the default folder, made level by level where missing."""
    path = folder_of(contact)
    folder: Folder = mailbox.default if path is None else state.folder_path(mailbox, path)
    return state.create(mailbox, folder, contact_to_graph(contact))


async def _create_user(request: web.Request) -> web.Response:
    user = await new_user_name(request)
    token = request.app[STATE].add_user(user)
    return _json({"user": user, "credentials": {"refreshToken": token}}, 201)


async def _create_contact(request: web.Request) -> web.Response:
    state, mailbox = _mailbox(request)
    record = store(state, mailbox, _contact(await _body(request)))
    return _json({"nativeId": record.contact_id}, 201)


async def _list_contacts(request: web.Request) -> web.Response:
    _, mailbox = _mailbox(request)
    return _json([_view(mailbox, r) for r in mailbox.records.values() if not r.deleted])


async def _get_contact(request: web.Request) -> web.Response:
    _, mailbox, record = _record(request)
    return _json(_view(mailbox, record))


async def _patch_contact(request: web.Request) -> web.Response:
    """Top-level fields present replace the stored ones, null clears, absent ones stay."""
    state, mailbox, record = _record(request)
    body = await _body(request)
    unknown = set(body) - WRITABLE_FIELDS - _SERVER_FIELDS
    if unknown:
        raise _http_error(400, f"unknown contact fields: {sorted(unknown)}")
    merged = graph_to_contact(record.render()).model_dump(exclude_none=True)
    merged.update({k: v for k, v in body.items() if k in WRITABLE_FIELDS})
    graph = contact_to_graph(_contact({k: v for k, v in merged.items() if v is not None}))
    return _json(_view(mailbox, state.update(mailbox, record.contact_id, graph)))


async def _delete_contact(request: web.Request) -> web.Response:
    state, mailbox, record = _record(request)
    state.delete(mailbox, record.contact_id)
    return web.Response(status=204)


async def _seed(request: web.Request) -> web.Response:
    state, mailbox = _mailbox(request)
    body = await _body(request)
    count, seed = seed_params(body)
    ids = [store(state, mailbox, contact).contact_id for contact in generate(count, seed)]
    return _json({"count": len(ids), "nativeIds": ids}, 201)


async def _expire_cursors(request: web.Request) -> web.Response:
    state, mailbox = _mailbox(request)
    state.expire_cursors(mailbox)
    return web.Response(status=204)


def add_control_routes(app: web.Application) -> None:
    """Mount /_control on an emulator app whose state is app[STATE]."""
    router = app.router
    router.add_post("/_control/users", _create_user)
    router.add_post("/_control/users/{user}/contacts", _create_contact)
    router.add_get("/_control/users/{user}/contacts", _list_contacts)
    router.add_get("/_control/users/{user}/contacts/{native_id}", _get_contact)
    router.add_patch("/_control/users/{user}/contacts/{native_id}", _patch_contact)
    router.add_delete("/_control/users/{user}/contacts/{native_id}", _delete_contact)
    router.add_post("/_control/users/{user}/seed", _seed)
    router.add_post("/_control/users/{user}/expire-cursors", _expire_cursors)
    add_fault_routes(app, STATE)
