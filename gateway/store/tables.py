"""The metadata store's schema, as SQLAlchemy Core tables.

This module describes the schema at the newest migration; the migrations in
``gateway/store/migrations/versions`` create it, each written out in full so
that a later change here never rewrites history. A test compares the two.

Invariants:

- Timestamps are timezone-aware UTC (``gateway.store.types.UTCDateTime``).
- JSON columns are ``json`` (text kept as written), not ``jsonb``: the audit
  chain hashes values that must come back exactly as they went in.
- Constraint and index names come from the naming convention below, so later
  migrations can name what they alter on both backends.
"""

from __future__ import annotations

import sqlalchemy as sa

from gateway.store.types import UTCDateTime as UTCDateTime
from gateway.store.types import utc_iso as utc_iso

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


# The audit log (gateway.audit.chain). Append-only: database triggers refuse
# UPDATE and DELETE (and TRUNCATE on PostgreSQL). ``id`` is the chain order and
# is assigned by the appender under the chain lock, not by a sequence: the hash
# covers it, so it must be known before the row is written, and a sequence
# would leave gaps on rollback that verification could not tell from a
# removed event.
audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),  # SQLite: the rowid
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("grant_id", sa.String(200), nullable=True),
    sa.Column("datasets", sa.JSON(), nullable=False),  # sorted list of dataset names
    sa.Column("detail", sa.JSON(), nullable=False),  # JSON object, never raw data values
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.CheckConstraint("id >= 1", name="id_positive"),
    sa.UniqueConstraint("hash"),
    sa.Index(None, "at"),
    sa.Index(None, "type", "id"),
    sa.Index(None, "actor", "id"),
    sa.Index(None, "grant_id", "id"),
)

# Signed checkpoints of the audit chain's head (gateway.audit.checkpoints).
# Append-only by trigger like audit_events; one per head and signing key.
# No foreign key to audit_events: a checkpoint must outlive a cut-off tail.
audit_checkpoints = sa.Table(
    "audit_checkpoints",
    metadata,
    sa.Column(
        "event_id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("key_id", sa.String(64), primary_key=True),  # SHA-256 of the public key
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("signature", sa.String(128), nullable=False),  # base64 Ed25519
    sa.CheckConstraint("event_id >= 1", name="event_id_positive"),
    sa.Index(None, "at"),
)


# Identity (gateway.identity). An account is a person or a service with roles;
# an API token is shown once and stored as the SHA-256 of its secret (a
# 256-bit random secret needs no salt or slow hash); a token row is never
# deleted, only revoked, so the audit log can always name it.
accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("roles", sa.JSON(), nullable=False),  # sorted list of role names
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("disabled_at", UTCDateTime(), nullable=True),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.String(16), primary_key=True),  # public part of the token
    sa.Column(
        "account", sa.String(100), sa.ForeignKey("accounts.name"), nullable=False, index=True
    ),
    sa.Column("secret_sha256", sa.String(64), nullable=False),
    sa.Column("label", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=True),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
)


# The scope policy's Casbin lines (gateway.scope.store): ptype and fields v0..v5,
# unused fields "" (never NULL, so the unique constraint holds). Grant changes
# find their lines by grant id (p's v1).
FIELDS = 6  # v0..v5: the widest line Casbin's SQL adapters store
FIELD_LENGTH = 512

scope_rules = sa.Table(
    "scope_rules",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("ptype", sa.String(8), nullable=False),
    *(
        sa.Column(f"v{i}", sa.String(FIELD_LENGTH), nullable=False, server_default="")
        for i in range(FIELDS)
    ),
    sa.UniqueConstraint("ptype", *(f"v{i}" for i in range(FIELDS)), name="uq_scope_rules_line"),
    sa.Index("ix_scope_rules_grant", "ptype", "v1"),
)

# The scope lines' revision: one row, bumped in the transaction of every change
# to ``scope_rules``; a process whose loaded revision differs reloads.
scope_revision = sa.Table(
    "scope_revision",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("revision", sa.BigInteger(), nullable=False),
    sa.CheckConstraint("id = 1", name="one_row"),
)


