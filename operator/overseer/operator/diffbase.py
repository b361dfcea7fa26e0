"""kopf's diff base in an annotation, holding only what the change handlers compare.

The adapter of :mod:`overseer.core.diffbase` to kopf: kopf builds an object's essence
(:meth:`kopf.DiffBaseStorage.build`) both to write it after handling and to compare the
next version with the one written; both go through :meth:`DiffedFieldsStorage.build`, so
what is written and what is compared stay the same shape.

Executions written by an older operator carry the whole essence. kopf then sees a
difference (the parameters are gone from the new one), calls no handler for it (its one
handler's field is unchanged) and writes the small one: one write per such execution.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

import kopf

from overseer.core import diffbase

SIGNALS_FIELD = diffbase.SIGNALS_FIELD
"""The one field of an execution its change handler diffs, and its diff base holds."""


class DiffedFieldsStorage(kopf.AnnotationsDiffBaseStorage):
    """kopf's annotation storage, keeping of each kind only the fields its handlers diff."""

    def build(
        self,
        *,
        body: kopf.Body,
        extra_fields: Iterable[kopf.FieldSpec] | None = None,
    ) -> kopf.BodyEssence:
        extra = list(extra_fields or ())  # read twice: never a spent iterator
        essence = super().build(body=body, extra_fields=extra)
        handled = (kopf_path(field) for field in extra)
        fields = diffbase.diffed_fields(
            str(body.get("apiVersion", "")),
            str(body.get("kind", "")),
            (path for path in handled if path),
        )
        if fields is None:
            return essence
        return cast(kopf.BodyEssence, diffbase.restrict(essence, fields))


def kopf_path(field: kopf.FieldSpec) -> diffbase.FieldPath:
    """A field as kopf names it (``"a.b"``, a list or a tuple) as a path; () for None."""
    if field is None:
        return ()
    if isinstance(field, str):
        return tuple(field.split("."))
    return tuple(field)
