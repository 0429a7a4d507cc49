"""The `contacts-gateway` command: serve, worker, apps create, emulator."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from aiohttp import web

from gateway.config import load_settings


def _serve(args: argparse.Namespace) -> int:
    from gateway.app import create_app
    from gateway.runtime import tune_gc

    settings = load_settings()
    tune_gc()
    host = args.host or settings.http.host
    port = args.port or settings.http.port
    web.run_app(create_app(settings), host=host, port=port, print=lambda m: print(m, flush=True))
    return 0


def _worker(args: argparse.Namespace) -> int:
    import signal

    from gateway.core import build_core
    from gateway.runtime import tune_gc
    from gateway.worker import run_worker

    settings = load_settings()
    tune_gc()

    async def run() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        core = build_core(settings)
        try:
            await run_worker(core, stop, args.name)
        finally:
            await core.aclose()
        return 0

    return asyncio.run(run())


def _apps_create(args: argparse.Namespace) -> int:
    from gateway.identity import Identity, load_fernet
    from gateway.store.connection import open_redis
    from gateway.store.keys import Keys

    settings = load_settings()

    async def run() -> int:
        handle = open_redis(settings.redis)
        try:
            identity = Identity(handle.client, Keys(settings.redis.key_prefix),
                                load_fernet(settings.security.encryption_key, settings.redis.embedded_dir))
            app, secret = await identity.create_app(args.name)
        finally:
            await handle.aclose()
        print(f"clientId={app.client_id}\nclientSecret={secret}\nsigningSecret={app.signing_secret}")
        print("Keep the secrets: they are shown only once.", file=sys.stderr)
        return 0

    return asyncio.run(run())


def _emulator(args: argparse.Namespace) -> int:
    import importlib

    module = importlib.import_module(f"providers.{args.provider}.emulator")
    if hasattr(module, "run"):  # an emulator that needs more than a plain app (Graph serves HTTPS)
        module.run(args.host, args.port)
    else:
        web.run_app(module.create_app(), host=args.host, port=args.port, print=lambda m: print(m, flush=True))
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="contacts-gateway", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=_serve)
    worker = sub.add_parser("worker", help="refresh accounts on a schedule and deliver webhooks")
    worker.add_argument("--name", help="consumer name in Redis (default: host-pid-random)")
    worker.set_defaults(func=_worker)
    apps = sub.add_parser("apps", help="manage apps (developer API keys)")
    apps_sub = apps.add_subparsers(dest="apps_command", required=True)
    create = apps_sub.add_parser("create", help="create an app and print its clientId and clientSecret")
    create.add_argument("name")
    create.set_defaults(func=_apps_create)
    emulator = sub.add_parser("emulator", help="run a provider emulator alone")
    emulator.add_argument("provider", choices=["google", "microsoft", "exchange"])
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=8090)
    emulator.set_defaults(func=_emulator)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
