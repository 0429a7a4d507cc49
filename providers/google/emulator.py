"""A local Google People API (the subset of ../shared/providers/google-people.md) for tests, bench and demo.

It speaks the wire protocol google-api-python-client and google-auth use, so the connector runs the real
libraries against it unmodified: `POST /token` (refresh_token and authorization_code grants),
`GET /o/oauth2/auth` (consents at once), `POST /revoke`, and under `/v1/` connections.list (pages, sync
tokens that expire, tombstones), people.get, createContact, updateContact (etag checked) and
deleteContact, with Google's error shape. The control API (`/_control`, see EMULATORS.md) lives in
`emulator_control.py`; the state in `emulator_state.py`.

Start it alone with `python -m providers.google.emulator --port 8091` or `run(host, port)`.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import BasicAuth, web
from yarl import URL

from providers.control_kit import fault_middleware
from providers.google.emulator_control import add_control_routes
from providers.google.emulator_state import (
    CONTACTS_SCOPE,
    READABLE_FIELDS,
    SINGLETON_FIELDS,
    STATE,
    UPDATABLE_FIELDS,
    Book,
    EmulatorState,
)
from providers.google.mapping import group_resources

__all__ = ["STATE", "EmulatorState", "create_app", "main", "run"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                 409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 501: "NOT_IMPLEMENTED",
                 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
_MESSAGES = {401: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
                  "or other valid authentication credential.",
             404: "Requested entity was not found.",
             429: "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute per "
                  "user' of service 'people.googleapis.com'.",
             503: "The service is currently unavailable."}
_MASK_DOC = "Valid paths are documented at https://developers.google.com/people/api/rest/v1/people/get."
_SORT_ORDERS = {"LAST_MODIFIED_ASCENDING", "LAST_MODIFIED_DESCENDING", "FIRST_NAME_ASCENDING",
                "LAST_NAME_ASCENDING"}


class GoogleError(Exception):
    """An API error, rendered in Google's shape {"error": {code, message, status, details?}}."""

    def __init__(self, code: int, message: str | None = None, status: str | None = None,
                 details: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code, self.headers = code, headers or {}
        self.body: dict[str, Any] = {"code": code, "message": message or _MESSAGES.get(code, "Error."),
                                     "status": status or _STATUS_NAMES.get(code, "UNKNOWN")}
        if details:
            self.body["details"] = details

    def response(self) -> web.Response:
        return _json({"error": self.body}, self.code, self.headers)


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, headers=headers,
                        content_type="application/json")


def _expired_sync_token() -> GoogleError:
    return GoogleError(400, "Sync token is expired. Clear local cache and retry call without the sync token.",
                       "FAILED_PRECONDITION", [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                                "reason": "EXPIRED_SYNC_TOKEN",
                                                "domain": "people.googleapis.com"}])


# --- middlewares ---------------------------------------------------------------------------------------

def _fault_response(request: web.Request, status: int, headers: dict[str, str]) -> web.Response:
    return GoogleError(status, headers=headers).response()


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except GoogleError as exc:
        return exc.response()


# --- OAuth ---------------------------------------------------------------------------------------------

def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return _json({"error": error, "error_description": description}, status)


async def _token(request: web.Request) -> web.Response:
    """The token endpoint: refresh_token and authorization_code grants, client checked (form or Basic)."""
    state = request.app[STATE]
    form = await request.post()
    client_id, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
    if request.headers.get("Authorization", "").startswith("Basic "):
        basic = BasicAuth.decode(request.headers["Authorization"])
        client_id, secret = basic.login, basic.password
    if (client_id, secret) != (state.client_id, state.client_secret):
        return _oauth_error(401, "invalid_client", "The OAuth client was not found.")
    grant = form.get("grant_type")
    body: dict[str, Any] = {}
    if grant == "refresh_token":
        user = state.user_of_refresh_token(str(form.get("refresh_token", "")))
        if user is None:
            return _oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
    elif grant == "authorization_code":
        redirect = form.get("redirect_uri")
        user = state.codes.redeem(str(form.get("code", "")), None if redirect is None else str(redirect))
        if user is None:
            return _oauth_error(400, "invalid_grant", "Malformed auth code.")
        body["refresh_token"] = state.add_user(user)
    else:
        return _oauth_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant}")
    body.update(access_token=state.issue_access_token(user), expires_in=int(state.access_token_lifetime_s),
                scope=str(form.get("scope") or CONTACTS_SCOPE), token_type="Bearer")
    return _json(body)


