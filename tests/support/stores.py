"""The metadata store's two backends for tests: a SQLite file, or a database in a
throwaway PostgreSQL cluster.

The cluster is made with the installed PostgreSQL binaries (``initdb``; as
root it runs as the ``postgres`` system user, since initdb refuses root),
listens only on a Unix socket in its own tmp dir, and is stopped and removed
at the end. ``cluster_problem`` says why one cannot be made; the fixtures
(``postgres_cluster``, ``store_url`` in ``tests/conftest.py``) skip with it, or
under CI (``CI=true``) fail.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
from pathlib import Path

import pytest

BACKENDS = ("sqlite", "postgresql")
CLUSTER_USER = "postgres"  # the system user that owns the cluster when we run as root


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(problem: str | None) -> None:
    """Skip (or, under CI, fail) with ``problem`` unless it is None."""
    if problem is None:
        return
    if in_ci():
        pytest.fail(f"CI needs PostgreSQL: {problem}", pytrace=False)
    pytest.skip(problem)


def postgres_bindir() -> Path | None:
    """The newest installed PostgreSQL's bin directory (Debian layout or PATH)."""
    versions = [Path(p).parent.parent.name for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    found = sorted((int(v), f"/usr/lib/postgresql/{v}/bin/initdb") for v in versions if v.isdigit())
    if found:
        return Path(found[-1][1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class Cluster:
    """A throwaway PostgreSQL cluster on a Unix socket (see the module docstring)."""

    def __init__(self, bindir: Path, base: Path, as_user: str | None) -> None:
        self.bindir, self.base, self.as_user = bindir, base, as_user
        self.data, self.socket = base / "data", base / "socket"
        self.log = base / "postgres.log"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", self.as_user, "--"] if self.as_user else []
        command = [*prefix, str(self.bindir / args[0]), *args[1:]]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{args[0]} failed ({done.returncode}): {done.stderr[-2000:]}\n{log}"
            )
        return done

    def start(self) -> None:
        self.socket.mkdir()
        if self.as_user:
            entry = pwd.getpwnam(self.as_user)
            for path in (self.base, self.socket):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self.base.chmod(0o700)
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions",
        )  # fmt: skip
        options = (
            f"-c listen_addresses='' -c unix_socket_directories='{self.socket}' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=100"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.socket}"

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(host=str(self.socket), user="postgres", dbname="postgres") as conn:
            conn.autocommit = True
            conn.execute(sql)


def cluster_problem() -> str | None:
    if postgres_bindir() is None:
        return "PostgreSQL is not installed (apt-get install postgresql)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e '.[dev]')"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(CLUSTER_USER)
        except KeyError:
            return f"running as root and there is no {CLUSTER_USER!r} user to run initdb as"
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing"
    return None
