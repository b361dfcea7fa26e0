"""Parsed job files of one repository kept between syncs: a commit re-parses what changed."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from overseer.core import definitions, documents
from overseer.crd import definition


class ParseCache:
    """Parsed job files of one repository, keyed by path, content and defaults.

    A commit usually touches a few files: only those are parsed again. Entries
    not used by the latest sync are dropped, so memory follows the repository.
    """

    def __init__(self) -> None:
        self._results: dict[tuple[str, str, str], definitions.FileResult] = {}
        self._used: set[tuple[str, str, str]] = set()

    def parse_repository(
        self,
        files: Mapping[str, bytes],
        defaults_text: bytes | None,
        too_large: Mapping[str, int] | None = None,
        limit: int = documents.MAX_BYTES,
    ) -> definitions.RepositoryResult:
        """Blocking and CPU-bound: call it in a thread."""
        self._used = set()
        defaults_key = hashlib.sha256(defaults_text or b"").hexdigest()

        def parse_file(
            path: str, text: str | bytes, defaults: definition.Defaults | None
        ) -> definitions.FileResult:
            data = text.encode() if isinstance(text, str) else text
            key = (path, hashlib.sha256(data).hexdigest(), defaults_key)
            self._used.add(key)
            if key not in self._results:
                self._results[key] = definitions.parse_job_file(path, text, defaults)
            return self._results[key]

        result = definitions.parse_repository(
            files, defaults_text, parse_file, too_large=too_large, limit=limit
        )
        self._results = {k: v for k, v in self._results.items() if k in self._used}
        return result
