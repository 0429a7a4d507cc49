"""Liveness and readiness probes, unauthenticated."""

from __future__ import annotations

from aiohttp import web
from redis.exceptions import RedisError

from gateway.api.common import CORE, json_response
from gateway.errors import ApiError

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    try:
        await request.app[CORE].redis.client.ping()
    except (RedisError, OSError) as exc:
        raise ApiError(503, "not_ready", f"Redis is not reachable: {exc}.") from None
    return json_response({"status": "ready", "redis": "ok"})
