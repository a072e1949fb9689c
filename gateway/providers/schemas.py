"""Request and response bodies of the providers' routes.

The upload (``POST /v1/datasets``) is ``multipart/form-data``; its fields are
listed in :data:`UPLOAD_FIELDS`. A policy is sent as its YAML text with the
content type ``application/yaml``; every response is JSON.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from sandbox.intake.policy import PolicyVersion
from sandbox.intake.registry import DatasetVersion

# The multipart form of an upload: field -> (required, description).
UPLOAD_FIELDS: dict[str, tuple[bool, str]] = {
    "file": (True, "the CSV or Parquet file (its name's suffix gives the format)"),
    "name": (True, "the dataset's name: a lowercase letter, then letters, digits or _"),
    "entity_column": (True, "the column naming the data subject (a person, an enterprise)"),
    "encoding": (False, "the CSV's text encoding (detected when absent)"),
    "delimiter": (False, "the CSV's delimiter (detected when absent)"),
    "source_format": (False, "csv or parquet, when the file name does not say"),
    "rename_columns": (
        False,
        "true: store column names that break the naming rules under the safe names a "
        "refusal proposes (the renames are recorded); false (default): refuse them",
    ),
}


class ColumnOut(BaseModel):
    name: str
    type: str  # DuckDB type name


class RenamedOut(BaseModel):
    original: str  # the name in the provider's file
    stored: str  # the name the dataset stores


class VersionOut(BaseModel):
    version: str
    rows: int
    columns: list[ColumnOut]
    entity_column: str
    source: str
    source_format: str
    source_encoding: str | None
    sha256: str
    provider: str
    registered_at: datetime
    renamed: list[RenamedOut] = []

    @classmethod
    def of(cls, v: DatasetVersion) -> VersionOut:
        return cls(
            version=v.version,
            rows=v.row_count,
            columns=[ColumnOut(name=c.name, type=c.type) for c in v.columns],
            entity_column=v.entity_column,
            source=v.source,
            source_format=v.source_format,
            source_encoding=v.source_encoding,
            sha256=v.source_sha256,
            provider=v.provider,
            registered_at=v.registered_at,
            renamed=[RenamedOut(original=a, stored=b) for a, b in v.renamed],
        )


class RegisteredOut(BaseModel):
    name: str
    created: bool  # False: the same bytes were registered before under this name
    version: VersionOut


class DatasetSummary(BaseModel):
    name: str
    provider: str
    newest: str  # the newest version
    rows: int
    columns: list[ColumnOut]

    @classmethod
    def of(cls, v: DatasetVersion) -> DatasetSummary:
        return cls(
            name=v.name,
            provider=v.provider,
            newest=v.version,
            rows=v.row_count,
            columns=[ColumnOut(name=c.name, type=c.type) for c in v.columns],
        )


class DatasetOut(BaseModel):
    name: str
    provider: str
    versions: list[VersionOut]  # oldest first; the last is the newest


class PolicyOut(BaseModel):
    dataset: str
    version: str
    author: str
    applied_at: datetime
    text: str  # the YAML as the provider wrote it
    policy: dict[str, Any]  # the same, validated

    @classmethod
    def of(cls, p: PolicyVersion) -> PolicyOut:
        return cls(
            dataset=p.dataset,
            version=p.version,
            author=p.author,
            applied_at=p.applied_at,
            text=p.text,
            policy=p.policy.model_dump(mode="json", by_alias=True),
        )


class PolicyVersionOut(BaseModel):
    version: str
    author: str
    applied_at: datetime

    @classmethod
    def of(cls, p: PolicyVersion) -> PolicyVersionOut:
        return cls(version=p.version, author=p.author, applied_at=p.applied_at)


class PolicyDiffOut(BaseModel):
    dataset: str
    from_version: str
    to_version: str
    diff: str  # unified diff of the YAML texts; empty when they are equal
