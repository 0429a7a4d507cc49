"""A local Microsoft identity platform + Graph contacts API (the subset of ../shared/providers/microsoft-graph.md).

It speaks the wire protocol msal and our aiohttp Graph client use, so the connector runs them unmodified:
`/{tenant}/v2.0/.well-known/openid-configuration` (tenant discovery), `/common/discovery/instance` (instance
discovery, for clients that do not turn it off), `/{tenant}/oauth2/v2.0/token` (refresh_token,
client_credentials and authorization_code grants; msal-shaped errors), `/{tenant}/oauth2/v2.0/authorize`
(consents at once), and the Graph routes under `/v1.0/` (emulator_graph.py). The control API (`/_control`,
see EMULATORS.md) lives in emulator_control.py, the state in emulator_state.py.

msal accepts only https authorities, so the emulator is served over TLS with a throw-away CA (tls.py):
`python -m providers.microsoft.emulator --port 8092 [--ca-file PATH]` prints where the CA PEM is; give it to
the gateway as `microsoft.ca_bundle`, with `authority = https://127.0.0.1:8092/common`, `graph_base =
https://127.0.0.1:8092/v1.0`, and the emulator's client id and secret (DEFAULT_CLIENT_ID/SECRET).
"""

from __future__ import annotations

import argparse
import base64
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import BasicAuth, web
from yarl import URL

from providers.control_kit import fault_middleware
from providers.microsoft.emulator_control import add_control_routes
from providers.microsoft.emulator_graph import GraphError, graph, json_response
from providers.microsoft.emulator_state import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    STATE,
    EmulatorState,
)
from providers.microsoft.tls import server_context

