"""A local Exchange Web Services endpoint (the subset of ../shared/providers/exchange-ews.md) for tests and bench.

It speaks the SOAP exchangelib sends, so the connector runs exchangelib unmodified: one endpoint
`POST /EWS/Exchange.asmx`, dispatched on the first element of the SOAP Body (exchangelib sends no
SOAPAction): GetFolder, FindFolder, CreateFolder, FindItem, SyncFolderItems, GetItem, CreateItem, UpdateItem (ChangeKey
checked), DeleteItem; HTTP Basic auth per mailbox (or a Bearer token from the control API), 401 with
`WWW-Authenticate: Basic` otherwise. Errors take Exchange's shapes: per-item ResponseClass="Error"
messages, and SOAP Faults (ErrorServerBusy with BackOffMilliseconds). The control API (`/_control`, see
EMULATORS.md) lives in `emulator_control.py`, the state in `emulator_state.py`, the XML in `soap.py` and
`ews_xml.py`.

Start it alone with `python -m providers.exchange.emulator --port 8093` or `run(host, port)`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
from collections.abc import Callable

from aiohttp import web
from lxml import etree

from providers.control_kit import retry_after_header
from providers.exchange import emulator_ops as ops
from providers.exchange.emulator_control import add_control_routes
from providers.exchange.emulator_state import STATE, EmulatorState, Mailbox
from providers.exchange.soap import CONTENT_TYPE, EWS_PATH, EwsError, EwsFault, fault, message, parse_request, response

__all__ = ["STATE", "EWS_PATH", "EmulatorState", "create_app", "main", "run"]

Operation = Callable[[EmulatorState, Mailbox, etree._Element], list[etree._Element]]
OPERATIONS: dict[str, Operation] = {
    "GetFolder": ops.get_folder, "FindFolder": ops.find_folder, "CreateFolder": ops.create_folder,
    "FindItem": ops.find_item,
    "SyncFolderItems": ops.sync_folder_items, "GetItem": ops.get_item, "CreateItem": ops.create_item,
    "UpdateItem": ops.update_item, "DeleteItem": ops.delete_item,
}


def _basic(header: str) -> tuple[str | None, str | None]:
    """(login, password) of a Basic Authorization header, (None, None) when it is not one."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        login, sep, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    return (login, password) if sep else (None, None)


def _credentials(request: web.Request, state: EmulatorState) -> tuple[str | None, str | None]:
    """(claimed user, authenticated user): the claim names a mailbox for fault matching even when wrong."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        user = state.user_of_token(header[7:])
        return user, user
    login, password = _basic(header)
    user = state.user_of_login(login) if login is not None else None
    if user is None:
        return login, None
    return user, user if password == state.mailboxes[user].password else None


def _xml(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, headers={"Content-Type": CONTENT_TYPE})


async def _apply_fault(request: web.Request, state: EmulatorState, user: str | None,
                       operation: str) -> web.Response | None:
    """An injected fault for this request: wait, then answer with its status or EWS code (or go on)."""
    injected = state.take_fault(request.path, user, operation)
    if injected is None:
        return None
    if injected.delay_ms:
        await asyncio.sleep(injected.delay_ms / 1000)
    if injected.code:
        back_off = None if injected.retry_after is None else int(injected.retry_after * 1000)
        return _xml(fault(EwsFault(injected.code, back_off_ms=back_off)), injected.status or 500)
    if injected.status:
        return web.Response(status=injected.status, headers=retry_after_header(injected.retry_after),
                            text=f"emulated HTTP {injected.status}")
    return None


async def _ews(request: web.Request) -> web.StreamResponse:
    """The one EWS endpoint: parse, apply faults, authenticate, dispatch."""
    state = request.app[STATE]
    state.requests += 1
    try:
        op, _ = parse_request(await request.read())
    except EwsFault as exc:
        return _xml(fault(exc), 500)
    operation = etree.QName(op).localname
    claimed, user = _credentials(request, state)
    state.log.append((claimed, operation))
    faulted = await _apply_fault(request, state, claimed, operation)
    if faulted is not None:
        return faulted
    if user is None:
        return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="emulator"'},
                            text="401 - Unauthorized: Access is denied due to invalid credentials.")
    handler = OPERATIONS.get(operation)
    try:
        if handler is None:
            raise EwsFault("ErrorInvalidOperation", f"The emulator does not implement {operation}.")
        return _xml(response(operation, handler(state, state.mailboxes[user], op)))
    except EwsFault as exc:
        return _xml(fault(exc), 500)
    except EwsError as exc:  # an error of the request's single target (its folder, say): one error message
        return _xml(response(operation, [message(operation, exc)]))


def create_app(state: EmulatorState | None = None) -> web.Application:
    """The emulator application; `state` (default: a fresh EmulatorState) holds mailboxes and faults."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[STATE] = state if state is not None else EmulatorState()
    app.router.add_post(EWS_PATH, _ews)
    app.router.add_post(EWS_PATH.lower(), _ews)
    add_control_routes(app)
    return app


def run(host: str = "127.0.0.1", port: int = 8093, state: EmulatorState | None = None) -> None:
    """Serve the emulator until interrupted (blocking)."""
    web.run_app(create_app(state), host=host, port=port)


def main(port: int = 8093) -> None:
    run(port=port)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Exchange Web Services emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8093)
    args = parser.parse_args()
    run(args.host, args.port)