async def _authorize(request: web.Request) -> web.StreamResponse:
    """Consent at once: redirect back with a code for the login_hint user (else the first user)."""
    state, query = request.app[STATE], request.query
    if query.get("client_id") != state.client_id:
        raise web.HTTPBadRequest(text="Error 401: invalid_client. The OAuth client was not found.")
    if not query.get("redirect_uri") or query.get("response_type", "code") != "code":
        raise web.HTTPBadRequest(text="Error 400: invalid_request. redirect_uri and response_type=code needed.")
    hint = query.get("login_hint")
    user = hint if hint else next(iter(state.books), None)
    if user not in state.books:
        raise web.HTTPBadRequest(text=f"Error 400: no such emulator user: {user!r}")
    params = {"code": state.codes.issue(user, query["redirect_uri"]),
              "scope": query.get("scope", CONTACTS_SCOPE)}
    if "state" in query:
        params["state"] = query["state"]
    raise web.HTTPFound(URL(query["redirect_uri"]).update_query(params))


async def _revoke(request: web.Request) -> web.Response:
    token = request.query.get("token") or str((await request.post()).get("token", ""))
    if not request.app[STATE].revoke(token):
        return _oauth_error(400, "invalid_token", "Token expired or revoked")
    return _json({})


# --- People API ----------------------------------------------------------------------------------------

def _mask(value: str | None, allowed: frozenset[str], param: str) -> frozenset[str]:
    if not value:
        raise GoogleError(400, f"{param} mask is required. Please specify one or more valid paths. {_MASK_DOC}")
    paths = frozenset(p.strip().removeprefix("person.") for p in value.split(",") if p.strip())
    unknown = sorted(paths - allowed)
    if unknown:
        raise GoogleError(400, f'Invalid {param} mask path: "{unknown[0]}". {_MASK_DOC}')
    return paths


def _optional_mask(value: str | None) -> frozenset[str] | None:
    return _mask(value, READABLE_FIELDS, "personFields") if value else None


def _page_size(value: str | None) -> int:
    try:
        size = int(value) if value else 0
    except ValueError:
        raise GoogleError(400, f'Invalid value at \'page_size\' (TYPE_INT32), "{value}"') from None
    if size < 0 or size > 1000:
        raise GoogleError(400, "Page size must be less than or equal to 1000.")
    return size or 100


