"""List endpoints: `filter[...]` parameters and cursor pagination as Persona documents them (PAG).

`page[after]`/`page[before]` are object ids; `page[size]` is 1..100 (default 10); the answer's
`links.prev`/`links.next` are the same path and filters with the cursor for the neighbouring page
(null at either end). An unknown `filter[...]` or `page[...]` is a 400, never ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar
from urllib.parse import urlencode

from flask import request

from .state import StateError

T = TypeVar("T")
_FILTER = re.compile(r"filter\[([A-Za-z0-9_-]+)\](?:\[\])?")
_PAGE_KEYS = {"page[size]", "page[after]", "page[before]"}


def filters(allowed: set[str]) -> dict[str, list[str]]:
    """The request's filters: name (kebab-case) -> values, from a comma list or array syntax
    (`filter[status][]=a&filter[status][]=b`). 400 for a filter not in `allowed`."""
    found: dict[str, list[str]] = {}
    for key in request.args:
        if key.startswith("page[") and key not in _PAGE_KEYS:
            raise StateError(400, "Bad request", f"Unknown page parameter {key!r}")
        if not key.startswith("filter"):
            continue
        match = _FILTER.fullmatch(key)
        name = match[1].replace("_", "-") if match else key
        if match is None or name not in allowed:
            raise StateError(400, "Bad request", f"Unknown filter {key!r}; allowed: {', '.join(sorted(allowed))}")
        values = [value for raw in request.args.getlist(key) for value in raw.split(",") if value]
        found.setdefault(name, []).extend(values)
    return found


def timestamp(value: str, name: str) -> float:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        raise StateError(400, "Bad request", f"filter[{name}] must be an ISO 8601 time") from exc


def paginate(items: Sequence[T], ident: Callable[[T], str]) -> tuple[list[T], dict[str, str | None]]:
    """One page of `items` (already in list order) and its `links`."""
    try:
        size = int(request.args.get("page[size]", 10))
    except ValueError as exc:
        raise StateError(400, "Bad request", "page[size] must be a number") from exc
    if not 1 <= size <= 100:
        raise StateError(400, "Bad request", "page[size] must be between 1 and 100")
    after, before = request.args.get("page[after]"), request.args.get("page[before]")
    if after and before:
        raise StateError(400, "Bad request", "Use page[after] or page[before], not both")
    ids = [ident(item) for item in items]
    cursor = after or before
    if cursor and cursor not in ids:
        raise StateError(400, "Bad request", f"Unknown cursor {cursor!r}")
    if after:
        start = ids.index(after) + 1
    elif before:
        start = max(0, ids.index(before) - size)
    else:
        start = 0
    stop = ids.index(before) if before else min(start + size, len(items))
    chunk = list(items[start:stop])
    links: dict[str, str | None] = {
        "prev": _link("page[before]", ids[start]) if chunk and start > 0 else None,
        "next": _link("page[after]", ids[stop - 1]) if chunk and stop < len(items) else None,
    }
    return chunk, links


def _link(cursor_name: str, cursor: str) -> str:
    kept = [(k, v) for k, v in request.args.items(multi=True) if k not in {"page[after]", "page[before]"}]
    return request.path + "?" + urlencode([*kept, (cursor_name, cursor)], safe="[]")
