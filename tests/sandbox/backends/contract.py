"""The Backend contract, as tests every backend must pass.

Subclass :class:`BackendContract` and provide a ``backend`` fixture; the
methods here are the protocol's docstrings turned into checks.

The engine may be shared with other gateways and test runs: job ids carry
this run's suffix, and listings are asserted about this test's own ids only.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from sandbox.backends.base import Backend, ExitClass, Limits, MiB, RunSpec, execute
from tests.conftest import make_job_dir

LIMITS = Limits(wall_seconds=60, memory_bytes=256 * MiB)
RUN = f"{os.getpid()}-{secrets.token_hex(3)}"  # two test runs on one engine never collide


def spec(tmp_path: Path, code: str, job_id: str) -> RunSpec:
    return RunSpec(job_id=f"{job_id}-{RUN}", job_dir=make_job_dir(tmp_path, code), limits=LIMITS)


class BackendContract:
    def test_is_a_backend(self, backend):
        assert isinstance(backend, Backend)

    def test_success_and_failure_are_results_not_exceptions(self, backend, tmp_path):
        ok = execute(
            backend, spec(tmp_path / "a", "print('hi')\n", "contract-ok"), tmp_path / "a-out"
        )
        assert ok.execution.exit_class == ExitClass.SUCCEEDED
        assert ok.execution.exit_code == 0
        assert ok.execution.stdout.data == b"hi\n"
        bad = execute(backend, spec(tmp_path / "b", "1/0\n", "contract-bad"), tmp_path / "b-out")
        assert bad.execution.exit_class == ExitClass.FAILED
        assert bad.execution.exit_code == 1
        assert b"ZeroDivisionError" in bad.execution.stderr.data

    def test_prepare_is_idempotent(self, backend, tmp_path):
        s = spec(tmp_path, "print(1)\n", "contract-prepare")
        first = backend.prepare(s)
        try:
            assert backend.prepare(s) == first
        finally:
            backend.cleanup(first)

    def test_run_and_collect_are_idempotent(self, backend, tmp_path):
        code = "import os\nopen('/output/r.bin', 'wb').write(os.urandom(32))\n"
        s = spec(tmp_path, code, "contract-once")
        handle = backend.prepare(s)
        try:
            first = backend.run(handle)
            assert backend.run(handle) == first  # the job did not run twice
            col = backend.collect(handle, tmp_path / "out")
            assert [f.name for f in col.files] == ["r.bin"]
            assert backend.collect(handle, tmp_path / "out") == col
        finally:
            backend.cleanup(handle)

    def test_prepare_after_a_run_gives_a_fresh_sandbox(self, backend, tmp_path):
        s = spec(tmp_path, "open('/output/x', 'w').write('1')\n", "contract-fresh")
        first = backend.prepare(s)
        try:
            backend.run(first)
            second = backend.prepare(s)
            assert second.backend_id != first.backend_id
            assert backend.run(second).exit_class == ExitClass.SUCCEEDED
            col = backend.collect(second, tmp_path / "out2")
            assert [f.name for f in col.files] == ["x"]
        finally:
            backend.cleanup(first)
            backend.cleanup(second)

    def test_cleanup_is_idempotent_and_run_after_it_reports(self, backend, tmp_path):
        handle = backend.prepare(spec(tmp_path, "print(1)\n", "contract-clean"))
        backend.cleanup(handle)
        backend.cleanup(handle)
        assert backend.run(handle).exit_class == ExitClass.BACKEND_ERROR
        col = backend.collect(handle, tmp_path / "out")
        assert col.files == () and not col.complete
        assert handle.job_id not in backend.sandboxes()

    def test_sandboxes_lists_prepared_runs_and_reconcile_removes_them(self, backend, tmp_path):
        listed = backend.prepare(spec(tmp_path / "a", "print(1)\n", "contract-list"))
        kept = backend.prepare(spec(tmp_path / "b", "print(1)\n", "contract-kept"))
        try:
            assert {listed.job_id, kept.job_id} <= set(backend.sandboxes())
            # Only what the caller names is touched (others' sandboxes on a shared
            # engine never are), and ``keep`` wins.
            ours = {listed.job_id, kept.job_id, f"contract-absent-{RUN}"}
            assert backend.reconcile(keep={kept.job_id}, only=ours) == [listed.job_id]
            assert listed.job_id not in backend.sandboxes()
            assert kept.job_id in backend.sandboxes()
            assert backend.reconcile(only={listed.job_id}) == []
        finally:
            backend.cleanup(listed)  # still fine
            backend.cleanup(kept)
        assert not {listed.job_id, kept.job_id} & set(backend.sandboxes())

    def test_outputs_of_one_run_never_reach_another(self, backend, tmp_path):
        writer = spec(tmp_path / "w", "open('/output/leak', 'w').write('a')\n", "contract-w")
        execute(backend, writer, tmp_path / "w-out")
        reader = spec(
            tmp_path / "r", "import os\nprint(sorted(os.listdir('/output')))\n", "contract-r"
        )
        result = execute(backend, reader, tmp_path / "r-out")
        assert result.execution.stdout.data == b"[]\n"
