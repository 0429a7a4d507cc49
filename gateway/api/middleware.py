"""One place for request ids and the JSON error shape, on every path (404 and 405 included)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.api.common import json_response
from gateway.errors import ApiError

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_HTTP_CODES = {
    404: ("not_found", "No such endpoint."),
    405: ("method_not_allowed", "This endpoint does not allow that method."),
    413: ("payload_too_large", "The request body is larger than this gateway accepts."),
}


def _error(request_id: str, status: int, code: str, message: str, headers: dict[str, str] | None = None,
           **extra: object) -> web.Response:
    body = {"code": code, "message": message, "requestId": request_id, **extra}
    return json_response(body, status=status, headers={**(headers or {}), "X-Request-Id": request_id})


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    given = request.headers.get("X-Request-Id", "")[:64]
    request_id = given if given.isascii() and given.isprintable() and given else uuid.uuid4().hex
    try:
        response = await handler(request)
    except ApiError as exc:
        return _error(request_id, exc.status, exc.code, exc.message, exc.headers, **exc.extra)
    except web.HTTPException as exc:
        if exc.status < 400:  # a redirect: it carries the request id too
            exc.headers["X-Request-Id"] = request_id
            raise
        code, message = _HTTP_CODES.get(exc.status, ("http_error", exc.reason))
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return _error(request_id, exc.status, code, message, headers)
    except Exception:
        log.exception("request %s failed", request_id)
        return _error(request_id, 500, "internal_error", "The gateway failed; the request id is in the logs.")
    response.headers["X-Request-Id"] = request_id
    return response
