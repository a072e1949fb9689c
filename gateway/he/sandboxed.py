"""Where a product call is evaluated: in a sandbox container (default) or in process.

Consumers' contexts and ciphertexts are hostile bytes handed to SEAL's C++
deserializer. ``Sandboxed`` keeps that out of the gateway's process: a
long-lived container runs ``sandbox.container.he.server`` as its main process, hardened
as job containers are (``DockerBackend.hardened``: no network, read-only
root, no capabilities, no-new-privileges, the sandbox's seccomp profile,
uid 1000, memory and pids limits, gVisor when the settings say so). It sees:

- ``<data_dir>/he/sandbox/in`` read-only: verification tables (``.npz`` of
  claim elements per bucket, written here when a table is built), models
  (coefficients as JSON) and copies of registered public contexts. No raw
  identifier, no grant key, no token, no store.
- ``<data_dir>/he/sandbox/io`` writable: the spool of requests and answers
  (protocol in ``sandbox.container.he.server``).

The parent ``he/sandbox`` is mode 0700, so other host users see neither.
The host writes spool files with ``O_EXCL | O_NOFOLLOW`` (a planted symlink
is refused, never followed) and reads answers with ``O_NOFOLLOW``, as
regular files, under a size cap. Calls are serialised on one lock (the
server is single-threaded). A container that died is started again and the
call retried once; no answer within ``TIMEOUT_SECONDS`` removes the
container and is a 503. Before a context is handed over, the checks that
need no SEAL run here (size, no secret key): a context with a secret key is
never written anywhere.

``InProcess`` evaluates in the gateway's own process; it is for
environments without a container engine only (``he_evaluator="process"``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import secrets
import shutil
import stat
import threading
import time
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from gateway.he.contexts import CAPS, ContextStore, input_error, parse
from gateway.he.errors import HEUnavailable
from gateway.he.model import Kind
from sandbox.container.he import errors as he_errors
from sandbox.container.he import score, verify
from sandbox.container.he.params import PublicContext, check_before_parsing
from sandbox.container.he.protocol import VerificationQuery
from sandbox.container.he.verify import VerificationTable
from sandbox.errors import SandboxError
from sandbox.run.backends.docker import DockerBackend
from sandbox.run.backends.hardening import LABEL_MANAGED, LABEL_ROLE
from sandbox.settings import SandboxSettings

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 30.0
POLL_SECONDS = 0.002
ALIVE_CHECK_SECONDS = 0.5
MAX_ANSWER_BYTES = 8 * 2**20
MAX_ERROR_BYTES = 4096
MEMORY_BYTES = 2 * 2**30  # a few parsed CKKS contexts (~230 MB each) and the tables
PIDS = 64
CPUS = 1.0
FILE_BYTES = 64 * 2**20  # the largest file the server may write (an answer, ~2 MiB)
ROLE = "he-evaluator"
# The error classes the server may name; anything else is an internal failure.
INPUT_ERRORS: dict[str, type[he_errors.HEInputError]] = {
    cls.__name__: cls
    for cls in (
        he_errors.InputTooLarge,
        he_errors.MalformedInput,
        he_errors.SecretKeyPresent,
        he_errors.WrongScheme,
        he_errors.WeakParameters,
        he_errors.MissingKeys,
        he_errors.EvaluationFailed,
    )
}


class Evaluator(Protocol):
    def check_context(self, kind: Kind, data: bytes) -> PublicContext | None:
        """Check a consumer's context for ``kind``; raise the gateway's error if refused.
        May return the parsed context (in process) for the context cache."""

    def evaluate_verify(
        self, table: VerificationTable, table_key: str, context_id: str, query: VerificationQuery
    ) -> bytes:
        """The encrypted answer; an ``HEInputError`` for the consumer's bad bytes."""

    def evaluate_score(
        self, product_id: str, model: score.LinearModel, context_id: str, query: bytes
    ) -> bytes:
        """The encrypted score; an ``HEInputError`` for the consumer's bad bytes."""

    def forget(self, product_id: str) -> None:
        """Drop what is held for a withdrawn product."""

    def close(self) -> None:
        """Stop what runs; idempotent."""


class InProcess:
    """Evaluation in the gateway's process: for environments without an engine only."""

    def __init__(self, contexts: ContextStore) -> None:
        self.contexts = contexts

    def check_context(self, kind: Kind, data: bytes) -> PublicContext | None:
        return parse(kind, data)

    def evaluate_verify(
        self, table: VerificationTable, table_key: str, context_id: str, query: VerificationQuery
    ) -> bytes:
        return verify.evaluate(table, self.contexts.load(context_id, Kind.VERIFY), query)

    def evaluate_score(
        self, product_id: str, model: score.LinearModel, context_id: str, query: bytes
    ) -> bytes:
        return score.evaluate(model, self.contexts.load(context_id, Kind.SCORE), query)

    def forget(self, product_id: str) -> None:
        pass

    def close(self) -> None:
        pass


