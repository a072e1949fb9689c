"""Stage 0 over HTTP: providers register datasets and apply exposure policies.

The registry (``sandbox.intake.registry``) and the policy store (``sandbox.intake.policy``)
live on the filesystem under the gateway's ``data_dir``; the audit log lives
in the metadata store. Each change here is one filesystem step and one audit
event appended in a write transaction; when the transaction fails, a version
that this call created is removed again, so nothing stays unaudited.

Rules (each ``check_*`` raises, each ``can_*`` answers):

- A dataset name belongs to the provider who first registered it: no other
  account may register a version under it.
- A provider reads and governs only its own datasets; administrators and
  auditors read every dataset; the policy of a dataset is readable by its
  provider, administrators, auditors and operators (the catalogue shows it).

Audit details carry names, versions, counts, column names and types and
hashes: never a cell value.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import Engine

from gateway.audit import append
from gateway.errors import ConfigurationError, GatewayError
from gateway.identity import Role
from sandbox.errors import NamesRefused, PolicyError, RegistryError
from sandbox.intake.policy import ExposurePolicy, PolicyStore, PolicyVersion, parse_policy
from sandbox.intake.registry import NAME_RE, DatasetVersion, Registry

MAX_UPLOAD_BYTES = 2 * 1024**3  # app.state.upload_limit overrides it
POLICY_VERSION_RE = re.compile(r"^[0-9a-f]{16}$")


# -- errors (they know nothing of HTTP; gateway.app maps them) -----------------------


class ProviderError(GatewayError):
    """A dataset cannot be registered or governed as asked (bad file, bad upload)."""


class UnknownDataset(ProviderError):
    """No dataset, or no policy version, by that name."""


class DatasetForbidden(ProviderError):
    """The caller may not register, read or govern this dataset."""


class UploadTooLarge(ProviderError):
    """The upload is larger than the gateway accepts."""


class ColumnNamesRefused(ProviderError):
    """The file's column names break the naming rules; ``problems`` lists each one with
    its position, the reason and a safe name to use instead."""

    def __init__(self, message: str, problems: list[dict[str, object]]) -> None:
        super().__init__(message)
        self.problems = problems


class InvalidPolicy(ProviderError):
    """The policy was refused; ``problems`` names each field and its line."""

    def __init__(self, message: str, problems: list[str]) -> None:
        super().__init__(message)
        self.problems = problems


# -- the service -----------------------------------------------------------------------


@dataclass(frozen=True)
class Registered:
    dataset: DatasetVersion
    created: bool  # False when the same bytes were already registered under the name


class ProviderService:
    """Datasets and policies under one ``data_dir``; see the module docstring."""

    def __init__(self, registry: Registry, policies: PolicyStore, engine: Engine) -> None:
        self.registry = registry
        self.policies = policies
        self.engine = engine

    # rules

    def owner(self, name: str) -> str | None:
        """The provider who registered ``name`` first (None for an unknown name)."""
        versions = self._versions(name)
        return min(versions, key=lambda v: v.registered_at).provider if versions else None

    def can_register(self, account: str, name: str) -> bool:
        """Rule: a name is free, or every version under it was registered by ``account``."""
        return all(v.provider == account for v in self._versions(name))

    def check_register(self, account: str, name: str) -> None:
        """Rule: a name is free, or every version under it was registered by ``account``."""
        if not self.can_register(account, name):
            raise DatasetForbidden(f"the dataset {name!r} belongs to another provider")

    def can_read(self, account: str, roles: Iterable[Role], name: str) -> bool:
        """Rule: administrators and auditors read every dataset; providers their own."""
        roles = set(roles)
        if roles & {Role.ADMIN, Role.AUDITOR}:
            return True
        return Role.PROVIDER in roles and self.owner(name) == account

    def check_read(self, account: str, roles: Iterable[Role], name: str) -> DatasetVersion:
        """Rule: administrators and auditors read every dataset; providers their own.

        Returns the newest version of the dataset."""
        newest = self.newest(name)
        if not self.can_read(account, roles, name):
            raise DatasetForbidden(f"the dataset {name!r} belongs to another provider")
        return newest

    def can_read_policy(self, account: str, roles: Iterable[Role], name: str) -> bool:
        """Rule: a policy is readable by its dataset's provider, administrators, auditors
        and operators (the catalogue shows what is exposed)."""
        roles = set(roles)
        return bool(roles & {Role.OPERATOR}) or self.can_read(account, roles, name)

    def check_read_policy(self, account: str, roles: Iterable[Role], name: str) -> None:
        """Rule: a policy is readable by its dataset's provider, administrators, auditors
        and operators (the catalogue shows what is exposed)."""
        self.newest(name)
        if not self.can_read_policy(account, roles, name):
            raise DatasetForbidden(f"the dataset {name!r} belongs to another provider")

    def check_govern(self, account: str, name: str) -> DatasetVersion:
        """Rule: only the provider of a dataset changes its policy. Returns the newest version."""
        newest = self.newest(name)
        if self.owner(name) != account:
            raise DatasetForbidden(f"only the provider of {name!r} may change its policy")
        return newest

    # reads

    def newest(self, name: str) -> DatasetVersion:
        versions = self._versions(name)
        if not versions:
            raise UnknownDataset(f"no dataset named {name!r}")
        return versions[-1]

    def versions(self, name: str) -> list[DatasetVersion]:
        return self._versions(name)

    def visible(self, account: str, roles: Iterable[Role]) -> list[DatasetVersion]:
        """The newest version of each dataset the caller may read."""
        roles = set(roles)
        return [self.newest(n) for n in self.registry.names() if self.can_read(account, roles, n)]

    def policy(self, name: str, version: str | None = None) -> PolicyVersion:
        self.newest(name)
        if version is not None and not POLICY_VERSION_RE.match(version):
            raise UnknownDataset(f"no policy version {version!r} for dataset {name!r}")
        try:
            return self.policies.get(name, version)
        except PolicyError as e:
            raise UnknownDataset(str(e)) from e

    def policy_versions(self, name: str) -> list[PolicyVersion]:
        self.newest(name)
        return self.policies.versions(name)

    def diff(self, name: str, old: str, new: str) -> str:
        """A unified diff of two stored versions' YAML texts."""
        a, b = self.policy(name, old), self.policy(name, new)
        lines = difflib.unified_diff(
            a.text.splitlines(keepends=True),
            b.text.splitlines(keepends=True),
            fromfile=f"{name}/{old}",
            tofile=f"{name}/{new}",
        )
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)

    # changes

    def register(
        self,
        path: Path,
        *,
        name: str,
        entity_column: str,
        provider: str,
        encoding: str | None = None,
        source_format: str | None = None,
        delimiter: str | None = None,
        rename_columns: bool = False,
    ) -> Registered:
        """Register ``path`` as a version of ``name`` for ``provider`` and audit it.

        The conversion runs outside any transaction (it can take minutes and must
        not hold the store's write lock); the ownership rule is checked again in
        the transaction that appends the event."""
        if not NAME_RE.match(name):
            raise ProviderError(
                f"{name!r} is not a valid dataset name (a lowercase letter, then up to 62 "
                "lowercase letters, digits or underscores)"
            )
        self.check_register(provider, name)
        if encoding is not None and not _text_encoding(encoding):
            raise ProviderError(f"{encoding[:40]!r} is not a text encoding (utf-8, gb18030, ...)")
        known = {v.version for v in self._versions(name)}
        try:
            dataset = self.registry.register(
                path,
                name=name,
                entity_column=entity_column,
                provider=provider,
                encoding=encoding,
                source_format=source_format,
                delimiter=delimiter,
                rename_columns=rename_columns,
            )
        except NamesRefused as e:
            raise ColumnNamesRefused(str(e).replace(str(path), path.name), e.problems) from e
        except RegistryError as e:  # the upload's own name, never where the gateway keeps it
            raise ProviderError(str(e).replace(str(path), path.name)) from e
        except UnicodeError as e:  # a codec that fails on its own terms (utf-16 without a BOM)
            named = encoding or "UTF-8 or GB18030"
            raise ProviderError(f"{path.name}: does not decode as {named}") from e
        created = dataset.version not in known
        try:
            with self.engine.begin() as conn:
                self.check_register(provider, name)  # another provider may have raced us
                append(
                    conn,
                    "dataset.registered",
                    provider,
                    datasets=[name],
                    detail={
                        "name": name,
                        "version": dataset.version,
                        "rows": dataset.row_count,
                        "columns": [{"name": c.name, "type": c.type} for c in dataset.columns],
                        "entity_column": dataset.entity_column,
                        # the file's own names as escaped text: they broke the rules
                        "renamed": [[ascii(a)[:200], b] for a, b in dataset.renamed],
                        "source_format": dataset.source_format,
                        "sha256": dataset.source_sha256,
                        "created": created,
                    },
                )
        except BaseException:
            if created:  # not audited, so not kept
                with contextlib.suppress(RegistryError, OSError):
                    self.registry.destroy(name, dataset.version)
            raise
        return Registered(dataset, created)

    def apply_policy(self, name: str, text: str, author: str) -> PolicyVersion:
        """Validate ``text`` against the newest version's columns, store it and audit it."""
        with self.engine.begin() as conn:
            dataset = self.check_govern(author, name)
            known = {p.version for p in self.policies.versions(name)}
            try:
                parsed = _parse(text, name)
                if parsed.entity_column != dataset.entity_column:
                    raise PolicyError(
                        f"policy for {name!r} does not fit the dataset",
                        [
                            f"entity_column: the dataset's entity column is "
                            f"{dataset.entity_column!r}, not {parsed.entity_column!r}"
                        ],
                    )
                columns = {c.name: c.type for c in dataset.columns}
                applied = self.policies.apply(text, columns, dataset=name, author=author)
            except PolicyError as e:
                message = str(e).split("\n", 1)[0]
                raise InvalidPolicy(message, e.problems or [message]) from e
            created = applied.version not in known
            try:
                append(
                    conn,
                    "policy.applied",
                    author,
                    datasets=[name],
                    detail={
                        "dataset": name,
                        "version": applied.version,
                        "author": author,
                        "dataset_version": dataset.version,
                        "created": created,
                    },
                )
            except BaseException:
                if created:
                    applied.path.unlink(missing_ok=True)
                raise
        return applied

    def _versions(self, name: str) -> list[DatasetVersion]:
        try:
            return self.registry.versions(name)
        except RegistryError as e:  # not a valid name
            raise UnknownDataset(str(e)) from e


def _text_encoding(encoding: str) -> bool:
    """Whether ``encoding`` names a codec that decodes bytes to text (not rot13, hex, zlib)."""
    try:
        io.TextIOWrapper(io.BytesIO(), encoding=encoding)
    except (LookupError, ValueError):
        return False
    return True


def _parse(text: str, name: str) -> ExposurePolicy:
    """``parse_policy``, with YAML nested beyond the parser's reach refused like bad YAML."""
    source = f"policy for {name!r}"
    try:
        return parse_policy(text, source=source)
    except RecursionError as e:
        problem = f"{source} is not valid YAML: it nests too deeply"
        raise PolicyError(problem, [problem]) from e


def provider_service(app: FastAPI) -> ProviderService:
    """The app's provider service (``app.state.provider_service``, built by ``create_app``)."""
    service: ProviderService | None = getattr(app.state, "provider_service", None)
    if service is None:
        raise ConfigurationError("the application has no provider service (see create_app)")
    return service
