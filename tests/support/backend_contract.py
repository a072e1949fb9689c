"""The Backend contract, as tests every backend must pass.

Two abstract classes, the protocol's docstrings turned into checks:

- :class:`FunctionalContract`: what a run does (results, idempotence, listing
  and reconciling, the limits a host can enforce, collection). Every backend
  passes it: the fake (``tests.support.fakebackend``) and Docker on runc and
  runsc (``tests/sandbox/run/backends/test_contract.py``).
- :class:`IsolationContract`: what a sandbox keeps out (no network, a
  read-only root and read-only ``/job`` and ``/data``, a non-root uid without
  capabilities). Only a real isolating backend passes it: Docker on both
  runtimes. The attack suite (``tests/sandbox/run/backends/test_attacks.py``)
  goes further.

Subclass one and provide a ``backend`` fixture. The engine may be shared with
other gateways and test runs: job ids carry this run's suffix, and listings are
asserted about this test's own ids only.
"""

from __future__ import annotations

import errno
import os
import secrets
import time
from pathlib import Path

import duckdb

from sandbox.run.backends.base import Backend, ExitClass, Limits, MiB, RunSpec, execute
from tests.support.jobs import make_job_dir, open_up, run_code, stdout_json

LIMITS = Limits(wall_seconds=60, memory_bytes=256 * MiB)
RUN = f"{os.getpid()}-{secrets.token_hex(3)}"  # two test runs on one engine never collide


def spec(tmp_path: Path, code: str, job_id: str, limits: Limits = LIMITS) -> RunSpec:
    return RunSpec(job_id=f"{job_id}-{RUN}", job_dir=make_job_dir(tmp_path, code), limits=limits)


def limited(**caps: float) -> Limits:
    return Limits(**{"wall_seconds": 60, "memory_bytes": 256 * MiB, **caps})  # type: ignore[arg-type]


class FunctionalContract:
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

    def test_the_exit_status_is_the_jobs(self, backend, tmp_path):
        result = run_code(backend, tmp_path, "raise SystemExit(3)\n", job_id=f"c-exit-{RUN}")
        assert result.execution.exit_class == ExitClass.FAILED
        assert result.execution.exit_code == 3 and not result.execution.timed_out
        assert result.job_id not in backend.sandboxes()

    def test_the_wall_clock_limit_kills_the_job(self, backend, tmp_path):
        started = time.monotonic()
        result = run_code(
            backend,
            tmp_path,
            "import time\nprint('started', flush=True)\ntime.sleep(3600)\n",
            limits=limited(wall_seconds=3),
            job_id=f"c-timeout-{RUN}",
        )
        assert result.execution.exit_class == ExitClass.TIMED_OUT and result.execution.timed_out
        assert result.execution.stdout.data == b"started\n"
        assert time.monotonic() - started < 30
        assert result.job_id not in backend.sandboxes()

    def test_stdout_and_stderr_are_kept_apart_and_capped(self, backend, tmp_path):
        code = """
        import sys
        for _ in range(1024):
            sys.stdout.write("y" * 1023 + "\\n")
        sys.stderr.write("e" * 100_000)
        """
        result = run_code(
            backend, tmp_path, code, limits=limited(log_bytes=64 * 1024), job_id=f"c-log-{RUN}"
        )
        ex = result.execution
        assert ex.exit_class == ExitClass.SUCCEEDED
        assert len(ex.stdout.data) == 64 * 1024 and ex.stdout.truncated
        assert ex.stdout.total_bytes == 1024 * 1024 and set(ex.stdout.data) == set(b"y\n")
        assert len(ex.stderr.data) == 64 * 1024 and ex.stderr.total_bytes == 100_000
        assert set(ex.stderr.data) == {ord("e")}

    def test_no_file_grows_past_the_file_size_limit(self, backend, tmp_path):
        code = """
        import json
        try:
            with open("/output/big.bin", "wb") as f:
                f.write(b"x" * (3 * 1024 * 1024))
                f.flush()
            print(json.dumps({"errno": None}))
        except OSError as e:
            print(json.dumps({"errno": e.errno}))
        """
        result = run_code(
            backend, tmp_path, code, limits=limited(fsize_bytes=1 * MiB), job_id=f"c-fsize-{RUN}"
        )
        assert stdout_json(result) == {"errno": errno.EFBIG}

    def test_collection_is_capped_in_files_and_bytes(self, backend, tmp_path):
        code = """
        for i in range(30):
            open(f"/output/f{i:02d}.txt", "w").write("x")
        open("/output/huge.bin", "wb").write(b"1" * (3 * 1024 * 1024))
        """
        caps = limited(output_files=10, output_file_bytes=2 * MiB)
        result = run_code(backend, tmp_path, code, limits=caps, job_id=f"c-caps-{RUN}")
        col = result.collection
        assert len(col.files) == 10 and not col.complete
        assert len(list((tmp_path / "out").iterdir())) == 10
        assert "huge.bin" not in {f.name for f in col.files}
        assert col.refused_total == 21  # by count or by size, in the archive's order

    def test_only_regular_files_are_collected(self, backend, tmp_path):
        code = """
        import os
        open("/output/ok.txt", "w").write("fine")
        os.symlink("/job/main.py", "/output/link")
        os.mkdir("/output/sub")
        open("/output/sub/inner.txt", "w").write("deep")
        """
        result = run_code(backend, tmp_path, code, job_id=f"c-kinds-{RUN}")
        col = result.collection
        assert result.execution.exit_class == ExitClass.SUCCEEDED, result.execution.stderr.data
        assert sorted(f.name for f in col.files) == ["ok.txt", "sub/inner.txt"]
        assert [r.kind for r in col.refused] == ["symlink"]
        assert (tmp_path / "out" / "ok.txt").read_text() == "fine"

    def test_the_job_reads_data_and_job_and_writes_tmp(self, backend, tmp_path):
        data = tmp_path / "data"
        data.mkdir()
        duckdb.sql("COPY (SELECT range AS n FROM range(7)) TO '{}'".format(data / "nums.parquet"))
        open_up(data)
        code = """
        import json, os
        from sandbox.sdk import connect
        open("/tmp/scratch.txt", "w").write("t")
        print(json.dumps({
            "rows": connect().sql("SELECT count(*) FROM nums").fetchall()[0][0],
            "data": sorted(os.listdir("/data")),
            "job": sorted(os.listdir("/job")),
            "tmp": open("/tmp/scratch.txt").read(),
        }))
        """
        result = run_code(backend, tmp_path, code, data_dir=data, job_id=f"c-data-{RUN}")
        assert stdout_json(result) == {
            "rows": 7, "data": ["nums.parquet"], "job": ["main.py"], "tmp": "t"
        }  # fmt: skip


