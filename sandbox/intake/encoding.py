"""A provider's CSV bytes as text: strict decoding in chunks, a UTF-8 copy, the delimiter.

Part of stage 0 (``ingest``). ``stream`` reads a file in fixed-size chunks,
feeding the bytes to a hash and decoding them strictly, and says on which
line decoding first fails; ``utf8_text`` gives DuckDB a UTF-8 file to read
(the source itself when it is UTF-8, else a transcoded copy in staging:
strict UTF-8, else strict GB18030, when the provider named no encoding);
``sniff_delimiter`` picks the delimiter from the header line. Memory stays
bounded whatever the file's size; errors name the line, never a value.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from pathlib import Path
from typing import IO

from sandbox.errors import RegistryError

UTF8 = ("utf-8", "utf-8-sig")
CHUNK = 1 << 20
DELIMITER_CANDIDATES = (",", "\t", ";", "|")


def codec_of(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError as e:
        raise RegistryError(f"unknown encoding {encoding!r}") from e


def stream(
    path: Path,
    codec: str | None,
    *,
    feed: Callable[[bytes], object] | None = None,
    out: IO[str] | None = None,
) -> int | None:
    """Read ``path`` in chunks into ``feed``, decoding strictly with ``codec`` into ``out``.

    Returns the line of the first byte ``codec`` cannot decode (None when all
    can). Past that byte, ``feed`` still gets the rest; ``out`` gets no more.
    """
    decoder = codecs.getincrementaldecoder(codec)("strict") if codec else None
    lines, bad = 0, None
    with path.open("rb") as f:
        while decoder is not None or feed is not None:
            chunk = f.read(CHUNK)
            if feed is not None:
                feed(chunk)
            if decoder is not None:
                try:
                    text = decoder.decode(chunk, not chunk)
                except UnicodeDecodeError as e:
                    # Bytes a decoder holds back between chunks are never a
                    # newline, so counting newlines in what it saw is exact.
                    seen = e.object if isinstance(e.object, bytes) else b""
                    decoder, bad = None, lines + 1 + seen[: e.start].count(b"\n")
                    if out is not None:
                        return bad
                else:
                    lines += chunk.count(b"\n")
                    if out is not None:
                        out.write(text)
            if not chunk:
                break
    return bad


def utf8_text(
    source: Path, codec: str | None, bad_utf8_line: int | None, staging: Path
) -> tuple[Path, str]:
    """A UTF-8 file holding the CSV's text, and the encoding the source was read in."""
    if codec in (None, *UTF8) and bad_utf8_line is None:
        with source.open("rb") as f:
            bom = f.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8
        return source, codec or ("utf-8-sig" if bom else "utf-8")
    if codec in UTF8:
        raise RegistryError(f"{source.name}: does not decode as {codec} at line {bad_utf8_line}")
    target, used = staging / "source.utf8.csv", codec or "gb18030"
    with target.open("w", encoding="utf-8", newline="") as out:
        bad = stream(source, used, out=out)
    if bad is not None and codec is not None:
        raise RegistryError(f"{source.name}: does not decode as {codec} at line {bad}")
    if bad is not None:
        raise RegistryError(
            f"{source.name}: encoding not detected: not UTF-8 (line {bad_utf8_line}) "
            f"nor GB18030 (line {bad}); name it with encoding="
        )
    return target, used


def sniff_delimiter(path: Path) -> str:
    """The candidate seen most often in the header line (',' when none is).

    Not left to DuckDB: its sniffer falls back to one column when rows
    disagree, which would accept a malformed file.
    """
    with path.open("rb") as f:
        header = f.readline(CHUNK).decode("utf-8", errors="replace")
    best = max(DELIMITER_CANDIDATES, key=header.count)
    return best if header.count(best) else ","
