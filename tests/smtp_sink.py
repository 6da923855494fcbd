"""An SMTP server for tests (aiosmtpd) that can be stopped, refuse, or be slow, on a fixed port."""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
from collections import Counter
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from tests.servers import free_port


class SmtpSink:
    """Collects messages. `refuse_with`: answer DATA with that code (e.g. 451, 550).
    `hold_seconds`: wait this long before taking RCPT (a worker is then busy with it).
    `quit_with`: answer QUIT with that code, after the message was taken."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.messages: list[EmailMessage] = []
        self.refuse_with: int | None = None
        self.hold_seconds = 0.0
        self.hold_only: str | None = None  # hold RCPT for this address only (None: for every one)
        self.quit_with: int | None = None  # answer QUIT with this code (a goodbye that fails)
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    # aiosmtpd handler hooks
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.hold_seconds and self.hold_only in (None, address):
            await asyncio.sleep(self.hold_seconds)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.refuse_with:
            return f"{self.refuse_with} refused by the test"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.messages.append(message)  # type: ignore[arg-type]
        return "250 OK"

    async def handle_QUIT(self, server, session, envelope):
        return f"{self.quit_with} closing badly, for the test" if self.quit_with else "221 Bye"

    def start(self) -> SmtpSink:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if m["To"] == address]

    def delivered_twice(self) -> int:
        """Messages that arrived more than once (same Message-ID)."""
        with self._lock:
            counts = Counter(m["Message-ID"] for m in self.messages)
        return sum(1 for n in counts.values() if n > 1)

    def twice_to(self) -> set[str]:
        """The recipients of messages that arrived more than once."""
        with self._lock:
            counts = Counter(m["Message-ID"] for m in self.messages)
            return {m["To"] for m in self.messages if counts[m["Message-ID"]] > 1}

    def settings(self) -> dict[str, object]:
        """App settings that send through this sink."""
        return {
            "MAIL_SMTP_HOST": "127.0.0.1",
            "MAIL_SMTP_PORT": self.port,
            "MAIL_SMTP_STARTTLS": False,
            "MAIL_SMTP_TIMEOUT_SECONDS": 3.0,
        }

    def env(self) -> dict[str, str]:
        return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in self.settings().items()}
