"""Following the API's pages (``limit`` and ``continue``) to the end or to a limit.

Pure: the one function that asks for a page is passed in, so the logic is tested
without a server and shared by ``overseer jobs`` and ``overseer executions``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

PAGE_MAX = 1000
"""The API's largest page (``pagination.MAX_LIMIT``): fewer round trips for long lists."""

Fetch = Callable[[Mapping[str, str]], Mapping[str, Any]]
"""Ask for one page with these query parameters; the page's JSON."""


class PagingError(ValueError):
    """The API's pages do not end: the same ``continue`` came back twice."""


def page_params(
    filters: Mapping[str, str], cursor: str | None, wanted: int | None
) -> dict[str, str]:
    """The query of the next page: the filters, a limit of what is still wanted (at most
    ``PAGE_MAX``), and the previous page's cursor."""
    params = dict(filters)
    params["limit"] = str(PAGE_MAX if wanted is None else max(1, min(PAGE_MAX, wanted)))
    if cursor:
        params["continue"] = cursor
    return params


def collect(
    fetch: Fetch, filters: Mapping[str, str], limit: int | None = None
) -> list[dict[str, Any]]:
    """Every item of every page, in the API's order, or the first ``limit`` of them."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    seen: set[str] = set()
    while limit is None or len(items) < limit:
        wanted = None if limit is None else limit - len(items)
        page = fetch(page_params(filters, cursor, wanted))
        batch = list(page.get("items") or [])
        items.extend(batch if wanted is None else batch[:wanted])
        cursor = page.get("continue") or None
        if cursor is None:
            break
        if cursor in seen:
            raise PagingError(f"the API sent the continue cursor {cursor!r} twice")
        seen.add(cursor)
    return items
