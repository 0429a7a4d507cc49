"""GoogleConnector: one Google account's contacts through the People API.

It runs google-api-python-client and google-auth unmodified. Both block (httplib2), so every call runs in
a bounded thread pool via `loop.run_in_executor` and the event loop never waits on the network. httplib2
is not thread-safe, so each request gets a fresh `httplib2.Http` (closed afterwards) wrapped in an
`AuthorizedHttp` over the account's shared Credentials. An expired access token is refreshed once, under a
lock, before a call fans out; a 401 mid-call is refreshed by AuthorizedHttp and the call re-sent.

The connector never sleeps and never retries (no `num_retries`): library errors become provider errors at
one boundary, `map_errors`, and the core decides. (google-auth itself retries a 5xx from the token
endpoint, inside the worker thread; that is the library's behaviour, left as is.)

Cursors (see `_Cursor`) are "gp1." + base64url JSON: {"k": "full", "p": pageToken} pages a full listing,
{"k": "inc", "s": syncToken, "p": pageToken} pages an incremental round, {"k": "sync", "s": syncToken}
starts the next round. Each also carries "g", the contact group names the round mapped keywords with.

Keywords are group names, and Google reports nothing for the members of a group renamed at Google (their
Person etags stay). So every round starts with contactGroups.list (one request); when a group the last
round knew has another name now, the round raises CursorExpired: the core relists and diffs, and exactly
the renamed group's members get new revisions, with the new keyword.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import google_auth_httplib2
import httplib2
import orjson
from google.auth.exceptions import RefreshError, TransportError
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import Resource, build
from googleapiclient.errors import HttpError
from googleapiclient.http import HttpRequest
from googleapiclient.model import JsonModel

from gateway.config import GoogleSettings
from gateway.models import ContactInput
from providers.base import (
    AuthFailed,
    ChangePage,
    Conflict,
    Connector,
    CursorExpired,
    NotFound,
    ProviderError,
    RemoteContact,
    Throttled,
    Unavailable,
    retry_after_seconds,
    shared_executor,
)
from providers.google.mapping import (
    GROUP_PREFIX,
    MY_CONTACTS,
    PERSON_FIELDS,
    contact_to_person,
    group_resources,
    person_content,
    update_person_fields,
)

T = TypeVar("T")

HTTP_TIMEOUT_S = 30.0
_CURSOR_PREFIX = "gp1."
#: What the libraries raise for a failed call; anything else is a bug and propagates as is.
_LIBRARY_ERRORS = (HttpError, RefreshError, TransportError, httplib2.HttpLib2Error, OSError)


def parse_credentials(raw: dict[str, Any]) -> dict[str, str]:
    """Validate what POST /v1/accounts takes for Google: {"refreshToken": str, "accessToken"?: str}."""
    if not isinstance(raw, dict):
        raise ValueError('Google credentials must be a JSON object: {"refreshToken": "..."}')
    unknown = sorted(set(raw) - {"refreshToken", "accessToken"})
    if unknown:
        raise ValueError(f"unknown Google credential fields: {', '.join(unknown)} "
                         '(expected "refreshToken" and optionally "accessToken")')
    refresh = raw.get("refreshToken")
    if not isinstance(refresh, str) or not refresh.strip():
        raise ValueError('Google credentials need "refreshToken": a non-empty string')
    parsed = {"refreshToken": refresh}
    access = raw.get("accessToken")
    if access is not None:
        if not isinstance(access, str) or not access.strip():
            raise ValueError('Google "accessToken", when given, must be a non-empty string')
        parsed["accessToken"] = access
    return parsed


# --- errors --------------------------------------------------------------------------------------------

def _retry_after(resp: Any) -> float | None:
    """The Retry-After of an httplib2 response (a dict of lowercased headers)."""
    return retry_after_seconds(resp.get("retry-after") if hasattr(resp, "get") else None)


def _error_body(content: bytes) -> dict[str, Any]:
    try:
        error = json.loads(content.decode("utf-8")).get("error")
    except (ValueError, AttributeError, UnicodeDecodeError):
        return {}
    return error if isinstance(error, dict) else {}


def _http_error(exc: HttpError) -> ProviderError:
    status = int(exc.resp.status)
    body = _error_body(exc.content)
    g_status, message = str(body.get("status", "")), str(body.get("message") or exc.reason)
    entries = [e for key in ("details", "errors") if isinstance(body.get(key), list) for e in body[key]]
    reasons = {str(e.get("reason", "")) for e in entries if isinstance(e, dict)}
    text, retry_after = f"google: {status} {g_status} {message}".strip(), _retry_after(exc.resp)
    if "EXPIRED_SYNC_TOKEN" in reasons or status == 410:
        return CursorExpired(text)
    if status == 429 or (status == 403 and (g_status == "RESOURCE_EXHAUSTED"
                                            or any("rate" in r.lower() or "quota" in r.lower() for r in reasons))):
        return Throttled(text, retry_after)
    if status >= 500:
        return Unavailable(text, retry_after)
    if status in (401, 403):
        return AuthFailed(text)
    if status == 404:
        return NotFound(text)
    if status in (409, 412) or (status == 400 and g_status == "FAILED_PRECONDITION" and "etag" in text.lower()):
        return Conflict(text)
    return ProviderError(text)


def map_errors(exc: BaseException) -> ProviderError:
    """The one place library errors become provider errors (see providers.base for their meaning)."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, HttpError):
        return _http_error(exc)
    if isinstance(exc, RefreshError):
        # invalid_grant (revoked/unknown refresh token) and invalid_client are final; 5xx at the token
        # endpoint is retryable per google-auth.
        if getattr(exc, "retryable", False):
            return Unavailable(f"google token endpoint: {exc}")
        return AuthFailed(f"google refresh failed: {exc}")
    if isinstance(exc, (TransportError, httplib2.HttpLib2Error, OSError)):
        return Unavailable(f"google unreachable: {exc}")
    return ProviderError(f"google: {type(exc).__name__}: {exc}")


