"""The emulator's Graph routes: /v1.0/me/... and /v1.0/users/{id}/... contact folders, contacts and delta.

Shapes and errors follow ../shared/providers/microsoft-graph.md: `@odata.etag` is W/"<changeKey>", both
change on every write; PATCH/DELETE check `If-Match` (412 ErrorIrresolvableConflict); delta pages honour
`Prefer: odata.maxpagesize` up to the server cap and carry absolute `@odata.nextLink`/`@odata.deltaLink`
on the emulator's own base URL; an evicted token answers 410 syncStateNotFound with a `Location` holding a
fresh initial delta URL. `/me/contactFolders` lists the subfolders of the default "Contacts" folder (as
Graph does), `/me/contactFolders/{id}/childFolders` the child folders of any folder (list, create), and
`/me/contactFolders/{id}` addresses any folder of the mailbox by id, nested or not; the default folder's
contacts are `/me/contacts` and `/me/contacts/delta`.
"""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import unquote

import orjson
from aiohttp import web

from providers.microsoft.emulator_state import (
    STATE,
    ContactRecord,
    DeltaToken,
    EmulatorState,
    Folder,
    Mailbox,
    clean_contact,
)

_MESSAGES = {
    400: ("BadRequest", "Invalid request."),
    401: ("InvalidAuthenticationToken", "Access token is empty."),
    403: ("ErrorAccessDenied", "Access is denied. Check credentials and try again."),
    404: ("ErrorItemNotFound", "The specified object was not found in the store."),
    405: ("BadRequest", "Unsupported request."),
    409: ("ErrorFolderExists", "A folder with the specified name already exists."),
    410: ("syncStateNotFound", "The sync state generation is not found. Delta token is expired."),
    412: ("ErrorIrresolvableConflict", "The send or update operation could not be performed because the change "
                                        "key passed in the request does not match the current change key for the "
                                        "item."),
    429: ("TooManyRequests", "The server is busy. Please, try again later."),
    500: ("ErrorInternalServerError", "An internal server error occurred. The operation failed."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable. Please try again later."),
    504: ("GatewayTimeout", "The gateway did not receive a timely response."),
}
_MAXPAGESIZE = re.compile(r"odata\.maxpagesize\s*=\s*(\d+)", re.IGNORECASE)


class GraphError(Exception):
    """A Graph error, rendered as {"error": {"code", "message", "innerError": {...}}}."""

    def __init__(self, status: int, code: str | None = None, message: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        default_code, default_message = _MESSAGES.get(status, ("UnknownError", "An error occurred."))
        super().__init__(message or default_message)
        self.status, self.code = status, code or default_code
        self.message, self.headers = message or default_message, headers or {}

    def response(self, now_iso: str) -> web.Response:
        request_id = str(uuid.uuid4())
        inner = {"date": now_iso, "request-id": request_id, "client-request-id": request_id}
        return json_response({"error": {"code": self.code, "message": self.message, "innerError": inner}},
                             self.status, {**self.headers, "request-id": request_id})


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, headers=headers,
                        content_type="application/json", charset="utf-8")


# --- request plumbing ----------------------------------------------------------------------------------

def _origin(request: web.Request) -> str:
    return str(request.url.origin())


def _select(request: web.Request) -> list[str] | None:
    value = request.query.get("$select")
    return [p.strip() for p in value.split(",") if p.strip()] if value else None


def _int_param(request: web.Request, name: str, default: int) -> int:
    value = request.query.get(name)
    if value is None:
        return default
    if not value.isdigit():
        raise GraphError(400, "BadRequest", f"Invalid value '{value}' for query parameter '{name}'.")
    return int(value)


def _page_size(request: web.Request, state: EmulatorState) -> int:
    match = _MAXPAGESIZE.search(request.headers.get("Prefer", ""))
    size = int(match.group(1)) if match else state.default_page_size
    return max(1, min(size, state.max_page_size))


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise GraphError(400, "RequestBodyRead", "Invalid JSON in the request body.") from None
    if not isinstance(body, dict):
        raise GraphError(400, "RequestBodyRead", "The request body must be a JSON object.")
    return body


def _contact_fields(body: dict[str, Any]) -> dict[str, Any]:
    try:
        return clean_contact(body)
    except ValueError as exc:
        raise GraphError(400, "RequestBodyRead", str(exc)) from None


def _check_if_match(request: web.Request, record: ContactRecord) -> None:
    given = request.headers.get("If-Match")
    if given is None or given.strip() == "*":
        return
    if given.strip().removeprefix("W/").strip('"') != record.change_key:
        raise GraphError(412)


def _mailbox(request: web.Request, state: EmulatorState, segments: list[str]) -> tuple[Mailbox, list[str]]:
    """The mailbox a path names (/me or /users/{id}) for the bearer token, and the rest of the path."""
    auth = request.headers.get("Authorization", "")
    valid, user = state.principal_of(auth[7:]) if auth[:7].lower() == "bearer " else (False, None)
    if not valid:
        message = "Lifetime validation failed, the token is expired." if auth else "Access token is empty."
        raise GraphError(401, message=message, headers={"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'})
    if segments[:1] == ["me"]:
        if user is None:
            raise GraphError(400, "BadRequest", "/me request is only valid with delegated authentication flow.")
        return state.mailboxes[user], segments[1:]
    if segments[:1] == ["users"] and len(segments) >= 2:
        mailbox = state.mailbox(segments[1])
        if mailbox is None:
            raise GraphError(404, "ErrorInvalidUser", f"The requested user '{segments[1]}' is invalid.")
        if user is not None and mailbox.user != user:
            raise GraphError(403)
        return mailbox, segments[2:]
    raise GraphError(400, "BadRequest", f"Resource not found for the segment '{segments[0] if segments else ''}'.")


# --- handlers ------------------------------------------------------------------------------------------

def _collection(request: web.Request, items: list[dict[str, Any]], context: str) -> web.Response:
    """A $top/$skip page of `items` with an absolute @odata.nextLink when more follow."""
    top = max(1, min(_int_param(request, "$top", 10), 1000))
    skip = _int_param(request, "$skip", 0)
    body: dict[str, Any] = {"@odata.context": f"{_origin(request)}/v1.0/$metadata#{context}",
                            "value": items[skip:skip + top]}
    if skip + top < len(items):
        body["@odata.nextLink"] = str(request.url.update_query({"$skip": str(skip + top), "$top": str(top)}))
    return json_response(body)


def _find_folder(mailbox: Mailbox, folder_id: str) -> Folder:
    folder = mailbox.folders.get(folder_id)
    if folder is None:
        raise GraphError(404)
    return folder


async def _children(request: web.Request, state: EmulatorState, mailbox: Mailbox, parent: Folder) -> web.Response:
    """The child folders of `parent`: list (GET) or create (POST)."""
    if request.method == "GET":
        return _collection(request, [f.render() for f in mailbox.subfolders(parent)], "Collection(contactFolder)")
    if request.method != "POST":
        raise GraphError(405)
    name = (await _body(request)).get("displayName")
    if not isinstance(name, str) or not name.strip():
        raise GraphError(400, "ErrorInvalidRequest", "The folder displayName is required.")
    if mailbox.folder_named(name, parent) is not None:
        raise GraphError(409)
    return json_response(state.add_folder(mailbox, name, parent).render(), 201)


async def _folders(request: web.Request, state: EmulatorState, mailbox: Mailbox, rest: list[str]) -> web.Response:
    """contactFolders (list, create), contactFolders/{id} (get, delete), contactFolders/{id}/childFolders."""
    method = request.method
    if len(rest) == 1:
        return await _children(request, state, mailbox, mailbox.default)
    folder = _find_folder(mailbox, rest[1])
    if rest[2:] == ["childFolders"]:
        return await _children(request, state, mailbox, folder)
    if method == "GET":
        return json_response(folder.render())
    if method != "DELETE":
        raise GraphError(405)
    if folder is mailbox.default:
        raise GraphError(403, "ErrorDeleteDistinguishedFolder", "Distinguished folders cannot be deleted.")
    state.delete_folder(mailbox, folder)
    return web.Response(status=204)


async def _delta(request: web.Request, state: EmulatorState, mailbox: Mailbox, folder: Folder) -> web.Response:
    """One delta page: the initial round (no token) is a snapshot; a $deltatoken round gives the changes."""
    query, base = request.query, _origin(request) + request.rel_url.raw_path
    if "$skiptoken" in query or "$deltatoken" in query:
        kind = "s" if "$skiptoken" in query else "d"
        token = state.read_delta_token(mailbox, query["$skiptoken" if kind == "s" else "$deltatoken"], kind, folder)
        if token is None:
            raise GraphError(410, headers={"Location": base})
        if kind == "d":
            token.tombstones_after = token.after
    else:
        token = DeltaToken("i", folder.folder_id, 0, mailbox.seq, _select(request))
    size = _page_size(request, state)
    records, more = mailbox.page(folder, token.after, size, token.tombstones_after)
    select = frozenset(token.select) if token.select else None
    body: dict[str, Any] = {"@odata.context": f"{_origin(request)}/v1.0/$metadata#Collection(contact)",
                            "value": [record.render(select) for record in records]}
    if more:
        skip = DeltaToken("s", folder.folder_id, records[-1].seq, token.tombstones_after, token.select)
        body["@odata.nextLink"] = f"{base}?$skiptoken={state.delta_token(mailbox, skip)}"
    else:
        done = DeltaToken("d", folder.folder_id, mailbox.seq, mailbox.seq, token.select)
        body["@odata.deltaLink"] = f"{base}?$deltatoken={state.delta_token(mailbox, done)}"
    return json_response(body, headers={"Preference-Applied": f"odata.maxpagesize={size}"})


async def _contacts(request: web.Request, state: EmulatorState, mailbox: Mailbox, folder: Folder,
                    tail: list[str], any_folder: bool = False) -> web.Response:
    """contacts (list, create), contacts/delta, contacts/{id} (get, patch, delete) within `folder`.

    /me/contacts is the default folder, except that /me/contacts/{id} finds a contact in any folder
    (`any_folder`, as Graph does); /contactFolders/{fid}/contacts/{id} finds it only in that folder.
    """
    method = request.method
    if not tail and method == "GET":
        live = [r.render(frozenset(s) if (s := _select(request)) else None)
                for r in mailbox.records.values() if not r.deleted and r.folder_id == folder.folder_id]
        return _collection(request, live, "Collection(contact)")
    if not tail and method == "POST":
        record = state.create(mailbox, folder, _contact_fields(await _body(request)))
        return json_response(record.render(), 201)
    if tail == ["delta"] and method == "GET":
        return await _delta(request, state, mailbox, folder)
    if len(tail) != 1:
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{tail[-1]}'.")
    record = mailbox.get(tail[0])
    if record is None or (not any_folder and record.folder_id != folder.folder_id):
        raise GraphError(404)
    if method == "GET":
        return json_response(record.render(frozenset(s) if (s := _select(request)) else None))
    if method == "PATCH":
        _check_if_match(request, record)
        fields = _contact_fields(await _body(request))
        return json_response(state.update(mailbox, record.contact_id, fields).render())
    if method == "DELETE":
        _check_if_match(request, record)
        state.delete(mailbox, record.contact_id)
        return web.Response(status=204)
    raise GraphError(405)


async def graph(request: web.Request) -> web.Response:
    """One catch-all for /v1.0/: ids are matched on the raw path, segment by segment."""
    state = request.app[STATE]
    segments = [unquote(s) for s in request.rel_url.raw_path.split("/")[2:]]
    mailbox, rest = _mailbox(request, state, segments)
    if rest[:1] == ["contactFolders"] and (len(rest) <= 2 or rest[2:] == ["childFolders"]):
        return await _folders(request, state, mailbox, rest)
    if rest[:1] == ["contactFolders"] and rest[2:3] == ["contacts"]:
        return await _contacts(request, state, mailbox, _find_folder(mailbox, rest[1]), rest[3:])
    if rest[:1] == ["contacts"]:
        return await _contacts(request, state, mailbox, mailbox.default, rest[1:], any_folder=True)
    raise GraphError(400, "BadRequest", f"Resource not found for the segment '{rest[0] if rest else ''}'.")
