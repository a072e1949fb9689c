"""The sweep keeps no state of its own.

Revision ID: 0013
Revises: 0012

Its tasks act through what exists (a grant's state moves by compare-and-set,
a notice is written once per key) and its runs are audited (``sweep.run``),
so two sweeps at once need no table to agree: this revision changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