# --- cursors -------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Cursor:
    """Where list_changes resumes: kind is "full" (page of a full listing), "inc" (page of an incremental
    round: page + sync), or "sync" (a finished round's sync token). `groups` are the contact group names
    (resource name -> name) the round's keywords were mapped with (None in cursors from before they were kept).
    """

    kind: str
    page: str | None = None
    sync: str | None = None
    groups: dict[str, str] | None = None

    def encode(self) -> str:
        data = {"k": self.kind, "p": self.page, "s": self.sync, "g": self.groups}
        raw = json.dumps({k: v for k, v in data.items() if v is not None}, separators=(",", ":"))
        return _CURSOR_PREFIX + base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> _Cursor:
        """Parse a cursor; one that is not ours is as good as expired (the caller relists)."""
        try:
            if not cursor.startswith(_CURSOR_PREFIX):
                raise ValueError("prefix")
            text = cursor.removeprefix(_CURSOR_PREFIX)
            data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            parsed = cls(data["k"], data.get("p"), data.get("s"), data.get("g"))
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
            raise CursorExpired("unreadable Google cursor") from None
        needs = {"full": (True, False), "inc": (True, True), "sync": (False, True)}.get(parsed.kind)
        if needs is None or needs != (isinstance(parsed.page, str), isinstance(parsed.sync, str)):
            raise CursorExpired("unreadable Google cursor")
        if parsed.groups is not None and not isinstance(parsed.groups, dict):
            raise CursorExpired("unreadable Google cursor")
        return parsed


def _renamed(before: dict[str, str], now: dict[str, str]) -> list[str]:
    """The contact groups listed with another name now than before (new and deleted groups are not renames)."""
    return [resource for resource, name in before.items() if resource in now and now[resource] != name]


def _remote(person: dict[str, Any], group_names: dict[str, str]) -> RemoteContact:
    """A Person (or its deletion tombstone) as a RemoteContact: version = person etag."""
    metadata = person.get("metadata") or {}
    sources = [s for s in metadata.get("sources") or [] if isinstance(s, dict)]
    times = [s["updateTime"] for s in sources if s.get("updateTime") and s.get("type", "CONTACT") == "CONTACT"]
    deleted = bool(metadata.get("deleted"))
    return RemoteContact(native_id=person["resourceName"], version=person.get("etag"),
                         mapped=None if deleted else functools.partial(person_content, person, group_names),
                         deleted=deleted,
                         modified_time=max(times) if times else None)


class _OrjsonModel(JsonModel):
    """googleapiclient's JSON model, parsing responses with orjson (build()'s `model` extension point).

    A connections page of 1,000 people parses in two thirds of the time, and it parses in a worker thread
    that holds the GIL while the event loop maps the previous page. Anything orjson cannot read goes to
    the library's own parser, so what a caller sees is unchanged.
    """

    def deserialize(self, content: Any) -> Any:
        try:
            body = orjson.loads(content)
        except orjson.JSONDecodeError:
            return super().deserialize(content)
        return body["data"] if self._data_wrapper and isinstance(body, dict) and "data" in body else body


