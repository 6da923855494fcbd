"""Signed webhook delivery with Persona's retry schedule, run by one background thread."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import threading
import time
from typing import Any

import requests

from .config import PERSONA_RETRY_SCHEDULE_SECONDS
from .state import Delivery, Event, Store, iso

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 1 + len(PERSONA_RETRY_SCHEDULE_SECONDS)


def inflect_keys(value: Any, inflection: str) -> Any:
    """`value` with every object key (written kebab-case) in `inflection`: `kebab`, `camel` or
    `snake`. Values are left alone (`next-step-name`'s value stays as the template wrote it)."""
    if inflection == "kebab":
        return value
    if isinstance(value, list):
        return [inflect_keys(item, inflection) for item in value]
    if not isinstance(value, dict):
        return value
    return {_inflect(key, inflection): inflect_keys(item, inflection) for key, item in value.items()}


def _inflect(key: str, inflection: str) -> str:
    head, *rest = key.split("-")
    if inflection == "snake":
        return "_".join([head, *rest])
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def event_body(event: Event, inflection: str = "kebab") -> bytes:
    """The delivery's body, its keys in the webhook's inflection (KI)."""
    document = {
        "data": {
            "type": "event",
            "id": event.id,
            "attributes": {
                "name": event.name,
                "created-at": iso(event.created_at),
                "payload": {"data": event.payload, "included": []},
            },
        }
    }
    return json.dumps(inflect_keys(document, inflection), separators=(",", ":")).encode()


def sign(body: bytes, secrets: list[str], timestamp: int) -> str:
    """`t=<unix>,v1=<hex>` per secret, space-separated while several are active (rotation)."""
    message = f"{timestamp}.".encode() + body
    return " ".join(f"t={timestamp},v1={hmac.new(s.encode(), message, hashlib.sha256).hexdigest()}" for s in secrets)


class Deliverer(threading.Thread):
    """Sends due deliveries and makes due inquiries expire as the clock moves."""

    def __init__(self, store: Store) -> None:
        super().__init__(name="persona-emulator-webhooks", daemon=True)
        self.store = store
        self.session = requests.Session()
        self.stopped = threading.Event()

    def run(self) -> None:
        last_sweep = 0.0
        while not self.stopped.is_set():
            if time.monotonic() - last_sweep > 1:
                self.store.sweep_expiry()
                last_sweep = time.monotonic()
            due = self._claim_due()
            for delivery, event in due:
                self._attempt(delivery, event)
            if not due:
                with self.store.lock:
                    self.store.changed.wait(timeout=0.2)

    def stop(self) -> None:
        self.stopped.set()

    def _claim_due(self) -> list[tuple[Delivery, Event]]:
        """The deliveries due now, oldest due first, marked as being sent."""
        now = time.time()
        with self.store.write():
            due = [d for d in self.store.open_deliveries.values() if d.state == "pending" and d.next_attempt_at <= now]
            due.sort(key=lambda d: d.next_attempt_at)
            for delivery in due:
                delivery.state = "sending"
                if delivery.first_attempted_at is None:
                    delivery.first_attempted_at = int(now)
                self.store.touch(delivery)
            return [(d, self.store.events[d.event_id]) for d in due]

    def _attempt(self, delivery: Delivery, event: Event) -> None:
        config = self.store.config
        body = event_body(event, config.webhook_key_inflection)
        now = int(time.time())
        made = len(delivery.attempts) + 1
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Persona-Emulator-Webhooks/1",
            "Persona-Webhook-Attempts-Made": str(made),
            "Persona-Webhook-Attempts-Left": str(MAX_ATTEMPTS - made),
            "Persona-Webhook-First-Attempted-At": str(delivery.first_attempted_at),
        }
        if config.webhook_secrets:
            headers["Persona-Signature"] = sign(body, config.webhook_secrets, now)
        outcome: dict[str, Any] = {"at": now}
        try:
            response = self.session.post(
                delivery.url,
                data=body,
                headers=headers,
                timeout=config.webhook_timeout_seconds,
                allow_redirects=False,
            )
            outcome["status"] = response.status_code
            ok = response.status_code in config.webhook_success_statuses
        except requests.RequestException as exc:
            outcome["error"] = type(exc).__name__
            ok = False
        with self.store.write():
            delivery.attempts.append(outcome)
            if ok:
                delivery.state = "delivered"
            elif made >= MAX_ATTEMPTS:
                delivery.state = "failed"
            else:
                wait = PERSONA_RETRY_SCHEDULE_SECONDS[made - 1] * config.webhook_backoff_scale
                delivery.next_attempt_at = time.time() + wait
                delivery.state = "held" if self.store.settings.webhooks_paused else "pending"
            self.store.settle(delivery)
        log.info("webhook %s %s -> %s", event.name, event.id, outcome)


def release_held(store: Store, order: str) -> int:
    """Let held deliveries go, in `fifo`, `reverse` or `shuffle` order. Returns how many."""
    with store.write():
        store.pause_webhooks(False)
        held = [d for d in store.open_deliveries.values() if d.state == "held"]
        if order == "reverse":
            held.reverse()
        elif order == "shuffle":
            random.shuffle(held)  # test ordering, no secret  # nosec B311
        # Deliveries are claimed in order of when they are due: space the released ones out,
        # in order, so the receiver sees them one after another.
        start = time.time()
        for index, delivery in enumerate(held):
            delivery.state = "pending"
            delivery.next_attempt_at = start + index * 0.05
            store.touch(delivery)
        store.changed.notify_all()
        return len(held)
