"""Every Redis key the gateway uses, in one place.

Keys of one account share the hash tag `{a:<accountId>}`, so a multi-key change
(a Lua script) stays in one Redis Cluster slot. App and token lookups are global.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AccountKeys:
    """The keys of one account."""

    base: str

    @property
    def rev(self) -> str:
        """Counter: the account's head revision."""
        return f"{self.base}:rev"

    @property
    def records(self) -> str:
        """Hash: contact id -> b"<meta>\\n<served JSON>"."""
        return f"{self.base}:c"

    @property
    def live(self) -> str:
        """Sorted set: live contact id -> its latest revision (the change index)."""
        return f"{self.base}:live"

    @property
    def dead(self) -> str:
        """Sorted set: tombstoned contact id -> the revision of its deletion."""
        return f"{self.base}:dead"

    @property
    def state(self) -> str:
        """Hash: provider cursor, last refresh, tombstone floor, readiness, status."""
        return f"{self.base}:state"

    @property
    def account(self) -> str:
        """Hash: app, service type, encrypted credentials, token hash."""
        return f"{self.base}:acct"

    @property
    def refresh_lock(self) -> str:
        return f"{self.base}:lock:refresh"

    @property
    def write_lock(self) -> str:
        return f"{self.base}:lock:write"

    @property
    def subscriptions(self) -> str:
        """Set: ids of the webhook subscriptions on this account (the apply script reads it)."""
        return f"{self.base}:subs"

    @property
    def events(self) -> str:
        """Stream: one entry per (change batch, subscription), written by the apply script itself."""
        return f"{self.base}:events"

    def device(self, device: str) -> str:
        """Hash: a device's watermark (every change up to it acknowledged)."""
        return f"{self.base}:dev:{device}"

    def device_acked(self, device: str) -> str:
        """Hash: contact id -> the revision the device acknowledged (above its watermark)."""
        return f"{self.base}:dev:{device}:acked"

    def device_sent(self, device: str) -> str:
        """Hash: contact id -> the revision last sent to the device (so its deletion is owed)."""
        return f"{self.base}:dev:{device}:sent"

    @property
    def sessions(self) -> str:
        """Sorted set: sync session id -> when it expires (ms)."""
        return f"{self.base}:sessions"

    def session(self, session_id: str) -> str:
        """Hash: a sync session's device, range and progress."""
        return f"{self.base}:sess:{session_id}"

    def token(self, token: str) -> str:
        """String: the state of one delta or page token."""
        return f"{self.base}:tok:{token}"

    # -- webhooks (gateway/webhooks/) -----------------------------------------------

    def subscription(self, subscription_id: str) -> str:
        """Hash: one webhook subscription (app, url, resource, active, failure state)."""
        return f"{self.base}:sub:{subscription_id}"

    def deliveries(self, subscription_id: str) -> str:
        """List: a subscription's recent delivery attempts, newest first (JSON each)."""
        return f"{self.base}:sub:{subscription_id}:log"

    @property
    def retries(self) -> str:
        """Sorted set: event stream entry id -> when it is next due (ms); a taken entry's lease."""
        return f"{self.base}:wh:retry"

    @property
    def dead_letters(self) -> str:
        """Stream: notifications given up on after the retry period."""
        return f"{self.base}:wh:dead"

    @property
    def delivery_lock(self) -> str:
        """Lock: the worker delivering this account's notifications."""
        return f"{self.base}:lock:deliver"


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "gw"

    def account(self, account_id: str) -> AccountKeys:
        return AccountKeys(f"{self.prefix}:{{a:{account_id}}}")

    def app(self, client_id: str) -> str:
        return f"{self.prefix}:app:{client_id}"

    def app_accounts(self, client_id: str) -> str:
        return f"{self.prefix}:app:{client_id}:accounts"

    def access_token(self, token_hash: str) -> str:
        return f"{self.prefix}:token:{token_hash}"

    def oauth_state(self, state: str) -> str:
        return f"{self.prefix}:oauth:{state}"

    @property
    def dirty(self) -> str:
        """Sorted set: account id -> when its event stream last got an entry (a hint for workers)."""
        return f"{self.prefix}:dirty"

    @property
    def all_accounts(self) -> str:
        """Set: every connected account id (workers walk it to schedule refreshes)."""
        return f"{self.prefix}:accounts"

    def app_subscriptions(self, client_id: str) -> str:
        """Hash: the app's subscription ids -> their account id (lookup and ownership)."""
        return f"{self.prefix}:app:{client_id}:subs"

    def app_subscription_ids(self, client_id: str) -> str:
        """Sorted set (all scores 0): the app's subscription ids, for paging in id (creation) order."""
        return f"{self.prefix}:app:{client_id}:subs:ids"

    @property
    def webhook_accounts(self) -> str:
        """Set: accounts with at least one subscription (workers sweep them)."""
        return f"{self.prefix}:wh:accounts"

    @property
    def webhook_due(self) -> str:
        """Sorted set: account id -> when its earliest webhook retry is due (ms; a hint for workers)."""
        return f"{self.prefix}:wh:due"
