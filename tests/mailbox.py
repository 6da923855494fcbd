"""Reading what the app sent: .eml files in the outbox, or what an SMTP sink received."""

from __future__ import annotations

import email
import re
from email.message import Message
from pathlib import Path

LINK = re.compile(r"https?://[^\s\"<>]+/r/[A-Za-z0-9_-]{43}")


def outbox(directory: str) -> list[Message]:
    folder = Path(directory)
    if not folder.exists():
        return []
    files = sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
    return [email.message_from_bytes(p.read_bytes()) for p in files]


def text_of(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode()
    raise AssertionError("no text part")


def html_of(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/html":
            return part.get_payload(decode=True).decode()
    raise AssertionError("no html part")


def link_in(message: Message) -> str:
    match = LINK.search(text_of(message))
    assert match, text_of(message)
    assert match.group(0) in html_of(message)
    return match.group(0)
