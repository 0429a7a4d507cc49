"""`make demo`: the gateway on 127.0.0.1:8080 beside seeded provider emulators, ready to curl.

It runs everything in one process on the embedded Redis (its own data directory,
var/demo, emptied at each start): the provider emulators with a seeded mailbox
each, the gateway pointed at them, one worker (scheduled refreshes, webhook
delivery), a small webhook consumer on 127.0.0.1:8093 that prints what it
receives, a demo app and one connected account per provider. It writes
var/demo.json and prints curl commands for the sync flow and for webhooks.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from gateway.app import create_app
from gateway.config import Settings, load_settings
from gateway.core import build_core
from gateway.worker import run_worker

DEMO_DIR = Path("var")
SEED_COUNT = 250
CONSUMER_PORT = 8093


@dataclass
class Started:
    runner: web.AppRunner
    url: str
    ssl: ssl.SSLContext | bool = True


@dataclass
class Emulator:
    """One provider emulator the demo runs, and how to point the gateway at it."""

    service_type: str
    port: int
    start: Callable[[Settings, int], Awaitable[Started]]


async def _listen(runner: web.AppRunner, port: int, ssl_context: ssl.SSLContext | None = None) -> int:
    """Serve on 127.0.0.1:port, or on a free port when that one is taken; returns the port."""
    try:
        site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=ssl_context)
        await site.start()
    except OSError:
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
    server = site._server
    assert server is not None
    return int(server.sockets[0].getsockname()[1])  # type: ignore[union-attr]


async def start_google(settings: Settings, port: int) -> Started:
    from providers.google.emulator import EmulatorState
    from providers.google.emulator import create_app as google_app

    state = EmulatorState()
    runner = web.AppRunner(google_app(state))
    await runner.setup()
    url = f"http://127.0.0.1:{await _listen(runner, port)}"
    g = settings.google
    g.api_base, g.token_url, g.authorize_url = f"{url}/", f"{url}/token", f"{url}/o/oauth2/v2/auth"
    g.client_id, g.client_secret = state.client_id, state.client_secret
    return Started(runner, url)


async def start_microsoft(settings: Settings, port: int) -> Started:
    """Graph over HTTPS with a throwaway CA, which the gateway trusts through microsoft.ca_bundle."""
    from providers.microsoft.emulator import EmulatorState
    from providers.microsoft.emulator import create_app as graph_app
    from providers.microsoft.tls import client_context, server_context

    state = EmulatorState()
    context, ca_path = server_context(DEMO_DIR / "demo" / "msgraph-ca.pem")
    runner = web.AppRunner(graph_app(state))
    await runner.setup()
    url = f"https://127.0.0.1:{await _listen(runner, port, context)}"
    m = settings.microsoft
    m.authority, m.graph_base, m.ca_bundle = f"{url}/common", f"{url}/v1.0", str(ca_path)
    m.client_id, m.client_secret = state.client_id, state.client_secret
    return Started(runner, url, client_context(ca_path))


async def start_exchange(settings: Settings, port: int) -> Started:
    """EWS on plain HTTP: the account's credentials carry the ewsUrl, so the gateway needs no setting."""
    from providers.exchange.emulator import EmulatorState
    from providers.exchange.emulator import create_app as ews_app

    runner = web.AppRunner(ews_app(EmulatorState()))
    await runner.setup()
    return Started(runner, f"http://127.0.0.1:{await _listen(runner, port)}")


EMULATORS = [Emulator("google", 8091, start_google), Emulator("office365", 8092, start_microsoft),
             Emulator("exchange", 8094, start_exchange)]


async def _clear_demo_data(settings: Settings) -> None:
    """The demo starts clean: its own embedded Redis directory, or its own key prefix on a server."""
    from gateway.store.connection import open_redis

    handle = open_redis(settings.redis)
    try:
        keys = [k async for k in handle.client.scan_iter(match=f"{settings.redis.key_prefix}:*", count=1000)]
        for start in range(0, len(keys), 1000):
            await handle.client.delete(*keys[start:start + 1000])
    finally:
        await handle.aclose()


async def _connect(session: aiohttp.ClientSession, base: str, basic: str, emulator: Started, service: str,
                   user: str) -> dict[str, Any]:
    emulator_url = emulator.url
    async with session.post(f"{emulator_url}/_control/users", json={"user": user}, ssl=emulator.ssl) as resp:
        credentials = (await resp.json())["credentials"]
    async with session.post(f"{emulator_url}/_control/users/{user}/seed", json={"count": SEED_COUNT, "seed": 1},
                            ssl=emulator.ssl) as resp:
        if resp.status != 201:
            raise RuntimeError(f"seeding the {service} emulator failed: {await resp.text()}")
    async with session.post(f"{base}/v1/accounts", headers={"Authorization": f"Basic {basic}"},
                            json={"serviceType": service, "credentials": credentials, "user": user}) as resp:
        account = await resp.json()
        if resp.status != 201:
            raise RuntimeError(f"connecting the {service} demo account failed: {account}")
    async with session.post(f"{base}/v1/contacts/sync",
                            headers={"Authorization": f"Bearer {account['accessToken']}"}) as resp:
        await resp.read()  # the first pull, so the demo answers at once
    return {"serviceType": service, "accountId": account["accountId"], "accessToken": account["accessToken"],
            "user": user, "emulatorUrl": emulator_url}