class IsolationContract:
    """What a sandbox keeps out: Docker's alone (the fake isolates nothing)."""

    def test_no_network(self, backend, tmp_path):
        code = """
        import json, socket
        found = {"interfaces": sorted(name for _, name in socket.if_nameindex())}
        try:
            socket.create_connection(("192.0.2.1", 80), timeout=3)
            found["connect"] = "connected"
        except OSError as e:
            found["connect"] = type(e).__name__
        print(json.dumps(found))
        """
        r = stdout_json(run_code(backend, tmp_path, code, job_id=f"i-net-{RUN}"))
        assert r["interfaces"] == ["lo"] and r["connect"] != "connected"

    def test_read_only_but_output_and_tmp(self, backend, tmp_path):
        data = tmp_path / "data"
        data.mkdir()
        (data / "view.parquet").write_bytes(b"PAR1")
        code = """
        import json
        found = {}
        for path in ("/evil", "/etc/passwd", "/data/view.parquet", "/data/new", "/job/main.py",
                     "/output/ok", "/tmp/ok"):
            try:
                open(path, "a").write("x")
                found[path] = 0
            except OSError as e:
                found[path] = e.errno
        print(json.dumps(found))
        """
        r = stdout_json(run_code(backend, tmp_path, code, data_dir=data, job_id=f"i-ro-{RUN}"))
        assert r.pop("/output/ok") == 0 and r.pop("/tmp/ok") == 0
        assert all(e in (errno.EROFS, errno.EACCES, errno.EPERM) for e in r.values()), r
        assert (data / "view.parquet").read_bytes() == b"PAR1"

    def test_an_unprivileged_uid_without_capabilities(self, backend, tmp_path):
        code = """
        import json, os
        status = dict(line.split(":", 1) for line in open("/proc/self/status"))
        print(json.dumps({
            "uids": [os.getuid(), os.geteuid(), os.getgid()],
            "caps": [status[k].strip() for k in ("CapEff", "CapPrm", "CapBnd")],
            "no_new_privs": status.get("NoNewPrivs", "1").strip(),  # gVisor omits it
        }))
        """
        r = stdout_json(run_code(backend, tmp_path, code, job_id=f"i-uid-{RUN}"))
        assert 0 not in r["uids"]
        assert r["caps"][:2] == ["0000000000000000"] * 2
        assert r["no_new_privs"] == "1"
