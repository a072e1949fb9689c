"""A gateway served over real HTTP in a thread of the test process (uvicorn, no Docker,
no job runtime), for the ``dsr`` REST clients run in process with typer's runner.

``serve(app)`` yields the base URL once the server answers, and stops it after.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from tests.support.live import free_port


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` on a free loopback port until the block ends; its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:  # readiness, not a timing guess: the flag uvicorn sets
            thread.join(0.01)
            assert thread.is_alive(), "the server thread ended before it started"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