async def _person_body(request: web.Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise GoogleError(400, "Invalid JSON payload received.") from None
    if not isinstance(body, dict):
        raise GoogleError(400, "Invalid JSON payload received. Expected a Person object.")
    for field in SINGLETON_FIELDS:
        if isinstance(body.get(field), list) and len(body[field]) > 1:
            raise GoogleError(400, f"Only one {field[:-1]} is supported on a contact source.")
    return body


def _user(request: web.Request) -> str:
    """The user the bearer token names; 401 UNAUTHENTICATED for a missing, unknown or expired token."""
    auth = request.headers.get("Authorization", "")
    user = request.app[STATE].user_of_access_token(auth[7:]) if auth.startswith("Bearer ") else None
    if user is None:
        raise GoogleError(401, headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'})
    return user


async def _list(request: web.Request, state: EmulatorState, user: str) -> web.Response:
    """connections.list: full listing or changes since a sync token, in change order, paged."""
    query, book = request.query, state.books[user]
    wanted = _mask(query.get("personFields"), READABLE_FIELDS, "personFields")
    size = _page_size(query.get("pageSize"))
    if query.get("sortOrder", "LAST_MODIFIED_ASCENDING") not in _SORT_ORDERS:
        raise GoogleError(400, f"Invalid value at 'sort_order': {query.get('sortOrder')}")
    sync = query.get("syncToken")
    base = state.sync_seq(user, sync) if sync else book.seq
    if base is None:
        raise _expired_sync_token()
    kind, after = ("i", base) if sync else ("f", 0)
    if query.get("pageToken"):
        token = state.read_page_token(query["pageToken"], kind)
        if token is None or (sync and token[1] != base):
            raise GoogleError(400, "Request contains an invalid argument: pageToken does not match the request.")
        after, base = token
    records, more = book.page(after, size, tombstones_after=base)
    body: dict[str, Any] = {}
    if records:
        body["connections"] = [record.render(wanted) for record in records]
    if more:
        body["nextPageToken"] = state.page_token(kind, records[-1].seq, base)
    elif sync or query.get("requestSyncToken", "").lower() in ("true", "1"):
        body["nextSyncToken"] = state.sync_token(user)
    if not sync:
        body["totalItems"] = body["totalPeople"] = book.live
    return _json(body)


async def _get(request: web.Request, state: EmulatorState, user: str, person_id: str) -> web.Response:
    wanted = _mask(request.query.get("personFields"), READABLE_FIELDS, "personFields")
    if person_id == "me":
        return _json({"resourceName": "people/me", "etag": "%me", "names": [{"displayName": user}]})
    record = state.books[user].get(person_id)
    if record is None:
        raise GoogleError(404)
    return _json(record.render(wanted))


def _check_groups(book: Book, body: dict[str, Any]) -> None:
    """Every contact group a Person's memberships name must exist (a 400 otherwise)."""
    for resource in group_resources(body.get("memberships")):
        if resource not in book.groups:
            raise GoogleError(400, f"Contact group not found: {resource}", "FAILED_PRECONDITION")


async def _create(request: web.Request, state: EmulatorState, user: str) -> web.Response:
    wanted = _optional_mask(request.query.get("personFields"))
    body = await _person_body(request)
    _check_groups(state.books[user], body)
    return _json(state.create(user, body).render(wanted))


async def _groups(request: web.Request, state: EmulatorState, user: str) -> web.Response:
    """contactGroups.list (system and user groups, paged) and contactGroups.create (unique names, else 409)."""
    book = state.books[user]
    if request.method == "POST":
        try:
            body = orjson.loads(await request.read())
            name = body["contactGroup"]["name"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise GoogleError(400, "Invalid JSON payload received. Expected contactGroup.name.") from None
        if not isinstance(name, str) or not name.strip():
            raise GoogleError(400, "Contact group name must not be empty.")
        if book.group_named(name) is not None:
            raise GoogleError(409, "Contact group name already exists.", "ALREADY_EXISTS")
        return _json(book.render_group(book.add_group(name)))
    size = _page_size(request.query.get("pageSize") or "30")
    token = request.query.get("pageToken")
    start = int(token) if token and token.isdigit() else 0
    resources = list(book.groups)
    body: dict[str, Any] = {"contactGroups": [book.render_group(r) for r in resources[start:start + size]],
                            "totalItems": len(resources)}
    if start + size < len(resources):
        body["nextPageToken"] = str(start + size)
    else:
        body["nextSyncToken"] = state.sync_token(user)
    return _json(body)


async def _rename_group(request: web.Request, state: EmulatorState, user: str, resource: str) -> web.Response:
    """contactGroups.update: renames a user group (system groups cannot be renamed; names stay unique).

    As at Google, the members' Person etags do not change and sync tokens report nothing: only the
    group's own etag does.
    """
    book = state.books[user]
    if resource not in book.groups:
        raise GoogleError(404, f"Contact group not found: {resource}")
    try:
        group = orjson.loads(await request.read())["contactGroup"]
        name, etag = group["name"], group.get("etag")
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        raise GoogleError(400, "Invalid JSON payload received. Expected contactGroup.name.") from None
    if not isinstance(name, str) or not name.strip():
        raise GoogleError(400, "Contact group name must not be empty.")
    if book.is_system_group(resource):
        raise GoogleError(400, "Cannot update a system contact group.", "FAILED_PRECONDITION")
    if etag is not None and etag != book.render_group(resource)["etag"]:
        raise GoogleError(400, "Request contactGroup.etag is different than the current etag.", "FAILED_PRECONDITION")
    if book.group_named(name) not in (None, resource):
        raise GoogleError(409, "Contact group name already exists.", "ALREADY_EXISTS")
    book.groups[resource] = name
    return _json(book.render_group(resource))


async def _update(request: web.Request, state: EmulatorState, user: str, person_id: str) -> web.Response:
    """updateContact: only the masked fields change, and only when the request carries the current etag."""
    mask = _mask(request.query.get("updatePersonFields"), UPDATABLE_FIELDS, "updatePersonFields")
    wanted = _optional_mask(request.query.get("personFields"))
    record = state.books[user].get(person_id)
    if record is None:
        raise GoogleError(404)
    body = await _person_body(request)
    metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    sources = [s for s in metadata.get("sources") or [] if isinstance(s, dict) and s.get("etag")]
    source_etag = next((s["etag"] for s in sources if s.get("type", "CONTACT") == "CONTACT"), None)
    if body.get("etag") is None and source_etag is None:
        raise GoogleError(400, "Request must set person.etag or person.metadata.sources.etag for the source "
                               "that is being updated.")
    if body.get("etag") is not None:
        current = body["etag"] == record.etag
    else:
        current = source_etag in (record.source_etag, record.etag)
    if not current:
        raise GoogleError(400, "Request person.etag is different than the current person.etag. Clear local "
                               "cache and get the latest person.", "FAILED_PRECONDITION")
    if "memberships" in mask:
        _check_groups(state.books[user], body)
    return _json(state.update(user, person_id, body, set(mask)).render(wanted))


async def _delete(request: web.Request, state: EmulatorState, user: str, person_id: str) -> web.Response:
    if state.books[user].get(person_id) is None:
        raise GoogleError(404)
    state.delete(user, person_id)
    return _json({})


async def _people(request: web.Request) -> web.Response:
    """One catch-all for /v1/: `{id}:verb` does not fit aiohttp's {var} matching, so split here."""
    state, user = request.app[STATE], _user(request)
    path, _, verb = request.match_info["tail"].partition(":")
    method = request.method
    if path == "people/me/connections" and not verb and method == "GET":
        return await _list(request, state, user)
    if path == "people" and verb == "createContact" and method == "POST":
        return await _create(request, state, user)
    if path == "contactGroups" and not verb and method in ("GET", "POST"):
        return await _groups(request, state, user)
    if path.startswith("contactGroups/") and not verb and method == "PUT":
        return await _rename_group(request, state, user, path)
    person_id = path.removeprefix("people/")
    if path.startswith("people/") and person_id and "/" not in person_id:
        if not verb and method == "GET":
            return await _get(request, state, user, person_id)
        if verb == "updateContact" and method == "PATCH":
            return await _update(request, state, user, person_id)
        if verb == "deleteContact" and method == "DELETE":
            return await _delete(request, state, user, person_id)
    raise GoogleError(404, f"Method not found: {method} /v1/{request.match_info['tail']}")


def create_app(state: EmulatorState | None = None) -> web.Application:
    """The emulator application; `state` (default: a fresh EmulatorState) holds users, tokens and faults."""
    app = web.Application(middlewares=[fault_middleware(STATE, _fault_response), _errors])
    app[STATE] = state if state is not None else EmulatorState()
    app.router.add_post("/token", _token)
    app.router.add_get("/o/oauth2/auth", _authorize)
    app.router.add_get("/o/oauth2/v2/auth", _authorize)
    app.router.add_post("/revoke", _revoke)
    app.router.add_route("*", "/v1/{tail:.*}", _people)
    add_control_routes(app)
    return app


def run(host: str = "127.0.0.1", port: int = 8091, state: EmulatorState | None = None) -> None:
    """Serve the emulator until interrupted (blocking)."""
    web.run_app(create_app(state), host=host, port=port)


def main(port: int = 8091) -> None:
    run(port=port)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Google People API emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    args = parser.parse_args()
    run(args.host, args.port)
