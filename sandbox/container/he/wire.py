"""A strict reader and writer for the few protobuf messages TenSEAL serializes.

Used *before* handing a consumer's bytes to SEAL: to refuse a context that
carries a secret key without ever loading it into a key object, and to count
the ciphertext chunks of a vector. Also used to set the slot count of a vector
the server builds itself (``with_size``). Only the wire types TenSEAL uses are
accepted; anything else is malformed.

Field numbers come from TenSEAL 0.3's ``tensealcontext.proto`` and
``tensors.proto``:

- ``TenSEALContextProto``: 1 encryption_parameters (bytes), 2 public_context
  (message), 3 private_context (message, 1 = secret_key bytes),
  4 encryption_type (0 asymmetric, 1 symmetric).
- ``BFVVectorProto`` / ``CKKSVectorProto``: 1 sizes (packed uint32),
  2 ciphertexts (repeated bytes), 3 scale (double, CKKS only).
"""

from __future__ import annotations

from sandbox.container.he.errors import MalformedInput

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5

Field = tuple[int, int, int | bytes]  # number, wire type, value


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise MalformedInput("truncated or oversized varint in the serialized message")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def fields(data: bytes) -> list[Field]:
    """Every top-level field of a message, in order."""
    out: list[Field] = []
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if number == 0:
            raise MalformedInput("field number 0 in the serialized message")
        if wire == VARINT:
            value, at = _varint(data, at)
        elif wire in (FIXED64, FIXED32):
            width = 8 if wire == FIXED64 else 4
            if at + width > len(data):
                raise MalformedInput("truncated fixed-width field in the serialized message")
            value, at = data[at : at + width], at + width
        elif wire == LENGTH:
            length, at = _varint(data, at)
            if at + length > len(data):
                raise MalformedInput("truncated field in the serialized message")
            value, at = data[at : at + length], at + length
        else:
            raise MalformedInput(f"unsupported wire type {wire} in the serialized message")
        out.append((number, wire, value))
    return out


def _bytes_of(found: list[Field], number: int) -> list[bytes]:
    out = []
    for num, wire, value in found:
        if num == number:
            if wire != LENGTH or not isinstance(value, bytes):
                raise MalformedInput(f"field {number} has the wrong wire type")
            out.append(value)
    return out


def context_has_secret_key(data: bytes) -> bool:
    """True when a serialized TenSEAL context carries a (non-empty) secret key."""
    for private in _bytes_of(fields(data), 3):
        if any(key for key in _bytes_of(fields(private), 1)):
            return True
    return False


def context_is_symmetric(data: bytes) -> bool:
    """True when the context says symmetric encryption (no public key to use)."""
    return any(num == 4 and value == 1 for num, _, value in fields(data))


def vector_chunks(data: bytes) -> int:
    """How many ciphertexts a serialized BFV/CKKS vector holds."""
    return len(_bytes_of(fields(data), 2))


def _put_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def with_size(data: bytes, size: int) -> bytes:
    """The serialized single-chunk vector ``data`` with its slot count set to ``size``.

    TenSEAL has no API to add vectors of different sizes; the server uses this
    to add a full-width ciphertext of its own randomness to a size-1 result.
    """
    packed = _put_varint(size)
    out = bytearray(_put_varint((1 << 3) | LENGTH) + _put_varint(len(packed)) + packed)
    for number, wire, value in fields(data):
        if number == 1:
            continue
        out += _put_varint((number << 3) | wire)
        if wire == VARINT:
            assert isinstance(value, int)
            out += _put_varint(value)
        else:
            assert isinstance(value, bytes)
            if wire == LENGTH:
                out += _put_varint(len(value))
            out += value
    return bytes(out)
