"""The stored versions of each dataset's exposure policy (append-only, named by content)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sandbox.errors import PolicyError
from sandbox.fsutil import write_atomic
from sandbox.intake.policy.grading import GradingTable, default_grading
from sandbox.intake.policy.model import ExposurePolicy
from sandbox.intake.policy.parse import (
    check_against_schema,
    check_grading,
    parse_policy,
    policy_version,
)


@dataclass(frozen=True)
class PolicyVersion:
    dataset: str
    version: str
    policy: ExposurePolicy
    text: str  # the YAML as the provider wrote it
    author: str
    applied_at: datetime
    path: Path


class PolicyStore:
    """Versioned exposure policies under ``root/policies/<dataset>/``.

    ``grading``: the grading table a policy must obey to be applied (the repository's
    ``policies/grading.yaml`` by default).
    """

    def __init__(self, root: Path, grading: GradingTable | None = None) -> None:
        self._root = root / "policies"
        self._grading = grading if grading is not None else default_grading()

    def apply(
        self, text: str, columns: dict[str, str], *, dataset: str, author: str
    ) -> PolicyVersion:
        """Validate ``text`` against the dataset's columns and store it as a new version.

        Applying a policy identical in content to a stored version returns that
        version. Nothing is stored when the policy is invalid or breaks the grading table.
        """
        policy = parse_policy(text, source=f"policy for {dataset!r}")
        check_against_schema(policy, columns, dataset)
        check_grading(policy, self._grading, text)
        version = policy_version(policy)
        directory = self._root / dataset
        meta_path = directory / f"{version}.json"
        if meta_path.exists():
            return self._load(meta_path)
        directory.mkdir(parents=True, exist_ok=True)
        applied = datetime.now(UTC)
        meta = {
            "dataset": dataset,
            "version": version,
            "author": author,
            "applied_at": applied.isoformat(),
            "text": text,
        }
        write_atomic(meta_path, json.dumps(meta, ensure_ascii=False, indent=2).encode())
        return PolicyVersion(dataset, version, policy, text, author, applied, meta_path)

    def _load(self, meta_path: Path) -> PolicyVersion:
        meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
        policy = parse_policy(meta["text"])
        return PolicyVersion(
            meta["dataset"],
            meta["version"],
            policy,
            meta["text"],
            meta["author"],
            datetime.fromisoformat(meta["applied_at"]),
            meta_path,
        )

    def versions(self, dataset: str) -> list[PolicyVersion]:
        """Every stored version, oldest first."""
        directory = self._root / dataset
        found = [self._load(p) for p in directory.glob("*.json")] if directory.is_dir() else []
        return sorted(found, key=lambda v: v.applied_at)

    def get(self, dataset: str, version: str | None = None) -> PolicyVersion:
        """A stored version, or the newest one."""
        if version is not None:
            path = self._root / dataset / f"{version}.json"
            if not path.is_file() or not version.isalnum():
                raise PolicyError(f"no policy version {version!r} for dataset {dataset!r}")
            return self._load(path)
        versions = self.versions(dataset)
        if not versions:
            raise PolicyError(f"dataset {dataset!r} has no exposure policy")
        return versions[-1]