def write_new(path: Path, data: bytes) -> None:
    """Write a new file (mode 0644): refused if anything, a symlink included, is there."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb", closefd=False) as f:
            f.write(data)
    finally:
        os.close(fd)


def publish(path: Path, data: bytes) -> None:
    """Write ``path`` atomically (a fresh temporary name, then rename)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    write_new(tmp, data)
    os.replace(tmp, path)


def read_spool(path: Path, cap: int) -> bytes:
    """A file the container wrote: a regular file with one link, never through a
    symlink, at most ``cap`` bytes; anything else is refused."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise HEUnavailable("the evaluator's answer is not a plain file") from e
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            raise HEUnavailable("the evaluator's answer is not a plain file")
        data = f.read(cap + 1)
    if len(data) > cap:
        raise HEUnavailable("the evaluator's answer is over its size cap")
    return data


def table_bytes(table: VerificationTable) -> bytes:
    """The table as ``.npz``: claim elements per bucket and the product's facts."""
    arrays: dict[str, Any] = {f"rows_{b}": v for b, v in table.buckets.items()}
    arrays |= {"product_id": np.array(table.product_id), "bucket_bits": table.bucket_bits}
    arrays["subjects"] = table.subjects
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Sandboxed:
    """Evaluation in a long-lived, hardened sandbox container (module docstring)."""

    def __init__(self, root: Path, contexts: ContextStore, settings: SandboxSettings) -> None:
        self.root, self.contexts, self.settings = root, contexts, settings
        self.inp, self.io = root / "in", root / "io"
        self.name = "dsr-he-" + _digest(str(root.resolve()))
        self._lock = threading.Lock()
        self._backend: DockerBackend | None = None
        self._container: Any = None

    # -- files --------------------------------------------------------------------

    def _in_dirs(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        for sub in ("in", "in/tables", "in/models", "in/contexts", "io"):
            (self.root / sub).mkdir(exist_ok=True)
            os.chmod(self.root / sub, 0o755)  # noqa: S103  # the container reads; only we write

    def _dirs(self) -> None:
        """The directories, and an empty spool (called with no container running)."""
        self._in_dirs()
        for sub in ("req", "ans", "err"):
            path = self.io / sub
            shutil.rmtree(path, ignore_errors=True)  # what a previous container left
            path.mkdir()
            try:  # the container's uid writes here
                os.chown(path, self.settings.job_uid, self.settings.job_uid)
                os.chmod(path, 0o700)
            except PermissionError:  # not root: the 0700 parent keeps other users out
                os.chmod(path, 0o777)  # noqa: S103

    def _put(
        self, folder: str, name: str, data: bytes | None = None, src: Path | None = None
    ) -> str:
        path = self.inp / folder / name
        if not path.exists():
            self._in_dirs()
            if src is not None:
                data = src.read_bytes()
            assert data is not None
            publish(path, data)
        return name

    def forget(self, product_id: str) -> None:
        for folder in ("tables", "models"):
            for path in (self.inp / folder).glob(f"{product_id}-*"):
                path.unlink(missing_ok=True)

    # -- the container --------------------------------------------------------------

    def _engine(self) -> DockerBackend:
        if self._backend is None:
            try:
                self._backend = DockerBackend(self.settings)
            except SandboxError as e:
                raise HEUnavailable(f"the evaluation sandbox cannot start: {e}") from e
        return self._backend

    def _remove(self) -> None:
        self._container = None
        if self._backend is not None:
            with contextlib.suppress(Exception):  # gone already, or the engine is
                self._backend.client.api.remove_container(self.name, force=True, v=True)

    def _start(self) -> None:
        from docker.types import Mount, Ulimit

        backend = self._engine()
        self._remove()  # a leftover of an earlier gateway on this data dir
        self._dirs()
        args = backend.hardened(self.settings.job_uid, MEMORY_BYTES, PIDS, CPUS)
        args |= {
            "name": self.name,
            "command": ["python3", "-m", "sandbox.container.he.server", "/he"],
            "mounts": [
                Mount(target="/he/in", source=str(self.inp), type="bind", read_only=True),
                Mount(target="/he/io", source=str(self.io), type="bind"),
            ],
            "tmpfs": {"/tmp": "rw,nosuid,nodev,noexec,mode=1777,size=16m"},
            "ulimits": [
                Ulimit(name="nofile", soft=256, hard=256),
                Ulimit(name="fsize", soft=FILE_BYTES, hard=FILE_BYTES),
                Ulimit(name="core", soft=0, hard=0),
            ],
            "labels": {LABEL_MANAGED: "true", LABEL_ROLE: ROLE},
        }
        try:
            self._container = backend.client.containers.create(**args)
            self._container.start()
        except Exception as e:  # the engine's errors, whatever their class
            self._remove()
            raise HEUnavailable(f"the evaluation sandbox cannot start: {e}") from e

    def _alive(self) -> bool:
        try:
            self._container.reload()
            return bool(self._container.status in ("created", "running"))
        except Exception:
            return False

    def container_id(self) -> str | None:
        return None if self._container is None else str(self._container.id)

    def close(self) -> None:
        with self._lock:
            if self._container is not None:
                self._remove()

    # -- one request -------------------------------------------------------------------

    def _ask(self, request: dict[str, Any], payload: bytes) -> bytes:
        with self._lock:
            if self._container is None:
                self._start()
            for attempt in (1, 2):
                outcome = self._once(request, payload)
                if outcome is not None:
                    return outcome
                log.warning(
                    "the HE evaluation sandbox died (attempt %d); starting it again", attempt
                )
                self._start()
            raise HEUnavailable("the evaluation sandbox failed twice on this call")

    def _once(self, request: dict[str, Any], payload: bytes) -> bytes | None:
        """The answer, or None if the container died before answering."""
        req_id = secrets.token_hex(16)
        req, ans, err = (
            self.io / "req",
            self.io / "ans" / req_id,
            self.io / "err" / f"{req_id}.json",
        )
        publish(req / f"{req_id}.q", payload)
        publish(req / f"{req_id}.json", json.dumps(request).encode())
        deadline = time.monotonic() + TIMEOUT_SECONDS
        next_check = time.monotonic() + ALIVE_CHECK_SECONDS
        try:
            while True:
                if os.path.lexists(ans):
                    return read_spool(ans, MAX_ANSWER_BYTES)
                if os.path.lexists(err):
                    raise self._error(read_spool(err, MAX_ERROR_BYTES))
                now = time.monotonic()
                if now > deadline:
                    self._remove()
                    raise HEUnavailable("the evaluation sandbox did not answer in time")
                if now > next_check:
                    if not self._alive():
                        return None
                    next_check = now + ALIVE_CHECK_SECONDS
                time.sleep(POLL_SECONDS)
        finally:
            for path in (ans, err, req / f"{req_id}.q", req / f"{req_id}.json"):
                with contextlib.suppress(OSError):
                    path.unlink()

    @staticmethod
    def _error(body: bytes) -> Exception:
        try:
            doc = json.loads(body)
            name, message = str(doc["error"]), str(doc["message"])[:500]
        except (ValueError, TypeError, KeyError):
            return HEUnavailable("the evaluation sandbox gave an unreadable error")
        message = "".join(c for c in message if c.isprintable())
        if name in INPUT_ERRORS:
            return INPUT_ERRORS[name](message)
        return HEUnavailable("the evaluation sandbox could not serve this call")

    # -- the evaluator ------------------------------------------------------------------

    def _context(self, context_id: str) -> str:
        try:
            return self._put("contexts", context_id, src=self.contexts.path(context_id))
        except OSError as e:
            raise HEUnavailable(f"context {context_id} cannot be handed to the sandbox") from e

    def check_context(self, kind: Kind, data: bytes) -> PublicContext | None:
        try:
            checked = check_before_parsing(data, CAPS[kind])  # no secret key leaves this line
            self._ask({"op": "check", "kind": kind.value}, checked)
        except he_errors.HEInputError as e:
            raise input_error(e) from e
        return None

    def evaluate_verify(
        self, table: VerificationTable, table_key: str, context_id: str, query: VerificationQuery
    ) -> bytes:
        name = f"{table.product_id}-{_digest(table_key)}.npz"
        if not (self.inp / "tables" / name).exists():
            self.forget(table.product_id)  # an older version of the view
            self._put("tables", name, table_bytes(table))
        request = {
            "op": "verify",
            "table": name,
            "context": self._context(context_id),
            "product_id": query.product_id,
            "bucket_bits": query.bucket_bits,
            "bucket": query.bucket,
        }
        return self._ask(request, bytes(query.ciphertext))

    def evaluate_score(
        self, product_id: str, model: score.LinearModel, context_id: str, query: bytes
    ) -> bytes:
        doc = {"coefficients": model.coefficients, "intercept": model.intercept}
        body = json.dumps(doc | {"resolution": model.resolution}, sort_keys=True).encode()
        name = self._put(
            "models", f"{product_id}-{hashlib.sha256(body).hexdigest()[:16]}.json", body
        )
        request = {"op": "score", "model": name, "context": self._context(context_id)}
        return self._ask(request, query)


def make_evaluator(mode: str, root: Path, contexts: ContextStore) -> Evaluator:
    """The evaluator the settings ask for (``he_evaluator``)."""
    if mode == "process":
        return InProcess(contexts)
    return Sandboxed(root, contexts, SandboxSettings())
