"""The data-sandbox runtime.

A submission flows through the modules in this order: scope -> views ->
backends (run in a fresh hardened container) -> collect -> checks -> verdict,
with the ledger and the audit trail recording every step.

This package's ``runner`` and ``sdk`` modules also run *inside* the sandbox
container, so this file imports nothing.
"""

__version__ = "0.1.0"
