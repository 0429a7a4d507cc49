"""The OpenAPI document: valid 3.1, the router's routes exactly, the pydantic Contact exactly, consistent."""

from __future__ import annotations

import copy
import importlib.metadata
import re
from typing import Any

import orjson
import pytest
from aiohttp import web
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from gateway.api.docs import SPEC_JSON
from gateway.app import create_app
from gateway.config import Settings
from gateway.models import Contact, ContactInput
from tests.conftest import Gateway

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
SERVER_FIELDS = {"id", "etag", "createdTime", "lastModifiedTime"}


def spec_operations(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in spec["paths"].items() for method in item if method in METHODS}


def router_operations(app: web.Application) -> set[tuple[str, str]]:
    found = set()
    for route in app.router.routes():
        resource = route.resource
        if route.method in ("HEAD", "*") or resource is None or isinstance(resource, web.StaticResource):
            continue
        found.add((route.method, resource.canonical))
    return found


def test_the_document_is_valid_openapi_3_1(openapi: dict[str, Any]) -> None:
    assert openapi["openapi"].startswith("3.1.")
    validate(openapi, cls=OpenAPIV31SpecValidator)
    assert orjson.loads(SPEC_JSON) == openapi  # what is served is the file


def test_the_version_is_the_package_version(openapi: dict[str, Any]) -> None:
    assert openapi["info"]["version"] == importlib.metadata.version("contacts-gateway")


def test_every_route_is_documented_and_nothing_else(openapi: dict[str, Any], settings: Settings) -> None:
    app = create_app(settings)
    served, documented = router_operations(app), spec_operations(openapi)
    assert served - documented == set(), "routes missing from gateway/openapi/openapi.yaml"
    assert documented - served == set(), "documented operations the gateway does not serve"


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], list[dict[str, Any]]]]:
    out = []
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                out.append((method.upper(), path, item[method], item.get("parameters", [])))
    return out


def _resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def test_operations_document_their_errors_and_request_ids(openapi: dict[str, Any]) -> None:
    """Each operation lists what its face really answers: auth, bodies, the request id header."""
    ids = set()
    for method, path, op, shared in _operations(openapi):
        label = f"{method} {path}"
        assert op.get("operationId") and op["operationId"] not in ids, label
        ids.add(op["operationId"])
        assert op.get("summary") and op.get("tags"), label
        responses = {code: _resolve(openapi, r) for code, r in op["responses"].items()}
        security = op.get("security", openapi["security"])
        if security:
            assert "401" in responses, f"{label}: an authenticated operation answers 401"
        if "requestBody" in op:
            assert {"400", "413"} <= set(responses), f"{label}: a body can be malformed or too large"
        for code, response in responses.items():
            if code != "302":  # redirects are raised, past the middleware that stamps the id
                assert "X-Request-Id" in response.get("headers", {}), f"{label} {code}: X-Request-Id"
            if code.startswith(("4", "5")):
                schema = response["content"]["application/json"]["schema"]
                assert schema.get("$ref") == "#/components/schemas/Error" or \
                    schema["allOf"][0] == {"$ref": "#/components/schemas/Error"}, f"{label} {code}"
        params = [_resolve(openapi, p) for p in shared + op.get("parameters", [])]
        assert any(p["name"] == "X-Request-Id" and p["in"] == "header" for p in params), label


# -- the Contact schemas against gateway/models.py ----------------------------------------------------------

_DOC_KEYS = {"title", "description", "default", "examples"}


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """Refs replaced by their targets, documentation keys dropped, and nullability written one way:
    `anyOf: [X, {type: null}]` and `type: [t, "null"]` both become X / t plus `nullable: True`."""
    if isinstance(node, list):
        return [_inline(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _inline(defs[node["$ref"].rsplit("/", 1)[1]], defs)
    out = {k: _inline(v, defs) for k, v in node.items() if k not in _DOC_KEYS}
    variants = out.get("anyOf")
    if variants and {"type": "null"} in variants and len(variants) == 2:
        (inner,) = [v for v in variants if v != {"type": "null"}]
        out = {**{k: v for k, v in out.items() if k != "anyOf"}, **inner, "nullable": True}
    if isinstance(out.get("type"), list) and "null" in out["type"]:
        rest = [t for t in out["type"] if t != "null"]
        out["type"] = rest[0] if len(rest) == 1 else rest
        out["nullable"] = True
    return out


def test_contact_input_matches_the_pydantic_model(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    model = ContactInput.model_json_schema(ref_template="#/$defs/{model}")
    expected = _inline({k: v for k, v in model.items() if k != "$defs"}, model["$defs"])
    assert _inline(schemas["ContactInput"], schemas) == expected


def test_contact_is_contact_input_plus_the_server_fields(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    contact, written = schemas["Contact"], schemas["ContactInput"]
    assert set(Contact.model_fields) == set(contact["properties"]) == set(written["properties"]) | SERVER_FIELDS
    assert {k: v for k, v in contact["properties"].items() if k not in SERVER_FIELDS} == written["properties"]
    assert set(contact["required"]) == SERVER_FIELDS and contact["additionalProperties"] is False


def test_the_normalizer_sees_a_drift() -> None:
    """A changed bound in the model would not go unnoticed: the comparison above is not vacuous."""
    model = ContactInput.model_json_schema(ref_template="#/$defs/{model}")
    drifted = copy.deepcopy(model)
    drifted["$defs"]["Name"]["properties"]["givenName"]["anyOf"][0]["maxLength"] = 300
    assert _inline(model, model["$defs"]) != _inline(drifted, drifted["$defs"])


# -- served -----------------------------------------------------------------------------------------------

async def test_the_document_and_page_are_served_without_credentials(gw: Gateway) -> None:
    resp = await gw.http.get("/api-docs/openapi.json")
    assert resp.status == 200 and resp.content_type == "application/json"
    assert (await resp.read()) == SPEC_JSON and resp.headers["X-Request-Id"]
    page = await gw.http.get("/api-docs/ui")
    html = await page.text()
    assert page.status == 200 and page.content_type == "text/html"
    assert "openapi.json" in html and "assets/swagger-ui-bundle.js" in html
    links = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert links and all("//" not in link and not link.startswith("/") for link in links), links  # relative only
    assert "https://" not in html and "http://" not in html and "cdn" not in html.lower()
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    for name, kind in (("swagger-ui-bundle.js", "text/javascript"), ("swagger-ui.css", "text/css"),
                       ("favicon-32x32.png", "image/png")):
        asset = await gw.http.get(f"/api-docs/assets/{name}")
        assert asset.status == 200 and asset.content_type == kind and len(await asset.read()) > 100, name
    missing = await gw.http.get("/api-docs/assets/..%2Fcore.py")
    assert missing.status == 404 and (await missing.json())["code"] == "not_found"


@pytest.mark.parametrize("path", ["/api-docs/assets/index.html", "/api-docs/assets/swagger-editor.js"])
async def test_only_the_listed_assets_are_served(gw: Gateway, path: str) -> None:
    resp = await gw.http.get(path)
    assert resp.status == 404