class GoogleConnector(Connector):
    """A connected Google address book (one account's refresh token)."""

    def __init__(self, credentials: dict[str, Any], settings: GoogleSettings,
                 executor: ThreadPoolExecutor | None = None) -> None:
        parsed = parse_credentials(credentials)
        # Built by hand: from_authorized_user_info() would overwrite token_uri with Google's.
        self._creds = Credentials(token=parsed.get("accessToken"), refresh_token=parsed["refreshToken"],
                                  client_id=settings.client_id, client_secret=settings.client_secret,
                                  token_uri=settings.token_url, scopes=list(settings.scopes))
        self._settings = settings
        self._executor = executor or shared_executor("google-people", settings.max_threads)
        self._collections: tuple[Resource, Resource, Resource] | None = None
        self._group_names: dict[str, str] = {}  # contact group resource name -> name, as last listed
        self._group_ids: dict[str, str] = {}  # contact group name -> resource name
        self._unlisted: set[str] = set()  # groups people name that the listing lacks: not listed again for them
        self._service_lock = asyncio.Lock()
        self._refresh_lock = asyncio.Lock()

    # --- plumbing ---------------------------------------------------------------------------------------
    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking library call in the pool; library errors leave as provider errors."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, functools.partial(fn, *args))
        except _LIBRARY_ERRORS as exc:
            raise map_errors(exc) from exc

    def _build(self) -> tuple[Resource, Resource, Resource]:
        service = build("people", "v1", credentials=self._creds, static_discovery=True, cache_discovery=False,
                        client_options={"api_endpoint": self._settings.api_base}, model=_OrjsonModel())
        people = service.people()  # type: ignore[attr-defined]
        return people, people.connections(), service.contactGroups()  # type: ignore[attr-defined]

    async def _resources(self) -> tuple[Any, Any, Any]:
        """The people(), people().connections() and contactGroups() collections, built once: building one
        reads the bundled discovery file and renders every method's docstring (~10 ms each time)."""
        if self._collections is None:
            async with self._service_lock:
                if self._collections is None:
                    self._collections = await self._run(self._build)
        return self._collections

    async def _people(self) -> Any:
        return (await self._resources())[0]

    def _refresh(self) -> None:
        http = httplib2.Http(timeout=HTTP_TIMEOUT_S)
        try:
            self._creds.refresh(google_auth_httplib2.Request(http))
        finally:
            http.close()

    def _send(self, request: HttpRequest) -> Any:
        http = httplib2.Http(timeout=HTTP_TIMEOUT_S)
        try:
            return request.execute(http=google_auth_httplib2.AuthorizedHttp(self._creds, http=http))
        finally:
            http.close()

    async def _execute(self, request: HttpRequest) -> Any:
        if not self._creds.valid:
            async with self._refresh_lock:  # one refresh, not one per concurrent call
                if not self._creds.valid:
                    await self._run(self._refresh)
        return await self._run(self._send, request)

    # --- contact groups (keywords) ------------------------------------------------------------------------
    async def _load_groups(self) -> None:
        """Every contact group of the account (contactGroups.list, all pages): names <-> resource names."""
        groups = (await self._resources())[2]
        names: dict[str, str] = {}
        page_token: str | None = None
        while True:
            params: dict[str, Any] = {"pageSize": 1000, "groupFields": "name,groupType"}
            if page_token:
                params["pageToken"] = page_token
            response = await self._execute(groups.list(**params))
            for group in response.get("contactGroups") or []:
                if isinstance(group, dict) and group.get("resourceName") and group.get("name"):
                    names[group["resourceName"]] = str(group["name"])
            page_token = response.get("nextPageToken")
            if not page_token:
                break
        self._group_names.clear()
        self._group_names.update(names)
        self._group_ids.clear()
        self._group_ids.update((name, resource) for resource, name in names.items())

    async def _names_for(self, people: list[dict[str, Any]]) -> dict[str, str]:
        """The group-name map, listed again when these people name a group it does not know."""
        named = {r for p in people if isinstance(p, dict) for r in group_resources(p.get("memberships"))}
        unknown = named - self._group_names.keys() - self._unlisted - {GROUP_PREFIX + MY_CONTACTS}
        if unknown:
            await self._load_groups()
            self._unlisted |= unknown - self._group_names.keys()  # such a membership reads as the group's id
        return self._group_names

    async def _groups_for(self, contact: ContactInput) -> dict[str, str]:
        """Name -> resource name for every keyword of `contact`, creating the user groups that are missing."""
        wanted = [k for k in dict.fromkeys(contact.keywords or []) if k != MY_CONTACTS]
        if any(k not in self._group_ids for k in wanted):
            await self._load_groups()
        groups = (await self._resources())[2]
        for keyword in wanted:
            if keyword in self._group_ids:
                continue
            try:
                created = await self._execute(groups.create(body={"contactGroup": {"name": keyword}}))
            except Conflict:  # made meanwhile, or differing only in case (409 ALREADY_EXISTS)
                await self._load_groups()
                same = next((r for r, n in self._group_names.items() if n.casefold() == keyword.casefold()), None)
                if same is not None and keyword not in self._group_ids:
                    self._group_ids[keyword] = same
                continue
            self._group_names[created["resourceName"]] = keyword
            self._group_ids[keyword] = created["resourceName"]
        return self._group_ids

    async def _remote_of(self, person: dict[str, Any]) -> RemoteContact:
        return _remote(person, await self._names_for([person]))

    # --- Connector ------------------------------------------------------------------------------------
    async def list_changes(self, cursor: str | None) -> ChangePage:
        """A page of a full listing (cursor None) or of the changes since a sync token."""
        at = _Cursor.decode(cursor) if cursor is not None else _Cursor("full")
        groups = at.groups
        if at.page is None:  # a round starts: its keywords are mapped with the group names as listed now
            await self._load_groups()
            groups = dict(self._group_names)
            if at.groups is not None and (renamed := _renamed(at.groups, groups)):
                # Google reports no change for the members of a renamed group, but their keyword changed
                raise CursorExpired(f"contact groups renamed since the last round: {', '.join(renamed)}")
        params: dict[str, Any] = {"resourceName": "people/me", "personFields": PERSON_FIELDS,
                                  "pageSize": self._settings.page_size, "requestSyncToken": True}
        if at.sync is not None:
            params["syncToken"] = at.sync
        if at.page is not None:
            params["pageToken"] = at.page
        response = await self._execute((await self._resources())[1].list(**params))
        people = response.get("connections") or []
        names = await self._names_for(people)
        changes = [_remote(person, names) for person in people]
        if response.get("nextPageToken"):
            kind = "full" if at.kind == "full" else "inc"
            return ChangePage(changes, _Cursor(kind, response["nextPageToken"], at.sync, groups).encode(), more=True)
        sync = response.get("nextSyncToken")
        # Without a sync token (not expected with requestSyncToken) the next round is a full listing.
        return ChangePage(changes, _Cursor("sync", sync=sync, groups=groups).encode() if sync else None, more=False)

    async def get(self, native_id: str) -> RemoteContact:
        people = await self._people()
        return await self._remote_of(await self._execute(people.get(resourceName=_resource(native_id),
                                                                    personFields=PERSON_FIELDS)))

    async def create(self, contact: ContactInput) -> RemoteContact:
        body = contact_to_person(contact, await self._groups_for(contact))
        people = await self._people()
        return await self._remote_of(await self._execute(people.createContact(body=body,
                                                                              personFields=PERSON_FIELDS)))

    async def update(self, native_id: str, contact: ContactInput, if_match: str | None) -> RemoteContact:
        """Replace every mapped field; the etag is if_match, or the current one when None."""
        resource = _resource(native_id)
        etag = if_match if if_match is not None else (await self.get(resource)).version
        body = contact_to_person(contact, await self._groups_for(contact))
        body["etag"] = etag  # Google checks the top-level etag; the source etag is sent too, as documented
        body["metadata"] = {"sources": [{"type": "CONTACT", "etag": etag}]}
        people = await self._people()
        request = people.updateContact(resourceName=resource, body=body, personFields=PERSON_FIELDS,
                                       updatePersonFields=update_person_fields(contact))
        try:
            updated = await self._execute(request)
        except Conflict as exc:
            raise Conflict(str(exc), current_version=await self._current_version(resource)) from exc
        return await self._remote_of(updated)

    async def delete(self, native_id: str, if_match: str | None) -> None:
        """deleteContact; Google does not check etags on delete, so a given if_match is checked first."""
        resource = _resource(native_id)
        if if_match is not None:
            current = (await self.get(resource)).version
            if current != if_match:
                raise Conflict(f"google: {resource} changed (etag {current})", current_version=current)
        people = await self._people()
        await self._execute(people.deleteContact(resourceName=resource))

    async def _current_version(self, resource: str) -> str | None:
        """The current etag for a Conflict's current_version; None when it cannot be read now."""
        try:
            return (await self.get(resource)).version
        except ProviderError:
            return None

    async def aclose(self) -> None:
        """Nothing to release: the pool is shared and every Http is closed after its request."""
        return None


def _resource(native_id: str) -> str:
    """The People resource name of a native id; anything else names no contact."""
    if not native_id.startswith("people/") or native_id == "people/" or "/" in native_id[7:]:
        raise NotFound(f"not a Google contact id: {native_id!r}")
    return native_id
