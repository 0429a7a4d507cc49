"""The API's own documentation, unauthenticated: its OpenAPI 3.1 description and an interactive page.

    GET /api-docs/openapi.json      gateway/openapi/openapi.yaml, parsed once at import, served as JSON
    GET /api-docs/ui                Swagger UI over that document
    GET /api-docs/assets/{asset}    Swagger UI's own files, from the `swagger-ui-py` package (no CDN)

The description is written by hand: it carries what no model knows (the prose, the error codes each
operation answers, the response headers). Tests keep it true rather than a generator:

- tests/docs/test_docs_spec.py: it validates as OpenAPI 3.1; the aiohttp router's routes and the
  documented operations are the same set (method and path template); the ContactInput/Contact schemas
  equal `ContactInput.model_json_schema()` field by field (bounds, patterns, enums, required fields,
  extra fields forbidden), so a change to gateway/models.py fails there until the YAML follows; every
  operation documents its 401/400/413 and the X-Request-Id header.
- tests/docs/test_docs_schemathesis.py: schemathesis drives every operation of the app served on a
  real port, with real credentials, and checks that no response is a 5xx and that each one (status,
  content type, headers, body) matches the description; and POST /v1/contacts accepts exactly the
  bodies the ContactInput schema allows.
- tests/docs/test_docs_scenarios.py: each documented (operation, status) of these faces is provoked
  for real and checked the same way.
- tests/docs/test_docs_ui.py: headless Chromium renders /api-docs/ui and lists every operation.

The page's Content-Security-Policy allows only the gateway's own origin, so nothing it renders can
reach a CDN; Swagger UI's online validator badge is switched off too.
"""

from __future__ import annotations

import functools
import importlib.util
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiohttp import web

from gateway.errors import not_found

routes = web.RouteTableDef()

SPEC_PATH = "/api-docs/openapi.json"
UI_PATH = "/api-docs/ui"
ASSETS: dict[str, str] = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "favicon-16x16.png": "image/png",
    "favicon-32x32.png": "image/png",
}
CSP = ("default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")


METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def load_spec() -> dict[str, Any]:
    """The OpenAPI document as a dict (a fresh one on each call: tests may change theirs).

    Parameters shared by a path item are written once in the YAML and copied into each of its
    operations here (an operation's own parameter of the same name and location wins, as OpenAPI
    says): the same description, in the form Swagger UI 5 renders, since it leaves `$ref`s in
    path-level parameters of a 3.1 document unresolved.
    """
    text = resources.files("gateway.openapi").joinpath("openapi.yaml").read_text(encoding="utf-8")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec: dict[str, Any] = yaml.load(text, Loader=loader)
    for section in ("paths", "webhooks"):
        for item in (spec.get(section) or {}).values():
            _push_down_parameters(spec, item)
    return spec


def _parameter_key(spec: dict[str, Any], parameter: dict[str, Any]) -> tuple[str, str]:
    while "$ref" in parameter:
        target: Any = spec
        for part in parameter["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        parameter = target
    return parameter["name"], parameter["in"].lower()


def _push_down_parameters(spec: dict[str, Any], item: dict[str, Any]) -> None:
    shared = item.pop("parameters", None) or []
    for method in METHODS:
        operation = item.get(method)
        if operation is None or not shared:
            continue
        own = operation.get("parameters", [])
        overridden = {_parameter_key(spec, p) for p in own}
        operation["parameters"] = [p for p in shared if _parameter_key(spec, p) not in overridden] + own


SPEC_JSON: bytes = orjson.dumps(load_spec())


def _static_dir() -> Path:
    found = importlib.util.find_spec("swagger_ui")  # located, not imported: its __init__ pulls in jinja2
    if found is None or found.origin is None:
        raise RuntimeError("the swagger-ui-py package is not installed")
    return Path(found.origin).parent / "static"


@functools.cache
def _asset(name: str) -> bytes:
    return (_static_dir() / name).read_bytes()


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Contacts Gateway API</title>
  <link rel="stylesheet" href="assets/swagger-ui.css">
  <link rel="icon" type="image/png" href="assets/favicon-32x32.png" sizes="32x32">
  <link rel="icon" type="image/png" href="assets/favicon-16x16.png" sizes="16x16">
  <style>body { margin: 0; }</style>
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="assets/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      docExpansion: "list",
      displayOperationId: true,
      displayRequestDuration: true,
      validatorUrl: null,
      presets: [SwaggerUIBundle.presets.apis],
      layout: "BaseLayout"
    });
  </script>
</body>
</html>
"""


@routes.get(SPEC_PATH)
async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(body=SPEC_JSON, content_type="application/json")


@routes.get(UI_PATH)
async def ui(request: web.Request) -> web.Response:
    # relative links: the page works behind a proxy that mounts the gateway under a prefix
    return web.Response(text=_PAGE, content_type="text/html",
                        headers={"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff"})


@routes.get("/api-docs/assets/{asset}")
async def asset(request: web.Request) -> web.Response:
    name = request.match_info["asset"]
    content_type = ASSETS.get(name)
    if content_type is None:
        raise not_found("No such documentation asset.")
    return web.Response(body=_asset(name), content_type=content_type,
                        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"})
