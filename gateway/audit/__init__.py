"""The audit log: append-only, hash-chained events (see ``gateway.audit.chain``)."""

from gateway.audit.chain import (
    EVENT_TYPES,
    GENESIS,
    SYSTEM,
    Event,
    Verification,
    append,
    event_hash,
    export_jsonl,
    verify,
)

__all__ = [
    "EVENT_TYPES",
    "GENESIS",
    "SYSTEM",
    "Event",
    "Verification",
    "append",
    "event_hash",
    "export_jsonl",
    "verify",
]