async def start_consumer(signing_secret: str, port: int) -> tuple[web.AppRunner, str]:
    """A webhook consumer for the demo: answers the validation handshake, verifies and prints notifications.

    On `port`, or on a free port when that one is taken; returns the runner and the consumer's URL.
    """
    from gateway.webhooks.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify

    async def hook(request: web.Request) -> web.Response:
        if "validationToken" in request.query:
            return web.Response(text=request.query["validationToken"], content_type="text/plain")
        raw = await request.read()
        ok = verify(signing_secret, request.headers.get(TIMESTAMP_HEADER, ""), raw,
                    request.headers.get(SIGNATURE_HEADER, ""))
        note = json.loads(raw)
        changes = note["changes"]
        print(f"webhook {note['id']}: revision {note['revision']}, {len(changes['updated'])} updated, "
              f"{len(changes['deleted'])} deleted, signature {'ok' if ok else 'BAD'}", flush=True)
        return web.Response(status=200 if ok else 401)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
    except OSError:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, bound = runner.addresses[0][:2]
    return runner, f"http://{host}:{bound}/hook"


def _print_guide(demo: dict[str, Any]) -> None:
    base, first = demo["baseUrl"], demo["accounts"][0]
    token = first["accessToken"]
    hook, basic, account = demo["webhookUrl"], f"{demo['clientId']}:{demo['clientSecret']}", first["accountId"]
    print(f"""
Contacts Gateway demo is running on {base} (Ctrl-C stops it). Everything is in var/demo.json.

  # the account's token (one per connected address book; var/demo.json lists them all)
  TOKEN={token}

  # 1. start a sync: tokens for the updated and the deleted streams
  curl -s -X POST -H "Authorization: Bearer $TOKEN" '{base}/v1/contacts/sync' | python3 -m json.tool

  # 2. page through everything (use the syncUpdatedToken, then each nextPageToken)
  curl -s -H "Authorization: Bearer $TOKEN" '{base}/v1/contacts/sync/updated?deltaToken=<syncUpdatedToken>&pageSize=50'

  # 3. change something at the provider, behind the gateway's back
  curl -s '{first['emulatorUrl']}/_control/users/{first['user']}/contacts' | python3 -m json.tool | head -20
  curl -s -X POST -H 'Content-Type: application/json' -d '{{"name": {{"givenName": "New", "familyName": "Person"}}}}' \\
       '{first['emulatorUrl']}/_control/users/{first['user']}/contacts'

  # 4. the delta: only what changed (use the nextDeltaToken of step 2)
  curl -s -H "Authorization: Bearer $TOKEN" '{base}/v1/contacts/sync/updated?deltaToken=<nextDeltaToken>'

  # read and write with ETags
  curl -s -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
       -d '{{"name": {{"givenName": "Ada"}}, "emailAddresses": [{{"address": "ada@example.com", "type": "work"}}]}}' \\
       '{base}/v1/contacts' -i

  # webhooks: subscribe the demo consumer (it prints each notification here), then change something (step 3)
  curl -s -u '{basic}' -H 'Content-Type: application/json' \\
       -d '{{"accountId": "{account}", "resource": "/contacts", "notificationUrl": "{hook}"}}' \\
       '{base}/v1/subscriptions'
""", flush=True)


async def run_demo(host: str, port: int) -> None:
    settings = load_settings()
    settings.http.host, settings.http.port = host, port
    if settings.redis.url:
        settings.redis.key_prefix = "demo"
    else:
        settings.redis.embedded_dir = str(DEMO_DIR / "demo")
    settings.sync.refresh_interval_s = 2.0
    settings.worker.refresh_interval_s = 2.0  # the worker pulls every account this often
    settings.webhooks.allow_private_targets = True  # the demo consumer is on 127.0.0.1
    await _clear_demo_data(settings)
    started: dict[str, Started] = {}
    for emulator in EMULATORS:
        started[emulator.service_type] = await emulator.start(settings, emulator.port)
    core = build_core(settings)
    app_record, secret = await core.identity.create_app("demo")
    gateway = web.AppRunner(create_app(settings, core=core))
    await gateway.setup()
    try:
        await web.TCPSite(gateway, host, port).start()
    except OSError as exc:
        raise SystemExit(f"Port {port} on {host} is taken ({exc.strerror}); stop what uses it, or run "
                         f"GATEWAY_HTTP__PORT=<port> make demo.") from None
    base = f"http://{host}:{port}"
    basic = base64.b64encode(f"{app_record.client_id}:{secret}".encode()).decode()
    async with aiohttp.ClientSession() as session:
        accounts = [await _connect(session, base, basic, started[e.service_type], e.service_type,
                                   f"demo-{e.service_type}@example.com") for e in EMULATORS]
    consumer, hook = await start_consumer(app_record.signing_secret, CONSUMER_PORT)
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(core, stop, "demo-worker"))
    demo = {"baseUrl": base, "clientId": app_record.client_id, "clientSecret": secret,
            "signingSecret": app_record.signing_secret, "webhookUrl": hook,
            "accounts": accounts}
    DEMO_DIR.mkdir(exist_ok=True)
    (DEMO_DIR / "demo.json").write_text(json.dumps(demo, indent=2) + "\n")
    _print_guide(demo)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await worker
    await gateway.cleanup()
    await consumer.cleanup()
    for emulator in started.values():
        await emulator.runner.cleanup()
    await core.aclose()


def main() -> None:
    from gateway.runtime import tune_gc

    tune_gc()
    host = os.environ.get("GATEWAY_HTTP__HOST", "127.0.0.1")
    port = int(os.environ.get("GATEWAY_HTTP__PORT", "8080"))
    asyncio.run(run_demo(host, port))


if __name__ == "__main__":
    main()
