"""Every lifecycle of the gateway, in the order the docs show them (``docs/lifecycles.md``).

Each domain declares its own table in its ``model.py`` as a
``gateway.store.lifecycle.Lifecycle``; this list is what the exhaustive
State x State tests and the generated diagrams walk.
"""

from __future__ import annotations

from typing import Any

from gateway.grants.model import GRANT
from gateway.he.model import HE_PRODUCT
from gateway.jobs.model import JOB
from gateway.requests.model import DATA_REQUEST
from gateway.reviews.model import REVIEW
from gateway.store.lifecycle import Lifecycle

LIFECYCLES: tuple[Lifecycle[Any], ...] = (
    GRANT,
    DATA_REQUEST,
    JOB,
    REVIEW,
    HE_PRODUCT,
    # -- product registration --
    # -- termination, rectification, incidents --
)
