"""The cache of dataset indexes on disk: built once per dataset and policy version, then loaded.

An index is as sensitive as its dataset (brute-forcing low-entropy IDs is
cheap), so ``destroy`` goes with ``Registry.destroy`` of the same version.
"""

from __future__ import annotations

import contextlib
import fcntl
from pathlib import Path

from sandbox.intake.destruction import DestructionRecord, destroy_files
from sandbox.intake.policy import ExposurePolicy, policy_version
from sandbox.intake.registry import DatasetVersion
from sandbox.judge.fingerprints.build import build_for_dataset
from sandbox.judge.fingerprints.index import FingerprintIndex


class FingerprintStore:
    """Indexes cached under ``root/fingerprints/<dataset>/<version>-<policy version>.npz``.

    Built once per dataset version and policy version, loaded afterwards.
    Builders in several processes take a lock, so one builds and the others
    load; the file is written atomically, so a reader never sees half of it.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root) / "fingerprints"
        self._loaded: dict[Path, FingerprintIndex] = {}

    def path(self, version: DatasetVersion, policy: ExposurePolicy) -> Path:
        return self.root / version.name / f"{version.version}-{policy_version(policy)}.npz"

    def get(self, version: DatasetVersion, policy: ExposurePolicy) -> FingerprintIndex:
        path = self.path(version, policy)
        if path in self._loaded:
            return self._loaded[path]
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            index = None
            if path.is_file():
                with contextlib.suppress(ValueError):  # unreadable: build it again
                    index = FingerprintIndex.load(path)
            if index is None:
                index = build_for_dataset(version, policy)
                index.save(path)
        self._loaded[path] = index
        return index

    def destroy(self, dataset: str, version: str) -> DestructionRecord | None:
        """Destroy the cached indexes of one dataset version (as sensitive as the data).

        Call it with ``Registry.destroy`` of the same version; None when none was built.
        """
        folder = self.root / dataset
        paths = sorted(folder.glob(f"{version}-*.npz")) if folder.is_dir() else []
        for path in paths:
            self._loaded.pop(path, None)
        if not paths:
            return None
        return destroy_files(f"identifier fingerprints of {dataset} version {version}", paths)
