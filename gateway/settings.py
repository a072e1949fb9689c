"""The gateway's settings, read once from ``DSR_GATEWAY_*`` environment variables.

Passed into what needs them (dependency injection); nothing reads the
environment behind the caller's back. Bad values fail when the settings are
loaded, not at the first request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway.errors import ConfigurationError
from gateway.store.engine import SQLITE_DRIVERS, normalise_url, sqlite_in_memory

DATABASE_FILE = "gateway.sqlite"


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DSR_GATEWAY_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    # Where the embedded default keeps its files; made absolute on load, so the
    # store does not move when the working directory changes.
    data_dir: Path = Path("var")
    # Empty means the embedded default: SQLite at <data_dir>/gateway.sqlite.
    # Otherwise sqlite:///<path> (a relative path is made absolute on load) or
    # postgresql+psycopg://user@host/dbname (postgresql:// means psycopg too).
    database_url: str = ""
    # The largest request body the gateway reads (JSON, a policy's YAML): 413
    # beyond. Dataset uploads stream to disk under their own, larger cap.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Calls of one privacy-computing product by one consumer (gateway.he): at
    # most this many per sliding hour and per sliding day; 429 beyond.
    he_calls_per_hour: int = Field(default=60, ge=1)
    he_calls_per_day: int = Field(default=500, ge=1)
    # Where consumers' HE bytes are parsed and evaluated: "sandbox" is a hardened
    # container (gateway.he.sandboxed); "process" is the gateway's own process,
    # for environments without a container engine only.
    he_evaluator: Literal["sandbox", "process"] = "sandbox"
    # Fair scheduling (gateway.jobs.worker): jobs of one operator running at
    # once, and waiting in the queue (429 beyond); operators take turns.
    max_running_per_operator: int = Field(default=1, ge=1)
    max_queued_per_operator: int = Field(default=20, ge=1)
    # Checking a job's outputs runs in a separate checker process (sandbox.judge.bounded):
    # one whose memory or time passes these ends the job blocked, with the reason.
    check_memory_mb: int = Field(default=2048, ge=256)
    check_seconds: float = Field(default=300.0, gt=0)
    # A grant starts now: a valid_from further than this from the gateway's
    # clock is refused (gateway.grants).
    grant_clock_skew_seconds: int = Field(default=300, ge=0, le=3600)
    # Signed checkpoints of the audit chain's head (gateway.audit.checkpoints):
    # every this many events and every this many seconds (when the head moved).
    audit_checkpoint_every_events: int = Field(default=1000, ge=1)
    audit_checkpoint_every_seconds: float = Field(default=300.0, gt=0)
    # The Ed25519 signing key of checkpoints: a file kept outside the store
    # (mode 0600; made on first use when missing). Empty: <data_dir>/keys/audit-signing.key.
    audit_signing_key: Path | None = None
    # An external signer instead of the key file: a command given the payload
    # on stdin, printing the base64 signature (an HSM or a signing service).
    audit_signer_command: str = ""
    # The signer command's Ed25519 public key (a PEM file, or a file holding the
    # base64 of the 32 raw bytes). Empty: ask the command, run with --public-key.
    audit_signer_public_key: Path | None = None
    # A copy of every checkpoint, one JSON line each, outside the database (put
    # it on other storage). Empty: <data_dir>/audit-checkpoints.jsonl.
    audit_checkpoint_log: Path | None = None

    # The statutory calendar's override file (gateway.workdays): holidays and
    # make-up working days for years the chinese-calendar package does not know.
    # Empty: <data_dir>/calendar.toml (absent: the package, then weekdays).
    calendar_file: Path | None = None
    # The scheduler (gateway.sweep.scheduler): every this many seconds the gateway
    # expires grants past their term (destroying their copies), sends the notices due
    # and runs the other sweep tasks. 0: no scheduler thread; run `dsr sweep` from cron.
    sweep_every_seconds: float = Field(default=300.0, ge=0)
    # Publicity (公示) of a registration application (gateway.products.procedure):
    # this many working days on the statutory calendar. The Chongqing registration
    # measures (001 art. 13) name the step without its length; the registration body
    # sets it. Objections are received until it ends. 0 (no publicity) only in
    # development: `dsr gateway demo` uses it so its walkthrough finishes in one sitting.
    product_publicity_working_days: int = Field(default=10, ge=0, le=60)
    # The registration code (登记编号, 001 art. 15), issued only at registration: a
    # format string over {year} (the year of issue, CST) and {seq} (a per-year sequence,
    # from 1); default "CQGSJ-{year}-{seq:06d}", e.g. CQGSJ-2025-000001.
    product_code_format: str = Field(default="CQGSJ-{year}-{seq:06d}", min_length=1)

    @field_validator("product_code_format")
    @classmethod
    def _product_code_format(cls, value: str) -> str:
        try:
            codes = {value.format(year=2025, seq=seq) for seq in (1, 2, 999_999)}
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(f"{value!r} takes {{year}} and {{seq}} only: {e}") from e
        if len(codes) != 3 or max(map(len, codes)) > 40:
            raise ValueError(f"{value!r} must use {{seq}} and make codes of 40 characters at most")
        return value

    # Working days between a termination's proposal and its earliest effect (Chengdu
    # implementation rules, 004 art. 24: reported 10 working days ahead).
    termination_notice_workdays: int = Field(default=10, ge=10, le=60)

    # The government-guided tariff (政府指导价, 001 art. 26): item -> {"unit": what one unit
    # is, "price_fen": its price in fen}; JSON in the environment, e.g.
    # DSR_GATEWAY_PRICE_TARIFF='{"credit-check": {"unit": "call", "price_fen": 200},
    # "district-report": {"unit": "copy", "price_fen": 50000}}'. Empty: no guided prices.
    price_tariff: dict[str, dict[str, str | int]] = Field(default_factory=dict)
    # Cost plus a reasonable profit (补偿成本、合理盈利, 001 art. 26; 002 art. 24): the rules
    # name no number, so the cap on a product's margin is the deployment's (0.15 = 15 %).
    price_margin_cap: float = Field(default=0.15, ge=0, le=1)
    # Unit rates of the cost accounting (001 art. 34; 004 art. 28), in fen. Placeholders:
    # the operator sets its own from its books (a CPU second of the sandbox, a GB read by
    # the trusted evidence query, a GB of released outputs kept a day, a reviewer's hour).
    cost_rate_cpu_second_fen: int = Field(default=1, ge=0)
    cost_rate_gb_scanned_fen: int = Field(default=100, ge=0)
    cost_rate_storage_gb_day_fen: int = Field(default=2, ge=0)
    cost_rate_review_hour_fen: int = Field(default=15_000, ge=0)

    @field_validator("price_tariff")
    @classmethod
    def _price_tariff(
        cls, value: dict[str, dict[str, str | int]]
    ) -> dict[str, dict[str, str | int]]:
        for item, entry in value.items():
            unit, price = entry.get("unit"), entry.get("price_fen")
            if not item.strip() or set(entry) != {"unit", "price_fen"}:
                raise ValueError(f"tariff item {item!r} has exactly a unit and a price_fen")
            if not isinstance(unit, str) or not unit.strip() or len(unit) > 32:
                raise ValueError(f"tariff item {item!r}: unit is a name of 1 to 32 characters")
            if not isinstance(price, int) or price < 0:
                raise ValueError(f"tariff item {item!r}: price_fen is a whole number of fen >= 0")
        return value

    # GET /metrics (gateway.metrics) also answers this bearer token: a Prometheus server
    # scrapes without an account. Empty (the default): only admin and auditor tokens.
    metrics_token: SecretStr = SecretStr("")

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token_strong(cls, value: SecretStr) -> SecretStr:
        if 0 < len(value.get_secret_value()) < 32:
            raise ValueError("the metrics token must be empty or at least 32 characters")
        return value

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        path = value.expanduser().resolve()
        if path.exists() and not path.is_dir():
            raise ValueError(f"{path} exists and is not a directory")
        return path

    @model_validator(mode="after")
    def _publicity_in_production(self) -> GatewaySettings:
        if self.environment == "production" and self.product_publicity_working_days < 1:
            raise ValueError("product registrations are publicised at least one working day")
        return self

    @model_validator(mode="after")
    def _resolve_database_url(self) -> GatewaySettings:
        if not self.database_url.strip():
            path = self.data_dir / DATABASE_FILE
            self.database_url = f"sqlite:///{path}"
            return self
        try:
            url = normalise_url(self.database_url.strip())
        except ConfigurationError as e:
            raise ValueError(str(e)) from e
        if url.drivername in SQLITE_DRIVERS:
            if sqlite_in_memory(url):
                raise ValueError("an in-memory SQLite database loses the audit log on restart")
            if "uri" not in url.query and url.database:
                url = url.set(database=str(Path(url.database).expanduser().resolve()))
        self.database_url = url.render_as_string(hide_password=False)
        return self
