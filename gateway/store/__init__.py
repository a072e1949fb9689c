"""The gateway's metadata store: SQLite by default, PostgreSQL beyond one machine.

``make_engine(url)`` opens it, ``migrate(engine)`` brings the schema to the
newest revision, ``tables`` describes that schema. Transactions are the
caller's: a state change and the audit event that records it commit together.
"""

from gateway.store.engine import make_engine, read_transaction
from gateway.store.migrations import migrate
from gateway.store.tables import audit_events, metadata

__all__ = ["audit_events", "make_engine", "metadata", "migrate", "read_transaction"]
