"""Webhooks: subscriptions, signed notifications, egress checks, and their durable delivery.

    subscriptions.py  the records, the app's index, the validation handshake (used by the API face)
    signing.py        X-Gateway-Signature: hex HMAC-SHA256 over "v0:" + timestamp + ":" + body
    egress.py         which notification URLs the gateway may call (http(s), public addresses)
    delivery.py       the per-account delivery step the worker runs: stream, consumer group, retries
"""