# Grants (gateway.grants): one operator, one scenario, exactly the datasets and
# columns in ``scopes`` ([{"dataset", "columns"}], sorted), for a fixed term.
# ``pseudonym_key`` is the grant's view key (hex of 32 random bytes): a secret
# of the trusted side, never shown through the API or written to the audit
# log; ``key_id`` names it. State changes only through
# gateway.grants.service.GrantService.transition (gateway.store.lifecycle).
grants = sa.Table(
    "grants",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column(
        "operator", sa.String(100), sa.ForeignKey("accounts.name"), nullable=False, index=True
    ),
    sa.Column("scenario", sa.String(200), nullable=False),
    sa.Column("purpose", sa.Text(), nullable=False),
    sa.Column("scopes", sa.JSON(), nullable=False),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("valid_from", UTCDateTime(), nullable=False),
    sa.Column("valid_until", UTCDateTime(), nullable=False),
    sa.Column("pseudonym_key", sa.String(64), nullable=False),
    sa.Column("key_id", sa.String(32), nullable=False),
    sa.Column("request_id", sa.String(64), nullable=True),
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("state_changed_at", UTCDateTime(), nullable=False),
    sa.Column("state_reason", sa.Text(), nullable=False),
)

# The stops held on grants (gateway.grants): one row per party holding one, the
# administrators as one party (``holder`` "") or a provider (its account name). A
# grant is suspended exactly while it has a row here; a lifted stop's row is
# deleted (the audit log's ``grant.hold`` events keep the history).
grant_holds = sa.Table(
    "grant_holds",
    metadata,
    sa.Column("grant_id", sa.String(64), sa.ForeignKey("grants.id"), primary_key=True),
    sa.Column("holder_kind", sa.String(16), primary_key=True),
    sa.Column("holder", sa.String(100), primary_key=True),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("placed_by", sa.String(100), nullable=False),
    sa.Column("placed_at", UTCDateTime(), nullable=False),
)


