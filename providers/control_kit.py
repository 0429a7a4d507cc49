"""What the three emulators' control APIs (/_control, EMULATORS.md) share: JSON in and out, errors, faults;
and the one-time authorization codes of the OAuth emulators (Google, Microsoft).

Each provider's emulator_control.py keeps only what is its own (users, native ids, folders, seeding).
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError

from gateway.models import ContactInput


@dataclass(slots=True)
class Fault:
    """An injected failure: the next `times` requests whose path matches fail (or wait) so."""

    pattern: re.Pattern[str]
    status: int | None
    times: int
    delay_ms: int = 0
    retry_after: float | None = None


def take_fault(faults: list[Fault], path: str) -> Fault | None:
    """The first fault matching `path`, consuming one of its `times`."""
    for fault in faults:
        if fault.pattern.search(path):
            fault.times -= 1
            if fault.times <= 0:
                faults.remove(fault)
            return fault
    return None


def retry_after_header(seconds: float | None) -> dict[str, str]:
    """The Retry-After header of an injected fault's response ("2", "0.5"), or none."""
    if seconds is None:
        return {}
    return {"Retry-After": str(int(seconds)) if float(seconds).is_integer() else str(seconds)}


FaultResponder = Callable[[web.Request, int, dict[str, str]], web.StreamResponse]


def fault_middleware(state_key: web.AppKey[Any], respond: FaultResponder) -> Any:
    """Injected faults (app[state_key].faults) on every path but the control API: delay first, then fail with
    `respond(request, status, headers)`, the provider's own error shape."""

    @web.middleware
    async def faults(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                     ) -> web.StreamResponse:
        if not request.path.startswith("/_control"):
            fault = take_fault(request.app[state_key].faults, request.path)
            if fault is not None:
                if fault.delay_ms:
                    await asyncio.sleep(fault.delay_ms / 1000)
                if fault.status:
                    return respond(request, fault.status, retry_after_header(fault.retry_after))
        return await handler(request)

    return faults


SERVER_FIELDS = frozenset({"id", "etag", "createdTime", "lastModifiedTime"})


def http_error(status: int, message: str) -> web.HTTPException:
    """A JSON control-API error, to raise."""
    error_class = {400: web.HTTPBadRequest, 404: web.HTTPNotFound}[status]
    return error_class(text=orjson.dumps({"error": message}).decode(), content_type="application/json")


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


async def read_body(request: web.Request) -> dict[str, Any]:
    """The JSON object of a request; an empty body is an empty object."""
    raw = await request.read()
    try:
        body = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        raise http_error(400, "the body must be JSON") from None
    if not isinstance(body, dict):
        raise http_error(400, "the body must be a JSON object")
    return body


def parse_contact(data: dict[str, Any]) -> ContactInput:
    """Unified Contact JSON (server-owned fields ignored) as a validated ContactInput."""
    try:
        return ContactInput.model_validate({k: v for k, v in data.items() if k not in SERVER_FIELDS})
    except ValidationError as exc:
        raise http_error(400, f"invalid contact: {exc.errors(include_url=False)}") from None


def fault_fields(body: dict[str, Any], default_path: str | None = None) -> tuple[re.Pattern[str], int | None, int,
                                                                                   int, float | None]:
    """(path pattern, status, times, delayMs, retryAfter) of a fault spec; ValueError (etc.) when invalid."""
    path = body.get("path") or default_path
    if path is None:
        raise ValueError("path is required")
    pattern = re.compile(path)
    status, times = body.get("status"), body.get("times", 1)
    delay_ms, retry_after = body.get("delayMs") or 0, body.get("retryAfter")
    if status is not None and not (isinstance(status, int) and 100 <= status <= 599):
        raise ValueError("status must be an HTTP status code or null")
    if not isinstance(times, int) or times < 1 or not isinstance(delay_ms, int | float) or delay_ms < 0:
        raise ValueError("times must be >= 1 and delayMs >= 0")
    if retry_after is not None and not isinstance(retry_after, int | float):
        raise ValueError("retryAfter must be a number of seconds or null")
    return pattern, status or None, times, int(delay_ms), retry_after


def parse_fault(body: dict[str, Any]) -> Fault:
    """A fault spec as a Fault; 400 when it is invalid."""
    try:
        return Fault(*fault_fields(body))
    except (TypeError, ValueError, re.error) as exc:
        raise http_error(400, f"invalid fault: {exc}") from None


def add_fault_routes(app: web.Application, state_key: web.AppKey[Any],
                     parse: Callable[[dict[str, Any]], Fault] = parse_fault) -> None:
    """POST /_control/faults (add one) and DELETE /_control/faults (clear all) on an emulator whose state,
    app[state_key], keeps its faults in `.faults`."""

    async def add(request: web.Request) -> web.Response:
        request.app[state_key].faults.append(parse(await read_body(request)))
        return web.Response(status=204)

    async def clear(request: web.Request) -> web.Response:
        request.app[state_key].faults.clear()
        return web.Response(status=204)

    app.router.add_post("/_control/faults", add)
    app.router.add_delete("/_control/faults", clear)


_USER = re.compile(r"^[A-Za-z0-9._@+-]{1,128}$")


async def new_user_name(request: web.Request) -> str:
    """The "user" of a POST /_control/users body: a name of letters, digits and ._@+- (400 otherwise)."""
    user = (await read_body(request)).get("user")
    if not isinstance(user, str) or not _USER.match(user):
        raise http_error(400, '"user" must be a name of letters, digits and ._@+-')
    return user


MAX_SEED = 100_000


def seed_params(body: dict[str, Any]) -> tuple[int, int | str]:
    """"count" (0..MAX_SEED) and "seed" (an integer or a string, default 0) of a seed call; 400 otherwise."""
    count, seed = body.get("count"), body.get("seed", 0)
    if not isinstance(count, int) or not 0 <= count <= MAX_SEED or not isinstance(seed, int | str):
        raise http_error(400, f'"count" must be an integer 0..{MAX_SEED}, "seed" an integer or a string')
    return count, seed


class AuthCodes:
    """One-time authorization codes of an emulator's authorize endpoint, each bound to its redirect URI."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._codes: dict[str, tuple[str, str | None]] = {}

    def issue(self, user: str, redirect_uri: str | None) -> str:
        code = self.prefix + secrets.token_urlsafe(16)
        self._codes[code] = (user, redirect_uri)
        return code

    def redeem(self, code: str, redirect_uri: str | None) -> str | None:
        """The user of a code; None when unknown, used already, or the redirect URI differs."""
        user, expected = self._codes.pop(code, (None, None))
        if user is None or (expected is not None and redirect_uri != expected):
            return None
        return user