__all__ = ["DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "STATE", "EmulatorState", "create_app", "main", "run"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_MULTI_TENANT = ("common", "organizations")


def _b64url(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")


# --- middlewares ---------------------------------------------------------------------------------------

def _fault_response(request: web.Request, status: int, headers: dict[str, str]) -> web.Response:
    """An injected fault in Graph's error shape, or the token endpoint's (AADSTS50196) on OAuth paths."""
    if "/oauth2/" in request.path:
        return _oauth_error(status, "temporarily_unavailable", "AADSTS50196: injected fault.", 50196, headers)
    return GraphError(status, headers=headers).response(request.app[STATE].now_iso())


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except GraphError as exc:
        return exc.response(request.app[STATE].now_iso())


# --- identity platform ---------------------------------------------------------------------------------

def _oauth_error(status: int, error: str, description: str, code: int,
                 headers: dict[str, str] | None = None) -> web.Response:
    """An Entra token-endpoint error, the shape msal returns to its caller as a dict."""
    trace = str(uuid.uuid4())
    return json_response({"error": error, "error_description": description, "error_codes": [code],
                          "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()), "trace_id": trace,
                          "correlation_id": trace}, status, headers)


def _known_tenant(state: EmulatorState, tenant: str) -> bool:
    return tenant in (state.tenant_id, state.domain, *_MULTI_TENANT)


async def _openid_configuration(request: web.Request) -> web.Response:
    state, tenant = request.app[STATE], request.match_info["tenant"]
    if not _known_tenant(state, tenant):
        return _oauth_error(400, "invalid_tenant", f"AADSTS90002: Tenant '{tenant}' not found.", 90002)
    base = f"{request.url.origin()}/{tenant}"
    issuer_tenant = "{tenantid}" if tenant in _MULTI_TENANT else state.tenant_id
    return json_response({
        "token_endpoint": f"{base}/oauth2/v2.0/token", "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        "issuer": f"{request.url.origin()}/{issuer_tenant}/v2.0", "jwks_uri": f"{base}/discovery/v2.0/keys",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"], "tenant_region_scope": None,
    })


async def _instance_discovery(request: web.Request) -> web.Response:
    """What msal asks a Microsoft cloud when instance discovery is on: this host is its own alias."""
    endpoint = URL(request.query.get("authorization_endpoint", f"{request.url.origin()}/common/oauth2/v2.0/authorize"))
    tenant = endpoint.path.split("/")[1] if endpoint.path.count("/") > 1 else "common"
    host = request.url.host or "127.0.0.1"
    host = f"{host}:{request.url.port}" if request.url.port else host
    return json_response({
        "tenant_discovery_endpoint": f"{request.url.origin()}/{tenant}/v2.0/.well-known/openid-configuration",
        "api-version": "1.1", "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}]})


def _client_of(request: web.Request, form: Any) -> tuple[str, str]:
    client_id, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
    if request.headers.get("Authorization", "").startswith("Basic "):
        basic = BasicAuth.decode(request.headers["Authorization"])
        client_id, secret = basic.login, basic.password
    return client_id, secret


def _user_tokens(request: web.Request, state: EmulatorState, user: str, scope: str) -> dict[str, Any]:
    """Tokens for a user, with the id_token (alg none: msal does not check it) and client_info msal wants."""
    mailbox, now = state.mailboxes[user], int(state.clock())
    claims = {"aud": state.client_id, "iss": f"{request.url.origin()}/{state.tenant_id}/v2.0", "iat": now,
              "nbf": now, "exp": now + int(state.access_token_lifetime_s), "name": user, "oid": mailbox.oid,
              "preferred_username": mailbox.upn, "sub": mailbox.oid, "tid": state.tenant_id, "ver": "2.0"}
    lifetime = int(state.access_token_lifetime_s)
    return {"token_type": "Bearer", "scope": scope or "Contacts.ReadWrite", "expires_in": lifetime,
            "ext_expires_in": lifetime, "access_token": state.issue_access_token(user),
            "refresh_token": state.issue_refresh_token(user),
            "id_token": f"{_b64url({'typ': 'JWT', 'alg': 'none'})}.{_b64url(claims)}.",
            "client_info": _b64url({"uid": mailbox.oid, "utid": state.tenant_id})}


async def _token(request: web.Request) -> web.Response:
    """The token endpoint: refresh_token, authorization_code and client_credentials grants."""
    state, tenant = request.app[STATE], request.match_info["tenant"]
    form = await request.post()
    if not _known_tenant(state, tenant):
        return _oauth_error(400, "invalid_request", f"AADSTS90002: Tenant '{tenant}' not found.", 90002)
    if _client_of(request, form) != (state.client_id, state.client_secret):
        return _oauth_error(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.", 7000215)
    grant, scope = form.get("grant_type"), str(form.get("scope", ""))
    if grant == "client_credentials":
        if tenant in _MULTI_TENANT:
            return _oauth_error(400, "invalid_request", "AADSTS900023: Specified tenant identifier is not valid "
                                                        "for the client credentials flow; use the tenant id.", 900023)
        if not scope.endswith("/.default"):
            return _oauth_error(400, "invalid_scope", "AADSTS1002012: The provided value for scope is not valid. "
                                                      "Client credential flows must have a scope value with "
                                                      "/.default suffixed to the resource identifier.", 1002012)
        lifetime = int(state.access_token_lifetime_s)
        return json_response({"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
                              "access_token": state.issue_access_token(None)})
    if grant == "refresh_token":
        user = state.user_of_refresh_token(str(form.get("refresh_token", "")))
        if user is None:
            return _oauth_error(400, "invalid_grant", "AADSTS70000: Provided grant is invalid or malformed.", 70000)
    elif grant == "authorization_code":
        redirect = form.get("redirect_uri")
        user = state.codes.redeem(str(form.get("code", "")), None if redirect is None else str(redirect))
        if user is None:
            return _oauth_error(400, "invalid_grant", "AADSTS70008: The provided authorization code or refresh "
                                                      "token has expired or was already redeemed.", 70008)
    else:
        return _oauth_error(400, "unsupported_grant_type", f"AADSTS70003: grant type '{grant}' is not supported.",
                            70003)
    return json_response(_user_tokens(request, state, user, scope))


async def _authorize(request: web.Request) -> web.StreamResponse:
    """Consent at once: redirect back with a code for the login_hint user (else the first user)."""
    state, query = request.app[STATE], request.query
    if query.get("client_id") != state.client_id:
        raise web.HTTPBadRequest(text="AADSTS700016: Application not found in the directory.")
    if not query.get("redirect_uri") or query.get("response_type", "code") != "code":
        raise web.HTTPBadRequest(text="AADSTS900144: redirect_uri and response_type=code are required.")
    hint = query.get("login_hint")
    mailbox = state.mailbox(hint) if hint else next(iter(state.mailboxes.values()), None)
    if mailbox is None:
        raise web.HTTPBadRequest(text=f"AADSTS50034: The user account {hint!r} does not exist.")
    params = {"code": state.codes.issue(mailbox.user, query["redirect_uri"]), "session_state": str(uuid.uuid4())}
    if "state" in query:
        params["state"] = query["state"]
    raise web.HTTPFound(URL(query["redirect_uri"]).update_query(params))


def create_app(state: EmulatorState | None = None) -> web.Application:
    """The emulator application; `state` (default: a fresh EmulatorState) holds mailboxes, tokens and faults."""
    app = web.Application(middlewares=[fault_middleware(STATE, _fault_response), _errors])
    app[STATE] = state if state is not None else EmulatorState()
    add_control_routes(app)
    app.router.add_get("/common/discovery/instance", _instance_discovery)
    app.router.add_route("*", "/v1.0/{tail:.*}", graph)
    app.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", _openid_configuration)
    app.router.add_post("/{tenant}/oauth2/v2.0/token", _token)
    app.router.add_get("/{tenant}/oauth2/v2.0/authorize", _authorize)
    return app


def run(host: str = "127.0.0.1", port: int = 8092, state: EmulatorState | None = None,
        ca_file: str | Path | None = None) -> None:
    """Serve the emulator over HTTPS until interrupted (blocking); prints where the CA PEM was written."""
    state = state if state is not None else EmulatorState()
    context, ca_path = server_context(ca_file, host)
    origin = f"https://{host}:{port}"
    print(f"Microsoft Graph emulator: authority {origin}/common, graph_base {origin}/v1.0, "
          f"client id {state.client_id}, client secret {state.client_secret}, tenant {state.tenant_id}", flush=True)
    print(f"CA bundle (microsoft.ca_bundle): {ca_path}", flush=True)
    web.run_app(create_app(state), host=host, port=port, ssl_context=context, print=lambda m: print(m, flush=True))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Microsoft Graph contacts emulator (HTTPS)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8092)
    parser.add_argument("--ca-file", help="where to write the CA PEM (default: a new temp file)")
    args = parser.parse_args(argv)
    run(args.host, args.port, ca_file=args.ca_file)


if __name__ == "__main__":
    main()
