"""Every lifecycle of the gateway, in the order the docs show them (``docs/lifecycles.md``).

Each domain declares its own table in its ``model.py`` as a
``gateway.store.lifecycle.Lifecycle``; this list is what the exhaustive
State x State tests and the generated diagrams walk.
"""

from __future__ import annotations

from typing import Any

from gateway.feedback.model import FEEDBACK_ISSUE  # organisations, data-quality feedback
from gateway.grants.model import GRANT
from gateway.he.model import HE_PRODUCT
from gateway.incidents.model import INCIDENT  # termination, rectification, incidents
from gateway.jobs.model import JOB
from gateway.products.model import OBJECTION, PRODUCT, REGISTRATION  # product registration
from gateway.requests.model import DATA_REQUEST
from gateway.reviews.model import REVIEW
from gateway.store.lifecycle import Lifecycle
from gateway.terminations.model import TERMINATION  # termination, rectification, incidents

LIFECYCLES: tuple[Lifecycle[Any], ...] = (
    GRANT,
    DATA_REQUEST,
    JOB,
    REVIEW,
    HE_PRODUCT,
    REGISTRATION,
    PRODUCT,
    OBJECTION,
    TERMINATION,
    INCIDENT,
    FEEDBACK_ISSUE,
)
