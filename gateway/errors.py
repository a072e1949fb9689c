"""The gateway package's errors. They know nothing of HTTP: the gateway's one
exception handler maps them to status codes.

Third-party errors (SQLAlchemy, Alembic, the database drivers) are wrapped
with ``raise ... from e`` where the gateway can say what it was doing; a
database refusing an UPDATE of the audit log is not wrapped, since no code
path of the gateway ever issues one.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigurationError(GatewayError):
    """A setting is missing, unsupported or unsafe (e.g. a database URL)."""


class StoreError(GatewayError):
    """The metadata store cannot be opened, migrated or used."""


class AuditError(GatewayError):
    """An audit event cannot be written or read: unknown event type, a detail
    that is not plain JSON, a transaction that cannot hold the chain lock."""


class ChainBroken(AuditError):
    """The audit chain does not verify. ``first_broken`` is the id of the first
    event whose link fails; ``reason`` says how, without quoting any value."""

    def __init__(self, first_broken: int, reason: str) -> None:
        self.first_broken = first_broken
        self.reason = reason
        super().__init__(f"audit chain broken at event {first_broken}: {reason}")


class CheckpointError(AuditError):
    """A checkpoint of the audit chain's head is malformed or does not verify:
    not the checkpoint format, a public key that is not Ed25519, a signature
    that fails or a key that is not trusted (``gateway.audit.checkpoints``)."""


class SignerError(ConfigurationError):
    """Checkpoints cannot be signed: the signing key file is missing, unsafe
    (a symlink, a mode looser than 0600, another owner) or unreadable, or the
    signer command failed or answered with something that does not verify."""
