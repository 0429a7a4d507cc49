"""What every face shares: the core's AppKey, JSON rendering, auth and parameter parsing."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson
from aiohttp import web

from gateway.core import Core
from gateway.errors import ApiError, reauth_required
from gateway.identity import Account, App

CORE = web.AppKey("core", Core)
JSON = "application/json"


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type=JSON, headers=headers)


def raw_json(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=body, status=status, content_type=JSON, headers=headers)


def records_page(bodies: list[bytes], **tail: str | None) -> bytes:
    """{"records": [...], <tail>} with stored JSON spliced in as is (no re-encoding)."""
    out = b'{"records":[' + b",".join(bodies) + b"]"
    for key, value in tail.items():
        if value is not None:
            out += b',"' + key.encode() + b'":' + orjson.dumps(value)
    return out + b"}"


async def read_json(request: web.Request) -> Any:
    raw = await request.read()  # over client_max_size: aiohttp raises 413, rendered by the middleware
    if not raw:
        raise ApiError(400, "invalid_json", "The request needs a JSON body.")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"The body is not valid JSON: {exc}.") from None


async def bearer_account(request: web.Request) -> Account:
    """The account whose access token the request carries."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "Send the account's access token: 'Authorization: Bearer <token>'.",
                       headers={"WWW-Authenticate": 'Bearer realm="contacts-gateway"'})
    account = await request.app[CORE].identity.account_for_token(token.strip())
    if account is None:
        raise ApiError(401, "unauthorized", "The access token is unknown or was revoked.",
                       headers={"WWW-Authenticate": 'Bearer realm="contacts-gateway", error="invalid_token"'})
    return account


async def basic_app(request: web.Request) -> App:
    """The app whose clientId:clientSecret the request carries (HTTP Basic)."""
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    challenge = {"WWW-Authenticate": 'Basic realm="contacts-gateway"'}
    if scheme.lower() != "basic":
        raise ApiError(401, "unauthorized", "Send the app's credentials: HTTP Basic clientId:clientSecret.",
                       headers=challenge)
    try:
        client_id, _, secret = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, ValueError):  # ValueError: non-ASCII base64 input; UnicodeDecodeError is one too
        raise ApiError(401, "unauthorized", "Malformed Basic credentials.", headers=challenge) from None
    app = await request.app[CORE].identity.check_app(client_id, secret)
    if app is None:
        raise ApiError(401, "unauthorized", "Unknown clientId or wrong clientSecret.", headers=challenge)
    return app


async def active_account(request: web.Request) -> Account:
    """The Bearer account, refused while its provider credentials need re-authorization."""
    account = await bearer_account(request)
    if account.status == "reauth_required":
        raise reauth_required()
    return account


def page_size(request: web.Request, default: int = 100, maximum: int = 1000, name: str = "pageSize") -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= maximum:
        raise ApiError(400, "validation_error", f"{name} must be an integer from 1 to {maximum}.", field=name)
    return int(raw)


def bool_param(request: web.Request, name: str, default: bool) -> bool:
    raw = request.query.get(name)
    if raw is None:
        return default
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise ApiError(400, "validation_error", f"{name} must be true or false.", field=name)
