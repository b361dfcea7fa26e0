"""The API group, the base model every resource part derives from, and kind descriptors.

Field names are snake_case in Python and camelCase on the wire (``display_name`` is
``displayName``); both spellings are accepted when validating, the wire spelling is
always used when dumping.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

GROUP = "overseer.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "overseer"


class Model(BaseModel):
    """Base of every spec part: camelCase on the wire, unknown fields are errors."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
    )


class StatusModel(Model):
    """Base of every status part: unknown fields are ignored.

    A newer operator may write status fields an older API server process does not
    know yet; reading them must not fail.
    """

    model_config = ConfigDict(extra="ignore")


def to_body(model: BaseModel) -> dict[str, Any]:
    """The JSON-ready dict of ``model`` as stored in Kubernetes: camelCase, no nulls."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


@dataclasses.dataclass(frozen=True)
class PrinterColumn:
    """One ``additionalPrinterColumns`` entry of a CRD."""

    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0
    format: str | None = None

    def to_dict(self) -> dict[str, Any]:
        column: dict[str, Any] = {"name": self.name, "jsonPath": self.json_path, "type": self.type}
        if self.description:
            column["description"] = self.description
        if self.priority:
            column["priority"] = self.priority
        if self.format:
            column["format"] = self.format
        return column


AGE_COLUMN = PrinterColumn(
    "Age", ".metadata.creationTimestamp", "date", "Time since the resource was created."
)


@dataclasses.dataclass(frozen=True)
class Kind:
    """Everything that names one custom resource kind, and its spec and status models."""

    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    spec: type[Model]
    status: type[StatusModel]
    description: str
    columns: tuple[PrinterColumn, ...]

    @property
    def group(self) -> str:
        return GROUP

    @property
    def version(self) -> str:
        return VERSION

    @property
    def api_version(self) -> str:
        return API_VERSION

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"

    def manifest(
        self,
        name: str,
        namespace: str,
        spec: Model,
        *,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """A complete object of this kind (without status), ready to apply."""
        if not isinstance(spec, self.spec):
            msg = f"{self.kind} needs a {self.spec.__name__} spec, not {type(spec).__name__}"
            raise TypeError(msg)
        metadata: dict[str, Any] = {"name": name, "namespace": namespace}
        if labels:
            metadata["labels"] = dict(labels)
        if annotations:
            metadata["annotations"] = dict(annotations)
        return {
            "apiVersion": API_VERSION,
            "kind": self.kind,
            "metadata": metadata,
            "spec": to_body(spec),
        }
