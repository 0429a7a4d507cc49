"""The contacts face: list, read with ETag, create, PATCH with If-Match, delete."""

from __future__ import annotations

from aiohttp import web

from gateway.api.common import (
    CORE,
    active_account,
    page_size,
    raw_json,
    read_json,
    records_page,
)
from gateway.errors import ApiError, token_expired, token_invalid
from gateway.store.redis_store import Record
from gateway.sync.changes import TokenExpired, TokenInvalid
from gateway.sync.writes import etag_matches, parse_contact

routes = web.RouteTableDef()


def _etag(record: Record) -> str:
    return f'"{record.hash}"'


def _location(request: web.Request, contact_id: str) -> str:
    base = request.app[CORE].settings.http.public_url or f"{request.scheme}://{request.host}"
    return f"{base.rstrip('/')}/v1/contacts/{contact_id}"


@routes.get("/v1/contacts")
async def list_contacts(request: web.Request) -> web.Response:
    account = await active_account(request)
    core = request.app[CORE]
    try:
        page = await core.feed.read(account.account_id, "list", request.query.get("pageToken"),
                                    page_size(request))
    except TokenInvalid:
        raise token_invalid() from None
    except TokenExpired:
        raise token_expired() from None
    return raw_json(records_page(page.bodies, nextPageToken=page.next_page_token))


@routes.get("/v1/contacts/{id}")
async def get_contact(request: web.Request) -> web.Response:
    account = await active_account(request)
    record = await request.app[CORE].writer.live_record(account.account_id, request.match_info["id"])
    headers = {"ETag": _etag(record)}
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None and etag_matches(if_none_match, record.hash):
        return web.Response(status=304, headers=headers)
    return raw_json(record.body, headers=headers)


@routes.post("/v1/contacts")
async def create_contact(request: web.Request) -> web.Response:
    account = await active_account(request)
    contact = parse_contact(await read_json(request))
    record = await request.app[CORE].writer.create(account.account_id, contact)
    return raw_json(record.body, status=201,
                    headers={"ETag": _etag(record), "Location": _location(request, record.id)})


@routes.patch("/v1/contacts/{id}")
async def update_contact(request: web.Request) -> web.Response:
    account = await active_account(request)
    if_match = request.headers.get("If-Match")
    if not if_match:
        raise ApiError(428, "precondition_required", "PATCH needs an If-Match header with the contact's ETag.")
    patch = await read_json(request)
    if not isinstance(patch, dict):
        raise ApiError(400, "validation_error", "The body must be a JSON object of fields to change.", field="body")
    record = await request.app[CORE].writer.update(account.account_id, request.match_info["id"], if_match, patch)
    return raw_json(record.body, headers={"ETag": _etag(record)})


@routes.delete("/v1/contacts/{id}")
async def delete_contact(request: web.Request) -> web.Response:
    account = await active_account(request)
    await request.app[CORE].writer.delete(account.account_id, request.match_info["id"],
                                          request.headers.get("If-Match"))
    return web.Response(status=204)
