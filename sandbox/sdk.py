"""The analysts' import name: ``from sandbox.sdk import connect, publish_query``.

The SDK itself is ``sandbox/container/sdk/``, with the rest of the code that
runs inside the container; this module only keeps the name the container
contract promises (``DESIGN.md``), so analysts' code does not depend on
where the runtime keeps its files.
"""

from sandbox.container.sdk import *  # noqa: F403
from sandbox.container.sdk import __all__ as __all__