# Data requests (gateway.requests): what an operator asks for (content, use,
# scenario, purpose, datasets and columns) and where its review stands.
# ``step_started_at`` is when the current step began (its deadline counts from
# there); a rejection keeps its ``reason`` and ``legal_basis``; a supplied
# request names its grant. State changes only through
# gateway.store.lifecycle.transition (gateway.requests.model.DATA_REQUEST).
data_requests = sa.Table(
    "data_requests",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column(
        "operator", sa.String(100), sa.ForeignKey("accounts.name"), nullable=False, index=True
    ),
    sa.Column("scenario", sa.String(200), nullable=False),
    sa.Column("purpose", sa.Text(), nullable=False),
    sa.Column("content", sa.Text(), nullable=False),
    sa.Column("intended_use", sa.Text(), nullable=False),
    sa.Column("scopes", sa.JSON(), nullable=False),
    sa.Column("state", sa.String(32), nullable=False, index=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("step_started_at", UTCDateTime(), nullable=False),
    sa.Column("reason", sa.Text(), nullable=True),
    sa.Column("legal_basis", sa.Text(), nullable=True),
    sa.Column("grant_id", sa.String(64), sa.ForeignKey("grants.id"), nullable=True),
)

# The providers' votes on a data request (gateway.requests.votes): one row per
# provider per request ("approved" or "rejected"), never changed or removed.
request_votes = sa.Table(
    "request_votes",
    metadata,
    sa.Column("request_id", sa.String(64), sa.ForeignKey("data_requests.id"), primary_key=True),
    sa.Column("provider", sa.String(100), primary_key=True),
    sa.Column("decision", sa.String(8), primary_key=True),
    sa.Column("at", UTCDateTime(), nullable=False),
)


# Jobs (gateway.jobs). ``state`` is the coarse state (gateway.jobs.model.State,
# changed only by ``transition``); ``outcome`` the detailed code of the last
# change. What the run and the checks found is in ``job_outcomes``, apart from
# the state. ``code`` is kept so the worker can run it and reviewers can read it.
jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("operator", sa.String(100), sa.ForeignKey("accounts.name"), nullable=False),
    sa.Column("grant_id", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("dummy", sa.Boolean(), nullable=False),
    sa.Column("code", sa.Text(), nullable=False),
    sa.Column("code_sha256", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("datasets", sa.JSON(), nullable=False),  # sorted dataset names of the grant
    sa.Column("submitted_at", UTCDateTime(), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=True),
    sa.Column("finished_at", UTCDateTime(), nullable=True),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Index(None, "state", "submitted_at"),
    sa.Index(None, "operator", "submitted_at"),
    sa.Index(None, "grant_id", "state"),
)

# One row per job that reached the sandbox or a static check: exit class,
# durations, resource use, findings (rule ids, places, messages; never values),
# the output manifest and the versions checked against. Logs only of dummy runs.
job_outcomes = sa.Table(
    "job_outcomes",
    metadata,
    sa.Column("job_id", sa.String(64), sa.ForeignKey("jobs.id"), primary_key=True),
    sa.Column("exit_class", sa.String(32), nullable=True),
    sa.Column("exit_code", sa.Integer(), nullable=True),
    sa.Column("runtime", sa.String(16), nullable=True),
    sa.Column("run_seconds", sa.Float(), nullable=True),
    sa.Column("sandbox_seconds", sa.Float(), nullable=True),
    sa.Column("memory_peak_bytes", sa.BigInteger(), nullable=True),
    sa.Column("pids_peak", sa.Integer(), nullable=True),
    sa.Column("verdict", sa.String(8), nullable=True),
    sa.Column("findings", sa.JSON(), nullable=False),
    sa.Column("rejections", sa.JSON(), nullable=False),
    sa.Column("outputs", sa.JSON(), nullable=False),
    sa.Column("dataset_versions", sa.JSON(), nullable=False),
    sa.Column("policy_versions", sa.JSON(), nullable=False),
    sa.Column("stdout", sa.Text(), nullable=True),
    sa.Column("stderr", sa.Text(), nullable=True),
    sa.Column("recorded_at", UTCDateTime(), nullable=False),
)

# Security review of a held or blocked job (gateway.reviews): one review per
# job, opened when first looked at; votes are never changed or removed.
reviews = sa.Table(
    "reviews",
    metadata,
    sa.Column("job_id", sa.String(64), sa.ForeignKey("jobs.id"), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("required", sa.Integer(), nullable=False),
    sa.Column("opened_at", UTCDateTime(), nullable=False),
    sa.Column("closed_at", UTCDateTime(), nullable=True),
)

review_votes = sa.Table(
    "review_votes",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.String(64), sa.ForeignKey("reviews.job_id"), nullable=False),
    sa.Column("reviewer", sa.String(100), sa.ForeignKey("accounts.name"), nullable=False),
    sa.Column("decision", sa.String(8), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("job_id", "reviewer"),
)

# Registered data products (gateway.products): from a released job, with its
# lineage; valid for a term, renewable. Since 0015 a row is made only when the
# registration procedure ends registered (gateway.products.procedure), and names
# either a released job or a privacy-computing product (he_product_id); its
# status changes only through gateway.products.model (gateway.store.lifecycle).
products = sa.Table(
    "products",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("registration_code", sa.String(40), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text(), nullable=False),
    sa.Column("category", sa.String(32), nullable=False),
    sa.Column("operator", sa.String(100), sa.ForeignKey("accounts.name"), nullable=False),
    sa.Column("job_id", sa.String(64), sa.ForeignKey("jobs.id"), nullable=True),
    sa.Column("grant_id", sa.String(200), nullable=False),
    sa.Column("code_sha256", sa.String(64), nullable=False),
    sa.Column("datasets", sa.JSON(), nullable=False),
    sa.Column("dataset_versions", sa.JSON(), nullable=False),
    sa.Column("policy_versions", sa.JSON(), nullable=False),
    sa.Column("manifest", sa.JSON(), nullable=False),
    sa.Column("manifest_sha256", sa.String(64), nullable=False),
    sa.Column("registered_at", UTCDateTime(), nullable=False),
    sa.Column("valid_until", UTCDateTime(), nullable=False),
    sa.Column("renewed_at", UTCDateTime(), nullable=True),
    sa.Column("he_product_id", sa.String(32), sa.ForeignKey("he_products.id"), nullable=True),
    sa.Column("status", sa.String(16), nullable=False, server_default="registered", index=True),
    sa.Column("status_changed_at", UTCDateTime(), nullable=True),
    sa.Column("status_reason", sa.Text(), nullable=True),
    sa.UniqueConstraint("registration_code"),
    sa.UniqueConstraint("job_id"),
    sa.UniqueConstraint("he_product_id"),
)

# Privacy-computing products (gateway.he): encrypted verification and scoring.
# ``spec`` is the product's definition (verify: dataset, columns, band
# boundaries; score: the released job, file, feature order and the model's
# coefficients, already released); never subject values or claim elements.
# State changes only through gateway.he.model.transition (gateway.store.lifecycle).
he_products = sa.Table(
    "he_products",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("operator", sa.String(100), sa.ForeignKey("accounts.name"), nullable=False),
    sa.Column("grant_id", sa.String(64), sa.ForeignKey("grants.id"), nullable=False, index=True),
    sa.Column("datasets", sa.JSON(), nullable=False),
    sa.Column("spec", sa.JSON(), nullable=False),
    sa.Column("consumers", sa.JSON(), nullable=False),  # sorted account names
    sa.Column("state", sa.String(24), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("state_changed_at", UTCDateTime(), nullable=False),
    sa.Column("state_reason", sa.Text(), nullable=False),
)

# A consumer's public context (public keys only; the bytes are a file under
# ``<data_dir>/he/contexts``, checked before they were stored).
he_contexts = sa.Table(
    "he_contexts",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column(
        "consumer", sa.String(100), sa.ForeignKey("accounts.name"), nullable=False, index=True
    ),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("bytes", sa.BigInteger(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

# One row per call that reached evaluation (the rate limits count them; they
# survive a restart). Who, which product, when, the outcome: never a value.
he_calls = sa.Table(
    "he_calls",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("product_id", sa.String(32), sa.ForeignKey("he_products.id"), nullable=False),
    sa.Column("consumer", sa.String(100), sa.ForeignKey("accounts.name"), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("outcome", sa.String(24), nullable=False),
    sa.Index(None, "product_id", "consumer", "at"),
)

# Notices (gateway.notices): what the gateway tells people without being asked
# (a deadline passed, a term about to end, a termination coming). One row per
# audience ("account:<name>" or "role:<role>") per notice; ``key`` names the
# event, so a notice is written once however many sweeps see it.
notices = sa.Table(
    "notices",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("audience", sa.String(120), nullable=False, index=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("detail", sa.JSON(), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("key", "audience"),
)


# -- data requests: deadlines, extensions, delivery (0014) --
# A provider's ask for more working days of provider review (gateway.requests.extensions):
# the ask, then the administrator's decision ("approved" or "refused") written once.
request_extensions = sa.Table(
    "request_extensions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column(
        "request_id", sa.String(64), sa.ForeignKey("data_requests.id"), nullable=False, index=True
    ),
    sa.Column("provider", sa.String(100), nullable=False),
    sa.Column("days", sa.Integer(), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("asked_at", UTCDateTime(), nullable=False),
    sa.Column("decision", sa.String(8), nullable=True),
    sa.Column("decided_by", sa.String(100), nullable=True),
    sa.Column("decision_reason", sa.Text(), nullable=True),
    sa.Column("decided_at", UTCDateTime(), nullable=True),
)

# -- product registration (0015) --
# Registration applications (gateway.products.procedure, registration measures 001
# art. 13): first, change, correction or cancellation of a product's registration,
# applied -> accepted -> formal_review -> publicity -> registered (or refused, with
# reason and basis). A first registration names a released job or an HE product; the
# others name the registered product. State changes only through
# gateway.products.model (gateway.store.lifecycle).
product_registrations = sa.Table(
    "product_registrations",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("job_id", sa.String(64), sa.ForeignKey("jobs.id"), nullable=True),
    sa.Column("he_product_id", sa.String(32), sa.ForeignKey("he_products.id"), nullable=True),
    sa.Column("product_id", sa.String(32), sa.ForeignKey("products.id"), nullable=True),
    sa.Column("applicant", sa.String(100), sa.ForeignKey("accounts.name"), nullable=False),
    sa.Column("grant_id", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text(), nullable=False),
    sa.Column("category", sa.String(32), nullable=False),
    sa.Column("statement", sa.Text(), nullable=False),
    sa.Column("applied_at", UTCDateTime(), nullable=False),
    sa.Column("state_changed_at", UTCDateTime(), nullable=False),
    sa.Column("publicity_ends_at", UTCDateTime(), nullable=True),
    sa.Column("decided_by", sa.String(100), nullable=True),
    sa.Column("refusal_reason", sa.Text(), nullable=True),
    sa.Column("refusal_basis", sa.Text(), nullable=True),
)

# Objections raised during a registration's publicity (异议), each resolved once by
# an administrator: upheld (the registration is refused) or dismissed.
product_objections = sa.Table(
    "product_objections",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column(
        "registration_id",
        sa.String(32),
        sa.ForeignKey("product_registrations.id"),
        nullable=False,
        index=True,
    ),
    sa.Column("objector", sa.String(100), sa.ForeignKey("accounts.name"), nullable=False),
    sa.Column("reasons", sa.Text(), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("filed_at", UTCDateTime(), nullable=False),
    sa.Column("resolved_by", sa.String(100), nullable=True),
    sa.Column("resolution", sa.Text(), nullable=True),
    sa.Column("resolved_at", UTCDateTime(), nullable=True),
)

# The last sequence number of registration codes issued per year (the code scheme's
# ``{seq}``): taken with one upsert, so concurrent registrations never share one.
product_code_sequences = sa.Table(
    "product_code_sequences",
    metadata,
    sa.Column("year", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("last", sa.Integer(), nullable=False),
)

# -- termination, rectification, incidents (0016) --
# Terminations (gateway.terminations): proposals to end a grant, their basis, notice
# period and decision; ``origin`` names the event a sweep raised one for (raised once).
terminations = sa.Table(
    "terminations",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("grant_id", sa.String(64), sa.ForeignKey("grants.id"), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("datasets", sa.JSON(), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("legal_basis", sa.Text(), nullable=False),
    sa.Column("proposed_by", sa.String(100), nullable=False),
    sa.Column("proposed_at", UTCDateTime(), nullable=False),
    sa.Column("effective_after", UTCDateTime(), nullable=False),
    sa.Column("provisional", sa.Boolean(), nullable=False),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("state_changed_at", UTCDateTime(), nullable=False),
    sa.Column("decided_by", sa.String(100), nullable=True),
    sa.Column("decision_reason", sa.Text(), nullable=True),
    sa.Column("origin", sa.String(200), nullable=True, unique=True),
)
# A stop's rectification deadline (gateway.grants.holds; 004 art. 33).
grant_holds.append_column(sa.Column("rectify_by", UTCDateTime(), nullable=True))
# Incidents (gateway.incidents): security incidents, and the actions taken, one row each.
incidents = sa.Table(
    "incidents",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("summary", sa.Text(), nullable=False),
    sa.Column("datasets", sa.JSON(), nullable=False),
    sa.Column("grants", sa.JSON(), nullable=False),
    sa.Column("occurred_at", UTCDateTime(), nullable=False),
    sa.Column("detected_at", UTCDateTime(), nullable=False, index=True),
    sa.Column("reported_by", sa.String(100), nullable=False),
    sa.Column("reported_at", UTCDateTime(), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("resolved_at", UTCDateTime(), nullable=True),
    sa.Column("resolution", sa.Text(), nullable=True),
)
incident_actions = sa.Table(
    "incident_actions",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column(
        "incident_id", sa.String(32), sa.ForeignKey("incidents.id"), nullable=False, index=True
    ),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("action", sa.Text(), nullable=False),
)

# -- organisations, data-quality feedback (0017) --
# Organisations (gateway.organisations): whom an account works for, created by
# administrators. An account belongs to at most one: ``organisation_members`` is
# keyed by the account; an account without a row belongs to none.
organisations = sa.Table(
    "organisations",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("name"),
)

organisation_members = sa.Table(
    "organisation_members",
    metadata,
    sa.Column("account", sa.String(100), sa.ForeignKey("accounts.name"), primary_key=True),
    sa.Column(
        "organisation_id",
        sa.String(64),
        sa.ForeignKey("organisations.id"),
        nullable=False,
        index=True,
    ),
    sa.Column("assigned_by", sa.String(100), nullable=False),
    sa.Column("assigned_at", UTCDateTime(), nullable=False),
)

# Data-quality issues (gateway.feedback): filed by an operator on a dataset it holds
# or held a grant for; column names and plain text, never data values. State
# changes only through gateway.store.lifecycle.transition (FEEDBACK_ISSUE). The
# providers' answers are rows of their own, never changed.
feedback_issues = sa.Table(
    "feedback_issues",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("dataset", sa.String(200), nullable=False, index=True),
    sa.Column(
        "operator", sa.String(100), sa.ForeignKey("accounts.name"), nullable=False, index=True
    ),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("description", sa.Text(), nullable=False),
    sa.Column("columns_concerned", sa.JSON(), nullable=False),  # sorted column names
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("filed_at", UTCDateTime(), nullable=False),
    sa.Column("state_changed_at", UTCDateTime(), nullable=False),
)

feedback_answers = sa.Table(
    "feedback_answers",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column(
        "issue_id", sa.String(32), sa.ForeignKey("feedback_issues.id"), nullable=False, index=True
    ),
    sa.Column("provider", sa.String(100), sa.ForeignKey("accounts.name"), nullable=False),
    sa.Column("text", sa.Text(), nullable=False),
    sa.Column("disposition", sa.String(16), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
)

# -- metering, price classes, charges (0018) --
# What a job used beyond wall time and peak memory (gateway.metering): the container's
# CPU seconds, the rows and bytes its trusted evidence query scanned, its output bytes.
job_outcomes.append_column(sa.Column("cpu_seconds", sa.Float(), nullable=True))
job_outcomes.append_column(sa.Column("rows_scanned", sa.BigInteger(), nullable=True))
job_outcomes.append_column(sa.Column("bytes_scanned", sa.BigInteger(), nullable=True))
job_outcomes.append_column(sa.Column("output_bytes", sa.BigInteger(), nullable=True))
# Each encrypted call's evaluation time, in milliseconds.
he_calls.append_column(sa.Column("eval_ms", sa.Float(), nullable=True))
# A product's price class (gateway.pricing.model.PriceClass) and its basis (the
# condition, the tariff item, the margin): set with the registration, changed audited.
products.append_column(
    sa.Column("price_class", sa.String(24), nullable=False, server_default="free")
)
products.append_column(sa.Column("price_basis", sa.JSON(), nullable=False, server_default="{}"))
product_registrations.append_column(sa.Column("price_class", sa.String(24), nullable=True))
product_registrations.append_column(sa.Column("price_basis", sa.JSON(), nullable=True))
# What a consumer was charged for a product (gateway.pricing.charges), one row each,
# never changed; amounts in fen (0.01 CNY). ``source`` names what was charged for
# (an encrypted call, an operator's sale record), so nothing is charged twice.
charges = sa.Table(
    "charges",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("product_id", sa.String(32), sa.ForeignKey("products.id"), nullable=False),
    sa.Column("payer", sa.String(100), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("quantity", sa.Integer(), nullable=False),
    sa.Column("unit", sa.String(32), nullable=False),
    sa.Column("amount_fen", sa.BigInteger(), nullable=False),
    sa.Column("price_class", sa.String(24), nullable=False),
    sa.Column("basis", sa.JSON(), nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("recorded_by", sa.String(100), nullable=False),
    sa.CheckConstraint("amount_fen >= 0", name="amount_not_negative"),
    sa.CheckConstraint("quantity >= 1", name="quantity_positive"),
    sa.UniqueConstraint("source"),
    sa.Index(None, "product_id", "at"),
)
# What a scrape of /metrics counts (gateway.metrics.collector), read from indexes alone.
sa.Index(None, jobs.c.state, jobs.c.outcome)
sa.Index(None, he_calls.c.outcome)
