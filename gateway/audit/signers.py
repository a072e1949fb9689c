"""Stage 7 of the data flow, the audit log's anchors: who signs a checkpoint.

A checkpoint of the chain head (:mod:`gateway.audit.checkpoints`) is signed
with Ed25519 by a :class:`Signer`. The private key lives outside the metadata
store, so whoever can write the store cannot sign a head of their own:

- :class:`FileSigner`: a PKCS#8 PEM key file, by default
  ``<data_dir>/keys/audit-signing.key`` (setting ``audit_signing_key``; a
  relative path is under the data directory), made on first use.
- :class:`CommandSigner`: an external signer (an HSM, a KMS, a signing
  service), setting ``audit_signer_command``: a command line (split like a
  shell would, never run by one) that reads the payload on standard input and
  prints the base64 of the 64-byte signature. Its public key is the file
  ``audit_signer_public_key`` (PEM, or the base64 of the 32 raw bytes) or,
  without that setting, whatever the same command prints when run with the
  extra argument ``--public-key``.

Invariants:

- The key file is a regular file owned by the gateway's user, with no
  permission for group or others (0600 or stricter), in a directory no one
  else may write to, and never a symlink. Anything else is refused
  (:class:`SignerError`), never repaired: a loosened mode means someone else
  may have read the key, and a new key would not vouch for the old checkpoints.
- A key is made exactly once: written to a temporary file opened with
  ``O_EXCL`` and mode 0600, flushed, then linked to its name (``link(2)``
  fails when the name exists), so two processes starting together end up
  with one key and nobody reads a half-written file.
- A command signer's answer is verified against its public key before it is
  used: a signer that prints anything else is an error, not a checkpoint.
- The key id is the SHA-256 (hex) of the raw 32-byte public key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import shlex
import stat
import subprocess
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.errors import CheckpointError, SignerError

if TYPE_CHECKING:
    from gateway.settings import GatewaySettings

KEY_FILE = Path("keys") / "audit-signing.key"  # under the data directory
SIGNATURE_BYTES = 64
MAX_KEY_FILE_BYTES = 4096
COMMAND_TIMEOUT_SECONDS = 30.0


class Signer(Protocol):
    """Signs checkpoint payloads with one Ed25519 key."""

    def public_key(self) -> Ed25519PublicKey:
        """The public key that verifies this signer's signatures (the same on every call)."""
        ...

    def sign(self, payload: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``payload``, or :class:`SignerError`."""
        ...


def key_id(public_key: Ed25519PublicKey) -> str:
    """The key's fingerprint: SHA-256 (hex) of its 32 raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    """The key as PEM (SubjectPublicKeyInfo), as ``openssl pkey -pubout`` writes it."""
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def load_public_key(data: bytes | str) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM (SubjectPublicKeyInfo) or from the base64 of
    its 32 raw bytes; :class:`CheckpointError` for anything else."""
    text = data.encode("utf-8") if isinstance(data, str) else data
    text = text.strip()
    if len(text) > MAX_KEY_FILE_BYTES:
        raise CheckpointError("a public key is at most a few hundred bytes")
    if text.startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text)
        except (ValueError, UnsupportedAlgorithm) as e:
            raise CheckpointError("not a PEM public key") from e
        if not isinstance(key, Ed25519PublicKey):
            raise CheckpointError("the public key is not an Ed25519 key")
        return key
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise CheckpointError("a public key is PEM or the base64 of 32 bytes") from e
    if len(raw) != 32:
        raise CheckpointError("a raw Ed25519 public key is 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def verifies(public_key: Ed25519PublicKey, signature: bytes, payload: bytes) -> bool:
    """Whether ``signature`` is ``public_key``'s signature of ``payload``."""
    try:
        public_key.verify(signature, payload)
    except InvalidSignature:
        return False
    return True


class FileSigner:
    """The key in a file (see the module docstring), loaded or made on first use."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = path
        self.create = create
        self._key: Ed25519PrivateKey | None = None
        self._lock = threading.Lock()

    def public_key(self) -> Ed25519PublicKey:
        return self._private().public_key()

    def sign(self, payload: bytes) -> bytes:
        return self._private().sign(payload)

    def _private(self) -> Ed25519PrivateKey:
        with self._lock:
            if self._key is None:
                if self.create and not os.path.lexists(self.path):
                    _make_key_file(self.path)
                self._key = _read_key_file(self.path)
            return self._key


def _check_directory(directory: Path) -> None:
    try:
        info = directory.stat()
    except OSError as e:
        raise SignerError(f"cannot read the signing key's directory {directory}: {e}") from e
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise SignerError(
            f"the signing key's directory {directory} may be written by others "
            f"(mode {stat.S_IMODE(info.st_mode):04o}): it must not be"
        )


def _make_key_file(path: Path) -> None:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        raise SignerError(f"cannot create {path.parent}: {e}") from e
    _check_directory(path.parent)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.new")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(temporary, flags, 0o600)
        try:
            os.fchmod(fd, 0o600)  # whatever the umask
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temporary, path)  # atomic; fails if another process made one first
        except FileExistsError:
            pass  # theirs is the key: read it below
        finally:
            os.unlink(temporary)
    except OSError as e:
        raise SignerError(f"cannot create the signing key {path}: {e}") from e


def _read_key_file(path: Path) -> Ed25519PrivateKey:
    if path.is_symlink():
        raise SignerError(f"the signing key {path} is a symlink: refused")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError as e:
        raise SignerError(f"no signing key at {path}") from e
    except OSError as e:
        raise SignerError(f"cannot open the signing key {path}: {e}") from e
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SignerError(f"the signing key {path} is not a regular file: refused")
        if info.st_uid != os.geteuid():
            raise SignerError(f"the signing key {path} belongs to another user: refused")
        if stat.S_IMODE(info.st_mode) & 0o077:
            raise SignerError(
                f"the signing key {path} has mode {stat.S_IMODE(info.st_mode):04o}: "
                "it must be 0600 (no access for group or others); refused"
            )
        data = os.read(fd, MAX_KEY_FILE_BYTES + 1)
    finally:
        os.close(fd)
    _check_directory(path.parent)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise SignerError(f"{path} is not an unencrypted PEM private key") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise SignerError(f"{path} is not an Ed25519 key")
    return key


class CommandSigner:
    """An external signer run as a command (see the module docstring)."""

    def __init__(
        self,
        command: str,
        public_key_file: Path | None = None,
        *,
        timeout: float = COMMAND_TIMEOUT_SECONDS,
    ) -> None:
        self.argv = shlex.split(command)
        if not self.argv:
            raise SignerError("the signer command is empty")
        self.public_key_file = public_key_file
        self.timeout = timeout
        self._public: Ed25519PublicKey | None = None
        self._lock = threading.Lock()

    def public_key(self) -> Ed25519PublicKey:
        with self._lock:
            if self._public is None:
                self._public = self._load_public_key()
            return self._public

    def sign(self, payload: bytes) -> bytes:
        public = self.public_key()
        answer = self._run([], payload)
        try:
            signature = base64.b64decode(answer.strip(), validate=True)
        except (binascii.Error, ValueError) as e:
            raise SignerError("the signer command did not print a base64 signature") from e
        if len(signature) != SIGNATURE_BYTES or not verifies(public, signature, payload):
            raise SignerError("the signer command's signature does not verify under its public key")
        return signature

    def _load_public_key(self) -> Ed25519PublicKey:
        if self.public_key_file is not None:
            try:
                data = self.public_key_file.read_bytes()[: MAX_KEY_FILE_BYTES + 1]
            except OSError as e:
                raise SignerError(f"cannot read the signer's public key: {e}") from e
        else:
            data = self._run(["--public-key"], b"")
        try:
            return load_public_key(data)
        except CheckpointError as e:
            raise SignerError(f"the signer's public key: {e}") from e

    def _run(self, extra: list[str], stdin: bytes) -> bytes:
        try:
            done = subprocess.run(  # the operator's configured command, never a shell
                [*self.argv, *extra],
                input=stdin,
                capture_output=True,
                timeout=self.timeout,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as e:
            raise SignerError(f"the signer command could not run: {e}") from e
        if done.returncode != 0:
            said = done.stderr.decode("utf-8", "replace").strip()[-200:]
            raise SignerError(f"the signer command exited with {done.returncode}: {said}")
        return done.stdout[: MAX_KEY_FILE_BYTES + 1]


def key_file_of(settings: GatewaySettings) -> Path:
    """Where the key file is (setting ``audit_signing_key``; relative: under data_dir)."""
    return settings.data_dir / (settings.audit_signing_key or KEY_FILE)


def signer_from_settings(settings: GatewaySettings, *, create: bool = True) -> Signer:
    """The configured signer: the command when one is set, else the key file
    (made on first use unless ``create`` is False: verifying never makes a key)."""
    if settings.audit_signer_command.strip():
        public = settings.audit_signer_public_key
        return CommandSigner(
            settings.audit_signer_command,
            None if public is None else settings.data_dir / public,
        )
    return FileSigner(key_file_of(settings), create=create)
