"""The root of the runtime's errors, shared by the code in the container and the trusted side.

It lives here because container code (the HE evaluator) raises errors the
gateway must recognise as the runtime's own, and container code imports
nothing from outside ``sandbox/container/``. The trusted side's errors are
in ``sandbox/errors.py``, under the same root.
"""

from __future__ import annotations


class SandboxError(Exception):
    """Base of every error this package raises on purpose."""
