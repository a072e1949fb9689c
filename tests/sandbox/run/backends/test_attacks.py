"""The attack suite: analyst code really tries to break out, on runc and runsc.

Each test runs hostile code through the real Docker backend and asserts the
outcome. Network attempts target only documentation addresses (RFC 5737)
and reserved names; with no interface but loopback nothing leaves anyway.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sandbox.run.backends.base import ExitClass, Limits, MiB, RunSpec
from tests.support.engine import ROOT
from tests.support.jobs import make_job_dir, open_up, run_code, stdout_json

pytestmark = [pytest.mark.docker]

PROBE = """
import ctypes, errno, json, os, socket
results = {}
def attempt(name, fn):
    try:
        value = fn()
        results[name] = {"ok": True, "value": repr(value)[:200]}
    except OSError as e:
        results[name] = {"ok": False, "errno": e.errno, "error": type(e).__name__}
    except Exception as e:
        results[name] = {"ok": False, "errno": None, "error": type(e).__name__}
libc = ctypes.CDLL(None, use_errno=True)
def syscall(fn, *args):
    def call():
        if getattr(libc, fn)(*args) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        return 0
    return call
"""


def probe(body: str) -> str:
    return PROBE + textwrap.dedent(body) + "\nprint(json.dumps(results))\n"


# -- network ------------------------------------------------------------------


def test_no_network_of_any_kind(backend, tmp_path):
    result = run_code(
        backend,
        tmp_path,
        probe("""
        import urllib.request
        attempt("http", lambda: urllib.request.urlopen("http://192.0.2.10/", timeout=5).read())
        attempt("tcp_ip", lambda: socket.create_connection(("198.51.100.7", 443), timeout=5))
        attempt("udp_ip", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                .sendto(b"x", ("203.0.113.9", 53)))
        attempt("dns", lambda: socket.getaddrinfo("example.org", 80))
        attempt("raw", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
        attempt("packet", lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW))
        attempt("interfaces", lambda: [l.split(":")[0].strip()
                for l in open("/proc/net/dev").read().splitlines()[2:]])
        attempt("resolv", lambda: open("/etc/resolv.conf").read())
    """),
    )
    assert result.execution.exit_class == ExitClass.SUCCEEDED
    r = stdout_json(result)
    for name in ("http", "tcp_ip", "udp_ip", "dns", "raw", "packet"):
        assert not r[name]["ok"], f"{name} succeeded inside the sandbox"
    unreachable = {errno.ENETUNREACH, errno.EHOSTUNREACH}
    assert r["tcp_ip"]["errno"] in unreachable
    assert r["udp_ip"]["errno"] in unreachable
    assert r["raw"]["errno"] == errno.EPERM
    assert r["packet"]["errno"] in (errno.EPERM, errno.EAFNOSUPPORT)
    # Only loopback exists, and the resolver is loopback too (no host address).
    assert r["interfaces"]["value"] == repr(["lo"])
    assert "127.0.0.1" in r["resolv"]["value"]
    assert "10." not in r["resolv"]["value"].replace("127.0.0.1", "")


# -- filesystem ---------------------------------------------------------------


def test_read_only_everywhere_but_output_and_tmp(backend, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "view.parquet").write_bytes(b"PAR1")
    result = run_code(
        backend,
        tmp_path,
        probe("""
        attempt("root", lambda: open("/evil", "w").write("x"))
        attempt("etc", lambda: open("/etc/passwd", "a").write("x"))
        attempt("data_new", lambda: open("/data/evil", "w").write("x"))
        attempt("data_edit", lambda: open("/data/view.parquet", "r+b").write(b"x"))
        attempt("job", lambda: open("/job/main.py", "a").write("x"))
        attempt("output", lambda: open("/output/ok.txt", "w").write("fine"))
        attempt("tmp", lambda: open("/tmp/ok.txt", "w").write("fine"))
    """),
        data_dir=data,
    )
    r = stdout_json(result)
    for name in ("root", "etc", "data_new", "data_edit", "job"):
        assert not r[name]["ok"], f"write to {name} succeeded"
        assert r[name]["errno"] in (errno.EROFS, errno.EACCES, errno.EPERM)
    assert r["output"]["ok"] and r["tmp"]["ok"]
    assert (data / "view.parquet").read_bytes() == b"PAR1"
    assert sorted(os.listdir(data)) == ["view.parquet"]


@pytest.mark.parametrize("target", ["/output", "/tmp"])
def test_writing_past_the_caps_fails(backend, tmp_path, target):
    limits = Limits(
        output_bytes=8 * MiB, tmp_bytes=8 * MiB, wall_seconds=60, memory_bytes=512 * MiB
    )
    result = run_code(
        backend,
        tmp_path,
        probe(f'''
        def fill():
            with open("{target}/big", "wb") as f:
                for _ in range(32):
                    f.write(b"\\0" * (1024 * 1024))
                    f.flush()
                    os.fsync(f.fileno())
        attempt("fill", fill)
        attempt("size", lambda: os.path.getsize("{target}/big"))
    '''),
        limits=limits,
    )
    r = stdout_json(result)
    assert not r["fill"]["ok"]
    assert r["fill"]["errno"] in (errno.ENOSPC, errno.EFBIG)
    assert int(r["size"]["value"]) <= 8 * MiB
    if target == "/output":
        # What is collected stays within the cap too.
        assert result.collection.total_bytes <= 8 * MiB


# -- processes and resources ---------------------------------------------------


def test_fork_bomb_is_contained(backend, tmp_path):
    limits = Limits(pids=256, wall_seconds=10, memory_bytes=512 * MiB)
    result = run_code(
        backend,
        tmp_path,
        """
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
    """,
        limits=limits,
    )
    ex = result.execution
    assert ex.exit_class in (ExitClass.TIMED_OUT, ExitClass.RESOURCE_EXHAUSTED)
    assert ex.exit_class != ExitClass.SUCCEEDED
    if ex.pids_peak is not None:
        assert ex.pids_peak <= limits.pids


def test_memory_bomb_is_reported_as_oom(backend, tmp_path):
    limits = Limits(memory_bytes=256 * MiB, wall_seconds=60)
    result = run_code(
        backend,
        tmp_path,
        """
        hoard = []
        while True:
            hoard.append(bytearray(16 * 1024 * 1024))
    """,
        limits=limits,
    )
    assert result.execution.exit_class == ExitClass.OOM_KILLED
    assert result.execution.oom_killed


@pytest.mark.parametrize(
    "code",
    [
        "while True:\n    pass\n",
        "import time\ntime.sleep(3600)\n",
    ],
    ids=["busy-loop", "sleep"],
)
def test_timeout_kills_and_removes(backend, tmp_path, code, sandbox_containers):
    limits = Limits(wall_seconds=3, memory_bytes=256 * MiB)
    started = time.monotonic()
    result = run_code(backend, tmp_path, code, limits=limits)
    assert result.execution.exit_class == ExitClass.TIMED_OUT
    assert result.execution.timed_out
    assert time.monotonic() - started < 30
    assert not [n for n in sandbox_containers() if result.job_id in n]


# -- identity, secrets, privileges ----------------------------------------------


def test_no_secrets_no_socket_no_root(backend, tmp_path, monkeypatch):
    secret = "dsr-test-secret-7f3a9c"
    monkeypatch.setenv("DSR_GATEWAY_SECRET", secret)
    result = run_code(
        backend,
        tmp_path,
        probe("""
        def every_environ():
            found = []
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    try:
                        raw = open(f"/proc/{pid}/environ", "rb").read()
                        found.append(raw.decode(errors="replace"))
                    except OSError:
                        pass
            return found
        attempt("environ1", lambda: open("/proc/1/environ", "rb").read().decode(errors="replace"))
        attempt("all_environ", every_environ)
        attempt("os_environ", lambda: dict(os.environ))
        attempt("docker_sock", lambda: os.stat("/var/run/docker.sock"))
        attempt("docker_sock_run", lambda: os.stat("/run/docker.sock"))
        attempt("uid", lambda: (os.getuid(), os.geteuid(), os.getgid()))
        attempt("caps", lambda: [l for l in open("/proc/self/status") if l.startswith("CapEff")])
        attempt("mount", syscall("mount", b"none", b"/tmp", b"tmpfs", 0, None))
        attempt("unshare_user", syscall("unshare", 0x10000000))
        attempt("unshare_mnt", syscall("unshare", 0x00020000))
        import time
        child = os.fork()
        if child == 0:
            time.sleep(30)
            os._exit(0)
        attempt("ptrace_child", syscall("ptrace", 16, child, None, None))  # PTRACE_ATTACH
        attempt("ptrace_seize", syscall("ptrace", 0x4206, child, None, None))
        buf = ctypes.create_string_buffer(8)
        iov = (ctypes.c_void_p * 2)(ctypes.cast(buf, ctypes.c_void_p), 8)
        attempt("process_vm_readv", lambda: (
            libc.process_vm_readv(child, iov, 1, iov, 1, 0) >= 0 or
            (_ for _ in ()).throw(OSError(ctypes.get_errno(), "readv"))))
        attempt("io_uring", lambda: (
            libc.syscall(425, 8, buf) >= 0 or
            (_ for _ in ()).throw(OSError(ctypes.get_errno(), "io_uring_setup"))))
        os.kill(child, 9)
        clone_args = (ctypes.c_uint64 * 11)(0x10000000, 0, 0, 0, 17, 0, 0, 0, 0, 0, 0)
        def clone3_newuser():
            pid = libc.syscall(435, ctypes.byref(clone_args), 88)
            if pid == 0:
                os._exit(0)
            if pid < 0:
                raise OSError(ctypes.get_errno(), "clone3")
            return pid
        attempt("clone3_newuser", clone3_newuser)
        attempt("clone_newuser", lambda: (
            libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0) >= 0 or
            (_ for _ in ()).throw(OSError(ctypes.get_errno(), "clone"))))
        attempt("setuid0", lambda: os.setuid(0))
    """),
    )
    r = stdout_json(result)
    everything = result.execution.stdout.data.decode()
    assert secret not in everything
    assert "DSR_" not in r["os_environ"]["value"]
    assert not r["docker_sock"]["ok"] and not r["docker_sock_run"]["ok"]
    uid, euid, gid = eval(r["uid"]["value"])  # a tuple of ints we printed ourselves
    assert uid != 0 and euid != 0 and gid != 0
    assert r["caps"]["value"].endswith("0000000000000000\\n']")
    for name in (
        "mount",
        "unshare_user",
        "unshare_mnt",
        "ptrace_child",
        "ptrace_seize",
        "process_vm_readv",
        "io_uring",
        "clone3_newuser",
        "clone_newuser",
        "setuid0",
    ):
        assert not r[name]["ok"], f"{name} succeeded inside the sandbox"
        assert r[name]["errno"] in (errno.EPERM, errno.EACCES, errno.ENOSYS, errno.EINVAL)


# -- output tricks --------------------------------------------------------------


def test_output_tricks_are_refused(backend, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "secret.parquet").write_bytes(b"raw rows")
    result = run_code(
        backend,
        tmp_path,
        """
        import os
        os.symlink("/etc/passwd", "/output/passwd")
        os.symlink("/data/secret.parquet", "/output/rows")
        os.symlink("../../../../etc/shadow", "/output/up")
        open("/output/real.txt", "w").write("released")
        os.link("/output/real.txt", "/output/hardlink.txt")
        os.mkfifo("/output/pipe")
        os.makedirs("/output/sub/deeper")
        open("/output/sub/deeper/ok.csv", "w").write("a,b\\n")
        open("/output/..evil", "w").write("x")
    """,
        data_dir=data,
    )
    col = result.collection
    names = sorted(f.name for f in col.files)
    # The first of the two hard-linked names is a regular file; the second is a link.
    assert names == ["..evil", "real.txt", "sub/deeper/ok.csv"] or names == [
        "..evil",
        "hardlink.txt",
        "sub/deeper/ok.csv",
    ]
    kinds = sorted(r.kind for r in col.refused)
    # Under gVisor a FIFO lives inside the sandbox and never reaches the
    # volume; on runc it reaches it and is refused. Either way it is not taken.
    assert kinds in (
        ["fifo", "hardlink", "symlink", "symlink", "symlink"],
        ["hardlink", "symlink", "symlink", "symlink"],
    )
    out = tmp_path / "out"
    for p in out.rglob("*"):
        assert not p.is_symlink()
        assert p.is_dir() or p.is_file()
    assert not (out / "passwd").exists() and not (out / "rows").exists()
    for f in col.files:
        assert f.path.resolve().is_relative_to(out.resolve())
        assert b"root:" not in f.path.read_bytes()


def test_ten_thousand_tiny_files_are_capped(backend, tmp_path):
    limits = Limits(output_files=100, wall_seconds=120, memory_bytes=512 * MiB)
    result = run_code(
        backend,
        tmp_path,
        """
        for i in range(10_000):
            with open(f"/output/f{i:05d}.txt", "w") as f:
                f.write("x")
    """,
        limits=limits,
    )
    assert result.execution.exit_class == ExitClass.SUCCEEDED
    col = result.collection
    assert len(col.files) == 100
    assert not col.complete
    assert len(list((tmp_path / "out").iterdir())) == 100


def test_one_huge_file_is_refused(backend, tmp_path):
    limits = Limits(
        output_bytes=48 * MiB, output_file_bytes=8 * MiB, wall_seconds=60, memory_bytes=512 * MiB
    )
    result = run_code(
        backend,
        tmp_path,
        """
        with open("/output/huge.bin", "wb") as f:
            f.write(b"\\1" * (40 * 1024 * 1024))
        open("/output/small.txt", "w").write("ok")
    """,
        limits=limits,
    )
    col = result.collection
    assert [f.name for f in col.files] == ["small.txt"]
    assert [r.reason for r in col.refused] == ["file larger than the per-file cap"]
    assert not (tmp_path / "out" / "huge.bin").exists()


def test_sparse_file_cannot_flood_collection(backend, tmp_path):
    # A sparse file takes no tmpfs space but reads as a stream 25 times the cap
    # (the fsize ulimit stops anything larger at the source).
    limits = Limits(
        output_bytes=8 * MiB, output_file_bytes=4 * MiB, wall_seconds=60, memory_bytes=512 * MiB
    )
    result = run_code(
        backend,
        tmp_path,
        """
        with open("/output/sparse.bin", "wb") as f:
            f.truncate(200 * 1024 * 1024)
        try:
            with open("/output/sparse2.bin", "wb") as f:
                f.truncate(50 * 1024 ** 3)
        except OSError:
            pass
    """,
        limits=limits,
    )
    col = result.collection
    assert [f.size for f in col.files] in ([], [0])  # sparse2 stays empty at most
    assert col.refused_total >= 1
    assert not col.complete
    assert sum(p.stat().st_size for p in (tmp_path / "out").rglob("*") if p.is_file()) == 0


def test_ten_megabytes_of_stdout_are_capped(backend, tmp_path):
    limits = Limits(log_bytes=64 * 1024, wall_seconds=60, memory_bytes=512 * MiB)
    result = run_code(
        backend,
        tmp_path,
        """
        import sys
        chunk = "y" * 1023 + "\\n"
        for _ in range(10 * 1024):
            sys.stdout.write(chunk)
        sys.stderr.write("e" * 200_000)
    """,
        limits=limits,
    )
    ex = result.execution
    assert ex.exit_class == ExitClass.SUCCEEDED
    assert len(ex.stdout.data) == 64 * 1024 and ex.stdout.truncated
    assert ex.stdout.total_bytes == 10 * 1024 * 1024
    assert len(ex.stderr.data) == 64 * 1024 and ex.stderr.total_bytes == 200_000
    assert set(ex.stderr.data) == {ord("e")}  # the streams are kept apart


# -- what analysis code needs still works -----------------------------------------


def test_threads_and_numeric_libraries_work(backend, tmp_path):
    # The seccomp profile must not stop threads (OpenBLAS, DuckDB and pandas
    # start them): under gVisor a refused clone3 once made every thread fail.
    result = run_code(
        backend,
        tmp_path,
        """
        import json, threading
        import numpy, pandas, duckdb
        box = []
        workers = [threading.Thread(target=box.append, args=(i,)) for i in range(8)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        con = duckdb.connect(config={"threads": 4})
        n = con.sql("SELECT count(*) FROM range(2000000)").fetchall()[0][0]
        m = float(numpy.linalg.inv(numpy.eye(50) * 2).trace())
        print(json.dumps({"threads": len(box), "duckdb": n, "numpy": m,
                          "pandas": int(pandas.Series(range(10)).sum())}))
    """,
    )
    assert result.execution.exit_class == ExitClass.SUCCEEDED, result.execution.stderr.data
    assert stdout_json(result) == {"threads": 8, "duckdb": 2000000, "numpy": 25.0, "pandas": 45}


# -- cleanup --------------------------------------------------------------------


def test_every_sandbox_is_gone_after_its_run(backend, tmp_path, sandbox_containers):
    result = run_code(backend, tmp_path, "raise SystemExit(3)\n")
    assert result.execution.exit_class == ExitClass.FAILED
    assert result.execution.exit_code == 3
    assert not [n for n in sandbox_containers() if result.job_id in n]


CRASHER = """
import sys
from pathlib import Path
from sandbox.run.backends.base import Limits, RunSpec
from sandbox.run.backends.docker import DockerBackend
from sandbox.settings import SandboxSettings
backend = DockerBackend(SandboxSettings(runtime=sys.argv[1]))
spec = RunSpec(job_id=sys.argv[2], job_dir=Path(sys.argv[3]), limits=Limits(wall_seconds=600))
handle = backend.prepare(spec)
print("started", flush=True)
backend.run(handle)
"""


def test_crash_of_the_caller_mid_run_is_cleaned_by_label(
    backend, runtime, tmp_path, docker_client, sandbox_containers
):
    job_id = f"crash-{runtime}-{os.getpid()}"
    job_dir = make_job_dir(tmp_path, "import time\ntime.sleep(600)\n")
    caller = subprocess.Popen(
        [sys.executable, "-c", CRASHER, runtime, job_id, str(job_dir)],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        assert caller.stdout is not None
        assert caller.stdout.readline().strip() == b"started"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            running = docker_client.containers.list(
                filters={"label": f"dsr.job={job_id}", "status": "running"}
            )
            if any(c.labels.get("dsr.role") == "job" for c in running):
                break
            time.sleep(0.2)
        else:
            pytest.fail("the job container never started")
        os.killpg(caller.pid, signal.SIGKILL)  # the caller dies mid-run
        caller.wait(timeout=30)
        assert [n for n in sandbox_containers() if job_id in n]  # left behind ...
        # Only this job's: the engine is shared with other gateways and test runs.
        removed = backend.reconcile(only={job_id})
        assert removed == [job_id]
        assert not [n for n in sandbox_containers() if job_id in n]  # ... and gone
    finally:
        if caller.poll() is None:
            os.killpg(caller.pid, signal.SIGKILL)
            caller.wait(timeout=30)
        if caller.stdout is not None:
            caller.stdout.close()
        backend.reconcile(only={job_id})


def test_reconcile_keeps_what_it_is_told_to_keep(backend, tmp_path, sandbox_containers):
    job_dir = make_job_dir(tmp_path, "print(1)\n")
    spec = RunSpec(job_id=f"keep-{backend.runtime}-{os.getpid()}", job_dir=job_dir)
    handle = backend.prepare(spec)
    try:
        assert backend.reconcile(keep={spec.job_id}, only={spec.job_id}) == []
        assert [n for n in sandbox_containers() if spec.job_id in n]
    finally:
        backend.cleanup(handle)
    assert not [n for n in sandbox_containers() if spec.job_id in n]


def test_directories_the_sandbox_cannot_read_are_refused(backend, tmp_path):
    from sandbox.errors import SpecError

    job_dir = tmp_path / "private"
    job_dir.mkdir(mode=0o700)
    with pytest.raises(SpecError, match="readable by the sandbox uid"):
        backend.prepare(RunSpec(job_id="private", job_dir=job_dir))


def test_data_views_are_readable(backend, tmp_path):
    import duckdb

    data = tmp_path / "data"
    data.mkdir()
    duckdb.sql("SELECT i AS id, i % 7 AS g FROM range(10000) t(i)").write_parquet(
        str(data / "people.parquet")
    )
    open_up(data)
    result = run_code(
        backend,
        tmp_path,
        """
        import json
        from sandbox.sdk import connect
        con = connect()
        n = con.sql("SELECT count(*) FROM people").fetchall()[0][0]
        try:
            con.sql("SELECT * FROM read_csv('/etc/passwd')").fetchall()
            escaped = True
        except Exception:
            escaped = False
        print(json.dumps({"n": n, "escaped": escaped}))
    """,
        data_dir=data,
    )
    assert stdout_json(result) == {"n": 10000, "escaped": False}


def test_the_job_dir_is_what_runs(tmp_path):
    # Guard for the helpers themselves: the job file really is the code given.
    job = make_job_dir(tmp_path, "print('x')\n")
    assert (job / "main.py").read_text() == "print('x')\n"
    assert Path(job).stat().st_mode & 0o005 == 0o005
