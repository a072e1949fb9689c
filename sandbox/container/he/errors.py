"""Errors of the homomorphic-encryption products. They know nothing of HTTP.

Every error a consumer's bytes can cause is a ``HEInputError``: a
``ValueError`` (the input is wrong, not the server) and a ``SandboxError`` (the
gateway maps the package's errors in one place). Messages are plain and never
quote the bytes received.
"""

from __future__ import annotations

from sandbox.container.errors import SandboxError


class HEError(SandboxError):
    """Base of every error this package raises on purpose."""


class ProductError(HEError, ValueError):
    """A product cannot be built from what the operator gave (duplicate subject,
    bucket over capacity, bad band boundaries, bad model)."""


class HEInputError(HEError, ValueError):
    """Bytes sent by a consumer are refused. The subclasses say why."""


class InputTooLarge(HEInputError):
    """A context or ciphertext is over its size cap (checked before parsing)."""


class MalformedInput(HEInputError):
    """The bytes do not parse as a TenSEAL context or vector of the expected shape."""


class SecretKeyPresent(HEInputError):
    """The context carries a secret key. The platform must never hold one."""


class WrongScheme(HEInputError):
    """The context is for the other scheme (BFV where CKKS is needed, or the reverse)."""


class WeakParameters(HEInputError):
    """The encryption parameters are below the 128-bit security floor or do not
    match the product's fixed parameters."""


class MissingKeys(HEInputError):
    """The context lacks a key the evaluation needs (public key, Galois keys)."""


class EvaluationFailed(HEInputError):
    """The evaluation failed on the consumer's input (e.g. a ciphertext at the
    wrong level or scale). Nothing about the data is in the message."""
