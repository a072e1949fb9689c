"""The evaluator of the HE products, run as a sandbox container's main process.

``python3 -m sandbox.container.he.server /he``. The gateway (``gateway.he.sandboxed``)
keeps one such container running; consumers' bytes are parsed here, by
SEAL's C++ deserializer inside gVisor with no network, and never in the
process that holds the store and the keys. The container sees two
directories:

- ``/he/in`` (read-only): what the trusted side wrote for it. ``tables/*.npz``
  (per verification product: the claim elements of each bucket, never a raw
  identifier), ``models/*.json`` (a scoring product's coefficients) and
  ``contexts/*`` (consumers' public contexts, already through the wire-level
  secret-key check).
- ``/he/io`` (writable): the spool. A request is ``req/<id>.json`` (renamed
  into place last) naming its query bytes ``req/<id>.q``; the answer is
  ``ans/<id>`` (the encrypted answer) or ``err/<id>.json`` (an error class
  name and a plain message, never the bytes received), both renamed into
  place; then the request's files are removed.

Request operations: ``verify`` (table, context, bucket, bucket bits, product),
``score`` (model, context) and ``check`` (a candidate context in the spool,
checked for a kind; the answer is empty). Parsed contexts are cached by file
name, size and mtime, at most ``CACHED_CONTEXTS`` of them (a scoring context
takes some 230 MB parsed); tables and models likewise, more of them. One
request at a time: TenSEAL holds the GIL, so threads would not help.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sandbox.container.he import score, verify
from sandbox.container.he.errors import HEError, HEInputError, MalformedInput
from sandbox.container.he.params import MAX_SCORE_CONTEXT_BYTES, PublicContext
from sandbox.container.he.protocol import VerificationQuery

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
MAX_REQUEST_BYTES = 64 * 1024
MAX_QUERY_BYTES = MAX_SCORE_CONTEXT_BYTES  # a context under ``check``; queries are smaller
CACHED_CONTEXTS = 4
CACHED_PRODUCTS = 64
BUSY_POLL_SECONDS = 0.002
IDLE_POLL_SECONDS = 0.02
BUSY_WINDOW_SECONDS = 5.0
LOADERS: dict[str, Callable[[bytes], PublicContext]] = {
    "verify": verify.load_context,
    "score": score.load_context,
}


class _Cache:
    """A small LRU keyed by (file name, size, mtime)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._held: OrderedDict[str, tuple[tuple[int, int], Any]] = OrderedDict()

    def get(self, path: Path, load: Callable[[Path], Any]) -> Any:
        st = path.stat()
        stamp = (st.st_size, st.st_mtime_ns)
        held = self._held.get(path.name)
        if held is not None and held[0] == stamp:
            self._held.move_to_end(path.name)
            return held[1]
        self._held.pop(path.name, None)
        while len(self._held) >= self.size:
            self._held.popitem(last=False)
        value = load(path)
        self._held[path.name] = (stamp, value)
        return value


def read_nofollow(path: Path, cap: int) -> bytes:
    """A regular file's bytes (never through a symlink), refused over ``cap``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as e:  # ELOOP for a symlink
        raise MalformedInput("a request's file is not a regular file") from e
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise MalformedInput("a request's file is not a regular file")
        data = f.read(cap + 1)
    if len(data) > cap:
        raise MalformedInput("a request's file is over its size cap")
    return data


def write_atomic(directory: Path, name: str, data: bytes) -> None:
    tmp = directory / f".{name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.rename(tmp, directory / name)


def load_table(path: Path) -> verify.VerificationTable:
    with np.load(path, allow_pickle=False) as held:
        buckets = {
            int(k[5:]): np.asarray(held[k], dtype=np.uint64)
            for k in held.files
            if k.startswith("rows_")
        }
        return verify.VerificationTable(
            str(held["product_id"]), int(held["bucket_bits"]), buckets, int(held["subjects"])
        )


def load_model(path: Path) -> score.LinearModel:
    doc = json.loads(path.read_text())
    return score.LinearModel(
        tuple(float(c) for c in doc["coefficients"]),
        float(doc["intercept"]),
        float(doc["resolution"]),
    )


class Server:
    def __init__(self, root: Path) -> None:
        self.inp, self.io = root / "in", root / "io"
        self.req, self.ans, self.err = self.io / "req", self.io / "ans", self.io / "err"
        self.contexts = _Cache(CACHED_CONTEXTS)
        self.products = _Cache(CACHED_PRODUCTS)

    def _in(self, folder: str, name: Any) -> Path:
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise MalformedInput("a request names a file it may not")
        return self.inp / folder / name

    def _context(self, kind: str, name: Any) -> PublicContext:
        path = self._in("contexts", name)
        loaded: PublicContext = self.contexts.get(
            path, lambda p: LOADERS[kind](read_nofollow(p, MAX_QUERY_BYTES))
        )
        if loaded.purpose != kind:  # the same file asked for as the other kind
            raise MalformedInput("the context was checked for another product kind")
        return loaded

    def handle(self, request: dict[str, Any], query: bytes) -> bytes:
        op = request.get("op")
        if op == "verify":
            table = self.products.get(self._in("tables", request.get("table")), load_table)
            question = VerificationQuery(
                str(request["product_id"]),
                int(request["bucket_bits"]),
                int(request["bucket"]),
                query,
            )
            return verify.evaluate(table, self._context("verify", request.get("context")), question)
        if op == "score":
            model = self.products.get(self._in("models", request.get("model")), load_model)
            return score.evaluate(model, self._context("score", request.get("context")), query)
        if op == "check" and request.get("kind") in LOADERS:
            LOADERS[request["kind"]](query)
            return b""
        raise MalformedInput("unknown request")

    def serve_one(self, req_id: str) -> None:
        request_path, query_path = self.req / f"{req_id}.json", self.req / f"{req_id}.q"
        try:
            request = json.loads(read_nofollow(request_path, MAX_REQUEST_BYTES))
            if not isinstance(request, dict):
                raise MalformedInput("a request is a JSON object")
            query = read_nofollow(query_path, MAX_QUERY_BYTES)
            write_atomic(self.ans, req_id, self.handle(request, query))
        except Exception as e:  # every failure is answered, never fatal to the server
            known = isinstance(e, HEError)
            if not known:  # for whoever reads the container's stderr; never sent back
                traceback.print_exc()
            error = type(e).__name__ if isinstance(e, HEInputError) else "internal"
            message = str(e) if known else "the evaluator could not serve this request"
            body = json.dumps({"error": error, "message": message[:500]}).encode()
            write_atomic(self.err, f"{req_id}.json", body)
        finally:
            for path in (request_path, query_path):
                path.unlink(missing_ok=True)

    def pending(self) -> list[str]:
        with os.scandir(self.req) as entries:
            found = [
                (e.stat(follow_symlinks=False).st_mtime_ns, e.name[:-5])
                for e in entries
                if e.name.endswith(".json") and NAME.fullmatch(e.name)
            ]
        return [name for _, name in sorted(found)]

    def run(self) -> None:
        last = time.monotonic()
        while True:
            work = self.pending()
            for req_id in work:
                self.serve_one(req_id)
            now = time.monotonic()
            if work:
                last = now
                continue
            busy = now - last < BUSY_WINDOW_SECONDS
            time.sleep(BUSY_POLL_SECONDS if busy else IDLE_POLL_SECONDS)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    Server(Path(args[0] if args else "/he")).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
