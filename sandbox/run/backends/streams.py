"""What the Docker backend reads from a run while it happens: output streams and resource use.

``RawStream`` is a hijacked engine connection (attach to the job, ``tar`` in
the collector) read as frames; ``pump`` splits the job's frames into two
``CappedBuffer``s (stdout, stderr), which keep the first bytes and count the
rest; ``Usage`` polls the engine's stats for peak memory and processes.
Nothing here believes the job: sizes are counted, never read from it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import docker.errors
import requests.exceptions
from docker.utils.socket import frames_iter

from sandbox.run.backends.base import CapturedStream

DOCKER_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException)


class CappedBuffer:
    """Keeps the first ``limit`` bytes written and counts the rest."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._parts: list[bytes] = []
        self._kept = 0
        self.total = 0

    def write(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self._limit - self._kept
        if room > 0:
            part = chunk[:room]
            self._parts.append(part)
            self._kept += len(part)

    def captured(self) -> CapturedStream:
        return CapturedStream(data=b"".join(self._parts), total_bytes=self.total)


class Usage:
    """Peak memory and pids of a running container, polled from the engine's stats."""

    INTERVAL_SECONDS = 0.25

    def __init__(self) -> None:
        self.memory_peak = 0
        self.memory_failcnt = 0
        self.pids_peak = 0
        self.stop = threading.Event()

    def poll(self, api: Any, container_id: str) -> None:
        while not self.stop.is_set():
            try:
                stats = api.stats(container_id, stream=False, one_shot=True)
            except DOCKER_ERRORS:
                return  # the container is gone
            mem = stats.get("memory_stats") or {}
            peak = int(mem.get("max_usage") or mem.get("usage") or 0)
            self.memory_peak = max(self.memory_peak, peak)
            self.memory_failcnt = max(self.memory_failcnt, int(mem.get("failcnt") or 0))
            pids = int((stats.get("pids_stats") or {}).get("current") or 0)
            self.pids_peak = max(self.pids_peak, pids)
            self.stop.wait(self.INTERVAL_SECONDS)


class RawStream:
    """A hijacked engine connection (attach, exec) read as frames and closed for sure."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock

    def frames(self) -> Iterator[tuple[int, bytes]]:
        """(stream id, bytes) pairs: 1 is stdout, 2 is stderr."""
        try:
            yield from frames_iter(self._sock, tty=False)  # type: ignore[no-untyped-call]
        except (OSError, *DOCKER_ERRORS):
            return  # the connection ends when the container stops

    def stdout(self) -> Iterator[bytes]:
        for stream_id, data in self.frames():
            if stream_id == 1 and data:
                yield data

    def close(self) -> None:
        for sock in (self._sock, getattr(self._sock, "_sock", None)):
            if sock is None:
                continue
            with contextlib.suppress(OSError):
                sock.close()


def pump(stream: RawStream, stdout: CappedBuffer, stderr: CappedBuffer) -> None:
    """Copy the job's frames into its two buffers until the connection ends."""
    for stream_id, data in stream.frames():
        (stderr if stream_id == 2 else stdout).write(data)
